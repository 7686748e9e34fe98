"""Optuna tuning: a two-trial study in SQLite, resumed; the best trial as a recipe."""

import pytest

from _train_data import make_pairs, tiny_recipe
from devolens.errors import DevolensError
from devolens.train.recipe import load_recipe
from devolens.train.tuning import tune


def _recipe():
    return tiny_recipe(
        train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0},
        tune={"trials": 2, "epochs": 1, "space": {
            "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
            "train.batch_size": {"type": "categorical", "choices": [4, 8]},
            "augment.strength": {"type": "float", "low": 0.0, "high": 1.0},
        }},
    )


@pytest.mark.slow
def test_two_trials_in_sqlite_then_resume(tmp_path):
    import optuna

    data = make_pairs(tmp_path / "data", groups=2, per_group=4, size=32)
    out = tmp_path / "tune"
    first = tune(_recipe(), data, out, trials=1)
    assert (out / "study.db").exists() and first.n_new == 1
    second = tune(_recipe(), data, out, trials=2)  # resumes: runs only the missing trial
    assert second.n_new == 1
    study = optuna.load_study(study_name="test", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 2
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len(study.trials[0].intermediate_values) == 1  # reported per epoch
    third = tune(_recipe(), data, out, trials=2)  # nothing left to do
    assert third.n_new == 0 and len(third.trials) == 2
    best = load_recipe(out / "best_recipe.yaml")
    assert best["optimizer"]["lr"] == pytest.approx(second.best_params["optimizer.lr"])
    assert best["train"]["batch_size"] in (4, 8)
    assert (out / "trials.csv").exists() and (out / "trials" / "trial_0001" / "history.csv").exists()
    # finished trials keep their best weights, not their training checkpoints (~37 MB each for the shipped network)
    for trial in (out / "trials").iterdir():
        assert (trial / "best.safetensors").exists()
        assert not (trial / "checkpoint.safetensors").exists() and not (trial / "checkpoint.json").exists()


def test_empty_space_and_bad_storage(tmp_path):
    data = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    with pytest.raises(DevolensError, match="tune.space"):
        tune(tiny_recipe(), data, tmp_path / "t")
    with pytest.raises(DevolensError, match="cannot open study"):
        tune(_recipe(), data, tmp_path / "t2", storage="nosuchdb://x")
