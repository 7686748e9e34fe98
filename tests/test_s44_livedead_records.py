"""Session 44: `segment livedead`'s objects.csv gets segment nuclei's micron columns (x_um, y_um, area_um2) from each
well's calibration, and livedead.json records per well which channels were read as Hoechst and Draq7 and what chose
them (options.channels said null whether names, colours or position had decided)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from _livedead_helpers import channel_predictor
from devolens.cli import main
from devolens.predict import livedead
from devolens.render.wells import simulate_well

UM = 0.65  # micrometres per pixel of the calibrated wells


@pytest.fixture(scope="module")
def well() -> np.ndarray:
    """A small simulated well, (2, H, W) uint16, Hoechst first."""
    return simulate_well(5, (128, 160), density=800, dead_fraction=0.3).image


@pytest.fixture(autouse=True)
def channel_model(monkeypatch):
    """Every load gives the network that calls live and dead from the channels (objects wherever nuclei are)."""
    monkeypatch.setattr(livedead.LiveDeadPredictor, "load", classmethod(lambda cls, *a, **k: channel_predictor()))


def _save(path, image, *, calibrated=False, names=None):
    metadata = {"axes": "CYX", **({"unit": "um"} if calibrated else {}), **({"Labels": names} if names else {})}
    tifffile.imwrite(path, image, imagej=True, metadata=metadata, photometric="minisblack",
                     **({"resolution": (1 / UM, 1 / UM)} if calibrated else {}))
    return path


def _segment(src, out):
    assert main(["-q", "segment", "livedead", str(src), "--out", str(out), "--no-overlay"]) == 0
    return pd.read_csv(out / "objects.csv"), json.loads((out / "livedead.json").read_text())


def test_a_calibrated_well_gets_micron_columns(tmp_path, well):
    table, _ = _segment(_save(tmp_path / "cal.tif", well, calibrated=True), tmp_path / "o")
    assert list(table.columns) == ["well", "id", "x", "y", "area", "class", "x_um", "y_um", "area_um2"]
    assert len(table) > 5
    # from the table's x, y (2 decimals) at the well's pixel size, to 3 decimals as segment nuclei writes them
    assert np.allclose(table["x_um"], table["x"] * UM, atol=1.5e-3)
    assert np.allclose(table["y_um"], table["y"] * UM, atol=1.5e-3)
    assert np.allclose(table["area_um2"], table["area"] * UM * UM, atol=1.5e-3)


def test_an_uncalibrated_well_keeps_its_pixel_columns_alone(tmp_path, well):
    """As segment nuclei's table: the micron columns where a pixel size is known (a plate's wells: any of them)."""
    table, _ = _segment(_save(tmp_path / "plain.tif", well), tmp_path / "o")
    assert list(table.columns) == ["well", "id", "x", "y", "area", "class"] and len(table) > 5


def test_a_plate_of_mixed_calibrations_converts_each_well_by_its_own(tmp_path, well):
    plate = tmp_path / "plate"
    plate.mkdir()
    _save(plate / "A1.tif", well)
    _save(plate / "A2.tif", well, calibrated=True)
    table, record = _segment(plate, tmp_path / "o")
    a1, a2 = table[table["well"] == "A1"], table[table["well"] == "A2"]
    assert len(a1) > 5 and len(a2) == len(a1)
    assert a1[["x_um", "y_um", "area_um2"]].isna().all().all()
    assert np.allclose(a2["area_um2"], a2["area"] * UM * UM, atol=1.5e-3)
    assert [w["labels_pixel_size"] is not None for w in record["wells"]] == [False, True]


def test_a_well_without_objects_keeps_the_header(tmp_path):
    table, _ = _segment(_save(tmp_path / "empty.tif", np.zeros((2, 64, 64), np.uint16), calibrated=True),
                        tmp_path / "o")
    assert table.empty and list(table.columns)[-3:] == ["x_um", "y_um", "area_um2"]


def test_the_record_says_which_channels_were_read_and_why(tmp_path, well):
    _, record = _segment(_save(tmp_path / "plain.tif", well), tmp_path / "p")
    assert record["options"]["channels"] is None
    assert record["wells"][0]["channels_read"] == {"hoechst": 0, "draq7": 1, "by": "position"}
    # Draq7 saved first, and its channel names say so
    _, record = _segment(_save(tmp_path / "named.tif", well[[1, 0]], names=["DRAQ7", "Hoechst"]), tmp_path / "n")
    assert record["options"]["channels"] is None
    assert record["wells"][0]["channels_read"] == {"hoechst": 1, "draq7": 0, "by": "names"}
    assert main(["-q", "segment", "livedead", str(tmp_path / "plain.tif"), "--out", str(tmp_path / "g"),
                 "--no-overlay", "--channels", "1,0"]) == 0
    got = json.loads((tmp_path / "g" / "livedead.json").read_text())["wells"][0]["channels_read"]
    assert got == {"hoechst": 1, "draq7": 0, "by": "--channels"}


def test_a_colour_well_is_recorded_as_read_by_its_colours(tmp_path, well):
    from devolens.io.images import write_png

    rgb = np.zeros((*well.shape[1:], 3), np.uint8)
    rgb[..., 2] = np.clip(well[0] // 16, 0, 255)  # Hoechst blue
    rgb[..., 0] = np.clip(well[1] // 16, 0, 255)  # Draq7 red
    write_png(rgb, tmp_path / "w.png")
    _, record = _segment(tmp_path / "w.png", tmp_path / "o")
    assert record["wells"][0]["channels_read"] == {"hoechst": 2, "draq7": 0, "by": "colours"}


def test_channels_read_of_a_plate_well_by_names(tmp_path, well):
    plate = tmp_path / "plate"
    plate.mkdir()
    _save(plate / "A1.tif", well)
    _save(plate / "A2.tif", well[[1, 0]], names=["DRAQ7", "Hoechst"])
    _, record = _segment(plate, tmp_path / "o")
    assert [w["channels_read"] for w in record["wells"]] == [{"hoechst": 0, "draq7": 1, "by": "position"},
                                                              {"hoechst": 1, "draq7": 0, "by": "names"}]
