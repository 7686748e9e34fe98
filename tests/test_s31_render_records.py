"""Renders whose microscope can be chosen (``optics=``, ``--optics``) and whose render.json says what each frame was
rendered with: per-frame optics, pose and membrane slice with ``vary="frame"``, the pose scale of the default pose,
the unknown pixel size; ``min_visible`` and ``drop_slivers`` for the labels of partly hidden nuclei."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from _render_helpers import make_table
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io.images import read_image
from devolens.io.tables import write_tidy
from devolens.render.dataset import render_dataset
from devolens.render.geometry import Pose, default_pose, embryo_geometry
from devolens.render.membranes import MembraneParams, render_membrane_frame
from devolens.render.nuclei import render_nuclei_frame
from devolens.render.optics import OpticsParams

SIZE = (48, 72)


@pytest.fixture(scope="module")
def table():
    return make_table(n_times=6, n_cells=20, seed=5)


def _meta(folder):
    return json.loads((folder / "render.json").read_text())


def _entry(folder):
    (entry,) = _meta(folder)["embryos"].values()
    return entry


def _same_files(a, b, names):
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


# ---------------------------------------------------------------- optics chosen


@pytest.mark.parametrize("vary", ["embryo", "frame"])
def test_fixing_some_optics_fields_changes_only_those(tmp_path, table, vary):
    kw = dict(size=SIZE, times=[2, 4], seed=7, vary=vary, pose="random")
    render_dataset(table, tmp_path / "drawn", **kw)
    render_dataset(table, tmp_path / "fixed", optics={"psf_xy": 4.5, "photons": 20}, **kw)
    drawn, fixed = _entry(tmp_path / "drawn"), _entry(tmp_path / "fixed")
    assert _meta(tmp_path / "fixed")["optics_fixed"] == {"psf_xy": 4.5, "photons": 20}
    assert "optics_fixed" not in _meta(tmp_path / "drawn")
    pairs = [(drawn, fixed)] if vary == "embryo" else list(zip(drawn["frames"], fixed["frames"]))
    for d, f in pairs:
        assert f["optics"]["psf_xy"] == 4.5 and f["optics"]["photons"] == 20
        others = [k for k in d["optics"] if k not in ("psf_xy", "photons")]
        assert {k: f["optics"][k] for k in others} == {k: d["optics"][k] for k in others}
        assert f["pose"] == d["pose"]  # the other draws are untouched
    assert drawn["seed"] == fixed["seed"]
    assert [f["seed"] for f in drawn["frames"]] == [f["seed"] for f in fixed["frames"]]


def test_a_full_optics_params_fixes_every_frame(tmp_path, table):
    chosen = OpticsParams(psf_xy=3.0, brightness=0.4, jpeg_quality=0)
    render_dataset(table, tmp_path, size=SIZE, times=[1, 3], vary="frame", optics=chosen)
    meta = _meta(tmp_path)
    assert meta["optics_fixed"] == chosen.as_dict()
    assert all(f["optics"] == chosen.as_dict() for f in _entry(tmp_path)["frames"])


def test_membrane_params_fixed_too(tmp_path, table):
    render_dataset(table, tmp_path, kind="membrane", size=SIZE, times=[2], optics={"thickness": 3, "alpha": 1.5})
    m = _entry(tmp_path)["membrane"]
    assert m["thickness"] == 3 and m["alpha"] == 1.5


@pytest.mark.parametrize("optics, kind, words", [
    ({"psf_xy": 2, "bogus": 1, "photon": 3}, "nuclei",
     "unknown OpticsParams field(s) for kind 'nuclei': bogus, photon"),
    ({"alpha": 2}, "nuclei", "unknown OpticsParams field(s)"),
    ({"psf_xy": 2}, "membrane", "unknown MembraneParams field(s)"),
    ({"psf_xy": -1}, "nuclei", "OpticsParams.psf_xy must be"),
    ({}, "nuclei", "empty"),
    (OpticsParams(), "membrane", "must be a MembraneParams"),
    ("optics.json", "nuclei", "got str"),
])
def test_bad_optics_refused_before_any_output(tmp_path, table, optics, kind, words):
    out = tmp_path / "r"
    with pytest.raises(DevolensError) as exc:
        render_dataset(table, out, kind=kind, size=SIZE, times=[1], optics=optics)
    assert words in str(exc.value) and "\n" not in str(exc.value)
    assert not out.exists()


def test_cli_optics_file_and_earlier_render_json(tmp_path, table):
    src = tmp_path / "t.csv"
    write_tidy(table, src)
    base = ["render", str(src), "--size", *map(str, SIZE), "--times", "2-3", "--seed", "4"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    # the optics of an earlier render: the same frames again
    again = tmp_path / "again"
    assert main([*base, "--out", str(again), "--optics", str(tmp_path / "a" / "render.json")]) == 0
    names = ["frames/t002.png", "frames/t003.png", "labels/t003_labels.tif", "frames.csv", "objects.csv"]
    assert _same_files(tmp_path / "a", again, names)
    meta = _meta(again)
    assert meta["options"]["optics"] == str((tmp_path / "a" / "render.json").absolute())
    assert meta["inputs"][-1]["path"] == meta["options"]["optics"]
    # a file of some fields
    part = tmp_path / "part.json"
    part.write_text(json.dumps({"brightness": 0.3, "jpeg_quality": 0}))
    assert main([*base, "--out", str(tmp_path / "p"), "--optics", str(part)]) == 0
    assert _entry(tmp_path / "p")["optics"]["brightness"] == 0.3
    assert _entry(tmp_path / "p")["optics"]["jpeg_quality"] == 0


@pytest.mark.parametrize("content, extra, words", [
    ('{"psf_xy": 2, "wrong": 1}', [], "--optics: unknown OpticsParams field(s) for kind 'nuclei': wrong"),
    ('{"psf_xy": "x"}', [], "OpticsParams.psf_xy must be"),
    ("[1, 2]", [], "expected a JSON object"),
    ("{nope", [], "not valid JSON"),
    ('{"alpha": 2}', [], "unknown OpticsParams field(s)"),
    ('{"psf_xy": 2}', ["--kind", "membrane"], "unknown MembraneParams field(s)"),
    ('{"kind": "nuclei", "vary": "frame", "embryos": {"e": {"optics": {"psf_xy": 2}}}}', [], "--vary frame"),
    ('{"kind": "nuclei", "vary": "embryo", "embryos": {"e": {"optics": {"psf_xy": 2}}}}', ["--kind", "membrane"],
     "no 'membrane' block (a nuclei render)"),
    ('{"kind": "nuclei", "vary": "embryo", '
     '"embryos": {"e": {"optics": {"psf_xy": 2}}, "f": {"optics": {"psf_xy": 3}}}}',
     [], "2 embryos with different optics"),
])
def test_cli_bad_optics_file_one_line_no_output(tmp_path, table, capsys, content, extra, words):
    src = tmp_path / "t.csv"
    write_tidy(table, src)
    bad = tmp_path / "o.json"
    bad.write_text(content)
    out = tmp_path / "r"
    assert main(["render", str(src), "--out", str(out), "--size", *map(str, SIZE), "--times", "1", *extra,
                 "--optics", str(bad)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and str(bad) in err
    assert not out.exists()


def test_help_says_optics_are_drawn_at_random(capsys):
    assert main(["render", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "drawn at random" in text and "--optics" in text and "--size zooms in" in text


# ---------------------------------------------------------------- what each frame used


def test_vary_frame_records_what_each_frame_used_and_reproduces_it(tmp_path, table):
    h, w = SIZE
    render_dataset(table, tmp_path, size=SIZE, times=[2, 3, 5], seed=3, vary="frame", pose="random")
    entry = _entry(tmp_path)
    # no embryo-level optics or pose that no frame used
    assert entry["optics"] is None and entry["pose"] is None
    geom = embryo_geometry(table)
    optics = [f["optics"] for f in entry["frames"]]
    assert len({json.dumps(o, sort_keys=True) for o in optics}) == 3  # each frame its own
    for rec in entry["frames"]:
        fr = render_nuclei_frame(table, rec["time"], size=(h, w), seed=rec["seed"], rgb=True, geometry=geom,
                                 optics=OpticsParams(**rec["optics"]), pose=Pose(**rec["pose"]),
                                 reporter_key=entry["seed"])
        stem = f"t{rec['time']:03d}"
        assert rec["file"] == f"frames/{stem}.png"
        assert np.array_equal(fr.image, read_image(tmp_path / rec["file"]))
        assert np.array_equal(fr.labels, read_image(tmp_path / "labels" / f"{stem}_labels.tif"))


def test_membrane_vary_frame_records_slice_params_and_pose(tmp_path, table):
    render_dataset(table, tmp_path, kind="membrane", size=SIZE, times=[1, 4], seed=2, vary="frame", pose="random")
    entry = _entry(tmp_path)
    assert entry["membrane"] is None and entry["pose"] is None
    zs = [f["z"] for f in entry["frames"]]
    assert len(set(zs)) == 2  # each frame its own slice
    for rec in entry["frames"]:
        fr = render_membrane_frame(table, rec["time"], z=rec["z"], size=SIZE, seed=rec["seed"],
                                   params=MembraneParams(**rec["membrane"]), pose=Pose(**rec["pose"]))
        stem = f"t{rec['time']:03d}"
        assert np.array_equal(fr.image, read_image(tmp_path / rec["file"]))
        assert np.array_equal(fr.labels, read_image(tmp_path / "labels" / f"{stem}_labels.tif"))
        assert np.array_equal(fr.membrane * 255, read_image(tmp_path / "membranes" / f"{stem}_membrane.png"))


def test_membrane_slice_recorded_per_frame(tmp_path, table):
    render_dataset(table, tmp_path, kind="membrane", size=SIZE, times=[2, 3])
    geom = embryo_geometry(table)
    frames = _entry(tmp_path)["frames"]
    assert [f["z"] for f in frames] == [geom.cz / geom.zscale] * 2  # the middle plane, in table planes
    assert list(pd.read_csv(tmp_path / "frames.csv").columns)[-1] == "artifact"  # frames.csv as it was


def test_duplicate_and_dropped_frames_records(tmp_path, table):
    csv = render_dataset(table, tmp_path, size=SIZE, seed=1, artifacts=1.0, artifact_kinds=["duplicate", "dropped"],
                         vary="frame")
    frames = _entry(tmp_path)["frames"]
    assert [f["time"] for f in frames] == list(csv["time"]) and [f["file"] for f in frames] == list(csv["file"])
    shown = None
    for rec, art in zip(frames, csv["artifact"]):
        if art == "dropped":
            assert set(rec) == {"time", "file"} and rec["file"] == ""
        elif shown is None:  # a duplicate with nothing before it: rendered as it is
            shown = rec
        else:  # the image of the frame it repeats, and that frame's record
            assert rec["repeats"] == shown["time"] and rec["optics"] == shown["optics"]
            assert read_image(tmp_path / rec["file"]).tobytes() == read_image(tmp_path / shown["file"]).tobytes()
    assert any("repeats" in f for f in frames)


# ---------------------------------------------------------------- scale and pixel size


def test_default_pose_and_its_scale_recorded(tmp_path, table):
    geom = embryo_geometry(table)
    scales = []
    for size in (SIZE, (96, 144)):
        out = tmp_path / f"s{size[0]}"
        render_dataset(table, out, size=size, times=[1])
        meta = _meta(out)
        pose = _entry(out)["pose"]
        assert pose == json.loads(json.dumps(asdict(default_pose(geom, size))))
        assert meta["pixel_size"]["um_per_frame_pixel"] is None and "unknown" in meta["pixel_size"]["why"]
        scales.append(pose["scale"])
    assert scales[1] == pytest.approx(2 * scales[0])  # --size zooms: twice the frame, twice the scale
    assert read_image(tmp_path / "s48" / "labels" / "t001_labels.tif").dtype == np.uint16


# ---------------------------------------------------------------- partly hidden nuclei


def _pieces(labels):
    """Labels in more than one 8-connected piece."""
    split = 0
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is not None and ndimage.label(labels[sl] == i, np.ones((3, 3)))[1] > 1:
            split += 1
    return split


def test_min_visible_and_drop_slivers(tmp_path):
    crowded = make_table(n_times=2, n_cells=90, seed=4)
    kw = dict(size=(128, 192), times=[1], seed=2)
    render_dataset(crowded, tmp_path / "d", **kw)
    render_dataset(crowded, tmp_path / "v", min_visible=0.3, **kw)
    render_dataset(crowded, tmp_path / "s", drop_slivers=True, **kw)
    lab = {k: read_image(tmp_path / k / "labels" / "t001_labels.tif") for k in "dvs"}
    obj = {k: pd.read_csv(tmp_path / k / "objects.csv") for k in "dvs"}
    assert _pieces(lab["d"]) > 0  # the default keeps the slivers
    assert _pieces(lab["s"]) == 0 and lab["s"].max() == lab["d"].max()
    assert (obj["s"]["area"].to_numpy() == np.bincount(lab["s"].ravel())[1:]).all()
    assert (obj["d"]["visible"] < 0.3).any() and (obj["v"]["visible"] >= 0.3).all()
    assert len(obj["v"]) == int((obj["d"]["visible"] >= 0.3).sum())
    assert _same_files(tmp_path / "d", tmp_path / "s", ["frames/t001.png"])  # the image is the same
    meta = _meta(tmp_path / "v")
    assert meta["min_visible"] == 0.3 and meta["drop_slivers"] is False
    with pytest.raises(DevolensError, match="nuclei"):
        render_dataset(crowded, tmp_path / "m", kind="membrane", min_visible=0.3, **kw)
    with pytest.raises(DevolensError, match=r"\[0, 1\]"):
        render_dataset(crowded, tmp_path / "n", min_visible=float("nan"), **kw)
