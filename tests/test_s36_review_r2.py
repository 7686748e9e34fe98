"""Review finds: the late-reading note under a --clock fit from near the first cells no longer says the embryo may
hold far more cells (that run's readings are within 17 %); --backend onnx without its packages is refused before any
work (a --skip-flagged auto curation pass ran first)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from devolens.cli import main
from devolens.cli.predict import _held_out_note


def _late(start):
    return {"frames": ["7", "8"], "beyond_held_out": [], "clock_start": start}


def test_a_clock_from_the_first_cells_is_not_told_it_may_be_far_off():
    early = _held_out_note(_late(4.0))
    assert "may hold more cells than said" not in early and "within 17 %" in early
    assert "~4 cells" in early
    late = _held_out_note(_late(383.0))
    assert "may hold more cells than said, up to ~580" in late and "~383 cells" in late
    assert "may hold more cells than said, up to ~580" in _held_out_note(_late(None))


@pytest.mark.parametrize("command", [["segment", "nuclei"], ["population"]])
def test_the_onnx_packages_are_checked_before_any_work(tmp_path, monkeypatch, capsys, command):
    from devolens.curate import frames as curate_frames
    from devolens.predict import _engine

    monkeypatch.setattr(_engine, "onnx_missing", lambda packages=_engine.ONNX_PACKAGES: list(packages))

    def no_curation(*args, **kwargs):
        raise AssertionError("curated before the backend was checked")

    monkeypatch.setattr(curate_frames, "curate_path", no_curation)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        tifffile.imwrite(folder / f"f{i}.tif", (np.random.default_rng(i).random((64, 64)) * 200).astype(np.uint8))
    out = tmp_path / ("o.csv" if command == ["population"] else "o")
    code = main([*command, str(folder), "--out", str(out), "--backend", "onnx", "--skip-flagged", "auto"])
    assert code == 2
    err = capsys.readouterr().err
    assert "onnx" in err and "pip install" in err and not out.exists()
