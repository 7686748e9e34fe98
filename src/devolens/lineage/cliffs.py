"""Annotation cliffs and duplicated names in lineage tables.

A real embryo only gains cells, except for a few apoptoses (a handful of cells over several
time points). When curation of a lineage table stops part-way, the number of annotated
nuclei falls suddenly and never comes back: an *annotation cliff*. Everything after the
cliff is untrustworthy.

Detection rule (one embryo, total cells per time point ``n_t``, ``peak_t`` = the largest
count seen so far since the start or the previous cliff, short spikes left out):

0. *Spikes*: a count that stands above the counts on both sides of it as a drop (rule 1)
   would, for at most ``max_spike`` time points, with the count after it back at the level
   before it (within ``min_drop``), is no level the embryo reached (extra detections in a
   frame or two): for the peak and for a recovery it counts as the higher of its two sides.
   So the fall back after a spike is no cliff; a fall below the count before it still is.
1. *Drop*: at time ``t`` the count is below the peak by at least ``min_drop`` cells
   (absolute; apoptosis explains fewer) **and** by at least ``min_fraction`` of the peak
   (relative; counting noise in a large embryo explains less).
2. *No recovery*: within the next ``window`` time points (as many as the table has) the
   count never comes back to within ``min_drop`` cells of the peak. A dip that recovers is
   a transient (e.g. a badly annotated frame), not a cliff.

The *last good time* of a cliff is the last time point before the drop whose count was
still within ``min_drop`` cells of the peak (for a sudden cliff: the time point just before
it). The count reported after the cliff is the bottom of the fall within ``window`` time
points, at its own time point (``after_time``; for a sudden cliff ``first_bad_time``).
Scanning continues from that bottom with the peak reset, so several cliffs are reported (a
fall spread over a few time points counts once); the table is trustworthy up to the first one.

On a table (:func:`find_cliffs`, :func:`clean_table`) the counts are those of the table as
``devolens lineage clean`` writes it: exact copies of a row (a table, or a block of time
points, saved twice) are dropped as ``devolens lineage populations`` drops them, and a
name repeated at one time point counts once. Copies alone never make a cliff.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from devolens import checks
from devolens.errors import DevolensValueError
from devolens.lineage.populations import populations


def _counts(values, name: str) -> np.ndarray:
    """``values`` as int64, refusing what would be read as another number (NaN as -2**63, 1.5 as 1, '3' as text)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DevolensValueError(f"{name} must be numbers (one per time point)") from None
    bad = ~np.isfinite(arr) | (arr != np.round(arr))
    if bad.any():
        raise DevolensValueError(f"{name} must be whole numbers; item {int(np.argmax(bad))} is {arr[bad][0]:g}")
    return arr.astype(np.int64)


@dataclass(frozen=True)
class Cliff:
    """One annotation cliff.

    Attributes
    ----------
    time : int
        Last good time point before the fall.
    before : int
        Cells at ``time``.
    after : int
        Cells at the bottom of the fall (the lowest count within ``window`` time points
        of ``first_bad_time``; for a sudden cliff, the count at ``first_bad_time``).
    first_bad_time : int
        First time point of the fall.
    after_time : int or None
        Time point of ``after`` (the bottom of the fall); ``first_bad_time`` for a sudden cliff, later for a
        fall spread over several time points. None only when built without it (then read ``first_bad_time``).
    """

    time: int
    before: int
    after: int
    first_bad_time: int
    after_time: int | None = None

    @property
    def bottom_time(self) -> int:
        """Time point of ``after``: ``after_time``, else ``first_bad_time``."""
        return self.first_bad_time if self.after_time is None else self.after_time

    def to_dict(self) -> dict:
        """The JSON form: ``{"time", "before", "after", "first_bad_time", "after_time"}`` (``after_time``:
        :attr:`bottom_time`, never null)."""
        return {"time": int(self.time), "before": int(self.before), "after": int(self.after),
                "first_bad_time": int(self.first_bad_time), "after_time": int(self.bottom_time)}


@dataclass
class CliffReport:
    """Outcome of :func:`find_cliffs`.

    Attributes
    ----------
    cliffs : list of Cliff
        Every cliff, in time order (empty when none).
    last_good_time : int or None
        Last trustworthy time point: that of the first cliff, else the last time of the
        table (None for an empty table).
    duplicates : pandas.DataFrame
        Cell names that occur more than once at one time point: columns
        ``time, cell, count``.
    """

    cliffs: list[Cliff] = field(default_factory=list)
    last_good_time: int | None = None
    duplicates: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"time": [], "cell": [], "count": []})
    )

    def to_dict(self) -> dict:
        """The JSON form (``devolens lineage cliffs --json``): ``{"cliffs": [{"time", "before", "after",
        "first_bad_time", "after_time"}], "last_good_time": t, "duplicates": [{"time", "cell", "count"}]}``
        (:meth:`Cliff.to_dict`; ``last_good_time`` null for an empty table)."""
        dup = self.duplicates
        last = self.last_good_time
        return {
            "cliffs": [c.to_dict() for c in self.cliffs],
            "last_good_time": None if last is None else int(last),
            "duplicates": [{"time": int(t), "cell": str(cell), "count": int(n)}
                           for t, cell, n in zip(dup["time"], dup["cell"], dup["count"])],
        }


def detect_cliffs(
    times, totals, *, min_drop: int = 10, min_fraction: float = 0.2, window: int = 10, max_spike: int = 2
) -> list[Cliff]:
    """Find annotation cliffs in a series of cell counts (see the module docstring).

    Parameters
    ----------
    times : array-like of int
        Time points, ascending.
    totals : array-like of int
        Cells counted at each time point.
    min_drop : int
        Smallest fall from the running peak, in cells, that apoptosis cannot explain.
    min_fraction : float
        Smallest fall as a fraction of the running peak (0..1; 0 = absolute threshold only).
    window : int
        Time points after the fall within which a return to the peak (within
        ``min_drop``) marks it as a transient dip rather than a cliff.
    max_spike : int
        Longest spike, in time points: a rise above the counts on both sides (by ``min_drop``
        cells and ``min_fraction`` of it) after which the count is back at its level before,
        lasting no longer, sets no peak (0 = every count is a level).

    Returns
    -------
    list of Cliff

    Examples
    --------
    >>> n = [20, 21, 22, 60, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32]  # 37 extra detections at time 3
    >>> detect_cliffs(range(len(n)), n)
    []
    >>> detect_cliffs(range(8), [20, 21, 22, 23, 24, 5, 5, 6])
    [Cliff(time=4, before=24, after=5, first_bad_time=5, after_time=5)]
    """
    t = _counts(times, "times")
    n = _counts(totals, "totals")
    if t.shape != n.shape or t.ndim != 1:
        raise DevolensValueError("times and totals must be 1-D arrays of the same length")
    if len(t) > 1 and np.any(np.diff(t) <= 0):
        order = np.argsort(t, kind="stable")
        t, n = t[order], n[order]
    min_drop = checks.whole(min_drop, "min_drop", 1, error=DevolensValueError)
    window = checks.whole(window, "window", 1, error=DevolensValueError)
    if not checks.is_number(min_fraction) or not 0 <= min_fraction <= 1:
        raise DevolensValueError(f"min_fraction must be a number from 0 to 1, got {min_fraction!r}")
    max_spike = checks.whole(max_spike, "max_spike", 0, error=DevolensValueError)
    level = _without_spikes(n, min_drop, min_fraction, max_spike)  # the counts the embryo held: peaks and recoveries
    cliffs: list[Cliff] = []
    start = 0
    i = 1
    while i < len(n):
        seg = level[start:i]
        peak_pos = start + int(np.argmax(seg))
        peak = int(level[peak_pos])
        fall = peak - int(n[i])
        if fall >= min_drop and fall >= min_fraction * peak:
            ahead = level[i + 1 : i + 1 + window]
            recovered = ahead.size > 0 and int(ahead.max()) >= peak - min_drop + 1
            if not recovered:
                # last good: last time in [peak_pos, i) still within min_drop of the peak, a spike's time
                # points left out where a steady count qualifies (they are no better than the fall after them)
                ok = np.flatnonzero(level[peak_pos:i] > peak - min_drop) + peak_pos
                steady = ok[level[ok] == n[ok]]
                ok = steady if steady.size else ok
                g = int(ok[-1])
                # the fall may go on for a few time points: its bottom (within the window)
                # is the count reported after the cliff and the start of the next segment
                bottom = i + int(np.argmin(n[i : i + 1 + window]))
                cliffs.append(Cliff(time=int(t[g]), before=int(n[g]), after=int(n[bottom]), first_bad_time=int(t[i]),
                                    after_time=int(t[bottom])))
                start = bottom
                i = bottom
        i += 1
    return cliffs


def _without_spikes(n: np.ndarray, min_drop: int, min_fraction: float, max_spike: int) -> np.ndarray:
    """``n`` with each spike lowered to the higher of the counts on its two sides.

    A spike is a run of at most ``max_spike`` counts that each stand above both sides as a cliff's drop would
    (by ``min_drop`` cells and ``min_fraction`` of the count) while the count after the run is back at the level
    before it (within ``min_drop``): the count fell back, not below, so it marks no cliff.
    """
    level = n.copy()
    if max_spike < 1 or len(n) < 3:
        return level
    for j in range(1, len(n) - 1):
        for m in range(1, max_spike + 1):
            if j + m >= len(n):
                break
            pre, post = int(n[j - 1]), int(n[j + m])
            low = int(n[j : j + m].min())
            rise = low - max(pre, post)
            if post > pre - min_drop and rise >= min_drop and rise >= min_fraction * low:
                level[j : j + m] = np.minimum(level[j : j + m], max(pre, post))
                break
    return level


def find_duplicates(df: pd.DataFrame) -> pd.DataFrame:
    """Cell names that occur more than once at one time point (unnamed rows ignored).

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy lineage table (``time``, ``cell``).

    Returns
    -------
    pandas.DataFrame
        Columns ``time, cell, count`` (count >= 2), sorted by time and name.
    """
    checks.dataframe(df, ("time", "cell"))
    key = [c for c in ("embryo", "time", "cell") if c in df.columns]  # a name repeats within one embryo only
    named = df.loc[df["cell"].fillna("").astype(str) != "", key]
    dup = named.duplicated(keep=False).to_numpy()
    if not dup.any():
        return pd.DataFrame({"time": pd.Series([], dtype=np.int64), "cell": pd.Series([], dtype=object),
                             "count": pd.Series([], dtype=np.int64)})
    g = named[dup].groupby(key, sort=True).size().rename("count").reset_index()
    return g[["time", "cell", "count"]].astype({"time": np.int64, "count": np.int64})


def find_cliffs(
    df: pd.DataFrame, *, min_drop: int = 10, min_fraction: float = 0.2, window: int = 10, max_spike: int = 2
) -> CliffReport:
    """Find annotation cliffs and duplicated names in a tidy lineage table of one embryo.

    The counts searched are those of the table as :func:`clean_table` keeps it: exact copies of
    a row dropped (as ``devolens lineage populations`` drops them) and each name counted once
    at a time point, so a block of time points saved twice makes no cliff.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy lineage table (see :mod:`devolens.io.tables`).
    min_drop, min_fraction, window, max_spike
        See :func:`detect_cliffs`.

    Returns
    -------
    CliffReport
        ``duplicates`` lists the names repeated at one time point of ``df`` as it is (copies
        included).
    """
    checks.dataframe(df, ("time", "cell"))
    named_dup, copy = _repeated_rows(df)
    drop = named_dup | copy
    pops = populations(df.loc[~drop] if drop.any() else df)
    cliffs = detect_cliffs(
        pops["time"].to_numpy(), pops["total"].to_numpy(), min_drop=min_drop, min_fraction=min_fraction,
        window=window, max_spike=max_spike,
    )
    if cliffs:
        last = cliffs[0].time
    else:
        last = int(pops["time"].iloc[-1]) if len(pops) else None
    return CliffReport(cliffs=cliffs, last_good_time=last, duplicates=find_duplicates(df))


def _repeated_rows(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows :func:`clean_table` drops: (later rows of a name repeated at one time point of an embryo, later exact
    copies of an unnamed row). Exact copies need positions to be told from other nuclei (see
    :func:`~devolens.lineage.populations.drop_copies`): a table without x and y has none."""
    named = (df["cell"].fillna("").astype(str) != "").to_numpy()
    key = [c for c in ("embryo", "time", "cell") if c in df.columns]
    named_dup = df.duplicated(subset=key, keep="first").to_numpy() & named
    if {"x", "y"} <= set(df.columns):
        copy = df.duplicated(keep="first").to_numpy() & ~named
    else:
        copy = np.zeros(len(df), dtype=bool)
    return named_dup, copy


@dataclass
class CleanReport:
    """What :func:`clean_table` removed.

    Attributes
    ----------
    cliffs : CliffReport
        The cliff report of the input table.
    rows_in, rows_out : int
        Rows before and after cleaning.
    rows_after_cliff : int
        Rows dropped because they lie after the last good time.
    times_dropped : int
        Time points dropped after the last good time.
    duplicate_rows : int
        Extra rows of duplicated names dropped (the first row of each name is kept; exact copies of
        a named row are among them).
    copy_rows : int
        Unnamed rows dropped as exact copies of an earlier row (same time point and position).
    """

    cliffs: CliffReport
    rows_in: int
    rows_out: int
    rows_after_cliff: int
    times_dropped: int
    duplicate_rows: int
    copy_rows: int = 0

    def to_dict(self) -> dict:
        """The JSON form: :meth:`CliffReport.to_dict` of ``cliffs`` and the row counts."""
        d = self.cliffs.to_dict()
        d.update(rows_in=self.rows_in, rows_out=self.rows_out, rows_after_cliff=self.rows_after_cliff,
                 times_dropped=self.times_dropped, duplicate_rows=self.duplicate_rows, copy_rows=self.copy_rows)
        return d


def cut_at_cliff(df: pd.DataFrame, last_good_time: int | None) -> pd.DataFrame:
    """Keep the rows up to and including ``last_good_time`` (all rows when None)."""
    if last_good_time is None:
        return df.copy()
    last_good_time = checks.whole(last_good_time, "last_good_time", floats=True)  # a time point: 37.0 is 37
    return df.loc[df["time"].to_numpy() <= last_good_time].reset_index(drop=True)


def clean_table(
    df: pd.DataFrame, *, min_drop: int = 10, min_fraction: float = 0.2, window: int = 10, max_spike: int = 2
) -> tuple[pd.DataFrame, CleanReport]:
    """Cut a table at its first annotation cliff and drop duplicated names and copied rows.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy lineage table of one embryo.
    min_drop, min_fraction, window, max_spike
        See :func:`detect_cliffs`; the cliffs are found as :func:`find_cliffs` finds them, on
        the table without the rows dropped here.

    Returns
    -------
    clean : pandas.DataFrame
        The trustworthy part, with only the first row of each (time, named cell) and no exact
        copy of an unnamed row; ``attrs`` kept.
    report : CleanReport
        What was removed.
    """
    rep = find_cliffs(df, min_drop=min_drop, min_fraction=min_fraction, window=window, max_spike=max_spike)
    cut = cut_at_cliff(df, rep.last_good_time if rep.cliffs else None)
    named_dup, copy = _repeated_rows(cut)
    clean = cut.loc[~(named_dup | copy)].reset_index(drop=True)
    clean.attrs = dict(df.attrs)
    times_in = df["time"].nunique()
    report = CleanReport(
        cliffs=rep,
        rows_in=len(df),
        rows_out=len(clean),
        rows_after_cliff=len(df) - len(cut),
        times_dropped=times_in - cut["time"].nunique(),
        duplicate_rows=int(named_dup.sum()),
        copy_rows=int(copy.sum()),
    )
    return clean, report
