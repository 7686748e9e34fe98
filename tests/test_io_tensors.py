"""Weights files (safetensors) are written readable like any other output and, when they cannot be read, the error
says so: safetensors alone writes 0600 files and calls a file it may not open missing."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from devolens.errors import DevolensError
from devolens.io.tensors import load_tensors, save_tensors

ZOO = Path(__file__).resolve().parents[1] / "src" / "devolens" / "models" / "zoo"


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_save_tensors_gives_the_usual_mode(tmp_path, umask_022):
    """torch and NumPy tensors alike: 0644 under a umask of 022 (not safetensors' 0600), and read back."""
    save_tensors({"w": torch.ones(3)}, tmp_path / "t.safetensors", metadata={"format": "pt"})
    save_tensors({"w": np.ones(3, np.float32)}, tmp_path / "n.safetensors")
    for name in ("t", "n"):
        assert _mode(tmp_path / f"{name}.safetensors") == 0o644
    assert torch.equal(load_tensors(tmp_path / "t.safetensors")["w"], torch.ones(3))
    assert np.array_equal(load_tensors(tmp_path / "n.safetensors", framework="np")["w"], np.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.safetensors", "t.safetensors"]  # no temporaries left


def test_size_model_and_saved_models_are_readable_by_all(tmp_path, umask_022):
    """The writers that ship weights (a size model, a saved network, an export) leave 0644 files."""
    from devolens.models.architectures import build_model, save_model
    from devolens.predict.sizing import SizeModel

    SizeModel(np.zeros(3), np.ones(3), np.zeros(3), 0.0, 0.8).save(tmp_path / "size.safetensors")
    save_model(build_model(classes=3, decoder_channels=[8, 8], encoder_depth=2), tmp_path / "net.safetensors")
    assert _mode(tmp_path / "size.safetensors") == 0o644
    assert _mode(tmp_path / "net.safetensors") == 0o644


def test_shipped_weights_are_readable_by_all():
    """The zoo's weights files in the working tree: other users of a shared install must be able to read them."""
    files = sorted(ZOO.glob("*/*.safetensors"))
    assert files
    assert [f.name for f in files if _mode(f) & 0o444 != 0o444] == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_weights_file_is_one_line_naming_it(tmp_path):
    """A model file that exists but may not be read: a DevolensError naming it and saying why, not safetensors'
    "No such file or directory"."""
    from devolens.models.zoo import load_weights
    from devolens.predict.sizing import SizeModel

    weights = tmp_path / "weights.safetensors"
    shutil.copyfile(ZOO / "identity" / "weights.safetensors", weights)
    size = tmp_path / "size_model.safetensors"
    shutil.copyfile(ZOO / "membrane" / "size_model.safetensors", size)
    os.chmod(weights, 0)
    os.chmod(size, 0)
    try:
        with pytest.raises(DevolensError, match="cannot read this file \\(permission denied") as err:
            load_weights(torch.nn.Linear(1, 1), tmp_path)
        assert str(err.value).startswith(str(weights)) and "\n" not in str(err.value)
        with pytest.raises(DevolensError, match=f"{size}: cannot read this file"):
            SizeModel.load(size)
    finally:
        os.chmod(weights, 0o644)
        os.chmod(size, 0o644)


def test_safetensors_calling_an_existing_file_missing_reads_as_unreadable(tmp_path, monkeypatch):
    """Where the open succeeds but safetensors still fails to open the file (its error: "No such file or
    directory" for a file that is there), the error says the file cannot be read, not that it is missing."""
    import safetensors.torch

    path = tmp_path / "w.safetensors"
    save_tensors({"w": torch.ones(2)}, path)

    def refuse(name, device="cpu"):
        raise FileNotFoundError(f"No such file or directory: {name}")

    monkeypatch.setattr(safetensors.torch, "load_file", refuse)
    with pytest.raises(DevolensError, match=f"{path}: cannot read this file"):
        load_tensors(path)
    with pytest.raises(FileNotFoundError):  # a file that really is missing stays the caller's to word
        load_tensors(tmp_path / "missing.safetensors")
