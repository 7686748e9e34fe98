"""The flat fill of frames with a wide margin (population's training window) found from pixel steps: the same
pixels as an erosion equalling a dilation, in a third of the time."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from devolens.predict.population import _constant_squares, _flat_fill


def _reference_fill(a: np.ndarray, side: int = 7) -> np.ndarray:
    """The rule as first written: squares whose erosion equals their dilation (edges replicated), finite, below
    the image's highest finite value, grown to the whole square."""
    kernel = np.ones((side, side), np.uint8)
    finite = np.isfinite(a)
    core = (cv2.erode(a, kernel, borderType=cv2.BORDER_REPLICATE)
            == cv2.dilate(a, kernel, borderType=cv2.BORDER_REPLICATE)) & finite
    if finite.any():
        core &= a < a[finite].max()
    return cv2.dilate(core.astype(np.uint8), kernel) > 0


def _patchy(rng, shape) -> np.ndarray:
    """Flat stretches of a few values with sparse steps: squares that are constant, and ones a step spoils, at
    every place (the edges and corners too)."""
    a = rng.integers(0, 3, shape).astype(np.float32)
    return np.where(rng.random(shape) < rng.uniform(0.005, 0.05), a, 1.0).astype(np.float32)


@pytest.mark.parametrize("side", [3, 4, 5, 6, 7, 9])
def test_constant_squares_are_where_the_erosion_equals_the_dilation(side):
    rng = np.random.default_rng(side)
    kernel = np.ones((side, side), np.uint8)
    shapes = [(1, 1), (1, 30), (2, 2), (5, 9), (40, 3), *(tuple(int(v) for v in rng.integers(1, 60, 2)) for _ in range(60))]
    for shape in shapes:
        a = _patchy(rng, shape)
        expected = (cv2.erode(a, kernel, borderType=cv2.BORDER_REPLICATE)
                    == cv2.dilate(a, kernel, borderType=cv2.BORDER_REPLICATE))
        assert np.array_equal(_constant_squares(a, side), expected), (shape, side)


def test_flat_fill_is_the_rule_with_and_without_nan_pixels():
    """A movie boxed in black with a flat saturated nucleus (kept) and a flat grey panel (fill); with NaN and
    infinite pixels (the rule's own path: NaN is never flat)."""
    rng = np.random.default_rng(0)
    frame = np.zeros((270, 480), np.float32)
    frame[60:200, 100:380] = np.clip(rng.normal(30, 4, (140, 280)), 1, None)
    frame[100:112, 200:212] = 255.0  # saturated: flat but the highest value
    frame[:, 440:] = 43.0  # a viewer's panel
    got = _flat_fill(frame)
    assert np.array_equal(got, _reference_fill(frame))
    assert got[0, 0] and got[5, 460] and not got[105, 205] and not got[130, 150]
    holed = frame.copy()
    holed[:20] = np.nan
    holed[150, 150] = np.inf
    assert np.array_equal(_flat_fill(holed), _reference_fill(holed))
    for a in (np.full((50, 60), 7.0, np.float32), np.full((50, 60), np.nan, np.float32), _patchy(rng, (90, 130))):
        assert np.array_equal(_flat_fill(a), _reference_fill(a))
