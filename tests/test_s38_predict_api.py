"""The Python API of the segmentation and population predictors (session 38, issue 5):

- ``load("population")`` warns (one :class:`~devolens.errors.InputWarning` per call, in words for its counts) where
  its frames look inverted, as ``devolens population`` notes it: its nuclei model's own look saw the frames reduced
  to one channel, where an inverted colour frame's channel shows no nuclei, and said nothing;
- the predictors' warnings name the user's line, from ``predict`` and ``predict_batch`` too (they named
  segment.py's or population.py's);
- ``diameter="auto"`` with a ``scale``: the scale times the estimate's resizing is held to the range a scale is
  held to (it was not checked at all); the refusal offers ``diameter=None`` too; ``"each"`` does not refuse one
  image of a folder (the whole run stopped, naming no image): that image's resizing is held to the range, and a
  :class:`~devolens.errors.DiameterWarning` names it; the estimate's scale is checked once per stream;
- a ``tile`` that is not a multiple of the network's stride is refused at construction (it failed inside PyTorch).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from _render_helpers import blob_frame
from _zoo_helpers import shipped, tiny_network, tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError, DiameterWarning, InputWarning


def _blobs(seed=0):
    """Bright filled discs (nuclei) on a dark noisy background, uint8."""
    return blob_frame(256, n=40, radius=9, background=10.0, seed=seed)


def _caught(run, category=InputWarning) -> list:
    """The warnings of ``category`` issued while ``run()`` runs (every one)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [w for w in caught if issubclass(w.category, category)]


# ------------------------------------------------------------------------- 1. population's inverted frames

def test_population_warns_of_inverted_frames_once_in_its_own_words(tiny_zoo):
    from devolens.models import load

    population = load("population")
    inverted = [255 - _blobs(seed=i) for i in range(3)]
    for run in (lambda: list(population.predict_iter(inverted)), lambda: population.predict_batch(inverted),
                lambda: population.predict(inverted[0])):
        found = _caught(run)
        assert len(found) == 1, [str(w.message) for w in found]
        text = str(found[0].message)
        # the population's words (the nuclei predictor's said "segment them again"), naming the caller's line
        assert text.startswith("the frames look inverted: dark blobs on a bright background"), text
        assert "counts are not cell counts" in text and "count them again" in text and "segment" not in text
        assert found[0].filename == __file__
    # a stream past the 20 frames judged: judged once; the frames as they are: no warning
    assert len(_caught(lambda: list(population.predict_iter(inverted * 7)))) == 1
    assert _caught(lambda: list(population.predict_iter([_blobs(seed=i) for i in range(3)]))) == []


def test_population_command_prints_its_note_and_no_warning(tiny_zoo, tmp_path, capsys):
    from devolens.cli import main
    from devolens.io.images import write_png

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        write_png(255 - _blobs(seed=i), folder / f"t{i}.png")
    found = _caught(lambda: main(["population", str(folder), "--out", str(tmp_path / "pop.csv"), "--no-plot"]))
    err = " ".join(capsys.readouterr().err.split())
    assert found == [] and err.count("note: the input looks inverted") == 1


@pytest.mark.skipif(not shipped("population"), reason="needs the shipped population model")
def test_shipped_population_warns_of_inverted_colour_frames(shared_data):
    """The shipped model (a total regressor beside the nuclei model) reduces colour frames to one channel before its
    nuclei model: of the inverted real reference frames, the red channel, where no nuclei show. No warning came,
    while ``devolens population`` noted them."""
    from devolens.io.images import read_image
    from devolens.models import load

    names = ("epic_movie_frame160.png", "epic_movie_frame300.png")
    if not all((shared_data / "reference_frames" / name).exists() for name in names):
        pytest.skip("reference frames missing")
    frames = [read_image(shared_data / "reference_frames" / name) for name in names]
    population = load("population")
    found = _caught(lambda: list(population.predict_iter([255 - f for f in frames])))
    assert len(found) == 1 and str(found[0].message).startswith("the frames look inverted")
    assert found[0].filename == __file__
    assert _caught(lambda: list(population.predict_iter(frames))) == []
    # as segment's: a diameter given in pixels says how big the nuclei are, and the frames are not judged
    assert _caught(lambda: list(load("population", diameter=35).predict_iter([255 - f for f in frames]))) == []


# ---------------------------------------------------------------------- 2. warnings name the caller's line

def test_segmentation_warnings_name_the_callers_line(tiny_zoo):
    from devolens.models import load

    nuclei, membrane = load("nuclei"), load("membrane")
    inverted = [255 - _blobs(seed=i) for i in range(2)]
    frames = [_blobs(seed=i) for i in range(2)]
    for run in (lambda: nuclei.predict(inverted[0]), lambda: nuclei.predict_batch(inverted),
                lambda: list(nuclei.predict_iter(inverted)), lambda: membrane.predict(frames[0]),
                lambda: membrane.predict_batch(frames), lambda: list(membrane.predict_iter(frames))):
        found = _caught(run)
        assert len(found) == 1 and found[0].filename == __file__, [(w.filename, w.lineno) for w in found]


def _tiny():
    return tiny_network(3)


def _auto(m: float, **options):
    """A nuclei predictor of diameter="auto" whose size model reads every image at magnification ``m`` (reference
    diameter 20 px, keep band 0.5-1.5, m0 0.8), built with a card of scale 0.5 (its scale checked as the zoo's)."""
    from devolens.predict.segment import NucleiPredictor
    from devolens.predict.sizing import SizeModel, style_features

    n = len(style_features(NucleiPredictor(_tiny(), scale=0.5), np.zeros((32, 32), np.uint8)))
    model = SizeModel(np.zeros(n), np.ones(n), np.zeros(n), float(np.log(m)), m0=0.8)
    kwargs = dict(scale=0.5, diameter_ref=20.0, diameter="auto", size_model=model, auto_keep=(0.5, 1.5),
                  card={"input": {"scale": 0.5}})
    return NucleiPredictor(_tiny(), **{**kwargs, **options})


def test_diameter_warning_names_the_callers_line():
    few = blob_frame(96, n=3, radius=6, background=10.0)  # too few nuclei to judge the magnification by
    for diameter in ("auto", "each"):
        pred = _auto(1.0, diameter=diameter)
        for run in (lambda: pred.predict(few), lambda: pred.predict_batch([few, few]),
                    lambda: list(pred.predict_iter([few]))):
            found = _caught(run, DiameterWarning)
            assert len(found) == 1 and found[0].filename == __file__, [(w.filename, w.lineno) for w in found]


# ------------------------------------------------------------- 3. diameter="auto" with a scale: range-checked

def _discs():
    """12 bright discs apart on black (enough to judge the magnification by)."""
    yy, xx = np.mgrid[:96, :128]
    img = np.zeros((96, 128), np.uint8)
    for k in range(12):
        cy, cx = 16 + 32 * (k // 4), 16 + 32 * (k % 4)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= 25] = 200
    return img


def test_auto_diameter_with_a_scale_is_held_to_the_scale_range():
    # the user's scale 2 (4x the card's 0.5: allowed), and an estimate of 0.2 brings the images to m0 0.8 (x4):
    # 16x the card's scale, beyond the 8x a scale may enlarge; refused before anything is segmented
    pred = _auto(0.2, scale=2.0)
    for run in (lambda: pred.predict(_discs()), lambda: pred.predict_batch([_discs()]),
                lambda: next(pred.predict_iter([_discs()]))):
        with pytest.raises(DevolensError, match=r"scale 2 with diameter='auto' \(estimated 5 px.*enlarged "
                                                r"16x beyond the model's own scale 0\.5.*give a scale of 0\.01-1"):
            run()
    assert pred.last_estimate is None  # nothing applied
    # without a scale of the user's, as a diameter given in pixels: the diameters that fit (enlarged 16x), or none
    with pytest.raises(DevolensError, match=r"diameter='auto' \(estimated 1\.25 px.*enlarged 16x.*give a diameter "
                                            r"of 2\.5-1000 px.*; or diameter=None to segment the images as they are"):
        _auto(0.05).predict(_discs())
    # within the range: as before
    assert _auto(1.0).predict(_discs()).extra["scale"] == pytest.approx(0.5)  # inside the keep band: as they are
    res = _auto(0.4).predict(_discs())  # brought to 0.625 (lo**2 / m): x1.5625
    assert res.extra["scale"] == pytest.approx(0.5 * 0.625 / 0.4)


def test_auto_refusal_offers_diameter_none_in_the_command_words():
    from devolens.errors import set_command

    set_command(True)  # (as the devolens command runs)
    try:
        with pytest.raises(DevolensError, match=r"give a diameter of 2\.5-1000 px.*; or --diameter none to segment"):
            _auto(0.05).predict(_discs())
    finally:
        set_command(False)


def test_each_holds_one_images_resizing_to_the_range_and_names_it():
    # the size model reads every image at 0.05 (to be enlarged 16x: beyond the 8x allowed) or 0.2 with the user's
    # scale 2 (16x the card's 0.5): "each" segments it, enlarged as far as the range goes (8x the card's scale),
    # where it stopped the whole run (and a folder's), naming no image
    for pred, scale in ((_auto(0.05, diameter="each"), 4.0), (_auto(0.2, scale=2.0, diameter="each"), 4.0)):
        got: list = []
        found = _caught(lambda: got.extend(pred.predict_iter([_discs(), _discs()])), DiameterWarning)
        assert [r.extra["scale"] for r in got] == [pytest.approx(scale)] * 2
        assert len(found) == 1 and found[0].filename == __file__
        assert re.search(r"diameter='each': 2 of 2 images \(at indices 0, 1 in the input\) looked 0\.(05|2)x as "
                         r"magnified .* beyond the range .* resized as far as that goes", str(found[0].message))
        est = pred.estimates[0]
        assert est.held is not None and est.diameter > est.held  # the diameter used, and the one estimated
    one = _caught(lambda: _auto(0.05, diameter="each").predict(_discs()), DiameterWarning)
    assert "1 of 1 images (at index 0 in the input)" in str(one[0].message)
    assert "resized 8x, not the 16x it asked" in str(one[0].message)
    # within the range: no warning, as before
    assert not _caught(lambda: _auto(0.4, diameter="each").predict(_discs()), DiameterWarning)


def test_the_estimates_scale_is_checked_once_per_stream(monkeypatch):
    for diameter in ("auto", "each"):
        pred = _auto(0.4, diameter=diameter)
        calls = []
        checked = pred._estimated_scale
        monkeypatch.setattr(pred, "_estimated_scale", lambda est: calls.append(est) or checked(est))
        list(pred.predict_iter([_discs(), _discs()]))
        assert len(calls) == (1 if diameter == "auto" else 2), diameter  # (each: one estimate per image)


# ---------------------------------------------------------------------------- 4. a tile off the network's grid

def test_tile_off_the_networks_multiple_is_refused_naming_the_nearest(tiny_zoo):
    from devolens.models import load
    from devolens.predict.segment import NucleiPredictor

    with pytest.raises(DevolensError, match=r"tile must be a multiple of 8 pixels .*got 250: give 248 or 256"):
        load("nuclei", tile=250)  # the tiny zoo's multiple: 8
    with pytest.raises(DevolensError, match=r"tile must be a multiple of 32 pixels .*got 250: give 224 or 256"):
        NucleiPredictor(_tiny(), scale=1.0, tile=250)
    with pytest.raises(DevolensError, match=r"tile must be a multiple of 16 pixels .*got 100.0: give 96 or 112"):
        load("membrane", multiple=16, tile=100.0)
    # a multiple of it: tiled as before
    res = load("nuclei", tile=64, overlap=16).predict(_blobs())  # (128 x 128 working pixels: 9 tiles)
    assert res.labels.shape == (256, 256)
