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


def test_help_names_the_environment_variables(capsys):
    from devolens.cli import main

    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in ("DEVOLENS_QUIET", "DEVOLENS_PROGRESS", "OMP_NUM_THREADS", "DEVOLENS_DATA"):
        assert name in text
    assert "every core the process may use" in text


def test_models_table_in_a_log_is_not_folded_to_80_columns(capsys, monkeypatch):
    """Without a terminal rich drew the table 80 columns wide: each card's figures a few words a line."""
    from devolens.cli import main
    from devolens.cli.models import LOG_WIDTH
    from devolens.models import zoo

    if "identity" not in zoo.available():
        import pytest

        pytest.skip("no identity model shipped")
    monkeypatch.delenv("COLUMNS", raising=False)
    assert main(["models"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line[:1] in "│┃┏┡└"]  # the table's
    assert max(len(line) for line in lines) > 100
    assert max(len(line) for line in lines) <= LOG_WIDTH
    assert any("founder accuracy, leave-one-embryo-out:" in line for line in lines)  # one line, not folded
    monkeypatch.setenv("COLUMNS", "80")  # a width the user set is kept
    assert main(["models"]) == 0
    assert max(len(line) for line in capsys.readouterr().out.splitlines() if line[:1] in "│┃┏┡└") <= 80


def test_citation_and_licence_files_are_valid():
    """A paper's reader finds how to cite devolens and under which licence (a postdoc's walkthrough)."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    cff = yaml.safe_load((root / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["title"].startswith("devolens") and cff["license"] == "MIT"
    import tomllib

    meta = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert str(cff["version"]) == meta["version"]
    assert (root / "LICENSE").read_text().startswith("MIT License")


def test_a_dim_8bit_frames_overlay_is_stretched_as_a_16bit_ones():
    """A postdoc's QC: an 8-bit frame at 6 % brightness showed black nuclei under their outlines (a 16-bit one of
    the same light was stretched); an 8-bit frame of ordinary brightness is shown as it is."""
    import numpy as np

    from devolens.cli.predict import DIM_UINT8, _overlay

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 4, (64, 64)).astype(np.uint8)
    frame[20:40, 20:40] = 14  # a dim nucleus
    labels = np.zeros((64, 64), np.int32)
    labels[20:40, 20:40] = 1
    shown = _overlay(frame, labels)
    assert shown[30, 30, 0] == 255 and shown[5, 5, 0] < 60  # the nucleus's inside bright, the background dark
    ordinary = frame * np.uint8(DIM_UINT8 // 14 + 1)
    shown = _overlay(ordinary, labels)
    assert (shown[..., 0][labels == 0] == ordinary[labels == 0]).all() and shown[30, 30, 0] == ordinary[30, 30]
