"""Decoding takes more than the decoded array: a header's image is weighed with its reader's measured peak
(:func:`devolens.io.images.check_memory`'s ``factor``), and memory running out while decoding names the limit that
is reached with its own remedy (``raise ulimit -v`` under an address-space limit). Nothing here allocates more than
a few kB: the memory available and the limits are stand-ins."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from devolens.io import images
from devolens.io.atomic import Exhausted

GB = 10**9


def _declaring_png(path, width: int, height: int) -> None:
    """A PNG of a few bytes whose header declares ``width`` x ``height`` grey pixels."""
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:20], data[20:24] = width.to_bytes(4, "big"), height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    path.write_bytes(bytes(data))


@pytest.fixture
def address_space(monkeypatch):
    """Only a ``ulimit -v`` limit is known; returns a setter of what it leaves (its limit: 3 GB)."""
    monkeypatch.setattr(images, "_meminfo_available", lambda: 64 * GB)
    monkeypatch.setattr(images, "cgroup_memory_available", lambda: None)
    monkeypatch.delenv(images.NO_CHECK_ENV, raising=False)

    def leaves(n: int) -> None:
        monkeypatch.setattr(images, "address_space_available", lambda: (n, 3 * GB))
    return leaves


def test_a_png_between_once_and_its_decoding_is_refused_before_it_is_decoded(tmp_path, address_space):
    """1.6 GB declared, 1.8 GB left: the array alone fits, its decoding (about 3 x) does not."""
    src = tmp_path / "huge.png"
    _declaring_png(src, 40000, 40000)
    address_space(int(1.8 * GB))
    with pytest.raises(Exhausted) as exc:
        images.read_image(src)
    msg = str(exc.value)
    assert exc.value.exit_code == 75
    assert "40000 x 40000 uint8 values, 1.6 GB decoded, about 4.9 GB while it is decoded" in msg
    assert "more than the 1.8 GB this process's 3.0 GB address-space limit (ulimit -v) leaves; raise ulimit -v" in msg


def test_a_png_whose_decoding_fits_is_not_refused_by_the_check(tmp_path, address_space):
    """5 GB left: the check passes and Pillow goes on to decode (the stand-in file is then found broken)."""
    src = tmp_path / "huge.png"
    _declaring_png(src, 40000, 40000)
    address_space(5 * GB)
    with pytest.raises(Exception) as exc:
        images.read_image(src)
    assert "declares" not in str(exc.value)


def test_check_memory_weighs_the_factor_and_the_files_bytes(address_space):
    address_space(int(1.8 * GB))
    images.check_memory((40000, 40000), np.uint8, "a.png")  # the array alone: as before
    with pytest.raises(Exhausted, match=r"1\.6 GB decoded, about 3\.4 GB while it is decoded"):
        images.check_memory((40000, 40000), np.uint8, "a.tif", factor=images.TIFF_DECODE_FACTOR)
    address_space(2 * GB)  # 900 MB x 2.1: 1.89 GB fits
    images.check_memory((30000, 30000), np.uint8, "a.tif", factor=images.TIFF_DECODE_FACTOR)
    with pytest.raises(Exhausted, match=r"about 2\.1 GB while it is decoded"):  # its compressed bytes besides
        images.check_memory((30000, 30000), np.uint8, "a.tif", factor=images.TIFF_DECODE_FACTOR,
                            extra_bytes=200 * 10**6)


@pytest.mark.parametrize("kind", ["png", "rgb.png", "jpg", "tif", "zlib.tif"])
def test_read_image_weighs_each_readers_peak(tmp_path, address_space, monkeypatch, kind):
    """Small real files, weighed from the first byte: the memory left holds the array once and a half, not what
    its reader takes (3 x and more for Pillow, 2.1 x and the compressed bytes for tifffile)."""
    monkeypatch.setattr(images, "MEMORY_CHECK_BYTES", 0)
    rng = np.random.default_rng(0)
    shape = (100, 120, 3) if kind.startswith("rgb") else (100, 120)
    arr = rng.integers(0, 255, size=shape, dtype=np.uint8)
    src = tmp_path / f"a.{kind}"
    if kind.endswith("tif"):
        tifffile.imwrite(src, arr, compression="zlib" if kind.startswith("zlib") else None)
    else:
        Image.fromarray(arr).save(src, "JPEG" if kind == "jpg" else "PNG")
    address_space(int(arr.nbytes * 1.5))
    with pytest.raises(Exhausted, match="while it is decoded"):
        images.read_image(src)
    address_space(arr.nbytes * 8 + src.stat().st_size)
    assert images.read_image(src).shape == shape


def test_pillows_factor_is_the_measured_sum():
    """The modes' peaks measured (Pillow 13; images._pillow_decode_factor's docstring), to 0.05 x over."""
    f = images._pillow_decode_factor
    assert f("L", 1, 1) == pytest.approx(3.05)
    assert f("RGB", 3, 1) == pytest.approx(3.38, abs=0.01)
    assert f("RGBA", 4, 1) == pytest.approx(3.05)
    assert f("I;16", 1, 2) == pytest.approx(3.05)
    assert f("P", 3, 1, images._pillow_converted("P", False, {})) == pytest.approx(3.72, abs=0.01)
    assert f("P", 1, 1, images._pillow_converted("P", True, {})) == pytest.approx(3.05)
    assert f("LA", 1, 1, images._pillow_converted("LA", False, {})) == pytest.approx(7.05)
    assert f("RGB", 3, 1, 0, turned=True) == pytest.approx(4.72, abs=0.01)


def test_out_of_memory_under_ulimit_v_says_raise_it(monkeypatch):
    import resource

    monkeypatch.setattr(images, "_meminfo_available", lambda: 64 * GB)
    monkeypatch.setattr(images, "cgroup_memory_available", lambda: None)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (3 * GB, resource.RLIM_INFINITY))
    exc = images.out_of_memory("decoding this image", "huge.png", ", or cut it into smaller images")
    assert isinstance(exc, Exhausted) and exc.exit_code == 75
    assert str(exc) == ("huge.png: out of memory while decoding this image: this process's 3.0 GB address-space limit "
                        "(ulimit -v) is reached; raise ulimit -v, or cut it into smaller images")


def test_out_of_memory_under_a_job_limit_asks_for_more_memory(monkeypatch):
    monkeypatch.setattr(images, "_meminfo_available", lambda: 64 * GB)
    monkeypatch.setattr(images, "cgroup_memory_available", lambda: (GB // 2, 2 * GB))
    monkeypatch.setattr(images, "address_space_available", lambda: None)
    msg = str(images.out_of_memory("decoding this image", "huge.png"))
    assert msg == ("huge.png: out of memory while decoding this image: this job's 2.0 GB memory limit (cgroup) is "
                   "reached; ask for more memory for the job or container (sbatch --mem, docker run --memory)")


def test_out_of_memory_without_a_limit_is_the_machines_memory(monkeypatch):
    monkeypatch.setattr(images, "_meminfo_available", lambda: 2 * GB)
    monkeypatch.setattr(images, "cgroup_memory_available", lambda: None)
    monkeypatch.setattr(images, "address_space_available", lambda: None)
    assert str(images.out_of_memory("decoding this image", "a.png")) == (
        "a.png: out of memory while decoding this image: free memory or run it where more is free")
    monkeypatch.setattr(images, "_meminfo_available", lambda: None)  # other systems: nothing known
    assert str(images.out_of_memory("decoding this image", "a.png")) == (
        "a.png: out of memory while decoding this image: free memory or run it where more is free")


def test_a_decoding_that_runs_out_under_ulimit_v_is_one_error_naming_it(tmp_path, monkeypatch):
    """A MemoryError in Pillow's decoder (the check skipped): Exhausted, exit 75, ``raise ulimit -v``."""
    import resource

    from PIL import ImageFile

    src = tmp_path / "a.png"
    Image.new("L", (16, 16)).save(src)
    monkeypatch.setattr(images, "_meminfo_available", lambda: 64 * GB)
    monkeypatch.setattr(images, "cgroup_memory_available", lambda: None)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (3 * GB, resource.RLIM_INFINITY))

    def oom(self, *a, **k):
        raise MemoryError

    monkeypatch.setattr(ImageFile.ImageFile, "load", oom)
    with pytest.raises(Exhausted, match=r"out of memory while decoding this image: this process's 3\.0 GB "
                                        r"address-space limit \(ulimit -v\) is reached; raise ulimit -v") as exc:
        images.read_image(src)
    assert exc.value.exit_code == 75
