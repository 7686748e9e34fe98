"""Inference commands: ``devolens segment nuclei|membrane`` and ``devolens population``.

Input is an image file, a folder of images (natural name order, or a render output folder
with ``frames/``), a video (mp4, mov, avi, mkv, webm, mpg, ts and the other formats of
:data:`devolens.io.frames.VIDEO_SUFFIXES`, read through ffmpeg) or an animated GIF or WebP. Frames are streamed: a video is decoded
one frame at a time and never held in memory as a whole. Outputs are assembled in a hidden
folder beside the destination and moved in place only when everything succeeded, so an
error never leaves half outputs.
"""

from __future__ import annotations

import collections
import itertools
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import typer

from devolens.cli._common import (BACKEND_CHOICE, CLOCK_GAIN, COLOR_CHOICE, DEVICE_HELP, FAST_HELP, PAGES_CHOICE,
                                  PAGES_HELP, PRECISION_CHOICE, PRECISION_HELP, STACK_Z_CHOICE, choice, device_option,
                                  model_said, same_file)
from devolens.cli._common import note as print_note
from devolens.errors import DevolensError

from devolens.cli._common import THREADS_HELP, apply_threads, check_csv_out, check_threads, json_number
from devolens.provenance import command_words  # (a record's command line's words: also read here)
from devolens.cli._common import count_of as _count
from devolens.io.atomic import TEXT_ERRORS, StagedDir
from devolens.io.frames import ANIMATED_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, check_channel_input, image_stem
# objects.csv's micron columns, where the pixel size is known (:func:`_first_pixel`)
from devolens.io.microns import MICRON_COLUMNS, micron_cells as _micron_cells, um_per_pixel as _um_per_pixel
from devolens.lineage.letters import LETTER_KEY_LINE
# the blobs-or-lines and inverted-input notes' judgement, which the segmentation predictors' InputWarning shares
# (its frames, thresholds and readings, under the names this module gave them; numpy only: no PyTorch for --help)
from devolens.predict.notes import LOOKS_LIKE_NUCLEI, SHAPE_FRAMES, SHAPE_LOOK, SHAPE_MOST_SCALE
from devolens.predict.notes import JudgedFrames as _JudgedFrames
from devolens.predict.notes import Saturation as _Saturation, diameter_note as _diameter_note
from devolens.predict.notes import small_nuclei_check as _small_nuclei_check, small_nuclei_note as _small_nuclei_note
from devolens.predict.notes import size_note
from devolens.predict.notes import _centre, _inverted, _inverted_blobs  # noqa: F401  (_inverted*: tests' names)
from devolens.predict.notes import _judging_scale, _shapes, inverted_nuclei, judge_input, shape_verdict
from devolens.provenance import (absolute_path, model_sha256, onnxruntime_version, record_header, record_text,
                                 torch_version, version)

#: memory budget of the frames read ahead of the network (bytes)
READ_AHEAD_BYTES = 256 << 20


# ---------------------------------------------------------------------------- input / output
#: :meth:`_Calibrations.of` of a TIFF whose header cannot be read (its reader reports it, naming it)
_UNREADABLE = object()


class _Calibrations:
    """The physical pixel sizes of an input's files (:func:`devolens.io.stacks.pixel_size`), a folder's files
    listed once and each file's read once for both that ask: a µm ``--diameter``, converted before the input is
    opened (:func:`_input_pixel_size`), and the label images, which carry their file's (:meth:`_Source.pixel`)."""

    def __init__(self, path: Path):
        self.path = path
        self._files: Optional[dict] = None
        self._sizes: dict = {}

    @property
    def files(self) -> dict:
        """The input's files by name: a folder's members as its frames are read from them
        (:func:`devolens.io.frames.folder_files`, in their order), else the input itself."""
        if self._files is None:
            if self.path.is_dir():
                from devolens.io.frames import folder_files

                self._files = {p.name: p for p in folder_files(self.path)}
            else:
                self._files = {self.path.name: self.path}
        return self._files

    def of(self, file: Optional[Path]):
        """``(x, y, unit)`` of ``file``; None where it records none (or no file); :data:`_UNREADABLE` for a TIFF
        whose header cannot be read."""
        if file is None:
            return None
        if file not in self._sizes:
            from devolens.io.frames import is_broken_link
            from devolens.io.stacks import pixel_size

            # a broken link of a folder is read as a file that cannot be read (pixel_size: no such file)
            self._sizes[file] = _UNREADABLE if is_broken_link(file) else pixel_size(file, unreadable=_UNREADABLE)
        return self._sizes[file]


class _Source:
    """Frames of an input path plus their identifiers, streamed.

    A video, a folder of images, a single image, or a TIFF stack (frames along T and
    other sequence axes; Z projected or sliced per ``stack_z``; one ``channel`` of C; the unlabelled
    pages of a plain multi-page TIFF read as ``pages``: time points or z planes).

    Frames are read ahead in a background thread from the moment the source is opened
    (:class:`devolens.io.prefetch.ReadAhead`, at most ``read_ahead`` bytes ahead of the
    consumer): decoding overlaps the loading of the model (PyTorch's import alone takes
    1-1.5 s) and then the network. Videos are decoded by one ffmpeg thread (the network
    and post-processing have the other cores). Call :meth:`close` when stopping early.

    ``first``: the first frame of one image, a stack or a video is read now and kept in :attr:`first` (None for a
    folder, or a video's frame that could not be read) for a choice made on it (``segment membrane``'s channel,
    :func:`_membrane_colour`), and read ahead no further until :meth:`start` is called with the preparation that
    choice gives; it is the frame :meth:`iter` yields first (read once).
    """

    def __init__(self, path: Path, *, stack_z: str = "project", channel: Optional[int] = None, pages: str = "time",
                 read_ahead: Optional[int] = None, prepare: Optional[tuple] = None,
                 calibrations: Optional["_Calibrations"] = None, first: int = 0):
        self.path = path
        if not path.exists():  # (a broken link: said so, naming its target)
            from devolens.io.frames import missing_input

            raise missing_input(path)
        suffix = path.suffix.lower()
        from devolens.io.stacks import check_stack_z

        check_stack_z(stack_z, "--stack-z")  # for every input: an option that does nothing silently is a trap
        check_channel_input(path, channel, "--channel", _CHANNEL_HINT)  # curate's rule: no TIFF, no C axis
        stack = None
        self._fps = None
        from devolens.io.stacks import reads_as_tiff

        if path.is_file() and reads_as_tiff(path):  # by name or by content (a TIFF stack saved as .png)
            from devolens.io.stacks import open_stack

            # a timelapse / z-stack / hyperstack (options checked now, before any output)
            stack = open_stack(path, z=stack_z, channel=channel, pages=pages)
        elif path.is_file() and suffix in ANIMATED_SUFFIXES:
            from devolens.io.frames import open_animated

            frames, n, fps = open_animated(path)
            if n > 1:  # an animated GIF or WebP: a short timelapse (one frame: an image, below)
                stack, self._fps = (frames, n), fps
                self._animated = frames  # (its frames' delays, recorded as they are decoded: times)
        self.is_stack = stack is not None
        self._video = None  # a video's frames as read (their timestamps: times)
        # the image files read_image turns by their EXIF orientation tag (phone and camera photos), heard of as they
        # are read (by the read-ahead thread too): exif_turn says which frames were (closed by close())
        self._turns = None
        if stack is None and (path.is_dir() or suffix in IMAGE_SUFFIXES or suffix in ANIMATED_SUFFIXES):
            from devolens.io.images import ExifTurns

            self._turns = ExifTurns()
        self._ids: Optional[list[str]] = None  # the frames' names in the outputs (frame_id), once asked for
        #: the files' pixel sizes (pixel), those a µm --diameter was converted with (_diameter_option) where given
        self.calibrations = calibrations if calibrations is not None else _Calibrations(path)
        self.read = 0  # frames read so far (skipped ones included)
        self.missing: list[tuple[int, str, str, str]] = []  # (position, file, reason, detail) of frames left out
        #: a given curation report's frames missing mid-video (dropped, numbered) and its path: a report that
        #: numbers the frames otherwise than this reading would skip the wrong frames (see iter)
        self.report_lost: Optional[set[int]] = None
        self.report_path: Optional[Path] = None
        #: a given curation report's (frames covered, (height, width) by position, input name) and the advice of
        #: its refusal, for a video or a stack: frames beyond it, or of other sizes, are of another input (see iter)
        self.report_cover: Optional[tuple[int, dict, str]] = None
        self.report_advice = ""
        self.first: Optional[np.ndarray] = None  # (first: the first frame of one image, a stack or a video)
        #: (first: a stack's or a video's first ``first`` frames, by position: those read, MissingFrames left out)
        self.heads: list[tuple[int, np.ndarray]] = []
        if stack is not None:  # streamed plane by plane like a video
            self.is_video = True
            self.names = None
            self._frames, self._total = stack
        elif path.is_file() and (suffix in IMAGE_SUFFIXES or suffix in ANIMATED_SUFFIXES):
            from devolens.io.images import check_image_size, read_image

            image = read_image(path)  # validated now: a bad file fails before any output
            if image.ndim >= 2:  # a 1 x 752 image: refused here, naming the file (the predictor cannot)
                check_image_size(image.shape[0], image.shape[1], path)
            self.is_video = False
            self.names = [path.name]
            self._total = 1
            self._frames = iter([image])
            self.first = image if first else None
            self.heads = [(0, image)] if first else []
        elif path.is_dir() or suffix in VIDEO_SUFFIXES:
            from devolens.io.frames import iter_path_frames

            # a video's frame count and rate are probed beside the decoder (below), not before it
            # a frame that cannot be read comes as a MissingFrame: a video's frames keep their numbers after frames
            # lost mid-file, and an unreadable file of a folder flagged by a curation report is skipped (iter)
            self._frames, names, total = iter_path_frames(path, stack_z=stack_z, channel=channel, pages=pages,
                                                          decode_threads=1, count=False, missing="mark")
            self.is_video = names is None
            self.names = names
            self._total = int(total) if total else 0
            if self.is_video:
                self._video = self._frames
                self._frames = self._checked(self._frames)
        else:
            from devolens.io.frames import unsupported_file

            raise unsupported_file(path, f"an image ({', '.join(IMAGE_SUFFIXES)}), a video "
                                         f"({', '.join(VIDEO_SUFFIXES)}), an animated GIF or WebP or a folder of images")
        if first and self.is_video:  # a stack's or a video's first frames, read now (and yielded first: _peeked)
            self.heads, self._frames = _peeked(self._frames, int(first))
            self.first = self.heads[0][1] if self.heads and self.heads[0][0] == 0 else None
        self._read_ahead = READ_AHEAD_BYTES if read_ahead is None else int(read_ahead)
        if not first:
            self.start(prepare)
        self._info = None
        if self.is_video and not self.is_stack:  # frame count and rate: probed in the background
            from concurrent.futures import ThreadPoolExecutor

            from devolens.io.video import video_info

            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devolens-probe")
            self._info = pool.submit(video_info, path)
            pool.shutdown(wait=False)
            self._total = None

    def start(self, prepare: Optional[tuple] = None) -> None:
        """Read ahead from now on (a source made with ``first``; the others from the moment they are opened), the
        frames prepared for the network in that thread too where ``prepare`` (a preparation key) is given;
        :attr:`first` is let go (a giant image is not kept past the run)."""
        self.first, self.heads = None, []
        if self._total != 1 and self._read_ahead > 0:  # decoding starts now, while the model loads
            from devolens.io.prefetch import ReadAhead

            transform = None
            if prepare is not None:  # frames also prepared for the network in that thread
                from devolens.io.missing import MissingFrame
                from devolens.predict.blocks import prepare_ahead

                def transform(frame):  # (a giant image is prepared block by block; a frame not read passes as is)
                    return frame if isinstance(frame, MissingFrame) else prepare_ahead(frame, prepare)

            self._frames = ReadAhead(self._frames, max_bytes=self._read_ahead, name="devolens-decode",
                                     transform=transform)

    def _probed(self) -> dict:
        try:
            return self._info.result()
        except DevolensError:
            raise
        except Exception:
            return {}

    @property
    def total(self) -> int:
        """Number of frames (0 when unknown; a video's count is the container's estimate)."""
        if self._total is None:
            from devolens.io.frames import frame_count_from_info

            self._total = frame_count_from_info(self._probed())
        return self._total

    @property
    def fps(self) -> float:
        """Frames per second of a video or an animated GIF or WebP (10 when unknown or not a video)."""
        if self._fps is not None:
            return float(self._fps)
        if self._info is None:
            return 10.0
        try:
            return float(self._probed().get("fps") or 10.0)
        except (TypeError, ValueError):
            return 10.0

    #: an animated GIF's or WebP's frames (:class:`devolens.io.frames.AnimationFrames`: their delays, times); None
    #: for other inputs
    _animated = None

    def times(self) -> Optional[list]:
        """Each frame's seconds since the first, by position, once read: a video's timestamps (its frames lost
        mid-file included, at the times between), an animated GIF's or WebP's frame delays added up; None where
        not known (a folder, a TIFF stack, a video read without timestamps), and in place of a frame's time
        where it has none."""
        if self._video is not None:
            return getattr(self._video, "times", None)
        if self._animated is not None:
            return self._animated.times
        return None

    def _checked(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        n = 0
        for f in frames:
            n += 1
            yield f
        if n == 0:
            raise DevolensError("video has no frames", path=self.path)

    def frame_id(self, position: int):
        """Identifier of a frame: its position (video) or its file stem (images; an OME-TIFF's without ``.ome``;
        the whole file name when two files of the folder share a stem, ``a.png`` and ``a.tif`` or ``a.ome.tif``, or
        ``A.png`` and ``a.tif`` (one file name on macOS and Windows), whose results would otherwise overwrite each
        other)."""
        if self.is_video:
            return int(position)
        if self._ids is None:
            from devolens.io.frames import unique_stems

            self._ids = unique_stems(self.names)
        return self._ids[position]

    def pixel(self, position: int):
        """The physical pixel size ``(x, y, unit)`` of the file that holds frame ``position`` (a TIFF's ImageJ or OME
        calibration; None for anything else): the label images carry it, as the input did."""
        if self.names is None:  # a video or a stack: the input file's
            file = self.path
        else:  # one image, or a folder's member (listed once; a name standing for no file has no calibration)
            file = self.calibrations.files.get(self.names[position])
        found = self.calibrations.of(file)
        return None if found is _UNREADABLE else found

    def exif_turn(self, position: int) -> Optional[dict]:
        """The records' ``exif_turned`` entry of frame ``position`` (it was read): its ``frame`` (:meth:`frame_id`),
        the image ``file`` it was read from and its ``exif_orientation``, where read_image turned it as its EXIF
        orientation tag says (:class:`devolens.io.images.ExifTurns`); None otherwise (a video's or stack's frame, a
        file without the tag)."""
        if not self._turns or self.names is None or position >= len(self.names):
            return None
        name = self.names[position]
        file = self.calibrations.files.get(name)
        turn = None if file is None else self._turns.get(file)
        return None if turn is None else {"frame": self.frame_id(position), "file": name, "exif_orientation": turn}

    def label_name(self, position: int) -> str:
        if self.is_video:
            return f"{image_stem(self.path)}_f{position:05d}_labels.tif"
        return f"{self.frame_id(position)}_labels.tif"

    def overlay_name(self, position: int) -> str:
        return f"{self.frame_id(position)}_overlay.png"

    def probs_name(self, position: int) -> str:
        """probs/'s file of the frame (--probabilities): its label image's name, ``_probs.tif`` for ``_labels.tif``."""
        return self.label_name(position)[:-len("_labels.tif")] + "_probs.tif"

    def iter(self, skip: set[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(position, frame)``, lazily, leaving out the positions in ``skip`` and a video's frames lost
        mid-file (noted in ``missing``; the frames after them keep their positions). A file of a folder that
        cannot be read stops the command, naming it, unless ``skip`` (a curation report) flags it; so does a frame
        that shows a given curation report to be of another input (:meth:`_check_covered`)."""
        from devolens.io.missing import MissingFrame

        self.skipped = skip  # (ended_early's damaged frames: those skipped are not in the results)
        for i, frame in enumerate(self._frames):
            self.read = i + 1
            unread = isinstance(frame, MissingFrame)
            lost = unread and frame.reason == "lost"
            if self.report_cover is not None and not unread:
                self._check_covered(i, frame)
            if self.report_lost is not None and lost != (i in self.report_lost):
                raise DevolensError(
                    "--skip-flagged: this curation report numbers the video's frames otherwise than this reading of "
                    f"it (frame {i} is {'missing' if lost else 'there'} here, {'there' if lost else 'missing'} in "
                    "the report: made by another devolens or ffmpeg?), so it would skip the wrong frames; curate the "
                    "video again (or give --skip-flagged auto)", path=self.report_path)
            if unread:
                name = "" if self.names is None or i >= len(self.names) else self.names[i]
                if not lost and i not in skip:
                    raise DevolensError(f"{frame.detail} (to leave out the files that cannot be read: --skip-flagged "
                                        "REPORT of `devolens curate frames`, which flags them unreadable, or "
                                        "--skip-flagged auto, which also leaves out the other frames it flags)",
                                        path=frame.path)
                self.missing.append((i, name, frame.reason, frame.detail))
                continue
            if i in skip:
                continue
            yield i, frame

    def _check_covered(self, position: int, frame) -> None:
        """Refuse the given curation report when frame ``position`` of this video or stack is beyond the frames
        it covers, or of another size than the frame it measured there: it is of another input, and would skip
        the wrong frames (a video whose header is all the report could be checked against before reading)."""
        n, sizes, name = self.report_cover
        why = None
        if position >= n:
            why = f"the report covers {n} frame{'s' if n != 1 else ''}, the input has more"
        elif position in sizes:
            h, w = np.shape(getattr(frame, "image", frame))[:2]  # (a frame prepared ahead keeps the image read)
            rh, rw = sizes[position]
            if (h, w) != (rh, rw):
                of = f" (of {name})" if name and name != self.path.name else ""
                why = f"its frames are {rw}x{rh} pixels{of}, the input's {w}x{h} (frame {position})"
        if why:
            raise DevolensError(f"--skip-flagged: this curation report is not of this input: {why}; "
                                f"{self.report_advice}", path=self.report_path)

    def missing_note(self) -> Optional[str]:
        """A note on the frames that could not be read and were left out (None if none)."""
        from devolens.io.missing import missing_note

        return missing_note(self.missing, skipped=True)

    def ended_early(self) -> Optional[str]:
        """A note when a video (read to its end) gave clearly fewer frames than its container declares: a file
        cut short (an interrupted copy or recording) decodes without an error up to the cut."""
        if not self.is_video or self.is_stack or self._info is None:
            return None
        from devolens.io.frames import cut_short

        return cut_short(self.read, self.total, getattr(self, "skipped", ()))

    def close(self) -> None:
        """Stop reading ahead (the decoder is closed); harmless when everything was read."""
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()
        if self._turns is not None:  # (what it heard stays: exif_turn)
            self._turns.close()


def _peeked(frames: Iterator, n: int = 1) -> tuple[list[tuple[int, np.ndarray]], Iterator]:
    """The first ``n`` of ``frames`` that were read, by position (a MissingFrame left out), and an iterator of all
    of them, those first (read once: each let go once yielded), which closes ``frames`` when it is closed, also
    before its first frame (a run stopped before it starts: the decoder is not left to the garbage collector)."""
    head = list(itertools.islice(frames, n))
    return [(i, f) for i, f in enumerate(head) if isinstance(f, np.ndarray)], _Peeked(head, frames)


class _Peeked:
    """:func:`_peeked`'s iterator: the frames read ahead of the others, then the others."""

    def __init__(self, head: list, frames: Iterator):
        self._head, self._frames = collections.deque(head), frames

    def __iter__(self) -> "_Peeked":
        return self

    def __next__(self):
        return self._head.popleft() if self._head else next(self._frames)

    def close(self) -> None:
        self._head.clear()
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()


AUTO_CURATE = "auto"
#: how the progress of ``--skip-flagged auto``'s curation pass is labelled (a phase before the command's own)
CURATING = "curating"
#: the phase of progress of a giant image's writing (segmented block by block): what it writes, its count in steps
GIANT_WRITING = "writing {}"
#: the end of the error for --channel on an input without TIFFs (:func:`devolens.io.frames.check_channel_input`)
_CHANNEL_HINT = " (for the colour of an image or a video, use --color)"


def _skip_set(report: Optional[Path], input_path: Optional[Path] = None, *, stack_z: str = "project",
              channel: Optional[int] = None, pages: str = "time", progress=None):
    """Positions of the frames to skip and, for ``--skip-flagged auto``, the curation report made here.

    ``report`` is a report CSV of ``devolens curate frames``, or ``auto`` (and no file of that
    name exists): ``input_path`` is curated first, in one streamed pass, with the same stack options, its progress
    shown as a phase of its own, ``curating`` (:func:`~devolens.cli._common.progress_phase`: not as the command's
    own work, whose count would start again after it).
    Returns ``(positions, report made here or None, the report given or None)``: a given report is read once,
    for the positions and for :func:`_check_report`.
    """
    if report is None:
        return set(), None, None
    from devolens.curate.frames import curate_path, flagged_frames, load_report

    if str(report) == AUTO_CURATE and not Path(report).exists():
        from devolens.cli._common import progress_phase

        check_channel_input(input_path, channel, "--channel", _CHANNEL_HINT)  # in the command's words
        with progress_phase(progress, CURATING) as curating:
            made = curate_path(input_path, progress=curating, stack_z=stack_z, channel=channel, pages=pages)
        return flagged_frames(made), made, None
    given = load_report(report)
    return flagged_frames(given), None, given


def _check_report(report: Optional[Path], given, source: "_Source", *, stack_z: str = "project",
                  channel: Optional[int] = None, pages: str = "time") -> None:
    """Refuse a ``--skip-flagged`` report (``given``: its table) of another input (a video or a stack: another
    file, by the size and fingerprint the report records; a folder: other files of the same names, by each file's
    fingerprint, :func:`devolens.curate.frames.report_mismatch`), or of this one read with other stack options: its
    flagged positions would skip the wrong frames. The advice names the curate command line that makes the right
    report (with this run's stack options: ``segment membrane`` slices a stack by default, ``curate frames``
    projects it). A report of an older devolens, which records its file's name (a folder's file names) but no
    fingerprint, is checked by that name, with a note (:func:`devolens.curate.frames.older_report_note`)."""
    if given is None:
        return
    from devolens.curate.frames import older_report_note, reading_options, report_coverage, report_mismatch

    options = reading_options(source.path, stack_z=stack_z, channel=channel, pages=pages)
    # (the input as given, quoted for a shell; the report named apart from the one given: that one is another input's)
    import shlex

    stem = Path(source.path).stem or "input"
    mine = Path(report).with_name(f"{stem}_curation.csv") if report is not None else Path(f"{stem}_curation.csv")
    if report is not None and mine.name == Path(report).name:
        mine = mine.with_name(f"{stem}_curation_new.csv")
    advice = (f"curate it with `devolens curate frames {shlex.quote(str(source.path))}"
              f"{' ' + options if options else ''} --out {shlex.quote(str(mine))}` (or give --skip-flagged auto)")
    why = report_mismatch(given, None if source.is_video else source.names, source.total, options=options,
                          path=source.path)
    if why:
        raise DevolensError(f"--skip-flagged: this curation report is not of this input: {why}; {advice}",
                            path=report)
    older = older_report_note(given, source.path, None if source.is_video else source.names)
    if older:  # a report of an older devolens: what it could not be checked by
        print_note(f"{report}: {older}")
    from devolens.curate.frames import kinds_not_flagged

    unflagged = kinds_not_flagged(given)  # a kind column edited to yes, 'flagged' left no: the frame is kept
    if unflagged:
        print_note(f"{report}: {unflagged}")
    if source.is_video:  # a video's or a stack's frames are known by position only: checked as they are read
        source.report_cover, source.report_advice, source.report_path = report_coverage(given), advice, Path(report)
    if source.is_video and not source.is_stack:  # its frames missing mid-file must be this reading's (iter)
        from devolens.curate.frames import dropped_frames

        source.report_lost, source.report_path = dropped_frames(given), Path(report)


def _overlay(image: np.ndarray, labels: np.ndarray, colour=(255, 0, 255)) -> np.ndarray:
    """RGB uint8 copy of ``image`` with the outlines of ``labels`` drawn in ``colour``. A giant image is
    drawn 1024 rows at a time (the overlay itself is the only full-size array made)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    # an 8-bit frame is shown as it is, unless it is grey and dim (its brightest pixel under DIM_UINT8: its nuclei
    # black under their outlines, where a 16-bit frame of the same light is stretched)
    dim = img.dtype == np.uint8 and img.ndim == 2 and img.size and int(img.max()) < DIM_UINT8
    # float values beyond float32's safe range (a float64 image times 1e300, or 1e-300) are shown in float64
    from devolens.predict.postprocess import float32_shift

    work = np.float64 if float32_shift(img) else np.float32
    limits = None if img.dtype == np.uint8 and not dim else _display_range(img, work)
    height = img.shape[0]
    rows = 1024 if img.size > _BIG_OVERLAY else height
    rgb = np.empty(img.shape[:2] + (3,), np.uint8)
    for y in range(0, height, rows):
        band = img[y:y + rows] if limits is None else _display_uint8(img[y:y + rows], *limits, work)
        rgb[y:y + rows] = band[..., None] if band.ndim == 2 else band[..., :3]
        lab = labels[y:y + rows]
        # a nucleus's own outermost pixels on all four sides: a pixel whose left, right, upper or lower neighbour
        # has another label (only the left and upper ones were compared, so the right and bottom edges fell on
        # the background and were dropped)
        edge = np.zeros(lab.shape, dtype=bool)
        step = lab[:, 1:] != lab[:, :-1]
        edge[:, 1:] |= step
        edge[:, :-1] |= step
        step = lab[1:, :] != lab[:-1, :]
        edge[1:, :] |= step
        edge[:-1, :] |= step
        del step
        if y > 0:  # the band's first row against the row above it
            edge[0] |= lab[0] != labels[y - 1]
        if y + rows < height:  # and its last row against the row below it
            edge[-1] |= lab[-1] != labels[y + rows]
        edge &= lab > 0
        # by index: half the time of a boolean mask over HxWx3
        rgb[y:y + rows].reshape(-1, 3)[np.flatnonzero(edge)] = colour
    return rgb


#: an 8-bit grey frame whose brightest pixel lies under this is stretched for its overlay (a quarter of the range)
DIM_UINT8 = 64
#: pixels above which an overlay is drawn in bands of rows, its display range measured on a subsample
_BIG_OVERLAY = 16_000_000


def _display_range(img: np.ndarray, work: type = np.float32) -> tuple:
    """The 1st and 99.8th percentiles of ``img``'s finite values (of a subsample of a giant image), read in ``work``
    (float32; float64 for values beyond float32's range)."""
    step = max(1, int(np.sqrt(img.size / _BIG_OVERLAY) * 2)) if img.size > _BIG_OVERLAY else 1
    f = img[::step, ::step].astype(work)
    finite = np.isfinite(f)
    lo, hi = np.percentile(f[finite], [1, 99.8]) if finite.any() else (0.0, 1.0)
    return lo, hi  # (numpy floats, as the arithmetic below has always used them)


def _display_uint8(img: np.ndarray, lo: float, hi: float, work: type = np.float32) -> np.ndarray:
    """``img`` (any type) as uint8 for display, ``lo``..``hi`` to 0..255, in ``work`` (:func:`_display_range`);
    NaN/inf pixels shown as background."""
    f = img.astype(work)
    f = np.where(np.isfinite(f), f, lo)
    # (a span under 1e-6 is an image of tiny values, not a flat one, in float64: shown as it is at any scale)
    span = hi - lo if work is np.float64 and hi > lo else max(hi - lo, 1e-6)
    return (np.clip((f - lo) / span, 0, 1) * 255).astype(np.uint8)


def _shadowed_model_note(model: str) -> str | None:
    """The note for a ``--model NAME`` typed (not the default) that names a shipped model while the working folder
    holds a model's own folder of that name (an export, a run, a tune study: what ``devolens models export RUN --to
    nuclei`` makes): the shipped model wins, and the folder is ``--model ./NAME``; None otherwise."""
    from devolens.cli._common import model_folder_words, option_given
    from devolens.models import zoo

    folder = Path(model)
    if not option_given("--model") or zoo.model_folder(model) is not None or not folder.is_dir() \
            or model_folder_words(folder) is None:
        return None
    return f"note: --model {model} is the shipped {model} model; the folder {model}/ here, a model of your own, is " \
           f"--model ./{model}"


#: the shipped models' post-processing (their cards' ``postprocess``, and the working scale ``input.scale`` that
#: min_size's pixels are at), for help texts: --help reads no card (a test holds these to the cards)
_CARD_POSTPROCESS = {"nuclei": {"threshold": 0.6, "seed_threshold": 0.7, "min_size": 8, "scale": 0.5},
                     "membrane": {"threshold": 0.5, "seed_threshold": 0.5, "min_size": 20, "scale": 0.75}}
#: a lone object dropped as a speck is "not tiny" from this many times the smallest size kept, and a run with this
#: many such objects dropped, over all its frames, gets the --keep-small note. Embryo renders lost just-divided
#: nuclei to the speck step, a few in a run and rarely more than one in a frame (the benchmark movie: 14 in 11 of
#: 140 frames, 204-900 px; val_L3: 6 in 6 of 70 frames; all 20 true nuclei of the render), a mixed culture's small
#: nuclei many (12 of 36 in a 512x512 field); the reference frames none. Since the card's isolated_min_objects 100
#: (fifty-second session; each frame alone, diameter auto) the movie loses none (14 in 12 frames of 3-84 nuclei
#: without it) and val_L3 1 (10 in 8 frames without it), and that field keeps its 36. Counted per frame, 3 would be
#: met only in one frame of the movie and by none of val_L3: the run's total says what was lost
LONE_NOT_TINY, LONE_SEVERAL = 4, 3


def _postprocess_options(kind: str, threshold: Optional[float], seed_threshold: Optional[float],
                         min_size: Optional[float], keep_small: bool) -> dict:
    """``--threshold``, ``--seed-threshold`` and ``--keep-small`` as the predictors' ``postprocess={...}`` takes them
    (those given only: the model's own values otherwise; ``--keep-small``: ``isolated_fraction`` 0), checked before
    anything loads, and ``--min-size`` checked (it is set apart, in input pixels: the predictor's
    ``min_size_input``)."""
    from devolens.checks import is_number

    post: dict = {}
    for name, value, key in (("--threshold", threshold, "threshold"),
                             ("--seed-threshold", seed_threshold, "seed_threshold")):
        if value is None:
            continue
        if not (is_number(value) and 0 < float(value) < 1):  # (NaN fails too)
            # (cellpose's cellprob_threshold 0, typed from habit as --threshold 0: its meaning here is about 0.5)
            habit = "; cellpose's cellprob_threshold 0 is about 0.5 here" if key == "threshold" and is_number(value) \
                and float(value) == 0 else ""
            raise DevolensError(f"{name} must be a probability between 0 and 1, exclusive (e.g. 0.5: 0 would take "
                                f"every pixel, 1 none{habit}), got {value}")
        post[key] = float(value)
    if min_size is not None and not (is_number(min_size) and np.isfinite(float(min_size)) and float(min_size) >= 0):
        raise DevolensError(f"--min-size must be a number of pixels >= 0 (objects of fewer pixels of the image are "
                            f"dropped; 0 keeps every size), got {min_size}")
    if keep_small:
        if kind != "nuclei":
            raise DevolensError(f"--keep-small is segment nuclei's: the {kind} model drops no small lone objects "
                                "(--min-size sets the smallest one kept)")
        post["isolated_fraction"] = 0.0
    return post


def _postprocess_record(predictor, min_size: Optional[float], scale: Optional[float]) -> dict:
    """The post-processing that ran, for ``segment.json``: the options as ``load(..., postprocess={...})`` takes them
    (sizes in working pixels, at the run's working ``scale``), and ``min_size_px``, the smallest object kept in the
    input's pixels (``--min-size``, or the model's ``min_size`` at that scale). With ``--diameter each`` (``scale``
    None) every image has its own: ``min_size`` (with ``--min-size``) or ``min_size_px`` (without) is None."""
    opts = predictor.postprocess_for()
    if min_size is not None:  # (the postprocess's own min_size, lowered to --min-size where that is smaller)
        own = {**getattr(predictor, "postprocess_fallbacks", {}), **predictor.postprocess_options}.get("min_size")
        given = None if scale is None else float(min_size) * float(scale) ** 2
        opts["min_size"] = None if given is None else round(given if own is None else min(float(own), given), 3)
        px = float(min_size)
    else:
        px = None if scale is None else round(float(opts["min_size"]) / float(scale) ** 2, 1)
    return {**opts, "min_size_px": px}


def _add_lone(lone: list, frame, areas, min_size: Optional[float], min_working: Optional[float],
              scale: Optional[float]) -> None:
    """Add a frame's lone objects dropped as specks (``areas``: input pixels) to ``lone`` where any of them are
    :data:`LONE_NOT_TINY` times the smallest size kept or more: ``(frame, how many, smallest, largest, the smallest
    size kept)`` (:func:`_lone_dropped_note` says so when the run's total is :data:`LONE_SEVERAL` or more).
    ``min_size``: ``--min-size`` (input pixels); else ``min_working``, the model's (working pixels), at the frame's
    working ``scale``."""
    if min_size is not None:
        smallest = float(min_size)
    elif scale:
        smallest = float(min_working or 0) / float(scale) ** 2
    else:
        return
    big = np.asarray(areas)[np.asarray(areas) >= LONE_NOT_TINY * max(smallest, 1.0)]
    if len(big):
        lone.append((frame, int(len(big)), int(big.min()), int(big.max()), smallest))


def _lone_dropped_note(lone: list, frames: int, what: str) -> Optional[str]:
    """The note on the lone objects well above the smallest size kept that the speck step dropped (:func:`_add_lone`:
    ``lone``, the frames with any), counted over the whole run; None under :data:`LONE_SEVERAL` in all. Embryos'
    just-divided nuclei or a mixed culture's small ones: ``--keep-small`` keeps them."""
    if sum(x[1] for x in lone) < LONE_SEVERAL:
        return None
    n, sizes, where = _lone_words(lone, frames)
    kept = sorted({round(x[4]) for x in lone})
    kept_words = f"{kept[0]} px" if len(kept) == 1 else f"{kept[0]}-{kept[-1]} px"
    one = {"nuclei": "nucleus", "cells": "cell"}.get(what, what)
    return (f"note: {n} lone {what} of about {sizes}{where} were dropped as specks: each under a quarter of its "
            f"image's median {one} area with nothing beside it, though {LONE_NOT_TINY}x or more the smallest size "
            f"kept ({kept_words}, --min-size). If they are just-divided embryo {what} or small {what} of a mixed "
            "culture, run again with --keep-small, which keeps them")


def _lone_words(items: list, frames: int) -> tuple[int, str, str]:
    """Of :func:`_add_lone`'s or :func:`_add_spared`'s ``items`` (``(frame, how many, smallest, largest, ...)``, the
    frames with any) in a run of ``frames``: how many objects in all, their sizes ("340-900 px") and where (" in 7
    frames (t001, ...)"; "" for a single image)."""
    lo, hi = min(x[2] for x in items), max(x[3] for x in items)
    where = "" if frames == 1 else f" in {_count(len(items), 'frame')} ({_names([x[0] for x in items])})"
    return sum(x[1] for x in items), f"{lo} px" if lo == hi else f"{lo}-{hi} px", where


def _add_spared(spared: list, frame, areas, min_size: Optional[float]) -> None:
    """Add a frame's lone small objects that the speck step kept (an image of too few objects to judge by; ``areas``:
    input pixels) to ``spared``: ``(frame, how many, smallest, largest)``, those ``--min-size`` drops left out."""
    areas = np.asarray(areas)
    if min_size is not None:
        areas = areas[areas >= float(min_size)]
    if len(areas):
        spared.append((frame, int(len(areas)), int(areas.min()), int(areas.max())))


def _lone_kept_note(spared: list, frames: int, what: str, among: Optional[int]) -> Optional[str]:
    """The note on the lone small objects kept in images of fewer objects than the speck step's
    ``isolated_min_objects`` (``among``; :func:`_add_spared`), counted over the run; None where there were none. An
    early embryo's nuclei are often that small; a sparse field's debris would be counted with them."""
    if not spared:
        return None
    n, sizes, where = _lone_words(spared, frames)
    one = {"nuclei": "nucleus", "cells": "cell"}.get(what, what)
    kept = f"{n} lone small {what if n > 1 else one} of about {sizes}{where} {'were' if n > 1 else 'was'} kept"
    holds = "these images hold" if len(spared) > 1 else "its image holds"
    return (f"note: {kept}: under a quarter of the image's median {one} area with nothing beside it, which an image "
            f"of {among or 0} objects or more drops as a speck, but {holds} fewer (an early embryo's nuclei differ "
            "several-fold in size). If they are debris, --min-size AREA drops objects under AREA pixels")


def _check_model_task(model: str, kind: str, card: Optional[dict] = None) -> None:
    """Refuse a ``--model`` that is no ``kind`` model (``segment nuclei --model identity``), in one line: before
    anything reads the rest of its card, whose ``input`` and ``preprocessing`` only a segmentation or population
    card holds as this module reads them (identity's and livedead's are other shapes). ``card``: the model's card
    (None: read here; a card that cannot be read is left to the predictor's loading, which reports it)."""
    if card is None:
        from devolens.models import zoo

        try:
            card = zoo.card(model, kind)
        except DevolensError:
            return  # the predictor's loading reports it
    from devolens.models.zoo import model_task

    task = model_task(card)
    if task != kind:
        hint = ""
        if kind == "population":  # `devolens train` makes segmentation models only
            hint = ("; a population model is the nuclei model with a calibration of its counts (not made by `devolens "
                    "train`): give a shipped name (see `devolens models`) or a folder holding one's card.json")
        article = "an" if str(task)[:1] in "aeiou" else "a"  # an 'identity' model
        raise DevolensError(f"model {model!r} is {article} {task!r} model, not {kind!r}{hint}")


def _load_predictor(model: str, kind: str, batch_size: int, fast: bool, backend: str, **options):
    from devolens.models import zoo

    if batch_size < 1:
        raise DevolensError(f"--batch-size must be >= 1, got {batch_size}")
    if options.get("tta", 1) not in (1, 2, 4):
        raise DevolensError(f"--tta must be 1, 2 or 4, got {options['tta']}")
    for key in ("channel", "flatten"):  # not given: the card's own rule
        if options.get(key) is None:
            options.pop(key, None)
    _check_model_task(model, kind, zoo.card(model, kind))  # a training run's folder: segments what the command says
    from devolens.cli._common import collector_paused

    with collector_paused():  # PyTorch's import makes ~10^5 objects that a full collection would walk again and again
        return zoo.load(model, kind=kind, batch_size=batch_size, fast=fast, backend=backend, **options)


#: --flatten for a model whose card has no flatten of its own: an opening this many working pixels wide (the
#: nuclei card's value: about 3.4 nucleus diameters at its working scale)
DEFAULT_FLATTEN = 60.0


def _flatten(model: str, flatten: Optional[bool]) -> Optional[float]:
    """The ``--flatten/--no-flatten`` option as the predictors take it: None (not given: the card's own
    ``preprocessing.flatten``), 0 (off) or the card's width (``DEFAULT_FLATTEN`` when it has none)."""
    if flatten is None:
        return None
    if not flatten:
        return 0.0
    from devolens.models import zoo

    try:
        value = float((zoo.card(model).get("preprocessing") or {}).get("flatten") or 0.0)
    except DevolensError:
        return DEFAULT_FLATTEN  # the predictor's loading reports it
    return value if value > 0 else DEFAULT_FLATTEN


def _preparation(model: str, channel: str, diameter: "float | str | None",
                 flatten: Optional[float] = None) -> Optional[tuple]:
    """How the segmentation predictor of ``model`` will prepare frames, read off its card:
    ``(channel, scale, percentiles, flatten, outliers)`` (its ``network.prep_key``), so that the read-ahead thread
    prepares them while PyTorch loads. The predictor checks the key and prepares again if it
    differs, so this can only cost time, never change a result. None when not applicable."""
    from devolens.models import zoo

    try:
        card = zoo.card(model)
    except DevolensError:
        return None  # the predictor's loading reports it
    from devolens.predict.postprocess import diameter_scale, prep_key

    inp, pre = card.get("input", {}), card.get("preprocessing", {})
    reference = (inp.get("diameter") or {}).get("reference")
    if isinstance(diameter, str):  # "auto": most images keep the card's scale; others are prepared again
        diameter = None
    if diameter is not None and not (reference and diameter > 0):
        return None  # the predictor reports it
    scale = diameter_scale(float(inp.get("scale", 1.0)), reference, diameter)
    return prep_key(channel or pre.get("channel", "auto"), scale, pre.get("percentiles", (1.0, 99.8)),
                    float(pre.get("flatten", 0.0)) if flatten is None else flatten, float(pre.get("outliers", 0.0)))


def _sizing_card(model: str) -> dict:
    """The card whose ``input.diameter`` sizes ``model``'s input: its own, a population model's nuclei model's (a
    count regressor's, which has none: empty)."""
    from devolens.models import zoo

    card = zoo.card(model)
    if card.get("task") == "population":
        composition = card.get("method", "composition") == "composition"
        return zoo.card(card.get("nuclei_model", "nuclei")) if composition else {}
    return card


def _diameter(value: "str | float | None", model: str, *, label: Optional[str] = None,
              um_per_pixel: Optional[float] = None, each: bool = True) -> "float | str | None":
    """The ``--diameter`` option: a number of pixels, ``auto`` (estimated from the images by the
    model's size model, once per input), ``each`` (for every image on its own) or ``none`` (no
    resizing). Left out: ``auto`` when ``model`` (or, for a population model, its nuclei model)
    has a size model, else none. ``label`` and ``um_per_pixel``: ``value`` is a diameter given in micrometres,
    converted to pixels at that many µm per pixel (:func:`_diameter_option`): one out of the model's range is named
    as given and the range said in µm too (:func:`devolens.predict.segment.check_diameter`). ``each``: whether the
    command takes ``each`` (``population`` does not: its refusal of a value that is none of them names only what it
    takes)."""
    if value is None:
        try:
            card = _sizing_card(model)
        except DevolensError:
            return None  # the predictor's loading reports it
        return "auto" if ((card.get("input") or {}).get("diameter") or {}).get("auto") else None
    text = str(value).strip().lower()
    if text in ("auto", "each"):
        return text
    if text in ("none", "off"):
        return None
    try:
        number = float(text)
    except ValueError:
        words = "'auto', 'each' or 'none'" if each else "'auto' or 'none'"
        raise DevolensError(f"--diameter must be a number of pixels, of micrometres ('7um'), {words}, got {value!r}") \
            from None
    if not (number > 0 and np.isfinite(number)):
        auto = "; for an automatic estimate leave it out or give auto (cellpose's 0)" if number == 0 else ""
        raise DevolensError(f"--diameter must be a positive number of pixels, got {value}{auto}")
    from devolens.predict.segment import check_diameter

    try:  # the model's range, checked before anything loads (population: its nuclei model's)
        card = _sizing_card(model)
    except DevolensError:
        return number  # the predictor's loading reports it
    reference = ((card.get("input") or {}).get("diameter") or {}).get("reference")
    if reference:
        check_diameter(number, reference, label=label or f"--diameter {number:g} px", um_per_pixel=um_per_pixel)
    return number


#: pixel sizes that differ by more than this share (x from y, or one file of a folder from another, or --pixel-size
#: from a file's own) are not one size
_PIXEL_TOLERANCE = 0.01
#: a pixel size coarser than this many micrometres is noted: a microscope's are finer (a 4x objective's camera
#: pixel is about 1.6 µm), a scanner's 300 dots per inch saved as a TIFF's resolution read 85 µm
_COARSE_PIXEL = 10.0
#: how to give the size the input does not hold (the end of every refusal of a µm diameter)
_PIXEL_SIZE_HOW = ("give the pixel size with --pixel-size (micrometres per pixel, e.g. --pixel-size 0.1) or the "
                   "diameter in pixels")


def _microns(value) -> Optional[float]:
    """The micrometres of a ``--diameter`` such as ``7um``, ``7 µm`` or ``7 microns`` (None: not given in
    micrometres; :func:`devolens.io.stacks.microns_in`, whose words the files' and tables' units share)."""
    from devolens.io.stacks import microns_in

    return None if value is None else microns_in(str(value))


def _diameter_option(value: Optional[str], model: str, input_path: Path, pixel_size: Optional[float] = None, *,
                     calibrations: Optional[_Calibrations] = None, skipped: frozenset = frozenset(),
                     carried: bool = False, each: bool = True) -> "tuple[float | str | None, Optional[dict]]":
    """``--diameter`` as :func:`_diameter` takes it, with a diameter in micrometres (``7um``) converted to the input's
    pixels: biologists know their nuclei's width in µm, the model needs it in pixels. The pixel size is
    ``--pixel-size`` (µm per pixel) or the input's own calibration (:func:`_input_pixel_size`), checked before any
    output. ``calibrations``: the input's files' pixel sizes, read once for this and for the label images
    (:class:`_Calibrations`); ``skipped``: the names of the files a given curation report flags (never segmented:
    their calibration is not asked). Returns the diameter and, for a µm diameter, how it was converted (``given``,
    ``micrometres``, ``um_per_pixel``, ``pixel_size_from``, ``pixels``; ``notes``: what the command prints about the
    pixel size, in order), for the summary line and the records. ``carried``: the command's outputs carry
    ``--pixel-size`` (segment's label images, :func:`_carried_notes`), so it is taken without a µm diameter too
    (which it then leaves as it is); otherwise it is refused alone. ``each``: as :func:`_diameter` takes it."""
    microns = _microns(value)
    if pixel_size is not None:
        from devolens.checks import pixel_size as checked_pixel_size

        checked_pixel_size(pixel_size, "--pixel-size")
        if microns is None and not carried:  # it would do nothing: an option that does nothing silently is a trap
            raise DevolensError("--pixel-size converts a --diameter given in micrometres (e.g. --diameter 7um) to "
                                "pixels: give the diameter in µm, or leave --pixel-size out")
    if microns is None:
        return _diameter(value, model, each=each), None
    given = str(value).strip()
    if not (microns > 0 and np.isfinite(microns)):
        raise DevolensError(f"--diameter must be a positive number of micrometres, got {value!r}")
    calibrations = calibrations if calibrations is not None else _Calibrations(input_path)
    if pixel_size is not None:
        size, origin = float(pixel_size), "--pixel-size"
        notes = _overridden(size, calibrations, skipped)
    else:
        size, notes = _input_pixel_size(input_path, given, calibrations, skipped, each=each)
        origin = "calibration"
    coarse = _coarse(size, origin)
    if coarse is not None:
        notes.append(f"note: {coarse}")
    pixels = float(f"{microns / size:.6g}")  # 7 / 0.2: 35, not 35.00000000000001
    try:
        diameter = _diameter(pixels, model, label=f"--diameter {given} ({pixels:g} px at {size:g} µm per pixel)",
                             um_per_pixel=size)
    except DevolensError as exc:  # out of the model's range: where a coarse pixel size is why, said there too
        if coarse is None:
            raise
        raise DevolensError(f"{exc}; note: {coarse}") from None
    return diameter, {"given": given, "micrometres": microns, "um_per_pixel": size, "pixel_size_from": origin,
                      "pixels": pixels, "notes": notes}


def _coarse(size: float, origin: str) -> Optional[str]:
    """The words on a pixel size coarser than :data:`_COARSE_PIXEL` µm, from ``--pixel-size`` or the input's
    ``calibration`` (``origin``): a mistaken unit, or a scanner's dots per inch; None for a microscope's."""
    if size <= _COARSE_PIXEL:  # (not 1.0, ImageJ's "1 micron per pixel" of an image never calibrated: Fiji shows it)
        return None
    if origin == "--pixel-size":
        return (f"--pixel-size {size:g} is coarse for a microscope image ({size:g} µm per pixel: the option takes "
                "micrometres per pixel)")
    return (f"the input's calibration gives {size:.4g} µm per pixel, coarse for a microscope image (a "
            "scanner's or a printer's dots per inch saved as its resolution?): check it, or give --pixel-size")


def _carried_notes(pixel_size: Optional[float], conversion: Optional[dict], calibrations: _Calibrations,
                   report, skip: set) -> list:
    """The notes on a ``--pixel-size`` given without a µm ``--diameter`` (``conversion`` None; a µm diameter's
    conversion holds its own): the label images carry it over a TIFF's own, different calibration (the frames
    a curation ``report`` flags, ``skip``, left out), and a size coarse for a microscope (:func:`_coarse`)."""
    if pixel_size is None or conversion is not None:
        return []
    size = float(pixel_size)
    notes = _overridden(size, calibrations, _flagged_files(report, skip), use=" for the label images")
    coarse = _coarse(size, "--pixel-size")
    return notes + ([f"note: {coarse}"] if coarse is not None else [])


def _diameter_and_skip(value: Optional[str], model: str, input_path: Path, pixel_size: Optional[float],
                       skip_flagged: Optional[Path], calibrations: _Calibrations, *, stack_z: str,
                       channel: Optional[int], pages: str, progress=None, carried: bool = False,
                       each: bool = True, checked=None):
    """:func:`_diameter_option` and :func:`_skip_set` (``(diameter, conversion, skip, curation, report)``), in the
    order that lets a µm diameter leave out the files a given curation report flags: that report is read first
    (a moment's work), so that a file it flags (a corrupt one, a blank snapshot) needs no calibration. ``auto``
    curates the whole input first: the diameter is checked before that pass, its refusal not kept waiting for it
    (the files it will flag are not known then). ``carried`` and ``each``: as :func:`_diameter_option` takes them.
    ``checked`` (a function of no argument, or None) is called once the diameter is checked, before the curation
    pass: where the command says how it reads the input, before the work."""
    reading = {"stack_z": stack_z, "channel": channel, "pages": pages, "progress": progress}
    if _microns(value) is None or skip_flagged is None or _report_option(skip_flagged) == AUTO_CURATE:
        diameter, conversion = _diameter_option(value, model, input_path, pixel_size, calibrations=calibrations,
                                                carried=carried, each=each)
        if checked is not None:
            checked()
        return (diameter, conversion, *_skip_set(skip_flagged, input_path, **reading))
    skip, curation, report = _skip_set(skip_flagged, input_path, **reading)
    diameter, conversion = _diameter_option(value, model, input_path, pixel_size, calibrations=calibrations,
                                            skipped=_flagged_files(report, skip), carried=carried, each=each)
    if checked is not None:
        checked()
    return diameter, conversion, skip, curation, report


def _flagged_files(report, skip: set) -> frozenset:
    """The file names (its ``file`` column) of the frames at the positions ``skip`` of a curation report's table:
    a folder's flagged images (a stack's frames are named apart from its file: never all of a file)."""
    if report is None or not skip or "file" not in getattr(report, "columns", ()):
        return frozenset()
    import pandas as pd

    frames = pd.to_numeric(report["frame"], errors="coerce")
    return frozenset(name for name in report.loc[frames.isin(sorted(skip)).to_numpy(), "file"]
                     if isinstance(name, str) and name)


def _in_microns(found) -> Optional[tuple[float, float]]:
    """``(x, y)`` in micrometres of a pixel size ``(x, y, unit)`` (None: its unit is no metric length)."""
    from devolens.io.stacks import to_microns

    x, y, unit = found
    x, y = to_microns(x, unit), to_microns(y, unit)
    return None if x is None or y is None else (x, y)


def _apart(a: float, b: float) -> bool:
    """Whether two pixel sizes are more than :data:`_PIXEL_TOLERANCE` apart (not one size)."""
    return max(a, b) > min(a, b) * (1 + _PIXEL_TOLERANCE)


def _read_files(calibrations: _Calibrations, skipped: frozenset) -> list:
    """``(file, its pixel size)`` of the input's files whose frames are read: those ``skipped`` (flagged by a curation
    report) left out, unless that would leave none (nothing is segmented then, whatever the diameter); those whose
    header cannot be read too: their reader stops at them, naming them, or a report flags them."""
    files = [f for name, f in calibrations.files.items() if name not in skipped] or list(calibrations.files.values())
    return [(f, calibrations.of(f)) for f in files]


def _overridden(size: float, calibrations: _Calibrations, skipped: frozenset, use: str = "") -> list:
    """The note (a list of at most one) that ``--pixel-size`` ``size`` was used (``use``: what for, said after
    'used') over the input's own, different calibration: a mistyped option, or one meant for another input, would
    otherwise go unseen."""
    differ = []
    for file, found in _read_files(calibrations, skipped):
        own = None if found is None or found is _UNREADABLE else _in_microns(found)
        if own is not None and _apart(sum(own) / 2, size):
            differ.append((file, sum(own) / 2))
    if not differ:
        return []
    file, own = differ[0]
    if len(differ) == 1:
        return [f"note: --pixel-size {size:g} µm was used{use} over {file.name}'s own calibration ({own:.4g} µm "
                "per pixel)"]
    return [f"note: --pixel-size {size:g} µm was used{use} over the files' own calibrations ({file.name} {own:.4g} "
            f"µm per pixel, and {_count(len(differ) - 1, 'other file')})"]


def _input_pixel_size(input_path: Path, given: str, calibrations: _Calibrations,
                      skipped: frozenset = frozenset(), *, each: bool = True) -> tuple[float, list]:
    """The input's pixel size in micrometres from its calibration (:func:`devolens.io.stacks.pixel_size`: a TIFF's
    ImageJ or OME one; a folder's files each their own, which must agree: those a curation report flags, ``skipped``,
    and those whose header cannot be read, which their reader reports, left out), and its notes: one when its pixels
    are not square (the mean of x and y is used). Refuses, naming the file, an input without one (a PNG, a JPEG, a
    video, an uncalibrated TIFF), a unit that is no length in the metric system (ImageJ's ``pixel``, ``inch``) and a
    folder of several pixel sizes: a µm diameter would be a different number of pixels in each (``each``: as
    :func:`_diameter` takes it; False, population's, which reads one movie and refuses ``--diameter each``: its
    own advice)."""
    if not input_path.exists():
        from devolens.io.frames import missing_input

        raise missing_input(input_path)
    if input_path.is_dir() and not calibrations.files:
        raise DevolensError(f"--diameter {given}: no images in the folder to read a pixel size from", path=input_path)
    sizes: list[tuple[Path, float]] = []
    uneven: list[tuple[Path, float, float]] = []
    unreadable: list[Path] = []
    for file, found in _read_files(calibrations, skipped):
        if found is _UNREADABLE:
            unreadable.append(file)
            continue
        if found is None:
            kind = ("a TIFF without a pixel size calibration" if file.suffix.lower() in (".tif", ".tiff") else
                    "no pixel size (only TIFFs carry one, as ImageJ or OME write it)")
            raise DevolensError(f"--diameter {given}: the file holds {kind}: {_PIXEL_SIZE_HOW}", path=file)
        microns = _in_microns(found)
        if microns is None:
            raise DevolensError(f"--diameter {given}: the file's calibration is in {found[2]!r}, not in micrometres "
                                f"(nor in nm, mm or another metric length, which are converted): {_PIXEL_SIZE_HOW}",
                                path=file)
        x, y = microns
        if abs(x - y) > _PIXEL_TOLERANCE * (x + y) / 2:
            uneven.append((file, x, y))
        sizes.append((file, (x + y) / 2))
    if not sizes:  # nothing but TIFFs that cannot be read: refused as their reader refuses them
        from devolens.io.frames import broken_link_words, is_broken_link
        from devolens.io.stacks import stack_info

        if is_broken_link(unreadable[0]):
            raise DevolensError(broken_link_words(unreadable[0]), path=unreadable[0])
        stack_info(unreadable[0])
        raise DevolensError(f"--diameter {given}: the file cannot be read for its pixel size", path=unreadable[0])
    low, high = min(sizes, key=lambda s: s[1]), max(sizes, key=lambda s: s[1])
    if _apart(low[1], high[1]):
        advice = (": segment them separately, or give the diameter in pixels or --diameter each" if each else
                  ", and a movie is filmed at one magnification: count the frames of each pixel size separately, or, "
                  "where a calibration is wrong, give the diameter in pixels or the pixel size with --pixel-size")
        raise DevolensError(f"--diameter {given}: the images have different pixel sizes ({low[0].name} {low[1]:.4g} "
                            f"µm, {high[0].name} {high[1]:.4g} µm), so one diameter in µm is a different number of "
                            f"pixels in each{advice}", path=input_path)
    notes = []
    if uneven:
        file, x, y = uneven[0]
        which = (file.name if len(calibrations.files) == 1 else
                 f"{file.name}{f' and {len(uneven) - 1} other files' if len(uneven) > 1 else ''}")
        notes.append(f"note: {which}: the pixels are not square ({x:.4g} x {y:.4g} µm): --diameter {given} was "
                     "converted with their mean")
    return float(f"{sizes[0][1]:.6g}"), notes


def _diameter_words(conversion: Optional[dict]) -> str:
    """A µm ``--diameter`` in the summary line: ``diameter 7 µm = 35 px at 0.2 µm per pixel`` ('' for any other)."""
    if not conversion:
        return ""
    origin = " (--pixel-size)" if conversion["pixel_size_from"] == "--pixel-size" else ""
    return (f"diameter {conversion['micrometres']:g} µm = {conversion['pixels']:.4g} px at "
            f"{conversion['um_per_pixel']:.4g} µm per pixel{origin}")


def _diameter_record(conversion: Optional[dict]) -> dict:
    """A µm ``--diameter`` for the records' options: ``diameter_um`` (the text given, its micrometres, the pixel size
    and where it came from, the pixels used; ``diameter`` holds the pixels too); nothing for any other diameter."""
    if not conversion:
        return {}
    return {"diameter_um": {k: conversion[k] for k in ("given", "micrometres", "um_per_pixel", "pixel_size_from",
                                                       "pixels")}}


def _estimate_note(estimate, what: str, saturated: Optional[float] = None) -> Optional[str]:
    """What ``--diameter auto`` did, in words (None when it judged the images and left them as they are). The
    spread of the frames it combined is recorded, not said: a blurred, bleached, drifting movie's frames read
    1.06-1.68x, but an as-rendered movie's 0.58-0.94x and the real reference frames' 0.79-1.42x (thirtieth session's
    review): no threshold told them apart."""
    if estimate is None:
        return None
    if not estimate.trusted:
        from devolens.predict.sizing import unjudged_advice, untrusted_reason

        why = untrusted_reason(estimate, what, saturated)  # the library's DiameterWarning says the same
        if why is None:  # nothing above the noise in the images looked at: their note says so
            return None
        # a note: a magnification left unjudged may be wrong (the library's DiameterWarning), so --quiet keeps it
        return f"note: diameter auto: {why}: used as they are ({unjudged_advice(what)})"
    if getattr(estimate, "spots", None) is not None:  # nuclei smaller than the size model reads: their spots' size
        from devolens.predict.sizing import spots_words

        return f"[yellow]note:[/] diameter auto: {spots_words([estimate], what)}"
    if estimate.diameter is None:
        return None
    # a bright uneven backdrop: the magnification was (mostly) read on the flattened images (sizing.BackdropReader)
    haze = " (read past a bright uneven background)" if getattr(estimate, "backdrop", 0.0) >= 0.5 else ""
    # the resize, not a nucleus width: the diameter is the model's measure (a median over all stages), and nuclei of
    # later stages are smaller than it, so "segmented as if 25 px wide" read as a size to check invited a wrong one.
    # One decimal: the whole pixels it said (--diameter 20 for 19.716) gave another working scale and result
    text = (f"diameter auto: the images look {estimate.magnification:.2g}x as magnified as the model's training "
            f"frames{haze}; resized {estimate.resize:.2g}x for the network, as --diameter {estimate.diameter:.1f} "
            "would do (give --diameter to set it)")
    return text


def _refusal_named(exc: DevolensError, input_path: Path, source: "_Source", read: list,
                   each: bool) -> Optional[DevolensError]:
    """``--diameter auto``'s refusal of an estimate that would resize the images beyond the range the working scale
    may be resized to (the library's error, its ``estimate`` attached), naming the input; a folder's also names the
    images the estimate was made from (``read``: the positions of the frames read so far, in order, which the
    estimate's ``frames`` index) and, where the command takes it (``each``), offers ``--diameter each``. None for
    any other error (or one already naming its file)."""
    est = getattr(exc, "estimate", None)
    if est is None or exc.path is not None:
        return None
    text = exc.message
    if source.names is not None and len(source.names) > 1:  # a folder: which of its images showed it
        files = [source.names[read[i]] for i in (est.frames or []) if 0 <= i < len(read)]
        if files:
            text += f". The estimate came from its image{'s' if len(files) > 1 else ''} {_names(files)}"
        if each:
            text += f"{';' if files else '.'} --diameter each estimates every image of the folder on its own"
    return DevolensError(text, path=input_path)


def _estimates_note(estimates, what: str) -> Optional[str]:
    """What ``--diameter each`` did, in words (None when every image was used as it is); images whose resizing was
    held to the range the working scale may be resized to (:class:`~devolens.predict.sizing.DiameterEstimate`'s
    ``held``) said too, as a note (the library's DiameterWarning)."""
    if not estimates:
        return None
    resized = [e for e in estimates if e.diameter is not None]
    from devolens.predict.sizing import untrusted_reason

    few = sum(1 for e in estimates if untrusted_reason(e, what))  # (images of noise: their own note)
    held = [e for e in resized if getattr(e, "held", None) is not None]
    spots = [e for e in resized if getattr(e, "spots", None) is not None]  # segmented at their spots' size
    if not resized and not few:
        return None
    # images left unjudged, held or sized by their spots: a note, which --quiet keeps (as auto's); resizes alone are a
    # summary, which it drops
    words = [f"{'note: ' if few or held or spots else ''}diameter each: {len(resized)} of {len(estimates)} images "
             "resized"]
    if resized:
        m = [e.magnification for e in resized]
        words.append(f" (they look {min(m):.2g}-{max(m):.2g}x as magnified as the model's training frames)")
    if held:
        from devolens.predict.sizing import held_words

        words.append(f"; {len(held)} of them {held_words(held)} (segment.json's magnification_estimate names each "
                     "image's resize; give --diameter in pixels if that is wrong)")
    if spots:
        from devolens.predict.sizing import spots_words

        words.append(f"; {len(spots)} of them {spots_words(spots, what, each=True)} (segment.json's "
                     "magnification_estimate names each image's resize; give --diameter in pixels if that is wrong)")
    if few:
        from devolens.predict.sizing import MIN_OBJECTS

        words.append(f"; {few} showed fewer than {MIN_OBJECTS} separate bright regions at a first look (too few "
                     f"{what}, or touching too much to be told apart; or the images were too narrow), too few to "
                     "judge: used as they are")
    return "".join(words)


def _color(color: Optional[str]) -> Optional[str]:
    """The ``--color`` option, checked (the predictors' ``channel``; None: the model card's rule)."""
    if color is not None:
        from devolens.predict.postprocess import check_channel

        check_channel(color, "--color")
    return color


def _check_network_options(precision: str, backend: str, fast: bool = True) -> None:
    """``--precision`` and ``--backend`` checked before anything loads (the predictors check them again), and
    ``--no-fast`` (``fast`` False: fp32, as its help says) with ``--precision int8`` or ``bf16``: refused, not run in
    the precision asked for while the other option goes unheeded."""
    from devolens.predict.devices import check_backend, check_precision

    check_precision(precision, "--precision")
    check_backend(backend, "--backend")
    if not fast and precision in ("int8", "bf16"):
        raise DevolensError(f"--no-fast runs the network in fp32, --precision {precision} in {precision}: give one of "
                            f"them (--precision {precision} alone, or --no-fast alone for fp32)")
    if backend == "onnx":  # its packages before any work (a --skip-flagged auto pass ran first)
        from devolens.predict._engine import check_onnx_backend

        # (the device is checked where it is resolved, and onnx where the network is exported: a model's shipped
        # int8 graph needs onnxruntime only)
        check_onnx_backend("cpu", export=False)


def _progress_total(total: int):
    return total if total > 0 else None


# ---------------------------------------------------------------------------- segmentation
#: what ``devolens segment`` writes into its --out folder (replaced on a new run)...
SEGMENT_OUTPUTS = ("labels", "probs", "objects.csv", "counts.csv", "overlays", "overlay.mp4", "curation.csv")
#: ...and the record that it did (command, input, model, counts): the mark that those entries may be replaced
SEGMENT_RECORD = "segment.json"
#: counts.csv's column of each row's frame in overlay.mp4 where the video leaves out frames of the input (render
#: --video's frames.csv column of the name: devolens.render.dataset.VIDEO_FRAME_COLUMN, not imported for it)
VIDEO_FRAME_COLUMN = "video_frame"


#: a new ``segment`` --out folder named with one of these (a table's, a record's, an image's, a video's, a store's)
#: gets a note (:func:`_file_named_note`): ``--out centroids.csv`` silently made a folder of that name
FILE_LIKE_SUFFIXES = (".csv", ".tsv", ".txt", ".json", ".xlsx", ".h5", ".hdf5", ".zip", ".npy",
                      *IMAGE_SUFFIXES, *ANIMATED_SUFFIXES, *VIDEO_SUFFIXES)


def _file_named_note(out: Path) -> str:
    """The note on a new ``segment`` --out folder named as a file (:data:`FILE_LIKE_SUFFIXES`). A note, not a
    refusal: the commands that write folders (render, segment livedead, demo) take any name."""
    return (f"--out {out.name} ends in {out.suffix}, as a file's name: segment made a folder of that name (labels/, "
            "counts.csv, objects.csv: the objects' centroids are in its objects.csv), which other tools may take for a "
            f"file; --out {out.with_suffix('').name or 'seg'} names it as a folder")


def _check_segment_out(out: Path, input_path: Path, kind: Optional[str] = None) -> None:
    """Refuse an --out folder holding entries of the names ``segment`` writes that an earlier ``segment`` run did
    not write (no ``segment.json`` there): a render folder's ground-truth ``labels/`` and ``objects.csv``, a
    project's own ``labels/``... would be replaced; or that an earlier run of the other ``kind`` wrote (nuclei into
    a folder of membranes' cells: its record's ``kind``, or its model's name). Refuse too an input that is one of
    those entries of --out (an earlier run's ``overlay.mp4`` segmented into the same folder): the run replaces or
    removes them. Refuse a model's own folder (a training run, a tune study, an exported model: what ``--model``
    reads): its results would be mixed with the model's files and shared with it, and ``models export`` takes it
    for no export any more.

    In a command, --out's lock is taken first and held until the command ends
    (:func:`~devolens.cli._common.hold_output_folder`): a second run writing it is refused now, before the model is
    loaded or a frame read."""
    from devolens.cli._common import hold_output_folder, model_folder_words

    hold_output_folder(out)
    if not out.is_dir():
        return

    holds = model_folder_words(out)
    if holds:
        raise DevolensError(f"--out is {holds}: segment's outputs would be mixed with the model's files (and shared "
                            "with it); choose another --out", path=out)
    from devolens.io.atomic import output_file

    for name in (*SEGMENT_OUTPUTS, SEGMENT_RECORD):  # a read-only one is refused now, not after all the work
        if (out / name).is_file():
            output_file(out / name)
    try:
        source = input_path.resolve()
    except OSError:
        source = None
    for name in SEGMENT_OUTPUTS:
        if source is not None and _within(source, (out / name).resolve()):
            raise DevolensError(f"the input is {name} of --out, which this run replaces: choose another --out "
                                "(or move the input out of it)", path=input_path)
    from devolens.cli._common import is_run_record

    if is_run_record(out / SEGMENT_RECORD, "segment"):  # (a segment.json of another tool's is no earlier run's)
        try:
            record = json.loads((out / SEGMENT_RECORD).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            record = None
        if isinstance(record, dict) and kind is not None:
            named = record.get("model") if record.get("model") in ("nuclei", "membrane") else None  # (older records)
            earlier = record.get("kind", named)
            if earlier in ("nuclei", "membrane") and earlier != kind:
                raise DevolensError(f"--out holds the outputs of `devolens segment {earlier}` ({SEGMENT_RECORD}), "
                                    f"which this run ({kind}) would replace: give another folder for the {kind}",
                                    path=out)
        found = _foreign_segment_files(out)
        if found:
            from devolens.cli._common import foreign_files_error

            raise foreign_files_error(out, found, "segment")
        return
    clash = [name for name in (*SEGMENT_OUTPUTS, SEGMENT_RECORD) if (out / name).exists() or (out / name).is_symlink()]
    if clash:
        raise DevolensError(f"--out already holds {', '.join(clash)} that devolens segment did not write (a render's "
                            "ground truth? labels of your own?) and would replace: choose another folder",
                            path=out)


#: the subfolders of a segment --out that a rerun replaces whole, and the ending of the names segment writes there
#: (after the frame's name: :meth:`_Source.label_name`, :meth:`_Source.overlay_name`; probs/ with --probabilities:
#: the label image's name, ``_probs.tif`` for ``_labels.tif``, as segment livedead names a well's probabilities)
SEGMENT_FOLDER_FILES = {"labels": "_labels.tif", "probs": "_probs.tif", "overlays": "_overlay.png"}
#: a video's label image's name before ``_labels.tif``: its stem and the frame's position (:meth:`_Source.label_name`)
_VIDEO_LABEL_STEM = re.compile(r".+_f(\d{5,})")


def _foreign_segment_files(out: Path) -> list[str]:
    """The files in the labels/ and overlays/ of an earlier segment run's --out that it did not write (a label image
    corrected by hand and saved beside the originals, notes), as ``labels/NAME``
    (:func:`~devolens.cli._common.foreign_files`): its own are named for the frames its counts.csv lists (by the
    naming pattern alone where counts.csv cannot be read)."""
    from devolens.cli._common import earlier_names, foreign_files

    frames = earlier_names(out / "counts.csv", "frame")

    def own(stem: str) -> bool:
        if stem in frames:
            return True
        video = _VIDEO_LABEL_STEM.fullmatch(stem)  # (a video's frames: positions in counts.csv)
        return video is not None and str(int(video.group(1))) in frames

    return foreign_files(out, SEGMENT_FOLDER_FILES, None if frames is None else own)


def _owned(out: Path, report: Optional[Path]) -> tuple[str, ...]:
    """The entries of --out an earlier segment run wrote that this run replaces or removes: all of
    :data:`SEGMENT_OUTPUTS` but one that holds the curation report this run was given (``--skip-flagged
    OUT/curation.csv``, a report kept or edited by hand: read, not written again, and never removed)."""
    if report is None or (str(report) == AUTO_CURATE and not Path(report).exists()):
        return SEGMENT_OUTPUTS
    given = Path(report).resolve()
    return tuple(name for name in SEGMENT_OUTPUTS if not _within(given, (out / name).resolve()))


def _within(path: Path, entry: Path) -> bool:
    """Whether the resolved ``path`` is ``entry`` or inside it."""
    return path == entry or entry in path.parents


def _estimate_fields(estimate, names: Optional[list] = None) -> dict:
    """A DiameterEstimate's fields for the records (``magnification``: relative to the model's training framing;
    ``diameter``: None when the images were used as they are; ``resize``: how much they were resized;
    ``per_image`` and ``frames``: each image's estimate and its frame, named by ``names`` (the frames in the order
    read) where known, else its position among them from 0, None when unknown; ``decided``: which of them the
    median was taken over (those showing enough objects; all when none did), None when unknown; ``spread``: the
    smallest and largest of those; ``held``: whether the resizing the estimate asked lay beyond the range the working
    scale may be resized to and was held to it (``diameter="each"``; ``"auto"`` refuses such an estimate), and then
    ``estimated_diameter`` and ``estimated_resize``: what the estimate asked, ``diameter`` and ``resize`` what was
    used)."""
    positions = getattr(estimate, "frames", None)
    frames = None if positions is None else [
        names[p] if names is not None and 0 <= p < len(names) else json_number(p) for p in positions]
    spread, decided = getattr(estimate, "spread", None), getattr(estimate, "used", None)
    asked = getattr(estimate, "held", None)  # (DiameterEstimate.held: the diameter estimated, before the hold)
    held = {} if asked is None or estimate.diameter is None else {
        "estimated_diameter": json_number(asked),
        "estimated_resize": json_number(estimate.resize * estimate.diameter / asked)}
    spots = getattr(estimate, "spots", None)  # segmented at the bright spots' size, not the size model's reading
    sized = {} if spots is None else {
        "from": "spots", "spots_diameter": json_number(spots),
        "model_diameter": json_number(estimate.model_diameter), "model_resize": json_number(estimate.model_resize)}
    return {"magnification": json_number(estimate.magnification), "diameter": json_number(estimate.diameter),
            "resize": json_number(estimate.resize), "held": bool(held), **held, **sized,
            "trusted": json_number(estimate.trusted),
            "small": json_number(estimate.small), "backdrop": json_number(estimate.backdrop),
            "per_image": [json_number(v) for v in (estimate.per_image or [])], "frames": frames,
            "decided": None if decided is None else [bool(u) for u in decided],
            "spread": None if spread is None else [json_number(v) for v in spread]}


def _sizing_record(diameter: "float | str | None", estimate=None, estimates=None, frames=None,
                   resize: Optional[float] = None) -> dict:
    """How the images' magnification was decided, for the records: ``by`` ``"auto"`` (estimated once per input:
    the estimate's fields), ``"each"`` (for every image: ``per_image``, one entry per image segmented, with its
    frame where the frames are known), ``"hand"`` (``--diameter`` a number of pixels) or ``"none"`` (no
    resizing). ``frames``: the frames' names in the order they were read (each: one per estimate; auto: the
    estimate's frames are positions in them)."""
    if diameter == "each":
        record: dict = {"by": "each"}
        if estimates:
            rows = [_estimate_fields(e) for e in estimates]
            for row in rows:
                for key in ("per_image", "frames", "decided", "spread"):  # one image each: its own magnification
                    row.pop(key, None)
                if not row["held"]:  # (said only of the images held: their rows name the estimate and its hold)
                    del row["held"]
            if frames is not None and len(frames) == len(rows):
                rows = [{"frame": f, **row} for f, row in zip(frames, rows)]
            record["per_image"] = rows
        else:
            record["per_image"] = None
            record["note"] = "the per-image estimates were not at hand"
        return record
    if diameter == "auto":
        record = {"by": "auto", **(_estimate_fields(estimate, frames) if estimate is not None else
                                   {"note": "no estimate was made (no frame read)"})}
    elif diameter is None:
        record = {"by": "none"}
    else:
        record = {"by": "hand", "diameter": json_number(diameter)}
    if resize is not None:
        record["resize"] = json_number(resize)
    return record


def _report_option(report: Optional[Path]) -> Optional[str]:
    """``--skip-flagged`` for the records: ``auto``, or the report's absolute path (None: not given)."""
    if report is None:
        return None
    if str(report) == AUTO_CURATE and not Path(report).exists():
        return AUTO_CURATE
    return absolute_path(report)


def _curation_record(report: Optional[Path], written: Optional[Path] = None) -> Optional[dict]:
    """The records' ``curation_report``: the report ``--skip-flagged`` read, ``{"by": "given"}`` with its absolute
    ``path``, ``bytes`` and ``sha256`` (:func:`devolens.provenance.input_entry`: a report edited by hand after the run
    tells by its digest), or ``{"by": "auto", "path": ...}`` for one made on the fly (``written``: where the run wrote
    it); None without ``--skip-flagged``."""
    option = _report_option(report)
    if option is None:
        return None
    if option == AUTO_CURATE:
        return {"by": AUTO_CURATE, "path": None if written is None else absolute_path(written)}
    from devolens.provenance import input_entry

    return {"by": "given", **input_entry(report)}


def _segment_record(kind: str, input_path: Path, model: str, frames: int, objects: int, summary: dict, *,
                    options: Optional[dict] = None, weights_sha256: Optional[str] = None,
                    model_sha256: Optional[str] = None, magnification: Optional[dict] = None,
                    notes: Optional[list] = None) -> str:
    """``segment.json``: how the outputs were made. ``command``: the command line (``devolens segment ...``, see
    :func:`devolens.provenance.command_line`); ``input``, ``model``, ``devolens``, ``kind`` (nuclei or membrane: what
    was segmented), ``frames``, ``objects`` and ``summary``'s keys
    (skipped frames, precision, backend, ``int8_activations``: 8 or 7 bits where the network ran int8
    (:func:`devolens.provenance.int8_activations`), ``inputs``: the input's sha256 and size
    (:func:`devolens.provenance.frames_inputs`), ``device``: where the network ran, ``--device auto`` resolved;
    working scale; ``postprocess``: the post-processing that ran, :func:`_postprocess_record`); ``weights_sha256``
    of the model's weights, ``model_sha256`` of all its files (card and weights:
    :func:`devolens.provenance.model_sha256`); ``options``: every option that changes results, as this run
    took them (``device`` as asked, e.g. ``auto``); ``magnification_estimate`` (see
    :func:`_sizing_record`); ``labels_pixel_size``: the calibration the label images carry, whether they were given
    ``--pixel-size`` or not (:func:`_calibration_record`; ``options.pixel_size`` is the option as given);
    ``no_signal``: the frames of no signal (one grey level throughout, or black: population's test,
    :func:`_no_signal_kind`; asked of the frames given no objects or of a few grey levels), which a note names;
    ``exif_turned``: the frames read from image files that were turned as their EXIF orientation tag says (a phone's or
    camera's photo: the outputs follow the turned image, as a photo viewer shows it; napari and scikit-image show the
    file unturned), each ``frame``, ``file`` and ``exif_orientation`` (2-8), which a note names;
    ``torch``: PyTorch's version (installed; the onnx backend's int8 graph runs without importing it);
    ``onnxruntime``: its version where the onnx backend ran the network, else None; ``notes``: the notes the command
    prints after its summary line (their words,
    without ``note:``)."""
    return record_text({**record_header(f"devolens segment {kind}", input_path, model),
                        "devolens": version(), "kind": kind, "frames": frames, "objects": objects, **summary,
                        "weights_sha256": weights_sha256, "model_sha256": model_sha256, "options": options or {},
                        "magnification_estimate": magnification, "torch": torch_version(),
                        "onnxruntime": onnxruntime_version(summary.get("backend")),
                        "notes": list(notes or [])}, default=None)


def _write_probs_tif(probability: np.ndarray, path: Path, pixel) -> None:
    """Write a frame's probability map (HxW, 0 to 1) as ``segment livedead --probabilities`` writes its classes':
    uint8 x255 (rounded), atomically, zlib-compressed as the label images, with ``pixel`` recorded as
    :func:`~devolens.io.images.write_label_tif` records a uint16 label image's (ImageJ's resolution tags and unit;
    past 2 GB, what an ImageJ TIFF holds, a BigTIFF with resolution tags per centimetre for micrometres)."""
    import tifffile

    from devolens.io.atomic import atomic_path
    from devolens.predict.tiled import imagej_unit

    arr = np.clip(np.rint(np.asarray(probability, np.float32) * 255), 0, 255).astype(np.uint8)
    extra: dict = {}
    if arr.size >= 2**31:
        extra = {"bigtiff": True}
        if pixel is not None and pixel[2] == "µm":
            extra.update(resolution=(1e4 / pixel[0], 1e4 / pixel[1]), resolutionunit="CENTIMETER")
    elif pixel is not None:
        sx, sy, unit = pixel
        extra = {"imagej": True, "resolution": (1.0 / sx, 1.0 / sy), "metadata": {"unit": imagej_unit(unit)}}
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, arr, compression="zlib", compressionargs={"level": 6}, **extra)


def _add_calibration(carried: dict, pixel, labels: np.ndarray, frame, file: Optional[str]) -> None:
    """Count one label image's calibration in ``carried`` (by ``(x, y, unit, from)``: its first frame, file and
    number of frames), for :func:`_calibration_record`. ``pixel``: ``(x, y, unit)`` as
    :func:`devolens.io.images.write_label_tif` was given it (None: none); ``file``: the input file it was read from
    (None: ``--pixel-size``). A calibration that writer leaves out (a unit other than µm on a uint32 or 3-D label
    image, which ImageJ's tags cannot hold) is not counted: the label image does not carry it."""
    if pixel is None:
        return
    x, y, unit = pixel
    from devolens.io.images import calibration_kept

    if not calibration_kept(labels, unit):
        return
    origin = "--pixel-size" if file is None else "calibration"
    entry = carried.setdefault((x, y, unit, origin), {"file": file, "first_frame": frame, "frames": 0})
    entry["frames"] += 1


def _calibration_record(carried: dict) -> Optional[list]:
    """``segment.json``'s ``labels_pixel_size``: the pixel sizes the label images carry (:func:`_add_calibration`),
    one entry per size in the order first met, each ``x``, ``y`` and ``unit`` (``µm`` for every spelling of
    micrometres, else as the input writes it), ``from`` (``calibration``: the input file's own, ImageJ, OME or
    resolution tags; ``--pixel-size``), ``file`` (the first input file it was read from; None for ``--pixel-size``),
    ``first_frame`` (as counts.csv names it) and ``frames`` (how many label images carry it; the others carry none);
    None when no label image carries one."""
    if not carried:
        return None
    return [{"x": x, "y": y, "unit": unit, "from": origin, **entry} for (x, y, unit, origin), entry in carried.items()]


#: ``segment``'s objects.csv columns after ``frame`` (and ``t``, ``z``): the first four as they always were, the
#: mean intensity appended (docs/outputs.md)
OBJECT_COLUMNS = ("label", "x", "y", "area", "mean_intensity")
#: significant digits of objects.csv's mean_intensity (a float image's 0.0123457 and a 16-bit one's 12345.7 alike)
INTENSITY_DIGITS = 6


def _first_pixel(source: "_Source", skip) -> Optional[tuple]:
    """The pixel size ``(x, y, unit)`` of the file of the first frame to be segmented (not in ``skip``): a video's
    or stack's own, a folder's first file's (:meth:`_Source.pixel`); None where it records none. objects.csv has its
    micron columns or not from the first frame on (its header is written before the frames)."""
    if source.names is None:
        return source.pixel(0)
    first = next((p for p in range(len(source.names)) if p not in skip), None)
    return None if first is None else source.pixel(first)


def _intensity_cells(values, n: int) -> list:
    """objects.csv's ``mean_intensity`` of a frame's ``n`` objects: :data:`INTENSITY_DIGITS` significant digits;
    an empty cell for an object of no finite value, or every object where the result has no such column."""
    if values is None:
        return [None] * n
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    # each value's decimals (negative: tens, hundreds...), then a division or product by an exact power of ten: the
    # double nearest the rounded decimal, as repr writes it (0.0123457, 12345.7, 1234570.0); vectorised, where an
    # f-string per object took 0.25 ms per frame of 90 nuclei
    magnitude = np.floor(np.log10(np.abs(np.where(finite & (v != 0), v, 1.0))))
    decimals = INTENSITY_DIGITS - 1 - magnitude
    with np.errstate(over="ignore", invalid="ignore"):  # (a subnormal's power of ten overflows: kept as it is)
        up, down = 10.0 ** np.maximum(decimals, 0), 10.0 ** np.maximum(-decimals, 0)
        rounded = np.where(decimals >= 0, np.round(v * up) / up, np.round(v / down) * down)
    rounded = np.where(np.isfinite(rounded), rounded, v)
    return [x if ok else None for x, ok in zip(rounded.tolist(), finite.tolist())]


def _microns_note(files: list, columns: bool, first: Optional[str]) -> Optional[str]:
    """The note on a folder whose files differ in calibration: ``files`` those that record no pixel size where
    objects.csv has micron columns (``columns``: their cells are empty), or those that record one where it has
    none (its ``first`` file segmented records none: the columns were left out); None where none differ."""
    if not files:
        return None
    one = len(files) == 1
    if columns:
        return (f"note: {_count(len(files), 'file')} ({_names(files)}) {'records' if one else 'record'} no pixel "
                f"size: {'its' if one else 'their'} objects' x_um, y_um, area_um2 in objects.csv are empty; give "
                "--pixel-size to fill them")
    return (f"note: objects.csv has no x_um, y_um, area_um2 columns, as the first file ({first}) records no pixel "
            f"size, though {_names(files)} {'does' if one else 'do'}; give --pixel-size to have them")


#: segment's error when ``--skip-flagged`` leaves no frame (for any output: an overlay video's writer would otherwise
#: say first that it has no frames to write)
NOTHING_LEFT = "no frames left to segment (all frames flagged?)"


def run_segmentation(
    kind: str,
    input_path: Path,
    out: Path,
    *,
    model: str,
    skip_flagged: Optional[Path] = None,
    batch_size: int = 8,
    fast: bool = True,
    precision: str = "auto",
    backend: str = "torch",
    overlay: bool = True,
    tta: int = 1,
    stack_z: str = "project",
    channel: Optional[int] = None,
    pages: str = "time",
    diameter: "float | str | None" = None,
    pixel_size: Optional[float] = None,
    color: Optional[str] = None,
    flatten: Optional[bool] = None,
    device: str = "cpu",
    threads: Optional[int] = None,
    threshold: Optional[float] = None,
    seed_threshold: Optional[float] = None,
    min_size: Optional[float] = None,
    keep_small: bool = False,
    probabilities: bool = False,
    progress=None,
    announce=None,
) -> dict:
    """Segment every frame of ``input_path`` and write labels, CSVs and overlays under ``out``.

    ``announce``: a function (or None) given the line of how a TIFF stack is read (:func:`_stack_line`) once the
    options are checked, before any work (the curation pass of ``--skip-flagged auto`` included): the command
    prints it then, so that a long run's log says early which channel is read, or that pages are taken as time.

    ``threads``: PyTorch's CPU threads (None: torch's choice; see :func:`apply_threads`).

    ``threshold``, ``seed_threshold``, ``min_size`` (input pixels, converted by each image's working scale) and
    ``keep_small`` (nuclei: no lone small object dropped as a speck): the post-processing over the model's own
    (None, False: the model's; :func:`_postprocess_options`).

    ``flatten``: remove the smooth background before the normalisation (None: as the model's card
    says; see :func:`_flatten`).

    ``probabilities``: also write each frame's probability map (the result's ``probability``, at the input's size)
    as ``probs/NAME_probs.tif``, uint8 x255, calibrated as its label image (:func:`_write_probs_tif`), frame by
    frame as the labels are.

    ``diameter`` in micrometres (``"7um"``) is converted with ``pixel_size`` (µm per pixel) or the input's
    calibration (see :func:`_diameter_option`); the summary's ``diameter_um`` says how (None for any other).
    ``pixel_size`` is the label images' pixel size too (over a TIFF's own, with a note where they differ), with or
    without a µm diameter.

    Returns a summary dict (``frames``, ``objects``, ``skipped``, the network's ``precision``
    and the working ``scale``; ``notes``: what the command prints after its summary line, as
    :func:`_segment_notes` gives them, also recorded in ``segment.json``).
    """
    from devolens.io.atomic import ColumnsCSV, StoppedAfterCommit, missing_folders, remove_made, write_columns_csv
    from devolens.io.images import write_label_tif, write_png
    from devolens.io.stacks import check_pages, pages_with_channel
    from devolens.predict.postprocess import Prepared

    check_pages(pages)
    given_pages, pages = pages, pages_with_channel(pages, channel)  # --channel: a plain TIFF's 2-4 pages, channels
    check_threads(threads)
    _check_segment_out(out, input_path, kind)
    named_as_file = not out.exists() and out.suffix.lower() in FILE_LIKE_SUFFIXES  # a new folder: noted
    _check_network_options(precision, backend, fast)
    post = _postprocess_options(kind, threshold, seed_threshold, min_size, keep_small)
    if kind == "membrane":  # the pieces on an early embryo's edge that no membrane outlines (eggshell): dropped
        from devolens.predict.postprocess import EDGE_MEMBRANE

        post["edge_membrane"] = EDGE_MEMBRANE
    color = _color(color)
    device = device_option(device)
    calibrations = _Calibrations(input_path)  # (a folder's listed once, each file's read once: labels and µm)
    # how a TIFF stack (a folder's first) is read: segment.json, and the console before the work
    stack_file, reading = _stack_reading(input_path, stack_z, channel, pages)
    _check_model_task(model, kind)  # before --diameter, --flatten and the read-ahead read the card's input
    diameter, microns, skip, curation, report = _diameter_and_skip(
        diameter, model, input_path, pixel_size, skip_flagged, calibrations, stack_z=stack_z, channel=channel,
        pages=pages, progress=progress, carried=True,  # (--pixel-size alone: labels carry it)
        checked=_reading_said(announce, input_path, stack_file, reading, stack_z=stack_z, channel=channel,
                              pages=pages))
    flat = _flatten(model, flatten)
    # the first frames read once, a colour channel chosen on them: membranes' (the first frame) and a movie's of
    # nuclei (its first STREAM_LOOK frames: _movie_colour)
    from devolens.predict.postprocess import STREAM_LOOK

    look = 0 if color is not None or not _auto_rule(model) else 1 if kind == "membrane" else STREAM_LOOK
    source = _Source(input_path, stack_z=stack_z, channel=channel, pages=pages, calibrations=calibrations,
                     first=look)
    made: list[Path] = []  # the folders above --out the staging makes (below)
    min_size_dropped: list[int] = []  # per frame, the objects --min-size dropped (the predictor's min_size_dropped)
    try:
        # a membrane input in colour whose rule's channel holds nuclei and another membranes: that one read (its note)
        membranes = _membrane_colour(model, kind, color, source)
        # nuclei of a colour video or TIFF stack: one channel for the whole movie, chosen on its first frames
        movie = _movie_colour(model, kind, color, source, skip)
        read_by = movie or (color if membranes is None else membranes[0])
        source.start(_preparation(model, read_by, diameter, flat))
        # --pixel-size without a µm diameter: over a TIFF's own calibration, or coarse (once the input is known)
        pixel_notes = _carried_notes(pixel_size, microns, calibrations, report, skip)
        shadowed = _shadowed_model_note(model)  # (said and recorded with the run's notes)
        pixel_notes = pixel_notes + [shadowed] if shadowed else pixel_notes
        # a stack's planes as frames: frame t x Z + z, whose t and z the tables give (one file's stack only)
        planes = reading["z_planes"] if reading and reading["z"] == "slices" and stack_file == input_path else 1
        _check_report(skip_flagged, report, source, stack_z=stack_z, channel=channel, pages=pages)
        apply_threads(threads)  # (an onnx session takes its threads when it is built; torch's once it is loaded)
        predictor = _load_predictor(model, kind, batch_size, fast, backend, tta=tta, precision=precision,
                                    diameter=diameter, channel=read_by, flatten=flat, device=device,
                                    **({"postprocess": post} if post else {}))
        if min_size is not None:  # input pixels: each image's working pixels by its own scale (diameter auto, each)
            predictor.min_size_input = float(min_size)
            predictor.min_size_dropped = min_size_dropped
        # the colour channel is the command's choice (_membrane_colour: one file; a folder: each file judged as it is
        # read, notes.membrane_plane), made before its frames are counted for the colour notes
        predictor.reads_own_channels = False
        apply_threads(threads)
        # the folders above --out that the staging makes go again when the run fails or is stopped, as
        # staged_folder's (out itself is made only by the commit): a failed run leaves no empty folders
        made = missing_folders(Path(out).resolve())
        stage = StagedDir(out)
    except BaseException:
        source.close()
        remove_made(made)  # (StagedDir made them, then failed: a lock refused)
        raise
    objects = None  # objects.csv, written frame by frame (below)
    try:
        (stage.tmp / "labels").mkdir()
        if probabilities:
            (stage.tmp / "probs").mkdir()
        if curation is not None:  # --skip-flagged auto: the report made here, beside the results
            from devolens.curate.frames import report_for_csv
            from devolens.io.atomic import write_csv

            write_csv(report_for_csv(curation), stage.tmp / "curation.csv")  # (as curate frames writes it)
        if overlay and not source.is_video:
            (stage.tmp / "overlays").mkdir()
        pending: collections.deque = collections.deque()
        # the label images carry the pixel size the run used: --pixel-size over the file's own calibration
        given_pixel = None if pixel_size is None else (float(pixel_size), float(pixel_size), "µm")
        # objects.csv's micron columns: where --pixel-size is given or the first frame's file is calibrated
        microns_known = _um_per_pixel(given_pixel or _first_pixel(source, skip)) is not None
        micron_gaps: list = []  # a folder's files calibrated otherwise than its first: empty or left-out columns
        # objects.csv written frame by frame (a long movie's table is not held until the end), in order: the
        # writer thread handles one frame at a time; per frame its object count and median area are kept
        objects = ColumnsCSV(stage.tmp / "objects.csv", ["frame", *(("t", "z") if planes > 1 else ()),
                                                          *OBJECT_COLUMNS, *(MICRON_COLUMNS if microns_known else ())])
        areas: list[float] = []
        counts: list[tuple] = []
        judged = _JudgedFrames()  # what the colour and the blobs-or-lines notes judge
        # --diameter none or in pixels: the frames with the most nuclei, for the size model's look at their
        # magnification (not for auto: its own estimate judged them); membrane: in pixels only (its diameter check:
        # the magnification note, of images used as they are, is the nuclei's)
        busiest = (_JudgedFrames(look=None) if not isinstance(diameter, str)
                   and (kind == "nuclei" or diameter is not None) else None)
        saturation = _Saturation(predictor.network.channel)  # frames filmed too bright (its note)
        giants: list[tuple] = []  # (frame, shape, blocks, uint32 labels) of images segmented block by block
        noise: list = []  # frames with no structure above their noise (no objects: see MembranePredictor)
        # frames of no signal (population's test, _no_signal_kind), how many of them black, the objects found in them
        no_signal: list = []
        no_signal_black, no_signal_found = [0], [0]
        specks: list = []  # frames whose saturated specks were left out of the brightness scale (_specks_note)
        # the images' heights and widths: one estimate for a folder of several sizes gets a note
        sizes: set[tuple[int, int]] = set()
        note_sizes = diameter == "auto" and not source.is_video
        total = _progress_total(source.total - len(skip) if source.total else 0)

        carried: dict = {}  # the calibrations the label images carry, for segment.json (_add_calibration)
        colour = [False]  # whether a colour (RGB) frame was read: --color picks one of its channels
        # the channel each colour frame was read by
        reads = _ColourReads(predictor.network.channel, movie=movie is not None)
        turned: list[dict] = []  # frames read from files turned by their EXIF orientation tag (a note, the record)
        # frames whose speck step dropped lone objects far above the smallest size kept (_lone_dropped_note, on the
        # run's total): (frame, how many, smallest, largest, the smallest size kept); min_working: the model's
        # smallest size kept in working pixels, where --min-size is not given
        lone: list[tuple] = []
        # frames of fewer objects than the speck step's isolated_min_objects that kept lone small objects (the note
        # _lone_kept_note): (frame, how many, smallest, largest)
        spared: list[tuple] = []
        min_working = None if min_size is not None else float(predictor.postprocess_for().get("min_size", 0))
        # overlays drawn shrunk (images larger than tiles.OVERLAY_SIDE): (name, factor, its size, the image's size)
        shrunk: list[tuple] = []

        # a folder's two-colour files of membranes and nuclei: each read by its membranes, as one such image is
        # (notes.membrane_plane, :func:`_membrane_colour`'s rule), the network given that channel's plane
        by_file = kind == "membrane" and color is None and membranes is None and input_path.is_dir() \
            and _auto_rule(model)
        lined: dict[int, tuple[str, str]] = {}  # position -> (lines, blobs) of the files read so
        from devolens.predict.notes import membrane_plane

        def frames() -> Iterator:
            for pos, frame in source.iter(skip):
                prepared = isinstance(frame, Prepared)
                arr = frame.image if prepared else np.asarray(frame)
                if arr.ndim == 3 and arr.shape[2] in (3, 4):
                    colour[0] = True
                    found = membrane_plane(arr) if by_file else None
                    reads.add(pos, arr, found[1][0] if found else frame.channel if prepared else None)
                    if found:
                        arr = frame = found[0]
                        lined[pos], prepared = found[1], False
                if note_sizes:
                    sizes.add(tuple(sorted(arr.shape[:2])))  # (a portrait and a landscape frame: one size)
                pending.append((pos, arr))
                yield frame if prepared else arr

        def handle(pos: int, image: np.ndarray, res, tick: Callable[[], None] = lambda: None) -> tuple[int, np.ndarray]:
            """Write one frame's label file and table rows; return (position, overlay). ``tick``: called once the
            labels are written, once the overlay is drawn (a giant image's own phase of progress: giant_written)."""
            fid = source.frame_id(pos)
            pixel = given_pixel or source.pixel(pos)
            write_label_tif(res.labels, stage.tmp / "labels" / source.label_name(pos), pixel=pixel)
            if probabilities:  # (the map at the input's size, made now and let go with the result: one frame's)
                _write_probs_tif(res.probability, stage.tmp / "probs" / source.probs_name(pos), pixel)
            tick()
            _add_calibration(carried, pixel, res.labels, fid, None if given_pixel is not None else
                             source.path.name if source.names is None else source.names[pos])
            obj = res.objects
            um = _um_per_pixel(pixel)
            if (um is not None) != microns_known and (um is not None or len(obj["label"])):  # (empty cells: rows)
                micron_gaps.append(source.names[pos] if source.names is not None else fid)
            tz = divmod(pos, planes) if planes > 1 else ()
            if len(obj["label"]):
                n = len(obj["label"])
                objects.add([fid] * n, *([v] * n for v in tz), obj["label"], np.round(obj["x"], 2),
                            np.round(obj["y"], 2), obj["area"], _intensity_cells(obj.get("mean_intensity"), n),
                            *(_micron_cells(obj, um) if microns_known else ()))
                areas.append(float(np.median(obj["area"])))
            counts.append((fid, res.count, tz))
            turn = source.exif_turn(pos)  # (read before its result came: its turn is known)
            if turn is not None:
                turned.append(turn)
            # a frame of no signal (population's test; asked of the frames given no objects or of a few grey levels
            # only: it imports pandas, which segment otherwise never does; a giant image is not measured whole)
            if not res.extra.get("blocks") and (not res.count or _few_levels(image)):
                kind_of = _no_signal_kind(image)
                if kind_of is not None:
                    no_signal.append(fid)
                    no_signal_black[0] += kind_of == "black"
                    no_signal_found[0] += int(res.count)
            if res.extra.get("no_structure"):  # nothing above the frame's noise: no objects (the membrane model)
                noise.append(fid)
            if res.extra.get("specks"):  # as the frame's preparation found (a giant image's blocks keep them in)
                specks.append(fid)
            if res.extra.get("isolated_dropped") is not None:  # lone small objects dropped as specks (nuclei)
                _add_lone(lone, fid, res.extra["isolated_dropped"], min_size, min_working, res.extra.get("scale"))
            if res.extra.get("isolated_kept") is not None:  # ... kept: too few objects in the image to judge by
                _add_spared(spared, fid, res.extra["isolated_kept"], min_size)
            judged.add(res.count, image)
            saturation.add(image, fid)
            if busiest is not None:
                busiest.add(res.count, image)
            if res.extra.get("blocks"):  # a giant image, segmented block by block (named in the note)
                giants.append((_giant_name(source, fid), image.shape[:2], res.extra["blocks"],
                               res.labels.dtype.itemsize > 2))
            if not overlay:
                return pos, image
            from devolens.cli.tiles import overlay_step

            step = 1 if source.is_video else overlay_step(*image.shape[:2])
            if step == 1:
                drawn = _overlay(image, res.labels)
            else:  # a giant image's PNG drawn shrunk, every step-th row and column (its labels at the full size)
                drawn = _overlay(image[::step, ::step], res.labels[::step, ::step])
                shrunk.append((f"overlays/{source.overlay_name(pos)}", step, drawn.shape[:2], image.shape[:2]))
            tick()
            return pos, drawn

        def giant_written(pos: int, image: np.ndarray, res) -> Iterator[tuple[int, np.ndarray]]:
            """A giant image's label file, map and overlay (minutes of work after its blocks), in this thread, as a
            phase of progress of its own (:data:`GIANT_WRITING`): its map computed again (--probabilities: its
            blocks run again), its labels written, its overlay drawn, then written by the caller."""
            from devolens.cli._common import progress_phase

            parts = (["probabilities"] if probabilities else []) + ["labels"] + (["overlay"] if overlay else [])
            steps = len(parts) + (1 if overlay else 0)  # (the overlay: drawn, then written)
            count = [0]
            with progress_phase(progress, GIANT_WRITING.format(" and ".join(
                    [", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts))) as cb:

                def tick():
                    count[0] += 1
                    if cb is not None:
                        cb(min(count[0], steps), steps)

                if cb is not None:
                    cb(0, steps)
                if probabilities:
                    res.probability  # (its blocks run again: not in the writer thread)
                    tick()
                done = handle(pos, image, res, tick)
                yield done  # (the overlay written by the caller)
                count[0] = steps - 1
                tick()

        def results() -> Iterator[tuple[int, np.ndarray]]:
            """Run the predictor; label files and overlays are made in a writer thread, in order (a giant image's
            here, once those before it are written: :func:`giant_written`)."""
            written: collections.deque = collections.deque()
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="devolens-write") as writer:
                try:
                    for res in predictor.predict_iter(frames(), total=total, progress=progress):
                        pos, image = pending.popleft()
                        if res.extra.get("blocks"):  # a giant image: after the frames before it, in a phase
                            while written:
                                yield written.popleft().result()
                            yield from giant_written(pos, image, res)
                            continue
                        written.append(writer.submit(handle, pos, image, res))
                        while len(written) > 2 * batch_size or (written and written[0].done()):
                            yield written.popleft().result()
                    while written:
                        yield written.popleft().result()
                except DevolensError as exc:  # an estimate refused (before any result): named by the input
                    named = _refusal_named(exc, input_path, source, [p for p, _ in pending], each=True)
                    if named is None:
                        raise
                    raise named from None
                finally:
                    for f in written:
                        f.cancel()
            if not counts:  # every frame flagged: said here, before an overlay video's writer finds it has none
                raise DevolensError(NOTHING_LEFT, path=input_path)

        video_hw: list[tuple[int, int]] = []  # the overlay video's frame size (its first frame's; all are alike)

        def sized(overlays: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
            for ov in overlays:
                if not video_hw:
                    video_hw.append(tuple(np.shape(ov)[:2]))
                yield ov

        if overlay and source.is_video:
            from devolens.io.video import MAX_FPS, MIN_FPS, write_video

            # x264 ultrafast at quality 5 (crf 25, near x264's default): outlines stay crisp; a third of
            # the size and 40% less encoding time than quality 7 on noisy movies. The input's frame rate, within
            # what the writer takes (a broken header's 0 or 10^6 fps would fail only after every frame)
            fps = min(max(float(source.fps), MIN_FPS), MAX_FPS) if np.isfinite(source.fps) else 10.0
            try:
                write_video(sized(ov for _, ov in results()), stage.tmp / "overlay.mp4", fps=fps,
                            preset="ultrafast", quality=5.0)
            except DevolensError as exc:  # named where it goes, not in the staging folder
                if exc.path is None or exc.path != stage.tmp / "overlay.mp4":
                    raise
                raise type(exc)(exc.message, path=out / "overlay.mp4") from None
        elif overlay:
            for pos, ov in results():
                write_png(ov, stage.tmp / "overlays" / source.overlay_name(pos))
        else:
            for _ in results():
                pass
        # tables written without pandas (this command never imports it: ~0.2 s of start-up)
        objects.close()
        # overlay.mp4 without some of the input's frames (--skip-flagged, frames that could not be read): each row's
        # frame in the video, from 0 (render --video's column), whenever --skip-flagged is given or frames are missing
        in_video = overlay and source.is_video and (
            skip_flagged is not None or [c[0] for c in counts] != list(range(len(counts))))
        # a TIFF stack that records its interval: each row's seconds from the first time point (time_s)
        seconds = _stack_seconds(reading, [c[2][0] if planes > 1 else c[0] for c in counts])
        write_columns_csv({"frame": [c[0] for c in counts],
                           **({"t": [c[2][0] for c in counts], "z": [c[2][1] for c in counts]} if planes > 1 else {}),
                           "count": [c[1] for c in counts], **({TIME_COLUMN: seconds} if seconds else {}),
                           **({VIDEO_FRAME_COLUMN: list(range(len(counts)))} if in_video else {})},
                          stage.tmp / "counts.csv")
        scale = None if predictor.auto_each else predictor.working_scale()  # each: one per image
        looked = judged.frames()
        summary = {
            "frames": len(counts), "objects": int(sum(c[1] for c in counts)), "skipped": len(skip),
            "curation": None if curation is None else out / "curation.csv",
            "precision": predictor.network.precision,
            "scale": scale,
            "estimate": None if predictor.auto_each else predictor.last_estimate,
            "estimates": predictor.estimates if predictor.auto_each else None,
            "resized": predictor.diameter is not None,
            "ended_early": source.ended_early(),
            "missing": source.missing_note(),
            # one estimate for images of several sizes: perhaps several magnifications
            "sizes": sorted(sizes) if len(sizes) > 1 else None,
            "giants": giants,
            # --min-size: the value and the objects it dropped (those of images segmented block by block not counted)
            "min_size": min_size, "min_size_dropped": sum(min_size_dropped),
            "no_structure": noise,
            "no_signal": no_signal, "no_signal_black": no_signal_black[0], "no_signal_found": no_signal_found[0],
            "specks": specks,
            "lone_dropped": lone,
            "lone_kept": spared,
            # the speck step's isolated_min_objects (the note on lone_kept)
            "specks_among": int(predictor.postprocess_for().get("isolated_min_objects") or 0),
            "overlays_shrunk": shrunk,
            "colour_note": _colour_note(looked, kind, predictor.network.channel),
            # the channel a colour input was read by, without --color (its line, where the colour note says nothing),
            # each file's where they differ (a folder of a green and a red export)
            "colour_read_line": None if color is not None else _membrane_colour_words(membranes) or _lined_words(
                lined, reads, source.names) or reads.line(
                lambda p: source.frame_id(p) if source.names is None else source.names[p],
                "frame" if source.names is None else "file"),
            # (the planes are read only where the note judges them)
            "shape_note": _shape_note(lambda: _shape_frames(looked, stack_file, channel, pages), kind,
                                      predictor, reading["channels"] if reading else 0),
            # objects far from the sizes the model knows: another magnification (see size_advice; with
            # diameter each, every image was sized on its own)
            "suggest_diameter": None if predictor.auto_each else predictor.size_advice(
                areas),
            # used as they are at a magnification far from the training one (size_advice cannot tell)
            "magnification_check": None if busiest is None else predictor.magnification_check(busiest.frames()),
            # a diameter given in pixels far from the size model's estimate (size_advice cannot tell either)
            "diameter_check": None if busiest is None else predictor.diameter_check(busiest.frames()),
            # --diameter auto on nuclei smaller than the network knows at the scale it chose (cultured cells)
            "small_nuclei": _small_nuclei_check(looked, predictor) if kind == "nuclei" else None,
            "diameter_given": (microns or {}).get("given"),
            "saturated": saturation.share(), "saturation_note": saturation.note(),
            "trained_magnifications": predictor.trained_zooms,
            # (and where frames used as they are lose nuclei: the note's words)
            "magnification_bands": (getattr(predictor, "far_magnifications", None),
                                    getattr(predictor, "auto_keep", None)),
            # the middle of those, where an image's cells are the model's reference diameter (the size note)
            "middle_magnification": getattr(predictor.size_model, "m0", None),
            "known_sizes": predictor.known_sizes,
            # how the sizes the model knows map to this input's pixels (the size note speaks in the input's pixels)
            "size_resize": None if scale is None or not predictor.card_scale else scale / predictor.card_scale,
            "diameter_by": None if predictor.auto_each or predictor.diameter is None else (
                "auto" if predictor.last_estimate is not None else "hand"),
            "diameter": None if predictor.auto_each else predictor.diameter,
            "diameter_um": microns,
            "pixel_size_notes": pixel_notes,
            "microns_note": _microns_note(micron_gaps, microns_known, source.names and next(
                (n for p, n in enumerate(source.names) if p not in skip), None)),
            # overlay.mp4 of frames with an odd side: padded by a pixel (write_video), said in a note
            "video_padded": video_hw[0] if video_hw and _padded(*video_hw[0]) else None,
            "out_named_as_file": _file_named_note(out) if named_as_file else None,
            # --color given and no colour frame read: it picked nothing (a note says so)
            "color": color, "colour_input": colour[0],
            # frames read from files turned by their EXIF orientation tag: the outputs follow the turned image
            "exif_turned": turned,
            "stack": reading,
            "overlay": overlay}  # (the notes' look at the outlines: the label images under --no-overlay)
        summary["notes"] = _segment_notes(kind, input_path, stack_z, pages, summary)
        from devolens.io.atomic import write_text
        from devolens.models import zoo
        from devolens.provenance import frames_inputs, int8_activations

        write_text(stage.tmp / SEGMENT_RECORD, _segment_record(
            kind, input_path, model, summary["frames"], summary["objects"],
            {"skipped": [source.frame_id(p) for p in sorted(skip)],  # named as counts.csv names frames
             # the --skip-flagged report read, with its sha256, or auto's, made here
             "curation_report": _curation_record(skip_flagged, summary["curation"]),
             "precision": predictor.network.precision, "backend": predictor.network.backend,
             # 8 or 7 bits where the network ran int8 (7: a CPU without VNNI/AMX), else None
             "int8_activations": int8_activations(predictor.network),
             "inputs": frames_inputs(input_path),  # the input's sha256 and size (a folder: of the frames read)
             # where the network ran (--device auto resolved; options.device keeps what was asked, for a rerun)
             "device": predictor.device,
             "working_scale": scale,
             # the post-processing that ran (the model's values, the options' over them; min_size_px: input pixels)
             "postprocess": _postprocess_record(predictor, min_size, scale),
             # the colour channel read (of most frames where they differ; null: grey frames)
             "color_read": reads.record(),
             # where colour frames were read by different channels: each channel's frames (counts.csv's names)
             **({"color_read_frames": by} if (by := reads.record_by(source.frame_id)) else {}),
             "labels_pixel_size": _calibration_record(carried),
             # frames of no signal (population's test) and those in which nothing stood out from their own noise
             # (given no objects: the noise note's), named as counts.csv names them, in the input's order
             "no_signal": _no_signal_record(no_signal, noise, source),
             # the frames whose files read_image turned by their EXIF orientation tag (the outputs follow the turn)
             "exif_turned": turned,
             **({"stack": reading} if reading is not None else {})},
            weights_sha256=zoo.weights_sha256(model), model_sha256=model_sha256(model),
            options={"diameter": diameter, **_diameter_record(microns), "pixel_size": pixel_size, "tta": tta,
                     "flatten": flatten,
                     "flatten_width": flat, "batch_size": batch_size, "fast": fast, "precision": precision,
                     "backend": backend, "color": color, "channel": channel, "stack_z": stack_z, "pages": given_pages,
                     "skip_flagged": _report_option(skip_flagged), "device": device, "threads": threads,
                     "threshold": threshold, "seed_threshold": seed_threshold, "min_size": min_size,
                     "probabilities": probabilities,
                     **({"keep_small": keep_small} if kind == "nuclei" else {})},
            magnification=_sizing_record(
                diameter, predictor.last_estimate, predictor.estimates if predictor.auto_each else None,
                [c[0] for c in counts], None if predictor.auto_each else (
                    predictor.working_scale() / predictor.card_scale if predictor.card_scale else None)),
            notes=[*model_said(), *(_plain_note(text) for text, _ in summary["notes"])]))
    except BaseException:
        if objects is not None:
            try:
                objects.close()
            except OSError:  # (a full disk fails its last write too): the staging folder goes all the same
                pass
        stage.abort()
        remove_made(made[1:] if made and made[0] == Path(out).resolve() else made)
        raise
    finally:
        source.close()
    # an earlier run's entries this one did not write go (its overlays/ beside this run's overlay.mp4, its
    # curation.csv): --out then holds this run's outputs only. They are segment's own: _check_segment_out refused
    # a folder holding such names without segment.json
    try:
        stage.commit(owned=_owned(out, skip_flagged))
    except StoppedAfterCommit:  # the outputs are in place: their folders stay
        raise
    except BaseException:  # the commit put back what was there; the folders it made go (kept when not empty)
        remove_made(made)
        raise
    return summary


#: what ``segment`` calls the objects of each model (its notes' words)
_WHAT = {"nuclei": "nuclei", "membrane": "cells"}


def _segment_notes(kind: str, input_path: Path, stack_z: str, pages: str, summary: dict) -> list[tuple[str, dict]]:
    """The notes ``segment`` prints after its summary line, in order: ``(text, console.print keyword arguments)``
    (``text`` as printed, rich markup included; :func:`_plain_note` gives its words for ``segment.json``)."""
    what = _WHAT.get(kind, kind)
    plain = {"highlight": False, "soft_wrap": True}
    notes: list[tuple[str, dict]] = []
    noise = summary.get("no_structure") or []
    every = bool(noise) and len(noise) == summary["frames"]  # nothing but noise: no magnification to speak of
    note = None if every else (_estimate_note(summary.get("estimate"), what, summary.get("saturated"))
                               or _estimates_note(summary.get("estimates"), what))
    if note:
        notes.append((note, {}))
    # a µm diameter's pixel size: not square, given over the file's own, coarse for a microscope
    notes += [(text, plain) for text in (summary.get("diameter_um") or {}).get("notes") or ()]
    # --pixel-size alone: the label images carry it over a TIFF's own, or it is coarse
    notes += [(text, plain) for text in summary.get("pixel_size_notes") or ()]
    from rich.markup import escape

    if summary.get("microns_note"):  # (it names files)
        notes.append((escape(summary["microns_note"]), plain))

    from devolens.cli._common import stack_notes
    from devolens.io.frames import folder_timelapses, left_out_note, timelapses_note

    found = folder_timelapses(input_path, pages)
    # (stack notes printed plain: they name files)
    named = {escape(text) for text in (timelapses_note(input_path, pages, found), left_out_note(input_path)) if text}
    read_as = stack_notes(input_path, pages, stack_z, timelapses=found)
    notes += [(text, plain if text in named else {}) for text in read_as]
    from devolens.io.stacks import planar_rgb_note

    # 3 or 4 planes read as one colour image, perhaps frames (planar_rgb_note): the colour line, which names the one
    # plane read as a channel, is not said beside it
    planar = planar_rgb_note(input_path)
    planar_said = planar is not None and escape(planar) in read_as
    if kind == "membrane" and stack_z == "project" and _has_z(input_path):
        notes.append(("note: the z planes were projected to their maximum; the membrane model was trained on "
                      "single slices, and a projection overlays the membranes of several planes (--stack-z "
                      "slices segments each plane)", {}))
    if summary.get("missing"):
        notes.append((f"note: {summary['missing']}", plain))
    if summary.get("ended_early"):
        notes.append((f"note: {summary['ended_early']}", {}))
    if summary.get("sizes"):
        notes.append((_sizes_note(summary["sizes"]), plain))
    if summary.get("giants"):
        notes.append((_giants_note(summary["giants"], what), {}))
    shrunk = summary.get("overlays_shrunk") or []
    if shrunk:  # giant images' overlays drawn shrunk (segment livedead's note; the first one's, naming a file)
        from devolens.cli.tiles import shrunk_overlay_note

        name, step, small, full = shrunk[0]
        more = f" (and {len(shrunk) - 1} more)" if len(shrunk) > 1 else ""
        notes.append((f"note: {escape(shrunk_overlay_note(name + more, step, small, full, 'image', what))}", plain))
    if summary.get("exif_turned"):
        notes.append((f"note: {escape(_exif_words(summary['exif_turned'], SEGMENT_TURN_FOLLOW))}", plain))
    if summary.get("video_padded"):
        notes.append((_padded_note(*summary["video_padded"]), plain))
    if summary.get("out_named_as_file"):
        notes.append((f"note: {escape(summary['out_named_as_file'])}", plain))
    if summary.get("colour_note"):
        notes.append((f"note: {summary['colour_note']}", {}))
    elif summary.get("colour_read_line") and not planar_said:  # (the note above names the channel read too)
        notes.append((summary["colour_read_line"], {}))
    if summary.get("shape_note"):
        notes.append((f"note: {summary['shape_note']}", {}))
    flat = summary.get("no_signal") or []
    if flat:
        one, found = len(flat) == 1, int(summary.get("no_signal_found") or 0)
        found_words = (f"{'its count is' if one else 'their counts are'} 0" if not found else
                       f"the {found} {_SINGULAR.get(what, what) if found == 1 else what} found in "
                       f"{'it' if one else 'them'} {'is' if found == 1 else 'are'} noise")
        notes.append((f"note: {_count(len(flat), 'frame')} ({_names(flat)}) {'holds' if one else 'hold'} no signal "
                      f"({_no_signal_words(len(flat), summary.get('no_signal_black') or 0)}): nothing to segment, "
                      f"{found_words}; `devolens curate frames` flags such frames and --skip-flagged leaves them out",
                      plain))
    said = set(flat)
    noise = [f for f in noise if f not in said]  # (said of them already)
    if noise:
        notes.append((_noise_note(noise, summary["frames"], what), plain))
    if summary.get("specks"):
        notes.append((_specks_note(summary["specks"]), plain))
    lone_note = _lone_dropped_note(summary.get("lone_dropped") or [], summary["frames"], what)
    if lone_note:
        notes.append((lone_note, plain))
    kept_note = _lone_kept_note(summary.get("lone_kept") or [], summary["frames"], what, summary.get("specks_among"))
    if kept_note:
        notes.append((kept_note, plain))
    if summary["objects"] == 0 and not every and len(flat) < summary["frames"]:  # (every frame: said so above)
        notes.append((_nothing_found_note(what, summary), {}))
    unused = _color_unused(summary)
    if unused:
        notes.append((unused, {}))
    if summary.get("saturation_note"):
        notes.append((f"[yellow]note:[/] {summary['saturation_note']}", plain))
    if summary.get("magnification_check") is not None:
        notes.append((_magnification_note(summary["magnification_check"], summary.get("trained_magnifications"),
                                          "images", "the objects found", summary.get("magnification_bands")), {}))
    if summary.get("diameter_check") is not None:
        words = _diameter_note(summary["diameter_check"], what, summary.get("diameter_given"),
                               look=f"Look at {_outlines(summary)}")
        notes.append((f"[yellow]note:[/] {words}", plain))
    if summary.get("small_nuclei") is not None:
        words = _small_nuclei_note(summary["small_nuclei"], what, look=_outlines(summary))
        notes.append((f"[yellow]note:[/] {words}", plain))
    if summary.get("suggest_diameter") and summary.get("small_nuclei") is None:  # (that note names a better one)
        notes.append((_size_note(what, summary["suggest_diameter"], summary["known_sizes"], summary["resized"],
                                 resize=summary.get("size_resize"), by=summary.get("diameter_by"),
                                 diameter=summary.get("diameter"), kind=kind, estimate=summary.get("estimate"),
                                 middle=summary.get("middle_magnification"),
                                 trained=summary.get("trained_magnifications")), {}))
    return notes


#: what of segment's outputs follows an image turned by its EXIF orientation tag (the note's words)
SEGMENT_TURN_FOLLOW = "the label images, objects.csv's x and y and the overlays"


def _outlines(summary: dict) -> str:
    """What of a ``segment`` run's outputs shows the objects' outlines, for the notes that ask for a look at them:
    its overlays, or under ``--no-overlay`` (``summary["overlay"]`` False) its label images, as none was drawn."""
    if summary.get("overlay", True):
        return "the overlays"
    return "the label images (labels/, over the images in Fiji or napari; no overlay was drawn: --no-overlay)"


def _exif_words(turned: list[dict], follow: str = "") -> str:
    """The note's words (without ``note:``) on the frames read from files turned by their EXIF orientation tag
    (``turned``: the records' entries, each ``file`` and ``exif_orientation``); with several, where the record
    names each."""
    from devolens.io.images import exif_turned_words

    return exif_turned_words([(t["file"], t["exif_orientation"]) for t in turned], follow)


def _few_levels(image: np.ndarray) -> bool:
    """Whether an integer frame's values span at most 16 of its grey levels (a black frame; a video's keeps a few
    pixels at 1-3 from compression): a cheap look before :func:`_no_signal_kind` at a frame given objects."""
    a = np.asarray(image)
    if a.dtype.kind not in "ui" or a.size == 0:
        return False
    few = a[::8, ::8]  # (a frame with signal: its every 8th pixel spans more already; one pass over 1/64 of it)
    return int(few.max()) - int(few.min()) <= 16 and int(a.max()) - int(a.min()) <= 16


def _no_signal_record(no_signal: list, noise: list, source: "_Source") -> list:
    """``segment.json``'s ``no_signal``: the frames of no signal (:func:`_no_signal_kind`) and those the noise guard
    found nothing in (``no_structure``: an empty, dark or noise-only frame, given no objects), each once, in the
    input's order."""
    if not noise:
        return no_signal
    both = list(dict.fromkeys([*no_signal, *noise]))
    if source.names is None:
        return sorted(both)
    order = {source.frame_id(p): p for p in range(len(source.names))}
    return sorted(both, key=lambda name: order.get(name, len(order)))


def _no_signal_kind(image: np.ndarray) -> Optional[str]:
    """How a frame holds no signal, by population's test (:func:`devolens.predict.population.lacks_signal`):
    ``"flat"`` (one grey level throughout), ``"black"`` (black with nothing a grey level or two above its
    background: a video's black frame), None (it holds signal)."""
    from devolens.predict.population import is_flat, lacks_signal

    if is_flat(image):
        return "flat"
    return "black" if lacks_signal(image) else None


def _stack_channels(summary: dict) -> int:
    """The channels of the TIFF stack a ``segment`` summary read (its ``stack``, :func:`_stack_reading`); 0: none."""
    return int((summary.get("stack") or {}).get("channels") or 0)


def _nothing_found_note(what: str, summary: dict) -> str:
    """The note on a run that found no objects in any frame: what to try, the option that picks another channel
    named for the input (as :func:`_shape_note` does): ``--channel`` for a TIFF stack of several channels,
    ``--color`` for colour images and videos, none for grey images of a single channel (``colour_input`` False)."""
    channels = _stack_channels(summary)
    if channels > 1:
        pick = (f" another of the stack's {channels} channels (--channel 0..{channels - 1}; --color is for colour "
                "images),")
    elif summary.get("colour_input") is False:
        pick = ""  # one grey channel: no other to pick
    else:
        pick = " another channel (--color),"
    dropped, min_size = summary.get("min_size_dropped") or 0, summary.get("min_size")
    if dropped and min_size is not None:  # found, then all dropped by --min-size: not the image's fault
        return (f"note: no {what} kept in any frame: --min-size {min_size:g} dropped {'the one' if dropped == 1 else f'all {dropped}'} "
                f"{_SINGULAR.get(what, what) if dropped == 1 else what} found "
                f"(under {min_size:g} input pixels); a smaller --min-size keeps them")
    return (f"note: no {what} found in any frame: an empty or saturated image,{pick} or another magnification "
            "(--diameter)?")


def _color_unused(summary: dict) -> Optional[str]:
    """The note on a ``--color`` given for an input of which no colour (RGB) frame was read: it picks one of a
    colour image's channels and did nothing (``segment.json`` records it as given); None otherwise."""
    color = summary.get("color")
    if color is None or summary.get("colour_input") is not False:
        return None
    other = (" (a TIFF stack's channels are picked with --channel)" if _stack_channels(summary) > 1 else "")
    return (f"note: --color {color} had no effect: the input's frames are single-channel (grey), and --color picks "
            f"a channel of colour images and videos{other}")


def _padded(height: int, width: int) -> bool:
    """Whether :func:`devolens.io.video.write_video` pads frames of this size (a side is odd)."""
    from devolens.io.video import video_size

    return video_size(height, width) != (height, width)


def _padded_note(height: int, width: int) -> str:
    """The note on an overlay video of frames with an odd side, which the encoder pads by a pixel (as ``render``
    says of its video.mp4)."""
    from devolens.io.video import video_size

    even = video_size(height, width)
    sides = " and ".join(side for side, odd in (("row", even[0] != height), ("column", even[1] != width)) if odd)
    return (f"note: the frames are {width}x{height} pixels, an odd side: overlay.mp4 is {even[1]}x{even[0]}, its last "
            f"{sides} a copy of the one before (H.264's yuv420p needs even sides), one pixel more than the frames "
            "and the label images, which keep the frames' size")


def _plain_note(text: str) -> str:
    """A printed note's words for a record: rich markup read as the console reads it, without ``note:``."""
    from rich.errors import MarkupError
    from rich.text import Text

    try:
        words = Text.from_markup(text).plain
    except MarkupError:
        words = text
    words = words.strip()
    return words[len("note:"):].lstrip() if words.startswith("note:") else words


def _noise_note(frames: list, total: int, what: str) -> str:
    """The note for frames in which nothing stood out from their own noise (an empty, dark or noise-only frame),
    which were given no objects: up to 5 named."""
    names = ", ".join(str(f) for f in frames[:5]) + (f" and {len(frames) - 5} more" if len(frames) > 5 else "")
    which = "the frame" if total == 1 else (f"all {total} frames" if len(frames) == total else
                                           f"{len(frames)} of {total} frames")
    one = len(frames) == 1
    return (f"note: nothing stands out from the noise in {which} ({names}): "
            f"{'an empty, dark or noise-only frame' if one else 'empty, dark or noise-only frames'}, given no {what} "
            f"(the network reads noise as spurious {what}). If {what} are visible there, "
            f"{'the frame is' if one else 'such frames are'} too faint or noisy to segment (bin or denoise); "
            "`devolens curate frames` flags empty frames (black) and --skip-flagged leaves flagged frames out")


def _specks_note(frames: list) -> str:
    """The note for frames whose saturated specks (dust, a reflection, hot-pixel clusters:
    :func:`devolens.predict.postprocess.saturated_specks`) were left out of the brightness scale."""
    one = len(frames) == 1
    return (f"note: {_count(len(frames), 'frame')} ({_names(frames)}) {'holds' if one else 'hold'} a few pixels at the "
            "top of the file's range, far brighter than everything else (dust, a reflection, clusters of hot pixels): "
            "left out of the brightness scale and read as background, or the nuclei would have faded to a few percent "
            "of it")


def _sizes_note(sizes: list[tuple[int, int]]) -> str:
    """The note for a folder of images of several sizes segmented with one magnification estimate."""
    small, big = min(sizes, key=lambda s: s[0] * s[1]), max(sizes, key=lambda s: s[0] * s[1])
    return (f"note: the images come in {len(sizes)} sizes ({small[1]}x{small[0]} to {big[1]}x{big[0]} pixels) and "
            "the magnification was estimated once, for all of them; if they were taken at different "
            "magnifications, run again with --diameter each (each image sized on its own)")


def _has_z(path: Path) -> bool:
    """A TIFF input (or a folder's first TIFF) whose layout has a Z axis (headers parsed once, cached)."""
    from devolens.io.frames import folder_files
    from devolens.io.stacks import reads_as_tiff, tiff_has_axis

    files = folder_files(path) if path.is_dir() else [path]
    tiff = next((f for f in files if reads_as_tiff(f)), None)
    return tiff is not None and tiff_has_axis(tiff, "Z", unreadable=False)


def _stack_reading(input_path: Path, stack_z: str, channel: Optional[int],
                   pages: str) -> tuple[Optional[Path], Optional[dict]]:
    """The TIFF stack an input is, or a folder's first (:func:`_stack_file`), and how it is read
    (:func:`~devolens.io.stacks.stack_reading`, with ``file``, its name, for a folder's); ``(None, None)`` for
    anything else. For the records and the console (:func:`_stack_line`): segment and population."""
    stack_file = _stack_file(input_path, pages)
    if stack_file is None:
        return None, None
    from devolens.io.stacks import stack_reading

    reading = stack_reading(stack_file, z=stack_z, channel=channel, pages=pages)
    if reading is not None and stack_file != input_path:
        reading = {"file": stack_file.name, **reading}
    return stack_file, reading


#: counts.csv's and population's CSV's column of each row's time, where a TIFF stack records its interval
TIME_COLUMN = "time_s"


def _stack_seconds(reading: Optional[dict], time_points) -> Optional[list[float]]:
    """counts.csv's and population's ``time_s``: each row's time point (``time_points``, from 0) times the seconds
    between time points that a TIFF stack's metadata record (ImageJ ``finterval``, OME ``TimeIncrement``:
    ``reading``'s ``interval_s``, :func:`_stack_reading`), to the millisecond; None for any other input: a video's
    timestamps are its playback's, not the filming's (7 fps for frames a minute apart), a folder's names hold
    time points, and a folder of stacks' first file speaks for none of the others."""
    if reading is None or "file" in reading or not reading.get("interval_s"):
        return None
    step = float(reading["interval_s"])
    return [round(int(t) * step, 3) for t in time_points]


def _check_stack_file(path: Path, stack_z: str, channel: Optional[int], pages: str) -> None:
    """Refuse the options that the TIFF stack ``path`` cannot be read with, as its reader refuses them
    (:func:`~devolens.io.stacks.check_stack_options`: a missing or out-of-range ``--channel``, a bad ``--stack-z``),
    before :func:`_stack_line` says how it is read."""
    from devolens.io.stacks import check_stack_options, stack_info

    check_stack_options(stack_info(path, pages), stack_z, channel, path)


def _stack_line(input_path: Path, reading: dict) -> str:
    """The console's line of how a TIFF stack was read (:func:`_stack_reading`)."""
    which = f"each TIFF stack like the first, {reading['file']}" if "file" in reading else input_path.name
    return f"read {which}: {reading['read']}"


def _reading_said(announce, input_path: Path, stack_file: Optional[Path], reading: Optional[dict], *,
                  stack_z: str, channel: Optional[int], pages: str):
    """The ``checked`` of :func:`_diameter_and_skip` for ``segment`` and ``population``: once the options are
    checked, before any work (a ``--skip-flagged auto`` curation pass, the model, the frames), give ``announce`` the
    line of how the TIFF stack ``stack_file`` is read (:func:`_stack_line`; ``reading``: :func:`_stack_reading`'s),
    after refusing the options it cannot be read with (:func:`_check_stack_file`: the error alone, no line saying
    it is read with them). None (nothing to say) for an input that is no TIFF stack or without ``announce``."""
    if reading is None or announce is None:
        return None

    def checked() -> None:
        _check_stack_file(stack_file, stack_z, channel, pages)
        announce(_stack_line(input_path, reading))

    return checked


def _stack_file(path: Path, pages: str) -> Optional[Path]:
    """The TIFF stack an input is (or a folder's first TIFF member that is one); None for anything else."""
    from devolens.io.frames import folder_files
    from devolens.io.stacks import reads_as_tiff, stack_info

    files = folder_files(path) if path.is_dir() else [path]
    for f in files:
        if not f.is_file() or not reads_as_tiff(f):
            continue
        try:
            if stack_info(f, pages).is_stack:
                return f
        except DevolensError:
            pass
    return None


def _shape_frames(first: list, stack: Optional[Path], channel: Optional[int], pages: str) -> list:
    """What :func:`_shape_note` judges: for a z-stack (``stack``, a file or a folder's first), single planes of its
    first time point with the most signal (:func:`~devolens.io.stacks.busiest_planes`: its first frames are sparse
    top planes, or projections overlaying many planes); else the input's frames given (``first``)."""
    if stack is None:
        return first
    from devolens.io.stacks import busiest_planes

    planes = busiest_planes(stack, channel=channel, pages=pages, n=SHAPE_FRAMES, keep=lambda a: _centre(a).copy())
    return planes or first


def _colour_note(image: "np.ndarray | list | None", kind: str, channel: str) -> Optional[str]:
    """For a model reading a colour image by the shipped rule (``channel`` auto): which channel it read, when another
    one carries bright structure too (:func:`~devolens.predict.notes.colour_rivals`; the predictors'
    ``InputWarning`` says the same). The rule picks the channel with the most bright structure at a nucleus's scale
    (thin lines fade there), green first: in a two-colour image of nuclei and membranes, the nuclei's (the membrane
    model's note); in a culture's export of blue nuclei and a green cytoplasm stain, the green one (the nuclei's).
    ``image``: one, or the run's judged frames (:func:`~devolens.predict.notes.colour_rivals_in`)."""
    from devolens.predict.notes import colour_rivals_in, colour_words

    rivals = colour_rivals_in(image if isinstance(image, list) else [image], kind, channel)
    return None if rivals is None else colour_words(rivals, kind, "--color {}")


def _membrane_colour(model: str, kind: str, color: Optional[str], source: "_Source") -> Optional[tuple[str, str, str]]:
    """For ``segment membrane`` of one image, a stack or a video without ``--color`` under a card's ``auto`` rule:
    ``(lines, blobs, where)`` where its first frame (``source.first``, read once: :class:`_Source`'s ``first``) is
    in colour and the rule's channel, ``blobs``, holds nuclei while another, ``lines``, holds membranes
    (:func:`~devolens.predict.notes.membrane_channel`, which the library's ``predict`` of one image reads by too): the
    run reads ``lines`` (``where``: in its frame, or in every frame of the stack or video: one file, laid out one way
    throughout). None otherwise: a folder (its images may be laid out each its own way: a composite beside green-only
    exports, whose red is empty) is judged file by file as it is read (:func:`~devolens.predict.notes.membrane_plane`),
    and a video whose first frame decides nothing (dark, or of one channel) keeps the rule's choice."""
    if kind != "membrane" or color is not None or source.first is None or not _auto_rule(model):
        return None
    from devolens.predict.notes import membrane_channel

    found = membrane_channel(source.first)
    if found is None:
        return None
    animated = source._animated is not None  # (a GIF, a WebP)
    where = ("" if not source.is_video else " in every frame of the animation" if animated
             else " in every frame of the stack" if source.is_stack else " in every frame of the video")
    return (*found, where)


def _movie_colour(model: str, kind: str, color: Optional[str], source: "_Source", skip: set) -> Optional[str]:
    """For ``segment nuclei`` of a video or a TIFF stack (one movie) without ``--color`` under a card's ``auto`` rule:
    the one channel its colour frames are read through, chosen on its first frames (``source.heads``, read once:
    :class:`_Source`'s ``first``; those in ``skip`` left out) by the rule ``population`` and the library's population
    stream follow (:func:`devolens.predict.postprocess.movie_channel`), so that its counts do not jump where the rule
    would choose another channel frame by frame. None otherwise (a folder's images may be laid out each its own way:
    each is judged on its own; one image; a grey movie), and where its first frames hold no colour frame (grey stored
    as colour): each frame is then judged on its own, as in the library (the channel is chosen before the read-ahead
    starts: a later colour frame cannot pin it)."""
    if kind != "nuclei" or color is not None or not source.is_video or not source.heads or not _auto_rule(model):
        return None
    from devolens.predict.postprocess import movie_channel

    return movie_channel(frame for pos, frame in source.heads if pos not in skip)


def _auto_rule(model: str) -> bool:
    """Whether the card of ``model`` reads a colour image by the ``auto`` rule (the channel chosen from the image),
    which :func:`_membrane_colour` and :func:`_movie_colour` refine; False for a card that names its channel, or
    one that cannot be read (the run itself reports it)."""
    from devolens.models import zoo

    try:
        return zoo.card(model).get("preprocessing", {}).get("channel", "auto") == "auto"
    except DevolensError:
        return False


def _lined_words(lined: dict, reads: "_ColourReads", names: Optional[list]) -> Optional[str]:
    """The colour line of a folder of which some colour files were read by their membranes (``lined``: position ->
    ``(lines, blobs)``, :func:`~devolens.predict.notes.membrane_plane`): which, and by which channel; the others'
    channel after it, where any colour file was read by the rule; None where none was read so."""
    if not lined or names is None:
        return None
    from devolens.predict.notes import membrane_channel_words

    pairs = sorted(set(lined.values()))
    colour = sum(len(v) for v in reads.by.values())
    if len(pairs) == 1 and len(lined) == colour:
        return membrane_channel_words(*pairs[0], " in every file" if colour > 1 else "")
    said = "; ".join(membrane_channel_words(*pair, f" in {_names([names[p] for p, q in lined.items() if q == pair])}")
                     for pair in pairs)
    rest = {ch: [p for p in pos if p not in lined] for ch, pos in reads.by.items()}
    rest = {ch: pos for ch, pos in rest.items() if pos}
    others = "; ".join(f"{ch} in {_names([names[p] for p in pos])}" for ch, pos in rest.items())
    return said + (f"; the other colour files by the card's rule: {others}" if others else "")


def _membrane_colour_words(membranes: Optional[tuple[str, str, str]]) -> Optional[str]:
    """The colour line of a membrane run that reads its channel of membranes over the rule's (:func:`_membrane_colour`);
    None where the rule's choice stands."""
    from devolens.predict.notes import membrane_channel_words

    return None if membranes is None else membrane_channel_words(*membranes)


def _colour_read(image: "np.ndarray | None", channel: Optional[str]) -> Optional[str]:
    """The channel of a colour ``image`` the network read (``channel``: its rule or the --color given; the auto
    rule's choice named), for ``segment.json``; None for a grey image."""
    arr = None if image is None else np.asarray(image)
    if arr is None or arr.ndim != 3 or arr.shape[2] < 3:
        return None
    if (channel or "auto") != "auto":
        return channel
    from devolens.predict.postprocess import auto_channel

    return auto_channel(arr)


def _grey_as_colour(arr: np.ndarray) -> bool:
    """Whether a colour frame is grey stored as colour (R, G and B alike: no channel to choose:
    :func:`devolens.predict.postprocess.colour_frame`)."""
    from devolens.predict.postprocess import colour_frame

    return not colour_frame(arr)


class _ColourReads:
    """The channel each colour frame of a run was read by (``channel``: the model's rule, or the --color given): under
    the auto rule each frame is judged on its own, and a folder's files (a green and a red export) may be read by
    different channels, which the colour line and ``segment.json`` say (a line naming the first frame's only would
    be wrong for the others). Frames of grey stored as colour are left out (nothing to choose)."""

    def __init__(self, channel: Optional[str], movie: bool = False):
        self.rule = channel or "auto"
        #: the frames are one timelapse's, read through one channel that the auto rule chose on its first frames
        #: (:func:`devolens.predict.population.stream_channel`; ``channel``: that one, or the rule's, "auto", where
        #: each frame's row names the channel read: population's)
        self.movie = movie
        self.by: dict[str, list[int]] = {}  # channel -> positions of the frames read by it, in order
        self.grey = False  # a frame of grey stored as colour was read

    def add(self, pos: int, arr: Optional[np.ndarray], known: Optional[str] = None,
            grey: Optional[bool] = None) -> None:
        """Note a colour frame (``known``: the channel its preparation read already, a Prepared's or a population
        row's; else judged here, as the predictor's rule does: a few milliseconds a frame; ``grey``: whether it is grey
        stored as colour, where ``arr`` is not given)."""
        if self.rule != "auto":
            pick = self.rule
        else:
            from devolens.predict.postprocess import auto_channel

            pick = known or auto_channel(arr)
        if (pick == "green" or self.rule != "auto") and (_grey_as_colour(arr) if grey is None else grey):
            self.grey = True
            return
        self.by.setdefault(pick, []).append(pos)

    def order(self) -> list[tuple[str, list[int]]]:
        """The channels read, the most frames first (ties: the first read first)."""
        return sorted(self.by.items(), key=lambda kv: -len(kv[1]))

    def record(self) -> Optional[str]:
        """``segment.json``'s ``color_read``: the channel read (of most frames where they differ); grey stored as
        colour only: what the rule reads of it (green); None without a colour frame."""
        if self.by:
            return self.order()[0][0]
        return None if not self.grey else ("green" if self.rule == "auto" else self.rule)

    def record_by(self, name) -> Optional[dict]:
        """``segment.json``'s ``color_read_frames`` where frames were read by different channels: each channel's
        frames (``name``: a position's name, as counts.csv names frames); None where one channel read them all."""
        if len(self.by) < 2:
            return None
        return {ch: [name(p) for p in pos] for ch, pos in self.order()}

    def line(self, name, unit: str) -> Optional[str]:
        """The colour line (:func:`_colour_read_line`), or, where frames were read by different channels, which
        channel read how many and which (``name``: a position's name in the line, ``unit``: "file" or "frame")."""
        if len(self.by) < 2:
            if self.movie and sum(len(v) for v in self.by.values()) > 1:  # (one image: no movie's words)
                return _colour_read_line(self.record(), "auto", movie=True)
            return _colour_read_line(self.record() if self.by else None, self.rule)
        parts = []
        for k, (ch, pos) in enumerate(self.order()):
            read = "the mean of R, G and B" if ch == "mean" else (f"the {ch} channel" if k == 0 else ch)
            listed = "" if k == 0 else f": {_names([name(p) for p in pos])}"
            parts.append(f"{read}{' was read' if k == 0 else ''} ({_count(len(pos), unit)}{listed})")
        return (f"colour input: {', '.join(parts)}; each {unit} is judged on its own (the channel with the most "
                f"bright structure at a nucleus's scale, green kept unless another has 1.5x its bright structure, the "
                f"mean where none stands out); --color red|green|blue|mean reads the same one in every {unit}")


def _colour_read_line(image: "np.ndarray | str | None", channel: Optional[str], movie: bool = False) -> Optional[str]:
    """The line on which channel of a colour ``image`` the network read, and why, when no --color was given
    (``channel``: the model's rule); None for a grey image or grey stored as colour (R, G and B alike: nothing to
    choose). ``image`` may be the channel read already (a str: :class:`_ColourReads`); ``movie``: read in every
    frame of a timelapse, chosen on its first frames."""
    if isinstance(image, str):
        picked = image
    else:
        picked = _colour_read(image, channel)
        if picked is None:
            return None
        rgb = np.asarray(image)[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            return None
    if (channel or "auto") != "auto":
        why = "the model's own rule, its card's preprocessing.channel"
    elif picked == "green":
        why = ("green is kept, as in the histone-GFP embryos the model knows, unless another channel has 1.5x its "
               "bright structure")
    elif picked == "mean":
        why = "no channel stands out from the others"
    else:
        why = "the one with the most bright structure at a nucleus's scale"
    read = "the mean of R, G and B" if picked == "mean" else f"the {picked} channel"
    others = "|".join(c for c in ("red", "green", "blue", "mean") if c != picked)
    if movie and (channel or "auto") == "auto":
        from devolens.predict.postprocess import STREAM_LOOK

        return (f"colour input: {read} was read in every frame ({why}; judged on the movie's first {STREAM_LOOK} "
                "colour frames and kept for all, so that the counts do not jump where a frame's channels change); "
                f"--color {others} reads another")
    return f"colour input: {read} was read ({why}); --color {others} reads another"


def _shape_note(frames: list, kind: str, predictor, channels: int = 0) -> Optional[str]:
    """A note when the input looks like the other model's: bright blobs (nuclei) given to the membrane model, which
    then outlines "cells" around them, or thin bright lines (membranes) given to the nuclei model; or inverted.
    Judged by :func:`~devolens.predict.notes.judge_input` (the judgement the predictors' ``InputWarning`` makes) at
    half the render scale the models know (the working scale's share of the card's, so a --diameter counts; at most
    :data:`SHAPE_MOST_SCALE` of the input's pixels: :func:`_judging_scale`), on the 5 of the
    first 20 frames in which the model found the most objects (:func:`run_segmentation`), or a z-stack's busiest
    single planes (:func:`_shape_frames`; :func:`~devolens.predict.postprocess.blob_fraction`, median); none where a
    --diameter was given by hand or judged per image (each): it says how big the objects are, not how thick a line
    is. ``channels``: a TIFF stack's channels (several: the note names --channel, not --color)."""
    return _look_note(judge_input(frames, kind, predictor), kind, channels)


def _shape_verdict(kind: str, seen: list, flipped: list, bright: list, predictor, scale: float, percentiles,
                   channels: int = 0, estimated: Optional[bool] = None, counts: bool = False) -> Optional[str]:
    """:func:`_shape_note`'s verdict on what :func:`_shapes` read (``seen``, ``flipped``, ``bright``, at the judging
    ``scale`` with these ``percentiles``) of a ``kind`` input: inverted, or the other model's kind
    (:func:`~devolens.predict.notes.shape_verdict`), in the command's words; None otherwise.
    ``predictor`` (a segmentation predictor) and ``estimated`` are :func:`_inverted_nuclei`'s; ``counts``: said of
    ``population``'s counts, read from the nuclei model's (:func:`_population_inverted_note`)."""
    look = shape_verdict(kind, seen, flipped, bright, predictor, scale, percentiles, estimated)
    return _look_note(look, kind, channels, counts)


def _look_note(look, kind: str, channels: int = 0, counts: bool = False) -> Optional[str]:
    """The note on ``look`` (:class:`~devolens.predict.notes.InputLook`, or None: no note) of a ``kind`` input, in
    the command's words (``channels`` and ``counts`` as :func:`_shape_verdict`'s)."""
    if look is None:
        return None
    if look.what == "inverted" and kind == "membrane":
        return ("the input looks inverted: dark thin lines on a bright background (brightfield, DIC, or an inverted "
                "export), where the membrane model reads bright membranes on a dark background and finds few or no "
                "real cells; invert the image first (Fiji: Edit > Invert) and run again")
    if look.what == "inverted":
        return _inverted_text(look.value)
    value = look.value
    pick = (f"this stack has {channels} channels: --channel picks the" if channels > 1 else
            "for a two-colour image, --color picks the")
    if look.what == "nuclei":
        return (f"the input looks like nuclei (bright blobs, {value:.0%} of its bright pixels in blobs; membrane "
                "slices show thin bright lines): the membrane model outlines cells around such blobs. For nuclei, "
                f"run `devolens segment nuclei`; {pick} membranes' channel; dark "
                "membranes on bright cells (a cytoplasmic marker) need the image inverted first")
    found = "the nuclei model finds fragments of lines" + (
        ", and the counts read from them are not cell counts" if counts else "")
    return (f"the input looks like membranes (thin bright lines, {value:.0%} of its bright pixels in blobs; "
            f"nuclei are filled blobs): {found}. For cell outlines, run "
            f"`devolens segment membrane`; {pick} nuclei's channel")


def _inverted_nuclei(seen: list, bright: list, predictor, scale: float, percentiles,
                     estimated: Optional[bool] = None) -> Optional[str]:
    """The note for a nuclei input that looks inverted (dark nuclei on a bright background), from what
    :func:`_shapes` read (:func:`~devolens.predict.notes.inverted_nuclei`: more frames too bright to judge whose
    background lies near their top, ``bright``, than frames judged, ``seen``, and bright blobs in them once inverted,
    :data:`LOOKS_LIKE_NUCLEI` or more); None otherwise."""
    value = inverted_nuclei(seen, bright, predictor, scale, percentiles, estimated)
    return None if value is None else _inverted_text(value)


def _inverted_text(value: float) -> str:
    """The inverted-nuclei note, ``value`` of the bright pixels in blobs once inverted."""
    return (f"the input looks inverted: dark blobs on a bright background ({value:.0%} of the bright pixels "
            "in blobs once inverted), where the nuclei model reads bright nuclei on a dark background and "
            "finds few or no real nuclei. An inverted export or lookup table: invert the image first (Fiji: "
            "Edit > Invert) and run again; a transmitted-light image (brightfield, DIC), whose dark embryo "
            "reads the same: the nuclei model needs a fluorescence image of the nuclei")


def _population_inverted_note(frames: list, predictor, channels: int = 0) -> Optional[str]:
    """``segment nuclei``'s blobs-or-lines note (:func:`_shape_verdict`, by the same rule: an input that looks
    inverted, or like membranes, a two-colour image's membrane channel among them), for ``population``: on the frames
    ``segment`` would judge (:class:`_JudgedFrames`, by the nuclei found), by
    :func:`~devolens.predict.notes.judge_input` as the population predictor's ``InputWarning`` (the stream's resizing
    counts for the inverted verdict; where the stream's magnification was estimated, an inverted input is judged at
    the one the size model reads off the inverted frames).
    None for a model without a nuclei network (a regressor) and, as ``segment``'s, where ``--diameter`` was given (a
    number of pixels). ``channels``: a TIFF stack's channels (several: the note names --channel, not --color)."""
    nuclei = getattr(predictor, "nuclei", None)
    auto = bool(getattr(predictor, "auto", False))
    if nuclei is None or not frames or nuclei.card_scale <= 0 or (getattr(predictor, "scale_known", False)
                                                                   and not auto):
        return None
    # (the judgement the population predictor's InputWarning makes: notes.PopulationWatch)
    look = judge_input(frames, "nuclei", nuclei, resize=getattr(predictor, "resize", 1.0),
                       estimated=auto and getattr(predictor, "last_estimate", None) is not None)
    return _look_note(look, "nuclei", channels, counts=True)


#: the video files the reader takes, for help texts ("mp4, mov, avi, mkv, ...": io.frames.VIDEO_SUFFIXES)
VIDEO_HELP_LIST = ", ".join(s.lstrip(".") for s in VIDEO_SUFFIXES)
_INPUT_HELP = ("An image (png/tif/jpg), a folder of images (or a render output folder), a video "
               f"({VIDEO_HELP_LIST}; read through ffmpeg), an animated GIF or WebP, or a TIFF stack (timelapse, "
               "z-stack or ImageJ/OME hyperstack; read plane by plane).")
_STACK_Z_HELP = ("TIFF stacks with a Z axis: 'project' = one maximum-intensity projection per time point (what the "
                 "nuclei and population models expect), 'slices' = every plane is a frame (membrane slices), "
                 "numbered t x Z + z (time point 0's planes first; f00000.. in the label files); counts.csv and "
                 "objects.csv then have t and z columns.")
_POPULATION_STACK_Z_HELP = ("TIFF stacks with a Z axis: 'project', one maximum-intensity projection per time point: "
                            "what the population model was trained on, and the only value it takes.")
_CHANNEL_HELP = ("TIFF stacks with a C axis: the channel to use (0-based); required when there are several. A plain "
                 "TIFF of 2 to 4 grey pages without axis labels is read as that many channels with it (one frame).")
_COLOR_HELP = ("Colour images and videos: the channel that holds the nuclei (or membranes): auto (the dominant "
               "channel, e.g. green for histone-GFP, red for H2B-mCherry, blue for DAPI; the mean of R, G, B when "
               "none dominates; the shipped models' rule), green, red, blue, mean or max (the rule of models of "
               "your own, as their training data were read). Default: the model's own rule (segment membrane: the "
               "channel of lines, membranes, where the dominant one holds blobs, nuclei; a stack or a video judged "
               "on its first frame, a folder file by file).")
#: the population letters, for help texts
LETTER_HELP = f"Letters: {LETTER_KEY_LINE}."

_SKIP_HELP = ("Curation report from `devolens curate frames`: its flagged frames (black, dark, red lines, "
              "frames decoded from damaged video data...) "
              "are not segmented and left out of every output. 'auto': curate the input here first (one extra "
              "streamed pass) and write the report beside the results (curation.csv in --out; for population "
              "OUT.curation.csv).")


#: per command, how many objects 5 images must show before ``--diameter auto`` stops reading ahead (the predictors'
#: ``size_good_objects``: sizing.GOOD_OBJECTS for nuclei, MembranePredictor's for membranes; not imported here, as
#: that would import PyTorch for --help)
_GOOD_OBJECTS = {"nuclei": 64, "membrane": 32}


#: counts.csv's count, in words, per command (its --out help)
_COUNT_WORDS = {
    "nuclei": ("the nuclei seen in the 2-D frame, not the embryo's cells, many of which hide in a projection of a "
               "later embryo: `devolens population` estimates those"),
    "membrane": "the cells seen in the 2-D slice (the image or z-plane as segmented), not all of the embryo's cells",
}


def _segment_command(kind: str, default_model: str, what: str, default_z: str):
    def command(
        input_path: Path = typer.Argument(..., metavar="INPUT", help=_INPUT_HELP),
        out: Path = typer.Option(..., "--out", "-o", help=(
            "Output folder (a new one named as a file, e.g. centroids.csv, gets a note): labels/ (one label TIFF "
            "per image or frame at the input's size: NAME_labels.tif for an image or a folder's file, "
            "NAME_f00000_labels.tif, NAME_f00001_labels.tif... for a video's or stack's frames, numbered from 0; "
            "uint16, or uint32 for an image with over 65535 objects; each frame's objects are numbered afresh, "
            "from 1: the same label in two frames is not the same object, nothing is tracked), objects.csv "
            "(columns frame, label, x, y, "
            "area: x the column and y the row of the centroid, in pixels of the input, area in pixels; an object "
            "cut by the image's border is kept, its area and centroid those of its part inside the image; then "
            "mean_intensity, the mean of the input's values under the object in the channel the network read, "
            "as the file holds them; and x_um, y_um, area_um2 where --pixel-size is given or the first frame's "
            "file records its pixel size: docs/outputs.md), "
            f"counts.csv (frame, count: {_COUNT_WORDS[kind]}; frame: a folder's file name "
            "without its extension, a video's or stack's "
            "frame number from 0, as `curate frames` numbers every input's rows: join a folder's on its file; "
            "time_s, seconds from the first time point, for a TIFF stack whose metadata record its interval; "
            "with overlay.mp4 and --skip-flagged, or frames that could not be read, a last column video_frame: "
            "the row's frame in overlay.mp4, from 0, as the video leaves out the frames that have no row), "
            "overlays/ (PNG, for an image or a folder) or overlay.mp4 (for a video, a "
            "TIFF stack of z-planes or time points, or an animated GIF or WebP), segment.json (how they were made: "
            "command line, model, options, counts, notes) and, with --skip-flagged auto, curation.csv (the report "
            "made and followed). A photo turned by its EXIF "
            "orientation tag is segmented turned, as a photo viewer shows it, with a note. A rerun into the same "
            "--out replaces these outputs, labels/, probs/ and overlays/ whole: files of your own in those (labels "
            "corrected by hand) are refused, move them out first.")),
        skip_flagged: Optional[Path] = typer.Option(None, "--skip-flagged", help=_SKIP_HELP),
        model: str = typer.Option(default_model, "--model", help="Zoo model to use (see `devolens models`), or the "
                                  "folder of a model of your own: a training run (`devolens train --out`, its best "
                                  "checkpoint) or a `devolens models export` folder."),
        batch_size: int = typer.Option(8, "--batch-size", help="Frames per forward pass (memory vs speed; >= 1)."),
        fast: bool = typer.Option(True, "--fast/--no-fast", help=FAST_HELP),
        precision: str = typer.Option("auto", "--precision", callback=PRECISION_CHOICE, help=PRECISION_HELP),
        backend: str = typer.Option("torch", "--backend", callback=BACKEND_CHOICE,
                                    help=("torch (the default), onnx (onnxruntime on the CPU, pip install "
                                          "\"devolens\\[onnx]\": the nuclei model's shipped int8 network, without "
                                          "PyTorch, at --precision int8 or auto on x86 CPUs with AVX2 or VNNI; else "
                                          "fp32, exported by PyTorch) or auto (onnx only where torch would run "
                                          "fp32).")),
        overlay: bool = typer.Option(True, "--overlay/--no-overlay", help="Write overlay images / overlay video."),
        probabilities: bool = typer.Option(False, "--probabilities", help=(
            f"Also write probs/: each frame's {_PROBABILITY_WORDS[kind]} probability map, the network's, at the "
            "input's size, named as its label image with _probs.tif for _labels.tif (NAME_probs.tif, "
            "NAME_f00000_probs.tif...): uint8, the probability x255 (as segment livedead --probabilities), calibrated "
            "as the label image. Replaced whole by a rerun, as labels/.")),
        tta: int = typer.Option(1, "--tta", metavar="1|2|4", help=(
            "Test-time augmentation: average the network over 1 (off), 2 (+ mirror) or 4 (+ flips) views; "
            "2-4x slower, slightly smoother masks.")),
        stack_z: str = typer.Option(default_z, "--stack-z", metavar="project|slices", callback=STACK_Z_CHOICE,
                                    help=_STACK_Z_HELP),
        channel: Optional[int] = typer.Option(None, "--channel", help=_CHANNEL_HELP),
        pages: str = typer.Option("time", "--pages", metavar="time|z", callback=PAGES_CHOICE, help=PAGES_HELP),
        color: Optional[str] = typer.Option(None, "--color", callback=COLOR_CHOICE, help=_COLOR_HELP),
        diameter: Optional[str] = typer.Option(None, "--diameter", metavar="PX|Xum|auto|each|none", help=(
            "Typical object diameter in the input, pixels, for images at another magnification than the "
            "training data: they are resized so that such objects have the size the model knows (the card's "
            "input.diameter reference; nuclei 35 px, membrane-outlined cells 60 px in 752x512 EPIC-like frames). "
            "'auto' (the default for models with a size model: nuclei, membrane): the magnification is "
            f"estimated once per input, from the 5 of its first images with the most {what} (read ahead until 5 "
            f"show {_GOOD_OBJECTS[kind]}; at least 8 to count), and only inputs outside "
            "the magnifications the model was trained on are resized. 'each': estimated for every image on its "
            "own (a folder of unrelated images from several microscopes; slower: no pipelining). 'none': no "
            "resizing. A note suggests a value when the objects found are far from the sizes the model knows. "
            "In micrometres ('7um', '7 µm'): converted to pixels with the input's pixel size (a TIFF's ImageJ or "
            "OME calibration; a folder's files must agree) or --pixel-size.")),
        pixel_size: Optional[float] = typer.Option(None, "--pixel-size", metavar="UM", help=(
            "Micrometres per pixel of the input, over the file's own calibration (a note says where they differ; "
            "PNG, JPEG and video record none): the label images carry it, objects.csv gets x_um, y_um and "
            "area_um2 columns, and a --diameter given in micrometres is converted with it. Given alone it changes "
            "no segmentation (--diameter auto stays as it is).")),
        flatten: Optional[bool] = typer.Option(None, "--flatten/--no-flatten", help=(
            "Take the smooth background off each frame before segmenting (uneven illumination, vignetting, a "
            "bright or tilted backdrop): a grey-level opening wider than the objects (membranes: wider than "
            "the lines), like ImageJ's rolling ball. Default: the model's own rule (on for both shipped models).")),
        threshold: Optional[float] = typer.Option(None, "--threshold", metavar="P", help=_threshold_help(kind)),
        seed_threshold: Optional[float] = typer.Option(None, "--seed-threshold", metavar="P",
                                                       help=_seed_threshold_help(kind)),
        min_size: Optional[float] = typer.Option(None, "--min-size", metavar="AREA", help=_min_size_help(kind)),
        keep_small: bool = typer.Option(False, "--keep-small", help=(
            "Keep small nuclei that stand alone: by default, in an image of 100 objects or more, a nucleus under a "
            "quarter of its image's median nucleus area with no other object within 2 pixels of its outline (at the "
            "network's working resolution: 4 pixels of an image read at the shipped model's scale 0.5) is dropped "
            "as a speck (debris, noise), and so are a later embryo's just-divided nuclei and the small nuclei of a "
            "crowded mixed culture (a note says when several lone objects well above --min-size were dropped so). "
            "An image of fewer objects (an early embryo) keeps them all.")),
        device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
        threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    ) -> None:
        from devolens.cli._common import console, progress_bar, streaming_threads
        from devolens.cli._common import summary as say

        streaming_threads()
        with progress_bar(f"segment {kind}") as cb:
            # (a TIFF stack: how it is read, said before the work: say)
            summary = run_segmentation(kind, input_path, out, model=model, skip_flagged=skip_flagged,
                                       batch_size=batch_size, fast=fast, precision=precision, backend=backend,
                                       overlay=overlay, tta=tta, diameter=diameter, pixel_size=pixel_size,
                                       color=color,
                                       flatten=flatten, device=device, stack_z=stack_z, channel=channel,
                                       pages=pages, threads=threads, threshold=threshold,
                                       seed_threshold=seed_threshold, min_size=min_size,
                                       keep_small=keep_small is True,  # (membrane: no such option, its default)
                                       probabilities=probabilities,
                                       progress=cb, announce=say)
        skipped = _skipped_note(summary["skipped"], summary.get("curation"))
        objects = f"{summary['objects']} {_SINGULAR.get(what, what) if summary['objects'] == 1 else what}"
        microns = _diameter_words(summary.get("diameter_um"))
        console.print(f"{_count(summary['frames'], 'frame')}, {objects}{skipped} -> {out} "
                      f"({'onnxruntime ' if summary.get('backend') == 'onnx' else ''}{summary['precision']} network, "
                      f"working scale "
                      f"{'per image' if summary['scale'] is None else format(summary['scale'], '.3g')}"
                      f"{'; ' + microns if microns else ''})")
        notes = summary.get("notes")
        for text, how in notes if notes is not None else _segment_notes(kind, input_path, stack_z, pages, summary):
            console.print(text, **how)  # (also in segment.json)

    command.__doc__ = (f"Segment {what} in an image, a folder of images or a video (streamed); "
                       "writes label TIFFs, objects.csv, counts.csv and overlays. Each frame's labels are "
                       "numbered afresh (not tracked).")
    if kind != "nuclei":  # --keep-small is the nuclei model's (the membrane model drops no lone specks): not offered
        import inspect

        sig = inspect.signature(command)
        command.__signature__ = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "keep_small"])
    return command


#: what a pixel's probability in probs/ is of (--probabilities' help)
_PROBABILITY_WORDS = {"nuclei": "nucleus (foreground)", "membrane": "membrane"}


def _threshold_help(kind: str) -> str:
    """``--threshold``'s help for ``segment kind``, with the shipped model's value."""
    card = _CARD_POSTPROCESS[kind]
    what = ("nucleus (StarDist's prob_thresh; cellpose's cellprob_threshold 0 is about 0.5 here): lower takes "
            "fainter nuclei and wider outlines, higher only the sure ones" if kind == "nuclei" else
            "cell rather than the background around the embryo")
    return (f"Foreground probability above which a pixel is {what}; between 0 and 1, exclusive. Default: the "
            f"model's own (the shipped {kind} model's {card['threshold']:g}; segment.json's postprocess records what "
            "ran).")


def _seed_threshold_help(kind: str) -> str:
    """``--seed-threshold``'s help for ``segment kind``, with the shipped model's value."""
    card, what = _CARD_POSTPROCESS[kind], _WHAT.get(kind, kind)
    one = {"nuclei": "nucleus", "cells": "cell"}.get(what, what)  # (_SINGULAR: defined below, after the commands)
    return (f"Probability of a {one}'s interior a pixel needs to seed one, between 0 and 1, exclusive: each {one} "
            f"grows from its seed (a watershed), so touching {what} are split where each has its own; lower finds "
            f"more seeds (more splits), higher fewer (touching {what} merge). Default: the model's own (the shipped "
            f"{kind} model's {card['seed_threshold']:g}).")


def _min_size_help(kind: str) -> str:
    """``--min-size``'s help for ``segment kind``, with the shipped model's value in working and image pixels."""
    card, what = _CARD_POSTPROCESS[kind], _WHAT.get(kind, kind)
    image = card["min_size"] / card["scale"] ** 2
    one = {"nuclei": "nucleus", "cells": "cell"}.get(what, what)
    return (f"Smallest {one} kept, as an area in pixels of the input image (as objects.csv's area and cellpose's "
            f"min_size count it; decimals allowed): smaller ones are dropped once found, the others left as they "
            f"are, whatever the resizing for the network (--diameter). Default: the model's own ({image:.0f} pixels "
            f"of an image read at the shipped {kind} "
            f"model's scale {card['scale']:g}); segment.json's postprocess.min_size_px records the area that ran.")


segment_nuclei_command = _segment_command("nuclei", "nuclei", "nuclei", "project")
segment_membrane_command = _segment_command("membrane", "membrane", "cells", "slices")


# ---------------------------------------------------------------------------- population
#: The formats ``population --plot-format`` writes its plot in (PNG the default; SVG and PDF for papers).
PLOT_FORMATS: tuple[str, ...] = ("png", "svg", "pdf")


def plot_path(out: Path, input_path: Path, fmt: str = "png") -> Path:
    """Where ``population`` writes its plot: beside the CSV, same name, ``.png`` (``fmt``: ``.svg``, ``.pdf``);
    ``<name>_plot.png`` when that would be the input itself (``devolens population frame.png --out frame.csv``)
    or a file in the input folder (it would overwrite a frame, or be read as one next time)."""
    image = out.with_suffix(f".{fmt}")
    src = input_path.resolve()
    target = image.resolve()
    if target == src or (input_path.is_dir() and target.parent == src):
        return out.with_name(f"{out.stem}_plot.{fmt}")
    return image


def record_path(out: Path) -> Path:
    """Where ``population`` (and ``curate frames``) records how its CSV was made: beside it, same name, ``.json``."""
    return out.with_suffix(".json")


def _population_record(input_path: Path, out: Path, model: str, predictor, *, frames: int, skipped: list,
                       options: dict, magnification: Optional[dict], fit, left_out,
                       plot: Optional[Path] = None, curation: Optional[Path] = None,
                       stack: Optional[dict] = None, brightness: Optional[dict] = None,
                       clock_left_out: Optional[list] = None, no_signal: Optional[list] = None,
                       notes: Optional[list] = None, clock_positions: Optional[dict] = None,
                       monotone_residual: Optional[float] = None, exif_turned: Optional[list] = None,
                       curation_report: Optional[dict] = None, color_read: Optional[str] = None,
                       color_read_frames: Optional[dict] = None) -> str:
    """The JSON written beside population's CSV: the command line, the versions of devolens and PyTorch, the model
    and its weights' sha256 and its files' (``model_sha256``: card and weights,
    :func:`devolens.provenance.model_sha256`; and the nuclei model's, whose counts it calibrates), the nuclei
    network's precision and ``device`` (where it ran: ``--device auto`` resolved; ``int8_activations``: 8 or 7 bits
    where it ran int8, :func:`devolens.provenance.int8_activations`), the whole-frame count regressor's arithmetic
    (``regressor_precision``), the input's sha256 and size (``inputs``: :func:`devolens.provenance.frames_inputs`),
    the options that change results, the magnification estimate, ``--clock``'s fit, the frames of no signal it left
    out (``clock_left_out``) and the positions it placed the frames at (``clock_positions``:
    ``{"from": "file_names", "step": ...}``, the numbers ending a folder's file names in steps of ``step``,
    ``{"from": "timestamps", "step_s": ...}``, a variable-rate video's or animation's frames at their times in
    steps of ``step_s`` seconds, or ``{"from": "frame_positions"}``; :func:`_clock_positions`),
    ``--monotone``'s left-out frames (``dark``: black or dark frames; ``implausible``: readings off their
    neighbours) and how far the frames with a reading lie from its fit (``monotone_residual``: their median |log|
    distance, as the clock's ``residual``; :func:`_fit_residual`); ``plot`` and ``curation``:
    the companions written beside the CSV (None: not written), which a later run into the same CSV replaces or
    removes (:func:`_stale_companions`); ``curation_report``: the ``--skip-flagged`` report read, with its sha256, or
    auto's (:func:`_curation_record`); ``color_read`` (and ``color_read_frames``, where frames were read by
    different channels): the colour channel the nuclei network read, as ``segment.json``'s (:class:`_ColourReads`;
    None: grey frames); ``stack``: how a TIFF stack was read (:func:`_stack_reading`; None: no stack,
    no entry); ``brightness``: how bright the nuclei are at the movie's start and end (:func:`_brightness`);
    ``clock_drift``: how the per-frame estimates drift away from the clock's curve (``residual_slope``: per frame
    position, ``late_residual``: the last third's median against the frames before it;
    :class:`devolens.predict.clock.ClockFit`'s ``slope`` and ``late``; recorded, not noted: no threshold told a
    drifting movie from an as-rendered one); ``no_signal``: the frames without signal (one grey level throughout,
    or black: :func:`devolens.predict.population.lacks_signal`), named as the CSV names them, whose counts the CSV
    leaves empty unless a fit read them off its curve (``clock_left_out``, ``monotone_left_out``); ``notes``: the notes the
    command prints after its summary line (their words, without ``note:``; the tip left out), as ``segment.json``'s;
    ``working_scale``: the working resolution the nuclei network read the frames at, relative to the input (the
    frames' resizing by the magnification estimate or ``--diameter`` times the network's scale), as ``segment.json``'s
    (None without a nuclei network); ``exif_turned``: the frames read from image files turned by their EXIF
    orientation tag, each ``frame``, ``file`` and ``exif_orientation``, as ``segment.json``'s."""
    from devolens.models import zoo
    from devolens.provenance import frames_inputs, int8_activations

    nuclei = getattr(predictor, "nuclei", None)
    nuclei_name = (predictor.card or {}).get("nuclei_model", "nuclei") if nuclei is not None else None
    network = getattr(nuclei, "network", None)
    scale = getattr(nuclei, "working_scale", None)  # (a stand-in for the nuclei model may have none)
    return record_text({
        **record_header("devolens population", input_path, model, out), "weights_sha256": zoo.weights_sha256(model),
        "model_sha256": model_sha256(model), "nuclei_model": nuclei_name,
        "nuclei_weights_sha256": None if nuclei_name is None else zoo.weights_sha256(nuclei_name),
        "nuclei_model_sha256": None if nuclei_name is None else model_sha256(nuclei_name),
        "devolens": version(), "torch": torch_version(), "precision": getattr(predictor, "precision", None),
        "onnxruntime": onnxruntime_version(getattr(network, "backend", None)),
        "int8_activations": int8_activations(network),  # 8 or 7 bits where the nuclei network ran int8, else None
        # the whole-frame count regressor's arithmetic (bf16 or fp32, on the CPU; None without one)
        "regressor_precision": getattr(predictor, "regressor_precision", None),
        "inputs": frames_inputs(input_path),  # the input's sha256 and size (a folder: of the frames read)
        # where the nuclei network ran (--device auto resolved; options.device keeps what was asked, for a rerun)
        "device": getattr(predictor, "device", None),
        "backend": getattr(network, "backend", None), "frames": frames, "skipped": skipped, "options": options,
        "magnification_estimate": magnification,
        "working_scale": None if scale is None else json_number(getattr(predictor, "resize", 1.0) * scale()),
        "clock": None if fit is None else {"offset": json_number(fit.offset), "rate": json_number(fit.rate),
                                           "residual": json_number(fit.residual)},
        # how the per-frame estimates drift away from the fitted curve (beside the fit: its three numbers stay)
        "clock_drift": None if fit is None else {"residual_slope": json_number(fit.slope),
                                                 "late_residual": json_number(fit.late)},
        # the frames of no signal the clock's fit left out (their rows read off its curve)
        "clock_left_out": None if fit is None else list(clock_left_out or ()),
        # where the frames were placed for the fit: the numbers in a folder's file names, or the frames' positions
        "clock_positions": None if fit is None else clock_positions,
        "brightness": brightness,
        "monotone_left_out": None if left_out is None else {"dark": list(left_out[0]),
                                                            "implausible": list(left_out[1])},
        "monotone_residual": None if monotone_residual is None else json_number(monotone_residual),
        "no_signal": list(no_signal or ()),
        "exif_turned": list(exif_turned or ()),
        "plot": None if plot is None else absolute_path(plot),
        "curation": None if curation is None else absolute_path(curation),
        "curation_report": curation_report,
        # the colour channel read (of most frames where they differ; null: grey frames), as segment.json's
        "color_read": color_read,
        **({"color_read_frames": color_read_frames} if color_read_frames else {}),
        **({"stack": stack} if stack is not None else {}),
        "notes": list(notes or []),
    })


def _stale_companions(record: Path, out: Path) -> list[Path]:
    """The companions an earlier ``population`` run wrote beside ``out`` (its plot, its curation report), as its
    record says (``plot``, ``curation``). A record without them (an older devolens): only what it proves that run
    wrote, where it went by name: the report when its ``skip_flagged`` was ``auto``, the plot when its command line
    is the CLI's own and has no ``--no-plot`` (a file of the same name may be the user's). Nothing from a record
    that is not population's of ``out`` (its command's words: :func:`~devolens.provenance.command_words`, options
    before the subcommand passed over)."""
    import json

    try:
        old = json.loads(record.read_text())
    except (OSError, ValueError):
        return []
    words = command_words(old.get("command")) if isinstance(old, dict) else []
    if words[:1] != ["population"] or (old.get("output") and not same_file(Path(old["output"]), out)):
        return []
    if "plot" in old or "curation" in old:
        found = [old.get("plot"), old.get("curation")]
    else:
        options = old.get("options") if isinstance(old.get("options"), dict) else {}
        # "devolens population" alone: a library call's record (plot off by default), not a command line
        plotted = len(words) > 1 and "--no-plot" not in words and isinstance(old.get("input"), str)
        found = [plot_path(out, Path(old["input"])) if plotted else None,
                 curation_path(out) if options.get("skip_flagged") == AUTO_CURATE else None]
    return [Path(p) for p in found if p]


def _stale_to_remove(stale: list[Path], keep: list[Optional[Path]], input_path: Path) -> list[Path]:
    """The companions of an earlier run that this one does not write, to remove as its outputs are committed
    (``keep``: what it writes, and a report it read); never the input nor a file in the input folder."""
    src = input_path.resolve()
    found = []
    for path in stale:
        if path.is_symlink() or not path.is_file():  # (a link there is the user's: the run wrote a plain file)
            continue
        target = path.resolve()
        if any(k is not None and same_file(path, k) for k in keep) or target == src or src in target.parents:
            continue
        found.append(path)
    return found


def _check_report_kept(report: Optional[Path], outputs: list[tuple[Path, str]]) -> None:
    """Refuse, before any work, a curation report given to ``--skip-flagged`` that is one of the files the run
    writes (``outputs``: each path with its words): ``population mv --out rep.csv --skip-flagged rep.csv`` replaced
    the report, edited by hand maybe, with the counts, without a word (no command overwrites its input)."""
    if report is None or _report_option(report) == AUTO_CURATE:
        return
    for path, what in outputs:
        if same_file(Path(report), path):
            raise DevolensError(f"the curation report this run reads (--skip-flagged), and {what} would replace "
                                "it: choose another --out (the report is an input, never overwritten)", path=report)


def _one_frame_words(clock: bool) -> str:
    """The refusal of ``--clock`` or ``--monotone`` (``clock`` False) on one frame."""
    if clock:
        return "--clock fits a timelapse (a video, a folder of frames or a TIFF timelapse), not one image"
    return ("--monotone smooths the counts of a timelapse over its frames (a video, a folder of frames or a TIFF "
            "timelapse), not one image: leave it out")


def _check_auto_report(out: Path, record: Path) -> None:
    """Refuse, before any work, a curation report (or a report's record, ``NAME.curation.json``) where
    ``--skip-flagged auto`` writes its own (:func:`curation_path`) that no earlier ``population`` run into ``out``
    wrote (``record``: that run's, :func:`_stale_companions`): ``curate frames --out pops.curation.csv`` then
    ``population --out pops.csv --skip-flagged auto`` replaced its report with another input's and left its record
    beside it, describing the other run (a report and its record are written both or neither)."""
    report = curation_path(out)
    beside = record_path(report)
    ours = any(same_file(p, report) for p in _stale_companions(record, out))
    found = [p for p in (report, beside) if (p.exists() or p.is_symlink()) and not (p == report and ours)]
    if found:
        raise DevolensError(f"--skip-flagged auto writes its curation report to {report.name}, and "
                            f"{'a report' if found[0] == report else 'a report record'} that no earlier population "
                            f"run into {out.name} wrote is there: remove {' and '.join(p.name for p in found)}, or "
                            f"give the report to --skip-flagged itself (--skip-flagged {report})", path=found[0])


def run_population(input_path: Path, out: Path, *, model: str = "population", monotone: bool = False,
                   clock: bool = False, plot: bool = False, plot_format: str = "png", skip_flagged: Optional[Path] = None,
                   batch_size: int = 8, fast: bool = True,
                   precision: str = "auto", backend: str = "torch", stack_z: str = "project", channel: Optional[int] = None,
                   pages: str = "time", diameter: "float | str | None" = None, color: Optional[str] = None, device: str = "cpu",
                   threads: Optional[int] = None, progress=None, pixel_size: Optional[float] = None,
                   announce=None):
    """Population counts per frame of ``input_path`` written to the CSV ``out`` (and a plot, in ``plot_format``:
    one of :data:`PLOT_FORMATS`). The plot and curation
    report of an earlier run into ``out`` that this one does not write are removed. ``threads``: PyTorch's CPU
    threads (None: torch's choice). ``diameter`` in micrometres (``"7um"``): converted with ``pixel_size`` (µm per
    pixel) or the input's calibration (:func:`_diameter_option`; the frame's ``attrs["diameter_um"]`` says how).
    ``announce``: a function (or None) given the line of how a TIFF stack is read (:func:`_stack_line`) once the
    options are checked, before any work, as :func:`run_segmentation` gives it (``attrs["stack"]``: that reading)."""
    import pandas as pd

    from devolens.io.together import write_together
    from devolens.predict.population import COLUMNS, HELD_OUT_CELLS, MAX_EMBRYO_CELLS

    check_csv_out(out, folder_first=False)
    if clock and monotone:
        raise DevolensError("--clock and --monotone exclude each other (the clock's curve never falls already)")
    check_threads(threads)
    if plot_format not in PLOT_FORMATS:
        raise DevolensError(f"--plot-format must be one of {', '.join(PLOT_FORMATS)}, got {plot_format!r}")
    from devolens.cli._common import check_writable, checked_record

    record = checked_record(record_path(out))  # how the CSV was made, beside it (replaced, as the CSV is)
    plot_file = plot_path(out, input_path, plot_format) if plot else None
    for path in (out, record, plot_file) if plot else (out, record):  # before a whole movie is read
        check_writable(path)
    _check_report_kept(skip_flagged, [(out, "--out"), (record, f"the record written beside the CSV ({record.name})")]
                       + ([(plot_file, "the plot written beside the CSV")] if plot else []))
    if _report_option(skip_flagged) == AUTO_CURATE:
        _check_auto_report(out, record)
    from devolens.io.stacks import check_pages, check_stack_z, pages_with_channel

    check_pages(pages)
    given_pages, pages = pages, pages_with_channel(pages, channel)  # --channel: a plain TIFF's 2-4 pages, channels
    if stack_z == "slices":
        raise DevolensError("--stack-z slices: population counts the cells of whole embryos in maximum-intensity "
                            "projections of their z planes (what its model was trained on), not in single slices; "
                            "leave --stack-z out (project)")
    check_stack_z(stack_z, "--stack-z", modes=("project",))
    from devolens.io.frames import folder_timelapses, several_timelapses_error

    timelapses = folder_timelapses(input_path, pages)  # (the notes say it again: kept for them)
    several = several_timelapses_error(input_path, "population", pages, timelapses)
    if several is not None:
        raise several
    _check_network_options(precision, backend, fast)
    device = device_option(device)
    calibrations = _Calibrations(input_path)
    # how a TIFF stack (a folder's first) is read: the record, and the console before the work
    stack_file, reading = _stack_reading(input_path, stack_z, channel, pages)
    _check_model_task(model, "population")  # before --diameter reads the card's input (identity's: a sentence)
    diameter, microns, skip, curation, report = _diameter_and_skip(
        diameter, model, input_path, pixel_size, skip_flagged, calibrations, stack_z=stack_z, channel=channel,
        pages=pages, progress=progress, each=False,  # (population reads one movie at one magnification)
        checked=_reading_said(announce, input_path, stack_file, reading, stack_z=stack_z, channel=channel,
                              pages=pages))
    source = _Source(input_path, stack_z=stack_z, channel=channel, pages=pages, calibrations=calibrations)
    try:
        _check_report(skip_flagged, report, source, stack_z=stack_z, channel=channel, pages=pages)
    except BaseException:
        source.close()
        raise
    if (clock or monotone) and source.total == 1:
        source.close()
        raise DevolensError(_one_frame_words(clock), path=input_path)
    from devolens.predict.clock import MIN_FRAMES as CLOCK_MIN_FRAMES

    if clock and source.total and source.total - len(skip) < CLOCK_MIN_FRAMES:  # before any inference
        source.close()
        raise DevolensError(f"the developmental clock needs a timelapse of at least {CLOCK_MIN_FRAMES} frames, "
                            f"got {source.total - len(skip)}" + (" (flagged frames left out)" if skip else ""),
                            path=input_path)
    positions: collections.deque = collections.deque()
    kept: list[int] = []
    # each frame's black/dark measures (None: not kept): --monotone leaves dark frames out by them (every frame's),
    # and every run records how the nuclei's brightness changes over the movie (_brightness: its first and last
    # BRIGHTNESS_FRAMES frames' where the number of frames is known). A PopulationPredictor takes them for its
    # no-signal test (each row's "signal": ~1.3 ms a 752x512 frame, once); for another predictor they are taken here
    signals: list = []
    own: collections.deque = collections.deque()  # ... here, until the frame's row comes
    measured = [False]  # whether the predictor takes them (known once it is loaded, before the first frame is read)
    expected = source.total - len(skip) if source.total else None

    # the first SHAPE_LOOK frames, until their row comes: the inverted-input note judges some (_JudgedFrames)
    looked: collections.deque = collections.deque()
    # --diameter none or in pixels: the frames with the most nuclei, wherever they are, for the size model's look at
    # their magnification (_magnification_note; in pixels: whether it suits them, _diameter_note; not for auto: its
    # own estimate judged them); every frame is then kept until its row comes
    busiest = _JudgedFrames(look=None) if not isinstance(diameter, str) else None
    saturation = _Saturation(_color(color))  # frames filmed too bright (its note)
    # a folder's frames of another size than its first: (height, width) of the first, then (name, size) of each other
    sizes: list = []

    def wanted(i: int) -> bool:
        """Whether row ``i``'s measures are kept."""
        return monotone or expected is None or i < BRIGHTNESS_FRAMES or i >= expected - BRIGHTNESS_FRAMES

    def frames():
        for i, (pos, frame) in enumerate(source.iter(skip)):
            positions.append(pos)
            looked.append(frame if i < SHAPE_LOOK or busiest is not None else None)
            saturation.add(frame, source.frame_id(pos))
            if source.names is not None:
                size = tuple(np.shape(getattr(frame, "image", frame))[:2])
                if not sizes:
                    sizes.append(size)
                elif size != sizes[0]:
                    sizes.append((source.frame_id(pos), size))
            arr = np.asarray(frame)
            if arr.ndim == 3 and arr.shape[2] in (3, 4):  # (reads: made once the predictor, its rule, is loaded)
                if measured[0]:  # a PopulationPredictor: its row names the channel read (one for the movie)
                    colour_at[pos] = _grey_as_colour(arr)
                else:
                    reads.add(pos, arr)
            if not measured[0]:
                own.append(_frame_signal(frame) if wanted(i) else None)
            yield frame

    rows = []
    median_areas = []
    flat: list = []  # frames without signal (lacks_signal), named as the CSV names them
    black: list = []  # ... of them, those that are not one grey level throughout (a video's black frame)
    specks: list = []  # frames whose saturated specks were left out of the brightness scale
    no_signal: list[bool] = []  # per row: such a frame (--clock leaves them out of its fit)
    colour_at: dict[int, bool] = {}  # colour frames until their row (which names the channel read): grey as colour
    judged = _JudgedFrames()  # what the inverted-input note judges, chosen by the nuclei found as segment's are
    turned: list[dict] = []  # frames read from files turned by their EXIF orientation tag (a note, the record)
    try:
        apply_threads(threads)  # (an onnx session takes its threads when it is built; torch's once it is loaded)
        predictor = _load_predictor(model, "population", batch_size, fast, backend, precision=precision,
                                    diameter=diameter, channel=_color(color), device=device)
        shadowed = _shadowed_model_note(model)
        if shadowed:
            print_note(shadowed[len("note: "):])
        apply_threads(threads)
        # the channel each colour frame was read by (the record's color_read): the nuclei network's rule, else the
        # predictor's own (a regressor alone)
        reads = _ColourReads(getattr(getattr(getattr(predictor, "nuclei", None), "network", None), "channel", None)
                             or getattr(predictor, "channel", None))
        from devolens.predict.population import PopulationPredictor, as_read

        measured[0] = isinstance(predictor, PopulationPredictor)  # (its rows carry each frame's measures)
        reads.movie = measured[0]  # (its rows name the channel read: one for the movie)
        trained = getattr(predictor, "as_trained", None)  # a count run's own frame preparation (None: a zoo model's)
        if clock and getattr(predictor, "clock", None) is None:
            if trained is not None:
                raise DevolensError("--clock does not apply to a count run: it has no developmental clock (the shipped "
                                    "population model's, the real embryos' total-cells curve); --monotone smooths its "
                                    "counts over time", path=Path(model))
            raise DevolensError(f"model {model!r} has no developmental clock (its card has no 'clock' section)")
        if trained is not None and precision == "int8":
            print_note("--precision int8 applies to U-Nets: a count run's regressor runs "
                       f"{predictor.regressor_precision} (bf16 where the CPU has it natively, else fp32)")
        total = _progress_total(source.total - len(skip) if source.total else 0)
        for row in predictor.predict_iter(frames(), total=total, progress=progress):
            pos = positions.popleft()
            kept.append(pos)
            rows.append({"frame": source.frame_id(pos), **{k: row[k] for k in COLUMNS}})
            if pos in colour_at:
                reads.add(pos, None, known=row.get("channel"), grey=colour_at.pop(pos))
            turn = source.exif_turn(pos)
            if turn is not None:
                turned.append(turn)
            median_areas.append(row.get("median_area"))
            signals.append(own.popleft() if not measured[0] else row.get("signal") if wanted(len(rows) - 1)
                           else None)
            no_signal.append(bool(row.get("flat")))
            if no_signal[-1]:
                flat.append(source.frame_id(pos))
                if row.get("black"):
                    black.append(source.frame_id(pos))
            if row.get("specks"):  # the nuclei network left saturated specks out of its brightness scale
                specks.append(source.frame_id(pos))
            image = looked.popleft()
            if image is not None and "visible" in row:  # (a regressor model finds no nuclei: no note)
                image = as_read(image, row.get("channel"))  # (judged in the channel read)
                if judged.added < SHAPE_LOOK:
                    judged.add(int(row["visible"]), image)
                if busiest is not None:
                    busiest.add(int(row["visible"]), image)
    except DevolensError as exc:  # an estimate refused (before any row): named by the input
        named = _refusal_named(exc, input_path, source, list(positions), each=False)
        if named is None:
            raise
        raise named from None
    finally:
        source.close()
    if not rows:
        raise DevolensError("no frames left (all frames flagged?)", path=input_path)
    if monotone and len(rows) == 1:  # (a video of one frame, or one left by the flagged ones: known once read)
        raise DevolensError(_one_frame_words(False) + (" (flagged frames left out)" if skip else ""), path=input_path)
    df = pd.DataFrame(rows, columns=["frame", *COLUMNS])
    left_out = monotone_residual = None
    # a video's or an animation's frames at uneven intervals: the fits place them at their times (_timed_positions)
    steady = _steady(input_path, source) if clock or monotone else None
    timed = _timed_positions(source.times(), kept) if steady is False else None
    no_signal = np.array(no_signal, bool)
    # a fall the readings keep (a cut, another embryo, a table rendered past its cliff): no fit of counts that never
    # fall follows it (_fall_note), and its residual, a median over the frames, may not show it
    fall = _sustained_fall(df["frame"].tolist(), df["total"].to_numpy(np.float64), ~no_signal) \
        if monotone or clock else None
    if monotone:
        read = df["total"].to_numpy(np.float64)
        df, left_out = robust_monotone(predictor.smooth, df, kept if timed is None else timed[0], signals,
                                       no_signal=no_signal)
        # how far the fit lies from the readings: the frames with one, the implausible ones too (as --clock measures
        # its fit: leaving them out, a movie of two embryos' frames interleaved left half out and lay 2 % off)
        monotone_residual = _fit_residual(read, df["total"].to_numpy(np.float64), ~left_out[0])
    # (a frame without signal shows no nuclei to be bright: a black last frame read as "dimmed to 0%")
    brightness = _brightness([None if flat_frame else s for s, flat_frame in zip(signals, no_signal)])
    fit = clock_positions = early = None
    if clock:
        try:
            clock_at, clock_positions = _clock_positions(source, kept, timed)
            df, fit = _clock_fit(predictor, df, clock_at, no_signal)
            early = _before_clock(df)
        except DevolensError as exc:  # too few frames: named by the input, as every error about it is
            raise (exc if exc.path is not None else DevolensError(str(exc), path=input_path)) from None
    df[list(COLUMNS)] = df[list(COLUMNS)].astype(float).round(2)
    # a frame without signal holds nothing to count: its counts are empty (NaN), not the black frame's reading (a
    # cell or two), unless a fit left it out and read its row off its curve (--clock; --monotone, dim)
    empty = no_signal & ~(np.ones_like(no_signal) if fit is not None else
                          left_out[0] if left_out is not None else np.zeros_like(no_signal))
    if empty.any():
        df.loc[empty, list(COLUMNS)] = np.nan
    seconds = _stack_seconds(reading, df["frame"])  # (a TIFF stack that records its interval: time_s, the last)
    if seconds:
        df[TIME_COLUMN] = seconds
    # the outputs, written together once everything is worked out (the notes the record keeps included): the plot,
    # the curation report (--skip-flagged auto: made here), the CSV, then the record
    writers: dict = {}
    if plot:
        from devolens.viz.plots import plot_populations

        pdf = df.copy()
        xs, xlabel = _plot_axis(source, kept, seconds)
        pdf.insert(0, "time", xs)
        pdf = pdf.drop(columns=["frame", *([TIME_COLUMN] if seconds else [])])
        writers[plot_file] = lambda tmp: plot_populations(
            pdf, tmp, xlabel=xlabel, title=f"{input_path.name}: predicted populations"
            + (" (monotone)" if monotone else " (developmental clock)" if clock else ""))
    if curation is not None:
        from devolens.curate.frames import report_for_csv

        tidy = report_for_csv(curation)  # (as curate frames writes it)
        writers[curation_path(out)] = lambda tmp: tidy.to_csv(tmp, index=False, errors=TEXT_ERRORS)  # (as write_csv)
    writers[out] = lambda tmp: df.to_csv(tmp, index=False, errors=TEXT_ERRORS)  # (a name not UTF-8 escaped)
    left_names = None if left_out is None else tuple(
        [source.frame_id(p) for p, bad in zip(kept, mask) if bad] for mask in left_out)
    # --monotone's left-out frames before its first frame fitted, and after its last: their rows hold its first
    # (last) fitted value, not the curve between frames around them (_filled_words)
    fitted = np.array([], int) if left_out is None else np.flatnonzero(~(left_out[0] | left_out[1]))
    df.attrs["monotone_ends"] = None if not len(fitted) else {
        "before": [source.frame_id(p) for p in kept[:fitted[0]]],
        "after": [source.frame_id(p) for p in kept[fitted[-1] + 1:]]}
    df.attrs["record"] = record
    df.attrs["diameter_um"] = microns
    df.attrs["stack"] = reading
    df.attrs["timelapses"] = timelapses
    df.attrs["flat"] = flat
    df.attrs["flat_black"] = black
    df.attrs["flat_empty"] = [fid for fid, gone in zip(df["frame"], empty) if gone]  # their counts left empty
    df.attrs["specks"] = specks
    df.attrs["exif_turned"] = turned
    df.attrs["saturated"], df.attrs["saturation_note"] = saturation.share(), saturation.note()
    # the channel a colour input was read by, without --color (segment's line): one for the movie
    if color is not None:
        df.attrs["colour_read_line"] = None
    elif trained is not None:  # a count run reads colour frames by its own rule
        df.attrs["colour_read_line"] = trained.colour_line() if reads.record() is not None else None
    else:
        df.attrs["colour_read_line"] = reads.line(
            lambda p: source.frame_id(p) if source.names is None else source.names[p],
            "frame" if source.names is None else "file")
    # a count run of colour frames given grey ones: each repeated in its channels, not what it trained on
    df.attrs["grey_for_colour"] = trained.grey_words(trained.grey) if trained is not None and trained.grey else None
    df.attrs["squashed"] = ((trained.squashed, trained.squashed_first, trained.size)
                            if trained is not None and trained.squashed else None)
    # segment nuclei's blobs-or-lines note: an input that looks inverted, or like membranes
    df.attrs["inverted_note"] = _population_inverted_note(judged.frames(), predictor,
                                                          reading["channels"] if reading else 0)
    df.attrs["skipped"] = len(skip)
    df.attrs["regressed"] = list(getattr(predictor, "outputs", []) or [])
    df.attrs["not_regressed"] = getattr(predictor, "unread", [])
    df.attrs["sizes_note"] = _frame_sizes_note(sizes, len(df), diameter)
    df.attrs["ended_early"] = source.ended_early()
    df.attrs["missing"] = source.missing_note()
    df.attrs["beyond_embryo"] = int((df["total"] > MAX_EMBRYO_CELLS).sum())
    # totals above the calibration's top (but within an embryo's): extrapolated (_calibration_note)
    top = _calibration_top(predictor)
    over = ((df["total"] > top) & (df["total"] <= MAX_EMBRYO_CELLS) if top is not None
            else pd.Series(False, index=df.index))
    df.attrs["beyond_calibration"] = (None if not over.any() else
                                      {"top": top, "frames": [str(f) for f in df.loc[over, "frame"]]})
    # totals from AMBIGUOUS_CELLS up to the calibration's top (or an embryo's): a late embryo read low may give them,
    # --clock's too unless its movie starts from the first cells (_held_out_note); above HELD_OUT_CELLS they lie
    # beyond the held-out renders as well
    from devolens.predict.population import late_readings

    # (the library's warning reads them alike; a count run of the user's: none, its figures are the shipped model's)
    late = pd.Series(late_readings(df["total"], top) & (trained is None), index=df.index)
    df.attrs["late_reading"] = None if not late.any() else {
        "frames": [str(f) for f in df.loc[late, "frame"]],
        "beyond_held_out": [str(f) for f in df.loc[late & (df["total"] > HELD_OUT_CELLS), "frame"]],
        "clock_start": None if fit is None else float(fit.totals[0])}
    df.attrs["curation"] = None if curation is None else curation_path(out)
    # nuclei far from the sizes the model knows: another magnification (see size_advice)
    df.attrs["suggest_diameter"] = predictor.size_advice(median_areas)
    # used as they are at a magnification far from the training one (size_advice cannot tell: see _magnification_note)
    nuclei = getattr(predictor, "nuclei", None)
    df.attrs["magnification_check"] = (nuclei.magnification_check(busiest.frames())
                                       if busiest is not None and nuclei is not None and diameter is None else None)
    # a diameter given in pixels far from the size model's estimate (size_advice cannot tell either: segment's check)
    checked = getattr(predictor, "diameter_check", None)
    df.attrs["diameter_check"] = checked(busiest.frames()) if busiest is not None and checked is not None else None
    df.attrs["diameter_given"] = (microns or {}).get("given")  # (as the user wrote it: a µm diameter's words)
    df.attrs["trained_magnifications"] = getattr(nuclei, "trained_zooms", None)
    df.attrs["magnification_bands"] = (getattr(nuclei, "far_magnifications", None), getattr(nuclei, "auto_keep", None))
    df.attrs["known_sizes"] = predictor.known_sizes
    df.attrs["estimate"] = getattr(predictor, "last_estimate", None)
    df.attrs["resized"] = getattr(predictor, "resize", 1.0) != 1.0
    df.attrs["clock"] = fit
    df.attrs["clock_early"] = early  # frames placed before the clock's curve starts (_before_clock)
    # --clock placed a folder's frames at the numbers in their file names, with a gap between them (_clock_positions)
    df.attrs["clock_gaps"] = (fit is not None and clock_positions["from"] == "file_names"
                              and bool(np.any(np.diff(clock_at) > 1.5)))
    df.attrs["brightness"] = brightness
    df.attrs["steady"] = steady if clock else None
    # --clock placed the frames at their times ("video" or "animation"; None: not)
    df.attrs["clock_timed"] = (("animation" if source._animated is not None else "video")
                               if fit is not None and clock_positions["from"] == "timestamps" else None)
    # the seconds between frames the input records (a TIFF's metadata, a video's timestamps, an animation's delays),
    # and where from: --clock's pace is compared with them (_interval_note)
    df.attrs["recorded_interval"] = _recorded_interval(source, reading, timed) if fit is not None else None
    # --monotone: the frames left out of the fit (black or dark; implausible readings), named as the CSV names them
    df.attrs["monotone_left_out"] = left_names
    df.attrs["monotone_residual"] = monotone_residual  # (the median |log| distance of the readings from its fit)
    df.attrs["fall"] = fall
    df.attrs["clock_available"] = getattr(predictor, "clock", None) is not None and source.total != 1
    df.attrs["clock_seconds"] = (predictor.card.get("clock") or {}).get("seconds_per_time_point")
    # what the command prints after its summary line (and the record keeps: notes)
    df.attrs["notes"] = _population_notes(input_path, stack_z, pages, monotone, df.attrs, len(df))
    stale = _stale_companions(record, out)  # read before this run's record replaces it
    written = [plot_file, None if curation is None else curation_path(out)]
    text = _population_record(
        input_path, out, model, predictor, frames=len(df), skipped=[source.frame_id(p) for p in sorted(skip)],
        options={"monotone": monotone, "clock": clock, "diameter": diameter, **_diameter_record(microns),
                 "batch_size": batch_size, "fast": fast,
                 "precision": precision, "backend": backend, "color": color, "channel": channel, "stack_z": stack_z,
                 "pages": given_pages, "skip_flagged": _report_option(skip_flagged), "device": device,
                 "threads": threads},
        magnification=_sizing_record(diameter, getattr(predictor, "last_estimate", None), frames=list(df["frame"]),
                                     resize=getattr(predictor, "resize", None)),
        fit=fit, left_out=left_names, plot=written[0], curation=written[1], stack=reading, brightness=brightness,
        clock_left_out=flat if fit is not None else None, no_signal=flat, clock_positions=clock_positions,
        monotone_residual=monotone_residual, exif_turned=turned,
        curation_report=_curation_record(skip_flagged, written[1]),
        color_read=trained.reads if trained is not None and reads.record() is not None else reads.record(),
        color_read_frames=reads.record_by(source.frame_id),
        notes=[*model_said(), *(_plain_note(text) for text, _ in df.attrs["notes"] if not text.startswith("tip:"))])
    writers[record] = lambda tmp: tmp.write_text(text, encoding="utf-8", errors=TEXT_ERRORS)
    given = None if skip_flagged is None or _report_option(skip_flagged) == AUTO_CURATE else Path(skip_flagged)
    # all this run's or all the previous run's, whatever stops the run; the earlier companions this run does not
    # write go in the same step
    write_together(writers, remove=_stale_to_remove(stale, [*written, given, out, record], input_path))
    return df


#: --monotone: a total below 1/MONOTONE_FACTOR of the frames around it, or above MONOTONE_FACTOR times them, is an
#: implausible reading (populations never halve, and a doubling the next frames do not keep is no division round) ...
MONOTONE_FACTOR = 2.0
#: ... when it is also at least this many cells away from them (the first divisions: 1, 2, 4 cells are not misreads)
MONOTONE_MIN_CELLS = 4.0
#: ... the frames around it: this many on each side
MONOTONE_WINDOW = 4


def _calibration_top(predictor) -> Optional[float]:
    """The largest total (cells) the population model's calibration reaches
    (:func:`devolens.predict.population.calibration_top`, which the library's late-reading warning reads too)."""
    from devolens.predict.population import calibration_top

    return calibration_top(predictor)


def _calibration_note(beyond: dict) -> str:
    """The note on frames whose predicted total lies above the calibration's top (``beyond``: ``top`` and the
    ``frames``, named as the CSV names them)."""
    frames = beyond["frames"]
    return (f"{_count(len(frames), 'frame')} ({_names(frames)}) {'has' if len(frames) == 1 else 'have'} a predicted "
            f"total above {beyond['top']:.0f} cells, the top of the model's calibration (its curve's, fitted on "
            "renders of known totals): counts there are extrapolated and read low (renders of the AceTree embryo at "
            "550-582 cells read 308-468 already), so the embryo may hold more cells than said")


#: a --clock fit that starts at this many cells or fewer reads late frames within 17 % (_held_out_note: movies of
#: the AceTree embryo from 4-24 cells; from 51 cells on up to 44 % off)
CLOCK_FROM_FIRST_CELLS = 24


def _held_out_note(late: dict) -> str:
    """The note on frames whose predicted total is :data:`~devolens.predict.population.AMBIGUOUS_CELLS` or more (but
    not above the calibration's top: :func:`_calibration_note`): late embryos read low, so such a total may come from
    a much later embryo; those above :data:`~devolens.predict.population.HELD_OUT_CELLS` also lie beyond the held-out
    renders the model was measured on. ``late``: the ``frames`` and those of them ``beyond_held_out``, named as the
    CSV names them, and ``clock_start``, the total at which this run's ``--clock`` fit starts (None without one)."""
    from devolens.predict.population import AMBIGUOUS_CELLS, HELD_OUT_CELLS, late_ambiguity

    frames, beyond = late["frames"], late["beyond_held_out"]
    start = late.get("clock_start")
    early_clock = start is not None and start <= CLOCK_FROM_FIRST_CELLS
    ambiguity = late_ambiguity()  # (the library's warning says it alike: population.late_message)
    text = (f"{_count(len(frames), 'frame')} ({_names(frames)}) {'reads' if len(frames) == 1 else 'read'} "
            f"{AMBIGUOUS_CELLS} cells or more, where a total alone does not tell the stage: "
            + (f"{ambiguity}, so the embryo may hold more cells than said, up to ~580" if not early_clock else
               f"without the clock {ambiguity}; with it, from near the first cells, such frames read within 17 %"))
    if beyond:
        which = ("it is" if len(frames) == 1 else "all are" if len(beyond) == len(frames) else
                 f"{_count(len(beyond), 'frame')} ({_names(beyond)}) {'is' if len(beyond) == 1 else 'are'}")
        text += (f"; {which} above {HELD_OUT_CELLS} cells, beyond the held-out renders the model's figures were "
                 "measured on")
    measured = ("movies of the AceTree embryo from 4-24 cells had every frame of 290 cells or more within 17 %, from "
                "51 cells or later up to 44 % off, most of them low")
    # (the pace: the population card's clock.seconds_per_time_point; the hours: its clock curve's time points)
    since = ("the time since the first cleavage (at the pace of the clock's reference embryos, 91 s a time point: "
             "about 3 h from the 4-cell stage to 290 cells, 4 h 10 min to 500)")
    if start is None:
        return f"{text}. --clock on a timelapse from the first cells tells them apart ({measured}), and so does {since}"
    return (f"{text}. This run's --clock starts at ~{start:.0f} cells: read off the developmental clock, {measured}; "
            f"{since} also tells them apart")


def _frame_signal(frame) -> Optional[dict]:
    """The curator's black/dark measures of one frame (None for a frame it cannot measure):
    :func:`devolens.predict.population.signal_measures` (imported when used: the CLI starts without PyTorch)."""
    from devolens.predict.population import signal_measures

    return signal_measures(frame)


#: the nuclei's brightness at a movie's start and at its end: the median over this many of its first and last frames
#: (a flicker frame does not decide it) ...
BRIGHTNESS_FRAMES = 5
#: ... and the note's threshold: the end this dim, relative to the start
DIM_END = 0.3


def _brightness(signals: list) -> Optional[dict]:
    """How bright the nuclei are at a movie's end relative to its start, for the record (None for fewer than 2
    frames, or when its first or last frames were not measured: a movie that ended before its announced length):
    ``first`` and ``last``, the median over the first and last ``BRIGHTNESS_FRAMES`` frames (at most a third
    each: ``frames``) of the curator's ``foreground`` (the bright part's mean above the background, 8-bit grey
    levels, :func:`devolens.curate.frames.frame_signal`), and ``ratio`` last/first. Bleaching lowers it; a
    growing embryo's crowded nuclei raise it somewhat (a rendered movie's, unbleached: 1.6). A float movie's
    frames, each read in its own ``range`` (camera counts: a power of two near its brightest pixels), are brought
    to the first measured frame's, as :func:`devolens.curate.frames.black_or_dark` brings them (a movie bleaching
    from 4000 to 1000 counts would otherwise read its last frames in a 4x narrower range, as bright as its
    first)."""
    n = len(signals)
    if n < 2:
        return None
    k = max(1, min(BRIGHTNESS_FRAMES, n // 3))
    from devolens.curate.frames import range_factors

    factors = range_factors([None if s is None else s.get("range") for s in signals])

    def median(lo: int, hi: int) -> Optional[float]:
        values = [float(signals[i].get("foreground", np.nan)) * factors[i] for i in range(lo, hi)
                  if signals[i] is not None]
        values = [v for v in values if np.isfinite(v)]
        return float(np.median(values)) if values else None

    first, last = median(0, k), median(n - k, n)
    if first is None or last is None:
        return None
    return {"first": json_number(round(first, 2)), "last": json_number(round(last, 2)),
            "ratio": json_number(round(last / first, 3)) if first > 0 else None, "frames": k}


def _brightness_note(brightness: Optional[dict]) -> Optional[str]:
    """The note on a movie whose nuclei end much dimmer than they start (``ratio`` under ``DIM_END``); None
    otherwise. It states the fall without alarm: each frame is normalised on its own, and a walkthrough's rendered
    movie bleached to 15 % (3x fewer photons too; measured ratio 0.25) was counted as well as the unbleached one
    (instance F1 0.86 vs 0.88, late frames' count bias within 2 points; thirtieth session)."""
    ratio = (brightness or {}).get("ratio")
    if ratio is None or ratio >= DIM_END:
        return None
    return (f"the nuclei dim to {100 * ratio:.0f}% of the first frames' brightness by the last frames (bleaching?). "
            "Each frame is normalised on its own, which kept the counts of a test movie bleached to 15%; "
            "if the last frames look noisy, check their counts (devolens segment nuclei draws what it found)")


def implausible_readings(totals: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Which of a timelapse's per-frame totals (in time order) are implausible readings: a total below half the
    median of the (up to) 4 usable frames before it and below half that of the 4 after it (the last frames: of
    those before it), or above twice both medians (both sides needed: a movie may end in a doubling); and at
    least 4 cells away. A real population never halves, so such a drop is a misread frame (out of focus, the
    embryo out of view), while a fall the next frames keep is left to the fit. The first frames (none before
    them) are never judged: a growing embryo starts low. Two passes, the second with the first's finds left
    out of the medians (misreads come in runs)."""
    totals = np.asarray(totals, dtype=np.float64)
    bad = np.zeros(len(totals), bool)
    for _ in range(2):
        ok = np.asarray(usable, bool) & ~bad & np.isfinite(totals)
        idx = np.flatnonzero(ok)
        found = np.zeros(len(totals), bool)
        for i in np.flatnonzero(np.asarray(usable, bool) & np.isfinite(totals)):
            pos = np.searchsorted(idx, i)
            before = totals[idx[max(0, pos - MONOTONE_WINDOW):pos]]
            after = totals[idx[pos + (pos < len(idx) and idx[pos] == i):][:MONOTONE_WINDOW]]
            if not len(before):
                continue
            meds = [float(np.median(before))] + ([float(np.median(after))] if len(after) else [])
            low, high = min(meds), max(meds)
            t = totals[i]
            if t < low / MONOTONE_FACTOR and low - t >= MONOTONE_MIN_CELLS:
                found[i] = True
            elif len(after) and t > MONOTONE_FACTOR * high and t - high >= MONOTONE_MIN_CELLS:
                found[i] = True
        bad = found
    return bad


def robust_monotone(smooth, df, positions: list[int], signals: Optional[list], no_signal=None):
    """``--monotone``: the isotonic fit ``smooth`` (the predictor's:
    :func:`devolens.predict.postprocess.smooth_populations`) of the per-frame counts ``df`` (rows in time order,
    at the input's frame ``positions``), robust to the frames that would drag it: one black frame read at 1 cell
    at the end of a movie otherwise pulls the fit of every frame before it down to their mean with it.

    Left out of the fit: the frames the curator's black or dark test flags
    (:func:`devolens.curate.frames.black_or_dark` on their ``signals``, :func:`devolens.curate.frames.frame_signal`;
    None for a frame not measured) that read fewer cells than the median of the (up to 4) frames with a reading
    before them (not NaN, not of no signal; a one-cell embryo or a dim 12-bit movie passes for dark, and is read
    right), the frames without signal
    (``no_signal``, a mask: :func:`devolens.predict.population.lacks_signal`; and rows whose total is NaN; counted
    with the dim ones), and the
    implausible readings (:func:`implausible_readings`). Their rows get the
    fitted curve between the frames before and after them (linear in the frame position; the nearest fitted
    frame's value at either end), so the curve stays monotone. Returns ``(smoothed table, (dim mask, implausible
    mask))``.
    """
    from devolens.curate.frames import black_or_dark

    n = len(df)
    dim = np.zeros(n, bool)
    if signals is not None and len(signals) == n:
        measured = np.array([s is not None for s in signals], bool)
        if measured.any():
            dim[measured] = black_or_dark([s for s in signals if s is not None])
    totals = df["total"].to_numpy(float)
    flat = np.asarray(no_signal, bool) if no_signal is not None and len(no_signal) == n else np.zeros(n, bool)
    flat = flat | ~np.isfinite(totals)  # a row without a reading (NaN: no signal, as predict_batch leaves it) too
    # a black or dark frame drags the fit only when it reads fewer cells than the frames before it: an embryo of one
    # or two nuclei, or a dim 12-bit movie, passes for dark and is read right (the first frames are never left out).
    # Before it: the last (up to 4) frames with a reading; a frame of no signal has none (NaN, or a black frame's cell
    # or two), which made the median NaN or low and kept a dark frame after it in the fit
    read = np.flatnonzero(~flat)
    dim &= np.array([bool(len(before := totals[read[read < i][-MONOTONE_WINDOW:]]))
                     and totals[i] < np.median(before) - 0.5 for i in range(n)], bool)
    dim |= flat  # nothing to count in them: always left out (as --clock does)
    odd = implausible_readings(totals, ~dim) & ~dim
    keep = ~(dim | odd)
    if keep.all() or not keep.any():  # nothing to leave out, or nothing left to fit: every frame fitted
        return smooth(df), (np.zeros(n, bool), np.zeros(n, bool))
    fitted = smooth(df[keep].reset_index(drop=True))
    out = df.copy()
    x = np.asarray(positions, dtype=np.float64)
    cols = [c for c in fitted.columns if c != "frame"]
    for c in cols:
        out[c] = out[c].astype(np.float64)
        values = fitted[c].to_numpy(np.float64)
        out.loc[keep, c] = values
        out.loc[~keep, c] = np.interp(x[~keep], x[keep], values)
    return out, (dim, odd)


def _plot_axis(source: "_Source", kept: list[int], seconds: Optional[list[float]] = None) -> tuple[list, str]:
    """The population plot's x values for the frames ``kept`` (their positions in the input) and the axis's label:
    minutes where the frames' times are known (``seconds``, :func:`_stack_seconds`: a TIFF stack that records its
    interval); a video's frame numbers; the numbers that end the file names when every one has one and they rise in
    the folder's order (``t001``, ``t005``, ...: time points); else the frames' positions. Frames left out (flagged,
    missing) leave a gap, as they do in the input."""
    if seconds:  # drawn against the filming's time
        return [t / 60 for t in seconds], "time (minutes from the first time point, as the file records it)"
    if source.is_video:  # a video, or a TIFF stack or animated image streamed plane by plane
        return [int(p) for p in kept], "frame (from 0)" if source.is_stack else "video frame"
    numbers = _name_numbers(source, kept)
    if numbers is not None:
        return numbers, "frame (the number in its file name)"
    return [int(p) for p in kept], "frame (position in the input, from 0)"


def _name_numbers(source: "_Source", kept: list[int]) -> Optional[list[int]]:
    """The numbers that end the file names of a folder's frames ``kept`` (``t001``, ``t005``, ...: time points) when
    every one has one and they rise in the folder's order; else None (and for a video or stack)."""
    import re

    if source.is_video:
        return None
    ends = [re.search(r"(\d+)$", str(source.frame_id(p))) for p in kept]
    if not all(ends):
        return None
    numbers = [int(m.group(1)) for m in ends]
    return numbers if all(b > a for a, b in zip(numbers, numbers[1:])) else None


def _clock_positions(source: "_Source", kept: list[int],
                     timed: Optional[tuple[list[float], float]] = None) -> tuple[list[float], dict]:
    """``--clock``'s position of each frame ``kept``, and the record's words for them: a folder's frames at the
    numbers that end their file names where the plot's axis takes them (:func:`_name_numbers`), in steps of the
    usual one between them (their median step: a folder of every 5th time point fits as one of every time point,
    while a gap, t054 then t070, stays a gap: fitted as evenly spaced, the frames after it were read ~30 % low);
    a video's or an animation's frames at uneven intervals at their times (``timed``, :func:`_timed_positions`:
    in steps of their mean interval, its seconds ``step_s``); else (a video, a stack, names without such numbers)
    the frames' positions in the input, as the plot's axis."""
    if timed is not None:
        return timed[0], {"from": "timestamps", "step_s": json_number(timed[1])}
    numbers = _name_numbers(source, kept)
    if numbers is None or len(numbers) < 2:
        return [float(p) for p in kept], {"from": "frame_positions"}
    step = float(np.median(np.diff(numbers)))
    return [(n - numbers[0]) / step for n in numbers], {"from": "file_names", "step": json_number(step)}


def _steady(input_path: Path, source: "_Source") -> Optional[bool]:
    """Whether a video input's frames came at one steady interval (:func:`devolens.io.video.video_steady`: False
    for a variable frame rate), or an animated GIF's or WebP's (:func:`_even_delays`); None for other inputs or
    when unknown."""
    if source._animated is not None:
        return _even_delays(source.times())
    if not source.is_video or source.is_stack:
        return None
    from devolens.io.video import video_steady

    return video_steady(input_path)


#: an animation's frame delays differing from their median by more than this share (and more than a GIF's 10 ms
#: tick) are uneven (:func:`_even_delays`)
UNEVEN_DELAYS = 0.1


def _even_delays(times: Optional[list]) -> Optional[bool]:
    """Whether an animation's frames (their ``times``, :attr:`devolens.io.frames.AnimationFrames.times`) come at one
    interval; None when not known."""
    if not times or len(times) < 3 or any(t is None for t in times):
        return None
    steps = np.diff(np.asarray(times, np.float64))
    usual = float(np.median(steps))
    return bool(np.all(np.abs(steps - usual) <= max(UNEVEN_DELAYS * usual, 0.011)))


def _timed_positions(times: Optional[list], kept: list[int]) -> Optional[tuple[list[float], float]]:
    """The frames ``kept`` (positions in the input) placed at their ``times`` (seconds, by position:
    :meth:`_Source.times`) in steps of their mean interval (frames lost mid-video counted: a constant-rate
    video's frames stay at their numbers), and that interval's seconds; None when a frame kept has no time, or
    the times do not rise."""
    if times is None or len(kept) < 2 or kept[-1] >= len(times):
        return None
    at = [times[p] for p in kept]
    if any(t is None for t in at) or any(b <= a for a, b in zip(at, at[1:])):
        return None
    step = (at[-1] - at[0]) / (kept[-1] - kept[0])
    return [kept[0] + (t - at[0]) / step for t in at], step


def _recorded_interval(source: "_Source", reading: Optional[dict],
                       timed: Optional[tuple[list[float], float]]) -> Optional[tuple[float, str]]:
    """The seconds between frames the input records and where: a TIFF stack's metadata (ImageJ ``finterval``, OME
    ``TimeIncrement``; the stack's reading, :func:`_stack_reading`), else the mean interval of a video's or an
    animation's frames at uneven intervals (``timed``) when it is at least :data:`FILMED_STEP` (shorter ones are
    a playback rate, not the filming's; a constant-rate video's, the same); None otherwise."""
    if reading is not None and "file" not in reading and reading.get("interval_s"):
        return float(reading["interval_s"]), "its metadata record"
    if timed is not None and timed[1] >= FILMED_STEP:
        return timed[1], "its frame delays put" if source._animated is not None else "the video's timestamps put"
    return None


#: a video's or an animation's mean frame interval at least this long (seconds) is taken for the filming's, not a
#: playback rate (:func:`_recorded_interval`)
FILMED_STEP = 1.0
#: --clock's seconds per frame more than this factor from the interval the input records are noted
#: (:func:`_interval_note`)
INTERVAL_FACTOR = 2.0


def _interval_note(fit, seconds: Optional[float], recorded: Optional[tuple[float, str]]) -> Optional[str]:
    """A note where --clock's pace (``fit.rate`` reference time points per frame, ``seconds`` per time point at the
    reference embryos' pace) lies more than :data:`INTERVAL_FACTOR` times from the interval the input records
    (``recorded``: seconds and where, :func:`_recorded_interval`); None otherwise."""
    if fit is None or not seconds or recorded is None:
        return None
    clock_s, (given, where) = fit.rate * seconds, recorded
    factor = max(clock_s / given, given / clock_s)
    if not factor > INTERVAL_FACTOR:
        return None
    wrong = "a wrong interval recorded" if where == "its metadata record" else "times of playback, not of filming"
    return (f"--clock's pace, a frame every ~{clock_s:.0f} s at the reference embryos' pace, is {factor:.0f}x "
            f"{'longer' if clock_s > given else 'shorter'} than the {given:.3g} s between frames {where}: embryos "
            f"developing at another pace (another temperature or strain), frames not of one embryo, or {wrong}?")


def _clock_fit(predictor, df, positions: list[float], no_signal: np.ndarray):
    """``--clock``: the predictor's fit of the per-frame counts ``df`` (rows at ``positions``, :func:`_clock_positions`)
    to the developmental clock, leaving the frames of no signal (``no_signal``: one grey level throughout or
    black, :func:`devolens.predict.population.lacks_signal`, read at a cell or two) out of it, as ``--monotone``
    leaves black frames out of its fit: 3 such frames at a movie's start pulled the curve of every frame 4x too low. They are read off the fitted curve at their
    positions, as every frame is (:func:`devolens.predict.clock.fit_clock`'s ``use``)."""
    if not no_signal.any():
        return predictor.clock_fit(df, positions)
    from devolens.predict.clock import MIN_FRAMES

    if int((~no_signal).sum()) < MIN_FRAMES:
        raise DevolensError(f"the developmental clock needs a timelapse of at least {MIN_FRAMES} frames with signal, "
                            f"got {int((~no_signal).sum())}: {_count(int(no_signal.sum()), 'frame')} of "
                            f"{len(no_signal)} hold no signal (one grey level throughout, or black)")
    return predictor.clock_fit(df, positions, use=~no_signal)


#: a fit whose per-frame estimates lie a median of more than this (|log|: 35 % off) from its curve is far from them
#: (--clock's and --monotone's: _far_from_fit). Movies as filmed lie 7-15 % off the clock's curve and 0-13 % off the
#: monotone one (the three held-out renders' movies, every frame's optics its own; the walkthrough's movie); the same
#: movies in reverse order 65-198 % and 55-186 %
FAR_FROM_FIT = 0.3


def _off_fit(residual: float) -> str:
    """How far a fit's per-frame estimates lie from its curve (``residual``: their median |log| distance, as
    :class:`devolens.predict.clock.ClockFit`'s and :func:`_fit_residual`'s)."""
    return f"the per-frame estimates lie a median {100 * (np.exp(residual) - 1):.0f}% off the fitted curve"


def _far_from_fit(residual: float, option: str, counts: str, unlike: str) -> Optional[str]:
    """What a fit far from its per-frame estimates (beyond :data:`FAR_FROM_FIT`) may mean, after :func:`_off_fit`'s
    words (``option``: the fit's, ``counts``: what its counts are called, ``unlike``: the cause of its own); None when
    it is not far."""
    if not residual > FAR_FROM_FIT:
        return None
    return (f"that is far: frames out of time order, several embryos, or {unlike}? {counts} are then not reliable "
            f"(run without {option}).")


def _fit_residual(totals, fitted, use) -> Optional[float]:
    """The median |log| distance of the per-frame ``totals`` from a fit's ``fitted`` ones over the rows ``use`` (with
    a reading in both), each at least 1 cell: as :func:`devolens.predict.clock.fit_clock` measures its ``residual``.
    None when no row is left."""
    totals, fitted = np.asarray(totals, np.float64), np.asarray(fitted, np.float64)
    use = np.asarray(use, bool) & np.isfinite(totals) & np.isfinite(fitted)
    if not use.any():
        return None
    return float(np.median(np.abs(np.log(np.maximum(totals[use], 1.0)) - np.log(np.maximum(fitted[use], 1.0)))))


def _before_clock(df) -> Optional[dict]:
    """``--clock``'s frames placed before its reference curve starts (at ~3 cells: its embryos' first time point), as
    the library's fit leaves them (:meth:`devolens.predict.population.PopulationPredictor.clock_fit`, one rule for
    both: the curve reads them at its first value, 2.83 cells, and those whose own reading lies below it keep it; the
    frames of no signal, left out of the fit, stay on the curve): its ``attrs["clock_early"]``, the frames named as
    the CSV names them; None where no frame lies before the start."""
    early = df.attrs.get("clock_early")
    if not early:
        return None
    return {"frames": [str(f) for f in early["frames"]], "kept": [str(f) for f in early["kept"]],
            "start": float(early["start"])}


def _early_note(early: dict) -> str:
    """The note on ``--clock``'s frames before its curve's start (:func:`_before_clock`)."""
    frames, kept = early["frames"], early["kept"]
    one = len(frames) == 1
    text = (f"--clock placed {_count(len(frames), 'frame')} ({_names(frames)}) before its reference curve starts "
            f"(~{early['start']:.0f} cells, its embryos' first time point), where it reads {'it' if one else 'them'} "
            f"at {early['start']:.2f} cells")
    if kept:
        text += (f"; {'it reads' if one else 'they read' if len(kept) == len(frames) else _names(kept) + ' read'}"
                 f" fewer cells on {'its' if len(kept) == 1 else 'their'} own and "
                 f"{'keeps its' if len(kept) == 1 else 'keep their'} per-frame reading in the CSV")
    return text


def _clock_note(fit, seconds: Optional[float]) -> str:
    """What the developmental clock found: the movie's pace and how well its frames follow the curve; a note where the
    pace lies at an edge of the range searched (:data:`devolens.predict.clock.RATES`: a limit, not a pace measured)."""
    from devolens.predict.clock import RATES

    pace = f"{fit.rate:.2f} reference time points per frame"
    if seconds:
        pace += f" (a frame every ~{fit.rate * seconds:.0f} s at the reference embryos' pace)"
    text = f"developmental clock: {pace}; first frame at ~{float(fit.totals[0]):.0f} cells; {_off_fit(fit.residual)}"
    far = _far_from_fit(fit.residual, "--clock", "The clock's counts", "development unlike wild type")
    if far is not None:
        text += f"\n[yellow]note:[/] {far}"
    if not RATES[0] * EDGE < fit.rate < RATES[1] / EDGE:
        text += (f"\n[yellow]note:[/] --clock: that pace is the {'slowest' if fit.rate <= RATES[0] * EDGE else 'fastest'}"
                 f" it tries ({RATES[0]:g}-{RATES[1]:g} reference time points per frame), a limit, not a pace measured: "
                 "the frames do not follow the reference curve as one embryo's timelapse does, and the clock's counts "
                 "are not reliable (run without --clock)")
    return text


#: a clock pace within this factor of an end of the range searched lies at that end (:func:`_clock_note`)
EDGE = 1.02
#: readings that fall by this share or more and stay there (the median of every frame after) are a fall no count of
#: cells makes (:func:`_sustained_fall`): per-frame readings scatter 7-15 % about a movie's curve
FALL = 0.4
#: ... judged against the median of this many frames before it, and with at least as many frames after it
FALL_FRAMES = 3


def _sustained_fall(names: list, totals: np.ndarray, use: np.ndarray) -> Optional[tuple]:
    """The first fall of the per-frame ``totals`` (the frames ``use`` marks, with a reading) that the rest of the movie
    keeps: ``(frame name, cells before, cells after)`` for the first frame that reads, as the median of every reading
    from it on does, :data:`FALL` or more below the median of the :data:`FALL_FRAMES` before it; None where there is
    none (a few dark or flickering frames in the middle recover, and do not count)."""
    totals = np.asarray(totals, np.float64)
    idx = np.flatnonzero(np.asarray(use, bool) & np.isfinite(totals) & (totals > 0))
    v, m = totals[idx], FALL_FRAMES
    for k in range(m, len(v) - m + 1):
        before = float(np.median(v[k - m:k]))
        if v[k] <= (1 - FALL) * before and (after := float(np.median(v[k:]))) <= (1 - FALL) * before:
            return names[idx[k]], before, after
    return None


def _fall_note(fall: tuple, option: str) -> str:
    """The note on a sustained fall of the per-frame readings (:func:`_sustained_fall`) under ``option``'s fit."""
    name, before, after = fall
    return (f"{option}: the per-frame readings fall from about {before:.0f} to about {after:.0f} cells at frame "
            f"{name} and stay there (a cut in the movie, another embryo, an embryo leaving the view, or a table "
            f"rendered past its annotation cliff?): a cell count does not fall, so {option}'s fit cannot follow it and "
            f"its counts are not reliable; run without {option} for each frame's own reading")


def _monotone_far_note(residual: Optional[float]) -> Optional[str]:
    """The note on a ``--monotone`` fit far from the per-frame estimates (``residual``: :func:`_fit_residual` of the
    frames with a reading, the implausible ones too, as --clock measures its fit): a movie whose counts fall (frames
    in reverse order) fitted as one flat line, every row the same; None when it is not far."""
    far = None if residual is None else _far_from_fit(residual, "--monotone", "The monotone counts",
                                                        "an embryo leaving the view")
    return None if far is None else f"--monotone: {_off_fit(residual)}; {far}"


def curation_path(out: Path) -> Path:
    """Where ``devolens population --skip-flagged auto`` writes its curation report: beside ``out``."""
    return out.with_name(f"{out.stem}.curation.csv")


def _giant_name(source, fid) -> str:
    """How the giants note (:func:`_giants_note`) names frame ``fid`` of ``source``: a folder's or one image's by its
    file's stem, as counts.csv does; a stack's or video's by its file name (the frame numbered where it holds several:
    ``frame 3 of movie.tif``), where counts.csv's bare number would say nothing (``0: 3000x3000 pixels``)."""
    if source.names is not None:
        return str(fid)
    return source.path.name if source.total == 1 else f"frame {fid} of {source.path.name}"


def _giants_note(giants: list[tuple], what: str) -> str:
    """What happened to images segmented block by block (too large for one piece), and to label files
    that hold more objects than uint16 can number."""
    fid, (h, w), blocks, _ = giants[0]
    more = f" (and {len(giants) - 1} more)" if len(giants) > 1 else ""
    plural = "s" if blocks != 1 else ""
    note = (f"note: {fid}{more}: {h}x{w} pixels, segmented in {blocks} overlapping block{plural} (bounded memory; "
            f"{what} numbered block by block)")
    wide = [g[0] for g in giants if g[3]]
    if wide:
        note += f"; {wide[0]}{' and others' if len(wide) > 1 else ''}: {uint32_words(what)}"
    return note


def uint32_words(what: str, tiff: str = "the label TIFF") -> str:
    """Why a label TIFF is uint32, as the notes say it: ``over 65535 nuclei, so the label TIFF is uint32 (uint16
    numbers 65535 at most)`` (:func:`_giants_note`; ``segment livedead``'s instances.tif: ``tiff``)."""
    return f"over 65535 {what}, so {tiff} is uint32 (uint16 numbers 65535 at most)"


#: the objects of the segment commands, one of them
_SINGULAR = {"nuclei": "nucleus", "cells": "cell"}


def _names(ids: list) -> str:
    """Up to 8 frame names or numbers, then how many more."""
    return ", ".join(str(i) for i in ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")


def _filled_words(names: list, ends: dict) -> str:
    """What the rows of the frames ``names`` that ``--monotone`` left out of its fit hold: the fitted curve between
    the frames around them, or, for those before its first frame fitted (after its last: ``ends``, run_population's
    ``monotone_ends``), its first (last) fitted value."""
    groups = [([n for n in names if n not in ends["before"] and n not in ends["after"]],
               "the fitted curve between the frames around {}"),
              ([n for n in names if n in ends["before"]], "the first fitted value ({} before every frame fitted)"),
              ([n for n in names if n in ends["after"]], "the last fitted value ({} after every frame fitted)")]
    groups = [(group, words) for group, words in groups if group]
    parts = []
    for group, words in groups:
        one = len(group) == 1
        rows = ("its row holds" if one else "their rows hold") if len(groups) == 1 else (
            f"{group[0]}'s row holds" if one else f"the rows of {_names(group)} hold")
        fill = ("it" if one else "them") if "around" in words else ("it comes" if one else "they come")
        parts.append(f"{rows} {words.format(fill)}")
    return ", and ".join(parts)


def _monotone_note(dim: list, odd: list, ends: Optional[dict] = None) -> Optional[str]:
    """The note on the frames ``--monotone`` left out of its fit (``dim``: black or dark, ``odd``: implausible
    readings; ``ends``: :func:`_filled_words`'), None when none was."""
    parts = []
    if dim:
        parts.append(f"{_count(len(dim), 'frame')} black or dark ({_names(dim)})")
    if odd:
        parts.append(f"{_count(len(odd), 'implausible reading')}, far from the frames around "
                     f"{'it' if len(odd) == 1 else 'them'} ({_names(odd)})")
    if not parts:
        return None
    return (f"--monotone left {' and '.join(parts)} out of the fit; "
            + _filled_words([*dim, *odd], ends or {"before": [], "after": []}))


def _frame_sizes_note(sizes: list, frames: int, diameter) -> Optional[str]:
    """A note on a folder's frames of another size than its first (``sizes``: the first's (height, width), then
    ``(name, (height, width))`` of each other, as population reads them; ``frames``: how many were read): frames
    cropped, or of another movie, whose counts do not compare (segment's :func:`_sizes_note`, of its magnification
    estimated once, where ``diameter`` is auto); None when every frame has the first's size."""
    if len(sizes) < 2:
        return None
    (h, w), others = sizes[0], sizes[1:]
    kinds = sorted({size for _, size in others}, key=lambda s: s[0] * s[1])
    one = len(others) == 1
    text = (f"{len(others)} of {frames} frames ({_names([name for name, _ in others])}) "
            f"{'is' if one else 'are'} of another size than the first ({w}x{h} pixels): "
            + ", ".join(f"{kw}x{kh}" for kh, kw in kinds) + " pixels; frames cropped, or of another movie? A "
            "timelapse's counts compare only where its frames show the same field (a crop leaves nuclei out)")
    if diameter == "auto":
        text += ", and the magnification was estimated once, for all of them"
    return text


def _skipped_note(skipped: int, report: Optional[Path]) -> str:
    """The summary's words on skipped frames (and the report made by ``--skip-flagged auto``)."""
    text = f", {_count(skipped, 'flagged frame')} skipped" if skipped else ""
    return text + (f" (curation report: {report})" if report is not None else "")


def _magnification_note(estimate, trained: Optional[tuple[float, float]], images: str, found: str,
                        bands: Optional[tuple] = None) -> str:
    """The note printed when ``--diameter none`` used the input as it is and the size model reads it far outside the
    magnifications the network was trained on (``estimate``: :meth:`~devolens.predict.segment._SegmentationPredictor.
    magnification_check`'s; ``trained``: the network's training zooms, the predictor's ``trained_zooms``): there the
    network splits large nuclei, or merges small ones, into objects of the size it knows, which the size check
    (:func:`_size_note`) cannot tell; or under its ``low_magnification``, where it loses nuclei (``bands``: its
    ``far_magnifications`` and ``auto_keep``). :func:`devolens.predict.notes.magnification_message`'s words (the
    library's DiameterWarning says the same in its own).
    ``images``: what the input holds (``images``, ``frames``); ``found``: what is not to be trusted."""
    from devolens.predict.notes import magnification_message

    far, keep = bands or (None, None)
    return "[yellow]note:[/] " + magnification_message(estimate, trained, "nuclei", far=far, keep=keep, library=False,
                                                       images=images, found=found)


def _size_note(what: str, suggested: float, rng: tuple[float, float] | None, resized: bool, **how) -> str:
    """The note printed when the objects found are far from the sizes the model knows:
    :func:`devolens.predict.notes.size_note`'s words (the library's DiameterWarning says the same in its own), ``how``
    its keyword arguments."""
    return f"[yellow]note:[/] {size_note(what, suggested, rng, resized, **how)}"


def _no_signal_words(frames: int, black: int) -> str:
    """What the frames of no signal are, for the note naming them: ``frames`` of them, ``black`` of those black
    frames that are not one grey level throughout (:func:`devolens.predict.population.lacks_signal`)."""
    if not black:
        return "one grey level throughout"
    them = "it" if frames == 1 else "them"
    black_words = (f"black, nothing in {them} a grey level or two above the background: a video's black frame keeps "
                   "a few such pixels from compression")
    return black_words if black == frames else f"one grey level throughout, or {black_words}"


def _population_notes(input_path: Path, stack_z: str, pages: str, monotone: bool, attrs: dict,
                      rows: int) -> list[tuple[str, dict]]:
    """What ``population`` prints after its summary line (and the stack's line), in order: ``(text,
    console.print keyword arguments)``, from :func:`run_population`'s ``attrs`` (``rows``: the CSV's). Its record
    keeps their words (:func:`_plain_note`), but the tip's."""
    from rich.markup import escape

    from devolens.cli._common import stack_notes
    from devolens.predict.clock import MIN_FRAMES as CLOCK_MIN_FRAMES

    plain = {"highlight": False, "soft_wrap": True}
    notes: list[tuple[str, dict]] = []

    def note(text: str) -> None:  # as _common.note prints it
        notes.append((f"[yellow]note:[/] {escape(text)}", {"soft_wrap": True}))

    if attrs.get("grey_for_colour"):
        note(attrs["grey_for_colour"])
    if attrs.get("squashed"):
        n, (h, w), (th, tw) = attrs["squashed"]
        note(f"{_count(n, 'frame')} (the first {h}x{w} px, height x width) {'was' if n == 1 else 'were'} squashed to "
             f"the count run's input of {th}x{tw} px, far from {'its' if n == 1 else 'their'} shape: the run's "
             "training frames were resized alike, so frames of another shape (turned a quarter, cropped) read "
             "unlike them; give frames framed as those were")
    from devolens.predict.population import COLUMNS  # (the seven letters and total)

    if set(COLUMNS) <= set(attrs.get("regressed") or ()):
        note("the total is the model's own total output (what `devolens evaluate` scores as mae_total): the seven "
             "letters need not add up to it")
    if attrs.get("not_regressed"):  # a count model of the user's that regresses some columns only
        empty = attrs["not_regressed"]
        note(f"the model regresses {', '.join(attrs['regressed'])} only: the column{'s' if len(empty) > 1 else ''} "
             f"{', '.join(empty)} {'are' if len(empty) > 1 else 'is'} left empty")
    ends = attrs.get("monotone_ends") or {"before": [], "after": []}
    if attrs.get("monotone_left_out"):
        dim, odd = attrs["monotone_left_out"]
        # (the frames of no signal among the dark ones: the note on them below says it, once)
        text = _monotone_note([f for f in dim if f not in set(attrs.get("flat") or ())], odd, ends)
        if text:
            note(text)
    text = _monotone_far_note(attrs.get("monotone_residual"))
    if text:
        note(text)
    if attrs.get("fall"):
        note(_fall_note(attrs["fall"], "--clock" if attrs.get("clock") is not None else "--monotone"))
    if attrs.get("flat"):
        flat, empty = attrs["flat"], attrs.get("flat_empty") or []
        one = len(flat) == 1
        rows_of = "its row" if one else "their rows"
        if attrs.get("clock") is not None:
            how = (f"read as a black frame; --clock left {'it' if one else 'them'} out of its fit and read {rows_of} "
                   "off its curve")
        elif monotone and not empty:
            how = (f"read as a black frame; --monotone left {'it' if one else 'them'} out of its fit: "
                   f"{_filled_words(flat, ends)}")
        else:
            how = f"{rows_of} {'is' if one else 'are'} left empty (no counts: NaN in the CSV)"
        note(f"{_count(len(flat), 'frame')} ({_names(flat)}) {'holds' if one else 'hold'} no signal "
             f"({_no_signal_words(len(flat), len(attrs.get('flat_black') or ()))}): {how}; `devolens curate frames` "
             "flags such frames and --skip-flagged leaves them out")
    if attrs.get("colour_read_line"):  # (segment's colour line)
        notes.append((escape(attrs["colour_read_line"]), plain))
    if attrs.get("inverted_note"):  # (segment nuclei's blobs-or-lines note)
        notes.append((f"note: {attrs['inverted_note']}", {}))
    if attrs.get("specks"):
        notes.append((_specks_note(attrs["specks"]), plain))
    if attrs.get("saturation_note"):
        notes.append((f"[yellow]note:[/] {attrs['saturation_note']}", plain))
    text = _estimate_note(attrs.get("estimate"), "nuclei", attrs.get("saturated"))
    if text:
        notes.append((text, {}))
    text = _brightness_note(attrs.get("brightness"))
    if text:
        note(text)
    # a µm diameter's pixel size (segment's)
    notes += [(text, plain) for text in (attrs.get("diameter_um") or {}).get("notes") or ()]
    notes += [(text, plain) for text in stack_notes(input_path, pages, stack_z, slices_advice=False,
                                                    timelapses=attrs.get("timelapses"))]  # (population only projects)
    if attrs.get("sizes_note"):
        note(attrs["sizes_note"])
    if attrs.get("missing"):
        notes.append((f"note: {attrs['missing']}", plain))
    if attrs.get("ended_early"):
        notes.append((f"note: {attrs['ended_early']}", {}))
    if attrs.get("exif_turned"):
        notes.append((f"note: {escape(_exif_words(attrs['exif_turned']))}", plain))
    if attrs.get("clock") is not None:
        notes += [(line, {}) for line in _clock_note(attrs["clock"], attrs.get("clock_seconds")).split("\n")]
        if attrs.get("clock_early"):
            note(_early_note(attrs["clock_early"]))
        if attrs.get("clock_gaps"):
            notes.append(("note: --clock placed the frames at the numbers in their file names, so the gaps between "
                          "them count as time passed", plain))
        text = _interval_note(attrs["clock"], attrs.get("clock_seconds"), attrs.get("recorded_interval"))
        if text:
            note(text)
        if attrs.get("clock_timed"):
            what = ("the animation's frames come at varying intervals (their delays differ)" if attrs["clock_timed"]
                    == "animation" else "the video's frames come at varying intervals (a variable frame rate)")
            note(f"{what}: --clock placed them at their times, so the longer and shorter intervals count as time "
                 "passed (its pace is per frame of their mean interval)")
        elif attrs.get("steady") is False:
            note("the video's frames come at varying intervals (a variable frame rate): --clock takes them as evenly "
                 "spaced, so its pace is per frame and the counts of frames after a longer or shorter interval are "
                 "off; export the timelapse at a constant frame rate for the clock")
    elif not monotone and attrs.get("clock_available") and rows >= CLOCK_MIN_FRAMES:
        notes.append(("tip: for a wild-type timelapse, --clock fits the frames to the developmental clock and reads "
                      f"each frame off it ({CLOCK_GAIN})", {}))
    if attrs.get("magnification_check") is not None:
        notes.append((_magnification_note(attrs["magnification_check"], attrs.get("trained_magnifications"),
                                          "frames", "the counts", attrs.get("magnification_bands")), {}))
    if attrs.get("diameter_check") is not None:  # (segment's words)
        check = attrs["diameter_check"]  # (population writes no overlay: segment's shows the outlines)
        words = _diameter_note(check, "nuclei", attrs.get("diameter_given"), look=(
            f"Segment a frame with `devolens segment nuclei --diameter {check.given:g}` and look at its overlay"))
        notes.append((f"[yellow]note:[/] {words}", plain))
    if attrs.get("suggest_diameter"):
        notes.append((_size_note("nuclei", attrs["suggest_diameter"], attrs["known_sizes"], attrs["resized"]), {}))
    if attrs.get("late_reading"):
        note(_held_out_note(attrs["late_reading"]))
    if attrs.get("beyond_calibration"):
        note(_calibration_note(attrs["beyond_calibration"]))
    if attrs.get("beyond_embryo"):
        from devolens.predict.population import MAX_EMBRYO_CELLS

        notes.append((f"[yellow]note:[/] {attrs['beyond_embryo']} frame(s) have a predicted total above "
                      f"{MAX_EMBRYO_CELLS} cells, more than a C. elegans embryo ever has: is each frame one embryo at "
                      "the magnification the model knows (see --diameter)? Their counts are not reliable.", {}))
    return notes


def population_command(
    input_path: Path = typer.Argument(..., metavar="INPUT", help=_INPUT_HELP),
    out: Path = typer.Option(..., "--out", "-o", help=(
        "Output CSV, columns frame, A, E, M, P, C, D, Z, total: expected cells per letter (fractional: the model "
        f"gives expected counts, not whole cells), one row per frame read (flagged frames have no row; a frame of no "
        f"signal, one grey level throughout or black, has empty counts but with --clock or --monotone); for a TIFF "
        f"stack whose metadata record its interval a last column time_s, seconds from the first time point (the plot "
        f"then in minutes). {LETTER_HELP} "
        "Beside it, NAME.json records how it was made (command line, devolens and torch versions, model and its "
        "weights' sha256 and that of all its files (card and weights), no_signal (the frames of no signal, whose "
        "counts are empty), precision, the device the network ran on, options, magnification estimate and the working "
        "scale it gave, the clock's fit "
        "and the frames it left out, frames --monotone left out, "
        "the plot and curation report written); both are replaced when they exist, and the plot and curation report "
        "of an earlier run into the same CSV that this run does not write are removed.")),
    monotone: bool = typer.Option(False, "--monotone", help=(
        "Smooth each letter over the frames by isotonic regression: populations never fall (P, which ends when "
        "P4 divides into Z2/Z3, is fitted non-increasing). Frames that would drag the fit are left out of it: "
        "those `devolens curate frames` would flag black or dark (judged, as the counts are, once isolated hot "
        "pixels are left out), frames of no signal (one grey level throughout, "
        "or black: nothing a grey level or two above the background), "
        "and implausible readings (a total below half "
        "the median of the 4 frames before it and below half that of the 4 after it, the last frames: of those "
        "before it; or above twice both; and at least 4 cells off: populations never halve). Their rows get the "
        "fitted curve between their neighbours, and a note names them. A run of frames read too low that the "
        "movie keeps still pulls the fit down (the fit averages them); --clock instead fits one curve to all "
        "the frames.")),
    clock: bool = typer.Option(False, "--clock", help=(
        "Timelapses: fit the frames' totals to the developmental clock, the total-cells curve of real wild-type "
        "embryos, shifted and stretched to the movie (2 numbers for the whole movie, so the frames pool their "
        f"evidence: {CLOCK_GAIN}; it cannot undo a bias "
        "of the per-frame estimates), and read each frame's counts off the fitted curve. "
        "Assumes frames in time order at a steady interval and wild-type development (not for mutants or "
        "arrested embryos); needs at least 6 frames. A folder's frames are placed at the numbers ending their "
        "file names when each has one and they rise (t045, t054, t070: a gap counts as time passed). "
        "Frames of no signal (one grey level throughout, or "
        "a black frame) are left out of the fit and read off its curve, with a note.")),
    plot: bool = typer.Option(True, "--plot/--no-plot", help=(
        "Also write a plot of the curves beside the CSV (same name, .png, or the --plot-format; NAME_plot.png "
        "where that would overwrite the input or a frame of the input folder).")),
    plot_format: str = typer.Option("png", "--plot-format", metavar="png|svg|pdf", callback=choice(*PLOT_FORMATS),
                                    help=("The plot's format: png (the default), or svg or pdf, vector images for "
                                          "a paper's figures (NAME.svg, NAME.pdf; the same run gives the same bytes).")),
    skip_flagged: Optional[Path] = typer.Option(None, "--skip-flagged", help=_SKIP_HELP),
    model: str = typer.Option("population", "--model", help=(
        "Zoo model to use (see `devolens models`), a folder holding a population model's card.json and weights "
        "(a copy of a zoo folder, a `models export` of a count run), or a count run of `devolens train` (a recipe "
        "of task: population), which reads each frame as its training frames were: --diameter, --color and --clock "
        "do not apply to it, and the columns it does not regress are left empty.")),
    batch_size: int = typer.Option(8, "--batch-size", help="Frames per forward pass."),
    fast: bool = typer.Option(True, "--fast/--no-fast", help=FAST_HELP),
    precision: str = typer.Option("auto", "--precision", callback=PRECISION_CHOICE, help=PRECISION_HELP),
    backend: str = typer.Option("torch", "--backend", callback=BACKEND_CHOICE,
                                help=("torch (the default), onnx (onnxruntime on the CPU, pip install "
                                      "\"devolens\\[onnx]\": the nuclei in fp32 rather than the card's bf16, with a "
                                      "note, or with --precision int8 the nuclei model's shipped int8 network) or "
                                      "auto (onnx only where torch would run fp32: with --precision fp32).")),
    stack_z: str = typer.Option("project", "--stack-z", metavar="project", callback=STACK_Z_CHOICE,
                                help=_POPULATION_STACK_Z_HELP),
    channel: Optional[int] = typer.Option(None, "--channel", help=_CHANNEL_HELP),
    pages: str = typer.Option("time", "--pages", metavar="time|z", callback=PAGES_CHOICE, help=PAGES_HELP),
    color: Optional[str] = typer.Option(None, "--color", callback=COLOR_CHOICE, help=_COLOR_HELP),
    diameter: Optional[str] = typer.Option(None, "--diameter", metavar="PX|Xum|auto|none", help=(
        "Typical nucleus diameter in the input, pixels, for movies at another magnification than the training "
        "data: frames are resized so nuclei and embryo have the sizes the model was fitted on (nuclei about 35 px "
        "in 752x512 EPIC-like frames). Default 'auto': the magnification is estimated from the 5 of the first frames "
        "with the most nuclei (read ahead until 5 show 64; at least 8 to count) and only movies outside the "
        "magnifications the model was trained on are resized. 'none': no "
        "resizing. A note suggests a value when the nuclei found are far from the sizes the model knows. "
        "In micrometres ('7um', '7 µm'): converted to pixels with the input's pixel size (a TIFF's ImageJ or OME "
        "calibration; a folder's files must agree) or --pixel-size.")),
    pixel_size: Optional[float] = typer.Option(None, "--pixel-size", metavar="UM", help=(
        "Micrometres per pixel of the input, for a --diameter given in micrometres (over the file's own "
        "calibration; needed for PNG, JPEG and video, which record none).")),
    device: str = typer.Option("cpu", "--device", help=DEVICE_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
) -> None:
    """Count the cells of each population letter (A, E, M, P, C, D, Z) in every frame."""
    from devolens.cli._common import console, progress_bar, streaming_threads
    from devolens.cli._common import summary as say

    streaming_threads()
    from devolens.cli._common import option_given

    if not plot and option_given("--plot-format"):  # (an option that does nothing silently is a trap)
        print_note(f"--plot-format {plot_format} does nothing with --no-plot: no plot is written")
    with progress_bar("population") as cb:
        # (a TIFF stack: how it is read, said before the work, as segment says it: say)
        df = run_population(input_path, out, model=model, monotone=monotone, clock=clock, plot=plot,
                            plot_format=plot_format, skip_flagged=skip_flagged,
                            batch_size=batch_size, fast=fast, precision=precision, backend=backend, stack_z=stack_z,
                            channel=channel, pages=pages, diameter=diameter, pixel_size=pixel_size, color=color,
                            device=device, threads=threads, progress=cb, announce=say)
    microns = _diameter_words(df.attrs.get("diameter_um"))
    extras = [f"+ {plot_path(out, input_path, plot_format)}" if plot else "", microns]
    console.print(f"{_count(len(df), 'frame')}{_skipped_note(df.attrs['skipped'], df.attrs['curation'])} -> {out}"
                  + (f" ({'; '.join(e for e in extras if e)})" if any(extras) else ""))
    for text, how in df.attrs.get("notes") or ():
        console.print(text, **how)  # (also in NAME.json, but the tip)


# ---------------------------------------------------------------------------- registration
def _segment_group(app: typer.Typer) -> typer.Typer:
    """The ``segment`` group (created by the tiles area when present, else here)."""
    try:
        from devolens.cli import tiles

        if getattr(tiles, "segment_app", None) is not None:
            return tiles.segment_app
    except ImportError:
        pass
    for info in app.registered_groups:
        if info.name == "segment" and info.typer_instance is not None:
            return info.typer_instance
    seg = typer.Typer(help="Segment images with the zoo's models.", no_args_is_help=True)
    app.add_typer(seg, name="segment")
    return seg


def register(app: typer.Typer) -> None:
    """Add ``segment nuclei``, ``segment membrane`` and ``population`` to the root app."""
    seg = _segment_group(app)
    seg.command("nuclei")(segment_nuclei_command)
    seg.command("membrane")(segment_membrane_command)
    app.command("population")(population_command)
