"""Nuclei instance F1 per render folder, for development renders (never the held-out ones).

Prints F1 at IoU 0.5 (frames with <= 200 cells, clean frames) for the random-pose folders and the
EPIC-framed folders (name containing ``framed``) pooled, then per folder. For comparing candidate
weights (``--zoo`` folder holding a ``nuclei`` model) or code changes on the same renders.

Usage::

    python scripts/zoo_dev_f1.py runs/zoo/render/calib_* runs/zoo/render/dev_framed_* [--zoo DIR] [--precision bf16]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    import tifffile

    from devolens.io.images import read_image
    from devolens.models import zoo
    from devolens.train.metrics import match_instances, prf

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("renders", type=Path, nargs="+", help="development render folders")
    ap.add_argument("--zoo", type=Path, default=None, help="folder of model folders (default: the package zoo)")
    ap.add_argument("--precision", default="auto", choices=("auto", "int8", "bf16", "fp32"))
    a = ap.parse_args()
    if a.zoo is not None:
        zoo.use_folder(a.zoo)
    pred = zoo.load("nuclei", batch_size=4, precision=a.precision)
    groups: dict[str, np.ndarray] = {}
    per = []
    for d in a.renders:
        df = pd.read_csv(d / "frames.csv", keep_default_na=False)
        df = df[(df["total"] <= 200) & (df["artifact"] == "")]
        t = np.zeros(3)
        for name, res in zip(df["file"], pred.predict_iter(read_image(d / f) for f in df["file"])):
            m = match_instances(res.labels, tifffile.imread(d / "labels" / f"{Path(name).stem}_labels.tif"))
            t += (m["tp"], m["fp"], m["fn"])
        key = "EPIC-framed" if "framed" in d.name else "random-pose"
        groups[key] = groups.get(key, np.zeros(3)) + t
        per.append(f"{d.name} {prf(*t)['f1']:.3f}")
    print("  ".join(f"{g} {prf(*t)['f1']:.4f}" for g, t in groups.items()))
    print("\n".join(per))


if __name__ == "__main__":
    main()
