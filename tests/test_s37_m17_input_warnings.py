"""The library warns where ``devolens segment`` notes that its input looks inverted or like the other model's kind:
``load("nuclei").predict_iter`` on inverted frames found hundreds of "nuclei", and ``load("membrane")`` on nuclei
frames outlined "cells" around them, without a word, while the command printed a note. The segmentation predictors
now issue one :class:`~devolens.errors.InputWarning` per call, judged by the same function as the command's note
(:func:`devolens.predict.notes.judge_input`); the command silences it and prints its note as before."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from _render_helpers import blob_frame
from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import InputWarning
from devolens.io.images import write_png

REFERENCE = ("epic_movie_frame045.png", "epic_movie_frame160.png", "epic_movie_frame300.png")


def _blobs(seed=0):
    """Bright filled discs (nuclei) on a dark noisy background, uint8."""
    return blob_frame(256, n=40, radius=9, background=10.0, seed=seed)


def _input_warnings(run) -> list[str]:
    """The InputWarning messages issued while ``run()`` runs (every one, not once per place)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if issubclass(w.category, InputWarning)]


def _reference(shared_data) -> list[np.ndarray]:
    from devolens.io.images import read_image

    folder = shared_data / "reference_frames"
    if not all((folder / name).exists() for name in REFERENCE):
        pytest.skip("reference frames missing")
    return [read_image(folder / name) for name in REFERENCE]


# ------------------------------------------------------------------------------------- synthetic: no shared data

def test_inverted_synthetic_nuclei_warn_once_per_call(tiny_zoo):
    from devolens.models import load

    nuclei = load("nuclei")
    inverted = [255 - _blobs(seed=i) for i in range(3)]
    found = _input_warnings(lambda: list(nuclei.predict_iter(inverted)))
    assert len(found) == 1 and found[0].startswith("the images look inverted: dark blobs on a bright background")
    assert len(_input_warnings(lambda: nuclei.predict(inverted[0]))) == 1  # one image: one warning
    assert len(_input_warnings(lambda: nuclei.predict_batch(inverted))) == 1
    # a long stream: judged once, on its first frames (never again after the 20th result)
    assert len(_input_warnings(lambda: list(nuclei.predict_iter(inverted * 9)))) == 1
    # the frames as they are: no warning
    assert _input_warnings(lambda: list(nuclei.predict_iter([_blobs(seed=i) for i in range(3)]))) == []


def test_synthetic_nuclei_given_to_the_membrane_model_warn(tiny_zoo):
    from devolens.models import load

    frames = [_blobs(seed=i) for i in range(3)]
    found = _input_warnings(lambda: list(load("membrane").predict_iter(frames)))
    assert len(found) == 1 and found[0].startswith("the images look like nuclei (bright blobs")
    assert 'use load("nuclei")' in found[0] and "--" not in found[0]  # the library's words, not the command's flags


def test_the_stream_warns_only_after_it_judged(tiny_zoo):
    """The warning comes once the first 20 results are out (or the stream ends), not with the first result: the
    stream is not held back to judge it."""
    from devolens.models import load

    nuclei = load("nuclei")
    inverted = [255 - _blobs(seed=i % 3) for i in range(25)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream = nuclei.predict_iter(inverted)
        for _ in range(19):
            next(stream)
        assert not [w for w in caught if issubclass(w.category, InputWarning)]
        next(stream)  # the 20th result: judged
        assert len([w for w in caught if issubclass(w.category, InputWarning)]) == 1
        list(stream)
    assert len([w for w in caught if issubclass(w.category, InputWarning)]) == 1


def test_the_command_prints_its_note_once_and_no_warning(tiny_zoo, tmp_path, capsys):
    """``segment nuclei`` prints its note once, issues no InputWarning, and says what the library's warning says
    (one judgement: the same share of bright pixels in blobs once inverted)."""
    from devolens.models import load

    frames = [255 - _blobs(seed=i) for i in range(3)]
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        write_png(frame, folder / f"t{i}.png")
    found = _input_warnings(lambda: main(["segment", "nuclei", str(folder), "--out", str(tmp_path / "out"),
                                          "--diameter", "none"]))
    err = " ".join(capsys.readouterr().err.split())
    assert found == []
    assert err.count("note: the input looks inverted: dark blobs on a bright background") == 1
    library = _input_warnings(lambda: list(load("nuclei").predict_iter(frames)))
    share = re.compile(r"\((\d+)% of the bright pixels in blobs once inverted\)")
    assert len(library) == 1 and share.search(library[0]).group(1) == share.search(err).group(1)


# ----------------------------------------------------------------------------------- shipped models, shared data

@pytest.mark.skipif(not shipped("nuclei"), reason="needs the shipped nuclei model")
def test_inverted_reference_frames_warn(shared_data):
    from devolens.models import load

    frames = _reference(shared_data)
    nuclei = load("nuclei")
    found = _input_warnings(lambda: list(nuclei.predict_iter([255 - f for f in frames])))
    assert len(found) == 1 and found[0].startswith("the images look inverted: dark blobs on a bright background")
    assert _input_warnings(lambda: list(nuclei.predict_iter(frames))) == []
    # as the command's note: a diameter given in pixels says how big the objects are, not how thick a line is
    assert _input_warnings(lambda: list(load("nuclei", diameter=35).predict_iter([255 - f for f in frames]))) == []


@pytest.mark.skipif(not shipped("membrane"), reason="needs the shipped membrane model")
def test_membrane_model_on_reference_nuclei_frames_warns(shared_data):
    from devolens.models import load

    found = _input_warnings(lambda: list(load("membrane").predict_iter(_reference(shared_data))))
    assert len(found) == 1 and found[0].startswith("the images look like nuclei (bright blobs")
