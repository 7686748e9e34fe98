"""Session 51: a TIFF timelapse whose metadata record its interval (ImageJ ``finterval``, OME ``TimeIncrement``) gets
each row's seconds in ``counts.csv`` (segment) and population's CSV (``time_s``), and population's plot is drawn in
minutes. Before, a microscope's timelapse gave only frame numbers, and its interval sat in the JSON record. Inputs
that record no filming interval (a video's timestamps are its playback's, a folder's names) get no column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)


def _frames(n: int, size=(48, 64)) -> np.ndarray:
    rng = np.random.default_rng(0)
    out = np.zeros((n, *size), np.uint8)
    for i in range(n):
        for _ in range(2 + i):
            y, x = rng.integers(6, size[0] - 6), rng.integers(6, size[1] - 6)
            out[i, y - 4:y + 4, x - 4:x + 4] = 200
    return out


def test_stack_seconds_only_for_a_stack_that_records_its_interval():
    from devolens.cli.predict import _stack_seconds

    assert _stack_seconds({"interval_s": 150.0}, [0, 1, 3]) == [0.0, 150.0, 450.0]
    assert _stack_seconds({"interval_s": 0.5}, [0, 1]) == [0.0, 0.5]
    assert _stack_seconds({"interval_s": None}, [0, 1]) is None  # none recorded
    assert _stack_seconds({"interval_s": 60.0, "file": "a.tif"}, [0, 1]) is None  # a folder's first stack
    assert _stack_seconds(None, [0, 1]) is None  # no stack


def test_segment_counts_give_a_stacks_seconds(tiny_zoo, tmp_path):  # noqa: F811
    from devolens.cli import main

    stack = np.stack([_frames(3)] * 2, axis=1)  # TZYX: 3 time points, 2 planes
    path = tmp_path / "tz.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TZYX", "finterval": 2.5, "tunit": "min"})
    assert main(["segment", "nuclei", str(path), "--out", str(tmp_path / "seg"), "--no-overlay"]) == 0
    counts = pd.read_csv(tmp_path / "seg" / "counts.csv")
    assert list(counts.columns) == ["frame", "count", "time_s"] and list(counts["time_s"]) == [0, 150, 300]
    # each plane a frame: the time point's seconds on each of its planes
    assert main(["segment", "nuclei", str(path), "--stack-z", "slices", "--out", str(tmp_path / "sl"),
                 "--no-overlay"]) == 0
    counts = pd.read_csv(tmp_path / "sl" / "counts.csv")
    assert list(counts.columns) == ["frame", "t", "z", "count", "time_s"]
    assert list(counts["time_s"]) == [0, 0, 150, 150, 300, 300]
    # no interval recorded: no column
    tifffile.imwrite(tmp_path / "plain.tif", _frames(3), imagej=True, metadata={"axes": "TYX"})
    assert main(["segment", "nuclei", str(tmp_path / "plain.tif"), "--out", str(tmp_path / "p"),
                 "--no-overlay"]) == 0
    assert list(pd.read_csv(tmp_path / "p" / "counts.csv").columns) == ["frame", "count"]


@pytest.mark.parametrize("ome", [False, True])
def test_population_gives_a_stacks_seconds_and_plots_minutes(tiny_zoo, tmp_path, monkeypatch, ome):  # noqa: F811
    from devolens.cli import main
    import devolens.viz.plots as plots

    path = tmp_path / ("t.ome.tif" if ome else "t.tif")
    if ome:
        tifffile.imwrite(path, _frames(4), ome=True, metadata={"axes": "TYX", "TimeIncrement": 0.5,
                                                                "TimeIncrementUnit": "min"})
    else:
        tifffile.imwrite(path, _frames(4), imagej=True, metadata={"axes": "TYX", "finterval": 30})
    drawn = {}
    real = plots.plot_populations

    def spy(pops, out, **kw):
        drawn.update(time=list(pops["time"]), xlabel=kw.get("xlabel"), columns=list(pops.columns))
        return real(pops, out, **kw)

    monkeypatch.setattr(plots, "plot_populations", spy)
    out = tmp_path / "p.csv"
    assert main(["population", str(path), "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["frame", "A", "E", "M", "P", "C", "D", "Z", "total", "time_s"]
    assert list(df["time_s"]) == [0, 30, 60, 90]
    assert drawn["time"] == [0, 0.5, 1.0, 1.5] and drawn["xlabel"].startswith("time (minutes")
    assert "time_s" not in drawn["columns"]
    assert json.loads(out.with_suffix(".json").read_text())["stack"]["interval_s"] == 30.0
