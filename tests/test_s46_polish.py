"""A walk through giant wells (session 46): `simulate well` says the density and dead fraction a well reached (nuclei
overlapping one placed before them are dropped: 1900 asked gave 1025) and refuses a well that would not fit in memory;
notes under --no-overlay point at the label images, not at overlays never drawn; a giant frame of a stack is named by
its file, not "0"; `tile make` explains a Z-stack as `segment livedead` does, before asking for labels; a well's
channels chosen by their names are a note, as the README says."""

from __future__ import annotations

import json
import re
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from devolens.errors import DevolensError


def _main(args: list[str], capsys) -> tuple[int, str]:
    from devolens.cli import main

    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


# ------------------------------------------------------------------ 1: the density and dead fraction reached


def test_simulate_well_records_and_notes_the_density_reached(tmp_path, capsys):
    out = tmp_path / "d.tif"
    code, err = _main(["simulate", "well", "--size", "500x400", "--seed", "4", "--density", "1900",
                       "--dead-fraction", "0.1", "--out", out, "--labels", tmp_path / "d_labels.tif"], capsys)
    assert code == 0, err
    record = json.loads((tmp_path / "d.json").read_text())
    rows = len((tmp_path / "d.objects.csv").read_text().strip().splitlines()) - 1
    reached = record["reached"]
    assert reached["density"] == pytest.approx(rows / 0.2, abs=1e-3)  # nuclei per megapixel the well holds
    assert reached["density"] < 0.9 * 1900 and record["density"] == 1900  # (the asked density kept beside it)
    assert reached["dead_fraction"] == pytest.approx(record["counts"]["fraction_dead"])
    text = " ".join(err.split())
    assert f"{reached['density']:.0f} per megapixel" in text  # the summary line says it too
    assert "note: --density 1900: the well holds" in text and "fit at most about" in text
    assert "its fraction dead is" in text


def test_no_density_note_for_a_well_that_reached_its_density(tmp_path):
    from devolens.cli.tiles import _density_note
    from devolens.render.wells import simulate_well

    well = simulate_well(seed=4, size=(300, 300), density=1900, dead_fraction=0.1)
    assert _density_note(well, 1900.0, 0.1) is not None
    assert _density_note(well, well.density, 0.1) is None  # reached: nothing to say
    assert _density_note(well, None) is None  # drawn from the seed: the summary says what it holds


def test_packing_limit_bounds_what_a_dense_request_reaches():
    from devolens.render.wells import packing_limit, simulate_well

    well = simulate_well(seed=4, size=(600, 600), density=20000, dead_fraction=0.1)
    assert well.density < packing_limit(well.params) < 20000


# ------------------------------------------------------------------ 2: memory


def test_simulate_well_too_large_for_the_memory_is_refused_before_it_is_drawn(tmp_path, capsys, monkeypatch):
    from devolens.io import images

    monkeypatch.delenv(images.NO_CHECK_ENV, raising=False)
    monkeypatch.setattr(images, "memory_available", lambda: 50 * 10**6)
    out = tmp_path / "big.tif"
    code, err = _main(["simulate", "well", "--size", "1500x1000", "--seed", "1", "--out", out,
                       "--labels", tmp_path / "big_labels.tif"], capsys)
    assert code == 75, err
    assert re.search(r"a 1500x1000 well takes about (9\d|1\d\d) MB while it is simulated", " ".join(err.split()))
    assert "more than the 50 MB of memory available" in " ".join(err.split())
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_help_states_the_measured_memory_a_pixel():
    from devolens.cli import tiles
    from devolens.render import wells

    assert tiles.WELL_PIXEL_BYTES == wells.WELL_PIXEL_BYTES
    assert wells.well_memory((1000, 1000), 0, 0.0) == wells.WELL_PIXEL_BYTES * 10**6


# ------------------------------------------------------------------ 3: notes under --no-overlay


def test_livedead_speck_and_merge_warnings_name_what_to_look_at(monkeypatch):
    import pandas as pd

    from devolens.predict import livedead

    monkeypatch.setattr(livedead, "_specks", lambda *a: (30, 20, 5, 100, 41))
    monkeypatch.setattr(livedead, "_merged", lambda objects: (12, 100, 900))
    objects = pd.DataFrame({"area": [100, 10], "class": [1, 2]})
    for look, want in ((None, "the labels"), ("labels.tif", "labels.tif"), ("the overlay", "the overlay")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            livedead._warn_objects("w.tif", objects, 12, "--min-area {}", **({} if look is None else {"look": look}))
        said = [str(w.message) for w in caught]
        assert len(said) == 2
        assert f"check {want}, and" in said[0] and f"Check {want}; if so" in said[1]
        if look != "the overlay":
            assert not any("overlay" in s for s in said)


@pytest.mark.parametrize("overlay", [True, False])
def test_segment_livedead_speck_warning_follows_no_overlay(tmp_path, capsys, monkeypatch, overlay):
    from devolens.predict import livedead
    from devolens.render.wells import simulate_well

    monkeypatch.setattr(livedead, "_specks", lambda *a: (30, 20, 5, 100, 41))
    path = tmp_path / "w.tif"
    tifffile.imwrite(path, simulate_well(seed=1, size=(96, 96)).image, imagej=True, metadata={"axes": "CYX"})
    code, err = _main(["segment", "livedead", path, "--out", tmp_path / "ld", *([] if overlay else ["--no-overlay"])],
                      capsys)
    assert code == 0, err
    text = " ".join(err.split())
    assert ("Check the overlay; if so" in text) == overlay
    assert ("Check labels.tif; if so, run again with --min-area 41" in text) == (not overlay)


def test_segment_nuclei_notes_under_no_overlay_point_at_the_label_images(tmp_path):
    from devolens.cli.predict import _segment_notes
    from devolens.predict.notes import DiameterCheck, SmallNuclei

    image = tmp_path / "a.png"
    image.write_bytes(b"")
    summary = {"frames": 1, "objects": 5, "diameter_check": DiameterCheck(10.0, 25.0, 0.56),
               "small_nuclei": SmallNuclei(6.0, 14.0, 11.0, 0.4)}
    for overlay in (True, False):
        words = " ".join(text for text, _ in _segment_notes("nuclei", image, "project", "time",
                                                             {**summary, "overlay": overlay}))
        if overlay:
            assert "Look at the overlays:" in words and "look at the overlays" in words
        else:
            assert "overlays" not in words
            assert "Look at the label images (labels/" in words and "look at the label images" in words


# ------------------------------------------------------------------ 4: a giant frame named by its file


def test_a_stacks_giant_frame_is_named_by_its_file():
    from devolens.cli.predict import _giant_name, _giants_note

    one = types.SimpleNamespace(names=None, total=1, path=Path("/data/w3k.tif"))
    many = types.SimpleNamespace(names=None, total=4, path=Path("/data/movie.tif"))
    folder = types.SimpleNamespace(names=["a.tif"], total=1, path=Path("/data"))
    assert _giant_name(one, 0) == "w3k.tif"
    assert _giant_name(many, 3) == "frame 3 of movie.tif"
    assert _giant_name(folder, "a") == "a"
    note = _giants_note([(_giant_name(one, 0), (3000, 3000), 16, False)], "nuclei")
    assert note.startswith("note: w3k.tif: 3000x3000 pixels, segmented in 16 overlapping blocks")


# ------------------------------------------------------------------ 5: tile make on a Z-stack


@pytest.fixture
def zstack(tmp_path) -> Path:
    path = tmp_path / "stack.tif"
    data = np.random.default_rng(0).integers(0, 4000, (3, 2, 40, 40), dtype=np.uint16)
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZCYX"})
    return path


@pytest.mark.parametrize("keep", ["all", "mixed"])
def test_tile_make_explains_a_z_stack_first(zstack, tmp_path, capsys, keep):
    code, err = _main(["tile", "make", zstack, "--keep", keep, "--tile", "16", "--out", tmp_path / "t.h5"], capsys)
    text = " ".join(err.split())
    assert code == 2, err
    assert "this TIFF holds axes ZCYX" in text and "Z Project" in text
    assert "needs label images" not in text  # (the file's own trouble first)
    assert not (tmp_path / "t.h5").exists()


def test_tile_to_h5_names_a_missing_image_before_the_labels_it_lacks(tmp_path):
    from devolens.data.tiling import tile_to_h5

    with pytest.raises(DevolensError, match="no such file"):
        tile_to_h5([tmp_path / "nothere.tif"], tmp_path / "t.h5")


# ------------------------------------------------------------------ 6: channels chosen by their names: a note


def test_channels_named_draq7_first_are_a_note(tmp_path, capsys):
    from devolens.render.wells import simulate_well

    well = simulate_well(seed=1, size=(64, 64))
    path = tmp_path / "dh.tif"
    tifffile.imwrite(path, well.image[::-1].copy(), imagej=True,
                     metadata={"axes": "CYX", "Labels": ["Draq7", "Hoechst"]})
    code, err = _main(["tile", "make", path, "--keep", "all", "--tile", "32", "--stride", "32",
                       "--out", tmp_path / "t.h5"], capsys)
    assert code == 0, err
    text = " ".join(err.split())
    assert "note: " in text and "channels named 'Draq7', 'Hoechst'" in text
    assert "warning:" not in text
