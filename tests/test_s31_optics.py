"""The microscope's parameters refuse impossible values, and the camera noise has Poisson's mean and variance."""

import warnings

import numpy as np
import pytest

from devolens.errors import DevolensValueError
from devolens.render.membranes import MembraneParams, render_membrane_frame
from devolens.render.nuclei import render_nuclei_frame
from devolens.render.optics import OpticsParams, add_noise

from _render_helpers import make_table


@pytest.fixture(scope="module")
def table():
    return make_table()


# ---------------------------------------------------------------- noise

@pytest.mark.parametrize("lam", [10.0, 20.0, 50.0, 200.0, 1000.0, 37.3])
def test_noise_mean_and_variance_are_poisson(lam):
    """The square-root Gaussian draw used from 10 photons up: the Anscombe constants it had gave a mean of
    lam + 0.25 and a variance of lam + 0.58 (a step of a quarter photon at the switch from exact Poisson)."""
    n = 4_000_000
    photons = 20.0
    counts = add_noise(np.full(n, lam / photons, np.float32), photons, 0.0, np.random.default_rng(11)) * photons
    counts = counts.astype(np.float64)
    se = np.sqrt(lam / n)
    assert abs(counts.mean() - lam) < max(0.02, 5 * se)  # old: +0.25
    assert counts.var() / lam == pytest.approx(1.0, abs=0.006)  # old: 1.057 at 10, 1.028 at 20, 1.010 at 50
    assert np.abs(counts - np.rint(counts)).max() < 1e-3  # still whole photon counts (float32 scaling aside)
    if lam == 10.0:  # no step where the exact sampler hands over
        below = add_noise(np.full(n, 9.99 / photons, np.float32), photons, 0.0, np.random.default_rng(12)) * photons
        assert abs(counts.mean() - below.astype(np.float64).mean() - 0.01) < 0.02


# ---------------------------------------------------------------- parameter checks

@pytest.mark.parametrize("field, value, words", [
    ("photons", 0, "> 0"),
    ("photons", float("nan"), "nan"),
    ("photons", float("inf"), "inf"),
    ("gamma", 0, ">= 0.1"),
    ("psf_xy", -1, ">= 0"),
    ("brightness", -0.5, "> 0"),
    ("brightness", 0.0, "> 0"),
    ("read_noise", -0.1, ">= 0"),
    ("jpeg_quality", 200, "from 0 to 95"),
    ("jpeg_quality", None, "from 0 to 95"),
    ("jpeg_quality", 50.5, "whole number"),
    ("resample", 0.5, ">= 1"),
    ("near_side", 0, "-1 or 1"),
    ("red_specks", -2, "from 0 to 1000"),
    ("radius_scale", 0, "> 0"),
    ("aspect_min", 1.5, "<= 1"),
    ("gamma", True, "finite number"),
    ("photons", "120", "finite number"),
])
def test_optics_params_refuse_impossible_values(field, value, words):
    with pytest.raises(DevolensValueError) as info:
        OpticsParams(**{field: value})
    msg = str(info.value)
    assert f"OpticsParams.{field} must be" in msg and words in msg and msg.endswith(f"got {value!r}")
    with pytest.raises(DevolensValueError, match=f"OpticsParams.{field}"):
        OpticsParams().replace(**{field: value})  # replace builds a new one: checked too


def test_sample_unchanged_and_always_valid():
    """The checks draw nothing: the same seed gives the same parameters as before (render.json records them)."""
    p = OpticsParams.sample(np.random.default_rng(3))
    assert p.psf_xy == 1.1597265020032224 and p.photons == 228.11385198076428
    assert p.near_side == -1 and p.red_specks == 0 and p.jpeg_quality == 31 and p.resample == 1.0
    for s in range(500):  # every draw passes its own checks
        OpticsParams.sample(np.random.default_rng(s))
        MembraneParams.sample(np.random.default_rng(s))


def test_whole_fields_stored_as_int():
    p = OpticsParams(jpeg_quality=80.0, red_specks=np.int64(3), near_side=-1.0)
    assert type(p.jpeg_quality) is int and type(p.red_specks) is int and type(p.near_side) is int
    assert p == OpticsParams(jpeg_quality=80, red_specks=3, near_side=-1)


def test_zero_psf_renders_sharp_nuclei_without_warnings(table):
    """psf_xy = 0 means no blur: before, it divided by zero for every nucleus."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sharp = render_nuclei_frame(table, 1, size=(96, 128), seed=1, rgb=False, optics=OpticsParams(psf_xy=0))
        blurred = render_nuclei_frame(table, 1, size=(96, 128), seed=1, rgb=False, optics=OpticsParams())
    assert np.array_equal(sharp.labels, blurred.labels)  # labels do not depend on the blur
    assert sharp.labels.max() > 0 and sharp.image.max() > 50


@pytest.mark.parametrize("field, value", [
    ("photons", 0), ("gamma", 0), ("photons", float("nan")), ("jpeg_quality", 200), ("read_noise", -0.1),
    ("thickness", 0), ("membrane", -0.5), ("psf", -1), ("puncta", float("inf")),
])
def test_membrane_params_refuse_impossible_values(field, value):
    """The membrane renderer shares the noise and display fields (the same ZeroDivisionError, the same black
    frame for NaN photons); thickness 0 dilated its lines over the whole frame."""
    with pytest.raises(DevolensValueError, match=f"MembraneParams.{field} must be"):
        MembraneParams(**{field: value})


def test_membrane_zero_blur_renders(table):
    f = render_membrane_frame(table, 1, size=(64, 96), seed=2, params=MembraneParams(psf=0, thickness=1))
    assert f.labels.max() > 0 and f.image.max() > 50
