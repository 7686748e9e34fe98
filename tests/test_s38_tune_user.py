"""A user tuning with ``devolens tune``: one ``--out`` holds one study (a second one never replaces the first's
trial folders and summaries), keys each trial sets and ranges that do not fit their key are refused when the
recipe is read, ``--trials`` is the total (a note says so when nothing is added), ``--threads`` reaches every
trial, a diverged trial is told apart from a pruned one, a stopped trial keeps no checkpoint, and pruning that
drops no sample neither restarts nor lets a recipe prune every sample."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from _train_data import make_pairs, tiny_recipe
from devolens.errors import DevolensError
from devolens.train.recipe import load_recipe
from devolens.train.tuning import tune


def _recipe(**space) -> dict:
    return tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0},
                       tune={"trials": 1, "epochs": 1, "space": space or {
                           "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}})


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("s38tune") / "data", groups=2, per_group=2, size=32)


@pytest.fixture
def fake_train(monkeypatch):
    """``train`` as a trial calls it, without training: writes a marker (and the files a run writes) into the
    trial's folder, records its keyword arguments, and does what ``then`` says (return a score, or raise)."""
    import devolens.train.trainer as trainer

    calls: list[dict] = []
    then: list = [None]

    def fake(rec, data, out, **kw):
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "marker.txt").write_text(rec["name"] + " " + str(rec["optimizer"]["lr"]))
        for name in (trainer.BEST, trainer.CHECKPOINT, "checkpoint.json"):
            (out / name).write_bytes(b"x")
        calls.append({"recipe": rec, **kw})
        if then[0] is not None:
            raise then[0]
        return SimpleNamespace(best_value=0.5, start_value=None, start_note=None)

    monkeypatch.setattr(trainer, "train", fake)
    return SimpleNamespace(calls=calls, then=then)


def _files(*folders: Path) -> dict[str, bytes]:
    """The files in ``folders`` but the study database (where the refused study was made and deleted)."""
    return {p.name: p.read_bytes() for f in folders for p in f.iterdir() if p.is_file() and p.name != "study.db"}


def test_a_second_study_in_the_same_out_is_refused_and_the_first_kept(data, tmp_path, fake_train):
    import optuna

    out = tmp_path / "t1"
    tune(_recipe(), data, out)
    trial = out / "trials" / "trial_0000"
    kept = _files(out, trial)
    with pytest.raises(DevolensError, match=r"--out holds study 'test' \(its best.json\)") as err:  # as advised
        tune(_recipe(), data, out, study_name="narrow")
    # a recipe only renamed names another study: the one this folder holds is named to go on with
    assert str(err.value).endswith("give another --out for study 'narrow', or --study 'test' to go on with the study "
                                   "this folder holds")
    (out / "best.json").unlink()  # its trial folders tell so too (a study with no completed trial has no best.json)
    del kept["best.json"]
    with pytest.raises(DevolensError, match=r"--out holds trial folders \(trials/trial_0000\) of study 'test' \(the "
                                            r"other study in its study.db\)") as err:
        tune(_recipe(), data, out, study_name="narrow")
    assert "or --study 'test' to go on with the study this folder holds" in str(err.value)
    assert len(fake_train.calls) == 1  # no trial of 'narrow' ran
    assert _files(out, trial) == kept
    # no empty study 'narrow' is left in the first study's database
    assert optuna.get_all_study_names(f"sqlite:///{out / 'study.db'}") == ["test"]
    tune(_recipe(), data, out, trials=2)  # the first study goes on in its folder
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["trial_0000", "trial_0001"]


def test_other_recipe_or_data_advise_another_out_not_another_study_alone():
    from devolens.train import tuning

    study = SimpleNamespace(user_attrs={tuning.RECIPE_ATTR: json.dumps(load_recipe(_recipe())),
                                        tuning.DATA_ATTR: json.dumps({"path": "/a", "samples": 3, "fingerprint": "x"})})
    other = load_recipe(_recipe(**{"optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}}))
    with pytest.raises(DevolensError) as err:
        tuning._same_recipe(study, other, "test", "sqlite:///s.db")
    assert "give another --out for this recipe (and, with --storage, another --study)" in str(err.value)
    with pytest.raises(DevolensError) as err:
        tuning._same_data(study, SimpleNamespace(split=[1, 2, 3], fingerprint="y"), Path("b"), "test", "s")
    assert "give another --out for these data (and, with --storage, another --study)" in str(err.value)


def test_trials_is_the_total_a_note_says_so_and_threads_reach_each_trial(data, tmp_path, fake_train):
    said: list[str] = []
    tune(_recipe(), data, tmp_path / "t", threads=3)
    assert [c["threads"] for c in fake_train.calls] == [3]  # over the recipe's train.threads: 1
    res = tune(_recipe(), data, tmp_path / "t", info=said.append)  # the same command again: nothing added
    assert res.n_new == 0
    assert any("holds 1 finished trial already" in s and "give --trials M > 1" in s for s in said), said
    from devolens.cli.train import tune_cmd

    assert "a larger --trials" in tune_cmd.__doc__ and "run again with the same recipe and data to add" not in \
        tune_cmd.__doc__


def test_a_diverged_trial_is_told_apart_and_no_best_is_said(data, tmp_path, fake_train):
    fake_train.then[0] = DevolensError("training diverged in epoch 1 (loss nan): lower optimizer.lr")
    said: list[str] = []
    lines: list[str] = []
    res = tune(_recipe(), data, tmp_path / "t", info=said.append, trial_log=lines.append)
    assert res.best_recipe is None
    table = pd.read_csv(tmp_path / "t" / "trials.csv")
    assert table["state"].tolist() == ["PRUNED"] and table["stopped"].tolist() == ["diverged"]
    assert lines[0].startswith("trial 0 (1/1): diverged after 0 epochs")
    assert any(s.startswith("note: no trial completed (1 stopped, 1 because training diverged): no best recipe "
                            "written") for s in said), said
    # every stopped trial drops its checkpoint pair, keeps its best weights
    trial = tmp_path / "t" / "trials" / "trial_0000"
    assert (trial / "best.safetensors").exists() and not (trial / "checkpoint.safetensors").exists()


def test_an_interrupted_trial_keeps_no_checkpoint(data, tmp_path, fake_train):
    out = tmp_path / "t"
    out.mkdir()  # (a folder this call did not make stays after an interruption)
    fake_train.then[0] = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        tune(_recipe(), data, out)
    trial = out / "trials" / "trial_0000"
    assert (trial / "best.safetensors").exists() and (trial / "marker.txt").exists()
    assert not (trial / "checkpoint.safetensors").exists() and not (trial / "checkpoint.json").exists()


@pytest.mark.parametrize("space, message", [
    ({"train.epochs": {"type": "int", "low": 1, "high": 3}}, "each trial sets train.epochs itself; use tune.epochs"),
    ({"train.monitor": {"type": "categorical", "choices": ["val_dice", "val_f1"]}}, "use tune.metric"),
    ({"train.monitor_mode": {"type": "categorical", "choices": ["min"]}}, "use tune.direction"),
    ({"train.batch_size": {"type": "float", "low": 2, "high": 8}},
     "tune.space.train.batch_size.type: train.batch_size takes whole numbers: use type int, not a float range"),
    ({"scheduler.name": {"type": "float", "low": 0, "high": 1}},
     "tune.space.scheduler.name.type: scheduler.name takes text (none, plateau, cosine_restarts, cosine_kicks): use "
     "type categorical with choices"),
    ({"train.batch_size": {"type": "int", "low": 2.5, "high": 8}}, "tune.space.train.batch_size.low: type int needs "
     "a whole number"),
    ({"optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "step": 1e-4}},
     "tune.space.optimizer.lr: step and log: true do not combine"),
    ({"train.batch_size": {"type": "int", "low": 2, "high": 8, "step": 0}}, "tune.space.train.batch_size.step: must "
     "be > 0, got 0"),
    ({"augment.strength": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.3}},
     "tune.space.augment.strength: step 0.3 does not divide the range 0.0 to 1.0: make high 0.9 or 1.2"),
    ({"train.batch_size": {"type": "int", "low": 2, "high": 9, "step": 2}}, "make high 8 or 10"),
    ({"augment.strength": {"type": "categorical", "choices": [0.5], "low": 0}}, "low not used by type categorical"),
])
def test_a_space_entry_that_cannot_be_tried_is_refused_when_read(space, message):
    with pytest.raises(DevolensError) as err:
        load_recipe(_recipe(**space))
    assert message in str(err.value)


def test_steps_that_divide_the_range_draw_without_warnings():
    import warnings

    import optuna

    from devolens.train.tuning import suggest

    rec = load_recipe(_recipe(**{"augment.strength": {"type": "float", "low": 0.1, "high": 0.7, "step": 0.3},
                                 "train.batch_size": {"type": "int", "low": 2, "high": 8, "step": 3}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        got = suggest(study.ask(), rec["tune"]["space"])
    assert any(got["augment.strength"] == pytest.approx(v) for v in (0.1, 0.4, 0.7))
    assert got["train.batch_size"] in (2, 5, 8)


def test_a_recipe_may_not_prune_every_sample():
    with pytest.raises(DevolensError, match="train.prune_top: 100.0 % would drop every training sample"):
        load_recipe(tiny_recipe(train={"prune_top": 100}))
    load_recipe(tiny_recipe(train={"prune_top": 99.5}))


def test_pruning_that_drops_no_sample_goes_on_without_restarting(tmp_path):
    from devolens.train.trainer import train

    pairs = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)  # 2 training samples: 5 % drops none
    rec = tiny_recipe(scheduler={"name": "cosine_restarts", "t0": 10},
                      train={"epochs": 2, "batch_size": 4, "threads": 1, "prune_after": 1, "overlay_samples": 0})
    said: list[str] = []
    res = train(rec, pairs, tmp_path / "run", prune_top=5, info=said.append)
    line = [s for s in said if "nothing was pruned" in s]
    assert line == ["note: nothing was pruned: 5 % of the 2 training samples is less than one sample; training goes "
                    "on (give --prune-top / train.prune_top 50 or more to drop one)"], said
    assert line[0].removeprefix("note: ") in res.notes
    lr = res.history["lr"].tolist()
    assert lr[1] < lr[0]  # the schedule went on (a restart starts it again at optimizer.lr)
    assert res.history["n_train"].tolist() == [2, 2] and len(res.pruned) == 0


def test_a_removed_study_db_is_said_so_and_the_refusal_leaves_no_new_file(data, tmp_path, fake_train):
    out = tmp_path / "t"
    tune(_recipe(), data, out)
    (out / "study.db").unlink()  # the trial folders, trials.csv and best.json kept
    kept = _files(out, out / "trials" / "trial_0000")
    with pytest.raises(DevolensError) as err:
        tune(_recipe(), data, out)
    assert (f": --out holds trial folders (trials/trial_0000) of a study that sqlite:///"
            f"{(out / 'study.db').resolve().as_posix()} does not have (its database removed?)") in str(err.value)
    assert "another study" not in str(err.value)
    assert not (out / "study.db").exists()  # the refused call made none
    assert _files(out, out / "trials" / "trial_0000") == kept and len(fake_train.calls) == 1


def test_a_refusal_deletes_no_study_it_did_not_make_and_survives_a_failing_delete(data, tmp_path, fake_train,
                                                                                  monkeypatch):
    import optuna

    out = tmp_path / "t"
    tune(_recipe(), data, out)
    storage = f"sqlite:///{out / 'study.db'}"
    # made beforehand (empty) on the shared storage:
    optuna.create_study(study_name="pre", storage=storage, direction="maximize")
    with pytest.raises(DevolensError, match="--out holds study 'test'"):
        tune(_recipe(), data, out, study_name="pre")
    assert sorted(optuna.get_all_study_names(storage)) == ["pre", "test"]  # 'pre' is not this call's to delete

    def locked(**kw):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(optuna, "delete_study", locked)
    with pytest.raises(DevolensError, match="--out holds study 'test'"):  # the refusal, not the failed delete
        tune(_recipe(), data, out, study_name="new")


def test_one_training_sample_cannot_be_pruned_and_a_resumed_run_keeps_the_note(tmp_path):
    from devolens.train.trainer import _nothing_pruned, train

    assert _nothing_pruned(5, 1) == ("nothing was pruned: the run has one training sample, which cannot be pruned "
                                     "(one must stay); training goes on")
    assert "100" not in _nothing_pruned(50, 1)
    pairs = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    rec = tiny_recipe(train={"epochs": 2, "batch_size": 4, "threads": 1, "prune_after": 1, "overlay_samples": 0})
    first = train(rec, pairs, tmp_path / "run", prune_top=5)
    note = [n for n in first.notes if n.startswith("nothing was pruned")]
    assert len(note) == 1
    said: list[str] = []
    res = train(rec, pairs, tmp_path / "run", resume=True, epochs=3, info=said.append)  # after the pruning epoch
    assert [n for n in res.notes if n.startswith("nothing was pruned")] == note
    run = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert [n for n in run["notes"] if n.startswith("nothing was pruned")] == note


def test_readme_says_which_stopped_trials_keep_a_folder(data, tmp_path, monkeypatch):
    import devolens.train.trainer as trainer

    def interrupt(*a, **kw):  # Ctrl-C at the end of the first epoch, before its checkpoint
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_history_row", interrupt)
    out = tmp_path / "t"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        tune(_recipe(), data, out)
    assert not (out / "trials" / "trial_0000").exists()  # no folder at all
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert "also when stopped" not in readme
    assert ("a trial that diverges or is interrupted during its first epoch keeps no folder" in readme)
