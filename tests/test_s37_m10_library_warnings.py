"""The library says what the command line notes (thirty-seventh session, M10): ``PopulationPredictor.predict`` and
``predict_batch`` leave a frame without signal empty (NaN), as ``devolens population`` leaves its row, with a
NoSignalWarning (they returned the black frame's reading, about 1.2 cells, silently); ``smooth`` and ``clock_fit``
leave such rows out of their fits; ``load("population", foo=1)`` names itself, not the nuclei model it forwards
options to; ``IdentityPredictor.predict`` issues ``devolens identify``'s notes on its input as IdentityWarnings
(``input_notes``, moved from the command), which the command prints once, as notes."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from _identity_helpers import random_predictor
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from test_s35_population import _blobs, _codec_black, _folder


def _caught(call):
    """``call()``'s result and the warnings it issued (every one, however often seen before)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [w for w in caught if issubclass(w.category, UserWarning)]


# ------------------------------------------------------------------ 1. population: frames without signal
def test_the_warning_classes_are_documented_user_warnings():
    from devolens.errors import IdentityWarning, NoSignalWarning

    for cls in (NoSignalWarning, IdentityWarning):
        assert issubclass(cls, UserWarning) and cls.__doc__ and cls.__module__ == "devolens.errors"


def test_predict_leaves_a_frame_without_signal_empty_and_says_so(tiny_zoo):
    from devolens.models import load

    pops = load("population")
    for frame, words in [(np.zeros((512, 752), np.uint8), "one grey level throughout"),
                         (np.full((64, 96), np.nan, np.float32), "no finite pixel"),
                         (_codec_black(), "black, nothing in it a grey level or two above the background")]:
        counts, caught = _caught(lambda: pops.predict(frame))
        assert list(counts) == ["A", "E", "M", "P", "C", "D", "Z", "total"]
        assert all(np.isnan(v) for v in counts.values())  # was A 0.22, P 1.0, total 1.22
        from devolens.errors import NoSignalWarning

        assert [w.category for w in caught] == [NoSignalWarning]
        text = str(caught[0].message)
        assert text.startswith("the frame holds no signal (") and words in text and "counts are NaN" in text
        assert caught[0].filename == __file__  # (pointing at the caller's line)
        assert pops.flat_frames == [0]
    frame = _blobs()
    counts, caught = _caught(lambda: pops.predict(frame))
    assert caught == [] and counts["total"] > 0
    assert counts == {k: float(v) for k, v in next(pops.predict_iter([frame])).items() if k in counts}  # unchanged


def test_predict_batch_agrees_with_the_command(tiny_zoo, tmp_path, capsys):
    """The rows the command leaves empty are the rows predict_batch leaves empty; the others are the command's."""
    from devolens.models import load

    frames = [_blobs(seed=0), _codec_black(), _blobs(seed=1), np.full((256, 256), 7, np.uint8), _blobs(seed=2)]
    folder = _folder(tmp_path, frames)
    out = tmp_path / "p.csv"
    assert main(["population", str(folder), "--out", str(out), "--no-plot", "--diameter", "none"]) == 0
    cli = pd.read_csv(out)
    pops = load("population")
    df, caught = _caught(lambda: pops.predict_batch(frames))
    assert df["total"].isna().tolist() == cli["total"].isna().tolist() == [False, True, False, True, False]
    assert df[df["total"].isna()].isna().all().all()
    from devolens.errors import NoSignalWarning

    assert np.allclose(df.round(2).dropna().to_numpy(), cli.drop(columns="frame").dropna().to_numpy())
    assert [w.category for w in caught] == [NoSignalWarning]  # one for the batch
    assert str(caught[0].message).startswith("2 of 5 frames (positions 1, 3, from 0; in the predictor's flat_frames) "
                                             "hold no signal (one grey level throughout, or black")
    assert pops.flat_frames == [1, 3]
    # the stream keeps the black frame's reading, marked, for a caller's fit (population --monotone, --clock)
    rows, caught = _caught(lambda: list(pops.predict_iter(frames)))
    assert caught == [] and [r["flat"] for r in rows] == [False, True, False, True, False]
    assert all(np.isfinite(r["total"]) for r in rows)
    # frames with signal only: no warning, no empty row
    df, caught = _caught(lambda: pops.predict_batch([frames[0], frames[2]]))
    assert caught == [] and df["total"].notna().all()


def _composition_predictor(clock=None):
    from devolens.predict.population import PopulationPredictor

    table = np.zeros((601, 7), np.float32)
    table[:, 0] = np.arange(601)  # every cell an A: the letters are the total
    return PopulationPredictor("composition", nuclei=object(), composition=table, clock=clock)


def test_smooth_and_clock_fit_leave_empty_rows_out():
    from devolens.predict.population import COLUMNS, LETTERS
    from devolens.predict.postprocess import smooth_populations

    rng = np.random.default_rng(0)
    totals = np.exp(np.linspace(np.log(4), np.log(300), 30)) * np.exp(rng.normal(0, 0.1, 30))
    df = pd.DataFrame({k: 0.0 for k in LETTERS}, index=range(30))
    df["A"], df["total"] = totals, totals
    df = df[list(COLUMNS)]
    empty = np.zeros(30, bool)
    empty[[0, 7, 29]] = True
    holes = df.copy()
    holes.loc[empty, list(COLUMNS)] = np.nan  # as predict_batch leaves frames without signal
    pred = _composition_predictor()
    smoothed = pred.smooth(holes)
    assert smoothed[empty].isna().all().all()
    kept = smooth_populations(df[~empty]).reset_index(drop=True)
    assert np.allclose(smoothed[~empty].reset_index(drop=True).to_numpy(), kept.to_numpy())
    assert pred.smooth(df).equals(smooth_populations(df))  # without empty rows: as before

    tau = np.arange(0.0, 160.0)
    pred = _composition_predictor(clock=(tau, np.log(2.0 ** (1 + tau / 25))))
    out, fit = pred.clock_fit(holes, range(30))  # refused before: "totals must be finite numbers; frame 0 has nan"
    want, want_fit = pred.clock_fit(df, range(30), use=~empty)  # their readings left out of the fit
    assert np.allclose(out["total"], want["total"]) and fit.rate == pytest.approx(want_fit.rate)
    assert np.isfinite(out["total"]).all()  # read off the curve, as population --clock reads them


# ------------------------------------------------------------------ 2. load('population') names itself
@pytest.mark.parametrize("option", [{"foo": 1}, {"window": 0}])
def test_an_unknown_population_option_is_named_as_given(tiny_zoo, option):
    from devolens.errors import DevolensError
    from devolens.models import load

    with pytest.raises(DevolensError) as caught:
        load("population", **option)
    name = next(iter(option))
    assert str(caught.value) == (f"load('population'): unknown option '{name}'; see help(devolens.predict.population."
                                 "PopulationPredictor) for the options")  # was load('nuclei') ... help(NucleiPredictor)


# ------------------------------------------------------------------ 3. identity: the command's notes as warnings
def _simulated(short: bool = False) -> pd.DataFrame:
    from devolens.lineage.simulate import simulate_embryo

    table = simulate_embryo(2, n_cells=200)
    if short:  # up to the first time point of 28 nuclei
        size = table.groupby("time")["cell"].transform("size")
        table = table[table["time"] <= table.loc[size >= 28, "time"].min()]
    return table


@pytest.mark.parametrize("short, words", [(False, "nucleus cloud is nearly symmetric"),
                                          (True, "the table stops at 28 nuclei")])
def test_identity_predict_warns_what_identify_notes(short, words):
    from devolens.errors import IdentityWarning
    from devolens.predict.identity import input_notes

    table = _simulated(short)
    out, caught = _caught(lambda: random_predictor().predict(table))
    notes = input_notes(out.attrs)
    assert any(words in n for n in notes)
    assert [w.category for w in caught] == [IdentityWarning] * len(notes)
    assert [str(w.message) for w in caught] == notes
    assert all(w.filename == __file__ for w in caught)


def test_notes_name_the_predictors_argument_outside_the_command():
    from devolens.predict.identity import input_notes

    attrs = {"largest_clouds": {"e": 380}, "frame_skewness": {"e": (0.17, -0.10)},
             "tracking": {"e": {"step": 1.0, "motion": 0.2, "sparse": False, "gap_links": 0, "per_nucleus": 6.1}}}
    (note,) = input_notes(attrs)
    assert note.endswith("compare with smooth='none'")
    assert input_notes(attrs, command=True) == [note.replace("smooth='none'", "--smooth none")]
    quiet = {**attrs, "tracking": {"e": {**attrs["tracking"]["e"], "per_nucleus": 2.2}}}
    assert input_notes(quiet) == []  # a whole real embryo's figures: no note, no warning


def test_identify_prints_the_notes_once_and_records_them(tmp_path, capsys, monkeypatch):
    import devolens.models
    from devolens.predict.identity import input_notes

    monkeypatch.setattr(devolens.models, "load", lambda name, **options: random_predictor())
    src = tmp_path / "short.csv"
    _simulated(short=True).to_csv(src, index=False)
    out = tmp_path / "cells.csv"
    code, caught = _caught(lambda: main(["identify", str(src), "--out", str(out)]))
    assert code == 0
    assert caught == []  # the command silences the warnings it prints as notes
    err = " ".join(capsys.readouterr().err.split())
    notes = json.loads(out.with_suffix(".json").read_text())["notes"]
    lib, _ = _caught(lambda: random_predictor().predict(src))
    said = [n for n in notes if not n.startswith("z plane spacing estimated")]  # (the command's own: session 47)
    assert said == input_notes(lib.attrs, src, command=True) and any("stops at 28 nuclei" in n for n in notes)
    for note in notes:
        assert err.count(" ".join(note.split())) == 1
    assert "Warning" not in err
