"""Lineage tables from another lab (walkthrough 32): time points with a regular step, columns spelt as ``identify``
reads them, and cell names left blank."""

from __future__ import annotations

import pandas as pd
import pytest

from _lineage_builders import run_cli, write_acetree_zip
from devolens.io.tables import detect_format, read_positions, read_table, time_step
from devolens.lineage.populations import populations

#: (cell, x, y, z, size) of the nuclei of every time point of the small tables below.
NUCLEI = [("ABa", 10.0, 20.0, 5.0, 12.0), ("ABp", 30.0, 40.0, 6.0, 12.0), ("EMS", 50.0, 20.0, 7.0, 11.0),
          ("P2", 60.0, 45.0, 5.5, 9.0)]


def tidy_csv(path, times, header=("time", "cell", "x", "y", "z", "size"), names=True):
    """A tidy CSV of :data:`NUCLEI` at each of ``times``, its columns named ``header`` (in the tidy order)."""
    lines = [",".join(header)]
    for t in times:
        for cell, x, y, z, size in NUCLEI:
            lines.append(",".join(map(str, (t, cell if names else "", x, y, z, size))))
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------- 1. a regular step is no hole
def test_time_step():
    assert time_step(range(0, 12511, 90)) == 90
    assert time_step([1, 4, 7, 10, 16, 19, 22, 25, 40]) == 3  # holes of whole steps leave the step as it is
    assert time_step([1, 2, 3, 5, 6, 9]) == 1
    assert time_step([1, 4]) == 1  # too few time points to tell
    assert time_step([1, 4, 7, 8, 10, 13, 16]) == 1  # no step: time 8 is off it


def test_time_in_seconds_is_read_as_a_step_not_as_lost_rows(tmp_path):
    df = read_table(tidy_csv(tmp_path / "sec.csv", range(0, 90 * 40, 90)))
    notes = df.attrs.get("notes") or []
    assert notes == ["time points step by 90 (seconds? every 90th frame?): read as one time point per 90"]


def test_holes_are_said_in_steps(tmp_path):
    times = [t for t in range(1, 3 * 30, 3) if t not in (10, 40, 43)]
    notes = read_table(tidy_csv(tmp_path / "every3.csv", times)).attrs["notes"]
    assert notes == ["time points step by 3 (every 3rd frame?): read as one time point per 3",
                     "time points 10, 40-43 have no rows: the table skips them (rows deleted when the table was "
                     "edited?)"]


def test_consecutive_time_points_keep_their_note(tmp_path):
    notes = read_table(tidy_csv(tmp_path / "t.csv", [1, 2, 3, 5, 6, 7, 8])).attrs["notes"]
    assert notes == ["time point 4 has no rows: the table skips it (rows deleted when the table was edited?)"]


def test_acetree_every_third_file(tmp_path):
    frames = {t: [(1, x, y, z, d, c) for c, x, y, z, d in NUCLEI] for t in range(1, 40, 3)}
    notes = read_table(write_acetree_zip(tmp_path / "every3.zip", frames)).attrs["notes"]
    assert notes == ["time points step by 3 (every 3rd frame?): read as one time point per 3"]


def test_lineage_commands_on_seconds(tmp_path, capsys):
    """populations and cliffs count one time point per step: no note of lost rows, the same counts as the table
    numbered 1, 2, 3..., and a cliff found at its time in seconds."""
    sec = tidy_csv(tmp_path / "sec.csv", range(0, 90 * 30, 90))
    code, out, err = run_cli(["lineage", "populations", str(sec), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0, err
    assert "step by 90" in err and "no rows" not in err
    pops = pd.read_csv(tmp_path / "p.csv")
    assert len(pops) == 30 and pops["total"].eq(4).all()
    code, out, err = run_cli(["lineage", "cliffs", str(sec)], capsys)
    assert code == 0 and "no rows" not in err and "no annotation cliff; last good time point 2610" in out


# ----------------------------------------------------------------------------- 2. identify's column names
@pytest.mark.parametrize("header,renamed", [
    (("Time", "Cell", "X", "Y", "Z", "Size"), "columns Time, Cell, X, Y, Z, Size read as time, cell, x, y, z, size"),
    (("timepoint", "cell_name", "x", "y", "z", "diameter"), "columns timepoint, cell_name, diameter read as time, "
                                                           "cell, size"),
    (("frame", "cellName", "x", "y", "z", "size"), "columns frame, cellName read as time, cell"),
    (("time", "Cell Name", "x", "y", "z", "size"), "column Cell Name read as cell"),
])
def test_lineage_tables_take_identify_column_names(tmp_path, capsys, header, renamed):
    ref = read_table(tidy_csv(tmp_path / "ref.csv", [1, 2, 3]))
    path = tidy_csv(tmp_path / "other.csv", [1, 2, 3], header=header)
    assert detect_format(path) == "tidy"
    df = read_table(path)
    assert df.attrs["notes"] == [renamed]
    pd.testing.assert_frame_equal(df.drop(columns="embryo"), ref.drop(columns="embryo"))
    code, _, err = run_cli(["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and f"note: {renamed}" in err
    assert pd.read_csv(tmp_path / "p.csv")["A"].tolist() == [2, 2, 2]
    for argv in (["lineage", "cliffs", str(path)], ["lineage", "convert", str(path), "--out", str(tmp_path / "c.csv")]):
        code, _, err = run_cli(argv, capsys)
        assert code == 0, err


def test_cellname_is_identify_s_name_column(tmp_path):
    """identify (read_positions) takes cellName as the cell column, not an extra column beside an empty one."""
    df = read_positions(tidy_csv(tmp_path / "f.csv", [0, 1], header=("frame", "cellName", "x", "y", "z", "size")))
    assert df["cell"].tolist()[:4] == ["ABa", "ABp", "EMS", "P2"] and "cellName" not in df.columns


def test_units_in_aliased_names_are_kept(tmp_path):
    path = tidy_csv(tmp_path / "um.csv", [1, 2, 3], header=("Time", "Cell", "x_um", "y_um", "z_um", "diameter"))
    df = read_table(path)
    assert df.attrs["zscale"] == 1.0 and any("in µm" in n for n in df.attrs["notes"])


def test_positions_without_names_still_refused_by_lineage(tmp_path, capsys):
    path = tmp_path / "pos.csv"
    path.write_text("Time,X,Y,Z\n1,1,2,3\n")
    code, _, err = run_cli(["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")], capsys)
    assert code != 0 and "unrecognised columns" in err


# ----------------------------------------------------------------------------- 3. blank names
def test_populations_count_blank_names(tmp_path, capsys):
    path = tidy_csv(tmp_path / "blank.csv", [1, 2, 3], names=False)
    pops = populations(read_table(path))
    assert pops.attrs["unnamed_rows"] == 12 and pops["A"].eq(0).all() and pops["total"].eq(4).all()
    assert pops.attrs["notes"] == ["no row has a Sulston cell name (12 rows; an empty cell or another label, such as a "
                                   "placeholder Nuc123): counted in total only, every lineage column "
                                   "is 0 (and no lineage cliff can be found)"]
    for argv in (["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")],
                 ["--quiet", "lineage", "cliffs", str(path)]):
        code, _, err = run_cli(argv, capsys)
        assert code == 0 and "note: no row has a Sulston cell name (12 rows" in err


def test_populations_count_some_blank_names(tmp_path, capsys):
    path = tidy_csv(tmp_path / "some.csv", [1, 2, 3])
    text = path.read_text().replace(",ABa,", ",,")  # 3 of 12 rows
    path.write_text(text)
    pops = populations(read_table(path))
    assert pops.attrs["unnamed_rows"] == 3 and pops.attrs["notes"] == [
        "3 rows (25 %) have no Sulston cell name (an empty cell or another label, such as a placeholder "
        "Nuc123): counted in total only"]
    code, _, err = run_cli(["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and ("note: 3 rows (25 %) have no Sulston cell name (an empty cell or another label, "
                          "such as a placeholder Nuc123): counted in total only") in err
    named = populations(read_table(tidy_csv(tmp_path / "named.csv", [1, 2])))
    assert named.attrs["unnamed_rows"] == 0 and "notes" not in named.attrs


def test_two_spellings_of_one_column_refused(tmp_path, capsys):
    path = tmp_path / "twice.csv"
    path.write_text("Time,time,Cell,x,y,z\n1,1,ABa,1,2,3\n")
    code, _, err = run_cli(["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 2 and "columns Time and time name the same column: keep one of each" in err
    assert "Traceback" not in err
