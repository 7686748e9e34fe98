"""int8 inference: calibration, the quantized U-Net against the float one, precision choice."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from _zoo_helpers import shipped
from devolens.errors import DevolensError
from devolens.models.quantize import calibrate, int8_supported, quantizable, quantize
from devolens.models.unet_lite import UnetLite
from devolens.predict._engine import ImageNetwork
from devolens.predict.segment import NucleiPredictor

needs_int8 = pytest.mark.skipif(not int8_supported(), reason="this PyTorch build has no oneDNN int8 engine")


def _net(depth: int = 3, decoder=(32, 16, 8)) -> UnetLite:
    torch.manual_seed(0)
    net = UnetLite("resnet18", 1, 3, depth, decoder).eval()
    g = torch.Generator().manual_seed(1)
    for m in net.modules():  # BatchNorm statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return net.fuse_batchnorm()


def _images(n: int, h: int = 64, w: int = 96, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    out = np.zeros((n, 1, h, w), np.float32)
    for i in range(n):
        for _ in range(8):
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(3, 8)
            out[i, 0] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return torch.from_numpy(np.clip(out, 0, 1))


def test_only_folded_unet_lite_is_quantizable():
    assert quantizable(_net())
    assert not quantizable(UnetLite("resnet18", 1, 3, 3, (32, 16, 8)))  # BatchNorm not folded
    assert not quantizable(torch.nn.Conv2d(1, 3, 3))


@needs_int8
@pytest.mark.parametrize("depth,decoder", [(3, (32, 16, 8)), (4, (64, 32, 16, 8)), (5, (32, 16, 16, 8, 8))])
def test_int8_network_follows_the_float_one(depth, decoder):
    net = _net(depth, decoder)
    params = calibrate(net, [_images(4, seed=s) for s in range(3)])
    assert "input" in params and "encoder.layer1.0.add" in params and "decoder.blocks.0.cat" in params
    assert all(scale > 0 and 0 <= zero <= 255 for scale, zero in params.values())
    qnet = quantize(net, params)
    x = _images(2, 64, 128, seed=9)  # another size than calibration: the graph is size-agnostic
    with torch.inference_mode():
        ref, got = net(x), qnet(x)
    assert got.shape == ref.shape and got.dtype == torch.float32
    # the spatial variation of the logits (what the image changes) is kept: about 7 % error
    # here, against 100 % or more with activation scales 20x off either way
    ref_c, got_c = ref - ref.mean(dim=(2, 3), keepdim=True), got - got.mean(dim=(2, 3), keepdim=True)
    err = (got_c - ref_c).abs().mean() / ref_c.abs().mean()
    assert err < 0.25, f"relative error {err:.3f}"
    assert (got.argmax(1) == ref.argmax(1)).float().mean() > 0.95


@needs_int8
def test_parameters_of_another_network_are_refused():
    params = calibrate(_net(), [_images(2)])
    other = _net(depth=4, decoder=(32, 16, 8, 8))
    with pytest.raises(DevolensError, match="do not fit"):
        quantize(other, params)


def test_calibration_needs_images():
    with pytest.raises(DevolensError, match="at least one batch"):
        calibrate(_net(), [])


@needs_int8
def test_precision_auto_picks_int8_only_with_parameters(monkeypatch):
    import devolens.models.quantize as q

    monkeypatch.setattr(q, "int8_fast_here", lambda: True)
    monkeypatch.setattr(q, "bf16_fast_here", lambda: True)  # (a CPU with VNNI has AVX-512: native bf16)
    net = _net()
    params = calibrate(net, [_images(2)])
    assert ImageNetwork(net, multiple=32, int8_params=params).precision == "int8"
    assert ImageNetwork(_net(), multiple=32).precision == "bf16"  # no calibration
    assert ImageNetwork(_net(), multiple=32, int8_params=params, fast=False).precision == "fp32"
    assert ImageNetwork(_net(), multiple=32, int8_params=params, precision="bf16").precision == "bf16"
    assert ImageNetwork(_net(), multiple=32, int8_params=params, backend="torch", device="cpu").precision == "int8"
    monkeypatch.setattr(q, "bf16_fast_here", lambda: False)  # (AVX-VNNI without AVX-512, e.g. Alder Lake)
    assert ImageNetwork(_net(), multiple=32, int8_params=params).precision == "int8"
    assert ImageNetwork(_net(), multiple=32).precision == "fp32"  # no calibration, bf16 emulated: fp32


def test_precision_errors_are_user_errors():
    with pytest.raises(DevolensError, match="precision must be"):
        ImageNetwork(_net(), precision="int4")
    with pytest.raises(DevolensError, match="no int8 calibration"):
        ImageNetwork(_net(), precision="int8")


@needs_int8
def test_int8_predictor_matches_float_predictor_on_blobs():
    net = _net()
    params = calibrate(net, [_images(4, seed=s) for s in range(2)])
    img = (_images(1, 96, 128, seed=5)[0, 0].numpy() * 200).astype(np.uint8)
    a = NucleiPredictor(_net(), scale=1.0, precision="fp32").predict(img)
    b = NucleiPredictor(_net(), scale=1.0, precision="int8", int8_params=params).predict(img)
    assert b.labels.shape == img.shape
    assert np.abs(a.probability - b.probability).mean() < 0.05


@needs_int8
@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped")
def test_shipped_nuclei_int8_agrees_with_bf16_on_a_render():
    from devolens.lineage.simulate import simulate_embryo
    from devolens.models import load, zoo
    from devolens.render.nuclei import render_nuclei_frame
    from devolens.train.metrics import instance_scores

    assert zoo.card("nuclei").get("int8", {}).get("activations"), "the shipped nuclei card has int8 parameters"
    table = simulate_embryo(7, n_cells=80)
    t = int(table.groupby("time").size().index[-1])
    frame = render_nuclei_frame(table, t, size=(256, 376), seed=4, rgb=True)
    from devolens.models.quantize import PrecisionWarning, bf16_fast_here, int8_fast_here, int8_reduced_here

    # the default where fast: int8 with VNNI/AMX or (7-bit activations) on AVX2 without native bf16, else bf16
    # where native, else fp32
    int8 = int8_fast_here() or (int8_reduced_here() and not bf16_fast_here())
    default = "int8" if int8 else "bf16" if bf16_fast_here() else "fp32"
    assert load("nuclei").network.precision == default
    with warnings.catch_warnings():  # (int8 asked for without VNNI/AMX says so: test_s39_cpu_arith)
        warnings.simplefilter("ignore", PrecisionWarning)
        q = load("nuclei", precision="int8")
    b = load("nuclei", precision="bf16").predict(frame.image)
    a = q.predict(frame.image)
    assert instance_scores(a.labels, b.labels)["f1"] > 0.9  # the two find the same nuclei
    assert abs(instance_scores(a.labels, frame.labels)["f1"] - instance_scores(b.labels, frame.labels)["f1"]) < 0.05


@needs_int8
def test_auto_keeps_bf16_on_cpus_without_vnni(monkeypatch):
    import devolens.models.quantize as q

    net = _net()
    params = calibrate(net, [_images(2)])
    monkeypatch.setattr(q, "int8_fast_here", lambda: False)
    monkeypatch.setattr(q, "int8_reduced_here", lambda: True)  # x86 with AVX2
    monkeypatch.setattr(q, "bf16_fast_here", lambda: True)  # e.g. Skylake-X: AVX-512 without VNNI
    assert ImageNetwork(_net(), multiple=32, int8_params=params).precision == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an x86 CPU with AVX2: int8 was measured there, no word
        assert ImageNetwork(_net(), multiple=32, int8_params=params, precision="int8").precision == "int8"
    monkeypatch.setattr(q, "bf16_fast_here", lambda: False)  # AVX2 only: bf16 emulated, int8 with 7-bit activations
    assert ImageNetwork(_net(), multiple=32, int8_params=params).precision == "int8"
    monkeypatch.setattr(q, "int8_reduced_here", lambda: False)  # neither (an ARM CPU): fp32, int8 with a word
    assert ImageNetwork(_net(), multiple=32, int8_params=params).precision == "fp32"
    with pytest.warns(q.PrecisionWarning, match="measured on x86 CPUs with AVX2 or VNNI/AMX only"):
        assert ImageNetwork(_net(), multiple=32, int8_params=params, precision="int8").precision == "int8"


@needs_int8
def test_int8_tiles_large_images_like_the_float_network(monkeypatch):
    import devolens.models.quantize as q

    monkeypatch.setattr(q, "int8_fast_here", lambda: True)  # 8-bit activations on any CPU (7-bit: ~34 % error here)
    net = _net()
    params = calibrate(net, [_images(4, seed=s) for s in range(2)])
    img = (_images(1, 200, 296, seed=6)[0, 0].numpy() * 200).astype(np.uint8)
    kw = dict(scale=1.0, tile=64, batch_size=4)
    a = NucleiPredictor(_net(), precision="fp32", **kw).predict(img)
    b = NucleiPredictor(_net(), precision="int8", int8_params=params, **kw).predict(img)
    assert b.labels.shape == img.shape and b.probability.shape == img.shape
    # the variation over the image is kept through the tiles (~12 % error; ~87 % with
    # activation scales 8x off)
    pa, pb = a.probability - a.probability.mean(), b.probability - b.probability.mean()
    assert np.abs(pb - pa).mean() / np.abs(pa).mean() < 0.3


def test_resolve_precision_on_other_devices():
    from devolens.models.quantize import resolve_precision

    net = _net()
    params = {"input": [0.01, 0]}  # presence is what counts here
    assert resolve_precision(net, "auto", params, fast=True, device="cuda", multiple=32) == "bf16"
    assert resolve_precision(net, "auto", params, fast=False, device="cuda", multiple=32) == "fp32"
    assert resolve_precision(net, "fp32", params, fast=True, device="cuda:0", multiple=32) == "fp32"
    with pytest.raises(DevolensError, match="CPU torch backend only"):
        resolve_precision(net, "int8", params, fast=True, device="cuda", multiple=32)
    with pytest.raises(DevolensError, match="cannot be quantized"):
        resolve_precision(net, "int8", params, fast=True, device="cpu", multiple=4)  # inputs off its grid
