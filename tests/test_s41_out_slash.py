"""Session 41: an --out typed with a trailing slash (a folder's name) for a command that writes a file is refused:
``lineage convert t.csv --out nd/`` wrote a file named ``nd`` (a Path drops the slash)."""

from __future__ import annotations

from devolens.cli import main


def _table(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("time,cell,x,y,z\n1,ABa,1,2,3\n1,P1,4,5,6\n")
    return path


def test_a_file_out_typed_as_a_folder_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = _table(tmp_path)
    for command in (["lineage", "convert", str(table)], ["lineage", "populations", str(table)]):
        assert main(command + ["--out", "nd/"]) == 2
        err = capsys.readouterr().err
        assert "--out nd/ ends in a slash" in err and "Traceback" not in err
        assert not (tmp_path / "nd").exists()


def test_a_file_out_without_a_slash_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["lineage", "convert", str(_table(tmp_path)), "--out=nd.csv"]) == 0
    assert (tmp_path / "nd.csv").is_file()


def test_simulate_embryo_refuses_an_out_typed_as_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "embryo", "--cells", "8", "--out", "emb/"]) == 2
    assert "--out emb/ ends in a slash" in capsys.readouterr().err and not (tmp_path / "emb").exists()
