"""Session 35: ``devolens demo`` writes its folder as the other commands write theirs (refuses a folder holding what
it did not write, replaces its own earlier demo, takes the output lock, stages and commits, leaves nothing behind on
failure), checks its options before any work, has ``-o``, and records its command line in its report and records."""

import json
import os
import shutil
import sys

import pytest

from devolens.cli import demo, main
from devolens.errors import DevolensError

from _demo_run import small_demo  # noqa: F401  (fixture)


def _fake_demo(folder, *, record=True):
    """A folder holding an earlier demo's outputs (its record, or only its report as an older devolens wrote it)."""
    (folder / "render" / "frames").mkdir(parents=True)
    (folder / "render" / "render.json").write_text("{}")
    (folder / "segment" / "labels").mkdir(parents=True)
    (folder / "segment" / "segment.json").write_text("{}")
    (folder / "embryo.csv").write_text("old\n")
    (folder / "report.md").write_text(f"{demo.REPORT_TITLE}\n\nold\n")
    if record:
        (folder / "demo.json").write_text(json.dumps({"command": "devolens demo --out x"}))
    return folder


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_folder_holding_entries_of_the_demos_names_that_it_did_not_write_is_refused(tmp_path, capsys):
    """The audit's case: the user's render/ and segment/ were deleted without a word."""
    mine = tmp_path / "mine"
    (mine / "render").mkdir(parents=True)
    (mine / "segment").mkdir()
    (mine / "render" / "my_notes.txt").write_text("x")
    before = _listing(tmp_path)
    assert main(["demo", "--out", str(mine), "--cells", "20", "--frames", "6"]) == 2
    err = capsys.readouterr().err
    assert f"error: {mine}: folder holds no earlier demo (no demo.json) but render, segment" in err
    assert "choose a new or empty folder" in err
    assert _listing(tmp_path) == before  # nothing written, nothing removed, no lock or staging folder left
    assert (mine / "render" / "my_notes.txt").read_text() == "x"
    # a report.md of one's own is as much the user's
    other = tmp_path / "other"
    other.mkdir()
    (other / "report.md").write_text("# my report\n")
    with pytest.raises(DevolensError, match="holds no earlier demo .* but report.md"):
        demo.check_demo_folder(other)
    # beside unrelated files, in a new folder: fine
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "notes.txt").write_text("x")
    assert demo.check_demo_folder(tmp_path / "notes") == tmp_path / "notes"
    assert demo.check_demo_folder(tmp_path / "new") == tmp_path / "new"


@pytest.mark.parametrize("record", [True, False], ids=["demo.json", "older demo: report.md only"])
def test_an_earlier_demo_is_recognised_but_files_put_in_its_folders_are_not_replaced(tmp_path, record):
    old = _fake_demo(tmp_path / "old", record=record)
    assert demo.is_demo(old)
    assert demo.check_demo_folder(old) == old  # replaced by a new demo
    (old / "render" / "my_notes.txt").write_text("x")
    (old / "segment" / "mine.csv").write_text("x")
    with pytest.raises(DevolensError, match=r"holds an earlier demo, .* but also render/my_notes.txt, "
                                            r"segment/mine.csv, which the demo did not write"):
        demo.check_demo_folder(old)
    # another command's record is no demo's
    (old / "demo.json").write_text(json.dumps({"command": "devolens render --out x"}))
    (old / "report.md").write_text("# my report\n")
    assert not demo.is_demo(old)


def test_options_are_checked_before_anything_is_made(tmp_path, capsys):
    for args in (["--seed", "-1"], ["--frames", "5"], ["--frames", "4"]):
        out = tmp_path / "out"
        assert main(["demo", "--out", str(out), *args]) == 2, args
        assert "error: Invalid value for" in capsys.readouterr().err
        assert not out.exists(), args
    for kwargs, what in (({"seed": -1}, "seed"), ({"frames": 5}, "frames"), ({"cells": 3}, "cells"),
                         ({"size": (8, 8)}, "frame size")):
        with pytest.raises(DevolensError, match=what):
            demo.run_demo(tmp_path / "lib", **kwargs)
        assert not (tmp_path / "lib").exists()
    from devolens.predict.clock import MIN_FRAMES

    assert demo.MIN_FRAMES == MIN_FRAMES  # --frames' bound is the clock's (kept apart: no pandas at start-up)


def test_o_is_short_for_out(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["demo", "-o", str(target)]) == 2
    assert capsys.readouterr().err == f"error: {target}: output exists and is not a folder\n"


def test_a_second_run_writing_the_same_folder_is_refused(tmp_path, capsys):
    from devolens.io.atomic import HAS_LOCKS, StagedDir

    if not HAS_LOCKS:
        pytest.skip("no fcntl locks here")
    out = tmp_path / "out"
    held = StagedDir(out)  # another run writing it (a second flock in one process is refused as from another)
    try:
        assert main(["demo", "--out", str(out), "--cells", "20", "--frames", "6"]) == 2
        assert "another devolens run is writing here" in capsys.readouterr().err
    finally:
        held.abort()
    assert sorted(os.listdir(tmp_path)) == []


def _failing_render(*args, **kwargs):
    out = args[1]
    raise DevolensError("the render failed", path=out / "frames.csv")


def test_a_failed_demo_leaves_the_folder_as_it_was(tmp_path, monkeypatch, capsys):
    """A step failing after others wrote their outputs (embryo.csv here): nothing half-written is left, an earlier
    demo is kept whole, and the error names the output by --out, not by the hidden staging folder."""
    import devolens.render.dataset as dataset

    monkeypatch.setattr(dataset, "render_dataset", _failing_render)
    new = tmp_path / "new" / "demo"
    assert main(["demo", "--out", str(new), "--cells", "20", "--frames", "6"]) == 2
    assert capsys.readouterr().err.endswith(f"error: {new / 'render' / 'frames.csv'}: the render failed\n")
    assert sorted(os.listdir(tmp_path)) == []  # neither the folder nor its parent made for it, no staging left
    old = _fake_demo(tmp_path / "old")
    before = {p: p.read_bytes() for p in old.rglob("*") if p.is_file()}
    assert main(["demo", "--out", str(old), "--cells", "20", "--frames", "6"]) == 2
    assert {p: p.read_bytes() for p in old.rglob("*") if p.is_file()} == before
    assert sorted(os.listdir(tmp_path)) == ["old"]


def test_records_written_in_the_staging_folder_name_the_committed_outputs(tmp_path):
    staged, dest = tmp_path / ".out.partial-1-abcdefgh", tmp_path / "out"
    staged.mkdir()
    record = staged / "segment.json"
    record.write_text(json.dumps({"command": "devolens segment nuclei", "input": str(staged / "render" / "v.mp4"),
                                  "options": {"skip_flagged": str(staged / "curation.csv"), "other": [str(staged)]},
                                  "near": str(staged) + "x/y", "n": 3}))
    demo._as_moved(record, staged, dest, {"command": "devolens demo --out out", "demo_step": "devolens segment"})
    rewritten = json.loads(record.read_text())
    assert set(rewritten.pop("environment")) >= {"python", "numpy"} and rewritten.pop("cwd")  # (record_text's)
    assert rewritten == {
        "command": "devolens demo --out out", "input": str(dest / "render" / "v.mp4"),
        "options": {"skip_flagged": str(dest / "curation.csv"), "other": [str(dest)]},
        "near": str(staged) + "x/y", "n": 3, "demo_step": "devolens segment"}
    assert list(json.loads(record.read_text()))[0] == "command"  # still first


def test_the_figure_says_how_the_totals_were_predicted():
    import numpy as np
    import pandas as pd

    t = np.arange(1, 9)
    comp = pd.DataFrame({"time": t, "count": t, "total_pred": t + 0.5,
                         **{f"{L}_{s}": t for L in demo.LETTERS for s in ("true", "pred")}})
    truth = pd.DataFrame({"time": t, "total": t})
    labels = {line.get_label() for line in demo._population_figure(truth, comp, clock=False).axes[0].get_lines()}
    assert "predicted total (population model, per frame)" in labels
    labels = {line.get_label() for line in demo._population_figure(truth, comp).axes[0].get_lines()}
    assert "predicted total (population model, --clock)" in labels


@pytest.mark.slow
def test_demo_records_its_command_and_replaces_its_own_earlier_output(tmp_path, monkeypatch, capsys, small_demo):
    """Seed 11 at 20 cells and --frames 6 renders 7 time points, two of them black (flagged): 5 frames are left,
    too few for the developmental clock, so the populations are predicted frame by frame, with a note (before:
    the run failed after the segmentation, leaving curation.csv, render/ and segment/ without a report). It runs
    into an earlier demo's folder (seed 7, whose 7 frames leave 6, run with the clock: the shared small demo,
    copied, so that one demo run serves this test and test_s47_report): the earlier demo is replaced, other files
    kept, and a file of the user's nested in its segment/ is refused first."""
    out = tmp_path / "demo"
    shutil.copytree(small_demo, out)
    assert json.loads((out / "demo.json").read_text())["clock"] is True
    assert json.loads((out / "populations.json").read_text())["options"]["clock"] is True
    argv = ["demo", "-o", str(out), "--cells", "20", "--frames", "6", "--seed", "11"]
    monkeypatch.setattr(sys, "argv", ["devolens", *argv])
    command = "devolens " + " ".join(argv)

    edited = out / "segment" / "labels" / "my_edits.tif"  # a file of the user's, nested in the demo's segment/
    edited.write_bytes(b"mine")
    capsys.readouterr()
    assert main(argv) == 2 and "segment/labels/my_edits.tif" in capsys.readouterr().err
    assert edited.read_bytes() == b"mine"
    edited.unlink()
    (out / "notes.txt").write_text("mine")
    first_embryo = (out / "embryo.csv").read_bytes()

    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "note: only 5 frames of the video are left after the flagged ones" in err
    record = json.loads((out / "demo.json").read_text())
    assert record["command"] == command and record["clock"] is False and record["frames_left"] == 5
    assert record["options"] == {"seed": 11, "cells": 20, "frames": 6, "size": [512, 752]} and record["devolens"]
    report = (out / "report.md").read_text()
    assert report.startswith(f"{demo.REPORT_TITLE}\n\nMade by `{command}` (devolens {record['devolens']})")
    assert "This timelapse was run without `--clock`: only 5 of its video frames were left" in report
    subs = {"embryo.meta.json": "devolens simulate embryo", "render/render.json": "devolens render",
            "segment/segment.json": "devolens segment nuclei", "populations.json": "devolens population"}
    for name, step in subs.items():
        text = (out / name).read_text()
        sub = json.loads(text)
        assert (sub["command"], sub["demo_step"]) == (command, step), name
        assert ".partial-" not in text, name  # paths name the outputs where they are, not the staging folder
    assert json.loads((out / "embryo.meta.json").read_text())["devolens"] == record["devolens"]
    assert json.loads((out / "populations.json").read_text())["input"] == str(out.resolve() / "render" / "video.mp4")
    assert json.loads((out / "populations.json").read_text())["options"]["clock"] is False
    assert sorted(os.listdir(tmp_path)) == ["demo"]  # no staging folder, no lock file

    assert {"render/render.json", "render/video.mp4", "segment/segment.json"} <= set(record["files"])
    assert any(f.startswith("segment/labels/") for f in record["files"])
    assert (out / "embryo.csv").read_bytes() != first_embryo
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(out)) == sorted([*demo.DEMO_OUTPUTS, "notes.txt"])


def test_a_file_nested_in_an_earlier_demos_folders_that_it_did_not_write_is_refused(tmp_path):
    """The demo's record lists the files it wrote under render/ and segment/: one it did not write, however deep
    (the user's edited label image in segment/labels/), is named, not replaced with the folder."""
    old = _fake_demo(tmp_path / "old")
    (old / "segment" / "labels" / "t000_labels.tif").write_bytes(b"demo")
    listed = ["render/render.json", "segment/labels/t000_labels.tif", "segment/segment.json"]
    (old / "demo.json").write_text(json.dumps({"command": "devolens demo --out x", "files": listed}))
    assert demo.check_demo_folder(old) == old
    (old / "segment" / "labels" / "my_edits.tif").write_bytes(b"mine")
    with pytest.raises(DevolensError, match=r"segment/labels/my_edits\.tif, which the demo did not write"):
        demo.check_demo_folder(old)
