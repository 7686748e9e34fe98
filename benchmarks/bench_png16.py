"""Peak memory of reading a 16-bit colour PNG (a Fiji/ZEN/NIS colour export) at its full depth.

Writes one ``--size`` x ``--size`` 16-bit RGB PNG (a 12-bit camera's smooth nuclei image, green and a weak red),
then reads it with ``devolens.io.images.read_image`` in a fresh child process and prints the peak resident memory the
read added, as a multiple of the array it returns (``VmHWM`` after the read minus before it; Linux). ``--before-src``
names the ``src`` folder of an older checkout (``git worktree add /tmp/base COMMIT``) to read the same file with that
code too, in its own child process.

Usage::

    python benchmarks/bench_png16.py [--size 4000] [--before-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = """
import json, sys
import numpy as np
from devolens.io.images import read_image

def hwm():  # peak resident memory of this process (KiB; unlike ru_maxrss, not inherited from the parent)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

before = hwm()
arr = read_image(sys.argv[1])
after = hwm()
print(json.dumps({"kib": after - before, "nbytes": arr.nbytes, "shape": list(arr.shape), "dtype": str(arr.dtype)}))
"""


def _measure(png: Path, src: Path | None) -> dict:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    out = subprocess.run([sys.executable, "-c", CHILD, str(png)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--before-src", type=Path, default=None)
    a = ap.parse_args()
    import cv2

    rng = np.random.default_rng(0)
    h = w = a.size
    small = cv2.GaussianBlur(rng.random((h // 8, w // 8)).astype(np.float32), (0, 0), 2.0)
    green = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    green = (np.clip((green - green.min()) / np.ptp(green), 0, 1) * 3500 + rng.integers(0, 300, (h, w))).astype(np.uint16)
    bgr = np.dstack([np.zeros_like(green), green, np.full_like(green, 60)])  # OpenCV writes BGR: red weak, blue 0
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "c16.png"
        assert cv2.imwrite(str(png), bgr)
        rows = [("this code", _measure(png, None))]
        if a.before_src is not None:
            rows.insert(0, (f"the code in {a.before_src}", _measure(png, a.before_src)))
        size_mb = png.stat().st_size / 2**20
    for name, r in rows:
        print(f"{name}: {tuple(r['shape'])} {r['dtype']} ({r['nbytes'] / 2**20:.0f} MiB; file {size_mb:.0f} MiB): "
              f"peak +{r['kib'] / 1024:.0f} MiB = {r['kib'] * 1024 / r['nbytes']:.2f}x the array")


if __name__ == "__main__":
    main()
