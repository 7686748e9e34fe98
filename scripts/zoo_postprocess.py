"""Choose the nuclei model's post-processing settings on validation renders.

The network runs once per frame (probabilities cached); every combination of the grid
below is then scored by instance F1 at IoU 0.5 (``devolens.train.metrics``). Run it on the
engine's validation embryo (one of the TRAINING-side embryos, chosen by the split in
``RUN/split.csv``) or, with ``--all-embryos``, on a development render of an embryo used
nowhere else (e.g. ``devolens render --simulate 1 --seed 555 ...``); never on the held-out
embryos the card reports on.

Usage::

    python scripts/zoo_postprocess.py --zoo runs/zoo/stage --run runs/zoo/nuclei_v2 \
        --renders runs/zoo/render/tr_sim runs/zoo/render/tr2_sim [--max-cells 200] [--every 2] [--grid JSON]

Prints the grid sorted by F1 and the best setting as JSON (to paste into the card's
``postprocess`` via ``scripts/zoo_ship.py --postprocess``).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd

GRID = {
    "threshold": [0.4, 0.5, 0.6],
    "seed_threshold": [0.5, 0.6, 0.7, 0.8],
    "min_distance": [2.0, 3.0, 4.0],
    "smooth": [1.0],
    "split_seeds": [False, True],
}


def main() -> None:
    import tifffile

    from devolens.io.images import read_image
    from devolens.models import zoo
    from devolens.train.metrics import match_instances, prf

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", type=Path, required=True, help="folder of model folders holding the candidate 'nuclei'")
    ap.add_argument("--run", type=Path, default=None, help="training run: its split.csv names the validation embryos")
    ap.add_argument("--all-embryos", action="store_true",
                    help="use every embryo of --renders (a development render never used for training)")
    ap.add_argument("--renders", type=Path, nargs="+", required=True, help="full-size render folders to search")
    ap.add_argument("--max-cells", type=int, default=200)
    ap.add_argument("--every", type=int, default=2, help="use every k-th eligible frame")
    ap.add_argument("--grid", type=json.loads, default=None,
                    help="JSON object replacing entries of the grid, e.g. '{\"seed_threshold\": [0.2, 0.3, 0.4]}' "
                         "(a distance head's seeds are its relative distance, 1 at the centres)")
    a = ap.parse_args()

    if a.run is None and not a.all_embryos:
        raise SystemExit("give --run (its validation embryos) or --all-embryos")
    val_embryos = None
    if not a.all_embryos:
        split = pd.read_csv(a.run / "split.csv")
        val_embryos = set(split.loc[split["side"] == "val", "group"].astype(str))
    frames = []
    for rdir in a.renders:
        df = pd.read_csv(rdir / "frames.csv", keep_default_na=False)
        if val_embryos is not None:
            df = df[df["embryo"].astype(str).isin(val_embryos)]
        df = df[(df["total"] <= a.max_cells) & (df["artifact"] == "")]
        frames += [(rdir, r) for _, r in df.iloc[:: a.every].iterrows()]
    if not frames:
        raise SystemExit(f"no frames of the validation embryos {sorted(val_embryos)} in {a.renders}")
    print(f"validation embryos {sorted(val_embryos) if val_embryos else 'all'}: {len(frames)} frames", flush=True)

    zoo.use_folder(a.zoo)
    pred = zoo.load("nuclei", batch_size=4)
    cached = []
    for rdir, row in frames:
        img = read_image(rdir / row["file"])
        probs = pred.network.probabilities_working([pred.network.prepare(img)])[0]
        truth = tifffile.imread(rdir / "labels" / f"{Path(row['file']).stem}_labels.tif")
        cached.append((probs, img.shape[:2], truth))

    grid = {**GRID, **(a.grid or {})}
    results = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        opts = dict(zip(keys, values))
        pred.postprocess_options.update(opts)
        tp = fp = fn = 0
        for probs, shape, truth in cached:
            m = match_instances(pred._finish(probs, shape).labels, truth)
            tp, fp, fn = tp + m["tp"], fp + m["fp"], fn + m["fn"]
        results.append({**opts, **prf(tp, fp, fn)})
    table = pd.DataFrame(results).sort_values("f1", ascending=False)
    print(table.head(15).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    best = {k: (bool(table.iloc[0][k]) if k == "split_seeds" else float(table.iloc[0][k])) for k in keys}
    print(json.dumps(best))


if __name__ == "__main__":
    main()
