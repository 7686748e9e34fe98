"""``segment membrane --diameter PX`` gets a diameter check of its own (session 40).

The nuclei's check compares the given diameter with the one ``--diameter auto`` would use; the membrane model's keep
band is wide (0.55-1.15x), so auto uses a slice read inside it as it is and names the reference 60 px even for a
slice shrunk to 0.5x whose cells are 30 px: on held-out membrane renders that rule noted the right 30 px in 11 of 35
frames at 0.5x and missed 60 px there in 16. The membrane model's check holds the diameter to the cells' own estimated
diameter (the reference times the magnification read over the size model's ``m0``) and its note names it;
``segment membrane`` runs it and records its note in ``segment.json``, as ``segment nuclei`` does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.predict.notes import CELLS_APART, DIAMETER_APART, DiameterCheck, diameter_note
from test_predict_sizing import _add_size_model, _constant_model, _estimates_once, _tiny


def _said(capsys) -> str:
    cap = capsys.readouterr()
    return " ".join((cap.out + cap.err).split())


def _cells_image(shape=(96, 128), step: int = 24) -> np.ndarray:
    """Dark cells outlined by bright lines every ``step`` px (20 cells for the default): what the membrane size model
    counts as enclosed objects (enough of them to judge by)."""
    img = np.zeros(shape, np.uint8)
    img[::step, :] = img[:, ::step] = 200
    img[-1, :] = img[:, -1] = 200
    return img


def _membrane_predictor(diameter, m: float = 0.42, keep=(0.4, 1.5)):
    """A tiny membrane predictor whose size model reads every image at magnification ``m`` (m0 0.8, reference 20 px).
    At 0.42, inside the keep band: diameter="auto" would use the images as they are (20 px), their cells measure
    20 * 0.42 / 0.8 = 10.5 px."""
    from devolens.predict.segment import MembranePredictor

    plain = MembranePredictor(_tiny(), scale=0.5)
    return MembranePredictor(_tiny(), scale=0.5, diameter_ref=20.0, diameter=diameter, auto_keep=keep,
                             size_model=_constant_model(plain, m))


def test_membrane_diameter_is_held_to_the_cells_not_to_autos_choice():
    img = _cells_image()
    far = _membrane_predictor(20.0)  # auto's own diameter, but twice the cells'
    scale = far.working_scale()
    check = far.diameter_check([img])
    assert check is not None and check.by == "cells" and check.given == 20.0
    assert check.suggested == pytest.approx(10.5, abs=0.05) and check.magnification == pytest.approx(0.42)
    assert far.working_scale() == scale and far.last_estimate is None  # a check: nothing applied
    assert _membrane_predictor(10.0).diameter_check([img]) is None  # the cells' diameter: 2x from auto's, no note
    assert _membrane_predictor(15.0).diameter_check([img]) is None  # 1.43x apart: within CELLS_APART
    assert _membrane_predictor(5.0).diameter_check([img]).suggested == pytest.approx(10.5, abs=0.05)  # too small
    # outside the keep band too (auto would resize to 20 * 2 / 1.125 = 35.6; the cells measure 50)
    big = _membrane_predictor(20.0, m=2.0).diameter_check([img])
    assert big is not None and big.suggested == pytest.approx(50.0, abs=0.05)
    assert _membrane_predictor(40.0, m=2.0).diameter_check([img]) is None
    for other in (None, "auto", "each"):  # no diameter in pixels: no check
        assert _membrane_predictor(other).diameter_check([img]) is None
    assert _membrane_predictor(20.0).diameter_check([_cells_image(step=60)]) is None  # too few cells to judge by
    assert CELLS_APART == 1.6 and DIAMETER_APART == 1.6


def test_nuclei_keep_autos_rule():
    """The nuclei's check still names auto's diameter (validated on the real reference frames)."""
    from devolens.predict.segment import NucleiPredictor
    from test_predict_sizing import _disc_image

    plain = NucleiPredictor(_tiny(), scale=0.5)
    pred = NucleiPredictor(_tiny(), scale=0.5, diameter_ref=20.0, diameter=10.0, auto_keep=(0.5, 1.5),
                           size_model=_constant_model(plain, 2.0))
    check = pred.diameter_check([_disc_image((96, 128), 6)])
    assert check.by == "auto" and check.suggested == pytest.approx(35.6, abs=0.1)  # 20 * 2 / 1.125, not 20 * 2 / 0.8


def test_cells_note_names_the_cells_diameter():
    words = diameter_note(DiameterCheck(60.0, 29.6, 0.39, "cells"), "cells")
    assert words.startswith("--diameter 60: the size model reads the images as 0.39x as magnified")
    assert "where the cells would measure about 30 px, 2.0x apart" in words and "--diameter auto would use" not in words
    assert "run again with --diameter 30" in words
    # the nuclei's words as they were (a check made without ``by``)
    old = diameter_note(DiameterCheck(48.0, 25.0, 0.6), "nuclei")
    assert "where --diameter auto would use 25 px, 1.9x apart" in old and "run again with --diameter 25" in old


def _add_membrane_size_model(root, m: float, keep=(0.4, 1.5)) -> None:
    """Give the tiny zoo's membrane model a reference diameter (20 px) and a constant size model (magnification m)."""
    _add_size_model(root, m, keep, kind="membrane")


def test_segment_membrane_notes_a_diameter_far_from_the_cells(tiny_zoo, tmp_path, capsys):  # noqa: F811
    import imageio.v3 as iio

    img = tmp_path / "slice.png"
    iio.imwrite(img, _cells_image())
    _add_membrane_size_model(tiny_zoo, m=0.44)  # inside the keep band (auto: 20 px): the cells measure 11 px
    words = "--diameter 20: the size model reads the images as 0.44x as magnified"
    assert main(["segment", "membrane", str(img), "--out", str(tmp_path / "o1"), "--diameter", "20"]) == 0
    out = _said(capsys)
    assert words in out and "where the cells would measure about 11 px, 1.8x apart" in out
    assert "run again with --diameter 11" in out
    record = json.loads((tmp_path / "o1" / "segment.json").read_text())
    assert any(n.startswith(words) for n in record["notes"])
    assert main(["segment", "membrane", str(img), "--out", str(tmp_path / "o2"), "--diameter", "11"]) == 0
    assert "the size model reads" not in _said(capsys)
    for other in ("auto", "none"):  # auto judged them itself; none: no diameter to check (and no nuclei's note)
        assert main(["segment", "membrane", str(img), "--out", str(tmp_path / f"o_{other}"),
                     "--diameter", other]) == 0
        said = _said(capsys)
        assert "the cells would measure about" not in said and "as magnified as" not in said


@pytest.fixture(scope="module")
def membrane_render():
    """A rendered membrane slice the project makes itself (a simulated embryo of 60 cells, 29 in the slice): read
    0.47x shrunk to 0.5x, 0.90x as it is and 1.73x enlarged 2x by the shipped size model."""
    from devolens.lineage.simulate import simulate_embryo
    from devolens.render.membranes import render_membrane_frame

    table = simulate_embryo(12, n_cells=60)
    return render_membrane_frame(table, int(sorted(table["time"].unique())[-1]), size=(512, 752), seed=3).image


@pytest.mark.skipif(not shipped("membrane"), reason="membrane weights not shipped")
def test_wrong_membrane_diameters_are_noted_and_right_ones_not(membrane_render, monkeypatch):
    """The render shrunk to 0.5x: 60 px given (auto's choice would be 44 px, 1.36x: unnoted before) noted with its
    cells' 36 px, 30 px not; as it is: 60 not, 30 noted; enlarged 2x: 121 not, 60 noted."""
    _estimates_once(monkeypatch)  # each slice's estimate made once: the diameters given are checked against it
    import cv2

    from devolens.models import load

    h, w = membrane_render.shape[:2]
    half = cv2.resize(membrane_render, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    double = cv2.resize(membrane_render, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    given_60, given_30 = load("membrane", diameter=60), load("membrane", diameter=30)  # (a check applies nothing)
    check = given_60.diameter_check([half])
    assert check is not None and check.by == "cells" and check.suggested == pytest.approx(36, abs=6)
    assert given_30.diameter_check([half]) is None
    assert given_60.diameter_check([membrane_render]) is None
    assert given_30.diameter_check([membrane_render]).suggested == pytest.approx(68, abs=10)
    assert load("membrane", diameter=121).diameter_check([double]) is None
    assert given_60.diameter_check([double]).suggested == pytest.approx(131, abs=20)
