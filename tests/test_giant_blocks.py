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
        self.postprocess_options: dict = {}

    def _finish(self, probs, shape, options=None):
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
    blocks.segment_blocks(_StubPredictor(), _squares(300, 300), progress=lambda done, total: seen.append(done / total))
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
def test_blocks_find_the_objects_of_the_whole_image(monkeypatch):
    from devolens.models import load
    from devolens.train.metrics import instance_scores
    from test_predict_sizing import _estimates_once

    _estimates_once(monkeypatch)  # the diameter's check (a note) estimates the one image once for both predictors

    well = _well()
    image = well.image[0]
    # a small network tile makes blocks of a small image (the block's side follows the tile); the diameter is
    # about the one the first size model read in this well (8.6 px; 13.7 px since its crowded-field head; true median
    # 11.7 px): where the network is sure of
    # its objects (F1 0.96). Where it is not (at 11 px: F1 0.85-0.87, some nuclei split), such objects flip with a
    # block's context and the two results agree less (F1 0.92 instead of 0.98; twenty-second session's network)
    whole = load("nuclei", diameter=8, tile=256, block_pixels=float("inf")).predict(image)
    pred = load("nuclei", diameter=8, tile=256, block_pixels=100_000)
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
    tifffile.imwrite(src, _well(900).image[0])
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--diameter", "none"]) == 0
    text = " ".join(capsys.readouterr().err.split())
    assert "overlapping blocks" in text and "900x900" in text
    lab = tifffile.imread(out / "labels" / "well_labels.tif")
    assert lab.shape == (900, 900) and lab.dtype == np.uint16
    obj = pd.read_csv(out / "objects.csv")
    counts = pd.read_csv(out / "counts.csv")
    assert int(counts["count"][0]) == len(obj) == int(lab.max())
    if len(obj):
        assert list(obj["label"]) == list(range(1, len(obj) + 1))
        np.testing.assert_array_equal(np.bincount(lab.ravel(), minlength=len(obj) + 1)[1:], obj["area"])
    assert (out / "overlays" / "well_overlay.png").is_file()


def test_specks_are_judged_against_the_whole_image():
    """Small isolated objects are specks against the whole image's median object (a block's own median dropped
    small isolated nuclei next to big ones); small objects touching another stay."""
    lab = np.zeros((200, 200), np.uint16)
    k = 0
    for y in range(10, 190, 30):  # 24 big objects, 10x10
        for x in range(10, 130, 30):
            k += 1
            lab[y:y + 10, x:x + 10] = k
    lab[20:22, 160:162] = 25  # small and alone
    lab[20:22, 12:14] = 26  # small, right under big object 1 (rows 10-19)
    objects = {key: np.asarray(v) for key, v in object_arrays(lab).items()}
    gone = blocks._specks(lab, objects, 0.25, gap=2)
    assert set(objects["label"][gone].tolist()) == {25}


def test_blocks_run_without_the_speck_step_and_keep_their_settings():
    pred = _StubPredictor()
    seen = []
    finish = pred._finish
    pred._finish = lambda probs, shape, options=None: (seen.append(dict(options or {})), finish(probs, shape))[1]
    pred.postprocess_options = {"isolated_fraction": 0.25}
    img = _squares(400, 400)
    res = blocks.segment_blocks(pred, img)
    assert seen and all(o.get("isolated_fraction") == 0.0 for o in seen)
    assert res.count == len(range(1, 397, 5)) ** 2  # equal squares: none is a speck
    pred.network.scale = 0.5  # a later image's diameter estimate: this result's probability is as it was
    np.testing.assert_array_equal(res.probability > 0.5, img > 0)


def test_nan_padding_counts_as_the_lowest_value_in_the_limits():
    img = 1000 + np.random.default_rng(0).random((600, 600), np.float32) * 100
    img[250:300, 250:300] = 3000  # something bright
    img[:, 360:] = np.nan  # stitching padding
    pred = _StubPredictor()
    pred.network.percentiles = (1.0, 99.8)
    run = blocks._Run(pred, img)
    run.limits_pass(lambda: None)
    lo, hi = run.limits
    assert 1000 <= lo < 1010 and hi > 1100  # a block of padding alone read as 0 before


def test_nuclei_mask_is_the_labels_without_running_the_blocks_again():
    pred = _StubPredictor()
    pred.mask_is_labels = True
    res = blocks.segment_blocks(pred, _squares(300, 300))
    calls = len(pred.network.seen)
    np.testing.assert_array_equal(res.mask, res.labels > 0)
    assert len(pred.network.seen) == calls


def test_the_channel_of_a_colour_giant_image_is_chosen_once():
    rgb = np.zeros((300, 300, 3), np.uint8)
    rgb[..., 1] = _squares(300, 300, pitch=20, side=12) // 5  # green nuclei
    rgb[:100, :100, 0] = 40  # a dim red corner: a block there alone might pick red
    assert blocks._channel(rgb, "auto") == "green"
    assert blocks._channel(rgb, "red") == "red" and blocks._channel(rgb[..., 1], "auto") == "auto"
    grey3 = np.repeat(_squares(100, 100)[..., None] // 5, 3, axis=2).astype(np.uint8)
    assert blocks._channel(grey3, "auto") == "green"


def test_a_two_channel_giant_image_is_refused_clearly():
    from devolens.errors import DevolensError

    with pytest.raises(DevolensError, match="HxW or HxWx3"):
        blocks.segment_blocks(_StubPredictor(), np.zeros((300, 300, 2), np.uint8))


def test_overlay_outlines_every_side_of_a_nucleus(monkeypatch):
    """Each nucleus is outlined on all four sides (its own outermost pixels, as skimage's inner boundaries): the
    right and bottom edges were dropped when only the left and upper neighbours were compared."""
    from skimage.segmentation import find_boundaries

    from devolens.cli import predict as cli_predict

    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (2100, 90), dtype=np.uint8)
    lab = np.zeros(img.shape, np.uint16)
    lab[10:20, 10:30] = 1
    lab[10:20, 30:40] = 2  # touching 1 on its right
    lab[1015:1040, 50:70] = 3  # across the first band's edge (1024)
    lab[1000:1024, 5:25] = 4  # ends on the band's last row
    lab[0:5, 80:90] = 5  # at the image's edges
    colour = (255, 0, 255)
    want = find_boundaries(lab, mode="inner", connectivity=1)
    for big in (cli_predict._BIG_OVERLAY, 1000):  # whole, and in bands of 1024 rows
        monkeypatch.setattr(cli_predict, "_BIG_OVERLAY", big)
        drawn = (cli_predict._overlay(img, lab, colour) == colour).all(axis=2)  # a grey pixel is never magenta
        np.testing.assert_array_equal(drawn, want)
        assert drawn[19, 12] and drawn[15, 29] and drawn[1039, 60] and drawn[1023, 10]  # bottom and right edges
