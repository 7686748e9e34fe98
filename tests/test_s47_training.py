"""The training engine's walkthrough (s47): scheduler and optimiser keys the chosen one ignores (a note in a recipe,
refused in tune.space), what pruning with a restart says, the docs of cosine_kicks' kicks, tune.metric and
scheduler.floor named in their errors, and best_recipe.yaml's header."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from _train_data import make_pairs, tiny_recipe
from devolens.errors import DevolensError
import devolens.train.recipe as R
from devolens.train.recipe import load_recipe, resolved

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("s47train") / "data", groups=2, per_group=2, size=32)


def _lr_space() -> dict:
    return {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}


# ---- 1. keys of another scheduler or optimiser
def test_spare_scheduler_and_optimizer_keys_get_a_note():
    rec = load_recipe(tiny_recipe(scheduler={"name": "cosine_kicks", "period": 2, "t0": 7},
                                  optimizer={"name": "adam", "lr": 0.003, "momentum": 0.5}))
    assert R.ignored_settings(rec) == [
        "scheduler.t0 (7) does nothing: scheduler cosine_kicks does not use it (cosine_restarts does)",
        "optimizer.momentum (0.5) does nothing: optimizer adam does not use it (sgd does)"]
    # keys at their defaults (a dumped recipe.yaml or best_recipe.yaml holds every key) and used keys: no note
    assert R.ignored_settings(load_recipe(tiny_recipe(optimizer={"name": "sgd", "momentum": 0.5}))) == []
    assert R.ignored_settings(load_recipe(tiny_recipe())) == []


def test_the_trainer_builds_each_scheduler_from_the_one_table():
    import torch

    from devolens.train.trainer import _scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    for name, keys in R.SCHEDULER_KEYS.items():
        rec = load_recipe(tiny_recipe(scheduler={"name": name}))
        assert type(_scheduler(rec, opt)).__name__  # built from exactly its keys (an extra one: a TypeError)
    assert set(R.OPTIMIZER_KEYS) == {"adam", "adamw", "sgd"}


def test_a_tune_space_key_the_chosen_scheduler_or_optimizer_ignores_is_refused():
    with pytest.raises(DevolensError, match=r"tune.space.optimizer.momentum: optimizer adam does not use momentum "
                                            r"\(sgd does\), so the trials would search a setting that does nothing"):
        load_recipe(tiny_recipe(tune={"space": {"optimizer.momentum": {"type": "float", "low": 0.5, "high": 0.9}}}))
    with pytest.raises(DevolensError, match=r"tune.space.scheduler.t0: scheduler cosine_kicks does not use t0 "
                                            r"\(cosine_restarts does\)"):
        load_recipe(tiny_recipe(scheduler={"name": "cosine_kicks"},
                                tune={"space": {"scheduler.t0": {"type": "int", "low": 1, "high": 5}}}))
    # drawn with the optimiser's name: refused only where no choice uses it, else a note
    mom = {"type": "float", "low": 0.5, "high": 0.9}
    with pytest.raises(DevolensError, match=r"optimizer adam or adamw does not use momentum"):
        load_recipe(tiny_recipe(tune={"space": {"optimizer.name": {"type": "categorical", "choices": ["adam", "adamw"]},
                                                "optimizer.momentum": mom}}))
    rec = load_recipe(tiny_recipe(tune={"space": {"optimizer.name": {"type": "categorical", "choices": ["adam", "sgd"]},
                                                  "optimizer.momentum": mom}}))
    assert R.space_notes(rec) == ["tune.space.optimizer.momentum does nothing in the trials that draw a optimizer other "
                                "than sgd"]
    assert R.space_notes(load_recipe(tiny_recipe(tune={"space": _lr_space()}))) == []


def test_train_notes_a_spare_key(pairs, tmp_path):
    from devolens.train.trainer import train

    said: list[str] = []
    rec = tiny_recipe(scheduler={"name": "cosine_kicks", "period": 2, "t0": 7},
                      train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0})
    res = train(rec, pairs, tmp_path / "run", info=said.append, device="cpu")
    line = "scheduler.t0 (7) does nothing: scheduler cosine_kicks does not use it (cosine_restarts does)"
    assert f"note: {line}" in said and line in res.notes


def test_readme_says_sgd_uses_nesterov_momentum():
    text = README.read_text(encoding="utf-8")
    assert "only `sgd` uses\n  `optimizer.momentum`, as Nesterov momentum whenever it is above 0" in text


# ---- 2. pruning with a restart says so where it happens, and at the end when it did worse
def test_pruning_says_that_training_starts_again(pairs, tmp_path):
    from devolens.train.trainer import train

    for restart, end in ((True, "the model starts again from its initial weights and learning rate, and the best so "
                                "far is reset (train.prune_restart: false keeps training on instead)"),
                         (False, "training goes on with the same weights and learning rate (train.prune_restart: "
                                 "false)")):
        said: list[str] = []
        rec = tiny_recipe(train={"epochs": 2, "batch_size": 4, "threads": 1, "prune_after": 1, "overlay_samples": 0,
                                 "prune_restart": restart})
        train(rec, pairs, tmp_path / f"run{restart}", prune_top=50, info=said.append, device="cpu")
        assert f"pruned 1 of 2 training samples (pruned.csv) after epoch 1; {end}" in said


def test_a_restart_worse_than_before_pruning_gets_a_note():
    from devolens.train.trainer import _pruned_worse

    history = [{"epoch": 0, "val_dice": 0.2}, {"epoch": 1, "val_dice": 0.39}, {"epoch": 2, "val_dice": 0.05}]
    assert _pruned_worse(history, "val_dice", "max", 2, 0.05, 2) == (
        "the best val_dice before pruning, 0.3900 at epoch 2, was better than the best after it, 0.0500 at epoch 3, "
        "which the run keeps (best.safetensors): train without --prune-top, or with train.prune_restart: false, to "
        "keep training the unpruned model")
    assert _pruned_worse(history, "val_dice", "max", 2, 0.5, 2) is None  # better after pruning
    assert _pruned_worse([{"epoch": 0, "val_loss": 0.5}], "val_loss", "min", 1, 0.4, 1) is None
    assert "0.3000 at epoch 1" in _pruned_worse([{"epoch": 0, "val_loss": 0.3}], "val_loss", "min", 1, 0.4, 1)


def test_prune_top_help_names_prune_restart():
    from typer.testing import CliRunner

    from devolens.cli import app

    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"}).output
    assert "train.prune_restart: false trains on instead" in " ".join(out.split())


# ---- 3. cosine_kicks kicks on val_loss
def test_docs_say_cosine_kicks_kicks_on_the_validation_loss():
    from devolens.train.recipe import SCHEMA

    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "kicks only after `patience` epochs at the floor without improvement of the validation loss (`val_loss`, " \
           "whatever `train.monitor` is)" in text
    assert "improvement of the validation loss, val_loss, whatever train.monitor is" in SCHEMA["scheduler"]["patience"].help


# ---- 4. errors name the key
def test_tune_metric_not_a_metric_names_tune_metric(tmp_path):
    from devolens.train.tuning import tune

    rec = tiny_recipe(tune={"trials": 1, "epochs": 1, "metric": "val_los", "space": _lr_space()})
    with pytest.raises(DevolensError, match=r"^tune.metric: 'val_los' is not a metric of this task; choose from "):
        tune(rec, tmp_path / "nodata", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_scheduler_floor_of_one_is_refused_by_the_recipe_check():
    with pytest.raises(DevolensError, match=r"scheduler.floor: must be < 1.0, got 1.0"):
        load_recipe(tiny_recipe(scheduler={"name": "cosine_kicks", "floor": 1.0}))
    load_recipe(tiny_recipe(scheduler={"name": "cosine_kicks", "floor": 0.99}))


# ---- 5. best_recipe.yaml says how it was chosen
def test_best_recipe_yaml_has_a_header_and_trains(pairs, tmp_path):
    from devolens.train.trainer import train
    from devolens.train.tuning import tune

    rec = tiny_recipe(train={"epochs": 5, "batch_size": 4, "threads": 1, "overlay_samples": 0},
                      tune={"trials": 1, "epochs": 1, "metric": "val_loss", "space": _lr_space()})
    res = tune(rec, pairs, tmp_path / "tune")
    text = res.best_recipe.read_text(encoding="utf-8")
    head = text.splitlines()[:3]
    assert head[0] == f"# The best trial of study test: trial 0, val_loss {res.best_value:.6g} (minimize, at its best " \
                      "epoch; tune.metric)."
    assert head[1] == ("# Each trial trained 1 epoch (tune.epochs); this recipe trains train.epochs = 5 and keeps the "
                       "best epoch by train.monitor val_dice:")
    assert "can give a different result" in head[2]
    best = load_recipe(res.best_recipe)
    assert best == load_recipe(yaml.safe_load(text))
    assert best["optimizer"]["lr"] == pytest.approx(res.best_params["optimizer.lr"])
    assert resolved(best)["train"]["monitor"] == "val_dice"
    run = train(res.best_recipe, pairs, tmp_path / "run", epochs=1, device="cpu")
    assert run.best_epoch == 0
