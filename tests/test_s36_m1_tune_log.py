"""``devolens tune`` without a bar (Slurm, nohup, ``DEVOLENS_PROGRESS=lines``): one line per finished trial that
carries the progress (``k/N``, time elapsed and left), the trial's value and parameters and the best so far with its
parameters; no ``progress:`` lines besides (the log said each trial twice). A ticking fake clock
(``_common._clock``) gives the times: no test depends on the wall clock."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from _train_data import make_pairs, tiny_recipe
from devolens.cli import _common, main


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("small"), groups=2, per_group=2, size=32)


def _recipe(tmp_path: Path) -> Path:
    rec = tiny_recipe(
        train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0},
        tune={"trials": 2, "epochs": 1, "space": {
            "optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}},
    )
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(rec))
    return path


@pytest.fixture
def ticking(monkeypatch):
    """The progress clock, 60 s later at each reading."""
    now = [1000.0]

    def clock() -> float:
        now[0] += 60
        return now[0]

    monkeypatch.setattr(_common, "_clock", clock)


def _tune(args, capsys) -> tuple[int, str, list[str]]:
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    return code, got.out, [line for line in got.err.splitlines() if line.strip()]


@pytest.mark.parametrize("terminal", [False, True])
def test_one_line_per_trial_carries_the_progress_and_no_progress_lines_repeat_it(
        small, tmp_path, capsys, monkeypatch, ticking, terminal):
    if terminal:  # DEVOLENS_PROGRESS=lines asks for lines on a terminal too
        monkeypatch.setenv("DEVOLENS_PROGRESS", "lines")
        monkeypatch.setattr(type(_common.console), "is_terminal", property(lambda self: True))
    else:  # auto: lines where stderr is no terminal (tests/conftest.py sets "bar")
        monkeypatch.delenv("DEVOLENS_PROGRESS", raising=False)
    code, out, err = _tune(["tune", _recipe(tmp_path), "-d", small, "-o", tmp_path / "t"], capsys)
    assert code == 0 and "best recipe ->" in out
    assert not [line for line in err if line.startswith("progress:")], err
    trials = [line for line in err if line.startswith("trial ")]
    assert len(trials) == 2, err
    first, second = trials
    # clock readings: 1060 when the command began to tune, 1120 after the first trial, 1180 after the second
    assert first.startswith("trial 0 (1/2): val_dice ") and " with {'optimizer.lr': " in first
    assert first.endswith("(best val_dice so far); 0:01:00 elapsed, ~0:01:00 left"), first
    assert second.startswith("trial 1 (2/2): val_dice ") and second.endswith("; 0:02:00 elapsed"), second
    assert "(best val_dice so far)" in second or ": trial 0 with {'optimizer.lr': " in second, second


def test_quiet_keeps_the_results_on_stdout_and_no_trial_or_progress_lines(small, tmp_path, capsys, monkeypatch,
                                                                           ticking):
    monkeypatch.delenv("DEVOLENS_PROGRESS", raising=False)
    code, out, err = _tune(["-q", "tune", _recipe(tmp_path), "-d", small, "-o", tmp_path / "t", "-n", "1"], capsys)
    assert code == 0 and err == []
    assert "1 trials (1 new)" in out and "best value " in out and "best recipe ->" in out


def test_trial_line_of_a_pruned_trial_and_of_one_behind_the_best():
    import optuna

    from devolens.train.tuning import _trial_line

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="maximize")
    dist = {"optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}
    pruned = optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, params={"optimizer.lr": 0.01},
                                       distributions=dist, intermediate_values={0: 0.1, 1: 0.2})
    study.add_trial(pruned)
    t0 = study.trials[0]
    assert _trial_line(study, t0, 1, 3, "val_dice") == "trial 0 (1/3): pruned after 2 epochs with {'optimizer.lr': 0.01}"
    study.add_trial(optuna.trial.create_trial(value=0.8, params={"optimizer.lr": 0.001}, distributions=dist))
    study.add_trial(optuna.trial.create_trial(value=0.5, params={"optimizer.lr": 0.002}, distributions=dist))
    t1, t2 = study.trials[1:]
    assert _trial_line(study, t1, 2, 3, "val_dice") == ("trial 1 (2/3): val_dice 0.8000 with {'optimizer.lr': 0.001} "
                                                       "(best val_dice so far)")
    assert _trial_line(study, t2, 3, 3, "val_dice") == ("trial 2 (3/3): val_dice 0.5000 with {'optimizer.lr': 0.002} "
                                                       "(best val_dice 0.8000: trial 1 with {'optimizer.lr': 0.001})")
