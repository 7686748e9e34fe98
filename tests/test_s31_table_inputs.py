"""Untrusted lineage tables: AceTree zip bombs, several files for one time point, non-UTF-8 nuclei files; infinite
and absurd coordinates in any table; an AuxInfo's or a sidecar's unusable z scale."""

from __future__ import annotations

import json
import struct
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest

from devolens.errors import DevolensError
from devolens.io import tables
from devolens.io.tables import read_acetree, read_epic_auxinfo, read_positions, read_table, read_tidy, write_tidy
from devolens.render.geometry import embryo_geometry

from _lineage_builders import SMALL_FRAMES, acetree_files, nuclei_line, run_cli, write_acetree_zip, write_cd

AUX_HEADER = "name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis\n"


def _declare_size(path, size: int) -> None:
    """Make the zip ``path``'s central directory declare ``size`` bytes uncompressed for its first member (a zip
    whose header lies, or a bomb's, without writing gigabytes)."""
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")
    data[at + 24:at + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


# ----------------------------------------------------------------------------- zip bombs
def test_member_declaring_gigabytes_is_refused_before_reading(tmp_path):
    z = write_acetree_zip(tmp_path / "bomb.zip", {1: SMALL_FRAMES[1]})
    _declare_size(z, 0xFFFFFFF0)  # ~4 GB
    with pytest.raises(DevolensError, match=r"zip member nuclei/t001-nuclei unpacks to 4,096 MB.*not an AceTree "
                                            r"export") as e:
        read_acetree(z)
    assert "\n" not in str(e.value)


def test_member_unpacking_past_the_cap_is_refused(tmp_path, monkeypatch):
    """A compressed bomb in small: 1 MB of one nuclei line, deflated to a few KB, read under a 64 KB cap."""
    monkeypatch.setattr(tables, "NUCLEI_FILE_MAX", 65536)
    line = (nuclei_line(1, 1, 10, 20, 5.0, 12, "ABa") + "\n").encode()
    with zipfile.ZipFile(tmp_path / "b.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("nuclei/t001-nuclei", line * (2**20 // len(line)))
    assert (tmp_path / "b.zip").stat().st_size < 65536
    with pytest.raises(DevolensError, match="unpacks to 1 MB, more than any AceTree nuclei file"):
        read_acetree(tmp_path / "b.zip")
    # a lying header (declaring less than the cap) cannot carry more: zipfile stops at the declared size
    _declare_size(tmp_path / "b.zip", 100)
    with pytest.raises(DevolensError, match="is damaged"):
        read_acetree(tmp_path / "b.zip")


def test_series_past_the_total_cap_is_refused(tmp_path, monkeypatch):
    z = write_acetree_zip(tmp_path / "e.zip", SMALL_FRAMES)
    monkeypatch.setattr(tables, "NUCLEI_TOTAL_MAX", 300)  # each file is under it, the two together are not
    with pytest.raises(DevolensError, match="the zip's 2 nuclei files unpacks? to .*nuclei series"):
        read_acetree(z)
    folder = tmp_path / "f"
    for name, text in acetree_files(SMALL_FRAMES).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    with pytest.raises(DevolensError, match="folder's 2 nuclei files holds .*: not AceTree nuclei files"):
        read_acetree(folder)
    monkeypatch.setattr(tables, "NUCLEI_TOTAL_MAX", 10**6)
    monkeypatch.setattr(tables, "NUCLEI_FILE_MAX", 100)
    with pytest.raises(DevolensError, match="t001-nuclei holds"):
        read_acetree(folder)
    with pytest.raises(DevolensError, match="t001-nuclei holds more than 0 MB"):  # the single file, read bounded
        read_acetree(folder / "nuclei" / "t001-nuclei")


def test_real_sized_series_reads(tmp_path):
    """A nuclei file of 2,000 nuclei (10x the largest real one's) is far under the cap."""
    rows = [(1, i, i, 5.0, 10, f"N{i}") for i in range(2000)]
    df = read_acetree(write_acetree_zip(tmp_path / "big.zip", {1: rows, 2: rows}))
    assert len(df) == 4000


def test_bomb_cli_one_line(tmp_path, capsys):
    z = write_acetree_zip(tmp_path / "bomb.zip", {1: SMALL_FRAMES[1]})
    _declare_size(z, 0xFFFFFFF0)
    code, out, err = run_cli(["lineage", "convert", str(z), "-o", str(tmp_path / "o.csv")], capsys)
    assert code == 2 and "not an AceTree export" in err and "memory" not in err
    assert not (tmp_path / "o.csv").exists()


# ----------------------------------------------------------------------------- one file per time point
def test_same_member_twice_is_refused(tmp_path):
    files = acetree_files(SMALL_FRAMES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        with zipfile.ZipFile(tmp_path / "dup.zip", "w") as zf:
            for name, text in files.items():
                zf.writestr(name, text)
            zf.writestr("nuclei/t002-nuclei", files["nuclei/t001-nuclei"])
    with pytest.raises(DevolensError, match=r"zip holds nuclei/t002-nuclei 2 times.*keep one"):
        read_acetree(tmp_path / "dup.zip")


def test_several_files_for_one_time_point_are_refused(tmp_path):
    files = acetree_files(SMALL_FRAMES)
    with zipfile.ZipFile(tmp_path / "samet.zip", "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
        zf.writestr("nuclei/t2-nuclei", files["nuclei/t001-nuclei"])
    with pytest.raises(DevolensError, match=r"several nuclei files for time point 2 "
                                            r"\(nuclei/t002-nuclei, nuclei/t2-nuclei\)"):
        read_acetree(tmp_path / "samet.zip")
    folder = tmp_path / "f" / "nuclei"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder.parent / name).write_text(text)
    (folder / "t2-nuclei").write_text(files["nuclei/t001-nuclei"])
    with pytest.raises(DevolensError, match=r"folder holds several nuclei files for time point 2 "
                                            r"\(t002-nuclei, t2-nuclei\)"):
        read_acetree(folder.parent)


# ----------------------------------------------------------------------------- encodings
def test_latin1_member_is_read_with_a_note(tmp_path):
    with zipfile.ZipFile(tmp_path / "latin.zip", "w") as zf:
        zf.writestr("nuclei/t001-nuclei", (nuclei_line(1, 1, 100, 100, 10, 20, "AB\xe9a") + "\n").encode("latin-1"))
        zf.writestr("nuclei/t002-nuclei", nuclei_line(1, 1, 100, 100, 10, 20, "ABa") + "\n")
    df = read_acetree(tmp_path / "latin.zip")
    assert df["cell"].tolist() == ["AB\xe9a", "ABa"]
    assert any("1 nuclei file(s) are Windows-1252" in n for n in df.attrs["notes"])


def test_undecodable_member_names_file_and_line(tmp_path):
    text = nuclei_line(1, 1, 100, 100, 10, 20, "ABa") + "\n" + nuclei_line(2, 1, 1, 1, 1, 20, "AB\x81") + "\n"
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("nuclei/t003-nuclei", text.encode("latin-1"))  # 0x81: no Windows-1252 character
    with pytest.raises(DevolensError, match=r"nuclei file t003, line 2: not UTF-8 text \(byte 0x81\)"):
        read_acetree(tmp_path / "bad.zip")


# ----------------------------------------------------------------------------- infinite and absurd values
@pytest.mark.parametrize("col, value, match", [
    ("y", "inf", r"column 'y' is not a finite number \(line 3: inf\)"),
    ("z", "-inf", r"column 'z' is not a finite number \(line 3: -inf\)"),
    ("size", "inf", r"column 'size' is not a finite number \(line 3: inf\)"),
    ("x", "1e308", r"column 'x' holds an absurd value \(line 3: 1e\+308\)"),
    ("size", "1e300", r"column 'size' holds an absurd value \(line 3: 1e\+300\)"),
])
def test_epic_non_finite_refused(tmp_path, col, value, match):
    rows = {"z": 4.0, "x": 100, "y": 200, "size": 60}
    rows[col] = value
    cd = write_cd(tmp_path / "CDe.csv", [("ABa", 1, 4.0, 100, 200, 60, -5),
                                         ("ABp", 2, rows["z"], rows["x"], rows["y"], rows["size"], -6)])
    with pytest.raises(DevolensError, match=match) as e:
        read_table(cd)
    assert str(e.value).startswith(str(cd))


def test_epic_large_real_values_kept(tmp_path):
    cd = write_cd(tmp_path / "CDe.csv", [("ABa", 1, 4.0, 999_999, -999_999, 60, -5), ("ABp", 1, 4.0, 1, 1, "", 0)])
    df = read_table(cd)
    assert df["x"].tolist() == [999_999, 1] and np.isnan(df["size"].iat[1])


def test_tidy_and_positions_non_finite_refused(tmp_path):
    tidy = tmp_path / "t.csv"
    tidy.write_text("embryo,time,cell,x,y,z,size\ne,1,ABa,1,2,3,4\n\ne,2,ABa,1,2,inf,4\n")
    with pytest.raises(DevolensError, match=r"column 'z' is not a finite number \(line 4: inf\)"):
        read_tidy(tidy)
    pos = tmp_path / "spots.csv"
    pos.write_text("FRAME,POSITION_X,POSITION_Y,POSITION_Z,RADIUS\nFrame,X,Y,Z,R\n(frame),(micron),(micron),(micron),"
                   "(micron)\n0,1,2,3,4\n1,1,2,3,-Infinity\n")
    with pytest.raises(DevolensError, match=r"column 'radius' is not a finite number \(line 5: -inf\)"):
        read_positions(pos)


def test_acetree_non_finite_names_file_and_line(tmp_path):
    files = acetree_files({1: SMALL_FRAMES[1], 2: [(1, 11, 21, 5.0, 12, "ABal")]})
    files["nuclei/t002-nuclei"] += "2,1,-1,-1,-1,12,inf,5.5,12,ABar\n"  # (" inf", spaced, is "not numeric")
    with zipfile.ZipFile(tmp_path / "e.zip", "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    with pytest.raises(DevolensError, match=r"column 'y' is not a finite number \(nuclei file t002, line 2: inf\)"):
        read_acetree(tmp_path / "e.zip")
    z = write_acetree_zip(tmp_path / "d.zip", {1: [(1, 10, 20, 5.0, "1e300", "ABa")]})
    with pytest.raises(DevolensError, match=r"column 'diameter' holds an absurd value \(nuclei file t001, line 1"):
        read_acetree(z)


def test_convert_of_infinite_table_refused(tmp_path, capsys):
    cd = write_cd(tmp_path / "CDinf.csv", [("ABa", 1, 4.0, 100, 200, 60, -5), ("ABp", 2, 4.0, 100, "inf", 60, -5)])
    code, out, err = run_cli(["lineage", "convert", str(cd), "-o", str(tmp_path / "o.csv")], capsys)
    assert code == 2 and "column 'y' is not a finite number (line 3: inf)" in err
    assert not (tmp_path / "o.csv").exists()


def test_geometry_without_finite_rows_is_a_user_error():
    table = pd.DataFrame({"time": [1, 1], "x": [np.nan, 1.0], "y": [1.0, np.inf], "z": [1.0, 1.0],
                          "size": [5.0, 5.0]})
    with pytest.raises(DevolensError, match="no row with finite x, y and z") as e:
        embryo_geometry(table)
    assert isinstance(e.value, ValueError)  # (callers catching ValueError still catch it)


# ----------------------------------------------------------------------------- z scales
@pytest.mark.parametrize("value", ["0", "-5", "1e12", "inf", "0.001"])
def test_auxinfo_unusable_zpixres_is_unknown_with_a_note(tmp_path, value):
    aux = tmp_path / "eAuxInfo.csv"
    aux.write_text(AUX_HEADER + f"e,0.55,-24,380,384,598,396,48.4,39.5,4.86,89,{value},PDR\n")
    a = read_epic_auxinfo(aux)
    assert a["zscale"] is None and a["ellipse"]["maj"] == 598.0
    assert len(a["notes"]) == 1 and f"eAuxInfo.csv gives zpixres {float(value):g}, not a z plane spacing" \
        in a["notes"][0]
    cd = write_cd(tmp_path / "CDe.csv", [("ABa", 1, 4.0, 100, 200, 60, -5)])
    df = read_table(cd)
    assert df.attrs["zscale"] is None and any("zpixres" in n for n in df.attrs["notes"])


@pytest.mark.parametrize("value, zscale", [("5.7471", 5.7471), ("", None)])
def test_auxinfo_usable_or_missing_zpixres_without_note(tmp_path, value, zscale):
    aux = tmp_path / "eAuxInfo.csv"
    aux.write_text(AUX_HEADER + f"e,0.55,-24,380,384,598,396,48.4,39.5,4.86,89,{value},PDR\n")
    a = read_epic_auxinfo(aux)
    assert a["zscale"] == zscale and a["notes"] == []


def test_render_does_not_keep_a_negative_zpixres(tmp_path, capsys):
    cd = write_cd(tmp_path / "CDe.csv", [(f"N{i}", t, 4.0 + i % 5, 100 + 7 * i, 200 + 3 * (i % 9), 30, 0)
                                         for t in (1, 2) for i in range(20)])
    (tmp_path / "eAuxInfo.csv").write_text(AUX_HEADER + "e,0.55,-24,380,384,598,396,48.4,39.5,4.86,89,-5,PDR\n")
    code, out, err = run_cli(["render", str(cd), "-o", str(tmp_path / "r"), "--times", "1-2", "--size", "64", "64"],
                             capsys)
    assert code == 0, err
    assert "gives zpixres -5" in err
    assert embryo_geometry(read_table(cd)).zscale > 0


@pytest.mark.parametrize("value", [-5, 0, "5", True, 1e999])
def test_sidecar_unusable_zscale_is_unknown_with_a_note(tmp_path, value):
    df = read_table(write_cd(tmp_path / "CDe.csv", [("ABa", 1, 4.0, 100, 200, 60, -5)]))
    out = tmp_path / "t.csv"
    df.attrs["zscale"] = 5.0
    write_tidy(df, out)
    meta = json.loads((tmp_path / "t.meta.json").read_text())
    meta["zscale"] = value
    (tmp_path / "t.meta.json").write_text(json.dumps(meta))
    back = read_tidy(out)
    assert back.attrs["zscale"] is None
    assert any("t.meta.json gives zscale" in n for n in back.attrs["notes"])
    meta["zscale"] = 0.001  # x, y in µm, z in nm: kept
    (tmp_path / "t.meta.json").write_text(json.dumps(meta))
    assert read_tidy(out).attrs["zscale"] == 0.001
