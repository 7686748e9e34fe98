"""Lineage tables as other labs' tools write them (tiny examples written here, no real data).

EPIC CD tables with other capitalisation or tabs (older exports), AceTree nuclei zips with
polar bodies, dead nuclei, the old space-separated layout or a second copy of ``nuclei/``,
TrackMate and Mastodon spot exports in microns, and positions with a unit in the column names.
"""

from __future__ import annotations

import zipfile

import pandas as pd
import pytest

from devolens.errors import DevolensError
from devolens.io.tables import read_positions, read_table
from devolens.lineage.populations import populations

CELLS = {"ABa": (230, 268, 38.0), "ABp": (300, 270, 30.0), "EMS": (350, 280, 25.0), "P2": (420, 300, 20.0)}
EPIC_HEADER = "cellTime,cell,time,none,global,local,blot,cross,z,x,y,size,gweight"


def epic_rows(times=(1, 2)):
    return [f"{c}:{t},{c},{t},1230,-23770,-201,-201,1230,{z},{x + t},{y},70,371898"
            for t in times for c, (x, y, z) in CELLS.items()]


def acetree_line(i, status, name, x=100, y=100, z=10.0, d=25):
    return ", ".join([str(i), str(status), "-1", "-1", "-1", str(x), str(y), f"{z:.1f}", str(d), name, "6476",
                      "0", "0", "0", "", "0", "0", "0", "0", "0"]) + ", "


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


# ----------------------------------------------------------------------------- EPIC
def test_epic_header_in_other_capitalisation(tmp_path):
    path = tmp_path / "CDcaps.csv"
    path.write_text("\n".join(["CellTime,Cell,Time,None,Global,Local,Blot,Cross,Z,X,Y,Size,Gweight"]
                              + epic_rows()) + "\n")
    df = read_table(path)
    assert df.attrs["format"] == "epic" and len(df) == 8
    assert df["cell"].tolist()[:4] == list(CELLS) and df["x"].iloc[0] == 231 and df["blot"].iloc[0] == -201


def test_epic_header_with_spaces_after_commas(tmp_path):
    path = tmp_path / "CDspaced.csv"
    path.write_text("\n".join([EPIC_HEADER.replace(",", ", ")] + epic_rows()) + "\n")
    ref = tmp_path / "CDcommas.csv"
    ref.write_text("\n".join([EPIC_HEADER] + epic_rows()) + "\n")
    pd.testing.assert_frame_equal(read_table(path).drop(columns="embryo"), read_table(ref).drop(columns="embryo"))


def test_capitalised_positions_are_not_taken_for_epic(tmp_path):
    """Without cellTime only EPIC's own lower-case names make an EPIC table: an Embryo column is kept."""
    path = tmp_path / "caps.csv"
    path.write_text("Embryo,Time,Cell,X,Y,Z,Size\ne1,1,ABa,1,2,3,10\ne2,1,ABa,5,6,7,10\n")
    df = read_positions(path)
    assert df.attrs["format"] == "positions" and df["embryo"].tolist() == ["e1", "e2"]


def test_epic_table_saved_tab_separated(tmp_path):
    path = tmp_path / "CDtabs.csv"
    path.write_text("\n".join(line.replace(",", "\t") for line in [EPIC_HEADER] + epic_rows()) + "\n")
    df = read_table(path)
    ref = tmp_path / "CDcommas.csv"
    ref.write_text("\n".join([EPIC_HEADER] + epic_rows()) + "\n")
    pd.testing.assert_frame_equal(df.drop(columns="embryo"), read_table(ref).drop(columns="embryo"))


def test_other_tab_separated_tables_still_refused(tmp_path):
    tsv = tmp_path / "tidy.csv"  # (columns no reader knows: a tidy table's tabs are read, test_s44_small)
    tsv.write_text("cell\tt_min\tpx\tpy\tpz\nABa\t1\t1\t2\t3\n")
    with pytest.raises(DevolensError, match="unrecognised columns"):  # (tabs are read: no advice to use commas)
        read_table(tsv)


# ----------------------------------------------------------------------------- AceTree
def test_acetree_polar_bodies_dead_and_unnamed_nuclei(tmp_path):
    lines = [acetree_line(1, 1, "ABa"), acetree_line(2, 1, "ABp"), acetree_line(3, 1, "EMS"), acetree_line(4, 1, "P2"),
             acetree_line(5, 1, "polar1", d=10), acetree_line(6, 1, "polar2", d=10),
             acetree_line(7, 0, "ABa", x=300), acetree_line(8, -1, "Nuc8", x=310),
             acetree_line(9, 1, "Nuc123", x=320), acetree_line(10, 1, "", x=330)]
    path = write_zip(tmp_path / "emb.zip", {"nuclei/t001-nuclei": "\n".join(lines) + "\n"})
    df = read_table(path)
    assert len(df) == 8  # status 0 and -1: deleted / dead nuclei, not read
    pops = populations(df)
    # polar bodies are no cells: 4 founders + 2 unnamed nuclei
    assert pops[["A", "E", "P", "total"]].iloc[0].tolist() == [2, 1, 1, 6]


def test_acetree_zip_with_a_second_copy_reads_nuclei_folder(tmp_path):
    good = "\n".join(acetree_line(i + 1, 1, c) for i, c in enumerate(CELLS)) + "\n"
    stale = "\n".join(acetree_line(i + 1, 1, c, x=50 + i) for i, c in enumerate(["AB", "P1"])) + "\n"
    path = write_zip(tmp_path / "edited.zip", {"nuclei/t001-nuclei": good, "backup/nuclei/t001-nuclei": stale})
    df = read_table(path)
    assert df["cell"].tolist() == list(CELLS)
    assert any("2 folders" in n for n in df.attrs["notes"])
    path2 = write_zip(tmp_path / "two.zip", {"a/nuclei/t001-nuclei": good, "b/nuclei/t001-nuclei": stale})
    with pytest.raises(DevolensError, match="in 2 folders"):
        read_table(path2)


def test_acetree_zip_with_another_top_folder(tmp_path):
    good = "\n".join(acetree_line(i + 1, 1, c) for i, c in enumerate(CELLS)) + "\n"
    df = read_table(write_zip(tmp_path / "e.zip", {"20140407_emb1/nuclei/t001-nuclei": good}))
    assert df["cell"].tolist() == list(CELLS)


def test_acetree_old_space_separated_layout(tmp_path):
    old = "\n".join(f"{i + 1} {100 + i} 120 {10 + i}.0 {c} 25 6000 {st} 0 0 0 0 nill {i + 1} -1"
                    for i, (c, st) in enumerate(zip(list(CELLS) + ["Nuc5"], [1, 0, 1, 1, -1]))) + "\n"
    df = read_table(write_zip(tmp_path / "old.zip", {"nuclei/t001-nuclei": old, "nuclei/t002-nuclei": old}))
    # AceTree's old layout: status >= 0 valid, -1 deleted
    assert df[df["time"] == 1]["cell"].tolist() == list(CELLS)
    assert df[["x", "z", "size"]].iloc[1].tolist() == [101.0, 11.0, 25.0]


def test_acetree_status_above_one_is_valid(tmp_path):
    text = acetree_line(1, 2, "ABa") + "\n" + acetree_line(2, 1, "ABp") + "\n"
    assert read_table(write_zip(tmp_path / "s.zip", {"nuclei/t001-nuclei": text}))["cell"].tolist() == ["ABa", "ABp"]



def test_acetree_line_with_other_separators_is_refused(tmp_path):
    """A line whose first fields are separated by ';' (an edit by hand, another tool's export) shifts the others: read
    by its commas it would be a bogus nucleus (no name, x 6476 from the weight, y 0...). Refused like a line cut
    short, naming the nuclei file and the line."""
    good = "\n".join(acetree_line(i + 1, 1, c) for i, c in enumerate(CELLS)) + "\n"
    bad = acetree_line(1, 1, "ABa").replace(", ", "; ", 5) + "\n" + acetree_line(2, 1, "ABp") + "\n"
    path = write_zip(tmp_path / "bad.zip", {"nuclei/t001-nuclei": good, "nuclei/t002-nuclei": bad})
    with pytest.raises(DevolensError, match=r"bad.zip: column 'index' is not numeric \(nuclei file t002, line 1: "
                                            r"'1; 1; -1; -1; -1; 100'\); AceTree separates a line's fields with commas"):
        read_table(path)
    cut = good + ", ".join(acetree_line(9, 1, "P3").split(", ")[:7]) + "\n"  # cut short: the same kind of message
    with pytest.raises(DevolensError, match=r"column 'z' has a missing value \(nuclei file t001, line 5\)"):
        read_table(write_zip(tmp_path / "cut.zip", {"nuclei/t001-nuclei": cut}))

# ----------------------------------------------------------------------------- positions
def test_trackmate_spots_in_microns(tmp_path):
    rows = ["LABEL,ID,TRACK_ID,QUALITY,POSITION_X,POSITION_Y,POSITION_Z,POSITION_T,FRAME,RADIUS,VISIBILITY",
            "Label,Spot ID,Track ID,Quality,X,Y,Z,T,Frame,Radius,Visibility",
            "Label,Spot ID,Track ID,Quality,X,Y,Z,T,Frame,R,Visibility",
            ",,,(quality),(micron),(micron),(micron),(sec),,(micron),"]
    rows += [f"ID{i},{i},{i % 3},50.0,{10 + i},{20 - i},{5 + i / 2},{f * 90.0},{f},1.5,1"
             for i, f in enumerate([0, 0, 0, 1, 1, 1])]
    path = tmp_path / "spots.csv"
    path.write_text("\n".join(rows) + "\n")
    df = read_positions(path)
    assert len(df) == 6 and df["time"].tolist() == [0, 0, 0, 1, 1, 1]
    assert df.attrs["zscale"] == 1.0 and "not in planes" in df.attrs["notes"][0]
    assert df["size"].tolist() == [3.0] * 6  # diameter from RADIUS


def test_trackmate_spots_in_pixels_keep_planes(tmp_path):
    path = tmp_path / "px.csv"
    path.write_text("POSITION_X,POSITION_Y,POSITION_Z,FRAME\nX,Y,Z,Frame\nX,Y,Z,Frame\n(pixel),(pixel),(pixel),\n"
                    "1,2,3,0\n4,5,6,0\n")
    df = read_positions(path)
    assert df.attrs["zscale"] is None and not df.attrs.get("notes")


def test_mastodon_spot_table(tmp_path):
    path = tmp_path / "mastodon.csv"
    path.write_text("Label,ID,Branch spot ID,Spot frame,Spot position,Spot position,Spot position,Spot radius\n"
                    ",,,,X,Y,Z,\n,,,,(µm),(µm),(µm),(µm)\n"
                    "0,0,0,0,10.5,20.0,3.0,2.0\n1,1,1,0,12.5,22.0,4.0,2.0\n2,2,0,1,10.7,20.1,3.1,2.0\n",
                    encoding="utf-8")
    df = read_positions(path)
    assert df[["time", "x", "y", "z", "size"]].values.tolist() == [
        [0, 10.5, 20.0, 3.0, 4.0], [0, 12.5, 22.0, 4.0, 4.0], [1, 10.7, 20.1, 3.1, 4.0]]
    assert df.attrs["zscale"] == 1.0 and "Branch spot ID" in df.columns


def test_mastodon_spot_table_without_z_is_refused(tmp_path):
    path = tmp_path / "mastodon2d.csv"
    path.write_text("Label,ID,Spot frame,Spot position,Spot position\n,,,X,Y\n,,,(µm),(µm)\n0,0,0,1.0,2.0\n",
                    encoding="utf-8")
    with pytest.raises(DevolensError, match="Spot position"):
        read_positions(path)


def test_positions_with_units_in_column_names(tmp_path):
    path = tmp_path / "um.csv"
    path.write_text("frame,x_um,y_um,z_um\n0,1.5,2.5,3.5\n0,4.0,5.0,6.0\n")
    df = read_positions(path)
    assert df[["x", "z"]].iloc[0].tolist() == [1.5, 3.5] and df.attrs["zscale"] == 1.0
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("t,x,y,z (µm)\n0,15,25,3.5\n")
    df = read_positions(mixed)
    assert df.attrs["zscale"] is None and "--zscale" in df.attrs["notes"][0]
