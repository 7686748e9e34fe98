"""Mends of the thirty-sixth session (M10) to interrupted and concurrent training runs: ``train`` (and ``--resume``)
hold the output lock on their run folder for the whole run, so a second run into it is refused instead of mixing
two runs' files; run.json (the data's fingerprint) is written before the first checkpoint, and a run without it is
not resumed on data that cannot be checked; a weights file that safetensors fails to write (a file size limit, a
full disk) is the project's write error, with no half file left."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml
from safetensors import SafetensorError

from _cli_helpers import command  # noqa: F401  (fixture)
from _train_data import make_pairs, tiny_recipe
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io.atomic import EX_TEMPFAIL, Exhausted, output_lock
from devolens.io.tensors import save_tensors
from devolens.train import trainer

SRC = Path(__file__).resolve().parents[1] / "src"
posix = pytest.mark.skipif(os.name != "posix", reason="fcntl locks, file size limits")


def _recipe(epochs: int = 1) -> dict:
    return tiny_recipe(train={"epochs": epochs, "batch_size": 4, "threads": 1, "overlay_samples": 0})


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"), groups=2, per_group=2, size=32)


def _cli(args, capsys):
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    return code, " ".join(got.err.split())


# ---------------------------------------------------------------- 1. one run at a time in a run folder
@posix
def test_a_second_run_into_a_running_run_folder_is_refused(pairs, tmp_path):
    """While a run trains (here: from its epoch callback, after its first checkpoint), a second run into the same
    folder and a --resume of it are refused at once, naming the holder; the first run's files are its own, and the
    lock file (a hidden sibling, as segment's) goes with the run."""
    out = tmp_path / "run"
    seen: list = []

    def second(epoch: int, row: dict) -> None:
        seen.append((tmp_path / ".run.lock").read_text())
        other = _recipe(epochs=3)
        other["seed"] = 7
        for resume in (False, True):
            with pytest.raises(DevolensError) as refused:
                trainer.train(other, pairs, out, resume=resume)
            assert str(refused.value) == f"{out}: another devolens run is writing here (pid {os.getpid()})"
        trainer.check_run_folder(out, pairs)  # the lock is no foreign file in the folder

    res = trainer.train(_recipe(), pairs, out, epoch_callback=second)
    assert seen == [f"{os.getpid()}\n{socket.gethostname()}\n"]
    assert yaml.safe_load((out / "recipe.yaml").read_text())["seed"] == 0  # the first run's, not the second's
    assert len(res.history) == 1 and json.loads((out / "run.json").read_text())["epochs_done"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the lock went with the run


@posix
def test_the_cli_refuses_a_run_folder_another_run_holds(pairs, tmp_path, capsys):
    """`devolens train` into a folder whose lock another run holds: one error line, exit 2, nothing written."""
    rec = tmp_path / "r.yaml"
    rec.write_text(yaml.safe_dump(_recipe()))
    out = tmp_path / "runs" / "run"
    out.parent.mkdir()
    held = output_lock(out)
    try:
        code, err = _cli(["train", rec, "-d", pairs, "-o", out], capsys)
    finally:
        held.release()
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert f"error: {out}: another devolens run is writing here (pid {os.getpid()})" in err
    assert not out.exists() and os.listdir(out.parent) == []


@posix
def test_a_killed_runs_lock_is_taken_over(pairs, tmp_path):
    """A lock file left by a run killed outright (its pid gone, no lock held) does not stop the next run, which
    takes it and removes it as it ends."""
    (tmp_path / ".run.lock").write_text("999999999\n")
    trainer.train(_recipe(), pairs, tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@posix
def test_a_failed_first_epoch_leaves_neither_the_folders_it_made_nor_the_lock(pairs, tmp_path):
    """A run stopped before its first checkpoint removes the folders it made, the lock file's folder too."""
    def stop(epoch, step, loss):
        assert (tmp_path / "a" / "b" / ".run.lock").exists()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer.train(_recipe(), pairs, tmp_path / "a" / "b" / "run", step_callback=stop)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- 2. run.json before the first checkpoint
def _stop_after_first_checkpoint(monkeypatch):
    """Stop the run as soon as its first checkpoint is saved (before anything else of that epoch is written)."""
    real = trainer.save_checkpoint

    def save_then_stop(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_stop)


def test_a_run_stopped_at_its_first_checkpoint_is_not_resumed_on_other_files(pairs, tmp_path, monkeypatch):
    """Stopped between its first checkpoint and the epoch's run.json, the run still has run.json with the data's
    fingerprint: --resume on files of the same names but other contents is refused (it went on before)."""
    out = tmp_path / "run"
    _stop_after_first_checkpoint(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(_recipe(epochs=2), pairs, out)
    monkeypatch.undo()
    assert (out / trainer.CHECKPOINT).exists()
    summary = json.loads((out / "run.json").read_text())
    assert summary["epochs_done"] == 0 and summary["data"]["fingerprint"]

    other = shutil.copytree(pairs, tmp_path / "other")
    mask = sorted((other / "masks").iterdir())[0]
    tifffile.imwrite(mask, np.zeros_like(tifffile.imread(mask)))
    with pytest.raises(DevolensError, match="differ from those the run was trained on"):
        trainer.train(_recipe(epochs=2), other, out, resume=True)
    res = trainer.train(_recipe(epochs=2), pairs, out, resume=True)  # its own data: it goes on
    assert len(res.history) == 2 and json.loads((out / "run.json").read_text())["epochs_done"] == 2


def test_resume_refuses_a_checkpoint_without_run_json(pairs, tmp_path, monkeypatch):
    """A checkpoint without run.json (what a stop left before run.json came first): the data cannot be checked, so
    --resume says so and what to do, and leaves the folder as it is."""
    out = tmp_path / "run"
    _stop_after_first_checkpoint(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(_recipe(epochs=2), pairs, out)
    monkeypatch.undo()
    (out / "run.json").unlink()
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(DevolensError) as refused:
        trainer.train(_recipe(epochs=2), pairs, out, resume=True)
    assert str(refused.value).startswith(f"{out}: --resume: the run has a checkpoint but no run.json")
    assert "another --out" in str(refused.value)
    assert sorted(p.name for p in out.iterdir()) == before


# ---------------------------------------------------------------- 3. safetensors' own write errors
def _failing_writer(message: str):
    def save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 100)  # a half file, as a write cut short leaves
        raise SafetensorError(message)

    return save_file


@pytest.mark.parametrize("number, kind", [(errno.EFBIG, DevolensError), (errno.ENOSPC, Exhausted)])
def test_a_failed_safetensors_write_is_a_write_error_without_a_half_file(tmp_path, monkeypatch, number, kind):
    """safetensors raises its own error, not an OSError, for a failed write: it is the project's write error (a full
    disk the retryable kind, exit 75), and neither the half file nor the earlier weights are touched."""
    import safetensors.torch

    path = tmp_path / "best.safetensors"
    path.write_bytes(b"earlier")
    monkeypatch.setattr(safetensors.torch, "save_file", _failing_writer(
        f"Error while serializing: I/O error: {os.strerror(number)} (os error {number})"))
    with pytest.raises(kind) as failed:
        save_tensors({"w": torch.ones(3)}, path)
    assert type(failed.value) is kind
    assert str(failed.value) == f"{path}: cannot write output: {os.strerror(number)}"
    assert path.read_bytes() == b"earlier" and os.listdir(tmp_path) == ["best.safetensors"]


def test_older_safetensors_wording_and_other_errors(tmp_path, monkeypatch):
    """The older wording (Rust's debug form) is read too; an error that is no I/O error (a tensor safetensors cannot
    store) stays safetensors' own, and no temporary is left either way."""
    import safetensors.numpy

    monkeypatch.setattr(safetensors.numpy, "save_file", _failing_writer(
        'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'))
    with pytest.raises(Exhausted, match="No space left on device"):
        save_tensors({"w": np.ones(3)}, tmp_path / "n.safetensors")
    monkeypatch.setattr(safetensors.numpy, "save_file", _failing_writer("Error while serializing: shape mismatch"))
    with pytest.raises(SafetensorError, match="shape mismatch") as failed:
        save_tensors({"w": np.ones(3)}, tmp_path / "n.safetensors")
    assert not isinstance(failed.value, DevolensError)
    assert os.listdir(tmp_path) == []


def test_the_cli_reports_a_failed_weights_write_in_one_line(command, tmp_path, monkeypatch, capsys):  # noqa: F811
    """Through the command: `error: PATH: cannot write output: File too large`, exit 2, no traceback; a full disk
    exits 75, as every command's."""
    import safetensors.torch

    for number, code in ((errno.EFBIG, 2), (errno.ENOSPC, EX_TEMPFAIL)):
        monkeypatch.setattr(safetensors.torch, "save_file", _failing_writer(
            f"Error while serializing: I/O error: {os.strerror(number)} (os error {number})"))
        command["body"] = lambda out: save_tensors({"w": torch.ones(3)}, out / "w.safetensors")
        got, err = _cli(["zz-test", "--out", tmp_path / "o"], capsys)
        assert got == code and "Traceback" not in err
        assert err.startswith(f"error: {tmp_path / 'o' / 'w.safetensors'}: cannot write output: "
                              f"{os.strerror(number)}")
        assert os.listdir(tmp_path / "o") == []


@posix
def test_a_file_size_limit_is_a_write_error(tmp_path):
    """For real: under `ulimit -f` safetensors' write fails with EFBIG; a one-line error and no file."""
    code = ("import resource, torch\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
            "from devolens.errors import DevolensError\n"
            "from devolens.io.tensors import save_tensors\n"
            "try:\n"
            f"    save_tensors({{'w': torch.ones(100000)}}, {str(tmp_path / 'big.safetensors')!r})\n"
            "except DevolensError as exc:\n"
            "    print(type(exc).__name__, exc)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == f"DevolensError {tmp_path / 'big.safetensors'}: cannot write output: " \
                                 f"{os.strerror(errno.EFBIG)}"
    assert os.listdir(tmp_path) == []
