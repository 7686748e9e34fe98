"""The renderers' per-table cache (:func:`devolens.render.geometry.cached`): a table edited in place renders its
current content, an unchanged table computes its derived data once, and a new table that inherits a dead table's
``id()`` never picks up the dead table's entry."""

import gc
import weakref

import numpy as np
import pandas as pd
import pytest

from _render_helpers import make_table
from devolens.lineage.simulate import simulate_embryo
from devolens.render import geometry, membranes, nuclei
from devolens.render.dataset import select_times
from devolens.render.membranes import render_membrane_frame
from devolens.render.nuclei import population_counts, render_nuclei_frame

SIZE = (128, 192)


def _same_nuclei(a, b):
    assert a.counts == b.counts
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    pd.testing.assert_frame_equal(a.centroids, b.centroids)


def _same_membrane(a, b):
    assert a.counts == b.counts
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.membrane, b.membrane)


@pytest.fixture
def sim():
    df = simulate_embryo(1, n_cells=60)
    return df, int(df["time"].max())


def test_nuclei_table_edited_in_place(sim):
    df, last = sim
    before = render_nuclei_frame(df, last, size=SIZE, seed=3)
    df["size"] *= 2  # a column replaced
    df.loc[df["time"] == last, "cell"] = "ABa"  # values set in place
    after = render_nuclei_frame(df, last, size=SIZE, seed=3)
    fresh = render_nuclei_frame(df.copy(), last, size=SIZE, seed=3)
    _same_nuclei(after, fresh)
    assert after.counts["A"] == after.counts["total"] == (df["time"] == last).sum()
    assert after.counts != before.counts and not np.array_equal(after.image, before.image)
    assert population_counts(df, last) == fresh.counts


def test_nuclei_positions_edited_in_place(sim):
    df, last = sim
    render_nuclei_frame(df, last, size=SIZE, seed=1)
    df.loc[df["time"] == last, "x"] += 40.0  # same length, same names: only positions differ
    _same_nuclei(render_nuclei_frame(df, last, size=SIZE, seed=1), render_nuclei_frame(df.copy(), last, size=SIZE,
                                                                                        seed=1))


def test_membrane_table_edited_in_place(sim):
    df, last = sim
    before = render_membrane_frame(df, last, size=SIZE, seed=5)
    df["size"] *= 2
    df.loc[df["time"] == last, "cell"] = "ABa"
    df.loc[df["time"] == last, "y"] -= 15.0
    after = render_membrane_frame(df, last, size=SIZE, seed=5)
    _same_membrane(after, render_membrane_frame(df.copy(), last, size=SIZE, seed=5))
    assert after.counts != before.counts and not np.array_equal(after.image, before.image)


def test_attrs_edited_in_place():
    df = make_table(n_times=2, n_cells=30, seed=4)
    render_nuclei_frame(df, 1, size=SIZE, seed=0)
    df.attrs["zscale"] = 2.0  # the geometry reads the plane spacing
    df.attrs["ellipse"] = {"maj": 900.0, "min": 500.0}  # and the eggshell
    _same_nuclei(render_nuclei_frame(df, 1, size=SIZE, seed=0), render_nuclei_frame(df.copy(), 1, size=SIZE, seed=0))


def test_select_times_sees_edited_times():
    df = make_table(n_times=3, n_cells=10)
    assert select_times(df) == [1, 2, 3]
    df.loc[df["time"] == 3, "time"] = 7
    assert select_times(df) == [1, 2, 7]
    assert render_nuclei_frame(df, 7, size=SIZE, seed=0).counts["total"] == (df["time"] == 7).sum()


def _count_calls(monkeypatch, module, name, calls):
    real = getattr(module, name)

    def counting(*args, **kwargs):
        calls[name] = calls.get(name, 0) + 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)


def test_unchanged_table_computes_once(monkeypatch):
    df = make_table(n_times=6, n_cells=20, seed=1)
    calls: dict = {}
    for name in ("_by_time", "_populations_by_time", "embryo_geometry", "table_fingerprint"):
        _count_calls(monkeypatch, nuclei, name, calls)
    _count_calls(monkeypatch, membranes, "embryo_geometry", calls)
    _count_calls(monkeypatch, membranes, "table_fingerprint", calls)
    frames = [render_nuclei_frame(df, t, size=SIZE, seed=t) for t in (1, 2, 3, 4, 5, 6, 1, 2)]
    assert calls["_by_time"] == calls["_populations_by_time"] == calls["embryo_geometry"] == 1
    assert calls["table_fingerprint"] == len(frames)  # once per frame, shared by the three lookups
    for t in (1, 2, 3):
        render_membrane_frame(df, t, size=SIZE, seed=t)
    assert calls["_by_time"] == calls["_populations_by_time"] == calls["embryo_geometry"] == 1
    assert calls["table_fingerprint"] == len(frames) + 3
    # and the cached frames are those of a cold cache
    _same_nuclei(frames[-1], render_nuclei_frame(df.copy(), 2, size=SIZE, seed=2))
    # an edit is seen once, then cached again
    calls.clear()
    df.loc[df["time"] == 2, "x"] += 5.0
    render_nuclei_frame(df, 2, size=SIZE, seed=0)
    render_nuclei_frame(df, 3, size=SIZE, seed=0)
    assert calls["_by_time"] == calls["_populations_by_time"] == calls["embryo_geometry"] == 1


def test_unrelated_columns_do_not_invalidate(monkeypatch):
    df = make_table(n_times=2, n_cells=10)
    df["note"] = "x"
    calls: dict = {}
    _count_calls(monkeypatch, nuclei, "_by_time", calls)
    render_nuclei_frame(df, 1, size=SIZE, seed=0)
    df["note"] = "y"
    df.attrs["source"] = "elsewhere.csv"
    render_nuclei_frame(df, 2, size=SIZE, seed=0)
    assert calls["_by_time"] == 1


def test_dead_tables_entry_not_reused_by_id():
    """An entry left by a garbage-collected table, found under a new table's id(), is never returned (even when
    the fingerprints agree)."""
    new = make_table(n_times=2, n_cells=10, seed=1)
    dead = make_table(n_times=2, n_cells=10, seed=1)
    ref = weakref.ref(dead)
    del dead
    gc.collect()
    assert ref() is None
    geometry._CACHE[(id(new), "by_time")] = (ref, geometry.table_fingerprint(new), {"stale": 1})
    try:
        assert sorted(geometry.cached(new, "by_time", nuclei._by_time)) == [1, 2]
    finally:
        geometry._CACHE.pop((id(new), "by_time"), None)


def test_recycled_ids_get_their_own_data():
    """Tables of equal length and different content made and dropped one after another (CPython hands a freed
    object's address, hence its id(), to the next one): each renders its own counts."""
    for i in range(30):
        df = make_table(n_times=2, n_cells=15, seed=0)
        df.loc[df.index[: i % 15], "cell"] = "Ea"
        want = nuclei._populations_by_time(df)[2]
        assert population_counts(df, 2) == want
        assert nuclei._time_rows(df, 2)[0] == [str(c) for c in df.loc[df["time"] == 2, "cell"]]
        del df
        gc.collect()
