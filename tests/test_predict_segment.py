"""Segmentation predictors: input-sized outputs for any size and channel layout, batching,
streaming, tiling; the shipped nuclei/membrane models when present."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from _zoo_helpers import shipped, tiny_network, tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError
from devolens.predict.segment import MembranePredictor, NucleiPredictor, SegmentationResult


def _tiny(classes: int = 3):
    return tiny_network(classes)


def _blobs(shape, n=6, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape[:2], np.float32)
    for _ in range(n):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0)
    img = (np.clip(img, 0, 1) * 200).astype(np.uint8)
    if len(shape) == 3:
        out = np.zeros(shape, np.uint8)
        out[..., min(1, shape[2] - 1)] = img
        return out
    return img


@pytest.mark.parametrize("shape,scale", [((37, 53), 0.5), ((64, 64), 1.0), ((101, 77, 3), 0.5), ((33, 47, 3), 1.0),
                                         ((50, 61, 1), 0.5)])
def test_nuclei_outputs_have_input_size(shape, scale):
    pred = NucleiPredictor(_tiny(), scale=scale, batch_size=2)
    res = pred.predict(_blobs(shape))
    assert isinstance(res, SegmentationResult)
    assert res.probability.shape == shape[:2] and res.probability.dtype == np.float32
    assert res.labels.shape == shape[:2] and res.labels.dtype == np.uint16
    assert 0.0 <= res.probability.min() and res.probability.max() <= 1.0
    assert list(res.centroids.columns) == ["label", "x", "y", "area", "mean_intensity"]
    assert res.count == len(np.unique(res.labels)) - (1 if (res.labels == 0).any() else 0)


@pytest.mark.parametrize("fast", [True, False])
def test_predict_batch_matches_single_and_mixed_sizes(fast):
    pred = NucleiPredictor(_tiny(), scale=1.0, batch_size=3, fast=fast)
    imgs = [_blobs((40, 56), seed=1), _blobs((40, 56, 3), seed=2), _blobs((31, 45), seed=3), _blobs((40, 56), seed=4)]
    batch = pred.predict_batch(imgs)
    assert [r.labels.shape for r in batch] == [i.shape[:2] for i in imgs]
    single = pred.predict(imgs[2])
    tol = 0.05 if fast else 1e-4  # bf16 autocast is not bit-exact across batch compositions
    assert np.abs(single.probability - batch[2].probability).max() < tol


def test_fast_path_close_to_fp32():
    model = _tiny()
    img = _blobs((64, 96))
    slow = NucleiPredictor(model, fast=False).predict(img).probability
    fast = NucleiPredictor(_tiny(), fast=True).predict(img).probability
    assert np.abs(slow - fast).mean() < 0.02


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_predict_iter_is_lazy_and_bounded(workers):
    bs = 2
    pred = NucleiPredictor(_tiny(), batch_size=bs)
    pulled = []

    def gen():
        for i in range(40):
            pulled.append(i)
            yield _blobs((32, 40), seed=i)

    in_flight = []
    results = []
    for res in pred.predict_iter(gen(), workers=workers):
        results.append(res)
        in_flight.append(len(pulled) - len(results))
    assert len(results) == 40 and len(pulled) == 40
    assert max(in_flight) <= 4 * bs  # a few batches in the pipeline, never the whole stream
    assert in_flight[0] < 40


def test_pipelined_results_equal_sequential_in_order():
    pred = NucleiPredictor(_tiny(), batch_size=3, fast=False)
    imgs = [_blobs((40, 56), n=4 + i % 5, seed=i) for i in range(11)]
    seq = list(pred.predict_iter(iter(imgs), workers=0))
    par = list(pred.predict_iter(iter(imgs), workers=2))
    for a, b in zip(seq, par, strict=True):
        assert np.array_equal(a.labels, b.labels)
        pd.testing.assert_frame_equal(a.centroids, b.centroids)


def test_pipelined_error_in_the_stream_is_raised():
    pred = NucleiPredictor(_tiny(), batch_size=2)

    def gen():
        for i in range(5):
            yield _blobs((32, 40), seed=i)
        yield np.zeros((5, 5, 7), np.uint8)

    with pytest.raises(DevolensError):
        list(pred.predict_iter(gen(), workers=1))


def test_content_crop_keeps_results_inside_the_box():
    """A network with a small receptive field: cropping to the signal changes nothing."""
    from devolens.predict._engine import CONTENT_MARGIN, ImageNetwork

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 3, 3, padding=1))
    img = np.zeros((200, 300), np.float32)
    img[90:120, 140:190] = _blobs((30, 50), n=5).astype(np.float32) / 200.0 + 0.5
    full = ImageNetwork(net, fast=False, crop=False)
    crop = ImageNetwork(net, fast=False, crop=True)
    y0, y1, x0, x1 = crop._content_box([img])
    assert (y0, x0) != (0, 0) and y1 - y0 < 200 and x1 - x0 < 300  # the box is smaller than the image
    assert y0 % 32 == 0 and x0 % 32 == 0  # on the network's grid
    assert y0 <= 90 - CONTENT_MARGIN + 8 and y1 >= min(120 + CONTENT_MARGIN - 8, 200)
    assert x0 <= 140 - CONTENT_MARGIN + 8 and x1 >= min(190 + CONTENT_MARGIN - 8, 300)
    a = full.probabilities_working([img])[0]
    b = crop.probabilities_working([img])[0]
    assert a.shape == b.shape == (3, 200, 300)
    inner = (slice(None), slice(y0 + 2, y1 - 2), slice(x0 + 2, x1 - 2))
    np.testing.assert_allclose(a[inner], b[inner], atol=1e-5)
    outside = b[:, :y0, :]
    assert np.allclose(outside, crop._empty_probabilities()[:, None, None])


def test_content_crop_keeps_full_frame_when_signal_fills_it():
    from devolens.predict._engine import ImageNetwork

    net = torch.nn.Conv2d(1, 3, 1)
    img = np.full((128, 160), 0.5, np.float32)
    assert ImageNetwork(net, crop=True)._content_box([img]) == (0, 128, 0, 160)
    assert ImageNetwork(net, crop=True)._content_box([np.zeros((128, 160), np.float32)]) == (0, 128, 0, 160)


class _WideContext(torch.nn.Module):
    """A network whose every output pixel sees the whole input (a small conv plus the input's mean), as a
    deep network's wide receptive field does: any change of the context it is given shows in its output."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)

    def forward(self, x):
        # per channel, so the softmax does not cancel it
        return self.conv(x) + torch.tensor([10.0, -10.0, 0.0])[None, :, None, None] * x.mean(dim=(2, 3), keepdim=True)


def test_content_crop_result_does_not_depend_on_the_images_beside_it():
    """An image's probabilities are the same alone, in any batch size, and beside images whose embryos sit
    elsewhere (a batch cropped to the box of all its images gave each image other context)."""
    from devolens.predict._engine import ImageNetwork

    def embryo(y, x, seed):
        img = np.zeros((256, 320), np.float32)
        img[y : y + 40, x : x + 60] = _blobs((40, 60), n=5, seed=seed).astype(np.float32) / 200.0 + 0.5
        return img

    a, b, c = embryo(100, 120, 0), embryo(20, 20, 1), embryo(190, 240, 2)
    alone = ImageNetwork(_WideContext(), fast=False, crop=True, batch_size=1).probabilities_working([a])[0]
    for batch_size in (1, 2, 3, 8):
        net = ImageNetwork(_WideContext(), fast=False, crop=True, batch_size=batch_size)
        for batch in ([a, b, c], [b, a], [c, b, a, a]):
            got = net.probabilities_working(batch)
            for img, probs in zip(batch, got):
                if img is a:
                    np.testing.assert_allclose(probs, alone, rtol=0, atol=1e-5)  # float rounding only
    # and the crop matters to this network (the test would not see a batch's shared box otherwise)
    whole = ImageNetwork(_WideContext(), fast=False, crop=False).probabilities_working([a])[0]
    assert not np.allclose(whole, alone)


def test_large_image_is_tiled_and_matches_size():
    pred = NucleiPredictor(_tiny(), scale=1.0, tile=64, overlap=16, batch_size=4)
    img = _blobs((150, 211), n=20)
    res = pred.predict(img)
    assert res.labels.shape == (150, 211) and res.probability.shape == (150, 211)


@pytest.mark.parametrize("head,classes", [("three_class", 3), ("membrane", 1)])
def test_membrane_predictor_sizes(head, classes):
    pred = MembranePredictor(_tiny(classes=classes), scale=0.5, head=head)
    for shape in [(45, 67), (70, 52, 3)]:
        res = pred.predict(_blobs(shape))
        assert res.labels.shape == shape[:2] and res.probability.shape == shape[:2] and res.mask.shape == shape[:2]


def test_bad_images_raise_devolens_error():
    pred = NucleiPredictor(_tiny())
    with pytest.raises(DevolensError):
        pred.predict(np.zeros((5, 5, 7), np.uint8))
    with pytest.raises(DevolensError):
        pred.predict(np.zeros((1, 10), np.uint8))


def test_paths_one_plane_and_channels_first_arrays_are_taken(tmp_path):
    from devolens.io.images import write_png

    pred = NucleiPredictor(_tiny())
    grey, rgb = _blobs((48, 64)), _blobs((48, 64, 3))
    write_png(grey, tmp_path / "frame.png")
    want = pred.predict(grey).labels
    for same in (str(tmp_path / "frame.png"), tmp_path / "frame.png", grey[None]):
        assert np.array_equal(pred.predict(same).labels, want)
    assert np.array_equal(pred.predict(np.moveaxis(rgb, -1, 0)).labels, pred.predict(rgb).labels)
    with pytest.raises(DevolensError, match="nope.png"):
        pred.predict(tmp_path / "nope.png")
    with pytest.raises(DevolensError, match="HxW"):
        pred.predict(np.zeros((2, 48, 64), np.uint8))  # two planes: not an image


def test_onnx_backend_needs_onnxruntime():
    from devolens.predict._engine import onnxruntime_available

    if onnxruntime_available():
        pred = NucleiPredictor(_tiny(), backend="onnx", scale=1.0)
        assert pred.predict(_blobs((64, 64))).labels.shape == (64, 64)
    else:
        with pytest.raises(DevolensError, match="onnxruntime"):
            NucleiPredictor(_tiny(), backend="onnx")
        assert NucleiPredictor(_tiny(), backend="auto").network.backend == "torch"


def test_onnx_backend_reports_the_fp32_it_runs(monkeypatch):
    """onnxruntime runs the exported fp32 network: the precision says so (it said bf16), bf16 asked for is refused."""
    import devolens.models.quantize as q
    from devolens.models.quantize import resolve_precision

    monkeypatch.setattr(q, "bf16_fast_here", lambda: True)  # torch's auto below: bf16 on a CPU with native bf16

    model = _tiny()
    for precision in ("auto", "fp32"):
        assert resolve_precision(model, precision, None, fast=True, device="cpu", multiple=16, backend="onnx") == "fp32"
    with pytest.raises(DevolensError, match="onnx backend"):
        resolve_precision(model, "bf16", None, fast=True, device="cpu", multiple=16, backend="onnx")
    assert resolve_precision(model, "auto", None, fast=True, device="cpu", multiple=16, backend="torch") == "bf16"
    monkeypatch.setattr(q, "bf16_fast_here", lambda: False)  # an AVX2-only CPU: fp32 with either backend
    for backend in ("torch", "onnx"):
        assert resolve_precision(model, "auto", None, fast=True, device="cpu", multiple=16, backend=backend) == "fp32"


def test_zoo_loading_from_tiny_zoo(tiny_zoo):
    from devolens.models import load

    nuc = load("nuclei", batch_size=2)
    assert isinstance(nuc, NucleiPredictor) and nuc.network.scale == 0.5
    assert nuc.predict(_blobs((51, 73, 3))).labels.shape == (51, 73)
    mem = load("membrane")
    assert isinstance(mem, MembranePredictor)


def test_missing_weights_is_a_user_error(tiny_zoo):
    from devolens.models import load

    (tiny_zoo / "nuclei" / "weights.safetensors").unlink()
    with pytest.raises(DevolensError, match="weights"):
        load("nuclei")


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped in src/devolens/models/zoo/nuclei yet")
def test_shipped_nuclei_model_finds_rendered_nuclei():
    from devolens.models import load
    from devolens.render.nuclei import render_nuclei_frame
    from devolens.lineage.simulate import simulate_embryo
    from devolens.train.metrics import instance_scores

    table = simulate_embryo(5, n_cells=60)
    t = int(table.groupby("time").size().index[-1])
    frame = render_nuclei_frame(table, t, size=(256, 376), seed=3, rgb=True)
    res = load("nuclei").predict(frame.image)
    assert res.labels.shape == frame.labels.shape
    assert instance_scores(res.labels, frame.labels)["f1"] > 0.6


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped")
def test_shipped_nuclei_model_sees_through_a_bright_uneven_backdrop():
    """The card's background flattening: a bright backdrop rising across the frame (out-of-focus haze,
    autofluorescent medium) hides the nuclei on its bright side from the network unless it is taken off."""
    from devolens.lineage.simulate import simulate_embryo
    from devolens.models import load
    from devolens.render.nuclei import render_nuclei_frame
    from devolens.train.metrics import instance_scores

    table = simulate_embryo(5, n_cells=60)
    t = int(table.groupby("time").size().index[-1])
    frame = render_nuclei_frame(table, t, size=(256, 376), seed=3, rgb=False)
    h, w = frame.labels.shape
    backdrop = np.tile(np.linspace(110, 0, w, dtype=np.float32), (h, 1))
    dim = np.clip(frame.image.astype(np.float32) * 0.6 + backdrop, 0, 255).astype(np.uint8)
    on = load("nuclei")
    assert on.network.flatten > 0  # the card's default
    f1_on = instance_scores(on.predict(dim).labels, frame.labels)["f1"]
    f1_off = instance_scores(load("nuclei", flatten=0).predict(dim).labels, frame.labels)["f1"]
    assert f1_on > f1_off + 0.05, (f1_on, f1_off)  # 0.89 vs 0.79 (the network trained on a GPU; 0.1 more before)


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped")
def test_shipped_nuclei_model_ignores_hot_pixels():
    """The card's outlier removal: hot camera pixels (lone full-scale pixels, 0.05 %) are replaced
    before the network sees them, so its input is nearly the clean frame's (the few left sit beside
    a bright nucleus or another hot pixel)."""
    from devolens.lineage.simulate import simulate_embryo
    from devolens.models import load
    from devolens.render.nuclei import render_nuclei_frame

    table = simulate_embryo(5, n_cells=60)
    t = int(table.groupby("time").size().index[-1])
    on, off = load("nuclei"), load("nuclei", outliers=0)
    assert on.network.outliers > 0 and off.network.outliers == 0  # the card's default, and overridden
    for seed in (3, 4):
        frame = render_nuclei_frame(table, t, size=(256, 376), seed=seed, rgb=False)
        hot = frame.image.copy()
        rng = np.random.default_rng(seed)
        hot.reshape(-1)[rng.choice(hot.size, hot.size // 2000, replace=False)] = 255
        clean = on.network.prepare(frame.image)
        assert np.array_equal(off.network.prepare(frame.image), clean)  # a clean render: untouched
        err_on = np.abs(on.network.prepare(hot) - clean).mean()
        err_off = np.abs(off.network.prepare(hot) - clean).mean()
        assert err_on < 0.2 * err_off, (err_on, err_off)


@pytest.mark.skipif(not shipped("membrane"), reason="membrane weights not shipped")
def test_shipped_membrane_model_sees_through_a_bright_uneven_backdrop():
    """The membrane card flattens too: the opening (40 working px) removes the thin membranes and keeps the
    backdrop, which is taken off; without it the dim membranes on the bright side are lost."""
    from devolens.lineage.simulate import simulate_embryo
    from devolens.models import load
    from devolens.render.membranes import render_membrane_frame
    from devolens.train.metrics import instance_scores

    table = simulate_embryo(11, n_cells=90)
    t = int(table.groupby("time").size().index[-1])
    on, off = load("membrane"), load("membrane", flatten=0)
    assert on.network.flatten > 0 and on.network.outliers > 0  # the card's defaults
    f1_on, f1_off = [], []
    for seed in (5, 8):
        frame = render_membrane_frame(table, t, size=(512, 752), seed=seed)
        h, w = frame.labels.shape
        backdrop = np.tile(np.linspace(110, 0, w, dtype=np.float32), (h, 1))
        dim = np.clip(frame.image.astype(np.float32) * 0.6 + backdrop, 0, 255).astype(np.uint8)
        f1_on.append(instance_scores(on.predict(dim).labels, frame.labels)["f1"])
        f1_off.append(instance_scores(off.predict(dim).labels, frame.labels)["f1"])
    assert np.mean(f1_on) > np.mean(f1_off) + 0.1, (f1_on, f1_off)


@pytest.mark.skipif(not shipped("membrane"), reason="membrane weights not shipped in src/devolens/models/zoo/membrane yet")
def test_shipped_membrane_model_runs():
    from devolens.models import load

    img = np.zeros((120, 170), np.uint8)
    img[20, 20:150] = img[100, 20:150] = img[20:101, 20] = img[20:101, 150] = img[20:101, 85] = 200
    res = load("membrane").predict(img)
    assert res.labels.shape == img.shape


def test_tta_averages_flipped_views():
    from devolens.predict._engine import ImageNetwork

    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 3, 3, padding=1)
    img = _blobs((64, 96)).astype(np.float32) / 200.0
    plain = ImageNetwork(net, fast=False, crop=False)
    two = ImageNetwork(net, fast=False, crop=False, tta=2)
    p1 = plain.probabilities_working([img])[0]
    p_flip = plain.probabilities_working([np.ascontiguousarray(img[:, ::-1])])[0][:, :, ::-1]
    np.testing.assert_allclose(two.probabilities_working([img])[0], (p1 + p_flip) / 2, atol=1e-5)
    four = NucleiPredictor(_tiny(), tta=4).predict(_blobs((40, 56)))
    assert four.labels.shape == (40, 56)
    with pytest.raises(DevolensError):
        ImageNetwork(net, tta=3)


def test_content_crop_sees_signal_at_the_last_partial_block():
    from devolens.predict._engine import ImageNetwork

    img = np.zeros((203, 301), np.float32)
    img[200:203, 296:301] = 1.0  # a small object inside the partial bottom-right block only
    img[150:160, 250:260] = 1.0
    y0, y1, x0, x1 = ImageNetwork(torch.nn.Conv2d(1, 3, 1), crop=True)._content_box([img])
    # the signal's box (128, 203, 224, 301) with sides rounded up to 128, ending at the image's edges
    assert (y0, y1, x0, x1) == (64, 203, 160, 301)


def test_content_box_sides_are_rounded_to_the_quantum(monkeypatch):
    """Boxes of a movie's frames fall into a few shapes: sides are multiples of CONTENT_QUANTUM
    (or reach an image edge), start on the grid, and hold the signal with its margin."""
    from devolens.predict import _engine
    from devolens.predict._engine import CONTENT_MARGIN, CONTENT_QUANTUM, ImageNetwork

    net = ImageNetwork(torch.nn.Conv2d(1, 3, 1), crop=True)
    rng = np.random.default_rng(3)
    frames = []
    for _ in range(40):
        img = np.zeros((700, 900), np.float32)
        cy, cx, ry, rx = rng.integers(250, 450), rng.integers(300, 600), rng.integers(60, 160), rng.integers(60, 200)
        img[cy - ry : cy + ry, cx - rx : cx + rx] = 0.8
        frames.append(img)
        y0, y1, x0, x1 = net._content_box([img])
        assert y0 % 32 == 0 and x0 % 32 == 0
        assert (y1 - y0) % CONTENT_QUANTUM == 0 or y1 == 700
        assert (x1 - x0) % CONTENT_QUANTUM == 0 or x1 == 900
        assert y0 <= cy - ry - CONTENT_MARGIN + 8 and y1 >= cy + ry + CONTENT_MARGIN - 8
        assert x0 <= cx - rx - CONTENT_MARGIN + 8 and x1 >= cx + rx + CONTENT_MARGIN - 8

    def shapes():
        return {(y1 - y0, x1 - x0) for y0, y1, x0, x1 in (net._content_box([f]) for f in frames)}

    rounded = shapes()
    monkeypatch.setattr(_engine, "CONTENT_QUANTUM", 32)  # the network's grid only
    assert len(rounded) < 0.6 * len(shapes())  # 16 against 31 here


def test_diameter_sets_the_working_scale():
    pred = NucleiPredictor(_tiny(), scale=0.5, diameter_ref=20.0, diameter=10.0)
    assert pred.working_scale() == pytest.approx(1.0)  # objects half the reference size: twice the scale
    img = _blobs((48, 64))
    res = pred.predict(img)
    assert res.extra["scale"] == pytest.approx(1.0)
    assert res.labels.shape == img.shape and res.probability.shape == img.shape
    assert NucleiPredictor(_tiny(), scale=0.5).predict(img).extra["scale"] == 0.5  # no diameter: the card's scale
    for bad, msg in ((0, "positive"), (-3, "positive"), ("big", "number of pixels"), (float("inf"), "positive"),
                     (float("nan"), "positive"), (2.0, "enlarged 10x"), (1001, "shrunk 50x")):
        with pytest.raises(DevolensError, match=msg):  # 2 px: a 10x larger image; 1001 px: shrunk to nothing
            NucleiPredictor(_tiny(), scale=0.5, diameter_ref=20.0, diameter=bad)
    for edge in (2.5, 1000):  # the range's ends: enlarged 8x, shrunk 50x
        assert NucleiPredictor(_tiny(), scale=0.5, diameter_ref=20.0, diameter=edge).diameter == edge
    with pytest.raises(DevolensError, match="no reference object diameter"):
        NucleiPredictor(_tiny(), scale=0.5, diameter=10.0)


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped")
def test_shipped_nuclei_diameter_recovers_another_magnification():
    import cv2

    from devolens.lineage.simulate import simulate_embryo
    from devolens.models import card, load
    from devolens.render.nuclei import render_nuclei_frame
    from devolens.train.metrics import instance_scores

    table = simulate_embryo(11, n_cells=90)
    t = int(table.groupby("time").size().index[-1])
    frame = render_nuclei_frame(table, t, size=(512, 752), seed=5, rgb=True)
    # the same embryo filmed at twice the magnification (nuclei twice as wide)
    big = cv2.resize(frame.image, (1504, 1024), interpolation=cv2.INTER_LINEAR)
    truth = cv2.resize(frame.labels, (1504, 1024), interpolation=cv2.INTER_NEAREST)
    ref = card("nuclei")["input"]["diameter"]["reference"]
    as_filmed = instance_scores(load("nuclei").predict(frame.image).labels, frame.labels)["f1"]
    plain = instance_scores(load("nuclei").predict(big).labels, truth)["f1"]
    res = load("nuclei", diameter=2 * ref).predict(big)
    assert res.extra["scale"] == pytest.approx(0.25)
    # the 2x frame resized back scores as the 1x frame does (0.85 / 0.85), better than as it comes (0.79)
    f1 = instance_scores(res.labels, truth)["f1"]
    assert f1 > plain + 0.03 and f1 > as_filmed - 0.03, (f1, plain, as_filmed)


def test_prepared_items_in_predict_iter(tiny_zoo):
    """Prepared frames with the network's key are used as they are; with another key the
    predictor prepares the image itself: the same labels either way."""
    from devolens.models import load
    from devolens.predict.postprocess import Prepared

    pred = load("nuclei", batch_size=2)
    rng = np.random.default_rng(1)
    imgs = [(rng.random((64, 96)) * 255).astype(np.uint8) for _ in range(3)]
    plain = [r.labels for r in pred.predict_iter(imgs)]
    good = [Prepared(im, pred.network.prep_key) for im in imgs]
    wrong = [Prepared(im, ("green", 1.0, (0.0, 100.0))) for im in imgs]
    for items in (good, wrong):
        out = [r.labels for r in pred.predict_iter(items)]
        assert all(np.array_equal(a, b) for a, b in zip(out, plain))
        assert out[0].shape == (64, 96)


def test_result_objects_and_lazy_centroids():
    from devolens.predict.postprocess import object_arrays, object_table

    labels = np.zeros((20, 30), np.uint16)
    labels[2:6, 3:9] = 1
    labels[10:18, 20:25] = 3
    res = SegmentationResult(labels > 0, labels, object_arrays(labels))
    assert res.count == 2 and isinstance(res._centroids, dict)  # no DataFrame made yet
    table = res.centroids
    assert isinstance(table, pd.DataFrame) and table.equals(object_table(labels))
    assert list(res.objects["label"]) == [1, 3] and list(res.objects["area"]) == [24, 40]
    empty = SegmentationResult(None, np.zeros((4, 4), np.uint16), object_arrays(np.zeros((4, 4), np.uint16)))
    assert empty.count == 0 and list(empty.centroids.columns) == ["label", "x", "y", "area"]
    assert empty.centroids["label"].dtype.kind == "i" and empty.centroids["x"].dtype.kind == "f"


def test_library_misuse_gives_clear_errors(tmp_path):
    """What a notebook user may get wrong: one clear DevolensError each, before any work."""
    from devolens.lineage.populations import populations

    pred = NucleiPredictor(_tiny(), scale=0.5)
    with pytest.raises(DevolensError, match="iterable of images"):
        list(pred.predict_iter(str(tmp_path / "frame.png")))  # was read character by character
    for bad in (np.ones((8, 8), np.complex64), np.array([[object()] * 4] * 4), np.array([["a"] * 4] * 4)):
        with pytest.raises(DevolensError, match="intensities"):
            pred.predict(bad)
    for options, msg in (({"tile": 0}, "tile must be"), ({"tile": -5}, "tile must be"), ({"batch_size": 0}, "batch_size"),
                         ({"channel": "purple"}, "channel must be"), ({"percentiles": (99, 1)}, "percentiles"),
                         ({"overlap": -1}, "overlap")):
        with pytest.raises(DevolensError, match=msg):
            NucleiPredictor(_tiny(), scale=0.5, **options)
    with pytest.raises(DevolensError, match="expected a table"):
        populations(None)
    for post, msg in (({"threshold": 2}, "threshold must be a probability"), ({"seed_threshold": -0.1}, "probability"),
                      ({"min_size": -3}, "min_size must be"), ({"min_distance": "far"}, "min_distance must be")):
        with pytest.raises(DevolensError, match=msg):  # threshold 2 found nothing, silently
            NucleiPredictor(_tiny(), scale=0.5, postprocess=post)
    assert NucleiPredictor(_tiny(), scale=0.5, postprocess={"threshold": 0.6, "instances": "watershed"})


def test_identity_inputs_name_the_bad_column():
    import pandas as pd

    from devolens.predict.identity import prepare_clouds

    t = pd.DataFrame({"embryo": "e", "time": [1.0, float("nan"), 2.0], "x": [1.0, 2, 3], "y": [1.0, 2, 3],
                      "z": [1.0, 2, 3]})
    with pytest.raises(DevolensError, match="column 'time' must hold finite numbers; row 1"):
        prepare_clouds(t)
    t["time"] = [1, 1, 2]
    t["x"] = ["1", "abc", "3"]
    with pytest.raises(DevolensError, match="column 'x'.*row 1 holds 'abc'"):
        prepare_clouds(t)
    t["x"] = [1.0, 2, 3]
    for bad in ("x", -1, 0, float("inf")):
        with pytest.raises(DevolensError, match="zscale must be"):
            prepare_clouds(t, zscale=bad)
