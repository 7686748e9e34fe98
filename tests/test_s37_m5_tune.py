"""``devolens tune`` says what ``devolens train`` says: the notes on the data once (the first trial's), and, for a
recipe that fine-tunes (``model.init``), one line at the end when no trial beat the starting weights' score on
its validation split (also in ``best.json``'s ``start``), naming that score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from _train_data import make_pairs, tiny_recipe
from devolens.train.tuning import tune


def _space(low: float, high: float) -> dict:
    return {"trials": 2, "epochs": 1, "space": {"optimizer.lr": {"type": "float", "low": low, "high": high}}}


def test_the_data_notes_are_said_once_as_train_says_them(tmp_path):
    # an image without a mask: `train` says "1 file without a partner, not used (...)" before its first epoch
    data = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32, extra_image=True)
    rec = tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0},
                      tune=_space(1e-4, 1e-2))
    said: list[str] = []
    res = tune(rec, data, tmp_path / "t", info=said.append)
    assert len(res.trials) == 2
    unpaired = [s for s in said if "without a partner" in s]
    assert unpaired == ["note: 1 file without a partner, not used (e.g. images/lonely.png; listed in run.json)"], said
    assert sum("training and" in s and "validation samples; device" in s for s in said) == 1, said
    # no starting weights (no model.init): nothing said of them, nothing recorded
    assert res.start_note is None and not any("starting weights" in s for s in said), said
    assert "start" not in json.loads((tmp_path / "t" / "best.json").read_text())


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny trained run whose best weights are the starting weights of the fine-tunes below."""
    from devolens.train.trainer import train

    root = tmp_path_factory.mktemp("s37m5")
    pairs = make_pairs(root / "pairs", groups=3, per_group=4, size=64)
    res = train(tiny_recipe(), pairs, root / "base")
    return pairs, res


def test_a_tune_whose_trials_all_fall_short_of_the_starting_weights_says_so(base, tmp_path, capsys):
    from devolens.cli import main

    pairs, run = base
    init = str(run.run_dir / "best.safetensors")
    rec = tiny_recipe(model={**tiny_recipe()["model"], "init": init},
                      optimizer={"name": "sgd", "lr": 5.0, "weight_decay": 0.0},  # far too high: worse than the start
                      train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0},
                      tune=_space(4.0, 5.0))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(rec))
    assert main(["tune", str(recipe), "--data", str(pairs), "--out", str(tmp_path / "t")]) == 0
    got = capsys.readouterr()
    err = got.err.replace("\n", " ").replace("  ", " ")
    best = json.loads((tmp_path / "t" / "best.json").read_text())
    start = best["start"]
    # every trial scored the same starting weights on the same split: the base run's best
    assert start["init"] == init and start["monitor"] == "val_dice"
    assert start["value"] == pytest.approx(run.best_value, abs=1e-4)
    line = start["not_beaten"]
    assert line.startswith(f"no trial beat the starting weights ({init}: val_dice {start['value']:.4f} ")
    assert f"trial {best['trial']}, its best epoch's val_dice {best['value']:.4f} (of 1 scored epoch), of 2 finished " \
        "trials" in line
    assert "optimizer.lr" in line and "tune.epochs" in line
    assert f"note: {line}" in err and err.count("no trial beat") == 1
    for trial in (tmp_path / "t" / "trials").iterdir():  # as each trial's own run.json says
        assert json.loads((trial / "run.json").read_text())["start"]["not_beaten"].startswith("no epoch beat")
    # the starting weights' score is said once, before the first trial, as `train` says it
    assert err.count("note: starting weights (") == 1


def _study(tmp_path: Path, starts: list, values: list[float]):
    """An in-memory study of complete trials with these ``start`` user attributes (``...``: none recorded, a
    trial an earlier version ran, whose run folder is ``tmp_path/trial_N``)."""
    import optuna
    from optuna.distributions import FloatDistribution

    study = optuna.create_study(direction="maximize")
    for i, (start, value) in enumerate(zip(starts, values)):
        attrs = {"run_dir": str(tmp_path / f"trial_{i}")}
        if start is not ...:
            attrs["start"] = start
        study.add_trial(optuna.trial.create_trial(
            params={"optimizer.lr": 1e-3}, distributions={"optimizer.lr": FloatDistribution(1e-4, 1e-2)},
            value=value, user_attrs=attrs, intermediate_values={0: value}))
    return study


def test_the_line_needs_every_finished_trial_to_fall_short(tmp_path):
    from devolens.train.tuning import _start_note

    short = {"init": "zoo:nuclei", "value": 0.5391, "not_beaten": True}
    study = _study(tmp_path, [short, short], [0.5176, 0.5146])
    start, line = _start_note(study, study.best_trial, "val_f1")
    assert start == short
    assert line.startswith("no trial beat the starting weights (zoo:nuclei: val_f1 0.5391 on the validation set")
    assert "trial 0, its best epoch's val_f1 0.5176 (of 1 scored epoch), of 2 finished trials" in line
    assert "keep the zoo model 'nuclei'" in line
    # one trial beat its own start (another split): no line, the best trial's start still recorded
    study = _study(tmp_path, [short, {**short, "value": 0.4, "not_beaten": False}], [0.5176, 0.45])
    assert _start_note(study, study.best_trial, "val_f1") == (short, None)
    # a trial without a scored start (no model.init): nothing can be said
    study = _study(tmp_path, [short, None], [0.5176, 0.45])
    assert _start_note(study, study.best_trial, "val_f1") == (short, None)


def test_trials_an_earlier_version_ran_are_read_from_their_run_json(tmp_path):
    from devolens.train.tuning import _start_note

    for i, verdict in enumerate(["no epoch beat the starting weights (...)", None]):
        (tmp_path / f"trial_{i}").mkdir()
        start = {"init": "runs/a/best.safetensors", "monitor": "val_f1", "value": 0.6,
                 **({"not_beaten": verdict} if verdict else {})}
        (tmp_path / f"trial_{i}" / "run.json").write_text(json.dumps({"start": start}))
    study = _study(tmp_path, [..., ...], [0.55, 0.5])
    start, line = _start_note(study, study.best_trial, "val_f1")
    assert start["value"] == 0.6 and line is None  # trial 1 beat (or tied) its start
    json_1 = tmp_path / "trial_1" / "run.json"
    json_1.write_text(json.dumps({"start": {**json.loads(json_1.read_text())["start"], "not_beaten": "no epoch"}}))
    start, line = _start_note(study, study.best_trial, "val_f1")
    assert "keep the starting weights (runs/a/best.safetensors)" in line and "val_f1 0.6000" in line
