"""HDF5 tile files whose chunks (of several tiles) do not all fit the chunk caches (H5_TILE_CACHE_BYTES): a training
epoch reads their tiles a window of chunks at a time (H5TileDataset.epoch_order), so that each chunk is decompressed
once an epoch rather than for nearly every tile drawn at random over the file."""

from __future__ import annotations

import functools
from collections import OrderedDict

import numpy as np
from test_s35_train import _chunky  # 80 tiles of 256 px in gzip chunks of 16: 2 + 1 MiB a group of chunks

from devolens.data import datasets
from devolens.data.datasets import H5TileDataset

MIB = 1 << 20


def _decompressions(groups: np.ndarray, window: int) -> int:
    """The groups of chunks decompressed reading tiles of ``groups`` in turn through caches that hold ``window``
    groups, the least recently read dropped first (HDF5's chunk cache, as :func:`h5_tile_cache` sizes it)."""
    held: OrderedDict = OrderedDict()
    count = 0
    for g in groups:
        if g in held:
            held.move_to_end(g)
            continue
        count += 1
        held[g] = True
        if len(held) > window:
            held.popitem(last=False)
    return count


def test_a_training_epoch_reads_a_window_of_chunks_at_a_time(tmp_path, monkeypatch):
    """Caches of 8 MiB hold 2 of the file's 5 groups of chunks: tiles drawn at random over the file decompressed a
    group for nearly every tile; the epoch's order regrouped decompresses each group once. Every item still comes
    once, each window's in their order in the shuffled epoch, the same for the same epoch; the tiles read are the
    file's, through datasets opened with the caches sized."""
    import h5py

    path = _chunky(tmp_path / "chunky.h5")
    monkeypatch.setattr(datasets, "h5_tile_cache", functools.partial(datasets.h5_tile_cache, limit=8 * MIB))
    ds = H5TileDataset(path, indices=np.arange(3, 77))  # one side of a split: positions are not rows
    cache = ds.chunk_cache
    assert cache.window == 2 and cache.step == 16 and cache.nbytes <= 8 * MIB + 2 * MIB
    order = np.random.default_rng(5).permutation(len(ds))
    got = ds.epoch_order(order)
    assert sorted(got.tolist()) == list(range(len(ds)))
    groups = ds.indices[got] // 16
    assert _decompressions(groups, cache.window) == 5  # each group once
    assert _decompressions(ds.indices[order] // 16, cache.window) > 30  # (at random: most of the 74 tiles)
    assert np.array_equal(ds.epoch_order(order), got)
    def first_seen(g: np.ndarray) -> list[int]:
        return list(dict.fromkeys(g.tolist()))

    assert first_seen(groups) == first_seen(ds.indices[order] // 16)  # the groups as the epoch first drew them
    start = 0
    while start < len(got):  # windows of 2 groups, each window's tiles in the order the shuffled epoch had them
        seen: list[int] = []
        stop = start
        while stop < len(got) and (groups[stop] in seen or len(seen) < 2):
            if groups[stop] not in seen:
                seen.append(int(groups[stop]))
            stop += 1
        assert got[start:stop].tolist() == [p for p in order if ds.indices[p] // 16 in seen]
        start = stop
    with h5py.File(path, "r") as f:
        images, labels = f["images"][:], f["labels"][:]
    for i in got[:20]:
        img, lab = ds.read(int(i))
        j = ds.indices[i]
        assert np.array_equal(img, np.moveaxis(images[j], 0, -1)) and np.array_equal(lab, labels[j])
    for d, size in zip((ds._images, ds._labels), cache.sizes):
        assert d.id.get_access_plist().get_chunk_cache()[:2] == size[::-1]


def test_chunks_larger_than_the_bound_get_a_window_of_one_group(tmp_path):
    """A group of chunks over the bound (a `devolens tile` store's chunks of up to 1000 tiles: 77 MB of 160-px tiles
    and their labels) had no cache at all, so that even tiles read in order decompressed their chunk for each:
    the caches now hold one group (the bound raised to it, up to `most`), read a group at a time."""
    import h5py

    path = _chunky(tmp_path / "chunky.h5")
    with h5py.File(path, "r") as f:
        ds = [f["images"], f["labels"]]
        cache = datasets.h5_tile_cache(ds, np.arange(80), limit=1 * MIB)
        assert cache.window == 1 and cache.sizes[0][0] == 3 * MIB and cache.sizes[1][0] == 2 * MIB
        assert datasets.h5_tile_cache(ds, np.arange(80), limit=1 * MIB, most=2 * MIB) is None


def test_the_order_is_left_alone_where_the_caches_hold_every_chunk(tmp_path):
    """The file's 15 MiB of chunks fit the default bound (any order reads each chunk once), and a file of a chunk
    per tile needs no cache: a training epoch keeps its shuffled order (no window of chunks)."""
    order = np.random.default_rng(2).permutation(80)
    whole = H5TileDataset(_chunky(tmp_path / "chunky.h5"))
    assert whole.chunk_cache.window is None
    one = H5TileDataset(_chunky(tmp_path / "one.h5", per=1))
    assert one.chunk_cache is None
    for ds in (whole, one):
        assert np.array_equal(ds.epoch_order(order), order)
