"""Video frames in and out through imageio's ffmpeg plugin, one frame at a time.

>>> for frame in iter_video_frames("movie.mp4"):   # doctest: +SKIP
...     ...
>>> write_video(frames, "timelapse.mp4", fps=10)     # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import os
import re
import select
import struct
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from devolens.errors import DevolensError
from devolens.io.atomic import WRITE_ERRNOS, atomic_path

__all__ = ["iter_video_frames", "write_video", "video_info", "VideoInfo", "VideoFrames", "VideoDamage", "video_damage",
           "container_count", "ContainerCount", "check_fps", "video_size", "stream_format",
           "video_by_header", "renamed_video_words"]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _open_reason(exc: Exception) -> str:
    """Why ffmpeg could not open a file, in words (its own first line, 'Could not load meta information', says
    nothing): found in the ffmpeg log that imageio puts in the message."""
    text = str(exc)
    if "misdetection possible" in text:  # ffmpeg guessed a format from the name alone
        return "not a video file (ffmpeg does not recognise its content)"
    if "moov atom not found" in text:
        return ("the file is incomplete (ffmpeg: moov atom not found): a recording or a copy that was cut short "
                "before its end was written?")
    if "does not contain any stream" in text or ("Stream #" in text and "Video:" not in text):
        return "no video stream in this file (only audio or data?)"
    if "Invalid data found when processing input" in text:
        return "not a video file, or a damaged one (ffmpeg: Invalid data found when processing input)"
    return _first_line(exc)


class _RotationSizeFilter:
    """Drops imageio-ffmpeg's warning that the frames' size differs from the stream's: ffmpeg turns the frames
    of a video with rotation metadata (a phone, a camera mounted the other way) as players show them, which is
    what is wanted, not a problem to print."""

    def filter(self, record) -> bool:
        return "is different from the source frame size" not in record.getMessage()


_SIZE_FILTER = _RotationSizeFilter()


def _quiet_size_warning() -> None:
    import logging

    log = logging.getLogger("imageio_ffmpeg")
    if _SIZE_FILTER not in log.filters:
        log.addFilter(_SIZE_FILTER)


@lru_cache(maxsize=1)
def _ffmpeg_version() -> tuple[int, int] | None:
    """(major, minor) of the ffmpeg that imageio runs; None when it cannot be told."""
    import re

    try:
        import os

        import imageio_ffmpeg

        # imageio-ffmpeg's own binary names its version (ffmpeg-linux-x86_64-v7.0.2): no 'ffmpeg -version' run
        exe = imageio_ffmpeg.get_ffmpeg_exe()
        found = re.search(r"-v(\d+)\.(\d+)", os.path.basename(exe)) if os.path.dirname(exe).endswith("binaries") \
            else None
        found = found or re.match(r"n?(\d+)\.(\d+)", imageio_ffmpeg.get_ffmpeg_version())
        return None if found is None else (int(found[1]), int(found[2]))
    except Exception:
        return None


def _passthrough() -> list[str]:
    """ffmpeg's option for 'every decoded frame once': ``-fps_mode passthrough`` (ffmpeg 5.1 and later, the only
    spelling from 8 on), ``-vsync passthrough`` for an older ffmpeg (a system one named by IMAGEIO_FFMPEG_EXE)."""
    version = _ffmpeg_version()
    old = version is not None and version < (5, 1)
    return ["-vsync", "passthrough"] if old else ["-fps_mode", "passthrough"]


def _timestamps_supported() -> bool:
    """Whether ffmpeg can write each frame's timestamp to a file as it goes (``-stats_enc_pre``, ffmpeg 6.1+)."""
    version = _ffmpeg_version()
    return version is not None and version >= (6, 1)


def _stamp_seconds(fields: list[str]) -> float | None:
    """``[pts, "num/den"]`` as seconds; None when either is missing or not a time (ffmpeg prints the int64 minimum
    for a frame without a stamp, 0/1 or 0/0 for no time base)."""
    try:
        pts = int(fields[0])
        num, den = (int(v) for v in fields[1].split("/"))
    except (ValueError, IndexError):
        return None
    if den <= 0 or num <= 0 or abs(pts) >= 2 ** 62:
        return None
    return pts * num / den


class _Timestamps:
    """Each decoded frame's timestamp, as ffmpeg writes them (``-stats_enc_pre``: a line per frame, written and
    flushed before the frame goes into the pipe), to find frames missing mid-file.

    On Linux ffmpeg writes them into a pipe of this process, which it opens by its ``/proc/PID/fd`` name: nothing is
    written to disk, and nothing is left behind however the run ends. Elsewhere into a temporary file, removed as
    soon as ffmpeg holds it open; with no writable temporary folder there are no timestamps (:meth:`make`).

    :meth:`lost_before` says how many frames are missing before a frame, given its timestamp and the next
    frame's: only in a video whose frames have come at one constant step (at least :data:`STEADY` steps seen)
    does a step of ``m`` times that one mean ``m - 1`` missing frames, and only when the step after it is the
    usual one again (a timelapse whose interval changes for good, 1 s then 2 s, is a variable-rate video, not
    one with every other frame missing) and ``m - 1`` is at most the frames seen so far (or :data:`MAX_GAP`):
    a longer gap is a pause, not a damaged stretch. A variable-frame-rate video stops the reasoning at its first
    irregular step: its frames are numbered as they come, as without timestamps.
    """

    STEADY = 2
    MAX_GAP = 25
    #: :attr:`irregular`: steps at least this many ticks long are one step rounded to the time base when a tick
    #: apart (a tick is at most a tenth of them)
    MANY_TICKS = 10
    #: :attr:`irregular`: the longest tick (seconds) that common steps a tick apart are rounded to (1/25 s, 1/10 s)
    ROUND_TICK = 0.2
    #: seconds a frame's line may take to come after the frame (it is written before it)
    WAIT = 0.1

    def __init__(self, file: str, pipe: tuple[int, int] | None = None):
        self._path = file
        self._pipe = pipe  # (read end, write end) of the pipe ffmpeg writes to; None: the file
        self._fh = None
        self._lines: list[bytes] = []  # whole lines read from the pipe and not yet taken
        self._part = b""
        self._step: int | None = None
        self._steady = 0
        self._seen = 0
        self.off = False  # no more reasoning about lost frames (irregular steps, or no stamps)
        #: the presentation time (seconds, as the file stamps it) of the frame whose stamp :meth:`next_pts` read last;
        #: None when not given
        self.seconds: float | None = None
        self.broken = False  # no stamps to read (none written, or out of step with the frames)
        #: every step between frames' stamps (its length -> times seen): :attr:`irregular`
        self._steps: dict[int, int] = {}
        #: seconds of a tick of the encoder's time base, which the steps are counted in (None: not known)
        self._tick: float | None = None

    @classmethod
    def make(cls) -> "_Timestamps | None":
        """Where ffmpeg is to write the stamps: a pipe (Linux), else a temporary file (:meth:`in_file`); None where
        neither can be had (no writable temporary folder: the frames are then numbered as they come)."""
        import os
        import sys

        if sys.platform.startswith("linux"):
            r, w = os.pipe()
            target = f"/proc/{os.getpid()}/fd/{w}"
            if os.path.exists(target):
                os.set_blocking(r, False)
                return cls(target, (r, w))
            os.close(r)
            os.close(w)
        return cls.in_file()

    @classmethod
    def in_file(cls) -> "_Timestamps | None":
        """Stamps written to a temporary file; None without a writable temporary folder."""
        import os
        import tempfile

        try:
            fd, name = tempfile.mkstemp(prefix="devolens-pts-", suffix=".txt")
        except OSError:
            return None
        os.close(fd)
        return cls(name)

    def options(self) -> list[str]:
        # the frame's stamp in the encoder's time base (ticks of the nominal frame rate: what the reasoning counts
        # in), the decoded frame's own stamp and time base (its time, which that rounds to a tick), and the
        # encoder's time base (how long a tick is: irregular)
        return ["-stats_enc_pre", self._path, "-stats_enc_pre_fmt", "{pts} {ptsi} {tbi} {tb}"]

    def next_pts(self) -> int | None:
        """The timestamp of the frame just read from the pipe (its line is written before the frame); None, and
        the reasoning off, when there is none. :attr:`seconds`: its time."""
        self.seconds = None
        if self._pipe is not None:
            line = self._pipe_line()
        else:
            if self.broken:  # (after irregular steps stamps are still read: they count for irregular)
                return None
            line = self._file_line()
        if line is None:
            return None
        try:
            if not line.endswith("\n"):
                raise ValueError(line)
            fields = line.split()
            pts = int(fields[0])
        except (ValueError, IndexError):  # no whole line: timestamps out of step, so none is trusted from here on
            self.off = self.broken = True
            return None
        self.seconds = _stamp_seconds(fields[1:3])
        if self._tick is None and len(fields) > 3:
            self._tick = _stamp_seconds(["1", fields[3]])
        return pts

    def _pipe_line(self) -> str | None:
        self._pull()
        if self.broken:  # the pipe is still drained: ffmpeg must never wait on it
            self._lines.clear()
            return None
        deadline = time.monotonic() + self.WAIT
        while not self._lines:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            select.select([self._pipe[0]], [], [], left)
            self._pull()
        if not self._lines:
            self.off = self.broken = True
            return None
        return self._lines.pop(0).decode("ascii", "replace") + "\n"

    def _pull(self) -> None:
        """Take what the pipe holds (never waits)."""
        while True:
            try:
                data = os.read(self._pipe[0], 65536)
            except OSError:  # (BlockingIOError: nothing there now)
                return
            if not data:
                return
            *lines, self._part = (self._part + data).split(b"\n")
            self._lines.extend(lines)

    def _file_line(self) -> str | None:
        if self._fh is None:
            try:
                self._fh = open(self._path, encoding="ascii", errors="replace")
            except OSError:
                self.off = self.broken = True
                return None
            self._remove()  # ffmpeg has it open (a frame came): nothing is left behind even if the process is killed
        line = self._fh.readline()
        for _ in range(50):  # the line is there before the frame; allow for a slow disk
            if line.endswith("\n"):
                break
            time.sleep(0.002)
            line += self._fh.readline()
        return line

    def lost_before(self, prev: int | None, pts: int | None, after: int | None) -> int:
        """Frames missing between the frames stamped ``prev`` and ``pts`` (None: unknown), ``after`` the next
        frame's stamp (None: ``pts`` is the last frame, and no gap before it is trusted)."""
        if prev is not None and pts is not None:
            self._steps[pts - prev] = self._steps.get(pts - prev, 0) + 1
        if self.off or prev is None or pts is None:
            return 0
        self._seen += 1
        step = pts - prev
        if self._step is None:
            if step > 0:
                self._step, self._steady = step, 1
                return 0
        elif step == self._step:
            self._steady += 1
            return 0
        elif (self._steady >= self.STEADY and step > self._step and step % self._step == 0
              and after is not None and after - pts == self._step
              and step // self._step - 1 <= max(self.MAX_GAP, self._seen)):
            return step // self._step - 1
        self.off = True  # irregular steps: a variable frame rate (or a pause)
        return 0

    @property
    def irregular(self) -> bool:
        """Whether the frames came at steps of several lengths that are not whole multiples of the most common
        one: a variable frame rate (0.1 s, then 0.35 s). Frames dropped from a constant rate (steps of 2 or 3
        times the usual one) are not irregular, wherever they fall (:func:`video_steady`), while that usual step
        is most of the steps: a timelapse of 1 s, 2 s and 3 s steps in turn is irregular. Two common steps a
        tick apart are one rounded only where a tick is a video time base's (at most :data:`ROUND_TICK` seconds:
        10 fps in 1/25 s); in ticks of 1 s (a timelapse's guessed nominal rate) 2 s and 3 s in turn are two."""
        steps = {k: n for k, n in self._steps.items() if k > 0}
        if len(self._steps) != len(steps):
            return True  # a stamp going back: no steady rate
        if len(steps) < 2:
            return False
        common = max(sorted(steps), key=lambda k: steps[k])  # the most common step (the shortest on ties)
        if all(k % common == 0 for k in steps):  # frames missing from a constant rate, however many ticks apart
            return 2 * steps[common] <= sum(steps.values())  # ... unless the gaps are as common as the step
        # steps 2 % apart are one step rounded to the time base, and so are steps a tick apart when that tick is
        # small beside them (29.97 fps in milliseconds: 33 and 34) or when both are common (10 fps in 1/25 s: 2
        # and 3 in turn). Not a tick apart otherwise: where a tick is a frame's step, 4 and 5 ticks are gaps of 3
        # and 4 frames, not one of 4.5. Each group's mean length, weighed by how often it came
        least = max(2, steps[common] // 4)  # (a step seen once is no rounding pattern)
        rounds = self._tick is None or self._tick <= self.ROUND_TICK
        groups: list[list[int]] = []
        for k in sorted(steps):
            last = groups[-1][-1] if groups else None
            if last is not None and (k - last <= 0.02 * k or (k - last == 1 and (
                    last >= self.MANY_TICKS or (rounds and min(steps[k], steps[last]) >= least)))):
                groups[-1].append(k)
            else:
                groups.append([k])
        means = [(sum(k * steps[k] for k in g) / sum(steps[k] for k in g), sum(steps[k] for k in g)) for g in groups]
        usual, seen = max(means, key=lambda m: m[1])
        return (2 * seen <= sum(steps.values())
                or any(abs(m / usual - max(1, round(m / usual))) > 0.15 for m, _ in means))

    def close(self) -> None:
        import os

        if self._pipe is not None:
            for fd in self._pipe:
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._pipe = None
            return
        if self._fh is not None:
            self._fh.close()
        self._remove()

    def _remove(self) -> None:  # (the temporary file's method only)
        import os

        try:
            os.remove(self._path)
        except OSError:
            pass


# ----------------------------------------------------------------------------- what the container records


@dataclass(frozen=True)
class ContainerCount:
    """The frame count a video's container records (``frames``: exact, the AVI header's or the MP4/MOV sample
    table's; None when it records none, or the format is another) and whether the file ends before the container
    says it does (``truncated``: an interrupted copy or recording)."""

    frames: int | None = None
    truncated: bool = False
    #: ``frames`` is exact (an AVI's index, an MP4/MOV's sample table); False: an AVI header's count with no index
    #: to check it against (it counts "drop frame" chunks that give no frame): an estimate, with its slack
    exact: bool = True


def container_count(path: str | Path) -> ContainerCount:
    """What an AVI's or an MP4/MOV's own header says of its frames, read in Python (a few small reads: no ffmpeg
    run, no ffprobe): the count the container records (AVI: OpenDML ``dmlh``, else the video stream's ``strh``
    length, else ``avih``; MP4/MOV: the first video track's ``stsz`` sample count, unless an edit list shows only
    part of it) and whether a top-level chunk or box runs past the end of the file. Other containers (MKV, WebM,
    MPEG-PS/TS...) record no exact count: ``ContainerCount()``. Never raises."""
    path = Path(path)
    try:
        st = path.stat()
        return _container_count(str(path.resolve()), st.st_size, st.st_mtime_ns)
    except Exception:
        return ContainerCount()


@lru_cache(maxsize=16)
def _container_count(path: str, size: int, mtime_ns: int) -> ContainerCount:
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
                return _avi_count(fh, size)
            if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
                return _mp4_count(fh, size)
    except (OSError, struct.error, ValueError):
        pass
    return ContainerCount()


#: the brands of an ISO media file (``ftyp``) that are still images, not videos: HEIC/HEIF and AVIF photos
_IMAGE_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")


def video_by_header(path: str | Path) -> tuple[str, str] | None:
    """``(kind, suffix)`` of the video container the first bytes of ``path`` show (``("AVI", ".avi")``,
    ``("MP4", ".mp4")``, ``("QuickTime", ".mov")``, ``("Matroska", ".mkv")``, ``("WebM", ".webm")``, MPEG-PS/TS,
    FLV, WMV, Ogg), whatever its name; None for anything else (an image, an unreadable file). For the errors on
    a video named as an image (an AVI saved as ``.png``) or without a suffix: it says what to rename it to."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI", ".avi"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return None
        if brand == b"qt  ":
            return "QuickTime", ".mov"
        if brand.startswith(b"3g"):
            return "3GP", ".3gp"
        return ("M4V", ".m4v") if brand == b"M4V " else ("MP4", ".mp4")
    if head[4:8] in (b"moov", b"mdat", b"wide") and len(head) >= 8:
        return "QuickTime", ".mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return ("WebM", ".webm") if b"webm" in head[:64] else ("Matroska", ".mkv")
    if head[:4] == b"\x00\x00\x01\xba":
        return "MPEG", ".mpg"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "MPEG-TS", ".ts"
    if head[:3] == b"FLV":
        return "FLV", ".flv"
    if head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return "WMV", ".wmv"
    if head[:4] == b"OggS" and b"theora" in head[:64]:
        return "Ogg", ".ogv"
    return None


def renamed_video_words(path: str | Path) -> str | None:
    """``it looks like an AVI video (by its header): rename it to .avi`` for a file whose first bytes are a video
    container's (:func:`video_by_header`) but whose name does not say so; None otherwise."""
    found = video_by_header(path)
    if found is None:
        return None
    kind, suffix = found
    article = "an" if kind in ("AVI", "MP4", "M4V", "MPEG", "MPEG-TS", "FLV", "Ogg") else "a"
    return f"it looks like {article} {kind} video (by its header): rename it to {suffix}"


def _avi_count(fh, size: int) -> ContainerCount:
    # top-level RIFF chunks (RIFF AVI, then RIFF AVIX for an OpenDML file over 1 GB): one past the end = cut short
    truncated = False
    pos = 0
    while pos + 8 <= size:
        fh.seek(pos)
        cid, length = struct.unpack("<4sI", fh.read(8))
        if cid != b"RIFF":
            break  # bytes after the RIFF chunks (a trailer): not a cut
        if pos + 8 + length > size:
            truncated = True
            break
        pos += 8 + length + (length & 1)
    fh.seek(12)
    frames = {}
    streams = [0, None, None]  # strl lists seen, the video stream's number, its OpenDML super index (indx) span

    def walk(start: int, end: int) -> None:
        at = start
        while at + 8 <= end:
            fh.seek(at)
            cid, length = struct.unpack("<4sI", fh.read(8))
            if cid == b"LIST":
                kind = fh.read(4)
                if kind == b"movi":
                    return  # the frames: the header is before them
                if kind in (b"hdrl", b"strl", b"odml"):
                    walk(at + 12, min(at + 8 + length, end))
                    if kind == b"strl":
                        streams[0] += 1
            elif cid == b"avih" and length >= 20:
                frames.setdefault("avih", struct.unpack("<5I", fh.read(20))[4])
            elif cid == b"strh" and length >= 36:
                data = fh.read(36)
                if data[:4] == b"vids" and "strh" not in frames:
                    frames["strh"] = struct.unpack("<I", data[32:36])[0]
                    streams[1] = streams[0]
            elif cid == b"indx" and streams[1] == streams[0] and streams[2] is None:
                streams[2] = (at + 8, length)
            elif cid == b"dmlh" and length >= 4:
                frames.setdefault("dmlh", struct.unpack("<I", fh.read(4))[0])
            at += 8 + length + (length & 1)

    walk(12, min(size, 12 + (1 << 20)))
    count = next((frames[k] for k in ("dmlh", "strh", "avih") if frames.get(k)), None)
    # the header's count includes zero-size "drop frame" chunks, which give no frame: the video chunks of the
    # index that hold data are what ffmpeg outputs. With no index the header's count is an estimate
    indexed = _avi_indexed(fh, size, streams[1] or 0, streams[2])
    if indexed is not None:
        return ContainerCount(indexed or None, truncated)
    return ContainerCount(count, truncated, exact=False)


def _avi_indexed(fh, size: int, stream: int, indx: tuple[int, int] | None) -> int | None:
    """The video chunks (stream ``stream``) with data that an AVI's index lists: its OpenDML index (``indx``
    and its ``ix##`` chunks) when it has one, else its ``idx1``; None when it has none that can be read whole."""
    if indx is not None:
        try:
            fh.seek(indx[0])
            head = fh.read(24)
            per, _sub, kind, n = struct.unpack("<HBBI", head[:8])
            if kind == 0 and per == 4 and 0 < n <= 100_000:  # AVI_INDEX_OF_INDEXES: (offset, size, duration)
                total = 0
                for offset, _length, _duration in struct.iter_unpack("<QII", fh.read(16 * n)):
                    if offset + 32 > size:
                        raise ValueError
                    fh.seek(offset + 8)
                    per2, _sub, kind2, m = struct.unpack("<HBBI", fh.read(8))
                    if kind2 != 1 or per2 != 2 or offset + 32 + 8 * m > size:
                        raise ValueError
                    fh.seek(offset + 32)
                    total += sum(1 for _o, s in struct.iter_unpack("<II", fh.read(8 * m)) if s & 0x7FFFFFFF)
                return total
        except (struct.error, ValueError, OSError):
            pass
    try:
        at = 12
        while at + 8 <= size:
            fh.seek(at)
            cid, length = struct.unpack("<4sI", fh.read(8))
            if cid == b"idx1":
                if at + 8 + length > size:
                    return None
                tags = (b"%02ddc" % stream, b"%02ddb" % stream)
                return sum(1 for e in struct.iter_unpack("<4sIII", fh.read(length - length % 16))
                           if e[0] in tags and e[3] > 0)
            at += 8 + length + (length & 1)
    except (struct.error, ValueError, OSError):
        pass
    return None


def _mp4_count(fh, size: int) -> ContainerCount:
    def boxes(start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
        """(type, data start, box end) of the boxes in [start, end)."""
        at = start
        while at + 8 <= end:
            fh.seek(at)
            length, kind = struct.unpack(">I4s", fh.read(8))
            head = 8
            if length == 1:
                length, head = struct.unpack(">Q", fh.read(8))[0], 16
            elif length == 0:
                length = end - at
            if length < head:
                return
            yield kind, at + head, at + length
            at += length

    truncated = False
    moov = None
    for kind, data, end in boxes(0, size):
        if end > size and kind in (b"mdat", b"moov"):
            truncated = True  # (other bytes after the last box: a trailer some cameras write, not a cut)
        if kind == b"moov":
            moov = (data, min(end, size))
    if moov is None:
        return ContainerCount(None, truncated)
    movie_scale = None
    for kind, data, end in boxes(*moov):
        if kind == b"mvhd":
            fh.seek(data)
            version = fh.read(1)[0]
            fh.seek(data + (20 if version == 1 else 12))
            movie_scale = struct.unpack(">I", fh.read(4))[0]
    for kind, data, end in boxes(*moov):
        if kind != b"trak":
            continue
        inside = {k: (d, e) for k, d, e in boxes(data, end)}
        if b"mdia" not in inside:
            continue
        mdia = {k: (d, e) for k, d, e in boxes(*inside[b"mdia"])}
        if b"hdlr" not in mdia or b"minf" not in mdia:
            continue
        fh.seek(mdia[b"hdlr"][0] + 8)
        if fh.read(4) != b"vide":
            continue
        minf = {k: (d, e) for k, d, e in boxes(*mdia[b"minf"])}
        stbl = {k: (d, e) for k, d, e in boxes(*minf[b"stbl"])} if b"stbl" in minf else {}
        count = None
        if b"stsz" in stbl:
            fh.seek(stbl[b"stsz"][0] + 8)
            count = struct.unpack(">I", fh.read(4))[0]
        elif b"stz2" in stbl:
            fh.seek(stbl[b"stz2"][0] + 8)
            count = struct.unpack(">I", fh.read(4))[0]
        if count and b"edts" in inside and not _whole_edit(fh, inside[b"edts"], mdia.get(b"mdhd"), movie_scale,
                                                           count, boxes):
            count = None  # an edit list that shows part of the track: fewer frames come out than it holds
        return ContainerCount(count or None, truncated)
    return ContainerCount(None, truncated)


def _whole_edit(fh, edts: tuple[int, int], mdhd: tuple[int, int] | None, movie_scale: int | None, count: int,
                boxes) -> bool:
    """Whether a track's edit list shows all of it: one edit (an empty one first, as some muxers write, aside)
    as long as the track, to within a frame."""
    for kind, data, end in boxes(*edts):
        if kind != b"elst":
            continue
        fh.seek(data)
        version = fh.read(4)[0]
        n = struct.unpack(">I", fh.read(4))[0]
        entries = []
        for _ in range(min(n, 8)):
            if version == 1:
                duration, media_time = struct.unpack(">Qq", fh.read(16))
            else:
                duration, media_time = struct.unpack(">Ii", fh.read(8))
            fh.read(4)  # rate
            entries.append((duration, media_time))
        entries = [e for e in entries if e[1] != -1]  # empty edits (a delay before the track starts)
        if len(entries) != 1:
            return False
        shown = entries[0][0]
        if shown == 0 or mdhd is None or not movie_scale:
            return shown == 0
        fh.seek(mdhd[0])
        version = fh.read(1)[0]
        fh.seek(mdhd[0] + (20 if version == 1 else 12))
        if version == 1:
            scale, length = struct.unpack(">IQ", fh.read(12))
        else:
            scale, length = struct.unpack(">II", fh.read(8))
        if not scale or not length:
            return False
        frame = length / scale / count  # seconds per frame
        return shown / movie_scale >= length / scale - 1.5 * frame
    return True


def _avi_lost(path: Path) -> tuple[int, ...] | None:
    """The frames of an AVI (numbered as in the file) that its index (``idx1``) lists but whose data no longer
    starts where the index says (overwritten): ffmpeg cannot read them and leaves them out. None when the file
    has no such index (or it cannot be read)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if fh.read(4) != b"RIFF":
                return None
            movi = idx = None
            fh.seek(12)
            at = 12
            while at + 8 <= size:
                fh.seek(at)
                cid, length = struct.unpack("<4sI", fh.read(8))
                if cid == b"LIST" and fh.read(4) == b"movi":
                    movi = at + 8
                elif cid == b"idx1":
                    idx = (at + 8, min(length, size - at - 8) // 16)
                    break
                at += 8 + length + (length & 1)
            if movi is None or idx is None:
                return None
            fh.seek(idx[0])
            table = fh.read(16 * min(idx[1], 4_000_000))
            entries = [e for e in struct.iter_unpack("<4sIII", table) if e[0][2:4] in (b"dc", b"db")]
            if not entries:
                return None

            def starts(entry, base: int) -> bool:
                fh.seek(base + entry[2])
                head = fh.read(8)
                return len(head) == 8 and head[:4] == entry[0] and struct.unpack("<I", head[4:])[0] == entry[3]

            # offsets count from the 'movi' tag (most writers) or from the file's start: the first entry that
            # is whole decides which
            base = movi
            for e in entries[:8]:
                if starts(e, movi):
                    break
                if starts(e, 0):
                    base = 0
                    break
            return tuple(i for i, e in enumerate(entries) if not starts(e, base))
    except (OSError, struct.error, ValueError):
        return None


# ----------------------------------------------------------------------------- ffmpeg's messages of damage

#: words of ffmpeg's messages about damaged data (decoders and demuxers): "error while decoding MB", "concealing
#: ... errors", "corrupt decoded frame", "Packet corrupt", "Invalid NAL unit size", "overread", "EOI missing",
#: "File ended prematurely", "no frame!"...
_DAMAGE_WORDS = re.compile(r"error|corrupt|conceal|invalid|overread|missing|truncat|damaged|illegal|out of range|"
                           r"no frame|prematurely|broken", re.IGNORECASE)
_TAGGED = re.compile(r"^\[([^\]@]+?) @ 0x[0-9a-fA-F]+\]\s*(?:\[([^\]@]+?) @ 0x[0-9a-fA-F]+\]\s*)?(.*)$")
#: components that speak of the output side (the pipe to devolens, the colour conversion), not of the file
_OUTPUT_SIDE = ("out#", "vost#", "enc:", "image2pipe", "rawvideo", "null", "swscaler", "graph", "parsed_",
                "auto_scale", "auto-inserted", "fc#")
_REPEATED = re.compile(r"^\s*Last message repeated (\d+) times?")


#: decoders and parsers of audio (and subtitle) streams: their damage is not the video's
_OTHER_STREAMS = re.compile(r"^(?:dec:)?(?:mp1|mp2|mp3|aac|ac3|eac3|opus|libopus|vorbis|libvorbis|flac|pcm|alac|"
                            r"adpcm|amr|wma|dca|dts|truehd|mlp|als|ape|speex|gsm|g7\d\d|qdm|atrac|cook|ra_|"
                            r"nellymoser|mace|aist#|sist#|dist#|subrip|ass|mov_text|dvd_sub|dvb_sub|webvtt)",
                            re.IGNORECASE)


def _damage_line(line: str) -> tuple[str, str] | None:
    """``(component, message)`` of a line of ffmpeg's log that speaks of damaged data in the file's video; None
    for any other (the header, progress, the output side's notes, an audio stream's decoder)."""
    found = _TAGGED.match(line)
    if found is None:
        return None
    component = (found[2] or found[1]).strip()
    message = found[3].strip()
    low = (found[1] + " " + (found[2] or "")).lower()
    if any(low.startswith(s) or (" " + s) in low for s in _OUTPUT_SIDE) or not _DAMAGE_WORDS.search(message):
        return None
    if any(_OTHER_STREAMS.match(c.strip()) for c in (found[1], found[2] or "")):
        return None
    return component, message


class _StderrLog:
    """ffmpeg's messages about damaged data while it decodes, fed the bytes of its stderr as they are read (by
    imageio-ffmpeg's own thread, which drains the pipe): counted, the first :data:`KEEP` kept; memory bounded
    (a line longer than :data:`MAX_LINE` is cut)."""

    KEEP = 3
    MAX_LINE = 2000

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[str] = []
        self.attached = False
        self.done = threading.Event()
        self._rest = b""
        self._last = False

    def feed(self, data: bytes) -> None:
        if b"\n" not in data and b"\r" not in data:
            self._rest = (self._rest + data)[: self.MAX_LINE]
            return
        lines = (self._rest + data).replace(b"\r", b"\n").split(b"\n")
        self._rest = lines.pop()[: self.MAX_LINE]
        for raw in lines:
            if raw:
                self._line(raw[: self.MAX_LINE].decode("utf-8", "replace"))

    def _line(self, line: str) -> None:
        again = _REPEATED.match(line)
        if again is not None:
            if self._last:
                self.count += int(again[1])
            return
        found = _damage_line(line)
        self._last = found is not None
        if found is not None:
            self.count += 1
            if len(self.examples) < self.KEEP and found[1] not in self.examples:
                self.examples.append(found[1])

    def end(self) -> None:
        if self._rest:
            self._line(self._rest.decode("utf-8", "replace"))
            self._rest = b""
        self.done.set()


class _Tee:
    """ffmpeg's stderr as imageio-ffmpeg's log thread reads it, each chunk also fed to a :class:`_StderrLog`. That
    thread stops reading when the frames end (before ffmpeg's last messages, sometimes): :meth:`close` reads what is
    left first (ffmpeg is ending; at most 1 MiB)."""

    def __init__(self, file, log: _StderrLog):
        self._file = file
        self._log = log
        log.attached = True

    def read(self, n: int = -1) -> bytes:
        data = self._file.read(n)
        self._take(data)
        return data

    def _take(self, data: bytes) -> None:
        try:
            if data:
                self._log.feed(data)
            else:
                self._log.end()
        except Exception:  # the log is a courtesy: never the reader's end
            self._log.done.set()

    def close(self) -> None:
        try:
            left = 1 << 20
            while not self._log.done.is_set() and left > 0:
                data = self._file.read(min(left, 65536))
                self._take(data)
                left -= len(data) or left
        except Exception:
            pass
        finally:
            self._log.done.set()
            self._file.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


#: the log the next imageio-ffmpeg reader started in this thread feeds (set by iter_video_frames around its start)
_TEE = threading.local()
_TEE_LOCK = threading.Lock()


def _install_tee() -> bool:
    """Make imageio-ffmpeg's stderr reader (``imageio_ffmpeg._io.LogCatcher``, a thread that drains ffmpeg's
    stderr and keeps its last lines) also feed the :class:`_StderrLog` that this thread has set, if any: readers
    started without one (any other use of imageio) are unchanged. False when imageio-ffmpeg is laid out otherwise
    (the messages are then not seen: no damage is reported, nothing else changes)."""
    try:
        from imageio_ffmpeg import _io

        base = _io.LogCatcher
    except Exception:
        return False
    if getattr(base, "_devolens_tee", False):
        return True
    with _TEE_LOCK:
        base = _io.LogCatcher
        if getattr(base, "_devolens_tee", False):
            return True
        if not isinstance(base, type) or not hasattr(base, "run"):
            return False

        class _LogCatcher(base):
            _devolens_tee = True

            def __init__(self, file, *args, **kwargs):
                log = getattr(_TEE, "log", None)
                if log is not None:
                    _TEE.log = None  # this reader's only
                    file = _Tee(file, log)
                super().__init__(file, *args, **kwargs)

        _io.LogCatcher = _LogCatcher
    return True


# ----------------------------------------------------------------------------- what a reading found


@dataclass
class VideoDamage:
    """What reading a video to its end found wrong with it: ffmpeg's messages of damaged data, and frames fewer
    than the container records.

    Read it as :attr:`VideoFrames.damage` (the object :func:`iter_video_frames` returns; also what
    :func:`devolens.io.frames.iter_path_frames` returns for a video) once the frames have been read, or as
    :func:`video_damage` ``(path)`` (the last complete reading of that file in this process; without one, it reads
    the file).

    Attributes
    ----------
    path : Path
    read : int
        Frames the reading gave (stand-ins for lost frames included, see ``mark_lost``).
    decoded : int
        Frames ffmpeg decoded.
    messages : int
        ffmpeg's messages about damaged data (0: none).
    examples : tuple of str
        The first few of them, as ffmpeg wrote them.
    declared : int or None
        The frame count the container records exactly (AVI header, MP4/MOV sample table); None when it records
        none (MKV, MPEG-TS...: then only an estimate from duration x rate is known).
    truncated : bool
        The file ends before its container says it does (cut short).
    """

    path: Path
    read: int
    decoded: int
    messages: int = 0
    examples: tuple[str, ...] = ()
    declared: int | None = None
    truncated: bool = False
    #: (decoded index, stand-ins yielded before it) where the reading put in stand-ins for lost frames
    shifts: tuple[tuple[int, int], ...] = ()
    _placed: object = field(default=None, repr=False, compare=False)
    _lost: object = field(default=None, repr=False, compare=False)

    @property
    def missing(self) -> int:
        """Frames the container records that the reading did not give (0 when it records no count)."""
        return max(0, self.declared - self.read) if self.declared else 0

    def lost_frames(self) -> tuple[int, ...] | None:
        """The frames missing, numbered as in the file, where the container's index places them (an AVI's
        ``idx1``: entries whose data was overwritten); None when they cannot be placed. The results number the
        frames after each one lower by one."""
        if self._lost is None:
            lost = None
            if self.missing and not self.truncated and self.path.suffix.lower() == ".avi":
                lost = _avi_lost(self.path)
                if lost is not None and len(lost) != self.missing:
                    lost = None  # the index does not account for what is missing: not trusted
            self._lost = (lost,)
        return self._lost[0]

    def corrupt_frames(self, timeout: float = 60.0) -> list[tuple[int, int]] | None:
        """The frames decoded from damaged data, as ``(first, last)`` ranges of positions in the reading (the
        numbers the results give them): each frame ffmpeg flags or complains about while decoding it, and the
        frames decoded from it up to the next key frame (a damaged frame spoils those that refer to it). Found
        by decoding the video once more, in one thread, with ffmpeg's per-frame log (``-debug_ts``), on the
        first call (~2.5 s for 1000 frames of 752x512 H.264; given up after ``timeout`` seconds); [] when ffmpeg
        ties none of its messages to a frame (messages of the container, not of a frame), None when that decoding
        does not match the reading or was given up (then the frames cannot be told)."""
        if self._placed is None:
            ranges = _place_damage(self.path, self.decoded, timeout) if self.messages else []
            if ranges:
                ranges = [(self._position(a), self._position(b)) for a, b in ranges]
            self._placed = (ranges,)
        return self._placed[0]

    def _position(self, decoded_index: int) -> int:
        extra = 0
        for at, n in self.shifts:
            if at <= decoded_index:
                extra = n
        return decoded_index + extra

    def note(self, estimate: int = 0, skipped: "Iterable[int]" = ()) -> str | None:
        """One sentence for the user: the file cut short, frames missing from its middle (how many, where if the
        index says, and that the later frames' numbers shift), and damaged frames (which, if they can be told).
        ``estimate``: a frame count estimated from duration x rate, used (with a few frames of slack) when the
        container records none. ``skipped``: positions left out of the results (``--skip-flagged``): damaged
        frames among them are said to be skipped, not in the results. None when nothing is wrong."""
        parts = []
        read = self.read
        quote = f" (ffmpeg: '{self.examples[0]}')" if self.examples else ""
        if self.truncated:
            of = f" of the {self.declared} frames its header records" if self.declared and read < self.declared \
                else " frames"
            return (f"the video ended after {read}{of}: the file is cut short (an interrupted copy or "
                    f"recording?){quote}; the frames read are in the results")
        if self.declared and read < self.declared:
            m = self.missing
            lost = self.lost_frames()
            s = "s" if m != 1 else ""
            if lost:
                from devolens.io.missing import _ranges

                parts.append(f"{m} of the {self.declared} frames its header records could not be read (frame{s} "
                             f"{_ranges(lost)} of the file, by its index: damaged data): in the results, every frame "
                             f"after {'them' if s else 'it'} is numbered lower than in the file, by the frames missing "
                             "before it")
            else:
                parts.append(f"only {read} of the {self.declared} frames its header records could be read: {m} "
                             f"frame{s} {'are' if s else 'is'} missing (damaged data or a file cut short; where in "
                             "the file cannot be told), so the results number the frames after the gap lower than "
                             "the file does")
        elif not self.declared and estimate and read < estimate - max(2, 0.02 * estimate):
            return (f"the video ended after {read} of the {estimate} frames its header declares: a truncated or "
                    f"damaged file?{quote} (the frames read are in the results)")
        if self.messages:
            ranges = self.corrupt_frames()
            what = f"ffmpeg reported damaged data while decoding the video ({self.messages} message" \
                   f"{'s' if self.messages != 1 else ''}, e.g. '{self.examples[0] if self.examples else '?'}')"
            if ranges:
                from devolens.io.missing import _ranges

                frames = sorted({f for a, b in ranges for f in range(a, b + 1)})
                left = set(skipped)
                out = [f for f in frames if f in left]
                frames = [f for f in frames if f not in left]
                several = len(frames) != 1
                gone = (f"frame{'s' if len(out) != 1 else ''} {_ranges(out)}, decoded from it, "
                        f"{'were' if len(out) != 1 else 'was'} skipped (--skip-flagged)") if out else ""
                if frames:
                    parts.append(f"{what}: frame{'s' if several else ''} {_ranges(frames)} of the results "
                                 f"{'are' if several else 'is'} decoded from it (each damaged frame and those decoded "
                                 "from it, up to the next key frame) and may be smeared or broken"
                                 + (f" ({gone})" if gone else ""))
                else:
                    parts.append(f"{what}: {gone}: no frame of the results is decoded from it")
            elif ranges is None or not parts:
                parts.append(f"{what}: which frames it spoils cannot be told (ffmpeg ties its messages to no "
                             "frame); look at the results for smeared or broken frames")
        return "; ".join(parts) if parts else None


def _place_damage(path: Path, decoded: int, timeout: float = 60.0) -> list[tuple[int, int]] | None:
    """Decode ``path`` again (one thread, nothing written) with ffmpeg's per-frame log, and find the frames its
    damage messages belong to: ``(first, last)`` ranges of decoded indices, each from a damaged frame to the
    frame before the next key frame. A decoder's message comes just before the frame it is decoding leaves the
    decoder (one thread: in order), ffmpeg's "corrupt decoded frame" just before that frame. None when this
    decoding gives another number of frames than ``decoded``, fails or takes over ``timeout`` seconds (a long
    4K video: one thread decodes ~20-30 of its frames a second)."""
    import subprocess

    try:
        import imageio_ffmpeg

        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "+repeat",
               "-debug_ts", "-threads", "1", "-i", str(path), "-map", "0:v:0", *_passthrough(), "-f", "null", "-"]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except Exception:
        return None
    # two readings of the log. ffmpeg's own lines from its decoding thread, in order: "corrupt decoded frame" just
    # before that frame, "Error submitting packet to decoder" (a packet that gave no frame: the frames decoded
    # from it are spoiled) just before the next one. And the codec's messages, each taken for the frame that
    # leaves the decoder next (exact for an intra-only codec such as MJPEG; a frame or two early for H.264), but
    # not those of the contexts that spoke while ffmpeg probed the file: the demuxer's parser, which reads ahead.
    flagged = _Spans()
    told = _Spans()
    index = 0
    decoding = False
    probing: set[str] = set()
    until = time.monotonic() + timeout
    try:
        for raw in proc.stderr:
            if time.monotonic() > until:
                raise TimeoutError
            line = raw.decode("utf-8", "replace")
            where = re.match(r"^\[[^\]]*? @ (0x[0-9a-fA-F]+)\]", line)
            if not decoding:  # ffmpeg probes the file first (it decodes its first frames, all of a short one)
                decoding = line.startswith("Stream mapping:")
                if where is not None:
                    probing.add(where[1])
                continue
            if "decoder ->" in line:
                key = re.search(r"keyframe:(\d)", line)
                key = None if key is None else key[1] == "1"
                flagged.frame(index, key)
                told.frame(index, key)
                index += 1
                continue
            if "corrupt decoded frame" in line or "Error submitting packet to decoder" in line:
                flagged.pending = True
                continue
            found = _damage_line(line)
            if (found is not None and where is not None and where[1] not in probing
                    and not found[0].startswith(("in#", "vist#", "dec:"))):
                told.pending = True
    except Exception:
        proc.kill()
        return None
    finally:
        proc.stderr.close()
        proc.wait()
    if index != decoded:
        return None
    return flagged.end(index) or told.end(index)


class _Spans:
    """Ranges of damaged frames, built as the decoder's frames come: a damaged frame opens one (or extends the
    open one), a clean key frame closes it (a clean frame, when the log does not say which are key frames)."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []
        self.start: int | None = None
        self.pending = False

    def frame(self, index: int, key: bool | None) -> None:
        if self.pending:
            self.start = index if self.start is None else self.start
        elif self.start is not None and key is not False:
            self.ranges.append((self.start, index - 1))
            self.start = None
        self.pending = False

    def end(self, count: int) -> list[tuple[int, int]]:
        if self.start is not None:
            self.ranges.append((self.start, count - 1))
            self.start = None
        return self.ranges


#: the last complete reading's findings per file (resolved path -> VideoDamage or None), for video_damage
_FOUND: "dict[str, VideoDamage | None]" = {}
_FOUND_LOCK = threading.Lock()


def video_damage(path: str | Path) -> VideoDamage | None:
    """What is wrong with the video ``path``: ffmpeg's messages of damaged data, frames fewer than the container
    records, a file cut short.

    The last complete reading of the file in this process (by :func:`iter_video_frames`, also under
    :func:`devolens.io.frames.iter_path_frames` and the commands) is recalled at no cost; without one (a new
    process, or the file changed since) the video is read here to its end, every frame decoded (as long as
    reading it for its frames takes; :attr:`VideoFrames.damage` of a reading of one's own costs nothing more).

    Parameters
    ----------
    path : str or Path
        Video file.

    Returns
    -------
    VideoDamage or None
        None when nothing was found wrong with it.

    Raises
    ------
    DevolensError
        Missing, unreadable or corrupt file (as :func:`iter_video_frames`).
    """
    found = _recall(_FOUND, path, default=_UNKNOWN)
    if found is not _UNKNOWN:
        return found
    frames = iter_video_frames(path)
    try:
        for _ in frames:
            pass
    finally:
        frames.close()
    return frames.damage


#: what :func:`_recall` gives for a file of which it holds no record
_UNKNOWN = object()


def recorded_damage(path: str | Path) -> VideoDamage | None:
    """What the last complete reading of ``path`` in this process found wrong with it (:func:`video_damage`
    without reading the file: None also where there is no such reading)."""
    return _recall(_FOUND, path)


def video_steady(path: str | Path) -> bool | None:
    """Whether the last complete reading of ``path`` in this process (with its frames' timestamps, as the commands
    read videos) found its frames at one steady interval: False for a variable frame rate (or a pause), None when
    unknown (not read to its end since it last changed, or read without timestamps)."""
    return _recall(_STEADY, path)


#: :func:`video_steady`'s record, by file (path, size, modification time)
_STEADY: dict[str, bool] = {}


def _found_key(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"


def _recall(table: dict, path: str | Path, default=None):
    """``table``'s record of the file ``path`` as it is now (``default``: none, or the file changed since)."""
    try:
        key = _found_key(Path(path))
    except OSError:
        return default
    with _FOUND_LOCK:
        return table.get(key, default)


def _record(table: dict, path: Path, value) -> None:
    """Record ``value`` for the file ``path`` as it is now in ``table`` (the last 32 files kept)."""
    try:
        key = _found_key(path)
    except OSError:
        return
    with _FOUND_LOCK:
        table.pop(key, None)
        table[key] = value
        while len(table) > 32:
            table.pop(next(iter(table)))


def _check(path: Path) -> None:
    if not path.exists():
        raise DevolensError("no such file", path=path)
    if not path.is_file():
        raise DevolensError("not a file", path=path)


def video_info(path: str | Path) -> dict:
    """Metadata of a video (``fps``, ``size`` as (W, H), ``nframes`` when known, ...): a :class:`VideoInfo`, a dict
    whose ``container`` attribute says what an AVI's or an MP4/MOV's own header records (the exact frame count,
    a file cut short: :func:`container_count`).

    Probed once per file version (path, size, modification time) and process: a command
    that asks twice (frame count, then frame rate) starts ffmpeg once.

    Raises
    ------
    DevolensError
        Missing or unreadable file.
    """
    path = Path(path)
    _check(path)
    st = path.stat()
    with _PROBING:  # (a second caller in another thread waits for the first's probe, then finds it cached)
        meta = _probe(str(path.resolve()), st.st_size, st.st_mtime_ns)
    return VideoInfo(meta, path=path, container=container_count(path))


#: one probe at a time: the commands ask for a video's metadata from a read-ahead thread while the decoding
#: thread asks for its pixel format (:func:`stream_format`); without it both started ffmpeg to probe the same file
_PROBING = threading.Lock()


class VideoInfo(dict):
    """A video's metadata as imageio's ffmpeg reader gives it (a dict: ``fps``, ``size``, ``duration``...) and, as
    attributes, the file (``path``) and what its container records (``container``: a :class:`ContainerCount`,
    the exact frame count of an AVI or an MP4/MOV and whether the file is cut short). A copy (``dict(info)``,
    ``{**info}``) keeps the metadata only."""

    def __init__(self, meta: dict, *, path: Path | None = None, container: "ContainerCount | None" = None):
        super().__init__(meta)
        self.path = path
        self.container = container if container is not None else ContainerCount()


#: the suffixes imageio's ffmpeg plugin takes by name; a video of another (.ts, .m2ts, .m4v, .flv...) is opened with
#: the plugin named and told its name is .mp4 (ffmpeg itself goes by the content, not the name)
_IMAGEIO_SUFFIXES = (".mov", ".avi", ".mpg", ".mpeg", ".mp4", ".mkv", ".webm", ".wmv", ".h264")


def _get_reader(path: str | Path, **kwargs):
    """imageio's ffmpeg reader of ``path``, whatever its suffix (imageio refuses a ``.ts`` or ``.m4v`` by name)."""
    import imageio.v2 as iio

    if Path(path).suffix.lower() in _IMAGEIO_SUFFIXES:
        reader = iio.get_reader(path, format="FFMPEG", **kwargs)
    else:
        from imageio.core.imopen import imopen

        reader = imopen(path, "r?", plugin="FFMPEG", extension=".mp4", legacy_mode=True).legacy_get_reader(**kwargs)
    # its ffmpeg (imageio-ffmpeg's read_frames holds it while it runs), whose pipes _close_reader closes
    frame = getattr(getattr(reader, "_read_gen", None), "gi_frame", None)
    reader._devolens_ffmpeg = frame.f_locals.get("process") if frame is not None else None
    return reader


def _close_reader(reader) -> None:
    """Close imageio's ffmpeg ``reader`` (:func:`_get_reader`) and its pipes to ffmpeg: imageio-ffmpeg closes them
    only while ffmpeg still runs, so those of an ffmpeg that had ended (a probe's one frame, a video read to its end)
    were left to the garbage collector (``ResourceWarning: unclosed file``, two per reader)."""
    process = getattr(reader, "_devolens_ffmpeg", None)
    try:
        reader.close()
    finally:
        for pipe in (getattr(process, "stdin", None), getattr(process, "stdout", None)):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass


@lru_cache(maxsize=16)
def _probe(path: str, size: int, mtime_ns: int) -> dict:
    _quiet_size_warning()
    try:
        # the header is all that is read: one decoder thread and one frame (by default ffmpeg starts a thread per
        # core and decodes ahead until the pipe is full: ~0.07 s of CPU more, at start-up where the CPU is short)
        reader = _get_reader(path, input_params=["-threads", "1"], output_params=["-frames:v", "1"])
        try:
            info = dict(reader.get_meta_data())
        finally:
            _close_reader(reader)
    except Exception as exc:
        raise DevolensError(f"cannot read video: {_open_reason(exc)}", path=Path(path)) from None
    return info


class VideoFrames:
    """The frames of a video, streamed (what :func:`iter_video_frames` returns): an iterator of RGB arrays (grey
    or uint16 ones for such streams, :func:`stream_format`; stand-ins for lost frames, with ``mark_lost``);
    :meth:`close` stops ffmpeg. Once read to its end, :attr:`damage` says what was found wrong with the file
    (None: nothing).

    >>> frames = iter_video_frames("movie.mp4")          # doctest: +SKIP
    >>> for frame in frames: ...                          # doctest: +SKIP
    >>> frames.damage                                     # doctest: +SKIP
    VideoDamage(path=..., read=154, decoded=154, messages=12, ...)
    """

    def __init__(self, gen: Iterator, state: dict):
        self._gen = gen
        self._state = state

    def __iter__(self) -> "VideoFrames":
        return self

    def __next__(self):
        try:
            return next(self._gen)
        except (StopIteration, DevolensError):
            raise
        except Exception as exc:
            msg = str(exc).strip().splitlines()
            raise DevolensError(f"cannot read video ({msg[0] if msg else type(exc).__name__})",
                                path=self._state["path"]) from None

    def close(self) -> None:
        """Stop reading (ffmpeg is stopped); harmless once everything was read."""
        self._gen.close()

    @property
    def complete(self) -> bool:
        """Whether the video was read to its end."""
        return bool(self._state.get("complete"))

    @property
    def times(self) -> "list[float | None] | None":
        """The time of each frame yielded so far (lost ones included): seconds since the first frame, from the
        timestamps the frames are numbered by (``mark_lost``, ffmpeg 6.1 or later: read at no extra cost); None
        for a frame without one (lost frames are spaced evenly between the frames around them), and in place
        of the list when the timestamps are not read."""
        raw = self._state.get("times")
        if raw is None:
            return None
        first = raw[0] if raw else None
        return [None if t is None or first is None else round(t - first, 9) for t in raw]

    @property
    def damage(self) -> "VideoDamage | None":
        """What the reading found wrong with the file (a :class:`VideoDamage`: ffmpeg's messages of damaged data,
        frames fewer than the container records, a file cut short); None when nothing was found, or the video
        has not been read to its end."""
        return self._state.get("damage")


def iter_video_frames(path: str | Path, *, every: int = 1, threads: int | None = None,
                      mark_lost: bool = False) -> VideoFrames:
    """Stream the frames of a video (mp4, avi, mkv, mpg, ts...) as uint8 RGB arrays (H, W, 3); a grey stream's
    (``gray``, ``gray16le``) as grey arrays (H, W), and one of more than 8 bits a sample (``gray16le``,
    ``yuv420p10le``, ``rgb48le``) as uint16 arrays, at its full depth, as a 16-bit TIFF's (:func:`stream_format`).

    Frames are decoded one by one; the whole video is never held in memory.

    Parameters
    ----------
    path : str or Path
        Video file.
    every : int
        Yield every ``every``-th frame (1 = all; frames counted as numbered in the video, lost ones included).
    threads : int, optional
        Decoder threads (ffmpeg ``-threads``); default: ffmpeg's choice (about one per core).
        Streaming commands that process frames on the other cores as they come pass 1: one
        thread decodes a 752x512 H.264 frame in ~5 ms and leaves the cores to the network.
    mark_lost : bool
        Yield a :class:`~devolens.io.missing.MissingFrame` (``reason="lost"``) for each frame missing in the
        middle of the file (not decodable in a damaged stretch, or dropped while recording; found from the
        timestamps of a constant-rate video, with ffmpeg 6.1 or later), so that the frames after it keep their
        numbers. Off: such frames are simply not there (as ffmpeg gives them).

    Returns
    -------
    VideoFrames
        An iterator of ndarray, uint8 (uint16: a deep stream), (H, W, 3) ((H, W): a grey stream) (lazy: nothing
        is opened before the first frame is asked for).
        With ``mark_lost``, its ``times`` attribute gives each frame's seconds since the first.
        Read to its end, its ``damage`` attribute (also :func:`video_damage` ``(path)``) is a
        :class:`VideoDamage` when ffmpeg reported damaged data (its stderr is read as it decodes) or the container
        records more frames than came (an AVI's header, an MP4's sample table), else None.

    Raises
    ------
    DevolensError
        Missing, unreadable or corrupt file (also raised mid-stream if decoding fails).
    """
    state: dict = {"path": Path(path)}
    return VideoFrames(_video_frames(Path(path), every, threads, mark_lost, state), state)


def _video_frames(path: Path, every: int, threads: int | None, mark_lost: bool, state: dict) -> Iterator:
    _check(path)
    if every < 1:
        raise DevolensError(f"every must be >= 1, got {every}")
    if threads is not None and int(threads) < 1:
        raise DevolensError(f"threads must be >= 1, got {threads}")
    params = {} if threads is None else {"input_params": ["-threads", str(int(threads))]}
    # every decoded frame once: ffmpeg's default for a raw pipe resamples to a constant rate, which repeats
    # frames of a variable-frame-rate file (a timelapse of irregular intervals: 10 frames came out as 104)
    params["output_params"] = _passthrough()
    grey, deep = stream_format(path)
    if deep:  # more than 8 bits a sample: 16-bit RGB from ffmpeg (rgb48le), as a 16-bit TIFF gives them
        params["dtype"] = "uint16"
    state["format"] = (grey, deep)
    stamps = _Timestamps.make() if mark_lost and _timestamps_supported() else None
    _quiet_size_warning()
    tee = _install_tee()
    log = None
    try:
        while True:
            # ffmpeg's stderr, read by imageio-ffmpeg's own thread as it decodes, is also searched for messages of
            # damage
            log = _StderrLog() if tee else None
            options = dict(params, output_params=params["output_params"] + (stamps.options() if stamps else []))
            try:
                _TEE.log = log
                try:
                    reader = _get_reader(path, **options)
                finally:
                    _TEE.log = None
            except Exception as exc:
                if stamps is not None and "stats file" in str(exc):  # where the stamps go cannot be opened
                    piped = stamps._pipe is not None
                    stamps.close()
                    # a pipe ffmpeg cannot open by its /proc name: a temporary file instead; else read without
                    # them (the frames numbered as they come)
                    stamps = _Timestamps.in_file() if piped else None
                    continue
                raise DevolensError(f"cannot read video: {_open_reason(exc)}", path=path) from None
            break
        if log is not None and not log.attached:
            log = None
        try:
            from devolens.io.missing import MissingFrame

            decoded_count = [0]

            def decoded() -> Iterator[np.ndarray]:
                k = 0
                while True:
                    try:
                        frame = reader.get_next_data()
                    except (IndexError, StopIteration):
                        return
                    except Exception as exc:
                        raise DevolensError(f"cannot decode frame {k}: {_first_line(exc)}", path=path) from None
                    k += 1
                    decoded_count[0] = k
                    # a grey stream's one channel (ffmpeg's RGB of it repeats it exactly): a grey frame, as a grey
                    # TIFF's
                    yield np.ascontiguousarray(frame[..., 0]) if grey else frame

            shifts: list[tuple[int, int]] = []

            def numbered() -> Iterator:
                """Every frame in the video's numbering, with its time (seconds as the file stamps it; None
                without stamps): a MissingFrame for each its timestamps skip (each frame waits for the next one's
                timestamp: a gap counts only if the usual step follows it), at the times between."""
                if stamps is None:
                    for frame in decoded():
                        yield frame, None
                    return
                prev = held = None
                prev_seconds = None
                inserted = 0
                index = 0
                for frame in itertools.chain(decoded(), [None]):
                    pts = None if frame is None else stamps.next_pts()
                    if held is not None:
                        gap = stamps.lost_before(prev, held[1], pts)
                        known = prev_seconds is not None and held[2] is not None
                        for k in range(gap):
                            yield (MissingFrame("lost", "missing from the video (its timestamps skip it)", path),
                                   prev_seconds + (k + 1) * (held[2] - prev_seconds) / (gap + 1) if known else None)
                        if gap:
                            inserted += gap
                            shifts.append((index, inserted))
                        yield held[0], held[2]
                        index += 1
                        prev, prev_seconds = held[1], held[2]
                    held = None if frame is None else (frame, pts, stamps.seconds)

            times: list[float | None] = []  # of the frames yielded
            state["times"] = times if stamps is not None else None
            i = -1
            for i, (item, seconds) in enumerate(numbered()):
                if i % every == 0:
                    times.append(seconds)
                    yield item if isinstance(item, MissingFrame) else np.asarray(item)
            if i < 0:
                raise DevolensError("video has no frames", path=path)
            state["complete"] = True
            if stamps is not None and stamps._steps and not stamps.broken:  # (stamps lost: not known)
                _record(_STEADY, Path(path), not stamps.irregular)
        finally:
            _close_reader(reader)
        if log is not None:
            log.done.wait(2.0)  # ffmpeg has ended: its last messages are read (milliseconds)
        recorded = container_count(path)
        # a cut only when fewer frames came than the container records (bytes after its end are not one); an
        # estimated count (an AVI header's, no index) is left to cut_short and its slack
        short = bool(recorded.frames) and i + 1 < recorded.frames
        truncated = recorded.truncated and (short or not recorded.frames)
        declared = recorded.frames if recorded.exact or truncated else None
        damage = None
        if (log is not None and log.count) or truncated or (short and recorded.exact):
            damage = VideoDamage(path, i + 1, decoded_count[0], log.count if log is not None else 0,
                                 tuple(log.examples) if log is not None else (), declared,
                                 truncated, tuple(shifts))
        state["damage"] = damage
        _record(_FOUND, path, damage)
    finally:
        if stamps is not None:
            stamps.close()


#: ffmpeg's pixel formats of 8-bit colour met most: read as 8-bit RGB without asking ffmpeg about them
_PLAIN_FORMATS = frozenset(("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv411p", "yuv410p",
                            "nv12", "nv21", "yuyv422", "uyvy422", "rgb24", "bgr24", "rgba", "bgra", "argb", "abgr",
                            "rgb0", "bgr0", "0rgb", "0bgr", "gbrp", "pal8"))


@lru_cache(maxsize=1)
def _pixel_formats() -> dict[str, tuple[int, int, bool]]:
    """ffmpeg's pixel formats, from its ``-pix_fmts`` list: name -> (components, deepest bits a component,
    paletted); the depth is 0 where the list gives none (ffmpeg before 6.1); {} where ffmpeg cannot be asked."""
    import subprocess

    try:
        import imageio_ffmpeg

        text = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-pix_fmts"], capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=30).stdout.decode("ascii", "replace")
    except Exception:
        return {}
    found = {}
    for line in text.splitlines():
        row = re.match(r"^([I.][O.][H.][P.][B.])\s+(\S+)\s+(\d+)\s+(\d+)(?:\s+([\d-]+))?\s*$", line)
        if row is not None:
            depth = max((int(d) for d in row[5].split("-") if d), default=0) if row[5] else 0
            found[row[2]] = (int(row[3]), depth, row[1][3] == "P")
    return found


def _format_depth(name: str) -> int:
    """Bits a component of the pixel format ``name`` by its name (``gray12le``, ``yuv420p10le``, ``rgb48le``:
    12, 10, 16); 8 for one that names none."""
    if name.startswith(("rgb48", "bgr48", "rgba64", "bgra64", "ayuv64")):
        return 16
    found = re.search(r"(?:gray|ya|p|xyz)(9|10|12|14|16|32)(?:f32)?(?:le|be)$", name) or re.search(r"f(16|32)", name)
    return int(found[1]) if found else 8


def stream_format(path: str | Path) -> tuple[bool, bool]:
    """``(grey, deep)`` of a video's stream, by the pixel format ffmpeg reports for it: grey (one component, or
    grey and alpha: ``gray``, ``gray16le``, ``ya8``), and more than 8 bits a component (``gray16le``,
    ``yuv420p10le``, ``rgb48le``). :func:`iter_video_frames` reads a grey stream as grey frames (H, W) and a deep
    one as uint16 frames (ffmpeg's 16-bit output, values as stored for a 16-bit grey stream): the depth is not cut
    to 8 bits. ``(False, False)`` (8-bit RGB) when it cannot be told."""
    try:
        fmt = str(video_info(path).get("pix_fmt") or "")
    except DevolensError:
        return False, False
    name = fmt.split("(")[0].strip().rstrip(",").lower()
    if not name or name in _PLAIN_FORMATS:
        return False, False
    known = _pixel_formats().get(name)
    if known is None:
        return name.startswith(("gray", "ya", "mono")), _format_depth(name) > 8
    components, depth, paletted = known
    return components <= 2 and not paletted, (depth or _format_depth(name)) > 8


#: the frame rates :func:`write_video` takes (what ffmpeg's mp4 writer does: 1/100000 s and 10^12 fps fail)
MIN_FPS = 0.001
MAX_FPS = 100_000.0


def check_fps(fps, what: str = "fps") -> float:
    """``fps`` as a float, refused (DevolensError naming ``what``, e.g. ``--fps``) unless a number within
    :data:`MIN_FPS`..:data:`MAX_FPS`."""
    import math

    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise DevolensError(f"{what} must be a number of frames per second, got {fps!r}") from None
    if not (math.isfinite(value) and MIN_FPS <= value <= MAX_FPS):
        raise DevolensError(f"{what} must be within {MIN_FPS:g}..{MAX_FPS:g} frames per second, got {fps}")
    return value


def _encoder_exe() -> str:
    """The ffmpeg that :func:`write_video` runs: imageio-ffmpeg's."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class _Encoder:
    """ffmpeg encoding yuv420p frames sent to its stdin into an H.264 file: the command imageio-ffmpeg's
    ``write_frames`` runs for these settings (the same bytes), its stderr kept (not printed) and its exit status
    checked (:meth:`finish`)."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, quality: float, preset: str):
        import collections
        import os
        import subprocess
        from fractions import Fraction

        crf = int((1 - quality / 10.0) * 51)  # imageio-ffmpeg's quality -> crf, for libx264
        cmd = [_encoder_exe(), "-y", "-f", "rawvideo", "-vcodec", "rawvideo",
               "-s", f"{size[0]:d}x{size[1]:d}", "-pix_fmt", "yuv420p", "-r", str(Fraction(fps).limit_denominator()),
               "-i", "-", "-an", "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-crf", str(crf), "-v", "error",
               "-preset", str(preset), "-threads", "1", str(path)]
        # its own process group (as imageio-ffmpeg starts it): Ctrl-C reaches this process, which stops it
        extra = {"process_group": 0} if os.name == "posix" else {}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     **extra)
        self.lines: collections.deque = collections.deque(maxlen=20)  # its last messages
        self._reader = threading.Thread(target=self._read_stderr, name="devolens-ffmpeg-log", daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            if line and not line.startswith("Last message repeated"):
                self.lines.append(line)

    def send(self, data) -> bool:
        """Write a frame; False when ffmpeg has stopped taking them (it failed: :meth:`finish` says why)."""
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, ValueError, OSError):
            return False
        return True

    def finish(self, path: Path) -> None:
        """Close ffmpeg's input, wait for it to end and raise DevolensError (naming ``path``) if it failed."""
        import os

        from devolens.io.atomic import cannot_write_errno, signal_name

        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        code = self.proc.wait()
        self._reader.join(5.0)
        self.proc.stderr.close()
        text = " ".join(self.lines)
        for number in WRITE_ERRNOS:  # ffmpeg says why it could not write (a full disk, a quota, a size limit)
            if os.strerror(number) in text:
                raise cannot_write_errno(number, path)
        if code != 0:
            if self.lines:
                said = self.lines[-1]
            elif code < 0:  # the signal named as the devolens command names its own ("SIGKILL", "signal 99")
                said = f"stopped by {signal_name(-code)}"
            else:
                said = f"exit status {code}"
            raise DevolensError(f"cannot write video: ffmpeg failed ({said})", path=path)

    def kill(self) -> None:
        """Stop ffmpeg at once (an error or an interruption on this side)."""
        try:
            self.proc.kill()
            self.proc.wait()
        except OSError:
            pass
        for stream in (self.proc.stdin, self.proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass


def video_size(height: int, width: int) -> tuple[int, int]:
    """The (height, width) that :func:`write_video` encodes frames of ``height`` x ``width`` at: each side
    rounded up to even (H.264's yuv420p needs even sides; there is no cropping them back in it)."""
    return int(height) + int(height) % 2, int(width) + int(width) % 2


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float = 10.0, *, quality: float = 7.0,
                preset: str = "veryfast") -> Path:
    """Encode frames into a video (H.264 mp4 by default), atomically.

    Parameters
    ----------
    frames : iterable of ndarray, uint8, (H, W) or (H, W, 3)
        Consumed lazily, one at a time; all must have the same shape. An odd side is padded by one pixel,
        repeating the last row or column (:func:`video_size`): the video is then one pixel larger than the frames.
    path : str or Path
        Destination (``.mp4``; the suffix picks the container).
    fps : float
        Frames per second, within :data:`MIN_FPS`..:data:`MAX_FPS`.
    quality : float
        imageio-ffmpeg's quality scale, 1 (worst) to 10 (best).
    preset : str
        x264 speed preset (``ultrafast`` ... ``veryslow``); ``veryfast`` encodes several
        times faster than x264's default ``medium`` at a slightly larger file.

    Returns
    -------
    Path

    Raises
    ------
    DevolensError
        No frames, frames of different shapes, a frame rate out of range, or ffmpeg failed to write the file (a
        full disk: ``cannot write output: No space left on device``); nothing is left at ``path`` then.
    """
    import cv2

    path = Path(path)
    fps = check_fps(fps)
    if not 1 <= float(quality) <= 10:
        raise DevolensError(f"video quality must be within 1..10, got {quality}")
    n = 0
    shape = None
    stopped = False
    with atomic_path(path) as tmp:
        writer = None
        try:
            for frame in frames:
                arr = np.asarray(frame)
                if arr.dtype != np.uint8:
                    raise DevolensError(f"video frames must be uint8, got {arr.dtype}", path=path)
                if arr.ndim == 2:
                    arr = np.repeat(arr[:, :, None], 3, axis=2)
                elif arr.ndim == 3 and arr.shape[2] == 4:  # RGBA: alpha dropped
                    arr = arr[..., :3]
                if arr.ndim != 3 or arr.shape[2] != 3:
                    raise DevolensError(f"video frames must be HxW or HxWx3, got shape {arr.shape}", path=path)
                if shape is None:
                    shape = arr.shape
                elif arr.shape != shape:
                    raise DevolensError(f"frame {n} has shape {arr.shape}, expected {shape}", path=path)
                even = video_size(*arr.shape[:2])
                if even != arr.shape[:2]:  # yuv420p needs even sizes
                    pad = ((0, even[0] - arr.shape[0]), (0, even[1] - arr.shape[1]), (0, 0))
                    arr = np.pad(arr, pad, mode="edge")
                if writer is None:
                    # frames go to ffmpeg as yuv420p, converted here by OpenCV (BT.601, limited range:
                    # what ffmpeg's own conversion gives), one x264 thread: ~25% less CPU than rgb24
                    writer = _Encoder(tmp, (arr.shape[1], arr.shape[0]), fps, float(quality), preset)
                if not writer.send(cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2YUV_I420)):
                    stopped = True  # ffmpeg ended early: finish() says why
                    break
                n += 1
            if writer is None:
                raise DevolensError("no frames to write", path=path)
            writer.finish(path)
        except BaseException:  # (Ctrl-C while ffmpeg finishes included: it runs in its own process group)
            if writer is not None:
                writer.kill()
            raise
        if stopped or tmp.stat().st_size == 0:
            raise DevolensError(f"cannot write video: ffmpeg {'ended early' if stopped else 'wrote nothing'}",
                                path=path)
    return path
