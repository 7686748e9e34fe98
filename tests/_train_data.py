"""Tiny synthetic datasets for the training tests (random discs on noise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

LETTERS = ("A", "E", "M", "P", "C", "D", "Z")


def disc_frame(rng: np.random.Generator, size: int = 64, n: int | None = None, radius=(4, 8)):
    """A noisy grey image with bright discs and its uint16 instance labels."""
    n = int(rng.integers(2, 6)) if n is None else n
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.uint16)
    img = rng.normal(40, 12, (size, size))
    k = 0
    for _ in range(n * 4):
        if k >= n:
            break
        r = rng.uniform(*radius)
        cy, cx = rng.uniform(r, size - r, 2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        if (labels[disc] > 0).any():
            continue
        k += 1
        labels[disc] = k
        img[disc] += rng.uniform(90, 160)
    return np.clip(img, 0, 255).astype(np.uint8), labels


def write_pairs(root: Path, frames) -> Path:
    """``frames`` (name, image, labels) as images/<name>.png + masks/<name>_labels.tif folder pairs."""
    import imageio.v3 as iio
    import tifffile

    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for name, img, lab in frames:
        iio.imwrite(root / "images" / f"{name}.png", img)
        tifffile.imwrite(root / "masks" / f"{name}_labels.tif", lab)
    return root


def make_pairs(root: Path, groups: int = 3, per_group: int = 4, size: int = 64, seed: int = 0,
               extra_image: bool = False, extra_mask: bool = False) -> Path:
    """images/<g>_tNNN.png + masks/<g>_tNNN_labels.tif folder pairs."""
    import imageio.v3 as iio
    import tifffile

    rng = np.random.default_rng(seed)
    write_pairs(root, [(f"emb{g}_t{t:03d}", *disc_frame(rng, size)) for g in range(groups) for t in range(per_group)])
    if extra_image:
        iio.imwrite(root / "images" / "lonely.png", np.zeros((size, size), np.uint8))
    if extra_mask:
        tifffile.imwrite(root / "masks" / "orphan_labels.tif", np.zeros((size, size), np.uint16))
    return root


def make_render_like(root: Path, embryos: int = 3, per_embryo: int = 4, size: int = 64, seed: int = 0) -> Path:
    """The `devolens render` layout: frames/, labels/, frames.csv (counts = number of discs)."""
    import imageio.v3 as iio
    import tifffile

    rng = np.random.default_rng(seed)
    (root / "frames").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    rows = []
    for e in range(embryos):
        for t in range(per_embryo):
            n = int(rng.integers(1, 7))
            img, lab = disc_frame(rng, size, n=n, radius=(3, 6))
            stem = f"sim{e}_t{t:03d}"
            iio.imwrite(root / "frames" / f"{stem}.png", img)
            tifffile.imwrite(root / "labels" / f"{stem}_labels.tif", lab)
            k = int(lab.max())
            a = k // 2
            rows.append({"file": f"frames/{stem}.png", "time": t, "embryo": f"sim{e}", "A": a, "E": k - a, "M": 0,
                         "P": 0, "C": 0, "D": 0, "Z": 0, "total": k, "artifact": ""})
    pd.DataFrame(rows).to_csv(root / "frames.csv", index=False)
    return root


def tiny_recipe(**over) -> dict:
    """A tiny segmentation recipe (depth-3 U-Net, 64x64, no augmentation by default)."""
    rec = {
        "name": "test", "task": "segmentation", "seed": 0,
        "data": {"target": "semantic", "channels": 1, "val_fraction": 0.34},
        "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 16]},
        "loss": {"name": "bce_dice"},
        "optimizer": {"name": "adam", "lr": 0.003, "weight_decay": 0.0},
        "scheduler": {"name": "none"},
        "augment": {"preset": "none"},
        "train": {"epochs": 2, "batch_size": 4, "overlay_samples": 2, "threads": 1},
    }
    for key, val in over.items():
        sec, _, k = key.partition("__")
        if k:
            rec.setdefault(sec, {})[k] = val
        else:
            rec[sec] = val
    return rec


def train_tiny_run(root: Path) -> tuple[Path, Path]:
    """A one-epoch boundary run of a tiny nuclei recipe on 4 made pairs of 32x32 (``root/A``), in ``root/run``:
    (the run's folder, its data), for tests of what reads a trained run (evaluate, export)."""
    from devolens.train.trainer import train

    data = make_pairs(root / "A", groups=2, per_group=2, size=32)
    rec = tiny_recipe(name="tiny_nuclei", data={"target": "boundary", "channels": 1, "val_fraction": 0.34},
                      loss={"name": "ce_dice"}, train={"epochs": 1, "batch_size": 4, "overlay_samples": 0,
                                                       "threads": 1})
    train(rec, data, root / "run", device="cpu")
    return root / "run", data

#: the verdict a fine-tuning records when no epoch beat its starting weights (run.json's start.not_beaten)
NOT_BEATEN_VERDICT = ("no epoch beat the starting weights (zoo:nuclei: val_f1 0.9000 before the first epoch; best epoch 1: "
           "val_f1 0.1000): keep the zoo model 'nuclei', or fine-tune again with a lower optimizer.lr or more epochs")


def not_beaten_run(run, tmp_path):
    """A copy of the run ``run`` (in ``tmp_path/ft``) whose run.json says, as a fine-tuning's does, that no epoch beat
    its starting weights (:data:`NOT_BEATEN_VERDICT`)."""
    import json
    import shutil

    copy = tmp_path / "ft"
    shutil.copytree(run, copy)
    record = json.loads((copy / "run.json").read_text())
    record["start"] = {"init": "zoo:nuclei", "monitor": "val_f1", "value": 0.9, "not_beaten": NOT_BEATEN_VERDICT}
    record.update(monitor="val_f1", mode="max", best_epoch=0, best_value=0.1)
    (copy / "run.json").write_text(json.dumps(record))
    best = json.loads((copy / "best.json").read_text())
    best.update(monitor="val_f1", value=0.1, epoch=0)
    (copy / "best.json").write_text(json.dumps(best))
    return copy
