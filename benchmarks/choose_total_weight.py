"""Choose the population model's total weight (calibration vs whole-frame regressor) on development renders.

The population model's total is a blend, in log space, of two estimates: the nuclei-count calibration
(``c``) and the whole-frame ResNet18 regressor (``r``)::

    total = expm1(w * log1p(c) + (1 - w) * log1p(r))

``w`` is the card's ``total_regressor.weight_calibration``. It was chosen once, on the regressor run's
validation embryos, when the regressor shipped, with the calibration of a nuclei network that has since been
replaced; every later refit of the calibration copied it unchanged. This script chooses it again, with the
shipped calibration and nuclei network, on renders the card does NOT report (the held-out renders val_L3 /
val_sim / val_L3_framed_* are the card's):

- random-pose renders (one input per image, as ``devolens population`` of a single image): a training embryo
  rendered anew (``dev_L2``) and freshly simulated embryos (``dev_sim``, ``dev_sim2``);
- EPIC-framed movies (one stream per movie, as ``devolens population`` of a movie): ``dev_L2_framed`` and a
  freshly simulated embryo ``dev_sim_framed``.

Each frame is run once through ``PopulationPredictor.predict_iter``, recording the calibration's total and the
regressor's, as shipped (one view) and averaged over four views (as filmed and mirrored: the regressor reads mirror
images apart); every candidate weight is scored on the same estimates. Score: per folder, the
mean over the seven letters of MAE / mean count (the issue's target is per letter); the folders' scores
averaged with equal weight. The chosen weight is the lowest-scoring candidate; the shipped weight is kept when
it scores within ``--keep-within`` of the best (no change for noise).

Renders (``devolens render``)::

    devolens render $DEVOLENS_DATA/epic/CD20241010_JIM767_25_L2.csv --out runs/zoo/render/dev_L2 --every 2 \\
        --pose random --vary frame --grey --seed 21
    devolens render --simulate 1 --out runs/zoo/render/dev_sim --every 2 --pose random --vary frame --grey --seed 2100
    devolens render --simulate 1 --out runs/zoo/render/dev_sim2 --every 2 --pose random --vary frame --grey --seed 2300
    devolens render $DEVOLENS_DATA/epic/CD20241010_JIM767_25_L2.csv --out runs/zoo/render/dev_L2_framed --every 6 \\
        --grey --seed 2201
    devolens render --simulate 1 --out runs/zoo/render/dev_sim_framed --every 6 --grey --seed 2400

Usage::

    python benchmarks/choose_total_weight.py [--renders DIR ...] [--framed DIR ...] [--weights 0 0.1 ... 1]
        [--diameter auto|none|PX] [--zoo DIR] [--json FILE]

Prints a Markdown table (score per folder per candidate weight) and the choice.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RENDERS = ROOT / "runs/zoo/render"
LETTERS = ("A", "E", "M", "P", "C", "D", "Z")


def _rows(folder: Path) -> pd.DataFrame:
    df = pd.read_csv(folder / "frames.csv")
    return df[~df["artifact"].notna() | (df["artifact"].astype(str) == "")].reset_index(drop=True)


def _estimates(pred, folder: Path, files: list[str], movie: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per clean frame of ``folder``: the calibration's total, the regressor's (as shipped: one view) and the
    regressor's averaged over four views (as filmed, mirrored left-right, up-down, turned half a turn; mean of
    log1p), from one pass of ``predict_iter`` at weight 1 (the blend is then the calibration alone)."""
    from devolens.io.images import read_image

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from eval_zoo import _sizes_unsaid  # the benchmarks' one filter of the size and late-reading notes

    one, four = [], []
    regress = pred._regress

    def recording(batch: np.ndarray) -> np.ndarray:
        views = [batch, batch[:, :, ::-1], batch[:, ::-1, :], batch[:, ::-1, ::-1]]
        outs = [regress(np.ascontiguousarray(v)) for v in views]
        one.extend(outs[0][:, 0])
        four.extend(np.expm1(np.mean([np.log1p(o[:, 0]) for o in outs], axis=0)))
        return outs[0]

    pred.total_weight, pred._regress = 1.0, recording
    files = [folder / f for f in files]  # (frames.csv names files relative to the render)
    try:
        # early frames: too few nuclei to judge the magnification (as the CLI); late frames read one call each: one
        # note per frame (its words: devolens.predict.population.late_message)
        with _sizes_unsaid():
            if movie:  # one stream: one magnification estimate per movie
                out = list(pred.predict_iter(read_image(f) for f in files))
            else:  # each image its own input
                out = [next(pred.predict_iter([read_image(f)])) for f in files]
    finally:
        del pred._regress  # back to the class's method
    if len(one) != len(out):
        raise RuntimeError(f"{folder}: {len(out)} frames but {len(one)} regressor calls")
    return np.array([o["total"] for o in out], dtype=float), np.array(one, float), np.array(four, float)


def _score(c: np.ndarray, r: np.ndarray, truth: pd.DataFrame, w: float, table: np.ndarray) -> dict[str, float]:
    from devolens.predict.population import composition_counts

    total = np.expm1(w * np.log1p(np.clip(c, 0, None)) + (1 - w) * np.log1p(np.clip(r, 0, None)))
    letters = composition_counts(total, table)
    out = {}
    for i, k in enumerate(LETTERS):
        t = truth[k].to_numpy(float)
        out[k] = float(np.abs(letters[:, i] - t).mean() / t.mean()) if t.mean() > 0 else float("nan")
    t = truth["total"].to_numpy(float)
    out["total"] = float(np.abs(letters.sum(axis=1) - t).mean() / t.mean())
    out["letters"] = float(np.nanmean([out[k] for k in LETTERS]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--renders", nargs="*", type=Path,
                    default=[RENDERS / n for n in ("dev_L2", "dev_sim", "dev_sim2")],
                    help="random-pose render folders (one input per image)")
    ap.add_argument("--framed", nargs="*", type=Path,
                    default=[RENDERS / n for n in ("dev_L2_framed", "dev_sim_framed")],
                    help="EPIC-framed render folders (one stream per movie)")
    ap.add_argument("--weights", nargs="+", type=float, default=[round(x, 2) for x in np.arange(0, 1.0001, 0.1)])
    ap.add_argument("--diameter", default="auto", help="the predictor's diameter option (default auto, as the CLI)")
    ap.add_argument("--zoo", type=Path, default=None, help="a zoo folder other than the package's")
    ap.add_argument("--keep-within", type=float, default=0.002,
                    help="keep the shipped weight when its score is within this of the best (default 0.002)")
    ap.add_argument("--json", type=Path, default=None, help="write the per-folder scores here")
    a = ap.parse_args(argv)

    from devolens.models import zoo

    folders = [(d, False) for d in a.renders] + [(d, True) for d in a.framed]
    missing = [str(d) for d, _ in folders if not (d / "frames.csv").is_file()]
    if missing:
        print(f"error: no render at {', '.join(missing)} (see --help for the commands that make them)", file=sys.stderr)
        return 2
    if a.zoo is not None:
        zoo.use_folder(a.zoo)
    diameter = a.diameter if a.diameter in ("auto", "none") else float(a.diameter)
    pred = zoo.load("population", diameter=None if diameter == "none" else diameter)
    shipped = float(pred.total_weight)
    if pred.network is None:
        print("error: this population model has no whole-frame regressor: there is no weight to choose", file=sys.stderr)
        return 2
    scores: dict[str, dict[float, dict]] = {}
    t0 = time.perf_counter()
    for folder, movie in folders:
        truth = _rows(folder)
        c, r1, r4 = _estimates(pred, folder, list(truth["file"]), movie)
        for views, r in (("one view", r1), ("four views", r4)):
            scores.setdefault(views, {})[folder.name] = {w: _score(c, r, truth, w, pred.composition)
                                                         for w in a.weights}
        print(f"{folder.name}: {len(truth)} frames ({'one movie' if movie else 'each image alone'}), "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    mean = {(v, w): float(np.mean([scores[v][f][w]["letters"] for f in scores[v]])) for v in scores for w in a.weights}
    best = min(mean, key=mean.get)
    here = ("one view", shipped)
    chosen = here if here in mean and mean[here] - mean[best] <= a.keep_within else best
    names = list(scores["one view"])
    print("| regressor | weight (calibration) | " + " | ".join(names) + " | mean of folders |")
    print("|---" * (len(names) + 3) + "|")
    for v, w in mean:
        cells = [f"{scores[v][f][w]['letters']:.3f} ({scores[v][f][w]['total']:.3f})" for f in names]
        mark = " **chosen**" if (v, w) == chosen else (" (shipped)" if (v, w) == here else "")
        print(f"| {v} | {w:g}{mark} | " + " | ".join(cells) + f" | {mean[v, w]:.4f} |")
    print(f"\ncells: mean over letters of MAE / mean count (total's MAE / mean); diameter {a.diameter}; shipped: one "
          f"view, weight {shipped:g} ({mean.get(here, float('nan')):.4f}); best: {best[0]}, weight {best[1]:g} "
          f"({mean[best]:.4f}); chosen: {chosen[0]}, weight {chosen[1]:g}")
    if a.json is not None:
        a.json.write_text(json.dumps({"shipped": shipped, "best": list(best), "chosen": list(chosen),
                                      "mean": {f"{v}|{w}": m for (v, w), m in mean.items()},
                                      "scores": {v: {f: {str(w): x for w, x in d.items()} for f, d in fs.items()}
                                                 for v, fs in scores.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
