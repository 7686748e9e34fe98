"""Prediction internals (session 35): the inverted-input check's judging scale stated by the shape note's one rule
(:func:`_judging_scale`), uncapped where the magnification was estimated on the inverted frames; ``_shapes`` prepares
a bright frame once when the network does not flatten; ``ImageNetwork.prepare_frame`` prepares every frame one way."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from _render_helpers import blob_frame
from devolens.predict import postprocess

KEY = dict(channel="auto", scale=0.5, flatten=60.0, outliers=0.5)  # the nuclei card's preparation


def _small_nuclei(seed: int = 0) -> np.ndarray:
    """An input at a low magnification: nuclei 6 px wide (bright discs on a dark noisy background), uint8."""
    return blob_frame(256, n=80, radius=3, background=10.0, seed=seed)


# ------------------------------------------------------------------------------------------ 1: the judging scale

def test_the_judging_scale_is_capped_unless_told_not_to_be():
    from devolens.cli.predict import SHAPE_MOST_SCALE, _judging_scale

    assert _judging_scale(1.6, 0.5) == SHAPE_MOST_SCALE  # the shape note: not enlarged past it
    assert _judging_scale(1.6, 0.5, most=None) == pytest.approx(1.6)  # half the render scale, as it is
    assert _judging_scale(0.25, 0.5, most=None) == _judging_scale(0.25, 0.5) == pytest.approx(0.25)


def test_inverted_nuclei_at_a_low_magnification_keep_their_note():
    """Where the magnification was estimated on the inverted frames, they are judged at half of it, not capped at
    SHAPE_MOST_SCALE: capped, the nuclei of inverted renders shrunk to 0.25x were ~4 px wide, read as no blobs, and
    the input lost its note (4 of 7 such held-out inputs)."""
    from devolens.cli.predict import LOOKS_LIKE_NUCLEI, SHAPE_MOST_SCALE, _inverted_blobs, _inverted_nuclei
    from devolens.predict.postprocess import blob_fraction, prepare_image

    frames = [255 - _small_nuclei(seed=i) for i in range(3)]
    net = SimpleNamespace(channel="auto", flatten=0.0, outliers=0.0)
    predictor = SimpleNamespace(network=net, last_estimate=object(), card_scale=0.5,
                                estimate_diameter=lambda images: SimpleNamespace(diameter=11.0),
                                _scale_for=lambda d: 1.6 if d == 11.0 else None)  # the estimate: enlarge 3.2x

    def judged(scale):
        values = [blob_fraction(prepare_image(_small_nuclei(seed=i), "auto", scale, (1.0, 99.8))) for i in range(3)]
        values = [v for v in values if v is not None]
        return float(np.median(values)) if values else None

    at_own, capped = judged(1.6), judged(SHAPE_MOST_SCALE)
    assert at_own >= LOOKS_LIKE_NUCLEI and (capped is None or capped < LOOKS_LIKE_NUCLEI)  # the case tells them apart
    assert _inverted_blobs(frames, predictor, SHAPE_MOST_SCALE, (1.0, 99.8)) == pytest.approx(at_own)
    text = _inverted_nuclei([], frames, predictor, SHAPE_MOST_SCALE, (1.0, 99.8))
    assert text is not None and text.startswith("the input looks inverted: dark blobs on a bright background")


# --------------------------------------------------------------------------- 2: _shapes prepares a frame once

@pytest.mark.parametrize("flatten, per_frame", [(0.0, 1), (60.0, 2)])
def test_shapes_prepares_a_bright_frame_once_without_flattening(monkeypatch, flatten, per_frame):
    """A nuclei frame too bright to judge is read again before the flattening: by a second preparation only where the
    network flattens (it prepared each twice); the frames found bright are the same."""
    from devolens.cli.predict import _shapes

    frames = [255 - blob_frame(256, n=40, radius=9, background=10.0, seed=i) for i in range(3)]  # inverted nuclei
    frames.append(blob_frame(256, n=40, radius=9, background=10.0, seed=5))  # a clean frame: judged as it is
    net = SimpleNamespace(channel="auto", flatten=flatten, outliers=0.5)
    calls = []
    real = postprocess.prepare_image
    monkeypatch.setattr(postprocess, "prepare_image", lambda *a, **k: calls.append(a[4]) or real(*a, **k))
    seen, flipped, bright = _shapes(frames, "nuclei", net, 0.4, (1.0, 99.8))
    assert len(seen) == 1 and flipped == [] and [id(f) for f in bright] == [id(f) for f in frames[:3]]
    assert len(calls) == 3 * per_frame + 1  # was 3 * 2 + 1 without flattening too
    monkeypatch.setattr(postprocess, "prepare_image", real)
    expected = [f for f in frames if np.median(real(f, "auto", 0.4, (1.0, 99.8), 0.0, 0.5)[::4, ::4]) >= 0.7]
    assert [id(f) for f in bright] == [id(f) for f in expected]


# ----------------------------------------------------------------------- 3: prepare_frame, one preparation

def _dusty(a: np.ndarray) -> np.ndarray:
    """A saturated dust speck in a corner of 12-bit data in a 16-bit file (left out of the brightness scale)."""
    out = np.clip(a.astype(np.float32) * 16 + 100, 0, 65535).astype(np.uint16)
    out[20:30, 20:30] = 65535
    return out


def _images() -> dict:
    grey = blob_frame((96, 128), n=12, radius=8, seed=1)
    rgb = np.dstack([grey // 4, grey, np.full_like(grey, 6)])
    nan = grey.astype(np.float32)
    nan[:5, :7] = np.nan
    return {
        "uint8": grey, "uint16": grey.astype(np.uint16) * 200, "float32": grey.astype(np.float32) / 255,
        "rgb uint8": rgb, "rgb uint16": rgb.astype(np.uint16) * 257, "rgb float32": rgb.astype(np.float32),
        "odd sides": blob_frame((75, 101), n=8, radius=7, seed=2), "int32 16-bit": _dusty(grey).astype(np.int32),
        "uint16 speck": _dusty(grey), "float32 nan": nan, "float32 speck": _dusty(grey).astype(np.float32),
        "uint16 at the top": np.where(grey > 100, 65535, 300).astype(np.uint16),  # saturated nuclei, no speck
    }


@pytest.mark.parametrize("name", list(_images()))
def test_prepare_frame_is_the_networks_preparation(name):
    """Whatever the type, channels and sides, and whether the frame may hold saturated specks or not (the two ways it
    was prepared): the array is prepare's, bit for bit, and extra says what the preparation left out."""
    from devolens.predict._engine import ImageNetwork
    from devolens.predict.postprocess import leaves_specks_out, prepare_image

    image = _images()[name]
    net = ImageNetwork(torch.nn.Conv2d(1, 2, 1), fast=False, precision="fp32", **KEY)
    frame = net.prepare_frame(image)
    key = net.prep_key
    assert frame.key == key and np.array_equal(frame.image, image, equal_nan=True)
    assert frame.array.dtype == np.float32 and np.array_equal(frame.array, prepare_image(image, *key))
    assert np.array_equal(frame.array, net.prepare(image))
    specks = leaves_specks_out(image, key[0], key[2], key[4])
    assert frame.extra == ({"specks": True} if specks else {})
    assert specks == (name.endswith("speck") or name == "int32 16-bit")
