"""QA fixes around reading lineage tables: --plot formats, repeated rows, EPIC companion files given as
tables, and identity prediction on duplicated nuclei or a mistyped time point."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io.tables import detect_format, drop_duplicate_rows, read_table
from devolens.predict.identity import (
    duplicate_nuclei,
    prepare_clouds,
    time_breaks,
    tracklets,
)

from _lineage_builders import SMALL_FRAMES, write_acetree_zip, write_cd

from _identity_helpers import DEPTH1, FOUNDERS, ZOO_OK, needs_zoo, random_predictor  # noqa: F401


def run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def cd_rows(n_times: int = 4) -> list[tuple]:
    """(cell, time, z, x, y, size, blot) rows of a small embryo: 2, 4, 6, ... named cells."""
    names = ["ABa", "ABp", "EMS", "P2", "ABal", "ABar", "MS", "E"]
    return [(names[k], t, 2.0 + k, 10 * k + t, 5 * k, 20, -k) for t in range(1, n_times + 1)
            for k in range(min(2 * t, len(names)))]


# ----------------------------------------------------------------------------- --plot
@pytest.mark.parametrize("out_name, name, expect", [
    ("pops.csv", "pops.txt", "--plot must end in .png, .svg, .pdf, .jpg, .jpeg (the image format), got '.txt'"),
    ("pops.csv", "pops", "got no extension"),
    ("pops.png", "pops.png", "--plot and --out are the same file"),
])
def test_populations_plot_format_checked_before_any_work(tmp_path, capsys, out_name, name, expect):
    """`--plot o/lp.txt` was a matplotlib traceback after the table had been read."""
    cd = write_cd(tmp_path / "CDp.csv", cd_rows())
    out, plot = tmp_path / "o" / out_name, tmp_path / "o" / name
    code, stdout, err = run(["lineage", "populations", str(cd), "--out", str(out), "--plot", str(plot)], capsys)
    assert code == 2 and stdout == ""
    assert err.startswith("error: ") and expect in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".JPG", b"\xff\xd8")])
def test_populations_plot_other_formats(tmp_path, capsys, suffix, magic):
    cd = write_cd(tmp_path / "CDp.csv", cd_rows())
    plot = tmp_path / f"pops{suffix}"
    code, _, err = run(["lineage", "populations", str(cd), "--out", str(tmp_path / "p.csv"), "--plot", str(plot)],
                       capsys)
    assert code == 0, err
    assert plot.read_bytes()[: len(magic)] == magic


# ----------------------------------------------------------------------------- repeated rows
def test_drop_duplicate_rows_keeps_order_attrs_and_conflicts(tmp_path):
    rows = cd_rows()
    cd = write_cd(tmp_path / "CDd.csv", rows + rows[:3] + [("ABa", 1, 9.0, 99, 99, 20, 0)])
    df = read_table(cd)
    clean, dup = drop_duplicate_rows(df)
    assert dup.exact == 3 and dup.same_name == 1 and dup.first_same_name == (1, "ABa")
    assert len(clean) == len(rows) + 1
    assert clean.attrs == df.attrs
    assert clean["time"].is_monotonic_increasing and clean.index.equals(pd.RangeIndex(len(clean)))
    # the ABa at another position is kept (which one is right is not known), after the first ABa
    aba = clean[(clean.time == 1) & (clean.cell == "ABa")]
    assert aba["x"].tolist() == [1.0, 99.0]
    _, none = drop_duplicate_rows(clean.drop_duplicates(["time", "cell"]).reset_index(drop=True))
    assert none.exact == 0 and none.same_name == 0


def test_drop_duplicate_rows_no_copies_is_the_same_table(tmp_path):
    df = read_table(write_cd(tmp_path / "CDn.csv", cd_rows()))
    clean, dup = drop_duplicate_rows(df)
    assert clean is df and (dup.exact, dup.same_name) == (0, 0)


def test_drop_duplicate_rows_tidy_extra_column_and_unnamed(tmp_path):
    t = pd.DataFrame({"time": [1, 1, 1, 1, 2], "cell": ["", "", "", "ABa", "ABa"], "x": [1.0, 1.0, 2.0, 3.0, 3.0],
                      "y": 0.0, "z": 0.0, "track": [7, 7, 8, 9, 9]})
    t = pd.concat([t, t.iloc[[3]].assign(track=10)], ignore_index=True)  # same nucleus, another track id
    t.to_csv(tmp_path / "tidy.csv", index=False)
    clean, dup = drop_duplicate_rows(read_table(tmp_path / "tidy.csv"))
    # unnamed nuclei are copies only at the same position; a differing extra column is not a copy
    assert dup.exact == 1 and dup.same_name == 1
    assert clean["x"].tolist() == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_acetree_line_repeated(tmp_path):
    frames = {t: list(rows) for t, rows in SMALL_FRAMES.items()}
    frames[2] = frames[2] + [frames[2][0], frames[2][4]]  # ABal and the unnamed Nuc7 twice
    z = write_acetree_zip(tmp_path / "emb.zip", frames)
    clean, dup = drop_duplicate_rows(read_table(z))
    assert dup.exact == 2 and dup.same_name == 0
    assert clean["cell"].tolist() == ["ABa", "P1", "ABal", "ABar", "EMS", "Nuc7"]


def test_populations_and_convert_drop_a_doubled_table_with_a_note(tmp_path, capsys):
    rows = cd_rows()
    once = write_cd(tmp_path / "CDonce.csv", rows)
    twice = write_cd(tmp_path / "CDtwice.csv", [r for r in rows for _ in range(2)])
    code, out1, err1 = run(["lineage", "populations", str(once), "--out", str(tmp_path / "p1.csv")], capsys)
    assert code == 0 and len(err1.strip().splitlines()) == 1  # the summary line only: no note
    code, out2, err2 = run(["lineage", "populations", str(twice), "--out", str(tmp_path / "p2.csv")], capsys)
    summary2 = [line for line in err2.splitlines() if line.startswith("wrote ")]  # on stderr, with the notes
    notes2 = [line for line in err2.splitlines() if line.strip() and not line.startswith("wrote ")]
    assert code == 0 and out1 == out2 == "" and summary2 == [err1.strip().replace("p1.csv", "p2.csv")]
    assert "up to 8 cells" in summary2[0]
    assert (tmp_path / "p1.csv").read_bytes() == (tmp_path / "p2.csv").read_bytes()
    assert notes2 == [f"note: dropped {len(rows)} row(s) that repeat an earlier row exactly (same cell, time "
                      "point and position)"]
    code, out, err = run(["lineage", "convert", str(twice), "--out", str(tmp_path / "tidy.csv")], capsys)
    assert code == 0 and f"{len(rows)} rows" in err and f"dropped {len(rows)} row(s)" in err
    assert len(err.strip().splitlines()) == 2  # the summary line and the note
    # clean still sees (and reports) the repeated names
    code, out, err = run(["lineage", "clean", str(twice), "--out", str(tmp_path / "clean.csv")], capsys)
    assert code == 0 and f"dropped {len(rows)} duplicated-name row(s)" in err


def test_populations_keeps_a_conflicting_name_and_says_so(tmp_path, capsys):
    cd = write_cd(tmp_path / "CDc.csv", cd_rows() + [("ABp", 2, 3.0, 50, 50, 20, 0)])
    code, out, err = run(["lineage", "populations", str(cd), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0
    assert "1 row(s) repeat a cell name at one time point with another position" in err and "ABp at time 2" in err
    assert pd.read_csv(tmp_path / "p.csv")["total"].tolist() == [2, 5, 6, 8]


# ----------------------------------------------------------------------------- EPIC companion files
def companions(folder):
    time_file = folder / "TIME20240101_T_L1.csv"
    time_file.write_text("20240101_T_L1\t1\t0\t0\n20240101_T_L1\t2\t90\t90\n")
    aux = folder / "20240101_T_L1AuxInfo.csv"
    aux.write_text("name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis\n"
                   "20240101_T_L1,0.5,-24.2,380,384,598,396,48.4,39.5,4.86,89,5.7471,PDR\n")
    return time_file, aux


@pytest.mark.parametrize("command", [["lineage", "convert"], ["lineage", "populations"], ["identify"]])
def test_epic_companion_files_are_named_as_such(tmp_path, capsys, command):
    time_file, aux = companions(tmp_path)
    write_cd(tmp_path / "CD20240101_T_L1.csv", cd_rows())
    for path, kind in ((time_file, "an EPIC time file"), (aux, "an EPIC AuxInfo file")):
        code, out, err = run(command + [str(path), "--out", str(tmp_path / "o.csv")], capsys)
        assert code == 2 and out == "" and not (tmp_path / "o.csv").exists()
        assert err.startswith(f"error: {path}: {kind}") and len(err.strip().splitlines()) == 1
        assert "not a lineage table: give the CD*.csv table of the embryo (here CD20240101_T_L1.csv" in err
        assert "separated by tabs" not in err and "unrecognised columns" not in err


def test_epic_time_file_recognised_by_content(tmp_path):
    time_file, _ = companions(tmp_path)
    renamed = tmp_path / "timing.csv"
    renamed.write_bytes(time_file.read_bytes())
    with pytest.raises(DevolensError, match="EPIC time file.*it picks up its AuxInfo and TIME files"):
        detect_format(renamed)
    numbers = tmp_path / "numbers.csv"  # headerless numbers separated by tabs: not called a TIME file
    numbers.write_text("1\t2\t3\n4\t5\t6\n")
    with pytest.raises(DevolensError, match="unrecognised columns"):  # (tabs are read: no advice to use commas)
        detect_format(numbers)
    tsv = tmp_path / "tsv.csv"  # a tidy table separated by tabs: read as such (test_s44_small)
    tsv.write_text("cell\ttime\tx\ty\tz\nABa\t1\t1\t2\t3\n")
    assert detect_format(tsv) == "tidy"


# ----------------------------------------------------------------------------- identity input
def small_embryo(seed: int = 0, times: int = 5) -> pd.DataFrame:
    """Random nuclei in an elongated cloud, 6..14 per time point (no names)."""
    rng = np.random.default_rng(seed)
    parts = []
    for t in range(1, times + 1):
        n = 4 + 2 * t
        p = rng.normal(0, 1, size=(n, 3)) * [60, 35, 6]
        parts.append(pd.DataFrame({"embryo": "toy", "time": t, "x": 300 + p[:, 0], "y": 250 + p[:, 1],
                                   "z": 20 + p[:, 2], "size": rng.uniform(20, 30, n)}))
    df = pd.concat(parts, ignore_index=True)
    df.attrs["zscale"] = 5.0
    return df


def test_duplicate_nuclei_maps_every_copy_to_its_original():
    df = small_embryo()
    assert duplicate_nuclei(df) is None
    df["cell"] = ""
    doubled = pd.concat([df, df.iloc[::-1]], ignore_index=True)
    first = duplicate_nuclei(doubled)
    n = len(df)
    assert first[:n].tolist() == list(range(n)) and first[n:].tolist() == list(range(n))[::-1]
    named = df.assign(cell=[f"c{i}" for i in range(n)])
    other_name = pd.concat([named, named.iloc[[0]].assign(cell="other")], ignore_index=True)
    assert duplicate_nuclei(other_name) is None  # same position, another name: another nucleus


@pytest.mark.parametrize("smooth", ["none", "lineage"])
def test_copies_get_their_originals_prediction(smooth):
    pred = random_predictor(smooth)
    df = small_embryo()
    base = pred.predict(df)
    assert base.attrs["duplicate_nuclei"] == 0
    order = np.random.default_rng(1).permutation(len(df))
    doubled = pd.concat([df, df.iloc[order]], ignore_index=True)
    doubled.attrs = dict(df.attrs)
    out = pred.predict(doubled)
    assert len(out) == len(doubled) and out.index.equals(doubled.index)
    assert out.attrs["duplicate_nuclei"] == len(df)
    n = len(df)
    for col in ("pred_founder", "pred_depth1", "confidence"):
        assert out[col].iloc[:n].tolist() == base[col].tolist()
        assert out[col].iloc[n:].tolist() == base[col].iloc[order].tolist()
    pf, pd1 = pred.predict_proba(doubled)
    np.testing.assert_array_equal(pf[n:], pf[order])


def test_a_mistyped_time_point_is_not_linked_to_the_lineage():
    df = small_embryo(times=6)
    typo = pd.concat([df, df.iloc[[len(df) - 1]].assign(time=10**9)], ignore_index=True)
    clouds = prepare_clouds(typo, 5.0)
    assert time_breaks(clouds) == [("toy", 6, 10**9)]
    assert time_breaks(prepare_clouds(df, 5.0)) == []
    sparse = df.assign(time=df["time"] * 10)  # evenly sparse sampling is no break
    assert time_breaks(prepare_clouds(sparse, 5.0)) == []
    tracks, parents = tracklets(clouds, return_parents=True, breaks=time_breaks(clouds))
    ref_tracks, ref_parents = tracklets([c for c in clouds if c["time"] < 10**9], return_parents=True)
    n = len(df)
    assert tracks[:n].tolist() == ref_tracks.tolist() and parents[: len(ref_parents)].tolist() == ref_parents.tolist()
    assert parents[tracks[n]] == -1  # the typo's nucleus is no one's daughter
    out = random_predictor().predict(typo)
    assert out.attrs["time_breaks"] == [("toy", 6, 10**9)]


@needs_zoo
def test_identify_cli_notes_copies_and_time_gaps(tmp_path, capsys):
    df = small_embryo(times=4)
    df["cell"] = ""
    src = tmp_path / "pos.csv"
    pd.concat([df, df, df.iloc[[0]].assign(time=10**9)]).to_csv(src, index=False)
    out = tmp_path / "cells.csv"
    code, _, err = run(["identify", str(src), "--out", str(out), "--zscale", "5"], capsys)
    assert code == 0, err
    res = pd.read_csv(out, keep_default_na=False)
    assert len(res) == 2 * len(df) + 1
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 3  # (the toy embryo's few nuclei: a table that stops early, noted too)
    assert notes[0].startswith(f"note: {len(df)} row(s) repeat an earlier nucleus")
    assert notes[1].startswith("note: the table stops at")
    assert "time point 1000000000 is 999999996 after the previous one (4)" in notes[2]
    assert "not smoothed across the gap" in notes[2]
    # every row and its copy (read back in time order) have the same names
    key = ["time", "x", "y", "z"]
    assert (res.groupby(key)[["pred_founder", "pred_depth1"]].nunique() == 1).all().all()


@needs_zoo
@pytest.mark.slow
def test_real_embryo_mistyped_time_changes_no_other_prediction(epic_tables):
    """A row appended at time 1e9 changed depth-1 names of 11 rows at times 53-63 of this embryo (the
    lineage smoothing made its nucleus a daughter of a cell at the last time point)."""
    from devolens.models import load

    path = next((p for p in epic_tables if "20241009_JIM767_25_L1" in p.name), epic_tables[0])
    df = read_table(path)
    typo = pd.concat([df, df.iloc[[len(df) - 1]].assign(time=10**9)], ignore_index=True)
    typo.attrs = dict(df.attrs)
    typo.attrs["zscale"] = None  # as the CSV copied without its AuxInfo file: the zscale estimated
    plain = df.copy()
    plain.attrs = dict(typo.attrs)
    pred = load("identity")
    a, b = pred.predict(plain), pred.predict(typo).iloc[: len(df)]
    assert (a["pred_depth1"].to_numpy() == b["pred_depth1"].to_numpy()).all()
