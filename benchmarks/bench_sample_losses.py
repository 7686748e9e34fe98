"""The training engine's per-sample loss table (``sample_losses.csv``) over a long run, the way it was kept before
and now, in one process on the same losses.

- before: a dict per sample per epoch in a list, and the whole table made into a DataFrame and written again at
  each epoch's end (work and memory growing with every epoch: quadratic over a run);
- now (``devolens.train.trainer._SampleLosses``): one small table per epoch, and each epoch's rows appended to a
  copy of the file (its earlier bytes copied, not formatted again), which then replaces it atomically.

Prints the seconds spent keeping and writing the table over the run, the last epoch's write, the peak memory
the table added (tracemalloc, in a second run, untimed), and whether the two files are the same bytes.

Usage::

    python benchmarks/bench_sample_losses.py [--samples 50000] [--epochs 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from devolens.io.atomic import write_csv
from devolens.train.trainer import _SampleLosses


def run(kind: str, path: Path, ids: list[str], losses: list[list[np.ndarray]], trace: bool = False) -> tuple[float, float, float]:
    if trace:
        tracemalloc.start()
    total = last = 0.0
    rows: list[dict] = []
    table = _SampleLosses(path, ids)
    for epoch, steps in enumerate(losses):
        t = time.perf_counter()
        start = 0
        for vals in steps:  # one step's samples: indices start..start+len
            index = np.arange(start, start + len(vals))
            start += len(vals)
            if kind == "before":
                for idx, v in zip(index.tolist(), vals.tolist()):
                    rows.append({"epoch": epoch, "sample": ids[idx], "loss": v})
            else:
                table.add(epoch, index, vals)
        w = time.perf_counter()
        if kind == "before":
            write_csv(pd.DataFrame(rows, columns=["epoch", "sample", "loss"]), path)
        else:
            table.write()
        last = time.perf_counter() - w
        total += time.perf_counter() - t
    if not trace:
        return total, last, float("nan")
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return total, last, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    ids = [f"embryo{i % 12:02d}_t{i:06d}" for i in range(args.samples)]
    losses = [[rng.random(min(args.batch, args.samples - s)).astype(np.float32).astype(np.float64)
               for s in range(0, args.samples, args.batch)] for _ in range(args.epochs)]
    with tempfile.TemporaryDirectory() as tmp:
        res = {kind: run(kind, Path(tmp) / f"{kind}.csv", ids, losses) for kind in ("before", "now")}
        for kind in res:  # memory in a second run: tracing every allocation slows the first way down several-fold
            res[kind] = res[kind][:2] + run(kind, Path(tmp) / "traced.csv", ids, losses, trace=True)[2:]
        same = (Path(tmp) / "before.csv").read_bytes() == (Path(tmp) / "now.csv").read_bytes()
    print(f"{args.samples} samples x {args.epochs} epochs ({args.samples * args.epochs} rows)")
    for kind, (total, last, peak) in res.items():
        print(f"  {kind:6s}: {total:6.2f} s over the run, last epoch's write {last:5.2f} s, peak memory {peak:7.1f} MiB")
    print(f"  ratio before/now: {res['before'][0] / res['now'][0]:.1f}x time, {res['before'][2] / res['now'][2]:.1f}x "
          f"memory; files identical: {same}")


if __name__ == "__main__":
    main()
