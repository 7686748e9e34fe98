import numpy as np
import pytest

from _render_helpers import make_table
from devolens.render.membranes import MembraneFrame, power_diagram, render_membrane_frame


@pytest.fixture(scope="module")
def table():
    return make_table(n_times=2, n_cells=30, seed=2)


def test_power_diagram_weights_move_borders():
    u = np.array([20.0, 60.0])
    v = np.array([40.0, 40.0])
    eq = power_diagram((80, 80), u, v, np.zeros(2), np.array([100.0, 100.0]))
    assert eq[40, 39] == 0 and eq[40, 41] == 1  # equal weights: the bisector
    big = power_diagram((80, 80), u, v, np.zeros(2), np.array([900.0, 100.0]))
    assert big[40, 45] == 0  # a heavier site pushes the border away
    far = power_diagram((80, 80), u, v, np.array([0.0, 30.0]), np.array([100.0, 100.0]))
    assert far[40, 45] == 0  # a site far from the slice owns less of it


def test_membrane_frame(table):
    f = render_membrane_frame(table, 1, size=(256, 320), seed=0)
    assert isinstance(f, MembraneFrame)
    assert f.image.shape == (256, 320) and f.image.dtype == np.uint8
    assert f.labels.dtype == np.uint16 and f.membrane.dtype == np.uint8
    ids = np.unique(f.labels)
    ids = ids[ids > 0]
    assert 1 < len(ids) <= (table["time"] == 1).sum()
    assert np.array_equal(ids, np.arange(1, len(ids) + 1))
    assert f.cells["cell"].is_unique and len(f.cells) == len(ids)
    assert set(np.unique(f.membrane)) == {0, 1}
    # membranes are thin: a small fraction of the embryo, and they are brighter than cell interiors
    inside = f.labels > 0
    assert f.membrane[inside].mean() < 0.25
    assert f.image[f.membrane > 0].mean() > f.image[inside & (f.membrane == 0)].mean()
    # outside the eggshell there are no cells
    assert f.labels[0, 0] == 0 and f.labels[-1, -1] == 0


def test_membrane_same_seed_same_frame(table):
    a = render_membrane_frame(table, 2, size=(96, 128), seed=5)
    b = render_membrane_frame(table, 2, size=(96, 128), seed=5)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert a.z == b.z
    c = render_membrane_frame(table, 2, size=(96, 128), seed=5, z=a.z + 5)
    assert not np.array_equal(a.labels, c.labels)
