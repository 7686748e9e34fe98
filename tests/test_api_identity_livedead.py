"""Python API of the identity and livedead predictors: what a user hands them (tables with other column names,
paths, device names, float images) and what they get back."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from devolens.errors import DevolensError

ZOO_OK = True
try:
    from devolens.models.zoo import ZOO_DIR

    ZOO_OK = all((ZOO_DIR / m / "weights.safetensors").is_file() for m in ("identity", "livedead"))
except Exception:  # pragma: no cover
    ZOO_OK = False
pytestmark = pytest.mark.skipif(not ZOO_OK, reason="identity/livedead weights not shipped")


@pytest.fixture(scope="module")
def embryo():
    from devolens.lineage.simulate import simulate_embryo

    return simulate_embryo(0, n_cells=30)


@pytest.fixture(scope="module")
def identity():
    from devolens.models import load

    return load("identity", tta=1)


@pytest.fixture(scope="module")
def livedead():
    from devolens.models import load

    return load("livedead")


@pytest.fixture(scope="module")
def well():
    from devolens.render.wells import simulate_well

    return simulate_well(seed=3, size=(256, 256)).image


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


# ----------------------------------------------------------------------------- identity: tables
def test_identity_table_without_usable_columns_names_them(identity, embryo):
    """No tidy (or TrackMate) column at all: the predictor's own one-line message, not pandas' unpacking error."""
    bad = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    for call in (identity.predict, identity.predict_proba):
        with pytest.raises(DevolensError, match=r"table lacks column\(s\) time, x, y, z"):
            call(bad)


def test_identity_reads_upper_case_and_trackmate_columns_as_a_file_would(identity, embryo):
    """Column names as read_positions maps a file's (case-insensitive; TrackMate's FRAME, POSITION_X..., RADIUS;
    no embryo: one embryo): same predictions as the tidy table; the output keeps the user's columns."""
    tidy = identity.predict(embryo)
    upper = identity.predict(embryo.rename(columns=str.upper))
    assert list(upper.columns[:len(embryo.columns)]) == [c.upper() for c in embryo.columns]
    assert list(upper.pred_depth1) == list(tidy.pred_depth1)
    np.testing.assert_allclose(upper.confidence, tidy.confidence)

    tm = pd.DataFrame({"FRAME": embryo["time"], "POSITION_X": embryo["x"], "POSITION_Y": embryo["y"],
                       "POSITION_Z": embryo["z"], "RADIUS": embryo["size"] / 2})
    got = identity.predict(tm, zscale=embryo.attrs["zscale"])
    assert list(got.columns) == ["FRAME", "POSITION_X", "POSITION_Y", "POSITION_Z", "RADIUS", "pred_founder",
                                 "pred_depth1", "confidence"]
    assert list(got.pred_depth1) == list(tidy.pred_depth1)
    pf, pd1 = identity.predict_proba(tm, zscale=embryo.attrs["zscale"])
    pf0, pd10 = identity.predict_proba(embryo)
    np.testing.assert_allclose(pd1, pd10, atol=1e-6)


def test_identity_predict_proba_takes_a_path_as_predict_does(identity, embryo, tmp_path):
    path = tmp_path / "positions.csv"
    embryo[["embryo", "time", "x", "y", "z", "size"]].to_csv(path, index=False)
    pf, pd1 = identity.predict_proba(path, zscale=embryo.attrs["zscale"])
    pf0, pd10 = identity.predict_proba(embryo)
    assert pf.shape == pf0.shape and pd1.shape == pd10.shape
    np.testing.assert_allclose(pd1, pd10, atol=1e-4)  # (the CSV rounds nothing that matters)
    pf_s, _ = identity.predict_proba(str(path), zscale=embryo.attrs["zscale"])
    np.testing.assert_allclose(pf_s, pf)
    with pytest.raises(DevolensError, match="expected a table"):
        identity.predict_proba(embryo[["x", "y", "z"]].to_numpy())
    with pytest.raises(DevolensError):
        identity.predict_proba(tmp_path / "missing.csv")


# ----------------------------------------------------------------------------- devices
@pytest.mark.parametrize("model", ["identity", "livedead", "nuclei", "membrane", "population"])
def test_device_names_as_the_other_predictors_take_them(model):
    """Every predictor takes the same device names and says where it runs (``.device``)."""
    from devolens.models import load

    pred = load(model, device="auto")
    want = "cpu" if _no_gpu() else "cuda"
    assert str(pred.device) == want
    assert str(load(model, device=" CPU ").device) == "cpu"
    with pytest.raises(DevolensError, match=r"device must be auto, cpu, cuda or cuda:N \(the GPU numbered N\), got 'gpu'"):
        load(model, device="gpu")
    if _no_gpu():
        with pytest.raises(DevolensError, match="sees no CUDA GPU"):
            load(model, device="cuda")


# ----------------------------------------------------------------------------- livedead: paths, dtypes
def test_livedead_predict_takes_a_path_read_as_predict_file_reads_it(livedead, well, tmp_path):
    import tifffile

    want = livedead.predict(well)
    first = tmp_path / "well.tif"
    tifffile.imwrite(first, well)
    last = tmp_path / "well_yxc.tif"  # channel-last, as some programs save two channels
    tifffile.imwrite(last, np.ascontiguousarray(np.moveaxis(well, 0, -1)))
    for path in (first, str(last)):
        got = livedead.predict(path)
        np.testing.assert_array_equal(got.labels, want.labels)
        np.testing.assert_allclose(got.probabilities, want.probabilities, atol=1e-6)
        assert got.counts == want.counts
    swapped = tmp_path / "swapped.tif"
    tifffile.imwrite(swapped, well[::-1].copy())
    np.testing.assert_array_equal(livedead.predict(swapped, channels=[1, 0]).labels, want.labels)
    assert livedead.predict(first, probabilities=False).probabilities is None
    with pytest.raises(DevolensError, match="no such file"):
        livedead.predict(tmp_path / "missing.tif")
    one = tmp_path / "one.tif"
    tifffile.imwrite(one, well[0])
    with pytest.raises(DevolensError, match="holds one channel; a well needs two"):
        livedead.predict(one)
    with pytest.raises(DevolensError, match="channels"):
        livedead.predict(well, channels=[1, 0])  # an array's channels: index it


def test_livedead_predict_of_a_path_warns_of_swapped_channels_as_the_cli_does(livedead, tmp_path):
    """Draq7 saved first and not named: nearly every nucleus reads as dead; predict(path) says so (the Python
    words: channels=[1, 0]) as segment livedead does, and channels=[1, 0] reads the well right."""
    import tifffile

    from devolens.render.wells import simulate_well

    well = simulate_well(seed=1, size=(768, 768)).image
    path = tmp_path / "draq7_first.tif"
    tifffile.imwrite(path, well[::-1].copy())
    with pytest.warns(UserWarning, match=r"read as dead.*channels=\[1, 0\]"):
        livedead.predict(path, probabilities=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = livedead.predict(path, channels=[1, 0], probabilities=False)
    assert fixed.counts == livedead.predict(well, probabilities=False).counts


def test_livedead_float_counts_convert_without_a_warning(livedead, well):
    """float32 holding the camera's whole counts is no export made for viewing: read as it is, quietly; a
    [0, 1] (contrast-stretched) or fractional image still warns."""
    want = livedead.predict(well)
    for exact in (well.astype(np.float32), well.astype(np.float64), well.astype(np.int32)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = livedead.predict(exact)
        np.testing.assert_array_equal(got.labels, want.labels)
    for lossy in (well.astype(np.float32) / 65535, well.astype(np.float32) + 0.25, (well // 257).astype(np.uint8)):
        with pytest.warns(UserWarning, match="not uint16"):
            livedead.predict(lossy)


def test_livedead_result_docstring_says_how_it_differs():
    from devolens.predict.livedead import LiveDeadResult

    doc = " ".join(LiveDeadResult.__doc__.split())
    for words in ("class map", "not instance labels", "DataFrame", "counts", "SegmentationResult"):
        assert words in doc, words


def test_identity_dataframe_with_units_and_duplicate_columns():
    """Columns that name one physical unit for x, y, z (x_um...) set zscale 1 as a file's do (z was read as planes);
    two columns for one coordinate are a one-line error (a pandas TypeError before)."""
    from devolens.predict.identity import tidy_positions

    df = pd.DataFrame({"t": [0, 0], "x_um": [1.0, 2.0], "y_um": [1.0, 2.0], "z_um": [1.0, 2.0]})
    assert tidy_positions(df).attrs["zscale"] == 1.0
    mixed = pd.DataFrame({"t": [0, 0], "x_um": [1.0, 2.0], "y_um": [1.0, 2.0], "z": [1.0, 2.0]})
    assert "zscale" not in tidy_positions(mixed).attrs
    dup = pd.DataFrame([[0, 1.0, 1.0, 1.0, 2.0]], columns=["FRAME", "POSITION_X", "POSITION_X", "POSITION_Y",
                                                            "POSITION_Z"])
    with pytest.raises(DevolensError, match="several columns for x"):
        tidy_positions(dup)


def test_identity_dataframe_with_two_columns_for_one_coordinate():
    """x beside x_um (or POSITION_X beside x): which one is the position is not guessed (the unit was read from one
    column while the position came from the other, by column order)."""
    from devolens.predict.identity import tidy_positions

    for cols in (["t", "x", "x_um", "y_um", "z_um"], ["t", "x_um", "x", "y_um", "z_um"], ["t", "POSITION_X", "x", "y", "z"]):
        df = pd.DataFrame([[0, 1.0, 1.0, 1.0, 1.0]], columns=cols)
        with pytest.raises(DevolensError, match="several columns for x"):
            tidy_positions(df)
