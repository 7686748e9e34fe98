"""Atomic file output: write to a temporary file beside the target, then rename; folders of
outputs are built in a hidden staging folder and moved in place on success (:class:`StagedDir`).

An interrupted run (Ctrl-C, crash, error) never leaves a half-written output file, and a failing
write never costs the outputs of an earlier run. A destination that cannot be written (read-only
file system, no permission, full disk) is a :class:`~devolens.errors.DevolensError`: the user's
environment, not a bug.

A run stopped by a signal cleans up as one stopped by an error: the ``devolens`` command turns SIGTERM and
SIGHUP into :class:`Terminated` (a KeyboardInterrupt, as Ctrl-C raises), and records every signal
(:data:`received_signals`) so that one swallowed where Python cannot raise (a weakref callback in h5py, a
``__del__``) still stops the run at the next commit (:func:`stop_if_signalled`). What a run killed outright
(SIGKILL, out of memory) leaves, a later run writing the same output removes: temporary files and staging folders
carry the writer's process id, and only those of processes that no longer exist are removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator

from devolens.errors import DevolensError, shown_path

#: errors that only writing can raise: wherever they come from, the output could not be written
WRITE_ERRNOS = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG") if hasattr(errno, name))
#: a full disk or quota: the machine's, not the input's; the same run may succeed elsewhere or later
RETRY_ERRNOS = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT") if hasattr(errno, name))
#: the ``devolens`` command's exit code for a failure that a retry elsewhere may fix (out of memory, full disk or
#: quota): sysexits.h's EX_TEMPFAIL; a user's or the data's error is 2
EX_TEMPFAIL = 75
#: files a system's file browser leaves in any folder it showed (and macOS's ``._NAME`` companions on foreign disks):
#: not the user's work, replaced with a folder a rerun replaces whole (:func:`is_system_file`)
SYSTEM_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def is_system_file(name: str) -> bool:
    """Whether the file ``name`` is a file browser's (:data:`SYSTEM_FILES`, ``._NAME``), not the user's work."""
    return name in SYSTEM_FILES or name.startswith("._")


def own_record(path: Path) -> dict | None:
    """The JSON object in the file ``path`` that a run may have written into its output (a record: ``run.json``,
    ``segment.json``...): None where it is no plain file (a link there, a folder of that name: the user's), cannot
    be read, or holds no JSON object. Whose record it is, each command asks of its fields."""
    import json

    try:
        if path.is_symlink() or not path.is_file():
            return None
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def foreign_entries(out: Path, own: "dict[str, Callable[[os.DirEntry], bool]]", *, through_links: bool = False
                    ) -> list[str]:
    """The entries of the subfolders of an output folder ``out`` that a rerun replaces whole which the command did
    not write, as ``FOLDER/NAME`` (sorted by name within each folder, the folders in the order of ``own``): those
    ``own[FOLDER]`` does not own, a file browser's (:func:`is_system_file`) left aside. A subfolder that is a link
    is passed over (the rerun replaces the link, not what it leads to) unless ``through_links``; one missing or
    unreadable is passed over."""
    found = []
    for folder, owned in own.items():
        where = Path(out) / folder
        try:
            if where.is_symlink() and not through_links:
                continue
            with os.scandir(where) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        found += [f"{folder}/{e.name}" for e in entries if not is_system_file(e.name) and not owned(e)]
    return found


class Exhausted(DevolensError):
    """The machine ran out of something (disk, quota, memory): the input and options may be fine. The ``devolens``
    command exits with :data:`EX_TEMPFAIL` (``exit_code``)."""

    exit_code = EX_TEMPFAIL


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by ``signum`` (SIGTERM: what ``kill``, Slurm, Snakemake and Nextflow send;
    SIGHUP). Raised by the ``devolens`` command's signal handler; a KeyboardInterrupt, so that it unwinds exactly as
    Ctrl-C does (every cleanup on ``BaseException``/``KeyboardInterrupt`` runs, nothing catches it as an error)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)

    def __str__(self) -> str:
        return f"terminated ({signal_name(self.signum)})"


class StoppedAfterCommit(Terminated):
    """A stop (``signum``: SIGINT, Ctrl-C, included) that came after the outputs of ``dest`` were committed, as the
    commit tidied up (:meth:`StagedDir.commit`): ``dest`` holds this run's complete outputs, and the tidying was
    finished before this was raised. A :class:`Terminated`, so that the ``devolens`` command says so in its
    ``error:`` line, with the signal's exit code (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, signum: int, dest: str | Path, files: bool = False):
        super().__init__(signum)
        self.dest = Path(dest)
        #: ``dest`` is a file written with others as one unit (:func:`devolens.io.together.write_together`)
        self.files = files

    def __str__(self) -> str:
        stop = "interrupted" if self.signum == signal.SIGINT else f"terminated ({signal_name(self.signum)})"
        if self.files:
            return f"{stop} after the outputs were written: {self.dest} and the files written with it are complete"
        return f"{stop} after the outputs were written: {self.dest} holds this run's complete outputs"


def signal_name(signum: int) -> str:
    """``SIGTERM``, ``SIGKILL``; ``signal 39`` for a number without a name (real-time signals)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


#: the signals the ``devolens`` command's handlers received, in order (empty in a program that only imports
#: devolens: nothing here installs a handler)
received_signals: list[int] = []


def interruption(signum: int) -> KeyboardInterrupt:
    """The exception for a signal: KeyboardInterrupt for SIGINT (Ctrl-C), :class:`Terminated` for the others."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def stop_if_signalled() -> None:
    """Raise the interruption of a signal received (:data:`received_signals`), if any.

    A signal handler's exception is lost when it is raised inside a weakref callback, a ``__del__`` or a
    garbage collection (Python prints "Exception ignored in" and goes on): called where an output is committed
    and in long loops, so that such a run stops there instead of finishing as if nothing had happened.
    """
    if received_signals:
        raise interruption(received_signals[0])


#: the signals that stop a run as Ctrl-C does (Ctrl-C itself; what kill, Slurm, Snakemake and Nextflow send; a
#: closed terminal; Windows' Ctrl-Break)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
                     if hasattr(signal, name))

#: the handlers :func:`signals_held` replaced, and the signals it held back
_held_handlers: dict[int, Callable] = {}
_held_back: list[int] = []


def _hold_signal(signum: int, frame) -> None:
    _held_back.append(signum)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold back the stop signals whose handler raises (the ``devolens`` command's, Python's Ctrl-C) while the
    body runs, then hand the first one received to its handler.

    For a section that an exception must not cut in half: :mod:`multiprocessing`'s ``Pool()`` interrupted after
    forking its workers but before registering its finaliser printed "Exception ignored in: <Finalize object,
    dead> ... AttributeError: ... '_key'" at exit. Only on the main thread (the only one Python delivers signals
    to); nested holds are one hold. A process forked inside the hold gets the handlers back.
    """
    if _held_handlers or threading.current_thread() is not threading.main_thread():
        yield
        return
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if callable(handler):
            _held_handlers[signum] = handler
            signal.signal(signum, _hold_signal)
    # blocked too: a process forked in the section (a pool's workers) starts with them blocked, and a stop sent to it
    # before its at-fork hooks have set its own handlers waits for them (Python drops a signal that reaches a child
    # between fork() and its hooks: a render pool's worker sent SIGTERM by Pool.terminate() then waited on its queue
    # for ever, and the pool's join with it); the hooks unblock them (:func:`_unblock_in_child`)
    block = getattr(signal, "pthread_sigmask", None)
    held = block is not None and bool(_held_handlers)
    if held:
        _register_unblock()
        _held_mask.update(_held_handlers)
        outer = block(signal.SIG_BLOCK, list(_held_handlers))
    try:
        yield
    finally:
        handlers = dict(_held_handlers)
        _held_handlers.clear()
        # blocked while they are put back: a signal between two of them ran the first's handler, whose exception
        # left the others holding (every later stop noted and never acted on)
        mask = block(signal.SIG_BLOCK, handlers) if block is not None else None
        if held:
            mask = outer  # (a stop pending now reaches its own handler when unblocked below)
        try:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            received, _held_back[:] = list(_held_back), []
        finally:
            if block is not None:
                block(signal.SIG_SETMASK, mask)
        if received:
            handlers[received[0]](received[0], None)


def _release_held_in_child() -> None:
    for signum, handler in _held_handlers.items():
        signal.signal(signum, handler)
    _held_handlers.clear()
    _held_back.clear()


#: the stop signals :func:`signals_held` has blocked, which a forked process unblocks: one forked in the section, or
#: by a thread started in it (a pool's worker handler, which inherits the section's mask and starts the workers that
#: replace those that end)
_held_mask: set[int] = set()
_unblock_registered: list[bool] = []


def _unblock_in_child() -> None:
    """In a process forked inside :func:`signals_held`: unblock the stop signals it blocked, after every other at-fork
    hook has set this process's handlers (registered at the first hold, after the command's own hook): a stop sent to
    it meanwhile is handled by those."""
    if _held_mask:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, sorted(_held_mask))


def _register_unblock() -> None:
    """Register :func:`_unblock_in_child` once, at the first hold: after the hooks of the modules imported by then
    (:mod:`devolens.cli`'s sets a pool worker's handlers), so that it runs after them in a child."""
    if not _unblock_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_unblock_in_child)
        _unblock_registered.append(True)


if hasattr(os, "register_at_fork"):  # before the command's own hook (devolens.cli imports this module first)
    os.register_at_fork(after_in_child=_release_held_in_child)


#: random part of a temporary file's or staging folder's name (what :func:`tempfile.mkstemp` and
#: :func:`tempfile.mkdtemp` add to the prefix)
_RANDOM = r"[a-z0-9_]{8}"


#: errors of a folder that refuses a new entry (no permission, read-only file system)
_REFUSED = frozenset(getattr(errno, name) for name in ("EACCES", "EPERM", "EROFS") if hasattr(errno, name))


#: a staging folder beside its output (``.NAME.partial-PID-RANDOM``), one inside it (``.partial-PID-RANDOM``,
#: and ``.replaced-RANDOM`` in it), an :func:`atomic_path` temporary (``.STEM.tmp-PID-RANDOM.SUFFIX``)
_STAGING_NAME = re.compile(rf"\.(.+)\.partial-\d+-{_RANDOM}")
_INSIDE_NAME = re.compile(rf"\.(?:partial-\d+|replaced)-{_RANDOM}")
_TEMP_NAME = re.compile(rf"\.(.+)\.tmp-\d+-{_RANDOM}(.*)")


def public_path(path: str | Path) -> Path:
    """``path`` with the hidden staging folders and temporary names of this module replaced by the names they
    stand for: ``out/.seg.partial-407-ab12cd34/labels/.a.tmp-407-x9y8z7w6.tif`` is ``out/seg/labels/a.tif`` (what
    an error message shows the user)."""
    parts = []
    for part in Path(path).parts:
        if _INSIDE_NAME.fullmatch(part):
            continue
        m = _STAGING_NAME.fullmatch(part) or _TEMP_NAME.fullmatch(part)
        parts.append("".join(g for g in m.groups() if g) if m else part)
    return Path(*parts) if parts else Path(path)


def _file_above(path: Path) -> Path | None:
    """The nearest folder above ``path`` that exists, when it is no folder but a file (or None)."""
    for parent in path.parents:
        if os.path.lexists(parent):
            return parent if os.path.exists(parent) and not os.path.isdir(parent) else None
    return None


#: what a refused replace of an existing output most often means
_LOCKED_HINT = "is it open in another program, or read-only?"


def cannot_write(exc: OSError, path: str | Path, replacing: bool = False) -> DevolensError:
    """The one-line error for an output ``path`` that the system refused (``exc``); a hidden staging or temporary
    path is named by the output it stands for (:func:`public_path`). A full disk or quota is :class:`Exhausted`.
    ``replacing``: ``exc`` came from the rename onto ``path``; a refusal of the file itself there
    (:func:`_output_refused`: open in Excel on Windows, read-only) is asked about."""
    path = public_path(path)
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENAMETOOLONG:
        reason = _name_too_long(exc, path) or reason
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):  # a folder on the way is a file: "File exists" misleads
        above = _file_above(path)
        if above is not None:
            reason = f"{above} is a file, not a folder"
    # Windows' sharing violation (winerror 32) already says "being used by another process"
    if replacing and _output_refused(exc, path) and getattr(exc, "winerror", None) != 32:
        reason = f"{reason} ({_LOCKED_HINT})"
    return (Exhausted if exc.errno in RETRY_ERRNOS else DevolensError)(f"cannot write output: {reason}", path=path)


#: the longest file name (bytes) most file systems take (ext4, XFS, Btrfs, APFS, NTFS's 255 UTF-16 units)
NAME_MAX = 255


def _name_too_long(exc: OSError, out: Path) -> str | None:
    """Why a name was too long (ENAMETOOLONG, ``exc``) for the output ``out``: the name in the failing path
    (``exc.filename``) over :data:`NAME_MAX` bytes, as the output it stands for (:func:`public_path`), with what to
    shorten: the --out typed, or the input the output is named after (``NAME_labels.tif`` of a 249-byte
    ``NAME.png``). None where the error names no such name (a whole path over the system's limit)."""
    if exc.filename is None:
        return None
    try:
        parts = Path(os.fsdecode(exc.filename)).parts
    except (TypeError, ValueError):
        return None
    long = next((part for part in parts if len(os.fsencode(part)) > NAME_MAX), None)
    if long is None:
        return None
    name = public_path(long).name or long
    if long in out.parts or name in out.parts:
        return (f"the name {name} is over the file system's {NAME_MAX}-byte limit for a file name: give a shorter "
                "--out")
    return (f"the output name {name} would exceed the file system's {NAME_MAX}-byte limit for a file name: rename the "
            "input it is named after (shorter)")


def _output_refused(exc: OSError, path: str | Path) -> bool:
    """Whether a rename onto ``path`` was refused by the file there (EACCES, EPERM in a folder that takes new
    entries: a file open in another program on Windows, a read-only or immutable one, another user's in a sticky
    folder), not by its folder's permissions."""
    return exc.errno in (errno.EACCES, errno.EPERM) and os.access(Path(path).parent, os.W_OK)


def cannot_write_errno(number: int, path: str | Path) -> DevolensError:
    """:func:`cannot_write` for a write that failed with the errno ``number`` known without an OSError (told from
    a library's message, ffmpeg's, or the free space after a short write)."""
    return cannot_write(OSError(number, os.strerror(number)), path)


#: How the text outputs (CSV, JSON, records) write a character that UTF-8 cannot hold: escaped, as the console
#: shows it. Only a file name's bytes that are not UTF-8 (a Latin-1 ``embry\xe9.png`` from an old Samba share or a
#: zip), which Python holds as lone surrogates (U+DC80 to U+DCFF), are such characters: ``embry\udce9.png`` is
#: written as the text ``embry\udce9.png``, where "strict" ended the run in a UnicodeEncodeError after all its work.
#: :func:`restore_name` reads such a name back. (JSON needs none of it: ``json.dumps`` escapes them itself.)
TEXT_ERRORS = "backslashreplace"

#: an escape :data:`TEXT_ERRORS` writes for a file name's byte that is not UTF-8 (``\udce9``: lower-case hex)
_ESCAPED_BYTE = re.compile(r"\\u(dc[89a-f][0-9a-f])")


def restore_name(text: str) -> str:
    r"""A file name as a text output wrote it (:data:`TEXT_ERRORS`), with its escaped bytes (``\udce9``) turned back
    into the characters Python names such a file by: the name the folder lists, to compare with (a curation report's
    ``file`` column read back by ``--skip-flagged``). Other text is returned as it is."""
    return _ESCAPED_BYTE.sub(lambda m: chr(int(m.group(1), 16)), text) if "\\udc" in text else text


#: how a read-only output is refused (:func:`output_file`)
READ_ONLY = "read-only (chmod u+w to let devolens replace it)"


def _read_only(path: Path) -> bool:
    """Whether the existing plain file ``path`` (links followed) may not be written by this user: its mode's write
    bit for the user is off (``chmod a-w``, ``chmod 444``: the usual way to protect final results). For root, which
    may write any file, a file without any write bit. A missing file, or one that is no plain file, is not."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return True
    geteuid = getattr(os, "geteuid", None)
    if geteuid is not None and geteuid() == 0:  # (os.access says yes to root whatever the mode)
        return False
    return not os.access(path, os.W_OK)


def dangling_target(path: str | Path) -> Path:
    """Where an output named ``path`` is written: ``path`` itself, or, where ``path`` is a symbolic link that leads
    nowhere yet (``ln -s /data/run2 out`` before run2 exists), the path it leads to, which the output then creates
    (the link stays, as for a link whose target exists: the link was replaced by a plain file, or a folder's
    commit failed with "File exists").

    Raises
    ------
    DevolensError
        The folder that would hold the link's target does not exist (no output is made there: a typo in the link).
    """
    path = Path(path)
    try:
        if not path.is_symlink() or path.exists():
            return path
        target = Path(os.path.realpath(path))
    except (OSError, ValueError):
        return path
    if not target.parent.is_dir():
        raise DevolensError(f"is a link to {target}, whose folder {target.parent} does not exist: make that folder "
                            "(or fix the link), or give another --out", path=path)
    return target


def output_file(path: str | Path) -> Path:
    """The file that writing the output ``path`` replaces, checked: ``path`` itself, or the file a symbolic link
    there leads to (written through the link, as a linked output folder is: replacing the link by a plain file broke
    it and left its target as it was). A link that leads nowhere yet is its target (:func:`dangling_target`: made
    through the link); one to no plain file (a folder) is ``path`` (replaced as it is).

    Raises
    ------
    DevolensError
        That file exists and is read-only for this user (:func:`_read_only`): a rename replaces a file whatever its
        mode, so an output protected with ``chmod a-w`` was replaced without a word.
    """
    path = dangling_target(path)
    target = path
    if path.is_symlink():
        try:
            real = Path(os.path.realpath(path))
        except (OSError, ValueError):
            real = path
        if real.is_file():
            target = real
    if _read_only(target):
        raise DevolensError(f"cannot write output: {READ_ONLY}", path=path if target == path else target)
    return target


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    Parameters
    ----------
    path : str or Path
        Final destination. Its parent folder is created when missing.
    suffix : str, optional
        Suffix of the temporary file (defaults to the destination's, so writers that
        infer the format from the extension keep working).

    Raises
    ------
    DevolensError
        The destination cannot be written: its folder cannot be made or holds no new file
        (read-only file system, no permission), the disk or quota is full, or the rename fails; or it is a
        read-only file (:func:`output_file`), refused before anything is written; or another run is writing it
        (:func:`files_locked`: the lock is held from before the temporary file is made until the rename).

    Notes
    -----
    A destination that is a symbolic link to a file is written through it (:func:`output_file`): the file it
    leads to is replaced, the link stays. Text written to the temporary file should follow :data:`TEXT_ERRORS`.
    The temporary file is named ``.STEM.tmp-PID-RANDOM.SUFFIX``; those of writers that no longer exist (killed
    with SIGKILL, out of memory) are removed by the next call for the same output name (see
    :class:`StagedDir`). A signal recorded by the ``devolens`` command (:func:`stop_if_signalled`) stops the
    rename: nothing is committed.

    Examples
    --------
    >>> with atomic_path("out.csv") as tmp:  # doctest: +SKIP
    ...     df.to_csv(tmp)
    """
    path = Path(path)
    suffix = path.suffix if suffix is None else suffix
    if suffix == path.suffix and _own_temporary(path):
        # already a temporary of this process (write_together's, which commits it): written in place, since a
        # temporary of a temporary would be named so that no later run removes it when this one is killed outright
        yield path
        return
    path = output_file(path)  # (a link's target: replaced beside it, on its file system)
    with files_locked([path]):  # from the first write to the rename: a second run writing it is refused
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_files(path.parent, path.stem, suffix)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.tmp-{os.getpid()}-", suffix=suffix, dir=path.parent)
        except OSError as exc:  # nothing written yet: the place itself refuses
            raise cannot_write(exc, path) from None
        os.close(fd)
        tmp_path = path.parent / os.path.basename(tmp)  # named as path is (mkstemp's is absolute: errors named by it)
        try:
            yield tmp_path
            stop_if_signalled()  # a signal whose exception was swallowed: the output is not committed
            try:
                # mkstemp creates 0600 files: give the output the usual permissions (umask applies)
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp_path, 0o666 & ~umask)
            except OSError as exc:
                raise cannot_write(exc, path) from None
            try:
                os.replace(tmp_path, path)
            except OSError as exc:
                raise cannot_write(exc, path, replacing=True) from None
        except OSError as exc:
            # the writer's own errors stay as they are (a bug keeps its traceback), except a full
            # disk or quota, which no code can cause
            if exc.errno in WRITE_ERRNOS:
                raise cannot_write(exc, path) from None
            raise
        finally:
            if tmp_path.exists():
                tmp_path.unlink()


def _own_temporary(path: Path) -> bool:
    """Whether ``path`` is named as this process's temporaries are (``.STEM.tmp-PID-RANDOM.SUFFIX``, :func:`atomic_path`
    and :func:`devolens.io.together.write_together`) and exists: a private file its maker commits."""
    pattern = rf"\..+\.tmp-{os.getpid()}-{_RANDOM}{re.escape(path.suffix)}"
    return re.fullmatch(pattern, path.name) is not None and path.is_file()


#: per folder, the names there that may be :func:`atomic_path`'s temporaries, listed once per process (a command
#: writing thousands of files into one folder lists it once, not once per file)
_temp_names: dict[str, list[str]] = {}


def _remove_stale_files(folder: Path, stem: str, suffix: str) -> None:
    """Remove the temporary files of :func:`atomic_path` for outputs named ``stem`` + ``suffix`` in ``folder`` that
    writers no longer alive left behind (best effort).

    Only plain files named as :func:`atomic_path` names them for this output, with the pid of a process that does
    not exist, are removed (:func:`_alive`: any doubt keeps the file); temporaries of older versions (no pid) are
    kept. The folder is listed once per process (:data:`_temp_names`). As for staging folders, only this machine's
    processes (of this pid namespace) are seen (:meth:`StagedDir._remove_stale`).
    """
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return
    key = os.path.abspath(folder)
    names = _temp_names.get(key)
    if names is None:
        try:
            with os.scandir(folder) as it:
                names = [e.name for e in it if e.name.startswith(".") and ".tmp-" in e.name]
        except OSError:  # an unreadable folder: mkstemp reports the real problem
            return
        _temp_names[key] = names
    if not names:
        return
    pattern = re.compile(rf"\.{re.escape(stem)}\.tmp-(\d+)-{_RANDOM}{re.escape(suffix)}")
    for name in [n for n in names if pattern.fullmatch(n)]:
        names.remove(name)
        if _alive(int(pattern.fullmatch(name).group(1))):
            continue
        p = os.path.join(folder, name)
        try:
            if stat.S_ISREG(os.lstat(p).st_mode):  # a plain file (not a link, not a folder)
                os.unlink(p)
        except OSError:
            pass


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", errors=TEXT_ERRORS)  # (not the locale's: cp1252 on Windows)
    return Path(path)


def write_csv(df, path: str | Path, **kwargs) -> Path:
    """Write a DataFrame to CSV atomically (``index=False`` and ``errors=``:data:`TEXT_ERRORS` unless given)."""
    kwargs.setdefault("index", False)
    kwargs.setdefault("errors", TEXT_ERRORS)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)
    return Path(path)


def write_columns_csv(columns: dict, path: str | Path) -> Path:
    """Write columns (name -> sequence or 1-D array, equal lengths) to a CSV file, atomically,
    without pandas: floats as Python writes them (``repr``, as pandas' ``to_csv`` does), the
    rest with ``str``. For the streaming commands, which never need to import pandas."""
    with atomic_path(path) as tmp:
        with ColumnsCSV(tmp, list(columns)) as out:
            out.add(*columns.values())
    return Path(path)


class ColumnsCSV:
    """A CSV file written chunk by chunk, each chunk columns of equal length, formatted as
    :func:`write_columns_csv` writes them (the two give the same bytes): for tables that grow with a
    long input (one chunk per frame of a movie), written into a staging folder as they come instead
    of held until the end. Not atomic by itself: write it where a failed run leaves nothing
    (:class:`StagedDir`, :func:`atomic_path`).

    >>> with ColumnsCSV(path, ["frame", "count"]) as out:      # doctest: +SKIP
    ...     out.add(["t0", "t0"], np.array([1, 2]))
    """

    def __init__(self, path: str | Path, names: list[str]):
        import csv

        self.names = list(names)
        # (not the locale's encoding: cp1252 on Windows; a file name's bytes that are not UTF-8 escaped)
        self._fh = open(path, "w", newline="", encoding="utf-8", errors=TEXT_ERRORS)
        self._writer = csv.writer(self._fh, lineterminator="\n")
        self._writer.writerow(self.names)

    def add(self, *columns) -> None:
        """Append rows: one sequence or 1-D array per column, in the order of ``names``."""
        cells = []
        for values in columns:
            values = values.tolist() if hasattr(values, "tolist") else list(values)
            cells.append([repr(v) if isinstance(v, float) else v for v in values])
        if len(cells) != len(self.names) or len({len(c) for c in cells}) > 1:
            raise ValueError(f"expected {len(self.names)} columns of one length, got lengths {[len(c) for c in cells]}")
        self._writer.writerows(zip(*cells))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "ColumnsCSV":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StagedDir:
    """Build outputs in a hidden staging folder (``tmp``); move them onto ``dest`` only on success
    (:meth:`commit`; entries already in ``dest`` with the same names are replaced), or drop them
    (:meth:`abort`).

    The staging folder is a sibling of ``dest`` (``.NAME.partial-<pid>-<random>``), so a failed
    run never creates ``dest``. When ``dest`` is a folder on another file system than its parent
    (a mount point: a Docker bind mount, an external disk), a rename from the sibling would fail
    (EXDEV), so the staging folder goes inside ``dest`` instead (``.partial-<pid>-<random>``: hidden,
    and commands reading folders of images only list files); so it does when ``dest`` is an existing
    folder whose parent refuses a new entry (no permission, read-only: a writable
    ``results/sample1`` in a ``results`` of someone else's, as clusters lay out projects). The commit is
    the same renames either way, from inside ``dest`` onto its entries. The pid in the name lets a later run
    to the same ``dest`` remove what a killed run (SIGKILL, out of memory) left behind.

    A run holds a lock on ``dest`` from here to its commit or abort (:func:`output_lock`): a second run writing
    the same folder at the same time is refused at once instead of one silently replacing the other's outputs. A
    command holds it from its output checks until it ends (:func:`devolens.cli._common.hold_output_folder`): it is
    not taken again here then, nor let go at the commit.

    Raises
    ------
    DevolensError
        ``dest`` is a file, another run is writing it, or the staging folder cannot be made (read-only file
        system, no permission, full disk).
    """

    def __init__(self, dest: Path):
        self.dest = dangling_target(dest)  # (a link leading nowhere yet: its target is made, the link stays)
        self._lock = None
        if self.dest.exists() and not self.dest.is_dir():
            raise DevolensError("output exists and is not a folder", path=self.dest)
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            self._lock = output_lock(self.dest)  # before the stale folders go: a live run's are its own
            inside = self.dest.is_dir() and os.stat(self.dest).st_dev != os.stat(self.dest.parent).st_dev
            self._remove_stale()
            if inside:
                self.tmp = self._mkdtemp(inside=True)
            else:
                try:
                    self.tmp = self._mkdtemp(inside=False)
                except OSError as exc:
                    # a folder of one's own in a folder one may not write in (a cluster's results/USER/): staged
                    # inside it, as for a mount point
                    if exc.errno not in _REFUSED or not self.dest.is_dir():
                        raise
                    self.tmp = self._mkdtemp(inside=True)
        except BaseException as exc:
            self._unlock()
            if isinstance(exc, OSError):
                raise cannot_write(exc, self.dest) from None
            raise

    def _unlock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    def __del__(self) -> None:  # dropped without commit() or abort(): the lock goes with it
        try:
            self._unlock()
        except Exception:
            pass

    def _mkdtemp(self, inside: bool) -> Path:
        where, prefix = (self.dest, ".partial-") if inside else (self.dest.parent, f".{self.dest.name}.partial-")
        return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=where))

    def _remove_stale(self) -> None:
        """Remove the staging folders of ``dest`` that runs no longer alive left behind (best effort).

        Only names made by this class for this ``dest`` are touched, with the pid of a process that
        does not exist here (any doubt keeps the folder: another user's process, a system where the check
        cannot be made). The check sees this machine's processes of this pid namespace only: a run writing the
        same output from another container or another host on a shared file system looks dead (not guarded
        against; two runs writing one output at once fail or clash anyway).
        """
        if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
            return
        places = [(self.dest.parent, re.compile(rf"\.{re.escape(self.dest.name)}\.partial-(\d+)-{_RANDOM}"))]
        if self.dest.is_dir():
            places.append((self.dest, re.compile(rf"\.partial-(\d+)-{_RANDOM}")))
        for folder, pattern in places:
            try:
                with os.scandir(folder) as it:
                    stale = [e.path for e in it if (m := pattern.fullmatch(e.name)) and not _alive(int(m.group(1)))
                             and e.is_dir(follow_symlinks=False)]
            except OSError:  # an unreadable parent: nothing to clean, and mkdtemp reports the real problem
                continue
            for path in stale:
                shutil.rmtree(path, ignore_errors=True)

    def commit(self, owned: Iterable[str] = ()) -> None:
        """Move the staged entries into ``dest``, replacing those of the same names: all or nothing.

        ``owned``: names of entries the command writes; those of an earlier run in ``dest`` that this run did
        not stage (an old video beside a new render) go too, in the same all-or-nothing step, so that ``dest``
        holds exactly this run's outputs (other files are kept).

        An entry being replaced is first moved aside into the staging folder (same file system,
        a rename), so a failure part-way puts every earlier entry back as it was and the previous
        outputs are never lost; the staging folder is then removed and a :class:`DevolensError`
        raised. Only if even that restoring fails is the staging folder kept (the error names it).

        A stop (Ctrl-C, SIGTERM) waits until the renames are done (:meth:`_commit`): one before them commits
        nothing; one after them leaves the new outputs in place, complete, and raises :class:`StoppedAfterCommit`
        once the staging folder (with the replaced outputs in it) is removed.

        An entry of ``dest`` to be replaced that is a read-only file (:func:`output_file`: ``chmod a-w``) refuses the
        whole commit before any rename, with a :class:`DevolensError` naming it: a rename ignores the file's mode.
        """
        try:
            self._commit(owned)
        finally:
            self._unlock()

    def _commit(self, owned: Iterable[str]) -> None:
        """The renames (:meth:`_rename`) are the commit point: they run with the stop signals held, so that a stop
        neither cuts them in half nor undoes a finished commit. A stop after them (one held back during them, one
        while the staging folder and the replaced outputs in it are removed) lets the removal finish (a further
        stop waiting until it is done), then raises :class:`StoppedAfterCommit`: the outputs are complete and
        nothing is left beside them."""
        committed = False
        try:
            with signals_held():
                self._rename(owned)
                committed = True
            shutil.rmtree(self.tmp, ignore_errors=True)
        except KeyboardInterrupt as exc:  # Ctrl-C, or a signal's Terminated
            if not committed:
                raise
            self._finish_removal()
            raise StoppedAfterCommit(getattr(exc, "signum", signal.SIGINT), self.dest) from None

    def _rename(self, owned: Iterable[str]) -> None:
        """Move the staged entries onto ``dest`` (:meth:`commit`); on a failure, put every earlier one back."""
        # (staged entry or None for a stale owned one, target, where the old entry goes)
        done: list[tuple[Path | None, Path, Path | None]] = []
        aside: Path | None = None
        renaming: Path | None = None  # the output being replaced, once its renames start
        try:
            stop_if_signalled()  # a signal whose exception was swallowed: nothing is committed
            self.dest.mkdir(parents=True, exist_ok=True)
            staged = sorted(self.tmp.iterdir())
            stale = sorted(set(owned) - {e.name for e in staged})
            moves = [(e, self.dest / e.name) for e in staged] + [(None, self.dest / n) for n in stale]
            for _, target in moves:  # a read-only output file (chmod a-w) is refused before any rename
                if not target.is_symlink() and _read_only(target):
                    raise DevolensError(f"cannot write output: {READ_ONLY}", path=target)
            for entry, target in moves:
                old, renaming = None, None  # a failure before this entry's renames names no file
                if os.path.lexists(target):
                    if aside is None:  # made on demand, after listing the staged entries
                        aside = Path(tempfile.mkdtemp(prefix=".replaced-", dir=self.tmp))
                    old = aside / target.name
                elif entry is None:
                    continue
                # recorded before the renames: each rename is atomic, so whether the paths exist tells
                # _restore how far this entry got, even after a Ctrl-C between the two
                done.append((entry, target, old))
                renaming = target
                if old is not None:
                    os.replace(target, old)
                if entry is not None:
                    os.replace(entry, target)
        except BaseException as exc:  # Ctrl-C included: the previous outputs go back before anything else
            restored = self._restore(done)
            if restored:
                self.abort()
            if not isinstance(exc, OSError):
                raise
            if renaming is not None and _output_refused(exc, renaming):  # that file refused: it is named
                error = cannot_write(exc, renaming, replacing=True)
            else:
                error = cannot_write(exc, self.dest)  # Exhausted for a full disk or quota: exit 75 either way
            if not restored:
                raise type(error)(f"{error.args[0]}; some earlier outputs could not be put back, they are in "
                                  f"{self.tmp}") from None
            raise error from None

    @staticmethod
    def _restore(done: list[tuple[Path | None, Path, Path | None]]) -> bool:
        """Undo the renames of a failed :meth:`commit`, last first; True when everything is back."""
        ok = True
        for entry, target, old in reversed(done):
            try:
                if entry is not None and not os.path.lexists(entry):  # the new entry was placed: take it back out
                    os.replace(target, entry)
                if old is not None and os.path.lexists(old):  # the old entry was moved aside
                    os.replace(old, target)
            except OSError:
                ok = False
        return ok

    def abort(self) -> None:
        """Drop the staged outputs (``dest`` is left as it was)."""
        try:
            try:
                shutil.rmtree(self.tmp, ignore_errors=True)
            except KeyboardInterrupt:  # a second stop (two quick Ctrl-Cs): the run was stopping already
                self._finish_removal()
                raise
        finally:  # and lets go of the lock (its file goes) however the removal ends
            self._unlock()

    def _finish_removal(self) -> None:
        """Remove the staging folder, whose removal a stop cut short, with the stop signals held: a further stop
        waits until it is done and is then dropped (the run is stopping already)."""
        with contextlib.suppress(KeyboardInterrupt), signals_held():
            shutil.rmtree(self.tmp, ignore_errors=True)


#: the lock files this process holds (:class:`FileLock`), closed in a forked child: a worker pool forked by a run
#: must not keep its output locked after the run
_held_locks: set[int] = set()

#: those of :data:`_held_locks` that the running command keeps until it ends (:func:`output_lock`'s ``kept``): its
#: staging does not lock their folders again
_kept_locks: set[int] = set()


def _close_locks_in_child() -> None:
    for fd in list(_held_locks):
        try:
            os.close(fd)  # the parent's own descriptor keeps the lock
        except OSError:
            pass
    _held_locks.clear()
    _kept_locks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_locks_in_child)

try:
    import fcntl as _fcntl
except ImportError:  # not POSIX: no locks, runs go on unlocked
    _fcntl = None

#: whether this system has ``fcntl.flock`` (not on Windows, where :meth:`FileLock.take` never locks)
HAS_LOCKS = _fcntl is not None

#: open() flag that refuses a symbolic link as the last part of the path (0 where the system has none)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class _NotPlain(OSError):
    """A lock name that is no plain file (a link, a FIFO, a device, a folder): never written through, nor removed."""


def _no_locks(exc: OSError) -> bool:
    """Whether ``exc``, from ``flock``, means that the file system has no locks (some network file systems). The
    numbers are looked up at each call (ENOTSUP is not EOPNOTSUPP on macOS)."""
    return exc.errno in (errno.ENOLCK, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF,
                         getattr(errno, "ENOTSUP", None))  # (EBADF: NFS's flock on a read-only descriptor)


def _host() -> str:
    """This machine's host name, recorded with the pid in a lock file."""
    import socket

    return socket.gethostname()


class FileLock:
    """An exclusive ``fcntl.flock`` on a lock file holding the holder's pid and host name (a line each): the one lock
    of devolens, on an output folder (:func:`output_lock`: a second run is refused at once), on an output file
    (:func:`files_locked`: likewise) and on a tile store
    (:func:`devolens.data.tiling.store_lock`: a second run waits its turn).

    A run killed outright releases the lock with its process (the file stays, and the next run reuses it). The
    holder removes the file as it lets go, while still holding it: a run that opened the same file meanwhile then
    finds that the name no longer leads to it and tries again with a new file, so the lock held is always on the
    file the path names. A lock name that is a link or no plain file is never written through, nor removed.
    """

    def __init__(self, fd: int, path: Path):
        self.fd, self.path = fd, path

    @classmethod
    def take(cls, path: Path, owner: Path, *, waiting: Callable[[], None] | None = None, inside: Path | None = None,
             unlocked: Callable[[OSError], None] | None = None) -> "FileLock | None":
        """Lock the file ``path`` (made when missing, in a folder that exists); None where the run goes on unlocked.

        Parameters
        ----------
        path : Path
            The lock file.
        owner : Path
            What the lock guards: the path the errors name.
        waiting : callable, optional
            Given: when another run holds the lock, ``waiting()`` is called once and the run waits until the other
            lets go (Ctrl-C and SIGTERM interrupt the wait). Not given (the default): refused at once with a
            :class:`DevolensError`, "another devolens run is writing here (pid N)" ("(pid N on HOST)" when the
            holder runs on another host).
        inside : Path, optional
            The lock file to use instead when ``path`` cannot be had and the folder of ``inside`` exists (an output
            folder of one's own in a folder one may not write in).
        unlocked : callable, optional
            Given: a lock file that cannot be made or locked is the user's to know, :func:`cannot_write` naming
            ``owner``; a file system without locks, or a lock name that is no plain file, is told through
            ``unlocked(error)`` and the run goes on unlocked. Not given (the default): the run goes on unlocked
            silently, whatever the reason (making the output itself then reports a real problem).

        Returns
        -------
        FileLock or None
            The lock, to :meth:`release`; None, unlocked, where the system has no ``flock`` (not POSIX), the file
            system no locks, or (``unlocked`` not given) the lock file cannot be had.
        """
        if _fcntl is None:
            return None
        told = False
        while True:
            try:
                try:
                    fd = cls._open(path)
                except OSError:
                    if inside is None or not inside.parent.is_dir():
                        raise
                    path = inside  # (and so on retries)
                    fd = cls._open(path)
            except OSError as exc:
                if unlocked is not None:
                    if not isinstance(exc, _NotPlain):
                        raise cannot_write(exc, owner) from None
                    unlocked(exc)
                return None
            if fd is None:  # removed by the run that held it, between two opens: again
                continue
            try:
                try:
                    _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
                except BlockingIOError:
                    if waiting is None:
                        raise DevolensError("another devolens run is writing here" + cls._holder(fd),
                                            path=owner) from None
                    if not told:
                        waiting()
                        told = True
                    _fcntl.flock(fd, _fcntl.LOCK_EX)  # Ctrl-C and SIGTERM interrupt the wait
            except OSError as exc:
                os.close(fd)
                if unlocked is not None:
                    if not _no_locks(exc):
                        raise cannot_write(exc, owner) from None
                    unlocked(exc)  # no locks on this file system: unlocked
                return None
            except BaseException:
                os.close(fd)
                raise
            try:
                # locked, it must still be the file the path names (not one its holder removed as it let go, nor
                # a link put there since)
                try:
                    same = os.path.samestat(os.fstat(fd), os.lstat(path))
                except OSError:
                    same = False
                if same:
                    try:
                        os.ftruncate(fd, 0)
                        os.write(fd, f"{os.getpid()}\n{_host()}\n".encode())
                    except OSError:  # opened read-only (another user's file), a full disk: they are for messages
                        pass
                    _held_locks.add(fd)
                    return cls(fd, path)
            except BaseException:
                _held_locks.discard(fd)
                os.close(fd)
                raise
            os.close(fd)

    @staticmethod
    def _open(path: Path) -> int | None:
        """The lock file opened (made when missing); None when it went between two opens (its holder removed it).

        Raises OSError when it cannot be opened, :class:`_NotPlain` when ``path`` is no plain file (a link, a FIFO, a
        device, a folder: never opened for writing, which O_NOFOLLOW and O_NONBLOCK make sure of between the check
        and the open: a link is refused, a FIFO put there does not hang the open)."""
        not_plain = _NotPlain(errno.EEXIST, "not a plain file", str(path))
        flags = _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
        try:
            existed = True
            if not stat.S_ISREG(os.lstat(path).st_mode):
                raise not_plain
        except FileNotFoundError:
            existed = False
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o666)
        except PermissionError as refused:
            try:  # another user's lock file (umask 022) in a folder both may write in: read-only is enough for flock
                fd = os.open(path, os.O_RDONLY | flags)  # (except on NFS: EBADF, no locks)
            except FileNotFoundError:
                if existed:
                    return None
                raise refused from None  # the folder takes no new file
            except OSError as exc:
                raise (not_plain if exc.errno == errno.ELOOP and _NOFOLLOW else exc) from None
        except OSError as exc:
            raise (not_plain if exc.errno == errno.ELOOP and _NOFOLLOW else exc) from None
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            regular = False
        if not regular:
            os.close(fd)
            raise not_plain
        return fd

    @staticmethod
    def _holder(fd: int) -> str:
        """Who holds the lock file ``fd``, as the refusal says it: `` (pid N)``, `` (pid N on HOST)`` when the holder
        runs on another host (a cluster's node sharing the file system: its pid means nothing here); empty when the
        file says nothing readable (a lock of an older devolens holds its pid alone, taken as this host's)."""
        try:
            pid, *host = os.pread(fd, 512, 0).decode("utf-8").split()
            pid = int(pid)
        except (OSError, ValueError):
            return ""
        return f" (pid {pid} on {host[0]})" if host and host[0] != _host() else f" (pid {pid})"

    def release(self) -> None:
        """Let go: the lock file is removed first, while still held (unless the path now names another file or a
        link); once only (a forked child's copy does nothing)."""
        if self.fd not in _held_locks:
            return
        _held_locks.discard(self.fd)
        _kept_locks.discard(self.fd)
        try:
            if os.path.samestat(os.fstat(self.fd), os.lstat(self.path)):  # (not a link put there since)
                os.unlink(self.path)  # while still held: a run that opened this file sees it went and retries
        except OSError:
            pass
        try:
            _fcntl.flock(self.fd, _fcntl.LOCK_UN)  # for forked children's copies too
        except OSError:
            pass
        os.close(self.fd)


def output_lock(dest: Path, *, kept: bool = False) -> FileLock | None:
    """Lock the output folder ``dest`` (:class:`FileLock`): ``.NAME.lock`` beside it, or ``.devolens.lock`` inside
    it when the folder beside it takes no new file. A second run writing it is refused at once; where no lock can be
    had (not POSIX, a file system without locks, no place for the file, a lock name that is a link or no plain file)
    the run goes on unlocked, silently: making the staging folder then reports a real problem.

    ``kept``: the lock is the running command's, taken at its output checks and held until it ends
    (:func:`devolens.cli._common.hold_output_folder`). A later ``output_lock`` of the same folder in this process (its
    staging) then gives None instead of locking again: a second flock of one process, on another descriptor, is
    refused as another run's. Only such a kept lock is passed over: any other this process holds refuses as before
    (a library caller's own lock of the folder, as another run's would)."""
    real = Path(os.path.realpath(dest))  # one lock whatever the path that names the folder
    beside, inside = real.parent / f".{real.name}.lock", real / ".devolens.lock"
    if _held_here(beside, _kept_locks) or _held_here(inside, _kept_locks):
        return None
    lock = FileLock.take(beside, dest, inside=inside)
    if lock is not None and kept:
        _kept_locks.add(lock.fd)
    return lock


@contextlib.contextmanager
def files_locked(paths: Iterable[str | Path]) -> Iterator[None]:
    """Hold the lock of each output file of ``paths`` while the body writes and renames them (:class:`FileLock` on
    ``.NAME.lock`` beside it, as an output folder's): a second run writing one of them at the same time is refused at
    once instead of the last silently replacing the first's output. Their folders are made when missing.

    A file this process holds the lock of already (a tile store's, held from reading the store to replacing it) is
    not locked again: a second flock of one process is refused as another run's. A file in a staging folder, or a
    temporary (:func:`public_path`), is its run's own: not locked. Where no lock can be had the run goes on
    unlocked, silently, as for a folder (:func:`output_lock`).

    Raises
    ------
    DevolensError
        Another run is writing one of ``paths`` (nothing is written then), or a folder cannot be made.
    """
    locks: list[FileLock] = []
    try:
        for path in map(Path, paths):
            if public_path(path) != path:
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise cannot_write(exc, path) from None
            real = Path(os.path.realpath(path))  # one lock whatever names it: a link to the file, to its folder
            name = real.with_name(f".{real.name}.lock")
            if not _held_here(name) and (lock := FileLock.take(name, path)) is not None:
                locks.append(lock)
        yield
    finally:
        for lock in reversed(locks):
            lock.release()


def _held_here(path: Path, among: Iterable[int] | None = None) -> bool:
    """Whether this process holds the lock file ``path`` (:class:`FileLock`); ``among``: held by one of these
    descriptors (by any it holds: None)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    for fd in list(_held_locks if among is None else _held_locks & set(among)):
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), st):
                return True
    return False


def missing_folders(path: str | Path) -> list[Path]:
    """``path`` and the folders above it that do not exist yet, deepest first: what writing there will create."""
    path = Path(path)
    return [p for p in (path, *path.parents) if not p.exists()]


def remove_made(folders: list[Path]) -> None:
    """Remove ``folders`` (from :func:`missing_folders`: deepest first) while they are empty: what a failed call made
    for its outputs. Stops at the first that is not (something else wrote there meanwhile)."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:  # not made after all (a commit stopped before making ``out``)
            continue
        except OSError:
            break


@contextlib.contextmanager
def staged_folder(out: str | Path, owned: Iterable[str] = ()) -> Iterator[StagedDir]:
    """Yield a :class:`StagedDir` for the output folder ``out``; commit it on success (``owned``: see
    :meth:`StagedDir.commit`).

    On an error (or Ctrl-C) the staged outputs are dropped, and so are the folders above ``out`` that were
    made for them: a failed run leaves neither a half-filled nor an empty output folder behind. A commit that
    fails itself removes ``out`` too when it made it (and nothing is left in it). A stop after the commit's
    renames (:class:`StoppedAfterCommit`) leaves ``out`` as committed.
    """
    given, out = Path(out), Path(out).resolve()  # staged beside the real folder ('.' and '..' name no sibling)
    made = missing_folders(out)  # out itself (made by the commit) and the folders above it made for it
    stage = None
    try:
        stage = StagedDir(out)
        yield stage
    except BaseException as exc:
        if stage is not None:
            stage.abort()
        remove_made(made[1:] if made and made[0] == out else made)  # out is only made by the commit
        if isinstance(exc, DevolensError):
            _name_as_given(exc, out, given)
        raise
    try:
        stage.commit(owned)
    except StoppedAfterCommit as exc:  # a stop after the commit: the outputs are in place, and their folders stay
        exc.dest = given  # (named as the user named it)
        raise
    except BaseException as exc:  # the commit put back what was there; the folders it made go (kept when not empty)
        remove_made(made)
        if isinstance(exc, DevolensError):
            _name_as_given(exc, out, given)
        raise


def _name_as_given(exc: DevolensError, out: Path, given: Path) -> None:
    """Name the output folder in ``exc``, an error of :func:`staged_folder`'s work on the resolved folder ``out``, as
    the user typed it, ``given`` (``render --out r`` names ``r/labels/x.tif``, not ``/home/.../r/labels/x.tif``, as
    the other commands do): its path, and in its message ``out`` and the folders above it that ``given`` names
    (``afile is a file, not a folder``). Changed in place (its class and other attributes are kept)."""
    pairs = [(out, given)]  # deepest first
    o, g = out, given
    while g.name not in ("", ".", "..") and g.parent.name not in ("", ".", "..") and o != o.parent:
        o, g = o.parent, g.parent
        pairs.append((o, g))
    path, message = exc.path, exc.message
    for o, g in pairs:
        if path is not None and path.is_relative_to(o):
            path = g / path.relative_to(o)
            break
    for o, g in pairs:
        message = re.sub(re.escape(str(o)) + r"(?=$|[\s/:,;)'\"])", lambda _: str(g), message)
    if path == exc.path and message == exc.message:
        return
    exc.path, exc.message = path, message
    exc.args = (f"{shown_path(path)}: {message}" if path is not None else message, *exc.args[1:])


def _alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (True when in doubt)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # not ours to signal (still alive), or no such pid number
        return True
    return True
