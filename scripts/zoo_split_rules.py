"""Diagnostic: other rules for splitting touching nuclei, scored on development renders.

The shipped nuclei post-processing (``devolens.predict.postprocess.instances_from_probabilities``)
seeds a watershed with the maxima of the distance transform of the network's interior blobs
(``split_seeds``). This script re-runs that step, and variants of it, on cached network outputs
and prints instance F1 at IoU 0.5 per group of render folders (random-pose renders vs renders
framed like EPIC movies) and per folder. Use development renders only (``calib_*``,
``dev_framed_*``), never the held-out ones the cards report on.

Variants (JSON, any of): the shipped options (``threshold``, ``seed_threshold``, ``min_distance``,
``smooth``); ``open_r`` (radius of the opening of the seed mask, default min_distance // 2);
``h`` (keep only distance maxima at least h pixels above their saddle: h-maxima);
``fmd`` (min distance = max(min_distance, fmd x median seed-blob radius));
``merge`` (merge neighbours whose shared border has mean boundary probability below it) or
``merge_core`` (... mean interior probability above it).

Usage::

    python scripts/zoo_split_rules.py --renders runs/zoo/render/calib_* runs/zoo/render/dev_framed_* \
        [--variant '{"h": 1.0}' ...]     # no --variant: the set reported in benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_VARIANTS = [{}, {"seed_threshold": 0.8, "min_distance": 4.0}, {"seed_threshold": 0.8}, {"min_distance": 4.0},
                    {"open_r": 2}, *({"h": h} for h in (0.5, 1.0, 1.5, 2.0)), *({"fmd": f} for f in (0.5, 0.75, 1.0)),
                    *({"merge": m} for m in (0.3, 0.4, 0.5, 0.6)), *({"merge_core": m} for m in (0.5, 0.6))]


def cached_outputs(rdir: Path, cache: Path, pred) -> dict[str, np.ndarray]:
    """The network's working-scale probabilities and the truth of every clean frame with <= 200 cells."""
    import tifffile

    from devolens.io.images import read_image

    f = cache / f"{rdir.name}.npz"
    if not f.is_file():
        df = pd.read_csv(rdir / "frames.csv", keep_default_na=False)
        df = df[(df["total"] <= 200) & (df["artifact"] == "")]
        probs, truth, shapes = [], [], []
        for name in df["file"]:
            img = read_image(rdir / name)
            probs.append(pred.network.probabilities_working([pred.network.prepare(img)])[0].astype(np.float16))
            truth.append(tifffile.imread(rdir / "labels" / f"{Path(name).stem}_labels.tif"))
            shapes.append(img.shape[:2])
        cache.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(f, probs=np.stack(probs), truth=np.stack(truth), shapes=np.array(shapes))
    z = np.load(f)
    return {k: z[k] for k in ("probs", "truth", "shapes")}


def merge_weak(labels: np.ndarray, edge: np.ndarray, threshold: float) -> np.ndarray:
    """Merge touching objects whose shared border has mean ``edge`` below ``threshold``."""
    n = int(labels.max())
    if n < 2:
        return labels
    keys, vals = [], []
    for a, b, ea, eb in ((labels[:, :-1], labels[:, 1:], edge[:, :-1], edge[:, 1:]),
                         (labels[:-1], labels[1:], edge[:-1], edge[1:])):
        m = (a != b) & (a > 0) & (b > 0)
        lo, hi = np.minimum(a[m], b[m]).astype(np.int64), np.maximum(a[m], b[m]).astype(np.int64)
        keys.append(lo * (n + 1) + hi)
        vals.append(np.maximum(ea[m], eb[m]))
    key, val = np.concatenate(keys), np.concatenate(vals)
    if key.size == 0:
        return labels
    pairs, inv = np.unique(key, return_inverse=True)
    weak = pairs[np.bincount(inv, val) / np.bincount(inv) < threshold]
    parent = np.arange(n + 1)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for k in weak:
        a, b = find(int(k // (n + 1))), find(int(k % (n + 1)))
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(n + 1)])[labels]


def instances(probs: np.ndarray, threshold=0.6, seed_threshold=0.7, min_distance=3.0, min_size=8, smooth=1.0,
              isolated_fraction=0.25, open_r=None, h=0.0, fmd=0.0, merge=0.0, merge_core=0.0) -> np.ndarray:
    """The shipped seeds + watershed (split_seeds) with the variants of the module docstring."""
    from devolens.predict import postprocess as pp

    mask = pp._gaussian(1.0 - probs[0], smooth) >= threshold
    core = pp._gaussian(probs[1], smooth)
    seeds = (core >= seed_threshold) & mask
    r = int(min_distance // 2) if open_r is None else int(open_r)
    if r >= 1:
        seeds = pp._opening(seeds, r)
    markers, n = pp._label(seeds)
    if n:
        sizes = np.bincount(markers.ravel())
        small = sizes < max(1, min_size // 4)
        small[0] = False
        markers[small[markers]] = 0
    if markers.any():
        dist = pp._gaussian(pp._edt(markers > 0), 1.0)
        md = min_distance
        if fmd:
            sizes = np.bincount(markers.ravel())[1:]
            md = max(min_distance, fmd * float(np.sqrt(np.median(sizes[sizes > 0]) / np.pi)))
        size = max(3, int(2 * md + 1))
        peaks = (dist == pp._maximum(dist, size)) & (markers > 0)
        if h:
            from skimage.morphology import h_maxima

            peaks &= h_maxima(dist.astype(np.float64), h).astype(bool)
            has = np.zeros(int(markers.max()) + 1, bool)
            has[markers[peaks]] = True
            lost = ~has[markers] & (markers > 0)  # blobs left without a seed keep their highest point
            if lost.any():
                top = np.zeros(int(markers.max()) + 1)
                np.maximum.at(top, markers[lost], dist[lost])
                peaks |= lost & (dist >= top[markers])
        markers, _ = pp._label(peaks)
    if markers.max() == 0:
        markers, _ = pp._label(mask)
    labels = pp.watershed(-core, markers, mask)
    if merge:
        labels = merge_weak(labels, pp._gaussian(probs[2], 1.0), merge)
    if merge_core:
        labels = merge_weak(labels, -core, -merge_core)
    missing = mask & (labels == 0)
    if missing.any():
        extra, _ = pp._label(missing)
        labels = np.where(extra > 0, extra + labels.max(), labels)
    counts = np.bincount(labels.ravel())
    keep = counts >= max(1, min_size)
    keep[0] = False
    if isolated_fraction > 0:
        keep[pp._isolated_specks(labels, np.where(keep, counts, 0), isolated_fraction)] = False
    return pp._renumber(labels, keep)


def main() -> None:
    from devolens.models import zoo
    from devolens.predict.postprocess import resize_labels
    from devolens.train.metrics import match_instances, prf

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--renders", type=Path, nargs="+", required=True, help="development render folders")
    ap.add_argument("--variant", action="append", default=None, help="JSON options (repeatable)")
    ap.add_argument("--cache", type=Path, default=Path("runs/zoo/cache/split_rules"), help="cached network outputs")
    a = ap.parse_args()
    pred = zoo.load("nuclei", batch_size=4)  # the default arithmetic (int8 where supported)
    data = {r.name: cached_outputs(r, a.cache, pred) for r in a.renders}
    groups = {"random-pose": [k for k in data if "framed" not in k], "EPIC-framed": [k for k in data if "framed" in k]}
    variants = [json.loads(v) for v in a.variant] if a.variant else DEFAULT_VARIANTS
    print("per folder:", " ".join(k for g in groups.values() for k in g))
    for v in variants:
        line = []
        per = []
        for g, keys in groups.items():
            total = np.zeros(3)
            for k in keys:
                d, t = data[k], np.zeros(3)
                for p, truth, shape in zip(d["probs"], d["truth"], d["shapes"]):
                    m = match_instances(resize_labels(instances(p.astype(np.float32), **v), tuple(shape)), truth)
                    t += (m["tp"], m["fp"], m["fn"])
                per.append(prf(*t)["f1"])
                total += t
            if keys:
                line.append(f"{g} {prf(*total)['f1']:.4f}")
        print(f"{json.dumps(v) or '{}':48s}", "  ".join(line), " |", " ".join(f"{x:.3f}" for x in per), flush=True)


if __name__ == "__main__":
    main()
