"""Fit the nuclei (or membrane) model's size model (``diameter="auto"``): how magnified an image is,
from the network's own features.

cellpose's idea (its "size model"): the average of the encoder's deepest features (the "style")
tells the scale of the objects; ridge regressions map it to the log of the image's
magnification ``m`` relative to EPIC-like framing (752x512 frames, eggshell ~600 px long, nuclei
~35 px mid-embryo), whatever the stage: the network was trained on EPIC framing zoomed 0.55-1.15
at every stage, so what matters is the magnification, not the nucleus size of the moment.

Samples are rendered here, each with its own magnification (log-uniform 0.2-4), pose, optics,
stage and frame size: the five real training embryos, the AceTree embryo and simulated embryos
(training side); the held-out embryos (CD20241010_JIM767_25_L3, simulated seed 999) only for
the figures. Simulated cell-culture wells (``devolens.render.wells``, zoomed 0.7-5x) add images
without an embryo; their ``m`` is the one at which their nuclei would have the size mid-embryo
nuclei have at ``M0``. Two ridge heads (embryos, wells) and a logistic gate between them
(:class:`devolens.predict.sizing.SizeModel`); alpha by leave-one-embryo-out error.

Usage (the shipped model; about 15 minutes on 2 cores)::

    python scripts/zoo_sizemodel.py render --out runs/size/train.npz --n 1500 --seed 1 --sims 8
    python scripts/zoo_sizemodel.py render --out runs/size/train2.npz --n 1500 --seed 11 --sims 8
    python scripts/zoo_sizemodel.py render --wells --out runs/size/wells.npz --n 400 --seed 3
    python scripts/zoo_sizemodel.py render --heldout --out runs/size/heldout.npz --n 300 --seed 2
    python scripts/zoo_sizemodel.py render --wells --out runs/size/wells_heldout.npz --n 100 --seed 4
    python scripts/zoo_sizemodel.py render --crowd 1 --out runs/size/crowd.npz --n 500 --seed 21 --sims 8
    python scripts/zoo_sizemodel.py render --crowd 1 --heldout --out runs/size/crowd_heldout.npz --n 120 --seed 22
    python scripts/zoo_sizemodel.py fit runs/size/train.npz runs/size/train2.npz runs/size/wells.npz \
        runs/size/crowd.npz --crowd-head --heldout runs/size/heldout.npz runs/size/wells_heldout.npz \
        runs/size/crowd_heldout.npz --to src/devolens/models/zoo/nuclei

Crowded fields (``render --crowd``, twenty-fifth session, shipped): several embryos side by side at one
magnification (a slide of embryos filmed together, a stitched mosaic), which a model fitted on fields of one embryo
reads as one magnified embryo (120 held-out crowded fields: median error x2.12, 3 % within 1.25x). They get a head of
their own and the gate becomes multinomial (``fit --crowd-head``, the last three commands above):
held-out crowded fields x1.14 (80 % within 1.25x), single embryos x1.11 (80 %), wells x1.05 (94 %). Put into the
wells' head instead (without ``--crowd-head``), they shifted it (culture wells F1 0.860 / 0.949 -> 0.842 / 0.924).

Variants (thirteenth session, measured and not shipped; benchmarks/RESULTS.md, nuclei): ``render --flatten W``
featurizes images background-flattened with a disc W working px wide (default 0: not flattened, as
shipped), which ``fit`` writes into the card
(``input.diameter.auto.flatten``) for the predictors to read images the same way; ``render --backdrop P``
draws a fraction P of the embryo samples on a smooth uneven bright backdrop. Fifteenth session: ``render --intensity P``
adds, for a fraction P of the samples, a copy under another gamma, a saturating gain or few photons (``perturbed`` in
the npz; ``fit --clean-only`` leaves the copies out): measured, not shipped.

The nuclei model's second size model, for images on a bright uneven backdrop (fourteenth session, shipped:
card ``input.diameter.auto.backdrop``, :class:`devolens.predict.sizing.BackdropReader`): the five render commands
above with ``--flatten 120`` and ``--out runs/size120/...``, then::

    python scripts/zoo_sizemodel.py fit runs/size120/train.npz runs/size120/train2.npz runs/size120/wells.npz \
        --heldout runs/size120/heldout.npz runs/size120/wells_heldout.npz --to src/devolens/models/zoo/nuclei \
        --role backdrop --gate 0.05 0.15

The membrane model's (``--kind membrane``: one grey slice per sample, no wells; about 15 minutes)::

    python scripts/zoo_sizemodel.py render --kind membrane --out runs/size_m/train.npz --n 1200 --seed 1 --sims 6
    python scripts/zoo_sizemodel.py render --kind membrane --out runs/size_m/train2.npz --n 1200 --seed 11 --sims 6
    python scripts/zoo_sizemodel.py render --kind membrane --heldout --out runs/size_m/heldout.npz --n 300 --seed 2
    python scripts/zoo_sizemodel.py fit runs/size_m/train.npz runs/size_m/train2.npz \
        --heldout runs/size_m/heldout.npz --to src/devolens/models/zoo/membrane
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("DEVOLENS_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
TRAIN_EPIC = ["CD20240930_JIM762_L4", "CD20241009_JIM767_25_L1", "CD20241009_JIM767_25_L5",
              "CD20241010_JIM767_25_L2", "CD20241107_JIM767_25_L1"]
HELDOUT_EPIC = ["CD20241010_JIM767_25_L3"]
EPIC_SIZE = (512, 752)
M_RANGE = (0.2, 4.0)
TRAIN_ZOOMS = (0.55, 1.15)  # the zooms of EPIC framing the nuclei network was trained on (random_pose)
M0 = float(np.sqrt(TRAIN_ZOOMS[0] * TRAIN_ZOOMS[1]))  # their middle

_TABLES: list = []


def _tables(heldout: bool, n_sim: int, seed: int):
    from devolens.io.tables import read_table
    from devolens.render.dataset import simulate_tables

    if heldout:
        tabs = [read_table(DATA / "epic" / f"{t}.csv") for t in HELDOUT_EPIC]
        tabs += simulate_tables(1, seed=999)
    else:
        tabs = [read_table(DATA / "epic" / f"{t}.csv") for t in TRAIN_EPIC]
        tabs.append(read_table(DATA / "acetree" / "wormguides_nuclei.zip"))
        tabs += simulate_tables(n_sim, seed=seed + 5000)
    return tabs


def _init(tables):
    global _TABLES
    _TABLES = tables


def _pick_time(table, rng) -> int:
    """A time point of ``table`` with 2-400 cells (any when it has none), drawn with ``rng`` (one draw)."""
    times = np.unique(table["time"].to_numpy())
    counts = table.groupby("time").size().reindex(times).to_numpy()
    ok = times[(counts >= 2) & (counts <= 400)]
    return int(rng.choice(ok if len(ok) else times))


def _render_one(job):
    """One embryo sample: (image, magnification, embryo index, cells in the image).

    Nuclei: a projection (grey or RGB), all the embryo's cells; membrane: one grey slice
    (``devolens.render.membranes``), the cells the slice cuts."""
    from devolens.render.geometry import Pose, cached, default_pose, embryo_geometry
    from devolens.render.membranes import render_membrane_frame
    from devolens.render.nuclei import render_nuclei_frame

    ei, seed, kind, backdrop, crowd = job
    rng = np.random.default_rng(seed)
    if crowd:
        return _crowd_one(rng, kind, seed)
    table = _TABLES[ei]
    geom = cached(table, "geometry", embryo_geometry)
    t = _pick_time(table, rng)
    m = float(np.exp(rng.uniform(np.log(M_RANGE[0]), np.log(M_RANGE[1]))))
    # frame: mostly EPIC-sized; a larger camera field now and then (the whole embryo at high zoom)
    if rng.random() < 0.3:
        f = float(np.clip(m * rng.uniform(0.7, 1.3), 0.6, 2.2))
        size = (int(EPIC_SIZE[0] * f) // 16 * 16, int(EPIC_SIZE[1] * f) // 16 * 16)
        if rng.random() < 0.5:
            size = (size[0], size[0])
    else:
        size = EPIC_SIZE
    s0 = default_pose(geom, EPIC_SIZE).scale
    h, w = size
    angle = float(rng.uniform(-np.pi, np.pi))
    cx = w / 2 + float(rng.uniform(-0.25, 0.25)) * w * min(1.0, 1.0 / m)
    cy = h / 2 + float(rng.uniform(-0.25, 0.25)) * h * min(1.0, 1.0 / m)
    pose = Pose(center=(cx, cy), angle=angle, scale=s0 * m, flip=bool(rng.random() < 0.5))
    if kind == "membrane":
        fr = render_membrane_frame(table, t, size=size, seed=int(seed), pose=pose, geometry=geom)
        return fr.image, m, ei, int(fr.labels.max())
    fr = render_nuclei_frame(table, t, size=size, seed=int(seed), rgb=bool(rng.random() < 0.4), pose=pose,
                             geometry=geom)
    image = _with_backdrop(fr.image, rng) if rng.random() < backdrop else fr.image
    return image, m, ei, int(fr.counts["total"])


#: crowded fields: grids of embryos (rows, columns), and the magnifications they are drawn at (several embryos share a
#: field at low zoom; a mosaic of fields stitched edge to edge at any zoom up to the largest here)
CROWD_GRIDS = ((1, 2), (2, 1), (2, 2), (1, 3), (3, 1), (2, 3), (3, 2), (3, 3))
CROWD_M = (0.2, 1.6)
CROWD_SIDE = 2048  # pixels: the largest field rendered


def _crowd_one(rng, kind: str, seed: int):
    """A crowded field: several embryos at one magnification ``m`` side by side (a slide of embryos filmed
    together, a stitched mosaic), each its own embryo, stage, pose and place in a cell of a grid cropped tight
    around it (0.45-1.0 of an EPIC field at ``m``, so neighbours touch or are cut), under one camera (one optics
    draw, one colour mode). Returns (image, m, group, cells in the field): the group is one of the wells' five folds
    (-1..-5, from the seed, so a field and its --intensity copy share it): crowded fields join the wells' head."""
    from devolens.render.geometry import Pose, cached, default_pose, embryo_geometry
    from devolens.render.membranes import render_membrane_frame
    from devolens.render.nuclei import render_nuclei_frame
    from devolens.render.optics import OpticsParams

    m = float(np.exp(rng.uniform(np.log(CROWD_M[0]), np.log(CROWD_M[1]))))
    f = float(rng.uniform(0.45, 1.0))
    ch = max(64, int(EPIC_SIZE[0] * m * f) // 16 * 16)
    cw = max(64, int(EPIC_SIZE[1] * m * f) // 16 * 16)
    grids = [g for g in CROWD_GRIDS if g[0] * ch <= CROWD_SIDE and g[1] * cw <= CROWD_SIDE] or [(1, 2)]
    gy, gx = grids[int(rng.integers(len(grids)))]
    optics = OpticsParams.sample(rng)
    rgb = bool(rng.random() < 0.4)
    rows, cells = [], 0
    for _ in range(gy):
        row = []
        for _ in range(gx):
            table = _TABLES[int(rng.integers(len(_TABLES)))]
            geom = cached(table, "geometry", embryo_geometry)
            t = _pick_time(table, rng)
            s0 = default_pose(geom, EPIC_SIZE).scale
            pose = Pose(center=(cw / 2 + float(rng.uniform(-0.1, 0.1)) * cw, ch / 2 + float(rng.uniform(-0.1, 0.1)) * ch),
                        angle=float(rng.uniform(-np.pi, np.pi)), scale=s0 * m, flip=bool(rng.random() < 0.5))
            sub = int(rng.integers(2**31))
            if kind == "membrane":
                fr = render_membrane_frame(table, t, size=(ch, cw), seed=sub, pose=pose, geometry=geom)
                cells += int(fr.labels.max())
            else:
                fr = render_nuclei_frame(table, t, size=(ch, cw), seed=sub, rgb=rgb, optics=optics, pose=pose,
                                         geometry=geom)
                cells += int(fr.counts["total"])
            row.append(fr.image)
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0), m, -1 - seed % 5, cells


def _top(image: np.ndarray) -> float:
    """The top of ``image``'s range: its dtype's maximum for integers, its own maximum (or 1) for floats."""
    return float(np.iinfo(image.dtype).max) if np.issubdtype(image.dtype, np.integer) else float(image.max() or 1.0)


def _with_backdrop(image: np.ndarray, rng) -> np.ndarray:
    """``image`` on a smooth, uneven bright backdrop (out-of-focus haze, autofluorescent medium): a random
    low-frequency field (a coarse random grid, upsampled, plus a random tilt) scaled to 5-50 % of the image's
    bright level, added to every channel, the image itself dimmed by 0-40 %."""
    import cv2

    h, w = image.shape[:2]
    coarse = rng.random((int(rng.integers(2, 6)), int(rng.integers(2, 6)))).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    field += rng.uniform(-1.5, 1.5) * xx + rng.uniform(-1.5, 1.5) * yy
    field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
    top = _top(image)
    bright = float(np.percentile(image, 99.9)) or top
    f = field * rng.uniform(0.05, 0.5) * bright
    out = image.astype(np.float32) * rng.uniform(0.6, 1.0) + (f[..., None] if image.ndim == 3 else f)
    return np.clip(out, 0, top).astype(image.dtype)


def _with_intensity(image: np.ndarray, rng) -> np.ndarray:
    """``image`` as another camera or display setting would give it: a gamma (0.4-2.5, log-uniform), a gain
    that saturates (1.5-4x, clipped), or few photons (4-40 at the brightest pixel, Poisson, scaled to 20-60 %
    of the range plus an offset), one of the three drawn at random."""
    top = _top(image)
    f = image.astype(np.float32) / top
    kind = int(rng.integers(3))
    if kind == 0:
        f = f ** float(np.exp(rng.uniform(np.log(0.4), np.log(2.5))))
    elif kind == 1:
        f = f * float(rng.uniform(1.5, 4.0))
    else:
        photons = float(np.exp(rng.uniform(np.log(4.0), np.log(40.0))))
        f = rng.poisson(np.clip(f, 0, None) * photons).astype(np.float32) / photons * float(rng.uniform(0.2, 0.6))
        f += float(rng.uniform(0.0, 0.08))
    out = np.clip(f, 0.0, 1.0) * top
    return (np.rint(out) if np.issubdtype(image.dtype, np.integer) else out).astype(image.dtype)


def _well_one(job):
    """One cell-culture sample: a simulated well's Hoechst channel, zoomed; its magnification is
    the one at which its nuclei would have the model's reference size (``diameter = reference * m / M0``)."""
    import cv2

    from devolens.render.wells import simulate_well

    seed, ref, m0 = job
    rng = np.random.default_rng(seed)
    side = int(rng.integers(384, 1024))
    well = simulate_well(int(seed), size=(side, side))
    img = well.image[0]
    zoom = float(np.exp(rng.uniform(np.log(0.7), np.log(5.0))))
    img = cv2.resize(img, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR)
    if max(img.shape) > 1400:  # a camera field, not the whole well
        y0 = int(rng.integers(0, img.shape[0] - 1400 + 1)) if img.shape[0] > 1400 else 0
        x0 = int(rng.integers(0, img.shape[1] - 1400 + 1)) if img.shape[1] > 1400 else 0
        img = img[y0:y0 + 1400, x0:x0 + 1400]
    d = float(np.median(2 * np.sqrt(well.objects["area"] / np.pi))) * zoom
    return img, d * m0 / ref, -1 - int(seed) % 5, len(well.objects)


def render(args) -> None:
    if args.zoo:  # a staged zoo (scripts/zoo_refresh.sh): its network's features, its reference diameter
        from devolens.models import zoo

        zoo.use_folder(args.zoo)
    rng = np.random.default_rng(args.seed)
    if args.wells:  # cell-culture wells (groups -1..-5 for the leave-out folds)
        if args.kind != "nuclei":
            raise SystemExit("--wells: nuclei only (the wells are a nuclear stain)")
        from devolens.models.zoo import card

        ref = float(card("nuclei")["input"]["diameter"]["reference"])
        jobs = [(int(rng.integers(2**31)), ref, M0) for _ in range(args.n)]
        with ProcessPoolExecutor(args.workers) as ex:
            out = list(ex.map(_well_one, jobs, chunksize=2))
        names = ["wells"]
    else:
        tables = _tables(args.heldout, args.sims, args.seed)
        jobs = [(int(rng.integers(len(tables))), int(rng.integers(2**31)), args.kind, args.backdrop,
                 bool(args.crowd and rng.random() < args.crowd)) for _ in range(args.n)]
        with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(tables,)) as ex:
            out = list(ex.map(_render_one, jobs, chunksize=4))
        names = [str(t["embryo"].iloc[0]) if "embryo" in t.columns else f"e{i}" for i, t in enumerate(tables)]
    perturbed = [False] * len(out)
    crowded = [False] * len(out) if args.wells else [bool(j[4]) for j in jobs]  # render --crowd's fields
    if args.intensity > 0:  # extra copies under another camera/display setting (same magnification and group)
        prng = np.random.default_rng(args.seed + 7919)
        copied, extra = [], []
        for i, o in enumerate(out):  # one draw and its copy at a time (the fifteenth session's draws, byte for byte)
            if prng.random() < args.intensity:
                copied.append(i)
                extra.append((_with_intensity(o[0], prng),) + tuple(o[1:]))
        out, perturbed, crowded = out + extra, perturbed + [True] * len(extra), crowded + [crowded[i] for i in copied]
    mags, emb, cells = [o[1] for o in out], [o[2] for o in out], [o[3] for o in out]
    # the same samples featurized once per --flatten width, one npz each (--out paired with --flatten)
    for path, flatten in zip(args.out, args.flatten):
        feats, objects = _featurize([o[0] for o in out], args.kind, float(flatten))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, feats=feats, m=np.array(mags), embryo=np.array(emb), cells=np.array(cells),
                 names=np.array(names), objects=objects, kind=np.array(args.kind), flatten=np.array(float(flatten)),
                 perturbed=np.array(perturbed), intensity=np.array(float(args.intensity)), crowd=np.array(crowded))
        print(f"{len(out)} samples -> {path}")


def _featurize(images, kind="nuclei", flatten=0.0):
    """The size model's features (``sizing.style_features``) and the object count its gate reads
    (``sizing.count_objects``) of each image, from one preparation per image (background flattened with
    a disc ``flatten`` working px wide; 0: not flattened)."""
    from devolens.models import load
    from devolens.predict.sizing import _count, _features, _prepared

    pred = load(kind, precision="fp32")
    pred.size_flatten = float(flatten)
    feats, objects = [], []
    for img in images:
        arr = _prepared(pred, img)
        feats.append(_features(pred, arr))
        objects.append(_count(arr, pred.size_objects))
    return np.stack(feats), np.array(objects)


def _load(files, clean_only: bool = False):
    """Features, log magnifications, groups and crowded-field flags of the npz files; ``clean_only``: without the copies
    ``render --intensity`` added."""
    parts = [np.load(f) for f in files]
    X = np.concatenate([p["feats"] for p in parts])
    y = np.log(np.concatenate([p["m"] for p in parts]))
    g = np.concatenate([p["embryo"] for p in parts])
    # crowded fields (render --crowd) are in the wells' head and folds (their groups are negative): fields filled with
    # nuclei edge to edge, which the embryo head (one embryo in a field) would read as one magnified embryo
    crowd = np.concatenate([p["crowd"] if "crowd" in p else np.zeros(len(p["m"]), bool) for p in parts])
    if clean_only:
        keep = np.concatenate([~p["perturbed"] if "perturbed" in p else np.ones(len(p["m"]), bool) for p in parts])
        X, y, g, crowd = X[keep], y[keep], g[keep], crowd[keep]
    return X, y, g, crowd


def _errors(e: np.ndarray) -> dict:
    a = np.abs(e)
    return {"mean_abs_log": round(float(a.mean()), 4), "median_abs_log": round(float(np.median(a)), 4),
            "p90_abs_log": round(float(np.percentile(a, 90)), 4), "within_x1.25": round(float(np.mean(a < np.log(1.25))), 4),
            "n": int(len(a))}


class _Gated:
    """Two ridge heads (embryos: group >= 0; cultured cells: group < 0) and a logistic gate,
    on features standardised once: the model :class:`devolens.predict.sizing.SizeModel` runs.
    With ``three`` (fit's ``--crowd-head``) the crowded fields get a head of their own and the gate is
    multinomial over the three kinds."""

    def __init__(self, alpha: float, gate_c: float = 0.1, three: bool = False):
        self.alpha, self.gate_c, self.three = alpha, gate_c, three

    def fit(self, X, y, g, crowd=None):
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.preprocessing import StandardScaler

        from devolens.predict.sizing import SizeModel

        self.sc = StandardScaler().fit(X)
        z = self.sc.transform(X)
        emb = g >= 0
        if self.three and crowd is not None and crowd.any() and emb.any() and (~emb & ~crowd).any():
            kinds = [emb, ~emb & ~crowd, crowd]  # (a fold or a set without one of the three kinds: two heads below)
            heads = [Ridge(alpha=self.alpha).fit(z[m], y[m]) for m in kinds]
            label = np.select(kinds, [0, 1, 2])
            gate = LogisticRegression(C=self.gate_c, max_iter=4000).fit(z, label)
            self.model = SizeModel(
                self.sc.mean_, self.sc.scale_, np.stack([h.coef_ for h in heads]),
                np.array([h.intercept_ for h in heads]), M0, gate.coef_, gate.intercept_)
            return self
        heads = [Ridge(alpha=self.alpha).fit(z[m], y[m]) for m in (emb, ~emb) if m.any()]
        gate = LogisticRegression(C=self.gate_c, max_iter=2000).fit(z, emb) if len(heads) == 2 else None
        self.model = SizeModel(
            self.sc.mean_, self.sc.scale_, np.stack([h.coef_ for h in heads]), np.array([h.intercept_ for h in heads]),
            M0, None if gate is None else gate.coef_[0], 0.0 if gate is None else float(gate.intercept_[0]))
        return self

    def predict(self, X):
        return np.log(self.model.magnification(X))


def fit(args) -> None:
    """Two ridge heads and a gate; alpha by leave-one-embryo-out error (wells: 5 folds)."""
    if args.keep_from is not None and (args.keep == "none" or not 0 < args.keep_from < TRAIN_ZOOMS[1]):
        raise SystemExit("--keep-from needs a band (not --keep none)" if args.keep == "none" else
                         f"--keep-from {args.keep_from:g}: give a lower edge between 0 and {TRAIN_ZOOMS[1]:g}")
    X, y, g, crowd = _load(args.train, args.clean_only)
    widths = {float(np.load(f).get("flatten", 0.0)) for f in list(args.train) + list(args.heldout or [])}
    if len(widths) != 1:
        raise SystemExit(f"the npz files were featurized with different --flatten widths: {sorted(widths)}")
    flatten = widths.pop()
    best = None
    for alpha in (1.0, 3.0, 10.0, 30.0):
        err = np.zeros(len(y))
        for e in np.unique(g):
            tr, te = g != e, g == e
            err[te] = _Gated(alpha, three=args.crowd_head).fit(X[tr], y[tr], g[tr], crowd[tr]).predict(X[te]) - y[te]
        mae = float(np.mean(np.abs(err)))
        print(f"alpha {alpha}: leave-one-embryo-out mean |log error| {mae:.4f} (x{np.exp(mae):.3f})")
        if best is None or mae < best[1]:
            best = (alpha, mae, err)
    alpha, _, err = best
    emb = g >= 0
    loeo = {"embryos": _errors(err[emb])}
    if (~emb & ~crowd).any():
        loeo["wells"] = _errors(err[~emb & ~crowd])
    if crowd.any():  # the wells' head and folds, reported apart
        loeo["crowded fields"] = _errors(err[crowd])
    # the keep band: images whose estimate lies inside it are used as they are, the others mirrored into it
    # (at most to m0; every image to m0 without a band).
    # "train" (default): the network's training zooms; "q90": those widened by the 90th percentile of the
    # embryo error; "none": every image brought to m0. Chosen on development renders (benchmarks/RESULTS.md)
    q90 = float(np.percentile(np.abs(err[emb]), 90))
    band = [round(TRAIN_ZOOMS[0] * float(np.exp(-q90)), 3), round(TRAIN_ZOOMS[1] * float(np.exp(q90)), 3)]
    keep = {"train": list(TRAIN_ZOOMS), "q90": band, "none": None}[args.keep]
    if args.keep_from is not None:  # the lower edge chosen on development renders (checked in fit's first lines)
        keep = [float(args.keep_from), keep[1]]
    model = _Gated(alpha, three=args.crowd_head).fit(X, y, g, crowd).model
    report = {"alpha": alpha, "flatten": flatten, "loeo": loeo, "keep": keep, "q90_band": band, "m0": round(M0, 4), "samples": int(len(y))}
    if args.heldout:
        for f in args.heldout:
            d = np.load(f)
            est = np.log(model.magnification(d["feats"]))
            report.setdefault("heldout", {})[Path(f).stem] = _errors(est - np.log(d["m"]))
    print(json.dumps(report, indent=1))
    if args.to and args.role == "backdrop":
        _write_backdrop(args, model, flatten, alpha, loeo, report, len(y))
    elif args.to:
        folder = Path(args.to)
        model.save(folder / "size_model.safetensors")
        card_path = folder / "card.json"
        card = json.loads(card_path.read_text())
        kind = str(np.load(args.train[0]).get("kind", "nuclei"))
        what = ("projections (random pose, magnification 0.2-4, optics drawn per image)" if kind == "nuclei" else
                "membrane slices (random pose and slice, magnification 0.2-4, appearance drawn per image)")
        heads = ("three ridge regressions (alpha %g; embryos, cultured cells, crowded fields) weighed by a multinomial "
                 "gate" % alpha if np.atleast_2d(model.coef).shape[0] == 3 else
                 "two ridge regressions (alpha %g; embryos, cultured cells) weighed by a logistic gate" % alpha
                 if (~emb).any() else "a ridge regression (alpha %g)" % alpha)
        # a refit keeps the backdrop reader (a model of its own); the held-out F1 figures are re-measured after it
        # (card-metrics)
        backdrop = (card["input"]["diameter"].get("auto") or {}).get("backdrop")
        card["input"]["diameter"]["auto"] = {
            "file": "size_model.safetensors",
            "keep": keep,
            "trained": list(TRAIN_ZOOMS),
            "m0": round(M0, 4),
            "flatten": flatten,
            "how": ("cellpose-style size model: %s, from the encoder's two deepest stages averaged over the content "
                    "box and over its bright part, plus the log bright area, to the log magnification relative to "
                    "EPIC framing (%s); fitted on %d renders of the training embryos' %s%s; an image whose estimate "
                    "lies inside 'keep' (%s) is used as it is, any other is resized to its estimate mirrored into "
                    "the band, at most to m0, the middle of the network's training zooms 0.55-1.15 "
                    "(devolens.predict.sizing._target); command: %s"
                    % (heads, ("images background-flattened as the network's input (a disc %g working px wide)" % flatten
                               if flatten > 0 else "images not background-flattened"), len(y), what, (" and simulated culture wells (zoomed 0.7-5x)" if (~emb & ~crowd).any() else "") + (
                           " and crowded fields (2-9 embryos side by side at 0.2-1.6x)" if crowd.any() else ""),
                       ("%g-%g: its lower edge chosen on development renders, benchmarks/choose_keep_band.py"
                        % tuple(keep) if args.keep_from is not None else
                        {"train": "the training zooms", "q90": "the training zooms widened by the "
                         "90th percentile of the error", "none": "none: every image"}[args.keep]),
                       "python scripts/zoo_sizemodel.py fit " + " ".join(args.train) + f" --keep {args.keep}"
                       + ("" if args.keep_from is None else f" --keep-from {args.keep_from:g}")
                       + (" --crowd-head" if args.crowd_head else "")
                       + (" --clean-only" if args.clean_only else "")
                       + (" (render step: --flatten %g%s)" % (flatten, "".join(
                           sorted({" --intensity %g" % float(np.load(f)["intensity"]) for f in args.train
                                   if float(np.load(f).get("intensity", 0.0)) > 0})))))),
            "error_loeo": loeo,
            **({"error_heldout": report["heldout"]} if report.get("heldout") else {}),
            **({"backdrop": backdrop} if backdrop else {}),
        }
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from zoo_ship import write_card

        write_card(card, folder)
        print(f"-> {folder / 'size_model.safetensors'} and the card's input.diameter.auto")


def _write_backdrop(args, model, flatten: float, alpha: float, loeo: dict, report: dict, n: int) -> None:
    """Write the fitted model as the card's backdrop reader (``input.diameter.auto.backdrop``,
    :class:`devolens.predict.sizing.BackdropReader`), beside its first size model."""
    if flatten <= 0:
        raise SystemExit("--role backdrop needs samples featurized on flattened images (render --flatten W)")
    lo, hi = args.gate
    if not 0 <= lo < hi:
        raise SystemExit(f"--gate needs 0 <= lo < hi, got {lo} {hi}")
    folder = Path(args.to)
    card_path = folder / "card.json"
    card = json.loads(card_path.read_text())
    auto = card["input"]["diameter"].get("auto")
    if not auto:
        raise SystemExit(f"{card_path} has no input.diameter.auto: fit its first size model first")
    model.save(folder / "size_model_backdrop.safetensors")
    auto["backdrop"] = {
        "file": "size_model_backdrop.safetensors",
        "flatten": flatten,
        "gate": [lo, hi],
        "how": ("a second size model (the same features and heads, alpha %g) fitted on %d renders background-flattened "
                "with a disc %g working px wide; it reads images on a bright uneven backdrop, which mislead the first. "
                "Per image, the backdrop score s = mean |first model's input - the flattened input| (both "
                "percentile-normalised) gives it the weight clip((s - %g) / (%g - %g), 0, 1) in the log magnification "
                "(devolens.predict.sizing.BackdropReader; dark-background images: weight 0). Command: python "
                "scripts/zoo_sizemodel.py fit %s --role backdrop --gate %g %g"
                % (alpha, n, flatten, lo, hi, lo, " ".join(args.train), lo, hi)),
        "error_loeo": loeo,
        **({"error_heldout": report["heldout"]} if report.get("heldout") else {}),
    }
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from zoo_ship import write_card

    write_card(card, folder)
    print(f"-> {folder / 'size_model_backdrop.safetensors'} and the card's input.diameter.auto.backdrop")


def card_metrics(args) -> None:
    """Write the held-out F1 with and without ``diameter="auto"`` at several zooms into the card.

    Reads ``<kind>_{auto,none}_{zoom}.json`` from ``--eval`` (made by ``benchmarks/eval_zoo.py
    <kind> [--diameter auto] --zoom Z --json ...``; kind: the zoo folder's name, nuclei or membrane);
    ``none`` at zoom 1 is the card's own figure.
    """
    folder = Path(args.to)
    card = json.loads((folder / "card.json").read_text())
    kind = folder.name
    key = "instance_f1_iou50_heldout_le200" if kind == "nuclei" else "cell_f1_iou50_heldout"
    table = {}
    for mode in ("none", "auto"):
        for f in sorted(Path(args.eval).glob(f"{kind}_{mode}_*.json")):
            zoom = f.stem.rsplit("_", 1)[1]
            table.setdefault(f"zoom {zoom}", {})[mode] = json.loads(f.read_text())[key]["value"]
    if "zoom 1.0" in table:  # the card's own figure, in the arithmetic eval_zoo ran (int8 where the CPU has it)
        from devolens.models import load, zoo

        zoo.use_folder(folder.parent)  # the model in --to (a staged zoo's or the package's)
        int8 = load(kind).network.precision == "int8" and "int8" in card
        table["zoom 1.0"].setdefault("none", (card["int8"]["metrics"] if int8 else card["metrics"])[key]["value"])
    card["input"]["diameter"]["auto"]["heldout_f1"] = {
        "value": table,
        "how": "%s F1 at IoU 0.5 on the held-out renders%s resized by the zoom, with the diameter estimated "
               "per frame (auto) and without resizing (none), default precision; commands: python "
               "benchmarks/eval_zoo.py %s [--diameter auto] --zoom Z"
               % ("instance" if kind == "nuclei" else "cell", " (<= 200 cells)" if kind == "nuclei" else "", kind)}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from zoo_ship import write_card

    write_card(card, folder)
    print(json.dumps(table, indent=1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("--out", required=True, nargs="+", help="npz file(s): one per --flatten width")
    r.add_argument("--n", type=int, default=1000)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--sims", type=int, default=6)
    r.add_argument("--heldout", action="store_true")
    r.add_argument("--wells", action="store_true", help="simulated cell-culture wells instead of embryos")
    r.add_argument("--kind", choices=("nuclei", "membrane"), default="nuclei",
                   help="which model's size model: nuclei projections or membrane slices")
    r.add_argument("--workers", type=int, default=2)
    r.add_argument("--zoo", default=None, help="folder of model folders whose network featurizes the samples "
                                               "(default: the package zoo)")
    r.add_argument("--backdrop", type=float, default=0.0,
                   help="nuclei: this fraction of the embryo samples drawn on a smooth, uneven bright backdrop "
                        "(random low-frequency field and tilt, 5-50 %% of the bright level), so the size model learns "
                        "to read past out-of-focus haze")
    r.add_argument("--crowd", type=float, default=0.0,
                   help="this fraction of the embryo samples are crowded fields: 2-9 embryos side by side at one "
                        "magnification (0.2-1.6x; several embryos on a slide, a stitched mosaic), which a size model "
                        "fitted on fields of one embryo reads as one magnified embryo")
    r.add_argument("--intensity", type=float, default=0.0,
                   help="add, for this fraction of the samples, a copy under another gamma, a saturating gain or "
                        "few photons (marked 'perturbed' in the npz; fit --clean-only leaves them out)")
    r.add_argument("--flatten", type=float, nargs="+", default=[0.0],
                   help="background flattening of the size model's input: a disc this many working px wide (default 0: "
                        "none, as the shipped first size model; the nuclei network's own input uses 60); several "
                        "widths with as many --out files featurize the same samples once per width")
    f = sub.add_parser("fit")
    f.add_argument("train", nargs="+", help="npz files of the render step (training side)")
    f.add_argument("--heldout", nargs="*", help="npz files of held-out samples (figures only)")
    f.add_argument("--clean-only", action="store_true", help="leave out the copies of render --intensity")
    f.add_argument("--crowd-head", action="store_true",
                   help="crowded fields (render --crowd) get a head of their own and the gate is multinomial over "
                        "embryos, wells and crowded fields (default: they join the wells' head)")
    f.add_argument("--to", help="zoo folder: write size_model.safetensors and the card's input.diameter.auto")
    f.add_argument("--keep", choices=("train", "q90", "none"), default="train",
                   help="estimates left as they are: inside the network's training zooms (train), those widened by "
                        "the error's 90th percentile (q90), or none (every image brought to m0)")
    f.add_argument("--keep-from", type=float, default=None, metavar="LO",
                   help="the keep band's lower edge instead (its upper edge stays): chosen on development renders by "
                        "benchmarks/choose_keep_band.py; the card records the training zooms apart (auto.trained)")
    f.add_argument("--role", choices=("first", "backdrop"), default="first",
                   help="with --to: the card's size model (first), or its second one for images on a bright uneven "
                        "backdrop (backdrop: samples rendered with --flatten; written as input.diameter.auto.backdrop)")
    f.add_argument("--gate", type=float, nargs=2, default=(0.05, 0.15), metavar=("LO", "HI"),
                   help="--role backdrop: backdrop scores from which the second model starts to decide and decides alone")
    c = sub.add_parser("card", help="write held-out F1 with/without diameter auto into the card")
    c.add_argument("--eval", required=True, help="folder of eval_zoo JSON files nuclei_{auto,none}_{zoom}.json")
    c.add_argument("--to", required=True, help="zoo folder of the model (nuclei or membrane)")
    args = ap.parse_args(argv)
    if args.cmd == "render" and len(args.out) != len(args.flatten):
        ap.error(f"render: {len(args.out)} --out file(s) for {len(args.flatten)} --flatten width(s)")
    {"render": render, "fit": fit, "card": card_metrics}[args.cmd](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
