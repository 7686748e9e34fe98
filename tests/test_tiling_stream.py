"""H5TileStream: every sample once per epoch, shuffled, one chunk at a time, several workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from devolens.data.h5stream import H5TileStream, flip_rotate, normalize_uint16
from devolens.data.tiling import tile_to_h5
from devolens.errors import DevolensError


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store of 53 tiles whose first pixel encodes the sample index (chunks of 10)."""
    import tifffile

    d = tmp_path_factory.mktemp("store")
    n_side = 16
    tile = 8
    img = np.zeros((2, n_side * tile, n_side * tile), np.uint16)
    lab = np.zeros((n_side * tile, n_side * tile), np.uint8)
    for i in range(n_side):
        for j in range(n_side):
            img[0, i * tile, j * tile] = i * n_side + j + 1  # unique marker per tile
            lab[i * tile + 1, j * tile + 1] = 1 + (i + j) % 2
    tifffile.imwrite(d / "img.tif", img)
    tifffile.imwrite(d / "lab.tif", lab)
    out = d / "s.h5"
    tile_to_h5([d / "img.tif"], out, [d / "lab.tif"], tile=tile, stride=tile, keep="all", chunk=10)
    return out


def markers(stream_or_loader):
    got = []
    for x, y in stream_or_loader:
        x = x if x.ndim == 4 else x[None]
        got.extend(int(v) for v in x[:, 0, 0, 0].numpy().round())
    return got


def test_every_sample_once_shuffled(store):
    s = H5TileStream(store, normalize=False, seed=1)
    n = len(s)
    assert n == 256
    e0 = markers(s)
    assert sorted(e0) == list(range(1, n + 1))
    assert e0 != sorted(e0)
    s.set_epoch(1)
    e1 = markers(s)
    assert sorted(e1) == list(range(1, n + 1)) and e1 != e0
    s.set_epoch(0)
    assert markers(s) == e0  # the same epoch gives the same order


def test_no_shuffle_is_store_order(store):
    s = H5TileStream(store, normalize=False, shuffle=False)
    assert markers(s) == list(range(1, 257))


def test_reads_one_chunk_at_a_time(store, monkeypatch):
    sizes = []
    orig = H5TileStream._read_chunk

    def spy(self, f, start, stop):
        sizes.append(stop - start)
        return orig(self, f, start, stop)

    monkeypatch.setattr(H5TileStream, "_read_chunk", spy)
    s = H5TileStream(store, normalize=False)
    it = iter(s)
    next(it)
    assert sizes == [10] or sizes == [6]  # one chunk read for the first sample (the last chunk has 6)
    list(it)
    assert max(sizes) <= 10 and sum(sizes) == 256 and len(sizes) == 26


def test_several_workers_split_chunks(store):
    s = H5TileStream(store, normalize=False, seed=3)
    loader = DataLoader(s, batch_size=4, num_workers=2)
    got = markers(loader)
    assert sorted(got) == list(range(1, 257))
    plans = [s.chunk_plan(w, 2) for w in range(2)]
    assert not set(plans[0]) & set(plans[1])


def test_indices_subset_and_labels(store):
    idx = np.array([0, 5, 11, 12, 100, 255])
    s = H5TileStream(store, normalize=False, indices=idx)
    assert len(s) == 6
    assert sorted(markers(s)) == sorted((idx + 1).tolist())
    x, y = next(iter(H5TileStream(store)))
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and y.shape == (8, 8)
    assert float(x.max()) <= 1.0


def test_transform_and_normalize(store):
    s = H5TileStream(store, transform=flip_rotate((1.0, 1.0), crop=4), seed=0)
    x, y = next(iter(s))
    assert x.shape == (2, 4, 4) and y.shape == (4, 4)
    v = normalize_uint16(np.array([0, 65535], np.uint16))
    assert v[0] == 0 and v[1] == pytest.approx(1.0)


def test_bad_store(tmp_path):
    p = tmp_path / "x.h5"
    p.write_bytes(b"not hdf5 at all")
    with pytest.raises(DevolensError):
        H5TileStream(p)


def test_engine_trains_from_a_tile_store(tmp_path):
    """`devolens train` on a store written by `devolens tile` streams it (H5TileStream)."""
    import tifffile

    from devolens.render.wells import simulate_well
    from devolens.train.trainer import build_data, train

    paths = []
    for seed in (1, 2):
        w = simulate_well(seed=seed, size=(128, 160), density=1500, dead_fraction=0.5)
        tifffile.imwrite(tmp_path / f"w{seed}.tif", w.image)
        tifffile.imwrite(tmp_path / f"l{seed}.tif", w.labels)
        paths.append((tmp_path / f"w{seed}.tif", tmp_path / f"l{seed}.tif"))
    store = tmp_path / "t.h5"
    tile_to_h5([p[0] for p in paths], store, [p[1] for p in paths], tile=32, stride=32, chunk=8)
    rec = {"name": "t", "task": "segmentation",
           "data": {"target": "classes", "classes": 3, "channels": 2, "normalize": "log", "val_fraction": 0.5},
           "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [8, 8, 4]},
           "loss": {"name": "ce_dice", "class_weights": "inverse_sqrt"},
           "augment": {"preset": "livedead"},
           "train": {"epochs": 1, "batch_size": 4, "max_batches": 2, "overlay_samples": 0, "monitor": "val_ap"}}
    from devolens.train.recipe import load_recipe

    bundle = build_data(load_recipe(rec), store)
    assert isinstance(bundle.train, H5TileStream) and isinstance(bundle.val, H5TileStream)
    assert set(bundle.split[bundle.split.side == "train"].group).isdisjoint(bundle.split[bundle.split.side == "val"].group)
    res = train(rec, store, tmp_path / "run")
    assert len(res.history) == 1 and (tmp_path / "run" / "best.safetensors").exists()
