"""Training with 'ignore' regions (the thirty-fourth session): 255 painted over several separate regions of an 8-bit
mask (:func:`devolens.data.datasets.ignore_label`) is left out of every training loss, of the per-sample losses that
pruning ranks and of the distance head's target, as validation already left it out of the scores; and class-id runs
write each class's object F1 (``val_f1_1``...) to history.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from _train_data import disc_frame, tiny_recipe
from devolens.data.datasets import (IGNORE_INDEX, SegmentationDataset, ignore_label, instance_distance,
                                    labels_to_target)
from devolens.train.losses import SEG_LOSSES, build_loss
from devolens.train.recipe import resolved, validate_recipe


def _painted(size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A disc image and its 8-bit labels with 255 painted over 12x12 corner squares of pure background (at least
    two, far apart: read as 'ignore')."""
    rng = np.random.default_rng(seed)
    while True:
        img, lab = disc_frame(rng, size)
        lab = lab.astype(np.uint8)
        c = size - 14
        free = [(y, x) for y, x in [(2, 2), (2, c), (c, 2), (c, c)]
                if not lab[max(0, y - 2):y + 14, max(0, x - 2):x + 14].any()]
        if len(free) < 2:
            continue
        for y, x in free:
            lab[y:y + 12, x:x + 12] = 255
        if ignore_label(lab) == 255:
            return img, lab


def _write_folder(root: Path, groups: int = 3, per: int = 4, seed: int = 0) -> Path:
    import imageio.v3 as iio

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for g in range(groups):
        for t in range(per):
            img, lab = _painted(seed=seed + 100 * g + t)
            iio.imwrite(root / "images" / f"emb{g}_t{t:03d}.png", img)
            iio.imwrite(root / "masks" / f"emb{g}_t{t:03d}_labels.png", lab)
    return root


# ---------------------------------------------------------------- 1. the losses
@pytest.mark.parametrize("classes", [1, 3])
@pytest.mark.parametrize("name", SEG_LOSSES)
def test_every_segmentation_loss_leaves_ignored_pixels_out(name, classes):
    """Pixels whose target is IGNORE_INDEX count for nothing: the loss equals the loss of the image cut down to the
    other pixels (a mean over them; Dice's sums without them), whatever the network outputs there, and no gradient
    reaches them. Was: BCE learnt -1 as a target, CE and focal failed on it (an index out of range)."""
    torch.manual_seed(0)
    logits = torch.randn(2, classes, 8, 12)
    target = torch.randint(0, max(2, classes), (2, 8, 12))
    target[..., 9:] = IGNORE_INDEX  # the last three columns ignored
    weights = [0.5, 2.0] if classes == 1 else [0.5, 1.0, 3.0]
    for cw in (None, weights):
        fn = build_loss(name, cw)
        whole = fn(logits, target)
        assert whole.shape == (2,)
        assert torch.allclose(whole, fn(logits[..., :9], target[..., :9]), atol=1e-6), (name, cw)
        other = logits.clone()
        other[..., 9:] = 50 * torch.randn_like(other[..., 9:])  # anything at all where ignored
        assert torch.allclose(whole, fn(other, target), atol=1e-6)
        x = logits.clone().requires_grad_(True)
        fn(x, target).sum().backward()
        assert x.grad[..., 9:].abs().max() == 0 and x.grad[..., :9].abs().max() > 0


def test_a_sample_wholly_ignored_has_no_loss():
    target = torch.full((1, 4, 4), IGNORE_INDEX)
    for name in SEG_LOSSES:
        assert build_loss(name)(torch.randn(1, 3, 4, 4), target).tolist() == [0.0], name


def test_the_distance_head_loss_leaves_ignored_pixels_out():
    """The distance head's L1 too: the recipe's loss (classes + distance) of an image equals that of the image cut
    down to its pixels not ignored."""
    from devolens.train.trainer import _loss_fn

    rec = resolved(validate_recipe({"task": "segmentation", "data": {"target": "boundary"},
                                    "model": {"distance_head": True}, "loss": {"distance_weight": 1.0}}))
    loss, _ = _loss_fn(rec, None)
    torch.manual_seed(1)
    logits = torch.randn(1, 4, 10, 10)
    target = torch.randint(0, 3, (1, 10, 10))
    target[:, 7:] = IGNORE_INDEX
    dist = torch.rand(1, 10, 10)
    dist[:, 7:] = 0  # instance_distance's value there
    whole = loss(logits, target, dist)
    assert torch.allclose(whole, loss(logits[..., :7, :], target[:, :7], dist[:, :7]), atol=1e-6)
    other = logits.clone()
    other[:, 3, 7:] = 20.0  # a distance of ~1 predicted where ignored: no loss
    assert torch.allclose(whole, loss(other, target, dist), atol=1e-6)


# ---------------------------------------------------------------- 2. targets and augmentation
def test_ignored_regions_are_unknown_in_the_targets_not_one_nucleus():
    """labels_to_target gives IGNORE_INDEX where the mask holds its ignore value (was 1: one nucleus made of every
    painted region), the nuclei beside them as beside background; instance_distance gives them 0 (was a 'nucleus'
    whose centre was the largest of the regions) and the nuclei their own distances."""
    _, lab = _painted(seed=3)
    void = lab == 255
    plain = np.where(void, 0, lab)
    for target in ("semantic", "boundary"):
        t = labels_to_target(lab, target, ignore=255)
        assert t.dtype == np.int64 and (t[void] == IGNORE_INDEX).all()
        assert (t[~void] == labels_to_target(plain, target)[~void]).all()
        assert (labels_to_target(lab, target) >= 0).all()  # no ignore value given: as before
    t = labels_to_target(lab, "boundary", ignore=255)
    d = instance_distance(t, lab)
    assert (d[void] == 0).all() and np.array_equal(d, instance_distance(labels_to_target(plain, "boundary"), plain))


def test_the_target_ignores_exactly_the_augmented_ignore_pixels(tmp_path):
    """The ignore mask is made after augmentation, from the labels augmented with the image (nearest neighbour:
    255 stays 255, never blended into a label): with strong affine, elastic and grid transforms the ignored
    pixels move, and the target is IGNORE_INDEX on them and on nothing else."""
    from devolens.data.augment import build_augment

    data = _write_folder(tmp_path / "d", groups=1, per=2)
    images = sorted((data / "images").glob("*.png"))
    masks = [data / "masks" / f"{p.stem}_labels.png" for p in images]
    aug = build_augment("nuclei", 2.0, {"affine": {"p": 1.0}, "elastic": {"p": 1.0}, "grid": {"p": 1.0}})
    ds = SegmentationDataset(images, masks, target="boundary", augment=aug, pad_multiple=8, distance=True)
    plain = SegmentationDataset(images, masks, target="boundary", pad_multiple=8)
    moved = 0
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            lab, tgt = item["labels"].numpy(), item["target"].numpy()
            values = set(np.unique(plain[i]["labels"].numpy()).tolist())
            assert set(np.unique(lab).tolist()) <= values  # no blended value
            assert int(item["ignore"]) == 255 and (lab == 255).any()
            assert np.array_equal(tgt == IGNORE_INDEX, lab == 255)
            assert (item["distance"].numpy()[lab == 255] == 0).all()
            moved += not np.array_equal(lab == 255, plain[i]["labels"].numpy() == 255)
    assert moved > 0


def test_class_weights_leave_ignored_pixels_out(tmp_path):
    """class_weights: median_frequency counts the classes' pixels without the ignored ones (were counted as
    nuclei)."""
    from devolens.train.losses import class_frequencies, class_weights
    from devolens.train.trainer import _loss_fn

    data = _write_folder(tmp_path / "d", groups=1, per=3)
    images = sorted((data / "images").glob("*.png"))
    masks = [data / "masks" / f"{p.stem}_labels.png" for p in images]
    ds = SegmentationDataset(images, masks, target="semantic", pad_multiple=1)
    rec = resolved(validate_recipe(tiny_recipe(loss={"name": "bce", "class_weights": "median_frequency"})))
    _, used = _loss_fn(rec, ds)
    import imageio.v3 as iio

    labs = [iio.imread(m) for m in masks]
    want = class_weights(class_frequencies([(lab > 0).astype(int)[lab != 255] for lab in labs], 2))
    assert np.allclose(used, want)


# ---------------------------------------------------------------- 3. training
def test_the_masks_note_says_training_leaves_the_regions_out(tmp_path):
    from devolens.train.trainer import check_masks

    data = _write_folder(tmp_path / "d", groups=1, per=1)
    notes = check_masks(pd.DataFrame({"image": [str(p) for p in sorted((data / "images").glob("*.png"))],
                                      "labels": [str(p) for p in sorted((data / "masks").glob("*.png"))]}))
    assert len(notes) == 1 and "255 is read as 'ignore'" in notes[0]
    assert "left out of the training loss" in notes[0] and "still learns" not in notes[0]


@pytest.mark.slow
def test_per_sample_losses_leave_ignored_pixels_out(tmp_path):
    """sample_losses.csv (what --prune-top ranks) holds each sample's loss over its pixels not ignored: a sample whose
    mask paints 255 in stripes over a third of the image, dark background there, has a loss like the others' (0.63
    times their median after 8 epochs, ~15 s; it was the highest, 1.76 times: the network was asked to call dark
    background nucleus, and pruning dropped it first)."""
    import imageio.v3 as iio

    from devolens.train.trainer import build_data, select_pruned, train

    data = _write_folder(tmp_path / "d", groups=4, per=3, seed=7)
    rec = tiny_recipe(train={"epochs": 8, "batch_size": 3, "threads": 1, "overlay_samples": 0}, loss={"name": "bce"},
                      optimizer={"name": "adam", "lr": 0.01, "weight_decay": 0.0})
    split = build_data(resolved(validate_recipe(rec)), data).split
    painted = split.loc[split["side"] == "train", "sample"].iloc[0]
    stem = Path(str(painted)).stem
    lab = iio.imread(data / "masks" / f"{stem}_labels.png")
    img = iio.imread(data / "images" / f"{stem}.png")
    img[:, 40:] = np.clip(img[:, 40:], 0, 60)  # dark background on the right...
    lab[:, 40:] = 0
    lab[2:62:2, 42:62] = 255  # ...painted 'ignore' in stripes (several separate regions)
    assert ignore_label(lab) == 255
    iio.imwrite(data / "images" / f"{stem}.png", img)
    iio.imwrite(data / "masks" / f"{stem}_labels.png", lab)
    train(rec, data, tmp_path / "run")
    losses = pd.read_csv(tmp_path / "run" / "sample_losses.csv", dtype={"sample": str})
    mean = losses.groupby("sample")["loss"].mean()
    assert painted in mean.index
    assert mean[painted] < 1.2 * mean.drop(painted).median(), mean.to_dict()
    assert painted not in set(select_pruned(losses, 20.0)["sample"])  # --prune-top 20: one sample of the six


def test_history_csv_has_each_class_object_f1(tmp_path):
    """val_f1_1, val_f1_2 (class-id targets), computed by validation since the thirty-third session, are columns of
    history.csv (they were dropped: history.csv keeps metric_names' columns) and can be monitored."""
    import imageio.v3 as iio

    from devolens.train.trainer import metric_names, train

    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for g in range(3):
        for t in range(2):
            img, lab = disc_frame(rng, 64)
            cls = np.where(lab > 0, 1 + lab % 2, 0).astype(np.uint8)  # live / dead
            iio.imwrite(root / "images" / f"emb{g}_t{t:03d}.png", img)
            iio.imwrite(root / "masks" / f"emb{g}_t{t:03d}_labels.png", cls)
    rec = tiny_recipe(data={"target": "classes", "classes": 3, "channels": 1, "val_fraction": 0.34},
                      loss={"name": "ce"}, train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0,
                                                  "monitor": "val_f1_2", "monitor_mode": "max"})
    names = metric_names(resolved(validate_recipe(rec)))
    assert names.index("val_f1_1") < names.index("val_f1_2") < names.index("n_train")
    assert "val_f1_1" not in metric_names(resolved(validate_recipe(tiny_recipe())))  # detection F1 only
    res = train(rec, root, tmp_path / "run")
    hist = pd.read_csv(tmp_path / "run" / "history.csv")
    assert {"val_f1_1", "val_f1_2"} <= set(hist.columns)
    assert hist[["val_f1_1", "val_f1_2"]].notna().all().all() and res.monitor == "val_f1_2"


@pytest.mark.slow
def test_a_network_trained_with_ignored_background_does_not_call_it_nucleus(tmp_path):
    """A tiny real run (12 images of 64x64, 20 epochs, ~20 s on a CPU): every mask paints 255 over 12x12 corner
    squares of pure background. The network learnt those as nuclei: on the same run before this session 85 % of
    the painted pixels were called nucleus (p 0.84 on average), and 6.1 % of the background; now none (p 0.003),
    and 0.05 %."""
    from devolens.models.architectures import load_model
    from devolens.train.trainer import train

    data = _write_folder(tmp_path / "d")
    rec = tiny_recipe(train={"epochs": 20, "batch_size": 4, "threads": 1, "overlay_samples": 0},
                      optimizer={"name": "adam", "lr": 0.01, "weight_decay": 0.0})
    train(rec, data, tmp_path / "run")
    model, _ = load_model(tmp_path / "run" / "best.safetensors")
    model.eval()
    images = sorted((data / "images").glob("*.png"))
    ds = SegmentationDataset(images, [data / "masks" / f"{p.stem}_labels.png" for p in images], pad_multiple=8)
    on_ignored, on_background = [], []
    with torch.no_grad():
        for item in ds:
            p = torch.sigmoid(model(item["image"][None]))[0, 0].numpy()
            lab = item["labels"].numpy()
            on_ignored.append(p[lab == 255])
            on_background.append(p[lab == 0])
    on_ignored, on_background = np.concatenate(on_ignored), np.concatenate(on_background)
    assert (on_ignored > 0.5).mean() < 0.1 and on_ignored.mean() < 0.2
    assert (on_background > 0.5).mean() < 0.03
