"""Live/dead wells as users bring them: objects taller than a band, compressed and tiled (OME pyramid) TIFFs read in
bands, the pixel size kept in labels.tif, RGB TIFFs read by their colours, blank channels and blank wells, JPEG
input, and HDF5 files that hold no single well (a tile store, several images)."""

import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from scipy import ndimage

from devolens.errors import DevolensError
from devolens.predict.livedead import extract_objects
from devolens.predict.tiled import RowReader

from _livedead_helpers import channel_predictor


_pred = channel_predictor


def _reference(lab, min_area=0):
    """Objects of the whole label image at once: (x, y, area, class) sorted by y then x."""
    out = []
    for k in (1, 2):
        cc, _ = ndimage.label(lab == k)
        for i, sl in enumerate(ndimage.find_objects(cc), 1):
            yy, xx = np.nonzero(cc[sl] == i)
            if len(yy) >= min_area:
                out.append((xx.mean() + sl[1].start, yy.mean() + sl[0].start, len(yy), k))
    return np.array(sorted(out, key=lambda t: (t[1], t[0])), np.float64).reshape(-1, 4)


def _well(h=160, w=192, seed=0):
    """A (2, h, w) uint16 well: live discs (Hoechst), dead discs (Hoechst + Draq7) on a camera background."""
    rng = np.random.default_rng(seed)
    img = np.full((2, h, w), 100, np.uint16)
    yy, xx = np.mgrid[:h, :w]
    for i in range(14):
        cy, cx = rng.integers(8, h - 8), rng.integers(8, w - 8)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 25
        img[0][disc] = 3000
        if i % 3 == 0:
            img[1][disc] = 3000
    return img


# ---------------------------------------------------------------- 1. objects of any height
def test_objects_taller_than_many_bands_are_found_once():
    lab = np.zeros((200, 90), np.uint8)
    lab[3:197, 10] = 1  # a column through every band
    lab[20:180, 30:33] = 2  # tall, starting near a band's bottom (band 16: rows 16..31)
    lab[29:60, 50:70] = 1  # starts near a band's bottom, taller than the old 64-row margin for band=16
    lab[100:102, 10:60] = 1  # joins the column: a T of one class
    lab[150:190, 80] = 1
    lab[150, 70:81] = 1  # a U across several seams
    lab[189, 70:81] = 1
    lab[150:190, 70] = 1
    lab[5:9, 60:64] = 2  # small ones
    lab[40:43, 80:83] = 1
    ref = _reference(lab)
    for band in (1, 5, 16, 256):
        got = extract_objects(lab, band=band)
        assert list(got.columns) == ["x", "y", "area", "class"]
        assert np.allclose(got.to_numpy(np.float64), ref), band
    assert extract_objects(lab, band=16)["area"].sum() == (lab > 0).sum()
    assert len(extract_objects(lab, band=16, min_area=20)) == (ref[:, 2] >= 20).sum()


def test_predict_file_keeps_an_object_taller_than_a_band(tmp_path):
    """Every connected component of labels.tif is one row of objects.csv (the old bands of 256 rows and a margin
    of 64 lost any object over ~320 rows)."""
    img = np.full((2, 700, 64), 100, np.uint16)
    img[0, 20:680, 20:30] = 3000  # a 660-row live object
    img[:, 300:600, 40:50] = 3000  # a 300-row dead one starting near a band's bottom (256..511)
    tifffile.imwrite(tmp_path / "w.tif", img, metadata={"axes": "CYX"})
    counts = _pred().predict_file(tmp_path / "w.tif", tmp_path / "out")
    lab = tifffile.imread(tmp_path / "out" / "labels.tif")
    objs = pd.read_csv(tmp_path / "out" / "objects.csv")
    ref = _reference(lab, 4)
    assert len(objs) == len(ref) == 2 and (counts["live"], counts["dead"]) == (1, 1)
    assert np.allclose(objs[["x", "y", "area", "class"]].to_numpy(np.float64), ref, atol=0.01)


# ---------------------------------------------------------------- 2. compressed and tiled wells in bands
def test_tiled_ome_pyramid_segments_as_the_uncompressed_well(tmp_path, monkeypatch):
    import devolens.predict.tiled as tiled

    img = _well(300, 260)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, img, metadata={"axes": "CYX"})
    pyr = tmp_path / "pyr.ome.tif"
    with tifffile.TiffWriter(pyr, ome=True) as tw:
        tw.write(img, subifds=1, tile=(64, 64), compression="zlib",
                 metadata={"axes": "CYX", "Channel": {"Name": ["Hoechst", "DRAQ7"]}})
        tw.write(np.ascontiguousarray(img[:, ::2, ::2]), tile=(64, 64), compression="zlib", subfiletype=1)
    pred = _pred()
    a = pred.predict_file(plain, tmp_path / "a")

    def no_whole_read(*args, **kw):
        raise AssertionError("the whole image was read")

    monkeypatch.setattr(tiled.tifffile, "imread", no_whole_read)
    b = pred.predict_file(pyr, tmp_path / "b")
    assert a == b and a["live"] > 0 and a["dead"] > 0
    assert (tmp_path / "a" / "objects.csv").read_bytes() == (tmp_path / "b" / "objects.csv").read_bytes()
    assert (tmp_path / "a" / "counts.csv").read_bytes() == (tmp_path / "b" / "counts.csv").read_bytes()
    monkeypatch.undo()
    a_lab, b_lab = (tifffile.imread(tmp_path / d / "labels.tif") for d in ("a", "b"))
    assert np.array_equal(a_lab, b_lab)


# ---------------------------------------------------------------- 3. the pixel size
@pytest.mark.parametrize("how", ["ome", "imagej"])
def test_labels_keep_the_inputs_pixel_size(tmp_path, how):
    from devolens.io.stacks import pixel_size

    img = _well()
    path = tmp_path / ("w.ome.tif" if how == "ome" else "w.tif")
    if how == "ome":
        tifffile.imwrite(path, img, ome=True, metadata={"axes": "CYX", "PhysicalSizeX": 0.65, "PhysicalSizeY": 0.65,
                                                        "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm"})
    else:
        tifffile.imwrite(path, img, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                         metadata={"axes": "CYX", "unit": "um"})
    assert pixel_size(path) == (0.65, 0.65, "µm")
    _pred().predict_file(path, tmp_path / "out", write_probabilities=True)
    for name in ("labels.tif", "probs.tif"):
        assert pixel_size(tmp_path / "out" / name) == (0.65, 0.65, "µm"), name
    lab = tifffile.imread(tmp_path / "out" / "labels.tif")
    assert lab.shape == img.shape[1:] and lab.dtype == np.uint8 and lab.max() == 2


# ---------------------------------------------------------------- 4. RGB TIFFs, blank channels, JPEG
def _rgb(img):
    rgb = np.zeros(img.shape[1:] + (3,), np.uint8)
    rgb[..., 2], rgb[..., 0] = img[0] // 12, img[1] // 12  # Hoechst blue, Draq7 red
    return rgb


def test_rgb_tiff_is_read_by_its_colours_as_a_png(tmp_path):
    from devolens.io.images import write_png

    rgb = _rgb(_well())
    tifffile.imwrite(tmp_path / "w.tif", rgb, photometric="rgb")
    tifffile.imwrite(tmp_path / "t.tif", rgb, photometric="rgb", tile=(32, 32), compression="zlib")
    write_png(rgb, tmp_path / "w.png")
    with pytest.warns(UserWarning):
        with RowReader(tmp_path / "w.png") as png:
            expected = png.rows(0, 160)
    for name in ("w.tif", "t.tif"):
        with RowReader(tmp_path / name) as r, pytest.warns(UserWarning, match="not uint16"):
            assert r.order == [2, 0] and "blue" in r.note
            assert np.array_equal(r.rows(0, 160), expected)
    pred = _pred()
    with pytest.warns(UserWarning, match="Hoechst read from its blue"):
        tif = pred.predict_file(tmp_path / "w.tif", tmp_path / "a")
    with pytest.warns(UserWarning):
        png = pred.predict_file(tmp_path / "w.png", tmp_path / "b")
    assert tif == png and tif["dead"] > 0 and tif["live"] > 0


def test_rgb_tiff_with_green_signal_names_the_right_channels(tmp_path):
    rgb = _rgb(_well())
    rgb[..., 1] = rgb[..., 2]  # Hoechst shown cyan
    tifffile.imwrite(tmp_path / "cyan.tif", rgb, photometric="rgb")
    with pytest.raises(DevolensError, match=r"signal in green.*channels=\[2, 0\]"):
        RowReader(tmp_path / "cyan.tif")
    with RowReader(tmp_path / "cyan.tif", order=[2, 0]) as r, pytest.warns(UserWarning):
        assert r.shape == (2, 160, 192) and np.array_equal(r.rows(0, 10), rgb[:10, :, [2, 0]].transpose(2, 0, 1)
                                                           .astype(np.uint16) * 257)
    grey = np.repeat(rgb[..., :1], 3, axis=2)
    tifffile.imwrite(tmp_path / "grey.tif", grey, photometric="rgb")
    with pytest.raises(DevolensError, match="grey image"):
        RowReader(tmp_path / "grey.tif")


def test_planar_three_channel_tiff_is_refused_not_read_by_colours(tmp_path):
    """`tifffile.imwrite(p, np.stack([hoechst, zeros, draq7]))` (16-bit: stored as photometric RGB, planar
    (3, H, W)) is a stack of channels, not colours: refused with 'e.g. 0,1' (it was read with blue as Hoechst:
    the live and dead counts swapped); --channels 0,2 reads it as the two-channel well. An interleaved (H, W, 3)
    RGB TIFF keeps the colour rule (test above)."""
    img = _well()
    tifffile.imwrite(tmp_path / "s.tif", np.stack([img[0], np.zeros_like(img[0]), img[1]]))
    with tifffile.TiffFile(tmp_path / "s.tif") as tf:
        assert tf.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
        assert tf.pages[0].planarconfig == tifffile.PLANARCONFIG.SEPARATE
    with pytest.raises(DevolensError, match=r"channels=\[H, D\] \(0-based, e\.g\. \[0, 1\]") as err:
        RowReader(tmp_path / "s.tif")
    assert "2, 0" not in str(err.value) and "blue" not in str(err.value)
    with pytest.raises(DevolensError, match=r"e\.g\. \[0, 1\]"):
        _pred().predict_file(tmp_path / "s.tif", tmp_path / "no")
    with RowReader(tmp_path / "s.tif", order=[0, 2]) as r:
        assert r.note is None and np.array_equal(r.rows(0, 160), img)
    tifffile.imwrite(tmp_path / "ok.tif", img, metadata={"axes": "CYX"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counts = _pred().predict_file(tmp_path / "s.tif", tmp_path / "s", channels=[0, 2])
        truth = _pred().predict_file(tmp_path / "ok.tif", tmp_path / "ok")
    assert counts == truth and counts["live"] > 0 and counts["dead"] > 0


def test_blank_draq7_channel_is_warned_about(tmp_path):
    """Red (0) as Hoechst and the empty green (1) as Draq7, as the old error's example said: every nucleus live,
    with no word; now a warning says the Draq7 channel is blank."""
    tifffile.imwrite(tmp_path / "w.tif", _rgb(_well()), photometric="rgb")
    with pytest.warns(UserWarning) as seen:
        counts = _pred().predict_file(tmp_path / "w.tif", tmp_path / "o", channels=[0, 1])
    text = " | ".join(str(w.message) for w in seen)
    assert counts["dead"] == 0 and "Draq7 channel (channel 1 of the file) is blank" in text
    with warnings.catch_warnings():  # a well with Draq7 signal: no such warning
        warnings.simplefilter("error")
        img = _well()
        tifffile.imwrite(tmp_path / "ok.tif", img, metadata={"axes": "CYX"})
        _pred().predict_file(tmp_path / "ok.tif", tmp_path / "ok")
    img = _well()
    img[1] = 0
    with pytest.warns(UserWarning, match="Draq7 channel .* is blank"):
        _pred().predict(img)


def test_jpeg_input_is_noted(tmp_path):
    from PIL import Image

    rgb = _rgb(_well())
    tifffile.imwrite(tmp_path / "j.tif", rgb, photometric="rgb", tile=(64, 64), compression="jpeg")
    Image.fromarray(rgb).save(tmp_path / "j.jpg", quality=95)
    for name, what in (("j.tif", "JPEG-compressed TIFF"), ("j.jpg", "a JPEG file")):
        with pytest.warns(UserWarning) as seen:
            _pred().predict_file(tmp_path / name, tmp_path / name.replace(".", "_"))
        notes = [str(w.message) for w in seen if "lossy" in str(w.message)]
        assert len(notes) == 1 and what in notes[0], name
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        tifffile.imwrite(tmp_path / "z.tif", rgb, photometric="rgb", tile=(64, 64), compression="zlib")
        _pred().predict_file(tmp_path / "z.tif", tmp_path / "z")
    assert not [w for w in seen if "lossy" in str(w.message)]


# ---------------------------------------------------------------- 5. blank and degenerate wells
def test_blank_well_has_no_dead_fraction(tmp_path):
    tifffile.imwrite(tmp_path / "zero.tif", np.zeros((2, 64, 64), np.uint16), metadata={"axes": "CYX"})
    with pytest.warns(UserWarning, match="no objects found"):
        counts = _pred().predict_file(tmp_path / "zero.tif", tmp_path / "o")
    assert counts["live"] == counts["dead"] == 0 and np.isnan(counts["fraction_dead"])
    assert (tmp_path / "o" / "counts.csv").read_text().splitlines() == ["live,dead,fraction_dead", "0,0,"]
    with pytest.warns(UserWarning, match="no objects found"):
        res = _pred().predict(np.full((2, 64, 64), 100, np.uint16))  # background only: not blank, no objects
    assert np.isnan(res.counts["fraction_dead"])


@pytest.mark.parametrize("shape", [(2, 1, 1), (2, 1, 50), (2, 50, 1)])
def test_degenerate_well_is_refused(tmp_path, shape):
    tifffile.imwrite(tmp_path / "tiny.tif", np.zeros(shape, np.uint16), metadata={"axes": "CYX"})
    with pytest.raises(DevolensError, match="image too small"):
        RowReader(tmp_path / "tiny.tif")
    with pytest.raises(DevolensError, match="image too small"):
        _pred().predict(np.zeros(shape, np.uint16))


# ---------------------------------------------------------------- 6. HDF5 files that hold no single well
def test_tile_store_is_refused(tmp_path):
    from devolens.data.tiling import tile_to_h5

    img = _well()
    tifffile.imwrite(tmp_path / "w.tif", img, metadata={"axes": "CYX"})
    lab = np.zeros(img.shape[1:], np.uint8)
    lab[img[0] > 1000] = 1
    tifffile.imwrite(tmp_path / "l.tif", lab)
    tile_to_h5([tmp_path / "w.tif"], tmp_path / "store.h5", [tmp_path / "l.tif"], tile=64, stride=64, keep="all")
    with pytest.raises(DevolensError, match="tile store"):
        RowReader(tmp_path / "store.h5")
    with pytest.raises(DevolensError, match="tile store"):
        _pred().predict_file(tmp_path / "store.h5", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_hdf5_with_several_images_lists_them_or_reads_the_one_named(tmp_path):
    img = _well()
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["raw"] = img
        f["mask"] = np.zeros((1, *img.shape[1:]), np.uint8)
        f.create_group("meta")["x"] = np.zeros(3)
    with pytest.raises(DevolensError, match="several 3-D datasets") as err:
        RowReader(path)
    assert "raw (2, 160, 192)" in str(err.value) and "mask (1, 160, 192)" in str(err.value)
    with RowReader(path, dataset="raw") as r:
        assert np.array_equal(r.rows(0, 160), img)
    with pytest.raises(DevolensError, match="no dataset 'nope'"):
        RowReader(path, dataset="nope")
    counts = _pred().predict_file(path, tmp_path / "o", dataset="raw")
    assert counts["live"] > 0
    one = tmp_path / "one.h5"
    with h5py.File(one, "w") as f:
        f["well"] = img
    with RowReader(one) as r:  # a single 3-D dataset: read, whatever its name
        assert np.array_equal(r.rows(5, 9), img[:, 5:9])


# ---------------------------------------------------------------- 7. the command: an empty well, --dataset, help
def _fake_segment(monkeypatch, counts):
    """segment_livedead_file replaced (no model): records its keyword arguments, returns ``counts``."""
    import devolens.predict.livedead as ld

    seen = {}

    def fake(image, out_dir, **kw):
        seen.update(kw, image=image)
        return counts

    monkeypatch.setattr(ld, "segment_livedead_file", fake)
    return seen


def test_cli_empty_well_says_it_has_no_dead_fraction(tmp_path, monkeypatch, capsys):
    """'0 live, 0 dead (fraction dead nan)' read as a number; now the line says there is none."""
    from devolens.cli import main

    tifffile.imwrite(tmp_path / "w.tif", _well(), metadata={"axes": "CYX"})
    _fake_segment(monkeypatch, {"live": 0, "dead": 0, "fraction_dead": float("nan")})
    # (--no-overlay: the fake writes no labels.tif to draw)
    assert main(["segment", "livedead", str(tmp_path / "w.tif"), "--out", str(tmp_path / "o"), "--no-overlay"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "0 live, 0 dead (no objects: fraction dead none)" in err and "nan" not in err
    _fake_segment(monkeypatch, {"live": 3, "dead": 1, "fraction_dead": 0.25})
    assert main(["segment", "livedead", str(tmp_path / "w.tif"), "--out", str(tmp_path / "p"), "--no-overlay"]) == 0
    assert "3 live, 1 dead (fraction dead 0.250)" in " ".join(capsys.readouterr().err.split())


def test_cli_dataset_names_the_wells_hdf5_dataset(tmp_path, monkeypatch, capsys):
    from devolens.cli import main

    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["raw"] = _well()
        f["mask"] = np.zeros((1, 160, 192), np.uint8)
    # the input is checked before the model is loaded: without --dataset refused with the list, with it the
    # (missing) model is what fails
    assert main(["segment", "livedead", str(path), "--out", str(tmp_path / "o"), "--model", "no-such-model"]) == 2
    assert "several 3-D datasets" in capsys.readouterr().err
    assert main(["segment", "livedead", str(path), "--out", str(tmp_path / "o"), "--model", "no-such-model",
                 "--dataset", "raw"]) == 2
    err = capsys.readouterr().err
    assert "no-such-model" in err and "several 3-D datasets" not in err
    seen = _fake_segment(monkeypatch, {"live": 2, "dead": 0, "fraction_dead": 0.0})
    assert main(["segment", "livedead", str(path), "--out", str(tmp_path / "o"), "--dataset", "raw",
                 "--no-overlay"]) == 0
    assert seen["dataset"] == "raw"


def test_cli_help_says_compressed_tiffs_are_read_in_bands(capsys):
    from devolens.cli import main

    assert main(["segment", "livedead", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "compressed" in text and "tiled" in text and "pyramid" in text and "--dataset" in text
    assert "read whole" in text  # a PNG, JPEG or BMP still is
