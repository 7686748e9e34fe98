"""Where the embryo lies in the frame: its axes in table coordinates and a similarity pose.

The same table gives the same :class:`EmbryoGeometry` at every time point (it is measured
on all rows), so a timelapse rendered with one :class:`Pose` does not jitter.
"""

from __future__ import annotations

import hashlib
import pickle
import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

from devolens.errors import DevolensValueError

DEFAULT_ZSCALE = 5.7  # xy pixels per z plane when the table does not say (EPIC: 5.75)

__all__ = ["EmbryoGeometry", "Pose", "embryo_geometry", "default_pose", "random_pose", "to_frame"]


@dataclass(frozen=True)
class EmbryoGeometry:
    """Axes of the embryo in table coordinates.

    Attributes
    ----------
    cx, cy : float
        Centre, table pixels.
    cz : float
        Centre along the optical axis, table xy pixels (z planes x zscale).
    angle : float
        Direction of the long (anterior-posterior) axis, radians, in the table's x-y plane.
    length, width, depth : float
        Full extents of the eggshell along the long axis, the short axis and z, table pixels.
    zscale : float
        z plane spacing in xy pixels (``attrs["zscale"]``, else estimated from the nuclei:
        the embryo is about as deep as it is wide).
    """

    cx: float
    cy: float
    cz: float
    angle: float
    length: float
    width: float
    depth: float
    zscale: float


@dataclass(frozen=True)
class Pose:
    """Similarity transform from embryo axes to the frame, plus the display choices.

    Attributes
    ----------
    center : (float, float)
        Embryo centre in the frame, (x, y) pixels.
    angle : float
        Angle of the embryo's long axis in the frame, radians (0 = horizontal).
    scale : float
        Frame pixels per table pixel.
    flip : bool
        Mirror the embryo across its long axis.
    """

    center: tuple[float, float]
    angle: float
    scale: float
    flip: bool = False


#: the columns and ``attrs`` that the cached per-table data is derived from (see :func:`table_fingerprint`)
FINGERPRINT_COLUMNS = ("time", "cell", "x", "y", "z", "size", "embryo")
FINGERPRINT_ATTRS = ("zscale", "ellipse")

_CACHE: dict[tuple[int, str], tuple] = {}


def table_fingerprint(table: pd.DataFrame) -> bytes | None:
    """A digest of what the renderers derive from a table: the values, in row order, of those of its
    :data:`FINGERPRINT_COLUMNS` it has, their dtypes, and its :data:`FINGERPRINT_ATTRS`.

    Other columns, the index and other ``attrs`` (``source``, ...) do not count. Numeric columns are hashed as their
    bytes, the others (names) as their pickled values: about 1 ms for a 23,000-row EPIC table, against some 20 ms to
    derive the data. ``None`` when the table cannot be hashed (then nothing is cached for it).
    """
    try:
        attrs = table.attrs
        plain = pd.DataFrame(table, copy=False) if attrs else table  # no attrs deep copies
        cols = [c for c in FINGERPRINT_COLUMNS if c in plain.columns]
        digest = hashlib.sha1(usedforsecurity=False)  # a checksum of the content, not a security measure
        head = (len(plain), cols, [str(plain[c].dtype) for c in cols], *(attrs.get(k) for k in FINGERPRINT_ATTRS))
        digest.update(repr(head).encode())
        for c in cols:
            digest.update(_column_bytes(plain[c]))
        return digest.digest()
    except Exception:  # an odd table (duplicate or unhashable columns): computed afresh on every call
        return None


def _column_bytes(col: pd.Series):
    """The values of one column as bytes that differ whenever the values do."""
    if isinstance(col.dtype, np.dtype) and col.dtype.kind in "biuf":
        return np.ascontiguousarray(col.to_numpy())
    try:  # names: pickling the list is faster than hash_pandas_object (equal names that are one object pickle once)
        return pickle.dumps(col.to_numpy(object).tolist(), protocol=5)
    except Exception:
        return pd.util.hash_pandas_object(col, index=False).to_numpy()


def cached(table: pd.DataFrame, key: str, compute, fingerprint: bytes | None = None):
    """Memoise ``compute(table)`` per table object and content.

    An entry is keyed on ``(id(table), key)`` and holds a weak reference to the table and its
    :func:`table_fingerprint`; it is returned only while the reference still points at this very table (a table
    garbage-collected and a new one given its ``id()`` never gets the old entry) and the fingerprint is unchanged
    (a table edited in place, its values or the ``attrs`` the renderers read, is recomputed). Rendering many frames
    of one unchanged table reuses its geometry and populations at the price of one fingerprint per lookup: a caller
    making several lookups for one frame computes ``fingerprint`` once and passes it to each.
    """
    if fingerprint is None:
        fingerprint = table_fingerprint(table)
    if fingerprint is None:
        return compute(table)
    ident = (id(table), key)
    hit = _CACHE.get(ident)
    if hit is not None:
        ref, fp, value = hit
        if ref() is table and fp == fingerprint:
            return value
    value = compute(table)
    try:
        ref = weakref.ref(table)
    except TypeError:
        return value
    if ident not in _CACHE and len(_CACHE) >= 256:
        for k in [k for k, (r, _, _) in list(_CACHE.items()) if r() is None]:
            del _CACHE[k]
        if len(_CACHE) >= 256:
            _CACHE.clear()
    _CACHE[ident] = (ref, fingerprint, value)
    return value


def embryo_geometry(table: pd.DataFrame) -> EmbryoGeometry:
    """Measure the embryo's centre, long axis and extents from all rows of a tidy table.

    Exact copies of a row (a table saved twice) are measured once, as the renderers draw them and
    :func:`~devolens.lineage.populations.populations` counts them: a table with copies gives the geometry of the
    table without them, which :func:`~devolens.render.dataset.render_dataset` renders. The geometry depends on
    every row: a frame is rendered again, from its render.json record, only from the same whole table (a subset
    of its time points or cells places the embryo differently).

    Parameters
    ----------
    table : DataFrame
        Tidy table (``x``, ``y`` pixels, ``z`` planes, ``size`` pixels); ``attrs`` may hold
        ``zscale`` and ``ellipse`` (``maj``, ``min`` in pixels), used for the eggshell size.

    Returns
    -------
    EmbryoGeometry
    """
    from devolens.lineage.populations import drop_copies

    zscale = table.attrs.get("zscale") if hasattr(table, "attrs") else None
    plain = pd.DataFrame(table, copy=False) if table.attrs else table  # no attrs deep copies
    plain, _ = drop_copies(plain)  # a copied row is measured once (the same object when there are none)
    x = plain["x"].to_numpy(np.float64)
    y = plain["y"].to_numpy(np.float64)
    z_planes = plain["z"].to_numpy(np.float64)
    zscale = float(zscale) if zscale else _estimate_zscale(x, y, z_planes)
    z = z_planes * zscale
    size = plain["size"].to_numpy(np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    x, y, z, size = x[ok], y[ok], z[ok], size[ok]
    if len(x) == 0:  # the readers refuse such tables; a table built in Python, or a z scale that overflows z, not
        raise DevolensValueError("the table has no row with finite x, y and z (z in planes times the z scale "
                                 f"{zscale:g}): no embryo to place in the frame")
    size = size[np.isfinite(size) & (size > 0)]
    if len(size) == 0:
        size = np.array([max(float(np.ptp(x)) / 12.0, 4.0)])
    mx, my = float(x.mean()), float(y.mean())
    if len(x) >= 3:
        cov = np.cov(np.stack([x - mx, y - my]))
        evals, evecs = np.linalg.eigh(cov)
        major = evecs[:, int(np.argmax(evals))]
        angle = float(np.arctan2(major[1], major[0]))
    else:
        angle = 0.0
    ca, sa = np.cos(angle), np.sin(angle)
    p = (x - mx) * ca + (y - my) * sa
    q = -(x - mx) * sa + (y - my) * ca
    r = float(np.median(size)) / 2.0
    plo, phi = np.percentile(p, [0.5, 99.5])
    qlo, qhi = np.percentile(q, [0.5, 99.5])
    zlo, zhi = np.percentile(z, [0.5, 99.5])
    length = float(phi - plo) + 2 * r
    width = float(qhi - qlo) + 2 * r
    depth = float(zhi - zlo) + 2 * r
    cx = mx + ca * (plo + phi) / 2 - sa * (qlo + qhi) / 2
    cy = my + sa * (plo + phi) / 2 + ca * (qlo + qhi) / 2
    ell = table.attrs.get("ellipse") if hasattr(table, "attrs") else None
    if isinstance(ell, dict) and ell.get("maj") and ell.get("min"):
        # the eggshell measured by the microscope software is the better outline
        length = max(length, float(ell["maj"]) * 0.95)
        width = max(width, float(ell["min"]) * 0.95)
    # an embryo is never more than ~2.2x as long as wide; guard against sparse early tables
    width = max(width, length / 2.2)
    depth = max(depth, width * 0.6)
    return EmbryoGeometry(cx, cy, float((zlo + zhi) / 2), angle, length, width, depth, zscale)


def _estimate_zscale(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """z plane spacing (xy pixels) when the table does not say: the embryo is about as deep
    as it is wide, so scale the z spread of the nuclei to their spread along the short axis."""
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    x, y, z = x[ok], y[ok], z[ok]
    if len(x) < 10:
        return DEFAULT_ZSCALE
    cov = np.cov(np.stack([x - x.mean(), y - y.mean()]))
    short = float(np.sqrt(max(np.linalg.eigvalsh(cov)[0], 1e-9)))
    zsd = float(np.std(z))
    if zsd <= 1e-9:
        return DEFAULT_ZSCALE
    return float(np.clip(short / zsd, 0.25, 20.0))


def default_pose(geom: EmbryoGeometry, size: tuple[int, int], fill: float = 0.8) -> Pose:
    """Embryo centred and horizontal, its eggshell ``fill`` of the frame width long.

    With a 752x512 frame the eggshell is about 600 px long (and capped to ``fill`` of the
    height across), as in EPIC movies, whose tables are in those pixels (scale ~1).

    Parameters
    ----------
    geom : EmbryoGeometry
    size : (int, int)
        Frame height and width, pixels.
    fill : float
        Eggshell length / frame width (and the largest eggshell width / frame height).
    """
    h, w = size
    scale = min(fill * w / geom.length, fill * h / geom.width)
    return Pose(center=(w / 2.0, h / 2.0), angle=0.0, scale=float(scale), flip=False)


def random_pose(geom: EmbryoGeometry, size: tuple[int, int], rng: np.random.Generator) -> Pose:
    """Random rotation, mirror, scale (0.55 to 1.15 of the default scale) and placement.

    The embryo stays at least mostly inside the frame.
    """
    h, w = size
    base = default_pose(geom, size)
    scale = base.scale * float(rng.uniform(0.55, 1.15))
    angle = float(rng.uniform(-np.pi, np.pi)) if rng.random() < 0.7 else float(rng.normal(0, 0.15))
    half_l, half_w = geom.length * scale / 2, geom.width * scale / 2
    ext_x = abs(np.cos(angle)) * half_l + abs(np.sin(angle)) * half_w
    ext_y = abs(np.sin(angle)) * half_l + abs(np.cos(angle)) * half_w
    slack_x = max(w / 2 - ext_x * 0.85, 0.0)
    slack_y = max(h / 2 - ext_y * 0.85, 0.0)
    cx = w / 2 + float(rng.uniform(-slack_x, slack_x))
    cy = h / 2 + float(rng.uniform(-slack_y, slack_y))
    return Pose(center=(cx, cy), angle=angle, scale=float(scale), flip=bool(rng.random() < 0.5))


def to_frame(geom: EmbryoGeometry, pose: Pose, x: np.ndarray, y: np.ndarray, z: np.ndarray):
    """Map table coordinates to frame coordinates.

    Parameters
    ----------
    geom : EmbryoGeometry
    pose : Pose
    x, y : ndarray
        Table pixels.
    z : ndarray
        Table planes.

    Returns
    -------
    u, v, d : ndarray
        Frame column, frame row (pixels), and depth offset from the embryo centre along the
        optical axis (frame pixels; positive is farther when ``near_side`` is +1).
    """
    x = np.asarray(x, np.float64) - geom.cx
    y = np.asarray(y, np.float64) - geom.cy
    ca, sa = np.cos(geom.angle), np.sin(geom.angle)
    p = x * ca + y * sa
    q = -x * sa + y * ca
    if pose.flip:
        q = -q
    cb, sb = np.cos(pose.angle), np.sin(pose.angle)
    s = pose.scale
    u = pose.center[0] + s * (p * cb - q * sb)
    v = pose.center[1] + s * (p * sb + q * cb)
    d = (np.asarray(z, np.float64) * geom.zscale - geom.cz) * s
    return u, v, d
