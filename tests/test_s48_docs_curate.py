"""Session 48, a documentation walkthrough's findings: curate frames reads an OME-TIFF's embryo prefix and time point,
render's red lines survive its video, segment's diameter hint and micron-column notes, and the docs as the code is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from _cli_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from curate_synth import synth_sequence
from devolens.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _flat(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------- 1. OME-TIFF names in curate frames
def test_ome_tif_names_give_their_sequence_and_time():
    from devolens.curate.frames import _name_keys, _parse_name

    assert _parse_name("emb1_t003.ome.tif") == ("emb1", 3)
    assert _parse_name("T012.ome.tiff") == ("", 12)
    assert _parse_name("emb1_t003.png") == ("emb1", 3)  # as before
    assert _parse_name("emb1_t003.v2.png") == ("", None)  # two suffixes that are no OME-TIFF's: no time, as before
    names = [f"emb{e}_t{t:03d}.ome.tif" for e in (1, 2) for t in range(1, 7) if (e, t) != (1, 3)]
    assert _name_keys(names)[:3] == [("emb1", 1), ("emb1", 2), ("emb1", 4)]


def test_curate_a_folder_of_ome_tifs_finds_the_gap_and_keeps_embryos_apart(tmp_path):
    from devolens.curate.frames import curate_path

    folder = tmp_path / "two_ome"
    folder.mkdir()
    frames = synth_sequence(6, size=(64, 80), seed=3)
    for e, gain in ((1, 1.0), (2, 0.4)):  # the second embryo dimmer: compared across, its frames read dark
        for t, f in enumerate(frames, 1):
            if (e, t) != (1, 3):
                tifffile.imwrite(folder / f"emb{e}_t{t:03d}.ome.tif", (f * gain).astype(np.uint8), photometric="rgb")
    report = curate_path(folder)
    assert set(report["sequence"].dropna()) == {"emb1", "emb2"}
    missing = report[report["flag"] == "dropped"]
    assert len(missing) == 1 and missing["sequence"].iloc[0] == "emb1" and missing["time"].iloc[0] == 3
    assert not report["dark"].any()  # each embryo's frames against its own


# ---------------------------------------------------------------------------- 2. render's objects.csv in the docs
def test_docs_join_render_objects_through_frames_csv():
    from devolens.render.dataset import OBJECTS_COLUMNS

    assert "video_frame" not in OBJECTS_COLUMNS
    text = _flat((ROOT / "docs" / "outputs.md").read_text())
    assert "`video_frame` (`frames.csv` only)" in text and "`objects.csv` joins to `frames.csv` on `file`" in text


# ---------------------------------------------------------------------------- 3. the diameter hint
def test_diameter_hint_gives_one_decimal():
    from devolens.cli.predict import _estimate_note
    from devolens.predict.sizing import DiameterEstimate

    est = DiameterEstimate(diameter=19.716, magnification=1.8, per_image=[1.8], trusted=5, resize=1.3)
    assert "as --diameter 19.7 would do" in _estimate_note(est, "nuclei")


# ---------------------------------------------------------------------------- 4. micron columns left out or empty
def _imagej(path: Path, seed: int) -> None:
    tifffile.imwrite(path, blob_frame(48, 70, seed=seed, rgb=False), imagej=True, resolution=(2.0, 2.0),
                     metadata={"unit": "um"})


def _png(path: Path, seed: int) -> None:
    from devolens.io.images import write_png

    write_png(blob_frame(48, 70, seed=seed, rgb=False), path)


@pytest.mark.parametrize("first_calibrated", [False, True])
def test_a_folder_of_mixed_calibration_gets_a_note(tmp_path, tiny_zoo, capsys, first_calibrated):  # noqa: F811
    src = tmp_path / "in"
    src.mkdir()
    (_imagej if first_calibrated else _png)(src / ("a.tif" if first_calibrated else "a.png"), 0)
    (_png if first_calibrated else _imagej)(src / ("b.png" if first_calibrated else "b.tif"), 1)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay", "--diameter", "none"]) == 0
    assert (out / "objects.csv").read_text().count("\nb,") > 0  # b's objects: rows (empty micron cells, or none)
    err = _flat(capsys.readouterr().err)
    header = (out / "objects.csv").read_text().splitlines()[0]
    notes = json.loads((out / "segment.json").read_text())["notes"]
    if first_calibrated:
        assert header.endswith("x_um,y_um,area_um2")
        words = "1 file (b.png) records no pixel size: its objects' x_um, y_um, area_um2 in objects.csv are empty"
    else:
        assert "x_um" not in header
        words = ("objects.csv has no x_um, y_um, area_um2 columns, as the first file (a.png) records no pixel size, "
                 "though b.tif does; give --pixel-size")
    assert words in err and any(words in n for n in notes)
    capsys.readouterr()
    assert main(["segment", "nuclei", str(src), "--out", str(tmp_path / "given"), "--no-overlay", "--diameter",
                 "none", "--pixel-size", "0.5"]) == 0
    assert "x_um" not in _flat(capsys.readouterr().err)  # --pixel-size given: nothing to say


def test_microns_note_words():
    from devolens.cli.predict import _microns_note

    assert _microns_note([], True, "a.tif") is None
    assert "2 files (b.png, c.png) record no pixel size: their objects'" in _microns_note(["b.png", "c.png"], True,
                                                                                          "a.tif")


# ---------------------------------------------------------------------------- 5. red lines in render --video
def test_red_lines_are_two_rows_or_more_and_recorded_so():
    from devolens.render.artifacts import apply_frame_artifact

    img = np.full((64, 80, 3), 20, np.uint8)
    for seed in range(60):
        r, _, info = apply_frame_artifact(img, None, "red_line", np.random.default_rng(seed))
        rows = info["rows"]
        assert 2 <= len(rows) <= 3 and rows == list(range(rows[0], rows[0] + len(rows)))
        red = np.flatnonzero((r[..., 0] >= 200).all(axis=1))
        assert red.tolist() == rows  # the recorded rows are the red ones, no more


def test_red_lines_survive_the_video_and_curate_flags_them(tmp_path):
    """A video's 4:2:0 colour keeps one colour per two rows: a one-row red line on an odd row came out grey (seed 14
    drew one at row 105), a line curate frames could not see in the video while frames.csv recorded it."""
    from devolens.curate.frames import curate_path
    from devolens.io.video import write_video
    from devolens.render.artifacts import apply_frame_artifact

    frames = synth_sequence(12, size=(128, 160), seed=5)
    for i, seed in ((4, 14), (8, 6)):  # seed 6: two rows from an odd one (67)
        frames[i] = apply_frame_artifact(frames[i], None, "red_line", np.random.default_rng(seed))[0]
    video = write_video(iter(frames), tmp_path / "v.mp4", fps=5, quality=7, preset="veryfast")  # as render's
    report = curate_path(video)
    assert report.loc[report["red_line"], "frame"].tolist() == [4, 8]


# ---------------------------------------------------------------------------- 6. the README's reproducer
def test_readme_states_the_current_acetree_figures():
    text = _flat((ROOT / "README.md").read_text())
    assert "at 566-580 cells they read 293-395 now" in text and "298-389 in an earlier measurement" in text


# ---------------------------------------------------------------------------- 7. level_ratio as the code makes it
def test_level_ratio_is_as_the_docs_say(tmp_path):
    """Each side's 4 nearest frames that are not black, dark or bright, their medians, the lower (higher) of them;
    one side's where the other has none."""
    from devolens.curate.frames import score_frames

    text = _flat((ROOT / "docs" / "outputs.md").read_text())
    assert "the 4 nearest frames before it and that of the 4 nearest after it" in text
    frames = synth_sequence(16, seed=2)
    frames[6] = np.zeros_like(frames[6])
    frames[10] = (frames[10] * 0.1).astype(np.uint8)
    report = score_frames(frames)
    assert report["black"].tolist()[6] and report["dark"].tolist()[10]
    level = report["level"].to_numpy()
    usable = np.flatnonzero(~(report["black"] | report["dark"] | report["bright"]).to_numpy())
    for i in range(len(frames)):
        before, after = usable[usable < i][-4:], usable[usable > i][:4]
        medians = [float(np.median(level[s])) for s in (before, after) if len(s)]
        assert report["level_ratio"].iloc[i] == pytest.approx(level[i] / min(medians), rel=2e-3)
        assert report["level_ratio_high"].iloc[i] == pytest.approx(level[i] / max(medians), rel=2e-3)
    assert isinstance(report, pd.DataFrame)
