"""Metric fixes of the thirty-third session (the metrics audit): library edges of devolens.train.metrics (matching
below IoU 0.5, NaN scores, missing identities) and the texts that describe the metrics (evaluate's help, the
population and livedead cards, the summary table of benchmarks/RESULTS.md)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devolens.errors import DevolensValueError
from devolens.train import metrics as M

ROOT = Path(__file__).resolve().parents[1]


def _row(spans: dict[int, tuple[int, int]], width: int = 30) -> np.ndarray:
    """A 1 x width label image with label k on [a, b) for each k: (a, b)."""
    lab = np.zeros((1, width), np.int64)
    for k, (a, b) in spans.items():
        lab[0, a:b] = k
    return lab


def test_low_threshold_matching_is_optimal_not_greedy():
    """Below IoU 0.5 one prediction can overlap two true objects by that much: the pairs taken by decreasing IoU
    (prediction 1 with object 1, IoU 0.47) left prediction 2 unmatched; the optimal matching pairs prediction 1
    with object 2 (0.29) and prediction 2 with object 1 (0.30): two true positives, not one."""
    true = _row({1: (0, 10), 2: (10, 20)})
    pred = _row({1: (3, 15), 2: (0, 3)})
    s = M.instance_scores(pred, true, threshold=0.25)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 0, 0)
    m = M.match_instances(pred, true, threshold=0.25)
    assert sorted(map(tuple, m["pairs"].tolist())) == [(1, 2), (2, 1)]
    # the sparse path (giant images) matches the same
    dense = M.DENSE_PAIRS
    try:
        M.DENSE_PAIRS = 0
        assert M.instance_scores(pred, true, threshold=0.25)["tp"] == 2
    finally:
        M.DENSE_PAIRS = dense
    # from 0.5 up nothing changes: one candidate per object
    assert M.instance_scores(pred, true)["tp"] == 0


def test_low_threshold_matching_finds_the_most_pairs_on_random_images():
    """Against a brute force over every one-to-one matching of the candidate pairs (small random 1-D scenes)."""
    from itertools import permutations

    rng = np.random.default_rng(5)
    for _ in range(300):
        cuts = np.sort(rng.choice(np.arange(1, 24), 3, replace=False))
        true = _row({1: (0, cuts[0]), 2: (cuts[0], cuts[1]), 3: (cuts[1], cuts[2])}, 24)
        pred = np.zeros_like(true)
        for k in (1, 2, 3):
            a, b = np.sort(rng.integers(0, 25, 2))
            pred[0, a:b] = k
        thr = 0.2
        ious = {}
        for p in range(1, 4):
            for t in range(1, 4):
                pa, tb = pred == p, true == t
                union = (pa | tb).sum()
                if union and (pa & tb).sum() / union > thr:
                    ious[(p, t)] = (pa & tb).sum() / union
        best = max((sum((p, t) in ious for p, t in zip(range(1, 4), perm)) for perm in permutations(range(1, 4))),
                   default=0)
        assert M.instance_scores(pred, true, threshold=thr)["tp"] == best


def test_nan_score_is_a_clear_error():
    """A NaN score raised numpy's 'list argument must have no negative elements'; now a message that says what is
    wrong (still a ValueError for callers that catch one)."""
    with pytest.raises(DevolensValueError, match="1 of 3 scores are NaN"):
        M.score_histograms(np.array([np.nan, 0.9, 0.2]), np.array([1, 0, 1], bool))
    with pytest.raises(ValueError, match="NaN"):
        M.average_precision(np.array([0.1, np.nan]), np.array([1, 0], bool))
    # scores outside [0, 1] (logits, inf) are still clipped, as before
    assert M.average_precision(np.array([np.inf, 3.0, -2.0]), np.array([0, 1, 1], bool)) == pytest.approx(0.5833, abs=1e-4)


def test_missing_identity_predictions_count_as_wrong():
    """None or NaN among the predictions (cells the predictor gave no name) raised a TypeError from np.unique; each
    now counts as a wrong prediction that is no class of its own (not the string 'nan' as a class)."""
    true = np.array(["AB", "AB", "MS", "E"], dtype=object)
    for gap in (None, np.nan):
        pred = np.array(["AB", gap, "MS", "E"], dtype=object)
        s = M.identity_scores(pred, true)
        assert s["accuracy"] == 0.75
        # AB: tp 1, fn 1 -> 2/3; MS and E: 1; no 'None' class
        assert s["macro_f1"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert M.identity_scores(["AB", None], ["AB", "MS"], labels=["AB", "MS"])["macro_f1"] == pytest.approx(0.5)
    # a missing truth is the caller's to leave out
    with pytest.raises(DevolensValueError, match="1 of 2 true identities are missing"):
        M.identity_scores(np.array(["AB", "MS"], dtype=object), np.array(["AB", None], dtype=object))
    # no missing value: as before
    assert M.identity_scores(np.array(["AB", "MS"]), np.array(["AB", "AB"])) == {"accuracy": 0.5, "macro_f1": 1 / 3}


def test_evaluate_help_says_what_the_means_are_over():
    """val_dice and val_iou average the foreground classes, not every class; val_f1 is detection F1; PR-AUC comes
    from 1000-bin histograms; the scores do not depend on --batch-size."""
    from devolens.cli.train import evaluate_cmd

    text = " ".join(evaluate_cmd.__doc__.split())
    assert "val_dice is the mean of the Dice values over the foreground classes" in text
    assert "the mean of the class Dice values" not in text
    assert "detection F1" in text and "the class is not checked" in text and "val_f1_1" in text
    assert "1000-bin score histograms" in text and "do not depend on --batch-size" in text
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "`val_dice` the mean of the Dice values over the foreground classes" in readme
    assert "`val_dice` the mean of the classes' Dice" not in readme


def _script(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_eval_zoo_population_le200_description_counts_its_own_frames(tmp_path, monkeypatch):
    """benchmarks/eval_zoo.py described the frames with <= 200 cells with the all-stage count ('5 frames, frames with
    <= 200 cells'); it now gives the subset's own count."""
    ez = _script(ROOT / "benchmarks" / "eval_zoo.py", "_s33_eval_zoo")
    letters = list(ez.LETTERS) + ["total"]
    dirs = []
    for name, totals in (("va", [50, 150, 300]), ("vb", [120, 400])):
        d = tmp_path / name
        d.mkdir()
        rows = [{"file": f"f{i}.png", "artifact": "", **{k: 1 for k in ez.LETTERS}, "total": t}
                for i, t in enumerate(totals)]
        pd.DataFrame(rows).to_csv(d / "frames.csv", index=False)
        dirs.append(d)

    class Fake:
        auto = False
        composition = None
        clock = None

        def predict_iter(self, images):
            for _ in images:
                yield {k: 2.0 for k in letters}

    monkeypatch.setattr(ez, "_load", lambda *a, **k: Fake())
    monkeypatch.setattr(ez, "_framed_dirs", lambda: [])
    monkeypatch.setattr("devolens.io.images.read_image", lambda path: np.zeros((4, 4), np.uint8))
    metrics, _ = ez.eval_population(None, dirs, threads=1)
    assert metrics["total_mae_heldout"]["how"] == "held-out renders (va, vb, 5 frames, all stages)"
    assert metrics["le200_mae_over_mean_heldout"]["how"] == "held-out renders (va, vb, 3 frames with <= 200 cells)"


def _card(name: str) -> tuple[dict, str]:
    folder = ROOT / "src" / "devolens" / "models" / "zoo" / name
    return json.loads((folder / "card.json").read_text()), (folder / "card.md").read_text()


def test_population_card_and_summary_row_say_the_measured_figures():
    """The population card's <= 200 cells description gives that subset's frame count (111 of the 145 held-out
    frames, fewer than all stages'), and the summary table of benchmarks/RESULTS.md quotes the card's EPIC-framed
    figures (per frame and with --clock), not the fifth stage's."""
    import re

    card, md = _card("population")
    m = card["metrics"]
    n_all = int(re.search(r"(\d+) frames, all stages", m["total_mae_heldout"]["how"]).group(1))
    n_small = int(re.search(r"(\d+) frames with <= 200 cells", m["le200_mae_over_mean_heldout"]["how"]).group(1))
    assert n_small < n_all
    assert m["le200_mae_over_mean_heldout"]["how"] in md

    row = next(line for line in (ROOT / "benchmarks" / "RESULTS.md").read_text().splitlines()
               if line.startswith("| 5 population |"))
    frame = m["mae_over_mean_heldout_epic_framing"]["value"]
    clock = m["mae_over_mean_heldout_epic_framing_clock"]["value"]
    per_frame = ", ".join(f"{k} {round(100 * frame[k])} %" for k in ("total", "A", "P", "Z"))
    pooled = ", ".join(f"{k} {round(100 * clock[k])} %" for k in ("A", "E", "M", "C", "P", "D", "Z", "total"))
    assert f"EPIC-framed held-out movies, per frame: {per_frame}; with `--clock` pooled {pooled}" in row


def test_livedead_card_says_how_its_pr_auc_is_binned():
    """The livedead card's PR-AUC descriptions (card.json's how, card.md) and the script that writes them say the
    figure comes from 1000-bin histograms and reads about 0.005 below scikit-learn's; the figures are unchanged."""
    card, md = _card("livedead")
    for k in ("pr_auc_live", "pr_auc_dead"):
        assert "1000-bin score histograms" in card["metrics"][k]["how"]
        assert "0.005 below scikit-learn's average_precision_score" in card["metrics"][k]["how"]
    assert (card["metrics"]["pr_auc_live"]["value"], card["metrics"]["pr_auc_dead"]["value"]) == (0.9799, 0.9682)
    assert "PR-AUC is computed from 1000-bin score histograms" in md
    ev = _script(ROOT / "scripts" / "eval_livedead.py", "_s33_eval_livedead")
    assert ev._how(card).startswith("pooled over 24 held-out simulated")
    assert ev.PR_AUC_NOTE in md
