"""Follow-ups of a review of the session's training changes (the thirty-fourth session, M10): automatic class weights
counted through whole items (the distance target computed, every tile of a store read with its image, at random
over its chunks), a mostly-ignored sample's few pixels given a whole sample's weight in the loss the optimiser
uses, a resumed run counting its class weights again instead of keeping its checkpoint's, and the batch padding of
mixed sizes learnt as background."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from _train_data import disc_frame, tiny_recipe, write_pairs
from devolens.data import datasets
from devolens.data.datasets import IGNORE_INDEX, H5TileDataset, SegmentationDataset, pad_collate
from devolens.train import trainer
from devolens.train.losses import batch_loss, build_loss
from devolens.train.recipe import resolved, validate_recipe


def _frames(sizes, seed: int = 0, ignore: bool = False):
    """Disc frames of the given sizes (an object on the bottom edge among them); ``ignore``: an 8-bit mask with a
    255 'ignore' region in two corners."""
    rng = np.random.default_rng(seed)
    out = []
    for k, size in enumerate(sizes):
        img, lab = disc_frame(rng, size, n=4, radius=(2, 3.5))
        lab[size - 4:, size // 2:] = lab.max() + 1  # an object on the bottom edge (its boundary there)
        if ignore:
            lab = lab.astype(np.uint8)
            lab[:6, :6] = 255
            lab[:6, size - 6:] = 255
        out.append((f"emb{k % 2}_t{k:03d}", img, lab))
    return out


def _pairs(root: Path):
    images = sorted((root / "images").glob("*.png"))
    return images, [root / "masks" / f"{p.stem}_labels.tif" for p in images]


def _item_targets(ds, indices):
    """The targets the count took before: each item's own part, its augmentation off."""
    saved, ds.augment = ds.augment, None
    try:
        out = []
        for i in indices:
            item = ds[int(i)]
            h, w = trainer._own_size(item)
            out.append(item["target"].numpy()[..., :h, :w])
        return out
    finally:
        ds.augment = saved


# ---------------------------------------------------------------- 1. what automatic class weights read
@pytest.mark.parametrize("cache", [False, True])
@pytest.mark.parametrize("kw", [dict(pad_multiple=32), dict(pad_multiple=8, scale=0.5),
                                dict(pad_multiple=1, size=(24, 20)),
                                dict(pad_multiple=16, boxes=[(0, 20, 3, 30)] * 5)])
def test_class_targets_are_the_items_targets_without_the_distance(tmp_path, monkeypatch, cache, kw):
    """A boundary target with a distance head: the count reads each sample's own target as its item has it (the
    padding's boundary at the edge included, the mask's 'ignore' pixels IGNORE_INDEX), and neither computes the
    distance target nor, without the cache, reads the image (it computed instance_distance for every counted
    sample)."""
    from devolens.data.augment import build_augment

    root = write_pairs(tmp_path / "d", _frames([40, 37, 40, 52, 33], ignore=True))
    images, masks = _pairs(root)
    ds = SegmentationDataset(images, masks, target="boundary", distance=True, cache=cache,
                             augment=build_augment("nuclei", 1.0, {"elastic": False}, seed=0), **kw)
    want = _item_targets(ds, range(len(ds)))
    assert any((t == IGNORE_INDEX).any() for t in want)
    calls = {"distance": 0, "image": 0}
    real_distance, real_read = datasets.instance_distance, datasets.read_image

    def distance(*a, **k):
        calls["distance"] += 1
        return real_distance(*a, **k)

    def read_image(path, *a, **k):
        calls["image"] += Path(path) in images  # (read_mask reads the masks with it)
        return real_read(path, *a, **k)

    monkeypatch.setattr(datasets, "instance_distance", distance)
    monkeypatch.setattr(datasets, "read_image", read_image)
    got = list(ds.class_targets(range(len(ds))))
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
    rec = resolved(validate_recipe(tiny_recipe(data={"target": "boundary"}, model={
        "arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 16],
        "distance_head": True}, loss={"name": "ce", "class_weights": "median_frequency"})))
    from devolens.train.losses import class_frequencies, class_weights

    _, used = trainer._loss_fn(rec, ds)
    assert used == class_weights(class_frequencies(want, 3), "median_frequency").tolist()
    assert calls["distance"] == 0
    assert calls["image"] == 0  # (with the cache: read into it by the items above, as training reads them)
    assert ds.augment is not None


def test_class_targets_without_the_cache_read_no_image(tmp_path, monkeypatch):
    root = write_pairs(tmp_path / "d", _frames([32, 32, 32]))
    ds = SegmentationDataset(*_pairs(root), target="semantic", cache=False)
    seen = []
    real = datasets.read_image

    def read_image(path, *a, **k):
        if "images" in Path(path).parts:  # (read_mask reads the masks with it)
            seen.append(path)
        return real(path, *a, **k)

    monkeypatch.setattr(datasets, "read_image", read_image)
    rec = resolved(validate_recipe(tiny_recipe(loss={"name": "bce", "class_weights": "inverse"})))
    trainer._loss_fn(rec, ds)
    assert seen == []


def _store(path: Path, n: int = 60, chunk: int = 10, side: int = 16) -> Path:
    import h5py

    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=rng.integers(0, 4000, (n, 1, side, side), dtype=np.uint16),
                         chunks=(chunk, 1, side, side))
        lab = np.zeros((n, side, side), np.uint8)
        for i in range(n):
            y, x = rng.integers(0, side - 6, 2)
            lab[i, y:y + 6, x:x + 4] = 1 + i % 2
            lab[i, 8:, 8:] = 3 if i % 7 == 0 else 0
        f.create_dataset("labels", data=lab, chunks=(chunk, side, side))
    return path


def test_tile_store_class_weights_read_each_label_chunk_once(tmp_path, monkeypatch):
    """An HDF5 tile store of 60 tiles in chunks of 10, 25 tiles drawn: the count reads the labels only, each chunk
    once, in store order (it read each drawn tile with its image, at random over the chunks: a whole chunk
    decompressed per tile). The weights are those of the drawn tiles' targets."""
    import h5py

    path = _store(tmp_path / "tiles.h5")
    ds = H5TileDataset(path, target="boundary", indices=np.arange(3, 60))
    monkeypatch.setattr(trainer, "CLASS_WEIGHT_SAMPLES", 25)
    picked = trainer._weight_samples(len(ds), 0)
    want = _item_targets(ds, picked)
    reads: list[tuple[str, object]] = []
    real = h5py.Dataset.__getitem__

    def getitem(self, key):
        reads.append((self.name, key))
        return real(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", getitem)
    rec = resolved(validate_recipe(tiny_recipe(data={"target": "boundary"},
                                               loss={"name": "ce", "class_weights": "median_frequency"})))
    _, used = trainer._loss_fn(rec, ds)
    from devolens.train.losses import class_frequencies, class_weights

    assert used == class_weights(class_frequencies(want, 3), "median_frequency").tolist()
    assert all(name == "/labels" for name, _ in reads), reads
    chunks = sorted({(int(ds.indices[i]) // 10) for i in picked})
    assert len(reads) == len(chunks)  # one slice of each chunk holding drawn tiles, in order
    assert [key.start // 10 for _, key in reads] == chunks


def test_tile_class_targets_of_a_contiguous_dataset(tmp_path):
    import h5py

    path = tmp_path / "flat.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((5, 1, 8, 8), np.uint16)
        f["labels"] = np.arange(5 * 64).reshape(5, 8, 8) % 3
    ds = H5TileDataset(path, target="classes", indices=[4, 1, 2])
    got = list(ds.class_targets([2, 0]))  # store order: tiles 2 and 4
    assert [np.array_equal(g, ds[i]["target"].numpy()) for g, i in zip(got, [2, 0])] == [True, True]


# ---------------------------------------------------------------- 2. the optimiser's loss over the batch's pixels
def _mostly_ignored(seed: int = 0, classes: int = 3):
    torch.manual_seed(seed)
    logits = torch.randn(2, classes, 32, 32, requires_grad=True)
    target = torch.randint(0, max(2, classes), (2, 32, 32))
    target[1] = IGNORE_INDEX
    target[1, 0, 0] = 1
    return logits, target


def test_a_mostly_ignored_sample_weighs_by_its_pixels():
    """Sample 2 has one pixel that counts: the optimiser's CE is the mean over the batch's 1025 counted pixels (as
    PyTorch's ignore_index and nnU-Net), so that pixel's gradient is an ordinary pixel's (it was ~1000x: the mean
    of the samples' means gave it a whole sample's weight); the per-sample losses stay each sample's own mean."""
    logits, target = _mostly_ignored()
    per = build_loss("ce")(logits, target)
    loss = batch_loss(per, target)
    ref = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-6)
    loss.backward()
    grad = logits.grad.clone()
    logits.grad = None
    ref.backward()
    assert torch.allclose(grad, logits.grad, rtol=1e-5, atol=1e-9)
    g = grad.abs().sum(1)
    assert float(g[1, 0, 0]) < 5 * float(g[0].mean())
    with torch.no_grad():
        assert float(per[1]) == pytest.approx(float(F.cross_entropy(logits[1:, :, :1, :1], target[1:, :1, :1])))


@pytest.mark.parametrize("name", ["ce_dice", "dice", "focal_dice"])
def test_dice_weighs_each_sample_by_its_counted_pixels(name):
    """A sample's soft Dice (its ignored pixels in neither sum) weighs by its share of the batch's counted pixels;
    a sample with none counts nothing (it halved the others' loss)."""
    logits, target = _mostly_ignored(1)
    logits = logits.detach()
    target[1, 0, 0] = IGNORE_INDEX  # nothing counts
    fn = build_loss(name)
    per = fn(logits, target)
    assert float(per[1]) == 0.0
    assert torch.equal(batch_loss(per, target), per[0])
    logits2, target2 = _mostly_ignored(1)
    per2 = fn(logits2.detach(), target2)
    want = (per2[0] * 1024 + per2[1]) / 1025
    assert float(batch_loss(per2, target2)) == pytest.approx(float(want), rel=1e-6)


@pytest.mark.parametrize("name,classes,weights", [("ce", 3, None), ("ce", 3, [0.2, 1.0, 3.0]), ("bce", 1, [0.4, 2.0]),
                                                  ("focal", 3, None), ("ce_dice", 3, [1.0, 2.0, 0.5]),
                                                  ("bce_dice", 1, None), ("dice", 3, None),
                                                  ("focal_dice", 1, None)])
def test_without_ignored_pixels_the_loss_and_gradient_are_the_mean_bit_for_bit(name, classes, weights):
    """No ignored pixel, one size: the optimiser's loss and its gradient are those of the per-sample losses' mean,
    bit for bit (also with the distance head's term)."""
    torch.manual_seed(3)
    x = torch.randn(4, classes + 1, 37, 29)
    target = torch.randint(0, max(2, classes), (4, 37, 29))
    distance = torch.rand(4, 37, 29)
    fn = build_loss(name, weights)
    grads, values = [], []
    for reduce in (lambda per: per.mean(), lambda per: batch_loss(per, target)):
        y = x[:, :classes].clone().requires_grad_(True)
        d = x[:, classes].clone().requires_grad_(True)
        per = fn(y, target) + (torch.sigmoid(d) - distance).abs().mean(dim=(1, 2))
        loss = reduce(per)
        loss.backward()
        values.append(loss.detach())
        grads.append((y.grad, d.grad))
    assert torch.equal(values[0], values[1])
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_count_losses_average_their_samples():
    per = torch.tensor([1.0, 2.0, 6.0])
    assert torch.equal(batch_loss(per, torch.rand(3, 4)), per.mean())


# ---------------------------------------------------------------- 3. a resumed run keeps its class weights
def test_a_resumed_run_uses_its_checkpoints_class_weights(tmp_path, monkeypatch):
    """A run whose checkpoint records automatic class weights (e.g. one started before the weights were counted as
    now) resumes with them: they were counted again on the data, and the run changed its loss mid-way."""
    from _train_data import make_pairs

    data = make_pairs(tmp_path / "data", groups=2, per_group=3, size=32)
    rec = tiny_recipe(loss={"name": "bce", "class_weights": "median_frequency"},
                      train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1})
    run = tmp_path / "run"
    first = trainer.train(rec, data, run)
    counted = json.loads((run / "run.json").read_text())["class_weights"]
    assert counted is not None and counted != [0.25, 3.5]
    meta = json.loads((run / "checkpoint.json").read_text())
    meta["extra"]["class_weights"] = [0.25, 3.5]  # as an older version counted them
    (run / "checkpoint.json").write_text(json.dumps(meta))
    seen = []
    real = trainer._loss_fn

    def loss_fn(recipe, ds, *recorded):
        out = real(recipe, ds, *recorded)
        seen.append(out[1])
        return out

    monkeypatch.setattr(trainer, "_loss_fn", loss_fn)
    trainer.train(rec, data, run, resume=True, epochs=2)
    assert seen == [[0.25, 3.5]]
    assert json.loads((run / "run.json").read_text())["class_weights"] == [0.25, 3.5]
    assert json.loads((run / "checkpoint.json").read_text())["extra"]["class_weights"] == [0.25, 3.5]
    assert first.notes == json.loads((run / "run.json").read_text())["notes"]


def test_recorded_weights_of_a_checkpoint(tmp_path):
    ckpt = tmp_path / "checkpoint.safetensors"
    rec = resolved(validate_recipe(tiny_recipe(loss={"name": "bce", "class_weights": "inverse"})))
    assert trainer._recorded_weights(ckpt, rec) is None  # no checkpoint.json
    for extra, want in [({"class_weights": [1, 2.5]}, [1.0, 2.5]), ({"class_weights": None}, None), ({}, None),
                        ({"class_weights": "x"}, None), ({"class_weights": [1, 2, 3]}, None),
                        ({"class_weights": [1, float("nan")]}, None)]:
        ckpt.with_suffix(".json").write_text(json.dumps({"extra": {"epoch": 1, **extra}}))
        assert trainer._recorded_weights(ckpt, rec) == want, extra
    given = resolved(validate_recipe(tiny_recipe(loss={"name": "bce", "class_weights": [1.0, 2.0]})))
    ckpt.with_suffix(".json").write_text(json.dumps({"extra": {"epoch": 1, "class_weights": [3.0, 4.0]}}))
    assert trainer._recorded_weights(ckpt, given) is None  # numbers of the recipe: its own


# ---------------------------------------------------------------- 4. the batch padding of mixed sizes
def test_pad_collate_pads_the_target_with_ignore(tmp_path):
    """A 32 px sample in a batch with a 64 px one: its target's padding is IGNORE_INDEX (was 0: background to
    learn), its image, labels and distance zeros; a batch of one size is collated as before."""
    root = write_pairs(tmp_path / "d", _frames([64, 32]))
    ds = SegmentationDataset(*_pairs(root), target="boundary", distance=True)
    batch = pad_collate([ds[0], ds[1]])
    small = 1 if ds[1]["image"].shape[-1] == 32 else 0
    pad = batch["target"][small]
    assert (pad[32:] == IGNORE_INDEX).all() and (pad[:, 32:] == IGNORE_INDEX).all()
    assert (batch["target"][small, :32, :32] >= 0).all()
    for key in ("image", "labels", "distance"):
        assert (batch[key][small][..., 32:, :] == 0).all()
    same = pad_collate([ds[small], ds[small]])
    assert torch.equal(same["target"][0], ds[small]["target"])


def test_mixed_sizes_learn_no_padding_and_weigh_each_pixel_alike(tmp_path):
    """In a batch of a 32 and a 64 px sample, the library's per-sample losses are each sample's own (the padding
    left out: _own_losses has nothing to change, to float rounding), and the optimiser's loss is the mean over the
    batch's own pixels."""
    root = write_pairs(tmp_path / "d", _frames([64, 32], seed=2))
    ds = SegmentationDataset(*_pairs(root), target="boundary", distance=True)
    batch = pad_collate([ds[0], ds[1]])
    rec = resolved(validate_recipe(tiny_recipe(data={"target": "boundary"}, model={
        "arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [32, 16, 16],
        "distance_head": True}, loss={"name": "ce_dice", "distance_weight": 1.0})))
    loss_fn, _ = trainer._loss_fn(rec, None)
    torch.manual_seed(0)
    y = torch.randn(2, 4, 64, 64)
    per = loss_fn(y, batch["target"], batch["distance"])
    own = trainer._own_losses(per, y, batch["target"], batch["distance"], batch["size"], 32, loss_fn)
    assert torch.allclose(per, own, rtol=1e-6, atol=0)
    small = int(np.argmin(batch["size"][:, 0].numpy()))
    alone = loss_fn(y[small:small + 1, :, :32, :32], batch["target"][small:small + 1, :32, :32],
                    batch["distance"][small:small + 1, :32, :32])
    assert float(per[small]) == pytest.approx(float(alone[0]), rel=1e-6)
    pix = F.cross_entropy(y[:, :3], batch["target"], ignore_index=IGNORE_INDEX)
    ce = build_loss("ce")(y[:, :3], batch["target"])
    assert float(batch_loss(ce, batch["target"])) == pytest.approx(float(pix), rel=1e-6)


def test_training_optimises_the_batch_loss(tmp_path, monkeypatch):
    """The training step minimises batch_loss of the per-sample losses (one call a step), with the collated
    target's padding ignored; sample_losses.csv keeps each sample's own loss."""
    root = write_pairs(tmp_path / "data", _frames([64, 64, 48, 48, 64, 64, 48, 48], seed=4, ignore=True))
    calls = []
    real = trainer.batch_loss

    def spy(per, target, *counts):
        calls.append((per.detach().clone(), target.clone()))
        return real(per, target, *counts)

    monkeypatch.setattr(trainer, "batch_loss", spy)
    rec = tiny_recipe(data={"target": "semantic", "val_fraction": 0.5},
                      train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1})
    trainer.train(rec, root, tmp_path / "run")
    assert len(calls) == 1
    per, target = calls[0]
    assert (target == IGNORE_INDEX).any(dim=(1, 2)).all()  # the 'ignore' regions and the padding
    losses = pd.read_csv(tmp_path / "run" / "sample_losses.csv")
    assert np.allclose(np.sort(losses["loss"].to_numpy()), np.sort(per.numpy()), rtol=1e-5)
