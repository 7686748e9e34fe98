"""What the live/dead output tests share: a tiny untrained network (a module-scoped fixture, ``weights``), and a
network that calls live and dead from the channels themselves (``ChannelModel``, ``channel_predictor``)."""

import pytest
import torch


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A tiny untrained live/dead network (its calls are arbitrary; these tests check where they go)."""
    from devolens.models.architectures import build_model, save_model

    torch.manual_seed(0)
    net = build_model("unet", "resnet18", in_channels=2, classes=3, encoder_depth=3, decoder_channels=(16, 8, 4))
    return save_model(net, tmp_path_factory.mktemp("model") / "m.safetensors", {"task": "livedead"}, fp16=True)


class ChannelModel(torch.nn.Module):
    """Logits that make 'dead' where Draq7 is bright, 'live' where only Hoechst is."""

    def forward(self, x):
        h, d = x[:, :1], x[:, 1:2]
        return torch.cat([torch.full_like(h, 0.55), h, d + 0.1 * h], 1) * 20


def channel_predictor(**kw):
    """A live/dead predictor of :class:`ChannelModel` in 64-px windows (fp32, objects of 4 px and more)."""
    from devolens.predict.livedead import LiveDeadPredictor

    return LiveDeadPredictor(ChannelModel(), window=64, overlap=16, fast=False, min_area=4, **kw)
