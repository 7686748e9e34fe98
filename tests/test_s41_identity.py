"""identity's inputs (session 41): a tidy table's size column named otherwise (``diameter``, ``SIZE``, ``RADIUS``)
is read as size, with a note, from a DataFrame and from a file (it was ignored: the names of a table without sizes);
a lineage file's renamed columns are noted by read_positions, so identify records them; ``mirror`` takes only True or
False (``"no"`` mirrored), ``tta`` only a whole number >= 1 (0, True, 2.5 were changed silently); a DataFrame with
MultiIndex columns, or two columns of one name, is refused in one line (a bare KeyError / TypeError)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from devolens.cli import main
from devolens.errors import DevolensError, IdentityWarning
from devolens.io.tables import read_positions, read_table
from devolens.lineage.simulate import simulate_embryo
from devolens.predict.identity import IdentityPredictor, prepare_clouds, tidy_positions

from _identity_helpers import DEPTH1, FOUNDERS, needs_zoo, random_predictor


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    """A small simulated embryo (4 to 30 cells): a tidy table with sizes."""
    return simulate_embryo(3, n_cells=30)


@pytest.fixture(scope="module")
def pred() -> IdentityPredictor:
    return random_predictor(smooth="none")


def _predict(pred, table, **kw):
    """``pred.predict(table)`` and the IdentityWarnings it issued."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pred.predict(table, **kw)
    return out, [str(w.message) for w in caught if issubclass(w.category, IdentityWarning)]


def _tidy_csv(path, df: pd.DataFrame, rename: dict):
    df.rename(columns=rename).to_csv(path, index=False)
    return path


# ----------------------------------------------------------------------------- 1. a size column named otherwise
@pytest.mark.parametrize("name, factor, note", [
    ("diameter", 1.0, "column diameter read as size"),
    ("SIZE", 1.0, "column SIZE read as size"),
    ("Diameter (px)", 1.0, "column Diameter (px) read as size"),
    ("RADIUS", 0.5, "column RADIUS read as size (twice the radius)"),
])
def test_a_tidy_dataframes_size_column_named_otherwise_is_read_with_a_note(sim, pred, name, factor, note):
    with_size = pred.predict_proba(sim)[1]
    without = pred.predict_proba(sim.drop(columns="size"))[1]
    assert not np.allclose(with_size, without)  # (the sizes matter to the network)
    user = sim.drop(columns="size").assign(**{name: sim["size"] * factor})
    before = user.copy()
    np.testing.assert_allclose(pred.predict_proba(user)[1], with_size)
    out, said = _predict(pred, user)
    assert said[0] == note and out.attrs["notes"] == [note]
    ref, said_ref = _predict(pred, sim)
    assert not [s for s in said_ref if "read as" in s] and not ref.attrs.get("notes")
    pd.testing.assert_series_equal(out["confidence"], ref["confidence"])
    assert list(out.columns[:len(user.columns)]) == list(user.columns)  # the user's columns come back as given
    pd.testing.assert_frame_equal(user, before)  # and the user's table is untouched
    tidy = tidy_positions(user)
    assert "size" in tidy.columns and name not in tidy.columns and not user.attrs.get("notes")


def test_a_tidy_dataframes_own_size_column_wins(sim, pred):
    both = sim.assign(diameter=sim["size"] * 3)
    assert tidy_positions(both) is both
    np.testing.assert_allclose(pred.predict_proba(both)[1], pred.predict_proba(sim)[1])


@pytest.mark.parametrize("name, factor, note", [
    ("diameter", 1.0, "column diameter read as size"),
    ("RADIUS", 0.5, "column RADIUS read as size (twice the radius)"),
    ("radius", 0.5, "column radius read as size (twice the radius)"),
])
def test_a_tidy_csvs_size_column_named_otherwise_is_read_with_a_note(tmp_path, sim, name, factor, note):
    table = sim.assign(size=sim["size"] * factor)
    path = _tidy_csv(tmp_path / "t.csv", table, {"size": name})
    for read in (read_table, read_positions):
        df = read(path)
        assert name not in df.columns, read
        np.testing.assert_allclose(df["size"], sim["size"])
        assert df.attrs["notes"] == [note], read


def test_read_positions_notes_a_lineage_tables_renamed_columns(tmp_path, sim):
    path = _tidy_csv(tmp_path / "t.csv", sim, {"time": "Time", "size": "Diameter"})
    note = "columns Time, Diameter read as time, size"
    assert read_table(path).attrs["notes"] == [note]
    df = read_positions(path)
    assert df.attrs["notes"] == [note]
    np.testing.assert_allclose(df["size"], sim["size"])


@needs_zoo
def test_identify_reads_a_diameter_column_and_records_the_notes(tmp_path, sim, capsys):
    small = sim[sim["time"] <= 8]
    for rename, note in (({"size": "diameter"}, "column diameter read as size"),
                         ({"time": "Time", "size": "Diameter"}, "columns Time, Diameter read as time, size")):
        src = _tidy_csv(tmp_path / "in.csv", small, rename)
        out = tmp_path / "names.csv"
        assert main(["identify", str(src), "--out", str(out), "--smooth", "none"]) == 0
        assert f"note: {note}" in capsys.readouterr().err
        got = pd.read_csv(out)
        assert "diameter" not in got.columns and "Diameter" not in got.columns
        np.testing.assert_allclose(got["size"], small["size"])
        assert note in json.loads((tmp_path / "names.json").read_text())["notes"]


# ----------------------------------------------------------------------------- 2. mirror and tta
@pytest.mark.parametrize("bad", ["no", "false", "True", 1, 0, None, [True]])
def test_mirror_takes_only_true_or_false(sim, pred, bad):
    for call in (pred.predict, pred.predict_proba, prepare_clouds):
        with pytest.raises(DevolensError, match=r"^mirror must be True or False, got "):
            call(sim, mirror=bad)


def test_mirror_takes_numpy_bools(sim, pred):
    out, _ = _predict(pred, sim, mirror=np.bool_(True))
    assert out.attrs["mirrored"] is True
    np.testing.assert_allclose(pred.predict_proba(sim, mirror=np.bool_(True))[1],
                               pred.predict_proba(sim, mirror=True)[1])


@pytest.mark.parametrize("bad", [0, -1, True, False, 2.5, "2", None])
def test_tta_must_be_a_whole_number_of_at_least_one(pred, bad):
    with pytest.raises(DevolensError, match=r"^tta must be a whole number >= 1, got "):
        IdentityPredictor(pred.model, FOUNDERS, DEPTH1, tta=bad)


def test_tta_whole_numbers_pass(pred):
    assert IdentityPredictor(pred.model, FOUNDERS, DEPTH1, tta=3).tta == 3
    assert IdentityPredictor(pred.model, FOUNDERS, DEPTH1, tta=np.int64(2)).tta == 2
    assert IdentityPredictor(pred.model, FOUNDERS, DEPTH1, tta=2.0).tta == 2


@needs_zoo
def test_load_identity_refuses_tta_zero():
    from devolens.models import load

    with pytest.raises(DevolensError, match=r"tta must be a whole number >= 1, got 0"):
        load("identity", tta=0)


# ----------------------------------------------------------------------------- 3. columns that are no plain names
def test_multiindex_columns_are_refused_in_one_line(sim, pred):
    table = sim.copy()
    table.columns = pd.MultiIndex.from_tuples([(c, "px") for c in sim.columns])
    for call in (pred.predict, pred.predict_proba):
        with pytest.raises(DevolensError, match=r"MultiIndex.*get_level_values\(0\)"):
            call(table)


def test_two_columns_of_one_name_are_refused(sim, pred):
    table = pd.concat([sim, sim[["x"]]], axis=1)
    for call in (pred.predict, pred.predict_proba):
        with pytest.raises(DevolensError, match=r"several columns named x: keep one of each"):
            call(table)
