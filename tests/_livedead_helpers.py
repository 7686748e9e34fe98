"""What the live/dead output tests share: a tiny untrained network (a module-scoped fixture, ``weights``)."""

import pytest
import torch


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A tiny untrained live/dead network (its calls are arbitrary; these tests check where they go)."""
    from devolens.models.architectures import build_model, save_model

    torch.manual_seed(0)
    net = build_model("unet", "resnet18", in_channels=2, classes=3, encoder_depth=3, decoder_channels=(16, 8, 4))
    return save_model(net, tmp_path_factory.mktemp("model") / "m.safetensors", {"task": "livedead"}, fp16=True)
