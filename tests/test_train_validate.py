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


# ----------------------------------------------------------------------------- distance head
def test_instance_distance_peaks_at_each_centre_and_is_zero_between():
    from devolens.data.datasets import instance_distance, labels_to_target

    _, truth = _dumbbell()
    tgt = labels_to_target(truth, "boundary")
    d = instance_distance(tgt, truth)
    assert d.dtype == np.float32 and d.shape == truth.shape
    for lab in (1, 2):
        assert d[truth == lab].max() == pytest.approx(1.0)
    assert d[20, 20] > 0.85 and d[20, 39] > 0.85  # the centres
    assert (d[tgt != 1] == 0).all()  # boundaries (also the one between the two) and background
    assert d[20, 28:32].min() < 0.25  # low where the two nuclei touch


def test_distance_head_recipe_checks():
    with pytest.raises(DevolensError, match="model.distance_head: needs"):
        validate_recipe({"task": "segmentation", "data": {"target": "semantic"}, "model": {"distance_head": True}})
    rec = resolved(validate_recipe({"task": "segmentation", "data": {"target": "boundary"},
                                    "model": {"distance_head": True}}))
    from devolens.train.trainer import metric_names, n_classes, n_outputs

    assert n_classes(rec) == 3 and n_outputs(rec) == 4
    assert "val_iou_2" in metric_names(rec) and "val_iou_3" not in metric_names(rec)


def test_distance_head_trains_evaluates_and_fine_tunes_from_a_3_class_run(tmp_path):
    from devolens.models.architectures import load_model
    from devolens.train.evaluate import evaluate_run
    from devolens.train.trainer import build_from_recipe, init_weights

    data = make_pairs(tmp_path / "pairs", groups=3, per_group=4, size=48)
    three = tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.34}, loss={"name": "ce_dice"},
                        train={"epochs": 1, "batch_size": 4, "threads": 1})
    train(three, data, tmp_path / "three")
    rec = {**three, "model": {**three["model"], "distance_head": True, "init": str(tmp_path / "three" / "best.safetensors")},
           "loss": {"name": "ce_dice", "distance_weight": 2.0}, "train": {**three["train"], "epochs": 2}}
    # the 3-class weights carry over; the new channel keeps its fresh initialisation
    src, _ = load_model(tmp_path / "three" / "best.safetensors")
    fresh = build_from_recipe(resolved(validate_recipe(rec)))
    fresh_w = fresh.state_dict()["segmentation_head.0.weight"].clone()
    grown = init_weights(fresh, tmp_path / "three" / "best.safetensors").state_dict()
    w, ref = grown["segmentation_head.0.weight"], src.state_dict()["segmentation_head.0.weight"]
    assert w.shape[0] == 4 and torch.equal(w[:3], ref) and torch.equal(w[3], fresh_w[3])
    assert torch.equal(grown["decoder.blocks.0.conv1.0.weight"], src.state_dict()["decoder.blocks.0.conv1.0.weight"])
    res = train(rec, data, tmp_path / "dist")
    assert np.isfinite(res.history["train_loss"]).all() and np.isfinite(res.history["val_loss"]).all()
    model, cfg = load_model(tmp_path / "dist" / "best.safetensors")
    assert cfg["model"]["classes"] == 4 and cfg["recipe"]["model"]["distance_head"] is True
    ev = evaluate_run(tmp_path / "dist", data)
    assert ev["validate"]["instances"] == "watershed" and ev["metrics"]["val_f1"] is not None
    # a distance-head network whose output layer does not fit at all is refused clearly
    bad = tmp_path / "bad.safetensors"
    from safetensors.torch import save_file

    save_file({"segmentation_head.0.weight": torch.zeros(2, 99, 3, 3)}, str(bad))
    with pytest.raises(DevolensError, match="do not"):
        init_weights(build_from_recipe(resolved(validate_recipe(rec))), bad)


def test_distance_loss_adds_to_the_class_loss():
    from devolens.data.datasets import instance_distance, labels_to_target
    from devolens.train.trainer import _loss_fn

    rec = resolved(validate_recipe({"task": "segmentation", "data": {"target": "boundary"},
                                    "model": {"distance_head": True}, "loss": {"distance_weight": 1.0}}))
    loss, _ = _loss_fn(rec, None)
    _, truth = _dumbbell()
    tgt = torch.from_numpy(labels_to_target(truth, "boundary"))[None]
    dist = torch.from_numpy(instance_distance(tgt[0].numpy(), truth))[None]
    logits = torch.zeros(1, 4, *truth.shape)
    exact = torch.logit(dist.clamp(1e-4, 1 - 1e-4))
    with_exact = loss(torch.cat([logits[:, :3], exact[:, None]], 1), tgt, dist)
    with_zero = loss(logits, tgt, dist)  # sigmoid(0) = 0.5 everywhere
    assert with_zero.item() - with_exact.item() == pytest.approx((0.5 - dist).abs().mean().item(), abs=1e-3)


def test_predictor_with_a_distance_head_seeds_from_the_distance():
    from devolens.data.datasets import instance_distance, labels_to_target
    from devolens.models.architectures import build_model
    from devolens.predict.segment import NucleiPredictor

    torch.manual_seed(0)
    net = build_model("unet", "resnet18", in_channels=1, classes=4, encoder_depth=3, decoder_channels=(16, 8, 4))
    pred = NucleiPredictor(net, scale=1.0, head="three_class_distance", postprocess={"seed_threshold": 0.5})
    assert pred.network.activation == "softmax_distance"
    probs = pred.network._activate(torch.randn(2, 4, 8, 8))
    assert torch.allclose(probs[:, :3].sum(1), torch.ones(2, 8, 8)) and ((probs[:, 3] > 0) & (probs[:, 3] < 1)).all()
    # the watershed on a map whose interior class bridges two nuclei: the distance splits them
    prob, truth = _dumbbell()
    dist = instance_distance(labels_to_target(truth, "boundary"), truth)
    res = pred._finish(np.concatenate([prob, dist[None]]), truth.shape)
    assert res.count == 2
    three = NucleiPredictor(net, scale=1.0, head="three_class", postprocess={"seed_threshold": 0.5})
    assert three._finish(prob, truth.shape).count == 1
