"""Training and leave-one-embryo-out evaluation of the identity model, and its kNN baseline.

Used by ``benchmarks/train_identity.py`` (recipe ``recipes/identity.yaml``). Splits are by
embryo, never by row: every time point of an embryo is either in training or in test.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from devolens.errors import DevolensError
from devolens.predict.identity import (
    N_FEATURES,
    IdentityPredictor,
    augment_cloud,
    identity_labels,
    pad_batch,
    point_features,
    prepare_clouds,
    split_logits,
    token_batches,
)

#: Default training configuration (overridden by the recipe).
DEFAULTS: dict[str, Any] = {
    "arch": "context_pointnet", "width": 128, "stages": 3, "heads": 4, "layers": 2, "rotation": 0.35, "mirror": False, "turn": 0.0,
    "epochs": 20, "clouds_per_epoch": 300, "max_tokens": 1536,
    "lr": 2e-3, "weight_decay": 1e-4, "label_smoothing": 0.05,
    "class_weight_power": 0.25, "ap_flip": 0.0, "tta": 1, "seed": 0,
}


def loeo_splits(embryos: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """Leave-one-embryo-out splits: yields ``(train_embryos, test_embryo)``.

    Parameters
    ----------
    embryos : sequence of str
        Distinct embryo names (duplicates are dropped, order kept).
    """
    names = list(dict.fromkeys(str(e) for e in embryos))
    if len(names) < 2:
        raise DevolensError("leave-one-embryo-out needs at least two embryos")
    for test in names:
        yield [e for e in names if e != test], test


def class_lists(tables: Sequence[pd.DataFrame]) -> tuple[list[str], list[str]]:
    """Founder and depth-1 classes present in the (named cells of the) tables, sorted."""
    cells = pd.concat([t["cell"] for t in tables], ignore_index=True)
    f = sorted(set(identity_labels(cells, 0).dropna()))
    d = sorted(set(identity_labels(cells, 1).dropna()))
    return f, d


def _labelled_clouds(table: pd.DataFrame, founders: list[str], depth1: list[str]) -> list[dict]:
    clouds = prepare_clouds(table)
    fi = {c: i for i, c in enumerate(founders)}
    di = {c: i for i, c in enumerate(depth1)}
    for c in clouds:
        names = pd.Series(c["cell"], dtype=object)
        c["y0"] = identity_labels(names, 0).map(fi).fillna(-1).to_numpy(np.int64)
        c["y1"] = identity_labels(names, 1).map(di).fillna(-1).to_numpy(np.int64)
    return clouds


def _class_weights(clouds: list[dict], key: str, n: int, power: float) -> torch.Tensor:
    counts = np.zeros(n)
    for c in clouds:
        y = c[key]
        np.add.at(counts, y[y >= 0], 1)
    w = np.where(counts > 0, (counts.max() / np.maximum(counts, 1)) ** power, 0.0)
    w = w / w[counts > 0].mean()
    return torch.tensor(w, dtype=torch.float32)


def train_identity(tables: Sequence[pd.DataFrame], config: dict[str, Any] | None = None,
                   classes: tuple[list[str], list[str]] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> IdentityPredictor:
    """Train the point-set identity model on some embryos.

    Parameters
    ----------
    tables : sequence of DataFrame
        Tidy tables (one or more embryos each; ``cell`` names are the labels; cells
        outside the Sulston scheme are inputs but not targets).
    config : dict, optional
        Overrides of :data:`DEFAULTS` (width, heads, layers, epochs, clouds_per_epoch,
        max_tokens, lr, weight_decay, label_smoothing, class_weight_power, ap_flip, rotation,
        mirror, turn, tta, seed).
    classes : (founders, depth1), optional
        Class lists; default those present in ``tables``.
    progress : callable, optional
        ``progress(done, total)`` over epochs.

    Returns
    -------
    IdentityPredictor
        The trained model wrapped for prediction (``predictor.architecture`` holds the
        config that :meth:`IdentityPredictor.from_zoo` rebuilds it from).
    """
    from devolens.models.identity_net import build_network

    cfg = {**DEFAULTS, **(config or {})}
    seed = int(cfg["seed"])
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    founders, depth1 = classes if classes is not None else class_lists(tables)
    per_embryo: list[list[dict]] = []
    for t in tables:
        clouds = _labelled_clouds(t, founders, depth1)
        by = {}
        for c in clouds:
            by.setdefault(c["embryo"], []).append(c)
        per_embryo.extend(by.values())
    if not per_embryo:
        raise DevolensError("no training data")
    all_clouds = [c for e in per_embryo for c in e]
    nf, nd = len(founders), len(depth1)
    w0 = _class_weights(all_clouds, "y0", nf, cfg["class_weight_power"])
    w1 = _class_weights(all_clouds, "y1", nd, cfg["class_weight_power"])

    if cfg["arch"] == "pointset":  # the engine's transformer
        net = {"kind": "pointset", "in_features": N_FEATURES, "classes": nf + nd, "width": cfg["width"],
               "heads": cfg["heads"], "layers": cfg["layers"]}
    elif cfg["arch"] == "context_pointnet":
        net = {"kind": "context_pointnet", "in_features": N_FEATURES, "classes": nf + nd, "width": cfg["width"],
               "stages": cfg["stages"]}
    else:
        raise DevolensError(f"unknown identity architecture {cfg['arch']!r} (context_pointnet or pointset)")
    model = build_network(net)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    epochs = int(cfg["epochs"])
    n_per = int(cfg["clouds_per_epoch"])
    # estimate steps for the schedule
    mean_n = np.mean([len(c["coords"]) for c in all_clouds])
    steps_per_epoch = max(1, int(math.ceil(n_per * mean_n * 1.3 / cfg["max_tokens"])))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=epochs * steps_per_epoch * 2 + 10,
                                                pct_start=0.15)
    for ep in range(epochs):
        # embryo-balanced sample of time points
        emb = rng.integers(0, len(per_embryo), size=n_per)
        picks = [per_embryo[e][rng.integers(0, len(per_embryo[e]))] for e in emb]
        samples = []
        for c in picks:
            xyz, s, keep = augment_cloud(c["coords"], c["size"], rng, ap_flip=cfg["ap_flip"], rotation=cfg["rotation"],
                                         mirror=cfg["mirror"], turn=cfg["turn"])
            samples.append((point_features(xyz, s), c["y0"][keep], c["y1"][keep]))
        for batch in token_batches([len(s[0]) for s in samples], cfg["max_tokens"]):
            x, m = pad_batch([samples[i][0] for i in batch])
            p = x.shape[1]
            y0 = torch.full((len(batch), p), -1, dtype=torch.long)
            y1 = torch.full((len(batch), p), -1, dtype=torch.long)
            for j, i in enumerate(batch):
                n = len(samples[i][1])
                y0[j, :n] = torch.from_numpy(samples[i][1])
                y1[j, :n] = torch.from_numpy(samples[i][2])
            logits = model(x, m)
            lf, ld = split_logits(logits, nf)
            loss = F.cross_entropy(lf.reshape(-1, nf), y0.reshape(-1), weight=w0, ignore_index=-1,
                                   label_smoothing=cfg["label_smoothing"])
            loss = loss + F.cross_entropy(ld.reshape(-1, nd), y1.reshape(-1), weight=w1, ignore_index=-1,
                                          label_smoothing=cfg["label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if sched.last_epoch + 1 < sched.total_steps:
                sched.step()
        if progress is not None:
            progress(ep + 1, epochs)
    model.eval()
    pred = IdentityPredictor(model, founders, depth1, tta=cfg["tta"])
    pred.architecture = {
        "network": dict(model.devolens_config), "founders": founders, "depth1": depth1,
        "tta": int(cfg["tta"]), "features": N_FEATURES,
    }
    return pred


# ----------------------------------------------------------------------------- kNN baseline
def knn_features(table: pd.DataFrame) -> np.ndarray:
    """kNN baseline features: PCA-aligned x, y, z (embryo frame) and log cell count."""
    clouds = prepare_clouds(table)
    out = np.zeros((len(table), 4))
    for c in clouds:
        n = len(c["coords"])
        out[c["index"], :3] = c["coords"]
        out[c["index"], 3] = np.log(n) / 2.0
    return out


def knn_baseline(train: Sequence[pd.DataFrame], test: pd.DataFrame, k: int = 5
                 ) -> tuple[np.ndarray, np.ndarray]:
    """k-nearest-neighbour identities on PCA-aligned coordinates (the baseline).

    Parameters
    ----------
    train : sequence of DataFrame
        Tidy tables with cell names (unnamed cells are skipped).
    test : DataFrame
        Tidy table to name.
    k : int
        Neighbours.

    Returns
    -------
    (founder, depth1) : ndarray of str
        Predicted classes of every row of ``test``.
    """
    from sklearn.neighbors import KNeighborsClassifier

    xs, y0, y1 = [], [], []
    for t in train:
        f = knn_features(t)
        l0 = identity_labels(t["cell"], 0)
        l1 = identity_labels(t["cell"], 1)
        ok = l0.notna().to_numpy()
        xs.append(f[ok])
        y0.append(l0[ok].to_numpy(dtype=object))
        y1.append(l1[ok].to_numpy(dtype=object))
    x = np.concatenate(xs)
    ft = knn_features(test)
    res = []
    for y in (np.concatenate(y0), np.concatenate(y1)):
        clf = KNeighborsClassifier(n_neighbors=k).fit(x, y.astype(str))
        res.append(clf.predict(ft))
    return res[0], res[1]
