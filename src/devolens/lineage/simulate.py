"""A digital C. elegans embryo: Sulston lineage, cell-cycle timing, nuclear positions.

:func:`simulate_embryo` grows an embryo from the zygote P0 (or from the 4-cell stage ABa,
ABp, EMS, P2) and returns a tidy lineage table with the same conventions as the real EPIC
tables (see :mod:`devolens.io.tables`): one row per nucleus per time point, columns
``embryo, time, cell, x, y, z, size``; ``x``, ``y`` and ``size`` in image pixels, ``z`` in
planes, about 90 s per time point.

The model
---------
* **Lineage.** Real Sulston names and division order: P0 -> AB, P1; AB -> ABa, ABp;
  P1 -> EMS, P2; EMS -> MS, E; P2 -> C, P3; P3 -> D, P4; P4 -> Z2, Z3 (which do not divide
  again during embryogenesis). Every other cell divides into ``name + x`` for a pair of
  letters ``x`` (``ap``, ``lr`` or ``dv``) learnt from the real tables (default ``ap``).
* **Timing.** Each cell's life (time points from birth to division) is drawn from the
  fitted value for its name (median over the real embryos) or, for names the real embryos
  never completed, from its lineage and generation (``AB:5``, ``MS:3``, ...), extrapolated
  for generations beyond the data. An embryo-wide tempo factor (temperature, strain), a
  log-normal factor shared by the cells of one lineage generation (so that division waves
  stay synchronous, as in real embryos) and a small per-cell jitter give the variation.
* **Apoptoses.** Cells that were seen to vanish in the real embryos die with the fitted
  probability after a life of the fitted length.
* **Positions.** A body frame (anterior-posterior along the major axis of the egg,
  dorsal-ventral along the image minor axis, left-right along z). Daughters are placed
  along the division axis the Sulston letters name (``a`` anterior, ``d`` dorsal, ``l``
  left, ...), with angular noise. Each time point the nuclei take a random step and a
  smooth random shear (coherent tissue motion), drift towards the mean depth of their
  population at that stage (gastrulation: E, then MS, D and Z2/Z3 move inside; AB and C
  stay near the surface), and a few iterations of soft-sphere repulsion (scipy
  ``cKDTree`` neighbour pairs, vectorised) and confinement inside the ellipsoidal eggshell
  settle them. The cell diameter follows the volume available per cell, so the embryo
  compacts as cells multiply. Steps, iterations and flow are calibrated so that
  nearest-neighbour distances and steps between time points match the real embryos.
* **Geometry.** Eggshell axes, centre and z centre are drawn from the real embryos'
  AuxInfo ellipses; the orientation angle is uniform; anterior/dorsal/left sides are
  flipped at random.
* **Nuclear size.** The measured median diameter against cell count (else the fitted
  power law ``s0 * n_cells ** -alpha``) with per-cell and per-time log-normal jitter.

Parameters come from ``simulator_params.json`` (fitted by
:func:`devolens.lineage.fit.fit_simulator_params`, script ``benchmarks/fit_simulator.py``),
shipped in the package; pass ``params`` to override any part. Three independent random
streams (timing, eggshell, space) are spawned from the seed, so a seed's lineage timing
does not change when the physics parameters do.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from devolens import checks
from devolens.errors import DevolensError
from devolens.lineage.names import daughters as _canonical_daughters, is_valid_name, parent

PARAMS_PATH = Path(__file__).with_name("simulator_params.json")
#: cells of a C. elegans embryo at hatching (the simulator's cells, but Z2 and Z3, keep dividing past it)
HATCHING_CELLS = 558
#: the largest embryo asked for (the simulator keeps dividing past hatching, ~2300 cells by time point 400, and a
#: request for millions would run for hours)
MAX_CELLS = 2000
#: the most time points asked for (~15 h at 90 s; real movies: ~180 EPIC, 360 AceTree time points)
MAX_TIMES = 600
#: an embryo past this many cells has parameters (one's own) that divide far faster than a C. elegans embryo: the
#: fitted ones stay well below it within ``MAX_TIMES`` (seeds 0-7: 4,800-10,000 cells at time point 600)
RUNAWAY_CELLS = 20_000

#: Divisions whose daughters get new founder names.
FOUNDER_DIVISIONS: dict[str, tuple[str, str]] = {
    "P0": ("AB", "P1"),
    "AB": ("ABa", "ABp"),
    "P1": ("EMS", "P2"),
    "EMS": ("MS", "E"),
    "P2": ("C", "P3"),
    "P3": ("D", "P4"),
    "P4": ("Z2", "Z3"),
}
#: Cells that do not divide during embryogenesis.
TERMINAL = frozenset({"Z2", "Z3"})
#: Lineages whose descendants are named founder + letters.
SUBLINEAGE_FOUNDERS = ("AB", "MS", "E", "C", "D")

# Body-frame direction of each division letter (u: anterior, v: dorsal, w: left).
_LETTER_DIR = {
    "a": (1.0, 0.0, 0.0),
    "p": (-1.0, 0.0, 0.0),
    "d": (0.0, 1.0, 0.0),
    "v": (0.0, -1.0, 0.0),
    "l": (0.0, 0.0, 1.0),
    "r": (0.0, 0.0, -1.0),
}
# Direction of the first daughter of each founder division (second gets the opposite).
_FOUNDER_DIR = {
    "P0": (1.0, 0.0, 0.0),  # AB anterior, P1 posterior
    "AB": (1.0, 0.0, 0.0),  # ABa anterior, ABp posterior (then pushed dorsal)
    "P1": (0.6, -0.8, 0.0),  # EMS antero-ventral, P2 posterior
    "EMS": (1.0, 0.0, 0.0),  # MS anterior, E posterior
    "P2": (0.4, 0.9, 0.0),  # C dorsal, P3 ventral-posterior
    "P3": (0.6, 0.8, 0.0),  # D anterior-dorsal, P4 posterior
    "P4": (0.0, 0.0, 1.0),  # Z2 left, Z3 right
}
# 4-cell stage positions as fractions of the inner semi-axes (u, v, w).
_FOUR_CELL = {
    "ABa": (0.50, 0.05, 0.0),
    "ABp": (0.0, 0.45, 0.0),
    "EMS": (0.0, -0.45, 0.0),
    "P2": (-0.55, 0.0, 0.0),
}

def is_sulston_name(name: str) -> bool:
    """Whether ``name`` is a valid Sulston name (see :func:`devolens.lineage.names.is_valid_name`)."""
    return is_valid_name(name)


def parent_name(name: str) -> str | None:
    """The mother cell of ``name`` (see :func:`devolens.lineage.names.parent`)."""
    return parent(name)


def lineage_group(name: str) -> str:
    """Cell-cycle group of a cell: ``'AB:3'`` (lineage and generation) or the cell's own name.

    Generation counts divisions since the founder (``AB`` is ``AB:0``, ``ABal`` is ``AB:2``).
    P0..P4, EMS, Z2 and Z3 are groups of their own.
    """
    if name in FOUNDER_DIVISIONS or name in TERMINAL:
        if name != "AB":
            return name
    for f in ("AB", "MS", "C", "D", "E"):
        if name.startswith(f) and not name.startswith("EMS"):
            return f"{f}:{len(name) - len(f)}"
    return name


def daughters(name: str, letters: dict[str, str] | None = None) -> tuple[str, str] | None:
    """The two daughters of ``name`` (``None`` for Z2/Z3).

    ``letters`` maps a mother to its pair of division letters (``'lr'``: the parameters' ``division_letters``);
    a mother it does not name divides along its canonical axis, as :func:`devolens.lineage.names.daughters`
    names the daughters (``ABa``, ``ABp``, ``Ea``, ``Ep`` left-right, the shipped fitted letters, else
    anterior-posterior).
    """
    if name in TERMINAL:
        return None
    if name in FOUNDER_DIVISIONS:
        return FOUNDER_DIVISIONS[name]
    pair = (letters or {}).get(name)
    if pair is None:
        return _canonical_daughters(name) or (name + "a", name + "p")
    return name + pair[0], name + pair[1]


# --------------------------------------------------------------------------- parameters

#: Built-in priors, used when no fitted ``simulator_params.json`` is shipped. Units: time
#: points (~90 s) and pixels (x, y) / planes (z) of the EPIC tables.
DEFAULT_PARAMS: dict[str, Any] = {
    "version": 1,
    "source": "built-in priors (run benchmarks/fit_simulator.py to fit them from real embryos)",
    "seconds_per_time": 90.0,
    "zscale": 5.7471,
    "default_n_cells": 360,
    "start": "P0",
    "p0_life": 6.0,
    "embryo": {
        "maj": [615.0, 28.0],
        "min": [366.0, 18.0],
        "xc": [388.0, 10.0],
        "yc": [383.0, 50.0],
        "zc": [39.0, 2.0],
        "ang_range": [-90.0, 90.0],
        "inner": [0.78, 1.0, 0.62],
        "shell_z_semi_frac": 0.7,
    },
    "cycle": {
        "by_name": {},
        "by_group": {
            "P0": {"mean": 6.0}, "AB:0": {"mean": 9.0}, "P1": {"mean": 10.0},
            "AB:1": {"mean": 8.5}, "EMS": {"mean": 9.0}, "P2": {"mean": 12.0},
            "AB:2": {"mean": 9.5}, "AB:3": {"mean": 10.5}, "AB:4": {"mean": 12.0},
            "AB:5": {"mean": 14.0}, "AB:6": {"mean": 17.0}, "AB:7": {"mean": 22.0},
            "AB:8": {"mean": 30.0}, "MS:0": {"mean": 11.0}, "MS:1": {"mean": 13.0},
            "MS:2": {"mean": 15.0}, "MS:3": {"mean": 18.0}, "MS:4": {"mean": 22.0},
            "MS:5": {"mean": 30.0}, "E:0": {"mean": 15.0}, "E:1": {"mean": 20.0},
            "E:2": {"mean": 28.0}, "E:3": {"mean": 40.0}, "C:0": {"mean": 11.0},
            "C:1": {"mean": 13.0}, "C:2": {"mean": 15.0}, "C:3": {"mean": 19.0},
            "C:4": {"mean": 26.0}, "P3": {"mean": 16.0}, "D:0": {"mean": 15.0},
            "D:1": {"mean": 17.0}, "D:2": {"mean": 22.0}, "D:3": {"mean": 30.0},
            "P4": {"mean": 40.0},
        },
        "growth": 1.3,
        "tempo_sd_log": 0.1,
        "cell_sd_log": 0.08,
        "group_sd_log": 0.0,
        "min_life": 2.0,
    },
    "division_letters": {"ABa": "lr", "ABp": "lr"},
    "size": {"s0": 160.0, "alpha": 0.28, "sd_log_cell": 0.08, "sd_log_time": 0.05, "min": 16.0, "max": 110.0},
    "apoptosis": {},
    # calibrated against the real embryos (median step between time points / median NN
    # distance = 0.20, and NN distance / embryo length at 50-350 cells; see realism.py)
    "physics": {
        "iterations": 3,
        "packing": 1.05,
        "stiffness": 0.5,
        "jitter": [0.07, 0.14],
        "axis_noise_deg": 25.0,
        "daughter_offset": 0.35,
        "radial_pull": 0.3,
        "margin": 0.25,
        "flow": 0.0,
    },
    "radial": None,
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in ("by_name", "apoptosis", "division_letters"):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@functools.lru_cache(maxsize=1)
def _shipped_params() -> dict:
    if PARAMS_PATH.exists():
        with open(PARAMS_PATH) as fh:
            return _merge(DEFAULT_PARAMS, json.load(fh))
    return copy.deepcopy(DEFAULT_PARAMS)


def load_params(params: dict | str | Path | None = None) -> dict:
    """Simulator parameters: the shipped fitted ones, overridden by ``params``.

    Parameters
    ----------
    params : dict, str or Path, optional
        A (partial) parameter dict merged over the defaults, or the path of a JSON file.

    Returns
    -------
    dict
        A complete parameter dict (a copy; modifying it changes nothing global).

    Raises
    ------
    DevolensError
        A parameter the simulator cannot use, named: an unknown key (the closest known one suggested), null, another
        kind of value than the shipped one, or one out of range. Keys that start with ``_`` (``"_comment"``) are
        ignored.
    """
    base = _shipped_params()
    if params is None:
        return copy.deepcopy(base)
    if isinstance(params, (str, Path)):
        params = read_params_file(params)
    if not isinstance(params, dict):
        raise DevolensError("simulator params must be a dict or a JSON file path")
    params = _without_comments(params)
    _check_given(params, base)
    merged = _merge(base, params)
    _check_params(merged)
    return merged


def read_params_file(path: str | Path):
    """The JSON value a simulator parameter file holds, as written (not merged over the shipped parameters, not
    checked: :func:`load_params` does both).

    Parameters
    ----------
    path : str or Path
        The JSON file.

    Returns
    -------
    object
        What the file holds (a dict for a parameter file).

    Raises
    ------
    DevolensError
        The file cannot be read or is not JSON.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DevolensError(f"cannot read simulator parameters: {exc}", path=path) from None


#: tables whose keys are names (cells, lineage groups, embryos, population letters), not parameters
_NAMED_TABLES = {("cycle", "by_name"), ("cycle", "by_group"), ("cycle", "tempo"), ("cycle", "group_source"),
                 ("apoptosis",), ("division_letters",), ("radial",), ("observed",)}
#: keys the simulator reads that the shipped file may leave out (their defaults are in the code)
_OPTIONAL_KEYS = {("physics", "envelope_cells")}
#: keys a parameter file may set to null (no radial drift; no measured size curve: the power law)
_NULLABLE = {("radial",), ("size", "curve_n"), ("size", "curve_size")}


def _without_comments(params: dict) -> dict:
    """``params`` without its keys that start with ``_`` (``"_comment"``: notes in a JSON file), at any depth."""
    return {k: _without_comments(v) if isinstance(v, dict) else v for k, v in params.items()
            if not (isinstance(k, str) and k.startswith("_"))}


def _param_error(key: str, value: Any, want: str) -> DevolensError:
    return DevolensError(f"simulator parameter {key} = {value!r}: must be {want}")


def _want(path: tuple, base: Any) -> str:
    """What a parameter at ``path`` (shipped value ``base``) must be, in words."""
    if path == ("start",):
        return "'P0' or '4cell'"
    if path in _LIMITS:
        least, equal, most = _LIMITS[path]
        if path in _WHOLE:
            return f"a whole number from {least:g} to {most:g}"
        if most is None:
            return f"a number {'>=' if equal else '>'} {least:g}"
        return f"a number from {least:g} to {most:g}" if equal else f"a number > {least:g} and at most {most:g}"
    if path in _MEAN_SD:
        mean = (f"from {_MEAN_SD[path]:g} to 0.95 x embryo.maj's mean" if path == ("embryo", "min") else
                f">= {_MEAN_SD[path]:g}")
        return f"a list of 2 numbers [mean, sd], the mean {mean} and the sd >= 0"
    if path == ("embryo", "ang_range"):
        return "a list of 2 numbers [low, high] (degrees), low <= high"
    if path == ("embryo", "inner"):
        return "a list of 3 numbers, each > 0 and at most 1 (shares of the eggshell's semi-axes)"
    if path == ("physics", "jitter"):
        return "a number or a list of 2 numbers ([at 4 cells, at 350 cells]), each from 0 to 1"
    if isinstance(base, dict):
        return "a table of values (a JSON object)"
    if isinstance(base, list):
        return f"a list of {len(base)} numbers" if path[0] == "embryo" else "a list of numbers"
    if checks.is_number(base):
        return "a finite number"
    return "a string" if isinstance(base, str) else "a value"


def _check_given(over: dict, base: dict, path: tuple = ()) -> None:
    """Refuse what a parameter file sets that the simulator cannot read, naming the key: an unknown key (the closest
    known one suggested), null, or another kind of value than the shipped one (a string for a number, a number for
    a table). Tables of names (cells, lineage groups) are left to :func:`_check_params`."""
    import difflib

    for k, v in over.items():
        here = path + (k,)
        key = ".".join(map(str, here))
        if k not in base and here not in _OPTIONAL_KEYS:
            known = [str(x) for x in base] + [o[-1] for o in _OPTIONAL_KEYS if o[:-1] == path]
            hint = difflib.get_close_matches(str(k), known, n=1)
            raise DevolensError(f"unknown simulator parameter {key}"
                                + (f" (did you mean {'.'.join(map(str, path + (hint[0],)))}?)" if hint else
                                   f" (known: {', '.join(sorted(known))})"))
        b = base.get(k)
        if v is None:
            if b is None or here in _NULLABLE:
                continue
            raise _param_error(key, v, _want(here, b))
        if isinstance(b, dict):
            if not isinstance(v, dict):
                raise _param_error(key, v, _want(here, b))
            if here not in _NAMED_TABLES:
                _check_given(v, b, here)
        elif here == ("physics", "jitter"):  # a number, or [at 4 cells, at 350 cells]
            if not (checks.is_number(v) and math.isfinite(v) or isinstance(v, list) and len(v) == 2 and all(
                    checks.is_number(x) and math.isfinite(x) for x in v)):
                raise _param_error(key, v, _want(here, b))
        elif isinstance(b, list) and all(checks.is_number(x) for x in b):
            if not isinstance(v, list) or not all(checks.is_number(x) and math.isfinite(x) for x in v) or (
                    here[0] == "embryo" and len(v) != len(b)):
                raise _param_error(key, v, _want(here, b))
        elif checks.is_number(b):
            if not checks.is_number(v) or not math.isfinite(v):
                raise _param_error(key, v, _want(here, b))
        elif isinstance(b, str) and not isinstance(v, str):
            raise _param_error(key, v, _want(here, b))


#: numbers a parameter file may set, by path: the least value each may take, whether it may equal it, and the most
#: (None: no bound). The physics' bounds keep the nuclei where the model puts them: shares of the cell diameter
#: (steps, offsets, flow) or of a distance (pull) beyond 1 throw the nuclei about, a stiffness above 1 pushes two
#: overlapping nuclei past each other, a packing beyond 2 (the fitted 1.05; spheres that would fill the eggshell
#: four times over) squeezes the early nuclei into the eggshell's centre, negative ones turn the model around
#: (daughters on the wrong side); the margin's most depends on the eggshell (:func:`_check_room`)
_LIMITS = {
    ("seconds_per_time",): (0.0, False, None), ("zscale",): (0.0, False, None), ("p0_life",): (0.0, False, None),
    ("cycle", "growth"): (0.0, False, None), ("cycle", "tempo_sd_log"): (0.0, True, None),
    ("cycle", "cell_sd_log"): (0.0, True, None), ("cycle", "group_sd_log"): (0.0, True, None),
    ("cycle", "min_life"): (0.0, True, None), ("size", "s0"): (0.0, False, None), ("size", "min"): (0.0, False, None),
    ("size", "max"): (0.0, False, None), ("size", "sd_log_cell"): (0.0, True, None),
    ("size", "sd_log_time"): (0.0, True, None),
    ("embryo", "shell_z_semi_frac"): (0.0, False, 1.0),
    ("physics", "iterations"): (0, True, 100),  # each is a neighbour search per time point: 1e9 never ends
    ("physics", "packing"): (0.0, False, 2.0), ("physics", "stiffness"): (0.0, True, 1.0),
    ("physics", "axis_noise_deg"): (0.0, True, 180.0), ("physics", "daughter_offset"): (0.0, True, 1.0),
    ("physics", "radial_pull"): (0.0, True, 1.0), ("physics", "margin"): (0.0, True, None),
    ("physics", "flow"): (0.0, True, 1.0), ("physics", "envelope_cells"): (1.0, True, None),
}
#: of those, the counts (``int()`` in the simulator would read 2.5 as 2)
_WHOLE = {("physics", "iterations")}
#: the eggshell's [mean, sd] pairs (drawn from a normal distribution), with the least mean: the simulator draws no
#: eggshell shorter than 100 px or narrower than 60 px (a smaller mean was read as those, and a minor axis above
#: 0.95 x the major as that), and the centre's x, y (pixels) and z (planes) are places in the image and its stack
_MEAN_SD = {("embryo", "maj"): 100.0, ("embryo", "min"): 60.0, ("embryo", "xc"): 0.0, ("embryo", "yc"): 0.0,
            ("embryo", "zc"): 0.0}


def _check_params(p: dict) -> None:
    """Refuse parameters the simulator cannot use (a negative growth or cycle length, a size of 0), naming the
    key: without this a user's parameter file gave cells dividing at once or a traceback deep in the simulator."""
    for path, (least, equal, most) in _LIMITS.items():
        node: Any = p
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            continue
        key = ".".join(path)
        want = _want(path, None)
        if not checks.is_number(node) or not math.isfinite(node):
            raise _param_error(key, node, want)
        if node < least or (node == least and not equal) or (most is not None and node > most) or (
                path in _WHOLE and not float(node).is_integer()):
            raise _param_error(key, node, want)
    for key in ("cycle", "size", "embryo", "physics"):
        if not isinstance(p.get(key), dict):
            raise _param_error(key, p.get(key), "a table of values (a JSON object)")
    for key in ("by_group", "by_name"):
        if not isinstance(p["cycle"].get(key, {}), dict):
            raise _param_error(f"cycle.{key}", p["cycle"][key], "a table of values (a JSON object)")
    n = p.get("default_n_cells")
    if not (checks.is_number(n) and float(n).is_integer() and 1 <= n <= MAX_CELLS):
        raise _param_error("default_n_cells", n, f"a whole number from 1 to {MAX_CELLS}")
    for name, entry in p.get("apoptosis", {}).items():  # {"p": chance, "life": time points}
        chance, life_ = (entry.get("p"), entry.get("life")) if isinstance(entry, dict) else (None, None)
        if not (checks.is_number(chance) and 0 <= chance <= 1 and checks.is_number(life_) and math.isfinite(life_)
                and life_ >= 0):
            raise _param_error(f"apoptosis.{name}", entry, 'a table {"p": a chance from 0 to 1, "life": time points >= 0}')
    _check_eggshell(p["embryo"])
    jitter = p["physics"].get("jitter")
    if jitter is not None and not all(checks.is_number(x) and 0 <= x <= 1 for x in
                                      (jitter if isinstance(jitter, list) and len(jitter) == 2 else [jitter])):
        raise _param_error("physics.jitter", jitter, _want(("physics", "jitter"), None))
    _check_room(p)
    size = p["size"]
    if size.get("max") is not None and size.get("min") is not None and size["max"] < size["min"]:  # numbers above
        raise _param_error("size.max", size["max"], f"at least size.min ({size['min']!r})")
    life = "a number > 0 (a cell cycle length in time points)"
    for group, entry in p["cycle"].get("by_group", {}).items():
        mean = entry.get("mean") if isinstance(entry, dict) else None
        if not checks.is_number(mean) or not math.isfinite(mean) or mean <= 0:
            raise _param_error(f"cycle.by_group.{group}.mean", mean, life)
    for name, entry in p["cycle"].get("by_name", {}).items():  # a length, or [length, spread, ...] (see _Timing)
        mean = entry[0] if isinstance(entry, list) and entry else entry
        spread = entry[1:2] if isinstance(entry, list) else []
        if not checks.is_number(mean) or not math.isfinite(mean) or mean <= 0 or any(
                not checks.is_number(v) or not math.isfinite(v) or v < 0 for v in spread):
            raise _param_error(f"cycle.by_name.{name}", entry, life + ", with a spread >= 0 when one is given")


def _numbers(value: Any, n: int) -> bool:
    """Whether ``value`` is a list of ``n`` finite numbers."""
    return isinstance(value, list) and len(value) == n and all(checks.is_number(x) and math.isfinite(x) for x in value)


def _check_eggshell(e: dict) -> None:
    """Refuse eggshell parameters the simulator cannot draw from (a negative sd, angles the wrong way round, an
    envelope of 0: a traceback deep in numpy) or would silently replace (a 0 px major axis drawn as 100 px), naming
    the key."""
    for path, least in _MEAN_SD.items():
        pair = e.get(path[1])
        if pair is None:
            continue
        most = 0.95 * e["maj"][0] if path == ("embryo", "min") and _numbers(e.get("maj"), 2) else math.inf
        if not _numbers(pair, 2) or not least <= pair[0] <= most or pair[1] < 0:
            raise _param_error(".".join(path), pair, _want(path, None))
    if e.get("ang_range") is not None and not (_numbers(e["ang_range"], 2) and e["ang_range"][0] <= e["ang_range"][1]):
        raise _param_error("embryo.ang_range", e["ang_range"], _want(("embryo", "ang_range"), None))
    if e.get("inner") is not None and not (_numbers(e["inner"], 3) and all(0 < x <= 1 for x in e["inner"])):
        raise _param_error("embryo.inner", e["inner"], _want(("embryo", "inner"), None))


def _check_room(p: dict) -> None:
    """Refuse a ``physics.margin`` that leaves the nuclei of the 4-cell stage no room in the eggshell: the
    simulator keeps big early nuclei ``margin x (diameter - the diameter at envelope_cells)`` inside the envelope of
    nuclear centres, and where that passes 95% of its smallest semi-axis it shrinks the envelope to 5% of it instead
    (:func:`_confine`), every nucleus in the eggshell's centre (a margin of 5 did). Judged on the mean eggshell, as
    :func:`_sample_embryo` draws it; the fitted parameters allow up to 0.6 (0.25 given)."""
    e, ph = p["embryo"], p["physics"]
    margin = ph.get("margin", 0.25)
    if not margin:
        return
    maj = max(float(e["maj"][0]), 100.0)
    mnr = min(max(float(e["min"][0]), 60.0), 0.95 * maj)
    shell = np.array([maj / 2, mnr / 2, float(e.get("shell_z_semi_frac", 0.7)) * mnr / 2])
    semi = shell * np.minimum(np.asarray(e["inner"], float), 0.98)
    volume = 4.0 / 3.0 * math.pi * float(np.prod(shell))
    gap = float(ph["packing"]) * ((volume / 4.0) ** (1.0 / 3.0)
                                  - (volume / float(ph.get("envelope_cells", 200))) ** (1.0 / 3.0))
    if gap <= 0:  # an envelope_cells of 4 or less: no margin at 4 cells
        return
    most = math.floor(0.95 * float(semi.min()) / gap * 100.0) / 100.0  # the message's 2 decimals, taken as said
    if margin > most:
        raise _param_error("physics.margin", margin, f"a number from 0 to {most:g} with this eggshell (embryo.maj, "
                           "min, inner, shell_z_semi_frac) and physics.packing: a larger one squeezes the nuclei of "
                           "the 4-cell stage into the eggshell's centre")


# --------------------------------------------------------------------------- the model


class _Timing:
    """Draws cell lives (time points) from the fitted parameters."""

    def __init__(self, params: dict, rng: np.random.Generator):
        cyc = params["cycle"]
        self.by_name = cyc.get("by_name", {})
        self.by_group = cyc["by_group"]
        self.growth = float(cyc.get("growth", 1.3))
        self.cell_sd = float(cyc.get("cell_sd_log", 0.08))
        self.group_sd = float(cyc.get("group_sd_log", 0.0))
        self._group_noise: dict[str, float] = {}
        self.min_life = float(cyc.get("min_life", 2.0))
        self.tempo = float(np.exp(rng.normal(0.0, float(cyc.get("tempo_sd_log", 0.0)))))
        self.apoptosis = params.get("apoptosis", {})
        self.p0_life = float(params.get("p0_life", 6.0))
        self.rng = rng

    def mean_life(self, name: str) -> float:
        if name in self.by_name:
            return float(self.by_name[name][0] if isinstance(self.by_name[name], list) else self.by_name[name])
        group = lineage_group(name)
        if group in self.by_group:
            return float(self.by_group[group]["mean"])
        if group == "P0":
            return self.p0_life
        if ":" in group:  # extrapolate from the last fitted generation of this lineage
            f, g = group.split(":")
            g = int(g)
            known = [int(k.split(":")[1]) for k in self.by_group if k.startswith(f + ":")]
            if known:
                below = [k for k in known if k < g]
                last = max(below) if below else min(known)
                return float(self.by_group[f"{f}:{last}"]["mean"]) * self.growth ** (g - last)
        return 20.0

    def life(self, name: str) -> tuple[float, bool]:
        """(life in time points, dies) for a newborn cell."""
        if name in TERMINAL:
            return math.inf, False
        apo = self.apoptosis.get(name)
        if apo is not None and self.rng.random() < float(apo["p"]):
            life = float(apo["life"]) * self.tempo * math.exp(self.rng.normal(0.0, self.cell_sd))
            return max(life, self.min_life), True
        sd = self.cell_sd
        if name in self.by_name and isinstance(self.by_name[name], list) and len(self.by_name[name]) > 1:
            sd = float(self.by_name[name][1])
        group = lineage_group(name)
        if group not in self._group_noise:  # shared by a lineage generation: synchronous waves
            self._group_noise[group] = float(self.rng.normal(0.0, self.group_sd)) if self.group_sd > 0 else 0.0
        life = self.mean_life(name) * self.tempo * math.exp(self._group_noise[group] + self.rng.normal(0.0, sd))
        return max(life, self.min_life), False


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def _perturb(direction: np.ndarray, noise_rad: float, rng: np.random.Generator) -> np.ndarray:
    d = _unit(np.asarray(direction, float))
    if noise_rad <= 0:
        return d
    return _unit(d + rng.normal(0.0, noise_rad, 3))


def _confine(pos: np.ndarray, semi: np.ndarray, margin: float) -> np.ndarray:
    """Pull points back inside the ellipsoid ``semi`` shrunk by ``margin`` (pixels)."""
    inner = np.maximum(semi - margin, 0.05 * semi)
    r = np.sqrt(((pos / inner[None, :]) ** 2).sum(axis=1))
    out = r > 1.0
    if out.any():
        pos = pos.copy()
        pos[out] /= r[out, None]
    return pos


def _relax(
    pos: np.ndarray,
    diam: float,
    semi: np.ndarray,
    margin: float,
    iterations: int,
    stiffness: float,
) -> np.ndarray:
    """Soft-sphere repulsion between nuclei of diameter ``diam`` plus confinement of the
    centres in the ellipsoid ``semi`` shrunk by ``margin``."""
    n = len(pos)
    pos = _confine(pos, semi, margin)
    if n < 2:
        return pos
    for _ in range(iterations):
        tree = cKDTree(pos)
        pairs = tree.query_pairs(diam, output_type="ndarray")
        if len(pairs) == 0:
            break
        i, j = pairs[:, 0], pairs[:, 1]
        delta = pos[i] - pos[j]
        dist = np.linalg.norm(delta, axis=1)
        overlap = diam - dist
        tiny = dist < 1e-9
        if tiny.any():  # coincident points: push apart along a fixed direction
            delta[tiny] = np.array([1.0, 0.3, 0.1])
            dist[tiny] = np.linalg.norm(delta[tiny], axis=1)
        push = (0.5 * stiffness * overlap / dist)[:, None] * delta
        disp = np.empty_like(pos)
        for ax in range(3):  # bincount: a fast scatter-add
            disp[:, ax] = np.bincount(i, push[:, ax], n) - np.bincount(j, push[:, ax], n)
        pos = _confine(pos + disp, semi, margin)
    return pos


def _size_at(sz: dict, n: int) -> float:
    """Median nuclear diameter (pixels) at ``n`` cells: the fitted curve where known
    (interpolated in log-log, constant beyond its ends), else the power law."""
    cn, cs = sz.get("curve_n"), sz.get("curve_size")
    if cn and cs and len(cn) == len(cs) and len(cn) >= 2:
        return float(np.exp(np.interp(math.log(max(n, 1)), np.log(cn), np.log(cs))))
    return float(sz["s0"]) * max(n, 1) ** (-float(sz["alpha"]))


def _jitter(spec: float | list, n: int) -> float:
    """Random step per time point as a fraction of the cell diameter: a number, or
    ``[at 4 cells, at 350 cells]`` interpolated in log cell count."""
    if isinstance(spec, (list, tuple)):
        f = min(max(math.log(max(n, 1) / 4.0) / math.log(350.0 / 4.0), 0.0), 1.0)
        return float(spec[0]) + f * (float(spec[1]) - float(spec[0]))
    return float(spec)


def _radial_drift(pos: np.ndarray, names: list[str], shell: np.ndarray, radial: dict | None, pull: float) -> np.ndarray:
    """Move each nucleus part of the way towards the mean normalised radius of its
    population at this cell count (gastrulation: E, MS, D, Z2/Z3 inside; AB, C outside)."""
    if not radial or pull <= 0 or len(pos) < 2:
        return pos
    bins = radial["bins"]
    k = int(np.clip(np.searchsorted(bins, len(pos), side="right") - 1, 0, len(bins) - 2))
    target = np.array([(radial["mean"].get(nm[0]) or [None] * len(bins))[k] or np.nan for nm in names], float)
    r = np.sqrt(((pos / shell[None, :]) ** 2).sum(axis=1))
    ok = np.isfinite(target) & (r > 1e-6)
    if not ok.any():
        return pos
    scale = np.ones(len(pos))
    scale[ok] = 1.0 + pull * (target[ok] / r[ok] - 1.0)
    return pos * scale[:, None]


def _sample_embryo(params: dict, rng: np.random.Generator) -> dict:
    e = params["embryo"]

    def draw(key: str) -> float:
        mean, sd = e[key]
        return float(rng.normal(mean, sd))

    maj = max(draw("maj"), 100.0)
    mnr = min(max(draw("min"), 60.0), 0.95 * maj)
    lo, hi = e.get("ang_range", [-90.0, 90.0])
    ang = float(rng.uniform(lo, hi))
    inner = np.asarray(e["inner"], float)  # nuclear envelope / shell semi-axes (u, v, w)
    shell = np.array([maj / 2, mnr / 2, float(e.get("shell_z_semi_frac", 0.7)) * mnr / 2])
    return {
        "xc": draw("xc"),
        "yc": draw("yc"),
        "zc": draw("zc"),
        "maj": maj,
        "min": mnr,
        "ang": ang,
        "shell": shell,
        "semi": shell * np.minimum(inner, 0.98),  # envelope of nuclear centres (late stage)
        # orientation flips: anterior towards +major axis, dorsal towards +minor, left +z
        "flip": rng.choice([-1.0, 1.0], size=3),
    }


def _to_image(pos: np.ndarray, emb: dict, zscale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body frame (u, v, w in px) -> image x, y (px) and z (planes)."""
    u, v, w = (pos * emb["flip"][None, :]).T
    th = math.radians(emb["ang"])
    # EPIC AuxInfo convention: the major axis points along (cos ang, -sin ang) in (x, y).
    ax = np.array([math.cos(th), -math.sin(th)])
    ay = np.array([math.sin(th), math.cos(th)])
    x = emb["xc"] + u * ax[0] + v * ay[0]
    y = emb["yc"] + u * ax[1] + v * ay[1]
    z = emb["zc"] + w / zscale
    return x, y, z


def simulate_embryo(
    seed: int,
    n_cells: int | None = None,
    n_times: int | None = None,
    params: dict | str | Path | None = None,
    *,
    start: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Grow a digital C. elegans embryo and return its tidy lineage table.

    Parameters
    ----------
    seed : int
        Seed of the ``numpy.random.Generator``; the same seed gives the same table.
    n_cells : int, optional
        Stop at the first time point whose cell count reaches ``n_cells`` (at most ``MAX_CELLS``, 2000). When neither
        ``n_cells`` nor ``n_times`` is given, ``params["default_n_cells"]`` (360) is used. Without ``n_times``, an
        embryo that cannot reach ``n_cells`` within 2000 time points (parameters of one's own) is refused.
    n_times : int, optional
        Stop after this many time points (~90 s each; at most ``MAX_TIMES``, 600).
    params : dict, str or Path, optional
        Overrides of the fitted parameters (see :func:`load_params`).
    start : {"P0", "4cell"}, optional
        Start from the zygote or from the 4-cell stage (ABa, ABp, EMS, P2); default
        ``params["start"]`` ("P0").
    progress : callable, optional
        ``progress(done, total)`` called after each time point (total is the bound on
        time points).

    Returns
    -------
    pandas.DataFrame
        Columns ``embryo`` (``"sim<seed>"``), ``time`` (int, from 1), ``cell`` (Sulston
        name), ``x``, ``y`` (float, pixels), ``z`` (float, planes), ``size`` (float,
        nucleus diameter in pixels). ``attrs``: ``format`` ("tidy"), ``zscale`` (plane
        spacing in xy pixels), ``ellipse`` (dict ``xc, yc, maj, min, ang``: the eggshell
        outline in the image, pixels and degrees, EPIC AuxInfo convention),
        ``ellipsoid`` (dict ``xc, yc`` px, ``zc`` planes, semi-axes ``a, b, c`` px,
        ``ang`` deg: the 3D eggshell), ``seconds_per_time``, ``time_seconds`` (None),
        ``axis`` (None), ``seed``, ``apoptoses`` (list of cells that died), ``start`` (the stage it started from:
        ``start``, else the parameters' ``start``).

    Examples
    --------
    >>> df = simulate_embryo(0, n_cells=50)
    >>> int(df.groupby("time").size().iloc[-1]) >= 50
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DevolensError(f"seed must be a non-negative integer, got {seed!r}")
    n_cells = checks.whole(n_cells, "n_cells", 1, none=True)  # "8" or 2.5 would be read as another count
    n_times = checks.whole(n_times, "n_times", 1, none=True)
    if n_cells is not None and n_cells > MAX_CELLS:
        raise DevolensError(f"n_cells must be at most {MAX_CELLS} (a C. elegans embryo hatches with {HATCHING_CELLS} cells), got {n_cells}")
    if n_times is not None and n_times > MAX_TIMES:
        raise DevolensError(f"n_times must be at most {MAX_TIMES} time points (~15 h at 90 s each), got {n_times}")
    checks.progress_fn(progress)
    p = load_params(params)
    given = start
    start = start or p.get("start", "P0")
    if start not in ("P0", "4cell"):
        named = isinstance(params, (str, os.PathLike))
        where = "" if given else f" (the simulator parameter 'start' of {params})" if named else " (simulator parameter)"
        raise DevolensError(f"start must be 'P0' or '4cell', got {start!r}{where}")
    if n_cells is None and n_times is None:
        n_cells = int(p.get("default_n_cells", 360))
    max_times = int(n_times) if n_times is not None else 2000

    # independent streams: the lineage timing of a seed does not change with the physics
    ss_time, ss_shape, ss_space = np.random.SeedSequence(int(seed)).spawn(3)
    timing = _Timing(p, np.random.default_rng(ss_time))
    emb = _sample_embryo(p, np.random.default_rng(ss_shape))
    rng = np.random.default_rng(ss_space)
    semi = emb["semi"]
    ph = p["physics"]
    noise = math.radians(float(ph.get("axis_noise_deg", 25.0)))
    letters = p.get("division_letters", {})
    radial = p.get("radial")
    sz = p["size"]
    volume = 4.0 / 3.0 * math.pi * float(np.prod(emb["shell"]))
    diam_ref = float(ph["packing"]) * (volume / float(ph.get("envelope_cells", 200))) ** (1.0 / 3.0)

    # state of living cells (python lists; a few hundred cells)
    names: list[str] = []
    pos_l: list[np.ndarray] = []
    events: list[float] = []  # division or death time (continuous, time points)
    dies: list[bool] = []
    sfac: list[float] = []

    def add_cell(name: str, xyz: np.ndarray, birth: float, life: float | None = None) -> None:
        if life is None:
            life, death = timing.life(name)
        else:
            death = False
        names.append(name)
        pos_l.append(np.asarray(xyz, float))
        events.append(birth + life)
        dies.append(death)
        sfac.append(float(np.exp(rng.normal(0.0, float(sz["sd_log_cell"])))))

    if start == "P0":
        add_cell("P0", np.zeros(3), 1.0, life=timing.p0_life * timing.tempo * float(timing.rng.uniform(0.5, 1.0)))
    else:
        # the 4-cell stage: cells born together at a random time before the first frame
        ages = {}
        for nm in ("ABa", "ABp", "EMS", "P2"):
            ages[nm] = timing.mean_life(nm) * timing.tempo
        offset = float(timing.rng.uniform(0.0, 0.6)) * min(ages.values())
        for nm, frac in _FOUR_CELL.items():
            add_cell(nm, np.asarray(frac) * semi + rng.normal(0, 0.02, 3) * semi, 1.0 - offset)

    apoptoses: list[str] = []
    rows_t: list[np.ndarray] = []
    rows_cell: list[list[str]] = []
    rows_pos: list[np.ndarray] = []
    rows_size: list[np.ndarray] = []

    for t in range(1, max_times + 1):
        # divisions and deaths due by this time point, in time order
        while True:
            ev = np.asarray(events)
            due = np.flatnonzero(ev <= t)
            if len(due) == 0:
                break
            k = int(due[np.argmin(ev[due])])
            name, xyz, when, death, fac = names[k], pos_l[k], events[k], dies[k], sfac[k]
            for lst in (names, pos_l, events, dies, sfac):
                del lst[k]
            if death:
                apoptoses.append(name)
                continue
            pair = daughters(name, letters)
            if pair is None:  # terminal cell with a finite event: keep it
                add_cell(name, xyz, when, life=math.inf)
                continue
            n_now = len(names) + 2
            diam = float(ph["packing"]) * (volume / n_now) ** (1.0 / 3.0)
            base = _FOUNDER_DIR.get(name)
            if base is None:
                base = _LETTER_DIR.get(pair[0][-1], (1.0, 0.0, 0.0))
            d = _perturb(np.asarray(base), noise, rng)
            off = float(ph["daughter_offset"]) * diam
            for sign, child in zip((1.0, -1.0), pair):
                add_cell(child, xyz + sign * off * d, when)
                sfac[-1] = 0.5 * sfac[-1] + 0.5 * fac  # daughters resemble their mother

        n = len(names)
        pos = np.asarray(pos_l)
        diam = float(ph["packing"]) * (volume / max(n, 1)) ** (1.0 / 3.0)
        flow = float(ph.get("flow", 0.0))
        if flow > 0 and n > 1:
            # coherent tissue motion: a smooth random shear wave across the embryo; moves
            # neighbours together (steps between time points) without changing the packing
            kvec = _unit(rng.normal(size=3))
            evec = rng.normal(size=3)
            evec = _unit(evec - (evec @ kvec) * kvec)
            phase = float(rng.uniform(0.0, 2.0 * math.pi))
            wave = np.sin(math.pi * (pos @ kvec) / float(semi.max()) + phase)
            pos = pos + (flow * diam) * wave[:, None] * evec[None, :]
        jit = _jitter(ph["jitter"], n)
        if jit > 0:
            pos = pos + rng.normal(0.0, jit * diam, pos.shape)
        pos = _radial_drift(pos, names, emb["shell"], radial, float(ph.get("radial_pull", 0.0)))
        # big early cells keep their nuclei further from the shell
        margin = max(0.0, float(ph.get("margin", 0.25)) * (diam - diam_ref))
        pos = _relax(pos, diam, semi, margin, int(ph["iterations"]), float(ph["stiffness"]))
        pos_l = list(pos)

        size = _size_at(sz, n) * np.asarray(sfac)
        size = size * np.exp(rng.normal(0.0, float(sz["sd_log_time"]), n))
        size = np.clip(size, float(sz["min"]), float(sz["max"]))

        rows_t.append(np.full(n, t, dtype=np.int64))
        rows_cell.append(list(names))
        rows_pos.append(pos.copy())
        rows_size.append(size)
        if progress is not None:
            progress(t, max_times)
        if n_cells is not None and n >= int(n_cells):
            break
        if n_times is None and n_cells is not None and min(events, default=math.inf) > max_times:
            raise _short_of(n, n_cells, t, max_times)  # no cell divides before the last time point
        if n > RUNAWAY_CELLS:  # parameters of one's own that divide far faster than an embryo
            raise DevolensError(f"the simulated embryo passed {RUNAWAY_CELLS} cells at time point {t}: its parameters "
                                "divide far faster than a C. elegans embryo; ask for fewer time points or check params")

    if n_times is None and n_cells is not None and n < n_cells:
        raise _short_of(n, n_cells, max_times, max_times)
    allpos = np.concatenate(rows_pos)
    x, y, z = _to_image(allpos, emb, float(p["zscale"]))
    df = pd.DataFrame(
        {
            "embryo": f"sim{int(seed)}",
            "time": np.concatenate(rows_t),
            "cell": [c for cs in rows_cell for c in cs],
            "x": np.round(x, 2),
            "y": np.round(y, 2),
            "z": np.round(z, 3),
            "size": np.round(np.concatenate(rows_size), 2),
        }
    )
    a, b, c = (float(s) for s in emb["shell"])
    df.attrs.update(
        {
            "format": "tidy",
            "zscale": float(p["zscale"]),
            "ellipse": {"xc": emb["xc"], "yc": emb["yc"], "maj": 2 * a, "min": 2 * b, "ang": emb["ang"]},
            "ellipsoid": {"xc": emb["xc"], "yc": emb["yc"], "zc": emb["zc"], "a": a, "b": b, "c": c, "ang": emb["ang"]},
            "seconds_per_time": float(p["seconds_per_time"]),
            "time_seconds": None,
            "axis": None,
            "seed": int(seed),
            "apoptoses": apoptoses,
            "start": start,
        }
    )
    return df


def _short_of(n: int, n_cells: int, t: int, max_times: int) -> DevolensError:
    """The error for an embryo that cannot reach the cells asked for within ``max_times`` time points (parameters of
    one's own, e.g. a p0_life of years): refused rather than a table of thousands of time points short of them."""
    cells = f"{n} cell{'s' if n != 1 else ''}"
    when = (f"stops at {cells} (no division due before time point {max_times})" if t < max_times
            else f"has only {cells} after {max_times} time points")
    return DevolensError(f"the simulated embryo {when}, short of the {n_cells} cells asked for: its parameters "
                         "(p0_life, cycle lengths) divide far slower than a C. elegans embryo; check params, or give "
                         "--times")


def inside_ellipsoid(df: pd.DataFrame, ellipsoid: dict | None = None, zscale: float | None = None) -> np.ndarray:
    """Normalised radius of each nucleus in the eggshell ellipsoid (< 1 means inside).

    Parameters
    ----------
    df : DataFrame
        Tidy table with ``x``, ``y`` (px) and ``z`` (planes).
    ellipsoid : dict, optional
        ``xc, yc`` (px), ``zc`` (planes), semi-axes ``a, b, c`` (px), ``ang`` (deg);
        default ``df.attrs["ellipsoid"]``.
    zscale : float, optional
        Plane spacing in xy pixels; default ``df.attrs["zscale"]``.

    Returns
    -------
    numpy.ndarray
        ``sqrt((u/a)^2 + (v/b)^2 + (w/c)^2)`` per row.
    """
    e = ellipsoid or df.attrs["ellipsoid"]
    zs = zscale or df.attrs["zscale"]
    th = math.radians(e["ang"])
    dx = df["x"].to_numpy(float) - e["xc"]
    dy = df["y"].to_numpy(float) - e["yc"]
    u = dx * math.cos(th) - dy * math.sin(th)
    v = dx * math.sin(th) + dy * math.cos(th)
    w = (df["z"].to_numpy(float) - e["zc"]) * zs
    return np.sqrt((u / e["a"]) ** 2 + (v / e["b"]) ** 2 + (w / e["c"]) ** 2)
