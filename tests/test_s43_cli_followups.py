"""Follow-ups of ``segment``'s new habits: the --keep-small note counts the lone nuclei dropped over the whole run
(an embryo movie loses its just-divided nuclei one or two a frame), the colour line and ``segment.json`` say when a
folder's files were read by different channels (and no colour line beside the note on 3 TIFF planes read as one
colour image), and the post-processing options' help and checks (--min-size an area, decimals taken)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from test_s43_cellpose_habits import _err, _squares  # (the same helpers)


def _nuclei(scale: int = 2) -> np.ndarray:
    """A 128x160 float mask of five 16 px squares (nuclei at the tiny models' working scale 0.5)."""
    return np.kron(_squares((64, 80), [(4, 4, 8), (4, 30, 8), (30, 12, 8), (30, 50, 8), (50, 60, 8)]),
                   np.ones((scale, scale), np.float32))


def _rgb(path: Path, at: int) -> Path:
    """An RGB PNG of the nuclei in channel ``at`` (the others flat)."""
    from PIL import Image

    rgb = np.full((128, 160, 3), 10, np.uint8)
    rgb[..., at] = (_nuclei() * 220 + 10).astype(np.uint8)
    Image.fromarray(rgb).save(path)
    return path


# --------------------------------------------------------------------------------------------- the speck note
def test_lone_note_counts_the_whole_runs_drops():
    """The benchmark movie's drops (made up after it: 14 just-divided nuclei in 11 of 140 frames, never 3 in most
    frames) are said, with every frame counted; fewer than LONE_SEVERAL in the run, or tiny ones, are not."""
    from devolens.cli.predict import LONE_SEVERAL, _add_lone, _lone_dropped_note

    drops = {0: [676], 2: [680], 4: [900], 13: [336], 19: [708], 27: [532], 35: [532, 620, 516], 40: [532],
             53: [340], 54: [304, 308], 56: [204]}
    lone: list = []
    for frame in range(140):
        # 8 working pixels at scale 0.5: 32 image pixels kept, so 128 px and more are "not tiny"; a 60 px speck is
        _add_lone(lone, frame, drops.get(frame, []) + [60], None, 8.0, 0.5)
    assert [x[0] for x in lone] == sorted(drops)  # every frame with one, not only frame 35's three
    note = _lone_dropped_note(lone, 140, "nuclei")
    assert note.startswith("note: 14 lone nuclei of about 204-900 px in 11 frames (0, 2, 4, 13, 19, 27, 35, 40 "
                           "and 3 more) were dropped as specks")
    assert "just-divided embryo nuclei or small nuclei of a mixed culture" in note and "--keep-small" in note

    few: list = []
    for frame, areas in ((3, [300]), (9, [400])):
        _add_lone(few, frame, areas, None, 8.0, 0.5)
    assert LONE_SEVERAL == 3 and _lone_dropped_note(few, 140, "nuclei") is None  # 2 in a run: silent
    tiny: list = []
    _add_lone(tiny, 0, [40, 50, 60, 70], 20.0, None, None)  # --min-size 20: under 80 px is tiny
    assert tiny == [] and _lone_dropped_note(tiny, 1, "nuclei") is None


# --------------------------------------------------------------------------------------------- colour
def test_colour_line_and_record_say_files_read_by_different_channels(tiny_zoo, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    _rgb(folder / "a_green.png", 1)
    _rgb(folder / "b_red.png", 0)
    tifffile.imwrite(folder / "c_grey.tif", (_nuclei() * 3000 + 200).astype(np.uint16))
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--no-overlay", "--diameter", "none"]) == 0
    err = _err(capsys)
    assert "colour input: the green channel was read (1 file), red (1 file: b_red.png); each file is judged on its " \
           "own" in err
    assert "--color red|green|blue|mean reads the same one in every file" in err
    record = json.loads((out / "segment.json").read_text())
    assert record["color_read"] == "green"
    assert record["color_read_frames"] == {"green": ["a_green"], "red": ["b_red"]}

    # one channel throughout: the line and the record as before (no color_read_frames)
    (folder / "b_red.png").unlink()
    _rgb(folder / "b_green.png", 1)
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--no-overlay", "--diameter", "none"]) == 0
    err = _err(capsys)
    assert "colour input: the green channel was read (green is kept" in err and "(1 file" not in err
    record = json.loads((out / "segment.json").read_text())
    assert record["color_read"] == "green" and "color_read_frames" not in record


def test_no_colour_line_beside_the_planar_rgb_note(tiny_zoo, tmp_path, capsys):
    planes = np.stack([(_nuclei() * 200 + 10), np.roll(_nuclei(), 20, axis=1) * 150 + 10,
                       np.full((128, 160), 10.0)]).astype(np.uint8)
    src = tmp_path / "shaped3.tif"
    tifffile.imwrite(src, planes)  # (3, H, W) uint8: tifffile stores it as one planar RGB image
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay", "--diameter", "none"]) == 0
    err = _err(capsys)
    assert "shaped3.tif was read as one colour image (3 samples)" in err
    assert "colour input:" not in err
    record = json.loads((out / "segment.json").read_text())
    assert record["color_read"] is not None  # (recorded all the same)


# --------------------------------------------------------------------------------------------- options
def test_min_size_takes_an_area_with_decimals(tiny_zoo, tmp_path, capsys):
    src = tmp_path / "grey.tif"
    tifffile.imwrite(src, (_nuclei() * 3000 + 200).astype(np.uint16))
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay", "--min-size", "58.7"]) == 0
    capsys.readouterr()
    record = json.loads((out / "segment.json").read_text())
    assert record["options"]["min_size"] == 58.7 and record["postprocess"]["min_size_px"] == 58.7


def test_threshold_0_gets_cellposes_hint(tiny_zoo, tmp_path, capsys):
    src = tmp_path / "grey.tif"
    tifffile.imwrite(src, (_nuclei() * 3000 + 200).astype(np.uint16))
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--threshold", "0"]) == 2
    err = _err(capsys)
    assert "--threshold must be a probability between 0 and 1" in err
    assert "cellpose's cellprob_threshold 0 is about 0.5 here" in err
    assert not out.exists()
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--seed-threshold", "0"]) == 2
    assert "cellprob_threshold" not in _err(capsys)  # (the hint is --threshold's)


def test_help_of_the_postprocess_options(capsys):
    from devolens.cli.predict import _min_size_help, _threshold_help

    assert main(["segment", "nuclei", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())  # (rich's panel: its borders out)
    assert "--min-size AREA" in out and "--min-size PX" not in out
    assert "within 2 pixels of its outline (at the network's working resolution" in out
    words = _min_size_help("nuclei")
    assert "as an area in pixels of the input image" in words and "decimals allowed" in words
    assert "postprocess.min_size_px records the area that ran" in words and "/s²" not in words
    assert _threshold_help("nuclei").startswith("Foreground probability above which a pixel is nucleus")
    assert _threshold_help("membrane").startswith("Foreground probability above which a pixel is cell")
