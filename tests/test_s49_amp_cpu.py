"""Session 49: ``train.amp: bf16`` (every shipped recipe but tiny_nuclei) on a CPU without native bfloat16 (AVX2 only,
:func:`devolens.models.quantize.bf16_fast_here` False) runs fp32 with a note, as fp16 on a CPU without float16
arithmetic does: emulated bf16 took a training step of the nuclei network about 12 times as long as fp32 on an
AVX2-only AMD EPYC. A CPU with native bf16 (AVX512-BF16, AMX) and the GPUs keep bf16."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _train_data import make_pairs, tiny_recipe
from devolens.models import quantize
from devolens.train.trainer import effective_amp, train

NOTE_END = "fp32 runs instead of bf16 (as train.amp: none does)"


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"), groups=3, per_group=2, size=64)


def test_bf16_on_a_cpu_without_native_bfloat16_runs_fp32_with_a_note(monkeypatch):
    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: False)  # read at each call, not at import
    amp, note = effective_amp("bf16", torch.device("cpu"))
    assert amp == "none" and note.startswith("this CPU has no native bfloat16 (bf16 would run emulated")
    assert note.endswith(NOTE_END)
    assert effective_amp("bf16", "cpu") == (amp, note)
    assert effective_amp("none", "cpu") == ("none", None)


def test_bf16_on_a_cpu_with_native_bfloat16_stays_bf16(monkeypatch):
    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: True)
    assert effective_amp("bf16", torch.device("cpu")) == ("bf16", None)
    assert effective_amp("bf16", "cpu") == ("bf16", None)


def test_a_bf16_recipe_trained_on_a_cpu_without_native_bf16_runs_fp32_and_says_so(pairs, tmp_path, monkeypatch):
    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: False)
    autocasts: list = []
    real = torch.autocast
    monkeypatch.setattr(torch, "autocast", lambda *a, **kw: autocasts.append(kw.get("dtype")) or real(*a, **kw))
    said: list[str] = []
    rec = tiny_recipe(train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1, "amp": "bf16",
                             "device": "cpu", "max_batches": 1})
    res = train(rec, pairs, tmp_path / "run", info=said.append)
    note = [s for s in said if "no native bfloat16" in s]
    assert len(note) == 1 and note[0].startswith("note: ") and note[0].endswith(NOTE_END)
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["amp"] == "none" and summary["device"] == "cpu" and note[0][6:] in summary["notes"]
    assert torch.bfloat16 not in autocasts  # nothing ran in bf16
    assert np.isfinite(res.history["train_loss"]).all()
