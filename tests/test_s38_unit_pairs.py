"""Mends of the thirty-eighth session (issue 5): a weights + JSON pair that training writes as one unit (the
checkpoint, the best model, an ``--export``) is renamed in place file by file, so a process killed outright between
the two renames (SIGKILL, a power loss) could leave the weights of one save beside the JSON of another, which
``--resume``, ``devolens models export``, ``devolens segment --model RUN`` and ``evaluate`` used as a pair without a
word. Both files now carry the same unit id (derived from the tensors: a resumed run still writes its files byte
for byte as an uninterrupted one), and a pair whose ids differ is refused with what to do; files of an older version
(no id) are read as before. And run.json, which a kill after the checkpoint left an epoch behind, is brought up to the
checkpoint on --resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from _train_data import make_pairs, tiny_recipe
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io.tensors import load_tensors, save_tensors
from devolens.io.together import UNIT_KEY, tensors_unit, unit_id
from devolens.models import zoo
from devolens.models.architectures import build_model, load_model, save_model
from devolens.models.export import export_run
from devolens.train import trainer
from devolens.train.checkpoint import load_checkpoint, save_checkpoint
from devolens.train.evaluate import evaluate_run

MIXED = "are from different saves (was the run killed while saving them?), so the two do not belong together"


def _recipe(epochs: int = 2) -> dict:
    return tiny_recipe(name="tiny_nuclei", train={"epochs": epochs, "batch_size": 4, "threads": 1,
                                                  "overlay_samples": 0})


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"), groups=2, per_group=2, size=32)


@pytest.fixture(scope="module")
def trained(pairs, tmp_path_factory):
    """A two-epoch run, with copies of its checkpoint pair and run.json as they were after each epoch."""
    out = tmp_path_factory.mktemp("trained") / "run"
    saved = out.parent / "saved"

    def keep(epoch, row):
        for name in ("checkpoint.safetensors", "checkpoint.json", "run.json"):
            (saved / str(epoch)).mkdir(parents=True, exist_ok=True)
            shutil.copy2(out / name, saved / str(epoch) / name)

    trainer.train(_recipe(), pairs, out, epoch_callback=keep)
    return out, saved


@pytest.fixture
def run(trained, tmp_path):
    """A copy of the trained run (each test spoils its own); its saves after each epoch in ``saved``."""
    out, saved = trained
    shutil.copytree(out, tmp_path / "run")
    return tmp_path / "run", saved


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _other_best(out: Path, tmp_path: Path) -> Path:
    """A save of the run's best model other than its own (its weights changed a little), as best.* of another epoch
    would be."""
    model, cfg = load_model(out / "best.safetensors")
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    cfg["epoch"] = int(cfg["epoch"]) + 1
    return save_model(model, tmp_path / "other" / "best.safetensors", config=cfg)


def _strip_ids(weights: Path) -> None:
    """Rewrite a pair as an older devolens wrote it: without the unit id in either file."""
    meta = json.loads(weights.with_suffix(".json").read_text())
    meta.pop(UNIT_KEY)
    weights.with_suffix(".json").write_text(json.dumps(meta))
    save_tensors(load_tensors(weights), weights, metadata=None if weights.name.startswith("checkpoint") else
                 {"format": "pt"})  # (as an older version wrote each)


def _cli(args, capsys):
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    return code, " ".join(got.err.split())


# ---------------------------------------------------------------- 1. the id: in both files, from their content
def test_both_files_of_each_pair_carry_one_id(run):
    out, _ = run
    for name in ("checkpoint", "best"):
        weights = out / f"{name}.safetensors"
        own = json.loads(weights.with_suffix(".json").read_text())[UNIT_KEY]
        assert isinstance(own, str) and len(own) == 32 and tensors_unit(weights) == own


def test_the_id_comes_from_the_tensors():
    """The same tensors get the same id (a resumed run writes its files byte for byte as an uninterrupted one); any
    other value, dtype, shape or name another."""
    a = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros(2, dtype=torch.bfloat16)}
    assert unit_id(a) == unit_id({k: v.clone() for k, v in a.items()})
    assert unit_id(a) != unit_id({**a, "w": a["w"] + 1})
    assert unit_id(a) != unit_id({**a, "b": a["b"].float()})
    assert unit_id(a) != unit_id({**a, "w": a["w"].reshape(3, 2)})
    assert unit_id(a) != unit_id({"v": a["w"], "b": a["b"]})


def test_two_saves_of_the_same_state_are_byte_for_byte_alike(tmp_path):
    """(safetensors writes several metadata keys in a random order: the id is the only one.)"""
    model = build_model("unet", encoder="resnet18", encoder_depth=3, decoder_channels=[32, 16, 16], in_channels=1,
                        classes=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for folder in ("a", "b"):
        save_model(model, tmp_path / folder / "m.safetensors", config={"epoch": 3})
        save_checkpoint(tmp_path / folder / "checkpoint.safetensors", model, opt, extra={"epoch": 3})
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


# ---------------------------------------------------------------- 2. a checkpoint of two saves: --resume refuses
@pytest.mark.parametrize("replaced", ["checkpoint.json", "checkpoint.safetensors"])
def test_resume_refuses_a_checkpoint_of_two_saves(run, pairs, replaced):
    """The run killed between the checkpoint's two renames: one file of the second epoch's save, the other of the
    first's. --resume says so and what to do, before it trains, and leaves the folder as it is."""
    out, saved = run
    shutil.copy2(saved / "0" / replaced, out / replaced)
    before = _files(out)
    with pytest.raises(DevolensError) as refused:
        trainer.train(_recipe(), pairs, out, resume=True, epochs=3)
    assert str(refused.value) == (
        f"{out}: checkpoint.safetensors and checkpoint.json {MIXED} and neither is used; the checkpoint cannot be "
        "resumed: train the run anew in another --out; to keep what it learned, start that run from this run's best "
        f"weights (recipe model.init: {out / 'best.safetensors'})")
    assert _files(out) == before


def test_load_checkpoint_refuses_two_saves_before_restoring_anything(tmp_path):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    save_checkpoint(tmp_path / "a" / "checkpoint.safetensors", model, opt, extra={"epoch": 1})
    with torch.no_grad():
        model.weight.add_(1.0)
    ckpt = save_checkpoint(tmp_path / "checkpoint.safetensors", model, opt, extra={"epoch": 2})
    shutil.copy2(tmp_path / "a" / "checkpoint.json", tmp_path / "checkpoint.json")
    fresh = torch.nn.Linear(2, 2)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(DevolensError) as refused:
        load_checkpoint(ckpt, fresh)
    assert MIXED in str(refused.value)
    assert all(torch.equal(v, before[k]) for k, v in fresh.state_dict().items())


def test_a_checkpoint_without_ids_resumes_as_before(run, pairs):
    """Files an older version wrote (no id in either) are resumed as ever."""
    out, _ = run
    _strip_ids(out / "checkpoint.safetensors")
    res = trainer.train(_recipe(), pairs, out, resume=True, epochs=3)
    assert list(res.history["epoch"]) == [0, 1, 2]


# ---------------------------------------------------------------- 3. best.* of two saves: every reader refuses
@pytest.mark.parametrize("replaced", ["best.json", "best.safetensors"])
def test_every_reader_of_the_best_model_refuses_two_saves(run, pairs, tmp_path, capsys, replaced):
    out, _ = run
    other = _other_best(out, tmp_path)
    shutil.copy2(other.with_name(replaced), out / replaced)
    said = (f"{out}: best.safetensors and best.json {MIXED} and neither is used; the run's best model cannot be "
            "used as it is: if the run did not finish, `devolens train` with --resume (same recipe, data and --out) "
            "trains its last epoch again and saves the best model anew; else train the run again (in another --out)")
    for read in (lambda: load_model(out / "best.safetensors"),       # the library, `train --export`
                 lambda: export_run(out, tmp_path / "exported"),     # `models export`
                 lambda: zoo.card(out, "nuclei"),                    # `segment --model RUN`, `models show`
                 lambda: evaluate_run(out, pairs)):                  # `evaluate`
        with pytest.raises(DevolensError) as refused:
            read()
        assert str(refused.value) == said
    code, err = _cli(["models", "export", out, "--to", tmp_path / "cli"], capsys)
    assert code != 0 and said in err and "Traceback" not in err
    assert not (tmp_path / "exported").exists() and not (tmp_path / "cli").exists()


def test_a_best_model_without_ids_loads_as_before(run, tmp_path):
    out, _ = run
    _strip_ids(out / "best.safetensors")
    load_model(out / "best.safetensors")
    assert export_run(out, tmp_path / "exported")["task"] == "nuclei"


def test_an_export_of_two_saves_is_refused(run, tmp_path):
    """An --export pair (save_model's, fp16) whose JSON is of another save."""
    out, _ = run
    model, cfg = load_model(out / "best.safetensors")
    export = save_model(model, tmp_path / "export.safetensors", config=cfg, fp16=True)
    other = _other_best(out, tmp_path)
    shutil.copy2(other.with_suffix(".json"), export.with_suffix(".json"))
    with pytest.raises(DevolensError) as refused:
        load_model(export)
    assert str(refused.value) == (
        f"{tmp_path}: export.safetensors and export.json {MIXED} and neither is used; save the model again (an "
        "--export of `devolens train`: the same `devolens train` command with --resume and the same --export "
        "writes it anew, training no further)")


# ---------------------------------------------------------------- 4. run.json behind the checkpoint
def test_resume_brings_a_lagging_run_json_up_to_the_checkpoint(run, pairs):
    """Killed after the last checkpoint and before run.json was written: run.json says one epoch done. --resume of
    the complete run reports the checkpoint's best epoch and rewrites run.json as the run would have; resumed further,
    the new session starts from epoch 2, not 1."""
    out, saved = run
    whole = json.loads((out / "run.json").read_text())
    extra = json.loads((out / "checkpoint.json").read_text())["extra"]
    shutil.copy2(saved / "0" / "run.json", out / "run.json")  # (as the first epoch left it)
    res = trainer.train(_recipe(), pairs, out, resume=True)
    assert res.complete and (res.best_epoch, res.best_value) == (extra["best_epoch"], extra["best_value"])
    assert json.loads((out / "run.json").read_text()) == whole
    shutil.copy2(saved / "0" / "run.json", out / "run.json")
    trainer.train(_recipe(), pairs, out, resume=True, epochs=3)
    sessions = json.loads((out / "run.json").read_text())["sessions"]
    assert [s["from_epoch"] for s in sessions] == [0, 2]
