"""Measure the zoo's image models on renders of held-out embryos (never used in training).

Usage::

    python benchmarks/eval_zoo.py nuclei     [--zoo DIR] [--val runs/zoo/render/val_L3 runs/zoo/render/val_sim]
    python benchmarks/eval_zoo.py membrane   [--zoo DIR] [--val runs/zoo/render/mval_L3]
    python benchmarks/eval_zoo.py population [--zoo DIR] [--val runs/zoo/render/val_L3 runs/zoo/render/val_sim]

``--zoo`` is a folder of model folders (default: the package's zoo). Held-out renders are
made with ``devolens render`` by ``scripts/zoo_renders.sh`` (``runs/zoo/render/val_*``): embryo
CD20241010_JIM767_25_L3 and simulated seed 999, random pose, optics drawn per frame.
Metrics use :mod:`devolens.train.metrics` (one implementation each). Prints a markdown
section and writes the metrics as JSON (``--json``) for the model card.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LETTERS = ("A", "E", "M", "P", "C", "D", "Z")


def _data_dir() -> Path:
    env = os.environ.get("DEVOLENS_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


PRECISION = "auto"  # --precision: arithmetic of the image networks (auto, int8, bf16, fp32)
BACKEND = "torch"  # --backend: torch, or onnx (onnxruntime; the nuclei model's shipped int8 graph at int8)
ZOOM = 1.0  # --zoom: nuclei frames (and their labels) resized by this factor: another magnification
DIAMETER: float | str | None = None  # --diameter: typical nucleus diameter given to the nuclei model, or "auto"
KEEP: tuple[float, float] | None = None  # --keep: diameter auto's keep band instead of the card's (development)
TTA = 1  # --tta: test-time augmentation views of the segmentation networks (1, 2 or 4)
FLATTEN: float | None = None  # --flatten: nuclei/membrane background flattening width (working px; 0 off; None: the card's)
TOTAL_WEIGHT: float | None = None  # --total-weight: population, calibration weight in the total


def _zoomed(image: np.ndarray, labels: bool = False) -> np.ndarray:
    if ZOOM == 1.0:
        return image
    import cv2

    if image.dtype == bool:
        return _zoomed(image.astype(np.uint8), labels=True) > 0
    h, w = image.shape[:2]
    size = (max(1, round(w * ZOOM)), max(1, round(h * ZOOM)))
    interp = cv2.INTER_NEAREST if labels else (cv2.INTER_AREA if ZOOM < 1 else cv2.INTER_LINEAR)
    return cv2.resize(image, size, interpolation=interp)


def _load(name: str, zoo_dir: Path | None, **options):
    from devolens.models import zoo

    options.setdefault("precision", PRECISION)
    if BACKEND != "torch" and name in ("nuclei", "membrane"):
        options["backend"] = BACKEND
    if FLATTEN is not None and name in ("nuclei", "membrane"):
        options["flatten"] = FLATTEN
    if TTA != 1 and name in ("nuclei", "membrane"):
        options["tta"] = TTA

    if zoo_dir is not None:
        zoo.use_folder(zoo_dir)
    pred = zoo.load(name, **options)
    if KEEP is not None:
        target = pred.nuclei if name == "population" else pred
        target.auto_keep = KEEP
    return pred


@contextmanager
def _sizes_unsaid():
    """The library's size notes (:class:`devolens.errors.DiameterWarning`) ignored while a loop measures: the
    benchmark segments at many magnifications on purpose (``--zoom``, ``--diameter``), where a note per stream says
    nothing and its checks cost time; so is population's note on a late reading (each held-out frame is a call of
    its own: one note per late frame). Every other warning stays visible, and the figures are the same."""
    from devolens.errors import DevolensWarning, DiameterWarning
    from devolens.predict.population import LATE_MESSAGE

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=LATE_MESSAGE, category=DevolensWarning)
        # after it, so first: a DiameterWarning is ignored whatever its words (the size checks are then skipped)
        warnings.simplefilter("ignore", DiameterWarning)
        yield


def _segment_each(pred, images):
    """Results for ``images``: with ``diameter="auto"`` each image is its own input (its magnification
    estimated from it alone, as for a single image given to `devolens segment`), else one stream."""
    if getattr(pred, "auto", False):
        return (pred.predict(img) for img in images)
    return pred.predict_iter(images)


LIMIT: int | None = None  # --limit: frames per folder (quick checks only)
VISIBLE = 0.5  # second nuclei metric: ignore nuclei with less than this share of their footprint visible


def _hidden(dirs: list[Path]) -> dict[str, np.ndarray]:
    """Per frame file: the labels of nuclei mostly hidden behind nearer ones (objects.csv
    ``visible`` < VISIBLE), ignored in the visible-only metric (neither required nor penalised)."""
    hidden: dict[str, np.ndarray] = {}
    for vdir in dirs:
        if (vdir / "objects.csv").is_file():
            obj = pd.read_csv(vdir / "objects.csv")
            for f, g in obj[obj["visible"] < VISIBLE].groupby("file"):
                hidden[str(vdir / f)] = g["label"].to_numpy()
    return hidden


def _framed_dirs() -> list[Path]:
    """The held-out real embryo rendered like EPIC movies (default pose, one optics draw per
    movie, RGB: what a user's timelapse looks like), when rendered."""
    return sorted(d for d in (ROOT / "runs/zoo/render").glob("val_L3_framed*") if (d / "frames.csv").exists())


def _frames(val_dirs: list[Path], max_total: int | None = None, every: int = 1):
    for vdir in val_dirs:
        df = pd.read_csv(vdir / "frames.csv")
        df = df[~df["artifact"].notna() | (df["artifact"].astype(str) == "")]
        if max_total is not None:
            df = df[df["total"] <= max_total]
        for _, row in _spread(df.iloc[::every], LIMIT).iterrows():
            yield vdir, row


def _spread(df: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """At most ``limit`` rows of ``df`` (--limit), spread evenly over it, its first and last among them: a quick
    check sees every stage of a movie (a stride of ``len // limit`` was 1 for a limit over half the frames, which kept
    the first frames only)."""
    if not limit or len(df) <= limit:
        return df
    return df.iloc[np.unique(np.linspace(0, len(df) - 1, limit).round().astype(int))]


def _scores(counts, frames: int) -> dict[str, float | None]:
    """Precision, recall and F1 of pooled (tp, fp, fn) ``counts`` over ``frames`` frames; None each where no frame was
    scored (prf's 1.0 for nothing to find would read as a perfect score of an empty set: 'n/a', JSON null)."""
    from devolens.train.metrics import prf

    return prf(*counts) if frames else {"precision": None, "recall": None, "f1": None}


def _round(value: float | None, digits: int = 4) -> float | None:
    """A figure for the JSON: rounded; None (null) for none or NaN (an empty set's)."""
    return None if value is None or value != value else round(value, digits)


def _said(value: float | None, spec: str = ".3f") -> str:
    """A figure for the markdown: formatted; 'n/a' for none or NaN (an empty set's)."""
    return "n/a" if value is None or value != value else format(value, spec)


def eval_nuclei(zoo_dir: Path | None, val_dirs: list[Path], threads: int) -> tuple[dict, str]:
    import tifffile

    from devolens.io.images import read_image
    from devolens.train.metrics import count_error, match_instances, prf

    pred = _load("nuclei", zoo_dir, batch_size=4, diameter=DIAMETER)
    buckets = {"le200": [0, 0, 0], "gt200": [0, 0, 0], "le200_vis": [0, 0, 0]}
    per_embryo_vis: dict[str, list[int]] = {}
    hidden = _hidden(val_dirs)  # ignored in the second metric (see match_instances)
    per_embryo: dict[str, list[int]] = {}
    counts_p, counts_t = [], []
    n_frames = {"le200": 0, "gt200": 0}
    t0 = time.perf_counter()
    rows = [(v, r) for v, r in _frames(val_dirs, None)]
    # all frames up to 200 cells; every 3rd frame above (for information)
    rows = [(v, r) for v, r in rows if r["total"] <= 200] + [(v, r) for v, r in rows if r["total"] > 200][::3]
    images = (_zoomed(read_image(v / r["file"])) for v, r in rows)
    with _sizes_unsaid():
        for (vdir, row), res in zip(rows, _segment_each(pred, images)):
            truth = _zoomed(tifffile.imread(vdir / "labels" / f"{Path(row['file']).stem}_labels.tif"), labels=True)
            m = match_instances(res.labels, truth)
            key = "le200" if row["total"] <= 200 else "gt200"
            n_frames[key] += 1
            for i, k in enumerate(("tp", "fp", "fn")):
                buckets[key][i] += m[k]
            if key == "le200":
                e = per_embryo.setdefault(str(row["embryo"]), [0, 0, 0])
                for i, k in enumerate(("tp", "fp", "fn")):
                    e[i] += m[k]
                if hidden:
                    mv = match_instances(res.labels, truth, ignore=hidden.get(str(vdir / row["file"]), []))
                    ev = per_embryo_vis.setdefault(str(row["embryo"]), [0, 0, 0])
                    for i, k in enumerate(("tp", "fp", "fn")):
                        buckets["le200_vis"][i] += mv[k]
                        ev[i] += mv[k]
                counts_p.append(res.count)
                counts_t.append(int(len(np.unique(truth)) - 1))
    # the held-out real embryo framed like EPIC movies: the optics draw decides much of the result
    framed_dirs = _framed_dirs()
    framed: dict[str, list[int]] = {}
    framed_vis = [0, 0, 0]
    if framed_dirs and ZOOM == 1.0:
        hidden_f = _hidden(framed_dirs)
        frows = [(v, r) for v, r in _frames(framed_dirs, 200)]
        # one stream per movie (diameter auto: one estimate per movie, from its first frames)
        movies = [[(v, r) for v, r in frows if v == d] for d in framed_dirs]
        results = (res for movie in movies for res in pred.predict_iter(read_image(v / r["file"]) for v, r in movie))
        with _sizes_unsaid():
            for (vdir, row), res in zip([x for movie in movies for x in movie], results):
                truth = tifffile.imread(vdir / "labels" / f"{Path(row['file']).stem}_labels.tif")
                m = match_instances(res.labels, truth)
                mv = match_instances(res.labels, truth, ignore=hidden_f.get(str(vdir / row["file"]), []))
                acc = framed.setdefault(vdir.name, [0, 0, 0])
                for i, k in enumerate(("tp", "fp", "fn")):
                    acc[i] += m[k]
                    framed_vis[i] += mv[k]
    framed_f1 = prf(*np.sum(list(framed.values()), axis=0))["f1"] if framed else None
    secs = time.perf_counter() - t0
    le = _scores(buckets["le200"], n_frames["le200"])
    vis = _scores(buckets["le200_vis"], n_frames["le200"])
    gt = _scores(buckets["gt200"], n_frames["gt200"])
    cnt = count_error(counts_p, counts_t)
    ref_dir = _data_dir() / "reference_frames"
    ref = {}
    with _sizes_unsaid():
        for f in sorted(ref_dir.glob("epic_movie_frame*.png")) if ZOOM == 1.0 else []:
            ref[f.stem.replace("epic_movie_", "")] = pred.predict(read_image(f)).count
    vals = [ref[k] for k in sorted(ref)]
    rising = bool(len(vals) == 3 and vals[0] < vals[1] < vals[2])
    how = f"held-out renders ({', '.join(d.name for d in val_dirs)}), instance matching at IoU>0.5, one-to-one"
    metrics = {
        "instance_f1_iou50_heldout_le200": {"value": _round(le["f1"]),
                                            "how": how + f", {n_frames['le200']} frames with <=200 cells"},
        "precision_heldout_le200": {"value": _round(le["precision"]), "how": how},
        "recall_heldout_le200": {"value": _round(le["recall"]), "how": how},
        "instance_f1_iou50_heldout_gt200": {"value": _round(gt["f1"]),
                                            "how": how + f", {n_frames['gt200']} frames with >200 cells (every 3rd)"},
        "count_mae_heldout_le200": {"value": _round(cnt["mae"], 2),
                                    "how": "mean |found - visible true nuclei| per frame (<=200 cells)"},
        "count_bias_heldout_le200": {"value": _round(cnt["bias"], 2), "how": "mean (found - visible true) per frame"},
        "per_embryo_f1_le200": {k: round(prf(*v)["f1"], 4) for k, v in per_embryo.items()},
        **({} if not hidden else {
            f"instance_f1_iou50_heldout_le200_visible{int(VISIBLE * 100)}": {
                "value": _round(vis["f1"]),
                "how": how + f", <=200 cells; nuclei with less than {VISIBLE:.0%} of their footprint visible (hidden "
                       "behind nearer nuclei in the projection, objects.csv 'visible') ignored: neither required nor "
                       "penalised"},
            f"precision_heldout_le200_visible{int(VISIBLE * 100)}": {"value": _round(vis["precision"]),
                                                                     "how": "as above"},
            f"recall_heldout_le200_visible{int(VISIBLE * 100)}": {"value": _round(vis["recall"]), "how": "as above"},
            f"per_embryo_f1_le200_visible{int(VISIBLE * 100)}": {k: round(prf(*v)["f1"], 4) for k, v in per_embryo_vis.items()},
        }),
        **({} if not framed else {
            "instance_f1_iou50_heldout_epic_framing": {
                "value": round(framed_f1, 4),
                "per_movie": {k: round(prf(*v)["f1"], 4) for k, v in framed.items()},
                "visible50": round(prf(*framed_vis)["f1"], 4),
                "how": "held-out real embryo CD20241010_JIM767_25_L3 rendered like EPIC movies (val_L3_framed_s*: "
                       "default pose, one optics draw per movie, RGB), frames with <=200 cells; visible50: nuclei "
                       "less than half visible ignored. The optics draw of a movie decides much of the figure"}}),
        **({} if not ref else {"reference_counts": {
            "value": " < ".join(str(ref[k]) for k in sorted(ref)) + (" (rising)" if rising else " (NOT rising)"),
            "how": "nuclei found in the 3 real reference frames 045, 160, 300 (evaluation only)",
            "counts": ref, "rising": rising}}),
    }
    md = [
        "### nuclei (held-out renders)", "",
        f"- instance F1 @ IoU 0.5, frames with <= 200 cells: **{_said(le['f1'])}** (precision "
        f"{_said(le['precision'])}, recall {_said(le['recall'])}; {n_frames['le200']} frames) — target >= 0.90",
        f"- per held-out embryo (<= 200 cells): " + ", ".join(f"{k} {prf(*v)['f1']:.3f}" for k, v in per_embryo.items()),
        *([] if not hidden else [
            f"- same frames, nuclei less than {VISIBLE:.0%} visible ignored: F1 **{_said(vis['f1'])}** (precision "
            f"{_said(vis['precision'])}, recall {_said(vis['recall'])}); per embryo "
            + ", ".join(f"{k} {prf(*v)['f1']:.3f}" for k, v in per_embryo_vis.items())]),
        f"- frames with > 200 cells (every 3rd, {n_frames['gt200']} frames): F1 {_said(gt['f1'])}",
        f"- count error (<= 200 cells): MAE {_said(cnt['mae'], '.2f')} nuclei, bias {_said(cnt['bias'], '+.2f')}",
        *([] if not framed else [
            f"- held-out real embryo framed like EPIC movies ({len(framed)} movies, one optics draw each, <= 200 cells): "
            f"F1 {framed_f1:.3f} (per movie "
            + ", ".join(f"{k} {prf(*v)['f1']:.3f}" for k, v in framed.items())
            + f"); nuclei less than half visible ignored {prf(*framed_vis)['f1']:.3f}"]),
        (f"- real reference frames (evaluation only): " + ", ".join(f"{k}: {v}" for k, v in ref.items())
         + (" -> rising with development" if rising else " -> NOT rising")) if ref else
        "- real reference frames: not scored (absent, or another --zoom)",
        f"- wall time {secs:.0f} s on this machine",
    ]
    return metrics, "\n".join(md)


def eval_membrane(zoo_dir: Path | None, val_dirs: list[Path], threads: int) -> tuple[dict, str]:
    import tifffile

    from devolens.io.images import read_image
    from devolens.train.metrics import iou_dice, match_instances, confusion_matrix

    pred = _load("membrane", zoo_dir, batch_size=4, diameter=DIAMETER)
    tp = fp = fn = 0
    cm = np.zeros((2, 2), np.int64)
    rows = list(_frames(val_dirs))
    images = (_zoomed(read_image(v / r["file"])) for v, r in rows)
    t0 = time.perf_counter()
    with _sizes_unsaid():
        for (vdir, row), res in zip(rows, _segment_each(pred, images)):
            stem = Path(row["file"]).stem
            cells = _zoomed(tifffile.imread(vdir / "labels" / f"{stem}_labels.tif"), labels=True)
            mem = read_image(vdir / "membranes" / f"{stem}_membrane.png")
            mem = _zoomed((mem[..., 0] if mem.ndim == 3 else mem) > 0, labels=True)
            m = match_instances(res.labels, cells)
            tp, fp, fn = tp + m["tp"], fp + m["fp"], fn + m["fn"]
            cm += confusion_matrix(res.mask.astype(np.int64), mem.astype(np.int64), 2)
    secs = time.perf_counter() - t0
    s = _scores((tp, fp, fn), len(rows))
    dice = float(iou_dice(cm)["dice"][1]) if rows else None
    how = f"held-out renders ({', '.join(d.name for d in val_dirs)}, {len(rows)} frames)"
    metrics = {
        "membrane_dice_heldout": {"value": _round(dice),
                                  "how": how + ", membrane mask vs the render's (2 px) membrane lines"},
        "cell_f1_iou50_heldout": {"value": _round(s["f1"]), "how": how + ", cell instances at IoU>0.5"},
        "cell_precision_heldout": {"value": _round(s["precision"]), "how": how},
        "cell_recall_heldout": {"value": _round(s["recall"]), "how": how},
    }
    md = ["### membrane (held-out renders)", "",
          f"- membrane Dice: **{_said(dice)}**; cell instance F1 @ IoU 0.5: **{_said(s['f1'])}** "
          f"(precision {_said(s['precision'])}, recall {_said(s['recall'])}; {len(rows)} frames)",
          f"- wall time {secs:.0f} s"]
    return metrics, "\n".join(md)


def eval_population(zoo_dir: Path | None, val_dirs: list[Path], threads: int) -> tuple[dict, str]:
    from devolens.io.images import read_image
    from devolens.train.metrics import population_mae

    pred = _load("population", zoo_dir, batch_size=4, diameter=DIAMETER)
    if TOTAL_WEIGHT is not None:  # sensitivity: 1 = the nuclei-count calibration alone, 0 = the regressor alone
        pred.total_weight = TOTAL_WEIGHT

    def scores(dirs: list[Path], movies: bool = False):
        rows = list(_frames(dirs))
        with _sizes_unsaid():
            if pred.auto and not movies:  # diameter auto: each random-pose frame is its own input
                out = [next(pred.predict_iter([_zoomed(read_image(v / r["file"]))])) for v, r in rows]
            else:  # one stream per folder (auto: one estimate per movie)
                out = [o for d in dirs for o in pred.predict_iter(_zoomed(read_image(v / r["file"])) for v, r in rows if v == d)]
        p = np.array([[o[k] for k in LETTERS + ("total",)] for o in out])
        t = np.array([[r[k] for k in LETTERS + ("total",)] for _, r in rows], dtype=float)
        mae = population_mae(p, t, LETTERS + ("total",))
        means = {k: float(t[:, i].mean()) for i, k in enumerate(LETTERS + ("total",))}
        ratio = {k: (mae[k] / means[k] if means[k] > 0 else float("nan")) for k in mae}
        return rows, p, t, mae, means, ratio

    t0 = time.perf_counter()
    rows, p, t, mae, means, ratio = scores(val_dirs)
    secs = time.perf_counter() - t0
    worst = max(ratio[k] for k in LETTERS)
    framed_dirs = _framed_dirs()  # the common case of real data, outside the random zooms
    framed = scores(framed_dirs, movies=True) if framed_dirs else None
    framed_mono = framed_clock = None
    if framed is not None:  # the same movies with `devolens population --monotone` (isotonic per letter)
        from devolens.predict.postprocess import smooth_populations

        f_rows, f_p, f_t = framed[0], framed[1], framed[2]
        cols = list(LETTERS + ("total",))
        pred_df = pd.DataFrame(f_p, columns=cols)
        pred_df["movie"] = [str(v) for v, _ in f_rows]
        pred_df["time"] = [int(r["time"]) for _, r in f_rows]
        smooth = pd.concat([smooth_populations(g.sort_values("time")) for _, g in pred_df.groupby("movie", sort=False)])
        smooth = smooth.loc[pred_df.index]  # back to the row order of the truth
        mae_m = population_mae(smooth[cols].to_numpy(), f_t, LETTERS + ("total",))
        means_f = framed[4]
        framed_mono = {k: (mae_m[k] / means_f[k] if means_f[k] > 0 else float("nan")) for k in mae_m}
        if getattr(pred, "clock", None) is not None:  # `devolens population --clock`: one fit per movie
            parts = []
            for _, g in pred_df.groupby("movie", sort=False):
                g = g.sort_values("time")
                parts.append(pred.clock_fit(g, np.arange(len(g)))[0])  # frame positions in the movie
            fitted = pd.concat(parts).loc[pred_df.index]
            mae_c = population_mae(fitted[cols].to_numpy(), f_t, LETTERS + ("total",))
            framed_clock = {k: (mae_c[k] / means_f[k] if means_f[k] > 0 else float("nan")) for k in mae_c}
    how = f"held-out renders ({', '.join(d.name for d in val_dirs)}, {len(rows)} frames, all stages)"
    # where the error comes from: the same composition table fed the TRUE total (the floor of
    # the letters-from-total design), and the frames up to 200 cells
    extra: dict[str, dict] = {}
    if getattr(pred, "composition", None) is not None:
        from devolens.predict.population import composition_counts

        oracle = composition_counts(t[:, -1], pred.composition)
        mae_o = population_mae(np.column_stack([oracle, t[:, -1]]), t, LETTERS + ("total",))
        extra["oracle_total_mae_over_mean"] = {k: round(mae_o[k] / means[k], 4) for k in LETTERS if means[k] > 0}
    small = t[:, -1] <= 200
    # the subset's own frame count (not the all-stage `how`'s)
    how_le200 = f"held-out renders ({', '.join(d.name for d in val_dirs)}, {int(small.sum())} frames with <= 200 cells)"
    if small.any():
        mae_s = population_mae(p[small], t[small], LETTERS + ("total",))
        means_s = {k: float(t[small, i].mean()) for i, k in enumerate(LETTERS + ("total",))}
        extra["le200_mae_over_mean"] = {k: round(mae_s[k] / means_s[k], 4) for k in mae_s if means_s[k] > 0}
    metrics = {
        "mae_over_mean_max_heldout": {"value": round(worst, 4), "how": how + ": max over letters of MAE / mean count (target <= 0.10)"},
        "total_mae_heldout": {"value": round(mae["total"], 2), "how": how},
        "mae_per_letter_heldout": {k: round(v, 3) for k, v in mae.items()},
        "mean_per_letter_heldout": {k: round(v, 2) for k, v in means.items()},
        "mae_over_mean_per_letter_heldout": {k: round(v, 4) for k, v in ratio.items()},
        **({} if "oracle_total_mae_over_mean" not in extra else {"oracle_total_mae_over_mean_heldout": {
            "value": extra["oracle_total_mae_over_mean"],
            "how": "the composition table given the TRUE total of each frame: the floor of letters-from-total"}}),
        **({} if "le200_mae_over_mean" not in extra else {"le200_mae_over_mean_heldout": {
            "value": extra["le200_mae_over_mean"], "how": how_le200}}),
        **({} if framed is None else {"mae_over_mean_heldout_epic_framing": {
            "value": {k: round(v, 4) for k, v in framed[5].items()},
            "how": f"held-out real embryo CD20241010_JIM767_25_L3 rendered like EPIC movies ({len(framed_dirs)} movies "
                   f"val_L3_framed_s*: default pose, one optics draw each, RGB; {len(framed[0])} frames): MAE / mean "
                   "count per letter and total"}}),
        **({} if framed_mono is None else {"mae_over_mean_heldout_epic_framing_monotone": {
            "value": {k: round(v, 4) for k, v in framed_mono.items()},
            "how": "the same movies, predictions smoothed over time as `devolens population --monotone` does"}}),
        **({} if framed_clock is None else {"mae_over_mean_heldout_epic_framing_clock": {
            "value": {k: round(v, 4) for k, v in framed_clock.items()},
            "how": "the same movies fitted to the developmental clock as `devolens population --clock` does (each "
                   "movie's frames in time order, positions 0, 1, 2...; the movies show every 6th time point)"}}),
    }
    md = ["### population (held-out renders)", "",
          "| letter | MAE (cells) | mean count | MAE / mean | target <= 0.10 |", "|---|---|---|---|---|"]
    for k in LETTERS + ("total",):
        ok = "yes" if ratio[k] <= 0.10 else "**no**"
        md.append(f"| {k} | {mae[k]:.2f} | {means[k]:.1f} | {ratio[k]:.3f} | {ok if k != 'total' else '-'} |")
    md += ["", f"{len(rows)} frames, wall time {secs:.0f} s"]
    for key, text in (("le200_mae_over_mean", "frames with <= 200 cells only"),
                      ("oracle_total_mae_over_mean", "the composition table given the TRUE total (floor of this design)")):
        if key in extra:
            md.append(f"- MAE / mean, {text}: " + ", ".join(f"{k} {v:.3f}" for k, v in extra[key].items()))
    if framed is not None:
        md.append(f"- MAE / mean, held-out real embryo framed like an EPIC movie ({len(framed_dirs)} movies, one optics "
                  f"draw each, {len(framed[0])} frames): " + ", ".join(f"{k} {v:.3f}" for k, v in framed[5].items()))
        md.append("- the same with `--monotone` (isotonic over each movie's frames): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in framed_mono.items()))
        if framed_clock is not None:
            md.append("- the same with `--clock` (the developmental clock fitted to each movie): "
                      + ", ".join(f"{k} {v:.3f}" for k, v in framed_clock.items()))
    return metrics, "\n".join(md)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=("nuclei", "membrane", "population"))
    ap.add_argument("--zoo", type=Path, default=None, help="folder of model folders (default: the package zoo)")
    ap.add_argument("--val", type=Path, nargs="+", default=None, help="held-out render folders")
    ap.add_argument("--json", type=Path, default=None, help="write the metrics here (for the card)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="at most this many frames per folder, spread evenly over it (quick checks)")
    ap.add_argument("--precision", default="auto", choices=("auto", "int8", "bf16", "fp32"),
                    help="network arithmetic (auto: what `devolens segment` uses)")
    ap.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                    help="onnx: onnxruntime (the nuclei model's shipped int8 graph where --precision is int8 or auto)")
    ap.add_argument("--zoom", type=float, default=1.0,
                    help="resize the held-out frames (and labels) by this factor (another magnification)")
    ap.add_argument("--diameter", type=lambda v: v if v == "auto" else float(v), default=None,
                    help="typical nucleus (membrane: cell) diameter in pixels given to the model (`--diameter`), or "
                         "'auto' (estimated per held-out frame, per EPIC-framed movie)")
    ap.add_argument("--keep", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                    help="with --diameter auto: the magnifications left as they are instead of the card's choice "
                         "(0 0: every image resized to the size model's m0)")
    ap.add_argument("--total-weight", type=float, default=None,
                    help="population: weight of the calibration in the total (1: calibration alone, 0: regressor "
                         "alone; default: the card's)")
    ap.add_argument("--tta", type=int, default=1, choices=(1, 2, 4),
                    help="nuclei/membrane: test-time augmentation views (`devolens segment --tta`)")
    ap.add_argument("--flatten", type=float, default=None,
                    help="nuclei/membrane: background flattening width in working pixels, 0 = off (`devolens segment "
                         "--no-flatten`); default: the card's")
    a = ap.parse_args()
    global BACKEND, LIMIT, PRECISION, ZOOM, DIAMETER, TTA, TOTAL_WEIGHT, KEEP, FLATTEN
    LIMIT, PRECISION, ZOOM, DIAMETER, TTA, FLATTEN = a.limit, a.precision, a.zoom, a.diameter, a.tta, a.flatten
    BACKEND = a.backend
    KEEP = None if a.keep is None else (a.keep[0], a.keep[1])
    TOTAL_WEIGHT = a.total_weight
    import torch

    torch.set_num_threads(a.threads)
    default_val = {"nuclei": ["val_L3", "val_sim"], "membrane": ["mval_L3"], "population": ["val_L3", "val_sim"]}
    val = a.val or [ROOT / "runs/zoo/render" / v for v in default_val[a.model]]
    missing = [v for v in val if not (v / "frames.csv").exists()]
    if missing:
        sys.exit(f"held-out renders missing: {', '.join(map(str, missing))} (render them first)")
    fn = {"nuclei": eval_nuclei, "membrane": eval_membrane, "population": eval_population}[a.model]
    metrics, md = fn(a.zoo, val, a.threads)
    print(md)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
