"""Runs writing one tile store take turns (a lock beside the store): two ``tile make --append`` runs started
together keep every image (they both exited 0 and the store held 2 of 3); a signal swallowed while the store is
written stops the run (Ctrl-C during `tile make` landed in an h5py weakref callback and was ignored)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
import tifffile

from devolens.data import tiling
from devolens.data.tiling import lock_path, open_store, store_lock, tile_to_h5
from devolens.errors import DevolensError
from devolens.io import atomic
from devolens.render.wells import simulate_well

pytestmark = pytest.mark.skipif(os.name != "posix", reason="fcntl locks")
WAIT = 120  # seconds: generous, only ever reached when something is broken


@pytest.fixture(scope="module")
def wells(tmp_path_factory):
    d = tmp_path_factory.mktemp("wells")
    paths = []
    for seed in (1, 2, 3):
        w = simulate_well(seed=seed, size=(96, 128), density=700, dead_fraction=0.4)
        ip, lp = d / f"w{seed}.tif", d / f"w{seed}_labels.tif"
        tifffile.imwrite(ip, w.image)
        tifffile.imwrite(lp, w.labels)
        paths.append((ip, lp))
    return paths


def sources(store: Path) -> list[str]:
    with open_store(store) as f:
        return json.loads(f.attrs["sources"])


def test_a_second_writer_waits_for_the_first(tmp_path):
    store = tmp_path / "t.h5"
    first_in, first_go, second_waits = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []
    told: list[str] = []

    def first():
        with store_lock(store):
            first_in.set()
            assert first_go.wait(WAIT)
            order.append("first")

    def second():
        assert first_in.wait(WAIT)

        def waiting(message):
            told.append(message)
            second_waits.set()

        with store_lock(store, waiting):
            order.append("second")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    assert second_waits.wait(WAIT)  # the second run found the lock held and said so
    assert lock_path(store).exists() and order == []
    first_go.set()
    for t in threads:
        t.join(WAIT)
    assert order == ["first", "second"]
    assert told == [f"{store}: another run is writing this store; waiting for it to finish"]
    assert not lock_path(store).exists()  # removed by the last holder


def test_concurrent_appends_keep_every_image(tmp_path, wells):
    """The first run holds the store while the second starts: the second appends to what the first wrote."""
    store = tmp_path / "t.h5"
    tile_to_h5([wells[0][0]], store, [wells[0][1]], tile=32, stride=16)
    second_waits = threading.Event()
    first_inside = threading.Event()
    errors: list[BaseException] = []

    def hold(done, total):  # the first run, part-way (so inside the lock): the second must be waiting by now
        first_inside.set()
        assert second_waits.wait(WAIT)

    def append(k, **kw):
        try:
            tile_to_h5([wells[k][0]], store, [wells[k][1]], tile=32, stride=16, append=True, **kw)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    a = threading.Thread(target=append, args=(1,), kwargs={"progress": hold})
    a.start()
    assert first_inside.wait(WAIT)  # the first run holds the lock (its lock file alone: not yet locked)
    b = threading.Thread(target=append, args=(2,), kwargs={"waiting": lambda message: second_waits.set()})
    b.start()
    a.join(WAIT)
    b.join(WAIT)
    assert errors == []
    assert sources(store) == ["w1.tif", "w2.tif", "w3.tif"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.h5"]


def test_a_killed_runs_lock_file_is_reused_and_removed(tmp_path, wells):
    store = tmp_path / "t.h5"
    lock_path(store).write_text("")  # left by a run killed outright (its lock went with its process)
    tile_to_h5([wells[0][0]], store, [wells[0][1]], tile=32, stride=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.h5"]


def test_no_locks_on_this_file_system_goes_on_with_a_warning(tmp_path, wells, monkeypatch):
    import fcntl

    def flock(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", flock)
    store = tmp_path / "t.h5"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tile_to_h5([wells[0][0]], store, [wells[0][1]], tile=32, stride=16)
    assert any("cannot lock the store" in str(w.message) for w in caught)
    assert sources(store) == ["w1.tif"]


def test_a_lock_that_cannot_be_made_is_a_clear_error(tmp_path, wells, monkeypatch):
    real = os.open

    def refused(path, flags, *args):
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, flags, *args)

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(DevolensError, match="t.h5: cannot write output: Permission denied"):
        tile_to_h5([wells[0][0]], tmp_path / "t.h5", [wells[0][1]], tile=32, stride=16)


def test_a_swallowed_signal_stops_the_tiling(tmp_path, wells, monkeypatch):
    """The signal is recorded by the command's handler; its exception was lost in h5py's weakref callback."""
    got: list[int] = []
    monkeypatch.setattr(atomic, "received_signals", got)
    store = tmp_path / "t.h5"
    tile_to_h5([wells[0][0]], store, [wells[0][1]], tile=32, stride=16, chunk=8)
    before = store.read_bytes()
    flushed: list[int] = []
    real = tiling._Writer._flush

    def flush(self):
        flushed.append(self.fill)
        got.append(signal.SIGINT)  # as if Ctrl-C came now and Python dropped its KeyboardInterrupt
        real(self)

    monkeypatch.setattr(tiling._Writer, "_flush", flush)
    with pytest.raises(KeyboardInterrupt):  # the store's stride (an append must match it) and chunk of 8 tiles
        tile_to_h5([w for w, _ in wells[1:]], store, [lab for _, lab in wells[1:]], tile=32, stride=16,
                   append=True)
    assert len(flushed) == 1  # stopped at the first chunk written, not at the end
    assert store.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.h5"]


def test_cli_waits_with_a_note(tmp_path, wells):
    """`devolens tile make --append` while another process holds the store: a note, then the append."""
    store = tmp_path / "t.h5"
    tile_to_h5([wells[0][0]], store, [wells[0][1]], tile=32, stride=16)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from devolens.data.tiling import store_lock\n"
         "with store_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.readline()", str(store)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        exe = Path(sys.executable).with_name("devolens")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from devolens.cli import run; run()"]
        run = subprocess.Popen(cmd + ["tile", "make", str(wells[1][0]), "--labels", str(wells[1][1]), "--tile", "32",
                                      "--stride", "16", "--out", str(store), "--append"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = run.stderr.readline()  # the note comes while the run waits
        assert line == f"note: {store}: another run is writing this store; waiting for it to finish\n"
        assert run.poll() is None
        holder.stdin.write("\n")
        holder.stdin.flush()
        _, rest = run.communicate(timeout=WAIT)
        assert run.returncode == 0, rest
        assert "3 image(s)" not in rest and "from 2 image(s) in the store" in rest
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(WAIT)
    assert sources(store) == ["w1.tif", "w2.tif"]
