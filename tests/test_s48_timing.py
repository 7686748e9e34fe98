"""Frame timing in `population`: variable-rate videos and animations (a note, and --clock placing the frames at their
times), the interval a file records against the clock's pace, and a folder of frames of several sizes."""

import json
import subprocess

import numpy as np
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)


def _frames(n: int = 12, size=(48, 64)) -> list:
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        img = np.zeros(size, np.uint8)
        for _ in range(2 + i):
            y, x = rng.integers(6, size[0] - 6), rng.integers(6, size[1] - 6)
            img[y - 4:y + 4, x - 4:x + 4] = 200
        frames.append(img)
    return frames


def _vfr_video(path, frames, durations):
    """An H.264 mp4 of ``frames`` shown for ``durations`` seconds each (ffmpeg's concat demuxer, -fps_mode vfr);
    skips the test where that cannot be made or its timestamps cannot be read."""
    import imageio.v3 as iio
    import imageio_ffmpeg

    from devolens.io.video import _timestamps_supported

    if not _timestamps_supported():
        pytest.skip("needs ffmpeg 6.1 or later (frame timestamps)")
    src = path.parent / (path.stem + "_src")
    src.mkdir()
    lines = []
    for i, f in enumerate(frames):
        iio.imwrite(src / f"{i:03d}.png", f)
        lines.append(f"file '{i:03d}.png'\nduration {durations[i]}\n")
    (src / "list.txt").write_text("".join(lines) + f"file '{len(frames) - 1:03d}.png'\n")
    done = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "concat", "-i",
                           str(src / "list.txt"), "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                           str(path)], capture_output=True)
    if done.returncode != 0 or not path.is_file():
        pytest.skip(f"ffmpeg's concat demuxer cannot make a variable-rate video here ({done.stderr[-200:]!r})")
    return path


# ------------------------------------------------------------------------------------- 1: variable-rate videos
@pytest.mark.parametrize("steps, tick, irregular", [
    ({1: 6, 2: 6, 3: 5}, 1.0, True),  # 1 s, 2 s and 3 s in turn: "multiples" as common as the step itself
    ({2: 9, 3: 8}, 1.0, True),  # 2 s and 3 s in turn, in ticks of 1 s: two steps, not 2.5 s rounded
    ({2: 9, 3: 8}, 0.04, False),  # 10 fps in 1/25 s: one step rounded
    ({2: 9, 3: 8}, None, False),  # (the tick not known: as before)
    ({1: 5, 4: 1, 5: 1}, 1.0, False),  # a constant rate, two gaps
])
def test_steps_of_a_variable_rate_are_irregular(steps, tick, irregular):
    from devolens.io.video import _Timestamps

    stamps = _Timestamps("unused")
    stamps._steps, stamps._tick = dict(steps), tick
    assert stamps.irregular is irregular


@pytest.mark.parametrize("gaps", [(1, 2, 3), (2, 3)])
def test_a_video_of_varying_gaps_is_not_steady(tmp_path, gaps):
    """The walkthrough's vfr.mp4 (gaps of 1, 2 and 3 s in turn) and vfr2.mp4 (2 s and 3 s) were judged steady:
    every step a whole multiple of 1 s, and 2 and 3 ticks taken for one step rounded."""
    from devolens.io.video import iter_video_frames, video_steady

    frames = _frames(12)
    movie = _vfr_video(tmp_path / "vfr.mp4", frames, [gaps[i % len(gaps)] for i in range(12)])
    read = iter_video_frames(movie, mark_lost=True)
    assert sum(1 for _ in read) == 13  # (the list's last file shown once more) no frame taken for missing
    assert video_steady(movie) is False


def test_clock_places_a_variable_rate_video_at_its_timestamps(tiny_zoo, tmp_path, capsys, monkeypatch):  # noqa: F811
    """--clock fitted a variable-rate video's frames as evenly spaced, without a word: now one note, and the fit
    gets the frames at their times (in steps of their mean interval), as the record says."""
    from devolens.cli import main
    from devolens.cli import predict as cli_predict

    gaps = [1, 2, 3]
    movie = _vfr_video(tmp_path / "vfr.mp4", _frames(12), [gaps[i % 3] for i in range(12)])
    seen = {}
    fit = cli_predict._clock_fit

    def spy(predictor, df, positions, no_signal):
        seen["positions"] = list(positions)
        return fit(predictor, df, positions, no_signal)

    monkeypatch.setattr(cli_predict, "_clock_fit", spy)
    assert main(["population", str(movie), "--out", str(tmp_path / "p.csv"), "--clock", "--no-plot"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("varying intervals (a variable frame rate): --clock placed them at their times") == 1
    times = np.cumsum([0] + [gaps[i % 3] for i in range(12)], dtype=float)  # 13 frames (the last one twice)
    step = times[-1] / 12
    assert np.allclose(seen["positions"], times / step, atol=0.02)
    record = json.loads((tmp_path / "p.json").read_text())
    assert record["clock_positions"]["from"] == "timestamps"
    assert record["clock_positions"]["step_s"] == pytest.approx(step, abs=0.01)
    # the seconds the timestamps put between frames (2 s) are far from any pace the clock can find (0.2-30 time
    # points of 90 s): said so
    assert "between frames the video's timestamps put" in err and "times of playback, not of filming" in err


def test_clock_notes_an_animation_of_uneven_delays(tiny_zoo, tmp_path, capsys):  # noqa: F811
    """A GIF of 500 ms and 200 ms delays in turn was fitted as evenly spaced, without a note; one of even delays
    gets none."""
    from PIL import Image

    from devolens.cli import main

    images = [Image.fromarray(f).convert("RGB") for f in _frames(10)]
    notes = {}
    for name, delays in (("uneven", [500 if i % 2 == 0 else 200 for i in range(10)]), ("even", [300] * 10)):
        gif = tmp_path / f"{name}.gif"
        images[0].save(gif, save_all=True, append_images=images[1:], duration=delays, loop=0)
        capsys.readouterr()
        assert main(["population", str(gif), "--out", str(tmp_path / f"{name}.csv"), "--clock", "--no-plot"]) == 0
        notes[name] = " ".join(capsys.readouterr().err.split())
        assert "developmental clock:" in notes[name]
    assert notes["uneven"].count("the animation's frames come at varying intervals (their delays differ)") == 1
    assert "varying intervals" not in notes["even"]
    record = json.loads((tmp_path / "uneven.json").read_text())
    step = pytest.approx(3.3 / 9, abs=0.001)  # (9 intervals: 5 of 0.5 s, 4 of 0.2 s)
    assert record["clock_positions"] == {"from": "timestamps", "step_s": step}
    assert json.loads((tmp_path / "even.json").read_text())["clock_positions"] == {"from": "frame_positions"}


# ------------------------------------------------------------------------------- 2: the interval a file records
def test_clock_pace_far_from_a_tiff_interval_is_noted(tiny_zoo, tmp_path, capsys):  # noqa: F811
    """A TIFF timelapse whose ImageJ finterval is 1 s lies far from any pace the clock finds (0.2-30 reference
    time points of 90 s): a note names both; without a recorded interval, nothing."""
    import tifffile

    from devolens.cli import main

    stack = np.stack(_frames(10))
    tifffile.imwrite(tmp_path / "tc.tif", stack, imagej=True, metadata={"axes": "TYX", "finterval": 1})
    tifffile.imwrite(tmp_path / "plain.tif", stack, imagej=True, metadata={"axes": "TYX"})
    assert main(["population", str(tmp_path / "tc.tif"), "--out", str(tmp_path / "tc.csv"), "--clock",
                 "--no-plot"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "than the 1 s between frames its metadata record" in err and "a wrong interval recorded?" in err
    assert main(["population", str(tmp_path / "plain.tif"), "--out", str(tmp_path / "plain.csv"), "--clock",
                 "--no-plot"]) == 0
    assert "between frames" not in " ".join(capsys.readouterr().err.split())


def test_interval_note_says_how_far_and_which_way():
    from types import SimpleNamespace

    from devolens.cli.predict import _interval_note

    fit = SimpleNamespace(rate=10.0)  # 10 time points of 90 s: a frame every 900 s
    text = _interval_note(fit, 90.0, (60.0, "its metadata record"))
    assert "a frame every ~900 s" in text and "15x longer than the 60 s" in text
    assert _interval_note(fit, 90.0, (600.0, "its metadata record")) is None  # within 2x
    assert "3x shorter" in _interval_note(fit, 90.0, (2700.0, "its metadata record"))
    assert _interval_note(fit, None, (60.0, "its metadata record")) is None  # the clock's seconds not known


# ---------------------------------------------------------------------------------- 3: frames of several sizes
def test_population_notes_a_folder_of_frames_of_several_sizes(tiny_zoo, tmp_path, capsys):  # noqa: F811
    """Half the frames of a folder cropped: accepted silently (a cropped frame read 14.8 cells, uncropped 19.5);
    now a note names them. A folder of one size gets none."""
    import imageio.v3 as iio

    from devolens.cli import main

    mixed, same = tmp_path / "mixed", tmp_path / "same"
    mixed.mkdir()
    same.mkdir()
    for i, f in enumerate(_frames(8, size=(64, 80))):
        iio.imwrite(same / f"t{i:03d}.png", f)
        iio.imwrite(mixed / f"t{i:03d}.png", f[4:54, 6:66] if i % 2 else f)
    assert main(["population", str(mixed), "--out", str(tmp_path / "m.csv"), "--no-plot"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert ("4 of 8 frames (t001, t003, t005, t007) are of another size than the first (80x64 pixels): 60x50 "
            "pixels") in err
    assert main(["population", str(same), "--out", str(tmp_path / "s.csv"), "--no-plot"]) == 0
    assert "of another size" not in " ".join(capsys.readouterr().err.split())
