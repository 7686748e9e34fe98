"""Pins for three no-behaviour-change refactors (thirtieth session): ``prepare_clouds`` converting x, y, z to numbers
once (its error order and its clouds), ``PopulationPredictor.predict_iter`` keeping one record of the flat frames
(``flat_frames``: each row's ``flat`` and the black frame the regressor reads, in batches and in the composition
path), and live/dead's ``_ChannelWatch`` reading a float file as :meth:`RowReader.rows` converts it (the guard for
sharing that conversion)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from devolens.errors import DevolensError

# ------------------------------------------------------------------ identity: prepare_clouds


def _table(n: int = 40, embryos: int = 2) -> pd.DataFrame:
    """A small tidy table: ``embryos`` embryos of 4 time points each, random positions and sizes."""
    rng = np.random.default_rng(7)
    rows = []
    for e in range(embryos):
        for i in range(n):
            rows.append({"embryo": f"e{e}", "time": i % 4 + 1, "cell": f"c{i}", "x": rng.uniform(0, 300),
                         "y": rng.uniform(0, 200), "z": rng.uniform(0, 30), "size": rng.uniform(10, 20)})
    return pd.DataFrame(rows)


def test_prepare_clouds_says_a_missing_number_before_a_far_one():
    """Every column's finite check comes before any far-position check: a far x in an earlier row does not hide a
    y that holds no number (converting each column once must keep the two checks in this order)."""
    from devolens.predict.identity import prepare_clouds

    table = _table()
    table.loc[2, "x"] = 1e300
    table.loc[5, "y"] = np.nan
    with pytest.raises(DevolensError, match=r"^column 'y' must hold finite numbers; row 5 holds nan$"):
        prepare_clouds(table)
    table.loc[5, "y"] = 10.0
    with pytest.raises(DevolensError, match=r"^column 'x' holds 1e\+300 \(row 2\): positions and sizes beyond"):
        prepare_clouds(table)
    table.loc[2, "x"] = 10.0
    table["z"] = table["z"].astype(object)
    table.loc[7, "z"] = "deep"  # text: named with its row, as it stands in the table
    with pytest.raises(DevolensError, match=r"^column 'z' must hold finite numbers; row 7 holds 'deep'$"):
        prepare_clouds(table)


def test_prepare_clouds_reads_numbers_saved_as_text_as_the_numbers():
    from devolens.predict.identity import prepare_clouds

    table = _table()
    text = table.copy()
    for col in ("x", "y", "z"):
        text[col] = text[col].map(repr)  # "123.456...": the same float back
    a, b = prepare_clouds(table), prepare_clouds(text)
    assert len(a) == len(b) == 8
    for ca, cb in zip(a, b):
        assert (ca["embryo"], ca["time"]) == (cb["embryo"], cb["time"])
        np.testing.assert_array_equal(ca["index"], cb["index"])
        np.testing.assert_array_equal(ca["coords"], cb["coords"])
        np.testing.assert_array_equal(ca["size"], cb["size"])
    text.loc[3, "size"] = 2e9  # a far size is still refused when x, y, z are text
    with pytest.raises(DevolensError, match=r"^column 'size' holds 2000000000.0 \(row 3\)"):
        prepare_clouds(text)


def test_prepare_clouds_reads_times_and_sizes_held_as_text():
    """A table built in Python with times as text and a size that is no number: clouds, not a numpy traceback
    (the time column sorted as mixed objects; the size converted with float())."""
    from devolens.predict.identity import prepare_clouds

    table = _table()
    text = table.copy()
    text["time"] = text["time"].astype(str).astype(object)
    text["size"] = text["size"].astype(object)
    text.loc[5, "size"] = "abc"  # no number: an unknown size, as a missing one
    a, b = prepare_clouds(table), prepare_clouds(text)
    assert [(c["embryo"], float(c["time"])) for c in a] == [(c["embryo"], float(c["time"])) for c in b]
    for ca, cb in zip(a, b):
        np.testing.assert_array_equal(ca["coords"], cb["coords"])
    sizes = np.concatenate([c["size"] for c in b])
    assert np.isnan(sizes).sum() == 1


# ------------------------------------------------------------------ population: flat frames


class _Probe(torch.nn.Module):
    """A 'regressor' that records, per frame, whether its input was the black frame (all zeros), and answers
    ``k`` outputs of 1 (a frame read) or 0 (a black one)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self.black: list[bool] = []

    def forward(self, x):
        zero = (x.reshape(x.shape[0], -1) == 0).all(dim=1)
        self.black.extend(bool(z) for z in zero)
        return (~zero).float()[:, None].repeat(1, self.k)


#: frames and the regressor's input: resized 32 x 47 -> 16 x 24, a flat frame's rounding, normalised, is not all 0
#: (the phantom embryo the black frame avoids), so the probe tells a black frame read from a flat one normalised
FRAME, INPUT = (32, 47), (16, 24)


def _frames(n: int, flat: set[int]) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [np.full(FRAME, 40 + i, np.uint8) if i in flat else rng.integers(0, 255, FRAME, dtype=np.uint8)
            for i in range(n)]


@pytest.mark.parametrize("batch", [1, 3, 16])
def test_regressor_reads_flat_frames_black_in_batches(batch):
    from devolens.predict.population import LETTERS, PopulationPredictor

    flat = {0, 3, 4, 8, 10}
    probe = _Probe(len(LETTERS))  # (the letters alone: the total is their sum)
    pred = PopulationPredictor("regressor", network=probe, input_size=INPUT, batch_size=batch, fast=False,
                               outputs=LETTERS)
    rows = list(pred.predict_iter(_frames(11, flat)))
    assert [r["flat"] for r in rows] == [i in flat for i in range(11)]
    assert all(type(r["flat"]) is bool for r in rows)
    assert probe.black == [i in flat for i in range(11)]
    assert [r["total"] for r in rows] == [0.0 if i in flat else 7.0 for i in range(11)]  # 7 letters of 1 each
    assert pred.flat_frames == [0, 3, 4, 8, 10] and type(pred.flat_frames) is list


class _FakeNuclei:
    """Stands in for NucleiPredictor: a frame's first pixel is the number of nuclei it reports."""

    def predict_iter(self, images, total=None, progress=None):
        from devolens.predict.segment import SegmentationResult

        for img in images:
            n = int(np.asarray(img).ravel()[0])
            lab = np.zeros((8, 8), np.uint16)
            objects = pd.DataFrame({"label": np.arange(1, n + 1), "x": np.linspace(0, 7, n),
                                    "y": np.linspace(0, 7, n), "area": np.full(n, 4)})
            yield SegmentationResult(np.zeros((8, 8), np.float32), lab, objects, lab > 0)


def test_composition_regressor_reads_flat_frames_black():
    from devolens.predict.population import PopulationPredictor

    flat = {1, 2, 5}
    signal = (np.arange(32 * 47) % 200 + 4).astype(np.uint8).reshape(FRAME)  # 4 nuclei (its first pixel)
    frames = [np.full(FRAME, 7, np.uint8) if i in flat else signal for i in range(7)]
    composition = np.tile(np.linspace(0, 1, 41)[:, None], (1, 7)).astype(np.float32)  # (totals 0..40, 7 letters)
    probe = _Probe(1)
    pred = PopulationPredictor("composition", nuclei=_FakeNuclei(), composition=composition,
                               network=probe, total_weight=0.5, input_size=INPUT, fast=False)
    rows = list(pred.predict_iter(frames))
    assert [r["flat"] for r in rows] == [i in flat for i in range(7)]
    assert probe.black == [i in flat for i in range(7)]
    assert pred.flat_frames == [1, 2, 5]


def test_each_stream_keeps_its_own_flat_frames():
    """``flat_frames`` is the last stream's, filled as that stream is read; an earlier stream's list is its own."""
    from devolens.predict.population import COLUMNS, PopulationPredictor

    pred = PopulationPredictor("regressor", network=_Probe(len(COLUMNS)), input_size=INPUT, batch_size=2,
                               fast=False)
    first = pred.predict_iter(_frames(6, {1, 4}))
    rows = [next(first) for _ in range(2)]
    mine = pred.flat_frames
    assert [r["flat"] for r in rows] == [False, True] and mine == [1]
    assert [r["flat"] for r in pred.predict_iter(_frames(3, {0}))] == [True, False, False]
    assert pred.flat_frames == [0] and mine == [1]
    assert [r["flat"] for r in first] == [False, False, True, False]  # the first stream goes on with its own
    assert mine == [1, 4]


# ------------------------------------------------------------------ livedead: _ChannelWatch on a float file


def _converted_top(finite: np.ndarray, unit: bool) -> np.ndarray:
    """Each channel's largest value as the reader converts it (x65535 for a [0, 1] image), rounded."""
    x = finite.astype(np.float32) * (65535.0 if unit else 1.0)
    return np.clip(np.rint(x), 0, 65535).astype(np.uint16).reshape(2, -1).max(axis=1).astype(np.float64)


@pytest.mark.parametrize("unit", [False, True])
def test_channel_watch_reads_a_float_file_as_the_reader_converts_it(tmp_path, unit):
    """The watch's float bands are :meth:`RowReader.rows`'s, with every NaN or infinite pixel 0 (rows reads +inf as
    65535); each such pixel counted once though bands overlap; the conversion warned of once."""
    import tifffile

    from devolens.predict.livedead import _ChannelWatch
    from devolens.predict.tiled import RowReader

    rng = np.random.default_rng(5)
    img = rng.uniform(0, 1 if unit else 3000, (2, 40, 24)).astype(np.float32)
    img[0, 3, 4] = np.nan
    img[1, 10, 0:3] = np.inf
    img[0, 30, 7] = -np.inf
    tifffile.imwrite(tmp_path / "w.tif", img)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with RowReader(tmp_path / "w.tif", channels=2) as src, RowReader(tmp_path / "w.tif", channels=2) as ref:
            watch = _ChannelWatch(src)
            for y0, y1 in ((0, 16), (8, 24), (16, 40), (0, 40)):
                band = watch[:, y0:y1, :]
                want = ref.rows(y0, y1)
                want[~np.isfinite(img[:, y0:y1])] = 0
                assert band.dtype == np.uint16 and band.flags.c_contiguous
                np.testing.assert_array_equal(band, want)
            expect = np.where(np.isfinite(img), img, 0)
    np.testing.assert_array_equal(watch.nonfinite, [2, 3])
    np.testing.assert_array_equal(watch.top, _converted_top(expect, unit))
    said = [str(w.message) for w in caught if "not uint16; converted" in str(w.message)]
    assert len(said) == 2  # once per reader

