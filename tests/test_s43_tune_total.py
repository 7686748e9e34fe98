"""Session 43: ``--trials`` is the study's total across workers sharing a ``--storage`` (as the README says), also
for each call's first trial: that one always ran, so two workers given ``--trials 1`` made 2 trials. Now a call
begins no trial once the study's finished and running trials make the total (trials running in another worker's
``--out`` count, also when they were running before the call began), and of two trials begun at the same moment
for the last place, the later-numbered gives way before it trains (a failed trial left out of ``trials.csv``).
Workers are threads sharing an SQLite file in tmp_path; ``train`` is faked (no real training)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from _train_data import make_pairs, tiny_recipe

optuna = pytest.importorskip("optuna")


def _recipe() -> dict:
    return tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0},
                       tune={"trials": 1, "epochs": 1, "space": {
                           "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}})


@pytest.fixture()
def data(tmp_path, monkeypatch):
    """The data folder, read once (both workers get the same bundle)."""
    import devolens.train.trainer as trainer
    from devolens.train.recipe import load_recipe, resolved

    folder = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    bundle = trainer.build_data(resolved(load_recipe(_recipe())), folder)
    monkeypatch.setattr(trainer, "build_data", lambda res, where: bundle)
    return folder


def _fake_train(monkeypatch, during=None) -> list:
    """``train`` faked: makes the trial's folder, calls ``during(out)`` (if given), scores 0.5; the folders trained."""
    import devolens.train.trainer as trainer

    trained: list = []

    def train(rec, folder, out, **kw):
        Path(out).mkdir(parents=True, exist_ok=True)
        trained.append(Path(out))
        if during is not None:
            during(Path(out))
        return SimpleNamespace(best_value=0.5, start_value=None, start_note=None)

    monkeypatch.setattr(trainer, "train", train)
    return trained


def _run(results: dict, key: str, *args, **kwargs) -> None:
    """:func:`tune` in a thread: its result (or exception) and its ``info`` lines in ``results[key]``."""
    from devolens.train.tuning import tune

    lines: list[str] = []
    try:
        results[key] = (tune(*args, info=lines.append, **kwargs), lines)
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        results[key] = (exc, lines)


def _threads(targets: dict) -> None:
    threads = [threading.Thread(target=fn, name=f"tune-{key}") for key, fn in targets.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
        assert not t.is_alive(), "a worker hung"


def test_a_worker_starting_while_another_trains_adds_none(tmp_path, data, monkeypatch):
    # --trials 1 for both; B starts while A's (only) trial trains: B begins no trial (before: its first always ran)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    a_training, b_done = threading.Event(), threading.Event()

    def during(out: Path) -> None:
        if "out_a" in out.parts:  # A's trial: trains until B has done
            a_training.set()
            assert b_done.wait(60)

    trained = _fake_train(monkeypatch, during)
    results: dict = {}

    def worker_b() -> None:
        assert a_training.wait(60)
        try:
            _run(results, "b", _recipe(), data, tmp_path / "out_b", storage=storage, study_name="par", trials=1)
        finally:
            b_done.set()

    _threads({"a": lambda: _run(results, "a", _recipe(), data, tmp_path / "out_a", storage=storage,
                                study_name="par", trials=1),
              "b": worker_b})
    (res_a, _), (res_b, lines_b) = results["a"], results["b"]
    assert not isinstance(res_a, BaseException) and not isinstance(res_b, BaseException), results
    assert (res_a.n_new, res_b.n_new) == (1, 0)
    assert lines_b == [f"note: study 'par' holds 1 finished or running trials, the total wanted (1): this call ran 0 "
                       f"of them, other processes sharing {storage} the others",
                       f"note: no trial has finished yet: no best recipe written in {tmp_path / 'out_b'}; run the same "
                       "command again once the other processes' trials have finished to write it"]
    study = optuna.load_study(study_name="par", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] and len(trained) == 1
    assert not (tmp_path / "out_b" / "trials").exists()


def test_two_workers_beginning_the_last_trial_at_once_make_one(tmp_path, data, monkeypatch):
    # both open the study, then both begin a trial before either checks: trial 1 gives way to trial 0
    import devolens.train.tuning as tuning

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    trained = _fake_train(monkeypatch)
    opened, asked = threading.Barrier(2, timeout=60), threading.Barrier(2, timeout=60)
    optimize = optuna.study.Study.optimize

    def optimize_together(self, *args, **kwargs):  # (both counted the study's running trials: none yet)
        opened.wait()
        return optimize(self, *args, **kwargs)

    real = tuning._trial_seeded_sampler

    def sampler(seed):
        made = real(seed)
        before = made.before_trial

        def before_trial(study, trial):  # (in study.ask, once the trial is made: both made before either checks)
            if trial.number < 2:
                asked.wait()
            before(study, trial)

        made.before_trial = before_trial
        return made

    monkeypatch.setattr(optuna.study.Study, "optimize", optimize_together)
    monkeypatch.setattr(tuning, "_trial_seeded_sampler", sampler)
    results: dict = {}
    _threads({key: (lambda key=key: _run(results, key, _recipe(), data, tmp_path / f"out_{key}", storage=storage,
                                         study_name="par", trials=1)) for key in ("a", "b")})
    got = {key: value[0] for key, value in results.items()}
    assert not any(isinstance(r, BaseException) for r in got.values()), results
    assert sorted(r.n_new for r in got.values()) == [0, 1] and len(trained) == 1
    study = optuna.load_study(study_name="par", storage=storage)
    states = {t.number: (t.state.name, t.user_attrs.get("stopped")) for t in study.trials}
    assert states == {0: ("COMPLETE", None), 1: ("FAIL", "surplus")}, states
    assert study.trials[1].params == {}  # (gave way before drawing parameters)
    gave_way = next(key for key, r in got.items() if r.n_new == 0)
    assert "this call ran 0 of them" in results[gave_way][1][0], results[gave_way][1]
    for key in ("a", "b"):  # trials.csv: the trial, not the one that gave way
        csv = (tmp_path / f"out_{key}" / "trials.csv").read_text().splitlines()
        assert len(csv) == 2 and csv[1].startswith("0,") and "surplus" not in csv[1], csv


def test_a_trial_another_folder_runs_counts_and_one_this_folder_left_does_not(tmp_path, data, monkeypatch):
    from devolens.train.tuning import tune

    _fake_train(monkeypatch)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = tune(_recipe(), data, tmp_path / "out_a", storage=storage, study_name="par", trials=1)
    assert first.n_new == 1
    study = optuna.load_study(study_name="par", storage=storage)
    # another worker's trial, running in its own --out: counts toward --trials 2 (this call adds none)
    other = study.ask()
    other.set_user_attr("run_dir", str(tmp_path / "out_b" / "trials" / f"trial_{other.number:04d}"))
    lines: list[str] = []
    res = tune(_recipe(), data, tmp_path / "out_a", storage=storage, study_name="par", trials=2, info=lines.append)
    assert res.n_new == 0 and any("holds 2 finished or running trials" in line for line in lines), lines
    study.tell(other, 0.4)
    # a trial left running in this --out (its call killed mid-trial) is no worker's: it does not count
    left = study.ask()
    left.set_user_attr("run_dir", str((tmp_path / "out_a" / "trials" / f"trial_{left.number:04d}").absolute()))
    res = tune(_recipe(), data, tmp_path / "out_a", storage=storage, study_name="par", trials=3)
    assert res.n_new == 1
    assert sum(t.state.name == "COMPLETE" for t in optuna.load_study(study_name="par", storage=storage).trials) == 3
