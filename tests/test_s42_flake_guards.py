"""Session 42: what tests/conftest.py does so that no test passes or fails by chance, by the order xdist gives the
tests, or by the machine and environment that run them (CI: another checkout, root, two loaded cores, its own
variables): property tests without a clock or random draws, help drawn alike for everyone, PyTorch's thread count
back after each test."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, settings

from devolens.cli import main

TESTS = Path(__file__).resolve().parent


def test_property_tests_have_no_deadline_and_the_same_examples_every_run():
    """hypothesis's 200 ms deadline failed a test as "Unreliable test timings" when its process was paused in the
    middle of an example (a loaded CI machine); its examples were drawn anew each run, and replayed from a database
    in the checkout that the xdist workers shared."""
    now = settings()
    assert now.deadline is None and now.derandomize and now.database is None
    assert HealthCheck.too_slow in now.suppress_health_check


def test_help_is_drawn_at_80_columns_without_colours(capsys):
    """rich (through typer) took its width from COLUMNS or a terminal, and drew colours for GITHUB_ACTIONS,
    FORCE_COLOR or PY_COLORS: escape codes and other line breaks inside the words the help tests look for."""
    assert main(["segment", "nuclei", "--help"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    widths = {len(line) for line in out.splitlines()}
    assert max(widths) == 80, sorted(widths)[-3:]  # (the boxes span the width)


PAIR = '''
import torch

START = torch.get_num_threads()


def test_a_command_sets_its_threads():  # as --threads, a recipe's train.threads or identify do
    torch.set_num_threads(1 if START != 1 else 2)


def test_the_next_test_runs_with_the_count_of_before():
    assert torch.get_num_threads() == START
'''


def test_torch_threads_are_put_back_after_each_test(tmp_path):
    """A test that changed PyTorch's thread count changed it for every later test of its xdist worker: which ones
    ran with it was chance, and their float sums differed in the last bits."""
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_pair.py").write_text(textwrap.dedent(PAIR))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                          "-p", "no:randomly", str(tmp_path / "test_pair.py")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "2 passed" in res.stdout
