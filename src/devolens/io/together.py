"""Outputs of one command committed as a unit: each written to its temporary file beside it, then all renamed in
place in one short step with the stop signals held (:func:`write_together`).

A command whose outputs belong together (a CSV and the record that says how it was made, its plot, its report)
must never leave a new file next to the previous run's companion: a stop (Ctrl-C, SIGTERM) or a failure before the
step leaves the previous set whole (or nothing, on a first run), and one after it leaves the new set whole.

The renames are not one atomic step, though: a process killed outright (SIGKILL, a power loss) between two of them
leaves a new file beside the previous save's companion. A weights file and its JSON (a training checkpoint, a run's
best model, an ``--export``) therefore both carry the same unit id (:data:`UNIT_KEY`, :func:`unit_id`), and a reader
refuses a pair whose ids differ (:func:`check_unit`) instead of using the files of two saves as one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from devolens.errors import DevolensError
from devolens.io.atomic import (
    WRITE_ERRNOS, StoppedAfterCommit, _remove_stale_files, cannot_write, files_locked, output_file, signals_held,
    stop_if_signalled,
)


def _temp_beside(path: Path) -> Path:
    """A new empty file beside ``path``, named as :func:`~devolens.io.atomic.atomic_path` names its temporaries
    (``.STEM.tmp-PID-RANDOM.SUFFIX``: removed by a later run when this process was killed outright), named as
    ``path`` is (relative where it is: mkstemp's path is absolute, and a writer's error naming its temporary named
    the output by its absolute path, ``train``'s ``/home/.../run/best.safetensors``)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.tmp-{os.getpid()}-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return path.parent / os.path.basename(tmp)


def write_together(writers: Mapping[str | Path, Callable[[Path], object]], *, remove: Iterable[str | Path] = ()
                   ) -> None:
    """Write several outputs as a unit: all of them, or none.

    Each writer is given a temporary path beside its output (with the output's suffix: writers that infer the format
    from it keep working) and writes the file there; once all are written, they are renamed onto their outputs in
    one step with the stop signals held (:func:`~devolens.io.atomic.signals_held`), in the order given (put the
    record last), and then ``remove`` goes (best effort).

    Parameters
    ----------
    writers : mapping of path to callable
        Output path -> function writing the output's content to the path it is given. Parent folders are made
        when missing.
    remove : iterable of path, optional
        Files of an earlier run that this one does not write (a plot it no longer draws), removed in the same step
        after the renames; one that cannot be removed is left.

    Raises
    ------
    DevolensError
        An output cannot be written (its folder takes no new file, a full disk or quota: named by that output), a
        rename is refused (the outputs already renamed are put back first: the previous set stays whole), or another
        run is writing one of them (:func:`~devolens.io.atomic.files_locked`, held from before the first temporary
        file is made until the last rename: nothing is written then).

    Notes
    -----
    Any exception of a writer, Ctrl-C and SIGTERM included, removes every temporary file and leaves the outputs as
    they were; a writer's own errors other than a full disk or quota are raised as they are (a bug keeps its
    traceback). A signal recorded by the ``devolens`` command (:func:`~devolens.io.atomic.stop_if_signalled`)
    stops the step before its first rename.

    Examples
    --------
    >>> write_together({"out.csv": lambda tmp: df.to_csv(tmp, index=False),      # doctest: +SKIP
    ...                 "out.json": lambda tmp: tmp.write_text(record, encoding="utf-8")})
    """
    # each through a link there to its file; a read-only one refused before any is written (output_file)
    outputs = [(output_file(path), write) for path, write in writers.items()]
    # locked from the first temporary to the last rename: a second run writing any of them is refused, never mixed
    with files_locked([path for path, _ in outputs]):
        temps: list[Path] = []
        try:
            for path, _ in outputs:  # every place first: a folder that refuses its file costs no work
                try:
                    if path.is_dir() and not path.is_symlink():  # (a file cannot replace it)
                        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
                    path.parent.mkdir(parents=True, exist_ok=True)
                    _remove_stale_files(path.parent, path.stem, path.suffix)
                    temps.append(_temp_beside(path))
                except OSError as exc:
                    raise cannot_write(exc, path) from None
            for (path, write), tmp in zip(outputs, temps):
                try:
                    write(tmp)
                except OSError as exc:  # a full disk named by the output that met it
                    if exc.errno in WRITE_ERRNOS:
                        raise cannot_write(exc, path) from None
                    raise
            umask = os.umask(0)
            os.umask(umask)
            for (path, _), tmp in zip(outputs, temps):
                try:  # mkstemp makes 0600 files: the usual permissions (umask applies)
                    os.chmod(tmp, 0o666 & ~umask)
                except OSError as exc:
                    raise cannot_write(exc, path) from None
            committed = False
            try:
                with signals_held():
                    stop_if_signalled()  # a signal whose exception was swallowed: nothing is committed
                    _commit([(tmp, path) for (path, _), tmp in zip(outputs, temps)])
                    committed = True
                    written = {os.path.abspath(path) for path, _ in outputs}
                    for path in remove:
                        if os.path.abspath(path) not in written:  # (never one of this run's outputs)
                            with contextlib.suppress(OSError):
                                os.unlink(path)
            except KeyboardInterrupt as exc:  # a stop held back while the outputs were put in place: they are complete
                if not committed or not outputs:
                    raise
                raise StoppedAfterCommit(getattr(exc, "signum", signal.SIGINT), outputs[0][0], files=True) from None
        finally:
            for tmp in temps:
                with contextlib.suppress(OSError):
                    if os.path.lexists(tmp):
                        os.unlink(tmp)


def _commit(pairs: list[tuple[Path, Path]]) -> None:
    """Rename each temporary file onto its output, the output there kept aside first (a hard link: the output
    never goes missing, even if the process is killed outright between the two steps; moved where the file system
    has no links); on a failure the renames done are undone, last first, and
    :func:`~devolens.io.atomic.cannot_write` names the output refused."""
    done: list[_Step] = []
    try:
        for tmp, path in pairs:
            step = _Step(tmp, path)
            done.append(step)
            if step.old is not None:
                step.aside = _temp_beside(path)
                try:
                    os.unlink(step.aside)  # (mkstemp made it: the link takes its name)
                    os.link(path, step.aside, follow_symlinks=False)
                except OSError:
                    os.replace(path, step.aside)
            os.replace(tmp, path)
    except BaseException as exc:  # Ctrl-C included (held: only from a writer's own code): the previous set back
        kept = _undo(done)
        if not isinstance(exc, OSError):
            raise
        error = cannot_write(exc, done[-1].path, replacing=True)
        if kept:
            raise type(error)(f"{error.message}; some earlier outputs could not be put back, they are "
                              + ", ".join(str(p) for p in kept), path=error.path) from None
        raise error from None
    for step in done:  # committed: the previous outputs go
        if step.aside is not None:
            with contextlib.suppress(OSError):
                os.unlink(step.aside)


class _Step:
    """One output's renames in :func:`_commit`: its temporary file (``new``: its identity), the output (``old``: the
    identity of the file there, None when none) and ``aside``, where that file goes. Which file a path names tells
    :func:`_undo` how far the step got, whatever cut it short."""

    def __init__(self, tmp: Path, path: Path):
        self.tmp, self.path = tmp, path
        self.new = os.lstat(tmp)
        self.old = os.lstat(path) if os.path.lexists(path) else None
        self.aside: Path | None = None


def _names(path: Path | None, identity: os.stat_result | None) -> bool:
    """Whether ``path`` names the file of ``identity``."""
    if path is None or identity is None:
        return False
    try:
        return os.path.samestat(os.lstat(path), identity)
    except OSError:
        return False


def _undo(done: list[_Step]) -> list[Path]:
    """Put back the outputs of a failed :func:`_commit`, last first; returns the previous files that could not be
    put back (where they are)."""
    kept = []
    for step in reversed(done):
        try:
            if _names(step.path, step.new):  # the new file is taken back out (removed with the temporaries)
                os.replace(step.path, step.tmp)
            if step.aside is not None and os.path.lexists(step.aside):
                if _names(step.aside, step.old) and not _names(step.path, step.old):  # moved aside: put back
                    os.replace(step.aside, step.path)
                else:  # a link beside the output still there, or made and never used
                    os.unlink(step.aside)
        except OSError:
            if _names(step.aside, step.old) and not _names(step.path, step.old):
                kept.append(step.aside)
    return kept


# ----------------------------------------------------------------------------- weights + JSON pairs: one unit id
#: the key of the unit id that both files of a weights + JSON pair carry: in the safetensors file's metadata and at
#: the top level of the JSON object (:func:`unit_id`)
UNIT_KEY = "devolens_unit"


def unit_id(tensors: Mapping[str, Any]) -> str:
    """The unit id of a weights + JSON pair (:data:`UNIT_KEY`): a digest of the tensors (names, dtypes, shapes and
    bytes) that the safetensors file holds.

    Derived from the content, not drawn at random: the same tensors always get the same id (a resumed run writes its
    files byte for byte as an uninterrupted one), the tensors of two saves (two epochs' weights, optimiser states)
    two ids. The JSON is left out: a run's best.json holds the epoch's timings, which differ from one run to the
    next, and two saves of the very same tensors are alike whatever their JSON says.

    Parameters
    ----------
    tensors : mapping of str to torch tensor or NumPy array
        The tensors as the safetensors file will hold them.

    Returns
    -------
    str
        32 hexadecimal digits.
    """
    import numpy as np

    h = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name]
        if type(value).__module__.split(".")[0] == "torch":
            import torch

            flat = value.detach().cpu().contiguous().reshape(-1)
            raw = flat.view(torch.uint8).numpy()  # any dtype (bf16 too) as its bytes, without a copy
        else:
            flat = np.ascontiguousarray(value).reshape(-1)
            raw = flat.view(np.uint8)
        h.update(f"{name}\0{value.dtype}\0{tuple(value.shape)}\0{raw.nbytes}\0".encode())
        h.update(memoryview(raw))
    return h.hexdigest()[:32]


def tensors_unit(path: str | Path) -> str | None:
    """The unit id in the metadata of the safetensors file ``path`` (its header alone is read); None where it has
    none (a file of an older devolens) or its header cannot be read (the load that follows says why)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
    except (OSError, ValueError, SafetensorError):
        return None
    value = meta.get(UNIT_KEY)
    return value if isinstance(value, str) else None


def check_unit(weights: str | Path, record: str | Path, data: object, remedy: str | Callable[[], str]) -> None:
    """Refuse the weights file ``weights`` and its JSON ``record`` (``data``: the JSON as read) when both carry a
    unit id (:data:`UNIT_KEY`) and the two differ: files of two saves (a process killed between the two renames of
    :func:`write_together`), which would be used as one without a word. Files without an id (written by an older
    devolens) pass, as before.

    Parameters
    ----------
    weights, record : str or Path
        The safetensors file and the JSON beside it.
    data : object
        The JSON's content (a dict; anything else passes: its reader says what is wrong with it).
    remedy : str or callable returning str
        What to do, ending the message ("train the run anew ..."); a callable is called only to refuse (a remedy
        that looks at the folder costs nothing on a pair that matches).

    Raises
    ------
    DevolensError
        The two files are from different saves, naming both and ``remedy``.
    """
    weights, record = Path(weights), Path(record)
    own = data.get(UNIT_KEY) if isinstance(data, dict) else None
    other = tensors_unit(weights)
    if isinstance(own, str) and other is not None and own != other:
        if callable(remedy):
            remedy = remedy()
        raise DevolensError(f"{weights.name} and {record.name} are from different saves (was the run killed while "
                            f"saving them?), so the two do not belong together and neither is used; {remedy}",
                            path=weights.parent)
