"""Corrupt-frame curation: find black, dark, bright, red-striped, red-patched, duplicated, dropped
and damaged (decoded from corrupt video data) frames in a timelapse.

The scorer makes one streaming pass over the frames and keeps, per frame, a handful of
numbers and a bit-packed map of its red blocks, plus a small downsampled copy of the
previous frame only (never the video); the decisions are then
taken in an O(n_frames) post-pass that compares every frame with its own sequence
(neighbouring frames), so the thresholds adapt to dim early embryos and bright late ones,
to noisy and clean recordings, to PNG folders and to lossy video alike.

What is measured (intensities in 8-bit grey levels, whatever the input dtype: 0..255 for uint8 input, a 16-bit
(or narrower) integer type's largest value reading 255, 65535 for wider integers (int32 TIFFs of 12- or 16-bit
data), 1 for a float image in 0..1; other float images (camera counts, deconvolved, background-subtracted or
flat-field-corrected output) in their sequence's range, so that its frames are compared on one scale: each frame's
own is its 99.9th percentile rounded up to a power of two (a 0..1 image with a few pixels past 1 stays a 0..1
image), and the sequence's is that of its first frame that is not blank, unless that lies more than a factor 2 from
the median of its frames' own (a white flash, or a nearly black frame, first: the good frames after it would read
far dimmer, black, or far brighter), then that median; negative values read 0):

- ``level``: mean over pixels of the brightest channel; ``p99``: its 99th percentile;
  ``clipped``: the fraction of pixels where it is at the top of the range (within 1/255 of it: 254 or 255 in 8-bit
  input; saturated), the range the sequence shows: the lowest bit depth of 8, 12, 14, 16 bits (then 4 more at a
  time; for floats 1 first) that all but 0.1 % of the pixels of each of its frames keep within (12-bit data in a
  uint16 file saturate at 4095, not at 65535), or, input other than 8-bit, the sequence's highest value where its
  frames pile up at it (a camera that saturates below its bit depth, data converted after saturating), a few hot
  pixels far above the pixels around them left out (one at 4095 in every frame of a camera saturating at 3000);
  ``contrast``: 99th percentile minus median of that channel averaged over blocks;
  ``foreground`` (used internally, not in the report): mean of the blocks (of 1/64 of the
  height) brighter than halfway from their median to the brightest block, minus that median:
  how bright the nuclei are above the background, whatever their number; ``peak_snr`` (also
  internal): how far the block furthest from the median block (brighter, or darker: a brightfield
  frame's embryo) stands from it in units of the noise,
  the largest of four readings: the block means' own noise (the robust spread of neighbouring
  blocks' differences) for the blocks of ``contrast`` and for blocks 2 and 4 times their side (a
  large faint object stands out more in larger blocks), and twice what the pixel noise (pixels
  4 apart) leaves in a block mean (texture as fine as the blocks reads as noise in their
  differences, not in the pixels'); ``spot`` (internal): how far the brightest group of 2 x 2 neighbouring
  blocks of 8 pixels, read by its dimmest block, stands above the median block (or the darkest group below
  it): what a single nucleus reaches, which covers too few blocks for ``contrast``'s 99th percentile, while a
  lone block (a hot pixel, a video's speck) does not; graphics burnt into the frame (a scale bar and its label, a
  time stamp: flat plateaus with sharp edges, strokes thinner than 5 pixels) left out, so that a black frame
  carrying them stays black (a nucleus is wider and has noise; a saturated one a blurred rim). Level,
  ``contrast``, ``foreground``, ``peak_snr`` and ``spot`` leave a frame's hot pixels out (up to 16 pixels, each far
  above the pixels around it, as for ``clipped``: set to the brightest of their neighbours); ``grain`` (internal):
  the pixel noise of the frame's mean over its channels (pixels 4 apart, at least the rounding of its grey
  levels) brought to the change measure's blocks: what noise alone puts into ``change``.
- ``red_line_score``: the largest fraction of a row or column covered by red pixels (red
  exceeds both green and blue by ``red_delta`` levels), over thin bands only (thick
  bands count as patches) that stand out from the rows beside them (a broad red reporter
  whose row fractions hover around the threshold makes no line).
- ``red_area``: fraction of the frame in blocks that are mostly red pixels (outside the
  line bands); ``red_patch_score``: area of the largest connected group of such blocks
  that is absent from the two frames before and the two after (copies left out).
- ``change``: mean absolute difference between the frame and its predecessor after
  block-averaging both to about 64 rows, relative to their mean level.
- ``time``: a folder's time point (the number in file names like ``t012.png``), a TIFF stack's (whose
  metadata record its interval) or a video's seconds since its first frame: two units, which the report of
  :func:`curate_path` names in its column ``time_unit`` (``time point`` or ``seconds``).

Decisions (per sequence; a sequence is one video, or the frames of a folder sharing a name
prefix ``<embryo>_tNNN``):

- black: the larger of ``contrast`` (p99 minus median of the block-averaged brightest channel, so that
  camera noise averages out) and ``spot`` (a single nucleus: a 1-cell embryo's first frames, whose one
  nucleus covers under 1 % of the blocks, read a ``contrast`` of their noise) below ``black_level`` of the
  input's own grey levels (8-bit ones for 8-bit and float input, a 16-bit camera's counts for 16-bit input: a
  dim 12-bit movie of clear nuclei has a block contrast of a fraction of an 8-bit level) or ``black_rel`` x the
  sequence's median ``contrast``, or nothing standing out from the frame's own noise: ``peak_snr`` below
  ``black_snr`` (a lens cap or a camera warming up: a grey of noise, whose block contrast that noise keeps
  above one grey level, dim or raised to mid-grey by a phone's exposure; pure noise reads 3-11 however strong
  and, up to H.264's crf 28, however compressed, its hot pixels left out, a frame holding a single nucleus 40
  and more, a dim one 5 times the pixel noise above the background 20 and more). A frame of one dim nucleus
  (a few hundred pixels at 5-10 times the noise) reads a ``spot`` of a few grey levels, a lens cap's noise
  (up to 4 grey levels' noise in 8-bit, hot pixels and a video's specks of compression included) under one.
- dark: ``level`` below ``dark_ratio`` x the lower of the median levels of the ``window``
  frames before and of those after (black, dark and bright frames left out, so a steady rise or
  fall is no dark frame), and either well outside the sequence's own spread of such ratios, or
  with its ``foreground`` also below ``dark_ratio`` x the lower of the neighbours' medians of it
  and outside the sequence's own spread of foreground ratios (a fast-growing embryo filmed at a
  coarse time step spreads the level ratios so wide that a frame dimmed to x0.3 falls inside
  them; its nuclei dim with it, while their brightness does not grow with their number). A
  frame with neighbours on one side only (the first or last frame) has no lower side to
  take, and a growing embryo's first frame has fewer nuclei than every frame after it: such
  a frame must also have its ``foreground`` far below the median of that side's, by the same
  rule (a dimmed frame loses both in proportion; fewer nuclei lower the mean only).
- bright: the mirror of dark (a lamp flickering up, often saturating the nuclei): ``level``
  above ``1 / dark_ratio`` x the higher of the median levels of the ``window`` frames before
  and of those after (black, dark and bright frames left out, so a steady rise or fall is no
  bright frame, nor is a division burst: the frames after it keep its brightness), and either
  well outside the sequence's own spread of such ratios (``dark_sigmas``) with its
  ``contrast`` above ``1 / dark_ratio`` x the lower of the neighbours' medians (a brighter lamp
  brightens nuclei and background alike; the histone a mitotic cell of an early embryo spreads
  through its cytoplasm raises the level, not the contrast), or saturated: ``clipped`` at least
  ``clip_area`` and ``clip_ratio`` x the higher of the neighbours' medians, its contrast (which
  saturation caps) not below ``dark_ratio`` x theirs (a fast-growing embryo filmed at a coarse
  time step spreads the level ratios wide: a saturated frame is bright whatever that spread). A
  frame with neighbours on one side only (a growing embryo's last frame has more nuclei than
  every frame before it) must also have its ``foreground`` far above that side's, by the dark
  rule.
- red_line: ``red_line_score`` above ``line_fraction`` and well above the median of the
  neighbouring frames.
- red_patch: ``red_patch_score`` above ``patch_area`` (and ``patch_min_blocks``). Only red
  that appears in one frame counts, so a red reporter that persists from frame to frame
  (drifting by a few pixels) is not flagged.
- duplicate: ``change`` below ``dup_ratio`` x the lower quartile of the changes between
  ordinary frames (not black, dark or striped) among the ``2 * window`` on each side, leaving
  out the changes that are near zero (below ``dup_noise`` x what the two frames' noise alone
  makes: repeats, so that a run of them, a screen recorder holding each image for 15 frames,
  does not become its own reference), or near zero itself, or exactly zero. Real consecutive
  frames always differ a little (motion, fresh noise), a repeat does not (and stays
  near-identical through video compression; so do the frames of a video of an unchanging
  scene whose encoder dropped the noise's changes: a still slide filmed at 60 fps is its first
  frame and repeats of it).
- dropped: a missing time in the numbering of a folder's file names (``tNNN``, or the number
  that ends every name of one pattern: ``frame_1.png`` ... ``frame_20.png``), at the
  sequence's usual time step (one extra row per missing time, with ``frame`` and
  ``file`` empty); in a video, frames ffmpeg could not decode in the middle of the file (a
  damaged stretch, found from the timestamps of a constant-rate video: see
  :mod:`devolens.io.missing`), with their frame numbers, which the frames after them keep.
- unreadable: a file of a folder that cannot be read as an image (truncated, empty, not an
  image), with its frame number and file name.
- corrupt: a frame of a video decoded from damaged data: ffmpeg complained about it while
  decoding, or it was decoded from such a frame before the next key frame (smeared or
  blocky; :meth:`devolens.io.video.VideoDamage.corrupt_frames`, found by decoding the video
  once more when ffmpeg reported damaged data). Its measurements are kept.

When several apply, the main ``flag`` is the first of
``corrupt, black, duplicate, dark, red_line, red_patch, bright`` (what a frame decoded from
damaged data looks like is a consequence of the damage; a repeat of a dark or bright frame is
a duplicate; a repeat of a black frame is black; a red line or patch can brighten a frame
enough to make it bright too).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from devolens.errors import DevolensError, command_running, option
from devolens.io.frames import (  # noqa: F401  (re-exported: the frame sources moved to devolens.io.frames)
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    check_channel_input,
    image_stem,
    iter_path_frames,
)

__all__ = [
    "KINDS",
    "Thresholds",
    "score_frames",
    "curate_path",
    "iter_path_frames",
    "flagged_frames",
    "flagged_files",
    "mark_corrupt",
    "summarize",
    "frame_signal",
    "black_or_dark",
    "reading_options",
]

#: Artifact kinds the curator reports, in the order of precedence of the main flag
#: (``dropped`` and ``unreadable`` rows stand for frames that are missing, so they never compete:
#: ``corrupt`` marks frames that were decoded only).
KINDS = ("corrupt", "black", "duplicate", "dark", "red_line", "red_patch", "bright", "dropped", "unreadable")
#: the kinds of a frame that could not be read (no measurements), by MissingFrame.reason
_MISSING_KINDS = {"lost": "dropped", "unreadable": "unreadable"}


#: a file name like ``t012.png``, ``emb1_t012.png`` (less an OME-TIFF's ``.ome``): sequence, time point; ``T012.png``
#: too, as the frames are ordered (natural order, whatever the case: a time for ``t2.png`` and none for ``T1.png``
#: before it misled)
_NAME_RE = re.compile(r"^(?:(?P<seq>.*?)_)?[tT](?P<time>\d+)(?:_[^.]*)?(?:\.[A-Za-z0-9]+)?$")
#: a file name whose stem ends in a number (``frame_7.png``, ``img_0007.ome.tif``): text before it, number, extension
_NUMBERED_RE = re.compile(r"^(?P<prefix>.*?)(?P<num>\d+)(?P<ext>(?:\.[A-Za-z][A-Za-z0-9]*)+)?$")


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds of the curator (defaults checked, with wide margins, on rendered
    timelapses: see benchmarks/results_curate.md).

    Attributes
    ----------
    black_level : float
        A frame whose contrast (99th percentile minus median of the brightest channel
        averaged over blocks of 1/64 of the height, at least 8 pixels) and spot (the brightest
        2 x 2 blocks of 8 pixels, by their dimmest: a single nucleus) are below this many of
        its grey levels (8-bit grey levels for 8-bit and float input, counts for 16-bit input)
        is black ...
    black_rel : float
        ... or both below this fraction of the sequence's median contrast ...
    black_snr : float
        ... or whose brightest block stands above the median block by less than this many times
        the block means' own noise (``peak_snr``: nothing but noise in it).
    dark_ratio : float
        A frame whose mean level is below this fraction of its neighbours' median is dark
        (when the sequence's own spread of ratios does not explain it, see ``dark_sigmas``, or
        its foreground is below this fraction of theirs too);
        one above ``1 / dark_ratio`` times it is bright (the same test, mirrored: 0.7 means
        dimmer than 0.7x, or brighter than 1.43x).
    dark_sigmas : float
        Robust standard deviations (of the log level ratio over the sequence) a dark frame
        must lie below its neighbours (a bright frame above them, unless it is saturated:
        see ``clip_area``).
    clip_area : float
        A frame brighter than ``1 / dark_ratio`` times its neighbours is bright, whatever the
        sequence's spread of ratios, when at least this fraction of its pixels is clipped
        (saturated: at the top of the range) ...
    clip_ratio : float
        ... and at least this many times the fraction of its neighbours (the higher of the
        medians before and after).
    red_delta : float
        A pixel is red when its red value exceeds green and blue by this many grey levels.
    line_fraction : float
        A row (column) is part of a red line when at least this fraction of it is red.
    line_max_thickness : float
        Bands of line rows (columns) thicker than this fraction of the frame height (width)
        are patches, not lines.
    patch_block : int
        Side of the blocks (pixels) in which red density is measured for patches.
    patch_density : float
        A block whose red-pixel fraction is at least this is a red block.
    patch_area : float
        A red patch is a red region, absent from the two frames before and after, that
        covers at least this fraction of the frame ...
    patch_min_blocks : int
        ... and at least this many blocks.
    dup_ratio : float
        A frame whose change from its predecessor is below this fraction of the lower
        quartile of the neighbouring frames' changes is a duplicate.
    dup_noise : float
        A change below this fraction of what the two frames' noise alone makes (two exposures of
        an unchanging scene: about 1 in theory, but structure inflates the noise estimate and a
        background clipped at 0 lowers the change: 0.33-0.73 measured, so 0.3) is near zero: the
        frame is a repeat, and its change is left out of its neighbours' reference (a phone's
        re-encoded still slide: 72 of its 89 repeats at 0.3, all at 0.6).
    window : int
        Neighbouring frames taken on each side for the sequence-relative references (the
        dark test takes the lower of the two sides' medians, the bright test the higher).
    small_rows : int
        Rows of the downsampled copy kept for the change measure.
    """

    black_level: float = 1.0
    black_rel: float = 0.01
    black_snr: float = 12.0
    dark_ratio: float = 0.7
    dark_sigmas: float = 6.0
    clip_area: float = 0.01
    clip_ratio: float = 4.0
    red_delta: float = 40.0
    line_fraction: float = 0.3
    line_max_thickness: float = 0.04
    patch_block: int = 8
    patch_density: float = 0.4
    patch_area: float = 0.004
    patch_min_blocks: int = 4
    dup_ratio: float = 0.3
    dup_noise: float = 0.3
    window: int = 4
    small_rows: int = 64


# --------------------------------------------------------------------------- per frame


#: the top of a wide integer's (int32, uint32, 64-bit) range as these measures read it: a 16-bit camera's (values
#: beyond it read above 255 grey levels; 12-bit data in an int32 TIFF measure as in a uint16 one)
_WIDE_RANGE = 65535.0


def _planes(image: np.ndarray,
            value_range: float | None = None) -> tuple[list[np.ndarray], bool, float | None, float | None]:
    """Split a frame into contiguous channel planes in 8-bit grey levels.

    uint8 frames stay uint8 (fast path); other dtypes become float32 scaled so that ``value_range`` (the input value
    that reads 255) reads 255, and negative values 0: the dtype's largest value for 16-bit (and narrower) integers,
    65535 for wider ones (:data:`_WIDE_RANGE`), and for floats the given ``value_range`` (a sequence's: its first
    non-blank frame's, in which :func:`score_frames` reads the frames after it, brought to the sequence's
    afterwards by :func:`_one_range`) or, when None, the frame's own (:func:`_float_range`: 1 for an image in
    0..1). Returns (planes, is_colour, value_range, own_range): one plane for a grey frame, three (R, G, B) for a
    colour one (a colour frame whose channels are all equal counts as grey), the range used (255 for uint8 and
    boolean frames; None for a float frame with nothing above 0 to judge its range by, read as a 0..1 image) and
    a float frame's own range (:func:`_float_range`; None for integer frames and blank float ones).
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)) or a.size == 0:
        raise DevolensError(f"expected an H x W or H x W x 3 image, got shape {a.shape}")
    top: float | None
    own: float | None = None
    if a.dtype == np.uint8:
        conv, top = None, 255.0
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * np.uint8(255)
        conv, top = None, 255.0
    elif np.issubdtype(a.dtype, np.integer):
        top = float(np.iinfo(a.dtype).max) if a.dtype.itemsize <= 2 else _WIDE_RANGE
        conv = np.float32(255.0 / top)
    else:
        # values beyond float32's safe range (a float64 frame times 1e300 or 1e-300, a float32 one near its top or
        # its smallest values: :func:`~devolens.predict.postprocess.float32_shift`) are read in float64 down to their
        # grey levels: a float32 cast made them inf (read as 0: a bright frame called black) or 0, and the
        # conversion factor of tiny values overflowed. Their range is a power of two, so they read as the same frame
        # at an ordinary scale does
        from devolens.predict.postprocess import FLOAT_SAFE, float32_shift

        wide = float32_shift(a) != 0
        a = np.nan_to_num(a.astype(np.float64 if wide else np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        own = _float_range(a)
        top = value_range if value_range is not None else own
        conv = 255.0 / (top or 1.0) if wide else np.float32(255.0 / (top or 1.0))
    if a.ndim == 2:
        planes = [np.ascontiguousarray(a)]
    else:  # (one copy of the channels-first array: half the time of three strided copies)
        planes = list(np.ascontiguousarray(a.transpose(2, 0, 1)))
    if conv is not None and a.dtype == np.float64:  # (grey levels capped within float32's range)
        planes = [np.clip(p * conv, 0.0, FLOAT_SAFE[1]).astype(np.float32) for p in planes]
    elif conv is not None:  # (no upper bound: a float frame brighter than its sequence's first reads above 255)
        planes = [np.maximum(p.astype(np.float32) * conv, np.float32(0.0)) for p in planes]
    if len(planes) == 3 and np.array_equal(planes[0], planes[1]) and np.array_equal(planes[1], planes[2]):
        return planes[:1], False, top, own
    return planes, len(planes) == 3, top, own


#: the share of a frame's pixels that may lie above its range's top (:func:`_float_range`, :func:`_ceiling`): hot
#: pixels, a pixel a deconvolution or a percentile normalisation took past 1
_ABOVE_TOP = 0.001


def _subsample(plane: np.ndarray) -> np.ndarray:
    """Every other pixel of large planes (over 40,000 pixels), the plane itself otherwise: what percentiles read."""
    return plane[::2, ::2] if plane.size > 40_000 else plane


def _float_range(a: np.ndarray) -> float | None:
    """The value that reads 255 grey levels in a float frame ``a`` (H x W or H x W x 3, finite): 1 for an image in
    0..1 (its 99.9th percentile at most 1: a pixel a deconvolution took to 1.02 leaves it one), else that
    percentile rounded up to a power of two (camera counts, a background-subtracted or flat-field-corrected
    image: a few powers of two apart from frame to frame at most, so frames measured each on its own stay
    comparable); None when it is not above 0 (a blank frame: nothing to judge by). A percentile under float32's safe
    range (:data:`~devolens.predict.postprocess.FLOAT_SAFE`: a frame in units of 1e-300) is no dim 0..1 image but one of
    tiny units: rounded up to a power of two too, as the same frame at an ordinary scale reads."""
    from devolens.predict.postprocess import FLOAT_SAFE

    sub = _subsample(a)
    if sub.ndim == 3:
        sub = sub.max(axis=2)
    t = float(np.percentile(sub, 100.0 * (1.0 - _ABOVE_TOP)))
    if not t > 0:
        return None
    return 1.0 if FLOAT_SAFE[0] <= t <= 1.0 else float(2.0 ** math.ceil(math.log2(t)))


def _ceilings(is_float: bool):
    """The tops a frame's values may be saturated at, in the input's own units, lowest first: the bit depths a
    camera records (8, 12, 14, 16 bits, then 4 bits more at a time), preceded by 1 for floats (an image in 0..1)."""
    if is_float:
        yield 1.0
    for bits in (8, 12, 14, 16):
        yield float(2 ** bits - 1)
    bits = 20
    while True:
        yield float(2 ** bits - 1)
        bits += 4


def _ceiling(mx: np.ndarray, value_range: float | None, dtype: np.dtype) -> float:
    """The top of the range a frame's brightest channel ``mx`` (8-bit grey levels, in which ``value_range`` of the
    input of ``dtype`` reads 255) shows, in the same grey levels: the lowest of :func:`_ceilings` that at most
    ``_ABOVE_TOP`` of its pixels exceed, and at most the largest value of a 16-bit (or narrower) integer type (255
    for uint8 input; 15.9 for 12-bit data in a uint16 frame)."""
    if mx.dtype == np.uint8:
        return 255.0
    dtype = np.dtype(dtype)
    is_float = not np.issubdtype(dtype, np.integer)
    limit = float(np.iinfo(dtype).max) if not is_float and dtype.itemsize <= 2 else math.inf
    value_range = value_range or 1.0
    sub = _subsample(mx)
    allowed = _ABOVE_TOP * sub.size
    for top in _ceilings(is_float):
        if top >= limit:
            return 255.0 * limit / value_range
        if np.count_nonzero(sub > 255.0 * top / value_range) <= allowed:
            return 255.0 * top / value_range
    raise AssertionError("unreachable")  # pragma: no cover


def _percentile99(plane: np.ndarray) -> float:
    """99th percentile of a plane (every other pixel of large planes), grey levels."""
    sub = _subsample(plane)
    if sub.dtype == np.uint8:
        cum = np.cumsum(np.bincount(sub.ravel(), minlength=256))
        return float(np.searchsorted(cum, 0.99 * cum[-1]))
    return float(np.percentile(sub, 99.0))


def _block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """Average ``a`` (H x W) over ``factor`` x ``factor`` blocks (edges cropped), as float32.

    uint8 and bool planes whose block sums stay below 2**24 are summed as integers, rows first (a float32 sum of them is exact in any order: the same result, several times faster
    than a float reduction over two strided axes)."""
    if factor <= 1:
        return a.astype(np.float32, copy=False)
    h = (a.shape[0] // factor) * factor
    w = (a.shape[1] // factor) * factor
    if h == 0 or w == 0:
        return a.astype(np.float32, copy=False)
    if a.dtype in (np.uint8, np.bool_) and 255 * factor * factor < 2**24:
        acc = np.uint16 if 255 * factor * factor < 2**16 else np.uint32
        rows = a[:h, :w].reshape(h // factor, factor, w).sum(axis=1, dtype=acc)
        cols = rows.reshape(h // factor, w // factor, factor)
        sums = cols[..., 0].copy()
        for k in range(1, factor):  # (strided adds: faster than a reduction over a short last axis)
            sums += cols[..., k]
        return sums.astype(np.float32) / np.float32(factor * factor)
    return a[:h, :w].reshape(h // factor, factor, w // factor, factor).sum(axis=(1, 3), dtype=np.float32) / np.float32(
        factor * factor
    )


def _thin_band_rows(frac: np.ndarray, threshold: float, max_thick: int, min_excess: float = 0.0) -> np.ndarray:
    """Boolean mask of entries in runs of ``frac >= threshold`` no longer than ``max_thick``
    that stand out by at least ``min_excess`` from the rows beside them.

    The rows beside a run are the ``max_thick`` on each side past a 2-row margin (video
    compression smears a line); the run's peak must exceed the median of each side by
    ``min_excess``. A line is a sharp ridge; a broad red area whose row fractions hover
    around ``threshold`` (a red reporter) crosses it in thin fragments of a plateau.
    """
    on = frac >= threshold
    out = np.zeros_like(on)
    if not on.any():
        return out
    labels, n = ndimage.label(on)
    sizes = np.bincount(labels.ravel())
    for k in range(1, n + 1):
        if sizes[k] > max_thick:
            continue
        band = labels == k
        if min_excess > 0:
            idx = np.flatnonzero(band)
            lo, hi = int(idx[0]), int(idx[-1])
            sides = [frac[max(0, lo - 2 - max_thick):max(0, lo - 2)], frac[hi + 3:hi + 3 + max_thick]]
            beside = max((float(np.median(x)) for x in sides if x.size), default=0.0)
            if float(frac[band].max()) - beside < min_excess:
                continue
        out |= band
    return out


def _red_scores(r: np.ndarray, g: np.ndarray, b_: np.ndarray, th: Thresholds, others: np.ndarray | None = None,
                brightest: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """(line score, red block map) of one colour frame (R, G, B planes, grey levels; ``others``, the brighter of
    green and blue, and ``brightest``, of all three, where already known).

    The block map marks the ``patch_block``-sized blocks that are mostly red pixels,
    outside the red line bands.
    """
    if others is None:
        others = np.maximum(g, b_)
    if th.red_delta >= 0:  # (red minus the others where red is the brightest, 0 elsewhere: no wider copy)
        red = (np.maximum(r, others) if brightest is None else brightest) - others
    elif r.dtype == np.uint8:
        red = r.astype(np.int16) - others.astype(np.int16)
    else:
        red = r - others
    mask = red > th.red_delta
    h, w = mask.shape
    b = max(1, int(th.patch_block))
    if not mask.any():
        return 0.0, np.zeros((max(1, h // b), max(1, w // b)), dtype=bool)
    row_frac = mask.mean(axis=1)
    col_frac = mask.mean(axis=0)
    excess = 0.5 * th.line_fraction  # a line stands out from the rows beside it
    line_rows = _thin_band_rows(row_frac, th.line_fraction, max(3, int(round(th.line_max_thickness * h))), excess)
    line_cols = _thin_band_rows(col_frac, th.line_fraction, max(3, int(round(th.line_max_thickness * w))), excess)
    line = 0.0
    if line_rows.any():
        line = max(line, float(row_frac[line_rows].max()))
    if line_cols.any():
        line = max(line, float(col_frac[line_cols].max()))
    if line_rows.any() or line_cols.any():
        mask = mask.copy()
        # clear the line bands plus a 2-pixel margin (video compression smears them)
        grow = np.ones(5, dtype=bool)
        mask[ndimage.binary_dilation(line_rows, grow), :] = False
        mask[:, ndimage.binary_dilation(line_cols, grow)] = False
    dens = _block_mean(mask, b)
    return line, dens >= th.patch_density


_EIGHT = np.ones((3, 3), dtype=bool)
_RED_REACH = 2  # neighbours on each side a red region must be absent from to be transient


def _transient_area(red: np.ndarray, neighbours: list[np.ndarray], frame_px: int, block: int) -> float:
    """Area (fraction of the frame) of the largest red region absent from all neighbours.

    A red reporter persists from frame to frame (drifting by a few pixels, hence the
    one-block dilation of the neighbours); an artifact patch is there in one frame only.
    """
    if not red.any():
        return 0.0
    new = red.copy()
    for nb in neighbours:
        if nb.shape == red.shape and nb.any():
            new &= ~ndimage.binary_dilation(nb, _EIGHT)
    if not new.any():
        return 0.0
    labels, _ = ndimage.label(new, structure=_EIGHT)
    sizes = np.bincount(labels.ravel())[1:]
    return float(sizes.max()) * block * block / float(frame_px)


def _brightest(planes: list[np.ndarray]) -> np.ndarray:
    """The brightest channel of a frame's planes, pixel by pixel."""
    mx = planes[0]
    for p in planes[1:]:
        mx = np.maximum(mx, p)
    return mx


def _spread(diffs: np.ndarray) -> float:
    """The noise of the values whose differences ``diffs`` are: robust (the median absolute difference, so that
    the few differences across edges of the structure hardly move it); 0 for none."""
    return 1.4826 * float(np.median(np.abs(diffs))) / math.sqrt(2.0) if diffs.size else 0.0


def _in_noise(top: float, noise: float) -> float:
    """``top`` in units of ``noise``: inf where there is no noise but something stands out (nothing to judge
    by), 0 for a flat frame."""
    if noise > 0:
        return top / noise
    return math.inf if top > 0 else 0.0


def _peak_snr(blocks: np.ndarray, top: float | None = None) -> float:
    """How far the furthest of ``blocks`` (block means, :func:`_extreme`; ``top`` where already known) stands from
    their median, in units of their own noise: the spread of neighbouring blocks' differences (noise that video
    compression has made coarse is read at the blocks' own scale, not the pixels'); inf for too few blocks to judge
    (see :func:`_in_noise`)."""
    if min(blocks.shape) < 2:
        return math.inf
    diffs = np.concatenate([np.diff(blocks, axis=0).ravel(), np.diff(blocks, axis=1).ravel()])
    return _in_noise(_extreme(blocks) if top is None else top, _spread(diffs))


def _extreme(blocks: np.ndarray, median: float | None = None) -> float:
    """How far the block mean furthest from the median (``median`` where already known) lies from it, on either
    side: bright objects on a dark ground (fluorescence), or dark ones on a bright ground (a brightfield or DIC
    frame, a lit screen with a dark window), both stand out; noise stands out equally little on both sides."""
    median = float(np.median(blocks) if median is None else median)
    return max(float(blocks.max()) - median, median - float(blocks.min()))


#: the side (pixels) of the blocks :func:`_spot` reads: a nucleus of a few hundred pixels fills 2 x 2 of them (the
#: contrast's blocks, 1/64 of the height, are 16 pixels in a 1024-row frame: one such nucleus fills under one)
_SPOT_BLOCK = 8


def _spot(blocks: np.ndarray, median: float) -> float:
    """How far the brightest group of 2 x 2 neighbouring ``blocks`` (block means), read by its dimmest block, stands
    above their ``median`` (or the darkest group, by its brightest block, below it: both sides, as :func:`_extreme`):
    what one object that fills a few blocks reaches (a single nucleus of a few hundred pixels in an otherwise dark
    field, which covers under 1 % of the blocks a 99th percentile reads), while one block alone does not (a hot
    pixel, a video's speck of compression). 0 for fewer than 2 x 2 blocks."""
    if min(blocks.shape) < 2:
        return 0.0
    a, b, c, d = blocks[:-1, :-1], blocks[1:, :-1], blocks[:-1, 1:], blocks[1:, 1:]
    low = np.minimum(np.minimum(a, b), np.minimum(c, d))
    high = np.maximum(np.maximum(a, b), np.maximum(c, d))
    return max(float(low.max()) - median, median - float(high.min()), 0.0)


#: the fewest pixels at one value that :func:`_without_overlays` reads as a drawn plateau (a scale bar)
_OVERLAY_PIXELS = 16
#: the side (pixels) of the squares that :func:`_without_overlays` fits into bright structure: drawn lines and
#: letters (a scale bar's label, a time stamp, anti-aliased or not) are thinner, a nucleus is wider
_OVERLAY_STROKE = 5


def _without_overlays(mx: np.ndarray, median: float, noise: float) -> np.ndarray:
    """``mx`` (a frame's brightest channel) without the graphics burnt into it (a scale bar and its label, a time
    stamp; a copy, ``mx`` itself where there are none). Of the pixels more than 4 times the pixel ``noise`` from
    the background ``median``: plateaus at one exact value (at least :data:`_OVERLAY_PIXELS` pixels, 4 in 5 of them
    next to one at the same value: no noise in them) whose edge is sharp (most pixels around each group of them, 8
    neighbours, nearer the background than the plateau), brought to the background; bright strokes thinner than
    :data:`_OVERLAY_STROKE` pixels (more than half their height above the background, and more than 6 times the
    noise, gone in a grey opening of that side; in groups of at least half as many pixels as a plateau), brought to
    the opening. A camera's nucleus
    is wider, and has noise; a saturated one, flat at the top, has a blurred rim falling away from it, and stays."""
    far = np.abs(mx.astype(np.float32, copy=False) - np.float32(median)) > 4.0 * noise
    core = np.zeros(mx.shape, dtype=bool)  # (next to another: graphics, a nucleus; not the noise's lone outliers)
    core[:, 1:] |= far[:, 1:] & far[:, :-1]
    core[1:, :] |= far[1:, :] & far[:-1, :]
    if not core.any():
        return mx
    # (only around them: the opening is the costly part)
    rows, cols = np.flatnonzero(core.any(axis=1)), np.flatnonzero(core.any(axis=0))
    pad = _OVERLAY_STROKE
    box = (slice(max(0, rows[0] - pad), rows[-1] + pad + 1), slice(max(0, cols[0] - pad), cols[-1] + pad + 1))
    sub = mx[box]
    values = sub.astype(np.float32, copy=False)
    height = np.abs(values - np.float32(median))
    far = far[box]
    # thin bright strokes, in groups of at least half as many pixels as a plateau: gone in an opening, by more than
    # 6 times the noise (a nucleus's slopes stay, its peaks of noise, lone or a few, stand out of it by less)
    opened = ndimage.grey_opening(sub, (_OVERLAY_STROKE,) * 2)
    gone = values - opened.astype(np.float32, copy=False)
    thin = far & (values > median) & (gone > 0.5 * height) & (gone > 6.0 * noise)
    if thin.any():
        labels, n = ndimage.label(thin, _EIGHT)
        thin &= (np.bincount(labels.ravel(), minlength=n + 1) >= _OVERLAY_PIXELS // 2)[labels]
        thin &= labels > 0
    drawn = np.zeros(sub.shape, dtype=bool)
    same = np.zeros(sub.shape, dtype=bool)  # next to a pixel at the same value (4 neighbours)
    same[:, 1:] |= sub[:, 1:] == sub[:, :-1]
    same[:, :-1] |= sub[:, :-1] == sub[:, 1:]
    same[1:, :] |= sub[1:, :] == sub[:-1, :]
    same[:-1, :] |= sub[:-1, :] == sub[1:, :]
    levels, index, counts = np.unique(sub[far], return_inverse=True, return_counts=True)
    flat = np.bincount(index.ravel(), weights=same[far], minlength=levels.size)
    for v in levels[(counts >= _OVERLAY_PIXELS) & (flat >= 0.8 * counts)][:8]:  # (a few: a frame's graphics)
        plateau = sub == v
        grown = ndimage.binary_dilation(plateau, _EIGHT)
        labels, n = ndimage.label(grown, _EIGHT)  # (each group with its edge; letters close together: one)
        edge = grown & ~plateau
        near = edge & (height < 0.5 * abs(float(v) - median))
        sharp = np.bincount(labels[near], minlength=n + 1) >= 0.5 * np.bincount(labels[edge], minlength=n + 1)
        sharp[0] = False
        drawn |= plateau & sharp[labels]
    if not (thin.any() or drawn.any()):
        return mx
    out = mx.copy()
    out[box] = np.where(thin, opened, sub)
    out[box][drawn] = median
    return out


def _pixel_noise(plane: np.ndarray, row_step: int = 4) -> float:
    """The pixel noise of a plane (its grey levels): the spread (:func:`_spread`) of the differences of pixels
    4 apart along every 4th row. Not adjacent pixels: a video's 4:2:0 colour (shared by pairs of pixels) and
    its compression make neighbouring pixels' noise alike, and their differences read a third to a half of
    it (a still slide filmed by a phone: 1.4 grey levels, 3.1 at 4 apart; white noise reads the same).
    Structure moves it little (most pixels are background, or smooth within 4 pixels)."""
    rows = plane[::row_step]
    if rows.dtype in (np.uint8, np.uint16) and rows.size:  # whole grey levels: counted, not sorted
        left, right = rows[:, 4:], rows[:, :-4]
        d = np.maximum(left, right)
        d -= np.minimum(left, right)  # (|difference| without a wider copy)
        d = d.ravel()
    elif rows.dtype.kind in "ui" and rows.size and int(rows.max()) < 65536:
        d = np.abs(rows[:, 4:].astype(np.int32) - rows[:, :-4]).ravel()
    else:
        d = None
    if d is not None:
        if not d.size:
            return 0.0
        counts = np.cumsum(np.bincount(d))
        return 1.4826 * float(np.searchsorted(counts, 0.5 * d.size)) / math.sqrt(2.0)
    rows = rows.astype(np.float32, copy=False)
    return _spread(rows[:, 4:] - rows[:, :-4])


def _signal(mx: np.ndarray, th: Thresholds,
            hot: np.ndarray | None = None) -> tuple[float, float, float, int, float, float]:
    """(level, contrast, foreground, factor of the change measure's block means, peak_snr, spot) of a frame's
    brightest channel ``mx``, its ``hot`` pixels (:func:`_top`; None: found here) left out: what the black, dark
    and bright tests read (see the module's notes)."""
    mx = _without_hot(mx, _top(mx)[2] if hot is None else hot)
    h = mx.shape[0]
    level = float(mx.mean(dtype=np.float64))
    factor = max(1, int(round(h / max(1, th.small_rows))))
    mx_small = _block_mean(mx, max(8, factor))
    median = np.median(mx_small)  # (once: contrast, background, peak_snr)
    contrast = float(np.percentile(mx_small, 99.0) - median)
    # foreground at the resolution of the change measure (finer than mx_small in frames of
    # under 480 rows, so that where the block grid falls on small nuclei matters less)
    mx_fine = mx_small if max(8, factor) == factor else _block_mean(mx, factor)
    background = float(median if mx_fine is mx_small else np.median(mx_fine))
    bright = mx_fine[mx_fine >= background + 0.5 * (float(mx_fine.max()) - background)]
    foreground = float(bright.mean(dtype=np.float64)) - background
    # the largest of three block sizes: pure noise stays at 3-7 in each (fewer, larger blocks: a lower top), a
    # large faint object stands out further in the larger ones. Texture as fine as the blocks (a late embryo
    # in a small frame, nuclei of 3 pixels) reads as noise in the blocks' differences: the same top is also
    # read against the pixels' own noise (:func:`_pixel_noise`), twice what white noise leaves in a block mean
    # (video compression coarsens noise: pure noise then reads 3-11, frames holding structure 40 and more), where
    # the pixels have any (compression that flattened most of them leaves the blocks to judge)
    top = _extreme(mx_small, median)
    peak = max(_peak_snr(mx_small, top), _peak_snr(_block_mean(mx_small, 2)), _peak_snr(_block_mean(mx_small, 4)))
    pixels = _pixel_noise(mx)
    if pixels > 0:
        peak = max(peak, _in_noise(top, 2.0 * pixels / max(8, factor)))
    spot = _spots(mx, mx_small, max(8, factor), float(median), contrast < 0.5 * top)
    if spot > contrast:  # (the black test reads the larger)
        # burnt-in graphics (a scale bar, its label) are no nucleus: a black frame carrying them stays black
        clean = _without_overlays(mx, float(median), pixels)
        if clean is not mx:
            mx = clean
            spot = _spots(mx, _block_mean(mx, max(8, factor)), max(8, factor), float(median), contrast < 0.5 * top)
    return level, contrast, foreground, factor, peak, spot


def _spots(mx: np.ndarray, mx_small: np.ndarray, block: int, median: float, missed: bool) -> float:
    """The spot (:func:`_spot`) of a frame's brightest channel ``mx`` read in its blocks ``mx_small`` (of ``block``
    pixels; their ``median``) and, in a frame whose blocks are larger than :data:`_SPOT_BLOCK` and whose contrast
    ``missed`` its brightest block, in blocks of :data:`_SPOT_BLOCK` pixels too."""
    spot = _spot(mx_small, median)
    if block > _SPOT_BLOCK and missed:
        # a frame of over 540 rows whose contrast misses its brightest block (one nucleus): its blocks of 8 pixels
        # too (not where the contrast reads the frame's signal: the nuclei of most frames, read in one pass less)
        fine = _block_mean(mx, _SPOT_BLOCK)
        spot = max(spot, _spot(fine, float(np.median(fine))))
    return spot


def frame_signal(image: np.ndarray, thresholds: Thresholds | None = None) -> dict[str, float]:
    """The measures of one frame that the black, dark and bright tests read: ``level`` (mean of the brightest
    channel), ``contrast``, ``foreground`` and ``spot`` (8-bit grey levels), ``peak_snr`` (see the module's notes),
    ``grey_step`` (one of the input's grey levels in 8-bit levels: 1, 1/257 for 16-bit input) and ``range`` (a
    float frame's: the value that reads 255 grey levels, 1 for an image in 0..1, for one in other units from its
    own values, see the module's notes; None for integer input, read on its type's fixed scale), measured as
    :func:`score_frames` measures them (which compares the frames of a float sequence in one range, its first
    frame's unless that is an outlier).
    Feed a sequence of them to :func:`black_or_dark`, which brings float frames read in different ranges to one.

    Raises
    ------
    DevolensError
        Not an H x W or H x W x 3/4 image.
    """
    _check_thresholds(thresholds)
    planes, _, value_range, _ = _planes(image)
    level, contrast, foreground, _, peak, spot = _signal(_brightest(planes), thresholds or Thresholds())
    return {"level": level, "contrast": contrast, "foreground": foreground, "peak_snr": peak, "spot": spot,
            "grey_step": _grey_step(np.asarray(image).dtype),
            "range": (value_range or 1.0) if np.asarray(image).dtype.kind == "f" else None}


#: a pixel whose brightest channel is at or above this (8-bit grey levels) is clipped: saturated at the top of the
#: range (254, not 255: lossy video leaves saturated areas a level short here and there); for input whose range
#: tops out elsewhere (12-bit data in 16 bits: :func:`_ceiling`) the same fraction of its top
_CLIPPED = 254

#: at most this many pixels, each far above the pixels around it (a camera's hot pixels, a cosmic ray's hit), are
#: not the top of a frame's values (:func:`_top`)
_HOT_PIXELS = 16


def _isolated(mx: np.ndarray, idx: np.ndarray) -> bool:
    """Whether every pixel of ``mx`` at the flat indices ``idx`` stands far above the pixels around it (its 8
    neighbours not among ``idx``): above the brightest of them by more than twice their own spread (brightest minus
    dimmest). A hot pixel (or a pair) stands out of the noise of the background or of a nucleus it sits on; the
    brightest pixels of a nucleus have neighbours almost as bright, a saturated patch, however small, a ring of
    blurred edge falling away from it, and the brightest pixel of pure noise neighbours as noisy as it."""
    for (r, c), ring in _rings(mx, idx):
        if ring and not float(mx[r, c]) - max(ring) > 2.0 * (max(ring) - min(ring)):
            return False
    return True


def _rings(mx: np.ndarray, idx: np.ndarray) -> Iterator[tuple[tuple[int, int], list[float]]]:
    """For each pixel of ``mx`` at the flat indices ``idx``: its (row, column) and the values of its 8 neighbours
    that are not among ``idx`` (fewer at the edges)."""
    h, w = mx.shape
    group = set(idx.tolist())
    for r, c in zip(*(a.tolist() for a in np.divmod(idx, w))):
        yield (r, c), [float(mx[y, x]) for y in range(max(0, r - 1), min(h, r + 2))
                       for x in range(max(0, c - 1), min(w, c + 2)) if y * w + x not in group]


def _top(mx: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(top, at_top, hot) of a frame's brightest channel ``mx``: its highest value and the fraction of its pixels at
    it (within 1/255 of it: :data:`_CLIPPED`), a few hot pixels left out (at most :data:`_HOT_PIXELS` pixels at the
    top, each far above the pixels around it: :func:`_isolated`; then the next highest value, and so on), so that a
    hot pixel at 4095 in every frame of a 12-bit movie does not hide the frames that pile up at a camera's lower
    saturation level (see :func:`_sequence_clipped`); ``hot``: the flat indices of the pixels left out (the black,
    dark and bright tests' measures leave them out too: :func:`_signal`)."""
    top = float(mx.max())
    at = np.flatnonzero(mx >= top * _CLIPPED / 255.0) if top > 0 else np.zeros(0, np.intp)
    keep: np.ndarray | None = None
    hot: list[np.ndarray] = []
    while top > 0 and 0 < at.size <= _HOT_PIXELS - sum(map(len, hot)) and _isolated(mx, at):
        if keep is None:
            keep = np.ones(mx.shape, dtype=bool)
        keep.flat[at] = False
        hot.append(at)
        top = float(mx.max(where=keep, initial=0.0))
        at = np.flatnonzero((mx >= top * _CLIPPED / 255.0) & keep) if top > 0 else np.zeros(0, np.intp)
    return top, float(at.size) / float(mx.size), np.concatenate(hot) if hot else np.zeros(0, np.intp)


def _without_hot(mx: np.ndarray, hot: np.ndarray) -> np.ndarray:
    """``mx`` with its ``hot`` pixels (flat indices, :func:`_top`) at the brightest of their other neighbours (a
    copy; ``mx`` itself where there are none): a hot pixel at 65535 in a lens cap's 16-bit noise otherwise stands
    hundreds of times its noise above it in its block's mean."""
    if not hot.size:
        return mx
    out = mx.copy()
    for (r, c), ring in _rings(mx, hot):
        out[r, c] = max(ring) if ring else np.median(mx)
    return out


def _grain(planes: list[np.ndarray], dtype: np.dtype) -> float:
    """The pixel noise (:func:`_pixel_noise`) of a frame's mean over its planes (8-bit grey levels), at least the
    rounding noise of the input's grey levels (1/sqrt(12) of a step: an 8-bit frame without noise, a screen
    recording's flat panels, still rounds). Noise that video compression has made coarser than 4 pixels is
    under-read (the change measure's blocks then hold more of it than this says: frames of it look further
    apart, never closer)."""
    whole = planes[0].dtype == np.uint8  # (the sum of the planes' rows in whole grey levels: at most 765)
    rows = planes[0][::4].astype(np.uint16 if whole else np.float32)
    for p in planes[1:]:
        rows += p[::4]
    spread = _pixel_noise(rows, row_step=1) / len(planes)  # (rows: every 4th already)
    return max(spread, _grey_step(dtype) / math.sqrt(12.0))


def _grey_step(dtype: np.dtype) -> float:
    """One grey level of an input of ``dtype``, in 8-bit grey levels: 1 for 8-bit (and boolean) input, 1/257 for
    16-bit (255 over the largest value of an integer type of 16 bits or fewer, over 65535 for wider ones:
    :func:`_planes`), 0 for floats (no steps)."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8 or dtype == np.bool_:
        return 1.0
    if np.issubdtype(dtype, np.integer):
        return 255.0 / (float(np.iinfo(dtype).max) if dtype.itemsize <= 2 else _WIDE_RANGE)
    return 0.0


def _frame_stats(image: np.ndarray, th: Thresholds,
                 value_range: float | None = None) -> tuple[dict, np.ndarray, np.ndarray]:
    """Per-frame statistics, the downsampled grey frame (change measure) and the red block
    map (red patches); a float frame is read in ``value_range`` (its sequence's: :func:`_planes`; None: its own).
    ``range`` (the range it was read in, None for a blank float frame), ``own_range`` (a float frame's own,
    :func:`_float_range`), ``ceiling`` (the top of the range it shows, :func:`_ceiling`, against which its
    ``clipped`` is counted) and ``top``, ``at_top`` (:func:`_top`) are among the statistics."""
    dtype = np.asarray(image).dtype
    planes, colour, value_range, own_range = _planes(image, value_range)
    h, w = planes[0].shape
    others = np.maximum(planes[1], planes[2]) if colour else None  # (green or blue: read by the red scores too)
    mx = np.maximum(planes[0], others) if colour else _brightest(planes)
    p99 = _percentile99(mx)
    b = max(1, int(th.patch_block))
    if colour:
        line, red_map = _red_scores(planes[0], planes[1], planes[2], th, others, mx)
    else:
        line, red_map = 0.0, np.zeros((max(1, h // b), max(1, w // b)), dtype=bool)
    # the frame's highest value, hot pixels left out, which the post-pass takes where it is the sequence's (see
    # _sequence_clipped; 8-bit input: 255); the hot pixels are left out of the black, dark and bright tests' measures
    top, at_top, hot = _top(mx)
    if mx.dtype == np.uint8:
        top, at_top = 255.0, 0.0
    level, contrast, foreground, factor, peak, spot = _signal(mx, th, hot)
    ceiling = _ceiling(mx, value_range, dtype)
    clip_at = _CLIPPED if mx.dtype == np.uint8 else ceiling * _CLIPPED / 255.0
    clipped = float(np.count_nonzero(mx >= clip_at)) / float(mx.size)
    grain = _grain(planes, dtype) / factor  # white noise: 1/side of the blocks' pixels
    small = _block_mean(planes[0], factor)
    for p in planes[1:]:
        small = small + _block_mean(p, factor)
    small = small / np.float32(len(planes))
    stats = {
        "height": int(h),
        "width": int(w),
        "level": level,
        "p99": p99,
        "clipped": clipped,
        "contrast": contrast,
        "foreground": foreground,
        "peak_snr": peak,
        "spot": spot,
        "grey_step": _grey_step(dtype),
        "grain": grain,
        "range": value_range,
        "own_range": own_range,
        "ceiling": ceiling,
        "top": top,
        "at_top": at_top,
        "red_line_score": line,
        "red_area": float(red_map.sum()) * b * b / float(h * w),
    }
    return stats, small, red_map


# --------------------------------------------------------------------------- post-pass


def _neighbour_median(values: np.ndarray, valid: np.ndarray, window: int) -> np.ndarray:
    """Median of the valid values among the ``window`` frames on each side (self excluded).

    Widens the window (up to the whole sequence) until at least two valid neighbours are
    found; NaN when there are none.
    """
    n = len(values)
    out = np.full(n, np.nan)
    ok = valid & np.isfinite(values)
    for i in range(n):
        w = window
        while True:
            lo, hi = max(0, i - w), min(n, i + w + 1)
            sel = ok[lo:hi].copy()
            sel[i - lo] = False
            if sel.sum() >= min(2, ok.sum() - ok[i]) or (lo == 0 and hi == n):
                break
            w *= 2
        if sel.any():
            out[i] = float(np.median(values[lo:hi][sel]))
    return out


def _side_references(values: np.ndarray, valid: np.ndarray,
                     window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and higher of the medians of the ``window`` valid frames before and after each
    frame (one pass for both), and how many sides (0, 1 or 2) had a valid frame.

    Taking the lower side keeps a steady rise (a growing embryo) or fall (bleaching) from
    looking like a dark frame, the higher side from looking like a bright one; NaN when neither
    side has a valid frame. A frame with valid frames on one side only (the first or last of a
    sequence, or one beside a run of black frames there) has no such protection: see
    :func:`_level_flags`.
    """
    n = len(values)
    ok = valid & np.isfinite(values)
    idx = np.flatnonzero(ok)
    lower, higher = np.full(n, np.nan), np.full(n, np.nan)
    sides = np.zeros(n, dtype=int)
    for i in range(n):
        pos = np.searchsorted(idx, i)
        left = idx[max(0, pos - window):pos]
        right_start = pos + 1 if pos < len(idx) and idx[pos] == i else pos
        right = idx[right_start:right_start + window]
        meds = [float(np.median(values[side])) for side in (left, right) if len(side)]
        if meds:
            lower[i], higher[i] = min(meds), max(meds)
        sides[i] = len(meds)
    return lower, higher, sides


def _robust_sigma(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if x.size < 3:
        return 0.0
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _unpack(shape: tuple[int, int], bits: np.ndarray) -> np.ndarray:
    return np.unpackbits(bits, count=shape[0] * shape[1]).reshape(shape).astype(bool)


def _quantile_reference(values: np.ndarray, valid: np.ndarray, window: int, q: float, min_count: int = 4) -> np.ndarray:
    """``q``-quantile of the valid finite values among the ``window`` frames on each side
    (self excluded), widening the window until ``min_count`` values are found."""
    n = len(values)
    ok = valid & np.isfinite(values)
    out = np.full(n, np.nan)
    need = min(min_count, max(1, int(ok.sum()) - 1))
    for i in range(n):
        w = window
        while True:
            lo, hi = max(0, i - w), min(n, i + w + 1)
            sel = ok[lo:hi].copy()
            sel[i - lo] = False
            if sel.sum() >= need or (lo == 0 and hi == n):
                break
            w *= 2
        if sel.any():
            out[i] = float(np.quantile(values[lo:hi][sel], q))
    return out


def _transient_scores(red_maps: list[np.ndarray], run: np.ndarray, heights: np.ndarray, widths: np.ndarray,
                      th: Thresholds) -> np.ndarray:
    """Transient red area of every frame: red absent from the ``_RED_REACH`` nearest frames
    on each side that are not copies of it (``run`` numbers a frame and its duplicates)."""
    n = len(red_maps)
    out = np.zeros(n)
    block = max(1, int(th.patch_block))
    for j in range(n):
        if not red_maps[j].any():
            continue
        nbs = []
        for step in (-1, 1):
            k, got = j + step, 0
            while 0 <= k < n and got < _RED_REACH:
                if run[k] != run[j]:
                    nbs.append(red_maps[k])
                    got += 1
                k += step
        out[j] = _transient_area(red_maps[j], nbs, int(heights[j]) * int(widths[j]), block)
    return out


def _log_ratio(values: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's ``values`` over a reference of :func:`_side_references`: (log ratio, ratio; NaN where the
    reference is)."""
    ratio = values / np.maximum(ref, 1e-6)
    ratio[~np.isfinite(ref)] = np.nan
    return np.log(np.maximum(ratio, 1e-6)), ratio


def _far(beyond: np.ndarray, ok: np.ndarray, th: Thresholds, spread: bool = True) -> np.ndarray:
    """Frames lying further than ``dark_ratio`` beyond their neighbours (``beyond``: a log ratio of
    :func:`_log_ratio`, positive in the direction tested) and, with ``spread``, outside the sequence's own spread
    of such ratios (``dark_sigmas`` robust standard deviations)."""
    least = -math.log(th.dark_ratio)
    cut = max(least, th.dark_sigmas * _robust_sigma(beyond[ok])) if spread else least
    return np.isfinite(beyond) & (beyond > cut)


def _level_flags(level: np.ndarray, contrast: np.ndarray, foreground: np.ndarray, th: Thresholds,
                 clipped: np.ndarray | None = None, peak_snr: np.ndarray | None = None,
                 grey_step: np.ndarray | None = None, spot: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(black, dark, bright, level ratio, high level ratio) of a sequence's frames from their
    ``level``, ``contrast``, ``foreground``, ``clipped``, ``peak_snr``, ``grey_step`` and ``spot`` (None, or NaN
    for a frame: not measured; see the module's notes); the ratios are the level over the lower (dark test) and
    over the higher (bright test) of the neighbours' medians before and after."""
    # black: no spatial signal (camera noise averages out in the block means: under ``black_level`` of the input's
    # own grey levels; a 12-bit camera's dim frame of clear nuclei has a block contrast of a fraction of an 8-bit
    # level), or none above the frame's own noise (strong noise keeps the block contrast above a grey level: a lens
    # cap, a camera warming up). The signal is the block contrast or, where more, the spot (:func:`_spot`): a
    # single nucleus covers too few blocks for the contrast's 99th percentile (a 1-cell embryo's first frames)
    floor = th.black_level * _contrast_unit(grey_step, len(contrast))
    signal = contrast if spot is None else np.fmax(contrast, np.asarray(spot, float))  # (NaN spot: the contrast)
    black = signal < np.maximum(floor, th.black_rel * float(np.median(contrast)))
    if peak_snr is not None:
        black |= np.asarray(peak_snr, float) < th.black_snr  # (NaN: not measured, no verdict)

    # dark and bright: far below or above the neighbours' level; twice, the second time with
    # the dark and bright frames of the first pass left out of the references (artifacts can
    # come in clusters)
    dark = np.zeros(len(level), dtype=bool)
    bright = np.zeros(len(level), dtype=bool)
    for _ in range(2):
        ok = ~black & ~dark & ~bright
        low, high, sides = _side_references(level, ok, th.window)
        below, ratio = _log_ratio(level, low)
        below = -below  # positive below the lower neighbour
        above, ratio_high = _log_ratio(level, high)
        fg_low, fg_high, _ = _side_references(foreground, ok, th.window)
        fg_below = -_log_ratio(foreground, fg_low)[0]
        # a frame with neighbours on one side only (the first or last frame) cannot take the
        # other side: a growing embryo's first frame has fewer nuclei than all the frames after
        # it (its last frame more than all those before it), so its mean level is well below
        # (above) theirs. Such a frame must also be dim (bright) in its nuclei: its foreground
        # (nucleus brightness above the background, which does not grow with the number of
        # nuclei) far beyond that side's, by the same rule as the level (past ``dark_ratio`` and
        # outside the sequence's own spread of foreground ratios). A dimmed or brightened frame
        # changes both in proportion.
        # A fast-growing embryo filmed at a coarse time step spreads the level ratios so wide that
        # a frame dimmed to x0.3 can fall inside that spread; its nuclei dim with it, though, while
        # the frames on both sides keep theirs (the foreground does not grow with the number of
        # nuclei): a level past ``dark_ratio`` with a foreground past ``dark_ratio`` below both
        # sides' is dark whatever the spread of level ratios (the mirror of a saturated bright
        # frame). The foreground must still lie outside the sequence's own spread of foreground
        # ratios, which growth leaves narrow but optics that swing from frame to frame widen
        dimmed = (sides == 2) & _far(below, ok, th, spread=False) & _far(fg_below, ok, th)
        dark = ~black & (_far(below, ok, th) | dimmed)
        dark &= (sides != 1) | _far(fg_below, ok, th)

        # bright: the mirror of dark. A brighter lamp brightens the nuclei as much as the
        # background: the contrast (nuclei over background) rises with the level, unless the
        # nuclei saturate (many clipped pixels where the neighbours have few: nuclei lost in the
        # glare), which caps it. A genuinely brighter embryo does neither: the histone a mitotic
        # cell of an early embryo spreads through its cytoplasm raises the level, not the
        # contrast. A saturated frame is bright whatever the sequence's spread of level ratios
        # (a fast-growing embryo filmed at a coarse time step spreads them wide), as long as its
        # contrast has not collapsed
        ref_contrast = _side_references(contrast, ok, th.window)[0]
        gained = contrast >= ref_contrast / th.dark_ratio
        kept = ~(contrast < th.dark_ratio * ref_contrast)
        saturated = np.zeros(len(level), dtype=bool)
        if clipped is not None:
            ref_clip = _side_references(clipped, ok, th.window)[1]
            saturated = (clipped >= th.clip_area) & (clipped >= th.clip_ratio * np.nan_to_num(ref_clip, nan=0.0))
        bright = ~black & _far(above, ok, th, spread=False) & ((_far(above, ok, th) & gained) | (saturated & kept))
        bright &= (sides != 1) | _far(_log_ratio(foreground, fg_high)[0], ok, th)
    return black, dark, bright, ratio, ratio_high


def _contrast_unit(grey_step: np.ndarray | None, n: int) -> np.ndarray:
    """The unit of ``black_level`` per frame, in 8-bit grey levels: the input's own grey level where it is finer
    (16-bit input), one 8-bit level otherwise (8-bit and float input, or not measured: NaN)."""
    if grey_step is None:
        return np.ones(n)
    step = np.asarray(grey_step, float)
    return np.where((step > 0) & (step < 1), step, 1.0)


def _known_ranges(ranges) -> np.ndarray:
    """Float ranges as an array, NaN where unknown (None, NaN or 0: not a float frame, or a blank one)."""
    r = np.array([np.nan if v is None or pd.isna(v) else float(v) for v in ranges], dtype=float)
    r[~(r > 0)] = np.nan
    return r


#: a float sequence's frames are compared in its first frame's range unless that lies further than this factor from the
#: median of its frames' own ranges (:func:`_sequence_range`)
_RANGE_SLACK = 2.0


def _sequence_range(ranges) -> float | None:
    """The range a float sequence's frames are compared in, from its frames' own ranges in time order
    (:func:`frame_signal`, powers of two; None, NaN or 0: unknown): the first known one, unless it lies further
    than :data:`_RANGE_SLACK` from their median (a first frame that is a white flash, or nearly black but not
    blank: every good frame after it would read far dimmer or brighter), then that median (the lower of the two
    middle ones for an even count: one of the ranges, so that bringing a frame to it multiplies by a power of
    two, exactly); None when none is known. A growing embryo's, or a bleaching one's, ranges span a power of two
    or two: its first frame's stays (as read before)."""
    r = _known_ranges(ranges)
    known = r[np.isfinite(r)]
    if not len(known):
        return None
    median = float(np.sort(known)[(len(known) - 1) // 2])
    first = float(known[0])
    return first if median / _RANGE_SLACK <= first <= median * _RANGE_SLACK else median


def range_factors(ranges, reference: float | None = None) -> np.ndarray:
    """Per frame, the factor that brings a value measured in its own float ``range`` (:func:`frame_signal`; None,
    NaN or 0: not a float frame) to the ``reference`` range (default: the first known one; :func:`black_or_dark`
    gives the sequence's, its first frame's unless that lies more than 2x from the median of the frames' ranges):
    1 where the range is unknown or none is known."""
    r = _known_ranges(ranges)
    known = np.isfinite(r)
    if not known.any():
        return np.ones(len(r))
    return np.where(known, r / (r[known][0] if reference is None else float(reference)), 1.0)


def black_or_dark(signals: Sequence[dict] | pd.DataFrame, thresholds: Thresholds | None = None) -> np.ndarray:
    """Which frames of a sequence the curator's black or dark test flags, from their :func:`frame_signal`
    measures (in time order; the dark test compares each frame with its neighbours). Bright frames are not
    among them (a frame the bright test flags is False here).

    Returns
    -------
    ndarray of bool
        True for a black or dark frame.
    """
    _check_thresholds(thresholds)
    df = pd.DataFrame(list(signals) if not isinstance(signals, pd.DataFrame) else signals)
    # (peak_snr, spot, grey_step and range: absent from older dicts)
    df = df.reindex(columns=["level", "contrast", "foreground", "peak_snr", "spot", "grey_step", "range"])
    if df.empty:
        return np.zeros(0, bool)
    factor = range_factors(df["range"], _sequence_range(df["range"]))
    if (factor != 1.0).any():  # float frames each read in its own range: brought to the sequence's (dimmed: dimmer)
        for name in ("level", "contrast", "foreground", "spot", "grey_step"):
            df[name] = df[name].to_numpy(float) * factor
    black, dark, *_ = _level_flags(df["level"].to_numpy(float), df["contrast"].to_numpy(float),
                                   df["foreground"].to_numpy(float), thresholds or Thresholds(),
                                   peak_snr=df["peak_snr"].to_numpy(float), grey_step=df["grey_step"].to_numpy(float),
                                   spot=df["spot"].to_numpy(float))
    return black | dark


def _decide(stats: pd.DataFrame, red_maps: list[np.ndarray], th: Thresholds) -> pd.DataFrame:
    """Add the reference columns and the boolean flags for one sequence (a copy)."""
    s = stats.copy()
    if "ceiling" in s.columns:
        s["clipped"] = _sequence_clipped(s)
    black, dark, bright, ratio, ratio_high = _level_flags(s["level"].to_numpy(float), s["contrast"].to_numpy(float),
                                                          s["foreground"].to_numpy(float), th,
                                                          clipped=s["clipped"].to_numpy(float),
                                                          peak_snr=s["peak_snr"].to_numpy(float),
                                                          grey_step=s["grey_step"].to_numpy(float),
                                                          spot=s["spot"].to_numpy(float))

    # red line: long thin red bands, above an absolute floor and above the neighbours
    line = s["red_line_score"].to_numpy(float)
    valid = ~black
    ref_line = np.nan_to_num(_neighbour_median(line, valid, th.window), nan=0.0)
    red_line = valid & (line >= th.line_fraction) & (line - ref_line >= 0.5 * th.line_fraction)

    # duplicate: far less change than the neighbourhood's ordinary change (lower quartile of
    # the changes between frames that are neither black, dark, bright nor striped, nor repeats:
    # a change near zero, below what the two frames' noise alone makes, is a repeat's, and where
    # repeats are most frames, a screen recorder holding each image for 15 frames, the lower
    # quartile of all changes is one), or near zero itself (a still scene whose encoder dropped
    # the changes of its noise: no reference at all)
    change = s["change"].to_numpy(float)
    quiet = np.isfinite(change) & (change < th.dup_noise * s["change_noise"].to_numpy(float))
    odd = black | dark | bright | red_line
    ordinary = ~odd & ~np.r_[True, odd[:-1]]
    ref_change = _quantile_reference(change, ordinary & ~quiet, 2 * th.window, 0.25)
    change_ratio = change / np.maximum(ref_change, 1e-9)
    change_ratio[~np.isfinite(change) | ~np.isfinite(ref_change)] = np.nan
    duplicate = (np.isfinite(change_ratio) & (change_ratio < th.dup_ratio) & (ref_change > 1e-6)) | quiet
    # a repeat looks like its predecessor: a dark, bright or striped frame after a frame that
    # is not is no repeat, however little the frame changed
    prev_dark, prev_line = np.r_[False, dark[:-1]], np.r_[False, red_line[:-1]]
    prev_bright = np.r_[False, bright[:-1]]
    duplicate &= ~((dark & ~prev_dark) | (bright & ~prev_bright) | (red_line & ~prev_line))
    duplicate |= np.isfinite(change) & (change <= 1e-9)  # an exact copy, whatever the neighbours

    # red patch: a large red region absent from the neighbouring (non-duplicate) frames
    run = np.cumsum(~duplicate)
    patch = _transient_scores(red_maps, run, s["height"].to_numpy(), s["width"].to_numpy(), th)
    block_area = float(th.patch_block) ** 2 / (s["height"].to_numpy(float) * s["width"].to_numpy(float))
    red_patch = valid & (patch >= th.patch_area) & (patch >= (th.patch_min_blocks - 0.5) * block_area)
    s["red_patch_score"] = patch

    s["level_ratio"] = ratio
    s["level_ratio_high"] = ratio_high
    s["change_ratio"] = change_ratio
    s["black"] = black
    s["dark"] = dark
    s["bright"] = bright
    s["red_line"] = red_line
    s["red_patch"] = red_patch
    s["duplicate"] = duplicate
    s["dropped"] = False
    return s


#: the statistics of a frame in 8-bit grey levels of the range it was read in (:func:`_one_range` scales them)
_IN_RANGE = ("level", "p99", "contrast", "foreground", "spot", "grain", "ceiling", "top")


def _one_range(s: pd.DataFrame) -> pd.DataFrame:
    """A sequence's statistics (:func:`score_frames`' rows) with its float frames brought to the sequence's range
    (a copy; the same table when there is nothing to bring). The frames are read in their first non-blank frame's
    range as they stream by (a blank frame before it in 0..1); that frame may be an outlier (a white flash, a
    nearly black frame: every good frame after it would read far dimmer, black, or far brighter), so the measures
    in grey levels (:data:`_IN_RANGE`; ``change`` and ``change_noise`` anew from their parts) are brought to the
    range :func:`_sequence_range` takes from the frames' own (the median of them where the first is an outlier): by
    a power of two, exactly as if the frames had been read in it (the red measures, thresholds in grey levels of a
    colour frame, stay as read)."""
    if "own_range" not in s.columns:
        return s
    is_float = s["grey_step"].to_numpy(float) == 0.0
    reference = _sequence_range(s["own_range"].where(is_float))
    if reference is None:
        return s
    read = pd.to_numeric(s["range"], errors="coerce").to_numpy(float)
    factor = np.where(is_float, np.where(np.isfinite(read), read, 1.0) / reference, 1.0)
    if (factor == 1.0).all():
        return s
    s = s.copy()
    for name in _IN_RANGE:
        s[name] = s[name].to_numpy(float) * factor
    scale = s["pair_mean"].to_numpy(float) * factor + 1.0
    redo = is_float & (factor != 1.0)
    s["change"] = np.where(redo, s["change_abs"].to_numpy(float) * factor / scale, s["change"].to_numpy(float))
    s["change_noise"] = np.where(redo, s["pair_noise"].to_numpy(float) * factor / scale,
                                 s["change_noise"].to_numpy(float))
    s["range"] = np.where(is_float, reference, read)
    return s


def _range_outliers(s: pd.DataFrame) -> np.ndarray:
    """The float frames of a sequence (statistics ``s``) whose own range lies more than :data:`_RANGE_SLACK` above
    the sequence's (:func:`_sequence_range`: a white flash first frame); none when every frame would be one."""
    out = np.zeros(len(s), dtype=bool)
    if "own_range" in s.columns and len(s):
        own = pd.to_numeric(s["own_range"], errors="coerce").to_numpy(float)
        reference = _sequence_range(s["own_range"].where(s["grey_step"].to_numpy(float) == 0.0))
        if reference is not None:
            out = np.isfinite(own) & (own > reference * _RANGE_SLACK)
    return out if not out.all() else np.zeros(len(s), dtype=bool)


def _sequence_clipped(s: pd.DataFrame) -> np.ndarray:
    """Each frame's ``clipped`` in its sequence (the frames' statistics ``s``): the fraction of its pixels at the
    top of the range the sequence shows (the highest of its frames' ``ceiling``: 12-bit data saturate at 4095, not
    at a uint16's 65535), or, input other than 8-bit, at the sequence's highest value (a camera that saturates
    below its bit depth, data converted after saturating), counted in the frames that reach it (``top``,
    ``at_top``: :func:`_top`, which leaves a few hot pixels out); a float frame far above the sequence's range (a
    flash first frame, :func:`_range_outliers`) does not set that top for the others. 8-bit input: the pixels at
    254 or 255, as measured."""
    judged = ~_range_outliers(s)  # a float movie's flash first frame does not set the top for the frames after it
    ceiling = s["ceiling"].to_numpy(float)
    clipped = np.where(ceiling >= np.nanmax(ceiling[judged]) * (1.0 - 1e-9), s["clipped"].to_numpy(float), 0.0)
    top = s["top"].to_numpy(float)
    highest = float(np.nanmax(top[judged]))
    if highest > 0:
        clipped = np.maximum(clipped, np.where(top >= highest * (1.0 - 1e-9), s["at_top"].to_numpy(float), 0.0))
    return clipped


def _parse_name(name: str | None) -> tuple[str, int | None]:
    """(sequence key, time) from a file name like ``t012.png``, ``emb1_t012.png``, ``T012.png`` or
    ``emb1_t012.ome.tif`` (an OME-TIFF's ``.ome`` is part of its suffix: :func:`devolens.io.frames.image_stem`)."""
    if not name:
        return "", None
    path = Path(str(name))
    m = _NAME_RE.match(image_stem(path) + path.suffix)
    if not m:
        return "", None
    return m.group("seq") or "", int(m.group("time"))


def _name_keys(names: Sequence[str]) -> list[tuple[str, int | None]]:
    """(sequence key, time) of every file name of a folder, in order.

    Names like ``t012.png`` or ``emb1_t012.png`` give both (:func:`_parse_name`). Otherwise, when every
    name is one pattern with a number at the end of its stem (``frame_1.png`` ... ``frame_20.png``,
    ``img_0001.tif`` ...: the same text before the number and the same extension), that number is the
    time, in one sequence, when they count frames: they rise, mostly by 1 (the gaps: the steps above 1), and
    stay below 100000. Names without such a numbering have no time (no gap can be told): clock times or dates
    written as one number (``img_120950``, ``img_20240131``: six digits or more), names numbered at another
    step (every 5th frame saved: its step cannot be told from an interval change) and other patterns.
    """
    keys = [_parse_name(n) for n in names]
    if all(t is not None for _, t in keys) or len(names) < 2:
        return keys
    parts = [_NUMBERED_RE.match(Path(str(n)).name) for n in names]
    if not all(parts):
        return keys
    if len({m.group("prefix") for m in parts}) != 1 or len({(m.group("ext") or "").lower() for m in parts}) != 1:
        return keys
    times = [int(m.group("num")) for m in parts]
    steps = np.diff(times)
    if max(times) >= _MAX_FRAME_NUMBER or (len(steps) and (np.any(steps <= 0) or _usual_step(steps) != 1)):
        return keys  # not a count of frames (clock times, dates, every 5th frame saved): no gaps to tell
    return [("", t) for t in times]


#: a number at the end of file names at or above this is a clock time or a date (``img_120950``, ``20240131``), not a
#: frame count (:func:`_name_keys`)
_MAX_FRAME_NUMBER = 100_000


def _usual_step(steps: np.ndarray) -> int:
    """The most common of a sequence's (positive) time steps, the smallest on ties."""
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])


_COLUMNS = [
    "frame", "file", "sequence", "time", "height", "width",
    "level", "p99", "clipped", "contrast", "level_ratio", "level_ratio_high",
    "red_line_score", "red_area", "red_patch_score", "change", "change_ratio",
    "black", "dark", "red_line", "red_patch", "bright", "duplicate", "dropped", "unreadable", "corrupt",
    "flag", "flagged",
]

#: a report's measurements, written to its CSV at :data:`SCORE_DIGITS` significant digits (:func:`report_for_csv`):
#: the flags are decided on the full values before, and nothing reads the scores back
SCORE_COLUMNS = ("level", "p99", "clipped", "contrast", "level_ratio", "level_ratio_high", "red_line_score",
                 "red_area", "red_patch_score", "change", "change_ratio")
SCORE_DIGITS = 4


def report_for_csv(report: pd.DataFrame) -> pd.DataFrame:
    """``report`` (:func:`curate_path`) as its CSV holds it: a copy whose :data:`SCORE_COLUMNS` are rounded to
    :data:`SCORE_DIGITS` significant digits (``7.79e-06``, ``25.47``, not ``7.791722074468084e-06``); the other
    columns (frame, time, flags, the input's identity) as they are."""
    out = report.copy()
    for column in SCORE_COLUMNS:
        if column in out.columns:
            values = pd.to_numeric(out[column], errors="coerce").to_numpy(np.float64)
            out[column] = [float(f"{v:.{SCORE_DIGITS}g}") if np.isfinite(v) else v for v in values]
    return out


def score_frames(
    frames: Iterable[np.ndarray],
    names: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    thresholds: Thresholds | None = None,
) -> pd.DataFrame:
    """Score every frame of a timelapse and flag the corrupt ones.

    One streaming pass (each frame is dropped once measured; what is kept is a ~64-row grey
    copy of the previous frame, and per frame a dozen numbers plus a bit-packed map of its
    red 8x8 blocks, about 750 bytes for a 752 x 512 frame) and an O(n_frames) post-pass
    that compares each frame with its own sequence.

    Parameters
    ----------
    frames : iterable of ndarray
        Frames in time order, each H x W (grey) or H x W x 3/4 (RGB[A]); uint8, uint16 (or another integer
        type), or float (in [0, 1], or in any units: see the module's notes). A generator is fine.
    names : sequence of str, optional
        File names of the frames, same order. Names like ``t012.png`` or
        ``<embryo>_t012.png`` give the sequence (embryo) and the time point: statistics are
        then taken per sequence, and gaps in the numbering are reported as ``dropped``. Names
        of one pattern ending in a number (``frame_1.png``, ``img_0001.tif``, ...) give the time
        point too (one sequence), when the numbers rise at a steady step (gaps being multiples of it).
    progress : callable, optional
        ``progress(done, total)`` after each frame; ``total`` is 0 when unknown.
    thresholds : Thresholds, optional
        Decision thresholds (defaults: :class:`Thresholds`).

    Returns
    -------
    pandas.DataFrame
        One row per frame (plus one per dropped time), columns: ``frame`` (0-based
        position in the input, empty for dropped rows), ``file``, ``sequence``, ``time`` (the time point in
        ``names``, empty without; :func:`curate_path` gives a video's and a stack's in seconds),
        ``height``, ``width`` (pixels), ``level``, ``p99`` (8-bit grey levels), ``clipped`` (fraction of the
        pixels at the top of the range), ``contrast`` (8-bit grey levels),
        ``level_ratio`` (level / the lower of the neighbours' medians before and after: the dark
        test), ``level_ratio_high`` (level / the higher of them: the bright test),
        ``red_line_score`` (fraction of a row/column that is red), ``red_area`` (fraction
        of the frame in red blocks), ``red_patch_score`` (fraction of the frame in the
        largest red region absent from the two frames before and after), ``change``
        (mean absolute change from the previous frame, relative to the mean level),
        ``change_ratio`` (change / the neighbours' ordinary change), one boolean column per kind
        (``black, dark, red_line, red_patch, bright, duplicate, dropped, unreadable, corrupt``; ``corrupt`` is
        set by :func:`curate_path` only, from the video reader's damage report), ``flag`` (the main
        kind, "" for a clean frame) and ``flagged``. A :class:`~devolens.io.missing.MissingFrame` among
        the frames (a frame that could not be read) gets a row flagged ``dropped`` (lost from a video)
        or ``unreadable`` (a file), without measurements, and is left out of its neighbours' statistics.

    Examples
    --------
    >>> report = score_frames(iio.imiter("movie.mp4"))  # doctest: +SKIP
    >>> report.loc[report.flagged, ["frame", "flag"]]  # doctest: +SKIP
    """
    _check_thresholds(thresholds)
    th = thresholds or Thresholds()
    if names is not None:
        names = list(names)
        keys = _name_keys([str(n) for n in names])
    total = len(names) if names is not None else (len(frames) if hasattr(frames, "__len__") else 0)

    from devolens.io.missing import MissingFrame

    rows: list[dict] = []
    missing: list[dict] = []  # rows of frames that could not be read
    details: list[tuple[int, str, str, str]] = []  # (frame, file, reason, what went wrong) of those
    red_maps: list[tuple[tuple[int, int], np.ndarray]] = []  # bit-packed red block maps
    prev_small: np.ndarray | None = None
    prev_seq: str | None = None
    # each sequence's float range as it is read: its first frame's that is not blank (brought to the sequence's
    # after the pass where that frame is an outlier: _one_range)
    ranges: dict[str, float] = {}
    for i, image in enumerate(frames):
        name = None
        seq, time = "", None
        if names is not None:
            if i >= len(names):
                raise DevolensError(f"more frames than names ({len(names)})")
            name = str(names[i])
            seq, time = keys[i]
        if isinstance(image, MissingFrame):
            missing.append({"frame": i, "file": name or "", "sequence": seq, "time": time,
                            _MISSING_KINDS[image.reason]: True})
            details.append((i, name or "", image.reason, image.detail))
            prev_small = None  # no change measured across it
            if progress is not None:
                progress(i + 1, max(total, i + 1) if total else 0)
            continue
        try:
            stats, small, red_map = _frame_stats(image, th, ranges.get(seq))
        except DevolensError as exc:
            raise DevolensError(f"frame {i}: {exc}", path=name) from None
        if seq not in ranges and stats["range"] is not None and np.asarray(image).dtype.kind == "f":
            ranges[seq] = stats["range"]  # (its frames compared in one range: a dimmed frame reads dimmer)
        del image
        change = change_noise = change_abs = pair_mean = pair_noise = np.nan
        if prev_small is not None and prev_seq == seq and prev_small.shape == small.shape:
            pair_mean = 0.5 * (float(small.mean()) + float(prev_small.mean()))
            scale = pair_mean + 1.0
            change_abs = float(np.abs(small - prev_small).mean())
            change = change_abs / scale
            # what the two frames' noise alone puts into it (the mean absolute difference of two normal variables)
            pair_noise = math.sqrt(2.0 / math.pi) * math.hypot(stats["grain"], prev_grain)
            change_noise = pair_noise / scale
        prev_small, prev_seq, prev_grain = small, seq, stats["grain"]
        rows.append({"frame": i, "file": name or "", "sequence": seq, "time": time, "change": change,
                     "change_noise": change_noise, "change_abs": change_abs, "pair_mean": pair_mean,
                     "pair_noise": pair_noise, **stats})
        red_maps.append((red_map.shape, np.packbits(red_map, axis=None)))
        if progress is not None:
            progress(i + 1, max(total, i + 1) if total else 0)
    if names is not None and len(rows) + len(missing) != len(names):
        raise DevolensError(f"got {len(rows) + len(missing)} frames for {len(names)} names")

    if not rows:
        report = _finish(pd.DataFrame(missing)) if missing else _empty_report()
        report.attrs["missing"] = details
        return report
    table = pd.DataFrame(rows)
    parts = []
    # sequences in order of first appearance; consecutive runs of the same key form one
    run = (table["sequence"] != table["sequence"].shift()).cumsum()
    for _, part in table.groupby(run, sort=False):
        maps = [red_maps[j] for j in part.index]
        decided = _decide(_one_range(part.reset_index(drop=True)), [_unpack(*m) for m in maps], th)
        parts.append(_with_dropped(decided))
    report = pd.concat(parts, ignore_index=True)
    if missing:  # in frame order among the others (a folder's dropped rows stay after the frame they follow)
        gone = pd.DataFrame(missing)
        if gone["time"].notna().any():  # an unreadable t012.png is no gap in the times
            have = set(zip(gone["sequence"], gone["time"]))
            same = np.array([(q, t) in have for q, t in zip(report["sequence"], report["time"])], bool)
            report = report[~(report["frame"].isna().to_numpy(bool) & same)].reset_index(drop=True)
        order = pd.to_numeric(report["frame"], errors="coerce").ffill().fillna(-1.0).to_numpy(float)
        report = pd.concat([report, gone], ignore_index=True)
        order = np.concatenate([order, gone["frame"].to_numpy(float) - 0.5])
        report = report.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
    report = _finish(report)
    report.attrs["missing"] = details  # (frame, file, reason, detail) of the frames that could not be read
    return report


def _with_dropped(s: pd.DataFrame) -> pd.DataFrame:
    """Insert one ``dropped`` row per missing time in a sequence's numbering.

    The time step is the sequence's most common step (so frames rendered or exported every
    k-th time point are not taken for gaps); a gap of several steps misses the times in
    between.
    """
    times = s["time"]
    if times.isna().any() or len(s) < 3:
        return s
    t = times.to_numpy(int)
    steps = np.diff(t)
    if np.any(steps <= 0):  # not in increasing time order: no gap reasoning
        return s
    step = _usual_step(steps)  # most common step (smallest on ties)
    extra = []
    for a, b in zip(t[:-1], t[1:]):
        for missing in range(a + step, b, step):
            extra.append({"frame": pd.NA, "file": "", "sequence": s["sequence"].iloc[0], "time": missing,
                          "dropped": True, "black": False, "dark": False, "bright": False, "red_line": False,
                          "red_patch": False, "duplicate": False})
    if not extra:
        return s
    out = pd.concat([s, pd.DataFrame(extra)], ignore_index=True)
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def _finish(report: pd.DataFrame) -> pd.DataFrame:
    for k in KINDS:
        report[k] = (report[k] if k in report.columns else pd.Series(False, index=report.index)).fillna(False).astype(bool)
    for c in _COLUMNS:  # a report of unreadable frames only has no measurements
        if c not in report.columns:
            report[c] = np.nan
    _set_flags(report)
    report["frame"] = pd.array(report["frame"], dtype="Int64")
    report["time"] = pd.array(report["time"], dtype="Int64")
    for k in ("height", "width"):
        report[k] = pd.array(report[k], dtype="Int64")
    report["file"] = report["file"].fillna("").astype(str)
    return report[_COLUMNS]


def _set_flags(report: pd.DataFrame) -> None:
    """The main ``flag`` (the first kind of :data:`KINDS` that applies, "" for none) and ``flagged`` of every row,
    from the kinds' columns."""
    flag = np.full(len(report), "", dtype=object)
    for kind in reversed(KINDS):  # earlier kinds take precedence
        flag[report[kind].to_numpy(bool)] = kind
    report["flag"] = flag.astype(str)
    report["flagged"] = report["flag"] != ""


def mark_corrupt(report: pd.DataFrame, ranges) -> int:
    """Flag ``corrupt`` the frames of ``report`` (from :func:`score_frames`) in ``ranges``, ``(first, last)`` frame
    positions (:meth:`devolens.io.video.VideoDamage.corrupt_frames`; None or empty: nothing), in place; rows of
    frames that could not be read (``dropped``, ``unreadable``) stay as they are. Returns the count of rows
    flagged."""
    if not ranges:
        return 0
    frames = pd.to_numeric(report["frame"], errors="coerce").to_numpy(float)
    hit = np.zeros(len(report), bool)
    for first, last in ranges:
        hit |= (frames >= first) & (frames <= last)
    hit &= ~(report["dropped"].to_numpy(bool) | report["unreadable"].to_numpy(bool))
    report["corrupt"] = report["corrupt"].to_numpy(bool) | hit
    _set_flags(report)
    return int(hit.sum())


def _empty_report() -> pd.DataFrame:
    df = pd.DataFrame({c: [] for c in _COLUMNS})
    for k in (*KINDS, "flagged"):
        df[k] = df[k].astype(bool)
    df["flag"] = df["flag"].astype(str)
    return df


def _check_thresholds(thresholds) -> None:
    if thresholds is not None and not isinstance(thresholds, Thresholds):
        raise DevolensError("thresholds must be a devolens.curate.Thresholds (e.g. Thresholds(black_level=2)) or None, "
                            f"got {type(thresholds).__name__}")


def _check_curate_options(path, progress, thresholds, stack_z, channel, pages, decode_threads=None) -> None:
    """Refuse option values :func:`curate_path` cannot take, whatever the input (an option that does nothing on
    this input is a trap: it would be silently ignored on a folder of PNGs)."""
    from devolens.io.stacks import check_pages, check_stack_z

    if not isinstance(path, (str, os.PathLike)):
        raise DevolensError(f"expected a path to a video, a folder of images or a stack (str or Path), got {path!r}")
    if progress is not None and not callable(progress):
        raise DevolensError(f"progress must be a function progress(done, total) or None, got {progress!r}")
    _check_thresholds(thresholds)
    check_stack_z(stack_z, "stack_z")
    check_pages(pages)
    if decode_threads is not None and (isinstance(decode_threads, (bool, np.bool_))
                                       or not isinstance(decode_threads, (int, np.integer)) or decode_threads < 1):
        raise DevolensError(f"decode_threads must be an integer >= 1 or None, got {decode_threads!r}")
    if channel is None:
        return
    if isinstance(channel, (bool, np.bool_)) or not isinstance(channel, (int, np.integer)) or channel < 0:
        raise DevolensError(f"channel must be a channel number of a TIFF stack's C axis (0, 1, ...) or None, "
                            f"got {channel!r}")
    check_channel_input(path, channel)


def curate_path(
    path: str | Path,
    progress: Callable[[int, int], None] | None = None,
    *,
    thresholds: Thresholds | None = None,
    stack_z: str = "project",
    channel: int | None = None,
    pages: str = "time",
    decode_threads: int | None = None,
) -> pd.DataFrame:
    """Score and flag the frames of a video file, a folder of images or a TIFF stack.

    Parameters
    ----------
    path : str or Path
        Video (mp4/mov/avi/...), folder of images, or a render output folder with
        ``frames/``. Frames are streamed, never all held in memory.
    progress : callable, optional
        ``progress(done, total)`` after each frame.
    thresholds : Thresholds, optional
        Decision thresholds.
    stack_z, channel, pages
        TIFF stacks: see :func:`devolens.io.frames.iter_path_frames`.
    decode_threads : int, optional
        Videos: ffmpeg decoder threads (default: ffmpeg's choice, about one per core).

    Returns
    -------
    pandas.DataFrame
        The report of :func:`score_frames`; ``file`` holds the image names for a folder and
        is empty for a video or a stack; ``time`` holds, in one of two units that the column ``time_unit`` (after
        it) names on every row with a time: ``seconds`` for a video, each frame's seconds since its first frame
        (from its timestamps, read as the frames are, with ffmpeg 6.1 or later; empty otherwise), and for a TIFF
        stack whose metadata record the interval between its time points, each frame's seconds since the first
        time point (empty for a stack without one); ``time point`` for a folder, the time-point number of file
        names like ``t012.png``, ``emb1_t012.png`` or ``frame_12.png`` (12; empty otherwise), not seconds. For a
        video in which ffmpeg reported damaged data, the frames decoded from it are flagged ``corrupt``
        (:func:`mark_corrupt`; found by decoding the video once more, ~2.5 s per 1000 frames of 752x512 H.264).
        Five more columns, the same on every row, say what input it is of: ``input`` (the file or folder name),
        ``input_frames`` (the frame count the input declares: a video's header, which a file cut short does not
        meet; 0 when unknown), ``input_options`` (the options that shaped its frames, :func:`reading_options`),
        and for a file (a video, a stack, an image) ``input_bytes`` (its size) and ``input_fingerprint``
        (:func:`devolens.provenance.file_fingerprint`: the sha256 of its size and of its first and last MiB, 16 hex
        digits), empty for a folder. A last column, ``file_fingerprint``, is a folder's: each row's file's
        fingerprint (of the same kind; a stack's frames share their file's), empty for a file input and for a dropped
        frame. :func:`report_mismatch` compares them with the input's.

    Raises
    ------
    DevolensError
        Missing or unreadable input, input with no frames, or an option value it cannot take
        (checked for every kind of input: ``stack_z="x"`` is refused on a folder of PNGs too).
    """
    _check_curate_options(path, progress, thresholds, stack_z, channel, pages, decode_threads)
    # frames that cannot be read (unreadable files, frames lost mid-video) are reported, not the end of it
    frames, names, total = iter_path_frames(path, stack_z=stack_z, channel=channel, pages=pages,
                                            decode_threads=decode_threads, missing="mark")

    def counted(done: int, _total: int) -> None:
        if progress is not None:
            progress(done, max(total, done))

    report = score_frames(frames, names=names, progress=counted if progress else None, thresholds=thresholds)
    damage = getattr(frames, "damage", None)  # a video read to its end: what was found wrong with the file
    if damage is not None and not report.empty:
        mark_corrupt(report, damage.corrupt_frames())
    if report.empty:
        raise DevolensError("no frames could be read", path=path)
    if report["unreadable"].all():  # nothing measured: an error, not a report
        _, name, _, detail = report.attrs["missing"][0]
        raise DevolensError(f"none of the {len(report)} files could be read (e.g. {name}: {detail})", path=path)
    seconds = _stack_times(report, Path(path), stack_z=stack_z, pages=pages)
    seconds = _video_times(report, getattr(frames, "times", None)) or seconds
    # (one column `time` of two units, a folder's time points or seconds: which, on every row that has a time)
    report.insert(report.columns.get_loc("time") + 1, "time_unit",
                  np.where(report["time"].notna().to_numpy(bool), "seconds" if seconds else "time point", ""))
    # what identifies the input, on every row (a CSV has no other place): a consumer of the report tells its own
    # input's report from another's by it (report_mismatch)
    report["input"] = Path(path).resolve().name
    report["input_frames"] = int(total or 0)
    report["input_options"] = reading_options(path, stack_z=stack_z, channel=channel, pages=pages)
    size, fingerprint = input_identity(path)
    report["input_bytes"] = pd.array([size] * len(report), dtype="Int64")
    report["input_fingerprint"] = fingerprint
    # a folder's frames, each by its file's bytes: labs name every movie's frames t000.png..., so the names alone
    # do not tell one movie's folder from another's (~0.25 s per 1000 frames of 300 kB, the files just read)
    prints = frame_fingerprints(path, names) if names is not None and Path(path).is_dir() else {}
    report["file_fingerprint"] = [prints.get(name) if isinstance(name, str) else None for name in report["file"]]
    report.attrs["source"] = str(path)
    report.attrs["thresholds"] = asdict(thresholds or Thresholds())
    return report


def _stack_times(report: pd.DataFrame, path: Path, *, stack_z: str, pages: str) -> bool:
    """``time`` of a TIFF stack's rows, in place, where its metadata record the interval between its time points
    (:func:`devolens.io.stacks.frame_interval`): the seconds since its first time point, t x interval (frame t
    x Z + z with ``stack_z="slices"``); whole seconds as integers. Other inputs (a video, a folder, a stack
    without an interval) are left as they are. True where it set them."""
    from devolens.io.stacks import stack_reading

    if not path.is_file() or path.suffix.lower() not in (".tif", ".tiff"):
        return False
    reading = stack_reading(path, z=stack_z, pages=pages)
    if not reading or not reading["interval_s"]:
        return False
    axes, shape = reading["axes"], reading["shape"]
    if "T" not in axes or shape[axes.index("T")] != reading["time_points"]:  # time points along T alone
        return False
    per = reading["z_planes"] if reading["z"] == "slices" else 1
    frames = pd.to_numeric(report["frame"], errors="coerce").to_numpy(float)
    report["time"] = _seconds_column(np.floor(frames / per) * reading["interval_s"])
    return True


def _video_times(report: pd.DataFrame, times: list[float | None] | None) -> bool:
    """``time`` of a video's rows, in place: each frame's seconds since the first frame, from the timestamps the
    video reader numbers its frames by (:attr:`devolens.io.video.VideoFrames.times`; a frame missing mid-file at
    the time between its neighbours). Left as it is where there are none (ffmpeg before 6.1, or stamps that
    could not be read). True where it set them."""
    if not times or all(t is None for t in times):
        return False
    frames = pd.to_numeric(report["frame"], errors="coerce").to_numpy(float)
    seconds = np.full(len(frames), np.nan)
    for row, f in enumerate(frames):
        if np.isfinite(f) and 0 <= int(f) < len(times) and times[int(f)] is not None:
            seconds[row] = times[int(f)]
    report["time"] = _seconds_column(seconds)
    return True


def _seconds_column(seconds: np.ndarray):
    """Seconds for the ``time`` column (to the microsecond; whole seconds as integers, NaN: empty)."""
    seconds = np.round(np.asarray(seconds, float), 6)
    whole = np.isnan(seconds) | (seconds == np.round(seconds))
    return pd.array(seconds, dtype="Int64") if whole.all() else seconds


def reading_options(path: str | Path, *, stack_z: str = "project", channel: int | None = None,
                    pages: str = "time") -> str:
    """The options that shape the frames read from ``path``, as ``devolens curate frames`` takes them
    (``"--stack-z slices --channel 1"``), naming only those that matter for this input: ``--pages`` for a plain
    multi-page TIFF (pages without axis labels), ``--stack-z`` for a stack with a Z axis, ``--channel`` for one
    with a C axis. "" for a video, an image, or a folder whose (first) TIFF is no stack.

    A report records it (column ``input_options``): a report read with other options numbers other frames.
    """
    from devolens.io.frames import folder_files
    from devolens.io.stacks import pages_with_channel, read_pages_as, stack_info

    p = Path(path)
    tiff = (".tif", ".tiff")
    if p.is_file() and p.suffix.lower() in tiff:
        member = p
    elif p.is_dir():  # a folder of stacks: its first TIFF (the others are read by the same options)
        member = next((f for f in folder_files(p) if f.suffix.lower() in tiff), None)
    else:
        return ""
    if member is None:
        return ""
    try:
        raw = stack_info(member)
        info = read_pages_as(raw, pages_with_channel(pages, channel), member)  # (2-4 pages and a channel: channels)
    except DevolensError:  # unreadable: the reader says why
        return ""
    if not info.is_stack:
        return ""
    opts = []
    if raw.unlabelled:
        opts.append(f"--pages {'time' if pages == 'channels' else pages}")  # ("channels": what --channel made of it)
    if info.planes > 1:
        opts.append(f"--stack-z {stack_z}")
    if info.channels > 1 and channel is not None:
        opts.append(f"--channel {int(channel)}")
    return " ".join(opts)


# --------------------------------------------------------------------------- consumers


def load_report(report: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A curation report's table (a DataFrame is checked and returned as it is).

    Raises
    ------
    DevolensError
        Missing or unreadable file, or a table without the report's columns.
    """
    if isinstance(report, pd.DataFrame):
        df = report
    else:
        p = Path(report)
        if p.is_dir():  # a results folder: its report is the CSV in it (segment's curation.csv)
            inside = sorted((q.name for q in p.glob("*curation*.csv")), key=lambda n: (n != "curation.csv", n))
            raise DevolensError("is a folder, not a curation report (a CSV of `devolens curate frames`)"
                                + (f": give {p / inside[0]}" if inside else ""), path=p)
        if not p.is_file():
            raise DevolensError("no such curation report", path=p)
        try:
            df = pd.read_csv(p, keep_default_na=True, dtype={"file": str, "flag": str, "input": str,
                                                             "input_options": str, "input_fingerprint": str,
                                                             "file_fingerprint": str})
        except Exception as exc:
            raise DevolensError(f"cannot read curation report ({type(exc).__name__})", path=p) from None
    if not isinstance(report, pd.DataFrame) and "file" in df.columns:  # names not UTF-8, as written escaped
        from devolens.io.atomic import restore_name

        df["file"] = df["file"].map(lambda v: restore_name(v) if isinstance(v, str) else v)
    if "frame" not in df.columns or not ({"flagged", "flag"} & set(df.columns)):
        where = None if isinstance(report, pd.DataFrame) else report
        raise DevolensError("not a curation report (needs columns 'frame' and 'flagged' or 'flag')", path=where)
    if not isinstance(report, pd.DataFrame):  # yes/no columns as bools, each value checked (an edit by hand)
        for name in (*KINDS, "flagged"):
            if name in df.columns:
                df[name] = _bool_column(df, name, path=report)
    return df


def _flag_mask(df: pd.DataFrame) -> np.ndarray:
    if "flagged" in df.columns:
        return _bool_column(df, "flagged")
    return (df["flag"].fillna("").astype(str).str.strip() != "").to_numpy()


def kinds_not_flagged(report: str | Path | pd.DataFrame, shown: int = 5) -> str | None:
    """The note on a report's rows (an edit by hand) where a kind column (``dark``...) says yes while ``flagged``
    says no: only ``flagged`` decides what ``--skip-flagged`` leaves out, so these frames are kept. None when
    there are none, or the report has no ``flagged`` column (its ``flag`` column decides then)."""
    df = load_report(report)
    if "flagged" not in df.columns:
        return None
    kinds = [k for k in KINDS if k in df.columns]
    said = np.zeros(len(df), bool)
    for k in kinds:
        said |= _bool_column(df, k)
    rows = np.flatnonzero(said & ~_bool_column(df, "flagged"))
    if not len(rows):
        return None
    named = []
    for i in rows[:shown]:
        row = df.iloc[int(i)]
        frame = pd.to_numeric(pd.Series([row["frame"]]), errors="coerce").iloc[0]
        file = row.get("file") if "file" in df.columns else None
        who = (f"file {file}" if isinstance(file, str) and file else f"frame {int(frame)}" if pd.notna(frame)
               else f"row {int(i) + 1}")
        named.append(f"{who} ({', '.join(k for k in kinds if _bool_column(df.iloc[[int(i)]], k)[0])})")
    more = f" and {len(rows) - shown} more" if len(rows) > shown else ""
    s = "s" if len(rows) != 1 else ""
    return (f"{len(rows)} row{s} {'say' if s else 'says'} yes in a kind column but not in "
            f"'flagged' ({'; '.join(named)}{more}): only 'flagged' decides what --skip-flagged leaves out, so "
            f"{'these frames are' if s else 'this frame is'} kept; set 'flagged' to yes to skip "
            f"{'them' if s else 'it'}")


#: the words a report's yes/no columns may hold (any case, spaces around them ignored; an empty cell is no)
_TRUE_WORDS = ("true", "yes", "1")
_FALSE_WORDS = ("false", "no", "0", "")


def _bool_column(df: pd.DataFrame, name: str, path: str | Path | None = None) -> np.ndarray:
    """A report's yes/no column as bools, whatever dtype pandas read it as (bool; numbers 0/1; text, object or
    pandas 3's ``str``: true/false, yes/no, 1/0 in any case); all False when absent, False for an empty cell.

    Raises
    ------
    DevolensError
        Another value (``maybe``, ``2``), naming the column and the row (and the line of the file ``path``).
    """
    if name not in df.columns:
        return np.zeros(len(df), bool)
    col = df[name]
    if pd.api.types.is_bool_dtype(col.dtype):
        return col.fillna(False).to_numpy(bool)
    empty = col.isna().to_numpy(bool)
    if pd.api.types.is_numeric_dtype(col.dtype):
        values = col.to_numpy(float, na_value=np.nan)
        bad = ~empty & ~np.isin(values, (0.0, 1.0))
        out = ~empty & (values == 1.0)
    else:
        words = col.astype(object).where(~empty, "").map(lambda v: str(v).strip().lower()).to_numpy(object)
        out = np.isin(words, _TRUE_WORDS)
        bad = ~out & ~np.isin(words, _FALSE_WORDS)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f"row {i + 1}" + (f" (line {i + 2} of the file)" if path is not None else "")
        value = str(col.iloc[i]).strip()
        raise DevolensError(f"curation report: column {name!r}, {where}: {value!r} is not a yes/no value "
                            "(true/false, yes/no or 1/0)", path=path)
    return out


def _numbered(df: pd.DataFrame, mask: np.ndarray) -> set[int]:
    """The frame numbers of the rows of ``mask`` that have one."""
    frames = pd.to_numeric(df["frame"], errors="coerce")
    return {int(v) for v in frames[frames.notna().to_numpy() & mask]}


def flagged_frames(report: str | Path | pd.DataFrame) -> set[int]:
    """0-based positions of the flagged frames in a curation report.

    Positions count frames in the order :func:`curate_path` read them (decode order for a
    video, natural sort order of the file names for a folder; a video's frames missing
    mid-file count too, so that the frames after them keep their numbers). Rows for dropped
    frames are left out: a folder's have no position, a video's are not there to skip
    (:func:`dropped_frames` lists them).

    Parameters
    ----------
    report : path or DataFrame
        A report written by ``devolens curate frames`` or returned by :func:`score_frames`.

    Returns
    -------
    set of int

    Raises
    ------
    DevolensError
        Missing file, or a table without the report's columns.
    """
    df = load_report(report)
    return _numbered(df, _flag_mask(df) & ~_bool_column(df, "dropped"))


def dropped_frames(report: str | Path | pd.DataFrame) -> set[int]:
    """Numbers of the frames a curation report found missing in the middle of a video (``dropped`` rows with a
    frame number: the frames after them keep their numbers, see :mod:`devolens.io.missing`)."""
    df = load_report(report)
    return _numbered(df, _bool_column(df, "dropped"))


def _input_fact(df: pd.DataFrame, column: str):
    """What a report records about its input in ``column`` (the same on every row): None when it has no such
    column (a report of an older devolens, or :func:`score_frames`' table), else the first value given
    (None when every cell is empty)."""
    if column not in df.columns:
        return None
    given = df[column].dropna()
    return given.iloc[0] if len(given) else None


def input_identity(path: str | Path) -> tuple[int | None, str | None]:
    """What a curation report records of a file input to tell it from another file: its size in bytes and its
    :func:`~devolens.provenance.file_fingerprint`; ``(None, None)`` for a folder (its file names are compared)."""
    from devolens.provenance import file_fingerprint

    p = Path(path)
    if not p.is_file():
        return None, None
    try:
        return p.stat().st_size, file_fingerprint(p)
    except OSError as exc:
        raise DevolensError(f"cannot read the input: {exc.strerror or exc}", path=p) from None


def _frame_files(folder: Path, names: list[str]) -> list[Path] | None:
    """The file each of a folder's frames ``names`` comes from (:func:`devolens.io.frames.iter_path_frames`' names,
    in its order: an image's own name, ``<stem>_0000<suffix>``, ``<stem>_0001<suffix>``... for the frames of a
    stack or an animated image), or None where the folder's files no longer give those names (changed since)."""
    from devolens.io.frames import folder_files, image_stem

    files: list[Path] = []
    for p in folder_files(folder):
        if len(files) < len(names) and names[len(files)] == p.name:
            files.append(p)
            continue
        stem = image_stem(p)
        k = 0  # (a frame's name never is its file's: the first has _0000 in it)
        while len(files) < len(names) and names[len(files)] == f"{stem}_{k:04d}{p.name[len(stem):]}":
            files.append(p)
            k += 1
    return files if len(files) == len(names) else None


def frame_fingerprints(folder: str | Path, names: list[str], only: set[str] | None = None) -> dict[str, str]:
    """The :func:`~devolens.provenance.file_fingerprint` of the file of each of a folder's frames ``names`` (those
    in ``only`` where given), by frame name: what a curation report of a folder records in ``file_fingerprint``.
    Each file is read once (a stack's frames share its fingerprint); a file that cannot be read is left out, and
    so is every frame when the folder no longer holds the files that gave ``names``."""
    from devolens.provenance import file_fingerprint

    try:
        files = _frame_files(Path(folder), names)
    except (OSError, DevolensError):  # (the folder gone or unreadable: nothing to tell the frames by)
        return {}
    prints: dict[str, str] = {}
    seen: dict[Path, str | None] = {}
    for name, p in zip(names, files or ()):
        if only is not None and name not in only:
            continue
        if p not in seen:
            try:
                seen[p] = file_fingerprint(p)
            except OSError:
                seen[p] = None
        if seen[p] is not None:
            prints[name] = seen[p]
    return prints


def _recorded_fingerprint(value) -> str | None:
    """A fingerprint a report records (:func:`~devolens.provenance.file_fingerprint`'s 16 hex digits), or None for
    an empty cell or a value that is none (a spreadsheet that edited the report by hand may have read an all-digit
    one as a number: ``1.23457E+15``): such a cell is not compared."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return value if len(value) == 16 and all(c in "0123456789abcdef" for c in value) else None


def _other_files(df: pd.DataFrame, files: pd.Series, names: list[str], folder: Path) -> str | None:
    """Why the report ``df`` (its file names ``files``) is of other files than the folder ``folder``'s frames
    ``names`` in words, by the fingerprints it records of its frames' files (``file_fingerprint``): the frames of
    one name in both, whose files have other bytes, named in the input's order (the first three, and how many more).
    None when none differ, and for a report without fingerprints (an older devolens's: names alone are compared)."""
    if "file_fingerprint" not in df.columns:
        return None
    recorded: dict[str, str] = {}
    for name, value in zip(files, df["file_fingerprint"]):
        value = _recorded_fingerprint(value)
        if name and value is not None:
            recorded.setdefault(name, value)
    if not recorded:
        return None
    ours = frame_fingerprints(folder, names, only=set(recorded))
    compared = [n for n in names if n in ours]
    differ = [n for n in compared if ours[n] != recorded[n]]
    if not differ:
        return None
    name = folder.resolve().name
    theirs = _input_fact(df, "input")
    theirs = None if theirs is None else str(theirs)
    of = f"of another folder named {name}: " if theirs == name else f"of {theirs}: " if theirs else ""
    shown = ", ".join(differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3 else "")
    one = len(differ) == 1
    count = "its one file" if len(compared) == 1 else f"{len(differ)} of its {len(compared)} files"
    return (f"it is of other files of the same names ({of}{count} {'has' if one else 'have'} other bytes here, "
            f"{shown}; or {'it was' if one else 'they were'} changed since)")


def _other_file(df: pd.DataFrame, path: Path) -> str | None:
    """Why the report ``df`` is of another file than ``path`` (a video or a stack), in words; None when it may be
    its own. Where the report records its input's fingerprint (:func:`input_identity`) the bytes decide (a copy
    under another name is the same file, a file rewritten under the same name another); an older report is
    judged by the file's name. Folders and reports that record neither: None."""
    size, fingerprint = input_identity(path)
    if size is None:
        return None
    name = path.resolve().name
    theirs = _input_fact(df, "input")
    theirs = None if theirs is None else str(theirs)
    printed = _input_fact(df, "input_fingerprint")
    if printed is not None:
        if str(printed).strip().lower() == fingerprint:
            return None
        recorded = pd.to_numeric(pd.Series([_input_fact(df, "input_bytes")]), errors="coerce").iloc[0]
        of, this = ((f"another {name}, ", "this one") if theirs == name else (f"{theirs}, ", name) if theirs
                    else ("", "this one"))
        if pd.notna(recorded) and int(recorded) != size:
            return f"it is of another file ({of}of {int(recorded):,} bytes; {this} has {size:,})"
        same = "of the same size, " if pd.notna(recorded) else ""
        return f"it is of another file ({of}{same}with other bytes; or {this} was changed since)"
    if theirs is not None and theirs != name:
        return f"it is of {theirs}, the input is {name}"
    return None


#: the options :func:`reading_options` records: the command's flag and the library's argument
_READING_ARGS = {"--pages": "pages", "--stack-z": "stack_z", "--channel": "channel"}


def _options_words(options: str) -> str:
    """``options`` (:func:`reading_options`, the command's flags) as a message names them: as recorded while the
    ``devolens`` command runs, as the library's arguments otherwise (``pages='z', stack_z='slices', channel=1``:
    :func:`devolens.errors.option`)."""
    if not options:
        return "no stack options"
    words = options.split()
    if len(words) % 2 or any(w not in _READING_ARGS for w in words[::2]):  # not as reading_options writes them
        return f"`{options}`"
    named = [option(_READING_ARGS[flag], value if flag == "--channel" else repr(value), flag=flag, cli_value=value)
             for flag, value in zip(words[::2], words[1::2])]
    return f"`{(' ' if command_running() else ', ').join(named)}`"


def report_mismatch(report: str | Path | pd.DataFrame, names: list[str] | None, total: int = 0, *,
                    options: str | None = None, path: str | Path | None = None) -> str | None:
    """Why ``report`` cannot be the curation report of an input, in words; None when it can be.

    Flagged frames are skipped by position, so a report of another input would skip the wrong
    frames. ``names``: the input's file names in reading order (a folder of images), None for a
    video or a stack; ``total``: its frame count (0 when unknown; a video's is the container's
    estimate, so a difference of a frame or two, or 2 %, is let pass); ``options``: how it is read
    (:func:`reading_options`; None: not compared); ``path``: the input itself (None: not compared), whose size and
    fingerprint a report of a file records (``input_bytes``, ``input_fingerprint``: :func:`input_identity`), so
    that the report of another video, of the same name, length and frame size (every render names its video
    ``video.mp4``), is refused; an older report's ``input`` name is compared instead (a report without an
    ``input_fingerprint`` column is older). For a folder, the fingerprints a report records of its files
    (``file_fingerprint``: :func:`frame_fingerprints`) are compared with those of the input's files of the same
    names, so that the report of another movie's folder, whose frames are named ``t000.png``... as well, is
    refused, naming the first files that differ; an older report (no ``file_fingerprint`` column), or a cell that
    holds no fingerprint, is judged by the names alone. Which input the report is of is compared first: where it
    differs, the message says so, not that the other input was read with other options as well.

    A report made by :func:`curate_path` records the input's declared frame count and how it was read
    (columns ``input_frames``, ``input_options``): those are compared, so the report of a video cut short
    (whose header declares more frames than could be read) fits that video. An older report is judged by
    the frames it covers. The sizes of the frames are compared as they are read (:func:`report_coverage`).
    """
    df = load_report(report)
    files = df["file"].fillna("").astype(str) if "file" in df.columns else pd.Series([""] * len(df))
    frames = pd.to_numeric(df["frame"], errors="coerce")
    has_files = bool((files != "").any())
    # which input it is of first: that is the cause where another input was also read with other options
    if names is not None and not has_files:
        return "the report is of a video or a stack (no file names), the input is a folder of images"
    if names is None and has_files:
        return "the report is of a folder of images (it names files), the input is a video or a stack"
    if path is not None:
        other = (_other_files(df, files, names, Path(path)) if names is not None and Path(path).is_dir()
                 else _other_file(df, Path(path)) if names is None else None)
        if other:
            return other
    theirs = _input_fact(df, "input_options")
    if options is not None and "input_options" in df.columns and str(theirs or "") != options:
        return (f"it was made with {_options_words(str(theirs or ''))}, this run reads the input with "
                f"{_options_words(options)}")
    if names is not None:
        for pos, name in zip(frames, files):
            if pd.isna(pos) or not name:
                continue
            pos = int(pos)
            if pos >= len(names) or names[pos] != name:
                theirs = names[pos] if pos < len(names) else f"none (it has {len(names)} images)"
                return f"the report's frame {pos} is {name}, the input's is {theirs}"
        return None
    # (a video's count is the container's estimate, duration x rate, which a variable frame rate or a header of
    # another muxer puts a frame or two off: the slack; another video within it is told by its fingerprint above)
    slack = max(2, 0.02 * total)
    declared = pd.to_numeric(pd.Series([_input_fact(df, "input_frames")]), errors="coerce").iloc[0]
    if total and pd.notna(declared) and declared > 0:  # the same file declares the same count, whatever is readable
        if abs(int(declared) - total) > slack:
            return f"the report is of an input of {int(declared)} frames, this one has {total}"
        return None
    n = int(frames.max()) + 1 if frames.notna().any() else 0
    # frames missing mid-video (dropped, with a number) may or may not be in the container's count
    gone = len(_numbered(df, _bool_column(df, "dropped")))
    if total and min(abs(n - total), abs(n - gone - total)) > slack:
        return f"the report covers {n} frames, the input has {total}"
    return None


def older_report_note(report: str | Path | pd.DataFrame, path: str | Path, names: list[str] | None) -> str | None:
    """What the ``--skip-flagged`` report ``report`` of an older devolens could not be checked by, in words, for a
    note; None for a report that records what tells its input from another (:func:`report_mismatch`). ``path``: the
    input; ``names``: its frames' file names where it is a folder (None for a video or a stack). A report of a file
    that records its name (``input``) but not its fingerprint was checked by that name; one of a folder without
    its files' fingerprints (``file_fingerprint``), by their names: another folder's files of those names (every
    movie's ``t000.png``...) would pass."""
    df = load_report(report)
    p = Path(path)
    if names is None and p.is_file() and "input" in df.columns and "input_fingerprint" not in df.columns:
        return ("this curation report (of an older devolens) records its video's name but not its fingerprint, so it "
                "was checked by name, frame count and frame sizes only: another file of the same name could pass; "
                "curate the input again for a report that tells them apart")
    named = "file" in df.columns and bool(df["file"].fillna("").astype(str).ne("").any())
    if names is not None and p.is_dir() and named and "file_fingerprint" not in df.columns:
        return ("this curation report (of an older devolens) records its folder's file names but not their "
                "fingerprints, so it was checked by file names only: another folder's files of the same names (every "
                "movie's t000.png...) could pass; curate the input again for a report that tells them apart")
    return None


def report_coverage(report: str | Path | pd.DataFrame) -> tuple[int, dict[int, tuple[int, int]], str]:
    """What a report says about the frames of its input, to compare with the frames as they are read: the
    number of frames it covers (positions 0 to n - 1, those missing mid-video included), each measured
    frame's ``(height, width)`` in pixels by position, and the input's name ("" when not recorded)."""
    df = load_report(report)
    frames = pd.to_numeric(df["frame"], errors="coerce")
    n = int(frames.max()) + 1 if frames.notna().any() else 0
    sizes: dict[int, tuple[int, int]] = {}
    if {"height", "width"} <= set(df.columns):
        h = pd.to_numeric(df["height"], errors="coerce")
        w = pd.to_numeric(df["width"], errors="coerce")
        ok = (frames.notna() & h.notna() & w.notna()).to_numpy(bool)
        sizes = {int(f): (int(a), int(b)) for f, a, b in zip(frames[ok], h[ok], w[ok])}
    name = _input_fact(df, "input")
    return n, sizes, "" if name is None else str(name)


def flagged_files(report: str | Path | pd.DataFrame) -> set[str]:
    """File names (as written in the report's ``file`` column) of the flagged frames.

    Empty for a video report. See :func:`flagged_frames`.
    """
    df = load_report(report)
    if "file" not in df.columns:
        return set()
    files = df["file"].fillna("").astype(str)
    sel = _flag_mask(df) & (files != "").to_numpy()
    return set(files[sel])


def read_rows(report: pd.DataFrame) -> np.ndarray:
    """The rows of a report that hold a frame read: a frame number, and not ``dropped`` (a video's frames missing
    mid-file have rows with their numbers, so that the frames after them keep theirs, but no frame; a folder's
    have no number)."""
    dropped = (_bool_column(report, "dropped") if "dropped" in report.columns
               else (report["flag"].fillna("").astype(str) == "dropped").to_numpy())
    return report["frame"].notna().to_numpy(bool) & ~dropped


def summarize(report: pd.DataFrame) -> dict[str, int]:
    """Counts per kind: ``frames`` (frames read: :func:`read_rows`, a video's dropped frames not among them),
    ``flagged`` (every flagged row, dropped ones included) and one entry per kind (main flag; a frame counts
    once)."""
    counts = {"frames": int(read_rows(report).sum()), "flagged": int(report["flagged"].sum())}
    for kind in KINDS:
        counts[kind] = int((report["flag"] == kind).sum())
    return counts
