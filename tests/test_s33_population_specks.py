"""The population regressor's own input leaves saturated specks out of its brightness scale (as the nuclei model's
preparation does), and a frame without a single finite pixel is a frame without signal (``is_flat``)."""

from __future__ import annotations

import numpy as np

from devolens.predict.population import PopulationPredictor, is_flat


def _frame(seed=0, size=(512, 752)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size[0], :size[1]]
    img = np.zeros(size, np.float32)
    for _ in range(60):
        cy, cx = rng.uniform(60, size[0] - 60), rng.uniform(100, size[1] - 100)
        img = np.maximum(img, ((yy - cy) ** 2 + (xx - cx) ** 2 < 100) * rng.uniform(0.6, 1.0))
    return np.clip(np.round(img * 230 * 16 + rng.normal(100, 8, size)), 0, 65535).astype(np.uint16)


def test_the_regressor_input_leaves_a_saturated_speck_out_of_its_scale():
    pred = PopulationPredictor("regressor", network=object(), outliers=0.0)
    clean = _frame()
    dusty = clean.copy()
    yy, xx = np.mgrid[:clean.shape[0], :clean.shape[1]]
    dusty[(yy - 25) ** 2 + (xx - 25) ** 2 <= 15 ** 2] = 65535  # a saturated dust speck in a corner
    a, b = pred._regressor_input(clean), pred._regressor_input(dusty)
    nuclei = a > 0.5
    # was: the nuclei squashed to a few percent of the scale the speck set
    assert abs(float(b[nuclei].mean()) - float(a[nuclei].mean())) < 0.1
    assert np.array_equal(pred._regressor_input(clean), a)  # a clean frame: as before


def test_a_frame_without_a_finite_pixel_is_flat():
    assert is_flat(np.full((32, 32), np.nan, np.float32))
    assert is_flat(np.full((32, 32, 3), np.inf))
    part = np.zeros((32, 32), np.float32)
    part[0, 0], part[5, 5] = np.nan, 1.0
    assert not is_flat(part)
