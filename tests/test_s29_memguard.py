"""The memory available counts a job's or container's limit (cgroup v1, v2) and ``ulimit -v``, and says which it is;
OpenCV's "Insufficient memory" is the one-line out-of-memory error (exit 75); an output that refuses its
replacement (open in Excel, read-only) is asked about."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import _is_out_of_memory, main
from devolens.errors import DevolensError
from devolens.io import atomic, images
from devolens.io.atomic import Exhausted, StagedDir, write_text

GB = 10**9
OPENCV_OOM = ("OpenCV(5.0.0) /io/opencv/modules/core/src/alloc.cpp:73: error: (-4:Insufficient memory) Failed to "
              "allocate 6400000000 bytes in function 'OutOfMemoryError'\n")


# 1. the memory available: cgroup v2, v1, ulimit -v ---------------------------------------------------------------


def _files(folder: Path, **files) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_", ".", 1)).write_text(f"{text}\n")


def _v2(folder: Path, limit, current: int, inactive: int = 0, active: int = 0, slab: int = 0) -> None:
    _files(folder, memory_max=limit, memory_current=current,
           memory_stat=f"anon {current}\nfile {active + inactive}\nactive_file {active}\ninactive_file {inactive}\n"
                       f"slab_reclaimable {slab}\nslab_unreclaimable 7")


@pytest.fixture
def proc(tmp_path):
    """Write /proc/self/cgroup's stand-in; returns its path."""
    def write(text: str) -> str:
        path = tmp_path / "proc_cgroup"
        path.write_text(text)
        return str(path)
    return write


def test_cgroup_v2_leaf_limit_less_use_plus_file_cache(tmp_path, proc):
    root = tmp_path / "cg"
    _v2(root / "system.slice" / "slurmstepd.scope" / "job_42", 4 * GB, 3 * GB, inactive=GB // 2)
    got = images.cgroup_memory_available(proc("0::/system.slice/slurmstepd.scope/job_42\n"), str(root))
    assert got == (int(1.5 * GB), 4 * GB)


def test_cgroup_v2_the_tightest_limit_up_the_tree(tmp_path, proc):
    """A step with no limit of its own (``max``) in a job with one: the job's; a parent's tighter one wins."""
    root, path = tmp_path / "cg", "0::/job_7/step_0\n"
    _v2(root / "job_7" / "step_0", "max", GB)
    _v2(root / "job_7", 8 * GB, 6 * GB)
    assert images.cgroup_memory_available(proc(path), str(root)) == (2 * GB, 8 * GB)
    _v2(root / "job_7" / "step_0", 16 * GB, GB)  # the step's own limit leaves more than its job's
    assert images.cgroup_memory_available(proc(path), str(root)) == (2 * GB, 8 * GB)
    _v2(root / "job_7" / "step_0", 2 * GB, int(1.5 * GB))
    assert images.cgroup_memory_available(proc(path), str(root)) == (GB // 2, 2 * GB)


def test_cgroup_v2_no_limit_anywhere_is_none(tmp_path, proc):
    root = tmp_path / "cg"
    _v2(root / "user.slice", "max", GB)
    (root / "cgroup.controllers").write_text("memory\n")  # the root group: no memory.max
    assert images.cgroup_memory_available(proc("0::/user.slice\n"), str(root)) is None


def test_cgroup_v2_container_reads_its_root(tmp_path, proc):
    """In a container the group's path (as the host names it) is not under the mount: the mount is the group."""
    root = tmp_path / "cg"
    _v2(root, 2 * GB, GB)
    assert images.cgroup_memory_available(proc("0::/docker/0123abcd\n"), str(root)) == (GB, 2 * GB)


def test_cgroup_v1_memory_controller(tmp_path, proc):
    root = tmp_path / "cg"
    text = "9:name=systemd:/\n4:memory:/slurm/uid_1/job_9\n1:cpu,cpuacct:/\n0::/\n"
    job = root / "memory" / "slurm" / "uid_1" / "job_9"
    _files(job, memory_limit_in_bytes=3 * GB, memory_usage_in_bytes=2 * GB,
           memory_stat=f"inactive_file 5\nhierarchical_memory_limit {3 * GB}\ntotal_inactive_file {GB // 4}")
    _files(root / "memory", memory_limit_in_bytes=9223372036854771712, memory_usage_in_bytes=50 * GB)  # unlimited
    assert images.cgroup_memory_available(proc(text), str(root)) == (int(1.25 * GB), 3 * GB)
    # a limit set above what this process sees (a container's own group mounted as the root): memory.stat says it
    _files(job, memory_limit_in_bytes=9223372036854771712,
           memory_stat=f"hierarchical_memory_limit {4 * GB}\ntotal_inactive_file 0")
    assert images.cgroup_memory_available(proc(text), str(root)) == (2 * GB, 4 * GB)
    _files(job, memory_stat="hierarchical_memory_limit 9223372036854771712\ntotal_inactive_file 0")
    assert images.cgroup_memory_available(proc(text), str(root)) is None


def test_cgroup_unreadable_is_none(tmp_path, proc):
    assert images.cgroup_memory_available(str(tmp_path / "missing"), str(tmp_path)) is None
    _files(tmp_path / "cg", memory_max="garbage", memory_current=1)
    assert images.cgroup_memory_available(proc("0::/\n"), str(tmp_path / "cg")) is None


def test_address_space_limit_less_the_virtual_size(tmp_path, monkeypatch):
    import resource

    statm = tmp_path / "statm"
    statm.write_text("250000 1000 500 10 0 2000 0\n")
    page = os.sysconf("SC_PAGE_SIZE")
    monkeypatch.setattr(resource, "getrlimit", lambda which: (6 * GB, resource.RLIM_INFINITY))
    assert images.address_space_available(str(statm)) == (6 * GB - 250000 * page, 6 * GB)
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert images.address_space_available(str(statm)) is None


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A machine with 8 GB available, in a job whose 2 GB limit leaves 1 GB; no ulimit -v unless set."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal: 16000000 kB\nMemFree: 1000 kB\nMemAvailable: {8 * GB // 1024} kB\n")
    root = tmp_path / "cg"
    _v2(root / "job", 2 * GB, GB)
    (tmp_path / "proc_cgroup").write_text("0::/job\n")
    monkeypatch.setattr(images, "PROC_MEMINFO", str(meminfo))
    monkeypatch.setattr(images, "PROC_CGROUP", str(tmp_path / "proc_cgroup"))
    monkeypatch.setattr(images, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(images, "address_space_available", lambda: None)
    return root


def test_the_smallest_limit_is_named_in_the_refusal(machine, monkeypatch):
    free = images.memory_available()
    assert free == GB
    with pytest.raises(Exhausted) as exc:
        images.check_memory((40000, 40000), np.uint8, "well.png")  # 1.6 GB
    assert str(exc.value) == ("well.png: the file declares an image of 40000 x 40000 uint8 values, 1.6 GB decoded: "
                              "more than the 1.0 GB this job's 2.0 GB memory limit (cgroup) leaves; ask for more "
                              "memory for the job or container (sbatch --mem, docker run --memory), or cut it into "
                              "smaller images, or set DEVOLENS_NO_MEMORY_CHECK=1 to try anyway")
    images.check_memory((30000, 30000), np.uint8, "well.png")  # 0.9 GB: fits
    monkeypatch.setattr(images, "address_space_available", lambda: (GB // 2, 3 * GB))
    with pytest.raises(Exhausted, match=r"more than the 500 MB this process's 3.0 GB address-space limit \(ulimit -v\) "
                                        r"leaves; raise ulimit -v, or cut it into smaller images, or set "
                                        r"DEVOLENS_NO_MEMORY_CHECK=1 to try anyway$"):
        images.check_memory((30000, 30000), np.uint8, "well.png")
    _v2(machine / "job", "max", GB)
    monkeypatch.setattr(images, "address_space_available", lambda: None)
    assert images.memory_available() == 8 * GB
    with pytest.raises(Exhausted, match="more than the 8.0 GB of memory available; free memory or run it where more"):
        images.check_memory((100000, 100000), np.uint8, "well.png")


def test_a_job_limit_refuses_a_png_in_the_cli(machine, tiny_zoo, tmp_path, capsys):
    """The command's one line names the job's limit; nothing is written."""
    import io
    import zlib

    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:20], data[20:24] = (40000).to_bytes(4, "big"), (40000).to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    src = tmp_path / "well.png"
    src.write_bytes(bytes(data))
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "seg")]) == 75
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "more than the 1.0 GB this job's 2.0 GB memory limit (cgroup) leaves" in err
    assert not (tmp_path / "seg").exists()


# 2. OpenCV out of memory ----------------------------------------------------------------------------------------


def _opencv_oom(*args, **kwargs):
    raise cv2.error(OPENCV_OOM)


def test_opencv_out_of_memory_in_a_command_is_one_line_exit_75(tiny_zoo, tmp_path, capsys, monkeypatch):
    """cv2.resize failing to allocate (a large image under ulimit -v) was a traceback."""
    import devolens.predict.postprocess as postprocess

    src = tmp_path / "frame.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(src)
    monkeypatch.setattr(postprocess, "resize_image", _opencv_oom)  # the frame brought to the model's scale
    code = main(["segment", "nuclei", str(src), "--out", str(tmp_path / "seg")])
    err = capsys.readouterr().err
    assert code == 75 and err.startswith("error: out of memory: try ") and err.count("\n") == 1
    assert not (tmp_path / "seg").exists()


def test_other_opencv_errors_are_not_out_of_memory():
    assert _is_out_of_memory(cv2.error(OPENCV_OOM))
    assert not _is_out_of_memory(cv2.error("OpenCV(5.0.0) resize.cpp:4152: error: (-215:Assertion failed) "
                                           "!ssize.empty() in function 'resize'\n"))
    assert not _is_out_of_memory(ValueError("Insufficient memory"))  # not OpenCV's


def test_opencv_out_of_memory_decoding_a_16bit_png_is_exhausted(tmp_path, monkeypatch):
    src = tmp_path / "rgb16.png"
    cv2.imwrite(str(src), np.full((8, 8, 3), 40000, np.uint16))
    monkeypatch.setattr(cv2, "imdecode", _opencv_oom)  # imported where it is used
    with pytest.raises(Exhausted, match="rgb16.png: out of memory while decoding this image"):
        images.read_image(src)


# 3. an output that refuses its replacement ----------------------------------------------------------------------


def _refuse_replacing(monkeypatch, target: Path, exc_type=PermissionError, number=errno.EACCES):
    real = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(src) == target or Path(dst) == target:
            raise exc_type(number, os.strerror(number), str(src), None, str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("number", [errno.EACCES, errno.EPERM])
def test_a_file_that_refuses_its_replacement_is_asked_about(tmp_path, monkeypatch, number):
    out = tmp_path / "counts.csv"
    out.write_text("old")
    _refuse_replacing(monkeypatch, out, number=number)
    with pytest.raises(DevolensError) as exc:
        write_text(out, "new")
    assert str(exc.value) == (f"{out}: cannot write output: {os.strerror(number)} (is it open in another program, "
                              "or read-only?)")
    assert os.listdir(tmp_path) == ["counts.csv"] and out.read_text() == "old"


def test_a_folder_that_refuses_is_not_asked_about(tmp_path, monkeypatch):
    """A folder that takes no new file (mkstemp refused), or whose rename is refused for the folder's permissions:
    "Permission denied" as before (the file is not what refuses)."""
    out = tmp_path / "counts.csv"

    def mkstemp(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    with monkeypatch.context() as m:
        m.setattr(atomic.tempfile, "mkstemp", mkstemp)
        with pytest.raises(DevolensError) as exc:
            write_text(out, "new")
    assert str(exc.value) == f"{out}: cannot write output: Permission denied"
    _refuse_replacing(monkeypatch, out)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == tmp_path else real(p, mode, *a, **k))
    with pytest.raises(DevolensError) as exc:
        write_text(out, "new")
    assert str(exc.value) == f"{out}: cannot write output: Permission denied"


def test_windows_sharing_violation_is_not_asked_twice(tmp_path, monkeypatch):
    class SharingViolation(PermissionError):
        winerror = 32

    out = tmp_path / "counts.csv"
    _refuse_replacing(monkeypatch, out, SharingViolation)
    with pytest.raises(DevolensError) as exc:
        write_text(out, "new")
    assert str(exc.value) == f"{out}: cannot write output: Permission denied"


def test_a_folders_file_that_refuses_is_named_and_asked_about(tmp_path, monkeypatch):
    """A folder of outputs (segment, curate): the locked file is named; the earlier outputs stay as they were."""
    dest = tmp_path / "seg"
    dest.mkdir()
    (dest / "counts.csv").write_text("old counts")
    (dest / "a.png").write_text("old a")
    _refuse_replacing(monkeypatch, dest / "counts.csv")
    stage = StagedDir(dest)
    for name in ("a.png", "counts.csv"):
        (stage.tmp / name).write_text("new")
    with pytest.raises(DevolensError) as exc:
        stage.commit()
    assert str(exc.value) == (f"{dest / 'counts.csv'}: cannot write output: Permission denied (is it open in another "
                              "program, or read-only?)")
    assert sorted(os.listdir(tmp_path)) == ["seg"] and sorted(os.listdir(dest)) == ["a.png", "counts.csv"]
    assert (dest / "a.png").read_text() == "old a" and (dest / "counts.csv").read_text() == "old counts"


def test_a_locked_output_in_the_cli_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    import pandas as pd

    table = tmp_path / "t.csv"
    pd.DataFrame({"time": [1], "cell": ["ABa"], "x": [1.0], "y": [2.0], "z": [3.0]}).to_csv(table, index=False)
    out = tmp_path / "cells.csv"
    _refuse_replacing(monkeypatch, out)
    assert main(["identify", str(table), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"error: {out}: cannot write output: Permission denied (is it open in another "
                                       "program, or read-only?)\n")
    assert not out.exists()
