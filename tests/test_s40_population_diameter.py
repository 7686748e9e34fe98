"""population's --diameter in pixels gets segment nuclei's check (session 40).

``devolens segment nuclei --diameter PX`` notes a diameter far from the one the size model's estimate would use
(:meth:`~devolens.predict.segment._SegmentationPredictor.diameter_check`, session 39); ``population`` resizes its
frames by the diameter given and had no such check: the real reference frame of 300 shrunk to half, given 48 px (which
suits it as filmed) read 154 cells without a word, 271 with ``--diameter auto``. Now population makes the same check
(one pass of the nuclei model's size model over the frames with the most nuclei; the counts stay as they are) and
gives segment's note, which its record keeps."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from test_predict_sizing import _add_size_model, _disc_image
from test_s35_population import _folder

#: the note's start for --diameter 10 on the tiny zoo's frames, whose size model reads every image at 2x
WORDS = "--diameter 10: the size model reads the images as 2x as magnified"


def _said(capsys) -> str:
    cap = capsys.readouterr()
    return " ".join((cap.out + cap.err).split())


def _notes(csv) -> list:
    return json.loads(csv.with_suffix(".json").read_text())["notes"]


def test_population_predictor_checks_a_diameter_in_pixels(tiny_zoo):  # noqa: F811
    """The nuclei model's check at the diameter given, its model left at diameter None (population resizes)."""
    from devolens.models import load

    _add_size_model(tiny_zoo, m=2.0)  # auto: 20 * 2 / 1.125 = 35.6 px
    img = _disc_image((96, 128), 6)
    far = load("population", diameter=10)
    check = far.diameter_check([img])
    assert check is not None and check.given == 10.0 and check.suggested == pytest.approx(35.6, abs=0.1)
    assert check.magnification == pytest.approx(2.0)
    assert far.nuclei.diameter is None and far.resize == pytest.approx(2.0)  # a check: nothing applied
    assert load("population", diameter=30).diameter_check([img]) is None  # 1.19x apart: right enough
    for other in ("auto", None):
        assert load("population", diameter=other).diameter_check([img]) is None
    assert far.diameter_check([_disc_image((96, 128), 6, n=1)]) is None  # too few nuclei to judge by


def test_population_notes_a_diameter_far_from_the_estimate(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.models import load

    _add_size_model(tiny_zoo, m=2.0)
    frames = [_disc_image((96, 128), 6, seed=s) for s in range(2)]
    folder = _folder(tmp_path, frames)
    out = tmp_path / "p10.csv"
    assert main(["population", str(folder), "--out", str(out), "--no-plot", "--diameter", "10"]) == 0
    said = _said(capsys)
    assert WORDS in said and "--diameter auto would use 36 px, 3.6x apart" in said
    assert "splits large nuclei, or merges small ones" in said
    assert "run again with --diameter 36" in said
    assert any(n.startswith(WORDS) for n in _notes(out))  # the record keeps it, as segment.json does
    # not applied: the counts are those of the frames resized by the diameter given
    got = pd.read_csv(out)
    want = load("population", diameter=10).predict_batch(frames)
    assert np.allclose(got["total"], want["total"].round(2))
    # a µm diameter (5 µm at 0.5 µm per pixel: 10 px) is named as the user wrote it
    out_um = tmp_path / "pum.csv"
    assert main(["population", str(folder), "--out", str(out_um), "--no-plot", "--diameter", "5um",
                 "--pixel-size", "0.5"]) == 0
    assert "--diameter 5um: the size model reads the images as 2x as magnified" in _said(capsys)
    for other in ("30", "auto", "none"):  # 30: 1.19x apart; auto judged them itself; none: the magnification note's
        csv = tmp_path / f"p_{other}.csv"
        assert main(["population", str(folder), "--out", str(csv), "--no-plot", "--diameter", other]) == 0
        assert "--diameter auto would use" not in _said(capsys)
        assert not any("--diameter auto would use" in n for n in _notes(csv))
    lone = _folder(tmp_path, [_disc_image((96, 128), 6, n=1)], "lone")  # too few nuclei to judge by: no word
    assert main(["population", str(lone), "--out", str(tmp_path / "lone.csv"), "--no-plot", "--diameter", "10"]) == 0
    assert "--diameter auto would use" not in _said(capsys)


def _half(image: np.ndarray) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    return cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


@pytest.mark.skipif(not shipped("population") or not shipped("nuclei"), reason="population weights not shipped")
def test_shipped_population_notes_a_wrong_diameter_of_a_shrunk_render(tmp_path, capsys):
    """A simulated embryo of 89 cells rendered in EPIC framing (read at ~1x) and shrunk to half: 48 px (above the
    nuclei model's 35.6 px reference, for frames at ~1.3x) given to it noted, with the diameter auto would use
    (about 22 px: 2.2x apart); 20 px, which suits it, not."""
    from devolens.lineage.simulate import simulate_embryo
    from devolens.render.nuclei import render_nuclei_frame

    table = simulate_embryo(11, n_cells=90)
    t = int(table.groupby("time").size().index[-1])
    folder = _folder(tmp_path, [_half(render_nuclei_frame(table, t, size=(512, 752), seed=5, rgb=True).image)])
    out = tmp_path / "p48.csv"
    assert main(["population", str(folder), "--out", str(out), "--no-plot", "--diameter", "48"]) == 0
    said = _said(capsys)
    assert "--diameter 48: the size model reads the images as" in said
    suggested = re.search(r"--diameter auto would use (\d+) px", said)
    assert suggested and 16 <= int(suggested.group(1)) <= 29  # (22 here)
    assert any(n.startswith("--diameter 48: the size model reads") for n in _notes(out))
    assert main(["population", str(folder), "--out", str(tmp_path / "p20.csv"), "--no-plot", "--diameter", "20"]) == 0
    assert "--diameter auto would use" not in _said(capsys)


@pytest.mark.skipif(not shipped("population") or not shipped("nuclei"), reason="population weights not shipped")
def test_shipped_population_notes_48_px_given_to_the_real_frame_shrunk(shared_data, tmp_path, capsys):
    """The reproducer: the real reference frame of 300 shrunk to half (INTER_AREA) read 154 cells at 48 px, 271 with
    --diameter auto, without a word; now noted (auto would use 26 px), the counts unchanged; 24 px not noted."""
    from devolens.io.images import read_image

    folder = _folder(tmp_path, [_half(read_image(shared_data / "reference_frames" / "epic_movie_frame300.png"))])
    out = tmp_path / "p48.csv"
    assert main(["population", str(folder), "--out", str(out), "--no-plot", "--diameter", "48"]) == 0
    said = _said(capsys)
    assert "--diameter 48: the size model reads the images as" in said
    suggested = re.search(r"run again with --diameter (\d+)", said)
    assert suggested and 20 <= int(suggested.group(1)) <= 30  # (26 here)
    assert pd.read_csv(out)["total"].iloc[0] < 200  # (not applied: 154 cells at 48 px, 271 with auto)
    assert main(["population", str(folder), "--out", str(tmp_path / "p24.csv"), "--no-plot", "--diameter", "24"]) == 0
    assert "--diameter auto would use" not in _said(capsys)
