"""Lineage tables whose time points are not numbered 1, 2, 3... (time in seconds at 90 s, acquisition times 89-97 s
apart, every 3rd frame kept): the fit, the words for a table's time points and the populations plot's x axis go by
the table's own step (thirty-fourth session, M2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from _lineage_builders import run_cli, write_cd
from devolens.io import tables
from devolens.io.tables import read_table, time_points_text, write_tidy


def _retimed(df: pd.DataFrame, times: dict[int, int]) -> pd.DataFrame:
    out = df.copy()
    out["time"] = out["time"].map(times)
    return out


def _through_tidy(df: pd.DataFrame, path) -> pd.DataFrame:
    """``df`` written by the project's writer and read back by its reader (notes on the step included)."""
    write_tidy(df, path)
    return read_table(path)


@pytest.fixture(scope="module")
def embryos(tmp_path_factory):
    """Three simulated embryos as numbered (1, 2, 3...), in seconds at 90 s (0, 90, 180...) and in acquisition
    seconds 90-96 apart (irregular units), each written as a tidy CSV and read back."""
    from devolens.lineage.simulate import simulate_embryo

    tmp = tmp_path_factory.mktemp("s34_embryos")
    rng = np.random.default_rng(0)
    numbered, seconds, irregular = [], [], []
    for seed in range(3):
        df = simulate_embryo(seed, n_cells=100)
        ts = sorted(df["time"].unique())
        numbered.append(df)
        seconds.append(_through_tidy(_retimed(df, {t: 90 * (t - 1) for t in ts}), tmp / f"s{seed}.csv"))
        acq = np.cumsum(np.r_[0, rng.integers(90, 97, len(ts) - 1)])
        irregular.append(_through_tidy(_retimed(df, dict(zip(ts, acq.tolist()))), tmp / f"i{seed}.csv"))
    assert any("step by 90" in n for n in seconds[0].attrs["notes"])
    assert any("irregular units" in n for n in irregular[0].attrs["notes"])
    return numbered, seconds, irregular


# ----------------------------------------------------------------------------- time point numbers
def test_time_point_numbers_count_one_per_the_tables_step():
    from devolens.io.tables import time_point_numbers

    assert time_point_numbers([3, 1, 2, 2, 5]).tolist() == [2, 0, 1, 1, 4]  # numbered: a hole counted
    assert time_point_numbers(pd.Series([0, 90, 180, 270, 450, 90])).tolist() == [0, 1, 2, 3, 5, 1]  # seconds
    assert time_point_numbers(np.array([1, 4, 7, 10, 16])).tolist() == [0, 1, 2, 3, 5]  # every 3rd frame
    # acquisition times 89-95 apart, 641 after a missing one
    assert time_point_numbers([0, 90, 179, 269, 360, 455, 641]).tolist() == [0, 1, 2, 3, 4, 5, 7]


# ----------------------------------------------------------------------------- fit
def test_fit_of_a_table_in_seconds_is_the_fit_of_it_numbered(embryos):
    """Lives, apoptoses and the steps of nuclei between time points counted in the table's own time points: the
    fit of a table in seconds (regular or acquisition times) is that of the same table numbered 1, 2, 3... Lives
    were in seconds (a cycle of ~970 for ~11 time points), a cell gone one time point before the end died (the
    margin of 4 read as 4 seconds), and no two times were 1 apart, so no step between time points was measured."""
    from devolens.lineage.fit import cell_lives, fit_simulator_params

    numbered, seconds, irregular = embryos
    cols = ["cell", "life", "status", "left_censored", "letters"]
    for other in (seconds, irregular):
        pd.testing.assert_frame_equal(cell_lives(other[0])[cols], cell_lives(numbered[0])[cols])
    want = fit_simulator_params(numbered, calibrate=False)
    assert want["observed"]["step_over_nn"]  # (measured: the comparison below is not between two empties)
    for other in (seconds, irregular):
        got = fit_simulator_params(other, calibrate=False)
        for key in ("cycle", "apoptosis", "observed", "division_letters", "size"):
            assert got[key] == want[key], key


def test_seconds_per_time_point_from_time_seconds_of_a_table_in_seconds(embryos):
    """``time_seconds`` keyed by times in seconds (0, 90, 180...) gives seconds per time point, not per second."""
    from devolens.lineage.fit import fit_simulator_params

    _, seconds, _ = embryos
    tabs = []
    for t in seconds:
        t = t.copy()
        t.attrs = dict(t.attrs, time_seconds={int(s): 1.05 * s for s in t["time"].unique()})
        tabs.append(t)
    assert fit_simulator_params(tabs, calibrate=False)["seconds_per_time"] == pytest.approx(94.5)


# ----------------------------------------------------------------------------- time_points_text
def test_time_points_text_says_the_step_and_only_its_holes():
    secs = [t for t in range(0, 901, 90) if t != 360]
    assert time_points_text(secs) == "0..900 every 90 except 360"  # was "0..900 except 1-89, 91-179, ..."
    assert time_points_text([1, 4, 7, 13, 16, 19]) == "1..19 every 3 except 10"
    assert time_points_text([0, 90, 179, 269, 360, 455, 641]) == (
        "0..641 in irregular steps (89-95 apart) except 1 time point between 455 and 641")
    assert time_points_text(range(0, 32310, 90)) == "0..32220 every 90"
    # as before for time points numbered 1, 2, 3...
    assert time_points_text([1, 2, 3, 5, 6, 9]) == "1..9 except 4, 7-8"
    assert time_points_text([7]) == "7" and time_points_text([]) == "none"


def test_render_names_a_missing_time_of_a_table_in_seconds_with_its_step(tmp_path):
    """``render``'s error on a time the table lacks says what it has in the table's own step."""
    from devolens.errors import DevolensError
    from devolens.render.dataset import select_times

    rows = [(f"AB{'ap'[k % 2]}", t, 1.0, 10 + k, 20, 10, 0) for t in range(0, 1801, 90) if t != 900 for k in range(2)]
    table = read_table(write_cd(tmp_path / "CDsec.csv", rows))
    with pytest.raises(DevolensError) as exc:
        select_times(table, [45])
    assert "it has 0..1800 every 90 except 900" in str(exc.value)


# ----------------------------------------------------------------------------- time_step told once
def test_time_step_is_told_once_per_table(tmp_path, monkeypatch):
    """The readers' note on the time points and ``time_points_text`` tell a table's step once:
    ``irregular_time`` used to work it out again for every table spaced 10 or more apart."""
    calls = []
    real = tables.time_step
    monkeypatch.setattr(tables, "time_step", lambda *a, **k: calls.append(1) or real(*a, **k))
    rows = [("ABa", t, 1.0, 10, 20, 10, 0) for t in range(0, 1801, 90)]
    df = read_table(write_cd(tmp_path / "CDonce.csv", rows))
    assert any("step by 90" in n for n in df.attrs["notes"]) and len(calls) == 1
    calls.clear()
    assert time_points_text([0, 90, 179, 269, 360, 455, 641]).startswith("0..641 in irregular steps")
    assert len(calls) == 1


# ----------------------------------------------------------------------------- populations --plot
@pytest.fixture
def xlabels(monkeypatch):
    """The x labels of the figures saved while the test runs."""
    from matplotlib.figure import Figure

    seen = []
    real = Figure.savefig

    def savefig(self, *args, **kwargs):
        seen.append(self.axes[0].get_xlabel())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return seen


@pytest.mark.parametrize("times, label", [
    (range(1, 13), "time point"),
    (range(0, 991, 90), "time (seconds?; time points 90 apart)"),
    ([0, 91, 184, 277, 369, 460, 553, 644, 737, 830], "time (seconds?; time points 91-93 apart)"),
    (range(1, 35, 3), "time point (every 3rd frame?)"),
])
def test_populations_plot_labels_the_time_axis_in_the_tables_unit(tmp_path, capsys, xlabels, times, label):
    """``lineage populations --plot`` labelled the x axis "time point" whatever the table's time was in."""
    rows = [(f"AB{'ap'[k % 2]}{'lr'[(k // 2) % 2]}", t, 1.0, 10 + k, 20, 10, 0)
            for i, t in enumerate(times) for k in range(2 + i)]
    cd = write_cd(tmp_path / "CDplot.csv", rows)
    code, _, err = run_cli(["lineage", "populations", str(cd), "--out", str(tmp_path / "p.csv"), "--plot",
                            str(tmp_path / "p.png")], capsys)
    assert code == 0, err
    assert xlabels == [label]


def test_cell_lives_skips_a_row_without_a_time():
    import numpy as np
    import pandas as pd

    from devolens.lineage.fit import cell_lives

    rows = [("ABa", t) for t in range(1, 8)] + [(c, t) for t in range(8, 21) for c in ("ABal", "ABar")]
    rows += [("EMS", t) for t in range(1, 21)]
    df = pd.DataFrame(rows, columns=["cell", "time"]).assign(embryo="e")
    holed = df.assign(time=df["time"].astype(float))
    holed.loc[(holed["cell"] == "EMS") & (holed["time"] == 5), "time"] = np.nan  # one of EMS's rows
    a, b = cell_lives(df).set_index("cell"), cell_lives(holed).set_index("cell")
    assert b.loc["EMS", "life"] == a.loc["EMS", "life"] and bool(b.loc["EMS", "left_censored"])
