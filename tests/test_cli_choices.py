"""Options whose value is a word from a fixed list take it in any case (`--precision FP32`, `--start 4CELL`) and give
the command its canonical spelling; a word not on the list is still refused in the command's words."""

from __future__ import annotations

import pandas as pd
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.cli._common import COLOR_CHOICE, PAGES_CHOICE, PRECISION_CHOICE, STACK_Z_CHOICE, choice


def test_choice_gives_the_canonical_spelling():
    start = choice("P0", "4cell")
    assert [start(v) for v in ("p0", "P0", " 4CELL ", None)] == ["P0", "P0", "4cell", None]
    assert start("P1") == "P1"  # not a choice: left for the command's own check
    assert (PRECISION_CHOICE("FP32"), COLOR_CHOICE("Green"), STACK_Z_CHOICE("SLICES"), PAGES_CHOICE("Z")) == (
        "fp32", "green", "slices", "z")


def test_cli_word_options_take_any_case(tmp_path, capsys):
    out = tmp_path / "sim.csv"
    assert main(["simulate", "embryo", "--start", "4CELL", "--times", "2", "--out", str(out), "--seed", "1"]) == 0
    assert pd.read_csv(out).groupby("time").size().iloc[0] == 4  # the 4-cell start
    capsys.readouterr()
    # the words pass their checks: each command stops at the next (the missing input, a bad --every)
    assert main(["segment", "livedead", str(tmp_path / "none.tif"), "--out", str(tmp_path / "o"),
                 "--precision", "FP32"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["render", "--simulate", "1", "--kind", "MEMBRANE", "--pose", "Random", "--vary", "FRAME",
                 "--every", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--every must be at least 1" in capsys.readouterr().err
    assert main(["models", "export", str(tmp_path), "--to", str(tmp_path / "m"), "--kind", "Nuclei"]) == 2
    assert "not a training run" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["segment", "livedead", "x.tif", "--out", "o", "--precision", "fp64"], "--precision must be"),
    (["render", "--simulate", "1", "--pose", "RANDOMLY", "--out", "r"], "--pose must be"),
])
def test_cli_unknown_words_are_still_refused(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_inference_word_options_take_any_case(tiny_zoo, tmp_path, capsys):  # noqa: F811
    """segment and population: --precision, --backend, --color, --stack-z, --pages in any case; population's help
    and tip give the measured --clock figures (CLOCK_GAIN)."""
    import numpy as np
    import tifffile

    from devolens.cli._common import CLOCK_GAIN

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(6):
        tifffile.imwrite(frames / f"t{i}.tif", np.zeros((48, 64, 3), np.uint8))
    words = ["--precision", "FP32", "--backend", "Torch", "--color", "GREEN", "--stack-z", "Project", "--pages", "TIME"]
    assert main(["segment", "nuclei", str(frames), "--out", str(tmp_path / "seg"), *words]) == 0
    capsys.readouterr()
    assert main(["population", str(frames), "--out", str(tmp_path / "p.csv"), "--no-plot", *words]) == 0
    assert CLOCK_GAIN in " ".join(capsys.readouterr().err.split())  # the tip
    assert main(["population", "--help"]) == 0
    assert "10% -> 5%" not in " ".join(capsys.readouterr().out.replace("│", " ").split())
