"""Session 46 mends of the lineage tables' readers and of identify:

* identify's record keeps ``--threads`` under ``options``, as every other command's record does;
* an embryo whose nuclei all share one x and one y (positions lost on export) is left out of identify with a note,
  and a table of no other embryo is refused (its names were written, meaningless, without a word);
* a time point of more nuclei than an embryo ever holds (several embryos merged without an embryo column) is noted
  by identify and ``lineage populations``;
* an EPIC TIME file listing a time point twice with other seconds is ignored with a note, as the other damaged TIME
  files are (its last row's seconds were taken, silently); a row repeated exactly is read once.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from _identity_helpers import random_predictor
from _lineage_builders import run_cli, write_cd
from _zoo_helpers import shipped
from devolens.errors import DevolensError, IdentityWarning
from devolens.io.tables import read_epic, read_table
from devolens.lineage.populations import EMBRYO_CELLS, populations
from devolens.predict.identity import input_notes

needs_identity = pytest.mark.skipif(not shipped("identity"), reason="identity weights not shipped")


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _embryo(name: str = "e", times: int = 4, seed: int = 0) -> pd.DataFrame:
    """A small elongated cloud of 12-18 nuclei per time point."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(1, times + 1):
        n = 10 + 2 * t
        rows += [(name, t, 300 + 100 * a, 250 + 40 * b, 20 + 8 * c, 25.0)
                 for a, b, c in rng.normal(0, 1, (n, 3)) * [1.0, 0.6, 0.5] + [[0.3 * (i % 3), 0, 0] for i in range(n)]]
    return pd.DataFrame(rows, columns=["embryo", "time", "x", "y", "z", "size"])


def _lost(name: str = "lost") -> pd.DataFrame:
    df = _embryo(name, seed=1)
    df["x"], df["y"] = 0.0, 0.0  # the coordinates lost on export: z alone varies
    return df


def _crowded(n: int, name: str = "e") -> pd.DataFrame:
    """One time point of ``n`` nuclei (several embryos merged?), another of 30."""
    rng = np.random.default_rng(2)
    xyz = rng.normal(0, 1, (n + 30, 3)) * [100, 60, 8] + [300, 250, 20]
    return pd.DataFrame({"embryo": name, "time": [1] * n + [2] * 30, "x": xyz[:, 0], "y": xyz[:, 1],
                         "z": xyz[:, 2], "size": 20.0})


def _predict(table: pd.DataFrame):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = random_predictor(smooth="none").predict(table)
    return out, [str(w.message) for w in caught if issubclass(w.category, IdentityWarning)]


# ----------------------------------------------------------------------------- 1. --threads under options
@needs_identity
def test_identify_records_threads_among_its_options(tmp_path, capsys, keep_threads):
    src = tmp_path / "t.csv"
    _embryo().to_csv(src, index=False)
    out = tmp_path / "n.csv"
    code, _, err = run_cli(["identify", str(src), "--out", str(out), "--tta", "1", "--threads", "2"], capsys)
    assert code == 0, err
    rec = json.loads((tmp_path / "n.json").read_text())
    assert rec["options"] == {"tta": 1, "smooth": "lineage", "threads": 2, "mirror": False, "orient": "auto"}
    assert rec["threads"] == 2  # (the older key, kept for earlier readers)
    assert run_cli(["identify", str(src), "--out", str(out), "--tta", "1", "--smooth", "none"], capsys)[0] == 0
    assert json.loads((tmp_path / "n.json").read_text())["options"] == {
        "tta": 1, "smooth": "none", "threads": None, "mirror": False, "orient": "auto"}


# ----------------------------------------------------------------------------- 2. x and y lost
def test_a_table_whose_x_and_y_are_all_one_value_is_refused():
    with pytest.raises(DevolensError, match=r"x and y are the same \(0, 0\) for every nucleus of the table \(\d+ "
                                            r"row\(s\) at 4 time point\(s\)\): the positions were lost .*nothing to "
                                            "name; give each nucleus's x and y"):
        random_predictor(smooth="none").predict(_lost())
    point = _lost()
    point["z"] = 5.0  # every nucleus at one spot
    with pytest.raises(DevolensError, match="x and y are the same"):
        random_predictor(smooth="none").predict(point)


def test_an_embryo_whose_x_and_y_are_lost_is_left_out_with_a_note():
    table = pd.concat([_embryo("good"), _lost("bad")], ignore_index=True)
    out, said = _predict(table)
    bad = (out["embryo"] == "bad").to_numpy()
    assert out.loc[bad, "pred_founder"].isna().all() and out.loc[bad, "confidence"].isna().all()
    assert out.loc[~bad, "pred_founder"].notna().all()
    # the good embryo is named as it is alone
    alone, _ = _predict(_embryo("good"))
    assert np.allclose(out.loc[~bad, "confidence"].to_numpy(float), alone["confidence"].to_numpy(float))
    assert out.attrs["lost_positions"] == {"bad": {"x": 0.0, "y": 0.0, "rows": int(bad.sum()), "time_points": 4}}
    note = next(n for n in said if n.startswith("x and y are the same"))
    assert "every nucleus of embryo bad" in note and "left out, no prediction (empty columns)" in note
    assert note in input_notes(out.attrs)
    assert not any(n.startswith("the table stops") for n in said)  # (two embryos: the good one is named)


def test_a_cell_or_two_at_one_spot_is_no_lost_table():
    one = pd.DataFrame({"embryo": "e", "time": [1, 2], "x": 10.0, "y": 20.0, "z": [1.0, 2.0], "size": 12.0})
    out, said = _predict(one)
    assert out["pred_founder"].notna().all() and out.attrs["lost_positions"] == {}
    assert not any("x and y are the same" in n for n in said)


@needs_identity
def test_identify_refuses_a_lost_table_without_writing(tmp_path, capsys):
    src = tmp_path / "lost.csv"
    _lost().to_csv(src, index=False)
    out = tmp_path / "n.csv"
    code, _, err = run_cli(["identify", str(src), "--out", str(out), "--tta", "1"], capsys)
    assert code == 2 and "error: x and y are the same (0, 0) for every nucleus of the table" in " ".join(err.split())
    assert "Traceback" not in err and not out.exists() and not (tmp_path / "n.json").exists()


# ----------------------------------------------------------------------------- 3. more nuclei than an embryo
def test_identify_notes_a_time_point_of_more_nuclei_than_an_embryo():
    out, said = _predict(_crowded(EMBRYO_CELLS + 29))
    assert out.attrs["crowded"] == {"e": {"nuclei": EMBRYO_CELLS + 29, "time": 1, "more": 0}}
    note = next(n for n in said if "more than the 671 cells" in n)
    assert note.startswith(f"the table holds {EMBRYO_CELLS + 29} nuclei at time 1, more than the 671 cells")
    assert "several embryos in one table without an embryo column" in note and "not to be trusted" in note
    # an embryo's own count (the AceTree embryo's most: 585) is none
    out, said = _predict(_crowded(585))
    assert out.attrs["crowded"] == {} and not any("671" in n for n in said)


def test_lineage_populations_notes_a_time_point_of_more_cells_than_an_embryo(tmp_path, capsys):
    table = _crowded(20000).assign(cell=lambda d: [f"AB{'ap'[i % 2]}" for i in range(len(d))])
    src = tmp_path / "merged.csv"
    table.to_csv(src, index=False)
    assert any("holds 20000 nuclei at time 1" in n for n in populations(table).attrs.get("notes", ()))
    assert not any("671" in n for n in populations(_crowded(585).assign(cell="ABa")).attrs.get("notes", ()))
    code, _, err = run_cli(["lineage", "populations", str(src), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0, err
    err = " ".join(err.split())
    assert "note: the table holds 20000 nuclei at time 1, more than the 671 cells a C. elegans embryo's" in err
    assert any("20000 nuclei" in n for n in json.loads((tmp_path / "p.json").read_text())["notes"])


# ----------------------------------------------------------------------------- 4. a TIME file's repeated time point
def _cd(folder):
    rows = [(f"N{i}", t, 4.0 + i % 5, 100 + 7 * i, 200 + 3 * (i % 9), 30, 0) for t in range(1, 4) for i in range(20)]
    return write_cd(folder / "CDe.csv", rows)


def test_a_time_file_repeating_a_row_exactly_reads_it_once(tmp_path):
    cd = _cd(tmp_path)
    (tmp_path / "TIMEe.csv").write_text("e\t1\t0\t0\ne\t2\t90\t90\ne\t2\t90\t90\ne\t3\t180\t90\n")
    df = read_table(cd)
    assert df.attrs["time_seconds"] == {1: 0.0, 2: 90.0, 3: 180.0} and df.attrs["seconds_per_time"] == 90.0
    assert not df.attrs.get("notes")


@pytest.mark.parametrize("content, why", [
    # ascending: the last row's 95 s was taken without a word
    ("e\t1\t0\t0\ne\t2\t90\t90\ne\t2\t95\t95\ne\t3\t180\t90\n", "time point 2 is listed twice, with 90 s (line 2) "
                                                                "and 95 s (line 3)"),
    ("e\t1\t0\t0\ne\t3\t180\t90\ne\t2\t95\t95\ne\t2\t90\t90\n", "time point 2 is listed twice, with 95 s (line 3) "
                                                                "and 90 s (line 4)"),
    ("e\t1\t0\t0\ne\t2\t90\t90\nf\t2\t90\t90\n", "time point 2 is listed twice, with names 'e' (line 2) and 'f' "
                                                 "(line 3)"),
])
def test_a_time_file_listing_a_time_point_twice_is_ignored_with_a_note(tmp_path, content, why):
    cd = _cd(tmp_path)
    time = tmp_path / "TIMEe.csv"
    time.write_text(content)
    df = read_table(cd)
    assert df.attrs["time_seconds"] is None and df.attrs["seconds_per_time"] is None
    notes = [n for n in df.attrs.get("notes") or () if n.startswith(f"{time}:")]
    assert len(notes) == 1 and why in notes[0], notes
    assert notes[0].endswith("ignored (the TIME file beside the table), the table read as without it: time points "
                             "without seconds")
    with pytest.raises(DevolensError, match="is listed twice"):  # given to read_epic: refused, as the others
        read_epic(cd, time_file=time)
