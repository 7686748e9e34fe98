"""Big inputs stay bounded in memory: what is read at once, never how long it takes (small files stand in)."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.io import stacks
from devolens.io.stacks import iter_stack_frames


def _fiji_like(path, data):
    """An ImageJ hyperstack stored as Fiji stores one (and every ImageJ file over 4 GB): one page holding the
    layout, the planes after it one after another, so tifffile sees a single page for the whole series."""
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZYX"}, truncate=True)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.series[0].pages) == 1  # the layout this test is about


@pytest.fixture
def hyperstack(tmp_path):
    data = np.random.default_rng(0).integers(0, 4000, (4, 3, 24, 40), dtype=np.uint16)
    path = tmp_path / "fiji.tif"
    _fiji_like(path, data)
    return path, data


class _CountingFile:
    """A binary file that records the size of each read."""

    def __init__(self, fh, sizes):
        self._fh, self._sizes = fh, sizes

    def readinto(self, buf):
        n = self._fh.readinto(buf)
        self._sizes.append(n)
        return n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()

    def __getattr__(self, name):
        return getattr(self._fh, name)


def test_fiji_hyperstack_read_one_plane_at_a_time(hyperstack, monkeypatch):
    """A 2.6 GB Fiji-saved hyperstack was memory-mapped whole: every plane read stayed in the process
    (peak RSS grew to the file's size). Each plane is now read by itself, never the whole file."""
    path, data = hyperstack
    sizes: list[int] = []
    real_open = open
    monkeypatch.setattr(stacks, "open", lambda p, mode="r": _CountingFile(real_open(p, mode), sizes), raising=False)

    def refused(*a, **k):
        raise AssertionError("the whole stack was mapped or read at once")

    monkeypatch.setattr(tifffile, "memmap", refused)
    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", refused)
    frames = list(iter_stack_frames(path, z="slices"))
    assert np.array_equal(np.stack(frames), data.reshape(-1, 24, 40))
    plane = data[0, 0].nbytes
    assert sizes and max(sizes) == plane and len(sizes) == 12
    projected = list(iter_stack_frames(path, z="project"))
    assert np.array_equal(np.stack(projected), data.max(axis=1))


def test_fiji_hyperstack_big_endian(tmp_path):
    data = np.arange(2 * 2 * 8 * 10, dtype=np.uint16).reshape(2, 2, 8, 10) * 7
    path = tmp_path / "be.tif"
    tifffile.imwrite(path, data, byteorder=">", imagej=True, metadata={"axes": "TZYX"}, truncate=True)
    frames = list(iter_stack_frames(path, z="slices"))
    assert np.array_equal(np.stack(frames), data.reshape(-1, 8, 10))
    assert all(f.dtype == np.uint16 and f.dtype.isnative for f in frames)  # as tifffile's pages are read


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_fiji_hyperstack_channels_and_rgb(tmp_path, dtype):
    """Offsets of each plane with several channels (one picked) and with ImageJ's interleaved RGB samples."""
    rng = np.random.default_rng(1)
    data = (rng.random((3, 2, 2, 8, 10)) * 200).astype(dtype)
    path = tmp_path / "tzc.tif"
    tifffile.imwrite(path, data, byteorder=">", imagej=True, metadata={"axes": "TZCYX"}, truncate=True)
    got = np.stack(list(iter_stack_frames(path, z="slices", channel=1)))
    assert np.array_equal(got, data[:, :, 1].reshape(-1, 8, 10))
    rgb = (rng.random((3, 2, 8, 10, 3)) * 255).astype(np.uint8)
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, rgb, imagej=True, photometric="rgb", metadata={"axes": "TZYXS"}, truncate=True)
    assert np.array_equal(np.stack(list(iter_stack_frames(path))), rgb.max(axis=1))


def test_fiji_hyperstack_cut_short_is_an_error(hyperstack, tmp_path):
    """A plane past the end of the file is refused (by the layout check or by the read), never returned short."""
    from devolens.errors import DevolensError

    path, _ = hyperstack
    cut = tmp_path / "cut.tif"
    cut.write_bytes(path.read_bytes()[: -(24 * 40 * 2 * 2)])
    with pytest.raises(DevolensError):
        list(iter_stack_frames(cut, z="slices"))


def test_fiji_hyperstack_cut_while_read_is_an_error(hyperstack):
    """A file cut after the layout check passed (a copy still being written): the plane reader itself refuses
    the short plane."""
    import os

    from devolens.errors import DevolensError

    path, _ = hyperstack
    frames = iter_stack_frames(path, z="slices")
    next(frames)
    os.truncate(path, path.stat().st_size - 24 * 40 * 2 - 7)
    with pytest.raises(DevolensError, match="ends before this plane"):
        list(frames)


def test_stack_reader_thread_keeps_the_process_warning_filters(tmp_path, monkeypatch):
    """Frames are read in a background thread (ReadAhead): a warnings.catch_warnings there put back the whole
    process's filters as they were when a plane's read began, dropping a filter the main thread added during it
    (the int8 network's: PyTorch's deprecation warnings then flooded the terminal for TIFF inputs only)."""
    data = np.zeros((5, 16, 16), np.uint16)
    path = tmp_path / "pages.tif"
    tifffile.imwrite(path, data, metadata={"axes": "TYX"}, compression="zlib")  # read page by page
    marker = "devolens test marker: added while a plane is read"
    real = tifffile.TiffPage.asarray

    calls = []

    def reading(self, *a, **k):  # the main thread adds a filter while this thread reads a plane
        calls.append(1)
        t = threading.Thread(target=warnings.filterwarnings, args=("ignore",), kwargs={"message": marker})
        t.start()
        t.join()
        return real(self, *a, **k)

    monkeypatch.setattr(tifffile.TiffPage, "asarray", reading)
    with warnings.catch_warnings():  # the test's own filters put back after it (in this thread, as is right)
        frames = list(iter_stack_frames(path))
        assert len(frames) == 5 and calls
        assert any(f[0] == "ignore" and f[1] is not None and f[1].pattern == marker for f in warnings.filters)


def test_columns_csv_in_chunks_is_the_whole_table_written_at_once(tmp_path):
    from devolens.io.atomic import ColumnsCSV, write_columns_csv

    rng = np.random.default_rng(0)
    chunks = [(["t%03d" % i] * n, np.arange(1, n + 1), np.round(rng.random(n) * 700, 2), np.round(rng.random(n), 2),
               rng.integers(10, 900, n)) for i, n in enumerate((3, 0, 5, 1))]
    with ColumnsCSV(tmp_path / "chunks.csv", ["frame", "label", "x", "y", "area"]) as out:
        for chunk in chunks:
            out.add(*chunk)
    whole = {name: [v for c in chunks for v in (c[k].tolist() if hasattr(c[k], "tolist") else c[k])]
             for k, name in enumerate(["frame", "label", "x", "y", "area"])}
    write_columns_csv(whole, tmp_path / "whole.csv")
    assert (tmp_path / "chunks.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    with pytest.raises(ValueError):
        with ColumnsCSV(tmp_path / "bad.csv", ["a", "b"]) as out:
            out.add([1, 2], [3])


def test_segment_writes_objects_frame_by_frame(tiny_zoo, tmp_path, monkeypatch):
    """A long movie's object table is written as its frames come, not held until the end."""
    from devolens.cli import main
    from devolens.io import atomic

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        img = np.zeros((48, 70), np.uint8)
        img[10:20, 10:20] = img[30:40, 40:52] = 200
        tifffile.imwrite(folder / f"t{i}.tif", img)
    sizes = []
    real_add = atomic.ColumnsCSV.add

    def add(self, *columns):
        real_add(self, *columns)
        self._fh.flush()
        if Path(self._fh.name).name == "objects.csv":  # (counts.csv is written at the end, in one piece)
            sizes.append(Path(self._fh.name).stat().st_size)

    monkeypatch.setattr(atomic.ColumnsCSV, "add", add)
    assert main(["segment", "nuclei", str(folder), "--out", str(tmp_path / "o"), "--diameter", "none"]) == 0
    rows = (tmp_path / "o" / "objects.csv").read_text().splitlines()
    assert len(rows) == 4 and len(sizes) == 3 and sizes[0] < sizes[1] < sizes[2]  # one chunk per frame, on disk
