"""Benchmark: tiled live/dead inference of whole wells (speed and peak memory).

Each measurement runs in a fresh child process (``python -c``) that loads the model,
segments a well file with :meth:`LiveDeadPredictor.predict_file` (window 512, overlap 64)
and reports its wall time and its own peak RSS (``resource.getrusage(RUSAGE_SELF)``).

Measured:

* 2700x3600 well, default path (``precision="auto"``: int8 on CPUs with VNNI/AMX, else bf16
  autocast + channels_last) — target < 20 s, < 1.5 GB; and ``precision="bf16"``;
* the same well, fp32 path: the baseline for the speed ratio;
* 5400x7200 well (4x the area: 2x2 copies of the first), default path — target: peak memory
  at most 1.2x that of the 2700x3600 well.

Usage::

    python benchmarks/bench_tiled_inference.py [--threads 2] [--model livedead]

Uses the zoo's ``livedead`` weights when shipped, else a randomly initialised network of
the same architecture (same speed and memory).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile

CHILD = r"""
import json, resource, sys, time
import torch
threads, model, image, out, precision = sys.argv[1:6]
torch.set_num_threads(int(threads))
from devolens.predict.livedead import LiveDeadPredictor
if model == "random":
    from devolens.models.architectures import build_model
    arch = dict(kind="segmentation", arch="unet", encoder="resnet18", in_channels=2, classes=3,
                decoder_channels=[32, 16, 8], encoder_depth=3)
    a = dict(arch); a.pop("kind")
    pred = LiveDeadPredictor(build_model(**a), card={"architecture": arch}, precision=precision)
else:
    pred = LiveDeadPredictor.load(model, precision=precision)
r0 = resource.getrusage(resource.RUSAGE_SELF)
t = time.perf_counter()
counts = pred.predict_file(image, out)
dt = time.perf_counter() - t
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
rss = r1.ru_maxrss / 1024  # MiB (Linux reports KiB)
print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "peak_rss_mib": rss, "counts": counts,
                  "precision": pred.precision}))
"""


def run_child(threads: int, model: str, image: Path, out: Path, precision: str) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, str(threads), model, str(image), str(out), precision],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None, help="zoo name or .safetensors (default: livedead if shipped)")
    ap.add_argument("--seed", type=int, default=9100)
    ap.add_argument("--skip-fp32", action="store_true", help="skip the fp32 baseline")
    ap.add_argument("--skip-big", action="store_true", help="skip the 5400x7200 well")
    args = ap.parse_args()
    model = args.model
    if model is None:
        from devolens.models.zoo import available

        model = "livedead" if "livedead" in available() else "random"
    from devolens.render.wells import simulate_well

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        well = simulate_well(seed=args.seed, size=(2700, 3600))
        small = d / "well.tif"
        tifffile.imwrite(small, well.image)
        big = d / "well4x.tif"
        tifffile.imwrite(big, np.tile(well.image, (1, 2, 2)))
        del well
        print(f"model: {model}; threads: {args.threads}")
        fast = run_child(args.threads, model, small, d / "o1", "auto")
        print(f"2700x3600 default ({fast['precision']}): {fast['seconds']:.1f} s wall, {fast['cpu_seconds']:.1f} s CPU, "
              f"peak RSS {fast['peak_rss_mib']:.0f} MiB, counts {fast['counts']}")
        if fast["precision"] != "bf16":
            bf = run_child(args.threads, model, small, d / "o1b", "bf16")
            print(f"2700x3600 bf16: {bf['seconds']:.1f} s wall, {bf['cpu_seconds']:.1f} s CPU, "
                  f"peak RSS {bf['peak_rss_mib']:.0f} MiB, counts {bf['counts']}")
        if not args.skip_fp32:
            slow = run_child(args.threads, model, small, d / "o2", "fp32")
            print(f"2700x3600 fp32 baseline: {slow['seconds']:.1f} s wall, {slow['cpu_seconds']:.1f} s CPU, "
                  f"peak RSS {slow['peak_rss_mib']:.0f} MiB")
            print(f"speed-up default vs fp32: {slow['seconds'] / fast['seconds']:.2f}x wall, "
                  f"{slow['cpu_seconds'] / fast['cpu_seconds']:.2f}x CPU")
        if args.skip_big:
            return
        big_r = run_child(args.threads, model, big, d / "o3", "auto")
        print(f"5400x7200 default ({big_r['precision']}): {big_r['seconds']:.1f} s wall, {big_r['cpu_seconds']:.1f} s CPU, "
              f"peak RSS {big_r['peak_rss_mib']:.0f} MiB")
        ratio = big_r["peak_rss_mib"] / fast["peak_rss_mib"]
        print(f"memory ratio 4x area / 1x: {ratio:.2f} (target <= 1.2: {'met' if ratio <= 1.2 else 'NOT met'})")
        print(f"targets: < 20 s: {'met' if fast['seconds'] < 20 else 'NOT met'} (wall); "
              f"< 1.5 GB: {'met' if fast['peak_rss_mib'] < 1536 else 'NOT met'}")


if __name__ == "__main__":
    main()
