"""``devolens tune`` run by several processes at once on one shared ``--storage`` (the multi-machine setup): processes
starting together on a new SQLite database all open the one study (the ones losing the race to make its tables
open it again; none deletes the database another made), and ``--trials`` stays the study's total across them."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from _train_data import make_pairs, tiny_recipe
from devolens.errors import DevolensError

optuna = pytest.importorskip("optuna")


def _recipe() -> dict:
    return tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0},
                       tune={"trials": 1, "epochs": 1, "space": {
                           "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}})


def _worker(root: Path, idx: str, reps: int, trials: int, sleep: float, bundle, barrier, results,
            together: bool) -> None:
    """A worker process: runs ``tune`` ``reps`` times, each on a new database (``s<i>.db`` in ``root``), starting
    each call together with the other worker (``barrier``, where ``tune`` opens the study), with ``train`` faked
    (a trial sleeps ``sleep`` s; ``together``: the first trials of both workers start together too); puts
    (idx, rep, "ok", n_new), (idx, rep, "error", message) or (idx, rep, "info", line) in ``results``, and
    (idx, rep, "crash", exception) for anything else (a traceback)."""
    import devolens.train.trainer as trainer
    from devolens.train.tuning import tune

    def data(res, folder):  # the data read once (by the test), both workers at the point where tune opens the study
        barrier.wait(timeout=60)
        return bundle

    def train(rec, folder, out, **kw):
        Path(out).mkdir(parents=True, exist_ok=True)
        if together and not trained:
            barrier.wait(timeout=60)
        trained.append(out)
        time.sleep(sleep)
        return SimpleNamespace(best_value=0.5, start_value=None, start_note=None)

    trained: list = []
    trainer.build_data, trainer.train = data, train  # (this process's own modules: a fork of the test's)
    for i in range(reps):
        try:
            res = tune(_recipe(), root / "data", root / f"o{i}_{idx}", storage=f"sqlite:///{root / f's{i}.db'}",
                       study_name="par", trials=trials, info=lambda line, i=i: results.put((idx, i, "info", line)))
            results.put((idx, i, "ok", res.n_new))
        except DevolensError as exc:
            results.put((idx, i, "error", str(exc)))
        except BaseException as exc:  # noqa: BLE001 - the crash the fault gave
            results.put((idx, i, "crash", repr(exc)))


def _two_workers(root: Path, reps: int, trials: int, sleep: float, together: bool = False) -> dict[str, list]:
    """Run two :func:`_worker` processes on ``root`` at once (forks of this one: nothing to import again); each
    one's results."""
    import multiprocessing

    from devolens.train.recipe import load_recipe, resolved
    from devolens.train.trainer import build_data

    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:
        pytest.skip("needs fork")
    bundle = build_data(resolved(load_recipe(_recipe())), make_pairs(root / "data", groups=2, per_group=2, size=32))
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = {idx: ctx.Process(target=_worker,
                              args=(root, idx, reps, trials, sleep, bundle, barrier, results, together))
             for idx in ("a", "b")}
    for proc in procs.values():
        proc.start()
    got: dict[str, list] = {"a": [], "b": []}
    try:
        ends = 0
        while ends < 2 * reps:  # (read while they run: a worker ends only once what it put is read)
            idx, *item = results.get(timeout=120)
            got[idx].append(tuple(item))
            ends += item[1] != "info"
    finally:
        for proc in procs.values():
            proc.join(60)
            if proc.exitcode is None:
                proc.kill()
    return got


def test_processes_starting_together_on_a_new_shared_database_all_open_one_study(tmp_path):
    reps = 4
    got = _two_workers(tmp_path, reps=reps, trials=1, sleep=0)
    for idx, items in got.items():
        ends = [item for item in items if item[1] != "info"]
        assert ends == [(i, "ok", ends[i][2]) for i in range(reps)], f"worker {idx}: {items}"
    for i in range(reps):  # the database survived, with the one study
        storage = f"sqlite:///{tmp_path / f's{i}.db'}"
        assert (tmp_path / f"s{i}.db").is_file()
        assert optuna.get_all_study_names(storage) == ["par"]
        # (each worker's trial, or one: a worker opening the study after the other's trial finished adds none)
        assert len(optuna.load_study(study_name="par", storage=storage).trials) in (1, 2)


def test_trials_is_the_total_across_processes_sharing_a_storage(tmp_path):
    # both with --trials 4, their first trials at once: 4 trials in all, not 8
    got = _two_workers(tmp_path, reps=1, trials=4, sleep=0.5, together=True)
    study = optuna.load_study(study_name="par", storage=f"sqlite:///{tmp_path / 's0.db'}")
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)
    # each trial drew its own parameters (seeded by its number: both workers found none at their start, and drew the
    # same, trial for trial, when seeded by that)
    assert len({t.params["optimizer.lr"] for t in study.trials}) == 4, [t.params for t in study.trials]
    ran = {idx: [item[2] for item in items if item[1] == "ok"] for idx, items in got.items()}
    assert sum(n for (n,) in ran.values()) == 4, got  # (n_new: the trials each ran, 2 and 2 unless one lagged)
    for idx, items in got.items():  # each stopped short of its 4 (the other ran some), saying so
        assert [item[2] for item in items if item[1] == "info"] == [
            f"note: study 'par' holds 4 finished or running trials, the total wanted (4): this call ran {ran[idx][0]} "
            f"of them, other processes sharing sqlite:///{tmp_path / 's0.db'} the others"], got


def test_a_database_that_cannot_be_opened_is_one_line_and_only_a_file_this_call_made_goes(tmp_path, monkeypatch):
    import devolens.train.tuning as tuning

    # another process writing the database all along: tried again, then one line saying what to do (no SQL)
    tries: list[int] = []

    def locked(*args, **kwargs):
        import sqlalchemy.exc

        tries.append(1)
        raise sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version (version_num) VALUES (?)", ("v3.2.0.a",),
                                            Exception("UNIQUE constraint failed: alembic_version.version_num"))

    monkeypatch.setattr(optuna, "get_all_study_names", locked)
    monkeypatch.setattr(tuning, "OPEN_WAIT_S", 0.001, raising=False)
    data = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    theirs = tmp_path / "theirs.db"
    optuna.create_study(study_name="other", storage=f"sqlite:///{theirs}")
    for db in (theirs, tmp_path / "new.db"):
        with pytest.raises(DevolensError) as err:
            tuning.tune(_recipe(), data, tmp_path / "o", storage=f"sqlite:///{db}", study_name="par")
        text = str(err.value)
        assert "UNIQUE constraint failed: alembic_version.version_num" in text and "[SQL" not in text, text
        assert "\n" not in text and text.endswith("another process held the database (or was making it) all along; "
                                                  "run the command again once it is free"), text
    assert len(tries) > 2  # tried again (OPEN_TRIES times each)
    assert theirs.is_file() and not (tmp_path / "new.db").exists()  # the one made (empty) by the call goes


def test_workers_that_found_the_same_trials_draw_apart_and_a_study_is_reproducible():
    from devolens.train.tuning import _trial_seeded_sampler

    def draws(workers: int) -> list[float]:
        # ``workers`` processes that opened one study at once (each its sampler, seeded alike), taking trials in turn
        storage = optuna.storages.InMemoryStorage()
        study = optuna.create_study(storage=storage, study_name="par")
        samplers = [_trial_seeded_sampler(7) for _ in range(workers)]
        out = []
        for i in range(4):
            worker = optuna.load_study(study_name="par", storage=storage, sampler=samplers[i % workers])
            trial = worker.ask()
            out.append(trial.suggest_float("lr", 1e-4, 1e-1, log=True))
            worker.tell(trial, 0.5)
        del study
        return out

    together = draws(2)
    assert len(set(together)) == 4, together  # (seeded once a worker: trials 0 and 1, 2 and 3 drew the same)
    assert draws(1) == draws(1) == together  # the same draws for the same trial numbers: reproducible


def test_an_interrupted_trial_says_so_in_trials_csv(tmp_path, monkeypatch):
    import pandas as pd

    import devolens.train.trainer as trainer
    from devolens.train.tuning import tune

    calls: list[int] = []

    def train(rec, folder, out, **kw):
        Path(out).mkdir(parents=True, exist_ok=True)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return SimpleNamespace(best_value=0.5, start_value=None, start_note=None)

    monkeypatch.setattr(trainer, "train", train)
    data = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    with pytest.raises(KeyboardInterrupt):
        tune(_recipe(), data, tmp_path / "o", trials=3)
    rows = pd.read_csv(tmp_path / "o" / "trials.csv", keep_default_na=False)
    assert list(rows["state"]) == ["COMPLETE", "FAIL"]
    assert list(rows["stopped"]) == ["", "interrupted"]  # (a FAIL with no word read as a crashed trial)
