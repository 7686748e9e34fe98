"""Frames of a path, streamed: a video, a folder of images (or a render output), a TIFF stack.

>>> frames, names, total = iter_path_frames("movie.mp4")   # doctest: +SKIP
>>> for frame in frames:                                   # doctest: +SKIP
...     ...

Light on purpose (NumPy and the readers only): the inference commands open their input with
it before the heavy libraries load.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from devolens.errors import DevolensError, listed
from devolens.io.atomic import Exhausted
from devolens.io.images import IMAGE_SUFFIXES as READABLE_SUFFIXES

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "ANIMATED_SUFFIXES", "iter_path_frames", "frame_count_from_info",
           "FrameCount", "cut_short", "AnimationFrames", "open_animated", "unsupported_file", "image_stem",
           "check_channel_input", "folder_continuations", "folder_timelapses", "timelapses_note",
           "several_timelapses_error", "folder_left_out", "left_out_note", "overlays_note", "HEIC_SUFFIXES",
           "composed_twin", "composed_twin_hint", "missing_input", "MASK_SUFFIXES", "IMAGE_NAME_SUFFIXES",
           "plain_stem", "mask_base", "is_mask_name", "image_bases", "mask_stems", "paired_masks",
           "is_broken_link", "broken_link_words", "recorded_outputs"]

#: single-image files (GIFs are handled on their own; a WebP is one unless animated, see ANIMATED_SUFFIXES)
IMAGE_SUFFIXES = tuple(s for s in READABLE_SUFFIXES if s != ".gif")
#: members of a folder read as frames: images, and GIFs (an animated GIF or WebP gives each of its frames)
FOLDER_SUFFIXES = IMAGE_SUFFIXES + (".gif",)
#: files that may hold an animation (each frame read as a time point; a still one is an image)
ANIMATED_SUFFIXES = (".gif", ".webp")
#: video containers read through ffmpeg (by content: a suffix here only lets the file in)
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".ts", ".m2ts", ".mts", ".wmv",
                  ".flv", ".3gp", ".ogv", ".vob")
#: microscope vendors' own formats: not read directly (a hint says how to export them)
VENDOR_SUFFIXES = (".czi", ".nd2", ".lif", ".lsm", ".oib", ".oif", ".ims", ".vsi", ".dv", ".r3d", ".ics", ".ids",
                   ".zvi", ".sld", ".lei")
#: photos in Apple's HEIC/HEIF format (an iPhone's default): no reader here takes them (a hint says how to export)
HEIC_SUFFIXES = (".heic", ".heif")
#: files a lineage table comes as (an EPIC or tidy CSV, an AceTree nuclei zip): given where images are expected, a hint
#: names the command that reads them (:func:`unsupported_file`)
TABLE_SUFFIXES = (".csv", ".tsv", ".zip")
#: what to do with each kind of file a folder holds that is not read as its frames (:func:`folder_left_out`)
_LEFT_OUT_ADVICE = {
    "video": ("video", "a video is a timelapse of its own, not a frame of the folder: give each one on its own"),
    "heic": ("HEIC photo", "HEIC is not read: export them as JPEG, PNG or TIFF first (an iPhone takes JPEGs with "
                           "Settings > Camera > Formats > Most Compatible)"),
    "vendor": ("microscope file", "save them as OME-TIFF first (Fiji's Bio-Formats or bfconvert)"),
    "mask": ("mask", "each named as the mask of an image beside it (x_masks.tif of x.tif, as train and evaluate "
                     "pair them): label images, not frames; rename one that is an image to analyse"),
    # (the records' names are added: :func:`_left_out_words`)
    "output": ("devolens output", "written here by an earlier devolens run, as its record in this folder says "
                                  "({records}): its results (a plot, a figure), not a frame to analyse"),
}
#: mask names: the image's stem plus one of these, in any case (longest first: ``x_cp_masks`` is ``x``'s, not
#: ``x_cp``'s); the hyphened ones are QuPath's (``x-labels.png``). How training data pair
#: (:mod:`devolens.data.datasets`) and which files of a folder are left out of its frames as masks of its images
#: (:func:`paired_masks`)
MASK_SUFFIXES = ("_cp_masks", "-labels", "_labels", "-label", "_label", "-masks", "_masks", "-mask", "_mask", "_seg")
#: how an image's name may end (in any case) where its mask's name lacks it (cellpose's ``000_img.png`` +
#: ``000_masks.png``)
IMAGE_NAME_SUFFIXES = ("_img", "_image", "_raw")


def plain_stem(stem: str) -> str:
    """``stem`` less an OME-TIFF's ``.ome`` (``x.ome.tif`` pairs with ``x_labels.tif``, what segment writes for it)."""
    return stem[:-4] if stem.lower().endswith(".ome") and len(stem) > 4 else stem


def mask_base(stem: str) -> str:
    """The stem of the image a file of stem ``stem`` is the mask of by its name (``x_masks``, ``x_Masks``,
    ``x_cp_masks``: ``x``), or ``stem`` (less ``.ome``) where it ends with no suffix of :data:`MASK_SUFFIXES`
    (compared in any case: ``x_Masks.tif`` as a Windows user or Fiji's Save As may name it)."""
    stem = plain_stem(stem)
    low = stem.lower()
    for suf in MASK_SUFFIXES:
        if low.endswith(suf):
            return stem[: -len(suf)]
    return stem


def is_mask_name(stem: str) -> bool:
    """Whether a file of stem ``stem`` is named like a mask (:func:`mask_base`)."""
    return mask_base(stem) != plain_stem(stem)


def image_bases(stem: str) -> list[str]:
    """The names a mask of the image ``stem`` may be built on: its stem less ``.ome``, and that less an image
    suffix of :data:`IMAGE_NAME_SUFFIXES`, in any case (``x_img``: also ``x``, whose mask is ``x_masks``)."""
    stem = plain_stem(stem)
    low = stem.lower()
    return [stem] + [stem[: -len(s)] for s in IMAGE_NAME_SUFFIXES if low.endswith(s) and len(stem) > len(s)]


def mask_stems(stems: "Sequence[str] | set[str]") -> set[str]:
    """The stems among those of one folder's image files that are its masks by name (cellpose's layout: ``x.tif``
    beside ``x_masks.tif``): those named like a mask (:func:`is_mask_name`), except one whose own mask is among them
    (``y-label.png`` beside ``y-label_masks.png``: the shorter name is the image's). A mask need not have its image
    here (training names it unmatched)."""
    named = [s for s in stems if is_mask_name(s)]
    masked = {mask_base(s) for s in named}  # the stem of each image a mask names
    return {s for s in named if not any(b in masked for b in image_bases(s))}


def paired_masks(names: Sequence[str]) -> set[str]:
    """The file names among ``names`` (one folder's image files) that are the masks of another of them: named like
    its mask (:func:`mask_stems`: ``x_masks.tif``, ``x_cp_masks.png``, ``x_Mask.png`` beside ``x.tif``), as
    ``devolens train`` and ``evaluate`` pair a folder of images with their masks beside them. A file named like a
    mask whose image is not there is none of them (a folder of ``*_masks.tif`` alone is read as its images). By
    name alone (string operations: a folder of 20,000 frames)."""
    stems = {name: os.path.splitext(name)[0] for name in names}
    masks = mask_stems(set(stems.values()))
    if not masks:
        return set()
    bases = {b for s in stems.values() if s not in masks for b in image_bases(s)}
    return {name for name, s in stems.items() if s in masks and mask_base(s) in bases}


def image_stem(name: str | Path) -> str:
    """A file's name without its suffix, and an OME-TIFF's without its ``.ome`` too (``x.ome.tif`` -> ``x``, as
    Fiji and Bio-Formats name it): what the names of its results start with."""
    name = Path(name)
    stem = name.stem
    if name.suffix.lower() in (".tif", ".tiff") and stem.lower().endswith(".ome") and len(stem) > 4:
        return stem[:-4]
    return stem


def unique_stems(names: Sequence[str | Path]) -> list[str]:
    """The names that the results of the files ``names`` start with: their :func:`image_stem`, or, for the files that
    share a stem with another (``a.png`` and ``a.tif`` or ``a.ome.tif``; ``A.png`` and ``a.tif``, one file name on
    macOS and Windows, compared case-blind), whose results would otherwise replace each other, their whole file
    names; the other files keep their stems (a folder of 200 frames with one such pair keeps 198 rows joinable on
    the stem). Should a whole name then meet another file's stem (``a.png`` beside ``a.png.tif``), every file is
    named by its whole name."""
    stems = [image_stem(n) for n in names]
    folded = [s.casefold() for s in stems]
    if len(set(folded)) == len(stems):
        return stems
    shared = {s for s, k in Counter(folded).items() if k > 1}
    ids = [Path(n).name if f in shared else s for n, s, f in zip(names, stems, folded)]
    if len({i.casefold() for i in ids}) < len(ids):
        return [Path(n).name for n in names]
    return ids


def unsupported_file(path: Path, expected: str, why: str | None = None) -> DevolensError:
    """The error for an input of a type no reader here takes: what was expected, and for a
    microscope vendor's file (.czi, .nd2, .lif...) how to turn it into one that is, and for what may be a lineage
    table (:data:`TABLE_SUFFIXES`) which command reads it; ``why``: what the file was read as, where that says more
    (a TIFF of 3 planes stored as one RGB image)."""
    from devolens.io.video import renamed_video_words

    renamed = renamed_video_words(path) if path.suffix.lower() not in VIDEO_SUFFIXES else None
    what = ("a file without an extension" if not path.suffix else "a single image"
            if path.suffix.lower() in IMAGE_SUFFIXES and not renamed else f"a '{path.suffix}' file")
    msg = f"expected {expected}; got {what}" + (f": {why}" if why else "")
    if renamed:
        msg += f"; {renamed}"
    elif path.suffix.lower() in VENDOR_SUFFIXES:
        msg += ("; microscope files are not read directly: save the series as (OME-)TIFF first, e.g. in Fiji "
                "(File > Import > Bio-Formats, then File > Save As > OME-TIFF) or with Bio-Formats' bfconvert")
    elif path.suffix.lower() in HEIC_SUFFIXES:
        msg += "; HEIC photos are not read: export them as JPEG, PNG or TIFF first"
    elif path.suffix.lower() in TABLE_SUFFIXES:
        msg += ("; for a lineage table (an EPIC CD or tidy CSV, an AceTree nuclei zip), use `devolens lineage "
                "populations` (its cells by lineage and time point)")
        if path.suffix.lower() == ".zip":
            msg += "; for a zip of images, unzip it and give the folder"
    return DevolensError(msg, path=path)


def composed_twin(path: str | Path) -> Path | None:
    """The existing path that a missing ``path`` names with its accented letters encoded otherwise, or None.

    An ``ü`` is one character (NFC: what a keyboard types on Linux and Windows) or ``u`` and a combining
    diaeresis (NFD: how macOS wrote names, kept by a zip or a copy from a Mac): two names that look the same but
    are different files on Linux. Each part of ``path`` that does not exist is looked for in its folder under
    the same :func:`unicodedata.normalize` ("NFC") form; the path made of the parts found, if it exists and
    differs from ``path``. ASCII paths are never looked up (nothing to encode otherwise).

    Examples
    --------
    >>> composed_twin("Embryo Übung.png")  # doctest: +SKIP
    PosixPath('Embryo Übung.png')
    """
    import unicodedata

    text = str(path)
    if text.isascii():
        return None
    path = Path(path)
    found = Path(path.anchor) if path.anchor else Path()
    parts = path.parts[1:] if path.anchor else path.parts
    try:
        if path.exists():
            return None
        for part in parts:
            here = found / part
            if not os.path.lexists(here):
                want = unicodedata.normalize("NFC", part)
                same = [n for n in os.listdir(found) if unicodedata.normalize("NFC", n) == want]
                if len(same) != 1:
                    return None
                here = found / same[0]
            found = here
        return found if found.exists() and str(found) != text else None
    except (OSError, ValueError):  # a folder that cannot be listed, a name with a NUL
        return None


def composed_twin_hint(twin: Path) -> str:
    """What to say of :func:`composed_twin`'s answer ``twin``, after the error for the missing path."""
    return (f"{twin} exists, its name written with its accented letters encoded otherwise (a name from a Mac, "
            "unzipped or copied?): let the Tab key complete the name, or rename it")


def missing_input(path: str | Path) -> DevolensError:
    """The error for an input ``path`` that does not exist: ``no such file or folder``, and where another path of
    the same name with its accents encoded otherwise exists (:func:`composed_twin`), that one. The error keeps it as
    ``twin`` (None: none), so that the command's hint does not look for it again (:mod:`devolens.cli`). A link whose
    target is not there (:func:`is_broken_link`) is said to be one, naming its target: its name is listed (``ls`` shows
    it), and "no such file" left the share not mounted to guess."""
    if is_broken_link(Path(path)):
        error = DevolensError(broken_link_words(Path(path)), path=path)
        error.twin = None
        return error
    twin = composed_twin(path)
    error = DevolensError("no such file or folder" + (f"; {composed_twin_hint(twin)}" if twin else ""), path=path)
    error.twin = twin
    return error


class AnimationFrames:
    """An animated GIF's or WebP's frames as :func:`open_animated` decodes them (an iterator), with each one's delay
    recorded as it is decoded (:attr:`times`), as a video's reader records its frames' timestamps."""

    def __init__(self, frames) -> None:
        #: each frame's delay (ms, Pillow's ``duration``; 0 where the file gives none), as decoded so far
        self.delays: list[float] = []
        self._frames = frames(self.delays)

    def __iter__(self) -> "AnimationFrames":
        return self

    def __next__(self) -> np.ndarray:
        return next(self._frames)

    def close(self) -> None:
        """Stop decoding (the file is closed); harmless once every frame was read."""
        self._frames.close()

    @property
    def times(self) -> "list[float] | None":
        """Each frame decoded so far: its seconds since the first, from the frames' delays added up; None where a
        frame gives no delay (a viewer's default then: no times recorded) or fewer than two frames were decoded."""
        if len(self.delays) < 2 or any(d <= 0 for d in self.delays):
            return None
        times, at = [], 0.0
        for delay in self.delays:
            times.append(round(at, 9))
            at += delay / 1000
        return times


def open_animated(path: Path) -> tuple[AnimationFrames, int, float]:
    """An (animated) GIF or WebP streamed frame by frame: ``(frames, count, fps)``.

    Frames come as uint8 RGB ``(H, W, 3)`` as the viewer shows them (each frame composited
    onto the previous ones by the file's disposal and blending rules); ``frames`` records each one's delay as it
    is decoded (:attr:`AnimationFrames.times`); ``fps`` from the first
    frame's duration (10 when the file gives none). ``count`` is 1 for a still image. A frame whose decoding
    would not fit in the memory available is refused now (:func:`devolens.io.images.check_memory`, with Pillow's
    measured peak: :data:`~devolens.io.images.GIF_FRAME_FACTOR`, :data:`~devolens.io.images.WEBP_FRAME_FACTOR`).
    """
    from PIL import ImageSequence

    from devolens.io.images import pillow

    Image = pillow()  # the limits read_image reads images with
    kind = "WebP" if path.suffix.lower() == ".webp" else "GIF"
    try:
        with Image.open(path) as im:
            count = int(getattr(im, "n_frames", 1))
            if kind == "WebP" and count > 1:
                im.load()  # an animated WebP gives its first frame's duration once that frame is decoded
            duration = float(im.info.get("duration") or 0)
            size = im.size
    except Exception as exc:
        msg = str(exc).strip().splitlines()
        raise DevolensError(f"cannot read {kind} ({msg[0] if msg else type(exc).__name__})", path=path) from None
    from devolens.io.images import GIF_FRAME_FACTOR, WEBP_FRAME_FACTOR, check_image_size, check_memory

    check_image_size(size[1], size[0], path)
    check_memory((size[1], size[0], 3), np.uint8, path, what="frames",  # (weighed with Pillow's peak on a frame)
                 factor=WEBP_FRAME_FACTOR if kind == "WebP" else GIF_FRAME_FACTOR)

    def gen(delays: list) -> Iterator[np.ndarray]:
        i = 0
        try:
            with Image.open(path) as im:
                for frame in ImageSequence.Iterator(im):
                    rgb = np.asarray(frame.convert("RGB"))  # (a WebP frame's duration is known once it is decoded)
                    delays.append(float(frame.info.get("duration") or 0))
                    yield rgb
                    i += 1
        except MemoryError:
            from devolens.io.images import out_of_memory

            raise out_of_memory(f"decoding {kind} frame {i}", path) from None
        except Exception as exc:
            msg = str(exc).strip().splitlines()
            raise DevolensError(f"cannot decode {kind} frame {i} ({msg[0] if msg else type(exc).__name__})",
                                path=path) from None

    return AnimationFrames(gen), count, (1000.0 / duration if duration > 0 else 10.0)


def _natural_key(name: str) -> list:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


def is_broken_link(path: Path) -> bool:
    """Whether ``path`` is a link whose target is not there (a file moved or deleted, a share not mounted, a loop
    of links): a member of a folder all the same, reported as a frame that cannot be read (:func:`_read_image`)."""
    try:
        return path.is_symlink() and not path.exists()
    except OSError:
        return False


def broken_link_words(path: Path) -> str:
    """What is wrong with a link whose target is not there (:func:`is_broken_link`), naming the target as the link
    holds it."""
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return (f"broken link: its target {target} is not there (moved or deleted, or on a drive or share that is not "
            "mounted?)")


def _read_image(path: Path) -> np.ndarray:
    """A folder member as a 2-D image (``HxW`` or ``HxWxC``, C <= 4), or a clear error naming it (a broken link:
    its target, which read_image would call no such file)."""
    from devolens.io.images import check_image_size, read_image

    if is_broken_link(path):
        raise DevolensError(broken_link_words(path), path=path)
    try:
        arr = np.asarray(read_image(path))
        if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] <= 4)):
            raise DevolensError(f"not a 2-D image: array of shape {arr.shape}", path=path)
        check_image_size(arr.shape[0], arr.shape[1], path)
        return arr
    except DevolensError:  # Exhausted too: read_image names a MemoryError while decoding
        raise
    except Exception as exc:  # unreadable / corrupt image
        msg = str(exc).strip().splitlines()
        raise DevolensError(f"cannot read image ({msg[0] if msg else type(exc).__name__})", path=path) from None


def _folder_stacks(files: list[Path], stack_z: str, channel: int | None, pages: str = "time") -> dict[Path, int]:
    """The members of a folder that hold several frames, with their frame counts: TIFF stacks
    (several planes, not one RGB image; options are checked now, before any frame is read; a plain TIFF's 2 to 4
    pages are its channels when a ``channel`` is chosen: one frame) and animated GIFs and WebPs."""
    from devolens.io.stacks import (LayoutError, check_stack_options, pages_with_channel, read_pages_as,
                                    reads_as_tiff, stack_info)

    out = {}
    for p in files:
        if p.suffix.lower() in ANIMATED_SUFFIXES:
            try:
                n = open_animated(p)[1]  # the header only: frames are decoded when read
            except Exhausted:  # frames too large for the memory available: the machine's limit, not the file's
                raise
            except DevolensError:
                continue  # unreadable: reported (with its name) when it is read
            if n > 1:
                out[p] = n
            continue
        if not reads_as_tiff(p):  # by name, or by content: a stack saved as .png is read as the stack it is
            continue
        try:
            info = stack_info(p)
        except LayoutError:  # readable, but not as frames (a multi-file OME set's file without its first)
            raise
        except DevolensError:
            continue  # unreadable: reported (with its name) when it is read
        info = read_pages_as(info, pages_with_channel(pages, channel), p)
        if info.is_stack:
            check_stack_options(info, stack_z, channel, p)
            out[p] = info.frames(stack_z)
    return out


def check_channel_input(path: str | Path, channel: int | None, option: str = "channel", hint: str = "") -> None:
    """Refuse a ``channel`` (of a TIFF stack's C axis) for an input that has no TIFF to take it from: a file that
    is no TIFF, or a folder without TIFF members (an option that does nothing on this input is a trap). A plain
    TIFF of 2 to 4 pages has them as its C axis here (:func:`devolens.io.stacks.pages_with_channel`). ``option``
    names the setting in the error, ``hint`` ends it."""
    if channel is None:
        return
    from devolens.io.stacks import tiff_has_axis

    p = Path(path)
    if p.is_file():  # a TIFF whose layout has a C axis; unreadable: the reader says why, later
        found = tiff_has_axis(p, "C", unreadable=True, pages="channels")
    elif p.is_dir():
        found = any(tiff_has_axis(f, "C", unreadable=True, pages="channels") for f in folder_files(p))
    else:
        return
    if not found:
        raise DevolensError(f"{option} picks a channel of a TIFF stack's C axis; this input has none{hint}", path=p)


def _iter_video(path: Path, threads: int | None = None, mark_lost: bool = False):
    """The frames of a video: a :class:`~devolens.io.video.VideoFrames` (an iterator; once read to its end, its
    ``damage`` says what was found wrong with the file)."""
    from devolens.io.video import iter_video_frames

    return iter_video_frames(path, threads=threads, mark_lost=mark_lost)


def _video_frame_count(path: Path) -> int:
    """Frame count announced by the container (0 when unknown; see :func:`frame_count_from_info`)."""
    from devolens.io.video import video_info

    try:
        info = video_info(path)
    except DevolensError:
        raise
    except Exception:
        return 0
    return frame_count_from_info(info)


class FrameCount(int):
    """A video's frame count (an int) that says whether its container records it exactly (``exact``: an AVI's
    header, an MP4's sample table) or it is estimated (duration x rate), and of which file (``path``), so that
    :func:`cut_short` can tell a frame or two of slack from frames missing."""

    exact: bool = False
    path: Path | None = None

    def __new__(cls, n: int, exact: bool = False, path: str | Path | None = None) -> "FrameCount":
        obj = super().__new__(cls, n)
        obj.exact = bool(exact)
        obj.path = None if path is None else Path(path)
        return obj


def frame_count_from_info(info: dict) -> int:
    """Frame count from a video's metadata (:func:`devolens.io.video.video_info`): the reader's ``nframes`` when
    it gives one, else the count the container records (``info.container.frames`` of a
    :class:`~devolens.io.video.VideoInfo`: exact), else fps x duration; 0 when unknown. A :class:`FrameCount`
    (an int) that says which, and of which file (``info.path``)."""
    path = getattr(info, "path", None)
    nframes = info.get("nframes")
    if isinstance(nframes, (int, float)) and math.isfinite(nframes) and nframes > 0:
        return FrameCount(int(nframes), False, path)
    container = getattr(info, "container", None)
    exact = getattr(container, "frames", None)
    if isinstance(exact, int) and exact > 0:  # an AVI header's count with no index to check it: an estimate
        return FrameCount(exact, bool(getattr(container, "exact", True)), path)
    try:
        fps, dur = float(info.get("fps") or 0), float(info.get("duration") or 0)
    except (TypeError, ValueError):
        return 0
    return FrameCount(int(round(fps * dur)), False, path) if fps > 0 and dur > 0 else 0


def cut_short(read: int, declared: int, skipped: "Sequence[int] | set[int]" = ()) -> str | None:
    """A note when a video read to its end gave fewer frames (``read``) than its container declares (``declared``,
    :func:`frame_count_from_info`), or its reading found damaged data; None otherwise.

    A count estimated from duration x rate has a frame or two, or 2 %, of slack; an exact one (an AVI's header, an
    MP4's sample table: ``declared.exact``) none: the note says how many frames are missing and that the later
    frames' numbers shift. When ``declared`` names its file (``declared.path``) and that file's last complete
    reading (:func:`devolens.io.video.recorded_damage`) gave ``read`` frames, the note is that reading's
    (:meth:`devolens.io.video.VideoDamage.note`): a file cut short, frames missing mid-file (placed by an AVI's
    index), frames decoded from damaged data (placed by ffmpeg's per-frame log; those among the positions
    ``skipped``, left out by ``--skip-flagged``, said to be skipped), one sentence."""
    path = getattr(declared, "path", None)
    if path is not None:
        from devolens.io.video import recorded_damage

        damage = recorded_damage(path)  # (the reading that gave ``read`` frames: never a second decode here)
        if damage is not None and read in (damage.read, damage.decoded):
            return damage.note(0 if getattr(declared, "exact", False) else int(declared), skipped)
    if getattr(declared, "exact", False):
        if declared and read < declared:
            m = int(declared) - read
            return (f"the video ended after {read} of the {int(declared)} frames its header records: {m} frame"
                    f"{'s are' if m != 1 else ' is'} missing (a file cut short, or damaged data: then the frames "
                    "after the gap are numbered lower than in the file; the frames read are in the results)")
        return None
    if declared and read < declared - max(2, 0.02 * declared):
        return (f"the video ended after {read} of the {int(declared)} frames its header declares: a truncated or "
                "damaged file? (the frames read are in the results)")
    return None


def _image_files(folder: Path, labels: bool = False) -> list[Path]:
    """The image files of a folder, in natural order: those read as frames, or (``labels=True``) the label images
    left out of them (``*_labels.tif``: a render's ground truth, a segmentation's results). The masks of images
    beside them (:func:`paired_masks`: ``x_masks.tif`` beside ``x.tif``) are no frames either, nor the images
    devolens wrote there as a run's outputs, as its record beside them says (:func:`recorded_outputs`: population's
    plot, written into the input folder by ``population movie/ --out movie/pops.csv``, was read back as a frame by
    the next run, which changed every count of ``--clock``). A link named as an image whose target is not there
    (:func:`is_broken_link`: a share not mounted) is one of them: its frame cannot be read, and the reading says so
    (curate flags it unreadable, segment refuses it) rather than the frame going missing without a word."""
    names = os.listdir(folder)
    files = [folder / name for name in names if _image_name(name, labels)]
    files = [p for p in files if p.is_file() or is_broken_link(p)]
    if not labels:  # the masks of images beside them (cellpose's layout, a training folder): no frames
        masks = paired_masks([p.name for p in files])
        files = [p for p in files if p.name not in masks] if masks else files
        outputs = recorded_outputs(folder, names)
        files = [p for p in files if p.name not in outputs] if outputs else files
    return sorted(files, key=lambda p: _natural_key(p.name))


#: a devolens record's first bytes: its command line comes first (:func:`devolens.provenance.record_text` of the
#: records of ``population``, ``lineage populations`` and ``demo``), ``devolens`` its first word
_RECORD_HEAD = re.compile(rb'\A\s*\{\s*"command"\s*:\s*"devolens[ "]')
#: the images the demo writes beside its record (:data:`devolens.cli.demo.DEMO_OUTPUTS`, its report's figures)
_DEMO_IMAGES = ("overlay.png", "populations.png")


def _record(path: Path) -> dict | None:
    """The devolens record ``path`` (its first bytes tell one: :data:`_RECORD_HEAD`), parsed; None for any other
    file (a microscope's metadata, the user's own JSON: only their first 256 bytes are read) or one that cannot
    be read."""
    import json

    try:
        with open(path, "rb") as fh:
            if not _RECORD_HEAD.match(fh.read(256)):
                return None
            fh.seek(0)
            record = json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError):  # (UnicodeDecodeError and JSONDecodeError are ValueErrors)
        return None
    return record if isinstance(record, dict) else None


def recorded_outputs(folder: str | Path, names: Sequence[str] | None = None) -> dict[str, str]:
    """The images devolens wrote into ``folder`` as the outputs of a run, by name, each with the name of the
    record there that says so: the plot (its ``plot``) of a ``population`` or ``lineage populations`` run whose
    record (``NAME.json``) is in the folder, and the demo's figures beside its ``demo.json``. ``names``: the
    folder's members, where listed already. Only such records are read, told first by name (``NAME.json`` beside
    ``NAME.csv``, ``NAME.png`` or ``NAME_plot.png``, as those commands name their CSV, plot and record; or
    ``demo.json``), then by their first bytes: listing a folder of 20,000 frames opens no other file. A record
    moved with its folder names its plot where it was written: an image of the record's own name in the folder
    the record names its CSV in is this folder's."""
    from devolens.provenance import command_words

    folder = Path(folder)
    try:
        names = os.listdir(folder) if names is None else names
    except OSError:
        return {}
    lower = {name.lower() for name in names}
    found: dict[str, str] = {}
    for name in names:
        stem, suffix = os.path.splitext(name)
        if suffix.lower() != ".json" or name.startswith("."):
            continue
        demo = name == "demo.json"
        if not demo and not lower & {f"{stem}.csv".lower(), f"{stem}.png".lower(), f"{stem}_plot.png".lower()}:
            continue
        record = _record(folder / name)
        if record is None:
            continue
        if demo and command_words(record.get("command"))[:1] == ["demo"]:
            found.update((image, name) for image in _DEMO_IMAGES if image in names)
        plot, output = record.get("plot"), record.get("output")
        if not isinstance(plot, str) or not plot:
            continue
        where = Path(plot).parent
        try:  # written beside its CSV (the record's folder, moved or not), or into this folder by a path to it
            here = (isinstance(output, str) and Path(output).parent == where) or where.resolve() == folder.resolve()
        except (OSError, RuntimeError):
            here = False
        if here and Path(plot).name in names:
            found[Path(plot).name] = name
    return found


def _image_name(name: str, labels: bool = False) -> bool:
    """Whether a folder's member named ``name`` is one of its image files (:func:`_image_files`), told by name alone:
    read as a frame, or (``labels=True``) a label image of a render or a segmentation (``t001_labels.tif``,
    ``a.png_labels.tif``, any case: ``x_Labels.tif`` too, as masks pair with their images), which is no frame, with
    its image beside it or not. (String operations: a Path per name costs more than the listing.)"""
    stem, suffix = os.path.splitext(name)
    return suffix.lower() in FOLDER_SUFFIXES and not name.startswith(".") and stem.lower().endswith("_labels") == labels


#: the records devolens writes beside the results of a run into a folder (``segment`` nuclei/membrane's
#: :data:`devolens.cli.predict.SEGMENT_RECORD`, ``segment livedead``'s :data:`devolens.cli.tiles.LIVEDEAD_RECORD`),
#: with the command that wrote them
_RESULT_RECORDS = {"segment.json": "devolens segment", "livedead.json": "devolens segment livedead"}
#: the name segment and segment livedead give an overlay: the image with its objects' outlines drawn over it
_OVERLAY_SUFFIX = "_overlay"


def _results_of(folder: Path) -> tuple[str, str] | None:
    """``(record, command)`` when ``folder`` holds the results of a devolens run (:data:`_RESULT_RECORDS`: its
    record is there), else None."""
    for name, command in _RESULT_RECORDS.items():
        try:
            if (folder / name).is_file():
                return name, command
        except OSError:
            continue
    return None


def _no_images_reasons(path: Path) -> str:
    """Why a folder without frames has none, where devolens wrote it: ``": it is an output folder of devolens
    segment ..."``, or its label images (``*_labels.tif``) left out; ``""`` otherwise."""
    results = _results_of(path)
    if results is not None:
        return (f": it is an output folder of {results[1]} ({results[0]} is there), whose labels and overlays are "
                "results, not images to analyse: give the folder of the original images")
    try:
        labels = _image_files(path, labels=True)
    except OSError:
        return ""
    if not labels:
        return ""
    n = len(labels)
    names = listed([p.name for p in labels], 3)
    parent = _results_of(path.parent)
    whose = f"results of {parent[1]}" if parent else "a render's ground truth or a segmentation's results"
    return (f": its {n} image{'s' if n != 1 else ''} ({names}) {'are' if n != 1 else 'is'} named *_labels, as label "
            f"images are ({whose}), and left out: give the folder of the original images (or rename "
            f"{'them' if n != 1 else 'it'}, if not label images)")


def _overlay_words(path: Path) -> str | None:
    """What makes the input ``path`` look like devolens overlays (the images with their objects' outlines drawn
    over them, which segment and segment livedead write: counted again, the outlines are counted with them): a
    folder ``overlays/`` of an output folder (:data:`_RESULT_RECORDS` one level up), members named ``*_overlay``,
    a file so named, an output folder's ``overlay.mp4``; None when nothing does."""
    try:
        if path.is_dir():
            results = _results_of(path.parent)
            if path.name == "overlays" and results is not None:
                return f"the overlays/ folder of an output folder of {results[1]}, {results[0]} one level up"
            # by name only (no stat of each member, no OME-TIFF header read: a folder of 20,000 frames is listed
            # in milliseconds); a render output's frames/ as folder_files reads it
            where = path / "frames" if (path / "frames").is_dir() and not _image_names(path) else path
            files = _image_names(where)
            named = sorted((f for f in files if _OVERLAY_SUFFIX in f and image_stem(f).endswith(_OVERLAY_SUFFIX)),
                           key=_natural_key)
            if not named:
                return None
            n = len(named)
            shown = ", ".join(named[:3]) + (f" and {n - 3} more" if n > 3 else "")
            # the images read as frames, said so where the folder holds others (label images, masks, outputs)
            held = sum(1 for f in os.listdir(where) if not f.startswith(".")
                       and os.path.splitext(f)[1].lower() in FOLDER_SUFFIXES)
            if held == len(files):
                which = "all its images" if n == len(files) else f"{n} of its {len(files)} images"
            elif n == len(files):
                which = (f"all {n} images read as frames, of {held} in the folder," if n != 1 else
                         f"the only image read as a frame, of {held} in the folder,")
            else:
                which = f"{n} of the {len(files)} images read as frames, of {held} in the folder,"
            return f"{which} named *{_OVERLAY_SUFFIX}, as devolens names them: {shown}"
        results = _results_of(path.parent)
        if path.name == "overlay.mp4" and results is not None:
            return f"the overlay video of an output folder of {results[1]}, {results[0]} beside it"
        if image_stem(path).endswith(_OVERLAY_SUFFIX) and path.suffix.lower() in FOLDER_SUFFIXES:
            return f"named *{_OVERLAY_SUFFIX}{path.suffix}, as devolens names them"
    except OSError:
        return None
    return None


def _image_names(folder: Path) -> list[str]:
    """The names of a folder's members that :func:`_image_files` would read as frames, told by name alone (and by
    the devolens records there, which name the images a run wrote: :func:`recorded_outputs`)."""
    members = os.listdir(folder)
    names = [name for name in members if _image_name(name)]
    masks = paired_masks(names)
    outputs = recorded_outputs(folder, members)
    return [name for name in names if name not in masks and name not in outputs]


def overlays_note(path: str | Path) -> str | None:
    """A note for an input that looks like devolens overlays rather than original images (:func:`_overlay_words`):
    read all the same (they may be images of the user's own so named), but their outlines are read with the
    images; None for anything else."""
    words = _overlay_words(Path(path))
    if words is None:
        return None
    return (f"note: the input looks like devolens overlays ({words}): their drawn outlines are read as part of the "
            "images and change the counts and sizes; give the original images instead (unless these are original "
            "images so named)")


def folder_files(path: Path) -> list[Path]:
    """The members of a folder read as frames (:func:`_image_files`), or those of its ``frames/``
    subfolder when it has none itself (a render output folder). A file continuing a multi-file OME-TIFF set
    whose first file is a member too is not one: that file reads the whole set (:func:`folder_continuations`)."""
    files = _listed(path)
    skip = _continuations(files)
    return [p for p in files if p not in skip] if skip else files


def folder_left_out(path: str | Path) -> dict[str, list[Path]]:
    """The files of a folder that hold images but are not read as its frames, by kind: ``"video"``
    (:data:`VIDEO_SUFFIXES`: one timelapse each, given on its own), ``"heic"`` (:data:`HEIC_SUFFIXES`, an iPhone's
    photos), ``"vendor"`` (:data:`VENDOR_SUFFIXES`), ``"mask"`` (the masks of images beside them,
    :func:`paired_masks`: ``x_masks.tif`` beside ``x.tif``, a training folder given to segment) and ``"output"``
    (the images an earlier devolens run wrote there, :func:`recorded_outputs`); only kinds with files,
    in natural order; ``{}`` for anything but a folder. Looked for where the frames are read (a render output's
    ``frames/``, whose ``video.mp4`` beside it shows the same frames, is not left out), or in the folder itself when it
    has no frames. A folder straight off a phone (``IMG_0001.MOV`` beside ``IMG_0002.JPG``) would otherwise lose its
    videos without a word. Other files (tables, notes) are not named."""
    path = Path(path)
    if not path.is_dir():
        return {}
    where = path / "frames" if not _image_files(path) and (path / "frames").is_dir() and _image_files(
        path / "frames") else path
    kinds = {"video": VIDEO_SUFFIXES, "heic": HEIC_SUFFIXES, "vendor": VENDOR_SUFFIXES}
    found: dict[str, list[Path]] = {}
    try:
        members = sorted((p for p in where.iterdir() if not p.name.startswith(".") and p.is_file()),
                         key=lambda p: _natural_key(p.name))
    except OSError:
        return {}
    for p in members:
        kind = next((k for k, suffixes in kinds.items() if p.suffix.lower() in suffixes), None)
        if kind is not None:
            found.setdefault(kind, []).append(p)
    masks = paired_masks([p.name for p in members if _image_name(p.name)])
    if masks:
        found["mask"] = [p for p in members if p.name in masks]
    outputs = recorded_outputs(where)
    if outputs:
        found["output"] = [p for p in members if p.name in outputs and _image_name(p.name)]
    return {k: found[k] for k in (*kinds, "mask", "output") if found.get(k)}


def _left_out_words(found: dict[str, list[Path]], shown: int = 3) -> list[str]:
    """Per kind of :func:`folder_left_out`: ``"2 videos (a.mp4, b.mp4): a video is ..."``."""
    words = []
    for kind, files in found.items():
        noun, advice = _LEFT_OUT_ADVICE[kind]
        if kind == "output":  # which records say so
            outputs = recorded_outputs(files[0].parent)
            advice = advice.format(records=", ".join(sorted({outputs.get(p.name, "?") for p in files})))
        names = ", ".join(p.name for p in files[:shown]) + (
            f" and {len(files) - shown} more" if len(files) > shown else "")
        words.append(f"{len(files)} {noun}{'s' if len(files) != 1 else ''} ({names}): {advice}")
    return words


def left_out_note(path: str | Path) -> str | None:
    """The note for a folder whose videos, HEIC photos or microscope files are not read as frames
    (:func:`folder_left_out`), naming them and saying what to do, for a folder of frames named as the same time
    point (:func:`same_number_words`: ``t01.png`` and ``t1.png``) and for an input (folder or file) that looks like
    devolens overlays (:func:`overlays_note`), in one note; None when none (a folder without frames at all: the
    error says it, :func:`iter_path_frames`)."""
    path = Path(path)
    notes = []
    overlays = overlays_note(path)
    if overlays:
        notes.append(overlays[len("note: "):])
    files = folder_files(path) if path.is_dir() else []
    found = folder_left_out(path)
    if found and files:
        n = sum(len(listed) for listed in found.values())
        notes.append(f"{n} file{'s' if n != 1 else ''} of this folder {'is' if n == 1 else 'are'} not read as "
                     f"{'a frame' if n == 1 else 'frames'}: " + "; ".join(_left_out_words(found)))
    labels = _image_files(files[0].parent, labels=True) if files else []
    if labels:  # never read as frames (:func:`_image_name`): said, rather than the folder's count falling short
        n = len(labels)
        names = listed([p.name for p in labels], 3)
        notes.append(f"{n} image{'s' if n != 1 else ''} named *_labels skipped as label images (a render's ground "
                     f"truth, a segmentation's results), not frames: {names}; rename "
                     f"{'any' if n != 1 else 'it, if it'} {'that is an' if n != 1 else 'is an'} image to analyse")
    same = same_number_words(files)
    if same:
        notes.append(same)
    return "note: " + "; ".join(notes) if notes else None


def same_number_groups(files: Sequence[Path]) -> list[list[Path]]:
    """The frames of a folder (:func:`folder_files`, in their order) named alike but for the case of their letters,
    the zeros padding their numbers and their image suffix (``t01.png`` and ``t1.png``, ``emb_T3.tif`` and
    ``emb_t003.png``): the same time point twice, in groups in the order of their first member; only names holding
    a number. Which files are read and their order are not changed (their natural order ties them)."""
    groups: dict[tuple, list[Path]] = {}
    for p in files:
        key = tuple(_natural_key(image_stem(p.name)))
        if any(isinstance(part, int) for part in key):
            groups.setdefault(key, []).append(p)
    return [group for group in groups.values() if len(group) > 1]


def same_number_words(files: Sequence[Path], shown: int = 3) -> str | None:
    """What :func:`same_number_groups` finds among ``files``, said in a clause (``"t01.png and t1.png are both time
    point 1 ..."``); None when nothing. Re-exported frames without zero padding beside the old ones, or the frames
    of two series in one folder, were read interleaved without a word (``population --clock`` then warned of frames
    out of time order without naming them)."""
    groups = same_number_groups(files)
    if not groups:
        return None

    def number(group: list[Path]) -> int:
        return [part for part in _natural_key(image_stem(group[0].name)) if isinstance(part, int)][-1]

    first = groups[0]
    names = [p.name for p in first]
    text = (f"{names[0]} and {names[1]} are both" if len(names) == 2
            else f"{', '.join(names[:-1])} and {names[-1]} are all") + f" time point {number(first)}"
    if len(groups) > 1:
        more = [str(number(g)) for g in groups[1:shown + 1]]
        rest = len(groups) - 1 - len(more)
        listed = (", ".join(more) + f" and {rest} more" if rest
                  else ", ".join(more[:-1]) + f" and {more[-1]}" if len(more) > 1 else more[0])
        text += f" (as are those of time point{'s' if len(groups) > 2 else ''} {listed})"
    return (text + ": the same frame saved twice, or frames of two series in one folder? every file is read, in "
            "name order; keep one file of each time point (or give each series a folder of its own)")


def _listed(path: Path) -> list[Path]:
    files = _image_files(path)
    if not files and (path / "frames").is_dir():
        files = _image_files(path / "frames")
    return files


def _continuations(files: list[Path]) -> dict[Path, str]:
    """The members named as OME-TIFFs (``.ome.tif``, as Micro-Manager and Bio-Formats name them; other TIFFs are
    not parsed here) that continue the multi-file OME-TIFF set of another member, with that member's name."""
    from devolens.io.stacks import ome_set_first

    names = {p.name for p in files}
    out = {}
    for p in files:
        if p.name.lower().endswith((".ome.tif", ".ome.tiff")):
            first = ome_set_first(p)
            if first and first != p.name and first in names:
                out[p] = first
    return out


def folder_continuations(path: str | Path) -> dict[Path, str]:
    """The files of a folder left out of its frames as continuations of another file's multi-file OME-TIFF set
    (Micro-Manager's ``emb_MMStack_Pos0_1.ome.tif`` after ``emb_MMStack_Pos0.ome.tif``, whose OME series spans
    both), each with the name of that file; ``{}`` for anything else."""
    path = Path(path)
    return _continuations(_listed(path)) if path.is_dir() else {}


def folder_timelapses(path: str | Path, pages: str = "time") -> list[tuple[Path, int]]:
    """The TIFF members of a folder that are timelapses of their own (a T axis of several time points, or the
    unlabelled pages of a plain multi-page TIFF read as time points, ``pages="time"``: one file per stage position,
    or one movie saved in parts), with their time points; ``[]`` for anything else (unreadable members left out)."""
    from devolens.io.stacks import reads_as_tiff, stack_info

    path = Path(path)
    if not path.is_dir():
        return []
    found = []
    for p in folder_files(path):
        if not reads_as_tiff(p):
            continue
        try:
            info = stack_info(p, pages)
        except DevolensError:
            continue
        t = dict(info.leading).get("T", 1)
        if t == 1 and len(info.unlabelled) == 1:  # pages="time": a plain multi-page TIFF's pages are time points
            t = info.unlabelled[0]
        if t > 1:
            found.append((p, t))
    return found


def _timelapses_list(found: list[tuple[Path, int]], shown: int = 3) -> str:
    return ", ".join(f"{p.name}: {t} time points" for p, t in found[:shown]) + (
        f" and {len(found) - shown} more" if len(found) > shown else "")


#: a stage position in a file name (Micro-Manager's Pos0, NIS-Elements' xy01, MetaMorph's _s1, "position 2")
_POSITION = re.compile(r"pos(?:ition)?[ _-]?\d+|position[ _-]?[a-z]+|_s\d+|xy\d+", re.IGNORECASE)


def _frame_shape(p: Path, pages: str) -> tuple:
    """A TIFF stack's frame shape: (Y, X, RGB samples, channels)."""
    from devolens.io.stacks import stack_info

    info = stack_info(p, pages)
    yx = info.shape[-3:-1] if info.axes.endswith("YXS") else info.shape[-2:]
    return (*yx, info.shape[-1] if info.axes.endswith("YXS") else info.shape[-3] if info.planar else 1,
            info.channels)


def _positions_reason(found: list[tuple[Path, int]], pages: str) -> str | None:
    """Why several timelapses of a folder look like stage positions rather than one movie saved in parts
    (``emb_t0-99.tif``, ``emb_t100-199.tif``): their frames differ in shape (Y, X, channels), or their names
    by a position marker (:data:`_POSITION`); None when neither."""
    shapes = {}
    for p, _ in found:
        try:
            shapes.setdefault(_frame_shape(p, pages), p)
        except DevolensError:
            continue
    if len(shapes) > 1:
        return f"their frames differ in shape ({', '.join(p.name for p in list(shapes.values())[:2])})"
    markers = {p: tuple(m.lower() for m in _POSITION.findall(p.name)) for p, _ in found}
    if len(set(markers.values())) > 1:
        seen = sorted({m for p, _ in found for m in _POSITION.findall(p.name)}, key=str.lower)
        return f"their names differ by a stage position ({', '.join(seen[:3])}{', ...' if len(seen) > 3 else ''})"
    return None


def timelapses_note(path: str | Path, pages: str = "time",
                    found: list[tuple[Path, int]] | None = None) -> str | None:
    """A note for a folder holding several timelapses (:func:`folder_timelapses`, or ``found``, its answer), read
    one after another as one sequence; None for anything else."""
    found = folder_timelapses(path, pages) if found is None else found
    if len(found) < 2:
        return None
    return (f"note: this folder holds {len(found)} timelapses ({_timelapses_list(found)}), read one after another "
            "as one sequence: the frames' numbers run on across the files, and the tables and label files name "
            f"each frame by its file and its frame in it ({image_stem(found[0][0])}_0000...); to analyse one on its "
            "own, give that file")


def several_timelapses_error(path: str | Path, command: str, pages: str = "time",
                             found: list[tuple[Path, int]] | None = None) -> DevolensError | None:
    """The error for ``command`` (which takes one timelapse) given a folder of several (:func:`folder_timelapses`,
    or ``found``, its answer) that look like stage positions (:func:`_positions_reason`); None for anything else
    (one movie saved in parts is read as one sequence, as :func:`timelapses_note` says)."""
    found = folder_timelapses(path, pages) if found is None else found
    if len(found) < 2:
        return None
    reason = _positions_reason(found, pages)
    if reason is None:
        return None
    return DevolensError(f"this folder holds {len(found)} timelapses ({_timelapses_list(found)}) and {reason}: "
                         f"{command} reads a folder as one timelapse and would mix them (one embryo per file?); "
                         "give each file on its own (the parts of one movie, frames of one shape and no position "
                         "marker such as Pos0, _s1 or xy01 telling their names apart, are read as one sequence)",
                         path=path)


def _hidden_words(path: Path, shown: int = 3) -> str:
    """For a folder without images: ``" (2 hidden files skipped: ._t1.png, .DS_Store)"``, the files whose names
    begin with a dot (macOS' AppleDouble ``._*`` and ``.DS_Store``), which are never read; ``""`` when it holds
    none."""
    try:
        hidden = sorted((p.name for p in path.iterdir() if p.name.startswith(".") and p.is_file()), key=_natural_key)
    except OSError:
        return ""
    if not hidden:
        return ""
    n = len(hidden)
    names = ", ".join(hidden[:shown]) + (f" and {n - shown} more" if n > shown else "")
    return f" ({n} hidden file{'s' if n != 1 else ''} skipped: {names})"


def _subfolders_hint(path: Path, shown: int = 5) -> str:
    """For a folder without images: ``"; it holds 3 subfolders: a, b, c (give one of them)"``, or ``""`` when it
    holds none (hidden ones not counted)."""
    try:
        subs = sorted((p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=str.lower)
    except OSError:
        return ""
    if not subs:
        return ""
    names = ", ".join(subs[:shown]) + (f" and {len(subs) - shown} more" if len(subs) > shown else "")
    return (f"; it holds {len(subs)} subfolder{'s' if len(subs) != 1 else ''}: {names} "
            f"(give {'it' if len(subs) == 1 else 'one of them'})")


def iter_path_frames(path: str | Path, *, stack_z: str = "project", channel: int | None = None,
                     pages: str = "time", decode_threads: int | None = None,
                     count: bool = True, missing: str = "raise") -> tuple[Iterator[np.ndarray], list[str] | None, int]:
    """Open a video file, a folder of images or a TIFF stack for streaming.

    Parameters
    ----------
    path : str or Path
        A video (mp4, mov, avi, mkv, m4v, webm, mpg, ts, wmv, flv...: :data:`VIDEO_SUFFIXES`), an animated GIF
        or WebP, a folder of images (png, jpg, tif, bmp, webp, gif; natural sort order), a render output folder
        holding ``frames/``, or a TIFF stack (timelapse, z-stack, hyperstack: see :mod:`devolens.io.stacks`).
    stack_z, channel, pages
        TIFF stacks: Z planes projected (``"project"``) or one frame each (``"slices"``);
        the channel of a ``C`` axis (given, a plain multi-page TIFF's 2 to 4 pages are its channels); the pages of
        a plain multi-page TIFF (no axis labels) read as time points (``"time"``) or as the z planes of one
        stack (``"z"``).
    decode_threads : int, optional
        Video decoder threads (see :func:`devolens.io.video.iter_video_frames`).
    count : bool
        Videos: probe the container for the frame count (an ffmpeg run, ~0.1 s); False
        returns 0 (unknown) at once.
    missing : {"raise", "mark"}
        A frame that cannot be read: ``"raise"`` stops with an error naming the file (an unreadable image of
        a folder) or leaves it out (a video's frames that ffmpeg cannot decode mid-file, which ffmpeg skips);
        ``"mark"`` yields a :class:`~devolens.io.missing.MissingFrame` in its place (``reason`` ``"unreadable"``
        or ``"lost"``), so that the frames after it keep their numbers (see :mod:`devolens.io.missing`).

    Returns
    -------
    (frames, names, total)
        A generator of frames, read one at a time: H x W arrays for grey frames (a grey TIFF stack, a grey
        image or video stream), H x W x 3 (or x 4) for colour ones, of the file's own type (uint8; uint16 for a
        16-bit TIFF, PNG or video stream; a float TIFF's floats); for a video a
        :class:`~devolens.io.video.VideoFrames`, whose ``damage``, once it is read to its end, says what was
        found wrong with the file. Then the file names relative to the folder (None for anything but a folder: a
        video, an animated GIF or WebP, a TIFF stack, whose frames are numbered from 0) and the frame count
        (0 when unknown; a :class:`FrameCount` for a video, ``exact`` when its container records it). A
        folder member that is a TIFF stack (e.g. one z-stack per time point) gives the frames
        of the stack rules: one projection per file with ``stack_z="project"``, named as the
        file; with several frames (``"slices"``, or a timelapse per file) they are named
        ``<stem>_0000<suffix>``, ``<stem>_0001<suffix>``... An animated GIF or WebP in a folder
        gives each of its frames, named the same way (a one-frame one is an image).

    Raises
    ------
    DevolensError
        Missing path, unsupported file type, empty folder.
    """
    from devolens.errors import option
    from devolens.io.stacks import check_pages, check_stack_z

    check_pages(pages)
    check_stack_z(stack_z, option("stack_z", flag="z (--stack-z)"))  # this function's name for it, not open_stack's
    if missing not in ("raise", "mark"):
        raise DevolensError(f"missing must be 'raise' or 'mark', got {missing!r}")
    if path is None or str(path) == "":  # Path("") is the current folder: never what was meant
        raise DevolensError(f"expected a path to a video, a folder of images or a stack, got {path!r}")
    path = Path(path)
    if not path.exists():
        raise missing_input(path)
    if path.is_dir():
        files = folder_files(path)
        if not files:
            held = "; ".join(f"it holds {words}" for words in _left_out_words(folder_left_out(path)))
            # a devolens output folder, or its labels/: no subfolder of it to suggest, the original images are meant
            reasons = _no_images_reasons(path)
            raise DevolensError(f"no image files ({', '.join(FOLDER_SUFFIXES)}) in this folder{_hidden_words(path)}"
                                + (reasons or (f"; {held}" if held else "") + _subfolders_hint(path)), path=path)
        # a folder of TIFF stacks (one z-stack per time point, as many microscopes write them):
        # each member is read by the stack rules, so its Z planes are projected (or sliced)
        stacks = _folder_stacks(files, stack_z, channel, pages)
        names = []
        for p in files:
            n = stacks.get(p, 1)
            stem = image_stem(p)  # x.ome.tif: x_0000.ome.tif...
            names += [p.name] if n == 1 else [f"{stem}_{k:04d}{p.name[len(stem):]}" for k in range(n)]

        def gen() -> Iterator[np.ndarray]:
            for p in files:
                if p in stacks and p.suffix.lower() in ANIMATED_SUFFIXES:  # an animated GIF/WebP: each frame
                    yield from open_animated(p)[0]
                elif p in stacks:
                    from devolens.io.stacks import iter_stack_frames

                    yield from iter_stack_frames(p, z=stack_z, channel=channel, pages=pages)
                else:
                    try:
                        image = _read_image(p)
                    except DevolensError as exc:
                        if missing == "raise" or isinstance(exc, Exhausted):  # no memory: the machine's, not the file's
                            raise
                        from devolens.io.missing import MissingFrame

                        image = MissingFrame("unreadable", exc.message, p)
                    yield image

        return gen(), names, len(names)
    from devolens.io.stacks import reads_as_tiff

    if reads_as_tiff(path):  # by name, or by content (a stack saved as .png: the stack it is, as its .tif copy)
        from devolens.io.stacks import open_stack

        stack = open_stack(path, z=stack_z, channel=channel, pages=pages)
        if stack is not None:
            return stack[0], None, stack[1]
    if path.suffix.lower() in VIDEO_SUFFIXES:
        if path.stat().st_size == 0:
            raise DevolensError("empty video file", path=path)
        return (_iter_video(path, decode_threads, mark_lost=missing == "mark"), None,
                (_video_frame_count(path) if count else 0))
    if path.suffix.lower() in ANIMATED_SUFFIXES:
        frames, n, _ = open_animated(path)
        if n > 1 or path.suffix.lower() == ".gif":  # a one-frame GIF: one frame, as it always was
            return frames, None, n
    from devolens.io.stacks import _planar_rgb

    n = _planar_rgb(path) if reads_as_tiff(path) else 0  # tifffile.imwrite's default for 3 or 4 grey frames
    raise unsupported_file(path, f"a sequence of frames: a video ({', '.join(VIDEO_SUFFIXES)}), an animated GIF or WebP, "
                                 "a TIFF stack or a folder of images",
                           f"one colour image, its {n} samples stored as planes; if these are {n} frames, save them with "
                           f"photometric='minisblack' (tifffile.imwrite's default stores {n} planes as one RGB image)"
                           if n else None)
