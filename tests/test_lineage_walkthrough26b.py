"""A lineage biologist's walkthrough, second part: empty rows a spreadsheet saves and the line numbers after a blank
line, Excel's UTF-16 'Unicode Text', the note on gaps in EPIC and tidy tables, ``render --times`` over a gap,
``lineage cliffs --json`` in full, the bound of ``identify --tta`` and ``models show`` into a file."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from devolens.errors import DevolensError
from devolens.io.tables import EPIC_COLUMNS, read_positions, read_table
from _lineage_builders import growth_rows, write_cd
from _lineage_builders import run_cli as run
from _render_helpers import make_table


def flat(text: str) -> str:
    return " ".join(text.split())


EMPTY_ROW = "," * (len(EPIC_COLUMNS) - 1)


# ----------------------------------------------------------------------------- 1. empty rows, line numbers
def test_empty_rows_a_spreadsheet_saved_are_skipped_with_a_note(tmp_path, capsys):
    rows = growth_rows(n_times=5, base=2)
    cd = write_cd(tmp_path / "CDrows.csv", rows)
    lines = cd.read_text().splitlines()
    excel = tmp_path / "CDexcel.csv"  # one empty row inside, two at the end (as Excel saves them), CRLF
    excel.write_text("\r\n".join(lines[:4] + [EMPTY_ROW] + lines[4:] + [EMPTY_ROW, EMPTY_ROW]) + "\r\n")
    df = read_table(excel)
    pd.testing.assert_frame_equal(df, read_table(cd).assign(embryo="excel"), check_like=False)
    n_lines = len(lines) + 3
    assert df.attrs["notes"] == [f"skipped 3 empty row(s) (lines 5, {n_lines - 1}-{n_lines}: every field empty)"]
    code, _, err = run(["lineage", "populations", str(excel), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and "note: skipped 3 empty row(s)" in flat(err), err
    # only some fields empty: still an error, on its line
    part = tmp_path / "CDpart.csv"
    part.write_text("\n".join(lines + ["ABa:9,ABa,,,,,,,,,,,"]) + "\n")
    with pytest.raises(DevolensError, match=f"column 'time' has a missing value \\(line {len(lines) + 1}\\)"):
        read_table(part)
    # a tidy CSV alike
    tidy = tmp_path / "tidy.csv"
    read_table(cd).to_csv(tidy, index=False)
    tidy.write_text(tidy.read_text() + ",,,,,,,\n,,,,,,,\n")
    t = read_table(tidy)
    assert len(t) == len(rows) and any("skipped 2 empty row(s)" in n for n in t.attrs["notes"])


def test_line_numbers_after_a_blank_line_count_it(tmp_path):
    lines = write_cd(tmp_path / "CDok.csv", growth_rows(n_times=3, base=2)).read_text().splitlines()
    bad = lines[5].split(",")
    bad[9] = "abc"  # x
    text = lines[:3] + [""] + lines[3:5] + [",".join(bad)] + lines[6:]  # the bad row on line 7 of the file
    cd = tmp_path / "CDblank.csv"
    cd.write_text("\n".join(text) + "\n")
    with pytest.raises(DevolensError, match="column 'x' is not numeric \\(line 7: 'abc'\\)"):
        read_table(cd)
    missing = lines[5].split(",")
    missing[2] = ""  # time
    cd.write_text("\n".join(lines[:3] + ["", ""] + lines[3:5] + [",".join(missing)] + lines[6:]) + "\n")
    with pytest.raises(DevolensError, match="column 'time' has a missing value \\(line 8\\)"):
        read_table(cd)
    tidy = tmp_path / "t.csv"
    tidy.write_text("embryo,time,cell,x,y,z,size\ne,1,ABa,1,2,3,4\n\ne,1,ABp,1,2,3,4\ne,2,ABa,1,zz,3,4\n")
    with pytest.raises(DevolensError, match="column 'y' is not numeric \\(line 5: 'zz'\\)"):
        read_table(tidy)


# ----------------------------------------------------------------------------- 2. UTF-16 text
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_excel_unicode_text_is_read_with_a_note(tmp_path, capsys, encoding):
    cd = write_cd(tmp_path / "CDplain.csv", growth_rows(n_times=4, base=3))
    tab = cd.read_text().replace(",", "\t")
    u16 = tmp_path / "CDu16.txt"
    u16.write_bytes(("\ufeff" if encoding == "utf-16-be" else "").encode(encoding) + tab.encode(encoding))
    assert u16.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    df = read_table(u16)
    pd.testing.assert_frame_equal(df.drop(columns="embryo"), read_table(cd).drop(columns="embryo"))
    assert df.attrs["source"] == str(u16) and df["embryo"].iat[0] == "u16"
    assert df.attrs["notes"][0] == "the file is UTF-16 text (Excel's 'Unicode Text'): read as such"
    assert read_positions(u16).attrs["notes"][0].startswith("the file is UTF-16 text")
    code, _, err = run(["lineage", "populations", str(u16), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and "UTF-16 text" in err and len(pd.read_csv(tmp_path / "p.csv")) == 4
    # its errors name the user's file and the line
    lines = tab.splitlines()
    lines[3] = lines[3].replace("\t", "\tx", 3)
    u16.write_text("\n".join(lines) + "\n", encoding="utf-16")
    with pytest.raises(DevolensError) as info:
        read_table(u16)
    assert str(info.value).startswith(f"{u16}: column") and "(line 4: " in str(info.value)


def test_utf16_tidy_table_and_its_companions(tmp_path):
    t = make_table(n_times=2, n_cells=4)
    src = tmp_path / "tidy.txt"
    t.to_csv(src, sep="\t", index=False, encoding="utf-16")
    (tmp_path / "tidy.meta.json").write_text(json.dumps({"zscale": 3.5}))
    df = read_table(src)
    assert df.attrs["format"] == "tidy" and len(df) == len(t) and df.attrs["zscale"] == 3.5
    assert df.attrs["notes"][0].startswith("the file is UTF-16 text")


# ----------------------------------------------------------------------------- 3. gaps in EPIC and tidy tables
def test_gap_in_time_points_of_an_epic_or_tidy_table_is_noted(tmp_path, capsys):
    rows = [r for r in growth_rows(n_times=30, base=2) if not 10 <= r[1] <= 14]
    cd = write_cd(tmp_path / "CDgap.csv", rows)
    note = "time points 10-14 have no rows: the table skips them"
    df = read_table(cd)
    assert any(n.startswith(note) for n in df.attrs["notes"])
    code, _, err = run(["lineage", "populations", str(cd), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and note in flat(err)
    tidy = tmp_path / "gap.csv"
    df.to_csv(tidy, index=False)
    assert any(n.startswith(note) for n in read_table(tidy).attrs["notes"])
    one = write_cd(tmp_path / "CDone.csv", [r for r in growth_rows(n_times=5, base=2) if r[1] != 3])
    assert read_table(one).attrs["notes"][0].startswith("time point 3 has no rows")
    whole = write_cd(tmp_path / "CDwhole.csv", growth_rows(n_times=5, base=2))
    assert not read_table(whole).attrs.get("notes")
    # a tidy table of two embryos: each its own time points; a stray time point (mistyped) is no hole of lost rows
    two = pd.concat([read_table(whole).assign(embryo="a"), df.assign(embryo="b")])
    two.to_csv(tidy, index=False)
    assert read_table(tidy).attrs["notes"] == [f"embryo b: {note} (rows deleted when the table was edited?)"]
    stray = read_table(whole)
    pd.concat([stray, stray.iloc[[0]].assign(time=10**9)]).to_csv(tidy, index=False)
    assert not read_table(tidy).attrs.get("notes")


# ----------------------------------------------------------------------------- 4. render --times over a gap
def test_render_range_over_a_gap_renders_what_is_there(tmp_path, capsys):
    table = make_table(n_times=5, n_cells=8)
    src = tmp_path / "gap.csv"
    table[table["time"] != 3].to_csv(src, index=False)
    out = tmp_path / "r"
    code, _, err = run(["render", str(src), "--out", str(out), "--size", "48", "64", "--times", "2-4"], capsys)
    assert code == 0, err
    assert pd.read_csv(out / "frames.csv")["time"].tolist() == [2, 4]
    assert ("--times: time point(s) 3 of the range are not in the table (it has 1..5 except 3): skipped"
            in flat(err))
    # a time point named on its own stays an error, which says the table has a gap there
    code, _, err = run(["render", str(src), "--out", str(tmp_path / "s"), "--size", "48", "64", "--times", "3"],
                       capsys)
    assert code == 2 and "time point(s) 3 not in the table (it has 1..5 except 3)" in flat(err)
    # a range with none of its time points in the table: an error too
    code, _, err = run(["render", str(src), "--out", str(tmp_path / "s"), "--size", "48", "64", "--times", "3-3"],
                       capsys)
    assert code == 2 and "time point(s) 3 not in the table (it has 1..5 except 3)" in flat(err)
    code, _, err = run(["render", str(src), "--out", str(tmp_path / "s"), "--size", "48", "64", "--times", "1,3,4-9"],
                       capsys)
    assert code == 2 and "time point(s) 3 not in the table (it has 1..5 except 3)" in flat(err)
    # the error names only the time points given on their own: 3 of the range 2-4 given again, not 6 of 5-6
    code, _, err = run(["render", str(src), "--out", str(tmp_path / "s"), "--size", "48", "64", "--times", "2-4,3,5-6"],
                       capsys)
    assert code == 2 and "error: " in err
    assert "time point(s) 3 not in the table (it has 1..5 except 3)" in flat(err), err
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- 5. cliffs --json
def test_cliffs_json_gives_every_field_of_a_cliff_and_the_duplicates(tmp_path, capsys):
    counts = list(range(21, 61)) + [45, 35, 25, 15, 12, 12, 13, 13, 14, 14, 15]  # times 1..51: 45 at time 41
    rows = [(f"AB{'ap'[k % 2]}{'lr'[(k // 2) % 2]}{'dv' * (k // 4)}", t, 1.0, 10 + k, 20, 10, 0)
            for t, n in enumerate(counts, 1) for k in range(n)]
    rows.append(("ABal", 5, 2.0, 500, 500, 10, 0))  # ABal twice at time 5, elsewhere
    cd = write_cd(tmp_path / "CDgradual.csv", sorted(rows, key=lambda r: r[1]))
    code, out, err = run(["lineage", "cliffs", str(cd), "--json"], capsys)
    assert code == 0, err
    got = json.loads(out)
    assert got["cliffs"] == [{"time": 40, "before": 60, "after": 12, "first_bad_time": 41, "after_time": 45}]
    assert got["last_good_time"] == 40
    assert got["duplicates"] == [{"time": 5, "cell": "ABal", "count": 2}]
    code, out, _ = run(["lineage", "cliffs", str(write_cd(tmp_path / "CDok.csv", growth_rows(5, 2))), "--json"], capsys)
    assert json.loads(out) == {"cliffs": [], "last_good_time": 5, "duplicates": []}


# ----------------------------------------------------------------------------- 6. identify --tta
def test_identify_tta_is_bounded(tmp_path, capsys):
    cd = write_cd(tmp_path / "CDt.csv", growth_rows(3, 2))
    code, _, err = run(["identify", str(cd), "--out", str(tmp_path / "id.csv"), "--tta", "1000"], capsys)
    assert code == 2 and "--tta must be within 1..16, got 1000 (the views are rotations about the AP axis" in flat(err)
    assert not (tmp_path / "id.csv").exists()
    code, _, err = run(["identify", str(cd), "--out", str(tmp_path / "id.csv"), "--tta", "0"], capsys)
    assert code == 2 and "--tta must be within 1..16, got 0" in flat(err)


# ----------------------------------------------------------------------------- 7. models show into a file
def test_models_show_into_a_file_cuts_no_cell(capsys):
    code, out, err = run(["models", "show", "identity"], capsys)
    assert code == 0, err
    assert "…" not in out
    assert "20241009_JIM767_25_L1" in out and "0.985" in out and "kNN depth-1 F1" in out
    assert "confidence" in out and all(line == line.rstrip() for line in out.splitlines())


# ----------------------------------------------------------------------------- review: cut lines, quoted line breaks
def test_a_header_with_more_fields_than_the_rows_cuts_no_line(tmp_path):
    rows = growth_rows(n_times=5, base=2)
    lines = write_cd(tmp_path / "CDok.csv", rows).read_text().splitlines()
    trail = tmp_path / "CDtrail.csv"  # a trailing comma after the header: 14 header fields, 13 in each row
    trail.write_text("\n".join([lines[0] + ","] + lines[1:]) + "\n")
    df = read_table(trail)
    assert len(df) == len(rows) and not df.attrs.get("notes")
    # cut short all the same: the last line is shorter than the rows before it
    cut = tmp_path / "CDtrailcut.csv"
    cut.write_text("\n".join([lines[0] + ","] + lines[1:-1] + [lines[-1][: lines[-1].rindex(",10,") + 2]]))
    df = read_table(cut)
    assert len(df) == len(rows) - 1
    assert df.attrs["notes"] == ["the last line has 12 of 13 fields: the file may be cut short (a CD table lists cell "
                                 "after cell, so the cells after it are missing); dropped that line"]
    # one row under a header with a trailing comma: whole
    one = tmp_path / "CDone.csv"
    one.write_text(lines[0] + ",\n" + lines[1] + "\n")
    assert len(read_table(one)) == 1 and not read_table(one).attrs.get("notes")


def test_a_quoted_line_break_and_a_blank_line(tmp_path):
    table = tmp_path / "q.csv"
    table.write_text('embryo,time,cell,x,y,z,size\ne,1,"AB\na",1,2,3,5\n\ne,2,ABa,1,2,3,5\n')
    df = read_table(table)
    assert df["cell"].tolist() == ["AB\na", "ABa"] and df["time"].tolist() == [1, 2]
    assert not df.attrs.get("notes")
    # empty rows and error lines are counted in lines, a quoted line break included
    table.write_text('embryo,time,cell,x,y,z,size\ne,1,"AB\na",1,2,3,5\n,,,,,,\n\ne,2,ABa,1,2,3,5\n'
                     'e,3,"x",1,2,3,\n,"",,,,,\n')
    df = read_table(table)
    assert df["time"].tolist() == [1, 2, 3]
    assert df.attrs["notes"] == ["skipped 2 empty row(s) (lines 4, 8: every field empty)"]
    table.write_text('embryo,time,cell,x,y,z,size\ne,1,"AB\na",1,2,3,5\n\ne,2,ABa,1,zz,3,5\n')
    with pytest.raises(DevolensError, match="column 'y' is not numeric \\(line 5: 'zz'\\)"):
        read_table(table)
    # a CD table alike
    lines = write_cd(tmp_path / "CDq.csv", growth_rows(n_times=3, base=2)).read_text().splitlines()
    quoted = lines[2].split(",")
    quoted[0] = '"' + quoted[0] + '\nnote"'
    cd = tmp_path / "CDquoted.csv"
    cd.write_text("\n".join(lines[:2] + [",".join(quoted), ""] + lines[3:]) + "\n")
    assert len(read_table(cd)) == len(lines) - 1 and not read_table(cd).attrs.get("notes")
