"""Giant images (a stitched well, a tile scan) segmented block by block, in bounded memory.

A segmentation predictor run on a whole image holds a dozen working-resolution arrays at once
(the prepared image, the network's probabilities and their tiling accumulators, the watershed's
distance map, markers and labels): about 100 bytes per working pixel, 2.6 GB for a 4000x4000
well segmented at a working scale of 1.3, and far more than a workstation has for a 16000x16000
one. Above :data:`BLOCK_PIXELS` working pixels the image is therefore cut into overlapping
blocks (StarDist's ``predict_instances_big`` and cellpose's tiling work the same way):

1. every block is prepared without its normalisation and a subsample of its pixels kept, so the
   whole image's percentiles are known (pass 1: the normalisation of the whole image, not of
   each block, so a block of empty background is not stretched into noise);
2. each block, with a margin of context (:func:`margin_working`: more than the background
   flattening's disc and four reference nucleus diameters), is prepared with those limits, run
   through the network and post-processed like a whole image;
3. an object is kept by the block whose core holds its centroid, so each object is kept once,
   whole (objects are far smaller than the margin), and written where no earlier object lies.

Memory is then the input image, the output labels (4 bytes a pixel until the count is known,
then 2 when it fits) and one block's working arrays; the network runs on ~30 % more pixels
than on the whole image (the margins). Objects far from a block's edge come out as on the
whole image; near a core's edge the watershed may split a touching pair differently. The
objects are numbered block by block (row by row of blocks), not in the raster order of the
whole-image path.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import numpy as np

from devolens.predict.postprocess import Prepared, _one_channel, percentile_limits, prepare_image

if TYPE_CHECKING:
    from devolens.predict.segment import SegmentationResult, _SegmentationPredictor

#: working-resolution pixels above which an image is segmented block by block (~0.9 GB whole)
BLOCK_PIXELS = 3072 * 3072
#: pixels of the whole image's percentile sample (spread evenly over the blocks)
SAMPLE_PIXELS = 2_000_000


def goes_by_blocks(shape: tuple[int, ...], scale: float, limit: float = BLOCK_PIXELS) -> bool:
    """True when an image of ``shape`` (H, W[, C]) at working ``scale`` has more than ``limit`` working
    pixels (a predictor's ``block_pixels``): it is then segmented block by block."""
    if len(shape) < 2:
        return False
    return float(shape[0]) * float(shape[1]) * float(scale) ** 2 > limit


def margin_working(predictor: "_SegmentationPredictor") -> int:
    """Context around a block's core, working pixels: the background flattening's disc and four
    reference object diameters (objects and their neighbours seen whole), at least 64."""
    net = predictor.network
    card_scale = float(predictor.card_scale)
    diameter = (predictor.diameter_ref or 0.0) * card_scale  # at the working scale objects keep this size
    return int(math.ceil(max(64.0, 1.5 * net.flatten, 4.0 * diameter)))


def block_grid(height: int, width: int, core: int) -> list[tuple[int, int, int, int]]:
    """Cores ``(y0, y1, x0, x1)`` (input pixels) of at most ``core`` pixels a side, tiling the image,
    in rows of blocks; equal sizes along each axis."""
    def cuts(n: int) -> list[int]:
        k = max(1, -(-n // core))
        return [round(i * n / k) for i in range(k + 1)]

    ys, xs = cuts(height), cuts(width)
    return [(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(len(ys) - 1) for j in range(len(xs) - 1)]


class _Plan:
    """The blocks of one image: cores and crops in input pixels."""

    def __init__(self, predictor: "_SegmentationPredictor", shape: tuple[int, int]):
        net = predictor.network
        scale = float(net.scale)
        margin_w = margin_working(predictor)
        # a block at the working resolution fills 2 x 2 of the network's tiles (its windows then
        # overlap by the network's own overlap only): (2 * tile - overlap) working pixels a side
        side_w = 2 * int(net.tile) - int(net.overlap) if net.tile else 2048
        core_w = side_w - 2 * margin_w - 2 * net.multiple  # rounding room
        if core_w < 4 * margin_w:
            core_w = 4 * margin_w
        self.core = max(16, int(core_w / scale))
        self.margin = int(math.ceil(margin_w / scale))
        self.shape = (int(shape[0]), int(shape[1]))
        self.cores = block_grid(self.shape[0], self.shape[1], self.core)

    def crop(self, core: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        y0, y1, x0, x1 = core
        H, W = self.shape
        m = self.margin
        return max(0, y0 - m), min(H, y1 + m), max(0, x0 - m), min(W, x1 + m)


def _grey(image: np.ndarray, channel) -> np.ndarray:
    """The one channel the network reads, decided once for the whole image (8/16-bit kept)."""
    return _one_channel(image, channel)


def _limits(predictor: "_SegmentationPredictor", grey: np.ndarray, plan: _Plan,
            tick: Callable[[], None]) -> tuple[float, float] | None:
    """The whole image's normalisation limits (pass 1), from an even subsample of every block's core."""
    net = predictor.network
    if not len(net.percentiles):
        return None  # the input type's range: nothing to measure
    total = plan.shape[0] * plan.shape[1] * net.scale ** 2
    step = max(1, int(math.sqrt(total / SAMPLE_PIXELS)))
    samples = []
    for core in plan.cores:
        cy0, cy1, cx0, cx1 = plan.crop(core)
        raw = prepare_image(grey[cy0:cy1, cx0:cx1], "auto", net.scale, net.percentiles, net.flatten,
                            net.outliers, raw=True)
        h, w = raw.shape
        sy, sx = (cy1 - cy0) / h, (cx1 - cx0) / w  # input pixels per working pixel
        y0, y1 = int((core[0] - cy0) / sy), int(math.ceil((core[1] - cy0) / sy))
        x0, x1 = int((core[2] - cx0) / sx), int(math.ceil((core[3] - cx0) / sx))
        samples.append(raw[y0:y1:step, x0:x1:step].ravel())
        tick()
    return percentile_limits(np.concatenate(samples), *net.percentiles)


def segment_blocks(predictor: "_SegmentationPredictor", image: np.ndarray,
                   progress: Callable[[float], None] | None = None) -> "SegmentationResult":
    """Segment one giant image block by block (see the module's notes); the result as the
    whole-image path gives it, its probability (and membrane mask) computed again, block by
    block, when first asked for.

    Parameters
    ----------
    predictor : NucleiPredictor or MembranePredictor
        At its working scale (a ``diameter="auto"`` estimate made before).
    image : ndarray
        ``HxW`` or ``HxWx3``.
    progress : callable, optional
        ``progress(fraction)`` as the blocks are done (0..1; both passes).
    """
    from devolens.predict.segment import SegmentationResult

    arr = np.asarray(image)
    net = predictor.network
    plan = _Plan(predictor, arr.shape[:2])
    grey = _grey(arr, net.channel)
    steps, done = 2 * len(plan.cores), [0]

    def tick():
        done[0] += 1
        if progress is not None:
            progress(done[0] / steps)

    limits = _limits(predictor, grey, plan, tick)
    H, W = plan.shape
    labels = np.zeros((H, W), np.uint16)  # uint32 once there are 65536 objects or more
    cols: dict[str, list] = {"label": [], "x": [], "y": [], "area": []}
    n = 0
    for core, res, crop in _blocks(predictor, grey, plan, limits, tick):
        cy0, cy1, cx0, cx1 = crop
        obj = res.objects
        if not len(obj["label"]):
            continue
        # kept: objects whose centroid lies in this block's core
        gy, gx = obj["y"] + cy0, obj["x"] + cx0
        inside = (gy >= core[0]) & (gy < core[1]) & (gx >= core[2]) & (gx < core[3])
        # a centroid on the image's last row/column edge (rounding) belongs to the last core
        keep = obj["label"][inside]
        if not len(keep):
            continue
        if n + len(keep) > 65535 and labels.dtype == np.uint16:
            labels = labels.astype(np.uint32)
        lab = res.labels
        lut = np.zeros(int(lab.max()) + 1, labels.dtype)
        lut[keep] = np.arange(n + 1, n + 1 + len(keep), dtype=np.uint32)
        new = lut[lab]
        region = labels[cy0:cy1, cx0:cx1]
        write = new > 0
        write &= region == 0  # first come: an object of an earlier block is not overwritten
        region[write] = new[write]
        written = np.bincount(new[write].astype(np.intp) - n, minlength=len(keep) + 1)[1:]
        cols["label"].append(np.arange(n + 1, n + 1 + len(keep)))
        cols["x"].append(gx[inside])
        cols["y"].append(gy[inside])
        cols["area"].append(written)
        n += len(keep)
    objects = {k: (np.concatenate(v) if v else np.zeros(0, float if k in ("x", "y") else int))
               for k, v in cols.items()}
    gone = objects["area"] == 0  # hidden under earlier blocks' objects (rare): renumbered away
    if gone.any():
        lut = np.zeros(n + 1, labels.dtype)
        lut[objects["label"][~gone]] = np.arange(1, int((~gone).sum()) + 1)
        labels = lut[labels]
        objects = {k: v[~gone] for k, v in objects.items()}
        objects["label"] = np.arange(1, len(objects["area"]) + 1)
        n = len(objects["area"])
    if n < 65536:
        labels = labels.astype(np.uint16, copy=False)
    objects["label"] = objects["label"].astype(int)
    objects["area"] = objects["area"].astype(int)

    def assemble(what: str, dtype) -> np.ndarray:
        """``what`` (probability, mask) of every block's core, at the input size (the blocks run again)."""
        out = np.zeros((H, W), dtype)
        for core, res, crop in _blocks(predictor, grey, plan, limits, lambda: None):
            y0, y1, x0, x1 = core
            cy0, cx0 = crop[0], crop[2]
            out[y0:y1, x0:x1] = getattr(res, what)[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]
        return out

    return SegmentationResult(
        probability=lambda: assemble("probability", np.float32), labels=labels, centroids=objects,
        mask=lambda: assemble("mask", bool),
        extra={"scale": net.scale, "blocks": len(plan.cores)},
    )


def _blocks(predictor: "_SegmentationPredictor", grey: np.ndarray, plan: _Plan, limits, tick):
    """``(core, result, crop)`` of each block: its crop prepared with the whole image's limits,
    run through the network and post-processed (pass 2)."""
    net = predictor.network
    for core in plan.cores:
        cy0, cy1, cx0, cx1 = crop = plan.crop(core)
        block = grey[cy0:cy1, cx0:cx1]
        work = prepare_image(block, "auto", net.scale, net.percentiles, net.flatten, net.outliers, limits=limits)
        probs = net.probabilities_working([work])[0]
        res = predictor._finish(probs, block.shape)
        tick()
        yield core, res, crop


def prepare_ahead(image: np.ndarray, key: tuple):
    """A frame prepared for the network ahead of time (:class:`Prepared`), or the frame as it is
    when it will be segmented block by block (a giant image is prepared block by block)."""
    arr = np.asarray(image)
    if goes_by_blocks(arr.shape, key[1]):
        return arr
    return Prepared(arr, key)


__all__ = ["BLOCK_PIXELS", "goes_by_blocks", "margin_working", "block_grid", "segment_blocks", "prepare_ahead"]
