"""Lineage tables in, one tidy table out.

Readers for EPIC "CD" CSV tables (with their AuxInfo and TIME companions), AceTree nuclei
files (a zip or a folder of ``nuclei/tNNN-nuclei``), and the generic tidy CSV written by
:func:`write_tidy`. Every reader returns the *tidy table*: one row per nucleus per time point
with columns

``embryo`` (str), ``time`` (int, time point), ``cell`` (str, "" when unnamed),
``x``, ``y`` (float, pixels), ``z`` (float, planes), ``size`` (float, nucleus diameter in
pixels) and ``blot`` (float, EPIC only),

sorted by time (file order kept within a time point). ``df.attrs`` carries the metadata:

``format``: ``"epic"``, ``"acetree"`` or ``"tidy"``;
``source``: the path read (str);
``zscale``: z plane spacing in xy pixels (float) or None;
``ellipse``: ``{"xc", "yc", "maj", "min", "ang"}`` (pixels, degrees) or None;
``time_seconds``: ``{time point: seconds since the first}`` or None;
``seconds_per_time``: median seconds between the table's time points (an EPIC table's over those of its TIME file
that lie in the table's range), or None;
``axis``: EPIC axis code (e.g. ``"PDR"``) or None;
``missing_times`` (AceTree only): the runs ``(first, last)`` of time points with no nuclei file inside the series
(:func:`read_acetree`), ``[]`` when none;
``notes`` (when there are any): what the reader noted about the input, one line each.

Every problem with the input raises :class:`devolens.errors.DevolensError` naming the file; an EPIC AuxInfo or TIME
file given as the table is named as such (one picked up beside an EPIC table that cannot be read is ignored, with a
note in ``attrs["notes"]`` saying why and what is used instead). A table Excel saved under German, French...
settings (columns separated by semicolons, decimal commas) is read as the comma-separated one it stands for, with a
note; so are a table separated by tabs (a spreadsheet's 'Text (Tab delimited)', pandas' ``sep="\\t"``; an EPIC CD
table so separated without a note) and a comma-separated table with its decimal commas in quotes ("12,5"); an
unquoted decimal comma in a comma-separated table is refused (the commas cannot be told apart). Readers keep every
row; :func:`drop_duplicate_rows` drops exact copies of rows (a table saved twice) for counting.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import io
import json
import math
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from devolens import checks
from devolens.errors import DevolensError, DevolensValueError, ordinal
from devolens.io.atomic import TEXT_ERRORS, atomic_path, output_file

#: Columns of the tidy table, in order (``blot`` only when known).
TIDY_COLUMNS: tuple[str, ...] = ("embryo", "time", "cell", "x", "y", "z", "size")
#: Columns of an EPIC CD table.
EPIC_COLUMNS: tuple[str, ...] = (
    "cellTime", "cell", "time", "none", "global", "local", "blot", "cross", "z", "x", "y", "size", "gweight",
)
#: Columns an EPIC table must have for the tidy table.
EPIC_REQUIRED: tuple[str, ...] = ("cell", "time", "z", "x", "y", "size")
#: Columns of an EPIC AuxInfo file.
AUX_COLUMNS: tuple[str, ...] = (
    "name", "slope", "intercept", "xc", "yc", "maj", "min", "ang", "zc", "zslope", "time", "zpixres", "axis",
)
#: Columns a tidy CSV must have (``embryo`` defaults to the file name, ``size`` to NaN).
TIDY_REQUIRED: tuple[str, ...] = ("time", "cell", "x", "y", "z")

_META_KEYS = ("zscale", "ellipse", "time_seconds", "seconds_per_time", "axis", "ellipsoid", "seed", "apoptoses")
_NUCLEI_RE = re.compile(r"(?:^|/)t(\d+)-nuclei$")
_ACETREE_NCOLS = 10  # index, status, pred, succ1, succ2, x, y, z, diameter, name


# ----------------------------------------------------------------------------- helpers
def _table_path(path: Any) -> Path:
    """``path`` (str or Path) as a Path; a clear error for anything else (None, a number, a DataFrame, ``""``)."""
    return checks.path(path, "expected the path of a lineage table (str or Path)")


def _empty_meta() -> dict[str, Any]:
    return {k: None for k in _META_KEYS}


def _finish(df: pd.DataFrame, fmt: str, path: Path, meta: dict[str, Any]) -> pd.DataFrame:
    """Order columns, sort by time, attach attrs."""
    cols = list(TIDY_COLUMNS) + [c for c in df.columns if c not in TIDY_COLUMNS]
    df = df[cols]
    if not df["time"].is_monotonic_increasing:
        df = df.sort_values("time", kind="stable")
    df = df.reset_index(drop=True)
    df.attrs = {"format": fmt, "source": str(path), **_empty_meta(), **meta}
    size = pd.to_numeric(df["size"], errors="coerce") if "size" in df.columns else None
    bad = (size <= 0).to_numpy() if size is not None else np.zeros(len(df), bool)
    if bad.any():  # kept (a placeholder row may carry no size), but a renderer draws no nucleus for them: said
        i = int(np.flatnonzero(bad)[0])
        df.attrs["notes"] = list(df.attrs.get("notes") or []) + [
            f"{int(bad.sum())} row(s) give a nucleus size of 0 or less (e.g. {df['cell'].iat[i] or 'a nucleus'} at "
            f"time {df['time'].iat[i]}: {df['size'].iat[i]}): kept, but no size is known for them"]
    return df


def _sniff_binary(path: Path, head: "_Head") -> None:
    if head.data[:4] == b"PK\x03\x04":  # (a CSV reader given a zip: read_table(format="epic"), read_tidy)
        raise DevolensError('looks like an AceTree zip (a zip archive), not a CSV table: read it with '
                            'read_table(path), the format left out (detected) or format="acetree"', path=path)
    if head.data[:2] == _GZIP_MAGIC:  # (read_table and read_positions decompress it: _read_gzipped)
        raise DevolensError("gzip-compressed file: decompress it first (gunzip), or read it with read_table",
                            path=path)
    if b"\x00" in head.data:
        raise DevolensError("binary file, not a lineage table (CSV or AceTree zip/folder expected)", path=path)
    if head.not_utf8 and not head.cp1252:
        raise DevolensError(
            "binary or non-UTF-8 file, not a lineage table (CSV or AceTree zip/folder expected)", path=path
        )


def _not_utf8(head: bytes) -> bool:
    """Whether the first bytes ``head`` of a file are not UTF-8 (a multi-byte character cut at the end of the
    sample is no sign)."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 4
    return False


#: Control bytes that no text table holds (tab, line feed and carriage return are text).
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
#: a well-formed UTF-8 character of two to four bytes (cp1252 text rarely holds one: "Ã©" for "é")
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _is_cp1252(head: bytes, not_utf8: bool) -> bool:
    """Whether ``head`` (a file's first bytes) is Windows-1252 text that is not UTF-8: Excel's 'CSV (Comma
    delimited)' saved on Windows, e.g. with a ``µ`` in a header. ``not_utf8``: :func:`_not_utf8` of ``head``."""
    if not not_utf8 or _CONTROL_BYTES.search(head) \
            or _UTF8_MULTIBYTE.search(head):
        return False  # (a valid UTF-8 character beside a stray byte: mixed encodings, not Excel's cp1252 CSV)
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:  # (five byte values are not cp1252)
        return False
    return True


def _read_csv(path: Path, what: str, source: Any = None, **kwargs) -> pd.DataFrame:
    """pandas.read_csv with every parser problem turned into a DevolensError; ``source``: what to read, when not
    ``path`` itself (its text recoded: :func:`read_epic_auxinfo`). A row with more fields than the header said with
    :data:`DECIMAL_COMMA_ADVICE` (the commonest cause)."""
    try:
        return pd.read_csv(path if source is None else source, **kwargs)
    except FileNotFoundError:
        raise DevolensError("file not found", path=path) from None
    except pd.errors.EmptyDataError:
        raise DevolensError(f"empty file (expected {what})", path=path) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        if re.search(r"Expected \d+ fields in line \d+, saw \d+", msg):
            msg += f": a row with more fields than the header; {DECIMAL_COMMA_ADVICE}"
        raise DevolensError(f"cannot parse {what}: {msg}", path=path) from None


def _line(df: pd.DataFrame, i: int, line_offset: int) -> int:
    """File line of the ``i``-th row of ``df``: its row label plus ``line_offset``. The readers keep the labels of
    the rows as read, blank lines included (``skip_blank_lines=False``), so that dropping empty rows does not shift
    the line numbers of the rows after them; a file with quoted fields has its labels set to the rows' first
    lines (:func:`_drop_empty_rows`: a quoted field may hold a line break)."""
    return int(df.index[i]) + line_offset


#: bad values an error message lists (:func:`_lines_text`); the rest are counted
SHOWN_LINES = 5


def _lines_text(df: pd.DataFrame, bad: np.ndarray, line_offset: int) -> str:
    """Where the rows of ``df`` flagged by ``bad`` are, for an error message: ``line 7`` for one, ``lines 7, 9,
    12`` for several (the first :data:`SHOWN_LINES`, then ``...``): a table with many holes says so at once, not one
    per run."""
    at = np.flatnonzero(bad)
    shown = at[:SHOWN_LINES]
    more = ", ..." if len(at) > len(shown) else ""
    return f"line{'s' if len(at) > 1 else ''} {', '.join(str(_line(df, int(i), line_offset)) for i in shown)}{more}"


def _and_more(df: pd.DataFrame, bad: np.ndarray, line_offset: int) -> str:
    """After the first bad value's line and value in a message: ``""`` when it is the only one, else how many there
    are and their lines (``; 9 such values, on lines 2, 3, 4, 5, 6, ...``)."""
    n = int(np.count_nonzero(bad))
    return "" if n <= 1 else f"; {n} such values, on {_lines_text(df, bad, line_offset)}"


def _numeric(df: pd.DataFrame, cols, path: Path, *, line_offset: int = 2) -> None:
    """Convert ``cols`` to float in place; name the first bad value on error (its line: :func:`_line`), and how many
    there are (:func:`_and_more`)."""
    for c in cols:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            if s.dtype != np.float64:
                df[c] = s.astype(np.float64)
            continue
        conv = pd.to_numeric(s, errors="coerce")
        bad = conv.isna() & s.notna() & (s.astype(str).str.strip() != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DevolensError(
                f"column '{c}' is not numeric (line {_line(df, i, line_offset)}: {str(s.iloc[i])!r})"
                + (_time_hint(str(s.iloc[i])) if c == "time" else _decimal_hint(str(s.iloc[i])))
                + _and_more(df, bad.to_numpy(), line_offset),
                path=path
            )
        df[c] = conv.astype(np.float64)


def _decimal_hint(value: str) -> str:
    """What to do about a number written with a decimal comma (``'12,5'``, quoted in a comma-separated table) or
    with its thousands grouped (``'1.234,5'``, ``'1,234,567'``), else ``""``."""
    if _DECIMAL_COMMA.fullmatch(value):
        return f": {DECIMAL_COMMA_ADVICE}"
    if re.fullmatch(r"\s*[+-]?\d{1,3}(?:[.\s\u00a0\u202f]\d{3})+(?:,\d+)?\s*", value) or re.fullmatch(
            r"\s*[+-]?\d{1,3}(?:,\d{3}){2,}(?:\.\d+)?\s*", value):  # (1,234,567: English Excel's, quoted)
        return ": a number with its thousands grouped; write it without the grouping (1234,5 or 1234.5)"
    return ""


def _time_hint(value: str) -> str:
    """What to do about a time that is no number: ``t030`` (a frame's file name, as ``devolens segment``'s objects.csv
    gives a folder's frames) -> write 30."""
    stem = re.fullmatch(r"\s*(\D+?)0*(\d+)\s*", value)
    if stem is None:
        return ": time must be a number (a time point, or seconds)"
    return (f": time must be a number (a time point, or seconds); {value.strip()!r} looks like a frame's file name (as "
            "`devolens segment`'s objects.csv names a folder's frames): write the number in it instead, "
            f"{value.strip()} -> {stem.group(2)}, for every row")


def _check_no_missing(df: pd.DataFrame, cols, path: Path, *, line_offset: int = 2) -> None:
    """Refuse a missing value in ``cols``: how many, and the first few lines (:func:`_lines_text`)."""
    for c in cols:
        na = df[c].isna().to_numpy()
        if na.any():
            n = int(na.sum())
            what = "a missing value" if n == 1 else f"{n} missing values"
            raise DevolensError(f"column '{c}' has {what} ({_lines_text(df, na, line_offset)})", path=path)


#: Largest magnitude of a position or a size a table may give (pixels, planes, or a positions table's length unit):
#: no image is a million pixels across, and values near the float limit (1e308) overflow the sums that place an
#: embryo in a frame.
MAX_COORDINATE = 1e6


def _check_finite(df: pd.DataFrame, cols, path: Path, *, line_offset: int = 2) -> None:
    """Refuse an infinite value (pandas reads ``inf`` as a number) or one beyond ±:data:`MAX_COORDINATE` in the
    numeric columns ``cols``, naming the first (its line: :func:`_line`). Missing values (NaN) are left to
    :func:`_check_no_missing` (a size may be unknown). Passed on, they are written to tidy tables as they are,
    counted in a render's frames.csv while drawn nowhere, or overflow its geometry."""
    for c in cols:
        v = df[c].to_numpy(np.float64)
        with np.errstate(invalid="ignore"):
            bad = np.abs(v) > MAX_COORDINATE
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            where = f"line {_line(df, i, line_offset)}: {v[i]:g}{_and_more(df, bad, line_offset)}"
            if np.isinf(v[i]):
                text = f"column '{c}' is not a finite number ({where}): positions and sizes must be finite"
            else:
                text = (f"column '{c}' holds an absurd value ({where}): positions and sizes beyond "
                        f"±{MAX_COORDINATE:,.0f} (pixels, planes) are no nucleus's")
            raise DevolensError(text, path=path)


def _int_times(df: pd.DataFrame, path: Path, *, line_offset: int = 2) -> None:
    _numeric(df, ["time"], path, line_offset=line_offset)
    _check_no_missing(df, ["time"], path, line_offset=line_offset)
    t = df["time"].to_numpy()
    frac = t != np.round(t)
    if frac.any():
        i = int(np.flatnonzero(frac)[0])
        raise DevolensError(f"column 'time' must hold whole time points (line {_line(df, i, line_offset)}: {t[i]}"
                            f"{_and_more(df, frac, line_offset)})", path=path)
    df["time"] = t.astype(np.int64)


def _names(s: pd.Series) -> pd.Series:
    """Cell names as clean strings ("" for missing); stripped once per distinct name."""
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    clean = np.array([str(u).strip() for u in uniq] + [""], dtype=object)
    return pd.Series(clean[codes], index=s.index, dtype=str)


def _lines_before_header(path: Path) -> int:
    """Blank lines before a CSV's header (pandas skips them itself, but not with ``skip_blank_lines=False``)."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for n, line in enumerate(fh):
            if line.strip():
                return n
    return 0


def _record_lines(path: Path, sep: str, above: int) -> np.ndarray | None:
    """First file line of each row after the header, read with the csv module (which, as pandas, reads a quoted
    line break as part of its field; blank lines are rows), for a file with quoted fields; None for a file without
    a quote character (each row is then one line) or one the csv module cannot read. ``above``: blank lines before
    the header (:func:`_lines_before_header`)."""
    with open(path, "rb") as fh:
        if b'"' not in fh.read():
            return None
    starts: list[int] = []
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:  # \r, \n, \r\n end lines
            reader = csv.reader(fh, delimiter=sep, skipinitialspace=True)
            done = 0
            for _ in reader:
                starts.append(done + 1)
                done = reader.line_num
    except csv.Error:
        return None
    return np.asarray(starts[above + 1:], dtype=np.int64)


def _drop_empty_rows(df: pd.DataFrame, path: Path, sep: str, *,
                     line_offset: int = 2) -> tuple[pd.DataFrame, str | None]:
    """``df`` without the rows read from blank lines and from lines whose every field is empty, and a note on the
    latter (None when there are none).

    ``df`` is read with ``skip_blank_lines=False`` (a blank line is a row of missing values: a row's label plus
    ``line_offset`` is its line in the file, :func:`_line`); the labels are kept. Lines such as ``,,,,,,`` are
    what a spreadsheet (Excel) saves for rows it once held, typically at the end of the table: dropped, with the
    note. A candidate row (every column read missing; a reader may read some columns only) is checked against
    its line in the file: a line with any field filled in stays, for the checks to name it. Blank lines are
    dropped without a note, as pandas does. In a file with quoted fields a row may span lines (a quoted line
    break): the rows are then labelled by their first lines (:func:`_record_lines`) before anything else.
    """
    starts = _record_lines(path, sep, line_offset - 2)
    if starts is not None and len(starts) == len(df):  # rows are records, not lines: labels from their first lines
        df = df.set_axis(pd.Index(starts - line_offset), axis=0)
    cand = df.isna().all(axis=1).to_numpy()
    if not cand.any():
        return df, None
    want = {int(j) + line_offset: j for j in df.index[cand]}
    last = max(want)
    drop, filled_in = [], []
    with open(path, encoding="utf-8-sig", errors="replace") as fh:  # universal newlines, as pandas counts lines
        for k, line in enumerate(fh, start=1):
            if k in want:
                text = line.strip()
                if not text:
                    drop.append(want[k])
                elif not text.strip(sep + ' "'):  # every field empty (or "")
                    drop.append(want[k])
                    filled_in.append(k)
            if k >= last:
                break
    df = df.drop(index=drop) if drop else df
    if not filled_in:
        return df, None
    n = len(filled_in)
    lines = _spans_text(_spans(filled_in))
    return df, f"skipped {n} empty row(s) (line{'s' if n > 1 else ''} {lines}: every field empty)"


# ----------------------------------------------------------------------------- time points
def _spans(times: Iterable[int], step: int = 1) -> list[tuple[int, int]]:
    """Runs of consecutive time points, ``(first, last)``, of ``times`` (any order, repeats allowed); with ``step``
    (:func:`time_step`), time points ``step`` apart are consecutive."""
    u = np.unique(np.asarray(list(times), dtype=np.int64))
    if not len(u):
        return []
    cut = np.flatnonzero(np.diff(u) > step)
    starts = np.concatenate([[0], cut + 1])
    ends = np.concatenate([cut, [len(u) - 1]])
    return [(int(u[a]), int(u[b])) for a, b in zip(starts, ends)]


def _holes(have: list[tuple[int, int]], step: int = 1) -> list[tuple[int, int]]:
    """Runs of the time points missing between the runs ``have`` (:func:`_spans`), ``(first, last)``: never listed
    one by one (a mistyped time 1000000000 is one run). With ``step``, the missing time points are those of the
    step after each run (``(last + step, ...)``), as many as fit before the next run."""
    return [(b + step, b + step * (-(-(a - b) // step) - 1)) for (_, b), (a, _) in zip(have, have[1:])]


def _span_count(spans: list[tuple[int, int]], step: int = 1) -> int:
    """Time points in the runs ``spans`` (:func:`_spans`, :func:`_holes`), one per ``step``."""
    return sum((b - a) // step + 1 for a, b in spans)


def _spans_text(spans: list[tuple[int, int]], limit: int = 5, step: int = 1) -> str:
    """``50-59, 70`` for the runs ``spans``, the first ``limit`` of them (then ``(and N more)``, N time points, one
    per ``step``)."""
    shown = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans[:limit])
    rest = _span_count(spans[limit:], step)
    return shown + (f" (and {rest} more)" if rest else "")


#: Fewest differences between time points that tell a regular step (:func:`time_step`; a table of three time points:
#: its two, equal).
STEP_MIN_DIFFS = 3
#: Smallest share of the differences between time points that must be whole steps (:func:`time_step`).
STEP_SHARE = 0.8


def time_step(times: Iterable[float], *, tolerant: bool = False) -> int | float:
    """The regular step of a table's time points: 1, or the step when they are spaced by more (time in seconds,
    90 apart; every 3rd frame kept). The one rule of the readers' notes on holes and of ``identify``'s links.

    The step is the most common difference between consecutive time points, when it is found at least
    :data:`STEP_MIN_DIFFS` times (twice in a table of three time points: 0, 90, 180 has step 90) and at least
    :data:`STEP_SHARE` of the differences are whole steps (one step, or several: time points lost from the step,
    said as holes by the readers). Else there is no regular step: time points spaced at random, a table of one or
    two time points (too short to tell a step from a hole), or time points kept only roughly apart (acquisition
    times in seconds, 89-97 apart, as EPIC's TIME files hold). Then the step is 1 (every whole number missing
    between two time points is a hole: the readers, unless the time is in irregular units, :func:`irregular_time`)
    or, with ``tolerant``, the median difference (1 for fewer than two time points): ``identify`` links
    consecutive time points up to 1.5 steps apart, so a table in such seconds, or one of two time points, still
    links as one numbered 1, 2, 3... does.

    Parameters
    ----------
    times : iterable of int or float
        Time points (any order, repeats allowed).
    tolerant : bool
        Without a regular step, the median difference instead of 1.

    Returns
    -------
    int or float
        The step (1 for consecutive time points): an int for whole-number time points (a float for the median
        with ``tolerant``).

    Examples
    --------
    >>> time_step([0, 90, 180, 270, 450])
    90
    >>> time_step([0, 90, 180])
    90
    >>> time_step([1, 2, 3, 5, 6])
    1
    >>> time_step([0, 90, 179, 269, 360]), time_step([0, 90, 179, 269, 360], tolerant=True)
    (1, 90.0)
    """
    u = np.unique(np.asarray(list(times)))
    if u.dtype.kind not in "iu":
        u = u.astype(float)
    d = np.diff(u)
    if len(d) >= 2:
        values, counts = np.unique(d, return_counts=True)
        k = int(np.argmax(counts))  # (the smallest of equally common differences)
        step = values[k]
        if u.dtype.kind in "iu":
            whole = d % step == 0
        else:
            r = d / step
            whole = np.abs(r - np.rint(r)) <= 1e-9 * r
        if counts[k] >= min(STEP_MIN_DIFFS, len(d)) and np.count_nonzero(whole) >= STEP_SHARE * len(d):
            return int(step) if u.dtype.kind in "iu" else float(step)
    if tolerant:
        return float(np.median(d)) if len(d) else 1.0
    return 1


#: Smallest median difference between time points that can be irregular units (:func:`irregular_time`): time in
#: seconds, ~90 apart. Below it (every 3rd frame kept, now and then a 4th) the whole numbers are the time points.
IRREGULAR_MIN_STEP = 10
#: How far from their median the differences between time points in irregular units may lie, as a share of it
#: (:func:`irregular_time`; EPIC's TIME files: 89-106 s apart, median 93-95).
IRREGULAR_BAND = 0.25
#: A difference of more than this many median steps between time points in irregular units misses time points (a
#: hole, :meth:`IrregularTime.missing`): ``identify`` links time points up to as many steps apart
#: (:data:`devolens.predict.identity.STEP_TOLERANCE`).
HOLE_STEPS = 1.5


@dataclass(frozen=True)
class IrregularTime:
    """Time points in irregular real units (:func:`irregular_time`): acquisition times in seconds, 89-97 apart.

    Attributes
    ----------
    step : float
        The median difference between consecutive time points: one time point.
    low, high : int or float
        The smallest and the largest difference of one step (holes, over :data:`HOLE_STEPS` steps, left out).
    """

    step: float
    low: int | float
    high: int | float

    def missing(self, gaps: Any) -> np.ndarray:
        """The time points missing in each difference of ``gaps`` between consecutive time points: none up to
        :data:`HOLE_STEPS` steps, else the number of steps it spans, rounded, less one (187 s at 93 s: one)."""
        g = np.asarray(gaps, dtype=np.float64)
        return np.where(g > HOLE_STEPS * self.step, np.rint(g / self.step) - 1, 0).astype(np.int64)

    def note(self) -> str:
        """The readers' note on such time: read as one time point per time given, holes only where one is missing."""
        return (f"time is in irregular units (median step {self.step:g}, {_spread(self)} apart: acquisition times in "
                f"seconds?): read as one time point per time given, a gap of over {HOLE_STEPS:g} steps as time "
                "points missing")


def _spread(irregular: IrregularTime) -> str:
    """``89-95`` of time in irregular units: its smallest and largest difference of one step (one number if equal)."""
    lo, hi = irregular.low, irregular.high
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"


def irregular_time(times: Iterable[float], *, step: int | float | None = None) -> IrregularTime | None:
    """Whether time points are in irregular real units: acquisition times in seconds, 89-97 apart (EPIC's TIME
    files), one time point each, with no regular step (:func:`time_step`) to count holes by.

    They are when there are at least :data:`STEP_MIN_DIFFS` differences between consecutive time points, their
    median is at least :data:`IRREGULAR_MIN_STEP` (large against the whole numbers between: no time point numbered
    1, 2, 3... or kept every 3rd frame), not every difference is a whole number of :func:`time_step`'s step (that is
    a regular step, read as such), at least :data:`STEP_SHARE` of them are of one step (at most :data:`HOLE_STEPS`
    median steps) and those all lie within :data:`IRREGULAR_BAND` of the median. Then the readers read one time
    point per time given and say as holes only the differences over :data:`HOLE_STEPS` steps
    (:meth:`IrregularTime.missing`), not every whole number between two time points.

    Parameters
    ----------
    times : iterable of int or float
        Time points (any order, repeats allowed).
    step : int or float, optional
        :func:`time_step` of ``times`` when the caller has it (it is needed too where the time is not irregular:
        :func:`time_unit` tells both at once); computed here otherwise.

    Returns
    -------
    IrregularTime or None
        None for time points that are no such units.

    Examples
    --------
    >>> irregular_time([0, 90, 179, 269, 360, 455, 641])  # (641: a time point missing after 455)
    IrregularTime(step=90.5, low=89, high=95)
    >>> irregular_time([0, 90, 180, 270, 450]) is None, irregular_time([1, 2, 3, 5, 6]) is None
    (True, True)
    """
    u = np.unique(np.asarray(list(times)))
    if u.dtype.kind not in "iu":
        u = u.astype(np.float64)
    d = np.diff(u)
    if len(d) < STEP_MIN_DIFFS:
        return None
    m = float(np.median(d))
    if m < IRREGULAR_MIN_STEP:
        return None
    if step is None:
        step = time_step(u)
    r = d / step
    if step > 1 and np.all(np.abs(r - np.rint(r)) <= 1e-9 * r):
        return None
    one = d <= HOLE_STEPS * m
    if np.count_nonzero(one) < STEP_SHARE * len(d) or np.any(np.abs(d[one] - m) > IRREGULAR_BAND * m):
        return None
    return IrregularTime(step=m, low=d[one].min().item(), high=d[one].max().item())


def time_unit(times: Iterable[float]) -> tuple[int | float, IrregularTime | None]:
    """How a table's time points are spaced, told once: its :func:`time_step` and whether it is in irregular units
    (:func:`irregular_time`, given that step rather than working it out again).

    Parameters
    ----------
    times : iterable of int or float
        Time points (any order, repeats allowed).

    Returns
    -------
    (int or float, IrregularTime or None)
        The regular step (1 for consecutive time points, and for time in irregular units), and the
        :class:`IrregularTime` of time in irregular units (None otherwise).

    Examples
    --------
    >>> time_unit([0, 90, 180, 270, 450])
    (90, None)
    >>> time_unit([0, 90, 179, 269, 360])
    (1, IrregularTime(step=90.0, low=89, high=91))
    """
    u = np.unique(np.asarray(list(times)))
    step = time_step(u)
    return step, irregular_time(u, step=step)


def _point_numbers(u: np.ndarray, step: int | float, irregular: IrregularTime | None) -> np.ndarray:
    """:func:`time_point_numbers` of the unique, sorted time points ``u`` told by :func:`time_unit`."""
    if not len(u):
        return np.zeros(0, dtype=np.int64)
    gaps = np.diff(u)
    if irregular is not None:
        steps = 1 + irregular.missing(gaps)
    else:
        steps = np.maximum(1, np.ceil(gaps / step)).astype(np.int64)  # (a time off the step: the next one)
    return np.concatenate([[0], np.cumsum(steps)]).astype(np.int64)


def time_point_numbers(times: Iterable[float]) -> np.ndarray:
    """Each time of a table as the number of its time point, counted from the table's first (0), one per the table's
    own step: what "consecutive" and "how many time points" mean in a table whose time is not numbered 1, 2, 3...

    A table in seconds at 90 s (0, 90, 180...: :func:`time_step`) has time point 2 at time 180, every 3rd frame kept
    (1, 4, 7...) time point 2 at time 7; time in irregular units (acquisition times in seconds, 89-97 apart:
    :func:`irregular_time`) one time point per time given. The time points missing in a hole are counted, as the
    readers' notes on holes count them (a table in seconds lacking time 360: time 450 is time point 5).

    Parameters
    ----------
    times : array-like of int or float
        The ``time`` column of one embryo's table (any order, repeats allowed).

    Returns
    -------
    ndarray of int64
        The time point of each entry of ``times``, in their order.

    Examples
    --------
    >>> time_point_numbers([0, 90, 90, 180, 270, 450]).tolist()
    [0, 1, 1, 2, 3, 5]
    >>> time_point_numbers([5, 6, 8]).tolist()
    [0, 1, 3]
    """
    t = np.asarray(times if isinstance(times, (np.ndarray, pd.Series)) else list(times))
    u = np.unique(t)
    numbers = _point_numbers(u, *time_unit(u))
    return numbers[np.searchsorted(u, t)]


def _step_note(step: int) -> str:
    """The note on time points spaced by ``step`` (:func:`time_step`): read as one time point per step, so that a
    step is no hole (the readers' notes) and no gap (population curves, cliffs: one row per time point given)."""
    why = f"seconds? every {ordinal(step)} frame?" if step >= 10 else f"every {ordinal(step)} frame?"
    return f"time points step by {step} ({why}): read as one time point per {step}"


def time_spans_text(times: Iterable[int], limit: int = 5) -> str:
    """The time points ``times`` as runs for messages: ``50-59, 150`` (the first ``limit`` runs, then
    ``(and N more)``, N time points).

    Parameters
    ----------
    times : iterable of int
        Time points (any order, repeats allowed).
    limit : int
        Runs shown.

    Returns
    -------
    str
        The runs, ``""`` when ``times`` is empty.
    """
    return _spans_text(_spans(times), limit)


def time_points_text(times: Iterable[int]) -> str:
    """The time points ``times`` in words for messages: ``1..360``, ``1..360 except 150``, ``1..360 except 50-59,
    100-101``; ``none`` when empty.

    Time points spaced by a regular step (:func:`time_step`: time in seconds, every 3rd frame kept) are said with
    it, only the time points missing from the step as holes: ``0..32310 every 90 except 4500-4680`` (4500, 4590 and
    4680 missing), not every whole number between two of them. Time in irregular units (:func:`irregular_time`:
    acquisition times in seconds, 89-97 apart) is said so, its holes (differences over :data:`HOLE_STEPS` steps)
    with the times on both sides: ``0..641 in irregular steps (89-95 apart) except 1 time point between 455 and
    641``.

    Parameters
    ----------
    times : iterable of int
        Time points (any order, repeats allowed).

    Returns
    -------
    str
        The first and the last time point, with the step when it is not 1 and the runs missing between them.
    """
    u = np.unique(np.asarray(list(times), dtype=np.int64))
    if not len(u):
        return "none"
    lo, hi = int(u[0]), int(u[-1])
    if lo == hi:
        return str(lo)
    step, irregular = time_unit(u)
    if irregular is not None:
        missing = irregular.missing(np.diff(u))
        holes = np.flatnonzero(missing)
        text = f"{lo}..{hi} in irregular steps ({_spread(irregular)} apart)"
        if not len(holes):
            return text
        between = _between_texts(u, missing, holes)
        if len(holes) == 1:
            n = int(missing[holes[0]])
            return f"{text} except {n} time point{'s' if n > 1 else ''} {between[0]}"
        return f"{text} except {int(missing[holes].sum())} time points ({', '.join(between)})"
    gaps = _holes(_spans(u, step), step)
    text = f"{lo}..{hi}" + (f" every {step}" if step > 1 else "")
    return text + (f" except {_spans_text(gaps, step=step)}" if gaps else "")


def time_axis_label(times: Iterable[int]) -> str:
    """The label of a plot's axis of a table's time points ``times``, in the unit the table's time is in as far as
    the readers tell it (:func:`time_unit`, the notes of :func:`_gaps_note`): ``time point`` for time points
    numbered 1, 2, 3...; time spaced by a regular step of :data:`IRREGULAR_MIN_STEP` or more, or in irregular
    units, is taken for seconds (``time (seconds?; time points 90 apart)``), as the readers' notes take it; a
    smaller step (every 3rd frame kept) for time points (``time point (every 3rd frame?)``).

    Parameters
    ----------
    times : iterable of int
        Time points (any order, repeats allowed).

    Returns
    -------
    str
        The label.

    Examples
    --------
    >>> time_axis_label([1, 2, 3, 5]), time_axis_label([0, 90, 180, 270])
    ('time point', 'time (seconds?; time points 90 apart)')
    """
    step, irregular = time_unit(times)
    if irregular is not None:
        return f"time (seconds?; time points {_spread(irregular)} apart)"
    if step >= IRREGULAR_MIN_STEP:
        return f"time (seconds?; time points {step:g} apart)"
    if step > 1:
        return f"time point (every {ordinal(step)} frame?)"
    return "time point"


def _gaps_note(times: Iterable[int], empty: Iterable[int] = (), *, lacking: str, cause: str,
               holes_only: bool = False) -> list[str]:
    """Notes on the time points missing inside a series (none between its first and last time point ``times``:
    each one ``lacking``, e.g. "no rows") and on those given but ``empty`` (AceTree's empty nuclei files): the table
    skips them, and population curves and cliffs read across the hole. ``cause``: a guess at why, in words.

    Time points spaced by a regular step above 1 (:func:`time_step`: time in seconds, every 3rd frame kept) are
    said so in a note of their own (:func:`_step_note`), and only the time points missing from that step are holes:
    without it, every time point between two of the table's was listed as lost ("1-89, 91-179, ... have no rows").
    So are time points in irregular units (:func:`irregular_time`: acquisition times in seconds, 89-97 apart), each
    given one a time point, the holes only differences over :data:`HOLE_STEPS` steps (:func:`_irregular_gaps_note`).

    With ``holes_only``, a run of missing time points longer than the series has time points is left out: it sets a
    stray time point apart (a mistyped time, 1000000000), which is no hole of lost rows (``identify`` notes it as a
    break in the time course)."""
    times = np.unique(np.asarray(list(times), dtype=np.int64))
    step, irregular = time_unit(times)
    if irregular is not None:
        return _irregular_gaps_note(times, empty, irregular, lacking=lacking, cause=cause, holes_only=holes_only)
    notes = [_step_note(step)] if step > 1 else []
    have = _spans(times, step)
    if not have or (len(have) == 1 and have[0][0] == have[0][1]):
        return notes
    missing, empty_spans = _holes(have, step), _spans(empty, step)
    if holes_only:
        missing = [(a, b) for a, b in missing if (b - a) // step + 1 <= len(times)]
    if not missing and not empty_spans:
        return notes

    parts = []
    n_missing, n_empty = _span_count(missing, step), _span_count(empty_spans, step)
    if missing:
        many = n_missing > 1
        parts.append(f"time point{'s' if many else ''} {_spans_text(missing, step=step)} "
                     f"{'have' if many else 'has'} {lacking}")
    if empty_spans:
        many = n_empty > 1
        parts.append(_empty_files_text(_spans_text(empty_spans, step=step), many))
    return notes + [_skipped_text(parts, n_missing + n_empty, cause)]


def _empty_files_text(shown: str, many: bool) -> str:
    s = "s" if many else ""
    return f"the nuclei file{s} of time point{s} {shown} {'are' if many else 'is'} empty"


def _skipped_text(parts: list[str], n: int, cause: str) -> str:
    """The one note of :func:`_gaps_note`: what is missing or empty (``parts``, ``n`` time points), and why."""
    return " and ".join(parts) + f": the table skips {'it' if n == 1 else 'them'} ({cause})"


def _between_texts(times: np.ndarray, missing: np.ndarray, holes: np.ndarray, limit: int = 5, *,
                   word: str = "") -> list[str]:
    """The holes of time in irregular units in words (``times``: unique, sorted; ``missing``: the time points missing
    after each, :meth:`IrregularTime.missing`; ``holes``: where some are): one hole, ``between 4410 and 4590`` (the
    times on both sides, ``word`` before them); several, each with its count (``1 between 4410 and 4590``), the
    first ``limit`` of them, then ``and N more`` (N time points)."""
    between = [f"between {word}{times[i]} and {times[i + 1]}" for i in holes]
    if len(holes) == 1:
        return between
    shown = [f"{missing[i]} {b}" for i, b in zip(holes[:limit], between)]
    rest = int(missing[holes[limit:]].sum())
    return shown + ([f"and {rest} more"] if rest else [])


def _irregular_gaps_note(times: np.ndarray, empty: Iterable[int], irregular: IrregularTime, *, lacking: str,
                         cause: str, holes_only: bool, limit: int = 5) -> list[str]:
    """:func:`_gaps_note` of time points in irregular units (``times``: unique, sorted; :func:`irregular_time`):
    its note, then the holes in the table's own time points (``1 time point between times 4410 and 4590 has no
    rows``; a hole is no time value, so the times on both sides of it are said) and the runs of ``empty`` time
    points (runs of time points given one after the other, no hole between)."""
    notes = [irregular.note()]
    missing = irregular.missing(np.diff(times))
    holes = np.flatnonzero(missing)
    if holes_only:  # (a stray time point, as _gaps_note leaves out)
        holes = holes[missing[holes] <= len(times)]
    runs: list[tuple[int, int]] = []
    for i in np.flatnonzero(np.isin(times, np.asarray(list(empty), dtype=np.int64))):
        if runs and runs[-1][1] == i - 1 and not missing[i - 1]:
            runs[-1] = (runs[-1][0], int(i))
        else:
            runs.append((int(i), int(i)))
    if not len(holes) and not runs:
        return notes

    parts = []
    n_missing = int(missing[holes].sum())
    n_empty = sum(b - a + 1 for a, b in runs)
    if len(holes):
        many = n_missing > 1
        between = _between_texts(times, missing, holes, limit, word="times ")
        if len(holes) == 1:
            parts.append(f"{n_missing} time point{'s' if many else ''} {between[0]} {'have' if many else 'has'} "
                         f"{lacking}")
        else:
            parts.append(f"{n_missing} time points have {lacking} ({', '.join(between)})")
    if runs:
        many = n_empty > 1
        shown = ", ".join(str(times[a]) if a == b else f"{times[a]}-{times[b]}" for a, b in runs[:limit])
        rest = sum(b - a + 1 for a, b in runs[limit:])
        shown += f" (and {rest} more)" if rest else ""
        parts.append(_empty_files_text(shown, many))
    return notes + [_skipped_text(parts, n_missing + n_empty, cause)]


def _table_gaps(df: pd.DataFrame) -> list[str]:
    """:func:`_gaps_note` of an EPIC or tidy table, for each of its embryos (named when there are several)."""
    several = df["embryo"].nunique() > 1
    notes = []
    for embryo, times in df.groupby("embryo", sort=False)["time"]:
        for gap in _gaps_note(times.to_numpy(), lacking="no rows", cause="rows deleted when the table was edited?",
                              holes_only=True):
            notes.append(f"embryo {embryo}: {gap}" if several else gap)
    return notes


# ----------------------------------------------------------------------------- UTF-16, Windows-1252, semicolons
#: What the readers note about a UTF-16 file they read.
UTF16_NOTE = "the file is UTF-16 text (Excel's 'Unicode Text'): read as such"
#: What the readers note about a Windows-1252 file they read.
CP1252_NOTE = "the file is not UTF-8 but Windows-1252 text (Excel's 'CSV (Comma delimited)'): read as such"
#: Where the readers' notes on a semicolon-separated table (:data:`SEMICOLON_NOTE`) say it comes from.
_SEMICOLON_ORIGIN = "as Excel saves a CSV under German, French, Dutch... settings"
#: What the readers note about a table they read separated by semicolons, its numbers with decimal points or whole.
SEMICOLON_NOTE = (f"the columns are separated by semicolons, {_SEMICOLON_ORIGIN}: read as such (devolens writes its "
                  "own tables with commas and decimal points)")
#: ... and with decimal commas (``12,5``).
SEMICOLON_DECIMAL_NOTE = (f"the columns are separated by semicolons and the numbers have decimal commas, "
                          f"{_SEMICOLON_ORIGIN}: read as such, 12,5 as 12.5 (devolens writes its own tables with "
                          "commas and decimal points)")
#: What the readers note about a table separated by tabs (not an EPIC CD table: older EPIC exports are so separated),
#: its numbers with decimal points or whole.
TAB_NOTE = ("the columns are separated by tabs, as a spreadsheet saves 'Text (Tab delimited)': read as such (devolens "
            "writes its own tables with commas)")
#: What the readers note about a table (or Excel's UTF-16 'Unicode Text') separated by tabs whose numbers
#: have decimal commas (the tabs tell them from the separators).
TAB_DECIMAL_NOTE = ("the numbers have decimal commas, as Excel saves a table as text separated by tabs under German, "
                    "French, Dutch... settings: read as such, 12,5 as 12.5 (devolens writes its own tables with commas "
                    "and decimal points)")
#: What the readers note about a comma-separated table whose numbers have decimal commas in quotes (``"12,5"``: the
#: quotes tell them from the separators).
QUOTED_DECIMAL_NOTE = ('the numbers in quotes have decimal commas ("12,5"), as a spreadsheet saves a comma-separated '
                       "CSV under German, French, Dutch... settings: read as such, 12,5 as 12.5 (devolens writes its "
                       "own tables with decimal points)")
#: A number written with a decimal comma (``12,5``, ``-0,25``, ``1,5E-03``): one field of a semicolon-separated table.
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*")
#: A number written with a decimal point (``12.5``): in a table with decimal commas, a point may group thousands.
_DECIMAL_POINT = re.compile(r"\s*[+-]?\d*\.\d+(?:[eE][+-]?\d+)?\s*")
#: A number whose comma may group thousands (``1,234``, as Excel writes a number under English settings in quotes).
_COMMA_THOUSANDS = re.compile(r"\s*[+-]?\d{1,3},\d{3}\s*")
#: A quoted field of a comma-separated table that is a number with a decimal comma (``,"12,5",``).
_QUOTED_DECIMAL_COMMA = re.compile(rb'(?:^|,)[ \t]*"[ \t]*[+-]?\d*,\d+(?:[eE][+-]?\d+)?[ \t]*"[ \t]*(?=,|\r?$)',
                                   re.MULTILINE)
#: What to do when a table's fields are too many for its header, or a number has a decimal comma, in a table whose
#: columns are separated by commas (the one comma cannot be told from the other).
DECIMAL_COMMA_ADVICE = ("a decimal comma (12,5) cannot be told from the commas that separate the columns: write "
                        "decimal points (12.5), or save the table separated by semicolons (Excel's CSV under German, "
                        "French, Dutch... settings), which devolens reads with decimal commas")


def _header_names(line: str, sep: str) -> list[str]:
    """The column names of the header ``line`` split on ``sep`` as the csv module splits it (a quoted name may hold
    the other separator), stripped of spaces and quotes."""
    try:
        fields = next(csv.reader([line], delimiter=sep, skipinitialspace=True), [])
    except csv.Error:
        return []
    return [f.strip().strip('"').strip() for f in fields]


def _known_header(names: list[str]) -> bool:
    """Whether ``names`` are the columns of a table some reader reads: an EPIC CD table's or a tidy one's, positions
    (time, x, y, z as :func:`_position_columns` names them), a Mastodon spot table's first header row, an EPIC
    AuxInfo file's."""
    if len(names) < 2:
        return False
    lower = {n.lower() for n in names}
    return (_position_columns(names) is not None or {"spot frame", "spot position"} <= lower
            or _AUX_MARKERS <= set(names))


def _separated_header(text: str, sep: str) -> list[str] | None:
    """The column names of the decoded table ``text`` (its start will do) when its columns are separated by ``sep``
    (``";"``, ``"\\t"``), else None. Its header (first line that is not blank) must split on ``sep`` into columns a
    reader knows (:func:`_known_header`) and not on ``,``: a comma-separated table with a ``;`` or a tab in a quoted
    value or name stays comma-separated."""
    first = next((line for line in text.lstrip("\ufeff").splitlines() if line.strip()), "")
    if sep not in first:
        return None
    names = _header_names(first, sep)
    if not _known_header(names) or _known_header(_header_names(first, ",")):
        return None
    return names


def _is_utf16(head: bytes) -> bool:
    """Whether ``head`` starts with a UTF-16 byte order mark (FF FE or FE FF; FF FE 00 00 is UTF-32's)."""
    return head[:2] in (b"\xff\xfe", b"\xfe\xff") and head[:4] != b"\xff\xfe\x00\x00"


class _Head:
    """A file's first 64 KiB (``data``; read once per file by :meth:`read`), and what the readers tell from them
    (each told once, when first asked)."""

    SIZE = 65536

    def __init__(self, data: bytes):
        self.data = data

    @classmethod
    def read(cls, path: Path) -> "_Head":
        """The head of ``path`` (OSError when it cannot be read)."""
        with open(path, "rb") as fh:
            return cls(fh.read(cls.SIZE))

    @classmethod
    def read_or_none(cls, path: Path) -> "_Head | None":
        """The head of ``path``; None when it cannot be read (the reader then opens it, and says why)."""
        try:
            return cls.read(path)
        except OSError:
            return None

    @cached_property
    def utf16(self) -> bool:
        return _is_utf16(self.data)

    @cached_property
    def not_utf8(self) -> bool:
        return _not_utf8(self.data)

    @cached_property
    def cp1252(self) -> bool:
        return _is_cp1252(self.data, self.not_utf8)

    @cached_property
    def separated(self) -> tuple[str, list[str]] | None:
        """The separator and the header's column names when the columns are separated by semicolons (Excel's CSV
        under German, French... settings) or tabs (a spreadsheet's 'Text (Tab delimited)', older EPIC exports), as
        :func:`_separated_header` tells them; else None (a UTF-16 file is tab-separated as such: None)."""
        if self.utf16:
            return None
        text = self.data.decode("cp1252" if self.cp1252 else "utf-8", errors="replace")
        return next(((sep, names) for sep in (";", "\t") if (names := _separated_header(text, sep)) is not None), None)


@dataclass(frozen=True)
class _Recoding:
    """How a text table is read through a UTF-8, comma-separated copy (:func:`_utf8_copy`): its ``encoding``
    (``"utf-16"``, ``"cp1252"`` or ``"utf-8"``), and the separator whose table's decimal commas are read as points
    (:func:`_comma_text`): ``";"`` (semicolons), ``"\t"`` (tabs), ``","`` (a comma-separated table with decimal
    commas in quotes); None: only re-encoded (UTF-16 tab-separated text: its tabs, :func:`_utf8_copy`). ``note``:
    what the readers note about the separator when no number has a decimal comma (the notes on decimal commas say
    it too)."""

    encoding: str
    sep: str | None = None
    note: str | None = None

    @property
    def semicolons(self) -> bool:
        return self.sep == ";"


#: Set while a reader reads the UTF-8, comma-separated copy of a table (:func:`_read_recoded`): a quoted ``"1,5"``
#: left there (a name) is not looked for again.
_READING_COPY: contextvars.ContextVar[bool] = contextvars.ContextVar("_READING_COPY", default=False)


def _quoted_decimal_commas(path: Path) -> bool:
    """Whether the comma-separated table ``path`` has a number with a decimal comma in quotes (``"12,5"``) in any
    row (the whole file read: such a number may come late); not looked for in the copy a reader reads
    (:data:`_READING_COPY`)."""
    if _READING_COPY.get():
        return False
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return b'"' in data and _QUOTED_DECIMAL_COMMA.search(data) is not None


def _recoded(head: _Head | None, path: Path | None = None) -> _Recoding | None:
    """How a text table the readers read through a UTF-8, comma-separated copy (:func:`_read_recoded`) is recoded:
    UTF-16, Windows-1252, separated by semicolons (Excel's CSV under German, French... settings, with decimal
    commas), separated by tabs (its decimal commas, if any, read as points; an EPIC CD table's tabs without a
    note), a comma-separated table (``path``) with decimal commas in quotes; None for a UTF-8, comma-separated one
    without (and for a file that cannot be read, ``head`` None: the reader says why). Told from the first 64 KiB
    (``head``), the quoted decimal commas from the whole file."""
    if head is None:
        return None
    if head.utf16:
        return _Recoding("utf-16")
    sep, names = head.separated or (None, [])
    if sep is None and path is not None and _quoted_decimal_commas(path):
        sep = ","
    note = SEMICOLON_NOTE if sep == ";" else TAB_NOTE if sep == "\t" and not _is_epic_header(names) else None
    encoding = "cp1252" if head.cp1252 else "utf-8"  # (never with a NUL byte: _is_cp1252 refuses control bytes)
    return _Recoding(encoding, sep, note) if encoding != "utf-8" or sep else None


def _utf16_first_line(head: bytes) -> str:
    """The first line of a UTF-16 file's first bytes ``head``, its fields separated by commas (tabs in Excel's
    'Unicode Text')."""
    lines = head.decode("utf-16", errors="replace").lstrip("\ufeff").splitlines()
    first = lines[0] if lines else ""  # (a byte-order mark alone: no line)
    if "\t" in first and "," not in first:
        first = ",".join(next(csv.reader([first], delimiter="\t"), []))
    return first


def _decoded(path: Path, encoding: str) -> str:
    """The text of ``path`` in ``encoding`` (``"utf-16"``, ``"cp1252"``, ``"utf-8"``), without a byte order mark; a
    DevolensError when it cannot be decoded."""
    try:
        text = path.read_bytes().decode(encoding)
    except UnicodeDecodeError as exc:
        kind = {"utf-16": "UTF-16 text (Excel's 'Unicode Text') that cannot be decoded",
                "cp1252": "neither UTF-8 nor Windows-1252 text"}.get(encoding, "not UTF-8 text throughout")
        raise DevolensError(f"this file is {kind} ({exc.reason} at byte {exc.start}); save it as CSV UTF-8",
                            path=path) from None
    return text.lstrip("\ufeff")


def _comma_text(text: str, path: Path, sep: str = ";") -> tuple[str, int]:
    """The table ``text`` (of ``path``, for errors) separated by ``sep`` (semicolons; tabs; commas, its decimal
    commas then in quotes) rewritten with commas, line for line (errors name the same lines; a quoted field keeps
    its quotes where it needs them), its numbers' decimal commas as points, and how many numbers had one. A field is
    such a number when it is one whole (``12,5``, ``-0,25``, ``1,5E-03``) in a column that does not hold names
    (cell, embryo, cellTime, name, axis, label: a name stays as written). Refused: a column holding numbers with
    decimal commas and others with decimal points (``1.234``), where a point may group thousands, as Excel's number
    formats under these settings write them; in a comma-separated table, a column whose every such number may be
    thousands grouped by a comma (``"1,234"``, as Excel writes them under English settings)."""
    text_names = {*POSITION_ALIASES["cell"], *POSITION_ALIASES["embryo"], "celltime", "axis", "label"}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header: list[str] | None = None
    names: set[int] = set()
    commas: dict[int, tuple[int, str]] = {}  # column -> its first number with a decimal comma (line, field)
    points: dict[int, tuple[int, str]] = {}  # ... and with a decimal point
    decimal: set[int] = set()  # columns with a decimal comma that cannot group thousands (12,5; 1234,5)
    n = done = 0
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    try:
        for row in reader:
            start, done = done + 1, reader.line_num
            if header is None:
                if any(f.strip() for f in row):
                    header = [f.strip() for f in row]
                    names = {i for i, name in enumerate(header) if name.lower() in text_names}
            else:
                if sep != "," and len(header) > 1 and len(row) == 1 and "," in row[0]:
                    sep_name = {";": "semicolons", "\t": "tabs"}[sep]
                    raise DevolensError(f"the header is separated by {sep_name} but line {start} by commas: save the "
                                        "table with one separator throughout", path=path)
                for i, f in enumerate(row):
                    if i in names:
                        continue
                    if "," in f and _DECIMAL_COMMA.fullmatch(f):
                        commas.setdefault(i, (start, f))
                        if not _COMMA_THOUSANDS.fullmatch(f):
                            decimal.add(i)
                        row[i] = f.replace(",", ".")
                        n += 1
                    elif "." in f and i not in points and _DECIMAL_POINT.fullmatch(f):
                        points[i] = (start, f)
            writer.writerow(row)  # (a blank line stays a blank line)
    except csv.Error as exc:
        sep_name = {";": "semicolons", "\t": "tabs"}.get(sep, "commas")
        raise DevolensError(f"cannot parse the table (its columns separated by {sep_name}): {exc}", path=path) from None

    def name(i: int) -> str:
        return header[i] if header is not None and i < len(header) and header[i] else f"number {i + 1}"

    if sep == ",":  # the quotes tell a decimal comma from the separators, not from a comma grouping thousands
        for i in sorted(commas.keys() - decimal):
            a, va = commas[i]
            raise DevolensError(
                f"column '{name(i)}' holds numbers in quotes with a comma (line {a}: {va.strip()!r}), each of which "
                "may be a decimal comma (1,234 for 1.234) or group thousands (1,234 for 1234, as Excel writes them "
                "under English settings), so which is meant cannot be told; write the numbers with decimal points "
                "(12.5) and without grouping", path=path)
    for i in sorted(commas.keys() & points.keys()):
        (a, va), (b, vb) = commas[i], points[i]
        raise DevolensError(
            f"column '{name(i)}' holds numbers with a decimal comma (line {a}: {va.strip()!r}) and with a decimal point "
            f"(line {b}: {vb.strip()!r}): in a table with decimal commas a point may group thousands (1.234 for "
            "1234), so which is meant cannot be told; write every number of the column one way (12,5 or 12.5)",
            path=path)
    return buf.getvalue(), n


@contextlib.contextmanager
def _utf8_copy(path: Path, recoding: _Recoding) -> Iterator[tuple[Path, list[str]]]:
    """A UTF-8, comma-separated copy of the UTF-16, Windows-1252 or semicolon-separated (``recoding``) text file
    ``path``, with the same name, in a temporary folder beside copies of the files the readers pick up beside a
    table (EPIC AuxInfo and TIME, a tidy table's .meta.json), and the notes on what was recoded. Excel's 'Unicode
    Text' is tab-separated, quoted as CSV: rewritten with commas, line for line (errors name the same lines); a
    semicolon-separated table too, its decimal commas as points (:func:`_comma_text`); a Windows-1252 file is only
    re-encoded."""
    text = _decoded(path, recoding.encoding)
    first = text.split("\n", 1)[0]
    notes = {"utf-16": [UTF16_NOTE], "cp1252": [CP1252_NOTE]}.get(recoding.encoding, [])
    if recoding.encoding == "utf-16" and "\t" in first and "," not in first:
        text, decimal_commas = _comma_text(text, path, "\t")  # (German Excel's 'Unicode Text': decimal commas)
        notes += [TAB_DECIMAL_NOTE] if decimal_commas else []
    elif recoding.sep is not None:
        text, decimal_commas = _comma_text(text, path, recoding.sep)
        if decimal_commas:
            notes.append({";": SEMICOLON_DECIMAL_NOTE, "\t": TAB_DECIMAL_NOTE}.get(recoding.sep, QUOTED_DECIMAL_NOTE))
        elif recoding.note:  # (an EPIC table's tabs, commas with decimal points: read as they always were, quietly)
            notes.append(recoding.note)
    with tempfile.TemporaryDirectory(prefix="devolens-utf16-") as tmp:
        copy = Path(tmp) / path.name
        copy.write_text(text, encoding="utf-8")
        for beside in epic_companions(path):
            if beside.is_file():
                shutil.copyfile(beside, Path(tmp) / beside.name)
        if meta_sidecar(path).is_file():  # (one beside a link's target: the copy's own name)
            shutil.copyfile(meta_sidecar(path), _meta_path(copy))
        yield copy, notes


def _read_recoded(reader: Callable[..., pd.DataFrame], path: Path, recoding: _Recoding,
                  **kwargs: Any) -> pd.DataFrame:
    """``reader(path, **kwargs)`` on a UTF-8, comma-separated copy of the UTF-16, Windows-1252 or semicolon-separated
    (``recoding``, :func:`_recoded`) file ``path`` (:func:`_utf8_copy`): errors and the table's ``source`` name
    ``path``, and :data:`UTF16_NOTE` (:data:`CP1252_NOTE`; then :data:`SEMICOLON_NOTE` or
    :data:`SEMICOLON_DECIMAL_NOTE`) comes first in its notes."""
    with _utf8_copy(path, recoding) as (copy, notes):
        token = _READING_COPY.set(True)
        try:
            df = reader(copy, **kwargs)
        except DevolensError as exc:
            if exc.path is not None and exc.path.parent == copy.parent:  # the copy (or a companion's): the user's
                exc.path = path.parent / exc.path.name
                exc.args = (f"{exc.path}: {exc.message}",)
            raise
        finally:
            _READING_COPY.reset(token)
    df.attrs["source"] = str(path)
    # a note naming a companion read from the copy's folder (an AuxInfo ignored...) names the user's file
    here = str(copy.parent) + os.sep
    df.attrs["notes"] = notes + [t.replace(here, str(path.parent) + os.sep)
                                 for t in list(df.attrs.get("notes") or [])]
    return df


#: A gzip file's first bytes.
_GZIP_MAGIC = b"\x1f\x8b"
#: Largest gzip-compressed table read, decompressed (bytes): real lineage tables hold megabytes; more is a damaged
#: file or a gzip bomb, refused before it fills the disk.
GZIP_MAX = 2**30


def _is_gzip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == _GZIP_MAGIC
    except OSError:
        return False


@contextlib.contextmanager
def _gunzipped(path: Path) -> Iterator[Path]:
    """A decompressed copy of the gzip-compressed table ``path`` (``L1.csv.gz``), named without ``.gz``, in a
    temporary folder beside copies of the files the readers pick up beside a table (EPIC AuxInfo and TIME, a tidy
    table's .meta.json, named after the table without ``.gz``); at most :data:`GZIP_MAX` bytes."""
    import gzip

    name = path.name[:-3] if path.name.lower().endswith(".gz") and len(path.name) > 3 else path.name
    with tempfile.TemporaryDirectory(prefix="devolens-gz-") as tmp:
        copy = Path(tmp) / name
        try:
            with gzip.open(path, "rb") as src, open(copy, "wb") as dst:
                done = 0
                while chunk := src.read(2**20):
                    done += len(chunk)
                    if done > GZIP_MAX:
                        raise DevolensError(f"gzip-compressed file that unpacks to more than {GZIP_MAX // 2**20} MB, "
                                            "more than any lineage table: the file is damaged or not a table",
                                            path=path)
                    dst.write(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            raise DevolensError(f"gzip-compressed file that cannot be decompressed ({exc}): the file is damaged or "
                                "cut short; copy it again", path=path) from None
        for beside in (*epic_companions(path.with_name(name)), _meta_path(path.with_name(name))):
            if beside.is_file():
                shutil.copyfile(beside, Path(tmp) / beside.name)
        yield copy


def _read_gzipped(reader: Callable[..., pd.DataFrame], path: Path, **kwargs: Any) -> pd.DataFrame:
    """``reader(copy, **kwargs)`` on the decompressed copy of the gzip-compressed table ``path``
    (:func:`_gunzipped`): errors and the table's ``source`` name ``path``."""
    with _gunzipped(path) as copy:
        try:
            df = reader(copy, **kwargs)
        except DevolensError as exc:
            if exc.path is not None and exc.path.parent == copy.parent:  # the copy (or a companion's): the user's
                exc.path = path if exc.path == copy else path.parent / exc.path.name
                exc.args = (f"{exc.path}: {exc.message}",)
            raise
    df.attrs["source"] = str(path)
    here = str(copy.parent) + os.sep  # a note naming a companion read from the copy's folder names the user's file
    if df.attrs.get("notes"):
        df.attrs["notes"] = [t.replace(here, str(path.parent) + os.sep) for t in df.attrs["notes"]]
    return df


# ----------------------------------------------------------------------------- detection
def detect_format(path: str | Path) -> str:
    """Tell the format of a lineage table from its content.

    Parameters
    ----------
    path : str or Path
        A CSV file, an AceTree zip, or a folder of AceTree nuclei files.

    Returns
    -------
    str
        ``"epic"``, ``"acetree"`` or ``"tidy"``.

    Raises
    ------
    DevolensError
        Missing, empty, binary, or unrecognised input.
    """
    return _detect(Path(path))[0]


def _detect(path: Path, head: _Head | None = None, *, aliases: bool = True) -> tuple[str, _Head | None]:
    """:func:`detect_format`, and the file's head it read (``head``: already read; None: read here; a folder:
    None). With ``aliases``, a CSV whose columns name time, cell, x, y and z otherwise (:func:`_lineage_columns`:
    ``Cell,X,Y,Z,Time``, ``timepoint,cell_name``) is a tidy table; without, it is refused as unrecognised
    (:func:`read_positions` reads such columns itself, a cell column or not)."""
    if not path.exists():
        raise DevolensError("file not found", path=path)
    if path.is_dir():
        if _acetree_dir_files(path):
            return "acetree", None
        raise _no_nuclei(path, "tNNN-nuclei")
    if head is None:
        try:
            head = _Head.read(path)
        except OSError as exc:
            raise DevolensError(f"cannot read: {exc.strerror or exc}", path=path) from None
    try:
        return _detect_head(path, head), head
    except UnrecognisedColumns as exc:
        if aliases and _lineage_columns(exc.columns) is not None:
            return "tidy", head
        raise


def _detect_head(path: Path, head: _Head) -> str:
    data = head.data
    if not data.strip():
        raise DevolensError("empty file", path=path)
    if data[:4] == b"PK\x03\x04" or zipfile.is_zipfile(path):
        return "acetree"
    utf16 = head.utf16  # Excel's 'Unicode Text' (tab-separated): the readers read it through a UTF-8 copy
    if utf16:
        text = data.decode("utf-16", errors="replace").lstrip("\ufeff")
    else:
        _sniff_binary(path, head)
        encoding = "cp1252" if head.cp1252 else "utf-8"  # (Excel's CSV on Windows: read_* recode it)
        text = data.decode(encoding, errors="replace").lstrip("\ufeff")
    if not text.strip():  # a byte-order mark alone (Excel's "CSV UTF-8" of an empty sheet), blank lines after it
        raise DevolensError("empty file", path=path)
    first = text.splitlines()[0]
    separated = head.separated  # semicolons (Excel's CSV under German, French... settings), tabs: the readers read
    if separated is not None:  # it so
        first = ",".join(separated[1])
    cols = {c.strip().strip('"') for c in first.split(",")}
    # before the separator check: an EPIC TIME file is tab-separated, and "use commas" would mislead
    _refuse_epic_companion(path, first, cols)
    if utf16:
        first = _utf16_first_line(data)
        cols = {c.strip().strip('"') for c in first.split(",")}
    title = _title_above(text)  # (a heading row above the header: said, with what to do)
    if len(cols) == 1 and first.count(";") >= 2:  # separated by semicolons, but no columns a reader knows
        raise UnrecognisedColumns(path, _header_names(first, ";"), title=title)
    if len(cols) == 1 and first.count("\t") >= 2:  # separated by tabs (read as such), but no columns a reader knows
        raise UnrecognisedColumns(path, _header_names(first, "\t"), title=title)
    if _is_epic_header(cols):
        return "epic"
    if set(TIDY_REQUIRED) <= cols:
        return "tidy"
    if set(EPIC_REQUIRED) <= cols:  # as written, without cellTime: a capitalised Embryo,Time,Cell,X... is positions
        return "epic"
    # a single AceTree nuclei file: numeric index, status, ... rows
    if re.match(r"^\s*\d+\s*,\s*[01]\s*,", first):
        return "acetree"
    raise UnrecognisedColumns(path, sorted(cols), title=title)


def _is_epic_header(cols) -> bool:
    """An EPIC CD header (``cellTime`` and the required columns), whatever the capitalisation of its names
    (``CellTime``, ``X``...)."""
    return {"cellTime", *EPIC_REQUIRED} <= set(_epic_names(cols).values())


def _epic_names(columns) -> dict[str, str]:
    """File column -> EPIC column name: stripped, EPIC names matched whatever their capitalisation."""
    canon = {c.lower(): c for c in EPIC_COLUMNS}
    out: dict[str, str] = {}
    for raw in columns:
        name = str(raw).strip()
        want = canon.get(name.lower(), name)
        out[str(raw)] = want if want not in out.values() else name
    return out


def _epic_sep(path: Path) -> str:
    """``\\t`` for an EPIC table saved tab-separated (its header has tabs and no comma), else ``,``."""
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8", errors="replace")
    return "\t" if "\t" in first and "," not in first else ","


def _cut_last_line(path: Path, sep: str, n_header: int) -> tuple[int, int] | None:
    """``(fields, width)`` when the file's last non-empty line has fewer fields than ``width``, the rows before it
    have (their most common count), as a file cut short mid-line has (e.g. a copy still being written); else None.
    The rows, not the header, give the width: a header may have more fields (a trailing comma). A table of one
    row is compared with the header's ``n_header`` fields, less trailing empty names. Reads the last 64 KiB only.
    """
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read().decode("utf-8", errors="replace")
    try:  # records, not lines: a quoted field may hold a line break
        rows = list(csv.reader(io.StringIO(tail, newline=""), delimiter=sep, skipinitialspace=True))
    except csv.Error:
        return None
    rows = [r for r in rows if any(f.strip().strip('"') for f in r)]  # (",,,,": an empty row, dropped)
    if len(rows) < 2:  # a partial first line only, or the header only
        return None
    first, before, last = rows[0], rows[1:-1][-200:], rows[-1]  # the first: the header or a line cut by the seek
    if before:
        counts = np.unique([len(r) for r in before], return_counts=True)
        width = int(counts[0][np.argmax(counts[1])])
    elif size <= 65536:  # the header and one row
        width = len(first)
        while width and not first[width - 1].strip():
            width -= 1
        width = min(width, n_header) if n_header else width
    else:
        return None
    return (len(last), width) if len(last) < width else None


def _fields(row: list[str]) -> int:
    """Fields of the csv row ``row``, less its trailing empty ones (a trailing comma)."""
    n = len(row)
    while n and not row[n - 1].strip():
        n -= 1
    return n


def _csv_widths(text: str, sep: str) -> Iterator[tuple[int, int, bool]]:
    """``(line, fields, quoted)`` of each row of ``text`` that is not empty, as the csv module reads it (a quoted
    field may hold the separator or a line break): its first line, its fields less trailing empty ones, and whether
    it starts with a quote. Stops where the csv module cannot read on (pandas then says what it cannot read)."""
    raw: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            raw.append(line)
            yield line

    reader = csv.reader(lines(), delimiter=sep, skipinitialspace=True)
    done = 0
    try:
        for row in reader:
            start, done = done + 1, reader.line_num
            quoted = bool(raw) and raw[0].lstrip().startswith('"')
            raw.clear()
            n = _fields(row)
            if n:
                yield start, n, quoted
    except csv.Error:
        return


def _check_widths(path: Path, sep: str) -> None:
    """Refuse a table with a row of more fields than its header (trailing empty ones left out), naming its line:
    read, its values would shift under the wrong columns, silently where they are numbers (pandas takes the first
    row's extra fields as row labels; an EPIC table's read of some of its columns drops a later row's extra ones).
    Such rows come mostly from decimal commas in a table separated by commas (12,5: two fields), which no reader
    can tell from the separators: said so (:data:`DECIMAL_COMMA_ADVICE`). R's ``write.table`` row names, one more
    field than the header on every row, the first one quoted (``"1",...``), are read as before (pandas' row
    labels). Each row one line in a file without a quote character, else the rows as the csv module reads them."""
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    if b'"' not in data:
        bsep = sep.encode()
        rows: Iterator[tuple[int, int, bool]] = (
            (k, line.rstrip(bsep + b" \t").count(bsep) + 1, False)
            for k, line in enumerate(data.splitlines(), start=1) if line.strip(bsep + b" \t"))
    else:
        rows = _csv_widths(data.decode("utf-8", errors="replace"), sep)
    first = next(rows, None)
    if first is None:
        return
    header = width = first[1]
    for i, (k, n, quoted) in enumerate(rows):
        if i == 0 and n == header + 1 and quoted:  # R's row names: one more field on every row
            width = n
        if n > width:
            raise DevolensError(f"line {k} has {n} fields, the header {header}: its values would be read under the "
                                f"wrong columns; {DECIMAL_COMMA_ADVICE}", path=path)


#: Columns that only an EPIC AuxInfo file has (its embryo ellipse and z plane spacing).
_AUX_MARKERS = frozenset({"xc", "yc", "maj", "min", "zpixres"})
#: First line of an EPIC TIME file: embryo name, time point, seconds[, seconds since the previous], tab-separated.
_TIME_LINE_RE = re.compile(r"^(?![\d.\s-]+\t)[^\t,]+\t\s*\d+\s*\t\s*-?\d+(?:\.\d*)?\s*(?:\t\s*-?\d+(?:\.\d*)?\s*)?$")


def _refuse_epic_companion(path: Path, first: str, cols: set[str]) -> None:
    """Refuse an EPIC AuxInfo or TIME file given where a lineage table is expected, naming the CD table.

    Decided from the content (the AuxInfo header; the TIME file's headerless tab-separated line of
    name, time point, seconds); the name patterns (``*AuxInfo.csv``, ``TIME*.csv``) only pick the
    CD table to suggest (``CD<embryo>.csv`` in the same folder).
    """
    if _AUX_MARKERS <= cols:
        kind = "an EPIC AuxInfo file (embryo ellipse and z spacing)"
        stem = path.stem[: -len("AuxInfo")] if path.stem.endswith("AuxInfo") else None
    elif _TIME_LINE_RE.match(first.rstrip("\r\n")):
        kind = "an EPIC time file (seconds of each time point)"
        stem = path.stem[len("TIME"):] if path.stem.startswith("TIME") else None
    else:
        return
    cd = path.with_name(f"CD{stem}.csv") if stem else None
    if cd is not None and cd.is_file():
        hint = f"give the CD*.csv table of the embryo (here {cd.name}, which picks this file up)"
    else:
        hint = "give the CD*.csv table of the embryo (it picks up its AuxInfo and TIME files beside it)"
    raise DevolensError(f"{kind}, not a lineage table: {hint}", path=path)


#: The column names the readers accept, as an unrecognised table's message says them (:data:`POSITION_ALIASES`).
COLUMNS_ACCEPTED = ("the columns read are cell (or name, cell_name), time (or t, frame, timepoint), x, y and z (or "
                    "position_x, position_y, position_z), and optionally embryo and size (or diameter), in any "
                    "capitalisation: rename yours so")


class UnrecognisedColumns(DevolensError):
    """A CSV whose header is neither an EPIC CD table's nor a tidy table's (``columns``: its header). ``title``:
    the second line, when it is a header the readers know (the first line then a title above it), said with what
    to do in place of :data:`COLUMNS_ACCEPTED`."""

    def __init__(self, path: Path, columns: list[str], extra: str = "", title: str | None = None,
                 required: tuple[str, ...] = ("time", "cell", "x", "y", "z")):
        self.columns = columns
        self.title = title
        shown = ",".join(columns)[:120]
        hint = (f"the first line looks like a title above the header ({title[:80]}): delete it"
                if title is not None else _found_missing(columns, required) + COLUMNS_ACCEPTED)
        super().__init__(
            "unrecognised columns (expected an EPIC CD table with "
            f"{','.join(EPIC_REQUIRED)} or a tidy table with {','.join(TIDY_REQUIRED)}{extra}; found {shown}): {hint}",
            path=path,
        )


def _said(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _found_missing(columns: list[str], required: tuple[str, ...]) -> str:
    """What an unrecognised header's ``columns`` hold of the ``required`` tidy columns, as the start of its message
    (``found time (T) and cell (Cell); missing x, y and z: ``); empty when it holds none of them or all."""
    mapping = {tidy: col for col, tidy in _position_mapping([str(c).strip() for c in columns]).items()}
    found = [f"{tidy} ({str(mapping[tidy])[:40]})" for tidy in required if tidy in mapping]
    missing = [tidy for tidy in required if tidy not in mapping]
    if not found or not missing:
        return ""
    return f"found {_said(found)}; missing {_said(missing)}: "


def _title_above(text: str) -> str | None:
    """The second line of the decoded table ``text`` (its start), stripped, when it is a header a reader knows
    (:func:`_known_header`, separated by commas, semicolons or tabs) and the first is not: the first line is then a
    title above the header (a spreadsheet's heading row); else None."""
    lines = [line for line in text.splitlines() if line.strip()][:2]
    if len(lines) < 2:
        return None
    first, second = lines
    if any(_known_header(_header_names(first, sep)) for sep in (",", ";", "\t")):
        return None
    known = any(_known_header(_header_names(second, sep)) or _lineage_columns(_header_names(second, sep))
                for sep in (",", ";", "\t"))
    return second.strip() if known else None


def read_table(path: str | Path, format: str | None = None) -> pd.DataFrame:
    """Read any supported lineage table into the tidy table.

    Parameters
    ----------
    path : str or Path
        An EPIC CD CSV, a tidy CSV, an AceTree zip, or an AceTree folder.
    format : {"epic", "acetree", "tidy"}, optional
        Skip detection and use this reader.

    Returns
    -------
    pandas.DataFrame
        The tidy table (see the module docstring for columns, units and ``attrs``).

    Raises
    ------
    DevolensError
        When the input is missing, empty, binary or malformed.

    Examples
    --------
    >>> df = read_table("CD20241009_JIM767_25_L1.csv")  # doctest: +SKIP
    >>> df.attrs["zscale"], df.groupby("time").size().max()  # doctest: +SKIP
    """
    path = _table_path(path)
    if format is not None and (not isinstance(format, str) or format.strip().lower() not in ("epic", "acetree", "tidy")):
        raise DevolensValueError(f"format must be 'epic', 'acetree', 'tidy' or None (detected), got {format!r}")
    if path.is_file() and _is_gzip(path):  # (L1.csv.gz: read decompressed)
        return _read_gzipped(read_table, path, format=format)
    return _read_table(path, format.strip().lower() if format is not None else None)


def _read_table(path: Path, fmt: str | None, head: _Head | None = None) -> pd.DataFrame:
    """:func:`read_table` of the format ``fmt`` (None: detected), ``head`` the file's head when already read."""
    if fmt is None:
        fmt, head = _detect(path, head)
    if fmt == "epic":
        return _read_epic(path, None, None, head)
    if fmt == "acetree":
        return read_acetree(path)
    return _read_tidy(path, head)


# ----------------------------------------------------------------------------- duplicates
@dataclass(frozen=True)
class DuplicateRows:
    """Repeated rows of a tidy table (see :func:`drop_duplicate_rows`).

    Attributes
    ----------
    exact : int
        Rows dropped: copies of an earlier row in every column (same embryo, time point, cell
        name, x, y, z, size and, for EPIC, blot; for a tidy CSV also its extra columns).
    same_name : int
        Rows kept although they repeat a non-empty cell name at one time point of an embryo with
        another position or size: conflicting annotations, not copies (``devolens lineage clean``
        keeps the first row of each name).
    first_same_name : tuple of (int, str), optional
        Time point and name of the first such repeat, for messages.
    """

    exact: int
    same_name: int
    first_same_name: tuple[int, str] | None = None


def exact_copies(df: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the rows equal to an earlier row in every column (the first of each kept).

    Vectorised hashing, no per-row Python. A copy repeats time and position, so those numeric columns are
    checked first (8 ms for the 106k-row AceTree embryo); whole rows, string columns included (4x slower), only
    when some repeat."""
    pos = [c for c in ("time", "x", "y", "z") if c in df.columns]
    copy = df.duplicated(subset=pos or None, keep="first").to_numpy()
    if copy.any() and len(pos) < df.shape[1]:
        copy = df.duplicated(keep="first").to_numpy()
    return copy


def drop_exact_copies(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``df`` without its :func:`exact_copies` (the same object when there are none; ``attrs`` kept) and how many
    rows went."""
    copy = exact_copies(df)
    n_exact = int(copy.sum())
    if n_exact:
        attrs = dict(df.attrs)
        df = df.loc[~copy].reset_index(drop=True)
        df.attrs = attrs
    return df, n_exact


def drop_duplicate_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, DuplicateRows]:
    """Drop exact copies of rows (a table saved or concatenated twice) and count conflicting names.

    A copy is a row equal to an earlier one in every column of the tidy table, which covers each
    format: EPIC (``cell, time, x, y, z, size, blot`` as read), AceTree (``time, cell, x, y, z,
    size`` of the valid nuclei; unnamed nuclei are copies only at the same position) and tidy
    CSVs (all their columns). Copies would count every cell twice in populations; the first
    row of each is kept, so the table keeps its order. Rows that share a cell name at one time
    point but differ in position or size are kept and only counted: which one is right is not
    known here.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy table (:func:`read_table`).

    Returns
    -------
    (pandas.DataFrame, DuplicateRows)
        The table without copies (the same object when there are none; ``attrs`` kept) and what
        was found.
    """
    df, n_exact = drop_exact_copies(df)
    same_name, first = 0, None
    if "cell" in df.columns:  # names repeated at one time point with another position: lineage clean's business
        from devolens.lineage.cliffs import find_duplicates

        dup = find_duplicates(df)
        same_name = int((dup["count"] - 1).sum())
        if same_name:
            first = (int(dup["time"].iat[0]), str(dup["cell"].iat[0]))
    return df, DuplicateRows(exact=n_exact, same_name=same_name, first_same_name=first)


# ----------------------------------------------------------------------------- EPIC
def epic_companions(path: str | Path) -> tuple[Path, Path]:
    """Paths of the AuxInfo and TIME files that belong beside an EPIC CD table.

    ``CD20241009_JIM767_25_L1.csv`` -> ``20241009_JIM767_25_L1AuxInfo.csv`` and
    ``TIME20241009_JIM767_25_L1.csv`` (they may not exist).

    A table reached through a symbolic link (the shared data linked into a project) has its companions beside the
    link or, for each one not there, beside the file the link leads to (named by its own name): looked for beside
    the link only, the z scale and timing were lost without a word, and identify's names changed.

    The names are matched whatever their case (``...AuxInfo.CSV``, ``TIME....CSV``, ``...AUXINFO.csv``: a Windows
    export), the exact-case name preferred (:func:`_beside_any_case`): matched exactly only, the z scale and timing
    were lost without a note on a case-sensitive file system.
    """
    path = Path(path)
    name = path.stem[2:] if path.stem.startswith("CD") else path.stem
    found = _beside_any_case(path.parent, (f"{name}AuxInfo.csv", f"TIME{name}.csv"))
    if not all(p.exists() for p in found):
        try:
            real = Path(os.path.realpath(path))
        except (OSError, ValueError):
            real = path
        if real != path.absolute() and real.is_file():
            stem = real.stem[2:] if real.stem.startswith("CD") else real.stem
            beside = _beside_any_case(real.parent, (f"{stem}AuxInfo.csv", f"TIME{stem}.csv"))
            found = [p if p.exists() or not there.exists() else there for p, there in zip(found, beside)]
    return found[0], found[1]


def _beside_any_case(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """``folder / name`` for each of ``names``: the file of that exact name when there is one, else the one whose
    name matches it whatever the case (the first in sorted order when several do), else the exact-case path (which
    does not exist). The folder is listed once, and only when some name is not there as given."""
    found = [folder / n for n in names]
    if all(p.exists() for p in found):
        return found
    try:
        listing = sorted(os.listdir(folder or "."))
    except (OSError, ValueError):
        return found
    by_fold: dict[str, str] = {}
    for entry in listing:
        by_fold.setdefault(entry.casefold(), entry)
    return [p if p.exists() or n.casefold() not in by_fold else folder / by_fold[n.casefold()]
            for p, n in zip(found, names)]


#: z plane spacings (xy pixels per plane) an AuxInfo's ``zpixres`` may give: the real files give 5.7471; a value
#: outside (0, -5, 1e12) is a typing slip or a damaged file, no microscope's.
ZPIXRES_RANGE = (0.01, 100.0)


def _zpixres(value: float, path: Path) -> tuple[float | None, str | None]:
    """An AuxInfo's ``zpixres`` as a z scale, and a note when it is given but unusable (infinite, 0 or less, outside
    :data:`ZPIXRES_RANGE`): then None, the z scale unknown, as a missing (NaN) one is, silently, and as the reader
    takes a missing ellipse value. Not refused: the AuxInfo is optional metadata beside a sound table, and what needs
    a z scale estimates it from the nuclei without one (renders, identity), as for a table without an AuxInfo."""
    if math.isnan(value):
        return None, None
    lo, hi = ZPIXRES_RANGE
    if math.isfinite(value) and lo <= value <= hi:
        return value, None
    return None, (f"the AuxInfo file {path.name} gives zpixres {value:g}, not a z plane spacing (expected {lo:g} to "
                  f"{hi:g} xy pixels per plane; EPIC's is about 5.75): z scale unknown, estimated from the nuclei "
                  "where needed, as without an AuxInfo")


#: The columns of an AuxInfo's embryo ellipse: centre and axes (pixels), angle (degrees).
ELLIPSE_COLUMNS: tuple[str, ...] = ("xc", "yc", "maj", "min", "ang")


def _first_row_line(path: Path) -> int:
    """File line of a CSV's first row: its second line that is not blank (pandas skips blank lines)."""
    seen = 0
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                seen += 1
                if seen == 2:
                    return n
    return 2


def _ellipse_problem(values: Any, at: str = "") -> str | None:
    """What makes ``values`` (a mapping of :data:`ELLIPSE_COLUMNS` to numbers) no embryo ellipse, in words naming the
    column (``at``: where, e.g. ``"line 2: "``), or None: an infinite value, one beyond ±:data:`MAX_COORDINATE`, or
    an axis of 0 or less; a missing value (NaN) is no problem here (no ellipse). Passed on, such an ellipse sized a
    render's embryo (a major axis of 1e300 drew every nucleus as a point at the frame's centre: one object a frame),
    gave the lineage model's fit infinite shell fractions (an axis of 0), and was kept in a converted table's
    sidecar: an AuxInfo's (:func:`read_epic_auxinfo`) and a tidy sidecar's (:func:`_usable_ellipse`) are taken as
    none, with a note."""
    v = {c: float(values[c]) for c in ELLIPSE_COLUMNS}
    for c, x in v.items():
        if math.isinf(x):
            return f"column '{c}' is not a finite number ({at}{x:g}): ellipse values must be finite"
        if abs(x) > MAX_COORDINATE:
            return (f"column '{c}' holds an absurd value ({at}{x:g}): ellipse values beyond ±{MAX_COORDINATE:,.0f} "
                    "(pixels, degrees) are no embryo's (a damaged AuxInfo file?)")
    for c in ("maj", "min"):
        if v[c] <= 0:  # (NaN: not <= 0)
            where = f" ({at.rstrip(': ')})" if at else ""
            return (f"column '{c}' holds an axis of {v[c]:g}{where}: the embryo ellipse's axes are lengths above 0 "
                    "(a damaged AuxInfo file?)")
    return None


def _usable_ellipse(ell: Any) -> bool:
    """Whether a tidy table's sidecar ellipse is an embryo ellipse: a mapping of :data:`ELLIPSE_COLUMNS` to finite
    numbers with no :func:`_ellipse_problem`."""
    if not isinstance(ell, dict) or any(not checks.is_number(ell.get(k)) for k in ELLIPSE_COLUMNS):
        return False
    return all(math.isfinite(float(ell[k])) for k in ELLIPSE_COLUMNS) and _ellipse_problem(ell) is None


def read_epic_auxinfo(path: str | Path) -> dict[str, Any]:
    """Read an EPIC AuxInfo CSV.

    Returns
    -------
    dict
        ``zscale`` (``zpixres``, plane spacing in xy pixels; None when missing or unusable: :func:`_zpixres`),
        ``ellipse`` (``xc, yc, maj, min`` in pixels, ``ang`` in degrees; None when a value is missing), ``axis``
        (str), ``aux`` (every column of the first row) and ``notes`` (what was not taken, and why; a list, often
        empty).

    Raises
    ------
    DevolensError
        Not an AuxInfo file (columns missing, no rows, a value not numeric). An ellipse value infinite, beyond
        ±:data:`MAX_COORDINATE` or an axis of 0 or less (:func:`_ellipse_problem`) is no error: the ellipse is
        taken as none, with a note naming the column and line (the table's positions do not depend on it; a
        bad ``zpixres`` is treated the same way).
    """
    path = Path(path)
    head = _Head.read_or_none(path) if path.is_file() else None
    recoding, source, notes = _recoded(head), None, []
    if recoding is not None and recoding.semicolons:  # saved again by Excel beside its CD table (its numbers: 5,7471)
        text, decimal_commas = _comma_text(_decoded(path, recoding.encoding), path)
        source = io.StringIO(text)
        decimals = ", with decimal commas," if decimal_commas else ""
        notes.append(f"the AuxInfo file {path.name} is separated by semicolons{decimals} as the table is: read as such")
    df = _read_csv(path, "an EPIC AuxInfo CSV", source)
    df.columns = [str(c).strip() for c in df.columns]
    need = ("xc", "yc", "maj", "min", "ang", "zpixres")
    missing = [c for c in need if c not in df.columns]
    if missing or len(df) == 0:
        what = f"missing columns {','.join(missing)}" if missing else "no rows"
        raise DevolensError(f"not an EPIC AuxInfo file ({what})", path=path)
    _numeric(df, list(need), path)
    row = df.iloc[0]
    # optional metadata, as zpixres: a bad ellipse is none, with a note; the table is still read
    problem = _ellipse_problem(row)  # (the file opened again for its line number only where one is said)
    if problem:
        problem = _ellipse_problem(row, at=f"line {_first_row_line(path)}: ")
    notes += [f"{path}: {problem}: the embryo ellipse is taken as none"] if problem else []
    usable = problem is None
    aux = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    ellipse = {k: float(row[k]) for k in ELLIPSE_COLUMNS}
    zscale, note = _zpixres(float(row["zpixres"]), path)
    axis = row.get("axis")
    return {
        "zscale": zscale,
        # (NaN: no ellipse)
        "ellipse": ellipse if usable and all(math.isfinite(v) for v in ellipse.values()) else None,
        "axis": None if axis is None or (isinstance(axis, float) and math.isnan(axis)) else str(axis).strip(),
        "aux": aux,
        "notes": notes + ([note] if note else []),
    }


def read_epic_time(path: str | Path, within: tuple[int, int] | None = None) -> dict[str, Any]:
    """Read an EPIC TIME file (tab-separated, no header: name, time, seconds, delta).

    Parameters
    ----------
    path : str or Path
        The TIME file.
    within : (int, int), optional
        The first and last time point of the table the file is read for: ``seconds_per_time`` is then the median
        spacing over the file's time points in that range (a TIME file lists the whole recording, often well past
        the time points a CD table annotates, where the spacing may differ: 94 s over the 240 time points of
        ``TIME20241009_JIM767_25_L1.csv``, 91 s over the 140 of its table), or over all of them where it lists fewer
        than two in that range. ``time_seconds`` lists every time point either way.

    Returns
    -------
    dict
        ``time_seconds`` ({time point: seconds}) and ``seconds_per_time`` (median spacing
        in seconds, or None with fewer than two time points).

    A time point listed again with the same name and seconds (a file saved or concatenated twice) is read once.

    Raises
    ------
    DevolensError
        If the file is not a TIME file, or its seconds are missing, not finite, negative, or go backwards from one
        time point to the next, or it lists a time point twice with other seconds (or another name).
    """
    path = Path(path)
    df = _read_csv(path, "an EPIC TIME file", sep="\t", header=None)
    if df.shape[1] < 3:
        raise DevolensError(
            f"not an EPIC TIME file (expected tab-separated name, time, seconds; found {df.shape[1]} column(s))",
            path=path,
        )
    df = df.iloc[:, :3].copy()
    df.columns = ["name", "time", "seconds"]
    _int_times(df, path, line_offset=1)
    _numeric(df, ["seconds"], path, line_offset=1)
    _check_no_missing(df, ["seconds"], path, line_offset=1)
    _check_seconds(df, path)
    df = _drop_repeated_times(df, path)
    df = df.sort_values("time", kind="stable")
    _check_seconds_forward(df, path)
    ts = dict(zip(df["time"].tolist(), df["seconds"].tolist()))
    if within is not None:
        inside = df["time"].between(*within).to_numpy()
        df = df.loc[inside] if inside.sum() > 1 else df
    spacing = np.diff(df["seconds"].to_numpy()) / np.maximum(np.diff(df["time"].to_numpy()), 1)
    spt = float(np.median(spacing)) if len(spacing) else None
    return {"time_seconds": ts, "seconds_per_time": spt}


def _check_seconds(df: pd.DataFrame, path: Path) -> None:
    """Refuse a TIME file's seconds (since the recording's first time point) that are infinite or negative, naming
    the first (its line): passed on, they became ``time_seconds`` and a ``seconds_per_time`` of inf or NaN, or
    negative, which the lineage fit and the tidy tables' metadata took as the embryo's clock."""
    v = df["seconds"].to_numpy(np.float64)
    for bad, what, why in ((~np.isfinite(v), "is not a finite number", "must be finite"),
                           (v < 0, "is negative", "count from the recording's start")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DevolensError(f"column 'seconds' {what} (line {_line(df, i, 1)}: {v[i]:g}{_and_more(df, bad, 1)}): "
                                f"a TIME file's seconds {why}", path=path)


def _drop_repeated_times(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``df``, a TIME file's rows, without the repeats of a row (same name, time point and seconds: a file saved or
    concatenated twice); a time point listed twice with other seconds (or another name) is refused, naming the first
    such pair of lines: the seconds of its last row were taken, silently, though neither is known to be right."""
    df = df.loc[~df.duplicated(["name", "time", "seconds"])]
    twice = df["time"].duplicated(keep=False).to_numpy()
    if not twice.any():
        return df
    t = df["time"].to_numpy()
    i = int(np.flatnonzero(twice)[0])
    j = int(np.flatnonzero(t == t[i])[1])
    v, names = df["seconds"].to_numpy(np.float64), df["name"].to_numpy()
    n = len(np.unique(t[twice]))
    more = "" if n == 1 else f"; {n} such time points"
    what = (f"{v[i]:g} s (line {_line(df, i, 1)}) and {v[j]:g} s (line {_line(df, j, 1)})" if v[i] != v[j] else
            f"names {str(names[i])!r} (line {_line(df, i, 1)}) and {str(names[j])!r} (line {_line(df, j, 1)})")
    raise DevolensError(f"time point {t[i]} is listed twice, with {what}{more}: a TIME file lists each time point "
                        "once, with its seconds", path=path)


def _check_seconds_forward(df: pd.DataFrame, path: Path) -> None:
    """Refuse a TIME file (``df`` sorted by time point) whose seconds go backwards from one time point to the next,
    naming the first such line and the one before it: its clock cannot be the recording's (the spacing between time
    points, ``seconds_per_time``, is the median of these steps)."""
    v = df["seconds"].to_numpy(np.float64)
    back = np.flatnonzero(np.diff(v) < 0)
    if len(back):
        i = int(back[0]) + 1
        t = df["time"].to_numpy()
        more = "" if len(back) == 1 else f"; {len(back)} such steps"
        raise DevolensError(f"column 'seconds' goes backwards (line {_line(df, i, 1)}: {v[i]:g} s at time point "
                            f"{t[i]}, after {v[i - 1]:g} s at time point {t[i - 1]}, line {_line(df, i - 1, 1)}{more}): "
                            "a TIME file's seconds grow with the time points", path=path)


#: What an EPIC table is read with in place of an AuxInfo or TIME file beside it that cannot be read (as without it).
_WITHOUT_COMPANION = {
    "AuxInfo": "z scale estimated from the nuclei where needed, no embryo ellipse or axis",
    "TIME": "time points without seconds",
}


def _companion(reader: Callable[[Path], dict[str, Any]], path: Path, given: bool, kind: str,
               notes: list[str]) -> dict[str, Any] | None:
    """``reader(path)``, the AuxInfo or TIME file (``kind``) of an EPIC table; None, with a note in ``notes`` naming
    the file, why and what is used instead, where it was picked up beside the table by its name (not ``given``) and
    cannot be read. Such a file is optional metadata beside a sound table (as an unusable zpixres or ellipse in a
    readable one): a damaged one made the table unreadable for every command, though read without it, it is fine.
    One the caller gave (``read_epic``'s ``auxinfo``, ``time_file``) is still refused, as is either given as the
    table itself (:func:`_refuse_epic_companion`)."""
    try:
        return reader(path)
    except (DevolensError, OSError) as exc:  # (OSError: a folder of that name, a file that cannot be opened)
        if given:
            raise
        why = exc.message if isinstance(exc, DevolensError) else f"cannot be read ({exc.strerror or exc})"
        notes.append(f"{path}: {why}; ignored (the {kind} file beside the table), the table read as without it: "
                     f"{_WITHOUT_COMPANION[kind]}")
        return None


def read_epic(
    path: str | Path, auxinfo: str | Path | None = None, time_file: str | Path | None = None
) -> pd.DataFrame:
    """Read an EPIC CD CSV (``cellTime,cell,time,none,global,local,blot,cross,z,x,y,size,gweight``).

    Parameters
    ----------
    path : str or Path
        The CD table, e.g. ``CD20241009_JIM767_25_L1.csv``.
    auxinfo, time_file : str or Path, optional
        AuxInfo and TIME files. By default the ones named after the table in the same
        folder are used when they exist (see :func:`epic_companions`); one of those that cannot be
        read is ignored with a note in ``attrs["notes"]`` (the table read as without it), while one
        given here that cannot be read raises :class:`~devolens.errors.DevolensError`.

    Returns
    -------
    pandas.DataFrame
        The tidy table with ``blot``; ``embryo`` is the file name without ``CD``.
        x, y, size in pixels, z in planes.
    """
    return _read_epic(Path(path), auxinfo, time_file)


def _read_epic(path: Path, auxinfo: str | Path | None, time_file: str | Path | None,
               head: _Head | None = None) -> pd.DataFrame:
    """:func:`read_epic`; ``head``: the file's head, when already read."""
    if not path.exists():
        raise DevolensError("file not found", path=path)
    if path.is_dir():
        raise DevolensError("is a folder, not an EPIC CD table", path=path)
    if head is None:
        head = _Head.read_or_none(path)
    recoding = _recoded(head, path)
    if recoding:
        return _read_recoded(read_epic, path, recoding, auxinfo=auxinfo, time_file=time_file)
    _sniff_binary(path, head if head is not None else _Head.read(path))  # (cannot be read: open's error)
    sep = _epic_sep(path)
    # the header read as the rows are (skipinitialspace): "cell, time, ..." names its columns alike in both reads
    header = _read_csv(path, "an EPIC CD table", nrows=0, sep=sep, skipinitialspace=True)
    names = _epic_names(header.columns)  # CellTime, Cell, X... (other tools' capitalisation) -> EPIC names
    cols = list(names.values())
    missing = [c for c in EPIC_REQUIRED if c not in cols]
    if missing:
        raise DevolensError(f"not an EPIC CD table: missing columns {','.join(missing)}", path=path)
    use = {raw for raw, c in names.items() if c in ("cell", "time", "x", "y", "z", "size", "blot")}
    cell_raw = next(raw for raw, c in names.items() if c == "cell")
    # an embryo column added to a CD table (several embryos in one file) is read as a tidy table's is
    embryo_raw = next((raw for raw in names if raw.strip().lower() == "embryo"), None)
    if embryo_raw is not None:
        use.add(embryo_raw)
    _check_widths(path, sep)  # (a decimal comma in a row: read by its columns, the row's values would shift)
    # blank lines read as rows (dropped below): a row's label then gives its line in the file (_line)
    above = _lines_before_header(path)
    df = _read_csv(
        path, "an EPIC CD table", usecols=lambda c: str(c) in use,
        dtype={cell_raw: str, **({embryo_raw: str} if embryo_raw is not None else {})},
        skipinitialspace=True, sep=sep, skip_blank_lines=False, skiprows=above,
    )
    df.columns = ["embryo" if str(c) == embryo_raw else names.get(str(c), str(c).strip()) for c in df.columns]
    notes: list[str] = []
    df, empty = _drop_empty_rows(df, path, sep, line_offset=2 + above)
    if empty:
        notes.append(empty)
    cut = _cut_last_line(path, sep, len(header.columns)) if len(df) else None
    if cut is not None:  # CD tables are ordered by cell: a file cut short loses whole lineages, and its last value
        # may be cut mid-number (38 read as 4): the incomplete line is dropped, the rest read
        df = df.iloc[:-1]
        notes.append(f"the last line has {cut[0]} of {cut[1]} fields: the file may be cut short (a CD table lists "
                     "cell after cell, so the cells after it are missing); dropped that line")
    if len(df) == 0:
        raise DevolensError("no data rows (header only)", path=path)
    _int_times(df, path, line_offset=2 + above)
    num = ["x", "y", "z", "size"] + (["blot"] if "blot" in df.columns else [])
    _numeric(df, num, path, line_offset=2 + above)
    _check_no_missing(df, ["x", "y", "z"], path, line_offset=2 + above)
    _check_finite(df, ["x", "y", "z", "size"], path, line_offset=2 + above)
    name = path.stem[2:] if path.stem.startswith("CD") else path.stem
    df["cell"] = _names(df["cell"])
    if "embryo" in df.columns:
        df["embryo"] = df["embryo"].fillna(name).astype(str)
    else:
        df.insert(0, "embryo", name)
    notes += _table_gaps(df)
    meta = _empty_meta()
    meta.update(_unread_embryo(header.columns))
    aux_default, time_default = epic_companions(path)
    aux_path = Path(auxinfo) if auxinfo is not None else (aux_default if aux_default.exists() else None)
    time_path = Path(time_file) if time_file is not None else (time_default if time_default.exists() else None)
    a = _companion(read_epic_auxinfo, aux_path, auxinfo is not None, "AuxInfo", notes) if aux_path else None
    if a is not None:
        meta.update(zscale=a["zscale"], ellipse=a["ellipse"], axis=a["axis"], aux=a["aux"])
        notes += a["notes"]
    # (its spacing over the table's own time points: the TIME file may go on well past them)
    within = (int(df["time"].min()), int(df["time"].max()))
    timing = (_companion(lambda p: read_epic_time(p, within), time_path, time_file is not None, "TIME", notes)
              if time_path else None)
    if timing is not None:
        meta.update(timing)
    out = df[list(TIDY_COLUMNS) + (["blot"] if "blot" in df.columns else [])]
    if notes:
        meta["notes"] = list(meta.get("notes") or []) + notes
    return _finish(out, "epic", path, meta)


# ----------------------------------------------------------------------------- AceTree
def _acetree_dir_files(path: Path) -> list[tuple[int, Path]]:
    files = []
    for base in (path / "nuclei", path):
        if base.is_dir():
            for p in base.iterdir():
                m = _NUCLEI_RE.search(p.name)
                if m and p.is_file():
                    files.append((int(m.group(1)), p))
            if files:
                break
    return sorted(files)


def _nested_nuclei(path: Path, depth: int = 4, limit: int = 2000) -> Path | None:
    """The first folder (sorted, shallowest first) under the folder ``path``, at most ``depth`` levels down, that
    holds AceTree nuclei files itself (``myembryo/run1/nuclei``, as a zip's nested folder is read); None when none
    of the first ``limit`` folders looked at does (hidden folders and ``__MACOSX`` passed over)."""
    level, seen = [path], 0
    for _ in range(depth):
        below: list[Path] = []
        for folder in level:
            try:
                subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))
            except OSError:
                continue
            for sub in subs:
                seen += 1
                if seen > limit:
                    return None
                if any(_NUCLEI_RE.search(p.name) and p.is_file() for p in sub.iterdir()):
                    return sub
                below.append(sub)
        level = below
    return None


def _no_nuclei(path: Path, expected: str) -> DevolensError:
    """The error for the folder ``path`` that holds no AceTree nuclei files (``expected``: where they would be),
    naming a folder deeper down that holds them (:func:`_nested_nuclei`)."""
    try:
        found = _nested_nuclei(path)
    except OSError:
        found = None
    if found is not None:
        return DevolensError(f"folder holds no AceTree nuclei files ({expected}) but {found.relative_to(path)} inside "
                             f"it does: give that folder ({found})", path=path)
    return DevolensError(f"folder holds no AceTree nuclei files ({expected})", path=path)


def _starts_like_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


#: Largest nuclei file read, uncompressed (bytes). Real ones hold kilobytes (the largest of the WormGUIDES embryo, 580
#: nuclei, 204 KB); a zip member declaring more is a damaged zip or a zip bomb (a few MB unpacking to GB), refused
#: before it is read rather than filling memory.
NUCLEI_FILE_MAX = 64 * 2**20
#: Largest series read, all nuclei files together (bytes; the WormGUIDES embryo's 360 files: 25 MB).
NUCLEI_TOTAL_MAX = 512 * 2**20


def _too_big(what: str, size: int, cap: int, path: Path) -> DevolensError:
    """The error for a nuclei file (``what``: its name) or a series of ``size`` bytes (more than ``cap + 1`` read
    from it: at least that), over ``cap``."""
    amount = f"more than {cap // 2**20} MB" if size == cap + 1 else f"{size / 2**20:,.0f} MB"
    kind = "series" if cap == NUCLEI_TOTAL_MAX else "file"
    zipped = path.is_file() and (_starts_like_zip(path) or zipfile.is_zipfile(path))
    return DevolensError(f"{what} {'unpacks to' if zipped else 'holds'} {amount}, more than any AceTree nuclei {kind} "
                         f"(at most {cap // 2**20} MB read; real ones hold kilobytes a time point): "
                         f"{'the zip is damaged or not an AceTree export' if zipped else 'not AceTree nuclei files'}",
                         path=path)


def _one_file_per_time(members: list[tuple[int, str]], path: Path, where: str) -> None:
    """Refuse a nuclei file named twice (a zip updated with the file added again: zipfile reads the last copy
    under both names) or several for one time point (``t2-nuclei`` beside ``t002-nuclei``: read as one time
    point, their nuclei merged), naming them: which one is right is not known here, as for a zip holding nuclei
    folders without ``nuclei/``. ``members``: (time, name) of the files; ``where``: "zip" or "folder"."""
    seen: dict[int, list[str]] = {}
    for t, name in members:
        seen.setdefault(t, []).append(name)
    for t, names in sorted(seen.items()):
        if len(names) > 1:
            if len(set(names)) == 1:
                raise DevolensError(f"{where} holds {names[0]} {len(names)} times (a file added again when the zip was "
                                    "updated?): which copy is right is not known; keep one", path=path)
            shown = ", ".join(sorted(set(names)))
            raise DevolensError(f"{where} holds several nuclei files for time point {t} ({shown}): which one is right "
                                "is not known; keep one", path=path)


def _read_bounded(fh, name: str, cap: int, path: Path) -> bytes:
    """At most ``cap`` bytes of the open file ``fh`` (the nuclei file ``name``), refused when it holds more (a zip
    member whose header understates its size is caught so too)."""
    data = fh.read(cap + 1)
    if len(data) > cap:
        raise _too_big(name, len(data), cap, path)
    return data


def _acetree_sources(path: Path, notes: list[str] | None = None) -> list[tuple[int, bytes]]:
    """(time, bytes) of every nuclei file in a zip or folder, sorted by time.

    A zip holding nuclei files in several folders (an edited lineage zipped with its backup) is
    read from its top-level ``nuclei/`` folder, the one AceTree reads, with a note; without one
    it is refused rather than counting every nucleus once per copy. A file named twice, or several
    for one time point, is refused (:func:`_one_file_per_time`); so is a file or a series larger than
    any AceTree writes (:data:`NUCLEI_FILE_MAX`, :data:`NUCLEI_TOTAL_MAX`), before it is read.
    """
    if path.is_dir():
        files = _acetree_dir_files(path)
        if not files:
            raise _no_nuclei(path, "nuclei/tNNN-nuclei")
        _one_file_per_time([(t, p.name) for t, p in files], path, "folder")
        sizes = [(p, p.stat().st_size) for _, p in files]
        for p, size in sizes:
            if size > NUCLEI_FILE_MAX:
                raise _too_big(p.name, size, NUCLEI_FILE_MAX, path)
        total = sum(size for _, size in sizes)
        if total > NUCLEI_TOTAL_MAX:
            raise _too_big(f"the folder's {len(files)} nuclei files", total, NUCLEI_TOTAL_MAX, path)
        out = []
        for t, p in files:
            with open(p, "rb") as fh:  # (bounded: a file may grow after stat)
                out.append((t, _read_bounded(fh, p.name, NUCLEI_FILE_MAX, path)))
        return out
    try:
        with zipfile.ZipFile(path) as zf:
            by_folder: dict[str, list[tuple[int, str]]] = {}
            infos: dict[str, zipfile.ZipInfo] = {}
            for info in zf.infolist():
                m = _NUCLEI_RE.search(info.filename)
                if m and not info.is_dir() and "__MACOSX" not in info.filename:
                    folder = info.filename.rsplit("/", 1)[0] if "/" in info.filename else ""
                    by_folder.setdefault(folder, []).append((int(m.group(1)), info.filename))
                    infos[info.filename] = info
            if not by_folder:
                listed = zf.namelist()
                if any(n.startswith("xl/") for n in listed):
                    raise DevolensError("an Excel workbook (.xlsx), not a table devolens reads: save it as CSV "
                                        "(File > Save As > CSV)", path=path)
                if "mimetype" in listed:
                    with zf.open("mimetype") as fh:
                        mimetype = fh.read(256)  # (a few bytes; bounded as any member of an unknown zip)
                    if b"opendocument.spreadsheet" in mimetype:
                        raise DevolensError("an OpenDocument spreadsheet (.ods), not a table devolens reads: save it "
                                            "as CSV (File > Save As > CSV)", path=path)
                raise DevolensError("zip holds no AceTree nuclei files (nuclei/tNNN-nuclei)", path=path)
            if len(by_folder) > 1:
                shown = ", ".join(f"{f or '(top level)'}/" for f in sorted(by_folder))
                if "nuclei" not in by_folder:
                    raise DevolensError(f"zip holds AceTree nuclei files in {len(by_folder)} folders ({shown}): "
                                        "keep one copy (AceTree reads nuclei/ at the top of the zip)", path=path)
                if notes is not None:
                    notes.append(f"the zip holds nuclei files in {len(by_folder)} folders ({shown}): read nuclei/, "
                                 "the one AceTree reads")
                by_folder = {"nuclei": by_folder["nuclei"]}
            members = sorted(next(iter(by_folder.values())))
            _one_file_per_time(members, path, "zip")
            for _, name in members:  # the sizes the zip declares, before anything is unpacked
                if infos[name].file_size > NUCLEI_FILE_MAX:
                    raise _too_big(f"zip member {name}", infos[name].file_size, NUCLEI_FILE_MAX, path)
            total = sum(infos[name].file_size for _, name in members)
            if total > NUCLEI_TOTAL_MAX:
                raise _too_big(f"the zip's {len(members)} nuclei files", total, NUCLEI_TOTAL_MAX, path)
            sources, total = [], 0
            for t, name in members:
                try:  # bounded reads: zipfile stops at the declared size, and the total is counted as read
                    with zf.open(infos[name]) as fh:
                        data = _read_bounded(fh, f"zip member {name}", NUCLEI_FILE_MAX, path)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:  # a damaged member (bad CRC...)
                    detail = " ".join(str(exc).split()) or type(exc).__name__
                    raise DevolensError(f"zip member {name} is damaged ({detail}): the zip is corrupt or incomplete "
                                        "(an interrupted copy?)", path=path) from None
                total += len(data)
                if total > NUCLEI_TOTAL_MAX:
                    raise _too_big(f"the zip's {len(members)} nuclei files", total, NUCLEI_TOTAL_MAX, path)
                sources.append((t, data))
            return sources
    except zipfile.BadZipFile as exc:
        raise DevolensError(f"not a valid zip file ({exc})", path=path) from None


def read_acetree(path: str | Path, embryo: str | None = None) -> pd.DataFrame:
    """Read AceTree nuclei files: a zip or folder holding ``nuclei/tNNN-nuclei``.

    Each file is one time point (``NNN``), one comma-separated line per nucleus:
    index, status, predecessor, successor1, successor2, x, y, z, diameter, name, ...
    Only rows with status 1 (valid nuclei) are kept; names are stripped of spaces.

    Parameters
    ----------
    path : str or Path
        The zip, the folder holding ``nuclei/``, the ``nuclei`` folder itself, or a single
        ``tNNN-nuclei`` file.
    embryo : str, optional
        Embryo name (default: the zip or folder name).

    Returns
    -------
    pandas.DataFrame
        The tidy table; x, y and size (diameter) in pixels, z in planes. No ellipse,
        z scale or timing is known (those attrs are None). ``attrs["missing_times"]``: the runs
        ``(first, last)`` of time points with no nuclei file between the first and the last (files
        lost when the series was copied or zipped; time points one per the series' step, as the note on
        them in ``attrs["notes"]`` says them), ``[]`` when none.
    """
    path = Path(path)
    if not path.exists():
        raise DevolensError("file not found", path=path)
    notes: list[str] = []
    if path.is_file() and not zipfile.is_zipfile(path) and not _starts_like_zip(path):
        m = _NUCLEI_RE.search(path.name)
        if m is None:
            raise DevolensError(
                "not a zip: a single AceTree nuclei file must be named tNNN-nuclei (NNN = time point)", path=path
            )
        with open(path, "rb") as fh:
            sources = [(int(m.group(1)), _read_bounded(fh, path.name, NUCLEI_FILE_MAX, path))]
        default_name = path.parent.parent.name if path.parent.name == "nuclei" else path.parent.name
    else:
        sources = _acetree_sources(path, notes)
        default_name = path.parent.name if path.name == "nuclei" else path.stem
    chunks, times, counts = [], [], []
    n_old = n_cp1252 = 0
    empty: list[int] = []  # time points whose nuclei file holds nothing
    for t, raw in sources:
        if b"\x00" in raw[:4096]:
            raise DevolensError(f"nuclei file t{t:03d} is binary", path=path)
        raw, recoded = _acetree_text(raw, t, path)
        n_cp1252 += recoded
        if b"\r" in raw:
            raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        text = raw.rstrip()  # blank lines inside stay: they parse to all-missing rows, dropped below
        if not text:
            empty.append(t)
            continue
        if not _has_comma_first_line(text):  # AceTree's rule: a first line without commas is the old layout
            text = _acetree_old_format(text, t, path)
            n_old += 1
        chunks.append(text)
        times.append(t)
        counts.append(text.count(b"\n") + 1)
    if not chunks:
        raise DevolensError("AceTree nuclei files are all empty", path=path)
    blob = b"\n".join(chunks)
    try:
        # only status, x, y, z, diameter, name are needed, and the index to tell a well-formed line (one whose
        # first fields are not separated by commas would shift the others); numbers tolerate the leading
        # spaces, names are stripped afterwards (faster than skipinitialspace)
        raw_df = pd.read_csv(
            io.BytesIO(blob), header=None, usecols=[0, 1, 5, 6, 7, 8, 9], names=range(_ACETREE_NCOLS),
            dtype={9: str}, index_col=False, skip_blank_lines=False, on_bad_lines="error", low_memory=False,
        )
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        msg = " ".join(str(exc).split())
        if "Too many columns specified" in msg:
            msg = (f"lines have fewer than {_ACETREE_NCOLS} fields (expected index, status, predecessor, "
                   "successor1, successor2, x, y, z, diameter, name, ...)")
        raise DevolensError(f"cannot parse AceTree nuclei files: {msg}", path=path) from None
    if len(raw_df) != sum(counts):  # should not happen: one row per line
        raise DevolensError("cannot parse AceTree nuclei files: inconsistent line count", path=path)
    counts_a = np.asarray(counts, dtype=np.int64)
    starts = np.cumsum(counts_a) - counts_a
    raw_df.columns = ["index", "status", "x", "y", "z", "size", "cell"]
    raw_df["time"] = np.repeat(np.asarray(times, dtype=np.int64), counts_a)
    # 1-based line number of every row inside its nuclei file, for error messages
    line_no = np.arange(len(raw_df), dtype=np.int64) - np.repeat(starts, counts_a) + 1
    blank = raw_df.iloc[:, :7].isna().all(axis=1).to_numpy()
    if blank.any():  # blank lines parse to all-missing rows
        raw_df = raw_df.loc[~blank].reset_index(drop=True)
        line_no = line_no[~blank]
    # index and status first (a line whose fields are not all separated by commas fails here), then coordinates
    # of the valid rows
    _numeric_acetree(raw_df, ["index", "status"], path, line_no)
    valid = raw_df["status"].to_numpy() > 0  # AceTree: status > 0 valid; 0 and -1 deleted or dead nuclei
    df = raw_df.loc[valid, ["time", "cell", "x", "y", "z", "size"]].reset_index(drop=True)
    _numeric_acetree(df, ["x", "y", "z", "size"], path, line_no[valid], finite=True)
    # a file whose every line is deleted or dead (status 0 or -1), or blank: its time point vanishes as an empty
    # file's does, so it is said alike
    no_valid = sorted(set(times) - set(np.unique(df["time"].to_numpy()).tolist()))
    if len(no_valid) == len(times):
        raise DevolensError("AceTree nuclei files hold no valid nucleus (every line's status is 0 or -1: deleted "
                            "or dead)", path=path)
    df["cell"] = _names(df["cell"])
    df.insert(0, "embryo", embryo or default_name)
    if n_cp1252:
        notes.append(f"{n_cp1252} nuclei file(s) are Windows-1252 (Latin-1) text, not UTF-8 (a cell name typed on "
                     "Windows?): read as such")
    if n_old:
        notes.append(f"{n_old} nuclei file(s) in AceTree's old space-separated layout (index x y z name size weight "
                     "status ...): read as such")
    file_times = [t for t, _ in sources]
    notes += _acetree_gaps(file_times, empty)
    if no_valid:
        many = len(no_valid) > 1
        notes.append(f"the nuclei file{'s' if many else ''} of time point{'s' if many else ''} "
                     f"{time_spans_text(no_valid)} hold{'' if many else 's'} no valid nucleus (every line's status is "
                     f"0 or -1: deleted or dead): the table skips {'them' if many else 'it'} (a damaged file, or "
                     "nuclei deleted in AceTree?)")
    meta: dict[str, Any] = {"missing_times": _missing_runs(file_times)}
    return _finish(df, "acetree", path, {**meta, "notes": notes} if notes else meta)


def _missing_runs(times: list[int]) -> list[tuple[int, int]]:
    """The runs ``(first, last)`` of the time points missing between the time points ``times`` of a series, those
    :func:`_gaps_note` says (one per the series' :func:`time_step`; none for time in irregular units, whose holes
    are no time points): as data, not read back from the note's words (``identify``'s note on a gap, and never a
    list of every time point: a stray file ``t100000000-nuclei`` leaves a hole of 10^8)."""
    step, irregular = time_unit(times)
    if irregular is not None:
        return []
    return _holes(_spans(times, step), step)


def _acetree_gaps(times: list[int], empty: list[int]) -> list[str]:
    """Notes on the time points missing inside an AceTree series (no ``tNNN-nuclei`` file between the first and the
    last) or with an empty file: the table skips them, and population curves and cliffs read across the hole; and on
    a regular step of the files' time points (:func:`_gaps_note`)."""
    return _gaps_note(times, empty, lacking="no nuclei file", cause="files lost when the series was copied or zipped?")


def _acetree_text(raw: bytes, t: int, path: Path) -> tuple[bytes, bool]:
    """The nuclei file ``raw`` of time point ``t`` as UTF-8, and whether it was recoded: a Windows-1252 (Latin-1)
    file, as a cell name typed on Windows leaves it (``ABé``), is read as such, as the CSV readers read Excel's
    Windows CSV (:data:`CP1252_NOTE`); other bytes that are not UTF-8 are refused, naming the file and the line."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if _is_cp1252(raw, True):
            return raw.decode("cp1252").encode("utf-8"), True
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DevolensError(f"nuclei file t{t:03d}, line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}): save "
                            "it as UTF-8", path=path) from None
    return raw, False


def _has_comma_first_line(text: bytes) -> bool:
    """Whether the first non-blank line holds a comma (looked at without copying the rest of the file)."""
    head = text.lstrip()  # the same object when there is nothing to strip
    end = head.find(b"\n")
    return b"," in head[: end if end >= 0 else len(head)]


def _acetree_old_format(text: bytes, t: int, path: Path) -> bytes:
    """A nuclei file of AceTree's old layout (space-separated ``index x y z identity size weight status
    spong1 spong2 piece1 piece2 pred succ1 succ2``) rewritten in the new comma-separated column order.
    As AceTree reads it, status >= 0 is a valid nucleus there (-1: deleted)."""
    out = []
    for i, line in enumerate(text.decode("utf-8", errors="replace").split("\n"), start=1):
        f = line.split()
        if not f:
            out.append("")
            continue
        if len(f) < 8:
            raise DevolensError(f"nuclei file t{t:03d}, line {i}: {len(f)} field(s) in AceTree's old space-separated "
                                "layout (expected index x y z name size weight status ...)", path=path)
        try:
            status = 1 if float(f[7]) >= 0 else 0
        except ValueError:
            raise DevolensError(f"nuclei file t{t:03d}, line {i}: status {f[7]!r} is not a number", path=path) from None
        out.append(f"{f[0]},{status},-1,-1,-1,{f[1]},{f[2]},{f[3]},{f[5]},{f[4]}")
    return "\n".join(out).encode()


def _numeric_acetree(df: pd.DataFrame, cols, path: Path, line_no: np.ndarray, *, finite: bool = False) -> None:
    """Like :func:`_numeric` (with ``finite``, also :func:`_check_finite`) but errors name the nuclei file and the
    line inside it."""
    try:
        _numeric(df, cols, path, line_offset=0)
        _check_no_missing(df, cols, path, line_offset=0)
        if finite:
            _check_finite(df, cols, path, line_offset=0)
    except DevolensError as exc:
        text = str(exc)
        lines = re.compile(r"\blines? ((?:\d+, )*\d+)")  # "line 7" or "lines 7, 9, 12": rows of df
        if lines.search(text) is None:
            raise

        def where(m: re.Match) -> str:
            return "; ".join(f"nuclei file t{int(df['time'].iloc[int(i)]):03d}, line {int(line_no[int(i)])}"
                             for i in m.group(1).split(", "))

        detail = text.split(": ", 1)[1] if ": " in text else text
        semicolon = re.search(r"'[^']*;[^']*'", detail) is not None  # a value such as '1;2'
        detail = lines.sub(where, detail).replace("column 'size'", "column 'diameter'")
        if semicolon:
            detail += "; AceTree separates a line's fields with commas"
        raise DevolensError(detail, path=path) from None


# ----------------------------------------------------------------------------- tidy
def _meta_path(path: Path) -> Path:
    return path.with_name(path.stem + ".meta.json")


def meta_sidecar(path: str | Path) -> Path:
    """The ``.meta.json`` read with the tidy table ``path``: the one beside it (:func:`_meta_path`) or, for a table
    reached through a symbolic link with none beside the link, the one beside the file the link leads to (named by
    its own name), as :func:`epic_companions` finds an EPIC table's (looked for beside the link only, the z scale
    and timing of a linked table were lost without a word); the path beside ``path`` when there is neither."""
    path = Path(path)
    beside = _meta_path(path)
    if beside.exists():
        return beside
    try:
        real = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return beside
    if real != path.absolute() and real.is_file() and _meta_path(real).exists():
        return _meta_path(real)
    return beside


#: Column names a positions table (:func:`read_positions`) may use, case-insensitive: tidy
#: name -> accepted names (devolens' own ``frame``, TrackMate's ``POSITION_X``, Mastodon's ``Spot frame`` and
#: ``Spot position`` over ``X``, ...).
POSITION_ALIASES: dict[str, tuple[str, ...]] = {
    "embryo": ("embryo",),
    "time": ("time", "t", "frame", "timepoint", "time_point", "spot frame"),
    "cell": ("cell", "name", "cell_name", "cellname", "cell name"),
    "x": ("x", "position_x", "pos_x", "spot position x"),
    "y": ("y", "position_y", "pos_y", "spot position y"),
    "z": ("z", "position_z", "pos_z", "spot position z"),
    "size": ("size", "diameter"),
}


#: A unit written into a column name: ``x_um``, ``X (µm)``, ``z [micron]``, ``x_px``.
_UNIT_IN_NAME = re.compile(r"^(.*?)[\s_]*[(\[]?\s*(µm|μm|um|microns?|micromet(?:er|re)s?|nm|mm|px|pixels?)\s*[)\]]?$",
                           re.IGNORECASE)
#: Radius columns (TrackMate's RADIUS, Mastodon's "Spot radius"): size is twice the radius.
_RADIUS_NAMES = ("radius", "spot radius")


def _unit_of(text) -> str | None:
    """The physical length unit a units-row cell (TrackMate's, Mastodon's) or a column name states, as the pixel
    sizes' one table of length units spells it (:func:`devolens.io.stacks.to_microns`: ``(micron)``, ``µm`` and
    ``micrometer`` -> ``µm``; ``nm``, ``mm``), else None (pixels, planes, a time, nothing)."""
    from devolens.io.stacks import MICRON_WORDS, _unit_key, to_microns

    t = _unit_key(str(text).strip().strip("()[]"))
    if not t or to_microns(1.0, t) is None:
        return None
    return "µm" if t in MICRON_WORDS else t


def _xyz_units(mapping: dict[str, str], row=None) -> dict[str, str | None]:
    """The physical unit of x, y and z (None: pixels, planes or not said): written into the column's name
    (``x_um``, ``X (µm)``), else in ``row``, the units row under the header by tidy name (TrackMate's
    ``(micron)``, Mastodon's ``µm``)."""
    units: dict[str, str | None] = {}
    for col, tidy in mapping.items():
        if tidy not in ("x", "y", "z"):
            continue
        m = _UNIT_IN_NAME.match(str(col).strip().lower())
        if m and m.group(1):
            units[tidy] = _unit_of(m.group(2))
        elif row is not None:
            units[tidy] = _unit_of(row[tidy])
    return units


def _lowered(columns: list) -> dict[str, str]:
    """Each column's name as the positions aliases match it (stripped, lower case; also without a unit written in:
    ``x_um`` -> ``x``) -> the column (the first one of each name)."""
    lower: dict[str, str] = {}
    for c in columns:
        key = str(c).strip().lower()
        lower.setdefault(key, c)
        m = _UNIT_IN_NAME.match(key)
        if m and m.group(1):
            lower.setdefault(m.group(1), c)
    return lower


def _position_columns(columns: list[str]) -> dict[str, str] | None:
    """File column -> tidy column for a positions table, or None without time, x, y and z.

    Names are matched case-insensitively, also with a unit written in (``x_um``, ``X (µm)``);
    a radius column (TrackMate's ``RADIUS``) maps to ``radius`` (size is twice it).
    """
    mapping = _position_mapping(columns)
    return mapping if {"time", "x", "y", "z"} <= set(mapping.values()) else None


def _position_mapping(columns: list[str]) -> dict[str, str]:
    """File column -> tidy column for the columns :func:`_position_columns` matches, whichever of time, x, y and z
    are missing (what a message names)."""
    lower = _lowered(columns)
    mapping: dict[str, str] = {}
    for tidy, names in POSITION_ALIASES.items():
        found = next((lower[n] for n in names if n in lower), None)
        if found is not None and found not in mapping:
            mapping[found] = tidy
    if "size" not in mapping.values():
        found = next((lower[n] for n in _RADIUS_NAMES if n in lower), None)
        if found is not None and found not in mapping:
            mapping[found] = "radius"
    return mapping


def _lineage_columns(columns: list[str]) -> dict[str, str] | None:
    """File column -> tidy column for a lineage table whose columns are named as a positions table's may be
    (:func:`_position_columns`: ``Cell,X,Y,Z,Time``, ``timepoint,cell_name,diameter``, ``frame,cellName``, as
    ``identify`` reads them), with a cell name column; else None."""
    mapping = _position_columns([str(c).strip() for c in columns])
    return mapping if mapping is not None and "cell" in mapping.values() else None


def _size_column(columns: list) -> dict[str, str]:
    """The column a table without ``size`` gives nucleus sizes in, as :func:`_position_columns` reads a positions
    table's (``diameter``, ``SIZE``, ``Diameter (px)``: -> ``size``; TrackMate's ``RADIUS`` -> ``radius``, size
    twice it), as ``{column: "size" or "radius"}``; empty when it names none (or holds ``size`` itself).
    Non-text column names are passed over."""
    names = [c for c in columns if isinstance(c, str)]
    if "size" in names:
        return {}
    lower = _lowered(names)
    for tidy, aliases in (("size", POSITION_ALIASES["size"]), ("radius", _RADIUS_NAMES)):
        found = next((lower[n] for n in aliases if n in lower), None)
        if found is not None:
            return {found: tidy}
    return {}


def _renamed_note(mapping: dict[str, str]) -> str | None:
    """The note on the columns a reader renamed (``mapping``: file column -> tidy column), None when none was; a
    radius column (read as size, twice it) is named even when it is called ``radius``."""
    moved = [(a, "size (twice the radius)" if b == "radius" else b) for a, b in mapping.items()
             if a != b or b == "radius"]
    if not moved:
        return None
    return (f"column{'s' if len(moved) > 1 else ''} {', '.join(a for a, _ in moved)} read as "
            f"{', '.join(b for _, b in moved)}")


def read_positions(path: str | Path) -> pd.DataFrame:
    """Nucleus positions over time, named or not: what identity prediction needs.

    Anything :func:`read_table` reads, or else a CSV of positions without cell names: one row
    per nucleus per time point with columns ``time`` (or ``t``, ``frame``), ``x``, ``y``,
    ``z`` (or ``POSITION_X``, ...: see ``POSITION_ALIASES``; case-insensitive), optionally
    ``embryo`` (default: the file name), ``size`` (or ``diameter``) and ``cell``; other
    columns are kept; up to 5 description rows under the header (TrackMate's spot tables: the column labels
    in words, then units; rows with no number in time, x, y and z and text in x, y and z) are skipped, while a row
    of numbers whose time is text (``t030``) is data, refused naming it. Such a table comes back as a tidy table
    with ``cell`` empty where unknown.

    Raises
    ------
    DevolensError
        Missing, unreadable or malformed input; a CSV that is neither a lineage table nor has
        time, x, y and z columns.

    Examples
    --------
    >>> df = read_positions("tracked_nuclei.csv")   # doctest: +SKIP
    >>> list(df.columns[:7])                        # doctest: +SKIP
    ['embryo', 'time', 'cell', 'x', 'y', 'z', 'size']
    """
    path = _table_path(path)
    head = _Head.read_or_none(path) if path.is_file() else None
    if head is not None and head.data[:2] == _GZIP_MAGIC:  # (L1.csv.gz: read decompressed)
        return _read_gzipped(read_positions, path)
    recoding = _recoded(head, path)
    if recoding:
        return _read_recoded(read_positions, path, recoding)
    try:  # (aliases=False: a positions CSV's columns, named or not, are read below as they always were)
        fmt, head = _detect(path, head, aliases=False)
    except UnrecognisedColumns as exc:
        if {"spot frame", "spot position"} <= {str(c).strip().lower() for c in exc.columns}:
            return _read_mastodon_csv(path, exc.columns)
        mapping = _position_columns(exc.columns)
        if mapping is None:
            raise UnrecognisedColumns(path, exc.columns, extra=", or positions with time (or frame),x,y,z",
                                      title=exc.title, required=("time", "x", "y", "z")) from None
        return _read_positions_csv(path, mapping)
    return _read_table(path, fmt, head)


def _read_positions_csv(path: Path, mapping: dict[str, str]) -> pd.DataFrame:
    _check_widths(path, ",")  # (a decimal comma in a row: its values would shift under the wrong columns)
    df = _read_csv(path, "a positions CSV", skipinitialspace=True)
    df.columns = [str(c).strip() for c in df.columns]
    mapping = {str(k).strip(): v for k, v in mapping.items()}
    df = df.rename(columns=mapping)
    lead = _description_rows(df)
    offset = 2
    units_row = None
    if lead:  # description rows under the header (TrackMate's spot tables: names, short names, units)
        units_row = df.iloc[lead - 1]  # the last one is TrackMate's units row: (micron), (pixel)
        df = df.iloc[lead:].reset_index(drop=True)
        offset += lead
    if len(df) == 0:
        rows = f"the header and {lead} description row{'s' if lead > 1 else ''} only" if lead else "header only"
        raise DevolensError(f"no data rows ({rows})", path=path)
    df = _finish_positions(df, path, _xyz_units(mapping, units_row), offset)
    renamed = _renamed_note(mapping) if "cell" in mapping.values() else None
    if renamed:  # a lineage table (read_table reads it as tidy: Time, Cell, Diameter) notes its renamed columns here
        df.attrs["notes"] = [renamed, *(df.attrs.get("notes") or [])]  # too (a TrackMate table's are its own)
    return df


#: description rows a positions CSV may hold under its header (TrackMate's spot tables hold 3)
MAX_DESCRIPTION_ROWS = 5


def _is_number(value) -> bool:
    """Whether a cell of a table read as it stands holds a number (``12``, ``1e3``, `` 4.5``; not ``t030``,
    ``(micron)`` nor an empty cell)."""
    return bool(pd.notna(pd.to_numeric(pd.Series([value], dtype=object), errors="coerce").iloc[0]))


def _description_rows(df: pd.DataFrame) -> int:
    """How many rows at the top of a positions table (columns named tidy) describe its columns rather than hold a
    nucleus: TrackMate's spot tables repeat the column labels in words and short names, then give units
    (``Frame,X,Y,Z``, then ``,(micron),(micron),(micron)``). Such a row holds no number in ``time`` (TrackMate's
    units row leaves it empty) and text in each of ``x``, ``y`` and ``z`` (a label or a unit); at most
    :data:`MAX_DESCRIPTION_ROWS` of them are counted (0 with more: the values are refused as they stand). A row of
    numbers whose time is text (``t030``, a frame's file name) is data, and gets that column's error."""
    lead = 0
    for _, row in df.head(MAX_DESCRIPTION_ROWS + 1).iterrows():
        words = all(isinstance(row[c], str) and row[c].strip() and not _is_number(row[c]) for c in ("x", "y", "z"))
        if not words or _is_number(row["time"]):
            break
        lead += 1
    return lead if lead <= MAX_DESCRIPTION_ROWS else 0


def _size_from_radius(df: pd.DataFrame, path: Path, offset: int) -> pd.DataFrame:
    """``df`` with ``size`` twice its ``radius`` column (TrackMate's RADIUS), when it has one and no size."""
    if "radius" in df.columns and "size" not in df.columns:
        _numeric(df, ["radius"], path, line_offset=offset)
        _check_finite(df, ["radius"], path, line_offset=offset)
        df["size"] = 2.0 * df["radius"]
        df = df.drop(columns="radius")
    return df


def _finish_positions(df: pd.DataFrame, path: Path, units: dict, offset: int) -> pd.DataFrame:
    """Type a positions table; size from a radius; x, y, z in one physical unit: z scale 1, with a note."""
    df = _size_from_radius(df, path, offset)
    _tidy_columns(df, path, line_offset=offset)
    return _finish(df, "positions", path, _units_meta(units))


#: What the note on mixed units of x, y and z advises (``identify`` takes --zscale).
UNITS_ADVICE = "give --zscale (z spacing in the unit of x and y) if that is wrong"


def _units_meta(units: dict, advice: str = UNITS_ADVICE) -> dict[str, Any]:
    """``zscale`` and a note from the physical units of x, y and z (:func:`_xyz_units`): x, y, z in one unit give z
    scale 1, z in another length its ratio; mixed or partial units a note only, ending in ``advice``. Empty without
    units."""
    meta: dict[str, Any] = {}
    found = [units.get(a) for a in ("x", "y", "z")]
    if any(found):
        if len(set(found)) == 1:
            meta["zscale"] = 1.0
            meta["notes"] = [f"x, y and z are in {found[0]} (the file says so): z is read in the unit of x and y "
                             "(z scale 1), not in planes"]
        elif found[0] == found[1] and all(found):  # z in another length (x, y in µm, z in nm): converted
            from devolens.io.stacks import to_microns

            meta["zscale"] = to_microns(1.0, found[2]) / to_microns(1.0, found[0])
            meta["notes"] = [f"x and y are in {found[0]}, z in {found[2]} (the file says so): z is read in the unit "
                             f"of x and y (z scale {meta['zscale']:g}), not in planes"]
        else:
            shown = ", ".join(f"{a} in {u or 'no stated unit'}" for a, u in zip("xyz", found))
            meta["notes"] = [f"the file gives {shown}: z is read as planes; {advice}"]
    return meta


def _read_mastodon_csv(path: Path, first: list[str]) -> pd.DataFrame:
    """A Mastodon spot table export: three header rows (feature, projection such as X/Y/Z, units), its columns
    named as one (``Spot position X``) and matched as any positions table's (:func:`_position_columns`)."""
    import csv

    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh)
        rows = [next(reader, []) for _ in range(3)]
    width = len(rows[0])
    rows = [r + [""] * (width - len(r)) for r in rows]
    cols: list[str] = []
    for i, (a, b) in enumerate(zip(rows[0], rows[1])):
        name = f"{a.strip()} {b.strip()}".strip()
        cols.append(name if name not in cols else f"{name}.{i}")
    mapping = _position_columns(cols)
    if mapping is None:
        raise UnrecognisedColumns(path, first, extra=", or a Mastodon spot table with Spot frame and Spot position "
                                  "X, Y, Z", required=("time", "x", "y", "z"))
    df = _read_csv(path, "a Mastodon spot table", header=None, skiprows=3, names=cols, skipinitialspace=True,
                   index_col=False)
    if len(df) == 0:
        raise DevolensError("no data rows (header only)", path=path)
    units_row = {mapping[c]: u for c, u in zip(cols, rows[2]) if c in mapping}
    return _finish_positions(df.rename(columns=mapping), path, _xyz_units(mapping, units_row), 4)


#: A column that may name each row's embryo but is not read as ``embryo`` (``embryo_id``, ``sample``, ``Series``,
#: ``specimen``): not taken as the embryo (a sample may be something else), only named where a time point holds more
#: nuclei than one embryo ever has (:func:`devolens.lineage.populations.crowded_note`).
_EMBRYO_LIKE = re.compile(
    r"^(?:embryo|embryos|sample|series|specimen|movie|dataset)[\s_.-]*(?:id|name|no|nr|number)?$", re.IGNORECASE)


def _unread_embryo(columns) -> dict[str, str]:
    """``{"unread_embryo_column": NAME}`` for a table without an ``embryo`` column (any capitalisation) that has a
    column that looks like one (:data:`_EMBRYO_LIKE`: ``embryo_id``, ``sample``), for the tidy table's ``attrs``;
    else empty."""
    names = [str(c).strip() for c in columns]
    if any(n.lower() == "embryo" for n in names):
        return {}
    found = next((n for n in names if _EMBRYO_LIKE.match(n)), None)
    return {"unread_embryo_column": found} if found else {}


def _tidy_columns(df: pd.DataFrame, path: Path, *, line_offset: int = 2) -> None:
    """Check and type a tidy or positions table in place: integer times; numeric ``x, y, z``
    (required), ``size`` (NaN when absent) and ``blot``; clean cell names ("" when absent);
    ``embryo`` defaulting to the file name. Errors name the file line."""
    _int_times(df, path, line_offset=line_offset)
    if "size" not in df.columns:
        df["size"] = np.nan
    num = ["x", "y", "z", "size"] + (["blot"] if "blot" in df.columns else [])
    _numeric(df, num, path, line_offset=line_offset)
    _check_no_missing(df, ["x", "y", "z"], path, line_offset=line_offset)
    _check_finite(df, ["x", "y", "z", "size"], path, line_offset=line_offset)
    df["cell"] = _names(df["cell"]) if "cell" in df.columns else ""
    if "embryo" in df.columns:
        df["embryo"] = df["embryo"].fillna(path.stem).astype(str)
    else:
        df.insert(0, "embryo", path.stem)


def read_tidy(path: str | Path) -> pd.DataFrame:
    """Read a tidy CSV (columns ``embryo,time,cell,x,y,z,size[,blot,...]``).

    ``embryo`` defaults to the file name and ``size`` to NaN when absent; extra columns are
    kept after the tidy ones. Metadata saved by :func:`write_tidy` in the sidecar
    ``<name>.meta.json`` is restored into ``attrs``.

    Parameters
    ----------
    path : str or Path
        The CSV file.

    Returns
    -------
    pandas.DataFrame
        The tidy table.
    """
    return _read_tidy(Path(path))


def _read_tidy(path: Path, head: _Head | None = None) -> pd.DataFrame:
    """:func:`read_tidy`; ``head``: the file's head, when already read."""
    if not path.exists():
        raise DevolensError("file not found", path=path)
    if path.is_dir():
        raise DevolensError("is a folder, not a tidy CSV", path=path)
    if head is None:
        head = _Head.read_or_none(path)
    recoding = _recoded(head, path)
    if recoding:
        return _read_recoded(read_tidy, path, recoding)
    _sniff_binary(path, head if head is not None else _Head.read(path))  # (cannot be read: open's error)
    above = _lines_before_header(path)  # blank lines read as rows, dropped below: labels give lines (_line)
    header = [str(c).strip() for c in _read_csv(path, "a tidy lineage CSV", nrows=0, skipinitialspace=True,
                                                 skiprows=above).columns]
    mapping = None
    missing = [c for c in TIDY_REQUIRED if c not in header]
    if missing:  # columns named as identify reads them (Cell,X,Y,Z,Time; timepoint,cell_name; frame,cellName)
        mapping = _lineage_columns(header)
        if mapping is None:
            raise DevolensError(f"not a tidy lineage table: missing columns {','.join(missing)}", path=path)
        twice = [f"{col} and {tidy}" for col, tidy in mapping.items() if col != tidy and tidy in header]
        if twice:  # (Time beside time: which one is meant is not for us to guess)
            raise DevolensError(f"columns {', '.join(twice)} name the same column: keep one of each", path=path)
    else:  # tidy but for the size: diameter, SIZE or RADIUS read as identify reads them, not left beside an empty
        sizes = _size_column(header) if "size" not in header else {}  # size column; Embryo, BLOT beside time,cell:
        cased = {}  # each column's capitalisation its own, as Time,Cell,Embryo's is (the first of each name)
        for c in header:
            if c.lower() in ("embryo", "blot") and c.lower() not in header and c.lower() not in cased.values():
                cased[c] = c.lower()
        if sizes or cased:
            mapping = {"cell": "cell", "embryo": "embryo", **sizes, **cased}  # (cell and embryo: read as text, below)
    text = [c for c, tidy in (mapping or {"cell": "cell", "embryo": "embryo"}).items() if tidy in ("cell", "embryo")]
    _check_widths(path, ",")  # (a decimal comma in a row: its values would shift under the wrong columns)
    df = _read_csv(path, "a tidy lineage CSV", dtype=dict.fromkeys(text, str), skipinitialspace=True,
                   skip_blank_lines=False, skiprows=above)
    df.columns = [str(c).strip() for c in df.columns]
    if mapping:
        df = df.rename(columns=mapping)
    df, empty = _drop_empty_rows(df, path, ",", line_offset=2 + above)
    if len(df) == 0:
        raise DevolensError("no data rows (header only)", path=path)
    units: dict[str, Any] = {}
    if mapping:  # as identify reads such columns: size from TrackMate's RADIUS, units in the names (x_um)
        df = _size_from_radius(df, path, 2 + above)
        units = _units_meta(_xyz_units(mapping), "give z in planes, or x, y and z in one unit, if that is wrong")
    _tidy_columns(df, path, line_offset=2 + above)
    notes = [n for n in [_renamed_note(mapping) if mapping else None, *units.get("notes", []), empty] if n]
    notes += _table_gaps(df)
    meta = _empty_meta()
    meta["zscale"] = units.get("zscale")
    meta.update(_unread_embryo([mapping.get(c, c) for c in header] if mapping else header))
    mp = meta_sidecar(path)
    if mp.exists():
        try:
            saved = json.loads(mp.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DevolensError(f"metadata sidecar is not valid JSON ({exc})", path=mp) from None
        if not isinstance(saved, dict):
            raise DevolensError("metadata sidecar must hold a JSON object", path=mp)
        for k in _META_KEYS:
            if k in saved:
                meta[k] = saved[k]
        if isinstance(meta.get("time_seconds"), dict):
            meta["time_seconds"] = {int(k): float(v) for k, v in meta["time_seconds"].items()}
        z = meta.get("zscale")
        # (no range: a positions table with z in nm and x in µm saves 0.001)
        if z is not None and (not checks.is_number(z) or not math.isfinite(z) or z <= 0):
            notes.append(f"the metadata sidecar {mp.name} gives zscale {z!r}, not a z plane spacing: z scale "
                         "unknown, estimated from the nuclei where needed")
            meta["zscale"] = None
        ell = meta.get("ellipse")
        if ell is not None and not _usable_ellipse(ell):  # (a hand-edited sidecar: one line, not a render's traceback)
            notes.append(f"the metadata sidecar {mp.name} gives ellipse {checks.shown(ell)}, not an embryo ellipse "
                         f"({', '.join(ELLIPSE_COLUMNS)}: finite numbers within ±{MAX_COORDINATE:,.0f}, axes above "
                         "0): taken as none, as for a table without one")
            meta["ellipse"] = None
        if saved.get("format"):
            meta["origin_format"] = saved["format"]
    if notes:
        meta["notes"] = notes
    return _finish(df, "tidy", path, meta)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_tidy(df: pd.DataFrame, path: str | Path, metadata: bool = True, record: dict | None = None) -> Path:
    """Write a tidy table to CSV atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy table (at least ``time, cell, x, y, z``; ``embryo`` and ``size`` are added
        when missing).
    path : str or Path
        Destination CSV.
    metadata : bool
        Also write ``df.attrs`` metadata (zscale, ellipse, time_seconds, seconds_per_time,
        axis, format) to ``<name>.meta.json`` beside the CSV when any of it is known;
        :func:`read_tidy` restores it.
    record : dict, optional
        More entries for the ``.meta.json`` after the metadata (what made the file: ``lineage convert`` and
        ``clean``); with it the sidecar is written even when no metadata is known, so that an earlier run's sidecar
        never stays beside the new CSV.

    Returns
    -------
    Path
        The CSV path.
    """
    path = Path(path)
    missing = [c for c in TIDY_REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"not a tidy table: missing columns {','.join(missing)}")
    out = df.copy()
    if "embryo" not in out.columns:
        out.insert(0, "embryo", path.stem)
    if "size" not in out.columns:
        out["size"] = np.nan
    cols = list(TIDY_COLUMNS) + [c for c in out.columns if c not in TIDY_COLUMNS]
    out = out[cols]
    meta = {k: df.attrs.get(k) for k in _META_KEYS}
    known = any(v is not None for v in meta.values())
    if metadata and (known or record is not None):
        meta["format"] = df.attrs.get("origin_format", df.attrs.get("format"))
        text = json.dumps(_jsonable({**meta, **(record or {})}), indent=1, ensure_ascii=False)
        from devolens.io.together import write_together

        # one unit: a stop or a failure (named by the file it hit) leaves both files of the earlier run or both new;
        # the sidecar, the table's record, last
        # (each through a link there to its file, as atomic_path writes; a file name's bytes that are not UTF-8, an
        # embryo named by its file, escaped: TEXT_ERRORS)
        write_together({output_file(path): lambda tmp: out.to_csv(tmp, index=False, errors=TEXT_ERRORS),
                        output_file(_meta_path(path)): lambda tmp: tmp.write_text(text, encoding="utf-8",
                                                                                  errors=TEXT_ERRORS)})
    else:
        with atomic_path(path) as tmp_csv:
            out.to_csv(tmp_csv, index=False, errors=TEXT_ERRORS)
    return path
