"""QA of `devolens train | tune | evaluate`: bad recipes and options refused up front, --resume only on
the run's data and with its own recipe, outputs that never replace inputs or a run's files, no
half-written run or study folders after a failure, and one-line errors (no Optuna tracebacks)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from _train_data import make_pairs, tiny_recipe
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.train.recipe import load_recipe
from devolens.train.trainer import train


def quick(**over) -> dict:
    """A recipe that trains an epoch in well under a second on 32x32 pairs (``over`` replaces sections)."""
    base = {"train": {"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0, "max_batches": 1}}
    return tiny_recipe(**{**base, **over})


def tunable(**over) -> dict:
    return quick(tune={"trials": 1, "epochs": 1, "space": {
        "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}}, **over)


def write_recipe(path: Path, rec: dict) -> Path:
    path.write_text(yaml.safe_dump(rec))
    return path


def cli(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("qa") / "data", groups=3, per_group=2, size=32)


@pytest.fixture(scope="module")
def run(pairs, tmp_path_factory) -> Path:
    """A one-epoch run on ``pairs`` (copy it before changing it)."""
    out = tmp_path_factory.mktemp("qa_run") / "run"
    train(quick(), pairs, out)
    return out


def copy_run(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


# ----------------------------------------------------------------------------- recipes
def test_a_folder_or_binary_file_as_recipe_is_refused(pairs, tmp_path, capsys):
    png = next((pairs / "images").iterdir())
    for bad, why in ((pairs, "it is a folder"), (png, "binary content")):
        with pytest.raises(DevolensError, match=f"not a recipe file .*{why}"):
            load_recipe(bad)
        for cmd in ("train", "tune"):
            code, _, err = cli([cmd, bad, "-d", pairs, "-o", tmp_path / "out"], capsys)
            assert code == 2 and err.startswith(f"error: {bad}: not a recipe file") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_empty_recipe_recipe_without_task_and_the_identity_recipe(tmp_path):
    with pytest.raises(DevolensError, match="empty recipe"):
        load_recipe(write_recipe(tmp_path / "empty.yaml", {}))
    (tmp_path / "blank.yaml").write_text("")
    with pytest.raises(DevolensError, match="empty recipe"):
        load_recipe(tmp_path / "blank.yaml")
    with pytest.raises(DevolensError, match="task: missing"):
        load_recipe({"train": {"epochs": 2}})
    root = Path(__file__).resolve().parents[1]
    with pytest.raises(DevolensError, match="benchmarks/train_identity.py"):
        load_recipe(root / "recipes" / "identity.yaml")


# ----------------------------------------------------------------------------- options
def test_numeric_options_are_checked_before_any_work(pairs, run, tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", tunable())
    for argv, message in (
        (["evaluate", run, "-d", pairs, "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        (["tune", recipe, "-d", pairs, "-o", tmp_path / "t", "--threads", "0"], "--threads must be >= 1"),
        (["tune", recipe, "-d", pairs, "-o", tmp_path / "t", "--trials", "0"], "--trials must be >= 1"),
        (["train", recipe, "-d", pairs, "-o", tmp_path / "t", "--epochs", "0"], "--epochs must be >= 1"),
        (["train", recipe, "-d", pairs, "-o", tmp_path / "t", "--prune-top", "100"], "--prune-top must be in"),
    ):
        code, _, err = cli(argv, capsys)
        assert code == 2 and message in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "t").exists()


def test_out_must_be_new_empty_or_a_run_and_apart_from_the_data(pairs, tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", quick())
    before = sorted(p.name for p in pairs.rglob("*"))
    for out, message in ((pairs, "is the data folder"), (pairs / "run", "lies inside the data folder"),
                         (pairs.parent, "holds the data")):
        code, _, err = cli(["train", recipe, "-d", pairs, "-o", out], capsys)
        assert code == 2 and message in err, err
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    code, _, err = cli(["train", recipe, "-d", pairs, "-o", other], capsys)
    assert code == 2 and "not empty and holds no devolens run" in err
    assert sorted(p.name for p in pairs.rglob("*")) == before and (other / "todo.txt").read_text() == "mine"
    # the recipe where the run writes its own recipe.yaml would be replaced
    own = tmp_path / "exp"
    own.mkdir()
    write_recipe(own / "recipe.yaml", quick())
    with pytest.raises(DevolensError, match="the recipe lies in --out"):
        train(own / "recipe.yaml", pairs, own)
    assert yaml.safe_load((own / "recipe.yaml").read_text()) == quick()


# ----------------------------------------------------------------------------- resume
def test_resume_refuses_other_data_and_takes_the_same_data_moved(pairs, run, tmp_path):
    fewer = make_pairs(tmp_path / "fewer", groups=2, per_group=2, size=32)
    with pytest.raises(DevolensError, match="other samples than the run was trained on"):
        train(quick(), fewer, copy_run(run, tmp_path / "a"), epochs=2, resume=True)
    same_names = make_pairs(tmp_path / "other", groups=3, per_group=2, size=32, seed=7)
    with pytest.raises(DevolensError, match="differ from those the run was trained on"):
        train(quick(), same_names, copy_run(run, tmp_path / "b"), epochs=2, resume=True)
    moved = Path(shutil.copytree(pairs, tmp_path / "elsewhere" / "data"))
    res = train(quick(), moved, copy_run(run, tmp_path / "c"), epochs=2, resume=True)
    assert len(res.history) == 2 and not res.complete
    assert json.loads((run / "run.json").read_text())["data"]["fingerprint"]


def test_resume_of_a_complete_run_and_with_another_recipe(pairs, run, tmp_path, capsys):
    work = copy_run(run, tmp_path)
    history = (work / "history.csv").read_text()
    other = write_recipe(tmp_path / "other.yaml", quick(optimizer={"name": "sgd", "lr": 0.1}))
    code, out, err = cli(["train", other, "-d", pairs, "-o", work, "--resume"], capsys)
    err = " ".join(err.split())
    assert code == 0 and "already complete (1 epoch); give --epochs M > 1 to train further" in err
    assert "continues with the run's own recipe" in err and "optimizer.name, optimizer.lr" in err
    assert "best" not in out and (work / "history.csv").read_text() == history
    code, _, err = cli(["train", other, "-d", pairs, "-o", work, "--resume", "--epochs", "2"], capsys)
    assert code == 0 and len(pd.read_csv(work / "history.csv")) == 2
    assert load_recipe(work / "recipe.yaml")["optimizer"]["name"] == "adam"  # the run's own recipe went on


# ----------------------------------------------------------------------------- outputs
def test_export_is_checked_before_training(pairs, run, tmp_path, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", quick())
    image = next((pairs / "images").iterdir())
    (tmp_path / "folder.safetensors").mkdir()
    (tmp_path / "notes.json").write_text("{}")
    (tmp_path / "weights.safetensors").write_bytes(b"x")
    cases = ((image, "give a .safetensors file"), (pairs / "half.safetensors", "inside the data folder"),
             (tmp_path / "folder.safetensors", "this is a folder"), (tmp_path / "run" / "best.safetensors",
                                                                     "would replace a file of the run"),
             (run / "best.safetensors", "would replace a file of the run"),
             (tmp_path / "notes.safetensors", "would replace"),
             (tmp_path / "weights.safetensors", "no earlier fp16 export"),
             (Path("/proc/devolens_qa/half.safetensors"), "cannot write output"))
    for export, message in cases:
        code, _, err = cli(["train", recipe, "-d", pairs, "-o", tmp_path / "run", "--export", export], capsys)
        assert code == 2 and message in err and not (tmp_path / "run").exists(), (export, err)
    assert (tmp_path / "notes.json").read_text() == "{}" and (tmp_path / "weights.safetensors").read_bytes() == b"x"
    # an earlier export is replaced
    half = tmp_path / "exports" / "half.safetensors"
    assert cli(["train", recipe, "-d", pairs, "-o", tmp_path / "run", "--export", half], capsys)[0] == 0
    assert cli(["train", recipe, "-d", pairs, "-o", tmp_path / "run2", "--export", half], capsys)[0] == 0
    assert json.loads(half.with_suffix(".json").read_text())["dtype"] == "float16"


def test_evaluate_json_never_replaces_inputs_or_run_files(pairs, run, tmp_path, capsys):
    work = copy_run(run, tmp_path)
    best = (work / "best.json").read_text()
    for target, message in ((work / "best.json", "would replace best.json"), (work / "run.json", "would replace"),
                            (pairs / "metrics.json", "inside the data folder"),
                            (tmp_path / "metrics.txt", "give a .json file"), (tmp_path, "is a folder")):
        code, _, err = cli(["evaluate", work, "-d", pairs, "--json", target], capsys)
        assert code == 2 and message in err, (target, err)
    assert (work / "best.json").read_text() == best
    assert cli(["evaluate", work, "-d", pairs, "--json", work / "mine.json"], capsys)[0] == 0


def test_weights_errors_are_one_line_worded_for_the_option(pairs, run, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    code, _, err = cli(["evaluate", run, "-d", pairs, "--weights", run / "best.json"], capsys)
    assert code == 2 and "--weights: this is the JSON config of a model" in err and "model.init" not in err
    state = load_file(str(run / "best.safetensors"))
    state["segmentation_head.0.weight"] = state["segmentation_head.0.weight"].repeat(3, 1, 1, 1)
    state.pop(next(k for k in state if k.startswith("decoder.")))
    state["extra.weight"] = state["segmentation_head.0.bias"].clone()
    save_file(state, str(tmp_path / "other.safetensors"))
    code, _, err = cli(["evaluate", run, "-d", pairs, "--weights", tmp_path / "other.safetensors"], capsys)
    assert code == 2 and err.count("\n") == 1 and len(err) < 600, err
    assert "--weights: the weights do not fit" in err and "1 of another shape" in err
    assert "1 missing (decoder." in err and "1 unexpected (extra.weight)" in err
    assert cli(["evaluate", run, "-d", pairs, "--weights", run, "--json", tmp_path / "e.json"], capsys)[0] == 0


# ----------------------------------------------------------------------------- failures leave nothing
def test_a_failed_run_leaves_no_half_written_folder(pairs, tmp_path):
    import tifffile

    bad = Path(shutil.copytree(pairs, tmp_path / "bad"))
    mask = sorted((bad / "masks").iterdir())[0]
    tifffile.imwrite(mask, np.zeros((20, 18), np.uint16))
    rec = quick(data={"target": "semantic", "val_fraction": 0.34}, train={"epochs": 1, "batch_size": 8})
    with pytest.raises(DevolensError, match=f"differ in size .*{mask.name}"):
        train(rec, bad, tmp_path / "deep" / "run")
    assert not (tmp_path / "deep").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    with pytest.raises(DevolensError, match="differ in size"):
        train(rec, bad, kept)
    assert kept.is_dir() and not any(kept.iterdir())  # a folder that was there stays, empty as it was

    def interrupt(epoch, step, loss):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(quick(), pairs, tmp_path / "ctrl_c", step_callback=interrupt)
    assert not (tmp_path / "ctrl_c").exists()

    def stop(epoch, row):  # after the first checkpoint: the run is kept, to resume
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(quick(train={"epochs": 2, "batch_size": 4, "max_batches": 1}), pairs, tmp_path / "later",
              epoch_callback=stop)
    assert (tmp_path / "later" / "checkpoint.safetensors").exists()


@pytest.mark.parametrize("lazy", [False, True])
def test_divergence_is_an_error_not_a_crash_in_the_metrics(pairs, tmp_path, monkeypatch, lazy):
    # lazy: the GPU's way, losses read back every SYNC_EVERY steps and at the epoch's end (here on the CPU)
    monkeypatch.setattr("devolens.train.trainer._lazy_sync", lambda device: lazy)
    with pytest.raises(DevolensError, match="diverged"):
        train(quick(optimizer={"name": "sgd", "lr": 1e12}), pairs, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- tune
def test_tune_leaves_nothing_after_bad_storage_or_data(pairs, tmp_path, capsys):
    from devolens.train.tuning import tune

    with pytest.raises(DevolensError, match="cannot open study"):
        tune(tunable(), pairs, tmp_path / "t1", storage="nosuchdb://x")
    assert not (tmp_path / "t1").exists()
    (tmp_path / "empty").mkdir()
    recipe = write_recipe(tmp_path / "r.yaml", tunable())
    code, _, err = cli(["tune", recipe, "-d", tmp_path / "empty", "-o", tmp_path / "t2"], capsys)
    assert code == 2 and err.startswith("error:") and err.count("\n") == 1 and "Trial" not in err
    assert not (tmp_path / "t2").exists()


def test_tune_failures_and_ctrl_c_are_one_line(pairs, tmp_path, capsys, monkeypatch):
    import tifffile

    import devolens.train.trainer as trainer

    bad = Path(shutil.copytree(pairs, tmp_path / "bad"))
    tifffile.imwrite(sorted((bad / "masks").iterdir())[0], np.zeros((20, 18), np.uint16))
    rec = tunable(train={"epochs": 1, "batch_size": 8, "threads": 1, "overlay_samples": 0})
    recipe = write_recipe(tmp_path / "r.yaml", rec)
    code, _, err = cli(["tune", recipe, "-d", bad, "-o", tmp_path / "t"], capsys)
    assert code == 2 and err.count("\n") == 1 and "differ in size" in err and "Traceback" not in err, err
    assert not (tmp_path / "t").exists()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train", interrupted)
    code, _, err = cli(["tune", recipe, "-d", pairs, "-o", tmp_path / "t"], capsys)
    assert code == 130 and err.strip() == "error: interrupted", err


def test_tune_refuses_to_resume_a_study_of_another_recipe(pairs, tmp_path):
    from devolens.train.tuning import tune

    out = tmp_path / "t"
    tune(tunable(), pairs, out, trials=1)
    with pytest.raises(DevolensError, match="tunes another recipe .*optimizer.name"):
        tune(tunable(optimizer={"name": "sgd", "lr": 0.003}), pairs, out, trials=2)
    more = tunable()
    more["tune"]["trials"] = 2  # more trials of the same recipe: the study goes on
    res = tune(more, pairs, out)
    assert res.n_new == 1 and len(res.trials) == 2
    assert load_recipe(out / "best_recipe.yaml")["optimizer"]["name"] == "adam"


def test_a_split_far_from_val_fraction_is_noted(tmp_path):
    """Whole groups go to one side: with 2 groups, val_fraction 0.2 gives 50 % validation. Say so."""
    data = make_pairs(tmp_path / "d2", groups=2, per_group=3, size=32)
    said: list[str] = []
    rec = quick(data={"target": "semantic", "channels": 1, "val_fraction": 0.2})
    train(rec, data, tmp_path / "run2", info=said.append)
    assert any("50 % of the samples validate, not the 20 %" in s for s in said)
    said.clear()
    data = make_pairs(tmp_path / "d5", groups=5, per_group=2, size=32)
    train(rec, data, tmp_path / "run5", info=said.append)  # one group of five: 20 % as asked
    assert not any("of the samples validate" in s for s in said)
