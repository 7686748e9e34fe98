"""Membrane frames: one z-slice of a membrane marker (3DMMS-style) with its ground truth.

Cells are the power (weighted Voronoi) diagram of the nuclei in 3D, sliced at one plane:
a pixel ``p`` of the slice belongs to the nucleus ``i`` minimising
``|p - c_i|^2 - w_i`` with ``c_i`` the nucleus centre (3D, frame pixels) and
``w_i = (alpha * size_i / 2)^2`` (bigger nuclei, bigger cells). The diagram is clipped to
the eggshell's cross-section at that plane; membranes are the cell borders (and the
eggshell), drawn as thin bright lines blurred by the PSF, over dim cytoplasm and noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage

from devolens.errors import DevolensValueError
from devolens.render.geometry import EmbryoGeometry, Pose, cached, embryo_geometry, table_fingerprint, to_frame
from devolens.render.nuclei import _population_counts, _resolve_pose, _time_rows, check_frame, check_time_point
from devolens.render.optics import (
    OPTICS_RANGES, add_noise, check_params, finish_channel, jpeg_roundtrip, quantize, texture_field,
)

__all__ = ["MembraneFrame", "MembraneParams", "render_membrane_frame", "power_diagram"]


#: valid range of each :class:`MembraneParams` field (see :func:`devolens.render.optics.check_params`);
#: the noise and display fields as in :class:`~devolens.render.optics.OpticsParams`
MEMBRANE_RANGES = {
    "alpha": (0.0, 10.0, "closed", "cell weight radius / nucleus radius"),
    "waviness": (0.0, 100.0, "closed", "border waviness, pixels at a 600 px embryo"),
    "thickness": (1, 20, "whole", "membrane line thickness: lines 2 x thickness - 1 pixels wide"),  # 0 would dilate the lines over the frame
    "psf": (0.0, 50.0, "closed", "line blur sigma, pixels; 0 = none"),
    "membrane": (0.0, 10.0, "open", "line brightness, fraction of full scale"),
    "membrane_cv": (0.0, 1.0, "closed", "relative variation of the line brightness"),
    "cytoplasm": (0.0, 1.0, "closed", "level inside cells, fraction of full scale"),
    "background": (0.0, 1.0, "closed", "level outside the eggshell, fraction of full scale"),
    "eggshell": (0.0, 10.0, "closed", "eggshell brightness relative to membranes; 0 = invisible"),
    "puncta": (0.0, 100.0, "closed", "vesicle dots per 1000 pixels"),
    **{k: OPTICS_RANGES[k] for k in ("photons", "read_noise", "gamma", "jpeg_quality")},
}


@dataclass(frozen=True)
class MembraneParams:
    """Appearance of a membrane-marker slice (drawn by :meth:`sample`).

    Attributes
    ----------
    alpha : float
        Cell weight radius / nucleus radius (power-diagram weights).
    waviness : float
        Amplitude of the cell borders' waviness, pixels at a 600 px long embryo.
    thickness : int
        Membrane line thickness, ground truth and image alike: the 1-pixel cell borders grown by
        ``thickness - 1`` pixels on each side, so a line is ``2 * thickness - 1`` pixels wide (1, 3, 5... for
        1, 2, 3).
    psf : float
        Gaussian blur sigma of the lines, pixels.
    membrane : float
        Line brightness (fraction of full scale).
    membrane_cv : float
        Relative variation of the line brightness along the membranes.
    cytoplasm : float
        Level inside cells.
    background : float
        Level outside the eggshell.
    eggshell : float
        Relative brightness of the eggshell outline (0 = invisible).
    puncta : float
        Density of bright vesicle dots (per 1000 px).
    photons, read_noise, gamma : float
        Noise and display, as in :class:`devolens.render.optics.OpticsParams`.
    jpeg_quality : int
        JPEG round trip quality (0 = none).

    Raises
    ------
    DevolensValueError
        A value outside :data:`MEMBRANE_RANGES` (NaN, ``photons=0``, ``thickness=0``...), naming the
        field, the value and the valid range.
    """

    alpha: float = 2.0
    waviness: float = 1.0
    thickness: int = 2
    psf: float = 1.0
    membrane: float = 0.7
    membrane_cv: float = 0.25
    cytoplasm: float = 0.06
    background: float = 0.02
    eggshell: float = 0.5
    puncta: float = 0.3
    photons: float = 150.0
    read_noise: float = 0.01
    gamma: float = 1.0
    jpeg_quality: int = 85

    def __post_init__(self):
        check_params(self, MEMBRANE_RANGES)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "MembraneParams":
        """Draw every parameter from a wide range (domain randomisation)."""
        u = rng.uniform
        return cls(
            alpha=float(u(1.3, 2.8)),
            waviness=float(u(0.0, 4.0)),
            thickness=int(rng.integers(1, 4)),
            psf=float(u(0.5, 2.2)),
            membrane=float(u(0.3, 1.1)),
            membrane_cv=float(u(0.05, 0.5)),
            cytoplasm=float(u(0.0, 0.15)),
            background=float(u(0.0, 0.06)),
            eggshell=float(u(0.0, 1.0)),
            puncta=float(u(0.0, 1.0)),
            photons=float(np.exp(u(np.log(15.0), np.log(600.0)))),
            read_noise=float(u(0.0, 0.03)),
            gamma=float(u(0.7, 1.4)),
            jpeg_quality=int(rng.integers(30, 96)) if rng.random() < 0.6 else 0,
        )


@dataclass
class MembraneFrame:
    """One rendered membrane slice and its ground truth.

    Attributes
    ----------
    image : ndarray, uint8, (H, W)
    labels : ndarray, uint16, (H, W)
        Cell instances 1..K inside the eggshell (membrane pixels included), 0 outside; polar bodies, which
        the counts leave out, make no cell.
    membrane : ndarray, uint8, (H, W)
        1 on membrane lines (cell borders and the eggshell), else 0.
    cells : DataFrame
        ``label, cell, x, y`` (the nucleus centre in frame pixels), ``area`` (pixels).
    counts : dict
        Population counts of the table at that time (``A .. Z, total``).
    time : int
    z : float
        Slice position, table planes.
    artifact : str
    """

    image: np.ndarray
    labels: np.ndarray
    membrane: np.ndarray
    cells: pd.DataFrame
    counts: dict
    time: int
    z: float
    params: MembraneParams
    pose: Pose
    artifact: str = ""
    meta: dict = field(default_factory=dict)


def power_diagram(
    shape: tuple[int, int], u: np.ndarray, v: np.ndarray, dz: np.ndarray, weight: np.ndarray, *, chunk: int = 32,
    warp: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Power diagram of 3D sites on a 2D slice: index of the winning site per pixel.

    Parameters
    ----------
    shape : (int, int)
        Height and width, pixels.
    u, v : ndarray (N,)
        Site positions in the slice (column, row), pixels.
    dz : ndarray (N,)
        Distance of each site from the slice plane, pixels.
    weight : ndarray (N,)
        Power weights (squared radii), pixels^2.
    chunk : int
        Rows per block (memory: chunk * W * N floats).
    warp : (ndarray, ndarray), optional
        Displacement (dx, dy) of every pixel, pixels, (H, W) each: wavy cell borders.

    Returns
    -------
    ndarray, int32, (H, W)
        Site index per pixel (-1 when there is no site).
    """
    h, w = shape
    n = len(u)
    if n == 0:
        return np.full((h, w), -1, np.int32)
    # |p - c|^2 + dz^2 - w  =  |p|^2 - 2 p.c + (|c|^2 + dz^2 - w): the argmin over sites is an
    # argmax of linear functions of p, a small matrix product per block of rows
    u = np.asarray(u, np.float64)
    v = np.asarray(v, np.float64)
    k = u * u + v * v + np.asarray(dz, np.float64) ** 2 - np.asarray(weight, np.float64)
    coef = np.stack([2 * u, 2 * v, -k]).astype(np.float64)  # (3, N)
    out = np.empty((h, w), np.int32)
    xs = np.arange(w, dtype=np.float64)
    for y0 in range(0, h, chunk):
        y1 = min(y0 + chunk, h)
        yy, xx = np.meshgrid(np.arange(y0, y1, dtype=np.float64), xs, indexing="ij")
        if warp is not None:
            xx = xx + warp[0][y0:y1]
            yy = yy + warp[1][y0:y1]
        pts = np.stack([xx.ravel(), yy.ravel(), np.ones(xx.size)], axis=1)
        out[y0:y1] = np.argmax(pts @ coef, axis=1).reshape(y1 - y0, w)
    return out


def _merge_slivers(labels: np.ndarray, min_width: float = 3.0, min_ratio: float = 0.35) -> np.ndarray:
    """Give the pixels of sliver cells to their nearest neighbouring cell.

    A slice grazing a cell's tip (or a power cell squeezed between big ones) makes thin
    wedges that no microscope resolves. A cell is a sliver when its largest inscribed
    radius is below ``min_width`` pixels or below ``min_ratio`` of the radius of a disc of
    its area.
    """
    if labels.max() == 0:
        return labels
    dist = ndimage.distance_transform_edt(~_borders(labels) & (labels > 0))
    present = np.unique(labels[labels > 0])
    inscribed = np.asarray(ndimage.maximum(dist, labels, present), float)
    area = np.bincount(labels.ravel())[present]
    slivers = present[(inscribed < min_width) | (inscribed < min_ratio * np.sqrt(area / np.pi))]
    if len(slivers) == 0 or len(slivers) == len(present):
        return labels
    bad = np.isin(labels, slivers)
    keep = (labels > 0) & ~bad
    _, (iy, ix) = ndimage.distance_transform_edt(~keep, return_indices=True)
    out = labels.copy()
    out[bad] = labels[iy[bad], ix[bad]]
    return out


def _borders(labels: np.ndarray) -> np.ndarray:
    """1-pixel lines where the label changes to the right or below (bool)."""
    b = np.zeros(labels.shape, bool)
    b[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    b[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return b


def render_membrane_frame(
    table: pd.DataFrame,
    time: int,
    *,
    z: float | None = None,
    size: tuple[int, int] = (512, 752),
    seed: int = 0,
    params: MembraneParams | None = None,
    pose: Pose | str | None = "default",
    geometry: EmbryoGeometry | None = None,
    compress: bool = True,
    fingerprint: bytes | None = None,
) -> MembraneFrame:
    """Render one z-slice of a membrane marker for one time point of a lineage table.

    Parameters
    ----------
    table : DataFrame
        Tidy lineage table (``time``, ``cell``, ``x``, ``y`` pixels, ``z`` planes, ``size``); rows of polar bodies
        (``polar1``, ``polar2``: no cells of the embryo, not counted) make no cell.
    time : int
        Time point: one the table has, its rows with finite ``x``, ``y``, ``z`` (see :func:`render_nuclei_frame`).
    z : float, optional
        Slice position in table planes; default: drawn from the seed within the middle 60 %
        of the embryo's depth.
    size : (int, int)
        Frame height and width, pixels.
    seed : int
        Seed of everything random (parameters when not given, slice, pose, noise).
    params : MembraneParams, optional
        Appearance; drawn with :meth:`MembraneParams.sample` if None.
    pose : Pose, "default" or "random"
        Placement of the embryo in the frame (see :func:`render_nuclei_frame`).
    geometry : EmbryoGeometry, optional
        Pre-computed :func:`embryo_geometry` of the table.
    compress : bool
        Apply the JPEG round trip of ``params.jpeg_quality``.
    fingerprint : bytes, optional
        The table's :func:`~devolens.render.geometry.table_fingerprint` (see :func:`render_nuclei_frame`).

    Returns
    -------
    MembraneFrame

    Raises
    ------
    DevolensValueError
        A table or an option the renderer cannot take, a time point the table lacks among them
        (:func:`~devolens.render.nuclei.check_time_point`).
    """
    h, w = check_frame(table, time, size, seed)
    if params is not None and not isinstance(params, MembraneParams):
        raise DevolensValueError(f"params must be a MembraneParams (e.g. MembraneParams.sample(rng)) or None, got "
                                 f"{type(params).__name__}")
    par_rng, pose_rng, z_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(4)
    )
    if params is None:
        params = MembraneParams.sample(par_rng)
    fp = fingerprint if fingerprint is not None else table_fingerprint(table)  # once for this frame's lookups
    check_time_point(table, time, fp)
    geom = geometry if geometry is not None else cached(table, "geometry", embryo_geometry, fp)
    pose = _resolve_pose(pose, geom, (h, w), pose_rng)
    s = pose.scale
    half_depth = geom.depth / 2.0
    if z is None:
        z = (geom.cz + float(z_rng.uniform(-0.6, 0.6)) * half_depth) / geom.zscale
    z = float(z)
    zd = z * geom.zscale - geom.cz  # slice offset from the centre, table pixels

    names, tx, ty, tz, tsize, _ = _time_rows(table, time, fp)
    u, v, d = to_frame(geom, pose, tx, ty, tz)
    dz = d - zd * s
    radius = tsize / 2.0 * s
    weight = (params.alpha * radius) ** 2

    # eggshell cross-section at this plane
    frac = 1.0 - (zd / max(half_depth, 1e-6)) ** 2
    a = geom.length * s / 2 * np.sqrt(max(frac, 0.0))
    b = geom.width * s / 2 * np.sqrt(max(frac, 0.0))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx -= np.float32(pose.center[0])
    yy -= np.float32(pose.center[1])
    ca, sa = np.float32(np.cos(pose.angle)), np.float32(np.sin(pose.angle))
    if a > 1 and b > 1:
        inside = ((xx * ca + yy * sa) / np.float32(a)) ** 2 + ((yy * ca - xx * sa) / np.float32(b)) ** 2 <= 1.0
    else:
        inside = np.zeros((h, w), bool)

    owner = np.full((h, w), -1, np.int32)
    if len(names) and inside.any():  # only the eggshell's bounding box needs the diagram
        rows_in = np.flatnonzero(inside.any(axis=1))
        cols_in = np.flatnonzero(inside.any(axis=0))
        y0, y1, x0, x1 = rows_in[0], rows_in[-1] + 1, cols_in[0], cols_in[-1] + 1
        warp = None
        if params.waviness > 0:
            ref = geom.length * s / 600.0
            corr = 8.0 * max(ref, 0.3)
            amp = np.float32(params.waviness * ref)
            warp = (texture_field((y1 - y0, x1 - x0), corr, noise_rng) * amp,
                    texture_field((y1 - y0, x1 - x0), corr, noise_rng) * amp)
        owner[y0:y1, x0:x1] = power_diagram((y1 - y0, x1 - x0), u - x0, v - y0, dz, weight, warp=warp)
    raw = _merge_slivers(np.where(inside, owner + 1, 0))
    present = np.unique(raw[raw > 0])
    lut = np.zeros(len(names) + 1, np.uint16)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.uint16)
    labels = lut[raw]

    lines = _borders(labels)
    if params.thickness > 1:
        lines = ndimage.binary_dilation(lines, iterations=params.thickness - 1)
    shell_line = _borders(inside.astype(np.uint8))
    if params.thickness > 1:
        shell_line = ndimage.binary_dilation(shell_line, iterations=params.thickness - 1)
    membrane = (lines & (inside | shell_line)).astype(np.uint8)

    # image
    var = np.clip(1.0 + params.membrane_cv * texture_field((h, w), 6.0, noise_rng), 0.1, None)
    line_img = lines.astype(np.float32) * np.float32(params.membrane) * var
    if params.eggshell > 0:
        line_img = np.maximum(line_img, shell_line * np.float32(params.membrane * params.eggshell))
    if params.puncta > 0:
        n_p = noise_rng.poisson(params.puncta * inside.sum() / 1000.0)
        ys, xs = np.nonzero(inside)
        if n_p and len(ys):
            pick = noise_rng.integers(0, len(ys), size=n_p)
            np.maximum.at(line_img, (ys[pick], xs[pick]), noise_rng.uniform(0.3, 1.0, n_p) * params.membrane)
    line_img = ndimage.gaussian_filter(line_img, params.psf)
    line_img *= np.float32(1.0 / max(_peak_gain(params.psf, params.thickness), 1e-3))
    base = np.where(inside, params.cytoplasm, params.background).astype(np.float32)
    base = ndimage.gaussian_filter(base, 3.0)
    img = base + line_img
    img = finish_channel(add_noise(img, params.photons, params.read_noise, noise_rng), params.gamma)
    image = quantize(img)
    if compress and params.jpeg_quality > 0:
        image = jpeg_roundtrip(image, params.jpeg_quality)

    area = np.bincount(labels.ravel(), minlength=len(present) + 1)[1:]
    idx = present - 1
    cells = pd.DataFrame(
        {
            "label": np.arange(1, len(present) + 1),
            "cell": [names[i] for i in idx],
            "x": u[idx],
            "y": v[idx],
            "area": area[: len(present)].astype(int),
        }
    )
    return MembraneFrame(
        image=image,
        labels=labels,
        membrane=membrane,
        cells=cells,
        counts=_population_counts(table, time, fp),
        time=int(time),
        z=z,
        params=params,
        pose=pose,
    )


def _peak_gain(sigma: float, thickness: int) -> float:
    """Peak of a line of the given width after Gaussian blur (keeps lines at their level)."""
    from scipy.special import erf

    half = thickness / 2.0
    return float(erf(half / (np.sqrt(2) * max(sigma, 1e-3))))
