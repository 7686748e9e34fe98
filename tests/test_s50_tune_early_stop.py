"""tune.space draws the keys of train.early_stop (patience, min_delta) as recipe keys of their own; they were refused
as "not a recipe key" (train.early_stop is one key, a mapping). Each trial's line says when early stopping stopped
it."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from devolens.errors import DevolensError
from devolens.train.recipe import load_recipe, set_key


def _recipe(space: dict, early_stop="absent") -> dict:
    from _train_data import tiny_recipe

    train = {"epochs": 3, "batch_size": 4, "threads": 1, "overlay_samples": 0, "max_batches": 1,
             "monitor": "val_loss"}
    if early_stop != "absent":
        train["early_stop"] = early_stop
    rec = tiny_recipe(train=train)
    rec["tune"] = {"trials": 2, "epochs": 3, "metric": "val_loss", "direction": "minimize", "pruner": "none",
                   "space": space}
    return rec


def test_patience_drawn_over_a_recipe_without_early_stopping_stops_each_trial_early(tmp_path):
    from _train_data import make_pairs
    from devolens.train.tuning import tune

    pairs = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    space = {"train.early_stop.patience": {"type": "int", "low": 1, "high": 1},
             "train.early_stop.min_delta": {"type": "float", "low": 1.0e9, "high": 1.0e9}}  # no epoch improves
    rec = _recipe(space)
    assert load_recipe(rec)["train"]["early_stop"] is None
    lines: list[str] = []
    tune(rec, pairs, tmp_path / "tune", trial_log=lines.append)
    rows = pd.read_csv(tmp_path / "tune" / "trials.csv", keep_default_na=False)
    assert rows["state"].tolist() == ["COMPLETE", "COMPLETE"]
    assert [" (stopped early at epoch 2) with " in line for line in lines] == [True, True], lines
    assert rows["stopped_early_epoch"].tolist() == [1, 1]  # epoch 0 is the best, epoch 1 the first without gain
    best = yaml.safe_load((tmp_path / "tune" / "best_recipe.yaml").read_text())
    assert best["train"]["early_stop"] == {"patience": 1, "min_delta": 1.0e9}


def test_the_early_stop_keys_are_checked_as_the_recipe_is_read():
    with pytest.raises(DevolensError, match=r"tune.space.train.early_stop.patience.low: .*>= 1"):
        load_recipe(_recipe({"train.early_stop.patience": {"type": "int", "low": 0, "high": 4}}))
    with pytest.raises(DevolensError, match=r"train.early_stop.patience takes whole numbers"):
        load_recipe(_recipe({"train.early_stop.patience": {"type": "float", "low": 1, "high": 4}}))
    with pytest.raises(DevolensError, match=r"tune.space.train.early_stop.min_delta.low: .*>= 0"):
        load_recipe(_recipe({"train.early_stop.min_delta": {"type": "float", "low": -1, "high": 1}},
                            early_stop={"patience": 3}))
    with pytest.raises(DevolensError, match=r"train.early_stop is null.*draw train.early_stop.patience too"):
        load_recipe(_recipe({"train.early_stop.min_delta": {"type": "float", "low": 0, "high": 1}}))
    with pytest.raises(DevolensError, match=r"tune.space.train.early_stop.zz: .*is not a recipe key"):
        load_recipe(_recipe({"train.early_stop.zz": {"type": "int", "low": 1, "high": 4}}))
    # min_delta alone over a recipe that stops early: its patience kept
    rec = load_recipe(_recipe({"train.early_stop.min_delta": {"type": "float", "low": 0, "high": 1}},
                              early_stop={"patience": 3}))
    assert load_recipe(set_key(rec, "train.early_stop.min_delta", 0.5))["train"]["early_stop"] == \
        {"patience": 3, "min_delta": 0.5}
