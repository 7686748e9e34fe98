"""--diameter in micrometres (``7um``, ``7 µm``): converted to the input's pixels with its TIFF calibration (ImageJ or
OME) or ``--pixel-size``; refused, before any output, where the pixel size is unknown or not a length; recorded as
given and as used. The library (``load(..., diameter="7um")``) has no file to read a pixel size from: refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from _cli_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError

REFERENCE = 24.0  # the tiny nuclei card's reference diameter (pixels) in these tests: 3-1200 px accepted


@pytest.fixture
def sized_zoo(tiny_zoo):  # noqa: F811  (the fixture's name)
    """The tiny zoo, its nuclei card given a reference diameter (a --diameter in pixels needs one)."""
    from devolens.models import zoo

    path = zoo.ZOO_DIR / "nuclei" / "card.json"
    card = json.loads(path.read_text())
    card["input"]["diameter"] = {"reference": REFERENCE}
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    return tiny_zoo


def _frame(seed: int = 0) -> np.ndarray:
    return blob_frame(48, 70, seed=seed, rgb=False)


def _imagej(path: Path, x: float, unit: str = "um", y: float | None = None, seed: int = 0) -> Path:
    """An ImageJ TIFF of ``x`` (and ``y``) ``unit`` per pixel."""
    tifffile.imwrite(path, _frame(seed), imagej=True, resolution=(1 / x, 1 / (y or x)), metadata={"unit": unit})
    return path


def _segment(src: Path, out: Path, *extra: str) -> int:
    return main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay", *extra])


def _labels(out: Path) -> np.ndarray:
    files = sorted((out / "labels").glob("*_labels.tif"))
    assert files
    return np.stack([tifffile.imread(f) for f in files])


def _record(out: Path) -> dict:
    return json.loads((out / "segment.json").read_text())


def _same(got: Path, want: Path, scale: float) -> None:
    """Two runs segmented alike: the same labels, at the same working scale (the tiny random model's labels hardly
    depend on the resize: the scale, the card's 0.5 x 24 / diameter, is what shows the diameter used)."""
    np.testing.assert_array_equal(_labels(got), _labels(want))
    assert _record(got)["working_scale"] == _record(want)["working_scale"] == pytest.approx(scale)


def test_imagej_calibration_converts_microns(sized_zoo, tmp_path, capsys):
    """7 µm at 0.2 µm per pixel segments as --diameter 35 does; the summary line and segment.json say both."""
    src = _imagej(tmp_path / "a.tif", 0.2)
    assert _segment(src, tmp_path / "px", "--diameter", "35") == 0
    capsys.readouterr()
    assert _segment(src, tmp_path / "um", "--diameter", "7um") == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "diameter 7 µm = 35 px at 0.2 µm per pixel)" in err
    _same(tmp_path / "um", tmp_path / "px", 0.5 * REFERENCE / 35)
    options = _record(tmp_path / "um")["options"]
    assert options["diameter"] == 35.0
    assert options["diameter_um"] == {"given": "7um", "micrometres": 7.0, "um_per_pixel": 0.2,
                                      "pixel_size_from": "calibration", "pixels": 35.0}
    assert (_record(tmp_path / "um")["magnification_estimate"] == _record(tmp_path / "px")["magnification_estimate"]
            and _record(tmp_path / "px")["magnification_estimate"]["diameter"] == 35.0)
    assert "diameter_um" not in _record(tmp_path / "px")["options"]  # a diameter in pixels is recorded as before


def test_ome_calibration_and_spellings(sized_zoo, tmp_path):
    """An OME-TIFF's PhysicalSizeX/Y; µm, μm (Greek mu), UM and a space all read as micrometres."""
    src = tmp_path / "a.ome.tif"
    tifffile.imwrite(src, _frame(), ome=True, metadata={"axes": "YX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2})
    assert _segment(src, tmp_path / "px", "--diameter", "35") == 0
    assert _segment(src, tmp_path / "um", "--diameter", "7 µm") == 0
    _same(tmp_path / "um", tmp_path / "px", 0.5 * REFERENCE / 35)
    from devolens.cli.predict import _diameter_option

    for text in ("7um", "7UM", "7 \u00b5m", "7\u03bcm", " 7.0 Um "):
        diameter, how = _diameter_option(text, "nuclei", src)
        assert diameter == 35.0 and how["pixels"] == 35.0 and how["given"] == text.strip()


def test_existing_forms_unchanged(sized_zoo, tmp_path):
    from devolens.cli.predict import _diameter, _diameter_option

    src = _imagej(tmp_path / "a.tif", 0.2)
    for text in (None, "35", "35.5", "auto", "each", "none", "off", "AUTO"):
        assert _diameter_option(text, "nuclei", src) == (_diameter(text, "nuclei"), None)
    for bad in ("7 px", "-7um", "um", "7 nm", "7 micronss"):
        with pytest.raises(DevolensError, match="--diameter must be"):
            _diameter_option(bad, "nuclei", src)


def test_pixel_size_option_overrides(sized_zoo, tmp_path, capsys):
    """--pixel-size over the file's calibration; a PNG (no calibration) takes it too."""
    src = _imagej(tmp_path / "a.tif", 0.2)
    assert _segment(src, tmp_path / "px", "--diameter", "20") == 0
    capsys.readouterr()
    assert _segment(src, tmp_path / "um", "--diameter", "7um", "--pixel-size", "0.35") == 0
    assert "diameter 7 µm = 20 px at 0.35 µm per pixel (--pixel-size)" in " ".join(capsys.readouterr().err.split())
    _same(tmp_path / "um", tmp_path / "px", 0.5 * REFERENCE / 20)
    assert _record(tmp_path / "um")["options"]["diameter_um"]["pixel_size_from"] == "--pixel-size"
    from devolens.io.images import write_png

    png = tmp_path / "b.png"
    write_png(_frame(), png)
    assert _segment(png, tmp_path / "png_px", "--diameter", "35") == 0
    assert _segment(png, tmp_path / "png_um", "--diameter", "7um", "--pixel-size", "0.2") == 0
    _same(tmp_path / "png_um", tmp_path / "png_px", 0.5 * REFERENCE / 35)


def test_unknown_pixel_size_refused_before_output(sized_zoo, tmp_path, capsys):
    """A PNG, an uncalibrated TIFF, a video: no pixel size; refused in one line, nothing written."""
    from devolens.io.images import write_png
    from devolens.io.video import write_video

    png = tmp_path / "b.png"
    write_png(_frame(), png)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, _frame())
    video = tmp_path / "m.mp4"
    write_video((blob_frame(64, 96, seed=i) for i in range(3)), video, fps=5)
    for src in (png, plain, video):
        out = tmp_path / f"o_{src.stem}"
        assert _segment(src, out, "--diameter", "7um") == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        words = " ".join(err.split())
        assert src.name in words and "--pixel-size 0.1" in words and "diameter in pixels" in words, words
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_units_converted_or_refused(sized_zoo, tmp_path, capsys):
    """nm and mm are converted to µm; ImageJ's 'pixel' and 'inch' are no microscope's calibration: refused, named."""
    from devolens.cli.predict import _diameter_option

    assert _diameter_option("7um", "nuclei", _imagej(tmp_path / "nm.tif", 200.0, "nm"))[0] == 35.0
    assert _diameter_option("7um", "nuclei", _imagej(tmp_path / "mm.tif", 0.0002, "mm"))[0] == 35.0
    src = _imagej(tmp_path / "nm2.tif", 200.0, "nm")
    assert _segment(src, tmp_path / "nm", "--diameter", "7um") == 0
    assert _record(tmp_path / "nm")["options"]["diameter_um"]["um_per_pixel"] == 0.2
    assert _record(tmp_path / "nm")["working_scale"] == pytest.approx(0.5 * REFERENCE / 35)
    for unit, size in (("inch", 0.2), ("pixel", 0.5)):
        src = _imagej(tmp_path / f"{unit}.tif", size, unit)
        out = tmp_path / f"o_{unit}"
        assert _segment(src, out, "--diameter", "7um") == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"calibration is in '{unit}'" in err and "--pixel-size" in err and not out.exists()
        assert _segment(src, out, "--diameter", "7um", "--pixel-size", "0.2") == 0  # the option over it


def test_pixel_size_alone_is_carried_by_segment(sized_zoo, tmp_path, capsys):
    """segment takes --pixel-size without a diameter in micrometres (its labels carry it; population refuses it
    alone: tests/test_s35_options.py); a bad value is still refused."""
    src = _imagej(tmp_path / "a.tif", 0.2)
    for extra in ([], ["--diameter", "35"]):  # (this zoo has no size model for --diameter auto)
        out = tmp_path / f"o{len(extra)}"
        assert _segment(src, out, "--pixel-size", "0.2", *extra) == 0, capsys.readouterr().err
        assert (out / "segment.json").exists()
    assert _segment(src, tmp_path / "z", "--diameter", "7um", "--pixel-size", "0") == 2
    assert "--pixel-size must be a positive number" in capsys.readouterr().err


def test_out_of_range_said_in_microns(sized_zoo, tmp_path, capsys):
    src = _imagej(tmp_path / "a.tif", 0.2)
    assert _segment(src, tmp_path / "o", "--diameter", "0.4um") == 2  # 2 px: below 24 / 8
    err = " ".join(capsys.readouterr().err.split())
    assert "--diameter 0.4um (2 px at 0.2 µm per pixel): the images would be enlarged" in err
    assert "give a diameter of 0.6-240 µm (3-1200 px at 0.2 µm per pixel)" in err  # the range in µm too
    assert not (tmp_path / "o").exists()


def test_pixels_not_square_use_the_mean(sized_zoo, tmp_path, capsys):
    src = _imagej(tmp_path / "a.tif", 0.2, y=0.21)
    assert _segment(src, tmp_path / "o", "--diameter", "7um") == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "a.tif: the pixels are not square (0.2 x 0.21 µm): --diameter 7um was converted with their mean" in err
    record = _record(tmp_path / "o")
    assert record["options"]["diameter_um"]["um_per_pixel"] == 0.205
    assert record["options"]["diameter"] == pytest.approx(7 / 0.205, rel=1e-5)
    assert any("not square" in n for n in record["notes"])
    src = _imagej(tmp_path / "b.tif", 0.2, y=0.201)  # within 1 %: no note
    assert _segment(src, tmp_path / "o2", "--diameter", "7um") == 0
    assert "not square" not in capsys.readouterr().err


def test_folder_of_tiffs(sized_zoo, tmp_path, capsys):
    """A folder's TIFFs each give their own calibration: one size, converted; several sizes, or a file without
    one, refused (one µm diameter would be a different number of pixels in each)."""
    same = tmp_path / "same"
    same.mkdir()
    for i in range(2):
        _imagej(same / f"t{i}.tif", 0.2, seed=i)
    assert _segment(same, tmp_path / "o", "--diameter", "7um") == 0
    assert _record(tmp_path / "o")["options"]["diameter"] == 35.0
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _imagej(mixed / "t0.tif", 0.2)
    _imagej(mixed / "t1.tif", 0.4, seed=1)
    assert _segment(mixed, tmp_path / "o2", "--diameter", "7um") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "different pixel sizes (t0.tif 0.2 µm, t1.tif 0.4 µm)" in err and not (tmp_path / "o2").exists()
    assert _segment(mixed, tmp_path / "o3", "--diameter", "7um", "--pixel-size", "0.2") == 0
    partly = tmp_path / "partly"
    partly.mkdir()
    _imagej(partly / "t0.tif", 0.2)
    tifffile.imwrite(partly / "t1.tif", _frame(1))
    assert _segment(partly, tmp_path / "o4", "--diameter", "7um") == 2
    assert "t1.tif" in capsys.readouterr().err and not (tmp_path / "o4").exists()


def test_population_um_diameter(sized_zoo, tmp_path, capsys):
    src = _imagej(tmp_path / "a.tif", 0.2)
    out = tmp_path / "pops.csv"
    assert main(["population", str(src), "--out", str(out), "--no-plot", "--diameter", "7um"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"-> {out} (diameter 7 µm = 35 px at 0.2 µm per pixel)" in err
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["options"]["diameter"] == 35.0 and record["options"]["diameter_um"]["given"] == "7um"
    assert record["magnification_estimate"]["diameter"] == 35.0
    from devolens.io.images import write_png

    png = tmp_path / "b.png"
    write_png(_frame(), png)
    out2 = tmp_path / "png.csv"
    assert main(["population", str(png), "--out", str(out2), "--diameter", "7um"]) == 2
    assert "--pixel-size" in capsys.readouterr().err
    assert not out2.exists() and not out2.with_suffix(".json").exists() and not out2.with_suffix(".png").exists()


def test_library_refuses_microns(sized_zoo):
    from devolens.models.zoo import load

    for name in ("nuclei", "population"):
        with pytest.raises(DevolensError, match=r"diameter '7um' is in micrometres.*give the diameter in pixels"):
            load(name, diameter="7um")


# ---------------------------------------------------------------------------- review mends
def _report(path: Path, names: list, flagged: set) -> Path:
    """A curation report of a folder's ``names`` (in order), those in ``flagged`` flagged (as edited by hand)."""
    import pandas as pd

    pd.DataFrame({"frame": range(len(names)), "file": names, "flagged": [n in flagged for n in names],
                  "flag": ["unreadable" if n in flagged else "" for n in names]}).to_csv(path, index=False)
    return path


def test_an_unreadable_tiff_is_left_to_its_reader(sized_zoo, tmp_path, capsys):
    """A truncated TIFF in a folder of calibrated ones was refused as 'a TIFF without a pixel size calibration', even
    with --skip-flagged leaving it out: its header cannot be read, so the others' calibration is used and its reader
    reports it (naming it, with how to skip it), or the curation report skips it."""
    src = tmp_path / "frames"
    src.mkdir()
    for i in range(3):
        _imagej(src / f"t{i}.tif", 0.2, seed=i)
    data = (src / "t1.tif").read_bytes()
    (src / "t1.tif").write_bytes(data[:300])  # cut short: its header cannot be read
    out = tmp_path / "o"
    assert _segment(src, out, "--diameter", "7um") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "t1.tif" in err and "--skip-flagged" in err and "calibration" not in err and not out.exists()
    for extra in (["--skip-flagged", "auto"], ["--skip-flagged", str(_report(tmp_path / "r.csv",
                                                                           ["t0.tif", "t1.tif", "t2.tif"],
                                                                           {"t1.tif"}))]):
        assert _segment(src, out, "--diameter", "7um", *extra) == 0, capsys.readouterr().err
        assert _record(out)["options"]["diameter"] == 35.0
        assert sorted(p.name for p in (out / "labels").iterdir()) == ["t0_labels.tif", "t2_labels.tif"]
    single = tmp_path / "cut.tif"
    single.write_bytes(data[:300])
    assert _segment(single, tmp_path / "o2", "--diameter", "7um") == 2  # nothing else: its reader's own words
    err = " ".join(capsys.readouterr().err.split())
    assert "cut.tif" in err and "truncated" in err and "calibration" not in err


def test_a_file_the_given_report_flags_needs_no_calibration(sized_zoo, tmp_path, capsys):
    """A snapshot without calibration that the curation report flags is never segmented: its calibration is not
    asked (a report given as a file is read before the µm diameter is converted)."""
    src = tmp_path / "frames"
    src.mkdir()
    _imagej(src / "t0.tif", 0.2)
    tifffile.imwrite(src / "t1.tif", _frame(1))  # no calibration
    _imagej(src / "t2.tif", 0.2, seed=2)
    assert _segment(src, tmp_path / "o", "--diameter", "7um") == 2
    assert "t1.tif" in capsys.readouterr().err
    report = _report(tmp_path / "r.csv", ["t0.tif", "t1.tif", "t2.tif"], {"t1.tif"})
    assert _segment(src, tmp_path / "o2", "--diameter", "7um", "--skip-flagged", str(report)) == 0
    assert _record(tmp_path / "o2")["options"]["diameter_um"]["um_per_pixel"] == 0.2


def test_each_file_read_once_for_the_diameter_and_the_labels(sized_zoo, tmp_path, monkeypatch):
    """The µm diameter's calibration and the label images' (which carry it) come from one reading of each file,
    the folder listed once for both (the conversion walked the folder a second time)."""
    from devolens.io import stacks

    src = tmp_path / "frames"
    src.mkdir()
    for i in range(3):
        _imagej(src / f"t{i}.tif", 0.2, seed=i)
    asked: list = []
    real = stacks.pixel_size
    monkeypatch.setattr(stacks, "pixel_size",
                        lambda path, *a, **k: asked.append(Path(path).name) or real(path, *a, **k))
    assert _segment(src, tmp_path / "o", "--diameter", "7um") == 0
    assert sorted(asked) == ["t0.tif", "t1.tif", "t2.tif"]
    assert all(stacks.pixel_size(p) == (0.2, 0.2, "µm") for p in (tmp_path / "o" / "labels").iterdir())


@pytest.mark.parametrize("how", ["micrometer", "millimeter", "imagej_cm"])
def test_resolution_units_are_calibrations(sized_zoo, tmp_path, how):
    """tifffile's ResolutionUnit MICROMETER and MILLIMETER (plain TIFFs) and an ImageJ TIFF without a unit but per
    centimetre (ImageJ reads it so) were taken for uncalibrated."""
    from devolens.cli.predict import _diameter_option
    from devolens.io.stacks import pixel_size

    src = tmp_path / f"{how}.tif"
    per = {"micrometer": 1 / 0.2, "millimeter": 1e3 / 0.2, "imagej_cm": 1e4 / 0.2}[how]
    unit = {"micrometer": "MICROMETER", "millimeter": "MILLIMETER", "imagej_cm": "CENTIMETER"}[how]
    tifffile.imwrite(src, _frame(), imagej=how == "imagej_cm", resolution=(per, per), resolutionunit=unit)
    assert pixel_size(src) == (0.2, 0.2, "µm")
    assert _diameter_option("7um", "nuclei", src)[0] == 35.0


def test_ome_x_and_y_in_two_units(sized_zoo, tmp_path):
    """PhysicalSizeX in nm and PhysicalSizeY in µm: both converted (was no calibration); a unit that is no length
    still gives none."""
    from devolens.cli.predict import _diameter_option
    from devolens.io.stacks import pixel_size

    src = tmp_path / "mixed.ome.tif"
    tifffile.imwrite(src, _frame(), ome=True, metadata={"PhysicalSizeX": 200, "PhysicalSizeXUnit": "nm",
                                                        "PhysicalSizeY": 0.2, "PhysicalSizeYUnit": "µm"})
    assert pixel_size(src) == (0.2, 0.2, "µm")
    assert _diameter_option("7um", "nuclei", src)[0] == 35.0
    spelled = tmp_path / "spelled.ome.tif"  # one unit spelled two ways: as it is
    tifffile.imwrite(spelled, _frame(), ome=True, metadata={"PhysicalSizeX": 0.2, "PhysicalSizeXUnit": "µm",
                                                            "PhysicalSizeY": 0.2, "PhysicalSizeYUnit": "\u03bcm"})
    assert pixel_size(spelled) == (0.2, 0.2, "µm")
    odd = tmp_path / "odd.ome.tif"
    tifffile.imwrite(odd, _frame(), ome=True, metadata={"PhysicalSizeX": 0.2, "PhysicalSizeXUnit": "µm",
                                                        "PhysicalSizeY": 1, "PhysicalSizeYUnit": "pixel"})
    assert pixel_size(odd) is None


def test_one_unit_table():
    """One table of lengths for the files, the CLI and the library's refusal: ``micron``/``microns`` are µm to all."""
    from devolens.cli import predict
    from devolens.io.stacks import microns_in, to_microns

    assert to_microns(200, "nm") == pytest.approx(0.2) and to_microns(0.2, "\u00b5m") == 0.2
    assert to_microns(2e-4, "mm") == pytest.approx(0.2) and to_microns(2000, "\u00c5") == pytest.approx(0.2)
    assert to_microns(1, "inch") is None and to_microns(1, "pixel") is None
    assert [microns_in(t) for t in ("7 micron", "7microns", "7 Micrometres", "7 \u03bcm", "7 nm", "35")] == [
        7.0, 7.0, 7.0, 7.0, None, None]
    assert not hasattr(predict, "_PER_MICRON")


def test_microns_spelled_out(sized_zoo, tmp_path):
    """``7 micron`` and ``7microns``, as the files' and tables' units say it, were refused as no diameter."""
    from devolens.cli.predict import _diameter_option
    from devolens.models.zoo import load

    src = _imagej(tmp_path / "a.tif", 0.2)
    for text in ("7 micron", "7microns", "7 micrometers"):
        assert _diameter_option(text, "nuclei", src)[0] == 35.0
    with pytest.raises(DevolensError, match="'7 microns' is in micrometres"):
        load("nuclei", diameter="7 microns")


def test_pixel_size_over_a_different_calibration_is_noted(sized_zoo, tmp_path, capsys):
    """--pixel-size over a file's own calibration more than 1 % away: a note with the summary (and in segment.json);
    none where they agree."""
    src = _imagej(tmp_path / "a.tif", 0.2)
    assert _segment(src, tmp_path / "o", "--diameter", "7um", "--pixel-size", "0.35") == 0
    err = " ".join(capsys.readouterr().err.split())
    note = "note: --pixel-size 0.35 µm was used over a.tif's own calibration (0.2 µm per pixel)"
    assert note in err and note[len("note: "):] in _record(tmp_path / "o")["notes"]
    assert _segment(src, tmp_path / "o2", "--diameter", "7um", "--pixel-size", "0.201") == 0
    assert "own calibration" not in capsys.readouterr().err
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(3):
        _imagej(folder / f"t{i}.tif", 0.2, seed=i)
    assert main(["population", str(folder), "--out", str(tmp_path / "p.csv"), "--no-plot", "--diameter", "7um",
                 "--pixel-size", "0.25"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "--pixel-size 0.25 µm was used over the files' own calibrations (t0.tif 0.2 µm per pixel, and 2 other " \
           "files)" in err


def test_a_coarse_pixel_size_is_noted(sized_zoo, tmp_path, capsys):
    """A pixel size past 10 µm (a scan's dots per inch read as a microscope's calibration?) is noted, with the
    summary or in the refusal it leads to; 1 µm (ImageJ's of an image never calibrated) is not."""
    src = _imagej(tmp_path / "a.tif", 12.0)
    assert _segment(src, tmp_path / "o", "--diameter", "300um") == 0  # 25 px
    err = " ".join(capsys.readouterr().err.split())
    assert "note: the input's calibration gives 12 µm per pixel, coarse for a microscope image" in err
    assert _segment(src, tmp_path / "o2", "--diameter", "7um") == 2  # 0.58 px: refused, saying why it may be
    err = " ".join(capsys.readouterr().err.split())
    assert "the images would be enlarged" in err and "coarse for a microscope image" in err
    assert _segment(_imagej(tmp_path / "b.tif", 1.0), tmp_path / "o3", "--diameter", "30um") == 0
    assert "coarse for a microscope" not in capsys.readouterr().err
    png = tmp_path / "c.png"
    from devolens.io.images import write_png

    write_png(_frame(), png)
    assert _segment(png, tmp_path / "o4", "--diameter", "300um", "--pixel-size", "12") == 0
    assert "note: --pixel-size 12 is coarse for a microscope image" in " ".join(capsys.readouterr().err.split())


def test_the_range_error_is_worded_from_what_is_passed(sized_zoo, monkeypatch):
    """The CLI names a µm diameter in check_diameter's error by passing its label, not by rewriting the error's
    opening words (a change of those words left the pixels' wording)."""
    from devolens.cli.predict import _diameter
    from devolens.predict import segment

    with pytest.raises(DevolensError) as caught:
        segment.check_diameter(2.0, REFERENCE, label="--diameter 0.4um (2 px at 0.2 µm per pixel)",
                               um_per_pixel=0.2)
    assert str(caught.value).startswith("--diameter 0.4um (2 px at 0.2 µm per pixel): the images would be")
    with pytest.raises(DevolensError, match=r"^--diameter 2 px: the images would be enlarged 12x.*3-1200 px \(the "):
        _diameter("2", "nuclei")  # a diameter in pixels: worded as before
