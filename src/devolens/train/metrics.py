"""Evaluation metrics: one implementation each (DESIGN.md, "Metrics").

- semantic IoU and Dice per class (from a confusion matrix, accumulable over images);
- instance precision, recall and F1 at IoU > 0.5 with one-to-one matching (a match at
  IoU > 0.5 is unique, since two objects cannot both overlap one object by more than half,
  so greedy matching equals Hungarian matching; below 0.5 the Hungarian matching is used);
- PR-AUC (average precision) per class from score histograms (accumulable; resolution
  1/bins in score: scores within 1/bins tie, so a confident model whose scores crowd near 1
  reads a little lower than scikit-learn's ``average_precision_score`` on the raw scores, by
  about 0.005 on the livedead model's wells);
- count error (objects per image), population MAE per letter;
- accuracy and macro-F1 for cell identities.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from devolens.errors import DevolensError, DevolensValueError


# ----------------------------------------------------------------------------- semantic
def confusion_matrix(pred: np.ndarray, true: np.ndarray, classes: int) -> np.ndarray:
    """Pixel confusion matrix ``cm[true, pred]`` (int64, classes x classes).

    Parameters
    ----------
    pred, true : ndarray
        Integer class-id arrays of the same shape (any number of images).
    classes : int
        Number of classes (2 for binary masks).
    """
    pred = np.asarray(pred).ravel().astype(np.int64)
    true = np.asarray(true).ravel().astype(np.int64)
    if pred.shape != true.shape:
        raise DevolensError(f"prediction and truth differ in size: {pred.shape} vs {true.shape}")
    ok = (true >= 0) & (true < classes) & (pred >= 0) & (pred < classes)
    return np.bincount(true[ok] * classes + pred[ok], minlength=classes * classes).reshape(classes, classes)


def iou_dice(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class IoU and Dice from a confusion matrix (NaN for a class absent from both).

    Returns
    -------
    dict with ``iou`` and ``dice`` arrays (classes,), each in [0, 1].
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
        dice = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return {"iou": iou, "dice": dice}


def semantic_scores(pred: np.ndarray, true: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    """Per-class IoU and Dice of class-id maps (see :func:`iou_dice`)."""
    return iou_dice(confusion_matrix(pred, true, classes))


# ----------------------------------------------------------------------------- instances
def match_instances(pred: np.ndarray, true: np.ndarray, threshold: float = 0.5,
                    ignore: Iterable[int] | None = None) -> dict[str, object]:
    """One-to-one matching of predicted and true instances at IoU > ``threshold``.

    Parameters
    ----------
    pred, true : ndarray
        Instance label images (0 = background), same shape.
    threshold : float
        IoU a pair must exceed to match. From 0.5 up a match is unique (two objects cannot both
        overlap one object by more than half) and the pairs are taken by decreasing IoU; below 0.5
        an object may overlap several by that much, and the optimal (Hungarian) matching is used:
        the most pairs, then the largest sum of their IoUs (:func:`scipy.optimize.linear_sum_assignment`
        on each connected group of candidate pairs).
    ignore : iterable of int, optional
        True labels that are neither required nor penalised (e.g. nuclei mostly hidden
        behind nearer ones in a projection): they take part in the matching, but a match
        to one is not a true positive, missing one is not a false negative, and a
        prediction matched to one, or lying mostly (>= half its pixels) on ignored objects,
        is not a false positive (as COCO's "ignore" regions).

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn`` (ints), ``pairs`` (array (tp, 2) of matched pred/true
        labels, ignored objects left out) and ``iou`` (their IoUs).
    """
    pred = np.asarray(pred).ravel().astype(np.int64)
    true = np.asarray(true).ravel().astype(np.int64)
    if pred.shape != true.shape:
        raise DevolensError(f"prediction and truth differ in size: {pred.shape} vs {true.shape}")
    p_ids, p_inv = np.unique(pred, return_inverse=True)
    t_ids, t_inv = np.unique(true, return_inverse=True)
    n_p, n_t = len(p_ids), len(t_ids)
    pf, tf = p_ids != 0, t_ids != 0
    p_lab, t_lab = p_ids[pf], t_ids[tf]
    if n_p * n_t <= DENSE_PAIRS:
        inter = np.bincount(p_inv * n_t + t_inv, minlength=n_p * n_t).reshape(n_p, n_t).astype(np.float64)
        area_p, area_t = inter.sum(1), inter.sum(0)
        inter, area_p, area_t = inter[pf][:, tf], area_p[pf], area_t[tf]
        union = area_p[:, None] + area_t[None, :] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, inter / union, 0.0)
        cand = np.argwhere(iou > threshold)
        cand_iou = iou[cand[:, 0], cand[:, 1]]
        on_pair = None
    else:  # a giant image (tens of thousands of objects): the overlapping pairs only, not every pair
        cand, cand_iou, on_pair, area_p = _sparse_pairs(p_inv, t_inv, n_p, n_t, pf, tf, threshold)
    if threshold < 0.5 and len(cand):  # several candidates per object: the optimal matching
        chosen = _optimal_pairs(cand, cand_iou)
    else:  # greedy by decreasing IoU: unique and optimal for threshold >= 0.5
        chosen = _greedy_pairs(cand, cand_iou)
    pairs = [(p_lab[cand[k][0]], t_lab[cand[k][1]]) for k in chosen]
    ious = [cand_iou[k] for k in chosen]
    pairs_a = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    ious_a = np.array(ious)
    ign = np.isin(t_lab, np.fromiter(ignore, dtype=np.int64)) if ignore is not None else np.zeros(len(t_lab), bool)
    if not ign.any():
        tp = len(pairs)
        return {"tp": tp, "fp": int(len(p_lab) - tp), "fn": int(len(t_lab) - tp), "pairs": pairs_a, "iou": ious_a}
    keep = ~np.isin(pairs_a[:, 1], t_lab[ign])
    matched_p = set(pairs_a[:, 0].tolist())
    if on_pair is None:
        on_ign = inter[:, ign].sum(1)
    else:  # pixels of each prediction on ignored objects, from the overlapping pairs
        i, j, counts = on_pair
        sel = ign[j]
        on_ign = np.bincount(i[sel], weights=counts[sel], minlength=len(p_lab))
    on_ignored = on_ign >= IGNORED_SHARE * np.maximum(area_p, 1)
    fp = sum(1 for i, lab in enumerate(p_lab) if lab not in matched_p and not on_ignored[i])
    tp = int(keep.sum())
    return {"tp": tp, "fp": int(fp), "fn": int((~ign).sum() - tp), "pairs": pairs_a[keep], "iou": ious_a[keep]}


#: the share of an object's pixels on ignored pixels from which it is left out (neither found nor a false detection)
IGNORED_SHARE = 0.5

#: prediction x truth label pairs up to which the overlaps are counted in one dense table (32 MB)
DENSE_PAIRS = 2**22


def _greedy_pairs(cand: np.ndarray, cand_iou: np.ndarray) -> list[int]:
    """Indices into ``cand`` (candidate (prediction, truth) pairs) taken one to one by decreasing IoU."""
    order = np.argsort(-cand_iou, kind="stable") if len(cand) else np.array([], int)
    used_p, used_t, chosen = set(), set(), []
    for k in order:
        i, j = cand[k]
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        chosen.append(int(k))
    return chosen


def _optimal_pairs(cand: np.ndarray, cand_iou: np.ndarray) -> list[int]:
    """Indices into ``cand`` of a one-to-one matching with the most pairs and, among those, the largest sum of
    IoUs: a linear assignment on each connected group of candidate pairs. A group is small where objects are apart,
    but at a threshold far below 0.5 in touching (confluent) objects every object links to its neighbours and one
    group holds them all: a dense table of its size squared (4900 touching objects at IoU 0.05: ~1 s, ~400 MB)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, ri = np.unique(cand[:, 0], return_inverse=True)
    cols, ci = np.unique(cand[:, 1], return_inverse=True)
    nr, nc = len(rows), len(cols)
    graph = coo_matrix((np.ones(len(cand)), (ri, nr + ci)), shape=(nr + nc, nr + nc))
    _, comp = connected_components(graph, directed=False)
    group_of = comp[ri]
    order = np.argsort(group_of, kind="stable")
    chosen: list[int] = []
    for group in np.split(order, np.flatnonzero(np.diff(group_of[order])) + 1):
        if len(group) == 1:
            chosen.append(int(group[0]))
            continue
        r_u, r_i = np.unique(ri[group], return_inverse=True)
        c_u, c_i = np.unique(ci[group], return_inverse=True)
        # each pair weighs more than the IoUs of all pairs together: the most pairs first, then the IoU
        big = float(min(len(r_u), len(c_u)) + 1)
        weight = np.zeros((len(r_u), len(c_u)))
        weight[r_i, c_i] = big + cand_iou[group]
        index = np.full((len(r_u), len(c_u)), -1, np.int64)
        index[r_i, c_i] = group
        a, b = linear_sum_assignment(weight, maximize=True)
        chosen += [int(index[x, y]) for x, y in zip(a, b) if index[x, y] >= 0]
    return sorted(chosen, key=lambda k: -cand_iou[k])


def _sparse_pairs(p_inv, t_inv, n_p, n_t, pf, tf, threshold):
    """The overlapping (prediction, truth) pairs of :func:`match_instances` without the dense table:
    candidates ``(i, j)`` with IoU above ``threshold`` (indices among the non-background labels, in
    the dense table's row-major order), their IoUs, every overlapping pair ``(i, j, pixels)`` and the
    predictions' areas."""
    area_p = np.bincount(p_inv, minlength=n_p).astype(np.float64)
    area_t = np.bincount(t_inv, minlength=n_t).astype(np.float64)
    both = pf[p_inv] & tf[t_inv]
    codes, counts = np.unique(p_inv[both] * n_t + t_inv[both], return_counts=True)  # sorted: row-major
    pi, ti = codes // n_t, codes % n_t
    inter = counts.astype(np.float64)
    union = area_p[pi] + area_t[ti] - inter
    iou = inter / union
    # indices among the non-background labels (the dense table's rows and columns)
    p_index, t_index = np.cumsum(pf) - 1, np.cumsum(tf) - 1
    i, j = p_index[pi], t_index[ti]
    hit = iou > threshold
    return np.stack([i[hit], j[hit]], axis=1), iou[hit], (i, j, inter), area_p[pf]


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (1.0 when there is nothing to find or find)."""
    precision = tp / (tp + fp) if tp + fp else 1.0 if fn == 0 else 0.0
    recall = tp / (tp + fn) if tp + fn else 1.0 if fp == 0 else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 1.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def instance_scores(pred: np.ndarray, true: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Instance precision, recall and F1 at IoU > ``threshold`` (plus tp, fp, fn counts), from the one-to-one
    matching of :func:`match_instances` (optimal also below 0.5)."""
    m = match_instances(pred, true, threshold)
    return {**prf(m["tp"], m["fp"], m["fn"]), "tp": m["tp"], "fp": m["fp"], "fn": m["fn"]}


# ----------------------------------------------------------------------------- PR-AUC
def score_histograms(scores: np.ndarray, positive: np.ndarray, bins: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Histograms of scores in [0, 1] for positives and negatives (for :func:`ap_from_histograms`).

    Parameters
    ----------
    scores : ndarray
        Predicted probabilities (clipped to [0, 1]); NaN is refused.
    positive : ndarray
        True where the pixel/object belongs to the class (same number of elements).
    bins : int
        Bins over [0, 1]: scores within 1/bins tie (see :func:`ap_from_histograms`).

    Raises
    ------
    DevolensValueError
        Where a score is NaN (a ValueError, as before).
    """
    s = np.clip(np.asarray(scores, dtype=np.float64).ravel(), 0, 1)
    bad = int(np.isnan(s).sum())
    if bad:
        raise DevolensValueError(f"{bad} of {s.size} scores are NaN: give finite probabilities (a network that "
                                 "diverged, or NaN pixels in its input?)")
    y = np.asarray(positive).ravel().astype(bool)
    idx = np.minimum((s * bins).astype(np.int64), bins - 1)
    pos = np.bincount(idx[y], minlength=bins)
    neg = np.bincount(idx[~y], minlength=bins)
    return pos, neg


def ap_from_histograms(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision (area under the step PR curve) from score histograms.

    Thresholds run from the highest bin down; AP = sum over thresholds of
    (recall gain) x precision. NaN when there is no positive. Scores within one bin tie, so
    this equals scikit-learn's ``average_precision_score`` on scores rounded down to the bins;
    on the raw scores of a confident model (most positives above 0.999) scikit-learn's figure
    is a little higher (about 0.005 with 1000 bins on the livedead model's wells).
    """
    pos = np.asarray(pos, dtype=np.float64)[::-1]
    neg = np.asarray(neg, dtype=np.float64)[::-1]
    n_pos = pos.sum()
    if n_pos <= 0:
        return float("nan")
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    keep = pos > 0
    precision = tp / np.maximum(tp + fp, 1)
    recall_gain = pos / n_pos
    return float((recall_gain[keep] * precision[keep]).sum())


def average_precision(scores: np.ndarray, positive: np.ndarray, bins: int = 1000) -> float:
    """PR-AUC (average precision) of scores in [0, 1] against a boolean truth.

    Parameters
    ----------
    scores : ndarray
        Predicted probabilities of the class (any shape).
    positive : ndarray
        True where the pixel/object belongs to the class (same shape).
    bins : int
        Score resolution (scores within 1/bins are tied).
    """
    return ap_from_histograms(*score_histograms(scores, positive, bins))


# ----------------------------------------------------------------------------- counts
def count_error(pred: Sequence[float], true: Sequence[float]) -> dict[str, float]:
    """Errors of predicted object counts per image.

    Returns
    -------
    dict
        ``mae`` (mean |pred - true|, objects), ``bias`` (mean pred - true),
        ``relative`` (mean |pred - true| / max(true, 1)).
    """
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if p.shape != t.shape:
        raise DevolensError(f"predicted and true counts differ in shape: {p.shape} vs {t.shape}")
    if p.size == 0:
        return {"mae": float("nan"), "bias": float("nan"), "relative": float("nan")}
    d = p - t
    return {"mae": float(np.abs(d).mean()), "bias": float(d.mean()),
            "relative": float((np.abs(d) / np.maximum(np.abs(t), 1)).mean())}


def population_mae(pred: np.ndarray, true: np.ndarray, letters: Sequence[str]) -> dict[str, float]:
    """Mean absolute error per population letter (cells).

    Parameters
    ----------
    pred, true : array (N, K)
        Counts per image and letter.
    letters : sequence of str
        Names of the K columns (e.g. A, E, M, P, C, D, Z, total).
    """
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    p, t = p.reshape(len(p), -1), t.reshape(len(t), -1)
    if p.shape != t.shape or p.shape[1] != len(letters):
        raise DevolensError(f"counts {p.shape} / {t.shape} do not match {len(letters)} letters")
    return {str(k): (float(np.abs(p[:, i] - t[:, i]).mean()) if len(p) else float("nan")) for i, k in enumerate(letters)}


# ----------------------------------------------------------------------------- identities
def identity_scores(pred: Sequence, true: Sequence, labels: Sequence | None = None) -> dict[str, float]:
    """Accuracy and macro-F1 of identity (class) predictions.

    Macro-F1 averages the per-class F1 over ``labels`` (default: classes present in
    ``true`` or named in ``pred``), so rare identities weigh as much as common ones.

    A missing prediction (None or NaN: a cell the predictor gave no name) counts as a wrong
    one: it lowers the accuracy and its true class's recall, and is no class of its own.
    The truth must name every cell (score the named cells only).

    Raises
    ------
    DevolensValueError
        Where ``true`` holds None or NaN.
    """
    import pandas as pd

    p, t = np.asarray(pred), np.asarray(true)
    if p.shape != t.shape:
        raise DevolensError(f"predictions and truth differ in shape: {p.shape} vs {t.shape}")
    if p.size == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan")}
    unnamed = int(np.sum(pd.isna(t)))
    if unnamed:
        raise DevolensValueError(f"{unnamed} of {t.size} true identities are missing (None or NaN): score the named "
                                 "cells only")
    missing = np.asarray(pd.isna(p), dtype=bool)
    if missing.any():  # no class of their own; `p == c` is False for them, so each is a miss of its true class
        p = p.astype(object)
        p[missing] = None
    labels = np.unique(np.concatenate([p[~missing], t])) if labels is None else np.asarray(labels)
    f1s = []
    for c in labels:
        tp = int(np.sum((p == c) & (t == c)))
        fp = int(np.sum((p == c) & (t != c)))
        fn = int(np.sum((p != c) & (t == c)))
        f1s.append(prf(tp, fp, fn)["f1"])
    return {"accuracy": float(np.mean(p == t)), "macro_f1": float(np.mean(f1s))}
