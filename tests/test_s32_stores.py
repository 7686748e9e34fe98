"""Session 32: an AuxInfo's absurd embryo ellipse refused (and a tidy sidecar's unusable one dropped with a note), a
tile store whose dataset links to a missing file named as such, and `tile make` warning of 8-bit data saved as
16-bit as `segment livedead` does."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from devolens.data.h5stream import H5TileStream
from devolens.data.tiling import STORE_FORMAT, open_store, tile_to_h5
from devolens.errors import DevolensError
from devolens.io.tables import read_epic_auxinfo, read_table, read_tidy, write_tidy
from devolens.predict.tiled import RowReader

from _lineage_builders import run_cli, write_cd

AUX_HEADER = "name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis\n"


# ----------------------------------------------------------------------------- AuxInfo ellipse
def _aux(tmp_path, xc="380", maj="598", min_="396", ang="48.4", blank: bool = False) -> Path:
    path = tmp_path / "eAuxInfo.csv"
    path.write_text(AUX_HEADER + ("\n" if blank else "")
                    + f"e,0.55,-24,{xc},384,{maj},{min_},{ang},39.5,4.86,89,5.7471,PDR\n")
    return path


@pytest.mark.parametrize("kw, match", [
    ({"maj": "1e300"}, r"column 'maj' holds an absurd value \(line 2: 1e\+300\): ellipse values beyond ±1,000,000"),
    ({"ang": "1e7"}, r"column 'ang' holds an absurd value \(line 2: 1e\+07\)"),
    ({"xc": "inf"}, r"column 'xc' is not a finite number \(line 2: inf\): ellipse values must be finite"),
    ({"xc": "-inf"}, r"column 'xc' is not a finite number \(line 2: -inf\)"),
    ({"min_": "-396"}, r"column 'min' holds an axis of -396 \(line 2\): the embryo ellipse's axes are lengths above 0"),
    ({"maj": "0"}, r"column 'maj' holds an axis of 0 \(line 2\)"),
])
def test_auxinfo_absurd_ellipse_dropped_naming_file_column_line(tmp_path, kw, match):
    """An absurd ellipse is not used (it drew every nucleus as a point), but the table is read: the ellipse is
    optional metadata, as zpixres (a damaged AuxInfo blocked every command on its CD table)."""
    import re

    aux = _aux(tmp_path, **kw)
    a = read_epic_auxinfo(aux)
    assert a["ellipse"] is None and len(a["notes"]) == 1
    assert a["notes"][0].startswith(str(aux)) and re.search(match, a["notes"][0]) and "\n" not in a["notes"][0]
    assert a["notes"][0].endswith("the embryo ellipse is taken as none")
    cd = write_cd(tmp_path / "CDe.csv", [("ABa", 1, 4.0, 100, 200, 60, -5)])
    df = read_table(cd)  # the CD table read with it: the note carried
    assert df.attrs["ellipse"] is None and any(re.search(match, n) for n in df.attrs["notes"])


def test_auxinfo_ellipse_line_counts_blank_lines(tmp_path):
    note = read_epic_auxinfo(_aux(tmp_path, maj="1e300", blank=True))["notes"][0]
    assert "column 'maj' holds an absurd value (line 3: 1e+300)" in note


@pytest.mark.parametrize("maj, ellipse", [("598", {"xc": 380.0, "yc": 384.0, "maj": 598.0, "min": 396.0,
                                                    "ang": 48.4}), ("", None)])
def test_auxinfo_sound_or_missing_ellipse_read_as_before(tmp_path, maj, ellipse):
    a = read_epic_auxinfo(_aux(tmp_path, maj=maj))
    assert a["ellipse"] == ellipse and a["notes"] == []


def test_convert_with_absurd_ellipse_keeps_no_ellipse(tmp_path, capsys):
    import json

    _aux(tmp_path, maj="1e300")
    cd = write_cd(tmp_path / "CDe.csv", [("ABa", 1, 4.0, 100, 200, 60, -5)])
    code, out, err = run_cli(["lineage", "convert", str(cd), "-o", str(tmp_path / "o.csv")], capsys)
    assert code == 0 and "eAuxInfo.csv: column 'maj' holds an absurd value (line 2: 1e+300)" in err
    assert "Traceback" not in err
    assert json.loads((tmp_path / "o.meta.json").read_text()).get("ellipse") is None  # 1e300 not copied


@pytest.mark.parametrize("bad", [{"xc": 380.0, "yc": 384.0, "maj": "x", "min": 396.0, "ang": 48.4},
                                 {"xc": 380.0, "yc": 384.0, "maj": 1e300, "min": 396.0, "ang": 48.4},
                                 {"xc": 380.0, "yc": 384.0, "maj": 598.0, "min": -1, "ang": 48.4},
                                 {"xc": 380.0}, [1, 2, 3]])
def test_tidy_sidecar_unusable_ellipse_dropped_with_a_note(tmp_path, bad):
    import json

    cd = write_cd(tmp_path / "CDe.csv", [("ABa", 1, 4.0, 100, 200, 60, -5)])
    _aux(tmp_path)
    out = write_tidy(read_table(cd), tmp_path / "o.csv")
    meta_path = tmp_path / "o.meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["ellipse"]["maj"] == 598.0
    meta["ellipse"] = bad
    meta_path.write_text(json.dumps(meta))
    df = read_tidy(out)
    assert df.attrs["ellipse"] is None and df.attrs["zscale"] == 5.7471
    assert any("the metadata sidecar o.meta.json gives ellipse" in n and "taken as none" in n
               for n in df.attrs["notes"])


# ----------------------------------------------------------------------------- tile store links
def _store(path: Path, link: str | None = None, target=None) -> Path:
    with h5py.File(path, "w") as f:
        f.attrs["format"] = STORE_FORMAT
        if link == "images":
            f["images"] = target
        else:
            f["images"] = np.zeros((2, 2, 8, 8), np.uint16)
        if link == "labels":
            f["labels"] = target
    return path


def test_store_external_link_to_missing_file_named(tmp_path):
    store = _store(tmp_path / "s.h5", "images", h5py.ExternalLink("gone.h5", "/images"))
    want = (r"its 'images' is a link to '/images' in gone\.h5, a file that is missing \(looked for .*gone\.h5\): "
            r"restore it, or tile the images again")
    with pytest.raises(DevolensError, match=want):
        open_store(store)
    with pytest.raises(DevolensError, match=want):
        H5TileStream(store)
    labelled = _store(tmp_path / "l.h5", "labels", h5py.ExternalLink("sub/gone2.h5", "/labels"))
    with pytest.raises(DevolensError, match=r"its 'labels' is a link to '/labels' in sub/gone2\.h5, a file that is "
                                            r"missing"):
        open_store(labelled)


def test_store_tile_stats_names_the_missing_linked_file(tmp_path, capsys):
    store = _store(tmp_path / "s.h5", "images", h5py.ExternalLink("gone.h5", "/images"))
    with h5py.File(store, "a") as f:
        f.attrs["sources"] = "[]"  # (tile stats needs it)
    code, out, err = run_cli(["tile", "stats", str(store)], capsys)
    assert code == 2 and "a link to '/images' in gone.h5, a file that is missing" in err
    assert "corrupt" not in err and "Traceback" not in err


def test_store_link_to_a_file_without_the_dataset_or_a_dangling_soft_link(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as g:
        g["x"] = np.zeros(3)
    store = _store(tmp_path / "s.h5", "images", h5py.ExternalLink("other.h5", "/images"))
    with pytest.raises(DevolensError, match=r"its 'images' is a link to '/images' in other\.h5, which does not give "
                                            r"it \(.*\): not as `devolens tile` writes a store"):
        open_store(store)
    soft = _store(tmp_path / "soft.h5", "labels", h5py.SoftLink("/nowhere"))
    with pytest.raises(DevolensError, match=r"its 'labels' is a link to '/nowhere', which the store does not hold"):
        open_store(soft)


def test_store_external_link_that_resolves_still_opens(tmp_path, monkeypatch):
    with h5py.File(tmp_path / "data.h5", "w") as g:
        g["images"] = np.ones((2, 2, 8, 8), np.uint16)
    store = _store(tmp_path / "s.h5", "images", h5py.ExternalLink("data.h5", "/images"))
    monkeypatch.chdir(tmp_path.parent)  # found beside the store, not in the current folder
    with open_store(store) as f:
        assert f["images"].shape == (2, 2, 8, 8)


# ----------------------------------------------------------------------------- tile make: 8-bit in 16-bit
def _png16(rgb: np.ndarray, path: Path) -> Path:
    import cv2

    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV takes BGR
    return path


def _well(tmp_path, name: str, lo: int, hi: int, how: str = "tif") -> Path:
    rng = np.random.default_rng(3)
    a = rng.integers(lo, hi + 1, (2, 96, 96)).astype(np.uint16)
    path = tmp_path / name
    if how == "png":  # Hoechst in blue, Draq7 in red, green empty: read whole, not band by band
        rgb = np.zeros((96, 96, 3), np.uint16)
        rgb[..., 2], rgb[..., 0] = a[0], a[1]
        return _png16(rgb, path)
    tifffile.imwrite(path, a, compression="zlib" if how == "zlib" else None)
    return path


def _warned(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if "8-bit data saved as 16-bit" in str(w.message)]


@pytest.mark.parametrize("name, lo, hi, how, eight", [
    ("w8.tif", 0, 200, "tif", True),          # an export: background at 0
    ("w8z.tif", 3, 250, "zlib", True),        # compressed, dark end 3 (at most EIGHT_BIT_DARK)
    ("w8.png", 0, 200, "png", True),          # a 16-bit PNG: read whole
    ("dim.tif", 100, 200, "tif", False),      # a dim camera well: its offset kept, no export
    ("cam.tif", 0, 300, "tif", False),        # a value above 255: counts
])
def test_tile_make_warns_of_8bit_in_16bit_as_livedead_does(tmp_path, name, lo, hi, how, eight):
    well = _well(tmp_path, name, lo, hi, how)
    store = tmp_path / f"{name}.h5"
    said = _warned(lambda: tile_to_h5([well], store, tile=32, stride=32, keep="all"))
    assert bool(said) == eight
    if eight:
        assert len(said) == 1 and said[0].startswith(f"{well}: every pixel of this 16-bit image is at most 255")
        assert "Tiled as it is, not scaled" in said[0] and "tile the microscope's own 16-bit file" in said[0]
    # the same rule as segment livedead's reader (RowReader._eight_bit)
    reader = RowReader(well, channels=2)
    try:
        assert bool(_warned(lambda: reader.rows(0, 96))) == eight
        expected = reader.rows(0, 96)
    finally:
        reader.close()
    with open_store(store) as f:  # what tile make writes is unchanged: the values as they are, not scaled x257
        tiles = f["images"][:]
        assert tiles.max() == hi and np.array_equal(tiles[0], expected[:, :32, :32])


def test_tile_make_cli_prints_the_8bit_warning(tmp_path, capsys):
    well = _well(tmp_path, "w.tif", 0, 200)
    code, out, err = run_cli(["tile", "make", str(well), "-o", str(tmp_path / "s.h5"), "--tile", "32",
                              "--keep", "all"], capsys)
    assert code == 0, err
    text = out + err
    assert "warning: " in text and "8-bit data saved as 16-bit?" in text and text.count("8-bit data saved") == 1
