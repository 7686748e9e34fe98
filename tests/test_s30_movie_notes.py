"""What a degraded movie leaves in the records (thirtieth session's walkthrough: a held-out rendered movie bleached
to 15 %, drifting, blurred to sigma 5 and flickering): the spread of the frames the magnification estimate combined,
the nuclei dimming over the movie (also noted), and the per-frame totals' drift from the developmental clock. The
spread and the drift are recorded, not noted: the review found as-rendered movies and the real reference frames
spreading and drifting as far as the degraded movie. The results stay as they were."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _zoo_helpers import tiny_network

from devolens.predict.clock import fit_clock
from devolens.predict.segment import NucleiPredictor
from devolens.predict.sizing import (
    MIN_OBJECTS, DiameterEstimate, SizeModel, estimate_diameter, gather, style_features,
)

TAU = np.arange(0.0, 160.0)
# a toy reference curve whose growth slows (as the real one's does): a drift cannot pass for another pace
LOG_C = np.log(2.0 + 400.0 / (1.0 + np.exp(-(TAU - 80.0) / 15.0)))


def _tiny():
    return tiny_network(3)


def _discs(shape, radius, n, value=200):
    """``n`` bright discs of ``radius`` px on black, on a grid (apart from each other)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape, np.uint8)
    cols = int(np.ceil(np.sqrt(n * shape[1] / shape[0])))
    rows = int(np.ceil(n / cols))
    for c in range(n):
        cy, cx = (c // cols + 0.5) * shape[0] / rows, (c % cols + 0.5) * shape[1] / cols
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = value
    return img


def _area_model(pred, small, big, m_small: float, m_big: float) -> SizeModel:
    """A size model reading the log bright area only: ``m_small`` for ``small``, ``m_big`` for ``big``."""
    fs, fb = style_features(pred, small), style_features(pred, big)
    coef = np.zeros(len(fs))
    coef[-1] = (np.log(m_big) - np.log(m_small)) / (fb[-1] - fs[-1])
    return SizeModel(np.zeros(len(fs)), np.ones(len(fs)), coef, float(np.log(m_small) - coef[-1] * fs[-1]), m0=0.8)


# ---------------------------------------------------------------------------- 1. the estimate's spread and frames
def test_estimate_keeps_the_spread_and_positions_of_the_frames_it_combined():
    """The median of frames that read 1.0x and 1.6x is kept as it was; the estimate now also says which frames it
    judged by (their positions in the stream) and how far apart they read."""
    pred = NucleiPredictor(_tiny(), scale=0.5, diameter_ref=20.0, auto_keep=(0.5, 1.15))
    shape = (96, 128)
    one = _discs(shape, 10, 1)  # too few nuclei: read, never decides
    small, big = _discs(shape, 4, MIN_OBJECTS + 4), _discs(shape, 6, MIN_OBJECTS + 4)
    pred.size_model = _area_model(pred, small, big, 1.0, 1.6)
    read, chosen = gather(pred, iter([one, one, small, small, big, big, big]))
    assert chosen.frames == [2, 3, 4, 5, 6] and len(read) == 7
    est = estimate_diameter(pred, chosen)
    assert est.frames == [2, 3, 4, 5, 6] and est.used == [True] * 5 and est.trusted == 5
    assert est.spread == pytest.approx((1.0, 1.6), rel=1e-3)
    assert est.magnification == pytest.approx(1.6, rel=1e-3)  # the median, as before
    # a few-nuclei frame among those read does not widen the spread (it did not decide)
    est = estimate_diameter(pred, [one, small, small])
    assert est.frames is None and est.used == [False, True, True]  # images given by hand: positions unknown
    assert est.spread == pytest.approx((1.0, 1.0), rel=1e-3)


def test_estimate_records_the_spread_and_the_note_stays_as_it_was():
    from devolens.cli.predict import _estimate_note, _sizing_record

    names = [f"t{i:03d}" for i in range(40)]
    spread = DiameterEstimate(diameter=40.8, magnification=1.23, per_image=[1.06, 1.11, 1.23, 1.65, 1.68],
                              trusted=5, resize=0.87, frames=[8, 10, 12, 14, 16], used=[True] * 5,
                              spread=(1.06, 1.68))
    note = _estimate_note(spread, "nuclei")
    assert note == ("diameter auto: the images look 1.2x as magnified as the model's training frames; resized "
                    "0.87x for the network, as --diameter 40.8 would do (give --diameter to set it)")  # one decimal
    kept = DiameterEstimate(diameter=None, magnification=1.0, per_image=[0.8, 1.2], trusted=2, spread=(0.8, 1.2))
    assert _estimate_note(kept, "nuclei") is None  # used as they are: no note, as before
    record = _sizing_record("auto", spread, frames=names)
    assert record["spread"] == [1.06, 1.68] and record["frames"] == ["t008", "t010", "t012", "t014", "t016"]
    assert record["per_image"] == [1.06, 1.11, 1.23, 1.65, 1.68] and record["magnification"] == 1.23
    json.dumps(record)
    each = _sizing_record("each", estimates=[spread], frames=["a"])
    assert set(each["per_image"][0]) == {"frame", "magnification", "diameter", "resize", "trusted", "small",
                                         "backdrop"}  # one image each: as before


# ---------------------------------------------------------------------------- 3. the clock's residual trend
def _movie_totals(n=36, drift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    pos = np.arange(float(n))
    true = np.exp(np.interp(10 + 3.0 * pos, TAU, LOG_C))
    est = true * np.exp(rng.normal(0, 0.08, n))
    est[pos >= n - n // 3] *= np.exp(drift)  # the last third off the curve (out of focus, bleached...)
    return pos, est


def test_clock_fit_records_how_the_frames_drift_away_from_the_curve():
    pos, est = _movie_totals()
    steady = fit_clock(pos, est, TAU, LOG_C)
    assert abs(steady.late) < 0.1 and abs(steady.slope) < 0.01
    pos, est = _movie_totals(drift=-0.5)  # the last third reads 40 % low (focus drift)
    drifting = fit_clock(pos, est, TAU, LOG_C)
    assert drifting.late < -0.2 and drifting.slope < 0
    rising = fit_clock(*_movie_totals(drift=0.5), TAU, LOG_C)
    assert rising.late > 0.2 and rising.slope > 0


# ---------------------------------------------------------------------------- the CLI's notes and records
from test_predict_population import _ReadAs  # noqa: E402  (the same fake predictor, with a clock)


class _Clocked(_ReadAs):
    """A population predictor reading its frames as ``totals`` (all in A), with a toy clock."""

    clock = (TAU, LOG_C)

    def clock_fit(self, df, positions):
        fit = fit_clock(positions, df["total"].to_numpy(float), *self.clock)
        out = df.copy()
        out["A"] = out["total"] = fit.totals
        return out, fit

    @staticmethod
    def smooth(df):
        from devolens.predict.population import PopulationPredictor

        return PopulationPredictor.smooth(df)

    def size_advice(self, areas):
        return None


def _frames(tmp_path, n, brightness):
    """``n`` frames of 12 nuclei at ``brightness[i]`` grey levels (a folder of PNGs)."""
    from devolens.io.images import write_png

    src = tmp_path / "movie"
    src.mkdir()
    for i in range(n):
        write_png(_discs((96, 128), 6, 12, value=int(brightness[i])), src / f"t{i:03d}.png")
    return src


def _run(monkeypatch, tmp_path, src, totals, *extra):
    from devolens.cli import main
    from devolens.cli import predict as cli_predict

    monkeypatch.setattr(cli_predict, "_load_predictor", lambda *a, **k: _Clocked(totals))
    out = tmp_path / "pops.csv"
    assert main(["population", str(src), "--out", str(out), "--no-plot", *extra]) == 0
    return pd.read_csv(out), json.loads((tmp_path / "pops.json").read_text())


def test_population_notes_dimming_frames_and_records_a_drift_from_the_clock(monkeypatch, tmp_path, capsys):
    n = 36  # (fewer frames of the toy curve lie on its early, exponential part: a drift passes for a slower pace)
    pos, totals = _movie_totals(n, drift=-0.5)
    src = _frames(tmp_path, n, np.linspace(220, 40, n))  # bleached to ~18 % of the first frames' brightness
    df, record = _run(monkeypatch, tmp_path, src, totals, "--clock")
    err = " ".join(capsys.readouterr().err.split())
    assert "developmental clock:" in err
    assert "drift away from the clock" not in err  # recorded only: as-rendered movies drift as far (review)
    drift = record["clock_drift"]
    assert drift["late_residual"] < -0.2 and drift["residual_slope"] < 0 and set(drift) == {"residual_slope",
                                                                                           "late_residual"}
    assert set(record["clock"]) == {"offset", "rate", "residual"}  # the fit's record as it was
    assert "the nuclei dim to" in err and "of the first frames' brightness by the last frames" in err
    assert 0.1 < record["brightness"]["ratio"] < 0.3 and record["brightness"]["frames"] == 5
    clocked = df["total"].to_numpy()
    plain, _ = _run(monkeypatch, tmp_path, src, totals)  # without --clock: no clock note, the totals as read
    err = " ".join(capsys.readouterr().err.split())
    assert "drift away from the clock" not in err and "the nuclei dim to" in err
    np.testing.assert_allclose(plain["total"], np.round(totals, 2))
    assert not np.allclose(clocked, plain["total"])


def test_population_says_nothing_more_of_a_steady_movie(monkeypatch, tmp_path, capsys):
    n = 36
    _, totals = _movie_totals(n)
    src = _frames(tmp_path, n, np.full(n, 200))
    _, record = _run(monkeypatch, tmp_path, src, totals, "--clock")
    err = " ".join(capsys.readouterr().err.split())
    assert "developmental clock:" in err and "drift away" not in err and "dim to" not in err
    assert record["brightness"]["ratio"] == pytest.approx(1.0)
    assert abs(record["clock_drift"]["late_residual"]) < 0.1


def test_brightness_is_measured_on_the_movies_ends_only(monkeypatch, tmp_path, capsys):
    """The brightness record costs the first and last BRIGHTNESS_FRAMES frames' measures (every frame with
    --monotone, which needs them all)."""
    from devolens.cli import predict as cli_predict

    n = 24
    src = _frames(tmp_path, n, np.full(n, 200))
    seen = []
    real = cli_predict._frame_signal
    monkeypatch.setattr(cli_predict, "_frame_signal", lambda frame: seen.append(1) or real(frame))
    _run(monkeypatch, tmp_path, src, np.linspace(10, 100, n))
    assert len(seen) == 2 * cli_predict.BRIGHTNESS_FRAMES
    seen.clear()
    _run(monkeypatch, tmp_path, src, np.linspace(10, 100, n), "--monotone")
    assert len(seen) == n
