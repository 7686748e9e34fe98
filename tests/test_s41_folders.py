"""Input folders as a user's walkthrough left them (forty-first session, m10): the plot ``population`` writes into
its input folder (``population movie/ --out movie/pops.csv``: ``movie/pops_plot.png``) is no frame of the next run,
nor any image a devolens record in the folder names as its output (a rerun gives the same CSV, with a note);
``population`` refuses an ``--out`` (its CSV, record or plot) that is its ``--skip-flagged`` report; a link of a
folder whose target is not there (a share not mounted) is a file that cannot be read, its target named (``curate
frames`` flags it unreadable, ``segment`` and ``population`` refuse it), not a frame gone without a word."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from curate_synth import synth_sequence
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io.frames import iter_path_frames, recorded_outputs
from devolens.io.images import write_png


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _folder(path: Path, n: int = 4) -> Path:
    path.mkdir(parents=True)
    for t, frame in enumerate(synth_sequence(n, seed=3), start=1):
        write_png(frame, path / f"t{t:03d}.png")
    return path


def _names(path: Path) -> list[str]:
    return iter_path_frames(path, count=False)[1]


# ---------------------------------------------------------------------------- 1. devolens's own outputs
def test_population_plot_in_its_input_folder_is_no_frame_of_the_next_run(tiny_zoo, tmp_path, capsys):
    """Run 1 wrote movie/pops_plot.png; run 2 read it as a frame ``pops_plot`` (sorted first), and with --clock
    every count changed."""
    src = _folder(tmp_path / "movie", 6)
    out = src / "pops.csv"
    assert main(["population", str(src), "--clock", "--out", str(out)]) == 0
    assert (src / "pops_plot.png").is_file()  # (the plot renamed as it lands in the input folder)
    first = out.read_text()
    capsys.readouterr()
    assert main(["population", str(src), "--clock", "--out", str(out)]) == 0
    assert out.read_text() == first  # the same command twice: the same CSV
    assert list(pd.read_csv(out)["frame"]) == [f"t{t:03d}" for t in range(1, 7)]
    err = _err(capsys)
    assert "1 devolens output (pops_plot.png)" in err and "(pops.json)" in err
    assert _names(src) == [f"t{t:03d}.png" for t in range(1, 7)]  # curate and segment list it so too
    assert json.loads((src / "pops.json").read_text())["plot"] == str((src / "pops_plot.png").absolute())


def _record(path: Path, **entries) -> None:
    path.write_text(json.dumps({"command": "devolens lineage populations t.csv --out x", **entries}, indent=1))


def test_images_a_devolens_record_names_are_left_out_and_nothing_else(tmp_path):
    """The record's plot (written beside its CSV, or into the folder by --plot), also in a folder moved with its
    record (absolute paths of the old place); not an image a JSON of no devolens record names, nor one of another
    folder, nor a record's plot that is its CSV's elsewhere."""
    src = _folder(tmp_path / "movie", 3)
    old = tmp_path / "elsewhere"
    write_png(synth_sequence(1, seed=5)[0], src / "curve.png")
    (src / "pops.csv").write_text("frame,total\n")
    _record(src / "pops.json", output=str(old / "pops.csv"), plot=str(old / "curve.png"))  # moved with its folder
    assert recorded_outputs(src) == {"curve.png": "pops.json"}
    assert _names(src) == ["t001.png", "t002.png", "t003.png"]
    # another folder's plot of the same name: this folder's own image
    _record(src / "pops.json", output=str(old / "pops.csv"), plot=str(tmp_path / "other" / "curve.png"))
    assert recorded_outputs(src) == {} and "curve.png" in _names(src)
    # into this folder by a path to it, the CSV elsewhere
    _record(src / "pops.json", output=str(old / "pops.csv"), plot=str(src / "curve.png"))
    assert "curve.png" not in _names(src)
    # a JSON of the same name that is no devolens record (a microscope's metadata): nothing left out
    (src / "pops.json").write_text(json.dumps({"plot": str(src / "curve.png"), "command": "acquire"}))
    assert recorded_outputs(src) == {} and "curve.png" in _names(src)


def test_a_demo_folder_given_as_input_reads_none_of_its_figures(tmp_path):
    """`devolens demo`'s folder holds overlay.png and populations.png beside demo.json: given to segment, its two
    figures were its frames; now it has none, and the error says why and which subfolders it holds."""
    out = tmp_path / "demo-output"
    (out / "render" / "frames").mkdir(parents=True)
    for name in ("overlay.png", "populations.png"):
        write_png(synth_sequence(1)[0], out / name)
    (out / "demo.json").write_text(json.dumps({"command": "devolens demo --out demo-output", "files": []}, indent=1))
    with pytest.raises(DevolensError) as info:
        iter_path_frames(out)
    text = " ".join(str(info.value).split())
    assert "2 devolens outputs (overlay.png, populations.png)" in text and "(demo.json)" in text
    assert "subfolder: render" in text


# ---------------------------------------------------------------------------- 2. --skip-flagged REPORT kept
@pytest.mark.parametrize("out_name, report_name, what", [
    ("rep.csv", "rep.csv", "--out"),
    ("rp.csv", "rp.json", "the record written beside the CSV (rp.json)"),
    ("rp.csv", "rp.png", "the plot written beside the CSV"),
])
def test_population_refuses_to_overwrite_its_skip_flagged_report(tiny_zoo, tmp_path, capsys, out_name, report_name,
                                                                 what):
    """``population mv --out rep.csv --skip-flagged rep.csv`` replaced the report (edited by hand maybe) with the
    counts, rc 0; its record and plot beside the CSV likewise."""
    src = _folder(tmp_path / "mv", 3)
    report = tmp_path / report_name
    assert main(["curate", "frames", str(src), "--out", str(tmp_path / "rep.csv")]) == 0
    if report_name != "rep.csv":
        os.replace(tmp_path / "rep.csv", report)
    kept = report.read_bytes()
    capsys.readouterr()
    assert main(["population", str(src), "--out", str(tmp_path / out_name), "--skip-flagged", str(report)]) == 2
    err = _err(capsys)
    assert f"the curation report this run reads (--skip-flagged), and {what} would replace it" in err, err
    assert report.read_bytes() == kept and not (tmp_path / "rp.csv").exists()


# ---------------------------------------------------------------------------- 3. broken links
@pytest.fixture
def linked(tmp_path):
    """``dl/``: links to three frames and one to a file on a share not mounted."""
    frames = _folder(tmp_path / "frames", 3)
    dl = tmp_path / "dl"
    dl.mkdir()
    for p in sorted(frames.iterdir()):
        (dl / p.name).symlink_to(p)
    gone = tmp_path / "unmounted" / "t004.png"
    (dl / "t004.png").symlink_to(gone)
    return dl, gone


def test_curate_flags_a_broken_link_of_a_folder_unreadable_naming_its_target(linked, tmp_path, capsys):
    """'3 frames, 0 flagged': the link to a file not there was left out without a word."""
    dl, gone = linked
    out = tmp_path / "dl.csv"
    assert main(["curate", "frames", str(dl), "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df["file"]) == ["t001.png", "t002.png", "t003.png", "t004.png"]
    assert list(df["flag"].fillna("")) == ["", "", "", "unreadable"]
    err = _err(capsys)
    assert "4 frames, 1 flagged (unreadable 1)" in err and f"t004.png: broken link: its target {gone}" in err


def test_segment_and_population_refuse_a_broken_link_naming_it_and_its_target(linked, tiny_zoo, tmp_path, capsys):
    """As a 0-byte file is: refused, naming the link and its target, unless --skip-flagged leaves it out."""
    dl, gone = linked
    assert main(["segment", "nuclei", str(dl), "--out", str(tmp_path / "dls")]) == 2
    err = _err(capsys)
    assert f"{dl / 't004.png'}: broken link: its target {gone} is not there" in err, err
    assert main(["population", str(dl), "--out", str(tmp_path / "p.csv")]) == 2
    assert f"{dl / 't004.png'}: broken link: its target {gone}" in _err(capsys)
    assert main(["population", str(dl), "--out", str(tmp_path / "p.csv"), "--skip-flagged", "auto"]) == 0
    assert list(pd.read_csv(tmp_path / "p.csv")["frame"]) == ["t001", "t002", "t003"]
    assert "t004.png: broken link" in _err(capsys)  # the note of the files left out


def test_a_folder_of_broken_links_or_one_given_says_so(tmp_path, capsys):
    """A folder of only broken links said 'no image files in this folder'; one link given, 'no such file'."""
    dl = tmp_path / "dl"
    dl.mkdir()
    for name in ("a1.png", "a2.png"):
        (dl / name).symlink_to(tmp_path / "unmounted" / name)
    assert main(["curate", "frames", str(dl), "--out", str(tmp_path / "r.csv")]) == 2
    err = _err(capsys)
    assert "no image files" not in err and "a1.png: broken link: its target" in err, err
    assert main(["curate", "frames", str(dl / "a1.png"), "--out", str(tmp_path / "r.csv")]) == 2
    err = _err(capsys)
    assert f"broken link: its target {tmp_path / 'unmounted' / 'a1.png'}" in err and "no such file" not in err


def test_the_demos_figures_known_to_the_listing_are_the_demos_own():
    from devolens.cli.demo import DEMO_OUTPUTS
    from devolens.io.frames import _DEMO_IMAGES

    assert set(_DEMO_IMAGES) == {name for name in DEMO_OUTPUTS if name.endswith(".png")}


def test_the_curate_advice_for_another_inputs_report_names_this_input_and_a_new_report(tmp_path, capsys, tiny_zoo):
    from devolens.cli import main

    a, b = tmp_path / "a", tmp_path / "b"
    for folder, seed in ((a, 1), (b, 2)):
        folder.mkdir()
        for i in range(3):
            from _cli_helpers import blob_frame
            from devolens.io.images import write_png

            write_png(blob_frame(seed=seed * 10 + i), folder / f"t{i:03d}.png")
    report = tmp_path / "report.csv"
    assert main(["curate", "frames", str(a), "--out", str(report)]) == 0
    capsys.readouterr()
    assert main(["segment", "nuclei", str(b), "--out", str(tmp_path / "o"), "--skip-flagged", str(report)]) == 2
    err = capsys.readouterr().err
    # the input named (not INPUT), and a report of its own (not the name of the other input's, still valid, report)
    assert f"`devolens curate frames {b} --out {tmp_path / 'b_curation.csv'}`" in err, err
