import numpy as np
import pytest

from _render_helpers import make_table
from devolens.render.artifacts import (
    ARTIFACT_KINDS, annotation_cliff, apply_frame_artifact, plan_artifacts,
)


def _img():
    rng = np.random.default_rng(0)
    img = np.zeros((64, 80, 3), np.uint8)
    img[..., 1] = rng.integers(20, 200, (64, 80))
    return img


def test_black_and_dark():
    img = _img()
    lab = np.ones((64, 80), np.uint16)
    b, bl, _ = apply_frame_artifact(img, lab, "black", np.random.default_rng(0))
    assert b.max() == 0 and bl.max() == 0
    d, dl, info = apply_frame_artifact(img, lab, "dark", np.random.default_rng(0))
    assert d.mean() < 0.25 * img.mean() and np.array_equal(dl, lab)
    assert img.max() > 0  # input untouched


def test_red_line_and_patch_are_where_recorded():
    img = _img()
    r, _, info = apply_frame_artifact(img, None, "red_line", np.random.default_rng(1))
    for row in info["rows"]:
        assert (r[row, :, 0] >= 200).all() and (r[row, :, 1] < 30).all()
    lab = np.ones((64, 80), np.uint16)
    p, pl, info = apply_frame_artifact(img, lab, "red_patch", np.random.default_rng(2))
    y0, y1, x0, x1 = info["box"]
    assert (p[y0:y1, x0:x1, 0] > p[y0:y1, x0:x1, 1]).all()
    assert pl[y0:y1, x0:x1].max() == 0 and pl.max() == 1
    with pytest.raises(ValueError):
        apply_frame_artifact(img[..., 1], None, "red_line", np.random.default_rng(0))
    with pytest.raises(ValueError):
        apply_frame_artifact(img, None, "smudge", np.random.default_rng(0))


def test_plan_artifacts():
    plan = plan_artifacts(500, 0.5, np.random.default_rng(0))
    assert set(plan) == set(ARTIFACT_KINDS) | {""}
    assert plan[0] not in ("duplicate", "dropped")
    for a, b in zip(plan, plan[1:]):
        assert not (a == "dropped" and b == "duplicate")
    grey = plan_artifacts(300, 0.5, np.random.default_rng(0), rgb=False)
    assert "red_line" not in grey and "red_patch" not in grey
    assert plan_artifacts(50, 0.0, np.random.default_rng(0)) == [""] * 50
    with pytest.raises(ValueError):
        plan_artifacts(5, 1.5, np.random.default_rng(0))


def test_annotation_cliff():
    from devolens.lineage.populations import populations

    df = make_table(n_times=6, n_cells=40)
    c = annotation_cliff(df, 3, keep=0.1, seed=0)
    pop = populations(c).set_index("time")["total"]
    orig = populations(df).set_index("time")["total"]
    assert (pop.loc[:3] == orig.loc[:3]).all()
    assert (pop.loc[4:] <= 0.35 * orig.loc[4:]).all()
    assert c.attrs["cliff_time"] == 4
