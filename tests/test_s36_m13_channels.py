"""Picking a channel: the missing-``--channel`` error lists the channels the file names, the note on a run that
found nothing names the option that picks another channel of this input (``--channel`` for a stack of several,
``--color`` for colour images, none for grey ones), and a ``--color`` that picked nothing (a grey input) is said."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.cli import predict as cli_predict
from devolens.errors import DevolensError


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _ome(path, names):
    data = np.random.default_rng(0).integers(0, 4000, (3, len(names), 32, 32), dtype=np.uint16)
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "TCYX", "Channel": {"Name": names}})
    return path


# ------------------------------------------------------------------------------------------------ the error
def test_the_missing_channel_error_lists_the_ome_channel_names(tmp_path, capsys):
    path = _ome(tmp_path / "s.ome.tif", ["noise", "H2B-GFP"])
    out = tmp_path / "r.csv"
    assert main(["curate", "frames", str(path), "--out", str(out)]) == 2
    assert _err(capsys).endswith("this stack has 2 channels (axes TCYX, shape (3, 2, 32, 32)): choose one with "
                                 "--channel 0..1 (0: noise, 1: H2B-GFP)")
    assert main(["curate", "frames", str(path), "--out", str(out), "--channel", "2"]) == 2
    assert _err(capsys).endswith("--channel 2 is out of range: this stack has 2 channel(s) (0..1; 0: noise, "
                                 "1: H2B-GFP)")
    assert not out.exists()


def test_the_library_error_lists_them_too_and_imagej_labels(tmp_path):
    from devolens.io.stacks import open_stack

    path = tmp_path / "ij.tif"
    data = np.random.default_rng(1).integers(0, 4000, (3, 2, 32, 32), dtype=np.uint16)
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX", "Labels": ["DAPI", "PH-mCherry"] * 3})
    with pytest.raises(DevolensError) as exc:
        open_stack(path)
    assert str(exc.value).endswith("choose one with channel=0..1 (0: DAPI, 1: PH-mCherry)")


def test_a_channel_without_a_name_is_said_so(tmp_path, capsys):
    path = tmp_path / "s.ome.tif"
    data = np.random.default_rng(0).integers(0, 4000, (3, 2, 32, 32), dtype=np.uint16)
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "TCYX", "Channel": {"Name": ["H2B-GFP", ""]}})
    assert main(["curate", "frames", str(path), "--out", str(tmp_path / "r.csv")]) == 2
    assert _err(capsys).endswith("--channel 0..1 (0: H2B-GFP, 1: (no name))")


# ------------------------------------------------------------------------------------------------ the notes
def _summary(**extra) -> dict:
    return {"frames": 1, "objects": 0, "skipped": 0, "curation": None, "precision": "int8", "scale": 0.5,
            "estimate": None, "estimates": None, "ended_early": None, "suggest_diameter": None, **extra}


@pytest.mark.parametrize("extra, says, not_said", [
    # a stack of 2 channels, the wrong one read: --channel (the --color the note named did nothing)
    ({"stack": {"channels": 2, "read": "..."}, "colour_input": False},
     "another of the stack's 2 channels (--channel 0..1; --color is for colour images),", "(--color)"),
    ({"colour_input": True}, "an empty or saturated image, another channel (--color), or", "--channel"),
    # one grey channel: no other channel to pick
    ({"colour_input": False}, "an empty or saturated image, or another magnification (--diameter)?", "channel"),
])
def test_nothing_found_names_the_option_of_this_input(tmp_path, monkeypatch, capsys, extra, says, not_said):
    img = tmp_path / "i.tif"
    tifffile.imwrite(img, np.zeros((32, 32), np.uint16))
    monkeypatch.setattr(cli_predict, "run_segmentation", lambda *a, **k: _summary(**extra))
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o")]) == 0
    note = next(line for line in capsys.readouterr().err.splitlines() if "no nuclei found" in line)
    assert says in note and not_said not in note


def _grey_stack(path):
    rng = np.random.default_rng(4)
    tifffile.imwrite(path, rng.integers(0, 3000, (3, 32, 48), dtype=np.uint16), imagej=True,
                     metadata={"axes": "TYX"})
    return path


COLOR_NOTE = ("note: --color red had no effect: the input's frames are single-channel (grey), and --color picks a "
              "channel of colour images and videos")


def test_color_on_a_grey_stack_is_noted_and_recorded(tiny_zoo, tmp_path, capsys):  # noqa: F811
    path = _grey_stack(tmp_path / "g.tif")
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(path), "--color", "red", "--out", str(out), "--no-overlay",
                 "--diameter", "none"]) == 0
    assert COLOR_NOTE in _err(capsys)
    record = json.loads((out / "segment.json").read_text())
    assert record["options"]["color"] == "red" and COLOR_NOTE.removeprefix("note: ") in " ".join(record["notes"])
    # without --color: no such note
    assert main(["segment", "nuclei", str(path), "--out", str(tmp_path / "s2"), "--no-overlay",
                 "--diameter", "none"]) == 0
    assert "--color" not in _err(capsys)


def test_color_on_a_colour_image_is_not_noted(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from _cli_helpers import blob_frame
    from devolens.io.images import write_png

    png = tmp_path / "c.png"
    write_png(blob_frame(48, 64), png)
    assert main(["segment", "nuclei", str(png), "--color", "red", "--out", str(tmp_path / "seg"),
                 "--diameter", "none"]) == 0
    assert "had no effect" not in _err(capsys)


def test_color_with_a_stacks_channel_names_channel(tiny_zoo, tmp_path, capsys):  # noqa: F811
    path = _ome(tmp_path / "s.ome.tif", ["noise", "H2B-GFP"])
    assert main(["segment", "nuclei", str(path), "--channel", "1", "--color", "green", "--out",
                 str(tmp_path / "seg"), "--no-overlay", "--diameter", "none"]) == 0
    assert ("note: --color green had no effect: the input's frames are single-channel (grey), and --color picks a "
            "channel of colour images and videos (a TIFF stack's channels are picked with --channel)") in _err(capsys)
