"""Every shipped model's card records the sha256 of its weights (``weights_sha256``), identity's and livedead's too:
weights replaced without their card are caught (``devolens models show`` warns), and the scripts that write those two
cards (benchmarks/train_identity.py, scripts/eval_livedead.py) write the field from the weights they ship."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from devolens.cli import main
from devolens.models import zoo
from devolens.models.export import export_shipped
from devolens.provenance import file_sha256

ROOT = Path(__file__).resolve().parents[1]


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _md_line(digest: str) -> str:
    """card.md's line on the weights, as devolens.models.export.card_md writes it."""
    return f"`weights.safetensors`, sha256 `{digest}` (`sha256sum weights.safetensors` checks a copy)"


def test_every_shipped_card_records_the_sha256_of_its_weights():
    """All five shipped cards (not only those scripts/zoo_ship.py writes) give their weights' sha256 in card.json and
    in card.md's Weights section."""
    names = zoo.available()
    assert {"identity", "livedead", "nuclei", "membrane", "population"} <= set(names)
    for name in names:
        folder = zoo.ZOO_DIR / name
        digest = file_sha256(folder / "weights.safetensors")
        assert zoo.card(name).get("weights_sha256") == digest == zoo.weights_sha256(name), name
        md = (folder / "card.md").read_text()
        assert f"## Weights\n\n{_md_line(digest)}\n" in md, name


@pytest.mark.parametrize("name", ["identity", "livedead"])
def test_models_show_warns_of_weights_its_card_does_not_record(name, tmp_path, capsys):
    """A copy of the identity or livedead model (devolens models export) is shown without a warning; with its weights
    altered afterwards, `models show FOLDER` warns (weights_sha256) and still shows it."""
    out = tmp_path / name
    export_shipped(name, out)
    assert main(["models", "show", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning:" not in captured.err
    weights = out / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one byte of the last tensor changed
    weights.write_bytes(bytes(data))
    assert main(["models", "show", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "warning:" in err and "weights_sha256" in err and file_sha256(weights) in err
    assert json.loads(captured.out)["files"]["weights"]["sha256"] == file_sha256(weights)


def test_eval_livedead_writes_the_sha256_of_the_weights_it_ships(tmp_path, monkeypatch):
    """scripts/eval_livedead.py --zoo records the sha256 of the weights it copies into the zoo folder (card.json and
    card.md); splicing an int8 section (zoo_int8.py, --int8-card) records the folder's weights as they are then."""
    from devolens.models.architectures import build_model, save_model

    ev = _module(ROOT / "scripts" / "eval_livedead.py", "_s37_eval_livedead")
    model = build_model("unet", "resnet18", in_channels=2, classes=3, decoder_channels=(8, 8, 8), encoder_depth=3)
    weights = save_model(model, tmp_path / "run" / "model.safetensors", {"steps": 3, "init": None}, fp16=True)
    folder = tmp_path / "zoo" / "livedead"
    monkeypatch.setattr(ev, "ZOO", folder)
    keys = ("pr_auc_live", "pr_auc_dead", "iou_live", "iou_dead", "object_f1_live", "object_f1_dead",
            "object_f1_any", "fraction_dead_mae")
    per_well = [{"well": f"w{i}.tif", "true_fraction_dead": 0.3, "pred_fraction_dead": 0.3} for i in range(3)]
    ev.ship(str(weights), {k: 0.9 for k in keys} | {"wells": 3}, per_well, "test wells", "bf16", "270x360")
    digest = file_sha256(weights)
    card = json.loads((folder / "card.json").read_text())
    assert card["weights_sha256"] == digest == file_sha256(folder / "weights.safetensors")
    assert digest != file_sha256(zoo.ZOO_DIR / "livedead" / "weights.safetensors")
    assert _md_line(digest) in (folder / "card.md").read_text()

    other = build_model("unet", "resnet18", in_channels=2, classes=3, decoder_channels=(8, 8, 8), encoder_depth=3)
    save_model(other, folder / "weights.safetensors", {"steps": 4, "init": None}, fp16=True)
    new = file_sha256(folder / "weights.safetensors")
    assert new != digest
    ev.splice_int8_section(folder, card)
    spliced = json.loads((folder / "card.json").read_text())
    assert spliced["weights_sha256"] == new and list(spliced)[-1] == "metrics_setting"
    assert _md_line(new) in (folder / "card.md").read_text() and digest not in (folder / "card.md").read_text()


def test_train_identity_writes_the_sha256_of_the_weights_it_writes(tmp_path):
    """benchmarks/train_identity.py's write_zoo records the sha256 of the weights.safetensors it writes (the card's
    last key, and card.md's Weights section), not the shipped model's."""
    from test_zoo_scripts import _identity_table

    ti = _module(ROOT / "benchmarks" / "train_identity.py", "_s37_train_identity")
    shipped = zoo.card("identity")
    res, mean = _identity_table((zoo.ZOO_DIR / "identity" / "card.md").read_text())

    class Pred:  # what write_zoo reads of a trained predictor
        model = torch.nn.Linear(3, 2)
        architecture = {k: v for k, v in shipped["architecture"].items() if k != "parameters"}

    folder = tmp_path / "identity"
    ti.write_zoo(folder, Pred(), res, mean, {}, "python benchmarks/train_identity.py --recipe r.yaml", 1.0)
    digest = file_sha256(folder / "weights.safetensors")
    card = json.loads((folder / "card.json").read_text())
    assert card["weights_sha256"] == digest != shipped["weights_sha256"]
    assert list(card)[-1] == "weights_sha256"
    assert _md_line(digest) in (folder / "card.md").read_text()
