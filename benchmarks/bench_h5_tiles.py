"""Speed: reading the tiles of an HDF5 file whose chunks hold several tiles (a file not written by devolens).

``H5TileDataset`` keeps the file and its two datasets open, with a chunk cache sized for the file's chunks
(:func:`devolens.data.datasets.h5_tile_cache`), so a chunk is decompressed once for its tiles. The baseline, run in
the same process on the same files, reads as the thirty-fourth session's ``read`` did: the file opened for each
tile with HDF5's default cache (its chunk decompressed again for every tile). A third line reads the training
split after the validation split was read first in the same process (as a run from weights does: HDF5 keeps one
open file per process, whose first opening sets the cache).

Usage::

    python benchmarks/bench_h5_tiles.py [--folder DIR]

Prints, per file and tile order, the best of 3 epochs for each way and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from devolens.data.datasets import H5TileDataset


def make(path: Path, n: int, side: int, per: int) -> Path:
    """``n`` tiles of ``side`` px (uint16 images, uint8 labels) in gzip chunks of ``per`` tiles."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=rng.integers(0, 4000, (n, 1, side, side), dtype=np.uint16),
                         chunks=(per, 1, side, side), compression="gzip")
        f.create_dataset("labels", data=(rng.random((n, side, side)) > 0.7).astype(np.uint8),
                         chunks=(per, side, side), compression="gzip")
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", help="where to write the test files (default: a temporary folder)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"HDF5 {h5py.version.hdf5_version}, h5py {h5py.__version__}")
        for n, side, per in ((256, 128, 32), (1024, 128, 64)):
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
