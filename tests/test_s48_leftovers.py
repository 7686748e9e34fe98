"""s48 m12: small mends. The membrane colour rule judges a shrunk copy of the image, never a float32 copy of the
whole of it; the spots note gives the size model's reading to one decimal, as segment's hint; the late-stage
AceTree figures as README's reproducer measured them, alike in README, population's note and its module; the
--out help of identify, curate frames, lineage convert/populations/clean and simulate embryo/well says what a rerun
does; tune's trials.csv marks the trials train.early_stop stopped."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_s47_channels import _membranes, _nuclei

ROOT = Path(__file__).resolve().parents[1]


def _flat(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------- 1. membrane_channel's memory
def test_membrane_channel_makes_no_float32_copy_of_a_large_image():
    """A 6000 x 6000 RGB uint8 image (108 MB): its float32 copy would be 432 MB; the verdict is the small image's."""
    from devolens.predict.notes import membrane_channel

    tile = np.dstack([_membranes(), _nuclei(), np.zeros((256, 256), np.uint8)])
    rgb = np.ascontiguousarray(np.tile(tile, (24, 24, 1))[:6000, :6000])
    assert membrane_channel(tile) == ("red", "green")
    tracemalloc.start()
    try:
        found = membrane_channel(rgb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == ("red", "green")
    assert peak < rgb.nbytes  # (the float32 copy: 4x it; about 0.75x it measured)


def test_membrane_channel_of_other_types_as_before():
    """16-bit and float images are shrunk as they are, other types as float32: the same verdicts."""
    from devolens.predict.notes import membrane_channel

    m, n, z = _membranes(), _nuclei(), np.zeros((256, 256), np.uint8)
    rgb = np.dstack([m, n, z])
    for image in (rgb.astype(np.uint16) * 257, rgb.astype(np.float32) / 255, rgb.astype(np.float64),
                  rgb.astype(np.int32), rgb.astype(np.float16)):
        assert membrane_channel(image) == ("red", "green"), image.dtype
    assert membrane_channel(np.dstack([m, n, z, np.full_like(m, 255)])) == ("red", "green")  # RGBA
    assert membrane_channel(np.dstack([n, m, z]).astype(np.uint16)) == ("green", "red")


# ---------------------------------------------------------------------------- 2. the spots note's hint
def test_spots_words_give_the_size_models_reading_to_one_decimal():
    from devolens.predict.sizing import DiameterEstimate, spots_words

    est = DiameterEstimate(diameter=7.0, magnification=0.37, per_image=[0.37], trusted=1, resize=35.6 / 7.0,
                           embryo=0.0, spots=6.7, model_diameter=19.716, model_resize=35.6 / 19.716)
    words = spots_words([est], "nuclei")
    assert "the run used --diameter 7," in words  # (whole by construction: the spots' size rounded)
    assert "give --diameter 19.7 to use the size model's reading instead" in words
    assert "give diameter=19.7 " in spots_words([est], "nuclei", library=True)


# ---------------------------------------------------------------------------- 3. the AceTree figures
def test_late_acetree_figures_agree_everywhere():
    from devolens.cli.predict import _held_out_note
    from devolens.predict.population import AMBIGUOUS_CELLS

    readme = _flat((ROOT / "README.md").read_text(encoding="utf-8"))
    module = _flat((ROOT / "src" / "devolens" / "predict" / "population.py").read_text(encoding="utf-8"))
    note = _flat(_held_out_note({"frames": ["t360"], "beyond_held_out": []}))
    assert "at 500-582 cells read 293-510 (3-49 % low" in readme
    assert "at 566-580 cells they read 293-395 now" in readme and "298-389 in an earlier measurement" in readme
    assert "the AceTree embryo's at 500-582 cells read 293-510, up to 49 % low" in note
    assert "500-582 cells read 293-510 (3-49 % low)" in module
    for text in (readme, module, note):  # the older range is no longer the one stated
        assert "297-510 (3-46 % low)" not in text and "297-510, up to 46 %" not in text
    assert AMBIGUOUS_CELLS <= 293  # the lowest late reading measured still above the cut


# ---------------------------------------------------------------------------- 4. --out help on reruns
@pytest.mark.parametrize("command, words", [
    (["identify"], "An existing CSV and its record are replaced, the two together."),
    (["curate", "frames"], "an existing report and record replaced."),
    (["lineage", "convert"], "An existing CSV and its .meta.json are replaced, the two together."),
    (["lineage", "populations"], "An existing CSV and its record (and --plot) are replaced, together."),
    (["lineage", "clean"], "An existing CSV and its .meta.json are replaced, the two together."),
    (["simulate", "embryo"], "An existing CSV and .meta.json are replaced."),
    (["simulate", "well"], "Existing files (this image, --labels, --objects, the record) are replaced, all four "
                           "together."),
])
def test_out_help_says_what_a_rerun_does(command, words):
    import typer

    from devolens.cli import app

    cmd = typer.main.get_command(app)
    for name in command:
        cmd = cmd.commands[name]
    (out,) = [p for p in cmd.params if "--out" in getattr(p, "opts", ())]
    assert words in _flat(out.help)


def test_reruns_replace_as_the_help_says(tmp_path):
    from devolens.cli import main

    e, p = tmp_path / "e.csv", tmp_path / "p.csv"
    assert main(["simulate", "embryo", "--cells", "20", "--out", str(e)]) == 0
    assert main(["lineage", "populations", str(e), "--out", str(p)]) == 0
    first = pd.read_csv(p)
    assert main(["simulate", "embryo", "--cells", "10", "--seed", "3", "--out", str(e)]) == 0
    assert main(["lineage", "populations", str(e), "--out", str(p)]) == 0
    assert pd.read_csv(e)["time"].nunique() < first["time"].nunique() and len(pd.read_csv(p)) < len(first)


# ---------------------------------------------------------------------------- 5. trials.csv's early stops
def test_trials_csv_marks_a_trial_that_stopped_early(tmp_path):
    from _train_data import make_pairs, tiny_recipe
    from devolens.train.tuning import tune

    pairs = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    train = {"epochs": 4, "batch_size": 4, "threads": 1, "overlay_samples": 0, "max_batches": 1,
             "monitor": "val_loss", "early_stop": {"patience": 1, "min_delta": 1.0e9}}  # stops after epoch 2
    rec = tiny_recipe(train=train)
    rec["tune"] = {"trials": 1, "epochs": 4, "metric": "val_loss", "direction": "minimize", "pruner": "median",
                   "space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}}
    tune(rec, pairs, tmp_path / "tune")
    rows = pd.read_csv(tmp_path / "tune" / "trials.csv", keep_default_na=False)
    assert list(rows.columns)[:4] == ["number", "value", "state", "stopped"]
    assert list(rows.columns)[-1] == "stopped_early_epoch" and rows["stopped_early_epoch"].tolist() == [1]
    # without early stopping: the column is there, empty
    del rec["train"]["early_stop"]
    rec["train"]["epochs"] = rec["tune"]["epochs"] = 1
    tune(rec, pairs, tmp_path / "plain")
    rows = pd.read_csv(tmp_path / "plain" / "trials.csv", keep_default_na=False)
    assert list(rows.columns)[-1] == "stopped_early_epoch" and rows["stopped_early_epoch"].tolist() == [""]
