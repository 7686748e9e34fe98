"""``segment livedead`` and ``simulate well`` as the other commands: --no-fast (fp32) with --precision int8 or bf16
refused before any work (it ran int8 silently), and a simulated well's record (its drawn dead fraction and density
were only printed; no devolens version, command line or seed lay beside the outputs)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import tifffile

from devolens.cli import main
from devolens.provenance import version
from devolens.render.wells import simulate_well

from _livedead_helpers import weights  # noqa: F401  (fixture)


def _err(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# ------------------------------------------------------------------------- segment livedead: --no-fast
def _well_tif(path, h=64, w=72):
    tifffile.imwrite(path, simulate_well(seed=3, size=(h, w), density=1500).image, metadata={"axes": "CYX"})
    return path


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_livedead_no_fast_with_a_fast_precision_is_refused(tmp_path, capsys, precision):
    well = _well_tif(tmp_path / "w.tif")
    out = tmp_path / "res"
    assert main(["segment", "livedead", str(well), "--out", str(out), "--no-fast", "--precision", precision]) == 2
    err = _err(capsys)
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert f"--no-fast runs the network in fp32, --precision {precision} in {precision}" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.tif"]  # nothing written, not even a staging folder


def test_livedead_no_fast_with_fp32_or_auto_runs_fp32(weights, tmp_path):  # noqa: F811
    well = _well_tif(tmp_path / "w.tif")
    for precision in ("fp32", "auto"):
        out = tmp_path / precision
        assert main(["segment", "livedead", str(well), "--out", str(out), "--model", str(weights), "--window", "64",
                     "--overlap", "16", "--no-overlay", "--no-fast", "--precision", precision]) == 0
        record = json.loads((out / "livedead.json").read_text())
        assert record["options"]["fast"] is False and record["options"]["precision"] == precision


# ------------------------------------------------------------------------------ simulate well: its record
def _simulate(tmp_path, *extra):
    args = ["simulate", "well", "--size", "64x80", "--out", str(tmp_path / "w.tif"), "--labels",
            str(tmp_path / "l.tif"), *extra]
    return main(args)


def test_simulate_well_records_its_drawn_parameters_and_command(tmp_path, capsys, monkeypatch):
    args = ["simulate", "well", "--size", "64x80", "--seed", "7", "--out", str(tmp_path / "w.tif"), "--labels",
            str(tmp_path / "l.tif")]
    monkeypatch.setattr(sys, "argv", ["/usr/bin/devolens", *args])  # as the devolens program runs it
    assert main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.tif", "w.json", "w.objects.csv", "w.tif"]
    record = json.loads((tmp_path / "w.json").read_text())
    ref = simulate_well(seed=7, size=(64, 80))
    assert record["command"] == "devolens " + " ".join(args)
    assert record["devolens"] == record["devolens_version"] == version()
    assert record["seed"] == 7 and record["size"] == [64, 80]
    assert record["dead_fraction"] == ref.params.dead_fraction and record["density"] == ref.params.density
    assert record["drawn"] == ["dead_fraction", "density"]
    assert record["params"] == json.loads(json.dumps(ref.params.as_dict()))
    assert record["outputs"] == {"image": str(tmp_path / "w.tif"), "labels": str(tmp_path / "l.tif"),
                                 "objects": str(tmp_path / "w.objects.csv")}
    objects = pd.read_csv(tmp_path / "w.objects.csv")
    assert record["counts"]["live"] == int((objects["class"] == 1).sum())
    assert record["counts"]["dead"] == int((objects["class"] == 2).sum())
    assert np.array_equal(tifffile.imread(tmp_path / "w.tif"), ref.image)
    said = " ".join(" ".join(_err(capsys)).split())
    assert "w.json" in said and f"drawn: dead fraction {ref.params.dead_fraction:.3f}" in said, said


def test_simulate_well_record_says_what_was_given(tmp_path, capsys):
    assert _simulate(tmp_path, "--dead-fraction", "0.25") == 0
    record = json.loads((tmp_path / "w.json").read_text())
    assert record["dead_fraction"] == 0.25 and record["drawn"] == ["density"]
    assert record["command"] == "devolens simulate well"  # (not the devolens program: its name only)
    assert "given: dead fraction 0.250" in " ".join(_err(capsys))
    assert _simulate(tmp_path, "--dead-fraction", "0.25", "--density", "0") == 0
    record = json.loads((tmp_path / "w.json").read_text())
    assert record["drawn"] == [] and record["density"] == 0.0
    # no nuclei: no dead fraction (JSON has no NaN)
    assert record["counts"] == {"live": 0, "dead": 0, "fraction_dead": None}


def test_simulate_well_writes_all_four_files_or_none(tmp_path, capsys, monkeypatch):
    """A failure on the third file left the image and labels of a well without its table (and no record)."""
    import errno

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    assert _simulate(tmp_path) != 0
    err = _err(capsys)
    assert len(err) == 1 and "w.objects.csv: cannot write output: No space left on device" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_simulate_well_record_never_replaces_another_output(tmp_path, capsys):
    assert main(["simulate", "well", "--size", "64x80", "--out", str(tmp_path / "w.tif"), "--labels",
                 str(tmp_path / "w.json")]) == 2
    assert "--labels and the record w.json name the same file" in " ".join(_err(capsys))
    assert list(tmp_path.iterdir()) == []
    # an --out named .json: refused, as any --out not named .tif/.tiff (s45: it wrote a TIFF under that name)
    assert main(["simulate", "well", "--size", "64x80", "--out", str(tmp_path / "w.json"), "--labels",
                 str(tmp_path / "l.tif")]) == 2
    assert "--out must end in .tif or .tiff" in " ".join(_err(capsys)) and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ tile: what made the store
def test_tile_store_records_the_devolens_and_command_that_wrote_it(tmp_path, monkeypatch):
    """The store's "version" is its format's; no attribute said which devolens, or which command, made it."""
    import h5py

    from devolens.data.tiling import STORE_VERSION, tile_to_h5

    assert _simulate(tmp_path) == 0
    args = ["tile", str(tmp_path / "w.tif"), "--labels", str(tmp_path / "l.tif"), "--out", str(tmp_path / "t.h5"),
            "--tile", "16", "--stride", "16", "--keep", "all"]
    monkeypatch.setattr(sys, "argv", ["/usr/bin/devolens", *args])
    assert main(args) == 0
    with h5py.File(tmp_path / "t.h5", "r") as f:
        assert f.attrs["devolens"] == version() and f.attrs["command"] == "devolens " + " ".join(args)
        assert f.attrs["version"] == STORE_VERSION  # the format's, as before
    # an append records its own command line (the store's last write)
    assert _simulate(tmp_path / "b", "--seed", "1") == 0
    more = ["tile", str(tmp_path / "b" / "w.tif"), "--labels", str(tmp_path / "b" / "l.tif"), "--out",
            str(tmp_path / "t.h5"), "--tile", "16", "--stride", "16", "--keep", "all", "--append"]
    monkeypatch.setattr(sys, "argv", ["/usr/bin/devolens", *more])
    assert main(more) == 0
    with h5py.File(tmp_path / "t.h5", "r") as f:
        assert f.attrs["command"] == "devolens " + " ".join(more) and len(json.loads(f.attrs["sources"])) == 2
    # a library call: its devolens, no command line of an earlier write
    tile_to_h5([tmp_path / "w.tif"], tmp_path / "t.h5", [tmp_path / "l.tif"], tile=16, stride=16, keep="all")
    with h5py.File(tmp_path / "t.h5", "r") as f:
        assert f.attrs["devolens"] == version() and "command" not in f.attrs
