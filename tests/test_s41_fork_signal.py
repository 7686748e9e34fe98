"""Session 41: a process forked inside signals_held() (render's worker pool) starts with the stop signals blocked and
unblocks them once its at-fork hooks have set its handlers: a SIGTERM sent to it meanwhile (Pool.terminate() on a
loaded machine) ends it, where Python dropped it (the worker waited on its queue for ever, and the pool's join)."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from devolens.io import atomic

pytestmark = pytest.mark.skipif(not hasattr(os, "register_at_fork") or sys.platform != "linux"
                                or not hasattr(signal, "pthread_sigmask"), reason="POSIX fork and signal masks")


def _child_state() -> int:
    """In the child: 0 when SIGTERM is unblocked and at its default (a pool worker's), else a code saying what."""
    if signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, []):
        return 3
    return 0 if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else 4


def test_a_child_forked_in_the_hold_starts_blocked_and_ends_unblocked_at_the_default():
    from devolens import cli

    previous = signal.signal(signal.SIGTERM, cli._on_signal)  # as while a devolens command runs
    try:
        with atomic.signals_held():
            assert signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # blocked in the section
            pid = os.fork()
            if pid == 0:
                os._exit(_child_state())
        assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the parent's mask back
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_pending_in_a_child_when_it_unblocks_ends_it():
    from devolens import cli

    previous = signal.signal(signal.SIGTERM, cli._on_signal)
    try:
        with atomic.signals_held():
            pid = os.fork()
            if pid == 0:  # (its hooks have run: SIGTERM at its default, unblocked) blocked again, sent, unblocked
                signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
                os.kill(os.getpid(), signal.SIGTERM)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
                os._exit(7)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status
    finally:
        signal.signal(signal.SIGTERM, previous)


_STOP_IN_THE_HOLD = """
import os, signal, sys
from devolens.io import atomic
threads = os.listdir("/proc/self/task")  # (one: an import that starts a thread, NumPy's BLAS, brings the race back)
if len(threads) != 1:
    sys.exit(f"{len(threads)} threads: the kernel may hand the signal to another one, whose handler runs late")
reached = []
signal.signal(signal.SIGTERM, lambda signum, frame: reached.append(signum))
with atomic.signals_held():
    os.kill(os.getpid(), signal.SIGTERM)
    reached.append("section")
sys.exit(0 if reached == ["section", signal.SIGTERM] else 1)
"""


def test_a_stop_in_the_hold_reaches_its_handler_after_it():
    # in a process of one thread: the test process has others (torch's, xdist's), and the kernel hands a signal that
    # the main thread blocks to one of them, whose C handler may run (and flag Python's) only after the hold has ended
    import subprocess

    done = subprocess.run([sys.executable, "-c", _STOP_IN_THE_HOLD], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
