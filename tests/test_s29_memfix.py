"""Mends of the memory guard: a cgroup's file cache (active too) and reclaimable slab count as free, a limit of 0 or
below is none, DEVOLENS_NO_MEMORY_CHECK=1 skips the check; the refusal's advice in words; Pillow's bomb warning
silenced only while devolens opens a file (the header readers of tile make and the datasets too); a folder's
commit names no file for a failure before its renames; ``models --json``'s input an object; a giant well TIFF is
read in bands by ``tile make`` whatever the memory available."""

from __future__ import annotations

import errno
import io
import json
import os
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io import atomic, images
from devolens.io.atomic import Exhausted, StagedDir

GB = 10**9
PILLOW_DEFAULT = 89478485  # Image.MAX_IMAGE_PIXELS in a fresh process


@pytest.fixture(autouse=True)
def _checked(monkeypatch):
    monkeypatch.delenv("DEVOLENS_NO_MEMORY_CHECK", raising=False)


def _write(folder: Path, **files) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_", ".", 1)).write_text(f"{text}\n")


def _proc(tmp_path: Path, text: str) -> str:
    path = tmp_path / "proc_cgroup"
    path.write_text(text)
    return str(path)


def _declaring_png(path: Path, width: int, height: int, mode: str = "L") -> Path:
    """A PNG of a few hundred bytes whose header declares ``width`` x ``height`` pixels; its EXIF (orientation 1)
    before the pixels, as a camera's (read without decoding them)."""
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 1
    Image.new(mode, (8, 8)).save(buf, "PNG", exif=exif)
    data = bytearray(buf.getvalue())
    data[16:20], data[20:24] = width.to_bytes(4, "big"), height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    return path


# 1. what a cgroup leaves: the file cache, active and inactive, and reclaimable slab are free -------------------


def test_cgroup_v2_active_file_cache_and_reclaimable_slab_count_as_free(tmp_path):
    """A job whose cache holds the input, the weights and torch's libraries (active_file) was left 0.6 GB of its
    4 GB: an image that fits was refused."""
    root = tmp_path / "cg"
    stat = (f"anon {int(0.5 * GB)}\nfile {3 * GB}\nactive_file {int(2.9 * GB)}\ninactive_file {int(0.1 * GB)}\n"
            "slab_reclaimable 0\nslab_unreclaimable 12345\n")
    _write(root / "job", memory_max=4 * GB, memory_current=int(3.5 * GB), memory_stat=stat)
    proc = _proc(tmp_path, "0::/job\n")
    assert images.cgroup_memory_available(proc, str(root)) == (int(3.5 * GB), 4 * GB)
    _write(root / "job", memory_stat=stat.replace("slab_reclaimable 0", f"slab_reclaimable {GB // 5}"))
    assert images.cgroup_memory_available(proc, str(root)) == (int(3.7 * GB), 4 * GB)


def test_cgroup_v1_total_active_file_counts_as_free(tmp_path):
    """v1 as a Slurm node shows it: 11.0 GB used, of which 4.4 GB inactive and 4.1 GB active file cache (2.5 GB
    rss)."""
    root = tmp_path / "cg"
    job = root / "memory" / "slurm" / "job_3"
    stat = (f"rss {25 * GB // 10}\ncache {85 * GB // 10}\nactive_file 1\ninactive_file 2\n"
            f"hierarchical_memory_limit {16 * GB}\ntotal_rss {25 * GB // 10}\ntotal_active_file {41 * GB // 10}\n"
            f"total_inactive_file {44 * GB // 10}\n")
    _write(job, memory_limit_in_bytes=16 * GB, memory_usage_in_bytes=11 * GB, memory_stat=stat)
    got = images.cgroup_memory_available(_proc(tmp_path, "5:memory:/slurm/job_3\n"), str(root))
    assert got == (135 * GB // 10, 16 * GB)


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_a_limit_of_zero_or_below_is_none(tmp_path, monkeypatch, limit):
    """An emulated cgroup file's -1 was a "-0 MB memory limit" refusing every array of 64 MiB."""
    root = tmp_path / "cg"
    _write(root / "job", memory_max=limit, memory_current=GB, memory_stat="inactive_file 0")
    proc = _proc(tmp_path, "0::/job\n")
    assert images.cgroup_memory_available(proc, str(root)) is None
    v1 = root / "memory" / "job"
    _write(v1, memory_limit_in_bytes=limit, memory_usage_in_bytes=GB, memory_stat="total_inactive_file 0")
    assert images.cgroup_memory_available(_proc(tmp_path, "4:memory:/job\n"), str(root)) is None
    # memory.stat's limit set where the file says none: that one
    _write(v1, memory_stat=f"hierarchical_memory_limit {3 * GB}\ntotal_inactive_file 0")
    assert images.cgroup_memory_available(_proc(tmp_path, "4:memory:/job\n"), str(root)) == (2 * GB, 3 * GB)
    # through the check: only MemAvailable counts
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemAvailable: {8 * GB // 1024} kB\n")
    monkeypatch.setattr(images, "PROC_MEMINFO", str(meminfo))
    monkeypatch.setattr(images, "PROC_CGROUP", _proc(tmp_path, "0::/job\n"))
    monkeypatch.setattr(images, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(images, "address_space_available", lambda: None)
    assert images.memory_available() == 8 * GB // 1024 * 1024
    images.check_memory((1000, 1000, 100), np.uint8, "stack.tif")  # 100 MB


@pytest.fixture
def little_memory(monkeypatch):
    """Every array over 1 kB weighs more than the memory available (5 kB)."""
    monkeypatch.setattr(images, "MEMORY_CHECK_BYTES", 1024)
    monkeypatch.setattr(images, "memory_available", lambda: 5000)


@pytest.mark.parametrize("value", ["1", "yes"])
def test_no_memory_check_switch(tmp_path, monkeypatch, little_memory, value):
    """MemAvailable does not count ZFS's ARC, nor swap: DEVOLENS_NO_MEMORY_CHECK=1 reads the image anyway."""
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    with pytest.raises(Exhausted, match=r"or set DEVOLENS_NO_MEMORY_CHECK=1 to try anyway; a well image"):
        images.read_image(path)
    monkeypatch.setenv("DEVOLENS_NO_MEMORY_CHECK", "0")
    with pytest.raises(Exhausted):
        images.read_image(path)
    monkeypatch.setenv("DEVOLENS_NO_MEMORY_CHECK", value)
    assert images.read_image(path).shape == (64, 64)
    images.check_memory((10**6, 10**6), np.uint8, path)


def test_no_memory_check_switch_in_a_command(tiny_zoo, tmp_path, monkeypatch, little_memory, capsys):
    src = tmp_path / "movie.tif"
    tifffile.imwrite(src, np.zeros((2, 80, 80), np.uint8), imagej=True, metadata={"axes": "TYX"})
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "refused")]) == 75
    assert "DEVOLENS_NO_MEMORY_CHECK=1" in capsys.readouterr().err
    monkeypatch.setenv("DEVOLENS_NO_MEMORY_CHECK", "1")
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "seg")]) == 0
    assert (tmp_path / "seg" / "counts.csv").is_file()


# 3. the refusal's advice in words ---------------------------------------------------------------------------


ADVICE = "a well image saved as TIFF is read in bands by `devolens tile make` and `devolens segment livedead`"


def test_refusals_advice_is_a_clause(tmp_path, little_memory):
    png = tmp_path / "well.png"
    Image.fromarray(np.zeros((80, 100), np.uint8)).save(png)
    tif = tmp_path / "well.tif"
    tifffile.imwrite(tif, np.zeros((80, 100), np.uint8))
    tail = (": more than the 0 MB of memory available; free memory or run it where more is free, or cut it into "
            f"smaller images, or set DEVOLENS_NO_MEMORY_CHECK=1 to try anyway; {ADVICE}")
    for path in (png, tif):
        with pytest.raises(Exhausted) as exc:
            images.read_image(path)
        assert str(exc.value) == f"{path}: the file declares an image of 80 x 100 uint8 values, 0 MB decoded{tail}"


def test_past_pillows_limit_advice_is_a_clause(tmp_path):
    src = _declaring_png(tmp_path / "huge.png", 50000, 50000, mode="1")
    with pytest.raises(DevolensError) as exc:
        images.read_image(src)
    assert str(exc.value).endswith(f"(a decompression bomb?); cut it into smaller images, or save it as TIFF ({ADVICE})")


# 5. Pillow's limits for devolens' opens only --------------------------------------------------------------------


def test_header_readers_use_devolens_limits(tmp_path, monkeypatch):
    """tile make's progress total (_grid_size) and the datasets' image_shape opened a 10000 x 10000 PNG with
    Pillow's default limit: its two-line DecompressionBombWarning was printed."""
    from devolens.data.datasets import image_shape
    from devolens.data.tiling import _grid_size

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", PILLOW_DEFAULT)
    src = _declaring_png(tmp_path / "well.png", 10000, 10000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _grid_size(src, 1000, 1000, True, 2) == 100
        assert image_shape(src) == (10000, 10000)
    assert [str(w.message) for w in caught] == []


def test_bomb_warning_silenced_only_while_devolens_opens(tmp_path, little_memory):
    """The warning was ignored for the whole process once devolens had read an image (an application importing
    devolens lost it for its own files); now only while devolens opens one, even where warnings are errors."""
    src = _declaring_png(tmp_path / "big.png", 33000, 33000)  # between 2^30 and 2^31 pixels
    limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        before = list(warnings.filters)
        with pytest.raises(Exhausted):  # opened, weighed, refused: not the warning raised as an error
            images.read_image(src)
        assert warnings.filters == before
        # the application's own open: Pillow's own limit, which devolens no longer raises for the process (thirtieth
        # session; the warning showed only because it had)
        with pytest.raises((Image.DecompressionBombError, Image.DecompressionBombWarning)):
            Image.open(src)
        assert Image.MAX_IMAGE_PIXELS == limit  # put back after devolens' open


def test_bomb_filter_leaves_no_trace_when_another_thread_swaps_the_filters():
    """Another thread's catch_warnings entering (a copy of the filters) or leaving (the list put back) while
    devolens opens a file: the entry goes from both lists."""
    category = Image.DecompressionBombWarning
    entry = ("ignore", None, category, None, 0)
    with warnings.catch_warnings():
        first = warnings.filters
        with images._bomb_warning_ignored(category):
            assert warnings.filters[0] == entry
            warnings.filters = list(first)  # another thread's catch_warnings enters
            copy = warnings.filters
        assert entry not in first and entry not in copy


# 4. a folder's commit: a failure before an entry's renames names no file ---------------------------------------


def test_commit_failure_before_renames_does_not_name_the_previous_file(tmp_path, monkeypatch):
    """The aside folder refused (mkdtemp) after a new file went in: the error named that file and asked whether it
    was open in another program."""
    dest = tmp_path / "seg"
    dest.mkdir()
    (dest / "counts.csv").write_text("old counts")
    stage = StagedDir(dest)
    for name in ("a.png", "counts.csv"):
        (stage.tmp / name).write_text("new")

    def mkdtemp(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(atomic.tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(DevolensError) as exc:
        stage.commit()
    assert str(exc.value) == f"{dest}: cannot write output: Permission denied"
    assert os.listdir(dest) == ["counts.csv"] and (dest / "counts.csv").read_text() == "old counts"


# 6. models --json -----------------------------------------------------------------------------------------------


def test_models_json_input_is_an_object_and_no_version(capsys):
    from devolens.cli.models import _listing
    from devolens.models import zoo

    if "identity" not in zoo.available():
        pytest.skip("no identity model shipped")
    doc = _listing(zoo.available())
    for m in doc["models"]:
        assert isinstance(m["input"], dict) and "version" not in m
    identity = next(m for m in doc["models"] if m["name"] == "identity")
    assert identity["input"] == {"text": zoo.card("identity")["input"]}


# 7. a giant well TIFF is read in bands by tile make, whatever the memory available --------------------------------


def test_tile_make_reads_a_well_larger_than_the_memory_in_bands(tmp_path, little_memory, capsys):
    from devolens.render.wells import simulate_well

    w = simulate_well(seed=1, size=(256, 256))
    image, labels = tmp_path / "w.tif", tmp_path / "wl.tif"
    tifffile.imwrite(image, w.image)
    tifffile.imwrite(labels, w.labels)
    with pytest.raises(Exhausted):  # whole, it is refused
        images.read_image(image)
    out = tmp_path / "t.h5"
    assert main(["tile", "make", str(image), "--labels", str(labels), "--out", str(out), "--tile", "64",
                 "--keep", "all"]) == 0
    import h5py

    with h5py.File(out, "r") as f:
        assert f["images"].shape == (16, 2, 64, 64)
        assert np.array_equal(f["images"][0], w.image[:, :64, :64])
