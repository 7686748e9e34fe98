"""Session 33 (m1), proposed: a (2, H, W) uint16 array holding 8-bit values (an export's ``.astype(np.uint16)``)
given to LiveDeadPredictor.predict gets the warning the same well read from a file gets (RowReader._eight_bit)."""

from __future__ import annotations

import warnings

import numpy as np
import tifffile

from test_s31_livedead_inputs import _noisy_well, _pred, _u16


def _eight_bit_said(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [str(w.message) for w in caught if "at most 255" in str(w.message)]


def test_an_array_of_8bit_values_in_16bit_warns_as_its_file_does(tmp_path):
    eight = (_u16(_noisy_well()) // 40).astype(np.uint8)  # an 8-bit export: values up to ~77
    tifffile.imwrite(tmp_path / "w.tif", eight.astype(np.uint16))
    pred = _pred()
    from_file, file_said = _eight_bit_said(lambda: pred.predict(tmp_path / "w.tif"))
    from_array, array_said = _eight_bit_said(lambda: pred.predict(eight.astype(np.uint16)))
    assert len(file_said) == 1 and len(array_said) == 1
    assert array_said[0].startswith("<array>: every pixel of this 16-bit image is at most 255")
    assert "8-bit data saved as 16-bit?" in array_said[0] and "16-bit counts" in array_said[0]
    assert np.array_equal(from_file.labels, from_array.labels)  # read as it is, as the file is: only the warning
    big_endian, said = _eight_bit_said(lambda: pred.predict(eight.astype(">u2")))
    assert len(said) == 1 and np.array_equal(big_endian.labels, from_array.labels)


def test_camera_counts_and_8bit_arrays_get_no_such_warning():
    pred = _pred()
    _, said = _eight_bit_said(lambda: pred.predict(_u16(_noisy_well())))  # a camera's counts (offset, > 255)
    assert said == []
    _, said = _eight_bit_said(lambda: pred.predict((_u16(_noisy_well()) // 40).astype(np.uint8)))  # scaled, warned
    assert said == []
    dim = np.full((2, 64, 64), 120, np.uint16)  # a dim camera well: its offset above EIGHT_BIT_DARK
    _, said = _eight_bit_said(lambda: pred.predict(dim))
    assert said == []
