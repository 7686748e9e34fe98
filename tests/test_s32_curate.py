"""Curation of phone and screen recordings (a teaching lab's walkthrough): noisy black frames, videos that are
mostly repeats, a video's frame times, and the variable-frame-rate verdict of a constant-rate video with frames
missing."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from devolens.curate.frames import black_or_dark, curate_path, frame_signal, score_frames

from curate_synth import synth_sequence


def _flags(report) -> dict[int, str]:
    return {int(r.frame): r.flag for r in report.itertuples() if r.flagged}


def _noise_frame(rng, shape=(128, 160, 3), level=8.0, sigma=8.0) -> np.ndarray:
    """A lens cap or a camera warming up: a dim grey of noise (no structure)."""
    return np.clip(rng.normal(level, sigma, shape), 0, 255).astype(np.uint8)


def _videos_supported():
    from devolens.io.video import _timestamps_supported

    if not _timestamps_supported():
        pytest.skip("ffmpeg before 6.1 writes no frame timestamps")


# ------------------------------------------------------------------------------------------------ 1: noisy black
def test_noisy_black_frames_and_their_repeats_are_black():
    """A noisy black frame (block contrast above one grey level: the old floor) is black, whatever its noise, and
    a repeat of one is black too, not a duplicate; a noisy frame holding one nucleus is not."""
    rng = np.random.default_rng(0)
    frames = synth_sequence(16, seed=1)
    frames[0], frames[1] = _noise_frame(rng, sigma=8.0), _noise_frame(rng, sigma=12.0)
    frames[2] = frames[1].copy()  # the camera held it
    frames[3] = _noise_frame(rng, level=120.0, sigma=25.0)  # a phone's auto exposure raising a covered lens's noise
    report = score_frames(frames)
    assert report["contrast"].iloc[:4].min() > 1.0  # the old rule's floor
    assert _flags(report) == {0: "black", 1: "black", 2: "black", 3: "black"}
    signals = [frame_signal(f) for f in frames]
    assert list(np.flatnonzero(black_or_dark(signals))) == [0, 1, 2, 3]  # what `population` reads

    one = np.clip(rng.normal(40, 6, (256, 320, 3)), 0, 255)
    yy, xx = np.mgrid[:256, :320]
    one[..., 1] += 150 * np.exp(-((yy - 128) ** 2 + (xx - 170) ** 2) / (2 * 6.0**2))  # a single nucleus
    assert frame_signal(np.clip(one, 0, 255).astype(np.uint8))["peak_snr"] > 20


def test_dark_objects_on_a_bright_ground_are_no_black_frame():
    """A brightfield or DIC frame (a dark embryo on a bright, noisy backdrop) stands out from its ground on the
    dark side: no black frame (the noise rule read only the bright side; ffmpeg's bright test pattern, of mean
    level 219, was called black: tests/test_cli_predict.py::test_frames_missing_mid_video_keep_their_numbers)."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:256, :320]
    field = rng.normal(200, 4, (256, 320))
    field -= 90 * (((yy - 128) / 70.0) ** 2 + ((xx - 160) / 100.0) ** 2 < 1)  # the embryo, darker than the ground
    frame = np.repeat(np.clip(field, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    assert frame_signal(frame)["peak_snr"] > 20
    frames = [np.roll(frame, 3 * i, axis=1) for i in range(6)]  # the stage moving
    assert not black_or_dark([frame_signal(f) for f in frames]).any()
    assert "black" not in _flags(score_frames(frames)).values()


def test_noisy_black_start_of_an_mp4_is_black(tmp_path):
    """The walkthrough's phone recording: three frames of compressed grey noise (level 8) before the embryo."""
    from devolens.io.video import write_video

    rng = np.random.default_rng(1)
    clean = synth_sequence(8, size=(192, 256), seed=2)
    frames = [_noise_frame(rng, (192, 256, 3), sigma=8.0) for _ in range(3)] + clean
    movie = write_video(frames, tmp_path / "start.mp4", fps=2)
    report = curate_path(movie)
    assert _flags(report) == {0: "black", 1: "black", 2: "black"}


# ------------------------------------------------------------------------------------------------ 2: repeats
def _held(frames: list[np.ndarray], times: int, seed: int = 0) -> list[np.ndarray]:
    """Each frame held ``times`` times, the repeats differing by a grey level in a few pixels (an encoder's
    rounding, far below the frames' own noise)."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        out.append(f)
        for _ in range(times - 1):
            bump = (rng.random(f.shape[:2]) < 0.02)[..., None].astype(np.int16)
            out.append(np.clip(f.astype(np.int16) + bump, 0, 255).astype(np.uint8))
    return out


def test_a_video_of_mostly_repeats_has_every_repeat_flagged():
    """A screen recorder holding each image for 10 frames: the lower quartile of the neighbours' changes was a
    repeat's, so most repeats were missed; the reference now leaves changes near zero out."""
    frames = _held(synth_sequence(6, seed=3), 10)
    report = score_frames(frames)
    repeats = {i for i in range(len(frames)) if i % 10}
    assert _flags(report) == {i: "duplicate" for i in repeats}


def test_a_held_video_has_every_repeat_flagged(tmp_path):
    """The same through H.264 (the walkthrough's held20.mp4: 35 of 72 repeats were flagged)."""
    from devolens.io.video import write_video

    frames = [f for f in synth_sequence(6, size=(192, 256), seed=4) for _ in range(8)]
    movie = write_video(frames, tmp_path / "held.mp4", fps=16)
    report = curate_path(movie)
    assert _flags(report) == {i: "duplicate" for i in range(len(frames)) if i % 8}


def test_a_still_slide_is_its_first_frame_and_repeats():
    """A still slide whose frames differ far less than their own noise (what a phone's encoder leaves of them):
    every frame after the first is a duplicate. Two exposures of it, each with fresh noise, differ by that noise:
    no repeats."""
    rng = np.random.default_rng(5)
    slide = np.clip(synth_sequence(1, seed=6)[0].astype(float) + rng.normal(0, 4, (128, 160, 3)), 0, 255)
    encoded = [np.clip(slide + rng.normal(0, 0.3, slide.shape), 0, 255).round().astype(np.uint8) for _ in range(20)]
    assert _flags(score_frames(encoded)) == {i: "duplicate" for i in range(1, 20)}
    scene = synth_sequence(1, seed=6)[0].astype(float)
    exposures = [np.clip(scene + rng.normal(0, 4, scene.shape), 0, 255).astype(np.uint8) for _ in range(20)]
    assert _flags(score_frames(exposures)) == {}


# ------------------------------------------------------------------------------------------------ 3, 4: video times
def _missing_frames_mkv(tmp_path, times: list[float]) -> "Path":
    """A 2 fps H.264 mkv whose frames are stamped at ``times`` (seconds): frames of a constant rate left out."""
    import imageio.v3 as iio
    import imageio_ffmpeg

    frames = synth_sequence(len(times), size=(96, 128), seed=7)
    for k, f in enumerate(frames):
        iio.imwrite(tmp_path / f"f{k:02d}.png", f)
    expr = "0"
    for k in range(len(times) - 1, 0, -1):  # setpts: if(eq(N,1),t1,if(eq(N,2),t2,...))
        expr = f"if(eq(N\\,{k})\\,{times[k]}\\,{expr})"
    out = tmp_path / "gaps.mkv"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-framerate", "2",
                    "-i", str(tmp_path / "f%02d.png"), "-vf", f"setpts='({expr})/TB'", "-fps_mode", "passthrough",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def test_video_frames_get_their_times(tmp_path):
    """`time` holds each video frame's seconds since the first (it was empty for every video)."""
    from devolens.io.video import write_video

    _videos_supported()
    movie = write_video(synth_sequence(6, seed=8), tmp_path / "m.mp4", fps=4)
    report = curate_path(movie)
    assert list(report["time"]) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]


def test_a_constant_rate_with_gaps_of_4_and_5_steps_is_steady(tmp_path):
    """Frames missing from a 2 fps video (gaps of 4 and 5 steps): dropped rows at the times between, and no
    variable-frame-rate verdict (4 and 5 ticks were grouped as one step of 4.5)."""
    from devolens.io.video import video_steady

    _videos_supported()
    movie = _missing_frames_mkv(tmp_path, [0, 0.5, 1.0, 3.0, 3.5, 6.0, 6.5, 7.0])
    report = curate_path(movie)
    assert list(report["time"]) == [0.5 * k for k in range(15)]
    assert list(report.loc[report["flag"] == "dropped", "frame"]) == [3, 4, 5, 8, 9, 10, 11]
    assert video_steady(movie) is True


@pytest.mark.parametrize("steps, irregular", [
    ({1: 5, 4: 1, 5: 1}, False),  # a constant rate, gaps of 3 and 4 frames (a tick is a frame's step)
    ({33: 20, 34: 10, 67: 1}, False),  # 29.97 fps in milliseconds, a frame missing
    ({2: 5, 3: 5}, False),  # 10 fps in 1/25 s: 2 and 3 ticks in turn
    ({2: 8, 7: 4}, True),  # 0.1 s and 0.35 s
    ({3: 10, 4: 1}, True),  # a step a third longer, once
])
def test_steps_that_are_whole_multiples_are_no_variable_rate(steps, irregular):
    from devolens.io.video import _Timestamps

    stamps = _Timestamps("unused")
    stamps._steps = dict(steps)
    assert stamps.irregular is irregular


def test_separate_exposures_of_a_still_scene_are_no_repeats(shared_data):
    """Fresh noise in every frame of an unchanging embryo (a fixed sample filmed at a steady rate) is no run of
    repeats: at 0.8x the noise's change (the first rule) 23 of 24 such frames were flagged duplicate."""
    import cv2

    ref = shared_data / "reference_frames" / "epic_movie_frame300.png"  # (not ../shared/data: the working folder's)
    if not ref.is_file():
        pytest.skip("needs the shared reference frames (DEVOLENS_DATA)")
    base = cv2.imread(str(ref)).astype(np.float32)
    rng = np.random.default_rng(0)
    for sigma in (1.0, 3.0):
        frames = [np.clip(base + rng.normal(0, sigma, base.shape), 0, 255).astype(np.uint8) for _ in range(24)]
        assert not score_frames(frames)["flagged"].any()
