"""Mends of session 48 (training on one's own data, leftovers): a run no epoch of which beat its starting weights is
said so by `segment --model RUN` and `load(RUN)` (StartWarning, export's words); `tune --device`; evaluate says an
image whose regions both trained and validated (a one-image run) is so; a transposed mask is named as such; a recipe
whose network is not its model.init's is refused naming the key that differs."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from _train_data import make_pairs, tiny_recipe, train_tiny_run
from _train_data import not_beaten_run as _not_beaten
from devolens.cli import main
from devolens.errors import DevolensError, DevolensWarning


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("s48m14"))



# ---------------------------------------------------------------------------- 1. a run worse than its start
def test_loading_a_run_that_did_not_beat_its_start_warns_in_exports_words(tiny, tmp_path):
    from devolens.errors import StartWarning
    from devolens.models import card, load

    run, _ = tiny
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load(run, device="cpu")
    assert not [w for w in caught if issubclass(w.category, StartWarning)]  # a run without a start: no word
    ft = _not_beaten(run, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load(ft, device="cpu")
    said = [str(w.message) for w in caught if issubclass(w.category, StartWarning)]
    assert said == [card(ft)["trained"]["note"]] and said[0].startswith("no epoch beat the starting weights")
    assert issubclass(StartWarning, DevolensWarning)


def test_segment_with_such_a_run_prints_the_note(tiny, tmp_path, capsys):
    run, data = tiny
    ft = _not_beaten(run, tmp_path)
    capsys.readouterr()
    assert main(["segment", "nuclei", str(data / "images"), "--model", str(ft), "--out", str(tmp_path / "seg"),
                 "--device", "cpu", "--diameter", "none"]) == 0
    err = capsys.readouterr().err.replace("\n", " ")
    assert err.count("note: no epoch beat the starting weights") == 1 and "keep the zoo model 'nuclei'" in err
    import json

    notes = json.loads((tmp_path / "seg" / "segment.json").read_text())["notes"]  # (the record says it too)
    assert sum(n.startswith("no epoch beat the starting weights") for n in notes) == 1


# ---------------------------------------------------------------------------- 2. tune --device
def test_tune_takes_device_as_train_does(tmp_path, capsys):
    from devolens.cli import train as cli_train

    data = make_pairs(tmp_path / "A", groups=2, per_group=2, size=32)
    # the recipe's device is one --device overrides, in every trial (no GPU here: it would fail; a GPU: cuda)
    rec = tiny_recipe(train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1, "device": "cuda"},
                      tune={"trials": 1, "epochs": 1, "space": {"optimizer.lr": {"type": "float", "low": 0.001,
                                                                                 "high": 0.01, "log": True}}})
    recipe = tmp_path / "r.yaml"
    import yaml

    recipe.write_text(yaml.safe_dump(rec))
    capsys.readouterr()
    assert main(["tune", str(recipe), "--data", str(data), "--out", str(tmp_path / "bad"), "--trials", "1",
                 "--device", "tpu"]) != 0
    assert "--device" in capsys.readouterr().err and not (tmp_path / "bad").exists()  # before any study
    assert main(["tune", str(recipe), "--data", str(data), "--out", str(tmp_path / "t"), "--trials", "1",
                 "--device", "cpu"]) == 0
    runs = list((tmp_path / "t").rglob("run.json"))
    assert runs and all(json.loads(p.read_text())["device"] == "cpu" for p in runs)
    import inspect

    params = {n: inspect.signature(f).parameters["device"].default for n, f in
              (("train", cli_train.train_cmd), ("tune", cli_train.tune_cmd))}
    assert params["train"].help == params["tune"].help == cli_train.DEVICE_HELP


# ---------------------------------------------------------------------------- 3. a one-image run's image
def test_an_image_split_by_region_is_partly_training_partly_validation(tmp_path):
    from devolens.data.datasets import index_dataset
    from devolens.train.evaluate import run_sides, seen_note, split_regions

    data = make_pairs(tmp_path / "A", groups=1, per_group=1, size=32)
    df = index_dataset(data)
    name = str(df["sample"].iloc[0])
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"data": {"path": str(data)}}))
    cells = [(f"{name}[{y}:{y + 16}, {x}:{x + 16}]", f"r{y // 16}c{x // 16}") for y in (0, 16) for x in (0, 16)]
    pd.DataFrame({"sample": [s for s, _ in cells], "group": [g for _, g in cells],
                  "side": ["train", "train", "val", "train"]}).to_csv(run / "split.csv", index=False)
    sides, how, _ = run_sides(run, df)
    assert sides == ["train+val"]
    regions = split_regions(run)
    assert regions == {"train": ["r0c0", "r0c1", "r1c1"], "val": ["r1c0"]}
    said = seen_note({"train": 0, "val": 0, "both": 1, "regions": regions, "of": 1, "by": how, "run": str(run)})
    assert "1 of 1 images is partly training, partly validation of the run run" in said
    assert "regions r1c0 validated (chose its best epoch), the other 3 trained" in said
    assert "training sample" not in said


# ---------------------------------------------------------------------------- 4. a transposed mask
def test_a_transposed_mask_is_named_so():
    from devolens.data.datasets import check_mask_size

    with pytest.raises(DevolensError) as exc:
        check_mask_size((200, 256), (256, 200), "a.png + a_labels.tif")
    assert "256x200 and 200x256" in str(exc.value) and "rows and columns swapped (a transposed mask?)" in str(exc.value)
    assert "another image" not in str(exc.value)
    with pytest.raises(DevolensError, match="a mask of another image, or one resized"):
        check_mask_size((200, 256), (100, 128), "a.png + a_labels.tif")


# ---------------------------------------------------------------------------- 5. model.init of another network
def test_a_recipe_of_another_encoder_than_its_init_names_the_key(tmp_path):
    from devolens.train.trainer import train

    data = make_pairs(tmp_path / "A", groups=2, per_group=2, size=32)
    rec = tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.34}, loss={"name": "ce_dice"},
                      model={"arch": "unet", "encoder": "resnet34", "encoder_depth": 4,
                             "decoder_channels": [64, 32, 16, 8], "init": "zoo:nuclei"},
                      train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1})
    with pytest.raises(DevolensError) as exc:
        train(rec, data, tmp_path / "run", device="cpu")
    text = str(exc.value)
    assert "model.encoder is resnet34" in text and "encoder resnet18" in text and "tensors expected" not in text
    assert not (tmp_path / "run").exists()
    rec["model"].update(encoder="resnet18", decoder_channels=[64, 32, 16])
    with pytest.raises(DevolensError, match=r"model.decoder_channels is \[64, 32, 16\].*\[64, 32, 16, 8\]"):
        train(rec, data, tmp_path / "run", device="cpu")
