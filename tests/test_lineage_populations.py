"""Per-lineage populations, checked against independent counts."""

from __future__ import annotations

import collections
import csv
import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from devolens.errors import DevolensError
from devolens.io.tables import read_table
from devolens.lineage.populations import POPULATION_COLUMNS, populations
from devolens.viz.plots import plot_populations

COLS = ["time", "A", "E", "M", "P", "C", "D", "Z", "total"]
FIRST = {"AB": "A", "EMS": "E", "E": "E", "MS": "M", "C": "C", "D": "D", "Z2": "Z", "Z3": "Z",
         "P0": "P", "P1": "P", "P2": "P", "P3": "P", "P4": "P"}


def letter_by_hand(name: str) -> str | None:
    """An independent letter rule: longest founder prefix, rest must be division letters."""
    for f in sorted(FIRST, key=len, reverse=True):
        if name.startswith(f):
            rest = name[len(f):]
            if rest and (f.startswith("P") or f == "EMS"):
                return None
            return FIRST[f] if all(ch in "aplrdv" for ch in rest) else None
    return None


def count_by_hand(rows) -> dict[int, collections.Counter]:
    """rows: iterable of (time, name) -> {time: Counter(letter/total)}."""
    out: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    for t, name in rows:
        if name.strip().lower() in ("polar1", "polar2"):  # polar bodies are no cells: not counted
            out[t]  # the time point is still listed
            continue
        out[t]["total"] += 1
        letter = letter_by_hand(name.strip())
        if letter:
            out[t][letter] += 1
    return out


def assert_matches(pops: pd.DataFrame, expected: dict[int, collections.Counter]) -> None:
    assert list(pops.columns) == COLS
    assert pops["time"].tolist() == sorted(expected)
    for row in pops.itertuples(index=False):
        exp = expected[row.time]
        for c in COLS[1:]:
            assert getattr(row, c) == exp.get(c, 0), (row.time, c)


def test_columns_exactly():
    assert list(POPULATION_COLUMNS) == COLS


def test_small_table_with_unnamed():
    t = pd.DataFrame({
        "time": [3, 1, 1, 1, 1, 3, 3, 3, 3, 3],
        "cell": ["Nuc1", "ABa", "ABp", "EMS", "P2", "MSa", "Ea", "Cp", "", "Z2"],
    })
    p = populations(t)
    assert p.to_dict("list") == {
        "time": [1, 3], "A": [2, 0], "E": [1, 1], "M": [0, 1], "P": [1, 0], "C": [0, 1], "D": [0, 0],
        "Z": [0, 1], "total": [4, 6],
    }
    assert all(p[c].dtype == np.int64 for c in COLS)


def test_total_counts_every_row_including_nan_names():
    t = pd.DataFrame({"time": [1, 1, 1], "cell": [None, np.nan, "D"]})
    p = populations(t)
    assert p["total"].tolist() == [3] and p["D"].tolist() == [1]


def test_empty_table():
    p = populations(pd.DataFrame({"time": pd.Series([], dtype=int), "cell": pd.Series([], dtype=str)}))
    assert list(p.columns) == COLS and len(p) == 0


def test_several_embryos_refused():
    t = pd.DataFrame({"embryo": ["a", "b"], "time": [1, 1], "cell": ["AB", "AB"]})
    with pytest.raises(DevolensError, match="2 embryos"):
        populations(t)


def test_random_tables_match_hand_count():
    rng = np.random.default_rng(0)
    pool = ["ABa", "ABplp", "EMS", "E", "Ep", "MS", "MSaap", "C", "Cpa", "D", "P0", "P3", "P4", "Z2", "Z3",
            "", "Nuc5", "polar1", "P1a", "ABx"]
    for _ in range(5):
        n = int(rng.integers(1, 300))
        t = pd.DataFrame({"time": rng.integers(1, 20, n), "cell": rng.choice(pool, n)})
        assert_matches(populations(t), count_by_hand(zip(t["time"].tolist(), t["cell"].tolist())))


def test_real_epic_populations(epic_tables):
    for path in epic_tables:
        with open(path, newline="") as fh:
            rows = [(int(r["time"]), r["cell"]) for r in csv.DictReader(fh)]
        assert_matches(populations(read_table(path)), count_by_hand(rows))


def test_real_acetree_populations(acetree_zip):
    rows = []
    with zipfile.ZipFile(acetree_zip) as zf:
        for member in zf.namelist():
            t = int(member.split("/t")[-1].split("-")[0])
            for r in csv.reader(io.TextIOWrapper(zf.open(member))):
                if r and r[1].strip() == "1":
                    rows.append((t, r[9]))
    assert_matches(populations(read_table(acetree_zip)), count_by_hand(rows))


def test_plot_populations(tmp_path):
    p = populations(pd.DataFrame({"time": [1, 2, 2], "cell": ["AB", "ABa", "ABp"]}))
    out = plot_populations(p, tmp_path / "plots" / "pops.png", title="toy")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in (tmp_path / "plots").iterdir()] == ["pops.png"]


def test_plots_need_no_writable_home(tmp_path):
    """With HOME unwritable (clusters, containers) matplotlib gets a config folder of devolens's own instead of
    printing its warnings into every plotting command's log; a writable HOME or MPLCONFIGDIR is left alone."""
    import os
    import subprocess
    import sys

    code = ("import os; real = os.access; home = os.environ['HOME']\n"
            "os.access = lambda p, m, **k: False if str(p).startswith(home) or str(p) == '/' else real(p, m, **k)\n"
            "import devolens.viz; print(os.environ.get('MPLCONFIGDIR', '-'))")
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CONFIG_HOME")}
    for home, expect in ((tmp_path / "ro", "devolens-matplotlib-"), (tmp_path / "rw", "-")):
        home.mkdir()
        run = code if expect != "-" else code.replace("os.access = ", "_ = ")
        res = subprocess.run([sys.executable, "-c", run], env={**env, "HOME": str(home)}, capture_output=True,
                             text=True, check=True)
        assert expect in res.stdout, res.stdout
    res = subprocess.run([sys.executable, "-c", code], env={**env, "HOME": str(tmp_path / "ro"), "MPLCONFIGDIR": "/x"},
                         capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "/x"
