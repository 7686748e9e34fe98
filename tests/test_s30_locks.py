"""The one lock of devolens (:class:`devolens.io.atomic.FileLock`), used by output folders (refused at once) and tile
stores (waiting their turn): both paths through the same function; what the store lock gained from the output lock
(a link at its name is never followed nor removed, a forked worker keeps no lock, the pid in the file); a lock file
that its holder removes between the two opens of another user's file is tried again, not swapped for another."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

from devolens.data.tiling import lock_path, store_lock
from devolens.errors import DevolensError
from devolens.io.atomic import FileLock, StagedDir

pytestmark = pytest.mark.skipif(os.name != "posix", reason="fcntl locks, links, fork")
SRC = Path(__file__).resolve().parents[1] / "src"
WAIT = 120  # seconds: only ever reached when something is broken


def test_one_lock_refuses_or_waits(tmp_path):
    """The same held lock: without ``waiting`` it is refused at once naming the holder; with it, says so once, waits
    for the holder to let go, then holds the file the path names (the holder removed its own)."""
    path, owner = tmp_path / ".out.lock", tmp_path / "out"
    held = FileLock.take(path, owner)
    assert held is not None and path.read_text() == f"{os.getpid()}\n{socket.gethostname()}\n"
    with pytest.raises(DevolensError) as refused:
        FileLock.take(path, owner)
    assert str(refused.value) == f"{owner}: another devolens run is writing here (pid {os.getpid()})"

    told, got = [], []
    waiter = threading.Thread(target=lambda: got.append(FileLock.take(path, owner, waiting=lambda: told.append(1))))
    waiter.start()
    for _ in range(WAIT * 100):
        if told:
            break
        threading.Event().wait(0.01)
    assert told == [1] and not got  # said once, and still waiting
    held.release()
    waiter.join(WAIT)
    assert len(got) == 1 and got[0] is not None and told == [1]
    assert os.path.samestat(os.fstat(got[0].fd), os.lstat(path))  # the file the path names (the holder's went)
    got[0].release()
    assert os.listdir(tmp_path) == []


def test_a_store_lock_name_that_is_a_link_is_neither_followed_nor_removed(tmp_path):
    """The store lock followed a link at its name (locking, now writing, the file it leads to) and removed the link
    as it let go; now, as the output lock, it goes on unlocked with the warning of a file system without locks."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    lock_path(tmp_path / "t.h5").symlink_to("victim.txt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with store_lock(tmp_path / "t.h5"):
            pass
    assert [str(w.message) for w in caught] == [
        f"{tmp_path / 't.h5'}: cannot lock the store (not a plain file); runs writing it at the same time would "
        "lose each other's tiles"]
    assert caught[0].filename == __file__  # (the caller's line, as before)
    assert os.readlink(lock_path(tmp_path / "t.h5")) == "victim.txt" and victim.read_text() == "precious\n"


def test_a_store_lock_holds_the_pid_and_goes_with_its_holder(tmp_path):
    store = tmp_path / "t.h5"
    with store_lock(store):
        assert lock_path(store).read_text() == f"{os.getpid()}\n{socket.gethostname()}\n"
        with pytest.raises(DevolensError, match=r"another devolens run is writing here \(pid \d+\)"):
            FileLock.take(lock_path(store), store)
    assert os.listdir(tmp_path) == []


def test_a_forked_worker_does_not_keep_the_store_lock(tmp_path):
    """A worker forked under a store lock, outliving its killed parent, held the store locked: the next run
    waited for ever."""
    store = tmp_path / "t.h5"
    code = ("import os, signal, sys, time\n"
            "from devolens.data.tiling import store_lock\n"
            "with store_lock(sys.argv[1]):\n"
            "    child = os.fork()\n"
            "    if child == 0:\n"
            "        null = os.open(os.devnull, os.O_RDWR); os.dup2(null, 1); os.dup2(null, 2)\n"
            "        time.sleep(600); os._exit(0)\n"
            "    print(child, flush=True)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", code, str(store)], env=env, capture_output=True, text=True,
                         timeout=WAIT)
    child = int(res.stdout.split()[0])
    try:
        assert res.returncode == -signal.SIGKILL
        os.kill(child, 0)  # still alive
        lock = FileLock.take(lock_path(store), store)  # not refused: the worker holds no lock
        assert lock is not None
        lock.release()
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_lock_file_removed_between_two_opens_is_tried_again(tmp_path, monkeypatch):
    """Another user's lock file (opened read-only) that its holder removes just then: the output lock went to
    ``.devolens.lock`` inside the folder (a second lock: no longer exclusive with a run locking ``.out.lock``)."""
    dest = tmp_path / "out"
    dest.mkdir()
    lock = tmp_path / ".out.lock"
    lock.write_text("")
    real_open = os.open
    refused: list[int] = []

    def others(path, flags, *args, **kwargs):
        if Path(path) == lock and flags & os.O_CREAT and not refused:  # another user's file...
            refused.append(1)
            os.unlink(lock)  # ...which its holder removes as it lets go
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", others)
    stage = StagedDir(dest)
    assert refused and lock.read_text() == f"{os.getpid()}\n{socket.gethostname()}\n"
    assert not (dest / ".devolens.lock").exists()
    stage.abort()
    assert sorted(os.listdir(tmp_path)) == ["out"] and stage._lock is None
