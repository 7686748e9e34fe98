"""Giant images: `segment nuclei` block by block vs the whole image at once (memory, time, accuracy).

A simulated live/dead well (its Hoechst channel: nuclei ~11 px wide, with exact instance labels) is
tiled ``--repeat`` x ``--repeat`` times into one giant image (e.g. 4000 px -> 8000x8000, ~55k nuclei).
The nuclei model segments it twice, each in its own child process (peak memory = the child's
``VmHWM``): once whole (``block_pixels=inf``, the path every image took before), once block by block
(the default above 3072x3072 working pixels). Printed: wall time and peak memory of each, their
ratios, instance F1 at IoU 0.5 of each against the truth, and the agreement of the two label images.

    .venv/bin/python benchmarks/bench_giant.py --size 4000 --repeat 2

Use ``--skip-whole`` for sizes whose whole-image run would not fit in memory (16000x16000 needs
~40 GB whole).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys, time
import numpy as np, tifffile
from devolens.models import load
path, out, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
image = tifffile.imread(path)
t = time.perf_counter()
res = load("nuclei", diameter="auto", block_pixels=limit).predict(image)
wall = time.perf_counter() - t
np.save(out, res.labels)
# VmHWM: this process's own peak (ru_maxrss would keep the parent's across the exec)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"wall": wall, "peak_mb": hwm / 1024,
                  "count": res.count, "blocks": res.extra.get("blocks", 0), "dtype": str(res.labels.dtype)}))
"""


def make_image(folder: Path, size: int, repeat: int, seed: int) -> tuple[Path, np.ndarray]:
    import tifffile

    from devolens.render.wells import simulate_well

    well = simulate_well(seed=seed, size=(size, size), density=1200, dead_fraction=0.1)
    image = np.tile(well.image[0], (repeat, repeat))
    n = int(well.instances.max())
    truth = np.zeros(image.shape, np.uint32)
    for i in range(repeat):
        for j in range(repeat):
            inst = well.instances.astype(np.uint32)
            k = i * repeat + j
            truth[i * size:(i + 1) * size, j * size:(j + 1) * size] = np.where(inst > 0, inst + k * n, 0)
    path = folder / f"well_{size * repeat}.tif"
    tifffile.imwrite(path, image)
    return path, truth


def run(path: Path, limit: float, folder: Path) -> tuple[dict, np.ndarray]:
    out = folder / f"labels_{'whole' if limit == float('inf') else 'blocks'}.npy"
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(out), repr(limit)], capture_output=True,
                          text=True)
    if proc.returncode < 0:  # killed: on a giant image the whole-image path runs out of memory
        return {"killed": -proc.returncode, "after": time.perf_counter() - t}, None
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4000, help="side of the simulated well (pixels)")
    ap.add_argument("--repeat", type=int, default=2, help="tiles per side of the giant image")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--skip-whole", action="store_true", help="only the block-by-block run")
    args = ap.parse_args()
    from devolens.predict.blocks import BLOCK_PIXELS
    from devolens.train.metrics import instance_scores

    with tempfile.TemporaryDirectory(prefix="devolens-giant-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        path, truth = make_image(folder, args.size, args.repeat, args.seed)
        side = args.size * args.repeat
        print(f"image {side}x{side} ({int(truth.max())} true nuclei), made in {time.perf_counter() - t:.1f} s")
        runs = {}
        for name, limit in (("whole", float("inf")), ("blocks", float(BLOCK_PIXELS))):
            if name == "whole" and args.skip_whole:
                continue
            stats, labels = run(path, limit, folder)
            if labels is None:
                print(f"{name:6s}: killed by signal {stats['killed']} after {stats['after']:.0f} s "
                      "(the system's out-of-memory killer: see dmesg)")
                continue
            f1 = instance_scores(labels.astype(np.int64), truth.astype(np.int64))
            runs[name] = (stats, labels)
            print(f"{name:6s}: {stats['wall']:.1f} s, peak {stats['peak_mb']:.0f} MB, {stats['count']} nuclei "
                  f"({stats['dtype']}, {stats['blocks'] or 'no'} blocks); vs truth F1 {f1['f1']:.4f} "
                  f"(precision {f1['precision']:.4f}, recall {f1['recall']:.4f})")
        if len(runs) == 2:
            (w, lw), (b, lb) = runs["whole"], runs["blocks"]
            agree = instance_scores(lb.astype(np.int64), lw.astype(np.int64))
            print(f"blocks / whole: time {b['wall'] / w['wall']:.2f}x, peak memory {b['peak_mb'] / w['peak_mb']:.2f}x; "
                  f"the two label images agree at F1 {agree['f1']:.4f}")


if __name__ == "__main__":
    main()
