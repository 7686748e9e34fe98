"""The nuclei model on another kind of image: cell-culture wells (nuclei ~12 px wide).

The zoo's ``nuclei`` model was trained on embryo renders (nuclei 23-66 px wide at 752x512).
This script simulates Hoechst channels of live/dead wells (``devolens.render.wells.simulate_well``:
scattered nuclei, vignetting, tile seams; ground truth exact), runs the model as it comes, with
the ``diameter`` its size check suggests (``NucleiPredictor.size_advice``, what `devolens segment`
prints), with ``diameter="auto"`` (the size model's estimate, what `devolens segment` does by
default) and with the true typical diameter, and prints instance F1 at IoU 0.5 for each.

Usage::

    python benchmarks/eval_nuclei_wells.py [--seeds 3 4 5] [--size 1024] [--zoom 2.5] [--zoo DIR]
    python benchmarks/eval_nuclei_wells.py --seeds 2 --size 640 --density 1500 --dead-fraction 0.1 --also 8.6
        (the well of tests/test_giant_blocks.py)
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    ap.add_argument("--size", type=int, default=1024, help="well side in pixels")
    ap.add_argument("--zoom", type=float, default=1.0,
                    help="enlarge the simulated well (image bilinear, labels nearest) by this factor first: larger "
                         "nuclei in a larger image, like a high-magnification camera frame (2.5: 2560 px, nuclei ~28 px)")
    ap.add_argument("--density", type=float, default=None, help="nuclei per megapixel (default: the simulator's)")
    ap.add_argument("--dead-fraction", type=float, default=None, help="fraction of dead cells (default: the simulator's)")
    ap.add_argument("--also", type=float, nargs="*", default=[], metavar="PX",
                    help="also score these diameters given by hand (e.g. one below the nuclei's width)")
    ap.add_argument("--zoo", default=None, help="folder of model folders (default: the package zoo)")
    a = ap.parse_args()
    from devolens.models import load, zoo

    if a.zoo:
        zoo.use_folder(a.zoo)
    from devolens.render.wells import simulate_well
    from devolens.train.metrics import match_instances

    plain = load("nuclei")
    rows = []
    for seed in a.seeds:
        extra = {k: v for k, v in (("density", a.density), ("dead_fraction", a.dead_fraction)) if v is not None}
        well = simulate_well(seed, size=(a.size, a.size), **extra)
        hoechst, truth = well.image[0], well.instances
        true_d = round(float(np.median(2 * np.sqrt(well.objects["area"] / np.pi))), 1)  # equivalent diameter
        if a.zoom != 1.0:
            import cv2

            hoechst = cv2.resize(hoechst, None, fx=a.zoom, fy=a.zoom, interpolation=cv2.INTER_LINEAR)
            truth = cv2.resize(truth.astype(np.uint16), None, fx=a.zoom, fy=a.zoom, interpolation=cv2.INTER_NEAREST)
            true_d = round(true_d * a.zoom, 1)
        res = plain.predict(hoechst)
        areas = np.bincount(res.labels.ravel())[1:]
        advice = plain.size_advice([float(np.median(areas[areas > 0]))]) if (areas > 0).any() else None
        f1 = {}
        auto = load("nuclei", diameter="auto")
        for key, d in (("as it comes", None), ("suggested", advice), ("auto", "auto"), ("true diameter", true_d),
                       *((f"{px:g} px", px) for px in a.also)):
            r = res if d is None else (auto if d == "auto" else load("nuclei", diameter=d)).predict(hoechst)
            m = match_instances(r.labels, truth)
            f1[key] = (2 * m["tp"] / max(1, 2 * m["tp"] + m["fp"] + m["fn"]), r.count)
        est = auto.last_estimate.diameter
        rows.append((seed, len(well.objects), true_d, advice, None if est is None else round(est, 1), f1))
    keys = ("as it comes", "suggested", "auto", "true diameter", *(f"{px:g} px" for px in a.also))
    print("| seed | nuclei | true diameter (px) | suggested | auto estimate | F1 as it comes (found) | F1 suggested | "
          "F1 auto | F1 true diameter |" + "".join(f" F1 at {px:g} px |" for px in a.also))
    print("|---|---|---|---|---|---|---|---|---|" + "---|" * len(a.also))
    for seed, n, td, adv, est, f1 in rows:
        cells = [f"{f1[k][0]:.3f} ({f1[k][1]})" for k in keys]
        print(f"| {seed} | {n} | {td:.1f} | {adv} | {est} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
