"""Mends of the thirty-fifth session (M1) to the training data and engine: val_loss and train_loss the loss the
optimiser minimises (the mean over counted pixels, not over samples), the padding to the network's multiple
ignored in the target (was background to learn), a chunk cache for HDF5 tile files whose chunks hold several
tiles, and no second scoring of per-sample losses for the library's losses."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from _train_data import disc_frame, tiny_recipe, write_pairs
from devolens.data.datasets import (IGNORE_INDEX, H5TileDataset, LiveRenderDataset, SegmentationDataset,
                                    _pad_to, h5_tile_cache, labels_to_target, pad_collate)
from devolens.train import trainer
from devolens.train.losses import batch_loss, build_loss, counted, leaves_out, pixel_mean
from devolens.train.recipe import resolved, validate_recipe


def _frames(sizes, seed: int = 0, ignore: bool = False):
    """Disc frames of the given sizes; ``ignore``: an 8-bit mask with 255 painted over two corners ('ignore'),
    the first frame's over most of it."""
    rng = np.random.default_rng(seed)
    out = []
    for k, size in enumerate(sizes):
        img, lab = disc_frame(rng, size, n=4, radius=(2, 3.5))
        if ignore:
            lab = lab.astype(np.uint8)
            lab[:6, :6] = 255
            lab[:6, size - 6:] = 255
            if k == 0:
                lab[: size - 8] = 255
        out.append((f"emb{k % 2}_t{k:03d}", img, lab))
    return out


def _pairs(root: Path):
    images = sorted((root / "images").glob("*.png"))
    return images, [root / "masks" / f"{p.stem}_labels.tif" for p in images]


def _rec(**over) -> dict:
    return resolved(validate_recipe(tiny_recipe(**over)))


# ---------------------------------------------------------------- 1. val_loss and train_loss: one quantity
def test_val_loss_is_the_mean_over_the_sets_counted_pixels(tmp_path):
    """Images of two sizes with 'ignore' regions (one mostly ignored): val_loss is the BCE averaged over every
    counted pixel of the set (what training minimises per batch), not the mean of the samples' means."""
    root = write_pairs(tmp_path / "d", _frames([48, 32, 48, 40], seed=3, ignore=True))
    ds = SegmentationDataset(*_pairs(root), target="semantic", pad_multiple=8)
    rec = _rec(loss={"name": "bce"})
    torch.manual_seed(0)
    model = trainer.build_from_recipe(rec).eval()
    loss_fn, _ = trainer._loss_fn(rec, None)
    logits, truth, per = [], [], []
    with torch.no_grad():
        for i in range(len(ds)):
            item = ds[i]
            h, w = item["size"].tolist()
            y = model(item["image"][None])[0, 0, :h, :w]
            t = item["target"][:h, :w]
            logits.append(y[t >= 0])
            truth.append(t[t >= 0].float())
            per.append(float(loss_fn(y[None, None], t[None])[0]))
    want = float(F.binary_cross_entropy_with_logits(torch.cat(logits), torch.cat(truth)))
    for bs in (1, 3):
        got = trainer.evaluate_model(model, ds, rec, loss_fn, batch_size=bs)["metrics"]["val_loss"]
        assert got == pytest.approx(want, rel=1e-5), bs
    assert want != pytest.approx(float(np.mean(per)), rel=1e-3)  # (the samples' mean: what it was)


def test_val_loss_of_same_size_data_without_ignore_is_the_samples_mean(tmp_path):
    """Samples that count alike: val_loss is the plain mean of their losses, as before (bit for bit)."""
    root = write_pairs(tmp_path / "d", _frames([40, 40, 40], seed=4))
    ds = SegmentationDataset(*_pairs(root), target="boundary", pad_multiple=8)
    rec = _rec(data={"target": "boundary"}, loss={"name": "ce_dice"})
    torch.manual_seed(1)
    model = trainer.build_from_recipe(rec).eval()
    loss_fn, _ = trainer._loss_fn(rec, None)
    with torch.no_grad():
        per = [float(loss_fn(model(ds[i]["image"][None]), ds[i]["target"][None])[0]) for i in range(len(ds))]
    got = trainer.evaluate_model(model, ds, rec, loss_fn, batch_size=2)["metrics"]["val_loss"]
    assert got == pytest.approx(float(np.mean(per)), rel=1e-6)
    assert pixel_mean(per, [1600] * 3) == float(np.mean(per))


def test_pixel_mean_weighs_samples_by_their_counted_pixels():
    assert pixel_mean([1.0, 3.0], [1, 3]) == pytest.approx(2.5)
    assert pixel_mean([1.0, 3.0], [2, 2]) == 2.0
    assert pixel_mean([1.0, 3.0]) == 2.0  # counts of a regression task: samples alike
    assert pixel_mean([0.0, 0.0], [0, 0]) == 0.0
    assert np.isnan(pixel_mean([]))
    target = torch.full((2, 4, 4), IGNORE_INDEX)
    target[0, :2] = 1
    target[1] = 0
    assert counted(target).tolist() == [8, 16]
    assert counted(torch.zeros(2, 3)) is None
    per = torch.tensor([1.0, 3.0])
    assert float(batch_loss(per, target)) == pytest.approx(pixel_mean(per.tolist(), [8, 16]))


def test_history_train_loss_is_the_mean_over_the_epochs_counted_pixels(tmp_path):
    """train_loss in history.csv weighs each training sample's loss (sample_losses.csv) by its counted pixels, as
    val_loss and the optimiser's batch loss do: a mostly ignored image's few pixels weigh as few pixels."""
    root = write_pairs(tmp_path / "data", _frames([64, 64, 48, 48, 64, 64, 48, 48], seed=5, ignore=True))
    rec = tiny_recipe(data={"target": "semantic", "val_fraction": 0.5},
                      train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1})
    res = trainer.train(rec, root, tmp_path / "run")
    losses = pd.read_csv(tmp_path / "run" / "sample_losses.csv")
    b = trainer.build_data(resolved(validate_recipe(rec)), root)
    pixels = {b.train.ids[i]: int((b.train[i]["target"] >= 0).sum()) for i in range(len(b.train))}
    assert len(set(pixels.values())) > 1
    weights = losses["sample"].map(pixels).to_numpy(dtype=float)
    want = float((losses["loss"] * weights).sum() / weights.sum())
    got = float(res.history["train_loss"].iloc[0])
    assert got == pytest.approx(want, rel=1e-9)
    assert got != pytest.approx(float(losses["loss"].mean()), rel=1e-4)


# ---------------------------------------------------------------- 2. the padding to the network's multiple
def test_padding_to_the_multiple_is_ignored_in_the_target(tmp_path):
    """A 37x45 image padded to 40x48: the target's padding is IGNORE_INDEX (was background), its own pixels as
    before (made from the padded labels: an object on the edge keeps its boundary there); labels, image and
    distance stay 0 there; a class-id target's labels too."""
    root = write_pairs(tmp_path / "d", [("a", *disc_frame(np.random.default_rng(0), 64, n=5))])
    images, masks = _pairs(root)
    box = [(0, 37, 0, 45)]
    ds = SegmentationDataset(images, masks, target="boundary", distance=True, pad_multiple=8, boxes=box)
    item = ds[0]
    assert item["size"].tolist() == [37, 45] and tuple(item["target"].shape) == (40, 48)
    tgt = item["target"].numpy()
    assert (tgt[37:] == IGNORE_INDEX).all() and (tgt[:, 45:] == IGNORE_INDEX).all()
    import tifffile

    lab = tifffile.imread(masks[0])[:37, :45]
    assert np.array_equal(tgt[:37, :45], labels_to_target(_pad_to(lab, 8), "boundary")[:37, :45])
    assert (tgt[:37, :45] >= 0).all()
    for key in ("labels", "distance"):
        assert (item[key].numpy()[37:] == 0).all() and (item[key].numpy()[:, 45:] == 0).all()
    assert (item["image"].numpy()[:, 37:] == 0).all()
    classes = SegmentationDataset(images, masks, target="classes", pad_multiple=8, boxes=box)[0]
    assert (classes["target"].numpy()[37:] == IGNORE_INDEX).all()
    assert (classes["labels"].numpy()[37:] == 0).all()


def test_a_sample_already_a_multiple_is_as_before(tmp_path):
    root = write_pairs(tmp_path / "d", _frames([40], seed=2))
    images, masks = _pairs(root)
    item = SegmentationDataset(images, masks, target="boundary", distance=True, pad_multiple=8)[0]
    import tifffile

    assert torch.equal(item["target"], torch.from_numpy(labels_to_target(tifffile.imread(masks[0]), "boundary")))


def test_the_losses_leave_the_padding_to_the_multiple_out(tmp_path):
    """The library's per-sample loss of a padded item is its loss on its own pixels (the padding counted as
    background before), so training neither learns nor weighs it."""
    root = write_pairs(tmp_path / "d", _frames([36], seed=6))
    ds = SegmentationDataset(*_pairs(root), target="boundary", distance=True, pad_multiple=16)
    item = ds[0]
    assert tuple(item["target"].shape) == (48, 48)
    rec = _rec(data={"target": "boundary"}, model={"arch": "unet", "encoder": "resnet18", "encoder_depth": 4,
                                                   "decoder_channels": [32, 16, 16, 16], "distance_head": True},
               loss={"name": "ce_dice"})
    loss_fn, _ = trainer._loss_fn(rec, None)
    torch.manual_seed(0)
    y = torch.randn(1, 4, 48, 48)
    whole = loss_fn(y, item["target"][None], item["distance"][None])
    own = loss_fn(y[..., :36, :36], item["target"][None, :36, :36], item["distance"][None, :36, :36])
    assert float(whole[0]) == pytest.approx(float(own[0]), rel=1e-5)
    assert int(counted(item["target"][None])[0]) == 36 * 36


def test_a_live_render_ignores_its_padding_to_the_multiple():
    class Fake(LiveRenderDataset):
        def render(self, i):
            lab = np.zeros((30, 27), np.int32)
            lab[5:12, 20:27] = 1  # on the right edge
            return SimpleNamespace(image=np.full((30, 27), 90, np.uint8), labels=lab, counts={})

    table = pd.DataFrame({"embryo": ["e"], "time": [0], "cell": ["AB"], "x": [0.0], "y": [0.0], "z": [0.0],
                          "size": [1.0]})
    item = Fake([table], target="boundary", pad_multiple=8)[0]
    tgt = item["target"].numpy()
    assert tgt.shape == (32, 32) and item["size"].tolist() == [30, 27]
    assert (tgt[30:] == IGNORE_INDEX).all() and (tgt[:, 27:] == IGNORE_INDEX).all()
    assert (tgt[:30, :27] >= 0).all() and (tgt[5:12, 26] == 2).all()  # the edge object's boundary, as before


def test_automatic_class_weights_count_no_padding_of_a_live_render():
    """A dataset without class_targets (live renders): the count takes each item's own part; its padding, ignored
    now, would count nowhere anyway."""
    class Fake(LiveRenderDataset):
        def render(self, i):
            lab = np.zeros((20, 20), np.int32)
            lab[:10] = 1
            return SimpleNamespace(image=np.zeros((20, 20), np.uint8), labels=lab, counts={})

    table = pd.DataFrame({"embryo": ["e"] * 2, "time": [0, 1], "cell": ["AB"] * 2, "x": [0.0] * 2, "y": [0.0] * 2,
                          "z": [0.0] * 2, "size": [1.0] * 2})
    ds = Fake([table], target="semantic", pad_multiple=16)
    rec = _rec(loss={"name": "bce", "class_weights": "inverse"})
    _, used = trainer._loss_fn(rec, ds)
    assert used == pytest.approx([1.0, 1.0])  # half foreground on the own pixels (the padding was background)


# ---------------------------------------------------------------- 3. HDF5 tile files of chunks of several tiles
def _chunky(path: Path, n: int = 80, side: int = 256, per: int = 16, compression="gzip") -> Path:
    """A file not written by devolens: tiles in chunks of ``per`` (2 MiB of images a chunk), 10 MiB in all: more
    than HDF5's default chunk cache (1 MiB; 8 MiB from HDF5 2.0)."""
    import h5py

    rng = np.random.default_rng(0)
    img = np.zeros((n, 1, side, side), np.uint16)
    img[:, :, ::17, ::13] = rng.integers(0, 4000, img[:, :, ::17, ::13].shape)
    lab = (img[:, 0] > 2000).astype(np.uint8)
    with h5py.File(path, "w") as f:
        kw = {} if compression is None else {"compression": compression}
        f.create_dataset("images", data=img, chunks=(per, 1, side, side), **kw)
        f.create_dataset("labels", data=lab, chunks=(per, side, side), **kw)
    return path


def test_a_tile_file_of_chunks_of_several_tiles_gets_a_chunk_cache(tmp_path):
    """Its chunks are kept decompressed (each read once for its 16 tiles, not once for each), all of them within
    the bound, on a file opened once with its datasets kept open (a dataset opened anew for each tile lost its
    cached chunks); the tiles read are the file's."""
    import h5py

    path = _chunky(tmp_path / "chunky.h5")
    ds = H5TileDataset(path)
    cache = ds.chunk_cache
    assert cache is not None and cache.window is None and cache.step == 16  # (all of them held: any order)
    assert 80 * 256 * 256 * 3 <= cache.nbytes <= (64 << 20) + (2 << 20)  # every chunk, within the bound
    with h5py.File(path, "r") as f:
        images, labels = f["images"][:], f["labels"][:]
    order = np.random.default_rng(1).permutation(len(ds))
    for i in order[:20]:
        img, lab = ds.read(int(i))
        assert np.array_equal(img, np.moveaxis(images[i], 0, -1)) and np.array_equal(lab, labels[i])
    for d, size in zip((ds._images, ds._labels), cache.sizes):
        assert d.id.get_access_plist().get_chunk_cache()[:2] == size[::-1]  # (nslots, nbytes)
    kept = ds._images
    ds.read(0)
    assert ds._images is kept
    assert len(ds) == 80 and ds[3]["target"].shape == (256, 256)
    import pickle

    copy = pickle.loads(pickle.dumps(ds))  # (loader processes open their own)
    assert copy._file is None and copy._images is None and copy.chunk_cache == ds.chunk_cache


def test_the_chunk_cache_is_sized_to_the_tiles_read(tmp_path):
    """Each dataset's cache holds every chunk the tiles read lie in (one side of a split: a share of them) where
    the images' and labels' together fit the bound; over it, a window of groups of chunks each (the same number
    of groups, as many as fit; at least one: the bound raised to one group, up to ``most``); a chunk per tile and
    uncompressed data keep HDF5's default. The cache the file was opened with does not matter (each dataset is
    opened with its own)."""
    import h5py

    from devolens.data.datasets import H5TileCache

    path = _chunky(tmp_path / "chunky.h5")
    mib = 1 << 20  # a chunk of labels; one of images is 2 MiB: 5 of each in the file (100 slots a chunk held + 1)
    with h5py.File(path, "r", rdcc_nbytes=mib, rdcc_nslots=521) as f:  # (HDF5 1.x's default cache)
        ds = [f["images"], f["labels"]]

        def cache(images, labels, window=None):
            return H5TileCache(((images * mib + mib, 100 * (images // 2) + 1), (labels * mib + mib, 100 * labels + 1)),
                               16, window)

        assert h5_tile_cache(ds, np.arange(80)) == cache(10, 5)
        assert h5_tile_cache(ds, [0, 1, 2]) == cache(2, 1)  # one chunk of each
        assert h5_tile_cache(ds, [0, 40, 79]) == cache(6, 3)  # three
        assert h5_tile_cache(ds, np.arange(80), limit=12 * mib) == cache(8, 4, 4)  # 4 of the 5 groups
        assert h5_tile_cache(ds, np.arange(80), limit=8 * mib) == cache(4, 2, 2)
        assert h5_tile_cache(ds, np.arange(80), limit=3 * mib) == cache(2, 1, 1)
        assert h5_tile_cache(ds, np.arange(80), limit=2 * mib) == cache(2, 1, 1)  # raised to one group
        assert h5_tile_cache(ds, np.arange(80), limit=2 * mib, most=2 * mib) is None  # not even one fits
    with h5py.File(path, "r", rdcc_nbytes=64 * mib) as f:
        assert h5_tile_cache([f["images"], f["labels"]], np.arange(80)) == cache(10, 5)
    for kw, name in ((dict(per=1), "one.h5"), (dict(compression=None), "raw.h5")):
        with h5py.File(_chunky(tmp_path / name, **kw), "r", rdcc_nbytes=mib) as f:
            assert h5_tile_cache([f["images"], f["labels"]], np.arange(80)) is None


def test_the_splits_of_a_tile_file_ask_for_one_chunk_cache(tmp_path):
    """HDF5 shares a dataset open twice in a process, whose first opening sets its cache: a validation split
    opened first (a run from weights scores them before training) left the training split HDF5's default cache.
    Every split of a file asks for the caches of all its tiles, and reads them through them, whichever is read
    first."""
    path = _chunky(tmp_path / "chunky.h5")
    val, train = H5TileDataset(path, indices=np.arange(8)), H5TileDataset(path, indices=np.arange(8, 80))
    assert val.chunk_cache == train.chunk_cache == H5TileDataset(path).chunk_cache is not None
    val.read(0)
    train.read(0)
    assert train._images.id.get_access_plist().get_chunk_cache()[:2] == train.chunk_cache.sizes[0][::-1]


# ---------------------------------------------------------------- 4. no second scoring for the library's losses
def test_own_losses_keep_the_library_losses_of_a_padded_batch():
    """A batch of a 32 and a 16 px sample (pad_collate's padding ignored): the library's per-sample values are the
    samples' own already and are kept bit for bit, the loss not called again; a loss of one's own is scored again
    on each padded sample's own tensor."""
    rec = _rec(loss={"name": "ce_dice"}, data={"target": "boundary"})
    loss_fn, _ = trainer._loss_fn(rec, None)
    assert leaves_out(loss_fn) and leaves_out(build_loss("focal_dice")) and not leaves_out(build_loss("mse"))
    torch.manual_seed(0)
    y = torch.randn(2, 3, 32, 32)
    target = torch.randint(0, 3, (2, 32, 32))
    target[1, 16:] = IGNORE_INDEX
    target[1, :, 16:] = IGNORE_INDEX
    per = loss_fn(y, target)
    sizes = torch.tensor([[32, 32], [16, 16]])
    calls = []

    def spy(*a):
        calls.append(a)
        return loss_fn(*a)

    leaves_out(spy, mark=True)
    kept = trainer._own_losses(per, y, target, None, sizes, 8, spy)
    assert torch.equal(kept, per) and not calls
    assert float(per[1]) == pytest.approx(float(loss_fn(y[1:2, :, :16, :16], target[1:2, :16, :16])[0]), rel=1e-6)

    def own(y, t, d=None):  # counts the padding: background share
        return (t == 0).float().mean(dim=(1, 2)) + 0 * y.mean(dim=(1, 2, 3))

    rescored = trainer._own_losses(own(y, target), y, target, None, sizes, 8, own)
    assert float(rescored[1]) == pytest.approx(float((target[1, :16, :16] == 0).float().mean()))


def test_sample_losses_of_mixed_sizes_are_the_optimisers_per_sample_losses(tmp_path, monkeypatch):
    """sample_losses.csv holds, bit for bit, the per-sample losses the batch loss was made of (mixed sizes padded
    by pad_collate, sizes not a multiple of the network's)."""
    root = write_pairs(tmp_path / "data", _frames([60, 60, 44, 44, 60, 60, 44, 44], seed=7, ignore=True))
    calls = []
    real = trainer.batch_loss

    def spy(per, target, *counts):
        calls.append(per.detach().clone())
        return real(per, target, *counts)

    monkeypatch.setattr(trainer, "batch_loss", spy)
    rec = tiny_recipe(data={"target": "semantic", "val_fraction": 0.5},
                      train={"epochs": 1, "batch_size": 4, "overlay_samples": 0, "threads": 1})
    trainer.train(rec, root, tmp_path / "run")
    losses = pd.read_csv(tmp_path / "run" / "sample_losses.csv")
    assert len(calls) == 1
    assert np.array_equal(np.sort(losses["loss"].to_numpy()), np.sort(calls[0].double().numpy()))
