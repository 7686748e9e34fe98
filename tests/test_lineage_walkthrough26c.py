"""A lineage biologist's walkthrough, third part: a lineage whose curation stopped (lineage cliffs), a damaged AceTree
nuclei file (a dip that recovers; a file without a valid nucleus), and a lone mistyped time point."""

from __future__ import annotations

import json
import zipfile

import pandas as pd
import pytest

from devolens.io.tables import read_table
from devolens.lineage import cliffs
from devolens.lineage.cliffs import clean_table, find_cliffs
from devolens.lineage.populations import populations
from _lineage_builders import acetree_files, growth_rows, lineage_rows, write_acetree_zip, write_cd
from _lineage_builders import run_cli as run


def flat(text: str) -> str:
    return " ".join(text.split())


def ramp(a: int, b: int, n: int) -> list[int]:
    return [round(a + (b - a) * i / (n - 1)) for i in range(n)]


# ----------------------------------------------------------------------------- 1. lineage cliffs
def stopped_lineages(tmp_path, name="CDstop.csv"):
    """AB grows 40 -> 200 over 40 time points; MS and C grow to 32 and 20, then their curation stops after time 25
    (no MS, no C row later): the total still grows."""
    n = 40
    ms = ramp(8, 32, 25) + [0] * 15
    c = ramp(4, 20, 25) + [0] * 15
    return write_cd(tmp_path / name, lineage_rows({"AB": ramp(40, 200, n), "MS": ms, "C": c}))


def test_a_lineage_whose_curation_stopped_is_a_lineage_cliff(tmp_path, capsys):
    cd = stopped_lineages(tmp_path)
    pops = populations(read_table(cd))
    assert pops["total"].diff().iloc[1:].min() > -60 and pops["total"].iloc[-1] > pops["total"].iloc[24]
    code, out, err = run(["lineage", "cliffs", str(cd), "--json"], capsys)
    assert code == 0, err
    got = json.loads(out)
    assert got["cliffs"] == [] and got["last_good_time"] == 40
    assert got["letters"] == [
        {"letter": "M", "time": 25, "before": 32, "after": 0, "first_bad_time": 26, "after_time": 26},
        {"letter": "C", "time": 25, "before": 20, "after": 0, "first_bad_time": 26, "after_time": 26}]
    code, out, _ = run(["lineage", "cliffs", str(cd)], capsys)
    assert "stop: no annotation cliff" in out
    assert "lineage cliff after time 25: the MS lineage (M) 32 -> 0 cells at time 26" in out
    assert "lineage cliff after time 25: the C lineage (C) 20 -> 0 cells at time 26" in out
    code, _, err = run(["lineage", "populations", str(cd), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and "note: lineage cliffs: the MS lineage (M) 32 -> 0 cells at time 26; the C lineage (C) " \
        "20 -> 0 cells at time 26" in flat(err) and "annotation cliff" not in err, err
    code, _, err = run(["lineage", "convert", str(cd), "--out", str(tmp_path / "t.csv")], capsys)
    assert code == 0 and "lineage cliffs: the MS lineage (M)" in flat(err), err
    # clean cuts at cliffs of the total only: nothing cut, the lineage cliffs said as a note
    code, out, err = run(["lineage", "clean", str(cd), "--out", str(tmp_path / "c.csv")], capsys)
    assert code == 0 and "no cliff" in err
    assert len(pd.read_csv(tmp_path / "c.csv")) == len(read_table(cd))
    assert "note: lineage cliffs: the MS lineage (M)" in flat(err) and "cleaned table keeps them" in flat(err), err


def test_letter_cliffs_only_where_a_lineage_stops_alone(tmp_path):
    n = 40
    ab = ramp(40, 200, n)
    # a lineage below 8 cells, a lineage that recovers, and a fall that is the total's (every lineage at once)
    few = lineage_rows({"AB": ab, "D": ramp(1, 5, 25) + [0] * 15})
    back = lineage_rows({"AB": ab, "MS": ramp(8, 32, 25) + [0] * 5 + ramp(33, 40, 10)})
    stop = lineage_rows({"AB": ramp(40, 200, 25) + [2] * 15, "MS": ramp(8, 32, 25) + [0] * 15})
    for name, rows in (("few", few), ("back", back), ("all", stop)):
        rep = find_cliffs(read_table(write_cd(tmp_path / f"CD{name}.csv", rows)))
        assert getattr(rep, "letters", None) == [], name
        assert "letters" not in rep.to_dict()
    assert find_cliffs(read_table(write_cd(tmp_path / "CDall.csv", stop))).cliffs  # the total's cliff says it
    assert find_cliffs(read_table(write_cd(tmp_path / "CDab.csv", growth_rows(40)))).letters == []
    # P and Z are never searched; a letter at 8 cells that falls to none is
    pops = pd.DataFrame({"time": range(1, 21), "A": [50] * 20, "E": [0] * 20, "M": [8] * 10 + [0] * 10,
                         "P": [1] * 20, "C": [0] * 20, "D": [0] * 20, "Z": [2] * 10 + [0] * 10})
    pops["total"] = pops[["A", "E", "M", "P", "C", "D", "Z"]].sum(axis=1)
    assert cliffs.detect_letter_cliffs(pops) == [cliffs.LetterCliff("M", 10, 8, 0, 11, 11)]


KNOWN_LETTER_CLIFFS = {"CD20240930_JIM762_L4": [("A", 164, 255, 0)], "CD20241107_JIM767_25_L1": [("A", 149, 287, 0)]}


def test_real_embryos_lineage_cliffs(epic_tables, capsys):
    """The L4 embryo's AB lineage stops (255 -> 0) at its end, as does the 20241107 L1 embryo's: their total cliff
    is that lineage's; the complete embryos have none."""
    for path in epic_tables:
        code, out, err = run(["lineage", "cliffs", str(path), "--json"], capsys)
        assert code == 0, err
        got = [(c["letter"], c["time"], c["before"], c["after"]) for c in json.loads(out).get("letters", [])]
        assert got == KNOWN_LETTER_CLIFFS.get(path.stem, []), path.name


# ----------------------------------------------------------------------------- 2. damaged AceTree files
def growing_frames(n_times: int = 30, base: int = 40) -> dict[int, list[tuple]]:
    """AceTree frames: ``base + t`` valid named nuclei at time t."""
    frames = {}
    for t in range(1, n_times + 1):
        frames[t] = [(1, 10 + k, 20 + t, 1.0 + k % 7, 12, f"AB{'ap'[k % 2]}{'lr'[(k // 2) % 2]}{'dv' * (k // 4)}")
                     for k in range(base + t)]
    return frames


def test_a_nuclei_file_cut_short_is_a_dip(tmp_path, capsys):
    files = acetree_files(growing_frames())
    text = files["nuclei/t015-nuclei"]
    files["nuclei/t015-nuclei"] = text[: int(len(text) * 0.45)].rsplit("\n", 1)[0] + "\n"  # cut at a line
    path = tmp_path / "cut.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    pops = populations(read_table(path))
    n15 = int(pops.loc[pops["time"] == 15, "total"].iloc[0])
    assert n15 < 30
    code, _, err = run(["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and (f"note: time 15 has {n15} cells between 54 and 56: a damaged or half-curated time point?"
                          in flat(err)) and "cliff" not in err, err
    code, out, _ = run(["lineage", "cliffs", str(path)], capsys)
    assert f"cut: dip: time 15 has {n15} cells between 54 and 56" in out and "no annotation cliff" in out
    code, out, _ = run(["lineage", "cliffs", str(path), "--json"], capsys)
    assert json.loads(out)["dips"] == [{"first_time": 15, "last_time": 15, "cells": [n15], "before": 54, "after": 56}]
    # a whole table without a dip says nothing of one
    whole = write_acetree_zip(tmp_path / "whole.zip", growing_frames())
    code, _, err = run(["lineage", "populations", str(whole), "--out", str(tmp_path / "q.csv")], capsys)
    assert code == 0 and "dip" not in err and "damaged" not in err, err


def test_detect_dips():
    n = [180, 185, 188, 86, 190, 192, 193, 100, 95, 196, 197]
    dips = cliffs.detect_dips(range(1, 12), n)
    assert [(d.first_time, d.last_time, d.cells, d.before, d.after) for d in dips] == [
        (4, 4, (86,), 188, 190), (8, 9, (100, 95), 193, 196)]
    assert cliffs.detect_dips(range(6), [100, 101, 60, 61, 62, 63]) == []  # a step down that stays: no dip
    assert cliffs.detect_dips(range(5), [100, 101, 102, 103, 20]) == []  # at the end: a cliff's business
    assert cliffs.detect_dips(range(5), [100, 101, 95, 103, 104]) == []  # within min_drop


def test_a_nuclei_file_without_a_valid_nucleus_is_noted(tmp_path, capsys):
    frames = growing_frames(8, 4)
    frames[5] = [(0, *r[1:]) for r in frames[5]]  # every nucleus deleted
    frames[6] = [(-1, *r[1:]) for r in frames[6]]  # or dead
    path = write_acetree_zip(tmp_path / "dead.zip", frames)
    df = read_table(path)
    assert sorted(df["time"].unique()) == [1, 2, 3, 4, 7, 8]
    assert df.attrs["notes"] == ["the nuclei files of time points 5-6 hold no valid nucleus (every line's status is "
                                 "0 or -1: deleted or dead): the table skips them (a damaged file, or nuclei deleted "
                                 "in AceTree?)"]
    code, _, err = run(["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and "time points 5-6 hold no valid nucleus" in flat(err), err
    one = write_acetree_zip(tmp_path / "one.zip", {**growing_frames(8, 4), 3: [(0, 1, 2, 3.0, 4, "ABa")]})
    assert read_table(one).attrs["notes"][0].startswith("the nuclei file of time point 3 holds no valid nucleus")
    # an empty file: its note alike, in the singular
    empty = write_acetree_zip(tmp_path / "empty.zip", {t: r for t, r in growing_frames(8, 4).items() if t != 3})
    with zipfile.ZipFile(empty, "a") as zf:
        zf.writestr("nuclei/t003-nuclei", "")
    assert read_table(empty).attrs["notes"] == [
        "the nuclei file of time point 3 is empty: the table skips it (files lost when the series was copied or "
        "zipped?)"]
    # no valid nucleus anywhere: one line, no traceback
    dead = write_acetree_zip(tmp_path / "alldead.zip", {t: [(0, *r[1:]) for r in rows]
                                                          for t, rows in growing_frames(3, 2).items()})
    code, out, err = run(["lineage", "populations", str(dead), "--out", str(tmp_path / "d.csv")], capsys)
    assert code == 2 and err.strip() == (f"error: {dead}: AceTree nuclei files hold no valid nucleus (every line's "
                                         "status is 0 or -1: deleted or dead)"), err
    assert not (tmp_path / "d.csv").exists()


# ----------------------------------------------------------------------------- 3. a lone mistyped time point
def test_a_lone_mistyped_time_is_no_cliff(tmp_path, capsys):
    rows = growth_rows(40, 20)
    rows.append(("ABal", 1050, 1.0, 500, 500, 10, 0))  # one row mistyped as time 1050
    cd = write_cd(tmp_path / "CDmistyped.csv", rows)
    code, _, err = run(["lineage", "populations", str(cd), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0, err
    assert ("note: time 1050 stands alone, 1010 time points after time 40 (1 cell): a mistyped time? (no annotation "
            "cliff; ") in flat(err) and "annotation cliff after" not in err and "curation stopped" not in err, err
    code, out, _ = run(["lineage", "cliffs", str(cd), "--json"], capsys)
    got = json.loads(out)
    assert got["cliffs"] == [] and got["last_good_time"] == 40
    assert got["lone_times"] == [{"time": 1050, "cells": 1, "nearest": 40}]
    code, out, _ = run(["lineage", "cliffs", str(cd)], capsys)
    assert "mistyped: no annotation cliff; last good time point 40" in out and "time 1050 stands alone" in out
    assert "cliff after time" not in out
    # clean drops it, saying why (no cliff cut)
    code, out, err = run(["lineage", "clean", str(cd), "--out", str(tmp_path / "c.csv")], capsys)
    assert code == 0 and "no cliff" in err and "dropped 1 row(s) at time 1050, standing alone (a mistyped time?)" in err
    assert pd.read_csv(tmp_path / "c.csv")["time"].max() == 40
    clean, rep = clean_table(read_table(cd))
    assert rep.lone_rows == 1 and rep.rows_after_cliff == 0 and rep.cliffs.cliffs == []


def test_lone_times_rule():
    assert cliffs.lone_times(range(1, 41), range(21, 61)) == []
    t = list(range(500, 541))
    lone = cliffs.lone_times([3] + t, [1] + list(range(21, 62)))  # mistyped before the rest
    assert [(x.time, x.cells, x.nearest) for x in lone] == [(3, 1, 500)]
    assert cliffs.lone_times(list(range(1, 41)) + [60], list(range(21, 61)) + [1]) == []  # a gap shorter than the table
    # far beyond the run's own gaps: lone whatever its count (a mistyped time; the forty-second session)
    assert [x.time for x in cliffs.lone_times(list(range(1, 41)) + [1050], list(range(21, 61)) + [60])] == [1050]
    two = cliffs.lone_times(list(range(1, 41)) + [1050, 5000], list(range(21, 61)) + [1, 2])
    assert [x.time for x in two] == [1050, 5000]
    times = [t for t in range(1, 7) for _ in range(29 + t)] + [900]
    df = pd.DataFrame({"time": times, "cell": [f"Nuc{i}" for i in range(len(times))]})
    rep = find_cliffs(df)
    assert rep.cliffs == [] and rep.last_good_time == 6 and [x.time for x in rep.lone] == [900]


# ----------------------------------------------------------------------------- review 26b: sparse tables, names stop
def test_a_sparse_table_has_no_lone_time(tmp_path, capsys):
    """Time points 1, 40, 80, 120, 160 are a sparse table, not four mistyped times: clean keeps every row."""
    assert cliffs.lone_times([1, 10], [4, 100]) == []
    assert cliffs.lone_times([1, 40, 80, 120, 160], [4, 28, 90, 180, 350]) == []
    assert cliffs.lone_times([1, 40, 80, 120, 160, 200, 240], [4, 28, 90, 180, 350, 400, 450]) == []
    assert cliffs.lone_times([1, 2, 3, 500, 501, 502, 503], [1, 2, 3, 40, 41, 42, 43]) == []  # no real main run
    assert cliffs.lone_times(range(1, 401, 10), range(21, 61)) == []  # sampled every 10 time points: one run
    # the mistyped time stays lone: 1..140 and one row at 1050; a sparse main run too
    one = cliffs.lone_times(list(range(1, 141)) + [1050], list(range(21, 161)) + [1])
    assert [(x.time, x.cells, x.nearest) for x in one] == [(1050, 1, 140)]
    assert [x.time for x in cliffs.lone_times(list(range(1, 401, 10)) + [5000], list(range(21, 61)) + [1])] == [5000]
    rows = [(f"AB{'ap'[k % 2]}{'lr'[(k // 2) % 2]}{'dv' * (k // 4)}", t, 1.0, 10 + k, 20, 10, 0)
            for t, n in ((1, 4), (40, 28), (80, 90), (120, 180), (160, 350)) for k in range(n)]
    cd = write_cd(tmp_path / "CDsparse.csv", rows)
    code, out, err = run(["lineage", "clean", str(cd), "--out", str(tmp_path / "c.csv")], capsys)
    assert code == 0 and "standing alone" not in out and "mistyped" not in err, (out, err)
    assert len(pd.read_csv(tmp_path / "c.csv")) == len(read_table(cd))
    code, out, _ = run(["lineage", "cliffs", str(cd), "--json"], capsys)
    assert "lone_times" not in json.loads(out)


AP = str.maketrans("01", "ap")


def unnamed_after(tmp_path, stop: int = 10, n_times: int = 20):
    """A, E and M named up to time ``stop``; later every cell annotated unnamed ('Nuc...'), the total growing."""
    rows = []
    for t in range(1, n_times + 1):
        n = 40 + 2 * t
        if t > stop:
            names = [f"Nuc{i}" for i in range(n)]
        else:
            names = ([f"AB{i:06b}".translate(AP) for i in range(n // 2)] + [f"E{i:06b}".translate(AP)
                     for i in range(n // 4)] + [f"MS{i:06b}".translate(AP) for i in range(n - n // 2 - n // 4)])
        rows += [dict(embryo="e", time=t, cell=c, x=float(i), y=0.0, z=0.0, size=5.0) for i, c in enumerate(names)]
    path = tmp_path / "unnamed.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_names_that_stop_are_said_once_not_as_a_cliff_per_lineage(tmp_path, capsys):
    path = unnamed_after(tmp_path)
    rep = find_cliffs(read_table(path))
    assert rep.cliffs == [] and rep.letters == []
    assert rep.names_stop == cliffs.Cliff(time=10, before=60, after=0, first_bad_time=11, after_time=11)
    got = rep.to_dict()
    assert "letters" not in got and got["names_stop"] == {"time": 10, "before": 60, "after": 0, "first_bad_time": 11,
                                                          "after_time": 11}
    code, _, err = run(["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and flat(err).count("names stop after time 10 (later cells unnamed") == 1, err
    assert "note: lineage cliff" not in err and "annotation cliff" not in err, err
    code, out, _ = run(["lineage", "cliffs", str(path)], capsys)
    assert "names stop after time 10 (later cells unnamed" in out and "lineage cliff" not in out
    # a table named to its end has no such key; one lineage stopping alone is still a lineage cliff
    assert "names_stop" not in find_cliffs(read_table(stopped_lineages(tmp_path))).to_dict()
    assert [c.letter for c in find_cliffs(read_table(stopped_lineages(tmp_path))).letters] == ["M", "C"]


def test_a_lineage_falling_with_the_total_is_noted_as_the_totals_cliff(tmp_path, capsys):
    """AB stops at time 30 (200 -> 0) while MS goes on: the total's cliff says it; no lineage cliff note."""
    rows = lineage_rows({"AB": ramp(40, 200, 30) + [0] * 10, "MS": ramp(10, 40, 40)})
    cd = write_cd(tmp_path / "CDab.csv", rows)
    rep = find_cliffs(read_table(cd))
    assert [c.first_bad_time for c in rep.cliffs] == [31] and [c.first_bad_time for c in rep.letters] == [31]
    for cmd in ("populations", "convert"):
        code, _, err = run(["lineage", cmd, str(cd), "--out", str(tmp_path / f"{cmd}.csv")], capsys)
        assert code == 0 and "annotation cliff after time 30" in flat(err) and "note: lineage cliff" not in err, err


def test_several_lone_times_are_dropped_as_them(tmp_path, capsys):
    rows = growth_rows(40, 20)
    rows += [("ABal", 1050, 1.0, 500, 500, 10, 0), ("ABar", 5000, 1.0, 500, 500, 10, 0)]
    cd = write_cd(tmp_path / "CDtwo.csv", rows)
    code, _, err = run(["lineage", "populations", str(cd), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and "--out CLEAN.csv` drops them)" in flat(err) and "drops it)" not in err, err
    one = write_cd(tmp_path / "CDone.csv", growth_rows(40, 20) + [("ABal", 1050, 1.0, 500, 500, 10, 0)])
    code, _, err = run(["lineage", "populations", str(one), "--out", str(tmp_path / "q.csv")], capsys)
    assert code == 0 and "--out CLEAN.csv` drops it)" in flat(err), err

