"""The CLI's error contract and atomic outputs: outputs the system refuses, staging across file
systems, leftovers of killed runs, ``--version`` and Ctrl-C."""

from __future__ import annotations

import errno
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import devolens
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io import atomic
from devolens.io.atomic import StagedDir, atomic_path, write_text
from _lineage_builders import write_cd
from _cli_helpers import command, raiser  # noqa: F401  (fixture)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def small_cd(tmp_path: Path) -> Path:
    return write_cd(tmp_path / "CDsmall.csv", [("ABa", 1, 1.0, 1, 1, 10, 0), ("P1", 1, 1.0, 5, 5, 10, 0)])


def partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)




# --version, help, usage errors ------------------------------------------------------------------


def test_version_prints_name_and_version(capsys):
    code, out, err = run(["--version"], capsys)
    assert code == 0, err
    try:
        expected = importlib.metadata.version("devolens")
    except importlib.metadata.PackageNotFoundError:
        expected = devolens.__version__
    assert out == f"devolens {expected}\n"


def test_no_command_still_shows_usage(capsys):
    code, out, err = run([], capsys)
    assert code == 2 and "Usage" in out + err


def test_help_and_usage_errors_unchanged(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "--version" in out and "segment" in out
    code, out, err = run(["lineage", "populations"], capsys)
    assert code == 2 and "Missing argument" in err and "Traceback" not in err


# Ctrl-C -----------------------------------------------------------------------------------------


def test_interrupt_prints_one_line_and_exits_130(command, tmp_path, capsys):
    command["body"] = raiser(KeyboardInterrupt())
    code, _, err = run(["zz-test", "--out", tmp_path / "o"], capsys)
    assert code == 130
    assert err == "error: interrupted\n"


def test_interrupt_in_a_real_command(monkeypatch, tmp_path, capsys):
    import devolens.io.tables as tables

    monkeypatch.setattr(tables, "read_table", raiser(KeyboardInterrupt()))
    code, _, err = run(["lineage", "populations", small_cd(tmp_path), "--out", tmp_path / "p.csv"], capsys)
    assert (code, err) == (130, "error: interrupted\n")
    assert not (tmp_path / "p.csv").exists()


def test_explicit_exit_130_is_not_an_interrupt(command, tmp_path, capsys):
    def body(out):
        raise typer.Exit(130)

    command["body"] = body
    code, _, err = run(["zz-test", "--out", tmp_path / "o"], capsys)
    assert code == 130 and err == ""


# outputs the system refuses -----------------------------------------------------------------------


def refuse(monkeypatch, name: str, err: int = errno.EROFS):
    """Make ``tempfile.<name>`` (the temporary file or staging folder) fail as on a read-only disk."""

    def boom(*args, dir=None, **kwargs):
        raise OSError(err, os.strerror(err), str(dir))

    monkeypatch.setattr(atomic.tempfile, name, boom)


def test_atomic_path_refused_is_a_devolens_error(monkeypatch, tmp_path):
    refuse(monkeypatch, "mkstemp", errno.EACCES)
    with pytest.raises(DevolensError, match="cannot write output: Permission denied") as info:
        write_text(tmp_path / "a.txt", "x")
    assert info.value.path == tmp_path / "a.txt"


def test_atomic_path_parent_not_creatable(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DevolensError, match="cannot write output"):
        write_text(tmp_path / "file" / "sub" / "a.txt", "x")


def test_atomic_path_full_disk_while_writing(tmp_path):
    with pytest.raises(DevolensError, match="cannot write output: No space left on device"):
        with atomic_path(tmp_path / "a.csv") as tmp:
            tmp.write_text("partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert os.listdir(tmp_path) == []


def test_atomic_path_keeps_the_writers_own_errors(tmp_path):
    with pytest.raises(FileNotFoundError):  # a bug in the writer keeps its traceback
        with atomic_path(tmp_path / "a.csv"):
            open(tmp_path / "missing" / "x")
    assert os.listdir(tmp_path) == []


def test_staged_dir_refused_is_a_devolens_error(monkeypatch, tmp_path):
    refuse(monkeypatch, "mkdtemp")
    with pytest.raises(DevolensError, match="cannot write output: Read-only file system") as info:
        StagedDir(tmp_path / "out")
    assert info.value.path == tmp_path / "out"


def test_cli_refused_output_is_one_line_exit_2(monkeypatch, tmp_path, capsys):
    refuse(monkeypatch, "mkstemp")
    out_csv = tmp_path / "p.csv"
    code, _, err = run(["lineage", "populations", small_cd(tmp_path), "--out", out_csv], capsys)
    assert code == 2
    assert err == f"error: {out_csv}: cannot write output: Read-only file system\n"


@pytest.mark.parametrize("err", [errno.EROFS, errno.EACCES, errno.ENOSPC, errno.EXDEV])
def test_main_safety_net_environment_errors(command, tmp_path, capsys, err):
    out = tmp_path / "o"
    command["body"] = raiser(OSError(err, os.strerror(err), str(out / "labels" / "a.tif")))
    code, _, stderr = run(["zz-test", "--out", out], capsys)
    assert code == (75 if err == errno.ENOSPC else 2)  # a full disk: EX_TEMPFAIL, a retry elsewhere may do
    assert stderr == f"error: {out}: cannot write output: {os.strerror(err)}\n"


def test_main_safety_net_output_place_missing(command, tmp_path, capsys):
    out = tmp_path / "missing" / "o"
    command["body"] = raiser(FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(tmp_path / "missing")))
    code, _, stderr = run(["zz-test", f"--out={out}"], capsys)
    assert (code, stderr) == (2, f"error: {out}: cannot write output: No such file or directory\n")
    # a hidden temporary beside the output (StagedDir, atomic_path) counts as the output
    command["body"] = raiser(PermissionError(errno.EPERM, "Operation not permitted", str(tmp_path / ".o.partial-1-x")))
    code, _, stderr = run(["zz-test", "-o", tmp_path / "o"], capsys)
    assert (code, stderr) == (2, f"error: {tmp_path / 'o'}: cannot write output: Operation not permitted\n")


def test_main_safety_net_other_files(command, tmp_path, capsys):
    other = tmp_path / "input.tif"
    command["body"] = raiser(PermissionError(errno.EACCES, "Permission denied", str(other)))
    code, _, stderr = run(["zz-test", "--out", tmp_path / "o"], capsys)
    assert (code, stderr) == (2, f"error: {other}: Permission denied\n")


@pytest.mark.parametrize("exc", [
    FileNotFoundError(errno.ENOENT, "No such file or directory", "/nowhere/model.bin"),  # not about the output
    FileNotFoundError(errno.ENOENT, "No such file or directory", "OUT/labels/a.tif"),  # inside it: the code's
    OSError(errno.EBADF, "Bad file descriptor"),
    ValueError("a bug"),
])
def test_main_keeps_bugs_visible(command, tmp_path, capsys, exc):
    if isinstance(exc, OSError) and exc.filename and exc.filename.startswith("OUT"):
        exc.filename = str(tmp_path / exc.filename.replace("OUT", "o"))
    command["body"] = raiser(exc)
    with pytest.raises(type(exc)):
        main(["zz-test", "--out", str(tmp_path / "o")])


# StagedDir: commit, cross-device staging, failed commits, stale leftovers -------------------------


def test_staged_dir_name_carries_pid_and_commit_replaces(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "counts.csv").write_text("old")
    (dest / "keep.txt").write_text("keep")
    stage = StagedDir(dest)
    assert stage.tmp.parent == tmp_path
    assert re.fullmatch(rf"\.out\.partial-{os.getpid()}-[a-z0-9_]{{8}}", stage.tmp.name)
    (stage.tmp / "counts.csv").write_text("new")
    (stage.tmp / "labels").mkdir()
    (stage.tmp / "labels" / "a.tif").write_text("a")
    stage.commit()
    assert (dest / "counts.csv").read_text() == "new" and (dest / "keep.txt").read_text() == "keep"
    assert (dest / "labels" / "a.tif").exists()
    assert partials(tmp_path) == [] and sorted(os.listdir(dest)) == ["counts.csv", "keep.txt", "labels"]


@pytest.fixture
def other_device(monkeypatch):
    """Pretend that ``dest`` (once set) is a mount point: another st_dev than its parent, and renames
    between the two file systems fail with EXDEV, as the kernel does."""
    state: dict = {}
    real_stat, real_replace = os.stat, os.replace

    def device(p) -> int:
        p = Path(os.path.abspath(os.fspath(p)))
        return 2 if p == state["dest"] or state["dest"] in p.parents else 1

    class Stat:
        def __init__(self, st, dev):
            self._st, self.st_dev = st, dev

        def __getattr__(self, name):
            return getattr(self._st, name)

    def fake_stat(p, *args, **kwargs):
        st = real_stat(p, *args, **kwargs)
        if isinstance(p, (str, Path)) and Path(os.path.abspath(p)) in (state["dest"], state["dest"].parent):
            return Stat(st, device(p))
        return st

    def fake_replace(src, dst, *args, **kwargs):
        if device(src) != device(dst):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src), None, str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "stat", fake_stat)
    monkeypatch.setattr(os, "replace", fake_replace)
    return state


def test_staged_dir_at_a_mount_point_stages_inside(tmp_path, other_device):
    dest = tmp_path / "mnt"
    dest.mkdir()
    other_device["dest"] = dest
    (dest / "counts.csv").write_text("old")
    stage = StagedDir(dest)
    assert stage.tmp.parent == dest and re.fullmatch(rf"\.partial-{os.getpid()}-[a-z0-9_]{{8}}", stage.tmp.name)
    (stage.tmp / "counts.csv").write_text("new")
    (stage.tmp / "labels").mkdir()
    stage.commit()
    assert (dest / "counts.csv").read_text() == "new" and (dest / "labels").is_dir()
    assert partials(dest) == [] and partials(tmp_path) == []


def test_cross_device_rename_failing_keeps_the_old_outputs(tmp_path, other_device, monkeypatch):
    """What happened before the fix: staged beside a mount point, every rename fails (EXDEV)."""
    dest = tmp_path / "mnt"
    other_device["dest"] = dest  # dest does not exist yet: staged beside it, on the parent's device
    stage = StagedDir(dest)
    dest.mkdir()  # now "mounted": the commit's renames cross devices
    (dest / "counts.csv").write_text("old")
    (stage.tmp / "counts.csv").write_text("new")
    with pytest.raises(DevolensError, match="cannot write output: Invalid cross-device link"):
        stage.commit()
    assert (dest / "counts.csv").read_text() == "old"
    assert partials(tmp_path) == [] and partials(dest) == []


@pytest.mark.parametrize("exc", [OSError(errno.EIO, "Input/output error"), KeyboardInterrupt()])
def test_failed_commit_restores_everything(tmp_path, monkeypatch, exc):
    dest = tmp_path / "out"
    (dest / "labels").mkdir(parents=True)
    (dest / "labels" / "old.tif").write_text("old label")
    (dest / "counts.csv").write_text("old counts")
    stage = StagedDir(dest)
    (stage.tmp / "counts.csv").write_text("new counts")
    (stage.tmp / "labels").mkdir()
    (stage.tmp / "labels" / "new.tif").write_text("new label")
    (stage.tmp / "objects.csv").write_text("new objects")
    real_replace = os.replace

    def fake_replace(src, dst):
        if Path(src) == stage.tmp / "objects.csv":  # the last entry: counts.csv and labels already placed
            raise exc
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fake_replace)
    with pytest.raises(DevolensError if isinstance(exc, OSError) else KeyboardInterrupt):
        stage.commit()
    assert (dest / "counts.csv").read_text() == "old counts"
    assert os.listdir(dest / "labels") == ["old.tif"]
    assert sorted(os.listdir(dest)) == ["counts.csv", "labels"]
    assert partials(tmp_path) == []


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_staging_folders_of_dead_runs_are_removed(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    dest.mkdir()
    dead = dead_pid()
    live = os.getppid()

    def folder(path: Path) -> Path:
        path.mkdir()
        (path / "labels").mkdir()
        (path / "labels" / "x.tif").write_text("x")
        return path

    removed = [folder(tmp_path / f".out.partial-{dead}-abcd_123"), folder(dest / f".partial-{dead}-zz9y8x7w")]
    kept = [
        folder(tmp_path / f".out.partial-{live}-abcd_123"),  # a live process's run
        folder(tmp_path / f".out.partial-{os.getpid()}-abcd_123"),  # this process's (another StagedDir)
        folder(tmp_path / ".out.partial-abcd_123"),  # no pid: not ours to judge
        folder(tmp_path / f".out.partial-{dead}-abcd_123.bak"),  # not the exact pattern
        folder(tmp_path / f".other.partial-{dead}-abcd_123"),  # another output's
        folder(tmp_path / f"out.partial-{dead}-abcd_123"),  # not hidden
        folder(dest / f".out.partial-{dead}-abcd_123"),  # the sibling pattern, inside dest
    ]
    (tmp_path / f".out.partial-{dead}-filefile").write_text("a file, not a staging folder")
    kept.append(tmp_path / f".out.partial-{dead}-filefile")
    (tmp_path / f".out.partial-{dead}-linklink").symlink_to(dest, target_is_directory=True)
    kept.append(tmp_path / f".out.partial-{dead}-linklink")

    stage = StagedDir(dest)
    assert not any(p.exists() for p in removed)
    assert all(os.path.lexists(p) for p in kept)
    assert stage.tmp.exists()
    stage.abort()
    assert not stage.tmp.exists() and dest.is_dir()


def test_stale_removal_asks_the_system_about_each_pid(tmp_path, monkeypatch):
    """Only ProcessLookupError means dead; no permission to signal means alive."""
    dest = tmp_path / "out"
    for pid in (111111, 222222, 333333):
        (tmp_path / f".out.partial-{pid}-abcdefgh").mkdir()

    def fake_kill(pid, sig):
        assert sig == 0
        if pid == 111111:
            raise ProcessLookupError
        if pid == 222222:
            raise PermissionError

    monkeypatch.setattr(os, "kill", fake_kill)
    stage = StagedDir(dest)
    assert partials(tmp_path) == sorted([".out.partial-222222-abcdefgh", ".out.partial-333333-abcdefgh",
                                         stage.tmp.name])
    stage.abort()
