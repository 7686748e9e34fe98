"""Command lines that do not parse are one ``error:`` line (``grep '^error:'`` finds them in a pipeline's log) with
the command's ``--help`` to see, exit code 2; a damaged TIFF given to ``tile make`` is one line too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from devolens.cli import main


def run(argv, capsys):
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def one_line(err: str) -> str:
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert "╭" not in err and "Usage:" not in err
    return err[len("error: "):-1]


def test_missing_option(tmp_path, capsys):
    code, _, err = run(["segment", "nuclei", tmp_path], capsys)
    assert code == 2
    assert one_line(err) == "Missing option '--out' / '-o' (see devolens segment nuclei --help)"


def test_missing_argument(capsys):
    code, _, err = run(["lineage", "populations"], capsys)
    assert code == 2 and "Missing argument" in one_line(err) and "(see devolens lineage populations --help)" in err


def test_misspelt_command(capsys):
    code, _, err = run(["segment", "nucle", "x"], capsys)
    assert code == 2
    assert one_line(err) == "No such command 'nucle'. Did you mean 'nuclei'? (see devolens segment --help)"
    code, _, err = run(["segmnt"], capsys)
    assert code == 2 and one_line(err).endswith("(see devolens --help)")


def test_unknown_option(tmp_path, capsys):
    code, _, err = run(["segment", "nuclei", tmp_path, "--outt", "x"], capsys)
    assert code == 2 and "--outt" in one_line(err) and err.rstrip().endswith("(see devolens segment nuclei --help)")


def test_extra_arguments_from_a_glob_say_one_input_and_a_folder(tmp_path, capsys, monkeypatch):
    """`devolens segment nuclei few/*.png --out x`: the shell gives one argument per file."""
    monkeypatch.chdir(tmp_path)
    Path("few").mkdir()
    files = []
    for name in ("a.png", "b.png", "c.png"):
        Path("few", name).write_bytes(b"")
        files.append(f"few/{name}")
    code, _, err = run(["segment", "nuclei", *files, "--out", "x"], capsys)
    line = one_line(err)
    assert code == 2
    assert line.startswith("got extra arguments (few/b.png few/c.png): devolens segment nuclei takes one INPUT")
    assert "give the folder that holds them instead" in line and line.endswith("(see devolens segment nuclei --help)")
    assert not (tmp_path / "x").exists()


def test_extra_arguments_many_are_cut(tmp_path, capsys):
    files = [tmp_path / f"frame_{k:04d}.png" for k in range(200)]
    code, _, err = run(["population", *files, "--out", tmp_path / "p.csv"], capsys)
    line = one_line(err)
    assert code == 2 and "..." in line and len(line) < 600 and "takes one INPUT" in line


def test_extra_arguments_of_a_command_without_folders(capsys):
    code, _, err = run(["models", "show", "a", "b"], capsys)
    line = one_line(err)
    assert code == 2 and line == "got extra arguments (b): devolens models show takes one NAME (see devolens models show --help)"


def test_bad_value_in_a_command_is_one_line(tmp_path, capsys):
    code, _, err = run(["simulate", "well", "--size", "3x4", "--out", tmp_path / "a.tif", "--labels",
                        tmp_path / "b.tif"], capsys)
    assert code == 2 and "at least 8x8 pixels" in one_line(err) and "(see devolens simulate well --help)" in err


def test_unreadable_input_is_one_line(tmp_path, capsys, monkeypatch):
    """A chmod 600 file of another user: typer's own check says it is not readable."""
    img = tmp_path / "img.tif"
    img.write_bytes(b"II*\0")
    if os.geteuid() == 0:  # root reads everything: the check is asked as another user would be answered
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == img and mode & os.R_OK
                            else real(p, mode, *a, **k))
    else:
        img.chmod(0)
    code, _, err = run(["segment", "nuclei", img, "--out", tmp_path / "o"], capsys)
    line = one_line(err)
    assert code == 2 and "not readable" in line and line.endswith("(see devolens segment nuclei --help)")


def test_no_command_still_prints_the_help(capsys):
    code, out, err = run([], capsys)
    assert code == 2 and "Usage" in out + err and "error:" not in err


def test_help_and_version_exit_0(capsys):
    code, out, _ = run(["segment", "nuclei", "--help"], capsys)
    assert code == 0 and "--out" in out
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("devolens ")


def devolens_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("devolens")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from devolens.cli import run; run()"]


def test_usage_error_in_a_real_process(tmp_path):
    res = subprocess.run(devolens_cmd() + ["segment", "nuclei", str(tmp_path)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 2
    assert res.stderr == "error: Missing option '--out' / '-o' (see devolens segment nuclei --help)\n"


def test_tile_make_damaged_tiff_is_one_line(tmp_path):
    """tifffile logged '<tifffile.TiffPages @8> invalid page offset' on the terminal before the error line."""
    good = tmp_path / "well.tif"
    tifffile.imwrite(good, np.arange(2 * 64 * 64, dtype=np.uint16).reshape(2, 64, 64), photometric="minisblack",
                     metadata={"axes": "CYX"})
    data = good.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    bad = tmp_path / "bad.tif"
    bad.write_bytes(data[:4] + b"\xff\xff\xff\x7f" + data[8:])  # the first page's offset past the end
    for path in (cut, bad):
        res = subprocess.run(devolens_cmd() + ["tile", "make", str(path), "--keep", "all", "--tile", "16",
                                               "--out", str(tmp_path / "t.h5")], capture_output=True, text=True,
                             timeout=300)
        assert res.returncode == 2
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
        assert "tifffile" not in res.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.tif", "cut.tif", "well.tif"]
    assert "damaged or truncated TIFF (invalid offset to first page" in res.stderr
