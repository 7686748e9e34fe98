"""How fast the training engine's data loader hands out training samples, before and after the
twentieth session's two changes, in one process on the same data:

- before: every epoch a fresh loader over ``Subset(train_ds, order)``; each loader process decodes the
  files it is given again (its cache dies with it at the epoch's end), and every sample carries its int32
  instance labels through the processes' shared memory although training never reads them;
- now (``devolens.train.trainer``): with ``train.num_workers`` > 0 and ``data.cache`` on, the engine decodes
  the training files once before the first epoch (``preload``; the forked loader processes share them), and
  training samples leave their instance labels behind (``_TrainItems``; validation keeps them).

Only the loader is timed (no network): samples per second over whole epochs, loader start included. The
"before" side runs the dataset code importable here, unless ``--before-src`` names the ``src`` folder of an
older checkout (``git worktree add /tmp/base COMMIT``): it then runs in a child process on that code, so that
changes to the samples' own preparation count too.

Usage::

    python benchmarks/bench_loader.py RECIPE --data DIR [--workers 2] [--epochs 3] [--batch-size 32] [--before-src DIR]

e.g. a crop folder made by ``scripts/zoo_data.py nuclei`` and ``recipes/nuclei_gpu.yaml`` (its ``data.cache`` is
turned on here for both sides, as the "now" side needs it).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def _epochs(loader_for, n: int, epochs: int) -> list[float]:
    rates = []
    for epoch in range(epochs):
        order = np.random.default_rng(epoch).permutation(n).tolist()
        t0 = time.perf_counter()
        seen = 0
        for batch in loader_for(epoch, order):
            seen += len(batch["index"])
        rates.append(seen / (time.perf_counter() - t0))
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--before-src", type=Path, default=None, help="src folder of the code to time as 'before'")
    ap.add_argument("--only", choices=("before",), default=None, help=argparse.SUPPRESS)  # the child's side
    a = ap.parse_args()

    import torch
    from torch.utils.data import DataLoader, Subset

    from devolens.data.datasets import pad_collate
    from devolens.train.recipe import load_recipe, resolved
    from devolens.train.trainer import build_data

    torch.set_num_threads(1)
    rec = resolved(load_recipe(a.recipe))
    rec["data"]["cache"] = True

    def fresh():
        return build_data(rec, a.data).train

    old_ds = fresh()

    def old(epoch, order):
        old_ds.set_epoch(epoch)
        return DataLoader(Subset(old_ds, order), batch_size=a.batch_size, num_workers=a.workers,
                          collate_fn=pad_collate)

    n = len(old_ds)
    if a.only == "before":  # in the child, on the older code
        print(json.dumps(_epochs(old, n, a.epochs)))
        return
    if a.before_src is not None:
        import subprocess
        import sys

        env = dict(os.environ, PYTHONPATH=str(a.before_src.resolve()))
        args = [sys.executable, __file__, str(a.recipe), "--data", str(a.data), "--workers", str(a.workers),
                "--epochs", str(a.epochs), "--batch-size", str(a.batch_size), "--only", "before"]
        before = json.loads(subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
                            .strip().splitlines()[-1])
    else:
        before = _epochs(old, n, a.epochs)
    from devolens.train.trainer import _EpochOrder, training_loader

    new_ds = fresh()
    t0 = time.perf_counter()
    new_ds.preload(threads=min(a.workers, 8))
    pre = time.perf_counter() - t0

    def new(epoch, order):  # the engine's loader, one per epoch as _epochs measures it
        return training_loader(new_ds, _EpochOrder(order, epoch), a.batch_size, a.workers)

    after = _epochs(new, n, a.epochs)
    total_before = a.epochs * n / sum(n / r for r in before)
    total_after = a.epochs * n / (pre + sum(n / r for r in after))
    print(f"{n} training samples, {a.workers} loader processes, batch {a.batch_size}, {a.epochs} epochs; before: "
          + (f"the code in {a.before_src}" if a.before_src else "this code without the two changes"))
    print("before, samples/s per epoch: " + " ".join(f"{r:.0f}" for r in before))
    print("now,    samples/s per epoch: " + " ".join(f"{r:.0f}" for r in after) + f" (+ {pre:.1f} s decoding first)")
    print(f"over the {a.epochs} epochs (decoding included): {total_before:.0f} -> {total_after:.0f} samples/s, "
          f"{total_after / total_before:.2f}x")


if __name__ == "__main__":
    main()
