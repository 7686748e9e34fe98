"""Mends of the thirty-seventh session (M3) to `devolens train`'s run folder: the checkpoint's two files
(checkpoint.safetensors and checkpoint.json) are written as one unit, so a stop as a checkpoint is saved leaves the
previous pair whole (or, in the first epoch, no checkpoint and no run folder); a half pair that an older version (or
a removed file) left is resumed by no one, and --resume and a new run into the folder say what to do; the
plots and the --export file are written while the run still holds its folder's lock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from _train_data import make_pairs, tiny_recipe
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io.atomic import output_lock
from devolens.train import checkpoint as checkpoint_module
from devolens.train import trainer

posix = pytest.mark.skipif(os.name != "posix", reason="fcntl locks")


def _recipe(epochs: int = 1) -> dict:
    return tiny_recipe(train={"epochs": epochs, "batch_size": 4, "threads": 1, "overlay_samples": 0})


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"), groups=2, per_group=2, size=32)


def _pair(out: Path) -> tuple[bytes, bytes]:
    return (out / "checkpoint.safetensors").read_bytes(), (out / "checkpoint.json").read_bytes()


def _stop_before_checkpoint_json(monkeypatch, at: int = 1) -> None:
    """Stop the run (Ctrl-C) at the ``at``-th checkpoint, once its weights are written and before its JSON is."""
    real, seen = checkpoint_module.write_text, [0]

    def write_text(path, text, *args, **kwargs):
        if Path(path).suffix == ".json" and "checkpoint" in Path(path).name:
            seen[0] += 1
            if seen[0] == at:
                raise KeyboardInterrupt
        return real(path, text, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "write_text", write_text)


def _half(tmp_path: Path, pairs: Path, missing: str) -> Path:
    """A one-epoch run whose checkpoint lacks one of its two files (``missing``)."""
    out = tmp_path / "run"
    trainer.train(_recipe(), pairs, out)
    (out / missing).unlink()
    return out


def _cli(args, capsys):
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    return code, " ".join(got.err.split()), got.out


# ---------------------------------------------------------------- 1. the checkpoint's two files: one unit
def test_a_stop_between_the_first_checkpoints_files_leaves_no_run(pairs, tmp_path, monkeypatch):
    """Stopped as its first checkpoint is saved (weights written, JSON not yet): no checkpoint was made, so the run
    folder the call made goes, as after any stop in the first epoch (it kept checkpoint.safetensors alone, which
    neither --resume nor a new run took)."""
    out = tmp_path / "run"
    _stop_before_checkpoint_json(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(_recipe(), pairs, out)
    assert os.listdir(tmp_path) == []


def test_a_stop_between_a_later_checkpoints_files_keeps_the_previous_pair(pairs, tmp_path, monkeypatch):
    """Stopped as the second epoch's checkpoint is saved: both files are still the first epoch's (the weights were
    the second's beside the first's JSON, which --resume would have mixed), and --resume goes on from there."""
    out = tmp_path / "run"
    first: list = []
    _stop_before_checkpoint_json(monkeypatch, at=2)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(_recipe(epochs=2), pairs, out, epoch_callback=lambda epoch, row: first.append(_pair(out)))
    monkeypatch.undo()
    assert len(first) == 1 and _pair(out) == first[0]
    assert json.loads((out / "checkpoint.json").read_text())["extra"]["epoch"] == 1
    assert not [name for name in os.listdir(out) if ".tmp-" in name]  # no temporary left either
    res = trainer.train(_recipe(epochs=2), pairs, out, resume=True)
    assert list(res.history["epoch"]) == [0, 1]


# ---------------------------------------------------------------- 2. a half checkpoint left by an older version
@pytest.mark.parametrize("missing, there", [("checkpoint.json", "checkpoint.safetensors"),
                                            ("checkpoint.safetensors", "checkpoint.json")])
def test_resume_of_a_half_checkpoint_says_what_to_do(pairs, tmp_path, missing, there):
    """A checkpoint of which one file is missing cannot be resumed: --resume says which is missing and to train the
    run anew in another --out (or after removing the folder), and leaves the folder as it is."""
    out = _half(tmp_path, pairs, missing)
    before = sorted(os.listdir(out))
    with pytest.raises(DevolensError) as refused:
        trainer.train(_recipe(epochs=2), pairs, out, resume=True)
    assert str(refused.value) == (
        f"{out}: --resume: the run's {there} has no {missing} beside it (the run was stopped as it saved a "
        "checkpoint, or the file was removed), so it cannot be resumed; train it anew in another --out (or remove "
        "this folder first)")
    assert sorted(os.listdir(out)) == before


def test_a_new_run_into_a_half_checkpoint_is_refused(pairs, tmp_path, capsys):
    """`devolens train` (no --resume) into a run folder whose checkpoint.json is missing is refused, naming the
    earlier run's files there and what to do, and leaves the folder as it is (it replaced the orphan alone, so a stop
    in the new run's first epoch left the old best weights beside the new run.json)."""
    out = _half(tmp_path, pairs, "checkpoint.json")
    before = {name: (out / name).read_bytes() for name in os.listdir(out) if (out / name).is_file()}
    rec = tmp_path / "r.yaml"
    rec.write_text(yaml.safe_dump(_recipe(epochs=2)))
    code, err, _ = _cli(["train", rec, "-d", pairs, "-o", out, "--no-plots"], capsys)
    assert code != 0
    assert ("holds an earlier run whose checkpoint.safetensors has no checkpoint.json beside it (the run was stopped "
            "as it saved a checkpoint, or the file was removed), with its best.json, best.safetensors") in err
    assert ("a new run there would mix its files with that run's: give another --out, or remove this folder first "
            "to train anew there (or put its checkpoint.json back and continue the run with --resume)") in err
    assert "Traceback" not in err
    assert {name: (out / name).read_bytes() for name in os.listdir(out) if (out / name).is_file()} == before


# ---------------------------------------------------------------- 3. plots and --export under the run's lock
def _locked(out: Path) -> bool:
    """Whether another run holds the lock of the run folder ``out`` (this one could not take it)."""
    try:
        lock = output_lock(out)
    except DevolensError:
        return True
    if lock is not None:
        lock.release()
    return False


@posix
def test_plots_and_export_are_written_while_the_run_holds_its_folder(pairs, tmp_path, capsys, monkeypatch):
    """history.png and the --export file are written before the run lets go of its folder's lock (a second run
    into the folder could start while they were written, and export its best model instead), for a run that
    trained and for a complete run resumed; the lines saying them keep their places."""
    import devolens.models.architectures as architectures
    import devolens.viz.plots as plots

    out, export = tmp_path / "run", tmp_path / "fp16.safetensors"
    held: list = []
    real_plot, real_save = plots.plot_training, architectures.save_model

    def plot_training(*args, **kwargs):
        held.append(("plot", _locked(out)))
        return real_plot(*args, **kwargs)

    def save_model(*args, **kwargs):
        if kwargs.get("fp16"):
            held.append(("export", _locked(out)))
        return real_save(*args, **kwargs)

    monkeypatch.setattr(plots, "plot_training", plot_training)
    monkeypatch.setattr(architectures, "save_model", save_model)
    rec = tmp_path / "r.yaml"
    rec.write_text(yaml.safe_dump(_recipe()))
    code, err, said = _cli(["train", rec, "-d", pairs, "-o", out, "--export", export], capsys)
    assert code == 0, err
    assert held == [("plot", True), ("export", True)]
    assert (out / "history.png").exists() and export.exists()
    assert f"plots: {out / 'history.png'}" in err
    lines = said.splitlines()
    assert lines[0].startswith("epochs: 1") and lines[-1] == f"fp16 export -> {export}"

    held.clear()
    code, err, said = _cli(["train", rec, "-d", pairs, "-o", out, "--export", export, "--resume"], capsys)
    assert code == 0, err
    assert held == [("export", True)] and "already complete (1 epoch)" in err
    assert said.splitlines()[-1] == f"fp16 export -> {export}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp16.json", "fp16.safetensors", "r.yaml", "run"]
