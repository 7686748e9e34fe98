"""Models of your own: a training run used by path, exported as a zoo-style folder, and refused
with a clear message when the predictors could not feed it as it was trained."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _train_data import make_pairs, tiny_recipe
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.models import zoo
from devolens.models.export import card_from_run, export_run
from devolens.predict.postprocess import prepare_image
from devolens.predict.segment import MembranePredictor, NucleiPredictor


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A one-epoch boundary-target run on tiny disc images (the weights' quality does not matter here)."""
    from devolens.train.trainer import train

    root = tmp_path_factory.mktemp("own")
    data = make_pairs(root / "data", groups=3, per_group=4, size=64)
    rec = tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.34, "normalize": "percentile"},
                      loss={"name": "ce_dice"}, train={"epochs": 1, "batch_size": 4, "threads": 1, "monitor": "val_f1"})
    train(rec, data, root / "run")
    return root / "run"


def _image():
    from _train_data import disc_frame

    img, _ = disc_frame(np.random.default_rng(1), size=96)
    return img[:64]


def test_a_run_loads_by_path_as_nuclei_or_membrane(run):
    card = card_from_run(run)
    assert card["task"] == "nuclei" and card["output"]["head"] == "three_class" and card["weights_file"] == "best.safetensors"
    assert card["preprocessing"]["percentiles"] == [1.0, 99.8] and card["input"]["scale"] == 1.0
    assert card["preprocessing"]["channel"] == "max"  # RGB read as the training data were (to_channels)
    assert set(card["metrics"]) >= {"val_f1", "val_loss"} and "not held-out" in card["metrics_heading"]
    assert not {k for k in card["metrics"] if "seconds" in k}  # the history's timings are not metrics
    pred = zoo.load(run)
    assert isinstance(pred, NucleiPredictor) and pred.network.scale == 1.0
    res = pred.predict(_image())
    assert res.labels.shape == (64, 96)
    assert isinstance(zoo.load(str(run), kind="membrane"), MembranePredictor)
    assert zoo.load(run, scale=0.5).network.scale == 0.5  # predictor options pass through


def test_export_writes_a_zoo_folder_that_predicts_like_the_run(run, tmp_path):
    out = tmp_path / "mine"
    card = export_run(run, out, scale=1.0)
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "card.md", "weights.safetensors"]
    assert json.loads((out / "card.json").read_text())["name"] == "mine" and "weights_file" not in card
    assert "--model" in (out / "card.md").read_text()
    from safetensors.torch import load_file

    assert all(v.dtype.is_floating_point is False or str(v.dtype) == "torch.float16"
               for v in load_file(str(out / "weights.safetensors")).values())
    a, b = zoo.load(run, precision="fp32"), zoo.load(out, precision="fp32")
    img = _image()
    np.testing.assert_allclose(a.predict(img).probability, b.predict(img).probability, atol=2e-2)  # fp16 weights
    again = export_run(run, out, scale=0.5)  # an earlier export is replaced (a run trained further)
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "card.md", "weights.safetensors"]
    assert json.loads((out / "card.json").read_text())["input"]["scale"] == again["input"]["scale"] == 0.5
    (out / "notes.txt").write_text("mine")  # ...but not a folder holding anything else
    with pytest.raises(DevolensError, match="not an empty folder or an earlier export"):
        export_run(run, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_cli_segment_with_a_run_and_an_export(run, tmp_path, capsys):
    img = tmp_path / "frame.png"
    import imageio.v3 as iio

    iio.imwrite(img, _image())
    assert main(["segment", "nuclei", str(img), "--model", str(run), "--out", str(tmp_path / "seg")]) == 0
    assert (tmp_path / "seg" / "labels" / "frame_labels.tif").is_file()
    capsys.readouterr()
    for diameter in ("auto", "30"):  # no size model, no reference size: the message says what works
        assert main(["segment", "nuclei", str(img), "--model", str(run), "--diameter", diameter,
                     "--out", str(tmp_path / "d")]) == 2
        assert "leave the diameter out" in capsys.readouterr().err and not (tmp_path / "d").exists()
    assert main(["models", "export", str(run), "--to", str(tmp_path / "exp"), "--scale", "0.5"]) == 0
    assert json.loads((tmp_path / "exp" / "card.json").read_text())["input"]["scale"] == 0.5
    assert main(["segment", "nuclei", str(img), "--model", str(tmp_path / "exp"), "--out", str(tmp_path / "s2")]) == 0
    assert main(["segment", "membrane", str(img), "--model", str(tmp_path / "exp"), "--out", str(tmp_path / "s3")]) == 2
    assert "is a 'nuclei' model" in capsys.readouterr().err
    from devolens.cli.predict import _load_predictor, _preparation

    # no --color: the card's own rule (max, as the run's training data were read); --color overrides it
    assert _load_predictor(str(run), "nuclei", 1, True, "torch", channel=None).network.channel == "max"
    assert _load_predictor(str(run), "nuclei", 1, True, "torch", channel="green").network.channel == "green"
    assert _preparation(str(run), None, None)[0] == "max" and _preparation("nuclei", None, None)[0] == "auto"
    assert main(["models", "show", str(tmp_path / "exp")]) == 0
    assert "validation split" in capsys.readouterr().out
    capsys.readouterr()
    assert main(["models", "export", str(tmp_path / "data_nope"), "--to", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "not a training run" in err and not (tmp_path / "x").exists()


def test_a_run_trained_at_a_scale_segments_at_that_scale(tmp_path):
    from devolens.data.datasets import SegmentationDataset
    from devolens.train.trainer import train

    data = make_pairs(tmp_path / "data", groups=3, per_group=2, size=64)
    images = sorted((data / "images").iterdir())
    masks = sorted((data / "masks").iterdir())
    sample = SegmentationDataset(images, masks, target="boundary", scale=0.5, pad_multiple=8)[0]
    assert sample["image"].shape[-2:] == (32, 32) and sample["target"].shape[-2:] == (32, 32)
    rec = tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.34, "scale": 0.5},
                      loss={"name": "ce_dice"}, train={"epochs": 1, "batch_size": 4, "threads": 1, "monitor": "val_f1"})
    train(rec, data, tmp_path / "run")
    assert card_from_run(tmp_path / "run")["input"]["scale"] == 0.5
    assert zoo.load(tmp_path / "run").network.scale == 0.5
    assert card_from_run(tmp_path / "run", scale=1.0)["input"]["scale"] == 1.0  # --scale overrides
    with pytest.raises(DevolensError, match="data.size and data.scale"):
        train(tiny_recipe(data={"size": [32, 32], "scale": 0.5}), data, tmp_path / "bad")


@pytest.mark.parametrize("change, message", [
    ({"task": "population"}, "describes no count regressor"),  # (a count run is used since the 56th session)
    ({"input": {"channels": 3}}, "3-channel"),
    ({"input": {"size": [64, 64]}}, "data.size"),
    ({"input": {"target": "classes"}}, "target 'classes'"),
    ({"input": {"normalize": "log"}}, "normalize"),
])
def test_runs_the_predictors_cannot_feed_are_refused(run, tmp_path, change, message):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cfg = json.loads((copy / "best.json").read_text())
    for key, value in change.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) else value
    (copy / "best.json").write_text(json.dumps(cfg))
    with pytest.raises(DevolensError, match=message):
        card_from_run(copy)


def test_a_membrane_run_needs_the_boundary_target(run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cfg = json.loads((copy / "best.json").read_text())
    cfg["input"]["target"] = "semantic"
    (copy / "best.json").write_text(json.dumps(cfg))
    assert card_from_run(copy)["output"]["head"] == "foreground"  # nuclei: a foreground mask is enough
    with pytest.raises(DevolensError, match="membrane segmentation needs"):
        card_from_run(copy, kind="membrane")


def test_zoo_names_win_over_folders_and_unknown_names_say_what_works(tmp_path, monkeypatch):
    from _zoo_helpers import make_tiny_zoo

    root = make_tiny_zoo(tmp_path / "zoo")
    monkeypatch.setattr(zoo, "ZOO_DIR", root)
    zoo.card.cache_clear()
    try:
        (tmp_path / "nuclei").mkdir()
        (tmp_path / "nuclei" / "card.json").write_text("{}")
        monkeypatch.chdir(tmp_path)
        assert zoo.model_folder("nuclei") is None and zoo.card("nuclei")["task"] == "nuclei"
        assert zoo.model_folder("./nuclei").resolve() == (tmp_path / "nuclei").resolve()
        with pytest.raises(DevolensError, match="a training run"):
            zoo.card("no_such_model")
        (tmp_path / "empty").mkdir()
        with pytest.raises(DevolensError, match="not a training run .* nor a model folder"):
            zoo.load(tmp_path / "empty")
    finally:
        zoo.card.cache_clear()


def test_dtype_normalisation_of_runs_trained_without_percentiles():
    u8 = np.array([[0, 255], [51, 102]], np.uint8)
    np.testing.assert_allclose(prepare_image(u8, "auto", 1.0, ()), u8 / 255.0, rtol=1e-6)
    u16 = np.array([[0, 65535], [6553, 0]], np.uint16)
    np.testing.assert_allclose(prepare_image(u16, "auto", 1.0, ()), u16 / 65535.0, rtol=1e-6)
    f = np.array([[-1.0, 0.5], [2.0, np.nan]], np.float32)
    np.testing.assert_allclose(prepare_image(f, "auto", 1.0, ()), [[0.0, 0.5], [1.0, 0.0]])


def test_population_and_identity_refuse_a_run_by_what_it_is(run, tmp_path, capsys):
    """`population --model RUN` said "kind must be one of nuclei, membrane, got 'population'": a run is now
    named as the segmentation model it is, with what population takes instead."""
    from devolens.io.images import write_png

    frame = tmp_path / "f.png"
    write_png((_image() * 255).clip(0, 255).astype(np.uint8), frame)
    assert main(["population", str(frame), "--model", str(run), "--out", str(tmp_path / "p.csv")]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "is a 'nuclei' model, not 'population'" in err and "devolens models" in err and "kind must" not in err
    assert not (tmp_path / "p.csv").exists()
    table = tmp_path / "t.csv"
    table.write_text("cell,time,x,y,z\nABa,1,1,2,3\n")
    assert main(["identify", str(table), "--model", str(run), "--out", str(tmp_path / "c.csv")]) != 0
    assert "is a 'nuclei' model, not 'identity'" in " ".join(capsys.readouterr().err.split())


def test_a_tuning_study_points_to_its_trials(run, tmp_path, capsys):
    """``devolens tune --out STUDY`` holds a best.json of its own (the best trial) and no weights: not "an interrupted
    copy", but a study whose trials are the runs."""
    import shutil

    study = tmp_path / "study"
    (study / "trials").mkdir(parents=True)
    assert main(["models", "export", str(study), "--to", str(tmp_path / "m")]) == 2  # no trial finished yet
    err = capsys.readouterr().err
    assert "a tuning study" in err and "trials/trial_NNNN" in err and "interrupted copy" not in err
    shutil.copytree(run, study / "trials" / "trial_0002")
    (study / "best.json").write_text(json.dumps({"study": "s", "metric": "val_f1", "direction": "maximize",
                                                 "trial": 2, "value": 0.875, "params": {}}))
    assert main(["models", "export", str(study), "--to", str(tmp_path / "m")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "a tuning study" in err and "best trial (val_f1 0.875)" in err and "interrupted copy" not in err
    assert str(study / "trials" / "trial_0002") in err and not (tmp_path / "m").exists()
    with pytest.raises(DevolensError, match="a tuning study"):
        zoo.card(study, "nuclei")
