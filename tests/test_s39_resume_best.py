"""Mends of the thirty-ninth session: ``--resume`` checks the run's best model (best.safetensors + best.json) as it
starts. A run killed outright between the two renames of a new best epoch's save leaves that epoch's weights beside
the earlier best epoch's best.json, with the checkpoint an epoch behind; the resumed run trains that epoch again,
and where it did not beat the checkpoint's best value (an exact resume usually redoes it alike, but not on another
device, other threads or a GPU's nondeterministic kernels), the mixed pair outlived the run, which ended "successfully"
with a best model that every reader refuses. Now the pair is written again from the checkpoint where best.json is the
record of its weights, else removed and a new best saved at the resumed run's next validation; a finished run is left
as it was. And ``check_unit`` builds its remedy only to refuse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from _train_data import make_pairs, tiny_recipe
from devolens.errors import DevolensError
from devolens.io.together import UNIT_KEY, check_unit
from devolens.models.architectures import load_model, save_model
from devolens.train import trainer

MIXED = "are from different saves (was the run killed while saving them?)"


def _recipe() -> dict:
    return tiny_recipe(name="tiny_nuclei", train={"epochs": 2, "batch_size": 4, "threads": 1, "overlay_samples": 0})


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"), groups=2, per_group=2, size=32)


@pytest.fixture(scope="module")
def trained(pairs, tmp_path_factory):
    """A two-epoch run, with copies of its checkpoint, best pair and run.json as they were after each epoch."""
    out = tmp_path_factory.mktemp("trained") / "run"
    saved = out.parent / "saved"

    def keep(epoch, row):
        (saved / str(epoch)).mkdir(parents=True, exist_ok=True)
        for name in ("checkpoint.safetensors", "checkpoint.json", "best.safetensors", "best.json", "run.json"):
            shutil.copy2(out / name, saved / str(epoch) / name)

    trainer.train(_recipe(), pairs, out, epoch_callback=keep)
    return out, saved


def _killed_saving_best(trained, tmp_path: Path, after: int) -> tuple[Path, Path]:
    """A copy of the run as a kill left it while it saved a new best model in the epoch after epoch index ``after``:
    the checkpoint and run.json of epoch ``after``, best.json of epoch 0 (the best epoch, as the checkpoint records)
    and best.safetensors of another save (the new epoch's weights). The checkpoint's best value is set past any the
    resumed epoch can reach, standing for a resumed epoch that does not beat it."""
    out, saved = trained
    run = tmp_path / "run"
    shutil.copytree(out, run)
    for name in ("checkpoint.safetensors", "checkpoint.json", "run.json"):
        shutil.copy2(saved / str(after) / name, run / name)
    shutil.copy2(saved / "0" / "best.json", run / "best.json")
    model, cfg = load_model(saved / "0" / "best.safetensors")
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    other = save_model(model, tmp_path / "other" / "best.safetensors", config={**cfg, "epoch": after + 1})
    shutil.copy2(other, run / "best.safetensors")
    meta = json.loads((run / "checkpoint.json").read_text())
    mode = json.loads((run / "run.json").read_text())["mode"]
    meta["extra"].update(best_epoch=0, best_value=-1e9 if mode == "min" else 1e9)  # (the unit id: of the tensors)
    (run / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(DevolensError, match="different saves"):  # (as every reader found it)
        load_model(run / "best.safetensors")
    return run, saved


def test_resume_writes_the_best_model_again_from_the_checkpoint_whose_weights_it_records(trained, pairs, tmp_path):
    """The best epoch was the last one checkpointed: best.json is the record of the checkpoint's weights, and
    best.safetensors is written again from them, byte for byte the pair the run had saved; the best stays."""
    run, saved = _killed_saving_best(trained, tmp_path, after=0)
    said: list[str] = []
    res = trainer.train(_recipe(), pairs, run, resume=True, info=said.append)
    assert load_model(run / "best.safetensors")[1]["epoch"] == 0  # (before: the mixed pair, refused here)
    assert not res.complete and res.best_epoch == 0
    assert ("note: best.safetensors and best.json were from different saves (the run was killed while saving them); "
            "best.safetensors was written again from the checkpoint, whose weights are the best epoch's (epoch 1)"
            ) in said
    for name in ("best.safetensors", "best.json"):
        assert (run / name).read_bytes() == (saved / "0" / name).read_bytes()


@pytest.mark.parametrize("left", ["mixed", "best.safetensors", "best.json", "none"])
def test_resume_replaces_a_best_model_it_cannot_mend(trained, pairs, tmp_path, left):
    """best.json records an earlier epoch than the checkpoint's (its weights are gone), or one file of the pair is
    there alone (a stop while the mend removed them), or neither although the checkpoint records a best epoch: what
    is there is removed and the resumed run saves a new best model at its next validation."""
    run, _ = _killed_saving_best(trained, tmp_path, after=1)
    if left != "mixed":
        for name in ("best.safetensors", "best.json"):
            if name != left:
                (run / name).unlink()
    said: list[str] = []
    res = trainer.train(_recipe(), pairs, run, resume=True, epochs=3, info=said.append)
    _, cfg = load_model(run / "best.safetensors")  # (before: the mixed pair outlived the run, refused here)
    assert cfg["epoch"] == res.best_epoch == 2
    why = {"mixed": "best.safetensors and best.json were from different saves (the run was killed while saving "
                    "them); they were removed, and",
           "best.safetensors": "the run's best.safetensors had no best.json beside it; it was removed, and",
           "best.json": "the run's best.json had no best.safetensors beside it; it was removed, and",
           "none": "the run's best model (best.safetensors and best.json) is missing;"}[left]
    assert (f"note: {why} the run saves a new best model at its next validation (after epoch 3), the best of the "
            "epochs it trains from now on") in said
    summary = json.loads((run / "run.json").read_text())
    assert (summary["best_epoch"], summary["best_value"]) == (2, res.best_value)
    assert json.loads((run / "checkpoint.json").read_text())["extra"]["best_epoch"] == 2


def test_a_whole_best_model_is_left_as_it_is(trained, pairs, tmp_path):
    """A best pair of one save (whose epoch the resumed epochs do not beat) is kept, and nothing is said of it."""
    out, saved = trained
    run = tmp_path / "run"
    shutil.copytree(out, run)
    for name in ("checkpoint.safetensors", "checkpoint.json", "run.json", "best.safetensors", "best.json"):
        shutil.copy2(saved / "0" / name, run / name)
    meta = json.loads((run / "checkpoint.json").read_text())
    mode = json.loads((run / "run.json").read_text())["mode"]
    meta["extra"].update(best_epoch=0, best_value=-1e9 if mode == "min" else 1e9)
    (run / "checkpoint.json").write_text(json.dumps(meta))
    said: list[str] = []
    trainer.train(_recipe(), pairs, run, resume=True, info=said.append)
    assert not [line for line in said if "best" in line]
    for name in ("best.safetensors", "best.json"):
        assert (run / name).read_bytes() == (saved / "0" / name).read_bytes()


def test_a_finished_run_keeps_its_mixed_best_model_and_the_refusal(trained, pairs, tmp_path):
    """Nothing to resume (the run has trained its epochs): its best model is left as it was (run.json is brought up to
    the checkpoint, as before), and the readers still refuse the pair, saying to train the run again."""
    run, _ = _killed_saving_best(trained, tmp_path, after=1)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "run.json"}
    said: list[str] = []
    res = trainer.train(_recipe(), pairs, run, resume=True, info=said.append)
    assert res.complete and not [line for line in said if "best" in line]
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "run.json"} == before
    with pytest.raises(DevolensError, match="else train the run again"):
        load_model(run / "best.safetensors")


def test_check_unit_builds_its_remedy_only_to_refuse(trained, tmp_path):
    out, _ = trained
    asked: list[int] = []

    def remedy() -> str:
        asked.append(1)
        return "do this"

    cfg = json.loads((out / "best.json").read_text())
    check_unit(out / "best.safetensors", out / "best.json", cfg, remedy)
    assert asked == []
    with pytest.raises(DevolensError) as refused:
        check_unit(out / "best.safetensors", out / "best.json", {**cfg, UNIT_KEY: "0" * 32}, remedy)
    assert str(refused.value).endswith(f"{MIXED}, so the two do not belong together and neither is used; do this")
    assert asked == [1]


def test_resume_replaces_a_whole_best_model_of_an_epoch_the_checkpoint_does_not_hold(trained, pairs, tmp_path):
    """Session 40: a kill after a new best epoch's pair was saved whole, before its checkpoint: the pair (epoch 2)
    is one save, but the checkpoint holds epoch 1 and records epoch 1 as its best. It was kept: a resumed epoch that
    did not beat the checkpoint's best value left the run naming epoch 1 its best and its model epoch 2's. Now it is
    replaced, as a pair of two saves is, by the resumed run's next best."""
    out, saved = trained
    run = tmp_path / "run"
    shutil.copytree(out, run)
    for name in ("checkpoint.safetensors", "checkpoint.json", "run.json"):
        shutil.copy2(saved / "0" / name, run / name)
    for name in ("best.safetensors", "best.json"):  # epoch 2's whole pair (the checkpoint is epoch 1's)
        shutil.copy2(saved / "1" / name, run / name)
    assert load_model(run / "best.safetensors")[1]["epoch"] == 1
    meta = json.loads((run / "checkpoint.json").read_text())
    mode = json.loads((run / "run.json").read_text())["mode"]
    meta["extra"].update(best_epoch=0, best_value=-1e9 if mode == "min" else 1e9)
    (run / "checkpoint.json").write_text(json.dumps(meta))
    said: list[str] = []
    res = trainer.train(_recipe(), pairs, run, resume=True, epochs=3, info=said.append)
    assert ("note: best.safetensors and best.json were saved in epoch 2, which the checkpoint (epoch 1) does not hold "
            "(the run was killed before its checkpoint); they were removed, and the run saves a new best model at its "
            "next validation (after epoch 2)") in " ".join(said)
    _, cfg = load_model(run / "best.safetensors")
    summary = json.loads((run / "run.json").read_text())
    assert cfg["epoch"] == res.best_epoch == summary["best_epoch"]  # (before: 1 for the model, 0 for the run)
