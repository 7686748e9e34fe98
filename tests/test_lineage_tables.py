"""Readers of lineage tables: EPIC CD (+AuxInfo/TIME), AceTree zip/folder, tidy CSV."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from devolens.errors import DevolensError
from devolens.io.tables import (
    EPIC_COLUMNS,
    detect_format,
    epic_companions,
    read_acetree,
    read_epic,
    read_table,
    read_tidy,
    write_tidy,
)

from _lineage_builders import SMALL_FRAMES, acetree_files, write_acetree_zip, write_cd

TIDY = ["embryo", "time", "cell", "x", "y", "z", "size"]


# ----------------------------------------------------------------------------- EPIC
def test_epic_small_with_companions(tmp_path):
    cd = write_cd(tmp_path / "CD20240101_TEST_L1.csv", [
        ("ABa", 1, 4.0, 100, 200, 60, -5), ("ABp", 1, 5.5, 120, 210, 62, -6),
        ("ABal", 2, 4.0, 101, 201, 55, -7), ("E", 2, 8.0, 300, 250, 40, -8),
    ])
    (tmp_path / "20240101_TEST_L1AuxInfo.csv").write_text(
        "name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis\n"
        "20240101_TEST_L1,0.5,-24.2,380,384,598,396,48.4,39.5,4.86,89,5.7471,PDR\n"
    )
    (tmp_path / "TIME20240101_TEST_L1.csv").write_text(
        "20240101_TEST_L1\t1\t0\t0\n20240101_TEST_L1\t2\t90\t90\n20240101_TEST_L1\t3\t181\t91\n"
    )
    assert epic_companions(cd) == (tmp_path / "20240101_TEST_L1AuxInfo.csv", tmp_path / "TIME20240101_TEST_L1.csv")
    df = read_table(cd)
    assert list(df.columns) == TIDY + ["blot"]
    assert df.attrs["format"] == "epic"
    assert df["embryo"].unique().tolist() == ["20240101_TEST_L1"]
    assert df["time"].tolist() == [1, 1, 2, 2]
    assert df["cell"].tolist() == ["ABa", "ABp", "ABal", "E"]
    assert df["x"].tolist() == [100.0, 120.0, 101.0, 300.0]
    assert df["z"].tolist() == [4.0, 5.5, 4.0, 8.0]
    assert df["size"].dtype == np.float64 and df["time"].dtype == np.int64
    assert df.attrs["zscale"] == pytest.approx(5.7471)
    assert df.attrs["ellipse"] == {"xc": 380.0, "yc": 384.0, "maj": 598.0, "min": 396.0, "ang": 48.4}
    assert df.attrs["axis"] == "PDR"
    assert df.attrs["time_seconds"] == {1: 0.0, 2: 90.0, 3: 181.0}
    assert df.attrs["seconds_per_time"] == 90.0  # over the table's time points, 1-2 (the file's 1-3: 90.5)


def test_epic_without_companions_has_no_metadata(tmp_path):
    cd = write_cd(tmp_path / "CDx.csv", [("AB", 1, 3.0, 1, 2, 10, 0), ("P1", 1, 3.0, 5, 6, 10, 0)])
    df = read_epic(cd)
    assert df.attrs["zscale"] is None and df.attrs["ellipse"] is None and df.attrs["time_seconds"] is None
    assert df["embryo"].iloc[0] == "x"


def test_epic_sorted_by_time(tmp_path):
    # EPIC files list rows cell by cell; the tidy table is ordered by time
    cd = write_cd(tmp_path / "CDs.csv", [("ABa", 2, 1, 1, 1, 1, 0), ("ABa", 1, 1, 1, 1, 1, 0), ("ABp", 1, 1, 1, 1, 1, 0)])
    df = read_table(cd)
    assert df["time"].tolist() == [1, 1, 2]
    assert df["cell"].tolist() == ["ABa", "ABp", "ABa"]


def test_epic_bad_auxinfo_names_the_file(tmp_path):
    cd = write_cd(tmp_path / "CDbad.csv", [("AB", 1, 3.0, 1, 2, 10, 0)])
    (tmp_path / "badAuxInfo.csv").write_text("name,foo\nbad,1\n")
    # picked up beside the table: ignored with a note naming it (session 45); given to read_epic: refused
    assert any("badAuxInfo.csv: not an EPIC AuxInfo file" in n for n in read_table(cd).attrs["notes"])
    with pytest.raises(DevolensError, match="badAuxInfo.csv.*AuxInfo"):
        read_epic(cd, auxinfo=tmp_path / "badAuxInfo.csv")


def test_epic_real(epic_tables):
    for path in epic_tables:
        df = read_table(path)
        assert df.attrs["format"] == "epic"
        assert list(df.columns[:7]) == TIDY
        # independent count of data rows with the csv module
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(df) == len(rows)
        assert df["time"].min() == min(int(r["time"]) for r in rows)
        assert df["time"].max() == max(int(r["time"]) for r in rows)
        assert not df[["x", "y", "z", "size"]].isna().any().any()
        first = rows[0]
        hit = df[(df["cell"] == first["cell"]) & (df["time"] == int(first["time"]))]
        assert len(hit) == 1 and hit["x"].iloc[0] == float(first["x"]) and hit["z"].iloc[0] == float(first["z"])
        aux, _ = epic_companions(path)
        if aux.exists():
            assert 1.0 < df.attrs["zscale"] < 20.0
            assert set(df.attrs["ellipse"]) == {"xc", "yc", "maj", "min", "ang"}
            assert df.attrs["ellipse"]["maj"] >= df.attrs["ellipse"]["min"] > 0
            assert df.attrs["axis"]
            assert 30 < df.attrs["seconds_per_time"] < 300
        else:
            assert df.attrs["zscale"] is None


# ----------------------------------------------------------------------------- AceTree
def test_acetree_zip_small(tmp_path):
    z = write_acetree_zip(tmp_path / "emb.zip", SMALL_FRAMES)
    assert detect_format(z) == "acetree"
    df = read_table(z)
    assert df.attrs["format"] == "acetree"
    assert list(df.columns) == TIDY
    # status-0 rows dropped, names stripped
    assert df["cell"].tolist() == ["ABa", "P1", "ABal", "ABar", "EMS", "Nuc7"]
    assert df["time"].tolist() == [1, 1, 2, 2, 2, 2]
    assert df["z"].tolist() == [5.0, 6.5, 5.0, 5.5, 6.0, 3.0]
    assert df["size"].tolist() == [12, 14, 12, 12, 13, 10]
    assert df["embryo"].iloc[0] == "emb"
    assert df.attrs["seconds_per_time"] is None and df.attrs["zscale"] is None


def test_acetree_folder_and_nuclei_dir(tmp_path):
    for name, text in acetree_files(SMALL_FRAMES).items():
        p = tmp_path / "myembryo" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    a = read_table(tmp_path / "myembryo")
    b = read_acetree(tmp_path / "myembryo" / "nuclei")
    c = read_acetree(write_acetree_zip(tmp_path / "myembryo.zip", SMALL_FRAMES))
    for df in (a, b, c):
        assert df["embryo"].iloc[0] == "myembryo"
        pd.testing.assert_frame_equal(df.drop(columns="embryo"), a.drop(columns="embryo"))


def test_acetree_blank_lines_and_crlf(tmp_path):
    text = acetree_files({3: [(1, 1, 2, 3, 4, "E"), (1, 5, 6, 7, 8, " MS ")]})["nuclei/t003-nuclei"]
    text = "\r\n" + text.replace("\n", "\r\n\r\n")
    with zipfile.ZipFile(tmp_path / "e.zip", "w") as zf:
        zf.writestr("nuclei/t003-nuclei", text)
        zf.writestr("nuclei/t004-nuclei", "")
    df = read_table(tmp_path / "e.zip")
    assert df["cell"].tolist() == ["E", "MS"] and df["time"].tolist() == [3, 3]


def test_acetree_bad_coordinate_names_file_and_line(tmp_path):
    frames = {1: [(1, 10, 20, 5.0, 12, "ABa")], 2: [(1, 10, 20, 5.0, 12, "ABa"), (1, "zz", 20, 5.0, 12, "ABp")]}
    z = write_acetree_zip(tmp_path / "bad.zip", frames)
    with pytest.raises(DevolensError, match=r"bad.zip.*'x'.*t002, line 2"):
        read_table(z)


def test_acetree_real(acetree_zip):
    df = read_table(acetree_zip)
    # independent parse with the zipfile/csv modules
    n_valid, names = 0, set()
    with zipfile.ZipFile(acetree_zip) as zf:
        for member in zf.namelist():
            if not member.endswith("-nuclei"):
                continue
            for row in csv.reader(io.TextIOWrapper(zf.open(member))):
                if row and row[1].strip() == "1":
                    n_valid += 1
                    names.add(row[9].strip())
    assert len(df) == n_valid
    assert set(df["cell"]) == names
    assert not df["cell"].str.startswith(" ").any() and not df["cell"].str.endswith(" ").any()
    assert df["time"].min() == 1 and df["time"].nunique() == 360
    assert df.attrs["seconds_per_time"] is None


# ----------------------------------------------------------------------------- tidy
def test_tidy_round_trip_keeps_metadata(tmp_path):
    cd = write_cd(tmp_path / "CDr.csv", [("ABa", 1, 4.0, 100, 200, 60, -5), ("MSa", 2, 4.5, 10, 20, 30, -1)])
    (tmp_path / "rAuxInfo.csv").write_text(
        "name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis\nr,0,0,1,2,30,20,5,0,0,90,4.5,ADL\n"
    )
    a = read_table(cd)
    out = write_tidy(a, tmp_path / "t" / "tidy.csv")
    assert (tmp_path / "t" / "tidy.meta.json").exists()
    b = read_table(out)
    assert b.attrs["format"] == "tidy"
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    for k in ("zscale", "ellipse", "axis", "time_seconds", "seconds_per_time"):
        assert b.attrs[k] == a.attrs[k]
    # no leftover temporary files
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["tidy.csv", "tidy.meta.json"]


def test_tidy_minimal_columns(tmp_path):
    p = tmp_path / "mini.csv"
    p.write_text("time,cell,x,y,z,extra\n2,ABa,1,2,3,q\n1,,4,5,6,r\n")
    df = read_tidy(p)
    assert list(df.columns) == TIDY + ["extra"]
    assert df["embryo"].tolist() == ["mini", "mini"]
    assert df["time"].tolist() == [1, 2] and df["cell"].tolist() == ["", "ABa"]
    assert df["size"].isna().all()
    assert df.attrs["zscale"] is None


def test_write_tidy_without_metadata_writes_one_file(tmp_path):
    df = pd.DataFrame({"time": [1], "cell": ["AB"], "x": [1.0], "y": [2.0], "z": [3.0]})
    write_tidy(df, tmp_path / "a.csv")
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]
    assert read_tidy(tmp_path / "a.csv")["embryo"].tolist() == ["a"]


def test_detect_format_from_content_not_extension(tmp_path):
    cd = write_cd(tmp_path / "whatever.txt", [("AB", 1, 3.0, 1, 2, 10, 0)])
    assert detect_format(cd) == "epic"
    z = write_acetree_zip(tmp_path / "nuclei.dat", SMALL_FRAMES)
    assert detect_format(z) == "acetree"
    t = tmp_path / "tidy.tsv.csv"
    t.write_text("embryo,time,cell,x,y,z,size\ne,1,AB,1,2,3,4\n")
    assert detect_format(t) == "tidy"


# ----------------------------------------------------------------------------- bad input
BAD_CASES = {
    "missing": (None, "file not found"),
    "empty": (b"", "empty file"),
    "wrong_columns": (b"a,b,c\n1,2,3\n", "unrecognised columns"),
    # (a table of known columns separated by semicolons is read, with decimal commas: test_s43_semicolon_tables)
    "semicolons": (b"a;b;c\n1;2;3,5\n", "unrecognised columns (expected an EPIC CD table"),
    "decimal_commas": (b"time,cell,x,y,z\n1,ABa,1,5,2,3\n", "line 2 has 6 fields, the header 5"),
    # (a table of known columns separated by tabs is read: test_s44_small)
    "tabs": (b"a\tb\tc\n1\tABa\t3\n", "unrecognised columns (expected an EPIC CD table"),
    "epic_non_numeric": (
        (",".join(EPIC_COLUMNS) + "\nABa:1,ABa,1,5,1,1,1,1,4.0,abc,3,10,1\n").encode(), "column 'x' is not numeric"
    ),
    "tidy_non_numeric": (b"embryo,time,cell,x,y,z,size\ne,1,ABa,1,2,oops,3\n", "column 'z' is not numeric"),
    "tidy_missing_coord": (b"embryo,time,cell,x,y,z,size\ne,1,ABa,1,,3,3\n", "column 'y' has a missing value"),
    "fractional_time": (b"time,cell,x,y,z\n1.5,ABa,1,2,3\n", "whole time points"),
    "header_only": ((",".join(EPIC_COLUMNS) + "\n").encode(), "no data rows"),
    "binary": (bytes(range(256)) * 8, "binary"),
    "fake_zip": (b"PK\x03\x04 not really a zip", "not a valid zip"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_raises_devolens_error(tmp_path, case):
    content, needle = BAD_CASES[case]
    path = tmp_path / f"{case}.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DevolensError) as err:
        read_table(path)
    msg = str(err.value)
    assert needle in msg and str(path) in msg and "\n" not in msg


def test_zip_without_nuclei(tmp_path):
    p = tmp_path / "x.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(DevolensError, match="x.zip: zip holds no AceTree nuclei files"):
        read_table(p)
    for name in ("book.xlsx", "book.csv"):  # an Excel workbook (a zip), also under a .csv name: said so
        book = tmp_path / name
        with zipfile.ZipFile(book, "w") as zf:
            zf.writestr("[Content_Types].xml", "<Types/>")
            zf.writestr("xl/workbook.xml", "<workbook/>")
        with pytest.raises(DevolensError, match=f"{name}: an Excel workbook .* save it as CSV"):
            read_table(book)
    ods = tmp_path / "sheet.ods"
    with zipfile.ZipFile(ods, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", "<office:document-content/>")
    with pytest.raises(DevolensError, match="sheet.ods: an OpenDocument spreadsheet"):
        read_table(ods)


def test_empty_folder(tmp_path):
    with pytest.raises(DevolensError, match="no AceTree nuclei files"):
        read_table(tmp_path)


def test_acetree_bad_status_and_blank_lines_keep_line_numbers(tmp_path):
    good = acetree_files({5: [(1, 1, 2, 3, 4, "E")]})["nuclei/t005-nuclei"]
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as zf:
        zf.writestr("nuclei/t005-nuclei", good)
        zf.writestr("nuclei/t006-nuclei", "\n" + good + "\n   \n" + good.replace(", 1, ", ", x, ", 1))
    with pytest.raises(DevolensError, match=r"s.zip: column 'status' is not numeric \(nuclei file t006, line 5: ' x'\)"):
        read_table(tmp_path / "s.zip")


def test_acetree_missing_diameter(tmp_path):
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
        zf.writestr("nuclei/t001-nuclei", acetree_files({1: [(1, 1, 2, 3, 4, "E")]})["nuclei/t001-nuclei"])
        zf.writestr("nuclei/t002-nuclei", "1, 1, -1, -1, -1, 5, 6, 7.0, , ABa, 0\n")
    with pytest.raises(DevolensError, match=r"column 'diameter' has a missing value \(nuclei file t002, line 1\)"):
        read_table(tmp_path / "d.zip")
    with zipfile.ZipFile(tmp_path / "short.zip", "w") as zf:
        zf.writestr("nuclei/t001-nuclei", "1, 1, -1, -1, -1, 5, 6, 7.0\n")
    with pytest.raises(DevolensError, match=r"short.zip: cannot parse AceTree nuclei files: lines have fewer than 10"):
        read_table(tmp_path / "short.zip")


def test_single_nuclei_file(tmp_path):
    text = acetree_files({7: [(1, 1, 2, 3, 4, "E"), (0, 1, 2, 3, 4, "")]})["nuclei/t007-nuclei"]
    (tmp_path / "emb" / "nuclei").mkdir(parents=True)
    single = tmp_path / "emb" / "nuclei" / "t007-nuclei"
    single.write_text(text)
    df = read_table(single)
    assert df["time"].tolist() == [7] and df["cell"].tolist() == ["E"] and df["embryo"].iloc[0] == "emb"
    other = tmp_path / "frame.txt"
    other.write_text(text)
    with pytest.raises(DevolensError, match="frame.txt: not a zip: a single AceTree nuclei file must be named"):
        read_table(other)


def test_read_positions_without_names(tmp_path):
    from devolens.io.tables import read_positions

    p = tmp_path / "tracks.csv"
    p.write_text("FRAME,POSITION_X,POSITION_Y,POSITION_Z,TRACK_ID\n1,10,20,3,7\n0,11,21,4,7\n0,30,40,5,8\n")
    df = read_positions(p)
    assert list(df.columns[:7]) == ["embryo", "time", "cell", "x", "y", "z", "size"]
    assert df["time"].tolist() == [0, 0, 1] and (df["cell"] == "").all() and df["embryo"].iloc[0] == "tracks"
    assert df["TRACK_ID"].tolist() == [7, 8, 7] and df["size"].isna().all()
    # TrackMate's spot table: three description rows under the header
    tm = tmp_path / "spots.csv"
    tm.write_text("LABEL,ID,TRACK_ID,POSITION_X,POSITION_Y,POSITION_Z,FRAME\n"
                  "Label,Spot ID,Track ID,X,Y,Z,Frame\nLabel,ID,Track ID,X,Y,Z,Frame\n"
                  "(micron),,,(micron),(micron),(micron),\n"
                  "ID1,1,0,10.5,20,3,0\nID2,2,0,11,21,3,1\n")
    spots = read_positions(tm)
    assert spots["time"].tolist() == [0, 1] and spots["x"].tolist() == [10.5, 11.0]
    tm.write_text("FRAME,POSITION_X,POSITION_Y,POSITION_Z\n(f),(um),(um),(um)\n0,1,2,3\n1,1,2,x\n")
    with pytest.raises(DevolensError, match="line 4"):  # bad values still name their line
        read_positions(tm)
    # a lineage table is read as such
    tidy = tmp_path / "tidy.csv"
    tidy.write_text("time,cell,x,y,z\n1,ABa,1,2,3\n")
    assert read_positions(tidy)["cell"].tolist() == ["ABa"]
    # neither: the error names both kinds; bad values name the line
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DevolensError, match="or positions with time"):
        read_positions(bad)
    bad.write_text("t,x,y,z\n1,2,3,oops\n")
    with pytest.raises(DevolensError, match="oops"):
        read_positions(bad)


def test_a_malformed_line_in_a_large_acetree_zip_gives_one_error_no_pandas_warning(tmp_path):
    """A bad value late in a large AceTree zip is refused naming file and line, and no pandas DtypeWarning (its
    chunked type guessing) reaches the user's terminal."""
    import warnings

    frames = {t: [(1, 10 + i, 20 + i, 5.0, 12, f"ABa{'lr'[i % 2]}") for i in range(1000)] for t in range(1, 61)}
    path = write_acetree_zip(tmp_path / "big.zip", frames)
    with zipfile.ZipFile(path, "a") as zf:  # a last file whose second line has text in the x column
        zf.writestr("nuclei/t061-nuclei", "1, 1, -1, -1, -1, 10, 20, 5.0, 12, ABa, 0\n"
                                          "2, 1, -1, -1, -1, ten, 20, 5.0, 12, ABp, 0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        with pytest.raises(DevolensError, match="t061.*line 2"):
            read_table(path)


def test_acetree_series_with_a_hole_is_noted(tmp_path):
    """A time point without its nuclei file, or with an empty one, inside the series: the table skips it, said (the
    population curves and the cliff finder read across it without a word before)."""
    rows = [(1, 10, 20, 5.0, 12, "ABa"), (1, 30, 40, 6.5, 14, "P1")]
    frames = {t: rows for t in (1, 2, 4, 5, 7, 8)}
    path = write_acetree_zip(tmp_path / "holes.zip", frames)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("nuclei/t006-nuclei", "")
    notes = " ".join(read_table(path).attrs.get("notes") or [])
    assert "time point 3 has no nuclei file" in notes and "time point 6 is empty" in notes
    whole = write_acetree_zip(tmp_path / "whole.zip", {t: rows for t in range(1, 6)})
    assert not read_table(whole).attrs.get("notes")


def test_sizes_of_zero_or_less_are_noted(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"embryo": "e", "time": [1, 1, 2], "cell": ["ABa", "ABp", "ABal"], "x": [1.0, 2, 3],
                  "y": [1.0, 2, 3], "z": [1.0, 2, 3], "size": [10.0, -10, 0]}).to_csv(path, index=False)
    notes = read_table(path).attrs.get("notes") or []
    assert any("2 row(s) give a nucleus size of 0 or less (e.g. ABp at time 1: -10.0)" in n for n in notes)
    pd.read_csv(path).assign(size=[10.0, 9.0, 8.0]).to_csv(path, index=False)
    assert not read_table(path).attrs.get("notes")
