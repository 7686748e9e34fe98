"""Mends of the thirty-seventh session (M12) after review: a new run into a folder whose checkpoint lacks one of its
two files is refused (it removed the orphan alone and kept the earlier run's best weights, history and samples beside
its own), the check for copies across the split reads files through the cached ``file_digest`` (it hashed every
byte of every image on each build of the data), a failing ``--export`` leaves the training's summary said and says
how to export again, and tune's no-trial-beat line names the best epoch's value as such."""

from __future__ import annotations

import errno
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from _train_data import make_pairs, tiny_recipe
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.train import trainer


def _recipe(epochs: int = 1, overlay: int = 0) -> dict:
    return tiny_recipe(train={"epochs": epochs, "batch_size": 4, "threads": 1, "overlay_samples": overlay})


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"), groups=2, per_group=2, size=32)


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _cli(args, capsys):
    code = main([str(a) for a in args])
    got = capsys.readouterr()
    return code, " ".join(got.err.split()), got.out


# ---------------------------------------------------------------- 1. a half checkpoint: a new run is refused
@pytest.mark.parametrize("missing", ["checkpoint.json", "checkpoint.safetensors"])
def test_a_new_run_leaves_an_earlier_runs_files_with_a_half_checkpoint_alone(pairs, tmp_path, missing):
    """An earlier run (best weights, history, samples, an evaluation) whose checkpoint lost one file: a new run
    there is refused before any work, naming what is there and what to do, and every file stays as it was (it
    removed the orphan alone and trained, so a stop in its first epoch left the old best weights beside its
    run.json, which an export would have shipped as the new run's)."""
    out = tmp_path / "run"
    trainer.train(_recipe(overlay=1), pairs, out)
    (out / missing).unlink()
    (out / "eval_x.json").write_text("{}")
    before = _files(out)
    assert "best.safetensors" in before and any(name.startswith("samples/epoch_") for name in before)
    with pytest.raises(DevolensError) as refused:
        trainer.train(tiny_recipe(seed=5, train={"epochs": 1, "batch_size": 4, "threads": 1}), pairs, out)
    there = "checkpoint.safetensors" if missing == "checkpoint.json" else "checkpoint.json"
    message = refused.value.message
    assert message.startswith(f"--out holds an earlier run whose {there} has no {missing} beside it")
    assert "best.json, best.safetensors, eval_x.json, history.csv" in message
    assert "give another --out, or remove this folder first" in message and f"put its {missing} back" in message
    assert refused.value.path == out
    assert _files(out) == before


# ---------------------------------------------------------------- 2. copies across the split: the cached digest
def test_split_copies_reads_files_through_the_cached_file_digest(tmp_path):
    """split_copies digests the files of a size found on both sides with trainer.file_digest, whose cache the
    data's fingerprint (and the next build of the data: resume, every tune trial) then finds them in; it read
    each whole file again with a digest of its own on every build."""
    from devolens.data.datasets import split_copies

    rng = np.random.default_rng(0)
    paths = []
    for k in range(3):  # larger than file_digest's three chunks: the start, middle and end are read
        p = tmp_path / f"f{k}.bin"
        p.write_bytes(rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes())
        paths.append(str(p))
    copy = tmp_path / "copy.bin"
    copy.write_bytes(Path(paths[0]).read_bytes())
    train, val = pd.DataFrame({"image": paths}), pd.DataFrame({"image": [str(copy)]})
    notes = split_copies(train, val, tmp_path)
    assert len(notes) == 1 and "copy.bin = f0.bin" in notes[0]
    info = trainer._digest.cache_info()
    for p in [*paths, str(copy)]:
        trainer.file_digest(p)
    after = trainer._digest.cache_info()
    assert after.misses == info.misses and after.hits == info.hits + 4


# ---------------------------------------------------------------- 3. a failing --export keeps the summary
@pytest.mark.parametrize("raw", [False, True], ids=["cannot_write", "OSError"])
def test_a_full_disk_at_the_export_keeps_the_summary_and_says_how_to_export(pairs, tmp_path, capsys, monkeypatch,
                                                                           raw):
    """The disk full as --export is written: the training's summary (the last and best epochs, how to use the run)
    is said before the error, which says the run is complete and gives the command that writes the export (it
    said the error alone); that command then exports without training further."""
    import devolens.models.architectures as architectures
    from devolens.io.atomic import EX_TEMPFAIL, cannot_write

    out, export = tmp_path / "run", tmp_path / "fp16.safetensors"
    real = architectures.save_model

    def save_model(*args, **kwargs):
        if kwargs.get("fp16"):
            full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise full if raw else cannot_write(full, export)
        return real(*args, **kwargs)

    monkeypatch.setattr(architectures, "save_model", save_model)
    monkeypatch.setenv("COLUMNS", "400")
    rec = tmp_path / "r.yaml"
    rec.write_text(yaml.safe_dump(_recipe()))
    code, err, said = _cli(["train", rec, "-d", pairs, "-o", out, "--export", export, "--no-plots"], capsys)
    assert code == EX_TEMPFAIL
    lines = said.splitlines()
    assert lines[0].startswith("epochs: 1") and lines[1].startswith("best val_")
    assert "tip: `devolens segment" in err or "cannot use it" in err  # how to use the run: said too
    assert f"No space left on device; the run is complete in {out}: `" in err
    assert not export.exists()
    command = re.search(r"the run is complete in [^`]*`([^`]*)`", err).group(1)
    words = shlex.split(command)
    assert words[:2] == ["devolens", "train"] and "--resume" in words and words[-3:] == ["--export", str(export),
                                                                                       "--no-plots"]
    monkeypatch.setattr(architectures, "save_model", real)
    before = (out / "checkpoint.json").read_bytes()
    code, err, said = _cli(words[1:], capsys)
    assert code == 0, err
    assert "already complete (1 epoch)" in err and said.splitlines()[-1] == f"fp16 export -> {export}"
    assert export.exists() and (out / "checkpoint.json").read_bytes() == before


# ---------------------------------------------------------------- 4. tune: the best trial's value is its best epoch's
def test_the_no_trial_beat_line_names_the_best_epochs_value(tmp_path):
    """A trial's value is its best epoch's, not its last's: the line says "its best epoch's val_f1 0.5176 (of 3
    scored epochs)" (it said "val_f1 0.5176 after 3 epochs", as if the third epoch had scored it)."""
    import optuna
    from optuna.distributions import FloatDistribution

    from devolens.train.tuning import _start_note

    short = {"init": "zoo:nuclei", "value": 0.5391, "not_beaten": True}
    study = optuna.create_study(direction="maximize")
    for i, (value, scores) in enumerate([(0.5176, {0: 0.40, 1: 0.5176, 2: 0.45}), (0.5, {0: 0.5})]):
        study.add_trial(optuna.trial.create_trial(
            params={"optimizer.lr": 1e-3}, distributions={"optimizer.lr": FloatDistribution(1e-4, 1e-2)},
            value=value, user_attrs={"run_dir": str(tmp_path / f"trial_{i}"), "start": short},
            intermediate_values=scores))
    _, line = _start_note(study, study.best_trial, "val_f1")
    assert "best: trial 0, its best epoch's val_f1 0.5176 (of 3 scored epochs), of 2 finished trials" in line
    assert "after" not in line
