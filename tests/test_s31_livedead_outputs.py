"""``devolens segment livedead``: a folder of wells (a plate) in one run, the tables' ``well`` column, and the
overlays the livedead card tells users to check.

A shell loop over wells into one --out kept only the last well (each run replaced labels.tif, objects.csv and
counts.csv, which said nothing of the well), and a folder was refused as 'Is a directory'; the card's "check the
overlay of a few wells" named an output the command did not write."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image

from devolens.cli import main


from _livedead_helpers import weights  # noqa: F401  (fixture)


def _write_well(path, seed, size=(72, 88)):
    from devolens.render.wells import simulate_well

    tifffile.imwrite(path, simulate_well(seed=seed, size=size, density=1500).image, metadata={"axes": "CYX"})
    return path


@pytest.fixture
def plate(tmp_path):
    """Wells A2, A10 and B1 (natural order: A2 before A10), of different sizes, and a file that is no image."""
    folder = tmp_path / "plate"
    folder.mkdir()
    for name, seed, size in (("A10", 1, (72, 88)), ("A2", 2, (64, 96)), ("B1", 3, (80, 72))):
        _write_well(folder / f"{name}.tif", seed, size)
    (folder / "truth.json").write_text("{}")
    return folder


def _run(weights, src, out, *extra):
    return main(["segment", "livedead", str(src), "--out", str(out), "--model", str(weights), "--window", "64",
                 "--overlap", "16", "--no-fast", *extra])


def _outlines(png, colour):
    return np.all(np.asarray(Image.open(png).convert("RGB")) == colour, axis=-1)


# ------------------------------------------------------------------------------------- a plate in one run
def test_a_folder_of_wells_is_segmented_well_by_well_into_one_result(weights, plate, tmp_path, capsys):
    out = tmp_path / "res"
    assert _run(weights, plate, out, "--probabilities") == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"wrote {out}: 3 wells" in err
    wells = ["A2", "A10", "B1"]
    assert sorted(p.name for p in out.iterdir()) == ["counts.csv", "labels", "livedead.json", "objects.csv",
                                                     "overlays", "probs"]
    assert sorted(p.name for p in (out / "labels").iterdir()) == sorted(f"{w}_labels.tif" for w in wells)
    assert sorted(p.name for p in (out / "probs").iterdir()) == sorted(f"{w}_probs.tif" for w in wells)
    assert sorted(p.name for p in (out / "overlays").iterdir()) == sorted(f"{w}_overlay.png" for w in wells)
    counts = pd.read_csv(out / "counts.csv")
    assert list(counts.columns) == ["well", "live", "dead", "fraction_dead"]
    assert list(counts["well"]) == wells  # one row per well, in natural order
    objects = pd.read_csv(out / "objects.csv")
    assert list(objects.columns) == ["well", "id", "x", "y", "area", "class"]
    for row in counts.itertuples():
        mine = objects[objects["well"] == row.well]
        assert (row.live, row.dead) == (int((mine["class"] == 1).sum()), int((mine["class"] == 2).sum()))
        labels = tifffile.imread(out / "labels" / f"{row.well}_labels.tif")
        assert labels.shape == tifffile.imread(plate / f"{row.well}.tif").shape[1:]
        assert tifffile.imread(out / "probs" / f"{row.well}_probs.tif").shape == (3, *labels.shape)
        assert Image.open(out / "overlays" / f"{row.well}_overlay.png").size == labels.shape[::-1]
    assert counts["live"].sum() + counts["dead"].sum() > 0
    record = json.loads((out / "livedead.json").read_text())
    assert [w["well"] for w in record["wells"]] == wells and [w["file"] for w in record["wells"]][0] == "A2.tif"
    assert record["counts"]["live"] == counts["live"].sum() and record["options"]["overlay"] is True
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left

    # each well's results are those of the well segmented on its own
    one = tmp_path / "one"
    assert _run(weights, plate / "A10.tif", one) == 0
    assert np.array_equal(tifffile.imread(one / "labels.tif"), tifffile.imread(out / "labels" / "A10_labels.tif"))
    single = pd.read_csv(one / "counts.csv")
    assert list(single.columns) == ["well", "live", "dead", "fraction_dead"]  # one well: the same schema
    assert single.iloc[0].tolist() == counts[counts["well"] == "A10"].iloc[0].tolist()
    assert (pd.read_csv(one / "objects.csv").values == objects[objects["well"] == "A10"].values).all()


def test_a_failing_well_leaves_the_previous_result_whole(weights, plate, tmp_path, monkeypatch, capsys):
    import devolens.predict.livedead as ld

    out = tmp_path / "res"
    assert _run(weights, plate, out) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real, calls = ld.LiveDeadPredictor.predict_into, []

    def fails_on_the_third(self, image, labels, **kw):  # (a plate's wells are written straight into its stage)
        calls.append(image)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(self, image, labels, **kw)

    monkeypatch.setattr(ld.LiveDeadPredictor, "predict_into", fails_on_the_third)
    assert _run(weights, plate, out) != 0
    assert len(calls) == 3
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_file_of_the_folder_that_is_no_well_is_refused_before_anything(weights, plate, tmp_path, capsys):
    tifffile.imwrite(plate / "C1.tif", np.zeros((3, 32, 32), np.uint16))  # three channels
    out = tmp_path / "res"
    # the wells are checked before the model is loaded: the error is the file's, not the missing model's
    assert main(["segment", "livedead", str(plate), "--out", str(out), "--model", "no-such-model"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "C1.tif" in err and "move this one out" in err and "no-such-model" not in err
    assert not out.exists()


def test_a_folder_without_wells_and_dataset_with_a_folder_are_refused(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no wells")
    assert main(["segment", "livedead", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "no well images" in capsys.readouterr().err
    assert main(["segment", "livedead", str(empty), "--out", str(tmp_path / "o"), "--dataset", "raw"]) == 2
    assert "--dataset names the dataset of one HDF5 well" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_wells_sharing_a_stem_keep_their_whole_names(weights, tmp_path):
    folder = tmp_path / "plate"
    folder.mkdir()
    _write_well(folder / "A1.tif", 1)
    _write_well(folder / "A1.ome.tif", 2)  # (.ome.tif's stem is A1 too: one A1_labels.tif would hold both)
    assert _run(weights, folder, tmp_path / "res") == 0
    assert sorted(p.name for p in (tmp_path / "res" / "labels").iterdir()) == ["A1.ome.tif_labels.tif",
                                                                               "A1.tif_labels.tif"]
    assert sorted(pd.read_csv(tmp_path / "res" / "counts.csv")["well"]) == ["A1.ome.tif", "A1.tif"]


# ------------------------------------------------------------------------------------- --out of other results
def test_an_out_of_other_results_is_refused_and_an_earlier_run_is_replaced_whole(weights, plate, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "objects.csv").write_text("x,y\n1,2\n")  # not written by segment livedead (no livedead.json)
    assert _run(weights, plate, mine) == 2
    assert "already holds objects.csv that devolens segment livedead did not write" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["objects.csv"]
    # a plate's result replaced by one well's: its labels/, probs/ and other wells' overlays go
    out = tmp_path / "res"
    assert _run(weights, plate, out, "--probabilities") == 0
    assert _run(weights, plate / "B1.tif", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["counts.csv", "labels.tif", "livedead.json", "objects.csv",
                                                     "overlays"]
    assert [p.name for p in (out / "overlays").iterdir()] == ["B1_overlay.png"]
    # an input inside an entry the run replaces is refused
    assert _run(weights, out / "overlays", tmp_path / "res") == 2
    assert "output would overwrite the input (overlays in --out)" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- overlays
def test_the_overlay_outlines_live_nuclei_green_and_dead_magenta(tmp_path):
    from devolens.cli.tiles import DEAD_COLOUR, LIVE_COLOUR, _livedead_overlay
    from devolens.predict.livedead import ShrunkHoechst
    from devolens.predict.tiled import TiffRowWriter

    image = np.zeros((2, 40, 60), np.uint16)
    image[0] = np.arange(60, dtype=np.uint16)[None] * 100  # a Hoechst ramp: shown stretched, grey
    tifffile.imwrite(tmp_path / "w.tif", image, metadata={"axes": "CYX"})
    classes = np.zeros((40, 60), np.uint8)
    classes[5:15, 5:15] = 1
    classes[20:30, 30:45] = 2
    writer = TiffRowWriter(tmp_path / "l.tif", classes.shape, np.uint8)
    writer.write(0, classes)
    writer.close()
    png = tmp_path / "o" / "w_overlay.png"
    shrunk = ShrunkHoechst(4096)  # (kept as the well is read for its segmentation: here, all at once)
    shrunk.start(40, 60)
    shrunk.add(0, image[0], np.ones(40, bool))
    assert _livedead_overlay(shrunk, tmp_path / "l.tif", png) is None
    rgb = np.asarray(Image.open(png).convert("RGB"))
    assert rgb.shape == (40, 60, 3)

    def ring(mask):
        inner = np.zeros_like(mask)
        inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
        return mask & ~inner

    assert np.array_equal(_outlines(png, LIVE_COLOUR), ring(classes == 1))
    assert np.array_equal(_outlines(png, DEAD_COLOUR), ring(classes == 2))
    rest = ~(ring(classes == 1) | ring(classes == 2))
    grey = rgb[rest]
    assert (grey[:, 0] == grey[:, 1]).all() and (grey[:, 1] == grey[:, 2]).all()
    assert grey[:, 0].min() == 0 and grey[:, 0].max() == 255  # percentile-stretched


def test_a_giant_wells_overlay_is_shrunk_with_a_note(weights, tmp_path, monkeypatch, capsys):
    import devolens.cli.tiles as tiles

    monkeypatch.setattr(tiles, "OVERLAY_SIDE", 40)  # (a 4096-pixel side stands in for 40)
    well = _write_well(tmp_path / "big.tif", 4, (72, 88))
    out = tmp_path / "res"
    assert _run(weights, well, out) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "note: overlays/big_overlay.png: drawn at 1/3 of the well's size (30 x 24 px of 88 x 72)" in err
    assert Image.open(out / "overlays" / "big_overlay.png").size == (30, 24)
    record = json.loads((out / "livedead.json").read_text())
    assert any("drawn at 1/3" in n for n in record["wells"][0]["notes"])
    assert tifffile.imread(out / "labels.tif").shape == (72, 88)  # the labels stay at full size


def test_no_overlay_writes_none(weights, tmp_path):
    well = _write_well(tmp_path / "w.tif", 5)
    assert _run(weights, well, tmp_path / "res", "--no-overlay") == 0
    assert not (tmp_path / "res" / "overlays").exists()
    assert json.loads((tmp_path / "res" / "livedead.json").read_text())["options"]["overlay"] is False
