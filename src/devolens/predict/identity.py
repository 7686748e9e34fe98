"""Cell identities from nucleus positions: founder and depth-1 names of every nucleus.

A point-set model looks at the whole cloud of nuclei of one time point, normalised to the
embryo's own axes, and names every nucleus at two depths of the Sulston scheme:

* depth 0 (``pred_founder``): ``AB``, ``MS``, ``E``, ``C``, ``D``, ``P`` (``P0``..``P4``),
  ``Z`` (``Z2``/``Z3``) and ``EMS`` (its own founder-level class);
* depth 1 (``pred_depth1``): the founder plus its first division letter (``ABa``, ``ABp``,
  ``MSa``, ``MSp``, ``Ea``, ``Ep``, ``Ca``, ``Cp``, ``Da``, ``Dp``, ...) or the founder itself for
  cells that have not divided yet (``AB``, ``MS``, ``P``, ``EMS``, ...).

Normalisation (:func:`embryo_frame`): per embryo, over all its nuclei at all time points of
the table, z is put in xy pixel units (``zscale`` from the table's attrs, else estimated
from the cloud's shape), the cloud is centred, rotated onto its principal axes and scaled by
the standard deviation along the long (anterior-posterior) axis. The sign of each axis is
fixed by the third moment (skewness) of the cloud along it: on the real embryos, the pooled
cloud is skewed towards the posterior, so the AP axis points posterior. The result is
invariant to a translation, rotation or uniform scaling of the input coordinates. The
third (shortest) axis gets negative skewness, which fixes the 180-degree turn about AP
(consistent on all 7 real embryos, but with a thin margin); the second axis completes a
right-handed frame.

The network (:mod:`devolens.models.identity_net`, or the engine's transformer) is trained
with small random rotations about the AP axis, tilts, scaling, jitter and dropped points.
With ``smooth="lineage"`` (default) the per-time-point predictions are then combined over
the time course: nuclei are linked into tracklets and a lineage tree, and belief
propagation lets each cell inherit its ancestors' and descendants' evidence.
"""

from __future__ import annotations

import itertools
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from devolens.errors import DevolensError, option
from devolens.io.tables import time_step
from devolens.lineage.names import parse_name

#: Columns the predictor needs in its input table.
REQUIRED_COLUMNS: tuple[str, ...] = ("embryo", "time", "x", "y", "z")
#: Ratio (z spread) / (minor xy spread) of the pooled nucleus cloud measured on the five
#: EPIC embryos whose zscale is known (0.67-0.81, mean 0.757): used to estimate zscale.
Z_SPREAD_RATIO: float = 0.757
#: Number of per-point input features (see :func:`point_features`).
N_FEATURES: int = 13
#: Founder names folded into one class.
_FOLD = {"P0": "P", "P1": "P", "P2": "P", "P3": "P", "P4": "P", "Z2": "Z", "Z3": "Z"}


# ----------------------------------------------------------------------------- labels
def identity_label(name: str, depth: int) -> str | None:
    """The identity class of a cell name at ``depth`` (0 = founder, 1 = one letter).

    ``P0``..``P4`` become ``"P"``, ``Z2``/``Z3`` become ``"Z"`` (with their letters kept at
    depth 1), ``EMS`` stays ``"EMS"``; other names are the compact name (founder plus the
    first ``depth`` division letters).

    Parameters
    ----------
    name : str
        A Sulston cell name.
    depth : int
        0 or more.

    Returns
    -------
    str or None
        ``None`` for names outside the Sulston scheme (unnamed cells).

    Examples
    --------
    >>> identity_label("ABalp", 1), identity_label("P3", 1), identity_label("Z2", 0)
    ('ABa', 'P', 'Z')
    """
    p = parse_name(name)
    if p is None:
        return None
    return _FOLD.get(p.founder, p.founder) + p.divisions[:depth]


def identity_labels(names: Sequence[str] | pd.Series, depth: int) -> pd.Series:
    """Vectorised :func:`identity_label` (``None`` for unnamed cells)."""
    s = names if isinstance(names, pd.Series) else pd.Series(list(names), dtype=object)
    uniq = pd.unique(s.to_numpy(dtype=object))
    mapping = {n: identity_label(n, depth) for n in uniq}
    return s.map(mapping)


def class_founder(label: str, founders: Sequence[str]) -> int:
    """Index in ``founders`` of the founder class of a depth-1 class (longest prefix).

    ``"Ea"`` -> ``"E"``, ``"EMS"`` -> ``"EMS"``, ``"Z"`` -> ``"Z"``.
    """
    best = -1
    for i, f in enumerate(founders):
        if label.startswith(f) and (best < 0 or len(f) > len(founders[best])):
            best = i
    if best < 0:
        raise DevolensError(f"depth-1 class {label!r} has no founder class")
    return best


# ----------------------------------------------------------------------------- normalisation
@dataclass(frozen=True)
class EmbryoFrame:
    """The embryo's own axes.

    Attributes
    ----------
    centre : ndarray (3,)
        Centre of the pooled cloud (x, y pixels; z in xy pixels).
    axes : ndarray (3, 3)
        Columns are the unit axes: AP (pointing posterior), then the two minor axes.
    length : float
        Standard deviation of the pooled cloud along the AP axis (xy pixels).
    zscale : float
        Plane spacing used, in xy pixels.
    skewness : (float, float)
        Skewness (E[q^3] / SD^3) of the pooled cloud along AP and the third axis, whose signs orient the frame (so
        >= 0 and <= 0): near zero, the orientation is close to a coin toss (:func:`frame_skewness`).
    """

    centre: np.ndarray
    axes: np.ndarray
    length: float
    zscale: float
    skewness: tuple[float, float] = (0.0, 0.0)

    def transform(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Map pixel/plane coordinates to the normalised frame, shape (n, 3), unitless."""
        p = np.column_stack([x, y, np.asarray(z, dtype=float) * self.zscale]).astype(float)
        return (p - self.centre) @ self.axes / self.length


def estimate_zscale(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Estimate the z plane spacing (in xy pixels) from the shape of a nucleus cloud.

    Assumes the embryo's depth spread is :data:`Z_SPREAD_RATIO` times its minor in-plane
    spread, as on the EPIC embryos whose spacing is known.

    Parameters
    ----------
    x, y : ndarray
        Positions in pixels (pool several time points for a stable estimate).
    z : ndarray
        Positions in planes.

    Returns
    -------
    float
        Plane spacing in xy pixels (1.0 when the cloud is degenerate).
    """
    xy = np.column_stack([x, y]).astype(float)
    z = np.asarray(z, dtype=float)
    if len(xy) < 3 or np.std(z) <= 0:
        return 1.0
    xy = xy - xy.mean(0)
    _, vecs = np.linalg.eigh(np.cov(xy.T))
    minor = np.std(xy @ vecs[:, 0])
    return float(Z_SPREAD_RATIO * minor / np.std(z)) if minor > 0 else 1.0


def embryo_frame(x: np.ndarray, y: np.ndarray, z: np.ndarray, zscale: float | None = None) -> EmbryoFrame:
    """Principal axes of a nucleus cloud, signs fixed by skewness.

    AP (first axis) points to the positive skew (posterior on the real embryos), the third
    axis to the negative skew, the second completes a right-handed frame.

    Parameters
    ----------
    x, y : ndarray
        Positions in pixels, all nuclei of one embryo (any number of time points).
    z : ndarray
        Positions in planes.
    zscale : float, optional
        Plane spacing in xy pixels; estimated with :func:`estimate_zscale` when None.

    Returns
    -------
    EmbryoFrame
    """
    x, y, z = (np.asarray(a, dtype=float) for a in (x, y, z))
    if zscale is None or not np.isfinite(zscale) or zscale <= 0:
        zscale = estimate_zscale(x, y, z)
    p = np.column_stack([x, y, z * zscale])
    centre = p.mean(0)
    q = p - centre
    if len(q) >= 3:
        vals, vecs = np.linalg.eigh(np.cov(q.T))
        axes = vecs[:, ::-1].copy()
        sd = np.sqrt(np.maximum(vals[::-1], 0.0))
    else:  # too few points for a frame: keep the image axes
        axes = np.eye(3)
        sd = q.std(0) if len(q) else np.ones(3)
    proj = q @ axes
    m3 = np.mean(proj ** 3, axis=0) if len(proj) else np.zeros(3)
    if m3[0] < 0:  # AP: the pooled cloud is skewed towards the posterior
        axes[:, 0] = -axes[:, 0]
    if m3[2] > 0:  # the shortest axis: negative skew (fixes the 180-degree turn about AP)
        axes[:, 2] = -axes[:, 2]
    axes[:, 1] = np.cross(axes[:, 2], axes[:, 0])  # right-handed
    length = float(sd[0]) if sd[0] > 0 else 1.0
    return EmbryoFrame(centre=centre, axes=axes, length=length, zscale=float(zscale), skewness=_skewness(q @ axes))


def _skewness(proj: np.ndarray) -> tuple[float, float]:
    """E[q^3] / SD^3 of a centred cloud ``proj`` along its first and third axes (0 where it has no spread)."""
    if not len(proj):
        return 0.0, 0.0
    sd = proj.std(0)
    sk = np.where(sd > 0, np.mean(proj ** 3, axis=0) / np.maximum(sd, 1e-12) ** 3, 0.0)
    return round(float(sk[0]), 4), round(float(sk[2]), 4)


def point_features(coords: np.ndarray, size: np.ndarray, k: int = 6) -> np.ndarray:
    """Per-nucleus features of one time point's cloud.

    Parameters
    ----------
    coords : ndarray (n, 3)
        Normalised positions (:meth:`EmbryoFrame.transform`), AP first.
    size : ndarray (n,)
        Nucleus diameters divided by the frame length (NaN allowed: replaced by the median).
    k : int
        Neighbours for the local features.

    Returns
    -------
    ndarray (n, :data:`N_FEATURES`) float32
        x, y, z; size relative to the embryo; log of size relative to the cloud's median;
        log cell count (scaled); rank along AP (0..1); AP position relative to the cloud's
        mean; mean offset (3) and mean distance to the ``k`` nearest nuclei (x4); log size
        relative to those neighbours.
    """
    from scipy.spatial import cKDTree

    n = len(coords)
    size = np.asarray(size, dtype=float)
    if n == 0:
        return np.zeros((0, N_FEATURES), np.float32)
    if np.isnan(size).all():
        size = np.full(n, 0.1)
    size = np.where(np.isnan(size), np.nanmedian(size), size)
    size = np.maximum(size, 1e-3)
    med = np.median(size)
    rank = np.argsort(np.argsort(coords[:, 0], kind="stable"), kind="stable") / max(n - 1, 1)
    kk = min(k, n - 1)
    if kk >= 1:
        _, nb = cKDTree(coords).query(coords, k=kk + 1)
        nb = nb[:, 1:]
        off = coords[nb].mean(1) - coords
        dist = np.linalg.norm(coords[nb] - coords[:, None, :], axis=-1).mean(1)
        rel = np.log(size / size[nb].mean(1))
    else:
        off, dist, rel = np.zeros((n, 3)), np.zeros(n), np.zeros(n)
    f = np.column_stack([
        coords,
        size * 5.0,
        np.log(size / med),
        np.full(n, (np.log(n) - 4.0) / 1.5),
        rank,
        coords[:, 0] - coords[:, 0].mean(),
        off * 4.0,
        dist * 4.0,
        rel,
    ])
    return f.astype(np.float32)


#: the largest position or size (pixels, planes) a table may hold: far beyond any image, and small enough that the
#: embryo frame's moments (cubes of positions) stay finite
MAX_COORDINATE = 1e9


def check_columns(table: pd.DataFrame) -> None:
    """Raise a one-line :class:`DevolensError` naming the :data:`REQUIRED_COLUMNS` that ``table`` lacks.

    Of time, x, y and z, those no column stands for by any name a positions file's may have (``FRAME``,
    ``POSITION_X``...: :func:`tidy_positions` renames them) are named, and only they: ``embryo`` is optional there,
    as in a file (no embryo: one embryo), and is named only for a table holding all four under their tidy names
    (one no :func:`tidy_positions` has read)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if not missing:
        return
    from devolens.io.tables import _position_mapping

    found = set(_position_mapping([c for c in table.columns if isinstance(c, str)]).values())
    lacking = [c for c in ("time", "x", "y", "z") if c not in found]
    if lacking:  # (a table without embryo but with these is one embryo: tidy_positions says so)
        raise DevolensError(f"table lacks column(s) {', '.join(lacking)} (a tidy lineage table is expected: "
                            "time, x, y, z, optionally embryo and size)")
    raise DevolensError(f"table lacks column(s) {', '.join(missing)} (a tidy lineage table is expected)")


def tidy_positions(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its position columns named as :func:`devolens.io.tables.read_positions` names a file's.

    A table holding every :data:`REQUIRED_COLUMNS` comes back as it is, but for its sizes: without a ``size``
    column, a ``diameter`` (any case, ``SIZE`` too) is read as ``size`` and a ``radius`` (TrackMate's ``RADIUS``) as
    twice it, in a copy whose ``attrs["notes"]`` end in the note a file's reader gives (``column diameter read as
    size``; :meth:`IdentityPredictor.predict` issues it). Otherwise its columns are matched as a
    positions file's (:data:`devolens.io.tables.POSITION_ALIASES`: case-insensitive, TrackMate's ``FRAME``,
    ``POSITION_X``..., a unit written in): renamed to ``time, x, y, z`` (``size`` from ``diameter``, or twice
    TrackMate's ``RADIUS``), and a table without ``embryo`` is one embryo (named ``"embryo"``; a file's is named
    after the file). A table without time, x, y and z by any name comes back as it is (:func:`check_columns`
    names what is missing). A copy when anything changes; ``attrs`` (``zscale``) are kept, and x, y and z named in
    one physical unit (``x_um``, ``y_um``, ``z_um``) set ``zscale`` 1 as a file's do. Several columns for one of them
    (two ``POSITION_X``) are refused.
    """
    if all(c in table.columns for c in REQUIRED_COLUMNS):
        return _tidy_size(table)
    from devolens.io.tables import _position_columns

    from devolens.io.tables import _UNIT_IN_NAME, POSITION_ALIASES, _xyz_units

    found = _position_columns([c for c in table.columns if isinstance(c, str)])
    if found is None:
        return table
    # several columns for one coordinate (x and x_um, POSITION_X and x, two POSITION_X): which one is meant is not
    # for us to guess
    def names(col) -> set[str]:
        key = str(col).strip().lower()
        m = _UNIT_IN_NAME.match(key)
        return {key} | ({m.group(1)} if m and m.group(1) else set())

    twice = sorted(tidy for tidy in ("x", "y", "z")
                   if sum(bool(names(c) & set(POSITION_ALIASES[tidy])) for c in table.columns) > 1)
    if twice:
        raise DevolensError(f"the table has several columns for {', '.join(twice)}: keep one of each")
    mapping = {col: tidy for col, tidy in found.items() if col != tidy}
    out = table.rename(columns=mapping)
    if "radius" in found.values() and "radius" in out.columns and "size" not in out.columns:
        out["size"] = 2.0 * pd.to_numeric(out["radius"], errors="coerce")
        out = out.drop(columns="radius")
    if "embryo" not in out.columns:
        out.insert(0, "embryo", "embryo")  # (rename made a new frame: the user's table is untouched)
    out.attrs = dict(table.attrs)
    units = [_xyz_units(found).get(a) for a in ("x", "y", "z")]
    if all(units) and len(set(units)) == 1 and out.attrs.get("zscale") is None:  # x, y, z in one unit, as a file says
        out.attrs["zscale"] = 1.0
    return out


def _tidy_size(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (its positions named tidy) with its sizes read from a size column named otherwise when it has no
    ``size`` (:func:`devolens.io.tables._size_column`: ``diameter``, ``SIZE``; ``RADIUS``, doubled), as a file's
    reader reads them: a copy, its ``attrs["notes"]`` ending in the reader's note. Without such a column, ``table``
    itself (a size column left unread gave the names of a table without sizes, silently)."""
    from devolens.io.tables import _renamed_note, _size_column

    found = _size_column(list(table.columns))
    if not found:
        return table
    (col, tidy), = found.items()
    out = table.rename(columns={col: "size"})  # (a new frame: the user's table is untouched)
    if tidy == "radius":
        out["size"] = 2.0 * pd.to_numeric(out["size"], errors="coerce")
    out.attrs = {**table.attrs, "notes": [*(table.attrs.get("notes") or ()), _renamed_note(found)]}
    return out


def read_input(table: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """What :meth:`IdentityPredictor.predict` takes, as a DataFrame: a path read with
    :func:`devolens.io.tables.read_positions`; anything but a DataFrame or a path is refused, as is a DataFrame
    whose columns are no plain names (a MultiIndex: several header rows, a pivot) or that holds a column the
    predictor reads twice (two ``x``: which one is meant is not for us to guess), or that has no rows (as a file
    of the header only is)."""
    if isinstance(table, (str, os.PathLike)):
        from devolens.io.tables import read_positions

        table = read_positions(table)
    if not isinstance(table, pd.DataFrame):
        raise DevolensError(f"expected a table (pandas DataFrame or a file's path), got {type(table).__name__}")
    if isinstance(table.columns, pd.MultiIndex):  # (table["x"] would be a frame of columns: a KeyError further on)
        first = table.columns[0] if len(table.columns) else ()
        raise DevolensError(f"the table's columns have {table.columns.nlevels} levels (a MultiIndex, e.g. {first!r}: "
                            "several header rows, or a pivot?): give one name per column (embryo, time, x, y, z, "
                            "size), e.g. table.columns = table.columns.get_level_values(0)")
    read = {*REQUIRED_COLUMNS, "size", "cell"}
    twice = sorted({c for c in table.columns[table.columns.duplicated()] if isinstance(c, str) and c in read})
    if twice:
        raise DevolensError(f"the table has several columns named {', '.join(twice)}: keep one of each")
    if len(table) == 0:  # (a file of the header only is refused by read_positions, as "no data rows")
        raise DevolensError("no data rows (an empty table): nothing to name; give a table of one row per nucleus "
                            "(embryo, time, x, y, z, optionally size)")
    return table


def check_mirror(mirror: Any) -> bool:
    """``mirror`` when it is True or False (a numpy bool too); anything else is refused: ``"no"`` and ``"false"``
    are true values, and would name the mirror image."""
    if not isinstance(mirror, (bool, np.bool_)):
        raise DevolensError(f"{option('mirror')} must be True or False, got {mirror!r}")
    return bool(mirror)


def numeric_columns(table: pd.DataFrame, columns: Sequence[str] = ("time", "x", "y", "z", "size")
                    ) -> dict[str, np.ndarray]:
    """The ``columns`` of ``table`` it holds, each as float numbers (text that is no number: NaN), converted once for
    every reader of them (:func:`prepare_clouds`, :func:`stray_nuclei`, :meth:`IdentityPredictor.predict`'s checks)."""
    return {c: pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=float) for c in columns if c in table.columns}


#: rows a message about bad values lists (:func:`_bad_rows`); the rest are counted
SHOWN_ROWS = 5


def _bad_rows(column: pd.Series, bad: np.ndarray) -> str:
    """The rows of ``column`` where ``bad``, for a message: their positions and values as the user's table holds
    them (``rows 4, 9, 12: nan, nan, inf``), the first :data:`SHOWN_ROWS` of them, then ``...``: a table with many
    holes says so at once, not one per run."""
    at = np.flatnonzero(bad)
    shown = at[:SHOWN_ROWS]
    values = [repr(column.iloc[int(i):int(i) + 1].tolist()[0]) for i in shown]
    more = ", ..." if len(at) > len(shown) else ""
    return f"rows {', '.join(str(int(i)) for i in shown)}{more}: {', '.join(values)}{more}"


def check_zscale(zscale: Any) -> float | None:
    """``zscale`` (the z plane spacing in xy pixels) as a float, or None; anything but a finite number > 0 is refused
    with one message, for the library's argument and the command's ``--zscale`` alike (NaN, inf, 0, -1)."""
    if zscale is None:
        return None
    # numpy numbers are numbers; "5" and True are not (as check_diameter: the CLI parses its own text)
    if isinstance(zscale, (bool, np.bool_)) or not isinstance(zscale, (numbers.Real, np.integer, np.floating)):
        raise DevolensError(f"{option('zscale')} must be a number (the z plane spacing in xy pixels), got {zscale!r}")
    value = float(zscale)
    if not (np.isfinite(value) and value > 0):
        raise DevolensError(f"{option('zscale')} must be a finite number > 0 (the z plane spacing in xy pixels: the "
                            f"z step divided by the pixel size), got {value:g}")
    return value


def prepare_clouds(table: pd.DataFrame, zscale: float | None = None, mirror: bool = False,
                   numeric: dict[str, np.ndarray] | None = None, after: np.ndarray | None = None
                   ) -> list[dict[str, Any]]:
    """Split a tidy table into normalised clouds, one per (embryo, time).

    Parameters
    ----------
    table : DataFrame
        Tidy lineage table (``embryo, time, x, y, z`` and optionally ``size``, ``cell``).
    zscale : float, optional
        Plane spacing in xy pixels; default ``table.attrs["zscale"]``, else estimated per
        embryo.
    mirror : bool
        Read the embryo's mirror image (x reversed): for an embryo imaged mirrored relative to the training ones (an
        inverted instead of an upright microscope), whose depth-1 names the model otherwise mostly gets wrong.
    numeric : dict, optional
        ``table``'s columns as numbers, converted already (:func:`numeric_columns`); None: converted here.
    after : ndarray (n_rows,) bool, optional
        Rows after their embryo's annotation cliff (:func:`cliff_rows`): the embryo frame is read from the other
        rows only (placed in it as they are), so the rows before the cliff are read as in the table cut there.

    Returns
    -------
    list of dict
        Each with ``embryo``, ``time``, ``index`` (row positions in ``table``), ``coords``
        (n, 3) and ``size`` (n,) normalised, ``cell`` (names or None), ``after_cliff`` (its rows lie after the
        embryo's annotation cliff).
    """
    check_columns(table)
    mirror = check_mirror(mirror)
    if numeric is None:  # each column as numbers, converted once for both checks below and the clouds
        numeric = numeric_columns(table)
    for col in ("time", "x", "y", "z"):  # a user's table: name the column and the rows, not numpy's words
        values = numeric[col]
        bad = ~np.isfinite(values)
        if bad.sum() == 1:
            i = int(np.flatnonzero(bad)[0])
            raise DevolensError(f"column {col!r} must hold finite numbers; row {i} holds "
                                f"{table[col].iloc[i:i + 1].tolist()[0]!r}")
        if bad.any():
            raise DevolensError(f"column {col!r} must hold finite numbers; {int(bad.sum())} rows do not "
                                f"({_bad_rows(table[col], bad)})")
    for col in ("x", "y", "z", "size"):  # 1e308: a finite number whose cube (skewness) or spread overflows
        if col not in table.columns:
            continue
        values = numeric[col]  # (size: text that is no number reads as unknown, NaN, as a missing size)
        far = np.abs(values) > MAX_COORDINATE  # NaN sizes (unknown) pass
        if col == "size":
            far |= np.isinf(values)
        if far.any():
            i = int(np.flatnonzero(far)[0])
            what = (f"holds {table[col].iloc[i:i + 1].tolist()[0]!r} (row {i})" if far.sum() == 1 else
                    f"holds {int(far.sum())} values too large ({_bad_rows(table[col], far)})")
            raise DevolensError(f"column {col!r} {what}: positions and sizes beyond {MAX_COORDINATE:g} pixels or "
                                "planes are no microscope's (a unit error or a damaged table?)")
    zscale = check_zscale(zscale)
    if zscale is None:
        zscale = table.attrs.get("zscale") if table.attrs else None
    clouds: list[dict[str, Any]] = []
    pos = np.arange(len(table))
    emb = table["embryo"].astype(str).to_numpy()
    for name in pd.unique(emb):
        rows = pos[emb == name]
        sub = table.iloc[rows]
        x, y, z = (numeric[c][rows] for c in ("x", "y", "z"))
        if mirror:
            x = -x
        late = np.zeros(len(rows), bool) if after is None else np.asarray(after, bool)[rows]
        if late.any() and not late.all():  # the frame of the rows before the cliff, as the cut table reads it
            early = ~late
            frame = embryo_frame(x[early], y[early], z[early], zscale)
        else:
            frame = embryo_frame(x, y, z, zscale)
        coords = frame.transform(x, y, z)
        size = numeric["size"][rows] / frame.length if "size" in numeric else np.full(len(sub), np.nan)
        cells = sub["cell"].to_numpy(dtype=object) if "cell" in sub.columns else np.full(len(sub), None, dtype=object)
        times = sub["time"].to_numpy()
        if times.dtype == object:  # numbers held as text or mixed objects (a table built in Python): as numbers
            times = numeric["time"][rows]
        order = np.argsort(times, kind="stable")
        bounds = np.flatnonzero(np.diff(times[order])) + 1
        for grp in np.split(order, bounds):
            if len(grp) == 0:
                continue
            clouds.append({
                "embryo": str(name), "time": times[grp[0]].item(), "index": rows[grp],
                "coords": coords[grp], "size": size[grp], "cell": cells[grp], "skewness": frame.skewness,
                "zscale": frame.zscale, "after_cliff": bool(late[grp].any()),
            })
    return clouds


def input_scales(table: pd.DataFrame, zscale: float | None = None, rows: np.ndarray | None = None,
                 numeric: dict[str, np.ndarray] | None = None) -> dict[str, dict[str, Any]]:
    """Per embryo, the scales of its table set against its nucleus cloud, for :func:`input_notes`.

    A z scale given (``zscale``, else ``table.attrs["zscale"]``: a file's metadata) is set against the one the
    cloud's shape suggests (:func:`estimate_zscale`), and the nuclei's sizes against their spacing: a z plane
    spacing or a size column in the wrong unit changes the names without any other sign (:data:`ZSCALE_RANGE`,
    :data:`SIZE_SPACING_RANGE`).

    Parameters
    ----------
    table : DataFrame
        The table named (as :meth:`IdentityPredictor.predict` takes it: tidy, or a positions table's columns).
    zscale : float, optional
        The z plane spacing given (xy pixels); None: the table's own, if any.
    rows : ndarray (n_rows,) bool, optional
        The rows the model read (those with a prediction: no polar bodies, placeholders or strays); None: every row
        with a finite position.
    numeric : dict, optional
        The table's numeric columns as :func:`numeric_columns` converted them (the caller's: converted once).

    Returns
    -------
    dict
        embryo -> ``estimate`` (:func:`estimate_zscale` of its pooled cloud), ``largest`` (nuclei at its fullest
        time point), ``flat`` (z the same for every nucleus), ``zscale`` and ``by`` (``"given"`` or ``"table"``;
        absent when estimated), ``size_spacing`` (the median over its time points of at least
        :data:`SIZE_SPACING_CELLS` nuclei, at most :data:`SIZE_SPACING_TIMES` of them, of their median size over
        their median distance to the nearest other nucleus, z in xy pixels by the estimate; None without sizes or
        such time points) and ``size_time_points`` (how many time points it pooled).
    """
    from scipy.spatial import cKDTree

    table = tidy_positions(table)
    check_columns(table)
    zscale, by = check_zscale(zscale), "given"
    if zscale is None:  # the table's own (a file's metadata): as prepare_clouds reads it, if it is usable
        zscale, by = (table.attrs or {}).get("zscale"), "table"
        if zscale is not None and not (isinstance(zscale, numbers.Real) and np.isfinite(zscale) and zscale > 0):
            zscale = None
    numeric = numeric_columns(table) if numeric is None else numeric
    keep = np.isfinite(numeric["x"]) & np.isfinite(numeric["y"]) & np.isfinite(numeric["z"])
    keep &= np.isfinite(numeric["time"])
    if rows is not None:
        keep &= np.asarray(rows, bool)
    emb = table["embryo"].astype(str).to_numpy()
    size = numeric.get("size")
    found: dict[str, dict[str, Any]] = {}
    for name in pd.unique(emb[keep]):
        sel = np.flatnonzero(keep & (emb == name))
        x, y, z, t = (numeric[c][sel] for c in ("x", "y", "z", "time"))
        est = estimate_zscale(x, y, z)
        times, counts = np.unique(t, return_counts=True)
        entry: dict[str, Any] = {"estimate": est, "largest": int(counts.max()), "flat": bool(np.ptp(z) == 0)}
        if zscale is not None:
            entry.update(zscale=float(zscale), by=by)
        ratios = []
        if size is not None:
            p = np.column_stack([x, y, z * est])
            s = size[sel]
            full = times[counts >= SIZE_SPACING_CELLS]
            if len(full) > SIZE_SPACING_TIMES:  # evenly spaced: the median of a few dozen says the same, faster
                full = full[np.unique(np.linspace(0, len(full) - 1, SIZE_SPACING_TIMES).round().astype(int))]
            for when in full:
                at = t == when
                ok = at & np.isfinite(s) & (s > 0)
                if ok.sum() < SIZE_SPACING_CELLS // 2:  # sizes mostly unknown at this time point
                    continue
                d, _ = cKDTree(p[at]).query(p[at], k=2)
                spacing = np.median(d[:, 1])
                if spacing > 0:
                    ratios.append(float(np.median(s[ok]) / spacing))
        entry["size_spacing"] = float(np.median(ratios)) if ratios else None
        entry["size_time_points"] = len(ratios)
        found[str(name)] = entry
    return found


def frame_skewness(clouds: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Skewness of each embryo's pooled cloud along the AP and the third axis of its frame (:class:`EmbryoFrame`).

    :func:`embryo_frame` orients the embryo by the signs of these two moments, so the first is
    >= 0 and the second <= 0; near zero, the orientation (anterior/posterior, the 180-degree
    turn about AP) is close to a coin toss. On the 7 real training embryos, whole: AP 0.11-0.39,
    third axis -0.10 to -0.17.

    Parameters
    ----------
    clouds : list of dict
        :func:`prepare_clouds` output (normalised coordinates).

    Returns
    -------
    dict
        embryo -> (AP skewness, third-axis skewness), each E[q^3] / SD^3 of the pooled cloud.
    """
    return {c["embryo"]: c["skewness"] for c in clouds}  # as embryo_frame measured it, orienting the frame


#: Robust Mahalanobis distance (:func:`stray_nuclei`) beyond which a nucleus lies outside the space its embryo's
#: nuclei fill: at most 3.14 on the 7 real embryos (every row, all time points); a spot 150 px beyond the embryo 3.75
STRAY_DISTANCE: float = 3.5
#: ... and beyond this many times the 95th percentile of the embryo's distances (2.35-2.60 on the real embryos): a
#: cloud without an edge (points drawn from a normal distribution, as in tests) has no stray points, only a tail
STRAY_SPREAD: float = 1.5
#: Fewest rows of an embryo for the screen of :func:`stray_nuclei` (fewer: no screen)
STRAY_MIN_ROWS: int = 50
#: ... and fewest nuclei at its fullest time point: a cloud of a few cells has no shape to lie outside of (the first
#: 21 time points of a real embryo, up to 6 cells, had a named nucleus set aside as stray)
STRAY_MIN_CELLS: int = 24


def stray_nuclei(table: pd.DataFrame, xyz: np.ndarray | None = None) -> np.ndarray:
    """Rows far outside the space the rest of their embryo's nuclei fill (debris, a mis-tracked spot).

    The embryo frame (:func:`embryo_frame`) pools all nuclei of an embryo, and its moments follow a few far points:
    one unnamed spot per time point 300 pixels beyond an embryo turned its frame and took the founder accuracy from
    0.95 to 0.71, with high confidence. Per embryo (at least :data:`STRAY_MIN_ROWS` rows and
    :data:`STRAY_MIN_CELLS` nuclei at one time point), pooled over its time
    points (the eggshell does not move): the Mahalanobis distance of every row from the median, with the covariance
    of the nearest 95 % (three rounds), in x, y and z as given (the distance does not depend on the z scale); rows
    beyond :data:`STRAY_DISTANCE` and :data:`STRAY_SPREAD` times the 95th percentile of the distances are stray.

    ``xyz``: the x, y and z columns as numbers, ``(n_rows, 3)``, converted already (None: converted here).

    Returns
    -------
    ndarray (n_rows,) bool
        All False when a position is missing or out of range (:func:`prepare_clouds` names those).
    """
    out = np.zeros(len(table), bool)
    if not len(table) or not {"x", "y", "z"} <= set(table.columns):
        return out
    p = xyz if xyz is not None else np.column_stack(list(numeric_columns(table, ("x", "y", "z")).values()))
    if not np.isfinite(p).all() or (np.abs(p) > MAX_COORDINATE).any():
        return out
    emb = table["embryo"].astype(str).to_numpy() if "embryo" in table.columns else np.zeros(len(table), dtype=object)
    times = table["time"].to_numpy() if "time" in table.columns else None
    codes, names = pd.factorize(emb)
    for k in range(len(names)):
        rows = np.flatnonzero(codes == k)
        if len(rows) < STRAY_MIN_ROWS:
            continue
        if times is not None and pd.Series(times[rows]).value_counts().max() < STRAY_MIN_CELLS:
            continue
        q = p[rows]
        kept = q
        for _ in range(3):
            centre = np.median(np.ascontiguousarray(kept.T), axis=1)  # (x, y and z each a row: a faster partition)
            inv = np.linalg.pinv(np.cov((kept - centre).T))
            x = q - centre
            d = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", x, inv, x), 0.0))
            top = np.quantile(d, 0.95)
            kept = q[d <= top]
        out[rows] = d > max(STRAY_DISTANCE, STRAY_SPREAD * top)
    return out


#: Width of the band along each image edge of the table's nuclei (a share of their x or y range) that
#: :func:`edge_crowding` counts
EDGE_BAND: float = 0.03


def edge_crowding(x: np.ndarray, y: np.ndarray) -> tuple[str, float]:
    """The image edge (``"x min"``, ``"x max"``, ``"y min"``, ``"y max"``) that most nuclei crowd, and their share.

    A whole embryo is rounded: few of its nuclei, pooled over all time points, lie within :data:`EDGE_BAND` of the
    range of x (or y) from its smallest or largest value (at most 0.9 % on the 7 real embryos; 1.6 % on tables cut
    at 150 cells). An embryo cut off by the edge of the field of view has a flat side where nuclei pile up (2.2-6.7 %
    with 10-50 % of a real embryo cut away along x or y). The z stack is not counted: one real training embryo has
    4.8 % of its nuclei in its lowest planes.
    """
    best = ("x min", 0.0)
    for axis, v in (("x", np.asarray(x, dtype=float)), ("y", np.asarray(y, dtype=float))):
        if len(v) == 0:
            continue
        lo, hi = float(v.min()), float(v.max())
        band = EDGE_BAND * (hi - lo)
        if band <= 0:
            continue
        for side, share in (("min", np.mean(v <= lo + band)), ("max", np.mean(v >= hi - band))):
            if share > best[1]:
                best = (f"{axis} {side}", float(share))
    return best[0], round(best[1], 4)


def duplicate_nuclei(table: pd.DataFrame) -> np.ndarray | None:
    """Row position of the original of every row, or None when no nucleus is listed twice.

    A duplicate repeats an earlier row's embryo, time point and x, y, z (and its cell name when
    the table has names): the same nucleus listed twice, e.g. a table saved twice. Predictions
    use each time point's whole cloud (neighbours, cell count, ranks), so copies would change
    every nucleus's prediction; they are predicted once, on the cloud without them.

    Returns
    -------
    ndarray (n_rows,) int or None
        ``first[i]``: position of the first row equal to row ``i`` (``i`` itself for originals).
    """
    key = [c for c in ("embryo", "time", "x", "y", "z", "cell") if c in table.columns]
    dup = table.duplicated(subset=key, keep="first").to_numpy()
    if not dup.any():
        return None
    # groups numbered in order of first appearance, like the originals (the rows not duplicated)
    group = table.groupby(key, sort=False, dropna=False).ngroup().to_numpy()
    return np.flatnonzero(~dup)[group]


#: A gap between consecutive time points of an embryo larger than this many times the embryo's
#: time step (a typo such as time 1e9) cuts the lineage links (see :func:`time_breaks`).
GAP_FACTOR: float = 20.0


def time_breaks(clouds: list[dict[str, Any]], factor: float = GAP_FACTOR) -> list[tuple[str, int, int]]:
    """Gaps in an embryo's time points that are too long to link nuclei across.

    The lineage smoothing makes a nucleus that starts a tracklet the daughter of its nearest
    neighbour at the embryo's previous time point present, however long ago: one row with a
    mistyped time (``1e9``) became a "daughter" of a cell at the last real time point, and its
    one-nucleus cloud's guess then flowed up that cell's lineage and changed earlier time
    points' names. A gap longer than ``factor`` times the embryo's time step (:func:`_embryo_step`, as
    :func:`tracklets` links by) and more than one time point is a break: the time points on either side are
    smoothed separately. The time points before and after an annotation cliff (clouds' ``after_cliff``) are searched
    apart, as :func:`tracklets` links them.

    Returns
    -------
    list of (embryo, time before, time after)
    """
    out: list[tuple[str, int, int]] = []
    by_embryo: dict[tuple[str, bool], list[int]] = {}
    for c in clouds:
        by_embryo.setdefault((c["embryo"], bool(c.get("after_cliff"))), []).append(int(c["time"]))
    for (name, _), times in by_embryo.items():
        t = np.unique(np.asarray(times, dtype=np.int64))
        if len(t) < 2:
            continue
        gaps = np.diff(t)
        limit = max(factor * _embryo_step(t), 1.0)
        for i in np.flatnonzero(gaps > limit):
            out.append((name, int(t[i]), int(t[i + 1])))
    return out


def annotation_cliffs(table: pd.DataFrame) -> dict[str, Any]:
    """The first annotation cliff of each embryo of ``table``: where its count of nuclei falls for good (curation
    stopped), found as ``devolens lineage cliffs`` / ``populations`` / ``convert`` find it
    (:func:`devolens.lineage.cliffs.find_cliffs` with its defaults, on the embryo's rows; a table without names
    counts every row, as unnamed cells).

    The lineage smoothing would carry what it reads after the cliff (the few cells still annotated there, a part of
    the embryo) back up the lineage tree, and the embryo frame would pool them: on CD20240930_JIM762_L4 (345 -> 92
    cells after time 164), the founder accuracy of the rows up to time 164 was 0.890 with the whole table, 0.981 with
    the table cut there. :meth:`IdentityPredictor.predict` reads the rows after the cliff apart (:func:`cliff_rows`).

    A fall across a gap in the time points that :func:`time_breaks` cuts (a row at a mistyped time 1e9, which
    :func:`~devolens.lineage.cliffs.lone_times` also sets apart, on short tables too) is that break's, not a cliff:
    the smoothing does not cross it already, and identify notes it as a gap.

    Returns
    -------
    dict
        embryo -> :class:`~devolens.lineage.cliffs.Cliff` (its ``time``: the last good time point), for the embryos
        with a cliff; none for a table whose times are not whole numbers (the counts cannot be made).
    """
    from devolens.lineage.cliffs import find_cliffs

    if not len(table) or not {"embryo", "time"} <= set(table.columns):
        return {}
    out: dict[str, Any] = {}
    emb = table["embryo"].astype(str).to_numpy()
    for name in pd.unique(emb):
        sub = table.iloc[np.flatnonzero(emb == name)]
        if "cell" not in sub.columns:  # (a positions table: every row an unnamed cell, counted in the total)
            sub = sub.assign(cell="")
        try:
            cliffs = find_cliffs(sub).cliffs
        except DevolensError:  # times that are no whole numbers: no counts (prepare_clouds names what is wrong)
            continue
        if not cliffs:
            continue
        times = np.unique(numeric_columns(sub, ("time",))["time"])
        limit = max(GAP_FACTOR * _embryo_step(times), 1.0)  # (as time_breaks cuts)
        for c in cliffs:
            before = times[times < c.first_bad_time]
            if not len(before) or c.first_bad_time - before[-1] <= limit:
                out[str(name)] = c
                break
    return out


def cliff_rows(table: pd.DataFrame, cliffs: dict[str, Any], numeric: dict[str, np.ndarray] | None = None
               ) -> np.ndarray:
    """Rows of ``table`` after their embryo's annotation cliff (``cliffs``: :func:`annotation_cliffs`), bool
    (n_rows,). ``numeric``: ``table``'s columns as numbers (:func:`numeric_columns`), where the caller has them."""
    late = np.zeros(len(table), bool)
    if not cliffs:
        return late
    times = numeric["time"] if numeric is not None and "time" in numeric else numeric_columns(table, ("time",))["time"]
    emb = table["embryo"].astype(str).to_numpy()
    for name, cliff in cliffs.items():
        late |= (emb == name) & (times > cliff.time)
    return late


# ----------------------------------------------------------------------------- augmentation
def _rot(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def ap_rotation(angle: float, mirror: bool = False) -> np.ndarray:
    """Rotation (3x3) about the AP axis by ``angle`` radians, optionally mirroring axis 2."""
    r = _rot(0, angle)
    if mirror:
        r = r @ np.diag([1.0, 1.0, -1.0])
    return r


#: The four sign flips of the two minor axes: identity, the 180-degree turn about AP, then
#: the two mirrors (the frame is right-handed, so mirrors are optional augmentation).
FLIPS: tuple[np.ndarray, ...] = tuple(np.diag([1.0, a, b]) for a, b in ((1, 1), (-1, -1), (1, -1), (-1, 1)))


def views(tta: int, spread: float = 0.3) -> list[np.ndarray]:
    """Test-time views: ``tta`` rotations about the AP axis, evenly spaced over
    ``[-spread, spread]`` radians (``tta=1``: the frame itself)."""
    tta = max(int(tta), 1)
    if tta == 1:
        return [np.eye(3)]
    return [ap_rotation(a) for a in np.linspace(-spread, spread, tta)]


def augment_cloud(coords: np.ndarray, size: np.ndarray, rng: np.random.Generator,
                  ap_flip: float = 0.0, rotation: float = 0.35, mirror: bool = False, turn: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random geometric augmentation of one normalised cloud (training only).

    A 180-degree turn about AP with probability ``turn`` (and a mirror of a minor axis with
    probability 0.5 when ``mirror``), rotation about AP (normal, sd ``rotation``
    radians; ``> 3`` means uniform), AP tilt (sd 0.06 rad), uniform scale (0.9-1.1) and
    per-axis stretch (0.95-1.05), shift (sd 0.03), jitter (sd 0.015), size noise, and
    dropping up to 15 % of the points (p=0.5); AP flip with probability ``ap_flip``.

    Returns
    -------
    (coords, size, keep)
        Augmented coordinates and sizes of the kept points, and the kept indices.
    """
    n = len(coords)
    keep = np.arange(n)
    if n > 8 and rng.random() < 0.5:
        m = int(rng.uniform(0, 0.15) * n)
        if m:
            keep = np.sort(rng.choice(n, n - m, replace=False))
    c = coords[keep]
    s = size[keep]
    angle = rng.uniform(0, 2 * np.pi) if rotation > 3 else rng.normal(0, rotation)
    r = ap_rotation(angle) @ FLIPS[int(rng.random() < turn)]
    if mirror and rng.random() < 0.5:
        r = r @ FLIPS[2]
    r = _rot(1, rng.normal(0, 0.06)) @ _rot(2, rng.normal(0, 0.06)) @ r
    if rng.random() < ap_flip:
        r = np.diag([-1.0, -1.0, 1.0]) @ r
    c = c @ r.T
    c = c * rng.uniform(0.9, 1.1) * rng.uniform(0.95, 1.05, size=3)
    c = c + rng.normal(0, 0.03, size=3) + rng.normal(0, 0.015, size=c.shape)
    s = s * rng.uniform(0.9, 1.1) * np.exp(rng.normal(0, 0.05, size=len(s)))
    return c, s, keep


# ----------------------------------------------------------------------------- batching
def pad_batch(features: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack clouds of different sizes: points (B, P, F) float32 and mask (B, P) bool."""
    b = len(features)
    p = max(len(f) for f in features)
    x = np.zeros((b, p, N_FEATURES), np.float32)
    m = np.zeros((b, p), bool)
    for i, f in enumerate(features):
        x[i, : len(f)] = f
        m[i, : len(f)] = True
    return torch.from_numpy(x), torch.from_numpy(m)


def token_batches(sizes: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Group cloud indices (sorted by size) so that each padded batch holds <= max_tokens."""
    order = np.argsort(np.asarray(sizes), kind="stable")
    batches: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        n = max(int(sizes[i]), 1)
        if cur and n * (len(cur) + 1) > max_tokens:
            batches.append(cur)
            cur = []
        cur.append(int(i))
    if cur:
        batches.append(cur)
    return batches


def split_logits(logits: torch.Tensor, n_founder: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split the model's output into founder logits and depth-1 logits (last dim)."""
    return logits[..., :n_founder], logits[..., n_founder:]


def joint_depth1(p_founder: np.ndarray, p_depth1: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Depth-1 probabilities that also use the founder head: the mean of the depth-1 head
    and the founder head times the depth-1 head's share within each founder."""
    agg = np.zeros_like(p_founder)
    np.add.at(agg.T, parent, p_depth1.T)
    share = p_depth1 / np.maximum(agg[:, parent], 1e-12)
    return 0.5 * (p_depth1 + p_founder[:, parent] * share)


def combine_probabilities(p_founder: np.ndarray, p_depth1: np.ndarray, parent: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consistent founder / depth-1 decisions from the two heads.

    Parameters
    ----------
    p_founder : ndarray (n, F)
        Founder probabilities.
    p_depth1 : ndarray (n, K)
        Depth-1 probabilities.
    parent : ndarray (K,) int
        Founder index of each depth-1 class.

    Returns
    -------
    (founder, depth1, confidence)
        Founder index (argmax of the mean of the founder head and the depth-1 head summed
        per founder), depth-1 index (best class within that founder) and the confidence
        (probability of the founder times the depth-1 class's share within it).
    """
    agg = np.zeros_like(p_founder)
    np.add.at(agg.T, parent, p_depth1.T)
    pf = 0.5 * (p_founder + agg)
    f = pf.argmax(1)
    within = np.where(parent[None, :] == f[:, None], p_depth1, -1.0)
    d = within.argmax(1)
    share = p_depth1[np.arange(len(d)), d] / np.maximum(agg[np.arange(len(f)), f], 1e-12)
    conf = pf[np.arange(len(f)), f] * np.clip(share, 0.0, 1.0)
    return f, d, conf


# ----------------------------------------------------------------------------- tracklets
#: An embryo's consecutive time points are linked when they are at most this many of its regular time steps apart
#: (:func:`_embryo_step`): 1 for a table numbered 1, 2, 3..., 90 for one in seconds at 90 s, 3 for 1, 4, 7...
STEP_TOLERANCE: float = 1.5
#: Share of an embryo's nuclei that would be linked across a one-time-point gap (absent at one time point, near the
#: same place before and after) above which :func:`tracklets` makes those links. Measured with collisions untangled
#: (:func:`_untangle`): 0.000-0.010 % of the rows of the 7 real embryos, whole; every 2nd time point 0.000-0.070 %,
#: every 3rd 0.000-0.095 % (where not sparse); 0.067-0.102 % with 0.1 % of their rows removed at random, 0.135-0.190 %
#: with 0.2 %, 1.4-1.7 % with 2 % (3 draws each). Untangled, a table's collisions no longer look like missing nuclei
#: (without it: whole 0.006-0.080 %, every 2nd up to 0.43 %, every 3rd up to 0.53 %, so that identify said nuclei were
#: missing from evenly subsampled tables). Below it, the tracklets are those of a complete table, exactly.
GAP_LINK_SHARE: float = 0.0012
#: ... and above this many (a small table's few chance near-misses are no missing nuclei)
GAP_LINK_MIN: int = 5
#: Median (over an embryo's consecutive time points) of the median ratio of a nucleus's distance to the nearest
#: nucleus of the previous time point to its distance to the nearest of its own (:func:`motion_ratio`) above which
#: nuclei move too far between time points for nearest-neighbour tracklets: 0.12-0.20 on the 7 real embryos (EPIC
#: 90 s, AceTree 60 s); every 2nd time point 0.18-0.28, every 3rd 0.23-0.36, every 4th 0.29-0.45.
SPARSE_MOTION: float = 0.3
#: Most pairs of consecutive time points :func:`motion_ratio` measures, evenly spaced over the embryo's (all of them
#: in a table of up to 51 time points; a whole real one has 140-360): the median over them moved by at most 0.007 from
#: that over every pair on the 7 real embryos (whole, in seconds, every 2nd, 3rd or 4th time point, 2 % or 10 % of
#: their nuclei removed, debris), and measuring every pair took a third of the time of :func:`tracklets` (L3).
MOTION_PAIRS: int = 50
#: ... and within this of :data:`SPARSE_MOTION`, :func:`tracklets` measures every pair: what is sparse stays as every
#: pair says (every 4th time point of the AceTree embryo: 0.3015 over every pair, 0.3005 over 50)
MOTION_MARGIN: float = 0.02


def _embryo_step(times: Sequence[float] | np.ndarray) -> float:
    """An embryo's time step, as the readers tell a table's (:func:`devolens.io.tables.time_step`, one rule):
    a table in seconds (0, 90, 180...) has step 90, one that keeps every third time point (1, 4, 7...) step 3,
    whatever time points it lacks. Without a regular step (acquisition times in seconds, 89-97 apart; two time
    points) the median difference (``tolerant``: the readers say 1 there), so that such a table still links."""
    return float(time_step(times, tolerant=True))


def _kd_trees(cs: list[dict[str, Any]]) -> list[Any]:
    """A k-d tree of each cloud of ``cs`` (None for an empty one), built once for :func:`_nearest_back` (the cloud
    before) and :func:`motion_ratio` (the cloud itself)."""
    from scipy.spatial import cKDTree

    return [cKDTree(c["coords"]) if len(c["coords"]) else None for c in cs]


def _nearest_back(cs: list[dict[str, Any]], trees: list | None = None
                  ) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """For each cloud of ``cs`` (one embryo's, sorted by time), the distance and index of each of its nuclei's nearest
    nucleus in the cloud before it (None for the first cloud and where either is empty): the one query that
    :func:`motion_ratio` and both passes of :func:`_link_embryo` read. ``trees``: :func:`_kd_trees` of ``cs``, where
    the caller has them."""
    if trees is None:
        trees = _kd_trees(cs)
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None]
    for tree, c in zip(trees, cs[1:]):
        out.append(tree.query(c["coords"], k=1) if tree is not None and len(c["coords"]) else None)
    return out


def motion_ratio(clouds: list[dict[str, Any]], step: float | None = None, min_points: int = 20,
                 nearest: list | None = None, trees: list | None = None, pairs: int | None = MOTION_PAIRS) -> float:
    """How far an embryo's nuclei move between consecutive time points, relative to their spacing.

    For each pair of consecutive time points (at most :data:`STEP_TOLERANCE` steps apart, both with ``min_points``
    nuclei or more: the spacing of a few nuclei says little; at most ``pairs`` of them, evenly spaced), the median
    over the later cloud's nuclei of the distance to the nearest nucleus of the earlier cloud divided by the distance
    to the nearest other nucleus of its own cloud; then the median over the pairs (0.0 without such pairs). Small
    (0.12-0.20 on the real embryos at 60-90 s): each nucleus's nearest neighbour a time point earlier is, nearly
    always, itself; above :data:`SPARSE_MOTION` the nearest-neighbour links of :func:`tracklets` often join two
    cells.

    Parameters
    ----------
    clouds : list of dict
        One embryo's :func:`prepare_clouds` output (normalised coordinates).
    step : float, optional
        The embryo's time step (default :func:`_embryo_step` of the clouds' times).
    nearest, trees : list, optional
        :func:`_nearest_back` and :func:`_kd_trees` of the clouds sorted by time, where the caller has them.
    pairs : int or None
        Most pairs measured (:data:`MOTION_PAIRS`); None: all.
    """
    cs = sorted(clouds, key=lambda c: c["time"])
    if step is None:
        step = _embryo_step([c["time"] for c in cs])
    if trees is None:
        trees = _kd_trees(cs)
    if nearest is None:
        nearest = _nearest_back(cs, trees)
    used = [i for i, (p, c) in enumerate(zip(cs, cs[1:]), 1)
            if min(len(p["coords"]), len(c["coords"])) >= max(min_points, 1)
            and c["time"] - p["time"] <= STEP_TOLERANCE * step]
    if pairs is not None and len(used) > pairs:
        used = [used[j] for j in np.unique(np.linspace(0, len(used) - 1, max(int(pairs), 1)).round().astype(int))]
    ratios = []
    for i in used:
        c = cs[i]
        back = nearest[i][0]
        own, _ = trees[i].query(c["coords"], k=2)
        spacing = own[:, 1]
        ok = spacing > 0
        if ok.any():
            ratios.append(float(np.median(back[ok] / spacing[ok])))
    return float(np.median(ratios)) if ratios else 0.0


def tracklets(clouds: list[dict[str, Any]], max_step: float = 0.5, max_link: float = 1.0,
              return_parents: bool = False, breaks: Sequence[tuple[str, int, int]] = (),
              report: dict[str, Any] | None = None):
    """Group nuclei into tracklets (stretches of one cell's life) by nearest-neighbour links.

    Each nucleus is linked to the nearest nucleus of the previous time point of its
    embryo (normalised coordinates), when that time point is at most :data:`STEP_TOLERANCE` of the embryo's regular
    time steps earlier (:func:`_embryo_step`: a table in seconds or one that keeps every third time point links as one
    numbered 1, 2, 3... does). A link is kept when the previous nucleus has exactly
    one such successor (no division, no merge) and is closer than ``max_step`` (in units
    of the embryo length SD); chains of kept links form a tracklet. A cell keeps its
    identity within a tracklet, so predictions can be pooled over it. A tracklet that
    starts after the embryo's first time point gets as *parent* the tracklet of its
    nucleus's nearest neighbour at the previous time point (its mother after a division)
    when closer than ``max_link``.

    The time points after an embryo's annotation cliff (clouds' ``after_cliff``, :func:`cliff_rows`) are linked
    apart from those before it, as another embryo's would be: no link crosses the cliff, and the part after it
    decides nothing of the part before (its step, motion and gap links are its own, and not reported).

    Collisions are untangled (:func:`_untangle`): a nucleus nearer its neighbour's nucleus of the time point before
    than its own took the neighbour's link, cut both tracklets and left its own without a successor (P4 of
    CD20241010_JIM767_25_L2 at t=70, whose daughters Z2 and Z3 were then named Ep); the nucleus so left without a
    successor takes back the nearest of the two. Held out (one run of the recipe's fold models, 7 embryos), with
    :func:`transition_matrix`'s equal self-transitions: founder / depth-1 0.944 / 0.886 -> 0.954 / 0.893.

    Two departures, each decided per embryo:

    * missing nuclei: a nucleus absent from one time point used to end its tracklet, and its next nucleus became the
      "daughter" of a wrong neighbour (whose own link it broke too): held out, 2 % of the nuclei removed at random
      took founder / depth-1 from 0.962 / 0.903 to 0.889 / 0.773, 10 % below no smoothing. A nucleus closer to a tracklet that ended without a successor two time
      points earlier than to any nucleus one time point earlier (the only one to pick that tracklet, within
      ``max_step``) continues it. These links are made only when more than :data:`GAP_LINK_SHARE` of the embryo's
      nuclei (and more than :data:`GAP_LINK_MIN`) get one (then without untangling: the tracklets of missing nuclei
      end for real), so the tracklets of a complete table are untouched by them, nor does one that keeps every 2nd
      or 3rd time point get them (its collisions, more frequent, are untangled);
    * sparse time sampling: when nuclei move far between time points (:func:`motion_ratio` above
      :data:`SPARSE_MOTION`, over :data:`MOTION_PAIRS` pairs of time points, or every pair when within
      :data:`MOTION_MARGIN` of it; e.g. every third time point of a 90 s movie), nearest-neighbour tracklets join
      different cells (the shipped model on the 7 real embryos so sampled: founder accuracy below no smoothing on 4
      of 7); then every nucleus is its own tracklet, its parent its nearest neighbour a time point earlier (above no
      smoothing on 7 of 7; held out, with the benchmark's fold models, every third time point: founder / depth-1
      0.900 / 0.796 with this rule, 0.859 / 0.743 without smoothing).

    Parameters
    ----------
    clouds : list of dict
        From :func:`prepare_clouds` (``embryo``, ``time``, ``index``, ``coords``).
    max_step, max_link : float
        Largest link length within a tracklet / to a parent, in embryo-length units.
    return_parents : bool
        Also return the parent of every tracklet.
    breaks : sequence of (embryo, time before, time after)
        Gaps not to link across (:func:`time_breaks`): the time point after a gap starts afresh.
    report : dict, optional
        Filled with what was found, per embryo: ``step`` (:func:`_embryo_step`), ``motion`` (:func:`motion_ratio`),
        ``sparse`` (bool), ``gap_links`` (nuclei linked across a one-time-point gap; 0 when not made) and
        ``per_nucleus`` (tracklets of two or more nuclei per nucleus of the embryo's largest time point: 1.9-2.3 on
        the real embryos (2.0-2.5 before collisions were untangled), 3.2-3.6 with 10 % of their nuclei removed at
        random, 5.6-6.4 with 20 % (the EPIC ones; the AceTree one 6.3 and 16.0)).

    Returns
    -------
    ndarray (n_rows,) int
        Tracklet id of every row (indexed like the table the clouds came from); ids grow
        with the tracklet's start time.
    ndarray (n_tracklets,) int
        Only with ``return_parents``: parent tracklet id, -1 for none (parent < child).
    """
    size = max((int(c["index"].max()) + 1 for c in clouds if len(c["index"])), default=0)
    label = np.full(size, -1, dtype=np.int64)
    parents: list[int] = []
    # an embryo's time points after its annotation cliff (clouds' after_cliff) are linked apart from those before
    # it, as another embryo's: nothing links across the cliff, and they decide nothing of the part before it
    by_embryo: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for c in sorted(clouds, key=lambda c: (c["embryo"], bool(c.get("after_cliff")), c["time"])):
        by_embryo.setdefault((c["embryo"], bool(c.get("after_cliff"))), []).append(c)
    for (embryo, late), cs in by_embryo.items():
        step = _embryo_step([c["time"] for c in cs])
        trees = _kd_trees(cs)
        nearest = _nearest_back(cs, trees)
        motion = motion_ratio(cs, step, nearest=nearest, trees=trees)
        if abs(motion - SPARSE_MOTION) < MOTION_MARGIN:  # near the line: every pair decides
            motion = motion_ratio(cs, step, nearest=nearest, trees=trees, pairs=None)
        sparse = motion > SPARSE_MOTION
        cut = {int(after) for e, _, after in breaks if e == embryo}
        rows = sum(len(c["index"]) for c in cs)
        # first pass: collisions untangled, links across one-time-point gaps made where they fit
        links = _link_embryo(cs, nearest, step, cut, max_step, max_link, label, len(parents), sparse, gaps=not sparse,
                             untangle=True)
        if links[2] > max(GAP_LINK_SHARE * rows, GAP_LINK_MIN):
            # missing nuclei: their tracklets end for real, and untangling would hand them a neighbour's daughter
            # (held out, 2 % of the nuclei removed at random: founder / depth-1 0.934 / 0.864 without it, 0.905 /
            # 0.830 with it): linked across the gaps, not untangled (as before untangling was made)
            links = _link_embryo(cs, nearest, step, cut, max_step, max_link, label, len(parents), sparse, gaps=True,
                                 untangle=False)
        elif links[2] > 0:  # a complete table: no gap links at all (none made: the first pass linked as this would)
            links = _link_embryo(cs, nearest, step, cut, max_step, max_link, label, len(parents), sparse, gaps=False,
                                 untangle=True)
        ids, par, n_gap = links  # (label holds ids already: _link_embryo writes it)
        parents.extend(par)
        if report is not None and not late:  # (what is found after a cliff is not the embryo's)
            largest = max((len(c["index"]) for c in cs), default=0)
            lengths = np.unique(np.concatenate(ids), return_counts=True)[1] if ids else np.zeros(0, int)
            n_tracks = int(np.sum(lengths >= 2))  # (a lone spot, e.g. debris, is no broken track)
            report[embryo] = {"step": step, "motion": round(motion, 4), "sparse": bool(sparse), "gap_links": n_gap,
                              "per_nucleus": round(n_tracks / largest, 3) if largest else 0.0}
    if return_parents:
        return label, np.asarray(parents, dtype=np.int64)
    return label


def _link_embryo(cs: list[dict[str, Any]], nearest: list, step: float, cut: set[int], max_step: float,
                 max_link: float, label: np.ndarray, first_id: int, chains: bool, gaps: bool,
                 untangle: bool = False) -> tuple[list[np.ndarray], list[int], int]:
    """:func:`tracklets` of one embryo's clouds ``cs`` (sorted by time; ``nearest``: their :func:`_nearest_back`): the
    tracklet ids of each cloud's nuclei (from ``first_id``), the parent of each new tracklet and the number of links
    made across a one-time-point gap.
    ``label`` (row -> tracklet) is written as it goes (earlier clouds' ids are read from it); ``chains``: no
    tracklet links (sparse time sampling), only parents; ``untangle``: collisions undone (:func:`_untangle`; not with
    ``chains``)."""
    from scipy.spatial import cKDTree

    ids_out: list[np.ndarray] = []
    parents: list[int] = []
    next_id = first_id
    n_gap = 0
    prev = before = None  # the previous cloud and the one before it
    ended = None  # nuclei of `prev`'s previous cloud (`before`) that no nucleus of `prev` picked: tracklets that ended
    for k, c in enumerate(cs):
        idx = c["index"]
        ids = np.full(len(idx), -1, dtype=np.int64)
        par = np.full(len(idx), -1, dtype=np.int64)
        if int(c["time"]) in cut:
            prev = before = ended = None
        p = prev
        chosen = None
        if p is not None and len(p["coords"]) and len(idx):
            dist, nn = nearest[k]  # (p is cs[k - 1]: a cut leaves no p)
            across = np.zeros(len(idx), bool)
            if (gaps and ended is not None and ended.any() and before is not None
                    and c["time"] - before["time"] <= (1 + STEP_TOLERANCE) * step):
                # a nucleus missing from `p`: its next nucleus is closer to where its tracklet ended than to any
                # nucleus of `p` (whose nearest it would otherwise have taken, breaking that one's link too)
                ends = np.flatnonzero(ended)
                d2, n2 = cKDTree(before["coords"][ends]).query(c["coords"], k=1)
                across = (d2 < dist) & (d2 <= max_step)
                takers = np.bincount(n2[across], minlength=len(ends))
                across &= takers[n2] == 1
                ids[across] = label[before["index"][ends[n2[across]]]]
                n_gap += int(across.sum())
            chosen = np.bincount(nn[~across], minlength=len(p["coords"]))
            if untangle and not chains and c["time"] - p["time"] <= STEP_TOLERANCE * step:
                dist, nn, chosen = _untangle(p["coords"], c["coords"], dist, nn, chosen, across, max_step)
            if not chains and c["time"] - p["time"] <= STEP_TOLERANCE * step:
                ok = (chosen[nn] == 1) & (dist <= max_step) & ~across
                ids[ok] = label[p["index"][nn[ok]]]
            near = (dist <= max_link) & ~across
            par[near] = label[p["index"][nn[near]]]
        fresh = ids < 0
        ids[fresh] = np.arange(next_id, next_id + int(fresh.sum()))
        parents.extend(par[fresh].tolist())
        next_id += int(fresh.sum())
        label[idx] = ids
        ids_out.append(ids)
        ended = chosen == 0 if chosen is not None else None
        before, prev = p, c
    return ids_out, parents, n_gap


def _untangle(prev: np.ndarray, cur: np.ndarray, dist: np.ndarray, nn: np.ndarray, chosen: np.ndarray,
              across: np.ndarray, max_step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undo collisions of nearest-neighbour links between two consecutive time points: a nucleus (``cur``) whose
    nearest nucleus of the time point before (``prev``) is its neighbour's, not its own, took that neighbour (now
    picked twice: both links cut, as at a division) and left its own nucleus without a successor (its tracklet ends),
    and became the "daughter" of the neighbour.

    On CD20241010_JIM767_25_L2, P4 at t=70 lies 0.147 (embryo-length units) from Epl at t=69 and 0.178 from P4 at
    t=69 (Epl moved 0.25 that step): P4's tracklet ended at 69, its last 3 time points became a daughter of Epl's,
    and Z2/Z3 granddaughters of it, named Ep by the lineage tree at 0.98-0.99. On the 7 real embryos, 394 of the
    229k links of a nucleus to the time point before went so to a neighbour while its own nucleus was left without a
    successor (1102 links to another cell than the nucleus's own or its mother, by the names).

    Each nucleus of ``prev`` left without a successor (``chosen`` 0) takes its nearest nucleus of ``cur`` among those
    whose pick was shared (``chosen`` of their pick 2 or more; not ``across``), within ``max_step``, nearest first,
    one each, and each shared pick keeping at least one: 383 of the 394 made right, 93 right ones made wrong (812
    wrong links in all). Returns ``dist``, ``nn`` and ``chosen`` so amended (copies; the inputs are kept).
    """
    from scipy.spatial import cKDTree

    ends = np.flatnonzero(chosen == 0)
    cand = np.flatnonzero((chosen[nn] >= 2) & ~across)
    if not len(ends) or not len(cand):
        return dist, nn, chosen
    d, j = cKDTree(cur[cand]).query(prev[ends], k=1)
    left = chosen.copy()
    taken: set[int] = set()
    fix: list[int] = []
    for i in np.flatnonzero(d <= max_step)[np.argsort(d[d <= max_step], kind="stable")]:
        x = int(cand[j[i]])
        if x in taken or left[nn[x]] < 2:  # (one end each; the shared pick keeps a successor)
            continue
        taken.add(x)
        left[nn[x]] -= 1
        fix.append(int(i))
    if not fix:
        return dist, nn, chosen
    dist, nn = dist.copy(), nn.copy()
    x = cand[j[fix]]
    nn[x] = ends[fix]
    dist[x] = d[fix]
    return dist, nn, np.bincount(nn[~across], minlength=len(prev))


def pool_over_tracklets(prob: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """Mean of the rows' probabilities over each tracklet (same shape as ``prob``)."""
    _, inv = np.unique(tracks, return_inverse=True)
    sums = np.zeros((inv.max() + 1, prob.shape[1]))
    np.add.at(sums, inv, prob)
    counts = np.bincount(inv)
    return sums[inv] / counts[inv][:, None]


#: Share of the links from a tracklet to a child tracklet that continue the same cell (a track broken without a
#: division) rather than lead to a daughter, in :func:`transition_matrix`: 0.12 on the 7 real embryos (699 of 5854
#: such links, judged by their names, with :func:`tracklets`' untangling; 0.16 without); 0.05-0.33 scored alike
#: (held out, one run of the recipe's fold models: founder / depth-1 within 0.0013 / 0.0015 of 0.12's)
SAME_CELL_LINK: float = 0.12


def _division_daughters(cls: str) -> list[str]:
    """The depth-1 classes of the daughters of the cells of depth-1 class ``cls``, one entry per daughter: ``P``
    (P0..P4) -> AB, P, EMS, P, C, P, D, P, Z, Z; ``EMS`` -> MS, E; ``AB`` -> ABa, ABp; ``ABa`` -> ABa, ABa; ``Z``
    -> none (Z2 and Z3 do not divide in the embryo)."""
    from devolens.lineage.names import daughters

    if cls == "Z":
        return []
    cells = [f"P{i}" for i in range(5)] if cls == "P" else [cls]
    return [identity_label(d, 1) for c in cells for d in (daughters(c) or ())]


def transition_matrix(depth1: Sequence[str], founders: Sequence[str], eps: float = 0.01,
                      same: float = SAME_CELL_LINK) -> np.ndarray:
    """Mother -> daughter class transitions (K x K, rows sum to 1) of the depth-1 classes.

    A child tracklet is the mother's cell again (share ``same``: a tracklet broken without a division) or one of the
    daughters of its division (the rest), each daughter class as often as the cells of the mother's class have it
    (:func:`_division_daughters`, from the names): ``P`` -> ``P`` 4/10, ``Z`` 2/10, ``AB``, ``EMS``, ``C``, ``D``
    1/10 each (P0..P4); ``EMS`` -> ``MS``, ``E``; an undivided lettered founder (``AB``, ``MS``, ``E``, ``C``,
    ``D``) -> its depth-1 daughters; a depth-1 class (``ABa``...) -> itself. Z2 and Z3 do not divide in the embryo:
    the rest of the ``Z`` row is spread over all classes (a wrong link). A share ``eps`` of every row is spread over
    all classes (wrong links happen).

    Each class has the same ``same``: before, every class's own share was 1 / (1 + its daughter classes), 1/6 for
    ``P`` and 1 for ``Z``, so a Z tracklet explained each Z child 6 times as well as a P one: P4, mother of Z2 and
    Z3, was named Z on every training embryo (the shipped model in-sample: 0 of 388 P4 rows right; 388 now).
    """
    k = len(depth1)
    for d in depth1:
        class_founder(d, founders)  # (a depth-1 class without its founder class: an error, as ever)
    pos = {d: j for j, d in enumerate(depth1)}
    div = np.zeros((k, k))
    for i, m in enumerate(depth1):
        for d in _division_daughters(m):
            if d in pos:
                div[i, pos[d]] += 1.0
        div[i] = div[i] / div[i].sum() if div[i].sum() > 0 else 1.0 / k
    t = same * np.eye(k) + (1 - same) * div
    return (1 - eps) * t + eps / k


def lineage_posterior(prob: np.ndarray, tracks: np.ndarray, parents: np.ndarray, trans: np.ndarray,
                      floor: float = 1e-3, power: float = 0.0) -> np.ndarray:
    """Posterior class probabilities of every row from a tree of tracklets (sum-product).

    Each tracklet is a node whose evidence is ``exp(n ** power * mean log p)`` over its
    ``n`` rows (per-row predictions are strongly correlated in time, so by default a
    tracklet counts as one observation, the geometric mean); edges from parent to child
    tracklet follow ``trans``. Exact belief propagation on the forest.

    Parameters
    ----------
    prob : ndarray (n_rows, K)
        Per-row class probabilities.
    tracks : ndarray (n_rows,) int
        Tracklet id of every row (0..M-1).
    parents : ndarray (M,) int
        Parent tracklet (-1 for roots), parent id < child id.
    trans : ndarray (K, K)
        Transition probabilities (mother row, daughter column).
    floor : float
        Probabilities are clipped from below before the log.
    power : float
        Evidence of a tracklet of ``n`` rows = ``n ** power`` times its mean log-probability
        (0: the geometric mean of the rows' probabilities, the default).

    Returns
    -------
    ndarray (n_rows, K)
        Posterior of every row (its tracklet's posterior).
    """
    m = len(parents)
    k = prob.shape[1]
    logp = np.log(np.clip(prob, floor, 1.0))
    sums = np.zeros((m, k))
    np.add.at(sums, tracks, logp)
    n = np.bincount(tracks, minlength=m).astype(float)
    loge = sums / np.maximum(n, 1)[:, None] * (np.maximum(n, 1) ** power)[:, None]
    ev = np.exp(loge - loge.max(1, keepdims=True))
    up = ev.copy()
    msg = np.ones((m, k))
    for i in range(m - 1, -1, -1):
        up[i] /= up[i].sum()
        p = parents[i]
        if p >= 0:
            msg[i] = trans @ up[i]
            msg[i] /= msg[i].sum()
            up[p] *= msg[i]
            up[p] /= up[p].sum()
    post = np.zeros((m, k))
    for i in range(m):
        p = parents[i]
        if p < 0:
            post[i] = up[i]
        else:
            pi = trans.T @ (post[p] / msg[i])
            post[i] = pi * up[i]
        post[i] /= post[i].sum()
    return post[tracks]


# ----------------------------------------------------------------------------- notes on the input
# (what ``devolens identify`` prints as notes, and the predictor issues as IdentityWarning: input_notes)
#: nuclei in an embryo's largest time point under which the predictor notes that its table stops early
SHORT_CLOUD = 200
#: skewness of the pooled cloud (AP, or minus the third axis's) under which the predictor notes that the embryo's
#: orientation is close to a guess: the 7 real training embryos, whole, have 0.11-0.39 and 0.10-0.17; 16 simulated
#: embryos 0.00-0.12 and 0.000-0.039; real EPIC tables cut at 100-150 cells mostly under 0.05 (the card's limits)
WEAK_SKEW = 0.05
#: how the predictor orients an embryo (:class:`IdentityPredictor`'s ``orient``): ``"auto"`` turns the frame of an
#: embryo whose table stops early (largest time point under :data:`SHORT_CLOUD` nuclei) to whichever of its proper
#: turns (:func:`turns_tried`) the network names most confidently; ``"skewness"`` keeps the skewness's frame always
ORIENTS = ("auto", "skewness")
#: the four proper turns of an embryo frame, as signs of its (AP, second, third) axes, and their names: the frame as
#: the skewness reads it, AP reversed (a half turn about the third axis), a half turn about AP, a half turn about the
#: second axis. Held out (the 7 real embryos, each named by the fold models that never saw it, tables stopped at 28-38,
#: 50, 100 or 150 nuclei), the skewness's frame was wrong on 2-6 of 7 embryos and the turn of the highest mean
#: confidence before the time-course smoothing the best of the four on all 7; on whole tables and ones started at
#: 100 nuclei the skewness was right on all 7 and that confidence wrong on 1 (fifty-fourth session:
#: benchmarks/eval_identity_mirror.py --views, and RESULTS.md), hence only short tables are turned
TURNS = {"as the skewness reads it": (1, 1, 1), "AP reversed": (-1, -1, 1), "turned about AP": (1, -1, -1),
         "AP reversed and turned about AP": (-1, 1, -1)}
#: nuclei in an embryo's largest time point under which only the AP reversal is tried (:func:`turns_tried`)
FEW_CLOUD = 30


def turns_tried(largest: int) -> list[str]:
    """The names of :data:`TURNS` tried for an embryo whose largest time point holds ``largest`` nuclei (under
    :data:`SHORT_CLOUD`): all four, or under :data:`FEW_CLOUD` the skewness's frame and its AP reversal only (the
    turn about AP as the skewness of the third axis reads it). Held out, stopped at 15 nuclei, the skewness's AP was
    wrong on 7 of 7 embryos and its third axis right on 7 of 7 (in the AP-reversed frame), and the confidence chose
    the wrong turn about AP on 4 of 7 when all four were tried (fifty-fourth session)."""
    names = list(TURNS)
    return names if largest >= FEW_CLOUD else names[:2]


#: the held-out figures the short-table note quotes, per ``orient`` (measured as :data:`TURNS` says)
SHORT_HELD_OUT_AUTO = ("7 real embryos stopped at 28-150 nuclei: founder accuracy 0.88-1.00, depth-1 0.76-0.98, with "
                       "their z scale known (read from the cloud instead: the same from 29-38 nuclei up, 0.21-0.98 at "
                       "28-29); at 15 or 16 nuclei founder 0.08-1.00, mean 0.69-0.82 (z from the cloud: 0.00-1.00)")
SHORT_HELD_OUT_SKEWNESS = ("7 real embryos stopped at 28-150 nuclei: founder accuracy 0.30-1.00, under 0.70 on 2-6 "
                           "of 7; at 15 nuclei 0.00-0.30")
#: AP skewness of the pooled cloud above which the predictor notes a lopsided embryo: the 7 real training embryos,
#: whole, cut at 150-350 cells or started at 20-200, have at most 0.42 (the AceTree one); one debris spot per time
#: point 300 px beyond an embryo made 0.46, three 0.53 (such spots are now set aside: :func:`stray_nuclei`)
LOPSIDED_SKEW = 0.45
#: tracklets (of two or more nuclei) per nucleus of an embryo's largest time point above which the predictor notes
#: that its tracks break far more than a complete table's: 2.0-2.5 on the 7 real embryos; 3.4-3.6 with 10 % of their
#: nuclei removed at random (the lineage smoothing still beat none), 6.1-6.6 with 20 % (none did better); 4.1 with 5 %
#: more rows of random positions (the smoothing still better)
BROKEN_TRACKS = 5.0
#: share of an embryo's nuclei within 3 % of their x or y range from one edge (:func:`edge_crowding`) above which
#: the predictor notes a cut-off embryo: whole real embryos at most 0.9 %, cut at 100-200 cells 1.6 %; with 10-50 %
#: of a real embryo cut away along x or y 2.2-6.7 %
CROWDED_EDGE = 0.02
#: fewest nuclei at an embryo's largest time point for the crowded-edge note (early tables crowd edges by chance:
#: up to 3.2 % on real tables cut at 60 cells)
CROWDED_EDGE_CELLS = 100
#: fewest nuclei at an embryo's largest time point for the note on a flat cloud (z the same for every nucleus:
#: :func:`flat_embryos`); a table of a cell or two may hold its nuclei in one plane
FLAT_Z_CELLS = 4


#: given z scale over the one the nucleus cloud's shape suggests (:func:`estimate_zscale`) outside which the predictor
#: notes the z scale (:func:`input_scales`). On the 5 EPIC embryos whose z scale is known (AuxInfo), the known one was
#: 0.89-1.06 x the estimate on the whole tables, 0.84-1.12 on the tables cut at every count of 30-400 nuclei and
#: 0.79-1.17 on their single time points of 30 nuclei or more. Above the range, the cloud's depth nears its minor width
#: (the estimate makes it 0.757 of it) and the frame's minor axes swap at about 1.32: the shipped model's depth-1
#: accuracy at 1.3-1.4 x the known z scale (1.34-1.39 x the estimate) fell from 0.88-0.90 to 0.43-0.74 on 3 of 4
#: embryos, and held up to 1.26 x the estimate; at 0.5 x the known or estimated z scale it lost 0.07-0.13 (0.67 x:
#: 0.01-0.06; 0.17 x, --zscale 1 on an embryo of 5.75, 0.24). (In-sample, 4 EPIC embryos and the AceTree one; on the
#: AceTree embryo, whose z is not in planes, 1.3 x its estimate named better, 0.920 against 0.827)
ZSCALE_RANGE: tuple[float, float] = (0.6, 1.25)
#: fewest nuclei at an embryo's largest time point for the z scale note: the cloud of a few cells says little of its
#: depth (on the 5 embryos above, the known z scale was 0.20-1.69 x the estimate on their tables cut at 4-7 nuclei,
#: 0.77-1.12 cut at 8-29 and 0.79-1.23 on their single time points of 8-29; such tables get the note on a table that
#: stops early)
ZSCALE_CELLS = 30
#: median nucleus size over median nearest-neighbour distance (:func:`input_scales`) outside which the predictor
#: notes the size column: on the 7 real training embryos (6 EPIC and the AceTree one, sizes as diameters in xy pixels)
#: 0.76-0.94 whole, 0.55-0.83 cut at 40-250 cells, 0.82-1.04 started at 100-200 (single time points 0.54-1.13). The
#: bounds are 1.5 x above and 2.2 x below those: sizes 3 x too large (2.3-2.8 whole) cost the shipped model 0.04-0.09
#: of its depth-1 names on every embryo, 2 x (1.5-1.9) -0.03 to +0.00; smaller ones hardly change them (0.5 x: -0.01
#: to +0.04; 0.09 x, sizes in µm beside positions in pixels, 0.07-0.08: -0.02 to +0.06), so only a plain unit error
#: is noted below
SIZE_SPACING_RANGE: tuple[float, float] = (0.25, 1.6)
#: fewest nuclei at a time point for the size-to-spacing ratio (earlier clouds are sparser: the ratio grows with the
#: count of nuclei, 0.3-0.9 at 4-14 cells)
SIZE_SPACING_CELLS = 30
#: most time points :func:`input_scales` measures the sizes' ratio at (evenly spaced; on the 7 real embryos the ratio
#: over 40 of them was within 0.01 of that over all)
SIZE_SPACING_TIMES = 40


def flat_embryos(embryo: np.ndarray, time: np.ndarray, z: np.ndarray, largest: dict[str, int]) -> dict[str, dict]:
    """The embryos whose nuclei all have one z (a 2-D projection given a constant z, such as ``devolens segment``'s
    objects.csv with a z column added): embryo -> ``{"z": that z, "time_points": how many}``, for those whose largest
    time point holds at least :data:`FLAT_Z_CELLS` nuclei (``largest``: embryo -> that count). The model reads 3-D
    clouds; one without depth is nothing like the embryos it was trained on."""
    flat: dict[str, dict] = {}
    embryo = np.asarray(embryo).astype(str)
    for name in pd.unique(embryo):
        rows = embryo == name
        zs = np.asarray(z, dtype=float)[rows]
        if len(zs) and np.ptp(zs) == 0 and largest.get(str(name), 0) >= FLAT_Z_CELLS:
            flat[str(name)] = {"z": float(zs[0]), "time_points": int(len(np.unique(np.asarray(time)[rows])))}
    return flat


def lost_positions(embryo: np.ndarray, time: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict[str, dict]:
    """The embryos whose nuclei all have one x and one y (every nucleus at one spot, or on one line along z: the
    positions lost, as in a table exported without its coordinates): embryo -> ``{"x", "y", "rows", "time_points"}``,
    for those whose largest time point holds at least :data:`FLAT_Z_CELLS` nuclei (a table of a cell or two may
    repeat a position). The model names nuclei from where they lie in the embryo's cloud: there is none to read."""
    lost: dict[str, dict] = {}
    embryo = np.asarray(embryo).astype(str)
    x, y, time = (np.asarray(a, dtype=float) for a in (x, y, time))
    for name in pd.unique(embryo):
        rows = embryo == name
        if not (len(x[rows]) and np.ptp(x[rows]) == 0 and np.ptp(y[rows]) == 0):  # (NaN: not lost, refused later)
            continue
        _, counts = np.unique(time[rows], return_counts=True)
        if counts.max() >= FLAT_Z_CELLS:
            lost[str(name)] = {"x": float(x[rows][0]), "y": float(y[rows][0]), "rows": int(rows.sum()),
                               "time_points": int(len(counts))}
    return lost


def crowded_embryos(embryo: np.ndarray, time: np.ndarray) -> dict[str, dict]:
    """The embryos with a time point of more nuclei than an embryo ever holds
    (:data:`devolens.lineage.populations.EMBRYO_CELLS`: several embryos in one table without an embryo column?):
    embryo -> ``{"nuclei", "time"}`` of its fullest time point and ``more``, how many other time points are over."""
    from devolens.lineage.populations import EMBRYO_CELLS

    found: dict[str, dict] = {}
    counts = pd.DataFrame({"embryo": np.asarray(embryo).astype(str), "time": time}).value_counts(sort=False)
    for name, per in counts[counts > EMBRYO_CELLS].groupby(level=0, sort=False):
        when = float(per.idxmax()[1])
        found[str(name)] = {"nuclei": int(per.max()), "time": int(when) if when.is_integer() else when,
                            "more": len(per) - 1}
    return found


def _lost_text(lost: dict[str, dict], many: bool) -> str:
    """The words on the embryos of :func:`lost_positions` (``many``: the table holds several embryos), for the note
    and the error."""
    (embryo, found), *others = lost.items()
    where = _who(embryo, many) + (f" (and {len(others)} more embryo{'s' if len(others) > 1 else ''})" if others
                                  else "")
    return (f"x and y are the same ({found['x']:g}, {found['y']:g}) for every nucleus of {where} ({found['rows']} "
            f"row(s) at {found['time_points']} time point(s)): the positions were lost (a table exported without "
            "its coordinates?), and identify names nuclei from where they lie in the embryo")


def _who(embryo: str, many: bool, possessive: bool = False) -> str:
    """``the table`` (or ``the table's``) for a table of one embryo, else ``embryo NAME`` (``embryo NAME's``)."""
    if not many:
        return "the table's" if possessive else "the table"
    return f"embryo {embryo}'s" if possessive else f"embryo {embryo}"


def _cliff_notes(attrs: dict, table: str | os.PathLike | None = None) -> list[str]:
    """The note on each embryo whose count of nuclei falls off an annotation cliff (``attrs["annotation_cliffs"]``,
    :func:`annotation_cliffs`): its time, what the predictor did about it and the
    ``devolens lineage clean`` command that cuts the table there (``table``: the input, quoted in it)."""
    import shlex

    from devolens.lineage.cliffs import Cliff, describe_fall

    cliffs = attrs.get("annotation_cliffs") or {}
    many = len(attrs.get("largest_clouds") or cliffs) > 1
    notes = []
    for embryo, found in cliffs.items():
        c = Cliff(**found)
        arg = "TABLE" if table is None else shlex.quote(str(table))
        if many:
            arg += f" --embryo {shlex.quote(str(embryo))}"
        notes.append(f"{_who(embryo, many)}: annotation cliff after time {c.time}: {describe_fall(c)}, no recovery "
                     f"(curation stopped?): the rows after time {c.time} (a part of the embryo) were named apart from "
                     f"those before (the embryo's frame read from the rows up to time {c.time}, no smoothing across "
                     f"the cliff), so the names up to time {c.time} are those of the table cut there; the later names "
                     f"are not to be trusted; `devolens lineage clean {arg} --out CLEAN.csv` cuts the table after "
                     f"time {c.time}")
    return notes


def _scale_notes(attrs: dict, command: bool | None = None) -> tuple[list[str], set[str]]:
    """The notes on a z plane spacing far from the one the cloud's shape suggests (:data:`ZSCALE_RANGE`) and on
    sizes far from the nuclei's spacing (:data:`SIZE_SPACING_RANGE`), from ``attrs["input_scales"]``
    (:func:`input_scales`; none without it), and the embryos whose z scale is in doubt. ``command``: as
    :func:`input_notes`'."""
    scales = attrs.get("input_scales") or {}
    many = len(attrs.get("largest_clouds") or scales) > 1
    flat = attrs.get("flat_z") or {}
    low, high = ZSCALE_RANGE
    notes: list[str] = []
    suspects: set[str] = set()
    for embryo, found in scales.items():
        given, est = found.get("zscale"), found.get("estimate")
        if (given is None or not est or found.get("flat") or embryo in flat
                or found.get("largest", 0) < ZSCALE_CELLS or low <= given / est <= high):
            continue
        suspects.add(embryo)
        ratio = given / est
        if command is None:
            flag, leave = option("zscale"), option("zscale", f"{est:.2f}")
        else:
            flag, leave = ("--zscale", f"--zscale {est:.2f}") if command else ("zscale", f"zscale={est:.2f}")
        source = flag if found.get("by") == "given" else "the table's metadata"
        if ratio > high:
            effect = ("from about 1.3 x the estimate its two minor axes swap, and most depth-1 names go wrong with "
                      "high confidence (training embryos at 1.3-1.4 x their spacing: depth-1 0.43-0.74 right instead "
                      "of 0.88-0.90)")
        else:
            effect = ("a flattened embryo loses names with high confidence (training embryos at half their spacing: "
                      "0.07-0.13 fewer depth-1 names right; at a sixth, 0.24 fewer)")
        leave = f"leave {flag} out to use the estimate" if found.get("by") == "given" else f"give {leave} to use it"
        notes.append(f"{_who(embryo, many, True)} z plane spacing {given:g} ({source}) is {ratio:.2g} x what the "
                     f"shape of its nucleus cloud suggests ({est:.2f} xy pixels; the 5 training embryos with a known "
                     f"spacing: 0.89-1.06 x their estimate): with it the embryo is {Z_SPREAD_RATIO * ratio:.2g} x as "
                     "deep as it is wide (training embryos: 0.67-0.81), and the model reads the embryo's axes from "
                     f"that shape: {effect}. Check the spacing (the z step divided by the xy pixel size) or {leave}")
    low, high = SIZE_SPACING_RANGE
    for embryo, found in scales.items():
        ratio = found.get("size_spacing")
        if ratio is None or low <= ratio <= high:
            continue
        why = ("(sizes in another unit than x and y, pixels beside positions in µm? an area, not a diameter?): "
               "sizes 3 x too large cost the training embryos 0.04-0.09 of their depth-1 names, with high confidence"
               if ratio > high else "(sizes in µm beside positions in pixels?): smaller sizes changed the training "
               "embryos' names little (-0.02 to +0.06 of the depth-1 names at a tenth)")
        notes.append(f"{_who(embryo, many, True)} nucleus sizes are {ratio:.2g} x the distance between neighbouring "
                     f"nuclei (median size over median nearest-neighbour distance at its time points of "
                     f"{SIZE_SPACING_CELLS} nuclei or more; the 7 real training embryos: 0.55-1.04) {why}. The model "
                     "reads each nucleus's size relative to the embryo's length: give size as a diameter in the unit "
                     "of x and y, or leave the column out (names from the positions alone)")
    return notes, suspects


#: the rows :meth:`IdentityPredictor.predict` leaves out or predicts once (its result's ``attrs`` count them), in the
#: order :func:`input_notes` says them, each with the rest of its note
_ROW_NOTES = (
    ("polar_bodies", "are polar bodies (polar1, polar2): left out of the embryo's clouds, no prediction (empty "
                     "columns)"),
    ("unplaced", "have no position (x = y = z = 0, no size: placeholder rows for time points before tracking "
                 "started?): left out of the clouds, no prediction (empty columns)"),
    ("duplicate_nuclei", "repeat an earlier nucleus (same time point, x, y, z and name): predicted once on the cloud "
                         "without the copies; each copy has its original's prediction"),
    ("stray_nuclei", "lie far outside the space the rest of their embryo's nuclei fill (debris, a mis-tracked spot?): "
                     "left out of the embryo's clouds so that they do not turn its frame, no prediction (empty "
                     "columns)"),
)


def input_notes(attrs: dict, table: str | os.PathLike | None = None, *, command: bool | None = None) -> list[str]:
    """One-line notes on what :meth:`IdentityPredictor.predict` found in its input (an embryo whose nuclei all share
    one x and y, left out; a time point of more nuclei than an embryo ever holds; a flat cloud: z the same for
    every nucleus, a 2-D projection; a z plane spacing or sizes unlike the cloud's, ``attrs["input_scales"]``
    (:func:`input_scales`, which ``devolens identify`` adds); a table that stops early, a
    nearly symmetric, lopsided or cut-off embryo, duplicate nuclei, time gaps, an annotation cliff, debris, missing
    nuclei, sparse time sampling): names to check. The predictor issues each as an
    :class:`~devolens.errors.IdentityWarning`; ``devolens identify`` prints them as notes and records them.

    Parameters
    ----------
    attrs : dict
        The ``attrs`` of :meth:`IdentityPredictor.predict`'s result.
    table : str or path, optional
        The input's path, quoted in the commands suggested (``TABLE`` without one).
    command : bool, optional
        Name the predictor's options as the ``devolens identify`` command's flags (``--smooth none``: True) or as
        the predictor's arguments (``smooth='none'``: False); None: as the process runs
        (:func:`devolens.errors.option`).

    Returns
    -------
    list of str
        The notes, in the order the command prints them (none for a whole real embryo's table).
    """
    notes = _cliff_notes(attrs, table)
    lost = attrs.get("lost_positions") or {}
    if lost:  # first: no name at all for them
        many = len(set(attrs.get("largest_clouds") or ()) | set(lost)) > 1
        notes.append(f"{_lost_text(lost, many)}: left out, no prediction (empty columns); give each nucleus's x "
                     "and y")
    from devolens.lineage.populations import crowded_note

    for embryo, found in (attrs.get("crowded") or {}).items():  # every name of such an embryo in doubt
        who = _who(embryo, len(attrs.get("largest_clouds") or ()) > 1)
        said = crowded_note(found["nuclei"], found["time"], found["more"], who, attrs.get("unread_embryo_column"))
        notes.append(f"{said}: the model reads one "
                     "embryo's nuclei at a time, and these names are not to be trusted")
    flat = attrs.get("flat_z") or {}
    for embryo, found in flat.items():  # first: every name of such an embryo is in doubt
        where = _who(embryo, len(attrs.get("largest_clouds") or flat) > 1)
        notes.append(f"z is the same ({found['z']:g}) for every nucleus of {where} at "
                     f"{found['time_points']} time point(s): identify reads 3-D positions (x, y, z), and the names of "
                     "a 2-D projection (segment's objects.csv with a z column added?) are unreliable, however high "
                     "their confidence: give each nucleus's z (its plane), e.g. from a 3-D segmentation or tracking "
                     "(TrackMate, AceTree)")
    scale_notes, zscale_suspects = _scale_notes(attrs, command)
    notes += scale_notes  # (next: a wrong z scale puts every name in doubt too)
    for key, what in _ROW_NOTES:  # rows left out of the clouds, each kind counted in the result's attrs
        n = int(attrs.get(key) or 0)
        if n:
            notes.append(f"{n} row(s) {what}")

    def spelt(arg: str, value: str, cli_value: str | None = None) -> str:
        """An option as the notes' reader gives it: ``command`` True, the command's flag; False, the library's
        argument; None, whichever is running (:func:`~devolens.errors.option`)."""
        if command is None:
            return option(arg, value, cli_value=cli_value)
        return f"--{arg} {cli_value or value}" if command else f"{arg}={value}"

    smooth_none = spelt("smooth", "'none'", "none")
    clouds = attrs.get("largest_clouds") or {}
    turned = attrs.get("frame_turn") or {}  # (embryos oriented by the network's confidence, not the skewness)
    short = None
    if clouds and min(clouds.values()) < SHORT_CLOUD:  # the embryo whose table stops earliest
        embryo = short = min(clouds, key=clouds.get)
        largest = clouds[embryo]
        who = "the table" if len(set(clouds) | set(lost)) == 1 else f"embryo {embryo}"
        if embryo not in turned:  # orient="skewness"
            notes.append(f"{who} stops at {largest} nuclei: the model reads an embryo's orientation from the skewness "
                         "of its whole time course, often wrong on tables that stop early, with high confidence (held "
                         f"out, {SHORT_HELD_OUT_SKEWNESS}): check the names against known cells, or leave the "
                         "orientation to the model's confidence (" + spelt("orient", "'auto'", "auto") + ")")
        else:  # every embryo turned: the shortest first, each named with its size where there are several
            order = sorted(turned, key=lambda e: clouds.get(e, 0))

            def words(turn: str) -> str:
                return "the skewness's frame" if turn == next(iter(TURNS)) else f"{turn} from the skewness's frame"
            kept = (words(turned[embryo]) if len(order) == 1 else
                    "; ".join(f"embryo {e} ({clouds.get(e)} nuclei): {words(turned[e])}" for e in order))
            notes.append(f"{who} stops at {largest} nuclei" + (f", and {len(order) - 1} more embryo(s) under "
                                                                f"{SHORT_CLOUD}" if len(order) > 1 else "") +
                         ": the skewness of so short a time course often misleads the orientation, so each such "
                         "embryo was named in the turns of its frame and the turn named most confidently kept "
                         f"({kept}). Held out, {SHORT_HELD_OUT_AUTO}" +
                         (f"; under {FEW_CLOUD} nuclei only the AP reversal is tried, and the turn kept is often "
                          "wrong, more often with the z scale read from the cloud (give it: "
                          + spelt("zscale", "Z") + ")"
                          if largest < FEW_CLOUD else "") +
                         ": check the names against known cells")
    skews = attrs.get("frame_skewness") or {}
    weak = {e: min(ap, -third) for e, (ap, third) in skews.items()
            if min(ap, -third) < WEAK_SKEW and e != short and e not in flat and e not in turned}
    if weak:  # (the short table's note says it already, and turned embryos were not oriented by it; a flat
        # cloud's note says why its third axis has no skew)
        embryo = min(weak, key=weak.get)
        ap, third = skews[embryo]
        who = "the table's" if len(skews) == 1 else f"embryo {embryo}'s" + (
            f" (and {len(weak) - 1} more)" if len(weak) > 1 else "")
        third_text = f"{third:.2f}".replace("-0.00", "0.00")  # (rounded to zero: no sign)
        notes.append(f"{who} nucleus cloud is nearly symmetric (skewness {ap:.2f} along its long axis, {third_text} "
                     "along its shortest; the 7 real training embryos: 0.11 to 0.39 and -0.10 to -0.17), and the model "
                     "orients the embryo by these two: anterior/posterior or the turn about the long axis may be a "
                     "guess, and the names wrong with high confidence (a simulated embryo? an embryo unlike the "
                     "training ones?): check the names against known cells")
    many = len(clouds) > 1
    for embryo, skew in skews.items():
        if skew[0] > LOPSIDED_SKEW:
            notes.append(f"{_who(embryo, many, True)} nucleus cloud is more lopsided than the training embryos' "
                         f"(skewness {skew[0]:.2f} along its long axis; the 7 real ones: 0.11 to 0.39), and the model "
                         + ("reads the embryo's axes from that cloud" if embryo in turned else
                            "orients the embryo by it")
                         + ": nuclei outside the embryo, part of it cut off, an embryo unlike "
                         "the training ones? The names may be wrong with high confidence: check them against known "
                         "cells")
    for embryo, (edge, share) in (attrs.get("edge_crowding") or {}).items():
        if share > CROWDED_EDGE and clouds.get(embryo, 0) >= CROWDED_EDGE_CELLS:
            axis, side = edge.split()
            side = "smallest" if side == "min" else "largest"
            notes.append(f"{share:.1%} of {_who(embryo, many, True)} nuclei lie within 3 % of their {axis} range of "
                         f"the {side} {axis} (whole real embryos: under 1 %): is the embryo cut off by the edge of the "
                         "field of view? The model reads whole embryos (one cut in half lost most names, with high "
                         "confidence): name whole embryos only")
    for embryo, found in (attrs.get("tracking") or {}).items():
        who = _who(embryo, many)
        if found.get("sparse") and embryo in zscale_suspects:  # its spacing is the z scale's doing, not the clock's
            notes.append(f"{who}: nuclei move far between consecutive time points for their spacing (median "
                         f"{found['motion']:.2f} of it; 0.12-0.20 on the training tables at 60-90 s), most likely "
                         "because of the z plane spacing noted above (one that flattens or stretches the embryo "
                         "changes the distances between its nuclei), not sparse time sampling: nuclei are not grouped "
                         "into tracklets; each is smoothed with its nearest neighbour a time point earlier")
            continue
        if found.get("sparse"):
            notes.append(f"{who}: nuclei move far between consecutive time points (median {found['motion']:.2f} of "
                         "their spacing; 0.12-0.20 on the training tables at 60-90 s): sparse time sampling? Nuclei "
                         "are not grouped into tracklets; each is smoothed with its nearest neighbour a time point "
                         "earlier")
            continue
        if found.get("gap_links"):
            notes.append(f"{who}: {found['gap_links']} nuclei are missing at one time point but present before and "
                         "after, near the same place (nuclei not detected?): the time course links them across the gap")
        if found.get("per_nucleus", 0) > BROKEN_TRACKS:
            notes.append(f"{who}: tracks of nuclei break without a division far more often than in a complete table "
                         f"({found['per_nucleus']:.1f} tracklets per nucleus of its largest time point; complete real "
                         f"tables 2.0-2.5): many nuclei missing? The lineage smoothing may then do worse than none: "
                         f"compare with {smooth_none}")
    breaks = attrs.get("time_breaks") or []
    if breaks:
        embryo, before, after = breaks[0]
        more = f" (and {len(breaks) - 1} more)" if len(breaks) > 1 else ""
        lost_files = _lost_files(attrs, before, after)
        if lost_files is not None:  # nuclei files lost, as the reader noted (and `lineage populations` says)
            notes.append(f"embryo {embryo}: time point {after} is {after - before} after the previous one ({before})"
                         f"{more}: {lost_files}; the time course is not smoothed across the gap")
        else:  # the 'why': one such row (time 1e9) used to pass its one-nucleus guess up a real cell's lineage
            notes.append(f"embryo {embryo}: time point {after} is {after - before} after the previous one ({before}), "
                         f"far more than the table's usual spacing{more} (a mistyped time?): the time course is not "
                         "smoothed across the gap")
    return notes


def _lost_files(attrs: dict, before: int, after: int) -> str | None:
    """For an AceTree series (``attrs["format"]``), why its time points between ``before`` and ``after`` are
    missing, which the time-gap note says rather than guess a mistyped time: in the reader's words when no nuclei file
    of them was there (``attrs["missing_times"]``, the runs of time points the reader found no file for:
    :func:`devolens.io.tables.read_acetree`; ``time points 100-120 have no nuclei file: ... (files lost when the
    series was copied or zipped?)``), else its gist; None for another table."""
    if attrs.get("format") != "acetree":
        return None
    from devolens.io.tables import _acetree_gaps

    if (before + 1, after - 1) in {tuple(run) for run in attrs.get("missing_times") or ()}:
        return _acetree_gaps([before, after], [])[-1]
    # (a hole in a series of a step over 1, or empty files, or files of no valid nucleus: every time point missing
    # between an AceTree series' files is one of those, never a mistyped time)
    return ("the nuclei files between them are missing, empty or hold no valid nucleus (as noted on reading: files "
            "lost when the series was copied or zipped?)")


# ----------------------------------------------------------------------------- predictor
class IdentityPredictor:
    """Founder and depth-1 identity of every nucleus of a tidy lineage table.

    Parameters
    ----------
    model : torch.nn.Module or torch.nn.ModuleList
        A point-set model (``model(points, mask) -> logits``) whose outputs are the founder
        logits followed by the depth-1 logits; a ``ModuleList`` of such models is an
        ensemble (class probabilities averaged over its members).
    founders, depth1 : list of str
        Class names of the two heads.
    tta : int
        Views averaged at prediction: rotations about the AP axis (see :func:`views`), a whole number >= 1 (0,
        True or 2.5 are refused).
    max_tokens : int
        Points per padded batch (memory / speed trade-off).
    device : {"cpu", "cuda", "auto"}
        Where the network runs (:func:`devolens.predict.devices.resolve_device`: ``auto`` is a CUDA GPU when
        PyTorch sees one, else the CPU).
    smooth : {"lineage", "tracklets", "none"}
        Use the time course: ``"tracklets"`` averages the probabilities over tracklets
        (nearest-neighbour links between consecutive time points, cut at divisions; see
        :func:`tracklets`); ``"lineage"`` (default) also links each tracklet to its mother
        and runs belief propagation over the resulting tree (:func:`lineage_posterior`), so
        that a cell inherits the evidence of its ancestors and descendants.
    link_eps : float
        Share of every lineage transition spread over all classes (slack for wrong links).
    evidence_power : float
        Weight ``n ** evidence_power`` of a tracklet's mean log-probability in the tree.
    orient : {"auto", "skewness"}
        How each embryo's frame is oriented. Its axes come from the pooled cloud of all its time points, their
        signs from the cloud's skewness (:func:`embryo_frame`), which is right on whole tables but often wrong on
        tables that stop early. ``"auto"`` (default): an embryo whose largest time point holds under
        :data:`SHORT_CLOUD` nuclei is named in each of the proper turns of its frame (:data:`TURNS`; under
        :data:`FEW_CLOUD` nuclei its AP reversal only: :func:`turns_tried`), and the turn whose names the network
        gives with the highest mean confidence (before the time-course smoothing) is kept
        (``attrs["frame_turn"]``); ``"skewness"``: the skewness's frame always.
    """

    def __init__(self, model: torch.nn.Module, founders: Sequence[str], depth1: Sequence[str],
                 tta: int = 1, max_tokens: int = 8192, device: str = "cpu", smooth: str | bool = "lineage",
                 link_eps: float = 0.01, evidence_power: float = 0.0, orient: str = "auto"):
        from devolens.predict.devices import resolve_device

        device = resolve_device(device)  # 'auto', and a one-line error for 'cuda' without a GPU
        self.model = model.to(device).eval()
        self.members = list(model) if isinstance(model, torch.nn.ModuleList) else [self.model]
        self.founders = list(founders)
        self.depth1 = list(depth1)
        from devolens.checks import whole

        # (as the other models' batch_size: 0, -1, True or 2.5 would be read as another number of views)
        self.tta = whole(tta, "tta", 1, floats=True)
        self.max_tokens = int(max_tokens)
        self.device = device
        if smooth is True:
            smooth = "lineage"
        if smooth not in (False, None, "none", "tracklets", "lineage"):
            raise DevolensError(f"smooth must be 'lineage', 'tracklets' or 'none', got {smooth!r}")
        self.smooth = smooth if smooth not in (False, None) else "none"
        self.parent = np.array([class_founder(d, self.founders) for d in self.depth1], dtype=np.int64)
        self.trans = transition_matrix(self.depth1, self.founders, eps=link_eps)
        self.evidence_power = float(evidence_power)
        if not isinstance(orient, str) or orient.strip().lower() not in ORIENTS:
            raise DevolensError(f"orient must be 'auto' or 'skewness', got {orient!r}")
        self.orient = orient.strip().lower()

    @classmethod
    def from_zoo(cls, folder: str | Path, card: dict[str, Any], **options: Any) -> "IdentityPredictor":
        """Build the predictor from a zoo folder (``weights.safetensors``) and its card."""
        from devolens.models.identity_net import build_network
        from devolens.models.zoo import load_weights

        arch = card["architecture"]
        members = int(arch.get("members", 1))
        if members > 1:  # ensemble: one file, keys "<member>.<parameter>"
            model = load_weights(torch.nn.ModuleList(build_network(arch["network"]) for _ in range(members)), folder)
        else:
            model = load_weights(build_network(arch["network"]), folder)
        opts = {"tta": arch.get("tta", 1), **options}
        return cls(model, arch["founders"], arch["depth1"], **opts)

    def predict_proba(self, table: pd.DataFrame | str | Path, zscale: float | None = None,
                      progress: Callable[[int, int], None] | None = None, mirror: bool = False
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities of every row: founder (n, F) and depth-1 (n, K).

        ``table`` is what :meth:`predict` takes (a DataFrame, its columns named as a positions file's, or a
        file's path), but every row is predicted: polar bodies and placeholder rows are not left out.
        A nucleus listed twice (:func:`duplicate_nuclei`) is predicted once, on the cloud without
        the copy, and the copy gets its original's probabilities; the lineage smoothing does not
        link across a break in the time points (:func:`time_breaks`), and the rows after an embryo's annotation
        cliff are read apart (:func:`annotation_cliffs`, as :meth:`predict`). ``mirror``: as :meth:`predict`'s.
        """
        mirror = check_mirror(mirror)
        pf, pd1, _ = self._proba_checked(tidy_positions(read_input(table)), zscale, progress, mirror)
        return pf, pd1

    def _proba_checked(self, table: pd.DataFrame, zscale: float | None,
                       progress: Callable[[int, int], None] | None, mirror: bool = False,
                       numeric: dict[str, np.ndarray] | None = None, late: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """:meth:`predict_proba` plus what was found in the input: ``duplicates`` (rows that copy an
        earlier nucleus), ``time_breaks`` (see :func:`time_breaks`) and ``largest_clouds`` (embryo -> the nuclei
        of its largest time point). ``numeric``: ``table``'s columns as numbers, converted already
        (:func:`numeric_columns`; None: converted for the clouds). ``late``: the rows after their embryo's
        annotation cliff (:func:`cliff_rows`; None: found here)."""
        check_columns(table)  # (before duplicate_nuclei, which keys on these columns)
        if late is None:
            late = cliff_rows(table, annotation_cliffs(table), numeric)
        first = duplicate_nuclei(table)
        if first is None:
            pf, pd1, found = self._proba(table, zscale, progress, mirror, numeric, late)
            return pf, pd1, {"duplicates": 0, **found}
        keep = np.flatnonzero(first == np.arange(len(table)))
        pf, pd1, found = self._proba(table.iloc[keep], zscale, progress, mirror,  # (iloc keeps attrs: zscale)
                                     None if numeric is None else {c: v[keep] for c, v in numeric.items()},
                                     late[keep])
        at = np.searchsorted(keep, first)  # row -> its original among the kept rows
        return pf[at], pd1[at], {"duplicates": len(table) - len(keep), **found}

    @torch.no_grad()
    def _proba(self, table: pd.DataFrame, zscale: float | None,
               progress: Callable[[int, int], None] | None, mirror: bool = False,
               numeric: dict[str, np.ndarray] | None = None, late: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Probabilities of a table without duplicate nuclei, the ``time_breaks`` its smoothing did not link
        across (none without smoothing), each embryo's ``largest_clouds`` and what :func:`tracklets` found
        (``tracking``; empty without smoothing). ``late``: rows after their embryo's annotation cliff, read apart
        (:func:`prepare_clouds`' ``after``, :func:`tracklets`)."""
        from devolens.models.zoo import fork_guard

        fork_guard()
        clouds = prepare_clouds(table, zscale, mirror=mirror, numeric=numeric, after=late)
        breaks = time_breaks(clouds) if self.smooth != "none" else []
        largest: dict[str, int] = {}
        for c in clouds:
            largest[c["embryo"]] = max(largest.get(c["embryo"], 0), len(c["coords"]))
        skew = frame_skewness(clouds)
        turned: dict[str, str] = {}
        # embryo -> its largest time point, for each embryo whose short table's skewness may mislead its frame
        short = {e: n for e, n in largest.items() if n < SHORT_CLOUD} if self.orient == "auto" else {}
        if progress is not None and short:  # the bar counts the passes of the turns tried too
            total = len(token_batches([len(c["coords"]) for c in clouds], self.max_tokens)) + sum(
                len(turns_tried(n)) *
                len(token_batches([len(c["coords"]) for c in clouds if c["embryo"] == e], self.max_tokens))
                for e, n in short.items())
            user, ticks = progress, itertools.count(1)

            def counted(_done: int, _total: int) -> None:
                user(next(ticks), total)
            progress = counted
        if short:  # turned as the network reads it best
            clouds, turned = self._turned(clouds, short, progress)
        pf, pd1 = self._network(clouds, len(table), progress)
        tracking: dict[str, Any] = {}
        if self.smooth == "tracklets":
            tracks = tracklets(clouds, breaks=breaks, report=tracking)
            pf, pd1 = pool_over_tracklets(pf, tracks), pool_over_tracklets(pd1, tracks)
        elif self.smooth == "lineage":
            tracks, parents = tracklets(clouds, return_parents=True, breaks=breaks, report=tracking)
            joint = joint_depth1(pf, pd1, self.parent)
            pd1 = lineage_posterior(joint, tracks, parents, self.trans, power=self.evidence_power)
            pf = np.zeros_like(pf)
            np.add.at(pf.T, self.parent, pd1.T)
        return pf, pd1, {"time_breaks": breaks, "largest_clouds": largest, "frame_skewness": skew,
                         "frame_zscale": {c["embryo"]: c["zscale"] for c in clouds}, "tracking": tracking,
                         "frame_turn": turned}

    @torch.no_grad()
    def _network(self, clouds: list[dict[str, Any]], n_rows: int,
                 progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The network's founder (n_rows, F) and depth-1 (n_rows, K) probabilities of the ``clouds``' rows (their
        ``index``), averaged over the test-time views and the ensemble's members; the other rows 0."""
        nf, nd = len(self.founders), len(self.depth1)
        pf = np.zeros((n_rows, nf))
        pd1 = np.zeros((n_rows, nd))
        vs = views(self.tta)
        share = 1.0 / (len(vs) * len(self.members))
        batches = token_batches([len(c["coords"]) for c in clouds], self.max_tokens)
        for bi, batch in enumerate(batches):
            for r in vs:
                feats = [point_features(clouds[i]["coords"] @ r.T, clouds[i]["size"]) for i in batch]
                x, m = pad_batch(feats)
                x, m = x.to(self.device), m.to(self.device)
                for net in self.members:
                    lf, ld = split_logits(net(x, m).float(), nf)
                    sf = torch.softmax(lf, -1).cpu().numpy()
                    sd = torch.softmax(ld, -1).cpu().numpy()
                    for j, i in enumerate(batch):
                        n = len(clouds[i]["coords"])
                        idx = clouds[i]["index"]
                        pf[idx] += sf[j, :n] * share
                        pd1[idx] += sd[j, :n] * share
            if progress is not None:
                progress(bi + 1, len(batches))
        return pf, pd1

    def _turned(self, clouds: list[dict[str, Any]], embryos: dict[str, int],
                progress: Callable[[int, int], None] | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """``clouds`` with the frame of each of ``embryos`` (embryo -> the nuclei of its largest time point) turned
        to whichever of its :func:`turns_tried` the network names with the highest mean confidence
        (:func:`combine_probabilities`' of its rows, before any smoothing; the skewness's frame on a tie), and
        embryo -> the name of the turn kept. ``progress``: called once per batch of every pass."""
        out = list(clouds)
        kept: dict[str, str] = {}
        for embryo in sorted(embryos):
            at = [i for i, c in enumerate(clouds) if c["embryo"] == embryo]
            sizes = [len(clouds[i]["index"]) for i in at]
            local = np.split(np.arange(sum(sizes)), np.cumsum(sizes)[:-1])  # the embryo's rows, numbered anew
            best, best_score, best_clouds = None, -np.inf, None
            for name in turns_tried(embryos[embryo]):
                signs = TURNS[name]
                turned = [{**clouds[i], "coords": clouds[i]["coords"] * np.asarray(signs, float), "index": rows}
                          for i, rows in zip(at, local)]
                pf, pd1 = self._network(turned, int(sum(sizes)), progress)
                score = float(combine_probabilities(pf, pd1, self.parent)[2].mean())
                if score > best_score:
                    best, best_score = name, score
                    best_clouds = [{**c, "index": clouds[i]["index"]} for i, c in zip(at, turned)]
            kept[embryo] = best
            for i, c in zip(at, best_clouds):
                out[i] = c
        return out, kept

    def predict(self, table: pd.DataFrame | str | Path, zscale: float | None = None,
                progress: Callable[[int, int], None] | None = None, mirror: bool = False) -> pd.DataFrame:
        """Name every nucleus at depth 0 and 1.

        Parameters
        ----------
        table : DataFrame or path
            Tidy lineage table: ``embryo, time, x, y`` (pixels), ``z`` (planes) and
            ``size`` (pixels; optional). Cell names, if any, are ignored. Every time point
            of an embryo is classified from its whole cloud; the embryo's frame pools all
            its time points in the table. A path is read with
            :func:`devolens.io.tables.read_positions` (EPIC, AceTree, tidy or positions CSV); a
            DataFrame's columns may be named as that reads a positions file's (``FRAME``,
            ``POSITION_X``..., ``RADIUS``, any case; no ``embryo``: one embryo; a tidy table's ``diameter`` or
            ``RADIUS`` without ``size``, with a note; see :func:`tidy_positions`).
        zscale : float, optional
            Plane spacing in xy pixels (default ``table.attrs["zscale"]``, else estimated).
        progress : callable, optional
            ``progress(done, total)`` over batches.
        mirror : bool
            Name the embryo's mirror image (x reversed before the embryo frame; the rows come back as given): for
            embryos imaged mirrored relative to the training ones, which otherwise lose most depth-1 names
            (``attrs["mirrored"]``). True or False: anything else (``"no"``) is refused.

        Returns
        -------
        DataFrame
            The input rows (same index and columns) plus ``pred_founder``, ``pred_depth1``
            (class names) and ``confidence`` (0..1); rows of polar bodies (a ``cell`` named ``polar1``...,
            ``attrs["polar_bodies"]`` of them), rows without a position (x = y = z = 0 and no size:
            placeholder rows, ``attrs["unplaced"]``) and rows far outside the rest of their embryo's nuclei
            (debris, a mis-tracked spot: :func:`stray_nuclei`, ``attrs["stray_nuclei"]``) are left out of the clouds
            and get no prediction (empty, NaN).
            ``attrs["duplicate_nuclei"]``: rows that
            repeat an earlier nucleus (:func:`duplicate_nuclei`; each gets its original's
            prediction); ``attrs["time_breaks"]``: (embryo, time before, time after) of the gaps
            not smoothed across (:func:`time_breaks`); ``attrs["largest_clouds"]``: embryo -> the nuclei
            of its largest time point (the clouds the model read); ``attrs["frame_skewness"]``: embryo ->
            the skewness along the AP and the third axis that oriented its frame (:func:`frame_skewness`);
            ``attrs["frame_turn"]``: embryo -> the turn of that frame kept (a name of :data:`TURNS`), for each embryo
            whose frame was chosen by the network's confidence (``orient="auto"``: a table that stops early);
            ``attrs["frame_zscale"]``: embryo -> the z plane spacing (xy pixels) its clouds were read with;
            ``attrs["tracking"]``: embryo -> what :func:`tracklets` found (time step, sparse sampling, links across
            missing nuclei, tracklets per nucleus; empty with ``smooth="none"``); ``attrs["edge_crowding"]``: embryo
            -> the image edge its nuclei crowd most and their share (:func:`edge_crowding`: a cut-off embryo);
            ``attrs["annotation_cliffs"]``: embryo -> its first annotation cliff (:func:`annotation_cliffs`, as
            :meth:`~devolens.lineage.cliffs.Cliff.to_dict`: ``time`` is the last good time point), whose later rows
            are read apart: the embryo frame comes from the rows up to the cliff, the lineage smoothing does not
            link across it, and the debris screen takes them apart, so the rows before it are named as in the
            table cut there (``devolens lineage clean``), and the rows after it are named as well as a part of an
            embryo can be. ``attrs["flat_z"]``: embryo -> ``{"z", "time_points"}`` for an embryo whose nuclei all
            have one z (:func:`flat_embryos`: a 2-D projection, whose names are unreliable; noted, not refused).
            ``attrs["lost_positions"]``: embryo -> ``{"x", "y", "rows", "time_points"}`` for an embryo whose nuclei
            all have one x and one y (:func:`lost_positions`: positions lost on export), left out of the clouds
            with no prediction (empty); a table with no other embryo is refused (:class:`DevolensError`).
            ``attrs["crowded"]``: embryo -> ``{"nuclei", "time", "more"}`` for an embryo with a time point of more
            nuclei than an embryo ever holds (:func:`crowded_embryos`: several embryos in one table?).

        Warns
        -----
        IdentityWarning
            One per note of :func:`input_notes` on what was found in the input (a flat cloud, z the same for every
            nucleus; a table that stops at few nuclei,
            a nearly symmetric, lopsided or cut-off embryo, broken tracks, rows left out...): names to check, in
            the words ``devolens identify`` prints as its notes; first, one for a size column read under another
            name (``column diameter read as size``, also in ``attrs["notes"]``).
        """
        path = table if isinstance(table, (str, os.PathLike)) else None  # (quoted in the notes' commands)
        table = read_input(table)
        if progress is not None and not callable(progress):
            raise DevolensError(f"progress must be a function progress(done, total) or None, got {progress!r}")
        mirror = check_mirror(mirror)
        out = table.copy()  # the user's columns, as they are
        given = len(table.attrs.get("notes") or ())
        table = tidy_positions(table)  # (the same rows, in the same order)
        read_as = list(table.attrs.get("notes") or ())[given:]  # a size column read under another name: said
        if read_as:
            import warnings

            from devolens.errors import IdentityWarning

            out.attrs["notes"] = list(table.attrs["notes"])
            for text in read_as:
                warnings.warn(text, IdentityWarning, stacklevel=2)
        from devolens.lineage.populations import is_polar_body

        # polar bodies (AceTree's polar1, polar2) are no nuclei of the embryo: out of the clouds, no prediction
        polar = np.zeros(len(table), bool)
        if "cell" in table.columns:  # each distinct name checked once (a whole embryo: ~1000 names, 10^5 rows)
            codes, names = pd.factorize(table["cell"], use_na_sentinel=False)
            polar = np.array([is_polar_body(n) for n in names], bool)[codes] if len(names) else polar
        # rows without a position (x = y = z = 0 and no size: LIVE_tools' placeholder rows for the time points
        # before tracking started) are no nuclei seen in the image either
        numeric = numeric_columns(table)  # converted once: these checks, the stray screen and the clouds
        xyz = np.column_stack([numeric[c] for c in ("x", "y", "z")]) if {"x", "y", "z"} <= numeric.keys() else None
        unplaced = np.zeros(len(table), bool)
        if xyz is not None:
            unplaced = (xyz == 0).all(axis=1)
            if "size" in numeric:  # (no size: NaN, as 0)
                unplaced &= (numeric["size"] == 0) | np.isnan(numeric["size"])
        skipped = polar | unplaced
        # an embryo whose nuclei all share one x and y (positions lost on export) has nothing to be named from: left
        # out, with a note; refused when no embryo is left
        lost: dict[str, dict] = {}
        crowded: dict[str, dict] = {}
        if xyz is not None and "embryo" in table.columns:
            kept = np.flatnonzero(~skipped)
            emb_all = table["embryo"].astype(str).to_numpy()
            lost = lost_positions(emb_all[kept], numeric["time"][kept], xyz[kept, 0], xyz[kept, 1])
            if lost:
                gone = ~skipped & np.isin(emb_all, list(lost))
                if not (~skipped & ~gone).any():
                    raise DevolensError(f"{_lost_text(lost, len(lost) > 1)}: nothing to name; give each nucleus's x "
                                        "and y", path=path)
                skipped |= gone
            kept = np.flatnonzero(~skipped)  # (the nuclei of the table, the debris screened below among them)
            crowded = crowded_embryos(emb_all[kept], numeric["time"][kept])
        # where curation stopped (the count falls for good), the later rows are read apart: found on the table as
        # the lineage commands count it (polar bodies left out, every other row counted)
        cliffs = annotation_cliffs(table)
        late = cliff_rows(table, cliffs, numeric)
        # a spot far outside the embryo (debris) would steer the embryo frame of every nucleus: out, no prediction
        stray = np.zeros(len(table), bool)
        rows = np.flatnonzero(~skipped)
        stray[rows] = stray_nuclei(table.iloc[rows], None if xyz is None else xyz[rows])
        if late.any():  # the rows before a cliff screened on their own, as in the table cut there (the later ones
            rows = np.flatnonzero(~skipped & ~late)  # judged against the whole embryo, above)
            stray[rows] = stray_nuclei(table.iloc[rows], None if xyz is None else xyz[rows])
        skipped |= stray
        rows = np.flatnonzero(~skipped)
        cells = table if not skipped.any() else table.iloc[rows]
        whole = numeric  # (every row's: input_scales below)
        if skipped.any():
            numeric = {c: v[rows] for c, v in numeric.items()}
        out["pred_founder"] = pd.Series(None, index=out.index, dtype=object)
        out["pred_depth1"] = pd.Series(None, index=out.index, dtype=object)
        out["confidence"] = np.nan
        found = {"duplicates": 0, "time_breaks": [], "largest_clouds": {}, "frame_skewness": {}, "frame_zscale": {},
                 "tracking": {}, "frame_turn": {}}
        crowding: dict[str, tuple[str, float]] = {}
        flat: dict[str, dict] = {}
        if len(cells):
            pf, pd1, found = self._proba_checked(cells, zscale, progress, mirror, numeric, late[rows])
            emb = cells["embryo"].astype(str).to_numpy()
            x, y = numeric["x"], numeric["y"]  # (checked finite by the clouds)
            for name in pd.unique(emb):
                crowding[name] = edge_crowding(x[emb == name], y[emb == name])
            flat = flat_embryos(emb, numeric["time"], numeric["z"], found["largest_clouds"])
            f, d, conf = combine_probabilities(pf, pd1, self.parent)
            out.iloc[rows, out.columns.get_loc("pred_founder")] = np.asarray(self.founders, dtype=object)[f]
            out.iloc[rows, out.columns.get_loc("pred_depth1")] = np.asarray(self.depth1, dtype=object)[d]
            out.iloc[rows, out.columns.get_loc("confidence")] = conf
        out.attrs["polar_bodies"] = int(polar.sum())
        out.attrs["unplaced"] = int((unplaced & ~polar).sum())
        out.attrs["duplicate_nuclei"] = int(found["duplicates"])
        out.attrs["time_breaks"] = list(found["time_breaks"])
        out.attrs["largest_clouds"] = dict(found["largest_clouds"])
        out.attrs["frame_skewness"] = dict(found["frame_skewness"])
        out.attrs["frame_zscale"] = dict(found["frame_zscale"])
        out.attrs["frame_turn"] = dict(found["frame_turn"])
        out.attrs["stray_nuclei"] = int(stray.sum())
        out.attrs["tracking"] = dict(found["tracking"])
        out.attrs["edge_crowding"] = crowding
        out.attrs["mirrored"] = bool(mirror)
        out.attrs["annotation_cliffs"] = {name: c.to_dict() for name, c in cliffs.items()}
        out.attrs["flat_z"] = flat
        out.attrs["lost_positions"] = lost
        out.attrs["crowded"] = crowded
        if crowded and table.attrs.get("unread_embryo_column"):  # (the crowded note names it)
            out.attrs["unread_embryo_column"] = table.attrs["unread_embryo_column"]
        # the z scale and the sizes set against the cloud the model read (the rows with a prediction)
        out.attrs["input_scales"] = input_scales(table, zscale, rows=out["confidence"].notna().to_numpy(),
                                                 numeric=whole)
        import warnings

        from devolens.errors import IdentityWarning

        for text in input_notes(out.attrs, path):  # the notes `devolens identify` prints (which silences these)
            warnings.warn(text, IdentityWarning, stacklevel=2)
        return out
