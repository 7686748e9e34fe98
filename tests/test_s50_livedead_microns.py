"""The library's LiveDeadPredictor.predict_file writes objects.csv's micron columns (x_um, y_um, area_um2) where the
pixel size is known, given or the file's own, as `segment livedead` does; it wrote pixel columns alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from _livedead_helpers import channel_predictor
from devolens.cli import main
from devolens.io.microns import MICRON_COLUMNS
from devolens.predict import livedead
from devolens.render.wells import simulate_well

UM = 0.65


@pytest.fixture(scope="module")
def well() -> np.ndarray:
    return simulate_well(5, (128, 160), density=800, dead_fraction=0.3).image


def _save(path, image, calibrated):
    tifffile.imwrite(path, image, imagej=True, photometric="minisblack",
                     metadata={"axes": "CYX", **({"unit": "um"} if calibrated else {})},
                     **({"resolution": (1 / UM, 1 / UM)} if calibrated else {}))
    return path


@pytest.mark.parametrize("calibrated, given, um", [(False, 0.5, 0.5), (True, None, UM), (True, 0.5, 0.5)])
def test_the_library_writes_the_commands_micron_columns(tmp_path, well, monkeypatch, calibrated, given, um):
    src = _save(tmp_path / "w.tif", well, calibrated)
    channel_predictor().predict_file(src, tmp_path / "lib", pixel_size=given, well="w")
    lib = pd.read_csv(tmp_path / "lib" / "objects.csv")
    assert list(lib.columns) == ["well", "id", "x", "y", "area", "class", *MICRON_COLUMNS] and len(lib) > 5
    assert np.allclose(lib["x_um"], lib["x"] * um, atol=1.5e-3)
    assert np.allclose(lib["area_um2"], lib["area"] * um * um, atol=1.5e-3)
    monkeypatch.setattr(livedead.LiveDeadPredictor, "load", classmethod(lambda cls, *a, **k: channel_predictor()))
    extra = [] if given is None else ["--pixel-size", str(given)]
    assert main(["segment", "livedead", str(src), "--out", str(tmp_path / "cli"), "--no-overlay", *extra]) == 0
    pd.testing.assert_frame_equal(lib, pd.read_csv(tmp_path / "cli" / "objects.csv"))  # the same table


def test_a_well_of_no_known_pixel_size_keeps_its_pixel_columns_alone(tmp_path, well):
    channel_predictor().predict_file(_save(tmp_path / "w.tif", well, False), tmp_path / "lib")
    assert list(pd.read_csv(tmp_path / "lib" / "objects.csv").columns) == ["id", "x", "y", "area", "class"]
