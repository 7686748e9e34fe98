"""Validation instances: the recipe's ``validate`` section (argmax rule vs the predictors'
watershed) and ``devolens evaluate`` on other weights of a run's network."""

import json

import numpy as np
import pytest
import torch

from _train_data import make_pairs, tiny_recipe
from devolens.errors import DevolensError
from devolens.train.recipe import resolved, validate_recipe
from devolens.train.trainer import evaluate_model, train, validation_instances


def _dumbbell():
    """3-class probabilities of two touching nuclei whose interiors join in a bridge (the argmax
    interior is one blob) and their true labels."""
    h, w = 40, 60
    yy, xx = np.mgrid[:h, :w]
    d1 = np.hypot(yy - 20, xx - 20)
    d2 = np.hypot(yy - 20, xx - 39)
    truth = np.zeros((h, w), np.int32)
    truth[d1 <= 10] = 1
    truth[(d2 <= 10) & (d2 < d1)] = 2
    fg = (truth > 0).astype(np.float32)
    core = np.clip(1.0 - np.minimum(d1, d2) / 10.0, 0, 1)  # 1 at the centres, low at the neck between them
    from scipy import ndimage

    rim = ndimage.distance_transform_edt(fg) <= 2  # the outer 2 px (and the background)
    p_int = np.where(rim, 0.2, 0.55 + 0.4 * core) * fg  # argmax: interior everywhere but the rim, one blob
    p_bg = 1.0 - fg
    p_bnd = 1.0 - p_bg - p_int
    prob = np.stack([p_bg, p_int, p_bnd]).astype(np.float32)
    return prob, truth


def test_watershed_rule_splits_what_the_argmax_rule_merges():
    from devolens.train import metrics as M
    from devolens.train.postprocess import probabilities_to_classes

    prob, truth = _dumbbell()
    cls = probabilities_to_classes(prob)
    assert (cls == 1)[20, 20:40].all()  # the interiors are one blob
    quick = resolved(validate_recipe({"task": "segmentation", "data": {"target": "boundary"},
                                      "validate": {"instances": "classes"}}))
    exact = resolved(validate_recipe({"task": "segmentation", "data": {"target": "boundary"},
                                      "validate": {"postprocess": {"seed_threshold": 0.7}}}))
    assert exact["validate"]["instances"] == "watershed"  # auto, for the 3-class target
    merged = validation_instances(prob, cls, quick)
    split = validation_instances(prob, cls, exact)
    assert len(np.unique(merged)) - 1 == 1 and len(np.unique(split)) - 1 == 2
    assert M.match_instances(split, truth)["tp"] == 2 and M.match_instances(merged, truth)["tp"] == 0


def test_validate_section_checks():
    base = {"task": "segmentation", "data": {"target": "boundary"}}
    with pytest.raises(DevolensError, match="validate.postprocess: unknown option.*thresh"):
        validate_recipe({**base, "validate": {"postprocess": {"thresh": 0.5}}})
    with pytest.raises(DevolensError, match="split_seeds: expected true or false"):
        validate_recipe({**base, "validate": {"postprocess": {"split_seeds": 1}}})
    with pytest.raises(DevolensError, match="threshold: expected a number"):
        validate_recipe({**base, "validate": {"postprocess": {"threshold": "high"}}})
    with pytest.raises(DevolensError, match="'watershed' needs data.target"):
        validate_recipe({"task": "segmentation", "data": {"target": "classes", "classes": 3},
                         "validate": {"instances": "watershed"}})
    semantic = resolved(validate_recipe({"task": "segmentation", "data": {"target": "semantic"}}))
    assert semantic["validate"]["instances"] == "classes"


def test_evaluate_other_weights_and_rules(tmp_path, capsys):
    from devolens.cli import main
    from devolens.models.architectures import load_model
    from devolens.train.evaluate import evaluate_run

    data = make_pairs(tmp_path / "pairs", groups=3, per_group=4, size=48)
    rec = tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.34},
                      loss={"name": "ce_dice"}, train={"epochs": 2, "batch_size": 4, "threads": 1})
    run = tmp_path / "run"
    res = train(rec, data, run)
    best = evaluate_run(run, data)
    assert best["validate"]["instances"] == "watershed" and best["epoch"] is not None
    # the last epoch (a training checkpoint) and a zoo-style folder of the same network
    last = evaluate_run(run, data, weights=run / "checkpoint.safetensors")
    model, _ = load_model(run / "best.safetensors")
    folder = tmp_path / "zoo"
    folder.mkdir()
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "weights.safetensors"))
    again = evaluate_run(run, data, weights=folder)
    assert again["metrics"] == best["metrics"] and again["epoch"] is None
    assert last["weights"].endswith("checkpoint.safetensors")
    if res.best_epoch != len(res.history) - 1:  # another epoch, other weights
        assert last["metrics"] != best["metrics"]
    quick = evaluate_run(run, data, validate={"instances": "classes"})
    assert quick["validate"]["instances"] == "classes"
    # the CLI: options, and clear errors for bad ones
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(data), "--postprocess", '{"threshold": 0.6}',
                 "--json", str(tmp_path / "e.json")]) == 0
    assert "instances: watershed" in capsys.readouterr().out
    written = json.loads((tmp_path / "e.json").read_text())
    assert written["validate"]["postprocess"] == {"threshold": 0.6}
    assert main(["evaluate", str(run), "--data", str(data), "--postprocess", "{threshold: 0.6}"]) == 2
    assert "--postprocess: not valid JSON" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", str(data), "--instances", "both"]) == 2
    assert "validate.instances" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--data", str(data), "--weights", str(tmp_path / "nope")]) == 2


def test_evaluate_model_runs_without_gradients(tmp_path):
    """evaluate_model is decorated with no_grad (a model whose parameters need gradients)."""
    from devolens.train.trainer import build_from_recipe, build_data

    data = make_pairs(tmp_path / "pairs", groups=2, per_group=3, size=32)
    rec = resolved(validate_recipe(tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.5})))
    model = build_from_recipe(rec)
    assert any(p.requires_grad for p in model.parameters())
    bundle = build_data(rec, data)
    out = evaluate_model(model, bundle.val, rec)
    assert np.isfinite(out["metrics"]["val_f1"])
