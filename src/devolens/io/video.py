"""Video frames in and out through imageio's ffmpeg plugin, one frame at a time.

>>> for frame in iter_video_frames("movie.mp4"):   # doctest: +SKIP
...     ...
>>> write_video(frames, "timelapse.mp4", fps=10)     # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import time
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from devolens.errors import DevolensError
from devolens.io.atomic import atomic_path

__all__ = ["iter_video_frames", "write_video", "video_info"]


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


class _Timestamps:
    """Each decoded frame's timestamp, read from the file ffmpeg writes them to (``-stats_enc_pre``: a line per
    frame, written and flushed before the frame goes into the pipe), to find frames missing mid-file.

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

    def __init__(self, file: str):
        self._path = file
        self._fh = None
        self._step: int | None = None
        self._steady = 0
        self._seen = 0
        self.off = False

    def options(self) -> list[str]:
        return ["-stats_enc_pre", self._path, "-stats_enc_pre_fmt", "{pts}"]

    def next_pts(self) -> int | None:
        """The timestamp of the frame just read from the pipe (its line is written before the frame); None, and
        the reasoning off, when there is none."""
        if self.off:
            return None
        if self._fh is None:
            try:
                self._fh = open(self._path, encoding="ascii", errors="replace")
            except OSError:
                self.off = True
                return None
            self._remove()  # ffmpeg has it open (a frame came): nothing is left behind even if the process is killed
        line = self._fh.readline()
        for _ in range(50):  # the line is there before the frame; allow for a slow disk
            if line.endswith("\n"):
                break
            time.sleep(0.002)
            line += self._fh.readline()
        try:
            if not line.endswith("\n"):
                raise ValueError(line)
            return int(line.strip())
        except ValueError:  # no whole line: timestamps out of step, so none is trusted from here on
            self.off = True
            return None

    def lost_before(self, prev: int | None, pts: int | None, after: int | None) -> int:
        """Frames missing between the frames stamped ``prev`` and ``pts`` (None: unknown), ``after`` the next
        frame's stamp (None: ``pts`` is the last frame, and no gap before it is trusted)."""
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

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._remove()

    def _remove(self) -> None:
        import os

        try:
            os.remove(self._path)
        except OSError:
            pass


def _check(path: Path) -> None:
    if not path.exists():
        raise DevolensError("no such file", path=path)
    if not path.is_file():
        raise DevolensError("not a file", path=path)


def video_info(path: str | Path) -> dict:
    """Metadata of a video (``fps``, ``size`` as (W, H), ``nframes`` when known, ...).

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
    return dict(_probe(str(path.resolve()), st.st_size, st.st_mtime_ns))


@lru_cache(maxsize=16)
def _probe(path: str, size: int, mtime_ns: int) -> dict:
    import imageio.v2 as iio

    _quiet_size_warning()
    try:
        # the header is all that is read: one decoder thread and one frame (by default ffmpeg starts a thread per
        # core and decodes ahead until the pipe is full: ~0.07 s of CPU more, at start-up where the CPU is short)
        reader = iio.get_reader(path, format="FFMPEG", input_params=["-threads", "1"], output_params=["-frames:v", "1"])
        try:
            return dict(reader.get_meta_data())
        finally:
            reader.close()
    except Exception as exc:
        raise DevolensError(f"cannot read video: {_open_reason(exc)}", path=Path(path)) from None


def iter_video_frames(path: str | Path, *, every: int = 1, threads: int | None = None,
                      mark_lost: bool = False) -> Iterator[np.ndarray]:
    """Stream the frames of a video (mp4, avi, ...) as uint8 RGB arrays (H, W, 3).

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

    Yields
    ------
    ndarray, uint8, (H, W, 3)

    Raises
    ------
    DevolensError
        Missing, unreadable or corrupt file (also raised mid-stream if decoding fails).
    """
    import imageio.v2 as iio

    path = Path(path)
    _check(path)
    if every < 1:
        raise DevolensError(f"every must be >= 1, got {every}")
    if threads is not None and int(threads) < 1:
        raise DevolensError(f"threads must be >= 1, got {threads}")
    params = {} if threads is None else {"input_params": ["-threads", str(int(threads))]}
    # every decoded frame once: ffmpeg's default for a raw pipe resamples to a constant rate, which repeats
    # frames of a variable-frame-rate file (a timelapse of irregular intervals: 10 frames came out as 104)
    params["output_params"] = _passthrough()
    stamps = None
    if mark_lost and _timestamps_supported():
        import os
        import tempfile

        fd, name = tempfile.mkstemp(prefix="devolens-pts-", suffix=".txt")
        os.close(fd)
        stamps = _Timestamps(name)
        params["output_params"] = params["output_params"] + stamps.options()
    _quiet_size_warning()
    try:
        try:
            reader = iio.get_reader(path, format="FFMPEG", **params)
        except Exception as exc:
            raise DevolensError(f"cannot read video: {_open_reason(exc)}", path=path) from None
        try:
            from devolens.io.missing import MissingFrame

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
                    yield frame

            def numbered() -> Iterator:
                """Every frame in the video's numbering: a MissingFrame for each its timestamps skip (each frame
                waits for the next one's timestamp: a gap counts only if the usual step follows it)."""
                if stamps is None:
                    yield from decoded()
                    return
                prev = held = None
                for frame in itertools.chain(decoded(), [None]):
                    pts = None if frame is None else stamps.next_pts()
                    if held is not None:
                        for _ in range(stamps.lost_before(prev, held[1], pts)):
                            yield MissingFrame("lost", "missing from the video (its timestamps skip it)", path)
                        yield held[0]
                        prev = held[1]
                    held = None if frame is None else (frame, pts)

            i = -1
            for i, item in enumerate(numbered()):
                if i % every == 0:
                    yield item if isinstance(item, MissingFrame) else np.asarray(item)
            if i < 0:
                raise DevolensError("video has no frames", path=path)
        finally:
            reader.close()
    finally:
        if stamps is not None:
            stamps.close()


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float = 10.0, *, quality: float = 7.0,
                preset: str = "veryfast") -> Path:
    """Encode frames into a video (H.264 mp4 by default), atomically.

    Parameters
    ----------
    frames : iterable of ndarray, uint8, (H, W) or (H, W, 3)
        Consumed lazily, one at a time; all must have the same shape.
    path : str or Path
        Destination (``.mp4``; the suffix picks the container).
    fps : float
        Frames per second.
    quality : float
        imageio-ffmpeg quality, 0 (worst) to 10 (best).
    preset : str
        x264 speed preset (``ultrafast`` ... ``veryslow``); ``veryfast`` encodes several
        times faster than x264's default ``medium`` at a slightly larger file.

    Returns
    -------
    Path

    Raises
    ------
    DevolensError
        No frames, or frames of different shapes.
    """
    import cv2
    import imageio_ffmpeg

    path = Path(path)
    n = 0
    shape = None
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
                if arr.shape[0] % 2 or arr.shape[1] % 2:  # yuv420p needs even sizes
                    arr = np.pad(arr, ((0, arr.shape[0] % 2), (0, arr.shape[1] % 2), (0, 0)), mode="edge")
                if writer is None:
                    # frames go to ffmpeg as yuv420p, converted here by OpenCV (BT.601, limited range:
                    # what ffmpeg's own conversion gives), one x264 thread: ~25% less CPU than rgb24
                    writer = imageio_ffmpeg.write_frames(
                        str(tmp), (arr.shape[1], arr.shape[0]), pix_fmt_in="yuv420p", pix_fmt_out="yuv420p",
                        fps=fps, codec="libx264", quality=quality, macro_block_size=1, ffmpeg_log_level="error",
                        output_params=["-preset", str(preset), "-threads", "1"],
                    )
                    writer.send(None)
                writer.send(cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2YUV_I420))
                n += 1
        finally:
            if writer is not None:
                writer.close()
        if n == 0:
            raise DevolensError("no frames to write", path=path)
    return path
