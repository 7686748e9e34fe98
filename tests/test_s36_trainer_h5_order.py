"""`devolens train` on an HDF5 tile file whose chunks do not all fit the chunk caches reads each epoch's tiles in
the order H5TileDataset.epoch_order regroups them (a window of chunks at a time), not in the bare shuffled order."""

from __future__ import annotations

import functools

import numpy as np
from _train_data import tiny_recipe
from test_s35_train import _chunky

from devolens.data import datasets
from devolens.data.datasets import H5TileDataset
from devolens.train.trainer import train


def test_training_reads_an_epoch_a_window_of_chunks_at_a_time(tmp_path, monkeypatch):
    path = _chunky(tmp_path / "chunky.h5", n=48, side=64, per=8)
    # caches that hold two of the file's groups of chunks: the epoch must be regrouped
    monkeypatch.setattr(datasets, "h5_tile_cache", functools.partial(datasets.h5_tile_cache, limit=2 * 8 * 64 * 64 * 3))
    regrouped: list[np.ndarray] = []
    reads: list[int] = []
    order_of = H5TileDataset.epoch_order
    read = H5TileDataset.read

    def spy_order(self, order):
        out = order_of(self, order)
        regrouped.append(np.asarray(out))
        return out

    def spy_read(self, i):
        if self.augment is not None:  # the training side (validation reads its tiles in turn)
            reads.append(int(i))
        return read(self, i)

    monkeypatch.setattr(H5TileDataset, "epoch_order", spy_order)
    monkeypatch.setattr(H5TileDataset, "read", spy_read)
    rec = tiny_recipe(data={"target": "semantic", "channels": 1, "val_fraction": 0.34},
                      augment={"preset": "nuclei"}, train={"epochs": 2, "batch_size": 4, "threads": 1,
                                                           "overlay_samples": 0, "num_workers": 0})
    train(rec, path, tmp_path / "run")
    assert len(regrouped) == 2
    ds = H5TileDataset(path)
    assert ds.chunk_cache.window is not None  # (the caches do not hold every chunk)
    per_epoch = len(regrouped[0])
    assert reads[:per_epoch] == regrouped[0].tolist() and reads[per_epoch:2 * per_epoch] == regrouped[1].tolist()
    assert not np.array_equal(np.sort(regrouped[0]), regrouped[0])  # (still shuffled)
