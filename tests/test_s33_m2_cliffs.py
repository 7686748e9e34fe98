"""cliffs on a table in seconds (session 33): a lone time point is found, and said, in the table's own time points
(one per its step, as the readers' note on the step reads them), not in raw units."""

from __future__ import annotations

import json

from devolens.lineage.cliffs import LoneTime, lone_times
from _lineage_builders import growth_rows, run_cli, write_cd


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_lone_time_point_is_said_in_the_tables_time_points(tmp_path, capsys):
    said = {}
    for step in (1, 90):
        rows = [(c, t * step, z, x, y, s, b) for c, t, z, x, y, s, b in growth_rows(40, 20)]
        rows.append(("ABal", 1050 * step, 1.0, 500, 500, 10, 0))  # one row mistyped far after the rest
        cd = write_cd(tmp_path / f"CDstep{step}.csv", rows)
        code, out, err = run_cli(["lineage", "cliffs", str(cd)], capsys)
        assert code == 0, err
        said[step] = out.replace(f"CDstep{step}", "T")
        assert ("read as one time point per 90" in flat(err)) is (step == 90)
        code, out, _ = run_cli(["lineage", "cliffs", str(cd), "--json"], capsys)
        assert json.loads(out)["lone_times"] == [{"time": 1050 * step, "cells": 1, "nearest": 40 * step}]
    assert "time 1050 stands alone, 1010 time points after time 40 (1 cell)" in said[1]
    # (was "90900 time points after time 3600", below the note "read as one time point per 90")
    assert "time 94500 stands alone, 1010 time points after time 3600 (1 cell)" in said[90]


def test_lone_times_counts_missing_time_points_in_steps():
    """1..100 and one row at 200 is no lone time point (fewer time points missing than the table has); the same
    table in seconds at 90 s was one (8999 "time points" missing)."""
    t = list(range(1, 101)) + [200]
    n = list(range(21, 121)) + [1]
    assert lone_times(t, n) == [] and lone_times([90 * x for x in t], n) == []
    t = list(range(1, 141)) + [1050]
    n = list(range(21, 161)) + [1]
    plain, seconds = lone_times(t, n), lone_times([90 * x for x in t], n)
    assert [(x.time, x.nearest, x.step, x.time_points) for x in plain] == [(1050, 140, 1, 910)]
    assert [(x.time, x.nearest, x.step, x.time_points) for x in seconds] == [(94500, 12600, 90, 910)]
    assert LoneTime(time=3, cells=1, nearest=500).time_points == 497  # before the rest; step 1 unless told
