"""identify's lineage smoothing on the germline (session 40): P4 was never named P, Z2/Z3 were named Ep on
CD20241010_JIM767_25_L2, and evenly subsampled tables got a false "nuclei are missing" note.

Two causes, both in the smoothing. (1) Collisions of the nearest-neighbour links: P4 at t=70 of L2 lies nearer Epl at
t=69 than P4 at t=69; both links to Epl were cut as at a division, P4's tracklet ended, and its last time points became
a "daughter" of Epl, with Z2/Z3 under it. The same collisions, more frequent where nuclei move farther between time
points, left tracklets that ended and were then "continued" across a one-time-point gap: the false note. (2) The
transition matrix gave each class a self-transition of 1 / (1 + its daughter classes): Z -> Z 1, P -> Z 1/6, so P4,
mother of two Z tracklets, was named Z even with its own tracklets right.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from devolens.predict.identity import (
    identity_labels,
    input_notes,
    lineage_posterior,
    transition_matrix,
)

from _identity_helpers import DEPTH1, FOUNDERS, needs_zoo
from test_s32_identity import one_track_per_cell, tracks_of

MISSING_NOTE = "missing at one time point but present before and after"


def drifting_cells(n: int = 60, times: int = 12, seed: int = 0) -> pd.DataFrame:
    """``n`` cells (``c0``...) on a grid 50 px apart in x and y (3 z planes of 5 px), drifting by 2 px per time
    point, no divisions: a complete table, each cell's rows one tracklet."""
    rng = np.random.default_rng(seed)
    gx, gy, gz = np.meshgrid(np.arange(6) * 50.0, np.arange(5) * 50.0, np.arange(2) * 10.0, indexing="ij")
    p = np.column_stack([gx.ravel() * 1.6, gy.ravel(), gz.ravel()])[:n] + 100.0
    parts = []
    for t in range(1, times + 1):
        parts.append(pd.DataFrame({"embryo": "toy", "time": t, "cell": [f"c{i}" for i in range(n)], "x": p[:, 0],
                                   "y": p[:, 1], "z": p[:, 2], "size": 25.0}))
        p = p + rng.normal(0, 2.0, size=p.shape) * [1, 1, 0.1]
    df = pd.concat(parts, ignore_index=True)
    df.attrs["zscale"] = 5.0
    return df


def collide(df: pd.DataFrame, pairs: list[tuple[str, str]], at: int, back: bool = False) -> pd.DataFrame:
    """Each first cell of ``pairs`` moved at time ``at`` to 0.6 of the way to where the second one was a time point
    earlier (nearer it than its own nucleus there), the second one staying; with ``back``, it returns at ``at + 1``
    to where it was before (a jittery nucleus)."""
    df = df.copy()
    pos = df.set_index(["cell", "time"])[["x", "y", "z"]]
    for a, b in pairs:
        was, other = pos.loc[(a, at - 1)].to_numpy(), pos.loc[(b, at - 1)].to_numpy()
        row = (df["cell"] == a) & (df["time"] == at)
        df.loc[row, ["x", "y", "z"]] = was + 0.6 * (other - was)
        if back:
            df.loc[(df["cell"] == a) & (df["time"] == at + 1), ["x", "y", "z"]] = was
    return df


# ----------------------------------------------------------------------------- collisions
def test_a_nucleus_nearer_its_neighbours_last_place_keeps_its_tracklet():
    """c0 at t=6 lies nearer c1's nucleus of t=5 than its own: before, both links to c1 were cut (as at a division),
    c0's tracklet ended at t=5 and its later rows became c1's "daughter". Untangled: one tracklet per cell."""
    df = collide(drifting_cells(), [("c0", "c1")], at=6)
    tracks, parents = tracks_of(df)
    assert one_track_per_cell(df, tracks)
    assert (parents == -1).all()  # no divisions, no daughters


def test_a_division_beside_a_cell_is_still_a_division():
    """A real division (one nucleus of t=5 picked by two of t=6, none left without a successor) is not undone."""
    df = drifting_cells()
    mother = df[(df["cell"] == "c7") & (df["time"] >= 6)]
    df = df[~((df["cell"] == "c7") & (df["time"] >= 6))]
    kids = [mother.assign(cell=name, x=mother["x"] + dx) for name, dx in (("c7a", -8.0), ("c7p", 8.0))]
    df = pd.concat([df, *kids], ignore_index=True)
    df.attrs["zscale"] = 5.0
    tracks, parents = tracks_of(df)
    cell = df["cell"].to_numpy()
    t7, ta, tp = (int(tracks[np.flatnonzero(cell == c)[0]]) for c in ("c7", "c7a", "c7p"))
    assert len({t7, ta, tp}) == 3 and parents[ta] == parents[tp] == t7
    assert one_track_per_cell(df, tracks)


def test_jittery_nuclei_are_no_missing_nuclei():
    """Ten nuclei that each jump towards a neighbour for one time point and come back (what larger steps between
    time points do to a real table, e.g. every 2nd time point of L2): before, each ended its tracklet and was then
    "continued" across a one-time-point gap, and identify said 10 nuclei were missing. Now no gap links, no note."""
    pairs = [(f"c{2 * i}", f"c{2 * i + 1}") for i in range(10)]
    df = collide(drifting_cells(), pairs, at=6, back=True)
    report: dict = {}
    tracks, _ = tracks_of(df, report)
    assert report["toy"]["gap_links"] == 0 and one_track_per_cell(df, tracks)
    assert not [n for n in input_notes({"tracking": report}) if MISSING_NOTE in n]


def test_missing_nuclei_are_still_linked_across_the_gap():
    """The real case stays: ten nuclei absent at one time point each (not detected) are linked across it and
    noted."""
    df = drifting_cells()
    gone = df.index[(df["time"] == 6) & df["cell"].isin([f"c{3 * i}" for i in range(10)])]
    df2 = df.drop(index=gone).reset_index(drop=True)
    df2.attrs = dict(df.attrs)
    report: dict = {}
    tracks, _ = tracks_of(df2, report)
    assert report["toy"]["gap_links"] == 10 and one_track_per_cell(df2, tracks)
    assert [n for n in input_notes({"tracking": report}) if MISSING_NOTE in n]


# ----------------------------------------------------------------------------- the lineage tree
def test_a_z_mother_does_not_explain_z_daughters_better_than_p():
    """Every class continues itself as often: before, Z -> Z was 1 and P -> Z 1/6, so a Z tracklet explained each
    Z child 6 times as well as a P one."""
    trans = transition_matrix(DEPTH1, FOUNDERS)
    np.testing.assert_allclose(trans.sum(1), 1.0)
    p, z, ab, d = (DEPTH1.index(c) for c in ("P", "Z", "AB", "D"))
    assert trans[z, z] < 1.5 * trans[p, z]
    assert trans[p, p] > trans[p, z] > trans[p, ab] > 0.05 and trans[p, d] > 0.05  # P0..P4's daughters
    assert trans[z, ab] < 0.1 and trans[DEPTH1.index("ABa"), DEPTH1.index("ABa")] > 0.9


def test_p4_with_two_z_daughters_is_named_p():
    """P3 (sure) -> D (sure) and P4 (P over Z on its own rows) -> Z2, Z3 (sure): P4 stays P (it was Z)."""
    k = len(DEPTH1)
    rows = {0: ("P", 0.95, 5), 1: ("D", 0.95, 5), 2: ("P", 0.55, 8), 3: ("Z", 0.95, 20), 4: ("Z", 0.9, 20)}
    prob, tracks = [], []
    for track, (cls, p, n) in rows.items():
        r = np.full(k, (1 - p) / (k - 1))
        r[DEPTH1.index(cls)] = p
        if track == 2:  # P4's own rows: some say Z, some Da (its neighbours), as the model's did
            r[DEPTH1.index("Z")] += 0.2
            r[DEPTH1.index("Da")] += 0.1
            r /= r.sum()
        prob += [r] * n
        tracks += [track] * n
    post = lineage_posterior(np.array(prob), np.array(tracks), np.array([-1, 0, 0, 2, 2]),
                             transition_matrix(DEPTH1, FOUNDERS))
    named = [DEPTH1[post[np.flatnonzero(np.array(tracks) == t)[0]].argmax()] for t in range(5)]
    assert named == ["P", "D", "P", "Z", "Z"]


# ----------------------------------------------------------------------------- real embryos
def _l2(shared_data) -> pd.DataFrame:
    from devolens.io.tables import read_table
    from devolens.predict.identity import tidy_positions

    path = shared_data / "epic" / "CD20241010_JIM767_25_L2.csv"
    if not path.is_file():
        pytest.skip("CD20241010_JIM767_25_L2 not in the shared data")
    return tidy_positions(read_table(path))


@pytest.mark.slow
def test_l2_p4_keeps_its_tracklet_and_mothers_z2_z3(shared_data):
    """On L2, P4's rows are one tracklet (its link from t=69 to t=70 was lost to Epl), and Z2's and Z3's first
    tracklets are its daughters (they hung under a tracklet whose mother was Epl)."""
    df = _l2(shared_data)
    tracks, parents = tracks_of(df)
    cell = df["cell"].to_numpy()
    (p4,) = np.unique(tracks[cell == "P4"])
    for z in ("Z2", "Z3"):
        first = tracks[np.flatnonzero(cell == z)[np.argmin(df["time"].to_numpy()[cell == z])]]
        assert parents[first] == p4, z


@pytest.mark.slow
def test_subsampled_real_tables_get_no_missing_nuclei_note(shared_data):
    """Every 2nd time point of L2 (22 nuclei "missing" before), every 3rd of JIM762_L4 (33): no gap links, no
    note; 2 % of L2's rows removed at random: the gaps are found and noted, as before."""
    from devolens.io.tables import read_table
    from devolens.predict.identity import tidy_positions

    l2 = _l2(shared_data)
    l4_path = shared_data / "epic" / "CD20240930_JIM762_L4.csv"
    tables = [(l2, 2)] + ([(tidy_positions(read_table(l4_path)), 3)] if l4_path.is_file() else [])
    for df, every in tables:
        times = np.sort(df["time"].unique())
        sub = df[df["time"].isin(times[::every])].reset_index(drop=True)
        sub.attrs = dict(df.attrs)
        report: dict = {}
        tracks_of(sub, report)
        (found,) = report.values()
        assert found["gap_links"] == 0 and not found["sparse"], every
        assert not [n for n in input_notes({"tracking": report}) if MISSING_NOTE in n]
    dropped = l2.sample(frac=0.98, random_state=0).sort_index().reset_index(drop=True)
    dropped.attrs = dict(l2.attrs)
    report = {}
    tracks_of(dropped, report)
    (found,) = report.values()
    assert found["gap_links"] > 0.01 * len(dropped)
    assert [n for n in input_notes({"tracking": report}) if MISSING_NOTE in n]


@needs_zoo
@pytest.mark.slow
def test_l2_germline_named_by_the_shipped_model(shared_data):
    """`devolens identify` on the whole L2 table: P4 was D (38 rows) and Ep (3), Z2 and Z3 Ep at 0.98-0.99; now P,
    Z, Z (the shipped model on one of its training embryos)."""
    import warnings

    from devolens.models import load

    df = _l2(shared_data)
    with warnings.catch_warnings():  # (notes on the input, if any: not what this is about)
        warnings.simplefilter("ignore")
        out = load("identity").predict(df)
    cell = df["cell"].to_numpy()
    for name, want in (("P3", "P"), ("P4", "P"), ("Z2", "Z"), ("Z3", "Z")):
        got = out["pred_depth1"].to_numpy()[cell == name]
        assert (got == want).mean() >= 0.95, (name, pd.Series(got).value_counts().to_dict())
    right = (out["pred_founder"] == identity_labels(df["cell"], 0)).mean()
    assert right > 0.95

