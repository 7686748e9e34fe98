"""Lineage tables damaged in ways that must not pass silently (s42): a table naming founders only, noise after a
cliff, a mistyped time point holding a normal count."""

from __future__ import annotations

import json

import pytest

from _lineage_builders import growth_rows, run_cli, write_cd


# ----------------------------------------------------------------------------- 1. clean on a founders-only table
def _founders_rows(n_times: int = 20) -> list[tuple]:
    """``growth_rows`` with each cell renamed to its founder (AB, MS, E...): many rows share a name, each a nucleus
    at its own place."""
    founders = ("AB", "MS", "E", "C", "D", "P4")
    return [(founders[k % len(founders)], t, z, x, y, s, b)
            for k, (_, t, z, x, y, s, b) in enumerate(growth_rows(n_times, 20))]


def test_clean_refuses_a_table_that_names_founders_only(tmp_path, capsys):
    cd = write_cd(tmp_path / "CDfounders.csv", _founders_rows())
    out = tmp_path / "clean.csv"
    code, _, err = run_cli(["lineage", "clean", str(cd), "--out", str(out)], capsys)
    assert code == 2
    assert "names founders or lineages only" in err and "lineage populations" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not out.with_name("clean.meta.json").exists()


def test_clean_still_drops_a_few_repeated_names_and_a_table_saved_twice(tmp_path, capsys):
    rows = growth_rows(20, 20)
    # a handful of repeated names (well under a tenth of the rows): dropped as before
    few = rows + [(c, t, z, x + 500, y, s, b) for (c, t, z, x, y, s, b) in rows[:5]]
    out = tmp_path / "few.csv"
    code, stdout, err = run_cli(["lineage", "clean", str(write_cd(tmp_path / "CDfew.csv", few)), "-o", str(out)], capsys)
    assert code == 0, err
    assert "dropped 5 duplicated-name row(s)" in stdout + err
    # a table saved twice (exact copies of every row: the same nuclei) is not a founders table
    out = tmp_path / "twice.csv"
    code, stdout, err = run_cli(["lineage", "clean", str(write_cd(tmp_path / "CDtwice.csv", rows + rows)),
                                 "-o", str(out)], capsys)
    assert code == 0, err
    assert f"{len(rows)} of {2 * len(rows)} rows" in stdout + err


# ----------------------------------------------------------------------------- 2. no dips after a cliff
def _cliff_then_noise(path):
    """21..60 cells at times 1..40, then curation stopped: 30 cells at times 41..50 but 15 at time 45 (noise of the
    uncurated part, no dip that recovers)."""
    rows = growth_rows(40, 20)
    for t in range(41, 51):
        rows += [(f"Nuc{k}", t, 1.0, k, k, 10, 0) for k in range(15 if t == 45 else 30)]
    return write_cd(path, rows)


def test_no_dip_is_reported_after_a_cliff(tmp_path, capsys):
    cd = _cliff_then_noise(tmp_path / "CDcliff.csv")
    code, out, err = run_cli(["lineage", "cliffs", str(cd), "--json"], capsys)
    assert code == 0, err
    rep = json.loads(out)
    assert [c["time"] for c in rep["cliffs"]] == [40] and rep["last_good_time"] == 40
    assert rep.get("dips", []) == []
    code, out, err = run_cli(["lineage", "cliffs", str(cd)], capsys)
    assert code == 0 and "cliff after time 40" in out + err and "dip that recovers" not in out + err
    code, out, err = run_cli(["lineage", "populations", str(cd), "-o", str(tmp_path / "pop.csv")], capsys)
    assert code == 0, err
    assert "cliff" in out + err and "dip that recovers" not in out + err


def test_a_dip_before_a_cliff_is_still_reported():
    import pandas as pd

    from devolens.lineage.cliffs import find_cliffs

    rows = []
    for t in range(1, 41):
        n = 10 if t == 20 else 20 + t  # a damaged time point at 20
        rows += [{"time": t, "cell": f"ABa{'lr'[k % 2]}{'ap' * (k // 2)}"} for k in range(n)]
    for t in range(41, 51):
        rows += [{"time": t, "cell": ""} for _ in range(15 if t == 45 else 30)]
    rep = find_cliffs(pd.DataFrame(rows))
    assert [c.time for c in rep.cliffs] == [40]
    assert [(d.first_time, d.last_time) for d in rep.dips] == [(20, 20)]


# ----------------------------------------------------------------------------- 3. a mistyped time, a normal count
def test_a_mistyped_time_with_a_normal_count_is_lone(tmp_path, capsys):
    """Time 28 of 1..30 typed 280: its count is as large as its neighbours', yet it stands 250 time points after the
    run, whose own gaps are at most 2: a mistyped time, not the last good time point."""
    rows = [(c, 280 if t == 28 else t, z, x, y, s, b) for (c, t, z, x, y, s, b) in growth_rows(30, 20)]
    cd = write_cd(tmp_path / "CDlone.csv", rows)
    code, out, err = run_cli(["lineage", "cliffs", str(cd), "--json"], capsys)
    assert code == 0, err
    rep = json.loads(out)
    assert rep["last_good_time"] == 30 and rep["cliffs"] == []
    assert rep["lone_times"] == [{"time": 280, "cells": 48, "nearest": 30, "missing": 28}]
    code, out, err = run_cli(["lineage", "cliffs", str(cd)], capsys)
    assert "time 280 stands alone" in out and "a mistyped time? (time 28 is missing: 280 mistyped?)" in out
    clean = tmp_path / "clean.csv"
    code, out, err = run_cli(["lineage", "clean", str(cd), "--out", str(clean)], capsys)
    assert code == 0, err
    meta = json.loads(clean.with_name("clean.meta.json").read_text())["clean"]
    assert meta["lone_rows"] == 48 and meta["cut_after_time"] is None
    assert ",280," not in clean.read_text()


def test_lone_times_whatever_the_count_only_when_far_beyond_the_runs_own_gaps():
    from devolens.lineage.cliffs import LoneTime, lone_times

    t = list(range(1, 28)) + [29, 30]
    n = [20 + x for x in t]
    # far away (250 time points; the run's gaps at most 2): lone, its count normal; time 28 named as missing
    assert lone_times(t + [280], n + [48]) == [LoneTime(time=280, cells=48, nearest=30, step=1, missing=28)]
    # two time points missing: none named
    (x,) = lone_times([x for x in t if x != 10] + [280], [y for x, y in zip(t, n) if x != 10] + [48])
    assert x.missing is None
    # a run with a gap of its own of 5 and a point 40 after it (within 10x that gap): a normal count is not lone
    t2 = list(range(1, 11)) + list(range(15, 31))
    assert lone_times(t2 + [70], [20 + x for x in t2] + [60]) == []
    # ... but a point holding few cells there still is, as before
    assert [x.time for x in lone_times(t2 + [70], [20 + x for x in t2] + [5])] == [70]
    # a short table (its ends only): a normal count is not lone there (of 3-5 time points, which is mistyped?)
    assert lone_times([1, 2, 3, 4, 1050], [21, 22, 23, 24, 25]) == []


# ----------------------------------------------------------------------------- 4. a mistyped name, said as such
def test_a_name_that_is_no_sulston_name_is_said_apart_from_unnamed_rows(tmp_path, capsys):
    rows = growth_rows(10, 20)
    rows[30] = ("ABalxp",) + rows[30][1:]  # a mistyped letter
    rows[40] = ("Nuc7",) + rows[40][1:]  # a placeholder: unnamed
    t_bad = rows[30][1]
    cd = write_cd(tmp_path / "CDmis.csv", rows)
    for argv in (["lineage", "populations", str(cd), "-o", str(tmp_path / "p.csv")], ["lineage", "cliffs", str(cd)]):
        code, out, err = run_cli(argv, capsys)
        assert code == 0, err
        text = out + err
        assert f"1 row carries a name that is no Sulston name ('ABalxp' at time {t_bad}" in text
        assert "1 row (under 1 %) has no Sulston cell name" in text  # Nuc7 only


def test_invalid_names_note_lists_three_names_and_says_how_many_more():
    import pandas as pd

    from devolens.lineage.populations import invalid_names_note, unnamed_rows

    df = pd.DataFrame({"time": [1, 1, 2, 2, 3, 3], "cell": ["ABpx", "ABalxp", "MSpq", "Cax", "ABa", ""]})
    note = invalid_names_note(df)
    assert note.startswith("4 rows carry a name that is no Sulston name ('ABpx' at time 1, 'ABalxp' at time 1, "
                           "'MSpq' at time 2 and 1 more")
    assert unnamed_rows(df) == 1  # the empty name only
    assert invalid_names_note(pd.DataFrame({"time": [1, 2], "cell": ["Cell", "Nuc3"]})) is None
