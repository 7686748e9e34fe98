"""Cut large two-channel images (and their label images) into tiles in an HDF5 store.

Store layout (one file, any number of source images)::

    images        (N, C, T, T) uint16   chunked (chunk, C, T, T), shuffle + lzf
    labels        (N, T, T)    uint8    chunked (chunk, T, T), shuffle + lzf [when labelled]
    class_counts  (N, K)       int64    pixels of each class in the tile  [when labelled; 'ignore' pixels
                                         are no class: counted nowhere]
    source        (N,)         int32    index into attrs["sources"]
    coords        (N, 2)       int32    (y, x) of the tile's top-left corner in its source: row, then column, the
                                         reverse of the CSVs' x, y (its attribute ``axes``, "yx", says so; absent
                                         in stores written before it was recorded, of the same order)
    attrs: sources, label_sources (JSON lists of file names), source_digests (JSON list: a digest of each
           source's pixels as tiled, not of its file: the 32 hex digits of a BLAKE2b of the image's dtype, shape and
           uint16 values as converted (:func:`pixel_digest`), and "+" and its labels' of the same kind; null for
           sources of stores written before it was recorded; an ``append`` refuses a source whose digest the store
           holds, its tiles being there already), inputs and label_inputs (JSON lists, one entry a source, as the
           other records' ``inputs``: :func:`devolens.provenance.input_entry`, the file's absolute ``path``,
           ``bytes`` and ``sha256``, which ``sha256sum`` checks; null for an unlabelled source's labels and for the
           sources of writes before they were recorded), history (JSON list, one object a write, the first
           first: ``command``, its command line, null for a library call; ``cwd``, the absolute working directory
           its relative paths are relative to; ``devolens``; ``environment``
           (:func:`devolens.provenance.environment`); ``sources``, the names it added; a store written before it
           was recorded starts it with its last write's ``command`` alone), tile, stride,
           keep, n_classes, channels, chunk, format="devolens-tiles", version, edge_tiles (True: each
           source's last row and column of tiles lie flush with its bottom and right edges, so that every pixel
           is in a tile; absent in stores written before, whose grid could stop short of them),
           ignore (the label value that marks unannotated pixels, ``--ignore``: no class, left out of
           class_counts, the keep rule, the training losses and the scores; absent: none), devolens (the
           version of devolens that wrote the store last; absent in stores written before it was recorded),
           command (the ``devolens tile`` command line of that write; absent when a library call made it; every
           write's: history)

Tiles are cut and written one row of tiles at a time, and a TIFF (image or labels) is read a band of rows at a time
through :class:`devolens.predict.tiled.RowReader` (uncompressed by its file offsets; compressed, tiled or OME ones
strip by strip or tile by tile; other files whole): memory is a band of rows and one chunk of tiles, not every tile
of the image.
Every tile of a store is cut with the same settings (its attributes): ``append`` refuses another tile, stride or
keep rule.

Chunks hold ``chunk`` whole samples (default 1000) and are always written whole, so that
writing is fast and a reader (:class:`devolens.data.h5stream.H5TileStream`) can fetch one
chunk at a time. The store is written to a temporary file and renamed at the end: an
interrupted run never leaves a corrupt store (``append=True`` works on a copy likewise). Runs writing
one store take turns: each holds a lock on ``.NAME.lock`` beside it (:func:`store_lock`) from reading
the store to renaming the new one in place, so that two ``--append`` runs add both their images.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import h5py
import numpy as np
import pandas as pd
import tifffile

from devolens import checks
from devolens.errors import DevolensError, DevolensWarning, ReadNote
from devolens.io.atomic import HAS_LOCKS, FileLock, atomic_path, cannot_write, cannot_write_errno, stop_if_signalled
from devolens.io.stacks import complaint, quiet_tifffile
from devolens.provenance import absolute_path, environment, input_entry, version
from devolens.io.wells import (  # noqa: F401 - re-exported: read here by other modules, tests and scripts
    DEAD_STAINS,
    GREEN_SIGNAL,
    NUCLEAR_STAINS,
    SAVE_WELL,
    STORE_FORMAT,
    _stain_role,
    channels_last,
    colour_tiff,
    colour_tiff_page,
    one_channel_error,
    read_colour_image,
    tiff_channel_names,
    well_channel_order,
    well_channels,
)
from devolens.predict.tiled import (RowReader, _not_one_plane, check_one_image, colour_tiff_order, eight_bit_question,
                                    h5_open_error, looks_eight_bit, may_look_eight_bit, refuse_other_format,
                                    rgb_tiff_note)
STORE_VERSION = 1
#: the order of a store's ``coords`` columns, its attribute ``axes``: y (row), then x (column)
COORDS_AXES = "yx"
#: the smallest tile side `devolens tile --tile` takes
MIN_TILE = 8
#: most bytes of samples (tiles, labels and their rows) per HDF5 chunk: the writer holds one chunk (HDF5 twice that
#: to compress it), a reader fetches one; 1000 tiles of 160 px, the defaults, are 128 MB
MAX_CHUNK_BYTES = 256 << 20
#: the largest 'ignore' label value (``--ignore``): a store's labels are uint8
MAX_IGNORE = 255

__all__ = [
    "read_image",
    "read_colour_image",
    "read_labels",
    "tiff_channel_names",
    "well_channel_order",
    "tile_positions",
    "tile_arrays",
    "tile_to_h5",
    "open_store",
    "store_ignore",
    "store_stats",
    "TilingSummary",
]


# ----------------------------------------------------------------------------------------
# reading and checking inputs


def _float_top(arr: np.ndarray) -> float:
    """The largest finite value of a float image (0 when it holds none): whether it is a [0, 1] image. An infinite
    pixel does not count (one +inf pixel made a [0, 1] well read as whole counts, nearly black)."""
    a = arr.astype(np.float32, copy=False)
    return float(a[np.isfinite(a)].max(initial=0.0))


def _uint16_rule(dtype: np.dtype, top: float, path: Path) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """How :func:`_to_uint16` converts an image of ``dtype`` (not uint16) whose :func:`_float_top` is ``top`` (floats
    only), as a function of any part of it (the whole image, or a band of rows: the same values), and the words
    of its warning."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_ or not np.issubdtype(dtype, np.number):
        raise DevolensError(f"image dtype {dtype} is not numeric", path=path)
    if dtype == np.uint8:
        return (lambda a: a.astype(np.uint16) * np.uint16(257)), "scaled x257"
    if np.issubdtype(dtype, np.floating):
        unit = top <= 1.0

        def convert(a: np.ndarray) -> np.ndarray:  # NaN and -inf as 0, +inf as the top (65535)
            finite = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0 if unit else 65535.0, neginf=0.0)
            if unit:
                finite = finite * 65535.0
            return np.clip(np.rint(finite), 0, 65535).astype(np.uint16)

        return convert, "scaled [0, 1] -> [0, 65535]" if unit else "rounded and clipped to [0, 65535]"
    return (lambda a: np.clip(a, 0, 65535).astype(np.uint16)), "clipped to [0, 65535]"


def _conversion_warning(dtype, how: str, path: Path, stacklevel: int, why: str = "") -> None:
    warnings.warn(f"{path}: image is {np.dtype(dtype)}, not uint16; converted ({how}{'; ' + why if why else ''})",
                  stacklevel=stacklevel + 1, category=DevolensWarning)


def _to_uint16(arr: np.ndarray, path: Path, stacklevel: int = 3, why: str = "") -> np.ndarray:
    """Convert an image of another dtype to uint16 (with a warning; ``why``: what the conversion means to its reader,
    added to the warning's words: :data:`devolens.predict.tiled.LIVEDEAD_CONVERTED`)."""
    if arr.dtype == np.uint16:
        return arr
    is_float = np.issubdtype(arr.dtype, np.floating) and arr.dtype != np.bool_
    convert, how = _uint16_rule(arr.dtype, _float_top(arr) if is_float else 0.0, path)
    out = convert(arr)
    _conversion_warning(arr.dtype, how, path, stacklevel=stacklevel, why=why)
    return out


def _eight_bit_warning(stored: np.dtype, channels: int, top: int, low: int, path: Path, stacklevel: int) -> None:
    """Warn of a well that looks like 8-bit data saved as 16-bit, by the rule of ``segment livedead``
    (:func:`devolens.predict.tiled.looks_eight_bit`), in its words.
    Tiled as it is (not scaled x257 as an 8-bit file is), as ``segment livedead`` reads it: only the warning is
    added, the tiles are not changed (was: no word, where segmenting the same well warned)."""
    if not looks_eight_bit(stored, channels, top, low):
        return
    warnings.warn(f"{eight_bit_question(path, top, low)} Tiled as it is, not scaled, as `segment livedead` reads it; "
                  "the livedead model reads a 16-bit camera's counts, and a model trained on these tiles learns an "
                  "8-bit export's values instead: tile the microscope's own 16-bit file", stacklevel=stacklevel + 1,
                  category=DevolensWarning)


def _tiff_well_channels(path: Path, n_channels: int, order: Sequence[int] | None, shape: tuple
                        ) -> tuple[list[int] | None, str | None]:
    """The two channels of a well TIFF (:func:`read_image`, :class:`_Bands`), as ``segment livedead`` reads them
    (:class:`devolens.predict.tiled.RowReader`): an RGB TIFF of 3 or 4 interleaved samples (:func:`colour_tiff_page`;
    a planar one is a stack of channels) without channel names and no ``order`` by its colours, as a PNG (Hoechst from blue, Draq7 from red; refused when grey or when green holds
    signal), with the reader's note; any other by :func:`well_channels`."""
    if order is None and n_channels in (3, 4) and colour_tiff(path):
        found = colour_tiff_order(path)  # the colour rule of segment livedead, not a copy of it
        if found is not None:
            return found, rgb_tiff_note()
    return well_channels(path, n_channels, order, tiff=True, shape=shape)


def read_image(path: str | Path, channels: int = 2, order: Sequence[int] | None = None) -> np.ndarray:
    """Read a multi-channel image as a (C, H, W) uint16 array.

    Parameters
    ----------
    path : str or Path
        TIFF file holding (C, H, W) data; (H, W, C) with C last is accepted as well. A PNG, JPEG or BMP
        (by its content) is read by :func:`read_colour_image`: Hoechst from its blue, Draq7 from its red; an RGB
        TIFF without channel names likewise (with a note), as ``segment livedead`` reads it
        (:class:`devolens.predict.tiled.RowReader`), so that a well is tiled as it is segmented.
    channels : int
        Expected channel count (2: Hoechst, Draq7).
    order : sequence of int, optional
        For a two-channel well TIFF: the indices of its Hoechst and Draq7 channels (``[1, 0]`` for Draq7 first; two
        of three channels; ``[2, 0]``: an RGB TIFF's blue and red). Default: as its channel names say (OME-TIFF,
        ImageJ: ``Hoechst``, ``DAPI``, ``DRAQ7``, ``PI``..., with a note when not Hoechst first), an RGB TIFF's
        colours, else the first two by position (:func:`well_channel_order`).

    Returns
    -------
    ndarray, uint16, shape (C, H, W)

    Raises
    ------
    DevolensError
        Missing or unreadable file, wrong number of dimensions or channels.

    Notes
    -----
    Images of another dtype are converted to uint16 with a ``UserWarning``: uint8 is scaled
    by 257, floats in [0, 1] by 65535, other values are rounded and clipped.
    """
    return _read_image(path, channels, order)[0]


def _read_image(path: str | Path, channels: int, order: Sequence[int] | None) -> tuple[np.ndarray, np.dtype]:
    """:func:`read_image`'s image, and the dtype of the channels as the file stores them (whether the image was
    converted: :func:`_eight_bit_warning`). Its warnings point at the caller of its caller (:func:`read_image`,
    :meth:`_Bands.image`)."""
    path = Path(path)
    arr, tiff = _imread(path, channels=channels, order=order)  # a PNG's colours chosen: all of them, (C, H, W)
    if arr.ndim == 2 and channels == 1:
        arr = arr[None]
    if arr.ndim == 2 and channels == 2:
        raise one_channel_error(path, arr.shape)
    if arr.ndim != 3:
        raise DevolensError(f"expected a (C, H, W) image with C={channels}, got shape {arr.shape}", path=path)
    if channels == 2:  # a TIFF: its channel names (OME, ImageJ) or --channels say which is which (well_channels)
        if tiff and channels_last(arr.shape, channels):
            arr = np.moveaxis(arr, -1, 0)
        if tiff:  # an RGB TIFF without channel names: by its colours, as segment livedead reads it
            found, note = _tiff_well_channels(path, arr.shape[0], order, arr.shape)
        else:
            found, note = well_channels(path, arr.shape[0], order, tiff=tiff, shape=arr.shape)
        if found is not None:
            if note:  # (how its channels were chosen: a note)
                warnings.warn(f"{path}: {note}", stacklevel=3, category=ReadNote)
            arr = arr[found]
    if arr.shape[0] != channels:
        if arr.shape[-1] == channels and arr.shape[0] > channels:
            arr = np.moveaxis(arr, -1, 0)
        else:
            raise DevolensError(
                f"expected {channels} channels (Hoechst, Draq7) in a (C, H, W) image, got shape {arr.shape}",
                path=path,
            )
    return np.ascontiguousarray(_to_uint16(arr, path, stacklevel=4)), arr.dtype


def read_labels(path: str | Path, n_classes: int = 3, ignore: int | None = None) -> np.ndarray:
    """Read a class label image (H, W) as uint8 and check its values are < ``n_classes`` (or ``ignore``, the value
    that marks unannotated pixels; :func:`check_ignore`): a TIFF, or a PNG or BMP (the class ids, or a paletted
    image's indices; JPEG is refused: :func:`devolens.data.datasets.read_mask`)."""
    path = Path(path)
    arr, _ = _imread(path, labels=True)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise DevolensError(f"expected an (H, W) label image, got shape {arr.shape}", path=path)
    if not np.issubdtype(arr.dtype, np.integer):
        raise DevolensError(f"label image must hold integers, got {arr.dtype}", path=path)
    hi = int(arr.max()) if arr.size else 0
    lo = int(arr.min()) if arr.size else 0
    if lo < 0 or hi >= n_classes:
        _check_label_range(arr, n_classes, ignore, path)
    return np.ascontiguousarray(arr.astype(np.uint8, copy=False))


def _check_label_range(arr: np.ndarray, n_classes: int, ignore: int | None, path: Path | None) -> None:
    """Refuse a label image holding a value that is neither a class id (``0..n_classes-1``) nor ``ignore`` (the
    pass over it is made only where its range goes past the classes): the error gives the range of its values other
    than ``ignore``, and, where a single value beyond the classes could mark unannotated pixels, ``--ignore`` for it.

    Raises
    ------
    DevolensError
        Such a value."""
    arr = np.asarray(arr)
    beyond = (arr < 0) | (arr >= n_classes)
    if ignore is not None:
        beyond &= arr != ignore
    if not beyond.any():
        return
    own = arr if ignore is None else arr[arr != ignore]
    lo, hi = int(own.min()), int(own.max())
    allowed = f"0..{n_classes - 1}" + (f" or {ignore} (--ignore)" if ignore is not None else "")
    odd = np.unique(arr[beyond])
    hint = ""
    if ignore is None and odd.size == 1 and n_classes <= int(odd[0]) <= MAX_IGNORE:
        hint = (f"; if {int(odd[0])} marks unannotated regions, to be left out of training and scoring, tile with "
                f"--ignore {int(odd[0])}")
    raise DevolensError(f"label values must be in {allowed}, found {lo}..{hi}{hint}", path=path)


def check_ignore(ignore, n_classes: int, labelled: bool = True) -> int | None:
    """``ignore`` (the label value of unannotated pixels, ``--ignore``) checked: None, or a whole number beyond the
    class ids (``n_classes..255``: a store's labels are uint8), with label images to mark.

    Raises
    ------
    DevolensError
        A value that is a class id, past 255, not a whole number, or given without labels.
    """
    if ignore is None:
        return None
    ignore = checks.whole(ignore, "--ignore")
    if not n_classes <= ignore <= MAX_IGNORE:
        raise DevolensError(f"--ignore {ignore}: the 'ignore' value must lie beyond the class ids 0..{n_classes - 1} "
                            f"and be at most {MAX_IGNORE} (tile labels are 8-bit): e.g. --ignore 255")
    if not labelled:
        raise DevolensError(f"--ignore {ignore} marks pixels of the label images: give --labels, or leave out "
                            "--ignore")
    return ignore


def store_ignore(f: h5py.File) -> int | None:
    """The 'ignore' label value an open tile store records (its ``ignore`` attribute, ``devolens tile --ignore``;
    :func:`check_store` checked it), None where it has none."""
    v = f.attrs.get("ignore")
    if v is None:
        return None
    return int(v.item() if isinstance(v, np.ndarray) else v)


def _imread(path: Path, labels: bool = False, channels: int | None = None,
            order: Sequence[int] | None = None) -> tuple[np.ndarray, bool]:
    """The image and whether it is a TIFF: a TIFF as tifffile stores it (``(C, H, W)`` or ``(H, W, C)``); another
    image file (PNG, JPEG, BMP: by its content) through the project's readers: a label image by
    :func:`devolens.data.datasets.read_mask` (palette indices, JPEG refused), an image by :func:`read_colour_image`
    (``order``: its colours chosen, every one of them read)."""
    if not path.exists():
        raise DevolensError("no such file", path=path)
    from devolens.io.stacks import is_tiff

    if not is_tiff(path):
        # a microscope's own file (.czi, .nd2...) or a HEIC photo: how to save it as one that is read
        refuse_other_format(path, "a label image (a TIFF or PNG file)" if labels
                            else "an image (a TIFF, PNG, JPEG or BMP file)")
        if labels:
            from devolens.data.datasets import read_mask

            return read_mask(path, classes=True), False
        return read_colour_image(path, channels, order), False
    from devolens.io.stacks import open_tiff, own_series

    with quiet_tifffile() as complaints:
        try:
            # a damaged file (its chain of pages broken, its pixel data past its end) said so, as segment livedead
            # and segment nuclei say it; several wells or positions in one file refused, not the first tiled
            with open_tiff(path) as tf:
                check_one_image(tf, path)
                if not labels and channels == 2:  # a Z-stack or time series: refused before it is read
                    _check_one_plane(tf, path)
                # its own series, in a multi-file OME set (one file per position)
                arr = tf.asarray(series=own_series(tf))
        except DevolensError:
            raise
        except Exception as exc:  # tifffile raises many types on bad files
            raise DevolensError(f"cannot read as TIFF ({exc.__class__.__name__}: {exc})", path=path) from None
    if arr.size == 0 and complaints:  # its pages could not be found: tifffile read nothing and said why
        raise DevolensError(f"damaged or truncated TIFF ({complaint(complaints[0])}): a file cut short by an "
                            "interrupted copy?", path=path)
    return arr, True


def _check_one_plane(tf: tifffile.TiffFile, path: Path) -> None:
    """Refuse a well TIFF (open as ``tf``) that holds more than one plane (a Z-stack, a time series), naming its axes
    and how to make one plane of it (Fiji's Z Project), in the words of ``segment livedead``
    (:func:`devolens.predict.tiled._not_one_plane`)."""
    from devolens.io.stacks import own_series

    try:
        series = tf.series[own_series(tf)]
    except IndexError:  # no series found (a damaged file): its reader says so
        return
    if len(series.shape) > 3:
        raise DevolensError(_not_one_plane(series.shape, str(series.axes)), path=path)


def _check_headers(images: Sequence[Path], channels: int) -> None:
    """Refuse, from their headers, images that cannot be tiled before any other complaint about the options (a
    missing file, a well TIFF of several planes: :func:`_check_one_plane`); the rest is found as they are read."""
    from devolens.io.stacks import is_tiff, open_tiff

    for path in images:
        if not path.exists():
            raise DevolensError("no such file", path=path)
        if channels != 2 or not is_tiff(path):
            continue
        with quiet_tifffile():
            try:
                with open_tiff(path) as tf:  # (a damaged file: said so)
                    _check_one_plane(tf, path)
            except DevolensError:
                raise
            except Exception:  # noqa: BLE001 - unreadable: its reader says what is wrong, as before
                pass


# ----------------------------------------------------------------------------------------
# tiling in memory


def tile_positions(length: int, tile: int, stride: int, edge: bool = True) -> np.ndarray:
    """Top-left offsets of tiles along one axis, in pixels: 0, stride, 2*stride, ... while they fit, and (``edge``)
    one more at ``length - tile`` where that grid stops short of the far edge, so that every pixel lies in a tile
    (with ``stride`` at most ``tile``; a larger one leaves ``stride - tile`` pixels between tiles, a sparse sample).
    None (an empty array) when the axis is shorter than the tile.

    Examples
    --------
    >>> tile_positions(1500, 160, 80)[-3:].tolist()  # the grid ends at 1280 (rows 1440-1499 left out): 1340 added
    [1200, 1280, 1340]
    >>> tile_positions(1500, 160, 80, edge=False)[-1].item()
    1280
    """
    if length < tile:
        return np.zeros(0, np.int64)
    pos = np.arange(0, length - tile + 1, stride, dtype=np.int64)
    if edge and pos[-1] != length - tile:
        pos = np.append(pos, np.int64(length - tile))
    return pos


def _tile_rows(image: np.ndarray | Callable[[int, int], np.ndarray], labels: np.ndarray | Callable | None,
               ys: np.ndarray, xs: np.ndarray, tile: int, keep: str, n_classes: int,
               ignore: int | None = None) -> Iterator[dict[str, np.ndarray]]:
    """The tiles of one row of tile positions at a time (``ys`` in order): for each ``y``, the dict of
    :func:`tile_arrays` for the tiles at ``(y, xs)`` that ``keep`` keeps (class counts from the band's column sums:
    any positions, memory one band of ``tile`` rows; pixels of the ``ignore`` value are no class: counted in none,
    background included, so that they make no tile 'mixed'). ``image`` and ``labels``: arrays, or ``rows(y0, y1)``
    giving their rows ``y0:y1`` (an image read by bands)."""
    image_rows = image if callable(image) else (lambda a, b: image[:, a:b])
    label_rows = labels if callable(labels) or labels is None else (lambda a, b: labels[a:b])
    for y in ys:
        y = int(y)
        band_img = image_rows(y, y + tile)
        c = band_img.shape[0]
        if label_rows is not None:
            band = label_rows(y, y + tile)
            counts = np.empty((xs.size, n_classes), np.int64)

            def pixels(value: int) -> np.ndarray:  # of each tile of the row: pixels of that value
                cs = np.zeros(band.shape[1] + 1, np.int64)
                np.cumsum((band == value).sum(axis=0, dtype=np.int64), out=cs[1:])
                return cs[xs + tile] - cs[xs]

            for k in range(1, n_classes):
                counts[:, k] = pixels(k)
            counts[:, 0] = tile * tile - counts[:, 1:].sum(axis=1)
            if ignore is not None:
                counts[:, 0] -= pixels(ignore)
            sel = (counts > 0).sum(axis=1) > 1 if keep == "mixed" else np.ones(xs.size, bool)
        else:
            counts, sel = None, np.ones(xs.size, bool)
        kept = xs[sel]
        part: dict[str, np.ndarray] = {
            "images": (np.stack([band_img[:, :, x:x + tile] for x in kept]) if kept.size
                       else np.zeros((0, c, tile, tile), band_img.dtype)),
            "coords": np.column_stack([np.full(kept.size, y), kept]).astype(np.int32),
        }
        if label_rows is not None:
            part["labels"] = (np.stack([band[:, x:x + tile] for x in kept]) if kept.size
                              else np.zeros((0, tile, tile), band.dtype))
            part["class_counts"] = counts[sel]
        yield part


def _paths(values, name: str) -> list[Path]:
    """A list of paths; one path (str or Path) is a list of one, not of its characters."""
    if isinstance(values, (str, os.PathLike)):
        values = [values]
    try:
        values = list(values)
    except TypeError:
        raise DevolensError(f"{name} must be a list of image paths, got {type(values).__name__}") from None
    for v in values:
        if not isinstance(v, (str, os.PathLike)):
            raise DevolensError(f"{name} must be a list of image paths, got an item {v!r}")
    return [Path(v) for v in values]


def tile_arrays(
    image: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    tile: int = 160,
    stride: int = 80,
    keep: str = "mixed",
    n_classes: int = 3,
    edge: bool = True,
    ignore: int | None = None,
) -> dict[str, np.ndarray]:
    """Cut one image (and its labels) into tiles, in memory (:func:`tile_to_h5` writes them to a store a row of
    tiles at a time).

    Parameters
    ----------
    image : ndarray, shape (C, H, W)
        The image.
    labels : ndarray, shape (H, W), optional
        Class labels (values < ``n_classes``); required for ``keep="mixed"``.
    tile, stride : int
        Tile side and step in pixels. Tiles start at 0, stride, ... while they fit, and one more row and column
        lie flush with the bottom and right edges where that grid stops short of them (``edge``,
        :func:`tile_positions`). A stride larger than the tile leaves pixels in no tile (a sparse sample), with a
        warning.
    keep : {"mixed", "all"}
        ``"mixed"`` keeps only tiles holding more than one class; ``"all"`` keeps every tile.
    n_classes : int
        Number of classes K.
    edge : bool
        Add the tiles flush with the far edges (default); False: the grid alone (stores written before them).
    ignore : int, optional
        The label value of unannotated pixels (``n_classes..255``): kept in ``labels``, but no class: counted in
        no column of ``class_counts`` and no class for ``keep="mixed"``.

    Returns
    -------
    dict
        ``images`` (N, C, T, T), ``labels`` (N, T, T) and ``class_counts`` (N, K) when
        labelled, ``coords`` (N, 2) int32 (y, x of each tile's top-left corner).
    """
    if keep not in ("mixed", "all"):
        raise DevolensError(f"keep must be 'mixed' or 'all', got {keep!r}")
    tile, stride, n_classes = (checks.whole(v, k, 1) for k, v in (("tile", tile), ("stride", stride),
                                                                    ("n_classes", n_classes)))
    ignore = check_ignore(ignore, n_classes, labels is not None)
    _gaps_warning(tile, stride)
    image = np.asarray(image)
    if image.ndim != 3:
        raise DevolensError(f"expected a (C, H, W) image, got shape {image.shape}")
    _, h, w = image.shape
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (h, w):
            raise DevolensError(f"label image has shape {labels.shape} but the image is {h}x{w} (labels: (H, W))")
        if labels.size and not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
            raise DevolensError(f"label image must hold integers, got {labels.dtype}")
        lo, hi = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
        if lo < 0 or hi >= n_classes:  # out of range: counted as no class, tiles silently lost
            _check_label_range(labels, n_classes, ignore, None)
    if labels is None and keep == "mixed":
        raise DevolensError("keep='mixed' needs label images (give labels or keep='all')")
    if tile > h or tile > w:
        raise DevolensError(f"tile ({tile} px) is larger than the image ({h}x{w})")
    ys = tile_positions(h, tile, stride, edge)
    xs = tile_positions(w, tile, stride, edge)
    parts = list(_tile_rows(image, labels, ys, xs, tile, keep, n_classes, ignore))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


# ----------------------------------------------------------------------------------------
# HDF5 store


@dataclass
class TilingSummary:
    """What :func:`tile_to_h5` wrote: tiles per source and totals."""

    path: Path
    n_tiles: int            # tiles in the store after this run
    added: list[int]        # tiles added per input image (same order as the inputs)
    considered: list[int]   # tile positions looked at per input image
    sources: list[str]      # all source names in the store

    def __str__(self) -> str:  # pragma: no cover - convenience
        return f"{self.path}: {self.n_tiles} tiles from {len(self.sources)} images"


class _Writer:
    """Gathers samples in a buffer of one chunk (``chunk`` samples) per dataset and writes whole chunks to the store:
    memory is one chunk of tiles, however many the image holds."""

    def __init__(self, f: h5py.File, chunk: int, labelled: bool):
        self.f = f
        self.chunk = chunk
        self.labelled = labelled
        self.names = ["images", "source", "coords"] + (["labels", "class_counts"] if labelled else [])
        self.n = f["images"].shape[0]
        # filled as samples come (np.empty: pages are taken as they are written)
        self.buf = {k: np.empty((chunk,) + f[k].shape[1:], f[k].dtype) for k in self.names}
        self.fill = 0
        # re-write the partial last chunk together with the new samples (whole chunks only)
        tail = self.n % chunk
        if tail:
            start = self.n - tail
            for k in self.names:
                self.buf[k][:tail] = f[k][start:self.n]
            self.fill = tail
            self.n = start

    def add(self, parts: dict[str, np.ndarray]) -> None:
        k0 = len(parts["images"])
        i = 0
        while i < k0:
            take = min(self.chunk - self.fill, k0 - i)
            for k in self.names:
                self.buf[k][self.fill:self.fill + take] = parts[k][i:i + take]
            self.fill += take
            i += take
            if self.fill == self.chunk:
                self._flush()

    def _flush(self) -> None:
        count = self.fill
        for k in self.names:
            d = self.f[k]
            if d.shape[0] < self.n + count:
                d.resize(self.n + count, axis=0)
            d[self.n:self.n + count] = self.buf[k][:count]
        self.n += count
        self.fill = 0
        # a Ctrl-C or SIGTERM often lands in one of h5py's weakref callbacks, where Python drops its exception:
        # the signal is recorded (devolens.io.atomic), and the run stops here rather than at its end
        stop_if_signalled()

    def close(self) -> int:
        if self.fill:
            self._flush()
        return self.n


def chunk_samples(chunk: int, tile: int, channels: int, labelled: bool, n_classes: int) -> int:
    """Samples per chunk of a new store: ``chunk``, or fewer (at least 1) where so many tiles would be over
    :data:`MAX_CHUNK_BYTES`."""
    per = channels * tile * tile * 2 + 4 + 8 + ((tile * tile + 8 * n_classes) if labelled else 0)
    return max(1, min(int(chunk), MAX_CHUNK_BYTES // per))


def _create_datasets(f: h5py.File, channels: int, tile: int, n_classes: int, chunk: int,
                     labelled: bool, compression: str | None) -> None:
    # byte-shuffle + lzf: faster to write than plain lzf and a third smaller for uint16 images
    kw: dict = {"compression": compression, "shuffle": True}
    if compression == "gzip":
        kw["compression_opts"] = 1
    if compression is None:
        kw = {}
    f.create_dataset("images", shape=(0, channels, tile, tile), maxshape=(None, channels, tile, tile),
                     dtype=np.uint16, chunks=(chunk, channels, tile, tile), **kw)
    f.create_dataset("source", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(chunk,))
    f.create_dataset("coords", shape=(0, 2), maxshape=(None, 2), dtype=np.int32, chunks=(chunk, 2))
    # (y, x): the reverse of every CSV's x, y, said where a reader looks (stores written before lack it: the same order)
    f["coords"].attrs["axes"] = COORDS_AXES
    if labelled:
        f.create_dataset("labels", shape=(0, tile, tile), maxshape=(None, tile, tile), dtype=np.uint8,
                         chunks=(chunk, tile, tile), **kw)
        f.create_dataset("class_counts", shape=(0, n_classes), maxshape=(None, n_classes), dtype=np.int64,
                         chunks=(chunk, n_classes))


#: a store's datasets as :func:`tile_to_h5` writes them: dtypes (numpy kinds, or one dtype) and dimensions, with what
#: each holds (for the messages); readers rely on them (a float image with NaN pixels trained to NaN weights, labels
#: of another shape or a 1-D ``class_counts`` failed with tracebacks)
_STORE_DATASETS = {
    "images": (np.dtype(np.uint16), 4, "(N, C, T, T) uint16 camera counts"),
    "labels": (np.dtype(np.uint8), 3, "(N, T, T) uint8 class ids"),
    "class_counts": ("iu", 2, "(N, K) integer pixel counts per class"),
    "source": ("iu", 1, "(N,) integer source indices"),
    "coords": ("iu", 2, "(N, 2) integer tile corners"),
}
#: a store's attributes that readers use: JSON lists (of strings; ``source_digests``: or null) and whole numbers
_STORE_LISTS = ("sources", "label_sources", "source_digests")
_STORE_NUMBERS = ("tile", "stride", "n_classes", "chunk")
_DAMAGED = "not as `devolens tile` writes a store (made by another program, or damaged)"


def _attr_text(v) -> str | None:
    """An attribute as text (h5py gives variable-length strings as str, fixed-length ones as bytes); None if not
    text."""
    if isinstance(v, (bytes, np.bytes_)):
        try:
            return bytes(v).decode()
        except UnicodeDecodeError:
            return None
    return str(v) if isinstance(v, str) else None


def store_list(f: h5py.File, name: str, path: str | Path) -> list:
    """A store's JSON list attribute (``sources``, ``label_sources``, ``source_digests``), checked.

    Raises
    ------
    DevolensError
        Missing, not JSON, or not a list of names (``source_digests``: of names or nulls).
    """
    if name not in f.attrs:
        raise DevolensError(f"its {name!r} attribute is missing: {_DAMAGED}", path=path)
    text = _attr_text(f.attrs[name])
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        value = None
    if name == "source_digests" and value is None and text == "null":
        return []
    ok = isinstance(value, list) and all(isinstance(x, str) or (x is None and name == "source_digests")
                                         for x in value)
    if not ok:
        raise DevolensError(f"its {name!r} attribute is not a JSON list of names (it holds "
                            f"{checks.shown(text if text is not None else f.attrs[name])}): {_DAMAGED}",
                            path=path)
    return value


def _linked(f: h5py.File, name: str, path: str | Path):
    """``f[name]``, where a link that leads nowhere is one line naming it: an external link (``h5py.ExternalLink``,
    a dataset kept in another file, which HDF5 looks for beside the store) to a file that is missing, or to one
    that cannot give it; a soft link to an object the store lacks. Was "corrupt tile store: Unable to synchronously
    open object (can't open file)", which named neither the link nor the file. ``name in f`` is True for both:
    it asks for the link, not its target."""
    try:
        return f[name]
    except (KeyError, OSError) as exc:
        link = f.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            target = Path(link.filename)
            beside = target if target.is_absolute() else Path(path).parent / target
            if not beside.exists() and not target.exists():
                raise DevolensError(f"its {name!r} is a link to {link.path!r} in {link.filename}, a file that is "
                                    f"missing (looked for {beside}): restore it, or tile "
                                    "the images again with `devolens tile make`", path=path) from None
            raise DevolensError(f"its {name!r} is a link to {link.path!r} in {link.filename}, which does not give "
                                f"it ({checks.clip(' '.join(str(exc).split()))}): {_DAMAGED}", path=path) from None
        if isinstance(link, h5py.SoftLink):
            raise DevolensError(f"its {name!r} is a link to {link.path!r}, which the store does not hold: {_DAMAGED}",
                                path=path) from None
        raise


def check_store(f: h5py.File, path: str | Path, need: Sequence[str] = ()) -> None:
    """Check an open tile store holds what its readers rely on: its format; ``images``, ``labels``, ``class_counts``,
    ``source`` and ``coords`` (those present) as :func:`tile_to_h5` writes them (:data:`_STORE_DATASETS`: dtypes,
    dimensions, one row per tile, tiles and labels of one size); its attributes (those present, and ``need``) of
    the right kind. Metadata only: no pixel is read (a uint16 image holds no NaN).

    Raises
    ------
    DevolensError
        One line naming the store and what is wrong.
    """
    if f.attrs.get("format") != STORE_FORMAT or "images" not in f:
        raise DevolensError("not a devolens tile store (made by `devolens tile`)", path=path)
    data = {}
    for k, (dtype, ndim, what) in _STORE_DATASETS.items():
        if k not in f:
            continue
        d = _linked(f, k, path)
        if not isinstance(d, h5py.Dataset):
            raise DevolensError(f"its {k!r} is a {type(d).__name__.lower()}, not a dataset of {what}: {_DAMAGED}",
                                path=path)
        kind_ok = d.dtype == dtype if isinstance(dtype, np.dtype) else d.dtype.kind in dtype
        if not kind_ok or d.ndim != ndim:
            raise DevolensError(f"its {k!r} is {d.dtype} of shape {d.shape}, where a store holds {what}: {_DAMAGED}"
                                + ("; tile the images again with `devolens tile make`" if k == "images" else ""),
                                path=path)
        data[k] = d
    n, tile = data["images"].shape[0], data["images"].shape[2:]
    for k, d in data.items():
        if d.shape[0] != n:
            raise DevolensError(f"inconsistent store: {k} has {d.shape[0]} rows, images {n}", path=path)
    if "labels" in data and data["labels"].shape[1:] != tile:
        raise DevolensError(f"its labels are {data['labels'].shape[1]}x{data['labels'].shape[2]} tiles but its images "
                            f"{tile[0]}x{tile[1]}: {_DAMAGED}", path=path)
    if "coords" in data and data["coords"].shape[1] != 2:
        raise DevolensError(f"its 'coords' has shape {data['coords'].shape}, not (N, 2): {_DAMAGED}", path=path)
    if "class_counts" in data and data["class_counts"].shape[1] < 1:
        raise DevolensError(f"its 'class_counts' has shape {data['class_counts'].shape}: no class: {_DAMAGED}",
                            path=path)
    for name in _STORE_LISTS:
        if name in f.attrs or name in need:
            store_list(f, name, path)
    for name in _STORE_NUMBERS:
        if name in f.attrs or name in need:
            v = f.attrs.get(name)
            if isinstance(v, np.ndarray) and v.shape == ():
                v = v.item()
            try:
                checks.whole(v, name, 1)  # checks' rule (an int or numpy integer, not a bool); the store's message
            except DevolensError:
                raise DevolensError(f"its {name!r} attribute is {'missing' if v is None else repr(v)}, not a whole "
                                    f"number >= 1: {_DAMAGED}", path=path) from None
    if "n_classes" in f.attrs and "class_counts" in data and data["class_counts"].shape[1] != int(f.attrs["n_classes"]):
        raise DevolensError(f"its 'class_counts' counts {data['class_counts'].shape[1]} classes but its n_classes "
                            f"attribute says {int(f.attrs['n_classes'])}: {_DAMAGED}", path=path)
    if "ignore" in f.attrs:  # the 'ignore' label value (tile --ignore): beyond the class ids, a uint8 value
        v = f.attrs["ignore"]
        v = v.item() if isinstance(v, np.ndarray) and v.shape == () else v
        low = int(f.attrs["n_classes"]) if "n_classes" in f.attrs else 1
        ok = isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and low <= v <= MAX_IGNORE
        if not ok:
            raise DevolensError(f"its 'ignore' attribute is {checks.shown(v)}, not a label value {low}..{MAX_IGNORE} "
                                f"beyond the class ids: {_DAMAGED}", path=path)


def open_h5(path: str | Path, mode: str = "r", **kwargs) -> h5py.File:
    """``h5py.File(path, mode, **kwargs)`` for a user's HDF5 file (a tile store, a well), its failure to open as one
    line (:func:`devolens.predict.tiled.h5_open_error`): another program holding it open (HDF5 locks it), a file
    that is not one, or is truncated or corrupt. (h5py's own: a 30-line ``BlockingIOError`` traceback.)"""
    try:
        return h5py.File(path, mode, **kwargs)
    except FileNotFoundError:
        raise DevolensError("no such HDF5 file", path=Path(path)) from None
    except OSError as exc:
        raise h5_open_error(exc, Path(path)) from None


def open_store(path: str | Path, mode: str = "r", need: Sequence[str] = ()) -> h5py.File:
    """Open a tile store and check it is complete and consistent (:func:`check_store`; ``need``: attributes it must
    have, as ``sources`` for :func:`store_stats`).

    Raises
    ------
    DevolensError
        Missing, truncated or corrupt file, a file that is not a devolens tile store, or one whose datasets or
        attributes are not as :func:`tile_to_h5` writes them.
    """
    path = Path(path)
    if not path.exists():
        raise DevolensError("no such tile store", path=path)
    f = open_h5(path, mode)  # another program holding it open (HDF5 locks it), or truncated or corrupt: one line
    try:
        check_store(f, path, need)
    except DevolensError:
        f.close()
        raise
    except Exception as exc:  # corrupt metadata
        f.close()
        raise DevolensError(f"corrupt tile store: {exc}", path=path) from None
    return f


def pixel_digest(image: np.ndarray) -> str:
    """A digest of an image's pixels as tiled (shape, dtype and values): what a tile store records of each source,
    to refuse appending an image it already holds (under any name or path)."""
    import hashlib

    h = hashlib.blake2b(f"{image.dtype.str}{image.shape}".encode(), digest_size=16)
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


def _no_tiles_error(keep: str, tile: int, stride: int, considered: int, one_class: bool,
                    append: bool) -> DevolensError:
    """Why a tiling kept no tile at all (:func:`tile_to_h5` refuses to write an empty store): the keep rule, the
    tile size or the stride, in the CLI's words. ``one_class``: every label image holds a single class."""
    left = "the store is left as it was" if append else "nothing was written"
    if keep == "mixed" and one_class:
        return DevolensError("no tile kept: the label image(s) hold one class only (all background?), and --keep mixed "
                             "keeps only tiles holding more than one class; check --labels, or keep every tile with "
                             f"--keep all ({left})")
    if keep == "mixed":
        sparse = (f" or a --stride of at most the tile (every {stride} px leaves most pixels out)" if stride > tile
                  else " or a smaller --stride")
        return DevolensError(f"no tile kept: none of the {considered} tile positions ({tile}x{tile} px, every {stride} "
                             "px) holds more than one class, which --keep mixed needs (background and nuclei): use a "
                             f"larger --tile{sparse}, or --keep all ({left})")
    return DevolensError(f"no tile kept: no {tile}x{tile} px tile fits the images at a stride of {stride} px ({left})")


def lock_path(store: str | Path) -> Path:
    """The lock file of a tile store: ``.NAME.lock`` beside it, there while a run writes the store."""
    store = Path(store)
    return store.with_name(f".{store.name}.lock")


@contextlib.contextmanager
def store_lock(store: str | Path, waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lock of a tile store (``fcntl.flock`` on :func:`lock_path`) for a read-modify-replace of it.

    A second run writing the same store waits until the first has renamed its store in place (as long as it
    takes; a run killed outright releases the lock with its process), then reads the store the first wrote:
    two ``devolens tile --append`` runs add both their images. ``waiting(message)`` is called once when the lock
    is held by another run. The holder removes the lock file as it lets go (a waiting run then locks a new one:
    the lock is always on the file the path names); a killed run's file is reused. Where the file system has
    no locks (some network file systems), or the lock name is a link or no plain file (never followed, nor
    removed), the run goes on unlocked with a warning. The lock is :class:`devolens.io.atomic.FileLock`, the output
    folders' lock, waiting where theirs refuses.

    Raises
    ------
    DevolensError
        The lock file cannot be made (the store's folder is not writable, read-only file system).
    """
    store = Path(store)
    if not HAS_LOCKS:  # not POSIX: no locking
        yield
        return
    path = lock_path(store)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_write(exc, store) from None

    def told() -> None:
        if waiting is not None:
            waiting(f"{store}: another run is writing this store; waiting for it to finish")

    def unlocked(exc: OSError) -> None:  # (stacklevel: this, FileLock.take, this generator, contextlib, the caller)
        warnings.warn(f"{store}: cannot lock the store ({exc.strerror}); runs writing it at the same time would lose "
                      "each other's tiles", stacklevel=5, category=DevolensWarning)

    lock = FileLock.take(path, store, waiting=told, unlocked=unlocked)  # waits its turn; says why it cannot lock
    try:
        yield
    finally:
        if lock is not None:
            lock.release()  # the file first, while still held: a run waiting on it tries again with a new one


def tile_to_h5(
    images: Sequence[str | Path],
    out: str | Path,
    labels: Sequence[str | Path] | None = None,
    *,
    tile: int = 160,
    stride: int = 80,
    keep: str = "mixed",
    append: bool = False,
    n_classes: int = 3,
    channels: int = 2,
    chunk: int = 1000,
    compression: str | None = "lzf",
    progress: Callable[[int, int], None] | None = None,
    order: Sequence[int] | None = None,
    waiting: Callable[[str], None] | None = None,
    ignore: int | None = None,
    command: str | None = None,
) -> TilingSummary:
    """Tile images (and label images) into an HDF5 store, atomically.

    Parameters
    ----------
    images : sequence of paths
        (C, H, W) TIFF images.
    out : path
        The store to write (``.h5``). Replaced unless ``append``.
    labels : sequence of paths, optional
        One (H, W) label TIFF per image, same order. Required for ``keep="mixed"``.
    tile, stride : int
        Tile side and step in pixels; the last row and column of tiles lie flush with the bottom and right edges
        (:func:`tile_positions`). An image smaller than the tile is refused (tiles are never padded). A stride larger
        than the tile leaves pixels in no tile (a sparse sample): a warning says so, once the store is written.
    keep : {"mixed", "all"}
        Keep only tiles with more than one class (default) or all of them.
    append : bool
        Add to an existing store (tile size, stride, keep rule, channels and classes must agree: the store's
        attributes describe every tile in it; a store written before the edge tiles gets none). The store
        is copied, extended and renamed back, so an interruption leaves it intact. An image the store
        already holds with the same labels (the same pixels, :func:`pixel_digest`) is refused: its tiles
        would be there twice.
    n_classes, channels : int
        Classes K in the labels and channels C in the images.
    chunk : int
        Samples per HDF5 chunk (the unit a streaming reader fetches); fewer for large tiles, so that a chunk holds
        at most :data:`MAX_CHUNK_BYTES` (:func:`chunk_samples`).
    compression : {"lzf", "gzip", None}
        Chunk compression (``gzip`` at level 1).
    progress : callable, optional
        ``progress(done, total)`` in tile positions (of all images), after each row of tiles; the total is
        each image's as its header says until the image is read.
    order : sequence of int, optional
        Two-channel wells: the Hoechst and Draq7 channel indices of every image (see :func:`read_image`; default:
        as each TIFF's channel names say, else by position).
    waiting : callable, optional
        ``waiting(message)`` when another run is writing the same store: this one waits for it (:func:`store_lock`).
    ignore : int, optional
        The label value that marks unannotated pixels (``n_classes..255``, e.g. 255; nnU-Net's 'ignore' label):
        allowed in the label images beside the class ids and stored as it is, but no class: left out of
        ``class_counts`` (neither background nor a class) and of the ``mixed`` rule, recorded in the store's
        ``ignore`` attribute, from which :class:`devolens.data.h5stream.H5TileStream` gives those pixels the
        target :data:`devolens.data.datasets.IGNORE_INDEX` (left out of the training losses and the scores). An
        ``append`` must give the store's value (or none, for a store without one). Default: none, the store
        as before.
    command : str, optional
        The command line that made this write (``devolens tile`` gives its own:
        :func:`devolens.provenance.command_line`), recorded in the store's ``command`` attribute beside
        ``devolens``, the devolens version, which every write records. Both describe the store's last write (an
        ``append``'s replace the earlier ones; without ``command``, an earlier write's is removed); the store's
        ``history`` keeps every write's (its command line, null without ``command``, and working directory), and
        its ``inputs`` and ``label_inputs`` each source's file (absolute path, bytes, sha256).

    Returns
    -------
    TilingSummary

    Raises
    ------
    DevolensError
        On unreadable inputs, a wrong channel count, an image/label size mismatch, label
        values outside 0..K-1 (other than ``ignore``), mismatched counts of images and labels, an incompatible
        existing store when appending (other tile, stride, keep rule, channels, classes or ignore value), an image
        given twice or already in the appended store, an ``ignore`` that is a class id or past 255, or
        settings that keep no tile at all (the keep rule, ``tile`` and ``stride``: an empty store would
        only fail later, in training). Nothing is written then.
    """
    images = _paths(images, "images")
    out = checks.path(out, "out must be the path of the store to write (.h5)")
    if not images:
        raise DevolensError("no images to tile")
    if labels is not None:
        labels = _paths(labels, "labels")
    if labels is not None and len(labels) == 0:
        labels = None
    tile, stride, n_classes, channels = (checks.whole(v, k, 1) for k, v in (("tile", tile), ("stride", stride),
                                                                            ("n_classes", n_classes),
                                                                            ("channels", channels)))
    checks.progress_fn(progress)
    if labels is not None and len(labels) != len(images):
        raise DevolensError(f"{len(images)} images but {len(labels)} label images (give one per image)")
    if labels is None and keep == "mixed":
        _check_headers(images, channels)  # a file that cannot be tiled says so first, not the labels it lacks
        raise DevolensError("keeping mixed tiles needs label images (--labels), or use --keep all")
    if compression not in ("lzf", "gzip", None):
        raise DevolensError(f"compression must be lzf, gzip or none, got {compression!r}")
    if chunk < 1:
        raise DevolensError(f"chunk must be positive, got {chunk}")
    ignore = check_ignore(ignore, n_classes, labels is not None)
    with store_lock(out, waiting):  # held from reading the store to renaming the new one in place
        summary = _tile_to_h5(images, out, labels, tile=tile, stride=stride, keep=keep, append=append,
                              n_classes=n_classes, channels=channels, chunk=chunk, compression=compression,
                              progress=progress, order=order, ignore=ignore, command=command)
    _gaps_warning(tile, stride, "--stride", "--tile")  # once written (a run refused says why it is refused alone)
    return summary


def _gaps_warning(tile: int, stride: int, stride_name: str = "stride", tile_name: str = "tile") -> None:
    """Warn that tiles farther apart than their side (``stride > tile``) leave pixels in no tile: a sparse sample of
    the images (allowed: a giant well sampled), where the docs promise every pixel in a tile at the default
    stride."""
    if stride <= tile:
        return
    gap = stride - tile
    left = 100 * (1 - (tile / stride) ** 2)
    warnings.warn(f"{stride_name} {stride} is larger than {tile_name} {tile}: the tiles leave {gap} px between "
                  f"them in no tile (about {left:.0f} % of each image's pixels, a sparse sample); a {stride_name} of "
                  f"at most {tile_name} puts every pixel in a tile", stacklevel=3, category=DevolensWarning)


class _Bands:
    """One source of a tiling, read a band of rows at a time where it can be: every TIFF that
    :class:`devolens.predict.tiled.RowReader` reads by bands (uncompressed through its file offsets, either byte
    order; compressed, tiled or OME ones strip by strip or tile by tile; ``(C, H, W)`` or ``(H, W, C)``) is read
    through it, the channels it chooses (:func:`read_image`'s: names, ``order``, the RGB colour rule) converted to
    uint16 as :func:`read_image` converts them (:func:`_uint16_rule`); label TIFFs of integers through its raw rows
    (:meth:`RowReader.raw_rows`, not scaled). Anything else (a PNG, JPEG or BMP; a file the band reader refuses or
    cannot decode, whose error is then :func:`read_image`'s or :func:`read_labels`'s) is read whole by
    :func:`read_image` / :func:`read_labels`. Either way the same pixels, the same :func:`pixel_digest` and the
    same errors."""

    #: bytes read at once in the passes over a band-read file (its digest, its values' range)
    BLOCK = 1 << 22

    def __init__(self, array: np.ndarray | None = None):
        self.array = array
        self.path: Path | None = None
        self.reader: RowReader | None = None  # a band-read file
        self._convert: Callable[[np.ndarray], np.ndarray] | None = None  # raw rows -> what read_image gives
        self._digest: str | None = None
        self.shape: tuple[int, ...] = () if array is None else tuple(int(n) for n in array.shape)
        self.dtype = None if array is None else array.dtype
        self.lo = self.hi = 0

    @staticmethod
    def _reader(path: Path, channels: int | None, order: Sequence[int] | None) -> RowReader | None:
        """The band reader of a TIFF as ``read_image`` (``channels``) or ``read_labels`` (None) would read it;
        None where it refuses the file (its reader whole then says what is wrong) or for other files."""
        from devolens.io.stacks import is_tiff

        try:
            if not path.exists() or not is_tiff(path):
                return None
            with warnings.catch_warnings():  # what needs saying is said as read_image says it
                warnings.simplefilter("ignore")
                src = RowReader(path, channels=channels, order=None if order is None else list(order))
        except Exception:  # noqa: BLE001 - read whole: read_image / read_labels give their own errors
            return None
        if not src.tiff:
            src.close()
            return None
        return src

    def _step(self) -> int:
        """Rows per band of the passes over the file (about :attr:`BLOCK` bytes of raw rows)."""
        c, _, w = self.reader.shape
        return max(1, self.BLOCK // max(1, w * max(c, 1) * self.reader.dtype.itemsize))

    @classmethod
    def image(cls, path: Path, channels: int, order: Sequence[int] | None) -> "_Bands":
        """A well image, as :func:`read_image` reads it."""
        src = cls._reader(path, channels, order)
        if src is not None:
            bands = cls()
            bands.path, bands.reader, bands.dtype = path, src, np.dtype(np.uint16)
            bands.shape = tuple(int(n) for n in src.shape)
            try:
                how, top, low = bands._image_scan()
            except Exception:  # noqa: BLE001 - read whole: read_image's error (or its pixels) as before
                src.close()
            else:
                if src.note:  # (how its channels were chosen: a note)
                    warnings.warn(f"{path}: {src.note}", stacklevel=3, category=ReadNote)
                if how is not None:
                    _conversion_warning(src.dtype, how, path, stacklevel=3)
                _eight_bit_warning(src.dtype, bands.shape[0], top, low, path, stacklevel=3)
                return bands
        arr, stored = _read_image(path, channels, order)
        if arr.size and may_look_eight_bit(stored, arr.shape[0]):  # (before two passes over the whole well)
            _eight_bit_warning(stored, arr.shape[0], int(arr.max()), int(arr.min()), path, stacklevel=3)
        return cls(arr)

    def _image_scan(self) -> tuple[str | None, int, int]:
        """The conversion of the stored values to uint16 (:func:`_uint16_rule`: a float image's largest value
        first) and the :func:`pixel_digest` of the image as converted, channel after channel; returns the words of
        the conversion's warning (None: uint16 already, in either byte order) and the largest and least values as
        converted (for :func:`_eight_bit_warning`; 0, 65535 for an empty image)."""
        import hashlib

        src, step = self.reader, self._step()
        c, h, _ = self.shape
        how = None
        if src.dtype.kind == "u" and src.dtype.itemsize == 2:
            self._convert = lambda a: a.astype(np.uint16, copy=False)  # big-endian: swapped, no warning
        else:
            top = 0.0
            if np.issubdtype(src.dtype, np.floating):
                top = max([_float_top(src.raw_rows(y0, y0 + step)) for y0 in range(0, h, step)] or [0.0])
            self._convert, how = _uint16_rule(src.dtype, top, self.path)
        digest = hashlib.blake2b(f"{np.dtype(np.uint16).str}{self.shape}".encode(), digest_size=16)
        most, least = 0, 65535
        for k in range(c):  # channel after channel, as the whole image's bytes
            for y0 in range(0, h, step):
                band = np.ascontiguousarray(self.rows(y0, y0 + step)[k])
                if band.size:
                    most, least = max(most, int(band.max())), min(least, int(band.min()))
                digest.update(band.data)
                del band  # before the next is read
        self._digest = digest.hexdigest()
        return how, most, least

    @classmethod
    def labels(cls, path: Path, n_classes: int, ignore: int | None = None) -> "_Bands":
        """A label image, as :func:`read_labels` reads it (its values checked: class ids, or ``ignore``); ``lo`` and
        ``hi``: the least and greatest class ids it holds (``ignore`` is none)."""
        src = cls._reader(path, None, None)
        if src is not None:
            if (src.shape[0] == 1 and src.layout == "CYX" and src.dtype.kind in "iu"
                    and len(src.file_shape) in (2, 3)):
                bands = cls()
                bands.path, bands.reader, bands.dtype = path, src, np.dtype(np.uint8)
                bands.shape = tuple(int(n) for n in src.shape[1:])
                bands._convert = lambda a: a[0].astype(np.uint8, copy=False)
                try:
                    ok = bands._label_scan(n_classes, ignore)
                except Exception:  # noqa: BLE001 - read whole: read_labels' error
                    ok = False
                if ok:
                    return bands
            src.close()
        bands = cls(read_labels(path, n_classes, ignore))
        own = bands.array if ignore is None else bands.array[bands.array != ignore]
        if own.size:
            bands.lo, bands.hi = int(own.min()), int(own.max())
        return bands

    def _label_scan(self, n_classes: int, ignore: int | None = None) -> bool:
        """One pass over a label image's rows: the least and greatest of their class ids (``ignore`` is none) and
        their :func:`pixel_digest`; False when a value lies outside ``0..n_classes-1`` and is not ``ignore`` (read
        whole then: :func:`read_labels` refuses it)."""
        import hashlib

        src, step = self.reader, self._step()
        h = self.shape[0]
        digest = hashlib.blake2b(f"{self.dtype.str}{self.shape}".encode(), digest_size=16)
        lo, hi = None, None
        for y0 in range(0, h, step):
            raw = src.raw_rows(y0, y0 + step)
            own = raw
            if raw.size and ignore is not None and int(raw.max()) >= n_classes:  # (a second pass: bands with it)
                own = raw[raw != ignore]
            if own.size:
                b_lo, b_hi = int(own.min()), int(own.max())
                lo, hi = (b_lo, b_hi) if lo is None else (min(lo, b_lo), max(hi, b_hi))
                if lo < 0 or hi >= n_classes:
                    return False
            del own
            digest.update(np.ascontiguousarray(self._convert(raw)).data)
            del raw  # before the next is read
        self._digest = digest.hexdigest()
        self.lo, self.hi = lo or 0, hi or 0
        return True

    def digest(self) -> str:
        return pixel_digest(self.array) if self.array is not None else self._digest

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1``: ``(C, y1-y0, W)`` of an image, ``(y1-y0, W)`` of labels."""
        if self.array is not None:
            return self.array[..., y0:y1, :]
        return np.ascontiguousarray(self._convert(self.reader.raw_rows(y0, y1)))

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None


def _grid_size(path: Path, tile: int, stride: int, edge: bool, channels: int) -> int | None:
    """Tile positions of an image as its header says its size (a TIFF's own series, a PNG's, JPEG's or BMP's size,
    EXIF-turned): the progress bar's total before the image is read; None where the header does not say."""
    try:
        from devolens.io.stacks import is_tiff

        if is_tiff(path):
            with quiet_tifffile(), tifffile.TiffFile(path) as tf:
                from devolens.io.stacks import own_series

                shape = tuple(int(n) for n in tf.series[own_series(tf)].shape)
            if len(shape) == 2:
                h, w = shape
            elif channels_last(shape, channels):
                h, w = shape[0], shape[1]  # (H, W, C), as read_image turns it
            elif len(shape) == 3:
                h, w = shape[1], shape[2]
            else:
                return None
        else:
            from devolens.io.images import header_shape

            h, w = header_shape(path)
    except Exception:  # unreadable header: the image is read (and refused, if so) in turn
        return None
    return int(tile_positions(h, tile, stride, edge).size * tile_positions(w, tile, stride, edge).size)


#: store attributes an ``append`` must match (the settings every tile of a store is cut with), with the option
#: that sets each (in :func:`tile_to_h5` and ``devolens tile``)
_APPEND_SETTINGS = (("stride", "--stride"), ("keep", "--keep"))


def _record_list(f: h5py.File, name: str, n: int | None) -> list:
    """A store's JSON list attribute of its record (``inputs``, ``label_inputs``: one entry a source, ``n`` of them;
    ``history``: ``n`` None), as written; absent (a store written before it was recorded) or not such a list: ``n``
    nulls (``history``: none). Nothing reads these but people and their scripts: never an error."""
    try:
        value = json.loads(_attr_text(f.attrs[name]) or "") if name in f.attrs else None
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, list) or (n is not None and len(value) != n):
        return [] if n is None else [None] * n
    return value


def _input_entry(path: Path, hashed: dict[tuple[int, int], dict]) -> dict:
    """:func:`~devolens.provenance.input_entry` of a source's file, its sha256 taken from ``hashed`` (the entries
    of this write's files so far, by device and inode, added to) when that file was hashed already under this or
    another name: one image labelled twice (two annotators) is two sources of one file, whose hash, a full read of
    a giant well, is made once."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino)
    if key not in hashed:
        hashed[key] = input_entry(path)
    return {**hashed[key], "path": absolute_path(path)}


def _check_append(f: h5py.File, out: Path, *, tile: int, stride: int, keep: str, channels: int, n_classes: int,
                  labelled: bool, ignore: int | None = None) -> None:
    """Refuse to append tiles cut otherwise than the store's (its attributes describe every tile in it)."""
    a = f.attrs
    if int(a["tile"]) != tile or f["images"].shape[1] != channels or int(a["n_classes"]) != n_classes:
        raise DevolensError(
            f"cannot append: store has tile {int(a['tile'])}, {f['images'].shape[1]} channels, "
            f"{int(a['n_classes'])} classes", path=out)
    if ("labels" in f) != labelled:
        raise DevolensError("cannot append: store and inputs differ in having labels", path=out)
    given = {"stride": stride, "keep": keep}
    for key, option in _APPEND_SETTINGS:
        if key in a:
            text = _attr_text(a[key])  # a string attribute as str (fixed-length: bytes)
            held = a[key] if text is None else text
            held = str(held) if key == "keep" else int(held)
            if held != given[key]:
                raise DevolensError(
                    f"cannot append: the store's tiles were cut with {option} {held}, not {given[key]}: one store "
                    f"holds tiles of one setting (its attributes say so); append with {option} {held}, or write "
                    "another store (--out)", path=out)
    held = store_ignore(f)
    if held != ignore:  # its class_counts and its readers take one 'ignore' value for every tile

        def how(v: int | None) -> str:
            return "without --ignore" if v is None else f"with --ignore {v}"

        raise DevolensError(
            f"cannot append: the store was tiled {how(held)}, this run {how(ignore)}: one store marks unannotated "
            f"pixels one way for all its tiles (its ignore attribute); append {how(held)}, or write another store "
            "(--out)", path=out)


def _write_errno(exc: BaseException) -> int | None:
    """The errno of an HDF5 failure for want of space (ENOSPC, EDQUOT, EFBIG: its OSError carries it; a RuntimeError
    only says it in its text); None for any other error."""
    import re

    from devolens.io.atomic import WRITE_ERRNOS

    if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
        return exc.errno
    if isinstance(exc, (OSError, RuntimeError)):
        found = re.search(r"errno = (\d+),", str(exc))
        if found and int(found[1]) in WRITE_ERRNOS:
            return int(found[1])
    return None


def _discard(f: h5py.File, tmp: Path) -> None:
    """Close a store that is not kept (atomic_path removes it). Its file is emptied first: on a full disk HDF5's
    close would flush its caches again, fail in h5py's deallocators (a traceback each) and can crash the process."""
    import sys

    with contextlib.suppress(OSError):
        os.truncate(tmp, 0)
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None  # h5py's "Exception ignored in" of objects closed here
    try:
        f.close()
    except Exception:  # noqa: BLE001 - the error that stopped the run is the one to report
        pass
    finally:
        sys.unraisablehook = hook


def _tile_to_h5(images: list[Path], out: Path, labels: list[Path] | None, *, tile: int, stride: int, keep: str,
                append: bool, n_classes: int, channels: int, chunk: int, compression: str | None,
                progress: Callable[[int, int], None] | None, order: Sequence[int] | None,
                ignore: int | None = None, command: str | None = None) -> TilingSummary:
    """The body of :func:`tile_to_h5`, its arguments checked, under the store's lock."""
    labelled = labels is not None
    edge = True  # tiles flush with the bottom and right edges (stores written before them: the grid alone)
    if append and out.exists():
        with open_store(out, need=("sources", "label_sources", "tile", "n_classes")) as f:
            _check_append(f, out, tile=tile, stride=stride, keep=keep, channels=channels, n_classes=n_classes,
                          labelled=labelled, ignore=ignore)
            if f["images"].chunks is None:  # whole chunks are written (_Writer): a contiguous dataset cannot grow
                raise DevolensError(f"cannot append: its images are not chunked: {_DAMAGED}", path=out)
            chunk = int(f["images"].chunks[0])
            edge = bool(f.attrs.get("edge_tiles", False))
    else:
        chunk = chunk_samples(chunk, tile, channels, labelled, n_classes)
    added: list[int] = []
    considered: list[int] = []
    # the progress bar counts tile positions: of each image as its header says, then as read
    sizes = [_grid_size(p, tile, stride, edge, channels) for p in images] if progress is not None else []
    done = 0
    if progress is not None and any(n is not None for n in sizes):
        progress(0, sum(n for n in sizes if n is not None))  # the bar's total before the first image is read
    # no chunk cache (rdcc_nbytes=0): the writer writes whole chunks, and a write that fails (a full disk) raises
    # there, not later in h5py's deallocators (a traceback each, then a crash in close)
    with atomic_path(out) as tmp:
        if append and out.exists():
            shutil.copyfile(out, tmp)
            f = h5py.File(tmp, "r+", rdcc_nbytes=0)
        else:
            f = h5py.File(tmp, "w", rdcc_nbytes=0)
            f.attrs.update({
                "format": STORE_FORMAT, "version": STORE_VERSION, "tile": tile, "stride": stride,
                "keep": keep, "n_classes": n_classes, "channels": json.dumps(["hoechst", "draq7"][:channels]
                                                                             if channels == 2 else list(range(channels))),
                "chunk": chunk, "sources": "[]", "label_sources": "[]", "edge_tiles": True,
            })
            if ignore is not None:  # (none: no attribute, the store as before)
                f.attrs["ignore"] = ignore
            _create_datasets(f, channels, tile, n_classes, chunk, labelled, compression)
        try:
            sources = store_list(f, "sources", out)
            label_sources = store_list(f, "label_sources", out)
            digests = store_list(f, "source_digests", out) if "source_digests" in f.attrs else []
            digests = digests or [None] * len(sources)
            held = len(digests)  # the store's own sources come first
            # the record of the files and commands that built the store (sources of writes before it: null)
            inputs = _record_list(f, "inputs", held)
            label_inputs = _record_list(f, "label_inputs", held)
            history = _record_list(f, "history", None)
            if not history and "command" in f.attrs:  # a store of before: its last write's command line alone
                history = [{"command": _attr_text(f.attrs["command"]) or str(f.attrs["command"])}]
            hashed: dict[tuple[int, int], dict] = {}  # (a file given twice, an image labelled twice: hashed once)
            writer = None  # made at the first tile: its buffer is a chunk of tiles, after the images' size checks
            one_class = True  # every label image so far holds a single class (why --keep mixed found no tile)
            for i, ipath in enumerate(images):
                # read a band of rows at a time where the file allows (uncompressed TIFF), else whole
                img = _Bands.image(ipath, channels, order)
                lab = None
                if labelled:
                    lab = _Bands.labels(labels[i], n_classes, ignore)
                    if lab.shape != img.shape[1:]:
                        raise DevolensError(
                            f"label image is {lab.shape[0]}x{lab.shape[1]} but its image {ipath.name} is "
                            f"{img.shape[1]}x{img.shape[2]}", path=labels[i])
                # the image with its labels: one image labelled twice (two annotators) is two sources
                digest = img.digest() + ("" if lab is None else "+" + lab.digest())
                if digest in digests:
                    j = digests.index(digest)
                    same = "pixels" if lab is None else "pixels and labels"
                    where = (f"already in the store (the same {same} as its source {sources[j]!r})" if j < held else
                             f"the same {same} as {sources[j]!r}, given before it")
                    raise DevolensError(f"{where}: its tiles would be there twice", path=ipath)
                if img.shape[1] < tile or img.shape[2] < tile:
                    side = min(img.shape[1], img.shape[2])
                    advice = (f"tile it with --tile {side} or less" if side >= MIN_TILE else
                              f"too small to tile (--tile is at least {MIN_TILE})")
                    raise DevolensError(f"image {img.shape[1]}x{img.shape[2]} is smaller than the tile ({tile} px a "
                                        f"side; tiles are never padded): {advice}", path=ipath)
                ys = tile_positions(img.shape[1], tile, stride, edge)
                xs = tile_positions(img.shape[2], tile, stride, edge)
                considered.append(int(ys.size * xs.size))
                if progress is not None:
                    sizes[i] = considered[-1]
                    total = sum(n for n in sizes if n is not None)
                    progress(done, total)
                k = 0
                # one row of tiles at a time: memory is a band of rows (or the image, read whole) and a chunk of tiles
                for parts in _tile_rows(img.rows, None if lab is None else lab.rows, ys, xs, tile, keep, n_classes,
                                        ignore):
                    n_row = len(parts["images"])
                    parts["source"] = np.full(n_row, len(sources), np.int32)
                    if writer is None:
                        writer = _Writer(f, chunk, labelled)
                    writer.add(parts)
                    k += n_row
                    if progress is not None:
                        done += xs.size
                        progress(done, total)
                one_class &= lab is not None and k == 0 and lab.lo == lab.hi
                img.close()
                if lab is not None:
                    lab.close()
                del img, lab
                stop_if_signalled()  # a signal whose exception was lost (see _Writer._flush)
                sources.append(ipath.name)
                digests.append(digest)
                label_sources.append(Path(labels[i]).name if labelled else "")
                # hashed in 256 KiB blocks into one buffer: one more read of each file, as cheap as a tiling pass
                inputs.append(_input_entry(ipath, hashed))
                label_inputs.append(_input_entry(labels[i], hashed) if labelled else None)
                added.append(k)
            if not sum(added):
                raise _no_tiles_error(keep, tile, stride, sum(considered), one_class, append and out.exists())
            n = writer.close()
            f.attrs["sources"] = json.dumps(sources)
            f.attrs["label_sources"] = json.dumps(label_sources)
            f.attrs["source_digests"] = json.dumps(digests)
            f.attrs["inputs"] = json.dumps(inputs)
            f.attrs["label_inputs"] = json.dumps(label_inputs)
            history.append({"command": command, "cwd": absolute_path(os.getcwd()), "devolens": version(),
                            "environment": environment(), "sources": sources[held:]})
            f.attrs["history"] = json.dumps(history)
            # what wrote the store (its format's version is "version"): this write's devolens and command line
            f.attrs["devolens"] = version()
            if command is not None:
                f.attrs["command"] = command
            elif "command" in f.attrs:  # an earlier write's command line would not describe this one
                del f.attrs["command"]
            f.flush()  # HDF5 holds chunks and metadata in its caches: a full disk shows here, not in close
            f.close()
        except BaseException as exc:
            _discard(f, tmp)
            number = _write_errno(exc)
            if number is not None:  # one line, not HDF5's error stack
                raise cannot_write_errno(number, out) from None
            raise
    return TilingSummary(path=out, n_tiles=n, added=added, considered=considered, sources=sources)


def store_stats(path: str | Path) -> pd.DataFrame:
    """Class frequencies and class weights of a labelled tile store.

    Parameters
    ----------
    path : path
        A store written by :func:`tile_to_h5`.

    Returns
    -------
    DataFrame
        One row per class: ``class`` (index), ``name``, ``pixels``, ``frequency`` (fraction
        of labelled pixels), ``tiles`` (tiles holding the class) and ``weight`` (balanced
        class weight ``total / (K * pixels)``, normalised to mean 1 over present classes;
        use it in a weighted cross-entropy). ``df.attrs`` holds ``n_tiles``, ``sources``, ``ignore`` (the store's
        'ignore' label value, None for none) and ``ignored`` (the tiles' pixels of that value, which no class
        counts: 0 without one).

    Raises
    ------
    DevolensError
        Not a tile store, a store without labels, or one without tiles (older versions wrote them).
    """
    names = ["background", "live", "dead"]
    with open_store(path, need=("sources",)) as f:
        if "class_counts" not in f:
            raise DevolensError("store has no labels, so no class statistics", path=path)
        counts = np.zeros(f["class_counts"].shape[1], np.int64)
        tiles = np.zeros_like(counts)
        cc = f["class_counts"]
        step = max(1, int(cc.chunks[0]) if cc.chunks else 100000)
        for s in range(0, cc.shape[0], step):
            block = np.asarray(cc[s:s + step], np.int64)
            if (block < 0).any():  # counts of pixels: a negative one made negative frequencies and weights
                i = s + int(np.flatnonzero((block < 0).any(axis=1))[0])
                raise DevolensError(f"its class_counts of tile {i} are negative ({block[i - s].tolist()}): "
                                    f"{_DAMAGED}", path=path)
            counts += block.sum(axis=0)
            tiles += (block > 0).sum(axis=0)
        n_tiles = int(cc.shape[0])
        sources = store_list(f, "sources", path)
        ignore = store_ignore(f)
        side = int(f["images"].shape[-1])
    if n_tiles == 0:  # written before empty stores were refused: all-zero weights would pass for statistics
        raise DevolensError(f"the store holds no tiles (of {len(sources)} image(s)), so no class statistics: tile the "
                            "images again with a larger --tile, a smaller --stride or --keep all", path=path)
    k = counts.size
    total = counts.sum()
    freq = counts / total if total else np.zeros(k)
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, total / (k * np.maximum(counts, 1)), 0.0)
    present = w > 0
    if present.any():
        w = w / w[present].mean()
    df = pd.DataFrame({
        "class": np.arange(k),
        "name": [names[i] if i < len(names) and k == 3 else str(i) for i in range(k)],
        "pixels": counts,
        "frequency": freq,
        "tiles": tiles,
        "weight": w,
    })
    df.attrs["n_tiles"] = n_tiles
    df.attrs["sources"] = sources
    df.attrs["ignore"] = ignore
    df.attrs["ignored"] = int(n_tiles * side * side - total) if ignore is not None else 0
    return df
