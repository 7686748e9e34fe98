"""Live/dead nuclei in two-channel wells (Hoechst, Draq7): the ``livedead`` zoo model.

:class:`LiveDeadPredictor` wraps a 3-class segmentation network (0 background, 1 live
nucleus, 2 dead nucleus) and runs it with :mod:`devolens.predict.tiled` (overlapping
windows, smooth blending, bf16 fast path on CPU). Objects are the connected components of
each class, measured band by band so that huge wells stay in bounded memory.

Examples
--------
>>> from devolens.models import load  # doctest: +SKIP
>>> ld = load("livedead")  # doctest: +SKIP
>>> result = ld.predict(image)  # image: (2, H, W) uint16, or a well TIFF's path  # doctest: +SKIP
>>> result.labels, result.objects, result.counts  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from devolens.errors import DevolensError, DevolensWarning, ReadNote
from devolens.io.atomic import write_csv
from devolens.predict.devices import resolve_device
from devolens.predict.tiled import RowReader, TiffRowWriter, compress_tiff, imagej_unit, predict_tiled

__all__ = ["LiveDeadPredictor", "LiveDeadResult", "extract_objects", "segment_livedead_file", "counts_from_objects",
           "check_architecture", "check_config", "check_run", "ShrunkHoechst"]

CLASS_NAMES = {1: "live", 2: "dead"}
_LOG_SCALE = float(np.log1p(65535.0))
#: a well read by position (no channel names, no ``channels``) with at least this fraction of its (at least
#: ``SWAP_MIN_OBJECTS``) nuclei dead gets a warning: swapped channels (Draq7 first) read every nucleus as dead
SWAP_FRACTION = 0.9
SWAP_MIN_OBJECTS = 20
#: ...and so does one read by position or by its colours with at least ``SWAP_EVIDENCE_FROM`` of its nuclei dead when
#: the channels show it (:class:`_SwapEvidence`): Hoechst stains every nucleus, Draq7 only the dead ones, so in a
#: swapped well many nuclei read as dead are nuclei that only the channel read as Draq7 shows. Said when at least
#: ``SWAP_DIM_SHARE`` of the objects read as dead have a contrast (their mean less their surroundings', a ring
#: ``SWAP_RING`` px wide) under ``SWAP_DIM`` times the 90th percentile of all objects' in the channel read as Hoechst
#: and at least ``SWAP_SHOWN`` times it in the one read as Draq7. Measured with the zoo model on ``devolens simulate
#: well`` wells at 1350x1800, swapped (channels reversed, no names): seeds 1-60 and 20 of dead fraction 0.8 all
#: warned (69 of the 80 by the channels; 0.9 dead alone missed seeds 3 and 29, read 0.86 and 0.74 dead, shares 0.37
#: and 0.67); as made: the 18 wells of seeds 1-60 that read 0.5 dead or more at most 0.005, the 54 of dead fractions
#: 0.7, 0.85 and 0.92 (seeds 1-20 each) at most 0.006, none warned by it. ``SWAP_DIM``: a swapped well's live nuclei
#: show only the Hoechst cross-talk into Draq7 there (at most 1/8 of a dead nucleus's Draq7 in the simulator);
#: ``SWAP_SHOWN`` keeps out objects that neither channel shows well (an 8-bit export's stretched noise read as dead:
#: 0.56 of one such well's dead objects without it, 0.025 with it)
SWAP_EVIDENCE_FROM = 0.5
SWAP_DIM = 0.1
SWAP_SHOWN = 0.2
SWAP_DIM_SHARE = 0.15
SWAP_RING = 3
#: a channel whose brightest pixel is at most this many counts (16-bit) is blank: every pixel ~0 (an 8-bit value of 0;
#: below any camera's dark offset), as the empty green of an RGB image read as Draq7 is
BLANK_COUNTS = 16
#: a channel whose values, but for this fraction at either end, lie within ``BLANK_COUNTS`` of each other is flat (no
#: contrast: a saturated 65535 everywhere, a constant): no camera image of a stain is (its noise alone spans more)
FLAT_TAIL = 0.001
#: a channel with at least ``CLIP_PIXELS`` pixels, and at least this fraction of the nuclei's area, at its largest
#: value is clipped (:func:`_range_problems`). Measured: wells without clipping put 1 or 2 pixels there, at most 17
#: (0.15 % of the nuclei's area: an 8-bit export's coarse levels); the 48 simulated wells of the zoo card's held-out
#: (9000-9023) and training (100-123) seeds at most 0.16 % (seed 119, whose brightest nuclei the simulator clips at
#: 65535); a well scaled x6, clipped in a few nuclei, 0.7 % (its counts still right); scaled x9 (0.2-0.4 % of its
#: pixels clipped; read 47 live, 54 dead of 55 and 25) 4 % in Hoechst and 9 % in Draq7
CLIP_SHARE = 0.01
CLIP_PIXELS = 20
#: probs.tif's channels, in order: the names it gives them (ImageJ channel labels; OME channel names)
PROBABILITY_CHANNELS = ("background", "live", "dead")
#: probs.tif is an ImageJ hyperstack (Fiji: 3 channels) up to this size, what a classic TIFF holds (tifffile's own
#: limit: 4 GB less 32 MB, a well of 1.4 gigapixels); a larger one an OME BigTIFF (Fiji opens it with Bio-Formats)
PROBS_IMAGEJ_BYTES = 2**32 - 2**25
#: a fill (what stitching or registration leaves outside the imaged area: one exact value in both channels, 0 or
#: any other, as a border or in a corner) is looked for from the image's corners: a corner whose two values repeat
#: along this many pixels of the image's edge (a row or a column; the image's side where shorter) may be one. In a
#: row, a run of the fill's values is fill where it touches the left or right edge or is this long (:func:`_find_fill`)
FILL_RUN = 32
#: side of the blocks that make a fill's imaged area: blocks without one pixel of the fill's values
FILL_BLOCK = 32
#: a fill is taken as one only when such blocks hold at least this share of the pixels outside it: a camera image
#: of the well. A drawn image of a few nuclei on a background of exactly one value has none: that background is the
#: image's own, no fill (and the nuclei's level would be no background to put in its place)
FILL_CONTENT = 0.5
#: objects are connected regions: touching nuclei of one class are one object. A well is warned of when at least
#: ``MERGED_SHARE`` of its objects (and ``MERGED_LEAST``) are over ``MERGED_FACTOR`` times the typical nucleus's area
#: (the larger of the live and dead objects' median areas, of a class with ``MERGED_CLASS`` objects or more; dead
#: nuclei are often smaller, so the two classes' joint median is no nucleus's size; a smaller class's objects are
#: not judged: a nearly all-dead well's 7 live nuclei, ~200 px, read as merged against the dead median, 58 px).
#: Measured: the simulated wells of ``devolens simulate well`` (seeds 1-20 at 1350x1800, and 9 at 3000x4000; their
#: nuclei do not touch) put at most 0.9 % of their objects there (seed 6: 6 of 681; 14 of the 21 none), a
#: clustered culture (500 nuclei, 130 dead, many touching: read 291 live, 117 dead) 3.2 % (13 of 408, up to 5x),
#: every one of them several nuclei
MERGED_FACTOR = 2.5
MERGED_SHARE = 0.02
MERGED_LEAST = 5
MERGED_CLASS = 10
#: ...and only when that typical area is a nucleus's: at least this many pixels (pi 3^2: the simulator's smallest
#: nucleus, ``MIN_RADIUS`` 3 px; an untrained network's objects, median 18 px, up to 3,158, are no nuclei merged)
MERGED_NUCLEUS = 28
#: a separate population of specks (debris, dust counted as nuclei) is said when, for some area ``a`` (from
#: ``SPECK_FROM`` times ``max(min_area, 12)`` up to ``SPECK_REACH`` times the smallest size of a class of
#: ``SPECK_CLASS`` objects or more: each class judged against its own sizes, in steps of 5 %), at
#: least ``SPECK_LEAST`` objects are under ``a`` and ``SPECK_RATIO`` times as many as lie between ``a`` and 1.5 ``a``
#: (a gap above them, where a population of small nuclei rises towards the median). Measured with min_area 12: the
#: simulated wells (seeds 1-20 at 1350x1800) without counted debris reach a ratio of at most 1.07 (seed 11; seed 20
#: 1.00, seed 4, whose debris is as large as its smallest nuclei, 1.10); those whose debris the model counts as nuclei
#: 46 (seed 9; 30 at 3000x4000, 238 specks of ~24 px), 3.4 and 3.2 (seeds 5 and 17). The advice, ``--min-area``
#: 1.25 ``a`` at the deepest gap, read seed 9 at 3000x4000 854 live / 847 dead (truth 851 / 845; 964 / 978 at 12).
#: Against all objects' median, shrunken dead nuclei in a mostly live well were specks (seed 59: 143 under 56 px,
#: dead median 43; --min-area 70 left 1 dead of 152; seeds 379, 1551 likewise); judged by class, none, and seeds
#: 1-20 and 9 at 3000x4000 read as before
SPECK_RATIO = 2.5
SPECK_LEAST = 20
SPECK_FROM = 1.3
SPECK_REACH = 0.45
SPECK_CLASS = 10
#: a class's size (:func:`_class_size`) is its median area, or, where at least this share of it (and ``SPECK_CLASS``
#: objects) lies above the gap (1.5 ``a`` or more), the median of those: its nuclei, when specks make up most of it.
#: Debris read as dead in a well of few dead nuclei made the dead class's median speck-sized (23-27 px), under every
#: cut, and nothing was said: ``simulate well`` parameters of seeds 1-20 with dead fraction 0.03 and 400 debris
#: particles per megapixel, or 0.1 and 250 (debris 50-90 % of the dead class), warned of seed 13 alone; now also of
#: 5, 10, 16 and 5, 9, 10, 17 (debris 50-75 % of the class; 80-90 % stays unsaid), while seeds 1-60, 379, 1551 and
#: wells of dead fractions 0.7, 0.85, 0.92 (seeds 1-20) warn as before, shrunken dead nuclei with them (seed 16 at
#: 0.92: 772 dead of median 33 px, 8 % of them 60-150 px, is no speck population). A class of shrunken nuclei a fifth
#: or more of whose objects are full-sized ones, apart from them by a gap, would read as specks (not seen there)
SPECK_NUCLEI = 0.2


@dataclass
class LiveDeadResult:
    """Output of :meth:`LiveDeadPredictor.predict`.

    Not shaped like the nuclei and membrane predictors' result
    (:class:`devolens.predict.segment.SegmentationResult`), so code written for one does not run on the other:

    * ``labels`` is a class map (0 background, 1 live, 2 dead, uint8), not instance labels (1..N, one number per
      nucleus): two touching nuclei of one class are one region. The objects are its connected components (pixels
      sharing an edge, 4-connected), in ``objects``: one row per region, regions under the predictor's
      ``min_area`` set to background in ``labels`` as they are left out of ``objects``.
    * ``objects`` is a DataFrame (``x, y, area, class``; no ``label`` column: the objects.csv of
      :meth:`LiveDeadPredictor.predict_file` numbers them, ``id``, as its instances.tif), not a dict of arrays;
      there is no ``centroids``.
    * there is no ``count``: ``counts`` is a dict (``live``, ``dead``, ``fraction_dead``); ``len(objects)`` is the
      number of objects.
    * ``probabilities`` (plural) holds the three class probabilities, (3, H, W), or None; there is no ``mask``.

    Attributes
    ----------
    labels : ndarray, uint8, (H, W)
        Class map: 0 background, 1 live, 2 dead (0 too in regions under ``min_area``; ``probabilities`` keeps the
        network's values there).
    probabilities : ndarray, float32, (3, H, W) or None
        Blended class probabilities (None when ``predict(..., probabilities=False)``).
    objects : DataFrame
        ``x``, ``y`` (centroid, px), ``area`` (px), ``class`` (1 live, 2 dead): one row per connected component
        (4-connected) of a class in ``labels`` (:func:`extract_objects`), sorted by y then x.
    counts : dict
        ``live``, ``dead`` (objects of each class) and ``fraction_dead`` (NaN when there is no object).
    """

    labels: np.ndarray
    probabilities: np.ndarray | None
    objects: pd.DataFrame
    counts: dict[str, float]


def counts_from_objects(objects: pd.DataFrame) -> dict[str, float]:
    """Live and dead counts and the dead fraction from an object table (``fraction_dead`` NaN when there is no object:
    a well without nuclei has no dead fraction, and 0.0 would read as 'all alive'; counts.csv leaves it empty)."""
    live = int((objects["class"] == 1).sum())
    dead = int((objects["class"] == 2).sum())
    return {"live": live, "dead": dead, "fraction_dead": dead / (live + dead) if live + dead else float("nan")}


class _Components:
    """Running sums of one class's connected components over row bands (:func:`extract_objects`): each band's
    components get new ids; a component touching one of the previous band's components across the seam (4-connected,
    as :func:`scipy.ndimage.label` joins pixels) is joined to it in a union-find, so an object of any height is one
    object. Memory: a few numbers per component and one image row."""

    def __init__(self, width: int):
        self.parent = np.zeros(1024, np.int64)  # id 0: background; grown by doubling
        self.n = 1  # ids in use
        self.sums: list[np.ndarray] = []  # per band: (3, n) area, sum of y, sum of x of its components
        self.bases: list[int] = []  # per band, in order: its components' ids start there (label i: base + i - 1)
        self.last = np.zeros(width, np.int64)  # the ids along the previous band's last row

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return root

    def add(self, mask: np.ndarray, y0: int) -> None:
        cc, n = ndimage.label(mask)
        self.bases.append(self.n)
        if n:
            base = self.n
            flat = cc.ravel()
            area = np.bincount(flat, minlength=n + 1)[1:]
            rows = np.bincount(flat, weights=np.repeat(np.arange(y0, y0 + cc.shape[0], dtype=np.float64),
                                                       cc.shape[1]), minlength=n + 1)[1:]
            cols = np.bincount(flat, weights=np.tile(np.arange(cc.shape[1], dtype=np.float64), cc.shape[0]),
                               minlength=n + 1)[1:]
            if base + n > len(self.parent):
                self.parent = np.concatenate([self.parent, np.zeros(max(len(self.parent), n), np.int64)])
            self.parent[base:base + n] = np.arange(base, base + n)
            self.n = base + n
            self.sums.append(np.stack([area.astype(np.float64), rows, cols]))
            first = np.where(cc[0] > 0, cc[0].astype(np.int64) + base - 1, 0)
            pairs = np.unique(np.stack([self.last, first], 1)[(self.last > 0) & (first > 0)], axis=0)
            for a, b in pairs:  # objects crossing the seam: one per pair of touching components
                ra, rb = self.find(int(a)), self.find(int(b))
                if ra != rb:
                    self.parent[max(ra, rb)] = min(ra, rb)
            self.last = np.where(cc[-1] > 0, cc[-1].astype(np.int64) + base - 1, 0)
        else:
            self.last[:] = 0

    def roots(self) -> np.ndarray:
        """Every id's root (the id of its object: the smallest of its components' ids)."""
        roots = self.parent[:self.n].copy()
        while True:  # pointer jumping: every id to its root
            nxt = roots[roots]
            if np.array_equal(nxt, roots):
                break
            roots = nxt
        return roots

    def objects(self, k: int, min_area: int) -> pd.DataFrame:
        """One row per joined component of at least ``min_area`` pixels (``root``: its id)."""
        sums = np.concatenate([np.zeros((3, 1))] + self.sums, axis=1)
        area, sy, sx = (np.bincount(self.roots(), weights=v, minlength=self.n)[1:] for v in sums)
        keep = (area > 0) & (area >= min_area)
        return pd.DataFrame({"x": sx[keep] / area[keep], "y": sy[keep] / area[keep],
                             "area": area[keep].astype(np.int64), "class": k, "root": np.flatnonzero(keep) + 1})


def extract_objects(labels, *, min_area: int = 0, band: int = 256, margin: int | None = None) -> pd.DataFrame:
    """Objects (connected components of each class, 4-connected) of a class label image, band by band.

    Each band's components are joined to the previous band's across the seam (a union-find), so an object of any
    size is found once, whole, as labelling the whole image would find it, in memory that grows with the image
    width and the number of objects, not with its area.

    Parameters
    ----------
    labels : array-like, (H, W)
        Class labels (1 live, 2 dead); anything sliceable as ``labels[y0:y1]`` (numpy
        array, memmap, a row reader), so the label image need not fit in memory.
    min_area : int
        Drop objects smaller than this (pixels; an object is a 4-connected region of one class: pixels sharing an
        edge, not a corner).
    band : int
        Rows labelled at once.
    margin : int, optional
        Ignored (kept for callers that pass it: bands are joined at their seams, no margin is read).

    Returns
    -------
    DataFrame
        ``x``, ``y`` (centroid, px, pixel centres at integer coordinates), ``area``
        (pixels), ``class`` — one row per object, sorted by y then x.
    """
    return _objects(labels, min_area=min_area, band=band)


def _objects(labels, *, min_area: int, band: int = 256, instances: Path | None = None,
             pixel: "tuple[float, float, str] | None" = None,
             clear: Callable[[int, np.ndarray], None] | None = None) -> pd.DataFrame:
    """:func:`extract_objects`; with ``instances``, also an instance label TIFF written there band by band, in a
    second pass over ``labels``: each object's pixels hold its row's number + 1 (the ``id`` of objects.csv), 0
    elsewhere (objects under ``min_area`` too); uint16, or uint32 for more than 65535 objects; ``pixel`` the pixel
    size recorded in it (:class:`devolens.predict.tiled.TiffRowWriter`). With ``clear``, in that second pass, each
    band holding pixels of a region under ``min_area`` is given back as ``clear(y0, rows)``, those pixels set to 0
    (background), so that the class map written from it has exactly the table's regions: a region is judged by its
    whole size, joined across the bands' seams as its row is. Memory: one band and a few numbers per component, as
    the first pass."""
    h, w = int(labels.shape[0]), int(labels.shape[1])
    band = max(1, int(band))
    comps = {k: _Components(w) for k in (1, 2)}
    for y0 in range(0, h, band):
        lab = np.asarray(labels[y0:min(h, y0 + band)])
        for k, c in comps.items():
            c.add(lab == k, y0)
    df = pd.concat([c.objects(k, min_area) for k, c in comps.items()], ignore_index=True)
    if df.empty:
        df = pd.DataFrame({"x": np.zeros(0), "y": np.zeros(0), "area": np.zeros(0, np.int64),
                           "class": np.zeros(0, np.int64), "root": np.zeros(0, np.int64)})
    df["class"] = df["class"].astype(np.int64)
    df = df.sort_values(["y", "x"], kind="stable").reset_index(drop=True)
    # each component's object id: its root's row + 1 (0: an object under min_area)
    ids = {}
    for k, c in comps.items():
        of_root = np.zeros(c.n, np.int64)
        mine = (df["class"] == k).to_numpy()
        of_root[df["root"].to_numpy()[mine]] = np.flatnonzero(mine) + 1
        ids[k] = of_root[c.roots()]
    dropped = any(bool((v[1:] == 0).any()) for v in ids.values())  # (id 0: the background)
    if clear is not None and not dropped:
        clear = None  # every region is a row: the class map stays as it is
    if instances is None and clear is None:
        return df.drop(columns="root")
    dtype = np.uint16 if len(df) < 65536 else np.uint32
    with (TiffRowWriter(instances, (h, w), dtype, pixel=pixel) if instances is not None
          else contextlib.nullcontext()) as out:
        for i, y0 in enumerate(range(0, h, band)):
            lab = np.asarray(labels[y0:min(h, y0 + band)])  # (clear writes these rows once they are read)
            rows = np.zeros(lab.shape, dtype) if out is not None else None
            kept = lab.copy() if clear is not None else None
            for k, c in comps.items():
                cc, n = ndimage.label(lab == k)  # as the first pass labelled this band: the same numbers
                if n:
                    inside = cc > 0
                    got = ids[k][cc[inside].astype(np.int64) + (c.bases[i] - 1)]
                    if rows is not None:
                        rows[inside] = got
                    if kept is not None:
                        kept[inside] = np.where(got > 0, k, 0)
            if out is not None:
                out.write(y0, rows)
            if kept is not None and not np.array_equal(kept, lab):
                clear(y0, kept)
    return df.drop(columns="root")


class _LabelRows:
    """Row slices of an (H, W) uint8 TIFF written by :class:`TiffRowWriter` (no memmap)."""

    def __init__(self, path: Path, offset: int, shape: tuple[int, int]):
        self.path, self.offset, self.shape = path, offset, shape

    def __getitem__(self, key: slice) -> np.ndarray:
        y0, y1, _ = key.indices(self.shape[0])
        w = self.shape[1]
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + y0 * w)
            return np.frombuffer(fh.read((y1 - y0) * w), np.uint8).reshape(y1 - y0, w)

    def write(self, y0: int, rows: np.ndarray) -> None:
        """Write ``rows`` over the rows from ``y0`` on, in place."""
        rows = np.ascontiguousarray(rows, np.uint8)
        if rows.ndim != 2 or rows.shape[1] != self.shape[1] or y0 < 0 or y0 + rows.shape[0] > self.shape[0]:
            raise ValueError(f"rows of shape {rows.shape} from row {y0} do not fit a {self.shape} label image")
        with open(self.path, "r+b") as fh:
            fh.seek(self.offset + y0 * self.shape[1])
            fh.write(rows.tobytes())


class _ProbsWriter(TiffRowWriter):
    """:class:`devolens.predict.tiled.TiffRowWriter` of probs.tif, (3, H, W) uint8 written band by band, whose
    channels say what they are: an ImageJ hyperstack of 3 channels labelled :data:`PROBABILITY_CHANNELS` (Fiji opens
    it as channels, not as a Z stack of 3 slices) with ``pixel`` recorded as labels.tif records it (ImageJ's
    resolution tags and unit); past :data:`PROBS_IMAGEJ_BYTES`, an OME BigTIFF with those channel names and the pixel
    size in micrometres (OME's and, as labels.tif then, resolution tags per centimetre)."""

    def __init__(self, path: Path, shape: tuple[int, int], pixel: "tuple[float, float, str] | None" = None):
        super().__init__(path, (3, int(shape[0]), int(shape[1])), np.uint8, pixel=pixel)

    def _tiff_options(self, pixel: "tuple[float, float, str] | None") -> dict:
        """ImageJ's options, its channels labelled, or past :data:`PROBS_IMAGEJ_BYTES` OME BigTIFF's (see the class)."""
        names = list(PROBABILITY_CHANNELS)
        if math.prod(self.shape) < PROBS_IMAGEJ_BYTES:
            extra: dict = {"imagej": True, "metadata": {"axes": "CYX", "Labels": names}}
            if pixel is not None:
                sx, sy, unit = pixel
                extra["resolution"] = (1.0 / sx, 1.0 / sy)
                extra["metadata"]["unit"] = imagej_unit(unit)
        else:
            extra = {"ome": True, "bigtiff": True, "metadata": {"axes": "CYX", "Channel": {"Name": names}}}
            if pixel is not None and pixel[2] == "µm":
                sx, sy, _ = pixel
                extra["metadata"].update(PhysicalSizeX=sx, PhysicalSizeY=sy, PhysicalSizeXUnit="µm",
                                         PhysicalSizeYUnit="µm")
                extra["resolution"], extra["resolutionunit"] = (1e4 / sx, 1e4 / sy), "CENTIMETER"
        return extra


class LiveDeadPredictor:
    """Live/dead segmentation of two-channel wells with a 3-class network.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (N, 2, h, w) normalised images to (N, 3, h, w) logits.
    window, overlap : int
        Sliding window side and overlap (pixels).
    batch_size : int
        Windows per forward pass.
    fast : bool
        Fast CPU arithmetic: int8 or bf16 autocast with channels_last (see ``precision``;
        bf16 is about 2-3x faster than fp32, probabilities differ by ~1e-2). False: fp32.
    precision : {"auto", "int8", "bf16", "fp32"}
        See :func:`devolens.models.quantize.resolve_precision`; int8 needs ``int8_params``.
    int8_params : dict, optional
        Activation scales and zero points of the int8 network (a card's ``int8.activations``).
    device : {"cpu", "cuda", "auto"}
        Where the network runs (:func:`devolens.predict.devices.resolve_device`: ``auto`` is a CUDA GPU when
        PyTorch sees one, else the CPU; ``cuda`` without one is a one-line error). Kept as ``self.device``, the
        name it resolved to (``"cpu"``, ``"cuda"``, ``"cuda:N"``: a str, as the other predictors give it).
    min_area : int
        Objects (4-connected regions of one class: pixels sharing an edge) smaller than this (pixels) are dropped
        from the object table and set to background in the class map (``labels``, labels.tif).
    card : dict, optional
        The zoo card (kept as ``self.card``).
    """

    n_classes = 3

    def __init__(self, model: torch.nn.Module, *, window: int = 512, overlap: int = 64, batch_size: int = 4,
                 fast: bool = True, device: str = "cpu", min_area: int = 12, card: dict | None = None,
                 precision: str = "auto", int8_params: dict | None = None):
        from devolens.models.quantize import PrecisionNetwork, resolve_precision

        self.device = resolve_device(device)  # a name ('cpu', 'cuda', 'cuda:1'), as the other predictors give it
        self.card = card or {}
        self.multiple = 2 ** int(self.card.get("architecture", {}).get("encoder_depth", 5))
        model = model.to(self.device).eval()
        # fast is the CPU's arithmetic: a GPU runs fp32 unless bf16 is asked for (as the other predictors)
        self.precision = resolve_precision(model, precision, int8_params, fast=bool(fast) and self.device == "cpu",
                                           device=self.device, multiple=self.multiple)
        self._network = PrecisionNetwork(model, self.precision, int8_params, self.device)
        self.model = self._network.model
        self.window, self.overlap, self.batch_size = int(window), int(overlap), int(batch_size)
        self.min_area = int(min_area)
        #: the network's options as asked for (``precision`` before :func:`resolve_precision` resolved it): what
        #: :func:`segment_livedead_file` checks a given predictor's against
        self.asked = {"fast": bool(fast), "precision": precision}

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_zoo(cls, folder: str | Path, card: dict, **options: Any) -> "LiveDeadPredictor":
        """Build from a zoo folder (``card.json`` + fp16 ``weights.safetensors``), its architecture checked to be a
        live/dead network first (:func:`check_architecture`: :func:`devolens.models.load` comes here straight from
        the card, and a card of 7 classes otherwise failed as the weights were loaded, in torch's many lines)."""
        check_architecture(card.get("architecture"), Path(folder) / "card.json")
        options.setdefault("int8_params", card.get("int8", {}).get("activations"))
        return cls(_load_net(Path(folder) / "weights.safetensors", card["architecture"]), card=card, **options)

    @classmethod
    def from_weights(cls, weights: str | Path, **options: Any) -> "LiveDeadPredictor":
        """Build from a training run's ``.safetensors`` with its ``.json`` config beside it
        (as written by :func:`devolens.models.architectures.save_model`), checked to be a live/dead
        network (:func:`check_config`): a training checkpoint (``checkpoint.safetensors``, kept to
        resume training) or a nuclei model is refused with a one-line error."""
        from devolens.models.zoo import read_json

        weights = Path(weights).expanduser()
        cfg_path = weights.with_suffix(".json")
        if not weights.exists():
            raise DevolensError("weights not found", path=weights)
        if weights.is_dir() or weights.suffix.lower() != ".safetensors":
            raise DevolensError(f"not a model: {_MODEL_WORDS}", path=weights)
        if not cfg_path.exists():
            raise DevolensError(f"model config ({cfg_path.name} beside the weights) not found: {_MODEL_WORDS}",
                                path=weights)
        arch = check_config(read_json(cfg_path, weights), weights)
        return cls(_load_net(weights, arch), card={"architecture": arch}, **options)

    @classmethod
    def from_run(cls, run: str | Path, **options: Any) -> "LiveDeadPredictor":
        """Build from a training run's folder (``devolens train --out``): its best checkpoint
        (``best.safetensors``), checked as :meth:`from_weights` does."""
        run = Path(run)
        arch = check_run(run)
        return cls(_load_net(run / "best.safetensors", arch), card={"architecture": arch}, **options)

    @classmethod
    def load(cls, model: str | Path = "livedead", **options: Any) -> "LiveDeadPredictor":
        """A zoo model by name, the folder of a model of your own (a training run: its best checkpoint;
        or a folder with a live/dead ``card.json``), or a ``.safetensors`` file from a training run.

        An existing folder is a path, as for ``devolens segment nuclei --model`` (a shipped model's
        name wins over a folder of that name in the working directory:
        :func:`devolens.models.zoo.model_folder`).

        Raises
        ------
        DevolensError
            Unknown name, missing path, a model that is not a live/dead one (another task, other
            than 2 input channels or 3 classes), a training checkpoint instead of a model.
        """
        from devolens.models import zoo

        text = str(model)
        path = Path(text).expanduser()
        if path.suffix.lower() == ".safetensors" or path.is_file():
            return cls.from_weights(path, **options)
        folder = zoo.model_folder(text)
        if folder is not None and not (folder / "card.json").is_file():
            return cls.from_run(folder, **options)
        # a model folder of one's own (an exported model, or one written by hand), else a shipped model's name (or
        # an unknown name, or a missing path: zoo.card says which)
        where = text if folder is None else folder
        info = zoo.card(where)
        _check_card(info, where)
        zoo.check_weights(zoo.ZOO_DIR / text if folder is None else folder, info, stacklevel=2)  # (the caller's)
        return cls.from_zoo(zoo.ZOO_DIR / text if folder is None else folder, info, **options)

    # ---------------------------------------------------------------- inference
    @torch.inference_mode()
    def predict_windows(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities of a batch of windows.

        Parameters
        ----------
        batch : ndarray, (B, 2, h, w) uint16 counts
            ``h`` and ``w`` multiples of 32.

        Returns
        -------
        ndarray, float32, (B, 3, h, w)
        """
        from devolens.models.zoo import fork_guard

        fork_guard()
        x = torch.from_numpy(np.ascontiguousarray(batch).astype(np.float32)).to(self.device)
        logits = self._network(torch.log1p(x) / _LOG_SCALE)
        return torch.softmax(logits, dim=1).contiguous().cpu().numpy()

    def _check(self, shape) -> None:
        if len(shape) != 3 or shape[0] != 2:
            hint = ""
            if len(shape) == 3 and shape[-1] in (3, 4):  # (a file's RGB image is read by its colours)
                hint = (": an RGB array? Hoechst blue and Draq7 red, as a colour file is read: "
                        "np.stack([image[..., 2], image[..., 0]])")
            elif len(shape) == 3 and 2 in shape:
                hint = f": move its channels first (np.moveaxis(image, {list(shape).index(2)}, 0))"
            raise DevolensError(f"expected a (2, H, W) image (Hoechst, Draq7), or (H, W, 2), got shape "
                                f"{tuple(shape)}{hint}")

    @staticmethod
    def _channels_first(image: np.ndarray) -> np.ndarray:
        """A channels-last (H, W, 2) array as (2, H, W), as a well file's channels-last layout is read
        (:func:`devolens.data.tiling.read_image`: moved where the first axis is not the two channels); any other
        shape as it is."""
        if image.ndim == 3 and image.shape[0] != 2 and image.shape[-1] == 2:
            return np.moveaxis(image, -1, 0)
        return image

    def predict(self, image: np.ndarray | torch.Tensor | str | Path, *, probabilities: bool = True,
                progress: Callable[[int, int], None] | None = None,
                channels: list[int] | None = None, dataset: str | None = None) -> LiveDeadResult:
        """Segment a well held in memory (the result too: for a well larger than memory, :meth:`predict_file`).

        Parameters
        ----------
        image : ndarray or tensor, (2, H, W) or (H, W, 2), or a path
            Hoechst and Draq7 channels (channels last read as a well file's are), uint16 counts; a PyTorch tensor is
            read as the other predictors read it (detached, on the CPU; bfloat16 as float32). Other dtypes are
            converted, with a warning where that changes the values (8-bit, [0, 1] floats, fractions, out of
            range); floats or wider integers that hold
            whole counts within 0..65535 are taken as they are. A path (str or Path) is read as
            :meth:`predict_file` and ``devolens segment livedead`` read a well: a two-channel TIFF (channels first
            or last; channel names, OME-TIFF or ImageJ, say which is which), an HDF5 file, or an RGB PNG/JPEG
            (Hoechst blue, Draq7 red); non-uint16 data converted with a warning
            (:class:`devolens.predict.tiled.RowReader`).
        probabilities : bool
            Keep the (3, H, W) float32 probabilities in the result (memory: 12 bytes/px).
        progress : callable, optional
            ``progress(done, total)`` in windows.
        channels : list of int, optional
            For a path: the indices of the Hoechst and Draq7 channels (``[1, 0]``: Draq7 first), as
            :meth:`predict_file` takes them. An array's channels are chosen by indexing it (``image[[1, 0]]``).
        dataset : str, optional
            For an HDF5 file: the dataset holding the well (default: :class:`devolens.predict.tiled.RowReader`'s
            choice; a file with several 3-D datasets and none named ``image`` is refused with their list).

        Returns
        -------
        LiveDeadResult
            A class map and an object table, not instance labels: see :class:`LiveDeadResult`.

        Raises
        ------
        DevolensError
            Not a (2, H, W) or (H, W, 2) image, or one under 2 x 2 pixels; a missing or unreadable file, or one
            without two channels; a devolens tile store.

        Warns
        -----
        UserWarning
            How the channels were read (their names, an RGB image's colours); lossy JPEG input; a blank channel
            (every pixel ~0: :data:`BLANK_COUNTS`); a flat or saturated channel, or nuclei clipped at a channel's
            top value (:data:`CLIP_SHARE`); no object found; swapped channels in a well read by position (an array
            always is, a file without channel names or ``channels``) or by its colours (an RGB image): nearly every
            nucleus dead (:data:`SWAP_FRACTION`), or half of them and many nuclei seen only in the channel read as
            Draq7 (:data:`SWAP_EVIDENCE_FROM`); not said of a flat well; of an 8-bit one (which reads mostly dead as
            it is) without many nuclei seen only as Draq7, its 8-bit values are named the likelier cause.

        Notes
        -----
        A fill around or beside the imaged area (one exact value in both channels, as stitching or registration
        leaves it: :func:`_find_fill`) is read at the well's background level, and no object is kept in it.
        """
        if isinstance(image, (str, os.PathLike)):
            with RowReader(image, channels=2, order=channels, dataset=dataset) as src:
                _warn_notes(image, src)
                fill = _find_fill(src)
                watch = _ChannelWatch(src, fill=fill)
                how = _unnamed(src)
                evidence = _SwapEvidence(watch, self.min_area) if how else None
                result = self._predict(watch, probabilities, progress, fill, evidence)
                _warn_nonfinite(image, watch.nonfinite)
                swapped = _warn_channels(image, watch, src, result.objects, result.counts,
                                         "channels=[H, D]" + _rgb_hint(src),
                                         "channels=[0, 2]" if how == "colour" else "channels=[1, 0]", evidence=evidence)
                _warn_objects(image, result.objects, self.min_area, "min_area={0} (load('livedead', min_area={0}))",
                              swapped=swapped)
            return result
        if channels is not None or dataset is not None:
            raise DevolensError("channels and dataset apply to a well file's path; choose an array's channels by "
                                "indexing it (image[[1, 0]]: Draq7 first)")
        from devolens.predict.postprocess import tensor_array

        image = self._channels_first(np.asarray(tensor_array(image)))  # (a tensor as the other predictors take it)
        self._check(image.shape)
        from devolens.io.images import check_image_size

        check_image_size(int(image.shape[1]), int(image.shape[2]))
        given = image.dtype  # (the values its warnings name: an 8-bit array's, not the x257 read)
        image, nonfinite = _missing(image)
        _warn_nonfinite("<array>", nonfinite)
        _warn_eight_bit(image)
        if image.dtype != np.uint16:
            exact = _whole_counts(image)
            if exact is None:
                from devolens.data.tiling import _to_uint16
                from devolens.predict.tiled import LIVEDEAD_CONVERTED

                exact = _to_uint16(image, Path("<array>"), why=LIVEDEAD_CONVERTED)  # (segment livedead's words)
            image = exact
        fill = _find_fill(image)
        watch = _ChannelWatch(image, fill=fill)
        evidence = _SwapEvidence(watch, self.min_area)  # (an array's channels are read by position)
        result = self._predict(watch, probabilities, progress, fill, evidence)
        swapped = _warn_channels("<array>", watch, None, result.objects, result.counts,
                                 "indexing the array (image[[1, 0]])", "image[[1, 0]]", dtype=given, evidence=evidence)
        _warn_objects("<array>", result.objects, self.min_area, "min_area={0} (load('livedead', min_area={0}))",
                      swapped=swapped)
        return result

    def _predict(self, image, probabilities: bool, progress: Callable[[int, int], None] | None,
                 fill: "_Fill | None" = None, evidence: "_SwapEvidence | None" = None) -> LiveDeadResult:
        """:meth:`predict` of a checked (2, H, W) uint16 source: an array or a :class:`RowReader` (``fill``: its
        fill, :func:`_find_fill`, made background), seen through its :class:`_ChannelWatch` (``image``);
        ``evidence``: fed the class map's rows as they come (:class:`_SwapEvidence`)."""
        h, w = image.shape[1:]
        labels = np.empty((h, w), np.uint8)
        probs = np.empty((3, h, w), np.float32) if probabilities else None

        def sink(y0, rows):
            if fill is not None:
                fill.clear(y0, rows)
            labels[y0:y0 + rows.shape[1]] = rows.argmax(axis=0)
            if evidence is not None:
                evidence.add(y0, labels[y0:y0 + rows.shape[1]])
            if probs is not None:
                probs[:, y0:y0 + rows.shape[1]] = rows

        predict_tiled(image, self.predict_windows, sink, n_out=3, window=self.window, overlap=self.overlap,
                      multiple=self.multiple, batch_size=self.batch_size, progress=progress)
        def clear(y0, rows):  # regions under min_area: background in the class map too, as in objects
            labels[y0:y0 + rows.shape[0]] = rows

        objects = _objects(labels, min_area=self.min_area, clear=clear)
        return LiveDeadResult(labels=labels, probabilities=probs, objects=objects, counts=counts_from_objects(objects))

    def predict_file(self, image: str | Path, out_dir: str | Path, *, write_probabilities: bool = False,
                     progress: Callable[[int, int], None] | None = None,
                     channels: list[int] | None = None, dataset: str | None = None,
                     well: str | None = None, shrunk: "ShrunkHoechst | None" = None,
                     write_instances: bool = False, read: dict | None = None,
                     pixel_size: float | None = None, compress: bool = True) -> dict[str, float]:
        """Segment a well file of any size in bounded memory; write results to ``out_dir``.

        Reads the image band by band (a TIFF, uncompressed or compressed, strips or tiles, a pyramid's full
        resolution; or HDF5: :class:`devolens.predict.tiled.RowReader`; a PNG or JPEG is read whole) and writes
        ``labels.tif`` (uint8, 0/1/2; calibrated with the input TIFF's pixel size, OME or ImageJ, as ImageJ reads it,
        or with ``pixel_size``: micrometres per pixel, over the file's own, for a well whose file records none)
        band by band, then ``objects.csv`` (id, x, y, area, class: every connected component of each class once,
        4-connected, however large; ``id`` its row's number, 1..n; regions under ``min_area`` are no row and are
        set to background in labels.tif, judged by their whole size across the bands, so that labels.tif's regions
        are the rows; probs.tif keeps the network's probabilities there; and ``x_um``, ``y_um``, ``area_um2`` where the
        pixel size is known, given or the file's own, as ``segment livedead`` writes them) and ``counts.csv`` (live,
        dead, fraction_dead; fraction_dead empty when there is no object). Each file appears only when complete.
        ``well``: a name (``segment livedead`` gives the file's stem) written as a leading ``well`` column of both
        tables, so that the tables of several wells concatenated still say whose rows are whose.

        ``write_probabilities``: also ``probs.tif``, the class probabilities x255, (3, H, W) uint8, an ImageJ
        hyperstack of 3 channels named background, live, dead (:data:`PROBABILITY_CHANNELS`; an OME BigTIFF past
        :data:`PROBS_IMAGEJ_BYTES`), with labels.tif's pixel size. ``write_instances``: also ``instances.tif``, the
        objects' instance labels: each object's pixels hold its ``id`` in objects.csv, 0 elsewhere (objects under
        ``min_area`` too); uint16 (uint32 past 65535 objects), with labels.tif's pixel size, written band by band in a
        second pass over labels.tif. The TIFFs are written uncompressed band by band, then deflate-compressed
        (:func:`compress_outputs`, as ``segment nuclei``'s label TIFFs; a strip at a time); ``compress=False`` leaves
        them uncompressed for a caller that reads labels.tif in place first (``segment livedead``'s overlay, through
        a memory map) and then compresses them with :func:`compress_outputs`, as the command does.

        ``shrunk``: a :class:`ShrunkHoechst` that keeps the Hoechst channel shrunk as the well is read (for a picture
        of the well, ``segment livedead``'s overlay, without reading it again).

        ``channels``: the indices of the Hoechst and Draq7 channels (``[1, 0]``: Draq7 first); by default as the
        TIFF's channel names say (OME-TIFF, ImageJ), an RGB image's colours (Hoechst blue, Draq7 red), else by
        position, with a warning when the well looks swapped (as one read by its colours: ``SWAP_FRACTION``, nearly
        every nucleus dead, what swapped channels give, or ``SWAP_EVIDENCE_FROM``, half of them and many nuclei seen
        only in the channel read as Draq7), or when the channel read as Draq7 (or Hoechst) is blank, flat or
        saturated, or clips the nuclei (:func:`_warn_range`, from the values seen as the image is read: no second
        pass). ``dataset``: an HDF5 file's dataset (as :meth:`predict` takes it). ``read``: a dict given is filled
        with the channels read and what chose them (:func:`channels_read`, for a record).

        A fill around or beside the imaged area (one exact value in both channels, 0 or any other, or a float file's
        NaN: what stitching or registration leaves) is read at the well's background level and holds no object in
        labels.tif, objects.csv or probs.tif (background there): :func:`_find_fill`, which reads such a well twice.

        Returns
        -------
        dict
            ``live``, ``dead``, ``fraction_dead`` (NaN when there is no object).
        """
        out_dir = Path(out_dir)
        pixel = _given_pixel(pixel_size)  # (checked before the well is read)
        with RowReader(image, channels=2, order=channels, dataset=dataset) as src:
            out_dir.mkdir(parents=True, exist_ok=True)  # (once the well opens: a bad one makes no folder)
            with tempfile.TemporaryDirectory(prefix=".livedead-", dir=out_dir) as tmpd:
                tmp = {name: Path(tmpd) / name for name in ("labels.tif", "probs.tif", "instances.tif")}
                objects, counts = self._predict_well(image, src, tmp["labels.tif"], tmp["probs.tif"] if
                                                     write_probabilities else None, progress=progress, shrunk=shrunk,
                                                     instances=tmp["instances.tif"] if write_instances else None,
                                                     read=read, pixel=pixel)
                if compress:
                    compress_outputs(*tmp.values())
                table, summary = _well_tables(objects, counts, well)
                table = _with_microns(table, pixel or _labels_pixel(tmp["labels.tif"]))
                write_csv(table, out_dir / "objects.csv", float_format=_FLOATS)
                write_csv(summary, out_dir / "counts.csv")
                for name, path in tmp.items():
                    if path.exists():
                        shutil.move(str(path), out_dir / name)
        return counts

    def predict_into(self, image: str | Path, labels: str | Path, *, tables: str | Path,
                     probabilities: str | Path | None = None, progress: Callable[[int, int], None] | None = None,
                     channels: list[int] | None = None, dataset: str | None = None, well: str | None = None,
                     shrunk: "ShrunkHoechst | None" = None,
                     instances: str | Path | None = None, read: dict | None = None,
                     pixel_size: float | None = None) -> dict[str, float]:
        """Segment a well file as :meth:`predict_file` does, writing in place: the class map to ``labels``, the
        probabilities to ``probabilities`` and the instance labels to ``instances`` (when given; their ids start at 1
        in each well, as its rows' ``id``), and the well's rows appended to ``tables``' objects.csv and
        counts.csv (made, with their header, by the first well). For a caller that stages its outputs itself (a
        plate's wells, gathered in one staged folder by ``segment livedead``): nothing here is atomic, and a
        well that fails leaves its files half-written. ``read``: as :meth:`predict_file` fills it; ``pixel_size``: as
        :meth:`predict_file` takes it.

        Returns
        -------
        dict
            ``live``, ``dead``, ``fraction_dead`` (NaN when there is no object).
        """
        pixel = _given_pixel(pixel_size)
        with RowReader(image, channels=2, order=channels, dataset=dataset) as src:
            objects, counts = self._predict_well(image, src, Path(labels), None if probabilities is None
                                                 else Path(probabilities), progress=progress, shrunk=shrunk,
                                                 instances=None if instances is None else Path(instances),
                                                 read=read, pixel=pixel)
        for frame, name, fmt in zip(_well_tables(objects, counts, well), ("objects.csv", "counts.csv"),
                                    (_FLOATS, None)):
            path = Path(tables) / name
            frame.to_csv(path, mode="a", header=not path.exists(), index=False, float_format=fmt)
        return counts

    def _predict_well(self, image: str | Path, src: RowReader, labels: Path, probs: Path | None, *,
                      progress: Callable[[int, int], None] | None,
                      shrunk: "ShrunkHoechst | None",
                      instances: Path | None = None,
                      read: dict | None = None,
                      pixel: "tuple[float, float, str] | None" = None) -> tuple[pd.DataFrame, dict[str, float]]:
        """Segment the well ``image`` open as ``src`` band by band into ``labels`` (and ``probs``, ``instances``),
        written in place; its objects and counts, with the reading's warnings told (:meth:`predict_file`; ``read``
        filled with :func:`channels_read`). ``pixel``: the pixel size the outputs carry (:func:`_given_pixel`), over
        the file's own; None: the file's own (a TIFF's), if any."""
        c, h, w = src.shape
        if read is not None:
            read.update(channels_read(src))
        _warn_notes(image, src)
        if pixel is None and src.tiff:
            from devolens.io.stacks import pixel_size

            pixel = pixel_size(image)
        fill = _find_fill(src)
        watch = _ChannelWatch(src, shrunk, fill)
        how = _unnamed(src)
        evidence = _SwapEvidence(watch, self.min_area) if how else None
        lw = TiffRowWriter(labels, (h, w), np.uint8, pixel=pixel)
        pw = _ProbsWriter(probs, (h, w), pixel=pixel) if probs is not None else None
        try:
            def sink(y0, rows):
                if fill is not None:
                    fill.clear(y0, rows)
                classes = rows.argmax(axis=0).astype(np.uint8)
                lw.write(y0, classes)
                if evidence is not None:
                    evidence.add(y0, classes)
                if pw is not None:
                    pw.write(y0, np.clip(np.rint(rows * 255), 0, 255).astype(np.uint8))

            predict_tiled(watch, self.predict_windows, sink, n_out=3, window=self.window, overlap=self.overlap,
                          multiple=self.multiple, batch_size=self.batch_size, progress=progress)
        finally:
            lw.close()
            if pw is not None:
                pw.close()
        rows = _LabelRows(labels, lw.offset, (h, w))
        # regions under min_area are made background in labels.tif too (in place), judged whole as objects.csv's rows
        objects = _objects(rows, min_area=self.min_area, instances=instances, pixel=pixel, clear=rows.write)
        counts = counts_from_objects(objects)
        _warn_nonfinite(image, watch.nonfinite)
        swapped = _warn_channels(image, watch, src, objects, counts, "--channels H,D" + _rgb_hint(src),
                                 "--channels 0,2" if how == "colour" else "--channels 1,0", evidence=evidence)
        # (the outlines: segment livedead's overlay, drawn from ``shrunk``; labels.tif under --no-overlay)
        _warn_objects(image, objects, self.min_area, "--min-area {}", swapped=swapped,
                      look="the overlay" if shrunk is not None else labels.name)
        return objects, counts


#: how objects.csv writes the centroids
_FLOATS = "%.2f"


def compress_outputs(*paths: "str | Path | None") -> None:
    """Compress a well's TIFFs (labels.tif, probs.tif, instances.tif: any of ``paths``), written uncompressed band by
    band in place, as ``segment nuclei``'s label TIFFs are (:func:`devolens.predict.tiled.compress_tiff`: deflate, a
    strip at a time; 144 and 576 MB for a 12000 x 12000 well's labels.tif and instances.tif uncompressed), their
    calibration and probs.tif's channel names kept, once nothing reads them in place any more. One place for
    :meth:`LiveDeadPredictor.predict_file` and ``segment livedead`` (after its overlay). None, or a file that is not
    there (no probs.tif asked for), is passed over; a file that cannot be written (a full disk) is a one-line
    :class:`DevolensError` naming it."""
    from devolens.io.atomic import cannot_write

    for path in paths:
        if path is not None and Path(path).is_file():
            try:
                compress_tiff(path)
            except OSError as exc:  # (a full disk: named by the output)
                raise cannot_write(exc, Path(path)) from None


def _given_pixel(pixel_size: float | None, label: str = "pixel_size") -> "tuple[float, float, str] | None":
    """A given pixel size (micrometres per pixel, ``segment livedead --pixel-size``) as the outputs' writers take one,
    ``(x, y, "µm")``; None for None. A one-line :class:`DevolensError` for one that is not a positive finite number,
    in ``segment nuclei``'s words (:func:`devolens.checks.pixel_size`; ``label``: the option's name)."""
    from devolens.checks import pixel_size as checked

    size = checked(pixel_size, label)
    return None if size is None else (size, size, "µm")


def _well_tables(objects: pd.DataFrame, counts: dict[str, float],
                 well: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A well's objects.csv and counts.csv rows, with a leading ``well`` column when ``well`` is given; objects.csv's
    ``id`` numbers its rows from 1 (the objects' values in instances.tif)."""
    table, summary = objects[["x", "y", "area", "class"]].copy(), pd.DataFrame([counts])
    summary = summary.round({"fraction_dead": 6})  # (6 decimals, as livedead.json's; empty without objects)
    table.insert(0, "id", np.arange(1, len(table) + 1, dtype=np.int64))
    if well is not None:
        table.insert(0, "well", str(well))
        summary.insert(0, "well", str(well))
    return table, summary


def _labels_pixel(labels: Path) -> "tuple[float, float, str] | None":
    """The pixel size ``labels`` (a well's labels.tif) was written with: its file's own, or none."""
    from devolens.io.stacks import pixel_size

    return pixel_size(labels) if labels.is_file() else None


def _with_microns(table: pd.DataFrame, pixel: "tuple[float, float, str] | None") -> pd.DataFrame:
    """A well's objects.csv rows with ``x_um``, ``y_um`` and ``area_um2`` at ``pixel`` (``(x, y, unit)``), from x and
    y as the table writes them (2 decimals), as ``segment livedead`` adds them; unchanged where the pixel size is
    unknown or no metric length (the table keeps its pixel columns alone, as the command's)."""
    from devolens.io.microns import micron_columns, um_per_pixel

    um = um_per_pixel(pixel)
    if um is None:
        return table
    written = table.assign(x=table["x"].round(2), y=table["y"].round(2))  # (x, y as the table writes them)
    return table.assign(**micron_columns(written, um))


def _whole_counts(image: np.ndarray) -> np.ndarray | None:
    """``image`` as uint16 when that changes no value: a float or integer array of whole numbers within
    0..65535 (camera counts kept as float32 or int32); else None. Not uint8 (an 8-bit export, which
    ``_to_uint16`` scales x257 and warns of) nor a float image within [0, 1] (a contrast-stretched one, scaled x65535):
    the conversion warning is for those, whose values the model does not read as the camera's counts."""
    from devolens.predict.tiled import count_stats, takes_as_counts

    if image.size == 0 or image.dtype.kind not in "iuf":
        return None
    return image.astype(np.uint16) if takes_as_counts(*count_stats(image), image.dtype) else None


class _ChannelWatch:
    """A (2, H, W) source (an array, a :class:`RowReader`) that keeps each channel's largest value of the bands read
    through it (``top``) and, of uint16 bands, a histogram of each channel's values (``hist``, each row counted once:
    the bands of :func:`predict_tiled` overlap): :func:`predict_tiled` reads every row, so after it these are the
    image's, without a second pass over it (:func:`_warn_range` reads them).

    A float file's NaN and infinite pixels are read as 0 (no signal; the reader's conversion reads +inf as a
    saturated 65535, a dead nucleus wherever it lies) and counted per channel in ``nonfinite``.

    ``shrunk`` (a :class:`ShrunkHoechst`) is handed each row of the image once, as read, to keep its shrunk copy.

    ``fill`` (a :class:`_Fill`, :func:`_find_fill`): the well's fill pixels are read at its background level, as the
    network is to see them (and the statistics above and ``shrunk`` see them so too: the values the network read)."""

    def __init__(self, src, shrunk: "ShrunkHoechst | None" = None, fill: "_Fill | None" = None):
        self.src, self.shape = src, tuple(src.shape)
        self.shrunk, self.fill = shrunk, fill
        if shrunk is not None:
            shrunk.start(self.shape[1], self.shape[2])
        self.top = np.zeros(self.shape[0], np.float64)
        self.nonfinite = np.zeros(self.shape[0], np.int64)
        self.hist = np.zeros((self.shape[0], 65536), np.int64)
        dtype = getattr(src, "dtype", None)
        self._floats = isinstance(src, RowReader) and dtype is not None and np.dtype(dtype).kind == "f"
        self._counted = np.zeros(self.shape[1], bool)  # rows counted (bands overlap)
        #: the last band read, ``(y0, band)``, as the network read it: the rows that :func:`predict_tiled` then hands
        #: its sink begin it (:class:`_SwapEvidence` reads them there, with no second read of the well)
        self.last: "tuple[int, np.ndarray] | None" = None

    def __getitem__(self, key) -> np.ndarray:
        y0, y1, _ = key[1].indices(self.shape[1])
        fresh = ~self._counted[y0:y1]
        band, bad = _read_rows(self.src, y0, y1, self._floats)
        if bad is not None:
            self.nonfinite += bad[:, fresh].reshape(bad.shape[0], -1).sum(axis=1)
        if self.fill is not None:
            band = self.fill.apply(y0, band)
        if band.size:
            self.top = np.maximum(self.top, band.reshape(band.shape[0], -1).max(axis=1))
            if band.dtype == np.uint16 and fresh.any():
                k = int(np.argmax(fresh))  # bands move down: the rows not yet counted end it (a slice)
                rows = band[:, k:] if fresh[k:].all() else band[:, fresh]
                for i in range(rows.shape[0]):
                    self.hist[i] += np.bincount(rows[i].ravel(), minlength=65536)
            if self.shrunk is not None and fresh.any():
                self.shrunk.add(y0, band[0], fresh)
        self._counted[y0:y1] = True
        self.last = (y0, band)
        return band

    def rows(self, y0: int, n: int) -> "np.ndarray | None":
        """Rows ``y0:y0 + n`` of the last band read (2, n, W), or None where it does not hold them all."""
        if self.last is None:
            return None
        b0, band = self.last
        if y0 < b0 or y0 + n > b0 + band.shape[1]:
            return None
        return band[:, y0 - b0:y0 - b0 + n]


class _SwapEvidence:
    """What the channels say of a swap (:data:`SWAP_EVIDENCE_FROM`), gathered as the well is segmented: each object's
    contrast in both channels (the channel's mean over its pixels less its median in a ring :data:`SWAP_RING` px wide
    around it, other nuclei and the pixel next to each left out) and whether it reads as dead. Fed the class map's
    rows as :func:`predict_tiled` hands them over, with the image's rows that the :class:`_ChannelWatch` read last (no
    second read of the well); objects are found per band of rows, so one that a band's edge cuts counts as two (a
    statistic, not the table). Objects under ``min_area`` px (in the band) are left out. Memory: 9 bytes an
    object."""

    def __init__(self, watch: _ChannelWatch, min_area: int):
        self.watch, self.min_area = watch, max(int(min_area), 1)
        self._contrast: list[np.ndarray] = []
        self._dead: list[np.ndarray] = []

    def add(self, y0: int, classes: np.ndarray) -> None:
        """Objects of the class map's rows ``classes`` (n, W: 0, 1 live, 2 dead), rows from ``y0``."""
        image = self.watch.rows(y0, classes.shape[0])
        if image is None or not classes.any():
            return
        ids, n1 = ndimage.label(classes == 1)
        ids2, n2 = ndimage.label(classes == 2)
        n = n1 + n2
        if not n:
            return
        dead = ids2 > 0
        ids[dead] = ids2[dead] + n1
        inner = ids > 0
        side = 2 * SWAP_RING + 1
        grown = ndimage.maximum_filter(ids, size=side, mode="constant", cval=0)
        grown[ndimage.maximum_filter(inner.view(np.uint8), size=3, mode="constant", cval=0) > 0] = 0
        around = grown > 0  # the ring: near an object, not in or next to any
        owner, member = grown[around], ids[inner]
        area = np.bincount(member, minlength=n + 1)
        counted = np.bincount(owner, minlength=n + 1)
        index = np.flatnonzero((area[1:] >= self.min_area) & (counted[1:] > 0)) + 1  # (with surroundings to compare)
        if not index.size:
            return
        starts = np.concatenate([[0], np.cumsum(counted)])  # each object's ring pixels, once sorted by owner
        lo, hi = starts[index] + (counted[index] - 1) // 2, starts[index] + counted[index] // 2
        contrast = np.empty((2, index.size), np.float64)
        for c in range(2):
            inside = np.bincount(member, weights=image[c][inner], minlength=n + 1)[index] / area[index]
            ring = image[c][around]
            ring = ring[np.lexsort((ring, owner))].astype(np.float64)  # by owner, then value
            contrast[c] = inside - (ring[lo] + ring[hi]) / 2  # less the ring's median
        self._contrast.append(contrast.astype(np.float32))
        self._dead.append(index > n1)

    def dim_share(self) -> "tuple[int, int] | None":
        """``(dim, dead)``: of the ``dead`` objects read as dead, the ``dim`` ones that only the channel read as Draq7
        shows: a contrast under :data:`SWAP_DIM` times the 90th percentile of all objects' in the channel read as
        Hoechst, and at least :data:`SWAP_SHOWN` times it in the other (None without objects, or without bright
        ones)."""
        if not self._contrast:
            return None
        contrast, dead = np.concatenate(self._contrast, axis=1), np.concatenate(self._dead)
        if not contrast.size or not dead.any():
            return None
        top = np.percentile(contrast, 90, axis=1)
        if (top <= 0).any():
            return None
        dim = (contrast[0] < SWAP_DIM * top[0]) & (contrast[1] >= SWAP_SHOWN * top[1])
        return int(dim[dead].sum()), int(dead.sum())


def _read_rows(src, y0: int, y1: int, floats: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows ``y0:y1`` of a (2, H, W) source as :class:`_ChannelWatch` reads them (a float file's NaN and infinite pixels
    as 0: ``floats``, ``src`` a :class:`RowReader`), and where those were (None: none)."""
    if not floats:
        return np.asarray(src[:, y0:y1, :]), None
    raw = src.raw_rows(y0, y1)
    band = src.as_uint16(raw)  # as src.rows reads it
    bad = ~np.isfinite(raw)
    if not bad.any():
        return band, None
    band[bad] = 0
    return band, bad


class _Fill:
    """A well's fill (:func:`_find_fill`): its pixels, as runs of rows (``[start, end)`` columns of row ``row``), and
    the level, per channel, of the imaged area's background that stands in for them. Memory: a few numbers a run."""

    def __init__(self, shape: tuple[int, int], rows: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 level: np.ndarray, values: list[tuple[int, int]]):
        self.h, self.w = shape
        self.rows, self.starts, self.ends = rows, starts, ends  # sorted by row
        self.ptr = np.searchsorted(rows, np.arange(self.h + 1))  # row y's runs: ptr[y]:ptr[y + 1]
        self.level = np.asarray(level, np.uint16)
        self.values = values  # the fill's (Hoechst, Draq7) values
        self.pixels = int((ends - starts).sum())

    def mask(self, y0: int, y1: int) -> np.ndarray:
        """The fill's pixels of rows ``y0:y1``, (y1 - y0, W) bool."""
        i0, i1 = self.ptr[y0], self.ptr[y1]
        edges = np.zeros((y1 - y0, self.w + 1), np.int8)
        np.add.at(edges, (self.rows[i0:i1] - y0, self.starts[i0:i1]), 1)
        np.add.at(edges, (self.rows[i0:i1] - y0, self.ends[i0:i1]), -1)
        return np.cumsum(edges, axis=1, dtype=np.int8)[:, :self.w] > 0

    def apply(self, y0: int, band: np.ndarray) -> np.ndarray:
        """``band`` (2, n, W: rows from ``y0``) with its fill pixels at the background level (a copy where it has
        any)."""
        mask = self.mask(y0, y0 + band.shape[1])
        if not mask.any():
            return band
        band = band.copy()
        band[:, mask] = self.level[:, None].astype(band.dtype)
        return band

    def clear(self, y0: int, rows: np.ndarray) -> None:
        """Make the fill pixels of probability ``rows`` (3, n, W: rows from ``y0``) background, in place: no object
        lies in the fill (the network's calls along its edge, where the imaged area ends, are the imaged area's)."""
        mask = self.mask(y0, y0 + rows.shape[1])
        if mask.any():
            rows[:, mask] = 0.0
            rows[0, mask] = 1.0


def _corner_fills(head: np.ndarray, tail: np.ndarray) -> list[tuple[int, int]]:
    """The (Hoechst, Draq7) values of the image's corners that repeat along :data:`FILL_RUN` pixels of its edge (or
    its side), in its first row or column from the corner: the values a fill may hold. ``head``, ``tail``: the image's
    first and last ``min(FILL_RUN, H)`` rows, (2, k, W)."""
    w = head.shape[2]
    run = min(FILL_RUN, w)
    found = set()
    for rows, edge in ((head, 0), (tail, -1)):
        for col, along in ((0, slice(0, run)), (-1, slice(w - run, w))):
            value = rows[:, edge, col]
            same = (rows[0] == value[0]) & (rows[1] == value[1])
            if same[edge, along].all() or same[:, col].all():
                found.add((int(value[0]), int(value[1])))
    return sorted(found)


def _fill_runs(candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs of True along the rows of ``candidate`` (n, W: the pixels holding a fill's values) that are fill: those
    touching the left or right edge (a border, a corner's fill cut by the row: any length) and those of
    :data:`FILL_RUN` or more (a fill inside a mosaic); ``(row, start, end)`` arrays, in row order."""
    w = candidate.shape[1]
    edges = np.diff(np.pad(candidate, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # (row-major: each run's end pairs with its start)
    keep = (starts == 0) | (ends == w) | (ends - starts >= FILL_RUN)
    return rows[keep], starts[keep], ends[keep]


def _find_fill(src, band: int = 256) -> "_Fill | None":
    """The fill of a (2, H, W) uint16 source (an array, a :class:`RowReader`): what stitching or registration leaves
    outside the imaged area, one exact value in both channels (0, or any other; a float file's NaN, read as 0) around
    it or in a corner; None when it has none.

    The network reads the step from such a fill to the well's background as the edge of nuclei: an 8-pixel black
    border around a simulated well of 441 nuclei (29.5 % dead) made 508, 39 % dead, rows of them along the well's
    edge (32 and 100 pixels: 490-495); the same border at the well's background level, 443. So the fill is read at
    the background level (:class:`_Fill`: the median of the imaged area) and no object is kept in it.

    Found from the corners (:func:`_corner_fills`, read first: a well without a fill costs its first and last
    :data:`FILL_RUN` rows), then in one pass over the well in bands of ``band`` rows (a well with one: read twice):
    its fill's runs in each row (:func:`_fill_runs`), and the imaged area, the :data:`FILL_BLOCK` blocks without a
    pixel of the fill's values, whose values' median is the level. A fill whose imaged area holds under
    :data:`FILL_CONTENT` of the pixels outside it is none (a drawn image's background of one value)."""
    _, h, w = (int(n) for n in src.shape)
    dtype = getattr(src, "dtype", None)
    floats = isinstance(src, RowReader) and dtype is not None and np.dtype(dtype).kind == "f"
    k = min(FILL_RUN, h)
    values = _corner_fills(_read_rows(src, 0, k, floats)[0], _read_rows(src, h - k, h, floats)[0])
    if not values:
        return None
    b = FILL_BLOCK
    band = max(b, band // b * b)  # whole blocks
    runs, hist, outside = [], np.zeros((2, 65536), np.int64), 0
    for y0 in range(0, h, band):
        rows = np.asarray(_read_rows(src, y0, min(h, y0 + band), floats)[0], np.uint16)
        candidate = np.zeros(rows.shape[1:], bool)
        for v0, v1 in values:
            candidate |= (rows[0] == v0) & (rows[1] == v1)
        r, s, e = _fill_runs(candidate)
        runs.append((r + y0, s, e))
        outside += candidate.size - int((e - s).sum())
        n = rows.shape[1]
        padded = np.pad(candidate, ((0, -n % b), (0, -w % b)))  # (the pixels beyond the edges: no fill)
        blocks = ~padded.reshape(padded.shape[0] // b, b, padded.shape[1] // b, b).any(axis=(1, 3))
        if blocks.any():
            area = np.repeat(np.repeat(blocks, b, axis=0), b, axis=1)[:n, :w]
            for i in range(2):
                hist[i] += np.bincount(rows[i][area], minlength=65536)
    rows, starts, ends = (np.concatenate(a) for a in zip(*runs))
    area = int(hist[0].sum())
    if not rows.size or not area or area < FILL_CONTENT * outside:
        return None
    level = [int(np.searchsorted(np.cumsum(hist[i]), (area + 1) // 2)) for i in range(2)]  # the median
    return _Fill((h, w), rows, starts, ends, np.array(level), values)


class ShrunkHoechst:
    """A well's Hoechst channel shrunk by a whole factor (every ``step``-th row and column) to at most ``side`` pixels
    on its longer side (its own size when it fits), kept as :meth:`LiveDeadPredictor.predict_file` reads the well
    (``shrunk=``): a picture of the well (``segment livedead``'s overlay) without reading the well a second time.
    Memory: the shrunk image (at most ``side`` x ``side`` uint16), whatever the well's size.

    The values are those the network read: a float well's NaN and infinite pixels as 0.

    Attributes
    ----------
    image : ndarray, uint16, (ceil(H / step), ceil(W / step))
        The shrunk channel (rows not read yet are 0); None before the well is opened.
    step : int
        The factor: ``image`` holds the well's rows and columns 0, step, 2 step...
    """

    def __init__(self, side: int):
        self.side = int(side)
        self.image: np.ndarray | None = None
        self.step = 1

    def start(self, h: int, w: int) -> None:
        """Make room for a well of ``h`` x ``w`` pixels."""
        self.step = max(1, -(-max(h, w) // self.side))
        self.image = np.zeros((-(-h // self.step), -(-w // self.step)), np.uint16)

    def add(self, y0: int, rows: np.ndarray, fresh: np.ndarray) -> None:
        """Keep, of the Hoechst ``rows`` (n, W: the well's rows from ``y0`` on), those not kept before (``fresh``,
        a mask of n) that the shrunk image holds."""
        idx = np.flatnonzero(fresh)
        idx = idx[(y0 + idx) % self.step == 0]
        if idx.size:
            self.image[(y0 + idx) // self.step] = rows[idx, ::self.step]


def _missing(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A float (2, H, W) array with its NaN and infinite pixels as 0 (no signal: a copy when it has any), and their
    number per channel."""
    if image.dtype.kind != "f":
        return image, np.zeros(image.shape[0], np.int64)
    bad = ~np.isfinite(image)
    counts = bad.reshape(image.shape[0], -1).sum(axis=1)
    if counts.any():
        image = np.where(bad, 0, image).astype(image.dtype, copy=False)
    return image, counts


def _warn_nonfinite(image, counts: np.ndarray) -> None:
    """Warn of NaN or infinite pixels, read as 0 (``counts``: per channel, Hoechst and Draq7)."""
    if not np.any(counts):
        return
    n = int(np.sum(counts))
    where = " and ".join(f"{int(c):,} in the {stain} channel" for stain, c in zip(("Hoechst", "Draq7"), counts) if c)
    warnings.warn(f"{image}: {n:,} pixel{'s' if n != 1 else ''} hold{'s' if n == 1 else ''} no number (NaN or "
                  f"infinite; {where}): read as 0, no signal (an infinite one would read as a saturated, dead "
                  "nucleus); a damaged or badly exported image?", stacklevel=3, category=DevolensWarning)


def _warn_eight_bit(image: np.ndarray) -> None:
    """Warn of a (2, H, W) uint16 array (either byte order) that looks like 8-bit data saved as 16-bit
    (:func:`devolens.predict.tiled.looks_eight_bit`), as a well file read by :class:`RowReader` is: read as it is,
    as the file is (was: no word for the array, where the same well from a file warned)."""
    from devolens.predict.tiled import EIGHT_BIT_LIVEDEAD, eight_bit_question, looks_eight_bit

    if image.dtype.kind != "u" or image.dtype.itemsize != 2 or not image.size:
        return
    top, low = int(image.max()), int(image.min())
    if looks_eight_bit(image.dtype, image.shape[0], top, low):
        warnings.warn(f"{eight_bit_question('<array>', top, low)} {EIGHT_BIT_LIVEDEAD.format(what='counts')}",
                      stacklevel=3, category=DevolensWarning)


def _rgb_hint(src: RowReader) -> str:
    """For the blank-channel warning of an RGB image: its channels' numbers and the default colour rule."""
    if src.tiff is False or src.colour_tiff:  # colour pixels (a planar (3, H, W) TIFF: a stack of channels)
        return " (red 0, green 1, blue 2; without it Hoechst is read from blue and Draq7 from red)"
    return ""


def _warn_notes(image, src: RowReader) -> None:
    """How the channels were read (``src.note``: a :class:`~devolens.errors.ReadNote`, information), lossy JPEG input
    (``src.lossy``) and a photo turned as its EXIF orientation tag says (``src.turned``), one warning each."""
    for note, kind in ((src.note, ReadNote), (src.lossy, DevolensWarning),
                       (getattr(src, "turned", None), DevolensWarning)):
        if note:
            warnings.warn(f"{image}: {note}", stacklevel=3, category=kind)


#: an RGB image's colours, by index (as ``--channels`` numbers them)
_COLOURS = ("red", "green", "blue", "alpha")


def _where(src: "RowReader | None", i: int) -> str:
    """Where the channel read as Hoechst (``i`` 0) or Draq7 (1) came from, in words: ``the blue channel of the file``
    for an RGB image read by its colour rule (Hoechst blue, Draq7 red: a PNG, JPEG, BMP or RGB TIFF without
    ``channels``), else ``channel K of the file`` (K as ``channels`` numbers it: an RGB image's colours red 0, green 1,
    blue 2); ``src`` None (an array): its index."""
    if src is None:
        return f"channel {i} of the file"
    order = src.order
    if (src.tiff is False or src.colour_tiff) and getattr(src, "_order_given", None) is None:
        k = order[i] if order is not None else (2, 0)[i]  # (a PNG read by colour: blue, red; order None)
        if k < len(_COLOURS):
            return f"the {_COLOURS[k]} channel of the file"
    return f"channel {order[i] if order is not None else i} of the file"


def _file_top(value: int, dtype: "np.dtype | None") -> str:
    """A channel's top value ``value`` (16-bit, as read) in the file's own numbers: an 8-bit file's or array's 255 is
    read as 65535 (x257), and named 255."""
    if dtype is not None and np.dtype(dtype) == np.uint8 and value % 257 == 0:
        return f"{value // 257}, the top of its 8-bit range"
    return f"{value}"


def _warn_channels(image, watch: _ChannelWatch, src: "RowReader | None", objects: pd.DataFrame,
                   counts: dict[str, float], fix_empty: str, fix_swap: str, dtype: "np.dtype | None" = None,
                   evidence: "_SwapEvidence | None" = None) -> bool:
    """The warnings about the channels read, once the well is segmented: a blank channel (:func:`_warn_empty`), a
    flat or clipped one (:func:`_warn_range`), and a well read by position or by its colours that looks swapped
    (:func:`_looks_swapped`, from the dead fraction and what ``evidence`` saw: :func:`_warn_swapped`), which a flat
    channel (no contrast: what such a well needs is another image) holds back and clipping does not (a swapped well
    whose Hoechst nuclei are partly saturated, read as Draq7, read 98 % dead with only the clipping said). ``src``:
    the file's reader (None: an array, of ``dtype``: an 8-bit one's swap is worded as one, :func:`_warn_swapped`).
    Returns whether the swap was warned of (:func:`_warn_objects` then holds back its speck advice)."""
    _warn_empty(image, watch, src, counts, fix_empty)
    swapped = _looks_swapped(src, counts, evidence)
    given = dtype if src is None else getattr(src, "dtype", None)
    kinds = _warn_range(image, watch, src, objects, swapped=swapped is not None, dtype=given)
    if swapped is not None and "flat" not in kinds:
        eight = given is not None and np.dtype(given) == np.uint8
        _warn_swapped(image, src, counts, fix_swap, swapped, eight=eight)
        return True
    return False


def _warn_empty(image, watch: _ChannelWatch, src: "RowReader | None", counts: dict[str, float], fix: str) -> None:
    """Warn of a blank channel (every pixel at most :data:`BLANK_COUNTS`: a wrong channel read, the empty green of an
    RGB image) and of a well without objects. ``src``: the file's reader, whose channels were read (None: an array,
    the first two); ``fix``: how to choose others."""
    blank = [bool(watch.top[i] <= BLANK_COUNTS) for i in range(2)]
    if all(blank):
        warnings.warn(f"{image}: no objects found: the image is blank (every pixel ~0 in both channels)",
                      stacklevel=4, category=DevolensWarning)
        return
    for i, (stain, effect) in enumerate((("Hoechst", "no nucleus can read as live"),
                                         ("Draq7", "no nucleus can read as dead"))):
        if blank[i]:
            where = _where(src, i)
            warnings.warn(f"{image}: the {stain} channel ({where}) is blank (every pixel ~0): {effect}; if the "
                          f"{stain} stain is in another channel, choose it with {fix}", stacklevel=4,
                          category=DevolensWarning)
    if counts["live"] + counts["dead"] == 0:
        warnings.warn(f"{image}: no objects found (the image is blank?)", stacklevel=4, category=DevolensWarning)


def _warn_objects(image, objects: pd.DataFrame, min_area: int, fix: str, *, swapped: bool = False,
                  look: str = "the labels") -> None:
    """Warn of what the object table's areas say about the counts: many objects several times a nucleus's area
    (:func:`_merged`: touching nuclei of one class, counted as one) and a separate population of specks
    (:func:`_specks`: debris counted as nuclei). ``fix``: how to give another min_area, ``{}`` standing for it.
    ``swapped``: the well was warned of as swapped (:func:`_warn_channels`), whose objects are the swapped channels'
    reading: no speck advice then (another min_area is no cure for reversed channels; read the right way round, the
    well is judged again). ``look``: what shows the objects (``segment livedead``'s overlay; labels.tif without one;
    the labels returned)."""
    if len(objects) == 0:
        return
    merged = _merged(objects)
    if merged is not None:
        n, typical, largest = merged
        warnings.warn(f"{image}: {n} of the {len(objects)} objects are over {MERGED_FACTOR:g} times a typical "
                      f"nucleus's area ({typical:,} px; the largest {largest:,} px): objects are connected regions, "
                      "and touching nuclei of one class count as one, so the live and dead counts are too low where "
                      f"nuclei touch; check {look}, and to count touching nuclei one by one, save the Hoechst "
                      "channel as its own image and run devolens segment nuclei on it", stacklevel=3,
                      category=DevolensWarning)
    specks = None if swapped else _specks(objects["area"].to_numpy(), min_area, objects["class"].to_numpy())
    if specks is not None:
        n, cut, near, median, advice = specks
        warnings.warn(f"{image}: {n} objects are specks under {cut} px, apart from the nuclei (median {median:,} px; "
                      f"{near} objects of {cut}-{int(1.5 * cut)} px): debris or dust counted as nuclei? Check "
                      f"{look}; if so, run again with {fix.format(advice)} to leave them out", stacklevel=3,
                      category=DevolensWarning)


def _merged(objects: pd.DataFrame) -> "tuple[int, int, int] | None":
    """``(n, typical, largest)`` when at least :data:`MERGED_SHARE` of the objects, and :data:`MERGED_LEAST`, are
    over :data:`MERGED_FACTOR` times ``typical``, the larger of the classes' median areas, and ``typical`` is at least
    :data:`MERGED_NUCLEUS`; else None. Only a class of :data:`MERGED_CLASS` objects or more is judged, and has a
    median: the objects of a smaller class (the few live nuclei of a nearly all-dead well) are neither judged nor
    counted (with no class judged, all objects against their median). ``largest``: the largest object judged."""
    area = objects["area"].to_numpy()
    cls = objects["class"].to_numpy()
    judged = [area[cls == k] for k in (1, 2) if int((cls == k).sum()) >= MERGED_CLASS] or [area]
    typical = max(float(np.median(a)) for a in judged)
    n = sum(int((a > MERGED_FACTOR * typical).sum()) for a in judged)
    if typical >= MERGED_NUCLEUS and n >= MERGED_LEAST and n >= MERGED_SHARE * len(area):
        return n, int(round(typical)), int(max(a.max() for a in judged))
    return None


def _class_size(area: np.ndarray, cut: float) -> float:
    """The size of a class of sorted ``area`` against specks under ``cut`` px: its median, or, where at least
    :data:`SPECK_NUCLEI` of it (and :data:`SPECK_CLASS` objects) lies at 1.5 ``cut`` or more, above the gap, the
    median of those (its nuclei, where specks are most of the class: its median is then a speck's size)."""
    above = area[int(np.searchsorted(area, 1.5 * cut)):]
    if above.size >= SPECK_CLASS and above.size >= SPECK_NUCLEI * area.size:
        area = above
    n = area.size
    return float(area[(n - 1) // 2] + area[n // 2]) / 2  # (the median of sorted areas)


def _specks(area: np.ndarray, min_area: int,
            classes: "np.ndarray | None" = None) -> "tuple[int, int, int, int, int] | None":
    """A separate population of specks among objects of ``area`` (kept at ``min_area``; ``classes``, 1 live and 2
    dead, when known): ``(n, cut, near, median, advice)``, ``n`` objects under ``cut`` px and ``near`` between
    ``cut`` and 1.5 ``cut``, at the cut where that gap is deepest (:data:`SPECK_RATIO`), ``advice`` the min_area
    that leaves them out (1.25 ``cut``: in the gap); None without one. Each class is judged against its own sizes:
    the cut stays under :data:`SPECK_REACH` times the size (:func:`_class_size`: its median, or its nuclei's above the
    gap where specks are most of it) of every class of :data:`SPECK_CLASS` objects or more, so that a class of small
    nuclei (shrunken dead ones) is never specks apart from the other class, nor its nuclei left out by the advice;
    ``median``: all objects' median."""
    a = np.sort(np.asarray(area, np.float64))
    median = float(np.median(a))
    own: list[np.ndarray] = []
    if classes is not None:
        area, classes = np.asarray(area, np.float64), np.asarray(classes)
        own = [np.sort(area[classes == k]) for k in (1, 2) if int((classes == k).sum()) >= SPECK_CLASS]
    best = None
    cut = SPECK_FROM * max(int(min_area), 12)
    while cut <= SPECK_REACH * a[-1]:
        if cut <= SPECK_REACH * min((_class_size(g, cut) for g in own), default=median):
            tiny = int(np.searchsorted(a, cut))
            near = int(np.searchsorted(a, 1.5 * cut)) - tiny
            if tiny >= SPECK_LEAST and tiny >= SPECK_RATIO * near:
                if best is None or tiny / max(near, 1) >= best[0]:
                    best = (tiny / max(near, 1), cut, tiny, near)
        cut *= 1.05
    if best is None:
        return None
    _, cut, tiny, near = best
    return tiny, int(math.ceil(cut)), near, int(round(median)), int(math.ceil(1.25 * cut))


def _unnamed(src: "RowReader | None") -> "str | None":
    """How a well's channels were chosen where neither channel names nor ``channels`` chose them: ``position`` (an
    array, ``src`` None; a TIFF or HDF5 file without channel names: Hoechst the first, Draq7 the second), ``colour``
    (an RGB image, a PNG, JPEG or BMP or an RGB TIFF without names, read by the colour rule: Hoechst blue, Draq7
    red); None where names or ``channels`` chose them (a swap is then not guessed at)."""
    if src is None:
        return "position"
    if getattr(src, "_order_given", None) is not None:
        return None
    if src.tiff is False or (src.colour_tiff and src.is_rgb_tiff()):
        return "colour"
    return "position" if src.order is None else None


def channels_read(src: RowReader) -> dict:
    """Which channels of a well file were read as Hoechst and Draq7 (``hoechst``, ``draq7``: as ``channels``
    numbers them, an RGB image's red 0, green 1, blue 2) and what chose them (``by``): ``--channels`` (given),
    ``names`` (the TIFF's channel names), ``colours`` (an RGB image's colour rule: Hoechst blue, Draq7 red) or
    ``position`` (Hoechst the first); for ``segment livedead``'s record, which says what its option did not."""
    how = _unnamed(src)
    if how == "position":
        return {"hoechst": 0, "draq7": 1, "by": "position"}
    h, d = src.order if src.order is not None else (2, 0)  # (a PNG read by colour: blue, red; order None)
    by = "colours" if how == "colour" else "--channels" if src._order_given is not None else "names"
    return {"hoechst": int(h), "draq7": int(d), "by": by}


def _looks_swapped(src: "RowReader | None", counts: dict[str, float],
                   evidence: "_SwapEvidence | None" = None) -> "tuple[int, int] | None":
    """Whether a well read by position or by its colours (:func:`_unnamed`) looks swapped: ``(dim, dead)`` when it
    does, else None. Of at least :data:`SWAP_MIN_OBJECTS` objects, nearly all read as dead (:data:`SWAP_FRACTION`;
    ``dim`` 0 where ``evidence`` was not gathered), or at least :data:`SWAP_EVIDENCE_FROM` of them dead, and
    :data:`SWAP_DIM_SHARE` or more of those ``dead`` ones ``dim`` in the channel read as Hoechst
    (:meth:`_SwapEvidence.dim_share`: nuclei that only the other channel shows)."""
    total = counts["live"] + counts["dead"]
    if not _unnamed(src) or total < SWAP_MIN_OBJECTS or not counts["fraction_dead"] >= SWAP_EVIDENCE_FROM:
        return None
    share = evidence.dim_share() if evidence is not None else None
    if share is not None and share[0] >= SWAP_DIM_SHARE * share[1]:
        return share
    if counts["fraction_dead"] >= SWAP_FRACTION:
        return share if share is not None else (0, int(counts["dead"]))
    return None


def _warn_swapped(image, src: RowReader | None, counts: dict[str, float], fix: str,
                  seen: "tuple[int, int]" = (0, 0), eight: bool = False) -> None:
    """Warn of a well read by position (``src``: no channel names, no ``channels``; None: an array, whose channels
    are always read by position) or by its colours (an RGB image: Hoechst blue, Draq7 red) that looks swapped
    (:func:`_looks_swapped`, which the caller asked, ``seen`` its answer): Hoechst (every nucleus) read as Draq7 makes
    every nucleus dead, and Draq7 read as Hoechst leaves the live ones without Hoechst. ``fix`` says how to give the
    channels. ``eight``: an 8-bit well (uint8, read x257), which reads mostly dead as it is: unless the nuclei read
    as dead are seen in the channel read as Draq7 alone (``seen``), its 8-bit values are named the likelier cause,
    the swap second (a reviewer's 8-bit well read 98 % dead was told to swap its channels: 100 % dead)."""
    if src is not None and _unnamed(src) == "colour":
        taken = "Hoechst taken from the blue channel and Draq7 from the red"
        why, when, act = "the colour rule", "if Hoechst was saved in red and Draq7 in blue", "run again with"
    else:
        taken = "Hoechst taken from the first channel and Draq7 from the second"
        why, when, act = (("an array's channels are read by position", "if Draq7 is its first channel", "pass")
                          if src is None else ("the file does not name them", "if Draq7 was saved first",
                                               "run again with"))
    dim, dead = seen
    shown = ""
    if dim >= SWAP_DIM_SHARE * max(dead, 1) and dim:
        shown = (f"; {dim / dead:.0%} of those are nuclei in the channel read as Draq7 with almost no Hoechst, which "
                 "stains every nucleus")  # (a share: the objects seen are the bands', not the table's rows)
    elif eight:
        warnings.warn(f"{image}: {counts['fraction_dead']:.0%} of the nuclei read as dead in this 8-bit image, "
                      "most likely from its 8-bit values (the livedead model reads 16-bit camera counts, and an 8-bit "
                      "export reads mostly dead: segment the microscope's own 16-bit file where there is one) rather "
                      "than from swapped channels, as few of them show in the channel read as Draq7 alone "
                      f"({taken}: {why}; were they swapped all the same, {act} {fix})", stacklevel=4,
                      category=DevolensWarning)
        return
    warnings.warn(f"{image}: {counts['fraction_dead']:.0%} of the nuclei read as dead, with {taken} ({why}){shown}: "
                  f"{when}, {act} {fix}", stacklevel=4, category=DevolensWarning)


def _range_problems(watch: _ChannelWatch, area: float) -> list[tuple[str, int, int]]:
    """Per channel (Hoechst, Draq7), what its values' histogram (``watch.hist``) says is wrong with its range:
    ``("flat", level, 0)`` (every pixel but a few within :data:`BLANK_COUNTS` of ``level``, fewer than
    :data:`CLIP_PIXELS` outside the range of all but :data:`FLAT_TAIL` of them widened by :data:`BLANK_COUNTS`: no
    contrast; a few dead nuclei in a well of background are contrast),
    ``("clipped", top, n)`` (``n`` pixels, at least :data:`CLIP_SHARE` of the nuclei's ``area`` and
    :data:`CLIP_PIXELS`, sit at the channel's largest value ``top``, the top of a range of bits, 65535 or 4095 (a
    12-bit camera) or any 2^k - 1 from 255: the pile-up that clipping leaves, where unclipped counts reach their
    largest value in a pixel or two; a drawn well's nuclei of one value are no clipping), or ``("", 0, 0)``. A blank
    channel (:data:`BLANK_COUNTS`: :func:`_warn_empty`) is none of these."""
    from devolens.predict.tiled import _hist_percentile

    found = []
    for i in range(2):
        hist = watch.hist[i]
        top = int(np.flatnonzero(hist)[-1]) if hist.any() else 0
        if top <= BLANK_COUNTS:
            found.append(("", 0, 0))
            continue
        lo, hi = _hist_percentile(hist, 100 * FLAT_TAIL), _hist_percentile(hist, 100 * (1 - FLAT_TAIL))
        n = int(hist[top])
        # a few bright nuclei in a well of background (sparse dead nuclei under FLAT_TAIL of the pixels, on a
        # background-subtracted or low-noise camera's level) are contrast, not flatness: the tails must be empty too
        near = hist[max(0, int(np.floor(lo)) - BLANK_COUNTS):int(np.ceil(hi)) + BLANK_COUNTS + 1].sum()
        if hi - lo <= BLANK_COUNTS and int(hist.sum() - near) < CLIP_PIXELS:
            found.append(("flat", int(round(_hist_percentile(hist, 50))), 0))
        elif n >= CLIP_PIXELS and n >= CLIP_SHARE * area and top >= 255 and top & (top + 1) == 0:
            found.append(("clipped", top, n))
        else:
            found.append(("", 0, 0))
    return found


def _warn_range(image, watch: _ChannelWatch, src: "RowReader | None", objects: pd.DataFrame, *,
                swapped: bool = False, dtype: "np.dtype | None" = None) -> set[str]:
    """Warn of a flat channel (no contrast: every pixel at one level, a saturated 65535 or any other) and of a channel
    whose nuclei are clipped (a noticeable share of their pixels at its top value: :func:`_range_problems`); counts
    from either are not to be trusted (one flat Hoechst channel read 1 live, 25 dead of 55 and 25; a Hoechst and
    Draq7 well clipped in 0.3 % of its pixels 47 and 54). ``src``: the file's reader (None: an array), which says
    where each channel was read from (:func:`_where`); ``dtype``: the input's, whose numbers the top value is given
    in (:func:`_file_top`). ``swapped``: the well looks swapped (:func:`_looks_swapped`), so a clipped channel is named
    as the one read as Hoechst or Draq7 (clipped Hoechst nuclei read as Draq7 were 'the Draq7 channel').
    Returns the kinds warned of (``flat``, ``clipped``): a flat channel holds back the swapped-channels advice."""
    area = float(objects["area"].sum()) if len(objects) else 0.0
    warned: set[str] = set()
    for i, (kind, value, n) in enumerate(_range_problems(watch, area)):
        if not kind:
            continue
        stain = ("Hoechst", "Draq7")[i]
        where = _where(src, i)
        if kind == "flat":
            saturated = value >= 65535 - BLANK_COUNTS
            what = ("saturated: every pixel at the top of the range (65535)" if saturated
                    else f"flat: every pixel ~{value} counts, no contrast")
            effect = "no nucleus can be seen in it" if i == 0 else "dead nuclei cannot be told from live ones"
            cause = ("overexposed: acquire it with a shorter exposure or lower gain" if saturated
                     else f"not a camera image of the {stain} stain: an empty or edited channel?")
            warnings.warn(f"{image}: the {stain} channel ({where}) is {what}: {effect}, so the counts are not to be "
                          f"trusted ({cause})", stacklevel=4, category=DevolensWarning)
        else:
            share = f"{n / area:.1%} of the nuclei's area" if area else "and no nucleus found"
            channel = f"channel read as {stain}" if swapped else f"{stain} channel"
            fix = "acquire with a shorter exposure or lower gain so that no nucleus saturates"
            if dtype is not None and np.dtype(dtype) == np.uint8:  # (an export's contrast stretch clips too)
                fix = ("segment the camera's own 16-bit image (an 8-bit export's contrast stretch clips the brightest "
                       "nuclei); only if its nuclei saturate too, acquire with a shorter exposure or lower gain")
            warnings.warn(f"{image}: {n:,} pixels of the {channel} ({where}; {share}) sit at its top value "
                          f"({_file_top(value, dtype)}): saturated or clipped, their brightness lost, which can shift "
                          f"the live/dead calls (the model reads how bright each nucleus is); {fix}", stacklevel=4,
                          category=DevolensWarning)
        warned.add(kind)
    return warned


#: what ``--model`` / :meth:`LiveDeadPredictor.load` takes, for the errors that name another thing
_MODEL_WORDS = ("give the zoo's livedead model, a training run's folder (devolens train --out) or its "
                "best.safetensors")
_PREDICTOR = "devolens.predict.livedead:LiveDeadPredictor"


def _check_card(info: dict, name: str | Path) -> None:
    """Refuse a model card (shipped or exported) whose predictor is not the live/dead one."""
    if info.get("predictor") != _PREDICTOR:
        raise DevolensError(f"model {str(name)!r} is a {info.get('task')!r} model, not a live/dead one: "
                            f"{_MODEL_WORDS}")
    check_architecture(info.get("architecture"), name)


def check_architecture(arch: Any, where: str | Path) -> dict:
    """``arch`` (a model config: ``in_channels``, ``classes``...) when it describes a live/dead network: 2 input
    channels (Hoechst, Draq7) and 3 classes (background, live, dead); else a one-line :class:`DevolensError`
    naming ``where``, before any weights are read (a wrong network fails deep in a convolution otherwise)."""
    if not isinstance(arch, dict) or arch.get("kind", "segmentation") != "segmentation":
        raise DevolensError(f"describes no segmentation network: {_MODEL_WORDS}", path=where)
    channels, classes = arch.get("in_channels"), arch.get("classes")
    if channels is not None and int(channels) != 2:
        guess = " (a nuclei model?)" if int(channels) == 1 else ""
        raise DevolensError(f"this model reads {channels} channel{'s' if int(channels) != 1 else ''}{guess}; a "
                            "live/dead model reads 2: Hoechst and Draq7", path=where)
    if classes is not None and int(classes) != 3:
        raise DevolensError(f"this model has {classes} output classes; a live/dead model has 3: background, live, "
                            "dead", path=where)
    return arch


def check_config(cfg: Any, where: str | Path) -> dict:
    """The architecture in ``cfg`` (the ``.json`` that :func:`devolens.models.architectures.save_model` and
    ``devolens train`` write beside weights), checked to be a live/dead network (:func:`check_architecture`) fed
    as :class:`LiveDeadPredictor` feeds it (``input.target`` 'classes', ``input.normalize`` 'log' where given).

    Raises
    ------
    DevolensError
        A training checkpoint's config (optimizer state, no architecture: the file kept to resume training),
        no architecture at all, a network of another kind, or sizes out of bounds or pretrained encoder weights
        (:func:`devolens.models.zoo.check_architecture`).
    """
    from devolens.models import zoo

    if not isinstance(cfg, dict):
        raise DevolensError(f"its .json is no model config: {_MODEL_WORDS}", path=where)
    arch = cfg.get("model") or cfg.get("architecture")
    if arch is None:
        if "optimizer" in cfg or Path(where).stem == "checkpoint":
            raise DevolensError("a training checkpoint (kept to resume training; it holds no model config), not a "
                                "model: give the run's folder or its best.safetensors", path=where)
        raise DevolensError(f"its .json names no architecture (not a model's weights): {_MODEL_WORDS}", path=where)
    arch = check_architecture(arch, where)
    # sizes within bounds and no encoder download, as a shared model folder's card (a run is shared like one)
    zoo.check_architecture(arch, "model" if cfg.get("model") else "architecture", Path(where))
    inp = cfg.get("input") if isinstance(cfg.get("input"), dict) else {}
    if inp.get("target") not in (None, "classes"):
        raise DevolensError(f"this run learned target {inp['target']!r} (nuclei or membrane segmentation); a "
                            "live/dead model learns data.target 'classes'", path=where)
    if inp.get("normalize") not in (None, "log"):
        raise DevolensError(f"this run's data.normalize is {inp['normalize']!r}; segment livedead feeds the network "
                            "log-scaled counts (data.normalize: log, as in recipes/livedead.yaml)", path=where)
    return arch


def check_run(run: str | Path) -> dict:
    """The architecture of training run ``run``'s best checkpoint when it is a live/dead network
    (:func:`check_config`); a one-line :class:`DevolensError` when ``run`` is no run or another model."""
    from devolens.models.export import _not_a_run, _run_config, is_run

    run = Path(run)
    if not is_run(run):
        raise _not_a_run(run, None)
    return check_config(_run_config(run, None), run)


def _load_net(weights: Path, arch: dict) -> torch.nn.Module:
    """The network of ``arch`` with ``weights``: a plain-torch U-Net with BatchNorm folded
    where it covers the architecture (no segmentation-models-pytorch import), else smp."""
    from devolens.predict._engine import load_zoo_network

    return load_zoo_network(weights, {"architecture": dict(arch)})


def segment_livedead_file(image: str | Path, out_dir: str | Path, *, model: str = "livedead", window: int | None = None,
                          overlap: int | None = None, batch_size: int | None = None, fast: bool | None = None,
                          min_area: int | None = None, write_probabilities: bool = False, precision: str | None = None,
                          progress: Callable[[int, int], None] | None = None,
                          channels: list[int] | None = None, device: str | None = None,
                          dataset: str | None = None, well: str | None = None,
                          predictor: "LiveDeadPredictor | None" = None,
                          shrunk: "ShrunkHoechst | None" = None, write_instances: bool = False,
                          loaded: "list[LiveDeadPredictor] | None" = None,
                          read: dict | None = None, pixel_size: float | None = None,
                          compress: bool = True) -> dict[str, float]:
    """Segment a well file with a zoo model (or a run's weights): see :meth:`LiveDeadPredictor.predict_file`
    (``device``: where the network runs, as :class:`LiveDeadPredictor` takes it; ``dataset``: an HDF5 file's dataset
    holding the well; ``well``: the tables' leading ``well`` column; ``shrunk``: a :class:`ShrunkHoechst` to fill;
    ``write_probabilities``, ``write_instances``: also probs.tif, instances.tif; ``pixel_size``: micrometres per
    pixel that labels.tif (and probs.tif, instances.tif) carry, over the file's own calibration, as
    ``segment nuclei --pixel-size`` gives it; ``compress``: False leaves the TIFFs uncompressed, for
    :func:`compress_outputs` once the caller has read them in place).
    The model options left out (None) are :class:`LiveDeadPredictor`'s defaults: window 512, overlap 64, batch_size
    4, fast, min_area 12, precision 'auto', device 'cpu'.

    ``predictor``: a model already loaded (:meth:`LiveDeadPredictor.load`), used instead of loading ``model``: the
    wells of many calls share one model, loaded once. Options left out are then the predictor's own; ``window``,
    ``overlap``, ``batch_size`` and ``min_area`` given apply to this call (the predictor itself is unchanged);
    ``fast``, ``precision`` and ``device`` given must be those it was loaded with (they made its network). The input
    is then not read beforehand (that check is to fail before a model loads; :meth:`~LiveDeadPredictor.predict_file`
    refuses it as well), a second decode of a PNG well saved. ``loaded``: a list the predictor that ran is appended
    to, once it has (what its network ran as: precision, device, int8 kind, for a record). ``read``: a dict filled
    with the channels read and what chose them (:func:`channels_read`).

    Raises
    ------
    DevolensError
        Missing or unreadable image, wrong channel count, an image under 2 x 2 pixels, a devolens tile store or an
        HDF5 file with several images and none named, unknown model; ``fast``, ``precision`` or ``device`` other
        than the given ``predictor``'s; a ``pixel_size`` that is not a positive number.
    """
    _given_pixel(pixel_size)  # (before a model loads)
    given = {k: v for k, v in {"window": window, "overlap": overlap, "batch_size": batch_size, "fast": fast,
                               "min_area": min_area, "precision": precision, "device": device}.items()
             if v is not None}
    if predictor is None:
        # check the input before loading the model (fail fast, write nothing)
        RowReader(image, channels=2, order=channels, dataset=dataset).close()
        pred = LiveDeadPredictor.load(model, **given)  # the rest: LiveDeadPredictor's defaults
    else:
        pred = _predictor_for(predictor, given)
    counts = pred.predict_file(image, out_dir, write_probabilities=write_probabilities, progress=progress,
                               channels=channels, dataset=dataset, well=well, shrunk=shrunk,
                               write_instances=write_instances, read=read, pixel_size=pixel_size,
                               compress=compress)
    if loaded is not None:
        loaded.append(pred)
    return counts


def _predictor_for(pred: LiveDeadPredictor, given: dict[str, Any]) -> LiveDeadPredictor:
    """``pred`` with the options of :func:`segment_livedead_file` ``given``: a copy sharing its network with
    ``window``, ``overlap``, ``batch_size`` and ``min_area`` set (``pred`` unchanged), after ``fast``, ``precision``
    and ``device`` are checked to be those that built its network (a one-line :class:`DevolensError` when not: a
    network is not rebuilt behind the caller's back, nor another's options silently ignored)."""
    import copy

    asked = pred.asked
    if "device" in given and resolve_device(given["device"]) != pred.device:
        raise DevolensError(f"device {given['device']!r} differs from the predictor given, which runs on "
                            f"{pred.device!r}: load the predictor with device={given['device']!r}, or leave "
                            "device out")
    differs = []
    if given.get("precision", asked["precision"]) not in (asked["precision"], pred.precision):  # (what auto gave)
        differs.append("precision")
    if given.get("precision", asked["precision"]) == "auto" and given.get("fast", asked["fast"]) != asked["fast"]:
        differs.append("fast")  # (fast decides only what 'auto' runs)
    if differs:
        key = differs[0]
        raise DevolensError(f"{key}={given[key]!r} differs from the predictor given (loaded with {key}="
                            f"{asked[key]!r}: its network runs {pred.precision}): load the predictor with "
                            f"{key}={given[key]!r}, or leave {key} out")
    pred = copy.copy(pred)
    for key in ("window", "overlap", "batch_size", "min_area"):
        if key in given:
            setattr(pred, key, int(given[key]))
    return pred
