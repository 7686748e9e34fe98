"""Torch datasets for training: folder pairs, render output, live renders, HDF5 tiles.

Every dataset yields dicts of tensors:

- ``image``: float32 ``(C, H, W)`` in [0, 1] (after normalisation and augmentation; with ``normalize``
  ``none`` the file's own values, which augmentation keeps within the image's own range);
- ``target``: segmentation: int64 ``(H, W)`` class ids (binary: 0/1; ``boundary``: 0
  background, 1 interior, 2 boundary); population: float32 ``(K,)`` counts (cells);
- ``labels`` (segmentation only): int32 ``(H, W)`` instance labels, for instance metrics;
- ``index``: int64, the sample's position in the dataset (for per-sample losses).

Splits are made by group (embryo, or any column), never by row: frames of one embryo are
strongly correlated, and a row split leaks them into validation.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from devolens.errors import DevolensError, listed, option
# mask names (the image's stem plus one of MASK_SUFFIXES, in any case) are devolens.io.frames': segment leaves the
# masks of a folder's images out of its frames by the same names
from devolens.io.frames import IMAGE_NAME_SUFFIXES, MASK_SUFFIXES  # noqa: F401 (this module's names too)
from devolens.io.frames import image_bases as _image_bases
from devolens.io.frames import is_mask_name as _is_mask_name
from devolens.io.frames import mask_base as _mask_stem
from devolens.io.frames import mask_stems as _mask_stems
from devolens.io.frames import plain_stem as _plain_stem

IMAGE_EXTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".webp")  # what devolens.io.images.read_image reads (not GIF)
#: sub-folder names (any case) that put their images on the validation side of the split, and on the training side
VAL_FOLDERS = ("val", "validation", "valid", "test")
TRAIN_FOLDERS = ("train", "training")
LETTERS = ("A", "E", "M", "P", "C", "D", "Z")
TARGETS = ("semantic", "boundary", "classes")
#: the target of a pixel a mask marks 'ignore' (:func:`ignore_label`): no class, left out of the training losses
#: (:mod:`devolens.train.losses`) and of the validation scores
IGNORE_INDEX = -1


# ----------------------------------------------------------------------------- reading
def read_image(path: str | Path, *, indices: bool = False) -> np.ndarray:
    """Read a PNG/JPEG/TIFF image (via :func:`devolens.io.images.read_image`; ``indices``: a palette
    image as its indices) as HxW or HxWxC; a channels-first TIFF (C, H, W with C <= 4) is moved to
    channels-last. NaN or infinite values (float images) are refused."""
    from devolens.io.images import read_image as _read

    arr = np.asarray(_read(path, indices=indices))
    if arr.ndim == 3 and arr.shape[0] in (1, 2, 3, 4) and arr.shape[-1] not in (1, 2, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # TIFF stored channels-first
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] <= 4)):
        raise DevolensError(f"not a 2-D image (array of shape {arr.shape}: a z-stack or timelapse?): training takes "
                            "one plane per file; save a projection or each plane as its own image", path=path)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():  # else the loss is NaN, read as a diverged training
        raise DevolensError("NaN or infinite pixel values (outside a registered or deconvolved field?): replace them "
                            "with numbers first (Fiji: Process > Math > Remove NaNs)", path=path)
    return arr


def _lossy_webp(path: Path) -> bool:
    """Whether a WebP file holds lossy (VP8) data rather than lossless (VP8L): its first chunks say."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP" and b"VP8 " in head[12:] and b"VP8L" not in head[12:]


def read_mask(path: str | Path, kinds: list[str] | None = None, classes: bool = False) -> np.ndarray:
    """Read a mask (label image) as an ``HxW`` array of integer labels, 0 the background.

    Masks come in many forms from annotation tools, and each is read for what it means:

    - a paletted (indexed-colour) PNG, GIF, BMP or TIFF: the palette indices (the labels the tool drew),
      not the colours they are shown in;
    - a colour image (RGB or RGBA: a label image saved coloured): each colour is one label, black and
      fully transparent pixels background; an image whose channels are equal is read as grey;
    - integers of any width, or floats holding whole numbers: the values; labels of 65536 and above
      (or a signed or 64-bit image) are renumbered 1, 2, 3... in order, so that no two objects merge.

    Parameters
    ----------
    path : str or Path
        PNG, TIFF or BMP file.
    kinds : list, optional
        ``"colour"`` is appended for a colour mask (the caller's notes).
    classes : bool
        The mask holds class ids (target ``classes``): a colour mask is refused (its colours give no
        class numbers); values stay as they are.

    Returns
    -------
    ndarray
        ``HxW`` uint8 or uint16 (int32 beyond 65535 objects).

    Raises
    ------
    DevolensError
        A JPEG mask (lossy compression changes the labels at every edge), negative or fractional
        values (a probability map, a mask resized with interpolation), not one plane, or smoothed
        (anti-aliased) edges: most labels (colours) are edge fragments between others
        (:func:`edge_fragments`), the blends of an overlay exported from a viewer or of a resize.
    """
    path = Path(path)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        raise DevolensError("a mask saved as JPEG: its lossy compression changes the labels at every edge; save "
                            "masks as PNG or TIFF", path=path)
    if path.suffix.lower() == ".webp" and _lossy_webp(path):
        raise DevolensError("a mask saved as lossy WebP: its compression changes the labels at every edge; save "
                            "masks as PNG, TIFF or lossless WebP", path=path)
    colour = False
    # a paletted PNG/GIF/BMP or TIFF (a label image with a colour table, e.g. Glasbey): its indices are the labels
    arr = read_image(path, indices=True)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.ndim == 3:
        c = arr.shape[-1]
        if c not in (3, 4) and c != 1:
            raise DevolensError(f"a mask with {c} channels: save the label image as one plane", path=path)
        if c in (3, 4) and path.suffix.lower() in (".tif", ".tiff"):  # (only a colour-looking TIFF is asked)
            from devolens.io.stacks import _planar_rgb

            if _planar_rgb(path):  # (3|4, H, W) planes: tifffile's default for a stack of 3 or 4, rarely colour
                raise DevolensError(f"a mask of {c} planes (shape ({c}, H, W): a z-stack of labels?); a mask is one "
                                    "label image: save one plane per image (a colour label image: as an RGB PNG)",
                                    path=path)
        clear = arr[..., 3] == 0 if c == 4 else None
        rgb = arr[..., :3] if c >= 3 else arr
        if all(np.array_equal(rgb[..., 0], rgb[..., k]) for k in range(1, rgb.shape[-1])):
            arr = rgb[..., 0].copy()
        elif classes:
            raise DevolensError("a colour mask, whose colours say no class number: save the class ids (0, 1, 2...) "
                                "as a grey or paletted image", path=path)
        else:  # a coloured label image: one label per colour (in colour order), black is the background
            if rgb.dtype.kind in "ui" and rgb.dtype.itemsize <= 2:  # one number per colour, hashed: fast
                wide, bits = (np.uint32, 8) if rgb.dtype.itemsize == 1 else (np.uint64, 16)
                packed = rgb[..., 0].astype(wide)
                for k in range(1, rgb.shape[-1]):
                    packed <<= wide(bits)
                    packed |= rgb[..., k]
                inverse, colours = pd.factorize(packed.ravel(), sort=True)
                black = np.asarray(colours) == 0
            else:
                colours, inverse = np.unique(rgb.reshape(-1, rgb.shape[-1]), axis=0, return_inverse=True)
                inverse, black = inverse.ravel(), (colours == 0).all(axis=1)
            ids = np.arange(1, len(colours) + 1, dtype=np.uint16 if len(colours) < 65536 else np.int64)
            ids[black] = 0
            arr = ids[inverse].reshape(rgb.shape[:2])
            colour = True
            if kinds is not None:
                kinds.append("colour")
        if clear is not None:
            arr = np.where(clear, 0, arr)
    if np.issubdtype(arr.dtype, np.floating):  # finite: read_image refuses NaN
        if not np.array_equal(arr, np.round(arr)):
            raise DevolensError("a mask with fractional values (a probability map, or a mask resized with "
                                "interpolation?); labels are whole numbers: 0 for background and 1, 2, 3... per "
                                "object", path=path)
        arr = arr.astype(np.int64)
    if arr.dtype not in (np.uint8, np.uint16):
        low = int(arr.min(initial=0))
        if low < 0:
            raise DevolensError(f"a mask with negative values (down to {low}); labels are 0 for background and 1, 2, "
                                "3... per object: set the pixels to leave out to 0", path=path)
        if int(arr.max(initial=0)) < 65536 or classes:
            arr = arr.astype(np.uint16 if int(arr.max(initial=0)) < 65536 else np.int32)
        else:
            from skimage.segmentation import relabel_sequential

            lab = relabel_sequential(arr.astype(np.int64))[0]
            arr = lab.astype(np.uint16 if lab.max(initial=0) < 65536 else np.int32)
    if not classes:
        _refuse_smoothed(arr, path, colour)
    return arr


def check_mask_size(image: Sequence[int], mask: Sequence[int], source: str) -> None:
    """Refuse a mask whose height and width (the first two of its shape ``mask``) are not its image's (of the
    shape ``image``), in the files' own pixels; ``source`` names the files."""
    (h, w), (mh, mw) = tuple(image[:2]), tuple(mask[:2])
    if (mh, mw) != (h, w):
        # a mask whose rows are the image's columns: saved transposed (a numpy .T, a (x, y) array), not another's
        if (mh, mw) == (w, h):
            raise DevolensError(f"image and mask differ in size ({w}x{h} and {mw}x{mh} pixels: {source}): rows and "
                                "columns swapped (a transposed mask?); a mask has its image's size, pixel for pixel")
        raise DevolensError(f"image and mask differ in size ({w}x{h} and {mw}x{mh} pixels: {source}); a mask has "
                            "its image's size, pixel for pixel (a mask of another image, or one resized?)")


#: labels with no inside pixel (edge fragments) that make a mask read as smoothed: at least this many...
SMOOTHED_MIN_LABELS = 5
#: ...and more than this share of its labels (while others have an inside: not a mask of outlines). Smoothed masks
#: measure 0.75 and more (a colour mask halved with INTER_AREA: three blends per nucleus; resized up, blurred or
#: drawn anti-aliased: 0.9 and more); legitimate label images of dense small nuclei, partly hidden in projections,
#: reach 0.5-0.66 at 4-5 px a nucleus (a render's densest frames at 1/6-1/8 of their size) and were refused at 0.5
SMOOTHED_SHARE = 0.7


def _inside(lab: np.ndarray) -> np.ndarray:
    """The pixels of a label image whose four neighbours all hold their own value (the image's border is not an
    edge): a nucleus has such pixels, a smoothed edge's blended colours or a thin rim none."""
    pad = np.pad(lab, 1, mode="edge")
    mid = pad[1:-1, 1:-1]
    return (mid == pad[:-2, 1:-1]) & (mid == pad[2:, 1:-1]) & (mid == pad[1:-1, :-2]) & (mid == pad[1:-1, 2:])


def edge_fragments(labels: np.ndarray) -> tuple[int, int]:
    """How many labels of a label image are only edge fragments, and how many labels it holds.

    A label is an edge fragment when none of its pixels has all four neighbours of its own label (a line or
    a speck at most two pixels wide): a nucleus has an inside, while the colours that smoothing (anti-aliasing,
    resizing with interpolation) blends along every edge have none.

    Parameters
    ----------
    labels : ndarray
        ``HxW`` integer labels, 0 the background.

    Returns
    -------
    (fragments, labels) : tuple of int
        Non-zero labels without an inside pixel, and all non-zero labels.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.size == 0 or not lab.any():
        return 0, 0
    inside = _inside(lab)
    if lab.dtype in (np.uint8, np.uint16) or (lab.min() >= 0 and lab.max() < 1 << 20):
        codes = lab if lab.dtype in (np.uint8, np.uint16) else lab.astype(np.int64)
    else:  # large or signed values: their ranks (0 stays 0 when present: the smallest)
        codes = np.unique(lab, return_inverse=True)[1].reshape(lab.shape)
    present = np.bincount(codes.ravel()) > 0
    has_inside = np.bincount(codes[inside].ravel(), minlength=len(present)) > 0
    if (lab == 0).any():
        present[0] = False
    return int((present & ~has_inside).sum()), int(present.sum())


#: a grey mask reads as resized with interpolation when more than this share of its labels (and at least
#: :data:`SMOOTHED_MIN_LABELS`) lie in several pieces, one of them a thin rim apart from the label's body
#: (:func:`split_labels`). Bilinear resizes of instance masks (x0.5 to x2, 8- and 16-bit) measure 0.6-0.95; label
#: images of renders, of `devolens segment` and of segmentations of real embryos, also shrunk with nearest-neighbour
#: to 1/8, at most 0.21 (specks of a nucleus parted by another in a projection)
SPLIT_SHARE = 0.5


def split_labels(labels: np.ndarray) -> tuple[int, int]:
    """How many labels of a grey label image lie in several pieces, one a thin rim (no pixel with all four
    neighbours of its label) apart from a piece with an inside, and how many labels it holds. Resizing a label
    image with (bi)linear interpolation blends every edge into a rim of in-between values: a rim of label 4 runs
    between nucleus 9 and the background, far from nucleus 4, so that nearly every label has such a piece.

    Parameters
    ----------
    labels : ndarray
        ``HxW`` integer labels, 0 the background.

    Returns
    -------
    (split, labels) : tuple of int
        Labels with a detached thin piece besides a body, and all non-zero labels.
    """
    from skimage.measure import label

    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.size == 0 or not lab.any():
        return 0, 0
    comps = label(lab, background=0, connectivity=1)  # regions of one value each
    n = int(comps.max())
    inside = _inside(lab)
    body = np.bincount(comps[inside], minlength=n + 1)[1:] > 0  # per region: it has an inside
    fg = comps > 0
    value = np.zeros(n + 1, lab.dtype)
    value[comps[fg]] = lab[fg]
    codes = np.unique(value[1:], return_inverse=True)[1].ravel()  # per region: its label's rank
    k = int(codes.max()) + 1
    rims = np.bincount(codes, ~body, minlength=k) > 0
    bodies = np.bincount(codes, body, minlength=k) > 0
    return int((rims & bodies).sum()), k


def _refuse_smoothed(labels: np.ndarray, path: Path, colour: bool) -> None:
    """Refuse a mask whose edges were smoothed: most of its labels are edge fragments between others (a grey one:
    or in pieces, :func:`split_labels`), and an image given as its own mask (no background pixel, most of its
    values scattered pixels)."""
    if labels.size and not (labels == 0).any():  # no background at all: an instance mask always has some
        thin, n = edge_fragments(labels)
        if n >= SMOOTHED_MIN_LABELS and thin > SMOOTHED_SHARE * n:
            low, high = labels.min(), labels.max()
            raise DevolensError(
                f"this mask holds no background (0) pixel, and {thin} of its {n} values ({low} to {high}) are "
                "scattered pixels rather than objects: an image rather than its mask (a copy of the image under the "
                "mask's name)? A mask holds 0 for the background and 1, 2, 3... per nucleus", path=path)
    if not colour:
        split, n = split_labels(labels)
        if split >= SMOOTHED_MIN_LABELS and split > SPLIT_SHARE * n:
            raise DevolensError(
                f"{split} of the {n} labels in this mask lie in several pieces, thin rims of in-between values "
                "around other labels: its edges look smoothed, as in a mask resized with (bi)linear interpolation, "
                "and each rim would become a fake nucleus. Resize masks only with nearest-neighbour interpolation "
                "(OpenCV INTER_NEAREST, skimage order=0, ImageJ 'None'), or resize the original label image again",
                path=path)
    if not colour:  # a grey label image is judged only when it is a blurred binary mask (a fifth of it one value):
        fg = labels > 0  # dense tiny nuclei of a true label image are edge fragments too, and must pass
        if not fg.any() or (labels == labels.max()).sum() <= 0.2 * fg.sum():
            return
    thin, n = edge_fragments(labels)
    if thin < SMOOTHED_MIN_LABELS or thin <= SMOOTHED_SHARE * n or thin == n:  # all thin: outlines, or specks
        return
    what = "colour" if colour else "value"
    like = "an overlay exported from a viewer or a mask resized" if colour else "a mask blurred or resized"
    raise DevolensError(
        f"{thin} of the {n} {what}s in this mask are thin edge fragments with no inside, lying between other {what}s: "
        f"its edges look smoothed (anti-aliased), as in {like} with interpolation, and each blended edge {what} "
        "would become a fake nucleus. Save the "
        "label image itself as PNG or TIFF (0 background and 1, 2, 3... or one flat colour per nucleus; napari: save "
        "the Labels layer, not a screenshot), and resize masks only with nearest-neighbour interpolation, without "
        "smoothing", path=path)


#: the names ``data.channel`` takes besides an index (``devolens segment``'s ``--color`` names): a colour's channel
#: (red 0, green 1, blue 2), or the per-pixel maximum or mean of the channels
CHANNEL_NAMES = ("red", "green", "blue", "max", "mean")


def colour_image(img: np.ndarray, path: str | Path | None = None) -> bool:
    """Whether ``img`` (as :func:`read_image` returns it) is a colour image rather than a multi-channel one: 3 or 4
    channels, and from a PNG, JPEG, BMP or WebP file (whose only channels are colours), or a TIFF of any type
    (8- or 16-bit, float) stored as 3 or 4 samples, chunky or planar, with no C axis: read as one colour image by
    ``devolens segment`` too (:func:`devolens.io.stacks.stack_info` gives its axes as ``YXS`` or ``SYX``). An
    ImageJ or OME hyperstack's C axis, or channels last saved without samples (pages of a few pixels wide, which
    segment refuses), are channels. ``path`` None (an array): 3 or 4 channels."""
    if img.ndim != 3 or img.shape[-1] not in (3, 4):
        return False
    if path is None or Path(path).suffix.lower() not in (".tif", ".tiff"):
        return True
    from devolens.io.stacks import _readable_layout

    layout = _readable_layout(Path(path))
    return layout is None or ("S" in layout[0] and "C" not in layout[0])


def select_channel(img: np.ndarray, channel: int | str | None, path: str | Path | None = None,
                   channels: int = 1) -> np.ndarray:
    """The channel of ``img`` a recipe's ``data.channel`` picks, as ``HxW`` (the image as it is where none is
    picked and it is grey or a colour image, :func:`colour_image`).

    Parameters
    ----------
    img : ndarray
        ``HxW`` or ``HxWxC`` image from :func:`read_image`.
    channel : int, str or None
        An index (0-based: the C axis of a multi-channel TIFF, as ``devolens segment --channel``), a name of
        :data:`CHANNEL_NAMES`, or None (a colour image is reduced later, by :func:`to_channels`).
    path : str or Path, optional
        The file (errors name it; a TIFF's layout tells a colour image from a multi-channel one).
    channels : int
        The network's input channels (``data.channels``): with more than one and no ``channel`` the image is
        returned as it is (:func:`to_channels` fits it to them), a multi-channel image included.

    Raises
    ------
    DevolensError
        A multi-channel image and no ``channel`` (the network would learn from a projection of the channels that
        ``devolens segment`` refuses to make), an index beyond the image's channels, or a TIFF of a few z-planes
        or time points, not channels (:func:`_refuse_planes`).
    """
    c = 1 if img.ndim == 2 else int(img.shape[-1])
    if c > 1 and path is not None:
        _refuse_planes(path, c)
    if int(channels) > 1 and channel is None:  # a network of several input channels takes them all
        return img
    if c == 1:
        if isinstance(channel, int) and not isinstance(channel, bool) and channel > 0:
            raise DevolensError(f"data.channel is {channel}, but this image has one channel (data.channel: 0, or "
                                "null)", path=path)
        return img if img.ndim == 2 else img[..., 0]
    colour = colour_image(img, path)
    if channel is None:
        if colour:
            return img
        raise DevolensError(f"an image of {c} channels (not a colour image): training reads one channel, as `devolens "
                            f"segment` does; name the nuclei's in the recipe, data.channel: N (0 to {c - 1}), and "
                            "segment with the same --channel N", path=path)
    if channel in ("max", "mean"):
        planes = img[..., :3] if colour else img
        if channel == "max":
            return planes.max(axis=-1)
        mean = planes.mean(axis=-1)
        return (np.round(mean) if img.dtype.kind in "ui" else mean).astype(img.dtype)
    index = CHANNEL_NAMES.index(channel) if isinstance(channel, str) else int(channel)
    if not 0 <= index < c:
        said = f"{channel} (channel {index})" if isinstance(channel, str) else str(index)
        raise DevolensError(f"data.channel is {said}, but this image has {c} channels (0 to {c - 1})", path=path)
    if colour and index >= 3:
        raise DevolensError(f"data.channel is {index}, but this colour image's channel {index} is its alpha "
                            "(transparency), not the nuclei's: data.channel 0 to 2 (red, green, blue), max or mean",
                            path=path)
    return np.ascontiguousarray(img[..., index])


def _refuse_planes(path: str | Path, c: int) -> None:
    """Refuse a TIFF whose ``c`` planes (read as channels: 2 to 4 of them) are its stack's z-planes or time points
    (its axes, ImageJ's or OME's, name Z or T and no C), as :func:`read_image` refuses a stack of more planes:
    ``data.channel`` would pick one plane, and other images have no such planes."""
    from devolens.io.stacks import _readable_layout

    layout = _readable_layout(Path(path))
    axes = layout[0] if layout is not None else ""
    if "C" in axes or "S" in axes:
        return
    if "Z" in axes:
        raise DevolensError(f"a Z-stack of {c} planes (TIFF axes {axes}), not an image of channels: training takes "
                            "one plane per image; save its maximum projection (Fiji: Image > Stacks > Z Project, Max "
                            "Intensity), as `devolens segment` projects a stack, or one plane, under the image's name",
                            path=path)
    if "T" in axes:
        raise DevolensError(f"a timelapse of {c} time points (TIFF axes {axes}), not an image of channels: training "
                            "takes one plane per image; save each time point as its own image, with its own mask",
                            path=path)


def to_channels(img: np.ndarray, channels: int) -> np.ndarray:
    """Return ``img`` as HxWxC with ``channels`` channels.

    RGB -> 1 channel takes the per-pixel maximum (green nuclei on black keep their
    intensity); grey -> 3 channels repeats the plane; an alpha channel is dropped.
    """
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 4:
        img = img[..., :3]
    c = img.shape[-1]
    if c == channels:
        return img
    if channels == 1:
        return img.max(axis=-1, keepdims=True)
    if c == 1:
        return np.repeat(img, channels, axis=-1)
    if c > channels:
        return img[..., :channels]
    raise DevolensError(f"cannot turn a {c}-channel image into {channels} channels")


def percentile_levels(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 1st and 99.8th percentiles of each channel of an HxWxC image (the levels of ``percentile``
    normalisation)."""
    flat = np.asarray(img).astype(np.float32).reshape(-1, img.shape[-1])
    return np.percentile(flat, 1.0, axis=0), np.percentile(flat, 99.8, axis=0)


def normalize_image(img: np.ndarray, mode: str = "dtype", levels: tuple | None = None) -> np.ndarray:
    """Scale an image to float32 in [0, 1].

    Parameters
    ----------
    img : ndarray
        HxWxC image, any dtype.
    mode : {"dtype", "percentile", "log", "none"}
        ``dtype``: divide by the dtype's maximum (255 for uint8, 65535 for uint16; floats
        are clipped to [0, 1]); ``percentile``: per channel, map the 1st..99.8th percentile
        to 0..1 (for uint16 microscopy with a narrow range); ``log``: camera counts on a log
        scale, ``log1p(x) / log1p(65535)`` (the live/dead model's, as
        :func:`devolens.data.h5stream.normalize_uint16`); ``none``: cast only.
    levels : (lo, hi), optional
        ``percentile``: the levels to use (:func:`percentile_levels` of the whole image a region of it
        was cut from), instead of the image's own.
    """
    if mode == "none":
        return img.astype(np.float32)
    if mode == "percentile":
        x = img.astype(np.float32)
        lo, hi = levels if levels is not None else percentile_levels(x)
        return np.clip((x - lo) / np.maximum(hi - lo, 1e-6), 0, 1).astype(np.float32)
    if mode == "log":
        from devolens.data.h5stream import normalize_uint16

        return normalize_uint16(img)
    if mode != "dtype":
        raise DevolensError(f"unknown normalisation {mode!r} (dtype, percentile, log, none)")
    if np.issubdtype(img.dtype, np.integer):
        return (img.astype(np.float32) / float(np.iinfo(img.dtype).max)).astype(np.float32)
    return np.clip(img.astype(np.float32), 0, 1)


def inner_boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels of an instance whose 4-neighbourhood holds another label: ``skimage.segmentation.find_boundaries(
    labels, mode="inner") & (labels > 0)``, by OpenCV for 2-D 8- and 16-bit labels (a tenth of the time; the same
    pixels, property-tested), else by scikit-image."""
    if labels.ndim == 2 and labels.dtype in (np.uint8, np.uint16) and labels.size:  # (3-D: OpenCV's channels)
        import cv2

        cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))  # border pixels see only their in-image neighbours
        arr = np.ascontiguousarray(labels)
        return (cv2.dilate(arr, cross) != cv2.erode(arr, cross)) & (arr > 0)
    from skimage.segmentation import find_boundaries

    lab = labels.astype(np.int64)
    return find_boundaries(lab, mode="inner") & (lab > 0)


def labels_to_target(labels: np.ndarray, target: str = "semantic", ignore: int = 0) -> np.ndarray:
    """Turn a label image into a training target (int64 class ids, HxW).

    Parameters
    ----------
    labels : ndarray
        HxW integer image: instance labels (0 = background) or class ids.
    target : {"semantic", "boundary", "classes"}
        ``semantic``: 1 where ``labels > 0``; ``boundary``: 0 background, 1 interior,
        2 boundary (inner boundary pixels of each instance, so touching nuclei are
        separated; later split into instances by the interior's connected components);
        ``classes``: the values as they are (a class-id mask, e.g. live/dead).
    ignore : int
        The mask's 'ignore' value (:func:`ignore_label`; 0: none): its pixels become
        :data:`IGNORE_INDEX`, unknown rather than one object, which the losses leave out (nuclei
        beside them keep their boundary there, as beside the background).
    """
    labels = np.asarray(labels)
    if labels.ndim == 3:
        labels = labels[..., 0]
    if target == "semantic":
        out = (labels > 0).astype(np.int64)
    elif target == "boundary":
        edge = inner_boundaries(labels)
        out = (labels > 0).astype(np.int64)
        out[edge] = 2
    elif target == "classes":
        out = labels.astype(np.int64)
    else:
        raise DevolensError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if ignore:
        out[labels == ignore] = IGNORE_INDEX
    return out


def _resize(arr: np.ndarray, size: tuple[int, int] | None, nearest: bool) -> np.ndarray:
    if size is None or tuple(arr.shape[:2]) == tuple(size):
        return arr
    import cv2

    h, w = int(size[0]), int(size[1])
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if arr.shape[0] > h else cv2.INTER_LINEAR)
    squeeze = arr.ndim == 3 and arr.shape[-1] == 1
    src = arr
    if nearest and arr.dtype not in (np.uint8, np.uint16, np.int16, np.float32):
        src = arr.astype(np.float32)
    out = cv2.resize(src, (w, h), interpolation=interp)
    if nearest and out.dtype != arr.dtype:
        out = out.astype(arr.dtype)
    if squeeze and out.ndim == 2:
        out = out[..., None]
    return out


def _pad_to(arr: np.ndarray, multiple: int) -> np.ndarray:
    if multiple <= 1:
        return arr
    h, w = arr.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return arr
    pad = [(0, ph), (0, pw)] + [(0, 0)] * (arr.ndim - 2)
    return np.pad(arr, pad)


def ignore_padding(target: np.ndarray, own: Sequence[int]) -> np.ndarray:
    """A sample's training target with the padding to the network's multiple (``pad_multiple``: the rows and
    columns beyond its own ``(height, width)``) set to :data:`IGNORE_INDEX` (it was background to learn), so that
    the losses leave it out as they leave out :func:`pad_collate`'s; the target's own pixels are untouched (made
    from the padded labels as before: an object at the image's edge keeps the boundary the padding gives it).

    Parameters
    ----------
    target : ndarray
        The int64 target (HxW) of the padded labels (:func:`labels_to_target`); changed in place.
    own : (int, int)
        The sample's own height and width (its item's ``size``).

    Returns
    -------
    ndarray
        ``target``.
    """
    h, w = int(own[0]), int(own[1])
    target[h:] = IGNORE_INDEX
    target[:, w:] = IGNORE_INDEX
    return target


def pad_collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """``torch``'s default collation for samples of different sizes (images of several cameras or crops
    in one folder): each sample's image, target, labels and distance are padded at the bottom and right
    to the largest height and width in the batch: the image, labels and distance with zeros (a dark image, no
    object), an integer target with :data:`IGNORE_INDEX`, so that the losses leave the padding out (it was
    background to learn, and a small image's own pixels weighed less than a large one's). For training:
    validation (:func:`devolens.train.trainer.evaluate_model`) runs the samples of each size apart and scores each
    on its own pixels (its ``size``), so that its metrics do not depend on the batch size."""
    from torch.utils.data import default_collate

    shapes = {tuple(item["image"].shape[-2:]) for item in batch if torch.is_tensor(item.get("image"))}
    if len(shapes) <= 1:
        return default_collate(batch)
    h, w = max(s[0] for s in shapes), max(s[1] for s in shapes)
    padded = []
    for item in batch:
        item = dict(item)
        ih, iw = item["image"].shape[-2:]
        for key, val in item.items():
            if torch.is_tensor(val) and val.ndim >= 2 and tuple(val.shape[-2:]) == (ih, iw):
                fill = IGNORE_INDEX if key == "target" and not val.is_floating_point() else 0
                item[key] = torch.nn.functional.pad(val, (0, w - iw, 0, h - ih), value=fill)
        padded.append(item)
    return default_collate(padded)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A reproducible 32-bit seed for one sample in one epoch (for augmentation/rendering)."""
    return zlib.crc32(f"{int(seed)}:{int(epoch)}:{int(index)}".encode()) & 0x7FFFFFFF


# ----------------------------------------------------------------------------- indexing
#: folders that hold no data of the user's (macOS zip extraction, recycle bins, napari/Fiji caches)
_SKIP_DIRS = ("__MACOSX", "$RECYCLE.BIN", "__pycache__")


def _list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """The image files of ``folder`` (and, with ``recursive``, of its sub-folders), sorted; hidden files and
    folders (``.DS_Store``, macOS ``._x.png`` copies, ``.git``) and system folders (``__MACOSX``) are skipped."""
    found = []
    for p in (folder.rglob("*") if recursive else folder.iterdir()):
        parts = p.relative_to(folder).parts
        if any(x.startswith(".") or x in _SKIP_DIRS for x in parts):
            continue
        if p.suffix.lower() in IMAGE_EXTS and p.is_file():
            found.append(p)
    return sorted(found)


def _pair_files(image_dir: Path, mask_dir: Path) -> tuple[list[Path], list[Path]]:
    """The image files and the mask files of a folder-pairs layout; where both are one folder (cellpose's
    layout: ``x.tif`` beside ``x_masks.tif``), the files named like masks are the masks, the others the images,
    except that a file named like a mask whose own mask lies beside it is an image (``y-label.png`` beside
    ``y-label_masks.png``: the shorter name is the image's)."""
    images, masks = _list_images(image_dir), _list_images(mask_dir)
    if image_dir.resolve() == mask_dir.resolve():
        folders: dict[Path, list[Path]] = {}
        for p in images:
            folders.setdefault(p.parent, []).append(p)
        masks = []
        for files in folders.values():
            stems = _mask_stems({p.stem for p in files})
            masks += [p for p in files if p.stem in stems]
        taken = set(masks)
        images = [p for p in images if p not in taken]
    return images, masks


@dataclass
class PairIndex:
    """Image/mask pairs matched by name, plus the files that found no partner."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    unmatched_images: list[Path] = field(default_factory=list)
    unmatched_masks: list[Path] = field(default_factory=list)


def find_pairs(image_dir: str | Path, mask_dir: str | Path) -> PairIndex:
    """Match images to masks by file name.

    ``images/x.png`` matches ``masks/x.png``, ``masks/x.tif``, ``labels/x_labels.tif``,
    ``x_mask.png``, ``x_seg.png``, ``x_cp_masks.png``, ``x-labels.png``, ... (the mask's stem, or its stem
    minus a suffix of :data:`MASK_SUFFIXES` such as ``_labels``, ``_masks`` or ``_mask``, equals the image's
    stem; the extension is free); ``x_img.png`` also matches ``x_masks.png`` (cellpose's names), and an
    OME-TIFF ``x.ome.tif`` matches ``x_labels.tif`` (``.ome`` is not part of the stem). Sub-folders are searched too, and an image in
    ``images/A/`` matches a mask in ``masks/A/``. When ``image_dir`` and ``mask_dir`` are one folder
    (cellpose's layout: ``x.tif`` beside ``x_masks.tif``), the files named like masks are the masks, but
    one whose own mask lies beside it is an image (``y-label.png`` + ``y-label_masks.png``).

    Parameters
    ----------
    image_dir, mask_dir : str or Path
        Folders of images and of masks.

    Returns
    -------
    PairIndex
        ``pairs`` sorted by image name, and the unmatched files on either side.

    Raises
    ------
    DevolensError
        A folder is missing, or a name is ambiguous: two masks for one image (``x_mask.png`` and
        ``x_masks.tif``), or two images for one mask (``x.png`` and ``x.tif``), which would pair a
        mask with the wrong image.
    """
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    for d in (image_dir, mask_dir):
        if not d.is_dir():
            raise DevolensError("folder not found", path=d)
    image_files, mask_files = _pair_files(image_dir, mask_dir)
    exact: dict[tuple[Path, str], list[Path]] = {}  # (sub-folder, stem) -> masks of that very name
    suffixed: dict[tuple[Path, str], list[Path]] = {}  # (sub-folder, stem less its mask suffix) -> masks
    for m in mask_files:
        sub = m.parent.relative_to(mask_dir)
        exact.setdefault((sub, _plain_stem(m.stem)), []).append(m)
        if _is_mask_name(m.stem):
            suffixed.setdefault((sub, _mask_stem(m.stem)), []).append(m)
    out = PairIndex()
    owner: dict[Path, Path] = {}
    for img in image_files:
        sub = img.parent.relative_to(image_dir)
        bases = _image_bases(img.stem)  # x.ome.tif: x; x_img.png: x_img and x
        named = exact.get((sub, bases[0]), []) + [m for b in bases for m in suffixed.get((sub, b), [])]
        cands = list(dict.fromkeys(named))  # once each, in order
        if not cands:
            out.unmatched_images.append(img)
            continue
        if len(cands) > 1:
            names = ", ".join(str(c.relative_to(mask_dir.parent)) for c in cands)
            raise DevolensError(f"{len(cands)} masks match {img.relative_to(image_dir.parent)} ({names}): which one "
                                "annotates it is unclear; keep one mask per image (move the others out of the folder)",
                                path=mask_dir)
        m = cands[0]
        if m in owner:
            raise DevolensError(f"{owner[m].relative_to(image_dir.parent)} and {img.relative_to(image_dir.parent)} "
                                f"share a name, so both would take the mask {m.relative_to(mask_dir.parent)}: rename "
                                "one (and its mask) or move it out of the folder", path=image_dir)
        owner[m] = img
        out.pairs.append((img, m))
    out.unmatched_masks = sorted(set(mask_files) - set(owner))
    return out


_EMBRYO_RE = re.compile(r"^(?P<embryo>.+)_t\d+$")
#: a time point's name with nothing before it (``t001``, ``_t001``, ``T001``): one movie's frame
_TIME_ONLY_RE = re.compile(r"^_?[tT]\d+$")
#: the group of the frames named by their time point alone (:data:`_TIME_ONLY_RE`): one movie
TIME_ONLY_GROUP = "t"


def _group_of(stem: str) -> str:
    """The group of a file of stem ``stem``: ``<embryo>`` of ``<embryo>_tNNN``, :data:`TIME_ONLY_GROUP` for a name
    that is a time point alone (``t001``: the frames of one movie, one group), else the stem."""
    m = _EMBRYO_RE.match(stem)  # (never a time point alone: that has no "_t" after a first character)
    if m:
        return m.group("embryo")
    return TIME_ONLY_GROUP if _TIME_ONLY_RE.match(stem) else stem


def _pair_group(path: Path, folder: Path) -> str:
    """The group of an image of a folder-pairs layout: ``<embryo>`` of ``<embryo>_tNNN``, one group for the frames
    named by their time point alone (``t001.png``, ``t002.png``: one movie), else the file's stem; in a sub-folder
    (``images/embryoA/t001.png``), the sub-folder (and the ``<embryo>`` its name gives)."""
    sub = path.parent.relative_to(folder)
    if sub == Path("."):
        return _group_of(_plain_stem(path.stem))
    m = _EMBRYO_RE.match(path.stem)
    return sub.as_posix() + (f"/{m.group('embryo')}" if m else "")


def _folder_side(path: Path, folder: Path) -> str:
    """``val`` for an image in a sub-folder named like a validation set (``images/val/x.png``, :data:`VAL_FOLDERS`),
    ``train`` for one in a training set's (:data:`TRAIN_FOLDERS`), else ``""``; the deepest such folder decides."""
    for part in reversed(path.parent.relative_to(folder).parts):
        if part.lower() in VAL_FOLDERS:
            return "val"
        if part.lower() in TRAIN_FOLDERS:
            return "train"
    return ""


def train_val_folders(folder: str | Path) -> bool:
    """Whether ``folder`` (the images folder, or the data folder where images and masks lie side by side) is
    split into a training and a validation set by its sub-folders: it has sub-folders, EVERY one of them (hidden
    and system folders aside) is named train or training (:data:`TRAIN_FOLDERS`) or val, validation, valid or test
    (:data:`VAL_FOLDERS`, any case), and one at least like a validation set (``images/train/`` + ``images/val/``,
    ``train/`` + ``val/`` + ``test/``). ``images/embryoA/``, ``images/embryoB/``, ``images/Test/`` is not: its
    sub-folders are groups (``data.split_by: folder`` splits it by its folders all the same)."""
    folder = Path(folder)
    try:
        subs = [e.name.lower() for e in folder.iterdir()
                if e.is_dir() and not e.name.startswith(".") and e.name not in _SKIP_DIRS]
    except OSError:
        return False
    return (bool(subs) and all(n in TRAIN_FOLDERS or n in VAL_FOLDERS for n in subs)
            and any(n in VAL_FOLDERS for n in subs))


def folder_split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The split the data's folders make (``images/train/`` + ``images/val/``, StarDist's and cellpose's way), or
    None.

    Parameters
    ----------
    df : pandas.DataFrame
        Samples from :func:`index_dataset` (its ``folder_side`` column).

    Returns
    -------
    (train, val) or None
        Samples in a folder named val, validation, valid or test (any case) validate, the others train; None
        where no sample, or every sample, lies in such a folder. Whether the folders should split the data is
        the caller's: ``data.split_by: folder``, or ``group`` where :func:`train_val_folders` holds
        (``df.attrs["train_val_folders"]``).
    """
    if "folder_side" not in df.columns:
        return None
    is_val = df["folder_side"].astype(str) == "val"
    if not is_val.any() or is_val.all():
        return None
    return df[~is_val], df[is_val]


#: how to turn cellpose's ``_seg.npy`` files into masks devolens reads (:func:`index_dataset`'s messages)
SEG_NPY_EXPORT = ("export the masks as images: cellpose --save_png or --save_tif, or the GUI's 'save masks as PNG' "
                  "(File menu), then give the folder of images with their x_masks.png / x_masks.tif beside them")


def seg_npy_images(images: Sequence[Path], root: Path, image_dir: Path, mask_dir: Path) -> list[str]:
    """Those of ``images`` (unmatched images of a folder-pairs layout) with a cellpose ``x_seg.npy`` beside them or
    in the masks folder's mirror of theirs, as paths relative to ``root``: annotated, but in a file devolens does
    not load."""
    found = []
    for img in images:
        name = f"{_plain_stem(img.stem)}_seg.npy"
        if (img.parent / name).is_file() or (mask_dir / img.parent.relative_to(image_dir) / name).is_file():
            found.append(img.relative_to(root).as_posix())
    return found


def seg_npy_hint(images: Sequence[str]) -> str:
    """What the note on files without a partner adds for ``images`` (:func:`seg_npy_images`): their annotations are
    cellpose ``_seg.npy`` files, and how to export them; ``""`` for none."""
    if not images:
        return ""
    k = len(images)
    return (f"; {k} of them ({listed(images, 3)}) {'has' if k == 1 else 'have'} only a cellpose _seg.npy beside "
            f"{'it' if k == 1 else 'them'}, a Python pickle devolens does not load: {SEG_NPY_EXPORT}")


def _parent_hint(root: Path) -> str:
    """`` (here PARENT)`` when ``root`` is itself an images or masks folder (``--data my_data/images``)."""
    if root.name.lower() in ("images", "imgs", "frames", "masks", "labels", "label"):
        return f" (here {root.parent})"
    return ""


#: the names (any case) of the folders of images and of masks that :func:`index_dataset` takes, first found first
IMAGE_FOLDERS = ("images", "frames", "imgs")
MASK_FOLDERS = ("masks", "labels", "label")


def _sub_folders(root: Path) -> list[Path]:
    """The sub-folders of ``root``, sorted (hidden and system folders left out)."""
    try:
        return sorted(d for d in root.iterdir()
                      if d.is_dir() and not d.name.startswith(".") and d.name not in _SKIP_DIRS)
    except OSError:
        return []


def _data_folder(folder: Path) -> bool:
    """Whether ``folder`` is a data folder :func:`index_dataset` reads (a render's ``frames.csv``, an images
    and a masks folder, or images with their masks beside them)."""
    if (folder / "frames.csv").is_file():
        return True
    names = {d.name.lower() for d in _sub_folders(folder)}
    if names & set(IMAGE_FOLDERS) and names & set(MASK_FOLDERS):
        return True
    return any(_is_mask_name(p.stem) for p in _list_images(folder, False))


def _no_layout(root: Path, scoring: bool = False) -> str:
    """What the error on a data folder of no known layout adds: its sub-folders that are data folders themselves
    (StarDist's ``train/images`` + ``train/masks`` beside ``test/...``: give one; the training one first, the
    held-out one first where a run is to be scored, ``scoring``), else the sub-folders found and the names an images
    and a masks folder go by."""
    subs = _sub_folders(root)
    data = [d for d in subs if _data_folder(d)]
    if data:
        train = next((d for d in data if d.name.lower() in TRAIN_FOLDERS), data[0])
        held = next((d for d in data if d.name.lower() in VAL_FOLDERS and d != train), None)
        names = listed([f"{d.name}/" for d in data])
        are = f"s {names} are data folders" if len(data) != 1 else f" {names} is a data folder"
        if scoring and held is not None:  # (evaluate: the images the run did not train on)
            give = option("data", repr(str(held)), cli_value=str(held))
            return f"; its sub-folder{are} of their own: give one, {give} to score the run on the held-out images"
        score = f" (and devolens evaluate RUN --data {held} to score the run on it)" if held is not None else ""
        give = option("data", repr(str(train)), cli_value=str(train))  # (train()'s argument, or the command's flag)
        return f"; its sub-folder{are} of their own: give one, {give}{score}"
    if not subs:
        return ""
    names = {d.name.lower() for d in subs}
    want = [f"{what} folder named {' or '.join(kinds)}" for what, kinds in
            (("images", IMAGE_FOLDERS), ("masks", MASK_FOLDERS)) if not names & set(kinds)]
    return (f"; it holds the sub-folder{'s' if len(subs) != 1 else ''} {listed([f'{d.name}/' for d in subs])}, "
            f"but no {' and no '.join(want)}: rename {'it' if len(want) == 1 else 'them'} (any case)")


def _no_pairs(root: Path, img_dir: Path, mask_dir: Path) -> DevolensError:
    """Why no image found its mask: what each folder holds, and how a mask is named."""
    def held(folder: Path, files: list[Path]) -> str:
        if files:
            return f"{len(files)} image file{'s' if len(files) != 1 else ''}, e.g. {files[0].relative_to(folder)}"
        others = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        return "no image file" + (f" ({len(others)} other entr{'ies' if len(others) != 1 else 'y'}, e.g. {others[0]})"
                                  if others else "")

    same = img_dir.resolve() == mask_dir.resolve()
    imgs, masks = _pair_files(img_dir, mask_dir)
    if same and not imgs:
        return DevolensError(f"this folder holds masks only ({len(masks)}, e.g. {masks[0].relative_to(root)}), no "
                             f"image: --data is the folder that holds images/ and masks/{_parent_hint(root)}", path=root)
    where = (f"{img_dir.name}/ holds {held(img_dir, imgs)}; {mask_dir.name}/ holds {held(mask_dir, masks)}"
             if not same else f"the folder holds {held(img_dir, imgs)} and {len(masks)} masks")
    npy = next(iter(sorted(mask_dir.rglob("*_seg.npy"))), None)
    more = (f"; cellpose's {npy.name} files are not read (a Python pickle devolens does not load): "
            f"{SEG_NPY_EXPORT}") if npy is not None else ""
    return DevolensError(f"no image has a mask with the same name ({where}): a mask is named like its image, "
                         f"optionally with one of {', '.join(MASK_SUFFIXES)} before the extension (img_000.png + "
                         f"img_000_masks.tif){more}", path=root)


def index_dataset(root: str | Path, *, scoring: bool = False) -> pd.DataFrame:
    """Index a training folder as a table of samples (``scoring``: for scoring a run, ``evaluate``, whose error on a
    folder of data folders, StarDist's ``train/`` and ``test/``, names the held-out one first).

    Two layouts are understood:

    - render output (``devolens render``): ``frames.csv`` with columns
      ``file,time,embryo,A,E,M,P,C,D,Z,total,artifact``, images ``frames/tNNN.png`` and
      labels ``labels/tNNN_labels.tif``;
    - folder pairs: ``images/`` (or ``frames/``) beside ``masks/`` (or ``labels/``; ``Images/``
      and ``Masks/`` too), sub-folders included, or images with their masks beside them in
      ``root`` (``x.tif`` + ``x_masks.tif``, cellpose's layout), matched by name (see
      :func:`find_pairs`). The group of
      ``<embryo>_tNNN.png`` is ``<embryo>``, that of frames named by their time point alone (``t001.png``,
      ``t002.png``: one movie) one group (:data:`TIME_ONLY_GROUP`), otherwise the file's stem; the group of an
      image in a
      sub-folder is the sub-folder (``images/embryoA/t001.png``: ``embryoA``). ``folder_side`` is
      ``val`` for an image in a sub-folder named val, validation, valid or test (any case), ``train`` in
      one named train or training, else empty (see :func:`folder_split`); ``df.attrs["train_val_folders"]``
      says whether every top-level sub-folder of the images is so named (:func:`train_val_folders`). The data
      folder may also hold only ``train/`` and ``val/`` (or ``test/``) folders of images beside their masks.

    Returns
    -------
    pandas.DataFrame
        One row per sample: ``sample`` (id: path relative to ``root``), ``image``,
        ``labels`` (absolute paths; labels may be None), ``group`` and, for render output,
        the ``frames.csv`` columns (counts per letter...). ``df.attrs["unmatched"]`` lists
        files without a partner (relative paths), ``df.attrs["unmatched_seg"]`` those of them annotated only in a
        cellpose ``_seg.npy`` (:func:`seg_npy_images`) and ``df.attrs["layout"]`` the layout.
    """
    root = Path(root)
    if root.is_file():
        what = "a zip file: unpack it, then give" if root.suffix.lower() == ".zip" else "a file, not a folder: give"
        raise DevolensError(f"{what} the folder that holds images/ and masks/ (or a render's frames.csv)", path=root)
    if not root.is_dir():
        raise DevolensError("data folder not found", path=root)
    csv = root / "frames.csv"
    if csv.exists():
        try:
            df = pd.read_csv(csv)
        except Exception as exc:
            raise DevolensError(f"cannot read frames.csv: {exc}", path=csv) from exc
        if "file" not in df.columns:
            raise DevolensError("frames.csv has no 'file' column", path=csv)
        df = df[df["file"].notna() & (df["file"].astype(str).str.len() > 0)].copy()  # dropped frames
        if df.empty:
            raise DevolensError("frames.csv lists no frame file", path=csv)
        # a table written on Windows (Excel, a lab's script) separates folders by backslashes: read as "/" where the
        # name as written is no file here (a backslash is a legal character of a POSIX file name)
        df["file"] = [f.replace("\\", "/") if "\\" in f and not (root / f).exists() else f
                      for f in df["file"].astype(str)]
        df["sample"] = df["file"].astype(str)
        df["image"] = [str(root / f) for f in df["file"]]
        labels = []
        for f in df["file"]:
            stem = Path(f).stem
            cands = [root / "labels" / f"{stem}_labels.tif", root / "labels" / f"{stem}_labels.tiff", root / "labels" / f"{stem}.tif"]
            hit = next((c for c in cands if c.exists()), None)
            labels.append(None if hit is None else str(hit))
        df["labels"] = labels
        missing = [f for f in df["image"] if not Path(f).exists()]
        if missing:
            raise DevolensError(f"{len(missing)} frame{'s' if len(missing) > 1 else ''} listed in frames.csv "
                                f"{'are' if len(missing) > 1 else 'is'} missing, e.g. {missing[0]}", path=csv)
        if "embryo" in df.columns:
            df["group"] = df["embryo"].astype(str)
        else:
            df["group"] = [_group_of(Path(f).stem) for f in df["file"]]
        df.attrs["unmatched"] = [os.path.relpath(f, root) for f in df["image"][df["labels"].isna()]]  # absolute too
        df.attrs["layout"] = "render"
        return df.reset_index(drop=True)
    folders: dict[str, Path] = {}
    for d in sorted(root.iterdir()):  # Images/ and Masks/ too (names as Windows and macOS users write them)
        if d.is_dir():
            folders.setdefault(d.name.lower(), d)
    img_dir = next((folders[n] for n in IMAGE_FOLDERS if n in folders), None)
    mask_dir = next((folders[n] for n in MASK_FOLDERS if n in folders), None)
    if img_dir is None and mask_dir is None and (
            any(_is_mask_name(p.stem) for p in _list_images(root, False))
            or (train_val_folders(root) and any(_is_mask_name(p.stem) for p in _list_images(root)))):
        img_dir = mask_dir = root  # cellpose's layout: x.tif beside x_masks.tif (also in train/ and test/ folders)
    if img_dir is None or mask_dir is None:
        seg = next(iter(sorted(root.rglob("*_seg.npy"))), None) if root.is_dir() else None
        if seg is not None:
            raise DevolensError(
                f"no masks devolens can read: {seg.name} (and others like it) is a cellpose _seg.npy file, a Python "
                f"pickle, which devolens does not load (loading a pickle can run code); {SEG_NPY_EXPORT}", path=root)
        raise DevolensError(
            "no labelled data (images with their masks): expected frames.csv (render output), images/ and masks/ "
            "(or labels/) folders, or images with their masks beside them (x.tif + x_masks.tif)"
            + (f"; --data is the folder that holds them{_parent_hint(root)}" if _parent_hint(root)
               else _no_layout(root, scoring)), path=root)
    idx = find_pairs(img_dir, mask_dir)
    if not idx.pairs:
        raise _no_pairs(root, img_dir, mask_dir)
    rows = [
        {"sample": i.relative_to(root).as_posix(), "image": str(i), "labels": str(m), "group": _pair_group(i, img_dir),
         "folder_side": _folder_side(i, img_dir)}
        for i, m in idx.pairs
    ]
    df = pd.DataFrame(rows)
    df.attrs["unmatched"] = [p.relative_to(root).as_posix() for p in idx.unmatched_images + idx.unmatched_masks]
    df.attrs["unmatched_seg"] = seg_npy_images(idx.unmatched_images, root, img_dir, mask_dir)
    df.attrs["layout"] = "pairs"
    df.attrs["train_val_folders"] = train_val_folders(img_dir)
    return df


def split_by_group(
    df: pd.DataFrame, column: str = "embryo", val_fraction: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into train/validation so that each group falls wholly on one side.

    Parameters
    ----------
    df : pandas.DataFrame
        Samples, one per row.
    column : str
        Group column (``embryo`` for render output; any column, e.g. a time block).
    val_fraction : float
        Target fraction of rows in validation (0 < f < 1). Whole groups are moved, in a
        seeded random order, until at least this fraction is reached; validation gets at
        least one group and training keeps at least one.
    seed : int
        Random seed of the group order.

    Returns
    -------
    (train, val) : two DataFrames (original index kept)
    """
    if column not in df.columns:
        raise DevolensError(f"split column {column!r} not in the data (columns: {', '.join(map(str, df.columns))})")
    if not 0.0 < float(val_fraction) < 1.0:
        raise DevolensError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    key = df[column].astype(str).where(df[column].notna(), "")  # a missing cell (pandas 3 keeps it NaN): group ""
    groups = pd.unique(key)
    if len(groups) < 2:
        raise DevolensError(
            f"cannot split by {column!r}: only one group ({groups[0] if len(groups) else 'none'}); "
            "render several embryos or choose another split column"
        )
    rng = np.random.default_rng(int(seed))
    order = list(groups)
    rng.shuffle(order)
    sizes = key.value_counts()
    want = float(val_fraction) * len(df)
    val_groups: list[str] = []
    n_val = 0
    for g in order[:-1]:
        if n_val >= want and val_groups:
            break
        val_groups.append(g)
        n_val += int(sizes[g])
    is_val = key.isin(val_groups)
    return df[~is_val], df[is_val]


def time_blocks(times: Sequence[int], block: int = 10) -> np.ndarray:
    """Group ids for contiguous blocks of ``block`` time points (a split column for one embryo)."""
    return (np.asarray(times, dtype=np.int64) // max(1, int(block))).astype(np.int64)


#: the object diameters (equivalent diameter, pixels at the working resolution: after ``data.scale``) that a kind of
#: segmentation network works on (:func:`size_notes`): nuclei 8-25 px, as the shipped nuclei model's card says
#: (``input.note``: "nuclei 8-25 px wide there", at its ``input.scale`` 0.5; ``input.diameter.reference``, 35.6 px
#: in the input, is 17.8 px there) and recipes/finetune_own_nuclei.yaml; its renders trained at 0.55-1.15 of that
#: (about 10-20 px). Membranes: no range stated, not checked
OBJECT_DIAMETER_PX = {"nuclei": (8.0, 25.0)}
#: masks read at most, evenly spread over the samples, for the median object size (:func:`object_diameter`)
SIZE_MASKS = 20


def object_diameter(labels: Sequence[str | Path], most: int = SIZE_MASKS) -> tuple[float | None, int, int]:
    """The median size of the objects of label images: the equivalent diameter (``sqrt(4 area / pi)``) in the
    files' own pixels, over the objects of all of them together (a thresholded mask's blobs each one object; an
    'ignore' value, :func:`ignore_label`, none). A mask read that gives no sizes to trust is left out: a label value
    repeated in separate nuclei (:func:`repeated_labels`) or a background other than 0 (:func:`background_label`)
    would make the median the size of several nuclei, or of the image (advice from it would be wrong); one crop that
    a big nucleus fills does not take the others' sizes away.

    Parameters
    ----------
    labels : sequence of path
        Mask files (:func:`read_mask` reads them).
    most : int
        At most this many are read, evenly spread over ``labels`` (a median needs no more).

    Returns
    -------
    (diameter, objects, masks)
        The median diameter (None where no mask holds an object, or no mask's labels are nuclei' own), the
        objects and the masks read.
    """
    paths = list(labels)
    if len(paths) > most:
        paths = [paths[int(k)] for k in np.linspace(0, len(paths) - 1, most).round()]
    diameters = []
    for path in paths:
        mask = read_mask(path)
        blobs = thresholded(mask)
        if blobs is not None:
            mask = blobs
        else:
            if background_label(mask) or repeated_labels(mask):  # no nucleus sizes: none taken from this mask
                continue
            skip = ignore_label(mask)
            if skip:
                mask = np.where(mask == skip, 0, mask)
        areas = np.bincount(np.asarray(mask, dtype=np.int64).ravel())[1:]
        areas = areas[areas > 0]
        diameters.append(np.sqrt(4.0 * areas / np.pi))
    found = np.concatenate(diameters) if diameters else np.zeros(0)
    return (float(np.median(found)) if found.size else None), int(found.size), len(paths)


def size_notes(labels: Sequence[str | Path], scale: float, kind: str | None, size: Sequence[int] | None = None
               ) -> list[str]:
    """A note where the objects of the masks ``labels``, at the working resolution ``scale`` (``data.scale``), are
    a median size outside the range the network works on (:data:`OBJECT_DIAMETER_PX`): nuclei of 10 px trained at
    the nuclei recipe's 0.5 are 5 px there, and the shipped weights found few of them (validation F1 0.14 at 0.5,
    0.54 at 1.0 on a lab's own images) without a word. It says the scale that brings them to the middle of the
    range (its geometric mean, 14 px for nuclei), and the scales that keep them within it.

    Parameters
    ----------
    labels : sequence of path
        The mask files (:func:`object_diameter` reads up to :data:`SIZE_MASKS` of them).
    scale : float
        ``data.scale``.
    kind : str or None
        What the network segments (``"nuclei"``; see ``devolens.train.trainer.recipe_kind``): no note for a kind
        without a range, or None.
    size : sequence of int, optional
        ``data.size``: every sample resized to it, not scaled: no note.

    Returns
    -------
    list of str
        The note, or none.
    """
    if kind not in OBJECT_DIAMETER_PX or size:
        return []
    low, high = OBJECT_DIAMETER_PX[kind]
    diameter, objects, masks = object_diameter(labels)
    if diameter is None or diameter <= 0:
        return []
    scale = float(scale)
    working = diameter * scale
    if low <= working <= high:
        return []
    middle = (low * high) ** 0.5
    best, least, most = middle / diameter, low / diameter, high / diameter
    at = f"{working:.1f} px at data.scale {scale:g}" if scale != 1.0 else "as they are (data.scale 1)"
    where = "below" if working < low else "above"
    return [f"the {kind} in the masks are a median {diameter:.1f} px wide (equivalent diameter, {objects} objects "
            f"in {masks} masks): {at}, {where} the {low:g}-{high:g} px the {kind} network works on, where it finds "
            f"them poorly; set data.scale: {best:.2g} in the recipe (about {middle:.0f} px; {least:.2g} to "
            f"{most:.2g} keeps them within {low:g}-{high:g} px)"]


def split_copies(train: pd.DataFrame, val: pd.DataFrame, root: str | Path | None = None) -> list[str]:
    """A note where an image file that validates is a byte-for-byte copy of one that trains (``train/a.tif``
    copied into ``test/``, the same image under two names): the network is then scored on an image it trained on,
    and the validation scores (the best epoch, ``evaluate`` on that split) read too high.

    Files are compared by size first, then by :func:`devolens.train.trainer.file_digest` (only files of a size
    found on both sides are read: all of a small file, the start, middle and end of a large one, remembered per file
    version, as ``evaluate`` and the run's data fingerprint read them); a copy saved in another format (same pixels,
    other bytes) is not found. Samples cut from one image into regions (a ``region`` column) are copies only in the
    same region (the same region of every image validates).

    Parameters
    ----------
    train, val : pandas.DataFrame
        The two sides of a split (``image`` column; ``region`` where images are cut into regions).
    root : path, optional
        The data folder: the note names the files relative to it.

    Returns
    -------
    list of str
        The note, or none.
    """
    import os

    from devolens.train.trainer import file_digest  # (here: the trainer imports this module)

    def files(df: pd.DataFrame) -> dict[tuple[str, str], str]:
        regions = df["region"].astype(str) if "region" in df.columns else [""] * len(df)
        return {(str(p), r): str(p) for p, r in zip(df["image"], regions)}

    sides = [files(train), files(val)]
    sizes = []
    for side in sides:
        found: dict[str, int] = {}
        for p in set(side.values()):
            try:
                found[p] = os.path.getsize(p)
            except OSError:
                continue
        sizes.append(found)
    common = set(sizes[0].values()) & set(sizes[1].values())
    if not common:
        return []
    hashes: dict[str, bytes] = {}
    for found in sizes:
        for p, n in found.items():
            if n in common and p not in hashes:
                try:
                    hashes[p] = file_digest(p)
                except OSError:
                    continue
    trained = {(hashes[p], r): p for (p, r) in sides[0] if p in hashes}
    found_copies: dict[str, str] = {}  # validating file -> the training file it copies
    for (p, r) in sides[1]:
        other = trained.get((hashes.get(p), r))
        if other is not None and other != p:
            found_copies.setdefault(p, other)
    copies = sorted(found_copies.items())
    if not copies:
        return []

    def name(p: str) -> str:
        try:
            return Path(p).relative_to(root).as_posix() if root is not None else p
        except ValueError:
            return p

    n = len(copies)
    shown = ", ".join(f"{name(v)} = {name(t)}" for v, t in copies[:3]) + (f" and {n - 3} more" if n > 3 else "")
    return [f"{n} image{'s' if n != 1 else ''} that validate{'s' if n == 1 else ''} "
            f"{'is a copy' if n == 1 else 'are copies'} of {'a training image' if n == 1 else 'training images'}, byte "
            f"for byte ({shown}): the network is scored on images it trained on, and the validation scores (and the "
            "best epoch) read too high; remove the copies, or keep each image on one side only"]


def image_shape(path: str | Path) -> tuple[int, int]:
    """The height and width of an image file in pixels, from its header where it can (PNG, JPEG, BMP,
    TIFF: microseconds, not a decode), else by reading it as :func:`read_image` does."""
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tf:
                from devolens.io.stacks import own_series

                shape = tuple(int(n) for n in tf.series[own_series(tf)].shape)
            if len(shape) == 3 and shape[0] in (1, 2, 3, 4) and shape[-1] not in (1, 2, 3, 4):
                return shape[1], shape[2]  # stored channels-first
            if len(shape) == 2 or (len(shape) == 3 and shape[-1] <= 4):
                return shape[0], shape[1]
        else:
            from devolens.io.images import header_shape

            return header_shape(path)
    except Exception:  # not readable by its header: read_image says why, or reads it
        pass
    return tuple(read_image(path).shape[:2])


def regions(shape: Sequence[int], least: int, most: int = 4) -> list[tuple[int, int, int, int, int, int]]:
    """A grid of regions that tile an image: as many rows and columns as hold regions at least ``least``
    pixels a side, but at most ``most`` each way, of equal size (within a pixel).

    Parameters
    ----------
    shape : (H, W)
        The image's size in pixels.
    least : int
        The smallest side of a region, pixels.
    most : int
        The most rows (and columns) of the grid.

    Returns
    -------
    list of (row, col, y0, y1, x0, x1)
        In reading order; ``image[y0:y1, x0:x1]`` is the region. One region (the whole image) when the
        image holds fewer than two regions of ``least`` x ``least`` pixels.
    """
    h, w = int(shape[0]), int(shape[1])
    least = max(1, int(least))
    rows, cols = min(int(most), h // least), min(int(most), w // least)
    if rows < 1 or cols < 1:  # not one region of that size
        return [(0, 0, 0, h, 0, w)]
    ys = np.linspace(0, h, rows + 1).round().astype(int)
    xs = np.linspace(0, w, cols + 1).round().astype(int)
    return [(i, j, int(ys[i]), int(ys[i + 1]), int(xs[j]), int(xs[j + 1])) for i in range(rows) for j in range(cols)]


# ----------------------------------------------------------------------------- datasets
def instance_distance(target: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The distance-head target of a 3-class ``boundary`` target: each interior pixel's distance
    to the nearest non-interior pixel (its nucleus's boundary, or the background) divided by the
    largest such distance in its nucleus, so 1 at every nucleus's centre and 0 on boundaries
    and background (float32, HxW). Touching nuclei are apart: their boundary pixels lie
    between them. Ignored pixels (:data:`IGNORE_INDEX` in ``target``) are no interior: 0, and
    left out of the distance loss.

    Parameters
    ----------
    target : ndarray
        ``HxW`` classes from :func:`labels_to_target` with ``"boundary"``.
    labels : ndarray
        ``HxW`` instance labels the target was made from.
    """
    import cv2

    interior = np.ascontiguousarray(np.asarray(target) == 1)
    out = np.zeros(interior.shape, np.float32)
    if not interior.any():
        return out
    dist = cv2.distanceTransform(interior.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    lab = np.asarray(labels).astype(np.int64)
    inside = interior & (lab > 0)
    peak = np.zeros(int(lab.max()) + 1, np.float32)
    np.maximum.at(peak, lab[inside], dist[inside])
    out[inside] = dist[inside] / np.maximum(peak[lab[inside]], 1e-6)
    return out


#: a thresholded mask's single blob is taken for touching objects merged when its area exceeds this many times
#: the largest disc that fits inside it (one nucleus: 1 for a disc, 2-3 for an ellipse of axes 2:1-3:1)
MERGED_DISCS = 6.0


def merged_blob(fg: np.ndarray) -> bool:
    """Whether one foreground blob is far larger than one object would be: its area is more than
    :data:`MERGED_DISCS` times that of the largest disc inside it (many touching nuclei thresholded together
    make a wide, lobed blob whose inscribed disc is one nucleus wide; a crop of one nucleus, however much of the
    image it fills, is nearly its own inscribed disc). Blobs under 100 pixels are never flagged."""
    import cv2

    fg = np.asarray(fg, bool)
    area = int(fg.sum())
    if area < 100:
        return False
    pad = np.pad(fg, 1).astype(np.uint8)  # the image's edge counts as background
    r = float(cv2.distanceTransform(pad, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).max())
    return area > MERGED_DISCS * np.pi * max(r, 1.0) ** 2


def thresholded(labels: np.ndarray) -> np.ndarray | None:
    """The instance labels (one per 4-connected blob) of a thresholded mask: one foreground value for
    every object (0/1, 0/255) and several separate blobs, or one blob far larger than one object
    (:func:`merged_blob`: touching nuclei all merged). None for anything else (instance labels, a
    single object)."""
    from devolens.predict.postprocess import label_components

    lab = np.asarray(labels)
    if lab.ndim == 3:
        lab = lab[..., 0]
    fg = lab[lab != 0]
    if fg.size == 0 or not (fg == fg.flat[0]).all():
        return None
    blobs, n = label_components(lab != 0)
    if n == 1 and not merged_blob(blobs != 0):
        return None
    return blobs.astype(np.uint16 if n < 65536 else np.int32)


#: an 8-bit mask whose largest label is at least this is looked at for labels that wrapped past 255 (its blobs
#: labelled whatever its values' boxes; :func:`repeated_labels`)
WRAPPED_FROM = 250
#: ...and a label repeats when its blobs of a reasonable size lie farther apart than this many nucleus diameters
WRAPPED_APART = 4.0


def repeated_labels(labels: np.ndarray) -> int:
    """How many label values of a label image mark separate nuclei far apart: each value's connected blobs of a
    reasonable size (at least a quarter of the median blob, and 9 pixels) spread over more than
    :data:`WRAPPED_APART` nucleus diameters (from the median blob's area). Labels saved as 8-bit after counting past
    255 (``labels % 256``) do that: 256 becomes background, 257 shares 1 with a nucleus far away; so do labels
    reused across nuclei in any type (1, 2, 3, 1, 2, 3...: class ids, or a labelling tool's cycled colours). 0 for
    an 8-bit mask where 255 is the only value that repeats (an 'ignore' value painted over several regions; wrapped
    labels repeat 1, 2... first). Any mask is looked at: a value's bounding box against its area first (one pass,
    a millisecond or two at 256x256), its blobs labelled by connected regions only where some value spreads.

    Parameters
    ----------
    labels : ndarray
        ``HxW`` instance labels, 0 the background.

    Returns
    -------
    int
        Label values that repeat in separate nuclei.
    """
    return label_repeats(labels)[0]


def label_repeats(labels: np.ndarray) -> tuple[int, int]:
    """``(repeated, values)``: the label values that repeat in separate nuclei far apart (:func:`repeated_labels`)
    and the label values of a reasonable blob looked at; ``(0, 0)`` where the mask is no candidate."""
    found = _repeated_values(labels)
    if found is None:
        return 0, 0
    values, total = found
    lab = np.asarray(labels)
    if lab.dtype == np.uint8 and values.tolist() == [255]:  # 255 alone: an 'ignore' value over several regions,
        return 0, total  # not wrapped labels (those repeat 1, 2... first: 255 repeats only past 510 nuclei)
    return int(values.size), total


def ignore_label(labels: np.ndarray) -> int:
    """255 where an 8-bit label image paints it over several separate regions and no other value repeats (the
    'ignore' value of :func:`repeated_labels`' rule), alongside other labels; else 0. Training leaves those
    regions out of its losses (their target is :data:`IGNORE_INDEX`: :func:`labels_to_target`), and validation
    and ``devolens evaluate`` score such a mask with them as 'ignore' (neither objects to find nor false
    detections, their pixels left out of IoU, Dice and PR-AUC); a mask of 255 alone is a thresholded one (each
    blob a nucleus).

    Parameters
    ----------
    labels : ndarray
        ``HxW`` instance labels, 0 the background.

    Returns
    -------
    int
        255, or 0 (no ignore value).
    """
    lab = np.asarray(labels)
    if lab.dtype != np.uint8 or int(lab.max(initial=0)) < WRAPPED_FROM:
        return 0
    found = _repeated_values(lab)
    if found is None or found[0].tolist() != [255]:
        return 0
    return 255 if bool(((lab != 0) & (lab != 255)).any()) else 0


#: a label value's bounding box at least this many times its area makes :func:`repeated_labels` look at its blobs
#: (a round or elongated nucleus fills a third of its box or more; two blobs 4 diameters apart, a fifth at most)
SPREAD_BOX = 3.0


def _spread_values(lab: np.ndarray) -> bool:
    """Whether some label value of ``lab`` (non-negative integers) fills less than 1/:data:`SPREAD_BOX` of its
    bounding box (a cheap first look for :func:`repeated_labels`: blobs of one value far apart do)."""
    from scipy.ndimage import find_objects

    top = int(lab.max(initial=0))
    if top > 4 * lab.size:  # sparse huge values: look at the blobs themselves
        return True
    work = lab if lab.dtype.itemsize <= 4 and lab.dtype != np.uint32 else lab.astype(np.int64)
    boxes = find_objects(work)
    areas = np.bincount(work.ravel(), minlength=top + 1)[1:]
    box = np.array([(b[0].stop - b[0].start) * (b[1].stop - b[1].start) if b is not None else 0 for b in boxes])
    return bool(((areas > 0) & (box > SPREAD_BOX * areas)).any())


def _repeated_values(labels: np.ndarray) -> tuple[np.ndarray, int] | None:
    """The label values of a label image whose blobs of a reasonable size spread over more than
    :data:`WRAPPED_APART` nucleus diameters (:func:`repeated_labels`), and how many values hold such a blob; None
    where the image is no such candidate (not 2-D integers, fewer than two values, or no value spread out)."""
    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.dtype.kind not in "ui" or lab.size == 0 or int(lab.min(initial=0)) < 0:
        return None
    if int(lab.max(initial=0)) < 2:
        return None
    wrapped = lab.dtype == np.uint8 and int(lab.max(initial=0)) >= WRAPPED_FROM
    if not wrapped and not _spread_values(lab):  # no value spread over its box: nothing repeats (the common case)
        return None
    from skimage.measure import label

    comps = label(lab, background=0, connectivity=1)  # regions of one value each
    n = int(comps.max())
    if n < 2:
        return None
    where = np.flatnonzero(comps)  # the foreground's pixels (a share of the image)
    flat = comps.ravel()[where]
    sizes = np.bincount(flat, minlength=n + 1).astype(np.float64)
    value = np.zeros(n + 1, np.int64)
    value[flat] = lab.ravel()[where]
    cy = np.bincount(flat, where // lab.shape[1], minlength=n + 1) / np.maximum(sizes, 1)
    cx = np.bincount(flat, where % lab.shape[1], minlength=n + 1) / np.maximum(sizes, 1)
    typical = float(np.median(sizes[1:]))
    big = np.flatnonzero(sizes >= max(9.0, 0.25 * typical))
    if len(big) < 2:
        return None
    diameter = 2.0 * np.sqrt(typical / np.pi)
    values, v = np.unique(value[big], return_inverse=True)
    k = len(values)
    lo_y, hi_y = np.full(k, np.inf), np.full(k, -np.inf)
    lo_x, hi_x = np.full(k, np.inf), np.full(k, -np.inf)
    np.minimum.at(lo_y, v, cy[big])
    np.maximum.at(hi_y, v, cy[big])
    np.minimum.at(lo_x, v, cx[big])
    np.maximum.at(hi_x, v, cx[big])
    several = np.bincount(v, minlength=k) >= 2
    spread = np.hypot(np.where(several, hi_y - lo_y, 0.0), np.where(several, hi_x - lo_x, 0.0))
    return values[spread > WRAPPED_APART * diameter], k


#: a label covering more than this share of a mask, and touching its four edges, looks like a background value
#: (:func:`background_label`)
BACKGROUND_SHARE = 0.5


def background_label(labels: np.ndarray) -> int:
    """A non-zero label value that covers most of a mask (more than :data:`BACKGROUND_SHARE` of its pixels) and
    touches all four of its edges: a background other than 0 (ilastik's Simple Segmentation exports 1 for the
    background, 2 for the nuclei), which devolens would read as one huge nucleus; else 0. One big nucleus filling
    a small crop does that too: the caller decides on most masks doing it (``train`` refuses then). An 8-bit
    mask's 255 painted over several separate regions is its 'ignore' value (:func:`ignore_label`), not this.

    Parameters
    ----------
    labels : ndarray
        ``HxW`` labels.

    Returns
    -------
    int
        The value, or 0.
    """
    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.size == 0 or lab.dtype.kind not in "uib":
        return 0
    common = None
    for edge in (lab[0], lab[-1], lab[:, 0], lab[:, -1]):
        found = set(np.unique(edge).tolist())
        common = found if common is None else common & found
    for value in sorted(common - {0}):
        if np.count_nonzero(lab == value) > BACKGROUND_SHARE * lab.size:
            if lab.dtype == np.uint8 and value == 255 and ignore_label(lab):
                return 0
            return int(value)
    return 0


def _each(fn: Callable[[int], Any], indices: list[int], threads: int,
          announce: Callable[[int, int], None] | None = None, nbytes: Callable[[int], int] | None = None) -> None:
    """``fn(i)`` for every index, on ``threads`` threads (the image decoders release the GIL). With ``announce``:
    once the first index ``i`` is done, before the others start, ``announce(n, n * nbytes(i))`` (``n``: how many in
    all; ``nbytes(i)``: the memory the first one took)."""
    if announce is not None and indices:
        fn(indices[0])
        announce(len(indices), len(indices) * nbytes(indices[0]))
        indices = indices[1:]
    if threads > 1 and len(indices) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=int(threads)) as pool:
            list(pool.map(fn, indices))
    else:
        for i in indices:
            fn(i)


class _Base(Dataset):
    """Shared image preparation: channels, size, normalisation, seeded augmentation."""

    def __init__(self, channels: int = 1, size: Sequence[int] | None = None, normalize: str = "dtype",
                 augment: Callable | None = None, seed: int = 0, pad_multiple: int = 32, scale: float = 1.0,
                 channel: int | str | None = None):
        self.channels = int(channels)
        self.channel = channel  # the channel of each image read (data.channel; see select_channel)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.scale = float(scale)  # images and masks resized by this factor (the working resolution)
        self.normalize = normalize
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.pad_multiple = int(pad_multiple)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch so augmentation draws differ per epoch yet stay reproducible."""
        self.epoch = int(epoch)

    def _source(self, index: int) -> str:
        """Sample ``index`` as error messages name it (datasets of files name the files)."""
        return f"sample {index}"

    def _scaled(self, arr: np.ndarray) -> tuple[int, int] | None:
        """The size ``arr`` has at the working resolution (None when ``scale`` is 1)."""
        if self.scale == 1.0:
            return None
        return max(1, round(arr.shape[0] * self.scale)), max(1, round(arr.shape[1] * self.scale))

    def _working(self, img: np.ndarray) -> np.ndarray:
        """``img`` with the dataset's channels at the working resolution (``scale``), not yet normalised."""
        img = to_channels(img, self.channels)
        return _resize(img, self._scaled(img), nearest=False)  # resized before normalising, as the predictors do

    def _levels(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``percentile`` levels of a whole image at the working resolution (for its regions)."""
        img = self._working(img)
        return percentile_levels(img if img.ndim == 3 else img[..., None])

    def _prepare(self, img: np.ndarray, labels: np.ndarray | None, index: int, levels: tuple | None = None):
        x, labels, _ = self._prepare_sized(img, labels, index, levels)
        return x, labels

    def _sized_labels(self, labels: np.ndarray) -> np.ndarray:
        """A label image as :meth:`_prepare_sized` has it before augmentation and padding: its first channel, 8- or
        16-bit where its values fit (else float32), at the working resolution and ``size`` (nearest neighbour)."""
        labels = np.asarray(labels)
        if labels.ndim == 3:
            labels = labels[..., 0]
        if labels.dtype not in (np.uint8, np.uint16):
            if labels.max(initial=0) < 65536 and labels.min(initial=0) >= 0:
                labels = labels.astype(np.uint16)
            else:
                labels = labels.astype(np.float32)
        labels = _resize(labels, self._scaled(labels), nearest=True)
        return _resize(labels, self.size, nearest=True)

    def _own_target(self, labels: np.ndarray, target: str, ignore: int) -> np.ndarray:
        """The training target of a sample's ``labels`` (as :meth:`_sized_labels` has them) on its own pixels,
        without augmentation: made, as in training, from the labels padded to ``pad_multiple`` (an object at the
        image's edge keeps the boundary the padding gives it), then cut back to the labels' own size."""
        h, w = labels.shape[:2]
        return labels_to_target(_pad_to(labels, self.pad_multiple), target, ignore)[:h, :w]

    def _prepare_sized(self, img: np.ndarray, labels: np.ndarray | None, index: int, levels: tuple | None = None):
        """:meth:`_prepare` plus the sample's own ``(height, width)`` before the padding to a multiple of
        ``pad_multiple`` (the pixels validation scores)."""
        img = _resize(self._working(img), self.size, nearest=False)
        if img.ndim == 2:
            img = img[..., None]
        img = normalize_image(img, self.normalize, levels)
        if labels is not None:
            labels = self._sized_labels(labels)
            if labels.shape[:2] != img.shape[:2]:
                raise DevolensError(f"image {img.shape[:2]} and mask {labels.shape[:2]} differ in size "
                                    f"({self._source(index)})")
        if self.augment is not None:
            from devolens.data.augment import reseed

            reseed(self.augment, sample_seed(self.seed, self.epoch, index))
            shape = img.shape[:2]
            # the augmentations work on [0, 1] (their brightness, gamma and noise are in that range's units): an
            # image outside it (data.normalize: none on raw counts) is augmented on its own range mapped there and
            # mapped back, so training sees the values validation and prediction see (it was clipped to 0..1)
            lo, hi = float(img.min()), float(img.max())
            unit = lo >= 0.0 and hi <= 1.0
            if not unit:
                img = ((img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)).astype(np.float32)
            if labels is not None:
                res = self.augment(image=img, mask=labels)
                img, labels = res["image"], res["mask"]
            else:
                img = self.augment(image=img)["image"]
            if img.ndim == 2:
                img = img[..., None]
            if img.shape[:2] != shape and img.shape[:2] == shape[::-1]:
                # a quarter turn of a non-square sample: one more makes it a half turn, so every
                # sample keeps the size the batch needs (and the content keeps its aspect)
                img = np.ascontiguousarray(np.rot90(img))
                if labels is not None:
                    labels = np.ascontiguousarray(np.rot90(labels))
            img = np.clip(img, 0, 1).astype(np.float32)
            if not unit:
                img = (img * np.float32(hi - lo) + np.float32(lo)).astype(np.float32)
        own = (int(img.shape[0]), int(img.shape[1]))
        img = _pad_to(img, self.pad_multiple)
        if labels is not None:
            labels = _pad_to(labels, self.pad_multiple)
        return np.ascontiguousarray(np.moveaxis(img, -1, 0)), labels, own


class SegmentationDataset(_Base):
    """Image + label-image pairs from files (folder pairs or render output).

    Parameters
    ----------
    images, labels : sequences of paths
        Image files and their label images (same order).
    target : {"semantic", "boundary", "classes"}
        How labels become the training target (see :func:`labels_to_target`).
    channels : int
        Input channels (1 or 3).
    size : (H, W), optional
        Resize every sample to this size (pixels); None keeps the size (then padded to a
        multiple of ``pad_multiple``).
    normalize : str
        See :func:`normalize_image`.
    scale : float
        Resize images (area) and masks (nearest) by this factor first: the working resolution
        (``data.scale`` of a recipe; a model of your own then segments at that scale).
    channel : int or str, optional
        The channel of each image to read (``data.channel``, :func:`select_channel`): needed for
        multi-channel images, which are refused without it; None keeps grey and colour images as they are.
    augment : albumentations.Compose, optional
        Applied to image and mask together (see :mod:`devolens.data.augment`).
    seed : int
        Base seed of the per-sample, per-epoch augmentation draws.
    cache : bool
        Keep decoded files in memory (small datasets).
    distance : bool
        Also yield ``distance`` (:func:`instance_distance`), the target of a distance head
        (``target`` must be ``"boundary"``).
    boxes : sequence of (y0, y1, x0, x1) or None, optional
        Per sample, the region of its files it is (see :func:`regions`; None: the whole image), in the
        files' own pixels. A region is normalised with the levels of its whole image, as the image is when
        segmented; files shared by several regions are read (and cached) once.
    """

    def __init__(self, images: Sequence[str | Path], labels: Sequence[str | Path], target: str = "semantic",
                 channels: int = 1, size: Sequence[int] | None = None, normalize: str = "dtype",
                 augment: Callable | None = None, seed: int = 0, cache: bool = True, pad_multiple: int = 32,
                 ids: Sequence[str] | None = None, distance: bool = False, scale: float = 1.0,
                 boxes: Sequence[Sequence[int] | None] | None = None, channel: int | str | None = None):
        super().__init__(channels, size, normalize, augment, seed, pad_multiple, scale, channel)
        if distance and target != "boundary":
            raise DevolensError("a distance target needs target 'boundary'")
        self.distance = bool(distance)
        if len(images) != len(labels):
            raise DevolensError(f"{len(images)} images but {len(labels)} label files")
        if target not in TARGETS:
            raise DevolensError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
        self.images = [Path(p) for p in images]
        self.labels = [None if p is None else Path(p) for p in labels]
        self.ids = list(ids) if ids is not None else [str(p) for p in self.images]
        self.target = target
        self.cache = cache
        self.boxes = [None] * len(self.images) if boxes is None else [None if b is None else tuple(int(v) for v in b)
                                                                      for b in boxes]
        if len(self.boxes) != len(self.images):
            raise DevolensError(f"{len(self.images)} images but {len(self.boxes)} regions")
        self._cache: dict[tuple, tuple] = {}  # (image, labels) -> (image, labels, levels): once per file pair
        self._ignore: dict[tuple, int] = {}  # (image, labels) -> the mask's 'ignore' value (ignore_label), 0 for none

    def __len__(self) -> int:
        return len(self.images)

    def _source(self, index: int) -> str:
        box = self.boxes[index]
        where = "" if box is None else f" (region [{box[0]}:{box[1]}, {box[2]}:{box[3]}])"
        return f"{self.images[index]} and {self.labels[index]}{where}"

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray, tuple | None]:
        key = (self.images[i], self.labels[i])
        if key not in self._cache:
            img, lab = self._read(i)
            levels = None
            if self.normalize == "percentile" and any(b is not None for b in self.boxes):
                levels = self._levels(img)
            if not self.cache:
                return self._cut(i, img, lab, levels)
            self._cache[key] = (img, lab, levels)
        return self._cut(i, *self._cache[key])

    def preload(self, threads: int = 1, announce: Callable[[int, int], None] | None = None) -> int:
        """Decode every file pair into the cache now (nothing when ``cache`` is off). The training engine calls
        it before its loader processes start (``train.num_workers``, forked): they then share the decoded frames
        instead of decoding them again every epoch. ``announce(n, nbytes)``: called once the first pair is
        decoded, with the number of pairs to read and the memory they will take (the first one's times n).
        Returns how many file pairs were read now (those cached already are not read again; the regions of one
        image share its pair)."""
        if not self.cache:
            return 0
        first: dict[tuple, int] = {}  # one sample per file pair: regions of an image are not decoded side by side
        for i in range(len(self)):
            key = (self.images[i], self.labels[i])
            if key not in self._cache:
                first.setdefault(key, i)

        def nbytes(i: int) -> int:
            img, lab, _ = self._cache[(self.images[i], self.labels[i])]
            return img.nbytes + lab.nbytes

        _each(self._load, list(first.values()), threads, announce, nbytes)
        return len(first)

    def fully_cached(self) -> bool:
        """Whether every file pair is decoded in the cache already (:meth:`preload`): loader processes forked
        from here then read nothing of their own."""
        return bool(self.cache) and all((self.images[i], self.labels[i]) in self._cache for i in range(len(self)))

    def _cut(self, i: int, img: np.ndarray, lab: np.ndarray, levels: tuple | None):
        box = self.boxes[i]
        if box is None:
            return img, lab, levels
        y0, y1, x0, x1 = box
        return img[y0:y1, x0:x1], lab[y0:y1, x0:x1], levels

    def _read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        img = select_channel(read_image(self.images[i]), self.channel, self.images[i], self.channels)
        return img, self._read_labels(i, img.shape)

    def _read_labels(self, i: int, shape: Sequence[int] | None = None) -> np.ndarray:
        """The label image of sample ``i``'s files (a thresholded mask's blobs numbered), its 'ignore' value noted;
        checked against its image's ``shape`` where given."""
        if self.labels[i] is None:
            raise DevolensError("no label image for this frame", path=self.images[i])
        lab = read_mask(self.labels[i], classes=self.target == "classes")
        if shape is not None:
            check_mask_size(shape, lab.shape, self._source(i))  # the files' own sizes, before any resizing
        blobs = thresholded(lab) if self.target != "classes" else None
        if blobs is not None:  # a thresholded mask (0/255): one instance per connected blob
            lab = blobs
        # 255 painted over several regions of an 8-bit mask: 'ignore' in the scores (whole file: regions share it;
        # judged once per file, not at every read)
        key = (self.images[i], self.labels[i])
        if key not in self._ignore:
            self._ignore[key] = ignore_label(lab) if self.target != "classes" else 0
        return lab

    def class_targets(self, indices: Sequence[int]) -> Iterator[np.ndarray]:
        """The training targets of the samples ``indices`` on their own pixels (what automatic class weights
        count, :func:`devolens.train.trainer._loss_fn`): as their items' ``target`` without augmentation, without
        the padding to ``pad_multiple`` and without the distance target (not computed). With ``cache`` the files are
        read into the cache as :meth:`__getitem__` reads them (training reads them from there); without, only the
        label images are read.

        Parameters
        ----------
        indices : sequence of int
            Sample positions.

        Yields
        ------
        ndarray
            Each sample's int64 target (HxW), :data:`IGNORE_INDEX` where ignored.
        """
        for i in indices:
            i = int(i)
            key = (self.images[i], self.labels[i])
            if self.cache or key in self._cache:
                lab = self._load(i)[1]
            else:
                lab = self._read_labels(i)
                lab = self._cut(i, lab, lab, None)[1]
            yield self._own_target(self._sized_labels(lab), self.target, self._ignore.get(key, 0))

    def __getitem__(self, i: int) -> dict[str, Any]:
        """Sample ``i``: ``image`` (C, H, W), ``target`` and ``labels`` (H, W), ``index``, ``size`` (its own height
        and width, before the padding to a multiple of ``pad_multiple``: the pixels validation scores) and
        ``ignore`` (the mask's 'ignore' label, :func:`ignore_label`; 0 for none), with ``distance`` its target.
        The target is :data:`IGNORE_INDEX` where the labels, augmented with the image (nearest neighbour: the
        value stays whole), hold the 'ignore' label, and in the padding to ``pad_multiple`` (:func:`ignore_padding`:
        no pixel of the image, so the losses leave it out; the labels, image and distance are 0 there)."""
        img, lab, levels = self._load(i)
        x, lab, own = self._prepare_sized(img, lab, i, levels)
        ignore = self._ignore.get((self.images[i], self.labels[i]), 0)
        tgt = labels_to_target(lab, self.target, ignore)
        inst = lab.astype(np.int32) if self.target != "classes" else tgt.astype(np.int32)
        ignore_padding(tgt, own)  # the padding to pad_multiple: no pixel of the image, left out of the losses
        item = {"image": torch.from_numpy(x), "target": torch.from_numpy(tgt),
                "labels": torch.from_numpy(inst), "index": torch.tensor(i, dtype=torch.int64),
                "size": torch.tensor(own, dtype=torch.int64), "ignore": torch.tensor(ignore, dtype=torch.int64)}
        if self.distance:
            item["distance"] = torch.from_numpy(instance_distance(tgt, lab))
        return item


class PopulationDataset(_Base):
    """Frames with per-image counts (e.g. ``frames.csv`` columns A, E, ..., total).

    Parameters
    ----------
    images : sequence of paths
        Image files.
    counts : array (N, K)
        Counts per image (cells), one column per output.
    Other parameters as :class:`SegmentationDataset`.
    """

    def __init__(self, images: Sequence[str | Path], counts: np.ndarray, channels: int = 1,
                 size: Sequence[int] | None = None, normalize: str = "dtype", augment: Callable | None = None,
                 seed: int = 0, cache: bool = True, pad_multiple: int = 32, ids: Sequence[str] | None = None,
                 scale: float = 1.0, channel: int | str | None = None):
        super().__init__(channels, size, normalize, augment, seed, pad_multiple, scale, channel)
        self.images = [Path(p) for p in images]
        self.counts = np.asarray(counts, dtype=np.float32).reshape(len(self.images), -1)
        self.ids = list(ids) if ids is not None else [str(p) for p in self.images]
        self.cache = cache
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.images)

    def _load(self, i: int) -> np.ndarray:
        img = self._cache.get(i)
        if img is None:
            img = select_channel(read_image(self.images[i]), self.channel, self.images[i], self.channels)
            if self.cache:
                self._cache[i] = img
        return img

    def preload(self, threads: int = 1, announce: Callable[[int, int], None] | None = None) -> int:
        """Decode every frame into the cache now (see :meth:`SegmentationDataset.preload`); returns how many were
        read."""
        if not self.cache:
            return 0

        todo = [i for i in range(len(self)) if i not in self._cache]
        _each(self._load, todo, threads, announce, lambda i: self._cache[i].nbytes)
        return len(todo)

    def fully_cached(self) -> bool:
        """Whether every frame is decoded in the cache already (see :meth:`SegmentationDataset.fully_cached`)."""
        return bool(self.cache) and all(i in self._cache for i in range(len(self)))

    def __getitem__(self, i: int) -> dict[str, Any]:
        x, _ = self._prepare(self._load(i), None, i)
        return {"image": torch.from_numpy(x), "target": torch.from_numpy(self.counts[i].copy()),
                "index": torch.tensor(i, dtype=torch.int64)}


class LiveRenderDataset(_Base):
    """Frames rendered on the fly from lineage tables (simulated or real).

    Calls ``devolens.render.nuclei.render_nuclei_frame(table, time, size=..., seed=...,
    rgb=...)`` per item with a seed drawn from (seed, epoch, index), so each epoch sees new
    noise/optics yet any run is reproducible.

    Parameters
    ----------
    tables : sequence of DataFrames
        Tidy lineage tables (``embryo,time,cell,x,y,z,size``).
    samples : sequence of (table_index, time), optional
        Which frames; default every time point of every table. Each is checked once, when the dataset is made (a
        table index in range, a time point of that table whose rows all have a finite position): a
        :class:`~devolens.errors.DevolensValueError` then, not when its item is rendered.
    task : {"segmentation", "population"}
        Target: the label image (via ``target``) or the counts ``letters``.
    size : (H, W)
        Render size (pixels).
    fixed : bool
        Same render every epoch (validation sets): the seed ignores the epoch.
    render_kwargs : dict, optional
        Extra keyword arguments for the renderer.
    channel : int or str, optional
        The channel of each render to use (see :func:`select_channel`).

    Notes
    -----
    A segmentation item's target is :data:`IGNORE_INDEX` in the padding to ``pad_multiple``
    (:func:`ignore_padding`), as :class:`SegmentationDataset`'s.
    """

    cache = False  # renders anew every time: loader processes hold nothing of their own (they may outlive an epoch)

    def __init__(self, tables: Sequence[pd.DataFrame], samples: Sequence[tuple[int, int]] | None = None,
                 task: str = "segmentation", target: str = "semantic", letters: Sequence[str] = LETTERS + ("total",),
                 channels: int = 1, size: Sequence[int] = (256, 256), normalize: str = "dtype",
                 augment: Callable | None = None, seed: int = 0, fixed: bool = False, pad_multiple: int = 32,
                 render_kwargs: dict | None = None, channel: int | str | None = None):
        super().__init__(channels, None, normalize, augment, seed, pad_multiple, channel=channel)
        self.tables = list(tables)
        self.samples = self._checked_samples(samples)
        self.task = task
        self.target = target
        self.letters = list(letters)
        self.render_size = (int(size[0]), int(size[1]))
        self.fixed = fixed
        self.render_kwargs = dict(render_kwargs or {})
        self.ids = [f"{self._embryo(k)}:t{t:03d}" for k, t in self.samples]

    def _checked_samples(self, samples) -> list[tuple[int, int]]:
        """``samples`` (default: every time point of every table) as ``(table_index, time)`` pairs, each checked
        once, here, as the renderer would check it at its item: a table index in range and a time point of that
        table whose rows all have a finite position (:func:`~devolens.render.nuclei.check_time_point`), so that a
        bad row is refused when the dataset is made, not epochs into training."""
        from devolens.checks import whole
        from devolens.errors import DevolensValueError
        from devolens.render.dataset import check_planned_times, select_times
        from devolens.render.nuclei import check_table

        for tab in self.tables:
            check_table(tab)
        if samples is None:
            samples = [(k, t) for k, tab in enumerate(self.tables) for t in select_times(tab)]
        checked = []
        for i, pair in enumerate(samples):
            try:
                k, t = pair
            except (TypeError, ValueError):
                raise DevolensValueError(f"samples[{i}] must be a pair (table_index, time), got {pair!r}") from None
            k = whole(k, f"samples[{i}]'s table index", 0, error=DevolensValueError)
            if k >= len(self.tables):
                raise DevolensValueError(f"samples[{i}] names table {k}, but there are {len(self.tables)} table(s) "
                                         f"(indices 0..{len(self.tables) - 1})")
            checked.append((k, whole(t, f"samples[{i}]'s time point", floats=True, error=DevolensValueError)))
        check_planned_times(self.tables, checked, [f"table {k} ({self._embryo(k)})" for k in range(len(self.tables))])
        return checked

    def _embryo(self, k: int) -> str:
        tab = self.tables[k]
        if "embryo" in tab.columns and len(tab):
            return str(tab["embryo"].iloc[0])
        return f"table{k}"

    def __len__(self) -> int:
        return len(self.samples)

    def render(self, i: int):
        """Render sample ``i`` and return the renderer's NucleiFrame."""
        from devolens.render.nuclei import render_nuclei_frame

        k, t = self.samples[i]
        s = sample_seed(self.seed, 0 if self.fixed else self.epoch, i)
        return render_nuclei_frame(self.tables[k], t, size=self.render_size, seed=s, rgb=self.channels == 3,
                                   **self.render_kwargs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        fr = self.render(i)
        image = select_channel(np.asarray(fr.image), self.channel, channels=self.channels)
        if self.task == "population":
            x, _ = self._prepare(image, None, i)
            counts = np.array([float(fr.counts.get(k, 0)) for k in self.letters], dtype=np.float32)
            return {"image": torch.from_numpy(x), "target": torch.from_numpy(counts), "index": torch.tensor(i)}
        x, lab, own = self._prepare_sized(image, np.asarray(fr.labels), i)
        tgt = ignore_padding(labels_to_target(lab, self.target), own)  # (as SegmentationDataset's)
        return {"image": torch.from_numpy(x), "target": torch.from_numpy(tgt),
                "labels": torch.from_numpy(lab.astype(np.int32)), "index": torch.tensor(i, dtype=torch.int64),
                "size": torch.tensor(own, dtype=torch.int64)}


class TileDataset(Dataset):
    """Abstract hook for tile stores: subclasses implement ``__len__`` and ``read(i) ->
    (image HxWxC, labels HxW)``; the giant-images helper's ``devolens.data.tiling`` may
    provide richer ones. Targets and augmentation are handled here; ``ignore`` (0: none) is the labels'
    'ignore' value, whose pixels get the target :data:`IGNORE_INDEX`."""

    cache = False  # reads its tiles every time (see LiveRenderDataset.cache)
    ignore = 0

    def __init__(self, target: str = "semantic", normalize: str = "dtype", augment: Callable | None = None,
                 seed: int = 0):
        self._prep = _Base(channels=0, size=None, normalize=normalize, augment=augment, seed=seed, pad_multiple=1)
        self.target = target

    def set_epoch(self, epoch: int) -> None:
        self._prep.set_epoch(epoch)

    @property
    def augment(self):
        return self._prep.augment

    @augment.setter
    def augment(self, value) -> None:
        self._prep.augment = value

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _tile_target(self, lab: np.ndarray) -> np.ndarray:
        """A tile's labels as its training target without augmentation (its item's ``target``)."""
        return self._prep._own_target(self._prep._sized_labels(lab), self.target, int(self.ignore or 0))

    def class_targets(self, indices: Sequence[int]) -> Iterator[np.ndarray]:
        """The training targets of the tiles ``indices`` without augmentation (what automatic class weights
        count; see :meth:`SegmentationDataset.class_targets`)."""
        for i in indices:
            yield self._tile_target(self.read(int(i))[1])

    def __getitem__(self, i: int) -> dict[str, Any]:
        img, lab = self.read(i)
        if img.ndim == 2:
            img = img[..., None]
        self._prep.channels = img.shape[-1]
        x, lab = self._prep._prepare(img, lab, i)
        ignore = int(self.ignore or 0)
        tgt = labels_to_target(lab, self.target, ignore)
        return {"image": torch.from_numpy(x), "target": torch.from_numpy(tgt),
                "labels": torch.from_numpy(lab.astype(np.int32)), "index": torch.tensor(i, dtype=torch.int64),
                "ignore": torch.tensor(ignore, dtype=torch.int64)}


#: the most memory the HDF5 chunk caches of an :class:`H5TileDataset` take in each process that reads it (its images'
#: and labels' chunks together, decompressed), unless one window of chunks (:func:`h5_tile_cache`) is larger: up to a
#: ``devolens tile`` store's largest chunk (:data:`devolens.data.tiling.MAX_CHUNK_BYTES`, 256 MB) then
H5_TILE_CACHE_BYTES = 64 << 20


@dataclass(frozen=True)
class H5TileCache:
    """The chunk caches :class:`H5TileDataset` reads an HDF5 tile file through (:func:`h5_tile_cache`).

    Attributes
    ----------
    sizes : tuple of (int, int) or None
        Each dataset's ``(rdcc_nbytes, rdcc_nslots)`` (None: read directly, with HDF5's default cache).
    step : int
        Tiles a group holds: the rows of the datasets' largest chunks (``chunks[0]``); tile ``j`` lies in group
        ``j // step``.
    window : int or None
        The groups the caches hold at once, where they cannot hold every group read: a training epoch reads
        its tiles a window of that many groups at a time (:meth:`H5TileDataset.epoch_order`). None where they
        hold them all (any order reads each chunk once).
    """

    sizes: tuple
    step: int
    window: int | None

    @property
    def nbytes(self) -> int:
        """The most bytes the caches hold together."""
        return sum(s[0] for s in self.sizes if s is not None)


def _chunk_layout(ds: Any) -> tuple[int, int, int, int] | None:
    """``(rows, row_bytes, one_bytes, chunks)`` of an HDF5 dataset whose first axis is the tile: the tiles a chunk
    holds, the decompressed bytes of a row of chunks (the chunks one tile spans), of one chunk, and the chunks in
    the dataset; None where a tile read decompresses nothing twice (contiguous or unfiltered data, a chunk or more
    per tile)."""
    import math

    chunks = ds.chunks
    if not chunks or int(chunks[0]) <= 1 or ds.id.get_create_plist().get_nfilters() == 0:
        return None
    one = math.prod(int(c) for c in chunks) * ds.dtype.itemsize
    across = math.prod(math.ceil(int(n) / int(c)) for n, c in zip(ds.shape[1:], chunks[1:]))
    return int(chunks[0]), one * across, one, math.ceil(int(ds.shape[0]) / int(chunks[0])) * across


def h5_tile_cache(datasets: Sequence[Any], indices: Sequence[int] | np.ndarray, limit: int = H5_TILE_CACHE_BYTES,
                  most: int | None = None) -> H5TileCache | None:
    """The chunk caches for reading the tiles ``indices`` of HDF5 ``datasets`` (images, labels: a tile a row of each)
    one at a time, each chunk of several tiles decompressed once for its tiles rather than once for each (a file not
    written by ``devolens tile``: h5py's automatic chunks, ``chunks=(64, C, H, W)``...; a ``devolens tile`` store:
    chunks of up to 1000 tiles).

    The tiles fall in groups of ``step`` (the largest chunks' rows). Where every group those tiles lie in fits
    ``limit`` (the datasets' caches together), each dataset's cache holds all of them: any order reads each chunk
    once. Else each cache holds a window of groups (as many as fit ``limit``, at least one: ``limit`` is raised to
    one group where that is larger, up to ``most``), and a training epoch reads its tiles a window at a time
    (:meth:`H5TileDataset.epoch_order`): each chunk is then decompressed once an epoch, where tiles drawn over the
    whole file would decompress a chunk for nearly every tile.

    Parameters
    ----------
    datasets : sequence of h5py.Dataset
        Open datasets whose first axis is the tile.
    indices : sequence of int
        The rows read.
    limit : int
        Bytes the caches may hold together.
    most : int, optional
        The most bytes one window may take where a group is larger than ``limit`` (default
        :data:`devolens.data.tiling.MAX_CHUNK_BYTES`, a ``devolens tile`` store's largest chunk).

    Returns
    -------
    H5TileCache or None
        None where HDF5's default serves (no dataset of chunks of several tiles, compressed), or where not even
        one group fits ``most`` (every tile then decompresses its chunks: save the file in chunks of one tile,
        ``chunks=(1, C, H, W)``, or of fewer tiles).
    """
    import math

    rows = np.unique(np.asarray(indices, dtype=np.int64))
    layouts = [_chunk_layout(ds) for ds in datasets]
    if not rows.size or not any(layouts):
        return None
    if most is None:
        from devolens.data.tiling import MAX_CHUNK_BYTES

        most = MAX_CHUNK_BYTES
    step = max(lay[0] for lay in layouts if lay)
    # the bytes of all the chunks the tiles lie in, and of one group's (a group may straddle a smaller chunk)
    wanted = [0 if lay is None else lay[1] * len(np.unique(rows // lay[0])) for lay in layouts]
    group = [0 if lay is None else lay[1] * (math.ceil(step / lay[0]) + int(step % lay[0] != 0)) for lay in layouts]
    window = None
    held = wanted
    if sum(wanted) > limit:
        groups = len(np.unique(rows // step))
        window = max(1, int(limit // sum(group)))
        if window * sum(group) > max(limit, most):
            return None
        if window < groups:
            held = [min(w, window * g) for w, g in zip(wanted, group)]
        else:
            window = None
    sizes = tuple(None if lay is None else
                  (int(h) + (1 << 20), int(100 * math.ceil(h / lay[2])) + 1)
                  for lay, h in zip(layouts, held))
    return H5TileCache(sizes, int(step), window)


class H5TileDataset(TileDataset):
    """Tiles read lazily from an HDF5 file: ``images`` (N, C, H, W) and ``labels`` (N, H, W).

    The file is opened on first access in each process (safe with DataLoader workers), its datasets with chunk
    caches that keep the chunks of the tiles read decompressed where a chunk holds several tiles
    (:func:`h5_tile_cache`: at most :data:`H5_TILE_CACHE_BYTES` a process, or one group of chunks where that is
    larger, up to 256 MB). Where the caches cannot hold every chunk, a training epoch reads its tiles a window of
    chunks at a time (:meth:`epoch_order`): 4096 tiles of 256 px in lzf chunks of 64 (768 MB decompressed), a
    shuffled epoch 10 -> 470 tiles a second read directly, 8 -> 210 through the training loader, in 62 MB of caches
    (``benchmarks/bench_h5_tiles.py``).

    Parameters
    ----------
    path : str or Path
        The HDF5 file (e.g. written by ``devolens tile``).
    images_key, labels_key : str
        Dataset names inside the file.
    indices : sequence of int, optional
        The tiles to use (default all), e.g. one side of a split.
    target, normalize, augment, seed
        As :class:`SegmentationDataset`. A ``devolens tile --ignore`` store's 'ignore' label value
        (:func:`devolens.data.tiling.store_ignore`) is the items' ``ignore``: target :data:`IGNORE_INDEX` there.
    """

    def __init__(self, path: str | Path, images_key: str = "images", labels_key: str = "labels",
                 target: str = "semantic", normalize: str = "dtype", augment: Callable | None = None, seed: int = 0,
                 indices: Sequence[int] | None = None):
        super().__init__(target, normalize, augment, seed)
        self.path = Path(path)
        self.images_key, self.labels_key = images_key, labels_key
        if not self.path.exists():
            raise DevolensError("HDF5 file not found", path=self.path)
        from devolens.data.tiling import STORE_FORMAT, _linked, open_h5, store_ignore

        with open_h5(self.path) as f:  # another program holding it open (HDF5 locks it): one line
            if f.attrs.get("format") == STORE_FORMAT and "ignore" in f.attrs:  # its unannotated pixels' value
                from devolens.data.tiling import check_store

                check_store(f, self.path)  # (the attribute checked)
                self.ignore = store_ignore(f) or 0
            for k in (images_key, labels_key):
                if k not in f:
                    raise DevolensError(f"no dataset {k!r} in the file", path=self.path)
            # a link to a missing file, or a soft link to nothing: one line, as a tile store's (was a raw KeyError)
            images, labels = _linked(f, images_key, self.path), _linked(f, labels_key, self.path)
            n_img, n_lab = images.shape[0], labels.shape[0]
            if images.ndim != 4 or labels.ndim != 3:
                raise DevolensError(f"expected {images_key} (N,C,H,W) and {labels_key} (N,H,W)", path=self.path)
            if n_img != n_lab:
                raise DevolensError(f"{n_img} image tiles but {n_lab} label tiles", path=self.path)
            self.n = int(n_img)
            self.indices = np.arange(self.n) if indices is None else np.asarray(indices, dtype=np.int64)
            if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= self.n):
                raise DevolensError(f"tile indices out of range 0..{self.n - 1}", path=self.path)
            #: the chunk caches :meth:`read` opens the images and labels with (:func:`h5_tile_cache`; None: HDF5's
            #: default), sized for all the file's tiles: HDF5 shares a dataset open twice in a process, with the cache
            #: of its first opening, so the training and validation splits of a file must ask for the same
            #: (validation read first, as a run from weights scores them before training, left the training tiles
            #: the default cache: 0.34 -> 6.6 s)
            self.chunk_cache = h5_tile_cache([images, labels], np.arange(self.n))
        self.ids = [f"tile{j:06d}" for j in self.indices]
        self._file = self._images = self._labels = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = state["_images"] = state["_labels"] = None
        return state

    def epoch_order(self, order: Sequence[int] | np.ndarray) -> np.ndarray:
        """A training epoch's order of items (``order``: positions, shuffled) regrouped so that the chunk caches
        serve it: where they hold only a window of the file's chunks (:attr:`H5TileCache.window` groups of tiles),
        the tiles come a window at a time, each window's in their order in ``order``, the groups in the order of
        their first tile there. Each chunk is then decompressed once an epoch (in each loader process) instead of
        for nearly every tile. Every item still comes once, in an order that follows from ``order`` alone (a seeded
        epoch stays reproducible); what changes is that a batch draws its tiles from a window of groups (a
        ``devolens tile`` store's chunk: tiles of one or a few source images) rather than from the whole file, as
        the stream of a ``classes`` store (:class:`devolens.data.h5stream.H5TileStream`) reads them. ``order``
        itself where the caches hold every chunk (any order is then as fast) or none.

        Parameters
        ----------
        order : sequence of int
            Positions of items (``0..len(self)-1``), e.g. a seeded permutation.

        Returns
        -------
        numpy.ndarray
            The same positions, regrouped.
        """
        order = np.asarray(order, dtype=np.int64)
        cache = self.chunk_cache
        if cache is None or cache.window is None or not order.size:
            return order
        group = self.indices[order] // cache.step
        groups, first = np.unique(group, return_index=True)
        rank = np.empty(len(groups), dtype=np.int64)
        rank[np.argsort(first)] = np.arange(len(groups))  # each group's place, by its first tile in the order
        return order[np.argsort(rank[np.searchsorted(groups, group)] // cache.window, kind="stable")]

    def _open(self, key: str, size: tuple[int, int] | None):
        """Dataset ``key`` of the open file, with a chunk cache of ``size`` (``(rdcc_nbytes, rdcc_nslots)``)."""
        import h5py

        if size is None:
            return self._file[key]
        dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
        dapl.set_chunk_cache(int(size[1]), int(size[0]), 0.75)  # (HDF5's default preemption)
        return h5py.Dataset(h5py.h5d.open(self._file.id, key.encode(), dapl=dapl))

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Tile ``i``: its image (H, W, C) and labels (H, W). The file is opened once per process and its two
        datasets kept open, each with its chunk cache of :attr:`chunk_cache` (HDF5 drops a dataset's cached chunks
        when it is closed: a dataset opened anew for each tile decompressed its whole chunk for each)."""
        if self._file is None:
            from devolens.data.tiling import open_h5

            self._file = open_h5(self.path)
            sizes = (None, None) if self.chunk_cache is None else self.chunk_cache.sizes
            self._images, self._labels = self._open(self.images_key, sizes[0]), self._open(self.labels_key, sizes[1])
        j = int(self.indices[i])
        img = np.moveaxis(np.asarray(self._images[j]), 0, -1)
        lab = np.asarray(self._labels[j])
        return img, lab

    def class_targets(self, indices: Sequence[int]) -> Iterator[np.ndarray]:
        """The training targets of the tiles ``indices`` without augmentation (what automatic class weights
        count), in the store's order: only the labels are read, each HDF5 chunk of them once (a tile read alone
        decompresses its whole chunk: tiles drawn at random over the store read every chunk again and again),
        so the targets come in store order, not that of ``indices``."""
        from devolens.data.tiling import open_h5

        rows = np.sort(self.indices[np.asarray(indices, dtype=np.int64)])
        with open_h5(self.path) as f:
            labels = f[self.labels_key]
            step = int(labels.chunks[0]) if labels.chunks else 1  # contiguous: each tile read alone
            for chunk in np.unique(rows // step):
                part = rows[rows // step == chunk]
                block = np.asarray(labels[int(part[0]):int(part[-1]) + 1])
                for j in part:
                    yield self._tile_target(block[int(j - part[0])])
