"""The membrane walkthrough's follow-ups (session 38):

- nuclei frames given to the membrane model with the default ``diameter="auto"`` get the "looks like nuclei"
  :class:`~devolens.errors.InputWarning`: the membrane size model read late-embryo nuclei renders as magnified, the
  working scale shrank to 0.6 of the card's, and the kind check, judged at half of it (0.30 of the input's pixels),
  saw the nuclei blur into "lines" (40-44 % of bright pixels in blobs, under 45 %): the misjudged magnification
  silenced the note that explains it. The kind is now judged at the card's scale, and, where the estimate resized
  the images, confirmed at the working scale (a magnified membrane image, rightly shrunk, shows lines wide enough to
  read as blobs at the card's scale: a render enlarged 2x read 97 % and got a false note);
- ``diameter="auto"`` on the membrane model records which frames it judged by (``last_estimate.frames``, the
  ``magnification_estimate.frames`` of segment.json): dropping the frames of noise rebuilt the chosen frames as a
  plain list, without their positions (None);
- the population predictor's own resizing (a ``diameter``, or an ``"auto"`` estimate) times its nuclei model's
  ``scale`` is held to the range a scale is held to, as the segmentation predictors' is.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from _render_helpers import blob_frame
from _zoo_helpers import shipped
from devolens.errors import DevolensError, InputWarning


def _caught(run, category=InputWarning) -> list:
    """The warnings of ``category`` issued while ``run()`` runs (every one)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [w for w in caught if issubclass(w.category, category)]


# ------------------------------------------------------------- 1. the kind judged whatever the estimate's resizing

def _membrane_view(shrink: float):
    """A membrane predictor as judge_input sees it: card scale 0.75, its working scale ``shrink`` times that (a
    diameter="auto" estimate's resizing; 1: none estimated)."""
    net = SimpleNamespace(channel="auto", percentiles=(1.0, 99.8), flatten=0.0, outliers=0.0)
    estimated = shrink != 1.0
    return SimpleNamespace(network=net, card_scale=0.75, working_scale=lambda: 0.75 * shrink, auto_each=False,
                           diameter=60.0 if estimated else None, last_estimate=object() if estimated else None)


def _lines(size=256, pitch=40, seed=0, width=3):
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.float32)
    for k in range(pitch // 2, size, pitch):
        img[k:k + width, :] = 1.0
        img[:, k:k + width] = 1.0
    return (img * 200 + rng.normal(10, 3, img.shape)).clip(0, 255).astype(np.uint8)


def test_the_kind_is_judged_at_the_cards_scale_whatever_the_estimate_shrank():
    from devolens.predict.notes import judge_input

    small = [blob_frame(256, n=40, radius=9, background=10.0, seed=i) for i in range(3)]
    large = [blob_frame(256, n=40, radius=14, background=10.0, seed=i) for i in range(3)]
    # judged at the card's scale (0.4 of the input's pixels): blobs (85-98 %), with or without an estimate; nuclei
    # an estimate shrank (judging scale 0.3) must still read as blobs there: the larger ones do (94 %)
    for shrink, blobs in ((1.0, small), (1.0, large), (0.6, large)):
        look = judge_input(blobs, "membrane", _membrane_view(shrink))
        assert look is not None and look.what == "nuclei" and look.value > 0.8, (shrink, look)
        assert judge_input([_lines(seed=i) for i in range(3)], "membrane", _membrane_view(shrink)) is None


def test_a_magnified_membrane_shrunk_by_its_estimate_does_not_look_like_nuclei():
    from devolens.predict import notes
    from devolens.predict.notes import judge_input

    # lines 18 px wide (a membrane image enlarged): at the card's judging scale (0.4) 7 px, as wide as the opening,
    # "blobs" (100 %); at the judging scale of the working scale the estimate shrank them to (0.4 of the card's:
    # 0.2), 3.6 px: lines (9 %). Judged at the card's scale alone, they got the "looks like nuclei" note
    wide = [_lines(512, pitch=120, width=18, seed=i) for i in range(3)]
    assert judge_input(wide, "membrane", _membrane_view(0.4)) is None
    # unresized (no estimate, both scales the same) nothing changes: they read as blobs, as before
    look = judge_input(wide, "membrane", _membrane_view(1.0))
    assert look is not None and look.what == "nuclei" and notes.LOOKS_LIKE_NUCLEI_WORKING < 0.32  # (EPIC nuclei: 0.32+)


@pytest.mark.skipif(not shipped("membrane"), reason="needs the shipped membrane model")
def test_membrane_auto_on_a_magnified_membrane_render_says_nothing_of_nuclei(tmp_path):
    import cv2

    from devolens.cli import main
    from devolens.io.images import read_image
    from devolens.models import load

    # the one frame read (a frame's seed is drawn from the embryo's and its time: the same image as --every 60 gave)
    assert main(["-q", "render", "--simulate", "1", "--kind", "membrane", "--times", "61", "--seed", "7", "--out",
                 str(tmp_path / "m")]) == 0
    frame = read_image(next((tmp_path / "m" / "frames").glob("*_t061.png")))  # a 752x512 slice
    big = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)  # magnified 2x
    membrane = load("membrane", diameter="auto")
    assert not _caught(lambda: membrane.predict(big))  # was: "the images look like nuclei" (97 % blobs at 0.4)
    assert membrane.working_scale() < 0.5 * membrane.card_scale  # the estimate shrank it back (0.32 of the card's)


@pytest.mark.skipif(not shipped("membrane"), reason="needs the shipped membrane model")
def test_membrane_auto_says_a_late_embryos_nuclei_look_like_nuclei(shared_data, tmp_path):
    from devolens.cli import main
    from devolens.io.images import read_image
    from devolens.models import load

    table = shared_data / "epic" / "CD20241010_JIM767_25_L3.csv"
    if not table.is_file():
        pytest.skip("EPIC table missing")
    assert main(["-q", "render", str(table), "--times", "110", "--seed", "3", "--out", str(tmp_path / "nuc")]) == 0
    frame = read_image(tmp_path / "nuc" / "frames" / "t110.png")  # 291 cells, EPIC framing
    membrane = load("membrane", diameter="auto")
    found = _caught(lambda: membrane.predict(frame))
    assert len(found) == 1 and str(found[0].message).startswith("the images look like nuclei"), found
    assert found[0].filename == __file__
    # the case of the defect: the estimate shrank the frame for the network (judged at 0.30 it said nothing)
    assert membrane.working_scale() < 0.7 * membrane.card_scale


# ------------------------------------------------------------- 2. the frames a membrane estimate judged by

@pytest.mark.skipif(not shipped("membrane"), reason="needs the shipped membrane model")
def test_membrane_auto_records_the_frames_it_judged_by(tmp_path):
    from devolens.cli import main
    from devolens.io.images import read_image
    from devolens.models import load
    from devolens.predict.sizing import gather

    assert main(["-q", "render", "--simulate", "1", "--size", "256", "256", "--every", "80", "--kind", "membrane",
                 "--seed", "3", "--out", str(tmp_path / "m")]) == 0
    frames = [read_image(p) for p in sorted((tmp_path / "m" / "frames").glob("*.png"))][-2:]
    noise = np.random.default_rng(0).poisson(20, frames[0].shape[:2]).astype(np.uint8)  # a camera's dark frame
    stack = [noise, *frames]
    membrane = load("membrane", diameter="auto")
    _, chosen = gather(membrane, iter(stack))
    assert chosen.frames == [0, 1, 2]  # the noise frame is among those gathered (hundreds of "cells")...
    results = list(membrane.predict_iter(iter(stack)))
    # ... and left out of the estimate with its position: the frames judged by are the two membrane slices
    assert membrane.last_estimate.frames == [1, 2] and len(membrane.last_estimate.used) == 2
    assert results[0].count == 0 and results[0].extra.get("no_structure")


# ------------------------------------------------------------- 3. population: its resizing times the user's scale

@pytest.mark.skipif(not shipped("population"), reason="needs the shipped population model")
def test_population_diameter_with_a_scale_is_held_to_the_scale_range():
    from devolens.models import load

    # the nuclei model's scale 2 (4x its card's 0.5: allowed) and diameter 10 (resized 3.56x: allowed) together
    # enlarge the frames 14.2x, beyond the 8x a scale may: refused at load, naming the scales that fit
    with pytest.raises(DevolensError, match=r"scale 2 with diameter 10 px: the images would be enlarged 14\.2x "
                                            r"beyond the model's own scale 0\.5.*give a scale of 0\.01-1\.123"):
        load("population", scale=2.0, diameter=10)
    assert load("population", scale=2.0, diameter=35).resize == pytest.approx(35.6 / 35)  # within it: as before
    assert load("population", diameter=10).resize == pytest.approx(3.56)


def test_population_auto_estimate_with_a_scale_is_held_to_the_scale_range():
    from devolens.predict.population import PopulationPredictor
    from test_s38_predict_api import _auto, _discs

    # the nuclei model (scale 2, 4x its card's 0.5) reads every frame at magnification 0.2: the estimate brings
    # them to m0 0.8 (x4), 16x the card's scale; refused before any frame is counted, nothing recorded
    composition = np.full((2, 7), 1 / 7, np.float32)
    knots = np.array([0.0, 1000.0])
    population = PopulationPredictor("composition", nuclei=_auto(0.2, scale=2.0, diameter=None), auto=True,
                                     composition=composition, knots_x=knots, knots_y=knots, scale_known=False)
    with pytest.raises(DevolensError, match=r"scale 2 with diameter='auto' \(estimated 5 px.*enlarged 16x beyond "
                                            r"the model's own scale 0\.5"):
        next(population.predict_iter([_discs()]))
    assert population.last_estimate is None
