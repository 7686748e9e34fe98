"""Mends of the thirty-seventh session (M4): the other weights + JSON pairs training writes are one unit each, as the
checkpoint became in M3. A run's best.safetensors + best.json, and any model saved by ``save_model`` (the ``--export``
file and its config), were written one after the other: a stop (Ctrl-C, SIGTERM) or a full disk between the two left
the new weights beside the previous JSON, which loaded without a word described by another epoch's metrics
(``devolens segment --model RUN``, ``models export``), or, for a first save, the weights alone. Now both files are the
new ones or both the previous ones; the checkpoint's unit lives in ``devolens.train.checkpoint.save_checkpoint``."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import yaml

from _train_data import make_pairs, tiny_recipe
from devolens.cli import main
from devolens.io.atomic import Exhausted
from devolens.models import architectures
from devolens.models.architectures import build_model, load_model, save_model
from devolens.train import trainer


def _recipe(epochs: int = 1) -> dict:
    return tiny_recipe(train={"epochs": epochs, "batch_size": 4, "threads": 1, "overlay_samples": 0})


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"), groups=2, per_group=2, size=32)


def _fail_json(monkeypatch, name: str, exc: BaseException, at: int = 1) -> list[int]:
    """Make the ``at``-th write of ``NAME.json`` by ``save_model`` (its second file: the weights are written by then)
    raise ``exc``; returns the count of those writes (to check that the failure came)."""
    real, seen = architectures.write_text, [0]

    def write_text(path, text, *args, **kwargs):
        p = Path(path)
        if p.suffix == ".json" and (p.name == f"{name}.json" or p.name.startswith(f".{name}.tmp-")):
            seen[0] += 1
            if seen[0] == at:
                raise exc
        return real(path, text, *args, **kwargs)

    monkeypatch.setattr(architectures, "write_text", write_text)
    return seen


def _both(weights: Path) -> tuple[bytes, bytes]:
    return weights.read_bytes(), weights.with_suffix(".json").read_bytes()


def _temporaries(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if ".tmp-" in name]


def _full_disk() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _net(seed: int):
    import torch

    torch.manual_seed(seed)
    return build_model("unet", "resnet18", in_channels=1, classes=1, encoder_depth=2, decoder_channels=[8, 4])


# ---------------------------------------------------------------- 1. save_model: weights and config, one unit
@pytest.mark.parametrize("stop", ["ctrl-c", "full disk"])
def test_a_model_saved_over_another_stopped_before_its_json_leaves_the_other_whole(tmp_path, monkeypatch, stop):
    """Saving a model over an earlier one (an --export of a run trained further) and stopped once the weights are
    written: both files are still the earlier model's (the new weights beside the earlier JSON loaded silently,
    described by the earlier model's epoch and metrics); a full disk is the one-line error naming the JSON."""
    path = save_model(_net(0), tmp_path / "m.safetensors", config={"epoch": 3}, fp16=True)
    earlier = _both(path)
    seen = _fail_json(monkeypatch, "m", KeyboardInterrupt() if stop == "ctrl-c" else _full_disk())
    with pytest.raises(KeyboardInterrupt if stop == "ctrl-c" else Exhausted) as failed:
        save_model(_net(1), path, config={"epoch": 7}, fp16=True)
    assert seen == [1] and _both(path) == earlier
    if stop == "full disk":
        assert str(failed.value) == f"{tmp_path / 'm.json'}: cannot write output: {os.strerror(errno.ENOSPC)}"
    assert _temporaries(tmp_path) == []
    monkeypatch.undo()
    assert load_model(path)[1]["epoch"] == 3


def test_a_first_model_stopped_before_its_json_leaves_no_file(tmp_path, monkeypatch):
    """The first save of a model stopped once its weights are written leaves neither file (it left the weights
    alone, which load_model refused and a later `train --export` to the same name refused as "no earlier fp16
    export")."""
    _fail_json(monkeypatch, "m", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        save_model(_net(0), tmp_path / "m.safetensors", fp16=True)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- 2. a run's best.safetensors + best.json
@pytest.mark.parametrize("stop", ["ctrl-c", "full disk"])
def test_a_stop_between_the_best_files_keeps_the_previous_best_pair(pairs, tmp_path, monkeypatch, stop):
    """A run stopped as it saves a new best epoch, its weights written and not yet best.json: best.safetensors is
    still the earlier best epoch's, as best.json says (it was the new epoch's, loaded by `segment --model RUN` and
    `models export` as the earlier one, with that one's metrics). --resume trains the epoch again and saves it."""
    out = tmp_path / "run"
    kept: list = []
    seen = _fail_json(monkeypatch, "best", KeyboardInterrupt() if stop == "ctrl-c" else _full_disk(), at=2)
    with pytest.raises(KeyboardInterrupt if stop == "ctrl-c" else Exhausted):
        trainer.train(_recipe(epochs=2), pairs, out, epoch_callback=lambda epoch, row: kept.append(
            _both(out / trainer.BEST)))
    monkeypatch.undo()
    assert seen == [2] and len(kept) == 1  # stopped at the second epoch's best, after the first epoch's
    assert _both(out / trainer.BEST) == kept[0]
    assert json.loads((out / "best.json").read_text())["epoch"] == 0
    assert _temporaries(out) == []
    if stop == "ctrl-c":
        res = trainer.train(_recipe(epochs=2), pairs, out, resume=True)
        assert list(res.history["epoch"]) == [0, 1] and res.best_epoch == 1
        assert load_model(out / trainer.BEST)[1]["epoch"] == 1


# ---------------------------------------------------------------- 3. `devolens train --export`
def test_train_export_over_an_earlier_export_fails_whole(pairs, tmp_path, monkeypatch, capsys):
    """`devolens train --resume --epochs 2 --export F` over the export of the run's first epoch, on a disk that
    fills as the export's config is written: one error line naming it, exit 75, and F with its config still the
    earlier export (it was the new best epoch's weights beside the first epoch's config)."""
    out, export = tmp_path / "run", tmp_path / "fp16.safetensors"
    rec = tmp_path / "r.yaml"
    rec.write_text(yaml.safe_dump(_recipe()))
    assert main([str(a) for a in ["train", rec, "-d", pairs, "-o", out, "--no-plots", "--export", export]]) == 0
    earlier = _both(export)
    capsys.readouterr()
    seen = _fail_json(monkeypatch, "fp16", _full_disk())
    code = main([str(a) for a in ["train", rec, "-d", pairs, "-o", out, "--no-plots", "--export", export,
                                  "--resume", "--epochs", 2]])
    err = " ".join(capsys.readouterr().err.split())
    monkeypatch.undo()
    assert seen == [1] and code == 75
    assert f"error: {tmp_path / 'fp16.json'}: cannot write output: {os.strerror(errno.ENOSPC)}" in err
    assert json.loads((out / "best.json").read_text())["epoch"] == 1  # the export would have been another model
    assert _both(export) == earlier and _temporaries(tmp_path) == []
    assert load_model(export)[1]["epoch"] == 0


# ---------------------------------------------------------------- 4. the checkpoint's unit lives in one place
def test_the_checkpoint_module_writes_its_pair_as_one_unit(tmp_path, monkeypatch):
    """devolens.train.checkpoint.save_checkpoint itself writes its two files as one unit (the trainer uses it; a
    wrapper in the trainer did, and other callers of the module got two separate writes): stopped before its JSON,
    the earlier checkpoint stays whole."""
    import torch

    from devolens.train import checkpoint

    net = _net(0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    path = checkpoint.save_checkpoint(tmp_path / "c.safetensors", net, opt, extra={"epoch": 1})
    earlier = _both(path)
    real = checkpoint.write_text

    def write_text(p, text, *args, **kwargs):
        if Path(p).suffix == ".json":
            raise KeyboardInterrupt
        return real(p, text, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "write_text", write_text)
    with torch.no_grad():
        next(net.parameters()).add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(path, net, opt, extra={"epoch": 2})
    assert _both(path) == earlier and _temporaries(tmp_path) == []
    assert trainer.save_checkpoint is checkpoint.save_checkpoint
