"""European labs' tables (session 43): a lineage or positions CSV that Excel saved under German, French, Dutch...
settings (columns separated by semicolons, numbers with decimal commas: ``12,5``) is read as the comma-separated table
it stands for, with a note saying so (it was refused with "save it as a comma-separated CSV"): an EPIC CD table and
its AuxInfo, a tidy table for ``lineage`` and ``identify``, a positions table. A comma-separated table with a ';' in
a quoted value or name stays comma-separated. A decimal comma in a comma-separated table cannot be told from the
separators: refused with advice (unquoted, a row's values were read shifted under the wrong columns, silently where
they were numbers). Also: ``identify`` hashes an EPIC table's AuxInfo once for its record.

Then: an EPIC CD table separated by tabs with decimal commas (German Excel's 'Text (Tab delimited)'; also UTF-16
'Unicode Text') and a comma-separated table with its decimal commas in quotes ("38,0": LibreOffice, Google Sheets,
pandas' decimal=',') are read as the semicolon table is (both were refused: "a decimal comma cannot be told from the
commas that separate the columns", untrue there), with the same safeguards; in quotes, numbers that may group
thousands (English Excel's "1,234") are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _lineage_builders import write_cd
from _zoo_helpers import shipped
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io.tables import (
    CP1252_NOTE, QUOTED_DECIMAL_NOTE, SEMICOLON_DECIMAL_NOTE, SEMICOLON_NOTE, TAB_DECIMAL_NOTE, UTF16_NOTE,
    detect_format, read_epic_auxinfo, read_positions, read_table,
)
from devolens.lineage.populations import populations
from devolens.lineage.simulate import simulate_embryo

DATA = Path("/work/shared/data/epic")
REAL = "20241009_JIM767_25_L1"
AUX_HEADER = "name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis"
AUX_ROW = "20240101_T_L1,0.5514,-24.2484,380,384,598.5,396,48.4108,39.5,4.8636,89,5.7471,PDR"


def _excel_de(src: Path, dest: Path, encoding: str = "utf-8") -> Path:
    """``src`` as Excel saves it under German settings: columns separated by semicolons, decimal commas."""
    pd.read_csv(src, dtype=str, keep_default_na=False).map(
        lambda v: v.replace(".", ",") if v.replace(".", "", 1).lstrip("-").isdigit() else v
    ).to_csv(dest, sep=";", index=False, encoding=encoding)
    return dest


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b)
    for key in ("zscale", "ellipse", "axis", "time_seconds", "format"):
        assert a.attrs.get(key) == b.attrs.get(key), key


def _small_epic(folder: Path) -> Path:
    """A small EPIC CD table (z with fractions), its AuxInfo beside it."""
    folder.mkdir()
    rows = [(cell, t, 4.5 + k + t / 4, 300 + 40 * k + t, 250 + 20 * k, 60, -5)
            for t in range(1, 6) for k, cell in enumerate(("ABa", "ABp", "EMS", "P2"))]
    cd = write_cd(folder / "CD20240101_T_L1.csv", rows)
    (folder / "20240101_T_L1AuxInfo.csv").write_text(f"{AUX_HEADER}\n{AUX_ROW}\n")
    return cd


# ----------------------------------------------------------------------------- EPIC
@pytest.mark.skipif(not (DATA / f"CD{REAL}.csv").is_file(), reason="needs the EPIC tables of /work/shared/data")
def test_a_real_epic_table_saved_with_semicolons_counts_the_same_cells(tmp_path, capsys):
    comma, semi = tmp_path / "comma", tmp_path / "semi"
    for folder in (comma, semi):
        folder.mkdir()
        for name in (f"CD{REAL}.csv", f"{REAL}AuxInfo.csv", f"TIME{REAL}.csv"):
            shutil.copyfile(DATA / name, folder / name)
    _excel_de(comma / f"CD{REAL}.csv", semi / f"CD{REAL}.csv")  # (the TIME file is tab-separated: kept)
    _excel_de(comma / f"{REAL}AuxInfo.csv", semi / f"{REAL}AuxInfo.csv")
    assert "40,0;" in (semi / f"CD{REAL}.csv").read_text() and "5,7471" in (semi / f"{REAL}AuxInfo.csv").read_text()
    a, b = read_table(comma / f"CD{REAL}.csv"), read_table(semi / f"CD{REAL}.csv")
    _same(a, b)
    assert b.attrs["zscale"] == pytest.approx(5.7471) and b.attrs["notes"][0] == SEMICOLON_DECIMAL_NOTE
    assert any("AuxInfo file" in n and "semicolons" in n for n in b.attrs["notes"])
    assert b.attrs["source"] == str(semi / f"CD{REAL}.csv")
    for folder in (comma, semi):
        assert main(["lineage", "populations", str(folder / f"CD{REAL}.csv"), "--out", str(folder / "pops.csv")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (comma / "pops.csv").read_bytes() == (semi / "pops.csv").read_bytes()
    assert err.count("separated by semicolons and the numbers have decimal commas") == 1
    notes = json.loads((semi / "pops.json").read_text())["notes"]
    assert notes[0] == SEMICOLON_DECIMAL_NOTE and "," in (semi / "pops.csv").read_text().splitlines()[0]


def test_a_small_epic_table_and_its_auxinfo_saved_with_semicolons_read_the_same(tmp_path, capsys):
    cd = _small_epic(tmp_path / "comma")
    semi = tmp_path / "semi"
    semi.mkdir()
    _excel_de(cd, semi / cd.name)
    _excel_de(cd.with_name("20240101_T_L1AuxInfo.csv"), semi / "20240101_T_L1AuxInfo.csv")
    text = (semi / cd.name).read_text()
    assert text.startswith("cellTime;cell;time;") and ";4,75;" in text
    assert detect_format(semi / cd.name) == "epic"
    a, b = read_table(cd), read_table(semi / cd.name)
    _same(a, b)
    assert b["z"].iloc[0] == 4.75 and b.attrs["ellipse"]["maj"] == 598.5
    assert b.attrs["notes"] == [SEMICOLON_DECIMAL_NOTE, "the AuxInfo file 20240101_T_L1AuxInfo.csv is separated by "
                                "semicolons, with decimal commas, as the table is: read as such"]
    aux = read_epic_auxinfo(semi / "20240101_T_L1AuxInfo.csv")  # alone, as given with --auxinfo
    assert aux["zscale"] == 5.7471 and aux["axis"] == "PDR"
    _same(populations(a), populations(b))
    # lineage clean and cliffs read it as the comma one; what they write keeps commas and decimal points
    for folder in (cd.parent, semi):
        assert main(["lineage", "clean", str(folder / cd.name), "--out", str(folder / "clean.csv")]) == 0
        assert main(["lineage", "cliffs", str(folder / cd.name)]) == 0
    capsys.readouterr()
    assert (cd.parent / "clean.csv").read_bytes() == (semi / "clean.csv").read_bytes()
    assert "4.75" in (semi / "clean.csv").read_text()


def test_whole_numbers_with_semicolons_are_noted_without_decimal_commas(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("time;cell;x;y;z\n1;ABa;10;20;3\n2;ABa;11;20;3\n")
    df = read_table(p)
    assert df["x"].tolist() == [10.0, 11.0] and df.attrs["notes"] == [SEMICOLON_NOTE]


# ----------------------------------------------------------------------------- tidy tables, identify, positions
def test_a_tidy_table_saved_with_semicolons_reads_as_the_comma_one(tmp_path):
    sim = simulate_embryo(3, n_cells=30)
    comma = tmp_path / "sim.csv"
    sim.to_csv(comma, index=False)
    semi = tmp_path / "de" / "sim.csv"
    semi.parent.mkdir()
    sim.to_csv(semi, sep=";", decimal=",", index=False)
    assert ";40,177;" in semi.read_text()
    for reader in (read_table, read_positions):  # lineage commands and identify
        a, b = reader(comma), reader(semi)
        _same(a, b)
        assert b.attrs["notes"][0] == SEMICOLON_DECIMAL_NOTE


def test_a_positions_table_in_windows_1252_with_semicolons(tmp_path):
    """German Excel's 'CSV (Trennzeichen-getrennt)': Windows-1252 and semicolons; a unit in the names (µm)."""
    p = tmp_path / "spots.csv"
    p.write_bytes("t;x (µm);y (µm);z (µm);Durchmesser\n0;10,5;20,25;3,5;4\n1;11,5;20,5;3,75;4\n".encode("cp1252"))
    df = read_positions(p)
    assert df["x"].tolist() == [10.5, 11.5] and df["z"].tolist() == [3.5, 3.75] and df["time"].tolist() == [0, 1]
    assert df.attrs["zscale"] == 1.0 and df.attrs["notes"][:2] == [CP1252_NOTE, SEMICOLON_DECIMAL_NOTE]


@pytest.mark.skipif(not shipped("identity"), reason="identity weights not shipped")
def test_identify_names_a_semicolon_table_as_the_comma_one(tmp_path, capsys):
    sim = simulate_embryo(3, n_cells=30)
    (tmp_path / "de").mkdir()
    sim.to_csv(tmp_path / "sim.csv", index=False)
    sim.to_csv(tmp_path / "de" / "sim.csv", sep=";", decimal=",", index=False)
    for folder in (tmp_path, tmp_path / "de"):
        assert main(["identify", str(folder / "sim.csv"), "--out", str(folder / "names.csv"), "--tta", "1",
                     "--smooth", "none"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (tmp_path / "names.csv").read_bytes() == (tmp_path / "de" / "names.csv").read_bytes()
    assert "note: the columns are separated by semicolons and the numbers have decimal commas" in err
    assert json.loads((tmp_path / "de" / "names.json").read_text())["notes"][0] == SEMICOLON_DECIMAL_NOTE


# ----------------------------------------------------------------------------- comma tables stay as they were
def test_a_comma_table_with_a_semicolon_in_a_quoted_value_or_name_stays_comma_separated(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('time,cell,x,y,z,"note; free"\n1,"AB;a",1.5,2,3,"a;b;c"\n2,ABp,2.5,2,3,x\n')
    df = read_table(p)
    assert df["cell"].tolist() == ["AB;a", "ABp"] and df["x"].tolist() == [1.5, 2.5]
    assert df["note; free"].tolist() == ["a;b;c", "x"] and not df.attrs.get("notes")
    q = tmp_path / "q.csv"  # every name quoted, ';' in one: still the commas
    q.write_text('"time","cell","x","y","z","a;b;c;d"\n1,ABa,1.5,2,3,4\n')
    assert read_table(q)["a;b;c;d"].tolist() == [4]


def test_r_row_names_are_still_read(tmp_path):
    """R's write.table(sep=","): a quoted row name before each row, none in the header."""
    p = tmp_path / "r.csv"
    p.write_text('"embryo","time","cell","x","y","z"\n"1","e",1,"ABa",1.5,2,3\n"2","e",2,"ABa",2.5,2,3\n')
    df = read_table(p)
    assert df["cell"].tolist() == ["ABa", "ABa"] and df["x"].tolist() == [1.5, 2.5] and df["time"].tolist() == [1, 2]


# ----------------------------------------------------------------------------- ambiguous: refused, with advice
ADVICE = "write decimal points (12.5), or save the table separated by semicolons"


def test_decimal_commas_in_a_comma_table_are_refused_not_read_shifted(tmp_path):
    """Unquoted, 1,5 is two fields: a row's values were read under the wrong columns (EPIC: x 5, size 264; tidy:
    embryo 1, time 5...), silently."""
    cd = _small_epic(tmp_path / "e")
    lines = cd.read_text().splitlines()
    lines[3] = lines[3].replace(",6.75,", ",6,75,")  # EMS at time 1
    assert lines[3].count(",") == 13
    cd.write_text("\n".join(lines) + "\n")
    with pytest.raises(DevolensError, match=r"CD20240101_T_L1.csv: line 4 has 14 fields, the header 13: its values "
                                            r"would be read under the wrong columns; a decimal comma") as err:
        read_table(cd)
    assert ADVICE in str(err.value)
    tidy = tmp_path / "t.csv"
    tidy.write_text("embryo,time,cell,x,y,z\ne,1,ABa,1,5,2,5,3,5\ne,1,ABp,1,5,2,5,3,5\n")
    for reader in (read_table, read_positions):
        with pytest.raises(DevolensError, match="line 2 has 9 fields, the header 6"):
            reader(tidy)
    quoted = tmp_path / "q.csv"  # quoted, it is one field, told from the separators: read (test_quoted_...)
    quoted.write_text('time,cell,x,y,z\n1,ABa,"1,5",2,3\n')
    assert read_table(quoted)["x"].tolist() == [1.5]


def test_a_column_with_decimal_commas_and_points_is_refused(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("time;cell;x;y;z\n1;ABa;1,5;2;3\n2;ABa;1.234;2;3\n")
    with pytest.raises(DevolensError, match=r"column 'x' holds numbers with a decimal comma \(line 2: '1,5'\) and "
                                            r"with a decimal point \(line 3: '1.234'\)"):
        read_table(p)


def test_a_semicolon_table_of_unknown_columns_is_unrecognised(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a;b;c\n1;2;3,5\n")
    with pytest.raises(DevolensError, match=r"unrecognised columns \(expected .*; found a,b,c\)"):
        read_table(p)


def test_a_name_that_looks_like_a_number_keeps_its_comma(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("embryo;time;cell;x;y;z\n1,5;1;ABa;1,5;2;3\n")
    df = read_table(p)
    assert df["embryo"].tolist() == ["1,5"] and df["x"].tolist() == [1.5]


# ----------------------------------------------------------------------------- identify hashes the AuxInfo once
@pytest.mark.skipif(not shipped("identity"), reason="identity weights not shipped")
def test_identify_hashes_the_auxinfo_once(tmp_path, monkeypatch, capsys):
    import devolens.provenance as provenance

    cd = _small_epic(tmp_path / "e")
    aux = cd.with_name("20240101_T_L1AuxInfo.csv")
    hashed: list[Path] = []
    real = provenance.file_sha256

    def counted(path):
        hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(provenance, "file_sha256", counted)
    assert main(["identify", str(cd), "--out", str(tmp_path / "names.csv"), "--smooth", "none"]) == 0
    capsys.readouterr()
    assert hashed.count(aux) == 1 and hashed.count(cd) == 1
    record = json.loads((tmp_path / "names.json").read_text())
    assert record["zscale"]["file"] == record["inputs"][1] and record["inputs"][1]["path"] == str(aux.absolute())
    assert np.isclose(record["zscale"]["value"], 5.7471)


# ----------------------------------------------------------------------------- tabs, and decimal commas in quotes
REAL_L3 = "20241010_JIM767_25_L3"


def _decimal_commas(src: Path, dest: Path, sep: str, encoding: str = "utf-8") -> Path:
    """``src`` with decimal commas, separated by ``sep``: tabs (German Excel's 'Text (Tab delimited)'), or commas
    (pandas then quotes each number with a comma: "38,0", as LibreOffice and Google Sheets do)."""
    pd.read_csv(src, dtype=str, keep_default_na=False).map(
        lambda v: v.replace(".", ",") if v.replace(".", "", 1).lstrip("-").isdigit() else v
    ).to_csv(dest, sep=sep, index=False, encoding=encoding)
    return dest


@pytest.mark.skipif(not (DATA / f"CD{REAL_L3}.csv").is_file(), reason="needs the EPIC tables of /work/shared/data")
def test_the_real_l3_table_with_decimal_commas_after_tabs_or_in_quotes_counts_the_same_cells(tmp_path, capsys):
    folders = {name: tmp_path / name for name in ("comma", "tab", "quoted")}
    for folder in folders.values():
        folder.mkdir()
        for name in (f"{REAL_L3}AuxInfo.csv", f"TIME{REAL_L3}.csv"):
            shutil.copyfile(DATA / name, folder / name)
    cd = f"CD{REAL_L3}.csv"
    shutil.copyfile(DATA / cd, folders["comma"] / cd)
    _decimal_commas(DATA / cd, folders["tab"] / cd, "\t")
    _decimal_commas(DATA / cd, folders["quoted"] / cd, ",")
    assert "\t38,0\t" in (folders["tab"] / cd).read_text() and ',"38,0",' in (folders["quoted"] / cd).read_text()
    a = read_table(folders["comma"] / cd)
    for name, note in (("tab", TAB_DECIMAL_NOTE), ("quoted", QUOTED_DECIMAL_NOTE)):
        b = read_table(folders[name] / cd)
        _same(a, b)
        assert b.attrs["notes"][0] == note and b.attrs["source"] == str(folders[name] / cd)
    for folder in folders.values():
        assert main(["lineage", "populations", str(folder / cd), "--out", str(folder / "pops.csv")]) == 0
    capsys.readouterr()
    pops = {name: (folder / "pops.csv").read_bytes() for name, folder in folders.items()}
    assert pops["tab"] == pops["comma"] == pops["quoted"]


def test_a_small_epic_table_separated_by_tabs_with_decimal_commas_reads_as_the_comma_one(tmp_path, capsys):
    cd = _small_epic(tmp_path / "comma")
    tab = tmp_path / "tab"
    tab.mkdir()
    shutil.copyfile(cd.with_name("20240101_T_L1AuxInfo.csv"), tab / "20240101_T_L1AuxInfo.csv")
    _decimal_commas(cd, tab / cd.name, "\t")
    assert "\t4,75\t" in (tab / cd.name).read_text() and detect_format(tab / cd.name) == "epic"
    a, b = read_table(cd), read_table(tab / cd.name)
    _same(a, b)
    assert b["z"].iloc[0] == 4.75 and b.attrs["notes"][0] == TAB_DECIMAL_NOTE
    _same(populations(a), populations(b))
    assert main(["lineage", "convert", str(tab / cd.name), "--out", str(tmp_path / "x.csv")]) == 0
    assert "numbers have decimal commas" in capsys.readouterr().err
    assert "4.75" in (tmp_path / "x.csv").read_text()
    # with decimal points, as older EPIC exports: read as it always was, without a note
    points = tmp_path / "points"
    points.mkdir()
    shutil.copyfile(cd.with_name("20240101_T_L1AuxInfo.csv"), points / "20240101_T_L1AuxInfo.csv")
    pd.read_csv(cd, dtype=str).to_csv(points / cd.name, sep="\t", index=False)
    _same(a, read_table(points / cd.name))
    assert not any("decimal" in n for n in read_table(points / cd.name).attrs.get("notes") or [])


def test_a_tab_table_keeps_its_names_and_refuses_a_column_of_decimal_commas_and_points(tmp_path):
    cd = _small_epic(tmp_path / "e")
    tab = _decimal_commas(cd, tmp_path / cd.name, "\t")
    lines = tab.read_text().splitlines()
    lines[2] = lines[2].replace("\t5,75\t", "\t5.75\t", 1)
    assert "\t5.75\t" in lines[2]
    tab.write_text("\n".join(lines) + "\n")
    with pytest.raises(DevolensError, match=r"column 'z' holds numbers with a decimal comma \(line 2: '4,75'\) and "
                                            r"with a decimal point \(line 3: '5.75'\)"):
        read_table(tab)
    names = tmp_path / "names.csv"  # a cell named like a number keeps its comma
    names.write_text("cellTime\tcell\ttime\tnone\tglobal\tlocal\tblot\tcross\tz\tx\ty\tsize\tgweight\n"
                     "1,5:1\t1,5\t1\t0\t0\t0\t-5\t0\t4,75\t300\t250\t60\t0\n")
    df = read_table(names)
    assert df["cell"].tolist() == ["1,5"] and df["z"].tolist() == [4.75]


def test_utf16_unicode_text_with_decimal_commas_is_read(tmp_path):
    """German Excel's 'Unicode Text': UTF-16, tabs, decimal commas (refused: '1,5' not numeric)."""
    p = tmp_path / "t.txt"
    p.write_bytes("time\tcell\tx\ty\tz\n1\tABa\t1,5\t2\t3,25\n2\tABa\t2,5\t2\t3\n".encode("utf-16"))
    df = read_table(p)
    assert df["x"].tolist() == [1.5, 2.5] and df["z"].tolist() == [3.25, 3.0]
    assert df.attrs["notes"][:2] == [UTF16_NOTE, TAB_DECIMAL_NOTE]


def test_quoted_decimal_commas_in_a_comma_table_are_read(tmp_path):
    sim = simulate_embryo(3, n_cells=30)
    comma = tmp_path / "sim.csv"
    sim.to_csv(comma, index=False)
    quoted = tmp_path / "q" / "sim.csv"
    quoted.parent.mkdir()
    sim.to_csv(quoted, decimal=",", index=False)  # (pandas quotes each number with a comma)
    assert ',"40,177' in quoted.read_text()
    for reader in (read_table, read_positions):
        a, b = reader(comma), reader(quoted)
        _same(a, b)
        assert b.attrs["notes"][0] == QUOTED_DECIMAL_NOTE
    cd = _small_epic(tmp_path / "e")
    q = _decimal_commas(cd, tmp_path / "e2.csv", ",")
    shutil.copyfile(cd.with_name("20240101_T_L1AuxInfo.csv"), tmp_path / "20240101_T_L1AuxInfo.csv")
    q = q.rename(tmp_path / cd.name)
    _same(read_table(cd), read_table(q))


def test_quoted_decimal_commas_keep_names_and_refuse_what_cannot_be_told(tmp_path):
    p = tmp_path / "t.csv"  # a quoted name like a number keeps its comma, and is not looked at again
    p.write_text('embryo,time,cell,x,y,z\n"1,5",1,ABa,"1,5",2,3\n"1,5",2,ABa,2,2,3\n')
    df = read_table(p)
    assert df["embryo"].tolist() == ["1,5", "1,5"] and df["x"].tolist() == [1.5, 2.0]
    names = tmp_path / "n.csv"  # only a name: read as it is, without a note
    names.write_text('embryo,time,cell,x,y,z\n"1,5",1,ABa,1.5,2,3\n')
    df = read_table(names)
    assert df["embryo"].tolist() == ["1,5"] and not any("decimal" in n for n in df.attrs.get("notes") or [])
    grouped = tmp_path / "g.csv"  # English Excel's thousands: 1,234 is 1234 there, 1.234 under German settings
    grouped.write_text('time,cell,x,y,z\n1,ABa,"1,234",2,3\n2,ABa,"2,500",2,3\n')
    with pytest.raises(DevolensError, match=r"column 'x' holds numbers in quotes with a comma \(line 2: '1,234'\).*"
                                            r"cannot be told; write the numbers with decimal points"):
        read_table(grouped)
    decimal = tmp_path / "d.csv"  # one of them cannot group thousands: decimal commas
    decimal.write_text('time,cell,x,y,z\n1,ABa,"1,234",2,3\n2,ABa,"2,5",2,3\n')
    assert read_table(decimal)["x"].tolist() == [1.234, 2.5]
    mixed = tmp_path / "m.csv"
    mixed.write_text('time,cell,x,y,z\n1,ABa,"1,5",2,3\n2,ABa,1.234,2,3\n')
    with pytest.raises(DevolensError, match=r"column 'x' holds numbers with a decimal comma \(line 2: '1,5'\) and "
                                            r"with a decimal point \(line 3: '1.234'\)"):
        read_table(mixed)
    many = tmp_path / "k.csv"
    many.write_text('time,cell,x,y,z\n1,ABa,"1,234,567",2,3\n')
    with pytest.raises(DevolensError, match=r"column 'x' is not numeric .*thousands grouped"):
        read_table(many)
