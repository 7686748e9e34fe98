"""``--diameter auto`` on nuclei smaller than its size model reads right (forty-third session): culture wells of 5-10 px
nuclei read 0.22-0.46x magnified, so the network, run at a scale meant for nuclei 1.5-3x wider, drew their outlines too
large or merged touching ones (instance F1 0.00-0.86), and ``segment`` said nothing. Now, where the size model did not
read the images as embryos (its embryo head's weight, recorded in the estimate) and their bright spots, measured on the
images (:func:`devolens.predict.sizing.spot_diameter`), are smaller at the network's scale than the smallest nuclei it
knows, a note gives the ``--diameter`` to run again with; it is recorded in ``segment.json``. Embryos, and cultures of
larger nuclei, get no such note, and their results are as before (the note changes nothing)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from _zoo_helpers import shipped
from devolens.cli import main
from test_s42_culture_notes import _culture

SMALL = "look smaller than --diameter auto assumed"


def _disc_image(diameter: float, shape=(256, 256), step: int = 24) -> np.ndarray:
    """Discs of one ``diameter`` on a grid, blurred a little: a spot size known exactly, 8-bit."""
    import cv2

    yy, xx = np.mgrid[:shape[0], :shape[1]]
    img = np.zeros(shape, np.float32)
    for cy in range(step // 2, shape[0], step):
        for cx in range(step // 2, shape[1], step):
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < (diameter / 2) ** 2] = 1.0
    img = cv2.GaussianBlur(img, (0, 0), 0.8) * 200 + 20
    return img.astype(np.uint8)


# ------------------------------------------------------------------------- the spots' size, measured on the image

@pytest.mark.parametrize("diameter", [6.0, 10.0, 16.0])
def test_spot_diameter_measures_discs(diameter):
    from devolens.predict.sizing import spot_diameter

    measured = spot_diameter(_disc_image(diameter, step=int(2.5 * diameter)))
    assert measured is not None and 0.85 * diameter <= measured <= 1.2 * diameter, measured


def test_spot_diameter_of_culture_nuclei_and_its_limits():
    from devolens.predict.sizing import spot_diameter

    for lo, hi in ((5.5, 6.5), (9, 11)):
        measured = spot_diameter(_culture((256, 256), (lo, hi)), "auto", (1.0, 99.8), 0.5)
        assert 0.95 * lo <= measured <= 1.2 * hi, (lo, hi, measured)
    # spots larger than "largest" are not told apart; a blank or tiny image has none
    assert spot_diameter(_disc_image(16.0, step=40), largest=6.0) is None
    assert spot_diameter(np.zeros((64, 64), np.uint8)) is None
    assert spot_diameter(np.full((8, 8), 100, np.uint8)) is None


# ------------------------------------------------------------------------- the check and its words

def _predictor(embryo=0.0, working=1.2, trusted=8, auto=True, each=False):
    """What small_nuclei_check reads of a predictor: the shipped card's figures (reference 35.6 px, card scale 0.5,
    nuclei known from 20.1 px), an estimate and a working scale."""
    est = SimpleNamespace(trusted=trusted, embryo=embryo, magnification=0.34)
    net = SimpleNamespace(channel="auto", percentiles=(1.0, 99.8), outliers=0.5)
    return SimpleNamespace(auto=auto, auto_each=each, last_estimate=est, known_sizes=(20.1, 87.0), diameter_ref=35.6,
                           card_scale=0.5, working_scale=lambda: working, network=net)


def test_small_nuclei_check_speaks_for_small_spots_not_read_as_embryos():
    from devolens.predict.notes import small_nuclei_check

    frames = [_disc_image(6.0, step=15) for _ in range(3)]
    check = small_nuclei_check(frames, _predictor())
    # at working scale 1.2 (card 0.5) the network knows nuclei down to 20.1 * 0.5 / 1.2 = 8.4 input px
    assert check is not None and 5.5 <= check.measured <= 7.5
    assert check.smallest == pytest.approx(20.1 * 0.5 / 1.2) and check.assumed == pytest.approx(35.6 * 0.5 / 1.2)
    assert small_nuclei_check(frames, _predictor(embryo=0.9)) is None  # read as embryos: never
    assert small_nuclei_check(frames, _predictor(embryo=None)) is None
    # enlarged enough (working scale 2.0: nuclei known down to 5 px of the input), the network knows them
    assert small_nuclei_check(frames, _predictor(working=2.0)) is None
    assert small_nuclei_check(frames, _predictor(trusted=0)) is None  # the estimate did not judge the images
    assert small_nuclei_check(frames, _predictor(auto=False)) is None  # a diameter given by hand
    assert small_nuclei_check(frames, _predictor(each=True)) is None
    assert small_nuclei_check([], _predictor()) is None
    larger = [_disc_image(14.0, step=30) for _ in range(3)]
    assert small_nuclei_check(larger, _predictor()) is None
    # most frames decide: one frame of small spots among larger ones is not enough
    assert small_nuclei_check([frames[0]] + larger[:2], _predictor()) is None


def test_small_nuclei_note_says_what_was_measured_and_what_to_do():
    from devolens.predict.notes import SmallNuclei, small_nuclei_note

    words = small_nuclei_note(SmallNuclei(6.7, 14.0, 7.9, 0.31), "nuclei")
    assert words.startswith("the nuclei look smaller than --diameter auto assumed: bright spots in the images measure "
                            "about 7 px across")
    assert "the automatic estimate (0.31x magnified) segmented them as nuclei of about 14 px" in words
    assert "under about 8 px" in words and "counts low" in words and "cultured cells" in words
    assert words.endswith("Run again with --diameter 7 and look at the overlays")


def test_the_note_replaces_the_size_note(tmp_path):
    """Both speak of the same run; the size note's diameter is that of the objects found, too large here."""
    from devolens.cli.predict import _segment_notes
    from devolens.io.images import write_png
    from devolens.predict.notes import SmallNuclei

    write_png(_disc_image(6.0), tmp_path / "a.png")
    summary = {"frames": 1, "objects": 100, "suggest_diameter": 8.6, "known_sizes": (20.1, 87.0), "resized": True}
    before = [text for text, _ in _segment_notes("nuclei", tmp_path / "a.png", "project", "time", summary)]
    assert any("far from" in t for t in before) and not any(SMALL in t for t in before)
    summary["small_nuclei"] = SmallNuclei(6.7, 14.0, 7.9, 0.31)
    after = [text for text, _ in _segment_notes("nuclei", tmp_path / "a.png", "project", "time", summary)]
    assert any(SMALL in t and "--diameter 7" in t for t in after) and not any("far from" in t for t in after)


# ------------------------------------------------------------------------- the size model's embryo head

def test_head_weights_are_the_gate_that_mixes_the_heads():
    from devolens.predict.sizing import SizeModel

    rng = np.random.default_rng(0)
    d, k = 5, 3
    model = SizeModel(np.zeros(d), np.ones(d), rng.normal(size=(k, d)), rng.normal(size=k), 0.8,
                      rng.normal(size=(k, d)), rng.normal(size=k))
    x = rng.normal(size=(4, d))
    w = model.head_weights(x)
    assert w.shape == (4, k) and np.allclose(w.sum(axis=1), 1.0)
    heads = x @ model.coef.T + model.intercept
    assert np.allclose(np.log(model.magnification(x)), (w * heads).sum(axis=1))
    two = SizeModel(np.zeros(d), np.ones(d), rng.normal(size=(2, d)), rng.normal(size=2), 0.8, rng.normal(size=d), 0.3)
    p = two.head_weights(x)[:, 0]
    assert np.allclose(np.log(two.magnification(x)), p * (x @ two.coef[0] + two.intercept[0])
                       + (1 - p) * (x @ two.coef[1] + two.intercept[1]))
    one = SizeModel(np.zeros(d), np.ones(d), rng.normal(size=d), 0.1, 0.8)
    assert np.array_equal(one.head_weights(x), np.ones((4, 1)))


def _need_nuclei():
    if not shipped("nuclei"):
        pytest.skip("the nuclei model's weights are not shipped here")


def test_the_estimate_records_how_much_it_read_embryos(shared_data):
    _need_nuclei()
    from devolens.io.images import read_image
    from devolens.models import load

    nuclei = load("nuclei")
    culture = nuclei.estimate_diameter([_culture((384, 384), (5.5, 6.5), seed=s) for s in range(2)])
    assert culture.trusted and culture.embryo < 0.1
    path = shared_data / "reference_frames" / "epic_movie_frame160.png"
    if not path.exists():
        pytest.skip("reference frames missing")
    frame = nuclei.estimate_diameter([read_image(path)])
    assert frame.trusted and frame.embryo > 0.9


# ------------------------------------------------------------------------- segment: none where it works
# (small culture nuclei are now segmented at their spots' size, with a note saying so: test_s43_small_nuclei_auto.py)

def test_segment_is_silent_on_larger_culture_nuclei(tmp_path, capsys):
    _need_nuclei()
    import tifffile

    path = tmp_path / "w.tif"
    tifffile.imwrite(path, _culture((384, 384), (14, 16), seed=1))
    out = tmp_path / "o"
    assert main(["segment", "nuclei", str(path), "--out", str(out), "--no-overlay"]) == 0
    capsys.readouterr()
    assert not [n for n in json.loads((out / "segment.json").read_text())["notes"] if SMALL in n]


def test_segment_is_silent_on_the_reference_frames(shared_data, tmp_path, capsys):
    _need_nuclei()
    folder = shared_data / "reference_frames"
    if not (folder / "epic_movie_frame300.png").exists():
        pytest.skip("reference frames missing")
    out = tmp_path / "o"
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--no-overlay"]) == 0
    capsys.readouterr()
    assert not [n for n in json.loads((out / "segment.json").read_text())["notes"] if SMALL in n]
