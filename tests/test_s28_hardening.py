"""Hardening of the session's shell and output changes: the output lock never writes through a link or a
non-file, empty-path checks with options of several values and unknown options,
video timestamps through a temporary file when the pipe cannot be opened, ffmpeg killed when interrupted while it
finishes, a full disk in a commit that cannot be undone is exit 75, UTF-8 text outputs whatever the locale, console
streams that do not fail on characters their encoding lacks, Ctrl-Break."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io import atomic
from devolens.io.atomic import EX_TEMPFAIL, Exhausted, StagedDir

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
posix_only = pytest.mark.skipif(os.name != "posix", reason="flock, symbolic links, FIFOs")


def python(code: str, *args, env: dict | None = None, **kwargs):
    """Run ``code`` in a fresh interpreter with this checkout's sources first on the path."""
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True, **kwargs)


# 1. the output lock never writes through a link, nor removes one ----------------------------------------------


@posix_only
def test_a_lock_name_that_is_a_link_is_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / ".out.lock").symlink_to("victim.txt")
    stage = StagedDir(tmp_path / "out")  # unlocked: the link is neither followed nor removed
    (stage.tmp / "a.txt").write_text("a")
    stage.commit()
    assert victim.read_text() == "precious\n"
    assert os.readlink(tmp_path / ".out.lock") == "victim.txt"
    assert (tmp_path / "out" / "a.txt").read_text() == "a"
    # an existing folder: locked inside it instead, and that lock goes as the run ends
    stage = StagedDir(tmp_path / "out")
    assert (tmp_path / "out" / ".devolens.lock").read_text() == f"{os.getpid()}\n{socket.gethostname()}\n"
    with pytest.raises(DevolensError, match="another devolens run is writing here"):
        StagedDir(tmp_path / "out")
    stage.abort()
    assert victim.read_text() == "precious\n" and os.listdir(tmp_path / "out") == ["a.txt"]


@posix_only
def test_a_lock_name_that_is_a_fifo_is_left_alone(tmp_path):
    os.mkfifo(tmp_path / ".out.lock")
    stage = StagedDir(tmp_path / "out")
    stage.commit()
    assert (tmp_path / ".out.lock").is_fifo()


@posix_only
def test_a_lock_replaced_by_a_link_is_not_removed_by_its_holder(tmp_path):
    stage = StagedDir(tmp_path / "out")
    lock = tmp_path / ".out.lock"
    os.rename(lock, tmp_path / "moved.lock")
    lock.symlink_to("moved.lock")  # the link leads to the very file held
    stage.abort()
    assert lock.is_symlink() and (tmp_path / "moved.lock").read_text() == f"{os.getpid()}\n{socket.gethostname()}\n"


# 3. empty paths: options of several values, unknown options -----------------------------------------------------


def test_an_empty_argument_after_an_option_of_two_values_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in (["render", "--size", "512", "752", "", "--out", "o"],
                 ["render", "--size=512", "752", "", "--out", "o"]):
        assert main(argv) == 2
        assert capsys.readouterr().err == "error: TABLE is empty (an unset shell variable?): give a path\n"
    assert os.listdir(tmp_path) == []


def test_an_unknown_option_is_clicks_to_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["segment", "nuclei", "--outt", "", "x.png", "--out", "o"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No such option: --outt") and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


# 4. video timestamps through a temporary file ------------------------------------------------------------------


def _gap_video(tmp_path: Path) -> Path:
    from test_io_realworld import _ffmpeg, _video_with_a_gap

    return _video_with_a_gap(tmp_path / "gap.mp4", _ffmpeg())


def _lost(movie: Path) -> list[int]:
    from devolens.io.missing import MissingFrame
    from devolens.io.video import iter_video_frames

    marked = list(iter_video_frames(movie, mark_lost=True))
    assert len(marked) == 40
    return [i for i, f in enumerate(marked) if isinstance(f, MissingFrame)]


@pytest.fixture
def stamps_dir(tmp_path, monkeypatch):
    from devolens.io.video import _timestamps_supported

    if not _timestamps_supported():
        pytest.skip("needs ffmpeg 6.1+ (frame timestamps)")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path / "tmp"


def test_lost_frames_are_found_with_timestamps_in_a_temporary_file(tmp_path, monkeypatch, stamps_dir):
    """The method used off Linux, forced here: lost frames found, the file gone."""
    from devolens.io import video

    movie = _gap_video(tmp_path)
    monkeypatch.setattr(video._Timestamps, "make", video._Timestamps.in_file)
    assert _lost(movie) == [10, 11, 12, 13]
    assert os.listdir(stamps_dir) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the timestamps pipe is Linux's")
def test_a_timestamps_pipe_ffmpeg_cannot_open_falls_back_to_a_file(tmp_path, monkeypatch, stamps_dir):
    """ffmpeg refusing the /proc/PID/fd name of the pipe (a sandbox, another user): the frames were read without
    timestamps, so lost frames went unnoticed; now read again with a temporary file."""
    from devolens.io import video

    movie = _gap_video(tmp_path)

    def unopenable(cls):
        r, w = os.pipe()
        os.set_blocking(r, False)
        return cls(str(tmp_path / "no" / "such" / "fd"), (r, w))

    monkeypatch.setattr(video._Timestamps, "make", classmethod(unopenable))
    assert _lost(movie) == [10, 11, 12, 13]
    assert os.listdir(stamps_dir) == []


# 5. write_video: ffmpeg killed when interrupted as it finishes --------------------------------------------------


def test_an_interruption_while_ffmpeg_finishes_stops_ffmpeg(tmp_path, monkeypatch):
    from devolens.io import video

    encoders = []

    def interrupted(self, path):
        encoders.append(self)
        raise KeyboardInterrupt  # before its input is closed: ffmpeg would wait for ever

    monkeypatch.setattr(video._Encoder, "finish", interrupted)
    frames = [np.zeros((16, 16, 3), np.uint8)] * 2
    try:
        with pytest.raises(KeyboardInterrupt):
            video.write_video(frames, tmp_path / "v.mp4")
        assert encoders and encoders[0].proc.poll() is not None
    finally:
        for enc in encoders:
            if enc.proc.poll() is None:
                enc.proc.kill()
                enc.proc.wait()
    assert os.listdir(tmp_path) == []


# 6. a commit that fails on a full disk and cannot be undone: exit 75 --------------------------------------------


def test_a_full_disk_commit_that_cannot_be_undone_is_exhausted(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "a.txt").write_text("old")
    stage = StagedDir(dest)
    (stage.tmp / "a.txt").write_text("new")
    real = os.replace

    def failing(src, dst):
        if Path(src).parent == stage.tmp:  # the new entry going in: the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        if Path(dst) == dest / "a.txt":  # the old one coming back: fails too
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(Exhausted, match="some earlier outputs could not be put back") as caught:
        stage.commit()
    assert caught.value.exit_code == EX_TEMPFAIL and str(caught.value).startswith(f"{dest}: cannot write output:")
    monkeypatch.undo()
    assert not (tmp_path / ".out.lock").exists()


# 8. text outputs in UTF-8 whatever the locale -------------------------------------------------------------------

UTF8_WRITES = """
import sys
from pathlib import Path
from devolens.io.atomic import write_columns_csv, write_text
out = Path(sys.argv[1])
write_columns_csv({"frame": ["M\\u00fcller_01.png", "\\u80da\\u80ce_01.png"], "count": [1, 2]}, out / "counts.csv")
write_text(out / "notes.txt", "\\u80da\\u80ce M\\u00fcller\\n")
"""  # (escapes: the command line itself is ASCII)


@pytest.mark.skipif(os.name != "posix", reason="an ASCII locale (LC_ALL=C)")
def test_text_outputs_are_utf8_in_an_ascii_locale(tmp_path):
    """The locale's encoding (cp1252 on Windows, ASCII here) failed on a name in another script, or wrote one in
    Latin script in another encoding than the outputs beside it."""
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    res = python(UTF8_WRITES, tmp_path, env=env)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    assert (tmp_path / "counts.csv").read_bytes() == "frame,count\nMüller_01.png,1\n胚胎_01.png,2\n".encode()
    assert (tmp_path / "notes.txt").read_bytes() == "胚胎 Müller\n".encode()


# 9. console streams in an encoding that lacks a character; Ctrl-Break --------------------------------------------


def test_a_name_the_consoles_encoding_lacks_is_escaped_not_a_crash(tmp_path):
    """stdout in cp1252 (a Windows console, or one redirected): a file name in another script raised
    UnicodeEncodeError after the output was written."""
    (tmp_path / "t.csv").write_text("embryo,time,cell,x,y,z,size\nE1,1,P0,10,10,5,20\nE1,2,AB,10,10,5,20\n")
    env = {"PYTHONIOENCODING": "cp1252"}
    res = python("from devolens.cli import run; import sys; sys.argv[0] = 'devolens'; run()",
                 "lineage", "convert", "t.csv", "--out", "胚胎.csv", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    assert res.stderr.decode("cp1252").startswith("wrote \\u80da\\u80ce.csv: 2 rows")


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGUSR1"), reason="a stand-in signal for SIGBREAK")
def test_ctrl_break_stops_a_run_as_sigterm_does():
    code = ("import signal\n"
            "signal.SIGBREAK = signal.SIGUSR1  # Windows' Ctrl-Break, played by a POSIX signal\n"
            "from devolens import cli\n"
            "assert signal.SIGUSR1 in cli._STOP_SIGNALS\n"
            "cli._set_signal_handlers(cli._on_signal)\n"
            "assert signal.getsignal(signal.SIGUSR1) is cli._on_signal\n")
    res = python(code)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
