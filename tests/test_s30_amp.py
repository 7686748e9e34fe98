"""Mixed precision in training and evaluation: ``train.amp: fp16`` with loss scaling (its scale saved in the
checkpoint and restored on --resume), bf16 on a GPU without native bfloat16 (T4, V100: fp16 instead, with a note),
fp16 on a CPU without float16 arithmetic (fp32 instead), ``devolens evaluate --device``, and ``cuda:N`` made the
current CUDA device before anything touches CUDA.

No GPU is needed: the GPU's answers are monkeypatched (tests/test_gpu.py trains fp16 on a real one), and fp16 on
the CPU is forced where the CPU lacks float16 arithmetic (slow there, but the same loss scaling)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _train_data import make_pairs, tiny_recipe
from devolens.errors import DevolensError
from devolens.models import quantize
from devolens.train import trainer
from devolens.train.trainer import effective_amp, train


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Six 64x64 images in three groups: one training step of 4 per epoch, 2 validation images."""
    return make_pairs(tmp_path_factory.mktemp("pairs"), groups=3, per_group=2, size=64)


@pytest.fixture(scope="module")
def pairs32(tmp_path_factory):
    """``pairs`` at 32x32: for the fp16 runs whose loss scaling and resume do not depend on the image size (fp16
    convolutions are emulated on this CPU, a quarter of the pixels takes about a quarter of their time)."""
    return make_pairs(tmp_path_factory.mktemp("pairs32"), groups=3, per_group=2, size=32)


@pytest.fixture
def cpu_fp16(monkeypatch):
    """fp16 runs on this CPU as it would on one with float16 arithmetic (AVX512-FP16 / AMX-FP16)."""
    monkeypatch.setattr(quantize, "fp16_fast_here", lambda: True)


def _fp16(**train_over) -> dict:
    return tiny_recipe(train={"epochs": 2, "batch_size": 4, "overlay_samples": 0, "threads": 1, "amp": "fp16",
                              **train_over})


def _t4(monkeypatch, native: bool = False, name: str = "Tesla T4", capability=(7, 5)) -> None:
    """torch.cuda answering as on one GPU: a T4 (bf16 only emulated) or, with ``native``, an A100-like one."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native or including_emulation)
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)


# ----------------------------------------------------------------------------- the recipe
def test_recipe_takes_fp16_and_refuses_other_precisions():
    from devolens.train.recipe import load_recipe

    assert load_recipe(_fp16())["train"]["amp"] == "fp16"
    with pytest.raises(DevolensError, match=r"train\.amp: 'fp8' is not one of none, bf16, fp16"):
        load_recipe(_fp16(amp="fp8"))


# ----------------------------------------------------------------------------- which precision runs
def test_bf16_on_a_gpu_without_native_bfloat16_runs_fp16_with_a_note(monkeypatch):
    _t4(monkeypatch)
    device = trainer.resolve_device("cuda:1")  # the trainer's own resolution of train.device
    note = ("the GPU Tesla T4 (CUDA capability 7.5) has no native bfloat16: fp16 runs instead of bf16 (as train.amp: "
            "fp16 does, with loss scaling in training)")
    assert effective_amp("bf16", device) == ("fp16", note)
    assert effective_amp("bf16", trainer.resolve_device("auto")) == ("fp16", note)  # (evaluate's, too)
    for amp in ("none", "fp16"):  # asked for: run as asked
        assert effective_amp(amp, device) == (amp, None)
    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: True)  # (a CPU without it: tests/test_s49_amp_cpu.py)
    assert effective_amp("bf16", torch.device("cpu")) == ("bf16", None)  # a native-bf16 CPU's bf16 is unchanged


def test_bf16_on_a_gpu_with_native_bfloat16_stays_bf16(monkeypatch):
    _t4(monkeypatch, native=True, name="NVIDIA A100", capability=(8, 0))
    assert effective_amp("bf16", trainer.resolve_device("cuda")) == ("bf16", None)


def test_fp16_on_a_cpu_without_float16_arithmetic_runs_fp32(monkeypatch):
    monkeypatch.setattr(quantize, "fp16_fast_here", lambda: False)
    amp, note = effective_amp("fp16", torch.device("cpu"))
    assert amp == "none" and "this CPU has no float16 arithmetic" in note
    assert note.endswith("fp32 runs instead of fp16 (as train.amp: none does)")
    assert effective_amp("fp16", "cpu")[1] == note
    monkeypatch.setattr(quantize, "fp16_fast_here", lambda: True)
    assert effective_amp("fp16", "cpu") == ("fp16", None)


def test_fp16_recipe_trained_on_a_plain_cpu_runs_fp32_and_says_so(pairs, tmp_path, monkeypatch):
    monkeypatch.setattr(quantize, "fp16_fast_here", lambda: False)
    said: list[str] = []
    res = train(_fp16(epochs=1, device="cpu"), pairs, tmp_path / "run", info=said.append)  # also on a GPU machine
    note = [s for s in said if "no float16 arithmetic" in s]
    assert len(note) == 1 and note[0].startswith("note: ")
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["amp"] == "none" and summary["device"] == "cpu" and note[0][6:] in summary["notes"]
    assert "scaler" not in json.loads((tmp_path / "run" / "checkpoint.json").read_text())  # no loss scaling ran
    assert np.isfinite(res.history["train_loss"]).all()


# ----------------------------------------------------------------------------- fp16 training
def test_fp16_training_scales_the_loss_and_resumes_with_the_scale(pairs32, tmp_path, monkeypatch, cpu_fp16):
    """A run in fp16 saves its loss scale in checkpoint.json; --resume takes it back, and continues exactly as
    the run that was not interrupted."""
    rec = _fp16()
    full: list[tuple[int, int, float]] = []
    train(rec, pairs32, tmp_path / "full", epochs=3, step_callback=lambda e, s, v: full.append((e, s, v)))
    part: list[tuple[int, int, float]] = []
    res = train(rec, pairs32, tmp_path / "part", step_callback=lambda e, s, v: part.append((e, s, v)))
    assert np.isfinite(res.history["train_loss"]).all() and json.loads(
        (tmp_path / "part" / "run.json").read_text())["amp"] == "fp16"
    ckpt = tmp_path / "part" / "checkpoint.json"
    meta = json.loads(ckpt.read_text())
    assert meta["scaler"]["scale"] > 0 and meta["scaler"]["_growth_tracker"] == len(part)  # no step skipped
    assert part == full[: len(part)]

    meta["scaler"].update(scale=512.0, _growth_tracker=7)  # the state comes back as saved
    ckpt.write_text(json.dumps(meta))
    seen: list[tuple[float, int]] = []
    real_load = trainer.load_checkpoint

    def spy_load(*args, **kw):
        extra = real_load(*args, **kw)
        seen.append((kw["scaler"].get_scale(), kw["scaler"]._get_growth_tracker()))
        return extra

    monkeypatch.setattr(trainer, "load_checkpoint", spy_load)
    resumed: list[tuple[int, int, float]] = []
    res = train(rec, pairs32, tmp_path / "part", epochs=3, resume=True,
                step_callback=lambda e, s, v: resumed.append((e, s, v)))
    assert seen == [(512.0, 7)] and len(res.history) == 3
    assert json.loads(ckpt.read_text())["scaler"]["_growth_tracker"] == 7 + len(resumed)
    # a power-of-two scale changes no fp32 number: the losses are those of the uninterrupted run
    assert [v for *_, v in resumed] == pytest.approx([v for e, _, v in full if e == 2], rel=1e-6, abs=1e-7)


class _InfGrad(torch.autograd.Function):
    """The loss as it is, with an infinite gradient on the steps of ``_InfGrad.steps`` (counted from 0)."""

    steps: set[int] = set()
    calls = 0

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        step, _InfGrad.calls = _InfGrad.calls, _InfGrad.calls + 1
        return grad * float("inf") if step in _InfGrad.steps else grad


@pytest.fixture
def inf_gradients(monkeypatch):
    """The training loss's gradient made infinite on chosen steps (``_InfGrad.steps``); its value stays finite."""
    real = trainer._loss_fn

    def loss_fn(recipe, train_ds):
        fn, weights = real(recipe, train_ds)
        return (lambda y, target, distance=None: _InfGrad.apply(fn(y, target, distance))), weights

    monkeypatch.setattr(trainer, "_loss_fn", loss_fn)
    _InfGrad.calls = 0
    return _InfGrad


def test_a_step_the_scaler_skips_is_no_divergence(pairs, tmp_path, cpu_fp16, inf_gradients):
    inf_gradients.steps = {0}
    res = train(_fp16(), pairs, tmp_path / "run")
    assert len(res.history) == 2 and np.isfinite(res.history["train_loss"]).all()
    scaler = json.loads((tmp_path / "run" / "checkpoint.json").read_text())["scaler"]
    assert scaler["scale"] == 32768.0 and scaler["_growth_tracker"] == 1  # halved once, one good step since


def test_gradients_that_stay_infinite_are_a_divergence(pairs, tmp_path, monkeypatch, cpu_fp16, inf_gradients):
    inf_gradients.steps = set(range(100))
    monkeypatch.setattr(trainer, "MIN_LOSS_SCALE", 65536.0)  # one halving is a collapse (not 17 slow fp16 steps)
    with pytest.raises(DevolensError, match=r"training diverged \(the gradients are NaN or infinite even without "
                                            r"loss scaling\) at epoch 1; lower optimizer.lr \(or train in fp32 with "
                                            r"train.amp: none"):
        train(_fp16(), pairs, tmp_path / "run")


def test_a_short_run_whose_every_step_was_skipped_is_a_divergence(pairs, tmp_path, cpu_fp16, inf_gradients):
    """Two skipped steps leave the scale far above MIN_LOSS_SCALE (17 halvings), but the weights untrained: an error,
    not a finished run."""
    inf_gradients.steps = set(range(100))
    with pytest.raises(DevolensError, match=r"training diverged \(no training step changed the weights: their "
                                            r"gradients were NaN or infinite at every step\) at epoch 2; lower "
                                            r"optimizer.lr \(or train in fp32"):
        train(_fp16(), pairs, tmp_path / "run")


# ----------------------------------------------------------------------------- devices
def test_a_run_on_cuda_n_makes_it_the_current_device_first(pairs, tmp_path, monkeypatch):
    """cuda:N is the current CUDA device before any model is built or loader made (the pin-memory thread would
    open a context on GPU 0); cpu and a bare cuda leave the current device alone."""
    calls: list = []

    class Stop(Exception):
        pass

    def set_device(device):
        calls.append(("set_device", torch.device(device)))
        raise Stop

    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    real_build = trainer.build_from_recipe
    monkeypatch.setattr(trainer, "build_from_recipe", lambda rec: calls.append("build") or real_build(rec))
    monkeypatch.setattr(trainer, "resolve_device", lambda name, option="train.device": torch.device(name))
    with pytest.raises(Stop):
        train(tiny_recipe(train={"epochs": 1, "device": "cuda:1"}), pairs, tmp_path / "run")
    assert calls == [("set_device", torch.device("cuda:1"))]
    trainer.use_device(torch.device("cuda"))
    trainer.use_device(torch.device("cpu"))
    assert len(calls) == 1


def test_evaluate_takes_a_device_and_says_the_precision_it_ran(pairs, tmp_path, monkeypatch, capsys):
    from devolens.cli import main
    from devolens.train.evaluate import evaluate_run

    assert main(["evaluate", "--help"]) == 0
    assert "--device" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "nowhere"), "--data", str(pairs), "--device", "tpu"]) == 2
    assert "--device must be auto, cpu, cuda or cuda:N" in capsys.readouterr().err

    monkeypatch.setattr(quantize, "fp16_fast_here", lambda: False)
    train(_fp16(epochs=1), pairs, tmp_path / "run")
    res = evaluate_run(tmp_path / "run", pairs, device="cpu")
    assert res["device"] == "cpu" and res["amp"] == "none"
    assert any(n.endswith("fp32 runs instead of fp16 (as train.amp: none does)") for n in res["notes"])
    assert main(["evaluate", str(tmp_path / "run"), "--data", str(pairs), "--device", "cpu"]) == 0
    assert "note: this CPU has no float16 arithmetic" in " ".join(capsys.readouterr().err.split())
    if not torch.cuda.is_available():
        assert main(["evaluate", str(tmp_path / "run"), "--data", str(pairs), "--device", "cuda"]) == 2
        assert "sees no CUDA GPU" in capsys.readouterr().err
