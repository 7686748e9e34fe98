"""What the identity tests share: the founder and depth-1 classes, and a mark for tests that need the shipped
identity weights."""

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
