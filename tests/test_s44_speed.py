"""Session 44: the noise guard's glance on integer frames reads its medians and ranks from counts of the values
(the same numbers as sorting, so the same verdict, with a fraction of the work)."""

from __future__ import annotations

import numpy as np
import pytest

from devolens.predict import postprocess as pp


def _frames(seed: int):
    """Integer frames around the glance's cut: noise with a bright patch whose height puts the frame's brightest
    half percent near CLEARLY_BRIGHT spreads above its median (either side), and flat, saturated and tiny frames."""
    rng = np.random.default_rng(seed)
    for k in range(120):
        dtype = (np.uint8, np.uint16)[k % 2]
        top = 255 if dtype == np.uint8 else int(rng.choice([1023, 4095, 65535]))
        h, w = (int(v) for v in rng.integers(32, 200, 2))
        sigma = float(rng.uniform(0.7, 6.0))
        base = float(rng.uniform(5, top / 3))
        a = base + rng.normal(0, sigma, (h, w))
        side = int(rng.integers(2, 12))
        a[h // 4:h // 4 + side, w // 3:w // 3 + side * 3] += sigma * float(rng.uniform(6, 20))
        yield np.clip(np.round(a), 0, top).astype(dtype)
    yield np.full((64, 64), 7, np.uint8)  # no pixel noise
    yield np.full((64, 64), 65535, np.uint16)  # saturated
    yield np.zeros((20, 300), np.uint8)  # too small


@pytest.mark.parametrize("seed", [0, 1])
def test_counted_glance_gives_the_sorting_verdict(seed):
    frames = list(_frames(seed))
    verdicts = []
    for f in frames:
        counted = pp._clearly_bright(f)
        sorted_ = pp._clearly_bright(f.astype(np.float32))  # the float path sorts (np.median, np.partition)
        assert counted == sorted_
        verdicts.append(counted)
    # the frames straddle the cut: both verdicts occur, so the comparison decides something
    assert 10 < sum(verdicts) < len(verdicts) - 10


def test_counted_medians_match_numpy():
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 100, 101):
        v = rng.integers(0, 50, n)
        assert pp._median_twice(np.bincount(v), n) / 2 == np.median(v)
        ranks = [0, (n - 1) // 2, n - 1]
        assert pp._ranked(np.bincount(v), ranks) == list(np.sort(v)[ranks])


def test_the_glance_takes_the_counting_path_for_integer_frames(monkeypatch):
    calls = []
    real = pp._clearly_bright_counted
    monkeypatch.setattr(pp, "_clearly_bright_counted", lambda rows: calls.append(rows.shape) or real(rows))
    frame = np.random.default_rng(0).integers(0, 40, (128, 96)).astype(np.uint16)
    pp._clearly_bright(frame)
    pp._clearly_bright(frame.astype(np.float32))
    assert calls == [(32, 96)]
