"""A table row without a position is refused before any frame is rendered (render_dataset, LiveRenderDataset), not
when its frame comes (devolens render's table reader refuses such rows already); a lone ``x_Labels.tif`` is a label
image as ``x_labels.tif`` is."""

import numpy as np
import pytest

from _render_helpers import make_table
from devolens.errors import DevolensError, DevolensValueError


def _nan_at(table, time, column="x"):
    """A copy of ``table`` with one row at ``time`` holding NaN in ``column``."""
    bad = table.copy()
    bad.loc[bad.index[bad["time"] == time][0], column] = np.nan
    return bad


@pytest.fixture(scope="module")
def table():
    return make_table(n_times=6, n_cells=8, seed=5)


def _count_frames(monkeypatch):
    """Count the frame renderer's calls inside render_dataset (nuclei and membranes)."""
    import devolens.render.dataset as rd

    calls = []
    for name in ("render_nuclei_frame", "render_membrane_frame"):
        real = getattr(rd, name)
        monkeypatch.setattr(rd, name, lambda *a, _real=real, **k: (calls.append(a[1]), _real(*a, **k))[1])
    return calls


@pytest.mark.parametrize("kind", ["nuclei", "membrane"])
def test_render_refuses_a_row_without_position_before_any_frame(tmp_path, table, monkeypatch, kind):
    from devolens.render.dataset import render_dataset

    calls = _count_frames(monkeypatch)
    done = []
    out = tmp_path / "out"
    with pytest.raises(DevolensValueError, match=r"column 'x'.*time point 5.*nan"):
        render_dataset(_nan_at(table, 5), out, kind=kind, size=(32, 32), progress=lambda i, n: done.append(i))
    assert calls == [] and done == []  # refused before frames 1..4 were rendered
    assert not out.exists()
    # the same table renders when the bad time point is not planned (the check is of the planned ones only)
    df = render_dataset(_nan_at(table, 5), out, kind=kind, size=(32, 32), times=[1, 2])
    assert list(df["time"]) == [1, 2] and sorted(calls) == [1, 2]


def test_render_names_the_embryo_of_several(tmp_path, table, monkeypatch):
    from devolens.render.dataset import render_dataset

    calls = _count_frames(monkeypatch)
    other = table.assign(embryo="second")
    with pytest.raises(DevolensValueError, match=r"embryo second: column 'z'.*time point 6"):
        render_dataset([table, _nan_at(other, 6, "z")], tmp_path / "out", size=(32, 32), every=1)
    assert calls == []  # not even the first embryo's frames


def test_live_dataset_refuses_at_construction(table, monkeypatch):
    import devolens.render.nuclei as nuclei
    from devolens.data.datasets import LiveRenderDataset

    calls = []
    monkeypatch.setattr(nuclei, "render_nuclei_frame", lambda *a, **k: calls.append(a))
    bad = _nan_at(table, 4)
    with pytest.raises(DevolensValueError, match=r"column 'x'.*time point 4"):
        LiveRenderDataset([bad], size=(32, 32))  # every time point by default
    with pytest.raises(DevolensValueError, match=r"table 1 \(toy\): column 'x'.*time point 4"):
        LiveRenderDataset([table, bad], [(0, 4), (1, 2), (1, 4)], size=(32, 32))
    assert calls == []
    # samples that leave the bad time point out are fine
    ds = LiveRenderDataset([bad], [(0, 1), (0, 2.0)], size=(32, 32))
    assert ds.samples == [(0, 1), (0, 2)] and len(ds) == 2


@pytest.mark.parametrize("samples, words", [
    ([(1, 2)], "names table 1, but there are 1 table"),
    ([(0, 2.5)], "time point must be a whole number"),
    ([(0, 99)], "time point 99 not in the table"),
    ([3], "must be a pair"),
])
def test_live_dataset_checks_its_samples(table, samples, words):
    from devolens.data.datasets import LiveRenderDataset

    with pytest.raises(DevolensError, match=words):
        LiveRenderDataset([table], samples, size=(32, 32))


def test_lone_labels_files_are_no_frames_in_any_case(tmp_path):
    from devolens.io.frames import folder_files

    for name in ("a.tif", "x_Labels.tif", "y_labels.tif", "z_LABELS.png", "m_masks.tif"):
        (tmp_path / name).write_bytes(b"")
    # *_labels in any case (a render's truth, a segmentation's results) are never frames; another mask name without
    # its image beside it is read as an image
    assert [p.name for p in folder_files(tmp_path)] == ["a.tif", "m_masks.tif"]
