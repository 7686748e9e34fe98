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

Three more findings on a table (:func:`find_cliffs`), none of them a cliff of the total:

- *Lineage cliffs* (:func:`detect_letter_cliffs`): curators often work one lineage at a time, so a lineage whose
  curation stopped can leave the total growing. A population letter (A, E, M, C, D; P and Z are one or two cells)
  that falls from at least ``min_level`` cells to (nearly) none and stays there to the end of the table, while the
  other cells of the embryo go on, is reported with its letter.
- *Dips* (:func:`detect_dips`): one or two time points whose total falls below both neighbours by a cliff's drop and
  recovers right after (a nuclei file cut short, a half-curated time point): no cliff, but no count of the embryo.
- *Lone time points* (:func:`lone_times`): a single time point set apart from a main run of time points far beyond
  that run's spacing and span, with few rows (a mistyped time, 1050 in a table of 1..140; a sparse table is no
  such); in a table too short for a main run, its first or last time point so set apart from the others (1050
  after 1..4). Its rows are left out of the series searched, so it makes no cliff; :func:`clean_table` drops them.
- *Names stop* (:func:`detect_names_stop`): every lineage falls to none at once while the cells go on unnamed
  (naming stopped past the curated range): said once, not as a lineage cliff each.

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
from devolens.io.tables import time_unit
from devolens.lineage.names import LETTERS
from devolens.lineage.populations import miscased_note, populations


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


#: Population letters searched for lineage cliffs: P (P0-P4) and Z (Z2, Z3) are one or two cells, never a level.
LETTER_CLIFF_LETTERS: tuple[str, ...] = ("A", "E", "M", "C", "D")


@dataclass(frozen=True)
class LetterCliff:
    """A lineage cliff: one population letter falls to (nearly) no cells and stays there while the embryo goes on.

    Attributes
    ----------
    letter : str
        The population letter (A, E, M, C or D).
    time, before, after, first_bad_time, after_time : int
        As in :class:`Cliff`, counting the cells of ``letter``.
    """

    letter: str
    time: int
    before: int
    after: int
    first_bad_time: int
    after_time: int

    @property
    def bottom_time(self) -> int:
        """Time point of ``after`` (as :attr:`Cliff.bottom_time`)."""
        return self.after_time

    def to_dict(self) -> dict:
        """The JSON form: ``{"letter", "time", "before", "after", "first_bad_time", "after_time"}``."""
        return {"letter": self.letter, **Cliff.to_dict(self)}  # (Cliff's fields, bottom_time the after_time)


def describe_fall(cliff: Cliff | LetterCliff) -> str:
    """A cliff's fall in words, each count at the time it is said to be (the bottom of a fall spread over several
    time points is later than its start).

    Parameters
    ----------
    cliff : Cliff or LetterCliff
        The cliff.

    Returns
    -------
    str
        ``B -> A cells at time T`` (``T``: :attr:`Cliff.bottom_time`), followed by ``, falling from time F`` when
        the fall began at an earlier time point ``F`` (:attr:`Cliff.first_bad_time`).
    """
    text = f"{cliff.before} -> {cliff.after} cells at time {cliff.bottom_time}"
    if cliff.bottom_time != cliff.first_bad_time:
        text += f", falling from time {cliff.first_bad_time}"
    return text


@dataclass(frozen=True)
class Dip:
    """One or two time points whose total falls below both neighbours by a cliff's drop, then recovers.

    Attributes
    ----------
    first_time, last_time : int
        The time points of the dip (the same for a dip of one time point).
    cells : tuple of int
        The count at each time point of the dip.
    before, after : int
        The counts at the time points just before and just after it.
    """

    first_time: int
    last_time: int
    cells: tuple[int, ...]
    before: int
    after: int

    def to_dict(self) -> dict:
        """The JSON form: ``{"first_time", "last_time", "cells": [...], "before", "after"}``."""
        return {"first_time": int(self.first_time), "last_time": int(self.last_time),
                "cells": [int(c) for c in self.cells], "before": int(self.before), "after": int(self.after)}


@dataclass(frozen=True)
class LoneTime:
    """A time point standing alone, far from the rest of the table (a mistyped time?).

    Attributes
    ----------
    time : int
        The time point.
    cells : int
        Its count.
    nearest : int
        The nearest time point of the rest of the table.
    step : int or float
        The table's time step (:func:`devolens.io.tables.time_step`: 90 for time in seconds at 90 s; the median step
        of time in irregular units, :func:`devolens.io.tables.irregular_time`: 93.5 for acquisition times in
        seconds 89-97 apart): time points ``step`` apart are consecutive, as the readers count them.
    missing : int or None
        The one time point missing from the rest of the table, when exactly one is (time 78 of 1..80 missing
        beside a lone time 780: the time mistyped?); None otherwise.
    """

    time: int
    cells: int
    nearest: int
    step: int | float = 1
    missing: int | None = None

    @property
    def time_points(self) -> int:
        """How many of the table's own time points (one per :attr:`step`) it lies from :attr:`nearest`: 910 for
        time 1050 after time 140, and for time 94500 after time 12600 in a table in seconds at 90 s."""
        return int(abs(int(self.time) - int(self.nearest)) // max(self.step, 1))

    def to_dict(self) -> dict:
        """The JSON form: ``{"time", "cells", "nearest"}``, and ``"missing"`` when set."""
        d = {"time": int(self.time), "cells": int(self.cells), "nearest": int(self.nearest)}
        if self.missing is not None:
            d["missing"] = int(self.missing)
        return d


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
    letters : list of LetterCliff
        Lineage cliffs (:func:`detect_letter_cliffs`), in time order.
    dips : list of Dip
        Dips of the total that recover (:func:`detect_dips`).
    lone : list of LoneTime
        Time points standing alone (:func:`lone_times`): left out of the series searched, never a cliff.
    names_stop : Cliff or None
        Where naming stops while the cells stay annotated unnamed (:func:`detect_names_stop`): every lineage
        falls at once, said once here rather than as a lineage cliff each.
    notes : list of str
        One-line notes on the names counted, for the command to print: the rows whose names are Sulston names but
        for their case (:func:`~devolens.lineage.populations.miscased_note`, as ``lineage populations`` notes them),
        counted in the total only, so that a lineage's cells miscased (``Ab...``) fall out of its letter without a
        lineage cliff. Not in :meth:`to_dict`.
    """

    cliffs: list[Cliff] = field(default_factory=list)
    last_good_time: int | None = None
    duplicates: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"time": [], "cell": [], "count": []})
    )
    letters: list[LetterCliff] = field(default_factory=list)
    dips: list[Dip] = field(default_factory=list)
    lone: list[LoneTime] = field(default_factory=list)
    names_stop: Cliff | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON form (``devolens lineage cliffs --json``): ``{"cliffs": [{"time", "before", "after",
        "first_bad_time", "after_time"}], "last_good_time": t, "duplicates": [{"time", "cell", "count"}]}``
        (:meth:`Cliff.to_dict`; ``last_good_time`` null for an empty table), with ``"letters"``
        (:meth:`LetterCliff.to_dict`), ``"dips"`` (:meth:`Dip.to_dict`) and ``"lone_times"``
        (:meth:`LoneTime.to_dict`) lists added only when they hold something, and ``"names_stop"``
        (:meth:`Cliff.to_dict` of the named cells) only when naming stops."""
        dup = self.duplicates
        last = self.last_good_time
        out = {
            "cliffs": [c.to_dict() for c in self.cliffs],
            "last_good_time": None if last is None else int(last),
            "duplicates": [{"time": int(t), "cell": str(cell), "count": int(n)}
                           for t, cell, n in zip(dup["time"], dup["cell"], dup["count"])],
        }
        for key, items in (("letters", self.letters), ("dips", self.dips), ("lone_times", self.lone)):
            if items:
                out[key] = [x.to_dict() for x in items]
        if self.names_stop is not None:
            out["names_stop"] = self.names_stop.to_dict()
        return out



def _thresholds(min_drop, min_fraction) -> int:
    """``min_drop`` as a whole number of cells (at least 1), ``min_fraction`` checked (0..1): a cliff's drop, as
    :func:`detect_cliffs` and :func:`detect_dips` take it."""
    min_drop = checks.whole(min_drop, "min_drop", 1, error=DevolensValueError)
    if not checks.is_number(min_fraction) or not 0 <= min_fraction <= 1:
        raise DevolensValueError(f"min_fraction must be a number from 0 to 1, got {min_fraction!r}")
    return min_drop

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
    t, n = _series(times, totals, "totals")
    min_drop = _thresholds(min_drop, min_fraction)
    window = checks.whole(window, "window", 1, error=DevolensValueError)
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


def _series(times, counts, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``times`` and ``counts`` (:func:`_counts`) as two 1-D arrays of one length, in time order."""
    t = _counts(times, "times")
    n = _counts(counts, what)
    if t.shape != n.shape or t.ndim != 1:
        raise DevolensValueError(f"times and {what} must be 1-D arrays of the same length")
    if len(t) > 1 and np.any(np.diff(t) <= 0):
        order = np.argsort(t, kind="stable")
        t, n = t[order], n[order]
    return t, n


def detect_dips(
    times, totals, *, min_drop: int = 10, min_fraction: float = 0.2, max_len: int = 2
) -> list[Dip]:
    """Find dips: one or two time points whose count falls below the count before them by a cliff's drop (at least
    ``min_drop`` cells and ``min_fraction`` of that count) and is back within ``min_drop`` of it right after.

    A dip is no cliff (the count recovers) and no count of the embryo either: a nuclei file cut short, a damaged or
    half-curated time point.

    Parameters
    ----------
    times : array-like of int
        Time points.
    totals : array-like of int
        Cells counted at each time point.
    min_drop, min_fraction
        See :func:`detect_cliffs`.
    max_len : int
        Longest dip, in time points.

    Returns
    -------
    list of Dip
        In time order.

    Examples
    --------
    >>> detect_dips(range(1, 7), [180, 185, 188, 86, 190, 192])
    [Dip(first_time=4, last_time=4, cells=(86,), before=188, after=190)]
    """
    t, n = _series(times, totals, "totals")
    min_drop = _thresholds(min_drop, min_fraction)
    max_len = checks.whole(max_len, "max_len", 1, error=DevolensValueError)
    dips: list[Dip] = []
    j = 1
    while j < len(n) - 1:
        found = 0
        for m in range(1, max_len + 1):
            if j + m >= len(n):
                break
            pre, post = int(n[j - 1]), int(n[j + m])
            fall = pre - int(n[j : j + m].max())
            if fall >= min_drop and fall >= min_fraction * pre and post > pre - min_drop:
                dips.append(Dip(first_time=int(t[j]), last_time=int(t[j + m - 1]),
                                cells=tuple(int(c) for c in n[j : j + m]), before=pre, after=post))
                found = m
                break
        j += found + 1 if found else 1
    return dips


def lone_times(times, totals, *, few: float = 0.5, min_run: int = 5, min_times: int = 6,
               spacing: float = 10.0) -> list[LoneTime]:
    """Find time points standing alone: each a single time point set apart from a real main run of time points, far
    beyond that run's own spacing, holding at most ``few`` times the median count of the main run. A mistyped time
    (1050 in a table of 1..140).

    The table is split into runs at gaps of more missing time points than the table has (as the readers' note on
    gaps leaves such a gap out; counted in the table's own time points, one per its regular step,
    :func:`devolens.io.tables.time_step`: a table in seconds at 90 s misses 9 time points between 90 and 990, as
    one numbered 1, 2, 3... does between 1 and 11; one per its median step for time in irregular units,
    :func:`devolens.io.tables.irregular_time`) that are also more than ``spacing`` times the median step of
    the table. The biggest run (most time points) is the main run; it must hold at least ``min_run`` time points
    and at least half of the table's, else nothing is flagged (a sparse table, 1, 40, 80, 120, 160, is sampled so,
    not mistyped). A single-point run is lone when its gap to the nearest time point is more than ``spacing`` times
    the main run's median step **and** more than the main run's span, and it holds at most ``few`` times the main
    run's median count, or whatever its count when its gap is also more than ``spacing`` times the main run's
    largest gap: a time point set that far apart from a run with no such gap of its own is a mistyped time even when
    its count is normal (time 78 of a table of 1..80 typed 780). When the main run misses exactly one time point of
    its step, it is said (:attr:`LoneTime.missing`).

    A table of fewer than ``min_times`` time points (too short for a main run) is searched at its ends only: its
    first or last time point is lone when the others (at least two) are one run (no gap over ``spacing`` times
    their median step) and it stands apart from them as above: more of their time points missing in its gap than
    the table has, a gap more than ``spacing`` times their median step and more than their span, and at most
    ``few`` times their median count, whatever its gap (a row mistyped 1050 after 1, 2, 3, 4 is no annotation
    cliff). A table of
    fewer than three time points has none.

    Parameters
    ----------
    times : array-like of int
        Time points.
    totals : array-like of int
        Cells counted at each time point.
    few : float
        Largest count of a lone time point, as a fraction of the median count of the main run.
    min_run : int
        Fewest time points of the main run.
    min_times : int
        Fewest time points of a table searched for a main run and its lone time points; a shorter one is searched
        at its ends only.
    spacing : float
        How many of the main run's median steps a lone time point's gap must exceed.

    Returns
    -------
    list of LoneTime
        In time order; empty when the table is one run.

    Examples
    --------
    >>> lone_times([1, 2, 3, 4, 5, 6, 7, 8, 50], [10, 12, 14, 16, 18, 20, 22, 24, 1])
    [LoneTime(time=50, cells=1, nearest=8, step=1, missing=None)]
    >>> lone_times([1, 2, 3, 4, 5, 6, 8, 9, 10, 70], [10, 12, 14, 16, 18, 20, 24, 26, 28, 22])  # 7 typed as 70?
    [LoneTime(time=70, cells=22, nearest=10, step=1, missing=7)]
    >>> lone_times([1, 40, 80, 120, 160], [4, 28, 90, 180, 350])  # a sparse table
    []
    >>> lone_times([1, 2, 3, 4, 1050], [21, 22, 23, 24, 1])  # a short table: its ends only
    [LoneTime(time=1050, cells=1, nearest=4, step=1, missing=None)]
    """
    t, n = _series(times, totals, "totals")
    if len(t) < max(2, min_times):
        return _lone_ends(t, n, few=few, spacing=spacing)
    gaps = np.diff(t)
    unit, missing = _missing_points(t)
    breaks = np.flatnonzero((missing > len(t)) & (gaps > spacing * float(np.median(gaps))))
    if not breaks.size:
        return []
    starts = np.r_[0, breaks + 1]
    ends = np.r_[breaks + 1, len(t)]
    sizes = ends - starts
    main = int(np.lexsort(([n[a:b].sum() for a, b in zip(starts, ends)], sizes))[-1])  # most time points, then cells
    a0, b0 = int(starts[main]), int(ends[main])
    if b0 - a0 < min_run or 2 * (b0 - a0) < len(t):
        return []
    run_gaps = np.diff(t[a0:b0])
    step, widest = float(np.median(run_gaps)), float(run_gaps.max())
    span = int(t[b0 - 1] - t[a0])
    level = float(np.median(n[a0:b0]))
    hole = _one_missing(t[a0:b0], unit)
    out = []
    for k, (a, b) in enumerate(zip(starts, ends)):
        if k == main or b - a != 1:
            continue
        near = a - 1 if a > 0 and (a == len(t) - 1 or t[a] - t[a - 1] <= t[a + 1] - t[a]) else a + 1
        gap = abs(int(t[a] - t[near]))
        if gap <= spacing * step or gap <= span or (n[a] > few * level and gap <= spacing * widest):
            continue
        out.append(LoneTime(time=int(t[a]), cells=int(n[a]), nearest=int(t[near]), step=unit, missing=hole))
    return out


def _one_missing(t: np.ndarray, unit) -> int | None:
    """The one time point of step ``unit`` missing from the sorted time points ``t`` (a run), when exactly one is;
    None otherwise (none or several missing, or time in irregular units)."""
    if len(t) < 2 or not float(unit).is_integer() or int(unit) < 1:
        return None
    unit = int(unit)
    gaps = np.diff(t)
    if np.any(gaps % unit):
        return None
    holes = gaps // unit - 1
    if int(holes.sum()) != 1:
        return None
    return int(t[int(np.flatnonzero(holes)[0])] + unit)


def _missing_points(t: np.ndarray, gaps=None) -> tuple[int | float, np.ndarray]:
    """(the step of the time points ``t``, the time points of that step missing in each of ``gaps``), as the
    readers count them (:func:`~devolens.io.tables.time_unit`); ``gaps``: those of ``t`` unless given."""
    gaps = np.diff(t) if gaps is None else np.asarray(gaps)
    unit, irregular = time_unit(t)
    if irregular is not None:  # acquisition times in seconds, 89-97 apart: one time point per median step
        return irregular.step, irregular.missing(gaps)
    return unit, -(-gaps // unit) - 1  # time points of the step missing in each gap (the readers' holes)


def _lone_ends(t: np.ndarray, n: np.ndarray, *, few: float, spacing: float) -> list[LoneTime]:
    """:func:`lone_times` of a table too short for a main run (``t`` sorted): its first or last time point, set
    apart from the others (at least two, one run) as :func:`lone_times` says. At most one end can be (the other's
    gap would lie within the span it must exceed)."""
    if len(t) < 3:
        return []
    for k, near in ((0, 1), (len(t) - 1, len(t) - 2)):
        rest = np.delete(np.arange(len(t)), k)
        tr, gap = t[rest], abs(int(t[k] - t[near]))
        step = float(np.median(np.diff(tr)))
        unit, missing = _missing_points(tr, [gap])
        if (np.diff(tr).max() > spacing * step or int(missing[0]) <= len(t) or gap <= spacing * step
                or gap <= int(tr[-1] - tr[0]) or n[k] > few * float(np.median(n[rest]))):
            continue  # (a full count is no lone time here: of 3-5 time points, which one is mistyped is unclear)
        return [LoneTime(time=int(t[k]), cells=int(n[k]), nearest=int(t[near]), step=unit,
                         missing=_one_missing(tr, unit))]
    return []


def detect_letter_cliffs(
    pops: pd.DataFrame, *, letters=LETTER_CLIFF_LETTERS, min_level: int = 8, min_drop: int = 6,
    min_fraction: float = 0.5, window: int = 10,
) -> list[LetterCliff]:
    """Find lineage cliffs: a population letter whose curation stopped while the rest of the embryo went on.

    Each letter's count is searched with :func:`detect_cliffs` (``min_drop``, ``min_fraction``, ``window``); a
    cliff is kept when the letter held at least ``min_level`` cells before it, falls to (nearly) none (at most a
    tenth of that, at least 1) and stays there to the end of the table, while the embryo's other named cells (the
    other population letters, unnamed cells left out) were at least ``min_level`` and fell by less than
    ``min_fraction``: a fall of every lineage at once is a cliff of the total, or naming that stopped while the
    cells stay annotated unnamed (:func:`detect_names_stop`), each said once as such.

    Parameters
    ----------
    pops : pandas.DataFrame
        A populations table (:func:`~devolens.lineage.populations.populations`): ``time``, the letters, ``total``.
    letters : sequence of str
        Letters searched (P and Z are one or two cells: never a level).
    min_level : int
        Fewest cells of the letter, and of the rest of the embryo, before the fall.
    min_drop, min_fraction, window
        See :func:`detect_cliffs`.

    Returns
    -------
    list of LetterCliff
        In time order (then in the order of ``letters``).
    """
    checks.dataframe(pops, ("time", "total", *letters))
    min_level = checks.whole(min_level, "min_level", 1, error=DevolensValueError)
    out: list[LetterCliff] = []
    if len(pops) < 2:
        return out
    t, _ = _series(pops["time"].to_numpy(), pops["total"].to_numpy(), "totals")
    order = np.argsort(_counts(pops["time"].to_numpy(), "times"), kind="stable")
    where = {int(x): i for i, x in enumerate(t)}
    named = _named(pops)[order]
    for letter in letters:
        n = _counts(pops[letter].to_numpy(), letter)[order]
        for c in detect_cliffs(t, n, min_drop=min_drop, min_fraction=min_fraction, window=window):
            g, b = where[c.time], where[c.bottom_time]
            near = max(1, c.before // 10)
            if c.before < min_level or int(n[b:].max()) > near:
                continue
            rest_before, rest_after = int(named[g] - n[g]), int(named[b] - n[b])
            if rest_before < min_level or rest_after < (1 - min_fraction) * rest_before:
                continue
            out.append(LetterCliff(letter=letter, time=c.time, before=c.before, after=c.after,
                                   first_bad_time=c.first_bad_time, after_time=c.bottom_time))
    rank = {x: i for i, x in enumerate(letters)}
    return sorted(out, key=lambda c: (c.first_bad_time, rank[c.letter]))


def _named(pops: pd.DataFrame) -> np.ndarray:
    """Named cells at each row of a populations table: the sum of its population letters (unnamed cells, counted
    in ``total`` only, left out)."""
    cols = [c for c in LETTERS if c in pops.columns]
    if not cols:
        return np.zeros(len(pops), dtype=np.int64)
    return np.sum([_counts(pops[c].to_numpy(), c) for c in cols], axis=0).astype(np.int64)


def detect_names_stop(
    pops: pd.DataFrame, *, min_level: int = 8, min_drop: int = 6, min_fraction: float = 0.5, window: int = 10,
) -> Cliff | None:
    """Find where naming stops while the cells stay annotated, unnamed ('Nuc...' names past the curated range).

    The named cells (every population letter together) are searched with :func:`detect_cliffs` (``min_drop``,
    ``min_fraction``, ``window``): the first fall from at least ``min_level`` named cells to (nearly) none (at most
    a tenth, at least 1) that stays there to the end of the table, while the total falls by less than
    ``min_fraction`` and at least ``min_level`` unnamed cells go on, is returned (its counts those of the named
    cells). Every lineage falling at once with the total is a cliff of the total instead.

    Parameters
    ----------
    pops : pandas.DataFrame
        A populations table (:func:`~devolens.lineage.populations.populations`): ``time``, the letters, ``total``.
    min_level, min_drop, min_fraction, window
        See :func:`detect_letter_cliffs`.

    Returns
    -------
    Cliff or None
    """
    checks.dataframe(pops, ("time", "total"))
    min_level = checks.whole(min_level, "min_level", 1, error=DevolensValueError)
    if len(pops) < 2:
        return None
    t, total = _series(pops["time"].to_numpy(), pops["total"].to_numpy(), "totals")
    order = np.argsort(_counts(pops["time"].to_numpy(), "times"), kind="stable")
    named = _named(pops)[order]
    where = {int(x): i for i, x in enumerate(t)}
    for c in detect_cliffs(t, named, min_drop=min_drop, min_fraction=min_fraction, window=window):
        g, b = where[c.time], where[c.bottom_time]
        if c.before < min_level or int(named[b:].max()) > max(1, c.before // 10):
            continue
        if total[b] < (1 - min_fraction) * total[g] or int((total - named)[b:].min()) < min_level:
            continue
        return Cliff(time=c.time, before=c.before, after=c.after, first_bad_time=c.first_bad_time,
                     after_time=c.bottom_time)
    return None


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
        included). Lone time points (:func:`lone_times`) are left out of the counts searched for
        cliffs, dips (:func:`detect_dips`, with ``min_drop`` and ``min_fraction``, searched up to ``last_good_time``
        when there is a cliff: the noise after it is no dip) and lineage cliffs
        (:func:`detect_letter_cliffs`, with its own thresholds), and of ``last_good_time``. ``notes``: the
        note on names that are Sulston names but for their case (:func:`~devolens.lineage.populations.miscased_note`;
        their rows are in no lineage's letter), for the command to print.
    """
    checks.dataframe(df, ("time", "cell"))
    named_dup, copy = _repeated_rows(df)
    drop = named_dup | copy
    pops = populations(df.loc[~drop] if drop.any() else df)
    lone = lone_times(pops["time"].to_numpy(), pops["total"].to_numpy()) if len(pops) else []
    if lone:
        pops = pops.loc[~pops["time"].isin([x.time for x in lone])].reset_index(drop=True)
    times, totals = pops["time"].to_numpy(), pops["total"].to_numpy()
    cliffs = detect_cliffs(times, totals, min_drop=min_drop, min_fraction=min_fraction, window=window,
                           max_spike=max_spike)
    if cliffs:
        last = cliffs[0].time
    else:
        last = int(pops["time"].iloc[-1]) if len(pops) else None
    # dips are searched up to the first cliff's last good time only: after it curation stopped, and the noise of
    # the uncurated counts is no "dip that recovers" (it would contradict the cliff)
    upto = times <= last if cliffs else slice(None)
    return CliffReport(cliffs=cliffs, last_good_time=last, duplicates=find_duplicates(df),
                       letters=detect_letter_cliffs(pops, window=window),
                       dips=detect_dips(times[upto], totals[upto], min_drop=min_drop, min_fraction=min_fraction),
                       lone=lone,
                       names_stop=detect_names_stop(pops, window=window),
                       notes=[n for n in (miscased_note(df["cell"]),) if n])


def _repeated_rows(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows :func:`clean_table` drops: (later rows of a name repeated at one time point of an embryo, later exact
    copies of an unnamed row). Exact copies need positions to be told from other nuclei (see
    :func:`~devolens.lineage.populations.drop_copies`): a table without x and y has none."""
    named = (df["cell"].fillna("").astype(str) != "").to_numpy()
    key = [c for c in ("embryo", "time", "cell") if c in df.columns]
    named_dup = df.duplicated(subset=key, keep="first").to_numpy() & named
    if {"x", "y"} <= set(df.columns):
        from devolens.io.tables import exact_copies

        copy = exact_copies(df) & ~named
    else:
        copy = np.zeros(len(df), dtype=bool)
    return named_dup, copy


#: Largest share of a table's rows (up to its cut) that may repeat a cell name at one time point before
#: :func:`clean_table` refuses. A curated table repeats a name now and then (a nucleus saved twice, a typo):
#: a few rows in a thousand. When more than a tenth of the rows repeat a name, the names are not one per
#: nucleus (a table naming founders or lineages only, every cell of AB's lineage called "AB"), and keeping the
#: first row of each name would silently drop real nuclei: the embryo of 172 cells would become 7.
MAX_REPEATED_SHARE = 0.1
#: Fewest repeated-name rows :func:`clean_table` refuses for: a handful of repeats in a tiny table (2 of 8 rows)
#: are mistakes to drop, not a sign that the names are founders only.
MIN_REPEATED_ROWS = 10


def _check_repeats(named_dup: np.ndarray, df: pd.DataFrame) -> None:
    """Refuse to de-duplicate a table whose names are not one per nucleus (see :data:`MAX_REPEATED_SHARE`).

    ``named_dup`` marks the rows of ``df`` that repeat a name; exact copies of an earlier row (a block of time
    points saved twice: the same nuclei) are not counted, as dropping them loses nothing."""
    if {"x", "y"} <= set(df.columns) and named_dup.any():
        from devolens.io.tables import exact_copies

        named_dup = named_dup & ~exact_copies(df)
    repeated, rows = int(named_dup.sum()), len(df)
    if repeated >= MIN_REPEATED_ROWS and repeated > MAX_REPEATED_SHARE * rows:
        raise DevolensValueError(
            f"{repeated} of {rows} rows ({100 * repeated / rows:.0f} %) repeat a cell name at one time point: the "
            "table names founders or lineages only (or repeats names), so dropping repeated names would drop real "
            "nuclei; nothing was written. Run `devolens lineage populations` on the table as it is instead"
        )


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
    lone_rows : int
        Rows dropped at lone time points (:func:`lone_times`: a mistyped time?).
    """

    cliffs: CliffReport
    rows_in: int
    rows_out: int
    rows_after_cliff: int
    times_dropped: int
    duplicate_rows: int
    copy_rows: int = 0
    lone_rows: int = 0

    def to_dict(self) -> dict:
        """The JSON form: :meth:`CliffReport.to_dict` of ``cliffs`` and the row counts."""
        d = self.cliffs.to_dict()
        d.update(rows_in=self.rows_in, rows_out=self.rows_out, rows_after_cliff=self.rows_after_cliff,
                 times_dropped=self.times_dropped, duplicate_rows=self.duplicate_rows, copy_rows=self.copy_rows,
                 lone_rows=self.lone_rows)
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
    """Cut a table at its first annotation cliff and drop duplicated names, copied rows and lone time points.

    The cut follows the total's cliffs only: a lineage cliff or a dip (see :func:`find_cliffs`) is reported, not
    cut. The rows of a lone time point (:func:`lone_times`, a mistyped time) are dropped wherever it lies.

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

    Raises
    ------
    DevolensValueError
        When more than :data:`MAX_REPEATED_SHARE` of the rows kept (and at least :data:`MIN_REPEATED_ROWS`) repeat
        a cell name at one time point (not as exact copies): the names are not one per nucleus (founders or
        lineages only), and keeping the first row of each name would drop real nuclei.
    """
    rep = find_cliffs(df, min_drop=min_drop, min_fraction=min_fraction, window=window, max_spike=max_spike)
    kept = df.loc[~df["time"].isin([x.time for x in rep.lone])] if rep.lone else df
    cut = cut_at_cliff(kept, rep.last_good_time if rep.cliffs else None)
    named_dup, copy = _repeated_rows(cut)
    _check_repeats(named_dup, cut)
    clean = cut.loc[~(named_dup | copy)].reset_index(drop=True)
    clean.attrs = dict(df.attrs)
    report = CleanReport(
        cliffs=rep,
        rows_in=len(df),
        rows_out=len(clean),
        rows_after_cliff=len(kept) - len(cut),
        times_dropped=kept["time"].nunique() - cut["time"].nunique(),
        duplicate_rows=int(named_dup.sum()),
        copy_rows=int(copy.sum()),
        lone_rows=len(df) - len(kept),
    )
    return clean, report
