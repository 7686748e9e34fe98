"""Session 31 review: a 16-bit well that looks like an 8-bit export is read as it is, with a warning (an empty
control well from a camera, every count under 256, is neither warned about nor scaled); a damaged strip met part-way
through a compressed well is a one-line error naming the file."""
import warnings

import numpy as np
import pytest
import tifffile

from devolens.errors import DevolensError
from devolens.predict.tiled import RowReader


def test_an_8bit_export_saved_as_16bit_is_warned_about_and_read_as_it_is(tmp_path):
    rng = np.random.default_rng(0)
    export = rng.integers(0, 200, (2, 300, 64)).astype(np.uint16)  # background mapped to 0 for viewing
    export[:, 0, 0] = 0
    tifffile.imwrite(tmp_path / "e.tif", export)
    with RowReader(tmp_path / "e.tif") as r:
        with pytest.warns(UserWarning, match=r"at most 255 .*8-bit data saved as 16-bit"):
            got = r.rows(0, 300)
    assert np.array_equal(got, export)  # not scaled


def test_an_empty_camera_well_under_256_counts_is_neither_warned_nor_scaled(tmp_path):
    rng = np.random.default_rng(1)
    empty = np.clip(rng.normal(100, 3, (2, 300, 64)), 0, None).astype(np.uint16)  # dark offset ~100, no nuclei
    assert empty.max() <= 255
    tifffile.imwrite(tmp_path / "empty.tif", empty)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with RowReader(tmp_path / "empty.tif") as r:
            assert np.array_equal(r.rows(0, 300), empty)


def test_a_damaged_strip_part_way_is_one_error_naming_the_file(tmp_path):
    img = np.random.default_rng(2).integers(0, 4000, (2, 512, 64)).astype(np.uint16)
    path = tmp_path / "w.tif"
    tifffile.imwrite(path, img, compression="zlib", rowsperstrip=16)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[1]  # the second channel's plane
        offset, count = page.dataoffsets[20], page.databytecounts[20]
    data = bytearray(path.read_bytes())
    data[offset:offset + count] = b"\x00" * count  # one strip of zeros: not a zlib stream
    path.write_bytes(bytes(data))
    with RowReader(path) as r:
        r.rows(0, 64)  # the first rows decode
        with pytest.raises(DevolensError, match=r"w\.tif.*cannot decode|cannot decode.*w\.tif"):
            for y0 in range(0, 512, 64):
                r.rows(y0, y0 + 64)
