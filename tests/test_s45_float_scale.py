"""Float images far from the usual scale (s45): values near float32's top or beyond float32's range (a float64
image times 1e300 or 1e-300) are prepared, judged and shown as the same image at an ordinary scale is, without a
numpy RuntimeWarning; and population words a frame that is flat only once its hot pixel is replaced as segment does."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from devolens.predict.postprocess import FLOAT_SAFE, in_float32_range, prepare_image, to_single_channel


def _nuclei(size: int = 96) -> np.ndarray:
    """Three Gaussian "nuclei" on a slightly noisy background, float64, 0..~210."""
    yy, xx = np.mgrid[:size, :size]
    b = np.zeros((size, size))
    for cy, cx in [(0.25, 0.25), (0.5, 0.65), (0.78, 0.3)]:
        b += np.exp(-((yy - cy * size) ** 2 + (xx - cx * size) ** 2) / 40.0)
    return 200.0 * b + np.random.default_rng(0).normal(10.0, 1.0, b.shape)


def _scaled(b: np.ndarray, s: float, dtype) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore"):
        return (b * s).astype(dtype)


#: scales beyond float32's safe range: float32 near its top (its sums overflow), float64 beyond float32's range
SCALES = [(2.0 ** 120, np.float32), (1e36, np.float32), (1e300, np.float64), (1e-300, np.float64),
          (1e-40, np.float64), (1e-60, np.float64)]


@pytest.mark.parametrize("s, dtype", SCALES)
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_prepared_image_does_not_depend_on_the_scale(s, dtype, scale):
    b = _nuclei()
    ref = prepare_image(b.astype(np.float32), "auto", scale, (1.0, 99.8), 0.0, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = prepare_image(_scaled(b, s, dtype), "auto", scale, (1.0, 99.8), 0.0, 0.5)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_a_power_of_two_leaves_a_float32_image_exactly_as_it_was():
    b = _nuclei().astype(np.float32)
    ref = prepare_image(b, "auto", 1.0, (1.0, 99.8))
    assert np.array_equal(prepare_image(b * np.float32(2.0 ** 110), "auto", 1.0, (1.0, 99.8)), ref)


@pytest.mark.parametrize("image", [np.linspace(0, 1, 64 * 64).reshape(64, 64),
                                   np.linspace(0, 65535, 64 * 64, dtype=np.float32).reshape(64, 64),
                                   np.full((8, 8), FLOAT_SAFE[1]), np.full((8, 8), FLOAT_SAFE[0]),
                                   np.zeros((8, 8)), np.full((8, 8), np.nan),
                                   np.arange(64, dtype=np.uint16).reshape(8, 8)])
def test_ordinary_images_are_left_as_they_are(image):
    assert in_float32_range(image) is image  # (no copy: the preparation of ordinary images unchanged, byte for byte)


def test_in_float32_range_reads_the_finite_values_and_a_colour_image_alike():
    a = np.full((4, 4, 3), 1e300)
    a[0, 0] = np.nan
    a[1, 1, 1] = np.inf
    out = in_float32_range(a)
    assert out.dtype == np.float64 and 0.5 <= np.nanmax(out[np.isfinite(out)]) < 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        grey = to_single_channel(a * np.array([0.1, 1.0, 0.2]), "auto")
    assert grey.dtype == np.float32 and np.isfinite(grey[2:, 2:]).all() and grey[3, 3] > 0


def test_remove_outliers_keeps_the_units_of_a_float64_image_beyond_float32():
    from devolens.predict.postprocess import remove_outliers

    b = _nuclei() * 1e300
    b[50, 80] = 1e305  # a hot pixel
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = remove_outliers(b, 0.5)
    assert out.dtype == np.float64 and out[50, 80] < 1e303 and np.isfinite(out).all()
    assert np.array_equal(np.delete(out.ravel(), 50 * 96 + 80), np.delete(b.ravel(), 50 * 96 + 80))


@pytest.mark.parametrize("s, dtype", [(2.0 ** 1000, np.float64), (2.0 ** -1000, np.float64),
                                      (2.0 ** 120, np.float32), (2.0 ** -135, np.float32)])
def test_frame_signal_does_not_depend_on_the_scale(s, dtype):
    """(Powers of two: a float frame's range is its 99.9th percentile rounded up to one, as at an ordinary scale.)"""
    from devolens.curate.frames import frame_signal
    from devolens.predict.population import lacks_signal

    b = _nuclei(128)
    ref = frame_signal(b)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        m = frame_signal(_scaled(b, s, dtype))
        assert not lacks_signal(_scaled(b, s, dtype))  # a bright frame is no black one
    for key in ("level", "contrast", "foreground", "spot"):
        assert m[key] == pytest.approx(ref[key], rel=1e-4), key


def test_is_flat_reads_a_millionth_of_the_frame_s_own_magnitude():
    from devolens.predict.population import is_flat

    b = _nuclei(64)
    assert not is_flat(b * 1e-10) and not is_flat(b * 1e-300)
    assert is_flat(np.zeros((64, 64))) and is_flat(np.full((64, 64), 3e-300))
    assert not is_flat(np.linspace(0, 1, 64 * 64).reshape(64, 64))


@pytest.mark.parametrize("s, dtype", [(1e300, np.float64), (1e-300, np.float64), (2.0 ** 120, np.float32)])
def test_overlay_does_not_depend_on_the_scale(s, dtype):
    from devolens.cli.predict import _overlay

    b = _nuclei(64)
    labels = np.zeros(b.shape, np.int32)
    labels[10:20, 10:20] = 1
    ref = _overlay(b.astype(np.float32), labels)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = _overlay(_scaled(b, s, dtype), labels)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1 and out.mean() > 10


def test_population_calls_a_frame_flat_only_without_its_hot_pixel_black():
    """A black frame but for one pixel at 255 is flat once its hot pixel is replaced: no signal, but not one grey
    level throughout as given (segment calls it black)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from devolens.predict.population import COLUMNS, PopulationPredictor
    from test_s30_predict_refactor import INPUT, _Probe

    onepix = np.zeros((64, 64), np.uint8)
    onepix[30, 30] = 255
    pred = PopulationPredictor("regressor", network=_Probe(len(COLUMNS)), input_size=INPUT, batch_size=2,
                               fast=False, outliers=0.5)
    rows = list(pred.predict_iter([onepix, np.full((64, 64), 7, np.uint8)]))
    assert [(r["flat"], r["black"]) for r in rows] == [(True, True), (True, False)]


def _predictor():
    import devolens

    try:
        return devolens.models.load("nuclei")
    except Exception as exc:  # (no shipped weights here)
        pytest.skip(f"nuclei model not available: {exc}")


@pytest.mark.parametrize("s, dtype", [(1e38, np.float32), (1e36, np.float32), (1e300, np.float64),
                                      (1e-300, np.float64)])
def test_segmentation_does_not_depend_on_the_scale(s, dtype):
    p = _predictor()
    b = _nuclei(48)
    b /= b.max()  # (its brightest pixel 1e38 at 1e38: a float32 value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = p.predict(b.astype(np.float32)).labels
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = p.predict(_scaled(b, s, dtype)).labels
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert ref.max() > 0 and np.array_equal(labels, ref)
