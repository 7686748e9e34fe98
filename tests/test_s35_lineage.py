"""Session 35 (M3): a mistyped time after a short lineage table is a lone time point, not an annotation cliff;
``benchmarks/fit_simulator.py --exclude NAME`` leaves out the tables named (repeatable, exact names, an unknown one
refused); render.json, ``simulate embryo``'s and ``lineage convert``/``clean``'s records name the version
``devolens``, as every other record does (``devolens_version`` kept beside it)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import devolens
from _lineage_builders import growth_rows, run_cli, write_cd

ROOT = Path(__file__).resolve().parents[1]
TYPO = ("ABal", 1050, 1.0, 500, 500, 10, 0)  # one row whose time was mistyped (105 -> 1050)


def _typo_table(path: Path, n_good: int) -> Path:
    """``n_good`` time points of 21, 22, ... named cells, then one row at the mistyped time 1050."""
    return write_cd(path, growth_rows(n_good, 20) + [TYPO])


# ----------------------------------------------------------------------------- 1. lone time points, short tables
@pytest.mark.parametrize("n_good", [2, 3, 4])
def test_a_mistyped_time_after_a_short_table_is_a_lone_time_not_a_cliff(tmp_path, capsys, n_good):
    """3-5 time points, the last a single row at a mistyped time: it was called a cliff (the table was too short for
    lone_times, min_times 6); it is now a lone time point, as it is in a longer table."""
    cd = _typo_table(tmp_path / f"CDshort{n_good}.csv", n_good)
    code, out, err = run_cli(["lineage", "cliffs", str(cd), "--json"], capsys)
    assert code == 0, err
    rep = json.loads(out)
    assert rep["cliffs"] == [] and rep["last_good_time"] == n_good
    assert rep["lone_times"] == [{"time": 1050, "cells": 1, "nearest": n_good}]
    code, out, err = run_cli(["lineage", "cliffs", str(cd)], capsys)
    assert code == 0 and "no annotation cliff" in out
    assert f"time 1050 stands alone, {1050 - n_good} time points after time {n_good} (1 cell)" in out
    # clean drops the row as a lone time point, cutting nothing
    clean = tmp_path / "clean.csv"
    code, _, err = run_cli(["lineage", "clean", str(cd), "--out", str(clean)], capsys)
    assert code == 0, err
    meta = json.loads(clean.with_name("clean.meta.json").read_text())["clean"]
    assert meta["cut_after_time"] is None and meta["lone_rows"] == 1 and meta["rows_after_cliff"] == 0


def test_lone_times_of_a_short_table_looks_at_its_ends():
    from devolens.lineage.cliffs import LoneTime, lone_times

    assert lone_times([1, 2, 3, 4, 1050], [21, 22, 23, 24, 1]) == [LoneTime(time=1050, cells=1, nearest=4, step=1)]
    # at the start too (a row mistyped 1 in a table of 101..104), as in a longer table
    assert lone_times([1, 101, 102, 103], [1, 20, 21, 22]) == [LoneTime(time=1, cells=1, nearest=101, step=1)]
    # counted in the table's own time points: seconds at 90 s
    (x,) = lone_times([90, 180, 270, 360, 94500], [21, 22, 23, 24, 1])
    assert (x.time, x.nearest, x.step, x.time_points) == (94500, 360, 90, 1046)
    # none: too few time points, a time point holding as many cells as the rest, a sparse table, a near gap, or
    # the others no run (1, 2, 30 and 31: which is mistyped?)
    assert lone_times([1, 1050], [21, 1]) == []
    assert lone_times([1, 2, 3, 1050], [21, 22, 23, 30]) == []
    assert lone_times([1, 40, 80, 120], [4, 28, 90, 180]) == []
    assert lone_times([1, 2, 3, 4, 9], [21, 22, 23, 24, 1]) == []
    assert lone_times([1, 2, 30, 31, 1050], [21, 22, 23, 24, 1]) == []


def test_a_short_table_ending_in_a_fall_at_its_own_step_keeps_its_cliff(tmp_path, capsys):
    """One row at the next time point (no mistyped time: curation stopped?) is a cliff, as in a longer table."""
    cd = write_cd(tmp_path / "CDfall.csv", growth_rows(4, 20) + [("ABal", 5, 1.0, 500, 500, 10, 0)])
    code, out, err = run_cli(["lineage", "cliffs", str(cd), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["cliffs"] == [{"time": 4, "before": 24, "after": 1, "first_bad_time": 5, "after_time": 5}]


def test_the_real_tables_cliffs_are_unchanged(epic_tables):
    """The shared EPIC tables: cliffs only in L4 (after 164) and 20241107 L1 (after 149), no lone time point."""
    from devolens.io.tables import read_table
    from devolens.lineage.cliffs import find_cliffs

    found = {}
    for path in epic_tables:
        rep = find_cliffs(read_table(path))
        assert rep.lone == [], path.name
        found[path.stem] = [(c.time, c.before, c.after, c.first_bad_time) for c in rep.cliffs]
    want = {"CD20240930_JIM762_L4": [(164, 345, 92, 165)], "CD20241107_JIM767_25_L1": [(149, 392, 105, 150)]}
    assert {k: v for k, v in found.items() if v} == {k: v for k, v in want.items() if k in found}


# ----------------------------------------------------------------------------- 2. fit_simulator.py --exclude
def _fit_script():
    spec = importlib.util.spec_from_file_location("_s35_fit_simulator", ROOT / "benchmarks" / "fit_simulator.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory):
    """A data folder of three small simulated embryos as EPIC tables' file names (tidy CSVs: sim0, sim1, sim2)."""
    from devolens.lineage.simulate import simulate_embryo

    data = tmp_path_factory.mktemp("simdata")
    (data / "epic").mkdir()
    for seed in range(3):
        simulate_embryo(seed, n_cells=40).to_csv(data / "epic" / f"CDsim{seed}.csv", index=False)
    return data


def _fit(sim_data, out, *extra):
    return _fit_script().main(["--data", str(sim_data), "--out", str(out), "--no-calibrate", "--no-acetree", *extra])


def test_fit_simulator_exclude_is_repeatable_by_name_or_file_stem(sim_data, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert _fit(sim_data, out, "--exclude", "sim1", "--exclude", "CDsim2") == 0  # an embryo name, a file stem
    assert json.loads(out.read_text())["embryos"] == ["sim0"]
    said = capsys.readouterr().err
    assert "note: left out CDsim1.csv (sim1)" in said and "note: left out CDsim2.csv (CDsim2)" in said  # (unread)
    assert _fit(sim_data, out, "--exclude", "sim0", "sim2") == 0  # several after one flag, as before
    assert json.loads(out.read_text())["embryos"] == ["sim1"]


def test_fit_simulator_refuses_an_exclude_that_names_no_table(sim_data, tmp_path, capsys):
    out = tmp_path / "p.json"
    for name in ("sim7", "sim"):  # a typo, a part of names (exact names only: "L1" is two EPIC tables)
        assert _fit(sim_data, out, "--exclude", "sim1", "--exclude", name) == 2
        err = capsys.readouterr().err
        assert f"error: --exclude {name}: no such table" in err and "sim0, sim1, sim2" in err
    assert _fit(sim_data, out, "--exclude", "sim0", "sim1", "CDsim2") == 2
    assert "error: every EPIC table" in capsys.readouterr().err
    assert not out.exists()  # nothing fitted, nothing written


def test_fit_simulator_leaves_out_a_table_it_cannot_read_when_told(sim_data, tmp_path, capsys):
    """A table named by its file stem is left out unread: a broken one no longer stops the fit (it was read first)."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(sim_data, data)
    (data / "epic" / "CDbroken.csv").write_text("this,is\n1,2\n")
    out = tmp_path / "p.json"
    assert _fit(data, out) == 2  # not left out: one error line naming it, nothing written
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "CDbroken.csv" in err and "--exclude CDbroken" in err and not out.exists()
    assert _fit(data, out, "--exclude", "CDbroken") == 0
    assert json.loads(out.read_text())["embryos"] == ["sim0", "sim1", "sim2"]


def test_fit_simulator_says_which_embryos_the_shipped_params_were_fitted_on():
    from devolens.lineage.simulate import PARAMS_PATH

    shipped = json.loads(PARAMS_PATH.read_text())
    doc = " ".join(_fit_script().__doc__.split())
    assert "20241010_JIM767_25_L3" in shipped["embryos"]  # the held-out embryo is among them (left as it is)
    for name in shipped["embryos"] + shipped["cycle_embryos"]:
        assert name in doc, name
    assert "--exclude 20241010_JIM767_25_L3" in doc


# ----------------------------------------------------------------------------- 3. "devolens" in every record
def test_render_json_names_the_version_devolens(tmp_path):
    from _render_helpers import make_table
    from devolens.errors import DevolensError
    from devolens.render.dataset import render_dataset

    render_dataset(make_table(n_times=2, n_cells=8), tmp_path / "r", size=(32, 48))
    meta = json.loads((tmp_path / "r" / "render.json").read_text())
    assert meta["devolens"] == devolens.__version__ and meta["devolens_version"] == devolens.__version__
    with pytest.raises(DevolensError, match="cannot replace render.json's own key"):  # its own key, as the older
        render_dataset(make_table(n_times=2, n_cells=8), tmp_path / "s", size=(32, 48), record={"devolens": "0"})


def test_simulate_and_lineage_records_name_the_version_devolens(tmp_path, capsys):
    from devolens.io.tables import read_tidy

    sim = tmp_path / "sim.csv"
    code, _, err = run_cli(["simulate", "embryo", "--seed", "1", "--cells", "12", "--out", str(sim)], capsys)
    assert code == 0, err
    meta = json.loads(sim.with_name("sim.meta.json").read_text())
    assert meta["devolens"] == meta["devolens_version"] == devolens.__version__
    assert "devolens" not in read_tidy(sim).attrs  # no table metadata: the table reads back as before
    cd = _typo_table(tmp_path / "CDrec.csv", 4)
    for command in ("convert", "clean"):
        out = tmp_path / f"{command}.csv"
        code, _, err = run_cli(["lineage", command, str(cd), "--out", str(out)], capsys)
        assert code == 0, err
        meta = json.loads(out.with_name(f"{command}.meta.json").read_text())
        assert meta["devolens"] == meta["devolens_version"] == devolens.__version__, command
        assert list(meta).index("devolens") + 1 == list(meta).index("devolens_version")
