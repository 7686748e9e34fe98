"""Session 47 mends of the lineage tables' readers:

* an EPIC CD table with an added ``embryo`` column holds one embryo per name, as a tidy table does (every row was
  given the file's name: populations summed across embryos, ``--embryo`` found none, convert merged them);
* a tidy table's ``Embryo`` (``BLOT``) is read beside lower-case ``time,cell``: each column's capitalisation its own;
* the note on a time point of more nuclei than an embryo ever holds names a column that looks like an embryo column
  but was not read as one (``embryo_id``, ``sample``);
* a gzip-compressed table (``L1.csv.gz``) is read decompressed; a reader that cannot says it is gzip-compressed;
* an unrecognised header lists the accepted column names; a title line above the header is said, with what to do;
* a folder holding ``myembryo/run1/nuclei/`` names that folder.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from _lineage_builders import acetree_files, growth_rows, run_cli, write_cd
from devolens.errors import DevolensError
from devolens.io.tables import EPIC_COLUMNS, read_acetree, read_positions, read_table, read_tidy
from devolens.lineage.populations import EMBRYO_CELLS, populations


def _cd_with_embryo(path: Path, parts: dict[str, list[tuple]], column: str = "embryo") -> Path:
    """An EPIC CD table with ``column`` first: the rows of each embryo of ``parts`` (name -> CD rows)."""
    lines = [",".join((column, *EPIC_COLUMNS))]
    for name, rows in parts.items():
        for cell, t, z, x, y, size, blot in rows:
            lines.append(f"{name},{cell}:{t},{cell},{t},100,-2000,-50,{blot},100,{z},{x},{y},{size},12345")
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------- 1. EPIC with an embryo column
def test_epic_table_with_an_embryo_column_holds_each_embryo(tmp_path, capsys):
    a, b = growth_rows(6, base=4), growth_rows(6, base=9)
    src = _cd_with_embryo(tmp_path / "CDmerged.csv", {"L1": a, "L5": b})
    df = read_table(src)
    assert df.attrs["format"] == "epic"
    assert df.groupby("embryo").size().to_dict() == {"L1": len(a), "L5": len(b)}
    # each embryo exactly as its own CD table reads it
    one = read_table(write_cd(tmp_path / "CDL1.csv", a))
    mine = df[df["embryo"] == "L1"].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine.drop(columns="embryo"), one.drop(columns="embryo"), check_like=True)
    out = tmp_path / "p.csv"
    code, _, err = run_cli(["lineage", "populations", str(src), "-o", str(out)], capsys)
    assert code == 2 and "table holds 2 embryos (L1, L5); pick one with --embryo NAME" in err and not out.exists()
    code, _, err = run_cli(["lineage", "populations", str(src), "--embryo", "L1", "-o", str(out)], capsys)
    assert code == 0, err
    ref = tmp_path / "ref.csv"
    assert run_cli(["lineage", "populations", str(tmp_path / "CDL1.csv"), "-o", str(ref)], capsys)[0] == 0
    assert out.read_text() == ref.read_text()
    conv = tmp_path / "conv.csv"
    code, said, err = run_cli(["lineage", "convert", str(src), "-o", str(conv)], capsys)
    assert code == 0 and "2 embryos (L1, L5)" in said + err
    assert set(pd.read_csv(conv)["embryo"]) == {"L1", "L5"}


def test_epic_embryo_column_in_any_capitalisation_and_blank_names_default_to_the_file(tmp_path):
    src = _cd_with_embryo(tmp_path / "CDx.csv", {"L1": growth_rows(3), "": growth_rows(2)}, column="Embryo")
    df = read_table(src)
    assert set(df["embryo"]) == {"L1", "x"} and "Embryo" not in df.columns


def test_real_epic_tables_with_an_embryo_column_count_as_each_alone(tmp_path, shared_data):
    EPIC = shared_data / "epic"
    parts = []
    for name in ("L1", "L5"):
        d = pd.read_csv(EPIC / f"CD20241009_JIM767_25_{name}.csv")
        d = d[d["time"] <= 60].copy()
        d.insert(0, "embryo", name)
        parts.append(d)
    src = tmp_path / "merged.csv"
    pd.concat(parts).to_csv(src, index=False)
    df = read_table(src)
    alone = read_table(EPIC / "CD20241009_JIM767_25_L1.csv")
    want = populations(alone[alone["time"] <= 60])
    got = populations(df[df["embryo"] == "L1"].reset_index(drop=True))
    pd.testing.assert_frame_equal(got, want)
    assert int(got.loc[got["time"] == 60, "A"].iloc[0]) == 64


# ----------------------------------------------------------------------------- 2. capitalisation, embryo-like column
def test_tidy_embryo_column_capitalised_beside_lower_case_columns(tmp_path, capsys):
    rows = pd.DataFrame({"time": [1, 1, 1], "cell": ["ABa", "ABp", "ABa"], "x": [1.0, 2, 3], "y": [1.0, 2, 3],
                         "z": [1.0, 1, 1], "Embryo": ["L1", "L1", "L5"], "BLOT": [5, 6, 7]})
    src = tmp_path / "t.csv"
    rows.to_csv(src, index=False)
    df = read_table(src)
    assert df["embryo"].tolist() == ["L1", "L1", "L5"] and "Embryo" not in df.columns
    assert df["blot"].tolist() == [5, 6, 7]
    conv = tmp_path / "c.csv"
    code, _, err = run_cli(["lineage", "populations", str(src), "--embryo", "L5", "-o", str(conv)], capsys)
    assert code == 0, err
    assert pd.read_csv(conv)["total"].tolist() == [1]


def _crowded(path: Path, column: str) -> Path:
    n = EMBRYO_CELLS + 9
    pd.DataFrame({column: ["a"] * (n // 2) + ["b"] * (n - n // 2), "time": 1, "cell": "ABa",
                  "x": range(n), "y": 1.0, "z": 1.0}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("column", ["embryo_id", "Sample", "series", "specimen"])
def test_crowded_note_names_the_embryo_like_column_not_read(tmp_path, column):
    note = next(n for n in populations(read_table(_crowded(tmp_path / "c.csv", column))).attrs["notes"]
                if "more than the 671 cells" in n)
    assert f"its column '{column}' was not read as the embryo: rename it to embryo" in note
    assert "without an embryo column" not in note


def test_crowded_note_of_an_epic_table_names_its_sample_column(tmp_path):
    rows = [(f"AB{k}", 1, 1.0, k, 2, 10, 0) for k in range(EMBRYO_CELLS + 5)]
    src = _cd_with_embryo(tmp_path / "CDs.csv", {"s1": rows}, column="sample")
    note = populations(read_table(src)).attrs["notes"][-1]
    assert "its column 'sample' was not read as the embryo" in note


def test_crowded_note_without_an_embryo_like_column_is_as_before(tmp_path):
    note = populations(read_table(_crowded(tmp_path / "c.csv", "file"))).attrs["notes"][-1]
    assert "several embryos in one table without an embryo column" in note


# ----------------------------------------------------------------------------- 3. messages
def test_gzipped_table_is_read_decompressed(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    plain = write_cd(tmp_path / "plain" / "CDL1.csv", growth_rows(4))
    gz = tmp_path / "CDL1.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    want, got = read_table(plain), read_table(gz)
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs["source"] == str(gz) and got["embryo"].iloc[0] == "L1"
    assert len(read_positions(gz)) == len(want)
    out = tmp_path / "p.csv"
    assert run_cli(["lineage", "populations", str(gz), "-o", str(out)], capsys)[0] == 0
    with pytest.raises(DevolensError, match="gzip-compressed file: decompress it first"):
        read_tidy(gz)


def test_damaged_gzip_is_refused_naming_it(tmp_path):
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(b"time,cell,x,y,z\n" + b"1,ABa,1,2,3\n" * 1000)[:60])
    with pytest.raises(DevolensError, match="gzip-compressed file that cannot be decompressed") as err:
        read_table(gz)
    assert str(err.value).startswith(str(gz))


@pytest.mark.parametrize("header", ["lineage_name,t,x,y,z", "Cell ID,t,x,y,z"])
def test_unrecognised_columns_list_the_accepted_names(tmp_path, header):
    src = tmp_path / "u.csv"
    src.write_text(f"{header}\nABa,1,1,2,3\n")
    with pytest.raises(DevolensError) as err:
        read_table(src)
    msg = str(err.value)
    assert "unrecognised columns (expected" in msg
    assert "cell (or name, cell_name), time (or t, frame, timepoint)" in msg and "embryo" in msg


@pytest.mark.parametrize("text", ["My embryo, 9 Oct\ntime,cell,x,y,z\n1,ABa,1,2,3\n",
                                  "Experiment 3\n\nTime;Cell;X;Y;Z\n1;ABa;1;2;3\n"])
def test_title_line_above_the_header_is_said(tmp_path, text):
    src = tmp_path / "t.csv"
    src.write_text(text)
    for reader in (read_table, read_positions):
        with pytest.raises(DevolensError, match="the first line looks like a title above the header .*: delete it"):
            reader(src)


def test_folder_naming_nuclei_nested_deeper(tmp_path):
    top = tmp_path / "top"
    for name, text in acetree_files({1: [(1, 10, 10, 1, 5, "ABa")]}).items():
        f = top / "myembryo" / "run1" / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    for reader in (read_table, read_acetree):
        with pytest.raises(DevolensError, match=r"but myembryo/run1/nuclei inside it does: give that folder"):
            reader(top)
    assert len(read_table(top / "myembryo" / "run1")) == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(DevolensError, match=r"folder holds no AceTree nuclei files \(tNNN-nuclei\)$"):
        read_table(tmp_path / "empty")
