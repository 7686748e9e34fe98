"""Pre- and post-processing shared by the image predictors.

Plain numpy functions: channel selection, robust percentile normalisation, resizing,
instance labels from probability maps (watershed that splits touching nuclei), centroids,
and the monotone (non-decreasing) smoothing of population curves.

All coordinates are in pixels of the array given; ``x`` is the column, ``y`` the row.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Literal, Sequence

import numpy as np

from devolens.errors import DevolensError

if TYPE_CHECKING:  # pandas is imported where a table is made (not by streaming commands' start-up)
    import pandas as pd

Channel = Literal["auto", "green", "mean", "max", "red", "blue"]
#: the ways of reducing a colour image to one channel (see :func:`to_single_channel`)
CHANNELS = ("auto", "green", "red", "blue", "mean", "max")


#: the magnitudes (the largest finite absolute value of a float image) within which float input is used as it is
#: (:func:`in_float32_range`); beyond them it is brought within by a power of two first. float32 holds 1.2e-38 to
#: 3.4e38, but its arithmetic does not: the area averaging of a resize sums pixels (a 2x shrink of an image whose
#: brightest pixels are 2e38 overflows to inf), and values near 1e-38 lose their precision (the normalised image
#: drifts from 1e-40 down). A 48x48 image of two nuclei keeps its prepared image (to 1e-5) and labels for any
#: magnitude from 1e-39 to 1e37 once cast: these limits leave 7-8 orders of magnitude on either side
FLOAT_SAFE = (1e-30, 1e30)


def in_float32_range(arr: np.ndarray) -> np.ndarray:
    """``arr`` as it is, but a float array whose largest finite magnitude lies outside :data:`FLOAT_SAFE` (values a
    float32 cast or float32 arithmetic overflows or underflows: a float64 image times 1e300, a float32 one near its
    largest value) divided by a power of two in float64 first, its largest magnitude then in [0.5, 1).

    The percentile normalisation is free of the image's scale, so this leaves a segmentation as it is at the usual
    scale; a power of two changes no digit of a float32 value (a float32 image near its top is prepared exactly as
    the same image at any ordinary scale). Ordinary float images (0..1, 0..65535 counts, any magnitude within
    :data:`FLOAT_SAFE`), integer images and images without a finite nonzero value come back as they are (no copy).
    One or two passes over a float image (its maximum and minimum)."""
    shift = float32_shift(arr)
    return arr if not shift else np.ldexp(arr.astype(np.float64), -shift)  # (exact: a power of two)


def float32_shift(arr: np.ndarray) -> int:
    """The power of two :func:`in_float32_range` divides ``arr`` by: 0 for an array it leaves as it is (not float,
    its largest finite magnitude within :data:`FLOAT_SAFE`, or no finite nonzero value). One or two passes over a
    float array, no copy of it unless it holds NaN or inf pixels."""
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f" or not arr.size:
        return 0
    with np.errstate(invalid="ignore", over="ignore"):
        top = max(abs(float(arr.max())), abs(float(arr.min())))
        if not np.isfinite(top):  # NaN or inf pixels (padding): the finite ones' magnitude
            finite = arr[np.isfinite(arr)]
            top = float(np.abs(finite).max()) if finite.size else 0.0
    if top == 0.0 or FLOAT_SAFE[0] <= top <= FLOAT_SAFE[1]:
        return 0
    return int(np.frexp(top)[1])


def check_channel(channel: str, option: str = "channel") -> None:
    """Raise a :class:`DevolensError` unless ``channel`` is one of :data:`CHANNELS` (``option`` names the setting)."""
    if channel not in CHANNELS:
        raise DevolensError(f"{option} must be one of {', '.join(CHANNELS)}, got {channel!r}")


# --------------------------------------------------------------------------- input
def _warn_exif_turned(path, tag: int) -> None:
    """An :class:`~devolens.errors.InputWarning` that the image file ``path`` was read turned (or mirrored) as its
    EXIF orientation tag ``tag`` says, as ``devolens segment`` notes it: a plugin laying the labels over the file as
    napari or imageio read it (unturned) would misplace them."""
    import os
    import sys
    import warnings

    from devolens.errors import InputWarning
    from devolens.io.images import exif_turned_words

    words = exif_turned_words([(os.fspath(path), tag)], follow="the labels and the objects' x and y")
    # named at the caller's line, the first outside devolens (a stream's generators lie between it and here)
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("devolens."):
        level, frame = level + 1, frame.f_back
    warnings.warn(words, InputWarning, stacklevel=level)


def tensor_array(image):
    """A PyTorch tensor as a NumPy array (detached, on the CPU; bfloat16, which NumPy lacks, as float32); anything
    else as it is. PyTorch is not imported for it: a tensor's is loaded already."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = (image.float() if image.dtype == torch.bfloat16 else image).numpy()  # (NumPy has no bfloat16)
    return image


def image_array(image):
    """An image argument of the predictors as they take it.

    A path (``str`` or ``Path``) is read (:func:`devolens.io.images.read_image`); a PyTorch tensor becomes a NumPy
    array (on the CPU; PyTorch is not imported for it); a one-plane ``1xHxW`` array loses its first axis and a
    channels-first ``3xHxW`` / ``4xHxW`` array (PyTorch's layout) becomes ``HxWx3`` / ``HxWx4``. Anything else
    (arrays, lists, :class:`Prepared` items) comes back as it is, to be checked where it is used. The path of a
    TIFF stack (several planes: its pages are no colour channels) is refused with a hint.

    A ``(T, H, W)`` array of frames given as one image is refused, pointing to ``predict_iter`` / ``predict_batch``
    (``predict`` read a stack of 4 as RGBA and segmented one of its frames): any number of planes but 1 and 3 (when the
    last axis is not the smallest: an ``HxWxC`` image of more channels is left to the check where it is used), and 4
    planes whose 4th is not alpha-like (one level throughout, two: a transparency mask, or mostly at its top:
    anti-aliased edges; :func:`_alpha_like`). A ``3xHxW`` array is always read as one colour image: three grey frames
    cannot be told from an RGB image whose channels carry different stains, so a stack of 3 frames is segmented as
    colour (its ``auto`` channel); give frames to ``predict_iter``.
    """
    import os

    image = tensor_array(image)
    read = isinstance(image, (str, os.PathLike))  # a file's planes are laid out by its reader (and checked there)
    if read:
        from devolens.io.images import ExifTurns, read_image

        path = image
        with ExifTurns() as turns:
            image = read_image(path)
        if turns.get(path) is not None:  # (a photo turned as a viewer shows it: napari and imageio read it unturned)
            _warn_exif_turned(path, turns.get(path))
        if image.ndim >= 2:  # too small: refused naming the file (the stream can only give the shape)
            from devolens.io.images import check_image_size

            check_image_size(image.shape[0], image.shape[1], os.fspath(path))
        several = image.ndim > 3 or (image.ndim == 3 and image.shape[2] > 4)  # not HxW, nor HxWx3/4
        if several:
            from devolens.io.stacks import is_tiff, stack_info

            info = stack_info(path) if is_tiff(path) else None
            if info is not None and info.is_stack:  # its planes are no colour channels (a 3-plane z-stack is no RGB)
                raise DevolensError(
                    f"this TIFF is a stack of several planes (axes {info.axes}, shape {info.shape}); predict takes "
                    "one image: stream its frames with predict_iter(devolens.io.frames.iter_path_frames(path)[0]), "
                    "or run the command line on it", path=os.fspath(path))
    if isinstance(image, np.ndarray) and image.dtype.kind in "cOUSV":  # complex, objects, text: not intensities
        raise DevolensError(f"expected an image of intensities (numbers), got an array of dtype {image.dtype}")
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] > 4 and not read:
        _refuse_frames(image)
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[2] > 4:
        return image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
    return image


def _refuse_frames(arr: np.ndarray) -> None:
    """Refuse a ``(T, H, W)`` array of frames given as one image (:func:`image_array`): T planes, T not 1 or 3, nor
    4 with an alpha-like 4th plane (:func:`_alpha_like`); arrays whose last axis is the smallest (``HxWxC``) pass.
    Worded for wherever the image was given (``predict``, or one item of ``predict_iter``'s stream)."""
    n, h, w = arr.shape
    if n in (1, 3) or (w < n and w < h):
        return
    if n == 4 and _alpha_like(arr[3]):  # an RGBA image's alpha plane, channels-first
        return
    what = {2: "a stack of 2 frames, or a two-channel image?",
            4: "a stack of 4 frames, or an RGBA image whose 4th plane is no alpha?"}.get(n, f"a stack of {n} frames?")
    hint = {2: "; for one channel of a two-channel image give image[k] (k: 0 or 1)",
            4: "; an RGBA image channels-last: np.moveaxis(image, 0, -1)"}.get(n, "")
    raise DevolensError(f"expected one image, got an array of shape {arr.shape}: {what} One image is HxW, HxWx3 or "
                        f"channels-first 3xHxW; for a stack of frames give the frames one by one: "
                        f"predict_iter(frames) or predict_batch(frames), one result per frame{hint}")


def wrong_channels(shape: tuple[int, ...]) -> str:
    """The words refusing an array of ``shape`` as one image: not ``HxW``, nor ``HxWx3`` / ``HxWx4`` (nor ``HxWx1``).
    An ``HxWxC`` array (its last axis the smallest) is asked about as a ``CxHxW`` one is (:func:`_refuse_frames`): a
    two-channel image, or frames along its last axis, with what to give instead."""
    head = f"expected an HxW or HxWx3 image, got an array of shape {tuple(shape)}"
    if len(shape) != 3 or shape[2] > min(shape[:2]):
        return head
    n = shape[2]
    what, ks = ("a two-channel image", "0 or 1") if n == 2 else (f"an image of {n} channels", f"0 to {n - 1}")
    return (f"{head}: {what}, or a stack of {n} frames along its last axis? One image is HxW, HxWx3 (RGB), HxWx4 "
            f"(RGBA) or channels-first 3xHxW; for one of its channels give image[..., k] (k: {ks}); for frames along "
            "the last axis give them one by one: predict_iter(np.moveaxis(image, -1, 0)), one result per frame")


def _alpha_like(plane: np.ndarray) -> bool:
    """Whether the 4th plane of a channels-first ``4xHxW`` array is an alpha plane: one level throughout, two (a
    transparency mask), or more than half of its pixels at its highest value (a cut-out whose edges are
    anti-aliased: the 4th plane of ``torchvision.io.read_image(..., ImageReadMode.UNCHANGED)`` of an RGBA PNG); a
    4th frame of a stack has its brightest level in a few pixels."""
    lo, hi = plane.min(), plane.max()
    at_top = plane == hi
    return bool(lo == hi or (at_top | (plane == lo)).all()) or 2 * int(np.count_nonzero(at_top)) > plane.size


def check_stream(images, method: str = "predict_iter", progress=None) -> None:
    """Refuse what a predictor's ``predict_iter`` / ``predict_batch`` (``method``) cannot take as an iterable of
    images: a single path (a string would be iterated character by character) or a single frame, an HxW array or
    an HxWx3/4 colour array (iterated row by row: one "image" per row); and a ``progress`` that is not callable
    (refused before any work rather than after the first image)."""
    import os

    if isinstance(images, (str, bytes, os.PathLike)):
        raise DevolensError(f"{method} takes an iterable of images (arrays or paths); for one file use "
                            "predict(path), for a video, a folder or a stack devolens.io.frames.iter_path_frames(path)[0]",
                            path=os.fsdecode(images) if not isinstance(images, bytes) else None)
    shape = getattr(images, "shape", None)
    numeric = getattr(getattr(images, "dtype", None), "kind", "f") in "biuf"  # not a Series or array of paths/frames
    if shape is not None and numeric and (len(shape) < 3 or (len(shape) == 3 and shape[-1] in (3, 4))):
        raise DevolensError(f"{method} takes an iterable of images, got one array of shape {tuple(shape)} (one "
                            "image: use predict(image); a (T, H, W) or (T, H, W, 3) array is a stack of T frames)")
    if progress is not None and not callable(progress):
        raise DevolensError(f"progress must be a callable progress(done, total), got {progress!r}")


def to_single_channel(image: np.ndarray, channel: Channel = "auto") -> np.ndarray:
    """Reduce an image to one float32 channel.

    Parameters
    ----------
    image : ndarray
        ``HxW`` (grey), ``HxWx1``, ``HxWx3`` (RGB) or ``HxWx4`` (RGBA, alpha ignored).
    channel : {"auto", "green", "mean", "max", "red", "blue"}
        Which channel of a colour image to keep. ``"auto"`` takes the channel that carries
        most of the signal when one does (histone-GFP movies: green nuclei and a weak red
        reporter; H2B-mCherry: red; DAPI/Hoechst: blue) and the mean of R, G, B otherwise
        (grey images stored as RGB); ``"max"`` is the per-pixel maximum of R, G, B.
        The signal of a channel is its bright structure, not its mean: the 99.5th percentile
        minus the median of the image shrunk 4x (pixel noise and 1-2 px lines averaged out).
        A movie of a few green nuclei on a reddish background has the higher mean in red, and
        the nuclei in green. Green is kept unless another channel has 1.5x its signal.

    Returns
    -------
    ndarray
        ``HxW`` float32, same intensity units as the input.

    Raises
    ------
    DevolensError
        If the array is not an image of one of the shapes above.
    """
    return np.asarray(_one_channel(image, channel, rescale=True), dtype=np.float32)


def _one_channel(image: np.ndarray, channel: Channel = "auto", rescale: bool = False) -> np.ndarray:
    """:func:`to_single_channel` without the final conversion: a single channel picked out of a
    uint8/uint16 image keeps its dtype (contiguous), anything else is float32. ``rescale``: float input beyond
    float32's safe range brought within it first (:func:`in_float32_range`), for what reads the channel free of its
    scale (a normalisation to its own percentiles, scores in units of its noise); not for a part of an image that
    must keep the units of the whole (:mod:`devolens.predict.blocks`' crops and limits)."""
    arr = np.asarray(image)
    if rescale:
        arr = in_float32_range(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        if min(arr.shape) < 1:
            raise DevolensError(f"empty image of shape {arr.shape}")
        return arr if arr.dtype in (np.uint8, np.uint16) else arr.astype(np.float32, copy=False)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise DevolensError(wrong_channels(arr.shape))
    if channel == "auto":
        channel = auto_channel(arr)
    index = {"red": 0, "green": 1, "blue": 2}
    if channel == "mean":
        return arr[..., :3].astype(np.float32, copy=False).mean(axis=2)
    if channel == "max":
        return arr[..., :3].astype(np.float32, copy=False).max(axis=2)
    if channel not in index:
        check_channel(channel)
    return _plane(arr, index[channel])


def auto_channel(arr: np.ndarray) -> str:
    """What the ``auto`` rule reads of an ``HxWx3(+)`` colour image: the channel with the most bright structure
    (``red``, ``green``, ``blue``; :func:`to_single_channel`), ``mean`` when none stands out, ``green`` for grey
    stored as RGB (every channel is the mean)."""
    # decide on a subsample (same answer, a fraction of the time on large frames)
    step = max(1, int(np.sqrt(arr.shape[0] * arr.shape[1] / 50_000)))
    sample = arr[::step, ::step, :3]
    if np.array_equal(sample[..., 0], sample[..., 1]) and np.array_equal(sample[..., 1], sample[..., 2]):
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]):
            return "green"
    k = _signal_channel(arr)
    return "mean" if k is None else ("red", "green", "blue")[k]


#: a colour stream's first frames that choose the one channel read in all of its frames (:func:`stream_channel`:
#: the population stream's, ``segment nuclei``'s and ``population``'s of a movie)
STREAM_LOOK = 5


def colour_frame(arr: np.ndarray) -> bool:
    """Whether ``arr`` is a colour frame with a channel to choose (HxWx3 or HxWx4, not grey stored as colour)."""
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        return False
    step = max(1, int(np.sqrt(arr.shape[0] * arr.shape[1] / 50_000)))
    for a in (arr[::step, ::step], arr):  # (a subsample first: most colour frames differ there)
        if not (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2])):
            return True
    return False


def stream_channel(frames: Iterable) -> str | None:
    """The colour channel a timelapse is read through under the auto rule, judged on its first frames ``frames``
    (:data:`STREAM_LOOK` of them): the channel :func:`auto_channel` reads in most of its colour frames (a tie: the
    earliest frame's); None where none is in colour (grey stored as colour included)."""
    picks = [auto_channel(a) for a in (np.asarray(img) for img in frames) if colour_frame(a)]
    return max(picks, key=lambda c: (picks.count(c), -picks.index(c))) if picks else None


def movie_channel(frames: Iterable, look: int = STREAM_LOOK) -> str | None:
    """The one rule a movie's (a timelapse's) colour channel is chosen by under the auto rule, alike for the library's
    population stream (:func:`devolens.predict.population._one_channel_stream`: ``population``'s) and ``segment
    nuclei`` of a video or a TIFF stack (``_movie_colour``): the channel :func:`stream_channel` picks on the movie's
    first ``look`` frames ``frames`` (the first of them taken), read in every frame; None where those frames decide
    nothing (none in colour: grey, or grey stored as colour), and then every frame is judged on its own
    (:func:`auto_channel`), a later colour frame pinning nothing: ``segment nuclei`` chooses before its read-ahead
    starts, on the frames it peeked, and could not follow a later frame without reading ahead of it."""
    return stream_channel(itertools.islice(iter(frames), look))


def colour_channel(image: np.ndarray, channel: Channel = "auto") -> str | None:
    """The channel of a colour (``HxWx3``, ``HxWx4``) ``image`` that ``channel`` reads (``auto`` resolved by
    :func:`auto_channel`); None for any other image (one channel: nothing to choose)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        return None
    return auto_channel(arr) if channel == "auto" else channel


def _plane(arr: np.ndarray, k: int) -> np.ndarray:
    """Channel ``k`` of an ``HxWxC`` array: contiguous, uint8/uint16 kept, anything else float32."""
    plane = arr[..., k]
    return np.ascontiguousarray(plane) if arr.dtype in (np.uint8, np.uint16) else plane.astype(np.float32)


def channel_signals(arr: np.ndarray, shrink: bool = True) -> np.ndarray:
    """Each colour channel's bright structure in an ``HxWx3(+)`` image: the 99.5th percentile minus the median
    of each of R, G, B. ``shrink``: on the image shrunk 4x (pixel noise and 1-2 px lines fade, nuclei keep their
    level: the nuclei models' rule, :func:`to_single_channel`); without it thin lines (membranes) count too."""
    return _channel_stats(arr, shrink)[0]


def _channel_stats(arr: np.ndarray, shrink: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`channel_signals` with the channels' 99.5th percentiles and the (n, 3) float32 pixels read."""
    rgb = in_float32_range(arr[..., :3])  # (ratios of its channels' levels: free of its scale)
    if rgb.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        rgb = rgb.astype(np.float32)
    if shrink:
        rgb = at_nucleus_scale(rgb)
    step = max(1, int(np.ceil(np.sqrt(rgb.shape[0] * rgb.shape[1] / 8_000))))  # nuclei are still 2+ samples wide
    grid = rgb[::step, ::step]
    if arr.shape[0] * arr.shape[1] >= CANVAS_PIXELS:  # an imaged area inside a filled canvas: judged on the area
        grid = _canvas_area(grid)
    sample = grid.reshape(-1, 3).astype(np.float32)
    if rgb.dtype.kind == "f":  # NaN/inf (padding after registration or stitching) left out: a sort puts NaN last,
        finite = np.isfinite(sample).all(axis=1)  # where it became a channel's 99.5th percentile and argmax picked red
        if not finite.all():
            sample = sample[finite] if finite.any() else np.zeros((1, 3), np.float32)
    n = sample.shape[0]
    ranks = [(n - 1) // 2, int(0.995 * (n - 1))]
    median, top = np.array([np.partition(sample[:, c], ranks)[ranks] for c in range(3)]).T  # a partial sort each
    return top - median, top, sample


def at_nucleus_scale(rgb: np.ndarray) -> np.ndarray:
    """An ``HxWxC`` image shrunk 4x (two Gaussian pyramid levels) where both sides are 64 px or more, else as it is:
    the scale the nuclei models' colour rule judges channels at (:func:`channel_signals`), where pixel noise and thin
    lines fade and nuclei (10+ px) keep their level."""
    import cv2

    if min(rgb.shape[:2]) < 64:
        return rgb
    return cv2.pyrDown(cv2.pyrDown(np.ascontiguousarray(rgb)))


def _canvas_area(grid: np.ndarray) -> np.ndarray:
    """``grid`` (an even subsample of a large ``HxWx3`` image) cut to the box around everything but its fill,
    when it is an imaged area inside a canvas filled with one colour (stitching, registration): the fill outside
    that box :data:`FLAT_SHARE` or more of the grid. Else ``grid`` as it is: an image whose content is spread
    over it (a sparse field of nuclei on a black background) is read whole, as it always was.

    The fill's pixels would otherwise decide which channel carries the signal: the real frame 160 pasted into a
    6000 x 6000 black canvas was read by its red channel, 315 nuclei found instead of 123."""
    box = _fill_box(np.any(grid != grid[0, 0], axis=-1))
    return grid if box is None else grid[box[0]:box[1], box[2]:box[3]]


def _fill_box(content: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``: the box around the True cells of ``content`` (2-D: the cells whose value differs
    from the top-left corner's), when the corner's value is a fill (the cells outside the box, all fill, are
    :data:`FLAT_SHARE` or more of them); else None."""
    box = _cells_box(content)
    if box is None or (box[1] - box[0]) * (box[3] - box[2]) > (1.0 - FLAT_SHARE) * content.size:
        return None
    return box


def _cells_box(content: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``: the box around the True cells of ``content`` (2-D); None when there are none."""
    rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    if not rows.size:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _signal_channel(arr: np.ndarray) -> int | None:
    """The channel of an ``HxWx3(+)`` image that carries the signal (see :func:`to_single_channel`);
    None when R, G and B carry about the same (a near-grey image: take their mean)."""
    signal, top, sample = _channel_stats(arr)
    if signal.max() <= 1e-6 * (np.abs(top).max() + 1e-6):
        # no structure in any channel (flat colour): the brightest one, green first on ties
        means = sample.mean(axis=0)
        if np.abs(means - means.mean()).max() <= 0.05 * (abs(means.mean()) + 1e-6):
            return None
        return 1 if means[1] >= means.max() else int(np.argmax(means))
    if signal.max() - signal.min() <= 0.05 * signal.mean():
        return None
    # green first (the histone-GFP movies the models know) unless another channel clearly carries more
    return 1 if 1.5 * signal[1] >= signal.max() else int(np.argmax(signal))


def _finite_float(image: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """``image`` as float32 (or ``dtype``) with its NaN/inf pixels (padding after registration or stitching, masked
    regions) set to the lowest finite value: background (an all-NaN image is empty, 0)."""
    arr = np.asarray(image, dtype=dtype)
    finite = np.isfinite(arr)
    if not finite.all():
        arr = np.where(finite, arr, arr[finite].min() if finite.any() else 0.0).astype(dtype)
    return arr


def normalize_percentile(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Scale intensities so that the ``low`` and ``high`` percentiles map to 0 and 1.

    Robust to hot pixels and to the bit depth (8-bit, 16-bit, float). Values are clipped to
    ``[0, 1]`` (as the training data were). NaN and infinite pixels count as background.

    Parameters
    ----------
    image : ndarray
        ``HxW`` intensities (any dtype).
    low, high : float
        Percentiles (0-100) mapped to 0 and 1.

    Returns
    -------
    ndarray
        ``HxW`` float32.
    """
    arr = _finite_float(in_float32_range(np.asarray(image)))  # (free of its scale: beyond float32's range too)
    # percentiles on a subsample: identical to a few grey levels, much faster on big images
    step = max(1, int(np.sqrt(arr.size / 250_000)))
    return normalize_range(arr, *percentile_limits(content_sample(arr, step), low, high))


#: working pixels from which an image may be a padded canvas (:func:`content_sample`)
CANVAS_PIXELS = 1_000_000
#: side of the blocks judged flat (every pixel the same value)
FLAT_BLOCK = 32
#: share of flat blocks from which an image is a padded canvas
FLAT_SHARE = 0.75


def content_sample(arr: np.ndarray, step: int) -> np.ndarray:
    """The pixels of ``arr`` (finite float32, working resolution) whose percentiles normalise it: every
    ``step``-th of every ``step``-th row, but of a canvas filled with one value around an imaged area only
    those in the box around the area (:func:`canvas_box`).

    Stitching or registration often leaves the imaged area inside a larger canvas filled with one value (0, or
    NaN set to the lowest value): its percentiles would then be read off the fill, and the 99.8th of an embryo
    filling 1 % of a canvas falls on its dimmer pixels, stretching it (the real frame 160 pasted into black
    canvases of 4000 and 6000 px a side: 114 and 109 nuclei at a fixed diameter, 117 alone; 117 at any size
    read in the box). A frame of a movie (EPIC frames are 22-57 % black), an image under
    :data:`CANVAS_PIXELS` or one whose content is spread over it (a sparse field of nuclei on a black
    background) is sampled as it always was.
    """
    if arr.size >= CANVAS_PIXELS:
        box = canvas_box(arr)
        if box is not None:
            y0, y1, x0, x1 = box
            return arr[y0:y1:step, x0:x1:step]
    return arr[::step, ::step]


def canvas_box(arr: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``, pixels of ``arr`` (2-D): the box around its content when it is an imaged area inside
    a canvas filled with one value (the top-left pixel's: the :func:`fill_blocks` outside the box are
    :data:`FLAT_SHARE` or more of all blocks); else None."""
    return _pixels(_fill_box(~fill_blocks(arr, arr[0, 0])), arr.shape)


def content_box(arr: np.ndarray, fill: float) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``, pixels of ``arr`` (2-D): the box around its blocks that do not hold ``fill`` only
    (:func:`fill_blocks`); None when every block does."""
    return _pixels(_cells_box(~fill_blocks(arr, fill)), arr.shape)


#: :func:`border_box`: a border is a pad (not an image's own background of one grey level) where the row or column
#: just inside each side it would take off holds something but the fill along at least this share of its length: a
#: camera frame padded reaches its pad all along it (its noise, its background), an embryo on a background of one level
#: only where it comes nearest. The held-out renders whose background is one grey level up to their edges (val_L3,
#: val_sim: 19 of 145, at zooms 0.5, 1 and 2; mval_L3 has none): 0.094 at most; the tests' discs on black: 0.15 at
#: most; the renders that have none and the three real reference frames (0.8 and more), padded by 10 px with 0, their
#: lowest value or 255: 12 of 1476 under it (0.16-0.23: two renders whose background is mostly at 0, padded with 0,
#: read as before)
PAD_SHARE = 0.25


def border_box(image: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``, pixels of ``image`` (``HxW`` or ``HxWxC``): the box inside its pad, a border of one
    constant value (a pixel value, NaN included) that fills a whole edge row or column and every row and column
    beyond the box: an image padded with a constant, to the pixel (not by :data:`FLAT_BLOCK` blocks as
    :func:`canvas_box`).

    None when no edge row or column is constant (a camera's frame, whose noise reaches its edges: read as it is, at
    the cost of its four edges), when nothing but the fill is left, and when the border is part of the image as it was
    taken: its own background of one grey level (a render's, discs on black: the content comes near the sides only
    where the embryo does, :data:`PAD_SHARE`), or its own even levels (the row or column just inside the border is
    one value throughout: a gradient without noise, whose every column is one level; a pad inside a pad is left as it
    is too). The image cut to the box has no such border (the box of that is itself: cut once)."""
    arr = np.asarray(image)
    if (arr.ndim not in (2, 3) or arr.ndim == 3 and arr.shape[2] not in (1, 3, 4) or arr.dtype.kind not in "biuf"
            or min(arr.shape[:2]) < 2):
        return None
    colour = arr.ndim == 3
    fill = next((line[0] for line in (arr[0], arr[-1], arr[:, 0], arr[:, -1]) if _is(line, line[0], colour).all()),
                None)
    if fill is None:
        return None
    other = ~_is(arr, fill, colour)
    box = _cells_box(other)
    if box is None:  # nothing but the fill
        return None
    y0, y1, x0, x1 = box
    inside = arr[y0:y1, x0:x1]
    cut = (y0 > 0, y1 < arr.shape[0], x0 > 0, x1 < arr.shape[1])  # (one at least: a whole edge line is the fill)
    for line in (line for line, k in zip((inside[0], inside[-1], inside[:, 0], inside[:, -1]), cut) if k):
        if (~_is(line, fill, colour)).mean() < PAD_SHARE or _is(line, line[0], colour).all():
            return None  # the image's own background, or its own even levels
    return box


def _is(arr: np.ndarray, value, colour: bool) -> np.ndarray:
    """Which pixels of ``arr`` are ``value`` (a pixel; NaN is NaN): ``arr``'s shape, less its last axis where
    ``colour`` (an ``HxWxC`` image's pixels are its last axis)."""
    same = arr == value
    if arr.dtype.kind == "f":
        same |= np.isnan(arr) & np.isnan(value)
    return same.all(axis=-1) if colour else same


def _pixels(box: tuple[int, int, int, int] | None, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """A box of :func:`fill_blocks` cells in pixels (clipped to ``shape``: partial blocks at the edges)."""
    if box is None:
        return None
    b = FLAT_BLOCK
    return box[0] * b, min(shape[0], box[1] * b), box[2] * b, min(shape[1], box[3] * b)


def fill_blocks(arr: np.ndarray, fill: float) -> np.ndarray:
    """Which ``FLAT_BLOCK`` x ``FLAT_BLOCK`` blocks of ``arr`` (2-D; the partial blocks at the bottom and right
    edges judged on their own pixels) hold ``fill`` only: ``(ceil(H / B), ceil(W / B))`` bool. One pass over a
    boolean image (a NaN is never the fill)."""
    b = FLAT_BLOCK
    h, w = arr.shape
    other = arr != fill
    if h % b or w % b:  # the pixels beyond the edges hold nothing but fill
        other = np.pad(other, ((0, -h % b), (0, -w % b)))
    return ~other.reshape(other.shape[0] // b, b, other.shape[1] // b, b).any(axis=(1, 3))


def percentile_limits(sample: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of ``sample`` (finite float32 values), as
    :func:`normalize_percentile` maps them to 0 and 1 (``high`` above ``low`` even on a flat image).

    A flat image is one whose percentiles lie within a millionth of its own scale (their magnitude, at most 1) of each
    other: an image of tiny values (a float image scaled by 1e-10) is not flat for that, and is normalised as the same
    image at its usual scale is (an absolute millionth read every image under 1e-6 as flat: nothing found)."""
    lo, hi = np.percentile(sample, [low, high])
    tiny = _tiny_span(lo, hi)
    if hi - lo < tiny or hi <= lo:
        top = float(sample.max())
        hi = lo + max(tiny, top - lo) if top > lo else lo + 1.0
    return lo, hi


def _tiny_span(lo: float, hi: float) -> float:
    """The span under which ``lo`` and ``hi`` (an image's percentiles) are the same level: a millionth of their
    magnitude, at most a millionth (the image's own scale: an image of values all under 1e-6 has a range)."""
    return 1e-6 * min(1.0, max(abs(float(lo)), abs(float(hi))))


def normalize_range(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``arr`` (finite float32) with ``lo`` and ``hi`` mapped to 0 and 1, clipped to ``[0, 1]``."""
    out = (arr - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def remove_outliers(image: np.ndarray, threshold: float) -> np.ndarray:
    """``image`` with its bright single-pixel outliers (hot camera pixels, cosmic-ray or shot-noise spikes)
    replaced by the brightest of their 8 neighbours, like ImageJ's Remove Outliers (bright, radius 1).

    A pixel is an outlier when it exceeds every one of its 8 neighbours by more than ``threshold``
    times the image's range (its 1st to 99.8th percentile, from every 4th pixel of every 4th row). No
    optics makes real signal that sharp (a nucleus, a membrane line or a blurred spot always has
    a neighbour nearly as bright), so a clean image comes back unchanged: at 0.5, none of the three
    real reference frames and at most 2 pixels of a render (benchmarks/RESULTS.md).

    Parameters
    ----------
    image : ndarray
        ``HxW`` intensities (any dtype; NaN/inf pixels are left to the later steps).
    threshold : float
        Fraction of the image's range (> 0).

    Returns
    -------
    ndarray
        ``image`` itself when nothing was replaced, else a copy (float32 for float input, float64 for float input
        beyond float32's safe range (:func:`float32_shift`), the input's dtype otherwise).
    """
    import cv2

    arr = np.asarray(image)
    if arr.ndim != 2 or min(arr.shape) < 3 or arr.dtype == bool:
        return arr
    wide = float32_shift(arr) != 0  # values beyond float32's safe range: worked on in float64, in their own units
    work = arr if arr.dtype in (np.uint8, np.uint16, np.float32) and not wide else \
        _finite_float(arr, np.float64 if wide else np.float32)
    if work.dtype == np.float32 and not np.isfinite(work).all():
        work = _finite_float(work)
    kernel = np.ones((3, 3), np.uint8)
    kernel[1, 1] = 0
    neighbours = cv2.dilate(work, kernel, borderType=cv2.BORDER_REFLECT_101)  # the brightest of the 8 neighbours (mirrored at the edge, never the pixel itself)
    # float32 whatever the dtype (the same range as a float copy's), float64 for values beyond float32's range
    sample = work[::4, ::4].astype(work.dtype if wide else np.float32)
    lo, hi = np.percentile(sample, [1.0, 99.8]) if sample.size else (0.0, 0.0)
    margin = float(threshold) * max(float(hi) - float(lo), _tiny_span(lo, hi))  # (its own scale: percentile_limits)
    bad = cv2.subtract(work, neighbours) > margin  # in the image's own dtype (saturating), no float copies
    if not bad.any():
        return arr
    out = work.copy()
    out[bad] = neighbours[bad]
    return out


def flatten_background(image: np.ndarray, size: float) -> np.ndarray:
    """``image`` minus its smooth background: uneven illumination, a bright or tilted backdrop.

    The background is a grey-level opening (the largest smooth floor that fits under the
    image, as a rolling ball would find it) with a disc ``size`` pixels wide, larger than the
    objects so that they are not part of it; taken on the image shrunk 4x and smoothed, so it
    costs well under a millisecond per 752x512 frame. NaN and infinite pixels count as the
    lowest finite value.

    Parameters
    ----------
    image : ndarray
        ``HxW`` intensities.
    size : float
        Diameter of the opening's disc, in pixels of ``image`` (> 0).

    Returns
    -------
    ndarray
        ``HxW`` float32, the image minus its background (may go slightly below 0).
    """
    import cv2

    arr = _finite_float(image)
    h, w = arr.shape
    f = 4
    small = cv2.resize(arr, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    k = max(3, int(round(size / f)) | 1)
    # the edges continued as they are: a backdrop rising towards an edge is not taken for an object there
    pad = cv2.copyMakeBorder(small, k, k, k, k, cv2.BORDER_REPLICATE)
    floor = cv2.morphologyEx(pad, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    floor = cv2.GaussianBlur(floor, (0, 0), k / 2)[k:-k, k:-k]
    return arr - cv2.resize(floor, (w, h), interpolation=cv2.INTER_LINEAR)


def prepare_image(image: np.ndarray, channel: Channel, scale: float, percentiles: Sequence[float],
                  flatten: float = 0.0, outliers: float = 0.0, limits: tuple[float, float] | None = None,
                  raw: bool = False) -> np.ndarray:
    """An input image as a segmentation network sees it: one channel (:func:`to_single_channel`),
    its bright single-pixel outliers replaced when ``outliers`` > 0 (:func:`remove_outliers`, at
    the input's resolution), resized by ``scale`` (area averaging when shrinking), its smooth background removed when
    ``flatten`` > 0 (:func:`flatten_background` with a disc that many working pixels wide),
    then its ``percentiles`` mapped to 0..1 (:func:`normalize_percentile`; resize first, the
    order the training data saw). Empty ``percentiles``: the input type's range instead
    (``data.normalize: dtype`` of a training run: uint8 / 255, uint16 / 65535, floats as they
    are), clipped to 0..1 (``flatten`` does not apply).

    ``limits`` (lo, hi): map these values to 0..1 instead of the image's own percentiles (a
    part of a giant image normalised like the whole, :mod:`devolens.predict.blocks`; NaN/inf
    pixels then map to 0, as the whole image's lowest value does); ``raw``: stop before the
    normalisation (float32 at the working resolution, NaN/inf pixels left as they are).

    Saturated specks (:func:`saturated_specks`: a few pixels at the top of an 8/16-bit range in an image whose other
    pixels stay far below it, as dust, a reflection or hot-pixel clusters saturate a 16-bit file of 12-bit data) take
    the ``low`` percentile of the other pixels first, as the hot-pixel step's single pixels take a neighbour's value:
    they would set the top, and the nuclei fade to a few percent of it (:func:`leaves_specks_out` tells whether an
    image has such specks). Renders of 12-bit data with a saturated speck of radius 15-40 px, or 100-200 saturated 2x2
    hot-pixel clusters: nuclei F1 0.78-0.80 (0.79 without them; 0.00-0.48 with them in the percentiles).

    Returns
    -------
    ndarray
        ``round(H * scale) x round(W * scale)`` float32.
    """
    return _prepare(image, channel, scale, percentiles, flatten, outliers, limits, raw)[0]


def _prepare(image: np.ndarray, channel: Channel, scale: float, percentiles: Sequence[float],
             flatten: float = 0.0, outliers: float = 0.0, limits: tuple[float, float] | None = None,
             raw: bool = False) -> tuple[np.ndarray, bool]:
    """:func:`prepare_image`'s array, and whether it left saturated specks of ``image`` out of its percentiles (what
    :func:`leaves_specks_out` tells without the rest of the preparation): one preparation for both."""
    own = len(percentiles) and limits is None and not raw  # normalised to its own percentiles here
    grey, specks = _channel_specks(image, channel, outliers, percentiles[1] if own else None)
    if specks is not None:
        grey = fill_specks(grey, specks, percentiles[0])
    grey = np.asarray(grey, dtype=np.float32)
    if scale != 1.0:
        h, w = grey.shape
        grey = resize_image(grey, (max(1, round(h * scale)), max(1, round(w * scale))))
    if flatten > 0 and len(percentiles):
        grey = flatten_background(grey, flatten)
    left_out = specks is not None
    if not len(percentiles):
        kind = np.asarray(image).dtype
        top = float(np.iinfo(kind).max) if np.issubdtype(kind, np.integer) else 1.0
        return np.clip(np.nan_to_num(grey / np.float32(top)), 0.0, 1.0).astype(np.float32, copy=False), left_out
    if raw:
        return grey, left_out
    if limits is not None:
        finite = np.isfinite(grey)
        return normalize_range(grey if finite.all() else np.where(finite, grey, np.float32(limits[0])),
                               *limits), left_out
    return normalize_percentile(grey, *percentiles), left_out


#: :func:`saturated_specks`: saturated pixels are left out of the brightness scale when they are at most this share of
#: the image (a dust speck of radius 40 px in a 752x512 frame: 1.3 %)...
SPECK_SHARE = 0.02
#: ... and the image's other pixels stay below this share of the top of its range (their ``high`` percentile): data
#: that use an eighth of the range or less (12-bit camera data with an offset in a 16-bit file, 5 bits of an 8-bit
#: one), which cannot saturate it themselves. On the held-out renders the models are scored on (val_L3, val_sim, their
#: EPIC-framed movies, mval_L3, calib_L2/calib_sim; every acquisition change of benchmarks/eval_robustness.py, zooms
#: 0.5 and 2) and the real reference frames, 1412 of 2848 inputs hold saturated pixels after the hot-pixel step: where
#: they are SPECK_SHARE of the image or less, the other pixels' 99.8th percentile is 0.31 of the top or more (0.16
#: without that step: a membrane slice with 0.05 % hot pixels), so none is changed (nor, run through the predictors,
#: any of 4900 preparations of every 2nd-4th of them)
SPECK_RANGE = 1 / 8
#: the top of the range :func:`saturated_specks` knows: 16 bits (as integers, or as floats holding them). Not 8 bits:
#: an 8-bit image's pixels at 255 are saturated nuclei far more often than dust, and its other pixels below 32
#: (5 bits) are a dim background, not dim nuclei (an early embryo's saturated nuclei were filled as specks and the
#: background's noise stretched into dozens of "nuclei")
SPECK_TOPS = (65535,)
#: ... and saturated pixels are specks only as at most one compact blob (dust, a reflection: its area at least this
#: share of its bounding box) besides clusters of this many pixels or fewer (hot pixels): several saturated discs are
#: an embryo's nuclei, a saturated network its membranes, both left as they are
SPECK_CLUSTER = 25
SPECK_COMPACT = 0.4


def saturated_specks(grey: np.ndarray, high: float = 99.8) -> np.ndarray | None:
    """The saturated specks of a one-channel image: its pixels at the top of a 16-bit range (``uint16`` 65535; a float
    image whose maximum is exactly that, a 16-bit image converted), when they are at most :data:`SPECK_SHARE` of it,
    its other pixels' ``high`` percentile lies at or below :data:`SPECK_RANGE` of that top, and they form at most one
    compact blob besides hot-pixel clusters (:data:`SPECK_CLUSTER`, :data:`SPECK_COMPACT`); else (nothing saturated,
    8-bit images, the saturated nuclei or membranes of an image, other float images) None.

    A dust speck, a reflection or clusters of hot pixels saturating a 16-bit file of 12-bit data set the 99.8th
    percentile that :func:`normalize_percentile` maps to 1, and the nuclei, 16 times dimmer, fade to a few percent (a
    speck of 0.3 % of a render: one "nucleus" per frame, F1 0.00; 0.79 with the speck left out, as without it).
    Percentiles alone cannot tell such specks from the bright nuclei of an embryo of a few cells (their 99.8th
    percentile is 15 times their 99th as rendered, 150 times under gamma 2), so only pixels that data of the depth the
    others show cannot reach are left out. One pass over the image (its maximum) unless it saturates.

    Parameters
    ----------
    grey : ndarray
        ``HxW`` intensities.
    high : float
        The percentile (0-100) mapped to 1.

    Returns
    -------
    ndarray or None
        ``HxW`` bool, True at the specks' pixels.
    """
    arr = np.asarray(grey)
    if arr.ndim != 2 or not arr.size or arr.dtype.kind not in "uf":
        return None
    peak = arr.max()
    if arr.dtype.kind == "u":
        top = np.iinfo(arr.dtype).max
        if float(top) not in SPECK_TOPS or peak < top:  # 16 bits only (SPECK_TOPS: not an 8-bit image's 255)
            return None
    elif not np.isfinite(peak) or float(peak) not in SPECK_TOPS:
        return None
    else:
        top = int(peak)
    specks = arr == peak
    n = int(np.count_nonzero(specks))
    if n > SPECK_SHARE * arr.size:
        return None
    # the other pixels' `high` percentile at or below the limit: at most (100 - high) % of them above it
    above = int(np.count_nonzero(arr > top * SPECK_RANGE)) - n
    if above > (100.0 - float(high)) / 100.0 * (arr.size - n):
        return None
    import cv2

    _, _, stats, _ = cv2.connectedComponentsWithStats(specks.astype(np.uint8), connectivity=8)
    big = stats[1:][stats[1:, cv2.CC_STAT_AREA] > SPECK_CLUSTER]
    if len(big) > 1 or (len(big) == 1 and big[0, cv2.CC_STAT_AREA]
                        < SPECK_COMPACT * big[0, cv2.CC_STAT_WIDTH] * big[0, cv2.CC_STAT_HEIGHT]):
        return None
    return specks


def fill_specks(grey: np.ndarray, specks: np.ndarray, low: float = 1.0) -> np.ndarray:
    """``grey`` (``HxW``) as float32, its ``specks`` (:func:`saturated_specks`) set to the ``low`` percentile of its
    other pixels (every 4th of every 4th row): background, out of the percentiles. Left at the top of the range (and
    clipped to 1), a saturated disc reads as one huge nucleus and hot-pixel clusters as dots that mislead the size
    model; a copy, ``grey`` stays as it is."""
    others = grey[::4, ::4][~specks[::4, ::4]]
    fill = np.percentile(others if others.size else grey[~specks], low)
    out = np.array(grey, dtype=np.float32)
    out[specks] = fill
    return out


def _channel_specks(image: np.ndarray, channel: Channel, outliers: float,
                    high: float | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The channel of ``image`` a network reads, its hot pixels replaced when ``outliers`` > 0 (:func:`prepare_image`'s
    first steps), and its :func:`saturated_specks` for a normalisation to the ``high`` percentile (None: none)."""
    # 8/16-bit channels stay integers through the outlier step (exact, ~7x faster); float input beyond float32's
    # safe range is rescaled only where the image is normalised to its own percentiles (a normalisation free of its
    # scale; limits given, a raw block, the input type's range: in its own units)
    grey = _one_channel(image, channel, rescale=high is not None)
    if outliers > 0:
        grey = remove_outliers(grey, outliers)
    return grey, (None if high is None else saturated_specks(grey, high))


def may_hold_specks(image) -> bool:
    """Whether :func:`prepare_image` may find saturated specks (:func:`saturated_specks`) in ``image`` (an array of
    numbers): its maximum is at the top of a range they are known in (:data:`SPECK_TOPS`) or above it, or not a number.
    One pass over the image. False is certain: no channel of it reaches that top, nor does the hot-pixel step raise a
    pixel (it takes a neighbour's value), so its preparation leaves nothing out and needs no second look."""
    if not isinstance(image, np.ndarray) or not image.size or image.dtype.kind not in "iuf":
        return False
    return not float(image.max()) < min(SPECK_TOPS)  # (NaN: a channel without it may reach the top)


def leaves_specks_out(image: np.ndarray, channel: Channel, percentiles: Sequence[float], outliers: float = 0.0) -> bool:
    """Whether :func:`prepare_image` leaves saturated specks (:func:`saturated_specks`) of ``image`` out of its
    percentiles with this ``channel``, ``percentiles`` and ``outliers`` (whatever the scale and flattening). One pass
    over the image (its maximum, :func:`may_hold_specks`), a few milliseconds where it reaches the top of a 16-bit
    range. A frame a predictor prepares says so itself (:class:`Prepared`'s ``extra``, the result's ``extra["specks"]``:
    what ``segment`` and ``population`` name in their note), without this second look."""
    if not len(percentiles) or not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
        return False
    if not may_hold_specks(image):
        return False
    return _channel_specks(image, channel, outliers, percentiles[1])[1] is not None


def blob_fraction(prepared: np.ndarray, width: int = 7, level: float = 0.3, least: int = 200) -> float | None:
    """How blob-like the bright structure of a prepared image is (0-1 intensities at half the EPIC-like render
    scale, where nuclei are ~17 px wide): of its pixels above ``level``, the fraction still above it after a
    grey-level opening with a disc ``width`` pixels wide. Nuclei, wider than the disc, keep most of theirs; thin
    membranes lose nearly all. On renders (`membrane`/`nuclei` zoo renders, 239 nuclei frames and 80 membrane
    slices): nuclei median 0.81 (5th percentile 0.29, lowest 0.05), membranes median 0.00 (highest 0.32).
    Bright specks smaller than the disc's square (noise above the level) count as neither. None when fewer
    than ``least`` pixels are bright or the frame's median is above ``level`` (a dark or nearly empty frame
    normalised to its noise): nothing to judge."""
    import cv2

    arr = np.asarray(prepared, dtype=np.float32)
    if float(np.median(arr[::4, ::4])) >= level:
        # half the frame above the level: no structure stands out (a dark or nearly empty frame normalised to its
        # noise has a median of ~0.4; nuclei and membrane renders at most 0.2)
        return None
    bright = arr > level
    if int(bright.sum()) < least:
        return None
    # specks (background noise above the level in a sparse or dark frame) are neither blobs nor lines: left out
    n, comp, stats, _ = cv2.connectedComponentsWithStats(bright.view(np.uint8), connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < width * width
    small[0] = True  # the background
    if small[1:].any():
        bright &= ~small[comp]
        if int(bright.sum()) < least:
            return None
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width))
    opened = cv2.morphologyEx(arr, cv2.MORPH_OPEN, disc)
    return float((opened[bright] > level).mean())


#: :func:`lacks_structure`: a frame whose structure stands out from its own pixel noise by less than this z-score as a
#: whole (:func:`structure_score`)... Pure noise: at most 3.5 over 30 frames of 0.4-4 Mpx (Gaussian or Poisson, 8/16
#: bit or float, flat or under a gradient) and a camera's dark frame with 0.1 % hot pixels 3.75; 126 renders of membrane
#: slices dimmed to 2-5 % contrast under Gaussian (4-16 grey levels) or Poisson noise: 2.3 and up, under 4 only at
#: 2-3 % contrast under 16 grey levels of noise (a faint arc of the embryo at most to be seen, and the model finds
#: none of the cells there); the slices and nuclei frames the models segment: 289 and more.
NO_STRUCTURE = 4.0
#: ...and in every one of its 256 x 256 px tiles (a small object in a large noisy frame; pure noise: at most 4.0)
NO_STRUCTURE_TILE = 6.0


def structure_score(image: np.ndarray, channel: Channel = "auto", tile: int = 256,
                    held: bool = False) -> tuple[float, float] | None:
    """How far the structure of a frame stands out from its own pixel noise: ``(whole, tile)`` z-scores, ~N(0, 1)
    for a frame of pure noise, hundreds for a frame with cells or nuclei; None when too small (a side under 128 px),
    not finite, or when most neighbouring pixels are equal (a flat or clipped background, a background-subtracted
    image, sparse photon counts): no pixel noise to judge by, so such frames are never called empty (a constant
    frame scores 0).

    Curate's ``black`` test (:mod:`devolens.curate.frames`: the contrast of 8 x 8 block means, below one 8-bit grey
    level) made relative to the frame's noise, so that it holds for 16-bit cameras (a 16-bit frame of real cells
    with a contrast of 60 counts is "black" to it) and for noisy 8-bit frames (noise of 2 grey levels is above it):
    the pixel noise is read from the differences of neighbouring pixels (robust: edges of the structure left out),
    and the structure from the second differences of the block means (8 and 16 px blocks, smooth illumination
    taken out), whose mean square is 1 in units of what that noise alone gives them. ``whole``: over the whole
    frame; ``tile``: the largest over its ``tile`` x ``tile`` px tiles. Bright single-pixel outliers (hot pixels) are
    replaced first, as the models' preparation does (:func:`remove_outliers`); ``held``: specks are held to the noise
    instead (:func:`_held_specks`; the nuclei model's test, :func:`lacks_structure`): ``remove_outliers``, at a
    fraction of the frame's range, also replaces the shot noise of sparse photon counts, whose score it raises (pure
    Poisson noise of 0.5 counts a pixel: 5.6-11 held as it does, 1.5 without)."""
    grey = _one_channel(image, channel, rescale=True)
    if grey.ndim != 2 or min(grey.shape) < 128:
        return None
    if not held:
        grey = remove_outliers(grey, 0.5)
    if grey.dtype not in (np.uint8, np.uint16) and not np.isfinite(grey).all():
        return None
    g = np.asarray(grey, dtype=np.float32)
    # the pixel noise: neighbouring pixels' differences (every 4th row and column suffices), robust to edges
    centre, spread = _pixel_noise(g)
    if spread == 0:  # most neighbours equal (a flat or clipped background, sparse photon counts): no noise to judge by
        return (0.0, 0.0) if float(g.max()) == float(g.min()) else None  # a constant frame holds nothing
    if held:
        g = _held_specks(g, spread)
    across, down = np.diff(g[::4], axis=1).astype(np.float64), np.diff(g[:, ::4], axis=0).astype(np.float64)
    across = np.minimum((across - centre) ** 2, 36.0 * spread * spread)
    down = np.minimum((down - centre) ** 2, 36.0 * spread * spread)
    noise = float(across.sum() + down.sum()) / (2.0 * (across.size + down.size))  # pixel variance
    # the same per tile: a brighter part of a frame has more shot noise
    cells = tile // 4
    local = (_tile_sums(across, (cells, tile)) + _tile_sums(down, (tile, cells)))
    local_n = (_tile_sums(np.ones_like(across), (cells, tile)) + _tile_sums(np.ones_like(down), (tile, cells)))
    local = np.divide(local, 2.0 * local_n, out=np.zeros_like(local), where=local_n > 0)
    whole, best = -np.inf, -np.inf
    for k in (8, 16):
        h, w = (g.shape[0] // k) * k, (g.shape[1] // k) * k
        blocks = g[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3), dtype=np.float64)
        square = np.zeros(blocks.shape)  # per block: the squared second differences centred on it, in noise units
        count = np.zeros(blocks.shape)
        for axis in (0, 1):
            second = np.diff(blocks, n=2, axis=axis)
            second -= np.median(second)  # a tilted or curved illumination field is no structure
            if noise > 0:
                z2 = np.minimum(second ** 2 / (6.0 * noise / (k * k)), 36.0)  # a lone speck counts 6 sigma at most
            else:  # no pixel noise at all: flat (nothing), or noiseless structure
                z2 = np.where(second != 0, 36.0, 0.0)
            inner = (slice(1, -1), slice(None)) if axis == 0 else (slice(None), slice(1, -1))
            square[inner] += z2
            count[inner] += 1
        n = float(count.sum())
        if n < 16:
            continue
        # mean square 1 under pure noise; its spread there ~ sqrt(2.8 / blocks) (overlapping second differences)
        whole = max(whole, (float(square.sum()) / n - 1.0) / np.sqrt(2.8 / blocks.size))
        t = tile // k
        s_t, c_t = _tile_sums(square, (t, t)), _tile_sums(count, (t, t))
        rows, cols = min(s_t.shape[0], local.shape[0]), min(s_t.shape[1], local.shape[1])
        s_t, c_t, own = s_t[:rows, :cols], c_t[:rows, :cols], local[:rows, :cols]
        ok = (c_t >= 0.5 * t * t) & (own > 0)  # whole tiles and wide edge tiles
        if ok.any():
            # in units of the tile's own noise
            mean = s_t[ok] / c_t[ok] * (noise / own[ok] if noise > 0 else 1.0)
            best = max(best, float(((mean - 1.0) / np.sqrt(2.8 * 2.0 / c_t[ok])).max()))
    if not np.isfinite(whole):
        return None
    return float(whole), float(best if np.isfinite(best) else whole)


def _tile_sums(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Sums of ``arr`` over tiles of ``size`` (rows, columns) from its first element; edge tiles hold what is left."""
    th, tw = -(-arr.shape[0] // size[0]) * size[0], -(-arr.shape[1] // size[1]) * size[1]
    pad = np.pad(arr, ((0, th - arr.shape[0]), (0, tw - arr.shape[1])))
    return pad.reshape(th // size[0], size[0], tw // size[1], size[1]).sum(axis=(1, 3))


def _pixel_noise(g: np.ndarray) -> tuple[float, float]:
    """The centre and robust spread (1.4826 x the median absolute deviation) of the differences of neighbouring
    pixels of a float32 frame ``g`` (every 4th row and column, at most ~200 000 of them): the spread is sqrt(2)
    times the pixel noise, the edges of the structure left out; 0 when most neighbours are equal."""
    across, down = np.diff(g[::4], axis=1).astype(np.float64), np.diff(g[:, ::4], axis=0).astype(np.float64)
    both = np.concatenate([across.ravel(), down.ravel()])
    sample = both[::max(1, both.size // 200_000)]  # a robust spread, to clip the structure's edges by
    centre = float(np.median(sample))
    return centre, 1.4826 * float(np.median(np.abs(sample - centre)))


def _held_specks(g: np.ndarray, spread: float) -> np.ndarray:
    """A float32 frame ``g`` with each pixel held to at most :data:`SPECK_HOLD` times its pixel noise (``spread`` /
    sqrt(2): :func:`_pixel_noise`) above the median of its 3 x 3 neighbourhood: specks of up to 4 pixels (hot pixels,
    pairs of them, which :func:`remove_outliers` keeps; a camera's dark frame with 0.1 % hot pixels scored 800 as a
    blob) brought to the noise, where a nucleus, whose neighbours are as bright, and the pixel noise (a 4-sigma
    excess above a median: about 1 pixel in 10 000 of Gaussian noise) are left as they are."""
    import cv2

    return np.minimum(g, cv2.medianBlur(np.ascontiguousarray(g, dtype=np.float32), 3)
                      + np.float32(SPECK_HOLD * spread / np.sqrt(2.0)))


#: :func:`_held_specks`: pixels are held to this many times the pixel noise above their 3 x 3 median
SPECK_HOLD = 4.0
#: :func:`lacks_structure` of the nuclei model (``blobs``): a frame whose brightest blob stands out from its own noise
#: by less than this z-score (:func:`blob_score`)... Pure noise (294 fields of 64-1024 px, Poisson of 0.5-50 counts
#: and Gaussian, offsets 0-1000, uint8, uint16 and float32, under a 2x ramp of light, with 0.1 % hot pixels): at most
#: 6.8 (sparse photon counts of a 1024 px field; Gaussian noise about 5.5); the real and rendered frames the model
#: segments: 28 and more, or not judged (a clipped background); the reference frames and early renders dimmed to
#: 5-10 % over noise: 11 and more (3 %: 7.9 and more, where the structure score sees them: 13 and more); one nucleus
#: in a field of 256-1024 px of noise: 12-16 at 18 px and a peak of 1 noise sigma, 10-15 at 10 px and 2 sigma
#: (at 0.5-1 sigma, under the cut, the model found a nucleus in some of them, and noise elsewhere)
NO_BLOB = 8.0


def blob_score(image: np.ndarray, channel: Channel = "auto", enough: float | None = None) -> float | None:
    """How far the brightest blob of a frame stands out from its own pixel noise: a z-score, at most ~7 for a
    frame of pure noise, tens to hundreds for a frame with nuclei, a single one included; None when too small (a
    side under 32 px), not finite, or when most neighbouring pixels are equal (no pixel noise to judge by: never
    called empty), as for :func:`structure_score`.

    Where :func:`structure_score` weighs the structure of the whole frame (or of its 256 px tiles, and each block at
    6 sigma at most: a lone nucleus in a noisy field adds too little to be told from noise), this looks for one
    bright spot: the mean of a k x k px box less that of the 3k x 3k px box around it (k 4, 8 and 16: nuclei of a
    few to 50 px), in units of what the pixel noise (read from neighbouring pixels' differences, over a 64 px
    window: a brighter part of a frame has more shot noise) alone gives it; the largest over the frame, boxes
    within it. Specks of up to 4 pixels are held to the noise first (:func:`_held_specks`). ``enough``: a score at
    which to stop (the largest box first, where most nuclei stand out most): the first box size reaching it gives
    the result (:func:`lacks_structure` asks only whether a blob stands out)."""
    import cv2

    grey = _one_channel(image, channel, rescale=True)
    if grey.ndim != 2 or min(grey.shape) < 32:
        return None
    g = np.asarray(grey, dtype=np.float32)
    if not np.isfinite(g).all():
        return None
    centre, spread = _pixel_noise(g)
    if spread == 0:
        return None
    g = _held_specks(g, spread)
    # the local pixel noise: squared neighbour differences (each clipped at 6 spreads: edges), over a 64 px window
    # (arrays the frame's size are made in place: a few at a time)
    cap = np.float32(36.0 * spread * spread)
    h, w = g.shape
    square = np.zeros((h, w), np.float32)
    diff = np.diff(g, axis=1)
    diff -= np.float32(centre)
    np.square(diff, out=diff)
    square[:, 1:] += np.minimum(diff, cap, out=diff)
    diff = np.diff(g, axis=0)
    diff -= np.float32(centre)
    np.square(diff, out=diff)
    square[1:, :] += np.minimum(diff, cap, out=diff)
    del diff
    count = np.full((h, w), 2.0, np.float32)  # the differences summed at each pixel: 1 on the first row and column
    count[0, :] -= 1
    count[:, 0] -= 1
    window = (min(64, h, w) // 2) * 2 + 1
    sigma = cv2.blur(square, (window, window), borderType=cv2.BORDER_REFLECT)
    del square
    sigma /= np.maximum(cv2.blur(count, (window, window), borderType=cv2.BORDER_REFLECT), np.float32(1e-6))
    del count
    np.sqrt(np.maximum(sigma, np.float32(1e-12), out=sigma), out=sigma)
    sigma *= np.float32(1.0 / np.sqrt(2.0))  # (a difference of two pixels: twice the pixel variance)
    best = -np.inf
    for k in (16, 8, 4):
        ring = 3 * k
        if ring > min(h, w):
            continue
        z = cv2.blur(g, (k, k), borderType=cv2.BORDER_REFLECT)
        z -= cv2.blur(g, (ring, ring), borderType=cv2.BORDER_REFLECT)
        m = ring // 2  # (boxes within the frame: the mirrored edge counts its pixels twice)
        part = (slice(m, h - m), slice(m, w - m)) if min(h, w) > 2 * m else (
            slice(h // 2, h // 2 + 1), slice(w // 2, w // 2 + 1))
        # the difference of two nested box means of iid noise: sigma^2 (1/k^2 - 1/ring^2)
        z = z[part] / sigma[part]
        best = max(best, float(z.max()) / float(np.sqrt(1.0 / (k * k) - 1.0 / (ring * ring))))
        if enough is not None and best >= enough:
            break
    return best if np.isfinite(best) else None


#: a frame whose brightest half percent of pixels lies this many pixel-noise spreads above its median holds structure
#: at a glance (pure noise: about 2.6 spreads; the benchmark movie's frames 40-300), judged on every 4th row before
#: the blob test's full-frame work
CLEARLY_BRIGHT = 12.0


def _clearly_bright(grey: np.ndarray) -> bool:
    """Whether a one-channel frame's brightest 0.5 % of pixels (every 4th row) lie :data:`CLEARLY_BRIGHT` noise
    spreads or more above its median, the spread read from neighbouring pixels' differences (their median absolute
    deviation, robust to the nuclei's edges): nuclei at a glance, so :func:`lacks_structure` need not look further.
    False where it cannot tell (too small, not finite, no pixel noise). Frames of 8- or 16-bit integers are judged
    by counting their values (:func:`_clearly_bright_counted`: the same verdict, ~10x less work than sorting)."""
    if grey.ndim != 2 or min(grey.shape) < 32:
        return False
    if grey.dtype in (np.uint8, np.uint16):
        return _clearly_bright_counted(grey[::4])
    rows = np.asarray(grey[::4], dtype=np.float32)
    if not np.isfinite(rows).all():
        return False
    diff = np.diff(rows, axis=1).ravel()
    spread = float(np.median(np.abs(diff - np.median(diff)))) / (0.6745 * np.sqrt(2.0))
    if spread <= 0:
        return False
    flat = rows.ravel()
    ranks = [(flat.size - 1) // 2, int(0.995 * (flat.size - 1))]
    median, top = np.partition(flat, ranks)[ranks]
    return float(top - median) >= CLEARLY_BRIGHT * spread


def _ranked(counts: np.ndarray, ranks) -> list[int]:
    """The values at 0-based ``ranks`` of sorted data given as ``counts`` (how many of each value 0, 1, ...)."""
    return [int(v) for v in np.searchsorted(np.cumsum(counts), np.asarray(ranks), side="right")]


def _median_twice(counts: np.ndarray, n: int) -> int:
    """Twice the median of ``n`` values given as ``counts`` (np.median's: the mean of the middle two for even n)."""
    a, b = _ranked(counts, [(n - 1) // 2, n // 2])
    return a + b


def _clearly_bright_counted(rows: np.ndarray) -> bool:
    """:func:`_clearly_bright`'s test on rows of unsigned integers, every median and rank read from counts of the
    values (bincount) instead of sorting: the same numbers, so the same verdict. The differences are counted once;
    their distances from their median are counted from those counts (a pass over the bins, not the pixels)."""
    rows = np.ascontiguousarray(rows)
    offset = int(np.iinfo(rows.dtype).max)  # differences -offset..offset counted from 0
    diff = np.subtract(rows[:, 1:], rows[:, :-1], dtype=np.int32)
    diff += offset
    counts = np.bincount(diff.ravel())
    n = diff.size
    m2 = _median_twice(counts, n) - 2 * offset  # twice the differences' median
    twice = np.abs(2 * (np.arange(counts.size, dtype=np.int64) - offset) - m2)  # each bin's distance from it, x2
    spread = _median_twice(np.bincount(twice, weights=counts), n) / 4.0 / (0.6745 * np.sqrt(2.0))
    if spread <= 0:
        return False
    flat = rows.ravel()
    median, top = _ranked(np.bincount(flat), [(flat.size - 1) // 2, int(0.995 * (flat.size - 1))])
    return float(top - median) >= CLEARLY_BRIGHT * spread


def lacks_structure(image: np.ndarray, channel: Channel = "auto", blobs: bool = False) -> bool:
    """Whether nothing stands out from a frame's noise (:func:`structure_score` below :data:`NO_STRUCTURE` as a whole
    and :data:`NO_STRUCTURE_TILE` in every tile): a camera's dark frame, an empty field, a frame of noise in a
    movie. False for frames too small to judge.

    ``blobs`` (the nuclei model's test): also no blob stands out (:func:`blob_score` under :data:`NO_BLOB`: a lone
    nucleus in a noisy field), the structure score taken with specks held to the noise (``held``); frames of 32-127
    px, too small for the structure score, are judged by their blobs alone."""
    if not blobs:
        score = structure_score(image, channel)
        return score is not None and score[0] < NO_STRUCTURE and score[1] < NO_STRUCTURE_TILE
    grey = _one_channel(image, channel, rescale=True)  # (once: a colour frame's channel is chosen by a rule of its own)
    if _clearly_bright(grey):  # most frames: the blob test's full-frame work cost ~10 ms a 752x512 frame
        return False
    blob = blob_score(grey, enough=NO_BLOB)
    if blob is None or blob >= NO_BLOB:
        return False
    score = structure_score(grey, held=True)
    return score is None or (score[0] < NO_STRUCTURE and score[1] < NO_STRUCTURE_TILE)


def diameter_scale(scale: float, reference: float | None, diameter: float | None) -> float:
    """Working scale for objects ``diameter`` input pixels wide: the model's ``scale`` times
    its ``reference`` diameter / ``diameter`` (brought to the size it was trained on); the
    model's ``scale`` when ``diameter`` is None. Inputs checked by the caller."""
    if diameter is None:
        return float(scale)
    return float(scale) * float(reference) / float(diameter)


def prep_key(channel: Channel, scale: float, percentiles: Sequence[float], flatten: float = 0.0,
             outliers: float = 0.0) -> tuple:
    """The preparation key ``(channel, scale, percentiles, flatten, outliers)`` in one canonical form."""
    return (channel, float(scale), tuple(float(p) for p in percentiles), float(flatten), float(outliers))


class Prepared:
    """An input image together with what :func:`prepare_image` made of it with the
    preparation ``key`` ``(channel, scale, percentiles, flatten, outliers)``: frames prepared ahead (e.g.
    in a read-ahead thread while the network loads) and handed to a predictor's
    ``predict_iter``, which uses ``array`` when its own preparation has the same key, else
    prepares ``image``.

    ``extra`` holds what the preparation found beside the array: ``"specks"`` (True) when it left saturated specks
    out of the brightness scale (:func:`saturated_specks`; absent otherwise), which a segmentation predictor passes on
    in its result's ``extra`` (the frames ``segment`` and ``population`` name in their note). ``array``: what
    :func:`prepare_image` made of ``image`` with ``key`` already, for an image that cannot hold such specks
    (:func:`may_hold_specks` False), from a caller that prepared it already; without it the preparation runs here.
    ``channel``: the channel of a colour image the preparation read (``red``, ``green``, ``blue``, ``mean`` or
    ``max``: the ``auto`` rule resolved once, for the objects' mean intensity to read the same); None for a
    one-channel image, or where ``array`` was given.
    """

    __slots__ = ("image", "array", "key", "extra", "channel")

    def __init__(self, image: np.ndarray, key: tuple, array: np.ndarray | None = None):
        self.image = np.asarray(image)
        self.key = prep_key(*key)
        self.extra: dict = {}
        self.channel = None
        if array is None:
            self.channel = colour_channel(self.image, self.key[0])
            # (the channel resolved here is the one the auto rule would pick inside: the same preparation)
            array, specks = _prepare(self.image, self.key[0] if self.channel is None else self.channel,
                                     *self.key[1:])
            if specks:
                self.extra["specks"] = True
        self.array = array

    @property
    def nbytes(self) -> int:
        return int(self.image.nbytes + self.array.nbytes)


# --------------------------------------------------------------------------- resizing
def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a float ``HxW`` or ``CxHxW`` array to ``shape`` (H, W).

    Area averaging when shrinking (as the training data were resized), bilinear when
    enlarging.
    """
    import cv2

    arr = np.asarray(image, dtype=np.float32)
    H, W = int(shape[0]), int(shape[1])
    if arr.shape[-2:] == (H, W):
        return arr
    interp = cv2.INTER_AREA if arr.shape[-2] * arr.shape[-1] > H * W else cv2.INTER_LINEAR
    if arr.ndim == 2:
        return cv2.resize(arr, (W, H), interpolation=interp)
    return np.stack([cv2.resize(np.ascontiguousarray(c), (W, H), interpolation=interp) for c in arr])


def resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an instance label image to ``shape`` (H, W)."""
    labels = np.asarray(labels)
    h, w = labels.shape
    H, W = int(shape[0]), int(shape[1])
    if (h, w) == (H, W):
        return labels
    if H % h == 0 and W % w == 0 and labels.dtype in (np.uint8, np.uint16):
        import cv2  # enlarging by whole factors: the same pixel-centre rule, about 6x faster

        # (not for other factors: OpenCV's fixed-point steps then move some pixels across (1261 of 511x751 from
        # 256x376), and objects.csv, measured by the rule below, no longer matched the label image)
        return cv2.resize(labels, (W, H), interpolation=cv2.INTER_NEAREST_EXACT)
    rows = np.minimum(((np.arange(H) + 0.5) * h / H).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(W) + 0.5) * w / W).astype(np.int64), w - 1)
    return labels.take(rows, axis=0).take(cols, axis=1)  # the same pixels as labels[rows[:, None], cols], 5x faster


def shrinks(small: tuple[int, int], shape: tuple[int, int]) -> bool:
    """Whether :func:`resize_labels` from ``small`` (h, w) to ``shape`` (H, W) leaves rows or columns out (a working
    image larger than the input): only then can it cut an object in pieces (enlarging repeats every pixel)."""
    return int(small[0]) > int(shape[0]) or int(small[1]) > int(shape[1])


def _pieces(labels: np.ndarray) -> np.ndarray:
    """The 8-connected pieces of every label (int64, 0 background): skimage's compiled core, called directly (its
    public module imports more), else ``skimage.measure.label``."""
    try:
        from skimage.measure._ccomp import label_cython
    except ImportError:  # pragma: no cover - another skimage layout
        from skimage.measure import label as label_cython
    return np.asarray(label_cython(np.ascontiguousarray(labels), background=0, connectivity=2))


def keep_largest_pieces(labels: np.ndarray) -> np.ndarray:
    """Each label's largest 8-connected piece, its other pieces set to 0 (pieces touching at a corner are one).

    A label image shrunk by nearest neighbour (:func:`resize_labels` to an input smaller than the working image) can
    cut an object's thin neck, leaving one label in several separate pieces; this keeps the main one. Ties go to the
    piece met first in raster order. ``labels`` itself when every label is in one piece (no copy)."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.size == 0 or not labels.any():
        return labels
    pieces = _pieces(labels)
    n = int(pieces.max())
    owner = np.zeros(n + 1, dtype=np.int64)
    flat = pieces.ravel()
    owner[flat] = labels.ravel()  # every pixel of a piece has its label
    if np.unique(owner[1:]).size == n:  # one piece per label: nothing cut
        return labels
    size = np.bincount(flat, minlength=n + 1)
    # per label its largest piece (the first in raster order on a tie): pieces sorted by label, then size down
    order = np.lexsort((np.arange(n), -size[1:], owner[1:])) + 1
    first = np.r_[True, owner[order][1:] != owner[order][:-1]]
    keep = np.zeros(n + 1, dtype=bool)
    keep[order[first]] = True
    out = labels.copy()
    out.ravel()[~keep[flat]] = 0
    return out


# --------------------------------------------------------------------------- instances
def relabel_sequential(labels: np.ndarray, min_size: int = 0) -> np.ndarray:
    """Drop objects smaller than ``min_size`` pixels and renumber labels 1..N (uint16 if fits)."""
    labels = np.asarray(labels)
    if labels.max() == 0:
        return np.zeros(labels.shape, dtype=np.uint16)
    counts = np.bincount(labels.ravel())
    keep = counts >= max(1, min_size)
    keep[0] = False
    return _renumber(labels, keep)


def _renumber(labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The labels with ``keep[label]`` renumbered 1..N in their order, the others 0 (uint16 if it fits)."""
    lut = np.zeros(len(keep), dtype=np.int64)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    out = lut[labels]
    return out.astype(np.uint16 if out.max() < 65536 else np.uint32)


def instances_from_probabilities(
    foreground: np.ndarray,
    interior: np.ndarray | None = None,
    *,
    threshold: float = 0.5,
    seed_threshold: float = 0.5,
    min_distance: float = 3.0,
    min_size: int = 8,
    smooth: float = 1.0,
    split_seeds: bool = False,
    isolated_fraction: float = 0.0,
    isolated_min_objects: int = 0,
) -> np.ndarray:
    """Instance labels from a foreground probability map, splitting touching objects.

    Seeds are the connected blobs of the ``interior`` probability (nucleus cores, away from
    the boundaries) when given, otherwise the maxima of the distance transform of the
    foreground mask. A marker-controlled watershed then grows each seed over the foreground
    (``foreground >= threshold``).

    Parameters
    ----------
    foreground : ndarray
        ``HxW`` probability (0-1) that a pixel belongs to an object.
    interior : ndarray, optional
        ``HxW`` probability of the object's core (boundary excluded), e.g. the "interior"
        class of a 3-class (background, interior, boundary) head.
    threshold : float
        Foreground probability threshold.
    seed_threshold : float
        Interior probability threshold of the seeds.
    min_distance : float
        Pixels; seeds closer than this merge (distance-transform seeds only), and interior
        seeds are opened with a disc of this radius / 2 to break thin bridges.
    min_size : int
        Objects (and seeds) smaller than this many pixels are dropped.
    smooth : float
        Gaussian sigma (pixels) applied to the probability maps before seeding.
    split_seeds : bool
        With ``interior``: also split interior blobs that join two cores (a dumbbell
        shape): seeds are the maxima of the distance transform of the interior mask, at
        least ``min_distance`` pixels apart, instead of one seed per blob.
    isolated_fraction : float
        Objects smaller than this fraction of the image's median object area that touch no
        other object (none within 2 pixels) are dropped: specks of noise or debris in the
        background (0 keeps them; see :func:`drop_isolated_specks`).
    isolated_min_objects : int
        The isolated specks are judged only in an image of at least this many objects (0: in any image; see
        :func:`drop_isolated_specks`).

    Returns
    -------
    ndarray
        ``HxW`` uint16 labels, 0 = background, objects numbered 1..N.
    """
    fg = np.asarray(foreground, dtype=np.float32)
    if smooth > 0:
        fg_s = _gaussian(fg, smooth)
    else:
        fg_s = fg
    mask = fg_s >= threshold
    if not mask.any():
        return np.zeros(fg.shape, dtype=np.uint16)
    core = None
    if interior is not None:
        core = np.asarray(interior, dtype=np.float32)
        if smooth > 0:
            core = _gaussian(core, smooth)
    # the rest runs on the box around the foreground (plus a background margin wider than
    # every filter below): the same labels, without the empty surround of an embryo
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    margin = int(2 * min_distance + 4 * max(smooth, 1.0)) + 4
    y0, y1 = max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, mask.shape[0])
    x0, x1 = max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, mask.shape[1])
    if (y1 - y0) * (x1 - x0) >= 0.9 * mask.size:  # little to save: the whole image
        y0, y1, x0, x1 = 0, mask.shape[0], 0, mask.shape[1]
    box = (slice(y0, y1), slice(x0, x1))
    inner = _instances(mask[box], None if core is None else core[box], seed_threshold=seed_threshold,
                       min_distance=min_distance, min_size=min_size, smooth=smooth, split_seeds=split_seeds,
                       isolated_fraction=isolated_fraction, isolated_min_objects=isolated_min_objects)
    if inner.shape == mask.shape:
        return inner
    out = np.zeros(mask.shape, dtype=inner.dtype)
    out[box] = inner
    return out


def _instances(mask: np.ndarray, core: np.ndarray | None, *, seed_threshold: float, min_distance: float,
               min_size: int, smooth: float, split_seeds: bool, isolated_fraction: float,
               isolated_min_objects: int = 0) -> np.ndarray:
    """Seeds and watershed of :func:`instances_from_probabilities` (``core`` already smoothed)."""
    if core is not None:
        seeds_mask = (core >= seed_threshold) & mask
        r = int(min_distance // 2)
        if r >= 1:
            seeds_mask = _opening(seeds_mask, r)
        markers, n = label_components(seeds_mask)
        if n:
            sizes = np.bincount(markers.ravel())
            small = sizes < max(1, min_size // 4)
            small[0] = False
            markers[small[markers]] = 0
        if split_seeds and markers.any():
            dist = _gaussian(_edt(markers > 0), 1.0)
            size = max(3, int(2 * min_distance + 1))
            peaks = (dist == _maximum(dist, size)) & (markers > 0)
            peak_lab, _ = label_components(peaks)  # plateaus of equal distance: one seed each
            # every blob keeps at least one seed; blobs with several maxima are split
            markers = peak_lab
        surface = -core
    else:
        dist = _gaussian(_edt(mask), max(smooth, 1.0))
        size = max(3, int(2 * min_distance + 1))
        peaks = (dist == _maximum(dist, size)) & (dist >= max(1.0, min_distance / 2)) & mask
        markers, n = label_components(peaks)
        surface = -dist
    if markers.max() == 0:
        markers, _ = label_components(mask)
    labels = watershed(surface, markers, mask)
    # foreground components that received no seed become objects of their own
    missing = mask & (labels == 0)
    if missing.any():
        extra, n_extra = label_components(missing)
        labels = np.where(extra > 0, extra + labels.max(), labels)
    # one renumbering drops the objects under min_size and the isolated specks
    counts = np.bincount(labels.ravel())
    keep = counts >= max(1, min_size)
    keep[0] = False
    if isolated_fraction > 0:
        keep[_isolated_specks(labels, np.where(keep, counts, 0), isolated_fraction,
                              min_objects=isolated_min_objects)] = False
    return _renumber(labels, keep)


def _ndi():
    """scipy.ndimage, imported on first use (0.2-0.3 s: the nuclei path does without it)."""
    from scipy import ndimage

    return ndimage


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """``ndi.label(mask)`` (4-connectivity; same numbering, raster order of each component's
    first pixel) for a 2-D mask, by OpenCV: several times faster, and no scipy import."""
    import cv2

    m = np.asarray(mask)
    if m.ndim != 2 or m.size == 0:
        return _ndi().label(m)
    n, labels = cv2.connectedComponents(np.ascontiguousarray(m, dtype=bool).view(np.uint8), connectivity=4,
                                        ltype=cv2.CV_32S)
    return labels, int(n) - 1


def _boxes(labels: np.ndarray, ids: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding box ``(row0, row1, col0, col1)`` (stop exclusive) of each label in ``ids``."""
    rows, cols = np.nonzero(np.isin(labels, ids))
    which = labels[rows, cols]
    out = []
    for i in ids:
        sel = which == i
        r, c = rows[sel], cols[sel]
        out.append((int(r.min()), int(r.max()) + 1, int(c.min()), int(c.max()) + 1))
    return out


#: the shipped nuclei model judges isolated specks only in images of at least this many objects (its card's
#: ``isolated_min_objects``). Lone objects under a quarter of the median area were true nuclei in every embryo
#: frame looked at (fifty-second session, the held-out benchmark movie of 140 frames: 14 such objects, all nuclei, in
#: frames of 4-85 objects, among them the 4-cell frame, read as 3 nuclei; each ~0.08-0.24 of the median: an early
#: embryo's nuclei differ several-fold in size), and debris in every simulated culture well (255-761 objects); the
#: three real reference frames give none either way. Chosen between those two groups' object counts, not fitted to a
#: metric
SPECKS_AMONG = 100


def judges_specks(objects: int, min_objects: int = 0) -> bool:
    """Whether an image of ``objects`` objects has its isolated specks judged (and dropped): at least
    ``min_objects`` of them (the postprocess's ``isolated_min_objects``), and 2 (a median of one object is itself)."""
    return int(objects) >= max(2, int(min_objects))


def drop_isolated_specks(labels: np.ndarray, fraction: float, gap: int = 2, min_objects: int = 0) -> np.ndarray:
    """Drop small objects that stand alone: specks of noise or debris, not nuclei.

    An object is dropped when its area is below ``fraction`` of the median object area of
    the image and no other object lies within ``gap`` pixels of it. Small objects pressed
    against others (a nucleus mostly hidden behind a nearer one in a projection) are kept.
    An image of fewer than ``min_objects`` objects keeps them all: the median of a few nuclei of
    several sizes (an early embryo's) is no typical size (the shipped nuclei card's
    ``isolated_min_objects``, :data:`SPECKS_AMONG`).

    Parameters
    ----------
    labels : ndarray
        ``HxW`` instance labels (0 = background).
    fraction : float
        Area threshold as a fraction of the median object area (e.g. 0.25: a quarter of the
        typical object, half its diameter).
    gap : int
        Pixels: another object closer than this makes an object "not isolated".
    min_objects : int
        Only an image of at least this many objects loses its isolated specks (0: any image of 2 or more).

    Returns
    -------
    ndarray
        Labels renumbered 1..N (uint16 if it fits), or ``labels`` unchanged when nothing is
        dropped.

    Examples
    --------
    >>> lab = np.zeros((40, 40), np.uint16)
    >>> lab[5:15, 5:15], lab[5:15, 25:35], lab[30:32, 30:32] = 1, 2, 3
    >>> int(drop_isolated_specks(lab, 0.25).max())
    2
    """
    labels = np.asarray(labels)
    specks, areas = isolated_specks(labels, fraction, gap, min_objects)
    return drop_labels(labels, specks, areas)


def isolated_specks(labels: np.ndarray, fraction: float, gap: int = 2,
                    min_objects: int = 0) -> tuple[list[int], np.ndarray]:
    """The labels :func:`drop_isolated_specks` drops, in increasing order, and the area of every label (index:
    label; 0 for the background), for a caller that decides itself what to do with them."""
    labels = np.asarray(labels)
    areas = np.bincount(labels.ravel())
    areas[0] = 0
    return _isolated_specks(labels, areas, fraction, gap, min_objects), areas


def drop_labels(labels: np.ndarray, ids, areas: np.ndarray) -> np.ndarray:
    """``labels`` without the objects ``ids``, the others renumbered 1..N in their order (uint16 if it fits);
    ``labels`` itself where ``ids`` is empty. ``areas``: each label's pixel count (``np.bincount`` of the labels)."""
    if not len(ids):
        return labels
    keep = areas > 0
    keep[0] = False
    keep[list(ids)] = False
    return _renumber(labels, keep)


#: segment membrane's pieces on the embryo's outer edge (:func:`drop_edge_pieces`): an object with more than half of
#: its outline within 4 px of the background around the embryo, and membrane (probability >= 0.5 within 2 px)
#: along less than this share of its outline, is dropped. On devolens' membrane renders (6 simulated embryos, 3 real
#: EPIC / AceTree tables, 1-579 cells, 227 frames; forty-seventh session) such pieces, on or beside the eggshell and in
#: the space between it and the cells, were 150 of the 244 false cells (64 in the 1-4 cell frames); the true cells
#: along the edge had membrane along 54-100 % of their outline, the pieces a median 0 %. The rule dropped 108 of the
#: false cells and no true cell there, nor in dim noisy, defocused, gamma 2 or saturated copies of four of those
#: renders (the true cells found the same in each stage; F1 at 1-4 cells 0.669 -> 0.806, at 5-15 0.933 -> 0.969,
#: later stages up by 0.004 or less)
EDGE_MEMBRANE = 0.25


def drop_edge_pieces(labels: np.ndarray, membrane: np.ndarray, fraction: float = EDGE_MEMBRANE,
                     level: float = 0.5) -> np.ndarray:
    """``labels`` (a membrane model's cells) without the pieces on the embryo's outer edge that no membrane outlines.

    A cell is outlined by membrane all round; the membrane model also reads as cells pieces of the eggshell and of
    the space between it and the cells (an early embryo's slice: a 1-cell frame got six of 39-624 px, a 2-cell one
    crescents as large as a cell). An object is dropped when more than half of its outline lies within 4 pixels of
    the background that reaches the image's edge (the outside of the embryo) and the ``membrane`` probability
    reaches ``level`` within 2 pixels along less than ``fraction`` of its outline. The others are renumbered 1..N in
    their order; ``labels`` comes back as it is when nothing is dropped (or ``fraction`` is 0).

    Examples
    --------
    >>> lab = np.zeros((60, 60), np.uint16)
    >>> mem = np.zeros((60, 60), np.float32)
    >>> lab[10:30, 10:30] = 1; mem[9:31, 9:31] = 1; mem[11:29, 11:29] = 0  # a cell, its membrane round it
    >>> lab[40:44, 40:50] = 2  # a piece with no membrane
    >>> int(drop_edge_pieces(lab, mem).max())
    1
    """
    import cv2

    labels = np.asarray(labels)
    n = int(labels.max()) if labels.size else 0
    if n == 0 or fraction <= 0:
        return labels
    objects = labels > 0
    around = ~cv2.dilate(objects.view(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    parts, _ = label_components(around)
    edge_ids = np.unique(np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1]]))
    edge_ids = edge_ids[edge_ids > 0]
    if edge_ids.size == 0:  # the embryo fills the image: no outside
        return labels
    outside = cv2.dilate(np.isin(parts, edge_ids).view(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    padded = np.pad(labels, 1, mode="edge")
    outline = objects & ((padded[:-2, 1:-1] != labels) | (padded[2:, 1:-1] != labels)
                         | (padded[1:-1, :-2] != labels) | (padded[1:-1, 2:] != labels))
    lined = _maximum((np.asarray(membrane) >= level).view(np.uint8), 5).astype(bool)
    total = np.bincount(labels[outline], minlength=n + 1)
    out = np.bincount(labels[outline & outside], minlength=n + 1)
    mem = np.bincount(labels[outline & lined], minlength=n + 1)
    drop = (total > 0) & (2 * out > total) & (mem < fraction * total)
    drop[0] = False
    if not drop.any():
        return labels
    keep = np.bincount(labels.ravel(), minlength=n + 1) > 0
    keep[0] = False
    keep &= ~drop
    return _renumber(labels, keep)


def _isolated_specks(labels: np.ndarray, areas: np.ndarray, fraction: float, gap: int = 2,
                     min_objects: int = 0) -> list[int]:
    """The labels :func:`drop_isolated_specks` drops; ``areas[label]`` is 0 for labels that do
    not count (background, objects already dropped: neither specks nor neighbours)."""
    present = areas > 0
    if not judges_specks(present.sum(), min_objects) or fraction <= 0:
        return []
    small = np.flatnonzero(present & (areas < fraction * np.median(areas[present])))
    if small.size == 0:
        return []
    kernel = np.ones((2 * gap + 1, 2 * gap + 1), np.uint8)
    specks = []
    for i, (r0, r1, c0, c1) in zip(small, _boxes(labels, small)):
        y0, x0 = max(r0 - gap, 0), max(c0 - gap, 0)
        if alone(labels[y0:r1 + gap, x0:c1 + gap], i, kernel, present):
            specks.append(int(i))
    return specks


def alone(region: np.ndarray, label: int, kernel: np.ndarray, present: np.ndarray | None = None) -> bool:
    """Whether object ``label`` of ``region`` has no other object within ``kernel``'s reach (a dilation of it):
    other objects are the labels ``present`` marks (``present[label]``), any other non-zero label when None."""
    import cv2

    others = region[cv2.dilate((region == label).view(np.uint8), kernel).astype(bool)]
    other = others != label
    other &= (others != 0) if present is None else present[others]
    return not np.any(other)


def instances_from_boundary_map(
    probs: np.ndarray,
    *,
    threshold: float = 0.5,
    min_size: int = 8,
    smooth: float = 1.0,
) -> np.ndarray:
    """Cell instances from a membrane (boundary) probability map.

    Cells are the regions enclosed by membranes: seeds are the connected components of
    "far from any membrane" (distance transform of the non-membrane area, thresholded at
    half its local maximum), grown by a watershed on the membrane probability. The
    background outside the embryo (the region touching the image border and darker than the
    membranes) is removed.

    Parameters
    ----------
    probs : ndarray
        ``HxW`` membrane probability (0-1), or ``2xHxW`` (membrane, inside-embryo) where the
        second map gives the probability of being inside the eggshell.
    threshold : float
        Membrane (and inside) probability threshold.
    min_size : int
        Cells smaller than this many pixels are dropped.
    smooth : float
        Gaussian sigma (pixels) applied before seeding.

    Returns
    -------
    ndarray
        ``HxW`` uint16 cell labels (membrane pixels belong to the nearest cell).
    """
    ndi = _ndi()
    probs = np.asarray(probs, dtype=np.float32)
    membrane = probs[0] if probs.ndim == 3 else probs
    inside = probs[1] if probs.ndim == 3 and probs.shape[0] > 1 else None
    mem_s = ndi.gaussian_filter(membrane, smooth) if smooth > 0 else membrane
    wall = mem_s >= threshold
    free = ~wall
    if inside is not None:
        region = (ndi.gaussian_filter(inside, smooth) if smooth > 0 else inside) >= threshold
        region = ndi.binary_fill_holes(region | wall) if region.any() else region
    else:
        # inside = everything enclosed by membranes: fill holes of the membrane mask
        region = ndi.binary_fill_holes(wall)
    if not region.any():
        return np.zeros(membrane.shape, dtype=np.uint16)
    dist = ndi.distance_transform_edt(free & region)
    dist_s = ndi.gaussian_filter(dist, 1.0)
    local_max = ndi.maximum_filter(dist_s, size=9)
    seeds = (dist_s >= 0.5 * local_max) & (dist_s >= 1.5) & free & region
    markers, n = ndi.label(seeds)
    if n == 0:
        return np.zeros(membrane.shape, dtype=np.uint16)
    labels = watershed(mem_s, markers, region)
    return relabel_sequential(labels, min_size=min_size)


def watershed(surface: np.ndarray, markers: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``skimage.segmentation.watershed(surface, markers, mask=mask)`` for 2-D arrays (connectivity 1).

    The same flooding (skimage's compiled priority-queue core, same neighbour order, hence
    the same labels: tested against skimage's function), called directly: importing
    ``skimage.segmentation``'s Python module also imports ``skimage.morphology`` and with it
    ``scipy.spatial`` and ``scipy.linalg``, 0.2-0.3 s of CPU per process that a video
    pipeline pays while its network runs. Falls back to skimage's function when the compiled
    core is missing or changed.

    Parameters
    ----------
    surface : ndarray
        ``HxW`` values to flood (low first).
    markers : ndarray
        ``HxW`` integer seeds (0 = none).
    mask : ndarray
        ``HxW`` bool: the pixels to label.

    Returns
    -------
    ndarray
        ``HxW`` labels, the dtype of ``markers`` (0 outside ``mask``).
    """
    global _WATERSHED_CORE
    surface, markers, mask = np.asarray(surface), np.asarray(markers), np.asarray(mask, dtype=bool)
    if _WATERSHED_CORE is None:
        try:
            from skimage.segmentation._watershed_cy import watershed_raveled

            _WATERSHED_CORE = watershed_raveled
        except ImportError:  # pragma: no cover - another scikit-image layout
            _WATERSHED_CORE = False
    if surface.ndim == 2 and _WATERSHED_CORE is not False and surface.shape == markers.shape == mask.shape:
        # what skimage.segmentation.watershed does: pad by one pixel (the border must be outside
        # the mask), neighbours at raveled offsets sorted by distance, seeds where output != 0
        image = _padded(surface, np.float64)
        output = _padded(markers * mask)
        flat_mask = _padded(mask, np.int8).ravel()
        width = image.shape[1]
        neighbours = np.array([-width, -1, 1, width], dtype=np.intp)
        strides = np.array(image.strides, dtype=np.intp) // image.itemsize
        try:
            _WATERSHED_CORE(image.ravel(), np.flatnonzero(output), neighbours, flat_mask, strides, 0.0,
                            output.ravel(), False)
            return output[1:-1, 1:-1].copy()
        except (TypeError, ValueError):  # pragma: no cover - the core's signature changed
            _WATERSHED_CORE = False
    from skimage.segmentation import watershed as skimage_watershed

    return skimage_watershed(surface, markers=markers, mask=mask)


_WATERSHED_CORE = None


def _padded(arr: np.ndarray, dtype=None) -> np.ndarray:
    """``np.pad(arr.astype(dtype), 1)`` for a 2-D array (zeros around), without np.pad's Python overhead."""
    out = np.zeros((arr.shape[0] + 2, arr.shape[1] + 2), dtype=arr.dtype if dtype is None else dtype)
    out[1:-1, 1:-1] = arr
    return out


def _disc(radius: int) -> np.ndarray:
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx * xx + yy * yy) <= r * r


# Fast 2-D filters (OpenCV), numerically equivalent to the scipy.ndimage calls they replace
# (same kernels and borders; float32), several times faster on video frames.
def _gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """``ndi.gaussian_filter(image, sigma)`` (truncate 4, mirror border) for a 2-D float32 array."""
    import cv2

    arr = np.asarray(image, dtype=np.float32)
    r = int(4.0 * float(sigma) + 0.5)
    if r < 1 or arr.ndim != 2:
        return _ndi().gaussian_filter(arr, sigma)
    return cv2.GaussianBlur(arr, (2 * r + 1, 2 * r + 1), float(sigma), sigmaY=float(sigma),
                            borderType=cv2.BORDER_REFLECT)


def _edt(mask: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance of each foreground pixel to the nearest background pixel (float32).

    Pixels beyond the image edge count as foreground, as in ``ndi.distance_transform_edt``.
    """
    import cv2

    m = np.ascontiguousarray(mask, dtype=bool)
    if m.all():  # no background pixel at all: scipy's answer (OpenCV's is undefined here)
        return _ndi().distance_transform_edt(m).astype(np.float32)
    return cv2.distanceTransform(m.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _maximum(image: np.ndarray, size: int) -> np.ndarray:
    """``ndi.maximum_filter(image, size=size)`` (square window) for a 2-D array."""
    import cv2

    return cv2.dilate(np.asarray(image), np.ones((int(size), int(size)), np.uint8))


def _opening(mask: np.ndarray, radius: int) -> np.ndarray:
    """``ndi.binary_opening(mask, structure=_disc(radius))`` (outside the image is background)."""
    import cv2

    k = _disc(radius).astype(np.uint8)
    m = np.asarray(mask, dtype=bool).view(np.uint8)
    er = cv2.erode(m, k, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.dilate(er, k, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


@lru_cache(maxsize=8)
def _pixel_coordinates(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Flat row and column index of every pixel (cached: video frames share one shape)."""
    rows, cols = np.indices(shape, dtype=np.float64)
    rows, cols = rows.ravel(), cols.ravel()
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


def object_table(labels: np.ndarray) -> pd.DataFrame:
    """Centroids and areas of the objects of a label image.

    Parameters
    ----------
    labels : ndarray
        ``HxW`` integer labels, 0 = background.

    Returns
    -------
    DataFrame
        Columns ``label`` (int), ``x``, ``y`` (float, pixels: column and row of the centroid)
        and ``area`` (int, pixels), one row per object, sorted by label.
    """
    return table_from_arrays(object_arrays(labels))


def object_table_resized(labels: np.ndarray, shape: tuple[int, int]) -> pd.DataFrame:
    """``object_table(resize_labels(labels, shape))``, computed at the size of ``labels``
    (see :func:`object_arrays`)."""
    return table_from_arrays(object_arrays(labels, shape))


def object_arrays(labels: np.ndarray, shape: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The columns of :func:`object_table` as arrays (``label``, ``x``, ``y``, ``area``), for
    the labels resized to ``shape`` (H, W) by nearest neighbour when given.

    Exact without resizing: each pixel of ``labels`` stands for the block of output pixels
    that the nearest-neighbour resize gives it (their count and coordinate sums per row and
    column), so a working-resolution label image gives full-resolution centroids and areas
    without touching every full-resolution pixel (4x fewer operations at half scale).
    """
    labels = np.asarray(labels)
    h, w = labels.shape
    if shape is None or (int(shape[0]), int(shape[1])) == (h, w):
        rows, cols = _pixel_coordinates(labels.shape)
        return _moments(labels, None, rows, cols)
    return _moments(labels, *_block_weights((h, w), (int(shape[0]), int(shape[1]))))


def table_from_arrays(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The DataFrame of :func:`object_arrays`' columns (typed columns, also when empty)."""
    import pandas as pd

    return pd.DataFrame({k: pd.Series(v, dtype=v.dtype) for k, v in columns.items()})


def _moments(labels: np.ndarray, weight: np.ndarray | None, wy: np.ndarray, wx: np.ndarray) -> dict[str, np.ndarray]:
    """Object columns from per-pixel weights: area = sum(weight), centroid = sum(wy or wx) / area."""
    n = int(labels.max()) if labels.size else 0
    if n == 0:
        return {"label": np.zeros(0, int), "x": np.zeros(0), "y": np.zeros(0), "area": np.zeros(0, int)}
    flat = labels.ravel()
    fg = np.flatnonzero(flat)  # objects only: the background is most of a frame
    if len(fg) < 0.7 * flat.size:
        flat = flat[fg]
        weight = None if weight is None else weight[fg]
        wy, wx = wy[fg], wx[fg]
    flat = flat.astype(np.intp, copy=False)
    area = np.bincount(flat, weights=weight, minlength=n + 1)
    sy = np.bincount(flat, weights=wy, minlength=n + 1)
    sx = np.bincount(flat, weights=wx, minlength=n + 1)
    present = np.nonzero(area[1:] > 0)[0] + 1
    a = area[present]
    return {"label": present.astype(int), "x": sx[present] / a, "y": sy[present] / a, "area": np.rint(a).astype(int)}


def intensity_sums(labels: np.ndarray, image: np.ndarray, channel: Channel = "auto", n: int | None = None,
                   counts: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Per label ``0..n`` (``n``: the labels' maximum when None): the sum of ``image``'s values under its pixels and
    how many were summed, for the objects' mean intensity (:func:`mean_intensities`). ``image`` (the labels' size) is
    read as the network read it, before any normalisation or resizing: a one-channel image's values as they are
    (uint8, uint16, floats...), a colour image's ``channel`` (``auto`` resolved by :func:`auto_channel`; ``mean`` and
    ``max`` of R, G, B per pixel). NaN and infinite values are left out (a registration's padding). ``counts``
    False: no count (None) where every value was summed, the objects' areas counting the same pixels (a second
    bincount saved: 20 % of the time).

    The background's pixels are not read: one boolean pass over the labels, then the objects' pixels only (0.55 ms
    for a 752 x 512 frame of 90 nuclei covering a third of it, where a bincount over every pixel took 3.7 ms)."""
    labels = np.asarray(labels)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.shape[:2] != labels.shape:
        raise DevolensError(f"labels of shape {labels.shape} do not match an image of shape {arr.shape}")
    n = (int(labels.max()) if labels.size else 0) if n is None else int(n)
    fg = labels > 0
    ids = labels[fg]  # (bincount takes the labels' unsigned type as it is: no copy to intp first)
    if arr.ndim == 3:  # a colour image: its channel's pixels under the objects only
        pick = colour_channel(arr, channel)
        if pick in ("mean", "max"):  # (as _one_channel reduces them: float32 per pixel)
            rgb = arr[fg][:, :3].astype(np.float32, copy=False)
            values = rgb.mean(axis=1) if pick == "mean" else rgb.max(axis=1)
        elif pick in ("red", "green", "blue"):
            values = arr[..., ("red", "green", "blue").index(pick)][fg]  # (one plane: 5x faster than all three)
        else:
            check_channel(pick)
    else:
        values = arr[fg]
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            ids, values, counts = ids[finite], values[finite], True
    sums = np.bincount(ids, weights=values, minlength=n + 1)[:n + 1]
    return sums, (np.bincount(ids, minlength=n + 1)[:n + 1] if counts else None)


def mean_intensities(sums: np.ndarray, counts: np.ndarray | None, labels: np.ndarray,
                     areas: np.ndarray | None = None) -> np.ndarray:
    """The mean intensity of the objects ``labels`` from :func:`intensity_sums`' ``sums`` and ``counts`` (None: the
    objects' ``areas``, in the order of ``labels``, their pixels as counted); float64, NaN for an object with no
    finite value."""
    labels = np.asarray(labels, dtype=np.intp)
    n = counts[labels] if counts is not None else np.asarray(areas, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, sums[labels] / np.maximum(n, 1), np.nan)


@lru_cache(maxsize=8)
def _block_weights(small: tuple[int, int], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel of a ``small`` label image: the count, row sum and column sum of the pixels of
    ``shape`` that the nearest-neighbour resize maps onto it (cached: frames share shapes)."""
    (h, w), (H, W) = small, shape
    rows = np.minimum(((np.arange(H) + 0.5) * h / H).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(W) + 0.5) * w / W).astype(np.int64), w - 1)
    row_n = np.bincount(rows, minlength=h).astype(np.float64)           # output rows per input row
    row_s = np.bincount(rows, weights=np.arange(H, dtype=np.float64), minlength=h)
    col_n = np.bincount(cols, minlength=w).astype(np.float64)
    col_s = np.bincount(cols, weights=np.arange(W, dtype=np.float64), minlength=w)
    out = (np.outer(row_n, col_n).ravel(), np.outer(row_s, col_n).ravel(), np.outer(row_n, col_s).ravel())
    for arr in out:
        arr.flags.writeable = False
    return out


# --------------------------------------------------------------------------- populations
def monotone_nondecreasing(values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares non-decreasing fit of a sequence (isotonic regression, pool adjacent violators).

    Parameters
    ----------
    values : ndarray
        1-D sequence (e.g. a population count per frame, in time order).
    weights : ndarray, optional
        Positive weight of each value (default all 1).

    Returns
    -------
    ndarray
        float64 sequence of the same length with ``out[i+1] >= out[i]`` and the smallest
        weighted squared distance to ``values``.
    """
    y = np.asarray(values, dtype=np.float64).ravel()
    n = len(y)
    if n == 0:
        return y.copy()
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    means: list[float] = []
    wsum: list[float] = []
    count: list[int] = []
    for yi, wi in zip(y, w):
        means.append(float(yi))
        wsum.append(float(wi))
        count.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            m2, w2, c2 = means.pop(), wsum.pop(), count.pop()
            m1, w1, c1 = means.pop(), wsum.pop(), count.pop()
            ww = w1 + w2
            means.append((m1 * w1 + m2 * w2) / ww)
            wsum.append(ww)
            count.append(c1 + c2)
    return np.repeat(np.asarray(means), count)


def smooth_populations(df: pd.DataFrame, letters: tuple[str, ...] = ("A", "E", "M", "P", "C", "D", "Z"),
                       own_total: bool = False) -> pd.DataFrame:
    """Monotone smoothing of per-frame population counts (populations do not fall).

    Each letter's column is replaced by its isotonic (non-decreasing) fit over the rows in
    their given order; ``total`` (when present) is the non-decreasing fit of the letters' sum.
    P is the exception: the P lineage ends (P4 becomes Z2/Z3), so ``P`` is fitted
    non-increasing instead. Empty counts (NaN: a frame without signal, as
    :meth:`~devolens.predict.population.PopulationPredictor.predict_batch` leaves its row) are left out of the fit
    and stay NaN, the other rows fitted as if they were absent (a NaN read as 0 in the sum pulled the totals before
    it down); so is the ``total`` of a row with a letter empty. Where a letter's column holds no count at all (a count
    model that regresses the total, or some letters, only), or there are no letters, ``total`` is fitted on its own;
    so it is with ``own_total`` (a count model's own total output, which its letters need not add up to).

    Parameters
    ----------
    df : DataFrame
        One row per frame in time order, one column per letter.

    Returns
    -------
    DataFrame
        A copy with smoothed (float) counts.
    """
    out = df.copy()
    for letter in letters:
        if letter not in out.columns:
            continue
        vals = out[letter].to_numpy(dtype=np.float64)
        out[letter] = _monotone_skipping_nan(vals, falling=letter == "P")
    present = [c for c in letters if c in out.columns]
    if "total" in out.columns and present and not own_total and all(out[c].notna().any() for c in present):
        # the total never falls either (P4 -> Z2/Z3 adds a cell): isotonic fit of the sum (none where a letter is empty)
        sums = out[present].sum(axis=1).to_numpy(dtype=np.float64, copy=True)
        sums[out[present].isna().any(axis=1).to_numpy()] = np.nan
        out["total"] = _monotone_skipping_nan(sums)
    elif "total" in out.columns:
        # no letters, or a letter without a single count (a count model that regresses the total, or some letters,
        # only): the total's own isotonic fit
        out["total"] = _monotone_skipping_nan(out["total"].to_numpy(dtype=np.float64))
    return out


def _monotone_skipping_nan(values: np.ndarray, falling: bool = False) -> np.ndarray:
    """:func:`monotone_nondecreasing` of ``values`` (non-increasing where ``falling``) over its numbers only: NaN
    entries stay NaN and take no part in the fit (without any, the fit of the whole sequence as it is)."""
    sign = -1.0 if falling else 1.0
    known = ~np.isnan(values)
    if known.all():
        return sign * monotone_nondecreasing(sign * values)
    out = np.full(len(values), np.nan)
    out[known] = sign * monotone_nondecreasing(sign * values[known])
    return out
