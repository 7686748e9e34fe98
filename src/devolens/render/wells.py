"""Simulated live/dead wells: stitched two-channel uint16 images with 3-class ground truth.

A well is a wide-field scan stitched from ``tiles`` (default 9x9) fields of view, imaged in
two channels:

* channel 0, Hoechst: every nucleus (live and dead), plus some debris;
* channel 1, Draq7: dead nuclei only (plus weak cross-talk and some debris).

The ground truth is a ``uint8`` label image with three classes: 0 background, 1 live
nucleus (Hoechst only), 2 dead nucleus (Draq7 positive), and an object table with one row
per nucleus. Debris is background. Out-of-focus nuclei are labelled by their class (they
are cells) and flagged ``in_focus=False`` in the table.

Everything that shapes the appearance is drawn from the seed (domain randomisation):
nucleus size and shape, density and clustering, brightness per class, texture, blur,
background level and its slow variation, per-tile vignetting and gain, seams at tile
borders, debris, cross-talk and noise. The rendering is vectorised: a 2700x3600 well takes
a few seconds.

Examples
--------
>>> from devolens.render.wells import simulate_well
>>> well = simulate_well(seed=1, size=(300, 400))
>>> well.image.shape, well.image.dtype, well.labels.dtype
((2, 300, 400), dtype('uint16'), dtype('uint8'))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from devolens.errors import DevolensError

#: Class names of the label image, by value.
CLASSES = ("background", "live", "dead")
#: Channel names of the image, by index.
CHANNELS = ("hoechst", "draq7")
DEFAULT_SIZE = (2700, 3600)
#: Smallest nucleus semi-axis (px); debris is smaller (at most DEBRIS_MAX_RADIUS).
MIN_RADIUS = 3.0
DEBRIS_MAX_RADIUS = 1.8
#: Where a pixel's centre lies in the drawing's coordinates (which count from the first
#: pixel's corner); the object table's ``x, y`` count from that centre instead.
PIXEL_CENTRE = 0.5
#: the channel names a simulated well's TIFF stores (``devolens simulate well``): Fiji shows them, and
#: ``segment livedead`` and ``tile`` read Hoechst and Draq7 by them (:func:`devolens.io.wells.well_channel_order`)
TIFF_CHANNELS = ("Hoechst", "Draq7")
#: a well's TIFF is an ImageJ hyperstack up to this size (a classic TIFF's limit, less tifffile's margin, as
#: ``segment livedead``'s probs.tif), an OME BigTIFF with the same channel names past it
IMAGEJ_BYTES = 2**32 - 2**25
#: the object table's positions and sizes (px) as its CSV writes them: 3 decimals
OBJECTS_DECIMALS = {"x": 3, "y": 3, "radius": 3}
#: nuclei closer than this (px, edge to edge) to one placed before them are dropped (:func:`_place_nuclei`), so that
#: every nucleus is its own region of the label image
GAP = 2.0
#: the share of the plane that discs dropped where they come too close to one placed before them cover at most
#: (random sequential adsorption's jamming limit, 0.547): with :data:`GAP` the most nuclei of a size a well can hold
#: (:func:`packing_limit`), approached only as far more are asked for
JAMMING_COVERAGE = 0.547
#: what :func:`simulate_well` takes at its peak besides what the process held before: ``WELL_PIXEL_BYTES`` a pixel
#: (its float32 layers, image, noise and instance map) and ``STAMP_ELEMENT_BYTES`` for each pixel of the nuclei's
#: drawing windows (:func:`_stamp`, ``(2 ceil(a) + 3)^2`` a nucleus, ``a`` the largest semi-axis), at whichever of
#: the two phases is larger (:func:`well_memory`). Measured as the rise of the peak resident size (ru_maxrss) of
#: ``devolens simulate well`` (writing its files included): 2000x2000 60, 4000x4000 53, 3000x6000 53 bytes a pixel,
#: 12000x8000 49 (4.67 GB); :func:`_stamp` alone 52-54 bytes a window pixel
WELL_PIXEL_BYTES = 60
STAMP_ELEMENT_BYTES = 56
#: the smallest well side, pixels, :func:`simulate_well`'s and ``devolens simulate well --size``'s alike
#: (:func:`well_size_problem`): no drawing step needs it (a nucleus is about 7 px wide, so a narrower well holds
#: hardly any), it keeps a well a well
MIN_WELL = 8
#: a well that takes less than this (about a 1000x1000 one) is not weighed against the memory available (as
#: :data:`devolens.io.images.MEMORY_CHECK_BYTES` spares a small image)
WELL_CHECK_BYTES = 64 << 20


def well_tiff_options(image: np.ndarray) -> dict:
    """tifffile's ``imwrite`` options for a well image ``image``, (2, H, W) uint16: an ImageJ hyperstack of 2
    channels named :data:`TIFF_CHANNELS` (Fiji opens it as channels, not as 2 Z-slices), past
    :data:`IMAGEJ_BYTES` an OME BigTIFF with those channel names. Either reads back as the same (2, H, W) array."""
    names = list(TIFF_CHANNELS[: image.shape[0]])
    if image.nbytes < IMAGEJ_BYTES:
        return {"imagej": True, "metadata": {"axes": "CYX", "Labels": names}, "photometric": "minisblack"}
    return {"ome": True, "bigtiff": True, "metadata": {"axes": "CYX", "Channel": {"Name": names}},
            "photometric": "minisblack"}

__all__ = ["CLASSES", "CHANNELS", "DEFAULT_SIZE", "Well", "WellParams", "packing_limit", "random_params",
           "simulate_well", "well_memory"]


@dataclass
class WellParams:
    """Appearance parameters of one well (all drawn from the seed by :func:`random_params`).

    Lengths are in pixels, intensities in camera counts (uint16 grey levels).
    """

    density: float = 500.0            # nuclei per megapixel
    dead_fraction: float = 0.3        # fraction of nuclei that are dead
    radius: float = 7.0               # mean semi-axis of a live nucleus (px)
    radius_sd: float = 0.2            # relative spread of the radius
    elongation: float = 0.25          # max relative difference between the two semi-axes
    dead_shrink: float = 0.8          # dead nuclei are condensed: radius factor
    cluster_fraction: float = 0.4     # fraction of nuclei placed in clusters
    cluster_spread: float = 25.0      # sd of a cluster (px)
    live_hoechst: float = 4000.0      # peak Hoechst of a live nucleus (counts above background)
    dead_hoechst: float = 6000.0      # peak Hoechst of a dead nucleus
    dead_draq7: float = 5000.0        # peak Draq7 of a dead nucleus
    brightness_sd: float = 0.25       # relative spread of brightness between nuclei
    texture: float = 0.2              # relative amplitude of chromatin texture
    crosstalk: float = 0.02           # Hoechst bleeding into the Draq7 channel
    psf_sigma: float = 1.0            # in-focus blur (px)
    out_of_focus_fraction: float = 0.04
    out_of_focus_sigma: float = 3.0
    debris_density: float = 60.0      # debris particles per megapixel
    background: tuple[float, float] = (400.0, 300.0)   # offset per channel (counts)
    background_variation: float = 0.3  # relative slow variation of the background
    vignetting: float = 0.3           # relative fall-off from tile centre to tile corner
    tile_gain_sd: float = 0.06        # relative gain difference between tiles
    seam: float = 0.15                # relative dip (or rise if negative) along tile borders
    seam_width: float = 2.0           # px
    photons_per_count: float = 0.5    # shot noise scale (photons per grey level)
    read_noise: float = 8.0           # counts (sd)

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (JSON friendly)."""
        return {k: (list(v) if isinstance(v, tuple) else float(v)) for k, v in self.__dict__.items()}


@dataclass
class Well:
    """A simulated well.

    Attributes
    ----------
    image : ndarray, uint16, shape (2, H, W)
        Channels Hoechst, Draq7.
    labels : ndarray, uint8, shape (H, W)
        0 background, 1 live nucleus, 2 dead nucleus.
    objects : DataFrame
        One row per nucleus: ``id`` (1..N, the value in :attr:`instances`), ``x``, ``y``
        (the centre of its ellipse, px: x the column, y the row, from 0 at the first pixel's
        centre, as ``devolens segment``'s objects.csv and ``devolens render``'s give them),
        ``area`` (labelled pixels), ``class`` (1 live, 2 dead), ``in_focus`` (bool),
        ``radius`` (mean semi-axis, px).
    instances : ndarray, int32, shape (H, W)
        Instance map (0 background, else the object's ``id``).
    params : WellParams
        The appearance parameters that made this well.
    """

    image: np.ndarray
    labels: np.ndarray
    objects: pd.DataFrame
    instances: np.ndarray
    params: WellParams = field(default_factory=WellParams)

    @property
    def density(self) -> float:
        """The nuclei per megapixel this well holds (the object table's rows): fewer than ``params.density``, the
        density asked for, as nuclei that would overlap one placed before them are dropped
        (:func:`packing_limit`)."""
        h, w = self.labels.shape
        return len(self.objects) / (h * w / 1e6)

    @property
    def counts(self) -> dict[str, float]:
        """Live and dead counts and the dead fraction of this well."""
        live = int((self.objects["class"] == 1).sum())
        dead = int((self.objects["class"] == 2).sum())
        return {"live": live, "dead": dead, "fraction_dead": dead / max(live + dead, 1)}


def random_params(rng: np.random.Generator, *, density: float | None = None,
                  dead_fraction: float | None = None) -> WellParams:
    """Draw appearance parameters for one well (domain randomisation).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    density : float, optional
        Nuclei per megapixel; drawn in [150, 1200] when omitted.
    dead_fraction : float, optional
        Fraction of dead nuclei in [0, 1]; drawn in [0.02, 0.8] when omitted.
    """
    u = rng.uniform
    live_h = float(np.exp(u(np.log(800), np.log(20000))))
    p = WellParams(
        density=float(density if density is not None else np.exp(u(np.log(150), np.log(1200)))),
        dead_fraction=float(dead_fraction if dead_fraction is not None else u(0.02, 0.8)),
        radius=float(u(4.5, 10.0)),
        radius_sd=float(u(0.08, 0.25)),
        elongation=float(u(0.0, 0.4)),
        dead_shrink=float(u(0.55, 0.95)),
        cluster_fraction=float(u(0.0, 0.7)),
        cluster_spread=float(u(12, 60)),
        live_hoechst=live_h,
        dead_hoechst=live_h * float(u(0.8, 2.5)),
        dead_draq7=float(np.exp(u(np.log(600), np.log(20000)))),
        brightness_sd=float(u(0.1, 0.35)),
        texture=float(u(0.0, 0.35)),
        crosstalk=float(u(0.0, 0.06)),
        psf_sigma=float(u(0.6, 2.0)),
        out_of_focus_fraction=float(u(0.0, 0.08)),
        out_of_focus_sigma=float(u(2.5, 5.0)),
        debris_density=float(u(0.0, 200.0)),
        background=(float(np.exp(u(np.log(50), np.log(3000)))), float(np.exp(u(np.log(30), np.log(2000))))),
        background_variation=float(u(0.0, 0.6)),
        vignetting=float(u(0.0, 0.5)),
        tile_gain_sd=float(u(0.0, 0.12)),
        seam=float(u(-0.2, 0.35)),
        seam_width=float(u(1.0, 4.0)),
        photons_per_count=float(np.exp(u(np.log(0.1), np.log(2.0)))),
        read_noise=float(u(2.0, 30.0)),
    )
    # Draq7 marks dead nuclei clearly: at least 8x the Hoechst cross-talk of the brightest
    # nuclei (else live and dead could not be told apart, in a real assay either)
    p.dead_draq7 = max(p.dead_draq7, 8.0 * p.crosstalk * max(p.live_hoechst, p.dead_hoechst))
    return p


def packing_limit(p: WellParams) -> float:
    """About the most nuclei per megapixel a well of parameters ``p`` can hold: nuclei closer than :data:`GAP` to
    one placed before them are dropped, so discs of the mean nucleus's width plus the gap cover at most
    :data:`JAMMING_COVERAGE` of the plane. Approached only slowly: asking for this density gives well under it
    (a seed's 7.3 px nuclei: 1900 asked, 1023 kept; 10000, 2006; 40000, 2661 of about 2500 by this rule), and
    clustered nuclei lose more."""
    dead_r = max(p.radius * p.dead_shrink, MIN_RADIUS)
    mean_a = ((1 - p.dead_fraction) * p.radius + p.dead_fraction * dead_r) * (1 + p.elongation / 4)
    side = 2 * mean_a + GAP  # centre to centre, at the least
    return JAMMING_COVERAGE * 1e6 / (np.pi * side * side / 4)


def well_memory(size: tuple[int, int], nuclei: int, largest: float) -> int:
    """About the bytes :func:`simulate_well` takes at its peak for a well of ``size`` (H, W) holding ``nuclei``
    nuclei whose largest semi-axis is ``largest`` px: :data:`WELL_PIXEL_BYTES` a pixel, or the nuclei's drawing
    windows (:data:`STAMP_ELEMENT_BYTES` a window pixel) where those take more."""
    pixels = int(size[0]) * int(size[1])
    window = (2 * (int(np.ceil(largest)) + 1) + 1) ** 2 if nuclei else 0
    stamp = nuclei * window
    return max(stamp * STAMP_ELEMENT_BYTES, pixels * WELL_PIXEL_BYTES + stamp * 8)


def _check_memory(size: tuple[int, int], nuclei: int, largest: float) -> None:
    """Refuse, before it is drawn, a well that would not fit in the memory available
    (:func:`devolens.io.images.memory_available`: the machine's free memory, a job's or container's limit,
    ``ulimit -v``), as a giant image's file is refused before it is read; not checked under
    :data:`WELL_CHECK_BYTES`, where none is known, or with ``DEVOLENS_NO_MEMORY_CHECK`` set."""
    import os

    from devolens.io import images
    from devolens.io.atomic import Exhausted

    need = well_memory(size, nuclei, largest)
    if need < WELL_CHECK_BYTES or os.environ.get(images.NO_CHECK_ENV, "") not in ("", "0"):
        return
    free = images.memory_available()
    if free is None or need <= free:
        return
    leaves = getattr(free, "leaves", images.Available.leaves)
    remedy = getattr(free, "remedy", images.Available.remedy)
    def text(n: int) -> str:  # (as the images' memory check says it)
        return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"

    raise Exhausted(f"a {size[0]}x{size[1]} well takes about {text(need)} while it is simulated (about "
                    f"{WELL_PIXEL_BYTES} bytes a pixel): more than the {text(free)} {leaves}; {remedy}, or "
                    f"simulate a smaller well, or set {images.NO_CHECK_ENV}=1 to try anyway")


# ----------------------------------------------------------------------------------------
# geometry


def _place_nuclei(rng: np.random.Generator, n: int, shape: tuple[int, int], p: WellParams):
    """Centres, semi-axes and angles of ``n`` nuclei with few overlaps."""
    h, w = shape
    n_cluster = int(round(n * p.cluster_fraction))
    n_uniform = n - n_cluster
    ys = [rng.uniform(0, h, n_uniform)]
    xs = [rng.uniform(0, w, n_uniform)]
    if n_cluster:
        n_parents = max(1, n_cluster // 12)
        py, px = rng.uniform(0, h, n_parents), rng.uniform(0, w, n_parents)
        which = rng.integers(0, n_parents, n_cluster)
        ys.append(py[which] + rng.normal(0, p.cluster_spread, n_cluster))
        xs.append(px[which] + rng.normal(0, p.cluster_spread, n_cluster))
    y = np.concatenate(ys)
    x = np.concatenate(xs)
    keep = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    y, x = y[keep], x[keep]
    m = y.size
    dead = rng.random(m) < p.dead_fraction
    r = p.radius * np.clip(rng.normal(1.0, p.radius_sd, m), 0.5, 1.8)
    r = np.maximum(np.where(dead, r * p.dead_shrink, r), MIN_RADIUS)
    e = rng.uniform(0, p.elongation, m)
    a = r * (1 + e / 2)
    b = r * (1 - e / 2)
    theta = rng.uniform(0, np.pi, m)
    # drop nuclei closer than `gap` px to an earlier one (greedy, in placement order), so
    # that every nucleus is its own connected component in the label image
    gap = GAP
    if m > 1:
        tree = cKDTree(np.column_stack([y, x]))
        pairs = tree.query_pairs(r=2 * float(a.max()) + gap, output_type="ndarray")
        if len(pairs):
            i, j = pairs[:, 0], pairs[:, 1]
            d = np.hypot(y[i] - y[j], x[i] - x[j])
            close = d < a[i] + a[j] + gap
            i, j = np.minimum(i[close], j[close]), np.maximum(i[close], j[close])
            order = np.lexsort((j, i))
            removed = np.zeros(m, bool)
            for ii, jj in zip(i[order], j[order]):
                if not removed[ii]:
                    removed[jj] = True
            ok = ~removed
            y, x, dead, a, b, theta = y[ok], x[ok], dead[ok], a[ok], b[ok], theta[ok]
    return y, x, dead, a, b, theta


def _stamp(shape, y, x, a, b, theta, rng, texture):
    """Rasterise ellipses (centres ``y, x`` counted from the first pixel's corner: pixel (i, j)
    covers [i, i + 1) x [j, j + 1)); returns flat pixel index, object index and intensity profile."""
    h, w = shape
    n = y.size
    if n == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32)
    rad = int(np.ceil(float(np.max(a)))) + 1
    g = np.arange(-rad, rad + 1)
    gy, gx = np.meshgrid(g, g, indexing="ij")
    cy = np.floor(y).astype(np.int64)
    cx = np.floor(x).astype(np.int64)
    py = cy[:, None, None] + gy[None]
    px = cx[:, None, None] + gx[None]
    dy = (py + PIXEL_CENTRE - y[:, None, None]).astype(np.float32)
    dx = (px + PIXEL_CENTRE - x[:, None, None]).astype(np.float32)
    c = np.cos(theta).astype(np.float32)[:, None, None]
    s = np.sin(theta).astype(np.float32)[:, None, None]
    u = (dx * c + dy * s) / a.astype(np.float32)[:, None, None]
    v = (-dx * s + dy * c) / b.astype(np.float32)[:, None, None]
    rho2 = u * u + v * v
    inside = (rho2 <= 1.0) & (py >= 0) & (py < h) & (px >= 0) & (px < w)
    obj = np.broadcast_to(np.arange(n)[:, None, None], rho2.shape)[inside]
    flat = (py * w + px)[inside]
    prof = (1.0 - 0.35 * rho2[inside]).astype(np.float32)
    if texture > 0:
        prof *= np.clip(1.0 + texture * rng.standard_normal(prof.size).astype(np.float32), 0.2, None)
    return flat, obj, prof


def _interp_matrix(n: int, cells: int) -> np.ndarray:
    """(n, cells+1) linear interpolation weights from a coarse grid of ``cells`` intervals."""
    r = np.linspace(0, cells, n, dtype=np.float64)
    i = np.minimum(r.astype(np.int64), cells - 1)
    f = r - i
    m = np.zeros((n, cells + 1), np.float32)
    m[np.arange(n), i] = 1 - f
    m[np.arange(n), i + 1] = f
    return m


def _smooth_field(rng, shape, cells, amplitude):
    """A slowly varying multiplicative field with mean 1 (bilinear upsampling of a coarse
    grid, done as two small matrix products)."""
    h, w = shape
    if amplitude <= 0:
        return None
    gh, gw = cells
    coarse = rng.normal(0, amplitude / 2, (gh + 1, gw + 1)).astype(np.float32)
    f = _interp_matrix(h, gh) @ coarse @ _interp_matrix(w, gw).T
    f += np.float32(1.0)
    return np.maximum(f, np.float32(0.3), out=f)


def _illumination(rng, shape, tiles, p: WellParams) -> np.ndarray:
    """Per-pixel illumination: vignetting per tile, per-tile gain and seams at tile borders."""
    h, w = shape
    ty, tx = tiles
    by = np.linspace(0, h, ty + 1).round().astype(np.int64)
    bx = np.linspace(0, w, tx + 1).round().astype(np.int64)
    rows = np.arange(h)
    cols = np.arange(w)
    tile_r = np.clip(np.searchsorted(by, rows, side="right") - 1, 0, ty - 1)
    tile_c = np.clip(np.searchsorted(bx, cols, side="right") - 1, 0, tx - 1)
    # local coordinates in [-1, 1] inside each tile
    ly = (((rows - by[tile_r]) + 0.5) / np.maximum(by[tile_r + 1] - by[tile_r], 1) * 2 - 1).astype(np.float32)
    lx = (((cols - bx[tile_c]) + 0.5) / np.maximum(bx[tile_c + 1] - bx[tile_c], 1) * 2 - 1).astype(np.float32)
    k = np.float32(p.vignetting * 0.5)
    illum = np.subtract.outer(1.0 - k * ly * ly, k * lx * lx).astype(np.float32, copy=False)
    gains = np.clip(rng.normal(1.0, p.tile_gain_sd, (ty, tx)), 0.5, 1.5).astype(np.float32)
    illum *= np.repeat(np.repeat(gains, np.diff(by), axis=0), np.diff(bx), axis=1)
    if p.seam != 0 and p.seam_width > 0:
        # distance (px) to the nearest interior tile border, along each axis
        dy = np.min(np.abs(rows[:, None] + 0.5 - by[None, 1:-1]), axis=1) if ty > 1 else np.full(h, np.inf)
        dx = np.min(np.abs(cols[:, None] + 0.5 - bx[None, 1:-1]), axis=1) if tx > 1 else np.full(w, np.inf)
        sy = np.exp(-0.5 * (dy / p.seam_width) ** 2).astype(np.float32)
        sx = np.exp(-0.5 * (dx / p.seam_width) ** 2).astype(np.float32)
        seam = np.maximum.outer(sy, sx)
        seam *= np.float32(-p.seam)
        seam += np.float32(1.0)
        illum *= seam
    return illum


# ----------------------------------------------------------------------------------------


def well_size_problem(h: int, w: int) -> str | None:
    """What is wrong with a well of ``h`` x ``w`` pixels (``"must be at least 8x8 pixels, got 7x20"``), or None:
    :func:`simulate_well`'s error and ``devolens simulate well --size``'s, in the same words."""
    if h < MIN_WELL or w < MIN_WELL:
        return f"must be at least {MIN_WELL}x{MIN_WELL} pixels, got {h}x{w}"
    return None


def simulate_well(
    seed: int = 0,
    size: tuple[int, int] = DEFAULT_SIZE,
    *,
    density: float | None = None,
    dead_fraction: float | None = None,
    tiles: tuple[int, int] = (9, 9),
    params: WellParams | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Well:
    """Simulate one stitched two-channel live/dead well.

    Parameters
    ----------
    seed : int
        Seed of everything (same seed and options -> same well, bit for bit).
    size : (int, int)
        Image height and width in pixels (default 2700x3600).
    density : float, optional
        Nuclei per megapixel (1e6 pixels) asked for. Drawn from the seed when omitted. Nuclei that would
        overlap one placed before them are dropped, so the well holds fewer (:attr:`Well.density`; one seed's
        7.3 px nuclei: 400 of 500 kept, 1023 of 1900), the more so the denser, larger and more clustered they are,
        and never more than about :func:`packing_limit`.
    dead_fraction : float, optional
        Fraction of dead nuclei, in [0, 1]. Drawn from the seed when omitted. Dead nuclei are smaller, so fewer
        of them are dropped: the well's own fraction (:attr:`Well.counts`) comes out higher in a dense well.
    tiles : (int, int)
        Fields of view stitched along y and x (vignetting and seams follow this grid).
    params : WellParams, optional
        Explicit appearance parameters (overrides the random draw; ``density`` and
        ``dead_fraction`` still override theirs when given).
    progress : callable, optional
        ``progress(done, total)`` as the rendering advances.

    Returns
    -------
    Well
        Image (2, H, W) uint16, labels (H, W) uint8, object table and instance map.

    Raises
    ------
    DevolensError
        On a size smaller than 8x8, a dead fraction outside [0, 1] or a negative density.
    devolens.io.atomic.Exhausted
        When the well would not fit in the memory available (:func:`well_memory`: about
        :data:`WELL_PIXEL_BYTES` bytes a pixel), before it is drawn.
    """
    h, w = (int(size[0]), int(size[1]))
    problem = well_size_problem(h, w)
    if problem:
        raise DevolensError(f"well size {problem}")
    if dead_fraction is not None and not 0.0 <= dead_fraction <= 1.0:
        raise DevolensError(f"dead fraction must be in [0, 1], got {dead_fraction}")
    if density is not None and density < 0:
        raise DevolensError(f"density must be >= 0 nuclei per megapixel, got {density}")
    ty, tx = (max(1, min(int(tiles[0]), h)), max(1, min(int(tiles[1]), w)))
    rng = np.random.default_rng(seed)
    p = random_params(rng, density=density, dead_fraction=dead_fraction) if params is None else params
    if params is not None:
        if density is not None:
            p.density = float(density)
        if dead_fraction is not None:
            p.dead_fraction = float(dead_fraction)
    total = 6
    step = 0

    def tick():
        nonlocal step
        step += 1
        if progress is not None:
            progress(step, total)

    # --- nuclei
    n = int(rng.poisson(p.density * h * w / 1e6))
    y, x, dead, a, b, theta = _place_nuclei(rng, n, (h, w), p)
    m = y.size
    _check_memory((h, w), m, float(a.max()) if m else 0.0)  # (before the drawing takes it)
    oof = rng.random(m) < p.out_of_focus_fraction
    flat, obj, prof = _stamp((h, w), y, x, a, b, theta, rng, p.texture)
    tick()

    bright = np.clip(rng.normal(1.0, p.brightness_sd, m), 0.3, 3.0).astype(np.float32)
    hoechst_peak = np.where(dead, p.dead_hoechst, p.live_hoechst).astype(np.float32) * bright
    draq_bright = np.clip(rng.normal(1.0, p.brightness_sd, m), 0.3, 3.0).astype(np.float32)
    draq_peak = np.where(dead, p.dead_draq7 * draq_bright, 0.0).astype(np.float32)
    # out-of-focus nuclei lose peak brightness as they spread
    dim = np.where(oof, 0.6, 1.0).astype(np.float32)
    hoechst_peak *= dim
    draq_peak *= dim

    size_px = h * w
    in_f = ~oof[obj]
    layers = np.zeros((2, 2, h, w), np.float32)  # (focus, channel, y, x)
    for focus, sel in ((0, in_f), (1, ~in_f)):
        if sel.any():
            f, o, pr = flat[sel], obj[sel], prof[sel]
            layers[focus, 0] = np.bincount(f, weights=pr * hoechst_peak[o], minlength=size_px).reshape(h, w)
            if dead.any():
                layers[focus, 1] = np.bincount(f, weights=pr * draq_peak[o], minlength=size_px).reshape(h, w)

    # instance map: later objects win on (rare) overlaps
    instances = np.zeros(size_px, np.int32)
    instances[flat] = obj + 1
    instances = instances.reshape(h, w)
    tick()

    # --- debris (background class): small bright specks and fragments
    n_deb = int(rng.poisson(p.debris_density * h * w / 1e6))
    if n_deb:
        dy_ = rng.uniform(0, h, n_deb)
        dx_ = rng.uniform(0, w, n_deb)
        da = rng.uniform(0.5, DEBRIS_MAX_RADIUS, n_deb)
        db = da * rng.uniform(0.3, 1.0, n_deb)
        dth = rng.uniform(0, np.pi, n_deb)
        dflat, dobj, dprof = _stamp((h, w), dy_, dx_, da, db, dth, rng, 0.0)
        lvl = float(max(p.live_hoechst, p.dead_hoechst))
        deb_h = (lvl * rng.uniform(0.3, 2.0, n_deb)).astype(np.float32)
        stains_draq = rng.random(n_deb) < 0.5
        deb_d = np.where(stains_draq, p.dead_draq7 * rng.uniform(0.3, 1.5, n_deb), 0.0).astype(np.float32)
        layers[0, 0] += np.bincount(dflat, weights=dprof * deb_h[dobj], minlength=size_px).reshape(h, w)
        layers[0, 1] += np.bincount(dflat, weights=dprof * deb_d[dobj], minlength=size_px).reshape(h, w)
    tick()

    # --- optics: blur each focus layer, cross-talk
    img = np.empty((2, h, w), np.float32)
    for c in range(2):
        img[c] = ndimage.gaussian_filter(layers[0, c], p.psf_sigma, mode="constant", truncate=3.0)
        if layers[1, c].any():
            img[c] += ndimage.gaussian_filter(layers[1, c], p.out_of_focus_sigma, mode="constant", truncate=3.0)
    del layers
    img[1] += p.crosstalk * img[0]
    tick()

    # --- background, illumination, noise
    cells = (max(1, round(h / 700)), max(1, round(w / 700)))
    illum = _illumination(rng, (h, w), (ty, tx), p)
    for c in range(2):
        bgf = _smooth_field(rng, (h, w), cells, p.background_variation)
        bg = np.float32(p.background[c]) * (bgf if bgf is not None else np.float32(1.0))
        img[c] += bg
        img[c] *= illum
    tick()
    k = np.float32(p.photons_per_count)
    noise = rng.standard_normal((2, h, w), dtype=np.float32)
    # shot noise: sd = sqrt(counts / k) (Poisson in photons, back in counts), read noise
    sd = np.sqrt(np.maximum(img, 0) / k + np.float32(p.read_noise) ** 2)
    img += noise * sd
    del noise, sd
    np.clip(img, 0, 65535, out=img)
    image = np.rint(img).astype(np.uint16)
    del img

    cls = np.where(dead, 2, 1).astype(np.uint8)
    lut = np.concatenate([[0], cls]).astype(np.uint8)
    labels = lut[instances]
    area = np.bincount(instances.ravel(), minlength=m + 1)[1:]
    objects = pd.DataFrame(
        {
            "id": np.arange(1, m + 1, dtype=np.int32),
            # the geometry counts from the first pixel's corner (_stamp draws pixel (py, px) at
            # (py + 0.5, px + 0.5)); the table counts from its centre, as everything else does
            "x": x - PIXEL_CENTRE,
            "y": y - PIXEL_CENTRE,
            "area": area.astype(np.int64),
            "class": cls.astype(np.int64),
            "in_focus": ~oof,
            "radius": (a + b) / 2,
        }
    )
    # nuclei entirely hidden under a neighbour (area 0) are not objects
    if (area == 0).any():
        keep_ids = objects["id"].to_numpy()[area > 0]
        remap = np.zeros(m + 1, np.int32)
        remap[keep_ids] = np.arange(1, keep_ids.size + 1, dtype=np.int32)
        instances = remap[instances]
        objects = objects[area > 0].reset_index(drop=True)
        objects["id"] = np.arange(1, len(objects) + 1, dtype=np.int32)
    tick()
    return Well(image=image, labels=labels, objects=objects, instances=instances, params=p)
