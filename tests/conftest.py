"""Shared fixtures: the real data in ../shared/data (skipped cleanly when absent)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parents[1]

# Progress as before DEVOLENS_PROGRESS, for the whole session and the commands it starts: a bar where a test makes
# stderr a terminal, else nothing. Many tests compare stderr exactly, and on a loaded machine a command may run past
# the 10 s after which ``progress:`` lines begin (auto); tests/test_s35_progress.py sets the modes it tests.
os.environ["DEVOLENS_PROGRESS"] = "bar"

# The same output whoever runs the tests, wherever: help and messages are drawn by rich (through typer), which takes
# its width from COLUMNS (else from a terminal on stdin, stdout or stderr: 80 in CI, the window's at a desk) and
# draws colours for GITHUB_ACTIONS, FORCE_COLOR, PY_COLORS or TTY_COMPATIBLE (escape codes inside the words the
# tests look for); TERMINAL_WIDTH is typer's own width. Each test that needs another width sets COLUMNS itself.
# devolens's own switches (-q's variable, the memory check's, the slow exit) change what a command prints or does.
# Set here, before the tests import rich, typer and devolens, and inherited by the commands they start.
os.environ["COLUMNS"] = "80"
for _name in ("LINES", "TERMINAL_WIDTH", "GITHUB_ACTIONS", "FORCE_COLOR", "PY_COLORS", "NO_COLOR", "TTY_COMPATIBLE",
              "TTY_INTERACTIVE", "_TYPER_FORCE_DISABLE_TERMINAL", "TYPER_USE_RICH", "DEVOLENS_QUIET",
              "DEVOLENS_NO_MEMORY_CHECK", "DEVOLENS_SLOW_EXIT"):
    os.environ.pop(_name, None)

# One PyTorch (OpenMP) thread a worker where xdist runs the suite in parallel on as many cores (make test: -n 2 on 2
# cores), for the workers and the commands they start: with torch's default (a thread per core) each worker's
# threads spun waiting for cores the other worker held; compute-heavy tests took 93-100 s against 64-78 s on a
# 2-core AVX2 machine (CPU time 172-186 s against 114 s). Set before torch is imported (OpenMP reads it as it
# loads); an OMP_NUM_THREADS of one's own is kept. Tests of the thread settings set theirs.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
if _WORKERS > 1 and "torch" not in sys.modules:
    _CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _CORES // _WORKERS)))

# Property tests (hypothesis) without chance: the same examples every run (derandomize; no example database in
# the checkout, shared by the xdist workers and replaying a failure found once elsewhere), and no limit on time
# (the 200 ms deadline failed a test as "Unreliable test timings" when the process was paused mid-example, as a
# loaded CI machine does; the too_slow health check times the data's generation the same way).
settings.register_profile("devolens", deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("devolens")


@pytest.fixture(autouse=True)
def _torch_threads_put_back():
    """PyTorch's thread count as it was before each test: ``--threads``, a recipe's ``train.threads`` and identify
    change it for the whole process, and an xdist worker's later tests (which ones: chance) then ran with another
    count, whose float sums differ in their last bits."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    yield
    if before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)


def shared_data_dir() -> Path | None:
    """The real data folder: $DEVOLENS_DATA, else ../shared/data beside the project."""
    env = os.environ.get("DEVOLENS_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data not found (set DEVOLENS_DATA or provide ../shared/data)")
    return path


@pytest.fixture(scope="session")
def epic_tables(shared_data) -> list[Path]:
    files = sorted((shared_data / "epic").glob("CD*.csv"))
    if not files:
        pytest.skip("no EPIC CD tables in the shared data")
    return files


@pytest.fixture(scope="session")
def acetree_zip(shared_data) -> Path:
    path = shared_data / "acetree" / "wormguides_nuclei.zip"
    if not path.exists():
        pytest.skip("no AceTree zip in the shared data")
    return path


@pytest.fixture
def figures(monkeypatch):
    """The matplotlib figures saved while the test runs (the plots are written, and kept here to be read)."""
    from matplotlib.figure import Figure

    saved = []
    real = Figure.savefig

    def savefig(self, *args, **kwargs):
        saved.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saved
