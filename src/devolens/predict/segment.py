"""Nucleus and membrane segmentation with the zoo models.

Example (with images of your own; not run by doctest)::

    from devolens.models import load
    nuclei = load("nuclei")                      # a NucleiPredictor
    res = nuclei.predict(frame)                  # frame: HxW or HxWx3, any size
    res.labels.shape == frame.shape[:2]          # uint16 instances at the input size
    res.centroids                                # DataFrame label, x, y, area (pixels), mean_intensity

Both predictors accept single-channel or RGB images of any size: the image is reduced to
one channel (the dominant channel of an RGB image, else the mean), its smooth background
removed where the card says so (``flatten``: uneven illumination, a bright backdrop),
normalised by robust percentiles, resized to the model's working resolution (``scale`` in the card),
padded to a multiple of 32 (or tiled when large), and the outputs are returned at the input
size.
"""

from __future__ import annotations

import collections
import copy
import functools
import itertools
import math
import numbers
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from devolens.errors import DevolensError, DevolensValueError, DiameterWarning, InputWarning
from devolens.predict._engine import ImageNetwork, batched, load_zoo_network, to_input_size
from devolens.predict.sizing import warn_untrusted
from devolens.predict.postprocess import (
    Prepared,
    _refuse_frames,
    check_stream,
    diameter_scale,
    drop_edge_pieces,
    drop_labels,
    image_array,
    instances_from_boundary_map,
    instances_from_probabilities,
    intensity_sums,
    isolated_specks,
    judges_specks,
    keep_largest_pieces,
    mean_intensities,
    object_arrays,
    resize_labels,
    shrinks,
    table_from_arrays,
    wrong_channels,
)

if TYPE_CHECKING:
    import pandas as pd
    import torch


def check_diameter(diameter, reference: float | None, takes: str = "a number of pixels, 'auto', 'each' or None", *,
                   label: str | None = None, um_per_pixel: float | None = None) -> float:
    """A user's typical object ``diameter`` (pixels) as a float, for a model whose card gives a
    ``reference`` diameter; ``takes`` says in the error what the option accepts. ``label``: how a diameter out of
    the model's range is named in the error (default ``diameter 35 px``; the CLI's ``--diameter 7um (35 px at 0.2 µm
    per pixel)``); ``um_per_pixel``: the diameter was given in micrometres, converted at that many per pixel: the
    range is said in micrometres too.

    Raises
    ------
    DevolensError
        Not a positive number (a string such as ``"35"`` or a bool is no number of pixels; ``"7um"`` is refused
        with how to convert it: only the CLI has a file to read the pixel size from), or the model has no
        reference diameter.
    """
    # numpy numbers are numbers; True is not 1 px and "35" is not 35 (the CLI parses its own text)
    if isinstance(diameter, (bool, np.bool_)) or not isinstance(diameter, (numbers.Real, np.integer, np.floating)):
        from devolens.io.stacks import microns_in

        if microns_in(diameter) is not None:  # "7um", "7 µm", "7 microns": the CLI's words for micrometres
            # the CLI converts "7um" with the input file's calibration; an array or a stream has none to read
            raise DevolensError(f"diameter {diameter!r} is in micrometres, and the library has no file to read the "
                                "pixel size from: give the diameter in pixels (micrometres divided by the micrometres "
                                "per pixel: 7 µm at 0.2 µm per pixel is 35; devolens.io.stacks.pixel_size(path) reads "
                                "a TIFF's calibration)")
        raise DevolensError(f"diameter must be {takes}, got {diameter!r}")
    diameter = float(diameter)
    if not (diameter > 0 and np.isfinite(diameter)):
        raise DevolensError(f"diameter must be a positive number of pixels, got {diameter}")
    if not reference:
        raise DevolensError("this model has no reference object diameter (card input.diameter): leave the diameter out")
    lo, hi = float(reference) / MAX_ENLARGE, float(reference) * MAX_SHRINK
    if not lo <= diameter <= hi:  # 1 px would enlarge a frame 35x (tens of GB); 5000 px shrink it to nothing
        how = f"enlarged {reference / diameter:.3g}x" if diameter < lo else f"shrunk {diameter / reference:.3g}x"
        pixels = f"{lo:.3g}-{hi:.4g} px"
        wanted = (f"{pixels} (the objects' width in the input's pixels)" if not um_per_pixel else
                  f"{_length(lo * um_per_pixel)}-{_length(hi * um_per_pixel)} µm ({pixels} at {um_per_pixel:g} µm "
                  "per pixel)")
        raise DevolensError(f"{label or f'diameter {diameter:g} px'}: the images would be {how} to bring such objects "
                            f"to the model's {float(reference):g} px; give a diameter of {wanted}")
    return diameter


def check_scale(scale, own: float | None = None, label: str | None = None, *, factor: float = 1.0) -> float:
    """A working ``scale`` (the working resolution relative to the input) as a float, for a model whose card works
    at scale ``own`` (None: no card to hold it to); ``label``: how a scale out of range is named in the error
    (default ``scale 100``); ``factor``: what the images are resized by on top of the scale (a diameter's: the card's
    reference diameter / the diameter given).

    Bounded as :func:`check_diameter` bounds a diameter: the images may be enlarged at most :data:`MAX_ENLARGE`
    times, or shrunk at most :data:`MAX_SHRINK` times, beyond the card's scale (``scale=100`` enlarged a movie frame
    to tens of GB; ``0.001`` shrinks it to nothing). With a ``factor``, both the scale and the scale times the factor
    are held to that range, and the error gives the scales that fit both (or to leave the scale out).

    Raises
    ------
    DevolensError
        Not a number > 0 (a :class:`~devolens.errors.DevolensValueError` for what is no number, such as ``"x"``:
        a ValueError before), or one out of that range.
    """
    from devolens.checks import is_number
    from devolens.errors import DevolensValueError

    what = "the working resolution relative to the input" + (f"; the model's own: {own:g}" if own else "")
    if not is_number(scale):
        raise DevolensValueError(f"scale must be a number > 0 ({what}), got {scale!r}")
    value = float(scale)
    if not (np.isfinite(value) and value > 0):
        raise DevolensError(f"scale must be a number > 0 ({what}), got {scale!r}")
    if own:
        lo, hi = own / MAX_SHRINK, own * MAX_ENLARGE
        within = lambda v: lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)  # noqa: E731 (the bounds, whatever the rounding)
        if factor == 1.0 and not within(value):
            how = f"enlarged {value / own:.3g}x" if value > hi else f"shrunk {own / value:.3g}x"
            raise DevolensError(f"{label or f'scale {value:g}'}: the images would be {how} beyond the model's own "
                                f"scale {own:g} (at most {MAX_ENLARGE:g}x enlarged, {MAX_SHRINK:g}x shrunk); give a "
                                f"scale of {lo:.3g}-{hi:.4g}, or the objects' diameter in pixels to bring another "
                                "magnification to the model's")
        if factor != 1.0 and not (within(value) and within(value * factor)):
            # a scale inside the plain range can still be out of it with the diameter's resizing on top: "give a
            # scale of 0.01-4" for scale 2 said nothing the user could act on
            used = value if not within(value) else value * factor
            how = f"enlarged {used / own:.3g}x" if used > hi else f"shrunk {own / used:.3g}x"
            # (never empty: a diameter's bounds), rounded inwards: both ends are taken
            fits = f"{_rounded(max(lo, lo / factor), 3, up=True):g}-{_rounded(min(hi, hi / factor), 4, up=False):g}"
            raise DevolensError(f"{label or f'scale {value:g}'}: the images would be {how} beyond the model's own "
                                f"scale {own:g} (at most {MAX_ENLARGE:g}x enlarged, {MAX_SHRINK:g}x shrunk; the "
                                f"diameter resizes them {factor:.3g}x on top of the scale); with this diameter give "
                                f"a scale of {fits}, or leave the scale out: the diameter alone brings the objects to "
                                "the model's size")
    return value


def _rounded(value: float, digits: int, up: bool) -> float:
    """``value`` (> 0) to ``digits`` significant digits, rounded up or down (a bound said in a message that the
    check takes; a bound already that short stays as it is)."""
    step = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return (math.ceil(value / step * (1 - 1e-9)) if up else math.floor(value / step * (1 + 1e-9))) * step


def _length(value: float) -> str:
    """A length for an error's words: 3 significant digits, and whole past a thousand (150668, not 1.51e+05)."""
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


#: ``diameter`` may bring images to the model's reference size by enlarging them at most this much...
MAX_ENLARGE = 8.0
#: ...or shrinking them at most this much (see :func:`check_diameter`)
MAX_SHRINK = 50.0


#: post-processing options that are fractions of the probability range, and those that are sizes or counts
_FRACTIONS = ("threshold", "seed_threshold")
_SIZES = ("min_distance", "min_size", "smooth", "isolated_fraction", "isolated_min_objects")
#: every post-processing option of the segmentation predictors (``postprocess={...}``)
POSTPROCESS_KEYS = (*_FRACTIONS, *_SIZES, "split_seeds")


def _postprocess_dict(value) -> dict:
    """``postprocess`` as a dict of its own (None: empty); anything but a mapping of options is refused."""
    import collections.abc

    if value is None:
        return {}
    if not isinstance(value, collections.abc.Mapping):
        from devolens.checks import shown
        from devolens.errors import DevolensValueError

        raise DevolensValueError("postprocess must be a dict of post-processing options such as {'threshold': 0.6} "
                                 f"(the options: {', '.join(POSTPROCESS_KEYS)}), got {shown(value)}")
    return dict(value)


def _check_user_postprocess(options, keys: Sequence[str], predictor: str) -> dict:
    """The post-processing ``options`` a user gives (``load(..., postprocess={...})``) as a dict, each key one that
    ``predictor`` uses (``keys``): a misspelt key (``treshold``) was ignored without a word. (A card's own keys are
    not held to this: an exported card may carry its training's validation options.)"""
    import difflib

    options = _postprocess_dict(options)
    for key in options:
        if key in keys:
            continue
        if key in POSTPROCESS_KEYS:  # another predictor's (split_seeds is the nuclei's)
            raise DevolensError(f"postprocess {key!r} is not used by the {predictor} (its options: "
                                f"{', '.join(keys)})")
        hint = difflib.get_close_matches(str(key), list(keys), n=1)
        raise DevolensError(f"unknown postprocess option {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                            + f"; the options: {', '.join(keys)}")
    return options


def _check_postprocess(options: dict) -> None:
    """Refuse post-processing values no image can be segmented with (a ``threshold`` of 2 finds nothing, silently;
    ``True`` would be read as 1). Keys a predictor does not use are left alone: an exported card may carry its
    training's validation options."""
    from devolens.checks import is_number

    for key in _FRACTIONS:
        if key in options and not (is_number(options[key]) and 0 <= float(options[key]) <= 1):
            raise DevolensError(f"postprocess {key} must be a probability from 0 to 1, got {options[key]!r}")
    for key in _SIZES:
        if key in options and not (is_number(options[key]) and np.isfinite(float(options[key]))
                                   and float(options[key]) >= 0):
            raise DevolensError(f"postprocess {key} must be a number >= 0, got {options[key]!r}")
    if "edge_membrane" in options and not (is_number(options["edge_membrane"])
                                           and 0 <= float(options["edge_membrane"]) <= 1):
        raise DevolensError("postprocess edge_membrane must be a share of an outline from 0 to 1 (0 keeps every "
                            f"piece on the embryo's edge), got {options['edge_membrane']!r}")
    if "split_seeds" in options and not isinstance(options["split_seeds"], (bool, np.bool_)):
        # "False" (from a YAML or JSON typo) is a true value: every interior blob would be split
        raise DevolensError(f"postprocess split_seeds must be true or false, got {options['split_seeds']!r}")


#: what the segmentation predictors take as one image (the words of their errors)
IMAGE_TAKES = "an HxW, HxWx3 or channels-first 3xHxW array (NumPy, or a PyTorch tensor), or an image file's path"


def _given(image) -> str:
    """What a user gave as an image, in an error's words: an array's shape, else its type and value."""
    from devolens.checks import shown

    if isinstance(image, np.ndarray):
        return f"an array of shape {image.shape}" + ("" if image.dtype.kind in "biuf" else f" and dtype {image.dtype}")
    if image is None:
        return "None"
    if isinstance(image, (bytes, bytearray)):
        return f"bytes {shown(image)} (a path is a str or a Path: decode it)"
    return f"a {type(image).__name__} ({shown(image)})"


def _image_in(image) -> np.ndarray | Prepared:
    """One image of a stream as the predictors take it: :func:`~devolens.predict.postprocess.image_array`'s (a path
    read, a tensor or a channels-first array laid out) as an array of numbers with 2 or 3 axes; a
    :class:`~devolens.predict.postprocess.Prepared` item as it is. Anything else is refused saying what was given
    (``None`` or a path's bytes read as an array of shape ``()``)."""
    image = image_array(image)
    if isinstance(image, Prepared):
        return image
    try:
        arr = np.asarray(image)
    except (TypeError, ValueError):  # nested lists of different lengths, objects numpy cannot read
        arr = None
    if arr is None or arr.dtype.kind not in "biuf" or arr.ndim not in (2, 3):
        several = " (several images: predict_batch or predict_iter)" if arr is not None and arr.ndim == 4 else ""
        raise DevolensError(f"expected one image, {IMAGE_TAKES}; got {_given(image)}{several}")
    return arr


def _frame_in(image) -> np.ndarray | Prepared:
    """One image of a stream as :func:`_image_in` takes it, refused where ``predict`` would refuse it before any
    work on it (before a population predictor's resizing, too): under 2 x 2 pixels, or with other than 1, 3 or 4
    channels (a :class:`~devolens.predict.postprocess.Prepared` item's image alike)."""
    image = _image_in(image)
    arr = image.image if isinstance(image, Prepared) else image
    if np.ndim(arr) not in (2, 3):  # (a Prepared item's: the others were checked by _image_in)
        raise DevolensError(f"expected one image, {IMAGE_TAKES}; got {_given(arr)}")
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise DevolensError(f"image too small: {arr.shape[0]} x {arr.shape[1]} pixels (at least 2 x 2)")
    if arr.ndim == 3 and arr.shape[2] not in (1, 3, 4):  # (to_single_channel's refusal, before any work)
        if arr.shape[0] < min(arr.shape[1:]):  # (T, H, W): frames given as a list of arrays, read as one
            _refuse_frames(arr)
        raise DevolensError(wrong_channels(arr.shape))
    return image


def _checked(images: Iterable, failed: list, one: bool = False, check: Callable | None = None) -> Iterator:
    """The items of a stream through ``check`` (default :func:`_frame_in`), in order. An item it refuses ends the
    stream: its error, naming its position (0: the first image) and, for a path, the file (``one``: ``predict``'s
    single image, named as before), is raised at once where it is the first item, else put in ``failed`` for the
    stream's reader to raise once the results of the images before it are out."""
    import os

    check = _frame_in if check is None else check
    for i, item in enumerate(images):
        try:
            image = check(item)
        except DevolensError as exc:
            if one:
                raise
            path = exc.path if exc.path is not None else item if isinstance(item, (str, os.PathLike)) else None
            cls = type(exc) if type(exc) in (DevolensError, DevolensValueError) else DevolensError
            err = cls(f"image {i} of the stream: {exc.message}", path)
            if i == 0:
                raise err from None
            failed.append(err)
            return
        yield image


def _several(image) -> bool:
    """Whether ``image`` (given to ``predict``) is a list or tuple of images (arrays, tensors or paths), not one
    image as nested lists of numbers."""
    import os

    if not isinstance(image, (list, tuple)) or not image:
        return False
    return any(isinstance(item, (str, os.PathLike, Prepared)) or len(getattr(item, "shape", None) or ()) >= 2
               for item in image)


class _AtInputSize:
    """A map at the working resolution brought to the input ``shape`` when first asked for (a result's lazy
    ``probability``, or its mask: the map at or above ``threshold``). A module-level callable where a lambda was, so
    that a result pickles (Dask, joblib and multiprocessing send results between processes by pickle: "Can't pickle
    local object") and stays lazy there: the working map travels, not the map at the input size."""

    def __init__(self, working: np.ndarray, shape: tuple[int, int], threshold: float | None = None):
        self.working, self.shape, self.threshold = working, tuple(shape), threshold

    def __call__(self) -> np.ndarray:
        full = to_input_size(self.working[None], self.shape)[0]
        return full.astype(np.float32) if self.threshold is None else full >= self.threshold


class SegmentationResult:
    """Output of a segmentation predictor for one image (all arrays at the input size).

    Attributes
    ----------
    probability : ndarray
        ``HxW`` float32 (0-1): probability of a nucleus (NucleiPredictor) or of a membrane
        (MembranePredictor). Computed on first access (resized from the network's working
        resolution), so pipelines that only need labels do not pay for it.
    labels : ndarray
        ``HxW`` uint16 instance labels (0 = background; nuclei or cells 1..N); uint32 when N > 65535.
    centroids : DataFrame
        ``label, x, y, area, mean_intensity``: centroid column/row (pixels), area (pixels) and the mean of the
        input image's values under the object (the channel the network read, as the image holds them: uint8,
        uint16 or float values, before any normalisation or resizing; NaN for an object of no finite value) per
        object. ``mean_intensity`` is absent from results made by hand without it.
    objects : dict of ndarray
        The same columns as arrays (what the streaming commands write; no pandas needed).
    mask : ndarray
        ``HxW`` bool: nuclei (labels > 0) or membranes (probability >= threshold).
    extra : dict
        What else is known of the image's segmentation: ``scale`` (the working scale), ``color_read`` (the channel
        of a colour image the network read, ``red``, ``green``, ``blue``, ``mean`` or ``max``, as ``segment.json``'s
        ``color_read``; absent for a grey image), ``estimate`` (``diameter="auto"``/``"each"``), ``no_structure``
        and ``no_signal`` (True: nothing above the image's noise, or no signal at all, each with a
        :class:`~devolens.errors.NoSignalWarning`), ``specks``, ``isolated_dropped`` (the input-pixel areas of the
        lone small objects dropped as specks), ``isolated_kept`` (those of the lone small objects an image of fewer
        objects than the postprocess's ``isolated_min_objects`` kept) and ``blocks`` (a giant image's block count)
        where they apply.
    """

    def __init__(self, probability, labels: np.ndarray, centroids, mask=None,
                 extra: dict[str, Any] | None = None):
        self._probability = probability  # ndarray, or a callable returning it
        self.labels = labels
        # a DataFrame, or the columns as arrays (label, x, y, area): the DataFrame is made on
        # first access (streaming commands write the arrays and never need pandas)
        self._centroids = centroids
        self._mask = mask
        self.extra = dict(extra or {})

    def __getstate__(self) -> dict:
        """Pickled (sent to or from a Dask, joblib or multiprocessing worker) with its lazy maps as they are where
        they pickle (:class:`_AtInputSize`), computed where they do not (a giant image's, assembled block by block
        from its run: they would carry the predictor and the image with them)."""
        state = dict(vars(self))
        for key in ("_probability", "_mask"):
            if callable(state[key]) and not isinstance(state[key], _AtInputSize):
                state[key] = getattr(self, key[1:])
        return state

    @property
    def probability(self) -> np.ndarray:
        if callable(self._probability):
            self._probability = self._probability()
        return self._probability

    @property
    def centroids(self) -> pd.DataFrame:
        if isinstance(self._centroids, dict):
            self._centroids = table_from_arrays(self._centroids)
        return self._centroids

    @property
    def objects(self) -> dict[str, np.ndarray]:
        """The columns of :attr:`centroids` as arrays (``label``, ``x``, ``y``, ``area``, ``mean_intensity``)."""
        if isinstance(self._centroids, dict):
            return self._centroids
        return {k: self._centroids[k].to_numpy() for k in ("label", "x", "y", "area", "mean_intensity")
                if k in self._centroids}

    def add_column(self, name: str, values: np.ndarray) -> None:
        """Add a per-object column (one value per object, in the objects' order) after the others."""
        if isinstance(self._centroids, dict):
            self._centroids = {**self._centroids, name: np.asarray(values)}
        else:
            self._centroids = self._centroids.assign(**{name: np.asarray(values)})

    @property
    def mask(self) -> np.ndarray:
        if callable(self._mask):
            self._mask = self._mask()
        if self._mask is None:
            self._mask = self.labels > 0
        return self._mask

    @property
    def count(self) -> int:
        """Number of objects found."""
        return int(len(self._centroids["label"]))


def _uint_labels(labels: np.ndarray) -> np.ndarray:
    """Instance labels as uint16, or uint32 when there are 65536 objects or more (a giant image)."""
    return labels.astype(np.uint16 if labels.size == 0 or int(labels.max()) < 65536 else np.uint32, copy=False)


def _input_labels(labels_w: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Working-resolution labels brought to the input's ``shape``, and their objects (label, x, y, area).

    Shrunk (a working image larger than the input: a small ``diameter``), nearest-neighbour sampling can cut an
    object's thin neck and leave its label in separate pieces: each label then keeps its largest piece
    (:func:`~devolens.predict.postprocess.keep_largest_pieces`) and the objects are measured on the labels as
    written. Enlarged, nothing can be cut, and the objects are measured at the working resolution (the same
    figures, fewer pixels to visit)."""
    labels = resize_labels(labels_w, shape)
    if not shrinks(labels_w.shape, shape):
        return _uint_labels(labels), object_arrays(labels_w, shape)
    labels = _uint_labels(keep_largest_pieces(labels))
    return labels, object_arrays(labels)


def _measured(result: SegmentationResult, image: np.ndarray, channel: str = "auto") -> SegmentationResult:
    """``result`` with its objects' ``mean_intensity``: the mean of ``image``'s values under each object's labels,
    in the channel the network read (``channel``, of a colour image; see
    :func:`~devolens.predict.postprocess.intensity_sums`), before any normalisation or resizing."""
    objects = result.objects
    if not len(objects["label"]):
        means = np.zeros(0)
    else:
        # (the objects' areas are their pixels in the labels: counted once, by the objects' table)
        sums, counts = intensity_sums(result.labels, image, channel, counts=False)
        means = mean_intensities(sums, counts, objects["label"], objects["area"])
    result.add_column("mean_intensity", means)
    return result


def _noted(result: SegmentationResult, found: dict) -> SegmentationResult:
    """``result`` with what its frame's preparation ``found`` (:class:`~devolens.predict.postprocess.Prepared`'s
    ``extra``, e.g. ``specks``) added to its ``extra``."""
    result.extra.update(found)
    return result


class Told(NamedTuple):
    """A warning a predictor's stream leaves to the public method reading it (``predict``, ``predict_batch``,
    ``predict_iter``), which issues it through :func:`_issued`, so that it names the user's line (issued inside the
    stream, it named this module's, or a ``list()`` caller's here): a warning's words (``text``, of the class
    ``warning``: an :class:`~devolens.errors.InputWarning`, the :class:`~devolens.errors.DiameterWarning` of a size
    note, :class:`~devolens.predict.notes.SizeWatch`, or a :class:`~devolens.errors.NoSignalWarning` for images
    without structure, :func:`_no_structure_told`), or the diameter estimates that
    :func:`~devolens.predict.sizing.warn_untrusted` judges (``estimates``, of ``what`` objects, ``each``: one per
    image)."""

    text: str | None = None
    estimates: list | None = None
    what: str = "nuclei"
    each: bool = False
    warning: type = InputWarning


def _issued(stream: Iterable) -> Iterator:
    """The items of a predictor's stream (its ``_run``) but its :class:`Told` ones, which are issued here as
    warnings (an :class:`~devolens.errors.InputWarning`, or :func:`~devolens.predict.sizing.warn_untrusted`'s
    :class:`~devolens.errors.DiameterWarning`) naming the line that called the public method reading this: that
    method reads it with no frame of its own between (``list(_issued(...))`` or ``yield from _issued(...)``; the
    segmentation and population predictors' ``predict``, ``predict_batch`` and ``predict_iter``)."""
    for item in stream:
        if not isinstance(item, Told):
            yield item
        elif item.text is not None:  # stacklevel: here (1), the public method (2), its caller (3)
            warnings.warn(item.text, item.warning, stacklevel=3)
        else:  # (counted from inside warn_untrusted: one more)
            warn_untrusted(item.estimates, item.what, each=item.each, stacklevel=4)


def _images_at(positions: Sequence[int], total: int) -> str:
    """``"2 of 9 images (positions 3, 7, from 0) hold"``: the images at ``positions`` of ``total`` read, with the verb
    of a library warning on them (:func:`_no_structure_told`, :func:`_no_signal_told`); ten positions at most."""
    n = len(positions)
    shown = ", ".join(str(p) for p in positions[:10]) + (f", ... ({n} in all)" if n > 10 else "")
    return f"{n} of {total} images (position{'s' if n > 1 else ''} {shown}, from 0) {'holds' if n == 1 else 'hold'}"


def _no_structure_told(positions: Sequence[int], total: int, what: str) -> Told:
    """The :class:`~devolens.errors.NoSignalWarning` (as a :class:`Told`) for the images at ``positions`` (from 0,
    of ``total`` read) in which nothing stood out from their noise, given no ``what`` (the library's counterpart of
    ``devolens segment``'s note on them)."""
    from devolens.errors import NoSignalWarning

    n = len(positions)
    if total == 1:
        who = "the image holds nothing that stands out from its noise (an empty field, a camera's dark frame)"
    else:
        who = (f"{_images_at(positions, total)} nothing that stands out from {'its' if n == 1 else 'their'} noise "
               f"({'an empty field, a dark frame' if n == 1 else 'empty fields, dark frames'})")
    whose = "its result's" if n == 1 else "their results'"
    return Told(text=f"{who}: given no {what} ({whose} extra['no_structure'] True), where the network reads noise "
                     f"as {what}; if {what} are visible there, they are too faint or noisy to segment (bin or denoise)",
                warning=NoSignalWarning)


def _holds_no_signal(image: np.ndarray) -> bool:
    """Whether a frame holds no signal: one grey level throughout, or not a single finite pixel (population's
    :func:`~devolens.predict.population.is_flat`, by which ``segment`` notes such a frame: ``holds no signal``).
    That test is asked only of a frame whose sample of every 32nd pixel is flat too (each channel's finite values
    within a millionth of their magnitude, as it judges): its module imports pandas, which a stream of ordinary frames
    never needs here."""
    a = np.asarray(image)
    if a.ndim < 2 or a.size == 0 or a.dtype.kind not in "biuf":
        return False
    sample = a[::32, ::32].astype(np.float64)
    sample = sample.reshape(sample.shape[0], sample.shape[1], -1)
    for c in range(sample.shape[2]):
        values = sample[..., c][np.isfinite(sample[..., c])]
        if values.size and values.max() - values.min() > 2e-6 * max(abs(values.max()), abs(values.min())):
            return False
    from devolens.predict.population import is_flat

    return is_flat(a)


def _no_signal_told(positions: Sequence[int], total: int, what: str) -> Told:
    """The :class:`~devolens.errors.NoSignalWarning` (as a :class:`Told`) for the images at ``positions`` (from 0,
    of ``total`` read) that hold no signal (:func:`_holds_no_signal`: a black or blank frame, an all-NaN one): the
    library's counterpart of ``devolens segment``'s note ``holds no signal``."""
    from devolens.errors import NoSignalWarning

    n = len(positions)
    who = "the image holds" if total == 1 else _images_at(positions, total)
    whose = "its result's" if n == 1 else "their results'"
    return Told(text=f"{who} no signal (one grey level throughout, or no finite pixel: a black or blank frame): "
                     f"nothing to segment, any {what} found there are noise ({whose} extra['no_signal'] True); "
                     "`devolens curate frames` flags such frames", warning=NoSignalWarning)


class _Done:
    """An already computed result with the two methods of a Future that predict_iter uses."""

    def __init__(self, value):
        self._value = value

    def done(self) -> bool:
        return True

    def result(self):
        return self._value

    def cancel(self) -> bool:
        return False


class _OwnDiameter:
    """The default of ``predict``'s, ``predict_batch``'s and ``predict_iter``'s ``diameter``: the predictor's own
    (``load``'s, or the one assigned to its :attr:`~_SegmentationPredictor.diameter` since)."""

    def __repr__(self) -> str:
        return "<the predictor's own>"


#: ``diameter`` left out of a call: the predictor's own
OWN_DIAMETER = _OwnDiameter()


def none_word(diameter):
    """``diameter`` with the word ``"none"`` (any case, spaces around it) read as None: the command's
    ``--diameter none`` given to the library (``load(..., diameter="none")``, ``predict(image, diameter="none")``),
    which refused it as no number of pixels. Any other value as it is."""
    return None if isinstance(diameter, str) and diameter.strip().lower() == "none" else diameter


class _SegmentationPredictor:
    """Common machinery: preprocessing, batching, streaming, ``from_zoo``."""

    default_head = "three_class"
    #: the heads (card ``output.head``) this predictor reads the network's output by
    heads: tuple[str, ...] = ("three_class",)
    #: the post-processing options this predictor uses (``postprocess={...}``)
    postprocess_keys: tuple[str, ...] = POSTPROCESS_KEYS
    mask_is_labels = False  # the result's mask is a map of its own (membranes), not labels > 0
    # frames with no structure above their noise get no objects (_lacks_structure, _nothing): a network that reads
    # noise as objects (the membrane model outlines thousands of "cells" in a camera's dark frame; the nuclei model,
    # its noise enlarged by a magnification read off that noise, hundreds of nuclei in an empty field) says so; nor
    # do such frames judge the magnification (sizing.estimate_diameter)
    checks_structure = False
    # ... judged by lacks_structure's blob test too (blobs=True: a lone nucleus in a noisy field is structure)
    structure_blobs = False
    size_objects = "bright"  # what diameter="auto" counts before it trusts an image (sizing.count_objects)
    # what diameter_check holds a diameter given in pixels to: "auto", the diameter diameter="auto" would segment
    # with; "cells", the objects' own estimated diameter (the membrane model's: its keep band is wide)
    diameter_checked_by = "auto"
    # whether a stream's input is judged for the InputWarning (notes.InputWatch), and its images without structure
    # said in a NoSignalWarning (_no_structure_told): off in the view of the nuclei model that the population
    # predictor's stream reads its frames through (its own watch judges the frames as given, and its own
    # NoSignalWarning says which hold no signal)
    judges_input = True
    #: the postprocess values used where neither the card nor ``postprocess={...}`` gives one (:meth:`postprocess_for`)
    postprocess_fallbacks: dict = {}
    #: objects under this many of the input's own pixels (``segment --min-size``: cellpose's unit) are dropped from
    #: the objects found (the postprocess's working-pixel ``min_size`` still clears its seeds and noise); None: none
    min_size_input: float | None = None
    #: a list :meth:`_without_small` adds each image's count of objects dropped under :attr:`min_size_input` to
    #: (``segment``'s note on a run that kept nothing), or None
    min_size_dropped: list[int] | None = None
    #: whether :meth:`predict_batch` and :meth:`predict_iter` read each colour image as :meth:`predict` reads it alone
    #: (the membrane model's channel of membranes: :meth:`MembranePredictor._own_channels`); ``devolens segment``
    #: turns it off: it makes that choice itself (the same rule), before it counts its frames for its colour notes
    reads_own_channels = True

    def __init__(
        self,
        model: torch.nn.Module | None,
        *,
        in_channels: int = 1,
        scale: float = 1.0,
        multiple: int = 32,
        head: str | None = None,
        channel: str = "auto",
        percentiles: Sequence[float] = (1.0, 99.8),
        flatten: float = 0.0,
        outliers: float = 0.0,
        batch_size: int = 8,
        fast: bool = True,
        backend: str = "torch",
        tile: int | None = 1024,
        overlap: int = 64,
        device: str = "cpu",
        postprocess: dict | None = None,
        card: dict | None = None,
        crop: bool = True,
        tta: int = 1,
        precision: str = "auto",
        int8_params: dict | None = None,
        onnx_graphs: tuple[Path, dict] | None = None,
        model_loader: Callable[[], Any] | None = None,
        diameter: float | str | None = None,
        diameter_ref: float | None = None,
        size_model: Any = None,
        auto_keep: Sequence[float] | None = None,
        trained_zooms: Sequence[float] | None = None,
        size_flatten: float = 0.0,
        size_backdrop: Any = None,
        block_pixels: float | None = None,
    ):
        self.head = head or self.default_head
        if self.head not in self.heads:  # another name was read as a sigmoid head: other results, without a word
            raise DevolensError(f"head must be one of {', '.join(map(repr, self.heads))} (how the network's output "
                                f"is read; a card's output.head), got {self.head!r}")
        self.diameter_ref = None if diameter_ref is None else float(diameter_ref)
        self.size_model = size_model  # devolens.predict.sizing.SizeModel, for diameter="auto"
        # diameter="auto": estimates inside this band leave the images as they are (None: always resized to m0)
        self.auto_keep = None if auto_keep is None else (float(auto_keep[0]), float(auto_keep[1]))
        # the magnifications the network was trained on (notes and records; default: the keep band)
        zooms = auto_keep if trained_zooms is None else trained_zooms
        self.trained_zooms = None if zooms is None else (float(zooms[0]), float(zooms[1]))
        # the size model reads images flattened with a disc this many working px wide (0: unflattened), as fitted
        self.size_flatten = float(size_flatten)
        # images on a bright uneven backdrop: read by a second size model on flattened images (sizing.BackdropReader)
        self.size_backdrop = size_backdrop
        from devolens.predict.sizing import wants_auto

        diameter = none_word(diameter)  # ("none": the command's word for None)
        self.auto = wants_auto(diameter, size_model, self.diameter_ref)
        # diameter="each": every image's magnification estimated on its own (unrelated images), not one per stream
        self.auto_each = self.auto and diameter.strip().lower() == "each"
        if self.auto:
            diameter = None
        self.last_estimate = None  # the DiameterEstimate of the last diameter="auto" call (last image with "each")
        self.estimates: list = []  # diameter="each": the DiameterEstimate of each image of the last call
        # per setting (diameter, scale), how many calls' size look (SizeWatch) found nothing to say: after
        # notes.SIZE_CLEAN_CALLS such calls that setting's later calls are not judged (a plugin calling predict once
        # per frame paid the size model's reading, about the segmentation's own cost, on every call); shared by the
        # views of this predictor (a per-call diameter's)
        self._size_clean: dict = {}
        # (the property's own value: assigning diameter, after this, sets the predictor's scale too)
        self._diameter = None if diameter is None else check_diameter(diameter, self.diameter_ref)
        # the card's own scale, that a scale of the user's is held to (a predictor built without a card: none)
        from devolens.checks import is_number

        inp = card.get("input") if isinstance(card, dict) else None
        own = inp.get("scale", 1.0) if isinstance(inp, dict) else None
        own = float(own) if is_number(own) and np.isfinite(float(own)) and float(own) > 0 else None
        self.own_scale = own  # (None: no card; diameter="auto"'s estimates are held to it too: _estimated_scale)
        if own is not None and self.diameter is not None:  # both: the scale and their product bounded
            factor = diameter_scale(1.0, self.diameter_ref, self.diameter)
            label = f"scale {float(scale):g} with diameter {self.diameter:g} px" if is_number(scale) else None
            self.card_scale = check_scale(scale, own, label, factor=factor)
        else:
            self.card_scale = check_scale(scale, own)  # the working scale at the training magnification
        scale = diameter_scale(self.card_scale, self.diameter_ref, self.diameter)  # another magnification
        activation = {"three_class": "softmax", "three_class_distance": "softmax_distance"}.get(self.head, "sigmoid")
        self.network = ImageNetwork(
            model, in_channels=in_channels, scale=scale, multiple=multiple, tile=tile, overlap=overlap, batch_size=batch_size,
            fast=fast, backend=backend, channel=channel, percentiles=percentiles, flatten=flatten, outliers=outliers,
            activation=activation,
            device=device, crop=crop, tta=tta, precision=precision, int8_params=int8_params, onnx_graphs=onnx_graphs,
            model_loader=model_loader,
        )
        self.postprocess_options = _postprocess_dict(postprocess)
        _check_postprocess(self.postprocess_options)
        self.card = copy.deepcopy(dict(card or {}))  # its own: the caller's dict may change later
        from devolens.predict.blocks import BLOCK_PIXELS

        # working pixels above which an image is segmented block by block (bounded memory); inf: never
        self.block_pixels = BLOCK_PIXELS if block_pixels is None else float(block_pixels)
        if not self.block_pixels > 0:
            raise DevolensError(f"block_pixels must be > 0 working pixels (inf: never by blocks), got {block_pixels}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_zoo(cls, folder: str | Path, card: dict, **options: Any):
        """Build the predictor from a zoo folder and its card.

        Parameters
        ----------
        folder : str or Path
            ``src/devolens/models/zoo/<name>``, holding ``weights.safetensors``.
        card : dict
            The model card (``architecture``, ``input``, ``preprocessing``, ``postprocess``).
        **options
            Override any constructor option (``batch_size``, ``fast``, ``precision``,
            ``backend``, ``device``, ``tile``, ``scale``, ``channel``, ``postprocess``...).
        """
        inp = card.get("input", {})
        pre = card.get("preprocessing", {})
        kwargs: dict[str, Any] = dict(
            in_channels=int(card["architecture"].get("in_channels", 1)),
            scale=float(inp.get("scale", 1.0)),
            # the network's stride (2**encoder_depth): padding and the content box on its grid
            multiple=int(inp.get("multiple") or 2 ** int(card["architecture"].get("encoder_depth", 5))),
            tile=inp.get("tile", 1024),
            head=card.get("output", {}).get("head"),
            channel=pre.get("channel", "auto"),
            percentiles=tuple(pre.get("percentiles", (1.0, 99.8))),
            flatten=float(pre.get("flatten", 0.0)),
            outliers=float(pre.get("outliers", 0.0)),
            postprocess=dict(card.get("postprocess", {})),
            card=card,
            int8_params=card.get("int8", {}).get("activations"),
            onnx_graphs=(Path(folder), card) if isinstance(card.get("onnx"), dict) else None,
            diameter_ref=(inp.get("diameter") or {}).get("reference"),
        )
        auto = ((inp.get("diameter") or {}).get("auto") or {})
        if auto.get("file") and (Path(folder) / auto["file"]).is_file():
            from devolens.predict.sizing import BackdropReader, SizeModel

            kwargs["size_model"] = SizeModel.load(Path(folder) / auto["file"])
            kwargs["auto_keep"] = tuple(auto["keep"]) if auto.get("keep") else None
            kwargs["trained_zooms"] = tuple(auto["trained"]) if auto.get("trained") else None
            kwargs["size_flatten"] = float(auto.get("flatten") or 0.0)
            kwargs["size_backdrop"] = BackdropReader.from_card(folder, auto.get("backdrop"))
        # what the network itself fixes: another multiple than the card's (its stride) pads the images to sides the
        # network cannot halve evenly (other results), another in_channels fails inside PyTorch
        if "multiple" in options:
            from devolens.checks import whole

            if whole(options["multiple"], "multiple", 1, floats=True) % kwargs["multiple"]:
                raise DevolensError(f"multiple must be a multiple of the network's {kwargs['multiple']} (the card's "
                                    f"input.multiple, its stride), got {options['multiple']!r}")
        if "in_channels" in options and options["in_channels"] != kwargs["in_channels"]:
            raise DevolensError(f"in_channels is the network's own ({kwargs['in_channels']}: the card's "
                                f"architecture.in_channels), got {options['in_channels']!r}: leave it out")
        post = options.pop("postprocess", None)
        if post is not None:  # the user's keys checked (the card's may be other versions')
            kwargs["postprocess"].update(_check_user_postprocess(post, cls.postprocess_keys, cls.__name__))
        kwargs.update(options)
        loader = functools.partial(load_zoo_network, folder, card)
        if kwargs.get("backend") == "onnx" and kwargs["onnx_graphs"]:  # built only where needed (ImageNetwork)
            return cls(None, model_loader=loader, **kwargs)
        return cls(loader(), model_loader=loader, **kwargs)

    # ------------------------------------------------------------------ inference
    def predict(self, image: np.ndarray | str | Path, diameter: float | str | None = OWN_DIAMETER
                ) -> SegmentationResult:
        """Segment one image (``HxW``, ``HxWx3`` or ``3xHxW``, any size: a NumPy array, a PyTorch tensor, or an
        image file's path); outputs at the input size. Several images: :meth:`predict_batch` or
        :meth:`predict_iter`. ``diameter``: this call's, as ``load``'s (:meth:`predict_iter`); left out, the
        predictor's own (:attr:`diameter`), which is None unless ``load`` was given one: the image used as it is, at
        the model's own scale, not resized. ``devolens segment``'s default is ``--diameter auto`` (the magnification
        estimated, the image resized to the model's): ``diameter="auto"`` here, or ``load(..., diameter="auto")``,
        gives the command's counts (on a frame at another magnification than the training data's, the two
        defaults can find quite different numbers of objects). ``"none"`` (the command's word) is None. An image
        that looks inverted or like the other model's kind gets an :class:`~devolens.errors.InputWarning`, objects
        far from the sizes the model knows a :class:`~devolens.errors.DiameterWarning` (as in :meth:`predict_iter`);
        warnings name the caller's line."""
        if _several(image):  # (read as one array of them: "expected an HxW or HxWx3 image, got (3, 512, 752, 3)")
            raise DevolensError(f"predict takes one image, got a {type(image).__name__} of {len(image)}: for several "
                                "use predict_batch(images) (a list of results) or predict_iter(images) (a stream)")
        run = self._for_call(diameter)
        image = _frame_in(image)  # (a path read once, refused as the stream refuses it)
        read = run._read_by(image)  # (the membrane model: a colour image's channel of membranes)
        result = list(_issued(read._run([image], 1, one=True, own=False)))[0]  # (warnings name the caller's line)
        if read is not run:
            run._took(read)
        return result

    def predict_batch(
        self, images: Sequence[np.ndarray], progress: Callable[[int, int], None] | None = None,
        diameter: float | str | None = OWN_DIAMETER,
    ) -> list[SegmentationResult]:
        """Segment a list of images (batched forward passes); one result per image. ``diameter``: this call's, as
        ``load``'s (:meth:`predict_iter`). Images that look inverted or like the other model's kind get one
        :class:`~devolens.errors.InputWarning`, objects far from the sizes the model knows one
        :class:`~devolens.errors.DiameterWarning` per note (as in :meth:`predict_iter`); warnings name the caller's
        line."""
        check_stream(images, "predict_batch", progress)
        run = self._for_call(diameter)  # (checked before the images are read)
        images = list(images)
        return list(_issued(run._run(images, len(images), progress)))

    def predict_iter(
        self,
        images: Iterable[np.ndarray],
        total: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        workers: int = 1,
        diameter: float | str | None = OWN_DIAMETER,
    ) -> Iterator[SegmentationResult]:
        """Segment a stream of images lazily (e.g. video frames), ``batch_size`` at a time.

        Pipelined: while the network runs on one batch (in the calling thread), the
        preprocessing of the next batch and the post-processing of the previous one
        (watershed, labels, centroids) run in ``workers`` background threads; NumPy, SciPy, scikit-image and OpenCV release the
        GIL there, so on two cores this is up to twice as fast as one step after the other.
        At most about four batches of frames and results are held in memory; results are
        yielded in input order.

        ``diameter`` left out is the predictor's own, None unless ``load`` was given one (images used as they are,
        at the model's own scale); ``devolens segment``'s default is ``--diameter auto``, ``diameter="auto"`` here
        (:meth:`predict`). With a ``diameter`` (typical object diameter in input pixels, e.g. for another
        magnification than the training data), images are resized so that such objects
        have the card's reference size at the working resolution (``input.diameter``);
        ``result.extra["scale"]`` holds the working scale used; ``result.extra["specks"]`` is True for an image
        whose saturated specks (dust, hot-pixel clusters at the top of a 16-bit range:
        :func:`~devolens.predict.postprocess.saturated_specks`) were left out of its brightness scale (read off its
        preparation, ahead or here; not said of giant images, normalised block by block). With ``diameter="auto"`` the
        magnification is estimated once for the stream, from its first images with the most
        objects (``last_estimate``); with ``"each"``, for every image on its own (``estimates``;
        images are then segmented one at a time, without the pipelining). Either way each result's
        ``extra["estimate"]`` is the :class:`~devolens.predict.sizing.DiameterEstimate` it was segmented by (its own
        stream's: ``last_estimate`` and ``estimates`` are the last call's, whichever thread made it). The working
        scale an estimate gives is held to the range a ``scale`` is held to (:meth:`_estimated_scale`): an estimate
        beyond it raises a :class:`~devolens.errors.DevolensError` before its images are segmented.

        Images that look inverted (dark nuclei or membranes on a bright background) or like the other model's kind
        (nuclei given to the membrane model, membranes to the nuclei model) get one
        :class:`~devolens.errors.InputWarning` per call, judged after the first 20 results (or at the stream's end)
        on the 5 of those images with the most objects (:func:`~devolens.predict.notes.judge_input`; none with a
        ``diameter`` in pixels or ``"each"``); ``devolens segment`` prints it as a note. Where ``devolens segment``
        prints a note on the sizes, the call issues it as a :class:`~devolens.errors.DiameterWarning` (one per note),
        judged once, after the first 20 results or at the stream's end, on those results and the 5 of their images
        with the most objects (:class:`~devolens.predict.notes.SizeWatch`: the objects found far from the sizes the
        model knows, :meth:`size_advice`; images used as they are at a magnification far from the training one,
        :meth:`magnification_check`; a ``diameter`` in pixels far from the size model's reading,
        :meth:`diameter_check`; nuclei smaller than ``"auto"`` assumed); none with ``"each"``. With ``diameter=None``
        or in pixels the size model's look costs a ``diameter="auto"`` estimate per call: about 0.2 s for a stream
        (one reading of each of 5 images), and for a single image one reading (20 ms on a 512 x 752 frame, one
        thread, where ``predict`` itself takes 20-40 ms), its eight views (0.2 s) only where one reading lies near
        or beyond a note (:data:`~devolens.predict.notes.ONE_READING_SPREAD`). Where the warnings filters ignore
        every DiameterWarning (``warnings.filterwarnings("ignore", category=DiameterWarning)``) none of the checks
        runs. Warnings name the line that reads the stream.

        ``diameter``: this call's, in place of the predictor's own (left out: ``load``'s, or the one assigned to
        :attr:`diameter`): the same values as ``load``'s (pixels, ``"auto"``, ``"each"`` or None), with the same
        results as a predictor loaded with it; the loaded network serves it, and the predictor is left as it is for
        later calls (with ``"auto"``, this call's estimate is in each result's ``extra["estimate"]``).

        An image that cannot be segmented (not an image of numbers, under 2 x 2 pixels, other than 1, 3 or 4
        channels) ends the stream: the results of the images before it are yielded, then a
        :class:`~devolens.errors.DevolensError` names it (``image 12 of the stream: ...``, counted from 0, and the
        file where it was a path).

        Parameters
        ----------
        images : iterable of ndarray, tensor, path or Prepared
            Images or frames (``HxW``, ``HxWx3``, or channels-first ``3xHxW``; a path is read),
            consumed lazily; :class:`~devolens.predict.postprocess.Prepared` items (prepared
            ahead with this network's ``network.prep_key``) skip the preparation.
        total : int, optional
            Number of images, for ``progress`` only.
        progress : callable, optional
            ``progress(done, total)`` after each image (total = -1 when unknown); a giant image's blocks move it
            within the image, and a giant image given alone (``total`` 1) is counted in its blocks
            (:func:`~devolens.predict.blocks.segment_blocks`: ``done`` of ``total`` blocks).
        workers : int
            Post-processing threads, a whole number >= 0 (0: everything in the calling thread, one step after
            the other).
        diameter : float, str or None, optional
            This call's diameter (see above).
        """
        run = self._for_call(diameter)
        yield from _issued(run._run(images, total, progress, workers))

    def _read_by(self, image: np.ndarray | Prepared) -> "_SegmentationPredictor":
        """The predictor :meth:`predict` segments one checked ``image`` with: this one (the membrane predictor's
        reads a colour image's channel of membranes, :meth:`MembranePredictor._read_by`)."""
        return self

    def _reading(self, channel: str) -> "_SegmentationPredictor":
        """A view of this predictor that reads a colour image's ``channel`` (the network's weights and caches
        shared, this one left as it is)."""
        view = copy.copy(self)
        view.network = self.network.at_scale(self.network.scale)  # (a copy of its own, its channel set below)
        view.network.channel = channel
        return view

    def _took(self, read: "_SegmentationPredictor") -> None:
        """What a call segmented by ``read`` (a view of :meth:`_reading`) records on this predictor, as a call by
        this one does: with ``diameter="auto"`` or ``"each"``, its estimates and the working scale they set."""
        if self.auto:
            self.last_estimate, self.estimates, self._diameter = read.last_estimate, read.estimates, read._diameter
            self.network.scale = read.network.scale

    def _run(self, images: Iterable, total: int | None = None, progress: Callable[[int, int], None] | None = None,
             workers: int = 1, *, one: bool = False, own: bool = True) -> Iterator[SegmentationResult | Told]:
        """:meth:`predict_iter`'s stream: the results, in input order, and what is to be said of them as
        :class:`Told` items, which :meth:`predict`, :meth:`predict_batch` and :meth:`predict_iter` issue as
        warnings naming their caller's line (:func:`_issued`; issued here, a warning named this module's line, or
        ``list()``'s caller's, not the user's). An image refused (:func:`_checked`; ``one``: :meth:`predict`'s)
        ends the stream: the results of the images before it come first, then its error, naming its position.
        ``own``: each image read as :meth:`predict` reads it alone (:attr:`reads_own_channels`; False: as decided
        already, :meth:`predict`'s)."""
        check_stream(images, progress=progress)
        from devolens.checks import whole

        workers = whole(workers, "workers", 0, floats=True)  # ("2" and 1.5 are no number of threads; -1 ran none)
        failed: list = []
        # paths read, tensors, 1xHxW and channels-first arrays laid out, checked; each read as predict reads it
        reads: collections.deque = collections.deque()  # (the channel of each image given on as one plane)
        images = _checked(images, failed, one)
        if own and self.reads_own_channels:
            images = self._own_channels(images, reads)
        for item in self._results(images, total, progress, workers):
            if reads and isinstance(item, SegmentationResult):  # (results come in input order, one an image)
                channel = reads.popleft()
                if channel is not None:
                    item.extra["color_read"] = channel
            yield item
        if failed:
            raise failed[0]

    def _own_channels(self, images: Iterator, reads: collections.deque) -> Iterator:
        """The images of a stream as this predictor reads them where its own rule reads a colour image apart from
        the network's (the membrane model's channel of membranes: :meth:`MembranePredictor._own_channels`); here as
        they are."""
        return images

    def _results(self, images: Iterator, total: int | None, progress: Callable[[int, int], None] | None,
                 workers: int) -> Iterator[SegmentationResult | Told]:
        """:meth:`_segmented`, and at its end a :class:`~devolens.errors.NoSignalWarning` naming the images in which
        nothing stood out from their noise (:attr:`checks_structure`: given no objects), where it judges its input
        (:attr:`judges_input`)."""
        empty: list[int] = []  # the positions of the images without structure
        flat: list[int] = []  # ... and of those of no signal (said of them instead)
        done = 0
        for item in self._segmented(images, total, progress, workers):
            if not isinstance(item, Told):
                if item.extra.get("no_signal"):
                    flat.append(done)
                elif item.extra.get("no_structure"):
                    empty.append(done)
                done += 1
            yield item
        what = "cells" if self.size_objects == "enclosed" else "nuclei"
        if flat and self.judges_input:
            yield _no_signal_told(flat, done, what)
        if empty and self.judges_input:
            yield _no_structure_told(empty, done, what)

    def _segmented(self, images: Iterator, total: int | None, progress: Callable[[int, int], None] | None,
                   workers: int) -> Iterator[SegmentationResult | Told]:
        """:meth:`_run` of checked images. With ``diameter="auto"`` or ``"each"``, each result's ``extra["estimate"]``
        is the :class:`~devolens.predict.sizing.DiameterEstimate` it was segmented by (a thread's own, where
        ``last_estimate`` and ``estimates`` are the last call's, whichever thread made it)."""
        what = "cells" if self.size_objects == "enclosed" else "nuclei"
        if self.auto_each:  # each image its own magnification: one image at a time
            estimates: list = []  # this call's (self.estimates: the last call's, whichever thread made it)
            self.estimates = estimates
            done = 0
            for img in images:
                arr = img.image if isinstance(img, Prepared) else np.asarray(img)
                est, scale = self._applied_estimate([arr])  # (one beyond the scale's range: held to it)
                estimates.append(est)
                for res in self._at(est, scale)._stream([img], workers=0):
                    res.extra["estimate"] = est
                    done += 1
                    if progress is not None:
                        progress(done, -1 if total is None else total)
                    yield res
            yield Told(estimates=estimates, what=what, each=True)  # images used as they are (the CLI's note)
            return
        run, est = self, None
        if self.auto:  # one magnification for the stream, estimated from its first frames with the most nuclei
            from devolens.predict.sizing import Gathered, gather

            images = iter(images)
            head, chosen = gather(self, images)
            if self.checks_structure and len(chosen) > 1:  # frames of noise do not judge a movie's magnification
                kept = [i for i, image in enumerate(chosen) if not self._lacks_structure(image)]
                if kept:  # (their positions kept with them: the estimate's frames; a plain list recorded none)
                    chosen = Gathered((chosen[i] for i in kept), (chosen.frames[i] for i in kept))
            est, scale = self._applied_estimate(chosen)
            yield Told(estimates=[est], what=what)  # used as they are (the CLI's note)
            run = self if est is None else self._at(est, scale)  # None: an empty stream
            images = itertools.chain(head, images)
        from devolens.predict.notes import InputWatch, SizeWatch

        # an input that looks inverted or like the other model's: an InputWarning, judged once on a few first images
        kind = "membrane" if self.size_objects == "enclosed" else "nuclei"
        look = InputWatch.of(run, kind)
        images = images if look is None else look.tap(images)
        # objects far from the sizes the model knows (segment's size notes): DiameterWarnings, judged alike
        # (a setting in pixels or None judged clean SIZE_CLEAN_CALLS times: not judged again; "auto" reuses its own
        # estimate's reading, so it costs nothing and is always judged)
        from devolens.predict.notes import SIZE_CLEAN_CALLS

        clean = getattr(self, "_size_clean", None)
        setting = None if run.auto or clean is None else (run._diameter, float(run.network.scale))
        sizes = (None if setting is not None and clean.get(setting, 0) >= SIZE_CLEAN_CALLS
                 else SizeWatch.of(run, kind))
        images = images if sizes is None else sizes.tap(images)
        said = False
        for res in run._stream(images, total, progress, workers):
            if self.auto:
                res.extra["estimate"] = est
            text = None if look is None else look.add(res.count)
            if text is not None:
                yield Told(text)
            for text in ([] if sizes is None else sizes.add(res)):
                said = True
                yield Told(text, warning=DiameterWarning)
            yield res
        text = None if look is None else look.finish()
        if text is not None:
            yield Told(text)
        for text in ([] if sizes is None else sizes.finish()):
            said = True
            yield Told(text, warning=DiameterWarning)
        if sizes is not None and sizes.done and not said and setting is not None:
            clean[setting] = clean.get(setting, 0) + 1

    def _at(self, est, scale: float) -> "_SegmentationPredictor":
        """This predictor at the working ``scale`` of ``est`` (a :class:`~devolens.predict.sizing.DiameterEstimate`,
        and the scale :meth:`_applied_estimate` gave it: checked there) for one stream: a view sharing the network's
        weights with a scale of its own, so that streams estimated apart (generators read in turns, calls from
        several threads) each keep their own magnification whatever the others estimate later (``self`` only
        records the last estimate)."""
        view = copy.copy(self)
        view._diameter = est.diameter  # (recorded as the estimate's: not a diameter assigned, :attr:`diameter`)
        view.network = self.network.at_scale(scale)
        return view

    @property
    def diameter(self) -> float | None:
        """The typical object diameter (input pixels) the images are segmented at: the one given to ``load``, or
        assigned since; with ``diameter="auto"``, the last call's estimate (None: images used as they are).

        Assigning it sets how later calls segment, as ``load(..., diameter=...)`` would (the same values: pixels,
        ``"auto"``, ``"each"`` or None, ``"none"`` too; checked as ``load`` checks them, the working scale following), on the loaded
        network: ``m.diameter = 9`` was kept without effect before (the scale was set at load). One call at another
        diameter: ``predict(image, diameter=9)``.

        Raises
        ------
        DevolensError
            A value ``load`` refuses (not a number of pixels, ``"auto"``, ``"each"`` or None; out of the model's
            range; ``"7um"``: micrometres need the pixel size, give pixels; ``"auto"`` without a size model).
        """
        return self._diameter

    @diameter.setter
    def diameter(self, value: float | str | None) -> None:
        self.__dict__.update(self._diameter_settings(value))

    def _diameter_settings(self, diameter) -> dict:
        """The attributes that segment at ``diameter`` (as ``load``'s, checked as the constructor checks it): whether
        it asks for ``"auto"`` or ``"each"``, the diameter in pixels, no estimate yet, and the network at its working
        scale (a view of the loaded one: :meth:`~devolens.predict._engine.ImageNetwork.at_scale`, its weights and
        caches shared)."""
        from devolens.predict.sizing import wants_auto

        diameter = none_word(diameter)  # ("none": the command's word for None)
        auto = wants_auto(diameter, self.size_model, self.diameter_ref)
        pixels = None if auto or diameter is None else check_diameter(diameter, self.diameter_ref)
        # (the card's or the user's scale, held to its range with the diameter's resizing, as the constructor holds it)
        scale = self._scale_for(None) if pixels is None else self._held_scale(pixels, f"diameter {pixels:g} px")
        return {"auto": auto, "auto_each": auto and diameter.strip().lower() == "each", "_diameter": pixels,
                "last_estimate": None, "estimates": [], "network": self.network.at_scale(scale)}

    def _for_call(self, diameter) -> "_SegmentationPredictor":
        """The predictor one call segments with: this one for :data:`OWN_DIAMETER` (or its own setting given again),
        else a view of it at ``diameter`` (:meth:`_diameter_settings`), which leaves this one as it is."""
        if diameter is OWN_DIAMETER:
            return self
        settings = self._diameter_settings(diameter)
        if (settings["auto"], settings["auto_each"]) == (self.auto, self.auto_each) and (
                self.auto or settings["_diameter"] == self._diameter):
            return self  # (its own setting: an "auto" call records its estimate in last_estimate as before)
        view = copy.copy(self)
        view.__dict__.update(settings)
        return view

    def _estimated_scale(self, est) -> float:
        """The working scale of ``est`` (a :class:`~devolens.predict.sizing.DiameterEstimate` of
        ``diameter="auto"`` or ``"each"``), held to the range a ``scale`` is held to (:func:`check_scale`: at most
        :data:`MAX_ENLARGE` times enlarged, :data:`MAX_SHRINK` times shrunk, beyond the card's scale).

        The estimate's resizing applies on top of the working scale at the training magnification (the card's, or
        the ``scale`` given, at which the size model reads the images too), as a ``diameter`` given in pixels
        does; so, as for a ``scale`` with such a diameter, the scale times the resizing is checked: with a
        ``scale`` given, :func:`check_scale`'s error (the scales that fit, or to leave the scale out); without,
        :func:`check_diameter`'s (the diameters in pixels that fit). Unchecked without a card's scale (a predictor
        built by hand) or where the images are used at the working scale as they are (``est.diameter`` None).

        The error also offers to use the images as they are (``diameter=None``; ``--diameter none`` in the command).
        ``diameter="each"`` holds each image's estimate to the range instead (:meth:`_held_estimate`).

        Raises
        ------
        DevolensError
            The estimate would take the working scale beyond that range; its ``estimate`` is ``est`` (the command
            names the images it was made from).
        """
        if est.diameter is None:
            return self._scale_for(None)
        from devolens.errors import option

        how = "each" if self.auto_each else "auto"
        try:
            return self._held_scale(est.diameter, f"diameter={how!r} (estimated {est.diameter:.3g} px: magnification "
                                                  f"{est.magnification:.3g} of the model's reference framing)")
        except DevolensError as exc:
            refused = DevolensError(f"{exc.message}; or {option('diameter', 'None', cli_value='none')} to segment "
                                    "the images as they are, at the model's own scale", exc.path)
            refused.estimate = est
            raise refused from None

    def _held_estimate(self, est):
        """``est`` (one image's ``diameter="each"`` estimate) with its resizing held to the range a ``scale`` is
        held to (:meth:`_estimated_scale`'s), instead of refused: one image of a folder whose estimate lies beyond
        it (a 94x64 px membrane slice read 0.083x, to be enlarged 9.6x) is resized as far as the range goes (8x:
        14 of its 19 cells found, 1 false; 13 and 10 false at 9.6x, 9 and 4 false as it is), and the estimate
        records the diameter it gave (``held``: :func:`~devolens.predict.sizing.warn_untrusted` names the image).
        ``est`` itself where it lies in the range, has no resizing, or there is no card's scale."""
        import dataclasses

        own, ref = self.own_scale, self.diameter_ref
        if est is None or est.diameter is None or own is None or not ref:
            return est
        if self.card_scale == own:  # check_diameter's bounds, as it computes them
            lo, hi = float(ref) / MAX_ENLARGE, float(ref) * MAX_SHRINK
            if lo <= est.diameter <= hi:
                return est
            diameter = lo if est.diameter < lo else hi
        else:  # the user's scale: the scale's bounds (check_scale takes them within its rounding)
            scale, lo, hi = self._scale_for(est.diameter), own / MAX_SHRINK, own * MAX_ENLARGE
            if lo <= scale <= hi:
                return est
            diameter = float(ref) * self.card_scale / (hi if scale > hi else lo)
        return dataclasses.replace(est, diameter=diameter, resize=est.resize * est.diameter / diameter,
                                   held=est.diameter)

    def _applied_estimate(self, images: Sequence[np.ndarray]):
        """:meth:`estimate_diameter` with ``apply``: the estimate (None: no images) and the working scale it set,
        checked once (:meth:`_estimated_scale`, before anything is recorded; ``diameter="each"``: held to the range,
        :meth:`_held_estimate`)."""
        from devolens.predict.sizing import estimate_diameter

        if not len(images):
            return None, self.network.scale
        est = estimate_diameter(self, images)
        if self.auto_each:
            est = self._held_estimate(est)
        scale = self._estimated_scale(est)  # (checked first: an estimate out of range changes nothing)
        est, scale = self._spots_estimate(images, est, scale)
        self.last_estimate = est
        self._diameter = est.diameter  # (recorded as the estimate's: not a diameter assigned, :attr:`diameter`)
        self.network.scale = scale
        return est, scale

    def _spots_estimate(self, images: Sequence[np.ndarray], est, scale: float):
        """``est`` and its working ``scale`` (:meth:`_applied_estimate`'s), or, where the ``images`` it was made from
        (those that decided it) show nuclei smaller than the network knows at that scale and the size model did not
        read them as embryos (:func:`~devolens.predict.notes.small_spots`), an estimate that segments them at their
        bright spots' measured diameter, rounded as ``--diameter`` takes it (``spots``, with the size model's
        ``model_diameter`` and ``model_resize``: :class:`~devolens.predict.sizing.DiameterEstimate`), and its scale.

        The size model learned its reading from embryos: it reads culture wells of 5-10 px nuclei as 0.22-0.46x
        magnified (as if their nuclei were 8-16 px), and the network, run at a scale meant for nuclei 1.5-3x wider,
        drew their outlines too large or merged touching ones. Simulated wells of 5-24 px nuclei (48; 512x512,
        random appearance): 25 segmented at the spots' size, instance F1 0.69 (0.00-0.99) -> 0.96 (0.88-1.00), none
        worse; embryos (held-out renders, the reference frames as filmed and shrunk, the benchmark movie) never
        (:data:`~devolens.predict.notes.SMALL_NUCLEI_EMBRYO`). Nuclei models only (bright objects); not where that
        diameter lies beyond the range the working scale may be resized to (spots of 3-4 px: the size model's
        reading is kept, and ``segment``'s note names the diameter measured)."""
        if est is None or self.size_objects != "bright":
            return est, scale
        from devolens.predict.notes import small_spots

        used = est.used if est.used is not None and len(est.used) == len(images) else [True] * len(images)
        small = small_spots([img for img, u in zip(images, used) if u], self, est, scale)
        if small is None:
            return est, scale
        import dataclasses

        diameter = float(max(1, int(round(small.measured))))  # (what --diameter would be given: the note's words)
        how = "each" if self.auto_each else "auto"
        try:
            spots_scale = self._held_scale(diameter, f"diameter={how!r} (bright spots measured {diameter:.3g} px)")
        except DevolensError:
            return est, scale
        return dataclasses.replace(est, diameter=diameter, resize=diameter_scale(1.0, self.diameter_ref, diameter),
                                   held=None, spots=small.measured, model_diameter=est.diameter,
                                   model_resize=est.resize), spots_scale

    def _held_scale(self, diameter: float, label: str) -> float:
        """The working scale for objects ``diameter`` input pixels wide, held to the range a ``scale`` is held to
        (:meth:`_estimated_scale`'s check; also the population predictor's, whose frames are resized to its nuclei
        model's magnification before this model reads them at its scale). ``label``: how the diameter is named in
        the error (``diameter='auto' (estimated 5 px: ...)``). Unchecked without a card's scale.

        Raises
        ------
        DevolensError
            That working scale lies beyond the range.
        """
        own = self.own_scale
        if own is not None and self.card_scale != own:  # the user's scale: it and it times the diameter's resizing
            check_scale(self.card_scale, own, f"scale {self.card_scale:g} with {label}",
                        factor=diameter_scale(1.0, self.diameter_ref, diameter))
        elif own is not None:
            check_diameter(diameter, self.diameter_ref, label=label)
        return self._scale_for(diameter)

    def _scale_for(self, diameter: float | None) -> float:
        """The working scale for objects ``diameter`` input pixels wide (None: the card's scale)."""
        return diameter_scale(self.card_scale, self.diameter_ref, diameter)

    def _stream(self, images: Iterable, total: int | None = None, progress: Callable[[int, int], None] | None = None,
                workers: int = 1) -> Iterator[SegmentationResult]:
        """:meth:`predict_iter` at the current working scale (no estimate): runs of ordinary images
        batched and pipelined (:meth:`_batches`), giant ones block by block
        (:func:`~devolens.predict.blocks.segment_blocks`), in input order."""
        from devolens.predict.blocks import goes_by_blocks, segment_blocks

        def giant(img) -> bool:
            arr = img.image if isinstance(img, Prepared) else img
            return goes_by_blocks(np.shape(arr), self.network.scale, self.block_pixels) and np.ndim(arr) in (2, 3)

        done = 0
        for large, run in itertools.groupby(images, key=giant):
            if not large:
                for res in self._batches(run, total, progress, workers, done):
                    done += 1
                    yield res
                continue
            for img in run:
                arr = img.image if isinstance(img, Prepared) else np.asarray(img)
                first = done
                # one image alone: counted in its blocks ("7/16"), not as a share of one frame ("0.4/1")
                alone = total == 1 and first == 0
                part = None if progress is None else progress if alone else (
                    lambda d, n: progress(first + d / n, -1 if total is None else total))  # noqa: E731
                res = segment_blocks(self, arr, progress=part)
                done += 1
                if progress is not None and not alone:
                    progress(done, -1 if total is None else total)
                yield res

    def _batches(self, images: Iterable, total: int | None, progress: Callable[[int, int], None] | None,
                 workers: int, done: int) -> Iterator[SegmentationResult]:
        """Ordinary images, ``batch_size`` at a time, pipelined (``done``: images before these, for ``progress``)."""
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="devolens-post") if workers > 0 else None

        def submit(fn, *args):
            return pool.submit(fn, *args) if pool is not None else _Done(fn(*args))

        key = self.network.prep_key

        def judged(arr: np.ndarray, array: np.ndarray, extra: dict, channel: str | None) -> tuple:
            """A prepared frame's (input, found, channel) and whether nothing in it stands out from its noise
            (:attr:`checks_structure`), judged in the colour channel its preparation read (the colour rule, ~1.5 ms
            a frame, not run again); a frame of no signal (:func:`_holds_no_signal`) found ``no_signal`` too, and a
            colour frame the channel read (``color_read``, as ``segment.json`` records it)."""
            if _holds_no_signal(arr):
                extra = {**extra, "no_signal": True}
            if arr.ndim == 3 and arr.shape[2] > 1:
                read = channel or self.network.channel  # (None: prepared ahead by the caller, the rule not resolved)
                if read == "auto":
                    from devolens.predict.postprocess import auto_channel

                    read = auto_channel(arr)
                extra = {**extra, "color_read": read}
            return array, extra, channel, self.checks_structure and self._lacks_structure(arr, channel)

        def prepare(arr: np.ndarray) -> tuple:
            """The network's input of a frame, what its preparation found, the colour channel it read and the
            noise guard's verdict (the frame itself not kept here)."""
            frame = self.network.prepare_frame(arr)
            return judged(arr, frame.array, frame.extra, frame.channel)

        def read(chunk):
            """Check a batch and start its preprocessing (in the background when pipelined)."""
            # the frames themselves until their results: the objects' mean intensity reads their pixels
            frames, prepared = [], []
            for img in chunk:  # (checked by _frame_in)
                arr = img.image if isinstance(img, Prepared) else np.asarray(img)
                frames.append(arr)
                if isinstance(img, Prepared) and img.key == key:  # prepared ahead by the caller
                    prepared.append(submit(judged, arr, img.array, img.extra, img.channel))
                else:
                    prepared.append(submit(prepare, arr))
            return frames, prepared

        pending: collections.deque = collections.deque()
        limit = 2 * self.network.batch_size
        chunks = batched(images, self.network.batch_size)
        try:
            nxt = next(chunks, None)
            ahead = read(nxt) if nxt is not None else None
            while ahead is not None:
                frames, prepared = ahead
                nxt = next(chunks, None)  # read the next batch while this one is in the network
                ahead = read(nxt) if nxt is not None else None
                probs = self.network.probabilities_working([f.result()[0] for f in prepared])
                for p, arr, f in zip(probs, frames, prepared):
                    # (what the preparation found, e.g. saturated specks left out of the scale: in the result's
                    # extra; the colour channel it read: the objects' mean intensity reads the same)
                    _, found, channel, nothing = f.result()
                    pending.append(submit(self._finish_frame, p, arr, found, channel) if not nothing
                                   else _Done(_measured(_noted(self._nothing(p, arr.shape[:2]), found), arr)))
                while len(pending) > limit or (pending and pending[0].done()):
                    yield pending.popleft().result()
                    done += 1
                    if progress is not None:
                        progress(done, -1 if total is None else total)
            while pending:
                yield pending.popleft().result()
                done += 1
                if progress is not None:
                    progress(done, -1 if total is None else total)
        finally:
            for f in pending:
                f.cancel()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _finish_frame(self, probs: np.ndarray, image: np.ndarray, found: dict,
                      channel: str | None = None) -> SegmentationResult:
        """:meth:`_finish` of a frame ``image`` whose preparation ``found`` what its result's ``extra`` says too
        (:class:`~devolens.predict.postprocess.Prepared`'s ``extra``), its objects' mean intensity measured in the
        ``channel`` of a colour image the preparation read (None: the network's rule, resolved here)."""
        return _measured(_noted(self._without_small(self._finish(probs, image.shape[:2])), found), image,
                         self.network.channel if channel is None else channel)

    def _without_small(self, result: SegmentationResult) -> SegmentationResult:
        """``result`` without its objects under :attr:`min_size_input` input pixels (``segment --min-size``), the
        others renumbered 1..n and left as they were: dropped after the watershed, not as seeds before it, where
        their neighbours' seeds flooded their pixels (objects grew by up to half, and a large value made the whole
        foreground one object)."""
        if self.min_size_input is None:
            return result
        objects = result.objects
        keep = np.asarray(objects["area"]) >= float(self.min_size_input)
        if self.min_size_dropped is not None:
            self.min_size_dropped.append(int(keep.size - keep.sum()))  # (list.append: safe from the finishing threads)
        if keep.all():
            return result
        lut = np.zeros(int(result.labels.max()) + 1, result.labels.dtype)
        lut[np.asarray(objects["label"])[keep]] = np.arange(1, int(keep.sum()) + 1)
        result.labels = lut[result.labels]
        kept = {k: np.asarray(v)[keep] for k, v in objects.items()}
        kept["label"] = np.arange(1, int(keep.sum()) + 1)
        result._centroids = kept
        return result

    def _lacks_structure(self, image: np.ndarray, channel: str | None = None) -> bool:
        """Whether nothing stands out from the noise of ``image`` (the channel the network reads, or ``channel``: the
        one its preparation already chose for a colour frame):
        :func:`~devolens.predict.postprocess.lacks_structure`. False for an image segmented in blocks (a giant
        one: not judged, here either, as the test's full-size copies of it would not fit in memory)."""
        from devolens.predict.blocks import goes_by_blocks
        from devolens.predict.postprocess import lacks_structure

        if goes_by_blocks(np.shape(image), self.network.scale, self.block_pixels):
            return False
        return lacks_structure(image, channel or self.network.channel, blobs=self.structure_blobs)

    def _nothing(self, probs: np.ndarray, shape: tuple[int, int]) -> SegmentationResult:  # pragma: no cover
        """The result of a frame with no structure above its noise (:attr:`checks_structure`): no objects, the
        network's maps as they are, ``extra["no_structure"]`` True."""
        raise NotImplementedError

    def estimate_diameter(self, images: Sequence[np.ndarray], apply: bool = False):
        """Estimate the typical object diameter of ``images`` (one magnification for all) with the
        card's size model (:func:`devolens.predict.sizing.estimate_diameter`).

        Parameters
        ----------
        images : sequence of ndarray
            A few images of the same magnification; empty: nothing is estimated (returns None).
        apply : bool
            Also segment with it from now on (the working scale follows the estimate; the
            card's scale when the estimate lies inside the predictor's keep band, if any). With
            ``diameter="auto"`` each call to :meth:`predict_iter` (and so :meth:`predict`) makes its
            own estimate and segments its images at it, whatever other calls estimate meanwhile;
            ``last_estimate``, ``diameter`` and :meth:`working_scale` then tell the last call's.

        Returns
        -------
        DiameterEstimate or None
        """
        from devolens.predict.sizing import estimate_diameter

        if apply:
            return self._applied_estimate(images)[0]
        if not len(images):
            return None
        return estimate_diameter(self, images)

    def working_scale(self) -> float:
        """Working resolution relative to the input: the card's scale, times
        ``reference / diameter`` when a typical object ``diameter`` (input pixels) was given."""
        return self.network.scale

    @property
    def device(self) -> str:
        """Where the network runs: ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (``device="auto"`` resolved)."""
        return self.network.device

    @property
    def precision(self) -> str:
        """The network's arithmetic: ``"int8"``, ``"bf16"`` or ``"fp32"`` (``precision="auto"`` resolved)."""
        return self.network.precision

    @property
    def known_sizes(self) -> tuple[float, float] | None:
        """Typical object diameters the model knows (input pixels at the training magnification):
        the card's ``input.diameter.min_max``, else its ``p5_p95``; None when the card has neither."""
        spec = (self.card.get("input") or {}).get("diameter") or {}
        rng = spec.get("min_max") or spec.get("p5_p95")
        return None if not rng else (float(rng[0]), float(rng[1]))

    @property
    def far_magnifications(self) -> tuple[float, float] | None:
        """Magnifications (relative to the model's reference framing) beyond which images used as they are lie far
        outside those the network was trained on: the card's ``input.diameter.auto.trained`` (else its ``keep``
        band; :attr:`trained_zooms`) widened by the size model's 90th-percentile error on held-out renders
        (``error_heldout.heldout.p90_abs_log``, else the leave-one-out ``error_loeo.embryos``'s): 0.40-1.60x for the
        shipped nuclei model. None without a size model or those figures."""
        auto = ((self.card.get("input") or {}).get("diameter") or {}).get("auto") or {}
        err = ((auto.get("error_heldout") or {}).get("heldout") or (auto.get("error_loeo") or {}).get("embryos")
               or {}).get("p90_abs_log")
        if self.size_model is None or self.trained_zooms is None or not err:
            return None
        slack = float(np.exp(float(err)))
        return self.trained_zooms[0] / slack, self.trained_zooms[1] * slack

    @property
    def low_magnification(self) -> float | None:
        """The magnification under which images used as they are lose nuclei, by the size model's own error: the
        lower edge of the keep band of ``diameter="auto"`` (the card's ``input.diameter.auto.keep``, 0.75x: chosen
        where frames read lower lost nuclei unresized, benchmarks/choose_keep_band.py) over the same 90th-percentile
        error that widens :attr:`far_magnifications`: 0.54x for the shipped nuclei model, inside its 0.40x. The
        network was trained down to 0.55x, but frames read low lose nuclei as they are: renders of a training
        embryo at 384 px read 0.51x gave 100 and 113 nuclei where ``diameter="auto"`` gave 134 and 138 (forty-eighth
        session). Frames read between it and 0.75x may lose some too (a real frame binned 2x2, read 0.58x: 71, 120
        resized; renders at 448 px read 0.57-0.60x: 119 and 120, 130 and 146 resized) but are not said: single
        frames at the training scale read as low as 0.66x (renders at 512 px; at 640-1024 px 0.87-1.35x, the real
        reference frames 0.83-1.34x). None without a keep band or :attr:`far_magnifications`, or where it is not
        above the latter's lower edge (the membrane model's keep band is its training zooms)."""
        far = self.far_magnifications
        if far is None or self.auto_keep is None:
            return None
        low = self.auto_keep[0] * far[0] / self.trained_zooms[0]  # (the keep band's edge over the same error)
        return low if low > far[0] else None

    def magnification_check(self, images: Sequence[np.ndarray]):
        """The size model's estimate of ``images`` when they were segmented as they are (no ``diameter``) and it
        lies beyond :attr:`far_magnifications`, or under :attr:`low_magnification` (where nuclei are lost); else None
        (also without a size model, or when too few objects show to judge:
        :func:`devolens.predict.sizing.estimate_diameter`'s ``trusted`` 0).

        Used as they are, images at a magnification far from the training one are not caught by
        :meth:`size_advice`: the network splits large nuclei, or merges small ones, into objects of about the size
        it knows (a real reference frame read at 13 cells as it is gave 266 objects enlarged 2.5x, their median size in
        range). The size model reads the magnification from the network's features instead, as
        ``diameter="auto"`` does: the reference frames read 1.34x as they are, 3.2x enlarged 2.5x, 0.29x shrunk to
        0.3x; single held-out renders 0.47-1.37x.

        Parameters
        ----------
        images : sequence of ndarray
            A few of the images segmented (those with the most objects: the estimate needs objects to judge by).

        Returns
        -------
        DiameterEstimate or None
        """
        far = self.far_magnifications
        if far is None or self.diameter is not None or self.auto or not len(images):
            return None
        est = self.estimate_diameter(images)
        if est is None or not est.trusted or (self.low_magnification or far[0]) <= est.magnification <= far[1]:
            return None
        return est

    def diameter_check(self, images: Sequence[np.ndarray]):
        """With a ``diameter`` given in pixels: the size model's estimate of ``images`` (one pass, as
        ``diameter="auto"`` makes it; not applied: the results stay as they are) where the diameter it would segment
        with lies more than :data:`~devolens.predict.notes.DIAMETER_APART` times from the given one; else None (also
        without a size model, for ``diameter`` None, ``"auto"`` or ``"each"``, or when too few objects show to judge:
        the estimate's ``trusted`` 0).

        A wrong diameter is not caught by :meth:`size_advice`: the network, at the scale it sets, splits large nuclei
        or merges small ones into objects of the size it knows (the reference frames shrunk to 0.5x, given
        ``diameter=48`` where 24 suits them: 25 nuclei of 134, their sizes in range).

        Cells outlined by membranes (:attr:`diameter_checked_by` ``"cells"``, the membrane model) are held to their
        own estimated diameter instead, the reference diameter times the magnification read over the size model's
        ``m0`` (the card's reference is the median over calibration renders at zooms about it): a note where it lies
        more than :data:`~devolens.predict.notes.CELLS_APART` times from the given one (the check's ``by``
        ``"cells"``). ``diameter="auto"`` uses an image read inside the membrane model's wide keep band (0.55-1.15x)
        as it is, so the diameter it would segment with is the reference 60 px for slices shrunk to 0.5x whose cells
        are 30 px: held to it, 30 px given to the held-out renders at 0.5x was noted in 11 of 35 (cell F1 0.905
        at 30 px, 0.819 at 60) and 60 px given at 0.5x in only 19; held to the cells' diameter, 1 and 22.

        Parameters
        ----------
        images : sequence of ndarray
            A few of the images segmented (those with the most objects, as for :meth:`magnification_check`).

        Returns
        -------
        :class:`~devolens.predict.notes.DiameterCheck` or None
        """
        from devolens.predict.notes import CELLS_APART, DIAMETER_APART, DiameterCheck

        if (self.size_model is None or not self.diameter_ref or self.diameter is None or self.auto or self.auto_each
                or self.last_estimate is not None or not len(images)):
            return None
        est = self.estimate_diameter(images)
        if est is None or not est.trusted:
            return None
        by = self.diameter_checked_by
        if by == "cells":  # the cells' own diameter at the magnification read (the reference's is m0)
            suggested, apart = self.diameter_ref * est.magnification / float(self.size_model.m0), CELLS_APART
        else:  # the one auto would use (kept as they are: the card's)
            suggested = est.diameter if est.diameter is not None else self.diameter_ref
            apart = DIAMETER_APART
        given = float(self.diameter)
        if max(suggested / given, given / suggested) <= apart:
            return None
        return DiameterCheck(given, float(suggested), float(est.magnification), by)

    def size_advice(self, median_areas: Sequence[float], margin: float | None = None) -> float | None:
        """The ``diameter`` to suggest when the objects found are far from the sizes the model knows.

        The card's ``input.diameter`` holds the per-frame median object diameters the model
        finds on its calibration renders (input pixels at the training magnification, all
        stages): their whole range ``min_max`` (else ``p5_p95``; :attr:`known_sizes`). Objects found outside it by
        more than ``margin`` (after any ``diameter`` rescaling) mean another magnification:
        results there are unreliable (e.g. 12 px nuclei of a cell-culture well: F1 0.76 as they
        come, 0.996 with ``diameter=12``).

        Parameters
        ----------
        median_areas : sequence of float
            Median object area (input pixels) of each image or frame.
        margin : float, optional
            Tolerance factor around the card's range (default 1.1 around ``min_max``, 1.25
            around ``p5_p95``).

        Returns
        -------
        float or None
            The median equivalent diameter of the objects found (input pixels, rounded), to
            pass as ``diameter``; None when the sizes are within range, or the card has no range.
        """
        rng = self.known_sizes
        if margin is None:
            margin = 1.1 if ((self.card.get("input") or {}).get("diameter") or {}).get("min_max") else 1.25
        areas = np.asarray([a for a in median_areas if a and np.isfinite(a)], dtype=float)
        if not rng or areas.size == 0:
            return None
        found = float(np.sqrt(4.0 * np.median(areas) / np.pi))  # input pixels
        seen = found * self.working_scale() / float((self.card.get("input") or {}).get("scale", 1.0))
        if rng[0] / margin <= seen <= rng[1] * margin:
            return None
        return round(found, 1)

    def postprocess_for(self, options: dict | None = None) -> dict:
        """The postprocess options that run on an image at this predictor's working scale: the fallbacks, the
        predictor's own (card, ``postprocess={...}``), ``options`` over them. :attr:`min_size_input` is applied to
        the objects found (:meth:`_without_small`); one below the postprocess's ``min_size`` (converted by the working
        scale) lowers that too, so that the smaller objects it asks for are not cleared as seeds first."""
        opts = dict(self.postprocess_fallbacks)
        opts.update({k: v for k, v in {**self.postprocess_options, **(options or {})}.items() if k in opts})
        if self.min_size_input is not None and "min_size" in opts:
            opts["min_size"] = min(float(opts["min_size"]), float(self.min_size_input) * float(self.network.scale) ** 2)
        return opts

    def _finish(self, probs: np.ndarray, shape: tuple[int, int], options: dict | None = None
                ) -> SegmentationResult:  # pragma: no cover
        """Labels, objects and maps of one image from its working-resolution ``probs`` (``options``: postprocess
        options over the predictor's own, e.g. a giant image's blocks without the speck step)."""
        raise NotImplementedError


class NucleiPredictor(_SegmentationPredictor):
    """Nucleus instance segmentation of fluorescence nuclei images (embryo frames...).

    The network has a 3-class head (background, nucleus interior, nucleus boundary); the
    nucleus probability is ``1 - p(background)``, seeds are the interior blobs, and a
    watershed over the nucleus mask splits touching nuclei. A card head ``three_class_distance``
    (a 4th channel: each pixel's distance to its nucleus edge, relative, from
    ``model.distance_head`` recipes) seeds and floods by that distance instead of p(interior).
    A 1-channel (sigmoid) head is also supported (distance-transform seeds).

    Options of :meth:`from_zoo` beside the constructor's: ``precision`` (``"auto"``: int8 on
    CPUs with VNNI/AMX where the card has int8 scales, else bf16; see
    :func:`devolens.models.quantize.resolve_precision`) and ``diameter`` (default None: the input used as it is, at
    the card's scale; ``devolens segment``'s default is ``--diameter auto``, ``diameter="auto"`` here; typical nucleus
    diameter in input pixels, for another magnification than the training data: the
    input is resized by the card's reference diameter / ``diameter`` on top of its scale;
    ``"auto"``: estimated by the card's size model, :mod:`devolens.predict.sizing`, once per
    ``predict`` / ``predict_batch`` call or stream, from its first images with the most nuclei
    (:func:`~devolens.predict.sizing.gather`); ``last_estimate`` then says what was found).
    ``flatten`` (the card's ``preprocessing.flatten``, working pixels; 0: off): the smooth
    background under the nuclei (uneven illumination, a bright or tilted backdrop) is taken
    off before the normalisation (:func:`~devolens.predict.postprocess.flatten_background`).
    ``outliers`` (the card's ``preprocessing.outliers``, a fraction of the image's range; 0: off):
    bright single-pixel outliers (hot camera pixels) are replaced by their neighbours first
    (:func:`~devolens.predict.postprocess.remove_outliers`).

    ``block_pixels`` (default :data:`devolens.predict.blocks.BLOCK_PIXELS`, 3072 x 3072): an image with
    more working pixels (a stitched well, a tile scan) is segmented in overlapping blocks, in bounded
    memory, objects kept by the block that holds their centroid and numbered block by block
    (:mod:`devolens.predict.blocks`); ``float("inf")``: always whole. Labels are uint16, uint32 when
    an image holds 65536 objects or more.

    Postprocess options: ``threshold``, ``seed_threshold``, ``min_distance``, ``min_size``, ``smooth``,
    ``split_seeds`` (False: one seed per interior blob; True: distance-transform maxima, which also splits
    dumbbell-shaped blobs), ``isolated_fraction`` (objects below this fraction of the median object area that touch
    no other object are dropped as specks; 0 keeps them), ``isolated_min_objects`` (only in an image of at least this
    many objects: an early embryo's few nuclei differ several-fold in size); see
    :func:`~devolens.predict.postprocess.instances_from_probabilities`. The shipped model's card sets them (nuclei:
    threshold 0.6, seed_threshold 0.7, min_distance 3, min_size 8, smooth 1.0, split_seeds True, isolated_fraction
    0.25, isolated_min_objects 100; ``predictor.postprocess_options`` shows what runs); a predictor without them in
    its card falls back to 0.5, 0.5, 3, 8, 1.0, False, 0, 0. ``load("nuclei", postprocess={...})`` overrides any of
    them. Sizes and distances are in working-resolution pixels: the image as resized for the network, so with a
    ``diameter`` (or ``"auto"``, each image its own factor) ``min_size`` 8 is 8 / f**2 image pixels for a resizing by
    ``f`` (``result.extra["scale"]``); ``isolated_fraction`` 0.25 drops a lone nucleus under a quarter of the median
    area in an image of 100 objects or more, such as the small nuclei of a mixed culture: set it to 0 to keep them
    (a result's ``extra["isolated_dropped"]`` holds the areas, in input pixels, of the lone objects it dropped,
    where any were).

    An image in which nothing stands out from its own noise (an empty field, a camera's dark frame, a movie's noisy
    dark start: :func:`~devolens.predict.postprocess.lacks_structure` with ``blobs``, so that a lone nucleus in a
    noisy field is kept) gets no nuclei, ``extra["no_structure"]`` True and a
    :class:`~devolens.errors.NoSignalWarning` naming it; it is no evidence for ``diameter="auto"``'s magnification
    either (its noise read as a frame at 0.3x, enlarged 2.6x, gave hundreds of "nuclei"). An image of no signal at
    all (one grey level throughout, black or blank, or without a finite pixel) gets ``extra["no_signal"]`` True and
    a :class:`~devolens.errors.NoSignalWarning` of its own, as ``segment`` notes it. Images segmented in blocks
    (giant ones) are not judged.

    Examples
    --------
    >>> from devolens.models import load      # doctest: +SKIP
    >>> res = load("nuclei").predict(frame)    # doctest: +SKIP
    >>> res.count, res.labels.dtype            # doctest: +SKIP
    (187, dtype('uint16'))
    """

    default_head = "three_class"
    heads = ("three_class", "three_class_distance", "foreground")  # (foreground: a sigmoid mask, models export's)
    mask_is_labels = True  # the mask is the nuclei's pixels (a giant image's too: nothing to assemble)
    drops_specks = True  # postprocess isolated_fraction applies (a giant image's blocks: judged at the end)
    postprocess_fallbacks = dict(threshold=0.5, seed_threshold=0.5, min_distance=3.0, min_size=8, smooth=1.0,
                                 split_seeds=False, isolated_fraction=0.0, isolated_min_objects=0)
    # an empty field (pure camera noise) gave 12-120 "nuclei" in about half of 128-300 px fields, 825 in one:
    # its noise, enlarged 2.6x by the magnification the size model read off it, looks like nuclei to the network.
    # Judged by blobs too: a nucleus alone in a noisy field is structure
    checks_structure = True
    structure_blobs = True

    def _nothing(self, probs: np.ndarray, shape: tuple[int, int]) -> SegmentationResult:
        return self._finish(probs, shape, nothing=True)

    def _finish(self, probs: np.ndarray, shape: tuple[int, int], options: dict | None = None,
                nothing: bool = False) -> SegmentationResult:
        """The result of an image from the network's maps; ``nothing``: no nuclei (an image with no structure
        above its noise), the maps as they are."""
        opts = self.postprocess_for(options)
        if self.head in ("three_class", "three_class_distance"):
            fg = 1.0 - probs[0]
            # seeds: the interior class, or the distance head's nucleus centres
            interior = probs[3] if self.head == "three_class_distance" else probs[1]
        else:
            fg = probs[0]
            interior = probs[1] if probs.shape[0] > 1 else None
        # the isolated specks dropped as a step of their own (the same labels as the postprocess's own step), so
        # that their areas are known: ``extra["isolated_dropped"]``, in input pixels (the command notes lone objects
        # far above min_size dropped so: a mixed culture's small nuclei, which --keep-small keeps)
        fraction = float(opts["isolated_fraction"])
        dropped = spared = None
        if nothing:
            labels_w = np.zeros(fg.shape, np.int32)
        else:
            labels_w = instances_from_probabilities(fg, interior, **{**opts, "isolated_fraction": 0.0})
            if fraction > 0:
                specks, areas = isolated_specks(labels_w, fraction)
                if specks:
                    lone = np.round(areas[specks] / float(self.network.scale) ** 2).astype(np.int64)
                    if judges_specks(np.count_nonzero(areas), opts["isolated_min_objects"]):
                        dropped, labels_w = lone, drop_labels(labels_w, specks, areas)
                    else:  # too few objects to judge specks by (an early embryo): kept, and said (the command)
                        spared = lone
        labels, objects = _input_labels(labels_w, shape)
        return SegmentationResult(  # (the maps on first use: _AtInputSize; the mask: labels > 0, the result's own)
            probability=_AtInputSize(fg, shape), labels=labels, centroids=objects, mask=None,
            extra={"scale": self.network.scale, **({"isolated_dropped": dropped} if dropped is not None else {}),
                   **({"isolated_kept": spared} if spared is not None else {}),
                   **({"no_structure": True} if nothing else {})},
        )


class MembranePredictor(_SegmentationPredictor):
    """Membrane segmentation: membrane probability, membrane mask and cell instances.

    Three heads are supported (``output.head`` in the card):

    ``"three_class"`` (the shipped model)
        Softmax over (background, cell interior, cell boundary) learned from cell label
        images; the membrane probability is p(boundary), and cells grow by a watershed from
        the interior blobs over the inside of the embryo (``1 - p(background)``).
    ``"three_class_distance"`` (what ``devolens models export`` writes for a run with ``model.distance_head``)
        The same three classes and a 4th channel, each cell pixel's distance to its edge (relative, sigmoid):
        read as ``"three_class"``, the cells seeded by that distance instead of p(interior).
    ``"membrane"``
        Sigmoid membrane probability (optionally a second "inside" channel); cells are
        grown by a watershed on the membrane probability from seeds far from any membrane.

    Postprocess options (working-resolution pixels, as the nuclei predictor's): ``threshold`` (0.5),
    ``seed_threshold`` (0.5), ``min_distance`` (3), ``min_size`` (20), ``smooth`` (1.0): the class's fallbacks,
    which the shipped membrane card sets alike (``predictor.postprocess_options`` shows what runs); and
    ``edge_membrane`` (0 here, as the card runs the network; ``segment membrane`` sets 0.25,
    :data:`~devolens.predict.postprocess.EDGE_MEMBRANE`): objects on the embryo's outer edge with membrane along less
    than this share of their outline are dropped (:func:`~devolens.predict.postprocess.drop_edge_pieces`: pieces of the
    eggshell and of the space around the cells, mostly in early embryos); ``postprocess={"edge_membrane": 0.25}``
    drops them as the command does.

    A frame in which nothing stands out from its own noise (a camera's dark frame, an empty field, a frame of
    noise in a movie: :func:`~devolens.predict.postprocess.lacks_structure`) gets no cells, and
    ``extra["no_structure"]`` True (and a :class:`~devolens.errors.NoSignalWarning` naming it): the network reads
    noise as a field of cells (hundreds in a dark frame). Images segmented in blocks (giant ones) are not judged.

    Colour images: :meth:`predict` reads the channel ``devolens segment membrane`` reads of one image: the card's
    ``auto`` rule (the channel with the most bright structure at a nucleus's scale, where thin lines fade), unless
    that channel holds blobs (nuclei) and another holds lines (membranes), which is then read: a two-colour image of
    membranes and nuclei is read by its membranes (:func:`~devolens.predict.notes.membrane_channel`, the one function
    both use); the result's ``extra["color_read"]`` names the channel read. Grey images are read as they are.
    :meth:`predict_batch` and :meth:`predict_iter` read each image as :meth:`predict` reads it alone (their images
    may each be laid out its own way: a two-colour image beside a green-only export), so that ``predict_batch([x])``
    gives ``predict(x)``'s result, as ``devolens segment membrane`` reads a folder's files. Another channel, for
    every image: ``load("membrane", channel="green")`` (``red``, ``green``, ``blue``, ``mean``, ``max``: ``segment
    --color``), which no rule overrides.
    """

    default_head = "three_class"
    # (three_class_distance: what models export writes for a membrane run with a distance head)
    heads = ("three_class", "membrane", "three_class_distance")
    postprocess_keys = ("threshold", "seed_threshold", "min_distance", "min_size", "smooth", "edge_membrane")
    size_objects = "enclosed"  # cells outlined by membranes
    postprocess_fallbacks = dict(threshold=0.5, seed_threshold=0.5, min_distance=3.0, min_size=20, smooth=1.0,
                                 edge_membrane=0.0)
    # a diameter given in pixels is held to the cells' own estimated diameter, not to auto's choice (the keep band
    # 0.55-1.15x keeps a slice shrunk to 0.5x as it is: auto's diameter the reference 60 px, its cells 30): see
    # diameter_check
    diameter_checked_by = "cells"
    # a movie's magnification is judged once 5 slices show this many cells: the membrane size model is as
    # reliable from 32 cells as from 64 (median error 6.2-6.5 % vs 6.0-6.4 % on its 2400 training renders;
    # 5.6 % vs 6.2 % on the held-out ones), and a slice seldom shows 64 cells, so 64 read every movie ahead
    # to the read-ahead limit (240 frames / 256 MB) before its first result
    size_good_objects = 32
    # noise reads as cells to it (a camera's dark frame: hundreds; the nuclei network reads it as background)
    checks_structure = True

    def _nothing(self, probs: np.ndarray, shape: tuple[int, int]) -> SegmentationResult:
        return self._finish(probs, shape, nothing=True)

    def _own_channels(self, images: Iterator, reads: collections.deque) -> Iterator:
        """:meth:`predict_batch`'s and :meth:`predict_iter`'s images, each colour one read as :meth:`predict` reads
        it alone (:meth:`_read_by`): one whose membranes lie in another channel than the rule's (a two-colour image
        of membranes and nuclei) given on as that channel's plane, ``reads`` keeping the channel (None for the
        others), in input order, for its result's ``extra["color_read"]``; grey images, images prepared ahead and
        every image where a channel was given, as they are."""
        if self.network.channel != "auto":
            yield from images
            return
        from devolens.predict.notes import membrane_plane

        for image in images:
            found = None if isinstance(image, Prepared) else membrane_plane(image)
            reads.append(None if found is None else found[1][0])
            yield image if found is None else found[0]

    def _read_by(self, image: np.ndarray | Prepared) -> "_SegmentationPredictor":
        """Under the ``auto`` rule, a view that reads a colour ``image``'s channel of membranes where the rule's
        channel holds nuclei (:func:`~devolens.predict.notes.membrane_channel`, ``devolens segment membrane``'s
        choice); this predictor otherwise (a grey image, a channel given, an image prepared ahead)."""
        if isinstance(image, Prepared) or self.network.channel != "auto":
            return self
        from devolens.predict.notes import membrane_channel

        found = membrane_channel(image)
        return self if found is None else self._reading(found[0])

    def _finish(self, probs: np.ndarray, shape: tuple[int, int], options: dict | None = None,
                nothing: bool = False) -> SegmentationResult:
        """The result of a frame from the network's maps; ``nothing``: no cells (a frame with no structure above
        its noise), the maps as they are."""
        opts = self.postprocess_for(options)
        three = self.head in ("three_class", "three_class_distance")  # (a 4th channel: the distance head)
        membrane = probs[2] if three else probs[0]
        if nothing:
            labels_w = np.zeros(probs.shape[1:], np.int32)
        elif three:
            # seeds: the interior class, or the distance head's cell centres (as the run's validation read them)
            interior = probs[3] if self.head == "three_class_distance" else probs[1]
            labels_w = instances_from_probabilities(
                1.0 - probs[0], interior, **{k: v for k, v in opts.items() if k != "edge_membrane"})
        else:
            labels_w = instances_from_boundary_map(
                probs, threshold=opts["threshold"], min_size=opts["min_size"], smooth=opts["smooth"])
        if not nothing:  # pieces of the eggshell and the space around the cells, outlined by no membrane
            labels_w = drop_edge_pieces(labels_w, membrane, float(opts.get("edge_membrane", 0.0)))
        labels, objects = _input_labels(labels_w, shape)
        return SegmentationResult(  # (the maps on first use, picklable: _AtInputSize)
            probability=_AtInputSize(membrane, shape), labels=labels, centroids=objects,
            mask=_AtInputSize(membrane, shape, opts["threshold"]),
            extra={"scale": self.network.scale, **({"no_structure": True} if nothing else {})},
        )
