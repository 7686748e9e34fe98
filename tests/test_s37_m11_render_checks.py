"""The one-frame renderers refuse what they would draw wrongly: a time point the table lacks (an empty eggshell whose
counts say 0) and rows at the rendered time point without a finite position (counted in ``counts`` but drawn
nowhere)."""

import numpy as np
import pandas as pd
import pytest

from _render_helpers import make_table
from devolens import checks
from devolens.errors import DevolensError, DevolensValueError
from devolens.render.dataset import render_dataset
from devolens.render.membranes import render_membrane_frame
from devolens.render.nuclei import render_nuclei_frame

SIZE = (48, 64)
RENDERERS = (render_nuclei_frame, render_membrane_frame)


@pytest.fixture(scope="module")
def table():
    return make_table(n_times=3, n_cells=12, seed=2)


def _copy(table):
    df = table.copy()
    df.attrs = dict(table.attrs)
    return df


@pytest.mark.parametrize("render", RENDERERS)
@pytest.mark.parametrize("time", [0, 9999, -3, 4.0])
def test_a_time_point_the_table_lacks_is_refused(table, render, time):
    with pytest.raises(DevolensValueError) as exc:  # a ValueError too, as the renderers' other refusals
        render(table, time, size=SIZE, seed=0)
    text = str(exc.value)
    assert text == f"time point {int(time)} not in the table (it has 1..3): render one of those"


def test_a_gap_in_the_table_is_named_and_its_file_too(table):
    df = _copy(table[table["time"] != 2])
    df.attrs["source"] = "emb.csv"
    with pytest.raises(DevolensError, match=r"^emb\.csv: time point 2 not in the table \(it has 1\.\.3 except 2\)"):
        render_nuclei_frame(df, 2, size=SIZE)
    assert render_nuclei_frame(df, 3, size=SIZE).labels.max() > 0  # the time points it has still render


@pytest.mark.parametrize("render", RENDERERS)
def test_rows_without_a_position_at_the_time_point_are_refused(table, render):
    df = _copy(table)
    at1 = np.flatnonzero(df["time"].to_numpy() == 1)
    df.loc[df.index[at1[2:6]], "x"] = np.nan  # 4 rows of time point 1: drawn nowhere, counted in counts
    with pytest.raises(DevolensValueError, match=rf"^column 'x' must hold finite numbers; 4 rows at time point 1 do "
                                                 rf"not \(the first: row {at1[2]} holds nan\): drop such rows"):
        render(df, 1, size=SIZE, seed=0)
    f = render(df, 2, size=SIZE, seed=0)  # other time points of the table render as they did
    assert f.labels.max() > 0


def test_one_missing_depth_names_its_row(table):
    df = _copy(table)
    row = int(np.flatnonzero(df["time"].to_numpy() == 3)[1])
    df.loc[df.index[row], "z"] = np.inf
    with pytest.raises(DevolensError, match=rf"^column 'z' must hold finite numbers; row {row} at time point 3 holds "
                                            r"inf: drop such rows or give them a position$"):
        render_nuclei_frame(df, 3, size=SIZE)


def test_text_in_a_position_column_is_shown_as_written(table):
    df = _copy(table)
    df["y"] = df["y"].astype(object)
    row = int(np.flatnonzero(df["time"].to_numpy() == 2)[0])
    df.loc[df.index[row], "y"] = "deep"
    with pytest.raises(DevolensError, match=rf"column 'y' must hold finite numbers; row {row} at time point 2 holds "
                                            r"'deep'"):
        render_nuclei_frame(df, 2, size=SIZE)


def test_an_unknown_size_still_renders_an_infinite_one_does_not(table):
    df = _copy(table)
    at2 = np.flatnonzero(df["time"].to_numpy() == 2)
    df.loc[df.index[at2[0]], "size"] = np.nan  # unknown: drawn at the table's median
    f = render_nuclei_frame(df, 2, size=SIZE)
    assert f.counts["total"] == len(at2) and f.labels.max() > 0
    df.loc[df.index[at2[1]], "size"] = np.inf
    with pytest.raises(DevolensError, match=rf"column 'size' must hold finite numbers; row {at2[1]} at time point 2 "
                                            r"holds inf: drop such rows or give them a size \(NaN: unknown\)"):
        render_nuclei_frame(df, 2, size=SIZE)


def test_render_dataset_refuses_such_rows_and_writes_nothing(tmp_path, table):
    df = _copy(table)
    df.loc[df.index[df["time"] == 2], "x"] = np.nan
    with pytest.raises(DevolensError, match="column 'x' must hold finite numbers; 12 rows at time point 2 do not"):
        render_dataset(df, tmp_path / "r", times=[1, 2], size=SIZE)
    assert not (tmp_path / "r").exists()


def test_finite_column_words_one_row_as_identity_does():
    col = pd.Series([1.0, 2.0, np.nan, 4.0, np.inf])
    values = col.to_numpy()
    with pytest.raises(DevolensError, match=r"^column 'y' must hold finite numbers; row 2 holds nan$"):
        checks.finite_column(values, col, "y", rows=[0, 1, 2, 3])
    with pytest.raises(DevolensError, match=r"^column 'y' must hold finite numbers; 2 rows do not \(the first: row 2 "
                                            r"holds nan\)$"):
        checks.finite_column(values, col, "y")
    checks.finite_column(values, col, "size", rows=[0, 2, 3], nan_ok=True)  # NaN passes where it means unknown
    with pytest.raises(DevolensValueError, match=r"^t\.csv: column 'size' must hold finite numbers; row 4 holds inf: "
                                                 r"give a size$"):
        checks.finite_column(values, col, "size", nan_ok=True, then="give a size", path="t.csv",
                             error=DevolensValueError)
