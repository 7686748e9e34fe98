"""Mends after the review of the GPU and fp16 work: training's bf16 check asks the GPU it runs on, evaluate's
library errors name its ``device`` argument (the CLI's ``--device`` is checked by the CLI), and livedead runs fp32
on a GPU unless bf16 is asked for, as the other predictors do. No GPU is needed: torch.cuda's answers are
monkeypatched (tests/test_s30_gpu_devices.py)."""

from __future__ import annotations

import pytest
import torch

from devolens.errors import DevolensError


def test_bf16_in_training_asks_the_gpu_it_runs_on(monkeypatch):
    """cuda:1 an A100-like GPU, the current one (cuda) a T4: each is judged by its own capability."""
    from devolens.train.trainer import effective_amp

    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "some GPU")
    monkeypatch.setattr(torch.cuda, "get_device_capability",
                        lambda device=None: (8, 0) if str(device) == "cuda:1" else (7, 5))
    assert effective_amp("bf16", torch.device("cuda:1")) == ("bf16", None)
    assert effective_amp("bf16", torch.device("cuda"))[0] == "fp16"


def test_evaluate_run_names_its_device_argument(tmp_path):
    from devolens.train.evaluate import evaluate_run

    with pytest.raises(DevolensError, match=r"^device must be auto, cpu, cuda or cuda:N"):
        evaluate_run(tmp_path, tmp_path, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DevolensError, match=r"^device 'cuda': PyTorch .*sees no CUDA GPU"):
            evaluate_run(tmp_path, tmp_path, device="cuda")


class _Net(torch.nn.Module):
    """A network that stays where it is (no CUDA here)."""

    def to(self, *args, **kwargs):
        return self


@pytest.mark.parametrize("device, fast", [("cuda", False), ("cpu", True)])
def test_livedead_asks_for_fast_arithmetic_on_the_cpu_only(monkeypatch, device, fast):
    from devolens.models import quantize
    from devolens.predict import livedead

    asked: list[bool] = []

    class Stop(Exception):
        pass

    def resolve_precision(model, precision, params, *, fast, **kw):
        asked.append(fast)
        raise Stop

    monkeypatch.setattr(livedead, "resolve_device", lambda name: name)
    monkeypatch.setattr(quantize, "resolve_precision", resolve_precision)
    with pytest.raises(Stop):
        livedead.LiveDeadPredictor(_Net(), device=device, fast=True)
    assert asked == [fast]
