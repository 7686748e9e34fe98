"""What the identity tests share: the founder and depth-1 classes, a mark for tests that need the shipped identity
weights, and an untrained predictor."""

import pytest

FOUNDERS = ["AB", "C", "D", "E", "EMS", "MS", "P", "Z"]
DEPTH1 = ["AB", "ABa", "ABp", "C", "Ca", "Cp", "D", "Da", "Dp", "E", "EMS", "Ea", "Ep", "MS", "MSa", "MSp", "P",
          "Z"]

try:
    from devolens.models.zoo import ZOO_DIR

    ZOO_OK = (ZOO_DIR / "identity" / "weights.safetensors").is_file()
except Exception:  # pragma: no cover
    ZOO_OK = False
needs_zoo = pytest.mark.skipif(not ZOO_OK, reason="identity weights not shipped")


def random_predictor(smooth: str = "lineage") -> "IdentityPredictor":
    """An untrained network: not accurate, but a deterministic function of each cloud."""
    import torch

    from devolens.models.identity_net import build_identity_net
    from devolens.predict.identity import IdentityPredictor

    torch.manual_seed(0)
    net = build_identity_net(13, len(FOUNDERS) + len(DEPTH1), width=16, stages=2)
    return IdentityPredictor(net, FOUNDERS, DEPTH1, smooth=smooth)
