"""Multi-dimensional TIFF stacks (timelapses, z-stacks, hyperstacks) as a stream of 2-D frames.

Microscopes and Fiji save timelapses and z-stacks as one TIFF with several planes
(ImageJ hyperstacks: axes ``TZCYX``; OME-TIFF; plain multi-page TIFF). The zoo's models
see 2-D frames, so a stack is read plane by plane, never whole:

- ``T`` (and the pages of a plain multi-page TIFF): one frame per index; the unlabelled pages
  of a plain multi-page TIFF (tifffile's axes ``I`` or ``Q``) are time points unless ``pages="z"``
  says they are the z planes of one stack; other axes (stage positions saved as an axis...) and
  several unlabelled axes are refused (:func:`check_axes`);
- ``Z``: projected to its maximum (``z="project"``, what the nuclei models were trained
  on: a maximum-intensity projection like an EPIC movie) or one frame per plane
  (``z="slices"``, e.g. for the membrane model, trained on single slices);
- ``C``: one channel, chosen by index (there is no safe guess between, say, a nuclear
  and a membrane channel); a plain multi-page TIFF of 2 to 4 grey pages (no axis labels: what
  ``tifffile.imwrite(path, np.stack([dapi, gfp]))`` and some acquisition programs write) has its
  pages read as channels when a channel is chosen (:func:`pages_with_channel`), as time points
  otherwise;
- ``S`` (RGB samples, stored interleaved ``YXS`` or planar ``SYX``): returned last (``H x W x S``),
  the predictors pick the colour channel.

>>> info = stack_info("movie.tif")                    # doctest: +SKIP
>>> info.axes, info.frames(z="project")                # doctest: +SKIP
('TZYX', 180)
>>> for frame in iter_stack_frames("movie.tif"):       # doctest: +SKIP
...     ...
"""

from __future__ import annotations

import logging
import os
import re
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from devolens import checks
from devolens.errors import DevolensError, option

__all__ = ["StackInfo", "stack_info", "iter_stack_frames", "open_stack", "check_stack_options", "samples_last", "Z_MODES",
           "PAGES_MODES", "check_pages", "pages_with_channel", "check_stack_z", "read_pages_as",
           "unlabelled_pages_note", "z_projection_note",
           "other_series_note", "several_series_note", "split_set_note", "join_notes", "LayoutError",
           "ome_set_first", "stack_reading", "busiest_planes", "channel_names", "frame_interval", "check_axes",
           "own_series", "ome_image",
           "planar_rgb_note", "is_tiff", "squeeze_axes", "open_tiff", "tiff_has_axis"]

Z_MODES = ("project", "slices")
#: how the pages of a plain multi-page TIFF (no axis labels) are read: as time points, or as the z planes of one stack
PAGES_MODES = ("time", "z")
#: ``pages`` as the readers also take it: ``"channels"``, what a chosen channel makes of ``"time"``
#: (:func:`pages_with_channel`; not a ``--pages`` choice)
PAGES_READ = PAGES_MODES + ("channels",)
#: how many pages of a plain multi-page TIFF are read as channels when a channel is chosen (a nuclear stain and one
#: to three others: more pages than that are far more often a timelapse or a z-stack)
CHANNEL_PAGES = (2, 4)
#: tifffile's axis codes for planes without a label (a plain multi-page TIFF: a sequence, or an unknown axis)
UNLABELLED = ("I", "Q")
#: leading axes read as frames: time, z, channel, the unlabelled pages of a plain TIFF, samples
READ_AXES = ("T", "Z", "C", "S") + UNLABELLED


class LayoutError(DevolensError):
    """A readable TIFF whose layout cannot be read as frames (a file continuing a multi-file OME-TIFF set, whose
    first file is not given): a folder holding one refuses at once, rather than read it as an image."""


@dataclass(frozen=True)
class StackInfo:
    """Layout of the first image series of a TIFF file (this file's own in a multi-file OME set: :func:`own_series`).

    Attributes
    ----------
    axes : str
        tifffile's axes codes, e.g. ``"TZCYX"``, ``"ZYX"``, ``"YXS"``.
    shape : tuple of int
        Size along each axis.
    """

    axes: str
    shape: tuple[int, ...]

    @property
    def spatial(self) -> int:
        """Trailing image axes: 2 (``YX``) or 3 (``YXS`` or planar ``SYX``, RGB samples)."""
        return 3 if self.axes.endswith(("YXS", "SYX")) else 2

    @property
    def planar(self) -> bool:
        """RGB samples stored as planes before the image axes (``SYX``, planar configuration)."""
        return self.axes.endswith("SYX")

    @property
    def leading(self) -> tuple[tuple[str, int], ...]:
        return tuple(zip(self.axes[: -self.spatial], self.shape[: -self.spatial]))

    @property
    def planes(self) -> int:
        """Z planes (1 when there is no Z axis)."""
        return int(np.prod([n for a, n in self.leading if a == "Z"] or [1]))

    @property
    def channels(self) -> int:
        """Channels along a ``C`` axis (1 when there is none)."""
        return int(np.prod([n for a, n in self.leading if a == "C"] or [1]))

    @property
    def times(self) -> int:
        """Indices along every other leading axis (time points, pages of a sequence)."""
        return int(np.prod([n for a, n in self.leading if a not in ("Z", "C")] or [1]))

    @property
    def unlabelled(self) -> tuple[int, ...]:
        """Leading axes without a label (tifffile's ``I``, ``Q``: the pages of a plain multi-page TIFF)."""
        return tuple(n for a, n in self.leading if a in UNLABELLED)

    @property
    def is_stack(self) -> bool:
        """More than one 2-D plane (a single image, grey or RGB, is not a stack)."""
        return any(n > 1 for _, n in self.leading)

    def frames(self, z: str = "project") -> int:
        """Number of 2-D frames :func:`iter_stack_frames` yields."""
        return self.times * (self.planes if z == "slices" else 1)


def stack_info(path: str | Path, pages: str = "time") -> StackInfo:
    """Axes and shape of a TIFF file's first series (this file's own in a multi-file OME set: :func:`own_series`;
    reads the header only).

    ``pages="z"``: the unlabelled pages of a plain multi-page TIFF (tifffile's axes ``I`` or
    ``Q``) are the z planes of one stack, reported as axis ``Z`` (``"time"``, the default: they
    stay a sequence, read as time points). Axes the file labels (ImageJ, OME) are kept either way.

    Raises
    ------
    DevolensError
        Missing, unreadable or empty file; a bad ``pages``; ``pages="z"`` on a file with
        several unlabelled axes (which of them is Z cannot be told).
    """
    check_pages(pages)
    path = Path(path)
    if not path.is_file():
        raise DevolensError("no such file", path=path)
    if not is_tiff(path):  # another format under a .tif name (a PNG renamed...): one image, read by its content
        return _other_format_info(path)
    layout = _tiff_layout(path)
    axes, shape = layout[:2]
    if layout[6].continues is not None:
        raise LayoutError(_continuation_text(layout[6].continues), path=path)
    if not shape or int(np.prod(shape)) == 0:
        raise DevolensError("empty image", path=path)
    if not (axes.endswith("YX") or axes.endswith("YXS")):
        raise DevolensError(f"unsupported TIFF layout: axes {axes!r}, shape {shape}{_channel_last_advice(axes)}",
                            path=path)
    return read_pages_as(StackInfo(axes, shape), pages, path)


def _channel_last_advice(axes: str) -> str:
    """How to save a stack whose channels come after X (tifffile's ``TYXC``: each pixel holds its channels), which
    is not read: channels first, with its axes."""
    if not (len(axes) >= 3 and axes[-1] == "C" and axes[-3:-1] == "YX"):
        return ""
    lead = axes[:-3] + "C"
    return (f": its channels (C) are stored last, inside each pixel, where devolens reads them before Y and "
            f"X; save it channels first with its axes, e.g. tifffile.imwrite(path, np.moveaxis(array, -1, "
            f"-3), imagej=True, metadata={{'axes': '{lead}YX'}}), then choose the channel with "
            f"{option('channel', 'N', cli_value='')}")


def _continuation_text(first: str) -> str:
    """The error for a file that continues a multi-file OME-TIFF set whose metadata are in ``first``."""
    if first.lower().endswith((".tif", ".tiff")):
        return (f"this file continues the multi-file OME-TIFF set of {first} (a long acquisition saved as several "
                f"files, as Micro-Manager does): its planes are read through that file, which reads the whole set; "
                f"give {first} (with this file beside it)")
    return (f"this file holds planes of a multi-file OME-TIFF set whose metadata are in {first or 'another file'} "
            "(an OME companion file), which devolens does not read: open the set in Fiji (File > Import > "
            "Bio-Formats) and save it as one OME-TIFF")


def tiff_has_axis(path: str | Path, axis: str, unreadable: bool, pages: str = "time") -> bool:
    """Whether ``path`` is a TIFF (named so, or by its content: :func:`reads_as_tiff`) and its layout has ``axis``
    (headers parsed once, cached), its unlabelled pages read as ``pages``; ``unreadable`` is the answer for a file
    :func:`stack_info` cannot read (its reader says why, later)."""
    path = Path(path)
    if not reads_as_tiff(path):
        return False
    try:
        return axis in stack_info(path, pages).axes
    except DevolensError:
        return unreadable


#: the first bytes of a TIFF file (little- or big-endian, classic or BigTIFF)
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def is_tiff(path: str | Path) -> bool:
    """Whether the file's content is a TIFF (by its first bytes, whatever its name). Raises a
    :class:`DevolensError` for an empty (0-byte) file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise DevolensError(f"cannot read file: {exc.strerror or exc}", path=path) from None
    if not head:
        raise DevolensError("empty file (0 bytes)", path=path)
    return head in TIFF_MAGIC


#: the names of TIFF files (compared in lower case)
TIFF_SUFFIXES = (".tif", ".tiff")


def reads_as_tiff(path: str | Path) -> bool:
    """Whether a file is read by the TIFF rules (:func:`stack_info`, :func:`open_stack`, the notes): named ``.tif``
    or ``.tiff`` (another format under that name is one image, read by its content: :func:`stack_info` says so),
    or, under any other name, a TIFF by its first bytes (a stack saved or renamed ``.png``, ``.jpg``: read as the
    stack it is, as a ``.tif`` copy of it is, since read_image reads such a file by its content too). Reads 4
    bytes of a file not named as a TIFF (a folder of PNGs is not parsed); False for a folder, a missing file and
    an empty or unreadable one not named as a TIFF (its reader says why)."""
    path = path if isinstance(path, Path) else Path(path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        return True
    try:
        st = os.stat(path)
    except OSError:  # missing or unreadable: its reader says why
        return False
    return stat.S_ISREG(st.st_mode) and _tiff_head(os.fspath(path), st.st_ino, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=16384)
def _tiff_head(name: str, inode: int, size: int, mtime_ns: int) -> bool:
    """Whether the file ``name`` begins as a TIFF, read once per file version (inode, size, modification time)
    and process: the frames' reader and the notes ask it of each file of a folder in one command, and a stat is
    a fraction of an open and a read."""
    try:
        with open(name, "rb") as fh:
            return fh.read(4) in TIFF_MAGIC
    except OSError:  # unreadable: its reader says why
        return False


@contextmanager
def quiet_tifffile() -> Iterator[list[logging.LogRecord]]:
    """Keep tifffile's log messages (a damaged file's complaints, ``<tifffile.TiffPages @8> invalid page offset``)
    from the terminal, where they would print before the command's own error line; yields the list of its
    warning and error records, filled as they come (:func:`complaint` gives a record's text)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    log = logging.getLogger("tifffile")
    keep = Keep(logging.WARNING)
    log.addHandler(keep)
    try:
        yield records
    finally:
        log.removeHandler(keep)


def complaint(record: logging.LogRecord) -> str:
    """A tifffile log record's text without its ``<tifffile.TiffPages @8> `` prefix."""
    return record.getMessage().split("> ", 1)[-1]


@contextmanager
def open_tiff(path: str | Path):
    """``tifffile.TiffFile(path)`` with its series parsed, tifffile's log messages kept from the terminal.

    A damaged file raises a :class:`DevolensError` (read as the pages that are left, a timelapse cut short by an
    interrupted copy or acquisition became one image, or frames of zeros): its chain of pages points past the
    end of the file, its pixel data run past it, or its layout (ImageJ, OME, tifffile's metadata) could not be
    applied. ImageJ's own files over 4 GB, whose chain of pages is broken by design, are read by their layout.
    """
    import tifffile

    with quiet_tifffile() as records, tifffile.TiffFile(path) as tif:
        series = tif.series
        read = series[own_series(tif)] if series else None  # the series read (its own, in a multi-file OME set)
        errors = [complaint(r) for r in records if r.levelno >= logging.ERROR]
        meant = [k for k in ("imagej", "ome", "shaped") if getattr(tif, f"is_{k}", False)]
        kind = read.kind if series else None
        chain = [m for m in errors if "invalid page offset" in m or "invalid offset to page" in m]
        start = read.dataoffset if series else None
        # the size of the file that holds the data: another file of a multi-file OME set (one file per
        # stage position, each with the whole OME-XML) may hold the series, not this one
        held = read.pages[0].parent.filehandle.size if start is not None else 0
        why = None
        # a multi-file OME set whose other files are not beside this one: tifffile zeroes their planes (another
        # stage position's file missing is no matter: its planes are not read)
        lost = [m for m in (complaint(r) for r in records) if "OME series failed to read" in m]
        gone = sum(p is None for p in read.pages) if lost and series and read.kind == "ome" else 0
        if gone:
            import re

            first = _continues(tif)
            if first:  # the set's first file is the one missing: this one is read through it
                raise LayoutError(_continuation_text(first), path=path)

            named = _missing_files(tif) or next(
                (m.group(1) for m in map(re.compile(r"failed to read '([^']+)'").search, lost) if m), None)
            raise DevolensError(
                f"its OME metadata put {gone} of its {len(read.pages)} planes in "
                f"{named or 'other files'}, which cannot be read beside it (a multi-file OME-TIFF set whose other "
                "files were not copied with it, or a file renamed since it was written?): put the set's files "
                "together, under the names they were written with", path=path)
        if start is not None and start + read.nbytes > held:
            why = "its pixel data run past the end of the file"
        elif chain and kind != "imagej":
            why = f"its chain of pages breaks: {chain[0]}"
        elif errors and meant and kind not in meant:
            layout = "/".join({"imagej": "ImageJ", "ome": "OME", "shaped": "tifffile"}[m] for m in meant)
            why = f"its {layout} layout cannot be read: {errors[0]}"
        if why:
            raise DevolensError(f"damaged or truncated TIFF ({why}; {len(tif.pages)} readable page(s)): a file "
                                "cut short by an interrupted copy or acquisition?", path=path)
        yield tif


@dataclass(frozen=True)
class _Meta:
    """What a TIFF's metadata say beyond its layout (:func:`_tiff_layout`)."""

    #: the file holding the OME metadata of the multi-file OME-TIFF set this file continues (None: it does not)
    continues: str | None = None
    #: the names of the channels along C (OME ``Channel Name``, or ImageJ's plane labels), None where none is given
    channels: tuple = ()
    #: seconds between time points (ImageJ ``finterval``, OME ``TimeIncrement``), None where none is recorded
    interval: float | None = None
    #: the OME image read where the metadata list several, some stored in other files: ``(ID, Name, place 1..,
    #: images listed)`` (:func:`_image_read`); None otherwise
    image: tuple | None = None


def _tiff_layout(path: Path) -> tuple[str, tuple[int, ...], int, bool, "tuple[float, float, str] | None", str,
                                      _Meta]:
    """``(axes, shape)`` of a TIFF file's first series (its own: :func:`own_series`; axes of length 1 dropped,
    :func:`squeeze_axes`), its number of series (:func:`_series_here`), whether that series is RGB with its
    samples stored as planes and no ImageJ or OME axes (:func:`planar_rgb_note`), its pixel size
    (:func:`pixel_size`), its dtype's name (``""`` where tifffile gives none: :func:`check_stack_options`) and its
    :class:`_Meta`. Parsed once per file version (path, inode,
    size, modification time) and process: :func:`stack_info`, :func:`unlabelled_pages_note`, :func:`other_series_note`,
    :func:`planar_rgb_note` and :func:`pixel_size` ask for the same file (each member of a folder) in one command."""
    st = path.stat()
    return _layout(str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, path)


@lru_cache(maxsize=4096)
def _layout(resolved: str, inode: int, size: int, mtime_ns: int,
            path: Path) -> tuple[str, tuple[int, ...], int, bool, "tuple[float, float, str] | None", str, _Meta]:
    import tifffile

    try:  # opened by the path as given, which the errors name (errors are not cached)
        with open_tiff(path) as tif:
            if not tif.series:
                raise DevolensError("no image in this TIFF file", path=path)
            s = tif.series[own_series(tif)]
            axes, shape = squeeze_axes(str(s.axes), tuple(int(n) for n in s.shape))
            key = s.keyframe
            planar_rgb = bool(not (tif.is_imagej or tif.is_ome) and key is not None
                              and key.photometric == tifffile.PHOTOMETRIC.RGB
                              and key.planarconfig == tifffile.PLANARCONFIG.SEPARATE)
            dtype = np.dtype(s.dtype).name if s.dtype is not None else ""
            try:  # the OME-XML parsed once (Micro-Manager's can be megabytes) and its images walked at most once,
                # for the calibration and the metadata
                walk = _ome_walk(tif, _ome_root(tif))
            except Exception:  # noqa: BLE001 - OME-XML it cannot parse: read as tifffile reads it
                walk = _UNPARSED
            return (axes, shape, _series_here(tif), planar_rgb, _calibration(tif, walk), dtype,
                    _metadata(tif, axes, shape, walk))
    except DevolensError:
        raise
    except Exception as exc:
        raise DevolensError(f"cannot read TIFF: {exc}", path=path) from None


#: the walk (:func:`_ome_walk`) of an OME-TIFF whose OME-XML cannot be parsed (:func:`_layout`)
_UNPARSED = object()


def _metadata(tif, axes: str, shape: tuple[int, ...], walk) -> _Meta:
    """:class:`_Meta` of an open ``tifffile.TiffFile`` whose first series has ``axes`` and ``shape`` (squeezed);
    ``walk``: its OME-XML's images walked (:func:`_ome_walk`; None for a TIFF without OME-XML), or ``_UNPARSED``."""
    if walk is _UNPARSED:  # read as tifffile reads it
        return _Meta()
    try:
        continues = _continues(tif, walk)
    except Exception:  # noqa: BLE001 - metadata it cannot read: read as tifffile reads it
        continues = None
    try:
        names = _channel_names(tif, axes, shape, walk)
    except Exception:  # noqa: BLE001 - no names
        names = ()
    try:
        interval = _interval(tif, walk)
    except Exception:  # noqa: BLE001 - none recorded
        interval = None
    try:
        image = _image_read(walk)
    except Exception:  # noqa: BLE001 - not told
        image = None
    return _Meta(continues, names, interval, image)


def _ome_root(tif):
    """The parsed OME-XML of an OME-TIFF (None for any other TIFF)."""
    import xml.etree.ElementTree as ET

    return ET.fromstring(tif.ome_metadata) if tif.is_ome and tif.ome_metadata else None


def _ome_pixels(element):
    """The first ``Pixels`` element in ``element`` (an OME-XML's root: its first image's; an ``Image``: its own;
    None where there is none)."""
    return next((e for e in element.iter() if e.tag.endswith("}Pixels") or e.tag == "Pixels"), None)


def own_series(tif) -> int:
    """The index of the series of an open ``tifffile.TiffFile`` that devolens reads: its first, except in an
    OME-TIFF whose metadata list images stored in other files (Micro-Manager's one file per stage position, each
    carrying the whole OME-XML: tifffile's first series is then the first position's, read from its own file):
    there the first series whose first plane is stored in this file."""
    series = tif.series
    if len(series) < 2 or series[0].kind != "ome":
        return 0
    return next((i for i, s in enumerate(series) if _stored_here(s, tif)), 0)


def _stored_here(series, tif) -> bool:
    """Whether the first plane of a series of ``tif`` is stored in that file (not in another of its OME set)."""
    pages = series.pages
    return bool(len(pages)) and pages[0] is not None and pages[0].parent is tif


def _series_here(tif) -> int:
    """The number of image series of an open TIFF, those of a multi-file OME set stored in other files (other
    stage positions' files) left out."""
    series = tif.series
    if len(series) < 2 or series[0].kind != "ome":
        return len(series)
    return sum(_stored_here(s, tif) for s in series) or len(series)


def _ome_images(tif, root) -> list[tuple]:
    """``(Image element, files of its TiffData, file of its first plane)`` for each image of an OME-XML, a file
    named ``""`` for this one (every plane here where the XML names no file)."""
    own = tif.filehandle.name
    own_uuid = root.get("UUID")

    def where(data) -> str:
        """The file a TiffData element's planes are in ("" for this one)."""
        ref = next((e for e in data if e.tag.endswith("UUID")), None)
        if ref is None or (own_uuid and (ref.text or "").strip() == own_uuid):
            return ""
        name = ref.get("FileName") or ""
        return "" if name == own else name

    out = []
    for image in root:
        if not image.tag.endswith("Image"):
            continue
        datas = [d for e in image if e.tag.endswith("Pixels") for d in e if d.tag.endswith("TiffData")]
        files = [where(d) for d in datas]
        first = next((f for d, f in zip(datas, files)
                      if all(int(d.get(a) or 0) == 0 for a in ("FirstC", "FirstZ", "FirstT"))),
                     files[0] if files else None)
        out.append((image, files, first))
    return out


class _OmeWalk:
    """What the OME helpers (:func:`_continues`, :func:`_channel_names`, :func:`_interval`, :func:`_image_read`,
    :func:`_calibration`, :func:`_missing_files`) need of an OME-TIFF's parsed OME-XML, each part worked out once
    when first read (a Micro-Manager OME-XML lists every plane of every stage position, and was walked once per
    helper), and only where a helper reads it: the files of each image's planes are not looked up for an OME-TIFF
    whose planes are all in one file. A part that cannot be worked out raises where it is read (each helper's
    answer for XML it cannot read is its own). Not cached beyond :func:`_layout`'s parse (whose :class:`_Meta` and
    calibration are), so that no XML is kept."""

    def __init__(self, tif, root):
        self.tif, self.root = tif, root

    @cached_property
    def named(self) -> bool:
        """``"FileName="`` in the OME-XML's text: some image's planes may be in other files (named by its
        TiffData)."""
        return "FileName=" in (self.tif.ome_metadata or "")

    @cached_property
    def binary_only(self) -> str | None:
        """The ``MetadataFile`` of the XML's ``BinaryOnly`` element (``""`` where it names none); None where it has
        none."""
        return next((e.get("MetadataFile") or "" for e in self.root if e.tag.endswith("BinaryOnly")), None)

    @cached_property
    def images(self) -> list[tuple]:
        """:func:`_ome_images`: ``(Image element, files of its TiffData, file of its first plane)`` per image."""
        return _ome_images(self.tif, self.root)

    @cached_property
    def own(self):
        """The ``Image`` element of the series read (:func:`own_series`): the first whose first plane is stored in
        this file; the XML's first where its planes are all in one file (or none is here). None where there is
        none."""
        tops = [e for e in self.root if e.tag.endswith("Image")]
        if len(tops) < 2 or not self.named:
            return tops[0] if tops else None
        return next((image for image, _, first in self.images if first == ""), tops[0])

    @cached_property
    def pixels(self):
        """The ``Pixels`` element of the image read (the XML's first where it has no image, or an empty one), or
        None."""
        return _ome_pixels(self.own or self.root)


def _ome_walk(tif, root) -> _OmeWalk | None:
    """The images of an OME-TIFF's parsed OME-XML (``root``, :func:`_ome_root`), walked once for all the OME helpers
    (:class:`_OmeWalk`); None where ``root`` is None (a TIFF without OME-XML). Raises nothing: each part is worked
    out where it is read."""
    return None if root is None else _OmeWalk(tif, root)


def _image_read(walk: _OmeWalk | None) -> tuple | None:
    """``(ID, Name, its place 1.., images listed)`` of the image read from an OME-TIFF whose metadata list several
    images, some stored in other files (one file per stage position); None for any other file (one image, all
    stored in this file: its first series is read, and :func:`other_series_note` says so)."""
    if walk is None or not walk.named:
        return None
    images = walk.images
    if len(images) < 2 or all(first == "" for _, _, first in images):
        return None
    image = walk.own
    at = next((k for k, (e, _, first) in enumerate(images) if e is image and first == ""), None)
    if at is None:
        return None
    return image.get("ID") or f"Image:{at}", image.get("Name") or None, at + 1, len(images)


def _missing_files(tif) -> str | None:
    """The files holding planes of the image read from an OME-TIFF that are not beside it (by the names its
    metadata give, up to 3); None where none is missing or it cannot be told."""
    import os

    try:
        walk = _ome_walk(tif, _ome_root(tif))
        image = walk.own if walk is not None else None
        if image is None:
            return None
        files = next(f for e, f, _ in walk.images if e is image)
        folder = tif.filehandle.dirname
        gone = list(dict.fromkeys(f for f in files if f and not os.path.exists(os.path.join(folder, f))))
    except Exception:  # noqa: BLE001 - tifffile's own words then
        return None
    return (", ".join(gone[:3]) + (f" and {len(gone) - 3} more" if len(gone) > 3 else "")) if gone else None


def _continues(tif, walk: _OmeWalk | None = None) -> str | None:
    """The file holding the metadata of the multi-file OME-TIFF set whose planes this file holds after another's:
    its OME-XML says ``BinaryOnly`` (``MetadataFile``), or an image it holds planes of starts in another file (its
    first plane's ``TiffData`` names that file: every file of the set carrying the whole OME-XML), whether that
    file is at hand or not. None for anything else. ``walk``: its OME-XML walked (:func:`_ome_walk`), parsed and
    walked here where not given."""
    if not tif.is_ome or not tif.ome_metadata:
        return None
    xml = tif.ome_metadata
    if "BinaryOnly" not in xml and "FileName=" not in xml:  # planes in one file: nothing to look up
        return None
    walk = _ome_walk(tif, _ome_root(tif)) if walk is None else walk
    binary_only = walk.binary_only
    if binary_only is not None:
        return binary_only
    for _, files, first in walk.images:
        if "" not in files:  # none of its planes here
            continue
        if first:
            return first
    return None


def _channel_names(tif, axes: str, shape: tuple[int, ...], walk: _OmeWalk | None) -> tuple:
    """The names of the channels along C of the first series: OME ``Channel Name`` (its first image), or ImageJ's
    plane labels where each channel's planes of the first time point share one label, the channels' labels
    differing (a label per plane is no channel name). ``()`` where there is no C axis; None for a channel without
    a name. ``walk``: its OME-XML walked (:func:`_ome_walk`; None without one)."""
    lead = list(zip(axes, shape))[: -(3 if axes.endswith(("YXS", "SYX")) else 2)]
    sizes = [n for _, n in lead]
    if "C" not in axes[: len(lead)]:
        return ()
    n = dict(lead)["C"]
    if walk is not None and tif.series[own_series(tif)].kind == "ome":
        pixels = walk.pixels
        if pixels is None:
            return ()
        names = [c.get("Name") or None for c in pixels if c.tag.endswith("Channel")]
        return tuple(names) if len(names) == n else ()
    if tif.is_imagej:
        labels = (tif.imagej_metadata or {}).get("Labels")
        if not isinstance(labels, (list, tuple)) or len(labels) != int(np.prod(sizes)):
            return ()
        names = []
        for c in range(n):
            seen = set()
            for zz in range(dict(lead).get("Z", 1)):
                index = [c if a == "C" else zz if a == "Z" else 0 for a, _ in lead]
                seen.add(str(labels[int(np.ravel_multi_index(index, sizes))]).strip())
            names.append(seen.pop() if len(seen) == 1 else None)
        if len(set(names)) < n or not all(names):
            return ()
        return tuple(names)
    return ()


#: seconds per time unit as ImageJ (``tunit``) and OME (``TimeIncrementUnit``) write them
_SECONDS = {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3, "msec": 1e-3, "min": 60.0,
            "minute": 60.0, "minutes": 60.0, "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0}


def _interval(tif, walk: _OmeWalk | None) -> float | None:
    """Seconds between the time points of the first series: OME ``TimeIncrement`` (and its unit), ImageJ
    ``finterval`` (and ``tunit``); None where none is recorded, or in a unit not known here. ``walk``: its OME-XML
    walked (:func:`_ome_walk`; None without one)."""
    import math

    value, unit = None, "s"
    if walk is not None and tif.series[own_series(tif)].kind == "ome":
        pixels = walk.pixels
        if pixels is not None and pixels.get("TimeIncrement"):
            value, unit = float(pixels.get("TimeIncrement")), pixels.get("TimeIncrementUnit") or "s"
    elif tif.is_imagej:
        meta = tif.imagej_metadata or {}
        if meta.get("finterval"):
            value, unit = float(meta["finterval"]), str(meta.get("tunit") or "sec")
    factor = _SECONDS.get(str(unit).strip().lower())
    if value is None or factor is None or not math.isfinite(value) or value <= 0:
        return None
    return float(f"{value * factor:.12g}")


def ome_set_first(path: str | Path) -> str | None:
    """The name of the file holding the metadata of the multi-file OME-TIFF set that the TIFF ``path`` continues
    (its planes are read through that file); None for any other file (unreadable ones too)."""
    layout = _readable_layout(Path(path))
    return None if layout is None else layout[6].continues


def _other_format_info(path: Path) -> StackInfo:
    """The layout of a file named .tif that is another image format (one image, as Pillow reads it)."""
    from devolens.io.images import pillow

    Image = pillow()  # the limits read_image reads it with
    try:
        with Image.open(path) as im:
            w, h = im.size
            bands = len(im.getbands())
            fmt = im.format
    except Exception:
        from devolens.io.video import renamed_video_words

        renamed = renamed_video_words(path)  # a video named .tif
        raise DevolensError("cannot read TIFF: not a TIFF file"
                            + (f"; {renamed}" if renamed else " (nor any other image format)"), path=path) from None
    if fmt == "TIFF":  # Pillow's own TIFF reader took it although tifffile's header check did not
        raise DevolensError("cannot read TIFF: unreadable header", path=path)
    return StackInfo("YX", (h, w)) if bands <= 2 else StackInfo("YXS", (h, w, bands))


def squeeze_axes(axes: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """``axes`` and ``shape`` without their axes of length 1 other than ``Y`` and ``X``: a ``1 x H x W``
    or ``H x W x 1`` array saved as such (tifffile's ``QYX``, ``YXQ``), a hyperstack with ``T=1`` or ``C=1``,
    is the image or stack it holds."""
    keep = [i for i, (a, n) in enumerate(zip(axes, shape)) if n != 1 or a in "YX"]
    return "".join(axes[i] for i in keep), tuple(shape[i] for i in keep)


def check_stack_z(z: str, option: str | None = None, modes: tuple[str, ...] = Z_MODES) -> None:
    """Raise a :class:`DevolensError` unless ``z`` is one of ``modes`` (:data:`Z_MODES`, or those a command takes;
    ``option`` names the setting; default ``z``, :func:`open_stack`'s argument, or ``z (--stack-z)`` while the
    ``devolens`` command runs: :func:`devolens.errors.option`)."""
    if z not in modes:
        if option is None:
            from devolens.errors import option as spell  # (the parameter hides the module's name)

            option = spell("z", flag="z (--stack-z)")
        raise DevolensError(f"{option} must be {'one of ' if len(modes) > 1 else ''}{', '.join(modes)}, got {z!r}")


def check_pages(pages: str) -> None:
    """Raise a :class:`DevolensError` unless ``pages`` is one of :data:`PAGES_MODES` (or ``"channels"``, what a
    chosen channel makes of ``"time"``: :func:`pages_with_channel`)."""
    if pages not in PAGES_READ:
        raise DevolensError(f"{option('pages', flag='pages (--pages)')} must be one of {', '.join(PAGES_MODES)}, "
                            f"got {pages!r}")


def pages_with_channel(pages: str, channel: int | None) -> str:
    """How the unlabelled pages of a plain multi-page TIFF are read when ``channel`` is chosen: ``"channels"`` for
    ``"time"`` (2 to 4 grey pages, :data:`CHANNEL_PAGES`, are then the channels: :func:`read_pages_as`), ``pages``
    itself otherwise (no channel chosen: time points; ``"z"``: the user said they are z planes)."""
    return "channels" if channel is not None and pages == "time" else pages


def read_pages_as(info: StackInfo, pages: str, path: str | Path | None = None) -> StackInfo:
    """``info`` with the unlabelled pages of a plain multi-page TIFF read as ``pages``: unchanged for
    ``"time"``; for ``"z"`` its one unlabelled axis (``I`` or ``Q``) becomes ``Z`` (see :func:`stack_info`); for
    ``"channels"`` (:func:`pages_with_channel`) a file of 2 to 4 grey pages and nothing else (:data:`CHANNEL_PAGES`)
    has them as ``C``, any other file is read as for ``"time"``."""
    check_pages(pages)
    if pages == "time" or not info.unlabelled:
        return info
    if pages == "channels":
        return _pages_as_channels(info) or info
    if len(info.unlabelled) > 1:
        raise DevolensError(f"{option('pages', repr('z'), cli_value='z')}: " + _unlabelled_text(info), path=path)
    lead = "".join("Z" if a in UNLABELLED else a for a, _ in info.leading)
    return StackInfo(lead + info.axes[len(lead):], info.shape)


def _pages_as_channels(info: StackInfo) -> StackInfo | None:
    """``info`` of a plain multi-page TIFF of 2 to 4 grey pages (:data:`CHANNEL_PAGES`; one unlabelled axis, no
    other: the pages of one shape and dtype that tifffile reads as one series) with its pages as a ``C`` axis;
    None for any other stack."""
    low, high = CHANNEL_PAGES
    if (len(info.leading) != 1 or len(info.unlabelled) != 1 or info.spatial != 2
            or not low <= info.unlabelled[0] <= high):
        return None
    return StackInfo("C" + info.axes[1:], info.shape)


def _unlabelled_text(info: StackInfo) -> str:
    """The error for a TIFF with several unlabelled axes (a NumPy array of 4 or more dimensions saved without
    axes): which is time, z or channel cannot be told."""
    sizes = ", ".join(str(n) for n in info.unlabelled)
    return (f"this TIFF has {len(info.unlabelled)} unlabelled axes, of sizes ({sizes}) (axes {info.axes}, shape "
            f"{info.shape}: an array saved without its axes), so which holds time, z planes or channels cannot be "
            "told; save it with its axes, e.g. tifffile.imwrite(path, array, imagej=True, metadata={'axes': "
            "'TZCYX'}) (the axes in the array's order), or in Fiji: Image > Hyperstacks > Re-order Hyperstacks, "
            "then File > Save As > Tiff")


def check_axes(info: StackInfo, path: str | Path | None = None) -> None:
    """Refuse a stack whose leading axes are not read as frames: an axis other than time (T), z (Z), channel (C)
    and the pages of a plain TIFF (I, Q), e.g. stage positions (each index would become time points, mixing
    embryos), or several unlabelled axes (:func:`_unlabelled_text`). Axes of length 1 were dropped already."""
    import tifffile

    other = [(a, n) for a, n in info.leading if a not in READ_AXES]
    if other:
        names = getattr(tifffile.TIFF, "AXES_NAMES", {})
        listed = ", ".join(f"{a} ({names.get(a, 'unknown')}, {n})" for a, n in other)
        a, n = other[0]
        raw = _series_axes(path) if path is not None else None  # the array tifffile reads keeps axes of length 1
        example = ""
        if raw is not None and raw.count(a) == 1:
            keep = "".join(x for x in raw if x != a)
            pick = ":, " * raw.index(a) + "i"
            example = (f", e.g. for i in range({n}): tifffile.imwrite(f'part{{i}}.tif', array[{pick}], "
                       f"metadata={{'axes': '{keep}'}})")
        raise DevolensError(
            f"this TIFF has axes {info.axes} (shape {info.shape}); devolens reads time (T), z (Z) and channel (C) "
            f"axes, not {listed}: its indices would be read as time points, mixing what they hold (stage "
            f"positions, say); save one file per index of {a} (one per position){example}", path=path)
    if len(info.unlabelled) > 1:
        raise DevolensError(_unlabelled_text(info), path=path)


def _series_axes(path: str | Path) -> str | None:
    """The axes of the series of a TIFF file devolens reads (:func:`own_series`) as ``tifffile.imread`` returns its
    array, axes of length 1 kept; None where the file cannot be read."""
    try:
        with open_tiff(path) as tif:
            s = tif.series[own_series(tif)]
            return str(s.get_axes(False) if hasattr(s, "get_axes") else s.axes)
    except Exception:  # noqa: BLE001 - only an example of the error depends on it
        return None


def samples_last(image: np.ndarray, planar: bool) -> np.ndarray:
    """An image with its RGB samples last (``H x W x S``): planar ``S x H x W`` data moved."""
    return np.ascontiguousarray(np.moveaxis(image, -3, -1)) if planar else image


def check_stack_options(info: StackInfo, z: str, channel: int | None, path: Path) -> None:
    """Refuse options the stack ``info`` of ``path`` cannot be read with (``z``, ``channel``), planes under
    2 x 2 pixels (no frame reader hands those on: the error names the file) and planes a few pixels wide in many
    pages (a channel-last image saved without axes: :func:`devolens.io.images.check_stack_planes`) and planes
    whose reading would not fit in the memory available (:func:`devolens.io.images.check_memory`, with the reader's
    peak: :func:`_plane_decoding`). Every reader of
    a stack's frames checks it here (segment, population, curate; a folder's stacks). With a ``channel``, the 2 to
    4 unlabelled pages of ``info`` read as time points are its channels (:func:`pages_with_channel`)."""
    from devolens.io.images import BANDS_ADVICE, check_memory, check_stack_planes

    check_stack_z(z)
    if channel is not None:
        info = read_pages_as(info, "channels", path)
    yx = info.shape[-3:-1] if info.axes.endswith("YXS") else info.shape[-2:]
    check_stack_planes(yx[0], yx[1], int(np.prod([n for _, n in info.leading] or [1])), path)
    check_axes(info, path)
    layout = _readable_layout(Path(path))
    if layout is not None and layout[5]:
        one = not info.leading  # a single image: a well saved as TIFF is read in bands elsewhere; a stack's planes
        plane = info.shape[-info.spatial:]
        project = z == "project" and any(a == "Z" and n > 1 for a, n in info.leading)
        factor, extra = _plane_decoding(Path(path), plane, layout[5], project)
        check_memory(plane, layout[5], path, what="an image" if one else "planes",
                     advice=BANDS_ADVICE if one else "", factor=factor, extra_bytes=extra)
    if info.channels > 1 and channel is None:
        listed = _listed_channels(path, info.channels)
        raise DevolensError(
            f"this stack has {info.channels} channels (axes {info.axes}, shape {info.shape}): choose one with "
            f"{option('channel', f'0..{info.channels - 1}')}" + (f" ({listed})" if listed else ""), path=path)
    if channel is not None and not 0 <= channel < info.channels:
        listed = _listed_channels(path, info.channels)
        raise DevolensError(f"{option('channel', str(channel))} is out of range: this stack has {info.channels} "
                            f"channel(s) (0..{info.channels - 1}{'; ' + listed if listed else ''})"
                            + _pages_not_channels(info, path), path=path)


def _plane_decoding(path: Path, plane: tuple[int, ...], dtype: str, project: bool) -> tuple[float, int]:
    """What :func:`iter_stack_frames` takes at its peak while it reads a frame of planes of shape ``plane`` and
    ``dtype`` of the TIFF ``path``, for :func:`devolens.io.images.check_memory`: ``(factor, extra_bytes)``. A page's
    compressed strips or tiles read whole and decoded (:data:`~devolens.io.images.TIFF_DECODE_FACTOR`, the page's
    compressed bytes besides), an uncompressed plane read straight into its array (1), and where ``project``, the
    maximum projection's accumulator besides (1 plane). Measured as read_image's factors were (6 planes of 5000 x 5000
    uint16, tifffile 2026.3): planes one at a time, uncompressed 1.00 x, zlib 1.73 x and LZW 2.09 x besides their
    compressed bytes; projected, each 1 more. Planes stored as one block are weighed whole where they are decoded
    (:func:`iter_stack_frames`), planes under :data:`~devolens.io.images.MEMORY_CHECK_BYTES` (not weighed) open
    nothing: ``(1.0, 0)``."""
    from devolens.io.images import MEMORY_CHECK_BYTES, TIFF_DECODE_FACTOR

    factor, extra = 1.0, 0
    if int(np.prod(plane)) * np.dtype(dtype).itemsize < MEMORY_CHECK_BYTES:
        return factor, extra
    try:
        with open_tiff(path) as tif:
            series = tif.series[own_series(tif)]
            key = series.keyframe
            # planes not one per page (stored as one block): decoded whole, weighed whole where they are read
            per_page = len(series.pages) == int(series.size) // max(1, int(np.prod(plane)))
            if per_page and key is not None and getattr(key, "compression", 1) != 1:
                factor = TIFF_DECODE_FACTOR
                extra = sum(int(n) for n in getattr(key, "databytecounts", ()) or ())
    except Exception:  # noqa: BLE001 - a file that cannot be read: the reading says what is wrong
        pass
    return factor + (1.0 if project else 0.0), extra


def _pages_not_channels(info: StackInfo, path: str | Path) -> str:
    """For the refusal of a channel a stack lacks: where its pages carry no axis labels (a plain multi-page TIFF),
    that its 2 to 4 pages were read as its channels, or that more are read as time points, not as channels, and
    how to save them so that they are; ``""`` otherwise."""
    if info.channels > 1:
        try:
            own = stack_info(path)  # the file's own axes: a C axis, or pages read as channels
        except DevolensError:
            return ""
        return "" if "C" in own.axes else f"; its {info.channels} pages carry no axis labels and were read as channels"
    if len(info.unlabelled) != 1:
        return ""
    pages = info.unlabelled[0]
    axes = "".join("C" if a in UNLABELLED else a for a in info.axes)
    low, high = CHANNEL_PAGES
    return (f"; its {pages} pages carry no axis labels and are read as time points "
            f"({option('pages', repr('z'), cli_value='z')}: as z planes), not as channels (only {low} to {high} grey "
            f"pages are): to pick one as a channel, save the file with a channel axis (Fiji: Image > "
            f"Hyperstacks > Stack to Hyperstack with {pages} channels, then File > Save As > Tiff; Python: "
            f"tifffile.imwrite(path, array, imagej=True, metadata={{'axes': '{axes}'}})), or each page as its own "
            f"image (Fiji: Image > Stacks > Stack to Images)")


def _listed_channels(path: str | Path, channels: int) -> str:
    """The channels of the stack ``path`` by index and name, as its file names them (:func:`channel_names`: OME
    ``Channel Name``, ImageJ labels): ``"0: H2B-GFP, 1: PH-mCherry"`` (``"1: (no name)"`` for one the file leaves
    unnamed), for the errors that ask for a channel; ``""`` where the file names none."""
    names = channel_names(path)
    if len(names) != channels or not any(names):
        return ""
    return ", ".join(f"{i}: {name if name else '(no name)'}" for i, name in enumerate(names))


def open_stack(path: str | Path, *, z: str = "project", channel: int | None = None,
               pages: str = "time") -> tuple[Iterator[np.ndarray], int] | None:
    """The frames of a TIFF stack and their number, or None when the file is a single image.

    Options are checked now (a bad ``z``, ``channel`` or ``pages`` fails before any frame is
    read); frames are then read lazily by :func:`iter_stack_frames`. With a ``channel``, the 2 to 4
    unlabelled pages of a plain multi-page TIFF are its channels (:func:`pages_with_channel`): one frame.
    """
    path = Path(path)
    check_pages(pages)
    pages = pages_with_channel(pages, channel)
    info = stack_info(path, pages)
    if not info.is_stack:
        return None
    check_stack_options(info, z, channel, path)
    return iter_stack_frames(path, z=z, channel=channel, pages=pages), info.frames(z)


def iter_stack_frames(path: str | Path, *, z: str = "project", channel: int | None = None,
                      pages: str = "time") -> Iterator[np.ndarray]:
    """Stream the 2-D frames of a TIFF stack, reading a few planes at a time.

    Parameters
    ----------
    path : str or Path
        TIFF file (ImageJ hyperstack, OME-TIFF or plain multi-page TIFF).
    z : {"project", "slices"}
        Z planes: their maximum-intensity projection (one frame per time point) or one
        frame each (time-major order).
    channel : int, optional
        Channel index along a ``C`` axis; required when there are several channels. Given, the
        2 to 4 pages of a plain multi-page TIFF are its channels (:func:`pages_with_channel`).
    pages : {"time", "z"}
        The pages of a plain multi-page TIFF (no axis labels): time points, or the z planes
        of one stack (see :func:`stack_info`).

    Yields
    ------
    ndarray
        ``(H, W)`` (or ``(H, W, S)`` for RGB samples), the file's dtype.

    Raises
    ------
    DevolensError
        Unreadable file, several channels and no ``channel``, bad options; also mid-stream
        when a plane cannot be decoded.
    """
    import tifffile

    path = Path(path)
    check_pages(pages)
    info = stack_info(path, pages_with_channel(pages, channel))
    check_stack_options(info, z, channel, path)
    lead = info.leading
    names = [a for a, _ in lead]
    sizes = [n for _, n in lead]
    seq_axes = [i for i, a in enumerate(names) if a not in ("Z", "C")]
    z_axes = [i for i, a in enumerate(names) if a == "Z"]
    c_axes = [i for i, a in enumerate(names) if a == "C"]
    seq_shape = [sizes[i] for i in seq_axes]
    z_shape = [sizes[i] for i in z_axes]

    def index(seq: tuple[int, ...], zz: tuple[int, ...]) -> int:
        full = [0] * len(sizes)
        for i, v in zip(seq_axes, seq):
            full[i] = v
        for i, v in zip(z_axes, zz):
            full[i] = v
        for i in c_axes:
            full[i] = channel or 0
        return int(np.ravel_multi_index(full, sizes)) if sizes else 0

    with open_tiff(path) as tif:
        series = tif.series[own_series(tif)]
        pages = series.pages
        whole = None
        contiguous = None
        trailing = info.shape[len(sizes):]
        if len(pages) != int(np.prod(sizes or [1])):
            # planes not stored one per page: an ImageJ hyperstack as Fiji saves it (one page holding the layout,
            # the planes stored one after another: every file over 4 GB) or a single page holding the whole array.
            # Uncompressed and contiguous, each plane is read from its offset, one at a time (a memory map would
            # leave every plane read so far in the process's memory: the whole file by the end); otherwise the
            # memory map, or the whole array when the data are compressed
            if series.dataoffset is not None and series.dtype is not None:
                holder = series.pages[0].parent  # the file that holds the data, in its byte order
                dtype = np.dtype(series.dtype).newbyteorder(holder.byteorder)
                contiguous = (holder.filehandle.path, int(series.dataoffset), dtype)
            else:
                try:
                    whole = tifffile.memmap(path)
                except Exception:
                    from devolens.io.images import TIFF_DECODE_FACTOR, _tiff_compressed_bytes, check_memory

                    # decoded whole, as read_image decodes a TIFF: its peak, and its compressed bytes besides
                    check_memory(series.shape, series.dtype, path, what="a stack stored as one block",
                                 factor=TIFF_DECODE_FACTOR, extra_bytes=_tiff_compressed_bytes(series))
                    try:
                        whole = series.asarray()
                    except MemoryError:
                        from devolens.io.images import out_of_memory

                        raise out_of_memory("decoding this stack (stored as one block)", path) from None
                whole = whole.reshape(tuple(sizes) + trailing)
        held = open(contiguous[0], "rb") if contiguous is not None else None  # noqa: SIM115 (closed below)
        reopened: list = []

        def plane(i: int) -> np.ndarray:
            try:
                if contiguous is not None:
                    _, start, dtype = contiguous
                    arr = np.empty(trailing, dtype)
                    held.seek(start + i * arr.nbytes)
                    if held.readinto(memoryview(arr).cast("B")) != arr.nbytes:
                        raise ValueError("the file ends before this plane")
                    if not dtype.isnative:  # ImageJ writes big-endian: swapped in place, as tifffile's pages are
                        arr = arr.byteswap(inplace=True).view(dtype.newbyteorder("="))
                elif whole is not None:
                    arr = np.asarray(whole.reshape((-1,) + trailing)[i])
                else:
                    # a multi-file OME set: pages of the other files, whose handles tifffile has closed. Opened again
                    # here (closed at the end), as tifffile would, without its warning about it: nothing for the user
                    # to do. No warnings.catch_warnings here: this runs in a reader's thread (ReadAhead), and its exit
                    # puts back the filters of the whole process as they were on entry, dropping those the main
                    # thread added meanwhile (PyTorch's warnings then reached the terminal)
                    fh = pages[i].parent.filehandle
                    if fh.closed:
                        with fh.lock:
                            fh.open()
                        reopened.append(fh)
                    arr = pages[i].asarray()
            except MemoryError:  # a plane with the decoder's copies
                from devolens.io.images import out_of_memory

                raise out_of_memory(f"reading plane {i}", path) from None
            except Exception as exc:
                raise DevolensError(f"cannot read plane {i}: {exc}", path=path) from None
            return samples_last(arr, info.planar)

        try:
            for seq in np.ndindex(*seq_shape) if seq_shape else [()]:
                if z == "slices":
                    for zz in np.ndindex(*z_shape) if z_shape else [()]:
                        yield plane(index(seq, zz))
                else:
                    acc = None
                    for zz in np.ndindex(*z_shape) if z_shape else [()]:
                        p = plane(index(seq, zz))
                        acc = p.copy() if acc is None else np.maximum(acc, p, out=acc)
                        del p  # (not held while the next plane is read: the accumulator and one plane at a time)
                    yield acc
        finally:
            if held is not None:
                held.close()
            for fh in reopened:
                fh.close()


def channel_names(path: str | Path) -> tuple:
    """The names of a TIFF's channels along C (OME ``Channel Name``, or ImageJ plane labels that name channels),
    None for a channel without one; ``()`` where the file gives none (or is no readable TIFF)."""
    layout = _readable_layout(Path(path))
    return () if layout is None else layout[6].channels


def frame_interval(path: str | Path) -> float | None:
    """Seconds between a TIFF's time points as its metadata record them (ImageJ ``finterval``, OME
    ``TimeIncrement``); None where none is recorded (or it is no readable TIFF)."""
    layout = _readable_layout(Path(path))
    return None if layout is None else layout[6].interval


def stack_reading(path: str | Path, *, z: str = "project", channel: int | None = None,
                  pages: str = "time") -> dict | None:
    """How the TIFF stack ``path`` is read into frames, for the records and the console: its axes and shape (axes of
    length 1 dropped), its time points (and the seconds between them, where recorded), its z planes and what was
    done with them, its channels and the one read (and its name, where the file gives one), and all that in words
    (``read``: "axes TZCYX, shape (5, 16, 2, 256, 376): 5 time points 60 s apart; max projection of 16 z-planes;
    channel 0 (H2B-GFP) of 2"; "axes QYX, shape (2, 512, 512): 2 pages without axis labels read as channels;
    channel 1 of 2", where a ``channel`` makes them so: :func:`pages_with_channel`); ``ome_image`` too for a file of
    a set that stores one OME image per file (:func:`ome_image`). None for anything that is not a readable TIFF
    stack."""
    path = Path(path)
    if not path.is_file() or not reads_as_tiff(path):
        return None
    try:
        raw = stack_info(path)
        info = read_pages_as(raw, pages_with_channel(pages, channel), path)
    except DevolensError:
        return None
    if not info.is_stack:
        return None
    names = channel_names(path)
    name = names[channel] if channel is not None and 0 <= channel < len(names) else None
    labelled_t = "T" in raw.axes[: len(raw.leading)]
    interval = frame_interval(path) if labelled_t and info.times > 1 else None
    words = []
    if info.times > 1:
        words.append(f"{info.times} time points" + (f" {interval:g} s apart" if interval else "")
                     if labelled_t else f"{info.times} pages read as time points")
    if info.planes > 1:
        words.append(f"max projection of {info.planes} z-planes" if z == "project" else
                     f"each of {info.planes} z-planes a frame (frame t x {info.planes} + z)")
    if info.channels > 1 and raw.channels == 1:  # a plain TIFF's pages, read as channels (a channel was chosen)
        words.append(f"{info.channels} pages without axis labels read as channels")
    if info.channels > 1 or channel is not None:
        words.append(f"channel {channel or 0}" + (f" ({name})" if name else "") + f" of {info.channels}")
    image = ome_image(path)
    if image is not None:
        words.append(f"OME image {image['place']} of {image['images']}, {image['id']}"
                     + (f" ({image['name']})" if image["name"] else "") + ", the one stored in this file")
    return {"axes": raw.axes, "shape": list(raw.shape), "time_points": info.times, "interval_s": interval,
            "z_planes": info.planes, "z": z if info.planes > 1 else None, "channels": info.channels,
            "channel": channel, "channel_name": name, **({"ome_image": image} if image is not None else {}),
            "read": f"axes {raw.axes}, shape {tuple(raw.shape)}: " + "; ".join(words)}


def ome_image(path: str | Path) -> dict | None:
    """The image read from an OME-TIFF whose metadata list several images stored in several files (Micro-Manager's
    one file per stage position, each carrying the whole OME-XML): the one whose planes this file stores, as
    ``{"id": "Image:1", "name": "Pos1", "place": 2, "images": 3}`` (its name None where the XML gives none); None
    for any other file."""
    layout = _readable_layout(Path(path))
    if layout is None or layout[6].image is None:
        return None
    image_id, name, place, images = layout[6].image
    return {"id": image_id, "name": name, "place": place, "images": images}


def busiest_planes(path: str | Path, *, channel: int | None = None, pages: str = "time", n: int = 5,
                   keep=None) -> list[np.ndarray]:
    """The ``n`` z-planes of the first time point of a z-stack with the most signal (mean above the plane's 5th
    percentile), in z order: single planes from the middle of the stack, where the specimen is widest, to judge
    what the stack shows (its first frames are the sparse top planes, its projection a dense overlay of many
    planes). ``keep`` (a function of a plane) gives what is kept of each (the plane itself by default). ``[]`` for
    a file without several z-planes, or one that cannot be read."""
    import itertools

    path = Path(path)
    try:
        info = stack_info(path, pages)
    except DevolensError:
        return []
    if info.planes <= 1:
        return []
    frames = iter_stack_frames(path, z="slices", channel=channel, pages=pages)
    best: list = []
    try:
        for k, plane in enumerate(itertools.islice(frames, info.planes)):
            sub = np.asarray(plane[::4, ::4], np.float32)
            if sub.ndim == 3:
                sub = sub.mean(axis=2)
            sub = sub[np.isfinite(sub)]
            score = float(sub.mean() - np.percentile(sub, 5)) if sub.size else 0.0
            best = sorted(best + [(score, k, plane if keep is None else keep(plane))],
                          key=lambda item: (-item[0], item[1]))[:n]
    except DevolensError:
        return []
    finally:
        frames.close()
    return [plane for _, _, plane in sorted(best, key=lambda item: item[1])]


def unlabelled_pages_note(path: str | Path, pages: str = "time") -> str | None:
    """A note for a TIFF stack whose planes carry no axis labels (a plain multi-page TIFF, tifffile's
    axes ``I`` or ``Q``) read as time points (``pages="time"``), which is wrong for a z-stack (and, for 2 to 4
    pages, for the channels of one image, which ``--channel`` reads); or, ``pages="channels"``
    (:func:`pages_with_channel`), read as channels, which is wrong for a short timelapse. For a
    folder, its first TIFF member that is a stack decides. None for anything else (not a TIFF, a single
    image, ImageJ/OME axes, ``pages="z"``)."""
    path = Path(path)
    if pages not in ("time", "channels"):
        return None
    if path.is_dir():
        from devolens.io.frames import folder_files

        for p in folder_files(path):
            if reads_as_tiff(p):
                try:
                    info = stack_info(p)
                except DevolensError:
                    continue
                if info.is_stack:
                    return _pages_note(info, p.name + " (and any other TIFF in the folder like it)", pages)
        return None
    if not path.is_file() or not reads_as_tiff(path):
        return None
    try:
        return _pages_note(stack_info(path), path.name, pages)
    except DevolensError:
        return None


def z_projection_note(path: str | Path, stack_z: str = "project", slices_advice: bool = True) -> str | None:
    """A note for a TIFF file whose own axes label a Z axis of several planes and no time axis, read with
    ``stack_z="project"``: all its planes became one frame. Right for one z-stack, but a timelapse saved with its
    time points as Z (a common Fiji mix-up: Slices N, Frames 1) loses all but that one frame without a word.

    None for anything else: ``stack_z="slices"``, a stack with a time axis (or any other sequence axis), one
    plane, a Z axis made by ``--pages z`` from unlabelled pages (the user said so), a z-stack whose file records
    its z step (ImageJ ``spacing``, OME ``PhysicalSizeZ``: a microscope's z-stack, segmented as such every day,
    gets no note), a folder (one z-stack per file is the usual layout), not a TIFF, an unreadable file.
    ``slices_advice=False``: without "or give --stack-z slices" (population, which projects only)."""
    path = Path(path)
    if stack_z != "project" or not path.is_file() or not reads_as_tiff(path):
        return None
    try:
        info = stack_info(path)  # the file's own labels (pages read as time points: no Z made of them)
    except DevolensError:
        return None
    if info.planes <= 1 or info.times > 1 or _z_step_recorded(path):
        return None
    return (f"note: the {info.planes} z-planes of {path.name} were projected into 1 frame (--stack-z project); if "
            "they are time points (a timelapse saved with its axes as Z), re-save the stack with a T axis (Fiji: "
            f"Image > Properties, Slices 1, Frames {info.planes})"
            + (" or give --stack-z slices" if slices_advice else ""))


def _z_step_recorded(path: Path) -> bool:
    """Whether a TIFF records the step between its z-planes (ImageJ's ``spacing``, OME's ``PhysicalSizeZ``): what
    a microscope's z-stack carries and a timelapse saved as Z by mistake does not (False if unreadable)."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            if tif.is_ome and tif.ome_metadata and "PhysicalSizeZ=" in tif.ome_metadata:
                return True
            return bool(tif.is_imagej and (tif.imagej_metadata or {}).get("spacing"))
    except Exception:  # noqa: BLE001 - no step known: the note is the safe side
        return False


def _pages_note(info: StackInfo, name: str, pages: str = "time") -> str | None:
    """The note of :func:`unlabelled_pages_note` for a stack ``name`` whose axes are ``info`` (its own, pages not
    read as anything yet; None unless all its leading axes are unlabelled), its pages read as ``pages``."""
    if not info.is_stack or not info.unlabelled or len(info.unlabelled) != len(info.leading):
        return None
    n = int(np.prod(info.unlabelled))
    few = _pages_as_channels(info) is not None  # 2 to 4 grey pages: channels, as often as time points
    if pages == "channels" and few:
        return (f"note: the {n} pages of {name} carry no axis labels and were read as channels, as --channel asks "
                "(one page, one frame); if they are time points or z planes, leave out --channel (or save the "
                "stack with its axes: Fiji, Image > Properties)")
    return (f"note: the {n} pages of {name} carry no axis labels and were read as time points; if they are the z "
            "planes of one stack, add --pages z" + ("; if they are channels (a stain per page), give --channel N to "
                                                    "read page N alone" if few else "")
            + " (or save the stack with its axes: Fiji, Image > Properties)")


#: the TIFFs of a folder :func:`planar_rgb_note` looks at
_NOTE_LOOKS = 8


def planar_rgb_note(path: str | Path) -> str | None:
    """A note for a TIFF holding one RGB(A) image with its 3 or 4 samples stored as planes, first (shape
    ``(3|4, H, W)``, no ImageJ or OME axes): read as one colour image, it is also what ``tifffile.imwrite`` makes
    of a stack of 3 or 4 grey frames by default. For a folder, its first TIFF member like that. None for
    anything else. A folder's first few TIFFs are looked at (one program saved them alike; a folder of
    thousands is not parsed again for a note)."""
    path = Path(path)
    if path.is_dir():
        from devolens.io.frames import folder_files

        tiffs = [p for p in folder_files(path) if reads_as_tiff(p)]
        for p in tiffs[:_NOTE_LOOKS]:
            n = _planar_rgb(p)
            if n:
                return _planar_rgb_text(n, p.name + " (and any other TIFF in the folder like it)")
        return None
    if not reads_as_tiff(path):
        return None
    n = _planar_rgb(path)
    return _planar_rgb_text(n, path.name) if n else None


def _planar_rgb(path: Path) -> int:
    """The samples of a planar RGB(A) TIFF without ImageJ or OME axes (``SYX``, 3 or 4 samples); 0 otherwise."""
    layout = _readable_layout(path)
    if layout is None:
        return 0
    axes, shape, _, planar_rgb = layout[:4]
    return shape[0] if planar_rgb and axes == "SYX" and shape[0] in (3, 4) else 0


def _readable_layout(path: Path):
    """:func:`_tiff_layout` of a TIFF file (parsed once with stack_info's); None for anything else (not a file,
    not a TIFF, unreadable)."""
    try:
        if not path.is_file() or not is_tiff(path):
            return None
        return _tiff_layout(path)
    except Exception:
        return None


def _planar_rgb_text(n: int, name: str) -> str:
    return (f"note: {name} was read as one colour image ({n} samples); if these are {n} frames or z-planes, save "
            f"them with photometric='minisblack' (tifffile.imwrite's default stores {n} planes as one RGB image)")


def other_series_note(path: str | Path) -> str | None:
    """:func:`several_series_note` and, for a folder, :func:`split_set_note`, as one note (``"...; also, ..."``);
    None where neither has one."""
    return join_notes(several_series_note(path), split_set_note(path))


def join_notes(first: str | None, second: str | None) -> str | None:
    """Two notes (``"note: ..."``, or None) as one: ``"note: A; also, B"``."""
    if first is None or second is None:
        return first or second
    return f"{first}; also, {second[len('note: '):]}"


def split_set_note(path: str | Path) -> str | None:
    """A note for a folder some of whose files were left out of its frames as the continuations of another file's
    multi-file OME-TIFF set (:func:`devolens.io.frames.folder_continuations`): their planes were read through
    that file. None for anything else (a file, a folder without such members)."""
    path = Path(path)
    if not path.is_dir():
        return None
    from devolens.io.frames import folder_continuations

    cont = folder_continuations(path)
    if not cont:
        return None
    firsts = sorted(set(cont.values()))
    names = ", ".join(p.name for p in list(cont)[:3]) + (f" and {len(cont) - 3} more" if len(cont) > 3 else "")
    one = len(cont) == 1
    return (f"note: {names} {'continues' if one else 'continue'} the multi-file OME-TIFF set of "
            f"{', '.join(firsts)}, whose OME series spans {'it' if one else 'them'}: "
            f"{'its' if one else 'their'} planes were read as part of that set, not as frames of "
            f"{'its' if one else 'their'} own")


def several_series_note(path: str | Path) -> str | None:
    """A note for a TIFF file that holds several image series (an OME-TIFF of several stage positions,
    a file written in several parts): only the first series is read (the series of a multi-file OME set stored in
    other files, one per stage position, are not counted: this file's own is read). For a folder, one note for
    its TIFF members that do (each read by the series it reads alone, :func:`own_series`). None for anything else (not a TIFF file, one
    series, a folder without such members)."""
    path = Path(path)
    advice = ("save each series as its own TIFF (Fiji: Bio-Formats Importer, 'Open all series', then Save As) to "
              "analyse the others")
    if path.is_dir():
        from devolens.io.frames import folder_files

        several = [(p, found) for p in folder_files(path) if reads_as_tiff(p)
                   for found in [_other_series(p)] if found]
        if len(several) == 1:
            p, (n, axes, shape) = several[0]
            return (f"note: {p.name} in this folder holds {n} image series (several stage positions, or images "
                    f"saved into one file); only the first (axes {axes}, shape {shape}) was read: {advice}")
        if several:
            names = ", ".join(p.name for p, _ in several[:3]) + (", ..." if len(several) > 3 else "")
            return (f"note: {len(several)} TIFF files of this folder hold several image series ({names}); only the "
                    f"first series of each was read: {advice}")
        return None
    if not path.is_file() or not reads_as_tiff(path):
        return None
    found = _other_series(path)
    if found is None:
        return None
    n, axes, shape = found
    return (f"note: {path.name} holds {n} image series (several stage positions, or images saved into one "
            f"file); only the first (axes {axes}, shape {shape}) was read: {advice}")


def _other_series(path: Path) -> tuple[int, str, tuple[int, ...]] | None:
    """``(series, axes, shape of the first)`` of a TIFF file holding several image series; None otherwise (one
    series, not a TIFF, unreadable)."""
    layout = _readable_layout(path)
    if layout is None:
        return None
    axes, shape, n = layout[:3]
    return (n, axes, shape) if n > 1 else None


#: the words for micrometres: as ImageJ and OME metadata (``micron``, ``um``, ``µm`` with the micro sign, the Greek
#: mu or ImageJ's escaped ``\u00b5m``: :func:`_unit_key`), tables' units rows (``(micron)``) and a ``--diameter``
#: (``7um``, ``7 microns``) write them, compared lower-case (:func:`to_microns`, :func:`microns_in`)
MICRON_WORDS = ("um", "µm", "micron", "microns", "micrometer", "micrometers", "micrometre", "micrometres")
#: micrometres per unit of the other lengths a calibration may be in (OME's PhysicalSizeXUnit, ImageJ's ``unit``, a
#: TIFF's ResolutionUnit): inch and ImageJ's ``pixel`` are left out (a display's or a printer's dots per inch, or an
#: uncalibrated image: no microscope's pixel size)
_MICRONS_PER = {**dict.fromkeys(MICRON_WORDS, 1.0),
                **dict.fromkeys(("nm", "nanometer", "nanometers", "nanometre", "nanometres"), 1e-3),
                **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), 1e3),
                **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres"), 1e4),
                **dict.fromkeys(("m", "meter", "meters", "metre", "metres"), 1e6),
                **dict.fromkeys(("å", "angstrom", "angstroms"), 1e-4), "pm": 1e-6}
#: TIFF ResolutionUnit codes (the tag's) of lengths: centimetre (the standard's), millimetre and micrometre (tifffile
#: writes those too); 2, the inch, is left out (72 or 300 dpi is a display or print default, not a pixel size)
_RESOLUTION_UNITS = {3: "cm", 4: "mm", 5: "µm"}
#: ... but a resolution per inch (code 2) that is no such default is a pixel size (a microscope's 2 µm pixels: 12700
#: per inch): converted, except a whole number of dots per inch up to this (72, 96, 150, 300, 600, 1200: a screen's or
#: a printer's, pixels of 21 µm or more) or a scanner's (:data:`SCANNER_DPI`), which stay "no calibration"
SCREEN_DPI_MOST = 1200
SCANNER_DPI = (2400, 4800, 9600)


def _screen_dpi(per_inch: float) -> bool:
    """Whether a resolution of ``per_inch`` pixels per inch is a graphics program's default, not a pixel size."""
    whole = abs(per_inch - round(per_inch)) < 1e-6
    return whole and (per_inch <= SCREEN_DPI_MOST or round(per_inch) in SCANNER_DPI)
#: a length in micrometres as text: a number (a sign allowed: refused later, as the number it is) and a micrometre word
_MICRON_TEXT = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*(?:"
                          + "|".join(sorted(map(re.escape, MICRON_WORDS), key=len, reverse=True)) + r")\s*$")


def _unit_key(unit) -> str:
    """A unit as :data:`MICRON_WORDS` and :data:`_MICRONS_PER` spell it: lower-case, the Greek mu (and ImageJ's
    escaped micro sign) as the micro sign."""
    return str(unit).strip().lower().replace("\\u00b5", "µ").replace("\u03bc", "µ")


def to_microns(value: float, unit) -> float | None:
    """``value`` ``unit`` in micrometres (``to_microns(200, "nm")``: 0.2); None for a unit that is no metric length
    (``inch``, ImageJ's ``pixel``, none). The one table of length units for the pixel sizes (:func:`pixel_size`),
    a ``--diameter`` in micrometres (the CLI) and the library's refusal of one (``check_diameter``)."""
    factor = _MICRONS_PER.get(_unit_key(unit)) if unit is not None else None
    return None if factor is None else float(value) * factor


def microns_in(text) -> float | None:
    """The micrometres of a length written as text in micrometres (``7um``, ``7 µm``, ``7 microns``, any case);
    None for any other text (a number of pixels, ``auto``, another unit)."""
    found = _MICRON_TEXT.match(_unit_key(text)) if isinstance(text, str) else None
    return float(found.group(1)) if found else None


def pixel_size(path: str | Path, unreadable=None) -> tuple[float, float, str] | None:
    """The physical size of a TIFF's pixels, ``(x, y, unit)``, as ImageJ (its resolution tags and ``unit``; without
    a unit, a ResolutionUnit of cm, mm or µm, as ImageJ itself reads it), OME (``PhysicalSizeX``/``Y`` and their
    units; x and y in two units both in ``µm``) or a plain TIFF's resolution per cm, mm or µm (in ``µm``) records
    it; the unit ``µm`` for every spelling of micrometres (:data:`MICRON_WORDS`), else as the file writes it
    (:func:`to_microns` converts it). None for any other file, or one that records none (tifffile's default
    resolution 1 per no unit); ``unreadable`` for a TIFF whose header cannot be read (truncated, empty), which the
    readers report as they meet it. Written into label images so that Fiji and napari show them calibrated, as the
    input was. Read with the file's layout (one parse of its header per command).

    Raises
    ------
    DevolensError
        ``path`` names no file (missing, or a folder): never taken for a file that records no pixel size."""
    path = checks.path(path, "pixel_size expects the path of an image file (str or Path)")
    if not path.exists():
        raise DevolensError("no such file", path=path)
    if path.is_dir():
        raise DevolensError("is a folder, not an image file", path=path)
    if not reads_as_tiff(path):  # a TIFF stack named .png is calibrated as its .tif copy is
        return None
    try:
        if not path.is_file() or not is_tiff(path):
            return None
        return _tiff_layout(path)[4]
    except Exception:  # noqa: BLE001 - is_tiff (an empty file) and the header's parse: the readers say why
        return unreadable


def _calibration(tif, walk) -> tuple[float, float, str] | None:
    """:func:`pixel_size` of an open ``tifffile.TiffFile`` (None where it records none or cannot be read);
    ``walk``: its OME-XML walked (:func:`_ome_walk`; None without one), or ``_UNPARSED``."""
    try:
        if tif.is_ome and tif.ome_metadata:
            if walk is _UNPARSED:
                return None
            pixels = walk.pixels
            if pixels is not None and pixels.get("PhysicalSizeX"):
                sx = float(pixels.get("PhysicalSizeX"))
                ux = pixels.get("PhysicalSizeXUnit") or "µm"
                sy, uy = float(pixels.get("PhysicalSizeY") or sx), pixels.get("PhysicalSizeYUnit") or "µm"
                if pixels.get("PhysicalSizeY") and _unit_key(uy) != _unit_key(ux):
                    # x in nm, y in µm: both in µm; a unit that is no length, no calibration (not a wrong one)
                    x, y = to_microns(sx, ux), to_microns(sy, uy)
                    return None if x is None or y is None else _sized(x, y, "µm")
                return _sized(sx, sy, ux)
        tags = tif.pages.first.tags
        xres, yres = tags.get("XResolution"), tags.get("YResolution")
        unit = (tif.imagej_metadata or {}).get("unit") if tif.is_imagej else None
        if unit:
            if xres is not None:
                px, py = _per_unit(xres, yres)
                if px > 0 and py > 0 and not (px == 1.0 and py == 1.0 and unit in ("pixel", "pixels")):
                    return _sized(1.0 / px, 1.0 / py, unit)
        elif not tif.is_ome:  # a plain TIFF (or ImageJ's without a unit) per cm (as devolens writes uint32 and 3-D
            # labels), mm or µm (as tifffile writes them): ImageJ reads the centimetre's too
            code = tags.get("ResolutionUnit")
            length = _RESOLUTION_UNITS.get(int(code.value)) if code is not None else None
            if xres is not None and length is not None:
                px, py = _per_unit(xres, yres)
                if px > 0 and py > 0:
                    return _sized(to_microns(1.0 / px, length), to_microns(1.0 / py, length), "µm")
            if xres is not None and code is not None and int(code.value) == 2:  # per inch: a microscope's, unless
                px, py = _per_unit(xres, yres)  # a screen's or a printer's default (72, 96, 300 dpi...)
                if px > 0 and py > 0 and not (_screen_dpi(px) and _screen_dpi(py)):
                    return _sized(25400.0 / px, 25400.0 / py, "µm")
    except Exception:  # noqa: BLE001 - no calibration is the answer for metadata it cannot read
        return None
    return None


def _per_unit(xres, yres) -> tuple[float, float]:
    """Pixels per unit along x and y from the TIFF XResolution and YResolution tags (rationals; y as x without its
    tag; 0 for a zero denominator)."""
    return tuple(float(v[0]) / float(v[1]) if v[1] else 0.0 for v in (xres.value, (yres or xres).value))


def _sized(sx: float, sy: float, unit: str) -> tuple[float, float, str] | None:
    """``(x, y, unit)`` as :func:`pixel_size` gives it (micrometres named ``µm`` however written); None for sizes
    that are not positive finite numbers."""
    import math

    if not (math.isfinite(sx) and math.isfinite(sy) and sx > 0 and sy > 0):
        return None
    unit = str(unit).strip()
    sx, sy = (float(f"{v:.12g}") for v in (sx, sy))  # 1 / (20/13 per unit): 0.65, not 0.6499999999999999
    return sx, sy, "µm" if _unit_key(unit) in MICRON_WORDS else unit
