"""read_image: 16-bit colour PNGs at their full depth (Fiji/ZEN/NIS colour exports), WebP, the other PNGs as before."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError
from devolens.io.images import IMAGE_SUFFIXES, read_image


def _rgb16(h=13, w=17, channels=3, seed=0) -> np.ndarray:
    arr = np.random.default_rng(seed).integers(0, 65536, (h, w, channels), dtype=np.uint16)
    arr[0, 0, :3] = (1, 256, 65535)  # lower byte only, upper byte only, both
    return arr


def _write_png16(arr: np.ndarray, path: Path) -> Path:
    """A 16-bit RGB(A) PNG written by OpenCV (which takes BGR(A))."""
    import cv2

    order = [2, 1, 0] if arr.shape[2] == 3 else [2, 1, 0, 3]
    assert cv2.imwrite(str(path), np.ascontiguousarray(arr[..., order]))
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _with_chunk(path: Path, kind: bytes, data: bytes, out: Path) -> Path:
    """The PNG ``path`` with one more chunk just before its image data, as ``out``."""
    png = path.read_bytes()
    at = png.index(b"IDAT") - 4
    out.write_bytes(png[:at] + _chunk(kind, data) + png[at:])
    return out


def _exif_orientation(value: int) -> bytes:
    """An eXIf chunk's data (a bare TIFF header, no ``Exif\\0\\0``) saying EXIF orientation ``value``."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = value
    raw = exif.tobytes()
    return raw[6:] if raw.startswith(b"Exif\x00\x00") else raw


def _pillow_8bit(path: Path) -> np.ndarray:
    """What Pillow alone makes of a PNG (how read_image read a 16-bit colour PNG before: upper bytes)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im))


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_png_is_read_at_full_depth_in_rgb_order(tmp_path, channels):
    arr = _rgb16(channels=channels)
    got = read_image(_write_png16(arr, tmp_path / "c16.png"))
    assert got.dtype == np.uint16 and got.shape == arr.shape and got.flags.c_contiguous
    assert np.array_equal(got, arr)
    # the same image as the 8-bit read gave it, only with its lower bytes (no rescale, no channel swap)
    assert np.array_equal(got >> 8, _pillow_8bit(tmp_path / "c16.png"))


def test_16bit_colour_png_by_content_and_with_any_name(tmp_path):
    arr = _rgb16()
    _write_png16(arr, tmp_path / "x.png")
    for name in ("saved as.tif", "émbryo_ß.png"):
        (tmp_path / name).write_bytes((tmp_path / "x.png").read_bytes())
        assert np.array_equal(read_image(tmp_path / name), arr)


def test_16bit_rgb_png_with_transparent_colour_stays_rgb(tmp_path):
    arr = _rgb16()
    src = _write_png16(arr, tmp_path / "c16.png")
    trns = _with_chunk(src, b"tRNS", struct.pack(">HHH", *(int(v) for v in arr[1, 1])), tmp_path / "t.png")
    got = read_image(trns)
    assert got.shape == arr.shape and np.array_equal(got, arr)  # as an 8-bit RGB PNG with tRNS: RGB


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16bit_colour_png_turned_as_its_exif_orientation_says(tmp_path, orientation):
    arr = _rgb16(5, 8)
    src = _write_png16(arr, tmp_path / "c16.png")
    png = _with_chunk(src, b"eXIf", _exif_orientation(orientation), tmp_path / f"o{orientation}.png")
    got = read_image(png)
    expected = _pillow_8bit(png)  # Pillow's turn of the same image (8-bit)
    assert got.dtype == np.uint16 and got.shape == expected.shape
    assert np.array_equal(got >> 8, expected)
    assert sorted(got.ravel().tolist()) == sorted(arr.ravel().tolist())  # full depth kept


def test_truncated_16bit_colour_png_is_a_clear_error(tmp_path):
    src = _write_png16(_rgb16(64, 64), tmp_path / "c16.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(DevolensError, match="cannot read"):
        read_image(cut)


def test_other_pngs_read_as_before(tmp_path):
    """8-bit RGB/RGBA, grey 8/16-bit, grey + alpha and palette PNGs: untouched by the 16-bit colour reader."""
    from PIL import Image

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)
    g8 = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    g16 = rng.integers(0, 65536, (9, 11), dtype=np.uint16)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(g8).save(tmp_path / "g8.png")
    Image.fromarray(g16).save(tmp_path / "g16.png")
    Image.fromarray(np.dstack([g8, g8[::-1]])).save(tmp_path / "la.png")
    pal = Image.fromarray(g8 % 4).convert("P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    pal.save(tmp_path / "pal.png")
    for name, want in (("rgb", rgb), ("rgba", rgba), ("g8", g8), ("g16", g16), ("la", g8)):
        got = read_image(tmp_path / f"{name}.png")
        assert got.dtype == want.dtype and np.array_equal(got, want), name
    assert np.array_equal(read_image(tmp_path / "pal.png", indices=True), g8 % 4)
    colours = read_image(tmp_path / "pal.png")
    assert colours.dtype == np.uint8 and colours.shape == (9, 11, 3)
    assert np.array_equal(colours[g8 % 4 == 1], np.tile([255, 0, 0], ((g8 % 4 == 1).sum(), 1)))


def test_16bit_colour_png_goes_through_the_channel_picker():
    from devolens.predict.postprocess import _one_channel, to_single_channel

    arr = np.zeros((40, 50, 3), np.uint16)
    arr[10:20, 10:20, 1] = 60000
    arr[..., 0] = 300
    green = _one_channel(arr)
    assert green.dtype == np.uint16 and np.array_equal(green, arr[..., 1])
    assert to_single_channel(arr).dtype == np.float32
    assert np.array_equal(to_single_channel(arr, "red"), np.full((40, 50), 300, np.float32))


def test_segment_nuclei_on_a_16bit_colour_png(tiny_zoo, tmp_path):
    """The CLI runs on it, and finds what it finds in the same nuclei saved as a 16-bit grey PNG."""
    from PIL import Image

    from devolens.cli import main

    h, w = 48, 70
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:h, :w]
    img = np.zeros((h, w))
    for _ in range(5):
        cy, cx = rng.uniform(5, h - 5), rng.uniform(5, w - 5)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20.0)
    nuclei = (np.clip(img, 0, 1) * 3000 + rng.integers(0, 600, (h, w))).astype(np.uint16)  # 12-bit camera
    colour = np.zeros((h, w, 3), np.uint16)
    colour[..., 1] = nuclei
    colour[..., 0] = 40  # a weak, even red
    _write_png16(colour, tmp_path / "c16.png")
    Image.fromarray(nuclei).save(tmp_path / "g16.png")
    for name in ("c16", "g16"):
        assert main(["segment", "nuclei", str(tmp_path / f"{name}.png"), "--out", str(tmp_path / name)]) == 0
    a = tifffile.imread(tmp_path / "c16" / "labels" / "c16_labels.tif")
    b = tifffile.imread(tmp_path / "g16" / "labels" / "g16_labels.tif")
    assert a.shape == (h, w) and np.array_equal(a, b)
    # and the network's input is the same, to the bit (the 8-bit read kept only the upper bytes: 0..14 here)
    from devolens.predict.postprocess import prepare_image

    c16, g16 = read_image(tmp_path / "c16.png"), read_image(tmp_path / "g16.png")
    kw = dict(channel="auto", scale=0.5, percentiles=(1.0, 99.8), flatten=12.0, outliers=0.5)
    assert np.array_equal(prepare_image(c16, **kw), prepare_image(g16, **kw))


webp = pytest.mark.skipif(not __import__("PIL.features").features.check("webp"), reason="Pillow without WebP")


@webp
def test_webp_is_a_readable_image(tmp_path):
    from PIL import Image

    from devolens.io.frames import FOLDER_SUFFIXES
    from devolens.io.frames import IMAGE_SUFFIXES as SINGLE_IMAGE_SUFFIXES

    assert ".webp" in IMAGE_SUFFIXES and ".webp" in SINGLE_IMAGE_SUFFIXES and ".webp" in FOLDER_SUFFIXES
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (12, 16, 4), dtype=np.uint8)
    rgba[..., 3] = np.maximum(rgba[..., 3], 1)  # a fully transparent pixel may lose its colour in WebP
    Image.fromarray(rgb).save(tmp_path / "a.webp", lossless=True)
    Image.fromarray(rgba).save(tmp_path / "b.WEBP", lossless=True, exact=True)
    got = read_image(tmp_path / "a.webp")
    assert got.dtype == np.uint8 and np.array_equal(got, rgb)
    assert np.array_equal(read_image(tmp_path / "b.WEBP"), rgba)


@webp
def test_folder_of_webp_frames(tmp_path):
    from PIL import Image

    from devolens.io.frames import iter_path_frames

    folder = tmp_path / "frames"
    folder.mkdir()
    frames = [np.random.default_rng(i).integers(0, 256, (10, 14, 3), dtype=np.uint8) for i in range(3)]
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"t{i + 1}.webp", lossless=True)
    it, names, total = iter_path_frames(folder)
    got = list(it)
    assert total == 3 and list(names) == ["t1.webp", "t2.webp", "t3.webp"]
    assert all(np.array_equal(g, f) for g, f in zip(got, frames))


@webp
def test_segment_nuclei_on_a_webp(tiny_zoo, tmp_path):
    from PIL import Image

    from devolens.cli import main

    rng = np.random.default_rng(5)
    img = np.zeros((40, 56, 3), np.uint8)
    img[..., 1] = rng.integers(0, 256, (40, 56), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "w.webp", lossless=True)
    assert main(["segment", "nuclei", str(tmp_path / "w.webp"), "--out", str(tmp_path / "o")]) == 0
    assert tifffile.imread(tmp_path / "o" / "labels" / "w_labels.tif").shape == (40, 56)


def _png(path, width, height, colour_type, samples):
    """A hand-made 16-bit PNG (no writer at hand makes grey + alpha at 16 bits)."""
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    data = samples.astype(">u2")
    raw = b"".join(b"\x00" + data[y].tobytes() for y in range(height))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0,
                                                                       0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def test_grey_alpha_16_bit_png_keeps_its_depth(tmp_path):
    """Pillow reads 16-bit grey + alpha as 8-bit RGBA (upper bytes): a 300-label mask read as 1 label."""
    from devolens.data.datasets import read_mask

    grey = (np.arange(13 * 17).reshape(13, 17) * 300 % 65536).astype(np.uint16)
    alpha = np.full_like(grey, 65535)
    path = _png(tmp_path / "ga.png", 17, 13, 4, np.stack([grey, alpha], -1))
    out = read_image(path)
    assert out.dtype == np.uint16 and np.array_equal(out, grey)
    labels = np.arange(13 * 17).reshape(13, 17).astype(np.uint16)
    mask = read_mask(_png(tmp_path / "lab.png", 17, 13, 4, np.stack([labels, alpha], -1)))
    assert len(np.unique(mask[mask > 0])) == 13 * 17 - 1


def test_big_pngs_pass_pillows_decompression_bomb_guard(tmp_path, monkeypatch):
    """A stitched well saved as PNG above 179 M pixels was refused as a "decompression bomb"."""
    import cv2
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # as if the image were beyond Pillow's default
    cv2.imwrite(str(tmp_path / "big.png"), np.full((100, 100), 7, np.uint8))
    assert read_image(tmp_path / "big.png").shape == (100, 100)


def test_lossy_webp_masks_are_refused_lossless_read(tmp_path):
    from PIL import Image

    from devolens.data.datasets import read_mask

    cls = (np.random.default_rng(0).random((64, 64)) > 0.5).astype(np.uint8) * 255
    Image.fromarray(cls).save(tmp_path / "lossy.webp", quality=50)
    Image.fromarray(cls).save(tmp_path / "exact.webp", lossless=True)
    with pytest.raises(DevolensError, match="lossy WebP"):
        read_mask(tmp_path / "lossy.webp")
    assert np.array_equal(read_mask(tmp_path / "exact.webp") > 0, cls > 0)


def test_16bit_colour_png_with_a_broken_colour_profile_reads_quietly(tmp_path, capfd):
    """libpng prints warnings on stderr for a broken iCCP chunk (e.g. 'iCCP: too short'): the profile is not used
    here, so it is left out of what OpenCV decodes; the pixels are the same as without it."""
    from devolens.io.images import _without_chunks

    arr = _rgb16()
    src = _write_png16(arr, tmp_path / "c16.png")
    bad = _with_chunk(src, b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(b"not a profile" * 9), tmp_path / "icc.png")
    capfd.readouterr()
    got = read_image(bad)
    assert np.array_equal(got, arr) and "libpng" not in capfd.readouterr().err
    assert _without_chunks(bad.read_bytes(), b"iCCP") == src.read_bytes()  # every other chunk kept, in order
    cut = bad.read_bytes()[:-5]  # a truncated file: what follows the last whole chunk is kept for the decoder
    assert _without_chunks(cut, b"iCCP") == src.read_bytes()[:-5]
