"""--embryo NAME (one embryo of a multi-embryo tidy table) and `lineage cliffs` on several tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from _lineage_builders import cliff_cd
from _lineage_builders import run_cli as run


def two_embryos(path: Path) -> Path:
    """A tidy table of embryos a (4 cells a time point) and b (2 cells), 3 time points each."""
    rows = []
    for embryo, cells in (("a", ["ABa", "ABp", "EMS", "P2"]), ("b", ["AB", "P1"])):
        for t in (1, 2, 3):
            rows += [dict(embryo=embryo, time=t, cell=c, x=10 * i, y=5, z=3, size=8) for i, c in enumerate(cells)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


REFUSAL = "table holds 2 embryos (a, b); pick one with --embryo NAME"


def test_refusal_names_embryos_and_option(tmp_path, capsys):
    p = two_embryos(tmp_path / "two.csv")
    for argv in (["lineage", "populations", str(p), "--out", str(tmp_path / "p.csv")],
                 ["lineage", "cliffs", str(p)],
                 ["lineage", "clean", str(p), "--out", str(tmp_path / "c.csv")],
                 ["render", str(p), "--out", str(tmp_path / "r")]):
        code, _, err = run(argv, capsys)
        assert code == 2 and err.strip() == f"error: {p}: {REFUSAL}", argv
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "r").exists()


def test_embryo_picks_rows(tmp_path, capsys):
    p = two_embryos(tmp_path / "two.csv")
    out = tmp_path / "p.csv"
    code, text, err = run(["lineage", "populations", str(p), "--out", str(out), "--embryo", "b"], capsys)
    assert code == 0, err
    assert pd.read_csv(out)["total"].tolist() == [2, 2, 2]
    code, text, _ = run(["lineage", "cliffs", str(p), "--embryo", "a"], capsys)
    assert code == 0 and text.splitlines()[0] == "a: no annotation cliff; last good time point 3"
    clean = tmp_path / "c.csv"
    code, _, _ = run(["lineage", "clean", str(p), "--out", str(clean), "--embryo", "a"], capsys)
    assert code == 0 and set(pd.read_csv(clean)["embryo"]) == {"a"} and len(pd.read_csv(clean)) == 12
    code, _, err = run(["render", str(p), "--out", str(tmp_path / "r"), "--embryo", "b", "--size", "32", "32"],
                       capsys)
    assert code == 0, err
    frames = pd.read_csv(tmp_path / "r" / "frames.csv")
    assert set(frames["embryo"]) == {"b"} and frames["total"].tolist() == [2, 2, 2]


def test_unknown_embryo_lists_the_embryos(tmp_path, capsys):
    p = two_embryos(tmp_path / "two.csv")
    for argv in (["lineage", "populations", str(p), "--out", str(tmp_path / "p.csv"), "--embryo", "c"],
                 ["lineage", "cliffs", str(p), "--embryo", "c"],
                 ["render", str(p), "--out", str(tmp_path / "r"), "--embryo", "c"]):
        code, _, err = run(argv, capsys)
        assert code == 2, argv
        assert err.strip() == f"error: {p}: --embryo c: no such embryo; the table holds 2 embryos (a, b)", argv


def test_cliffs_several_tables(tmp_path, capsys):
    good = cliff_cd(tmp_path / "CDgood.csv", cliff_after=None)
    cliff = cliff_cd(tmp_path / "CDcliff.csv", cliff_after=12)
    bad = tmp_path / "CDbad.csv"
    bad.write_text("garbage,,,\n")
    one = [run(["lineage", "cliffs", str(p)], capsys)[1] for p in (good, cliff)]
    code, out, err = run(["lineage", "cliffs", str(good), str(bad), str(cliff)], capsys)
    assert code == 2
    assert out == f"{good}:\n{one[0]}\n{bad}:\n\n{cliff}:\n{one[1]}"
    assert err.count("error: ") == 1 and f"error: {bad}: " in err
    code, out, _ = run(["lineage", "cliffs", str(good), str(bad), str(cliff), "--json"], capsys)
    data = json.loads(out)
    assert code == 2 and list(data) == [str(good), str(bad), str(cliff)]
    assert data[str(good)] == json.loads(run(["lineage", "cliffs", str(good), "--json"], capsys)[1])
    assert data[str(cliff)]["cliffs"][0]["time"] == 12 and "error" in data[str(bad)]
    code, out, _ = run(["lineage", "cliffs", str(good), str(cliff)], capsys)
    assert code == 0
