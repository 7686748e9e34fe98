"""The segmentation predictors' diameter in Python, for a cellpose migrant (forty-third session's walkthrough).

``m.predict(img, diameter=9)`` raised a raw TypeError (only ``load("nuclei", diameter=9)`` again set another
diameter), and ``m.diameter = 9`` was kept without effect: the resizing was fixed at load. Now ``predict``,
``predict_batch`` and ``predict_iter`` take a ``diameter`` for that call (``load``'s values, the loaded network serving
it, the predictor left as it is), and assigning ``m.diameter`` sets later calls' resizing, checked as ``load`` checks
it.

``load("nuclei").predict(img)`` of 9 px culture nuclei found 45 of 80 without a word, where ``devolens segment`` notes
such sizes: the library now issues the command's size notes as :class:`~devolens.errors.DiameterWarning` (naming the
caller's line; the command, which prints its notes, ignores them), judged once per call.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from _zoo_helpers import shipped
from devolens.errors import DevolensError, DiameterWarning
from test_s42_culture_notes import _culture


@pytest.fixture(scope="module")
def culture() -> np.ndarray:
    """A 192 x 192 culture of 10-12 px nuclei: at the library's default (no resizing) the network merges them into
    objects too small for the sizes it knows, and the size model reads the image 0.24x magnified."""
    if not shipped("nuclei"):
        pytest.skip("the nuclei model's weights are not shipped here")
    return _culture((192, 192), (10, 12))


def _caught(call):
    """``call()``'s result and the DiameterWarnings it issued (every one: "always")."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = call()
    return result, [w for w in seen if issubclass(w.category, DiameterWarning)]


def _same(a, b) -> bool:
    return a.count == b.count and np.array_equal(a.labels, b.labels)


# ------------------------------------------------------------------------- a diameter per call

@pytest.mark.filterwarnings("ignore::devolens.errors.DiameterWarning")  # (its notes: tested below)
def test_predict_takes_a_diameter_for_one_call(culture):
    from devolens.models import load

    m = load("nuclei")
    at9 = load("nuclei", diameter=9)
    plain = m.predict(culture)
    one = m.predict(culture, diameter=9)
    assert _same(one, at9.predict(culture)) and one.extra["scale"] == at9.working_scale()
    assert not _same(one, plain)  # (it did resize)
    # the predictor is left as it is: its diameter, scale and results
    assert m.diameter is None and m.working_scale() == 0.5 and _same(m.predict(culture), plain)
    # the batch and the stream alike; and at9 given None for a call segments as loaded without
    assert all(_same(r, one) for r in m.predict_batch([culture, culture], diameter=9))
    assert [r.count for r in m.predict_iter(iter([culture]), diameter=9)] == [one.count]
    assert _same(at9.predict(culture, diameter=None), plain) and at9.diameter == 9.0


@pytest.mark.filterwarnings("ignore::devolens.errors.DiameterWarning")  # (its notes: tested below)
def test_a_calls_auto_estimate_is_its_own(culture):
    from devolens.models import load

    m = load("nuclei", diameter=9)
    res = m.predict(culture, diameter="auto")
    assert _same(res, load("nuclei", diameter="auto").predict(culture))
    assert res.extra["estimate"] is not None and res.extra["estimate"].trusted
    assert m.diameter == 9.0 and m.last_estimate is None and not m.auto


@pytest.mark.filterwarnings("ignore::devolens.errors.DiameterWarning")  # (its notes: tested below)
def test_a_calls_diameter_is_checked_as_loads(culture):
    from devolens.models import load

    m = load("nuclei")
    for bad, words in ((0.5, "enlarged"), ("7um", "micrometres"), ("x", "number of pixels"), (True, "got True")):
        with pytest.raises(DevolensError, match=words):
            m.predict(culture, diameter=bad)
        with pytest.raises(DevolensError, match=words):
            m.predict_batch([culture], diameter=bad)
        with pytest.raises(DevolensError, match=words):
            next(m.predict_iter([culture], diameter=bad))
    m.size_model = None  # (a model without a size model)
    with pytest.raises(DevolensError, match="cannot estimate"):
        m.predict(culture, diameter="auto")


# ------------------------------------------------------------------------- assigning the diameter

@pytest.mark.filterwarnings("ignore::devolens.errors.DiameterWarning")  # (its notes: tested below)
def test_assigning_the_diameter_sets_later_calls(culture):
    from devolens.models import load

    m = load("nuclei")
    plain = m.predict(culture)
    m.diameter = 9
    assert m.diameter == 9.0 and _same(m.predict(culture), load("nuclei", diameter=9).predict(culture))
    m.diameter = "auto"
    assert m.auto and _same(m.predict(culture), load("nuclei", diameter="auto").predict(culture))
    assert m.last_estimate is not None
    m.diameter = None
    assert not m.auto and m.last_estimate is None and m.working_scale() == 0.5 and _same(m.predict(culture), plain)


@pytest.mark.filterwarnings("ignore::devolens.errors.DiameterWarning")  # (its notes: tested below)
def test_assigning_a_wrong_diameter_is_refused_and_changes_nothing(culture):
    from devolens.models import load

    m = load("membrane")
    m.diameter = 40
    scale = m.working_scale()
    for bad in (0.5, 10**6, "7 um", "nothing", [9]):
        with pytest.raises(DevolensError):
            m.diameter = bad
        assert m.diameter == 40.0 and m.working_scale() == scale
    m.diameter = "each"
    assert m.auto_each and m.diameter is None
    m.diameter = "None"  # the CLI's --diameter none, any case (since the forty-fifth session)
    assert not m.auto_each and m.diameter is None


# ------------------------------------------------------------------------- the size notes as warnings

def test_the_size_notes_are_diameter_warnings_naming_the_callers_line(culture):
    from devolens.models import load

    res, said = _caught(lambda: load("nuclei").predict(culture))
    texts = [str(w.message) for w in said]
    assert len(said) == 2 and all(w.filename == __file__ for w in said), [(w.filename, w.lineno) for w in said]
    assert texts[0].startswith("diameter=None: the images look 0.2") and "give diameter='auto'" in texts[0]
    assert "px wide, far from the sizes this model knows" in texts[1] and "segment them with diameter=" in texts[1]
    assert "--diameter" not in " ".join(texts)  # (the library's words, not the command's)
    # at the diameter the note names, or the estimate: no note
    assert not _caught(lambda: load("nuclei").predict(culture, diameter="auto"))[1]


def test_a_wrong_diameter_given_is_said_once_per_call(culture):
    from devolens.models import load

    m = load("nuclei", diameter=40)
    _, said = _caught(lambda: m.predict_batch([culture, culture[::-1], culture[:, ::-1]]))
    texts = [str(w.message) for w in said]
    assert any(t.startswith("diameter=40: the size model reads the images") for t in texts), texts
    assert len(texts) == len(set(texts)) and all(w.filename == __file__ for w in said)
    _, streamed = _caught(lambda: list(m.predict_iter(iter([culture, culture]))))
    assert len(streamed) == len(texts) and str(streamed[0].message)[:40] == texts[0][:40]
    # a stream is judged after its first 20 results, before the rest are read
    seen, said = [], []

    def frames():
        for i in range(64):
            seen.append(i)
            yield culture

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream = m.predict_iter(frames())
        for _ in range(20):
            next(stream)
        said = [w for w in caught if issubclass(w.category, DiameterWarning)]
    assert said and len(seen) < 64


def test_silenced_diameter_warnings_skip_the_checks(culture, monkeypatch):
    from devolens.models import load
    from devolens.predict.segment import NucleiPredictor

    m = load("nuclei")
    assert _caught(lambda: m.predict(culture))[1]  # (said where not silenced)

    def costly(self, images):
        raise AssertionError("checked")

    monkeypatch.setattr(NucleiPredictor, "magnification_check", costly)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DiameterWarning)
        m.predict(culture)  # (not checked)


def test_ignored_reads_the_filters():
    from devolens.errors import DevolensWarning
    from devolens.predict.notes import _ignored

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        assert not _ignored(DiameterWarning)
        warnings.simplefilter("ignore", DevolensWarning)
        assert _ignored(DiameterWarning)
        warnings.filterwarnings("always", message="diameter=", category=DiameterWarning)
        assert not _ignored(DiameterWarning)  # (some words pass: judged)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _ignored(DiameterWarning)


def test_one_reading_spares_the_full_look_only_far_inside(monkeypatch):
    """A single image's full look reads it eight times; one reading decides whether it is needed."""
    from types import SimpleNamespace

    from devolens.predict import notes

    pred = SimpleNamespace(far_magnifications=(0.4, 1.6), diameter_ref=35.6, size_model=SimpleNamespace(m0=0.795),
                           auto_keep=(0.75, 1.15), diameter_checked_by="auto", diameter=35.6)
    for reading, needed in ((1.0, False), (0.55, False), (0.45, True), (1.4, True), (None, True)):
        monkeypatch.setattr(notes, "_one_reading", lambda predictor, frames, m=reading: m)
        assert notes._far_possible(pred, [None]) is needed, reading
    for reading, given, needed in ((1.0, 35.6, False), (0.3, 35.6, True), (1.0, 9.0, True), (2.0, 35.6, True)):
        monkeypatch.setattr(notes, "_one_reading", lambda predictor, frames, m=reading: m)
        pred.diameter = given
        assert notes._apart_possible(pred, [None]) is needed, (reading, given)


def test_no_size_warning_on_the_reference_frames(shared_data):
    if not shipped("nuclei"):
        pytest.skip("the nuclei model's weights are not shipped here")
    from devolens.io.images import read_image
    from devolens.models import load

    frames = [read_image(p) for p in sorted((shared_data / "reference_frames").glob("*.png"))]
    if not frames:
        pytest.skip("reference frames missing")
    m = load("nuclei")
    for diameter in (None, "auto"):  # (the library's default, and the command's; given per call)
        assert not _caught(lambda: m.predict_batch(frames, diameter=diameter))[1]
        assert not _caught(lambda: m.predict(frames[-1], diameter=diameter))[1]


def test_the_command_prints_its_notes_once_and_no_warning(culture, tmp_path, capsys):
    import tifffile

    from devolens.cli import main

    tifffile.imwrite(tmp_path / "c.tif", culture)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["segment", "nuclei", str(tmp_path / "c.tif"), "--diameter", "none", "--out",
                     str(tmp_path / "o"), "--no-overlay"]) == 0
    out = capsys.readouterr()
    text = " ".join((out.out + out.err).split())
    assert text.count("--diameter none: the images look") == 1 and text.count("px wide, far from") == 1
    assert not [w for w in seen if issubclass(w.category, DiameterWarning)] and "DiameterWarning" not in text
    # ... where the library warns on the same image, in its own words
    from devolens.models import load

    said = _caught(lambda: load("nuclei").predict(culture))[1]
    assert len(said) == 2 and str(said[0].message).startswith("diameter=None: the images look")


def test_a_setting_judged_clean_three_times_is_not_judged_again(monkeypatch):
    """The size look costs about a segmentation (the size model's reading): a program calling predict once per frame
    paid it on every frame; after SIZE_CLEAN_CALLS clean calls at one setting it is skipped (a new setting: judged)."""
    import devolens.predict.notes as notes
    from devolens.models import load

    looks = []
    real = notes.size_messages
    monkeypatch.setattr(notes, "size_messages", lambda *a, **k: looks.append(1) or real(*a, **k))
    m = load("nuclei", diameter=None)
    rng = np.random.default_rng(0)
    frame = rng.normal(20, 2, (96, 96)).astype(np.float32)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        for _ in range(6):
            m.predict(frame)
        assert len(looks) == notes.SIZE_CLEAN_CALLS
        m.predict(frame, diameter=12)  # (another setting: judged)
    assert len(looks) == notes.SIZE_CLEAN_CALLS + 1
