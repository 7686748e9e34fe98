"""Segmentation predictors: input-sized outputs for any size and channel layout, batching,
streaming, tiling; the shipped nuclei/membrane models when present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError
from devolens.models.architectures import build_model
from devolens.predict.segment import MembranePredictor, NucleiPredictor, SegmentationResult


def _tiny(classes: int = 3):
    torch.manual_seed(0)
    return build_model("unet", "resnet18", in_channels=1, classes=classes, encoder_depth=3, decoder_channels=(16, 8, 4))


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
    assert list(res.centroids.columns) == ["label", "x", "y", "area"]
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


def test_predict_iter_is_lazy():
    pred = NucleiPredictor(_tiny(), batch_size=2)
    pulled = []

    def gen():
        for i in range(7):
            pulled.append(i)
            yield _blobs((32, 40), seed=i)

    it = pred.predict_iter(gen())
    first = next(it)
    assert first.labels.shape == (32, 40)
    assert len(pulled) <= 2  # only one batch read before the first result
    rest = list(it)
    assert len(rest) == 6 and len(pulled) == 7


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


def test_onnx_backend_needs_onnxruntime():
    from devolens.predict._engine import onnxruntime_available

    if onnxruntime_available():
        pred = NucleiPredictor(_tiny(), backend="onnx", scale=1.0)
        assert pred.predict(_blobs((64, 64))).labels.shape == (64, 64)
    else:
        with pytest.raises(DevolensError, match="onnxruntime"):
            NucleiPredictor(_tiny(), backend="onnx")
        assert NucleiPredictor(_tiny(), backend="auto").network.backend == "torch"


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


@pytest.mark.skipif(not shipped("membrane"), reason="membrane weights not shipped in src/devolens/models/zoo/membrane yet")
def test_shipped_membrane_model_runs():
    from devolens.models import load

    img = np.zeros((120, 170), np.uint8)
    img[20, 20:150] = img[100, 20:150] = img[20:101, 20] = img[20:101, 150] = img[20:101, 85] = 200
    res = load("membrane").predict(img)
    assert res.labels.shape == img.shape
