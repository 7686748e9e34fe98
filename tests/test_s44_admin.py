"""Session 44: a shared, read-only install (a core facility's admin walkthrough)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def test_demo_gives_matplotlib_a_folder_of_its_own_when_home_is_missing(tmp_path):
    """demo imported matplotlib before devolens.viz's guard: with HOME missing, matplotlib made HOME's folders (or,
    read-only, printed two warning lines and left a temporary folder behind on every run)."""
    home = tmp_path / "missing-home"
    script = textwrap.dedent(f"""
        import os, sys
        import devolens.render.dataset as dataset
        from devolens.errors import DevolensError
        from devolens.cli import main

        def fail(*args, **kwargs):  # (after demo's matplotlib import: no render needed)
            raise DevolensError("stop here")

        dataset.render_dataset = fail
        code = main(["demo", "--out", {str(tmp_path / 'out')!r}, "--cells", "20", "--frames", "6"])
        print("MPLCONFIGDIR=" + os.environ.get("MPLCONFIGDIR", ""), "matplotlib" in sys.modules, code)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MPL", "XDG_"))}
    env.update(HOME=str(home), PYTHONPATH=str(SRC))
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "devolens-matplotlib-" in run.stdout and "True 2" in run.stdout
    assert not home.exists()
    assert "Matplotlib" not in run.stderr
