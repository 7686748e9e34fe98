"""The plain-torch U-Net used at inference matches smp.Unet parameter for parameter."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from devolens.models.architectures import build_model
from devolens.models.unet_lite import UnetLite, build_lite


def _randomise_batchnorm(model: torch.nn.Module) -> None:
    # fresh BatchNorm layers are the identity; random statistics make the check meaningful
    g = torch.Generator().manual_seed(1)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.rand(mod.num_features, generator=g) - 0.5)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.bias.data.copy_(torch.rand(mod.num_features, generator=g) - 0.5)


@pytest.mark.parametrize("encoder,depth,decoder,cin", [
    ("resnet18", 4, [64, 32, 16, 8], 1),   # the shipped nuclei/membrane layout
    ("resnet18", 5, None, 3),
    ("resnet34", 3, [32, 16, 8], 1),
])
def test_same_parameters_and_outputs_as_smp(encoder, depth, decoder, cin):
    torch.manual_seed(0)
    ref = build_model("unet", encoder=encoder, encoder_depth=depth, decoder_channels=decoder,
                      in_channels=cin, classes=3).eval()
    a, b = _reference_and_lite_outputs(ref, UnetLite, torch.randn(2, cin, 64, 96))
    assert a.shape == b.shape == (2, 3, 64, 96)
    assert torch.allclose(a, b, atol=1e-5)


def _reference_and_lite_outputs(ref: torch.nn.Module, cls: type, x: torch.Tensor):
    """Outputs of ``ref`` (random BatchNorm statistics) and of its plain-torch twin, which must
    be a ``cls`` with the same parameter names, loaded with ``ref``'s weights."""
    _randomise_batchnorm(ref)
    lite = build_lite(ref.devolens_config)
    assert isinstance(lite, cls)
    assert set(lite.state_dict()) == set(ref.state_dict())
    lite.load_state_dict(ref.state_dict(), strict=True)
    lite.eval()
    with torch.no_grad():
        return ref(x), lite(x)


def test_configs_it_does_not_cover_fall_back_to_smp():
    assert build_lite({"kind": "segmentation", "arch": "fpn", "encoder": "resnet18"}) is None
    assert build_lite({"kind": "segmentation", "arch": "unet", "encoder": "efficientnet-b0"}) is None
    assert build_lite({"kind": "pointset"}) is None


@pytest.mark.parametrize("width,cin,outputs", [(32, 1, 1), (16, 3, 8), (64, 1, 8)])
def test_count_regressor_same_parameters_and_outputs_as_torchvision(width, cin, outputs):
    from devolens.models.architectures import build_regressor
    from devolens.models.unet_lite import CountRegressorLite

    torch.manual_seed(0)
    ref = build_regressor(cin, outputs, width).eval()
    a, b = _reference_and_lite_outputs(ref, CountRegressorLite, torch.randn(2, cin, 96, 128))
    assert a.shape == b.shape == (2, outputs)
    assert torch.equal(a, b)


def test_zoo_inference_does_not_import_smp():
    code = ("import sys, numpy as np\n"
            "from devolens.models import load\n"
            "res = load('nuclei').predict(np.zeros((64, 96), np.float32))\n"
            "res = load('population').predict(np.zeros((64, 96), np.float32))\n"
            "print('segmentation_models_pytorch' in sys.modules, 'timm' in sys.modules, 'torchvision' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_batchnorm_folding_keeps_outputs():
    torch.manual_seed(0)
    ref = build_model("unet", encoder="resnet18", encoder_depth=4, decoder_channels=[64, 32, 16, 8],
                      in_channels=1, classes=3).eval()
    _randomise_batchnorm(ref)
    lite = build_lite(ref.devolens_config)
    lite.load_state_dict(ref.state_dict())
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        before = lite.eval()(x)
        after = lite.fuse_batchnorm()(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in lite.modules())
    assert torch.allclose(before, after, atol=1e-4)
