"""safetensors files written readable like any other output, and read with a clear error when they cannot be.

safetensors' ``save_file`` writes its file with mode 0600 (a private temporary renamed in place), so weights
saved with it are unreadable to everyone but their owner: on a shared install, other users cannot load a model
that ships. :func:`save_tensors` writes through :func:`~devolens.io.atomic.atomic_path`, which gives the file the
usual mode (0666 less the umask). And safetensors reports a file it may not read as missing ("No such file or
directory", while the file is there), and a truncated one in its own terms ("incomplete metadata"): :func:`load_tensors`
says what is wrong instead, naming the file. A write that fails (a full disk, a file size limit) is safetensors' own
error, not an OSError: :func:`save_tensors` turns it into the error of any other output that cannot be written.
"""

from __future__ import annotations

import re
from pathlib import Path

from safetensors import SafetensorError

from devolens.errors import DevolensError
from devolens.io.atomic import atomic_path, cannot_write_errno


class DamagedTensorsError(DevolensError, SafetensorError):
    """A safetensors file that is not whole (truncated, overwritten): a one-line :class:`DevolensError` naming the
    file, and still the ``SafetensorError`` that callers catching safetensors' own error expect."""


def unreadable(path: str | Path) -> DevolensError:
    """The one-line error for a file that exists but may not be read."""
    return DevolensError("cannot read this file (permission denied: ask its owner to make it readable, "
                         "e.g. chmod a+r)", path=path)


#: the system's error number in safetensors' message for a failed read or write: "I/O error: File too large (os
#: error 27)" (Rust's own words), "IoError(Os { code: 28, kind: StorageFull, ... })" (older versions)
_OS_ERROR = re.compile(r"\(os error (\d+)\)|\bOs \{ code: (\d+)")


def _os_error_number(exc: BaseException) -> int | None:
    """The system's error number (errno) that safetensors' error ``exc`` reports, or None for another error (a
    tensor it cannot store)."""
    m = _OS_ERROR.search(str(exc))
    return None if m is None else int(m.group(1) or m.group(2))


def save_tensors(tensors: dict, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``tensors`` (name -> torch tensor, or name -> NumPy array) to the safetensors file ``path``,
    atomically, with the usual permissions (0666 less the umask; safetensors alone leaves 0600), and
    return the path.

    Raises
    ------
    DevolensError
        ``path`` cannot be written (:func:`~devolens.io.atomic.atomic_path`), also where safetensors' own write
        fails (a file size limit, a failing disk; a full disk or quota is
        :class:`~devolens.io.atomic.Exhausted`): "cannot write output: ...", and no file is left, neither a half
        one nor its temporary; an earlier file at ``path`` stays as it was.
    """
    values = list(tensors.values())
    if values and all(type(v).__module__.split(".")[0] == "numpy" for v in values):
        from safetensors.numpy import save_file
    else:
        from safetensors.torch import save_file
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=metadata)
        except SafetensorError as exc:  # not an OSError: atomic_path cannot tell a write error from it
            number = _os_error_number(exc)
            if number is None:  # a tensor it cannot store: the caller's bug, with its traceback
                raise
            raise cannot_write_errno(number, path) from None
    return path


def load_tensors(path: str | Path, framework: str = "pt", device: str = "cpu") -> dict:
    """The tensors of the safetensors file ``path``: torch tensors on ``device`` (``framework="pt"``) or NumPy
    arrays (``"np"``).

    Raises
    ------
    DevolensError
        The file exists but may not be read (permissions), or it is damaged or incomplete (a truncated copy: not a
        whole safetensors file; :class:`DamagedTensorsError`, also a ``SafetensorError``). A missing file raises
        safetensors' own error, for the caller to word.
    """
    path = Path(path)
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise unreadable(path) from None
    except OSError:  # missing, a folder...: safetensors' own error, as before
        pass
    try:
        if framework == "np":
            from safetensors.numpy import load_file

            return load_file(str(path))
        from safetensors.torch import load_file

        return load_file(str(path), device=device)
    except (FileNotFoundError, PermissionError):
        if path.is_file():  # safetensors calls a file it may not open missing
            raise unreadable(path) from None
        raise
    except SafetensorError as exc:  # a truncated or damaged file ("incomplete metadata", "invalid header length"...)
        raise damaged(path, exc) from None


def damaged(path: str | Path, exc: BaseException) -> DamagedTensorsError:
    """The one-line error for a safetensors file that is not whole (truncated, overwritten)."""
    detail = " ".join(str(exc).split())
    return DamagedTensorsError("this safetensors file is damaged or incomplete (an interrupted copy?)"
                         + (f": {detail}" if detail else ""), path=path)
