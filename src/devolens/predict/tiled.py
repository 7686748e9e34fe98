"""Tiled (sliding-window) inference over images of any size, in bounded memory.

The image is read one row of windows at a time (a band of ``window`` rows), windows are
run through the model in batches, and their outputs are blended with smooth weights into a
band accumulator. Rows that no later window touches are normalised and handed to a sink
(e.g. a label TIFF written row band by row band), then dropped. Memory therefore grows with
the image *width* times the window height, not with the image area; reading and writing
go through plain file offsets (uncompressed TIFF), the strips or tiles a band crosses (compressed
or tiled TIFF, OME pyramids) or HDF5 slices, so images larger than memory work.

Blending weights (per window, separable ``w(y) * w(x)``): along a side that lies inside the
image, the weight is 0 for the first ``margin`` pixels (where the network lacks context),
then rises as a half cosine over ``overlap - 2 * margin`` pixels to 1. Along a side on the
image border the weight is 1. Where two windows overlap by exactly ``overlap`` pixels the
two ramps sum to 1, so the result has no seams; in general the accumulated weights are
divided out, so a model that returns its input reproduces the input exactly.

Examples
--------
>>> import numpy as np
>>> img = np.random.default_rng(0).random((2, 300, 500)).astype(np.float32)
>>> out = predict_tiled_array(img, lambda b: b, window=128, overlap=32, n_out=2)
>>> bool(np.allclose(out, img))
True
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
import tifffile

from devolens import checks
from devolens.errors import DevolensError, DevolensWarning, option
from devolens.io.wells import (
    GREEN_SIGNAL,
    SAVE_WELL,
    STORE_FORMAT,
    channels_aside,
    channels_last,
    channels_option,
    colour_tiff_page,
    read_colour_image,
    tiff_channel_names,
    well_channels,
)

__all__ = [
    "window_starts",
    "ramp_weights",
    "predict_tiled",
    "predict_tiled_array",
    "RowReader",
    "open_rows",
    "colour_tiff_order",
    "TiffRowWriter",
]


class Source(Protocol):
    """Anything with ``shape`` (C, H, W) whose ``[:, y0:y1, :]`` slice gives a numpy array."""

    shape: tuple[int, ...]

    def __getitem__(self, key): ...


# ----------------------------------------------------------------------------------------
# geometry and weights


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """Start offsets of windows along one axis: step ``window - overlap``, the last window
    aligned to the end. An axis shorter than the window gets one window at 0 (padded)."""
    if length <= window:
        return [0]
    step = window - overlap
    if step < 1:
        raise DevolensError(f"overlap ({overlap}) must be smaller than the window ({window})")
    starts = list(range(0, length - window, step))
    starts.append(length - window)
    return starts


def ramp_weights(n: int, overlap: int, margin: int, lo_border: bool, hi_border: bool) -> np.ndarray:
    """1-D blending weights of a window of ``n`` pixels.

    Parameters
    ----------
    n : int
        Window length (pixels).
    overlap : int
        Overlap with the neighbouring windows (pixels).
    margin : int
        Pixels at an inner side that get weight 0 (no context there).
    lo_border, hi_border : bool
        Whether the start / end of the window is the image border (weight 1 up to it).

    Returns
    -------
    ndarray, float32, shape (n,)
    """
    d = np.arange(n, dtype=np.float64) + 0.5
    w = np.ones(n, dtype=np.float64)
    ramp = max(overlap - 2 * margin, 1)

    def side(dist):
        r = np.clip((dist - margin) / ramp, 0.0, 1.0)
        return 0.5 - 0.5 * np.cos(np.pi * r)

    if not lo_border:
        w *= side(d)
    if not hi_border:
        w *= side(n - d)
    return w.astype(np.float32)


# ----------------------------------------------------------------------------------------
# reading and writing rows


def _own_series_array(path: Path) -> np.ndarray:
    """The whole array of a TIFF's own series (:func:`devolens.io.stacks.own_series`), as ``tifffile.imread`` reads
    its first: in a multi-file OME set (one file per stage position, each listing them all), this file's position,
    not the first position's, read from the other file."""
    from devolens.io.stacks import own_series

    with tifffile.TiffFile(path) as tf:
        return tf.asarray(series=own_series(tf))


class _TiffSegments:
    """Row bands of a compressed or tiled TIFF series (its level 0: a pyramid's full resolution), decoded segment by
    segment: only the strips or tiles that a band crosses are read and decoded (any compression tifffile decodes;
    strips or tiles; channels as pages, as separate planes or as samples per pixel), so that memory grows with the
    image width, not its area. ``self[key]`` indexes as the whole array would (``[:, y0:y1, :]`` with Y the second
    axis, ``[y0:y1]`` with Y the first), for :class:`RowReader`. The last band's segments are kept, so that the
    overlapping bands of :func:`predict_tiled` decode each segment once.
    """

    def __init__(self, tf, series, shape: tuple[int, ...], yaxis: int):
        self._tf = tf
        self.shape = shape
        self.dtype = np.dtype(series.dtype)
        self.yaxis = yaxis
        self._pages = list(series.pages)
        key = series.keyframe
        self._key = key
        sp, _, h, w, sc = (int(s) for s in key.shaped)
        self._sp, self._h, self._w, self._sc = sp, h, w, sc
        if key.is_tiled:
            self._seg_rows, self._ncols = int(key.tilelength), -(-w // int(key.tilewidth))
        else:
            self._seg_rows, self._ncols = max(1, min(int(key.rowsperstrip or h), h)), 1
        self._nrows = -(-h // self._seg_rows)  # segment rows (tile rows or strips) per plane
        self._cache: dict[tuple[int, int, int], np.ndarray] = {}

    @classmethod
    def open(cls, path: Path, shape: tuple[int, ...], yaxis: int) -> "_TiffSegments | None":
        """The segment reader of ``path``'s own series (its first; in a multi-file OME set, this file's position:
        :func:`devolens.io.stacks.own_series`), read as an array of ``shape`` (the series' own, or a grey
        image's ``(1, H, W)``), Y its axis ``yaxis``; None where its layout is not one this reader assembles
        (volumes, pages of different shapes, a series whose shape does not follow from its pages): those are read
        whole, as before."""
        tf = tifffile.TiffFile(path)
        try:
            from devolens.io.stacks import own_series

            series = tf.series[own_series(tf)]  # its own, in a multi-file OME set (one file per position)
            key = series.keyframe
            pages = list(series.pages)
            shape = tuple(int(s) for s in shape)
            sp, depth, h, w, sc = (int(s) for s in key.shaped)
            rows = int(key.tilelength) if key.is_tiled else max(1, min(int(key.rowsperstrip or h), h))
            cols = -(-w // int(key.tilewidth)) if key.is_tiled else 1
            ok = (depth == 1 and len(shape) == 3 and shape[yaxis] == h and (not key.is_tiled or key.tiledepth == 1)
                  and all(p is not None and getattr(p, "keyframe", p).shaped == key.shaped
                          and len(p.dataoffsets) == sp * -(-h // rows) * cols for p in pages)
                  and math.prod(shape[:yaxis]) == len(pages) * sp and math.prod(shape[yaxis + 1:]) == w * sc)
        except Exception:  # noqa: BLE001 - anything unexpected: read whole, as before
            ok = False
        if not ok:
            tf.close()
            return None
        return cls(tf, series, shape, yaxis)

    def close(self) -> None:
        self._cache.clear()
        if self._tf is not None:
            self._tf.close()
            self._tf = None

    def _segment_row(self, page: int, plane: int, row: int) -> np.ndarray:
        """Segment row ``row`` (a tile row or a strip) of plane ``plane`` of page ``page``: (rows, W, Sc)."""
        key = (page, plane, row)
        if key in self._cache:
            return self._cache[key]
        p = self._pages[page]
        kf = getattr(p, "keyframe", p)
        r0 = row * self._seg_rows
        n = min(self._seg_rows, self._h - r0)
        out = np.empty((n, self._w, self._sc), self.dtype)
        first = (plane * self._nrows + row) * self._ncols
        index = list(range(first, first + self._ncols))
        offsets = [p.dataoffsets[i] for i in index]
        counts = [p.databytecounts[i] for i in index]
        decode = kf.decode
        fh = self._tf.filehandle
        for data, i in fh.read_segments(offsets, counts, indices=index, sort=True):
            seg, (_, _, y, x, _), _ = decode(data, i, jpegtables=kf.jpegtables)
            x = int(x)
            if seg is None:  # an empty segment (no data written): tifffile's fill value
                xe = min(self._w, x + (self._w if self._ncols == 1 else int(kf.tilewidth)))
                out[:, x:xe] = kf.nodata
                continue
            seg = seg[0]  # (rows, width, samples)
            m, k = min(n, seg.shape[0]), min(self._w - x, seg.shape[1])
            out[:m, x:x + k] = seg[:m, :k]
        self._cache[key] = out
        return out

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1`` as the series holds them (its shape, with ``y1 - y0`` along Y)."""
        y0, y1 = max(0, y0), min(self._h, y1)
        n = max(0, y1 - y0)
        full = np.empty((len(self._pages), self._sp, n, self._w, self._sc), self.dtype)
        want = set()
        if n:
            first, last = y0 // self._seg_rows, (y1 - 1) // self._seg_rows
            for row in range(first, last + 1):
                r0 = row * self._seg_rows
                a, b = max(y0, r0), min(y1, r0 + self._seg_rows)
                for page in range(len(self._pages)):
                    for plane in range(self._sp):
                        want.add((page, plane, row))
                        full[page, plane, a - y0:b - y0] = self._segment_row(page, plane, row)[a - r0:b - r0]
        for key in [k for k in self._cache if k not in want]:  # keep only the segments of this band
            del self._cache[key]
        shape = list(self.shape)
        shape[self.yaxis] = n
        return full.reshape(shape)

    def __getitem__(self, key) -> np.ndarray:
        if self.yaxis == 0 and isinstance(key, slice):
            y = key
        elif self.yaxis == 1 and isinstance(key, tuple) and len(key) == 3 and isinstance(key[1], slice):
            y = key[1]
        else:
            raise IndexError("only row bands of a TIFF read by segments")
        y0, y1, _ = y.indices(self._h)
        return self.rows(y0, y1)


#: :meth:`RowReader.colour_order`'s answers, by file (path, size, modification time)
_COLOUR_CHECKED: dict[tuple, list[int]] = {}


#: the darkest value of a 16-bit well whose every value is at most 255 that makes it look like an 8-bit export
#: (:meth:`RowReader._eight_bit`): an export for viewing maps the background to (nearly) 0, a camera keeps its offset
EIGHT_BIT_DARK = 5


def looks_eight_bit(stored: np.dtype, channels: int, top: int, low: int) -> bool:
    """The rule of :meth:`RowReader._eight_bit` (also ``tile make``'s): two channels stored as uint16 (either byte
    order) whose largest value ``top`` is 1..255 and darkest ``low`` at most :data:`EIGHT_BIT_DARK`."""
    return may_look_eight_bit(stored, channels) and 0 < top <= 255 and low <= EIGHT_BIT_DARK


def may_look_eight_bit(stored: np.dtype, channels: int) -> bool:
    """The first test of :func:`looks_eight_bit`, before any pixel is read: two channels stored as uint16."""
    stored = np.dtype(stored)
    return channels == 2 and stored.kind == "u" and stored.itemsize == 2


#: what ``segment livedead`` (and :meth:`devolens.predict.livedead.LiveDeadPredictor.predict`) adds to
#: :func:`eight_bit_question`: the model reads counts, so the well is read as it is, and with what effect
EIGHT_BIT_LIVEDEAD = ("The livedead model reads a 16-bit camera's counts: an 8-bit export shifts its live/dead calls "
                      "(nuclei this dim are missed or called dead); segment the microscope's own 16-bit {what}")


#: why a well that is not 16-bit counts is read with a warning, by ``segment livedead`` (:meth:`RowReader._convert`)
#: and :meth:`devolens.predict.livedead.LiveDeadPredictor.predict` alike (an 8-bit array's too, where the library
#: said only "scaled x257")
LIVEDEAD_CONVERTED = ("the livedead model reads 16-bit camera counts: an 8-bit or contrast-stretched export shifts "
                      "its live/dead calls, mostly towards dead; segment the microscope's own 16-bit file where there "
                      "is one")


def eight_bit_question(path, top: int, low: int) -> str:
    """The first words of the warning on a well that :func:`looks_eight_bit` (each command adds what it does)."""
    return (f"{path}: every pixel of this 16-bit image is at most 255 (its largest {top}, its darkest {low}): "
            "8-bit data saved as 16-bit? (Fiji's Image > Type > 16-bit keeps the 8-bit values).")


class RowReader:
    """Read row bands of a (C, H, W) image from a TIFF (or HDF5) without holding the image in memory: an
    uncompressed TIFF through file offsets, a compressed or tiled one (OME-TIFF, a pyramid's full resolution, any
    compression tifffile decodes) strip by strip or tile by tile (:class:`_TiffSegments`). A PNG, JPEG or BMP is
    read whole: for two channels, Hoechst from the blue of an RGB image and Draq7 from its red
    (:func:`devolens.data.tiling.read_colour_image`); an RGB TIFF without channel names likewise, band by band.
    An HDF5 file: its dataset ``dataset``, else the one 3-D dataset named ``image``, ``images`` or ``data``, else its
    only 3-D dataset (several: refused with their list); a devolens tile store (``devolens tile make``) is refused;
    a compressed one is read through a chunk cache that holds the chunks a band of rows spans (:func:`_h5_band_cache`).

    ``reader[:, y0:y1, :]`` (or ``reader.rows(y0, y1)``) returns a (C, y1-y0, W) array.
    For a two-channel well TIFF, ``order`` (the Hoechst and Draq7 channel indices) or else the file's channel
    names (OME-TIFF, ImageJ: :func:`devolens.data.tiling.well_channel_order`) choose and order the channels read
    (``self.order``, with ``self.note`` saying so); otherwise they are read by position.
    Only the full channel and column ranges are supported. Non-uint16 data is converted
    band by band (see :func:`devolens.data.tiling.read_image` for the rule), with one
    warning.
    """

    def __init__(self, path: str | Path, channels: int | None = 2, dataset: str | None = None,
                 order: list[int] | None = None):
        self.path = Path(path)
        self._h5 = None
        self._array = None
        self._warned = False
        self._stats: tuple[float, bool] | None = None  # (max, whole) of a float or wide integer image, read once
        self._channels = channels
        self._order_given = order  # for a PNG, JPEG or BMP: its colours chosen (read_colour_image reads them all)
        self._eight: bool | None = None  # a uint16 well that looks like an 8-bit export (:meth:`_eight_bit`), decided once
        #: the channels read, in this order (None: all, by position); ``note`` says why when not simply the first two
        self.order, self.note = None, None
        #: True for a TIFF, False for a PNG, JPEG or BMP (read by its colours), None for an HDF5 file
        self.tiff: bool | None = None
        self._file_shape: tuple | None = None  # a TIFF's shape as the file holds it, for the errors
        self._segments: _TiffSegments | None = None  # a compressed or tiled TIFF, read band by band
        self._photometric = self._compression = None  # a TIFF's first page's tags
        #: a TIFF of colour pixels, samples interleaved (:func:`devolens.data.tiling.colour_tiff_page`): the colour
        #: rule applies; a planar (3|4, H, W) one is a stack of channels
        self._colour_tiff = False
        #: a one-line note on lossy (JPEG) compression of the input, or None
        self.lossy: str | None = None
        #: a one-line note on a PNG or JPEG turned as its EXIF orientation tag says (read_image turns it), or None
        self.turned: str | None = None
        if not self.path.exists():
            raise DevolensError("no such file", path=self.path)
        if self.path.suffix.lower() in (".h5", ".hdf5", ".hdf"):
            self._open_h5(dataset)
        else:
            self._open_tiff()
        try:
            self._setup(channels, order)
        except BaseException:
            self.close()
            raise

    def _setup(self, channels: int | None, order: list[int] | None) -> None:
        """Shape, channels and their order of the opened file (the rest of ``__init__``)."""
        if self.layout == "YXC":
            c, h, w = self._raw_shape[2], self._raw_shape[0], self._raw_shape[1]
        else:
            c, h, w = self._raw_shape
        self._raw_c = int(c)  # the channels stored (``c`` below: those read)
        file_shape = self._file_shape or self._raw_shape  # as the file holds it, for the messages
        self.shape = (int(c), int(h), int(w))
        if channels == 2:  # a PNG, JPEG or BMP: its colours say which is which; a TIFF: its names, or ``order``
            if order is None and self.is_rgb_tiff():  # an RGB TIFF without names: as a PNG, by its colours
                self.order, self.note = self.colour_order(), rgb_tiff_note()
            else:
                self.order, self.note = well_channels(self.path, int(c), order, tiff=self.tiff,
                                                      shape=file_shape)
            if self.order is not None:
                c = len(self.order)
        self.shape = (int(c), int(h), int(w))
        if channels is not None and self.shape[0] != channels:
            raise DevolensError(
                f"expected {channels} channels (Hoechst, Draq7) in a (C, H, W) image, got shape {file_shape}",
                path=self.path)
        if channels == 2:  # a well: refused below 2 x 2 pixels, as segment nuclei refuses such an image
            from devolens.io.images import check_image_size

            check_image_size(int(h), int(w), self.path)

    def _open_tiff(self) -> None:
        from devolens.io.stacks import is_tiff

        self.tiff = bool(is_tiff(self.path))
        if not self.tiff:  # a PNG, JPEG or BMP (by its content): read whole, its colours as channels
            # a microscope's own file (.czi, .nd2...) or a HEIC photo: how to save it as one that is read
            refuse_other_format(self.path, "a well image (a TIFF, PNG, JPEG or BMP file, or an HDF5 dataset)")
            # (2, H, W) for a well, (C, H, W) with its colours chosen (``order``); else (H, W) or (H, W, C)
            from devolens.io.images import ExifTurns

            with ExifTurns() as turns:  # (a photo's orientation tag: the outputs follow the turned image)
                arr = read_colour_image(self.path, self._channels, self._order_given)
            if turns.get(self.path) is not None:
                from devolens.io.images import exif_turned_words

                self.turned = exif_turned_words([("the image", turns.get(self.path))], WELL_TURN_FOLLOW)
            with open(self.path, "rb") as fh:
                if fh.read(3) == b"\xff\xd8\xff":
                    self.lossy = JPEG_NOTE.format(what="a JPEG file")
            if arr.ndim == 2:
                arr = arr[None]
            elif self._channels != 2:
                arr = np.moveaxis(arr, -1, 0)
            self._array = np.ascontiguousarray(arr)
            self.layout, self._raw_shape, self.dtype, self._offset = "CYX", self._array.shape, arr.dtype, None
            return
        # a damaged file (its chain of pages broken, its pixel data past its end) is said so by open_tiff, as segment
        # nuclei says it: a two-channel well cut short before its second page was read as a grey image of one page
        from devolens.io.stacks import open_tiff, quiet_tifffile

        try:
            with open_tiff(self.path) as tf:
                from devolens.io.stacks import own_series

                check_one_image(tf, self.path)  # several wells or positions in one file: refused, not the first read
                series = tf.series[own_series(tf)]  # its own, in a multi-file OME set (one file per position)
                shape = tuple(int(s) for s in series.shape)
                dtype = np.dtype(series.dtype)
                offset = series.dataoffset
                page = series.keyframe  # the series' own first page, whose layout its pages share
                byteorder = tf.byteorder
                contiguous = offset is not None and page.compression == 1 and not page.is_tiled
                self._photometric, self._compression = int(page.photometric), int(page.compression)
                self._colour_tiff = colour_tiff_page(page)
                yaxis = series.axes.find("Y")
                axes = str(series.axes)
        except DevolensError:
            raise
        except Exception as exc:
            raise DevolensError(f"cannot read as TIFF ({exc.__class__.__name__}: {exc})", path=self.path) from None
        self._file_shape = shape  # a grey (H, W) image is read as (1, H, W)
        if len(shape) == 2:
            shape = (1,) + shape
            yaxis = yaxis + 1 if yaxis >= 0 else yaxis
        if len(shape) != 3:
            raise DevolensError(_not_one_plane(shape, axes), path=self.path)
        self.layout = "YXC" if channels_last(shape) else "CYX"
        self._raw_shape = shape
        self.dtype = dtype
        if contiguous:
            self._offset = int(offset)
            self._dtype_disk = dtype.newbyteorder(byteorder)
            need = self._offset + int(np.prod(shape)) * dtype.itemsize
            have = self.path.stat().st_size
            if have < need:  # read band by band from its offset: a cut file would fail part-way, with a traceback
                raise DevolensError(f"the file is cut short ({have:,} of the {need:,} bytes its header promises: "
                                    "an interrupted copy or save?)", path=self.path)
        else:  # compressed or tiled TIFF: decoded band by band, strip by strip or tile by tile
            self._offset = None
            if self._compression in JPEG_COMPRESSIONS:
                self.lossy = JPEG_NOTE.format(what="JPEG-compressed TIFF")
            try:
                with quiet_tifffile():
                    if (self.layout, yaxis) in (("CYX", 1), ("YXC", 0)):
                        self._segments = _TiffSegments.open(self.path, shape, yaxis)
                    if self._segments is not None:
                        self._segments.rows(0, 1)  # a codec that is missing or fails: said now, not part-way
                        self._array = self._segments
                    else:  # a layout the segment reader does not assemble: loaded whole (memory ~ image size)
                        self._array = _own_series_array(self.path).reshape(shape)
            except DevolensError:
                raise
            except Exception as exc:
                self.close()
                raise DevolensError(f"cannot decode its pixels ({exc.__class__.__name__}: {exc})",
                                    path=self.path) from None

    def _open_h5(self, dataset: str | None) -> None:
        import h5py

        self.tiff = None
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise h5_open_error(exc, self.path) from None
        try:
            ds = _h5_image(f, dataset, self.path)
            cache = _h5_band_cache(ds, 0 if channels_last(tuple(int(s) for s in ds.shape)) else 1, self.path)
            if cache is not None:  # opened again with a chunk cache that holds the chunks of a band of rows
                name = ds.name
                f.close()
                f = h5py.File(self.path, "r", rdcc_nbytes=cache[0], rdcc_nslots=cache[1])
                ds = f[name]
        except BaseException:
            f.close()
            raise
        self._h5 = f
        self._raw_shape = tuple(int(s) for s in ds.shape)
        self.layout = "YXC" if channels_last(self._raw_shape) else "CYX"
        self.dtype = np.dtype(ds.dtype)
        self._ds = ds
        self._offset = None

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
        if self._segments is not None:
            self._segments.close()
            self._segments = None
            self._array = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def colour_tiff(self) -> bool:
        """A TIFF of colour pixels, samples interleaved (:func:`devolens.io.wells.colour_tiff_page`): the colour rule
        applies to it; a planar (3|4, H, W) one is a stack of channels (False, as for any other file)."""
        return bool(self._colour_tiff)

    @property
    def file_shape(self) -> tuple:
        """The image's shape as the file holds it (a TIFF's own series; an HDF5 dataset's; a PNG's as read)."""
        return tuple(self._file_shape or self._raw_shape)

    def is_rgb_tiff(self) -> bool:
        """An RGB (or YCbCr) TIFF of 3 or 4 interleaved samples per pixel (:func:`devolens.io.wells.colour_tiff_page`;
        a planar (3|4, H, W) one is a stack of channels) whose channels are not named (OME, ImageJ)."""
        if not self.tiff or not self._colour_tiff or self._raw_c not in (3, 4):
            return False
        return tiff_channel_names(self.path) is None

    def colour_order(self) -> list[int]:
        """``[2, 0]`` (Hoechst blue, Draq7 red) for an RGB TIFF, checked band by band as
        :func:`devolens.data.tiling.read_colour_image` checks a PNG: refused when grey (red, green and blue equal)
        or when its green holds signal (its 99th percentile above ``GREEN_SIGNAL`` of red's or blue's). Checked
        once per file as it is (a second reader of it, as ``segment livedead``'s check and its prediction open,
        does not read the image through again)."""
        st = self.path.stat()
        key = (str(self.path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in _COLOUR_CHECKED:
            _COLOUR_CHECKED[key] = self._colour_order()
            while len(_COLOUR_CHECKED) > 16:
                _COLOUR_CHECKED.pop(next(iter(_COLOUR_CHECKED)))
        return list(_COLOUR_CHECKED[key])

    def _colour_order(self) -> list[int]:
        h = self.shape[1]
        grey = True
        exact = self.dtype.kind == "u" and self.dtype.itemsize <= 2
        hists = [np.zeros(65536 if self.dtype.itemsize == 2 else 256, np.int64) for _ in range(3)]
        planes: list[list[np.ndarray]] = [[], [], []]
        for y0 in range(0, h, 256):
            band = self.raw_rows(y0, y0 + 256)[:3]
            grey = grey and np.array_equal(band[0], band[1]) and np.array_equal(band[1], band[2])
            for k in range(3):
                if exact:
                    hists[k] += np.bincount(band[k].ravel(), minlength=hists[k].size)
                else:
                    planes[k].append(band[k].ravel())
        if grey:
            raise DevolensError(f"a grey image (red, green and blue equal) holds one channel; a well needs two "
                                f"(Hoechst, Draq7): {SAVE_WELL}", path=self.path)
        if exact:
            top = [_hist_percentile(hh, 99) for hh in hists]
        else:
            top = [float(np.percentile(np.concatenate(pp), 99)) for pp in planes]
        if top[1] > GREEN_SIGNAL * max(top[0], top[2]):
            raise DevolensError("an RGB TIFF with signal in green: which colour holds Hoechst and which Draq7 cannot "
                                "be told (read by default: Hoechst in blue, Draq7 in red, green empty); choose them "
                                f"with {channels_option()} (0-based: red 0, green 1, blue 2; Hoechst in blue and Draq7 "
                                f"in red is {channels_option('2,0')}{channels_aside()})", path=self.path)
        return [2, 0]

    def __getitem__(self, key) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 3 and key[0] == slice(None) and key[2] == slice(None)
                and isinstance(key[1], slice) and key[1].step in (None, 1)):
            raise IndexError("RowReader supports only [:, y0:y1, :]")
        y0, y1, _ = key[1].indices(self.shape[1])
        return self.rows(y0, y1)

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1`` of every channel as a (C, y1-y0, W) uint16 array."""
        return self.as_uint16(self.raw_rows(y0, y1))

    def as_uint16(self, band: np.ndarray) -> np.ndarray:
        """A band of :meth:`raw_rows` as :meth:`rows` gives it: uint16 (uint8 scaled x257, floats as the file's
        range says; a 16-bit well that looks like an 8-bit export, :meth:`_eight_bit`, read as it is, with a
        warning)."""
        if not (band.dtype.kind == "u" and band.dtype.itemsize == 2):  # big-endian uint16 (Fiji's TIFFs) is no
            band = self._convert(band)  # conversion: astype below swaps its bytes without a warning
        else:
            self._eight_bit()
        return np.ascontiguousarray(band.astype(np.uint16, copy=False))

    def _eight_bit(self) -> bool:
        """Whether this 16-bit well (two channels read) looks like 8-bit data saved as 16-bit (Fiji's Image > Type >
        16-bit keeps the 8-bit values): every value at most 255 and its dark end at 0-5, as an export for viewing
        maps the background (a camera's counts keep its dark offset, ~100-500, even in an empty well). Such a well is
        read as it is, with a warning, and not scaled as an 8-bit file is (x257): an export stretched for viewing
        reads worse scaled (0 live / 80 dead of 55 / 25 on a walkthrough's well, 55 / 25 as it is), one divided down
        from the counts better (55 / 25 scaled, 33 / 24 as it is); and a dim well whose every count is at most 255
        is no export at all (an empty control well scaled x257 read 11 'dead' nuclei). Decided once, before the
        first band is converted: a pass over the rows from the top that stops at the first value above 255, which a
        camera's counts give in the first band; only an image that is 8-bit throughout is read through."""
        if self._eight is None:
            top, low = 0, 65535
            if self._channels == 2 and self.dtype.kind == "u" and self.dtype.itemsize == 2:
                for band in self._bands():
                    if band.size:
                        top, low = max(top, int(band.max())), min(low, int(band.min()))
                    if top > 255:
                        break
            self._eight = looks_eight_bit(self.dtype, self._channels, top, low)
            if self._eight:
                warnings.warn(f"{eight_bit_question(self.path, top, low)} {EIGHT_BIT_LIVEDEAD.format(what='file')}",
                              stacklevel=6, category=DevolensWarning)
        return self._eight

    def raw_rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1`` of the chosen channels as stored, ``(C, y1-y0, W)``: the file's dtype (either byte order),
        not converted (:meth:`rows` converts to uint16: uint8 scaled x257); label images are read through it."""
        c, h, w = self.shape
        y0, y1 = max(0, y0), min(h, y1)
        n = max(0, y1 - y0)
        if self._h5 is not None:
            band = self._ds[:, y0:y1, :] if self.layout == "CYX" else np.moveaxis(self._ds[y0:y1], -1, 0)
        elif self._array is not None:
            try:  # a compressed or tiled TIFF, decoded as read: a damaged strip or tile fails here, not at open
                band = np.asarray(self._array[:, y0:y1, :] if self.layout == "CYX"
                                  else np.moveaxis(self._array[y0:y1], -1, 0))
            except (MemoryError, DevolensError):
                raise
            except Exception as e:  # noqa: BLE001 - the codecs' own errors (imagecodecs.DeflateError, ...)
                raise DevolensError(f"cannot decode rows {y0}-{y1} ({type(e).__name__}: {e}): the file is damaged "
                                    "or cut short", path=self.path) from e
        else:
            item = self._dtype_disk.itemsize
            with open(self.path, "rb") as fh:
                if self.layout == "CYX":
                    band = np.empty((c, n, w), self._dtype_disk)
                    for i, k in enumerate(self.order if self.order is not None else range(c)):
                        fh.seek(self._offset + ((k * h + y0) * w) * item)
                        band[i] = np.frombuffer(fh.read(n * w * item), self._dtype_disk).reshape(n, w)
                else:
                    c = self._raw_c  # interleaved: every stored channel is read, the chosen ones kept below
                    fh.seek(self._offset + (y0 * w * c) * item)
                    band = np.moveaxis(np.frombuffer(fh.read(n * w * c * item), self._dtype_disk).reshape(n, w, c), -1, 0)
        band = np.asarray(band)
        if self.order is not None and not (self._h5 is None and self._array is None and self.layout == "CYX"):
            band = band[self.order]  # (the uncompressed CYX path above reads the chosen channels only)
        return band

    _raw_rows = raw_rows  # (its former name)

    def _bands(self) -> Iterator[np.ndarray]:
        """The rows from the top, as stored (:meth:`raw_rows`), a band at a time: for the passes over the whole
        image (:meth:`_whole_image`, :meth:`_eight_bit`, which stops at its first band above 255). 256 rows, or an
        HDF5 chunk's rows (up to 1024) when more: a chunk is read whole anyway."""
        step = 256
        if self._h5 is not None and self._ds.chunks:
            step = max(step, min(1024, int(self._ds.chunks[0 if self.layout == "YXC" else 1])))
        for y0 in range(0, self.shape[1], step):
            yield self.raw_rows(y0, y0 + step)

    def _whole_image(self) -> tuple[float, bool]:
        """``(max, whole)`` of an image stored as neither uint8 nor uint16, read once band by band: its largest
        finite value and whether every value is a whole count within 0..65535 (camera counts kept as float32
        or int32). The conversion is decided for the whole image: decided band by band, a dark band of a float
        image (all values <= 1) was scaled x65535 as if the image were a [0, 1] one."""
        if self._stats is None:
            top, whole = 0.0, True
            for band in self._bands():
                t, w = count_stats(band)
                top, whole = max(top, t), whole and w
            self._stats = (top, whole)
        return self._stats

    def _convert(self, band: np.ndarray) -> np.ndarray:
        if band.dtype != np.uint8:
            if takes_as_counts(*self._whole_image(), self.dtype):  # the counts themselves
                return band.astype(np.uint16)
        if not self._warned:
            warnings.warn(f"{self.path}: image is {band.dtype}, not uint16; converted ({LIVEDEAD_CONVERTED})",
                          stacklevel=5, category=DevolensWarning)
            self._warned = True
        if band.dtype == np.uint8:
            return band.astype(np.uint16) * np.uint16(257)
        if np.issubdtype(band.dtype, np.floating):
            x = np.nan_to_num(band.astype(np.float32), nan=0.0, posinf=65535.0, neginf=0.0)
            if np.issubdtype(self.dtype, np.floating) and self._whole_image()[0] <= 1.0:  # a [0, 1] image
                x = x * 65535.0
            return np.clip(np.rint(x), 0, 65535).astype(np.uint16)
        return np.clip(band, 0, 65535).astype(np.uint16)


def _reduced(series) -> bool:
    """Whether a TIFF series is a reduced-resolution copy of another (a pyramid's level stored as pages in sequence,
    NewSubfileType 1; a thumbnail), not an image of its own."""
    try:
        key = series.keyframe
        return bool(key is not None and key.is_reduced)
    except Exception:  # noqa: BLE001 - a series tifffile cannot describe: an image of its own
        return False


def check_one_image(tf, path: str | Path) -> None:
    """Refuse an open TIFF (``tifffile.TiffFile``) that holds several images: image series (several wells or stage
    positions saved in one OME-TIFF, ``Image:0`` and ``Image:1``; a plain TIFF written in several parts), of which
    only the first would be read, silently. Not counted: the series of a multi-file OME set stored in other files
    (:func:`devolens.io.stacks.own_series` reads this file's own) and reduced-resolution series (a pyramid's levels
    as pages in sequence, a thumbnail): those are one well. (``segment nuclei``, whose frames are reviewed one by one,
    reads the first series with a note; a well's counts would be of one position, unnoticed.)"""
    from devolens.io.stacks import _series_here, own_series

    series = tf.series
    n = _series_here(tf) - sum(_reduced(s) for s in series[1:])
    if n < 2:
        return
    first = series[own_series(tf)]
    shape = tuple(int(k) for k in first.shape)
    raise DevolensError(
        f"this TIFF holds {n} image series (several wells or stage positions saved in one file; the first: axes "
        f"{first.axes}, shape {shape}), and a well is one image: only the first would be read; save each series as "
        "its own TIFF (Fiji: File > Import > Bio-Formats with 'Open all series' ticked, then File > Save As > Tiff "
        "for each) and give those files (segment livedead takes a folder of them as a plate)", path=path)


def refuse_other_format(path: Path, expected: str) -> None:
    """Refuse a file that is not a TIFF by its content and is named as a microscope vendor's file (.czi, .nd2, .lif:
    :data:`devolens.io.frames.VENDOR_SUFFIXES`) or a HEIC photo, with :func:`devolens.io.frames.unsupported_file`'s
    advice (save it as OME-TIFF: Bio-Formats), as ``segment nuclei`` refuses it; other files go on to their reader
    (a PNG, JPEG or BMP is read, anything else refused there)."""
    from devolens.io.frames import HEIC_SUFFIXES, VENDOR_SUFFIXES, unsupported_file

    if path.suffix.lower() in VENDOR_SUFFIXES + HEIC_SUFFIXES:
        raise unsupported_file(path, expected)


def h5_open_error(exc: OSError, path: Path) -> DevolensError:
    """The error for an HDF5 file that ``h5py.File`` cannot open: another program holding it open (HDF5 locks a file
    while it is open for writing: h5py's ``unable to lock file, errno = 11``), or else a file that is not one, or
    is truncated or corrupt."""
    text = str(exc)
    if "unable to lock file" in text.lower():
        # EAGAIN (Linux 11, macOS 35): held by another program; other errnos: a file system without locks (some
        # network shares), where HDF5's own switch turns locking off
        if getattr(exc, "errno", None) in (11, 35) or re.search(r"errno = (11|35)\b", text):
            return DevolensError("another program has this HDF5 file open (a notebook or script writing it, HDFView, "
                                 "an earlier run still going?), and HDF5 locks it meanwhile: close it there, then run "
                                 "again; the file was not changed", path=path)
        return DevolensError(f"cannot lock this HDF5 file ({text}): on a file system without file locks (some network "
                             "shares), set the environment variable HDF5_USE_FILE_LOCKING=FALSE; the file was not "
                             "changed", path=path)
    return DevolensError(f"not a readable HDF5 file (truncated or corrupt?): {exc}", path=path)


def _not_one_plane(shape: tuple, axes: str) -> str:
    """The error for a well TIFF of more than three dimensions (a Z-stack, a time series, several positions):
    its axes (ImageJ's or OME's; tifffile's ``Q``/``I`` where the file names none) and how to save one plane."""
    names = getattr(tifffile.TIFF, "AXES_NAMES", {})
    shape = tuple(int(n) for n in shape)
    lead = [(a, n) for a, n in zip(axes, shape) if a not in "YXS"] if len(axes) == len(shape) else []
    if not lead:
        return f"expected a (C, H, W) image (one plane of two channels), got shape {shape}"
    unnamed = [n for a, n in lead if a in "IQ"]
    said = {"Z": "z planes", "C": "channels", "T": "time points", "I": "unnamed", "Q": "unnamed"}
    what = ", ".join(f"{n} {said[a]}" if a in said else f"{n} along {a} ({names.get(a, 'unknown')})" for a, n in lead)
    head = (f"a well is one plane of two channels (C, H, W); this TIFF holds axes {axes} (shape {shape}: {what}), "
            "and only one plane is read")
    if unnamed:
        return (head + ": its axes are not named (an array saved without them), so which holds the channels cannot "
                "be told; save one plane's two channels as a (2, H, W) TIFF, e.g. tifffile.imwrite(path, "
                "array[i]) for plane i")
    how = []
    if "Z" in axes:
        how.append("a Z-stack: project it, in Fiji Image > Stacks > Z Project (Max Intensity), or keep one slice "
                   "(Image > Duplicate, one slice)")
    if any(a not in "ZCYXS" for a, _ in lead):
        how.append("time points or positions: keep one (Image > Duplicate, or one file per position)")
    return head + "; " + "; ".join(how) + "; then save the two channels as a (2, H, W) TIFF (File > Save As > Tiff)"


#: the note of a well read from an RGB TIFF by its colours (:func:`rgb_tiff_note`: ``{option}`` names the choice)
_RGB_TIFF_NOTE = ("an RGB TIFF without channel names: Hoechst read from its blue, Draq7 from its red (as for a PNG); "
                  "{option} chooses others (red 0, green 1, blue 2{aside})")
#: that note as the ``devolens`` command words it
RGB_TIFF_NOTE = _RGB_TIFF_NOTE.format(option="--channels H,D", aside="")


def rgb_tiff_note() -> str:
    """The note of a well read from an RGB TIFF by its colours: :data:`RGB_TIFF_NOTE` while the ``devolens`` command
    runs, naming the argument (``channels=[H, D]``) rather than the flag in Python."""
    return _RGB_TIFF_NOTE.format(option=channels_option(), aside=channels_aside())


#: what of a well's outputs (segment livedead's) follows a well image turned by its EXIF orientation tag
WELL_TURN_FOLLOW = "labels.tif, objects.csv's x and y and the overlay"

#: TIFF compressions that lose detail (JPEG; the old-style one; DNG's lossy JPEG)
JPEG_COMPRESSIONS = frozenset({6, 7, 34892})
#: the note on a lossy JPEG input
JPEG_NOTE = ("{what}: lossy compression shifts live/dead calls (one well read 0.39 dead from a JPEG, 0.18 from the "
             "same pixels saved losslessly); segment the microscope's lossless file where there is one")


def _hist_percentile(hist: np.ndarray, q: float) -> float:
    """The ``q``-th percentile (numpy's default, linear) of the values whose histogram (counts of 0, 1, 2...) is
    ``hist``: :func:`numpy.percentile` of the values themselves, without holding them."""
    n = int(hist.sum())
    if n == 0:
        return 0.0
    pos = q / 100.0 * (n - 1)
    lo = int(math.floor(pos))
    cum = np.cumsum(hist)
    vlo = int(np.searchsorted(cum, lo, side="right"))
    vhi = int(np.searchsorted(cum, min(lo + 1, n - 1), side="right"))
    return vlo + (vhi - vlo) * (pos - lo)


def _h5_datasets(f) -> list[tuple[str, tuple[int, ...]]]:
    """Every dataset of an open HDF5 file, ``(name, shape)``, groups included."""
    import h5py

    found: list[tuple[str, tuple[int, ...]]] = []
    f.visititems(lambda name, obj: found.append((name, tuple(int(s) for s in obj.shape)))
                 if isinstance(obj, h5py.Dataset) else None)
    return found


#: the most memory :class:`RowReader` gives the chunk cache of an HDF5 image (:func:`_h5_band_cache`)
H5_CACHE_BYTES = 256 << 20


def _h5_band_cache(ds, yaxis: int, path: Path) -> tuple[int, int] | None:
    """``(rdcc_nbytes, rdcc_nslots)`` for reading a compressed HDF5 image ``ds`` in bands of rows: a chunk cache that
    holds the chunks two rows of chunks span (one where a chunk is the image's height, or where two are more than
    :data:`H5_CACHE_BYTES`); None where the cache ``ds`` was opened with does (HDF5's default: 1 MB, 8 MB from
    HDF5 2.0) or where none is needed (contiguous or uncompressed data is read directly). A chunk the cache cannot
    hold is decompressed whole for every band that reads part of it: 2 x 6000 x 6000 pixels stored as one gzip chunk
    took 25 s in 256-row bands, 0.7 s in 256 x 256 chunks. Where one row of chunks is more than
    :data:`H5_CACHE_BYTES`, a warning says so (and how to save it)."""
    chunks = ds.chunks
    if not chunks or ds.id.get_create_plist().get_nfilters() == 0:
        return None
    _, slots, held, _ = ds.file.id.get_access_plist().get_cache()
    shape = tuple(int(n) for n in ds.shape)
    one = math.prod(chunks) * ds.dtype.itemsize
    across = math.prod(math.ceil(n / c) for i, (n, c) in enumerate(zip(shape, chunks)) if i != yaxis)
    rows = min(2, math.ceil(shape[yaxis] / chunks[yaxis]))
    need = one * across * rows
    if need > max(H5_CACHE_BYTES, held) and rows > 1:
        rows, need = 1, one * across
    if need <= held:
        return None
    if need > H5_CACHE_BYTES:
        mb = 1 << 20
        warnings.warn(f"{path}: its HDF5 image {ds.name} is stored in compressed chunks of {one / mb:.0f} MB "
                      f"({' x '.join(map(str, chunks))}), {need / mb:.0f} MB a row of chunks: more than the "
                      f"{H5_CACHE_BYTES // mb} MB kept decompressed, so each band of rows read decompresses its "
                      "chunks again (slow, and memory the size of a chunk); save it in smaller chunks, e.g. h5py's "
                      "create_dataset(..., chunks=(C, 256, 256))", stacklevel=5, category=DevolensWarning)
        return None
    return need + (1 << 20), max(int(slots), 100 * across * rows + 1)


def _h5_image(f, dataset: str | None, path: Path):
    """The image dataset of an open HDF5 file (:class:`RowReader`): ``dataset`` when named, else the 3-D dataset
    named ``image``, ``images`` or ``data``, else its only 3-D dataset.

    Raises
    ------
    DevolensError
        A devolens tile store (training tiles, not a well); ``dataset`` missing or not 3-D; no 3-D dataset; several
        and none named (the message lists them).
    """
    if f.attrs.get("format") == STORE_FORMAT:
        raise DevolensError("a devolens tile store (training tiles cut by `devolens tile make`), not a well image: "
                            "segment the well image it was cut from", path=path)
    listing = ", ".join(f"{n} {s}" for n, s in _h5_datasets(f)) or "none"
    if dataset is not None:
        if dataset not in f or not hasattr(f[dataset], "shape"):
            raise DevolensError(f"no dataset {dataset!r} in the HDF5 file (its datasets: {listing})", path=path)
        if f[dataset].ndim != 3:
            raise DevolensError(f"dataset {dataset!r} has shape {f[dataset].shape}, not a (C, H, W) image",
                                path=path)
        return f[dataset]
    for k in ("image", "images", "data"):
        if k in f and hasattr(f[k], "shape") and f[k].ndim == 3:
            return f[k]
    cands = [n for n, s in _h5_datasets(f) if len(s) == 3]
    if not cands:
        raise DevolensError(f"no 3-D (C, H, W) dataset in the HDF5 file (its datasets: {listing})", path=path)
    if len(cands) > 1:
        # (the command's --dataset, the library's dataset=)
        raise DevolensError(f"several 3-D datasets in the HDF5 file ({listing}): name the well's image "
                            f"({option('dataset', '', cli_value='')}, or save it as 'image')", path=path)
    return f[cands[0]]


def count_stats(a: np.ndarray, axis: int = -2, band: int = 256) -> tuple[float, bool]:
    """``(max, whole)`` of an image (or a part of one): its largest finite value (NaN and infinite pixels left out:
    an infinite one made a [0, 1] image look like counts, read as blank) and whether every value is a whole count
    within 0..65535 (a non-finite one is not); read ``band`` rows (along ``axis``) at a time, so that the float64
    copies stay small."""
    a = np.asarray(a)
    if a.ndim < 2:
        a, axis = a.reshape(1, -1), 0
    top, whole = 0.0, True
    for i in range(0, a.shape[axis], band):
        index = [slice(None)] * a.ndim
        index[axis] = slice(i, i + band)
        part = a[tuple(index)]
        if not part.size:
            continue
        x = part.astype(np.float64, copy=False)
        finite = np.isfinite(x)
        if finite.all():
            top = max(top, float(x.max()))
            whole = whole and bool(x.min() >= 0 and x.max() <= 65535 and np.array_equal(x, np.rint(x)))
            continue
        if finite.any():
            top = max(top, float(x[finite].max()))
        whole = False  # NaN or infinite: no count
    return top, whole


def takes_as_counts(top: float, whole: bool, dtype) -> bool:
    """Whether an image that is not uint16 (``count_stats`` of the whole of it) holds the camera's counts as they
    are: whole counts within 0..65535, and for a float image some above 1 (a float image within [0, 1] is a
    contrast-stretched one, scaled x65535). Not for uint8 (an 8-bit export, scaled x257)."""
    dtype = np.dtype(dtype)
    return dtype.kind in "iuf" and dtype != np.uint8 and whole and (top > 1.0 or not np.issubdtype(dtype, np.floating))


def open_rows(path: str | Path, channels: int | None = 2, order: list[int] | None = None) -> RowReader:
    """Open an image for row-band reading (see :class:`RowReader`)."""
    return RowReader(path, channels=channels, order=order)


def colour_tiff_order(path: str | Path) -> list[int] | None:
    """The Hoechst and Draq7 channels of a well TIFF by the RGB colour rule (:meth:`RowReader.colour_order`:
    ``[2, 0]``, blue and red), read band by band; None when the rule does not apply to it (not an RGB TIFF of 3 or 4
    interleaved samples, or its channels are named: :meth:`RowReader.is_rgb_tiff`).

    Raises
    ------
    DevolensError
        An unreadable file; an RGB TIFF that is grey or whose green holds signal.
    """
    with RowReader(path, channels=None) as src:
        return src.colour_order() if src.is_rgb_tiff() else None


def imagej_unit(unit: str) -> str:
    """A pixel size's ``unit`` as an ImageJ TIFF records it: its description is ASCII, so micrometres as ImageJ itself
    writes them (``micron``), any other non-ASCII letter as ``?``."""
    return "micron" if unit == "µm" else unit.encode("ascii", "replace").decode()


class TiffRowWriter:
    """Write a (C, H, W) or (H, W) uncompressed TIFF row band by row band.

    The file is created at its full size up front (header + data, zeros), then
    :meth:`write` puts rows at their offsets; nothing is held in memory.

    ``pixel`` (``(x, y, unit)``, as :func:`devolens.io.stacks.pixel_size` gives an input's) is written as
    :func:`devolens.io.images.write_label_tif` writes it, so that Fiji and napari show the image calibrated: ImageJ's
    resolution tags and ``unit`` (an image of 2 GB or more, past what an ImageJ TIFF holds: resolution tags per
    centimetre, for micrometres).
    """

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype=np.uint8,
                 pixel: "tuple[float, float, str] | None" = None):
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        mm = tifffile.memmap(self.path, shape=self.shape, dtype=self.dtype, photometric="minisblack",
                             **self._tiff_options(pixel))
        self.offset = int(mm.offset)  #: where the image data start in the file
        self._order = mm.dtype.byteorder
        del mm
        self._fh = open(self.path, "r+b")

    def _tiff_options(self, pixel: "tuple[float, float, str] | None") -> dict:
        """The keyword arguments of ``tifffile.memmap`` that :meth:`__init__` creates the file with (``self.shape``
        and ``self.dtype`` set): its metadata and ``pixel`` size. A subclass states here how its file differs
        (:class:`devolens.predict.livedead._ProbsWriter`)."""
        axes = "CYX" if len(self.shape) == 3 else "YX"
        extra: dict = {"metadata": {"axes": axes}}
        if pixel is not None:
            sx, sy, unit = pixel
            if math.prod(self.shape) * self.dtype.itemsize < 2**31 and self.dtype.itemsize <= 2:
                extra = {"imagej": True, "resolution": (1.0 / sx, 1.0 / sy),
                         "metadata": {"axes": axes, "unit": imagej_unit(unit)}}
            elif unit == "µm":
                extra["resolution"], extra["resolutionunit"] = (1e4 / sx, 1e4 / sy), "CENTIMETER"
        return extra

    def write(self, y0: int, rows: np.ndarray) -> None:
        """Write ``rows`` ((C, n, W) or (n, W)) starting at row ``y0``."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        item = self.dtype.itemsize
        if len(self.shape) == 2:
            _, w = self.shape
            self._fh.seek(self.offset + y0 * w * item)
            self._fh.write(rows.tobytes())
        else:
            _, h, w = self.shape
            for k in range(self.shape[0]):
                self._fh.seek(self.offset + (k * h + y0) * w * item)
                self._fh.write(rows[k].tobytes())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


#: the compression of label TIFFs, as :func:`devolens.io.images.write_label_tif` (``segment nuclei``) writes them:
#: deflate at level 6, what tifffile, Fiji and napari read
LABEL_COMPRESSION = ("zlib", 6)
#: the rows of a strip of :func:`compress_tiff` (a band of them read and compressed at a time)
_STRIP_BYTES = 2**20


def compress_tiff(path: str | Path) -> None:
    """Rewrite the complete, uncompressed TIFF ``path`` (a :class:`TiffRowWriter`'s, whose rows are written in place)
    compressed as label TIFFs are (:data:`LABEL_COMPRESSION`): ``segment livedead``'s labels.tif and instances.tif
    took 144 and 576 MB uncompressed for a 12000 x 12000 well. Strip by strip (memory: a strip of about 1 MB); its
    description (ImageJ's, with the unit, or OME's), resolution tags and ImageJ's channel labels (its IJMetadata
    tags) kept as they are; the file replaced once the new one is whole. A single page, or pages of one shape and
    type (a hyperstack's channels, probs.tif's, each page one)."""
    path = Path(path)
    with tifffile.TiffFile(path) as tf:
        pages = list(tf.pages)
        page = pages[0]
        if any(p.compression != 1 or len(p.shape) != 2 or not p.is_contiguous or p.shape != page.shape
               or p.dtype != page.dtype for p in pages):
            raise ValueError(f"{path}: not an uncompressed TIFF of 2-D pages of one shape")
        (h, w), dtype = page.shape, page.dtype
        offsets = [int(p.dataoffsets[0]) for p in pages]
        tags = page.tags
        # (as bytes: OME's, in UTF-8, may say µm, which tifffile writes only so)
        said = page.description.encode() if page.description else None
        extra: dict = {"description": said, "metadata": None, "bigtiff": tf.is_bigtiff,
                       "photometric": "minisblack"}
        if "XResolution" in tags and "YResolution" in tags:
            extra["resolution"] = (tags["XResolution"].value, tags["YResolution"].value)
            extra["resolutionunit"] = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else 1
        if 50838 in tags and 50839 in tags:  # ImageJ's metadata (its channels' Labels): copied byte for byte
            counts, data = tags[50838], tags[50839]
            tf.filehandle.seek(data.valueoffset)
            raw = tf.filehandle.read(data.count)
            extra["extratags"] = [(50838, "I", counts.count, tuple(np.atleast_1d(counts.value)), True),
                                  (50839, "B", len(raw), raw, True)]
    kind, level = LABEL_COMPRESSION
    encode = tifffile.TIFF.COMPRESSORS[8]  # (zlib: deflate, tag 8, as tifffile writes compression="zlib")
    per = max(1, _STRIP_BYTES // max(1, w * dtype.itemsize))

    def strips(fh) -> Iterator[bytes]:
        for offset in offsets:
            for y0 in range(0, h, per):
                n = min(per, h - y0)
                fh.seek(offset + y0 * w * dtype.itemsize)
                rows = np.frombuffer(fh.read(n * w * dtype.itemsize), dtype).reshape(n, w)
                yield encode(rows, level=level)

    shape = (h, w) if len(offsets) == 1 else (len(offsets), h, w)
    # an atomic_path temporary: one a run killed outright (SIGKILL, out of memory) leaves, the next run writing this
    # output removes
    from devolens.io.atomic import atomic_path

    with atomic_path(path) as tmp, contextlib.ExitStack() as inner:
        if tmp == path:  # a temporary of this process's own, which atomic_path hands back to be written in place
            tmp = inner.enter_context(atomic_path(path, suffix=".part"))
        with open(path, "rb") as fh:
            tifffile.imwrite(tmp, strips(fh), shape=shape, dtype=dtype, compression=kind,
                             compressionargs={"level": level}, rowsperstrip=per, **extra)


# ----------------------------------------------------------------------------------------
# the sliding window


def predict_tiled(
    source: Source,
    model_fn: Callable[[np.ndarray], np.ndarray],
    sink: Callable[[int, np.ndarray], None],
    *,
    n_out: int,
    window: int = 512,
    overlap: int = 64,
    margin: int | None = None,
    multiple: int = 32,
    batch_size: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Run ``model_fn`` over ``source`` with overlapping windows and smooth blending.

    Parameters
    ----------
    source : array-like, shape (C, H, W)
        Anything sliceable as ``source[:, y0:y1, :]`` (numpy array, memmap, h5py dataset,
        :class:`RowReader`). Only one band of ``window`` rows is read at a time.
    model_fn : callable
        ``model_fn(batch)`` with ``batch`` (B, C, h, w) (source dtype) returns (B, n_out,
        h, w) float outputs (e.g. class probabilities). ``h`` and ``w`` are multiples of
        ``multiple``.
    sink : callable
        ``sink(y0, rows)`` receives finished rows, in order: ``rows`` is (n_out, n, W)
        float32 for image rows ``y0 .. y0+n``. Called until all H rows are delivered.
    n_out : int
        Output channels of the model.
    window : int
        Window side (pixels); rounded up to ``multiple``; an image smaller than the window
        uses a smaller window (padded by edge replication to a multiple of ``multiple``).
    overlap : int
        Overlap of neighbouring windows (pixels).
    margin : int, optional
        Pixels along inner window sides given weight 0 (default ``overlap // 4``).
    multiple : int
        Window sides are multiples of this (32 for a 5-level U-Net).
    batch_size : int
        Windows per ``model_fn`` call.
    progress : callable, optional
        ``progress(done, total)`` in windows.

    Notes
    -----
    Peak memory: one input band (C x window x W), one band of accumulators
    ((n_out + 1) x window x W float32) and one batch of windows, whatever H is.
    """
    if isinstance(source, (str, os.PathLike)):
        raise DevolensError("source must be an array-like (C, H, W), not a path: open a TIFF with open_rows(path)")
    shape = getattr(source, "shape", None)
    if shape is None or not hasattr(source, "__getitem__"):
        raise DevolensError(f"source must be an array-like (C, H, W) (numpy array, memmap, RowReader), got "
                            f"{type(source).__name__}")
    if len(shape) != 3:
        raise DevolensError(f"source must be a (C, H, W) image (channels first), got shape {tuple(shape)}")
    for name, fn in (("model_fn", model_fn), ("sink", sink)):
        if not callable(fn):
            raise DevolensError(f"{name} must be a function, got {type(fn).__name__}")
    for name, value in (("n_out", n_out), ("window", window), ("multiple", multiple), ("batch_size", batch_size)):
        checks.whole(value, name, 1)
    c, h, w = (int(s) for s in shape)
    if h == 0 or w == 0:
        raise DevolensError("empty image")
    window = int(math.ceil(window / multiple) * multiple)
    overlap = int(overlap)
    if margin is None:
        margin = overlap // 4
    if overlap < 0 or overlap >= window:
        raise DevolensError(f"overlap must be in [0, window), got {overlap} for window {window}")
    if overlap > 0 and 2 * margin >= overlap:
        raise DevolensError(f"margin ({margin}) must be below half the overlap ({overlap})")
    th = min(window, int(math.ceil(h / multiple) * multiple))
    tw = min(window, int(math.ceil(w / multiple) * multiple))
    ys = window_starts(h, th, overlap)
    xs = window_starts(w, tw, overlap)
    wx = [ramp_weights(tw, overlap, margin, x0 == 0, x0 + tw >= w) for x0 in xs]
    total = len(ys) * len(xs)
    done = 0
    acc = np.zeros((n_out, th, w), np.float32)
    wsum = np.zeros((th, w), np.float32)
    buf_y0 = 0  # image row of acc[:, 0]
    emitted = 0
    for iy, y0 in enumerate(ys):
        band = np.asarray(source[:, y0:min(h, y0 + th), :])
        if band.shape[1] < th or band.shape[2] < tw:  # small image: pad by edge replication
            band = np.pad(band, ((0, 0), (0, th - band.shape[1]), (0, max(0, tw - band.shape[2]))), mode="edge")
        wy = ramp_weights(th, overlap, margin, y0 == 0, y0 + th >= h)
        # shift the accumulators so that acc[:, 0] is row y0
        shift = y0 - buf_y0
        if shift:
            acc[:, :th - shift] = acc[:, shift:]
            acc[:, th - shift:] = 0
            wsum[:th - shift] = wsum[shift:]
            wsum[th - shift:] = 0
            buf_y0 = y0
        for b0 in range(0, len(xs), batch_size):
            chunk = xs[b0:b0 + batch_size]
            batch = np.stack([band[:, :, x0:x0 + tw] for x0 in chunk])
            out = np.asarray(model_fn(batch), dtype=np.float32)
            if out.shape != (len(chunk), n_out, th, tw):
                raise ValueError(f"model_fn returned {out.shape}, expected {(len(chunk), n_out, th, tw)}")
            for j, x0 in enumerate(chunk):
                ww = wy[:, None] * wx[b0 + j][None, :]
                xe = min(w, x0 + tw)
                acc[:, :, x0:xe] += out[j][:, :, :xe - x0] * ww[None, :, :xe - x0]
                wsum[:, x0:xe] += ww[:, :xe - x0]
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        # rows before the next window row are final
        stop = ys[iy + 1] if iy + 1 < len(ys) else h
        n_final = stop - buf_y0
        if n_final > 0:
            ws = wsum[:n_final]
            if np.any(ws <= 0):
                raise RuntimeError("blending weights vanish somewhere (overlap/margin too small)")
            sink(buf_y0, acc[:, :n_final] / ws[None])
            emitted = stop
    if emitted != h:  # pragma: no cover - defensive
        raise RuntimeError(f"tiled inference delivered {emitted} of {h} rows")


def predict_tiled_array(image: np.ndarray, model_fn: Callable[[np.ndarray], np.ndarray], *, n_out: int,
                        **kwargs) -> np.ndarray:
    """:func:`predict_tiled` on an in-memory (C, H, W) array, returning (n_out, H, W) float32."""
    image = np.asarray(image)
    if image.ndim != 3:
        raise DevolensError(f"expected a (C, H, W) image (channels first), got shape {image.shape}")
    c, h, w = image.shape
    out = np.empty((n_out, h, w), np.float32)

    def sink(y0, rows):
        out[:, y0:y0 + rows.shape[1]] = rows

    predict_tiled(image, model_fn, sink, n_out=n_out, **kwargs)
    return out
