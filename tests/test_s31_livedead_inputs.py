"""``devolens segment livedead`` on inputs that gave wrong counts, or none, without a word: saturated, flat or
clipped channels (no warning; a saturated Hoechst channel drew the swapped-channels advice), 8-bit data saved as
16-bit (read as counts 257 times too dim), a whole-cell stain ('Calcein') taken as the nuclear one, a colour PNG
whose channels ``--channels`` could not choose, and a Z-stack refused with only its shape."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import tifffile
import torch

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.predict.livedead import LiveDeadPredictor, _ChannelWatch
from devolens.predict.tiled import RowReader, predict_tiled


class DeadWhereDraq7(torch.nn.Module):
    """Logits: 'dead' where Draq7 is bright (above ~1500 counts), background elsewhere; Hoechst is not read."""

    def forward(self, x):
        d = x[:, 1:2]
        return torch.cat([torch.full_like(d, 0.65), torch.zeros_like(d), d], 1) * 20


class ChannelModel(torch.nn.Module):
    """'dead' where Draq7 is bright, 'live' where only Hoechst is."""

    def forward(self, x):
        h, d = x[:, :1], x[:, 1:2]
        return torch.cat([torch.full_like(h, 0.55), h, d + 0.1 * h], 1) * 20


def _pred(model=None):
    return LiveDeadPredictor(model or ChannelModel(), window=64, overlap=16, fast=False, min_area=4)


def _noisy_well(h=160, w=192, n=24, peak=3000, dead_every=3, seed=0):
    """A (2, h, w) float well: nuclei (domes peaking at ``peak``) on a camera background with noise, so that its
    largest value is held by a pixel or two, as a camera's is."""
    rng = np.random.default_rng(seed)
    img = np.zeros((2, h, w))
    yy, xx = np.mgrid[:h, :w]
    cents = []
    for _ in range(100 * n):
        if len(cents) == n:
            break
        cy, cx = rng.uniform(8, h - 8), rng.uniform(8, w - 8)
        if all((cy - a) ** 2 + (cx - b) ** 2 > 16 ** 2 for a, b in cents):
            cents.append((cy, cx))
    assert len(cents) == n, "no room for that many nuclei"
    for i, (cy, cx) in enumerate(cents):
        dome = np.clip(1 - ((yy - cy) ** 2 + (xx - cx) ** 2) / 36.0, 0, 1) ** 0.5 * peak
        img[0] += dome
        if i % dead_every == 0:
            img[1] += dome
    return img + 100 + rng.normal(0, 8, img.shape)


def _u16(img):
    return np.clip(np.rint(img), 0, 65535).astype(np.uint16)


def _messages(seen):
    return " | ".join(str(w.message) for w in seen)


# ------------------------------------------------------------------ 1. saturated, flat and clipped channels
def test_a_saturated_hoechst_channel_is_said_and_gets_no_swap_advice(tmp_path):
    """Read by position, 25 nuclei all dead: the swapped-channels warning, unless the Hoechst channel is saturated
    (every pixel 65535), which is then what is said."""
    img = _u16(_noisy_well(n=25, dead_every=1))
    tifffile.imwrite(tmp_path / "ok.tif", img)
    with pytest.warns(UserWarning) as seen:
        counts = _pred(DeadWhereDraq7()).predict_file(tmp_path / "ok.tif", tmp_path / "a")
    assert counts["dead"] >= 20 and "--channels 1,0" in _messages(seen)  # the swap warning still comes
    img[0] = 65535
    tifffile.imwrite(tmp_path / "sat.tif", img)
    with pytest.warns(UserWarning) as seen:
        counts = _pred(DeadWhereDraq7()).predict_file(tmp_path / "sat.tif", tmp_path / "b")
    text = _messages(seen)
    assert counts["dead"] >= 20
    assert "Hoechst channel (channel 0 of the file) is saturated" in text and "--channels 1,0" not in text


def test_a_flat_channel_is_said():
    img = _u16(_noisy_well())
    img[1] = 400  # a constant Draq7 channel: not blank, no contrast
    with pytest.warns(UserWarning, match=r"Draq7 channel .* is flat: every pixel ~400 counts"):
        _pred().predict(img)


def test_clipped_nuclei_are_said_and_a_camera_well_is_not():
    """Nuclei clipped at 65535 (the top of the range) are warned of; the same well unclipped, and a drawn well whose
    nuclei all hold one value below any range's top (3000), are not."""
    well = _noisy_well(peak=3000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _pred().predict(_u16(well))  # unclipped: no warning
        drawn = np.full((2, 160, 192), 100, np.uint16)
        drawn[:, 40:60, 40:60] = drawn[0, 100:120, 100:130] = 3000
        _pred().predict(drawn)  # nuclei of one value, not a range's top: no clipping
    with pytest.warns(UserWarning) as seen:
        _pred().predict(_u16(well * 40))  # x40: every nucleus's middle at 65535
    text = _messages(seen)
    assert "of the Hoechst channel" in text and "sit at its top value (65535)" in text
    twelve = _u16(well * 2)
    twelve[twelve > 4095] = 4095  # a 12-bit camera's saturation
    with pytest.warns(UserWarning, match=r"sit at its top value \(4095\)"):
        _pred().predict(twelve)


def test_the_channel_watch_counts_every_pixel_once_as_the_image_is_read():
    """The histogram behind these warnings comes from the bands the prediction reads (they overlap), not from a
    second pass: every pixel counted once."""
    img = _u16(_noisy_well(h=300, w=100))
    watch = _ChannelWatch(img)
    predict_tiled(watch, lambda b: np.zeros((b.shape[0], 3) + b.shape[2:], np.float32), lambda y0, r: None,
                  n_out=3, window=64, overlap=16)
    for c in range(2):
        assert np.array_equal(watch.hist[c], np.bincount(img[c].ravel(), minlength=65536))


def test_the_saturation_note_is_recorded_in_livedead_json(tmp_path, capsys):
    from devolens.models.architectures import build_model, save_model

    torch.manual_seed(0)
    net = build_model("unet", "resnet18", in_channels=2, classes=3, encoder_depth=3, decoder_channels=(16, 8, 4))
    weights = save_model(net, tmp_path / "m.safetensors", {"task": "livedead"}, fp16=True)
    img = _u16(_noisy_well())
    img[1] = 65535
    tifffile.imwrite(tmp_path / "w.tif", img)
    code = main(["segment", "livedead", str(tmp_path / "w.tif"), "--out", str(tmp_path / "o"), "--model",
                 str(weights), "--window", "64", "--overlap", "16", "--no-fast"])
    assert code == 0
    notes = json.loads((tmp_path / "o" / "livedead.json").read_text())["notes"]
    assert any("Draq7 channel (channel 1 of the file) is saturated" in n for n in notes)
    assert "is saturated" in capsys.readouterr().err


# ------------------------------------------------------------------ 2. 8-bit data saved as 16-bit
def test_8bit_values_in_a_16bit_file_are_read_as_they_are_with_a_warning(tmp_path):
    """An 8-bit export saved as 16-bit (Fiji: Image > Type > 16-bit) is warned about and read as it is: scaled
    x257 it read a stretched export 0 live / 80 dead and an empty camera well 11 'dead' (review of this session)."""
    eight = (_u16(_noisy_well()) // 40).astype(np.uint8)  # an 8-bit export: values up to ~77
    tifffile.imwrite(tmp_path / "u8in16.tif", eight.astype(np.uint16))  # Fiji: Image > Type > 16-bit
    tifffile.imwrite(tmp_path / "t.tif", eight.astype(np.uint16), tile=(32, 32), compression="zlib")
    for name in ("u8in16.tif", "t.tif"):
        with RowReader(tmp_path / name) as r:
            with pytest.warns(UserWarning, match=r"every pixel of this 16-bit image is at most 255 .*export"):
                got = r.rows(0, 50)
            assert np.array_equal(got, eight[:, :50])
            assert np.array_equal(r.rows(50, 160), eight[:, 50:160])  # decided once for the image
    with pytest.warns(UserWarning, match="at most 255"):
        _pred().predict_file(tmp_path / "u8in16.tif", tmp_path / "b")


def test_a_16bit_well_is_read_as_counts_when_any_pixel_passes_255(tmp_path):
    """One value above 255, in the last band only, makes it 16-bit (the pass reads on until it finds one); a blank
    image (every value 0) and a label image (not a well) are not scaled."""
    img = np.full((2, 600, 64), 200, np.uint16)
    img[1, -1, -1] = 256
    tifffile.imwrite(tmp_path / "w.tif", img)
    tifffile.imwrite(tmp_path / "zero.tif", np.zeros((2, 64, 64), np.uint16))
    tifffile.imwrite(tmp_path / "lab.tif", np.full((64, 64), 2, np.uint16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with RowReader(tmp_path / "w.tif") as r:
            assert np.array_equal(r.rows(0, 600), img)
        with RowReader(tmp_path / "zero.tif") as r:
            assert not r.rows(0, 64).any()
        with RowReader(tmp_path / "lab.tif", channels=None) as r:
            assert r.rows(0, 64).max() == 2


# ------------------------------------------------------------------ 3. a whole-cell stain named beside a dead stain
@pytest.mark.parametrize("names, words", [
    (["Calcein", "EthD-1"], ["'Calcein' read as the nuclear stain", "stains whole cells", "merge"]),
    (["Calcein-AM", "PI"], ["'Calcein-AM' read as the nuclear stain", "stains whole cells"]),
    (["Ch1", "DRAQ7"], ["'Ch1' read as the nuclear stain", "names no stain known here"]),
    (["Hoechst", "Calcein"], ["'Calcein' read as the dead stain", "whole living cells"]),
])
def test_a_channel_taken_from_the_other_name_alone_is_noted(tmp_path, names, words):
    from devolens.io.wells import well_channel_order

    path = tmp_path / "w.tif"
    tifffile.imwrite(path, _u16(_noisy_well()), imagej=True, metadata={"axes": "CYX", "Labels": names})
    order, note = well_channel_order(path, 2)
    assert order == [0, 1] and note is not None
    for w in words:
        assert w in note


def test_known_stains_get_no_stain_note_and_the_note_reaches_the_warnings(tmp_path):
    from devolens.io.wells import well_channel_order

    img = _u16(_noisy_well())
    tifffile.imwrite(tmp_path / "hp.tif", img, imagej=True, metadata={"axes": "CYX", "Labels": ["Hoechst", "PI"]})
    tifffile.imwrite(tmp_path / "p.tif", img[::-1], imagej=True, metadata={"axes": "CYX", "Labels": ["PI", "DAPI"]})
    assert well_channel_order(tmp_path / "hp.tif", 2) == ([0, 1], None)
    order, note = well_channel_order(tmp_path / "p.tif", 2)
    assert order == [1, 0] and "read as the" not in note
    tifffile.imwrite(tmp_path / "cp.tif", img, imagej=True, metadata={"axes": "CYX", "Labels": ["Calcein", "EthD-1"]})
    with pytest.warns(UserWarning, match="'Calcein' read as the nuclear stain"):
        _pred().predict_file(tmp_path / "cp.tif", tmp_path / "o")


# ------------------------------------------------------------------ 5. --channels for a colour PNG
def test_channels_choose_the_colours_of_a_png_with_green_signal(tmp_path):
    from devolens.data.tiling import read_image
    from devolens.io.images import write_png

    well = (_u16(_noisy_well()) // 40).astype(np.uint8)
    rgb = np.stack([well[1], well[0] // 2, well[0]], -1)  # Draq7 red, a third stain in green, Hoechst blue
    write_png(rgb, tmp_path / "w.png")
    tifffile.imwrite(tmp_path / "w.tif", rgb, photometric="rgb")
    with pytest.raises(DevolensError, match=r"signal in green.*channels=\[H, D\].*channels=\[2, 0\]"):
        RowReader(tmp_path / "w.png")
    with pytest.warns(UserWarning, match="not uint16"):
        with RowReader(tmp_path / "w.png", order=[2, 0]) as png:
            assert png.order == [2, 0] and png.shape == (2, 160, 192)
            got = png.rows(0, 160)
    with pytest.warns(UserWarning, match="not uint16"):
        with RowReader(tmp_path / "w.tif", order=[2, 0]) as tif:
            assert np.array_equal(got, tif.rows(0, 160))
    assert np.array_equal(got, well.astype(np.uint16) * 257)
    with pytest.warns(UserWarning):
        assert np.array_equal(read_image(tmp_path / "w.png", order=[2, 0]), got)  # tile make reads it so too
    with pytest.raises(DevolensError, match=r"channel 5 does not exist: the image has 3"):
        RowReader(tmp_path / "w.png", order=[5, 0])
    grey = np.repeat(well[0][..., None], 3, -1)
    write_png(grey, tmp_path / "g.png")
    with pytest.raises(DevolensError, match="grey image"):
        RowReader(tmp_path / "g.png", order=[2, 0])


# ------------------------------------------------------------------ 7. a Z-stack
def test_a_z_stack_is_refused_with_its_axes_and_how_to_get_one_plane(tmp_path):
    img = _u16(_noisy_well(h=64, w=64, n=4))
    tifffile.imwrite(tmp_path / "z.tif", np.stack([img] * 3), imagej=True, metadata={"axes": "ZCYX"})
    tifffile.imwrite(tmp_path / "q.tif", np.stack([img] * 3))
    with pytest.raises(DevolensError) as err:
        RowReader(tmp_path / "z.tif")
    text = str(err.value)
    assert "axes ZCYX" in text and "3 z planes, 2 channels" in text and "Z Project" in text
    with pytest.raises(DevolensError, match="its axes are not named"):
        RowReader(tmp_path / "q.tif")
