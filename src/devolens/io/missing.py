"""A stand-in for a frame that could not be read, in the frame streams of the commands that number frames.

:func:`devolens.io.frames.iter_path_frames` (``missing="mark"``) yields a :class:`MissingFrame` where a frame
could not be read instead of stopping there, so that the frames after it keep their numbers:

- ``reason="lost"``: frames missing in the middle of a video (not decodable in a damaged stretch of the file,
  or dropped while recording), found from the timestamps of the frames around them
  (:func:`devolens.io.video.iter_video_frames`); without a stand-in, every later frame would take a number
  too low;
- ``reason="unreadable"``: a file of a folder of images that cannot be read (truncated, empty, not an image).

``devolens curate frames`` reports them (flags ``dropped`` and ``unreadable``), ``segment`` and ``population``
leave lost video frames out with a note and stop at an unreadable file unless a curation report
(``--skip-flagged``) flags it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

__all__ = ["MissingFrame", "missing_note"]


@dataclass(frozen=True)
class MissingFrame:
    """A frame that could not be read: ``reason`` ``"lost"`` (video) or ``"unreadable"`` (a file), ``detail``
    what went wrong (one line), ``path`` the file."""

    reason: str
    detail: str = ""
    path: Path | None = None


def _ranges(numbers: Sequence[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``."""
    parts: list[list[int]] = []
    for n in sorted(numbers):
        if parts and n == parts[-1][-1] + 1:
            parts[-1].append(n)
        else:
            parts.append([n])
    return ", ".join(str(p[0]) if len(p) == 1 else f"{p[0]}-{p[-1]}" for p in parts)


def missing_note(details: Sequence[tuple[int, str, str, str]], *, skipped: bool = False) -> str | None:
    """A note on the frames that could not be read, from ``(frame, file, reason, detail)`` tuples (a curation
    report's ``attrs["missing"]``, or a command's frame stream), or None when there were none. ``skipped``: the
    command left them out (``segment``, ``population``); else they are flagged in a report (``curate``)."""
    lost = [f for f, _, reason, _ in details if reason == "lost"]
    bad = [(f, name, detail) for f, name, reason, detail in details if reason != "lost"]
    notes = []
    if lost:
        s = "s" if len(lost) != 1 else ""
        them = "them" if s else "it"
        notes.append(f"{len(lost)} frame{s} of the video {'are' if s else 'is'} missing (frame{s} {_ranges(lost)}: "
                     f"its timestamps skip {them}; a damaged stretch of the file, or frames dropped while recording): "
                     + ("left out; " if skipped else "flagged dropped; ")
                     + f"the frames after {them} keep their numbers in the video")
    if bad:
        f, name, detail = bad[0]
        them = "them" if len(bad) != 1 else "it"
        notes.append(f"{len(bad)} file{'s' if len(bad) != 1 else ''} could not be read (e.g. {name or f'frame {f}'}: "
                     f"{detail})" + (": left out (flagged in the curation report)" if skipped else
                                     f": flagged unreadable; --skip-flagged leaves {them} out"))
    return "; ".join(notes) if notes else None
