"""Session 31: small record mends (segment.json's magnification estimate names the frames that decided it;
identify's per-embryo z-scale through the records' number rule)."""
import json

import numpy as np
import pytest
import pandas as pd

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.predict.sizing import DiameterEstimate
from test_s30_diameter_um import _imagej, _segment, sized_zoo  # noqa: F401  (fixture)


def test_the_estimate_record_names_which_frames_decided():
    from devolens.cli.predict import _sizing_record

    est = DiameterEstimate(diameter=40.8, magnification=1.2, per_image=[0.7, 1.1, 1.2, 1.3], trusted=3,
                           resize=0.87, frames=[0, 4, 5, 6], used=[False, True, True, True], spread=(1.1, 1.3))
    record = _sizing_record("auto", est, frames=[f"t{i}" for i in range(8)])
    assert record["decided"] == [False, True, True, True] and record["frames"] == ["t0", "t4", "t5", "t6"]
    json.dumps(record)
    unknown = DiameterEstimate(diameter=None, magnification=1.0, per_image=[1.0])
    assert _sizing_record("auto", unknown)["decided"] is None
    each = _sizing_record("each", estimates=[est], frames=["a"])
    assert "decided" not in each["per_image"][0]  # one image each: it decided its own


def test_identify_records_non_finite_zscales_as_null():
    from devolens.cli.identify import _zscale_record

    result = pd.DataFrame()
    result.attrs["frame_zscale"] = {"e1": np.float32(2.4000001), "e2": float("nan")}
    record = _zscale_record(None, pd.DataFrame(), result)
    assert record == {"by": "estimated", "per_embryo": {"e1": 2.4, "e2": None}}
    json.dumps(record, allow_nan=False)


def test_positions_in_other_length_spellings_and_z_in_another_unit(tmp_path):
    """A units row or column name in any metric spelling (micrometer, nm) is read by the pixel sizes' unit table;
    z in another length than x and y is converted (z scale), not read as planes."""
    from devolens.io.tables import read_positions

    words = tmp_path / "micrometer.csv"
    words.write_text("frame,x (micrometer),y (micrometer),z (micrometer)\n0,1.5,2.5,3.5\n")
    assert read_positions(words).attrs["zscale"] == 1.0
    nm = tmp_path / "nm.csv"
    nm.write_text("POSITION_X,POSITION_Y,POSITION_Z,FRAME\nX,Y,Z,Frame\nX,Y,Z,Frame\n(µm),(µm),(nm),\n"
                  "1,2,3000,0\n4,5,6000,0\n")
    df = read_positions(nm)
    assert df.attrs["zscale"] == pytest.approx(1e-3) and "z in nm" in df.attrs["notes"][0]
    mixed = tmp_path / "mixed.csv"  # x and y in pixels, z in µm: still planes, with the note
    mixed.write_text("t,x,y,z (µm)\n0,15,25,3.5\n")
    assert read_positions(mixed).attrs["zscale"] is None


def test_label_images_carry_the_pixel_size_the_run_used(sized_zoo, tmp_path):
    """--pixel-size over a TIFF's own calibration (and for a PNG, which records none): the label images are
    calibrated as the run measured, so Fiji's measurements agree with segment.json."""
    from devolens.io.images import write_png
    from devolens.io.stacks import pixel_size

    src = _imagej(tmp_path / "a.tif", 0.1)
    assert _segment(src, tmp_path / "cal", "--diameter", "20") == 0
    assert pixel_size(tmp_path / "cal" / "labels" / "a_labels.tif")[:2] == pytest.approx((0.1, 0.1), rel=1e-4)
    assert _segment(src, tmp_path / "um", "--diameter", "5um", "--pixel-size", "0.2") == 0
    got = pixel_size(tmp_path / "um" / "labels" / "a_labels.tif")
    assert got[:2] == pytest.approx((0.2, 0.2), rel=1e-4) and got[2] == "µm"
    png = tmp_path / "b.png"
    write_png(np.asarray(np.random.default_rng(0).integers(0, 255, (48, 70)), np.uint8), png)
    assert _segment(png, tmp_path / "png", "--diameter", "5um", "--pixel-size", "0.25") == 0
    assert pixel_size(tmp_path / "png" / "labels" / "b_labels.tif")[:2] == pytest.approx((0.25, 0.25), rel=1e-4)
