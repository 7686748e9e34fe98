"""Interrupted runs (mend M12): a stop after a folder's commit leaves its outputs complete, nothing beside them, and
says so; a stop while the command's modules are imported is one ``error:`` line with the signal's exit code; the
tidy-table writer names the file that could not be written."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path

import pandas as pd
import pytest

from devolens import cli
from devolens.errors import DevolensError
from devolens.io import atomic
from devolens.io.atomic import StagedDir, StoppedAfterCommit, staged_folder
from devolens.io.tables import write_tidy

POSIX = os.name == "posix"
MAIN_THREAD = threading.current_thread() is threading.main_thread()


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def earlier_run(out: Path) -> None:
    """An earlier run's outputs in ``out``: what the commit moves aside into its staging folder."""
    (out / "frames").mkdir(parents=True)
    for i in range(5):
        (out / "frames" / f"t{i:03d}.png").write_bytes(b"old" * 100)
    (out / "render.json").write_text("old")


def stage_new(stage: StagedDir) -> None:
    (stage.tmp / "frames").mkdir()
    (stage.tmp / "frames" / "t000.png").write_bytes(b"new")
    (stage.tmp / "render.json").write_text("new")


def assert_new_and_alone(out: Path) -> None:
    assert (out / "render.json").read_text() == "new"
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["t000.png"]
    assert hidden(out.parent) == [] and hidden(out) == []  # no staging folder, no replaced outputs, no lock file


def rmtree_stopped_once(stop: KeyboardInterrupt):
    """A stand-in for ``shutil`` in devolens.io.atomic whose first rmtree is stopped by ``stop`` part-way (one file
    removed), as a signal during the commit's cleanup does; later calls are the real rmtree."""
    calls = []

    def rmtree(path, ignore_errors=False):
        calls.append(Path(path))
        if len(calls) == 1:
            victim = next(p for p in Path(path).rglob("*") if p.is_file())
            victim.unlink()
            raise stop
        shutil.rmtree(path, ignore_errors=ignore_errors)

    return types.SimpleNamespace(rmtree=rmtree, calls=calls)


@pytest.mark.parametrize("stop, signum, code, words", [
    (KeyboardInterrupt(), signal.SIGINT, 130, "interrupted"),
    (atomic.Terminated(signal.SIGTERM), signal.SIGTERM, 143, "terminated (SIGTERM)"),
])
def test_a_stop_during_the_commits_cleanup_finishes_it_and_says_the_outputs_are_complete(
        tmp_path, monkeypatch, capsys, stop, signum, code, words):
    """A stop while the staging folder (with the earlier run's outputs moved aside in it) was removed reported a
    failed run and left ``.OUT.partial-PID-*/.replaced-*`` beside the new, complete outputs."""
    monkeypatch.chdir(tmp_path)
    earlier_run(tmp_path / "out")
    fake = rmtree_stopped_once(stop)
    monkeypatch.setattr(atomic, "shutil", fake)
    with pytest.raises(StoppedAfterCommit) as caught:
        with staged_folder("out", owned=["frames", "render.json"]) as stage:
            stage_new(stage)
    assert len(fake.calls) == 2  # the cleanup was finished
    assert_new_and_alone(tmp_path / "out")
    exc = caught.value
    assert isinstance(exc, KeyboardInterrupt) and exc.signum == signum
    assert cli._report_stop(exc) == code
    assert capsys.readouterr().err == (f"error: {words} after the outputs were written: out holds this run's "
                                       "complete outputs\n")


@pytest.mark.skipif(not (POSIX and MAIN_THREAD), reason="POSIX signals, delivered on the main thread")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_renames_waits_for_them(tmp_path, monkeypatch, signum):
    """The renames are the commit point: a signal in the middle of them put the earlier outputs back (after the
    first entry was in place) and nothing said that; now they all finish, and the stop comes after the cleanup."""
    out = tmp_path / "out"
    earlier_run(out)
    real_replace = os.replace
    sent = []

    def replace(src, dst, **kwargs):
        if not sent:
            sent.append(signum)
            signal.raise_signal(signum)  # its handler raises at once, unless the signal is held back
        return real_replace(src, dst, **kwargs)

    def raising(received, frame):
        raise atomic.interruption(received)

    previous = signal.signal(signum, raising)
    try:
        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(StoppedAfterCommit) as caught:
            with staged_folder(out, owned=["frames", "render.json"]) as stage:
                stage_new(stage)
        monkeypatch.undo()
    finally:
        signal.signal(signum, previous)
    assert sent == [signum] and caught.value.signum == signum
    assert_new_and_alone(out)


def test_a_stop_before_the_renames_still_commits_nothing(tmp_path, monkeypatch):
    """(As before the change) a stop recorded before the commit point leaves the earlier outputs as they were."""
    out = tmp_path / "out"
    earlier_run(out)
    monkeypatch.setattr(atomic, "received_signals", [signal.SIGTERM])
    with pytest.raises(atomic.Terminated) as caught:
        with staged_folder(out, owned=["frames", "render.json"]) as stage:
            stage_new(stage)
    assert not isinstance(caught.value, StoppedAfterCommit)
    assert (out / "render.json").read_text() == "old" and len(list((out / "frames").iterdir())) == 5
    assert hidden(tmp_path) == []


def test_a_second_stop_while_the_staged_outputs_are_dropped_finishes_and_lets_go_of_the_lock(tmp_path, monkeypatch):
    """abort() stopped inside its rmtree (two quick Ctrl-Cs) left the staging folder part-removed and kept the lock,
    and its file, until the process ended."""
    out = tmp_path / "out"
    stage = StagedDir(out)
    (stage.tmp / "a.txt").write_text("x")
    lock = tmp_path / ".out.lock"
    assert lock.exists() or not atomic.HAS_LOCKS
    monkeypatch.setattr(atomic, "shutil", rmtree_stopped_once(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        stage.abort()
    assert not lock.exists() and hidden(tmp_path) == []


# the tidy-table writer ----------------------------------------------------------------------------------


def tidy() -> pd.DataFrame:
    df = pd.DataFrame({"time": [1, 2], "cell": ["AB", "AB"], "x": [1.0, 2.0], "y": [1.0, 2.0], "z": [1.0, 2.0]})
    df.attrs["zscale"] = 0.5  # (metadata known: the sidecar is written too)
    return df


def too_large(*args, **kwargs):
    raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))


def test_a_csv_too_large_is_named_as_the_csv_not_its_sidecar(tmp_path, monkeypatch):
    """``ulimit -f 40; devolens simulate embryo --out e.csv`` said ``e.meta.json: cannot write output: File too
    large``: the sidecar's atomic_path, nested inside the CSV's, reported the CSV's error."""
    monkeypatch.setattr(pd.DataFrame, "to_csv", too_large)
    with pytest.raises(DevolensError) as caught:
        write_tidy(tidy(), tmp_path / "e.csv")
    assert caught.value.path == tmp_path / "e.csv"
    assert str(caught.value) == f"{tmp_path / 'e.csv'}: cannot write output: {os.strerror(errno.EFBIG)}"
    assert list(tmp_path.iterdir()) == []


def test_a_sidecar_too_large_is_named_as_the_sidecar(tmp_path, monkeypatch):
    real = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name.startswith(".e.meta.tmp-"):
            too_large()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(DevolensError) as caught:
        write_tidy(tidy(), tmp_path / "e.csv")
    assert caught.value.path == tmp_path / "e.meta.json"
    assert list(tmp_path.iterdir()) == []


def test_both_written_as_before(tmp_path):
    path = write_tidy(tidy(), tmp_path / "e.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.csv", "e.meta.json"]
    assert pd.read_csv(path)["cell"].tolist() == ["AB", "AB"]


# a stop while the command starts ------------------------------------------------------------------------

#: the ``devolens`` console script, with a signal sent to itself as ``typer`` (the first of the command's heavy
#: imports) is looked for: while devolens.cli loads, before any command module
EARLY_STOP = textwrap.dedent('''
    import os, signal, sys
    signum = int(os.environ["M12_SIGNAL"])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # (whatever this test's parent ignores)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    class StopOnImport:
        def find_spec(self, name, path=None, target=None):
            if name == "typer":
                sys.meta_path.remove(self)
                print("sent", flush=True)
                os.kill(os.getpid(), signum)
            return None

    sys.meta_path.insert(0, StopOnImport())
    sys.argv[0] = os.path.join(os.path.dirname(sys.executable), "devolens")  # as the console script names itself
    from devolens.cli import run
    run()
''')


@pytest.mark.skipif(not POSIX, reason="POSIX signals")
@pytest.mark.parametrize("signum, code, line", [
    (signal.SIGINT, 130, "error: interrupted"),
    (signal.SIGTERM, 143, "error: terminated (SIGTERM)"),
])
def test_a_stop_while_the_command_starts_is_one_line_and_its_exit_code(tmp_path, signum, code, line):
    """A stop in the first ~0.2-0.8 s, while the command's modules were imported, printed a KeyboardInterrupt
    traceback (SIGINT) or ended the process silently (SIGTERM): the handlers were installed after the imports."""
    out = tmp_path / "e.csv"
    res = subprocess.run([sys.executable, "-c", EARLY_STOP, "simulate", "embryo", "--cells", "5", "--out", str(out)],
                         capture_output=True, text=True, env={**os.environ, "M12_SIGNAL": str(int(signum))})
    assert (res.returncode, res.stdout, res.stderr) == (code, "sent\n", line + "\n")
    assert list(tmp_path.iterdir()) == []


def test_a_program_importing_the_cli_keeps_its_handlers():
    """The early handlers are the command's only: this test process (pytest) imported devolens.cli above."""
    for signum in atomic.STOP_SIGNALS:
        assert signal.getsignal(signum) is not cli._on_signal_quietly
