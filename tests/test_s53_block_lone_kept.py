"""Giant images segmented block by block keep the speck guard of the whole-image path and now say so: a lone small
object in an image of fewer than the card's ``isolated_min_objects`` objects is kept, its area in
``extra["isolated_kept"]`` (the ``segment nuclei`` note on lone small objects kept reads it), as a whole image's
result has it; in an image of that many objects it is dropped, in ``extra["isolated_dropped"]``, as before."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from _zoo_helpers import shipped
from test_giant_blocks import _StubPredictor

from devolens.predict import blocks


def _field() -> np.ndarray:
    """70 squares of 8x8 px on a grid in the left two thirds, and one lone 2x2 px object far from them."""
    img = np.zeros((300, 300), np.uint16)
    for y in range(5, 300, 30):
        for x in range(5, 200, 30):
            img[y:y + 8, x:x + 8] = 1000
    img[150:152, 260:262] = 1000
    return img


def _segmented(among: int):
    pred = _StubPredictor()
    pred.drops_specks = True  # (as the nuclei predictor: its card's speck step runs on the whole image at the end)
    pred.postprocess_options = {"isolated_fraction": 0.25, "isolated_min_objects": among}
    return blocks.segment_blocks(pred, _field())


@pytest.mark.parametrize("among", [72, 100])
def test_a_field_of_fewer_objects_keeps_its_lone_small_one_and_says_so(among):
    res = _segmented(among)
    assert res.extra["blocks"] > 1 and res.count == 71
    assert res.extra["isolated_kept"].tolist() == [4] and "isolated_dropped" not in res.extra
    assert res.labels[150, 260] > 0


@pytest.mark.parametrize("among", [0, 71])
def test_a_field_of_that_many_objects_drops_it(among):
    res = _segmented(among)
    assert res.count == 70 and res.extra["isolated_dropped"].tolist() == [4] and "isolated_kept" not in res.extra
    assert res.labels[150, 260] == 0 and int(res.labels.max()) == 70


def test_no_lone_small_object_no_record():
    pred = _StubPredictor()
    pred.drops_specks = True
    pred.postprocess_options = {"isolated_fraction": 0.25, "isolated_min_objects": 100}
    img = _field()
    img[150:152, 260:262] = 0
    res = blocks.segment_blocks(pred, img)
    assert res.count == 70 and "isolated_kept" not in res.extra and "isolated_dropped" not in res.extra


@pytest.mark.skipif(not shipped("nuclei"), reason="needs the shipped nuclei model")
def test_segment_nuclei_notes_a_giant_images_kept_lone_nuclei(tmp_path, monkeypatch, capsys):
    """The command's note on lone small nuclei kept, for an image segmented block by block (25 large nuclei and small
    ones between them: under 100 objects, so none is dropped as a speck)."""
    from test_s48_giant_nuclei import _nuclei

    from devolens.cli import main

    monkeypatch.setattr(blocks, "BLOCK_PIXELS", 10_000)
    src = tmp_path / "giant.tif"
    tifffile.imwrite(src, _nuclei(side=320))
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--diameter", "26", "--no-overlay"]) == 0
    text = " ".join(capsys.readouterr().err.split())
    assert "overlapping block" in text  # (the block path ran)
    assert "lone small nuclei of about" in text and "were kept" in text and "--min-size AREA" in text
    record = json.loads((out / "segment.json").read_text())
    assert any("lone small nuclei" in n and "were kept" in n for n in record["notes"])  # (the record keeps the note)
    assert (out / "counts.csv").read_text().splitlines()[1] == "giant,29"
