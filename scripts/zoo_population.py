"""Fit the ``population`` zoo model: composition table + visible-count calibration.

1. Composition: per-letter median cells at each total, from the populations of the real
   training embryos' lineage tables (cut at annotation cliffs). The held-out embryo
   CD20241010_JIM767_25_L3 is left out.
2. Calibration: the ``nuclei`` model counts nuclei on renders of the training embryos
   (``cal_*`` from ``scripts/zoo_renders.sh``: random pose and zoom, optics drawn per
   frame), and a calibration maps what it sees to the true total of the frame (frames.csv
   ``total``), since nuclei hidden behind others in the projection are missed. Candidates:
   an isotonic curve of the visible count; a linear model of log(total) on the 4
   scale-free stage features (count, relative nucleus size); the same on all 8
   (:data:`devolens.predict.population.STAGE_FEATURES`: also the nucleus and embryo sizes in
   pixels, which decide how many nuclei the segmentation resolves). The one with the
   lowest leave-one-embryo-out error on these renders is kept (``--calibration`` forces one).

Usage::

    python scripts/zoo_population.py --out runs/zoo/population_tables.safetensors \
        [--zoo DIR_WITH_nuclei] [--renders runs/zoo/render/cal_*] [--every 1]
"""

from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TRAIN_TABLES = ("epic/CD20240930_JIM762_L4.csv", "epic/CD20241009_JIM767_25_L1.csv", "epic/CD20241009_JIM767_25_L5.csv",
                "epic/CD20241010_JIM767_25_L2.csv", "epic/CD20241107_JIM767_25_L1.csv", "acetree/wormguides_nuclei.zip")


def composition(data: Path) -> np.ndarray:
    from devolens.io.tables import read_table
    from devolens.lineage.cliffs import clean_table
    from devolens.lineage.populations import populations
    from devolens.predict.population import fit_composition

    pops = []
    for rel in TRAIN_TABLES:
        df, _ = clean_table(read_table(data / rel))
        pops.append(populations(df))
    return fit_composition(pops, max_total=700)


def calibration(zoo_dir: Path | None, renders: list[Path], every: int, method: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray | None, pd.DataFrame, dict]:
    """Fit visible count -> total on training renders; keep the best of three calibrations.

    Candidates, compared by leave-one-embryo-out cross-validation on the training renders
    (mean |predicted - true total|): an isotonic curve of the visible count, and linear
    models of log(total) on the first 4 (scale-free) or all of :func:`stage_features`.
    """
    from sklearn.isotonic import IsotonicRegression

    from devolens.io.images import read_image
    from devolens.models import zoo
    from devolens.predict.population import calibrate_total_linear, stage_features

    if zoo_dir is not None:
        zoo.ZOO_DIR = zoo_dir
        zoo.card.cache_clear()
    nuclei = zoo.load("nuclei", batch_size=4)
    rows = []
    for r in renders:
        df = pd.read_csv(r / "frames.csv")
        df = df[~df["artifact"].notna() | (df["artifact"].astype(str) == "")].iloc[::every]
        rows += [(r, row) for _, row in df.iterrows()]
    images = (read_image(r / row["file"]) for r, row in rows)
    feats, found = [], []
    for res in nuclei.predict_iter(images):
        c = res.centroids
        feats.append(stage_features(res.count, c["area"].to_numpy(), c["x"].to_numpy(), c["y"].to_numpy()))
        found.append(res.count)
    F = np.array(feats)
    tab = pd.DataFrame({"visible": found, "total": [row["total"] for _, row in rows],
                        "embryo": [row["embryo"] for _, row in rows], "rel_size": F[:, 3]})
    y = tab["total"].to_numpy(dtype=float)

    def fit_iso(idx):
        iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(tab["visible"].to_numpy()[idx], y[idx])
        return iso

    def fit_lin(idx, k):
        coef, *_ = np.linalg.lstsq(F[idx, :k], np.log1p(y[idx]), rcond=None)
        return coef

    linear = {"linear_scale_free": 4, "linear_all": F.shape[1]}
    errs: dict[str, list] = {"isotonic_visible": [], **{name: [] for name in linear}}
    for emb in tab["embryo"].unique():
        test = (tab["embryo"] == emb).to_numpy()
        train = ~test
        errs["isotonic_visible"] += list(np.abs(fit_iso(train).predict(tab["visible"].to_numpy()[test]) - y[test]))
        for name, k in linear.items():
            errs[name] += list(np.abs(calibrate_total_linear(F[test], fit_lin(train, k)) - y[test]))
    cv = {f"{name}_mae": float(np.mean(e)) for name, e in errs.items()}
    cv.update({"frames": int(len(tab)), "embryos": int(tab["embryo"].nunique())})
    iso = fit_iso(np.ones(len(tab), bool))
    xs = np.unique(np.concatenate([[0.0], tab["visible"].to_numpy(dtype=float)]))
    ys = np.maximum.accumulate(iso.predict(xs))
    chosen = {"isotonic": "isotonic_visible", "linear": "linear_scale_free", "linear_all": "linear_all"}.get(
        method, min(errs, key=lambda name: cv[f"{name}_mae"]))
    coef = fit_lin(np.ones(len(tab), bool), linear[chosen]) if chosen in linear else None
    cv["chosen"] = chosen
    return xs, ys, coef, tab, cv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--zoo", type=Path, default=None, help="folder holding the nuclei model (default: package zoo)")
    ap.add_argument("--renders", type=Path, nargs="*", default=None)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--calibration", choices=("auto", "isotonic", "linear", "linear_all"), default="auto",
                    help="auto: whichever has the lower leave-one-embryo-out error on the training renders")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("DEVOLENS_DATA", ROOT.parent / "shared" / "data")))
    a = ap.parse_args()
    import torch
    from safetensors.numpy import save_file

    torch.set_num_threads(2)
    renders = a.renders or [Path(p) for p in sorted(glob.glob(str(ROOT / "runs/zoo/render/cal_*")))]
    if not renders:
        raise SystemExit("no calibration renders: run `bash scripts/zoo_renders.sh` first (or give --renders)")
    comp = composition(a.data)
    xs, ys, coef, tab, cv = calibration(a.zoo, renders, a.every, a.calibration)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"composition": comp.astype(np.float32), "knots_x": xs.astype(np.float64), "knots_y": ys.astype(np.float64)}
    if coef is not None:
        arrays["coef"] = np.asarray(coef, dtype=np.float64)
    save_file(arrays, str(a.out))
    tab.to_csv(a.out.with_suffix(".calibration.csv"), index=False)
    import json

    a.out.with_suffix(".cv.json").write_text(json.dumps(cv, indent=2))
    print(f"composition {comp.shape}, calibration on {len(tab)} frames -> {a.out}")
    print("leave-one-embryo-out total MAE on training renders:", json.dumps(cv))


if __name__ == "__main__":
    main()
