"""Losses. Every loss returns one value per sample (shape ``(N,)``) so the trainer can
record per-sample losses; the loss the optimiser minimises is :func:`batch_loss` of them (their mean weighted by
each sample's pixels that count: the mean over the batch's pixels, whatever share of each sample is ignored), and
the training and validation losses of a run's ``history.csv`` are :func:`pixel_mean` of an epoch's or a validation
set's (the same quantity over all their samples' counted pixels).

Segmentation losses take logits ``(N, C, H, W)`` and integer targets ``(N, H, W)``; with
``C == 1`` the task is binary (sigmoid, BCE), otherwise multi-class (softmax, CE). A negative target
(:data:`devolens.data.datasets.IGNORE_INDEX`, where a mask paints its 'ignore' value, and the padding of a
sample to the network's multiple or to its batch's largest image) is no class: its pixels are left out of every segmentation loss (a sample's loss is its mean over the other pixels; 0 for a
sample with none, as nnU-Net's and cellpose's ignore label).
Regression losses take predicted and true counts ``(N, K)`` (cells).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from devolens.errors import DevolensError

SEG_LOSSES = ("bce", "ce", "dice", "focal", "bce_dice", "ce_dice", "focal_dice")
REG_LOSSES = ("mse", "huber", "poisson")
WEIGHT_METHODS = ("median_frequency", "inverse_sqrt", "inverse")


# ----------------------------------------------------------------------------- class weights
def class_frequencies(targets: Iterable[np.ndarray], classes: int) -> np.ndarray:
    """Fraction of pixels per class over an iterable of integer target images.

    Parameters
    ----------
    targets : iterable of ndarray
        Integer class-id images (0..classes-1).
    classes : int
        Number of classes (2 for a binary mask).

    Returns
    -------
    ndarray (classes,)
        Pixel frequencies, summing to 1.
    """
    counts = np.zeros(int(classes), dtype=np.float64)
    for t in targets:
        t = np.asarray(t).ravel()
        counts += np.bincount(t[(t >= 0) & (t < classes)].astype(np.int64), minlength=classes)[:classes]
    total = counts.sum()
    if total <= 0:
        raise DevolensError("cannot compute class weights: no labelled pixels")
    return counts / total


def class_weights(frequencies: Sequence[float], method: str = "median_frequency") -> np.ndarray:
    """Class weights from class frequencies.

    Parameters
    ----------
    frequencies : sequence of float
        Fraction of pixels (or samples) per class.
    method : {"median_frequency", "inverse_sqrt", "inverse"}
        ``median_frequency``: ``w_c = median(f) / f_c`` (Eigen & Fergus 2015; the median
        over classes present); ``inverse_sqrt``: ``w_c = 1 / sqrt(f_c)``, rescaled so the
        weights average 1 over the present classes; ``inverse``: ``w_c = 1 / f_c``, rescaled
        likewise. Classes absent from the data (f = 0) get weight 1.

    Returns
    -------
    ndarray (classes,)
    """
    f = np.asarray(frequencies, dtype=np.float64)
    if f.ndim != 1 or len(f) < 2 or np.any(f < 0):
        raise DevolensError(f"class frequencies must be >= 0, one per class (>= 2 classes), got {f.tolist()}")
    present = f > 0
    if not present.any():
        raise DevolensError("cannot compute class weights: every class frequency is 0")
    w = np.ones_like(f)
    if method == "median_frequency":
        w[present] = np.median(f[present]) / f[present]
    elif method == "inverse_sqrt":
        w[present] = 1.0 / np.sqrt(f[present])
        w[present] /= w[present].mean()
    elif method == "inverse":
        w[present] = 1.0 / f[present]
        w[present] /= w[present].mean()
    else:
        raise DevolensError(f"unknown class-weight method {method!r}; choose one of {', '.join(WEIGHT_METHODS)}")
    return w


# ----------------------------------------------------------------------------- pixel losses
def known(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(classes, valid)`` of a segmentation target: the class ids with the ignored pixels (negative,
    :data:`devolens.data.datasets.IGNORE_INDEX`) set to 0, so they index like any class, and a float mask
    (same shape) of the pixels that count, 1 where the target is a class and 0 where it is ignored.

    Parameters
    ----------
    target : torch.Tensor
        Integer class ids ``(N, H, W)``, negative where ignored.

    Returns
    -------
    tuple of torch.Tensor
        ``(N, H, W)`` int64 class ids and ``(N, H, W)`` float32 weights (0 or 1).
    """
    t = target.long()
    valid = t >= 0
    return t.clamp_min(0), valid.float()


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-sample mean of ``x`` (``(N, ...)``) over the pixels where ``valid`` (same shape, 0 or 1) is 1: ``(N,)``;
    0 for a sample with no such pixel (all ignored)."""
    x = (x * valid).reshape(x.shape[0], -1)
    count = valid.reshape(valid.shape[0], -1).sum(dim=1)
    return x.sum(dim=1) / count.clamp_min(1)


def counted(target: torch.Tensor) -> torch.Tensor | None:
    """Each sample's pixels that count in a batch's segmentation targets (non-negative: :func:`known`), what
    :func:`batch_loss` and :func:`pixel_mean` weigh its loss by; None for the counts of a regression task
    (floating point, ``(N, K)``), whose samples weigh alike.

    Parameters
    ----------
    target : torch.Tensor
        Integer class ids ``(N, H, W)``, negative where ignored (or padded); or a regression task's counts.

    Returns
    -------
    torch.Tensor or None
        ``(N,)`` int64 pixel counts, on the target's device (no wait for it).
    """
    if target.is_floating_point() or target.ndim < 3:
        return None
    return (target >= 0).reshape(target.shape[0], -1).sum(dim=1)


def pixel_mean(losses: Sequence[float] | np.ndarray, counts: Sequence[float] | np.ndarray | None = None) -> float:
    """The mean over pixels of per-sample losses gathered over many batches (an epoch's training samples, a
    validation set): each sample's loss weighted by its pixels that count (:func:`counted`), so that it is the
    quantity :func:`batch_loss` is for one batch (the mean over the counted pixels of all of them) and does not
    depend on how the samples were batched. Where every sample counts as many pixels (one size, nothing ignored)
    and for ``counts`` None (a regression task), the plain mean of the losses (``np.mean``, bit for bit).

    Parameters
    ----------
    losses : array-like
        Per-sample losses, each on its own pixels.
    counts : array-like, optional
        Each sample's counted pixels (same length); None: the samples weigh alike.

    Returns
    -------
    float
        The mean (nan for no sample; 0.0 where no sample counts a pixel, as :func:`batch_loss`).
    """
    values = np.asarray(losses, dtype=np.float64).ravel()
    if not values.size:
        return float("nan")
    if counts is None:
        return float(np.mean(values))
    weights = np.asarray(counts, dtype=np.float64).ravel()
    if weights.shape != values.shape:
        raise ValueError(f"{values.size} losses but {weights.size} pixel counts")
    if (weights == weights[0]).all():
        return float(np.mean(values))
    return float((values * weights).sum() / max(weights.sum(), 1.0))


_NOT_GIVEN = object()


def batch_loss(per: torch.Tensor, target: torch.Tensor, counts=_NOT_GIVEN) -> torch.Tensor:
    """The loss the optimiser minimises for a batch: its per-sample losses ``per`` (``(N,)``) averaged with each
    sample weighted by its pixels that count (a segmentation target's non-negative ones, :func:`known`).

    A pixel loss (BCE, CE, focal, the distance head's L1) is then the mean over the batch's counted pixels (their
    losses' sum over their count, as nnU-Net and PyTorch's ``ignore_index`` average), not the mean of the samples'
    means: a sample mostly ignored (or padded, :func:`devolens.data.datasets.pad_collate`) no longer gives its few
    pixels the weight of a whole sample, and one with none counts nothing. A sample's soft Dice (on its own counted
    pixels: :func:`dice_loss`) weighs likewise by its share of the batch's counted pixels (no Dice pooled over the
    batch). Where every sample counts as many pixels (no ignored pixel, one size), the result is ``per.mean()``
    bit for bit, its gradient included.

    Parameters
    ----------
    per : torch.Tensor
        Per-sample losses ``(N,)`` (a loss of :func:`build_loss`).
    target : torch.Tensor
        The batch's targets: integer class ids ``(N, H, W)``, negative where ignored; counts (floating point,
        ``(N, K)``) of a regression task, whose samples weigh alike.
    counts : torch.Tensor or None, optional
        :func:`counted` of ``target`` where the caller has it already (the training loop keeps it per step).

    Returns
    -------
    torch.Tensor
        The scalar loss.
    """
    if counts is _NOT_GIVEN:
        counts = counted(target)  # int64: exact
    if counts is None or counts.shape[0] != per.shape[0] or not per.numel():
        return per.mean()
    share = counts.to(per.dtype) / counts.sum().clamp_min(1).to(per.dtype)
    # chosen on the device (no wait for it): the plain mean where the samples count alike, as before
    return torch.where((counts == counts[0]).all(), per.mean(), (per * share).sum())


def _pixel_weights(target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor | None:
    if weights is None:
        return None
    return weights.to(target.device)[target.long()]


def bce_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy per sample; ``weights`` = (w_background, w_foreground). Ignored pixels (a negative
    target) are left out (:func:`known`)."""
    t, valid = known(target)
    lp = logits[:, 0] if logits.ndim == 4 else logits
    pix = F.binary_cross_entropy_with_logits(lp.float(), t.float(), reduction="none")
    w = _pixel_weights(t, weights)
    if w is not None:
        pix = pix * w
    return masked_mean(pix, valid)


def ce_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy per sample (binary BCE when ``logits`` has one channel); ignored pixels (a negative target)
    are left out (:func:`known`)."""
    if logits.shape[1] == 1:
        return bce_loss(logits, target, weights)
    t, valid = known(target)
    pix = F.cross_entropy(logits.float(), t, reduction="none")
    w = _pixel_weights(t, weights)
    if w is not None:
        pix = pix * w
    return masked_mean(pix, valid)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
               gamma: float = 2.0) -> torch.Tensor:
    """Focal loss per sample: ``-w_c (1 - p_t)^gamma log p_t`` averaged over pixels (ignored ones, a negative
    target, left out: :func:`known`)."""
    logits = logits.float()
    t, valid = known(target)
    if logits.shape[1] == 1:
        lp = logits[:, 0]
        logp_t = -F.binary_cross_entropy_with_logits(lp, t.float(), reduction="none")
    else:
        logp = F.log_softmax(logits, dim=1)
        logp_t = logp.gather(1, t[:, None])[:, 0]
    p_t = logp_t.exp()
    pix = -((1 - p_t).clamp_min(0) ** float(gamma)) * logp_t
    w = _pixel_weights(t, weights)
    if w is not None:
        pix = pix * w
    return masked_mean(pix, valid)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss per sample, ``1 - mean_c dice_c`` over foreground classes.

    Binary (one channel): the foreground Dice. Multi-class: softmax, mean over classes
    1..C-1 (background excluded). ``eps`` (pixels) smooths empty masks: an empty
    prediction of an empty mask scores Dice 1. Ignored pixels (a negative target,
    :func:`known`) count in neither the prediction's nor the truth's sums.
    """
    logits = logits.float()
    t, valid = known(target)
    valid = valid[:, None]
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits) * valid
        y = t.float()[:, None] * valid
    else:
        p = torch.softmax(logits, dim=1)[:, 1:] * valid
        y = F.one_hot(t, logits.shape[1]).permute(0, 3, 1, 2).float()[:, 1:] * valid
    dims = (2, 3)
    inter = (p * y).sum(dims)
    denom = p.sum(dims) + y.sum(dims)
    dice = (2 * inter + eps) / (denom + eps)
    return 1 - dice.mean(dim=1)


# ----------------------------------------------------------------------------- count losses
def mse_loss(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Mean squared error per sample (cells^2)."""
    return ((pred.float() - true.float()) ** 2).reshape(pred.shape[0], -1).mean(1)


def huber_loss(pred: torch.Tensor, true: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Huber loss per sample (``delta`` in cells)."""
    return F.huber_loss(pred.float(), true.float(), reduction="none", delta=float(delta)).reshape(pred.shape[0], -1).mean(1)


def poisson_loss(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Poisson negative log-likelihood per sample; ``pred`` is the rate (>= 0, cells)."""
    return F.poisson_nll_loss(pred.float(), true.float(), log_input=False, full=False, eps=1e-6,
                              reduction="none").reshape(pred.shape[0], -1).mean(1)


# ----------------------------------------------------------------------------- factory
#: the attribute that marks a per-sample loss as leaving out the pixels of a negative target (:func:`leaves_out`)
LEAVES_OUT = "leaves_out_ignored"


def leaves_out(fn: Callable, *, mark: bool = False) -> bool:
    """Whether the per-sample loss ``fn`` leaves the pixels of a negative target out (:func:`known`), as
    :func:`build_loss`'s segmentation losses do: a sample's value on a tensor padded with
    :data:`devolens.data.datasets.IGNORE_INDEX` (to a larger image of its batch, or to the network's multiple) is
    then its value on its own pixels, to float rounding, and needs no scoring again
    (:func:`devolens.train.trainer._own_losses`). A loss of one's own is not taken to (it may count the padding).

    Parameters
    ----------
    fn : callable
        A per-sample loss.
    mark : bool
        Mark ``fn`` so first (a wrapper of such a loss that adds only terms that leave those pixels out too).

    Returns
    -------
    bool
    """
    if mark:
        setattr(fn, LEAVES_OUT, True)
    return bool(getattr(fn, LEAVES_OUT, False))


def build_loss(name: str, class_weights: Sequence[float] | None = None, dice_weight: float = 1.0,
               focal_gamma: float = 2.0, huber_delta: float = 1.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A per-sample loss ``fn(output, target) -> (N,)`` by name.

    Parameters
    ----------
    name : str
        Segmentation: ``bce``, ``ce`` (same thing for one output channel), ``dice``,
        ``focal``, ``bce_dice``, ``ce_dice``, ``focal_dice`` (sum of the pixel loss and
        ``dice_weight`` times the Dice loss). Counts: ``mse``, ``huber``, ``poisson``.
    class_weights : sequence of float, optional
        Per-class pixel weights for the BCE/CE/focal part (binary: background, foreground).
    dice_weight : float
        Weight of the Dice term in the ``*_dice`` sums.
    focal_gamma : float
        Focusing exponent of the focal loss.
    huber_delta : float
        Huber transition point (cells).

    Notes
    -----
    A segmentation loss leaves the pixels of a negative target out (the mask's 'ignore' value,
    :data:`devolens.data.datasets.IGNORE_INDEX`, and the padding of the datasets and of
    :func:`devolens.data.datasets.pad_collate`; see :func:`known`), and says so (:func:`leaves_out`).
    """
    w = None if class_weights is None else torch.as_tensor(np.asarray(class_weights, dtype=np.float32))
    dw = float(dice_weight)
    if name in ("bce", "ce"):
        fn = lambda o, t: ce_loss(o, t, w)
    elif name == "focal":
        fn = lambda o, t: focal_loss(o, t, w, focal_gamma)
    elif name == "dice":
        fn = lambda o, t: dice_loss(o, t)
    elif name in ("bce_dice", "ce_dice"):
        fn = lambda o, t: ce_loss(o, t, w) + dw * dice_loss(o, t)
    elif name == "focal_dice":
        fn = lambda o, t: focal_loss(o, t, w, focal_gamma) + dw * dice_loss(o, t)
    elif name == "mse":
        return mse_loss
    elif name == "huber":
        return lambda o, t: huber_loss(o, t, huber_delta)
    elif name == "poisson":
        return poisson_loss
    else:
        raise DevolensError(f"unknown loss {name!r}; choose one of {', '.join(SEG_LOSSES + REG_LOSSES)}")
    leaves_out(fn, mark=True)
    return fn
