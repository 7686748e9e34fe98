"""Start-up: `devolens segment nuclei` on ONE image, the default (PyTorch) against `--backend onnx` (onnxruntime's
shipped int8 network, PyTorch never imported).

A script that segments images one command at a time, or a viewer plug-in that starts a process per image, pays the
start-up on every image: ``import torch`` alone takes about 4 s on the AVX2-only machines here. Both sides run as
whole processes (wall clock from start to exit, file output included), alternating, on the same frame; each side's
peak memory is the largest resident size of its processes.

Usage (``--backend onnx`` needs onnxruntime: ``pip install "devolens[onnx]"``)::

    python benchmarks/bench_start.py [--repeats 5] [--image FRAME.png]

The frame: by default a 752x512 frame of the benchmark movie's embryo (the middle of
``runs/zoo/bench_video_every1/frames``, rendered once by bench_segment.py's ``_video``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_segment import BIN, _video  # noqa: E402


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of ``cmd`` (its own process tree, through /usr/bin/time where it exists)."""
    timer = shutil.which("time") or "/usr/bin/time"
    wrapped = [timer, "-f", "%M"] + cmd if Path(timer).exists() else cmd
    t0 = time.perf_counter()
    res = subprocess.run(wrapped, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    last = res.stderr.strip().splitlines()[-1] if wrapped is not cmd and res.stderr.strip() else ""
    return dt, (int(last) / 1024 if last.isdigit() else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="runs per side (alternating)")
    ap.add_argument("--image", type=Path, default=None, help="the frame (default: the benchmark movie's middle frame)")
    a = ap.parse_args()
    if importlib.util.find_spec("onnxruntime") is None:
        print('skipped: needs onnxruntime (pip install "devolens[onnx]")')
        return
    image = a.image
    if image is None:
        frames = sorted((_video(0).parent / "frames").glob("*.png"))
        image = frames[len(frames) // 2]
    sides = {"default (PyTorch int8)": [], "--backend onnx": []}
    work = Path(tempfile.mkdtemp(prefix="bench_start-"))
    env_threads = os.environ.get("OMP_NUM_THREADS", "all")
    try:
        for _ in range(a.repeats):
            for name, runs in sides.items():
                out = work / ("onnx" if "onnx" in name else "torch")
                shutil.rmtree(out, ignore_errors=True)
                cmd = [str(BIN / "devolens"), "-q", "segment", "nuclei", str(image), "--out", str(out)]
                runs.append(_run(cmd + (["--backend", "onnx"] if "onnx" in name else [])))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"one image: {image} ({a.repeats} runs each, alternating; OMP_NUM_THREADS {env_threads})")
    for name, runs in sides.items():
        walls = [w for w, _ in runs]
        print(f"  {name:24s} best {min(walls):5.2f} s, median {statistics.median(walls):5.2f} s; peak memory "
              f"{max(m for _, m in runs):6.0f} MB")
    best = {n: min(w for w, _ in r) for n, r in sides.items()}
    print(f"--backend onnx against the default: {best['default (PyTorch int8)'] / best['--backend onnx']:.2f}x "
          "(best against best)")


if __name__ == "__main__":
    main()
