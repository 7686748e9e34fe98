"""Helpers for the predict tests: a tiny throw-away model zoo (random weights, fast)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


#: the tiny networks' weights and configs, and torch's random state after building them: built once a process (a
#: ResNet18 built whole, then trimmed, took 0.2-0.3 s on a 2-core AVX2 machine, mostly its random initialisation)
_TINY: dict = {}


def _tiny_networks() -> dict:
    """``{"nuclei"|"membrane": (fp16 state, config)}`` of the seeded tiny networks, as built from seed 0; torch's
    random state is left as building them leaves it, whether they were built now or earlier."""
    import torch

    from devolens.models.architectures import build_model

    if not _TINY:
        torch.manual_seed(0)
        for name in ("nuclei", "membrane"):
            model = build_model("unet", "resnet18", in_channels=1, classes=3, encoder_depth=3,
                                decoder_channels=(16, 8, 4))
            _TINY[name] = ({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
                           model.devolens_config)
        _TINY["rng"] = torch.get_rng_state()
    torch.set_rng_state(_TINY["rng"])
    return _TINY


#: each tiny U-Net :func:`tiny_network` built, by its classes, with torch's random state after building it
_SEEDED: dict = {}


def tiny_network(classes: int = 3):
    """A fresh copy of the tiny U-Net (ResNet18 encoder of depth 3) built from seed 0 with ``classes`` outputs,
    torch's random state left as building it leaves it; built once a process."""
    import copy

    import torch

    from devolens.models.architectures import build_model

    if classes not in _SEEDED:
        torch.manual_seed(0)
        model = build_model("unet", "resnet18", in_channels=1, classes=classes, encoder_depth=3,
                            decoder_channels=(16, 8, 4))
        _SEEDED[classes] = (model, torch.get_rng_state())
    model, state = _SEEDED[classes]
    torch.set_rng_state(state)
    return copy.deepcopy(model)


def make_tiny_zoo(root: Path) -> Path:
    """Write nuclei, membrane and population models with tiny random networks under ``root``."""
    from safetensors.numpy import save_file as save_np
    from safetensors.torch import save_file

    from devolens.predict.population import LETTERS

    networks = _tiny_networks()
    for name, task, head in (("nuclei", "nuclei", "three_class"), ("membrane", "membrane", "three_class")):
        state, config = networks[name]
        folder = root / name
        folder.mkdir(parents=True)
        save_file(state, str(folder / "weights.safetensors"))
        card = {
            "name": name, "task": task, "summary": f"tiny random {name} model for tests",
            "predictor": f"devolens.predict.segment:{'NucleiPredictor' if task == 'nuclei' else 'MembranePredictor'}",
            "architecture": dict(config), "input": {"scale": 0.5, "multiple": 8, "tile": 256},
            "output": {"head": head},
            # nuclei: background flattening and hot-pixel removal on, as the shipped card (membrane: off)
            "preprocessing": {"channel": "auto", "percentiles": [1.0, 99.8], **({"flatten": 12.0, "outliers": 0.5} if task == "nuclei" else {})},
            "metrics": {"f1": {"value": 0.5, "how": "none"}}, "headline": ["f1"], "limits": "random weights",
        }
        (folder / "card.json").write_text(json.dumps(card))
        (folder / "card.md").write_text(f"# {name}\n\ntiny test model\n")
    folder = root / "population"
    folder.mkdir()
    comp = np.zeros((401, len(LETTERS)), dtype=np.float32)
    comp[:, 0] = np.arange(401) * 0.5
    comp[:, 1] = np.arange(401) * 0.5
    tau = np.arange(100, dtype=np.float32)  # a toy developmental clock: 2 cells doubling every 20 time points
    save_np({"composition": comp, "knots_x": np.array([0.0, 100.0]), "knots_y": np.array([0.0, 120.0]),
             "clock_tau": tau, "clock_log_total": (np.log(2.0) * (1 + tau / 20)).astype(np.float32)},
            str(folder / "weights.safetensors"))
    card = {"name": "population", "task": "population", "summary": "tiny", "method": "composition",
            "nuclei_model": "nuclei", "predictor": "devolens.predict.population:PopulationPredictor",
            "metrics": {}, "headline": [], "clock": {"seconds_per_time_point": 90.0}}
    (folder / "card.json").write_text(json.dumps(card))
    (folder / "card.md").write_text("# population\n")
    return root


@pytest.fixture
def tiny_zoo(tmp_path_factory, monkeypatch):
    """Point devolens.models.zoo at a tiny random zoo for the duration of a test."""
    from devolens.models import zoo

    root = make_tiny_zoo(tmp_path_factory.mktemp("zoo"))
    zoo.card.cache_clear()
    monkeypatch.setattr(zoo, "ZOO_DIR", root)
    yield root
    zoo.card.cache_clear()


def shipped(name: str) -> bool:
    """True when the real zoo ships weights for ``name``."""
    from devolens.models import zoo

    return (Path(zoo.__file__).parent / name / "weights.safetensors").is_file()
