"""Giant wells and microscope files (walkthrough C): a TIFF of several wells or positions was read as its first
series by ``segment livedead`` and ``tile make`` without a word; a compressed two-channel well cut short before its
second page was called a grey image of one channel; an HDF5 file locked by another program was called truncated or
corrupt; a plate folder's .czi and .nd2 files were left out silently, and one given alone got no Bio-Formats advice;
``tile make --stride`` larger than ``--tile`` left pixels in no tile where the docs promised every pixel in one."""

from __future__ import annotations

import fcntl
import json
import os
import warnings

import numpy as np
import pytest
import tifffile

from devolens.cli import main
from devolens.data.tiling import open_store, read_image, tile_arrays, tile_to_h5
from devolens.errors import DevolensError
from devolens.predict.tiled import RowReader
from devolens.render.wells import simulate_well

from _livedead_helpers import weights  # noqa: F401  (fixture)


def _well(h=64, w=80):
    return simulate_well(seed=3, size=(h, w), density=1500).image


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _livedead(path, out, model, *extra):
    return main(["segment", "livedead", str(path), "--out", str(out), "--model", str(model), "--window", "64",
                 "--overlap", "16", "--no-overlay", *extra])


# --------------------------------------------------------------------- 1. several image series: refused
def _two_series(tmp_path, kind):
    d = _well()
    path = tmp_path / ("two.ome.tif" if kind == "ome" else "two.tif")
    with tifffile.TiffWriter(path, ome=kind == "ome") as tw:  # OME: Image:0 and Image:1; else two shaped series
        tw.write(d, metadata={"axes": "CYX"})
        tw.write(d[:, ::-1], metadata={"axes": "CYX"})
    with tifffile.TiffFile(path) as tf:
        assert len(tf.series) == 2
    return path


@pytest.mark.parametrize("kind", ["ome", "plain"])
def test_a_tiff_of_two_series_is_refused_by_livedead_and_tile(tmp_path, capsys, weights, kind):  # noqa: F811
    path = _two_series(tmp_path, kind)
    with pytest.raises(DevolensError, match="holds 2 image series") as exc:
        RowReader(path, channels=2)
    assert "save each series as its own TIFF" in str(exc.value)
    with pytest.raises(DevolensError, match="holds 2 image series"):
        read_image(path)
    out = tmp_path / "o"
    assert _livedead(path, out, weights) == 2
    err = _err(capsys)
    assert err.startswith("error:") and "holds 2 image series" in err and not out.exists()
    store = tmp_path / "t.h5"
    assert main(["tile", "make", str(path), "--out", str(store), "--tile", "32", "--keep", "all"]) == 2
    assert "holds 2 image series" in _err(capsys) and not store.exists()


def test_pyramids_are_one_well(tmp_path):
    """A pyramid's levels are no extra positions: in SubIFDs (OME) or as reduced pages in sequence (a second series
    of NewSubfileType 1): read at full resolution, as before."""
    d = _well()
    sub, pages = tmp_path / "sub.ome.tif", tmp_path / "pages.tif"
    with tifffile.TiffWriter(sub) as tw:
        tw.write(d, subifds=1, tile=(32, 32), compression="zlib", metadata={"axes": "CYX"})
        tw.write(d[:, ::2, ::2], subfiletype=1, tile=(32, 32), compression="zlib")
    with tifffile.TiffWriter(pages) as tw:
        tw.write(d, tile=(32, 32), metadata={"axes": "CYX"})
        tw.write(d[:, ::2, ::2], subfiletype=1, tile=(32, 32))
    with tifffile.TiffFile(pages) as tf:
        assert len(tf.series) == 2  # tifffile's second series: the reduced level
    for path in (sub, pages):
        with RowReader(path, channels=2) as r:
            assert r.shape == d.shape and np.array_equal(r[:, 0:d.shape[1], :], d)
        assert np.array_equal(read_image(path), d)


# --------------------------------------------------------------------- 2. a compressed well cut short
def test_a_compressed_well_cut_before_its_second_page_is_damaged_not_grey(tmp_path, capsys):
    whole = tmp_path / "whole.tif"
    tifffile.imwrite(whole, _well(), compression="zlib")  # two pages, one per channel
    with tifffile.TiffFile(whole) as tf:
        second = tf.pages[1].offset  # the second page's header: where the cut falls
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[:second])
    for read in (lambda p: RowReader(p, channels=2), read_image):
        with pytest.raises(DevolensError, match="damaged or truncated TIFF") as exc:
            read(cut)
        assert "grey image" not in str(exc.value)
    store = tmp_path / "t.h5"
    assert main(["tile", "make", str(cut), "--out", str(store), "--tile", "32", "--keep", "all"]) == 2
    err = _err(capsys)
    assert "damaged or truncated TIFF" in err and "grey image" not in err and not store.exists()


# --------------------------------------------------------------------- 3. an HDF5 file locked by another program
def _locked(path):
    """An exclusive lock on ``path`` as HDF5 takes one for a writer (another program holding it open)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        pytest.skip("no flock on this file system")
    return fd


def test_a_locked_hdf5_file_is_said_to_be_open_elsewhere(tmp_path, monkeypatch):
    import h5py

    monkeypatch.delenv("HDF5_USE_FILE_LOCKING", raising=False)
    well = tmp_path / "well.h5"
    with h5py.File(well, "w") as f:
        f["image"] = _well()
    store = tmp_path / "t.h5"
    tifffile.imwrite(tmp_path / "w.tif", _well(), metadata={"axes": "CYX"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tile_to_h5([tmp_path / "w.tif"], store, tile=32, stride=16, keep="all")
    for path, opener in ((well, lambda p: RowReader(p, channels=2)), (store, open_store)):
        fd = _locked(path)
        try:
            try:
                h5py.File(path, "r").close()
            except OSError:
                pass
            else:
                pytest.skip("HDF5 does not lock files here")
            with pytest.raises(DevolensError, match="another program has this HDF5 file open") as exc:
                opener(path)
            assert "truncated or corrupt" not in str(exc.value) and "was not changed" in str(exc.value)
        finally:
            os.close(fd)
        opener(path).close()  # once let go, it opens


# --------------------------------------------------------------------- 4. microscope files
def _czi(path):
    path.write_bytes(b"ZISRAWFILE" + b"\0" * 200)  # a Zeiss file's first bytes
    return path


def test_a_plate_names_its_microscope_files(tmp_path, capsys, weights):  # noqa: F811
    plate = tmp_path / "plate"
    plate.mkdir()
    tifffile.imwrite(plate / "A1.tif", _well(), metadata={"axes": "CYX"})
    _czi(plate / "A2.czi")
    (plate / "A3.nd2").write_bytes(b"\xda\xce\xbe\x0a" + b"\0" * 200)
    out = tmp_path / "o"
    assert _livedead(plate, out, weights) == 0
    err = _err(capsys)
    said = "2 microscope files (A2.czi, A3.nd2): save them as OME-TIFF first"
    assert "not read as wells" in err and said in err
    record = json.loads((out / "livedead.json").read_text())
    assert any(said in n for n in record["notes"])
    only = tmp_path / "only"
    only.mkdir()
    _czi(only / "B1.czi")
    assert _livedead(only, tmp_path / "o2", weights) == 2
    err = _err(capsys)
    assert "no well images" in err and "1 microscope file (B1.czi): save them as OME-TIFF first" in err


def test_a_microscope_file_alone_gets_the_bio_formats_advice(tmp_path, capsys, weights):  # noqa: F811
    czi = _czi(tmp_path / "w.czi")
    assert _livedead(czi, tmp_path / "o", weights) == 2
    err = _err(capsys)
    assert "got a '.czi' file" in err and "Bio-Formats" in err and "OME-TIFF" in err
    assert main(["tile", "make", str(czi), "--out", str(tmp_path / "t.h5"), "--keep", "all"]) == 2
    err = _err(capsys)
    assert "got a '.czi' file" in err and "Bio-Formats" in err and "unsupported image type" not in err


# --------------------------------------------------------------------- 5. --stride larger than --tile
def test_a_stride_larger_than_the_tile_is_warned_of(tmp_path, capsys):
    img = tmp_path / "w.tif"
    tifffile.imwrite(img, _well(96, 128), metadata={"axes": "CYX"})
    with pytest.warns(UserWarning, match="leave 48 px between them in no tile"):
        tile_to_h5([img], tmp_path / "a.h5", tile=32, stride=80, keep="all")
    with pytest.warns(UserWarning, match="in no tile"):
        tile_arrays(_well(96, 128), tile=32, stride=80, keep="all")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # at most the tile: every pixel in a tile, no warning
        tile_to_h5([img], tmp_path / "b.h5", tile=32, stride=32, keep="all")
    assert main(["tile", "make", str(img), "--out", str(tmp_path / "c.h5"), "--tile", "32", "--stride", "80",
                 "--keep", "all"]) == 0
    err = _err(capsys)
    assert "warning: --stride 80 is larger than --tile 32" in err and "puts every pixel in a tile" in err
