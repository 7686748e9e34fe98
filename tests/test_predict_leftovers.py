"""Leftovers of the QA sweeps: tiny images named, multi-series notes for folders, OME-TIFF stems, --channel on
inputs without TIFFs, population's diameter checked before loading, identity's zscale, wells saved as PNG/JPEG."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile

from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError


def _png(path: Path, shape=(40, 56), seed=0) -> Path:
    from devolens.io.images import write_png

    rng = np.random.default_rng(seed)
    write_png((rng.random(shape) * 200).astype(np.uint8), path)
    return path


# ------------------------------------------------------------------ 1. a 1 x 752 image: the error names the file
def test_too_small_image_is_named_by_the_cli_and_the_library(tiny_zoo, tmp_path, capsys):
    tiny = _png(tmp_path / "tiny.png", (1, 752))
    out = tmp_path / "out"
    assert main(["segment", "nuclei", str(tiny), "--out", str(out)]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "tiny.png: image too small: 1 x 752" in err and not out.exists()
    from devolens.models import load

    with pytest.raises(DevolensError, match=r"tiny\.png: image too small: 1 x 752"):
        load("nuclei").predict(tiny)


def test_too_small_stack_planes_are_named_for_a_file_and_a_folder_member(tiny_zoo, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _png(folder / "a.png")
    stack = folder / "b.tif"
    tifffile.imwrite(stack, np.zeros((3, 1, 752), np.uint8), imagej=True, metadata={"axes": "TYX"})
    for src in (stack, folder):
        out = tmp_path / f"out_{src.name}"
        assert main(["segment", "nuclei", str(src), "--out", str(out)]) == 2
        err = capsys.readouterr().err.replace("\n", "")
        assert "b.tif: image too small: 1 x 752" in err and not out.exists()


# ------------------------------------------------------------------ 2. several image series: noted for folders too
def _two_series(path: Path) -> Path:
    with tifffile.TiffWriter(path) as tw:
        tw.write(np.full((40, 56), 50, np.uint8))
        tw.write(np.full((20, 20), 90, np.uint8))
    return path


def test_other_series_note_for_a_folder(tiny_zoo, tmp_path, capsys):
    from devolens.io.stacks import other_series_note

    folder = tmp_path / "in"
    folder.mkdir()
    _png(folder / "a.png")
    _two_series(folder / "pos.tif")
    note = other_series_note(folder)
    assert note is not None and "pos.tif" in note and "2 image series" in note
    assert main(["segment", "nuclei", str(folder), "--out", str(tmp_path / "out"), "--diameter", "none"]) == 0
    assert "pos.tif" in capsys.readouterr().err.replace("\n", "")
    _two_series(folder / "pos2.tif")
    note = other_series_note(folder)
    assert "2 TIFF files of this folder" in note and "pos.tif" in note and "pos2.tif" in note
    assert other_series_note(folder / "a.png") is None
    (folder / "pos.tif").unlink()
    (folder / "pos2.tif").unlink()
    assert other_series_note(folder) is None


# ------------------------------------------------------------------ 3. OME-TIFF results are named without .ome
def test_ome_tiff_stems_drop_ome_and_keep_the_same_stem_rule(tiny_zoo, tmp_path):
    from devolens.io.frames import image_stem, iter_path_frames

    assert image_stem("x.ome.tif") == "x" and image_stem("x.OME.TIFF") == "x" and image_stem("a.tif") == "a"
    assert image_stem("x.ome.png") == "x.ome" and image_stem(".ome.tif") == ".ome"
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "x.ome.tif", np.full((40, 56), 60, np.uint8), ome=True)
    tifffile.imwrite(folder / "s.ome.tif", np.full((2, 40, 56), 60, np.uint8), ome=True, metadata={"axes": "TYX"})
    _png(folder / "y.png")
    assert iter_path_frames(folder)[1] == ["s_0000.ome.tif", "s_0001.ome.tif", "x.ome.tif", "y.png"]
    out = tmp_path / "out"
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--diameter", "none"]) == 0
    assert sorted(p.name for p in (out / "labels").iterdir()) == [
        "s_0000_labels.tif", "s_0001_labels.tif", "x_labels.tif", "y_labels.tif"]
    assert list(pd.read_csv(out / "counts.csv")["frame"]) == ["s_0000", "s_0001", "x", "y"]
    # a stack on its own: named after its stem without .ome
    one = tmp_path / "one"
    assert main(["segment", "nuclei", str(folder / "s.ome.tif"), "--out", str(one), "--diameter", "none"]) == 0
    assert sorted(p.name for p in (one / "labels").iterdir()) == ["s_f00000_labels.tif", "s_f00001_labels.tif"]
    # x.ome.tif beside x.png share the stem x: each keeps its own results under its whole name
    _png(folder / "x.png", seed=3)
    pops = tmp_path / "pops.csv"
    assert main(["population", str(folder), "--out", str(pops), "--no-plot", "--diameter", "none"]) == 0
    assert list(pd.read_csv(pops)["frame"]) == ["s_0000", "s_0001", "x.ome.tif", "x.png", "y"]


# ------------------------------------------------------------------ 4. --channel on inputs without TIFFs
def test_channel_refused_on_a_folder_without_tiffs_as_curate_does(tiny_zoo, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _png(folder / "a.png")
    _png(folder / "b.png", seed=1)
    for cmd, out in ((["segment", "nuclei"], tmp_path / "seg"), (["population"], tmp_path / "p.csv"),
                     (["curate", "frames"], tmp_path / "c.csv")):
        assert main([*cmd, str(folder), "--channel", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err.replace("\n", "")
        assert "picks a channel of a TIFF stack's C axis; this input has none" in err and not out.exists()
    # also when --skip-flagged auto curates first: the command's words
    assert main(["population", str(folder), "--channel", "0", "--skip-flagged", "auto",
                 "--out", str(tmp_path / "p.csv")]) == 2
    assert "--channel picks" in capsys.readouterr().err.replace("\n", "")
    # a folder holding a TIFF stack with channels takes it
    tifffile.imwrite(folder / "c.tif", np.full((2, 40, 56), 60, np.uint8), imagej=True, metadata={"axes": "CYX"})
    assert main(["segment", "nuclei", str(folder), "--channel", "1", "--out", str(tmp_path / "seg"),
                 "--diameter", "none"]) == 0


def test_channel_refused_on_tiffs_without_a_c_axis(tiny_zoo, tmp_path, capsys):
    single = tmp_path / "single.tif"  # one plane: --channel would be ignored
    tifffile.imwrite(single, np.full((40, 56), 60, np.uint8))
    folder = tmp_path / "planes"  # a folder of single-plane TIFFs (one per time point)
    folder.mkdir()
    for i in range(2):
        tifffile.imwrite(folder / f"t{i}.tif", np.full((40, 56), 60, np.uint8))
    for src in (single, folder):
        out = tmp_path / f"seg_{src.name}"
        assert main(["segment", "nuclei", str(src), "--channel", "1", "--out", str(out)]) == 2
        assert "this input has none" in capsys.readouterr().err.replace("\n", "") and not out.exists()


# ------------------------------------------------------------------ 5. population: a bad diameter before loading
@pytest.mark.parametrize("bad", ["35", True, -3, 1.0, 1e6])
def test_population_diameter_checked_before_the_nuclei_network_loads(monkeypatch, bad):
    if not shipped("population"):
        pytest.skip("population model not shipped")
    from devolens.models import load, zoo

    def no_loading(*args, **kwargs):
        raise AssertionError("the nuclei network was loaded before the diameter was checked")

    monkeypatch.setattr(zoo, "_load", no_loading)  # what PopulationPredictor.from_zoo loads its nuclei model with
    with pytest.raises(DevolensError, match="diameter"):
        load("population", diameter=bad)


# ------------------------------------------------------------------ 6. identity: zscale must be a number
def test_identity_zscale_refuses_strings_and_bools():
    from devolens.predict.identity import prepare_clouds

    rng = np.random.default_rng(0)
    t = pd.DataFrame({"embryo": "e", "time": 1, "x": rng.random(12) * 100, "y": rng.random(12) * 60,
                      "z": rng.random(12) * 20})
    for bad in ("5", True, np.bool_(True), "auto"):
        with pytest.raises(DevolensError, match="zscale must be a number"):
            prepare_clouds(t, zscale=bad)
    a = prepare_clouds(t, zscale=np.float32(5.0))[0]["coords"]
    b = prepare_clouds(t, zscale=5)[0]["coords"]
    assert np.allclose(a, b)


# ------------------------------------------------------------------ 7. wells saved as PNG / JPEG
def _well(h=48, w=64, seed=0):
    """(2, H, W) uint8 counts: Hoechst (all nuclei), Draq7 (a few), and labels 0/1/2."""
    rng = np.random.default_rng(seed)
    img = np.zeros((2, h, w), np.uint8)
    labels = np.zeros((h, w), np.uint8)
    for k in range(6):
        y, x = rng.integers(6, h - 6), rng.integers(6, w - 6)
        img[0, y - 3:y + 3, x - 3:x + 3] = 180
        labels[y - 3:y + 3, x - 3:x + 3] = 1
        if k % 3 == 0:
            img[1, y - 3:y + 3, x - 3:x + 3] = 150
            labels[y - 3:y + 3, x - 3:x + 3] = 2
    return img, labels


def _rgb(img: np.ndarray) -> np.ndarray:
    rgb = np.zeros(img.shape[1:] + (3,), np.uint8)
    rgb[..., 2], rgb[..., 0] = img[0], img[1]  # Hoechst blue, Draq7 red
    return rgb


def test_tiles_from_a_png_well_match_the_tiff(tmp_path):
    from devolens.data.tiling import tile_to_h5
    from devolens.io.images import write_png

    img, labels = _well()
    tifffile.imwrite(tmp_path / "w.tif", img.astype(np.uint16) * 257, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "l.tif", labels)
    write_png(_rgb(img), tmp_path / "w.png")
    write_png(labels, tmp_path / "l.png")
    with pytest.warns(UserWarning, match="uint8"):
        tile_to_h5([tmp_path / "w.png"], tmp_path / "png.h5", [tmp_path / "l.png"], tile=16, stride=8)
    tile_to_h5([tmp_path / "w.tif"], tmp_path / "tif.h5", [tmp_path / "l.tif"], tile=16, stride=8)
    import h5py

    with h5py.File(tmp_path / "png.h5") as a, h5py.File(tmp_path / "tif.h5") as b:
        assert a["images"].shape[0] > 0
        for key in ("images", "labels", "coords", "class_counts"):
            assert np.array_equal(a[key][:], b[key][:]), key
    # the command line too; a JPEG image is read, a JPEG label image never
    from PIL import Image

    Image.fromarray(_rgb(img)).save(tmp_path / "w.jpg", quality=95)
    Image.fromarray(labels).save(tmp_path / "l.jpg", quality=95)
    assert main(["tile", str(tmp_path / "w.jpg"), "--labels", str(tmp_path / "l.png"), "--out",
                 str(tmp_path / "jpg.h5"), "--tile", "16", "--stride", "8"]) == 0
    assert main(["tile", str(tmp_path / "w.png"), "--labels", str(tmp_path / "l.jpg"), "--out",
                 str(tmp_path / "bad.h5"), "--tile", "16", "--stride", "8"]) == 2
    assert not (tmp_path / "bad.h5").exists()


def test_grey_tiff_well_is_refused_in_its_own_shape(tmp_path, capsys):
    """A grey TIFF given as a well: the PNG's helpful message (one channel, how to make a two-channel file), with the
    shape the file holds ((H, W), not the (1, H, W) it is read as), from the tiler, the row reader and the CLI."""
    from devolens.data.tiling import read_image
    from devolens.predict.tiled import RowReader

    img, _ = _well()
    flat = tmp_path / "grey.tif"
    tifffile.imwrite(flat, img[0])
    plane = tmp_path / "plane.tif"
    tifffile.imwrite(plane, img[:1])
    for path, shape in ((flat, "(48, 64)"), (plane, "(1, 48, 64)")):
        for read in (read_image, lambda p: RowReader(p, channels=2)):
            with pytest.raises(DevolensError, match=f"grey image \\(shape {re.escape(shape)}\\) holds one channel; "
                                                    "a well needs two .*Split Channels"):
                read(path)
    capsys.readouterr()
    assert main(["segment", "livedead", str(flat), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "(48, 64)" in err and "(1, 48, 64)" not in err and "holds one channel" in err
    assert not (tmp_path / "o").exists()

def test_png_well_channels_ambiguous_or_grey_are_refused(tmp_path):
    from devolens.data.tiling import read_image
    from devolens.io.images import write_png
    from devolens.predict.tiled import RowReader

    img, _ = _well()
    grey = write_png(img[0], tmp_path / "grey.png")
    rgb_grey = write_png(np.repeat(img[0][..., None], 3, axis=2), tmp_path / "rgbgrey.png")
    cyan = _rgb(img)
    cyan[..., 1] = cyan[..., 2]  # Hoechst shown cyan: green holds signal
    cyan = write_png(cyan, tmp_path / "cyan.png")
    for path, why in ((grey, "grey image holds one channel"), (rgb_grey, "grey image"), (cyan, "signal in green")):
        for read in (read_image, lambda p: RowReader(p, channels=2)):
            with pytest.raises(DevolensError, match=why):
                read(path)
    # read whole by the row reader: the same (2, H, W) as the tiler's, Hoechst from blue
    ok = write_png(_rgb(img), tmp_path / "ok.png")
    with pytest.warns(UserWarning):
        expected = read_image(ok)
    with RowReader(ok, channels=2) as r, pytest.warns(UserWarning):
        assert r.shape == (2, 48, 64)
        assert np.array_equal(r[:, 5:20, :], expected[:, 5:20, :])
    assert np.array_equal(expected[0], img[0].astype(np.uint16) * 257)


def test_segment_livedead_reads_a_png_well(tmp_path):
    if not shipped("livedead"):
        pytest.skip("livedead model not shipped")
    from devolens.io.images import write_png

    img, _ = _well(64, 96)
    write_png(_rgb(img), tmp_path / "w.png")
    tifffile.imwrite(tmp_path / "w.tif", img.astype(np.uint16) * 257, metadata={"axes": "CYX"})
    for name in ("w.png", "w.tif"):
        assert main(["segment", "livedead", str(tmp_path / name), "--out", str(tmp_path / name[2:]),
                     "--window", "64", "--overlap", "16"]) == 0
    png, tif = (tifffile.imread(tmp_path / name / "labels.tif") for name in ("png", "tif"))
    assert np.array_equal(png, tif)
