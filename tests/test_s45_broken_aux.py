"""A damaged AuxInfo or TIME file beside an EPIC CD table (session 45): picked up by its name, it made the sound table
unreadable for every command ("not an EPIC AuxInfo file (missing columns ...)"), though the table read without it is
fine. Now such a file is ignored with a note naming it, why it could not be read and what is used instead (as if it
were absent); one given to ``read_epic`` itself, or given as the table, is refused as before."""

from __future__ import annotations

import json

import pytest

from _lineage_builders import run_cli, write_cd
from _zoo_helpers import shipped
from devolens.errors import DevolensError
from devolens.io.tables import read_epic, read_table

AUX_HEADER = "name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis\n"
AUX_ROW = "e,0.55,-24,380,384,598,396,48.4,39.5,4.86,89,5.7471,PDR\n"
TIME_ROWS = "e\t1\t0\t0\ne\t2\t90\t90\n"
#: damaged AuxInfo files: (content, the words of why it cannot be read)
BAD_AUX = {
    "garbage": ("garbage\n", "not an EPIC AuxInfo file (missing columns xc,yc,maj,min,ang,zpixres)"),
    "header only": (AUX_HEADER, "not an EPIC AuxInfo file (no rows)"),
    "empty": ("", "empty file (expected an EPIC AuxInfo CSV)"),
    "not numeric": (AUX_HEADER + AUX_ROW.replace("5.7471", "abc"), "zpixres"),
    "binary": (b"\x00\x01\xff\xfe\x00", "cannot parse an EPIC AuxInfo CSV"),
}
#: damaged TIME files: (content, the words of why it cannot be read)
BAD_TIME = {
    "garbage": ("garbage\n", "not an EPIC TIME file (expected tab-separated name, time, seconds; found 1 column(s))"),
    "empty": ("", "empty file (expected an EPIC TIME file)"),
    "fractional time": ("e\t1.5\t0\n", "column 'time' must hold whole time points"),
    "missing seconds": ("e\t1\t0\ne\t2\t\n", "seconds"),
}
AUX_INSTEAD = "z scale estimated from the nuclei where needed, no embryo ellipse or axis"
TIME_INSTEAD = "time points without seconds"


def _write(path, content) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def _cd(folder, times: int = 2):
    rows = [(f"N{i}", t, 4.0 + i % 5, 100 + 7 * i, 200 + 3 * (i % 9), 30, 0) for t in range(1, times + 1)
            for i in range(20)]
    return write_cd(folder / "CDe.csv", rows)


def _one_note(df, path) -> str:
    notes = [n for n in df.attrs.get("notes") or () if n.startswith(f"{path}:")]
    assert len(notes) == 1, df.attrs.get("notes")
    assert "\n" not in notes[0]
    return notes[0]


# ----------------------------------------------------------------------------- the reader
@pytest.mark.parametrize("kind", sorted(BAD_AUX))
def test_a_damaged_auxinfo_beside_the_table_is_ignored_with_a_note(tmp_path, kind):
    content, why = BAD_AUX[kind]
    cd = _cd(tmp_path)
    plain = read_table(cd)
    aux = tmp_path / "eAuxInfo.csv"
    _write(aux, content)
    (tmp_path / "TIMEe.csv").write_text(TIME_ROWS)  # a sound TIME file is still read
    df = read_table(cd)
    assert df.equals(plain)
    assert df.attrs["zscale"] is None and df.attrs["ellipse"] is None and df.attrs["axis"] is None
    assert df.attrs.get("aux") is None
    assert df.attrs["time_seconds"] == {1: 0.0, 2: 90.0}
    note = _one_note(df, aux)
    assert why in note and "ignored" in note and note.endswith(AUX_INSTEAD)


@pytest.mark.parametrize("kind", sorted(BAD_TIME))
def test_a_damaged_time_file_beside_the_table_is_ignored_with_a_note(tmp_path, kind):
    content, why = BAD_TIME[kind]
    cd = _cd(tmp_path)
    (tmp_path / "eAuxInfo.csv").write_text(AUX_HEADER + AUX_ROW)  # a sound AuxInfo is still read
    time = tmp_path / "TIMEe.csv"
    _write(time, content)
    df = read_table(cd)
    assert df.attrs["time_seconds"] is None and df.attrs["seconds_per_time"] is None
    assert df.attrs["zscale"] == pytest.approx(5.7471) and df.attrs["ellipse"]["maj"] == 598.0
    note = _one_note(df, time)
    assert why in note and "ignored" in note and note.endswith(TIME_INSTEAD)


def test_a_folder_named_as_the_auxinfo_is_ignored_with_a_note(tmp_path):
    cd = _cd(tmp_path)
    (tmp_path / "eAuxInfo.csv").mkdir()
    df = read_table(cd)
    assert df.attrs["zscale"] is None
    assert _one_note(df, tmp_path / "eAuxInfo.csv").endswith(AUX_INSTEAD)


def test_both_damaged_give_two_notes_and_the_table_as_without_them(tmp_path):
    cd = _cd(tmp_path)
    plain = read_table(cd)
    (tmp_path / "eAuxInfo.csv").write_text("garbage\n")
    (tmp_path / "TIMEe.csv").write_text("garbage\n")
    df = read_table(cd)
    assert df.equals(plain)
    for key in ("zscale", "ellipse", "axis", "time_seconds", "seconds_per_time"):
        assert df.attrs[key] is None
    _one_note(df, tmp_path / "eAuxInfo.csv")
    _one_note(df, tmp_path / "TIMEe.csv")


def test_files_given_to_read_epic_are_still_refused(tmp_path):
    cd = _cd(tmp_path)
    bad = tmp_path / "given.csv"
    bad.write_text("garbage\n")
    with pytest.raises(DevolensError, match="given.csv: not an EPIC AuxInfo file"):
        read_epic(cd, auxinfo=bad)
    with pytest.raises(DevolensError, match="given.csv: not an EPIC TIME file"):
        read_epic(cd, time_file=bad)


def test_an_auxinfo_or_time_file_given_as_the_table_is_still_refused_as_such(tmp_path):
    _cd(tmp_path)
    (tmp_path / "eAuxInfo.csv").write_text(AUX_HEADER + AUX_ROW)
    (tmp_path / "TIMEe.csv").write_text(TIME_ROWS)
    with pytest.raises(DevolensError, match=r"an EPIC AuxInfo file .*, not a lineage table: .*CDe.csv"):
        read_table(tmp_path / "eAuxInfo.csv")
    with pytest.raises(DevolensError, match=r"an EPIC time file .*, not a lineage table: .*CDe.csv"):
        read_table(tmp_path / "TIMEe.csv")


def test_a_semicolon_table_names_the_users_auxinfo_not_its_copy(tmp_path):
    """A table Excel saved with semicolons is read from a copy in a temporary folder, its companions beside it: the
    note names the file beside the user's table."""
    cd = _cd(tmp_path)
    cd.write_text(cd.read_text().replace(",", ";"))
    aux = tmp_path / "eAuxInfo.csv"
    aux.write_text("garbage\n")
    df = read_table(cd)
    assert df.attrs["zscale"] is None
    assert "not an EPIC AuxInfo file" in _one_note(df, aux)


# ----------------------------------------------------------------------------- the commands
@pytest.mark.parametrize("argv", [
    ["lineage", "populations", "{cd}", "-o", "{tmp}/p.csv"],
    ["lineage", "convert", "{cd}", "-o", "{tmp}/c.csv"],
    ["lineage", "cliffs", "{cd}"],
    ["lineage", "clean", "{cd}", "-o", "{tmp}/cl.csv"],
    ["render", "{cd}", "-o", "{tmp}/r", "--times", "1-2", "--size", "64", "64"],
])
def test_every_command_goes_on_with_the_note(tmp_path, capsys, argv):
    cd = _cd(tmp_path)
    (tmp_path / "eAuxInfo.csv").write_text("garbage\n")
    (tmp_path / "TIMEe.csv").write_text("garbage\n")
    code, out, err = run_cli([a.format(cd=cd, tmp=tmp_path) for a in argv], capsys)
    assert code == 0, err
    err = " ".join(err.split())
    assert f"note: {tmp_path / 'eAuxInfo.csv'}: not an EPIC AuxInfo file (missing columns" in err
    assert f"note: {tmp_path / 'TIMEe.csv'}: not an EPIC TIME file" in err
    assert "Traceback" not in err
    if argv[1] == "convert":  # the sidecar as for a table without them
        meta = json.loads((tmp_path / "c.meta.json").read_text())
        assert meta.get("zscale") is None and meta.get("time_seconds") is None


def test_render_as_without_the_auxinfo(tmp_path, capsys):
    """The frames drawn with a damaged AuxInfo beside the table are those drawn without one."""
    cd = _cd(tmp_path)
    args = ["--times", "1-2", "--size", "64", "64"]
    assert run_cli(["render", str(cd), "-o", str(tmp_path / "without"), *args], capsys)[0] == 0
    (tmp_path / "eAuxInfo.csv").write_text("garbage\n")
    assert run_cli(["render", str(cd), "-o", str(tmp_path / "damaged"), *args], capsys)[0] == 0
    assert (tmp_path / "without" / "frames.csv").read_text() == (tmp_path / "damaged" / "frames.csv").read_text()


@pytest.mark.skipif(not shipped("identity"), reason="identity weights not shipped")
def test_identify_goes_on_with_the_note(tmp_path, capsys):
    cd = _cd(tmp_path, times=4)
    (tmp_path / "eAuxInfo.csv").write_text("garbage\n")
    code, out, err = run_cli(["identify", str(cd), "--out", str(tmp_path / "n.csv"), "--tta", "1", "--smooth",
                              "none"], capsys)
    assert code == 0, err
    assert f"note: {tmp_path / 'eAuxInfo.csv'}: not an EPIC AuxInfo file" in " ".join(err.split())
    assert json.loads((tmp_path / "n.json").read_text())["zscale"]["by"] == "estimated"
