"""Giant images segmented block by block (devolens.predict.blocks): every object once, whole, numbered
1..N, the same objects as the whole-image path, uint32 labels past 65535 objects, the CLI's note."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tifffile

from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.predict import blocks
from devolens.predict.postprocess import object_arrays


def test_block_grid_tiles_the_image_once():
    cores = blocks.block_grid(1000, 2300, 400)
    cover = np.zeros((1000, 2300), int)
    for y0, y1, x0, x1 in cores:
        assert 0 < y1 - y0 <= 400 and 0 < x1 - x0 <= 400
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()
    assert blocks.block_grid(10, 10, 400) == [(0, 10, 0, 10)]


def test_goes_by_blocks_counts_working_pixels():
    assert not blocks.goes_by_blocks((3000, 3000), 1.0)
    assert blocks.goes_by_blocks((3100, 3100), 1.0)
    assert not blocks.goes_by_blocks((6000, 6000), 0.5)  # 3000 x 3000 working pixels
    assert blocks.goes_by_blocks((6000, 6000, 3), 0.6)
    assert not blocks.goes_by_blocks((100, 100), 1.0, limit=float("inf"))
    assert not blocks.goes_by_blocks((5,), 1.0)


class _StubNetwork:
    """The parts of an ImageNetwork that segment_blocks uses; 'probabilities' = the prepared image."""

    def __init__(self):
        self.scale, self.tile, self.overlap, self.multiple = 1.0, 64, 16, 8
        self.flatten, self.outliers, self.percentiles, self.channel = 0.0, 0.0, (0.0, 100.0), "auto"
        self.seen: list[tuple[int, int]] = []

    def probabilities_working(self, prepared):
        self.seen.append(prepared[0].shape)
        return [p[None] for p in prepared]


class _StubPredictor:
    """Objects = connected bright components of the block (what a segmentation predictor's _finish gives)."""

    def __init__(self):
        self.network = _StubNetwork()
        self.card_scale, self.diameter_ref = 1.0, 4.0

    def _finish(self, probs, shape):
        import cv2

        from devolens.predict.segment import SegmentationResult

        n, lab = cv2.connectedComponents((probs[0] > 0.5).astype(np.uint8), connectivity=4)
        lab = lab.astype(np.uint32 if n > 65535 else np.uint16)
        return SegmentationResult(probability=probs[0], labels=lab, centroids=object_arrays(lab))


def _squares(height, width, pitch=5, side=3):
    img = np.zeros((height, width), np.uint16)
    for y in range(1, height - side, pitch):
        for x in range(1, width - side, pitch):
            img[y:y + side, x:x + side] = 1000
    return img


def _check_consistent(res, image_shape):
    """Labels numbered 1..N, the table's areas and centroids those of the label image."""
    lab = res.labels
    assert lab.shape == image_shape
    obj = res.objects
    n = res.count
    assert list(obj["label"]) == list(range(1, n + 1))
    assert int(lab.max()) == n
    counts = np.bincount(lab.ravel().astype(np.intp), minlength=n + 1)[1:]
    np.testing.assert_array_equal(counts, obj["area"])
    assert (counts > 0).all()
    mine = object_arrays(lab)
    np.testing.assert_allclose(mine["x"], obj["x"], atol=0.51)
    np.testing.assert_allclose(mine["y"], obj["y"], atol=0.51)


def test_segment_blocks_keeps_each_object_once_and_whole():
    img = _squares(700, 900)
    pred = _StubPredictor()
    res = blocks.segment_blocks(pred, img)
    truth = len(range(1, 700 - 3, 5)) * len(range(1, 900 - 3, 5))
    assert res.extra["blocks"] > 4 and res.count == truth
    _check_consistent(res, img.shape)
    assert (res.objects["area"] == 9).all()  # whole squares, none cut at a block's edge
    assert res.labels.dtype == np.uint16
    # every block ran with its margin of context (crop larger than the core inside the image)
    assert max(s[0] for s in pred.network.seen) > pred.network.tile
    # probability and mask assembled again, block by block, at the input size
    assert res.probability.shape == img.shape and res.mask.shape == img.shape
    np.testing.assert_array_equal(res.probability > 0.5, img > 0)


def test_segment_blocks_uint32_past_65535_objects():
    img = _squares(1310, 1310)  # 262 x 262 = 68644 squares
    res = blocks.segment_blocks(_StubPredictor(), img)
    assert res.count == len(range(1, 1310 - 3, 5)) ** 2 == 68644
    assert res.labels.dtype == np.uint32
    _check_consistent(res, img.shape)


def test_progress_reaches_one():
    seen = []
    blocks.segment_blocks(_StubPredictor(), _squares(300, 300), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0) and len(seen) > 2


def test_uint_labels_and_label_tiff_past_uint16(tmp_path):
    from devolens.io.images import write_label_tif
    from devolens.predict.segment import _uint_labels

    assert _uint_labels(np.array([[0, 65535]], np.int32)).dtype == np.uint16
    assert _uint_labels(np.array([[0, 65536]], np.int32)).dtype == np.uint32
    lab = np.array([[0, 70000], [3, 65536]], np.uint32)
    write_label_tif(lab, tmp_path / "x.tif")
    back = tifffile.imread(tmp_path / "x.tif")
    assert back.dtype == np.uint32 and (back == lab).all()
    write_label_tif(lab.astype(np.int64) % 60000, tmp_path / "y.tif")
    assert tifffile.imread(tmp_path / "y.tif").dtype == np.uint16
    with pytest.raises(ValueError):
        write_label_tif(np.array([[-1]]), tmp_path / "z.tif")


def test_overlay_in_bands_is_the_same_picture(monkeypatch):
    from devolens.cli import predict as cli_predict

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (2500, 300), dtype=np.uint8)
    lab = np.zeros(img.shape, np.uint16)
    lab[1000:1050, 10:60] = 1  # across the first band's edge (1024)
    lab[2040:2100, 100:150] = 2  # across the second
    whole = cli_predict._overlay(img, lab)
    monkeypatch.setattr(cli_predict, "_BIG_OVERLAY", 1000)
    np.testing.assert_array_equal(cli_predict._overlay(img, lab), whole)


def _well(size=640, seed=2):
    from devolens.render.wells import simulate_well

    return simulate_well(seed=seed, size=(size, size), density=1500, dead_fraction=0.1)


@pytest.mark.skipif(not shipped("nuclei"), reason="needs the shipped nuclei model")
def test_blocks_find_the_objects_of_the_whole_image():
    from devolens.models import load
    from devolens.train.metrics import instance_scores

    well = _well()
    image = well.image[0]
    # a small network tile makes blocks of a small image (the block's side follows the tile)
    whole = load("nuclei", diameter=11, tile=256, block_pixels=float("inf")).predict(image)
    pred = load("nuclei", diameter=11, tile=256, block_pixels=100_000)
    res = pred.predict(image)
    assert res.extra["blocks"] >= 4 and "blocks" not in whole.extra
    _check_consistent(res, image.shape)
    agree = instance_scores(res.labels.astype(np.int64), whole.labels.astype(np.int64))
    assert agree["f1"] > 0.97
    truth = well.instances.astype(np.int64)
    f_blocks = instance_scores(res.labels.astype(np.int64), truth)["f1"]
    f_whole = instance_scores(whole.labels.astype(np.int64), truth)["f1"]
    assert f_blocks > 0.85 and f_blocks > f_whole - 0.02


def test_cli_segments_a_giant_image_by_blocks(tiny_zoo, tmp_path, monkeypatch, capsys):
    from devolens.cli import main

    monkeypatch.setattr(blocks, "BLOCK_PIXELS", 20_000)
    src = tmp_path / "well.tif"
    tifffile.imwrite(src, _well(400).image[0])
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--diameter", "none"]) == 0
    text = " ".join(capsys.readouterr().err.split())
    assert "overlapping blocks" in text and "400x400" in text
    lab = tifffile.imread(out / "labels" / "well_labels.tif")
    assert lab.shape == (400, 400) and lab.dtype == np.uint16
    obj = pd.read_csv(out / "objects.csv")
    counts = pd.read_csv(out / "counts.csv")
    assert int(counts["count"][0]) == len(obj) == int(lab.max())
    if len(obj):
        assert list(obj["label"]) == list(range(1, len(obj) + 1))
        np.testing.assert_array_equal(np.bincount(lab.ravel(), minlength=len(obj) + 1)[1:], obj["area"])
    assert (out / "overlays" / "well_overlay.png").is_file()
