"""Model factory, save/load (safetensors + JSON, fp16) and the point-set model."""

import json

import numpy as np
import pytest
import torch

from devolens.errors import DevolensError
from devolens.models.architectures import build_model, build_pointset, build_regressor, load_model, save_model
from devolens.train.metrics import identity_scores


def test_unet_and_fpn_shapes():
    m = build_model("unet", "resnet18", in_channels=3, classes=3, encoder_depth=3, decoder_channels=[16, 8, 8])
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    assert sum(p.numel() for p in m.parameters()) < 1_000_000  # unused ResNet stages removed
    f = build_model("fpn", "resnet18", in_channels=1, classes=1, decoder_channels=32)
    assert f(torch.zeros(1, 1, 64, 64)).shape == (1, 1, 64, 64)
    with pytest.raises(DevolensError):
        build_model("segformer")
    with pytest.raises(DevolensError):
        build_model("unet", encoder_depth=3, decoder_channels=[16, 8])


def test_regressor_outputs_are_non_negative():
    r = build_regressor(in_channels=1, outputs=8, width=8)
    with torch.no_grad():
        r.head.bias.fill_(-50.0)
        y = r(torch.randn(3, 1, 64, 64))
    assert y.shape == (3, 8) and (y >= 0).all()


@pytest.mark.parametrize("fp16", [False, True])
def test_save_load_round_trip(tmp_path, fp16):
    m = build_model("unet", "resnet18", in_channels=1, classes=2, encoder_depth=3, decoder_channels=[16, 8, 8]).eval()
    path = save_model(m, tmp_path / "m.safetensors", config={"task": "segmentation", "note": "x"}, fp16=fp16)
    cfg = json.loads((tmp_path / "m.json").read_text())
    assert cfg["model"]["kind"] == "segmentation" and cfg["note"] == "x"
    m2, cfg2 = load_model(path)
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        a, b = m(x), m2(x)
    assert b.dtype == torch.float32
    assert torch.allclose(a, b, atol=5e-2 if fp16 else 0, rtol=1e-2 if fp16 else 0)
    if fp16:
        full = save_model(m, tmp_path / "full.safetensors")
        assert path.stat().st_size < 0.6 * full.stat().st_size


def test_load_errors(tmp_path):
    with pytest.raises(DevolensError, match="not found"):
        load_model(tmp_path / "none.safetensors")
    m = build_pointset(3, 4)
    p = save_model(m, tmp_path / "p.safetensors")
    (tmp_path / "p.json").unlink()
    with pytest.raises(DevolensError, match="config"):
        load_model(p)


def test_pointset_learns_a_context_dependent_labelling():
    """Class of a point = rank of its x among the cloud's points: needs the whole set."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.random((256, 4, 2)), dtype=torch.float32)
    y = torch.argsort(torch.argsort(x[..., 0], dim=1), dim=1)
    m = build_pointset(2, 4, width=32, heads=2, layers=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    for _ in range(150):
        idx = torch.randint(0, 192, (32,))
        loss = torch.nn.functional.cross_entropy(m(x[idx]).reshape(-1, 4), y[idx].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = m(x[192:]).argmax(-1)
    torch.set_num_threads(threads)
    s = identity_scores(pred.numpy().ravel(), y[192:].numpy().ravel())
    assert s["accuracy"] > 0.8  # chance is 0.25
    # a padded batch: masked points do not change the real points' predictions
    pad = torch.cat([x[192:200], torch.zeros(8, 2, 2)], dim=1)
    mask = torch.cat([torch.ones(8, 4, dtype=torch.bool), torch.zeros(8, 2, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        assert torch.allclose(m(pad, mask)[:, :4], m(x[192:200]), atol=1e-5)
