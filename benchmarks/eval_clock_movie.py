"""`devolens population` on one rendered movie: per frame, `--monotone` and `--clock` against the truth.

Each movie is a render folder (the true counts in ``frames.csv``; the input is its ``video.mp4`` when
rendered with ``--video``, else its ``frames/`` folder in name order), e.g. the speed benchmark's movie of
the held-out embryo at every time point (``runs/zoo/bench_video_every1``, made by
``benchmarks/bench_segment.py``) or the held-out EPIC-framed movies (``runs/zoo/render/val_L3_framed_s*``).
Each mode runs the CLI as a user would; prints MAE / mean count per letter and total, and the clock's
fitted pace, per movie.

Usage::

    python benchmarks/eval_clock_movie.py [RENDER_DIR ...]   # default runs/zoo/bench_video_every1

e.g. the figures of benchmarks/RESULTS.md (population): ``runs/zoo/bench_video_every1
runs/zoo/render/val_L3_framed_s{8,9,10}`` (held out) and ``runs/zoo/render/dev_framed_L{1,2}_s2{1,2,3}``
(training embryos' EPIC-like movies, development renders).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COLS = ["A", "E", "M", "P", "C", "D", "Z", "total"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("movies", type=Path, nargs="*", metavar="RENDER_DIR",
                    help="render folders (frames.csv with the true counts, and video.mp4 or frames/); default "
                         "runs/zoo/bench_video_every1")
    a = ap.parse_args(argv)
    movies = a.movies or [ROOT / "runs/zoo/bench_video_every1"]
    for movie in movies:
        if not (movie / "frames.csv").is_file():
            ap.error(f"{movie}: not a render folder (no frames.csv)")
    for movie in movies:
        print(movie.name)
        score(movie)


def score(movie: Path) -> None:
    truth = pd.read_csv(movie / "frames.csv", keep_default_na=False)
    source = movie / "video.mp4" if (movie / "video.mp4").exists() else movie / "frames"
    exe = Path(sys.executable).parent / "devolens"
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("", "--monotone", "--clock"):
            out = Path(tmp) / f"pops{mode}.csv"
            run = subprocess.run([str(exe), "population", str(source), "--out", str(out), "--no-plot",
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
