"""A TIFF stack under another image name (saved or renamed ``.png``, ``.jpeg``) is read by its content: as the stack
it is, the same frames as its ``.tif`` copy, alone and in a folder; ordinary PNGs are read as before.

Before session 41 stacks were told by their file name only: ``devolens segment nuclei plain6.PNG`` (a 6-page TIFF)
failed with the Python API's "expected one image, got an array of shape (6, 512, 752) ... predict_iter(frames)",
without the file's name, and ``--channel 1`` on an OME stack named ``.png`` was refused ("this input has none").
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile

from devolens.errors import DevolensError
from devolens.io.frames import check_channel_input, iter_path_frames
from devolens.io.images import read_image
from devolens.io.stacks import (pixel_size, reads_as_tiff, stack_reading, tiff_has_axis, unlabelled_pages_note)


def _pages(path, n=3, h=24, w=32):
    """A plain multi-page TIFF (no axes recorded: tifffile's ``IYX``) of ``n`` frames, each with a spot of its own
    brightness, written to ``path`` whatever its name."""
    frames = np.full((n, h, w), 10, np.uint8)
    for k in range(n):
        frames[k, 6:14, 8 + 4 * k:16 + 4 * k] = 100 + 50 * k
    with open(path, "wb") as fh, tifffile.TiffWriter(fh) as tw:  # a file handle: tifffile writes any name
        for f in frames:
            tw.write(f, metadata=None)
    return frames


def _ome_cyx(path, h=24, w=32):
    """An OME-TIFF of 2 channels (CYX, 0.5 µm pixels) written to ``path`` whatever its name."""
    arr = np.zeros((2, h, w), np.uint8)
    arr[0, 2:8, 2:8] = 200
    arr[1, 10:20, 12:24] = 220
    with open(path, "wb") as fh:
        tifffile.imwrite(fh, arr, ome=True, metadata={"axes": "CYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    return arr


@pytest.mark.parametrize("name", ["stack_as.PNG", "stack_as.jpeg"])
def test_stack_named_png_streams_as_its_tif_copy(tmp_path, name):
    frames = _pages(tmp_path / name)
    shutil.copy(tmp_path / name, tmp_path / "copy.tif")
    got, names, total = iter_path_frames(tmp_path / name)
    ref, ref_names, ref_total = iter_path_frames(tmp_path / "copy.tif")
    got, ref = list(got), list(ref)
    assert (names, total) == (ref_names, ref_total) == (None, 3)
    assert len(got) == 3
    for a, b, f in zip(got, ref, frames):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, f)


def test_folder_member_stack_named_png_gives_its_frames(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    frames = _pages(folder / "a.png")
    plain = np.full((24, 32), 7, np.uint8)
    tifffile.imwrite(folder / "b.png", plain)  # one image, a TIFF under a .png name: one frame, as before
    got, names, total = iter_path_frames(folder)
    assert names == ["a_0000.png", "a_0001.png", "a_0002.png", "b.png"] and total == 4
    got = list(got)
    for a, f in zip(got, [*frames, plain]):
        np.testing.assert_array_equal(a, f)


def test_stack_named_png_gets_the_notes_calibration_and_channel_of_a_tif(tmp_path):
    p6 = tmp_path / "p.png"
    _pages(p6)
    reading = stack_reading(p6)
    assert reading is not None and reading["read"] == "axes IYX, shape (3, 24, 32): 3 pages read as time points"
    assert "the 3 pages of p.png carry no axis labels" in unlabelled_pages_note(p6)
    ome = tmp_path / "ome_as.png"
    _ome_cyx(ome)
    assert tiff_has_axis(ome, "C", unreadable=False)
    check_channel_input(ome, 1, "--channel")  # no "this input has none"
    assert pixel_size(ome) == (0.5, 0.5, "µm")
    assert stack_reading(ome, channel=1)["read"].endswith("channel 1 of 2")
    frames, _, total = iter_path_frames(ome, channel=1)
    assert total == 1
    np.testing.assert_array_equal(next(frames), _ome_cyx(tmp_path / "again.tif")[1])


def test_ordinary_png_and_jpeg_read_as_before(tmp_path):
    from PIL import Image

    g = (np.arange(24 * 32).reshape(24, 32) % 251).astype(np.uint8)
    Image.fromarray(g).save(tmp_path / "a.png")
    Image.fromarray(g).save(tmp_path / "b.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    for p in ("a.png", "b.jpg", "empty.png", "missing.png"):
        assert not reads_as_tiff(tmp_path / p)
    assert not reads_as_tiff(tmp_path)  # a folder
    assert reads_as_tiff(tmp_path / "missing.tif")  # by its name: its reader says it is missing
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), g)
    assert stack_reading(tmp_path / "a.png") is None and unlabelled_pages_note(tmp_path / "a.png") is None
    assert pixel_size(tmp_path / "a.png") is None
    with pytest.raises(DevolensError, match="empty.png: empty file"):
        read_image(tmp_path / "empty.png")
    with pytest.raises(DevolensError, match="this input has none"):  # a PNG has no C axis: still refused
        check_channel_input(tmp_path / "a.png", 1, "--channel")
    frames, names, total = iter_path_frames(tmp_path, missing="mark")
    assert names == ["a.png", "b.jpg", "empty.png"] and total == 3


def test_segment_cli_on_a_folder_with_a_stack_named_png(tmp_path):
    from devolens.cli import main

    folder = tmp_path / "f"
    folder.mkdir()
    _pages(folder / "a.png")
    out = tmp_path / "out"
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--diameter", "none", "--no-overlay"]) == 0
    rows = (out / "counts.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["a_0000", "a_0001", "a_0002"]


@pytest.mark.parametrize("name", ["plain_as.PNG", "plain_as.tif"])
def test_segment_cli_on_a_stack_named_png_reads_it_as_its_tif_copy(tmp_path, capsys, name):
    from devolens.cli import main

    _pages(tmp_path / name)
    out = tmp_path / "out"
    assert main(["segment", "nuclei", str(tmp_path / name), "--out", str(out), "--diameter", "none",
                 "--no-overlay"]) == 0
    err = capsys.readouterr().err
    assert f"read {name}: axes IYX, shape (3, 24, 32): 3 pages read as time points" in err
    rows = (out / "counts.csv").read_text().splitlines()
    assert len(rows) == 4 and sorted(p.name for p in (out / "labels").iterdir())[0] == "plain_as_f00000_labels.tif"


def test_segment_cli_channel_of_an_ome_stack_named_png(tmp_path, capsys):
    from devolens.cli import main

    _ome_cyx(tmp_path / "ome_as.png")
    out = tmp_path / "out"
    assert main(["segment", "nuclei", str(tmp_path / "ome_as.png"), "--out", str(out), "--diameter", "none",
                 "--no-overlay", "--channel", "1"]) == 0
    assert "channel 1 of 2" in capsys.readouterr().err
    assert len((out / "counts.csv").read_text().splitlines()) == 2
