"""Images larger than the memory available are refused before they are decoded (exit 75); ``devolens models --json``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io import images
from devolens.io.atomic import EX_TEMPFAIL, Exhausted
from devolens.io.frames import iter_path_frames, open_animated
from devolens.io.images import read_image

SRC = Path(__file__).resolve().parents[1] / "src"


def _declaring_png(path: Path, width: int, height: int, mode: str = "1") -> Path:
    """A PNG of a few hundred bytes whose header (IHDR) declares ``width`` x ``height`` pixels."""
    buf = io.BytesIO()
    Image.new(mode, (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:20], data[20:24] = width.to_bytes(4, "big"), height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return path


@pytest.fixture
def little_memory(monkeypatch):
    """Every array over 1 kB weighs more than the memory available (5 kB)."""
    monkeypatch.setattr(images, "MEMORY_CHECK_BYTES", 1024)
    monkeypatch.setattr(images, "memory_available", lambda: 5000)


def test_png_declaring_more_than_memory_is_one_line_exit_75_and_no_output(tiny_zoo, tmp_path, capsys, monkeypatch):
    """A 600-byte PNG declaring 20000 x 20000 pixels (1.2 GB once decoded as RGB) was decoded: many GB, or the OOM
    killer without a word. Refused from its header, before any output."""
    src = _declaring_png(tmp_path / "bomb.png", 20000, 20000)
    assert src.stat().st_size < 1000
    monkeypatch.setattr(images, "memory_available", lambda: 512 * 10**6)
    out = tmp_path / "seg"
    code = main(["segment", "nuclei", str(src), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EX_TEMPFAIL == 75
    assert err.count("\n") == 1 and err.startswith(f"error: {src}: the file declares an image of 20000 x 20000 x 3 "
                                                   "uint8 values, 1.2 GB decoded: more than the 512 MB of memory")
    assert "devolens segment livedead" in err  # what to do with a giant well
    assert not out.exists()


def test_tiff_declaring_more_than_memory(tmp_path, little_memory):
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint16), compression="zlib")
    with pytest.raises(Exhausted, match=r"64 x 64 uint16 values, 0 MB decoded: more than the 0 MB") as exc:
        read_image(path)
    assert exc.value.exit_code == 75 and exc.value.path == path


def test_stack_planes_too_large_refused_before_output(tiny_zoo, tmp_path, capsys, little_memory):
    src = tmp_path / "movie.tif"
    tifffile.imwrite(src, np.zeros((3, 80, 80), np.uint8), imagej=True, metadata={"axes": "TYX"})
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out)]) == 75
    err = capsys.readouterr().err
    assert err.startswith(f"error: {src}: the file declares planes of 80 x 80 uint8 values") and err.count("\n") == 1
    assert not out.exists()


def test_stack_stored_as_one_block_too_large(tmp_path, monkeypatch):
    """A compressed stack in one page (volumetric tiles) is decoded whole: weighed whole, as its first frame is read."""
    from devolens.io.stacks import open_stack

    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, np.zeros((4, 32, 32), np.uint8), compression="zlib", volumetric=True, tile=(16, 16, 16),
                     photometric="minisblack")
    monkeypatch.setattr(images, "MEMORY_CHECK_BYTES", 1024)
    monkeypatch.setattr(images, "memory_available", lambda: 2000)  # a plane (1 kB) fits, the stack (4 kB) does not
    frames, n = open_stack(path, z="slices")
    assert n == 4
    with pytest.raises(Exhausted, match="declares a stack stored as one block of 4 x 32 x 32 uint8"):
        next(frames)


def test_png_named_tif_past_pillows_default_limit_is_read(tmp_path, monkeypatch):
    """A 15000 x 15000 PNG saved as .tif was "not a TIFF file (nor any other image format)": its layout was read
    with Pillow's default decompression-bomb limit (179 M pixels), not read_image's."""
    from devolens.io.stacks import stack_info

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89478485)  # Pillow's default, as in a fresh process
    src = _declaring_png(tmp_path / "well.tif", 15000, 15000, mode="L")
    assert stack_info(src).shape == (15000, 15000)


def test_folder_member_too_large_stops_the_run_not_flagged_unreadable(tmp_path, monkeypatch):
    """In a folder read with missing="mark" (segment, population, curate), a member that does not fit in memory is
    the machine's limit, not a damaged file: the run stops (75) instead of flagging it unreadable."""
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(folder / "a.png")
    Image.fromarray(np.zeros((60, 60, 3), np.uint8)).save(folder / "b.png")
    monkeypatch.setattr(images, "MEMORY_CHECK_BYTES", 1024)
    monkeypatch.setattr(images, "memory_available", lambda: 5000)
    frames = iter_path_frames(folder, missing="mark")[0]
    assert next(frames).shape == (30, 30)
    with pytest.raises(Exhausted, match="60 x 60 x 3 uint8"):
        next(frames)


def test_animated_gif_frames_too_large(tmp_path, little_memory):
    path = tmp_path / "movie.gif"
    frames = [Image.fromarray(np.full((48, 48), v, np.uint8)) for v in (0, 200)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(Exhausted, match="declares frames of 48 x 48 x 3 uint8"):
        open_animated(path)


def test_ordinary_images_never_read_the_memory_available(tmp_path, monkeypatch):
    """A 2700 x 3600 well and a 752 x 512 frame are read as before, and the check costs them nothing: the memory
    available is not even read."""
    def boom():
        raise AssertionError("memory_available read for an ordinary image")

    monkeypatch.setattr(images, "memory_available", boom)
    rng = np.random.default_rng(0)
    well = rng.integers(0, 255, (2700, 3600, 3), dtype=np.uint8)
    Image.fromarray(well).save(tmp_path / "well.png", compress_level=0)
    frame = rng.integers(0, 255, (512, 752), dtype=np.uint8)
    Image.fromarray(frame).save(tmp_path / "frame.png")
    stack = rng.integers(0, 65535, (2, 2700, 3600), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "well.tif", stack)
    assert np.array_equal(read_image(tmp_path / "well.png"), well)
    assert np.array_equal(read_image(tmp_path / "frame.png"), frame)
    assert np.array_equal(read_image(tmp_path / "well.tif"), stack)


def test_out_of_memory_while_decoding_is_exit_75(tiny_zoo, tmp_path, capsys, monkeypatch):
    """Memory that runs out in the decoder's copies (not declared): was "cannot read image: " and exit 2."""
    src = tmp_path / "frame.png"
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(src)

    def no_memory(self):
        raise MemoryError()

    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_memory)
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "seg")]) == 75
    err = capsys.readouterr().err
    assert err == f"error: {src}: out of memory while decoding this image: free memory or run it where more is " \
                  "free, or cut it into smaller images\n"


def test_past_pillows_limit_is_said_in_words_exit_2(tmp_path):
    src = _declaring_png(tmp_path / "huge.png", 50000, 50000)
    with pytest.raises(DevolensError, match=r"image too large: its header declares 2500000000 pixels, more than the "
                                            r"2147483648 pixels read from a PNG") as exc:
        read_image(src)
    assert not isinstance(exc.value, Exhausted)  # a limit of the reader: the same anywhere


def test_pillows_bomb_warning_not_printed(tmp_path):
    """Between 2^30 and 2^31 pixels Pillow printed its DecompressionBombWarning (two lines, "could be decompression
    bomb DOS attack") before the error line or the results."""
    src = _declaring_png(tmp_path / "big.png", 33000, 33000)
    code = ("import sys\nfrom devolens.io import images\nimages.memory_available = lambda: 10**6\n"
            "try:\n    images.read_image(sys.argv[1])\nexcept Exception as exc:\n    print(type(exc).__name__)\n")
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONWARNINGS": "default"}
    res = subprocess.run([sys.executable, "-c", code, str(src)], env=env, capture_output=True, text=True)
    assert res.stdout == "Exhausted\n" and res.stderr == ""


def test_memory_available_is_read_on_linux(tmp_path, monkeypatch):
    """/proc/meminfo's MemAvailable (a stand-in file: the machine's own varies, and is 0 in a job at its limit);
    none known (another system, a kernel before 3.14): None, no check."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16314932 kB\nMemFree:          912344 kB\nMemAvailable:    9871234 kB\n"
                       "Buffers:          123456 kB\n")
    monkeypatch.setattr(images, "PROC_MEMINFO", str(meminfo))
    monkeypatch.setattr(images, "cgroup_memory_available", lambda: None)
    monkeypatch.setattr(images, "address_space_available", lambda: None)
    assert images.memory_available() == 9871234 * 1024
    meminfo.write_text("MemTotal:       16314932 kB\nMemFree:          912344 kB\n")
    assert images.memory_available() is None
    monkeypatch.setattr(images, "PROC_MEMINFO", str(tmp_path / "missing"))
    assert images.memory_available() is None
    images.check_memory((100000, 100000), np.uint8, "well.png")  # nothing known: not refused


# devolens models --json -------------------------------------------------------------------------------------


def test_models_json_lists_the_zoo_as_data(capsys):
    from devolens.models import available, zoo

    names = available()
    if not names:
        pytest.skip("no model shipped in src/devolens/models/zoo yet")
    assert main(["models", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # one JSON document, nothing else on stdout
    assert [m["name"] for m in doc["models"]] == names
    for m in doc["models"]:
        card = json.loads((zoo.ZOO_DIR / m["name"] / "card.json").read_text())
        given = card.get("input")
        assert m["task"] == card["task"] and m["input"] == (given if isinstance(given, dict) else {"text": given})
        assert "version" not in m  # no card has one
        assert m["setting"] == (card.get("metrics_setting") or {})
        assert [h["metric"] for h in m["headline"]] == [k for k in card["headline"] if k in card["metrics"]]
        for h in m["headline"]:
            entry = card["metrics"][h["metric"]]
            assert h["value"] == (entry["value"] if isinstance(entry, dict) else entry)
        weights = zoo.ZOO_DIR / m["name"] / "weights.safetensors"
        if weights.is_file():
            assert m["weights"]["bytes"] == weights.stat().st_size
            assert m["weights"]["sha256"] == zoo.weights_sha256(m["name"]) and len(m["weights"]["sha256"]) == 64
        assert m["int8"] == bool((card.get("int8") or {}).get("activations"))


def test_models_json_before_a_sub_command_is_refused(capsys):
    assert main(["models", "--json", "show", "nuclei"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --json before `show` is the listing's") and "show NAME --json" in err
