"""One rule for a table's time step (session 33): the readers' notes on holes and identify's tracklet links read the
same step (io.tables.time_step); identify alone falls back on the median difference where there is no regular step
(acquisition times in seconds), so such a table, and one of two time points, still links."""

from __future__ import annotations

import numpy as np
import pytest

from devolens.io.tables import read_table, time_step
from devolens.predict.identity import prepare_clouds, time_breaks

from test_s32_identity import moving_cells, one_track_per_cell, tracks_of
from test_s32_tables import tidy_csv

#: Acquisition times in seconds of 12 time points, 89-96 apart (as EPIC's TIME files hold: no regular step).
SECONDS = [0, 90, 179, 269, 360, 452, 545, 640, 735, 830, 926, 1021]


def test_the_rule():
    assert time_step([0, 90, 180]) == 90  # three time points, one step twice (was 1: "too short to tell")
    assert time_step([0, 90, 270]) == 1  # ... but a step and a hole are not told apart in three
    assert time_step([1, 4]) == 1 and time_step([1, 4], tolerant=True) == 3.0  # two: no step, the difference
    assert time_step([7]) == 1 and time_step([7], tolerant=True) == 1.0
    assert time_step(SECONDS) == 1 and time_step(SECONDS, tolerant=True) == 93.0
    assert time_step([0.5, 1.0, 1.5, 2.0, 3.0]) == 0.5  # (identify takes times that are no whole numbers)
    assert time_step(range(0, 900, 90), tolerant=True) == 90  # a regular step is the same either way
    assert isinstance(time_step(np.arange(0, 900, 90)), int)


def test_a_short_table_in_seconds_is_read_as_a_step(tmp_path):
    """0, 90, 180: the readers now say it steps by 90, as identify links it (they said nothing before: its "holes"
    1-89 and 91-179 were longer than the table and left out)."""
    df = read_table(tidy_csv(tmp_path / "short.csv", [0, 90, 180]))
    assert df.attrs.get("notes") == ["time points step by 90 (seconds? every 90th frame?): read as one time point "
                                     "per 90"]


@pytest.mark.parametrize("times", [[0, 90, 180], [0, 90], SECONDS], ids=["three", "two", "acquisition"])
def test_identify_still_links_a_short_or_uneven_table_in_seconds(times):
    df = moving_cells(times=len(times))
    ref_tracks, ref_parents = tracks_of(df)
    timed = df.assign(time=np.asarray(times)[df["time"].to_numpy() - 1])
    assert time_breaks(prepare_clouds(timed)) == []
    tracks, parents = tracks_of(timed)
    assert tracks.tolist() == ref_tracks.tolist() and parents.tolist() == ref_parents.tolist()
    assert one_track_per_cell(df, tracks)


def test_identify_reads_the_readers_step_on_a_table_with_many_holes():
    """Time points 1-5, 7, 9, 11, 14, 17, 20: the step is 1 (the most common difference, every difference a whole
    number of it), whatever most differences are; identify took the median difference, 2, and linked across
    missing time points (a whole time point missing is no link)."""
    times = np.array([1, 2, 3, 4, 5, 7, 9, 11, 14, 17, 20])
    df = moving_cells(times=len(times))
    holes = df.assign(time=times[df["time"].to_numpy() - 1])
    report: dict = {}
    tracks, _ = tracks_of(holes, report)
    assert report["toy"]["step"] == time_step(times) == 1
    assert len(np.unique(tracks)) == 7 * 60  # 1-5 and each later time point: a tracklet per cell
