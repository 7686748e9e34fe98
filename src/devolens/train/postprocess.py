"""Turning network outputs into masks and instances (used for validation metrics)."""

from __future__ import annotations

import numpy as np


def probabilities_to_classes(prob: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Class map from probabilities ``(C, H, W)``: binary (C == 1) by ``threshold``, else argmax."""
    prob = np.asarray(prob)
    if prob.shape[0] == 1:
        return (prob[0] > threshold).astype(np.int64)
    return prob.argmax(0).astype(np.int64)


def instances_from_classes(classes: np.ndarray, target: str = "semantic", min_area: int = 4) -> np.ndarray:
    """Instance labels (int32, 0 = background) from a class map.

    Parameters
    ----------
    classes : ndarray (H, W)
        ``semantic``: 0/1 foreground; ``boundary``: 0 background, 1 interior, 2 boundary;
        ``classes``: class ids (each connected component of a non-zero class is one object).
    target : str
        How ``classes`` was made (see :func:`devolens.data.datasets.labels_to_target`).
    min_area : int
        Objects smaller than this many pixels are dropped.
    """
    from skimage.measure import label
    from skimage.segmentation import expand_labels

    c = np.asarray(classes)
    if target == "boundary":
        seeds = label(c == 1, connectivity=1)
        grown = expand_labels(seeds, distance=3)
        lab = np.where(c > 0, grown, 0)
    elif target == "classes":
        lab = np.zeros(c.shape, np.int64)
        offset = 0
        for k in np.unique(c[c > 0]):
            part = label(c == k, connectivity=1)
            lab[part > 0] = part[part > 0] + offset
            offset = lab.max()
    else:
        lab = label(c > 0, connectivity=1)
    if min_area > 1 and lab.max() > 0:
        areas = np.bincount(lab.ravel())
        small = areas < min_area
        small[0] = False
        lab[small[lab]] = 0
    return lab.astype(np.int32)
