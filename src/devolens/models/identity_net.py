"""A light context point-set network for per-nucleus identities (the ``identity`` model).

PointNet with repeated global context: every point is embedded by a shared MLP, then in
each stage the cloud's masked max- and mean-pooled features are broadcast back and mixed
into every point (residual MLP), so a nucleus's class can depend on the whole cloud (for
example on where the other lineages sit, which fixes the dorsal-ventral orientation),
at a cost linear in the number of nuclei. About 10x cheaper per nucleus than the
transformer of :func:`devolens.models.architectures.build_pointset`, which matters for
CPU training.
"""

from __future__ import annotations

import torch
from torch import nn


def _pool(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Masked max and mean over points: (B, P, D) -> (B, 2D)."""
    if mask is None:
        return torch.cat([h.max(dim=1).values, h.mean(dim=1)], dim=-1)
    m = mask[..., None]
    mx = h.masked_fill(~m, float("-inf")).max(dim=1).values
    mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
    mean = (h * m).sum(1) / m.sum(1).clamp(min=1)
    return torch.cat([mx, mean], dim=-1)


class ContextPointNet(nn.Module):
    """Per-point classifier with ``stages`` rounds of global (max+mean pooled) context.

    ``model(points (B, P, F), mask (B, P) bool | None) -> logits (B, P, classes)``.
    """

    def __init__(self, in_features: int, classes: int, width: int = 128, stages: int = 3):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(in_features, width), nn.GELU(), nn.Linear(width, width))
        self.glob = nn.ModuleList([nn.Linear(2 * width, width) for _ in range(stages)])
        self.mix = nn.ModuleList([
            nn.Sequential(nn.LayerNorm(2 * width), nn.Linear(2 * width, width), nn.GELU(), nn.Linear(width, width))
            for _ in range(stages)
        ])
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, classes))

    def forward(self, points: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = None if mask is None else mask.bool()
        h = self.embed(points)
        for glob, mix in zip(self.glob, self.mix):
            g = glob(_pool(h, mask))[:, None, :].expand_as(h)
            h = h + mix(torch.cat([h, g], dim=-1))
        return self.head(h)


def build_identity_net(in_features: int, classes: int, width: int = 128, stages: int = 3) -> nn.Module:
    """Build a :class:`ContextPointNet` and tag it with its config (``kind`` "context_pointnet").

    Parameters
    ----------
    in_features : int
        Features per nucleus.
    classes : int
        Outputs per nucleus (founder logits followed by depth-1 logits for the identity model).
    width : int
        Hidden width.
    stages : int
        Rounds of global context.
    """
    model = ContextPointNet(int(in_features), int(classes), int(width), int(stages))
    model.devolens_config = {"kind": "context_pointnet", "in_features": int(in_features), "classes": int(classes),
                             "width": int(width), "stages": int(stages)}
    return model


def build_network(config: dict) -> nn.Module:
    """Rebuild the identity network from its config: ``context_pointnet`` here, other kinds
    through :func:`devolens.models.architectures.build_from_config` (e.g. ``pointset``)."""
    cfg = dict(config)
    if cfg.get("kind") == "context_pointnet":
        cfg.pop("kind")
        return build_identity_net(**cfg)
    from devolens.models.architectures import build_from_config

    return build_from_config(cfg)
