import numpy as np
import pandas as pd
import pytest

from _render_helpers import make_table
from devolens.lineage.populations import populations
from devolens.render.geometry import Pose, embryo_geometry
from devolens.render.nuclei import NucleiFrame, render_nuclei_frame
from devolens.render.optics import OpticsParams


@pytest.fixture(scope="module")
def table():
    return make_table(n_times=3, n_cells=40, seed=1)


def test_frame_fields_and_types(table):
    f = render_nuclei_frame(table, 1, size=(128, 160), seed=0)
    assert isinstance(f, NucleiFrame)
    assert f.image.shape == (128, 160, 3) and f.image.dtype == np.uint8
    assert f.labels.shape == (128, 160) and f.labels.dtype == np.uint16
    assert f.semantic.dtype == np.uint8 and set(np.unique(f.semantic)) <= {0, 1}
    assert np.array_equal(f.semantic, (f.labels > 0).astype(np.uint8))
    assert list(f.centroids.columns[:4]) == ["label", "cell", "x", "y"]
    g = render_nuclei_frame(table, 1, size=(128, 160), seed=0, rgb=False)
    assert g.image.shape == (128, 160)


def test_same_seed_same_frame(table):
    a = render_nuclei_frame(table, 2, size=(96, 128), seed=7)
    b = render_nuclei_frame(table, 2, size=(96, 128), seed=7)
    c = render_nuclei_frame(table, 2, size=(96, 128), seed=8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert a.optics == b.optics
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("seed", range(6))
def test_labels_once_and_never_more_than_table(table, seed):
    for t in (1, 3):
        f = render_nuclei_frame(table, t, size=(160, 200), seed=seed, pose="random")
        n_table = int((table["time"] == t).sum())
        ids = np.unique(f.labels)
        ids = ids[ids > 0]
        assert len(ids) <= n_table
        assert np.array_equal(ids, np.arange(1, len(ids) + 1))  # compact 1..K
        assert len(f.centroids) == len(ids)
        assert f.centroids["cell"].is_unique  # each nucleus labelled once
        assert np.array_equal(np.sort(f.centroids["label"].to_numpy()), ids)
        # each label is one connected region? (a label is at least the visible part of one nucleus)
        areas = np.bincount(f.labels.ravel())[1:]
        assert np.array_equal(areas, f.centroids.sort_values("label")["area"].to_numpy())


def test_every_visible_nucleus_labelled(table):
    # frame large enough: separated nuclei are all labelled; count equals table count when
    # nobody is hidden, and hidden ones are exactly those covered by nearer nuclei
    t = 1
    f = render_nuclei_frame(table, t, size=(512, 752), seed=0)
    rows = table[table["time"] == t]
    labelled = set(f.centroids["cell"])
    assert labelled <= set(rows["cell"])
    geom = embryo_geometry(table)
    from devolens.render.geometry import default_pose, to_frame

    pose = default_pose(geom, (512, 752))
    u, v, d = to_frame(geom, pose, rows["x"], rows["y"], rows["z"])
    for (cell, uu, vv) in zip(rows["cell"], u, v):
        if cell in labelled:
            continue
        # an unlabelled nucleus's centre must be covered by some other nucleus' label
        assert f.labels[int(round(vv)), int(round(uu))] > 0


def test_hidden_nucleus_gets_no_label():
    df = pd.DataFrame({
        "embryo": "e", "time": 1, "cell": ["ABa", "ABp", "EMS"],
        "x": [300.0, 300.0, 500.0], "y": [300.0, 300.0, 300.0], "z": [10.0, 40.0, 20.0],
        "size": [120.0, 40.0, 60.0],
    })
    df.attrs["zscale"] = 5.0
    for near in (1, -1):
        f = render_nuclei_frame(df, 1, size=(256, 256), seed=0, optics=OpticsParams(near_side=near))
        cells = set(f.centroids["cell"])
        assert "EMS" in cells
        if near == 1:  # small z near: the big ABa (z=10) hides the small ABp (z=40)
            assert cells == {"ABa", "EMS"}
        else:  # large z near: ABp is in front and visible, ABa around it too
            assert cells == {"ABa", "ABp", "EMS"}
        assert f.labels.max() == len(cells)


def test_counts_match_populations(table):
    pop = populations(table).set_index("time")
    for t in (1, 3):
        f = render_nuclei_frame(table, t, size=(64, 64), seed=0)
        for k in ("A", "E", "M", "P", "C", "D", "Z", "total"):
            assert f.counts[k] == pop.loc[t, k]


def test_pose_default_fits_and_explicit_pose(table):
    f = render_nuclei_frame(table, 1, size=(512, 752), seed=0)
    ys, xs = np.nonzero(f.labels)
    assert xs.min() > 50 and xs.max() < 700 and ys.min() > 50 and ys.max() < 460
    assert xs.max() - xs.min() > 300  # the embryo fills a good part of the frame
    p = Pose(center=(100.0, 80.0), angle=np.pi / 2, scale=0.2)
    g = render_nuclei_frame(table, 1, size=(160, 200), seed=0, pose=p)
    ys, xs = np.nonzero(g.labels)
    assert abs(xs.mean() - 100) < 25 and abs(ys.mean() - 80) < 40
    assert ys.max() - ys.min() > xs.max() - xs.min()  # rotated: long axis vertical


def test_a_time_the_table_lacks_is_refused(table):
    from devolens.errors import DevolensValueError

    with pytest.raises(DevolensValueError, match="time point 99 not in the table"):
        render_nuclei_frame(table, 99, size=(64, 64), seed=0)


def test_simulated_embryo_renders():
    from devolens.lineage.simulate import simulate_embryo

    df = simulate_embryo(0, n_cells=60)
    t = int(df["time"].max())
    f = render_nuclei_frame(df, t, size=(256, 256), seed=1, pose="random")
    assert 0 < f.labels.max() <= (df["time"] == t).sum()
    assert f.counts["total"] == (df["time"] == t).sum()


def test_missing_sizes_and_positions_are_handled(table):
    df = table.copy()
    df.attrs = dict(table.attrs)
    df.loc[df.index[:5], "size"] = np.nan  # drawn at the table's median size
    f = render_nuclei_frame(df, 1, size=(128, 160), seed=0)
    n = int((df["time"] == 1).sum())
    assert 0 < f.labels.max() <= n
    from devolens.errors import DevolensValueError

    no_x = df.copy()
    no_x.attrs = dict(df.attrs)
    no_x.loc[df.index[5], "x"] = np.nan  # a nucleus without a position: refused, not drawn short of its count
    with pytest.raises(DevolensValueError, match="column 'x' must hold finite numbers"):
        render_nuclei_frame(no_x, int(df.loc[df.index[5], "time"]), size=(128, 160), seed=0)
    df["size"] = np.nan
    g = render_nuclei_frame(df, 1, size=(128, 160), seed=0)
    assert g.labels.max() > 0
