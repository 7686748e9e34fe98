"""Session 48: one rule where the command and the library differed.

1. `population --clock` kept, for frames placed before its reference curve's start, their own lower reading; the
   library's `clock_fit` gave them the curve's first value (2.83 cells for a 1-cell frame). The rule is the library's
   now, and the command takes it from there.
2. `--clock` on an animated GIF or WebP decoded the file a second time for its frames' delays (a bare except turning
   any failure into "no times"): `open_animated` records them as it decodes.
3. `segment nuclei` of a movie whose first frames are grey stored as colour judged each frame on its own; the
   library's population stream pinned the first colour frame's channel. One rule now (`movie_channel`): the command
   chooses before its read-ahead starts, so each frame is judged on its own in both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from devolens.cli import predict as cli_predict

# ------------------------------------------------------------------------ 1. clock_fit: frames before its curve

TAU = np.arange(0.0, 160.0)
LOG_C = np.log(3.0 * 2.0 ** (TAU / 25))  # a curve starting at 3 cells


def _clocked():
    from devolens.predict.population import PopulationPredictor

    table = np.zeros((601, 7), np.float32)
    table[:, 0] = np.arange(601)  # every cell an A: the letters are the total
    return PopulationPredictor("composition", nuclei=object(), composition=table, clock=(TAU, LOG_C))


def _movie():
    """30 frames on the curve from reference time -6 at 2 time points a frame: frames 0-2 before its start, read
    1 cell (lower than the curve's start), 2 cells (no signal: left out of the fit) and 5 cells (higher)."""
    from devolens.predict.population import LETTERS

    pos = np.arange(30)
    totals = 3.0 * 2.0 ** (np.maximum(-6 + 2.0 * pos, 0) / 25)
    totals[:3] = [1.0, 2.0, 5.0]
    df = pd.DataFrame({"frame": [f"t{i:02d}" for i in pos], **{k: 0.0 for k in LETTERS}})
    df["A"] = df["total"] = totals
    use = np.ones(30, bool)
    use[1] = False
    return df, pos, use


def test_clock_fit_keeps_a_lower_reading_before_its_curve_starts():
    df, pos, use = _movie()
    out, fit = _clocked().clock_fit(df, pos, use=use)
    assert out["total"][0] == 1.0 and out["A"][0] == 1.0  # its own reading (the curve's start read it 3)
    assert list(out["total"][1:3]) == pytest.approx([3.0, 3.0])  # left out of the fit / higher: on the curve
    assert np.allclose(fit.totals[:3], 3.0)  # (the fit's totals stay the curve's)
    assert out.attrs["clock_early"] == {"frames": ["t00", "t01", "t02"], "kept": ["t00"], "start": pytest.approx(3.0)}
    totals, _ = _clocked().clock_fit(df[["frame", "total"]], pos, use=use)  # (totals only: letters to match)
    assert totals["total"][0] == pytest.approx(1.0) and totals["A"][0] == pytest.approx(1.0)
    later, _ = _clocked().clock_fit(df.iloc[5:].reset_index(drop=True), pos[5:])
    assert later.attrs["clock_early"] is None  # no frame before the start


def test_the_command_takes_the_librarys_early_frames():
    df, pos, use = _movie()
    out, _ = _clocked().clock_fit(df, pos, use=use)
    early = {"frames": ["t00", "t01", "t02"], "kept": ["t00"], "start": pytest.approx(3.0)}
    assert cli_predict._before_clock(out) == early
    out.attrs.pop("clock_early")  # (a predictor without the rule: a test's stand-in)
    assert cli_predict._before_clock(out) is None


# ------------------------------------------------------------------------ 2. an animation's delays, read once

def test_an_animations_delays_are_recorded_as_it_is_decoded(tmp_path, monkeypatch):
    from PIL import Image

    import devolens.io.images as images

    frames = [Image.fromarray(np.full((24, 32), 20 * i, np.uint8)) for i in range(4)]
    gif = tmp_path / "a.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=[100, 300, 100, 200], loop=0)
    source = cli_predict._Source(gif)
    # (no check that nothing was decoded yet: the source's read-ahead thread starts decoding as it is made, and on a
    # loaded machine had decoded all four frames before the test's next line)
    assert source._animated is not None
    assert len([f for _, f in source.iter(set())]) == 4

    def refused(*a, **k):
        raise AssertionError("the file was opened again")

    monkeypatch.setattr(images, "pillow", refused)  # a second decode would fail now
    assert source.times() == [0.0, 0.1, 0.4, 0.5]
    source.close()


def test_an_animation_without_delays_has_no_times(tmp_path):
    from PIL import Image

    from devolens.io.frames import open_animated

    frames = [Image.fromarray(np.full((24, 32), 20 * i, np.uint8)) for i in range(3)]
    gif = tmp_path / "b.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], loop=0)  # no duration given
    read, n, _ = open_animated(gif)
    assert n == 3 and len(list(read)) == 3 and read.times is None
    webp = tmp_path / "c.webp"
    frames[0].convert("RGB").save(webp, save_all=True, append_images=[f.convert("RGB") for f in frames[1:]],
                                  duration=[50, 150, 50], loop=0, lossless=True)
    read, n, _ = open_animated(webp)
    assert n == 3 and read.times is None and len(list(read)) == 3  # (known once decoded)
    assert read.times == [0.0, 0.05, 0.2]


# ------------------------------------------------------------------------ 3. one rule for a movie's channel

def _frame(bright: tuple[int, int, int]) -> np.ndarray:
    """A 64x64 colour frame of four nuclei, each channel ``bright`` at them."""
    rng = np.random.default_rng(sum(bright))
    img = np.full((64, 64, 3), 10, np.uint8)
    for y, x in ((16, 16), (16, 48), (48, 16), (48, 40)):
        img[y - 5:y + 5, x - 5:x + 5] = bright
    return np.clip(img.astype(int) + rng.integers(0, 3, img.shape), 0, 255).astype(np.uint8) \
        if len(set(bright)) > 1 else img


def test_a_movie_starting_grey_as_colour_is_judged_frame_by_frame_by_both(monkeypatch):
    from devolens.predict.population import _one_channel_stream
    from devolens.predict.postprocess import STREAM_LOOK, auto_channel, movie_channel

    grey, red, green = _frame((120, 120, 120)), _frame((200, 0, 0)), _frame((0, 200, 0))
    assert (auto_channel(red), auto_channel(green)) == ("red", "green")
    movie = [grey] * STREAM_LOOK + [red, green, red]
    # the library: each frame its own (it pinned red, the first colour frame's, for the green one too)
    assert [ch for _, ch in _one_channel_stream(iter(movie))] == ["green"] * STREAM_LOOK + ["red", "green", "red"]
    # the command: nothing pinned on its peeked frames (each frame then judged on its own by the predictor)

    class Source:
        is_video, heads = True, list(enumerate(movie[:STREAM_LOOK]))

    monkeypatch.setattr(cli_predict, "_auto_rule", lambda model: True)
    assert cli_predict._movie_colour("nuclei", "nuclei", None, Source(), set()) is None
    assert movie_channel(movie) is None
    # a colour frame among the first ones pins its channel in both
    movie = [grey, green, red, green] + [red] * 4
    assert movie_channel(movie) == "green"
    assert {ch for _, ch in _one_channel_stream(iter(movie))} == {"green"}
    Source.heads = list(enumerate(movie[:STREAM_LOOK]))
    assert cli_predict._movie_colour("nuclei", "nuclei", None, Source(), set()) == "green"
