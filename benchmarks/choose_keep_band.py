"""Choose the keep band of the nuclei model's ``diameter="auto"`` on development renders.

``diameter="auto"`` estimates an image's magnification (the size model of the card's ``input.diameter.auto``); an
estimate inside the keep band ``input.diameter.auto.keep`` leaves the image as it is, any other is resized into the
band (``devolens.predict.sizing._target``). The band's lower edge decides how binned or low-magnification frames are
read: the size model reads crowded frames high (a real frame binned 2x2 read 0.58x), so a band reaching down to the
network's lowest training zoom (0.55x) leaves many of them unresized.

This script scores candidate lower edges on renders that the card does NOT report (the held-out renders val_L3 /
val_sim / val_L3_framed_* are the card's): by default a training embryo rendered anew (new poses and optics) and a
freshly simulated embryo, at random pose (one estimate per image, as `devolens segment` of a single image), and the
training embryo framed like an EPIC movie (one estimate per movie, as `devolens segment` of a movie), each resized
by several zoom factors (image area-averaged, labels nearest). Frames of at most 200 cells. F1 at IoU 0.5
(one-to-one) and the count error (found - visible true nuclei) per frame.

Renders (``devolens render``)::

    devolens render $DEVOLENS_DATA/epic/CD20241010_JIM767_25_L2.csv --out runs/zoo/render/dev_L2 --every 2 \\
        --pose random --vary frame --grey --seed 21
    devolens render --simulate 1 --out runs/zoo/render/dev_sim --every 2 --pose random --vary frame --grey --seed 2100
    devolens render $DEVOLENS_DATA/epic/CD20241010_JIM767_25_L2.csv --out runs/zoo/render/dev_L2_framed --every 6 \\
        --grey --seed 2201

Usage::

    python benchmarks/choose_keep_band.py [--renders DIR ...] [--framed DIR ...] [--zooms 0.5 0.6 0.75 1 2]
        [--lows 0.55 0.65 0.7 0.75 0.8] [--precision int8] [--zoo DIR] [--json FILE]

Each frame is estimated once per zoom; candidates that bring it to the same magnification share one segmentation.
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


def _zoomed(image: np.ndarray, zoom: float, labels: bool = False) -> np.ndarray:
    if zoom == 1.0:
        return image
    import cv2

    h, w = image.shape[:2]
    size = (max(1, round(w * zoom)), max(1, round(h * zoom)))
    interp = cv2.INTER_NEAREST if labels else (cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR)
    return cv2.resize(image, size, interpolation=interp)


def _rows(folder: Path, max_total: int = 200) -> list[tuple[Path, Path]]:
    df = pd.read_csv(folder / "frames.csv")
    df = df[~df["artifact"].notna() | (df["artifact"].astype(str) == "")]
    df = df[df["total"] <= max_total]
    return [(folder / f, folder / "labels" / f"{Path(f).stem}_labels.tif") for f in df["file"]]


def _score(acc: dict, key, labels: np.ndarray, truth: np.ndarray) -> None:
    from devolens.train.metrics import match_instances

    m = match_instances(labels, truth)
    a = acc.setdefault(key, {"tp": 0, "fp": 0, "fn": 0, "found": [], "true": []})
    for k in ("tp", "fp", "fn"):
        a[k] += m[k]
    a["found"].append(int(labels.max() and len(np.unique(labels)) - 1))
    a["true"].append(int(len(np.unique(truth)) - 1))


def _summary(a: dict) -> tuple[float, float]:
    from devolens.train.metrics import count_error, prf

    return prf(a["tp"], a["fp"], a["fn"])["f1"], count_error(a["found"], a["true"])["mae"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--renders", type=Path, nargs="*", default=[RENDERS / "dev_L2", RENDERS / "dev_sim"],
                    help="random-pose render folders (one estimate per image)")
    ap.add_argument("--framed", type=Path, nargs="*", default=[RENDERS / "dev_L2_framed"],
                    help="render folders framed like EPIC movies (one estimate per movie)")
    ap.add_argument("--zooms", type=float, nargs="+", default=[0.5, 0.6, 0.75, 1.0, 2.0])
    ap.add_argument("--lows", type=float, nargs="+", default=[0.55, 0.65, 0.7, 0.75, 0.8],
                    help="candidate lower edges of the keep band (its upper edge stays the card's)")
    ap.add_argument("--precision", default="int8", choices=("auto", "int8", "bf16", "fp32"))
    ap.add_argument("--zoo", type=Path, default=None, help="folder of model folders (default: the package zoo)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="at most this many frames per folder (quick checks)")
    ap.add_argument("--json", type=Path, default=None, help="write the table as JSON here")
    a = ap.parse_args()
    missing = [d for d in [*a.renders, *a.framed] if not (d / "frames.csv").is_file()]
    if missing:
        sys.exit(f"renders missing: {', '.join(map(str, missing))} (render them first: see --help)")
    import tifffile
    import torch

    from devolens.io.images import read_image
    from devolens.models import zoo
    from devolens.predict.sizing import _target, gather

    torch.set_num_threads(a.threads)
    if a.zoo is not None:
        zoo.use_folder(a.zoo)
    pred = zoo.load("nuclei", precision=a.precision, diameter="auto", batch_size=4)
    hi = pred.auto_keep[1]
    bands = {lo: (lo, hi) for lo in a.lows}
    m0 = pred.size_model.m0
    shipped = pred.auto_keep
    acc: dict = {}
    t0 = time.perf_counter()
    for zoom in a.zooms:
        for folder in a.renders:
            rows = _rows(folder)
            if a.limit:
                rows = rows[:: max(1, len(rows) // a.limit)][: a.limit]
            for image_path, label_path in rows:
                img = _zoomed(read_image(image_path), zoom)
                truth = _zoomed(tifffile.imread(label_path), zoom, labels=True)
                pred.auto_keep = shipped
                est = pred.estimate_diameter([img])
                groups: dict = {}  # target magnification -> the candidates bringing the image there
                for lo, band in bands.items():
                    target = _target(est.magnification, band, m0) if est.trusted else est.magnification
                    groups.setdefault(round(target, 6), []).append(lo)
                for los in groups.values():
                    pred.auto_keep = bands[los[0]]
                    labels = pred.predict(img).labels
                    for lo in los:
                        _score(acc, ("random", zoom, lo), labels, truth)
        for folder in a.framed:  # one stream per movie: the estimate from its first frames with the most nuclei
            rows = _rows(folder)
            pred.auto_keep = shipped
            _, chosen = gather(pred, (_zoomed(read_image(p), zoom) for p, _ in rows))
            est = pred.estimate_diameter(chosen)
            groups = {}
            for lo, band in bands.items():
                target = _target(est.magnification, band, m0) if est.trusted else est.magnification
                groups.setdefault(round(target, 6), []).append(lo)
            for los in groups.values():
                pred.auto_keep = bands[los[0]]
                results = pred.predict_iter(_zoomed(read_image(p), zoom) for p, _ in rows)
                for (_, label_path), res in zip(rows, results):
                    truth = _zoomed(tifffile.imread(label_path), zoom, labels=True)
                    for lo in los:
                        _score(acc, ("framed", zoom, lo), res.labels, truth)
        print(f"zoom {zoom}: done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    out = {}
    cols = [f"{z:g}x" for z in a.zooms]
    kinds = [k for k in ("random", "framed") if any(key[0] == k for key in acc)]
    header = " | ".join(f"{k} {c}" for k in kinds for c in cols)
    print(f"| band from | {header} |")
    print("|---" * (1 + len(kinds) * len(cols)) + "|")
    for lo in a.lows:
        cells = []
        for kind in kinds:
            for zoom in a.zooms:
                f1, mae = _summary(acc[(kind, zoom, lo)])
                out.setdefault(f"{lo:g}", {})[f"{kind} {zoom:g}x"] = {"f1": round(f1, 4), "count_mae": round(mae, 2)}
                cells.append(f"{f1:.3f} / {mae:.1f}")
        mark = " (shipped)" if abs(lo - shipped[0]) < 1e-9 else ""
        print(f"| {lo:g}{mark} | " + " | ".join(cells) + " |")
    frames = {k: len(acc[(k, a.zooms[0], a.lows[0])]["true"]) for k in kinds}
    print(f"\nF1 / count MAE; frames per zoom: {frames}; renders {[d.name for d in a.renders]}, framed "
          f"{[d.name for d in a.framed]}; precision {pred.precision}; upper edge {hi:g}, m0 {m0:g}; "
          f"{time.perf_counter() - t0:.0f} s")
    if a.json:
        a.json.write_text(json.dumps({"table": out, "frames": frames, "precision": pred.precision}, indent=1))


if __name__ == "__main__":
    main()
