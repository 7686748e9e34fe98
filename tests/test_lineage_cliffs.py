"""Annotation cliffs: synthetic count curves and the real embryos with known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from devolens.io.tables import read_table
from devolens.lineage.cliffs import (
    clean_table,
    cut_at_cliff,
    detect_cliffs,
    find_cliffs,
    find_duplicates,
)

KNOWN_CLIFFS = {"CD20240930_JIM762_L4": 164, "CD20241107_JIM767_25_L1": 149}


def growth(n_times: int, start: int = 4, end: int = 380) -> np.ndarray:
    """A monotone, stepwise embryo-like growth curve."""
    t = np.linspace(0, 1, n_times)
    return np.round(start * (end / start) ** t).astype(int)


def table_from_counts(counts, names=None) -> pd.DataFrame:
    """A tidy table with counts[i] rows at time i+1 (names from a pool of valid ones)."""
    times = np.repeat(np.arange(1, len(counts) + 1), counts)
    cells = [f"AB{'a' * 3}{i}" if names is None else names[i % len(names)] for i in range(len(times))]
    return pd.DataFrame({"embryo": "e", "time": times, "cell": cells, "x": 0.0, "y": 0.0, "z": 0.0, "size": 1.0})


def test_smooth_growth_has_no_cliff():
    n = growth(150)
    assert detect_cliffs(np.arange(150), n) == []


def test_sudden_cliff_found_with_last_good_time():
    n = growth(150)
    n[100:] = np.minimum(n[100:], 40) + np.arange(50) // 5  # falls and creeps up but never recovers
    cliffs = detect_cliffs(np.arange(1, 151), n)
    assert len(cliffs) == 1
    c = cliffs[0]
    assert c.time == 100 and c.first_bad_time == 101 and c.before == n[99] and c.after == n[100]


def test_cliff_at_the_very_end_is_reported():
    n = np.r_[growth(50), 20]
    cliffs = detect_cliffs(np.arange(51), n)
    assert [c.time for c in cliffs] == [49]


def test_apoptosis_dips_are_not_cliffs():
    n = growth(200, end=560).astype(int)
    for start in (60, 120, 170):  # a few cells lost at a time, slowly recovering or not
        n[start:] -= 3
    n[150:] -= 6  # 6 cells lost for good (the AceTree embryo loses ~12 over many time points)
    assert detect_cliffs(np.arange(200), n) == []


def test_transient_dip_that_recovers_is_not_a_cliff():
    n = growth(120)
    n[70] = n[69] // 2  # one badly annotated frame
    n[90:93] = 20  # three bad frames
    assert detect_cliffs(np.arange(120), n) == []
    # ... but the same dip without recovery within the window is a cliff
    m = n.copy()
    m[90:] = 20
    assert [c.time for c in detect_cliffs(np.arange(120), m)] == [89]
    # a recovery later than the window does not rescue it
    m[105:] = n[105:]
    assert [c.time for c in detect_cliffs(np.arange(120), m, window=10)] == [89]
    assert detect_cliffs(np.arange(120), m, window=20) == []


def test_noisy_counts_without_cliff():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = growth(160) + rng.integers(-4, 5, 160)
        assert detect_cliffs(np.arange(160), np.maximum(n, 1)) == []


def test_noisy_counts_with_cliff():
    rng = np.random.default_rng(2)
    for _ in range(20):
        k = int(rng.integers(40, 140))
        n = growth(160) + rng.integers(-4, 5, 160)
        n[k:] = (n[k:] * rng.uniform(0.1, 0.6)).astype(int)
        n = np.maximum(n, 1)
        cliffs = detect_cliffs(np.arange(160), n)
        assert len(cliffs) >= 1
        assert abs(cliffs[0].time - (k - 1)) <= 2


def test_small_early_fluctuations_are_not_cliffs():
    # 4 -> 2 cells is a 50 % fall but far below the absolute threshold
    n = np.array([2, 4, 4, 2, 4, 6, 8, 6, 8, 12, 14])
    assert detect_cliffs(np.arange(len(n)), n) == []


def test_gradual_fall_over_several_time_points():
    n = np.r_[growth(80, end=300), [300, 290, 250, 200, 150, 100, 100, 101, 102, 103, 104, 106, 107, 108]]
    cliffs = detect_cliffs(np.arange(len(n)), n)
    assert len(cliffs) == 1
    # last time still within the apoptosis allowance of the peak (300 at index 80; 290 at 81 is not > 290)
    assert cliffs[0].time == 80 and cliffs[0].after == 100 and cliffs[0].first_bad_time == 83


def test_two_cliffs_both_reported():
    n = np.r_[growth(60, end=300), np.full(30, 150), np.full(30, 40)]
    cliffs = detect_cliffs(np.arange(120), n)
    assert [c.time for c in cliffs] == [59, 89]


def test_thresholds_are_parameters():
    n = np.r_[growth(60, end=100), np.full(20, 85)]  # 15 cells (15 %) lost for good
    t = np.arange(80)
    assert detect_cliffs(t, n) == []  # below the 20 % default
    assert [c.time for c in detect_cliffs(t, n, min_fraction=0.1)] == [59]
    assert detect_cliffs(t, n, min_fraction=0.1, min_drop=20) == []
    with pytest.raises(ValueError):
        detect_cliffs(t, n, min_fraction=1.5)


def test_unsorted_times_are_sorted():
    n = np.r_[growth(40), np.full(15, 10)]
    t = np.arange(55)
    perm = np.random.default_rng(0).permutation(55)
    assert detect_cliffs(t[perm], n[perm]) == detect_cliffs(t, n)


def test_find_cliffs_on_table_and_json():
    counts = np.r_[growth(30, end=120), np.full(12, 30)]
    df = table_from_counts(counts)
    rep = find_cliffs(df)
    assert rep.to_dict() == {"cliffs": [{"time": 30, "before": int(counts[29]), "after": 30, "first_bad_time": 31,
                                         "after_time": 31}], "last_good_time": 30, "duplicates": []}
    none = find_cliffs(table_from_counts(growth(30, end=120)))
    assert none.to_dict() == {"cliffs": [], "last_good_time": 30, "duplicates": []}


def test_duplicates_and_clean():
    df = pd.DataFrame({
        "embryo": "e", "time": [1, 1, 1, 2, 2, 2, 2, 2], "cell": ["ABa", "ABa", "", "ABa", "ABp", "ABp", "", ""],
        "x": np.arange(8.0), "y": 0.0, "z": 0.0, "size": 1.0,
    })
    df.attrs = {"format": "tidy", "zscale": 2.0}
    dup = find_duplicates(df)
    assert dup.to_dict("list") == {"time": [1, 2], "cell": ["ABa", "ABp"], "count": [2, 2]}
    clean, rep = clean_table(df)
    assert rep.duplicate_rows == 2 and rep.rows_after_cliff == 0 and rep.rows_out == 6
    assert clean["x"].tolist() == [0.0, 2.0, 3.0, 4.0, 6.0, 7.0]  # first of each name kept; unnamed all kept
    assert clean.attrs["zscale"] == 2.0


def test_clean_cuts_after_cliff():
    counts = np.r_[growth(30, end=120), np.full(12, 30)]
    df = table_from_counts(counts)
    clean, rep = clean_table(df)
    assert clean["time"].max() == 30 and len(clean) == counts[:30].sum()
    assert rep.rows_after_cliff == 12 * 30 and rep.times_dropped == 12
    assert cut_at_cliff(df, None).shape == df.shape


def test_real_embryos_known_cliffs(epic_tables):
    for path in epic_tables:
        rep = find_cliffs(read_table(path))
        if path.stem in KNOWN_CLIFFS:
            assert len(rep.cliffs) == 1, path.stem
            assert abs(rep.last_good_time - KNOWN_CLIFFS[path.stem]) <= 2
            assert rep.cliffs[0].before > 300 and rep.cliffs[0].after < 120
        else:
            assert rep.cliffs == [], path.stem
            assert rep.last_good_time == read_table(path)["time"].max()
        assert rep.duplicates.empty


def test_real_acetree_has_no_cliff(acetree_zip):
    rep = find_cliffs(read_table(acetree_zip))
    assert rep.cliffs == [] and rep.last_good_time == 360
