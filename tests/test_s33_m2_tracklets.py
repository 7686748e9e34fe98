"""tracklets made cheaper (session 33): motion_ratio measures at most MOTION_PAIRS evenly spaced pairs of time
points, and every pair where that lands near SPARSE_MOTION; the k-d trees are built once per cloud."""

from __future__ import annotations

import numpy as np
import pytest

from devolens.predict import identity
from devolens.predict.identity import MOTION_MARGIN, MOTION_PAIRS, SPARSE_MOTION, motion_ratio, prepare_clouds

from test_s32_identity import moving_cells, tracks_of


def drifting(times: int) -> list:
    """One embryo's clouds whose nuclei move more and more between time points: each pair's ratio differs."""
    df = moving_cells(n=30, times=times)
    rng = np.random.default_rng(1)
    t = df["time"].to_numpy()
    df[["x", "y"]] += rng.normal(0, 1, size=(len(df), 2)) * (t[:, None] * 0.5)
    return prepare_clouds(df)


def test_motion_ratio_measures_evenly_spaced_pairs():
    clouds = drifting(times=80)  # 79 pairs
    every = motion_ratio(clouds, pairs=None)
    cut = motion_ratio(clouds)
    assert cut != every
    # the median over MOTION_PAIRS pairs evenly spaced over the 79, as each is measured alone
    one = [motion_ratio(clouds[i - 1:i + 1], step=1.0) for i in range(1, 80)]
    picked = np.unique(np.linspace(0, 78, MOTION_PAIRS).round().astype(int))
    assert cut == pytest.approx(float(np.median(np.asarray(one)[picked])))
    assert every == pytest.approx(float(np.median(one)))
    few = drifting(times=MOTION_PAIRS + 1)  # as many pairs as MOTION_PAIRS: every one
    assert motion_ratio(few) == motion_ratio(few, pairs=None)


@pytest.mark.parametrize("cut, every, sparse", [(SPARSE_MOTION - MOTION_MARGIN / 4, SPARSE_MOTION + 0.001, True),
                                                (SPARSE_MOTION + MOTION_MARGIN / 4, SPARSE_MOTION - 0.001, False)])
def test_every_pair_decides_near_the_line(monkeypatch, cut, every, sparse):
    """Where the pairs measured land within MOTION_MARGIN of SPARSE_MOTION, every pair is measured, so that what is
    sparse sampling is what every pair says."""
    def fake(clouds, step=None, min_points=20, nearest=None, trees=None, pairs=MOTION_PAIRS):
        return every if pairs is None else cut

    monkeypatch.setattr(identity, "motion_ratio", fake)
    report: dict = {}
    tracks_of(moving_cells(), report)
    assert report["toy"]["motion"] == round(every, 4) and report["toy"]["sparse"] is sparse


def test_far_from_the_line_the_pairs_measured_decide(monkeypatch):
    seen = []
    real = identity.motion_ratio

    def spy(clouds, step=None, min_points=20, nearest=None, trees=None, pairs=MOTION_PAIRS):
        seen.append(pairs)
        return real(clouds, step, min_points, nearest, trees, pairs)

    monkeypatch.setattr(identity, "motion_ratio", spy)
    report: dict = {}
    tracks_of(moving_cells(), report)
    assert seen == [MOTION_PAIRS] and not report["toy"]["sparse"]
