"""Files written inside :func:`devolens.io.together.write_together` by the atomic writers go straight into the
unit's temporary: a temporary of a temporary (``..best.tmp-P-R.tmp-P-S.safetensors``) was named so that no later run
removed it when the process was killed outright, a leftover as large as a checkpoint."""

from __future__ import annotations

import os

import numpy as np

from devolens.io import atomic
from devolens.io.atomic import atomic_path, write_text
from devolens.io.together import write_together
from devolens.io.tensors import save_tensors


def test_an_own_temporary_is_written_in_place(tmp_path):
    seen = []

    def tensors(tmp):
        with atomic_path(tmp) as inner:
            seen.append((tmp, inner))
        save_tensors({"w": np.zeros(3, np.float32)}, tmp)

    def text(tmp):
        names = sorted(p.name for p in tmp_path.iterdir())
        seen.append(names)
        write_text(tmp, "{}")

    write_together({tmp_path / "best.safetensors": tensors, tmp_path / "best.json": text})
    (outer, inner), names = seen
    assert inner == outer  # no temporary of the temporary
    assert all(not n.startswith("..") for n in names), names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.json", "best.safetensors"]


def test_other_paths_still_get_a_temporary(tmp_path):
    target = tmp_path / f".x.tmp-{os.getpid() + 1}-abcdefgh.json"  # another process's name: not ours
    with atomic_path(target) as tmp:
        assert tmp != target
        tmp.write_text("1")
    assert target.read_text() == "1"
    mine = tmp_path / f".y.tmp-{os.getpid()}-abcdefgh.json"  # our name, but no such file: not a temporary we made
    assert not atomic._own_temporary(mine)
    with atomic_path(tmp_path / "plain.json") as tmp:
        assert tmp.name.startswith(".plain.tmp-")
        tmp.write_text("2")
