"""Shared fixtures: the real data in ../shared/data (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Progress as before DEVOLENS_PROGRESS, for the whole session and the commands it starts: a bar where a test makes
# stderr a terminal, else nothing. Many tests compare stderr exactly, and on a loaded machine a command may run past
# the 10 s after which ``progress:`` lines begin (auto); tests/test_s35_progress.py sets the modes it tests.
os.environ["DEVOLENS_PROGRESS"] = "bar"


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
