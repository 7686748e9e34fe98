"""Session 41: `segment --out` may not be a model's own folder (a training run, a tune study, an export)."""

from __future__ import annotations

import numpy as np
import pytest

from devolens.cli import main
from devolens.cli._common import model_folder_words


def _image(tmp_path):
    import imageio.v2 as iio

    path = tmp_path / "img.png"
    iio.imwrite(path, (np.random.default_rng(0).random((64, 64)) * 50).astype(np.uint8))
    return path


@pytest.mark.parametrize("files,words", [
    (("run.json", "best.json", "best.safetensors"), "training run"),
    (("run.json", "checkpoint.safetensors"), "training run"),
    (("trials.csv", "trials/"), "tune study"),
    (("weights.safetensors", "card.json", "card.md"), "exported model"),
])
def test_segment_refuses_an_out_that_is_a_models_folder(tmp_path, capsys, files, words):
    out = tmp_path / "model"
    out.mkdir()
    for name in files:
        (out / name).mkdir() if name.endswith("/") else (out / name).write_text("{}")
    before = sorted(p.name for p in out.iterdir())
    assert main(["segment", "nuclei", str(_image(tmp_path)), "--out", str(out), "--diameter", "20"]) == 2
    err = capsys.readouterr().err
    assert "--out is" in err and words in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == before  # nothing written into it


def test_other_folders_are_no_models_folder(tmp_path):
    (tmp_path / "run.json").write_text("{}")  # a run.json alone (no checkpoint) is no run
    (tmp_path / "card.json").write_text("{}")  # a card without weights is no export
    assert model_folder_words(tmp_path) is None


def test_segment_livedead_refuses_an_out_that_is_a_models_folder(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("run.json", "best.json", "best.safetensors"):
        (out / name).write_text("{}")
    well = tmp_path / "well.tif"
    import tifffile

    tifffile.imwrite(well, np.zeros((2, 64, 64), np.uint16))
    assert main(["segment", "livedead", str(well), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--out is a training run's folder" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["best.json", "best.safetensors", "run.json"]


def test_segment_refuses_a_read_only_output_before_any_work(tmp_path, capsys, monkeypatch):
    import devolens.cli.predict as predict

    image = _image(tmp_path)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(image), "--out", str(out), "--diameter", "20"]) == 0
    (out / "counts.csv").chmod(0o444)
    loaded = []
    real = predict._load_predictor
    monkeypatch.setattr(predict, "_load_predictor", lambda *a, **k: loaded.append(1) or real(*a, **k))
    try:
        assert main(["segment", "nuclei", str(image), "--out", str(out), "--diameter", "20"]) == 2
    finally:
        (out / "counts.csv").chmod(0o644)
    assert "read-only" in capsys.readouterr().err and not loaded  # (refused before the model was loaded)


def test_the_note_on_a_shadowing_folder_is_for_a_typed_model_only_and_recorded(tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "nuclei"
    mine.mkdir()
    for name in ("weights.safetensors", "card.json"):
        (mine / name).write_text("{}")
    assert main(["segment", "nuclei", str(_image(tmp_path)), "--out", "plain", "--diameter", "20"]) == 0
    assert "shipped nuclei model" not in capsys.readouterr().err  # (--model not typed: the default says nothing)
    for i, model in enumerate((["--model", "nuclei"], ["--model=nuclei"])):
        assert main(["segment", "nuclei", str(_image(tmp_path)), "--out", f"o{i}", *model, "--diameter", "20"]) == 0
        err = capsys.readouterr().err
        assert "--model nuclei is the shipped nuclei model; the folder nuclei/ here" in err and "--model ./nuclei" in err
        notes = json.loads((tmp_path / f"o{i}" / "segment.json").read_text())["notes"]
        assert any("shipped nuclei model" in n for n in notes)
