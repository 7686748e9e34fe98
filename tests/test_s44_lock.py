"""Session 44: file outputs locked as folder outputs are (a second run writing the same file at the same time is
refused at once, exit 2, nothing of it left), and the refusal names the holder's host when it is another's."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io import atomic
from devolens.io.atomic import FileLock, StagedDir, write_csv, write_text
from devolens.io.together import write_together

SRC = Path(__file__).resolve().parents[1] / "src"

#: another devolens run writing the files of argv[1:] (holding their locks until told to go)
HOLD = """
import sys
from pathlib import Path
from devolens.io.atomic import files_locked
with files_locked([Path(p) for p in sys.argv[1:]]):
    print("held", flush=True)
    sys.stdin.readline()
"""

#: a run on another host as the lock file shows it: the flock held, argv[2] written in it
HOLD_AS = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, sys.argv[2].encode())
print("held", flush=True)
sys.stdin.readline()
"""

pytestmark = pytest.mark.skipif(not atomic.HAS_LOCKS, reason="no fcntl.flock: runs go on unlocked")


def _holder(code: str, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline() == "held\n"
    return proc


def _let_go(proc: subprocess.Popen) -> None:
    proc.communicate("\n")
    assert proc.returncode == 0


def test_a_file_another_run_writes_is_refused_and_left_as_it_was(tmp_path):
    out = tmp_path / "same.csv"
    out.write_text("first\n")
    holder = _holder(HOLD, out)
    try:
        for write in (lambda: write_text(out, "second\n"), lambda: write_csv(_frame(), out)):
            with pytest.raises(DevolensError) as refused:
                write()
            assert str(refused.value) == f"{out}: another devolens run is writing here (pid {holder.pid})"
        # nothing of the refused writes is left: no temporary file, the output as it was
        assert sorted(os.listdir(tmp_path)) == [".same.csv.lock", "same.csv"] and out.read_text() == "first\n"
    finally:
        _let_go(holder)
    assert not (tmp_path / ".same.csv.lock").exists()  # the holder's lock went with it
    write_text(out, "second\n")  # free again; and this run's lock goes too
    assert out.read_text() == "second\n" and sorted(os.listdir(tmp_path)) == ["same.csv"]


def test_files_written_together_are_refused_whole(tmp_path):
    """Another run writing one file of a set (the record) refuses the whole set: no file of one run beside
    another's, nothing staged left, and the locks this run took go."""
    table, record = tmp_path / "pops.csv", tmp_path / "pops.json"
    table.write_text("old\n")
    record.write_text("{}")
    holder = _holder(HOLD, record)
    try:
        with pytest.raises(DevolensError) as refused:
            write_together({table: lambda tmp: tmp.write_text("new\n"), record: lambda tmp: tmp.write_text("[]")})
        assert str(refused.value) == f"{record}: another devolens run is writing here (pid {holder.pid})"
        assert sorted(os.listdir(tmp_path)) == [".pops.json.lock", "pops.csv", "pops.json"]
        assert (table.read_text(), record.read_text()) == ("old\n", "{}")
    finally:
        _let_go(holder)
    write_together({table: lambda tmp: tmp.write_text("new\n"), record: lambda tmp: tmp.write_text("[]")})
    assert sorted(os.listdir(tmp_path)) == ["pops.csv", "pops.json"] and table.read_text() == "new\n"


def test_a_killed_runs_lock_does_not_block(tmp_path):
    out = tmp_path / "same.csv"
    holder = _holder(HOLD, out)
    holder.kill()  # SIGKILL: no cleanup; its lock file stays, its flock goes with the process
    holder.wait()
    assert holder.returncode == -signal.SIGKILL and (tmp_path / ".same.csv.lock").exists()
    write_text(out, "mine\n")
    assert out.read_text() == "mine\n" and not (tmp_path / ".same.csv.lock").exists()
    (tmp_path / ".same.csv.lock").write_text("999999999\nnode07\n")  # one left by a run killed on another host
    write_text(out, "again\n")
    assert out.read_text() == "again\n" and not (tmp_path / ".same.csv.lock").exists()


def test_the_lock_file_holds_pid_and_host(tmp_path):
    out = tmp_path / "same.csv"
    seen = []
    with atomic.atomic_path(out) as tmp:
        seen.append((tmp_path / ".same.csv.lock").read_text())
        tmp.write_text("x")
    assert seen == [f"{os.getpid()}\n{socket.gethostname()}\n"]


@pytest.mark.parametrize("content, said", [
    ("12183\nnode07\n", "(pid 12183 on node07)"),  # another host's run: its pid means nothing here
    (f"12183\n{socket.gethostname()}\n", "(pid 12183)"),  # this host's: as before
    ("12183\n", "(pid 12183)"),  # an older devolens's lock: the pid alone
])
def test_the_refusal_names_the_holders_host_when_it_is_another(tmp_path, content, said):
    out = tmp_path / "same.csv"
    holder = _holder(HOLD_AS, tmp_path / ".same.csv.lock", content)
    try:
        with pytest.raises(DevolensError) as refused:
            write_text(out, "x")
        assert str(refused.value) == f"{out}: another devolens run is writing here {said}"
    finally:
        _let_go(holder)
    folder = tmp_path / "seg"  # an output folder's lock says it the same way
    holder = _holder(HOLD_AS, tmp_path / ".seg.lock", content)
    try:
        with pytest.raises(DevolensError) as refused:
            StagedDir(folder)
        assert str(refused.value) == f"{folder}: another devolens run is writing here {said}"
    finally:
        _let_go(holder)


def test_a_lock_this_process_holds_is_not_taken_again(tmp_path):
    """A tile store's lock (``.NAME.lock`` beside it, held from reading the store to replacing it) covers the
    replace: a second flock of this process would be refused as another run's."""
    from devolens.data.tiling import lock_path

    store = tmp_path / "tiles.h5"
    lock = FileLock.take(lock_path(store), store)
    try:
        write_text(store, "x")
        assert store.read_text() == "x" and lock_path(store).exists()  # still the store lock's, held
    finally:
        lock.release()


def test_without_flock_file_outputs_go_on_unlocked(tmp_path, monkeypatch):
    out = tmp_path / "same.csv"
    holder = _holder(HOLD, out)
    try:
        monkeypatch.setattr(atomic, "_fcntl", None)  # as on Windows: as output folders do, unlocked
        write_text(out, "x")
        assert out.read_text() == "x"
    finally:
        _let_go(holder)


def test_curate_frames_to_a_report_another_run_writes(tmp_path, capsys):
    import imageio.v3 as iio

    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for t in range(1, 5):
        iio.imwrite(frames / f"t{t:03d}.png", rng.integers(20, 200, (48, 48), dtype=np.uint8))
    out = tmp_path / "report.csv"
    out.write_text("an earlier report\n")
    holder = _holder(HOLD, out)
    try:
        code = main(["curate", "frames", str(frames), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.splitlines()[-1] == f"error: {out}: another devolens run is writing here " \
                                                     f"(pid {holder.pid})"
        assert err.count("error:") == 1 and "Traceback" not in err
        assert out.read_text() == "an earlier report\n" and sorted(os.listdir(tmp_path)) == [
            ".report.csv.lock", "frames", "report.csv"]
    finally:
        _let_go(holder)


def _frame():
    import pandas as pd

    return pd.DataFrame({"a": [1, 2]})


def test_a_command_holds_its_output_files_lock_from_its_check_to_its_end(tmp_path, monkeypatch, capsys):
    """Two `curate frames --out same.csv` runs: the second is refused while the first still scores its frames (the
    lock taken where the output is checked), not only when both happen to write at once; the lock goes at the end."""
    import devolens.curate.frames as curate_module

    frames = tmp_path / "frames"
    frames.mkdir()
    import imageio.v3 as iio

    for i in range(3):
        iio.imwrite(frames / f"t{i:03d}.png", np.full((32, 32), 40 + i, np.uint8))
    out = tmp_path / "report.csv"
    seen = []
    real = curate_module.curate_path

    def scoring(*args, **kwargs):  # another run starts while this one scores: refused at once
        other = subprocess.run([sys.executable, "-c", "import sys; from devolens.cli import main; "
                                f"sys.exit(main(['curate', 'frames', {str(frames)!r}, '--out', {str(out)!r}]))"],
                               capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC),
                                                                                os.environ.get("PYTHONPATH", "")])})
        seen.append((other.returncode, other.stderr))
        return real(*args, **kwargs)

    monkeypatch.setattr(curate_module, "curate_path", scoring)
    assert main(["curate", "frames", str(frames), "--out", str(out)]) == 0
    code, err = seen[0]
    assert code == 2 and f"{out}: another devolens run is writing here (pid {os.getpid()})" in err
    assert out.exists() and not (tmp_path / ".report.csv.lock").exists()
    capsys.readouterr()
    assert main(["curate", "frames", str(frames), "--out", str(out)]) == 0  # free again


def test_a_link_to_an_output_file_shares_its_lock(tmp_path):
    """Two runs, one writing real/t.csv, the other link.csv -> real/t.csv: one file, one lock (the link's own name
    took a lock of its own, and both runs wrote the file)."""
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "t.csv"
    target.write_text("first\n")
    (tmp_path / "link.csv").symlink_to(target)
    holder = _holder(HOLD, target)
    try:
        for write in (lambda: write_text(tmp_path / "link.csv", "second\n"),
                      lambda: atomic.files_locked([tmp_path / "link.csv"]).__enter__()):  # (a command's check's lock)
            with pytest.raises(DevolensError, match="another devolens run is writing here"):
                write()
    finally:
        _let_go(holder)
    assert target.read_text() == "first\n"
    write_text(tmp_path / "link.csv", "second\n")
    assert target.read_text() == "second\n" and (tmp_path / "link.csv").is_symlink()
