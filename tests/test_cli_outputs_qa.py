"""CLI outputs never replace inputs, never collide, never go stale, and bad options leave nothing behind
(tile, simulate well/embryo, render, segment livedead)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch

from _render_helpers import make_table
from devolens.cli import main
from devolens.io.tables import write_tidy
from devolens.render.wells import simulate_well


@pytest.fixture(scope="module")
def well(tmp_path_factory):
    """A tiny well image and its labels, as the user would have them (in/well.tif, in/well_lab.tif)."""
    d = tmp_path_factory.mktemp("in")
    w = simulate_well(seed=3, size=(96, 128), density=700, dead_fraction=0.4)
    image, labels = d / "well.tif", d / "well_lab.tif"
    tifffile.imwrite(image, w.image)
    tifffile.imwrite(labels, w.labels)
    return image, labels


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("table") / "toy.csv"
    write_tidy(make_table(n_times=4, n_cells=12, seed=1), path)
    return path


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def _render(table, out, *extra) -> int:
    return main(["render", str(table), "--out", str(out), "--size", "32", "48", "--seed", "1", *extra])


def _listing(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------------------
# tile make: --out is never one of the inputs


@pytest.mark.parametrize("which", ["image", "labels", "image_append", "image_other_spelling"])
def test_tile_refuses_out_equal_to_an_input(well, which, capsys):
    image, labels = well
    before = (image.read_bytes(), labels.read_bytes())
    out = {"image": image, "labels": labels, "image_append": image,
           "image_other_spelling": image.parent / ".." / image.parent.name / image.name}[which]
    args = ["tile", "make", str(image), "--labels", str(labels), "--out", str(out), "--tile", "32"]
    assert main(args + (["--append"] if which == "image_append" else [])) == 2
    assert "output would overwrite the input" in _error(capsys)
    assert (image.read_bytes(), labels.read_bytes()) == before


# ----------------------------------------------------------------------------------------------------------
# simulate: outputs never collide, the parameters are never replaced


@pytest.mark.parametrize(
    "names", [("w.tif", "w.tif", None), ("w.tif", "l.tif", "l.tif"), ("w.tif", "w.objects.csv", None),
              ("w.tif", "l.tif", "w.tif")],
)
def test_simulate_well_refuses_colliding_outputs(tmp_path, names, capsys):
    out, labels, objects = (None if n is None else tmp_path / "o" / n for n in names)
    args = ["simulate", "well", "--size", "64x80", "--out", str(out), "--labels", str(labels)]
    assert main(args + ([] if objects is None else ["--objects", str(objects)])) == 2
    assert "name the same file" in _error(capsys)
    assert not (tmp_path / "o").exists()


def test_simulate_embryo_refuses_out_equal_to_params(tmp_path, capsys):
    params = tmp_path / "p.json"
    params.write_text("{}")
    assert main(["simulate", "embryo", "--params", str(params), "--out", str(params), "--times", "2"]) == 2
    assert "output would overwrite the input" in _error(capsys)
    assert params.read_text() == "{}"
    meta = tmp_path / "e.meta.json"  # the .meta.json written beside e.csv
    meta.write_text("{}")
    assert main(["simulate", "embryo", "--params", str(meta), "--out", str(tmp_path / "e.csv"), "--times", "2"]) == 2
    assert meta.read_text() == "{}" and not (tmp_path / "e.csv").exists()


# ----------------------------------------------------------------------------------------------------------
# render: the folder holds exactly the new render


def test_render_again_replaces_the_previous_render_and_keeps_other_files(tmp_path, table):
    out = tmp_path / "r1"
    assert _render(table, out) == 0
    assert len(list((out / "frames").iterdir())) == 4
    (out / "notes.txt").write_text("mine")
    (out / "video.mp4").write_bytes(b"old video")  # an earlier --video render's
    assert _render(table, out, "--times", "2-3") == 0
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["t002.png", "t003.png"]
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["t002_labels.tif", "t003_labels.tif"]
    assert len(pd.read_csv(out / "frames.csv")) == 2
    assert set(pd.read_csv(out / "objects.csv")["file"]) == {"frames/t002.png", "frames/t003.png"}
    assert not (out / "video.mp4").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    # a membrane render drops the nuclei render's objects.csv; a nuclei render then drops membranes/
    assert _render(table, out, "--times", "1", "--kind", "membrane") == 0
    assert (out / "membranes").is_dir() and not (out / "objects.csv").exists()
    assert _render(table, out, "--times", "4") == 0
    assert not (out / "membranes").exists() and (out / "objects.csv").exists()
    assert sorted(p.name for p in out.iterdir()) == ["frames", "frames.csv", "labels", "notes.txt", "objects.csv",
                                                     "render.json"]


def test_render_same_as_into_a_new_folder(tmp_path, table):
    assert _render(table, tmp_path / "a", "--times", "1-3") == 0
    assert _render(table, tmp_path / "b") == 0
    assert _render(table, tmp_path / "b", "--times", "1-3") == 0
    assert _listing(tmp_path / "a") == _listing(tmp_path / "b")


def test_render_refuses_a_folder_of_other_data(tmp_path, table, capsys):
    out = tmp_path / "mydata"
    (out / "frames").mkdir(parents=True)
    (out / "frames" / "a.png").write_bytes(b"precious")
    assert _render(table, out) == 2
    assert "not a previous render" in _error(capsys)
    assert _listing(out) == {"frames/a.png": b"precious"}
    other = tmp_path / "other"  # unrelated files only: rendered beside them
    other.mkdir()
    (other / "x.txt").write_text("x")
    assert _render(table, other, "--times", "1") == 0
    assert (other / "x.txt").read_text() == "x" and (other / "frames" / "t001.png").exists()


def test_render_refuses_a_table_inside_what_it_replaces(tmp_path, table, capsys):
    out = tmp_path / "r"
    assert _render(table, out, "--times", "1") == 0
    inside = out / "labels" / "toy.csv"
    inside.write_bytes(table.read_bytes())
    capsys.readouterr()
    assert _render(inside, out, "--times", "1") == 2
    assert "output would overwrite the input" in _error(capsys)
    assert inside.exists()


def test_render_error_keeps_the_previous_render_and_makes_no_folders(tmp_path, table, monkeypatch):
    import devolens.render.dataset as dataset

    out = tmp_path / "r"
    assert _render(table, out, "--times", "1-2") == 0
    before = _listing(out)
    real = dataset.write_csv

    def failing(df, path, *args, **kwargs):  # the frames written into the staging folder, then the disk fills
        if path.name == "frames.csv":
            raise dataset.DevolensError("disk full")
        return real(df, path, *args, **kwargs)

    monkeypatch.setattr(dataset, "write_csv", failing)
    assert _render(table, out, "--times", "3") == 2
    assert _listing(out) == before
    assert _render(table, tmp_path / "new" / "deep" / "r") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["render", "--out", "{out}"], "nothing to render: give a lineage TABLE, or --simulate N"),
        (["render", "{table}", "--simulate", "1", "--out", "{out}"], "give either a TABLE or --simulate N, not both"),
        (["render", "{table}", "--sim-cells", "5", "--out", "{out}"], "--sim-cells applies only with --simulate"),
    ],
)
def test_render_table_or_simulate_messages(tmp_path, table, args, message, capsys):
    out = tmp_path / "o" / "rs"
    assert main([a.format(out=out, table=table) for a in args]) == 2
    err = _error(capsys)
    assert message in err
    assert "(not both)" not in err
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------------------------------
# segment livedead: options before any folder, --out never the input, a whole result or none


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--overlap", "600"], "--overlap (600) must be smaller than --window (512)"),
        (["--window", "64", "--overlap", "64"], "--overlap (64) must be smaller than --window (64)"),
        (["--precision", "fp7"], "--precision must be"),
        (["--model", "no-such-model"], "no-such-model"),
        (["--device", "gpu"], "--device must be auto, cpu, cuda or cuda:N"),
    ] + ([] if torch.cuda.is_available() else [(["--device", "cuda"], "sees no CUDA GPU")]),
)
def test_livedead_bad_options_create_nothing(tmp_path, well, extra, message, capsys):
    out = tmp_path / "o" / "ld6"
    assert main(["segment", "livedead", str(well[0]), "--out", str(out), *extra]) == 2
    assert message in _error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_livedead_refuses_out_equal_to_the_input(tmp_path, well, capsys):
    image = tmp_path / "well.tif"
    image.write_bytes(well[0].read_bytes())
    assert main(["segment", "livedead", str(image), "--out", str(image)]) == 2
    assert "output would overwrite the input" in _error(capsys)
    inside = tmp_path / "res" / "labels.tif"  # the well saved as labels.tif in the output folder
    inside.parent.mkdir()
    inside.write_bytes(well[0].read_bytes())
    assert main(["segment", "livedead", str(inside), "--out", str(inside.parent)]) == 2
    assert "output would overwrite the input" in _error(capsys)
    assert image.read_bytes() == inside.read_bytes() == well[0].read_bytes()


def _tiny_livedead_model(tmp_path):
    import torch

    from devolens.models.architectures import build_model, save_model

    torch.manual_seed(0)
    net = build_model("unet", "resnet18", in_channels=2, classes=3, encoder_depth=3, decoder_channels=(16, 8, 4))
    return save_model(net, tmp_path / "m.safetensors", {"task": "livedead"}, fp16=True)


@pytest.mark.slow
def test_livedead_result_replaces_the_previous_one(tmp_path, well):
    weights = _tiny_livedead_model(tmp_path)
    out = tmp_path / "res"
    run = ["segment", "livedead", str(well[0]), "--out", str(out), "--model", str(weights), "--window", "100",
           "--overlap", "16", "--no-fast"]
    assert main(run + ["--probabilities"]) == 0
    assert tifffile.imread(out / "probs.tif").shape == (3, 96, 128)
    (out / "notes.txt").write_text("mine")
    assert (out / "overlays" / "well_overlay.png").is_file()
    assert main(run + ["--no-overlay"]) == 0  # --window 100: rounded up to the network's multiple, not refused
    assert sorted(p.name for p in out.iterdir()) == ["counts.csv", "labels.tif", "livedead.json", "notes.txt", "objects.csv"]
    assert tifffile.imread(out / "labels.tif").shape == (96, 128)
    assert np.isin(tifffile.imread(out / "labels.tif"), [0, 1, 2]).all()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("command", [["lineage", "convert"], ["lineage", "populations"], ["identify"]])
@pytest.mark.parametrize("companion", ["aux", "time"])
def test_an_epic_tables_companion_files_are_inputs_too(tmp_path, capsys, command, companion):
    """`lineage ... CD*.csv --out TIME*.csv` replaced the TIME file read with the table (and AuxInfo likewise), after
    which the table could not be read at all: refused, the file untouched."""
    from _lineage_builders import write_cd

    cd = write_cd(tmp_path / "CD20240101_TEST_L1.csv", [
        ("ABa", 1, 4.0, 100, 200, 60, -5), ("ABp", 1, 5.5, 120, 210, 62, -6),
        ("ABal", 2, 4.0, 101, 201, 55, -7), ("E", 2, 8.0, 300, 250, 40, -8),
    ])
    aux, time = tmp_path / "20240101_TEST_L1AuxInfo.csv", tmp_path / "TIME20240101_TEST_L1.csv"
    aux.write_text("name,slope,intercept,xc,yc,maj,min,ang,zc,zslope,time,zpixres,axis\n"
                   "20240101_TEST_L1,0.5,-24.2,380,384,598,396,48.4,39.5,4.86,89,5.7471,PDR\n")
    time.write_text("20240101_TEST_L1\t1\t0\t0\n20240101_TEST_L1\t2\t90\t90\n")
    target = aux if companion == "aux" else time
    before = target.read_bytes()
    assert main([*command, str(cd), "--out", str(target)]) == 2
    assert f"output would overwrite {target.name}, read with {cd.name}" in _error(capsys)
    assert target.read_bytes() == before


def test_files_read_with_a_table_are_inputs_whatever_its_name(tmp_path, capsys):
    """The EPIC reader goes by content: a CD table saved as emb.csv reads embAuxInfo.csv and TIMEemb.csv beside it;
    a tidy table reads its .meta.json. None may be an --out."""
    from _lineage_builders import write_cd

    cd = write_cd(tmp_path / "emb.csv", [("ABa", 1, 4.0, 100, 200, 60, -5), ("ABp", 1, 5.5, 120, 210, 62, -6)])
    time = tmp_path / "TIMEemb.csv"
    time.write_text("emb\t1\t0\t0\n")
    assert main(["lineage", "convert", str(cd), "--out", str(time)]) == 2
    assert "output would overwrite TIMEemb.csv, read with emb.csv" in _error(capsys)
    tidy = tmp_path / "t.csv"
    assert main(["lineage", "convert", str(cd), "--out", str(tidy)]) == 0
    assert capsys.readouterr().err.startswith(f"wrote {tidy}: ")  # its summary, on stderr
    meta = tmp_path / "t.meta.json"
    assert meta.exists()
    before = meta.read_bytes()
    assert main(["lineage", "populations", str(tidy), "--out", str(meta)]) == 2
    assert "output would overwrite t.meta.json, read with t.csv" in _error(capsys) and meta.read_bytes() == before


def test_render_times_range_that_runs_backwards_says_so(tmp_path, table, capsys):
    assert _render(table, tmp_path / "r", "--times", "3-2") == 2
    err = _error(capsys)
    assert "runs backwards" in err and "2-3" in err
    assert not (tmp_path / "r").exists()
