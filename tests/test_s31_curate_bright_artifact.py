"""The renderer's ``bright`` frame artifact (a lamp flickering up, the nuclei saturated), drawn only when a render asks
for it: renders of the default kinds draw exactly what they drew before it existed; the curator flags the bright
frames a render records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curate_synth import synth_sequence
from devolens.errors import DevolensError
from devolens.render.artifacts import (
    ALL_KINDS,
    ARTIFACT_KINDS,
    OPTIONAL_KINDS,
    apply_frame_artifact,
    plan_artifacts,
)

# plans and a render's artifact column drawn by the renderer before the bright kind existed (the same seeds must keep
# drawing them)
_PLAN_7 = ['', '', '', 'black', '', 'dark', '', '', 'duplicate', 'dark', 'dropped', '', '', '', '', '', '', 'red_line',
           'dropped', 'red_patch', 'black', 'red_patch', '', '', '', 'red_line', 'dark', 'dropped', 'red_patch',
           'red_line', '', 'black', 'dropped', '', '', '', '', 'dropped', '', '', '', 'red_patch', 'red_patch',
           'red_patch', 'dark', '', 'red_patch', '', '', '', '', 'dropped', 'dark', 'dark', 'red_line', 'dropped', '',
           'red_line', '', 'dropped']
_GREY_8 = ['black', 'dropped', '', '', 'duplicate', 'dark', 'duplicate', 'dark', 'black', 'black', '', 'black', '', '',
           '', '', 'dark', 'dropped', 'black', 'dark', 'dark', '', 'black', 'duplicate', 'dropped', 'black', 'dropped',
           '', '', 'dark', '', '', '', 'black', '', '', 'dark', 'dropped', 'black', '']
_RENDER_21 = ['', 'red_line', '', '', '', 'black', 'black', '', 'dropped', '', 'duplicate', '', 'red_patch', '', '',
              '', 'red_line', 'duplicate', '', 'black', 'dropped', 'dark', '', 'dropped']


def test_a_bright_frame_is_brighter_and_saturated():
    frame = synth_sequence(3, seed=0)[1]
    labels = np.arange(frame.shape[0] * frame.shape[1], dtype=np.uint16).reshape(frame.shape[:2])
    img, lab, info = apply_frame_artifact(frame, labels, "bright", np.random.default_rng(3))
    assert 2.0 <= info["factor"] <= 4.0
    assert img.dtype == np.uint8 and img.shape == frame.shape
    expected = np.clip(np.floor(frame.astype(np.float32) * np.float32(info["factor"])), 0, 255).astype(np.uint8)
    assert np.array_equal(img, expected)
    assert (img[..., 1] == 255).sum() > 0 and (frame[..., 1] == 255).sum() == 0  # the nuclei saturate
    assert np.array_equal(lab, labels) and lab is not labels  # the nuclei are all still there
    assert "bright" in OPTIONAL_KINDS and "bright" not in ARTIFACT_KINDS and "bright" in ALL_KINDS


def test_default_plans_draw_what_they_drew():
    assert plan_artifacts(60, 0.5, np.random.default_rng(7)) == _PLAN_7
    assert plan_artifacts(60, 0.5, np.random.default_rng(7), kinds=ARTIFACT_KINDS) == _PLAN_7
    assert plan_artifacts(40, 0.5, np.random.default_rng(8), rgb=False) == _GREY_8


def test_a_plan_draws_bright_frames_only_when_asked():
    plan = plan_artifacts(500, 0.5, np.random.default_rng(0), kinds=ALL_KINDS)
    assert set(plan) == set(ALL_KINDS) | {""}
    # the order the kinds are given in does not change the plan
    assert plan_artifacts(500, 0.5, np.random.default_rng(0), kinds=list(ALL_KINDS)[::-1]) == plan
    only = plan_artifacts(50, 0.5, np.random.default_rng(1), kinds=["bright"])
    assert set(only) == {"", "bright"} and "bright" in only
    grey = plan_artifacts(300, 0.5, np.random.default_rng(0), rgb=False, kinds=ALL_KINDS)
    assert "bright" in grey and not {"red_line", "red_patch"} & set(grey)
    # a duplicate can not be the first frame: left clean
    assert plan_artifacts(5, 1.0, np.random.default_rng(0), kinds=("duplicate",)) == ["", *["duplicate"] * 4]
    for bad in (["glare"], [], "bright", [3]):
        with pytest.raises(ValueError):
            plan_artifacts(5, 0.5, np.random.default_rng(0), kinds=bad)
    with pytest.raises(ValueError, match="RGB"):
        plan_artifacts(5, 0.5, np.random.default_rng(0), rgb=False, kinds=("red_line",))


@pytest.fixture(scope="module")
def tables():
    from devolens.render.dataset import simulate_tables

    return simulate_tables(1, seed=21)


def test_a_default_render_draws_what_it_drew(tables, tmp_path):
    from devolens.render.dataset import render_dataset

    df = render_dataset(tables, tmp_path, every=8, size=(64, 96), artifacts=0.5, seed=21)
    assert df["artifact"].tolist() == _RENDER_21
    assert "artifact_kinds" not in json.loads((tmp_path / "render.json").read_text())


def test_a_render_with_bright_frames_records_them_and_the_curator_flags_them(tables, tmp_path):
    from devolens.curate.frames import curate_path
    from devolens.render.dataset import render_dataset

    df = render_dataset(tables, tmp_path, every=4, size=(96, 144), artifacts=0.3, artifact_kinds=ALL_KINDS, seed=4)
    assert json.loads((tmp_path / "render.json").read_text())["artifact_kinds"] == list(ALL_KINDS)
    bright = df[df["artifact"] == "bright"]
    assert len(bright) >= 2
    report = curate_path(tmp_path / "frames")
    flags = dict(zip(report["file"].astype(str), report["flag"].astype(str)))
    for file in bright["file"]:
        assert flags[file.split("/")[-1]] == "bright", file
    clean = df[df["artifact"] == ""]["file"]
    assert all(flags[f.split("/")[-1]] == "" for f in clean)


def test_unknown_kinds_are_refused_before_any_output(tables, tmp_path):
    from devolens.render.dataset import render_dataset

    out = tmp_path / "out"
    with pytest.raises(DevolensError, match="glare"):
        render_dataset(tables, out, times=[1, 2], artifacts=0.5, artifact_kinds=["dark", "glare"])
    with pytest.raises(DevolensError, match="RGB"):
        render_dataset(tables, out, times=[1, 2], artifacts=0.5, artifact_kinds=["red_patch"], rgb=False)
    assert not out.exists()
