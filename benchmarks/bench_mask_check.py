"""How long `devolens train` spends checking every mask of one's own data before training.

`devolens.train.trainer.check_masks` reads every mask of an images/ + masks/ folder (values, smoothed edges,
size against its image's header) so that a bad file is refused before the run starts. This prints its time
for N masks of SIZE x SIZE in four storage kinds (uint16 TIFF, 16-bit PNG, 8-bit PNG, colour PNG).

    .venv/bin/python benchmarks/bench_mask_check.py [--n 500] [--size 512]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _labels(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lab = np.zeros((size, size), np.uint16)
    yy, xx = np.mgrid[:size, :size]
    for k in range(1, 61):  # 60 discs of 8-14 px radius (overlaps: the later one wins)
        cy, cx, r = rng.uniform(15, size - 15), rng.uniform(15, size - 15), rng.uniform(8, 14)
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = k
    return lab


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="masks per kind")
    ap.add_argument("--size", type=int, default=512, help="side of each mask in pixels")
    a = ap.parse_args()
    import imageio.v3 as iio
    import pandas as pd
    import tifffile

    from devolens.train.trainer import check_masks

    colours = np.random.default_rng(0).integers(30, 256, (61, 3)).astype(np.uint8)
    colours[0] = 0
    kinds = {
        "uint16 TIFF": lambda p, lab: tifffile.imwrite(p.with_suffix(".tif"), lab),
        "16-bit PNG": lambda p, lab: iio.imwrite(p.with_suffix(".png"), lab),
        "8-bit PNG": lambda p, lab: iio.imwrite(p.with_suffix(".png"), lab.astype(np.uint8)),
        "colour PNG": lambda p, lab: iio.imwrite(p.with_suffix(".png"), colours[lab]),
    }
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "image.png"
        iio.imwrite(image, np.zeros((a.size, a.size), np.uint8))
        masks = [_labels(a.size, i) for i in range(min(a.n, 20))]  # 20 distinct masks, reused
        for kind, write in kinds.items():
            folder = Path(tmp) / kind.replace(" ", "_")
            folder.mkdir()
            paths = []
            for i in range(a.n):
                write(folder / f"m{i:04d}", masks[i % len(masks)])
                paths.append(next(folder.glob(f"m{i:04d}.*")))
            df = pd.DataFrame({"image": [str(image)] * a.n, "labels": [str(p) for p in paths]})
            t = time.perf_counter()
            notes = check_masks(df, seconds=1e9)
            dt = time.perf_counter() - t
            print(f"{kind:12s}: {a.n} masks of {a.size}x{a.size} checked in {dt:.2f} s ({1000 * dt / a.n:.1f} ms each)"
                  + (f"; notes: {notes}" if notes else ""))


if __name__ == "__main__":
    main()
