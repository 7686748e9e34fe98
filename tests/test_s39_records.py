"""Prediction records of the magnification estimate (session 39):

- ``segment.json``'s per-image rows (``--diameter each``) say, for an image whose estimate was held to the range the
  working scale may be resized to, what was estimated (``estimated_diameter``, ``estimated_resize``) beside what was
  used (``diameter``, ``resize``) and ``held``; they said only what was used;
- ``devolens population``'s JSON record gives the working scale the nuclei network read the frames at (as
  ``segment.json``) and whether the estimate was held; the population predictor's rows carry the estimate their frame
  was resized by (``estimate``), as a segmentation result's ``extra["estimate"]``;
- ``--diameter auto``'s refusal of an estimate beyond that range names the input (a folder's: the images it was
  estimated from, and ``--diameter each``), still offering ``--diameter none`` and a diameter in pixels; nothing is
  written.
"""

from __future__ import annotations

import json

import imageio.v3 as iio
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from test_predict_sizing import _add_size_model, _disc_image  # a constant size model; bright discs apart


def _said(capsys) -> str:
    """Everything a command printed, on one line."""
    cap = capsys.readouterr()
    return " ".join((cap.out + cap.err).split())


def _folder(tmp_path, n=3):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(n):
        iio.imwrite(folder / f"f{i}.png", _disc_image((96, 128), 6, seed=i))
    return folder


# -------------------------------------------------------------------------- 1. each: the held rows in segment.json

def test_sizing_record_rows_name_a_held_estimate():
    from devolens.cli.predict import _sizing_record
    from devolens.predict.sizing import DiameterEstimate

    held = DiameterEstimate(diameter=2.5, magnification=0.05, per_image=[0.05], trusted=1, resize=8.0, held=1.25)
    plain = DiameterEstimate(diameter=40.0, magnification=0.7, per_image=[0.7], trusted=1, resize=0.5)
    rows = _sizing_record("each", estimates=[held, plain], frames=["a", "b"])["per_image"]
    assert rows[0]["held"] is True and rows[0]["diameter"] == 2.5 and rows[0]["resize"] == 8.0
    assert rows[0]["estimated_diameter"] == 1.25 and rows[0]["estimated_resize"] == pytest.approx(16.0)
    assert not {"held", "estimated_diameter", "estimated_resize"} & set(rows[1])  # not held: its row as before
    json.dumps(rows)


def test_segment_each_records_the_held_diameter(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    _add_size_model(tiny_zoo, m=0.05)  # 16x to enlarge, beyond the 8x the working scale may be: held to 8x
    folder = _folder(tmp_path, n=2)
    assert main(["segment", "nuclei", str(folder), "--out", str(tmp_path / "o"), "--diameter", "each"]) == 0
    rows = json.loads((tmp_path / "o" / "segment.json").read_text())["magnification_estimate"]["per_image"]
    assert [r["frame"] for r in rows] == ["f0", "f1"]
    for row in rows:
        assert row["held"] is True
        assert row["estimated_diameter"] == pytest.approx(1.25) and row["diameter"] == pytest.approx(2.5)
        assert row["estimated_resize"] == pytest.approx(16.0, rel=1e-4) and row["resize"] == pytest.approx(8.0)


# ------------------------------------------------------------------------------ 2. population's records and rows

def test_population_rows_carry_their_estimate(tiny_zoo):  # noqa: F811
    from devolens.models import load
    from devolens.predict.sizing import DiameterEstimate

    _add_size_model(tiny_zoo, m=2.0)
    pred = load("population", diameter="auto")
    rows = list(pred.predict_iter([_disc_image((96, 128), 6, seed=s) for s in range(3)]))
    assert all(isinstance(r["estimate"], DiameterEstimate) for r in rows)
    assert all(r["estimate"] is pred.last_estimate for r in rows)  # this stream's own
    assert rows[0]["estimate"].resize == pytest.approx(pred.resize)
    assert "estimate" not in next(load("population", diameter=None).predict_iter([_disc_image((96, 128), 6)]))


def test_population_record_gives_the_working_scale_and_the_estimate(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    _add_size_model(tiny_zoo, m=2.0)  # mirrored into the keep band: 1.125 / 2 = 0.5625x
    folder = _folder(tmp_path)
    assert main(["population", str(folder), "--out", str(tmp_path / "p.csv"), "--no-plot"]) == 0
    record = json.loads((tmp_path / "p.json").read_text())
    est = record["magnification_estimate"]
    assert est["by"] == "auto" and est["held"] is False and est["diameter"] == pytest.approx(20 * 2 / 1.125, rel=1e-5)
    assert record["working_scale"] == pytest.approx(0.5 * 0.5625)  # the nuclei card's scale 0.5, times the resizing
    assert (tmp_path / "p.csv").read_text().splitlines()[0] == "frame,A,E,M,P,C,D,Z,total"  # as before
    assert main(["population", str(folder), "--out", str(tmp_path / "q.csv"), "--no-plot", "--diameter", "none"]) == 0
    assert json.loads((tmp_path / "q.json").read_text())["working_scale"] == pytest.approx(0.5)


# ---------------------------------------------------------------------------- 3. the refusal names the input

def test_auto_refusal_names_the_file(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    _add_size_model(tiny_zoo, m=0.05)  # 16x to enlarge: refused by "auto"
    image = tmp_path / "embryo.png"
    iio.imwrite(image, _disc_image((96, 128), 6))
    for args, gone in ((["segment", "nuclei", str(image), "--out", str(tmp_path / "o")], [tmp_path / "o"]),
                       (["population", str(image), "--out", str(tmp_path / "p.csv"), "--no-plot"],
                        [tmp_path / "p.csv", tmp_path / "p.json"])):
        assert main(args) == 2
        said = _said(capsys)
        assert f"error: {image}: diameter='auto' (estimated 1.25 px" in said, said
        assert "give a diameter of 2.5-1000 px" in said and "or --diameter none to segment" in said
        assert "Traceback" not in said and not any(p.exists() for p in gone)


def test_auto_refusal_names_the_folder_and_its_images(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    _add_size_model(tiny_zoo, m=0.05)
    folder = _folder(tmp_path)
    assert main(["segment", "nuclei", str(folder), "--out", str(tmp_path / "o")]) == 2
    said = _said(capsys)
    assert f"error: {folder}: diameter='auto'" in said and "or --diameter none to segment" in said
    assert "The estimate came from its images f0.png, f1.png, f2.png" in said
    assert "--diameter each estimates every image of the folder on its own" in said
    assert "Traceback" not in said and not (tmp_path / "o").exists()
    assert main(["population", str(folder), "--out", str(tmp_path / "p.csv"), "--no-plot"]) == 2
    said = _said(capsys)
    assert f"error: {folder}: diameter='auto'" in said and "its images f0.png, f1.png, f2.png" in said
    assert "--diameter each" not in said  # (population reads one movie at one magnification)
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.json").exists()
