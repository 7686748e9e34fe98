"""Hot pixels in `population`'s frames: replaced at the input's resolution, before any magnification resizing,
for the nuclei count and the whole-frame regressor alike, where they would still stand out in the regressor's
input; a clean frame goes through as it is (the same array)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from devolens.predict.population import TRAINING_FRAME, PopulationPredictor, fit_composition
from devolens.predict.segment import SegmentationResult

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)

SHAPE = (128, 192)  # the shipped regressor's input (H, W)


def _twelve_bit_frame(seed: int = 0, size: tuple[int, int] = TRAINING_FRAME) -> np.ndarray:
    """A render-like 12-bit frame in 16 bits: an offset of 100 counts with noise, an ellipse of bright textured
    nuclei up to ~3500 counts."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = rng.normal(100.0, 4.0, (h, w))
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(120):
        t, u = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 1))
        cy, cx = h / 2 + 0.3 * h * u * np.sin(t), w / 2 + 0.38 * w * u * np.cos(t)
        r = rng.uniform(8, 14)
        img += rng.uniform(1500, 3400) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (r / 2) ** 2))
    return np.clip(np.round(img), 0, 4095).astype(np.uint16)


def _hot(frame: np.ndarray, n: int = 200, value: int = 65535, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``frame`` with ``n`` single hot pixels (none beside another: a pair is no single-pixel outlier) and their
    flat indices."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    h, w = out.shape
    cells = rng.choice((h // 3) * (w // 3), n, replace=False)
    idx = (cells // (w // 3)) * 3 * w + (cells % (w // 3)) * 3
    out.ravel()[idx] = value
    return out, idx


def _predictor(**options) -> PopulationPredictor:
    pops = pd.DataFrame({"time": [0, 1], "A": [1, 2], "E": [1, 1], "M": [0, 1], "P": [1, 0], "C": [0, 0],
                         "D": [0, 0], "Z": [0, 2], "total": [3, 6]})
    return PopulationPredictor("composition", nuclei=_Nuclei(), composition=fit_composition(pops, 10, 0),
                               network=_Total(), input_size=SHAPE, total_weight=0.5, fast=False, **options)


class _Total(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2, 3))[:, None] * 0 + 5.0


class _Nuclei:
    """A nuclei model stand-in that keeps the frames it is given and finds no nuclei."""

    diameter_ref = 20.0

    def __init__(self):
        self.seen: list[np.ndarray] = []

    def predict_iter(self, images, total=None, progress=None):
        for img in images:
            self.seen.append(np.asarray(img))
            lab = np.zeros((8, 8), np.uint16)
            yield SegmentationResult(np.zeros((8, 8), np.float32), lab, pd.DataFrame(
                {"label": [], "x": [], "y": [], "area": []}), lab > 0)


def test_hot_pixels_are_replaced_and_a_clean_frame_passes_as_it_is():
    """200 hot pixels at 65535 in 12-bit data (17-44 ranges above their neighbours in the real reference frames)
    are replaced by their brightest neighbour; the frame's other pixels, and a clean frame (the same array),
    are left as they are."""
    pred = _predictor(outliers=0.5)
    clean = _twelve_bit_frame()
    assert pred._without_hot_pixels(clean) is clean
    hot, idx = _hot(clean)
    fixed = pred._without_hot_pixels(hot)
    assert fixed.dtype == np.uint16 and fixed.max() <= clean.max()
    others = np.ones(clean.size, bool)
    others[idx] = False
    np.testing.assert_array_equal(fixed.ravel()[others], clean.ravel()[others])
    assert pred._without_hot_pixels(hot) is not hot and hot.max() == 65535  # (a copy: the input is not changed)
    # a colour frame: each plane alike, the dtype kept
    rgb = np.stack([clean // 2, clean, clean // 4], axis=2)
    assert pred._without_hot_pixels(rgb) is rgb
    spoiled = rgb.copy()
    spoiled.reshape(-1, 3)[idx, 1] = 65535
    out = pred._without_hot_pixels(spoiled)
    assert out.dtype == np.uint16 and np.array_equal(out[..., 0], rgb[..., 0]) and out[..., 1].max() <= clean.max()
    np.testing.assert_array_equal(out[..., 1].ravel()[others], clean.ravel()[others])
    assert _predictor(outliers=0.0)._without_hot_pixels(hot) is hot  # 0: off


def test_only_outliers_that_would_survive_the_regressors_shrinking_are_replaced():
    """A noise spike a little above the frame's range (clean renders: 1.2 ranges at most) is no hot pixel for the
    regressor, which averages 16 frame pixels into one of its input's: the frame is passed on unchanged (its
    input bit for bit what the card was measured on). The nuclei model's own test (0.5 of the range) would
    replace it."""
    from devolens.predict.postprocess import remove_outliers

    pred = _predictor(outliers=0.5)
    clean = _twelve_bit_frame(seed=2)
    lo, hi = np.percentile(clean[::4, ::4].astype(np.float32), [1.0, 99.8])
    spiky = clean.copy()
    spiky[20, 30] = int(spiky[19:22, 29:32].max() + 1.2 * (hi - lo))
    assert remove_outliers(spiky, 0.5) is not spiky
    assert pred._without_hot_pixels(spiky) is spiky
    # a small frame (fewer pixels than the regressor's input: no averaging) keeps the nuclei model's threshold
    small = spiky[:100, :150].copy()
    assert pred._without_hot_pixels(small) is not small


@pytest.mark.parametrize("resize", [1.0, 0.74])
def test_the_regressor_and_the_nuclei_model_get_the_frame_without_its_hot_pixels(monkeypatch, resize):
    """The hot pixels are replaced before the magnification resizing (``--diameter auto`` shrinks EPIC-framed
    frames by about 0.74, which spreads a hot pixel past any single-pixel test): what the regressor and the
    nuclei model are given is what the clean frame would give, to within the replaced pixels' neighbours. The
    regressor took the hot pixels as they were: 200 of them moved a 316-cell frame's total to 190."""
    clean = _twelve_bit_frame(seed=3)
    hot, _ = _hot(clean, 300)
    inputs = {}
    for name, frame in (("clean", clean), ("hot", hot)):
        pred = _predictor(outliers=0.5, resize=resize)
        seen = []
        real = pred._regressor_input
        monkeypatch.setattr(pred, "_regressor_input", lambda img, framed=True: (seen.append(img), real(img, framed))[1])
        list(pred.predict_iter([frame]))
        inputs[name] = (seen[0], pred.nuclei.seen[0], real(seen[0]))
    for k in range(2):  # the frames given to the regressor and to the nuclei model: no hot pixel left
        assert inputs["hot"][k].max() <= inputs["clean"][k].max() * 1.01
    normalised = np.abs(inputs["hot"][2] - inputs["clean"][2])
    assert normalised.mean() < 0.002 and normalised.max() < 0.2


def test_the_threshold_is_the_nuclei_models(tiny_zoo):
    """``outliers`` defaults to the nuclei model's (its card's ``preprocessing.outliers``)."""
    from devolens.models import load

    pred = load("population")
    assert pred.outliers == pred.nuclei.network.outliers == 0.5
    from devolens.errors import DevolensError

    for bad in (-1.0, float("nan"), "lots"):
        with pytest.raises(DevolensError, match="outliers must be >= 0"):
            _predictor(outliers=bad)
