"""Per-lineage populations: how many cells of each founder lineage exist at each time point.

The population letter of a cell is the first letter of its Sulston name (see
:func:`devolens.lineage.names.population_letter`): ``A`` (AB), ``E`` (EMS and E),
``M`` (MS), ``P`` (P0..P4), ``C``, ``D``, ``Z`` (Z2, Z3). ``total`` counts every row of the
time point, unnamed cells included, so ``total >= A+E+M+P+C+D+Z``; polar bodies (``polar1``,
``polar2``) are no cells and are not counted. A cell is unnamed when its name is no Sulston name: empty,
missing, or a placeholder such as AceTree's and EPIC's ``Nuc123`` (the cells ``total`` counts beyond the
letters, as :func:`devolens.lineage.cliffs.detect_names_stop` counts them), except names that are Sulston
names but for their case (``ABpL``), which get a note of their own (:func:`miscased_note`). Exact copies of a
row (a table saved twice) are counted once, as ``devolens lineage populations`` does (see :func:`drop_copies`).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd

from devolens import checks
from devolens.errors import DevolensError, DevolensWarning
from devolens.lineage.names import LETTERS, misspelt_names, population_letter

#: Columns of the populations table, in order.
POPULATION_COLUMNS: tuple[str, ...] = ("time",) + LETTERS + ("total",)


class CopiedRowsWarning(DevolensWarning):
    """A table repeats some rows exactly (a table saved or concatenated twice); the copies were dropped. The CLI
    drops them itself, before, and prints :func:`copies_note` instead."""


def copies_note(n: int) -> str:
    """The one-line note on ``n`` dropped exact copies, the same in every command and in the library's warning."""
    return f"dropped {n} row(s) that repeat an earlier row exactly (same cell, time point and position)"


def unnamed_note(n: int, rows: int) -> str:
    """The one-line note on ``n`` of ``rows`` rows without a cell name (counted in ``total`` only), the same in
    :func:`populations`' ``attrs["notes"]`` and in the commands (``lineage populations``, ``lineage cliffs``)."""
    if n >= rows:
        return (f"no row has a Sulston cell name ({rows} row{'s' if rows != 1 else ''}; {WHAT_UNNAMED}): counted in "
                "total only, every lineage column is 0 (and no lineage cliff can be found)")
    share = 100.0 * n / rows
    pct = f"{share:.0f} %" if share >= 1 else "under 1 %"
    return (f"{n} row{'s' if n != 1 else ''} ({pct}) {'have' if n != 1 else 'has'} no Sulston cell name "
            f"({WHAT_UNNAMED}): counted in total only")


#: cells the C. elegans embryo's lineage ever makes: 558 at hatching and 113 that die on the way (Sulston et al.
#: 1983). No time point of one embryo holds more nuclei; the most in the shared real tables: 585 (the AceTree embryo,
#: late), 345-403 (the EPIC ones, cut at 140-179 time points)
EMBRYO_CELLS = 671


def crowded_note(count: int, time, more: int = 0, who: str = "the table", column: str | None = None) -> str:
    """The one-line note on a time point (``time``) of ``count`` cells or nuclei, more than one embryo ever holds
    (:data:`EMBRYO_CELLS`), and ``more`` other such time points; ``who``: what holds them (``the table``, ``embryo
    NAME``); ``column``: the table's column that looks like an embryo column but was not read as one (``embryo_id``,
    ``sample``: the readers' ``attrs["unread_embryo_column"]``), named with what to do. The same in
    :func:`populations`' ``attrs["notes"]`` (``lineage populations``) and in ``identify``."""
    also = f" (and {more} more time point{'s' if more != 1 else ''} over it)" if more else ""
    several = ("without an embryo column to tell them apart" if column is None else
               f"(its column '{column}' was not read as the embryo: rename it to embryo)")
    return (f"{who} holds {count} nuclei at time {time}{also}, more than the {EMBRYO_CELLS} cells a C. elegans "
            f"embryo's lineage ever makes (558 at hatching, 113 that die on the way): several embryos in one table "
            f"{several}, or many rows that are no nuclei? They are not one embryo's nuclei")


#: what a row without a Sulston cell name holds (:func:`unnamed_rows`): "no cell name" alone read as if the rows had
#: empty names where they hold placeholders (AceTree's and EPIC's ``Nuc123``) or other labels
WHAT_UNNAMED = "an empty cell or another label, such as a placeholder Nuc123"


def unnamed_rows(df: pd.DataFrame) -> int:
    """Rows of a tidy table without a cell name, counted in ``total`` only: an empty or missing ``cell``, or a
    name that is no Sulston name (a placeholder such as ``Nuc123``, as AceTree and EPIC name the nuclei not
    curated; the rows :func:`populations` counts in ``total`` but in no letter, as
    :func:`devolens.lineage.cliffs.detect_names_stop` counts unnamed cells). Polar bodies (not counted at all) and
    names that are Sulston names but for their case (:func:`miscased_note` says those) are not among them."""
    return _Names(df["cell"]).unnamed


#: A name begun as a Sulston name (a founder, then a Sulston letter) but none: ``ABalxp``, a mistyped letter.
_MISTYPED = re.compile(r"^(AB|MS|EMS|E|C|D|P[0-4]|Z[23])[aplrdv][A-Za-z0-9]*$")


def invalid_names_note(df: pd.DataFrame) -> str | None:
    """The one-line note on the rows whose names begin as Sulston names but are none (``ABalxp``: a mistyped
    letter), up to 3 of them with their time points, counted in ``total`` only (apart from the rows
    :func:`unnamed_note` says: empty or placeholder names); None when there are none. The same in
    :func:`populations`' ``attrs["notes"]`` and in ``lineage cliffs``."""
    return _Names(df["cell"]).invalid_note(df)


def miscased_note(cells: pd.Series) -> str | None:
    """The one-line note on the rows whose names are Sulston names but for their case (``ABpL``, ``abal``:
    :func:`devolens.lineage.names.misspelt_names`), counted in ``total`` only; None when there are none. The same
    in :func:`populations`' ``attrs["notes"]`` and in ``lineage populations``."""
    return _Names(cells).miscased_note()


class _Names:
    """What the names of a table's rows (``cells``) are, one look per distinct name: ``letters``, each row's
    population letter as its index in :data:`LETTERS` (``len(LETTERS)``: none); ``polar``, whether it is a polar
    body (no cell: not counted); ``miscased``, the distinct names that are Sulston names but for their case; and
    ``unnamed``, the rows counted in the total but in no letter, the miscased ones left out (noted on their own)."""

    def __init__(self, cells: pd.Series):
        codes, uniq = pd.factorize(cells, use_na_sentinel=True)
        index = {letter: i for i, letter in enumerate(LETTERS)}
        uniq_letter = np.array([index.get(population_letter(n), len(LETTERS)) for n in uniq] + [len(LETTERS)],
                               dtype=np.int64)
        uniq_polar = np.array([is_polar_body(n) for n in uniq] + [False], dtype=bool)
        self.letters, self.polar = uniq_letter[codes], uniq_polar[codes]  # code -1 (missing name): the trailing one
        none = uniq_letter == len(LETTERS)
        none[:-1] &= ~uniq_polar[:-1]
        self.miscased = misspelt_names(uniq[none[:-1]])  # (a name with a letter is spelt right)
        self._rows = 0  # the rows of miscased names
        if self.miscased:
            mis = pd.Index(uniq).isin(self.miscased)
            none[:-1] &= ~mis
            self._rows = int(mis[codes[codes >= 0]].sum())
        # names begun as Sulston names that are none (ABalxp: a mistyped letter), said apart from the unnamed rows
        bad = none[:-1] & np.array([isinstance(n, str) and _MISTYPED.match(n) is not None for n in uniq], dtype=bool)
        self.invalid = [str(n) for n in uniq[bad]]
        self.invalid_rows = np.zeros(len(codes), dtype=bool)
        if self.invalid:
            none[:-1] &= ~bad
            self.invalid_rows = (codes >= 0) & np.r_[bad, False][codes]
        self.unnamed = int(none[codes].sum())

    def invalid_note(self, df: pd.DataFrame) -> str | None:
        """:func:`invalid_names_note` of ``df``, whose ``cell`` column these are the names of."""
        if not self.invalid:
            return None
        rows = df.loc[self.invalid_rows, ["cell", "time"]].drop_duplicates()
        shown = [f"'{c}' at time {t}" for c, t in zip(rows["cell"].head(3), rows["time"].head(3))]
        n = int(self.invalid_rows.sum())
        more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
        return (f"{n} row{'s' if n != 1 else ''} carr{'y' if n != 1 else 'ies'} a name that is no Sulston name "
                f"({', '.join(shown)}{more}; a mistyped name?): counted in total only, in no lineage; correct the "
                "name to count it in its lineage")

    def miscased_note(self) -> str | None:
        """:func:`miscased_note` of these names."""
        if not self.miscased:
            return None
        rows, bad = self._rows, self.miscased
        what = ("1 row carries a name that is a Sulston name but for its case (" if rows == 1 else
                f"{rows} rows carry names that are Sulston names but for their case (e.g. ")
        return (f"{what}{', '.join(repr(b) for b in bad[:3])}; the founder in capitals, a/p, l/r, d/v in small "
                "letters): counted in the total only, not in a population letter")


def drop_copies(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop exact copies of rows (:func:`devolens.io.tables.drop_exact_copies`), as the CLI does on reading.

    Only a table with positions (``x`` and ``y``) can tell a copy from another nucleus: without them two
    unnamed rows of one time point look alike, so such a table is returned as it is.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy lineage table.

    Returns
    -------
    (pandas.DataFrame, int)
        The table without copies (the same object when there are none; ``attrs`` kept) and the number of
        rows dropped.
    """
    if len(df) < 2 or not {"x", "y"} <= set(df.columns):
        return df, 0
    from devolens.io.tables import drop_exact_copies

    return drop_exact_copies(df)  # (not drop_duplicate_rows: its count of repeated names is not wanted here)


def populations(df: pd.DataFrame) -> pd.DataFrame:
    """Count the cells of each population letter at each time point.

    Parameters
    ----------
    df : pandas.DataFrame
        A tidy lineage table of one embryo (columns ``time`` and ``cell`` at least).

    Returns
    -------
    pandas.DataFrame
        One row per time point present in ``df`` (ascending), columns exactly
        ``time,A,E,M,P,C,D,Z,total`` (all int64; counts in cells). When ``df`` repeats rows exactly
        (same time point, name and position: a table saved twice), each is counted once, a
        :class:`CopiedRowsWarning` is issued and ``attrs["notes"]`` says how many were dropped.
        ``attrs["unnamed_rows"]``: the rows counted without a cell name (in ``total`` only: an empty name, or one
        that is no Sulston name, such as AceTree's and EPIC's placeholder ``Nuc123``; see :func:`unnamed_rows`);
        when there are any, ``attrs["notes"]`` says so (:func:`unnamed_note`): a table of such names has lineage
        columns of 0. Rows whose names are Sulston names but for their case (``ABpL``) are counted in ``total``
        only too, with a note of their own (:func:`miscased_note`), as ``devolens lineage populations`` says them.
        A time point of more cells than an embryo ever holds (:data:`EMBRYO_CELLS`: several embryos in one table?)
        is noted too (:func:`crowded_note`).

    Raises
    ------
    DevolensError
        When the table holds several embryos (count them one at a time).

    Examples
    --------
    >>> t = pd.DataFrame({"time": [1, 1, 1, 2], "cell": ["ABa", "ABp", "Nuc1", "EMS"]})
    >>> populations(t)[["time", "A", "E", "total"]].to_dict("list")
    {'time': [1, 2], 'A': [2, 0], 'E': [0, 1], 'total': [3, 1]}
    """
    checks.dataframe(df, ("time", "cell"))
    if "embryo" in df.columns and df["embryo"].nunique(dropna=False) > 1:
        names = ", ".join(map(str, df["embryo"].unique()[:5]))
        raise DevolensError(f"table holds {df['embryo'].nunique(dropna=False)} embryos ({names}); count one embryo "
                            "at a time")
    if len(df) == 0:
        out = pd.DataFrame({c: pd.Series([], dtype=np.int64) for c in POPULATION_COLUMNS})
        out.attrs["unnamed_rows"] = 0
        return out
    df, n_copies = drop_copies(df)
    out, names = _count(df)
    notes = []
    if n_copies:  # the CLI drops them on reading, with this note: the library counts alike and says so
        notes.append(copies_note(n_copies))
        warnings.warn(copies_note(n_copies), CopiedRowsWarning, stacklevel=2)
    if out.attrs["unnamed_rows"]:  # else the lineage columns fall to 0 beside a total that goes on, without a word
        notes.append(unnamed_note(out.attrs["unnamed_rows"], len(df)))
    if names.invalid:  # ('ABalxp': said apart from the rows without a name)
        notes.append(names.invalid_note(df))
    miscased = names.miscased_note()
    if miscased:  # ('ABpL': in no letter either, a letter's curve would dip without a word)
        notes.append(miscased)
    over = out["total"].to_numpy() > EMBRYO_CELLS
    if over.any():  # (a merged table of many embryos: every count is theirs together)
        top = int(np.argmax(out["total"].to_numpy()))
        notes.append(crowded_note(int(out["total"].iloc[top]), int(out["time"].iloc[top]), int(over.sum()) - 1,
                                  column=df.attrs.get("unread_embryo_column")))
    if notes:
        out.attrs["notes"] = notes
    return out


def _count(df: pd.DataFrame) -> "tuple[pd.DataFrame, _Names]":
    """:func:`populations` of a table of one embryo with rows, as it is, and what its names are."""
    # a missing or fractional time would be counted at a wrong time point, silently
    times = checks.whole_times(df["time"], path=df.attrs.get("source"))
    uniq_t, t_idx = np.unique(times, return_inverse=True)
    # one letter lookup per distinct name, then integer codes for every row
    names = _Names(df["cell"])
    l_idx = names.letters
    # polar bodies (AceTree's polar1, polar2) are tracked like nuclei but are no cells of the embryo
    cell = ~names.polar
    counts = np.zeros((len(uniq_t), len(LETTERS) + 1), dtype=np.int64)
    np.add.at(counts, (t_idx[cell], l_idx[cell]), 1)
    out = pd.DataFrame(counts[:, : len(LETTERS)], columns=list(LETTERS))
    out.insert(0, "time", uniq_t.astype(np.int64))
    out["total"] = counts.sum(axis=1)
    out = out[list(POPULATION_COLUMNS)]
    out.attrs["unnamed_rows"] = names.unnamed
    return out, names


_POLAR_RE = re.compile(r"^polar[ _-]?(body)?[ _-]?\d*$", re.IGNORECASE)


def is_polar_body(name) -> bool:
    """True for a polar body's name: ``polar1``, ``polar2``, ``Polar``, ``polar_body_1`` (AceTree and
    StarryNite name the two polar bodies so); populations leave them out of every count."""
    return isinstance(name, str) and bool(_POLAR_RE.match(name.strip()))
