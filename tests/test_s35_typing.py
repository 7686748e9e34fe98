"""Beginners' typing mistakes and wrong inputs (a teaching lab's walkthrough): dashes pasted from a PDF, a long
option with one hyphen, a path with spaces not quoted, a group given the input where its sub-command goes, a devolens
output folder (or its labels/, its overlays/) given as the input, a name whose accents are encoded otherwise (NFD
from a Mac). Each is one ``error:`` line (or a ``note:``) that says what was typed wrong and what to type."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from devolens.errors import DevolensError
from devolens.io.frames import composed_twin, iter_path_frames, left_out_note, overlays_note
from test_cli_usage_errors import run  # main on argv: (code, stdout, stderr)

HINT = "looks like --out typed with a typographic dash (from a PDF or word processor?): type two plain hyphens"


def one_line(err: str) -> str:
    assert err.startswith("error: ") and err.endswith("\n") and err.count("\n") == 1, repr(err)
    return err[len("error: "):-1]


def png(path: Path, value: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((32, 40), value, np.uint8)
    img[10:20, 10:20] = 200
    Image.fromarray(img).save(path)
    return path


# 1. dashes pasted from a PDF or a word processor ------------------------------------------------------------------


@pytest.mark.parametrize("dash", ["\u2013", "\u2014", "\u2212"])
def test_typographic_dash_before_a_required_option(tmp_path, capsys, dash):
    """`segment nuclei img.png –out x` said only "Missing option '--out'"."""
    img = png(tmp_path / "img.png")
    code, _, err = run(["segment", "nuclei", img, f"{dash}out", tmp_path / "x"], capsys)
    line = one_line(err)
    assert code == 2 and line.startswith("Missing option '--out' / '-o'; ")
    assert f"{dash}out {HINT}" in line and line.endswith("(see devolens segment nuclei --help)")
    assert not (tmp_path / "x").exists()


def test_en_dash_and_hyphen(tmp_path, capsys):
    code, _, err = run(["population", tmp_path / "m.mp4", "\u2013-out", tmp_path / "p.csv"], capsys)
    assert code == 2 and f"\u2013-out {HINT}" in one_line(err)


def test_typographic_dash_as_an_extra_argument_drops_the_pattern_advice(tmp_path, capsys):
    """`... --out x –diameter 40` said "(a pattern such as *.png gives one argument per file)"."""
    img = png(tmp_path / "img.png")
    code, _, err = run(["segment", "nuclei", img, "--out", tmp_path / "x", "\u2013diameter", "40"], capsys)
    line = one_line(err)
    assert code == 2 and line.startswith("got extra arguments (\u2013diameter 40); \u2013diameter looks like "
                                         "--diameter typed with a typographic dash")
    assert "*.png" not in line and "type two plain hyphens" in line


def test_typographic_dash_taken_as_the_input(tmp_path, capsys, monkeypatch):
    """The word read as INPUT: the missing file's error says it too."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["segment", "nuclei", "--out", "x", "\u2013diameter"], capsys)
    line = one_line(err)
    assert code == 2 and line.startswith("\u2013diameter: no such file or folder; \u2013diameter looks like --diameter")


# 2. a long option with one hyphen ---------------------------------------------------------------------------------


def test_long_option_with_one_hyphen_read_as_a_short_one(tmp_path, capsys):
    """`-out x20` is -o ut, then x20 an extra argument with the *.png advice."""
    img = png(tmp_path / "img.png")
    code, _, err = run(["segment", "nuclei", img, "-out", "x20"], capsys)
    line = one_line(err)
    assert code == 2 and "*.png" not in line
    assert line == ("got extra arguments (x20); -out was read as -o ut: long options take two hyphens (--out) "
                    "(see devolens segment nuclei --help)")


def test_long_option_with_one_hyphen_without_a_short_one(tmp_path, capsys):
    img = png(tmp_path / "img.png")
    code, _, err = run(["segment", "nuclei", img, "--out", tmp_path / "x", "-diameter", "40"], capsys)
    assert code == 2 and "; -diameter: long options take two hyphens (--diameter)" in one_line(err)
    # a word that is no long option's name: click's own error, as it was
    code, _, err = run(["segment", "nuclei", img, "-zz"], capsys)
    line = one_line(err)
    assert code == 2 and "long options" not in line and "typographic" not in line


# 3. a path with spaces, unquoted ----------------------------------------------------------------------------------


def test_unquoted_path_with_spaces(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    png(tmp_path / "Embryo Übung 1.png")
    code, _, err = run(["segment", "nuclei", "Embryo", "Übung", "1.png", "--out", "x7"], capsys)
    line = one_line(err)
    assert code == 2 and "*.png" not in line
    assert line == ('got extra arguments (Übung 1.png); a path with spaces must be quoted: "Embryo Übung 1.png" '
                    "(see devolens segment nuclei --help)")
    # extra arguments that are files of their own (few/*.png) keep the advice to give their folder
    for name in ("a.png", "b.png"):
        png(tmp_path / "few" / name)
    code, _, err = run(["segment", "nuclei", "few/a.png", "few/b.png", "--out", "x"], capsys)
    line = one_line(err)
    assert code == 2 and "give the folder that holds them instead" in line and "quoted" not in line


def test_unquoted_folder_with_spaces_for_a_command_of_many_inputs(tmp_path, capsys, monkeypatch):
    """`tile make` takes several IMAGEs: the first word is a missing file, said with the quoting advice."""
    monkeypatch.chdir(tmp_path)
    png(tmp_path / "Embryo Übung 1.png")
    code, _, err = run(["tile", "make", "Embryo", "Übung", "1.png", "--keep", "all", "--out", "t.h5"], capsys)
    line = one_line(err)
    assert code == 2 and line.endswith('; a path with spaces must be quoted: "Embryo Übung 1.png"')


# 4. a group given the input where its sub-command goes ------------------------------------------------------------


def test_group_without_its_sub_command(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    png(tmp_path / "img.png")
    code, _, err = run(["segment", "img.png", "--out", "x"], capsys)
    assert code == 2 and one_line(err) == (
        "No such command 'img.png'; devolens segment needs a sub-command before the input (nuclei, membrane or "
        "livedead): devolens segment nuclei img.png ... (see devolens segment --help)")
    # files that do not exist but look like files (a suffix)
    code, _, err = run(["curate", "film.mp4", "--out", "r.csv"], capsys)
    assert code == 2 and "devolens curate needs a sub-command before the input (frames): " \
                         "devolens curate frames film.mp4 ..." in one_line(err)
    code, _, err = run(["lineage", "table.csv", "--out", "l.csv"], capsys)
    assert code == 2 and "(convert, populations, cliffs or clean): devolens lineage convert table.csv" in one_line(err)
    # a folder
    (tmp_path / "imgs").mkdir()
    code, _, err = run(["segment", "imgs"], capsys)
    assert code == 2 and "devolens segment nuclei imgs ..." in one_line(err)
    # a misspelt sub-command keeps click's "Did you mean"
    code, _, err = run(["segment", "nucle", "x"], capsys)
    assert code == 2
    assert one_line(err) == "No such command 'nucle'. Did you mean 'nuclei'? (see devolens segment --help)"


def test_devolens_given_a_file_first(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    png(tmp_path / "img.png")
    code, _, err = run(["img.png"], capsys)
    line = one_line(err)
    assert code == 2 and "devolens needs a command before the input, one of " in line and "segment" in line


# 5. a devolens output folder given as the input -------------------------------------------------------------------


def labels_tif(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.ones((32, 40), np.uint16))


def segment_output(root: Path) -> Path:
    """The layout `devolens segment nuclei imgs --out Results` writes (two images a, b)."""
    out = root / "Results"
    for stem in ("a", "b"):
        png(out / "overlays" / f"{stem}_overlay.png", 90)
        labels_tif(out / "labels" / f"{stem}_labels.tif")
    (out / "segment.json").write_text(json.dumps({"command": "devolens segment nuclei imgs --out Results"}))
    (out / "counts.csv").write_text("frame,count\na.png,1\nb.png,1\n")
    return out


def test_output_folder_says_to_give_the_original_images(tmp_path):
    out = segment_output(tmp_path)
    with pytest.raises(DevolensError) as err:
        iter_path_frames(out)
    msg = err.value.message
    assert "give one of them" not in msg and "subfolder" not in msg
    assert msg.endswith(": it is an output folder of devolens segment (segment.json is there), whose labels and "
                        "overlays are results, not images to analyse: give the folder of the original images")


def test_labels_folder_says_its_files_were_left_out_as_labels(tmp_path):
    out = segment_output(tmp_path)
    with pytest.raises(DevolensError) as err:
        iter_path_frames(out / "labels")
    msg = err.value.message
    assert msg.startswith("no image files (") and "(a_labels.tif, b_labels.tif) are named *_labels" in msg
    assert "results of devolens segment" in msg and "give the folder of the original images" in msg
    # a render's labels/ (no record beside it) is told apart by name only
    labels_tif(tmp_path / "render" / "labels" / "t001_labels.tif")
    with pytest.raises(DevolensError, match=r"a render's ground truth or a segmentation's results"):
        iter_path_frames(tmp_path / "render" / "labels")


def test_overlays_are_read_with_a_note(tmp_path):
    out = segment_output(tmp_path)
    frames, names, total = iter_path_frames(out / "overlays")  # read, not refused
    assert names == ["a_overlay.png", "b_overlay.png"] and total == 2
    note = left_out_note(out / "overlays")
    assert note == overlays_note(out / "overlays")
    assert note.startswith("note: the input looks like devolens overlays (the overlays/ folder of an output folder "
                           "of devolens segment, segment.json one level up)")
    # by their names, elsewhere; a single file; a video beside its record
    png(tmp_path / "copied" / "a_overlay.png")
    png(tmp_path / "copied" / "c.png")
    assert "1 of its 2 images named *_overlay, as devolens names them: a_overlay.png" in left_out_note(
        tmp_path / "copied")
    assert "named *_overlay.png" in overlays_note(out / "overlays" / "a_overlay.png")
    (out / "overlay.mp4").write_bytes(b"")
    assert "the overlay video of an output folder of devolens segment" in overlays_note(out / "overlay.mp4")
    # original images: no note
    png(tmp_path / "imgs" / "a.png")
    assert left_out_note(tmp_path / "imgs") is None and overlays_note(tmp_path / "imgs" / "a.png") is None


def test_curate_prints_the_overlays_note(tmp_path, capsys):
    out = segment_output(tmp_path)
    code, _, err = run(["curate", "frames", out / "overlays", "--out", tmp_path / "r.csv"], capsys)
    assert code == 0 and "note: the input looks like devolens overlays" in err


# 6. names whose accents are encoded otherwise (NFC typed, NFD on disk) ---------------------------------------------


@pytest.mark.parametrize("disk,typed", [("NFD", "NFC"), ("NFC", "NFD")])
def test_composed_twin(tmp_path, disk, typed):
    png(tmp_path / unicodedata.normalize(disk, "Übung") / unicodedata.normalize(disk, "Kern ä.png"))
    given = tmp_path / unicodedata.normalize(typed, "Übung") / unicodedata.normalize(typed, "Kern ä.png")
    assert not given.exists()
    twin = composed_twin(given)
    assert twin == tmp_path / unicodedata.normalize(disk, "Übung") / unicodedata.normalize(disk, "Kern ä.png")
    assert twin.is_file()
    assert composed_twin(tmp_path / "Übung" / "none.png") is None and composed_twin(tmp_path / "plain.png") is None


def test_missing_input_names_its_twin(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    png(tmp_path / unicodedata.normalize("NFD", "Embryo Übung.png"))
    typed = unicodedata.normalize("NFC", "Embryo Übung.png")
    with pytest.raises(DevolensError, match="encoded otherwise"):  # the library's frames
        iter_path_frames(typed)
    # segment checks its input itself; curate through iter_path_frames: the hint once either way
    for argv in (["segment", "nuclei", typed, "--out", "x"], ["curate", "frames", typed, "--out", "r.csv"]):
        code, _, err = run(argv, capsys)
        line = one_line(err)
        assert code == 2 and line.startswith(f"{typed}: no such file or folder; ")
        assert line.count("encoded otherwise") == 1 and "let the Tab key complete the name, or rename it" in line
