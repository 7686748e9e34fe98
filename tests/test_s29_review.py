"""Twenty-ninth session's review of the memory guard: what it found, mended."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from devolens.io import images
from devolens.io.atomic import Exhausted
from devolens.io.frames import iter_path_frames


def test_animated_gif_too_large_when_listed_is_not_read_as_one_frame(tmp_path, monkeypatch):
    """Listing a folder weighs an animated GIF's frames; a refusal there was taken for an unreadable GIF and skipped,
    so (with memory freer by the time it was read) the GIF became its first frame only, without a word."""
    folder = tmp_path / "gifs"
    folder.mkdir()
    frames = [Image.fromarray(np.full((48, 48), v, np.uint8)) for v in (0, 200, 90)]
    frames[0].save(folder / "a.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(folder / "b.png")
    calls = []

    def available():
        calls.append(1)
        return 5000 if len(calls) == 1 else 10**9

    monkeypatch.setattr(images, "MEMORY_CHECK_BYTES", 1024)
    monkeypatch.setattr(images, "memory_available", available)
    with pytest.raises(Exhausted, match="declares frames of 48 x 48 x 3 uint8"):
        iter_path_frames(folder)


def test_stack_stored_as_one_block_out_of_memory_names_the_file(tmp_path, monkeypatch):
    """Running out of memory while a compressed one-block stack is decoded named no file (the CLI's generic line)."""
    from devolens.io.stacks import open_stack

    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, np.zeros((4, 32, 32), np.uint8), compression="zlib", volumetric=True, tile=(16, 16, 16),
                     photometric="minisblack")

    def no_memory(self, *args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", no_memory)
    frames, n = open_stack(path, z="slices")
    with pytest.raises(Exhausted, match="out of memory while decoding this stack") as exc:
        next(frames)
    assert exc.value.path == path


def test_single_plane_tiff_is_an_image_with_the_well_advice_a_stack_has_planes(tmp_path, monkeypatch):
    from devolens.io.stacks import check_stack_options, stack_info

    monkeypatch.setattr(images, "MEMORY_CHECK_BYTES", 1024)
    monkeypatch.setattr(images, "memory_available", lambda: 5000)
    movie = tmp_path / "movie.tif"
    tifffile.imwrite(movie, np.zeros((3, 80, 80), np.uint8), imagej=True, metadata={"axes": "TYX"})
    with pytest.raises(Exhausted) as exc:
        check_stack_options(stack_info(movie), "project", None, movie)
    assert "declares planes of 80 x 80" in str(exc.value) and "tile make" not in str(exc.value)


def test_header_readers_take_a_position_files_own_series(tmp_path):
    """A multi-position OME set (every file lists all positions): the training data's and tile make's header
    readers read the file's own series, as read_image does (tifffile's first series is the other file's)."""
    from test_io_realworld import _multi_file_ome

    from devolens.data.datasets import image_shape
    from devolens.data.tiling import _grid_size

    first, second = _multi_file_ome(tmp_path)
    assert image_shape(second) == (40, 60)
    assert _grid_size(second, 20, 20, True, 1) == 2 * 3  # 40 x 60 in 20 px tiles; the other file's TYX had none
