"""One small demo (seed 7, 20 cells, 6 frames: 7 time points, one red line flagged, the clock on the other 6) shared
by the tests that only read its outputs or copy them (test_s47_report, test_s35_demo): a session-scoped fixture,
``small_demo``, whose run is kept in this module, so that the test modules that import the fixture share one run
per process (an xdist worker) instead of one each."""

from __future__ import annotations

from pathlib import Path

import pytest

from devolens.cli import main

#: the demo's options (seed 7 is the default)
SMALL_DEMO_ARGS = ("--cells", "20", "--frames", "6", "--seed", "7")

_runs: dict[str, Path] = {}


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    """The folder of a ``devolens demo --cells 20 --frames 6 --seed 7`` run: read it, or copy it before changing it."""
    if "small" not in _runs:  # (each module importing the fixture gets its own copy of it: one run for all)
        out = tmp_path_factory.mktemp("demo") / "d"
        assert main(["demo", "--out", str(out), *SMALL_DEMO_ARGS]) == 0
        _runs["small"] = out
    return _runs["small"]
