"""Training-engine defects an audit found (the thirty-fourth session, M6): automatic class weights counted on
the first 256 samples with their padding, a stop during the pruning epoch resumed without pruning, cosine_kicks
kicking every ``patience`` epochs mid-decay, ``data.normalize: none`` clipped to 0..1 by augmentation, per-sample
losses scored on the padded batch, a render of one kind trained with a recipe of the other without a word, and
'ignore' regions drawn as truth in the training overlays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from _train_data import disc_frame, make_pairs, make_render_like, tiny_recipe, write_pairs
from devolens.data.datasets import SegmentationDataset
from devolens.train import trainer
from devolens.train.losses import class_frequencies, class_weights
from devolens.train.recipe import SCHEMA, resolved, validate_recipe
from devolens.train.schedulers import build_scheduler


def _class_frames(n_plain: int, n_rare: int, size: int, seed: int = 0):
    """Frames of class 1 discs (``a_tNNN``, first in name order) and frames that also hold class 2 (``b_tNNN``)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_plain + n_rare):
        img, inst = disc_frame(rng, size, n=2, radius=(2, 4))
        lab = (inst > 0).astype(np.uint8)
        if k >= n_plain:
            lab[inst == 1] = 2
        out.append((f"{'a' if k < n_plain else 'b'}_t{k:03d}", img, lab))
    return out


def _dataset(root: Path, pad_multiple: int) -> SegmentationDataset:
    images = sorted((root / "images").glob("*.png"))
    masks = [root / "masks" / f"{p.stem}_labels.tif" for p in images]
    return SegmentationDataset(images, masks, target="classes", pad_multiple=pad_multiple, ids=[p.stem for p in images])


def _weights_of(frames, method: str = "median_frequency") -> np.ndarray:
    return class_weights(class_frequencies([lab for _, _, lab in frames], 3), method)


_CLASSES = dict(data={"target": "classes", "classes": 3, "channels": 1, "val_fraction": 0.34})


# ---------------------------------------------------------------- 1. automatic class weights
def test_class_weights_count_every_training_sample(tmp_path):
    """Class 2 lies only in frames past the 256th in name order: the weights count it (were counted on the first
    256 samples only, which gave the rare class weight 1 and the background and class 1 the wrong ones)."""
    frames = _class_frames(260, 20, 16)
    ds = _dataset(write_pairs(tmp_path / "d", frames), pad_multiple=1)
    rec = resolved(validate_recipe(tiny_recipe(loss={"name": "ce", "class_weights": "median_frequency"}, **_CLASSES)))
    _, used = trainer._loss_fn(rec, ds)
    assert np.allclose(used, _weights_of(frames))
    assert used[2] > 5 * used[1]  # the rare class is weighted up
    assert trainer.class_weight_note(rec, ds) is None  # every sample counted: nothing to say


@pytest.mark.parametrize("method", ["median_frequency", "inverse"])
def test_class_weights_leave_the_padding_out(tmp_path, method):
    """20x20 masks padded to 24x24 (the network's multiple of 8): the weights are those of the masks' own pixels
    (the padding was counted as background)."""
    frames = _class_frames(3, 3, 20)
    ds = _dataset(write_pairs(tmp_path / "d", frames), pad_multiple=8)
    assert tuple(ds[0]["target"].shape) == (24, 24)
    rec = resolved(validate_recipe(tiny_recipe(loss={"name": "ce", "class_weights": method}, **_CLASSES)))
    _, used = trainer._loss_fn(rec, ds)
    assert np.allclose(used, _weights_of(frames, method))


def test_class_weights_of_a_large_set_count_a_seeded_share_spread_over_it(tmp_path, monkeypatch):
    """Past CLASS_WEIGHT_SAMPLES training samples, that many drawn at random (seeded) over the whole set are
    counted, and a note says how many."""
    monkeypatch.setattr(trainer, "CLASS_WEIGHT_SAMPLES", 12)
    frames = _class_frames(30, 10, 16)
    ds = _dataset(write_pairs(tmp_path / "d", frames), pad_multiple=1)
    rec = resolved(validate_recipe(tiny_recipe(loss={"name": "ce", "class_weights": "median_frequency"}, **_CLASSES)))
    picked = trainer._weight_samples(len(ds), 0)
    assert len(picked) == 12 and len(set(picked.tolist())) == 12 and picked.max() >= 30  # not the first 12
    assert np.array_equal(picked, trainer._weight_samples(len(ds), 0))  # seeded
    _, used = trainer._loss_fn(rec, ds)
    assert np.allclose(used, _weights_of([frames[i] for i in picked]))
    note = trainer.class_weight_note(rec, ds)
    assert note is not None and "12 of the 40 training samples" in note and "seed 0" in note


# ---------------------------------------------------------------- 2. a stop during the pruning epoch
def _tables(run: Path) -> dict:
    from safetensors.torch import load_file

    tensors = load_file(run / "checkpoint.safetensors")
    history = pd.read_csv(run / "history.csv")
    return {"tensors": {k: v for k, v in tensors.items() if k.startswith(("model/", "optim/"))},
            "history": history[[c for c in history.columns if "seconds" not in c]],
            "extra": json.loads((run / "checkpoint.json").read_text())["extra"],
            "losses": pd.read_csv(run / "sample_losses.csv"), "pruned": pd.read_csv(run / "pruned.csv")}


def test_a_stop_during_the_pruning_epoch_resumes_as_the_run_uninterrupted(tmp_path):
    """Ctrl-C in the epoch that prunes (train.prune_after), then --resume: the same pruned samples, training
    samples, weights, optimizer state, history and per-sample losses as without the stop (pruned.csv was written
    at the epoch's start, before the checkpoint that records the pruning, and the resumed run then trained every
    sample). A pruned.csv left by such a stop (an older version wrote it) is set aside and pruning done again."""
    data = make_pairs(tmp_path / "data", groups=3, per_group=4, size=32)
    rec = tiny_recipe(train={"epochs": 4, "batch_size": 4, "overlay_samples": 0, "threads": 1, "prune_top": 25,
                             "prune_after": 2})
    whole = trainer.train(rec, data, tmp_path / "whole")
    n = list(whole.history["n_train"])
    assert n[0] == n[1] > n[2] == n[3] > 0  # pruned after 2 epochs

    def stop(epoch, step, loss):
        if epoch == 2 and step == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer.train(rec, data, tmp_path / "cut", step_callback=stop)
    assert json.loads((tmp_path / "cut" / "checkpoint.json").read_text())["extra"]["epoch"] == 2
    assert not (tmp_path / "cut" / "pruned.csv").exists()  # written with the checkpoint that records the pruning
    # what an older version left: the pruning epoch's pruned.csv beside a checkpoint from before it
    pd.DataFrame({"rank": [1], "sample": ["images/emb0_t000.png"], "mean_loss": [9.0]}).to_csv(
        tmp_path / "cut" / "pruned.csv", index=False)
    resumed = trainer.train(rec, data, tmp_path / "cut", resume=True)
    assert list(resumed.history["n_train"]) == n
    a, b = _tables(tmp_path / "whole"), _tables(tmp_path / "cut")
    assert a["tensors"].keys() == b["tensors"].keys()
    for k, v in a["tensors"].items():
        assert torch.equal(v, b["tensors"][k]), k
    assert a["extra"] == b["extra"]
    pd.testing.assert_frame_equal(a["history"], b["history"])
    pd.testing.assert_frame_equal(a["losses"], b["losses"])
    pd.testing.assert_frame_equal(a["pruned"], b["pruned"])
    assert resumed.pruned is not None and list(resumed.pruned["sample"]) == list(a["pruned"]["sample"])


# ---------------------------------------------------------------- 3. cosine_kicks
def _opt(lr: float = 1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _lrs(sched, losses) -> list[float]:
    out = []
    for v in losses:
        out.append(sched.lr)  # the rate the epoch trains with
        sched.step(v)
    return out


def test_cosine_kicks_anneal_to_each_floor_on_a_plateau():
    """The audit's curve: 6 improving epochs, then a plateau. The rate decays over ``period`` epochs to its floor,
    is kicked after ``patience`` epochs there without improvement, decays again to half the floor, and so on (was:
    a kick mid-decay at epoch 9, then one every ``patience`` epochs with the rate near its maximum)."""
    s = build_scheduler("cosine_kicks", _opt(), period=10, floor=0.05, patience=3, kick_factor=10.0, floor_decay=0.5)
    losses = [1.0, 0.8, 0.7, 0.65, 0.6, 0.58] + [0.58] * 24
    lrs = _lrs(s, losses)
    assert s.kicks == [13, 26]
    assert lrs[10:13] == pytest.approx([0.05] * 3)  # the first floor, reached before any kick
    assert lrs[13] == pytest.approx(0.5)  # kicked: 10 x the floor
    assert all(lrs[i + 1] < lrs[i] for i in range(13, 23))
    assert lrs[23:26] == pytest.approx([0.025] * 3)  # the lower floor
    assert lrs[26] == pytest.approx(0.25)


@pytest.mark.parametrize("patience", [1, 2, 4])
def test_cosine_kicks_never_kick_mid_decay(patience):
    """No improvement at all: the first kick comes ``patience`` epochs after the floor is reached, each later one
    ``period + patience`` epochs after the one before."""
    s = build_scheduler("cosine_kicks", _opt(), period=5, floor=0.1, patience=patience)
    _lrs(s, [1.0] * 40)
    first = 5 + patience
    assert s.kicks[0] == first
    assert np.diff(s.kicks).tolist() == [5 + patience] * (len(s.kicks) - 1)


def test_cosine_kicks_count_floor_epochs_since_the_last_improvement():
    """Epochs of the decay do not count, and an improvement at the floor starts the count again (was: the epochs
    of the decay counted, and a kick came at epoch 4, before the improvement)."""
    s = build_scheduler("cosine_kicks", _opt(), period=3, floor=0.1, patience=2)
    _lrs(s, [1.0, 0.9, 0.9, 0.9, 0.85, 0.85, 0.85, 0.85])
    assert s.kicks == [7]  # the floor from epoch 3 (counted 1), an improvement at epoch 4, epochs 5 and 6 without


def test_patience_of_plateau_and_cosine_kicks_as_the_recipe_help_says():
    """plateau lowers the rate at the end of the (patience + 1)-th epoch without improvement (torch's
    ReduceLROnPlateau); cosine_kicks kicks after ``patience`` epochs at the floor; the recipe's help says both."""
    p = build_scheduler("plateau", _opt(), factor=0.5, patience=3)
    lrs = _lrs(p, [1.0] + [1.0] * 6)
    assert lrs[:5] == [1.0] * 5 and lrs[5] == pytest.approx(0.5)  # epochs 1-4 without improvement: 4 = 3 + 1
    k = build_scheduler("cosine_kicks", _opt(), period=1, floor=0.1, patience=3)
    _lrs(k, [1.0] * 5)
    assert k.kicks == [4]  # epochs 1-3 at the floor without improvement
    text = SCHEMA["scheduler"]["patience"].help
    assert "(patience + 1)-th" in text and "ReduceLROnPlateau" in text and "at the floor" in text
    assert "no kick comes before the floor" in SCHEMA["scheduler"]["period"].help


# ---------------------------------------------------------------- 4. data.normalize: none with augmentation
def test_normalize_none_keeps_the_values_through_augmentation(tmp_path):
    """Raw 8-bit values with data.normalize: none: augmented training samples keep the image's own range (were
    clipped to 0..1: 0/1 images in training, raw ones in validation), and augment as the dtype-normalised image
    does, times 255."""
    from devolens.data.augment import build_augment

    rng = np.random.default_rng(3)
    img, lab = disc_frame(rng, 32)
    img[0, 0], img[-1, -1] = 0, 255  # the range of 8 bits: dtype scaling and the image's own range agree
    root = write_pairs(tmp_path / "d", [("e_t000", img, lab)])
    images, masks = [root / "images" / "e_t000.png"], [root / "masks" / "e_t000_labels.tif"]
    common = dict(target="semantic", pad_multiple=8, seed=0)
    none = SegmentationDataset(images, masks, normalize="none",
                               augment=build_augment("nuclei", 1.0, {"elastic": False}, seed=0), **common)
    dtype = SegmentationDataset(images, masks, normalize="dtype",
                                augment=build_augment("nuclei", 1.0, {"elastic": False}, seed=0), **common)
    seen = 0
    for epoch in range(6):
        none.set_epoch(epoch)
        dtype.set_epoch(epoch)
        a, b = none[0]["image"].numpy(), dtype[0]["image"].numpy()
        assert a.min() >= 0 and a.max() <= 255
        np.testing.assert_allclose(a, b * 255, rtol=1e-5, atol=1e-3)
        seen = max(seen, float(a.max()))
    assert seen > 100


def test_augmentation_of_a_0_1_image_is_unchanged(tmp_path):
    """An image within 0..1 (dtype, percentile): augmented as before, clipped to 0..1."""
    from devolens.data.augment import build_augment

    img, lab = disc_frame(np.random.default_rng(4), 32)
    root = write_pairs(tmp_path / "d", [("e_t000", img, lab)])
    ds = SegmentationDataset([root / "images" / "e_t000.png"], [root / "masks" / "e_t000_labels.tif"],
                             normalize="dtype", augment=build_augment("nuclei", 2.0, {}, seed=0), pad_multiple=1)
    for epoch in range(4):
        ds.set_epoch(epoch)
        x = ds[0]["image"].numpy()
        assert x.min() >= 0 and x.max() <= 1


def test_normalize_none_trains_on_raw_values(tmp_path):
    """The audit's case: a training sample and a validation sample of one recipe with normalize none and the
    nuclei augmentation are on the same scale."""
    data = make_pairs(tmp_path / "data", groups=2, per_group=2, size=32)
    rec = resolved(validate_recipe(tiny_recipe(data={"target": "semantic", "normalize": "none", "val_fraction": 0.5},
                                               augment={"preset": "nuclei", "overrides": {"elastic": False}})))
    b = trainer.build_data(rec, data)
    assert b.train[0]["image"].max() > 50 and b.val[0]["image"].max() > 50


# ---------------------------------------------------------------- 5. per-sample losses on each sample's own pixels
def _share_of_background(recipe, train_ds):
    """A loss that is each sample's share of background pixels in what it is given (and no function of the
    network): the padding adds background."""
    def fn(y, target, distance=None):
        return y.float().mean(dim=(1, 2, 3)) * 0 + (target == 0).float().mean(dim=(1, 2))
    return fn, None


def test_per_sample_losses_are_scored_on_each_samples_own_pixels(tmp_path, monkeypatch):
    """Images of 32 and 64 px train in batches together: each sample's loss in sample_losses.csv (what pruning
    ranks) is that of its own pixels, not of the batch's padding to 64 px (scored on the padded batch, small
    images had biased losses and were pruned first)."""
    rng = np.random.default_rng(5)
    frames = []
    for g in range(2):
        for t in range(4):
            img, lab = disc_frame(rng, 32 if t % 2 else 64, radius=(3, 6))
            frames.append((f"emb{g}_t{t:03d}", img, lab))
    data = write_pairs(tmp_path / "data", frames)
    monkeypatch.setattr(trainer, "_loss_fn", _share_of_background)
    rec = tiny_recipe(data={"target": "semantic", "val_fraction": 0.5},
                      train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1})
    trainer.train(rec, data, tmp_path / "run")
    losses = pd.read_csv(tmp_path / "run" / "sample_losses.csv")
    b = trainer.build_data(resolved(validate_recipe(rec)), data)
    own = {b.train.ids[i]: float((b.train[i]["target"] == 0).float().mean()) for i in range(len(b.train))}
    assert {tuple(b.train[i]["image"].shape[-2:]) for i in range(len(b.train))} == {(32, 32), (64, 64)}
    assert len(losses) == len(own)
    for sample, loss in zip(losses["sample"], losses["loss"]):
        assert loss == pytest.approx(own[sample], abs=1e-6), sample


def test_own_losses_of_a_batch_of_one_size_are_the_batchs():
    """A batch of one size keeps the loss function's per-sample values bit for bit (sizes not a multiple of the
    network's included: their padding is their own, as alone); a smaller sample padded to a larger one's size is
    scored on its own tensor."""
    rec = resolved(validate_recipe(tiny_recipe(loss={"name": "ce_dice"}, data={"target": "boundary"})))
    loss_fn, _ = trainer._loss_fn(rec, None)
    torch.manual_seed(0)
    y = torch.randn(3, 3, 32, 32)
    target = torch.randint(0, 3, (3, 32, 32))
    per = loss_fn(y, target)
    same = trainer._own_losses(per, y, target, None, torch.tensor([[30, 29]] * 3), 8, loss_fn)
    assert torch.equal(same, per)
    # a loss of one's own (unmarked: the library's losses leave the IGNORE padding out and are not scored again)
    own = lambda y, t, d=None: loss_fn(y, t, d)  # noqa: E731
    mixed = trainer._own_losses(per, y, target, None, torch.tensor([[32, 32], [13, 16], [32, 20]]), 8, own)
    assert torch.equal(mixed[0], per[0])
    assert mixed[1] == pytest.approx(float(loss_fn(y[1:2, :, :16, :16], target[1:2, :16, :16])[0]))
    assert mixed[2] == pytest.approx(float(loss_fn(y[2:3, :, :32, :24], target[2:3, :32, :24])[0]))
    assert mixed[1] != pytest.approx(float(per[1]))


# ---------------------------------------------------------------- 6. a render of the other kind
@pytest.mark.parametrize("kind,preset,init", [("membrane", "nuclei", None), ("membrane", "none", "zoo:nuclei"),
                                              ("nuclei", "membrane", None)])
def test_a_render_of_the_other_kind_than_the_recipe_is_noted(tmp_path, kind, preset, init):
    data = make_render_like(tmp_path / "render", embryos=2, per_embryo=2, size=32)
    (data / "render.json").write_text(json.dumps({"kind": kind, "size": [32, 32]}))
    rec = tiny_recipe(augment={"preset": preset}, model={"arch": "unet", "encoder": "resnet18", "encoder_depth": 3,
                                                          "decoder_channels": [32, 16, 16], "init": init})
    notes = trainer.build_data(resolved(validate_recipe(rec)), data).notes
    other = "nuclei" if kind == "membrane" else "membrane"
    said = [n for n in notes if "render.json" in n]
    assert len(said) == 1, notes
    assert f"a {kind} render (render.json: kind {kind})" in said[0] and f"the recipe is one for {other}" in said[0]
    assert f"recipes/{kind}.yaml" in said[0]


@pytest.mark.parametrize("kind,preset", [("nuclei", "nuclei"), ("membrane", "membrane"), ("membrane", "none")])
def test_a_render_of_the_recipes_kind_gets_no_note(tmp_path, kind, preset):
    data = make_render_like(tmp_path / "render", embryos=2, per_embryo=2, size=32)
    (data / "render.json").write_text(json.dumps({"kind": kind}))
    notes = trainer.build_data(resolved(validate_recipe(tiny_recipe(augment={"preset": preset}))), data).notes
    assert not any("render.json" in n for n in notes)


def test_train_says_the_render_kind_note(tmp_path):
    data = make_render_like(tmp_path / "render", embryos=2, per_embryo=2, size=32)
    (data / "render.json").write_text(json.dumps({"kind": "membrane"}))
    said: list[str] = []
    rec = tiny_recipe(augment={"preset": "nuclei", "overrides": {"elastic": False}},
                      train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1})
    res = trainer.train(rec, data, tmp_path / "run", info=said.append)
    assert any(s.startswith("note: the data are a membrane render") for s in said)
    assert any("membrane render" in n for n in json.loads((tmp_path / "run" / "run.json").read_text())["notes"])
    assert res.notes == json.loads((tmp_path / "run" / "run.json").read_text())["notes"]


# ---------------------------------------------------------------- 7. 'ignore' regions in the overlays
def test_overlay_draws_ignored_pixels_hatched_not_as_truth():
    from devolens.viz.overlays import (FN_COLOUR, FP_COLOUR, IGNORE_COLOUR, TP_COLOUR, overlay_errors,
                                       sample_panel)

    img = np.zeros((8, 8), np.uint8)
    truth = np.zeros((8, 8), np.uint8)
    truth[:, :2] = 1
    truth[:, 4:] = 255  # ignored
    pred = np.zeros((8, 8), np.uint8)
    pred[:, 0] = 1
    pred[:, 6] = 1  # on the ignored region: no error
    colours = {TP_COLOUR, FP_COLOUR, FN_COLOUR}
    rgb = overlay_errors(img, truth, pred, alpha=1.0, ignore=truth == 255)
    assert tuple(rgb[0, 0]) == TP_COLOUR and tuple(rgb[0, 1]) == FN_COLOUR
    right = {tuple(c) for c in rgb[:, 4:].reshape(-1, 3)}
    assert right == {IGNORE_COLOUR, (0, 0, 0)} and not right & colours  # hatched, the image between the stripes
    # a run's samples (truth 255 where ignored), pixel and object colours
    samples = {"image": img[None, ..., None], "truth": truth[None], "pred": pred[None],
               "truth_labels": np.where(truth == 255, 255, truth).astype(np.int32)[None],
               "pred_labels": pred.astype(np.int32)[None]}
    for instances in (False, True):
        panel = sample_panel(samples, instances=instances)
        assert not {tuple(c) for c in panel[:, 4:].reshape(-1, 3)} & colours, instances


def test_overlay_objects_on_ignored_regions_are_no_errors():
    """Objects: a true region painted 'ignore' is no missed object, a prediction lying on it no false one; a
    real missed nucleus stays blue."""
    from devolens.viz.overlays import FN_COLOUR, FP_COLOUR, overlay_errors

    truth = np.zeros((16, 16), np.int32)
    truth[1:5, 1:5] = 1  # a nucleus the prediction misses
    truth[8:16, 8:16] = 255  # ignored
    pred = np.zeros((16, 16), np.int32)
    pred[9:13, 9:13] = 1
    rgb = overlay_errors(np.zeros((16, 16)), truth, pred, alpha=1.0, instances=True, ignore=truth == 255)
    assert tuple(rgb[2, 2]) == FN_COLOUR
    assert not any(tuple(c) in (FN_COLOUR, FP_COLOUR) for c in rgb[8:, 8:].reshape(-1, 3))
