"""Session 40, three defects of ``devolens population`` a walkthrough found: ``--monotone`` fitted a movie in reverse
order (readings 276 -> 3) as one flat line of 118 cells with no word of it (``--clock`` said its curve lay 170 % off);
a run made as ``devolens -q population ...`` left its plot and curation report behind for a later run into the same
CSV (its record's command did not start with "devolens population"; ``is_demo`` made the same test of ``devolens
demo``); a folder of mixed pixel sizes with a µm ``--diameter`` was told to try ``--diameter each``, which population
refuses."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd

from devolens.cli import main
from test_predict_population import _ReadAs


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _movie(root, n=12):
    """``n`` frames of a synthetic timelapse (nothing black or dark in them), ``t001.png`` ..."""
    from curate_synth import synth_sequence
    from devolens.io.images import write_png

    root.mkdir()
    for t, frame in enumerate(synth_sequence(n, seed=11), start=1):
        write_png(frame, root / f"t{t:03d}.png")
    return root


def _population(monkeypatch, src, out, totals, *extra, before=()):
    from devolens.cli import predict as cli_predict

    monkeypatch.setattr(cli_predict, "_load_predictor", lambda *a, **k: _ReadAs(totals))
    argv = ["devolens", *before, "population", str(src), "--out", str(out), *extra]
    monkeypatch.setattr(sys, "argv", argv)  # (the record keeps the command line as typed)
    assert main(argv[1:]) == 0
    return pd.read_csv(out)


# ------------------------------------------------------------------ 1. --monotone far from the readings
RISING = [3, 4, 8, 12, 15, 24, 26, 44, 50, 90, 150, 276]
FAR = "--monotone: the per-frame estimates lie a median"
WORDS = ("off the fitted curve; that is far: frames out of time order, several embryos, or an embryo leaving the "
         "view? The monotone counts are then not reliable (run without --monotone).")


def test_monotone_notes_a_fit_far_from_a_falling_movie(monkeypatch, tmp_path, capsys):
    """The frames in reverse order: the fit is one flat line, every row the same, far from every reading."""
    df = _population(monkeypatch, _movie(tmp_path / "rev"), tmp_path / "p.csv", RISING[::-1], "--monotone",
                     "--no-plot")
    err = _err(capsys)
    assert df["total"].nunique() == 1  # the fit of a falling movie: flat (as before)
    assert FAR in err and WORDS in err
    record = json.loads((tmp_path / "p.json").read_text())
    assert record["monotone_residual"] > 0.3
    assert any(n.startswith(FAR) and n.endswith("(run without --monotone).") for n in record["notes"])


def test_monotone_says_nothing_of_a_rising_movie(monkeypatch, tmp_path, capsys):
    """A movie as filmed, its readings rising with the noise of single frames: its fit lies close (no note)."""
    noisy = [3, 4, 8, 7, 15, 14, 24, 22, 44, 40, 90, 84]
    _population(monkeypatch, _movie(tmp_path / "fwd"), tmp_path / "p.csv", noisy, "--monotone", "--no-plot")
    assert "--monotone:" not in _err(capsys)
    record = json.loads((tmp_path / "p.json").read_text())
    # (but the colour line: which channel of its colour frames was read)
    assert 0 < record["monotone_residual"] < 0.3
    assert not [n for n in record["notes"] if not n.startswith("colour input")]


def test_monotone_measures_the_implausible_readings_too(monkeypatch, tmp_path, capsys):
    """Two embryos' frames interleaved: half the readings are left out of the fit as implausible, and those kept lie
    on it; measured over them alone, the fit lay a few % off. The readings left out count, as in --clock's fit."""
    late, early = [100, 110, 120, 130, 140, 150], [4, 6, 8, 10, 12, 14]
    mixed = [t for pair in zip(late, early) for t in pair]
    _population(monkeypatch, _movie(tmp_path / "mix"), tmp_path / "p.csv", mixed, "--monotone", "--no-plot")
    err = _err(capsys)
    assert "implausible readings" in err and FAR in err


def test_fit_residual_and_the_far_words():
    from devolens.cli.predict import FAR_FROM_FIT, _clock_note, _fit_residual, _monotone_far_note

    assert _fit_residual([10, 20, np.nan], [10, 20, 30], [True, True, True]) == 0.0  # a row without a reading
    assert _fit_residual([0.2, 40], [1, 10], [True, False]) == 0.0  # each at least 1 cell; rows not used
    assert _fit_residual([1, 2], [1, 2], [False, False]) is None
    assert _monotone_far_note(None) is None and _monotone_far_note(FAR_FROM_FIT) is None
    assert _monotone_far_note(np.log(2.0)) == f"{FAR} 100% {WORDS}"
    # --clock's words are the same as before (its rule and words are the ones --monotone shares)
    fit = SimpleNamespace(rate=1.0, totals=np.array([4.0]), residual=np.log(2.7))
    assert _clock_note(fit, None).split("\n") == [
        "developmental clock: 1.00 reference time points per frame; first frame at ~4 cells; the per-frame estimates "
        "lie a median 170% off the fitted curve",
        "[yellow]note:[/] that is far: frames out of time order, several embryos, or development unlike wild type? "
        "The clock's counts are then not reliable (run without --clock)."]
    assert "\n" not in _clock_note(SimpleNamespace(rate=1.0, totals=np.array([4.0]), residual=0.1), None)


# ------------------------------------------------------------------ 2. the program's options before the subcommand
def test_command_words_pass_over_the_programs_options():
    from devolens.cli.predict import command_words

    assert command_words("devolens -q population in --out p.csv") == ["population", "in", "--out", "p.csv"]
    assert command_words("devolens --quiet demo 'my out'") == ["demo", "my out"]
    assert command_words("devolens population") == ["population"]
    assert command_words("devolens -q") == [] and command_words("python population") == []
    assert command_words(None) == [] and command_words("") == []


def test_a_quiet_runs_companions_are_removed_by_the_next_run(monkeypatch, tmp_path):
    """``devolens -q population ... --skip-flagged auto`` wrote p.png and p.curation.csv; a later run into p.csv
    without them left them behind."""
    src = _movie(tmp_path / "movie")
    out = tmp_path / "re" / "p.csv"
    out.parent.mkdir()
    _population(monkeypatch, src, out, RISING, "--skip-flagged", "auto", before=("-q",))
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["command"].startswith("devolens -q population ")
    assert (out.parent / "p.png").is_file() and (out.parent / "p.curation.csv").is_file()
    _population(monkeypatch, src, out, RISING, "--no-plot")
    assert sorted(p.name for p in out.parent.iterdir()) == ["p.csv", "p.json"]


def test_an_older_records_companions_with_options_before_the_subcommand(tmp_path):
    """A record without ``plot`` and ``curation`` (an older devolens): its command line says what it wrote."""
    from devolens.cli.predict import _stale_companions

    out = tmp_path / "p.csv"
    record = tmp_path / "p.json"
    record.write_text(json.dumps({"command": f"devolens --quiet population {tmp_path / 'in'} --out {out}",
                                  "input": str(tmp_path / "in"), "output": str(out),
                                  "options": {"skip_flagged": "auto"}}))
    assert sorted(p.name for p in _stale_companions(record, out)) == ["p.curation.csv", "p.png"]
    record.write_text(json.dumps({"command": f"devolens -q segment nuclei in --out {tmp_path}", "plot": "x.png"}))
    assert _stale_companions(record, out) == []  # no population run's


def test_is_demo_reads_a_quiet_demos_record(tmp_path):
    """``devolens -q demo out`` records ``devolens -q demo out``; without the report (removed, retitled), the folder
    was taken for none of the demo's."""
    from devolens.cli.demo import DEMO_RECORD, is_demo

    (tmp_path / DEMO_RECORD).write_text(json.dumps({"command": f"devolens -q demo {tmp_path}"}))
    assert is_demo(tmp_path)
    (tmp_path / DEMO_RECORD).write_text(json.dumps({"command": f"devolens -q population x --out {tmp_path}/p.csv"}))
    assert not is_demo(tmp_path)


# ------------------------------------------------------------------ 3. mixed pixel sizes: population's own advice
def test_population_advice_for_a_folder_of_mixed_pixel_sizes(tmp_path, capsys):
    import tifffile

    from _render_helpers import blob_frame

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i, size in enumerate((0.2, 0.4)):
        tifffile.imwrite(mixed / f"t{i}.tif", blob_frame((64, 80), seed=i), imagej=True,
                         resolution=(1 / size, 1 / size), metadata={"unit": "um"})
    assert main(["population", str(mixed), "--out", str(tmp_path / "p.csv"), "--diameter", "7um"]) == 2
    err = _err(capsys)
    assert "different pixel sizes (t0.tif 0.2 µm, t1.tif 0.4 µm)" in err and "--diameter each" not in err
    assert "a movie is filmed at one magnification: count the frames of each pixel size separately" in err
    assert not (tmp_path / "p.csv").exists()
    # segment's advice stays: it segments unrelated images, each at its own size if asked
    assert main(["segment", "nuclei", str(mixed), "--out", str(tmp_path / "o"), "--diameter", "7um"]) == 2
    assert "segment them separately, or give the diameter in pixels or --diameter each" in _err(capsys)
