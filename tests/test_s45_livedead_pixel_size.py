"""Session 45: `segment livedead --pixel-size UM`, as `segment nuclei --pixel-size`: micrometres per pixel of every
well (one image or a plate's), over a file's own calibration (a note where they differ, or where it is coarse);
labels.tif carries it, objects.csv gets its micron columns, and livedead.json says where the size came from
(`labels_pixel_size.from`: `--pixel-size`, as segment.json's `labels_pixel_size` says it; `options.pixel_size`).
Without it an uncalibrated well (a PNG, a TIFF whose software dropped the tags) had no µm columns at all."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from _livedead_helpers import channel_predictor
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io.stacks import pixel_size
from devolens.predict import livedead
from devolens.render.wells import simulate_well

UM = 0.65  # micrometres per pixel of the calibrated wells
GIVEN = 0.5  # --pixel-size of these tests
MICRONS = ["x_um", "y_um", "area_um2"]


@pytest.fixture(scope="module")
def well() -> np.ndarray:
    """A small simulated well, (2, H, W) uint16, Hoechst first."""
    return simulate_well(5, (128, 160), density=800, dead_fraction=0.3).image


@pytest.fixture(autouse=True)
def channel_model(monkeypatch):
    """Every load gives the network that calls live and dead from the channels (objects wherever nuclei are)."""
    loads = []

    def load(cls, *a, **k):
        loads.append(a)
        return channel_predictor()

    monkeypatch.setattr(livedead.LiveDeadPredictor, "load", classmethod(load))
    return loads


def _save(path, image, *, calibrated=False):
    metadata = {"axes": "CYX", **({"unit": "um"} if calibrated else {})}
    tifffile.imwrite(path, image, imagej=True, metadata=metadata, photometric="minisblack",
                     **({"resolution": (1 / UM, 1 / UM)} if calibrated else {}))
    return path


def _segment(src, out, *extra):
    assert main(["segment", "livedead", str(src), "--out", str(out), "--no-overlay", *extra]) == 0
    return pd.read_csv(out / "objects.csv"), json.loads((out / "livedead.json").read_text())


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())  # (the console wraps long lines)


def _at(rows: pd.DataFrame, um: float) -> None:
    """The rows' micron columns are their pixels at ``um`` µm per pixel (3 decimals, from x, y to 2)."""
    assert np.allclose(rows["x_um"], rows["x"] * um, atol=1.5e-3)
    assert np.allclose(rows["y_um"], rows["y"] * um, atol=1.5e-3)
    assert np.allclose(rows["area_um2"], rows["area"] * um * um, atol=1.5e-3)


GIVEN_RECORD = {"x": GIVEN, "y": GIVEN, "unit": "µm", "from": "--pixel-size"}


def test_an_uncalibrated_tiff_well_gets_micron_columns_at_the_given_size(tmp_path, well, capsys):
    table, record = _segment(_save(tmp_path / "plain.tif", well), tmp_path / "o", "--pixel-size", str(GIVEN))
    assert list(table.columns) == ["well", "id", "x", "y", "area", "class", *MICRONS] and len(table) > 5
    _at(table, GIVEN)
    # the labels carry it, as segment nuclei's label images carry its --pixel-size
    x, y, unit = pixel_size(tmp_path / "o" / "labels.tif")
    assert unit == "µm" and x == pytest.approx(GIVEN) and y == pytest.approx(GIVEN)
    assert record["wells"][0]["labels_pixel_size"] == GIVEN_RECORD
    assert record["options"]["pixel_size"] == GIVEN
    assert "--pixel-size" not in _err(capsys)  # (no file's own calibration to differ from: no note)


def test_a_png_well_gets_micron_columns(tmp_path, well):
    from devolens.io.images import write_png

    rgb = np.zeros((*well.shape[1:], 3), np.uint8)  # Hoechst blue, Draq7 red, as a colour well is read
    rgb[..., 2] = np.clip(well[0] // 16, 0, 255)
    rgb[..., 0] = np.clip(well[1] // 16, 0, 255)
    write_png(rgb, tmp_path / "w.png")
    table, record = _segment(tmp_path / "w.png", tmp_path / "o", "--pixel-size", str(GIVEN))
    assert list(table.columns)[-3:] == MICRONS and len(table) > 5
    _at(table, GIVEN)
    assert record["wells"][0]["labels_pixel_size"]["from"] == "--pixel-size"


def test_a_plate_takes_the_size_for_every_well_over_their_own(tmp_path, well, capsys):
    plate = tmp_path / "plate"
    plate.mkdir()
    _save(plate / "A1.tif", well)
    _save(plate / "A2.tif", well, calibrated=True)
    table, record = _segment(plate, tmp_path / "o", "--pixel-size", str(GIVEN))
    for name in ("A1", "A2"):
        rows = table[table["well"] == name]
        assert len(rows) > 5 and rows[MICRONS].notna().all().all()
        _at(rows, GIVEN)  # A2 too: the given size over its own 0.65
        assert pixel_size(tmp_path / "o" / "labels" / f"{name}_labels.tif")[0] == pytest.approx(GIVEN)
    assert [w["labels_pixel_size"] for w in record["wells"]] == [GIVEN_RECORD, GIVEN_RECORD]
    # segment nuclei's note on a given size over a file's own, different calibration: printed and recorded
    said = "--pixel-size 0.5 µm was used for the label images over A2.tif's own calibration (0.65 µm per pixel)"
    assert said in _err(capsys)
    assert said in record["notes"]


def test_a_size_that_agrees_with_the_files_own_gets_no_note(tmp_path, well, capsys):
    table, record = _segment(_save(tmp_path / "cal.tif", well, calibrated=True), tmp_path / "o",
                             "--pixel-size", str(UM))
    _at(table, UM)
    assert "--pixel-size" not in _err(capsys) and not any("--pixel-size" in n for n in record["notes"])
    assert record["wells"][0]["labels_pixel_size"]["from"] == "--pixel-size"


def test_without_the_option_the_record_says_calibration(tmp_path, well):
    _, record = _segment(_save(tmp_path / "cal.tif", well, calibrated=True), tmp_path / "o")
    assert record["wells"][0]["labels_pixel_size"]["from"] == "calibration"
    assert record["options"]["pixel_size"] is None


def test_a_coarse_size_gets_segments_note(tmp_path, well, capsys):
    _, record = _segment(_save(tmp_path / "plain.tif", well), tmp_path / "o", "--pixel-size", "85")
    said = "--pixel-size 85 is coarse for a microscope image (85 µm per pixel: the option takes micrometres per pixel)"
    assert said in _err(capsys) and said in record["notes"]


@pytest.mark.parametrize("value", ["0", "-0.5", "nan", "inf"])
def test_a_size_that_is_no_positive_number_is_refused_before_anything(tmp_path, well, capsys, channel_model, value):
    src = _save(tmp_path / "plain.tif", well)
    assert main(["segment", "livedead", str(src), "--out", str(tmp_path / "o"), f"--pixel-size={value}"]) == 2
    err = _err(capsys)
    assert "--pixel-size must be a positive number of micrometres per pixel" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() and not channel_model  # nothing written, no model loaded


def test_the_help_names_the_option():
    from typer.testing import CliRunner

    from devolens.cli import app

    got = CliRunner().invoke(app, ["segment", "livedead", "--help"], terminal_width=200)
    assert got.exit_code == 0 and "--pixel-size" in got.output


@pytest.mark.filterwarnings("ignore::UserWarning")  # (the channel network's calls on this well: not the point)
def test_the_library_call_takes_it(tmp_path, well):
    src = _save(tmp_path / "plain.tif", well)
    livedead.segment_livedead_file(src, tmp_path / "o", pixel_size=GIVEN)
    assert pixel_size(tmp_path / "o" / "labels.tif")[0] == pytest.approx(GIVEN)
    with pytest.raises(DevolensError, match="pixel_size must be a positive number"):
        livedead.segment_livedead_file(src, tmp_path / "p", pixel_size=-1)
    assert not (tmp_path / "p").exists()
