"""Small mends (session 47): ``simulate well --labels -`` refused as ``--out -`` is; the missing-frames note's
"it" for one frame; the population predictor's size warning says "count them"; the well's smallest size in one
place and one message; records name curate's and population's paths without ``..``."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from _cli_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main


def _flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


# ------------------------------------------------------------------ 1. simulate well's other outputs as "-"

@pytest.mark.parametrize("option", ["--labels", "--objects"])
@pytest.mark.parametrize("attached", [False, True])
def test_simulate_well_refuses_a_dash_for_its_other_outputs(tmp_path, monkeypatch, capsys, option, attached):
    monkeypatch.chdir(tmp_path)
    given = {"--out": "w.tif", "--labels": "l.tif", "--objects": "o.csv"}
    given[option] = "-"
    argv = ["simulate", "well", "--size", "16x16"]
    for name, value in given.items():
        argv += [f"{name}={value}"] if attached and name == option else [name, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "error: -: writing to stdout is not supported: give a file name (./- for a file named -)\n"
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_simulate_well_still_takes_a_file_named_dash_as_dot_slash(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "well", "--size", "16x16", "--out", "w.tif", "--labels", "l.tif",
                 "--objects", "./-"]) == 0
    assert (tmp_path / "-").is_file()


def test_tile_labels_are_inputs_and_not_refused_as_outputs(tmp_path, monkeypatch, capsys):
    """``tile --labels`` reads label images: "-" there is not an output (no stdout message)."""
    monkeypatch.chdir(tmp_path)
    main(["tile", "make", "x.tif", "--labels", "-", "--out", "t.h5"])
    assert "writing to stdout" not in capsys.readouterr().err


# ------------------------------------------------------------------ 2. the missing frames' note

def test_missing_note_says_it_of_one_frame_and_them_of_several():
    from devolens.io.missing import missing_note

    one = missing_note([(15, "", "lost", "")])
    assert one.startswith("1 frame of the video is missing (frame 15: its timestamps skip it;")
    assert "the frames after it keep their numbers" in one and "them" not in one
    several = missing_note([(15, "", "lost", ""), (16, "", "lost", "")], skipped=True)
    assert "2 frames of the video are missing (frames 15-16: its timestamps skip them;" in several
    assert "the frames after them keep their numbers" in several and "left out" in several
    bad_one = missing_note([(3, "f3.png", "unreadable", "truncated")])
    assert bad_one.endswith("1 file could not be read (e.g. f3.png: truncated): flagged unreadable; --skip-flagged "
                            "leaves it out")
    bad_two = missing_note([(3, "f3.png", "unreadable", "x"), (4, "f4.png", "unreadable", "y")])
    assert bad_two.endswith("--skip-flagged leaves them out")


# ------------------------------------------------------------------ 3. population's size warning

def test_population_size_warning_says_count_and_segmentation_keeps_segment():
    from devolens.predict.notes import size_note
    from devolens.predict.population import PopulationPredictor

    stub = SimpleNamespace(size_advice=lambda areas: 21.0, known_sizes=(6.0, 14.0), resize=1.0)
    told = list(PopulationPredictor._size_told(stub, [340.0]))
    assert len(told) == 1
    assert "count them with diameter=21." in told[0].text and "segment them" not in told[0].text
    # segmentation's warning (SizeWatch: the nuclei predictor's calls) as before
    assert "segment them with diameter=21." in size_note("nuclei", 21.0, (6.0, 14.0), False, library=True)
    assert "run again with --diameter 21." in size_note("nuclei", 21.0, (6.0, 14.0), False)


# ------------------------------------------------------------------ 4. the smallest well

@pytest.mark.parametrize("size", [(7, 20), (20, 7), (0, 8)])
def test_the_smallest_well_is_one_limit_in_the_same_words(tmp_path, monkeypatch, capsys, size):
    from devolens.errors import DevolensError
    from devolens.render import wells
    from devolens.cli import tiles

    assert tiles.MIN_WELL == wells.MIN_WELL == 8  # (the CLI's --help copy of the library's limit)
    with pytest.raises(DevolensError) as caught:
        wells.simulate_well(size=size)
    words = f"must be at least 8x8 pixels, got {size[0]}x{size[1]}"
    assert str(caught.value) == f"well size {words}"
    monkeypatch.chdir(tmp_path)
    assert main(["simulate", "well", "--out", "w.tif", "--labels", "l.tif", "--size", f"{size[0]}x{size[1]}"]) == 2
    assert f"Invalid value for --size: {words}" in _flat(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []
    wells.simulate_well(size=(8, 8))  # the smallest, both ways
    assert main(["simulate", "well", "--out", "w.tif", "--labels", "l.tif", "--size", "8x8"]) == 0


# ------------------------------------------------------------------ 5. records' paths without ".."

def _movie(folder: Path, n: int = 3) -> Path:
    from devolens.io.images import write_png

    folder.mkdir()
    for i in range(n):
        write_png(blob_frame(64, 64, seed=i, rgb=False), folder / f"t{i + 1:03d}.png")
    return folder


def _no_dots(record: dict) -> None:
    text = json.dumps(record)
    assert "/../" not in text and "/./" not in text, text


def test_curate_record_names_its_paths_without_dots(tmp_path, monkeypatch):
    _movie(tmp_path / "in")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["curate", "frames", "../in", "--out", "../R.csv"]) == 0
    record = json.loads((tmp_path / "R.json").read_text())
    assert record["input"] == str(tmp_path / "in") and record["output"] == str(tmp_path / "R.csv")
    _no_dots(record)


def test_population_record_names_its_paths_without_dots(tiny_zoo, tmp_path, monkeypatch):  # noqa: F811
    _movie(tmp_path / "in")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["population", "../in", "--out", "../p.csv", "--skip-flagged", "auto"]) == 0
    record = json.loads((tmp_path / "p.json").read_text())
    assert record["plot"] == str(tmp_path / "p.png")
    assert record["curation"] == str(tmp_path / "p.curation.csv")
    assert record["curation_report"] == {"by": "auto", "path": str(tmp_path / "p.curation.csv")}
    assert record["output"] == str(tmp_path / "p.csv")
    _no_dots(record)
    # a report given by a ../ path: recorded without the dots too (options and curation_report)
    assert main(["curate", "frames", "../in", "--out", "../R.csv"]) == 0
    assert main(["population", "../in", "--out", "../q.csv", "--skip-flagged", "../R.csv"]) == 0
    record = json.loads((tmp_path / "q.json").read_text())
    assert record["curation_report"]["path"] == str(tmp_path / "R.csv")
    _no_dots(record)
