"""Compare whole-frame total regressors: the shipped population model's and trained runs'.

Prints MAE / mean true total per frame set: the validation frames of ``--split-run`` (embryos
that run never trained on; the shipped regressor may have) and each ``--renders`` folder
(development renders, e.g. ``dev_framed_*``), for the shipped regressor, each run, and the
mean of the runs in log space (``ens``). Never give the held-out renders the cards report on.

Usage::

    python scripts/zoo_compare_totals.py --split-run runs/zoo/pop_total_s7 --data runs/zoo/data/pop_total \
        --runs runs/zoo/pop_total_s7 runs/zoo/pop_total_s7_192 --renders runs/zoo/render/dev_framed_*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zoo_population import regressor_parts  # noqa: E402  (the tables file's reading of a run)


def regressor_from_run(run: Path):
    from devolens.predict.population import PopulationPredictor, _total_regressor

    tensors, spec = regressor_parts(run)
    return PopulationPredictor("regressor", network=_total_regressor(tensors, spec, run), outputs=["total"],
                               input_size=spec["input_size"])


def main() -> None:
    from devolens.io.images import read_image
    from devolens.models import zoo
    from devolens.predict.population import PopulationPredictor

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, nargs="+", required=True, help="recipes/population_total.yaml runs")
    ap.add_argument("--split-run", type=Path, default=None, help="score that run's validation frames too")
    ap.add_argument("--data", type=Path, default=Path("runs/zoo/data/pop_total"), help="the runs' --data folder")
    ap.add_argument("--renders", type=Path, nargs="*", default=[], help="development render folders")
    a = ap.parse_args()

    shipped = zoo.load("population")
    regs = {"shipped": PopulationPredictor("regressor", network=shipped.network, outputs=["total"],
                                           input_size=shipped.input_size)}
    regs.update({run.name: regressor_from_run(run) for run in a.runs})
    sets = {}
    if a.split_run is not None:
        split = pd.read_csv(a.split_run / "split.csv")
        frames = pd.read_csv(a.data / "frames.csv").set_index("file")
        sets["run validation"] = [(a.data / f, frames.loc[f, "total"]) for f in split.loc[split["side"] == "val", "sample"]]
    for d in a.renders:
        df = pd.read_csv(d / "frames.csv", keep_default_na=False)
        sets[d.name] = [(d / r.file, r.total) for r in df[df["artifact"] == ""].itertuples()]
    for name, items in sets.items():
        truth = np.array([t for _, t in items], float)
        images = [read_image(p) for p, _ in items]
        est = {k: np.array([float(r._regress(r._regressor_input(im)[None])[0, 0]) for im in images]) for k, r in regs.items()}
        if len(a.runs) > 1:
            est["ens"] = np.expm1(np.mean([np.log1p(np.maximum(est[run.name], 0.0)) for run in a.runs], axis=0))
        print(f"{name:24s} n={len(items):4d} " + " ".join(f"{k}={np.mean(np.abs(e - truth)) / truth.mean():.3f}"
                                                         for k, e in est.items()), flush=True)


if __name__ == "__main__":
    main()
