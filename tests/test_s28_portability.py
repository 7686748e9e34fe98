"""Portability to macOS and Windows (the project is developed on Linux): glibc's mallopt asked for on Linux only;
the Makefile's torch pin for Apple Silicon (arm64) and overridable; text files read and written as UTF-8 whatever the
platform's encoding; a short write's free-space check without os.statvfs; macOS's ENOTSUP on a store lock; bf16
chosen automatically only on CPUs with native bf16; Excel's Windows-1252 CSV read; an imageio-ffmpeg that bundles an
ffmpeg with -stats_enc_pre."""

from __future__ import annotations

import builtins
import errno
import io
import os
import re
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError

ROOT = Path(__file__).resolve().parents[1]
MALLOC_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


@pytest.fixture
def windows_text(monkeypatch):
    """Text opened without an encoding is Windows-1252, as on Windows: ``Path.read_text``/``write_text``/``open``
    (through ``io.text_encoding``), and the builtin ``open`` of the modules passed to the function returned."""
    monkeypatch.setattr(io, "text_encoding", lambda encoding, stacklevel=2: "cp1252" if encoding is None else encoding)

    def cp1252_open(file, mode="r", buffering=-1, encoding=None, *args, **kwargs):
        if "b" not in mode and encoding is None:
            encoding = "cp1252"
        return builtins.open(file, mode, buffering, encoding, *args, **kwargs)

    def patch(*modules):
        for module in modules:
            monkeypatch.setattr(module, "open", cp1252_open, raising=False)

    return patch


# ----------------------------------------------------------------------------- 1. mallopt: glibc (Linux) only


class _Libc:
    """A stand-in for ``ctypes.CDLL(None)`` whose ``mallopt`` records its calls."""

    calls: list = []

    def __init__(self, name):
        self.mallopt = lambda *args: _Libc.calls.append(args) or 1


@pytest.fixture
def libc(monkeypatch):
    import ctypes

    for k in MALLOC_VARS:
        monkeypatch.delenv(k, raising=False)
    _Libc.calls = []
    monkeypatch.setattr(ctypes, "CDLL", _Libc)
    return _Libc


def _windows_cdll(name):
    raise TypeError("expected str, bytes or os.PathLike object, not NoneType")  # Windows' CDLL(None)


def test_streaming_threads_on_windows_does_not_crash(libc, monkeypatch):
    """Every segment and population run on Windows crashed: ctypes.CDLL(None) is a TypeError there."""
    import ctypes

    from devolens.cli import _common

    monkeypatch.setattr(ctypes, "CDLL", _windows_cdll)
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    _common.streaming_threads()  # no TypeError


def test_mallopt_is_asked_for_on_linux_only(libc, monkeypatch):
    import ctypes

    from devolens.cli._common import steady_malloc

    monkeypatch.setattr(sys, "platform", "darwin")
    steady_malloc()
    assert libc.calls == []
    monkeypatch.setattr(sys, "platform", "linux")
    steady_malloc()
    assert libc.calls == [(-3, 32 << 20), (-1, 256 << 20), (-2, 16 << 20)]  # (as before on Linux)
    monkeypatch.setattr(ctypes, "CDLL", _windows_cdll)  # a TypeError is not fatal on Linux either
    steady_malloc()


# ----------------------------------------------------------------------------- 2. the Makefile's torch pin; README


#: what reaches a make started from the tests besides its command line: the variables of the make that runs them
#: (``make test TORCH_INDEX=...`` passes TORCH_INDEX down in MAKEFLAGS) and the Makefile's ``?=`` variables set in
#: the environment (a CI job's TORCH_PIN): left out, so that each call says exactly what it sets
_MAKE_ENV = ("MAKEFLAGS", "MFLAGS", "GNUMAKEFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PY", "TORCH_INDEX", "TORCH_PIN",
             "PYTEST_ARGS", "ARCH")


def _pins(*args: str, env: dict | None = None) -> list[str]:
    if shutil.which("make") is None:
        pytest.skip("no make")
    plain = {k: v for k, v in os.environ.items() if k not in _MAKE_ENV}
    run = subprocess.run(["make", "-n", "-B", "--no-print-directory", "-C", str(ROOT), "install", *args],
                         capture_output=True, text=True, env={**plain, **(env or {})}, timeout=120)
    assert run.returncode == 0, run.stderr
    return [line.split("install -q ", 1)[1] for line in run.stdout.splitlines() if "pip install -q torch" in line]


def test_makefile_pins_torch_for_apple_silicon_and_lets_users_choose():
    """macOS reports arm64, not aarch64: Apple Silicon got the x86_64 pin, which has no macOS wheels."""
    assert _pins("ARCH=arm64") == _pins("ARCH=aarch64") == ["torch==2.9.1 torchvision==0.24.1"]
    assert _pins("ARCH=x86_64") == ["torch==2.14.1 torchvision==0.29.1"]
    assert _pins("ARCH=arm64", env={"TORCH_PIN": "torch==2.10.0 torchvision==0.25.0"}) == [
        "torch==2.10.0 torchvision==0.25.0"]
    assert _pins("TORCH_PIN=torch==2.11.0") == ["torch==2.11.0"]
    assert _pins("TORCH_PIN=") == []  # pip chooses from pyproject.toml's ranges


def test_readme_says_how_to_install_on_macos_and_windows():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("# devolens\n\n```bash\nmake demo   #")  # (the two set-up commands stay first)
    flat = " ".join(text.split())
    assert "**macOS and Windows**" in flat and r".venv\Scripts\activate" in flat and "Intel Macs" in flat
    assert "TORCH_PIN" in flat and "python -m devolens" in flat


# ----------------------------------------------------------------------------- 3. text as UTF-8 on every platform


def test_sample_losses_appended_as_utf8(tmp_path, windows_text):
    """sample_losses.csv: pandas wrote UTF-8, the next epochs were appended in the platform's encoding."""
    from devolens.train import trainer

    windows_text(trainer)
    path = tmp_path / "sample_losses.csv"
    log = trainer._SampleLosses(path, ["embryo_µ.png", "胚.png"])
    for epoch in range(3):
        log.add(epoch, np.array([0, 1]), np.array([0.5, 0.25]))
        log.write()
    df = pd.read_csv(path, dtype={"sample": str})
    assert df["sample"].tolist() == ["embryo_µ.png", "胚.png"] * 3 and df["epoch"].tolist() == [0, 0, 1, 1, 2, 2]


def test_model_card_written_and_shown_as_utf8(tmp_path, tiny_zoo, capsys, windows_text):
    import json

    from devolens.models import zoo
    from devolens.models.export import write_card

    card = json.loads((Path(zoo.__file__).parent / "nuclei" / "card.json").read_text(encoding="utf-8"))
    card["summary"] = "nuclei 8-20 µm wide, 2× magnification"
    windows_text()
    write_card(card, tmp_path)
    assert "nuclei 8-20 µm wide, 2× magnification" in (tmp_path / "card.md").read_bytes().decode("utf-8")
    (tiny_zoo / "nuclei" / "card.md").write_bytes("# nuclei\n\nnuclei 8-20 µm wide\n".encode("utf-8"))
    assert main(["models", "show", "nuclei"]) == 0
    assert "nuclei 8-20 µm wide" in capsys.readouterr().out


def test_tidy_sidecar_read_as_utf8(tmp_path, windows_text):
    from devolens.io.tables import read_table

    (tmp_path / "t.csv").write_text("embryo,time,cell,x,y,z,size\ne,1,ABa,1,2,3,4\n", encoding="utf-8")
    (tmp_path / "t.meta.json").write_bytes('{"axis": "ÄRP"}'.encode("utf-8"))  # (another tool's, not escaped)
    windows_text()
    assert read_table(tmp_path / "t.csv").attrs["axis"] == "ÄRP"


# ----------------------------------------------------------------------------- 4. a short write without os.statvfs


def test_short_write_on_a_full_disk_without_statvfs(tmp_path, monkeypatch):
    """os.statvfs does not exist on Windows: its AttributeError hid the full disk's message."""
    from devolens.cli.tiles import _short_write

    monkeypatch.delattr(os, "statvfs", raising=False)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, 10 << 30, 4096))
    err = _short_write(tmp_path / "w.tif.tmp", 1 << 20, tmp_path / "w.tif")
    assert str(err) == f"{tmp_path / 'w.tif'}: cannot write output: No space left on device"
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, 0, 10 << 30))
    assert "came out short" in str(_short_write(tmp_path / "w.tif.tmp", 1 << 20, tmp_path / "w.tif"))


# ----------------------------------------------------------------------------- 5. macOS's ENOTSUP on a store lock


def test_store_lock_goes_on_unlocked_on_enotsup(tmp_path, monkeypatch):
    """ENOTSUP is 45 on macOS and EOPNOTSUPP 102 (both 95 on Linux): a file system without locks failed tile make."""
    import fcntl

    from devolens.data.tiling import store_lock

    def no_locks(fd, op):
        raise OSError(45, "Operation not supported")

    monkeypatch.setattr(errno, "ENOTSUP", 45)
    monkeypatch.setattr(errno, "EOPNOTSUPP", 102)
    monkeypatch.setattr(fcntl, "flock", no_locks)
    entered = False
    with pytest.warns(UserWarning, match="cannot lock the store"):
        with store_lock(tmp_path / "tiles.h5"):
            entered = True
    assert entered


# ----------------------------------------------------------------------------- 6. bf16 only where the CPU has it


@pytest.fixture
def fresh_bf16_check():
    from devolens.models import quantize

    quantize.bf16_fast_here.cache_clear()
    yield quantize
    quantize.bf16_fast_here.cache_clear()


def test_auto_precision_keeps_fp32_without_native_bf16(fresh_bf16_check, monkeypatch):
    """bf16 autocast on an AVX2-only CPU (or an Apple M1) is emulated, 3-4x slower than fp32."""
    quantize = fresh_bf16_check
    net = torch.nn.Conv2d(1, 1, 3)  # (not quantizable: never int8)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)

    def resolve(precision, fast=True, device="cpu"):
        return quantize.resolve_precision(net, precision, None, fast=fast, device=device, multiple=32)

    assert resolve("auto") == "fp32" and resolve("auto", fast=False) == "fp32"
    assert resolve("bf16") == "bf16" and resolve("fp32") == "fp32"  # explicit choices are kept
    assert resolve("auto", device="cuda") == "bf16"  # (GPUs: as before)
    quantize.bf16_fast_here.cache_clear()
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert resolve("auto") == "bf16" and resolve("auto", fast=False) == "fp32"


def test_auto_precision_without_the_bf16_check_keeps_bf16(fresh_bf16_check, monkeypatch):
    quantize = fresh_bf16_check
    monkeypatch.setattr(torch.ops, "mkldnn", object())  # a PyTorch without the check
    assert quantize.bf16_fast_here() is True
    assert quantize.resolve_precision(torch.nn.Conv2d(1, 1, 3), "auto", None, fast=True, device="cpu",
                                      multiple=32) == "bf16"


# ----------------------------------------------------------------------------- 7. Excel's CSV saved on Windows


def _cp1252(path: Path, text: str) -> Path:
    path.write_bytes(text.replace("\n", "\r\n").encode("cp1252"))
    return path


TIDY = "embryo,time,cell,x,y,z,size,area (µm²)\ne1,1,ABa,1,2,3,4,5\ne1,1,ABp,5,6,3,4,5\ne1,2,ABa,1,2,3,4,5\n"
NOTE = "the file is not UTF-8 but Windows-1252 text (Excel's 'CSV (Comma delimited)'): read as such"


def test_windows_1252_tidy_table_is_read_with_a_note(tmp_path, capsys):
    """Excel's 'CSV (Comma delimited)' on Windows (a µ in a header) was refused as 'binary or non-UTF-8'."""
    from devolens.io.tables import read_positions, read_table

    utf8 = tmp_path / "u.csv"
    utf8.write_text(TIDY, encoding="utf-8")
    win = _cp1252(tmp_path / "w.csv", TIDY)
    df = read_table(win)
    pd.testing.assert_frame_equal(df, read_table(utf8))
    assert df.attrs["notes"] == [NOTE] and df.attrs["source"] == str(win)
    assert "area (µm²)" in df.columns
    assert read_positions(win).attrs["notes"][0] == NOTE
    code = main(["lineage", "populations", str(win), "--out", str(tmp_path / "p.csv")])
    assert code == 0 and f"note: {NOTE}" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "p.csv")["total"].tolist() == [2, 1]


def test_windows_1252_epic_and_positions_tables(tmp_path):
    from devolens.io.tables import EPIC_COLUMNS, read_positions, read_table

    rows = "".join(f"{c}:{t},{c},{t},5,1,1,1,1,4.0,{x},3,10,1,Köln\n" for t in (1, 2) for c, x in (("ABa", 10),
                                                                                                   ("ABp", 30)))
    cd = _cp1252(tmp_path / "CDwin.csv", ",".join(EPIC_COLUMNS) + ",Bemerkung (°C)\n" + rows)
    df = read_table(cd)
    assert df.attrs["format"] == "epic" and len(df) == 4 and df.attrs["notes"][0] == NOTE
    pos = read_positions(_cp1252(tmp_path / "pos.csv", "frame,x (µm),y (µm),z (µm)\n1,1,2,3\n1,5,6,3\n"))
    assert len(pos) == 2 and pos.attrs["notes"][0] == NOTE
    assert any("µm" in n for n in pos.attrs["notes"][1:])  # the units, read right


def test_windows_1252_table_with_a_byte_that_is_not_cp1252_later_on(tmp_path):
    from devolens.io.tables import read_table

    path = tmp_path / "w.csv"
    head = TIDY.encode("cp1252") + b"e1,3,ABa,1,2,3,4,5\n" * 4000  # (past the 64 KiB the encoding is told from)
    path.write_bytes(head + b"e1,3,ABa,1,2,3,4,\x81\n")
    with pytest.raises(DevolensError) as info:
        read_table(path)
    assert str(info.value) == (f"{path}: this file is neither UTF-8 nor Windows-1252 text (character maps to "
                               f"<undefined> at byte {len(head) + 17}); save it as CSV UTF-8")


@pytest.mark.parametrize("content, needle", [
    # UTF-8 with one stray Windows-1252 byte: mixed encodings, refused rather than garbled ("µ" as "Âµ")
    ("time,cell,x (µm)\n".encode("utf-8") + b"1,AB\xe9,2\n2,ABp,3\n", "binary or non-UTF-8"),
    (b"time,cell,x\n\x01\x02\xb5\xe9\x03 not text\n", "binary or non-UTF-8"),
    (b"time,cell,x\n\x81\x8d\x8f\x90\x9d\n", "binary or non-UTF-8"),  # (bytes that are not cp1252)
    (b"time,cell,x\n\xb5\x00\xe9\n", "binary file"),
])
def test_binary_files_are_still_refused(tmp_path, content, needle):
    from devolens.io.tables import read_table

    path = tmp_path / "b.csv"
    path.write_bytes(content)
    with pytest.raises(DevolensError, match=re.escape(needle)):
        read_table(path)


# ----------------------------------------------------------------------------- 8. imageio-ffmpeg's ffmpeg


def test_imageio_ffmpeg_floor_bundles_ffmpeg_with_stats_enc_pre():
    """imageio-ffmpeg 0.5.0 bundles ffmpeg 4.2.2 (Windows, Linux): no -stats_enc_pre (ffmpeg 6.1+), so frames missing
    mid-video went unseen; 0.6.0 bundles 7.0.2/7.1 on every 64-bit platform."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    spec = next(d for d in deps if d.startswith("imageio-ffmpeg"))
    floor = tuple(int(x) for x in re.fullmatch(r"imageio-ffmpeg>=([\d.]+)", spec.replace(" ", "")).group(1).split("."))
    assert floor >= (0, 6, 0)
