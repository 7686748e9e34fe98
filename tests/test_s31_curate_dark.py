"""A frame dimmed to x0.3 early in a fast-growing movie is dark: filmed at a coarse time step, such an embryo
spreads its frames' level ratios so wide that the dimmed frame falls inside that spread, but its nuclei dim with it
(the foreground, which does not grow with the number of nuclei, falls past ``dark_ratio`` below both sides'), while
frames that merely lose nuclei, or whose optics swing from frame to frame, are not called dark."""

from __future__ import annotations

import numpy as np
import pytest

from curate_synth import synth_sequence
from devolens.cli import main
from devolens.curate.frames import black_or_dark, frame_signal, score_frames

#: nuclei per frame of an embryo that grows fast between frames (a coarse time step), then steadies
FAST = [2, 3, 5, 8, 12, 18, 27, 40, 40, 40, 40, 40]


def _flags(report) -> dict[int, str]:
    return {int(r.frame): r.flag for r in report.itertuples() if r.flagged}


def _dimmed(frame: np.ndarray, factor: float = 0.3) -> np.ndarray:
    return np.floor(frame.astype(np.float32) * factor).astype(np.uint8)


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_a_dimmed_frame_of_a_fast_growing_embryo_is_dark(seed):
    base = synth_sequence(len(FAST), seed=seed, counts=FAST)
    assert _flags(score_frames(base)) == {}
    for i in range(1, len(FAST) - 1):
        frames = list(base)
        frames[i] = _dimmed(frames[i])
        report = score_frames(frames)
        assert _flags(report) == {i: "dark"}, (seed, i, _flags(report))
        assert black_or_dark([frame_signal(f) for f in frames]).tolist() == [j == i for j in range(len(FAST))]


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_a_frame_with_fewer_nuclei_is_not_dark(seed):
    """A frame that loses most of its nuclei (out of the field, out of focus) has its level fall as far as a dimmed
    frame's, but its nuclei are as bright as ever: not dark."""
    counts = list(FAST)
    counts[9] = 8
    frames = synth_sequence(len(counts), seed=seed, counts=counts)
    report = score_frames(frames)
    assert report["level_ratio"].iloc[9] < 0.7
    assert _flags(report) == {}


@pytest.fixture(scope="module")
def early_render(tmp_path_factory):
    """An early embryo (1 to ~50 nuclei) rendered every 10th time point: the level ratios spread wide."""
    import imageio.v3 as iio

    from devolens.render.dataset import render_dataset, simulate_tables

    out = tmp_path_factory.mktemp("early")
    render_dataset(simulate_tables(1, seed=5), out, times=range(1, 121), every=10, size=(96, 144), seed=5)
    files = sorted((out / "frames").glob("*.png"))
    return out, files, [iio.imread(f) for f in files]


def test_a_dimmed_frame_of_an_early_render_is_dark(early_render):
    _, _, base = early_render
    assert _flags(score_frames(base)) == {}
    for i in range(1, len(base) - 1):
        frames = list(base)
        frames[i] = _dimmed(frames[i])
        report = score_frames(frames)
        assert _flags(report) == {i: "dark"}, (i, _flags(report))


def test_curate_frames_reports_the_dimmed_frame(early_render, tmp_path, capsys):
    import imageio.v3 as iio

    _, files, base = early_render
    folder = tmp_path / "frames"
    folder.mkdir()
    for j, (f, image) in enumerate(zip(files, base)):
        iio.imwrite(folder / f.name, _dimmed(image) if j == 4 else image)
    out = tmp_path / "report.csv"
    assert main(["curate", "frames", str(folder), "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().err.split())
    assert f"{len(base)} frames, 1 flagged (dark 1)" in text


def test_optics_that_swing_from_frame_to_frame_make_no_dark_frames(tmp_path):
    """New optics for every frame (``vary="frame"``) swing the brightness of clean frames against their
    neighbours, their nuclei's with it: the spread of foreground ratios keeps them from being called dark."""
    import imageio.v3 as iio

    from devolens.render.dataset import render_dataset, simulate_tables

    render_dataset(simulate_tables(1, seed=8), tmp_path, times=range(1, 151), every=10, size=(96, 144), seed=8,
                   vary="frame")
    frames = [iio.imread(f) for f in sorted((tmp_path / "frames").glob("*.png"))]
    report = score_frames(frames)
    assert not report["dark"].any(), _flags(report)
