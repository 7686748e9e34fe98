"""Early stopping (train.early_stop: patience, min_delta on the metric that chooses best.safetensors; run.json's
stopped_early; --resume counts on from the checkpoint; a tuning trial that stops early completes), and `train`
refusing an --out that holds files of a run's names (a history.csv of the user's own) without an earlier run's
run.json (s48)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from _train_data import make_pairs, tiny_recipe
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.train.recipe import load_recipe
from devolens.train.trainer import train

ROOT = Path(__file__).resolve().parents[1]


def _recipe(epochs: int = 5, early=None, **train_over) -> dict:
    """Tiny runs monitored on val_loss (always finite); with a min_delta no loss can beat, every epoch after the
    first is one without improvement: a run with patience P stops after epoch P + 1 (counted from 1), whatever
    the weights learn."""
    t = {"epochs": epochs, "batch_size": 4, "threads": 1, "overlay_samples": 0, "max_batches": 1,
         "monitor": "val_loss", **train_over}
    if early is not None:
        t["early_stop"] = early
    return tiny_recipe(train=t)


NEVER = {"patience": 2, "min_delta": 1.0e9}  # stops after the 3rd epoch


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("s48es") / "data", groups=2, per_group=2, size=32)


def _cli(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# ---------------------------------------------------------------- the recipe key
def test_early_stop_defaults_off_and_fills_min_delta():
    assert load_recipe(tiny_recipe())["train"]["early_stop"] is None
    got = load_recipe(_recipe(early={"patience": 3}))["train"]["early_stop"]
    assert got == {"patience": 3, "min_delta": 0.0}
    assert load_recipe(_recipe(early={"patience": 2, "min_delta": "1e-3"}))["train"]["early_stop"] == {
        "patience": 2, "min_delta": 0.001}  # (YAML reads 1e-3, without a dot, as text)
    for path in sorted((ROOT / "recipes").glob("*.yaml")):  # the shipped recipes train as before
        if yaml.safe_load(path.read_text()).get("task") != "identity":
            assert load_recipe(path)["train"]["early_stop"] is None, path


@pytest.mark.parametrize("value, message", [
    ({"patience": 0}, "train.early_stop: patience: expected a whole number >= 1, got 0"),
    ({"patience": 2.5}, "train.early_stop: patience: expected a whole number >= 1, got 2.5"),
    ({"patience": 3, "min_delta": -0.1}, "train.early_stop: min_delta: expected a number >= 0, got -0.1"),
    ({"patience": 3, "delta": 0.1}, "train.early_stop: unknown key(s) delta (known: patience, min_delta)"),
    ({}, "train.early_stop: patience missing"),
    (5, "train.early_stop: expected a mapping such as {patience: 5, min_delta: 0.001}"),
])
def test_bad_early_stop_values_are_refused_in_one_line(value, message):
    with pytest.raises(DevolensError) as refused:
        load_recipe(_recipe(early=value))
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_the_count_follows_the_metric_direction_and_min_delta():
    from devolens.train.trainer import _early_stop_count

    # max: a gain of no more than min_delta is no improvement (its best stays the reference); min likewise
    assert _early_stop_count(0.5, None, 3, "max", 0.01) == (0, 0.5)  # the first finite value
    assert _early_stop_count(0.505, 0.5, 0, "max", 0.01) == (1, 0.5)
    assert _early_stop_count(0.52, 0.5, 1, "max", 0.01) == (0, 0.52)
    assert _early_stop_count(0.4, 0.5, 0, "min", 0.01) == (0, 0.4)
    assert _early_stop_count(0.6, 0.5, 0, "min", 0.0) == (1, 0.5)
    assert _early_stop_count(float("nan"), 0.5, 1, "min", 0.0) == (2, 0.5)


def test_docs_name_the_key():
    readme = (ROOT / "README.md").read_text()
    assert "train.early_stop" in readme and "stopped_early" in readme
    import devolens.train.recipe as R

    assert "early_stop" in R.__doc__ and "stopped_early" in R.SCHEMA["train"]["early_stop"].help


# ---------------------------------------------------------------- training
def test_train_stops_early_records_why_and_says_so(pairs, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(early=NEVER)))
    run = tmp_path / "run"
    code, out, err = _cli(["train", recipe, "-d", pairs, "-o", run, "--device", "cpu", "--no-plots"], capsys)
    assert code == 0, err
    summary = json.loads((run / "run.json").read_text())
    stopped = summary["stopped_early"]
    assert summary["epochs_done"] == 3 and stopped["epoch"] == 2 and stopped["epochs"] == 5
    assert stopped["best_epoch"] == summary["best_epoch"]
    first = __import__("pandas").read_csv(run / "history.csv")["val_loss"].iloc[0]  # (the count's reference)
    assert (f"val_loss did not improve by more than 1e+09 on {first:.4g}, its value at the last epoch that improved "
            "so, for 2 epochs in a row") in stopped["reason"]
    assert len(__import__("pandas").read_csv(run / "history.csv")) == 3
    line = [x for x in out.splitlines() if x.startswith("stopped early")]
    assert line == [f"stopped early at epoch 3 of 5, best epoch {summary['best_epoch'] + 1}: {stopped['reason']}"]
    extra = json.loads((run / "checkpoint.json").read_text())["extra"]
    assert extra["early_stop"]["wait"] == 2 and extra["early_stop"]["stopped"] == stopped
    # --resume of a run that stopped early: complete, also with more --epochs (its count is spent)
    code, out, err = _cli(["train", recipe, "-d", pairs, "-o", run, "--device", "cpu", "--resume", "--epochs", "9",
                           "--no-plots"], capsys)
    assert code == 0, err
    assert "already complete: stopped early at epoch 3 of 5" in " ".join(err.split())
    assert json.loads((run / "run.json").read_text())["epochs_done"] == 3


def test_without_early_stop_every_epoch_trains(pairs, tmp_path):
    res = train(_recipe(epochs=3), pairs, tmp_path / "run", device="cpu")
    assert len(res.history) == 3 and res.stopped_early is None
    assert "stopped_early" not in json.loads((tmp_path / "run" / "run.json").read_text())
    assert "early_stop" not in json.loads((tmp_path / "run" / "checkpoint.json").read_text())["extra"]


class _Stop(Exception):
    pass


def test_resume_counts_on_from_the_checkpoint(pairs, tmp_path):
    """Stopped after its 2nd epoch (one epoch without improvement counted), the resumed run stops after its 3rd, as
    the run uninterrupted does: a count started afresh would train a 4th."""
    run = tmp_path / "run"

    def stop_after_second(epoch: int, row: dict) -> None:
        if epoch == 1:
            raise _Stop()

    with pytest.raises(_Stop):
        train(_recipe(early=NEVER), pairs, run, device="cpu", epoch_callback=stop_after_second)
    assert json.loads((run / "checkpoint.json").read_text())["extra"]["early_stop"]["wait"] == 1
    res = train(_recipe(early=NEVER), pairs, run, device="cpu", resume=True)
    assert len(res.history) == 3 and res.stopped_early["epoch"] == 2
    assert json.loads((run / "run.json").read_text())["stopped_early"]["epoch"] == 2


def test_a_tuning_trial_that_stops_early_completes(pairs, tmp_path):
    import optuna

    from devolens.train.tuning import tune

    rec = _recipe(epochs=4, early={"patience": 1, "min_delta": 1.0e9})
    rec["tune"] = {"trials": 1, "epochs": 4, "metric": "val_loss", "direction": "minimize", "pruner": "median",
                   "space": {"optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}}
    res = tune(rec, pairs, tmp_path / "tune")
    study = optuna.load_study(study_name="test", storage=f"sqlite:///{tmp_path / 'tune' / 'study.db'}")
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and len(trial.intermediate_values) == 2
    summary = json.loads((tmp_path / "tune" / "trials" / "trial_0000" / "run.json").read_text())
    assert summary["stopped_early"]["epoch"] == 1
    assert res.best_value == pytest.approx(summary["best_value"])


# ---------------------------------------------------------------- --out holding files of a run's names
def test_train_refuses_files_of_run_names_without_a_runs_record(pairs, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(epochs=1)))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "history.csv").write_text("epoch,loss\n0,1.0\n")
    code, _, err = _cli(["train", recipe, "-d", pairs, "-o", out, "--device", "cpu", "--no-plots"], capsys)
    assert code == 2 and "Traceback" not in err
    assert "--out holds history.csv, of names a run writes, but no run.json of an earlier devolens training run" \
        in " ".join(err.split())
    assert (out / "history.csv").read_text() == "epoch,loss\n0,1.0\n"
    assert sorted(p.name for p in out.iterdir()) == ["history.csv"]
    # a run.json another tool wrote is no earlier run's: named among the files
    (out / "run.json").write_text(json.dumps({"tool": "my trainer"}))
    with pytest.raises(DevolensError, match=r"(--)?out holds history.csv, run.json, of names a run writes"):
        train(_recipe(epochs=1), pairs, out, device="cpu")
    # an earlier devolens run's files (its run.json, no checkpoint: a run stopped before it) are replaced, as before
    (out / "run.json").write_text(json.dumps({"epochs_done": 0, "monitor": "val_loss", "command": None}))
    res = train(_recipe(epochs=1), pairs, out, device="cpu")
    assert len(res.history) == 1 and "val_loss" in (out / "history.csv").read_text()


def test_no_stop_before_a_pending_pruning_and_a_restart_counts_afresh(pairs, tmp_path):
    """Patience 1: without pruning the run would stop after its 2nd epoch; the pruning after 2 warm-up epochs (with
    its restart) comes first, and the count starts again with the restarted model: it stops after the 4th."""
    rec = _recipe(epochs=6, early={"patience": 1, "min_delta": 1.0e9}, prune_top=50.0, prune_after=2)
    res = train(rec, pairs, tmp_path / "run", device="cpu")
    assert res.pruned is not None and len(res.pruned) >= 1
    assert len(res.history) == 4 and res.stopped_early["epoch"] == 3 and res.best_epoch >= 2
