"""TIFF stacks, review mends (s29): population reads one movie saved in parts (refuses stage positions), plain
multi-page timelapses counted as timelapses, the z-stack shape check reads no planes when it has nothing to judge,
population's --stack-z error, the stack notes computed once, check_axes' save example, docstrings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError


def err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _movie(path, T=3, Y=32, X=48, seed=0, **kw):
    arr = (np.random.default_rng(seed).random((T, 2, Y, X)) * 1000).astype(np.uint16)
    tifffile.imwrite(path, arr, imagej=True, metadata={"axes": "TZYX"}, **kw)


# ---------------------------------------------------------------------------- 1. one movie in parts
def test_population_reads_a_movie_saved_in_parts(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    data = tmp_path / "parts"
    data.mkdir()
    _movie(data / "emb_t0-2.tif", seed=1)
    _movie(data / "emb_t3-5.tif", seed=2)
    out = tmp_path / "p.csv"
    assert main(["population", str(data), "--out", str(out), "--no-plot"]) == 0
    text = err(capsys)
    assert "this folder holds 2 timelapses" in text and "one sequence" in text
    assert list(pd.read_csv(out)["frame"])[2:4] == ["emb_t0-2_0002", "emb_t3-5_0000"]


@pytest.mark.parametrize("names, reason", [
    (("emb_s1.tif", "emb_s2.tif"), "differ by a stage position (_s1, _s2)"),
    (("emb_xy01.tif", "emb_xy02.tif"), "differ by a stage position"),
    (("Position 1.tif", "Position 2.tif"), "differ by a stage position"),
    (("a_part1.tif", "a_part2.tif"), "frames differ in shape"),
    (("a_part1.tif", "a_part2.tif"), None),
])
def test_several_timelapses_are_refused_when_they_look_like_positions(tmp_path, names, reason):
    from devolens.io.frames import several_timelapses_error

    _movie(tmp_path / names[0])
    _movie(tmp_path / names[1], X=64 if reason and "shape" in reason else 48)
    error = several_timelapses_error(tmp_path, "population")
    if reason is None:
        assert error is None
    else:
        assert reason in str(error) and "the parts of one movie" in str(error)


# ---------------------------------------------------------------------------- 2. plain multi-page timelapses
def test_plain_multi_page_tiffs_read_as_time_are_timelapses(tmp_path):
    from devolens.io.frames import folder_timelapses, timelapses_note

    for k in range(2):
        tifffile.imwrite(tmp_path / f"m{k}.tif", np.zeros((5, 16, 24), np.uint8), metadata=None)
    assert [(p.name, t) for p, t in folder_timelapses(tmp_path)] == [("m0.tif", 5), ("m1.tif", 5)]
    assert "this folder holds 2 timelapses" in timelapses_note(tmp_path)
    assert folder_timelapses(tmp_path, "z") == [] and timelapses_note(tmp_path, "z") is None


# ---------------------------------------------------------------------------- 3. no planes read for nothing
def test_shape_check_reads_no_planes_when_the_diameter_is_given(tiny_zoo, tmp_path, monkeypatch):  # noqa: F811
    import json

    import devolens.io.stacks as stacks
    from devolens.cli import main
    from devolens.models import zoo

    card_path = zoo.ZOO_DIR / "nuclei" / "card.json"
    card = json.loads(card_path.read_text())
    card["input"]["diameter"] = {"reference": 30.0}
    card_path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    calls = []
    real = stacks.busiest_planes
    monkeypatch.setattr(stacks, "busiest_planes", lambda *a, **k: calls.append(1) or real(*a, **k))
    path = tmp_path / "zs.tif"
    _movie(path, T=2)
    for diameter, read in (("30", False), ("none", True)):  # by hand: a size, nothing to judge the shape by
        calls.clear()
        assert main(["segment", "nuclei", str(path), "--out", str(tmp_path / diameter), "--no-overlay",
                     "--diameter", diameter]) == 0
        assert bool(calls) == read


# ---------------------------------------------------------------------------- 4. curate's time column
def test_curate_docstring_says_what_time_holds_for_a_folder():
    from devolens.curate.frames import curate_path

    doc = " ".join(curate_path.__doc__.split())
    assert "time-point number of file names" in doc


# ---------------------------------------------------------------------------- 5. population --stack-z
def test_population_stack_z_error_names_project_only(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    path = tmp_path / "zs.tif"
    _movie(path)
    assert main(["population", str(path), "--out", str(tmp_path / "p.csv"), "--stack-z", "bogus"]) == 2
    text = err(capsys)
    assert "--stack-z must be project, got 'bogus'" in text and "slices" not in text


# ---------------------------------------------------------------------------- 6. computed once
@pytest.mark.parametrize("command", ["segment", "population"])
def test_folder_timelapses_is_computed_once_per_run(tiny_zoo, tmp_path, capsys, monkeypatch, command):  # noqa: F811
    import devolens.io.frames as frames
    from devolens.cli import main

    data = tmp_path / "parts"
    data.mkdir()
    _movie(data / "emb_t0-2.tif", seed=1)
    _movie(data / "emb_t3-5.tif", seed=2)
    calls = []
    real = frames.folder_timelapses
    monkeypatch.setattr(frames, "folder_timelapses", lambda *a, **k: calls.append(1) or real(*a, **k))
    args = (["segment", "nuclei", str(data), "--out", str(tmp_path / "s"), "--no-overlay", "--diameter", "none"]
            if command == "segment" else ["population", str(data), "--out", str(tmp_path / "p.csv"), "--no-plot"])
    assert main(args) == 0
    assert "this folder holds 2 timelapses" in err(capsys) and len(calls) == 1


def test_stack_notes_use_other_series_note(tmp_path, monkeypatch):
    import devolens.io.stacks as stacks
    from devolens.cli._common import stack_notes

    monkeypatch.setattr(stacks, "other_series_note", lambda path: "note: sentinel")
    assert "note: sentinel" in stack_notes(tmp_path)


# ---------------------------------------------------------------------------- 7. check_axes, docstrings
def test_check_axes_example_indexes_the_array_tifffile_reads(tmp_path):
    from devolens.io.stacks import check_axes, stack_info

    path = tmp_path / "tcazyx.tif"
    arr = np.zeros((2, 1, 3, 2, 16, 24), np.uint8)
    tifffile.imwrite(path, arr, metadata={"axes": "TCAZYX"})
    with pytest.raises(DevolensError) as exc:
        check_axes(stack_info(path), path)
    text = str(exc.value)
    assert "array[:, :, i], metadata={'axes': 'TCZYX'}" in text
    assert tifffile.imread(path)[:, :, 0].shape == (2, 1, 2, 16, 24)


def test_several_series_note_docstring_is_not_stale():
    from devolens.io.stacks import several_series_note

    assert "each read by its first series" not in " ".join(several_series_note.__doc__.split())
