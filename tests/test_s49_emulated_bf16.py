"""Session 49: a CPU without native bf16 (AVX2 only, where ``precision="auto"`` takes int8) emulates bf16 autocast,
several times slower than fp32. The magnification estimate read its features in bf16 whenever the predictor ran in a
fast arithmetic: a 2x-magnified reference frame's estimate took 41 s there against 6 s in fp32. It now reads them in
bf16 only where the device runs bf16 natively."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _zoo_helpers import shipped


def _autocasts(monkeypatch) -> list:
    """(dtype, enabled) of every torch.autocast entered from now on."""
    seen: list = []
    real = torch.autocast

    def recording(*args, **kwargs):
        seen.append((kwargs.get("dtype"), kwargs.get("enabled", True)))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "autocast", recording)
    return seen


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((192, 256), np.float32)
    yy, xx = np.mgrid[:192, :256]
    for y, x in rng.uniform(30, 160, (12, 2)):
        img += np.exp(-((yy - y) ** 2 + (xx - x * 1.3) ** 2) / (2 * 6.0 ** 2))
    return (np.clip(img, 0, 1) * 200 + rng.normal(10, 2, img.shape)).clip(0, 255).astype(np.uint8)


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped")
@pytest.mark.parametrize("native", [False, True])
def test_size_features_run_bf16_only_where_it_is_native(monkeypatch, native):
    import devolens.models.quantize as quantize
    from devolens.models import load
    from devolens.predict.sizing import style_features

    pred = load("nuclei", precision="int8")  # a fast arithmetic (int8 runs on any x86 CPU with AVX2 or VNNI)
    assert pred.network.precision != "fp32"
    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: native)
    seen = _autocasts(monkeypatch)
    feats = style_features(pred, _image())
    assert np.isfinite(feats).all()
    bf16_on = [s for s in seen if s == (torch.bfloat16, True)]
    assert bool(bf16_on) is native, seen


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped")
def test_size_features_in_fp32_agree_with_bf16s(monkeypatch):
    """The estimate does not change its answer with the arithmetic of its features (within bf16's rounding)."""
    import devolens.models.quantize as quantize
    from devolens.models import load
    from devolens.predict.sizing import style_features

    pred = load("nuclei", precision="int8")
    img = _image()
    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: False)
    fp32 = style_features(pred, img)
    monkeypatch.setattr(quantize, "bf16_fast_here", lambda: True)
    bf16 = style_features(pred, img)
    assert not np.array_equal(fp32, bf16)  # (two arithmetics did run)
    np.testing.assert_allclose(fp32, bf16, rtol=0.05, atol=0.05)
