"""Live/dead wells as microscopes and Fiji save them: channel names (OME-TIFF, ImageJ) say which channel is
Hoechst and which Draq7, ``--channels`` chooses them by hand, and a well whose channels were swapped (every
nucleus read as dead) is never segmented without a warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile

from devolens.cli import main
from devolens.data.tiling import read_image, tile_to_h5, well_channel_order
from devolens.errors import DevolensError
from devolens.predict.tiled import RowReader
from devolens.render.wells import simulate_well


@pytest.fixture(scope="module")
def well():
    return simulate_well(seed=5, size=(256, 320), density=900, dead_fraction=0.1)


def cli(argv, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def write_ome(path, arr, names):
    tifffile.imwrite(path, arr, ome=True, metadata={"axes": "CYX", "Channel": {"Name": list(names)}})
    return path


@pytest.mark.parametrize("names", [("DRAQ7", "Hoechst"), ("PI", "DAPI"), ("Propidium iodide", "Cy3")])
def test_ome_channel_names_put_hoechst_first(tmp_path, well, names):
    path = write_ome(tmp_path / "w.ome.tif", well.image[::-1].copy(), names)
    with pytest.warns(UserWarning, match="Hoechst read from channel 1"):
        img = read_image(path)
    assert np.array_equal(img, well.image)
    with RowReader(path) as r:
        assert r.order == [1, 0] and "channel 1" in r.note
        assert np.array_equal(r.rows(10, 50), well.image[:, 10:50])


def test_imagej_labels_and_hoechst_first_names_read_as_they_are(tmp_path, well):
    ij = tmp_path / "ij.tif"
    tifffile.imwrite(ij, well.image[::-1].copy(), imagej=True, metadata={"axes": "CYX", "Labels": ["DRAQ7", "Hoechst"]})
    assert well_channel_order(ij, 2)[0] == [1, 0]
    plain = write_ome(tmp_path / "hd.ome.tif", well.image, ("Hoechst 33342", "DRAQ7"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(read_image(plain), well.image)  # no note: already in order
    unknown = write_ome(tmp_path / "gfp.ome.tif", well.image, ("GFP", "mCherry"))
    assert well_channel_order(unknown, 2) == (None, None)


def test_three_channels_choose_two_or_fail_with_the_option(tmp_path, well):
    extra = np.full((1, *well.image.shape[1:]), 3000, np.uint16)  # a brightfield plane
    three = tmp_path / "three.tif"
    tifffile.imwrite(three, np.concatenate([extra, well.image]), metadata={"axes": "CYX"}, photometric="minisblack")
    with pytest.raises(DevolensError, match=r"channels=\[H, D\]"):
        RowReader(three)
    with pytest.raises(DevolensError, match=r"channels=\[H, D\]"):
        read_image(three)
    assert np.array_equal(read_image(three, order=[1, 2]), well.image)
    with RowReader(three, order=[1, 2]) as r:
        assert r.shape == (2, *well.image.shape[1:])
        assert np.array_equal(r.rows(0, 256), well.image)
    named = write_ome(tmp_path / "named.ome.tif", np.concatenate([extra, well.image[::-1]]),
                      ("Brightfield", "DRAQ7", "DAPI"))
    with pytest.warns(UserWarning):
        assert np.array_equal(read_image(named), well.image)
    with pytest.raises(DevolensError, match="channel 3 does not exist"):
        RowReader(three, order=[0, 3])


@pytest.mark.parametrize("name, role", [
    ("Hoechst 33342", "hoechst"), ("Hoechst-33342", "hoechst"), ("Hoechst33342", "hoechst"), ("SiR-DNA", "hoechst"),
    ("DRAQ5", "hoechst"), ("All nuclei", "hoechst"), ("TO-PRO-3", "draq7"), ("7-AAD", "draq7"),
    ("Dead nuclei", "draq7"), ("NucRed Dead 647", "draq7"), ("SYTOX Green", "draq7"), ("Propidium iodide", "draq7"),
    ("DAPI-PI merge", None), ("DAPI/PI", None), ("Live/Dead", None), ("c:1/2 - well_dapi_pi.tif", None),
    ("Ch1", None), ("EGFP", None), ("Cy5", None), ("Brightfield", None)])
def test_stain_names(name, role):
    """Dye names with or without their hyphens; a name with both stains (a merge, a file name) says nothing;
    DRAQ5 enters living cells (every nucleus), DRAQ7 does not."""
    from devolens.data.tiling import _stain_role

    assert _stain_role(name) == role


@pytest.mark.parametrize("order", [[1, 0], [0, 2], [2, 1]])
def test_channels_option_on_interleaved_tiff(tmp_path, well, order):
    """An uncompressed (H, W, C) TIFF is read band by band with every stored channel, the chosen ones kept."""
    extra = np.full((1, *well.image.shape[1:]), 3000, np.uint16)
    stack = np.concatenate([well.image, extra])
    path = tmp_path / "yxc.tif"
    tifffile.imwrite(path, np.moveaxis(stack, 0, -1), photometric="minisblack", metadata={"axes": "YXC"})
    with RowReader(path, order=order) as r:
        assert r.layout == "YXC" and r.shape == (2, *well.image.shape[1:])
        assert np.array_equal(r.rows(7, 200), stack[order][:, 7:200])
    assert np.array_equal(read_image(path, order=order), stack[order])


def test_swapped_channels_are_warned_about(tmp_path, well, capsys):
    """Draq7 saved first and not named: every nucleus reads as dead; the run says so and --channels 1,0 fixes it."""
    swapped = tmp_path / "swapped.tif"
    tifffile.imwrite(swapped, well.image[::-1].copy(), metadata={"axes": "CYX"}, photometric="minisblack")
    code, out, err = cli(["segment", "livedead", swapped, "--out", tmp_path / "a"], capsys)
    assert code in (0, None) and "--channels 1,0" in " ".join((out + err).split())
    code, out, err = cli(["segment", "livedead", swapped, "--out", tmp_path / "b", "--channels", "1,0"], capsys)
    assert code in (0, None) and "--channels 1,0" not in " ".join((out + err).split())
    right = tmp_path / "right.tif"
    tifffile.imwrite(right, well.image, metadata={"axes": "CYX"}, photometric="minisblack")
    code, out, err = cli(["segment", "livedead", right, "--out", tmp_path / "c"], capsys)
    assert code in (0, None) and "--channels" not in " ".join((out + err).split())
    assert (tmp_path / "b" / "labels.tif").read_bytes() == (tmp_path / "c" / "labels.tif").read_bytes()


def test_tile_make_reads_named_channels_and_the_channels_option(tmp_path, well):
    import h5py

    lab = tmp_path / "lab.tif"
    tifffile.imwrite(lab, well.labels)
    named = write_ome(tmp_path / "named.ome.tif", well.image[::-1].copy(), ("DRAQ7", "Hoechst"))
    with pytest.warns(UserWarning, match="Hoechst read from channel 1"):
        tile_to_h5([named], tmp_path / "a.h5", [lab], tile=64, stride=64, keep="all")
    with h5py.File(tmp_path / "a.h5") as f:
        assert np.array_equal(f["images"][0], well.image[:, :64, :64])
    swapped = tmp_path / "swapped.tif"
    tifffile.imwrite(swapped, well.image[::-1].copy(), metadata={"axes": "CYX"}, photometric="minisblack")
    tile_to_h5([swapped], tmp_path / "c.h5", [lab], tile=64, stride=64, keep="all", order=[1, 0])
    with h5py.File(tmp_path / "c.h5") as f:
        assert np.array_equal(f["images"][0], well.image[:, :64, :64])


def test_cli_livedead_channels_option(tmp_path, well, capsys):
    three = tmp_path / "three.tif"
    tifffile.imwrite(three, np.concatenate([well.image, well.image[:1]]), metadata={"axes": "CYX"},
                     photometric="minisblack")
    code, out, err = cli(["segment", "livedead", three, "--out", tmp_path / "o"], capsys)
    assert code == 2 and "--channels H,D" in out + err and "Traceback" not in out + err
    assert not (tmp_path / "o").exists()
    code, out, err = cli(["segment", "livedead", three, "--out", tmp_path / "o", "--channels", "0,0"], capsys)
    assert code == 2 and "two different channel indices" in " ".join((out + err).split())
    code, out, err = cli(["tile", "make", three, "--out", tmp_path / "t.h5", "--keep", "all", "--tile", "64",
                          "--channels", "1,0"], capsys)
    assert code in (0, None)
    import h5py

    with h5py.File(tmp_path / "t.h5") as f:
        assert np.array_equal(f["images"][0], well.image[::-1, :64, :64])


def test_membrane_colour_note_names_the_channel_read():
    from devolens.cli.predict import _colour_note

    h, w = 256, 320
    red = np.zeros((h, w), np.uint8)
    red[::32, :] = red[:, ::32] = 200  # membranes: thin lines, faded at a nucleus's scale
    yy, xx = np.mgrid[:h, :w]
    green = np.zeros((h, w), np.float32)
    for cy in range(16, h, 32):
        for cx in range(16, w, 32):
            green += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0)
    rgb = np.stack([red, (np.clip(green, 0, 1) * 220).astype(np.uint8), np.zeros((h, w), np.uint8)], -1)
    note = _colour_note(rgb, "membrane", "auto")
    assert note is not None and "green channel was read" in note and "--color red" in note
    assert _colour_note(rgb, "nuclei", "auto") is None  # the nuclei rule reads nuclei: nothing to say
    assert _colour_note(rgb, "membrane", "max") is None  # a model of one's own: its own rule
    grey = np.repeat(red[..., None], 3, axis=-1)
    assert _colour_note(grey, "membrane", "auto") is None and _colour_note(red, "membrane", "auto") is None
    only_red = rgb.copy()
    only_red[..., 1] = 0
    assert _colour_note(only_red, "membrane", "auto") is None  # one channel with structure: read, nothing to say


def test_membrane_projection_of_a_z_stack_is_noted(tmp_path, capsys):
    import tifffile

    from devolens.cli import main

    stack = tmp_path / "z.tif"
    tifffile.imwrite(stack, (np.random.default_rng(0).random((3, 64, 80)) * 200).astype(np.uint8), imagej=True,
                     metadata={"axes": "ZYX"})
    assert main(["segment", "membrane", str(stack), "--stack-z", "project", "--out", str(tmp_path / "p"),
                 "--diameter", "none"]) == 0
    assert "trained on single slices" in capsys.readouterr().err.replace("\n", " ")
    assert main(["segment", "membrane", str(stack), "--out", str(tmp_path / "s"), "--diameter", "none"]) == 0
    assert "trained on single slices" not in capsys.readouterr().err.replace("\n", " ")  # slices: the default
