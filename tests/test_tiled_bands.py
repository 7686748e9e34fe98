"""RowReader reads compressed and tiled TIFFs band by band (strip by strip, tile by tile), never the whole image, and
gives exactly the pixels that reading the whole file gives: strips or tiles, any codec, pyramids (level 0), channels
as pages, as separate planes or as samples per pixel, big-endian and float data."""

import numpy as np
import pytest
import tifffile

import devolens.predict.tiled as tiled
from devolens.predict.tiled import RowReader

H, W = 300, 260


def _img(shape, dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return (rng.random(shape) * 3000).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max if np.dtype(dtype).itemsize == 1 else 4000, shape).astype(dtype)


def _write(path, kind):
    """Write one layout; return the array that reading the whole file gives."""
    if kind == "tiled":
        a = _img((2, H, W))
        tifffile.imwrite(path, a, tile=(64, 48), compression="zlib", metadata={"axes": "CYX"})
    elif kind == "strips":
        a = _img((2, H, W))
        tifffile.imwrite(path, a, rowsperstrip=7, compression="zlib", metadata={"axes": "CYX"})
    elif kind == "one-strip":
        a = _img((2, H, W))
        tifffile.imwrite(path, a, rowsperstrip=H, compression="lzw", metadata={"axes": "CYX"})
    elif kind == "rgb-contig":
        a = _img((H, W, 3), np.uint8)
        tifffile.imwrite(path, a, photometric="rgb", tile=(32, 32), compression="lzw")
    elif kind == "rgb-planar":
        a = _img((3, H, W), np.uint8)
        tifffile.imwrite(path, a, photometric="rgb", planarconfig="separate", rowsperstrip=16, compression="zlib")
    elif kind == "yxc-minisblack":
        a = _img((H, W, 3))
        tifffile.imwrite(path, a, photometric="minisblack", planarconfig="contig", tile=(64, 64),
                         compression="zlib")
    elif kind == "ome-pyramid":
        a = _img((2, H, W))
        with tifffile.TiffWriter(path, ome=True) as tw:
            tw.write(a, subifds=1, tile=(64, 64), compression="zlib", metadata={"axes": "CYX"})
            tw.write(np.ascontiguousarray(a[:, ::2, ::2]), tile=(64, 64), compression="zlib", subfiletype=1)
    elif kind == "big-endian":
        a = _img((2, H, W))
        tifffile.imwrite(path, a, byteorder=">", tile=(48, 64), compression="zlib", metadata={"axes": "CYX"})
    elif kind == "float-predictor":
        a = _img((2, H, W), np.float32)
        tifffile.imwrite(path, a, compression="zlib", predictor=True, rowsperstrip=10, metadata={"axes": "CYX"})
    elif kind == "jpeg-rgb":
        a = _img((H, W, 3), np.uint8)
        tifffile.imwrite(path, a, photometric="rgb", tile=(64, 64), compression="jpeg")
    elif kind == "grey":
        a = _img((H, W))
        tifffile.imwrite(path, a, tile=(32, 64), compression="zlib")
    else:
        raise AssertionError(kind)
    return tifffile.imread(path)


KINDS = ["tiled", "strips", "one-strip", "rgb-contig", "rgb-planar", "yxc-minisblack", "ome-pyramid", "big-endian",
         "float-predictor", "jpeg-rgb", "grey"]


@pytest.mark.parametrize("kind", KINDS)
def test_compressed_tiff_read_by_bands_equals_whole(tmp_path, kind, monkeypatch):
    path = tmp_path / f"{kind}.tif"
    whole = _write(path, kind)
    if whole.ndim == 2:
        whole = whole[None]

    def no_whole_read(*a, **k):
        raise AssertionError("the whole image was read")

    monkeypatch.setattr(tiled.tifffile, "imread", no_whole_read)
    with RowReader(path, channels=None) as r:
        assert r._segments is not None
        stored = np.moveaxis(whole, -1, 0) if r.layout == "YXC" else whole
        assert r.shape == stored.shape
        for y0, y1 in ((0, 64), (37, 101), (100, 300), (299, 300), (250, 400), (0, 300)):
            assert np.array_equal(r._raw_rows(y0, y1), stored[:, y0:min(y1, H)]), (y0, y1)
        # overlapping bands, as predict_tiled reads them: the band's segments are kept, the others dropped
        for y0 in range(0, H, 48):
            assert np.array_equal(r._raw_rows(y0, y0 + 64), stored[:, y0:y0 + 64])
            assert all(key[2] * r._segments._seg_rows < min(H, y0 + 64) for key in r._segments._cache)


def test_band_decodes_only_its_segments(tmp_path):
    """A band decodes the tile rows it crosses, not the image."""
    path = tmp_path / "t.tif"
    _write(path, "tiled")
    with RowReader(path, channels=None) as r:
        seg = r._segments
        seg.rows(70, 120)  # tile rows 1 (64..128) of two pages
        assert sorted(seg._cache) == [(0, 0, 1), (1, 0, 1)]
        seg.rows(120, 140)  # tile rows 1 and 2: row 1 reused
        assert sorted(seg._cache) == [(0, 0, 1), (0, 0, 2), (1, 0, 1), (1, 0, 2)]


def test_undecodable_tiff_is_a_one_line_error(tmp_path, monkeypatch):
    from devolens.errors import DevolensError

    path = tmp_path / "t.tif"
    _write(path, "tiled")

    def broken(*a, **k):
        raise RuntimeError("codec missing")

    monkeypatch.setattr(tiled._TiffSegments, "rows", broken)
    with pytest.raises(DevolensError, match="cannot decode its pixels .*codec missing"):
        RowReader(path, channels=None)
