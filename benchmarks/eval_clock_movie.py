"""`devolens population` on one rendered movie: per frame, `--monotone` and `--clock` against the truth.

The movie is a render folder made with ``devolens render ... --video`` (its ``video.mp4`` and the true
counts in ``frames.csv``), e.g. the speed benchmark's movie of the held-out embryo at every time point
(``runs/zoo/bench_video_every1``, made by ``benchmarks/bench_segment.py``). Each mode runs the CLI as a
user would; prints MAE / mean count per letter and total, and the clock's fitted pace.

Usage::

    python benchmarks/eval_clock_movie.py [runs/zoo/bench_video_every1]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COLS = ["A", "E", "M", "P", "C", "D", "Z", "total"]


def main() -> None:
    movie = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "runs/zoo/bench_video_every1"
    truth = pd.read_csv(movie / "frames.csv", keep_default_na=False)
    exe = Path(sys.executable).parent / "devolens"
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("", "--monotone", "--clock"):
            out = Path(tmp) / f"pops{mode}.csv"
            run = subprocess.run([str(exe), "population", str(movie / "video.mp4"), "--out", str(out), "--no-plot",
                                  *([mode] if mode else [])], capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(run.stderr)
            pred = pd.read_csv(out)
            if len(pred) != len(truth):
                raise SystemExit(f"{len(pred)} frames predicted, {len(truth)} in frames.csv")
            ratio = {k: np.abs(pred[k].to_numpy() - truth[k].to_numpy()).mean() / truth[k].mean() for k in COLS}
            print(f"{mode or 'per frame':<11}", " ".join(f"{k} {v:.3f}" for k, v in ratio.items()))
            note = " ".join(line.strip() for line in run.stderr.splitlines() if line.strip())
            if "developmental clock:" in note:
                print("            ", note[note.index("developmental clock:"):])


if __name__ == "__main__":
    main()
