"""A plain-PyTorch U-Net with a ResNet18/34 encoder, for inference without smp.

Importing segmentation-models-pytorch (and timm through it) costs about 2 s per process,
more than segmenting a short video. The zoo's U-Nets are rebuilt here from ``torch.nn``
only, with exactly the parameter names of ``smp.Unet`` (``encoder.layer1.0.conv1.weight``,
``decoder.blocks.0.conv1.0.weight``, ``segmentation_head.0.weight``...), so the same
safetensors file loads into either and both give the same outputs (a test checks it).

Training keeps using smp (:func:`devolens.models.architectures.build_model`); this module
is only chosen at inference by :func:`build_lite` when the card's architecture is one it
covers (``arch: unet``, ``encoder: resnet18|resnet34``).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: ResNet encoders this module can rebuild: blocks per stage (BasicBlock).
RESNET_LAYERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock (same parameter names)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """The first ``depth`` stages of a ResNet (stage widths ``width`` x 1, 2, 4, 8; torchvision's
    is 64); returns the features at each scale."""

    def __init__(self, layers: Sequence[int], in_channels: int = 3, depth: int = 5, width: int = 64):
        super().__init__()
        self.depth = int(depth)
        self.widths = tuple(int(width) << i for i in range(4))
        self.conv1 = nn.Conv2d(in_channels, int(width), 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(int(width))
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = int(width)
        for i in range(max(0, self.depth - 1)):
            planes = self.widths[i]
            blocks = [BasicBlock(inplanes, planes, 1 if i == 0 else 2)]
            blocks += [BasicBlock(planes, planes) for _ in range(layers[i] - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            inplanes = planes

    def out_channels(self, in_channels: int) -> list[int]:
        return [in_channels, self.widths[0], *self.widths[: max(0, self.depth - 1)]][: self.depth + 1]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [x]
        x = self.relu(self.bn1(self.conv1(x)))
        features.append(x)
        if self.depth >= 2:
            x = self.maxpool(x)
        for i in range(1, self.depth):
            x = getattr(self, f"layer{i}")(x)
            features.append(x)
        return features


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    # smp's Conv2dReLU: Sequential(conv, bn, relu) -> keys "<name>.0.weight", "<name>.1.*"
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    def __init__(self, cin: int, skip: int, cout: int):
        super().__init__()
        self.conv1 = _conv_bn_relu(cin + skip, cout)
        self.conv2 = _conv_bn_relu(cout, cout)

    def forward(self, x: torch.Tensor, size: tuple[int, int], skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, size=size, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class UnetDecoder(nn.Module):
    def __init__(self, encoder_channels: Sequence[int], decoder_channels: Sequence[int]):
        super().__init__()
        enc = list(encoder_channels[1:])[::-1]  # deepest first, full-resolution input dropped
        head, skips = enc[0], enc[1:] + [0]
        ins = [head, *decoder_channels[:-1]]
        self.blocks = nn.ModuleList(DecoderBlock(i, s, o) for i, s, o in zip(ins, skips, decoder_channels))

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        sizes = [tuple(f.shape[2:]) for f in features][::-1]
        feats = features[1:][::-1]
        x, skips = feats[0], feats[1:]
        for i, block in enumerate(self.blocks):
            x = block(x, sizes[i + 1], skips[i] if i < len(skips) else None)
        return x


class UnetLite(nn.Module):
    """U-Net with a ResNet encoder, parameter-compatible with ``smp.Unet``.

    Parameters
    ----------
    encoder : {"resnet18", "resnet34"}
    in_channels, classes : int
    encoder_depth : int
        Encoder stages used (1-5); input sides must be multiples of ``2**encoder_depth``.
    decoder_channels : sequence of int
        One width per decoder block (``encoder_depth`` values).
    """

    def __init__(self, encoder: str = "resnet18", in_channels: int = 3, classes: int = 1,
                 encoder_depth: int = 5, decoder_channels: Sequence[int] = (256, 128, 64, 32, 16)):
        super().__init__()
        if encoder not in RESNET_LAYERS:
            raise ValueError(f"UnetLite covers {', '.join(RESNET_LAYERS)}, not {encoder!r}")
        if len(decoder_channels) != encoder_depth:
            raise ValueError("decoder_channels needs one value per encoder stage")
        self.encoder = ResNetEncoder(RESNET_LAYERS[encoder], in_channels, encoder_depth)
        self.decoder = UnetDecoder(self.encoder.out_channels(in_channels), list(decoder_channels))
        self.segmentation_head = nn.Sequential(nn.Conv2d(decoder_channels[-1], classes, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.segmentation_head(self.decoder(self.encoder(x)))

    @torch.no_grad()
    def fuse_batchnorm(self) -> "UnetLite":
        """Fold every BatchNorm into the convolution before it (inference only, in place).

        Same outputs (to float rounding) with one pass over each activation fewer: about
        10-20% faster on CPU. The parameter names change, so load weights first.
        """
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        def fold(owner: nn.Module, conv_name: str, bn_name: str) -> None:
            conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
            if isinstance(bn, nn.BatchNorm2d):
                setattr(owner, conv_name, fuse_conv_bn_eval(conv.eval(), bn.eval()))
                setattr(owner, bn_name, nn.Identity())

        self.eval()
        fold(self.encoder, "conv1", "bn1")
        for mod in list(self.modules()):
            if isinstance(mod, BasicBlock):
                fold(mod, "conv1", "bn1")
                fold(mod, "conv2", "bn2")
                if mod.downsample is not None:
                    fold(mod.downsample, "0", "1")
            elif isinstance(mod, nn.Sequential) and len(mod) == 3 and isinstance(mod[1], nn.BatchNorm2d):
                fold(mod, "0", "1")
        return self


class ResNetTrunk(ResNetEncoder):
    """torchvision's ``resnet18`` trunk as :class:`~devolens.models.architectures.CountRegressor`
    builds it (first-stage ``width``, ``in_channels`` inputs, ``fc`` removed), with the same
    parameter names; returns the pooled features ``(N, 8 * width)``."""

    def __init__(self, in_channels: int = 3, width: int = 64):
        super().__init__(RESNET_LAYERS["resnet18"], in_channels, depth=5, width=width)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(super().forward(x)[-1]), 1))


class CountRegressorLite(nn.Module):
    """:class:`~devolens.models.architectures.CountRegressor` in plain torch (same parameter names
    and outputs, no torchvision import: about 1.4 s per process)."""

    def __init__(self, in_channels: int = 3, outputs: int = 8, width: int = 64):
        super().__init__()
        self.trunk = ResNetTrunk(in_channels, width)
        self.head = nn.Linear(8 * width, outputs)
        self.softplus = nn.Softplus()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softplus(self.head(self.trunk(x)))


def build_lite(config: dict) -> nn.Module | None:
    """A plain-torch network for a config this module covers (a :class:`UnetLite` for U-Nets
    with a ResNet18/34 encoder, a :class:`CountRegressorLite` for count regressors), else
    ``None`` (use smp / torchvision)."""
    cfg = dict(config)
    if cfg.get("kind") == "regressor":
        model = CountRegressorLite(int(cfg.get("in_channels", 3)), int(cfg.get("outputs", 8)), int(cfg.get("width", 64)))
        model.devolens_config = cfg
        return model
    if cfg.get("kind") != "segmentation" or str(cfg.get("arch", "")).lower() != "unet":
        return None
    encoder = cfg.get("encoder")
    depth = int(cfg.get("encoder_depth", 5))
    channels = cfg.get("decoder_channels")
    if encoder not in RESNET_LAYERS or not 1 <= depth <= 5:
        return None
    if channels is None:
        channels = (256, 128, 64, 32, 16)[:depth]
    if isinstance(channels, int):
        channels = [max(4, channels >> i) for i in range(depth)]
    channels = [int(c) for c in channels]
    if len(channels) != depth:
        return None
    model = UnetLite(encoder, int(cfg.get("in_channels", 3)), int(cfg.get("classes", 1)), depth, channels)
    model.devolens_config = cfg
    return model
