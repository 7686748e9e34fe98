"""Tiled inference: seamless blending, equality with untiled inference, files, CLI, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.predict.livedead import LiveDeadPredictor, extract_objects
from devolens.predict.tiled import (RowReader, TiffRowWriter, predict_tiled, predict_tiled_array, ramp_weights,
                                    window_starts)


def test_ramps_of_neighbours_sum_to_one():
    window, overlap, margin = 64, 24, 6
    a = ramp_weights(window, overlap, margin, True, False)
    b = ramp_weights(window, overlap, margin, False, True)
    step = window - overlap
    total = np.zeros(window + step)
    total[:window] += a
    total[step:] += b
    assert np.allclose(total, 1.0)
    assert np.all(a[-margin:] == 0) and np.all(b[:margin] == 0)


def test_window_starts_cover():
    for length in (1, 50, 64, 65, 300, 1001):
        s = window_starts(length, 64, 16)
        assert s[0] == 0 and s[-1] + 64 >= length and all(b - a <= 48 for a, b in zip(s, s[1:]))


@pytest.mark.parametrize("shape,window,overlap", [((2, 300, 500), 128, 32), ((3, 97, 411), 64, 16),
                                                  ((1, 40, 50), 64, 16), ((2, 257, 129), 96, 0)])
def test_identity_model_reproduces_input(shape, window, overlap):
    img = np.random.default_rng(1).random(shape).astype(np.float32)
    out = predict_tiled_array(img, lambda b: b, n_out=shape[0], window=window, overlap=overlap, multiple=8)
    assert np.allclose(out, img, atol=1e-6)


def test_weights_sum_correctly_and_rows_arrive_in_order():
    h, w = 333, 270
    ones = np.ones((1, h, w), np.float32)
    seen = []

    def sink(y0, rows):
        seen.append((y0, rows.shape[1]))
        assert np.allclose(rows, 1.0)  # blended constant stays constant: weights normalised

    predict_tiled(ones, lambda b: b, sink, n_out=1, window=96, overlap=32, multiple=8)
    ys = [s[0] for s in seen]
    assert ys == sorted(ys) and ys[0] == 0 and sum(s[1] for s in seen) == h
    assert all(a + n == b for (a, n), (b, _) in zip(seen, seen[1:]))


def small_convnet(channels=2, out=3):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(channels, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, out, 3, padding=1)).eval()


def test_tiled_equals_untiled_where_defined():
    """A 3-layer 3x3 CNN (receptive radius 3 px) with margin >= 3: tiled == whole image."""
    net = small_convnet()
    img = np.random.default_rng(2).random((2, 230, 310)).astype(np.float32)

    def fn(b):
        with torch.no_grad():
            return net(torch.from_numpy(b)).numpy()

    whole = fn(img[None])[0]
    tiled = predict_tiled_array(img, fn, n_out=3, window=64, overlap=16, margin=4, multiple=8)
    assert np.allclose(tiled, whole, atol=1e-5)


def test_row_reader_and_writer_roundtrip(tmp_path):
    img = np.random.default_rng(3).integers(0, 60000, (2, 70, 90), dtype=np.uint16)
    p = tmp_path / "img.tif"
    tifffile.imwrite(p, img)
    with RowReader(p) as r:
        assert r.shape == (2, 70, 90)
        assert np.array_equal(r[:, 13:51, :], img[:, 13:51])
    q = tmp_path / "yxc.tif"
    tifffile.imwrite(q, np.moveaxis(img, 0, -1), photometric="minisblack", planarconfig="contig")
    with RowReader(q) as r:
        assert r.shape == (2, 70, 90) and np.array_equal(r[:, 5:9, :], img[:, 5:9])
    out = tmp_path / "out.tif"
    with TiffRowWriter(out, (2, 70, 90), np.uint16) as wtr:
        for y0 in range(0, 70, 16):
            wtr.write(y0, img[:, y0:y0 + 16])
    assert np.array_equal(tifffile.imread(out), img)
    with pytest.raises(DevolensError, match="channels"):
        RowReader(p, channels=3)
    big = tmp_path / "big_endian.tif"  # Fiji saves big-endian TIFFs: the same counts, read without a warning
    tifffile.imwrite(big, img, byteorder=">")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with RowReader(big) as r:
            band = r[:, 13:51, :]
    assert band.dtype == np.uint16 and np.array_equal(band, img[:, 13:51])


def test_extract_objects_bandwise_equals_whole():
    lab = np.zeros((300, 200), np.uint8)
    rng = np.random.default_rng(4)
    for _ in range(60):
        y, x = rng.integers(5, 295), rng.integers(5, 195)
        lab[y - 3:y + 4, x - 2:x + 3] = rng.integers(1, 3)
    whole = extract_objects(lab, band=10_000)
    bands = extract_objects(lab, band=37, margin=20)
    pd.testing.assert_frame_equal(whole, bands)
    assert set(whole["class"]) <= {1, 2} and whole["area"].sum() == (lab > 0).sum()


class ChannelModel(torch.nn.Module):
    """Logits that make 'dead' where Draq7 is bright, 'live' where only Hoechst is."""

    def forward(self, x):
        h, d = x[:, :1], x[:, 1:2]
        return torch.cat([torch.full_like(h, 0.55), h, d + 0.1 * h], 1) * 20


def test_predictor_in_memory_and_file_agree(tmp_path):
    from devolens.render.wells import simulate_well

    well = simulate_well(seed=7, size=(200, 300), density=800, dead_fraction=0.5)
    pred = LiveDeadPredictor(ChannelModel(), window=128, overlap=32, fast=False, min_area=4)
    res = pred.predict(well.image)
    assert res.labels.shape == (200, 300) and res.probabilities.shape == (3, 200, 300)
    assert np.allclose(res.probabilities.sum(0), 1.0, atol=1e-5)
    img_path = tmp_path / "w.tif"
    tifffile.imwrite(img_path, well.image)
    counts = pred.predict_file(img_path, tmp_path / "out")
    labels = tifffile.imread(tmp_path / "out" / "labels.tif")
    assert np.array_equal(labels, res.labels)
    objs = pd.read_csv(tmp_path / "out" / "objects.csv")
    assert list(objs.columns) == ["id", "x", "y", "area", "class"] and len(objs) == len(res.objects)
    c = pd.read_csv(tmp_path / "out" / "counts.csv")
    assert list(c.columns) == ["live", "dead", "fraction_dead"]
    assert counts == res.counts and int(c["live"][0]) == counts["live"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["counts.csv", "labels.tif", "objects.csv"]


def test_tiled_unet_matches_untiled_interior():
    """A real U-Net (receptive field larger than the margin): tiled and whole-image
    predictions agree on most pixels (exact agreement is only defined for models whose
    receptive field fits in the margin)."""
    from devolens.models.architectures import build_model

    torch.manual_seed(0)
    net = build_model("unet", "resnet18", in_channels=2, classes=3, encoder_depth=3,
                      decoder_channels=(16, 8, 4)).eval()
    pred = LiveDeadPredictor(net, window=128, overlap=64, fast=False, card={"architecture": {"encoder_depth": 3}})
    img = np.random.default_rng(5).integers(0, 4000, (2, 256, 256), dtype=np.uint16)
    tiled = pred.predict(img).probabilities
    whole = pred.predict_windows(img[None])[0]
    assert np.mean(np.abs(tiled - whole) < 0.05) > 0.9


def _save_tiny_model(tmp_path):
    from devolens.models.architectures import build_model, save_model

    torch.manual_seed(0)
    net = build_model("unet", "resnet18", in_channels=2, classes=3, encoder_depth=3, decoder_channels=(16, 8, 4))
    return save_model(net, tmp_path / "m.safetensors", {"task": "livedead"}, fp16=True)


def test_cli_segment_livedead(tmp_path):
    from devolens.render.wells import simulate_well

    weights = _save_tiny_model(tmp_path)
    well = simulate_well(seed=8, size=(150, 170))
    img = tmp_path / "w.tif"
    tifffile.imwrite(img, well.image)
    out = tmp_path / "res"
    code = main(["segment", "livedead", str(img), "--out", str(out), "--model", str(weights), "--window", "64",
                 "--overlap", "16"])
    assert code == 0
    assert tifffile.imread(out / "labels.tif").shape == (150, 170)
    assert (out / "objects.csv").exists() and (out / "counts.csv").exists()


@pytest.mark.parametrize("case", ["channels", "missing", "not_tiff", "cut_short"])
def test_cli_segment_bad_input(tmp_path, case, capsys):
    weights = _save_tiny_model(tmp_path)
    img = tmp_path / "w.tif"
    if case == "channels":
        tifffile.imwrite(img, np.zeros((3, 64, 64), np.uint16))
    elif case == "not_tiff":
        img.write_text("hello")
    elif case == "cut_short":  # an interrupted copy: the header promises more pixels than the file holds
        tifffile.imwrite(img, np.ones((2, 64, 64), np.uint16))
        img.write_bytes(img.read_bytes()[: img.stat().st_size * 6 // 10])
    out = tmp_path / "res"
    code = main(["segment", "livedead", str(img), "--out", str(out), "--model", str(weights)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    assert case != "cut_short" or "cut short" in err
    assert not out.exists()


def test_row_reader_converts_a_float_image_as_a_whole(tmp_path):
    """A float TIFF of camera counts with a dark band (values 0/1 only there): the band keeps its counts (it was
    scaled x65535 as a [0, 1] image, the decision made band by band), and whole counts convert without the
    8-bit/stretched-export warning; a [0, 1] float image is still scaled, with the warning."""
    import warnings

    import tifffile

    from devolens.predict.tiled import RowReader

    rng = np.random.default_rng(0)
    img = rng.integers(100, 5000, (2, 600, 300)).astype(np.float32)
    img[:, :300] = rng.integers(0, 2, (2, 300, 300))
    tifffile.imwrite(tmp_path / "counts.tif", img, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "unit.tif", img / 65535, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "int32.tif", img.astype(np.int32), metadata={"axes": "CYX"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("counts.tif", "int32.tif"):
            with RowReader(tmp_path / name) as r:
                assert np.array_equal(np.concatenate([r.rows(0, 256), r.rows(256, 600)], axis=1), img)
    with pytest.warns(UserWarning, match="not uint16; converted"), RowReader(tmp_path / "unit.tif") as r:
        assert np.abs(r.rows(0, 600).astype(np.int64) - img).max() <= 1
