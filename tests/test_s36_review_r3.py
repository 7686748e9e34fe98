"""Review finds: the HDF5 chunk cache's hash table is not capped at the dataset's chunk count (HDF5 hashes a chunk
by its packed coordinates: a tile split into chunks across H and W with non-power-of-two chunk counts collided in a
table of that size, chunks thrown out with room to spare); export never writes into devolens' own model zoo (a
shipped model's folder looks like an earlier export)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from devolens.cli import main
from devolens.data.datasets import h5_tile_cache
from devolens.errors import DevolensError
from devolens.models import zoo
from devolens.models.export import _check_to


def test_the_chunk_cache_hash_table_is_not_capped_at_the_chunk_count(tmp_path):
    import h5py

    path = tmp_path / "auto.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros((64, 1, 192, 192), np.uint16), chunks=(16, 1, 72, 72),
                         compression="gzip")
        f.create_dataset("labels", data=np.zeros((64, 192, 192), np.uint8), chunks=(16, 72, 72), compression="gzip")
    with h5py.File(path, "r") as f:
        cache = h5_tile_cache([f["images"], f["labels"]], np.arange(64))
        chunks = [int(np.prod([-(-n // c) for n, c in zip(d.shape, d.chunks)])) for d in (f["images"], f["labels"])]
    for (nbytes, slots), n in zip(cache.sizes, chunks):
        assert slots > 10 * n  # (36 chunks of 3x3 per group: a table of 37 slots collided)


def test_export_refuses_a_folder_inside_the_shipped_zoo(tmp_path, capsys):
    before = sorted(p.name for p in (zoo.ZOO_DIR / "membrane").iterdir())
    with pytest.raises(DevolensError, match="inside devolens' own model zoo"):
        _check_to(zoo.ZOO_DIR / "membrane")
    assert main(["models", "export", "nuclei", "--to", str(zoo.ZOO_DIR / "membrane")]) == 2
    assert "model zoo" in capsys.readouterr().err
    assert sorted(p.name for p in (zoo.ZOO_DIR / "membrane").iterdir()) == before
    assert json.loads((zoo.ZOO_DIR / "membrane" / "card.json").read_text())["task"] == "membrane"
