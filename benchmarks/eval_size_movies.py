"""`--diameter auto` on whole movies: what one estimate per movie decides, from the 1-cell stage on.

A user's timelapse is one stream with one magnification; the nuclei predictor estimates it once,
from the first frames that show the most nuclei (``devolens.predict.sizing.gather``). This renders
the first time points of an embryo like an EPIC movie (default pose, one optics draw per movie),
at the training magnification and at 2x, runs ``load("nuclei", diameter="auto").predict_iter``
over each movie, and prints the estimate, how many frames decided it, and whether the movie was
resized. Held-out simulated embryo seed 999 (starts at 1 cell) and training embryo
CD20241010_JIM767_25_L2 (starts at 2 cells).

Usage::

    python benchmarks/eval_size_movies.py [--times 80] [--seeds 21 22]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--times", type=int, default=80, help="first time points of each embryo (frames per movie)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[21, 22], help="optics draws (one movie each)")
    ap.add_argument("--zooms", type=float, nargs="+", default=[1.0, 2.0])
    a = ap.parse_args()
    import cv2

    from devolens.io.tables import read_table
    from devolens.models import load
    from devolens.render.dataset import simulate_tables
    from devolens.render.nuclei import render_nuclei_frame
    from devolens.render.optics import OpticsParams

    data = Path(os.environ.get("DEVOLENS_DATA", ROOT.parent / "shared" / "data"))
    embryos = [("sim999 (held out)", simulate_tables(1, seed=999)[0])]
    table = data / "epic" / "CD20241010_JIM767_25_L2.csv"
    if table.is_file():
        embryos.append(("CD20241010_JIM767_25_L2 (training)", read_table(table)))
    pred = load("nuclei", diameter="auto")
    print("| embryo | optics seed | zoom | first frame cells | estimate | frames deciding | resized to diameter (px) |")
    print("|---|---|---|---|---|---|---|")
    for name, t in embryos:
        times = np.unique(t["time"].to_numpy())[: a.times]
        cells = int((t["time"] == times[0]).sum())
        for seed in a.seeds:
            optics = OpticsParams.sample(np.random.default_rng(seed))
            frames = [render_nuclei_frame(t, int(tt), seed=seed, optics=optics, rgb=True).image for tt in times]
            for zoom in a.zooms:
                movie = frames if zoom == 1.0 else [cv2.resize(f, None, fx=zoom, fy=zoom) for f in frames]
                for _ in pred.predict_iter(iter(movie)):
                    pass
                e = pred.last_estimate
                resized = "no" if e.diameter is None else f"{e.diameter:.0f}"
                print(f"| {name} | {seed} | {zoom:g}x | {cells} | {e.magnification:.2f}x | {e.trusted} | {resized} |")


if __name__ == "__main__":
    main()
