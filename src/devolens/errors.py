"""Errors that describe a user's mistake (bad input, bad options).

The CLI turns a :class:`DevolensError` into a one-line message and exit code 2, never a
traceback. Library code raises it whenever the cause is the input rather than a bug.
"""

from __future__ import annotations

from pathlib import Path


class DevolensError(Exception):
    """A problem with the user's input; the message is shown as is (one line)."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        text = f"{self.path}: {message}" if self.path is not None else message
        super().__init__(text)
