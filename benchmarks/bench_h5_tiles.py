"""Speed: reading the tiles of an HDF5 file whose chunks hold several tiles (a file not written by devolens).

``H5TileDataset`` keeps the file and its two datasets open, with a chunk cache sized for the file's chunks
(:func:`devolens.data.datasets.h5_tile_cache`), so a chunk is decompressed once for its tiles. The baseline, run in
the same process on the same files, reads as the thirty-fourth session's ``read`` did: the file opened for each
tile with HDF5's default cache (its chunk decompressed again for every tile). A third line reads the training
split after the validation split was read first in the same process (as a run from weights does: HDF5 shares a
dataset open twice in a process, whose first opening sets its cache).

A last file's chunks are more than the caches hold (:data:`~devolens.data.datasets.H5_TILE_CACHE_BYTES`): 4096 tiles
of 256 px and their labels in lzf chunks of 64 (as ``devolens tile`` compresses), 768 MB decompressed, about 600 MB
on disk (deleted after). A training epoch's shuffled order read tile by tile decompresses a chunk for nearly every
tile (only the first 256 tiles are read: a whole epoch takes minutes); the same epoch regrouped by
:meth:`~devolens.data.datasets.H5TileDataset.epoch_order` reads a window of chunks at a time. Each way is read
directly and through the training engine's loader (:func:`devolens.train.trainer.training_loader`, 2 loader
processes, batches of 8), with the peak memory the direct reads added to the process (``VmHWM`` reset before
each way).

Usage::

    python benchmarks/bench_h5_tiles.py [--folder DIR] [--skip-small]

Prints, per file and tile order, the best of 3 epochs for each way and the ratio; for the last file, tiles a second
and peak memory for each way.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from devolens.data.datasets import H5TileDataset


def make(path: Path, n: int, side: int, per: int, compression: str = "gzip") -> Path:
    """``n`` tiles of ``side`` px (uint16 images, uint8 labels) in ``compression`` chunks of ``per`` tiles (written a
    chunk at a time)."""
    rng = np.random.default_rng(0)
    kw = {"compression": compression} if compression == "gzip" else {"compression": compression, "shuffle": True}
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", (n, 1, side, side), np.uint16, chunks=(per, 1, side, side), **kw)
        labels = f.create_dataset("labels", (n, side, side), np.uint8, chunks=(per, side, side), **kw)
        for s in range(0, n, per):
            k = min(per, n - s)
            images[s:s + k] = rng.integers(0, 4000, (k, 1, side, side), dtype=np.uint16)
            labels[s:s + k] = (rng.random((k, side, side)) > 0.7).astype(np.uint8)
    return path


def baseline_read(path: Path, j: int) -> tuple[np.ndarray, np.ndarray]:
    """A tile as the earlier read gave it: the file opened for it, HDF5's default cache."""
    with h5py.File(path, "r") as f:
        return np.moveaxis(np.asarray(f["images"][j]), 0, -1), np.asarray(f["labels"][j])


def epoch(read, order) -> float:
    t0 = time.perf_counter()
    for i in order:
        read(int(i))
    return time.perf_counter() - t0


def _memory() -> tuple[int, int]:
    """This process's resident and peak resident memory (bytes)."""
    got = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                got[line[:5]] = int(line.split()[1]) << 10
    return got["VmRSS"], got["VmHWM"]


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # (Linux: "5" resets VmHWM to the current VmRSS)
        fh.write("5")


def beyond_the_cache(folder: Path) -> None:
    """Reads/s and peak memory of a file whose chunks exceed the caches, in a shuffled epoch's order and regrouped."""
    from devolens.train.trainer import _EpochOrder, training_loader

    path = make(folder / "tiles_4096.h5", 4096, 256, 64, "lzf")
    try:
        ds = H5TileDataset(path)
        cache = ds.chunk_cache
        print(f"4096 tiles of 256 px, lzf chunks of 64 ({path.stat().st_size / 2**20:.0f} MiB on disk, 768 MiB "
              f"decompressed): caches of {cache.nbytes / 2**20:.0f} MiB in all, a window of {cache.window} chunks")
        order = np.random.default_rng(1).permutation(len(ds))
        ways = (("shuffled epoch", order[:256]), ("regrouped epoch", ds.epoch_order(order)))
        for name, o in ways:
            ds = H5TileDataset(path)
            ds.read(int(o[0]))  # (the file opened)
            rss, _ = _memory()
            _reset_peak()
            took = epoch(ds.read, o)
            print(f"  {name}, read directly: {len(o) / took:.1f} tiles/s ({len(o)} tiles), peak memory "
                  f"+{(_memory()[1] - rss) / 2**20:.0f} MiB")
            del ds
        for name, o in ways:
            ds = H5TileDataset(path)
            sampler = _EpochOrder(o.tolist(), 0)
            loader = training_loader(ds, sampler, 8, 2)
            t0 = time.perf_counter()
            for _ in loader:
                pass
            took = time.perf_counter() - t0
            print(f"  {name}, training loader (2 processes): {len(o) / took:.1f} tiles/s ({len(o)} tiles)")
            del loader, ds
    finally:
        path.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", help="where to write the test files (default: a temporary folder)")
    ap.add_argument("--skip-small", action="store_true", help="only the file whose chunks exceed the caches")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"HDF5 {h5py.version.hdf5_version}, h5py {h5py.__version__}")
        for n, side, per in () if args.skip_small else ((256, 128, 32), (1024, 128, 64)):
            path = make(folder / f"tiles_{n}.h5", n, side, per)
            rng = np.random.default_rng(1)
            for name, order in (("in order", np.arange(n)), ("random", rng.permutation(n))):
                ours = min(epoch(H5TileDataset(path).read, order) for _ in range(3))
                base = min(epoch(lambda j: baseline_read(path, j), order) for _ in range(3))
                print(f"{n} tiles of {side} px, gzip chunks of {per}, {name}: devolens {ours:.2f} s, "
                      f"file opened per tile {base:.2f} s: {base / ours:.1f}x")
            train = np.arange(n // 8, n)
            val = H5TileDataset(path, indices=np.arange(n // 8))
            val.read(0)  # validation first, in this process
            ds = H5TileDataset(path, indices=train)
            after = min(epoch(ds.read, rng.permutation(len(train))) for _ in range(3))
            print(f"  training split after the validation split was read: {after:.3f} s a random epoch (best of 3)")
            del val, ds
        beyond_the_cache(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
