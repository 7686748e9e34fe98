"""Session 36 (M9): segment.json records the calibration the label images carry (``labels_pixel_size``: value, unit,
where it came from), not only when ``--diameter`` is given in µm: a TIFF's own ImageJ / OME calibration was written
into the label TIFFs with ``options.pixel_size`` null and nothing in the record saying so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tifffile

from _cli_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.io.stacks import pixel_size


def _segment(src: Path, out: Path, *extra: str, kind: str = "nuclei") -> int:
    return main(["segment", kind, str(src), "--out", str(out), "--no-overlay", *extra])


def _record(out: Path) -> dict:
    return json.loads((out / "segment.json").read_text())


def _imagej(path: Path, size: float, unit: str = "um", seed: int = 1) -> Path:
    tifffile.imwrite(path, blob_frame(48, 70, seed=seed, rgb=False), imagej=True, resolution=(1 / size, 1 / size),
                     metadata={"unit": unit})
    return path


def _png(path: Path) -> Path:
    from devolens.io.images import write_png

    write_png(blob_frame(48, 70, seed=0, rgb=False), path)
    return path


def test_a_tiffs_own_calibration_is_recorded_without_a_micron_diameter(tiny_zoo, tmp_path):
    src = _imagej(tmp_path / "a.tif", 0.2)
    assert _segment(src, tmp_path / "o") == 0
    record = _record(tmp_path / "o")
    assert record["options"]["pixel_size"] is None  # the option as given: not given
    (label,) = (tmp_path / "o" / "labels").glob("*_labels.tif")
    assert pixel_size(label) == pytest.approx((0.2, 0.2, "µm"))  # what the labels carry ...
    assert record["labels_pixel_size"] == [  # ... is what the record says
        {"x": 0.2, "y": 0.2, "unit": "µm", "from": "calibration", "file": "a.tif", "first_frame": "a", "frames": 1}]


def test_ome_calibration_and_other_units(tiny_zoo, tmp_path):
    ome = tmp_path / "b.ome.tif"
    tifffile.imwrite(ome, blob_frame(48, 70, seed=2, rgb=False), ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.4})
    assert _segment(ome, tmp_path / "ome") == 0
    (got,) = _record(tmp_path / "ome")["labels_pixel_size"]
    assert (got["x"], got["y"], got["unit"], got["from"]) == (0.3, 0.4, "µm", "calibration")
    nm = _imagej(tmp_path / "c.tif", 200.0, unit="nm")
    assert _segment(nm, tmp_path / "nm") == 0
    (got,) = _record(tmp_path / "nm")["labels_pixel_size"]
    assert (got["x"], got["unit"]) == (200.0, "nm")  # as the file (and so the labels) write it


def test_pixel_size_option_is_recorded_as_its_origin(tiny_zoo, tmp_path):
    """--pixel-size over a TIFF's own (the labels carry the option's) and for a PNG, which carries none itself."""
    src = _imagej(tmp_path / "a.tif", 0.2)
    png = _png(tmp_path / "p.png")
    for name, path in (("tif", src), ("png", png)):
        assert _segment(path, tmp_path / name, "--pixel-size", "0.25") == 0
        assert _record(tmp_path / name)["labels_pixel_size"] == [
            {"x": 0.25, "y": 0.25, "unit": "µm", "from": "--pixel-size", "file": None,
             "first_frame": path.stem, "frames": 1}]
    assert _segment(png, tmp_path / "plain") == 0
    assert _record(tmp_path / "plain")["labels_pixel_size"] is None  # no label image carries one


def test_a_folder_of_several_calibrations(tiny_zoo, tmp_path):
    """Each file's label image carries its own: one entry per size, in order, counting its frames."""
    folder = tmp_path / "in"
    folder.mkdir()
    _imagej(folder / "f1.tif", 0.2, seed=1)
    _imagej(folder / "f2.tif", 0.5, seed=2)
    _imagej(folder / "f3.tif", 0.2, seed=3)
    _png(folder / "f4.png")
    assert _segment(folder, tmp_path / "o") == 0
    got = _record(tmp_path / "o")["labels_pixel_size"]
    assert [(e["x"], e["file"], e["first_frame"], e["frames"]) for e in got] == [
        (0.2, "f1.tif", "f1", 2), (0.5, "f2.tif", "f2", 1)]
    assert {e["from"] for e in got} == {"calibration"}
