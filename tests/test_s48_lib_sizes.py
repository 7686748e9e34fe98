"""Forty-eighth session, the library at the network's own scale (``diameter=None``) and its population helpers.

1. Frames the size model reads at 0.45-0.51x lost 25-50 % of their nuclei as they are, with no DiameterWarning and no
   ``--diameter none`` note: both looked only beyond ``far_magnifications`` (0.40-1.60x). Frames read under
   ``low_magnification`` (the keep band's 0.75x over the size model's p90 error: 0.54x) are now said too, with
   ``diameter='auto'`` / ``--diameter auto`` to use instead.
2. The population predictor at ``diameter=None`` gives the same warning (it had no magnification look at all).
3. ``smooth_populations`` leaves NaN rows out of its fit (a NaN read as 0 in the sum pulled the totals down).
4. Frames reading ``AMBIGUOUS_CELLS`` or more get a library warning, as ``population`` notes them.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devolens.errors import DevolensWarning, DiameterWarning
from devolens.models.zoo import ZOO_DIR

NUCLEI_OK = (ZOO_DIR / "nuclei" / "weights.safetensors").is_file()
needs_nuclei = pytest.mark.skipif(not NUCLEI_OK, reason="nuclei weights not shipped")
ROOT = Path(__file__).resolve().parents[1]


def _frames(shared_data, factor: float = 1.0) -> list[np.ndarray]:
    from PIL import Image

    from devolens.io.images import read_image

    out = []
    for p in sorted((shared_data / "reference_frames").glob("*.png")):
        img = Image.fromarray(read_image(p))
        if factor != 1.0:
            img = img.resize((round(img.width * factor), round(img.height * factor)), Image.BICUBIC)
        out.append(np.asarray(img))
    return out


def _said(call, category=DiameterWarning) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, category)
            and (category is not DevolensWarning or w.category is DevolensWarning)]


def _estimate(m: float):
    from devolens.predict.sizing import DiameterEstimate

    return DiameterEstimate(diameter=None, magnification=m, per_image=[m], trusted=1)


# ----------------------------------------------------------------------------------------------- 1. the low band
@needs_nuclei
def test_the_low_magnification_is_the_keep_band_edge_over_the_size_models_error(monkeypatch):
    from devolens.models import load

    pred = load("nuclei")
    far, keep = pred.far_magnifications, pred.auto_keep
    assert pred.low_magnification == pytest.approx(keep[0] * far[0] / pred.trained_zooms[0])
    assert far[0] < pred.low_magnification < pred.trained_zooms[0]
    assert pred.low_magnification == pytest.approx(0.54, abs=0.01)
    # what magnification_check returns: under the low edge or beyond the far band, nothing in between
    for m, said in ((0.51, True), (0.45, True), (0.38, True), (0.56, False), (0.7, False), (1.5, False), (1.7, True)):
        monkeypatch.setattr(pred, "estimate_diameter", lambda images, m=m: _estimate(m))
        assert (pred.magnification_check([np.zeros((8, 8))]) is not None) is said, m


def test_the_words_say_what_to_do_in_the_library_and_the_command():
    from devolens.cli.predict import _magnification_note
    from devolens.predict.notes import magnification_message

    bands = ((0.396, 1.596), (0.75, 1.15))
    low = magnification_message(_estimate(0.51), (0.55, 1.15), far=bands[0], keep=bands[1])
    assert "0.51x" in low and "below the 0.75x" in low and "too few" in low and "give diameter='auto'" in low
    far = magnification_message(_estimate(0.3), (0.55, 1.15), far=bands[0], keep=bands[1])
    assert "far from the 0.55-1.15x" in far and "give diameter='auto'" in far
    note = " ".join(_magnification_note(_estimate(0.51), (0.55, 1.15), "frames", "the counts", bands).split())
    assert "--diameter none: the frames look 0.51x" in note and "the counts are likely too few" in note
    assert "--diameter auto" in note
    note = " ".join(_magnification_note(_estimate(3.2), (0.55, 1.15), "frames", "the counts", bands).split())
    assert "far from the 0.55-1.15x the network was trained on" in note and "--diameter auto" in note


@needs_nuclei
def test_frames_read_at_half_the_training_scale_warn_at_diameter_none(shared_data):
    """Reference frame 160 shrunk to 0.5x reads about 0.5x: at diameter=None nuclei are lost (a warning naming
    diameter='auto'); as filmed it gets none."""
    from devolens.models import load

    small = _frames(shared_data, 0.5)[1]
    pred = load("nuclei")
    said = _said(lambda: pred.predict(small))
    assert len(said) == 1 and "diameter=None" in said[0] and "diameter='auto'" in said[0], said
    m = float(re.search(r"look ([0-9.]+)x", said[0]).group(1))
    assert pred.far_magnifications[0] <= m < pred.low_magnification  # (the far band alone said nothing)
    assert not _said(lambda: load("nuclei").predict(_frames(shared_data)[1]))  # (as filmed, read 1.34x: nothing)


# ------------------------------------------------------------------------------------------- 2. population, None
@needs_nuclei
def test_the_population_predictor_warns_at_diameter_none_too(shared_data):
    from devolens.models import load

    pops = load("population")
    small = _frames(shared_data, 0.5)[:2]  # (read 0.51x and 0.50x)
    said = _said(lambda: pops.predict_batch(small))
    assert len(said) == 1 and "diameter=None: the frames look" in said[0] and "the counts are" in said[0], said
    assert "diameter='auto'" in said[0]
    assert not _said(lambda: load("population").predict(_frames(shared_data)[1]))  # as filmed: nothing


def test_the_readme_population_example_resizes_as_the_command():
    text = (ROOT / "README.md").read_text()
    block = text[text.index("```python"):text.index("```", text.index("```python") + 9)]
    assert 'load("population")' not in block and 'load("population", diameter="auto")' in block


# ------------------------------------------------------------------------------------------- 3. smoothing NaN
def test_smooth_populations_leaves_empty_rows_out_of_the_fit():
    from devolens.predict.population import PopulationPredictor
    from devolens.predict.postprocess import smooth_populations

    df = pd.DataFrame({"A": [8, 16, np.nan, 32], "E": [2, 2, np.nan, 4]})
    df["total"] = df.sum(axis=1, min_count=1)
    for out in (smooth_populations(df), PopulationPredictor.smooth(df)):
        assert out["total"].tolist()[:2] == [10.0, 18.0] and np.isnan(out["total"][2]) and out["total"][3] == 36.0
        assert np.isnan(out["A"][2]) and out["A"].tolist()[:2] == [8.0, 16.0]
    # as if the NaN row were absent
    fitted = smooth_populations(df.dropna().reset_index(drop=True))
    assert np.allclose(smooth_populations(df).dropna().to_numpy(), fitted.to_numpy())
    # every row empty: stays empty
    assert smooth_populations(df.iloc[[2]])[["A", "E", "total"]].isna().all().all()


def test_smooth_populations_without_nan_is_the_plain_isotonic_fit():
    from devolens.predict.postprocess import monotone_nondecreasing, smooth_populations

    df = pd.DataFrame({"A": [8, 16, 12, 32], "P": [1, 1, 2, 1], "E": [2, 2, 1, 4]})
    df["total"] = df.sum(axis=1)
    out = smooth_populations(df)
    assert out["A"].tolist() == monotone_nondecreasing(df["A"].to_numpy(float)).tolist()
    assert out["P"].tolist() == (-monotone_nondecreasing(-df["P"].to_numpy(float))).tolist()
    assert out["total"].tolist() == monotone_nondecreasing(out[["A", "E", "P"]].sum(axis=1).to_numpy()).tolist()


# ------------------------------------------------------------------------------------------- 4. late readings
@needs_nuclei
def test_late_readings_warn_once_per_call(shared_data, monkeypatch):
    import devolens.predict.population as population
    from devolens.models import load

    monkeypatch.setattr(population, "AMBIGUOUS_CELLS", 150)  # (the reference frames read ~12, ~200, ~275)
    pops = load("population", diameter="auto")
    frames = _frames(shared_data)
    for call in (lambda: pops.predict_batch(frames), lambda: list(pops.predict_iter(frames))):
        said = _said(call, DevolensWarning)
        # (the count itself is the arithmetic's: 200 with VNNI's int8, 201 with AVX2's 7-bit activations)
        assert len(said) == 1 and re.match(r"frame 1 \(from 0\) reads (\d+) cells, 150 or more", said[0]), said
        assert 180 <= int(re.match(r"frame 1 \(from 0\) reads (\d+)", said[0])[1]) <= 220
        assert "up to ~580" in said[0]
    said = _said(lambda: pops.predict(frames[2]), DevolensWarning)
    assert len(said) == 1 and said[0].startswith("the frame reads")
    assert not _said(lambda: pops.predict(frames[0]), DevolensWarning)


def test_the_command_reads_late_frames_as_the_library():
    """One source of truth: the command's note reads population.late_readings and its words."""
    from devolens.predict.population import AMBIGUOUS_CELLS, MAX_EMBRYO_CELLS, late_readings

    got = late_readings([AMBIGUOUS_CELLS - 1, AMBIGUOUS_CELLS, 500.0, 580.0, np.nan], 572.0)
    assert got.tolist() == [False, True, True, False, False]
    assert late_readings([MAX_EMBRYO_CELLS], None).tolist() == [True]
    source = (ROOT / "src" / "devolens" / "cli" / "predict.py").read_text()
    assert "late_readings(" in source and '>= AMBIGUOUS_CELLS' not in source
