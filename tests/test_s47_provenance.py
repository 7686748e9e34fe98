"""Reproducibility after a walkthrough (forty-seventh session): a tile store's record keeps every write's command
line (``history``) and each source's file with its sha256 (``inputs``, ``label_inputs``); a render into its previous
folder refuses files of the user's own in its frames/; ``models show`` and ``models --json`` give the
``model_sha256`` the records hold; every record says its working directory and environment, and render.json's
``options.table`` is normalised."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile

from _lineage_builders import run_cli as run
from devolens.errors import DevolensError


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- 1. a tile store's record
def _well(folder: Path, name: str, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    image, labels = folder / f"{name}.tif", folder / f"{name}_labels.tif"
    tifffile.imwrite(image, rng.integers(0, 4000, (2, 32, 32), dtype=np.uint16))
    tifffile.imwrite(labels, rng.integers(0, 3, (32, 32), dtype=np.uint8))
    return image, labels


def test_a_tile_store_records_every_write_and_each_source_file(tmp_path, monkeypatch):
    from devolens.data.tiling import tile_to_h5

    monkeypatch.chdir(tmp_path)
    (tmp_path / "w").mkdir()
    a, la = _well(tmp_path / "w", "a", 1)
    b, lb = _well(tmp_path / "w", "b", 2)
    out = tmp_path / "tx.h5"
    tile_to_h5([Path("w/a.tif")], out, [Path("w/a_labels.tif")], tile=16, stride=16, keep="all", command="first")
    tile_to_h5([Path("w/b.tif")], out, [Path("w/b_labels.tif")], tile=16, stride=16, keep="all", append=True,
               command="second")
    with h5py.File(out) as f:
        attrs = dict(f.attrs)
    assert attrs["command"] == "second"  # (the last write's, as before)
    history = json.loads(attrs["history"])
    assert [h["command"] for h in history] == ["first", "second"]
    assert [h["sources"] for h in history] == [["a.tif"], ["b.tif"]]
    assert all(h["cwd"] == str(tmp_path) and h["environment"]["python"] for h in history)
    inputs, label_inputs = json.loads(attrs["inputs"]), json.loads(attrs["label_inputs"])
    assert [e["path"] for e in inputs] == [str(a), str(b)]  # absolute
    assert [e["sha256"] for e in inputs] == [sha256(a), sha256(b)]  # what sha256sum prints
    assert [e["bytes"] for e in inputs] == [a.stat().st_size, b.stat().st_size]
    assert [e["sha256"] for e in label_inputs] == [sha256(la), sha256(lb)]
    # source_digests still refuses the same pixels appended again
    with pytest.raises(DevolensError, match="already in the store"):
        tile_to_h5([a], out, [la], tile=16, stride=16, keep="all", append=True)


def test_a_store_of_before_keeps_its_last_command_first_in_its_history(tmp_path):
    from devolens.data.tiling import tile_to_h5

    a, la = _well(tmp_path, "a", 1)
    b, lb = _well(tmp_path, "b", 2)
    out = tmp_path / "old.h5"
    tile_to_h5([a], out, [la], tile=16, stride=16, keep="all", command="made")
    with h5py.File(out, "r+") as f:  # as a store written before the record
        for name in ("history", "inputs", "label_inputs"):
            del f.attrs[name]
    tile_to_h5([b], out, [lb], tile=16, stride=16, keep="all", append=True, command="added")
    with h5py.File(out) as f:
        history, inputs = json.loads(f.attrs["history"]), json.loads(f.attrs["inputs"])
    assert [h["command"] for h in history] == ["made", "added"]
    assert inputs[0] is None and inputs[1]["sha256"] == sha256(b)


# ----------------------------------------------------------------------------- 2. render's frames/ of the user's
def _previous_render(out: Path) -> Path:
    (out / "frames").mkdir(parents=True)
    (out / "labels").mkdir()
    (out / "render.json").write_text(json.dumps({"kind": "nuclei", "embryos": {}}))
    for name in ("frames/t060.png", "frames/sim1_t1000.png", "labels/t060_labels.tif", "frames/.DS_Store"):
        (out / name).write_bytes(b"x")
    return out


def test_a_render_folder_holding_the_users_files_in_frames_is_refused(tmp_path):
    from devolens.render.dataset import check_render_folder

    out = _previous_render(tmp_path / "r1")
    assert check_render_folder(out) == out  # its own files alone: replaced as before
    (out / "frames" / "my_notes.txt").write_text("keep")
    (out / "frames" / "t060_edited.png").write_bytes(b"x")
    with pytest.raises(DevolensError) as err:
        check_render_folder(out)
    assert str(err.value) == (f"{out / 'frames'} holds files devolens render did not write (my_notes.txt, "
                              "t060_edited.png): move them or give another --out")


def test_a_render_names_a_few_of_many_files_of_the_users(tmp_path):
    from devolens.render.dataset import check_render_folder

    out = _previous_render(tmp_path / "r1")
    for i in range(7):
        (out / "labels" / f"note{i}.txt").write_text("x")
    with pytest.raises(DevolensError, match=r"labels holds files .*\(note0.txt, .*note4.txt and 2 more\)"):
        check_render_folder(out)


def test_render_refuses_before_writing_and_keeps_the_users_files(tmp_path, capsys):
    table = tmp_path / "t.csv"
    pd.DataFrame({"time": [1, 1], "cell": ["ABa", "P1"], "x": [100.0, 200], "y": [100.0] * 2, "z": [10.0] * 2,
                  "size": [40.0] * 2}).to_csv(table, index=False)
    out = tmp_path / "r"
    args = ["render", str(table), "--out", str(out), "--size", "32", "48"]
    assert run(args, capsys)[0] == 0
    (out / "frames" / "my_notes.txt").write_text("keep")
    before = (out / "render.json").read_bytes()
    code, _, err = run(args, capsys)
    assert code == 2 and "my_notes.txt" in err and "move them or give another --out" in err
    assert (out / "frames" / "my_notes.txt").read_text() == "keep"
    assert (out / "render.json").read_bytes() == before


# ----------------------------------------------------------------------------- 3. models: model_sha256
def test_models_show_and_the_listing_give_the_records_model_sha256(capsys):
    from devolens.provenance import model_files, model_sha256

    code, out, _ = run(["models", "show", "nuclei", "--json"], capsys)
    assert code == 0
    files = json.loads(out)["files"]
    assert files["model_sha256"] == model_sha256("nuclei")
    folder, _ = model_files("nuclei")
    shown = {e["file"]: e["sha256"] for e in files["safetensors"]}
    assert shown == {p.name: sha256(p) for p in folder.glob("*.safetensors")}
    assert "size_model.safetensors" in shown
    code, out, _ = run(["models", "--json"], capsys)
    assert code == 0
    listed = {m["name"]: m["model_sha256"] for m in json.loads(out)["models"]}
    assert listed["nuclei"] == model_sha256("nuclei")
    code, out, _ = run(["models", "show", "nuclei"], capsys)
    assert code == 0 and model_sha256("nuclei") in out and sha256(folder / "size_model.safetensors") in out


# ----------------------------------------------------------------------------- 4. cwd, environment, options.table
def test_every_record_says_its_working_directory_and_environment(tmp_path, monkeypatch):
    from devolens.provenance import record_header, record_text

    monkeypatch.chdir(tmp_path)
    rec = json.loads(record_text({**record_header("devolens identify", "t.csv", "identity"), "x": 1}))
    assert list(rec)[:4] == ["command", "input", "model", "x"]  # (the header first, as before)
    assert rec["cwd"] == str(tmp_path)
    env = rec["environment"]
    assert env["python"].count(".") == 2 and env["numpy"] == np.__version__ and env["platform"]
    assert "cpu" in env
    kept = json.loads(record_text({"command": "x", "cwd": "/elsewhere"}))  # a record rewritten keeps its own
    assert kept["cwd"] == "/elsewhere"


def test_render_json_names_the_table_without_dots_and_its_working_directory(tmp_path, monkeypatch, capsys):
    (tmp_path / "va").mkdir()
    pd.DataFrame({"time": [1, 1], "cell": ["ABa", "P1"], "x": [100.0, 200], "y": [100.0] * 2, "z": [10.0] * 2,
                  "size": [40.0] * 2}).to_csv(tmp_path / "t.csv", index=False)
    monkeypatch.chdir(tmp_path / "va")
    assert run(["render", "../t.csv", "--out", "r", "--size", "32", "48"], capsys)[0] == 0
    rec = json.loads((tmp_path / "va" / "r" / "render.json").read_text())
    assert rec["options"]["table"] == str(tmp_path / "t.csv")
    assert rec["cwd"] == os.getcwd() == str(tmp_path / "va")
    assert rec["environment"]["numpy"] == np.__version__
