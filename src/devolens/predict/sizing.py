"""How magnified an image is, from the segmentation network's own features (``diameter="auto"``).

cellpose's size model, adapted: the encoder's deepest features, averaged over the image (its
"style"), say how large the objects are; ridge regressions fitted on renders (one for embryos,
one for cultured cells, weighed by a logistic gate) map them to the log of the image's
magnification relative to the model's training data. For the nuclei model
the magnification ``m`` is relative to EPIC-like framing (752x512 frames, nuclei ~35 px
mid-embryo) whatever the stage, so the diameter to use is ``reference * m / m0``, ``m0`` being
the middle of the zooms the network was trained on.

The estimate depends on the image's orientation (the features are not mirror-invariant): a held-out render's
eight mirror images and quarter turns read a median 1.15x apart at 1x, 1.28x at 0.5x. Their geometric mean is
invariant and a little closer to the truth (median error x1.07 -> x1.05 at 1x), but it costs eight encoder passes per
image judged (0.11 -> 0.91 s for a 752x512 frame on 2 CPU cores, where segmenting one takes 0.25 s) and did not raise
nuclei F1 on held-out renders at 0.5x-2x (within +-0.01; 2x: 0.794 -> 0.791): not done (thirty-sixth session).

>>> from devolens.models import load                                  # doctest: +SKIP
>>> nuclei = load("nuclei")                                           # doctest: +SKIP
>>> est = estimate_diameter(nuclei, [frame])                          # doctest: +SKIP
>>> est.diameter, est.magnification                                   # doctest: +SKIP
(70.1, 1.98)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from devolens.errors import DevolensError, DiameterWarning

if TYPE_CHECKING:
    from devolens.predict.segment import _SegmentationPredictor

__all__ = ["wants_auto", "untrusted_reason", "warn_untrusted", "size_key", "style_features", "count_objects", "SizeModel", "BackdropReader", "DiameterEstimate",
           "estimate_diameter", "gather", "Gathered", "spot_diameter"]

STYLE_WINDOW = 1024  # working pixels: larger images are judged on a central window (bounded memory and time)
MIN_OBJECTS = 8  # images with fewer bright objects (embryos of 1-7 cells) do not decide the magnification
# ... nor do images narrower than this at the card's scale (working px: 2 cells of the encoder's deepest stage): the
# features of a thin strip are outside anything the size model was fitted on (a 20x800 strip of an embryo frame read 15x)
MIN_SIDE = 32
FEW_JUDGED = 2  # where at most this many images decide, each is read in its eight mirror images and quarter turns
AUTO_FRAMES = 5  # a stream's magnification: the median over this many of its first images with the most objects
GOOD_OBJECTS = 64  # ... read ahead until AUTO_FRAMES images show at least this many objects
AUTO_LOOKAHEAD = 240  # ... looked for among at most this many first images
AUTO_BUDGET = 256 * 2**20  # ... and at most this many bytes of them held in memory
#: an image with too few separate bright objects whose largest bright region (above 0.5 of the normalised range, the
#: level that parts touching nuclei) covers this share of it or more shows crowded nuclei merged into few regions (a
#: late embryo), not few nuclei: said so (:func:`untrusted_reason`; messages only, the estimate is the same). Renders of
#: the AceTree embryo at 566-580 cells, as rendered and shrunk to half, and the held-out renders at 173-384 cells that
#: showed under 8 objects: 0.20-0.38; the held-out renders of 1-7 cells that did: 0.034 at most
CROWDED_SHARE = 0.1
#: ... and under this share: a region covering most of the image is a bright background (an inverted or brightfield
#: input: 0.95 for an inverted reference frame), not nuclei
CROWDED_MOST = 0.6


#: :func:`spot_diameter`: the scales (Gaussian sigma, input px) its Laplacian of Gaussian is read at, a quarter octave
#: apart from 1 px (a spot of 2.8 px: smaller ones are noise or hot pixels to it) ...
SPOT_SIGMAS = 2.0 ** (np.arange(0, 24) / 4.0)
#: ... over the central part of an image this many pixels square at most (bounded time: hundreds of nuclei)
SPOT_WINDOW = 1024


def wants_auto(diameter, size_model, reference, what: str = "this model") -> bool:
    """True when ``diameter`` asks for ``"auto"`` (or ``"each"``: estimated for each image on its own);
    then checks that the model can estimate it.

    Raises
    ------
    DevolensError
        ``"auto"`` or ``"each"`` was asked of a model without a size model or a reference diameter.
    """
    if not (isinstance(diameter, str) and diameter.strip().lower() in ("auto", "each")):
        return False
    if size_model is None or not reference:
        hint = ("give the diameter in pixels" if reference else
                "leave the diameter out and give images at the magnification it was trained on")
        raise DevolensError(f"{what} cannot estimate the diameter (no size model in its card): {hint}")
    return True


def untrusted_reason(estimate: "DiameterEstimate | None", what: str = "nuclei",
                     saturated: float | None = None) -> str | None:
    """Why ``diameter="auto"`` used the images as they are without judging them (``estimate.trusted`` 0), in words
    (``what``: the objects, e.g. ``"nuclei"``); None when the estimate decided (or there was none). ``saturated``: the
    share of the embryo's pixels at the top of the range (a file's or a camera's maximum) where it is large
    (:class:`devolens.predict.notes.Saturation`; None: not), which the words then blame for bright regions that merge (:func:`_crowded`): the saturated plateaus
    of an image filmed too bright (the real reference frame of 158 nuclei at twice its intensity), not a late embryo."""
    if estimate is None or estimate.trusted:
        return None
    empty = getattr(estimate, "empty", 0)
    if empty and empty + getattr(estimate, "small", 0) >= len(estimate.per_image):
        # nothing above the noise in any image looked at (an empty field, a dark frame): nothing to judge and nothing
        # to say here, as their objects are none (the segmentation's NoSignalWarning, the command's note)
        return None
    if getattr(estimate, "small", 0) and estimate.small == len(estimate.per_image):
        return (f"the images are too narrow to judge the magnification by (a side under {MIN_SIDE} px at the "
                "model's working scale)")
    crowded = getattr(estimate, "crowded", 0)
    if crowded and 2 * crowded >= len(estimate.per_image) - getattr(estimate, "small", 0):
        # most of them: a late embryo's touching nuclei, merged into a few large regions (CROWDED_SHARE), or
        # saturated plateaus that merge them
        if saturated is not None:
            return (f"the images are saturated ({100 * saturated:.0f} % of the embryo's pixels at the top of "
                    f"the range), which merges their {what} into fewer than {MIN_OBJECTS} separate bright regions at a "
                    "first look, too few to judge the magnification by")
        return (f"the {what} in the images looked at touch too much to be told apart at a first look (fewer than "
                f"{MIN_OBJECTS} separate bright regions, one of them covering a tenth of the image or more: a late "
                "embryo?), too few to judge the magnification by")
    # a quick threshold count, not the network's (count_objects): touching nuclei count as one there, dim ones not at
    # all; a culture crop of 17 nuclei of ~16 px read 6 regions
    return (f"a quick threshold count found fewer than {MIN_OBJECTS} {_regions(what)} in the images looked at, "
            "too few to judge the magnification by")


def _regions(what: str) -> str:
    """What :func:`count_objects` counts, in words, for ``what`` objects (``"cells"``: the membrane model's): the
    separate regions of a threshold of the image at the model's scale, not the network's objects."""
    if what == "cells":
        return "separate dark regions inside bright outlines (cells with faint or broken outlines run together there)"
    return f"separate bright regions (touching {what} count as one there, dim ones not at all)"


def unjudged_advice(what: str = "nuclei", library: bool = False) -> str:
    """What to do where ``diameter="auto"`` used the images as they are without judging them, for the note and the
    warning (``library``: the argument, not the command's option): used as they are suits a whole embryo at the
    usual magnification; other samples need the objects' size given."""
    give = "diameter=" if library else "--diameter"
    return (f"if this is not a whole embryo at the usual magnification, give {give} the typical width of the {what} "
            "in pixels")


def warn_untrusted(estimates: "Sequence[DiameterEstimate | None]", what: str = "nuclei", each: bool = False,
                   stacklevel: int = 3) -> None:
    """Issue a :class:`~devolens.errors.DiameterWarning` when ``diameter="auto"`` (``each``: ``"each"``, one
    estimate per image) could not judge the images and used them as they are, when it segmented them at their bright
    spots' measured size instead of the size model's reading (``spots``: :class:`DiameterEstimate`), and with ``each``
    when images' estimates were held to the range the working scale may be resized to (``held``; both named by their
    positions among ``estimates``, one per image): the library's counterpart of the CLI's note (which silences it).
    ``stacklevel``: as ``warnings.warn``'s, counted from here (3: the line that called this function's caller)."""
    import warnings

    spots = [i for i, e in enumerate(estimates) if getattr(e, "spots", None) is not None]
    if spots and each:
        words = spots_words([estimates[i] for i in spots], what, each=True)
        warnings.warn(f"diameter='each': {len(spots)} of {len(estimates)} images (at {_positions(spots)} in the input) "
                      f"{words} (give diameter in pixels if that is wrong; see .estimates)", DiameterWarning,
                      stacklevel=stacklevel)
    elif spots:
        warnings.warn(f"diameter='auto': {spots_words([estimates[spots[0]]], what, library=True)}; see "
                      ".last_estimate", DiameterWarning, stacklevel=stacklevel)
    held = [i for i, e in enumerate(estimates) if getattr(e, "held", None) is not None]
    if each and held:
        warnings.warn(f"diameter='each': {len(held)} of {len(estimates)} images (at {_positions(held)} in the input) "
                      f"{held_words([estimates[i] for i in held])} (give diameter in pixels if that is wrong; see "
                      ".estimates)", DiameterWarning, stacklevel=stacklevel)
    few = [e for e in estimates if untrusted_reason(e, what)]
    if not few:
        return
    if each:
        message = (f"diameter='each': {len(few)} of {len(estimates)} images showed fewer than {MIN_OBJECTS} separate "
                   f"bright regions at a first look (too few {what}, or touching too much to be told apart; or the "
                   "images were too narrow), too few to judge the magnification by: used as they are "
                   f"({unjudged_advice(what, library=True)}; see .estimates)")
    else:
        message = (f"diameter='auto': {untrusted_reason(few[0], what)}: used as they are "
                   f"({unjudged_advice(what, library=True)}; see .last_estimate)")
    warnings.warn(message, DiameterWarning, stacklevel=stacklevel)


def _positions(indices: "Sequence[int]", most: int = 5) -> str:
    """Positions in the input, for a warning's words: ``index 1``, ``indices 1, 4``, ``indices 1, 4, 6, 8, 9, ...``."""
    words = ", ".join(str(i) for i in indices[:most]) + (", ..." if len(indices) > most else "")
    return f"{'index' if len(indices) == 1 else 'indices'} {words}"


def held_words(held: "Sequence[DiameterEstimate]") -> str:
    """What ``diameter="each"`` did with images whose resizing was held to the range the working scale may be
    resized to (``held``: their :class:`DiameterEstimate`, each with ``held`` set), in words shared by the library's
    warning and the CLI's note: ``looked 0.083x as magnified ...: resized 8x, not the 9.58x it asked``."""
    from devolens.predict.segment import MAX_ENLARGE, MAX_SHRINK

    m = [e.magnification for e in held]
    span = f"{min(m):.2g}" if min(m) == max(m) else f"{min(m):.2g}-{max(m):.2g}"
    first = held[0]  # (resize * diameter / held: the resize its estimate asked, before the hold)
    how = (f"resized {first.resize:.3g}x, not the {first.resize * first.diameter / first.held:.3g}x it asked"
           if len(held) == 1 else "resized as far as that goes")
    return (f"looked {span}x as magnified as the model's training frames, beyond the range the working scale is held "
            f"to (at most {MAX_ENLARGE:g}x enlarged, {MAX_SHRINK:g}x shrunk): {how}")


def spots_words(estimates: "Sequence[DiameterEstimate]", what: str = "nuclei", library: bool = False,
                each: bool = False) -> str:
    """What ``diameter="auto"`` (``estimates`` of one: the whole sentence) or ``"each"`` (``each``: the images
    segmented so, what they showed and what was done) did where the images' nuclei were smaller than its size model
    reads (``spots``: :class:`DiameterEstimate`), in words shared by the library's warning (``library``: the argument's
    name) and the CLI's note: the diameter the spots measured, the size model's reading, and what was used."""
    give = "diameter=" if library else "--diameter "
    if each:
        sizes = [e.spots for e in estimates]
        span = f"{min(sizes):.0f}" if round(min(sizes)) == round(max(sizes)) else f"{min(sizes):.0f}-{max(sizes):.0f}"
        return (f"showed {what} smaller than the size model reads (it learned from embryos): bright spots of about "
                f"{span} px across, segmented at that size")
    est = estimates[0]
    # the size model's reading to one decimal, as segment's diameter hint (whole pixels gave another working scale);
    # the diameter used is whole already (the spots' size rounded, so that these words give it)
    reading = "none" if est.model_diameter is None else f"{est.model_diameter:.1f}"
    # (the size model's reading as a diameter: the reference's where it kept the images as they are)
    read_as = est.diameter * est.resize / (est.model_resize or 1.0)
    used = (f"they were segmented as {give}{est.diameter:.0f} would" if library else
            f"the run used {give}{est.diameter:.0f}")
    return (f"the {what} measured about {est.spots:.0f} px across, smaller than the size model reads them (it learned "
            f"from embryos, and read the images {est.magnification:.2g}x as magnified as the model's training frames: "
            f"{what} of about {read_as:.0f} px), so {used}, resized {est.resize:.2g}x for the network (give "
            f"{give}{reading} to use the size model's reading instead, or another value, and look at the overlays)")


def style_features(predictor: "_SegmentationPredictor", image: np.ndarray) -> np.ndarray:
    """The features the size model reads from one image (float64 vector).

    The image is prepared as the predictor prepares it at its card's working scale (channel,
    resize, percentile normalisation), cut to the box that holds signal (at most the central
    ``STYLE_WINDOW`` working pixels square), and passed through the float encoder. Features: the
    mean of each channel of the two deepest encoder stages over the whole box and over its bright
    part, and the log of the number of bright working pixels.

    Parameters
    ----------
    predictor : segmentation predictor
        A zoo predictor (its ``network`` holds the float model with an ``encoder``).
    image : ndarray
        ``HxW`` or ``HxWx3``, any size.
    """
    return _features(predictor, _prepared(predictor, image))


def _features(predictor: "_SegmentationPredictor", arr: np.ndarray) -> np.ndarray:
    """:func:`style_features` of an image already prepared at the card's scale."""
    net = predictor.network
    # the signal's own box, not rounded up as for the network's pass: the features are means over the box, which
    # a wider black margin would dilute by an amount that varies with the image
    y0, y1, x0, x1 = net._content_box([arr], quantise=False) if net.crop else (0, arr.shape[0], 0, arr.shape[1])
    # a giant image: its central STYLE_WINDOW x STYLE_WINDOW working pixels tell the magnification as well
    if y1 - y0 > STYLE_WINDOW:
        y0 = (y0 + y1 - STYLE_WINDOW) // 2
        y1 = y0 + STYLE_WINDOW
    if x1 - x0 > STYLE_WINDOW:
        x0 = (x0 + x1 - STYLE_WINDOW) // 2
        x1 = x0 + STYLE_WINDOW
    raw = arr[y0:y1, x0:x1]
    box = net._pad(raw)[0]  # padded by reflection for the network; the pooling weights see only the box
    from devolens.models.zoo import fork_guard

    fork_guard()  # before any torch op (a forked child's first OpenMP use hung), and before the threads are read
    h, w = raw.shape
    inside = np.zeros(box.shape, np.float32)
    inside[:h, :w] = 1.0
    bright = inside * (box > 0.2)
    if net.onnx_encoder:  # the onnx backend: the model's shipped float encoder, in onnxruntime (devolens.predict._ort)
        arr = np.ascontiguousarray(box, np.float32)[None, None]
        return _pooled(net.encoder_features(np.repeat(arr, net.in_channels, axis=1)), inside, bright)
    import torch

    x = torch.from_numpy(np.ascontiguousarray(box, np.float32))[None, None]
    if net.in_channels > 1:
        x = x.expand(-1, net.in_channels, -1, -1)
    encoder = net.model.encoder
    # a predictor in a fast arithmetic (int8 or bf16) reads the features in bf16, channels last: twice as
    # fast, and magnifications within 0.4 % (median; 1.2 % at most, no keep-or-resize decision changed) of
    # fp32 features on 99 held-out renders at 0.5-2x; an fp32 predictor (and the size model's fit) keeps fp32
    device = torch.device(net.device)  # the network's (a GPU when the predictor was loaded with device="cuda")
    # ... where the device runs bf16 natively: a CPU without it (AVX2 only, where auto takes int8) emulates bf16,
    # 8x slower than fp32 there (a 1504x1024 frame's estimate 41 s against 5 s)
    from devolens.predict.devices import native_bf16

    low = net.precision != "fp32" and native_bf16(str(device))
    x = (x.contiguous(memory_format=torch.channels_last) if low else x.contiguous()).to(device)
    if low:
        encoder = encoder.to(memory_format=torch.channels_last)
    # one thread: a movie's estimate runs while its frames are decoded and prepared ahead in another
    # thread, and two OpenMP threads then wait on each other (benchmarks/RESULTS.md, eleventh session).
    # On the main thread only (where devolens's own streams make their estimates): torch.set_num_threads also sets
    # the count every thread starts with, so calls made together in a host's threads (a thread pool, Dask's threaded
    # scheduler) saved one another's 1 and "restored" it, and left the whole process in one thread (the host's
    # torch.set_num_threads(N) overwritten); a host's threads keep the count the host gave them
    threads = torch.get_num_threads() if threading.current_thread() is threading.main_thread() else None
    if threads is not None:
        torch.set_num_threads(1)
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=low):
            feats = encoder(x)
    finally:
        if threads is not None:
            torch.set_num_threads(threads)
    return _pooled([f[0].float().cpu().numpy() for f in feats[-2:]], inside, bright)


def _pooled(feats: Sequence[np.ndarray], inside: np.ndarray, bright: np.ndarray) -> np.ndarray:
    """:func:`style_features` from the two deepest stages' maps (``(C, h, w)`` float32 each, or with a leading batch
    of one): each channel's mean over the box and over its bright part, then the log bright area."""
    out = []
    for f in feats:
        f = f.reshape(f.shape[-3:])
        for mask in (inside, bright):  # mean over the box, mean over its bright part
            wgt = _shrink(mask, tuple(f.shape[-2:]))
            out.append((f * wgt).sum(axis=(1, 2), dtype=np.float32) / max(float(wgt.sum()), 1e-3))
    out.append(np.array([np.log1p(bright.sum())], np.float32))
    return np.concatenate(out).astype(np.float64)


def count_objects(predictor: "_SegmentationPredictor", image: np.ndarray) -> int:
    """Objects in ``image`` as the size model sees it (prepared at the card's scale).

    Bright objects (nuclei; ``predictor.size_objects == "bright"``): the connected components of
    at least 10 working pixels above 0.2 or above 0.5 of the normalised range, whichever finds
    more (the higher level separates the touching nuclei of dense embryos). Enclosed objects
    (cells outlined by a membrane marker, ``"enclosed"``): the components of at least 10 working
    pixels below 0.2 (or below 0.3 after a 1-pixel Gaussian blur, whichever finds more: cells with a
    bright, noisy cytoplasm), except large ones (a tenth of the image) that touch its edge: the
    background around an embryo.

    The size model reads embryos of a few cells unreliably (there is no crowd of objects to
    judge by), so :func:`estimate_diameter` only trusts images with at least ``MIN_OBJECTS``.
    """
    return _count(_prepared(predictor, image), getattr(predictor, "size_objects", "bright"))


def spot_diameter(image: np.ndarray, channel: str = "auto", percentiles: Sequence[float] = (1.0, 99.8),
                  outliers: float = 0.0, largest: float | None = None) -> float | None:
    """The typical diameter (input pixels) of the bright spots (nuclei) of one image, measured on the image alone, not
    by the network: the scale at which the scale-normalised Laplacian of Gaussian responds most inside its bright
    parts (the 90th percentile of its response over the pixels above half the normalised range, lightly smoothed;
    :data:`SPOT_SIGMAS`), as the diameter of a disc read at that scale, ``2 sqrt(2) sigma``. The image is read as the
    network reads it (``channel``, ``percentiles``, ``outliers``), at its resolution, inside its constant border and
    over its central :data:`SPOT_WINDOW` pixels.

    Culture wells of 6-16 px nuclei (``devolens.render.wells``, 3-30 % covered, psf 0.9-1.7 px) read 0.87-1.29x their
    median equivalent diameter (the sparsest the most: blur widens a small spot), the culture images of the
    forty-second session's tests (5-14 px) 1.01-1.16x; embryo renders, whose touching nuclei show texture and
    neighbours at smaller scales, 0.64-1.08x (late frames the least). 0.13-0.16 s for a 512x512 or larger image read
    up to a ``largest`` of 8 px on 2 CPU cores.

    ``largest``: spots larger than this need not be told apart (the scales up to 1.5x it are read): None when the
    response still rises there, and when it is highest at the smallest scale (noise); else the diameter.
    """
    import cv2

    from devolens.predict.postprocess import prepare_image

    arr = _inside(np.asarray(image))
    h, w = arr.shape[:2]
    y0, x0 = max(0, (h - SPOT_WINDOW) // 2), max(0, (w - SPOT_WINDOW) // 2)
    arr = arr[y0:y0 + SPOT_WINDOW, x0:x0 + SPOT_WINDOW]
    if min(arr.shape[:2]) < 16:
        return None
    grey = prepare_image(arr, channel, 1.0, percentiles, 0.0, outliers)
    bright = cv2.GaussianBlur(grey, (0, 0), 1.0) > 0.5
    if bright.sum() < 50:
        return None
    sigmas = SPOT_SIGMAS if largest is None else SPOT_SIGMAS[SPOT_SIGMAS <= 1.5 * largest / (2 * np.sqrt(2))]
    if len(sigmas) < 3:
        return None
    response = np.array([np.percentile(-s * s * cv2.Laplacian(cv2.GaussianBlur(grey, (0, 0), float(s)), cv2.CV_32F,
                                                               ksize=1)[bright], 90) for s in sigmas])
    k = int(np.argmax(response))
    if k == 0 or k == len(sigmas) - 1:
        return None
    a, b, c = response[k - 1:k + 2]  # the peak between the scales read (a parabola in log sigma)
    shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
    return float(2 * np.sqrt(2) * sigmas[k] * 2.0 ** (shift / 4.0))


class _Bright(NamedTuple):
    """The bright regions of an image prepared at the card's scale, labelled once (:func:`_bright`) for both
    :func:`_count` and :func:`_crowded`: the areas of its 8-connected regions above 0.2 and above 0.5 of the
    normalised range (the level that parts touching nuclei), and its size in pixels."""

    low: np.ndarray
    high: np.ndarray
    size: int


def _bright(arr: np.ndarray) -> _Bright:
    """The bright regions of ``arr``, an image prepared at the card's scale (:class:`_Bright`)."""
    import cv2

    areas = [cv2.connectedComponentsWithStats((arr > level).astype(np.uint8), connectivity=8)[2][1:, cv2.CC_STAT_AREA]
             for level in (0.2, 0.5)]
    return _Bright(*areas, int(arr.size))


def _count(arr: "np.ndarray | _Bright", objects: str = "bright") -> int:
    """:func:`count_objects` of an image already prepared at the card's scale (bright objects: or of its regions,
    :func:`_bright`)."""
    import cv2

    if objects == "enclosed":
        found = 0
        h, w = arr.shape[:2]
        # two readings: the frame as it is (dark cells), and lightly smoothed at a higher level (cells whose
        # cytoplasm is bright enough for its noise to break them up at the lower one)
        for level, img in ((0.2, arr), (0.3, cv2.GaussianBlur(arr, (0, 0), 1.0))):
            _, _, st, _ = cv2.connectedComponentsWithStats((img < level).astype(np.uint8), connectivity=4)
            st = st[1:]
            edge = ((st[:, cv2.CC_STAT_LEFT] == 0) | (st[:, cv2.CC_STAT_TOP] == 0)
                    | (st[:, cv2.CC_STAT_LEFT] + st[:, cv2.CC_STAT_WIDTH] >= w)
                    | (st[:, cv2.CC_STAT_TOP] + st[:, cv2.CC_STAT_HEIGHT] >= h))
            area = st[:, cv2.CC_STAT_AREA]
            found = max(found, int(((area >= 10) & ~(edge & (area > 0.1 * h * w))).sum()))
        return found
    regions = arr if isinstance(arr, _Bright) else _bright(arr)
    return max(int((regions.low >= 10).sum()), int((regions.high >= 10).sum()))


def _crowded(arr: "np.ndarray | _Bright") -> bool:
    """Whether an image prepared at the card's scale (or its regions, :func:`_bright`) shows bright objects merged
    into a large region: its largest above 0.5 of the normalised range covers :data:`CROWDED_SHARE` of it or more
    (a late embryo's touching nuclei), but less than :data:`CROWDED_MOST` (a bright background)."""
    regions = arr if isinstance(arr, _Bright) else _bright(arr)
    if not len(regions.high):
        return False
    share = float(regions.high.max()) / regions.size
    return CROWDED_SHARE <= share < CROWDED_MOST


def size_key(predictor: "_SegmentationPredictor") -> tuple:
    """The preparation key (:func:`devolens.predict.postprocess.prep_key`) of the size model's input: the
    predictor's channel, percentiles and outlier removal at the card's scale (whatever the diameter), its background flattened
    as the size model was fitted (``predictor.size_flatten``, card ``input.diameter.auto.flatten``; 0 for size
    models fitted on unflattened images), whatever the predictor's own ``flatten``."""
    from devolens.predict.postprocess import prep_key

    net = predictor.network
    return prep_key(net.channel, predictor.card_scale, net.percentiles, predictor.size_flatten, net.outliers)


def _prepared(predictor: "_SegmentationPredictor", image: np.ndarray) -> np.ndarray:
    """``image`` as the size model reads it (:func:`size_key`): inside its constant border, if any (:func:`_inside`)."""
    return _prepared_inside(predictor, _inside(image))


def _prepared_inside(predictor: "_SegmentationPredictor", image: np.ndarray) -> np.ndarray:
    """:func:`_prepared` of an image already cut to its content (:func:`_inside`)."""
    from devolens.predict.postprocess import prepare_image

    return prepare_image(np.asarray(image), *size_key(predictor))


def _inside(image: np.ndarray) -> np.ndarray:
    """``image`` (an array) cut to the box inside its border of one constant value
    (:func:`devolens.predict.postprocess.border_box`: a padded image, an imaged area in a filled canvas); as it is
    without one. The size model reads an image's content: a border changes its percentiles, what its features are
    averaged over and which mirror images and quarter turns are read (the real reference frame 300 padded with 0 by
    10-100 px on every side read 1.20-1.31x, 1.29x alone: 134-152 nuclei found instead of 138; a render read 0.62x
    alone, 0.83x with a 10 px border of 0 below its background, and was not resized)."""
    from devolens.predict.postprocess import border_box

    arr = np.asarray(image)
    box = border_box(arr)
    return arr if box is None else arr[box[0]:box[1], box[2]:box[3]]


def _shrink(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_AREA).astype(np.float32)


@dataclass
class SizeModel:
    """Ridge regression(s) from :func:`style_features` to ``log(magnification)``.

    With two heads and a gate (the shipped nuclei model: embryos, and cultured cells with
    scattered nuclei), a logistic gate on the same features weighs the heads:
    ``log m = p * head0 + (1 - p) * head1``, ``p`` the gate's probability of the first kind. With
    K > 2 heads the gate is multinomial (``gate_coef`` (K, D), ``gate_intercept`` (K,)): the heads
    weighed by its softmax probabilities.

    Attributes
    ----------
    mean, scale : ndarray
        Standardisation of the features (``(x - mean) / scale``).
    coef : ndarray, (D,) or (K, D)
        Regression coefficients of each head on the standardised features.
    intercept : float or ndarray (K,)
    m0 : float
        Magnification at the middle of the network's training zooms: an image at ``m0`` is
        used at the card's scale as it is.
    gate_coef, gate_intercept : ndarray (D,) and float, or (K, D) and (K,), optional
        Logistic gate between two heads, or multinomial gate between K.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: "float | np.ndarray"
    m0: float
    gate_coef: np.ndarray | None = None
    gate_intercept: "float | np.ndarray" = 0.0

    def magnification(self, features: np.ndarray) -> np.ndarray:
        """Estimated magnification(s) for feature vector(s)."""
        z = (np.atleast_2d(features) - self.mean) / self.scale
        heads = z @ np.atleast_2d(self.coef).T + np.atleast_1d(self.intercept)  # (N, K)
        if self.gate_coef is None or heads.shape[1] == 1:
            return np.exp(heads[:, 0])
        if np.ndim(self.gate_coef) == 2:  # K heads: softmax gate
            s = z @ np.asarray(self.gate_coef).T + np.atleast_1d(self.gate_intercept)
            w = np.exp(s - s.max(axis=1, keepdims=True))
            return np.exp((w / w.sum(axis=1, keepdims=True) * heads).sum(axis=1))
        p = 1.0 / (1.0 + np.exp(-(z @ self.gate_coef + self.gate_intercept)))
        return np.exp(p * heads[:, 0] + (1.0 - p) * heads[:, 1])

    def head_weights(self, features: np.ndarray) -> np.ndarray:
        """How much each head decides for feature vector(s): ``(N, K)``, rows summing to 1 (the gate's
        probabilities; ``(N, 1)`` ones for a model of one head). The shipped nuclei model's first head is the
        embryos' (:attr:`DiameterEstimate.embryo`)."""
        z = (np.atleast_2d(features) - self.mean) / self.scale
        k = np.atleast_2d(self.coef).shape[0]
        if self.gate_coef is None or k == 1:
            return np.ones((z.shape[0], 1))
        if np.ndim(self.gate_coef) == 2:
            s = z @ np.asarray(self.gate_coef).T + np.atleast_1d(self.gate_intercept)
            w = np.exp(s - s.max(axis=1, keepdims=True))
            return w / w.sum(axis=1, keepdims=True)
        p = 1.0 / (1.0 + np.exp(-(z @ self.gate_coef + self.gate_intercept)))
        return np.stack([p, 1.0 - p], axis=1)

    def save(self, path: str | Path) -> None:
        """Write the model to the safetensors file ``path`` (atomically, readable like any other output)."""
        from devolens.io.tensors import save_tensors

        arrays = {"mean": self.mean, "scale": self.scale, "coef": np.atleast_2d(self.coef),
                  "intercept": np.atleast_1d(self.intercept), "m0": np.array([self.m0])}
        if self.gate_coef is not None:
            arrays.update(gate_coef=self.gate_coef, gate_intercept=np.atleast_1d(self.gate_intercept))
        save_tensors({k: np.ascontiguousarray(v, np.float32) for k, v in arrays.items()}, path)

    @classmethod
    def load(cls, path: str | Path) -> "SizeModel":
        from safetensors import SafetensorError

        from devolens.io.tensors import load_tensors

        try:
            t = {k: v.astype(np.float64) for k, v in load_tensors(path, framework="np").items()}
            gate = t.get("gate_coef")
            intercept = 0.0 if gate is None else (t["gate_intercept"] if gate.ndim == 2 else float(t["gate_intercept"][0]))
            heads = np.atleast_2d(t["coef"]).shape[0]
            if gate is not None and (gate.ndim == 2 and gate.shape[0] != heads or gate.ndim == 1 and heads != 2):
                raise ValueError(f"a gate of shape {gate.shape} for {heads} heads")
            return cls(t["mean"], t["scale"], t["coef"], t["intercept"], float(t["m0"][0]), gate, intercept)
        except (OSError, KeyError, ValueError, SafetensorError) as exc:
            raise DevolensError(f"{path}: not a size model ({exc})") from None


@dataclass
class BackdropReader:
    """A second size model, for images on a bright, uneven backdrop (out-of-focus haze, an
    autofluorescent medium, stray light): such a backdrop misleads a size model fitted on
    renders with a dark background, and the network's background flattening then comes too
    late. This one was fitted on images flattened with a disc ``flatten`` working pixels wide
    (card ``input.diameter.auto.backdrop``).

    How much it decides, per image: the backdrop score ``s`` is the mean absolute difference
    between the image as the first size model reads it and the same image flattened (0..1, both
    percentile-normalised); weight 0 up to ``gate[0]``, 1 from ``gate[1]``, linear between, and the
    two log magnifications are mixed by it. Images with a dark background (every render as
    rendered, the real reference frames: ``s`` < 0.03) are read by the first model alone.
    """

    model: SizeModel
    flatten: float
    gate: tuple[float, float]

    @classmethod
    def from_card(cls, folder: str | Path, section: dict | None) -> "BackdropReader | None":
        """The reader of a card's ``input.diameter.auto.backdrop`` section (None without one)."""
        if not section or not section.get("file"):
            return None
        lo, hi = (float(v) for v in section["gate"])
        if not (section.get("flatten") and 0 <= lo < hi):
            raise DevolensError(f"{folder}: card input.diameter.auto.backdrop needs flatten > 0 and a gate lo < hi")
        return cls(SizeModel.load(Path(folder) / section["file"]), float(section["flatten"]), (lo, hi))

    def weight(self, plain: np.ndarray, flat: np.ndarray) -> float:
        """How much this model decides for an image read ``plain`` by the first size model, ``flat`` by this one."""
        score = float(np.mean(np.abs(plain - flat)))
        lo, hi = self.gate
        return float(np.clip((score - lo) / (hi - lo), 0.0, 1.0))


@dataclass
class DiameterEstimate:
    """What ``diameter="auto"`` found.

    Attributes
    ----------
    diameter : float or None
        Typical object diameter (input pixels) to segment with; None when the images are used
        as they are (their estimate inside the predictor's keep band).
    magnification : float
        Estimated magnification relative to the model's reference framing (median over the
        images looked at).
    per_image : list of float
        The estimate of each image looked at.
    trusted : int
        How many of them had at least ``MIN_OBJECTS`` bright objects (and sides of at least ``MIN_SIDE``
        working pixels) and so decided the estimate; 0: none had (an embryo of a few cells), the images
        are used as they are.
    small : int
        How many of them were too small (a side under ``MIN_SIDE`` working pixels) to be judged at all.
    empty : int
        How many of them showed nothing above their noise (an empty field, a camera's dark frame: the predictor's
        :attr:`~devolens.predict.segment._SegmentationPredictor.checks_structure`), whose objects the network would
        read off the noise: not judged (pure noise read 0.25-0.31x and was enlarged 2.6x), as those with too few
        objects.
    crowded : int
        How many of them showed too few bright objects because those merge into a large region (:func:`_crowded`:
        the touching nuclei of a late embryo), which :func:`untrusted_reason` says; recorded only (bright objects).
    backdrop : float
        Median over the images of the weight the backdrop reader (:class:`BackdropReader`) had
        in their estimates: 0 for images with a dark background, or without such a reader.
    resize : float
        How much the images are resized (2.0: enlarged twice) to bring them among the magnifications the model
        was trained on; 1.0 when used as they are.
    frames : list of int or None
        Each image's position in the stream it was read from (0: the first image read), in the order of
        ``per_image``, when :func:`gather` chose them; None when unknown (images given by hand).
    used : list of bool or None
        Which of ``per_image`` the median was taken over (the images that decided; all of them when none did).
    spread : (float, float) or None
        The smallest and largest of those estimates, recorded: a blurred, bleached, drifting rendered movie's
        spread 1.06-1.68, but an as-rendered one's 0.58-0.94 and the real reference frames' 0.79-1.42 (thirtieth
        session's review): no threshold tells a doubtful estimate from a movie's own course, so none is applied.
    held : float or None
        ``diameter="each"``: the diameter the estimate gave where the working scale it asked for lay beyond the range
        a ``scale`` is held to (at most 8x enlarged, 50x shrunk), and ``diameter`` and ``resize`` the nearest that
        range allows; None otherwise.
    embryo : float or None
        How much the size model read the images as embryos: its first head's weight in the gate (the embryos' of
        the shipped nuclei model, beside cultured cells and crowded fields), the median over the images that decided
        (all of them when none did); 1.0 for a size model of one head, None when not read. Recorded for the
        small-nuclei note (:func:`devolens.predict.notes.small_nuclei_check`): renders of embryos and the real
        reference frames read 0.80-1.00, culture wells 0.00.
    spots : float or None
        ``diameter="auto"`` (or ``"each"``) on nuclei smaller than the size model reads: the typical diameter of the
        images' bright spots, measured on them (:func:`spot_diameter`), where the images were segmented at it
        (``diameter``: it rounded, as ``--diameter`` would take it; ``resize`` that diameter's) instead of at the size
        model's reading, because the size model did not read them as embryos and at its reading the spots were
        smaller than the smallest nuclei the network knows (:func:`devolens.predict.notes.small_spots`); None
        otherwise (the size model's reading was used).
    model_diameter, model_resize : float or None
        Where ``spots`` is set: the ``diameter`` (None: the images used as they are) and ``resize`` the size model's
        reading asked for, which the run did not use; None otherwise.
    """

    diameter: float | None
    magnification: float
    per_image: list
    trusted: int = 0
    backdrop: float = 0.0
    small: int = 0
    resize: float = 1.0
    frames: list | None = None
    used: list | None = None
    spread: tuple | None = None
    crowded: int = 0
    held: float | None = None
    embryo: float | None = None
    spots: float | None = None
    model_diameter: float | None = None
    model_resize: float | None = None
    empty: int = 0


def _target(m: float, keep: "tuple[float, float] | None", m0: float) -> float:
    """The magnification images estimated at ``m`` are brought to.

    Inside the keep band: ``m`` (used as they are). Outside: ``m`` mirrored into the band at the
    end it passed (``hi**2 / m`` above, ``lo**2 / m`` below), but no further in than ``m0``: an
    estimate just outside the band moves the image a little, one far out brings it to the middle
    of the zooms the network was trained on. Without a band: ``m0``.
    """
    if keep is None:
        return m0
    lo, hi = keep
    if m > hi:
        return max(hi * hi / m, min(m0, hi))
    if m < lo:
        return min(lo * lo / m, max(m0, lo))
    return m


class Gathered(list):
    """The images :func:`gather` chose (a list), with ``frames``: their positions in the stream (0: the first image
    read), which :func:`estimate_diameter` keeps to say which frames it judged by."""

    frames: list[int]

    def __init__(self, images: Iterable = (), frames: Iterable[int] = ()) -> None:
        super().__init__(images)
        self.frames = list(frames)


def gather(predictor: "_SegmentationPredictor", images: Iterable) -> tuple[list, list]:
    """Read the start of a stream (a movie) for :func:`estimate_diameter`.

    The estimate is the more reliable the more objects an image shows (held-out nuclei renders:
    median error 15 % at 8-16 cells, 7 % above 128), and a movie often starts with an embryo of a
    few cells: images are read until ``AUTO_FRAMES`` of them show at least ``GOOD_OBJECTS``
    objects (the predictor's ``size_good_objects`` when it has one: 32 for membrane slices), or
    ``AUTO_LOOKAHEAD`` images or ``AUTO_BUDGET`` bytes were read; the estimate is
    made from the ``AUTO_FRAMES`` images read that show the most objects, among those with at
    least ``MIN_OBJECTS``. For a predictor that checks its frames for structure (``checks_structure``), a frame of
    noise (:func:`~devolens.predict.postprocess.lacks_structure`: a movie's dark start), whose noise counts as many
    objects, does not count toward those ``AUTO_FRAMES`` and is chosen only after the frames with structure.

    Returns
    -------
    (read, chosen)
        Every item read, in order (to be processed first), and the images to estimate from
        (the first ``AUTO_FRAMES`` read when none had enough objects), in stream order: a :class:`Gathered`
        list, whose ``frames`` are their positions in the stream.
    """
    from devolens.predict.postprocess import Prepared

    key = size_key(predictor)  # frames prepared ahead with this key are counted as they are
    objects = getattr(predictor, "size_objects", "bright")
    enough = getattr(predictor, "size_good_objects", GOOD_OBJECTS)
    checks = getattr(predictor, "checks_structure", False)
    read, counts, good, nbytes = [], [], 0, 0
    noise: set[int] = set()  # the frames of noise among those read (checks_structure)
    for item in images:
        read.append(item)
        arr = item.image if isinstance(item, Prepared) else np.asarray(item)
        nbytes += item.nbytes if isinstance(item, Prepared) else arr.nbytes  # a prepared frame holds both arrays
        n = 0
        if arr.ndim in (2, 3) and min(arr.shape[:2]) >= 2:
            # frames prepared ahead at the card's scale are counted as they are
            n = _count(item.array if isinstance(item, Prepared) and item.key == key else _prepared(predictor, arr),
                       objects)
        counts.append(n)
        # (only frames that would count are looked at: a few objects decide nothing either way)
        if checks and n >= MIN_OBJECTS and predictor._lacks_structure(arr):
            noise.add(len(read) - 1)
        else:
            good += n >= enough
        if good >= AUTO_FRAMES or len(read) >= AUTO_LOOKAHEAD or nbytes >= AUTO_BUDGET:
            break
    raw = [r.image if isinstance(r, Prepared) else np.asarray(r) for r in read]
    best = sorted(range(len(read)), key=lambda i: (i in noise, -counts[i]))[:AUTO_FRAMES]
    picked = [i for i in sorted(best) if counts[i] >= MIN_OBJECTS] or list(range(min(AUTO_FRAMES, len(raw))))
    return read, Gathered((raw[i] for i in picked), picked)


def _read(predictor: "_SegmentationPredictor", arr: np.ndarray, flat: "np.ndarray | None", weight: float,
          heads: "list | None" = None) -> float:
    """The size model's magnification of an image prepared at the card's scale (``arr``); with ``flat`` (the image
    flattened, where the backdrop reader gave it ``weight`` > 0) the two log magnifications mixed by the weight.
    ``heads``: a list to append the first size model's head weights to (:meth:`SizeModel.head_weights`; the
    magnification is the same)."""
    features = _features(predictor, arr)
    m = float(predictor.size_model.magnification(features)[0])
    if heads is not None:
        weigh = getattr(predictor.size_model, "head_weights", None)
        heads.append(None if weigh is None else float(weigh(features)[0, 0]))
    if flat is None:
        return m
    m_flat = float(predictor.size_backdrop.model.magnification(_features(predictor, flat))[0])
    return float(np.exp((1.0 - weight) * np.log(m) + weight * np.log(m_flat)))


def _views(arr: np.ndarray, flat: "np.ndarray | None", weight: float) -> Iterator[tuple]:
    """:func:`_read`'s arguments for the seven other mirror images and quarter turns of a prepared image."""
    for turns in range(4):
        for mirror in (False, True):
            if turns or mirror:
                arr_, flat_ = (None if a is None else np.ascontiguousarray(np.rot90(a, turns)[:, ::-1] if mirror
                                                                          else np.rot90(a, turns)) for a in (arr, flat))
                yield arr_, flat_, weight


def estimate_diameter(predictor: "_SegmentationPredictor", images: Sequence[np.ndarray]) -> DiameterEstimate:
    """Estimate the diameter to segment ``images`` with (one magnification for all of them).

    Parameters
    ----------
    predictor : segmentation predictor with a size model (``predictor.size_model``)
    images : sequence of ndarray
        A few images of the same magnification (e.g. frames of one movie); the median of their
        estimates is used. A :class:`Gathered` list (from :func:`gather`) also tells their positions in the
        stream (the estimate's ``frames``).

    Returns
    -------
    DiameterEstimate
        Only images with at least ``MIN_OBJECTS`` bright objects (:func:`count_objects`) decide, and not those in
        which nothing stands out from their noise (``predictor.checks_structure``: an empty field's noise reads as
        objects, and as a low magnification: ``empty``);
        when none decides, the images are used as they are (``diameter`` None, ``trusted`` 0).
        With a keep band (``predictor.auto_keep``, card ``input.diameter.auto.keep``: the
        magnifications the network was trained on), images whose estimate lies inside it are
        used as they are (``diameter`` None) and the others are mirrored into the band, at
        most to the size model's ``m0`` (see :func:`_target`); without one, every image is
        brought to ``m0``. Where at most ``FEW_JUDGED`` images decide, each one's estimate is the median over its
        eight mirror images and quarter turns (an image's estimate does not depend on how it was turned).

    Raises
    ------
    DevolensError
        The model has no size model, or no image was given.
    """
    model = predictor.size_model
    if model is None:
        raise DevolensError("this model has no size model (card input.diameter.auto): give the diameter in pixels")
    positions = getattr(images, "frames", None)
    images = list(images)
    if not images:
        raise DevolensError("diameter='auto' needs at least one image to look at")
    frames = [int(f) for f in positions] if positions is not None and len(positions) == len(images) else None
    per, trusted, weights, small, crowded, empty = [], [], [], 0, 0, 0
    embryo: list = []  # each image's embryo head weight (DiameterEstimate.embryo)
    checks = getattr(predictor, "checks_structure", False)
    decided: list[bool] = []
    reader = getattr(predictor, "size_backdrop", None)
    objects = getattr(predictor, "size_objects", "bright")
    prepared = []  # (kept for the few images that decide alone: read again in their eight views)
    for img in images:  # one preparation per image for both the features and the object count
        img = _inside(img)  # (its constant border, if any, off for both readings)
        arr = _prepared_inside(predictor, img)
        flat, w = None, 0.0
        if reader is not None:  # a bright uneven backdrop: (also) read on the flattened image
            from devolens.predict.postprocess import prepare_image

            channel, scale, percentiles, _, outliers = size_key(predictor)
            flat = prepare_image(np.asarray(img), channel, scale, percentiles, reader.flatten, outliers)
            w = reader.weight(arr, flat)
            weights.append(w)
            if w <= 0:
                flat = None
        prepared.append((arr, flat, w))
        per.append(_read(predictor, *prepared[-1], heads=embryo))
        judged = False
        seen = _bright(arr) if objects == "bright" else arr  # labelled once, for the count and the crowded check
        if min(arr.shape) < MIN_SIDE:
            small += 1
        elif checks and predictor._lacks_structure(img):  # noise, whose specks read as objects: no evidence
            empty += 1
        elif _count(seen, objects) >= MIN_OBJECTS:
            trusted.append(per[-1])
            judged = True
        elif objects == "bright" and _crowded(seen):
            crowded += 1  # (said, not judged: the estimate is made as before)
        decided.append(judged)
    if 0 < len(trusted) <= FEW_JUDGED:
        # an image's estimate changes with its orientation (the real reference frame 300 turned or mirrored: 117-153
        # nuclei found); where one or two images decide, each is read in its eight mirror images and quarter turns
        # (the median: 134-140 nuclei) at eight times the reading; a stream's five images vary enough among themselves
        for i in np.flatnonzero(decided):
            per[i] = float(np.median([per[i]] + [_read(predictor, *view) for view in _views(*prepared[i])]))
        trusted = [per[i] for i in np.flatnonzero(decided)]
    m = float(np.median(trusted or per))
    backdrop = float(np.median(weights)) if weights else 0.0
    used = decided if trusted else [True] * len(per)
    combined = trusted or per
    # recorded, not judged: how far apart the combined estimates lie
    read_as = [e for e, u in zip(embryo, used) if u and e is not None]
    record = dict(frames=frames, used=used, spread=(float(min(combined)), float(max(combined))), crowded=crowded,
                  embryo=float(np.median(read_as)) if read_as else None, empty=empty)
    if not trusted:  # a few nuclei: too few to judge the magnification by (estimates run low there)
        return DiameterEstimate(diameter=None, magnification=m, per_image=per, trusted=0, backdrop=backdrop,
                                small=small, **record)
    keep = predictor.auto_keep
    target = _target(m, keep, model.m0)
    diameter = None if target == m else float(predictor.diameter_ref) * m / target
    return DiameterEstimate(diameter=diameter, magnification=m, per_image=per, trusted=len(trusted), backdrop=backdrop,
                            small=small, resize=target / m, **record)
