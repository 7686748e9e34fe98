"""Trust in population's and segment's numbers (session 34): frames used as they are (--diameter none) at a
magnification far from the training one, which the size check cannot tell, get a note; so do frames whose predicted
total lies above the top of the population model's calibration."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.cli import predict as cli_predict
from devolens.predict.population import LETTERS
from devolens.predict.sizing import DiameterEstimate

try:
    from devolens.models.zoo import ZOO_DIR

    NUCLEI_OK = (ZOO_DIR / "nuclei" / "weights.safetensors").is_file()
except Exception:  # pragma: no cover
    NUCLEI_OK = False
needs_nuclei = pytest.mark.skipif(not NUCLEI_OK, reason="nuclei weights not shipped")


def _frames(tmp_path, n: int = 6, side: int = 48):
    """``n`` small grey frames (the fake predictors below do not look at them)."""
    from devolens.io.images import write_png

    src = tmp_path / "movie"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for t in range(n):
        write_png(rng.integers(0, 255, (side, side + 16), dtype=np.uint8), src / f"t{t:03d}.png")
    return src


class _Nuclei:
    """The nuclei model of :class:`_Pops`: its size model reads every input at ``magnification``."""

    auto_keep = trained_zooms = (0.55, 1.15)
    card_scale = 0.0  # (no inverted-input note to judge)

    def __init__(self, magnification: float):
        self.magnification = magnification
        self.looked: list = []

    def magnification_check(self, images):
        self.looked.append(len(images))
        if 0.4 <= self.magnification <= 1.6:
            return None
        return DiameterEstimate(diameter=None, magnification=self.magnification, per_image=[self.magnification],
                                trusted=1)


class _Pops:
    """A composition population predictor that reads the frames as ``totals`` (all in A), with a calibration curve
    up to ``top`` cells and a nuclei model whose size model reads ``magnification``."""

    known_sizes = None
    last_estimate = None
    resize = 1.0
    clock = None
    card: dict = {}
    method = "composition"

    def __init__(self, totals, top: float = 572.0, magnification: float = 1.0):
        self.totals = list(totals)
        self.knots_x = np.array([0.0, 10.0, 238.0])
        self.knots_y = np.array([1.0, 12.0, top])
        self.nuclei = _Nuclei(magnification)

    def predict_iter(self, images, total=None, progress=None):
        for _, t in zip(images, self.totals):
            yield {**{k: 0.0 for k in LETTERS}, "A": float(t), "total": float(t), "median_area": None,
                   "visible": 20.0}

    @staticmethod
    def smooth(df):
        return df

    def size_advice(self, areas):
        return None


def _population(monkeypatch, tmp_path, pred, *extra):
    monkeypatch.setattr(cli_predict, "_load_predictor", lambda *a, **k: pred)
    out = tmp_path / "pops.csv"
    assert main(["population", str(_frames(tmp_path)), "--out", str(out), "--no-plot", *extra]) == 0
    return json.loads(out.with_suffix(".json").read_text())


# ----------------------------------------------------------------------------- beyond the calibration's top
def test_totals_above_the_calibrations_top_are_noted(monkeypatch, tmp_path, capsys):
    """AceTree renders at 549-580 cells read 407-520, without a word: frames whose predicted total lies above the
    top of the loaded model's calibration curve (its knots, not a number written in the code) now get a note, kept
    in the record; above 600 cells the note on totals no embryo has says it instead."""
    pred = _Pops([50, 120, 290, 310, 330, 700], top=300.0)
    record = _population(monkeypatch, tmp_path, pred)
    err = " ".join(capsys.readouterr().err.split())
    said = "2 frames (t003, t004) have a predicted total above 300 cells, the top of the model's calibration"
    assert said in err and "extrapolated and read low" in err
    assert "1 frame(s) have a predicted total above 600" in err  # (t005: its own note, not this one)
    assert any(said in n for n in record["notes"])
    # the same totals under a calibration reaching 400 cells: no note
    _population(monkeypatch, tmp_path / "b", _Pops([50, 120, 290, 310, 330, 390], top=400.0))
    assert "top of the model's calibration" not in capsys.readouterr().err


def test_the_shipped_calibrations_top_is_read_from_its_knots():
    from devolens.io.tensors import load_tensors
    from devolens.models.zoo import ZOO_DIR

    weights = ZOO_DIR / "population" / "weights.safetensors"
    if not weights.is_file():
        pytest.skip("population tables not shipped")
    knots = load_tensors(weights, framework="np")["knots_y"]

    class Shipped:
        method, knots_y = "composition", knots

    assert cli_predict._calibration_top(Shipped()) == pytest.approx(float(knots.max()))
    assert cli_predict._calibration_top(type("Regressor", (), {"method": "regressor"})()) is None


# ----------------------------------------------------------------------------- --diameter none, far magnifications
def test_diameter_none_far_from_the_training_magnification_is_noted(monkeypatch, tmp_path, capsys):
    """--diameter none on frames at 2.5x or 0.3x: the network splits or merges nuclei into blobs of its own size, so
    the size check never fired; the size model's look at the frames with the most nuclei now does."""
    pred = _Pops([50, 60, 70, 80, 90, 100], magnification=3.2)
    record = _population(monkeypatch, tmp_path, pred, "--diameter", "none")
    err = " ".join(capsys.readouterr().err.split())
    said = "--diameter none: the frames look 3.2x as magnified as the model's training frames"
    assert said in err and "far from the 0.55-1.15x the network was trained on" in err
    assert any(said in n for n in record["notes"])
    assert pred.nuclei.looked == [5]  # the 5 frames with the most nuclei of the whole movie
    # within reach of the training magnifications: nothing said; the default (auto) does not look again
    _population(monkeypatch, tmp_path / "b", _Pops([50] * 6, magnification=1.34), "--diameter", "none")
    default = _Pops([50] * 6, magnification=3.2)
    _population(monkeypatch, tmp_path / "c", default)
    assert "--diameter none:" not in capsys.readouterr().err and default.nuclei.looked == []


@needs_nuclei
def test_the_size_model_tells_far_magnifications_of_real_frames(shared_data):
    """The real reference frames as they are read 1.34x and get no note; enlarged 2.5x (3.2x) and shrunk to 0.3x
    (0.29x) they do, where the median nucleus size of what the network found stayed in range."""
    from PIL import Image

    from devolens.io.images import read_image
    from devolens.models import load

    pred = load("nuclei", diameter=None)
    lo, hi = pred.far_magnifications
    assert lo == pytest.approx(0.55 / np.exp(0.3276), abs=0.01) and hi == pytest.approx(1.15 * np.exp(0.3276), abs=0.01)
    frames = [read_image(p) for p in sorted((shared_data / "reference_frames").glob("*.png"))]

    def resized(f, k):
        img = Image.fromarray(f)
        return np.asarray(img.resize((round(img.width * k), round(img.height * k)), Image.BICUBIC))

    assert pred.magnification_check(frames) is None
    assert pred.magnification_check([resized(f, 2.5) for f in frames]).magnification > hi
    assert pred.magnification_check([resized(f, 0.3) for f in frames]).magnification < lo
    assert load("nuclei", diameter=40).magnification_check([resized(f, 2.5) for f in frames]) is None  # (given)


@needs_nuclei
def test_segment_nuclei_notes_shrunk_frames_used_as_they_are(shared_data, tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "small"
    src.mkdir()
    for p in sorted((shared_data / "reference_frames").glob("*.png")):
        img = Image.open(p)
        img.resize((round(img.width * 0.3), round(img.height * 0.3)), Image.BICUBIC).save(src / p.name)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--diameter", "none", "--out", str(out), "--no-overlay"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    import re

    seen = re.search(r"--diameter none: the images look ([0-9.]+)x as magnified", err)
    assert seen and float(seen.group(1)) < 0.4
    assert any("--diameter none: the images look" in n for n in json.loads((out / "segment.json").read_text())["notes"])
    # as they are, with the default magnification estimate: no such note
    assert main(["segment", "nuclei", str(shared_data / "reference_frames"), "--diameter", "none", "--out",
                 str(tmp_path / "seg2"), "--no-overlay"]) == 0
    assert "--diameter none: the images look" not in capsys.readouterr().err
