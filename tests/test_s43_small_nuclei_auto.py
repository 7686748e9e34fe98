"""``--diameter auto`` segments culture nuclei smaller than its size model reads at their own size (forty-third
session): where the size model did not read the images as embryos and their bright spots, measured on the images the
estimate was made from, are smaller at the scale it chose than the smallest nuclei the network knows, the run uses the
spots' diameter (rounded, as ``--diameter`` takes it) instead of the size model's reading. Before, it only said so in a
note naming the ``--diameter`` to run again with. The estimate records both (``DiameterEstimate.spots``,
``model_diameter``, ``model_resize``; ``segment.json``'s ``magnification_estimate``: ``from: spots``), the library
issues a DiameterWarning, the command a note saying what was done; ``diameter="each"`` does the same image by image.
Embryos, and cultures of larger nuclei, are segmented as before."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from _zoo_helpers import shipped
from devolens.cli import main
from test_s42_culture_notes import _culture, _discs

SMALL = "look smaller than --diameter auto assumed"  # the note before, which spoke after the run


def _spots_estimate(**fields):
    from devolens.predict.sizing import DiameterEstimate

    base = dict(diameter=7.0, magnification=0.37, per_image=[0.37, 0.36], trusted=2, resize=35.6 / 7.0,
                embryo=0.0, spots=6.7, model_diameter=16.5, model_resize=35.6 / 16.5)
    base.update(fields)
    return DiameterEstimate(**base)


# ------------------------------------------------------------------------- the words and the records (no network)

def test_spots_words_say_what_was_measured_used_and_how_to_go_back():
    from devolens.predict.sizing import spots_words

    words = spots_words([_spots_estimate()], "nuclei")
    assert words.startswith("the nuclei measured about 7 px across, smaller than the size model reads them")
    assert "learned from embryos" in words and "0.37x as magnified" in words and "nuclei of about 16 px" in words
    assert "so the run used --diameter 7, resized 5.1x for the network" in words
    assert "give --diameter 16.5 to use the size model's reading instead, or another value" in words
    library = spots_words([_spots_estimate()], "nuclei", library=True)
    assert "segmented as diameter=7 would" in library and "give diameter=16.5 " in library and "--" not in library
    # a size model that kept the images as they are: its reading is --diameter none (the reference's nuclei)
    kept = spots_words([_spots_estimate(model_diameter=None, model_resize=1.0)], "nuclei")
    assert "nuclei of about 36 px" in kept and "give --diameter none to use" in kept
    each = spots_words([_spots_estimate(spots=6.2), _spots_estimate(spots=9.4)], "nuclei", each=True)
    assert each == ("showed nuclei smaller than the size model reads (it learned from embryos): bright spots of about "
                    "6-9 px across, segmented at that size")


def test_the_library_warns_where_it_used_the_spots():
    from devolens.errors import DiameterWarning
    from devolens.predict.sizing import DiameterEstimate, warn_untrusted

    with pytest.warns(DiameterWarning, match=r"diameter='auto': the nuclei measured about 7 px .*\.last_estimate"):
        warn_untrusted([_spots_estimate()], "nuclei")
    plain = DiameterEstimate(diameter=16.5, magnification=0.37, per_image=[0.37], trusted=1, embryo=0.0)
    with pytest.warns(DiameterWarning, match=r"diameter='each': 1 of 2 images \(at index 1 in the input\) showed "
                                             r"nuclei smaller than the size model reads.*\.estimates"):
        warn_untrusted([plain, _spots_estimate()], "nuclei", each=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_untrusted([plain], "nuclei")  # the size model's reading: nothing to say


def test_the_records_say_the_estimate_came_from_the_spots():
    from devolens.cli.predict import _estimate_note, _estimates_note, _plain_note, _sizing_record
    from devolens.predict.sizing import DiameterEstimate

    record = _sizing_record("auto", _spots_estimate())
    assert record["from"] == "spots" and record["diameter"] == 7.0 and record["spots_diameter"] == pytest.approx(6.7)
    assert record["model_diameter"] == pytest.approx(16.5) and record["model_resize"] == pytest.approx(35.6 / 16.5)
    json.dumps(record)
    plain = DiameterEstimate(diameter=16.5, magnification=0.37, per_image=[0.37], trusted=1, resize=2.2)
    assert "from" not in _sizing_record("auto", plain) and "spots_diameter" not in _sizing_record("auto", plain)
    rows = _sizing_record("each", estimates=[plain, _spots_estimate()], frames=["a", "b"])["per_image"]
    assert "from" not in rows[0] and rows[1]["from"] == "spots" and rows[1]["frame"] == "b"
    note = _plain_note(_estimate_note(_spots_estimate(), "nuclei"))
    assert note.startswith("diameter auto: the nuclei measured about 7 px across") and "--diameter 7," in note
    each = _estimates_note([plain, _spots_estimate()], "nuclei")
    assert each.startswith("note: diameter each: 2 of 2 images resized") and "; 1 of them showed nuclei smaller" in each


def test_the_note_after_the_run_is_not_said_again():
    """The check after the run (the note before) stays silent for an estimate already made from the spots."""
    from types import SimpleNamespace

    from devolens.predict.notes import small_nuclei_check
    from test_s43_small_nuclei_note import _disc_image, _predictor

    frames = [_disc_image(6.0, step=15) for _ in range(3)]
    predictor = _predictor()
    assert small_nuclei_check(frames, predictor) is not None  # the size model's reading: still noted
    predictor.last_estimate = SimpleNamespace(**vars(predictor.last_estimate), spots=6.1)
    assert small_nuclei_check(frames, predictor) is None


# ------------------------------------------------------------------------- the switch itself (the shipped model)

def _need_nuclei():
    if not shipped("nuclei"):
        pytest.skip("the nuclei model's weights are not shipped here")


def test_spots_estimate_switches_within_the_range_only(monkeypatch):
    """The switch, with the measurement given: the spots' diameter rounded and its working scale; the size model's
    reading kept where that diameter lies beyond the range the working scale may be resized to, and for the membrane
    model (no bright objects)."""
    _need_nuclei()
    from devolens.models import load
    from devolens.predict import notes
    from devolens.predict.notes import SmallNuclei
    from devolens.predict.sizing import DiameterEstimate

    predictor = load("nuclei", diameter="auto")
    est = DiameterEstimate(diameter=16.5, magnification=0.37, per_image=[0.37], trusted=1, resize=35.6 / 16.5,
                           embryo=0.0, used=[True])
    scale = predictor._scale_for(16.5)
    image = np.zeros((64, 64), np.uint8)
    seen = []

    def measured(value):
        def small_spots(frames, pred, e, working):
            seen.append((len(frames), working))
            return SmallNuclei(value, 16.5, 9.3, 0.37)
        return small_spots

    monkeypatch.setattr(notes, "small_spots", measured(6.7))
    switched, at = predictor._spots_estimate([image], est, scale)
    assert seen == [(1, scale)]  # measured at the scale the size model's reading would run at
    assert switched.diameter == 7.0 and switched.spots == pytest.approx(6.7)
    assert switched.model_diameter == 16.5 and switched.model_resize == pytest.approx(35.6 / 16.5)
    assert switched.resize == pytest.approx(predictor.diameter_ref / 7.0)
    assert at == pytest.approx(predictor.card_scale * predictor.diameter_ref / 7.0)
    assert switched.magnification == est.magnification and est.spots is None  # (a copy: the reading kept)
    monkeypatch.setattr(notes, "small_spots", measured(3.2))  # 3 px: enlarged over 8x, beyond the range
    assert predictor._spots_estimate([image], est, scale) == (est, scale)
    monkeypatch.setattr(notes, "small_spots", lambda *a: None)
    assert predictor._spots_estimate([image], est, scale) == (est, scale)


def test_auto_segments_small_culture_nuclei_at_their_spots():
    _need_nuclei()
    from devolens.errors import DiameterWarning
    from devolens.models import load
    from devolens.train.metrics import instance_scores

    images = [_culture((384, 384), (5.5, 6.5), seed=s) for s in range(2)]
    truth = [_discs((384, 384), (5.5, 6.5), seed=s) for s in range(2)]
    predictor = load("nuclei", diameter="auto")
    with pytest.warns(DiameterWarning, match="the nuclei measured about 7 px across"):
        results = predictor.predict_batch(images)
    est = predictor.last_estimate
    assert 6.0 <= est.spots <= 7.5 and est.diameter == round(est.spots) and results[0].extra["estimate"] is est
    assert est.embryo < 0.1 and est.model_diameter > 2 * est.diameter  # the size model read them 2.4x too large
    # exactly what --diameter 7 does
    by_hand = load("nuclei", diameter=est.diameter).predict_batch(images)
    assert predictor.working_scale() == pytest.approx(0.5 * 35.6 / est.diameter)
    assert all(np.array_equal(a.labels, b.labels) for a, b in zip(results, by_hand))
    # F1 0.49 and 0.44 at the size model's reading
    assert min(instance_scores(r.labels, t)["f1"] for r, t in zip(results, truth)) > 0.6


def test_each_does_it_image_by_image_and_larger_nuclei_keep_the_size_model():
    _need_nuclei()
    from devolens.errors import DiameterWarning
    from devolens.models import load

    images = [_culture((256, 256), (14, 16), seed=1), _culture((256, 256), (5.5, 6.5), seed=0)]
    predictor = load("nuclei", diameter="each")
    with pytest.warns(DiameterWarning, match=r"1 of 2 images \(at index 1 in the input\) showed nuclei smaller"):
        predictor.predict_batch(images)
    large, small = predictor.estimates
    assert large.spots is None and large.model_diameter is None
    assert small.spots is not None and small.diameter == round(small.spots) and small.model_diameter > small.diameter
    auto = load("nuclei", diameter="auto")
    auto.predict(images[0])
    assert auto.last_estimate.trusted and auto.last_estimate.spots is None


def test_segment_uses_the_spots_diameter_and_says_so(tmp_path, capsys):
    _need_nuclei()
    import tifffile

    folder = tmp_path / "small"
    folder.mkdir()
    for s in range(2):
        tifffile.imwrite(folder / f"w{s}.tif", _culture((384, 384), (5.5, 6.5), seed=s))
    out = tmp_path / "o"
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--no-overlay"]) == 0
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).split())
    record = json.loads((out / "segment.json").read_text())
    est = record["magnification_estimate"]
    assert est["by"] == "auto" and est["from"] == "spots" and est["diameter"] in (6.0, 7.0)
    assert est["model_diameter"] > 2 * est["diameter"] and abs(est["spots_diameter"] - est["diameter"]) <= 0.5
    assert record["working_scale"] == pytest.approx(0.5 * 35.6 / est["diameter"], rel=1e-4)
    said = [n for n in record["notes"] if "measured about" in n]
    n = f"{est['diameter']:.0f}"
    assert len(said) == 1 and said[0].startswith(f"diameter auto: the nuclei measured about {n} px across"), record
    assert f"the run used --diameter {n}," in said[0] and f"give --diameter {est['model_diameter']:.1f} to" in said[0]
    assert not any(SMALL in n or "far from the" in n for n in record["notes"])  # (the notes before: not said)
    assert "the run used --diameter" in text and "Traceback" not in text
