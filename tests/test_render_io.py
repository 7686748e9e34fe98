import numpy as np
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError
from devolens.io.images import read_image, write_label_tif, write_png
from devolens.io.video import iter_video_frames, video_info, write_video


def test_png_tif_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    g16 = rng.integers(0, 65536, (30, 40), dtype=np.uint16)
    for i, a in enumerate((rgb, grey, g16)):
        p = write_png(a, tmp_path / f"sub/{i}.png")
        b = read_image(p)
        assert b.dtype == a.dtype and np.array_equal(a, b)
    lab = rng.integers(0, 70000, (30, 40)) % 65536
    write_label_tif(lab, tmp_path / "l.tif")
    back = read_image(tmp_path / "l.tif")
    assert back.dtype == np.uint16 and np.array_equal(back, lab)
    write_label_tif(np.array([[70000]]), tmp_path / "w.tif")  # more objects than uint16 numbers: uint32
    assert read_image(tmp_path / "w.tif").dtype == np.uint32
    for bad in (np.array([[-1]]), np.array([[2**33]])):
        with pytest.raises(ValueError):
            write_label_tif(bad, tmp_path / "x.tif")
    assert not (tmp_path / "x.tif").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.tif", "sub", "w.tif"]  # no temp files left


def test_bmp_reads_as_a_file_and_in_a_folder(tiny_zoo, tmp_path):
    from PIL import Image

    from devolens.cli import main
    from devolens.io.frames import iter_path_frames

    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[6:12, 8:14, 1] = 200
    Image.fromarray(rgb).save(tmp_path / "a.bmp")
    Image.fromarray(rgb[..., 1]).save(tmp_path / "b.bmp")
    assert np.array_equal(read_image(tmp_path / "a.bmp"), rgb)
    assert np.array_equal(read_image(tmp_path / "b.bmp"), rgb[..., 1])
    frames, names, _ = iter_path_frames(tmp_path)
    assert names == ["a.bmp", "b.bmp"] and len(list(frames)) == 2
    # a single BMP file as INPUT (it was listed as an image but refused by the reader)
    assert main(["segment", "nuclei", str(tmp_path / "a.bmp"), "--out", str(tmp_path / "seg"),
                 "--diameter", "none"]) == 0
    assert (tmp_path / "seg" / "labels" / "a_labels.tif").is_file()


def test_jpg_and_errors(tmp_path):
    from PIL import Image

    a = np.zeros((16, 16, 3), np.uint8)
    Image.fromarray(a).save(tmp_path / "a.jpg")
    assert read_image(tmp_path / "a.jpg").shape == (16, 16, 3)
    with pytest.raises(DevolensError, match="no such file"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n garbage")
    with pytest.raises(DevolensError, match="cannot read"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(DevolensError):
        read_image(tmp_path / "bad.tif")
    (tmp_path / "a.bmp").write_bytes(b"BM")
    with pytest.raises(DevolensError, match="cannot read"):
        read_image(tmp_path / "a.bmp")
    (tmp_path / "a.heic").write_bytes(b"RIFF")
    with pytest.raises(DevolensError, match="unsupported"):
        read_image(tmp_path / "a.heic")


def test_video_roundtrip_streams(tmp_path):
    frames = [np.full((32, 48, 3), 40 * i, np.uint8) for i in range(5)]
    consumed = []

    def gen():
        for f in frames:
            consumed.append(1)
            yield f

    p = write_video(gen(), tmp_path / "v.mp4", fps=5)
    assert len(consumed) == 5
    it = iter_video_frames(p)
    first = next(it)  # streaming: one frame at a time
    assert first.shape == (32, 48, 3)
    rest = list(it)
    assert len(rest) == 4
    assert abs(int(rest[-1].mean()) - 160) < 10
    assert len(list(iter_video_frames(p, every=2))) == 3
    assert video_info(p)["fps"] == pytest.approx(5)
    import imageio.v2 as iio

    reader = iio.get_reader(p, format="FFMPEG")  # imageio's own reader, which decodes ahead: the same header
    try:
        assert video_info(p) == dict(reader.get_meta_data())
    finally:
        reader.close()


def test_video_errors(tmp_path):
    with pytest.raises(DevolensError):
        list(iter_video_frames(tmp_path / "none.mp4"))
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(DevolensError):
        list(iter_video_frames(tmp_path / "bad.mp4"))
    with pytest.raises(DevolensError, match="cannot read video"):
        video_info(tmp_path / "bad.mp4")
    with pytest.raises(DevolensError):
        write_video(iter([]), tmp_path / "empty.mp4")
    assert not (tmp_path / "empty.mp4").exists()
    with pytest.raises(DevolensError):
        write_video([np.zeros((8, 8, 3), np.uint8), np.zeros((10, 8, 3), np.uint8)], tmp_path / "mix.mp4")
    assert not (tmp_path / "mix.mp4").exists()


def test_video_colours_and_shapes_survive_encoding(tmp_path):
    """Frames go to the encoder as yuv420p converted by OpenCV: colours, odd sizes, grey and RGBA."""
    f = np.full((33, 47, 3), 90, np.uint8)
    f[8:16, :] = (255, 0, 255)   # magenta outlines of the overlays
    f[20:30, 10:30] = (0, 200, 0)
    p = write_video([f] * 3, tmp_path / "c.mp4", fps=5, quality=9)
    out = list(iter_video_frames(p))
    assert len(out) == 3 and out[1].shape == (34, 48, 3)  # padded to even sizes
    back = out[1][:33, :47].astype(int)
    assert np.abs(back[12, 5:40] - (255, 0, 255)).max() < 12
    assert np.abs(back[25, 15:25] - (0, 200, 0)).max() < 12
    assert np.abs(back[2, 2:40] - 90).max() < 6
    grey = write_video([np.full((16, 16), 200, np.uint8)] * 2, tmp_path / "g.mp4", fps=5)
    assert abs(float(next(iter_video_frames(grey)).mean()) - 200) < 4
    rgba = write_video([np.full((16, 16, 4), 60, np.uint8)] * 2, tmp_path / "a.mp4", fps=5)
    assert abs(float(next(iter_video_frames(rgba)).mean()) - 60) < 4
    with pytest.raises(DevolensError):
        write_video([np.zeros((8, 8, 2), np.uint8)], tmp_path / "two.mp4")
    with pytest.raises(DevolensError):
        write_video([np.zeros((8, 8, 3), np.float32)], tmp_path / "float.mp4")
