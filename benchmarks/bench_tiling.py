"""Benchmark: tiling one simulated 2700x3600 two-channel well (with labels) into an HDF5 store.

Prints the time of ``devolens.data.tiling.tile_to_h5`` (tile 160, stride 80, keep mixed,
lzf and gzip-1 chunks of 1000 samples) against a naive baseline measured in the same run
(a Python loop over tile positions, a per-tile class count, one HDF5 write per tile into a
dataset chunked per sample with gzip level 4: the straightforward way).

Usage::

    python benchmarks/bench_tiling.py [--size 2700x3600] [--seed 0] [--repeats 2]

Target: under 10 s for one 2700x3600 well at stride 80.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import tifffile

from devolens.data.tiling import read_image, read_labels, tile_positions, tile_to_h5
from devolens.render.wells import simulate_well


def naive(image_path: Path, labels_path: Path, out: Path, tile: int = 160, stride: int = 80) -> int:
    img = read_image(image_path)
    lab = read_labels(labels_path)
    with h5py.File(out, "w") as f:
        di = f.create_dataset("images", (0, 2, tile, tile), maxshape=(None, 2, tile, tile), dtype=np.uint16,
                              chunks=(1, 2, tile, tile), compression="gzip", compression_opts=4)
        dl = f.create_dataset("labels", (0, tile, tile), maxshape=(None, tile, tile), dtype=np.uint8,
                              chunks=(1, tile, tile), compression="gzip", compression_opts=4)
        dc = f.create_dataset("class_counts", (0, 3), maxshape=(None, 3), dtype=np.int64)
        n = 0
        for y in tile_positions(lab.shape[0], tile, stride):
            for x in tile_positions(lab.shape[1], tile, stride):
                t = lab[y:y + tile, x:x + tile]
                c = np.bincount(t.ravel(), minlength=3)
                if (c > 0).sum() <= 1:
                    continue
                for d in (di, dl, dc):
                    d.resize(n + 1, axis=0)
                di[n] = img[:, y:y + tile, x:x + tile]
                dl[n] = t
                dc[n] = c
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2700x3600")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        t = time.perf_counter()
        well = simulate_well(seed=args.seed, size=(h, w))
        t_sim = time.perf_counter() - t
        ip, lp = d / "well.tif", d / "labels.tif"
        tifffile.imwrite(ip, well.image)
        tifffile.imwrite(lp, well.labels)
        print(f"simulate_well {h}x{w}: {t_sim:.2f} s ({len(well.objects)} nuclei)")
        results = {}
        for comp in ("lzf", "gzip"):
            best = np.inf
            for _ in range(args.repeats):
                out = d / f"t_{comp}.h5"
                t = time.perf_counter()
                s = tile_to_h5([ip], out, [lp], tile=160, stride=80, keep="mixed", compression=comp)
                best = min(best, time.perf_counter() - t)
            results[comp] = best
            print(f"tile_to_h5 ({comp}): {best:.2f} s, {s.n_tiles} mixed tiles of {sum(s.considered)}, "
                  f"{os.path.getsize(out) / 1e6:.0f} MB")
        t = time.perf_counter()
        n = naive(ip, lp, d / "naive.h5")
        t_naive = time.perf_counter() - t
        print(f"naive per-tile loop (gzip-4, chunk per sample): {t_naive:.2f} s, {n} tiles, "
              f"{os.path.getsize(d / 'naive.h5') / 1e6:.0f} MB")
        for comp, v in results.items():
            print(f"speed-up {comp} vs naive: {t_naive / v:.1f}x; target < 10 s: {'met' if v < 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
