"""``devolens lineage``: convert, populations, cliffs, clean, and bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from _lineage_builders import SMALL_FRAMES, cliff_cd, write_acetree_zip

KNOWN_CLIFFS = {"CD20240930_JIM762_L4": 164, "CD20241107_JIM767_25_L1": 149}


def run(argv, capsys):
    code = main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_help_lists_commands(capsys):
    code, out, _ = run(["lineage", "--help"], capsys)
    assert code == 0
    for cmd in ("convert", "populations", "cliffs", "clean"):
        assert cmd in out


def test_convert_acetree_zip(tmp_path, capsys):
    z = write_acetree_zip(tmp_path / "emb.zip", SMALL_FRAMES)
    out_csv = tmp_path / "tidy.csv"
    code, out, err = run(["lineage", "convert", str(z), "--out", str(out_csv)], capsys)
    assert code == 0, err
    df = pd.read_csv(out_csv, keep_default_na=False)
    assert list(df.columns) == ["embryo", "time", "cell", "x", "y", "z", "size"]
    assert df["cell"].tolist() == ["ABa", "P1", "ABal", "ABar", "EMS", "Nuc7"]
    assert "6 rows" in err


def test_populations_and_plot(tmp_path, capsys):
    cd = cliff_cd(tmp_path / "CDpop.csv", cliff_after=None, n_times=5)
    out_csv, png = tmp_path / "p" / "pops.csv", tmp_path / "p" / "pops.png"
    code, _, err = run(["lineage", "populations", str(cd), "--out", str(out_csv), "--plot", str(png)], capsys)
    assert code == 0, err
    with open(out_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["time", "A", "E", "M", "P", "C", "D", "Z", "total"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4", "5"]
    assert [r[1] for r in rows[1:]] == [r[-1] for r in rows[1:]] == ["3", "6", "9", "12", "15"]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out_csv.parent.iterdir()) == ["pops.csv", "pops.json", "pops.png"]  # + its record


def test_cliffs_json_and_text(tmp_path, capsys):
    cd = cliff_cd(tmp_path / "CDcl.csv", cliff_after=12)
    code, out, _ = run(["lineage", "cliffs", str(cd), "--json"], capsys)
    assert code == 0
    assert json.loads(out) == {"cliffs": [{"time": 12, "before": 36, "after": 2, "first_bad_time": 13, "after_time": 13}],
                               "last_good_time": 12, "duplicates": []}
    code, out, _ = run(["lineage", "cliffs", str(cd)], capsys)
    assert code == 0 and "cliff after time 12" in out and "36 -> 2" in out
    ok = cliff_cd(tmp_path / "CDok.csv", cliff_after=None)
    code, out, _ = run(["lineage", "cliffs", str(ok), "--json"], capsys)
    assert json.loads(out) == {"cliffs": [], "last_good_time": 20, "duplicates": []}
    code, out, _ = run(["lineage", "cliffs", str(ok)], capsys)
    assert "no annotation cliff" in out and "20" in out


def test_clean_cuts_and_reports(tmp_path, capsys):
    cd = cliff_cd(tmp_path / "CDcl.csv", cliff_after=12)
    # add a duplicated name at time 3
    with open(cd, "a") as fh:
        fh.write("ABal:3,ABal,3,1,1,1,1,1,1.0,99,99,10,1\n")
    out_csv = tmp_path / "clean.csv"
    code, out, err = run(["lineage", "clean", str(cd), "--out", str(out_csv)], capsys)
    assert code == 0, err
    df = pd.read_csv(out_csv)
    assert df["time"].max() == 12 and len(df) == sum(3 * t for t in range(1, 13))
    assert not df.duplicated(["time", "cell"]).any()
    assert "cut after time 12" in err and "dropped 1 duplicated-name row" in err and "16 rows" in err


def test_subprocess_entry_point(tmp_path):
    cd = cliff_cd(tmp_path / "CDsub.csv", cliff_after=12)
    exe = Path(sys.executable).with_name("devolens")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from devolens.cli import run; run()"]
    res = subprocess.run(cmd + ["lineage", "cliffs", str(cd), "--json"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["last_good_time"] == 12
    res = subprocess.run(cmd + ["lineage", "cliffs", str(tmp_path / "nope.csv")], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: file not found"
    assert "Traceback" not in res.stderr


# ----------------------------------------------------------------------------- bad input
def _make_bad(tmp_path: Path, case: str) -> Path:
    p = tmp_path / f"{case}.csv"
    if case == "missing":
        return p
    if case == "empty":
        p.write_bytes(b"")
    elif case == "wrong_columns":
        p.write_text("a,b,c\n1,2,3\n")
    elif case == "non_numeric":
        p.write_text("cellTime,cell,time,none,global,local,blot,cross,z,x,y,size,gweight\n"
                     "ABa:1,ABa,1,5,1,1,1,1,4.0,12,3,10,1\nABp:1,ABp,1,5,1,1,1,1,4.0,12,abc,10,1\n")
    elif case == "zip_without_nuclei":
        p = tmp_path / "nonuclei.zip"
        with zipfile.ZipFile(p, "w") as zf:
            zf.writestr("notes/readme.txt", "no nuclei here")
    elif case == "binary":
        p = tmp_path / "image.csv"
        p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return p


BAD = {
    "missing": "file not found",
    "empty": "empty file",
    "wrong_columns": "unrecognised columns",
    "non_numeric": "column 'y' is not numeric (line 3",
    "zip_without_nuclei": "no AceTree nuclei files",
    "binary": "binary",
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("command", ["convert", "populations", "cliffs", "clean"])
def test_bad_input_exit_2_one_line_no_output(tmp_path, capsys, case, command):
    table = _make_bad(tmp_path, case)
    out_dir = tmp_path / "out"
    argv = ["lineage", command, str(table)]
    if command != "cliffs":
        argv += ["--out", str(out_dir / "result.csv")]
    if command == "populations":
        argv += ["--plot", str(out_dir / "result.png")]
    code, out, err = run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {table}: ") and BAD[case] in lines[0]
    assert "Traceback" not in err and out == ""
    assert not out_dir.exists()


# ----------------------------------------------------------------------------- real data
def test_real_cliffs_cli(epic_tables, acetree_zip, capsys):
    for path in list(epic_tables) + [acetree_zip]:
        code, out, err = run(["lineage", "cliffs", str(path), "--json"], capsys)
        assert code == 0, err
        rep = json.loads(out)
        if path.stem in KNOWN_CLIFFS:
            assert len(rep["cliffs"]) == 1
            assert abs(rep["cliffs"][0]["time"] - KNOWN_CLIFFS[path.stem]) <= 2
            assert rep["last_good_time"] == rep["cliffs"][0]["time"]
        else:
            assert rep["cliffs"] == [], path.name


def test_real_convert_round_trip(epic_tables, tmp_path, capsys):
    src = epic_tables[-1]
    out_csv = tmp_path / "tidy.csv"
    assert run(["lineage", "convert", str(src), "--out", str(out_csv)], capsys)[0] == 0
    pops_a, pops_b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run(["lineage", "populations", str(src), "--out", str(pops_a)], capsys)[0] == 0
    assert run(["lineage", "populations", str(out_csv), "--out", str(pops_b)], capsys)[0] == 0
    assert pops_a.read_text() == pops_b.read_text()


def test_several_embryos_error_names_the_file(tmp_path, capsys):
    p = tmp_path / "two.csv"
    p.write_text("embryo,time,cell,x,y,z,size\na,1,AB,1,2,3,4\nb,1,AB,1,2,3,4\n")
    code, out, err = run(["lineage", "populations", str(p), "--out", str(tmp_path / "o" / "p.csv")], capsys)
    assert code == 2 and err.strip() == f"error: {p}: table holds 2 embryos (a, b); pick one with --embryo NAME"
    assert not (tmp_path / "o").exists()


def test_options_validated_by_cli(tmp_path, capsys):
    cd = cliff_cd(tmp_path / "CDo.csv", cliff_after=None)
    code, _, _ = run(["lineage", "cliffs", str(cd), "--min-fraction", "2"], capsys)
    assert code == 2
    code, out, _ = run(["lineage", "cliffs", str(cd), "--json", "--min-drop", "1", "--min-fraction", "0.01"], capsys)
    assert code == 0 and json.loads(out)["cliffs"] == []


def test_populations_notes_misspelt_names(tmp_path, capsys):
    """'ABpL' (case matters in Sulston names) dropped out of the A counts silently: a note says how many rows and which
    names, and that they count in the total only."""
    rows = [("e", 1, "ABa", 1, 1, 1, 5), ("e", 1, "ABpL", 2, 2, 2, 5), ("e", 1, "EMS", 3, 3, 3, 5),
            ("e", 2, "ABa", 1, 1, 1, 5), ("e", 2, "ABpL", 2, 2, 2, 5), ("e", 2, "Nuc7", 3, 3, 3, 5)]
    table = tmp_path / "t.csv"
    pd.DataFrame(rows, columns=["embryo", "time", "cell", "x", "y", "z", "size"]).to_csv(table, index=False)
    assert main(["lineage", "populations", str(table), "--out", str(tmp_path / "p.csv")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "2 rows carry names that are Sulston names but for their case (e.g. 'ABpL'" in err
    pops = pd.read_csv(tmp_path / "p.csv")
    assert pops["A"].tolist() == [1, 1] and pops["total"].tolist() == [3, 3]
    rows = [r for r in rows if r[2] != "ABpL"]
    pd.DataFrame(rows, columns=["embryo", "time", "cell", "x", "y", "z", "size"]).to_csv(table, index=False)
    assert main(["lineage", "populations", str(table), "--out", str(tmp_path / "q.csv")]) == 0
    assert "but for their case" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- cliff notes
@pytest.mark.parametrize("command", ["populations", "convert"])
def test_populations_and_convert_note_an_annotation_cliff(tmp_path, capsys, command):
    """`lineage populations` wrote the counts after a cliff (curation stopped) without a word: one note names the last
    good time point and the commands that list the cliffs and cut the table; a table without a cliff gets none."""
    cd = cliff_cd(tmp_path / "CDcl.csv", cliff_after=12)
    code, _, err = run(["lineage", command, str(cd), "--out", str(tmp_path / "o.csv")], capsys)
    assert code == 0, err
    err = " ".join(err.split())
    assert err.count("note:") == 1
    assert "annotation cliff after time 12: 36 -> 2 cells at time 13" in err
    assert f"`devolens lineage cliffs {cd}`" in err and f"`devolens lineage clean {cd} --out CLEAN.csv`" in err
    ok = cliff_cd(tmp_path / "CDok.csv", cliff_after=None)
    code, _, err = run(["lineage", command, str(ok), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and "cliff" not in err


def test_convert_notes_the_cliff_of_each_embryo(tmp_path, capsys):
    """A tidy table of two embryos converts (populations refuses it): the note names the embryo with the cliff."""
    rows = [(e, t, f"AB{'ap'[k % 2]}{k}", k, k, 1, 5) for e, cliff in (("a", None), ("b", 6)) for t in range(1, 15)
            for k in range(3 * t if cliff is None or t <= cliff else 2)]
    table = tmp_path / "two.csv"
    pd.DataFrame(rows, columns=["embryo", "time", "cell", "x", "y", "z", "size"]).to_csv(table, index=False)
    code, _, err = run(["lineage", "convert", str(table), "--out", str(tmp_path / "o.csv")], capsys)
    assert code == 0, err
    err = " ".join(err.split())
    assert err.count("annotation cliff") == 1 and "embryo b: annotation cliff after time 6: 18 -> 2 cells" in err


def test_real_populations_note_only_the_known_cliffs(epic_tables, acetree_zip, tmp_path, capsys):
    """The note fires on the two shared tables that end in a cliff, at its time point, and on no other."""
    for path in list(epic_tables) + [acetree_zip]:
        code, _, err = run(["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")], capsys)
        assert code == 0, err
        err = " ".join(err.split())
        if path.stem in KNOWN_CLIFFS:
            assert f"annotation cliff after time {KNOWN_CLIFFS[path.stem]}:" in err, path.name
        else:
            assert "cliff" not in err, path.name


def test_cliffs_json_is_the_library_json_form(tmp_path, capsys):
    from devolens.io.tables import read_table
    from devolens.lineage.cliffs import clean_table, find_cliffs

    cd = cliff_cd(tmp_path / "CDcl.csv", cliff_after=12)
    with open(cd, "a") as fh:  # a duplicated name at time 3
        fh.write("ABal:3,ABal,3,1,1,1,1,1,1.0,99,99,10,1\n")
    code, out, _ = run(["lineage", "cliffs", str(cd), "--json"], capsys)
    assert code == 0
    rep = find_cliffs(read_table(cd))
    assert json.loads(out) == rep.to_dict() == {
        "cliffs": [{"time": 12, "before": 36, "after": 2, "first_bad_time": 13, "after_time": 13}],
        "last_good_time": 12, "duplicates": [{"time": 3, "cell": "ABal", "count": 2}]}
    assert json.dumps(rep.to_dict()) == out.strip()
    _, clean = clean_table(read_table(cd))
    d = clean.to_dict()
    assert d["cliffs"] == rep.to_dict()["cliffs"] and d["duplicates"] == rep.to_dict()["duplicates"]
    assert d["duplicate_rows"] == 1 and json.loads(json.dumps(d)) == d


def test_populations_cliff_note_says_names_count_once(tmp_path, capsys):
    def table(path: Path, repeat: bool) -> Path:
        rows = ["embryo,time,cell,x,y,z,size"]
        for t in range(1, 31):
            n = 40 if t <= 20 else 10
            rows += [f"e,{t},AB{'ap'[k % 2]}{k},{k},1,1,5" for k in range(n)]
            if repeat and t == 20:  # every name again at time 20, elsewhere: 80 rows, 40 names
                rows += [f"e,{t},AB{'ap'[k % 2]}{k},{k + 100},1,1,5" for k in range(n)]
        path.write_text("\n".join(rows) + "\n")
        return path

    dup = table(tmp_path / "dup.csv", repeat=True)
    code, _, err = run(["lineage", "populations", str(dup), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0, err
    assert pd.read_csv(tmp_path / "p.csv").set_index("time")["total"][20] == 80
    assert ("annotation cliff after time 20: 40 -> 10 cells at time 21 (each cell name counted once), no recovery"
            in " ".join(err.split())), err
    # no repeated names: no such words
    ok = table(tmp_path / "ok.csv", repeat=False)
    code, _, err = run(["lineage", "populations", str(ok), "--out", str(tmp_path / "q.csv")], capsys)
    assert code == 0 and "annotation cliff after time 20: 40 -> 10 cells at time 21, no recovery" in " ".join(
        err.split()), err
