"""Helpers for the predict tests: a tiny throw-away model zoo (random weights, fast)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def make_tiny_zoo(root: Path) -> Path:
    """Write nuclei, membrane and population models with tiny random networks under ``root``."""
    import torch
    from safetensors.numpy import save_file as save_np
    from safetensors.torch import save_file

    from devolens.models.architectures import build_model
    from devolens.predict.population import LETTERS

    torch.manual_seed(0)
    for name, task, classes, head in (("nuclei", "nuclei", 3, "three_class"), ("membrane", "membrane", 3, "three_class")):
        model = build_model("unet", "resnet18", in_channels=1, classes=classes, encoder_depth=3,
                            decoder_channels=(16, 8, 4))
        folder = root / name
        folder.mkdir(parents=True)
        save_file({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
                  str(folder / "weights.safetensors"))
        card = {
            "name": name, "task": task, "summary": f"tiny random {name} model for tests",
            "predictor": f"devolens.predict.segment:{'NucleiPredictor' if task == 'nuclei' else 'MembranePredictor'}",
            "architecture": model.devolens_config, "input": {"scale": 0.5, "multiple": 8, "tile": 256},
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
