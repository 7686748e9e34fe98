"""Session 41: a path beginning with a ``~`` the shell did not expand (quoted, or after ``=``) is refused with where
the shell would have taken it, before a folder named ``~`` is made (a trap for ``rm -rf ~``)."""

from __future__ import annotations

import os

from devolens.cli import main


def test_an_out_after_equals_with_a_tilde_is_refused_before_any_folder_is_made(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "t.csv").write_text("time,cell,x,y,z\n1,ABa,1,2,3\n")
    assert main(["lineage", "populations", "t.csv", "--out=~/p.csv"]) == 2
    err = capsys.readouterr().err
    assert f"give the path as {tmp_path / 'home' / 'p.csv'}" in err and "Traceback" not in err
    assert not os.path.lexists(tmp_path / "~")


def test_an_input_with_a_tilde_names_where_the_shell_would_have_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    import numpy as np
    import imageio.v2 as iio

    iio.imwrite(tmp_path / "frame.png", np.zeros((32, 32), np.uint8))
    assert main(["segment", "nuclei", "~/frame.png", "--out", "o"]) == 2
    assert f"give the path as {tmp_path / 'frame.png'}" in capsys.readouterr().err


def test_an_input_with_a_tilde_that_is_nowhere_gets_no_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert main(["segment", "nuclei", "~/frame.png", "--out", "o"]) == 2
    assert "the shell did not expand" not in capsys.readouterr().err  # (no path to point at)
