"""Session 45: a command writing an output FOLDER (segment nuclei|membrane, segment livedead, render, demo) takes
its lock at its output checks and holds it until it ends, as it does an output file's: a second run writing the same
folder is refused at once, before any work (it was refused only when its staging began, after the model was loaded:
two runs started a few seconds apart both finished, the last silently replacing the first's outputs, both saying
done). The staging then finds the lock held by its own process and does not take it again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io import atomic
from devolens.io.atomic import StagedDir, output_lock
from devolens.io.images import write_png

SRC = Path(__file__).resolve().parents[1] / "src"

#: another devolens run writing the output folder argv[1] (holding its lock until told to go)
HOLD = """
import sys
from pathlib import Path
from devolens.io.atomic import output_lock
lock = output_lock(Path(sys.argv[1]))
assert lock is not None
print("held", flush=True)
sys.stdin.readline()
lock.release()
"""

pytestmark = pytest.mark.skipif(not atomic.HAS_LOCKS, reason="no fcntl.flock: runs go on unlocked")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout.readline() == "held\n"
    return proc


def _let_go(proc: subprocess.Popen) -> None:
    proc.communicate("\n")
    assert proc.returncode == 0


def _frames(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        write_png(rng.integers(0, 255, (64, 64), dtype=np.uint8), folder / f"t{i:03d}.png")
    return folder


def _tree(root: Path) -> list[str]:
    """Every path under ``root``, relative, sorted: what a refused run must leave as it was."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _locks(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".lock")]


def _refused(capsys, code: int, out: Path, holder: subprocess.Popen) -> None:
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines()[-1] == f"error: {out}: another devolens run is writing here " \
                                                 f"(pid {holder.pid})", err
    assert err.count("error:") == 1 and "Traceback" not in err


class _Worked(DevolensError):
    """Raised by a patched first step of a command's work: the command went past its checks."""


def _no_work(seen: list, name: str):
    def work(*args, **kwargs):
        seen.append(name)
        raise _Worked(f"{name}: the work began")
    return work


@pytest.mark.parametrize("existing", [True, False])
def test_segment_is_refused_before_any_work_when_another_run_writes_its_folder(tmp_path, monkeypatch, capsys,
                                                                                existing):
    """A second `segment nuclei --out DIR` while another run holds DIR's lock: refused at its checks (no model
    loaded, no frame read, no staging begun), exit 2, DIR and its folder as they were. Was: the model was loaded and
    the input opened first, the refusal coming only when staging began."""
    import devolens.cli.predict as cli_predict

    src = _frames(tmp_path / "movie")
    out = tmp_path / "seg"
    if existing:  # an earlier run's results, which the refused run must leave alone
        (out / "labels").mkdir(parents=True)
        (out / "segment.json").write_text('{"kind": "nuclei"}')
        (out / "counts.csv").write_text("frame,count\n0,1\n")
    seen: list = []
    monkeypatch.setattr(cli_predict, "_load_predictor", _no_work(seen, "model loaded"))
    monkeypatch.setattr(cli_predict, "_Source", _no_work(seen, "frames read"))
    monkeypatch.setattr(cli_predict, "StagedDir", _no_work(seen, "staging"))
    holder = _holder(out)
    try:
        before = _tree(tmp_path)
        _refused(capsys, main(["segment", "nuclei", str(src), "--out", str(out)]), out, holder)
        assert seen == [] and _tree(tmp_path) == before  # (the holder's .seg.lock among them)
    finally:
        _let_go(holder)
    assert _locks(tmp_path) == []


def test_a_segment_run_holds_its_folders_lock_from_its_check_to_its_end(tiny_zoo, tmp_path, monkeypatch, capsys):
    """Two `segment nuclei --out same` runs: the second, started while the first loads its model (before its
    staging), is refused at once; the first writes its folder, and its lock file goes at the end."""
    import devolens.cli.predict as cli_predict

    src = _frames(tmp_path / "movie")
    out = tmp_path / "seg"
    seen = []
    real = cli_predict._load_predictor

    def loading(*args, **kwargs):  # another run starts while this one loads its model: refused at once
        other = subprocess.run([sys.executable, "-c", "import sys; from devolens.cli import main; "
                                f"sys.exit(main(['segment', 'nuclei', {str(src)!r}, '--out', {str(out)!r}, "
                                "'--no-overlay']))"], capture_output=True, text=True, env=_env())
        seen.append((other.returncode, other.stderr, sorted(os.listdir(tmp_path))))
        return real(*args, **kwargs)

    monkeypatch.setattr(cli_predict, "_load_predictor", loading)
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay"]) == 0
    code, err, listed = seen[0]
    assert code == 2 and f"{out}: another devolens run is writing here (pid {os.getpid()})" in err, err
    assert listed == [".seg.lock", "movie"]  # the lock held since the check; nothing staged yet, nothing of the other's
    assert (out / "segment.json").is_file() and len(os.listdir(out / "labels")) == 2
    assert _locks(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["movie", "seg"]
    capsys.readouterr()
    monkeypatch.setattr(cli_predict, "_load_predictor", real)
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay"]) == 0  # free again
    assert _locks(tmp_path) == []


def test_a_segment_run_into_a_folder_whose_parent_is_missing_still_works(tiny_zoo, tmp_path, monkeypatch):
    """--out under folders that do not exist yet: no lock at the check (no place for it: nothing is made before the
    work), the staging makes the folders and locks --out as before; all written, no lock file left."""
    import devolens.cli.predict as cli_predict

    src = _frames(tmp_path / "movie")
    out = tmp_path / "new" / "deeper" / "seg"
    seen = []
    real = cli_predict._load_predictor

    def loading(*args, **kwargs):
        seen.append(sorted(os.listdir(tmp_path)))
        return real(*args, **kwargs)

    monkeypatch.setattr(cli_predict, "_load_predictor", loading)
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay"]) == 0
    assert seen == [["movie"]]  # nothing made at the check
    assert (out / "segment.json").is_file() and len(os.listdir(out / "labels")) == 2
    assert _locks(tmp_path) == []


@pytest.mark.parametrize("command", [["render", "--simulate", "1"], ["segment", "livedead", "PLATE"], ["demo"]],
                         ids=["render", "livedead", "demo"])
def test_the_other_folder_commands_are_refused_at_their_checks(tmp_path, monkeypatch, capsys, command):
    """The other commands writing a folder: refused before their work (render: before simulating; livedead: before
    a plate's wells are read; demo: before its staging) when another run holds --out's lock."""
    import devolens.cli.demo as cli_demo
    import devolens.cli.tiles as cli_tiles
    import devolens.render.dataset as dataset

    seen: list = []
    monkeypatch.setattr(dataset, "simulate_tables", _no_work(seen, "render simulated"))
    monkeypatch.setattr(cli_tiles, "_plate_wells", _no_work(seen, "wells read"))
    monkeypatch.setattr(cli_demo, "_staged_demo", _no_work(seen, "demo staged"))
    plate = _frames(tmp_path / "plate")
    out = tmp_path / "out"
    holder = _holder(out)
    try:
        before = _tree(tmp_path)
        _refused(capsys, main([str(plate) if word == "PLATE" else word for word in command] + ["--out", str(out)]),
                 out, holder)
        assert seen == [] and _tree(tmp_path) == before
    finally:
        _let_go(holder)
    assert _locks(tmp_path) == []


def test_staging_does_not_lock_again_a_folder_its_command_keeps(tmp_path):
    """StagedDir under the running command's kept lock of its folder (taken at its check): staged and committed
    (was: refused as another run's, "another devolens run is writing here (pid <its own>)"); the lock stays the
    command's to let go. Any other lock this process holds on the folder still refuses, as another run's."""
    out = tmp_path / "out"
    lock = output_lock(out, kept=True)
    assert lock is not None
    assert output_lock(out) is None and output_lock(tmp_path / "." / "out") is None  # kept here: not taken again
    stage = StagedDir(out)
    (stage.tmp / "a.txt").write_text("a")
    stage.commit()
    assert (out / "a.txt").read_text() == "a" and (tmp_path / ".out.lock").exists()  # still held
    lock.release()
    assert sorted(os.listdir(tmp_path)) == ["out"]
    plain = output_lock(out)  # not kept (a library caller's own, or a test's stand-in for another run)
    try:
        with pytest.raises(DevolensError, match=r"another devolens run is writing here \(pid \d+\)"):
            StagedDir(out)
    finally:
        plain.release()
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_outside_a_command_nothing_is_held(tmp_path):
    """A library call (no command running) takes no lock at the checks: its staging locks, as before."""
    from devolens.cli._common import HELD, hold_output_folder

    hold_output_folder(tmp_path / "out")
    assert os.listdir(tmp_path) == [] and not HELD._exit_callbacks
