"""`devolens evaluate` and training validation (evaluate_model) after the thirty-third session's metrics audit: each
sample scored on its own pixels whatever the batch size, 255 painted over several regions of an 8-bit mask scored
as 'ignore', and per-class object F1 for class-id targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from _train_data import tiny_recipe
from devolens.data.datasets import SegmentationDataset, ignore_label, repeated_labels
from devolens.train.recipe import load_recipe, resolved, validate_recipe
from devolens.train.trainer import check_masks, evaluate_model

ROOT = Path(__file__).resolve().parents[1]


class Threshold(torch.nn.Module):
    """A 'network' without context: logit 12 (x - 0.5) per pixel, so padding cannot change its predictions."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return 12 * (x[:, :1] - 0.5)


def _pairs(root: Path, sizes, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Noisy discs on a dark field, one image/mask pair per size (uint16 instance labels)."""
    import imageio.v3 as iio
    import tifffile

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    images, masks = [], []
    for n, (h, w) in enumerate(sizes):
        yy, xx = np.mgrid[:h, :w]
        lab = np.zeros((h, w), np.uint16)
        for k in range(1, 5):
            cy, cx, r = rng.integers(5, h - 5), rng.integers(5, w - 5), rng.integers(3, 5)
            lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = k
        img = np.clip((lab > 0) * 170 + rng.normal(60, 50, (h, w)), 0, 255).astype(np.uint8)
        images.append(root / f"i{n}.png")
        masks.append(root / f"i{n}_labels.tif")
        iio.imwrite(images[-1], img)
        tifffile.imwrite(masks[-1], lab)
    return images, masks


def _rec(**over) -> dict:
    return resolved(validate_recipe(tiny_recipe(**over)))


def test_scores_do_not_depend_on_the_batch_size_or_the_padding(tmp_path):
    """Images of several sizes, none a multiple of the network's 8: the padding (to the multiple, and to the
    batch's largest image) was scored as background, so the metrics changed with the batch size; each sample is now
    scored on its own pixels, the same as without any padding."""
    images, masks = _pairs(tmp_path, [(37, 45), (52, 70), (41, 41), (37, 45)])
    rec = _rec()
    net = Threshold()

    def run(pad: int, bs: int) -> dict:
        ds = SegmentationDataset(images, masks, target="semantic", pad_multiple=pad)
        return evaluate_model(net, ds, rec, batch_size=bs, keep=4, per_image=True)

    unpadded = run(1, 1)
    for bs in (1, 3, 4):
        res = run(8, bs)
        assert res["metrics"] == unpadded["metrics"], bs
        assert res["images"] == unpadded["images"]
        # the kept samples are the samples' own pixels too (padded only to the largest of them)
        assert res["samples"]["truth"].shape == (4, 52, 70)
    item = SegmentationDataset(images, masks, pad_multiple=8)[0]
    assert tuple(item["image"].shape[-2:]) == (40, 48) and item["size"].tolist() == [37, 45]


def test_a_network_sees_each_sample_as_alone_whatever_the_batch(tmp_path):
    """A real network's predictions near a padded border change with the padding's extent (zero context): samples of
    one size run together, others apart, so batch size 1 and 3 agree on every metric."""
    from devolens.models.architectures import build_model

    images, masks = _pairs(tmp_path, [(30, 45), (52, 70), (41, 33)], seed=1)
    rec = _rec()
    torch.manual_seed(0)
    model = build_model("unet", "resnet18", in_channels=1, classes=1, decoder_channels=(8, 8, 8), encoder_depth=3)
    ds = SegmentationDataset(images, masks, target="semantic", pad_multiple=8)
    one = evaluate_model(model, ds, rec, batch_size=1, per_image=True)
    three = evaluate_model(model, ds, rec, batch_size=3, per_image=True)
    assert one["metrics"] == three["metrics"] and one["images"] == three["images"]


def _ignore_well(root: Path) -> tuple[Path, Path]:
    """An 8-bit mask of six nuclei (1-6) and 255 painted over three discs far apart ('ignore'): two dark in the
    image, one bright (a nucleus the network will find there)."""
    import imageio.v3 as iio

    h, w = 64, 128
    yy, xx = np.mgrid[:h, :w]
    lab = np.zeros((h, w), np.uint8)
    img = np.full((h, w), 20, np.uint8)

    def disc(cy, cx, value, bright):
        d = (yy - cy) ** 2 + (xx - cx) ** 2 <= 16
        lab[d] = value
        if bright:
            img[d] = 230

    for k, (cy, cx) in enumerate([(12, 30), (12, 50), (12, 80), (50, 30), (50, 50), (50, 80)], start=1):
        disc(cy, cx, k, True)
    disc(32, 8, 255, False)
    disc(32, 118, 255, False)
    disc(32, 64, 255, True)
    root.mkdir(parents=True, exist_ok=True)
    iio.imwrite(root / "well.png", img)
    iio.imwrite(root / "well_labels.png", lab)
    return root / "well.png", root / "well_labels.png"


def test_255_painted_over_regions_is_scored_as_ignore(tmp_path):
    """repeated_labels reads 255 over several far-apart regions of an 8-bit mask as an 'ignore' value (no wrapped-
    labels note); the scores read it so too: a nucleus found there is no false detection, the dark regions no missed
    nucleus and no missed pixels, and neither is counted (was one nucleus: F1 0.75, a pixel IoU below 1)."""
    image, mask = _ignore_well(tmp_path)
    import imageio.v3 as iio

    lab = iio.imread(mask)
    assert lab.dtype == np.uint8 and repeated_labels(lab) == 0 and ignore_label(lab) == 255
    ds = SegmentationDataset([image], [mask], target="semantic", pad_multiple=8)
    assert int(ds[0]["ignore"]) == 255
    res = evaluate_model(Threshold(), ds, _rec(), batch_size=1, per_image=True)
    m = res["metrics"]
    assert (m["val_f1"], m["val_precision"], m["val_recall"]) == (1.0, 1.0, 1.0)
    assert m["val_iou_1"] == 1.0 and m["val_count_mae"] == 0.0
    assert res["images"][0] == {"true_count": 6, "pred_count": 6, "tp": 6, "fp": 0, "fn": 0, "precision": 1.0,
                                "recall": 1.0, "f1": 1.0}
    notes = check_masks(pd.DataFrame({"image": [str(image)], "labels": [str(mask)]}))
    assert len(notes) == 1 and "255 is read as 'ignore'" in notes[0] and "well_labels.png" in notes[0]


def test_ignore_label_only_where_255_alone_repeats():
    """Not 'ignore': a thresholded 0/255 mask (each blob a nucleus), wrapped 8-bit labels (1, 2... repeat too), a
    16-bit mask, a single 255 region."""
    h, w = 40, 160
    yy, xx = np.mgrid[:h, :w]

    def discs(values_at):
        lab = np.zeros((h, w), np.uint8)
        for (cy, cx), v in values_at:
            lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= 9] = v
        return lab

    centres = [(20, 10), (20, 50), (20, 90), (20, 130)]
    assert ignore_label(discs(zip(centres, [255] * 4))) == 0  # thresholded
    assert ignore_label(discs(zip(centres, [1, 255, 1, 255]))) == 0  # wrapped: 1 repeats too
    assert ignore_label(discs(zip(centres, [1, 2, 3, 255]))) == 0  # one 255 region: a nucleus
    painted = discs(zip(centres, [1, 255, 2, 255]))
    assert ignore_label(painted) == 255 and ignore_label(painted.astype(np.uint16)) == 0


def test_class_targets_get_per_class_object_f1():
    """Class-id targets (livedead): val_f1 matches objects on IoU alone (detection F1, kept as it is: checkpoint
    selection reads it); val_f1_1, val_f1_2 match each class's objects among themselves. A network that calls every
    nucleus live: detection F1 1, live 2/3 (the dead nucleus called live is a false live object), dead 0."""
    rec = resolved(validate_recipe(load_recipe(ROOT / "recipes" / "livedead.yaml")))
    tgt = np.zeros((32, 32), np.int64)
    tgt[4:12, 4:12] = 2
    tgt[20:28, 20:28] = 1

    class AllLive(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            fg = (x[:, :1] > 0.5).float()
            return torch.cat([10 * (1 - fg), 10 * fg, torch.zeros_like(fg)], 1)

    img = np.zeros((2, 32, 32), np.float32)
    img[:, tgt > 0] = 1
    ds = [{"image": torch.from_numpy(img), "target": torch.from_numpy(tgt),
           "labels": torch.from_numpy(tgt.astype(np.int32)), "index": torch.tensor(0)}]
    m = evaluate_model(AllLive(), ds, rec, batch_size=1)["metrics"]
    assert m["val_f1"] == 1.0
    assert m["val_f1_1"] == pytest.approx(2 / 3) and m["val_f1_2"] == 0.0
    # a semantic target has no per-class object F1
    sem = evaluate_model(Threshold(), [{"image": torch.from_numpy(img[:1]), "target": torch.from_numpy((tgt > 0) * 1),
                                        "labels": torch.from_numpy(tgt.astype(np.int32)), "index": torch.tensor(0)}],
                         _rec(), batch_size=1)["metrics"]
    assert not any(k.startswith("val_f1_") for k in sem)


def test_the_validation_loss_is_each_image_on_its_own_pixels(tmp_path):
    """val_loss, like the metrics, leaves out the padding to the network's multiple: it was 0.205, 0.173 and 0.095
    for the same images padded to multiples of 1, 8 and 32 (a loss that drives the scheduler and can be monitored)."""
    import torch

    def loss_fn(y, t, d=None):
        return torch.nn.functional.binary_cross_entropy_with_logits(
            y[:, 0], (t > 0).float(), reduction="none").mean((1, 2))

    images, masks = _pairs(tmp_path, [(37, 45), (52, 70), (41, 41), (37, 45)])
    seen = set()
    for pad, bs in ((1, 1), (8, 1), (8, 4), (32, 1)):
        ds = SegmentationDataset(images, masks, target="semantic", pad_multiple=pad)
        seen.add(round(evaluate_model(Threshold(), ds, _rec(), loss_fn, batch_size=bs)["metrics"]["val_loss"], 9))
    assert len(seen) == 1
