"""population's note on late readings (thirty-sixth session, M2): late embryos read low (renders of the AceTree embryo
at 500-582 cells read 297-510), and the note fired only above 384 cells, so a frame read at 290-384 cells, which may be
an embryo of that many cells or a much later one, got no word. It fires from AMBIGUOUS_CELLS (290) on, says what was
measured and how a timelapse from the first cells (--clock) or the time since the first cleavage tells them apart;
under --clock it says where this run's clock starts. Frames above 384 cells are still named as beyond the held-out
renders (tests/test_s35_population.py)."""

from __future__ import annotations

import json

import numpy as np

from devolens.cli import main
from devolens.cli import predict as cli_predict
from devolens.predict.clock import ClockFit
from test_s35_population import _Read, _blobs, _err, _folder


class _Clocked(_Read):
    """A population predictor reading its frames as ``totals``, with a clock that keeps them as they are (its curve
    starting at the first frame's total)."""

    clock = (np.array([0.0, 1.0]), np.array([0.0, 1.0]))  # (only its presence is asked)

    def clock_fit(self, df, positions, use=None):
        totals = df["total"].to_numpy(float)
        return df.copy(), ClockFit(totals=totals, offset=0.0, rate=1.0, residual=0.05)

    @staticmethod
    def smooth(df):
        return df


def _population(monkeypatch, tmp_path, predictor, *extra):
    monkeypatch.setattr(cli_predict, "_load_predictor", lambda *a, **k: predictor)
    tmp_path.mkdir(parents=True, exist_ok=True)
    folder = _folder(tmp_path, [_blobs(seed=i) for i in range(len(predictor.totals))])
    out = tmp_path / "p.csv"
    assert main(["population", str(folder), "--out", str(out), "--no-plot", *extra]) == 0
    return json.loads(out.with_suffix(".json").read_text())


def test_a_late_reading_at_or_below_384_cells_is_noted(monkeypatch, tmp_path, capsys):
    """Frames read at 290-384 cells got no note while a late embryo reads there (31-49 % low); 289 still gets none."""
    record = _population(monkeypatch, tmp_path, _Read([100.0, 289.0, 290.0, 300.0, 384.0], top=572.0))
    err = _err(capsys)
    said = "3 frames (t002, t003, t004) read 290 cells or more, where a total alone does not tell the stage"
    assert said in err
    assert "renders read at 290 or more were of embryos of 263-582 cells" in err  # what was measured
    assert "--clock on a timelapse from the first cells tells them apart" in err
    assert "time since the first cleavage" in err
    assert "above 384 cells" not in err  # none is beyond the held-out renders
    assert any(said in n for n in record["notes"])


def test_no_late_note_below_the_ambiguous_total(monkeypatch, tmp_path, capsys):
    _population(monkeypatch, tmp_path, _Read([20.0, 150.0, 289.0], top=572.0))
    assert "cells or more" not in _err(capsys)


def test_the_note_fires_from_the_constant(monkeypatch, tmp_path, capsys):
    """The line is devolens.predict.population.AMBIGUOUS_CELLS, not a number of the note's own."""
    import devolens.predict.population as population

    monkeypatch.setattr(population, "AMBIGUOUS_CELLS", 250)
    _population(monkeypatch, tmp_path, _Read([100.0, 249.0, 260.0]))
    assert "1 frame (t002) reads 250 cells or more" in _err(capsys)


def test_under_clock_the_note_says_where_the_clock_starts(monkeypatch, tmp_path, capsys):
    """--clock tells late stages apart only from the first cells (AceTree movies from 4-24 cells within 17 %, from
    51 cells or later up to 44 % off): the note says where this run's clock starts."""
    totals = [3.0, 30.0, 120.0, 250.0, 330.0, 420.0]
    _population(monkeypatch, tmp_path, _Clocked(totals), "--clock")
    err = _err(capsys)
    assert "2 frames (t004, t005) read 290 cells or more" in err
    assert "1 frame (t005) is above 384 cells, beyond the held-out renders" in err
    assert "This run's --clock starts at ~3 cells" in err and "from 51 cells or later up to 44 % off" in err
    _population(monkeypatch, tmp_path / "late", _Clocked([383.0, 400.0, 420.0, 450.0, 470.0, 500.0]), "--clock")
    err = _err(capsys)
    assert "6 frames (t000, t001, t002, t003, t004, t005) read 290 cells or more" in err and "all are above 384" \
        not in err
    assert "5 frames (t001, t002, t003, t004, t005) are above 384 cells" in err
    assert "This run's --clock starts at ~383 cells" in err
