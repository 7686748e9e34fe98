"""The population predictor's diameter per call (session 44: library parity with the segmentation predictors).

Session 43 gave ``predict``, ``predict_batch`` and ``predict_iter`` of the nuclei and membrane predictors a ``diameter``
for one call; ``load("population")`` kept the one it was loaded with (``pops.predict(frame, diameter=20)`` was a
TypeError: a frame of another magnification needed a second predictor, its models loaded again). Now its calls take
``from_zoo``'s values (pixels, ``"auto"``, None), checked by the same code with the same words, with the counts of a
predictor loaded with that diameter, the predictor left as it is for later calls and for other threads.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError
from test_predict_sizing import _add_size_model, _disc_image

#: the row fields that depend on the resizing (the tiny zoo's random network finds one object at any size: its
#: median area tells the resizing apart)
FIELDS = ("A", "E", "M", "P", "C", "D", "Z", "total", "visible", "median_area", "flat")


def _rows(stream) -> list[dict]:
    return [{k: row[k] for k in FIELDS} for row in stream]


def _settings(pred) -> tuple:
    return pred.resize, pred.auto, pred.scale_known, pred.diameter, pred.last_estimate


@pytest.fixture
def sized(tiny_zoo):  # noqa: F811
    """The tiny zoo's nuclei model with a reference diameter (20 px) and a size model reading every image at 2x
    (``"auto"``: 35.6 px); warnings on the random network's look at its frames left out."""
    _add_size_model(tiny_zoo, m=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield tiny_zoo


def test_a_calls_diameter_counts_as_a_predictor_loaded_with_it(sized):
    from devolens.models import load

    frames = [_disc_image((96, 128), 6, seed=s) for s in range(2)]
    pops = load("population")
    own = _settings(pops)
    plain = _rows(pops.predict_iter(frames))
    for diameter in (15, " AUTO "):
        loaded = load("population", diameter=diameter)
        want = _rows(loaded.predict_iter(frames))
        assert _rows(pops.predict_iter(frames, diameter=diameter)) == want
        assert _rows(pops.predict_iter(iter(frames), None, None, diameter)) == want  # (positionally too)
        assert want != plain  # (it did resize)
        got = pops.predict_batch(frames, diameter=diameter)
        assert got.equals(loaded.predict_batch(frames))
        assert pops.predict(frames[0], diameter=diameter) == loaded.predict(frames[0])
        assert _settings(pops) == own  # the predictor left as it is...
        assert _rows(pops.predict_iter(frames)) == plain  # ... for later calls
    # a predictor loaded at a diameter, given None for a call: the frames as they are, as loaded without one
    at15 = load("population", diameter=15)
    assert _rows(at15.predict_iter(frames, diameter=None)) == plain
    assert at15.diameter == 15.0 and at15.resize == pytest.approx(20 / 15) and at15.scale_known
    # its own setting given again: the predictor itself (an "auto" call records its estimate as before)
    auto = load("population", diameter="auto")
    assert auto._for_call("auto") is auto and at15._for_call(15) is at15
    rows = list(auto.predict_iter(frames, diameter="auto"))
    assert auto.last_estimate is rows[0]["estimate"] is not None


def test_a_calls_auto_estimate_is_its_own(sized):
    from devolens.models import load

    frame = _disc_image((96, 128), 6)
    pops = load("population", diameter=15)
    rows = list(pops.predict_iter([frame], diameter="auto"))
    want = list(load("population", diameter="auto").predict_iter([frame]))
    assert rows[0]["estimate"] == want[0]["estimate"] and rows[0]["estimate"].diameter == pytest.approx(35.6, abs=0.1)
    assert _settings(pops) == (pytest.approx(20 / 15), False, True, 15.0, None)  # not the estimate's resizing


def test_a_calls_diameter_is_checked_as_loads(sized):
    """The same checks, in the same words, as ``load("population", diameter=...)``; nothing counted or changed."""
    from devolens.models import load

    frame = _disc_image((96, 128), 6)
    pops = load("population")
    own = _settings(pops)
    for bad in (0, -1, "x", "each", "7um", True, 1, 10**6, [9]):
        with pytest.raises(DevolensError) as loading:
            load("population", diameter=bad)
        words = str(loading.value)
        for call in (lambda: pops.predict(frame, diameter=bad), lambda: pops.predict_batch([frame], diameter=bad),
                     lambda: next(pops.predict_iter([frame], diameter=bad))):
            with pytest.raises(DevolensError) as calling:
                call()
            assert str(calling.value) == words, bad
    # a scale of the user's: it times the diameter's resizing held to the range, as at load
    scaled = load("population", scale=4.0)
    with pytest.raises(DevolensError) as loading:
        load("population", scale=4.0, diameter=5)
    with pytest.raises(DevolensError) as calling:
        scaled.predict(frame, diameter=5)
    assert str(calling.value) == str(loading.value) and "enlarged 32x" in str(loading.value)
    # a nuclei model without a size model: "auto" refused alike
    pops.nuclei.size_model = None
    with pytest.raises(DevolensError, match="the nuclei model cannot estimate the diameter"):
        pops.predict(frame, diameter="auto")
    assert _settings(pops) == own


def test_a_diameter_without_a_reference_is_refused_as_at_load(tiny_zoo):  # noqa: F811
    """The tiny nuclei card has no reference diameter: a number refused, in load's words."""
    from devolens.models import load

    with pytest.raises(DevolensError) as loading:
        load("population", diameter=20)
    with pytest.raises(DevolensError) as calling:
        load("population").predict(_disc_image((96, 128), 6), diameter=20)
    assert str(calling.value) == str(loading.value) and "reference object diameter" in str(loading.value)


def test_streams_at_other_diameters_keep_their_own(sized, monkeypatch):
    """Streams read in turns and calls from several threads, each at its own diameter: each frame resized by its
    own call's (a view of the predictor, sharing its models; the predictor itself never changed)."""
    from devolens.models import load

    frame = _disc_image((96, 128), 6)
    pops = load("population")
    own = _settings(pops)
    want = {d: _rows(load("population", diameter=d).predict_iter([frame])) for d in (None, 15, 40, "auto")}
    streams = {d: pops.predict_iter([frame] * 3, diameter=d) for d in (15, 40, "auto")}
    streams["own"] = pops.predict_iter([frame] * 3)
    for _ in range(3):  # one row of each in turn
        for d, stream in streams.items():
            assert _rows([next(stream)]) == want[None if d == "own" else d]
    assert _settings(pops) == own
    got: dict = {}

    def count(d):
        got[d] = [pops.predict(frame, diameter=d) for _ in range(2)]

    threads = [threading.Thread(target=count, args=(d,)) for d in (None, 15, 40, "auto")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(got) == 4
    for d, results in got.items():  # (predict's counts: the letters and total)
        assert all(r == {k: want[d][0][k] for k in r} for r in results), d
    assert _settings(pops) == own


def test_a_calls_frames_without_signal_are_in_the_predictors_flat_frames(sized):
    """Its NoSignalWarning names the predictor's ``flat_frames``: a call at its own diameter records them there."""
    from devolens.errors import NoSignalWarning
    from devolens.models import load

    pops = load("population")
    frames = [_disc_image((96, 128), 6), np.zeros((96, 128), np.uint8)]
    with pytest.warns(NoSignalWarning, match="in the predictor's flat_frames"):
        df = pops.predict_batch(frames, diameter=15)
    assert pops.flat_frames == [1] and np.isnan(df["total"][1]) and not np.isnan(df["total"][0])


def _half(image: np.ndarray) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


@pytest.mark.skipif(not shipped("population") or not shipped("nuclei"), reason="population weights not shipped")
def test_shipped_population_at_a_calls_diameter():
    """A simulated embryo of 89 cells rendered in EPIC framing and shrunk to half (nuclei ~18 px): a call at 20 px,
    or "auto", counts it as a predictor loaded so; the plain predictor, which reads it as it is, otherwise."""
    from devolens.lineage.simulate import simulate_embryo
    from devolens.models import load
    from devolens.render.nuclei import render_nuclei_frame

    table = simulate_embryo(11, n_cells=90)
    t = int(table.groupby("time").size().index[-1])
    frame = _half(render_nuclei_frame(table, t, size=(512, 752), seed=5, rgb=True).image)
    pops = load("population")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the plain reading's notes on the magnification)
        plain = pops.predict(frame)
        for diameter in (20, "auto"):
            got = pops.predict(frame, diameter=diameter)
            assert got == load("population", diameter=diameter).predict(frame), diameter
            assert got != plain
    assert pops.diameter is None and pops.resize == 1.0 and not pops.auto and pops.predict(frame) == plain
