"""A long-running service on the Python API (thirty-eighth session): a population stream with ``diameter="auto"``
refuses a frame the nuclei model cannot take as ``predict`` does (an empty frame raised OpenCV's error from the
resizing, a 1x1 frame was enlarged to 2x2 and counted); a stream's bad image is named by its position (and file), after
the results of the images before it; each result carries the magnification estimate it was segmented by
(``extra["estimate"]``, for threads, where ``warnings.catch_warnings`` is unsafe); the once-per-line warning filter is
documented; ``--diameter each`` notes the images whose resizing was held to the scale's range."""

from __future__ import annotations

import numpy as np
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError
from devolens.predict.segment import NucleiPredictor
from test_predict_sizing import AUTO_FRAMES, _add_size_model, _area_model, _disc_image, _tiny

_BAD = [np.zeros((0, 5), np.uint8), np.ones((1, 1), np.uint8), np.zeros((3, 0), np.uint8),
        np.zeros((40, 56, 2), np.uint8)]


def _refusal(call) -> DevolensError:
    with pytest.raises(DevolensError) as caught:
        call()
    return caught.value


# ------------------------------------------------------------------ 1. population: checked before resizing
@pytest.mark.parametrize("bad", _BAD, ids=lambda a: "x".join(map(str, a.shape)))
def test_population_auto_stream_refuses_a_frame_as_predict_does(tiny_zoo, bad):  # noqa: F811
    from devolens.models import load

    _add_size_model(tiny_zoo, m=2.0)
    pops = load("population", diameter="auto")
    good = _disc_image((96, 128), 6)
    alone = _refusal(lambda: pops.predict(bad)).message  # (said without a position: one image)
    assert "of the stream" not in alone
    rows = []
    err = _refusal(lambda: rows.extend(pops.predict_iter([good, bad])))  # was cv2.error (0x5, 3x0), a count (1x1)
    assert pops.resize != 1.0  # (the frames were to be resized)
    assert err.message == f"image 1 of the stream: {alone}" and len(rows) == 1 and rows[0]["total"] >= 0
    assert _refusal(lambda: pops.predict_batch([good, bad])).message == err.message


# ------------------------------------------------------------------ 2. a stream's bad image: named, after the others
def test_a_streams_bad_image_is_named_after_the_results_before_it(tmp_path):
    import imageio.v3 as iio

    pred = NucleiPredictor(_tiny(), scale=0.5, batch_size=2)
    good, bad = _disc_image((48, 64), 4), np.zeros((48, 64, 2), np.uint8)
    alone = _refusal(lambda: pred.predict(bad)).message
    assert alone.startswith("expected an HxW or HxWx3 image")
    for at in (0, 3, 5):  # first; in the batch read ahead; a batch's first
        out = []
        err = _refusal(lambda: out.extend(pred.predict_iter([good] * at + [bad] + [good] * 4)))
        assert err.message == f"image {at} of the stream: {alone}" and err.path is None
        assert len(out) == at  # the results before it, every one (were 0, 2, 4)
    tiny = tmp_path / "tiny.png"
    iio.imwrite(tiny, np.full((1, 9), 200, np.uint8))
    out = []
    err = _refusal(lambda: out.extend(pred.predict_iter([good, good, str(tiny)])))
    assert err.path == tiny and str(err) == f"{tiny}: image 2 of the stream: image too small: 1 x 9 pixels " \
                                            "(at least 2 x 2)" and len(out) == 2
    assert "of the stream" not in str(_refusal(lambda: pred.predict(str(tiny))))


# ------------------------------------------------------------------ 3. the estimate on each result
def test_each_result_carries_the_estimate_it_was_segmented_by():
    small, big = _disc_image((96, 128), 5), _disc_image((96, 128), 10)
    base = NucleiPredictor(_tiny(), scale=0.5)
    model = _area_model(base, 1.0, 3.0, small, big)
    auto = NucleiPredictor(_tiny(), scale=0.5, diameter_ref=20.0, diameter="auto", size_model=model,
                           auto_keep=(0.5, 1.5), batch_size=2)
    pairs = list(zip(auto.predict_iter([small] * 3), auto.predict_iter([big] * (AUTO_FRAMES + 1))))
    assert all(a.extra["estimate"].diameter is None for a, _ in pairs)  # each stream its own (last_estimate: big's)
    assert all(b.extra["estimate"] is auto.last_estimate for _, b in pairs)
    assert auto.last_estimate.diameter == pytest.approx(75.0, rel=1e-3)
    each = NucleiPredictor(_tiny(), scale=0.5, diameter_ref=20.0, diameter="each", size_model=model,
                           auto_keep=(0.5, 1.5))
    out = list(each.predict_iter([big, small]))
    assert [r.extra["estimate"] for r in out] == each.estimates and out[1].extra["estimate"].diameter is None
    assert "estimate" not in NucleiPredictor(_tiny(), scale=0.5).predict(small).extra  # no estimate: none said


def test_the_once_per_line_warning_filter_is_documented():
    from pathlib import Path

    from devolens.errors import DiameterWarning, InputWarning

    for cls in (DiameterWarning, InputWarning):
        assert f'warnings.simplefilter("always", devolens.errors.{cls.__name__})' in cls.__doc__
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert 'warnings.simplefilter("always", devolens.errors.InputWarning)' in readme and 'extra["estimate"]' in readme


# ------------------------------------------------------------------ 4. --diameter each: a held resize noted
def test_diameter_each_note_says_which_resizes_were_held():
    from devolens.cli.predict import _estimates_note
    from devolens.predict.sizing import DiameterEstimate

    normal = DiameterEstimate(diameter=59.7, magnification=0.547, per_image=[0.547], trusted=1, resize=1.01)
    held = DiameterEstimate(diameter=7.54, magnification=0.083, per_image=[0.083], trusted=1, resize=8.0, held=6.3)
    note = _estimates_note([normal, held], "cells")
    assert note.startswith("note: diameter each: 2 of 2 images resized")  # a note (kept by --quiet), was a summary
    assert "; 1 of them looked 0.083x as magnified as the model's training frames, beyond the range the working " \
           "scale is held to (at most 8x enlarged, 50x shrunk): resized 8x, not the 9.57x it asked" in note
    assert "--diameter in pixels" in note
    assert _estimates_note([normal, normal], "cells").startswith("diameter each: 2 of 2")  # unchanged
    assert "resized as far as that goes" in _estimates_note([held, held], "cells")  # (sizing.held_words: one wording)
