"""Outputs audit (thirty-third session, m9): a ``--skip-flagged`` report of another video of the same name, length
and frame size is refused by the fingerprint the report records; population's record holds its notes and the
frames without signal, whose counts are empty; every inference record names the digest of the whole model folder
(``model_sha256``); the membrane shape note judges low-magnification inputs at the input's own scale; a float
movie's brightness trend is read in one range; segment's overlay video says when it is padded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from _render_helpers import blob_frame
from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from curate_synth import inject, synth_sequence
from devolens.cli import main


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _write_video(path: Path, frames) -> Path:
    from devolens.io.video import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(iter(frames), path, fps=5)
    return path


def _blobs(size=(128, 160), seed=0) -> np.ndarray:
    return blob_frame(size, n=12, radius=8, margin=10, background=20.0, seed=seed)


# ------------------------------------------------------------------ 1: another video of the same name and size
@pytest.fixture
def two_videos(tmp_path):
    """``a/video.mp4`` (its frame 3 black) and ``b/video.mp4``: the same name, frame count and frame size (every
    render names its video video.mp4), and ``a``'s curation report."""
    first = synth_sequence(8, seed=1)
    inject(first, "black", 3)
    a = _write_video(tmp_path / "a" / "video.mp4", first)
    b = _write_video(tmp_path / "b" / "video.mp4", synth_sequence(8, seed=2))
    report = tmp_path / "a.csv"
    assert main(["curate", "frames", str(a), "--out", str(report)]) == 0
    return a, b, report


def test_a_report_records_its_file_and_refuses_another_of_the_same_name(tiny_zoo, two_videos, tmp_path, capsys):
    from devolens.provenance import file_fingerprint

    a, b, report = two_videos
    rep = pd.read_csv(report, dtype={"input_fingerprint": str})
    assert (rep["input_bytes"] == a.stat().st_size).all()
    assert (rep["input_fingerprint"] == file_fingerprint(a)).all() and len(file_fingerprint(a)) == 16
    assert 3 in set(rep.loc[rep["flagged"], "frame"])
    capsys.readouterr()
    for command in (["segment", "nuclei", str(b), "--out", str(tmp_path / "o"), "--no-overlay"],
                    ["population", str(b), "--out", str(tmp_path / "o.csv"), "--no-plot"]):
        # was: accepted, "1 flagged frame skipped", a clean frame of b left out
        assert main(command + ["--skip-flagged", str(report)]) == 2
        err = _err(capsys)
        assert (f"not of this input: it is of another file (another video.mp4, of {a.stat().st_size:,} bytes; this "
                f"one has {b.stat().st_size:,})") in err
        assert f"curate frames {b} --out " in err and "Traceback" not in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.csv").exists()
    # its own video, and a copy of it under another name (the same bytes): accepted
    copy = tmp_path / "c" / "renamed.mp4"
    copy.parent.mkdir()
    shutil.copy(a, copy)
    for video, out in ((a, "own"), (copy, "copy")):
        assert main(["segment", "nuclei", str(video), "--out", str(tmp_path / out), "--no-overlay",
                     "--skip-flagged", str(report)]) == 0
        assert "1 flagged frame skipped" in _err(capsys)


def test_a_file_of_the_same_size_with_other_bytes_is_refused(two_videos, tmp_path):
    from devolens.curate.frames import load_report, report_mismatch

    a, _, report = two_videos
    changed = tmp_path / "d" / "video.mp4"
    changed.parent.mkdir()
    data = bytearray(a.read_bytes())
    data[-1] ^= 0xFF  # the last byte (the index at the file's end) rewritten
    changed.write_bytes(bytes(data))
    why = report_mismatch(load_report(report), None, 8, path=changed)
    assert why == ("it is of another file (another video.mp4, of the same size, with other bytes; or this one was "
                   "changed since)")
    assert report_mismatch(load_report(report), None, 8, path=a) is None
    assert report_mismatch(load_report(report), None, 8) is None  # no path given: not compared


def test_an_older_report_is_checked_by_name_with_a_note(tiny_zoo, two_videos, tmp_path, capsys):
    a, b, report = two_videos
    old = tmp_path / "old.csv"
    pd.read_csv(report).drop(columns=["input_bytes", "input_fingerprint"]).to_csv(old, index=False)
    capsys.readouterr()
    # of the same name: accepted by name (the report cannot tell), with one note saying so
    assert main(["segment", "nuclei", str(a), "--out", str(tmp_path / "o"), "--no-overlay", "--skip-flagged",
                 str(old)]) == 0
    err = _err(capsys)
    assert err.count("records its video's name but not its fingerprint") == 1
    assert "curate the input again" in err
    # of another name: refused by it
    other = tmp_path / "b" / "other.mp4"
    shutil.copy(b, other)
    assert main(["segment", "nuclei", str(other), "--out", str(tmp_path / "o2"), "--no-overlay", "--skip-flagged",
                 str(old)]) == 2
    assert "not of this input: it is of video.mp4, the input is other.mp4" in _err(capsys)


# ------------------------------------------------------------------ 2: population's notes and frames without signal
def _population_folder(root: Path) -> Path:
    from devolens.io.images import write_png

    root.mkdir()
    for i in range(4):
        write_png(_blobs(seed=i), root / f"t{i + 1:03d}.png")
    write_png(np.full((128, 160), 90, np.uint8), root / "t005.png")  # one grey level throughout
    return root


def test_population_record_holds_its_notes_and_empties_frames_without_signal(tiny_zoo, tmp_path, capsys):
    frames = _population_folder(tmp_path / "frames")
    out = tmp_path / "p.csv"
    assert main(["population", str(frames), "--out", str(out), "--no-plot"]) == 0
    err = _err(capsys)
    df = pd.read_csv(out)
    assert list(df.columns) == ["frame", "A", "E", "M", "P", "C", "D", "Z", "total"]  # the columns kept
    flat = df["frame"] == "t005"
    assert df.loc[flat].drop(columns="frame").isna().all(axis=None)  # was: the black frame's reading, 1.22 cells
    assert df.loc[~flat].drop(columns="frame").notna().all(axis=None)
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["no_signal"] == ["t005"]
    flat_note = next(n for n in record["notes"] if "holds no signal" in n)  # was: no "notes" key
    assert flat_note.startswith("1 frame (t005) holds no signal (one grey level throughout): its row is left empty")
    assert f"note: {flat_note}" in err
    assert all(not n.startswith("tip:") for n in record["notes"])
    # --monotone leaves it out of its fit and reads its row off the curve, as --clock does
    assert main(["population", str(frames), "--out", str(tmp_path / "m.csv"), "--no-plot", "--monotone"]) == 0
    m = pd.read_csv(tmp_path / "m.csv")
    assert m.drop(columns="frame").notna().all(axis=None)
    rec = json.loads((tmp_path / "m.json").read_text())
    assert rec["no_signal"] == ["t005"] and rec["monotone_left_out"]["dark"] == ["t005"]
    assert any("--monotone left it out of its fit" in n for n in rec["notes"])


def test_population_record_has_an_empty_list_without_such_frames(tiny_zoo, tmp_path, capsys):
    frames = _population_folder(tmp_path / "frames")
    (frames / "t005.png").unlink()
    out = tmp_path / "p.csv"
    assert main(["population", str(frames), "--out", str(out), "--no-plot"]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["no_signal"] == [] and isinstance(record["notes"], list)
    assert pd.read_csv(out).drop(columns="frame").notna().all(axis=None)


# ------------------------------------------------------------------ 3: the digest of the whole model folder
def test_model_sha256_covers_the_card_and_every_weights_file(tiny_zoo, monkeypatch):
    from devolens import provenance
    from devolens.models import zoo

    before = provenance.model_sha256("nuclei")
    weights = zoo.weights_sha256("nuclei")
    card = tiny_zoo / "nuclei" / "card.json"
    info = json.loads(card.read_text())
    info["postprocessing"] = {"min_area": 12}  # a card parameter that changes results
    card.write_text(json.dumps(info))
    after = provenance.model_sha256("nuclei")
    assert after != before and zoo.weights_sha256("nuclei") == weights
    (tiny_zoo / "nuclei" / "size_model.safetensors").write_bytes(b"\0" * 16)  # a size model: --diameter auto
    assert provenance.model_sha256("nuclei") not in (before, after)
    names = [p.name for p in provenance.model_files("nuclei")[1]]
    assert names == ["card.json", "size_model.safetensors", "weights.safetensors"]
    # hashed once per process (per files, times and sizes), not per record or frame
    calls = []
    real = provenance.files_sha256
    monkeypatch.setattr(provenance, "files_sha256", lambda *a, **k: calls.append(1) or real(*a, **k))
    provenance.model_sha256("membrane")
    provenance.model_sha256("membrane")
    assert len(calls) == 1


def test_model_files_of_a_run_and_of_a_weights_file(tmp_path):
    from devolens.provenance import model_files

    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.json", "best.safetensors", "checkpoint.safetensors", "checkpoint.json", "run.json"):
        (run / name).write_text(name)
    assert [p.name for p in model_files(run)[1]] == ["best.json", "best.safetensors"]  # no resume checkpoint
    assert [p.name for p in model_files(run / "best.safetensors")[1]] == ["best.json", "best.safetensors"]


def test_segment_and_population_records_name_the_model_digest(tiny_zoo, tmp_path):
    from devolens.models import zoo
    from devolens.provenance import model_sha256

    frames = _population_folder(tmp_path / "frames")
    assert main(["segment", "nuclei", str(frames), "--out", str(tmp_path / "seg"), "--no-overlay"]) == 0
    seg = json.loads((tmp_path / "seg" / "segment.json").read_text())
    assert seg["model_sha256"] == model_sha256("nuclei") != seg["weights_sha256"] == zoo.weights_sha256("nuclei")
    assert main(["population", str(frames), "--out", str(tmp_path / "p.csv"), "--no-plot"]) == 0
    pop = json.loads((tmp_path / "p.json").read_text())
    assert pop["model_sha256"] == model_sha256("population")
    assert pop["nuclei_model_sha256"] == model_sha256("nuclei")


@pytest.mark.skipif(not (shipped("identity") and shipped("livedead")), reason="needs the shipped models")
def test_identify_and_livedead_records_name_the_model_digest(tmp_path):
    from devolens.cli.identify import _identify_record
    from devolens.cli.tiles import _livedead_record
    from devolens.provenance import model_sha256

    rec = json.loads(_identify_record(tmp_path / "t.csv", tmp_path / "o.csv", "identity",
                                      SimpleNamespace(tta=1, smooth=True), zscale={}, notes=[]))
    assert rec["model_sha256"] == model_sha256("identity") and len(rec["model_sha256"]) == 64
    assert list(rec).index("model_sha256") == list(rec).index("weights_sha256") + 1
    rec = json.loads(_livedead_record(tmp_path / "w.tif", "livedead", {"live": 1, "dead": 0}, options={}, notes=[]))
    assert rec["model_sha256"] == model_sha256("livedead")


# ------------------------------------------------------------------ 4: the shape note at a low magnification
@pytest.mark.skipif(not shipped("membrane"), reason="needs the shipped membrane model")
def test_membrane_renders_at_256_are_not_called_nuclei_and_nuclei_still_are(tmp_path, capsys):
    """devolens' own membrane render at 256x256 (0.34x) was judged at 1.16x its pixels, where its lines (drawn a few
    pixels wide at any size) survive the opening: "looks like nuclei (79 % ...)". Nuclei rendered at that size, given
    to segment membrane, keep the note."""
    for kind in ("membrane", "nuclei"):
        assert main(["-q", "render", "--simulate", "1", "--size", "256", "256", "--every", "40", "--kind", kind,
                     "--seed", "3", "--out", str(tmp_path / kind)]) == 0
        capsys.readouterr()
        out = tmp_path / f"seg_{kind}"
        assert main(["segment", "membrane", str(tmp_path / kind / "frames"), "--out", str(out), "--no-overlay"]) == 0
        err = _err(capsys)
        notes = json.loads((out / "segment.json").read_text())["notes"]
        noted = any("looks like nuclei" in n for n in notes)
        assert noted == (kind == "nuclei") and ("looks like nuclei" in err) == noted


def test_the_judging_scale_is_capped_at_the_input_pixels_share():
    from devolens.cli.predict import SHAPE_MOST_SCALE, _judging_scale

    assert _judging_scale(0.75, 0.75) == pytest.approx(min(0.5, SHAPE_MOST_SCALE))
    assert _judging_scale(0.375, 0.75) == pytest.approx(0.25)  # a high magnification: half the render scale
    assert _judging_scale(1.74, 0.75) == SHAPE_MOST_SCALE  # a low one: not enlarged past it (was 1.16)


@pytest.mark.skipif(not shipped("membrane"), reason="needs the shipped membrane model")
def test_real_nuclei_at_a_low_magnification_still_look_like_nuclei(shared_data):
    """The real reference frames shrunk to a third (nuclei ~12 px), judged as segment membrane judges them."""
    import cv2

    from devolens.cli.predict import _shape_note
    from devolens.io.images import read_image
    from devolens.models import load

    files = sorted((shared_data / "reference_frames").glob("*.png"))
    frames = [cv2.resize(read_image(p), None, fx=0.33, fy=0.33, interpolation=cv2.INTER_AREA) for p in files]
    pred = load("membrane", diameter="auto")
    list(pred.predict_iter(iter(frames)))
    assert 0.5 * pred.working_scale() / pred.card_scale > 0.5  # enlarged for the network: the capped case
    assert "looks like nuclei" in (_shape_note(frames, "membrane", pred) or "")


# ------------------------------------------------------------------ 5: a float movie's brightness in one range
def test_brightness_of_a_float_movie_is_read_in_one_range():
    from devolens.cli.predict import _brightness
    from devolens.curate.frames import frame_signal

    frames = [_blobs(seed=i).astype(np.float32) * 16.0 for i in range(12)]  # camera counts up to ~3200
    frames[-4:] = [f / 4.0 for f in frames[-4:]]  # the last third bleached to a quarter
    signals = [frame_signal(f) for f in frames]
    assert signals[0]["range"] == 4096.0 and signals[-1]["range"] == 1024.0  # each read in its own range
    ratio = _brightness(signals)["ratio"]
    assert ratio == pytest.approx(0.25, abs=0.03)  # was 1.0: the last frames read in a 4x narrower range
    ints = [frame_signal(_blobs(seed=i)) for i in range(6)]  # integer frames: as before
    assert _brightness(ints)["ratio"] == pytest.approx(1.0, abs=0.15)


def test_population_notes_a_bleached_float_stack(tiny_zoo, tmp_path, capsys):
    import tifffile

    frames = np.stack([_blobs(seed=i).astype(np.float32) * 16.0 for i in range(9)])
    frames[-3:] /= 8.0
    stack = tmp_path / "float.tif"
    tifffile.imwrite(stack, frames, imagej=True, metadata={"axes": "TYX"})
    out = tmp_path / "p.csv"
    assert main(["population", str(stack), "--out", str(out), "--no-plot"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["brightness"]["ratio"] < 0.3
    assert "the nuclei dim to" in _err(capsys)


# ------------------------------------------------------------------ 6: the overlay video's padding
@pytest.mark.parametrize("size, padded", [((63, 80), "overlay.mp4 is 80x64"), ((64, 81), "overlay.mp4 is 82x64"),
                                          ((64, 80), None)])
def test_segment_notes_an_overlay_video_padded_to_even_sides(tiny_zoo, tmp_path, capsys, size, padded):
    import tifffile

    stack = tmp_path / "odd.tif"
    tifffile.imwrite(stack, np.stack([_blobs(size, seed=i) for i in range(3)]), imagej=True,
                     metadata={"axes": "TYX"})
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(stack), "--out", str(out), "--diameter", "none"]) == 0
    err = _err(capsys)
    notes = json.loads((out / "segment.json").read_text())["notes"]
    found = [n for n in notes if "overlay.mp4 is" in n]
    if padded is None:
        assert not found and "overlay.mp4 is" not in err
        return
    assert len(found) == 1 and padded in found[0] and padded in err
    side = "row" if size[0] % 2 else "column"
    assert f"its last {side} a copy of the one before (H.264's yuv420p needs even sides)" in found[0]
