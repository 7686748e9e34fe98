"""Session 46: a reviewer's walk through training their own nuclei model.

``evaluate --postprocess`` overrides the run's post-processing key by key; ``models export`` of a run stopped
early keeps the "no epoch beat the starting weights" note; an image given as its own mask, a mask resized with
bilinear interpolation and a 3-plane Z-stack among training images are refused in one line; ``tune`` says a tie
with the starting weights, its pruner weighs the running best and never prunes after the last epoch; and the
small wording items (the data a folder without pairs lacks, one pruned sample, evaluate's empty masks, an
evaluation replacing one of other data, a validation set of empty masks)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from _train_data import disc_frame, make_pairs, tiny_recipe, write_pairs
from devolens.errors import DevolensError

#: the run's own post-processing (not the watershed's defaults: split_seeds False, seed_threshold 0.5)
RUN_PP = {"threshold": 0.6, "seed_threshold": 0.7, "split_seeds": True}


@pytest.fixture(scope="module")
def pp_run(tmp_path_factory):
    """A one-epoch boundary run whose recipe has its own validate.postprocess: (run, data)."""
    from devolens.train.trainer import train

    root = tmp_path_factory.mktemp("s46")
    data = make_pairs(root / "A", groups=2, per_group=2, size=32)
    rec = tiny_recipe(name="tiny_nuclei", data={"target": "boundary", "channels": 1, "val_fraction": 0.34},
                      loss={"name": "ce_dice"}, validate={"instances": "watershed", "postprocess": dict(RUN_PP)},
                      train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1})
    train(rec, data, root / "run", device="cpu")
    return root / "run", data


# ---------------------------------------------------------------- 1. --postprocess overrides key by key
def test_postprocess_keys_override_the_runs_one_by_one(pp_run, tmp_path, capsys):
    from devolens.cli import main
    from devolens.train.evaluate import evaluate_run

    run, data = pp_run
    res = evaluate_run(run, data, validate={"postprocess": {"threshold": 0.4}})
    assert res["validate"]["postprocess"] == {**RUN_PP, "threshold": 0.4}  # split_seeds stays the run's
    assert res["postprocess_from"] == "run recipe with --postprocess"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data), "--postprocess", '{"threshold": 0.4}',
                 "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    # the settings used, all of them (the defaults of those the run leaves out too)
    assert '"seed_threshold": 0.7' in out and '"split_seeds": true' in out and '"min_distance": 3.0' in out
    assert '"threshold": 0.4' in out
    assert json.loads((tmp_path / "e.json").read_text())["validate"]["postprocess"]["split_seeds"] is True


# ---------------------------------------------------------------- 2. export: the note of a run stopped early
def test_export_decides_the_not_beaten_note_from_the_run():
    from devolens.models.export import _run_start

    # a run stopped by Ctrl-C (or a pruned trial): run.json's start has no not_beaten
    record = {"mode": "max", "monitor": "val_f1", "best_epoch": 0, "best_value": 0.88,
              "start": {"init": "zoo:nuclei", "monitor": "val_f1", "value": 0.8947}}
    got = _run_start(record, {"epoch": 0, "value": 0.88})
    assert got["note"].startswith("no epoch beat the starting weights (zoo:nuclei: val_f1 0.8947")
    assert "no epoch beat" in _run_start(record)["note"]  # (from run.json's best alone)
    assert "note" not in _run_start(record, {"epoch": 1, "value": 0.91})  # beaten
    assert "note" not in _run_start(record, {"epoch": 1, "value": 0.8947})  # a tie is no loss
    # a resumed run stopped after an epoch that beat the start: the earlier verdict in run.json no longer holds
    stale = {**record, "start": {**record["start"], "not_beaten": "no epoch beat the starting weights (...)"}}
    assert "note" not in _run_start(stale, {"epoch": 2, "value": 0.93})


# ---------------------------------------------------------------- 3. an image given as its mask
def test_an_image_named_as_its_mask_is_refused(tmp_path):
    import tifffile

    from devolens.data.datasets import read_mask

    rng = np.random.default_rng(0)
    img = (rng.normal(600, 150, (96, 96)).clip(100, 4000)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "img_002_masks.tif", img)
    with pytest.raises(DevolensError, match=r"no background \(0\) pixel.*an image rather than its mask") as err:
        read_mask(tmp_path / "img_002_masks.tif")
    assert "img_002_masks.tif" in str(err.value) and "\n" not in str(err.value)
    # a mask of cells that tile the whole field (no 0, each label with an inside) is a mask
    tiles = np.repeat(np.repeat(np.arange(1, 10, dtype=np.uint16).reshape(3, 3), 32, 0), 32, 1)
    tifffile.imwrite(tmp_path / "tiled_masks.tif", tiles)
    assert read_mask(tmp_path / "tiled_masks.tif").max() == 9


# ---------------------------------------------------------------- 4. a mask resized with bilinear interpolation
def _discs(n: int = 14, size: int = 96, seed: int = 3) -> np.ndarray:
    return disc_frame(np.random.default_rng(seed), size, n=n, radius=(5, 8))[1]


def test_a_bilinear_resized_mask_is_refused_and_nearest_is_not(tmp_path):
    import cv2
    import tifffile

    from devolens.data.datasets import read_mask, split_labels

    lab = _discs().astype(np.uint8)
    assert lab.max() >= 10
    linear = cv2.resize(lab, (192, 192), interpolation=cv2.INTER_LINEAR)
    nearest = cv2.resize(lab, (192, 192), interpolation=cv2.INTER_NEAREST)
    for name, arr in (("orig", lab), ("linear", linear), ("nearest", nearest)):
        tifffile.imwrite(tmp_path / f"{name}_masks.tif", arr)
    with pytest.raises(DevolensError, match=r"labels in this mask lie in several pieces.*nearest-neighbour"):
        read_mask(tmp_path / "linear_masks.tif")
    assert read_mask(tmp_path / "orig_masks.tif").max() == lab.max()
    assert read_mask(tmp_path / "nearest_masks.tif").max() == lab.max()
    assert split_labels(lab) == (0, int(lab.max()))


# ---------------------------------------------------------------- 5. a Z-stack among training images
def test_a_z_stack_is_named_and_to_be_projected(tmp_path):
    import tifffile

    from devolens.data.datasets import read_image, select_channel

    im = (np.random.default_rng(0).random((48, 48)) * 200).astype(np.uint16)
    path = tmp_path / "img_002.tif"
    tifffile.imwrite(path, np.stack([im, im, im]), imagej=True, metadata={"axes": "ZYX"})
    for channel in (None, 1):  # (data.channel, which the old message suggested, picks no z-plane either)
        with pytest.raises(DevolensError, match=r"a Z-stack of 3 planes \(TIFF axes ZYX\).*Z Project") as err:
            select_channel(read_image(path), channel, path)
        assert "img_002.tif" in str(err.value)
    # an ImageJ hyperstack of channels still takes data.channel
    tifffile.imwrite(tmp_path / "two.tif", np.stack([im, im]), imagej=True, metadata={"axes": "CYX"})
    assert select_channel(read_image(tmp_path / "two.tif"), 1, tmp_path / "two.tif").shape == (48, 48)


# ---------------------------------------------------------------- 6. tune: a tie with the starting weights
def _study(starts: list, values: list):
    import optuna
    from optuna.distributions import FloatDistribution

    study = optuna.create_study(direction="maximize")
    for start, value in zip(starts, values):
        study.add_trial(optuna.trial.create_trial(
            params={"optimizer.lr": 1e-3}, distributions={"optimizer.lr": FloatDistribution(1e-4, 1e-2)},
            value=value, user_attrs={"start": start}, intermediate_values={0: value}))
    return study


def test_tune_says_a_tie_with_the_starting_weights(tmp_path):
    pytest.importorskip("optuna")
    from devolens.train.tuning import TIED, _start_note, _summary

    tied = {"init": "zoo:nuclei", "value": 0.9302, "not_beaten": False}
    short = {**tied, "not_beaten": True}
    study = _study([tied, short], [0.9302, 0.9])
    start, line = _start_note(study, study.best_trial, "val_f1")
    assert line.startswith(TIED + " (zoo:nuclei: val_f1 0.9302") and "of 2 finished" in line
    _summary(study, tiny_recipe(), tmp_path, "s", "mem", "val_f1", "maximize")
    assert "not_beaten" not in json.loads((tmp_path / "best.json").read_text())["start"]  # a tie is no loss
    study = _study([tied, {**tied, "value": 0.5}], [0.9302, 0.8])  # trial 1 beat its start: nothing to say
    assert _start_note(study, study.best_trial, "val_f1")[1] is None


# ---------------------------------------------------------------- 7. tune: the pruner and the trial's value
def test_the_pruner_weighs_the_best_so_far_and_spares_the_last_epoch(tmp_path, monkeypatch):
    optuna = pytest.importorskip("optuna")
    import pandas as pd

    import devolens.train.trainer as trainer
    from devolens.train.tuning import tune

    class At(optuna.pruners.BasePruner):  # prunes at the given epochs (0-based), whatever the scores
        def __init__(self, steps):
            self.steps = steps

        def prune(self, study, trial):
            return trial.last_step in self.steps

    scores = [0.8, 0.3, 0.2]

    def train(rec, folder, out, epoch_callback=None, **kw):
        Path(out).mkdir(parents=True, exist_ok=True)
        for epoch, v in enumerate(scores[:int(rec["train"]["epochs"])]):
            epoch_callback(epoch, {"val_f1": v})
        return SimpleNamespace(best_value=max(scores), start_value=None, start_note=None)

    data = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    monkeypatch.setattr(trainer, "train", train)
    rec = tiny_recipe(train={"epochs": 3, "batch_size": 4, "threads": 1, "overlay_samples": 0, "monitor": "val_f1"},
                      tune={"trials": 1, "epochs": 3, "metric": "val_f1", "space": {
                          "optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}})
    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **kw: At({1}))
    tune(rec, data, tmp_path / "t1")
    row = pd.read_csv(tmp_path / "t1" / "trials.csv").iloc[0]
    assert row["state"] == "PRUNED" and row["value"] == pytest.approx(0.8)  # the best so far, not 0.3
    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda **kw: At({2}))  # the last epoch: trained already
    tune(rec, data, tmp_path / "t2")
    row = pd.read_csv(tmp_path / "t2" / "trials.csv").iloc[0]
    assert row["state"] == "COMPLETE" and row["value"] == pytest.approx(0.8)


# ---------------------------------------------------------------- 9. wording
def test_a_folder_without_pairs_lacks_labelled_data_not_training_data(tmp_path):
    from devolens.data.datasets import index_dataset

    (tmp_path / "stuff").mkdir()
    with pytest.raises(DevolensError, match="no labelled data") as err:
        index_dataset(tmp_path / "stuff")
    assert "training" not in str(err.value)


def test_one_pruned_sample_is_one(capsys, monkeypatch):
    import pandas as pd

    import devolens.cli.train as cli_train

    monkeypatch.setattr(cli_train, "_how_to_use", lambda run: None)
    res = SimpleNamespace(complete=False, history=pd.DataFrame({"train_loss": [0.5], "val_loss": [0.3]}),
                          best_epoch=0, best_value=0.5, monitor="val_f1", run_dir=Path("run"), start_note=None,
                          pruned=pd.DataFrame({"sample": ["a"]}), device="cpu", start_value=None)
    cli_train._summary(res, None)
    assert "pruned 1 sample ->" in capsys.readouterr().out


def test_empty_masks_notes_for_evaluate_and_an_empty_validation_set(tmp_path):
    import tifffile

    from devolens.data.datasets import index_dataset
    from devolens.train.evaluate import data_notes
    from devolens.train.recipe import load_recipe, resolved
    from devolens.train.trainer import build_data

    rng = np.random.default_rng(0)
    full = [(f"train/emb0_t{t:03d}", *disc_frame(rng, 32)) for t in range(3)]
    empty = [(f"val/emb1_t{t:03d}", disc_frame(rng, 32)[0], np.zeros((32, 32), np.uint16)) for t in range(2)]
    for sub in ("images/train", "images/val", "masks/train", "masks/val"):
        (tmp_path / "d" / sub).mkdir(parents=True)
    data = write_pairs(tmp_path / "d", full + empty)
    said = " ".join(data_notes(index_dataset(write_pairs(tmp_path / "e", [(n[4:], i, m) for n, i, m in empty]))))
    assert "no nucleus to find in them" in said and "learns" not in said
    rec = resolved(load_recipe(tiny_recipe(data={"target": "semantic", "channels": 1, "split_by": "folder"})))
    notes = " ".join(build_data(rec, data).notes)
    assert "the validation set's 2 masks hold no nucleus (all 0, e.g. emb1_t000_labels.tif)" in notes
    tifffile.imwrite(tmp_path / "d" / "masks" / "val" / "emb1_t001_labels.tif", full[0][2])
    assert "validation set's" not in " ".join(build_data(rec, data).notes)


def test_evaluate_replacing_one_of_other_data_says_so(tmp_path):
    from devolens.cli.train import _earlier_eval

    path = tmp_path / "eval_heldout.json"
    assert _earlier_eval(path, tmp_path / "a" / "heldout") is None
    path.write_text(json.dumps({"data_path": str((tmp_path / "a" / "heldout").absolute())}))
    assert _earlier_eval(path, tmp_path / "a" / "heldout") == ""
    assert _earlier_eval(path, tmp_path / "b" / "heldout") == f", of other data: {tmp_path / 'a' / 'heldout'}"


def test_train_help_lists_what_a_run_holds():
    from devolens.cli.train import _TRAIN_HELP

    assert "recipe.yaml" in _TRAIN_HELP and "samples/" in _TRAIN_HELP
