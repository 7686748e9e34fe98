"""The population total's blend weight (calibration vs whole-frame regressor), chosen again on development renders
(benchmarks/choose_total_weight.py, thirty-eighth session): the card records the choice, the predictor uses it, and
the script scores weights as its docstring says."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "src/devolens/models/zoo/population/card.json"


def _choose():
    spec = importlib.util.spec_from_file_location("_choose_total_weight", ROOT / "benchmarks/choose_total_weight.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_card_ships_the_weight_its_choice_names():
    tr = json.loads(CARD.read_text())["total_regressor"]
    chosen = tr["chosen"]
    scores = {float(w): s for w, s in chosen["scores"].items()}
    best = min(scores, key=scores.get)
    assert tr["weight_calibration"] == chosen["weight"]
    # the script's rule: the best-scoring weight, unless the one shipped before (0.5) scored within 0.002 of it
    expected = 0.5 if scores[0.5] - scores[best] <= 0.002 else best
    assert tr["weight_calibration"] == expected
    assert "choose_total_weight.py" in chosen["by"]


def test_the_population_predictor_blends_with_the_cards_weight():
    from devolens.models import load

    pred = load("population")
    if pred.network is None:
        pytest.skip("no whole-frame regressor in this population model")
    assert pred.total_weight == json.loads(CARD.read_text())["total_regressor"]["weight_calibration"]


def test_scores_weigh_the_two_estimates_in_log_space():
    from devolens.predict.population import composition_counts

    mod = _choose()
    table = np.zeros((401, 7), np.float32)
    table[:, 0] = np.arange(401)  # every cell an A: the letters are the total
    truth_totals = np.array([10.0, 50.0, 200.0])
    truth = pd.DataFrame({k: 0.0 for k in mod.LETTERS}, index=range(3))
    truth["A"] = truth_totals
    truth["total"] = truth_totals
    exact, double = truth_totals, 2 * truth_totals + 1  # log1p(double) = log1p(exact) + log(2)
    assert mod._score(exact, double, truth, 1.0, table)["A"] == pytest.approx(0.0, abs=1e-6)
    assert mod._score(exact, double, truth, 0.0, table)["total"] == pytest.approx(
        np.abs(double - truth_totals).mean() / truth_totals.mean(), rel=1e-5)
    half = mod._score(exact, double, truth, 0.5, table)  # geometric mean of (1 + c) and (1 + r), minus 1
    blended = np.expm1(0.5 * np.log1p(exact) + 0.5 * np.log1p(double))
    assert half["A"] == pytest.approx(np.abs(composition_counts(blended, table)[:, 0] - truth_totals).mean()
                                      / truth_totals.mean(), rel=1e-5)
    assert np.isnan(half["E"]) and half["letters"] == pytest.approx(half["A"])  # letters absent from the truth skipped


def test_missing_renders_are_one_error_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/choose_total_weight.py"), "--renders",
                           str(tmp_path / "none"), "--framed"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no render at") and "Traceback" not in proc.stderr
