"""How well must a frame's total be read for the population target (MAE per letter <= 10 % of its mean)?

The shipped population model reads a frame's letters off its composition table at the total it estimates
(``devolens.predict.population.composition_counts``). Given the true total, the letters are within 1-7 % (the
design's floor, the card's ``oracle_total_mae_over_mean_heldout``). This script measures what an error of the total
costs the letters: each held-out frame's TRUE total is multiplied by ``exp(e)``, ``e`` drawn from a normal law of
standard deviation ``s`` (a relative error of the total of about ``s``: the MAE / mean of the total is printed
beside it), and the letters are read off the shipped table at that total. Mean over ``--draws`` draws per ``s``.
No image is read: the figures say what a total estimate of a given accuracy allows, whatever made it.

Usage::

    python benchmarks/population_total_needed.py [--val runs/zoo/render/val_L3 runs/zoo/render/val_sim]
        [--sigmas 0 0.02 0.04 ...] [--draws 20]

Prints a Markdown table: per ``s``, the total's MAE / mean and each letter's (target <= 0.10).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LETTERS = ("A", "E", "M", "P", "C", "D", "Z")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--val", nargs="+", type=Path,
                    default=[ROOT / "runs/zoo/render/val_L3", ROOT / "runs/zoo/render/val_sim"],
                    help="held-out render folders (frames.csv with the letters and total of each frame)")
    ap.add_argument("--sigmas", nargs="+", type=float,
                    default=[0.0, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10, 0.12])
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.draws < 1 or any(not s >= 0 for s in a.sigmas):
        ap.error("--draws must be 1 or more and every --sigmas value 0 or more")
    from devolens.models import load
    from devolens.predict.population import composition_counts

    frames = []
    for d in a.val:
        if not (d / "frames.csv").is_file():
            raise SystemExit(f"no render at {d} (scripts/zoo_renders.sh makes the held-out renders)")
        df = pd.read_csv(d / "frames.csv", keep_default_na=False)
        frames.append(df[df["artifact"].astype(str) == ""])
    truth = pd.concat(frames, ignore_index=True)
    table = load("population").composition
    t_total = truth["total"].to_numpy(float)
    t = truth[list(LETTERS)].to_numpy(float)
    rng = np.random.default_rng(a.seed)
    print(f"{len(truth)} frames of {', '.join(d.name for d in a.val)}; the shipped composition table; "
          f"{a.draws} draws per s\n")
    print("| s (log-normal) | total MAE / mean | " + " | ".join(LETTERS) + " | letters within 10 % |")
    print("|---" * (len(LETTERS) + 3) + "|")
    for s in a.sigmas:
        tot, per = [], []
        for _ in range(a.draws if s > 0 else 1):
            est = t_total * np.exp(rng.normal(0.0, s, len(t_total)))
            letters = composition_counts(est, table)
            tot.append(np.abs(letters.sum(axis=1) - t_total).mean() / t_total.mean())
            per.append(np.abs(letters - t).mean(axis=0) / t.mean(axis=0))
        per = np.mean(per, axis=0)
        print(f"| {s:.2f} | {np.mean(tot):.3f} | " + " | ".join(f"{v:.3f}" for v in per)
              + f" | {int((per <= 0.10).sum())} of {len(LETTERS)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
