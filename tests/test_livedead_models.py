"""``devolens segment livedead --model``: which models it takes (the zoo's, a live/dead training run's folder or
its best.safetensors, an existing folder by path) and the one-line refusals of those it cannot run (a training
checkpoint, a nuclei model); ``models export`` of a live/dead run says plainly that it is not exported."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.predict.livedead import LiveDeadPredictor


def _run(folder, in_channels=2, target="classes", normalize="log"):
    """A training run's folder as `devolens train` leaves it: best.safetensors + best.json (a tiny random U-Net),
    and checkpoint.safetensors + checkpoint.json (optimizer state, no model config: for resuming)."""
    import torch

    from devolens.models.architectures import build_model, save_model

    torch.manual_seed(0)
    net = build_model("unet", "resnet18", in_channels=in_channels, classes=3, encoder_depth=3,
                      decoder_channels=(16, 8, 4))
    name = "livedead" if in_channels == 2 else "tiny_nuclei"
    save_model(net, folder / "best.safetensors", {
        "task": "segmentation", "recipe": {"name": name}, "epoch": 0, "metrics": {"val_ap": 0.5},
        "input": {"channels": in_channels, "size": None, "scale": 1.0, "normalize": normalize, "target": target}})
    save_model(net, folder / "checkpoint.safetensors")
    (folder / "checkpoint.json").write_text(json.dumps({"optimizer": {"param_groups": []}, "scheduler": {}}))
    return folder


@pytest.fixture
def well(tmp_path):
    from devolens.render.wells import simulate_well

    path = tmp_path / "w.tif"
    tifffile.imwrite(path, simulate_well(seed=3, size=(64, 80)).image)
    return path


def _segment(well, out, model, capsys):
    code = main(["segment", "livedead", str(well), "--out", str(out), "--model", str(model), "--window", "64",
                 "--overlap", "16", "--no-fast"])
    return code, capsys.readouterr().err


def test_a_training_checkpoint_is_refused_in_one_line(tmp_path, well, capsys):
    run = _run(tmp_path / "run")
    code, err = _segment(well, tmp_path / "o", run / "checkpoint.safetensors", capsys)
    assert code == 2 and err.startswith("error:") and "Traceback" not in err
    assert "training checkpoint" in err and "run's folder or its best.safetensors" in err
    assert not (tmp_path / "o").exists()


def test_a_nuclei_model_is_refused_before_it_runs(tmp_path, well, capsys):
    run = _run(tmp_path / "nuc", in_channels=1, target="boundary", normalize="percentile")
    for model in (run / "best.safetensors", run):
        code, err = _segment(well, tmp_path / "o", model, capsys)
        assert code == 2 and "Traceback" not in err
        assert "reads 1 channel (a nuclei model?); a live/dead model reads 2: Hoechst and Draq7" in err
    with pytest.raises(DevolensError, match="'nuclei' model, not a live/dead one"):
        LiveDeadPredictor.load("nuclei")


def test_a_livedead_run_folder_loads_its_best_checkpoint(tmp_path, well, capsys):
    run = _run(tmp_path / "run")
    code, err = _segment(well, tmp_path / "o", run, capsys)
    assert code == 0, err
    assert tifffile.imread(tmp_path / "o" / "labels.tif").shape == (64, 80)
    a = LiveDeadPredictor.load(run, fast=False).predict(np.full((2, 32, 32), 500, np.uint16)).probabilities
    b = LiveDeadPredictor.load(run / "best.safetensors", fast=False).predict(np.full((2, 32, 32), 500, np.uint16))
    np.testing.assert_array_equal(a, b.probabilities)


def test_a_folder_in_the_working_directory_is_a_path_not_a_zoo_name(tmp_path, well, capsys, monkeypatch):
    _run(tmp_path / "my_ld")
    monkeypatch.chdir(tmp_path)
    code, err = _segment(well, tmp_path / "o", "my_ld", capsys)
    assert code == 0, err
    nuc = _run(tmp_path / "m_nuc", in_channels=1, target="boundary", normalize="percentile")
    (nuc / "card.json").write_text(json.dumps({"name": "m_nuc", "task": "nuclei",
                                               "predictor": "devolens.predict.segment:NucleiPredictor"}))
    code, err = _segment(well, tmp_path / "o2", "m_nuc", capsys)
    assert code == 2 and "'m_nuc' is a 'nuclei' model, not a live/dead one" in err and "weights not found" not in err


def test_runs_fed_otherwise_are_refused(tmp_path):
    with pytest.raises(DevolensError, match="normalize is 'dtype'"):
        LiveDeadPredictor.load(_run(tmp_path / "a", normalize="dtype"))
    with pytest.raises(DevolensError, match="learned target 'semantic'"):
        LiveDeadPredictor.load(_run(tmp_path / "b", target="semantic"))


def test_export_and_segment_nuclei_name_livedead_for_a_livedead_run(tmp_path, capsys):
    run = _run(tmp_path / "run")
    assert main(["models", "export", str(run), "--to", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "a live/dead run" in err and "exports nuclei and membrane runs only" in err
    assert "devolens segment livedead WELL --model" in err and "nuclei segmentation needs" not in err
    assert not (tmp_path / "m").exists()
    from devolens.models import zoo

    with pytest.raises(DevolensError, match="not a nuclei model: segment wells with it: `devolens segment livedead"):
        zoo.card(run, "nuclei")
