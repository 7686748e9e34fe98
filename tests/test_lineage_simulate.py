"""The digital embryo: determinism, Sulston names, populations, geometry, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.lineage.names import is_valid_name, parent
from devolens.lineage.simulate import (
    PARAMS_PATH,
    inside_ellipsoid,
    lineage_group,
    load_params,
    simulate_embryo,
)

N = 50


@pytest.fixture(scope="module")
def emb() -> pd.DataFrame:
    return simulate_embryo(7, n_cells=N)


def test_columns_and_attrs(emb):
    assert list(emb.columns) == ["embryo", "time", "cell", "x", "y", "z", "size"]
    assert emb["time"].dtype.kind == "i" and emb["time"].min() == 1
    assert set(emb["embryo"]) == {"sim7"}
    for k in ("zscale", "ellipse", "seconds_per_time", "ellipsoid"):
        assert emb.attrs[k] is not None
    assert set(emb.attrs["ellipse"]) == {"xc", "yc", "maj", "min", "ang"}
    assert 60 <= emb.attrs["seconds_per_time"] <= 120
    assert (emb["size"] > 0).all()
    assert not emb.duplicated(["time", "cell"]).any()


def test_same_seed_same_table_other_seed_differs(emb):
    again = simulate_embryo(7, n_cells=N)
    pd.testing.assert_frame_equal(emb, again)
    other = simulate_embryo(8, n_cells=N)
    assert not (len(other) == len(emb) and np.allclose(other["x"].to_numpy(), emb["x"].to_numpy()))


def test_names_valid_and_parents_precede(emb):
    assert emb["cell"].map(is_valid_name).all()
    first = emb.groupby("cell")["time"].min()
    t0 = emb["time"].min()
    founders = set(emb.loc[emb["time"] == t0, "cell"])
    assert founders == {"P0"}
    for cell, t in first.items():
        if cell in founders:
            continue
        mom = parent(cell)
        assert mom in first.index, cell
        assert first[mom] < t, cell
        # the mother is gone once her daughters exist
        assert not ((emb["cell"] == mom) & (emb["time"] >= t)).any(), cell


def test_sulston_order_of_founders(emb):
    first = emb.groupby("cell")["time"].min()
    assert first["AB"] == first["P1"]
    assert first["EMS"] == first["P2"]
    assert first["ABa"] <= first["EMS"]  # AB divides before P1
    assert first["MS"] == first["E"] and first["C"] == first["P3"]


def test_population_never_falls_except_a_few_apoptoses():
    df = simulate_embryo(3, n_cells=380)
    counts = df.groupby("time").size().to_numpy()
    falls = -np.minimum(np.diff(counts), 0)
    assert falls.sum() <= len(df.attrs["apoptoses"])
    assert falls.sum() <= 10
    assert counts[-1] >= 380
    # the lineages are all there, in roughly the real proportions
    last = df[df["time"] == df["time"].max()]["cell"].str[0].value_counts(normalize=True)
    assert 0.6 < last["A"] < 0.85 and 0.02 < last["E"] < 0.08 and last["Z"] > 0


def test_apoptosis_removes_cells_without_daughters():
    params = {"apoptosis": {"ABal": {"p": 1.0, "life": 3.0}}}
    df = simulate_embryo(1, n_cells=30, params=params)
    assert "ABal" in df.attrs["apoptoses"]
    assert not df["cell"].str.startswith("ABala").any() and not df["cell"].str.startswith("ABalp").any()
    assert df["cell"].str.startswith("ABar").any()


def test_positions_inside_the_ellipsoid(emb):
    r = inside_ellipsoid(emb)
    assert r.max() < 1.0
    big = simulate_embryo(5, n_cells=200, start="4cell")
    assert inside_ellipsoid(big).max() < 1.0


def test_start_at_four_cells():
    df = simulate_embryo(2, n_cells=20, start="4cell")
    assert set(df.loc[df["time"] == 1, "cell"]) == {"ABa", "ABp", "EMS", "P2"}


def test_compaction_nuclei_shrink_as_cells_multiply():
    df = simulate_embryo(4, n_cells=200)
    n = df.groupby("time")["size"].transform("size")
    early = df.loc[n <= 8, "size"].median()
    late = df.loc[n >= 150, "size"].median()
    assert late < 0.6 * early


def test_stop_rules(emb):
    counts = emb.groupby("time").size()
    assert counts.iloc[-1] >= N and (counts.iloc[:-1] < N).all()
    df = simulate_embryo(7, n_times=12)
    assert df["time"].max() == 12 and df["time"].nunique() == 12
    # the same seed grows the same embryo whatever the stop rule
    pd.testing.assert_frame_equal(df, emb[emb["time"] <= 12].reset_index(drop=True))


@pytest.mark.parametrize("kw", [{"n_cells": 0}, {"n_times": 0}, {"seed": -1}])
def test_bad_arguments_raise(kw):
    args = {"seed": 0, **kw}
    with pytest.raises(DevolensError):
        simulate_embryo(**args)


def test_params_override_and_shipped_params():
    p = load_params({"physics": {"jitter": 0.0}})
    assert p["physics"]["jitter"] == 0.0 and "iterations" in p["physics"]
    if PARAMS_PATH.exists():
        shipped = json.loads(PARAMS_PATH.read_text())
        # fitted, not the built-in priors: real cell names and per-lineage groups
        assert len(shipped["cycle"]["by_name"]) > 100
        g = shipped["cycle"]["by_group"]
        assert g["E:1"]["mean"] > g["MS:1"]["mean"] > g["AB:3"]["mean"] * 0.9
    assert lineage_group("ABalp") == "AB:3" and lineage_group("AB") == "AB:0"
    assert lineage_group("EMS") == "EMS" and lineage_group("Ea") == "E:1"


@pytest.mark.parametrize("over, key", [
    ({"cycle": {"growth": -1.3}}, "cycle.growth"),
    ({"cycle": {"min_life": -2}}, "cycle.min_life"),
    ({"cycle": {"by_group": {"AB:3": {"mean": 0}}}}, "cycle.by_group.AB:3.mean"),
    ({"size": {"s0": "160"}}, "size.s0"),
    ({"size": {"min": 50.0, "max": 20.0}}, "size.max"),
    ({"seconds_per_time": float("nan")}, "seconds_per_time"),
    ({"cycle": None}, "cycle"),
    ({"cycle": {"by_group": []}}, "cycle.by_group"),
    ({"cycle": {"by_name": {"ABa": -5}}}, "cycle.by_name.ABa"),
])
def test_params_the_simulator_cannot_use_are_refused_by_key(tmp_path, capsys, over, key):
    with pytest.raises(DevolensError, match=f"simulator parameter {key} ="):
        load_params(over)
    f = tmp_path / "p.json"
    f.write_text(json.dumps(over))
    assert main(["simulate", "embryo", "--params", str(f), "--out", str(tmp_path / "e.csv"), "--times", "2"]) == 2
    assert key in capsys.readouterr().err and not (tmp_path / "e.csv").exists()


def test_cli_writes_a_readable_tidy_csv(tmp_path):
    out = tmp_path / "sim" / "embryo.csv"
    code = main(["simulate", "embryo", "--seed", "3", "--cells", "30", "--out", str(out)])
    assert code == 0
    df = pd.read_csv(out)
    assert list(df.columns)[:7] == ["embryo", "time", "cell", "x", "y", "z", "size"]
    assert df.groupby("time").size().iloc[-1] >= 30
    ref = simulate_embryo(3, n_cells=30)
    assert len(df) == len(ref) and list(df["cell"]) == list(ref["cell"])
    from devolens.io.tables import read_table

    back = read_table(out)
    assert back.attrs["zscale"] == pytest.approx(ref.attrs["zscale"])
    assert not list(out.parent.glob(".*tmp*"))


def test_cli_notes_time_points_past_hatching(tmp_path, capsys):
    """The simulator has no terminal divisions: past the 558 cells of a hatching embryo it keeps dividing, said."""
    out = tmp_path / "long.csv"
    assert main(["simulate", "embryo", "--seed", "3", "--cells", "600", "--out", str(out)]) == 0
    df = pd.read_csv(out)
    first = int(df.groupby("time").size().gt(558).idxmax())
    assert f"from time point {first} the embryo has more than the 558 cells" in " ".join(capsys.readouterr().err.split())
    assert main(["simulate", "embryo", "--seed", "3", "--cells", "30", "--out", str(tmp_path / "short.csv")]) == 0
    assert "558" not in capsys.readouterr().err


def test_cli_bad_option_exit_2_and_no_file(tmp_path):
    out = tmp_path / "bad.csv"
    assert main(["simulate", "embryo", "--seed", "1", "--cells", "0", "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["simulate", "embryo", "--seed", "1", "--start", "8cell", "--out", str(out)]) == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_fit_on_real_embryos(epic_tables):
    from devolens.io.tables import read_table
    from devolens.lineage.fit import fit_simulator_params

    tables = [read_table(p) for p in epic_tables[:3]]
    p = fit_simulator_params(tables, calibrate=False)
    assert 0.1 < p["size"]["alpha"] < 0.5
    assert p["cycle"]["by_group"]["AB:4"]["mean"] < p["cycle"]["by_group"]["E:2"]["mean"]
    df = simulate_embryo(0, n_cells=40, params=p)
    assert df.groupby("time").size().iloc[-1] >= 40


def test_km_median_handles_censoring():
    from devolens.lineage.fit import km_median

    assert km_median(np.array([5.0, 6.0, 7.0]), np.array([True, True, True])) == 6.0
    # censored short lives do not drag the median down
    assert km_median(np.array([2.0, 2.0, 10.0, 12.0, 14.0]), np.array([False, False, True, True, True])) == 12.0
    assert km_median(np.array([3.0, 4.0]), np.array([False, False])) is None


def test_fit_recovers_the_simulators_own_cycles():
    """Fit on simulated embryos (data the project makes itself) and get their timing back."""
    from devolens.lineage.fit import cell_lives, fit_simulator_params

    truth = load_params()
    sims = [simulate_embryo(s, n_cells=120) for s in range(4)]
    lives = cell_lives(sims[0])
    assert set(lives["status"]) <= {"divided", "censored", "died"}
    assert (lives.loc[lives["status"] == "divided", "life"] >= 1).all()
    p = fit_simulator_params(sims, calibrate=False)
    for grp in ("AB:3", "AB:4", "MS:1", "E:1", "C:1"):
        want = truth["cycle"]["by_group"][grp]["mean"]
        got = p["cycle"]["by_group"][grp]["mean"]
        assert abs(got - want) / want < 0.2, (grp, got, want)
    assert p["division_letters"]["ABa"] == "lr"
    assert abs(p["size"]["alpha"] - truth["size"]["alpha"]) < 0.05


def test_requests_past_any_embryo_are_refused(monkeypatch):
    from devolens.lineage import simulate
    from devolens.lineage.simulate import MAX_CELLS, MAX_TIMES

    with pytest.raises(DevolensError, match="at most 2000"):
        simulate_embryo(0, n_cells=MAX_CELLS + 1)
    with pytest.raises(DevolensError, match="at most 600"):
        simulate_embryo(0, n_times=MAX_TIMES + 1)
    # an embryo that outgrows any real one within the time points asked for stops with an error
    monkeypatch.setattr(simulate, "RUNAWAY_CELLS", 40)
    with pytest.raises(DevolensError, match="passed 40 cells at time point"):
        simulate_embryo(0, n_times=200)


@pytest.mark.slow
def test_the_fitted_parameters_are_not_taken_for_runaway_ones():
    """Up to MAX_TIMES time points the fitted embryo is never refused as runaway (seed 1 passes 8000 cells at
    time point 556, which a guard at 4 * MAX_CELLS refused)."""
    from devolens.lineage.simulate import RUNAWAY_CELLS

    df = simulate_embryo(1, n_times=560)
    assert 8000 < df.groupby("time").size().max() < RUNAWAY_CELLS
