"""Metrics: known values and agreement with scikit-learn."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from devolens.train import metrics as M


def test_iou_dice_known_values():
    true = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 1, 1, 0]])
    s = M.semantic_scores(pred, true, 2)
    assert s["iou"][1] == pytest.approx(1 / 3)
    assert s["dice"][1] == pytest.approx(0.5)
    assert s["iou"][0] == pytest.approx(1 / 3)
    s3 = M.semantic_scores(np.zeros(4), np.zeros(4), 3)
    assert np.isnan(s3["iou"][2]) and s3["iou"][0] == 1.0


def test_instance_matching_one_to_one():
    true = np.zeros((10, 10), int)
    true[0:4, 0:4] = 1
    true[6:10, 6:10] = 2
    pred = np.zeros_like(true)
    pred[0:4, 0:3] = 5       # IoU 12/16 with true 1 -> match
    pred[6:10, 6:7] = 7      # IoU 4/16 with true 2 -> no match
    pred[0:2, 8:10] = 9      # nothing there -> false positive
    m = M.match_instances(pred, true)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 2, 1)
    assert m["pairs"].tolist() == [[5, 1]]
    s = M.instance_scores(pred, true)
    assert s["precision"] == pytest.approx(1 / 3) and s["recall"] == pytest.approx(1 / 2)
    assert s["f1"] == pytest.approx(2 * 1 / (2 * 1 + 2 + 1))


def test_a_split_object_matches_at_most_once():
    true = np.zeros((4, 8), int)
    true[:, :] = 1
    pred = np.zeros_like(true)
    pred[:, :5] = 1  # IoU 20/32 > 0.5
    pred[:, 5:] = 2  # IoU 12/32
    m = M.match_instances(pred, true)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 0)


def test_empty_images():
    z = np.zeros((5, 5), int)
    assert M.instance_scores(z, z)["f1"] == 1.0
    one = z.copy()
    one[1:3, 1:3] = 1
    assert M.instance_scores(z, one)["recall"] == 0.0
    assert M.instance_scores(one, z)["precision"] == 0.0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_average_precision_matches_sklearn(seed):
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(seed)
    y = rng.random(300) < 0.3
    if not y.any():
        y[0] = True
    # scores on the histogram grid so ties are the same for both implementations
    s = np.clip(np.round(rng.random(300) * 0.6 + y * 0.3, 3), 0, 0.999) + 0.0005
    assert M.average_precision(s, y) == pytest.approx(average_precision_score(y, s), abs=1e-9)


def test_average_precision_perfect_and_accumulable():
    y = np.array([0, 0, 1, 1])
    assert M.average_precision(np.array([0.1, 0.2, 0.8, 0.9]), y) == pytest.approx(1.0)
    a = M.score_histograms(np.array([0.1, 0.9]), np.array([0, 1]))
    b = M.score_histograms(np.array([0.2, 0.8]), np.array([0, 1]))
    assert M.ap_from_histograms(a[0] + b[0], a[1] + b[1]) == pytest.approx(1.0)
    assert np.isnan(M.average_precision(np.array([0.3]), np.array([0])))


def test_count_and_population_errors():
    c = M.count_error([3, 5, 10], [4, 5, 8])
    assert c["mae"] == pytest.approx(1.0) and c["bias"] == pytest.approx(1 / 3)
    p = M.population_mae(np.array([[1, 2], [3, 4]]), np.array([[1, 0], [1, 4]]), ["A", "E"])
    assert p == {"A": 1.0, "E": 1.0}


def test_identity_scores_match_sklearn():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(1)
    t = rng.integers(0, 5, 200)
    p = np.where(rng.random(200) < 0.7, t, rng.integers(0, 5, 200))
    s = M.identity_scores(p, t)
    assert s["accuracy"] == pytest.approx(accuracy_score(t, p))
    assert s["macro_f1"] == pytest.approx(f1_score(t, p, average="macro"))


def test_match_instances_ignores_hidden_objects():
    from devolens.train.metrics import match_instances

    true = np.zeros((20, 40), int)
    true[2:8, 2:8] = 1      # found
    true[2:8, 12:18] = 2    # missed
    true[12:18, 2:8] = 3    # ignored, found anyway
    true[12:18, 12:18] = 4  # ignored, missed
    pred = np.zeros_like(true)
    pred[2:8, 2:8] = 1
    pred[12:18, 2:8] = 2    # matches ignored 3: neither TP nor FP
    pred[13:16, 13:16] = 3  # lies inside ignored 4 without matching it: not FP
    pred[2:8, 30:36] = 4    # on background: FP
    plain = match_instances(pred, true)
    assert (plain["tp"], plain["fp"], plain["fn"]) == (2, 2, 2)
    m = match_instances(pred, true, ignore=[3, 4])
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 1)
    assert m["pairs"].tolist() == [[1, 1]]
    same = match_instances(pred, true, ignore=[])
    assert (same["tp"], same["fp"], same["fn"]) == (2, 2, 2)


@pytest.mark.parametrize("ignore", [None, [2, 5, 9]])
def test_match_instances_sparse_pairs_same_as_dense(monkeypatch, ignore):
    """Giant images (tens of thousands of objects) are matched from their overlapping pairs only (a dense
    table of every pair took 24 GB at 55k objects): the same matches, IoUs and counts."""
    from devolens.train import metrics

    rng = np.random.default_rng(4)
    true = np.zeros((120, 160), np.int64)
    pred = np.zeros_like(true)
    for k in range(1, 40):
        y, x = rng.integers(0, 110), rng.integers(0, 150)
        h, w = rng.integers(5, 11, size=2)
        true[y:y + h, x:x + w] = k
        dy, dx = rng.integers(-1, 2, size=2)
        y, x = max(0, y + dy), max(0, x + dx)
        pred[y:y + h + rng.integers(-1, 2), x:x + w + rng.integers(-1, 2)] = k + 100
    pred[rng.random(pred.shape) < 0.01] = 500  # a scattered object overlapping many
    dense = metrics.match_instances(pred, true, 0.5, ignore=ignore)
    monkeypatch.setattr(metrics, "DENSE_PAIRS", 0)
    sparse = metrics.match_instances(pred, true, 0.5, ignore=ignore)
    assert (dense["tp"], dense["fp"], dense["fn"]) == (sparse["tp"], sparse["fp"], sparse["fn"])
    assert dense["tp"] > 10
    np.testing.assert_array_equal(dense["pairs"], sparse["pairs"])
    np.testing.assert_array_equal(dense["iou"], sparse["iou"])
    assert metrics.instance_scores(pred, true) == metrics.instance_scores(pred, true)
