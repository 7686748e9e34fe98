"""ReadAhead: background reading within a memory budget (devolens.io.prefetch)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from devolens.errors import DevolensError
from devolens.io.prefetch import ReadAhead


#: seconds: only ever reached when something is broken (the reading thread may wait that long for a CPU on a loaded
#: machine, whose tests then failed by chance)
WAIT = 120.0


def _wait(cond, timeout=WAIT):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.005)
    return True


def test_items_in_order_and_everything_read():
    items = [np.full((4, 4), i, np.uint8) for i in range(50)]
    out = list(ReadAhead(iter(items), max_bytes=64))
    assert [int(a[0, 0]) for a in out] == list(range(50))


def test_memory_budget_bounds_what_is_read_ahead():
    pulled = []

    def frames():
        for i in range(100):
            pulled.append(i)
            yield np.zeros(1000, np.uint8)  # 1000 bytes each

    ra = ReadAhead(frames(), max_bytes=5000)
    assert _wait(lambda: len(pulled) >= 6)  # 5 buffered + 1 waiting for room
    time.sleep(0.05)
    items, held = ra.buffered
    assert items == 5 and held == 5000 and len(pulled) == 6
    next(ra)
    assert _wait(lambda: ra.buffered[0] == 5 and len(pulled) == 7)
    ra.close()


def test_max_items_and_one_oversized_item_always_allowed():
    ra = ReadAhead((np.zeros(10_000, np.uint8) for _ in range(3)), max_bytes=100)
    assert _wait(lambda: ra.buffered[0] == 1)
    time.sleep(0.05)
    assert ra.buffered == (1, 10_000)  # larger than the budget, alone
    assert len(list(ra)) == 3
    rb = ReadAhead(iter(range(100)), max_bytes=0, max_items=3)
    assert _wait(lambda: rb.buffered[0] == 3)
    assert list(rb) == list(range(100))


def test_error_raised_after_the_items_before_it():
    def frames():
        yield 1
        yield 2
        raise DevolensError("cannot decode frame 2")

    ra = ReadAhead(frames())
    assert next(ra) == 1 and next(ra) == 2
    with pytest.raises(DevolensError, match="frame 2"):
        next(ra)
    with pytest.raises(StopIteration):
        next(ra)


def test_close_stops_the_thread_and_closes_the_source():
    state = {"closed": False, "pulled": 0}

    def frames():
        try:
            for i in range(10_000):
                state["pulled"] += 1
                yield np.zeros(100, np.uint8)
        finally:
            state["closed"] = True

    before = threading.active_count()
    ra = ReadAhead(frames(), max_bytes=1000)
    next(ra)
    ra.close(timeout=WAIT)  # (its 5 s passed by on a loaded machine before the thread ran: the source still open)
    assert state["closed"] and state["pulled"] < 50
    assert _wait(lambda: threading.active_count() <= before)
    with pytest.raises(StopIteration):
        next(ra)


def test_reading_starts_before_the_first_next():
    started = threading.Event()

    def frames():
        started.set()
        yield 1

    ra = ReadAhead(frames())
    assert started.wait(WAIT)  # the decoder runs while the caller does something else
    assert list(ra) == [1]


def test_bad_budget():
    with pytest.raises(ValueError):
        ReadAhead(iter([]), max_bytes=-1)
