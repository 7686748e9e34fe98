"""What a segmentation input looks like, judged on a few of its images: inverted (dark nuclei or membranes on a
bright background) or the other model's kind (bright blobs given to the membrane model, thin bright lines to the
nuclei model), where the model then finds few real objects, or outlines "cells" around nuclei, without failing.

:func:`judge_input` makes the judgement (:class:`InputLook`, or None); ``devolens segment`` prints its note from it
(:mod:`devolens.cli.predict`, in the command's words) and the segmentation predictors' ``predict``, ``predict_batch``
and ``predict_iter`` issue an :class:`~devolens.errors.InputWarning` from it (:class:`InputWatch`, once per call,
judged on :data:`SHAPE_FRAMES` of the first :data:`SHAPE_LOOK` images: the ones in which the model found the most
objects), as do the population predictor's on its frames (:class:`PopulationWatch`, in words for its counts).
"""

from __future__ import annotations

import collections
from typing import Iterable, Iterator, NamedTuple, Optional

import numpy as np

#: frames whose bright structure is judged blob- or line-like (the median of theirs), and the medians past which
#: the input looks like the other kind: nuclei renders' frames lie at 0.05-1 (median 0.81, 5th percentile 0.29),
#: membrane slices at 0-0.32 (median 0) (:func:`~devolens.predict.postprocess.blob_fraction`)
SHAPE_FRAMES = 5
#: ... chosen among this many first frames: those in which the model found the most objects (a movie's dark or noisy
#: start, where it finds none or a few specks, is passed over)
SHAPE_LOOK = 20
LOOKS_LIKE_NUCLEI = 0.45
LOOKS_LIKE_MEMBRANES = 0.02
#: a membrane input whose estimate resized it (``diameter="auto"``) looks like nuclei when its frames read
#: :data:`LOOKS_LIKE_NUCLEI` at the card's scale and at least this at the working scale too (:func:`judge_input`):
#: the membrane size model reads nuclei as magnified and shrinks them, where EPIC nuclei renders (L3 at 40-140 min,
#: 0.5-1.5x) still read 0.32-0.48 (the reference frames 0.89-0.92), but it reads a magnified membrane right and
#: shrinks it too, where its lines, wide at the card's scale (up to 97 % "blobs"), thin again: renders at 1.5-2x,
#: 0.00-0.04
LOOKS_LIKE_NUCLEI_WORKING = 0.25
#: a membrane input whose frames have a bright background (too bright to judge as they are) and, inverted, thin
#: bright lines (blob fraction this low: membrane slices 0-0.32, median 0; an inverted render 0.00-0.01) looks inverted
LOOKS_INVERTED = 0.2
#: a nuclei input looks inverted when most judged frames are too bright to judge, their median pixel lies this high in
#: their own 1st-99.8th percentile range before the background flattening (inverted renders and real reference
#: frames: 0.80-0.97; clean ones 0.00-0.03; of 7032 held-out inputs and their acquisition changes at 0.25-1x, those
#: too bright to judge whose inversion shows blobs: 0.57 at most), and, inverted, they show bright blobs (median blob
#: fraction LOOKS_LIKE_NUCLEI or more, at the magnification estimated on the inverted frames: those frames 0.79-0.96)
LOOKS_INVERTED_BACKGROUND = 0.7
#: the shape note judges the frames at half the render scale the model knows, but never above this share of the
#: input's own pixels: lines are a few pixels wide at any magnification (the optics' blur; the renderer draws them
#: 1-5 px wide at any frame size), so an input at a low magnification, enlarged to the model's scale, shows lines
#: as wide as the opening. devolens' own membrane renders of 188x128 to 376x256 px (judged at 1.0-1.25x of their
#: pixels): 12 of 13 read 79-100 % "blobs" (the false "looks like nuclei"), at 0.4x 0-25 % (at 0.5x two at 42-44 %);
#: nuclei stay blobs at it (renders of 188x128 to 376x256 px and the real reference frames shrunk to 0.25-0.33x:
#: 45-87 %, noted as before; the 752x512 ones are judged below it, as before)
SHAPE_MOST_SCALE = 0.4
#: ... and a nuclei input reads as thin lines only where its bright structure is lines: at the judging scale, in
#: regions many times as large as the largest disc inside them (:func:`elongation`, this or more). Small nuclei (a
#: cell culture's 6-10 px nuclei, 2-4 px at :data:`SHAPE_MOST_SCALE`) are erased by the opening as lines are, and
#: were called membranes (0-2 % "blobs") though the nuclei model found them (F1 0.98); their regions read 1.8-3.2
#: (touching nuclei merge into small clusters), against 53-3350 for membrane renders at 0.5-2x (noisy too), a
#: simulated culture membrane stain and the tests' line grids
LINES_ELONGATION = 20.0


#: the colour note (``segment``'s, :func:`colour_rivals`; the predictors' :class:`~devolens.errors.InputWarning`): of a
#: colour image read by the ``auto`` rule, the other channels whose bright structure is at least this share of the
#: read one's. Membranes: at full resolution (their lines count), 0.3. Nuclei: at a nucleus's scale (the rule's own
#: measure, thin lines faded), 0.9: channels that carry about as much, where the rule's preference for green (the
#: histone-GFP embryos) may have decided. A culture's Fiji export of blue nuclei and a green cytoplasm stain: 1.02
#: (green read, 308 "nuclei" that were cytoplasm; blue, F1 0.95); the real reference frames' red and blue 0.09-0.76,
#: renders' at most 0.51
COLOUR_RIVAL = {"membrane": 0.3, "nuclei": 0.9}
#: ... and for nuclei, a channel that carries as much is a rival only where its bright structure is another stain of
#: the same cells: present in at least this share of the read channel's bright regions (at the rule's nucleus scale,
#: each channel's regions above half its range), as a culture's nuclei lie one in each cell of its cytoplasm stain
#: (the Fiji export: 0.91; the tests' small one 1.00). A lineage reporter in a subset of the nuclei, which green
#: (histone-GFP, all nuclei) shows too, is not: the real frame 300 cropped to the embryo, where red carried 1.19x
#: green's and 19 nuclei against green's 152, 0.03; tighter crops 0.00-0.14. Nor are lines (membranes beside green
#: nuclei: a render's 123-250 against nuclei's 1-10, :func:`elongation` at that scale)
COLOUR_SAME_CELLS = 0.8


def colour_rivals(image, kind: str, channel: Optional[str] = "auto") -> Optional[tuple[str, list[str]]]:
    """For a ``kind`` model (``"nuclei"`` or ``"membrane"``) reading a colour ``image`` by the shipped rule (``channel``
    auto): the channel it read and the others that carry bright structure too (:data:`COLOUR_RIVAL`), where there are
    any; None otherwise (a grey image, grey stored as colour, no channel standing out, another rule or a channel
    given)."""
    from devolens.predict.postprocess import _signal_channel, channel_signals

    arr = None if image is None else np.asarray(image)
    if (arr is None or kind not in COLOUR_RIVAL or channel != "auto" or arr.ndim != 3 or arr.shape[2] < 3
            or min(arr.shape[:2]) < 2):
        return None
    picked = _signal_channel(arr)
    if picked is None:  # grey stored as colour, or no channel stands out: the mean was read
        return None
    # membranes: at full resolution (their lines count); nuclei: at the rule's own, a nucleus's scale
    signal = channel_signals(arr, shrink=kind != "membrane")
    names = ("red", "green", "blue")
    share = COLOUR_RIVAL[kind]
    others = [k for k in range(3) if k != picked and signal[k] >= share * max(float(signal[picked]), 1e-6)]
    if kind == "nuclei" and others:
        others = _nuclei_rivals(arr, picked, others)
    return (names[picked], [names[k] for k in others]) if others else None


def membrane_channel(image) -> Optional[tuple[str, str]]:
    """For the membrane model reading a colour ``image`` by the shipped rule (the channel with the most bright
    structure at a nucleus's scale, where thin lines fade): ``(lines, blobs)`` where the rule's channel, ``blobs``,
    holds blobs (nuclei: :func:`elongation` under :data:`LINES_ELONGATION` at that scale) and another channel that
    carries structure too (:func:`colour_rivals`), ``lines``, holds lines (membranes: that elongation or more; the
    most line-like of them where several do): the membranes' channel of a two-colour image of membranes and nuclei.
    None otherwise (a grey image, grey stored as colour, one channel with structure, no channel of lines, or a rule's
    channel of lines already): the rule's choice stands. The one rule of both ``devolens segment membrane`` (one
    image, a stack or a video, judged on its first frame) and the membrane predictor's ``predict`` of one image.

    Elongation at the rule's scale, each channel's regions above 0.3 of its range: renders' membranes 84, the
    reference movie's membrane slices 249, nuclei 3 (renders) and 14 (the real frame 160, its touching nuclei)."""
    rivals = colour_rivals(image, "membrane")
    if rivals is None:
        return None
    names = ("red", "green", "blue")
    rgb = _at_nucleus_scale(np.asarray(image))

    def lines(name: str) -> Optional[float]:
        x = np.nan_to_num(rgb[..., names.index(name)])
        low, top = np.percentile(x, (50, 99.5))
        return elongation(np.clip((x - low) / max(float(top - low), 1e-6), 0.0, 1.0), level=0.3)

    picked, others = rivals
    read = lines(picked)
    if read is None or read >= LINES_ELONGATION:
        return None
    found = [(value, name) for name in others if (value := lines(name)) is not None and value >= LINES_ELONGATION]
    return None if not found else (max(found)[1], picked)


def _at_nucleus_scale(arr: np.ndarray) -> np.ndarray:
    """The R, G, B of a colour ``arr`` at the colour rule's scale
    (:func:`~devolens.predict.postprocess.at_nucleus_scale`) as float32, shrunk in its own type first where the rule
    shrinks that type as it is (8 or 16 bits, float32 or 64, as :func:`~devolens.predict.postprocess.channel_signals`
    does): no float32 copy of the whole image (3 GB for a 16000 x 16000 RGB one), only of the shrunk one (a 16th of
    its pixels)."""
    from devolens.predict.postprocess import at_nucleus_scale, in_float32_range

    rgb = in_float32_range(arr[..., :3])
    if rgb.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        rgb = rgb.astype(np.float32)
    return np.asarray(at_nucleus_scale(rgb), dtype=np.float32)


def membrane_plane(image) -> Optional[tuple[np.ndarray, tuple[str, str]]]:
    """A colour ``image`` as the membrane model reads it where its membranes lie in another channel than the
    rule's (:func:`membrane_channel`): that channel's plane and ``(lines, blobs)``; None otherwise. The one reading of
    the membrane predictor's streams (``predict_batch``, ``predict_iter``) and ``segment membrane FOLDER``'s files."""
    found = membrane_channel(image)
    if found is None:
        return None
    return np.ascontiguousarray(np.asarray(image)[..., ("red", "green", "blue").index(found[0])]), found


def membrane_channel_words(lines: str, blobs: str, where: str = "") -> str:
    """The colour note of a membrane input read by its channel of ``lines`` over the rule's channel of ``blobs``
    (:func:`membrane_channel`; ``where``: said after "was read", e.g. " in every frame")."""
    return (f"colour input: the {lines} channel was read{where} (its bright structure is lines, as membranes are), not "
            f"{blobs} (the one with the most bright structure at a nucleus's scale, whose blobs look like nuclei); "
            f"--color {blobs} reads that one")


def _nuclei_rivals(arr: np.ndarray, picked: int, others: list[int]) -> list[int]:
    """Of ``others`` (channels of a colour ``arr`` carrying about as much bright structure as the ``picked`` one, read
    by a nuclei model), those that could hold the nuclei instead: not lines (membranes beside green nuclei: the
    channel's :func:`elongation` at the rule's nucleus scale under :data:`LINES_ELONGATION`) and not a reporter in a
    subset of the read channel's nuclei (present in :data:`COLOUR_SAME_CELLS` of its bright regions or more)."""
    import cv2

    rgb = _at_nucleus_scale(arr)  # the rule's scale (channel_signals')
    plane = []
    for c in range(3):
        x = np.nan_to_num(rgb[..., c])
        low, top = np.percentile(x, (50, 99.5))
        plane.append(np.clip((x - low) / max(float(top - low), 1e-6), 0.0, 1.0))
    read = (plane[picked] > 0.5).astype(np.uint8)
    n, regions = cv2.connectedComponents(read, connectivity=8)
    kept = []
    for k in others:
        lines = elongation(plane[k], level=0.5)
        if lines is not None and lines >= LINES_ELONGATION:
            continue  # lines: membranes, not nuclei
        if n > 3:  # (fewer regions: too few to tell a subset)
            held = np.unique(regions[(plane[k] > 0.5) & (regions > 0)])
            if held.size < COLOUR_SAME_CELLS * (n - 1):
                continue  # a reporter in some of the read channel's nuclei
        kept.append(k)
    return kept


def colour_rivals_in(frames: list, kind: str, channel: Optional[str] = "auto") -> Optional[tuple[str, list[str]]]:
    """:func:`colour_rivals` of a run, judged on its judged ``frames`` (:class:`JudgedFrames`, in the input's order):
    the first one's channel read, and the other channels that carry structure too in more than half of them (a
    movie's frame with an artifact, a red patch as bright as the nuclei, does not decide alone); None otherwise."""
    found = [colour_rivals(frame, kind, channel) for frame in frames]
    if not found or found[0] is None:
        return None
    picked = found[0][0]
    others = [c for c in found[0][1] if 2 * sum(1 for f in found if f is not None and f[0] == picked
                                                and c in f[1]) > len(found)]
    return (picked, others) if others else None


def colour_words(rivals: tuple[str, list[str]], kind: str, pick: str) -> str:
    """The colour note's words on ``rivals`` (:func:`colour_rivals`) of a ``kind`` input; ``pick``: how to pick
    another channel, with ``{}`` for its name (``"--color {}"``, ``'channel="{}"'``)."""
    picked, others = rivals
    carry = f"{' and '.join(others)} {'carries' if len(others) == 1 else 'carry'}"
    if kind == "membrane":
        return (f"colour input: the {picked} channel was read (the one with the most bright structure at a "
                f"nucleus's scale); {carry} structure too: if the membranes are there, run again "
                f"with {pick.format(others[0])}")
    why = ("green is kept, for the histone-GFP embryos the model knows, unless another channel has 1.5x its bright "
           "structure" if picked == "green" else "the one with the most bright structure")
    return (f"colour input: the {picked} channel was read ({why}); {carry} about as much: if the nuclei are there, "
            f"run again with {pick.format(others[0])} (if the {others[0]} channel holds only some of the nuclei, a "
            f"reporter, keep {picked})")


def _centre(image: np.ndarray, side: int = 2048) -> np.ndarray:
    """The central ``side`` x ``side`` pixels of a giant image (the image itself when smaller): enough to judge it."""
    h, w = image.shape[:2]
    y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[y0:y0 + side, x0:x0 + side]


class JudgedFrames:
    """What the colour, the blobs-or-lines and the inverted-input notes judge (``devolens segment``'s and ``population``'s
    notes in :mod:`devolens.cli.predict`, :class:`InputWatch`), gathered as the results come in (:meth:`add`, in the input's
    order): of the first :data:`SHAPE_LOOK` frames, the :data:`SHAPE_FRAMES` in which the model found the most
    objects; the first frames (blank) where it found none in any. Centres of giant frames (:func:`_centre`), copied (a
    giant frame is not kept alive by a view). A movie's dark start of codec-compressed noise (which lacks_structure
    does not call empty: the codec's blocks are structure to it) read as "thin lines" and outvoted its real frames
    when the first 5 frames were judged. ``look`` None: among every frame (what ``segment``'s magnification note judges:
    a movie's frames with the most nuclei, wherever they are)."""

    def __init__(self, look: Optional[int] = SHAPE_LOOK):
        self.look = look  # the first frames looked among (None: every frame, for the magnification check)
        self.first: list[tuple] = []  # (objects, order, image)
        self.blank: list = []
        self.added = 0  # frames added so far

    def add(self, count: int, image: np.ndarray) -> None:
        """The next frame's result: ``count`` objects found in ``image``."""
        self.added += 1
        first, order = self.first, self.added
        if count and (self.look is None or order <= self.look):
            if len(first) < SHAPE_FRAMES:
                first.append((count, order, _centre(image).copy()))
                self.blank.clear()
            else:
                fewest = min(range(len(first)), key=lambda i: first[i][0])
                if count > first[fewest][0]:
                    first[fewest] = (count, order, _centre(image).copy())
        elif not count and not first and len(self.blank) < SHAPE_FRAMES:
            self.blank.append(_centre(image).copy())

    def frames(self) -> list:
        """The frames chosen, in the input's order."""
        return [image for _, _, image in sorted(self.first, key=lambda entry: entry[1])] or list(self.blank)


def _judging_scale(working: float, card: float, most: Optional[float] = SHAPE_MOST_SCALE) -> float:
    """The scale, relative to the input, that the shape note judges a frame at: half the render scale the model
    knows (``working``, the network's scale for this input, over ``card``, its card's), at most ``most``
    (:data:`SHAPE_MOST_SCALE`: an input at a low magnification is not enlarged past it, its lines would widen; None:
    not capped, for nuclei at a magnification estimated on the frames themselves, :func:`_inverted_blobs`)."""
    scale = 0.5 * working / card
    return scale if most is None else min(scale, most)


def _shapes(frames: list, kind: str, net, scale: float, percentiles,
            inverted: Optional[float] = None) -> tuple[list, list, list]:
    """How :func:`judge_input` reads ``frames`` (a ``kind`` input, as ``net`` prepares them, at the judging ``scale``
    with these ``percentiles``): the blob fractions of those whose bright structure it judges
    (:func:`~devolens.predict.postprocess.blob_fraction`: ``seen``); of the others, too bright to judge, a membrane
    input's blob fractions once inverted (``flipped``, at the judging scale ``inverted``; None: ``scale``) and a
    nuclei input's frames whose background lies near their top (``bright``: :data:`LOOKS_INVERTED_BACKGROUND`,
    before the background flattening)."""
    from devolens.predict.postprocess import blob_fraction, prepare_image

    inverted = scale if inverted is None else inverted
    seen, flipped, bright = [], [], []
    for frame in frames:
        work = prepare_image(frame, net.channel, scale, percentiles, net.flatten, net.outliers)
        value = blob_fraction(work)
        if value is not None:
            seen.append(value)
        elif kind == "membrane" and float(np.median(work[::4, ::4])) >= 0.3:
            # a bright background: dark membranes on it (brightfield, DIC, an inverted export) are thin bright
            # lines once inverted
            value = blob_fraction(prepare_image(_inverted(frame, net.channel), "mean", inverted,
                                                percentiles, net.flatten, net.outliers))
            if value is not None:
                flipped.append(value)
        elif kind == "nuclei" and float(np.median(work[::4, ::4])) >= 0.3:
            # not flattened (``work`` itself when the network does not flatten: the same preparation)
            raw = prepare_image(frame, net.channel, scale, percentiles, 0.0, net.outliers) if net.flatten > 0 else work
            if float(np.median(raw[::4, ::4])) >= LOOKS_INVERTED_BACKGROUND:  # most of the frame near its top
                bright.append(frame)
    return seen, flipped, bright



def _inverted(frame: np.ndarray, channel: str) -> np.ndarray:
    """The channel of ``frame`` the network reads once the whole frame is inverted (:func:`_inverted_frame`; a colour
    frame's channel chosen on the inverted frame: an inverted export's dark nuclei are bright again in it)."""
    from devolens.predict.postprocess import _one_channel

    return _one_channel(_inverted_frame(frame), channel)  # uint8, uint16 or float32


def _inverted_frame(frame: np.ndarray) -> np.ndarray:
    """``frame`` (any channels) inverted: an unsigned type's maximum minus it; a float image's highest plus lowest
    finite value minus it (other types as float32)."""
    arr = np.asarray(frame)
    if arr.dtype in (np.uint8, np.uint16):
        return np.iinfo(arr.dtype).max - arr
    arr = arr.astype(np.float32, copy=False)
    finite = arr[np.isfinite(arr)]
    if not finite.size:
        return arr
    return np.float32(float(finite.max()) + float(finite.min())) - arr


def _inverted_blobs(frames: list, predictor, scale: float, percentiles,
                    estimated: Optional[bool] = None) -> Optional[float]:
    """The median blob fraction (:func:`~devolens.predict.postprocess.blob_fraction`) of ``frames`` inverted, at the
    shape note's ``scale``, or where the magnification was estimated (the estimate read the frames as they are, dark
    blobs on a bright background: an inverted render of EPIC framing 2.2x), at the one the size model reads off the
    inverted frames; None when none shows bright structure. ``estimated``: whether it was (None: as the
    ``predictor``'s ``last_estimate`` says; a population model's nuclei predictor does not keep the stream's)."""
    from devolens.predict.postprocess import blob_fraction, prepare_image

    net = predictor.network
    flipped = [_inverted_frame(frame) for frame in frames]
    if (predictor.last_estimate is not None) if estimated is None else estimated:
        est = predictor.estimate_diameter(flipped)  # (not applied: the run's own scale stays)
        if est is not None:
            # not capped: nuclei are filled blobs, not lines that widen when enlarged. Capped, the inverted held-out
            # renders shrunk to 0.25x were judged with nuclei ~4 px wide, and 4 of 7 (1 of 7 at 0.5x) lost the note:
            # blob fractions 0.10-0.16 (0.41), against 0.89-0.98 (0.72) at their own magnification
            scale = _judging_scale(predictor._scale_for(est.diameter), predictor.card_scale, most=None)
    values = [blob_fraction(prepare_image(frame, net.channel, scale, percentiles, net.flatten, net.outliers))
              for frame in flipped]
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None



class InputLook(NamedTuple):
    """What :func:`judge_input` found: ``what`` the input looks like, ``"inverted"`` (dark structure on a bright
    background), ``"nuclei"`` (bright blobs, given to the membrane model) or ``"membranes"`` (thin bright lines, given
    to the nuclei model); ``value``: the median share of bright pixels in blobs it was judged by
    (:func:`~devolens.predict.postprocess.blob_fraction`; an inverted input's once inverted)."""

    what: str
    value: float


def inverted_nuclei(seen: list, bright: list, predictor, scale: float, percentiles,
                    estimated: Optional[bool] = None) -> Optional[float]:
    """Whether a nuclei input looks inverted (dark nuclei on a bright background), from what :func:`_shapes` read:
    more frames too bright to judge whose background lies near their top (``bright``) than frames judged (``seen``),
    and bright blobs in them once inverted (:func:`_inverted_blobs`, ``estimated`` as there). Returns their median
    blob fraction once inverted where it is :data:`LOOKS_LIKE_NUCLEI` or more; None otherwise."""
    if len(bright) <= len(seen):
        return None
    value = _inverted_blobs(bright, predictor, scale, percentiles, estimated)
    return None if value is None or value < LOOKS_LIKE_NUCLEI else value


def shape_verdict(kind: str, seen: list, flipped: list, bright: list, predictor, scale: float, percentiles,
                  estimated: Optional[bool] = None) -> Optional[InputLook]:
    """The verdict on what :func:`_shapes` read (``seen``, ``flipped``, ``bright``, at the judging ``scale`` with
    these ``percentiles``) of a ``kind`` input (``"nuclei"`` or ``"membrane"``): inverted, or the other model's
    kind; None otherwise. ``predictor`` (a segmentation predictor) and ``estimated`` are :func:`inverted_nuclei`'s."""
    if kind == "membrane" and len(flipped) > len(seen) and float(np.median(flipped)) <= LOOKS_INVERTED:
        return InputLook("inverted", float(np.median(flipped)))
    if kind == "nuclei":
        value = inverted_nuclei(seen, bright, predictor, scale, percentiles, estimated)
        if value is not None:
            return InputLook("inverted", value)
    if not seen:
        return None
    value = float(np.median(seen))
    if kind == "membrane" and value >= LOOKS_LIKE_NUCLEI:
        return InputLook("nuclei", value)
    if kind == "nuclei" and value <= LOOKS_LIKE_MEMBRANES:
        return InputLook("membranes", value)
    return None


def judges(predictor) -> bool:
    """Whether :func:`judge_input` judges a segmentation ``predictor``'s input: not where the objects' size was given
    by hand (a ``diameter`` in pixels: it says how big the objects are, not how thick a line is) or judged per image
    (``diameter="each"``), nor for a network without a card's scale."""
    return not (predictor.card_scale <= 0 or predictor.auto_each or (
        predictor.diameter is not None and predictor.last_estimate is None))


def judge_input(frames, kind: str, predictor, *, resize: float = 1.0,
                estimated: Optional[bool] = None) -> Optional[InputLook]:
    """Whether a segmentation input looks inverted or like the other model's kind, judged on a few of its ``frames``
    (a list, or a function returning one: called only where the input is judged; ``devolens segment`` gives the
    :data:`SHAPE_FRAMES` of the first :data:`SHAPE_LOOK` frames in which the model found the most objects,
    :class:`JudgedFrames`) at half the render scale the model knows, at most :data:`SHAPE_MOST_SCALE` of the input's
    pixels (:func:`_judging_scale`). Whether they look like the other kind is judged at the card's scale, whatever a
    ``diameter="auto"`` estimate resized them by (an estimate on the wrong kind of image is off: the membrane model's
    reads nuclei as magnified, and at the scale it shrinks them to their blobs read as lines); a membrane input that
    looks like nuclei there must read as blobs at the working scale too (:data:`LOOKS_LIKE_NUCLEI_WORKING`: a
    magnified membrane image, rightly shrunk, shows wide lines at the card's scale); whether they look inverted, at
    the working scale's share of the card's (``resize`` times it: the estimate counts).

    Parameters
    ----------
    frames : list of ndarray, or callable
        The images judged (``HxW`` or ``HxWx3``), as the predictor was given them.
    kind : {"nuclei", "membrane"}
        The model that reads them.
    predictor : NucleiPredictor or MembranePredictor
        The predictor at the working scale it read them at (a stream's magnification estimate included).
    resize : float
        What the frames were resized by before the predictor read them (the population predictor's resizing to
        its nuclei model's magnification), which the working scale is taken times (for the inverted checks).
    estimated : bool, optional
        Whether the stream's magnification was estimated (``diameter="auto"``): an inverted nuclei input is then
        judged at the magnification the size model reads off the inverted frames
        (:func:`inverted_nuclei`). None: as the ``predictor``'s ``last_estimate`` says.

    Returns
    -------
    InputLook or None
        What the input looks like; None where it looks as the model expects, where nothing was judged, or where the
        predictor is not judged (:func:`judges`).
    """
    if not judges(predictor):
        return None
    frames = frames() if callable(frames) else frames
    if not frames:
        return None
    net = predictor.network
    card = predictor.card_scale
    # the inverted checks: at the scale the model read the frames at (an estimate's resizing included)
    scale = _judging_scale(resize * predictor.working_scale(), card)
    percentiles = net.percentiles or (1.0, 99.8)
    # the kind check: at the card's (the same where nothing was estimated). A diameter="auto" estimate is made on
    # the frames as they are, and the membrane size model misreads nuclei: EPIC renders of 291 and 387 cells were
    # shrunk to 0.58-0.60 of the card's scale, judged at 0.29-0.30 of their pixels, where 40-44 % of their bright
    # pixels lay in blobs (under LOOKS_LIKE_NUCLEI): the misjudged magnification silenced the note that explains it
    # (49-51 % at SHAPE_MOST_SCALE)
    at_card = _judging_scale(card, card)
    seen, flipped, bright = _shapes(frames, kind, net, at_card, percentiles, inverted=scale)
    look = shape_verdict(kind, seen, flipped, bright, predictor, scale, percentiles, estimated)
    if look is not None and look.what == "membranes" and not _lines_in(frames, net, at_card, percentiles):
        # ... but small nuclei, a few pixels wide at the judging scale, are erased by the opening as lines are:
        # compact regions, not lines (cell-culture nuclei of 6-10 px read 0-2 % "blobs")
        return None
    if look is not None and look.what == "nuclei" and scale != at_card and not _blobs_at(frames, net, scale,
                                                                                        percentiles):
        # ... but the estimate may be right: a magnified membrane image, shrunk to the model's magnification, whose
        # lines, wide at the card's scale, read as blobs there (a render enlarged 2x: 97 %) and thin again at the
        # working scale (0-4 %), where the nuclei the estimate shrank still read 32 % and more
        return None
    return look


def _blobs_at(frames: list, net, scale: float, percentiles) -> bool:
    """Whether ``frames`` (a membrane input that looks like nuclei at the card's scale) read as blobs at the judging
    ``scale`` of the working scale too: their median blob fraction at least :data:`LOOKS_LIKE_NUCLEI_WORKING` (False
    where none shows bright structure to judge there)."""
    from devolens.predict.postprocess import blob_fraction, prepare_image

    values = [blob_fraction(prepare_image(frame, net.channel, scale, percentiles, net.flatten, net.outliers))
              for frame in frames]
    values = [v for v in values if v is not None]
    return bool(values) and float(np.median(values)) >= LOOKS_LIKE_NUCLEI_WORKING


def elongation(prepared: np.ndarray, level: float = 0.3, least: int = 10) -> Optional[float]:
    """How line-like the bright structure of a prepared image (0-1 intensities) is, whatever its width: of its
    regions above ``level`` (8-connected, of ``least`` pixels or more), the area over that of the largest disc inside
    it (pixel-weighted median). A round nucleus reads about 1, an elongated or a few touching ones 2-5, a line L long
    and w wide 4L/(pi w), a network of membranes hundreds. None where nothing is that bright."""
    import cv2

    bright = (np.asarray(prepared, dtype=np.float32) > level).astype(np.uint8)
    n, comp, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    if n < 2:
        return None
    inside = np.zeros(n, np.float32)  # each region's largest inscribed radius
    lit = bright.view(bool)
    np.maximum.at(inside, comp[lit], cv2.distanceTransform(bright, cv2.DIST_L2, 5)[lit])
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    keep = area >= least
    keep[0] = False  # (the background)
    if not keep.any():
        return None
    ratio = area[keep] / (np.pi * np.maximum(inside[keep], 0.5) ** 2)
    order = np.argsort(ratio)
    weight = np.cumsum(area[keep][order])
    return float(ratio[order][np.searchsorted(weight, weight[-1] / 2)])


def _lines_in(frames: list, net, scale: float, percentiles) -> bool:
    """Whether the bright structure of ``frames`` (a nuclei input read as thin lines) is lines at the judging
    ``scale``: their median :func:`elongation` :data:`LINES_ELONGATION` or more (True where none can be measured: the
    verdict stands as it was)."""
    from devolens.predict.postprocess import prepare_image

    values = [elongation(prepare_image(frame, net.channel, scale, percentiles, net.flatten, net.outliers))
              for frame in frames]
    values = [v for v in values if v is not None]
    return not values or float(np.median(values)) >= LINES_ELONGATION


def input_message(look: InputLook, kind: str) -> str:
    """The :class:`~devolens.errors.InputWarning`'s words for ``look`` (:func:`judge_input`) of a ``kind`` input
    (``"population"``: frames judged as a nuclei input, whose counts the population model reads from its nuclei
    model's), for a program using the library (``devolens segment``'s and ``population``'s notes say the same in the
    command's words)."""
    if kind == "population" and look.what == "inverted":
        return (f"the frames look inverted: dark blobs on a bright background ({look.value:.0%} of the bright pixels "
                "in blobs once inverted), where the nuclei model the population counts come from reads bright "
                "nuclei on a dark background and finds few or no real nuclei, so the counts are not cell counts. An "
                "inverted export or lookup table: invert the frames first (an 8-bit image: 255 - image) and count "
                "them again; a transmitted-light image (brightfield, DIC), whose dark embryo reads the same: the "
                "population model needs a fluorescence image of the nuclei")
    if kind == "population":
        return (f"the frames look like membranes (thin bright lines, {look.value:.0%} of their bright pixels in "
                "blobs; nuclei are filled blobs): the nuclei model the population counts come from finds fragments "
                "of lines, so the counts are not cell counts. The population model needs an image of the nuclei; "
                "for a two-colour image, channel= picks the nuclei's channel (\"red\", \"green\" or \"blue\")")
    if look.what == "inverted" and kind == "membrane":
        return ("the images look inverted: dark thin lines on a bright background (brightfield, DIC, or an inverted "
                "export), where the membrane model reads bright membranes on a dark background and finds few or no "
                "real cells; invert them first (an 8-bit image: 255 - image) and segment them again")
    if look.what == "inverted":
        return (f"the images look inverted: dark blobs on a bright background ({look.value:.0%} of the bright pixels "
                "in blobs once inverted), where the nuclei model reads bright nuclei on a dark background and finds "
                "few or no real nuclei. An inverted export or lookup table: invert them first (an 8-bit image: "
                "255 - image) and segment them again; a transmitted-light image (brightfield, DIC), whose dark embryo "
                "reads the same: the nuclei model needs a fluorescence image of the nuclei")
    if look.what == "nuclei":
        return (f"the images look like nuclei (bright blobs, {look.value:.0%} of their bright pixels in blobs; "
                "membrane slices show thin bright lines): the membrane model outlines cells around such blobs. For "
                "nuclei, use load(\"nuclei\"); for a two-colour image, channel= picks the membranes' channel "
                "(\"red\", \"green\" or \"blue\"); dark membranes on bright cells (a cytoplasmic marker) need the "
                "image inverted first")
    return (f"the images look like membranes (thin bright lines, {look.value:.0%} of their bright pixels in blobs; "
            "nuclei are filled blobs): the nuclei model finds fragments of lines. For cell outlines, use "
            "load(\"membrane\"); for a two-colour image, channel= picks the nuclei's channel (\"red\", \"green\" "
            "or \"blue\")")


class InputWatch:
    """One ``predict``/``predict_batch``/``predict_iter`` call's look at its input, for the
    :class:`~devolens.errors.InputWarning`: the images are tapped as the stream reads them (:meth:`tap`; of the first
    :data:`SHAPE_LOOK` only, and only until their results come), the results' object counts added as they are
    yielded (:meth:`add`, which keeps the :data:`SHAPE_FRAMES` with the most objects, :class:`JudgedFrames`), and the
    input judged once (:meth:`judge`: :func:`judge_input`) after the :data:`SHAPE_LOOK`-th result or at the stream's
    end (:meth:`finish`), whichever comes first. ``predictor``: the stream's (at its magnification); ``kind``:
    ``"nuclei"`` or ``"membrane"``. :meth:`add` and :meth:`finish` return the warning's words (:func:`input_message`)
    for the stream's public method to issue from its own frame, so that it names the user's line."""

    #: how :func:`input_message` words the warning (the input's kind; population's own words)
    words: Optional[str] = None

    def __init__(self, predictor, kind: str):
        self.predictor = predictor
        self.kind = kind
        self.judged = JudgedFrames()
        self.images: collections.deque = collections.deque()  # tapped, awaiting their results
        self.tapped = 0
        self.done = False

    @classmethod
    def of(cls, predictor, kind: str) -> Optional["InputWatch"]:
        """A watch on ``predictor``'s stream, or None where nothing is judged (:func:`judges`; a predictor whose
        ``judges_input`` is False: the population predictor's view of its nuclei model, judged by
        :class:`PopulationWatch`), or while the ``devolens`` command runs: it judges the frames it reads itself (a
        z-stack's busiest planes among them) and prints its own note."""
        from devolens.errors import command_running

        if command_running() or not getattr(predictor, "judges_input", True):
            return None
        if not judges(predictor) and getattr(predictor.network, "channel", None) != "auto":
            return None  # (judged: the shapes; or the colour channel the auto rule read, whatever the diameter)
        return cls(predictor, kind)

    def tap(self, images: Iterable) -> Iterator:
        """``images`` as they are, the first :data:`SHAPE_LOOK` of them kept until their results come."""
        from devolens.predict.postprocess import Prepared

        for img in images:
            if self.tapped < SHAPE_LOOK and not self.done:
                self.images.append(img.image if isinstance(img, Prepared) else img)
                self.tapped += 1
            yield img

    def add(self, count: int) -> Optional[str]:
        """The next image's result, ``count`` objects found (in the input's order); the input judged after the
        :data:`SHAPE_LOOK`-th: returns the warning's words where it was judged now and looks wrong, else None."""
        if self.done or not self.images:
            return None
        image = np.asarray(self.images.popleft())
        self.judged.add(int(count), image)
        if self.judged.added >= SHAPE_LOOK:
            return self.finish()
        return None

    def finish(self) -> Optional[str]:
        """Judge the input (once): the :class:`~devolens.errors.InputWarning`'s words where it looks inverted or
        like the other model's kind (:func:`input_message`), else None (also when judged already)."""
        if self.done:
            return None
        self.done = True
        self.images.clear()
        frames = self.judged.frames()
        look = self.judge(frames)
        words = [] if look is None else [input_message(look, self.words or self.kind)]
        colour = self.colour(frames)
        return "; also, ".join(words + ([colour] if colour else [])) or None

    def colour(self, frames: list) -> Optional[str]:
        """The colour note's words (:func:`colour_rivals_in`, as ``segment``'s) on the judged ``frames``: which
        channel the auto rule read where another carries structure too; None otherwise."""
        rivals = colour_rivals_in(frames, self.kind, getattr(self.predictor.network, "channel", None))
        return None if rivals is None else colour_words(rivals, self.kind, 'load(..., channel="{}")')

    def judge(self, frames: list) -> Optional[InputLook]:
        """What the judged ``frames`` look like (:func:`judge_input`)."""
        return judge_input(frames, self.kind, self.predictor)


class PopulationWatch(InputWatch):
    """The population predictor's :class:`InputWatch`: its frames as given (before its resizing and its channel
    reduction: an inverted colour frame's dark nuclei are judged on the channel that shows them once inverted),
    judged as ``devolens population`` judges them for its note (:func:`judge_input` of its nuclei model, at the
    working scale times the stream's ``resize``; ``estimated``: the stream's magnification was estimated), and
    worded for its counts (:func:`input_message`'s ``"population"``). ``predictor``: the nuclei model."""

    words = "population"

    def __init__(self, predictor, resize: float = 1.0, estimated: bool = False):
        super().__init__(predictor, "nuclei")
        self.resize = float(resize)
        self.estimated = bool(estimated)

    @classmethod
    def of(cls, population, resize: float = 1.0, estimated: bool = False) -> Optional["PopulationWatch"]:
        """A watch on a ``population`` predictor's stream (frames resized by ``resize``), or None: for a model
        without a nuclei network (a regressor; a stand-in for one), where a ``diameter`` in pixels was given (it
        says how big the nuclei are: as for ``segment``'s), or while the ``devolens`` command runs (it prints its
        own note)."""
        from devolens.errors import command_running
        from devolens.predict.segment import _SegmentationPredictor

        nuclei = getattr(population, "nuclei", None)
        if command_running() or not isinstance(nuclei, _SegmentationPredictor) or (population.scale_known
                                                                                   and not population.auto):
            return None
        return cls(nuclei, resize, estimated) if judges(nuclei) else None

    def judge(self, frames: list) -> Optional[InputLook]:
        return judge_input(frames, "nuclei", self.predictor, resize=self.resize, estimated=self.estimated)

    def colour(self, frames: list) -> Optional[str]:
        return None  # (segment's note: population's command gives none)


#: the saturation note (``devolens segment``'s and ``population``'s, :class:`Saturation`): an image with at least this
#: share of its embryo's pixels (its foreground: above Otsu's threshold, in the channel the network reads) at its
#: type's maximum. Measured on the real reference frames (8-bit): as filmed 0.0-0.2 %; their intensity x1.2 5-8 %,
#: x1.3 12-16 %, x1.5 25-34 %, x1.7 39-46 % (nuclei counts 8 % low on the 125-nuclei frame), x2 52-58 % (the
#: 158-nuclei frame read 151, and its magnification unjudged: the saturated plateaus merge into a few regions)
SATURATED_SHARE = 0.25


#: the bit depths of the cameras whose counts a 16-bit file keeps, besides 16 (most scientific cameras are 12-bit, some
#: 14- or 10-bit): their data saturate at 2**k - 1 (4095 for 12 bits), not at the file type's 65535
CAMERA_BITS = (10, 12, 14)
CAMERA_CEILINGS = tuple(2 ** bits - 1 for bits in CAMERA_BITS)


def saturated_share(image, channel: str = "auto") -> Optional[float]:
    """The share of an image's embryo (its foreground: pixels above Otsu's threshold) at its type's maximum (255 for
    8 bits, 65535 for 16) or, for 16 bits, at a camera's (:data:`CAMERA_CEILINGS`, e.g. 4095 of a 12-bit camera) where
    that is the image's maximum, in the channel the network reads (``channel``, as the predictor's; of a colour image
    read as the mean of its channels, a pixel at the maximum in any; a giant image's centre, :func:`_centre`); 0
    where nothing reaches such a maximum, or where the pixels that do are saturated specks that the preparation leaves
    out of the brightness scale (:func:`~devolens.predict.postprocess.saturated_specks`: dust, hot-pixel clusters of a
    16-bit file); None for an image of another type (floats: no maximum known) or shape, or without foreground.

    Hot pixels (clusters of :data:`~devolens.predict.postprocess.SPECK_CLUSTER` pixels or fewer at the maximum) are
    left out, of the pixels counted and of Otsu's threshold: a camera's hot pixels read its maximum (4095 for 12 bits,
    255 in an 8-bit file), and a few of them draw the threshold of a dim frame above its embryo, whose "foreground" is
    then the hot pixels alone (a 12-bit frame of nuclei 800 counts above the background, 0.1 % of its pixels hot:
    99.7 % saturated; with them left out, 0 %). An image whose brightest pixel merely happens to be 4095 holds a few
    pixels at it, far below :data:`SATURATED_SHARE` of its embryo."""
    return _saturation(image, channel)[0]


def _saturation(image, channel: str = "auto") -> tuple[Optional[float], Optional[int]]:
    """:func:`saturated_share`'s share of ``image``, and the camera's maximum it was judged at (one of
    :data:`CAMERA_CEILINGS`; None: the type's maximum, or no share)."""
    from devolens.predict.postprocess import _one_channel, auto_channel, saturated_specks

    arr = _centre(np.asarray(image))
    if arr.dtype not in (np.uint8, np.uint16) or not (arr.ndim == 2 or arr.ndim == 3 and arr.shape[2] in (1, 3, 4)):
        return None, None
    if min(arr.shape[:2]) < 2:
        return None, None
    top = int(arr.max())  # (most frames: one pass, their maximum none of the tops below)
    if top == np.iinfo(arr.dtype).max:
        camera = None
    elif arr.dtype == np.uint16 and top in CAMERA_CEILINGS:  # (a colour image's channels share the camera's depth)
        camera = top
    else:
        return 0.0, None
    if arr.ndim == 3 and arr.shape[2] > 1:
        pick = auto_channel(arr) if channel == "auto" else channel
        grey = arr[..., :3].max(axis=2) if pick in ("mean", "max") else _one_channel(arr, pick)
    else:
        grey = _one_channel(arr, channel)
    if grey is not arr and grey.max() < top:  # (a colour image's picked channel; one plane is arr itself)
        return 0.0, None
    if camera is None and saturated_specks(grey) is not None:  # (65535 only) out of the brightness scale, own note
        return 0.0, None
    hot = _hot_pixels(grey, top)
    if hot is not None and not np.count_nonzero((grey >= top) & ~hot):  # hot pixels only: no saturated embryo
        return 0.0, None
    from skimage.filters import threshold_otsu

    sample = grey[::2, ::2]  # (every 2nd pixel of every 2nd row: enough to split)
    if hot is not None and not hot[::2, ::2].all():
        sample = sample[~hot[::2, ::2]]
    foreground = grey > threshold_otsu(sample)
    if hot is not None:
        foreground &= ~hot
    n = int(np.count_nonzero(foreground))
    return (None, None) if not n else (int(np.count_nonzero(foreground & (grey >= top))) / n, camera)


def _hot_pixels(grey: np.ndarray, top: int) -> Optional[np.ndarray]:
    """The pixels of ``grey`` at ``top`` (the type's or a camera's maximum) in clusters of
    :data:`~devolens.predict.postprocess.SPECK_CLUSTER` pixels or fewer (8-connected): hot pixels, not the plateaus
    of a saturated embryo (a saturated nucleus's plateau is hundreds of pixels); None where there are none."""
    import cv2

    from devolens.predict.postprocess import SPECK_CLUSTER

    count, labels = cv2.connectedComponents((grey >= top).astype(np.uint8), connectivity=8)
    small = np.bincount(labels.ravel(), minlength=count) <= SPECK_CLUSTER  # (connectedComponentsWithStats: 7x as slow)
    small[0] = False  # (the background)
    return small[labels] if small.any() else None


class Saturation:
    """A run's look at how saturated its frames are (:func:`saturated_share`), for its note (:meth:`note`, once per
    run: ``devolens segment``'s and ``population``'s) and for the words of a magnification left unjudged
    (:meth:`share`: :func:`~devolens.predict.sizing.untrusted_reason`). ``channel``: the one the network reads."""

    def __init__(self, channel: Optional[str] = "auto"):
        self.channel = channel or "auto"
        self.frames = 0  # frames looked at
        self.over: list = []  # (frame, share, camera's maximum or None) of those at SATURATED_SHARE or more

    def add(self, image, frame=None) -> None:
        """The next ``image`` of the run (``frame``: its name in the outputs)."""
        self.frames += 1
        share, camera = _saturation(image, self.channel)
        if share is not None and share >= SATURATED_SHARE:
            self.over.append((frame, share, camera))

    def share(self) -> Optional[float]:
        """The largest share of an embryo's pixels saturated, where one of the frames had :data:`SATURATED_SHARE` or
        more; else None."""
        return max(share for _, share, _ in self.over) if self.over else None

    def _where(self) -> str:
        """The value the saturated frames sit at, in words: the type's maximum ("the maximum value") or a camera's
        (e.g. "4095, a 12-bit camera's maximum"), each where the frames' differ."""
        cameras = sorted({camera for _, _, camera in self.over}, key=lambda c: -1 if c is None else c)
        return " or at ".join("the maximum value" if c is None else f"{c}, a {c.bit_length()}-bit camera's maximum"
                              for c in cameras)

    def note(self) -> Optional[str]:
        """The note's words (None where no frame had :data:`SATURATED_SHARE` of its embryo saturated)."""
        share = self.share()
        if share is None:
            return None
        text = f"{100 * share:.0f} % of the embryo's pixels are saturated (at {self._where()})"
        if self.frames > 1:
            names = [str(f) for f, _, _ in self.over if f is not None]
            named = f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else ""
            text = f"up to {text[0].lower()}{text[1:]} in {len(self.over)} of {self.frames} frames{named}"
        return f"{text}: counts may be off; lower the exposure/gain or give the raw image"


#: a ``diameter`` given in pixels is noted (:func:`diameter_note`) where the size model's estimate of the images would
#: segment them at a diameter this many times larger or smaller. Measured on the real reference frames as filmed,
#: shrunk to 0.5x and enlarged 2x: the diameters that suit them (48 or 53 as filmed, 24 shrunk, 96-107 enlarged) lie
#: 1.00-1.49x from the estimate's (35.6-53.4, 22.9-25.9, 79.8-121.9 px); 48 given to the shrunk frames (25 nuclei
#: found of 134) 1.85-2.1x, to the enlarged 2.5x
DIAMETER_APART = 1.6

#: ... and for cells outlined by membranes (the membrane model), where the size model's estimate of the images puts the
#: cells' own diameter (the card's reference times the magnification read over the middle of the training zooms, ``m0``)
#: this many times larger or smaller: not the diameter ``diameter="auto"`` would segment with, which keeps any image
#: read inside the wide keep band (0.55-1.15x) as it is and so names the reference 60 px for a slice shrunk to 0.5x
#: whose cells are 30 px. Measured on the 35 held-out membrane renders of embryo L3 resized to 0.5x, 1x and 2x, each
#: given the right diameter (60.3 x the zoom), twice it and half of it (one image at a time): the right ones noted 1, 0
#: and 3 times of 35 (at 1.5: 4, 2, 4), half of them 28, 26, 28 times, twice them 22, 24, 23 (at 1.5: 28-30, 25-26).
#: Cell F1 on the noted frames 0.79-0.83 at the diameter given, 0.90-0.93 at the one the note names; those left unnoted
#: are the frames of under 8 cells, which the size model does not judge, and frames whose random pose (0.58-1.16x of the
#: reference framing) put their cells between. The right diameters lie a median 0.93-1.02x from the cells' estimated one
#: (1.17-1.28x from the reference times the magnification, without ``m0``)
CELLS_APART = 1.6


class DiameterCheck(NamedTuple):
    """What :meth:`~devolens.predict.segment._SegmentationPredictor.diameter_check` found: the ``given`` diameter
    (pixels), the one it is far from (``suggested``: the one ``diameter="auto"`` would segment with; with ``by``
    ``"cells"``, the objects' own estimated diameter, the membrane model's rule) and the ``magnification`` the size
    model read."""

    given: float
    suggested: float
    magnification: float
    by: str = "auto"


def diameter_note(check: DiameterCheck, what: str = "nuclei", given: Optional[str] = None,
                  look: str = "Look at the overlays") -> str:
    """The note on a ``check`` (:class:`DiameterCheck`) of a diameter given by hand (``given``: as the user wrote it;
    None: the pixels). The diameter given was used, and may well be right: the size model's reading is a guess that
    can be off for samples unlike the embryos it learned from (cell-culture nuclei of 6-30 px read 0.39-0.52x, where
    their true diameter gave F1 0.97 and auto's missed the smallest), and the run's own objects cannot tell (at a wrong
    diameter the network makes objects of the size it expects): the note names both values and asks for a look at the
    outlines (``look``: how to see them, a sentence's start; ``segment``'s overlays) rather than calling the counts
    untrustworthy."""
    pixels = f"{check.given:g} px"
    given = given or f"{check.given:g}"
    apart = max(check.suggested / check.given, check.given / check.suggested)
    # (the membrane rule names the cells' own estimated diameter: auto keeps images read inside its wide keep band as
    # they are, and so would name the reference diameter for a slice shrunk to 0.5x)
    where = (f"where the {what} would measure about {check.suggested:.0f} px" if check.by == "cells"
             else f"where --diameter auto would use {check.suggested:.0f} px")
    used = pixels if given == f"{check.given:g}" else f"{given} ({pixels})"
    return (f"--diameter {given}: the size model reads the images as {check.magnification:.2g}x as magnified as the "
            f"model's training frames, {where}, {apart:.1f}x apart. The run used {used}, as given: the size model's "
            f"reading can be off for samples unlike the embryos it learned from (cultured cells, tissue), while at a "
            f"wrong diameter the network splits large {what}, or merges small ones, into objects of the size it "
            f"expects. {look}: if the outlines fit the {what}, {pixels} is right; if they cut {what} into pieces or "
            f"join several into one, run again with --diameter {check.suggested:.0f}")


#: ``diameter="auto"`` on nuclei smaller than the size model reads right (:func:`small_spots`): it reads culture
#: wells of 5-10 px nuclei as 0.22-0.46x magnified (as if their nuclei were 8-16 px), so the network, run at a scale
#: meant for nuclei 1.5-3x wider, drew their outlines too large (culture wells: instance F1 at IoU 0.5 down to
#: 0.00, counts right) or merged touching ones (the forty-second session's culture images of 5-6 px: 19-65 % of the
#: nuclei counted). ``diameter="auto"`` and ``"each"`` now segment such images at their spots' size (the estimate's
#: ``spots``), and :func:`small_nuclei_check` notes what that missed after the run. Both speak where the bright spots
#: (:func:`~devolens.predict.sizing.spot_diameter`, the median over the frames judged) are smaller, at the run's working
#: scale, than the smallest nuclei the network knows (the card's ``input.diameter.min_max``, 20.1 px at its training
#: magnification) and the size model did not read the images as embryos: the weight of its embryo head
#: (:attr:`~devolens.predict.sizing.DiameterEstimate.embryo`) under this. Embryos read 0.80-1.00 (every held-out render,
#: the benchmark movie's frames, the real reference frames as filmed and shrunk to 0.33-0.5x; 0.42 and 0.46 for one
#: render each with noise added or shrunk to half), culture wells and dense culture images 0.00-0.04, which the size
#: alone does not tell apart: spots measure 0.64-1.08x an embryo render's nuclei (late frames the least), and one of 66
#: held-out renders, read alone, measured 4 px at the scale its estimate chose (the benchmark movie's frames: 21.6 px
#: at least). Simulated wells of 5-24 px nuclei (48; 512x512, random appearance): segmented at their spots' size in 25,
#: where instance F1 went from 0.69 (0.00-0.99) to 0.96 (0.88-1.00), in none of the 23 others (F1 0.91-1.00 as they
#: were), none whose nuclei measured 13.4 px or more
SMALL_NUCLEI_EMBRYO = 0.5


class SmallNuclei(NamedTuple):
    """What :func:`small_nuclei_check` found (input pixels): the bright spots' typical diameter (``measured``), the
    diameter ``diameter="auto"`` segmented with (``assumed``: the model's reference at the working scale), the smallest
    nuclei the network knows at that scale (``smallest``) and the ``magnification`` the size model read."""

    measured: float
    assumed: float
    smallest: float
    magnification: float


def small_spots(frames: list, predictor, est, working: float) -> Optional[SmallNuclei]:
    """Whether ``frames`` (a few images, as given) show nuclei smaller than the network knows at the working scale
    ``working`` that the nuclei model's diameter estimate ``est`` (a :class:`~devolens.predict.sizing.DiameterEstimate`)
    chose, where the size model did not read them as embryos (:data:`SMALL_NUCLEI_EMBRYO`): the spots' median
    diameter (:func:`~devolens.predict.sizing.spot_diameter`, read up to that smallest size) under it. None otherwise,
    also for an estimate that did not judge the images or a predictor without the sizes its network knows. Shared by
    ``diameter="auto"`` and ``"each"`` (:meth:`~devolens.predict.segment._SegmentationPredictor._applied_estimate`,
    which then segments at the spots' size) and :func:`small_nuclei_check`."""
    from devolens.predict.sizing import spot_diameter

    if est is None or not est.trusted or getattr(est, "embryo", None) is None or est.embryo >= SMALL_NUCLEI_EMBRYO:
        return None
    known, ref, card = predictor.known_sizes, predictor.diameter_ref, predictor.card_scale
    if not (known and ref and card and working and len(frames)):
        return None
    per = card / working  # input pixels per pixel at the network's training magnification
    smallest = float(known[0]) * per
    net = predictor.network
    sizes = [spot_diameter(f, net.channel, net.percentiles, net.outliers, largest=smallest) for f in frames]
    # (None: larger than that, or not measured: counted as not small)
    measured = float(np.median([np.inf if d is None else d for d in sizes]))
    if not measured < smallest:
        return None
    return SmallNuclei(measured, float(ref) * per, smallest, float(est.magnification))


def small_nuclei_check(frames: list, predictor) -> Optional[SmallNuclei]:
    """After a ``diameter="auto"`` run of the nuclei model: whether its ``frames`` (a few of the images segmented:
    ``segment``'s judged frames) show nuclei smaller than the network knows at the working scale the estimate chose,
    in an image the size model did not read as an embryo (:func:`small_spots`); None otherwise (also for ``"each"``,
    a diameter given, an estimate that did not judge the images, a card without the sizes its network knows, or an
    estimate already segmented at the spots' size: its ``spots``, which
    :meth:`~devolens.predict.segment._SegmentationPredictor._applied_estimate` sets where the images it was made
    from show them). Only a note: the results are as they are."""
    est = getattr(predictor, "last_estimate", None)
    if (not getattr(predictor, "auto", False) or getattr(predictor, "auto_each", False) or est is None
            or getattr(est, "spots", None) is not None):
        return None
    return small_spots(frames, predictor, est, predictor.working_scale())


def small_nuclei_note(check: SmallNuclei, what: str = "nuclei", library: bool = False,
                      look: str = "the overlays") -> str:
    """The note on a :class:`SmallNuclei` check (without ``note:``): what was measured, why the counts may be low, and
    the ``--diameter`` to run again with (the spots' diameter, rounded). ``library``: in the words of a program using
    the library (the :class:`~devolens.errors.DiameterWarning` of a ``diameter="auto"`` call, :class:`SizeWatch`):
    its arguments, not the command's options. ``look``: what of the command's outputs shows the outlines (its
    overlays; the label images under ``--no-overlay``)."""
    again = max(1, int(round(check.measured)))
    auto, then = (("diameter='auto'", f"Segment them with diameter={again} and look at the labels") if library else
                  ("--diameter auto", f"Run again with --diameter {again} and look at {look}"))
    return (f"the {what} look smaller than {auto} assumed: bright spots in the images measure about "
            f"{check.measured:.0f} px across, but the automatic estimate ({check.magnification:.2g}x magnified) "
            f"segmented them as {what} of about {check.assumed:.0f} px, and at that scale the network does not "
            f"outline {what} under about {check.smallest:.0f} px reliably. Its size model learned from embryos and can "
            f"misjudge other samples, such as cultured cells with small {what}: outlines come out too large, or "
            f"touching {what} merged into one, so areas may be too large and counts low. {then}")


def small_nuclei_message(check: SmallNuclei, what: str = "nuclei") -> str:
    """:func:`small_nuclei_note`'s words for a program using the library."""
    return small_nuclei_note(check, what, library=True)


def diameter_message(check: DiameterCheck, what: str = "nuclei") -> str:
    """:func:`diameter_note`'s words for a program using the library (the :class:`~devolens.errors.DiameterWarning`
    of a call given a ``diameter`` in pixels, :class:`SizeWatch`): its arguments, not the command's options."""
    pixels = f"{check.given:g} px"
    apart = max(check.suggested / check.given, check.given / check.suggested)
    where = (f"where the {what} would measure about {check.suggested:.0f} px" if check.by == "cells"
             else f"where diameter='auto' would use {check.suggested:.0f} px")
    return (f"diameter={check.given:g}: the size model reads the images as {check.magnification:.2g}x as magnified as "
            f"the model's training frames, {where}, {apart:.1f}x apart. They were segmented at {pixels}, as given: the "
            f"size model's reading can be off for samples unlike the embryos it learned from (cultured cells, tissue), "
            f"while at a wrong diameter the network splits large {what}, or merges small ones, into objects of the "
            f"size it expects. Look at the labels: if the outlines fit the {what}, {pixels} is right; if they cut "
            f"{what} into pieces or join several into one, segment them with diameter={check.suggested:.0f}")


def magnification_message(estimate, trained: Optional[tuple[float, float]], what: str = "nuclei", *,
                          far: Optional[tuple[float, float]] = None, keep: Optional[tuple[float, float]] = None,
                          library: bool = True, images: str = "images", found: Optional[str] = None) -> str:
    """The :class:`~devolens.errors.DiameterWarning` of images segmented as they are (``diameter=None``) that the
    size model reads far outside the magnifications the network was trained on (``estimate``:
    :meth:`~devolens.predict.segment._SegmentationPredictor.magnification_check`'s; ``trained``: the predictor's
    ``trained_zooms``): ``devolens segment nuclei --diameter none``'s note in the library's words, or without
    ``library`` in the command's (``images``: what the input holds; ``found``: what is not to be trusted). An
    estimate inside the ``far`` magnifications (the predictor's ``far_magnifications``) lies under its
    ``low_magnification``, below the ``keep`` band's lower edge of ``diameter="auto"`` by more than the size
    model's error, where the network loses nuclei: the words say so (:func:`low_magnification_words`)."""
    m = estimate.magnification
    flag = "diameter=None" if library else "--diameter none"
    auto = "give diameter='auto'" if library else "run again with --diameter auto (the default)"
    found = found or f"the {what} found"
    if far is not None and keep is not None and far[0] <= m <= far[1]:
        return low_magnification_words(m, keep[0], what, flag, auto, images, found)
    band = f"the {trained[0]:g}-{trained[1]:g}x" if trained else "the magnifications"
    resizer = "diameter='auto'" if library else "--diameter auto"
    return (f"{flag}: the {images} look {m:.2g}x as magnified as the model's training frames (the size model's "
            f"estimate, which {resizer} resizes by), far from {band} the network was trained on: it splits large "
            f"{what}, or merges small ones, into objects of the size it knows, so {found} are not to be trusted, "
            f"though the sizes of what it found look right; {auto}, or give the typical width of the {what} in pixels")


def low_magnification_words(magnification: float, keep_low: float, what: str, flag: str, auto: str, images: str,
                            found: str) -> str:
    """:func:`magnification_message`'s words for images used as they are (``flag``: ``diameter=None`` or
    ``--diameter none``) read at ``magnification``, under the predictor's
    :attr:`~devolens.predict.segment._SegmentationPredictor.low_magnification`: below ``keep_low`` (the lower edge
    of the keep band of ``diameter="auto"``) by more than the size model's error, where the network merges small
    nuclei and counts come out low. ``auto``: what to do (``give diameter='auto'``, or the command's option)."""
    return (f"{flag}: the {images} look {magnification:.2g}x as magnified as the model's training frames (the size "
            f"model's estimate), below the {keep_low:g}x under which automatic sizing resizes them, by more than the "
            f"size model's usual error: used as they are at so low a magnification the network merges small {what} "
            f"and misses some, so {found} are likely too few (renders read 0.51x: 100 {what} as they are, 134 "
            f"resized); {auto}, or give the typical width of the {what} in pixels")


def magnification_messages(predictor, frames: list, what: str = "nuclei", images: str = "images",
                           found: Optional[str] = None) -> list[str]:
    """The :class:`~devolens.errors.DiameterWarning` words (none or one) on ``frames`` (a few of the images read,
    those with the most nuclei) used as they are by ``predictor``, a nuclei model at ``diameter=None``
    (:meth:`~devolens.predict.segment._SegmentationPredictor.magnification_check`, taken only where one reading of
    them could give a note: :func:`_far_possible`): :func:`size_messages`' first, and the population predictor's
    (``images``, ``found``: its words, :func:`magnification_message`'s)."""
    if not frames or getattr(predictor, "far_magnifications", None) is None:
        return []
    est = predictor.magnification_check(frames) if _far_possible(predictor, frames) else None
    if est is None:
        return []
    return [magnification_message(est, predictor.trained_zooms, what, far=predictor.far_magnifications,
                                  keep=predictor.auto_keep, images=images, found=found)]


def kept_off_middle(suggested: float, rng: tuple[float, float], resize: float, estimate, middle: Optional[float],
                    trained: Optional[tuple[float, float]]) -> Optional[tuple[str, float, str]]:
    """Whether a ``diameter="auto"`` estimate fits the objects found (``suggested`` px wide, outside ``rng`` at
    ``resize``; :func:`size_note`): ``("below", magnification the images were brought to, "small")`` (or ``above``,
    ``large``) when at the estimated magnification they would lie within ``rng`` at the ``middle`` magnification (by
    :meth:`~devolens.predict.segment._SegmentationPredictor.size_advice`'s margin, 1.1), None otherwise (no estimate,
    or one that does not fit them)."""
    m = getattr(estimate, "magnification", None)
    if not (m and middle and trained and getattr(estimate, "trusted", 0)) or not np.isfinite(m) or m <= 0:
        return None
    margin = 1.1
    at_middle = suggested * middle / m  # their width at the middle of the training zooms, by the estimate
    if not rng[0] / margin <= at_middle <= rng[1] * margin:
        return None
    small = suggested * resize < rng[0]
    return ("below", m * resize, "small") if small else ("above", m * resize, "large")


def size_note(what: str, suggested: float, rng: tuple[float, float] | None, resized: bool, *,
              resize: Optional[float] = None, by: Optional[str] = None, diameter: Optional[float] = None,
              kind: Optional[str] = None, estimate=None, middle: Optional[float] = None,
              trained: Optional[tuple[float, float]] = None, library: bool = False, verb: str = "segment") -> str:
    """The note on objects found far from the sizes the model knows (``rng``: input pixels at the model's training
    magnification; ``devolens segment``'s, without its ``note:``), or with ``library`` its
    :class:`~devolens.errors.DiameterWarning` in the library's words (:class:`SizeWatch`). ``suggested`` is their
    width in the input's pixels; with the images resized ``resize`` times for the network (``by`` ``"auto"``, the
    magnification estimate, or ``"hand"``, ``--diameter diameter``) the note gives the sizes expected in the input's
    pixels too, so that every number is of one kind.

    After ``--diameter auto`` (``estimate``: the :class:`~devolens.predict.sizing.DiameterEstimate`, ``middle``: its
    size model's ``m0``, ``trained``: the network's training zooms) the estimate is blamed only when it does not fit
    the objects found: at its magnification ``m`` they would be ``suggested * middle / m`` px at the middle of the
    training zooms, where the model knows ``rng``. When that lies in ``rng`` (within
    :meth:`~devolens.predict.segment._SegmentationPredictor.size_advice`'s margin, 1.1; :func:`kept_off_middle`),
    the estimate was right and the keep band (:func:`devolens.predict.sizing._target`) left the images off the
    middle, where objects at the end of their size range are read too small or too large: the note says so (a
    2x2-binned membrane slice estimated 0.54x, resized 1.03x, its 25 px cells read as 26.7 px: F1 0.90, 1.00 with
    the --diameter 26.7 it gives). ``verb``: what the library's call does with the images, for its advice
    (``"count"``: the population predictor's, "count them with diameter=...")."""
    # the command's options, or the library's arguments
    flag = (lambda value: f"diameter={value}") if library else (lambda value: f"--diameter {value}")  # noqa: E731
    rerun = f"{verb} them with" if library else "run again with"
    again = (f"Results at the wrong size are unreliable; if {suggested:g} px is their real size, {rerun} "
             f"{flag(f'{suggested:g}')}.")
    kept = (kept_off_middle(suggested, rng, resize, estimate, middle, trained)
            if rng and resize and (by == "auto" or by is None and estimate is not None) else None)
    if kept is not None:  # the estimate (which resized the images, or kept them as they are) fits the objects found
        lo, hi = rng[0] / resize, rng[1] / resize
        how = (f"left the images as they are ({kept[1]:.2g}x)" if abs(resize - 1.0) <= 1e-6 else
               f"resized the images only {resize:.3g}x for the network, to {kept[1]:.2g}x")
        return (f"the {what} found are about {suggested:g} px wide, {kept[0]} the {lo:.3g}-{hi:.3g} "
                f"px (in this input's pixels) that this model knows. The automatic magnification estimate "
                f"({estimate.magnification:.2g}x) fits {what} of that width, but it {how}, {kept[0]} the middle "
                f"({middle:.2g}x) of the {trained[0]:g}-{trained[1]:g}x magnifications the network was trained on "
                f"(images are kept near the magnification they come at), where {what} this {kept[2]} are read less "
                f"reliably. {rerun[0].upper()}{rerun[1:]} {flag(f'{suggested:g}')} to bring them to the middle of the "
                "sizes this model knows.")
    if rng and by in ("auto", "hand") and resize and abs(resize - 1.0) > 1e-6:
        lo, hi = rng[0] / resize, rng[1] / resize  # what the model knows, in the input's pixels at this resize
        resized_by = (f"resized {resize:.2g}x for the network to bring {what} to the {rng[0]:g}-{rng[1]:g} px "
                      "this model knows")
        if by == "auto":
            fitted = (" (an image filled with cells, such as a culture or a mosaic? the membrane size model was fitted "
                      "on single embryo slices)" if kind == "membrane" else
                      " (a field filled with nuclei edge to edge, or several embryos? the size model reads a crowded "
                      "field as a magnified one)" if kind == "nuclei" else "")
            return (f"the {what} found are about {suggested:g} px wide, far from the {lo:.3g}-"
                    f"{hi:.3g} px that the automatic magnification estimate expected in this input (the images were "
                    f"{resized_by}): the estimate probably misjudged the magnification{fitted}. {again}")
        return (f"the {what} found are about {suggested:g} px wide, far from the {lo:.3g}-{hi:.3g} px "
                f"expected in this input at {flag(f'{diameter:g}')} (the images were {resized_by}): is {diameter:g} px "
                f"their typical width? {again}")
    known = f" ({rng[0]:g}-{rng[1]:g} px)" if rng else ""
    return (f"the {what} found are about {suggested:g} px wide, far from the sizes this model "
            f"knows{known}{' after resizing to the diameter' if resized else ''}: another magnification? {again}")


#: one reading of an image by the size model (one of the eight views that ``diameter="auto"`` reads where one or two
#: images decide) lies within this factor of the median of its eight: :func:`size_messages` takes the size model's
#: full look at a single image only where one reading that far either way could give a note. Measured on 34 images
#: (the 3 real reference frames, 23 held-out renders of embryo L3, 8 simulated culture wells): 1.00-1.14, one dense
#: well of touching nuclei 1.41 (its eight read 0.39-0.59x: a note either way only under 0.40x, where the eight agree
#: more)
ONE_READING_SPREAD = 1.25


def _one_reading(predictor, frames: list) -> Optional[float]:
    """The size model's magnification of ``frames`` read once each in the view they come in (the median), where the
    checks' estimate would read each in its eight views (:func:`devolens.predict.sizing.estimate_diameter`: at most
    ``FEW_JUDGED`` images); None where it would not (more images), or where a frame is too narrow to read."""
    from devolens.predict import sizing
    from devolens.predict.postprocess import prepare_image

    if not frames or len(frames) > sizing.FEW_JUDGED:
        return None
    readings = []
    reader = getattr(predictor, "size_backdrop", None)
    for image in frames:  # (estimate_diameter's reading of an image, in one view)
        image = sizing._inside(image)
        arr = sizing._prepared_inside(predictor, image)
        if min(arr.shape) < sizing.MIN_SIDE:
            return None
        flat, weight = None, 0.0
        if reader is not None:
            channel, scale, percentiles, _, outliers = sizing.size_key(predictor)
            flat = prepare_image(np.asarray(image), channel, scale, percentiles, reader.flatten, outliers)
            weight = reader.weight(arr, flat)
            flat = flat if weight > 0 else None
        readings.append(sizing._read(predictor, arr, flat, weight))
    return float(np.median(readings))


def _far_possible(predictor, frames: list) -> bool:
    """Whether :meth:`~devolens.predict.segment._SegmentationPredictor.magnification_check` could find ``frames``
    beyond the far magnifications (or under the low one, where nuclei are lost): always where it reads them as they
    come (several images), else where one reading of them (:func:`_one_reading`) lies within
    :data:`ONE_READING_SPREAD` of the band's edges (its full look reads
    a single image eight times: six times a 512 x 752 frame's segmentation)."""
    far, m = predictor.far_magnifications, _one_reading(predictor, frames)
    low = getattr(predictor, "low_magnification", None) or (far[0] if far else None)  # (where nuclei are lost)
    return m is None or far is None or not low * ONE_READING_SPREAD <= m <= far[1] / ONE_READING_SPREAD


def _apart_possible(predictor, frames: list) -> bool:
    """Whether :meth:`~devolens.predict.segment._SegmentationPredictor.diameter_check` could find the diameter given
    far from the size model's reading of ``frames``: as :func:`_far_possible`, the diameter it would name at a
    magnification :data:`ONE_READING_SPREAD` times above and below one reading (the diameter grows with the
    magnification: its ends bound it)."""
    from devolens.predict.sizing import _target

    m = _one_reading(predictor, frames)
    if m is None or not predictor.diameter_ref or predictor.size_model is None:
        return True
    ref, m0, given = float(predictor.diameter_ref), float(predictor.size_model.m0), float(predictor.diameter)

    def named(mag: float) -> float:  # (diameter_check's: the cells' own, or the one auto would use)
        if predictor.diameter_checked_by == "cells":
            return ref * mag / m0
        target = _target(mag, predictor.auto_keep, m0)
        return ref if target == mag else ref * mag / target

    apart = CELLS_APART if predictor.diameter_checked_by == "cells" else DIAMETER_APART
    return not (named(m / ONE_READING_SPREAD) >= given / apart and named(m * ONE_READING_SPREAD) <= given * apart)


def size_messages(predictor, kind: str, areas: list, frames: list) -> list[str]:
    """The :class:`~devolens.errors.DiameterWarning` words of a segmentation call (:class:`SizeWatch`): the advice
    ``devolens segment`` prints as its size notes, in its order, in the library's words, from the same checks of the
    ``predictor`` (the call's, at the magnification it segmented at): images used as they are at a magnification far
    from the training one (:meth:`~devolens.predict.segment._SegmentationPredictor.magnification_check`, the nuclei
    model's), a ``diameter`` given in pixels far from the size model's reading (``diameter_check``), nuclei smaller
    than ``diameter="auto"`` assumed (:func:`small_nuclei_check`), and objects found far from the sizes the model
    knows (``size_advice`` of the results' median object ``areas``, input pixels; not where the small nuclei are
    said). ``kind``: ``"nuclei"`` or ``"membrane"``; ``frames``: a few of the images segmented (those with the most
    objects, :class:`JudgedFrames`). The size model's checks of one or two images are taken only where one reading
    of them could give a note (:func:`_far_possible`, :func:`_apart_possible`)."""
    what = "cells" if kind == "membrane" else "nuclei"
    texts = []
    if not predictor.auto and frames:  # (auto: its own estimate judged the images)
        if predictor.diameter is None and kind == "nuclei":
            texts += magnification_messages(predictor, frames, what)
        if predictor.diameter is not None and predictor.size_model is not None and predictor.last_estimate is None:
            check = predictor.diameter_check(frames) if _apart_possible(predictor, frames) else None
            if check is not None:
                texts.append(diameter_message(check, what))
    small = small_nuclei_check(frames, predictor) if kind == "nuclei" else None
    if small is not None:
        texts.append(small_nuclei_message(small, what))
    suggested = predictor.size_advice(areas)
    if suggested and small is None:  # (the small nuclei's words name a better diameter)
        scale, card = predictor.working_scale(), predictor.card_scale
        by = None if predictor.diameter is None else "auto" if predictor.last_estimate is not None else "hand"
        texts.append(size_note(what, suggested, predictor.known_sizes, predictor.diameter is not None,
                               resize=scale / card if card else None, by=by, diameter=predictor.diameter, kind=kind,
                               estimate=predictor.last_estimate, middle=getattr(predictor.size_model, "m0", None),
                               trained=predictor.trained_zooms, library=True))
    return texts


def _ignored(category: type) -> bool:
    """Whether the warnings filters ignore every ``category`` warning, whatever its words and wherever it is issued
    (``warnings.simplefilter("ignore", category)``, or such a filter of all warnings): the checks behind it need not
    run. False where the first filter that takes the category depends on the words, the module or the line (it may
    let the warning through)."""
    import warnings

    for action, message, cat, module, lineno in warnings.filters:
        if not issubclass(category, cat):
            continue
        specific = any(f is not None and getattr(f, "pattern", f) not in ("", None) for f in (message, module))
        return action == "ignore" and not specific and not lineno
    return False


#: a predictor's calls at one setting (diameter in pixels or None) whose size look found nothing to say, after which
#: that setting's calls are no longer judged: the look costs about what the segmentation does (the size model's
#: reading), which a program calling ``predict`` once per frame paid on every frame
SIZE_CLEAN_CALLS = 3


class SizeWatch(InputWatch):
    """One ``predict``/``predict_batch``/``predict_iter`` call's look at the sizes of what the segmentation model
    found, for the :class:`~devolens.errors.DiameterWarning`: ``devolens segment``'s size notes in the library's words
    (:func:`size_messages`), judged once per call as :class:`InputWatch` judges the input: the images tapped as the
    stream reads them (:meth:`tap`, the first :data:`SHAPE_LOOK`), each result's median object area and object count
    added as it is yielded (:meth:`add`), and the sizes judged after the :data:`SHAPE_LOOK`-th result or at the
    stream's end (:meth:`finish`), on those results' areas and the :data:`SHAPE_FRAMES` of their images with the most
    objects (``segment`` judges every frame's areas, and its movie's busiest frames wherever they are).
    ``predictor``: the stream's (at its magnification); ``kind``: ``"nuclei"`` or ``"membrane"``. :meth:`add` and
    :meth:`finish` return the warnings' words for the stream's public method to issue (naming the user's line)."""

    def __init__(self, predictor, kind: str):
        super().__init__(predictor, kind)
        self.areas: list[float] = []  # each result's median object area (input pixels), as segment keeps them

    @classmethod
    def of(cls, predictor, kind: str) -> Optional["SizeWatch"]:
        """A watch on ``predictor``'s stream, or None where nothing is judged: while the ``devolens`` command runs
        (it makes the same checks for its notes), in the population predictor's view of its nuclei model
        (``judges_input`` False: it reads frames it resized itself), with ``diameter="each"`` (``segment`` has no
        size note for it either), or where the warnings filters ignore every DiameterWarning (:func:`_ignored`: the
        checks' cost is then saved)."""
        from devolens.errors import DiameterWarning, command_running

        if (command_running() or not getattr(predictor, "judges_input", True) or getattr(predictor, "auto_each", False)
                or _ignored(DiameterWarning)):
            return None
        return cls(predictor, kind)

    def add(self, result) -> list[str]:  # type: ignore[override]
        """The next image's ``result`` (in the input's order); the sizes judged after the :data:`SHAPE_LOOK`-th:
        returns the warnings' words where they were judged now (none where all is well)."""
        if self.done or not self.images:
            return []
        image = np.asarray(self.images.popleft())
        areas = result.objects["area"]
        if len(areas):  # (segment's: a frame's median object area, where it found any)
            self.areas.append(float(np.median(areas)))
        self.judged.add(int(result.count), image)
        return self.finish() if self.judged.added >= SHAPE_LOOK else []

    def finish(self) -> list[str]:  # type: ignore[override]
        """The warnings' words, judged now (none where judged already)."""
        if self.done:
            return []
        self.done = True
        self.images.clear()
        return size_messages(self.predictor, self.kind, self.areas, self.judged.frames())
