"""Session 32, a teaching lab's phone and screen-recorded footage (walkthrough): every flagged frame of a video says
so whatever the outputs, --clock leaves black frames out of its fit, a movie's noisy dark start does not decide
the blobs-or-lines note, a folder straight off a phone names the files it does not read, and the records say which
device ran the network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _render_helpers import blob_frame
from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError


def _blobs(size=(128, 160), seed=0) -> np.ndarray:
    return blob_frame(size, n=12, radius=8, margin=10, background=20.0, seed=seed)


def _video(path: Path, frames) -> Path:
    from devolens.io.video import write_video

    write_video(iter(frames), path, fps=2)
    return path


# ------------------------------------------------------------------ 1: every frame flagged, with an overlay video
@pytest.mark.parametrize("extra", [[], ["--no-overlay"]])
def test_all_flagged_video_says_so_with_or_without_the_overlay(tiny_zoo, tmp_path, capsys, extra):
    """The overlay video's writer ran before the check and said "overlay.mp4: no frames to write"."""
    video = _video(tmp_path / "black.mp4", [np.zeros((64, 96), np.uint8)] * 3)
    out = tmp_path / "out"
    assert main(["segment", "nuclei", str(video), "--skip-flagged", "auto", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert "no frames left to segment (all frames flagged?)" in err and "no frames to write" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


# ------------------------------------------------------------------ 2: --clock leaves frames of no signal out
def _toy_curve():
    tau = np.arange(0.0, 100.0)
    return tau, np.log(2.0) * (1 + tau / 20)


def test_fit_clock_leaves_frames_out_and_reads_them_off_the_curve():
    from devolens.predict.clock import fit_clock

    tau, log_c = _toy_curve()
    pos = np.arange(11.0)
    truth = np.exp(np.interp(30 + 3 * pos, tau, log_c))
    est = truth.copy()
    est[:3] = 1.0  # three black frames read at a cell each
    dragged = fit_clock(pos, est, tau, log_c)
    assert np.median(np.abs(np.log(dragged.totals[3:] / truth[3:]))) > 0.2  # the walkthrough's: every frame off
    use = np.arange(11) >= 3
    fit = fit_clock(pos, est, tau, log_c, use=use)
    np.testing.assert_allclose(fit.totals, truth, rtol=0.05)  # the black frames too, read off the curve
    alone = fit_clock(pos[3:], est[3:], tau, log_c)  # the fit of the frames used alone ...
    np.testing.assert_allclose(fit.totals[3:], alone.totals)
    assert fit.rate == alone.rate and fit.residual == alone.residual
    assert fit.offset == pytest.approx(alone.offset - 3 * alone.rate)  # ... its offset at the first frame
    np.testing.assert_array_equal(fit_clock(pos, est, tau, log_c, use=np.ones(11, bool)).totals, dragged.totals)
    with pytest.raises(DevolensError, match=r"at least 6 frames, got 5 \(6 of 11 left out of the fit\)"):
        fit_clock(pos, est, tau, log_c, use=np.arange(11) >= 6)


def test_population_clock_leaves_flat_frames_out_of_its_fit(tiny_zoo, tmp_path, capsys):
    from devolens.models import load
    from devolens.predict.clock import fit_clock

    frames = [np.zeros((128, 160), np.uint8)] * 3 + [_blobs(seed=i) for i in range(7)]
    video = _video(tmp_path / "blackstart.mp4", frames)
    out = tmp_path / "p.csv"
    assert main(["population", str(video), "--clock", "--no-plot", "--out", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert ("note: 3 frames (0, 1, 2) hold no signal (one grey level throughout): read as a black frame; --clock "
            "left them out of its fit and read their rows off its curve") in err
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["clock_left_out"] == [0, 1, 2] and set(record["clock"]) == {"offset", "rate", "residual"}
    # the fit is that of the frames with signal alone
    plain = tmp_path / "plain.csv"
    assert main(["population", str(video), "--no-plot", "--out", str(plain)]) == 0
    per_frame = pd.read_csv(plain)["total"].to_numpy()
    pop = load("population")
    alone = fit_clock(np.arange(3, 10), per_frame[3:], *pop.clock)
    assert record["clock"]["rate"] == pytest.approx(alone.rate, rel=1e-4)
    assert record["clock"]["residual"] == pytest.approx(alone.residual, abs=1e-4)
    # a run without such frames records none
    assert main(["population", str(_video(tmp_path / "plain.mp4", frames[3:])), "--clock", "--no-plot",
                 "--out", str(tmp_path / "q.csv")]) == 0
    assert json.loads((tmp_path / "q.json").read_text())["clock_left_out"] == []
    assert "--clock left" not in capsys.readouterr().err


def test_population_clock_with_too_few_frames_of_signal_says_why(tiny_zoo, tmp_path, capsys):
    frames = [np.zeros((128, 160), np.uint8)] * 4 + [_blobs(seed=i) for i in range(4)]
    out = tmp_path / "p.csv"
    assert main(["population", str(_video(tmp_path / "m.mp4", frames)), "--clock", "--no-plot",
                 "--out", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "at least 6 frames with signal, got 4: 4 frames of 8 hold no signal" in err and not out.exists()


# ------------------------------------------------------------------ 3: a noisy dark start is not judged
@pytest.mark.skipif(not shipped("nuclei"), reason="needs the shipped nuclei model")
def test_noisy_dark_start_does_not_decide_the_blobs_or_lines_note(shared_data, tmp_path, capsys):
    """4 frames of codec-compressed dark noise (which lacks_structure does not call empty: 180 where real frames
    score 600) before 3 real ones: the first 5 frames judged were mostly noise, read as thin lines (0% in blobs),
    and the nuclei note said the input looked like membranes."""
    import imageio.v3 as iio

    ref = shared_data / "reference_frames"
    names = ("epic_movie_frame045.png", "epic_movie_frame160.png", "epic_movie_frame300.png")
    if not all((ref / n).exists() for n in names):
        pytest.skip("reference frames missing")
    real = [np.asarray(iio.imread(ref / n))[..., 1] for n in names]
    rng = np.random.default_rng(0)
    noise = [np.clip(rng.normal(2, 10, real[0].shape), 0, 255).astype(np.uint8) for _ in range(4)]
    video = _video(tmp_path / "noisystart.mp4", noise + real)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(video), "--out", str(out), "--no-overlay"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "looks like membranes" not in err
    assert not any("looks like" in n for n in json.loads((out / "segment.json").read_text())["notes"])


def test_the_shape_note_judges_the_frames_with_the_most_objects(tiny_zoo, tmp_path, monkeypatch):
    """Which frames the note judges: of the first 20, the 5 in which the model found the most objects, in the
    input's order; the first frames when it found none anywhere."""
    import devolens.cli.predict as cli

    seen = {}

    def shape_note(frames, kind, predictor, channels=0):
        seen["frames"] = [int(f.flat[0]) for f in (frames() if callable(frames) else frames)]
        return None

    monkeypatch.setattr(cli, "_shape_note", shape_note)
    counts = {}

    class Result:
        def __init__(self, n):
            self.count, self.extra = n, {}
            self.labels = np.zeros((32, 32), np.uint16)
            self.objects = {"label": np.array([], int), "x": np.array([]), "y": np.array([]), "area": np.array([])}

    def predict_iter(self, images, total=None, progress=None, workers=None):
        for img in images:
            yield Result(counts[int(np.asarray(getattr(img, "image", img)).flat[0])])

    from devolens.predict.segment import NucleiPredictor

    monkeypatch.setattr(NucleiPredictor, "predict_iter", predict_iter)
    from devolens.io.images import write_png

    for case, objects in (("start", [0, 0, 0, 1, 1, 5, 6, 7, 8, 2]), ("none", [0] * 8)):
        folder = tmp_path / case
        folder.mkdir()
        counts.clear()
        for i, n in enumerate(objects):
            img = np.full((32, 32), 10 + i, np.uint8)  # its first pixel names the frame
            counts[10 + i] = n
            write_png(img, folder / f"t{i:02d}.png")
        cli.run_segmentation("nuclei", folder, tmp_path / f"out_{case}", model="nuclei", overlay=False,
                             diameter=None)
        expected = [15, 16, 17, 18, 19] if case == "start" else [10, 11, 12, 13, 14]
        assert seen["frames"] == expected, case


# ------------------------------------------------------------------ 4: a folder straight off a phone
def _phone_folder(folder: Path) -> Path:
    from devolens.io.images import write_png

    folder.mkdir()
    write_png(_blobs(seed=1), folder / "IMG_0002.PNG")
    write_png(_blobs(seed=2), folder / "photo.png")
    _video(folder / "IMG_0001.MOV", [_blobs(seed=3)] * 2)
    (folder / "IMG_0003.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (folder / "notes.txt").write_text("not an image")  # other files: not named
    return folder


def test_folder_left_out_names_videos_and_heic_photos(tmp_path):
    from devolens.io.frames import folder_files, folder_left_out, left_out_note

    folder = _phone_folder(tmp_path / "case")
    assert [p.name for p in folder_files(folder)] == ["IMG_0002.PNG", "photo.png"]
    found = folder_left_out(folder)
    assert {k: [p.name for p in v] for k, v in found.items()} == {"video": ["IMG_0001.MOV"],
                                                                  "heic": ["IMG_0003.HEIC"]}
    note = left_out_note(folder)
    assert note.startswith("note: 2 files of this folder are not read as frames: 1 video (IMG_0001.MOV): ")
    assert "give each one on its own" in note and "1 HEIC photo (IMG_0003.HEIC)" in note
    assert "export them as JPEG, PNG or TIFF first" in note and "notes.txt" not in note
    assert left_out_note(folder / "photo.png") is None  # a file: no note
    # a render output: its video.mp4 shows the frames read from frames/, and is not left out
    render = tmp_path / "render"
    (render / "frames").mkdir(parents=True)
    from devolens.io.images import write_png

    write_png(_blobs(), render / "frames" / "t000.png")
    _video(render / "video.mp4", [_blobs()])
    assert folder_left_out(render) == {} and left_out_note(render) is None


def test_a_folder_of_videos_only_is_an_error_naming_them(tmp_path, capsys):
    from devolens.io.frames import iter_path_frames

    folder = tmp_path / "case2"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        _video(folder / name, [_blobs()] * 2)
    with pytest.raises(DevolensError, match=r"no image files .* in this folder; it holds 2 videos \(a.mp4, b.mp4\): "
                                            r"a video is a timelapse of its own, not a frame of the folder: give "
                                            r"each one on its own"):
        iter_path_frames(folder)
    assert main(["curate", "frames", str(folder), "--out", str(tmp_path / "c.csv")]) == 2
    assert "it holds 2 videos (a.mp4, b.mp4)" in capsys.readouterr().err
    heic = tmp_path / "heic"
    heic.mkdir()
    (heic / "IMG_1.HEIC").write_bytes(b"")
    with pytest.raises(DevolensError, match=r"it holds 1 HEIC photo \(IMG_1.HEIC\): HEIC is not read: export"):
        iter_path_frames(heic)
    with pytest.raises(DevolensError, match=r"HEIC photos are not read: export them as JPEG, PNG or TIFF first"):
        iter_path_frames(heic / "IMG_1.HEIC")


def test_commands_note_the_files_a_folder_leaves_out(tiny_zoo, tmp_path, capsys):
    folder = _phone_folder(tmp_path / "case")
    assert main(["curate", "frames", str(folder), "--out", str(tmp_path / "c.csv")]) == 0
    assert "note: 2 files of this folder are not read as frames: 1 video (IMG_0001.MOV)" in capsys.readouterr().err
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--no-overlay"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "2 frames" in err and "1 HEIC photo (IMG_0003.HEIC)" in err
    assert any(n.startswith("2 files of this folder are not read as frames")
               for n in json.loads((out / "segment.json").read_text())["notes"])
    assert main(["population", str(folder), "--no-plot", "--out", str(tmp_path / "p.csv")]) == 0
    assert "1 video (IMG_0001.MOV)" in capsys.readouterr().err


# ------------------------------------------------------------------ 6: the device that ran the network
def test_records_say_which_device_ran_the_network(tiny_zoo, tmp_path):
    from devolens.io.images import write_png
    from devolens.predict.devices import resolve_device

    ran = resolve_device("auto")  # cpu on a machine without a GPU, as the tests run

    img = tmp_path / "a.png"
    write_png(_blobs(), img)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(img), "--out", str(out), "--device", "auto", "--no-overlay"]) == 0
    record = json.loads((out / "segment.json").read_text())
    assert record["device"] == ran and record["options"]["device"] == "auto"
    assert main(["population", str(img), "--out", str(tmp_path / "p.csv"), "--device", "auto", "--no-plot"]) == 0
    record = json.loads((tmp_path / "p.json").read_text())
    assert record["device"] == ran and record["options"]["device"] == "auto"


def test_left_out_file_names_with_brackets_are_printed_whole(tiny_zoo, tmp_path, capsys):
    """A file named 'movie [raw].mp4' was printed 'movie .mp4': rich read '[raw]' as markup."""
    import imageio.v2 as iio

    folder = tmp_path / "tv"
    folder.mkdir()
    for i in range(2):
        iio.imwrite(folder / f"f{i}.png", _blobs(seed=i))
    (folder / "movie [raw].mp4").write_bytes(b"x")
    (folder / "IMG_[b]1.HEIC").write_bytes(b"x")
    assert main(["curate", "frames", str(folder), "--out", str(tmp_path / "c.csv")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "movie [raw].mp4" in err and "IMG_[b]1.HEIC" in err
    assert main(["segment", "nuclei", str(folder), "--out", str(tmp_path / "s")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "movie [raw].mp4" in err
    notes = json.loads((tmp_path / "s" / "segment.json").read_text())["notes"]
    assert any("movie [raw].mp4" in n for n in notes)
