"""Session 33 (m1): an HDF5 tile store not written by `devolens tile` (a user's own file with 'images' and
'labels') whose dataset is a link to a missing file, or a soft link to nothing, is named in one line by
`devolens train` and `devolens evaluate` (H5TileDataset), as a devolens store already was (tiling._linked): both
gave a raw KeyError traceback from ``f["images"]``."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from devolens.data.datasets import H5TileDataset
from devolens.data.tiling import STORE_FORMAT
from devolens.errors import DevolensError

from _lineage_builders import run_cli

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "tiny_nuclei.yaml"

MISSING = r"its '{k}' is a link to '/{k}' in gone\.h5, a file that is missing \(looked for .*gone\.h5\): restore it"
DANGLING = r"its '{k}' is a link to '/nowhere', which the store does not hold"


def _own_store(path: Path, broken: str | None = None, how: str = "external", devolens: bool = False) -> Path:
    """A user's own tile file (no ``format`` attribute unless ``devolens``): 8 single-channel 64x64 tiles, labels,
    class counts and sources; ``broken`` names the dataset made a link that leads nowhere."""
    rng = np.random.default_rng(0)
    labels = np.zeros((8, 64, 64), np.uint8)
    labels[:, 20:40, 20:40] = 1
    data = {"images": rng.integers(0, 4000, (8, 1, 64, 64)).astype(np.uint16), "labels": labels,
            "class_counts": np.stack([(labels == c).sum(axis=(1, 2)) for c in (0, 1)], axis=1).astype(np.int64),
            "source": np.repeat(np.arange(4), 2).astype(np.int64)}
    with h5py.File(path, "w") as f:
        if devolens:
            f.attrs["format"] = STORE_FORMAT
        for k, v in data.items():
            if k == broken:
                f[k] = h5py.ExternalLink("gone.h5", f"/{k}") if how == "external" else h5py.SoftLink("/nowhere")
            else:
                f[k] = v
    return path


@pytest.mark.parametrize("broken", ["images", "labels", "class_counts", "source"])
@pytest.mark.parametrize("how", ["external", "soft"])
def test_train_on_own_store_with_a_broken_link_says_one_line(tmp_path, capsys, broken, how):
    store = _own_store(tmp_path / "own.h5", broken, how)
    out = tmp_path / "run"
    code, _, err = run_cli(["train", str(RECIPE), "-d", str(store), "-o", str(out), "--epochs", "1"], capsys)
    want = (MISSING if how == "external" else DANGLING).format(k=broken)
    assert code == 2 and "Traceback" not in err and "KeyError" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(f"error: {store}: ")
    assert re.search(want, lines[0])
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_own_store_with_a_link_that_resolves_still_builds(tmp_path, monkeypatch):
    """A link that leads somewhere (found beside the store, not in the current folder) is read as before."""
    from devolens.train.recipe import load_recipe
    from devolens.train.trainer import build_data

    store = _own_store(tmp_path / "own.h5")
    with h5py.File(store, "a") as f:
        images = f["images"][:]
        del f["images"]
        f["images"] = h5py.ExternalLink("data.h5", "/images")
    with h5py.File(tmp_path / "data.h5", "w") as g:
        g["images"] = images
    monkeypatch.chdir(tmp_path.parent)
    bundle = build_data(load_recipe(RECIPE), store)
    assert len(bundle.train) + len(bundle.val) == 8


@pytest.mark.parametrize("devolens", [False, True])
@pytest.mark.parametrize("broken, how, want", [("images", "external", MISSING), ("labels", "soft", DANGLING)])
def test_evaluate_dataset_names_a_broken_link(tmp_path, devolens, broken, how, want):
    """`devolens evaluate RUN -d store.h5` reads the store with H5TileDataset, which checked neither kind of store
    (a devolens store's check_store is not run there)."""
    store = _own_store(tmp_path / "s.h5", broken, how, devolens)
    with pytest.raises(DevolensError, match=want.format(k=broken)):
        H5TileDataset(store)
    whole = _own_store(tmp_path / "whole.h5", devolens=devolens)
    assert len(H5TileDataset(whole)) == 8
