"""Checks of the values a library user passes (options, tables), worded once for every module.

Each raises a :class:`~devolens.errors.DevolensError` (or the ``error`` given, such as
:class:`~devolens.errors.DevolensValueError` where a plain ValueError was raised before) naming the
option and the value it got.
"""

from __future__ import annotations

import numbers
import os
import reprlib
from pathlib import Path
from typing import Any, Callable, Iterable

from typing import TYPE_CHECKING

import numpy as np

from devolens.errors import DevolensError

if TYPE_CHECKING:  # pandas imported where a table is checked: the segment command checks numbers without it
    import pandas as pd


def whole(value: Any, name: str, low: int | None = None, *, floats: bool = False, none: bool = False,
          error: type[DevolensError] = DevolensError) -> int | None:
    """``value`` as an int when it is a whole number (an int or a numpy integer; with ``floats`` also a float
    holding one, such as 37.0) of at least ``low``; ``None`` passes when ``none``. Anything else is an error:
    ``"8"``, 2.5 or True would be read as another number."""
    if none and value is None:
        return None
    ok = isinstance(value, (int, np.integer)) or (
        floats and isinstance(value, (float, np.floating)) and float(value).is_integer())
    if isinstance(value, (bool, np.bool_)) or not ok or (low is not None and value < low):
        at_least = "" if low is None else f" >= {low}"
        raise error(f"{name} must be a whole number{at_least}{' or None' if none else ''}, got {value!r}")
    return int(value)


def pixel_size(value: Any, name: str = "pixel_size") -> float | None:
    """A pixel size in micrometres per pixel as a float (None passes): a positive, finite number, else a one-line
    error naming ``name`` (``--pixel-size`` on the command line), the same for ``segment`` and ``segment livedead``."""
    if value is None:
        return None
    try:
        size = float(value)
    except (TypeError, ValueError):
        size = float("nan")
    if isinstance(value, (bool, np.bool_)) or not (size > 0 and np.isfinite(size)):
        raise DevolensError(f"{name} must be a positive number of micrometres per pixel, got {value}")
    return size


def is_number(value: Any) -> bool:
    """A real number (Python or numpy; not a bool, not a string)."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)


def path(value: Any, what: str) -> Path:
    """``value`` as a Path when it is one (str or os.PathLike), else ``"<what>, got <value>"``; ``""`` too
    (``Path("")`` is the current folder: never what was meant)."""
    if not isinstance(value, (str, os.PathLike)) or not isinstance(os.fspath(value), str) or os.fspath(value) == "":
        shown = repr(value) if isinstance(value, (str, bytes, numbers.Number, type(None))) else type(value).__name__
        raise DevolensError(f"{what}, got {shown}")
    return Path(value)


def progress_fn(progress: Callable | None) -> Callable | None:
    """``progress`` when it is a function (called as ``progress(done, total)``) or None."""
    if progress is not None and not callable(progress):
        raise DevolensError(f"progress must be a function progress(done, total) or None, got {progress!r}")
    return progress


def dataframe(df: Any, columns: Iterable[str], *, what: str = "a table", path=None,
          error: type[DevolensError] = DevolensError) -> pd.DataFrame:
    """``df`` when it is a DataFrame holding ``columns`` (a Series or a path is refused: ``read_table`` reads a
    file); ``what`` names it in the message, ``path`` (default: ``df.attrs["source"]``) prefixes it."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise error(f"expected {what} (pandas DataFrame, e.g. from devolens.io.tables.read_table), got "
                    f"{type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise error(f"table lacks column(s) {', '.join(missing)}", path=path or df.attrs.get("source"))
    return df


def whole_times(column: pd.Series, *, path=None, error: type[DevolensError] = DevolensError) -> np.ndarray:
    """A table's ``time`` column as int64, refusing what would be read as another time point (NaN as -2**63, 1.5 as
    1, text); floats holding whole numbers (1.0) and pandas' nullable dtypes are fine."""
    import pandas as pd

    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)  # pd.NA too
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        i = int(np.argmax(bad))
        raise error(f"column 'time' must hold whole time points; row {i} has {column.iloc[i:i + 1].tolist()[0]!r}",
                    path=path)
    return values.astype(np.int64)


def finite_column(values: np.ndarray, column: pd.Series, name: str, *, rows: np.ndarray | None = None,
                  where: str = "", nan_ok: bool = False, then: str = "", path=None,
                  error: type[DevolensError] = DevolensError) -> None:
    """Refuse a table's column ``name`` where it holds no finite number.

    ``values`` is the column as float numbers (text that is no number read as NaN), ``column`` the column as the
    table holds it (a value is shown as the user wrote it), ``rows`` the row positions to check (default: all),
    ``where`` words that place them (``" at time point 5"``). NaN passes where ``nan_ok`` (an unknown size),
    infinity never. The message names the column, the number of rows and the first:
    ``column 'y' must hold finite numbers; row 5 holds nan`` or ``column 'x' must hold finite numbers; 4 rows at
    time point 1 do not (the first: row 0 holds nan)``, then ``": " + then`` (what to do) where given.
    """
    idx = np.arange(len(values)) if rows is None else np.asarray(rows, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)[idx]
    bad = np.isinf(v) if nan_ok else ~np.isfinite(v)
    if not bad.any():
        return
    n = int(bad.sum())
    first = int(idx[int(np.argmax(bad))])
    held = shown(column.iloc[first:first + 1].tolist()[0])
    text = (f"row {first}{where} holds {held}" if n == 1 else
            f"{n} rows{where} do not (the first: row {first} holds {held})")
    raise error(f"column {name!r} must hold finite numbers; {text}{': ' + then if then else ''}", path=path)


#: the most characters of a value a message shows: a value read from a user's file (a recipe's YAML, a model card's
#: JSON) can be anything (a list of a million items, a whole file pasted into a string), and the message is one line
SHOWN_CHARS = 100

_REPR = reprlib.Repr()  # bounded work whatever the value: a few items of each list and mapping, three levels deep
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, SHOWN_CHARS, SHOWN_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


def clip(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters (ending ``...`` where cut), for a one-line message."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def shown(v: Any) -> str:
    """A value as a message shows it: its repr, at most :data:`SHOWN_CHARS` characters (long lists and mappings
    elided, deep ones cut), at a cost bounded whatever its size."""
    return clip(_REPR.repr(v))
