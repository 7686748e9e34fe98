"""Live/dead mends of the thirty-second session: the overlay drawn from the Hoechst channel kept as the well is read
(the well was read a second time for it), ``segment_livedead_file``'s options with a predictor given (they were
ignored), a card of the wrong class count loaded through ``devolens.models.load`` (torch's many-line error), and a
plate's wells written straight into its staged folder (each well was staged in a scratch folder of its own, then
moved and its tables copied)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import tifffile

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.models.zoo import ZOO_DIR
from devolens.predict import livedead as ld
from devolens.predict.tiled import RowReader


from _livedead_helpers import weights  # noqa: F401  (fixture)


def _write_well(path, seed, size=(72, 88)):
    from devolens.render.wells import simulate_well

    image = simulate_well(seed=seed, size=size, density=1500).image
    tifffile.imwrite(path, image, metadata={"axes": "CYX"})
    return image


def _run(weights, src, out, *extra):
    return main(["segment", "livedead", str(src), "--out", str(out), "--model", str(weights), "--window", "64",
                 "--overlap", "16", "--no-fast", *extra])


@pytest.fixture
def opened(monkeypatch):
    """How many times each file is opened as a well (RowReader)."""
    counts: dict[str, int] = {}
    real = RowReader.__init__

    def counting(self, path, *args, **kwargs):
        counts[str(path)] = counts.get(str(path), 0) + 1
        real(self, path, *args, **kwargs)

    monkeypatch.setattr(RowReader, "__init__", counting)
    return counts


# ------------------------------------------------------------------------------------- 1. the overlay: no second read
def test_the_overlay_reads_no_well_a_second_time(weights, tmp_path, opened, monkeypatch):
    import devolens.cli.tiles as tiles

    monkeypatch.setattr(tiles, "OVERLAY_SIDE", 40)  # (shrunk by 3, as a 4096-pixel side shrinks a giant well)
    image = _write_well(tmp_path / "w.tif", 1)
    assert _run(weights, tmp_path / "w.tif", tmp_path / "one") == 0
    # once checked before the model loads, once segmented: the overlay used to open it a third time
    assert opened == {str(tmp_path / "w.tif"): 2}
    plate = tmp_path / "plate"
    plate.mkdir()
    for name, seed in (("A1", 2), ("A2", 3)):
        _write_well(plate / f"{name}.tif", seed)
    opened.clear()
    assert _run(weights, plate, tmp_path / "res") == 0
    assert opened == {str(plate / "A1.tif"): 2, str(plate / "A2.tif"): 2}
    # the picture is the well's Hoechst channel, every 3rd row and column, as the second read made it
    from PIL import Image

    rgb = np.asarray(Image.open(tmp_path / "one" / "overlays" / "w_overlay.png").convert("RGB"))
    assert rgb.shape == (24, 30, 3)
    from devolens.cli.predict import _display_range, _display_uint8

    shrunk = image[0, ::3, ::3]
    grey = _display_uint8(shrunk, *_display_range(shrunk))
    off = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])  # off the outlines (green, magenta)
    assert off.mean() > 0.2 and np.array_equal(rgb[..., 0][off], grey[off])


def test_the_shrunk_hoechst_channel_is_kept_at_the_overlays_size(weights, tmp_path):
    """Every row of the well once, whatever the bands' overlap; memory: the shrunk image only."""
    image = _write_well(tmp_path / "w.tif", 4, (150, 70))
    pred = ld.LiveDeadPredictor.load(weights, window=32, overlap=8, fast=False)
    for side, step in ((40, 4), (200, 1), (75, 2)):
        shrunk = ld.ShrunkHoechst(side)
        pred.predict_file(tmp_path / "w.tif", tmp_path / f"o{side}", shrunk=shrunk)
        assert shrunk.step == step and max(shrunk.image.shape) <= side
        assert np.array_equal(shrunk.image, image[0, ::step, ::step])


# ------------------------------------------------------------------------------------- 2. options with a predictor
def test_segment_livedead_file_applies_the_options_given_with_a_predictor(weights, tmp_path):
    _write_well(tmp_path / "w.tif", 5)
    pred = ld.LiveDeadPredictor.load(weights, window=64, overlap=16, fast=False)
    own = ld.segment_livedead_file(tmp_path / "w.tif", tmp_path / "a", predictor=pred)
    assert own["live"] + own["dead"] > 0
    # min_area and window apply to this call (they were ignored), the predictor itself unchanged
    totals = []
    none = ld.segment_livedead_file(tmp_path / "w.tif", tmp_path / "b", predictor=pred, min_area=10 ** 6,
                                    window=32, progress=lambda done, total: totals.append(total))
    assert none["live"] + none["dead"] == 0 and totals[-1] > 4  # 32-pixel windows: more than 64-pixel ones
    assert (pred.min_area, pred.window) == (12, 64)
    assert ld.segment_livedead_file(tmp_path / "w.tif", tmp_path / "c", predictor=pred) == own
    # the network's own options, given as it was loaded, are fine; others are refused, in one line
    ld.segment_livedead_file(tmp_path / "w.tif", tmp_path / "d", predictor=pred, fast=False, precision="auto",
                             device="cpu")
    ld.segment_livedead_file(tmp_path / "w.tif", tmp_path / "d", predictor=pred, precision=pred.precision)
    for wrong, word in (({"fast": True}, "fast=True"), ({"precision": "bf16"}, "precision='bf16'")):
        with pytest.raises(DevolensError, match="differs from the predictor given") as err:
            ld.segment_livedead_file(tmp_path / "w.tif", tmp_path / "e", predictor=pred, **wrong)
        assert word in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "e").exists()


# ------------------------------------------------------------------------------------- 3. a card of 7 classes
@pytest.mark.skipif(not (ZOO_DIR / "livedead" / "weights.safetensors").is_file(), reason="livedead weights not shipped")
def test_a_livedead_card_of_seven_classes_is_one_line_through_models_load(tmp_path):
    from devolens.models import load

    folder = tmp_path / "mine"
    shutil.copytree(ZOO_DIR / "livedead", folder)
    card = json.loads((folder / "card.json").read_text())
    card["architecture"]["classes"] = 7
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(DevolensError) as err:
        load(folder)  # (segment livedead --model checked the card; the Python API went on to the weights)
    text = str(err.value)
    assert "\n" not in text and "7 output classes" in text and "a live/dead model has 3" in text
    assert "card.json" in text


# ------------------------------------------------------------------------------------- 4. a plate staged once
def test_a_plates_wells_are_written_straight_into_its_staged_folder(weights, tmp_path, monkeypatch):
    plate = tmp_path / "plate"
    plate.mkdir()
    for name, seed in (("A1", 6), ("B1", 7)):
        _write_well(plate / f"{name}.tif", seed)
    assert _run(weights, plate / "B1.tif", tmp_path / "one") == 0

    def staged_again(*args, **kwargs):  # predict_file stages a well's files on its own
        raise AssertionError("a plate's well went through predict_file (a scratch folder, then moved and copied)")

    monkeypatch.setattr(ld.LiveDeadPredictor, "predict_file", staged_again)
    assert _run(weights, plate, tmp_path / "res", "--probabilities") == 0
    res = tmp_path / "res"
    assert sorted(p.name for p in res.iterdir()) == ["counts.csv", "labels", "livedead.json", "objects.csv",
                                                     "overlays", "probs"]
    assert not [p for p in res.rglob(".*")] and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # the tables' rows are the bytes the well's own run writes, one header
    one = (tmp_path / "one" / "objects.csv").read_text().splitlines()
    rows = (res / "objects.csv").read_text().splitlines()
    assert rows[0] == one[0] and rows.count(one[0]) == 1 and [r for r in rows if r.startswith("B1,")] == one[1:]
    counts = pd.read_csv(res / "counts.csv")
    assert list(counts["well"]) == ["A1", "B1"]
    assert (res / "counts.csv").read_text().splitlines()[2] == (tmp_path / "one" / "counts.csv").read_text() \
        .splitlines()[1]
    assert np.array_equal(tifffile.imread(res / "labels" / "B1_labels.tif"),
                          tifffile.imread(tmp_path / "one" / "labels.tif"))
