"""Model factory: segmentation networks, a count regressor and a point-set classifier.

Every model is described by a plain JSON-able config dict (``kind`` plus the builder's
keyword arguments), so that :func:`save_model` / :func:`load_model` can store weights as
safetensors beside a JSON config, with no pickle and no ``torch.load``.

Examples
--------
>>> m = build_model("unet", "resnet18", in_channels=1, classes=1,
...                 encoder_depth=3, decoder_channels=(16, 8, 4))
>>> y = m(torch.zeros(1, 1, 32, 32))
>>> tuple(y.shape)
(1, 1, 32, 32)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from devolens.errors import DevolensError
from devolens.io.atomic import write_text

ARCHS = ("unet", "fpn")


# ----------------------------------------------------------------------------- segmentation
def build_model(
    arch: str = "unet",
    encoder: str = "resnet18",
    in_channels: int = 1,
    classes: int = 1,
    encoder_weights: str | None = None,
    decoder_channels: Sequence[int] | int | None = None,
    encoder_depth: int = 5,
) -> nn.Module:
    """Build a segmentation network from segmentation-models-pytorch.

    Parameters
    ----------
    arch : {"unet", "fpn"}
        Decoder family.
    encoder : str
        Any smp encoder name (``"resnet18"``, ``"resnet34"``, ...).
    in_channels : int
        Channels of the input image (1 = grey, 3 = RGB).
    classes : int
        Output channels (logits), e.g. 1 for a binary mask, 3 for
        background/interior/boundary.
    encoder_weights : str, optional
        Pretrained encoder weights (e.g. ``"imagenet"``). Default None: random
        initialisation, no download (this project never reaches the network at run time).
    decoder_channels : sequence of int or int, optional
        U-Net: one width per decoder stage (as many as ``encoder_depth``); default
        ``(256, 128, 64, 32, 16)[:encoder_depth]``-like. FPN: the pyramid width (int).
    encoder_depth : int
        Number of encoder stages used (3 to 5). Input height and width must be multiples
        of ``2**encoder_depth`` pixels. Unused ResNet stages are removed, so a depth-3
        ResNet18 U-Net has about 0.7 M parameters instead of 14 M.

    Returns
    -------
    torch.nn.Module
        Maps ``(N, in_channels, H, W)`` float images to ``(N, classes, H, W)`` logits.
        The config used to build it is stored in ``model.devolens_config``.
    """
    import segmentation_models_pytorch as smp

    arch = str(arch).lower()
    if arch not in ARCHS:
        raise DevolensError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if not 1 <= int(encoder_depth) <= 5:
        raise DevolensError(f"encoder_depth must be 1..5, got {encoder_depth}")
    kwargs: dict[str, Any] = dict(
        encoder_name=encoder, encoder_weights=encoder_weights, in_channels=int(in_channels),
        classes=int(classes), encoder_depth=int(encoder_depth),
    )
    if arch == "unet":
        if decoder_channels is None:
            decoder_channels = (256, 128, 64, 32, 16)[: int(encoder_depth)]
        if isinstance(decoder_channels, int):
            decoder_channels = [max(4, decoder_channels >> i) for i in range(int(encoder_depth))]
        decoder_channels = [int(c) for c in decoder_channels]
        if len(decoder_channels) != int(encoder_depth):
            raise DevolensError(
                f"decoder_channels needs {encoder_depth} values (one per encoder stage), got {len(decoder_channels)}"
            )
        try:
            model = smp.Unet(decoder_channels=decoder_channels, **kwargs)
        except Exception as exc:  # unknown encoder etc.
            raise DevolensError(f"cannot build unet with encoder {encoder!r}: {exc}") from exc
    else:
        if int(encoder_depth) != 5:
            raise DevolensError("fpn needs encoder_depth 5")
        width = 256 if decoder_channels is None else decoder_channels
        if not isinstance(width, int):
            width = int(list(width)[0])
        if width % 32:
            raise DevolensError(f"fpn decoder_channels must be a multiple of 32, got {width}")
        try:
            model = smp.FPN(decoder_pyramid_channels=width, decoder_segmentation_channels=max(32, width // 2), **kwargs)
        except Exception as exc:
            raise DevolensError(f"cannot build fpn with encoder {encoder!r}: {exc}") from exc
        decoder_channels = width
    _trim_encoder(model.encoder, int(encoder_depth))
    model.devolens_config = {
        "kind": "segmentation", "arch": arch, "encoder": encoder, "in_channels": int(in_channels),
        "classes": int(classes), "encoder_weights": None, "decoder_channels": decoder_channels,
        "encoder_depth": int(encoder_depth),
    }
    return model


def _trim_encoder(encoder: nn.Module, depth: int) -> None:
    """Delete ResNet stages a shallow encoder never runs (they only cost memory)."""
    for stage in range(depth + 1, 6):
        name = f"layer{stage - 1}"
        if stage >= 2 and hasattr(encoder, name):
            delattr(encoder, name)
    if depth < 5 and hasattr(encoder, "fc"):
        delattr(encoder, "fc")


# ----------------------------------------------------------------------------- regression
class CountRegressor(nn.Module):
    """ResNet18 trunk + linear head with a softplus, so predicted counts are >= 0."""

    def __init__(self, in_channels: int = 3, outputs: int = 8, width: int = 64):
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        if width != 64:  # narrower trunk for tests and tiny runs
            net = _narrow_resnet18(width)
        net.conv1 = nn.Conv2d(in_channels, net.conv1.out_channels, 7, 2, 3, bias=False)
        feat = net.fc.in_features
        net.fc = nn.Identity()
        self.trunk = net
        self.head = nn.Linear(feat, outputs)
        self.softplus = nn.Softplus()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softplus(self.head(self.trunk(x)))


def _narrow_resnet18(width: int) -> nn.Module:
    from torchvision.models.resnet import BasicBlock, ResNet

    class _R(ResNet):
        def __init__(self):
            nn.Module.__init__(self)
            self._norm_layer = nn.BatchNorm2d
            self.inplanes = width
            self.dilation = 1
            self.groups = 1
            self.base_width = 64
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(BasicBlock, width, 2)
            self.layer2 = self._make_layer(BasicBlock, width * 2, 2, stride=2)
            self.layer3 = self._make_layer(BasicBlock, width * 4, 2, stride=2)
            self.layer4 = self._make_layer(BasicBlock, width * 8, 2, stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(width * 8, 1000)

    return _R()


def build_regressor(in_channels: int = 3, outputs: int = 8, width: int = 64) -> nn.Module:
    """ResNet18 regressor for per-image counts (e.g. cells per population letter).

    Parameters
    ----------
    in_channels : int
        Image channels.
    outputs : int
        Number of counts predicted (e.g. 8 for A, E, M, P, C, D, Z, total).
    width : int
        Channels of the first ResNet stage (64 = the standard ResNet18, 11 M parameters;
        16 gives a 0.7 M-parameter model for tests).

    Returns
    -------
    torch.nn.Module
        Maps ``(N, in_channels, H, W)`` images to ``(N, outputs)`` non-negative counts
        (softplus output, in cells).
    """
    model = CountRegressor(int(in_channels), int(outputs), int(width))
    model.devolens_config = {"kind": "regressor", "in_channels": int(in_channels), "outputs": int(outputs), "width": int(width)}
    return model


# ----------------------------------------------------------------------------- point sets
class PointSetClassifier(nn.Module):
    """Per-point classifier over a cloud of nuclei (PointNet with a transformer block).

    Each point is embedded by a shared MLP, mixed with the others by self-attention
    (so a point's class can depend on its neighbours), concatenated with a max-pooled
    global feature, and classified. ``mask`` marks real points in padded batches.
    """

    def __init__(self, in_features: int, classes: int, width: int = 64, heads: int = 4, layers: int = 2):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, width))
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0, batch_first=True)
        self.mixer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(), nn.Linear(width, classes))

    def forward(self, points: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """points (N, P, F) float -> logits (N, P, classes); mask (N, P) bool, True = real."""
        h = self.embed(points)
        pad = None if mask is None else ~mask.bool()
        h = self.mixer(h, src_key_padding_mask=pad)
        if pad is not None:
            g = h.masked_fill(pad[..., None], float("-inf")).max(dim=1).values
        else:
            g = h.max(dim=1).values
        g = g[:, None, :].expand_as(h)
        return self.head(torch.cat([h, g], dim=-1))


def build_pointset(in_features: int, classes: int, width: int = 64, heads: int = 4, layers: int = 2) -> nn.Module:
    """Point-set model for cell identities: per-point classification of a nucleus cloud.

    Parameters
    ----------
    in_features : int
        Features per nucleus (e.g. x, y, z normalised to the embryo, size, time).
    classes : int
        Number of identity classes.
    width, heads, layers : int
        Embedding width, attention heads and transformer layers.

    Returns
    -------
    torch.nn.Module
        ``model(points (N, P, F), mask (N, P) | None) -> logits (N, P, classes)``.
    """
    model = PointSetClassifier(int(in_features), int(classes), int(width), int(heads), int(layers))
    model.devolens_config = {
        "kind": "pointset", "in_features": int(in_features), "classes": int(classes),
        "width": int(width), "heads": int(heads), "layers": int(layers),
    }
    return model


def build_from_config(config: dict) -> nn.Module:
    """Rebuild a model from its ``devolens_config`` dict (see :func:`save_model`)."""
    cfg = dict(config)
    kind = cfg.pop("kind", None)
    if kind == "segmentation":
        return build_model(**cfg)
    if kind == "regressor":
        return build_regressor(**cfg)
    if kind == "pointset":
        return build_pointset(**cfg)
    raise DevolensError(f"unknown model kind {kind!r} in model config")


# ----------------------------------------------------------------------------- save / load
def _config_path(path: Path) -> Path:
    return path.with_suffix(".json")


def save_model(model: nn.Module, path: str | Path, config: dict | None = None, fp16: bool = False) -> Path:
    """Save weights as safetensors and the model config as JSON beside them, as one unit.

    The two files are written to temporaries and renamed in place together, the JSON last
    (:func:`devolens.io.together.write_together`): after a stop (Ctrl-C, SIGTERM) or a failure (a full disk) both
    are the new model's or both the previous one's (neither where there was none). New weights beside the previous
    JSON would load without a word, described by the other model's epoch and metrics (a run's ``best.json``, an
    ``--export``); weights alone would be refused by :func:`load_model`. A process killed outright between the two
    renames (SIGKILL, a power loss) can still leave such a pair: both files carry the same unit id
    (:data:`~devolens.io.together.UNIT_KEY`, derived from the weights), by which :func:`load_model` refuses it.

    Parameters
    ----------
    model : torch.nn.Module
        A model from this module's builders (or any module, given ``config``).
    path : str or Path
        Weights file, e.g. ``run/model.safetensors``; the config goes to ``run/model.json``.
    config : dict, optional
        Extra metadata merged into the JSON (e.g. task, input size, normalisation, metrics).
        The builder config (``model.devolens_config``) is stored under ``"model"``.
    fp16 : bool
        Store floating-point tensors in half precision (half the size; loaded back as fp32).

    Returns
    -------
    Path
        The weights path.

    Raises
    ------
    DevolensError
        A file cannot be written (:func:`~devolens.io.together.write_together`); the previous pair stays whole.
    """
    from devolens.io.tensors import save_tensors
    from devolens.io.together import UNIT_KEY, unit_id, write_together

    path = Path(path)
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if fp16 and v.is_floating_point():
            v = v.half()
        state[k] = v
    meta = dict(config or {})
    meta.pop(UNIT_KEY, None)  # (a config read back from another pair: this pair gets its own id)
    meta["model"] = getattr(model, "devolens_config", meta.get("model"))
    meta["dtype"] = "float16" if fp16 else "float32"
    meta[UNIT_KEY] = unit_id(state)  # both files: one unit
    text = json.dumps(meta, indent=2, default=_json_default)
    # the id alone in the weights' metadata (safetensors writes several keys in a random order: the same model would
    # be saved in other bytes each time; "format": "pt", which no devolens reader uses, is left out for it)
    write_together({path: lambda tmp: save_tensors(state, tmp, metadata={UNIT_KEY: meta[UNIT_KEY]}),
                    _config_path(path): lambda tmp: write_text(tmp, text)})
    return path


def load_model(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Load a model written by :func:`save_model`.

    Parameters
    ----------
    path : str or Path
        The ``.safetensors`` weights; the ``.json`` config must sit beside it.
    device : str
        Torch device for the weights.

    Returns
    -------
    (model, config)
        The model in eval mode (fp32) and the JSON config dict.

    Raises
    ------
    DevolensError
        A file missing or unreadable, weights that do not fit the config, or the two files from different saves
        (their unit ids differ: :func:`~devolens.io.together.check_unit`).
    """
    from devolens.io.tensors import load_tensors
    from devolens.io.together import check_unit
    from devolens.models.export import pair_remedy

    path = Path(path)
    cfg_path = _config_path(path)
    if not path.exists():
        raise DevolensError("model weights not found", path=path)
    if not cfg_path.exists():
        raise DevolensError("model config (.json beside the weights) not found", path=cfg_path)
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise DevolensError(f"invalid JSON: {exc}", path=cfg_path) from exc
    if not isinstance(config.get("model"), dict):
        raise DevolensError("config has no 'model' entry", path=cfg_path)
    check_unit(path, cfg_path, config, pair_remedy(path))
    model = build_from_config(config["model"])
    state = load_tensors(path, device=device)
    ref = model.state_dict()
    state = {k: (v.to(ref[k].dtype) if k in ref else v) for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DevolensError(f"weights do not match the config: {exc}", path=path) from exc
    model.to(device).eval()
    return model, config


def _json_default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
