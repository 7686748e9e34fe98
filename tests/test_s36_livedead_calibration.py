"""livedead.json records, per well, the calibration its labels carry (the input's pixel size), as segment.json does."""

from __future__ import annotations

import json

import numpy as np
import tifffile
import torch
from test_s31_livedead_inputs import _noisy_well, _u16

from devolens.cli import main


def _weights(tmp_path):
    from devolens.models.architectures import build_model, save_model

    torch.manual_seed(0)
    net = build_model("unet", "resnet18", in_channels=2, classes=3, encoder_depth=3, decoder_channels=(16, 8, 4))
    return save_model(net, tmp_path / "m.safetensors", {"task": "livedead"}, fp16=True)


def _run(tmp_path, name, **tiff):
    img = _u16(_noisy_well())
    tifffile.imwrite(tmp_path / name, img, **tiff)
    out = tmp_path / f"o_{name}"
    assert main(["segment", "livedead", str(tmp_path / name), "--out", str(out), "--model", str(_weights(tmp_path)),
                 "--window", "64", "--overlap", "16", "--no-fast"]) == 0
    return json.loads((out / "livedead.json").read_text())["wells"][0]["labels_pixel_size"]


def test_a_calibrated_well_records_its_pixel_size(tmp_path):
    got = _run(tmp_path, "cal.tif", imagej=True, resolution=(1 / 0.65, 1 / 0.65), metadata={"unit": "um", "axes": "CYX"})
    assert got is not None and got["unit"] == "µm" and got["from"] == "calibration"
    assert np.isclose(got["x"], 0.65, rtol=1e-3) and np.isclose(got["y"], 0.65, rtol=1e-3)


def test_an_uncalibrated_well_records_none(tmp_path):
    assert _run(tmp_path, "plain.tif") is None
