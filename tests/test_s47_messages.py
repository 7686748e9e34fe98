"""Session 47 mends of messages:

* an unrecognised table's message says which of the columns it needs were found and which are missing, before the
  names accepted;
* an unknown option that is a file's name beginning with '-' (``-dash.png``) says to give it as ``./-dash.png``;
* a folder without images says which hidden files (``._t1.png``, ``.DS_Store``) it skipped;
* ``tile make`` given a folder says to give its image files; ``segment livedead`` given a folder of subfolders names
  them, as ``segment nuclei`` does;
* identify's record keeps every option under ``options``, ``mirror`` included when not given.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from _lineage_builders import run_cli
from devolens.errors import DevolensError


# ----------------------------------------------------------------------------- 1. the columns found and missing
def test_an_unrecognised_table_says_what_was_found_and_what_is_missing(tmp_path, capsys):
    src = tmp_path / "w.csv"
    src.write_text("T,Cell,PosX,PosY\n1,ABa,1,2\n")
    code, _, err = run_cli(["lineage", "populations", str(src), "--out", str(tmp_path / "x.csv")], capsys)
    assert code == 2
    assert "unrecognised columns (expected" in err  # (the message's start, as before)
    assert ("found Cell,PosX,PosY,T): found time (T) and cell (Cell); missing x, y and z: the columns read are "
            in err)
    assert not (tmp_path / "x.csv").exists()


def test_positions_missing_columns_are_said_without_cell(tmp_path):
    from devolens.io.tables import read_positions, read_table

    src = tmp_path / "p.csv"
    src.write_text("t,PosX,PosY\n1,1,2\n")
    with pytest.raises(DevolensError, match=r"found time \(t\); missing x, y and z: the columns read"):
        read_positions(src)
    src.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DevolensError, match=r"unrecognised columns \(expected .*; found a,b,c\): the columns read"):
        read_table(src)


# ----------------------------------------------------------------------------- 2. a file named -dash.png
def test_a_file_whose_name_begins_with_a_dash_is_said(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-dash.png").write_bytes(b"")
    code, _, err = run_cli(["segment", "nuclei", "-dash.png", "--out", "x"], capsys)
    assert code == 2
    assert err.startswith("error: No such option: -d; a file whose name begins with '-'? give it as ./-dash.png")
    # not there, but named as an image: said too; an option that names no file: not
    code, _, err = run_cli(["segment", "nuclei", "--out", "x", "-gone.tif"], capsys)
    assert "give it as ./-gone.tif" in err
    code, _, err = run_cli(["segment", "nuclei", "x.png", "--out", "x", "-k"], capsys)
    assert code == 2 and "No such option: -k" in err and "begins with '-'" not in err


# ----------------------------------------------------------------------------- 3. hidden files skipped
def test_a_folder_of_hidden_files_says_it_skipped_them(tmp_path):
    from devolens.io.frames import iter_path_frames

    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "._t1.png").write_bytes(b"\0\5\26\7")
    (folder / ".DS_Store").write_bytes(b"\0")
    with pytest.raises(DevolensError, match=r"in this folder \(2 hidden files skipped: ") as err:
        iter_path_frames(folder)
    assert "._t1.png" in str(err.value) and ".DS_Store" in str(err.value)
    empty = tmp_path / "e"
    empty.mkdir()
    with pytest.raises(DevolensError) as err:
        iter_path_frames(empty)
    assert "hidden files skipped" not in str(err.value)


# ----------------------------------------------------------------------------- 4. tile make, segment livedead
def test_tile_make_given_a_folder_says_to_give_its_files(tmp_path, capsys):
    folder = tmp_path / "wells"
    folder.mkdir()
    (folder / "w1.TIF").write_bytes(b"")
    code, _, err = run_cli(["tile", "make", str(folder), "--out", str(tmp_path / "s.h5")], capsys)
    assert code == 2
    assert f"a folder, not an image file: give the image files it holds (e.g. {folder / '*.TIF'})" in err
    assert "Is a directory" not in err and not (tmp_path / "s.h5").exists()
    labels = tmp_path / "labels"
    labels.mkdir()
    (tmp_path / "w1.tif").write_bytes(b"")
    code, _, err = run_cli(["tile", "make", str(tmp_path / "w1.tif"), "--labels", str(labels), "--out",
                            str(tmp_path / "s.h5")], capsys)
    assert code == 2 and f"(e.g. {labels / '*.tif'})" in err


def test_segment_livedead_names_the_subfolders_of_a_folder_without_wells(tmp_path, capsys):
    folder = tmp_path / "plate"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    code, _, err = run_cli(["segment", "livedead", str(folder), "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert "no well images in this folder" in err and "it holds 2 subfolders: a, b (give one of them)" in err


# ----------------------------------------------------------------------------- 5. identify's record
def test_identify_records_every_option_mirror_included(tmp_path, monkeypatch):
    import devolens.provenance as provenance
    from devolens.cli.identify import _identify_record
    from devolens.models import zoo

    monkeypatch.setattr(zoo, "weights_sha256", lambda model: "0" * 64)
    monkeypatch.setattr(provenance, "model_sha256", lambda model: "1" * 64)
    predictor = SimpleNamespace(tta=3, smooth="lineage", orient="auto")
    rec = json.loads(_identify_record(tmp_path / "t.csv", tmp_path / "o.csv", "identity", predictor, zscale={},
                                      notes=[]))
    assert rec["options"] == {"tta": 3, "smooth": "lineage", "threads": None, "mirror": False, "orient": "auto"}
    assert list(rec["options"]) == ["tta", "smooth", "threads", "mirror", "orient"]
    predictor.orient = "skewness"
    rec = json.loads(_identify_record(tmp_path / "t.csv", tmp_path / "o.csv", "identity", predictor, zscale={},
                                      notes=[], threads=2, mirror=True))
    assert rec["options"] == {"tta": 3, "smooth": "lineage", "threads": 2, "mirror": True, "orient": "skewness"}
