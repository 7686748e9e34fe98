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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import h5py
import numpy as np
import pandas as pd
import torch
from torch.utils.data import IterableDataset, get_worker_info

from devolens.data.datasets import labels_to_target, split_by_group
from devolens.data.tiling import open_h5, open_store, store_ignore, store_list
from devolens.errors import DevolensError

__all__ = ["H5TileStream", "StoreSplit", "flip_rotate", "h5_datasets", "normalize_uint16", "split_store", "split_tiles",
           "store_len"]

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
        Yield dicts like the training engine's datasets (``image``, ``target``, ``labels`` (the stored values),
        ``index``: the sample's rank within ``indices``, and ``ignore``: the store's 'ignore' label value, 0 for
        none, as :class:`devolens.data.datasets.SegmentationDataset` gives it) instead of tuples.
    classes : int, optional
        The classes the labels may hold (ids ``0..classes-1``, a recipe's ``data.classes``): each chunk read is
        checked (its largest label: a pass over a chunk just decompressed), and a tile holding a class beyond them
        raises a :class:`DevolensError` naming the store and the tile, where the loss failed with "Target 7 is out
        of bounds" (a store's ``class_counts``, checked before training, need not match its labels). The store's
        'ignore' value is no class beyond them.

    Yields
    ------
    (image, labels) : (Tensor float32 (C, T, T), Tensor int64 (T, T))
        or the image alone when the store holds no labels. Where the store records an 'ignore' label value
        (``devolens tile --ignore``, :attr:`ignore`), the labels (the ``target`` of a dict) are
        :data:`devolens.data.datasets.IGNORE_INDEX` at its pixels (after ``transform``): the training losses and
        the validation scores leave them out.
    """

    def __init__(self, path: str | Path, *, shuffle: bool = True, seed: int = 0, indices: np.ndarray | None = None,
                 transform: Callable | None = None, normalize: bool | str = True, chunk: int | None = None,
                 as_dict: bool = False, classes: int | None = None):
        super().__init__()
        self.path = Path(path)
        with open_store(self.path) as f:
            self.n = int(f["images"].shape[0])
            self.labelled = "labels" in f
            self.chunk = int(chunk or (f["images"].chunks[0] if f["images"].chunks else 1000))
            #: the store's 'ignore' label value (its unannotated pixels), None for none
            self.ignore = store_ignore(f) if self.labelled else None
        self.shuffle = shuffle
        self.seed = int(seed)
        self.epoch = 0
        self.transform = transform
        modes = {True: "log", False: "none"}
        self.normalize = modes.get(normalize, normalize) if isinstance(normalize, bool) else str(normalize)
        if self.normalize not in ("log", "dtype", "percentile", "none"):
            raise ValueError(f"unknown normalisation {normalize!r} (log, dtype, percentile, none)")
        self.as_dict = as_dict
        self.classes = None if classes is None else int(classes)
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
        """Read samples [start, stop) (one HDF5 chunk) into memory; their labels checked against ``classes``."""
        images = f["images"][start:stop]
        labels = f["labels"][start:stop] if self.labelled else None
        if self.classes is not None and labels is not None and labels.size and int(labels.max()) >= self.classes:
            c = self.classes
            beyond = labels >= c
            if self.ignore is not None:  # no class: its pixels are left out
                beyond &= labels != self.ignore
            beyond = beyond.reshape(len(labels), -1)
            if not beyond.any():
                return images, labels
            i = int(np.flatnonzero(beyond.any(axis=1))[0])
            top = int(labels[i].reshape(-1)[beyond[i]].max())
            raise DevolensError(f"tile {start + i} holds class {top} in its labels, but data.classes "
                                f"is {c} (class ids 0..{c - 1}): raise data.classes, or check the store's labels (its "
                                "class_counts do not count that class)", path=self.path)
        return images, labels

    def _target(self, lab: np.ndarray) -> np.ndarray:
        """A tile's labels as a training target: int64 class ids, and :data:`devolens.data.datasets.IGNORE_INDEX`
        at the store's 'ignore' value (:func:`devolens.data.datasets.labels_to_target`)."""
        return labels_to_target(lab, "classes", self.ignore or 0)

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        worker, n_workers = (0, 1) if info is None else (info.id, info.num_workers)
        plan = self.chunk_plan(worker, n_workers)
        rng = np.random.default_rng([self.seed, self.epoch, worker, 7])
        # a small raw-data chunk cache: we read whole chunks once, no need to keep them
        with open_h5(self.path, "r", rdcc_nbytes=1 << 20) as f:
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
                        yield {"image": x, "target": torch.from_numpy(self._target(lab)),
                               "labels": torch.from_numpy(lab.astype(np.int32)),
                               "index": torch.tensor(rank, dtype=torch.int64),
                               "ignore": torch.tensor(self.ignore or 0, dtype=torch.int64)}
                    elif lab is None:
                        yield x
                    else:
                        yield x, torch.from_numpy(self._target(np.ascontiguousarray(lab)))
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


#: ``data.split_by`` values a tile store splits by: whole source images (``group``, the recipes' default, is the
#: source image of a store's tiles), or a band of each image (``region``)
STORE_SPLITS = ("source", "group", "region")


@dataclass
class StoreSplit:
    """A train/validation split of a tile store's tiles (:func:`split_tiles`); unpacks as ``train, val``.

    Attributes
    ----------
    train, val, dropped : int64 arrays, sorted
        Positions (into the tiles split) that train, validate, and are used by neither: training tiles that
        share pixels with a validation tile (the guard).
    group : ndarray of str
        Per tile, what it was split by: its source image, or ``sS:val`` / ``sS:train`` for a band of source ``S``.
    by : str
        ``source`` (whole images on one side), ``region`` (a band of each image), ``tiles`` (no tile
        coordinates: the last tiles of each image) or ``blocks`` (no band leaves tiles on both sides: the last
        tiles of each image, unguarded; the note says validation may share pixels with training).
    note : str
        One line: how it split, the fraction that validates and the tiles dropped.
    """

    train: np.ndarray
    val: np.ndarray
    dropped: np.ndarray
    group: np.ndarray
    by: str
    note: str

    def __iter__(self):
        return iter((self.train, self.val))

    def sides(self) -> np.ndarray:
        """Per tile: ``train``, ``val`` or ``drop`` (what a run's ``split.csv`` records)."""
        side = np.full(self.group.size, "train", dtype=object)
        side[self.val] = "val"
        side[self.dropped] = "drop"
        return side


def _overlapping(train_yx: np.ndarray, val_yx: np.ndarray, tile: int) -> np.ndarray:
    """Which tiles at ``train_yx`` (top-left corners, one image) share a pixel with a tile at ``val_yx``."""
    hit = np.zeros(len(train_yx), bool)
    if not len(train_yx) or not len(val_yx):
        return hit
    order = np.argsort(val_yx[:, 0], kind="stable")
    vy, vx = val_yx[order, 0], val_yx[order, 1]
    for y in np.unique(train_yx[:, 0]):
        rows = train_yx[:, 0] == y
        lo, hi = np.searchsorted(vy, y - tile, "right"), np.searchsorted(vy, y + tile, "left")
        if lo >= hi:
            continue
        xs = np.sort(vx[lo:hi])
        tx = train_yx[rows, 1]
        hit[rows] = np.searchsorted(xs, tx - tile, "right") < np.searchsorted(xs, tx + tile, "left")
    return hit


def _band_cut(ys: np.ndarray, tile: int, want: float) -> int:
    """The first row of the band at the bottom of one image whose tiles (top-left rows ``ys``; or columns: the
    band at its right) validate: the fraction validating among the tiles used (those of the band, and those above
    it that overlap none of its) nearest ``want``, one row of tiles at least and some left to train."""
    rows = np.unique(ys)
    best, best_err = int(rows[-1]), None
    for cut in rows[1:][::-1]:  # from the bottom row up; the top row always trains
        val = int((ys >= cut).sum())
        near = int(((ys < cut) & (ys > cut - tile)).sum())  # above the band, overlapping it (about)
        used = len(ys) - near
        if used - val <= 0:
            break
        err = abs(val / used - want)
        if best_err is None or err < best_err:
            best, best_err = int(cut), err
        elif val / used > want:
            break
    return best


def _region(yx: np.ndarray, tile: int, f: float) -> tuple[np.ndarray, np.ndarray, int] | None:
    """The band of one image (tile places ``yx``, the tiles of its copies included) that validates: the bottom
    rows of tiles where they leave training tiles that share no pixels with it, else the right-hand columns;
    ``(val, dropped, axis)`` masks, or None where neither band leaves tiles on both sides."""
    for axis in (0, 1):
        pos = yx[:, axis]
        if np.unique(pos).size < 2:
            continue
        v = pos >= _band_cut(pos, tile, f)
        drop = np.zeros(len(yx), bool)
        drop[~v] = _overlapping(yx[~v], yx[v], tile)
        if v.any() and (~v & ~drop).any():
            return v, drop, axis
    return None


def _last_tiles(at: np.ndarray, f: float) -> np.ndarray:
    """The last tiles of ``at`` (one contiguous block, its share nearest ``f``, one at least and one left)."""
    k = min(at.size - 1, max(1, int(round(f * at.size))))
    return at[-k:]


def split_tiles(source: np.ndarray | None, coords: np.ndarray | None, tile: int, val_fraction: float = 0.2,
                seed: int = 0, split_by: str = "source", same: dict | None = None, n: int | None = None) -> StoreSplit:
    """Split tiles into train and validation without sharing pixels: the one split of tile stores
    (:func:`split_store`, :func:`h5_datasets` and ``devolens train``).

    Parameters
    ----------
    source : (N,) int array, optional
        Each tile's source image (a store's ``source``); None: one image.
    coords : (N, 2) int array, optional
        Each tile's top-left ``(y, x)`` in its image, pixels (a store's ``coords``); None: unknown.
    tile : int
        Tile side in pixels.
    val_fraction : float
        The fraction of tiles to validate (0 < f < 1).
    seed : int
        Seed of the order in which whole images are drawn for validation.
    split_by : {"source", "group", "region"}
        ``source`` (and ``group``): with several source images, whole images on one side (images in a seeded
        order until ``val_fraction`` of the tiles validate; one at least, one left to train); with one image,
        as ``region``. ``region``: the bottom band of every image validates (whole rows of tiles, its share of
        the image's tiles nearest ``val_fraction``); where a band of rows leaves no training tile that shares
        no pixels with it (an image under about two tiles tall), a band of the right-hand columns.
    same : dict, optional
        ``{source: key}``: sources of one key (the same pixels labelled twice) go to one side together; in a
        region split they are cut at the same band.
    n : int, optional
        The number of tiles, where neither ``source`` nor ``coords`` is given.

    Returns
    -------
    StoreSplit
        Training tiles that share pixels with a validation tile (``|dy| < tile`` and ``|dx| < tile``, same image or
        a copy of it) are dropped (``dropped``): validation never sees pixels trained on. Without ``coords``, the
        last tiles of each image validate and nothing is dropped (their places are unknown); so too (``by``
        ``blocks``, said in the note) where no band of any image leaves tiles on both sides.
    """
    if split_by not in STORE_SPLITS:
        raise DevolensError(f"data.split_by: a tile store splits by {' or '.join(map(repr, STORE_SPLITS))} "
                            f"(whole source images, or a band of each image), not {split_by!r}")
    f = float(val_fraction)
    if not 0.0 < f < 1.0:
        raise DevolensError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if coords is not None:
        n = len(coords)
    elif source is not None:
        n = len(source)
    n = int(n or 0)
    src = np.zeros(n, np.int64) if source is None else np.asarray(source, np.int64)
    if n < 2:
        raise DevolensError(f"need at least 2 tiles to train and validate, found {n}")
    images = np.unique(src)
    is_val = np.zeros(n, bool)
    dropped = np.zeros(n, bool)
    group = src.astype(str).astype(object)
    key = np.array([str((same or {}).get(int(s), int(s))) for s in src], dtype=object)
    keys = pd.unique(key)
    by = "region" if coords is not None else "tiles"
    if images.size >= 2 and split_by in ("source", "group") and keys.size >= 2:
        by = "source"  # whole images, drawn as a run's groups are
        _, val = split_by_group(pd.DataFrame({"image": key}), "image", f, seed)
        is_val = np.isin(np.arange(n), val.index)
    axes, whole = set(), 0
    if by == "region":  # a band of each image, its copies (same pixels) cut at the same band
        yx = np.asarray(coords, np.int64)
        for k in keys:
            at = np.flatnonzero(key == k)
            cut = _region(yx[at], tile, f) if at.size >= 2 else None
            if cut is None:  # too small for a band: trains whole
                whole += 1
                continue
            v, drop, axis = cut
            axes.add(axis)
            is_val[at[v]] = True
            dropped[at] = drop
            group[at] = np.where(v, [f"s{s}:val" for s in src[at]], [f"s{s}:train" for s in src[at]])
        if not is_val.any() or not (~is_val & ~dropped).any():  # no band anywhere: blocks, unguarded
            by, is_val[:], dropped[:], group = "blocks", False, False, src.astype(str).astype(object)
    if by in ("tiles", "blocks"):  # the last tiles of each image
        for s in images:
            at = np.flatnonzero(src == s)
            if at.size >= 2:
                is_val[_last_tiles(at, f)] = True
        if not is_val.any():  # every image a single tile: the last ones
            is_val[_last_tiles(np.arange(n), f)] = True
    used = int(n - dropped.sum())
    n_val = int(is_val.sum())
    tr = np.flatnonzero(~is_val & ~dropped)
    share = f"{n_val} of the {used} tiles used ({100 * n_val / max(used, 1):.1f} %; data.val_fraction {f:g})"
    if by == "source":
        note = (f"tile store split by source image: {np.unique(src[is_val]).size} of its {images.size} images "
                "validate, "
                f"{share}; whole images on one side (data.split_by: region holds out a band of each image instead)")
    elif by == "region":
        where = " or ".join(w for a, w in ((0, "at the bottom"), (1, "at the right")) if a in axes)
        each = "each" if keys.size > 1 else "the"
        note = (f"tile store split by region: a band of tiles {where} of {each} image validates, {share}; "
                f"{int(dropped.sum())} training tiles that share pixels with validation tiles are dropped, so that "
                "validation never sees pixels trained on")
        if whole:
            note += f" ({whole} images too small for a band train whole)"
    elif by == "blocks":
        note = (f"tile store split by blocks: no band of rows or columns of its images leaves tiles on both sides "
                f"that share no pixels, so the last tiles of each image validate, {share}; validation may share "
                "pixels with training (tile larger images, or use a smaller --stride or tile size)")
    else:
        note = (f"tile store without tile places (coords): the last tiles of each image validate (blocks of "
                f"consecutive tiles), {share}; overlapping tiles cannot be told apart, so validation may share "
                "pixels with training")
    return StoreSplit(tr.astype(np.int64), np.flatnonzero(is_val).astype(np.int64),
                      np.flatnonzero(dropped).astype(np.int64), np.asarray(group, dtype=object), by, note)


def store_split_inputs(f: h5py.File, n: int | None = None) -> tuple[np.ndarray | None, np.ndarray | None, int,
                                                                      dict | None]:
    """What :func:`split_tiles` reads of an open HDF5 tile file: ``source``, ``coords`` (None where absent), the
    tile side and the sources holding the same pixels (a store's ``source_digests``)."""
    n = int(f["images"].shape[0]) if n is None else n
    source = np.asarray(f["source"][:n]) if "source" in f else None
    coords = np.asarray(f["coords"][:n]) if "coords" in f else None
    tile = int(f["images"].shape[-1])
    same = None
    try:  # a file not written by `devolens tile` may lack it, or hold something else: no pairs of sources then
        digests = store_list(f, "source_digests", f.filename) if "source_digests" in f.attrs else []
    except DevolensError:
        digests = []
    if digests:
        same = {i: d.split("+")[0] for i, d in enumerate(digests) if isinstance(d, str)}
    return source, coords, tile, same


def split_store(path: str | Path, val_fraction: float = 0.2, seed: int = 0, split_by: str = "source") -> StoreSplit:
    """Split a tile store's tiles for training and validation (:func:`split_tiles`: whole source images, or a
    band of each image, without tiles that share pixels across the split).

    Returns
    -------
    StoreSplit
        ``train, val = split_store(...)`` unpacks the sorted int64 indices of each side; ``dropped`` and ``note``
        say what the guard left out and how it split.
    """
    with open_store(path) as f:
        source, coords, tile, same = store_split_inputs(f)
        n = int(f["images"].shape[0])
    return split_tiles(source, coords, tile, val_fraction, seed, split_by, same, n)


def h5_datasets(path: str | Path, *, val_fraction: float = 0.2, seed: int = 0, crop: int | None = None,
                gain: tuple[float, float] | None = (0.5, 2.0), split_by: str = "source"):
    """Train and validation streams over a tile store, for the training engine.

    Parameters
    ----------
    path : path
        Tile store.
    val_fraction : float
        Fraction of the tiles held out for validation (:func:`split_store`).
    seed : int
        Split and shuffling seed.
    split_by : {"source", "group", "region"}
        Whole source images on one side (one image: a band of it), or a band of each image (:func:`split_tiles`).
    crop : int, optional
        Random crop side for training samples (validation samples stay whole).
    gain : (float, float) or None
        Random per-channel gain range for training samples.

    Returns
    -------
    (train, val, split, notes)
        Two :class:`H5TileStream` yielding engine dicts, a DataFrame ``sample, group,
        side`` (``train``, ``val`` or ``drop``: :meth:`StoreSplit.sides`) and a list of notes.
    """
    sp = split_store(path, val_fraction, seed, split_by)
    train = H5TileStream(path, shuffle=True, seed=seed, indices=sp.train, transform=flip_rotate(gain, crop),
                         as_dict=True)
    val = H5TileStream(path, shuffle=False, indices=sp.val, as_dict=True)
    split = pd.DataFrame({"sample": [f"tile{i:06d}" for i in range(sp.group.size)], "group": sp.group.astype(str),
                          "side": sp.sides()})
    notes = [sp.note, "streamed one chunk at a time (no per-sample pruning)"]
    return train, val, split, notes
