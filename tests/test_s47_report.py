"""A first-time user's walk through the demo's report and outputs (s47): the identity model's limits in a few plain
bullets (the card's full list behind `devolens models show identity`), a "Run it on your own data" section whose
commands work as written, the demo's cells.csv written as identify writes it (confidence to 6 decimals),
`evaluate --data` printing its metrics without the val_ prefix, a folder of wells naming the files it skips, and
README's snippet naming the real columns of `.centroids`."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from devolens.cli import main

from _demo_run import small_demo  # noqa: F401  (fixture)
from _livedead_helpers import weights  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]


def _cli(args, capsys):
    capsys.readouterr()
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    return code, got.out, " ".join(got.err.split())


@pytest.fixture
def demo_out(small_demo):
    """A small demo (20 cells, 6 frames): its folder, shared with test_s35_demo (read only)."""
    return small_demo


def _section(report: str, start: str) -> str:
    """The report's text from the line starting ``start`` to the next ``## `` heading."""
    at = report.index(start)
    end = report.find("\n## ", at + 1)
    return report[at:] if end < 0 else report[at:end]


# ---------------------------------------------------------------- 1. the identity model's limits, in short
#: development history and internals a biologist cannot act on (the card's full limits are full of them)
JARGON = ("session", "runs/", "fold model", "Mahalanobis", "tracklet", "collision", "belief propagation", "in-sample",
          "skewness", "softmax")


def test_identity_limits_are_a_short_plain_summary_true_to_the_card():
    from devolens.cli.demo import identity_limits_summary
    from devolens.models.zoo import card

    c = card("identity")
    bullets = identity_limits_summary(c)
    assert 3 <= len(bullets) <= 6
    for text in bullets:
        assert len(text) < 400, text
        for word in JARGON:
            assert word.lower() not in text.lower(), (word, text)
    joined = " ".join(bullets)
    # its numbers are the card's: held-out founder and depth-1 accuracy
    assert f"founder of {100 * c['metrics']['founder_accuracy']['value']:.0f}%" in joined
    assert f"depth-1 name of {100 * c['metrics']['depth1_accuracy']['value']:.0f}%" in joined
    # the cases the card names, and identify's own options for them
    for words in ("stop early", "mirror", "--mirror", "simulated", "cut off", "germline", "confidence", "--zscale",
                  "580 nuclei", "200 nuclei"):
        assert words in joined, words
    limits = " ".join(c["limits"])
    assert "580 nuclei" in limits and "under 200 nuclei" in limits and "--mirror" in limits
    assert "not the chance that a name is right" in limits and "Germline names are the weakest" in limits


def test_the_report_pastes_no_card_limit_and_points_to_the_card(demo_out):
    from devolens.cli.demo import identity_limits_summary
    from devolens.models.zoo import card

    report = (demo_out / "report.md").read_text()
    for limit in card("identity")["limits"]:
        assert limit not in report
    part = _section(report, "Limits of the identity model")
    assert "`devolens models show identity`" in part
    for text in identity_limits_summary(card("identity")):
        assert f"- {text}" in part
    for word in JARGON:
        assert word.lower() not in part.lower(), word


# ---------------------------------------------------------------- 2. what to do next, commands that work
def test_the_report_says_how_to_run_it_on_your_own_data(demo_out):
    from devolens.cli.demo import OWN_DATA_COMMANDS

    report = (demo_out / "report.md").read_text()
    part = _section(report, "## Run it on your own data")
    assert report.index("## Run it on your own data") < report.index("## Files")
    for _, command in OWN_DATA_COMMANDS:
        assert f"\n{command}\n" in part, command
    words = " ".join(c for _, c in OWN_DATA_COMMANDS)
    for needed in ("segment nuclei", "--clock", "--skip-flagged", "devolens identify", "devolens population"):
        assert needed in words, needed


def test_the_own_data_commands_work_as_written(demo_out, tmp_path, monkeypatch, capsys):
    from devolens.cli.demo import OWN_DATA_COMMANDS

    monkeypatch.chdir(tmp_path)
    shutil.copy(demo_out / "render" / "video.mp4", "movie.mp4")  # the report's example names
    shutil.copy(demo_out / "embryo.csv", "lineage.csv")
    for _, command in OWN_DATA_COMMANDS:
        words = shlex.split(command)
        assert words[0] == "devolens"
        code, _, err = _cli(words[1:], capsys)
        assert code == 0, (command, err)
    assert Path("curation.csv").is_file() and (Path("nuclei") / "counts.csv").is_file()
    assert json.loads(Path("populations.json").read_text())["options"]["clock"] is True
    assert len(pd.read_csv("cells.csv")) == len(pd.read_csv("lineage.csv"))


# ---------------------------------------------------------------- 3. cells.csv as identify writes it
def test_demo_cells_csv_writes_confidence_as_identify_does(demo_out):
    from devolens.cli.identify import CONFIDENCE_DECIMALS

    raw = pd.read_csv(demo_out / "cells.csv", dtype={"confidence": str})["confidence"]
    decimals = raw.str.split(".").str[1].str.len()
    assert int(decimals.max()) <= CONFIDENCE_DECIMALS == 6
    assert float(raw.astype(float).min()) >= 0 and float(raw.astype(float).max()) <= 1


def test_cells_for_csv_rounds_the_confidence_only():
    from devolens.cli.identify import cells_for_csv

    df = pd.DataFrame({"x": [1.23456789], "pred_founder": ["AB"], "confidence": [0.8495091962601582]})
    got = cells_for_csv(df)
    assert got["confidence"].iloc[0] == 0.849509 and got["x"].iloc[0] == 1.23456789
    assert df["confidence"].iloc[0] == 0.8495091962601582  # (the caller's frame left as it was)


# ---------------------------------------------------------------- 4. evaluate --data: no val_ prefix
@pytest.fixture
def fake_eval(tmp_path, monkeypatch):
    """A run folder and a data folder, with the scoring replaced by a stub."""
    import devolens.train.evaluate as evaluate

    run, data = tmp_path / "run", tmp_path / "heldout"
    run.mkdir()
    data.mkdir()

    def scored(*args, **kwargs):
        return {"metrics": {"val_f1": 0.5, "val_iou": 0.25, "val_dice_1": 0.75, "val_count_mae": 1.0},
                "validate": {"instances": "classes"}}

    monkeypatch.setattr(evaluate, "evaluate_run", scored)
    return run, data


def test_evaluate_prints_its_metrics_without_the_val_prefix(fake_eval, tmp_path, capsys):
    run, data = fake_eval
    target = tmp_path / "m.json"
    code, out, err = _cli(["evaluate", run, "--data", data, "--json", target], capsys)
    assert code == 0, err
    assert out.splitlines() == ["f1: 0.5000", "iou: 0.2500", "dice_1: 0.7500", "count_mae: 1.0000",
                                "instances: classes"]
    assert "val_" not in out
    # the JSON keeps its keys (as history.csv and best.json name them; tests and scripts read them)
    assert json.loads(target.read_text())["metrics"] == {"val_f1": 0.5, "val_iou": 0.25, "val_dice_1": 0.75,
                                                         "val_count_mae": 1.0}
    code, out, _ = _cli(["evaluate", "--help"], capsys)
    assert "without the val_ prefix" in " ".join(out.split())


# ---------------------------------------------------------------- 5. a folder of wells names what it skips
def _well(h=64, w=80, seed=3):
    from devolens.render.wells import simulate_well

    return simulate_well(seed=seed, size=(h, w), density=1500)


def _plate(tmp_path) -> Path:
    plate = tmp_path / "plate"
    plate.mkdir()
    for i, name in enumerate(("w1", "w2")):
        well = _well(seed=3 + i)
        tifffile.imwrite(plate / f"{name}.tif", well.image, metadata={"axes": "CYX"})
        if i == 1:
            tifffile.imwrite(plate / "well_labels.tif", well.labels.astype(np.uint8))
    (plate / "w2.json").write_text("{}")
    (plate / "w2.objects.csv").write_text("x,y\n1,2\n")
    (plate / ".hidden").write_text("")
    (plate / "sub").mkdir()
    return plate


def test_plate_skipped_names_each_kind(tmp_path):
    from devolens.cli.tiles import plate_left_out, plate_skipped

    plate = _plate(tmp_path)
    said = ("skipped 3 files that are not well images: 1 label image (well_labels.tif), 2 files that are not "
            "images (w2.json, w2.objects.csv)")
    assert plate_skipped(plate) == said
    assert plate_left_out(plate) == said
    for i in range(4):
        (plate / f"n{i}.txt").write_text("")
    assert plate_skipped(plate).endswith("6 files that are not images (n0.txt, n1.txt, n2.txt and 3 more)")
    clean = tmp_path / "clean"
    clean.mkdir()
    tifffile.imwrite(clean / "a.tif", _well().image, metadata={"axes": "CYX"})
    assert plate_skipped(clean) is None and plate_left_out(clean) is None


def test_segment_livedead_on_a_folder_notes_the_files_it_skips(tmp_path, capsys, weights):  # noqa: F811
    plate = _plate(tmp_path)
    out = tmp_path / "o"
    code, _, err = _cli(["segment", "livedead", plate, "--out", out, "--model", weights, "--window", "64",
                         "--overlap", "16", "--no-overlay"], capsys)
    assert code == 0, err
    said = ("skipped 3 files that are not well images: 1 label image (well_labels.tif), 2 files that are not "
            "images (w2.json, w2.objects.csv)")
    assert "2 wells" in err and f"note: {said}" in err
    record = json.loads((out / "livedead.json").read_text())
    assert said in record["notes"]
    assert [w["file"] for w in record["wells"]] == ["w1.tif", "w2.tif"]


# ---------------------------------------------------------------- 6. README's snippet
def test_readme_names_the_centroids_columns():
    from devolens.models import load

    line = next(x for x in (ROOT / "README.md").read_text().splitlines() if ".centroids (" in x and "#" in x)
    named = [c.strip() for c in re.search(r"\.centroids \(([^)]*)\)", line).group(1).split(",")]
    image = np.zeros((128, 128), np.uint8)
    yy, xx = np.mgrid[:128, :128]
    for cy, cx in ((40, 40), (85, 90)):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 169] = 200
    result = load("nuclei").predict(image)
    assert named == list(result.centroids.columns)
