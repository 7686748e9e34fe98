"""Losses and class weights."""

import numpy as np
import pytest
import torch

from devolens.errors import DevolensError
from devolens.train.losses import (build_loss, class_frequencies, class_weights, dice_loss, focal_loss, ce_loss,
                                   poisson_loss, mse_loss, huber_loss)


def test_median_frequency_weights():
    w = class_weights([0.9, 0.1], "median_frequency")
    # median of (0.9, 0.1) is 0.5: w = 0.5 / f
    assert np.allclose(w, [0.5 / 0.9, 5.0])
    w3 = class_weights([0.7, 0.2, 0.1], "median_frequency")
    assert np.allclose(w3, [0.2 / 0.7, 1.0, 2.0])


def test_inverse_sqrt_weights_rare_class_heavier_and_mean_one():
    f = np.array([0.81, 0.09, 0.01, 0.09])
    w = class_weights(f, "inverse_sqrt")
    raw = 1 / np.sqrt(f)
    assert np.allclose(w, raw / raw.mean())
    assert w.mean() == pytest.approx(1.0)
    assert np.argmax(w) == 2 and np.argmin(w) == 0


def test_absent_class_gets_weight_one_and_bad_input_raises():
    w = class_weights([0.5, 0.0, 0.5], "median_frequency")
    assert w[1] == 1.0 and np.allclose(w[[0, 2]], 1.0)
    with pytest.raises(DevolensError):
        class_weights([0.5, 0.5], "bogus")
    with pytest.raises(DevolensError):
        class_weights([1.0], "inverse_sqrt")


def test_class_frequencies_counts_pixels():
    t = [np.array([[0, 0], [1, 2]]), np.array([[0, 0], [0, 0]])]
    assert np.allclose(class_frequencies(t, 3), [6 / 8, 1 / 8, 1 / 8])


def test_losses_are_per_sample():
    logits = torch.randn(3, 1, 8, 8)
    target = (torch.rand(3, 8, 8) > 0.5).long()
    for name in ("bce", "dice", "focal", "bce_dice", "focal_dice"):
        v = build_loss(name)(logits, target)
        assert v.shape == (3,)
    logits3 = torch.randn(2, 3, 8, 8)
    t3 = torch.randint(0, 3, (2, 8, 8))
    for name in ("ce", "ce_dice", "focal"):
        assert build_loss(name, class_weights=[1, 2, 3])(logits3, t3).shape == (2,)
    for name in ("mse", "huber", "poisson"):
        assert build_loss(name)(torch.rand(4, 3) * 5, torch.randint(0, 5, (4, 3)).float()).shape == (4,)


def test_class_weight_scales_the_weighted_class():
    logits = torch.zeros(1, 1, 4, 4)  # p = 0.5 everywhere: BCE = log 2 per pixel
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 0, :] = 1  # 4 foreground pixels of 16
    plain = ce_loss(logits, target).item()
    heavy = ce_loss(logits, target, torch.tensor([1.0, 5.0])).item()
    assert plain == pytest.approx(np.log(2))
    assert heavy == pytest.approx(np.log(2) * (12 * 1 + 4 * 5) / 16)


def test_dice_perfect_and_worst():
    t = torch.zeros(1, 8, 8, dtype=torch.long)
    t[0, 2:5, 2:5] = 1
    perfect = (t[:, None].float() * 40 - 20)
    assert dice_loss(perfect, t).item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss(-perfect, t).item() > 0.9


def test_focal_downweights_easy_pixels():
    t = torch.ones(1, 4, 4, dtype=torch.long)
    easy = torch.full((1, 1, 4, 4), 3.0)
    assert focal_loss(easy, t, gamma=2).item() < 0.1 * ce_loss(easy, t).item()
    assert focal_loss(easy, t, gamma=0).item() == pytest.approx(ce_loss(easy, t).item(), rel=1e-5)


def test_count_losses():
    p, y = torch.tensor([[2.0, 4.0]]), torch.tensor([[2.0, 1.0]])
    assert mse_loss(p, y).item() == pytest.approx(4.5)
    assert huber_loss(p, y, 1.0).item() == pytest.approx((0 + 2.5) / 2)
    # Poisson NLL is minimised at pred == truth
    y = torch.tensor([[3.0]])
    vals = [poisson_loss(torch.tensor([[r]]), y).item() for r in (1.0, 3.0, 9.0)]
    assert vals[1] < vals[0] and vals[1] < vals[2]


def test_unknown_loss():
    with pytest.raises(DevolensError, match="unknown loss"):
        build_loss("hinge")
