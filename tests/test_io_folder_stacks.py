"""A folder of TIFF stacks (one z-stack per time point) and folder members that are not images."""

import numpy as np
import pytest
import tifffile

from devolens.errors import DevolensError
from devolens.io.frames import iter_path_frames


def _zstack(path, value, planes=4, bright=2):
    z = np.full((planes, 12, 16), 10, np.uint8)
    z[bright, 3:6, 4:8] = value  # the projection shows this plane's spot
    tifffile.imwrite(path, z, imagej=True, metadata={"axes": "ZYX"})


def test_folder_of_z_stacks_gives_one_projection_per_file(tmp_path):
    for t in (1, 2, 10):
        _zstack(tmp_path / f"t{t}.tif", 100 + t)
    tifffile.imwrite(tmp_path / "t11.tif", np.full((12, 16), 7, np.uint8))  # a plain image beside them
    frames, names, total = iter_path_frames(tmp_path)
    assert names == ["t1.tif", "t2.tif", "t10.tif", "t11.tif"] and total == 4  # natural order
    got = list(frames)
    assert [f.shape for f in got] == [(12, 16)] * 4
    assert [int(f.max()) for f in got] == [101, 102, 110, 7]
    frames, names, total = iter_path_frames(tmp_path, stack_z="slices")
    assert total == 13 and names[:5] == ["t1_0000.tif", "t1_0001.tif", "t1_0002.tif", "t1_0003.tif", "t2_0000.tif"]
    assert len(list(frames)) == 13
    with pytest.raises(DevolensError, match="t1.tif.*channel"):
        iter_path_frames(tmp_path, channel=3)


def test_folder_members_that_are_not_2d_images_are_named(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8), np.uint8))
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((1, 300), np.uint8))
    frames, _, _ = iter_path_frames(tmp_path)
    assert next(frames).shape == (8, 8)
    with pytest.raises(DevolensError, match=r"b\.tif: image too small: 1 x 300"):
        next(frames)


def test_segment_cli_on_a_folder_of_z_stacks(tmp_path, capsys):
    from devolens.cli import main

    folder = tmp_path / "stacks"
    folder.mkdir()
    for t in (1, 2):
        _zstack(folder / f"t{t:03d}.tif", 200)
    out = tmp_path / "out"
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--diameter", "none"]) == 0
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["t001_labels.tif", "t002_labels.tif"]
    assert tifffile.imread(out / "labels" / "t001_labels.tif").shape == (12, 16)
    rows = (out / "counts.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["t001", "t002"]


def test_folder_of_animated_gifs_gives_every_frame(tmp_path):
    import imageio.v3 as iio

    movie = np.zeros((3, 12, 16, 3), np.uint8)
    for k in range(3):
        movie[k, 2:5, 3 + k:6 + k] = 50 + 50 * k  # a spot that moves and brightens
    iio.imwrite(tmp_path / "b.gif", movie, duration=100, loop=0)
    iio.imwrite(tmp_path / "a.gif", movie[0])  # one frame: an image
    frames, names, total = iter_path_frames(tmp_path)
    assert names == ["a.gif", "b_0000.gif", "b_0001.gif", "b_0002.gif"] and total == 4
    got = list(frames)
    assert len(got) == 4 and all(f.shape[:2] == (12, 16) for f in got)
    assert [int(f[..., 0].max()) // 10 for f in got[1:]] == [5, 10, 15]  # every frame, in order, not the first thrice
    assert np.argmax(got[3][3, :, 0]) > np.argmax(got[1][3, :, 0])


def test_animated_webp_gives_every_frame_alone_and_in_a_folder(tmp_path):
    from PIL import Image

    from devolens.io.frames import open_animated

    movie = np.zeros((3, 12, 16, 3), np.uint8)
    for k in range(3):
        movie[k, 2:5, 3 + k:6 + k] = 50 + 50 * k  # a spot that moves and brightens
    ims = [Image.fromarray(m) for m in movie]
    ims[0].save(tmp_path / "b.webp", save_all=True, append_images=ims[1:], duration=100, loop=0, lossless=True)
    ims[0].save(tmp_path / "a.webp", lossless=True)  # one frame: an image
    frames, n, fps = open_animated(tmp_path / "b.webp")
    assert n == 3 and fps == pytest.approx(10.0)
    np.testing.assert_array_equal(np.stack(list(frames)), movie)  # lossless: every frame exactly, in order
    frames, names, total = iter_path_frames(tmp_path / "b.webp")
    assert names is None and total == 3 and len(list(frames)) == 3
    frames, names, total = iter_path_frames(tmp_path)
    assert names == ["a.webp", "b_0000.webp", "b_0001.webp", "b_0002.webp"] and total == 4
    got = list(frames)
    np.testing.assert_array_equal(np.stack(got[1:]), movie)
    with pytest.raises(DevolensError, match="single image"):  # a still WebP is not a sequence of frames
        iter_path_frames(tmp_path / "a.webp")


def test_folder_with_a_corrupt_gif_names_it(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 8), np.uint8))
    (tmp_path / "b.gif").write_bytes(b"GIF89a not really")
    frames, names, _ = iter_path_frames(tmp_path)
    assert names == ["a.tif", "b.gif"]
    next(frames)
    with pytest.raises(DevolensError, match=r"b\.gif"):
        next(frames)
