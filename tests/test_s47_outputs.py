"""Outputs (forty-seventh session, m6): a rerun of ``segment`` into an earlier --out refuses files of the user's own in
its labels/ and overlays/ (a label image corrected by hand beside the originals was deleted silently), as ``segment
livedead`` does in its folders; the note on a run that found nothing says when ``--min-size`` dropped every object;
membrane's --out help speaks of cells and lists segment.json and curation.csv; docs/outputs.md's join of segment's
tables to ``curate frames``' report works for frames named 001.png and emb1_t001.ome.tif."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _render_helpers import blob_frame
from _zoo_helpers import shipped
from devolens.cli import main

ROOT = Path(__file__).resolve().parents[1]

needs_nuclei = pytest.mark.skipif(not shipped("nuclei"), reason="the nuclei model's weights are not shipped")
needs_membrane = pytest.mark.skipif(not shipped("membrane"), reason="the membrane model's weights are not shipped")


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _image(path: Path, seed: int = 0) -> Path:
    from devolens.io.images import write_png

    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(blob_frame((128, 160), n=12, radius=8, margin=10, background=20.0, seed=seed).astype(np.uint8), path)
    return path


def _earlier_run(out: Path, frames: list[str], labels: list[str], overlays: list[str] = (),
                 counts: bool = True) -> Path:
    """An earlier segment run's --out, made by hand: segment.json, counts.csv naming ``frames``, and the files."""
    (out / "labels").mkdir(parents=True)
    (out / "segment.json").write_text(json.dumps({"command": "devolens segment nuclei in --out o", "kind": "nuclei", "model": "nuclei"}))
    if counts:
        (out / "counts.csv").write_text("frame,count\n" + "".join(f"{f},3\n" for f in frames))
    for name in labels:
        (out / "labels" / name).write_bytes(b"x")
    if overlays:
        (out / "overlays").mkdir()
        for name in overlays:
            (out / "overlays" / name).write_bytes(b"x")
    return out


# ------------------------------------------------------------------------- 1: files of one's own in labels/
@needs_nuclei
def test_a_rerun_refuses_files_of_ones_own_in_labels_and_keeps_them(tmp_path, capsys):
    out = tmp_path / "s_reuse"
    assert main(["-q", "segment", "nuclei", str(_image(tmp_path / "a.png")), "--out", str(out)]) == 0
    labels = out / "labels"
    (labels / "a_labels_corrected.tif").write_bytes((labels / "a_labels.tif").read_bytes())
    (labels / "my_manual_edit.txt").write_text("hi")
    (labels / ".DS_Store").write_bytes(b"")  # (a file browser's: not the user's work)
    before = sorted(p.name for p in out.rglob("*"))
    capsys.readouterr()
    assert main(["-q", "segment", "nuclei", str(_image(tmp_path / "b.png", 1)), "--out", str(out)]) == 2
    err = _err(capsys)
    assert "labels/a_labels_corrected.tif, labels/my_manual_edit.txt that devolens segment did not write" in err
    assert "replaces labels/ whole" in err and "move them out of --out or give another --out" in err
    assert ".DS_Store" not in err
    assert sorted(p.name for p in out.rglob("*")) == before  # nothing written, nothing removed
    # moved out: the rerun replaces labels/ whole
    (labels / "a_labels_corrected.tif").unlink()
    (labels / "my_manual_edit.txt").unlink()
    assert main(["-q", "segment", "nuclei", str(_image(tmp_path / "b.png", 1)), "--out", str(out)]) == 0
    assert sorted(p.name for p in labels.iterdir()) == ["b_labels.tif"]


@pytest.mark.parametrize("kind", ["nuclei", "membrane"])
def test_foreign_files_are_named_few_and_counted(tmp_path, capsys, kind):
    """Refused before the model is read: an earlier run's record and tables made by hand. A name of segment's
    pattern that is no frame of the earlier run (t1_corrected_labels.tif) is the user's too; over 3 are counted."""
    out = _earlier_run(tmp_path / "o", ["t1", "t2"], ["t1_labels.tif", "t2_labels.tif", "t1_corrected_labels.tif",
                                                      "notes.txt"], ["t1_overlay.png", "t2_overlay.png", "mine.png"])
    (out / "labels" / "sub").mkdir()
    (out / "segment.json").write_text(json.dumps({"command": f"devolens segment {kind} in --out o", "kind": kind}))
    assert main(["segment", kind, str(_image(tmp_path / "in.png")), "--out", str(out)]) == 2
    err = _err(capsys)
    assert ("--out holds labels/notes.txt, labels/sub, labels/t1_corrected_labels.tif and 1 more that devolens "
            "segment did not write") in err
    assert "replaces labels/ and overlays/ whole" in err
    assert (out / "overlays" / "mine.png").exists()


def test_an_earlier_runs_own_files_pass(tmp_path):
    from devolens.cli.predict import _foreign_segment_files

    out = _earlier_run(tmp_path / "o", ["001", "a.tif", "emb1_t001"],
                       ["001_labels.tif", "a.tif_labels.tif", "emb1_t001_labels.tif"], ["001_overlay.png"])
    assert _foreign_segment_files(out) == []
    # a video's frames (counts.csv: positions; labels: the stem and the position in five digits)
    video = _earlier_run(tmp_path / "v", ["0", "1"], ["movie_f00000_labels.tif", "movie_f00001_labels.tif",
                                                      "movie_f00002_labels.tif"])
    assert _foreign_segment_files(video) == ["labels/movie_f00002_labels.tif"]
    # counts.csv gone: the naming pattern alone
    loose = _earlier_run(tmp_path / "l", [], ["x_labels.tif", "x_labels_corrected.tif"], counts=False)
    assert _foreign_segment_files(loose) == ["labels/x_labels_corrected.tif"]


def test_livedead_refuses_files_of_ones_own_in_its_folders(tmp_path):
    from devolens.cli.tiles import LIVEDEAD_RECORD, _check_livedead_out
    from devolens.errors import DevolensError

    out = tmp_path / "plate_out"
    (out / "labels").mkdir(parents=True)
    (out / LIVEDEAD_RECORD).write_text(json.dumps({"command": "devolens segment livedead A1.tif --out o"}))
    (out / "counts.csv").write_text("well,live,dead,fraction_dead\nA1,3,1,0.25\n")
    (out / "labels" / "A1_labels.tif").write_bytes(b"x")
    well = tmp_path / "A2.tif"
    well.write_bytes(b"x")
    _check_livedead_out(out, well)  # the earlier run's own: replaced
    (out / "labels" / "A1_labels_fixed.tif").write_bytes(b"x")
    with pytest.raises(DevolensError, match="labels/A1_labels_fixed.tif that devolens segment livedead did not"):
        _check_livedead_out(out, well)


# ---------------------------------------------------------------------- 2: --min-size dropped every object
@pytest.mark.parametrize("kind,what", [
    pytest.param("nuclei", "nuclei", marks=needs_nuclei), pytest.param("membrane", "cells", marks=needs_membrane)])
def test_the_nothing_found_note_names_min_size(tmp_path, capsys, kind, what):
    out = tmp_path / "s_x"
    assert main(["segment", kind, str(_image(tmp_path / "a.png")), "--out", str(out), "--min-size", "1e9"]) == 0
    said = capsys.readouterr()
    err = " ".join((said.out + said.err).split())
    assert f"note: no {what} kept in any frame: --min-size 1e+09 dropped all" in err
    assert "an empty or saturated image" not in err
    record = json.loads((out / "segment.json").read_text())
    assert any("--min-size 1e+09 dropped all" in n for n in record["notes"])


def test_the_nothing_found_note_without_drops_is_as_before():
    from devolens.cli.predict import _nothing_found_note

    assert "an empty or saturated image" in _nothing_found_note("cells", {"min_size": 50.0, "min_size_dropped": 0})
    one = _nothing_found_note("nuclei", {"min_size": 50.0, "min_size_dropped": 1})
    assert "--min-size 50 dropped the one nucleus found" in one


# ------------------------------------------------------------------------------------- 3: --out's help
def _out_help(kind: str) -> str:
    import typer

    from devolens.cli import app

    group = typer.main.get_command(app).commands["segment"]
    option = next(p for p in group.commands[kind].params if "--out" in p.opts)
    return " ".join(option.help.split())


def test_out_help_speaks_of_the_commands_objects_and_lists_every_output():
    membrane, nuclei = _out_help("membrane"), _out_help("nuclei")
    assert "count: the cells seen in the 2-D slice" in membrane and "nuclei seen" not in membrane
    assert "count: the nuclei seen in the 2-D frame" in nuclei
    for text in (membrane, nuclei):
        assert "segment.json" in text and "--skip-flagged auto, curation.csv" in text
        assert "labels/, probs/ and overlays/ whole: files of your own in those" in text


# -------------------------------------------------------------------- 4: docs/outputs.md's join recipe
def _recipe() -> str:
    text = (ROOT / "docs" / "outputs.md").read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", text.split("## Joining the tables")[1], re.S).group(1)


@needs_nuclei
def test_the_documented_join_works_for_numbered_and_ome_tiff_frames(tmp_path, monkeypatch):
    import tifffile

    folder = tmp_path / "fold"
    _image(folder / "001.png")
    _image(folder / "010.png", 1)
    tifffile.imwrite(folder / "emb1_t003.ome.tif", blob_frame((128, 160), n=12, radius=8, margin=10,
                                                                background=20.0, seed=2).astype(np.uint8))
    assert main(["-q", "curate", "frames", str(folder), "--out", str(tmp_path / "report.csv")]) == 0
    assert main(["-q", "segment", "nuclei", str(folder), "--out", str(tmp_path / "seg")]) == 0
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(_recipe(), scope)
    joined = scope["joined"]
    assert sorted(joined["file"]) == ["001.png", "010.png", "emb1_t003.ome.tif"]
    assert sorted(joined["frame"]) == ["001", "010", "emb1_t003"]
    # the old recipe left the OME-TIFF out (its stem kept .ome)
    counts = pd.read_csv(tmp_path / "seg" / "counts.csv")
    report = pd.read_csv(tmp_path / "report.csv")
    old = counts.merge(report.assign(stem=report["file"].str.rsplit(".", n=1).str[0]).drop(columns="frame"),
                       left_on="frame", right_on="stem")
    assert sorted(old["file"]) == ["001.png", "010.png"]
