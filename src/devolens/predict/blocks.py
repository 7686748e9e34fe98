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
2. each block, with a margin of context (:func:`margin_working`: 1.5 times the background
   flattening's disc and four reference nucleus diameters), is prepared with those limits, run
   through the network and post-processed like a whole image;
3. an object is kept by the block whose core holds its centroid, so each object is kept once,
   whole, and written where no earlier object lies. Two blocks measure an object on their seam
   a little differently (its centroid at 1713.99 in one, 1714.03 in the other): a block claims
   the centroids within :data:`SEAM_SLACK` working pixels of its core too, and an object more than
   half of which lies on objects written before, or that covers more than half of one, is that
   nucleus again: its rim where the two outlines differ joins it, so a seam's nucleus is one
   object, neither counted twice (the rim an object of a few pixels) nor lost.
   An object wider than the margin (a clump
   hundreds of pixels across, or a far too small ``diameter``) would be cut at a block's edge
   and counted in pieces: the margin is four times the nucleus size the model works at;
4. isolated specks (the card's ``isolated_fraction``) are judged once every block is in, against
   the whole image's median object, as the whole-image path judges them (their areas, input pixels, in
   ``extra["isolated_dropped"]`` where any were dropped, as there: the segment command's note and advice), and
   only in an image of at least the card's ``isolated_min_objects`` objects (fewer: they are kept, their areas in
   ``extra["isolated_kept"]``, as there).

The channel of a colour image is chosen once, from the whole image, and each block reads that
channel of its own crop. A float image beyond float32's safe range (a float64 image in units of 1e300 or 1e-300, a
float32 one near its top) is brought within it by one power of two for the whole image (:func:`image_shift`, from
its largest finite magnitude, read band by band), each block's crop divided by the same power, as the whole-image
path divides a frame (:func:`~devolens.predict.postprocess.in_float32_range`): its objects are those of the image
at an ordinary scale. Memory is then the input image, the output labels (uint16, widened to
uint32 once there are 65536 objects) and one block's working arrays; the network runs on ~30 %
more pixels than on the whole image (the margins). Objects far from a block's edge come out as
on the whole image; near a core's edge the watershed may split a touching pair differently.
The objects are numbered block by block (row by row of blocks), not in the raster order of the
whole-image path. Their mean intensity is read once the labels are whole, band by band of rows, in the
channel the blocks read. A result's probability (and a membrane result's mask) is computed again,
block by block, when first read, with the settings the image was segmented with: until then the
result holds its input image (a caller keeping many giant results keeps their inputs too).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

import numpy as np

from devolens.errors import DevolensError
from devolens.predict.postprocess import (CANVAS_PIXELS, FLAT_SHARE, FLOAT_SAFE, Prepared, _one_channel, alone,
                                         auto_channel, content_box, intensity_sums, judges_specks, mean_intensities,
                                         percentile_limits, prepare_image)

if TYPE_CHECKING:
    from devolens.predict.segment import SegmentationResult, _SegmentationPredictor

#: working-resolution pixels above which an image is segmented block by block (~0.9 GB whole)
BLOCK_PIXELS = 3072 * 3072
#: pixels of the whole image's percentile sample (spread evenly over the blocks)
SAMPLE_PIXELS = 2_000_000
#: working pixels beyond a block's core within which it still claims an object's centroid (two blocks measure an
#: object on their seam a little differently: 1713.99 in one, 1714.03 in the other); of an object both claim, the
#: one written first is kept
SEAM_SLACK = 2.0
#: the cost of a block's share of the percentile pass (pass 1), and of the end (the specks judged, the mean intensity
#: read), as a fraction of its segmentation (pass 2): measured on a 4000 x 4000 well at a working scale of 0.5, 4 blocks
#: of ~1.1 s each in pass 2, ~0.03 s in pass 1, ~0.1 s for the end (its progress, in blocks, weighted so)
LIMITS_COST, END_COST = 0.03, 0.03


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


def _channel(image: np.ndarray, channel) -> "str":
    """The channel rule resolved once for the whole image (``auto`` of a colour image: the channel the whole
    image's structure picks, so every block reads the same one), for each block to take from its crop."""
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise DevolensError(f"expected an HxW or HxWx3 image, got an array of shape {image.shape}")
    if image.ndim != 3 or image.shape[2] == 1 or channel != "auto":
        return channel
    return auto_channel(image)


def image_shift(image: np.ndarray, rows: int = 1024) -> int:
    """The power of two a giant float ``image`` is divided by before its blocks are cut, the same for every block:
    :func:`~devolens.predict.postprocess.float32_shift` of the whole image (0 for an integer image or one whose
    largest finite magnitude lies within :data:`~devolens.predict.postprocess.FLOAT_SAFE`), its largest finite
    magnitude read ``rows`` rows at a time (NaN or inf padding of a stitched canvas copies one band's finite values,
    not the image's)."""
    if image.dtype.kind != "f" or not image.size:
        return 0
    top = 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        for y in range(0, image.shape[0], rows):
            band = image[y:y + rows]
            t = max(abs(float(band.max())), abs(float(band.min())))
            if not np.isfinite(t):  # NaN or inf pixels: the finite ones' magnitude
                finite = band[np.isfinite(band)]
                t = float(np.abs(finite).max()) if finite.size else 0.0
            top = max(top, t)
    if top == 0.0 or FLOAT_SAFE[0] <= top <= FLOAT_SAFE[1]:
        return 0
    return int(np.frexp(top)[1])


class _Run:
    """What one giant image is segmented with, fixed when it starts (a later ``diameter`` estimate of the
    predictor does not reach this image's probability or mask, read afterwards)."""

    def __init__(self, predictor: "_SegmentationPredictor", image: np.ndarray):
        net = predictor.network
        self.predictor = predictor
        self.image = image
        self.plan = _Plan(predictor, image.shape[:2])
        self.channel = _channel(image, net.channel)
        self.scale = float(net.scale)
        self.key = (self.scale, net.percentiles, net.flatten, net.outliers)
        self.options = dict(predictor.postprocess_options)
        self.limits: tuple[float, float] | None = None
        # one power of two for every block (a block's own would normalise each in other units): a float image
        # beyond float32's safe range is read as the same image at an ordinary scale
        self.shift = image_shift(self.image)

    def crop(self, box: tuple[int, int, int, int]) -> np.ndarray:
        y0, y1, x0, x1 = box
        part = self.image[y0:y1, x0:x1]
        if self.shift:  # (exact: a power of two, in float64 before the float32 cast)
            part = np.ldexp(part.astype(np.float64), -self.shift)
        return _one_channel(part, self.channel)

    def limits_pass(self, tick: Callable[[], None]) -> None:
        """The whole image's normalisation limits (pass 1), from an even subsample of every block's core;
        NaN/inf pixels count as the image's lowest value, as they do on the whole image."""
        scale, percentiles, flatten, outliers = self.key
        if not len(percentiles):
            return  # the input type's range: nothing to measure
        plan = self.plan
        total = plan.shape[0] * plan.shape[1] * scale ** 2  # working pixels
        step = max(1, int(math.sqrt(total / SAMPLE_PIXELS)))
        # each core's sample with the working rows and columns it lies at, and the box around what is not the
        # canvas's fill (the image's top-left value), to read a filled canvas's percentiles in that box only
        samples, fill, area = [], None, None
        for core in plan.cores:
            box = plan.crop(core)
            cy0, cy1, cx0, cx1 = box
            raw = prepare_image(self.crop(box), "auto", scale, percentiles, flatten, outliers, raw=True)
            h, w = raw.shape
            sy, sx = (cy1 - cy0) / h, (cx1 - cx0) / w  # input pixels per working pixel
            y0, y1 = int((core[0] - cy0) / sy), int(math.ceil((core[1] - cy0) / sy))
            x0, x1 = int((core[2] - cx0) / sx), int(math.ceil((core[3] - cx0) / sx))
            part = raw[y0:y1, x0:x1]
            gy, gx = round(core[0] / sy), round(core[2] / sx)  # the core's first working row and column
            samples.append((part[::step, ::step], gy + np.arange(0, part.shape[0], step),
                            gx + np.arange(0, part.shape[1], step)))
            finite = np.where(np.isfinite(part), part, -np.inf)  # NaN fill counts as one value
            fill = finite[0, 0] if fill is None else fill
            local = content_box(finite, fill)
            if local is not None:
                ly0, ly1, lx0, lx1 = local
                b = (gy + ly0, gy + ly1, gx + lx0, gx + lx1)
                area = b if area is None else (min(area[0], b[0]), max(area[1], b[1]), min(area[2], b[2]),
                                               max(area[3], b[3]))
            tick()
        canvas = (total >= CANVAS_PIXELS and area is not None
                  and (area[1] - area[0]) * (area[3] - area[2]) <= (1.0 - FLAT_SHARE) * total)
        if canvas:  # a canvas filled with one value: percentiles in the box around the imaged area, as the whole
            # image's are (devolens.predict.postprocess.content_sample)
            parts = [p[np.ix_((ys >= area[0]) & (ys < area[1]), (xs >= area[2]) & (xs < area[3]))]
                     for p, ys, xs in samples]
        else:
            parts = [p for p, _, _ in samples]
        sample = np.concatenate([p.ravel() for p in parts])
        finite = np.isfinite(sample)
        if not finite.all():
            sample = np.where(finite, sample, sample[finite].min() if finite.any() else 0.0).astype(np.float32)
        self.limits = percentile_limits(sample, *percentiles)

    def blocks(self, tick: Callable[[], None], options: dict | None = None):
        """``(core, result, crop)`` of each block: its crop prepared with the whole image's limits, run through
        the network and post-processed (pass 2)."""
        predictor, net = self.predictor, self.predictor.network
        scale, percentiles, flatten, outliers = self.key
        for core in self.plan.cores:
            box = self.plan.crop(core)
            block = self.crop(box)
            work = prepare_image(block, "auto", scale, percentiles, flatten, outliers, limits=self.limits)
            probs = net.probabilities_working([work])[0]
            res = predictor._finish(probs, block.shape, {**self.options, **(options or {})})
            tick()
            yield core, res, box

    def assemble(self, what: str, dtype) -> np.ndarray:
        """``what`` (probability, mask) of every block's core, at the input size (the blocks run again)."""
        out = np.zeros(self.plan.shape, dtype)
        for core, res, crop in self.blocks(lambda: None):
            y0, y1, x0, x1 = core
            cy0, cx0 = crop[0], crop[2]
            out[y0:y1, x0:x1] = getattr(res, what)[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]
        return out


def segment_blocks(predictor: "_SegmentationPredictor", image: np.ndarray,
                   progress: Callable[[float], None] | None = None) -> "SegmentationResult":
    """Segment one giant image block by block (see the module's notes); the result as the
    whole-image path gives it, its probability (and a membrane model's mask) computed again,
    block by block, when first asked for.

    Parameters
    ----------
    predictor : NucleiPredictor or MembranePredictor
        At its working scale (a ``diameter="auto"`` estimate made before).
    image : ndarray
        ``HxW`` or ``HxWx3``.
    progress : callable, optional
        ``progress(done, total)`` in blocks (``total``: their number), as they are done: each block's passes weighted
        by their cost (:data:`LIMITS_COST`, :data:`END_COST`), so ``done`` is fractional and reaches ``total`` once
        the result is whole.
    """
    from devolens.predict.segment import SegmentationResult

    run = _Run(predictor, np.asarray(image))
    plan = run.plan
    n_blocks = len(plan.cores)
    weight = n_blocks / (n_blocks * (LIMITS_COST + 1.0 + END_COST))  # blocks per unit of cost
    done = [0.0]

    def ticker(cost: float) -> Callable[[], None]:
        def tick():
            done[0] = min(n_blocks, done[0] + cost * weight)
            if progress is not None:
                progress(done[0], n_blocks)
        return tick

    run.limits_pass(ticker(LIMITS_COST))
    H, W = plan.shape
    labels = np.zeros((H, W), np.uint16)  # uint32 once there are 65536 objects or more
    xs, ys, areas = np.zeros(0), np.zeros(0), np.zeros(0, np.int64)  # the objects so far: centroid, written area
    n = 0
    # isolated specks are judged against the whole image's median object, once every block is in (below)
    fraction = float(run.options.get("isolated_fraction") or 0.0) if getattr(predictor, "drops_specks", False) else 0.0
    among = int(run.options.get("isolated_min_objects") or 0)  # (only in an image of at least that many objects)
    slack = max(SEAM_SLACK, SEAM_SLACK / run.scale)  # input pixels: SEAM_SLACK working pixels, at least that many
    for core, res, crop in run.blocks(ticker(1.0), {"isolated_fraction": 0.0}):
        cy0, cy1, cx0, cx1 = crop
        obj = res.objects
        if not len(obj["label"]):
            continue
        # kept: objects whose centroid lies in this block's core, or within the slack of it (the neighbouring block,
        # segmenting the object in its own context, may put its centroid a hair across the seam: both then claim
        # it, the later one joining the earlier below, rather than neither)
        gy, gx = obj["y"] + cy0, obj["x"] + cx0
        inside = (gy >= core[0] - slack) & (gy < core[1] + slack) & (gx >= core[2] - slack) & (gx < core[3] + slack)
        keep = obj["label"][inside]
        if not len(keep):
            continue
        lab = res.labels
        index = np.zeros(int(lab.max()) + 1, np.uint32)
        index[keep] = np.arange(1, len(keep) + 1)
        mine = index[lab]  # 1..len(keep): this block's kept objects
        region = labels[cy0:cy1, cx0:cx1]
        into = _joins(mine, region, len(keep), areas)
        kept = np.flatnonzero(into == 0)
        if n + len(kept) > 65535 and labels.dtype == np.uint16:
            labels = labels.astype(np.uint32)
            region = labels[cy0:cy1, cx0:cx1]
        lut = np.zeros(len(keep) + 1, labels.dtype)
        lut[kept + 1] = np.arange(n + 1, n + 1 + len(kept), dtype=np.uint32)
        joined = np.flatnonzero(into)
        lut[joined + 1] = into[joined]  # an earlier block's object, seen again: its rim here added to that object
        new = lut[mine]
        write = new > 0
        write &= region == 0  # first come: an object of an earlier block is not overwritten
        region[write] = new[write]
        ids = new[write].astype(np.intp)
        written = np.bincount(ids, minlength=n + len(kept) + 1)[1:]
        if len(joined) and written[:n].any():  # the earlier objects grown: their areas and centroids
            py, px = np.nonzero(write)
            rim = ids <= n
            sy = np.bincount(ids[rim], weights=py[rim] + float(cy0), minlength=n + 1)[1:]
            sx = np.bincount(ids[rim], weights=px[rim] + float(cx0), minlength=n + 1)[1:]
            grown = areas + written[:n]
            ys = np.where(grown > 0, (ys * areas + sy) / np.maximum(grown, 1), ys)
            xs = np.where(grown > 0, (xs * areas + sx) / np.maximum(grown, 1), xs)
            areas = grown
        xs = np.concatenate([xs, gx[inside][kept]])
        ys = np.concatenate([ys, gy[inside][kept]])
        areas = np.concatenate([areas, written[n:]])
        n += len(kept)
    objects = {"label": np.arange(1, n + 1), "x": xs, "y": ys, "area": areas}
    hidden = objects["area"] == 0  # hidden under earlier blocks' objects (rare)
    least = getattr(predictor, "min_size_input", None)  # segment --min-size: whole objects' input pixels
    small = (objects["area"] < float(least)) & ~hidden if least is not None else np.zeros(n, bool)
    gone = hidden | small
    dropped = spared = None  # the areas (input pixels) of the lone objects dropped as specks, or kept, where any
    if fraction > 0 and n:
        # (the whole-image path looks 2 working pixels around each object: that many input pixels, rounded down)
        specks = _specks(labels, objects, fraction, gap=max(1, int(2 / run.scale)))
        lone = objects["area"][specks & ~hidden].astype(np.int64)
        if not judges_specks(np.count_nonzero(~hidden), among):  # too few objects to judge by: kept, and said
            spared = lone if len(lone) else None
        else:  # (as the whole-image path's extra["isolated_dropped"]: the segment command's note)
            dropped = lone if len(lone) else None
            small &= ~specks  # (a small lone speck: counted as a speck, as the whole-image path drops specks first)
            gone |= specks
    if least is not None and getattr(predictor, "min_size_dropped", None) is not None:
        predictor.min_size_dropped.append(int(small.sum()))  # (segment's count, as the whole-image path's)
    if gone.any():  # renumbered away, band by band (no second full-size array)
        lut = np.zeros(n + 1, labels.dtype)
        lut[objects["label"][~gone]] = np.arange(1, int((~gone).sum()) + 1)
        for y in range(0, H, 1024):
            labels[y:y + 1024] = lut[labels[y:y + 1024]]
        objects = {k: v[~gone] for k, v in objects.items()}
        objects["label"] = np.arange(1, len(objects["area"]) + 1)
        n = len(objects["area"])
    if n < 65536:
        labels = labels.astype(np.uint16, copy=False)
    objects["label"] = objects["label"].astype(int)
    objects["area"] = objects["area"].astype(int)
    objects["mean_intensity"] = _mean_intensity(run, labels, objects["label"])
    if progress is not None:
        progress(float(n_blocks), n_blocks)  # (the end: the specks judged, the mean intensity read)
    return SegmentationResult(
        probability=lambda: run.assemble("probability", np.float32), labels=labels, centroids=objects,
        mask=None if getattr(predictor, "mask_is_labels", False) else (lambda: run.assemble("mask", bool)),
        extra={"scale": run.scale, "blocks": len(plan.cores),
               **({"isolated_dropped": dropped} if dropped is not None else {}),
               **({"isolated_kept": spared} if spared is not None else {}),
               **({"color_read": run.channel} if run.image.ndim == 3 and run.image.shape[2] > 1 else {})},
    )


def _joins(mine: np.ndarray, region: np.ndarray, k: int, areas: np.ndarray) -> np.ndarray:
    """For each of a block's ``k`` kept objects (``mine``: 1..k in its crop), the earlier block's object it is
    (0: none, an object of its own): more than half of it lies on objects written before (into ``region``, the
    labels under the crop; ``areas``: theirs, label 1 first), or it covers more than half of one; it joins the one it
    overlaps most. A nucleus on a seam, claimed by both blocks (its centroid within the slack of both cores), is then
    one object, however differently the two outline it: the earlier block's, with the later one's rim around it
    (was an extra object of those few pixels, an extra row of objects.csv)."""
    into = np.zeros(k, np.int64)
    taken = (mine > 0) & (region > 0)
    if not taken.any():
        return into
    own = np.bincount(mine.ravel().astype(np.intp), minlength=k + 1)[1:]
    m = len(areas) + 1
    pairs, overlap = np.unique(mine[taken].astype(np.int64) * m + region[taken], return_counts=True)
    this, earlier = pairs // m, pairs % m  # (this block's object, an earlier one), sorted by this block's
    on = np.bincount(this, weights=overlap, minlength=k + 1)[1:]
    same = (2 * on[this - 1] > own[this - 1]) | (2 * overlap > areas[earlier - 1])
    same = np.bincount(this, weights=same, minlength=k + 1)[1:] > 0  # by either rule, with any earlier one
    order = np.lexsort((overlap, this))  # the most overlapped earlier object last of each of this block's
    last = np.r_[this[order][1:] != this[order][:-1], True]
    top_this, top_earlier = this[order][last], earlier[order][last]
    pick = same[top_this - 1]
    into[top_this[pick] - 1] = top_earlier[pick]
    return into


def _mean_intensity(run: _Run, labels: np.ndarray, ids: np.ndarray, rows: int = 1024) -> np.ndarray:
    """The objects' mean intensity (:func:`~devolens.predict.postprocess.intensity_sums`) over the whole image's
    labels, ``rows`` rows at a time: each band's values as the input holds them, in the channel the blocks read (the
    whole image's choice of a colour channel), so no second image-sized array is made."""
    if not len(ids):
        return np.zeros(0)
    n = int(ids.max())
    sums, counts = np.zeros(n + 1), np.zeros(n + 1, np.int64)
    for y in range(0, labels.shape[0], rows):
        band = labels[y:y + rows]
        s, c = intensity_sums(band, run.image[y:y + band.shape[0]], run.channel, n)
        sums += s
        counts += c
    return mean_intensities(sums, counts, ids)


def _specks(labels: np.ndarray, objects: dict, fraction: float, gap: int) -> np.ndarray:
    """Which objects are isolated specks (:func:`~devolens.predict.postprocess.drop_isolated_specks`) by the whole
    image's median object area: smaller than ``fraction`` of it, no other object within ``gap`` pixels (whatever
    the image's count of objects: the caller judges it). Only the small ones are looked at, each in a window around
    it."""
    area = objects["area"]
    out = np.zeros(len(area), bool)
    if not judges_specks((area > 0).sum()):
        return out
    small = np.flatnonzero((area > 0) & (area < fraction * np.median(area[area > 0])))
    H, W = labels.shape
    kernel = np.ones((2 * gap + 1, 2 * gap + 1), np.uint8)
    for k in small:
        r = int(area[k]) + gap + 1  # a small object lies within its area's reach of its centroid
        y, x = int(objects["y"][k]), int(objects["x"][k])
        y0, x0 = max(0, y - r), max(0, x - r)
        out[k] = alone(labels[y0:min(H, y + r + 1), x0:min(W, x + r + 1)], objects["label"][k], kernel)
    return out


def prepare_ahead(image: np.ndarray, key: tuple):
    """A frame prepared for the network ahead of time (:class:`Prepared`), or the frame as it is
    when it will be segmented block by block (a giant image is prepared block by block)."""
    arr = np.asarray(image)
    if goes_by_blocks(arr.shape, key[1]):
        return arr
    return Prepared(arr, key)


__all__ = ["BLOCK_PIXELS", "goes_by_blocks", "image_shift", "margin_working", "block_grid", "segment_blocks",
           "prepare_ahead"]
