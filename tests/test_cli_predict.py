"""CLI: devolens segment nuclei|membrane, devolens population, devolens models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from _cli_helpers import blob_frame
from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.cli import predict as cli_predict


_frame = blob_frame


def _folder(path: Path, n=3, **kw) -> Path:
    from devolens.io.images import write_png

    path.mkdir()
    for i in range(n):
        write_png(_frame(seed=i, **kw), path / f"t{i + 1:03d}.png")
    return path


def _video(path: Path, n=5) -> Path:
    from devolens.io.video import write_video

    write_video((_frame(64, 96, seed=i) for i in range(n)), path, fps=5)
    return path


def _no_partials(parent: Path) -> bool:
    return not [p for p in parent.iterdir() if ".partial-" in p.name]


def test_segment_nuclei_folder(tiny_zoo, tmp_path):
    src = _folder(tmp_path / "frames", n=3)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--batch-size", "2"]) == 0
    labels = sorted((out / "labels").glob("*_labels.tif"))
    assert [p.name for p in labels] == ["t001_labels.tif", "t002_labels.tif", "t003_labels.tif"]
    lab = tifffile.imread(labels[0])
    assert lab.dtype == np.uint16 and lab.shape == (48, 70)
    obj = pd.read_csv(out / "objects.csv")
    assert list(obj.columns) == ["frame", "label", "x", "y", "area", "mean_intensity"]
    counts = pd.read_csv(out / "counts.csv")
    assert list(counts.columns) == ["frame", "count"] and list(counts["frame"]) == ["t001", "t002", "t003"]
    for f, c in zip(counts["frame"], counts["count"]):
        assert c == int(tifffile.imread(out / "labels" / f"{f}_labels.tif").max())
        assert (obj["frame"] == f).sum() == c
    assert len(list((out / "overlays").glob("*.png"))) == 3
    assert _no_partials(tmp_path)


def test_segment_single_grey_file(tiny_zoo, tmp_path):
    from devolens.io.images import write_png

    write_png(_frame(41, 59, rgb=False), tmp_path / "one.png")
    out = tmp_path / "o"
    assert main(["segment", "nuclei", str(tmp_path / "one.png"), "--out", str(out), "--no-overlay"]) == 0
    assert tifffile.imread(out / "labels" / "one_labels.tif").shape == (41, 59)
    assert not (out / "overlays").exists()


def test_segment_video_is_streamed_one_label_per_frame(tiny_zoo, tmp_path, monkeypatch):
    video = _video(tmp_path / "movie.mp4", n=30)
    import devolens.io.frames as cf
    import devolens.io.images as images

    state = {"pulled": 0, "written": 0, "max_in_flight": 0}
    real_iter, real_write = cf.iter_path_frames, images.write_label_tif

    def spy_iter(path, **options):
        frames, names, total = real_iter(path, **options)

        def gen():
            for f in frames:
                state["pulled"] += 1
                state["max_in_flight"] = max(state["max_in_flight"], state["pulled"] - state["written"])
                yield f

        return gen(), names, total

    def spy_write(labels, path, **kw):
        state["written"] += 1
        return real_write(labels, path, **kw)

    monkeypatch.setattr(cf, "iter_path_frames", spy_iter)
    monkeypatch.setattr(images, "write_label_tif", spy_write)
    # a read-ahead budget of 4 frames (64x96 RGB) instead of 256 MB, which would hold this whole video
    monkeypatch.setattr(cli_predict, "READ_AHEAD_BYTES", 4 * 64 * 96 * 3)
    out = tmp_path / "vid"
    assert main(["segment", "nuclei", str(video), "--out", str(out), "--batch-size", "2"]) == 0
    labels = sorted((out / "labels").glob("*_labels.tif"))
    assert len(labels) == 30 and state["pulled"] == 30
    # pipelined (read ahead, network, post-processing, writing): the read-ahead budget plus
    # a few batches of 2 frames in flight at most, never the whole video
    assert state["max_in_flight"] <= 4 + 1 + 13
    assert tifffile.imread(labels[0]).shape == (64, 96)
    assert (out / "overlay.mp4").stat().st_size > 0
    counts = pd.read_csv(out / "counts.csv")
    assert list(counts["frame"]) == list(range(30))


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_animated_file_is_a_timelapse_and_a_still_one_an_image(tiny_zoo, tmp_path, fmt):
    from PIL import Image

    frames = [Image.fromarray(_frame(64, 96, seed=i)).convert("RGB") for i in range(4)]
    extra = {"lossless": True} if fmt == "webp" else {}
    frames[0].save(tmp_path / f"movie.{fmt}", save_all=True, append_images=frames[1:], duration=200, loop=0,
                   **extra)  # 5 frames per second
    frames[0].save(tmp_path / f"still.{fmt}", **extra)
    out = tmp_path / fmt
    assert main(["segment", "nuclei", str(tmp_path / f"movie.{fmt}"), "--out", str(out)]) == 0
    labels = sorted((out / "labels").glob("*_labels.tif"))
    assert [p.name for p in labels] == [f"movie_f{i:05d}_labels.tif" for i in range(4)]
    assert tifffile.imread(labels[0]).shape == (64, 96)
    assert list(pd.read_csv(out / "counts.csv")["frame"]) == [0, 1, 2, 3]
    import imageio.v2 as iio2

    with iio2.get_reader(out / "overlay.mp4", format="FFMPEG") as r:
        assert r.get_meta_data()["fps"] == pytest.approx(5.0)  # the file's own rate
    still = tmp_path / "still"
    assert main(["segment", "nuclei", str(tmp_path / f"still.{fmt}"), "--out", str(still)]) == 0
    assert [p.name for p in (still / "labels").iterdir()] == ["still_labels.tif"]
    assert main(["population", str(tmp_path / f"movie.{fmt}"), "--out", str(tmp_path / "p.csv"), "--no-plot"]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 4
    assert main(["curate", "frames", str(tmp_path / f"movie.{fmt}"), "--out", str(tmp_path / "c.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "c.csv")) == 4


def test_microscope_vendor_file_says_how_to_export_it(tiny_zoo, tmp_path, capsys):
    src = tmp_path / "embryo.czi"
    src.write_bytes(b"ZISRAWFILE" + bytes(100))
    for cmd, out in ((["segment", "nuclei"], tmp_path / "out"), (["population"], tmp_path / "p.csv"),
                     (["curate", "frames"], tmp_path / "c.csv")):
        assert main([*cmd, str(src), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "embryo.czi" in err and "OME-TIFF" in err and "Bio-Formats" in err
        assert not out.exists() and _no_partials(tmp_path)


def test_skip_flagged_frames(tiny_zoo, tmp_path):
    src = _folder(tmp_path / "frames", n=4)
    report = tmp_path / "report.csv"
    pd.DataFrame({"frame": [0, 1, 2, 3], "file": ["t001.png", "t002.png", "t003.png", "t004.png"],
                  "flagged": [False, True, False, False], "flag": ["", "black", "", ""]}).to_csv(report, index=False)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--skip-flagged", str(report), "--no-overlay"]) == 0
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["t001_labels.tif", "t003_labels.tif", "t004_labels.tif"]
    assert json.loads((out / "segment.json").read_text())["skipped"] == ["t002"]  # named as counts.csv names frames
    pops = tmp_path / "pops.csv"
    assert main(["population", str(src), "--out", str(pops), "--skip-flagged", str(report)]) == 0
    assert list(pd.read_csv(pops)["frame"]) == ["t001", "t003", "t004"]


def test_population_plot_keeps_the_frames_numbers(tiny_zoo, tmp_path, monkeypatch):
    """The plot's x axis is the frames' own numbers (t001, t003, t004: 1, 3, 4 with the flagged t002 a gap), not
    the row numbers 0, 1, 2 that moved every frame after a skipped one; positions when the names carry none."""
    from devolens.viz import plots

    seen = []
    real = plots.plot_populations
    monkeypatch.setattr(plots, "plot_populations", lambda pops, path, **kw: seen.append((list(pops["time"]),
                                                                                       kw["xlabel"])) or real(pops, path, **kw))
    src = _folder(tmp_path / "frames", n=4)
    report = tmp_path / "report.csv"
    pd.DataFrame({"frame": [0, 1, 2, 3], "file": ["t001.png", "t002.png", "t003.png", "t004.png"],
                  "flagged": [False, True, False, False], "flag": ["", "black", "", ""]}).to_csv(report, index=False)
    assert main(["population", str(src), "--out", str(tmp_path / "p.csv"), "--skip-flagged", str(report)]) == 0
    assert seen[-1] == ([1, 3, 4], "frame (the number in its file name)")
    for old, new in (("t001", "first"), ("t003", "third")):
        (src / f"{old}.png").rename(src / f"{new}.png")  # names without numbers: positions in the folder's order
    assert main(["population", str(src), "--out", str(tmp_path / "q.csv")]) == 0
    assert seen[-1] == ([0, 1, 2, 3], "frame (position in the input, from 0)")
    video = _video(tmp_path / "m.mp4", n=5)
    assert main(["population", str(video), "--out", str(tmp_path / "v.csv")]) == 0
    assert seen[-1] == ([0, 1, 2, 3, 4], "video frame")
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.stack([_frame(seed=i, rgb=False) for i in range(3)]), imagej=True,
                     metadata={"axes": "TYX"})
    assert main(["population", str(stack), "--out", str(tmp_path / "s.csv")]) == 0
    assert seen[-1] == ([0, 1, 2], "frame (from 0)")


def test_segment_tta_option(tiny_zoo, tmp_path, capsys):
    src = _folder(tmp_path / "frames", n=2, rgb=False)
    out = tmp_path / "tta"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--tta", "2"]) == 0
    assert len(list((out / "labels").glob("*_labels.tif"))) == 2
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "bad"), "--tta", "3"]) == 2
    assert "--tta" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_segment_membrane(tiny_zoo, tmp_path):
    src = _folder(tmp_path / "frames", n=2, rgb=False)
    out = tmp_path / "mem"
    assert main(["segment", "membrane", str(src), "--out", str(out)]) == 0
    assert len(list((out / "labels").glob("*_labels.tif"))) == 2


@pytest.mark.parametrize("kind", ["missing", "text", "corrupt_video", "corrupt_png", "corrupt_gif", "bad_report",
                                  "wrong_model"])
def test_bad_input_exits_2_without_output(tiny_zoo, tmp_path, kind, capsys):
    src = _folder(tmp_path / "frames", n=2)
    args = None
    if kind == "missing":
        args = [str(tmp_path / "nope.png")]
    elif kind == "text":
        (tmp_path / "notes.txt").write_text("hello")
        args = [str(tmp_path / "notes.txt")]
    elif kind == "corrupt_video":
        (tmp_path / "bad.mp4").write_bytes(b"\x00\x01garbage" * 100)
        args = [str(tmp_path / "bad.mp4")]
    elif kind == "corrupt_png":
        (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
        args = [str(tmp_path / "bad.png")]
    elif kind == "corrupt_gif":
        (tmp_path / "bad.gif").write_bytes(b"GIF89a" + bytes(40))
        args = [str(tmp_path / "bad.gif")]
    elif kind == "bad_report":
        (tmp_path / "r.csv").write_text("a,b\n1,2\n")
        args = [str(src), "--skip-flagged", str(tmp_path / "r.csv")]
    elif kind == "wrong_model":
        args = [str(src), "--model", "membrane_nope"]
    out = tmp_path / "out"
    code = main(["segment", "nuclei", *args, "--out", str(out)])
    assert code == 2
    assert "error:" in capsys.readouterr().err
    assert not out.exists()
    assert _no_partials(tmp_path)
    pops = tmp_path / "pops.csv"
    assert main(["population", *args, "--out", str(pops)]) == 2
    assert not pops.exists()


def test_population_csv_monotone_and_plot(tiny_zoo, tmp_path):
    src = _folder(tmp_path / "frames", n=4)
    out = tmp_path / "pops.csv"
    assert main(["population", str(src), "--out", str(out), "--monotone", "--plot"]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["frame", "A", "E", "M", "P", "C", "D", "Z", "total"]
    assert len(df) == 4 and (df[["A", "E", "M", "P", "C", "D", "Z", "total"]] >= 0).all().all()
    for k in "AEMCDZ":
        assert np.all(np.diff(df[k]) >= -1e-6)
    assert out.with_suffix(".png").stat().st_size > 0


def test_population_plot_by_default(tiny_zoo, tmp_path):
    src = _folder(tmp_path / "frames", n=2)
    assert main(["population", str(src), "--out", str(tmp_path / "a.csv")]) == 0
    assert (tmp_path / "a.png").stat().st_size > 0
    assert main(["population", str(src), "--out", str(tmp_path / "b.csv"), "--no-plot"]) == 0
    assert (tmp_path / "b.csv").exists() and not (tmp_path / "b.png").exists()


def test_population_plot_never_overwrites_the_input(tiny_zoo, tmp_path, capsys):
    """`population frame.png --out frame.csv`: the plot's usual name is the input itself; it goes to
    frame_plot.png and the image is left as it was. The same for a CSV written into the input folder."""
    from devolens.io.images import read_image, write_png

    img = tmp_path / "frame.png"
    pixels = (np.random.default_rng(0).random((40, 60)) * 255).astype(np.uint8)
    write_png(pixels, img)
    assert main(["population", str(img), "--out", str(tmp_path / "frame.csv")]) == 0
    assert np.array_equal(read_image(img), pixels)
    assert (tmp_path / "frame_plot.png").stat().st_size > 0 and "frame_plot.png" in capsys.readouterr().err.replace("\n", "")
    src = _folder(tmp_path / "frames", n=2)
    first = sorted(src.iterdir())[0]
    before = first.read_bytes()
    assert main(["population", str(src), "--out", str(src / f"{first.stem}.csv")]) == 0
    assert first.read_bytes() == before and (src / f"{first.stem}_plot.png").exists()


def test_population_needs_csv_out(tiny_zoo, tmp_path):
    src = _folder(tmp_path / "frames", n=1)
    assert main(["population", str(src), "--out", str(tmp_path / "pops.txt")]) == 2


def test_models_lists_and_shows(tiny_zoo, capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for name in ("nuclei", "membrane", "population"):
        assert name in text
    assert main(["models", "show", "nuclei"]) == 0
    assert "nuclei" in capsys.readouterr().out
    assert main(["models", "show", "nuclei", "--json"]) == 0
    assert '"task": "nuclei"' in capsys.readouterr().out
    assert main(["models", "show", "nope"]) == 2


def test_models_lists_shipped_models(capsys, monkeypatch):
    from devolens.cli._common import out
    from devolens.models import available

    monkeypatch.setattr(out, "width", 200)  # each metric on one line of the table

    names = available()
    if not names:
        pytest.skip("no model shipped in src/devolens/models/zoo yet")
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for name in names:
        assert name in text
    from devolens.cli.models import HEADLINE_WORDS
    from devolens.models import zoo

    for name in names:  # every headline metric of a shipped card in words, with its value (not the card's key)
        for key in zoo.card(name).get("headline") or []:
            assert key in HEADLINE_WORDS, f"{name}: headline {key} has no words in `devolens models`"
            assert HEADLINE_WORDS[key][0] in text


def test_shipped_cards_read_cleanly():
    """card.md of every shipped model: no Python reprs or empty values where card.json holds figures."""
    from devolens.models import available, zoo

    for name in available():
        md = (zoo.ZOO_DIR / name / "card.md").read_text()
        assert "None ()" not in md and "{'" not in md, name


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped yet")
def test_shipped_nuclei_on_reference_frame(shared_data, tmp_path):
    ref = shared_data / "reference_frames" / "epic_movie_frame045.png"
    if not ref.exists():
        pytest.skip("reference frame missing")
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(ref), "--out", str(out), "--no-overlay"]) == 0
    lab = tifffile.imread(out / "labels" / "epic_movie_frame045_labels.tif")
    assert lab.shape == (512, 752) and lab.max() >= 4


def test_segment_precision_option(tiny_zoo, tmp_path, capsys):
    img = tmp_path / "a.png"
    import imageio.v3 as iio

    iio.imwrite(img, (np.random.default_rng(0).random((40, 56)) * 255).astype(np.uint8))
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o32"), "--precision", "fp32"]) == 0
    assert (tmp_path / "o32" / "labels" / "a_labels.tif").is_file()
    # the tiny zoo's network has no int8 calibration: asking for int8 is a clear user error
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o8"), "--precision", "int8"]) == 2
    assert "no int8 calibration" in capsys.readouterr().err
    assert not (tmp_path / "o8").exists()
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "ox"), "--precision", "int4"]) == 2
    assert "precision must be" in capsys.readouterr().err


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped")
def test_entry_point_writes_everything_before_its_fast_exit(tmp_path):
    import subprocess
    import sys

    import imageio.v3 as iio

    img = tmp_path / "frame.png"
    iio.imwrite(img, (np.random.default_rng(1).random((64, 96)) * 255).astype(np.uint8))
    exe = Path(sys.executable).with_name("devolens")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from devolens.cli import run; run()"]
    res = subprocess.run(cmd + ["segment", "nuclei", str(img), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "1 frame," in res.stderr and "Traceback" not in res.stderr  # flushed before os._exit
    for name in ("counts.csv", "objects.csv", "labels/frame_labels.tif", "overlays/frame_overlay.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert pd.read_csv(tmp_path / "out" / "counts.csv").shape == (1, 2)
    res = subprocess.run(cmd + ["segment", "nuclei", str(tmp_path / "nope.png"), "--out", str(tmp_path / "o2")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error:")


def test_streaming_threads_sets_passive_waiting_only_before_torch(monkeypatch):
    import sys

    import torch  # noqa: F401  (the first call must find it imported, whichever tests ran before)

    from devolens.cli._common import streaming_threads

    monkeypatch.setenv("OMP_WAIT_POLICY", "")  # then deleted: undone at the end whatever the calls set
    monkeypatch.delenv("OMP_WAIT_POLICY")
    streaming_threads()  # torch is imported in this test process: too late, nothing set
    assert "OMP_WAIT_POLICY" not in __import__("os").environ
    monkeypatch.delitem(sys.modules, "torch")
    streaming_threads()
    assert __import__("os").environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    streaming_threads()  # the user's choice is kept
    assert __import__("os").environ["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.parametrize("argv, expected", [
    (["/venv/bin/devolens", "segment", "nuclei", "v.mp4"], "1"),
    (["devolens", "population", "v.mp4", "--out", "p.csv"], "1"),
    (["/venv/bin/devolens", "lineage", "populations", "t.csv"], None),  # not a streaming command
    (["/venv/bin/devolens"], None),
    (["train.py", "segment"], None),  # a program importing the CLI: its own process, left alone
])
def test_streaming_commands_start_one_openblas_thread(monkeypatch, argv, expected):
    import os
    import sys

    from devolens.cli import _streaming_blas

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "")  # then deleted: undone at the end whatever the calls set
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    _streaming_blas(argv)  # NumPy is loaded in this test process: too late, nothing set
    assert "OPENBLAS_NUM_THREADS" not in os.environ
    monkeypatch.delitem(sys.modules, "numpy")
    _streaming_blas(argv)
    assert os.environ.get("OPENBLAS_NUM_THREADS") == expected
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    _streaming_blas(argv)  # the user's choice is kept
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"


def test_devolens_command_sets_openblas_before_numpy_loads(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import sys; sys.argv = ['devolens', 'segment', 'nuclei', 'x.png']; import devolens.cli, os; "
            "print(os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"  # importing the CLI module did not load NumPy before the setting


def test_size_advice_suggests_a_diameter_outside_the_cards_range(tiny_zoo, tmp_path, capsys, monkeypatch):
    from devolens.models import load, zoo
    from devolens.predict.segment import NucleiPredictor

    # the image below is noise, which now gets no nuclei (test_s43_noise_fields): the random model's objects kept
    monkeypatch.setattr(NucleiPredictor, "checks_structure", False)

    path = zoo.ZOO_DIR / "nuclei" / "card.json"
    card = json.loads(path.read_text())
    card["input"]["diameter"] = {"reference": 35.0, "p5_p95": [23.0, 66.0]}
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    pred = load("nuclei")
    area = lambda d: np.pi * d * d / 4  # noqa: E731
    assert pred.size_advice([area(30), area(40), area(25)]) is None  # within range
    assert pred.size_advice([area(12.0)] * 3) == 12.0  # cell-culture nuclei: suggest their size
    assert pred.size_advice([area(200.0)]) == 200.0
    assert pred.size_advice([]) is None and pred.size_advice([0.0, float("nan")]) is None
    # with diameter=12 the model sees 12 px objects at the reference size: nothing to say
    assert load("nuclei", diameter=12).size_advice([area(12.0)]) is None
    # the whole range (min_max), where the card has it, with a 10 % margin
    card["input"]["diameter"]["min_max"] = [15.0, 90.0]
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    assert load("nuclei").size_advice([area(14.0)]) is None and load("nuclei").size_advice([area(13.0)]) == 13.0
    # the CLI prints the hint after the summary (whatever the random tiny model finds)
    img = tmp_path / "a.png"
    import imageio.v3 as iio

    iio.imwrite(img, (np.random.default_rng(2).random((64, 80)) * 255).astype(np.uint8))
    card["input"]["diameter"] = {"reference": 35.0, "p5_p95": [1000.0, 2000.0]}  # everything is "too small"
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().err
    assert (tmp_path / "o" / "objects.csv").read_text().count("\n") > 1  # the random model finds some
    assert "run again with --diameter" in " ".join(out.split())


def test_segment_diameter_option(tiny_zoo, tmp_path, capsys):
    from devolens.models import zoo

    img = tmp_path / "a.png"
    import imageio.v3 as iio

    iio.imwrite(img, (np.random.default_rng(2).random((40, 56)) * 255).astype(np.uint8))
    # the tiny zoo's card has no reference diameter: a clear error, nothing written
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o1"), "--diameter", "12"]) == 2
    assert "reference object diameter" in capsys.readouterr().err and not (tmp_path / "o1").exists()
    path = zoo.ZOO_DIR / "nuclei" / "card.json"
    card = json.loads(path.read_text())
    card["input"]["diameter"] = {"reference": 24.0}
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o2"), "--diameter", "12"]) == 0
    assert tifffile.imread(tmp_path / "o2" / "labels" / "a_labels.tif").shape == (40, 56)


def test_segment_color_option(tiny_zoo, tmp_path, capsys):
    import imageio.v3 as iio

    rng = np.random.default_rng(4)
    green = np.zeros((40, 56, 3), np.uint8)
    green[..., 1] = (rng.random((40, 56)) * 255).astype(np.uint8)
    green[..., 0] = 9  # a weak, even red channel
    red = green[..., [1, 0, 2]]
    iio.imwrite(tmp_path / "g.png", green)
    iio.imwrite(tmp_path / "r.png", red)
    assert main(["segment", "nuclei", str(tmp_path / "g.png"), "--out", str(tmp_path / "og")]) == 0
    assert main(["segment", "nuclei", str(tmp_path / "r.png"), "--out", str(tmp_path / "or"), "--color", "red"]) == 0
    a = tifffile.imread(tmp_path / "og" / "labels" / "g_labels.tif")
    b = tifffile.imread(tmp_path / "or" / "labels" / "r_labels.tif")
    assert np.array_equal(a, b)  # the same nuclei channel, whatever its colour
    assert main(["segment", "nuclei", str(tmp_path / "r.png"), "--out", str(tmp_path / "ox"), "--color", "pink"]) == 2
    assert "--color must be one of" in capsys.readouterr().err
    pops = tmp_path / "p.csv"
    assert main(["population", str(tmp_path / "r.png"), "--out", str(pops), "--color", "red"]) == 0


def test_segment_float_tiff_with_nan_pixels(tiny_zoo, tmp_path):
    rng = np.random.default_rng(5)
    img = (rng.random((40, 56)) * 1000).astype(np.float32)
    img[:6] = np.nan  # e.g. padding after registration
    tifffile.imwrite(tmp_path / "f.tif", img)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "invalid value" warnings reach the user
        assert main(["segment", "nuclei", str(tmp_path / "f.tif"), "--out", str(tmp_path / "o")]) == 0
    assert tifffile.imread(tmp_path / "o" / "labels" / "f_labels.tif").shape == (40, 56)


def test_video_source_reads_ahead_and_probes_once(tmp_path, monkeypatch):
    """A video is decoded from the moment it is opened (one ffmpeg probe for count and rate)."""
    import imageio.v2 as iio

    import devolens.io.video as vid

    video = _video(tmp_path / "movie.mp4", n=7)
    vid._probe.cache_clear()
    calls = []
    real = iio.get_reader

    def counting(*args, **kwargs):
        calls.append((kwargs.get("input_params"), kwargs.get("output_params")))
        return real(*args, **kwargs)

    monkeypatch.setattr(iio, "get_reader", counting)
    source = cli_predict._Source(video)
    try:
        assert source.total == 7 and source.fps == pytest.approx(5.0)
        assert source.total == 7 and source.fps == pytest.approx(5.0)  # cached, not probed again
        frames = [f for _, f in source.iter(set())]
    finally:
        source.close()
    assert len(frames) == 7 and frames[0].shape == (64, 96, 3)
    # one reader to probe (the header and one frame, one thread), one to decode (with a single decoder thread)
    assert len(calls) == 2 and all(c[0] == ["-threads", "1"] for c in calls)
    decode = [c[1] for c in calls if c[1] != ["-frames:v", "1"]]
    assert len(decode) == 1 and decode[0][:2] == vid._passthrough()  # (then the timestamps' file, see io.missing)


@pytest.mark.parametrize("extra", [[], ["--color", "red"], ["--no-flatten"], ["--flatten"]])
def test_frames_are_prepared_in_the_read_ahead_thread(tiny_zoo, tmp_path, monkeypatch, extra):
    """The read-ahead prepares frames with the predictor's own key: the predictor never
    prepares again, and the labels are those of an ordinary run (read-ahead off)."""
    from devolens.predict._engine import ImageNetwork

    video = _video(tmp_path / "movie.mp4", n=6)
    calls = []
    real = ImageNetwork.prepare_frame

    def counting(self, image):
        calls.append(1)
        return real(self, image)

    monkeypatch.setattr(ImageNetwork, "prepare_frame", counting)
    assert main(["segment", "nuclei", str(video), "--out", str(tmp_path / "a"), *extra]) == 0
    assert calls == []
    monkeypatch.setattr(cli_predict, "READ_AHEAD_BYTES", 0)  # no read-ahead: the predictor prepares
    assert main(["segment", "nuclei", str(video), "--out", str(tmp_path / "b"), *extra]) == 0
    assert len(calls) == 6
    for a, b in zip(sorted((tmp_path / "a" / "labels").iterdir()), sorted((tmp_path / "b" / "labels").iterdir())):
        assert np.array_equal(tifffile.imread(a), tifffile.imread(b))


def test_prepared_with_another_key_is_prepared_again():
    from devolens.predict.postprocess import Prepared, prepare_image

    rng = np.random.default_rng(0)
    img = (rng.random((40, 60, 3)) * 255).astype(np.uint8)
    p = Prepared(img, ("green", 0.5, (1.0, 99.8)))
    assert p.array.shape == (20, 30) and p.nbytes == img.nbytes + p.array.nbytes
    assert np.array_equal(p.array, prepare_image(img, "green", 0.5, (1.0, 99.8)))


def test_segment_command_does_not_import_pandas(tiny_zoo, tmp_path):
    """The streaming segmentation path writes its tables without pandas (~0.2 s of start-up) and
    segments without scipy or skimage.morphology (0.2-0.3 s each: OpenCV labels, skimage's
    compiled watershed core)."""
    import subprocess
    import sys

    video = _video(tmp_path / "movie.mp4", n=3)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from devolens.models import zoo\n"
        f"zoo.ZOO_DIR = Path({str(tiny_zoo)!r})\n"
        "from devolens.cli import main\n"
        f"assert main(['segment', 'nuclei', {str(video)!r}, '--out', {str(tmp_path / 'out')!r}]) == 0\n"
        "print([m for m in ('pandas', 'scipy', 'skimage.morphology') if m in sys.modules])\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "[]"
    counts = pd.read_csv(tmp_path / "out" / "counts.csv")
    objects = pd.read_csv(tmp_path / "out" / "objects.csv")
    assert list(counts.columns) == ["frame", "count"] and list(counts["frame"]) == [0, 1, 2]
    assert list(objects.columns) == ["frame", "label", "x", "y", "area", "mean_intensity"]
    assert int(counts["count"].sum()) == len(objects)


def test_write_columns_csv(tmp_path):
    from devolens.io.atomic import write_columns_csv

    p = write_columns_csv({"frame": ["a", "b"], "x": np.array([1.25, 0.1 + 0.2]), "n": np.array([3, 4])},
                          tmp_path / "t.csv")
    assert p.read_text() == "frame,x,n\na,1.25,3\nb,0.30000000000000004,4\n"
    df = pd.DataFrame({"frame": ["a", "b"], "x": [1.25, 0.1 + 0.2], "n": [3, 4]})
    assert p.read_text() == df.to_csv(index=False)  # what pandas writes
    assert write_columns_csv({"a": [], "b": np.zeros(0)}, tmp_path / "e.csv").read_text() == "a,b\n"
    with pytest.raises(ValueError):
        write_columns_csv({"a": [1], "b": [1, 2]}, tmp_path / "bad.csv")
    assert not (tmp_path / "bad.csv").exists()


def test_population_notes_totals_beyond_an_embryo(tiny_zoo, tmp_path, capsys, monkeypatch):
    from devolens.predict import population

    src = _folder(tmp_path / "frames", n=2)
    assert main(["population", str(src), "--out", str(tmp_path / "a.csv"), "--no-plot"]) == 0
    df = pd.read_csv(tmp_path / "a.csv")
    captured = capsys.readouterr()
    assert ("more than a C. elegans embryo" in captured.out + captured.err) == bool((df["total"] > 600).any())
    monkeypatch.setattr(population, "MAX_EMBRYO_CELLS", float(df["total"].min()) - 1.0)
    assert main(["population", str(src), "--out", str(tmp_path / "b.csv"), "--no-plot"]) == 0
    captured = capsys.readouterr()
    assert "2 frame(s) have a predicted total above" in " ".join((captured.out + captured.err).split())
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "b.csv"), df)  # a note only: the counts are written


def test_flatten_option_reaches_the_predictor(tiny_zoo, tmp_path, monkeypatch):
    """--flatten/--no-flatten: the card's background flattening (tiny nuclei card: 12 working px) by
    default, off with --no-flatten; --flatten on a card without one takes DEFAULT_FLATTEN."""
    from devolens.predict._engine import ImageNetwork

    seen = []
    real = ImageNetwork.__init__

    def spy(self, *a, **k):
        real(self, *a, **k)
        seen.append(self.flatten)

    monkeypatch.setattr(ImageNetwork, "__init__", spy)
    from devolens.io.images import write_png

    img = tmp_path / "a.png"
    write_png((np.random.default_rng(0).random((40, 60)) * 255).astype(np.uint8), img)
    for extra, kind, want in (([], "nuclei", 12.0), (["--no-flatten"], "nuclei", 0.0), ([], "membrane", 0.0),
                              (["--flatten"], "membrane", cli_predict.DEFAULT_FLATTEN)):
        seen.clear()
        assert main(["segment", kind, str(img), "--out", str(tmp_path / f"o{len(extra)}{kind}"), *extra]) == 0
        assert seen == [want]


def test_device_option(tiny_zoo, tmp_path, capsys):
    """--device cpu|cuda|auto for segment and population: auto runs where PyTorch can (the CPU here),
    cuda without a CUDA GPU and unknown names are user errors, and no output is left behind."""
    import torch

    from devolens.errors import DevolensError
    from devolens.io.images import write_png
    from devolens.predict.devices import resolve_device

    img = tmp_path / "a.png"
    write_png((np.random.default_rng(0).random((40, 60)) * 255).astype(np.uint8), img)
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(" CPU ") == "cpu"
    with pytest.raises(DevolensError, match="--device must be auto, cpu, cuda or cuda:N"):
        resolve_device("gpu", "--device")
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "auto"), "--device", "auto"]) == 0
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "bad"), "--device", "gpu"]) == 2
    assert "auto, cpu, cuda or cuda:N" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    if not torch.cuda.is_available():
        assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "c"), "--device", "cuda"]) == 2
        assert "sees no CUDA GPU" in capsys.readouterr().err and not (tmp_path / "c").exists()
        assert main(["population", str(img), "--out", str(tmp_path / "p.csv"), "--device", "cuda"]) == 2
        assert not (tmp_path / "p.csv").exists()


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_steady_malloc_reuses_frame_sized_buffers():
    """A frame-sized buffer comes from the heap and stays there once freed, for the next frame to reuse.

    Read from glibc's own books (``mallinfo2``), not from page-fault counts, which depend on the
    kernel's huge-page settings and on the machine's load: without ``steady_malloc`` glibc maps a
    fresh 20 MB block (``hblkhd``) and unmaps it when freed; with it, the block is carved from the
    heap (``arena``) and kept as free heap (``fordblks``) after the ``del``.
    """
    import subprocess
    import sys

    code = ("import ctypes, sys, numpy as np\n"
            "class Info(ctypes.Structure):\n"
            "    _fields_ = [(n, ctypes.c_size_t) for n in ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd',\n"
            "                'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]\n"
            "libc = ctypes.CDLL(None)\n"
            "if not hasattr(libc, 'mallinfo2'): print('none'); sys.exit()\n"
            "libc.mallinfo2.restype = Info\n"
            "from devolens.cli._common import steady_malloc\n"
            "if sys.argv[1] == '1': steady_malloc()\n"
            "m0 = libc.mallinfo2()\n"
            "a = np.ones(20 << 18, np.float32)\n"  # 20 MB, about an RGB overlay of a 2k x 3k frame
            "m1 = libc.mallinfo2()\n"
            "del a\n"
            "m2 = libc.mallinfo2()\n"
            "print(m1.hblkhd - m0.hblkhd, m1.arena - m0.arena, m2.fordblks - m0.fordblks)\n")
    books = {}
    for on in ("0", "1"):
        env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MALLOC_")}
        res = subprocess.run([sys.executable, "-c", code, on], capture_output=True, text=True, env=env, check=True)
        if res.stdout.strip() == "none":
            pytest.skip("glibc older than 2.33 has no mallinfo2")
        books[on] = [int(v) for v in res.stdout.split()]
    mapped, heap, kept = books["0"]
    assert mapped >= 20 << 20 and kept < 20 << 20, books  # glibc's default: mapped, given back when freed
    mapped, heap, kept = books["1"]
    assert mapped == 0 and heap >= 20 << 20 and kept >= 20 << 20, books  # steady: from the heap, kept


def test_collector_paused_while_loading_then_frozen():
    import gc

    from devolens.cli._common import collector_paused

    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with collector_paused():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]
        assert gc.isenabled() and gc.get_freeze_count() >= frozen + 1000
        with pytest.raises(ValueError):  # an error while loading: the collector comes back all the same
            with collector_paused():
                raise ValueError("no such model")
        assert gc.isenabled()
    finally:
        gc.unfreeze()
    del made


def test_segment_refuses_to_replace_outputs_it_did_not_write(tiny_zoo, tmp_path, capsys):
    """A render folder's ground-truth labels/ and objects.csv (or a project's own labels/) are not segment's to
    replace; an earlier segment run's are (segment.json records it)."""

    src = _folder(tmp_path / "frames", n=2)
    render = tmp_path / "render"
    (render / "labels").mkdir(parents=True)
    (render / "labels" / "t001_labels.tif").write_bytes(b"truth")
    (render / "objects.csv").write_text("file,label\n")
    assert main(["segment", "nuclei", str(src), "--out", str(render)]) == 2
    assert "--out already holds labels, objects.csv" in capsys.readouterr().err
    assert (render / "labels" / "t001_labels.tif").read_bytes() == b"truth" and _no_partials(tmp_path)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out)]) == 0
    record = json.loads((out / "segment.json").read_text())
    assert record["command"] == "devolens segment nuclei" and record["frames"] == 2
    assert record["objects"] == len(pd.read_csv(out / "objects.csv"))
    assert main(["segment", "nuclei", str(src), "--out", str(out)]) == 0  # its own outputs: replaced
    assert main(["segment", "nuclei", str(src), "--out", str(src)]) == 0  # the input folder itself: nothing clashes
    assert main(["segment", "nuclei", str(src), "--out", str(src)]) == 0


def test_files_sharing_a_stem_keep_their_own_results(tiny_zoo, tmp_path):
    from devolens.io.images import write_png

    src = tmp_path / "mixed"
    src.mkdir()
    write_png(_frame(seed=1), src / "a.png")
    tifffile.imwrite(src / "a.tif", np.zeros((48, 70), np.uint8))
    write_png(_frame(seed=2), src / "b.png")
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--diameter", "none"]) == 0
    assert sorted(p.name for p in (out / "labels").iterdir()) == [
        "a.png_labels.tif", "a.tif_labels.tif", "b_labels.tif"]  # b shares no stem
    assert sorted(p.name for p in (out / "overlays").iterdir())[0] == "a.png_overlay.png"
    counts = pd.read_csv(out / "counts.csv")
    assert list(counts["frame"]) == ["a.png", "a.tif", "b"]
    assert tifffile.imread(out / "labels" / "a.png_labels.tif").max() > 0


def test_skip_flagged_report_of_another_input_is_refused(tiny_zoo, tmp_path, capsys):
    src = _folder(tmp_path / "frames", n=3)
    other = _folder(tmp_path / "other", n=2)
    video = _video(tmp_path / "movie.mp4", n=5)
    for inp, name in ((src, "src"), (other, "other"), (video, "video")):
        assert main(["curate", "frames", str(inp), "--out", str(tmp_path / f"{name}.csv")]) == 0
    capsys.readouterr()
    for inp, report, why in ((video, "src", "is of a folder of images"), (src, "video", "is of a video"),
                             (other, "src", "the report's frame 2 is t003.png, the input's is none")):
        out = tmp_path / f"o_{report}"
        assert main(["segment", "nuclei", str(inp), "--out", str(out), "--skip-flagged",
                     str(tmp_path / f"{report}.csv")]) == 2
        err = capsys.readouterr().err
        assert "not of this input" in err and why in err and not out.exists()
    assert main(["population", str(video), "--out", str(tmp_path / "p.csv"), "--skip-flagged",
                 str(tmp_path / "src.csv")]) == 2
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "ok"), "--skip-flagged",
                 str(tmp_path / "src.csv")]) == 0  # its own report


def test_video_cut_short_is_reported(tiny_zoo, tmp_path, monkeypatch, capsys):
    """A file cut in the middle (an interrupted copy) decodes without an error up to the cut: say so."""
    video = _video(tmp_path / "movie.mp4", n=6)
    import devolens.io.video as vid

    real = vid.video_info
    assert main(["segment", "nuclei", str(video), "--out", str(tmp_path / "a")]) == 0
    assert "ended after" not in capsys.readouterr().err
    monkeypatch.setattr(vid, "video_info", lambda p: {**real(p), "nframes": 20})  # the header promises 20
    assert main(["segment", "nuclei", str(video), "--out", str(tmp_path / "b")]) == 0
    assert "the video ended after 6 of the 20 frames" in " ".join(capsys.readouterr().err.split())
    assert main(["population", str(video), "--out", str(tmp_path / "p.csv")]) == 0
    assert "ended after 6 of the 20" in " ".join(capsys.readouterr().err.split())


def test_frames_missing_mid_video_keep_their_numbers(tiny_zoo, tmp_path, capsys):
    """A video whose frames 10-13 are missing (timestamps skipped: a damaged stretch, frames dropped while
    recording): segment, population and curate number the later frames as the video does, and say so."""
    from test_io_realworld import _ffmpeg, _video_with_a_gap

    from devolens.io.video import _timestamps_supported

    if not _timestamps_supported():
        pytest.skip("this ffmpeg writes no frame timestamps (-stats_enc_pre, ffmpeg 6.1+)")
    video = _video_with_a_gap(tmp_path / "gap.mp4", _ffmpeg())
    kept = [i for i in range(40) if not 10 <= i <= 13]
    assert main(["segment", "nuclei", str(video), "--out", str(tmp_path / "seg")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "4 frames of the video are missing (frames 10-13" in err and "keep their numbers" in err
    assert pd.read_csv(tmp_path / "seg" / "counts.csv")["frame"].tolist() == kept
    assert sorted(p.name for p in (tmp_path / "seg" / "labels").iterdir()) == [f"gap_f{i:05d}_labels.tif" for i in kept]
    assert main(["population", str(video), "--out", str(tmp_path / "p.csv")]) == 0
    assert "frames 10-13" in " ".join(capsys.readouterr().err.split())
    assert pd.read_csv(tmp_path / "p.csv")["frame"].tolist() == kept
    assert main(["curate", "frames", str(video), "--out", str(tmp_path / "c.csv")]) == 0
    assert "flagged dropped" in " ".join(capsys.readouterr().err.split())
    rep = pd.read_csv(tmp_path / "c.csv")
    assert rep["frame"].tolist() == list(range(40)) and rep.loc[rep.dropped, "frame"].tolist() == [10, 11, 12, 13]
    assert (rep.loc[rep.dropped, "flag"] == "dropped").all()  # (the test pattern's still frames: duplicates)
    assert main(["segment", "nuclei", str(video), "--out", str(tmp_path / "seg2"), "--skip-flagged",
                 str(tmp_path / "c.csv")]) == 0  # its report fits (same numbering)
    flagged = set(rep.loc[rep.flagged, "frame"])
    assert pd.read_csv(tmp_path / "seg2" / "counts.csv")["frame"].tolist() == [i for i in kept if i not in flagged]
    n_skipped = len(flagged - {10, 11, 12, 13})  # the missing frames are not counted as skipped
    assert f"{n_skipped} flagged frame" in " ".join(capsys.readouterr().err.split())
    # a report that numbers the frames without the missing ones (another devolens, an ffmpeg older than 6.1)
    # would skip the wrong frames: refused
    old = rep[~rep.dropped].copy()
    old["frame"] = range(len(old))
    old.to_csv(tmp_path / "old.csv", index=False)
    assert main(["segment", "nuclei", str(video), "--out", str(tmp_path / "seg3"), "--skip-flagged",
                 str(tmp_path / "old.csv")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "numbers the video's frames otherwise" in err and not (tmp_path / "seg3").exists()


def test_unreadable_files_of_a_folder_are_reported_and_can_be_skipped(tiny_zoo, tmp_path, capsys):
    """A truncated and an empty file in a folder of frames: curate flags them 'unreadable' (with their frame
    numbers, not also as gaps in the tNNN numbering); segment stops naming the first and saying how to go
    on; --skip-flagged auto leaves them out."""
    src = _folder(tmp_path / "frames", n=8)
    data = (src / "t003.png").read_bytes()
    (src / "t003.png").write_bytes(data[: len(data) // 2])
    (src / "t006.png").write_bytes(b"")
    assert main(["curate", "frames", str(src), "--out", str(tmp_path / "c.csv")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "2 files could not be read (e.g. t003.png" in err and "flagged unreadable" in err
    rep = pd.read_csv(tmp_path / "c.csv")
    assert rep["frame"].tolist() == list(range(8)) and rep["file"].tolist() == [f"t{i:03d}.png" for i in range(1, 9)]
    assert rep.loc[rep.flagged, "file"].tolist() == ["t003.png", "t006.png"]
    assert set(rep.loc[rep.flagged, "flag"]) == {"unreadable"} and not rep["dropped"].any()
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "t003.png" in err and "--skip-flagged auto" in err and not out.exists() and _no_partials(tmp_path)
    for extra in (["--skip-flagged", "auto"], ["--skip-flagged", str(tmp_path / "c.csv")]):
        assert main(["segment", "nuclei", str(src), "--out", str(out)] + extra) == 0
        assert "2 files could not be read" in " ".join(capsys.readouterr().err.split())
        assert pd.read_csv(out / "counts.csv")["frame"].tolist() == ["t001", "t002", "t004", "t005", "t007", "t008"]
    assert main(["population", str(src), "--out", str(tmp_path / "p.csv"), "--skip-flagged", "auto"]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 6


@pytest.mark.skipif(not shipped("nuclei"), reason="needs the shipped nuclei model (its size model)")
def test_a_folder_of_several_sizes_notes_the_single_estimate(tmp_path, capsys):
    """Images of several sizes in one folder (perhaps several magnifications) read with one magnification
    estimate: a note points to --diameter each; a turned frame is no other size, and 'each' needs no note."""
    from devolens.io.images import write_png

    src = tmp_path / "mixed"
    src.mkdir()
    write_png(_frame(96, 140, seed=1), src / "a.png")
    write_png(np.ascontiguousarray(_frame(96, 140, seed=2).transpose(1, 0, 2)), src / "b.png")  # portrait
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "same")]) == 0
    assert "images come in" not in capsys.readouterr().err
    write_png(_frame(192, 280, seed=3), src / "c.png")
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "o")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "the images come in 2 sizes (140x96 to 280x192 pixels)" in err and "--diameter each" in err
    for extra in (["--diameter", "each"], ["--diameter", "none"]):
        assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "o")] + extra) == 0
        assert "images come in" not in capsys.readouterr().err


def test_options_without_effect_on_this_input_are_refused(tiny_zoo, tmp_path, capsys):
    from devolens.io.images import write_png

    img = tmp_path / "a.png"
    write_png(_frame(), img)
    for args, msg in ((["--channel", "1"], "use --color"), (["--stack-z", "nonsense"], "--stack-z must be one of")):
        assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o")] + args) == 2
        assert msg in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_curate_notes_a_video_cut_short(tmp_path, monkeypatch, capsys):
    import devolens.io.video as vid

    video = _video(tmp_path / "movie.mp4", n=6)
    real = vid.video_info
    assert main(["curate", "frames", str(video), "--out", str(tmp_path / "a.csv")]) == 0
    assert "ended after" not in capsys.readouterr().err
    monkeypatch.setattr(vid, "video_info", lambda p: {**real(p), "nframes": 20})
    assert main(["curate", "frames", str(video), "--out", str(tmp_path / "b.csv")]) == 0
    assert "ended after 6 of the 20" in " ".join(capsys.readouterr().err.split())


def test_nothing_found_is_said(tmp_path, monkeypatch, capsys):
    from devolens.io.images import write_png

    img = tmp_path / "black.png"
    write_png(np.zeros((48, 70), np.uint8), img)
    summary = {"frames": 1, "objects": 0, "skipped": 0, "curation": None, "precision": "int8", "scale": 0.5,
               "estimate": None, "estimates": None, "ended_early": None, "suggest_diameter": None}
    monkeypatch.setattr(cli_predict, "run_segmentation", lambda *a, **k: summary)
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o")]) == 0
    out = " ".join(capsys.readouterr().err.split())
    assert "0 nuclei" in out and "no nuclei found in any frame" in out
    summary["objects"] = 3
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o")]) == 0
    assert "no nuclei found" not in capsys.readouterr().err


def test_segment_rerun_leaves_only_this_runs_outputs(tiny_zoo, tmp_path, capsys, monkeypatch):
    """A rerun into an earlier run's --out replaces all of segment's entries: the first run's overlays/ and
    curation.csv do not stay beside the second run's outputs; an input that is one of those entries (the first
    run's overlay.mp4) is refused, not replaced; the record gives the input's absolute path."""
    src = _folder(tmp_path / "frames", n=3)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--skip-flagged", "auto"]) == 0
    assert (out / "curation.csv").exists() and len(list((out / "overlays").iterdir())) == 3
    few = _folder(tmp_path / "few", n=1)
    (out / "notes.txt").write_text("mine")
    assert main(["segment", "nuclei", str(few), "--out", str(out), "--no-overlay"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["counts.csv", "labels", "notes.txt", "objects.csv", "segment.json"]
    video = _video(tmp_path / "m.mp4", n=4)
    assert main(["segment", "nuclei", str(video), "--out", str(out), "--skip-flagged", "auto"]) == 0
    report = (out / "curation.csv").read_bytes()
    # the report kept in --out and given again (perhaps edited by hand): read, not removed as an earlier output
    assert main(["segment", "nuclei", str(video), "--out", str(out), "--skip-flagged", str(out / "curation.csv")]) == 0
    assert (out / "curation.csv").read_bytes() == report
    assert (out / "overlay.mp4").exists() and not (out / "overlays").exists()
    before = (out / "overlay.mp4").read_bytes()
    capsys.readouterr()
    assert main(["segment", "nuclei", str(out / "overlay.mp4"), "--out", str(out)]) == 2
    assert "the input is overlay.mp4 of --out" in capsys.readouterr().err
    assert (out / "overlay.mp4").read_bytes() == before
    monkeypatch.chdir(tmp_path)
    assert main(["segment", "nuclei", "few", "--out", "seg2"]) == 0
    record = json.loads((tmp_path / "seg2" / "segment.json").read_text())
    assert record["input"] == str(tmp_path / "few") and record["backend"] == "torch"


def test_outputs_that_cannot_be_written_are_refused_before_any_work(tiny_zoo, tmp_path, capsys, monkeypatch):
    """population and curate frames say at once that --out's folder is not writable (they read a whole movie
    first otherwise, then failed naming the plot)."""
    import tempfile

    src = _folder(tmp_path / "frames", n=2)
    locked = tmp_path / "locked"
    locked.mkdir()
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kw):  # a folder that takes no new file (tests may run as root: chmod is moot)
        if dir is not None and Path(dir) == locked:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    read = []
    monkeypatch.setattr(cli_predict._Source, "iter", lambda self, skip: read.append(1) or iter(()))
    for cmd in (["population"], ["curate", "frames"]):
        assert main([*cmd, str(src), "--out", str(locked / "sub" / "p.csv")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and "cannot write output: Permission denied" in err and str(locked) in err
    assert not read
    table = tmp_path / "t.csv"
    pd.DataFrame({"time": [1], "cell": ["ABa"], "x": [1.0], "y": [2.0], "z": [3.0]}).to_csv(table, index=False)
    assert main(["identify", str(table), "--out", str(locked / "cells.csv")]) == 2
    assert "cannot write output: Permission denied" in capsys.readouterr().err


def test_messages_stay_on_one_line_in_a_log(tiny_zoo, tmp_path, capsys):
    """Written to a log (stderr not a terminal), a summary or tip is one line, not folded at 80 columns: a
    pipeline greps it."""
    import sys

    from devolens.cli._common import _tty

    if _tty(sys.__stderr__):  # `pytest -s` in a terminal: the console folds there, by design
        pytest.skip("stderr is a terminal")
    src = _folder(tmp_path / "frames", n=3)
    out = tmp_path / ("a_long_name_for_the_table_of_populations_" * 2 + ".csv")
    assert main(["population", str(src), "--out", str(out)]) == 0
    summary = f"3 frames -> {out} (+ {out.with_suffix('.png')})"
    assert len(summary) > 100 and summary in capsys.readouterr().err.splitlines()


def test_label_images_keep_the_inputs_pixel_size(tiny_zoo, tmp_path):
    """A calibrated TIFF (ImageJ resolution and unit; OME PhysicalSizeX/Y) gives label images calibrated alike, as
    Fiji and napari read them; an uncalibrated input (PNG) gives plain label TIFFs as before."""
    from devolens.io.stacks import pixel_size

    frames = np.stack([_frame(seed=i, rgb=False) for i in range(2)])
    ij = tmp_path / "ij.tif"
    tifffile.imwrite(ij, frames, imagej=True, resolution=(1 / 0.65, 1 / 0.65), metadata={"axes": "TYX", "unit": "um"})
    ome = tmp_path / "one.ome.tif"
    tifffile.imwrite(ome, frames[0], ome=True, metadata={"axes": "YX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.25})
    assert pixel_size(ij) == (0.65, 0.65, "µm") and pixel_size(ome) == (0.2, 0.25, "µm")
    for src, want in ((ij, (0.65, 0.65, "µm")), (ome, (0.2, 0.25, "µm")), (_folder(tmp_path / "png", n=1), None)):
        out = tmp_path / f"seg_{src.stem}"
        assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay"]) == 0
        labels = sorted((out / "labels").iterdir())
        assert labels and all(pixel_size(p) == want for p in labels)
        if want is None:
            assert not tifffile.TiffFile(labels[0]).is_imagej


def test_pixel_size_edge_cases(tmp_path):
    """Units that differ between x and y are each converted to µm (thirtieth session; no calibration before); the
    Greek mu reads as µm; a plain
    TIFF calibrated per centimetre (devolens's own uint32 labels) reads back; 72 dpi per inch is no calibration."""
    from devolens.io.images import write_label_tif
    from devolens.io.stacks import pixel_size

    img = np.zeros((8, 10), np.uint16)
    mixed = tmp_path / "mixed.ome.tif"
    tifffile.imwrite(mixed, img, ome=True, metadata={"PhysicalSizeX": 650, "PhysicalSizeXUnit": "nm",
                                                     "PhysicalSizeY": 0.65, "PhysicalSizeYUnit": "µm"})
    assert pixel_size(mixed) == (0.65, 0.65, "µm")
    greek = tmp_path / "greek.ome.tif"
    tifffile.imwrite(greek, img, ome=True, metadata={"PhysicalSizeX": 0.3, "PhysicalSizeXUnit": "\u03bcm",
                                                     "PhysicalSizeY": 0.3, "PhysicalSizeYUnit": "\u03bcm"})
    assert pixel_size(greek) == (0.3, 0.3, "µm")
    big = tmp_path / "big.tif"
    write_label_tif(np.full((4, 5), 70000, np.uint32), big, pixel=(0.4, 0.5, "µm"))
    assert pixel_size(big) == (0.4, 0.5, "µm")
    dpi = tmp_path / "dpi.tif"
    tifffile.imwrite(dpi, img, resolution=(72, 72), resolutionunit="INCH")
    assert pixel_size(dpi) is None
