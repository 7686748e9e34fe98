"""Session 30's small refactors (no behaviour change): one English ordinal for training's summary and the demo's
report, and ffmpeg's ending signal named as :class:`devolens.io.atomic.Terminated` names one."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from devolens.errors import DevolensError

ORDINALS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th", 21: "21st", 22: "22nd",
            101: "101st", 111: "111th", 112: "112th"}


@pytest.mark.parametrize("n", sorted(ORDINALS))
def test_training_summary_ordinal(n):
    from devolens.train.trainer import _ordinal

    assert _ordinal(n) == ORDINALS[n]


@pytest.mark.parametrize("n", sorted(ORDINALS))
def test_demo_every_nth_time_point(n):
    from devolens.cli.demo import _every

    assert _every(n) == ("every time point" if n == 1 else f"every {ORDINALS[n]} time point")


def test_one_ordinal_for_both():
    """Training and the demo word ordinals with the same function (two copies drifted apart once before)."""
    from devolens.cli import demo
    from devolens.errors import ordinal
    from devolens.train import trainer

    assert trainer._ordinal is ordinal and demo.ordinal is ordinal


def test_the_demo_command_starts_without_training():
    """``devolens demo --help`` imports neither the training engine nor PyTorch (the ordinal is in a light
    module, not in :mod:`devolens.train.trainer`)."""
    code = ("import sys; import devolens.cli.demo; "
            "print(sorted(m for m in ('devolens.train.trainer', 'torch') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def _fake_ffmpeg(tmp_path: Path, signum: int) -> Path:
    """An executable standing in for ffmpeg that kills itself with ``signum`` and says nothing."""
    exe = tmp_path / "fake_ffmpeg"
    exe.write_text(f"#!{sys.executable}\nimport os\nos.kill(os.getpid(), {int(signum)})\n")
    exe.chmod(0o755)
    return exe


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum, said", [(signal.SIGKILL, "SIGKILL"), (signal.SIGTERM, "SIGTERM"),
                                          (getattr(signal, "SIGRTMIN", 34) + 5, None)])
def test_an_ffmpeg_ended_by_a_signal_is_named(tmp_path, monkeypatch, signum, said):
    """ffmpeg killed by a signal without a word on its stderr: the message names the signal (by its number when
    it has no name, such as a real-time one), and nothing is left at the destination."""
    from devolens.io import video

    if said is None:
        with pytest.raises(ValueError):
            signal.Signals(signum)  # a signal without a name, as the test means
        said = f"signal {signum}"
    monkeypatch.setattr(video, "_encoder_exe", lambda: str(_fake_ffmpeg(tmp_path, signum)))
    dest = tmp_path / "v.mp4"
    with pytest.raises(DevolensError) as info:
        video.write_video((np.zeros((32, 32, 3), np.uint8) for _ in range(3)), dest)
    assert str(info.value) == f"{dest}: cannot write video: ffmpeg failed (stopped by {said})"
    assert not dest.exists()
