"""Nuclei frames: a histone-GFP maximum projection of one time point, with its ground truth.

>>> frame = render_nuclei_frame(table, 120, size=(512, 752), seed=0)   # doctest: +SKIP
>>> frame.image.shape, frame.labels.max(), frame.counts["total"]        # doctest: +SKIP
((512, 752, 3), 187, 190)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from devolens import checks
from devolens.errors import DevolensValueError
from devolens.render.geometry import (
    EmbryoGeometry, Pose, cached, default_pose, embryo_geometry, random_pose, table_fingerprint, to_frame,
)
from devolens.render.optics import (
    OpticsParams,
    add_noise,
    finish_channel,
    jpeg_roundtrip,
    quantize,
    render_sprites,
    resample,
    texture_field,
)

__all__ = ["NucleiFrame", "render_nuclei_frame", "population_counts", "LETTERS"]

LETTERS = ("A", "E", "M", "P", "C", "D", "Z")

#: the columns every renderer reads from a tidy lineage table
TABLE_COLUMNS = ("time", "cell", "x", "y", "z", "size")
#: frame sides the renderers take (pixels)
MIN_SIDE, MAX_SIDE = 8, 8192


def check_table(table, path=None) -> None:
    """Refuse what no renderer can read: not a DataFrame (a Series, a path: :func:`devolens.io.tables.read_table`
    reads a file), a table without the columns :data:`TABLE_COLUMNS`."""
    checks.dataframe(table, TABLE_COLUMNS, what="a tidy lineage table", path=path, error=DevolensValueError)


def frame_size(size, low: int = MIN_SIDE) -> tuple[int, int]:
    """``size`` (height, width) as two ints within ``low..MAX_SIDE`` pixels (``low``: ``MIN_SIDE`` by default)."""
    try:
        h, w = size
        h, w = (checks.whole(v, "size", floats=True, error=DevolensValueError) for v in (h, w))
    except (TypeError, ValueError):
        raise DevolensValueError(f"size must be (height, width) in pixels, got {size!r}") from None
    if not (low <= h <= MAX_SIDE and low <= w <= MAX_SIDE):
        raise DevolensValueError(f"frame size must be within {low}..{MAX_SIDE} pixels, got {h} x {w}")
    return h, w


def check_frame(table, time, size, seed) -> tuple[int, int]:
    """Check what every frame renderer takes, the table's rows at ``time`` apart (:func:`check_time_point`, once the
    renderer has the table's fingerprint); returns the frame's (height, width)."""
    check_table(table)
    h, w = frame_size(size)
    checks.whole(seed, "seed", 0, floats=True, error=DevolensValueError)
    checks.whole(time, "time", floats=True, error=DevolensValueError)  # "37" or 37.5 would render another frame
    return h, w


def check_time_point(table: pd.DataFrame, time: int, fingerprint: bytes | None = None) -> int:
    """``time`` as an int when ``table`` (a checked tidy lineage table, :func:`check_table`) has rows at that time
    point and each of them a place to draw: finite ``x``, ``y``, ``z`` and a size that is not infinite (NaN: unknown,
    drawn at the table's median). Polar bodies are not drawn, nor counted: their rows need no position.

    A frame of a time point the table lacks would be an empty eggshell, and a row without a position would be
    counted in the frame's ``counts`` but drawn nowhere: both refused (:class:`~devolens.errors.DevolensValueError`,
    naming the table's time points, or the column, the number of rows and the first). ``fingerprint``: the table's
    :func:`~devolens.render.geometry.table_fingerprint` when the caller has it (what is checked is cached with it).
    """
    present, bad = cached(table, "time_check", _time_check, fingerprint)
    t = int(time)
    source = table.attrs.get("source")
    i = int(np.searchsorted(present, t))
    if i == len(present) or present[i] != t:
        from devolens.io.tables import time_points_text

        raise DevolensValueError(f"time point {t} not in the table (it has {time_points_text(present)}): "
                                 "render one of those", path=source)
    rows = bad.get(t)
    if rows is not None:
        plain = _plain(table)
        for c in ("x", "y", "z", "size"):
            then = "drop such rows or give them a " + ("size (NaN: unknown)" if c == "size" else "position")
            checks.finite_column(_numbers(plain[c]), plain[c], c, rows=rows, where=f" at time point {t}",
                                 nan_ok=c == "size", then=then, path=source, error=DevolensValueError)
    return t


def _numbers(column: pd.Series) -> np.ndarray:
    """A table's column as float64 numbers (text that is no number, pd.NA: NaN)."""
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _time_check(table: pd.DataFrame) -> tuple[np.ndarray, dict]:
    """What :func:`check_time_point` reads of a table: its time points (sorted) and, per time point with any, the
    row positions holding a non-finite ``x``, ``y`` or ``z`` or an infinite ``size``, polar bodies left out (they
    are neither counted nor drawn: :func:`_polar_rows`)."""
    plain = _plain(table)
    t = checks.whole_times(plain["time"], path=table.attrs.get("source"), error=DevolensValueError)  # NaN, 1.5
    bad = np.zeros(len(t), bool)
    for c in ("x", "y", "z", "size"):
        v = _numbers(plain[c])
        bad |= np.isinf(v) if c == "size" else ~np.isfinite(v)
    if bad.any():
        bad &= ~_polar_rows(plain["cell"].to_numpy())
    rows = np.flatnonzero(bad)
    per_time = {int(k): rows[t[rows] == k] for k in np.unique(t[rows])}
    return np.unique(t), per_time


@dataclass
class NucleiFrame:
    """One rendered frame and its ground truth.

    Attributes
    ----------
    image : ndarray, uint8, (H, W, 3) or (H, W)
        RGB (green GFP nuclei, weak red reporter) or the green channel alone.
    labels : ndarray, uint16, (H, W)
        Instance labels 1..K of the visible part of each nucleus (nearer nuclei occlude
        farther ones); 0 = background. K never exceeds the table's count at that time: polar bodies
        (``polar1``, ``polar2``), which the counts leave out, are not drawn.
    semantic : ndarray, uint8, (H, W)
        1 where a nucleus is visible, else 0.
    centroids : DataFrame
        One row per label: ``label, cell, x, y`` (the nucleus's 3-D centre projected into the frame, pixels:
        for a partly hidden nucleus it can lie outside its label, even inside a nearer nucleus's label) plus
        ``depth`` (frame pixels from the embryo's mid plane, larger is farther), ``radius``
        (pixels), ``area`` (visible pixels), ``visible`` (the share of its own footprint visible) and
        ``label_x, label_y`` (the centroid of its label's pixels: x the column, y the row, from 0 at the first
        pixel's centre, as ``devolens segment``'s objects.csv gives ``x, y``).
    counts : dict
        Population counts of the table at that time: ``A, E, M, P, C, D, Z, total``.
    time : int
    optics : OpticsParams
    pose : Pose
    artifact : str
        ``""`` for a clean frame; set by :mod:`devolens.render.artifacts`.
    """

    image: np.ndarray
    labels: np.ndarray
    semantic: np.ndarray
    centroids: pd.DataFrame
    counts: dict
    time: int
    optics: OpticsParams
    pose: Pose
    artifact: str = ""
    meta: dict = field(default_factory=dict)


def _letter(name: str) -> str | None:
    from devolens.lineage.names import population_letter

    return population_letter(name)


def population_counts(table: pd.DataFrame, time: int) -> dict:
    """Counts per population letter and in total of the table's rows at one time point.

    Uses :func:`devolens.lineage.populations.populations` so the numbers always agree with it.

    Returns
    -------
    dict
        ``{"A": .., "E": .., "M": .., "P": .., "C": .., "D": .., "Z": .., "total": ..}``
    """
    return _population_counts(table, time)


def _population_counts(table: pd.DataFrame, time: int, fingerprint: bytes | None = None) -> dict:
    """:func:`population_counts`, given the table's :func:`table_fingerprint` when the caller has it."""
    pop = cached(table, "populations", _populations_by_time, fingerprint)
    rec = pop.get(int(time))
    if rec is None:
        return {k: 0 for k in (*LETTERS, "total")}
    return dict(rec)


def _populations_by_time(table: pd.DataFrame) -> dict:
    from devolens.lineage.populations import populations

    pop = populations(_plain(table))
    cols = (*LETTERS, "total")
    return {int(r["time"]): {k: int(r[k]) for k in cols} for r in pop.to_dict("records")}


def _plain(table: pd.DataFrame) -> pd.DataFrame:
    """The same columns without ``attrs`` (pandas deep-copies attrs on every column access)."""
    if not table.attrs:
        return table
    return pd.DataFrame(table, copy=False)


def _polar_rows(cells) -> np.ndarray:
    """Per row of the column ``cells``: whether it names a polar body (``polar1``, ``polar2``:
    :func:`~devolens.lineage.populations.is_polar_body`, one look per distinct name). Polar bodies are no cells of
    the embryo: :func:`~devolens.lineage.populations.populations` counts none, so the renderers draw none either
    (no label, no objects.csv row, no membrane cell beside counts that leave them out)."""
    from devolens.lineage.populations import is_polar_body

    codes, uniq = pd.factorize(pd.Series(cells, copy=False), use_na_sentinel=True)
    polar = np.array([is_polar_body(n) for n in uniq] + [False], dtype=bool)  # code -1 (missing): the last
    return polar[codes]


def _by_time(table: pd.DataFrame) -> dict:
    """Per time point of ``table`` (every one it has, even one of polar bodies alone): the names, ``x``, ``y``,
    ``z``, ``size`` and mitotic phase of the rows drawn, those with a finite position that are no polar body."""
    from devolens.lineage.populations import drop_copies

    plain, _ = drop_copies(_plain(table))  # a copied row is drawn once, as populations counts it
    t = checks.whole_times(plain["time"], path=table.attrs.get("source"), error=DevolensValueError)  # NaN, 1.5
    if len(t) == 0:
        return {}
    order = np.argsort(t, kind="stable")
    ts = t[order]
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    ends = np.r_[starts[1:], len(ts)]
    cols = {c: plain[c].to_numpy()[order] for c in ("cell", "x", "y", "z", "size")}
    for c in ("x", "y", "z", "size"):
        cols[c] = cols[c].astype(np.float64)
    size = cols["size"]
    polar = _polar_rows(cols["cell"])  # not counted (populations), so not drawn: labels 1..K of counted cells only
    if not np.isfinite(size).all():  # unknown diameters: the table's median (of its nuclei), else a typical one
        good = size[np.isfinite(size) & (size > 0) & ~polar]
        size[~(np.isfinite(size) & (size > 0))] = float(np.median(good)) if len(good) else _default_size(table)
    ok = np.isfinite(cols["x"]) & np.isfinite(cols["y"]) & np.isfinite(cols["z"]) & ~polar
    phase = _mitotic_phase(ts, cols["cell"])
    out = {}
    for a, b in zip(starts, ends):
        keep = ok[a:b]
        out[int(ts[a])] = (
            [str(c) for c, k in zip(cols["cell"][a:b], keep) if k],
            *(cols[c][a:b][keep] for c in ("x", "y", "z", "size")),
            phase[a:b][keep],
        )
    return out


def _mitotic_phase(times: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Per row: 1 = the cell's last time point before it divides (condensed chromosomes),
    2 = a daughter's first time point (small, bright), 0 otherwise."""
    from devolens.lineage.names import parent

    names = np.array([str(c) for c in cells], dtype=object)
    phase = np.zeros(len(names), np.int8)
    if len(names) == 0:
        return phase
    df = pd.DataFrame({"t": times, "c": names})
    first = df.groupby("c")["t"].min()
    last = df.groupby("c")["t"].max()
    present = set(first.index)
    parents = {c: parent(c) for c in present}
    dividing = {p for p in parents.values() if p is not None and p in present}
    born = {c for c, p in parents.items() if p is not None and p in present}
    lt = last.reindex(names).to_numpy()
    ft = first.reindex(names).to_numpy()
    is_div = np.fromiter((c in dividing for c in names), bool, len(names))
    is_born = np.fromiter((c in born for c in names), bool, len(names))
    phase[is_div & (times == lt)] = 1
    phase[is_born & (times == ft)] = 2
    return phase


def _default_size(table: pd.DataFrame) -> float:
    """A nucleus diameter (pixels) when the table has none: 1/12 of the embryo's length."""
    plain = _plain(table)
    x = plain["x"].to_numpy(np.float64)
    x = x[np.isfinite(x)]
    return float(max((x.max() - x.min()) / 12.0, 4.0)) if len(x) else 30.0


def _time_rows(table: pd.DataFrame, time: int, fingerprint: bytes | None = None):
    """(names, x, y, z, size, mitotic phase) of the rows at one time point (cached per table and content;
    ``fingerprint``: the table's :func:`table_fingerprint` when the caller has it)."""
    rec = cached(table, "by_time", _by_time, fingerprint).get(int(time))
    if rec is None:
        e = np.zeros(0)
        return [], e, e, e, e, np.zeros(0, np.int8)
    return rec


def _name_uniform(names, key: int, salt: str) -> np.ndarray:
    """A uniform number in [0, 1) per name, stable across frames (so a timelapse is stable)."""
    return np.array(
        [zlib.crc32(f"{key}:{salt}:{n}".encode()) / 4294967296.0 for n in names], dtype=np.float64
    )


def _reporter_mask(names, key: int, fraction: float) -> np.ndarray:
    """Clonal reporter expression: a cell expresses when its sub-lineage is drawn."""
    if fraction <= 0:
        return np.zeros(len(names), bool)
    prefixes = [n[: min(len(n), 5)] for n in names]
    return _name_uniform(prefixes, key, "reporter") < fraction


def _resolve_pose(pose, geom: EmbryoGeometry, size, rng) -> Pose:
    if pose is None or (isinstance(pose, str) and pose == "default"):
        return default_pose(geom, size)
    if isinstance(pose, str) and pose == "random":
        return random_pose(geom, size, rng)
    if isinstance(pose, Pose):
        return pose
    raise DevolensValueError(f"pose must be 'default', 'random' or a Pose, not {pose!r}")


def render_nuclei_frame(
    table: pd.DataFrame,
    time: int,
    *,
    size: tuple[int, int] = (512, 752),
    seed: int = 0,
    rgb: bool = True,
    optics: OpticsParams | None = None,
    pose: Pose | str | None = "default",
    geometry: EmbryoGeometry | None = None,
    compress: bool = True,
    reporter_key: int | None = None,
    min_visible: float = 0.0,
    fingerprint: bytes | None = None,
    drop_slivers: bool = False,
) -> NucleiFrame:
    """Render one time point of a lineage table as a histone-GFP maximum projection.

    Parameters
    ----------
    table : DataFrame
        Tidy lineage table (``time``, ``cell``, ``x``, ``y`` pixels, ``z`` planes, ``size``
        diameter pixels); ``attrs["zscale"]`` (xy pixels per plane) is used when present. Rows of polar bodies
        (``polar1``, ``polar2``: no cells of the embryo, not counted) are not drawn.
    time : int
        Time point to render: one the table has (else an error naming those it has), its rows with finite ``x``,
        ``y``, ``z`` (else an error naming the column and the rows). A NaN ``size`` is unknown: the nucleus is drawn
        with the table's median size.
    size : (int, int)
        Frame height and width, pixels (default 512 x 752 like EPIC movies).
    seed : int
        Seed of everything random in this frame: optics (when not given), pose (when
        ``"random"``), texture and noise. The same seed gives the same frame.
    rgb : bool
        RGB image (green nuclei, weak red reporter) if true, else the green channel (H, W).
    optics : OpticsParams, optional
        Microscope parameters; drawn with :meth:`OpticsParams.sample` from the seed if None.
    pose : Pose, "default" or "random"
        Placement of the embryo: centred and horizontal, eggshell 80 % of the frame width
        ("default"), random rotation / mirror / scale / placement ("random"), or explicit.
    geometry : EmbryoGeometry, optional
        Pre-computed :func:`embryo_geometry` of the table (saves time in loops).
    compress : bool
        Apply the resolution loss (``optics.resample``) and JPEG round trip
        (``optics.jpeg_quality``) of an exported movie (lossy video artefacts).
    reporter_key : int, optional
        Which sub-lineages express the red reporter (default: derived from the seed).
    min_visible : float
        A nucleus with less than this fraction of its own footprint visible (the rest hidden
        behind nearer nuclei) gets no label (0 = label every nucleus with at least one
        visible pixel). The centroid table's ``visible`` column holds the fraction.
    drop_slivers : bool
        Label only the largest 8-connected visible piece of each nucleus: the pixels of a partly hidden
        nucleus that peek out apart from its main piece (often 1-2 px between nearer nuclei) become
        background, though the image still shows their light; ``area`` and ``visible`` count the main piece
        (``min_visible`` is then judged on it). Off by default (the labels as they always were).
    fingerprint : bytes, optional
        The table's :func:`~devolens.render.geometry.table_fingerprint`, when the caller renders many
        frames of one unchanged table (else computed here: about a millisecond a frame).

    Returns
    -------
    NucleiFrame

    Raises
    ------
    DevolensValueError
        A table or an option the renderer cannot take: among them a time point the table lacks, or rows at
        ``time`` without a finite position (:func:`check_time_point`).
    """
    h, w = check_frame(table, time, size, seed)
    if optics is not None and not isinstance(optics, OpticsParams):
        raise DevolensValueError(f"optics must be an OpticsParams (e.g. OpticsParams.sample(rng)) or None, got "
                                 f"{type(optics).__name__}")
    opt_rng, pose_rng, noise_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(3))
    if optics is None:
        optics = OpticsParams.sample(opt_rng)
    fp = fingerprint if fingerprint is not None else table_fingerprint(table)  # once for this frame's lookups
    check_time_point(table, time, fp)
    geom = geometry if geometry is not None else cached(table, "geometry", embryo_geometry, fp)
    pose = _resolve_pose(pose, geom, (h, w), pose_rng)
    key = int(seed) if reporter_key is None else int(reporter_key)

    names, tx, ty, tz, tsize, phase = _time_rows(table, time, fp)
    u, v, d = to_frame(geom, pose, tx, ty, tz)
    d = d * optics.near_side
    s = pose.scale
    depth_extent = max(geom.depth * s, 1.0)
    dn = np.clip(d / depth_extent + 0.5, 0.0, 1.0)  # 0 near .. 1 far
    radius = tsize / 2.0 * s * optics.radius_scale
    ref = geom.length * s / 500.0  # frame pixels per reference pixel
    sxy = optics.psf_xy * ref * (1.0 + optics.depth_blur * dn)
    sz = optics.psf_xy * ref * optics.psf_z_ratio
    ru = _name_uniform(names, key, "bright")
    bright_var = np.exp(optics.nucleus_cv * np.sqrt(2.0) * _erfinv(2 * ru - 1))
    brightness = optics.brightness * np.exp(-optics.attenuation * dn) * bright_var
    aspect = optics.aspect_min + (1 - optics.aspect_min) * _name_uniform(names, key, "aspect")
    # mitosis: condensed, elongated, brighter chromatin just before a division; small bright
    # daughters just after
    div, born = phase == 1, phase == 2
    radius = np.where(div, radius * 0.7, np.where(born, radius * 0.85, radius))
    aspect = np.where(div, aspect * 0.5, aspect)
    brightness = np.where(div, brightness * 1.5, np.where(born, brightness * 1.2, brightness))
    angle = np.pi * _name_uniform(names, key, "angle") + pose.angle
    reporter = _reporter_mask(names, key, optics.red_fraction) if rgb else np.zeros(len(names), bool)
    red = np.where(reporter, brightness * optics.red_level, 0.0)

    wobble = None
    if optics.irregularity > 0 and len(names):
        # smooth field (correlation ~ 0.4 nucleus radius) scaled to about +-irregularity
        corr = max(float(np.median(radius)) / 2.5, 1.0)
        wobble = texture_field((h, w), corr, noise_rng) * np.float32(optics.irregularity / 2.0)
    spr = render_sprites(
        (h, w), u, v, d, radius, brightness,
        aspect=aspect, angle=angle, sigma_xy=sxy, sigma_z=sz, red=red if reporter.any() else None,
        wobble=wobble,
    )

    # ground truth: compact labels 1..K in table order, drop (nearly) hidden nuclei
    n = len(names)
    if drop_slivers:
        from devolens.predict.postprocess import keep_largest_pieces

        spr.labels = keep_largest_pieces(spr.labels)
    area = np.bincount(spr.labels.ravel(), minlength=n + 1)[1:]
    share = area / np.maximum(spr.footprint, 1)  # visible fraction of each nucleus's own footprint
    visible = area > 0
    if min_visible > 0:
        visible &= share >= min_visible
    lut = np.zeros(n + 1, np.uint16)
    lut[1:][visible] = np.arange(1, int(visible.sum()) + 1, dtype=np.uint16)
    labels = lut[spr.labels]
    semantic = (labels > 0).astype(np.uint8)
    idx = np.flatnonzero(visible)
    label_x, label_y = _label_centres(spr.labels, n)
    centroids = pd.DataFrame(
        {
            "label": lut[idx + 1].astype(int),
            "cell": [names[i] for i in idx],
            "x": u[idx],
            "y": v[idx],
            "depth": d[idx],
            "radius": radius[idx],
            "area": area[idx].astype(int),
            "visible": np.round(share[idx], 4),
            "label_x": np.round(label_x[idx], 3),
            "label_y": np.round(label_y[idx], 3),
        }
    )

    # optics: texture, haze, background, noise, gamma, quantisation
    tex = texture_field((h, w), optics.texture_scale * max(ref, 0.3), noise_rng)
    tex_gain = np.clip(1.0 + np.float32(optics.texture_amp) * tex, 0.0, None)
    haze = _embryo_haze(geom, pose, (h, w), optics.haze, sxy_blur=6.0 * ref)
    green = optics.background + haze + spr.signal * tex_gain
    green_n = add_noise(green, optics.photons, optics.read_noise, noise_rng)
    stretch = 1.0
    if optics.autoscale > 0:  # display contrast stretch of an exported movie
        top = float(np.percentile(green_n[::3, ::3], 99.5))
        stretch = min(optics.autoscale / top, 4.0) if top > 1e-3 else 1.0
        green_n *= np.float32(stretch)
    green_f = finish_channel(green_n, optics.gamma)
    if rgb:
        red_sig = optics.red_background * (1.0 + 0.5 * spr.signal)
        if spr.red is not None:
            red_sig = red_sig + spr.red * tex_gain
        if optics.red_specks > 0:
            red_sig = red_sig + _specks((h, w), optics.red_specks, ref, noise_rng)
        red_n = add_noise(red_sig, optics.photons, optics.read_noise, noise_rng) * np.float32(stretch)
        red_f = finish_channel(red_n, optics.gamma)
        blue_f = finish_channel(
            optics.blue_level * green + noise_rng.standard_normal((h, w), dtype=np.float32) * optics.read_noise * 0.5,
            optics.gamma,
        )
        image = np.stack([quantize(red_f), quantize(green_f), quantize(blue_f)], axis=-1)
    else:
        image = quantize(green_f)
    if compress:
        image = jpeg_roundtrip(resample(image, optics.resample), optics.jpeg_quality)

    return NucleiFrame(
        image=image,
        labels=labels,
        semantic=semantic,
        centroids=centroids,
        counts=_population_counts(table, time, fp),
        time=int(time),
        optics=optics,
        pose=pose,
    )


def _label_centres(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (column, row; from 0 at the first pixel's centre) of the pixels of each label 1..``n`` of
    ``labels``, indexed from 0 (label 1 first); NaN for a label without pixels."""
    flat = labels.ravel()
    on = np.flatnonzero(flat)
    ids = flat[on]
    w = labels.shape[1]
    count = np.bincount(ids, minlength=n + 1)[1:].astype(np.float64)
    sx = np.bincount(ids, weights=(on % w).astype(np.float64), minlength=n + 1)[1:]
    sy = np.bincount(ids, weights=(on // w).astype(np.float64), minlength=n + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sx / count, sy / count


def _specks(shape, n: int, ref: float, rng: np.random.Generator) -> np.ndarray:
    """A few small blurred red dots (autofluorescent granules, debris), float32 image."""
    h, w = shape
    out = np.zeros((h, w), np.float32)
    for _ in range(n):
        r = float(rng.uniform(1.0, 4.0)) * max(ref, 0.3)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        half = int(np.ceil(3 * r)) + 1
        x0, x1 = max(int(cx) - half, 0), min(int(cx) + half + 1, w)
        y0, y1 = max(int(cy) - half, 0), min(int(cy) + half + 1, h)
        if x0 >= x1 or y0 >= y1:
            continue
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
        blob = np.float32(rng.uniform(0.15, 0.6)) * np.exp(-(dx * dx + dy * dy) / np.float32(2 * r * r))
        np.maximum(out[y0:y1, x0:x1], blob, out=out[y0:y1, x0:x1])
    return out


def _erfinv(x: np.ndarray) -> np.ndarray:
    from scipy.special import erfinv

    return erfinv(np.clip(x, -0.999999, 0.999999))


def _embryo_haze(geom: EmbryoGeometry, pose: Pose, shape, level: float, sxy_blur: float) -> np.ndarray | float:
    """Diffuse glow inside the projected eggshell ellipse (float32 image or 0)."""
    if level <= 0:
        return 0.0
    h, w = shape
    f = 4  # the haze is smooth: evaluate on a 4x coarser grid and interpolate
    hc, wc = (h + f - 1) // f + 1, (w + f - 1) // f + 1
    a = geom.length * pose.scale / 2 * 0.95
    b = geom.width * pose.scale / 2 * 0.95
    xx = (np.arange(wc, dtype=np.float32) * f - np.float32(pose.center[0]))[None, :]
    yy = (np.arange(hc, dtype=np.float32) * f - np.float32(pose.center[1]))[:, None]
    ca, sa = np.float32(np.cos(pose.angle)), np.float32(np.sin(pose.angle))
    p = (xx * ca + yy * sa) / np.float32(a)
    q = (yy * ca - xx * sa) / np.float32(b)
    r = np.sqrt(p * p + q * q)
    from scipy.special import erfc

    edge = np.float32(0.5) * erfc((r - 1.0) * np.float32(b / (np.sqrt(2.0) * max(sxy_blur, 1.0))))
    # brighter in the middle (more out-of-focus light through the thick part)
    coarse = (np.float32(level) * edge * (1.0 - 0.5 * np.clip(r, 0, 1) ** 2)).astype(np.float32)
    iy = np.arange(h, dtype=np.float32) / f
    ix = np.arange(w, dtype=np.float32) / f
    y0 = iy.astype(int)
    x0 = ix.astype(int)
    fy = (iy - y0)[:, None]
    fx = (ix - x0)[None, :]
    c00 = coarse[y0][:, x0]
    c01 = coarse[y0][:, x0 + 1]
    c10 = coarse[y0 + 1][:, x0]
    c11 = coarse[y0 + 1][:, x0 + 1]
    return (c00 * (1 - fx) + c01 * fx) * (1 - fy) + (c10 * (1 - fx) + c11 * fx) * fy
