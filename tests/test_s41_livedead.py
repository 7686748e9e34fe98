"""Session 41 (m41a): live/dead defects found by a user's walkthrough.

1. ``load("livedead").predict(arr)`` of a well whose channels were swapped (Draq7 first) came back all dead without a
   word, where the same well given as a file warned: an array is always read by position, and now warns alike.
2. A constant fill around a well (a black border, as stitched or registered tile scans leave) made spurious objects,
   mostly dead, along the well's edge (441 nuclei, 29.5 % dead -> 508, 39 %); the fill is now read at the well's
   background level and no object is kept in it, in ``predict`` and ``segment livedead`` alike."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import tifffile

from _livedead_helpers import channel_predictor
from devolens.models.zoo import ZOO_DIR
from devolens.predict import livedead as ld
from devolens.render.wells import simulate_well

needs_weights = pytest.mark.skipif(not (ZOO_DIR / "livedead" / "weights.safetensors").is_file(),
                                   reason="livedead weights not shipped")


@pytest.fixture(scope="module")
def small_well() -> np.ndarray:
    """A small simulated well (256 x 320, about 56 nuclei, 30 % dead), as ``devolens simulate well`` makes them."""
    return simulate_well(5, (256, 320), density=800, dead_fraction=0.3).image


@pytest.fixture(scope="module")
def zoo():
    from devolens.models import load

    return load("livedead")


def _said(fn) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [str(w.message) for w in caught]


# ---------------------------------------------------------------------- 1. an array's swapped channels
def test_an_arrays_swapped_channels_warn_as_its_files_do(small_well, tmp_path):
    pred = channel_predictor()
    swapped = np.ascontiguousarray(small_well[[1, 0]])
    result, said = _said(lambda: pred.predict(swapped, probabilities=False))
    assert result.counts["fraction_dead"] >= ld.SWAP_FRACTION and result.counts["dead"] >= ld.SWAP_MIN_OBJECTS
    swap = [s for s in said if "read as dead" in s]
    assert len(swap) == 1, said
    assert swap[0].startswith("<array>: ") and "read by position" in swap[0] and "image[[1, 0]]" in swap[0]
    assert "channels=" not in swap[0] and "\n" not in swap[0]  # the array's words, not a file's
    tifffile.imwrite(tmp_path / "w.tif", swapped)  # the same well as a file: warned as before, in its words
    _, said = _said(lambda: pred.predict(tmp_path / "w.tif", probabilities=False))
    assert [s for s in said if "read as dead" in s and "channels=[1, 0]" in s]


@needs_weights
def test_an_arrays_channels_the_right_way_round_are_read_quietly(zoo, small_well):
    result, said = _said(lambda: zoo.predict(small_well, probabilities=False))
    assert result.counts["fraction_dead"] < 0.5 and not [s for s in said if "read as dead" in s]


# ---------------------------------------------------------------------- 2. a constant fill around a well
def test_a_fill_is_found_only_where_a_well_has_one(small_well, tmp_path):
    assert ld._find_fill(small_well) is None  # a camera well: no fill, nothing changes
    padded = np.pad(small_well, ((0, 0), (8, 8), (8, 8)))
    fill = ld._find_fill(padded)
    assert fill is not None and fill.values == [(0, 0)]
    h, w = padded.shape[1:]
    assert fill.pixels == h * w - small_well.shape[1] * small_well.shape[2]
    mask = fill.mask(0, h)
    assert mask[:8].all() and mask[:, -8:].all() and not mask[8:-8, 8:-8].any()
    np.testing.assert_allclose(fill.level, np.median(small_well, axis=(1, 2)), rtol=0.02)
    # any one value (here 7), in a corner (a registration's shift): found too
    shifted = np.full_like(small_well, 7)
    shifted[:, 20:, 40:] = small_well[:, :-20, :-40]
    fill = ld._find_fill(shifted)
    assert fill is not None and fill.values == [(7, 7)] and fill.pixels == 256 * 320 - 236 * 280
    # a float file's NaN border (read as 0) through the file reader
    nan = padded.astype(np.float32)
    nan[:, padded[0] == 0] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ld.RowReader(tmp_path / "nan.tif", channels=2) as src:
            fill = ld._find_fill(src)
    assert fill is not None and fill.pixels == h * w - small_well.shape[1] * small_well.shape[2]
    # a drawn image of nuclei on a background of exactly 0 has no imaged area of its own: its background is no fill
    drawn = np.zeros((2, 128, 128), np.uint16)
    for y, x in ((20, 30), (60, 90), (100, 40)):
        drawn[0, y:y + 12, x:x + 12] = 3000
    drawn[1, 60:72, 90:102] = 3000
    assert ld._find_fill(drawn) is None


@needs_weights
def test_a_black_border_around_a_well_leaves_its_calls(zoo, small_well, monkeypatch):
    plain = zoo.predict(small_well, probabilities=False)
    for pad, value in ((8, 0), (32, 0), (8, 300)):
        padded = np.pad(small_well, ((0, 0), (pad, pad), (pad, pad)), constant_values=value)
        got = zoo.predict(padded)
        for key in ("live", "dead"):  # were 35 and 48 for 34 and 22 (8 px of 0), 42 and 30 (32 px)
            assert abs(got.counts[key] - plain.counts[key]) <= 2, (pad, value, got.counts, plain.counts)
        ring = np.ones(got.labels.shape, bool)
        ring[pad:-pad, pad:-pad] = False
        assert not got.labels[ring].any() and np.all(got.probabilities[0][ring] == 1)  # no object in the fill
    # the well without a fill: its labels byte for byte those read without looking for one
    monkeypatch.setattr(ld, "_find_fill", lambda src, band=256: None)
    assert np.array_equal(zoo.predict(small_well, probabilities=False).labels, plain.labels)


@needs_weights
def test_segment_livedead_reads_a_bordered_well_file_as_the_well(zoo, small_well, tmp_path, capsys):
    from devolens.cli import main

    plain = zoo.predict(small_well, probabilities=False).counts
    padded = np.pad(small_well, ((0, 0), (16, 16), (16, 16)))
    tifffile.imwrite(tmp_path / "black.tif", padded)
    nan = padded.astype(np.float32)
    nan[:, padded[0] == 0] = np.nan  # registration's NaN fill, read as 0
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    for name in ("black", "nan"):
        assert main(["segment", "livedead", str(tmp_path / f"{name}.tif"), "--out", str(tmp_path / name),
                     "--no-overlay"]) == 0
        counts = pd.read_csv(tmp_path / name / "counts.csv").iloc[0]
        for key in ("live", "dead"):
            assert abs(int(counts[key]) - plain[key]) <= 2, (name, counts.to_dict(), plain)
        labels = tifffile.imread(tmp_path / name / "labels.tif")
        assert not labels[:16].any() and not labels[:, -16:].any()
    capsys.readouterr()
