"""The segmentation predictors' options and inputs, as a Python user gives them to ``devolens.models.load``: a
misspelt post-processing key, a scale that blows an image up past memory, a PyTorch tensor, a list given to
``predict``, and options of the wrong type are each refused (or taken) with one line naming what was given."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError, DevolensValueError
from devolens.models import load


def _blobs(shape=(40, 56, 3), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape[:2], np.float32)
    for _ in range(6):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0)
    out = np.zeros(shape, np.uint8)
    out[..., 1] = (np.clip(img, 0, 1) * 200).astype(np.uint8)
    return out


def test_a_misspelt_postprocess_key_is_refused_with_the_right_one(tiny_zoo):
    with pytest.raises(DevolensError, match=r"unknown postprocess option 'treshold' \(did you mean 'threshold'\?\); "
                                            r"the options: threshold, seed_threshold"):
        load("nuclei", postprocess={"treshold": 0.99})
    # a nuclei option the membrane predictor does not use: refused, not ignored
    with pytest.raises(DevolensError, match=r"postprocess 'split_seeds' is not used by the MembranePredictor"):
        load("membrane", postprocess={"split_seeds": True})
    for bad in ("x", ["threshold", 0.6]):
        with pytest.raises(DevolensValueError, match=r"postprocess must be a dict of post-processing options .*got"):
            load("nuclei", postprocess=bad)
    assert load("nuclei", postprocess={"threshold": 0.99}).postprocess_options["threshold"] == 0.99


def test_a_cards_own_unknown_postprocess_keys_are_still_taken(tiny_zoo):
    """An exported card may carry keys of another version: the card's are not held to the user's rule."""
    from devolens.models import zoo

    path = tiny_zoo / "nuclei" / "card.json"
    card = json.loads(path.read_text())
    card["postprocess"] = {"threshold": 0.6, "instances": "watershed"}
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    pred = load("nuclei", postprocess={"min_size": 4})
    assert pred.postprocess_options == {"threshold": 0.6, "instances": "watershed", "min_size": 4}


def test_scale_is_bounded_like_a_diameter(tiny_zoo):
    # the tiny card's scale is 0.5: 8x enlarged at most (4.0), 50x shrunk (0.01)
    with pytest.raises(DevolensError, match=r"scale 100: the images would be enlarged 200x beyond the model's own "
                                            r"scale 0.5 .*give a scale of 0.01-4\b"):
        load("nuclei", scale=100)
    with pytest.raises(DevolensError, match=r"scale 0.001: the images would be shrunk 500x"):
        load("nuclei", scale=0.001)
    for bad in ("x", None, [0.5]):
        with pytest.raises(DevolensValueError, match=r"scale must be a number > 0 .*the model's own: 0.5.*got"):
            load("nuclei", scale=bad)
    with pytest.raises(DevolensError, match=r"scale must be a number > 0"):
        load("nuclei", scale=float("nan"))
    assert load("nuclei", scale=4).working_scale() == 4.0 and load("nuclei", scale=0.01).working_scale() == 0.01


def test_scale_and_diameter_together_are_bounded(tiny_zoo):
    from devolens.predict.segment import NucleiPredictor

    net = load("nuclei").network.model
    card = {"input": {"scale": 0.5}}
    # each within its own range, their product 32x the card's scale
    with pytest.raises(DevolensError, match=r"scale 4 with diameter 5 px: the images would be enlarged 32x"):
        NucleiPredictor(net, scale=4.0, diameter=5.0, diameter_ref=20.0, card=card)
    assert NucleiPredictor(net, scale=1.0, diameter=10.0, diameter_ref=20.0, card=card).working_scale() == 2.0


def test_a_tensor_is_segmented_as_the_same_numpy_array(tiny_zoo):
    pred = load("nuclei")
    img = _blobs()
    want = pred.predict(img)
    for tensor in (torch.from_numpy(np.moveaxis(img, -1, 0).copy()), torch.from_numpy(img)):
        got = pred.predict(tensor)
        assert np.array_equal(got.labels, want.labels) and np.array_equal(got.probability, want.probability)
    grey = torch.from_numpy(img[..., 1].copy())
    assert np.array_equal(pred.predict(grey).labels, pred.predict(img[..., 1]).labels)
    assert [r.count for r in pred.predict_iter([torch.from_numpy(img)] * 2)] == [want.count] * 2


def test_predict_says_what_it_was_given(tiny_zoo):
    pred = load("nuclei")
    img = _blobs()
    for several in ([img, img, img], (img, img), ["a.png", "b.png"]):
        with pytest.raises(DevolensError, match=r"predict takes one image, got a (list|tuple) of \d: for several use "
                                                r"predict_batch\(images\)"):
            pred.predict(several)
    takes = r"expected one image, an HxW, HxWx3 or channels-first 3xHxW array \(NumPy, or a PyTorch tensor\), or an " \
            r"image file's path; got "
    with pytest.raises(DevolensError, match=takes + "None$"):
        pred.predict(None)
    with pytest.raises(DevolensError, match=takes + r"bytes b'frame.png' \(a path is a str or a Path: decode it\)"):
        pred.predict(b"frame.png")
    with pytest.raises(DevolensError, match=takes + r"a int \(7\)"):
        pred.predict(7)
    with pytest.raises(DevolensError, match=takes + r"an array of shape \(2, 40, 56, 3\) \(several images"):
        pred.predict(np.stack([img, img]))
    with pytest.raises(DevolensError, match=takes + r"a list"):
        pred.predict([[1, 2, 3], [4, 5]])  # rows of different lengths: no array
    with pytest.raises(DevolensError, match=takes + r"None"):
        list(pred.predict_iter([img, None]))
    assert pred.predict(img[..., 1].tolist()).count == pred.predict(img[..., 1]).count  # nested lists: one image


_WRONG = [
    ("fast", "no", r"fast must be True or False, got 'no'"),
    ("crop", "no", r"crop must be True or False, got 'no'"),
    ("batch_size", 2.5, r"batch_size must be a whole number >= 1, got 2.5"),
    ("batch_size", "4", r"batch_size must be a whole number >= 1, got '4'"),
    ("head", "foo", r"head must be one of 'three_class', 'three_class_distance', 'foreground' .*got 'foo'"),
    ("multiple", 0, r"multiple must be a whole number >= 1, got 0"),
    ("multiple", 4, r"multiple must be a multiple of the network's 8 .*got 4"),
    ("in_channels", 3, r"in_channels is the network's own \(1: the card's architecture.in_channels\), got 3"),
    ("tile", 100.5, r"tile must be a whole number >= 16 or None, got 100.5"),
    ("overlap", 1.5, r"overlap must be a whole number >= 0, got 1.5"),
    ("tta", 2.5, r"tta must be a whole number >= 1, got 2.5"),
]


def test_load_options_of_the_wrong_kind_are_refused(tiny_zoo):
    for option, value, message in _WRONG:
        with pytest.raises(DevolensError, match=message):
            load("nuclei", **{option: value})


def test_membrane_heads(tiny_zoo):
    with pytest.raises(DevolensError, match=r"head must be one of 'three_class', 'membrane'"):
        load("membrane", head="foreground")


def test_workers_must_be_a_count_of_threads(tiny_zoo):
    pred = load("nuclei")
    img = _blobs()
    for bad in ("2", -1, 1.5, None):
        with pytest.raises(DevolensError, match=r"workers must be a whole number >= 0, got"):
            list(pred.predict_iter([img, img], workers=bad))
    want = [r.labels for r in pred.predict_iter([img, img])]
    for workers in (0, 2, np.int64(2), 2.0):
        assert all(np.array_equal(a, r.labels) for a, r in zip(want, pred.predict_iter([img, img], workers=workers)))


def test_valid_options_keep_their_results(tiny_zoo):
    img = _blobs()
    want = load("nuclei").predict(img).labels
    for options in (dict(batch_size=4.0, fast=np.bool_(True), crop=True), dict(multiple=16, tile=256, overlap=64),
                    dict(postprocess={})):
        assert np.array_equal(load("nuclei", **options).predict(img).labels, want), options
