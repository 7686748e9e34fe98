"""Measure the object sizes a zoo segmentation model was made for and store them in its card.

Usage::

    python scripts/zoo_diameter.py nuclei --renders runs/zoo/render/calib_L2 runs/zoo/render/calib_sim \
        [--zoo src/devolens/models/zoo]

The model's float network runs in fp32 (the same figures on every machine) at its card's working
scale on the clean frames of ``--renders`` (renders of
TRAINING embryos or fresh simulated ones, with the random pose and zoom of the training
renders; never the held-out embryos). For each frame with at least 5 objects, the median
equivalent diameter (input pixels) of the objects it finds is taken. The card gets
``input.diameter``: ``reference`` (the median over frames: a ``diameter=D`` option scales the
input by ``reference / D``), the 5th-95th percentile over frames (for information: nucleus
size changes with the stage, so it cannot tell the magnification by itself) and the whole range
``min_max`` (objects found well outside it make ``devolens segment`` suggest ``--diameter``). ``card.md`` is
rewritten. Re-run after shipping new weights (``scripts/zoo_ship.py`` writes a card without it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="zoo segmentation model (nuclei)")
    ap.add_argument("--renders", type=Path, nargs="+", required=True, help="render folders of training embryos")
    ap.add_argument("--zoo", type=Path, default=ROOT / "src" / "devolens" / "models" / "zoo")
    ap.add_argument("--frames", type=int, default=400, help="at most this many frames (spread over the folders)")
    ap.add_argument("--range-only", action="store_true",
                    help="only add the whole range (min_max) to the card, keeping its reference and p5_p95")
    a = ap.parse_args()

    from devolens.io.images import read_image
    from devolens.models import zoo
    from zoo_int8 import calibration_frames
    from zoo_ship import write_card

    zoo.use_folder(a.zoo)
    card = zoo.card(a.name)
    # in fp32, the weights' own arithmetic, the same on every machine: the default int8 (bf16 without VNNI) finds
    # objects up to 1 % larger (nuclei, twenty-first session: 35.5 fp32, 35.65 bf16, 35.8 int8 px)
    pred = zoo.load(a.name, diameter=None, precision="fp32")
    files = calibration_frames(a.renders, a.frames)
    medians = []
    for res in pred.predict_iter(read_image(f) for f in files):
        area = res.centroids["area"].to_numpy(float)
        if len(area) >= 5:
            medians.append(float(np.median(2.0 * np.sqrt(area / np.pi))))
    medians = np.asarray(medians)
    p5, p95 = np.percentile(medians, [5, 95])
    renders = " ".join(str(d) for d in a.renders)
    # the whole range over frames: the size check (size_advice) warns only outside it
    min_max = [round(float(medians.min()), 1), round(float(medians.max()), 1)]
    min_max_how = (f"lowest and highest per-frame median over {len(medians)} frames of the same renders (reference "
                   f"would be {float(np.median(medians)):.1f} here); command: python scripts/zoo_diameter.py {a.name} "
                   f"--range-only --renders {renders}")
    if a.range_only:  # keep the reference the shipped figures were measured with; add the whole range
        spec = card.setdefault("input", {}).setdefault("diameter", {})
        spec["min_max"] = min_max
        spec["min_max_how"] = min_max_how
    else:
        auto = (card.get("input", {}).get("diameter") or {}).get("auto")  # the size model: fitted on its own
        spec = card.setdefault("input", {})["diameter"] = {
            "reference": round(float(np.median(medians)), 1),
            "p5_p95": [round(float(p5), 1), round(float(p95), 1)],
            "min_max": min_max,
            "how": (f"median equivalent diameter (input pixels) of the objects the fp32 network finds at scale "
                    f"{pred.network.scale} in "
                    f"{len(medians)} frames of " + ", ".join(d.name for d in a.renders)
                    + " (renders of training embryos / fresh simulated embryos, random pose and zoom, all stages): "
                    "reference = median over frames; `--diameter D` resizes the input by reference / D before the "
                    f"card's scale; command: python scripts/zoo_diameter.py {a.name} --renders {renders}"),
            "min_max_how": min_max_how,
        }
        if auto is not None:  # kept (scripts/zoo_sizemodel.py fit writes it again for new weights)
            spec["auto"] = auto
    if "auto" in spec:  # the size model's section last, as scripts/zoo_sizemodel.py fit places it
        spec["auto"] = spec.pop("auto")
    folder = a.zoo / a.name
    write_card(card, folder)
    print(json.dumps(spec, indent=1))

if __name__ == "__main__":
    main()
