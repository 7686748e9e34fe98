"""Why the nuclei model misses what it misses: each true nucleus and each found object classified.

For renders (frames up to 200 cells) of folders written by ``devolens render`` (with
``objects.csv``: the share of each nucleus visible in the projection), every true nucleus is

- ``found``: an object overlaps it at IoU > 0.5 (a true positive of the F1);
- ``merged``: the object covering most of it also covers other nuclei (> 30 % of its area);
- ``split``: two or more objects each cover > 20 % of it, or the main one covers < half of it;
- ``missed``: objects cover < 20 % of it;
- ``loose``: one object covers most of it but their IoU stays <= 0.5 (boundary error),

and every object that matches no nucleus is ``background`` (< 30 % of it on nuclei), ``loose``
(best IoU 0.3-0.5) or ``fragment`` (a piece of a nucleus found or split elsewhere). Counts are
given for all nuclei and for those at least half visible (the second F1 of the card).

Usage (development renders, never the held-out ones)::

    python scripts/zoo_nuclei_errors.py runs/zoo/render/calib_L2 runs/zoo/render/calib_sim [--zoo DIR] [--precision bf16]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def classify(pred: np.ndarray, truth: np.ndarray, visible: dict) -> tuple[dict, dict, dict]:
    """(all nuclei, nuclei at least half visible, found objects) class counts of one frame."""
    ng, npd = int(truth.max()), int(pred.max())
    inter = np.zeros((ng + 1, npd + 1), np.int64)
    np.add.at(inter, (truth.ravel().astype(np.int64), pred.ravel().astype(np.int64)), 1)
    ga, pa = inter.sum(1), inter.sum(0)
    iou = inter / np.maximum(ga[:, None] + pa[None, :] - inter, 1)
    iou[0, :] = 0
    iou[:, 0] = 0
    every, vis, objs = {}, {}, {}
    for g in range(1, ng + 1):
        if ga[g] == 0:
            continue
        if iou[g].max() > 0.5:
            k = "found"
        elif inter[g, 1:].sum() < 0.2 * ga[g]:
            k = "missed"
        else:
            p = int(inter[g, 1:].argmax()) + 1
            others = inter[1:, p].sum() - inter[g, p]
            if others > 0.3 * pa[p]:
                k = "merged"
            elif (inter[g, 1:] > 0.2 * ga[g]).sum() >= 2 or inter[g, p] < 0.5 * ga[g]:
                k = "split"
            else:
                k = "loose"
        every[k] = every.get(k, 0) + 1
        if visible.get(g, 1.0) >= 0.5:
            vis[k] = vis.get(k, 0) + 1
    for p in range(1, npd + 1):
        if pa[p] == 0 or iou[:, p].max() > 0.5:
            continue
        k = "background" if inter[1:, p].sum() < 0.3 * pa[p] else ("loose" if iou[:, p].max() > 0.3 else "fragment")
        objs[k] = objs.get(k, 0) + 1
    return every, vis, objs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("renders", nargs="+", type=Path, help="render folders (frames.csv, labels/, objects.csv)")
    ap.add_argument("--precision", default="auto", choices=("auto", "int8", "bf16", "fp32"))
    ap.add_argument("--zoo", type=Path, default=None, help="folder of model folders (default: the package zoo)")
    ap.add_argument("--max-cells", type=int, default=200)
    args = ap.parse_args(argv)
    import pandas as pd
    import tifffile

    from devolens.io.images import read_image
    from devolens.models import zoo

    if args.zoo is not None:
        zoo.use_folder(args.zoo)
    pred = zoo.load("nuclei", precision=args.precision, diameter=None)
    total = {"all nuclei": {}, "nuclei >= half visible": {}, "objects matching no nucleus": {}}
    for d in args.renders:
        frames = pd.read_csv(d / "frames.csv")
        objects = pd.read_csv(d / "objects.csv")
        for row in frames[frames["total"] <= args.max_cells].itertuples():
            truth = tifffile.imread(d / "labels" / f"{Path(row.file).stem}_labels.tif")
            visible = objects[objects["file"] == row.file].set_index("label")["visible"].to_dict()
            found = pred.predict(read_image(d / row.file)).labels
            for key, part in zip(total, classify(found, truth, visible)):
                for k, v in part.items():
                    total[key][k] = total[key].get(k, 0) + v
    print(json.dumps(total, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
