"""Fixes from the review of session 31: a sparse Draq7 channel called flat, HDF5 wells silently left out of a plate,
live/dead runs loaded without the zoo's size bounds, and recipes whose sizes the loader then refused."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import tifffile
import torch

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.predict.livedead import LiveDeadPredictor


class ChannelModel(torch.nn.Module):
    """'dead' where Draq7 is bright, 'live' where only Hoechst is."""

    def forward(self, x):
        h, d = x[:, :1], x[:, 1:2]
        return torch.cat([torch.full_like(h, 0.55), h, d + 0.1 * h], 1) * 20


def _sparse_dead_well(background: float, sigma: float, h=512, w=512, seed=0):
    """A (2, h, w) uint16 well: 24 nuclei in Hoechst, 2 of them dead (in Draq7 too): dead nuclei on under 0.1 % of
    the pixels, on a flat background of ``background`` counts with noise ``sigma`` (a low-noise camera, or 0 and 0:
    a background-subtracted export)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((2, h, w))
    yy, xx = np.mgrid[:h, :w]
    for i in range(24):
        cy, cx = 40 + (i // 6) * 110, 40 + (i % 6) * 85
        dome = np.clip(1 - ((yy - cy) ** 2 + (xx - cx) ** 2) / 36.0, 0, 1) ** 0.5 * 3000
        img[0] += dome
        if i in (0, 13):
            img[1] += dome
    assert 0 < (img[1] > 0).mean() < 0.001
    img += background + (rng.normal(0, sigma, img.shape) if sigma else 0)
    return np.clip(np.rint(img), 0, 65535).astype(np.uint16)


def _pred():
    return LiveDeadPredictor(ChannelModel(), window=128, overlap=16, fast=False, min_area=4)


# ------------------------------------------------------------------ 3. a sparse Draq7 channel is not flat
@pytest.mark.parametrize("background, sigma", [(100, 2), (0, 0)], ids=["low-noise camera", "background-subtracted"])
def test_a_few_dead_nuclei_on_a_flat_background_are_no_flat_channel(background, sigma):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all: the counts are right
        counts = _pred().predict(_sparse_dead_well(background, sigma)).counts
    assert (counts["live"], counts["dead"]) == (22, 2)


def test_a_truly_flat_channel_is_still_said():
    img = _sparse_dead_well(100, 2)
    img[1] = 400 + (np.arange(img[1].size).reshape(img[1].shape) % 7 == 0) * 3  # flat but for a level's noise
    img[1, 5, 5:15] = 9000  # and a handful of hot pixels (fewer than CLIP_PIXELS)
    with pytest.warns(UserWarning, match=r"Draq7 channel .* is flat: every pixel ~400 counts"):
        _pred().predict(img)


# ------------------------------------------------------------------ 4. HDF5 wells in a plate folder
def test_a_plate_folder_with_hdf5_wells_is_refused_naming_them(tmp_path, capsys):
    import h5py

    plate = tmp_path / "plate"
    plate.mkdir()
    for name in ("A1.h5", "A2.hdf5"):
        with h5py.File(plate / name, "w") as f:
            f["well"] = np.zeros((2, 32, 32), np.uint16)
    tifffile.imwrite(plate / "B1.tif", np.zeros((2, 32, 32), np.uint16))
    code = main(["segment", "livedead", str(plate), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code != 0
    assert "A1.h5" in err and "A2.hdf5" in err and "HDF5 well on its own" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


# ------------------------------------------------------------------ 6. live/dead runs get the zoo's size bounds
_LIVEDEAD = {"kind": "segmentation", "arch": "unet", "encoder": "resnet18", "in_channels": 2, "classes": 3,
             "encoder_depth": 3, "decoder_channels": [16, 8, 4]}


@pytest.mark.parametrize("change, field", [({"decoder_channels": [200000, 8, 4]}, "model.decoder_channels"),
                                           ({"encoder_weights": "imagenet"}, "model.encoder_weights")])
def test_a_live_dead_run_out_of_bounds_is_refused_before_building(tmp_path, change, field):
    cfg = {"task": "segmentation", "model": {**_LIVEDEAD, **change}, "input": {"target": "classes"}}
    (tmp_path / "best.safetensors").write_bytes(b"")  # never read: refused from its config
    (tmp_path / "best.json").write_text(json.dumps(cfg))
    for load, where in ((LiveDeadPredictor.from_weights, tmp_path / "best.safetensors"),
                        (LiveDeadPredictor.from_run, tmp_path), (LiveDeadPredictor.load, tmp_path)):
        with pytest.raises(DevolensError, match=field.replace(".", r"\.")) as exc:
            load(where)
        assert str(tmp_path) in str(exc.value)


# ------------------------------------------------------------------ 7. a recipe's sizes are those the loader takes
def test_recipe_sizes_have_the_loaders_upper_bounds():
    from devolens.models.zoo import _ARCH_SIZES
    from devolens.train.recipe import validate_recipe

    high, seg = _ARCH_SIZES["decoder_channels"][1], {"task": "segmentation"}
    validate_recipe({**seg, "model": {"decoder_channels": [high, 256, 64]}})
    validate_recipe({**seg, "model": {"width": _ARCH_SIZES["width"][1]}})
    with pytest.raises(DevolensError, match="model.decoder_channels"):
        validate_recipe({**seg, "model": {"decoder_channels": [high + 1, 256, 64]}})
    with pytest.raises(DevolensError, match="model.decoder_channels"):
        validate_recipe({**seg, "model": {"decoder_channels": high + 1}})
    with pytest.raises(DevolensError, match="model.width"):
        validate_recipe({**seg, "model": {"width": _ARCH_SIZES["width"][1] + 1}})


def test_card_errors_show_a_huge_value_cut_short(tmp_path):
    """A card's value shown in its error is cut to about 100 characters (a 1 MB predictor gave a 1 MB line)."""
    import json
    import shutil

    from devolens.errors import DevolensError
    from devolens.models import zoo

    folder = tmp_path / "m"
    shutil.copytree(zoo.ZOO_DIR / "nuclei", folder)
    card = json.loads((folder / "card.json").read_text())
    card["predictor"] = "x" * 1_000_000
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(DevolensError) as err:
        zoo.load(str(folder))
    assert len(str(err.value)) < 1000 and "..." in str(err.value)
