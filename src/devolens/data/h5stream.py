"""Stream samples from an HDF5 tile store one chunk at a time (never the whole store).

:class:`H5TileStream` is a :class:`torch.utils.data.IterableDataset`. Each epoch it draws
a random order of the store's chunks (the HDF5 chunks of ``chunk`` samples written by
:func:`devolens.data.tiling.tile_to_h5`), reads one chunk at a time (one decompression per
chunk, no per-sample random reads), shuffles the samples within it and yields them. With a
``DataLoader`` of several workers the chunks are split between workers (each visits its own
share), so an epoch still visits every sample exactly once.

Examples
--------
>>> from torch.utils.data import DataLoader  # doctest: +SKIP
>>> stream = H5TileStream("tiles.h5", seed=0)  # doctest: +SKIP
>>> for x, y in DataLoader(stream, batch_size=16, num_workers=2):  # doctest: +SKIP
...     ...  # x: (16, 2, 160, 160) float32, y: (16, 160, 160) int64
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator

import h5py
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from devolens.data.tiling import open_store

__all__ = ["H5TileStream", "flip_rotate", "h5_datasets", "normalize_uint16", "split_store", "store_len"]

_LOG_SCALE = float(np.log1p(65535.0))


def normalize_uint16(x: np.ndarray | torch.Tensor):
    """Map uint16 counts to [0, 1] on a log scale: ``log1p(x) / log1p(65535)``.

    A log scale turns the wide range of gains and backgrounds into shifts, which the
    network copes with; the same transform is used at training and prediction time.
    """
    if isinstance(x, torch.Tensor):
        return torch.log1p(x.float()) / _LOG_SCALE
    return (np.log1p(x.astype(np.float32)) / np.float32(_LOG_SCALE)).astype(np.float32)


def _normalize(img: np.ndarray, mode: str) -> np.ndarray:
    if mode == "log":
        return normalize_uint16(img)
    if mode == "dtype":
        return (img.astype(np.float32) / np.float32(65535.0)).astype(np.float32)
    if mode == "percentile":
        x = img.astype(np.float32)
        flat = x.reshape(x.shape[0], -1)
        lo = np.percentile(flat, 1.0, axis=1)[:, None, None]
        hi = np.percentile(flat, 99.8, axis=1)[:, None, None]
        return np.clip((x - lo) / np.maximum(hi - lo, 1e-6), 0, 1).astype(np.float32)
    return img.astype(np.float32)


def store_len(path: str | Path) -> int:
    """Number of samples in a tile store."""
    with open_store(path) as f:
        return int(f["images"].shape[0])


class H5TileStream(IterableDataset):
    """Iterable dataset over a tile store, reading one HDF5 chunk at a time.

    Parameters
    ----------
    path : str or Path
        Tile store written by ``devolens tile`` / :func:`devolens.data.tiling.tile_to_h5`.
    shuffle : bool
        Shuffle the order of chunks and of samples within each chunk (new order per epoch).
    seed : int
        Base seed; epoch ``e`` uses ``seed + e`` so that every worker agrees on the order.
    indices : ndarray, optional
        Restrict to these sample indices (e.g. a train/validation split); chunks holding
        none of them are skipped.
    transform : callable, optional
        ``transform(image, labels, rng) -> (image, labels)`` on numpy arrays (uint16
        (C, T, T), uint8 (T, T)) before conversion, with the stream's per-worker, per-epoch
        ``numpy.random.Generator``; e.g. :func:`flip_rotate`.
    normalize : bool or str
        ``True`` or ``"log"``: :func:`normalize_uint16` (log scale, the livedead model's
        preprocessing); ``"dtype"``: counts / 65535; ``"percentile"``: per tile and channel,
        the 1st..99.8th percentiles to 0..1; ``False`` or ``"none"``: counts as float32.
    chunk : int, optional
        Samples read at once; defaults to the store's HDF5 chunk length.
    as_dict : bool
        Yield dicts like the training engine's datasets (``image``, ``target``,
        ``labels``, ``index``: the sample's rank within ``indices``) instead of tuples.

    Yields
    ------
    (image, labels) : (Tensor float32 (C, T, T), Tensor int64 (T, T))
        or the image alone when the store holds no labels.
    """

    def __init__(self, path: str | Path, *, shuffle: bool = True, seed: int = 0, indices: np.ndarray | None = None,
                 transform: Callable | None = None, normalize: bool | str = True, chunk: int | None = None,
                 as_dict: bool = False):
        super().__init__()
        self.path = Path(path)
        with open_store(self.path) as f:
            self.n = int(f["images"].shape[0])
            self.labelled = "labels" in f
            self.chunk = int(chunk or (f["images"].chunks[0] if f["images"].chunks else 1000))
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0
        self.transform = transform
        modes = {True: "log", False: "none"}
        self.normalize = modes.get(normalize, normalize) if isinstance(normalize, bool) else str(normalize)
        if self.normalize not in ("log", "dtype", "percentile", "none"):
            raise ValueError(f"unknown normalisation {normalize!r} (log, dtype, percentile, none)")
        self.as_dict = as_dict
        self.augment = None  # the engine toggles this attribute; transforms live in `transform`
        self.indices = None if indices is None else np.unique(np.asarray(indices, dtype=np.int64))
        if self.indices is not None and self.indices.size and (self.indices[0] < 0 or self.indices[-1] >= self.n):
            raise IndexError("indices out of range of the store")

    def __len__(self) -> int:
        return int(self.n if self.indices is None else self.indices.size)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (its shuffled order); call before iterating in each epoch."""
        self.epoch = int(epoch)

    @property
    def ids(self) -> list[str]:
        """Sample ids (``tileNNNNNN``, the index in the store), in ``index`` order."""
        idx = np.arange(self.n) if self.indices is None else self.indices
        return [f"tile{int(i):06d}" for i in idx]

    def class_frequencies(self) -> np.ndarray:
        """Pixel frequency of each class over the stream's samples (from ``class_counts``)."""
        with open_store(self.path) as f:
            cc = f["class_counts"][:]
        if self.indices is not None:
            cc = cc[self.indices]
        tot = cc.sum(axis=0).astype(np.float64)
        return tot / max(tot.sum(), 1.0)

    def chunk_plan(self, worker: int = 0, n_workers: int = 1) -> list[tuple[int, int]]:
        """The (start, stop) sample ranges this worker reads this epoch, in order."""
        n_chunks = math.ceil(self.n / self.chunk) if self.n else 0
        order = np.arange(n_chunks)
        if self.shuffle:
            np.random.default_rng([self.seed, self.epoch]).shuffle(order)
        plan = [(int(c) * self.chunk, min(self.n, (int(c) + 1) * self.chunk)) for c in order]
        if self.indices is not None:
            idx = self.indices
            plan = [(a, b) for a, b in plan if np.searchsorted(idx, a) < np.searchsorted(idx, b)]
        return plan[worker::n_workers]

    def _read_chunk(self, f: h5py.File, start: int, stop: int):
        """Read samples [start, stop) (one HDF5 chunk) into memory."""
        images = f["images"][start:stop]
        labels = f["labels"][start:stop] if self.labelled else None
        return images, labels

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        plan = self.chunk_plan(worker, n_workers)
        rng = np.random.default_rng([self.seed, self.epoch, worker, 7])
        # a small raw-data chunk cache: we read whole chunks once, no need to keep them
        with h5py.File(self.path, "r", rdcc_nbytes=1 << 20) as f:
            for start, stop in plan:
                images, labels = self._read_chunk(f, start, stop)
                local = np.arange(stop - start)
                lo = hi = 0
                if self.indices is not None:
                    lo, hi = np.searchsorted(self.indices, [start, stop])
                    local = self.indices[lo:hi] - start
                if self.shuffle:
                    rng.shuffle(local)
                for i in local:
                    img = images[i]
                    lab = labels[i] if labels is not None else None
                    if self.transform is not None:
                        img, lab = self.transform(img, lab, rng)
                    x = _normalize(img, self.normalize)
                    x = torch.from_numpy(np.ascontiguousarray(x))
                    if self.as_dict:
                        rank = start + int(i) if self.indices is None else int(lo + np.searchsorted(
                            self.indices[lo:hi], start + int(i)))
                        lab = np.ascontiguousarray(lab)
                        yield {"image": x, "target": torch.from_numpy(lab.astype(np.int64)),
                               "labels": torch.from_numpy(lab.astype(np.int32)),
                               "index": torch.tensor(rank, dtype=torch.int64)}
                    elif lab is None:
                        yield x
                    else:
                        yield x, torch.from_numpy(np.ascontiguousarray(lab).astype(np.int64))
                del images, labels


def flip_rotate(gain: tuple[float, float] = (0.5, 2.0), crop: int | None = None) -> Callable:
    """A transform for :class:`H5TileStream`: random 90-degree rotations and flips, a random
    per-channel gain in ``gain`` (to widen the brightness range seen in training) and,
    when ``crop`` is given, a random ``crop`` x ``crop`` window of the tile."""

    def _t(img: np.ndarray, lab: np.ndarray | None, rng: np.random.Generator):
        if crop is not None and crop < img.shape[-1]:
            y0 = int(rng.integers(0, img.shape[-2] - crop + 1))
            x0 = int(rng.integers(0, img.shape[-1] - crop + 1))
            img = img[:, y0:y0 + crop, x0:x0 + crop]
            lab = lab[y0:y0 + crop, x0:x0 + crop] if lab is not None else None
        k = int(rng.integers(4))
        img = np.rot90(img, k, axes=(1, 2))
        lab = np.rot90(lab, k) if lab is not None else None
        if rng.random() < 0.5:
            img = img[:, :, ::-1]
            lab = lab[:, ::-1] if lab is not None else None
        if gain is not None:
            g = rng.uniform(gain[0], gain[1], size=(img.shape[0], 1, 1)).astype(np.float32)
            img = np.clip(img.astype(np.float32) * g, 0, 65535).astype(np.uint16)
        return img, lab

    return _t


def split_store(path: str | Path, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split a tile store's samples by source image (whole wells on one side).

    Returns
    -------
    (train_indices, val_indices) : int64 arrays, sorted
        With a single source, the split falls back to blocks of consecutive chunks.
    """
    with open_store(path) as f:
        src = f["source"][:]
        chunk = int(f["images"].chunks[0]) if f["images"].chunks else 1000
    n = src.size
    groups = np.unique(src)
    rng = np.random.default_rng(seed)
    if groups.size >= 2:
        n_val = min(groups.size - 1, max(1, int(round(groups.size * val_fraction))))
        val_groups = rng.choice(groups, n_val, replace=False)
        is_val = np.isin(src, val_groups)
    else:  # one source: split by chunk blocks
        blocks = np.arange(n) // chunk
        ub = np.unique(blocks)
        if ub.size >= 2:
            n_val = min(ub.size - 1, max(1, int(round(ub.size * val_fraction))))
            is_val = np.isin(blocks, rng.choice(ub, n_val, replace=False))
        else:
            is_val = np.zeros(n, bool)
            is_val[-max(1, int(round(n * val_fraction))):] = True
    return np.nonzero(~is_val)[0].astype(np.int64), np.nonzero(is_val)[0].astype(np.int64)


def h5_datasets(path: str | Path, *, val_fraction: float = 0.2, seed: int = 0, crop: int | None = None,
                gain: tuple[float, float] | None = (0.5, 2.0)):
    """Train and validation streams over a tile store, for the training engine.

    Parameters
    ----------
    path : path
        Tile store.
    val_fraction : float
        Fraction of source images held out for validation.
    seed : int
        Split and shuffling seed.
    crop : int, optional
        Random crop side for training samples (validation samples stay whole).
    gain : (float, float) or None
        Random per-channel gain range for training samples.

    Returns
    -------
    (train, val, split, notes)
        Two :class:`H5TileStream` yielding engine dicts, a DataFrame ``sample, group,
        side`` and a list of notes.
    """
    import pandas as pd

    tr, va = split_store(path, val_fraction, seed)
    train = H5TileStream(path, shuffle=True, seed=seed, indices=tr, transform=flip_rotate(gain, crop), as_dict=True)
    val = H5TileStream(path, shuffle=False, indices=va, as_dict=True)
    with open_store(path) as f:
        src = f["source"][:]
    side = np.full(src.size, "train", dtype=object)
    side[va] = "val"
    split = pd.DataFrame({"sample": [f"tile{i:06d}" for i in range(src.size)], "group": src.astype(str), "side": side})
    notes = [f"HDF5 tile store: {tr.size} training and {va.size} validation tiles, split by source image; "
             "streamed one chunk at a time (no per-sample pruning)"]
    return train, val, split, notes
