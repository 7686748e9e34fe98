"""Sulston cell names of the C. elegans embryo: parse, validate and walk the lineage.

A name is a *founder* (``P0``, ``AB``, ``P1``, ``EMS``, ``P2``, ``MS``, ``E``, ``C``, ``P3``,
``D``, ``P4``, ``Z2``, ``Z3``) followed by zero or more *division letters* (``a``/``p``
anterior/posterior, ``l``/``r`` left/right, ``d``/``v`` dorsal/ventral), one per division
after the founder was born, e.g. ``ABalp`` or ``MSpaa``.

The early, founder-level divisions produce founders rather than lettered daughters::

    P0 -> AB, P1      P1 -> EMS, P2      EMS -> MS, E
    P2 -> C, P3       P3 -> D, P4        P4 -> Z2, Z3

so ``P0``..``P4`` and ``EMS`` never carry division letters. ``AB``, ``MS``, ``E``, ``C`` and
``D`` divide by letters; the primordial germ cells ``Z2`` and ``Z3`` do not divide in the embryo
(:func:`daughters` gives them none; a lettered name under them still parses).

Names outside this scheme (``"Nuc123"``, ``"polar1"``, ``""``) are never an error: every
function returns ``None`` (or ``False``) for them and populations count them as unnamed.

Examples
--------
>>> population_letter("ABalp"), population_letter("EMS"), population_letter("Z2")
('A', 'E', 'Z')
>>> compact_name("ABalpp", 2), parent("ABa"), parent("MS"), daughters("P2")
('ABal', 'AB', 'EMS', ('C', 'P3'))
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterable, NamedTuple

import pandas as pd

from devolens.lineage.letters import LETTER_KEY, LETTER_KEY_LINE  # noqa: F401  (re-exported: what the letters count)

#: Population letters in their canonical column order.
LETTERS: tuple[str, ...] = ("A", "E", "M", "P", "C", "D", "Z")

#: Every founder name.
FOUNDERS: tuple[str, ...] = ("P0", "AB", "P1", "EMS", "P2", "MS", "E", "C", "P3", "D", "P4", "Z2", "Z3")

#: Founders that divide into two other founders (never carry division letters).
FOUNDER_DIVISIONS: dict[str, tuple[str, str]] = {
    "P0": ("AB", "P1"),
    "P1": ("EMS", "P2"),
    "EMS": ("MS", "E"),
    "P2": ("C", "P3"),
    "P3": ("D", "P4"),
    "P4": ("Z2", "Z3"),
}

#: Parent of each founder (``P0`` has none).
FOUNDER_PARENT: dict[str, str] = {d: p for p, pair in FOUNDER_DIVISIONS.items() for d in pair}

#: Founders whose descendants are named by division letters.
LETTERED_FOUNDERS: frozenset[str] = frozenset({"AB", "MS", "E", "C", "D", "Z2", "Z3"})

#: Founders that do not divide in the embryo (the primordial germ cells: their larval descendants are not named by
#: letters): :func:`daughters` gives them none.
UNDIVIDED_FOUNDERS: frozenset[str] = frozenset({"Z2", "Z3"})

#: Division letters and the axis each belongs to.
DIVISION_LETTERS: str = "aplrdv"
AXES: dict[str, tuple[str, str]] = {"ap": ("a", "p"), "lr": ("l", "r"), "dv": ("d", "v")}
_LETTER_AXIS = {letter: axis for axis, pair in AXES.items() for letter in pair}

_NAME_RE = re.compile(r"^(AB|MS|EMS|E|C|D|P[0-4]|Z[23])([aplrdv]*)$")


class SulstonName(NamedTuple):
    """A parsed Sulston name: the founder and the division letters after it."""

    founder: str
    divisions: str

    def __str__(self) -> str:
        return self.founder + self.divisions


def parse_name(name: str) -> SulstonName | None:
    """Parse a Sulston name into founder and division letters.

    Parameters
    ----------
    name : str
        A cell name. Surrounding white space is ignored.

    Returns
    -------
    SulstonName or None
        ``None`` when the name is outside the scheme (including ``P0``..``P4`` or ``EMS``
        followed by letters, which never occur).
    """
    if not isinstance(name, str):
        return None
    return _parse(name)


@lru_cache(maxsize=65536)
def _parse(name: str) -> SulstonName | None:
    m = _NAME_RE.match(name.strip())
    if m is None:
        return None
    founder, divisions = m.group(1), m.group(2)
    if divisions and founder not in LETTERED_FOUNDERS:
        return None
    return SulstonName(founder, divisions)


def is_valid_name(name: str) -> bool:
    """True when ``name`` is a Sulston name (see :func:`parse_name`)."""
    return parse_name(name) is not None


def founder(name: str) -> str | None:
    """The founder a cell descends from (``"ABalp"`` -> ``"AB"``), or ``None``."""
    p = parse_name(name)
    return None if p is None else p.founder


def population_letter(name: str) -> str | None:
    """Population letter of a cell: one of ``A E M P C D Z``.

    The first letter of the name: AB lineage -> ``A``, ``EMS`` and E lineage -> ``E``,
    MS lineage -> ``M``, ``P0``..``P4`` -> ``P``, C -> ``C``, D -> ``D``, ``Z2``/``Z3`` -> ``Z``.

    Parameters
    ----------
    name : str
        A cell name.

    Returns
    -------
    str or None
        ``None`` for names outside the Sulston scheme (counted as unnamed).
    """
    p = parse_name(name)
    return None if p is None else p.founder[0]


def misspelt_names(names: Iterable[str] | pd.Series) -> list[str]:
    """The distinct names outside the scheme that are Sulston names but for their case (``"ABpL"``, ``"msAp"``,
    ``"abal"``): :func:`parse_name` takes the founder in capitals and the divisions in small letters only. Other
    words (``Dead``, ``Cell``, ``Nuc012``, polar bodies) are not among them."""
    out = []
    for name in pd.unique(pd.Series(list(names), dtype=object).dropna().astype(str)):
        m = _LOOKS_SULSTON.match(name)
        if m and parse_name(name) is None:
            fixed = m.group(1).upper() + m.group(2).lower()
            if parse_name(fixed) is not None:
                out.append(name)
    return sorted(out)


_LOOKS_SULSTON = re.compile(_NAME_RE.pattern, re.IGNORECASE)


def population_letters(names: Iterable[str] | pd.Series) -> pd.Series:
    """Vectorised :func:`population_letter` (computed once per distinct name).

    Parameters
    ----------
    names : iterable of str or pandas.Series
        Cell names.

    Returns
    -------
    pandas.Series
        The letter of each name (``None``/NaN for unnamed), aligned with ``names``.
    """
    s = names if isinstance(names, pd.Series) else pd.Series(list(names), dtype=object)
    uniq = pd.unique(s.to_numpy(dtype=object))
    mapping = {n: population_letter(n) for n in uniq}
    return s.map(mapping)


def generation(name: str) -> int | None:
    """Number of divisions between the zygote ``P0`` and this cell (``P0`` = 0, ``ABa`` = 2)."""
    p = parse_name(name)
    if p is None:
        return None
    g, f = 0, p.founder
    while f in FOUNDER_PARENT:
        f = FOUNDER_PARENT[f]
        g += 1
    return g + len(p.divisions)


def compact_name(name: str, depth: int) -> str | None:
    """The founder plus the first ``depth`` division letters.

    Parameters
    ----------
    name : str
        A cell name.
    depth : int
        Number of division letters kept (``0`` = the founder alone). Must be >= 0.

    Returns
    -------
    str or None
        ``None`` for names outside the scheme.

    Examples
    --------
    >>> compact_name("ABalpp", 0), compact_name("ABalpp", 3), compact_name("P3", 2)
    ('AB', 'ABalp', 'P3')
    """
    if depth < 0:
        from devolens.errors import DevolensValueError

        raise DevolensValueError(f"depth must be >= 0, got {depth}")
    p = parse_name(name)
    if p is None:
        return None
    return p.founder + p.divisions[:depth]


def compact_names(names: Iterable[str] | pd.Series, depth: int) -> pd.Series:
    """Vectorised :func:`compact_name` (``None`` for unnamed cells)."""
    s = names if isinstance(names, pd.Series) else pd.Series(list(names), dtype=object)
    uniq = pd.unique(s.to_numpy(dtype=object))
    mapping = {n: compact_name(n, depth) for n in uniq}
    return s.map(mapping)


def parent(name: str) -> str | None:
    """The mother cell: drop the last division letter, or the founder's parent.

    ``"ABal"`` -> ``"ABa"``, ``"AB"`` -> ``"P0"``, ``"MS"`` -> ``"EMS"``, ``"P0"`` -> ``None``;
    ``None`` as well for names outside the scheme.
    """
    p = parse_name(name)
    if p is None:
        return None
    if p.divisions:
        return p.founder + p.divisions[:-1]
    return FOUNDER_PARENT.get(p.founder)


#: Divisions whose axis the nomenclature fixes as other than anterior-posterior, built in (Sulston et al. 1983):
#: ABa and ABp divide left-right (ABal, ABar, ABpl, ABpr), and so do Ea and Ep (Eal, Ear, Epl, Epr).
_BUILTIN_AXES: dict[str, str] = {"ABa": "lr", "ABp": "lr", "Ea": "lr", "Ep": "lr"}


def canonical_axes() -> dict[str, str]:
    """Mother -> axis (``"lr"`` or ``"dv"``) of the divisions known not to be anterior-posterior.

    The built-in early ones (``ABa``, ``ABp``, ``Ea``, ``Ep``: left-right) and the letters the real
    EPIC tables give each mother's daughters (``division_letters`` of the shipped
    ``simulator_params.json``, fitted by :func:`devolens.lineage.fit.fit_simulator_params`).
    Every other division is anterior-posterior. A copy; changing it changes nothing.
    """
    return dict(_canonical_axes())


@lru_cache(maxsize=1)
def _canonical_axes() -> dict[str, str]:
    from devolens.lineage.simulate import _shipped_params  # (here: simulate imports this module)

    axes = dict(_BUILTIN_AXES)
    fitted = _shipped_params().get("division_letters")
    if isinstance(fitted, dict):
        axes.update({m: a for m, a in fitted.items() if isinstance(m, str) and a in AXES and a != "ap"})
    return axes


def daughters(name: str, axis: str | None = None) -> tuple[str, str] | None:
    """The two daughters of a cell.

    Parameters
    ----------
    name : str
        A cell name.
    axis : {"ap", "lr", "dv"}, optional
        Division axis for lettered cells: ``"ap"`` gives ``name+"a", name+"p"``, ``"lr"``
        gives ``l``/``r``, ``"dv"`` gives ``d``/``v``. By default the cell's canonical axis
        (:func:`canonical_axes`: ``ABa`` -> ``ABal, ABar``; anterior-posterior where no other
        is known). Ignored for ``P0``..``P4`` and ``EMS``, whose daughters are the known
        founder pairs (``P1`` -> ``("EMS", "P2")``).

    Returns
    -------
    tuple of str or None
        ``None`` for names outside the scheme, and for ``Z2``, ``Z3`` and any name under them
        (:data:`UNDIVIDED_FOUNDERS`): the primordial germ cells do not divide in the embryo, and
        their larval descendants are not named ``Z2a``, ``Z2p`` (as the simulator's
        :func:`devolens.lineage.simulate.daughters`, which ends them there).

    Examples
    --------
    >>> daughters("ABa"), daughters("ABa", "ap"), daughters("MS"), daughters("P1"), daughters("Z2")
    (('ABal', 'ABar'), ('ABaa', 'ABap'), ('MSa', 'MSp'), ('EMS', 'P2'), None)
    """
    if axis is not None and axis not in AXES:
        raise ValueError(f"axis must be one of {sorted(AXES)}, got {axis!r}")
    p = parse_name(name)
    if p is None or p.founder in UNDIVIDED_FOUNDERS:
        return None
    if p.founder in FOUNDER_DIVISIONS:  # P0..P4, EMS: no letters by construction
        return FOUNDER_DIVISIONS[p.founder]
    base = str(p)
    a, b = AXES[axis if axis is not None else _canonical_axes().get(base, "ap")]
    return base + a, base + b


def division_axis(name: str) -> str | None:
    """Axis (``"ap"``, ``"lr"``, ``"dv"``) of the division that produced ``name``.

    ``None`` for founders and names outside the scheme.
    """
    p = parse_name(name)
    if p is None or not p.divisions:
        return None
    return _LETTER_AXIS[p.divisions[-1]]


def ancestors(name: str) -> list[str]:
    """All ancestors of a cell, nearest first, ending with ``P0`` (empty if unnamed)."""
    out: list[str] = []
    cur = parent(name)
    while cur is not None:
        out.append(cur)
        cur = parent(cur)
    return out


def is_ancestor(ancestor: str, descendant: str, include_self: bool = False) -> bool:
    """True when ``ancestor`` lies on the lineage path from ``P0`` to ``descendant``.

    Parameters
    ----------
    ancestor, descendant : str
        Cell names (names outside the scheme give ``False``).
    include_self : bool
        Count a cell as its own ancestor.
    """
    a, d = parse_name(ancestor), parse_name(descendant)
    if a is None or d is None:
        return False
    if str(a) == str(d):
        return include_self
    if a.founder == d.founder:
        return d.divisions.startswith(a.divisions)
    if a.divisions:  # a lettered cell cannot be the ancestor of another founder's cell
        return False
    return a.founder in ancestors(d.founder)
