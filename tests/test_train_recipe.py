"""Recipe validation: defaults, clear errors naming the key, shipped recipes."""

from pathlib import Path

import pytest
import yaml

from devolens.errors import DevolensError
from devolens.train.recipe import dump_recipe, load_recipe, resolved, set_key

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["tiny_nuclei", "nuclei", "membrane", "population"])
def test_shipped_recipes_are_valid(name):
    rec = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    r = resolved(rec)
    assert r["loss"]["name"] != "auto" and r["train"]["monitor"] != "auto"


def test_defaults_fill_everything():
    rec = load_recipe({"task": "segmentation"})
    assert rec["train"]["epochs"] == 20 and rec["optimizer"]["name"] == "adamw"
    assert resolved(rec)["loss"]["name"] == "bce_dice"
    pop = resolved(load_recipe({"task": "population"}))
    assert pop["model"]["arch"] == "resnet18" and pop["train"]["monitor"] == "val_mae"
    assert pop["train"]["monitor_mode"] == "min"


@pytest.mark.parametrize("raw, key", [
    ({"train": {"epoch": 3}}, "train.epoch"),
    ({"trian": {}}, "trian"),
    ({"train": {"epochs": "ten"}}, "train.epochs"),
    ({"train": {"epochs": 0}}, "train.epochs"),
    ({"optimizer": {"lr": -0.1}}, "optimizer.lr"),
    ({"optimizer": {"name": "rmsprop"}}, "optimizer.name"),
    ({"task": "classification"}, "task"),
    ({"data": {"size": [64]}}, "data.size"),
    ({"data": {"target": "classes"}}, "data.classes"),
    ({"loss": {"class_weights": "magic"}}, "loss.class_weights"),
    ({"loss": {"name": "mse"}}, "loss.name"),
    ({"augment": {"overrides": {"sparkle": True}}}, "sparkle"),
    ({"tune": {"space": {"optimizer.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2}}}},
     "optimizer.learning_rate"),
    ({"tune": {"space": {"optimizer.lr": {"type": "float", "low": 0, "high": 1, "log": True}}}}, "tune.space.optimizer.lr"),
    ({"model": "unet"}, "model"),
    ({"data": {"val_fraction": 1.0}}, "data.val_fraction: must be < 1.0"),
    # a tuning range beyond the key's own limits fails here, not at a trial after others ran
    ({"tune": {"space": {"optimizer.lr": {"type": "float", "low": -1, "high": 1e-3}}}}, "tune.space.optimizer.lr.low"),
    ({"tune": {"space": {"train.batch_size": {"type": "categorical", "choices": [0, 2]}}}},
     "tune.space.train.batch_size.choices: must be >= 1"),
])
def test_bad_recipe_names_the_key(tmp_path, raw, key):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(DevolensError) as err:
        load_recipe(path)
    assert key in str(err.value)
    assert str(path) in str(err.value)


def test_suggests_the_close_key():
    with pytest.raises(DevolensError, match="did you mean 'train.epochs'"):
        load_recipe({"train": {"epoch": 3}})


def test_invalid_yaml_and_missing_file(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("train: [unclosed")
    with pytest.raises(DevolensError, match="invalid YAML"):
        load_recipe(p)
    with pytest.raises(DevolensError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")


def test_round_trip_and_set_key(tmp_path):
    rec = load_recipe({"task": "segmentation", "optimizer": {"lr": "1e-3"}})
    assert rec["optimizer"]["lr"] == pytest.approx(1e-3)
    rec2 = set_key(rec, "optimizer.lr", 0.5)
    assert rec["optimizer"]["lr"] == pytest.approx(1e-3) and rec2["optimizer"]["lr"] == 0.5
    dump_recipe(rec2, tmp_path / "r.yaml")
    assert load_recipe(tmp_path / "r.yaml") == rec2


def test_cli_bad_recipe_exits_2_with_message(tmp_path, capsys):
    from devolens.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: many\n")
    code = main(["train", str(bad), "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "train.epochs" in err and err.startswith("error:") and "Traceback" not in err
    assert not (tmp_path / "run").exists()
