"""How the zoo's image models hold up when the same frames come from another microscope or camera.

A user's images differ from the renders in ways the renderer's domain randomisation may not
cover: a 16-bit camera with an offset, vignetting or a tilted illumination field, a bright
uneven background, saturation, another display gamma, hot pixels, defocus, a rotated stage, a wider (square) field.
This script applies each such acquisition change to the held-out renders (embryos never
used in training: ``runs/zoo/render/val_L3``, ``val_sim``; for ``--model membrane``
``runs/zoo/render/mval_L3``) and scores the shipped model on them exactly as on the originals
(instance F1 at IoU 0.5 of nuclei, frames with <= 200 cells, or of cells for the membrane model;
labels unchanged but for the rotation; for ``--model population`` the mean absolute error over the
mean count of each letter and of the total, frames of all stages), with the same settings a user gets
(``--diameter auto``: each frame is one input, its magnification estimated on its own; ``--diameter none``: not).

Usage::

    python benchmarks/eval_robustness.py [--model nuclei|membrane|population] [--every 2] [--only vignette ramp]
        [--json out.json] [--no-flatten | --flatten PX] [--outliers T] [--diameter auto|none]

``--no-flatten`` runs the predictor without its background flattening (``flatten=0``; the
card's ``preprocessing.flatten`` otherwise), ``--flatten PX`` with a disc PX working pixels wide,
``--outliers T`` with that hot-pixel threshold (0: off; the card's ``preprocessing.outliers``
otherwise), for the comparison.
Prints one Markdown table: F1, precision, recall and count bias per change.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from eval_zoo import _frames  # noqa: E402  (held-out frame listing shared with eval_zoo)


def _field(shape, kind: str) -> np.ndarray:
    """Smooth multiplicative (or additive) fields, 1 at their brightest (a trailing axis for RGB frames)."""
    h, w = shape[:2]
    if len(shape) == 3:
        return _field(shape[:2], kind)[..., None]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "vignette":  # radial fall-off to 0.35 in the corners (wide-field, no flat-field correction)
        r = np.hypot((x - w / 2) / (w / 2), (y - h / 2) / (h / 2)) / np.sqrt(2)
        return (1 - 0.65 * r ** 2).astype(np.float32)
    if kind == "ramp":  # illumination tilted across the field: 0.3 on the left, 1 on the right
        return (0.3 + 0.7 * x / (w - 1)).astype(np.float32)
    raise ValueError(kind)


def changes(rng: np.random.Generator) -> dict:
    """name -> (function of a float32 frame in 0..255 returning the new frame, the same change of the label
    image or None when the labels stay as they are)."""
    def u8(f):
        return np.clip(np.rint(f), 0, 255).astype(np.uint8)

    def camera16(f):  # 12-bit signal on a 16-bit camera with a 400-count offset
        return np.clip(f / 255 * 3500 + 400 + rng.normal(0, 6, f.shape), 0, 65535).astype(np.uint16)

    def dim(f):  # few photons: peak ~8 photons, Poisson noise
        return u8(rng.poisson(np.clip(f, 0, None) / 255 * 8).astype(np.float32) * 255 / 8 * 0.25 + 10)

    def hot(f):  # 0.05 % hot pixels at full scale
        out = f.copy()
        n = int(out.size * 5e-4)
        out.flat[rng.choice(out.size, n, replace=False)] = 255
        return u8(out)

    def square(f, labels=False):  # a camera field as tall as wide: more background above and below
        h, w = f.shape[:2]
        top, bottom = (w - h) // 2, w - h - (w - h) // 2
        if labels:
            return np.pad(f, ((top, bottom), (0, 0)))
        edge = np.concatenate([f[:8], f[-8:]]).reshape(-1, *f.shape[2:])  # background pixels of the frame's edges
        pad = lambda n: edge[rng.integers(len(edge), size=n * w)].reshape(n, w, *f.shape[2:])  # noqa: E731
        return np.concatenate([pad(top), f, pad(bottom)])

    def blur(f):
        import cv2

        return u8(cv2.GaussianBlur(f, (0, 0), 2.5))

    return {
        "as rendered": (u8, None),
        "16-bit camera, offset 400": (camera16, None),
        "dim, Poisson noise (8 photons at peak)": (dim, None),
        "saturated (gain 3)": (lambda f: u8(f * 3), None),
        "gamma 0.5": (lambda f: u8(255 * (f / 255) ** 0.5), None),
        "gamma 2": (lambda f: u8(255 * (f / 255) ** 2), None),
        "vignetting (corners 0.35)": (lambda f: u8(f * _field(f.shape, "vignette")), None),
        "illumination ramp (0.3 -> 1)": (lambda f: u8(f * _field(f.shape, "ramp")), None),
        "bright uneven background (+0 -> +40 %)": (lambda f: u8(f * 0.6 + 102 * (1 - _field(f.shape, "ramp")) / 0.7), None),
        "hot pixels (0.05 %)": (hot, None),
        "defocus (Gaussian 2.5 px)": (blur, None),
        "rotated 90 degrees": (lambda f: u8(np.rot90(f)), np.rot90),
        "wider square field (padded with background)": (lambda f: u8(square(f)), lambda t: square(t, labels=True)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="nuclei", choices=["nuclei", "membrane", "population"])
    ap.add_argument("--val", nargs="+", type=Path, default=None,
                    help="render folders (default: the held-out val_L3 val_sim; membrane: mval_L3)")
    ap.add_argument("--every", type=int, default=None,
                    help="every n-th frame (nuclei: with <= 200 cells; default 2 for nuclei, 1 for the others)")
    ap.add_argument("--only", nargs="+", default=None, help="only the changes whose name starts with these words")
    ap.add_argument("--no-flatten", action="store_true", help="no background flattening (flatten=0)")
    ap.add_argument("--flatten", type=float, default=None, help="background flattening disc width (working px)")
    ap.add_argument("--outliers", type=float, default=None, help="hot-pixel threshold (0: off; default: the card's)")
    ap.add_argument("--diameter", default="auto", choices=["auto", "none"],
                    help="magnification estimated per frame (auto, the CLI's default) or not (none)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--zoo", type=Path, default=None,
                    help="a model folder instead of the shipped one (e.g. a copy with another size model), or a folder "
                         "of model folders (a staged zoo, scripts/zoo_refresh.sh: the population model's nuclei too)")
    args = ap.parse_args()
    membrane = args.model == "membrane"
    if args.val is None:
        args.val = [ROOT / "runs/zoo/render" / n for n in (["mval_L3"] if membrane else ["val_L3", "val_sim"])]
    if args.every is None:
        args.every = 2 if args.model == "nuclei" else 1
    options = {}
    if args.no_flatten or args.flatten is not None:
        options["flatten"] = 0.0 if args.no_flatten else args.flatten
    if args.outliers is not None:
        options["outliers"] = args.outliers
    for d in args.val:
        if not (d / "frames.csv").is_file():
            sys.exit(f"no held-out renders in {d}: make them with `bash scripts/zoo_renders.sh`")

    if args.model == "population":
        return _population(args)

    import tifffile

    from devolens.io.images import read_image
    from devolens.models import zoo
    from devolens.train.metrics import match_instances, prf

    pred = zoo.load(_model(args), diameter=None if args.diameter == "none" else "auto", **options)
    rows = [(v, r) for v, r in _frames(args.val, None if membrane else 200, args.every)]
    frames = [(read_image(v / r["file"]).astype(np.float32),
               tifffile.imread(v / "labels" / f"{Path(r['file']).stem}_labels.tif")) for v, r in rows]
    table, out = [], {}
    for name, (fn, relabel) in changes(np.random.default_rng(0)).items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        t0 = time.perf_counter()
        acc = np.zeros(3, int)
        bias = []
        for img, truth in frames:
            res = pred.predict(fn(img))
            t = relabel(truth) if relabel is not None else truth
            m = match_instances(res.labels, t)
            acc += [m["tp"], m["fp"], m["fn"]]
            bias.append(res.count - (len(np.unique(t)) - 1))
        s = prf(*acc)
        out[name] = {"f1": round(s["f1"], 4), "precision": round(s["precision"], 4), "recall": round(s["recall"], 4),
                     "count_bias": round(float(np.mean(bias)), 2)}
        table.append(f"| {name} | {s['f1']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} | {np.mean(bias):+.1f} |")
        print(f"{name}: F1 {s['f1']:.3f} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    print(f"\n{args.model} model, renders ({', '.join(d.name for d in args.val)}), {len(frames)} frames"
          f"{'' if membrane else ' <= 200 cells'}, --diameter {args.diameter}, flatten {pred.network.flatten:g}, "
          f"outliers {pred.network.outliers:g}\n")
    print(f"| acquisition change | {'cell' if membrane else 'nucleus'} F1 @ IoU 0.5 | precision | recall | count bias |\n"
          "|---|---|---|---|---|")
    print("\n".join(table))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


LETTERS = ("A", "E", "M", "P", "C", "D", "Z")


def _model(args) -> str:
    """What ``zoo.load`` gets for ``--model``/``--zoo``: the model's name (in a staged zoo when ``--zoo`` is a folder of
    model folders) or the folder of one model."""
    from devolens.models import zoo

    if args.zoo is None:
        return args.model
    if (args.zoo / "card.json").is_file():
        return str(args.zoo)
    zoo.use_folder(args.zoo)  # a population model loads its nuclei model by name: the staged one
    return args.model


def _population(args) -> None:
    """The population model under each change: mean absolute error over the mean count, per letter and for
    the total, on every ``--every``-th held-out frame (all stages, as ``eval_zoo.py population``), each frame one
    input (``--diameter auto``: its magnification estimated on its own)."""
    from devolens.io.images import read_image
    from devolens.models import zoo
    from devolens.train.metrics import population_mae

    pred = zoo.load(_model(args), diameter=None if args.diameter == "none" else "auto")
    rows = list(_frames(args.val, None, args.every))
    images = [read_image(v / r["file"]).astype(np.float32) for v, r in rows]
    keys = LETTERS + ("total",)
    truth = np.array([[r[k] for k in keys] for _, r in rows], dtype=float)
    means = truth.mean(axis=0)
    table, out = [], {}
    for name, (fn, _) in changes(np.random.default_rng(0)).items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        t0 = time.perf_counter()
        found = np.array([[o[k] for k in keys] for o in (next(pred.predict_iter([fn(img)])) for img in images)])
        mae = population_mae(found, truth, keys)
        ratio = {k: float(mae[k] / means[i]) if means[i] > 0 else float("nan") for i, k in enumerate(keys)}
        out[name] = {k: round(v, 4) for k, v in ratio.items()}
        table.append(f"| {name} | {ratio['total']:.3f} | " + " | ".join(f"{ratio[k]:.3f}" for k in LETTERS)
                     + f" | {float(np.mean(found[:, -1] - truth[:, -1])):+.1f} |")
        print(f"{name}: total MAE/mean {ratio['total']:.3f} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    print(f"\npopulation model, renders ({', '.join(d.name for d in args.val)}), {len(rows)} frames (all stages), "
          f"--diameter {args.diameter}; MAE / mean count\n")
    print("| acquisition change | total | " + " | ".join(LETTERS) + " | total bias |\n|---|---|"
          + "---|" * len(LETTERS) + "---|")
    print("\n".join(table))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
