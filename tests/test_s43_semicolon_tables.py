"""European labs' tables (session 43): a lineage or positions CSV that Excel saved under German, French, Dutch...
settings (columns separated by semicolons, numbers with decimal commas: ``12,5``) is read as the comma-separated table
it stands for, with a note saying so (it was refused with "save it as a comma-separated CSV"): an EPIC CD table and
its AuxInfo, a tidy table for ``lineage`` and ``identify``, a positions table. A comma-separated table with a ';' in
a quoted value or name stays comma-separated. A decimal comma in a comma-separated table cannot be told from the
separators: refused with advice (unquoted, a row's values were read shifted under the wrong columns, silently where
they were numbers). Also: ``identify`` hashes an EPIC table's AuxInfo once for its record."""

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
    CP1252_NOTE, SEMICOLON_DECIMAL_NOTE, SEMICOLON_NOTE, detect_format, read_epic_auxinfo, read_positions, read_table,
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
    quoted = tmp_path / "q.csv"  # quoted, it is one field: not a number
    quoted.write_text('time,cell,x,y,z\n1,ABa,"1,5",2,3\n')
    with pytest.raises(DevolensError, match=r"column 'x' is not numeric \(line 2: '1,5'\): a decimal comma") as err:
        read_table(quoted)
    assert ADVICE in str(err.value)


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
