"""Errors that describe a user's mistake (bad input, bad options), and warnings about results to check.

The CLI turns a :class:`DevolensError` into a one-line message and exit code 2, never a
traceback. Library code raises it whenever the cause is the input rather than a bug.
Where the CLI prints a note about a result to check, library code issues a warning
(``warnings.warn``): :class:`DiameterWarning`, which the CLI silences as it prints its own note.
"""

from __future__ import annotations

from pathlib import Path


class DevolensError(Exception):
    """A problem with the user's input; the message is shown as is (one line)."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.message = message  # without the path
        self.path = None if path is None else Path(path)
        text = f"{self.path}: {message}" if self.path is not None else message
        super().__init__(text)


class DevolensValueError(DevolensError, ValueError):
    """A value a function cannot work with, where that function raised a plain ValueError before (callers that
    catch ValueError still catch it)."""


class DiameterWarning(UserWarning):
    """``diameter="auto"`` (or ``"each"``) could not judge the magnification of the images (too few objects, or
    too narrow images) and used them as they are; the estimate is in the predictor's ``last_estimate``
    (``estimates`` with ``"each"``)."""


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``, ``21st``, ``111th``: for messages and reports in words. Here
    because every module imports this one already (training's summary and the demo's report both use it, and the
    CLI must not import training, with PyTorch, to start)."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
