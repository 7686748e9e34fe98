"""The shipped models and the commands on a CUDA GPU (``device="cuda"``, ``--device cuda``): each result against the
same call on the CPU, so that a user with a GPU gets the answers the cards describe.

These run only where PyTorch sees a CUDA GPU (CI has none: they skip there; a lent GPU machine runs them, see
benchmarks/RESULTS.md, "GPU checks"). The CPU reference is the predictor's fp32 path, the GPU's default; bf16 on the
GPU is held to looser bounds (its arithmetic differs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from devolens.errors import DevolensError

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _f1(pred: np.ndarray, true: np.ndarray) -> float:
    from devolens.train.metrics import instance_scores

    return instance_scores(pred, true)["f1"]


@pytest.fixture(scope="module")
def embryo_frame():
    """A simulated embryo of ~80 cells rendered as a movie frame (RGB, 512x752) with its ground truth."""
    from devolens.lineage.simulate import simulate_embryo
    from devolens.render.nuclei import render_nuclei_frame

    table = simulate_embryo(5, n_cells=80)
    time = int(table["time"].max())
    return render_nuclei_frame(table, time, seed=3, pose="random")


@pytest.fixture(scope="module")
def membrane_frame():
    from devolens.lineage.simulate import simulate_embryo
    from devolens.render.membranes import render_membrane_frame

    table = simulate_embryo(6, n_cells=40)
    return render_membrane_frame(table, int(table["time"].max()), seed=4)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_nuclei_on_the_gpu_match_the_cpu(embryo_frame, precision):
    from devolens.models import load

    cpu = load("nuclei", device="cpu", precision="fp32", diameter=None).predict(embryo_frame.image)
    gpu_pred = load("nuclei", device="cuda", precision=precision, diameter=None)
    assert str(gpu_pred.device).startswith("cuda")
    gpu = gpu_pred.predict(embryo_frame.image)
    assert gpu.labels.shape == embryo_frame.labels.shape and gpu.labels.dtype == cpu.labels.dtype
    agree = _f1(gpu.labels, cpu.labels)
    truth_cpu, truth_gpu = _f1(cpu.labels, embryo_frame.labels), _f1(gpu.labels, embryo_frame.labels)
    print(f"nuclei {precision}: cpu {int(cpu.labels.max())} gpu {int(gpu.labels.max())} nuclei, agreement F1 "
          f"{agree:.3f}, F1 against the truth cpu {truth_cpu:.3f} gpu {truth_gpu:.3f}")
    assert agree >= (0.98 if precision == "fp32" else 0.9)
    assert abs(truth_gpu - truth_cpu) <= (0.01 if precision == "fp32" else 0.05)
    if precision == "fp32":  # (cuDNN may run fp32 convolutions in TF32: close, not equal)
        print(f"largest probability difference {float(np.abs(gpu.probability - cpu.probability).max()):.4f}")
        np.testing.assert_allclose(gpu.probability, cpu.probability, atol=0.05)


def test_int8_is_refused_on_the_gpu_in_one_line():
    from devolens.models import load

    with pytest.raises(DevolensError, match="int8 runs on the CPU"):
        load("nuclei", device="cuda", precision="int8")
    assert load("nuclei", device="cuda").precision in ("fp32", "bf16")  # auto: no int8 on a GPU


def test_nuclei_diameter_auto_on_the_gpu_estimates_as_the_cpu(embryo_frame):
    """The size model reads the network's features; on the GPU they come from the GPU's network."""
    from devolens.models import load

    small = embryo_frame.image[::2, ::2]  # half the magnification: the estimate must bring it back
    cpu = load("nuclei", device="cpu", precision="fp32", diameter="auto")
    gpu = load("nuclei", device="cuda", precision="fp32", diameter="auto")
    a, b = cpu.predict(small), gpu.predict(small)
    ea, eb = cpu.last_estimate, gpu.last_estimate
    print(f"diameter auto: cpu {ea.diameter} gpu {eb.diameter}; nuclei {int(a.labels.max())} / {int(b.labels.max())}")
    assert (ea.diameter is None) == (eb.diameter is None)
    if ea.diameter is not None:
        assert eb.diameter == pytest.approx(ea.diameter, rel=0.02)
    assert _f1(b.labels, a.labels) >= 0.95


def test_nuclei_stream_and_tiles_on_the_gpu(embryo_frame):
    """A batch of frames, and an image larger than one tile, on the GPU: the same nuclei as one frame at a time.

    Not to the bit, as on the CPU: cuDNN picks its convolution algorithms by the batch's shape, so a frame's
    probabilities in a batch of two differ from its own in the last bits, and a pixel at a tie can change sides
    (thirtieth session's H200: the labels were not identical)."""
    from devolens.models import load

    pred = load("nuclei", device="cuda", precision="fp32", diameter=None, batch_size=4)
    frames = [embryo_frame.image, embryo_frame.image[:, ::-1].copy(), embryo_frame.image]
    results = list(pred.predict_iter(frames))
    one = pred.predict(embryo_frame.image)
    for r in (results[0], results[2]):
        differ = int(((r.labels > 0) != (one.labels > 0)).sum())
        print(f"batched vs alone: {int(r.labels.max())} / {int(one.labels.max())} nuclei, agreement "
              f"{_f1(r.labels, one.labels):.4f}, {differ} pixels differ in foreground")
        assert _f1(r.labels, one.labels) >= 0.99 and differ <= 0.001 * one.labels.size
    assert np.array_equal(results[0].labels, results[2].labels)  # the same frame twice in one batch
    big = np.tile(embryo_frame.image[..., 1], (3, 3))  # 1536 x 2256: tiled at the working scale
    tiled = load("nuclei", device="cuda", precision="fp32", diameter=None, tile=256).predict(big)
    whole = load("nuclei", device="cpu", precision="fp32", diameter=None, tile=256).predict(big)
    assert tiled.labels.shape == big.shape
    assert _f1(tiled.labels, whole.labels) >= 0.98


def test_membrane_on_the_gpu_matches_the_cpu(membrane_frame):
    from devolens.models import load

    cpu = load("membrane", device="cpu", precision="fp32", diameter=None).predict(membrane_frame.image)
    gpu = load("membrane", device="cuda", precision="fp32", diameter=None).predict(membrane_frame.image)
    print(f"membrane: cpu {int(cpu.labels.max())} gpu {int(gpu.labels.max())} cells, agreement "
          f"{_f1(gpu.labels, cpu.labels):.3f}")
    assert _f1(gpu.labels, cpu.labels) >= 0.98


def test_population_on_the_gpu_matches_the_cpu(embryo_frame):
    from devolens.models import load

    cpu = load("population", device="cpu", precision="fp32").predict(embryo_frame.image)
    gpu = load("population", device="cuda", precision="fp32").predict(embryo_frame.image)
    print(f"population: cpu {cpu} gpu {gpu}")
    assert set(gpu) == set(cpu)
    assert gpu["total"] == pytest.approx(cpu["total"], rel=0.03, abs=1.0)


def test_livedead_on_the_gpu_matches_the_cpu():
    from devolens.models import load
    from devolens.render.wells import simulate_well

    well = simulate_well(seed=3, size=(512, 512)).image
    cpu = load("livedead", device="cpu", precision="fp32").predict(well)
    gpu = load("livedead", device="cuda", precision="fp32").predict(well)
    print(f"livedead: cpu {cpu.counts} gpu {gpu.counts}")
    assert gpu.labels.shape == cpu.labels.shape
    assert float(np.mean(gpu.labels == cpu.labels)) >= 0.995
    assert abs(gpu.counts["fraction_dead"] - cpu.counts["fraction_dead"]) <= 0.02


def test_identity_on_the_gpu_matches_the_cpu():
    from devolens.lineage.simulate import simulate_embryo
    from devolens.models import load

    table = simulate_embryo(0, n_cells=30)
    cpu = load("identity", device="cpu", tta=1).predict(table)
    gpu = load("identity", device="cuda", tta=1).predict(table)
    same = float(np.mean(cpu["pred_depth1"].to_numpy() == gpu["pred_depth1"].to_numpy()))
    print(f"identity: depth-1 names equal in {same:.3f} of {len(table)} rows")
    assert same >= 0.99
    np.testing.assert_allclose(gpu["confidence"], cpu["confidence"], atol=0.02)


def test_commands_with_device_cuda(embryo_frame, membrane_frame, tmp_path):
    """``devolens segment nuclei|membrane|livedead`` and ``devolens population`` with ``--device cuda``: the same
    outputs as ``--device cpu`` (counts within a nucleus or two)."""
    import tifffile

    from devolens.cli import main
    from devolens.render.wells import simulate_well

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        tifffile.imwrite(frames / f"f{i}.tif", np.ascontiguousarray(np.roll(embryo_frame.image[..., 1], 7 * i, 1)))
    counts = {}
    for dev in ("cpu", "cuda"):
        assert main(["segment", "nuclei", str(frames), "--out", str(tmp_path / f"n_{dev}"), "--device", dev,
                     "--precision", "fp32", "--no-overlay"]) == 0
        counts[dev] = pd.read_csv(tmp_path / f"n_{dev}" / "counts.csv")["count"].to_numpy()
        assert main(["population", str(frames), "--out", str(tmp_path / f"p_{dev}.csv"), "--device", dev]) == 0
    print(f"segment nuclei counts cpu {counts['cpu']} cuda {counts['cuda']}")
    assert np.abs(counts["cpu"] - counts["cuda"]).max() <= 2
    pops = [pd.read_csv(tmp_path / f"p_{d}.csv")["total"].to_numpy() for d in ("cpu", "cuda")]
    np.testing.assert_allclose(pops[1], pops[0], rtol=0.05, atol=1.0)

    tifffile.imwrite(tmp_path / "membrane.tif", membrane_frame.image)
    assert main(["segment", "membrane", str(tmp_path / "membrane.tif"), "--out", str(tmp_path / "m"),
                 "--device", "cuda", "--no-overlay"]) == 0
    assert (tmp_path / "m" / "counts.csv").is_file()

    tifffile.imwrite(tmp_path / "well.tif", simulate_well(seed=4, size=(384, 384)).image)
    assert main(["segment", "livedead", str(tmp_path / "well.tif"), "--out", str(tmp_path / "w"),
                 "--device", "cuda"]) == 0
    summary = list((tmp_path / "w").glob("*.json")) + list((tmp_path / "w").glob("*.csv"))
    assert summary, "livedead wrote no table"


def test_training_run_on_the_gpu_exports_and_loads_for_inference(tmp_path):
    """A user's own nuclei model trained on the GPU (``devolens train --device cuda``), then loaded with
    ``devolens.models.load(run)`` on the GPU and on the CPU: the same labels."""
    from devolens.cli import main
    from devolens.models import load

    data = tmp_path / "renders"
    assert main(["render", "--simulate", "1", "--out", str(data), "--every", "8", "--grey", "--size", "256", "256",
                 "--sim-cells", "60"]) == 0
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({
        "name": "nuclei_gpu_check", "task": "segmentation", "seed": 0,
        "data": {"target": "boundary", "channels": 1, "size": None, "normalize": "percentile", "val_fraction": 0.3,
                 "split_by": "sample"},
        "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 4, "decoder_channels": [32, 16, 8, 8]},
        "loss": {"name": "ce_dice"}, "optimizer": {"name": "adamw", "lr": 0.001},
        "train": {"epochs": 2, "batch_size": 4, "amp": "bf16", "device": "cuda", "monitor": "val_f1"},
    }))
    assert main(["train", str(recipe), "--data", str(data), "--out", str(tmp_path / "run")]) == 0
    image = tifffile_read_first(data)
    a = load(tmp_path / "run", device="cuda", precision="fp32", diameter=None).predict(image)
    b = load(tmp_path / "run", device="cpu", precision="fp32", diameter=None).predict(image)
    print(f"own run: largest probability difference {float(np.abs(a.probability - b.probability).max()):.4f}")
    np.testing.assert_allclose(a.probability, b.probability, atol=0.05)


def test_fp16_training_on_the_gpu_scales_its_loss_and_resumes(tmp_path):
    """``train.amp: fp16`` (the precision of GPUs without native bfloat16: T4, V100) on ``cuda:0``: float16 autocast
    with loss scaling trains to finite losses, the loss scale is saved in checkpoint.json and --resume goes on with
    it; a GPU with native bfloat16 (this one) keeps ``bf16`` as asked."""
    from _train_data import make_pairs, tiny_recipe
    from devolens.train.trainer import effective_amp, train

    pairs = make_pairs(tmp_path / "pairs", groups=3, per_group=6, size=64)
    rec = tiny_recipe(data={"target": "boundary", "channels": 1, "val_fraction": 0.34}, loss={"name": "ce_dice"},
                      train={"epochs": 2, "batch_size": 4, "amp": "fp16", "device": "cuda:0", "monitor": "val_f1"})
    res = train(rec, pairs, tmp_path / "run")
    assert res.device == "cuda:0" and len(res.history) == 2 and np.isfinite(res.history["train_loss"]).all()
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert summary["amp"] == "fp16" and summary["device"] == "cuda:0"
    scaler = json.loads((tmp_path / "run" / "checkpoint.json").read_text())["scaler"]
    print(f"fp16 on the GPU: losses {res.history['train_loss'].round(4).tolist()}, loss scale {scaler['scale']}")
    assert scaler["scale"] >= 1.0
    res = train(rec, pairs, tmp_path / "run", epochs=3, resume=True)
    assert len(res.history) == 3 and np.isfinite(res.history["train_loss"]).all()
    assert json.loads((tmp_path / "run" / "checkpoint.json").read_text())["scaler"]["scale"] >= 1.0
    if torch.cuda.is_bf16_supported(including_emulation=False):
        assert effective_amp("bf16", torch.device("cuda:0")) == ("bf16", None)


def tifffile_read_first(folder: Path) -> np.ndarray:
    from devolens.io.images import read_image

    first = sorted(p for p in folder.rglob("*") if p.suffix in (".png", ".tif") and "label" not in p.name
                   and "mask" not in p.name)[0]
    return read_image(first)
