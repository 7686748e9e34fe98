"""Read ahead: iterate over frames in a background thread, within a memory budget.

A command that streams a video through a network spends its first second or two importing
PyTorch on one core while the other has nothing to do. :class:`ReadAhead` starts decoding
(and reading) at once, in a background thread, so the frames are waiting when the network
is ready; afterwards it keeps a bounded buffer ahead of the consumer. Memory stays bounded
by ``max_bytes`` whatever the length of the video (a few hundred frames of a movie, a
handful of 4K frames).

>>> frames = ReadAhead(iter_video_frames("movie.mp4"), max_bytes=256 << 20)  # doctest: +SKIP
>>> for frame in frames:                                                     # doctest: +SKIP
...     ...
>>> frames.close()   # stop early: the thread ends and the decoder is closed  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")

#: Default memory budget of a read-ahead buffer (bytes): ~220 frames of a 752x512 RGB movie.
DEFAULT_MAX_BYTES = 256 << 20


def _nbytes(item: Any) -> int:
    """Bytes held by an item: its ``nbytes`` (arrays), summed over tuples/lists; else 0."""
    if isinstance(item, (tuple, list)):
        return sum(_nbytes(x) for x in item)
    return int(getattr(item, "nbytes", 0) or 0)


class ReadAhead(Generic[T]):
    """An iterator over ``items`` that is consumed in a background thread, ahead of its reader.

    Parameters
    ----------
    items : iterable
        Consumed only by the background thread (a generator runs there and is closed
        there, e.g. a video decoder).
    max_bytes : int
        Memory budget of the buffer (arrays' ``nbytes``): the thread waits while the
        buffered items hold more. One item is always allowed, however large.
    max_items : int, optional
        Also at most this many items ahead.
    name : str
        Thread name (shows in profilers).
    transform : callable, optional
        Applied to each item in the background thread (e.g. preparing a frame for a network);
        the reader gets its results.

    Notes
    -----
    Items come out in order. An exception raised by ``items`` is raised by ``next()`` after
    the items that came before it. :meth:`close` (or leaving a ``with`` block) stops the
    thread and closes ``items``; an unfinished ReadAhead never keeps the process alive
    (daemon thread).
    """

    def __init__(self, items: Iterable[Any], *, max_bytes: int = DEFAULT_MAX_BYTES, max_items: int | None = None,
                 name: str = "devolens-read-ahead", transform: Callable[[Any], T] | None = None):
        if max_bytes < 0 or (max_items is not None and max_items < 1):
            raise ValueError("max_bytes must be >= 0 and max_items >= 1")
        self.max_bytes = int(max_bytes)
        self.max_items = None if max_items is None else int(max_items)
        self._cond = threading.Condition()
        self._buffer: collections.deque = collections.deque()
        self._held = 0
        self._finished = False
        self._stopped = False
        self._error: BaseException | None = None
        self._transform = transform
        self._thread = threading.Thread(target=self._fill, args=(items,), name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ background thread
    def _full(self, size: int) -> bool:
        if not self._buffer:
            return False
        if self.max_items is not None and len(self._buffer) >= self.max_items:
            return True
        return self._held + size > self.max_bytes

    def _fill(self, items: Iterable[T]) -> None:
        it = iter(items)
        try:
            for item in it:
                if self._transform is not None:
                    item = self._transform(item)
                size = _nbytes(item)
                with self._cond:
                    while not self._stopped and self._full(size):
                        self._cond.wait()
                    if self._stopped:
                        break
                    self._buffer.append((item, size))
                    self._held += size
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the reader, raised in order
            self._error = exc
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    # ------------------------------------------------------------------ reader
    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        with self._cond:
            while not self._buffer and not self._finished:
                self._cond.wait()
            if self._buffer:
                item, size = self._buffer.popleft()
                self._held -= size
                self._cond.notify_all()
                return item
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            raise StopIteration

    @property
    def buffered(self) -> tuple[int, int]:
        """``(items, bytes)`` waiting in the buffer now."""
        with self._cond:
            return len(self._buffer), self._held

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop reading ahead, drop the buffer and wait (up to ``timeout`` s) for the thread."""
        with self._cond:
            self._stopped = True
            self._buffer.clear()
            self._held = 0
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> "ReadAhead[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
