"""Curation: corrupt-frame detection and dataset cleaning.

>>> from devolens.curate import curate_path, flagged_frames   # doctest: +SKIP
>>> report = curate_path("movie.mp4")                          # doctest: +SKIP
>>> skip = flagged_frames(report)                              # doctest: +SKIP
"""

from devolens.curate.frames import (
    KINDS,
    Thresholds,
    curate_path,
    flagged_files,
    flagged_frames,
    score_frames,
    summarize,
)

__all__ = ["KINDS", "Thresholds", "curate_path", "flagged_files", "flagged_frames", "score_frames", "summarize"]


def __getattr__(name: str):  # its modules on first use: devolens.curate.MODULE after a bare import devolens
    from devolens import _submodule

    return _submodule(__name__, name)
