"""Session 44: `population --monotone` and `--clock` on a movie whose readings fall and stay low (a table rendered past
its annotation cliff: 280 cells read, then 90) fitted one flat line, or a clock at the slowest pace it tries, without a
word; now a note says so, and a clock pace at an end of its range is called a limit."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from devolens.cli import predict as cli_predict
from devolens.predict.clock import RATES


def _names(n):
    return [str(i) for i in range(n)]


def test_a_fall_the_movie_keeps_is_found():
    rng = np.random.default_rng(0)
    totals = np.r_[rng.normal(280, 20, 10), rng.normal(95, 8, 4)]
    fall = cli_predict._sustained_fall(_names(14), totals, np.ones(14, bool))
    assert fall is not None and fall[0] == "10" and 250 < fall[1] < 310 and 80 < fall[2] < 110


def test_noise_flicker_growth_and_frames_without_signal_are_no_fall():
    rng = np.random.default_rng(1)
    growing = np.linspace(20, 350, 40) * rng.normal(1, 0.1, 40)  # development: 10 % scatter
    assert cli_predict._sustained_fall(_names(40), growing, np.ones(40, bool)) is None
    flicker = growing.copy()
    flicker[20:23] *= 0.3  # three dim frames in the middle: the movie recovers
    assert cli_predict._sustained_fall(_names(40), flicker, np.ones(40, bool)) is None
    dark_end = growing.copy()
    dark_end[-5:] = 1.0  # black frames at the end, of no signal: not read
    use = np.ones(40, bool)
    use[-5:] = False
    assert cli_predict._sustained_fall(_names(40), dark_end, use) is None
    assert cli_predict._sustained_fall(_names(40), dark_end, np.ones(40, bool)) is not None
    assert cli_predict._sustained_fall(_names(5), np.r_[300.0, 300, 300, 90, 90], np.ones(5, bool)) is None  # short


def test_the_notes_name_the_fall_under_the_fit_that_cannot_follow_it():
    attrs = {"fall": ("10", 282.0, 97.0)}
    notes = [text for text, _ in cli_predict._population_notes(Path("m.mp4"), "project", "time", True, attrs, 14)]
    said = [t for t in notes if "fall from about 282 to about 97 cells at frame 10" in t]
    assert len(said) == 1 and "--monotone" in said[0] and "run without --monotone" in said[0]


def test_a_clock_pace_at_an_end_of_its_range_is_called_a_limit():
    def fit(rate):
        return SimpleNamespace(rate=rate, totals=np.array([274.0]), residual=0.1)

    slow = cli_predict._clock_note(fit(RATES[0]), 92.0)
    assert "the slowest it tries" in slow and "not reliable" in slow
    assert "the fastest it tries" in cli_predict._clock_note(fit(RATES[1]), None)
    assert "it tries" not in cli_predict._clock_note(fit(6.1), 92.0)
