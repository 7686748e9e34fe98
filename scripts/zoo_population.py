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

3. Optionally (``--total-run``), a whole-frame regressor of the total (``recipes/population_total.yaml``)
   is stored beside the tables and combined with the calibration in log space; the weight is the
   one with the lowest error on that run's validation embryos (never the held-out ones).

Usage::

    python scripts/zoo_population.py --gather runs/zoo/data/pop_total     # regressor training folder
    devolens train recipes/population_total.yaml --data runs/zoo/data/pop_total --out runs/zoo/pop_total
    python scripts/zoo_population.py --out runs/zoo/population_tables.safetensors \
        [--zoo DIR_WITH_nuclei] [--renders runs/zoo/render/cal_*] [--every 1] [--total-run runs/zoo/pop_total]
    # a new nuclei model, the same total regressor: refit the calibration only
    python scripts/zoo_population.py --out runs/zoo/population_tables.safetensors --zoo DIR_WITH_nuclei \
        --total-from-zoo src/devolens/models/zoo/population

``--total-from-zoo`` keeps the regressor's weight and validation figures as measured when it was embedded (not
chosen again with the new calibration); the card's ``total_regressor.measured`` says so, and is written where the
card has none. ``--total-run`` chooses the weight again and writes ``measured`` for it.
"""

from __future__ import annotations

import argparse
import glob
import json
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


def population_nuclei(zoo_dir: Path | None):
    """The nuclei predictor as ``devolens population`` runs it: the population card's
    ``nuclei_precision``, ``nuclei_postprocess`` and ``nuclei_flatten`` over the nuclei card (the calibration must be
    fitted on the counts the shipped model will see). The population card is ``zoo_dir``'s when it
    has one, else the package's; the nuclei model is ``zoo_dir``'s."""
    from devolens.models import zoo

    pop = zoo.card("population")  # the package's (read before ZOO_DIR moves)
    if zoo_dir is not None:
        if (zoo_dir / "population" / "card.json").is_file():
            pop = json.loads((zoo_dir / "population" / "card.json").read_text())
        zoo.use_folder(zoo_dir)
    # frames prepared as `devolens population` prepares them: the population card's nuclei_flatten (0: no background
    # flattening, whatever the nuclei card says; PopulationPredictor.from_zoo)
    return zoo.load(pop.get("nuclei_model", "nuclei"), batch_size=4, precision=pop.get("nuclei_precision", "auto"),
                    postprocess=pop.get("nuclei_postprocess") or None, flatten=float(pop.get("nuclei_flatten", 0.0)))


def calibration(zoo_dir: Path | None, renders: list[Path], every: int, method: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray | None, pd.DataFrame, dict]:
    """Fit visible count -> total on training renders; keep the best of three calibrations.

    Candidates, compared by leave-one-embryo-out cross-validation on the training renders
    (mean |predicted - true total|): an isotonic curve of the visible count, and linear
    models of log(total) on the first 4 (scale-free) or all of :func:`stage_features`.
    """
    from sklearn.isotonic import IsotonicRegression

    from devolens.io.images import read_image
    from devolens.predict.population import calibrate_total_linear, stage_features

    nuclei = population_nuclei(zoo_dir)
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


#: the embryos the zoo's figures are measured on (frames.csv ``embryo``): CD20241010_JIM767_25_L3 as its renders name
#: it, and the embryo simulated with seed 999 (``devolens render --simulate 1 --seed 999``)
HELD_OUT_EMBRYOS = ("20241010_JIM767_25_L3", "CD20241010_JIM767_25_L3", "sim725289502")


def gather(out: Path, extra: list[str] = (), dirs: list[Path] | None = None) -> None:
    """One training folder (symlinked frames + frames.csv) from the tr2_* and cal_* renders, plus the
    render folders matching the ``extra`` patterns (e.g. ``trf_*``, see benchmarks/RESULTS.md); ``dirs``: these
    render folders instead (``--gather-from``, e.g. scripts/gpu_population_total.sh's renders). Refused, before
    anything is written: a folder that is no render, renders of a held-out embryo, an ``out`` that is not empty."""
    if dirs is not None and extra:
        raise SystemExit("--gather-extra adds to the default renders: give its folders to --gather-from instead")
    if dirs is None:
        dirs = sorted(glob.glob(str(ROOT / "runs/zoo/render/tr2_*"))) + sorted(glob.glob(str(ROOT / "runs/zoo/render/cal_*")))
        for pattern in extra:
            dirs += sorted(glob.glob(str(ROOT / "runs/zoo/render" / pattern)))
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty: gather into a new folder (its old links would stay beside the new rows)")
    tables = []
    for d in map(Path, dirs):
        if not (d / "frames.csv").is_file():
            raise SystemExit(f"{d}: no frames.csv (not a render folder of `devolens render`)")
        df = pd.read_csv(d / "frames.csv", keep_default_na=False)
        held = sorted(set(df["embryo"].astype(str)) & set(HELD_OUT_EMBRYOS)) if "embryo" in df.columns else []
        if held:
            raise SystemExit(f"{d}: renders of the held-out embryo {held[0]}: never gathered for training")
        tables.append((d, df))
    out.mkdir(parents=True, exist_ok=True)
    (out / "frames").mkdir(exist_ok=True)
    rows = []
    for d, df in tables:
        for _, r in df[df["artifact"] == ""].iterrows():
            name = f"{d.name}__{Path(r['file']).name}"
            dst = out / "frames" / name
            if not dst.exists():
                os.symlink(os.path.abspath(d / r["file"]), dst)
            rows.append({**r.to_dict(), "file": f"frames/{name}"})
    pd.DataFrame(rows).to_csv(out / "frames.csv", index=False)
    print(f"{len(rows)} frames of {pd.DataFrame(rows)['embryo'].nunique()} embryos -> {out}")


def regressor_parts(run: Path) -> tuple[dict, dict]:
    """A trained total regressor run as the tables file stores it: fp16 ``total_regressor.*`` arrays
    and the card's ``total_regressor`` spec (without the weight, chosen by :func:`total_regressor`). The weights are
    the run's ``best.safetensors``, or ``best16.safetensors`` (scripts/gpu_population_total.sh copies fp16 ones)."""
    from safetensors.torch import load_file

    if not (run / "best.json").is_file():
        raise SystemExit(f"{run}: no best.json (not a training run's folder)")
    best = json.loads((run / "best.json").read_text())
    recipe = best["recipe"]
    if best["model"].get("kind") != "regressor":
        raise SystemExit(f"{run}: a {best['model'].get('kind')!r} network, not a count regressor")
    if recipe["task"] != "population" or list(recipe["data"]["counts"]) != ["total"] \
            or recipe["data"].get("normalize") != "percentile":
        raise SystemExit(f"{run}: the total regressor must regress [total] on percentile-normalised frames")
    weights = next((run / n for n in ("best.safetensors", "best16.safetensors") if (run / n).is_file()), None)
    if weights is None:
        raise SystemExit(f"{run}: no best.safetensors or best16.safetensors")
    state = load_file(str(weights))
    tensors = {f"total_regressor.{k}": v.float().numpy().astype(np.float16) for k, v in state.items()}
    inside = run.is_absolute() and run.is_relative_to(ROOT)
    spec = {"config": best["model"], "input_size": list(recipe["data"]["size"]), "percentiles": [1.0, 99.8],
            "run": str(run.relative_to(ROOT) if inside else run), "epoch": best.get("epoch")}
    return tensors, spec


def total_regressor(run: Path, data: Path, zoo_dir: Path | None, arrays: dict) -> tuple[dict, dict]:
    """Embed a trained total regressor and choose its weight on the run's validation embryos."""
    from devolens.io.images import read_image
    from devolens.predict.population import PopulationPredictor

    tensors, spec = regressor_parts(run)
    split = pd.read_csv(run / "split.csv")
    val = split[split["side"] == "val"]
    truth = pd.read_csv(data / "frames.csv").set_index("file").loc[val["sample"], "total"].to_numpy(float)
    nuclei = population_nuclei(zoo_dir)
    from devolens.predict.population import _total_regressor

    calibrated = PopulationPredictor("composition", nuclei=nuclei, composition=arrays["composition"],
                                     coef=arrays.get("coef"), knots_x=arrays["knots_x"], knots_y=arrays["knots_y"])
    regressor = PopulationPredictor("regressor", network=_total_regressor({**arrays, **tensors}, spec, run),
                                    outputs=["total"], input_size=spec["input_size"])
    calib, regressed = [], []
    for f in val["sample"]:
        img = read_image(data / f)
        calib.append(next(calibrated.predict_iter([img]))["total"])
        regressed.append(float(regressor._regress(regressor._regressor_input(img)[None])[0, 0]))
    calib, regressed = np.array(calib), np.array(regressed)
    scores = {}
    for w in (0.0, 0.25, 0.5, 0.75, 1.0):
        est = np.expm1(w * np.log1p(calib) + (1 - w) * np.log1p(regressed))
        scores[w] = float(np.mean(np.abs(est - truth)))
    w_best = min(scores, key=scores.get)
    spec["weight_calibration"] = w_best
    spec["validation_total_mae"] = {f"w={w}": round(v, 2) for w, v in scores.items()}
    spec["validation"] = f"{len(val)} frames of {val['group'].nunique()} validation embryos of the run"
    print("total MAE on the run's validation frames by weight of the calibration:", json.dumps(spec["validation_total_mae"]))
    return tensors, spec


def measured_with(spec: dict, cv: dict) -> str:
    """The total regressor's ``measured`` (its provenance) when its weight is chosen (``--total-run``): with the
    calibration fitted in the same call."""
    return (f"validation_total_mae and weight_calibration were measured when this regressor (run {spec['run']}) was "
            f"embedded by scripts/zoo_population.py --total-run, with the calibration fitted in the same call "
            f"({cv['chosen']}, {cv['frames']} frames of {cv['embryos']} training embryos); scripts/zoo_population.py "
            "--total-from-zoo copies them unchanged at a later refit of the calibration: the weight is not chosen "
            "again then")


def kept_total_regressor(folder: Path) -> tuple[dict, dict]:
    """``--total-from-zoo``: the total regressor of the population model in ``folder``, its fp16
    ``total_regressor.*`` arrays and the card's ``total_regressor`` spec, weight and validation figures unchanged
    (not chosen again with the new calibration). The spec's ``measured`` (its provenance) is kept as the card has it;
    a card without one gets one saying so. Prints what was kept."""
    from safetensors.numpy import load_file

    card = json.loads((folder / "card.json").read_text())
    if "total_regressor" not in card:
        raise SystemExit(f"{folder / 'card.json'} has no total_regressor to keep: give --total-run")
    spec = dict(card["total_regressor"])
    tensors = {k: v for k, v in load_file(str(folder / "weights.safetensors")).items() if k.startswith("total_regressor.")}
    if not spec.get("measured"):
        spec["measured"] = (f"validation_total_mae and weight_calibration were measured when this regressor (run "
                            f"{spec.get('run')}) was embedded, with the calibration of that time; "
                            "scripts/zoo_population.py --total-from-zoo copied them unchanged at a later refit of the "
                            f"calibration: the weight {spec.get('weight_calibration')} was not chosen again with it")
    how = ("last chosen by benchmarks/choose_total_weight.py on development renders (total_regressor.chosen: run it "
           "again with the new calibration)" if spec.get("chosen") else "not chosen again with this calibration")
    print(f"total regressor kept from {folder} (run {spec.get('run')}): weight_calibration "
          f"{spec.get('weight_calibration')} and validation_total_mae copied unchanged, {how} "
          "(total_regressor.measured says so; --total-run RUN chooses the weight again)")
    return tensors, spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--gather", type=Path, default=None, help="write the total regressor's training folder here and stop")
    ap.add_argument("--gather-extra", nargs="*", default=[], metavar="PATTERN",
                    help="with --gather: also these runs/zoo/render folders (glob patterns, e.g. 'trf_*')")
    ap.add_argument("--gather-from", type=Path, nargs="+", default=None, metavar="DIR",
                    help="with --gather: these render folders instead of runs/zoo/render's tr2_* and cal_*")
    ap.add_argument("--total-run", type=Path, default=None, help="a trained recipes/population_total.yaml run to embed")
    ap.add_argument("--total-from-zoo", type=Path, default=None, metavar="POPULATION_DIR",
                    help="keep the total regressor (weights, spec and weight) of this population model folder, "
                         "e.g. when only the calibration is refitted for a new nuclei model (the weight is not "
                         "chosen again: the spec's 'measured' says so)")
    ap.add_argument("--total-data", type=Path, default=ROOT / "runs/zoo/data/pop_total",
                    help="the --data folder that run was trained on")
    ap.add_argument("--zoo", type=Path, default=None, help="folder holding the nuclei model (default: package zoo)")
    ap.add_argument("--renders", type=Path, nargs="*", default=None)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--calibration", choices=("auto", "isotonic", "linear", "linear_all"), default="auto",
                    help="auto: whichever has the lower leave-one-embryo-out error on the training renders")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("DEVOLENS_DATA", ROOT.parent / "shared" / "data")))
    a = ap.parse_args()
    if a.gather is not None:
        gather(a.gather, a.gather_extra, a.gather_from)
        return
    if a.out is None:
        raise SystemExit("--out is required (or --gather DIR)")
    import torch

    from devolens.io.tensors import save_tensors

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
    if a.total_run is not None and a.total_from_zoo is not None:
        raise SystemExit("give --total-run or --total-from-zoo, not both")
    if a.total_run is not None:
        tensors, spec = total_regressor(a.total_run, a.total_data, a.zoo, arrays)
        spec["measured"] = measured_with(spec, cv)
        arrays.update(tensors)
        a.out.with_suffix(".total.json").write_text(json.dumps(spec, indent=2))
    elif a.total_from_zoo is not None:
        tensors, spec = kept_total_regressor(a.total_from_zoo)
        arrays.update(tensors)
        a.out.with_suffix(".total.json").write_text(json.dumps(spec, indent=2))
    save_tensors(arrays, a.out)  # readable by all (safetensors' save_file alone: 0600)
    tab.to_csv(a.out.with_suffix(".calibration.csv"), index=False)

    a.out.with_suffix(".cv.json").write_text(json.dumps(cv, indent=2))
    print(f"composition {comp.shape}, calibration on {len(tab)} frames -> {a.out}")
    print("leave-one-embryo-out total MAE on training renders:", json.dumps(cv))


if __name__ == "__main__":
    main()
