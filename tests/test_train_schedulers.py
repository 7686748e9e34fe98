"""Schedulers on synthetic validation-loss curves."""

import math

import pytest
import torch

from devolens.errors import DevolensError
from devolens.train.schedulers import build_optimizer, build_scheduler


def _opt(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def _run(sched, losses):
    lrs = [sched.lr]
    for v in losses:
        sched.step(v)
        lrs.append(sched.lr)
    return lrs


def test_plateau_reduces_after_patience_and_respects_min_lr():
    s = build_scheduler("plateau", _opt(), factor=0.5, patience=2, min_lr=0.2)
    lrs = _run(s, [1.0, 0.9, 0.8] + [0.8] * 9)
    assert lrs[:4] == [1.0] * 4  # improving: no change
    # 0.8 is the best; after 3 epochs without improvement (> patience 2) the rate halves
    assert lrs[6] == pytest.approx(0.5)
    assert min(lrs) == pytest.approx(0.2)


def test_cosine_restarts_periods():
    s = build_scheduler("cosine_restarts", _opt(), t0=4, t_mult=2, min_lr=0.0)
    lrs = _run(s, [None] * 12)
    assert lrs[0] == 1.0 and lrs[4] == pytest.approx(1.0)  # restart after 4 epochs
    assert lrs[2] == pytest.approx(0.5)
    assert lrs[12] == pytest.approx(1.0)  # second period is 8 epochs
    assert lrs[8] == pytest.approx(0.5)
    assert all(lrs[i + 1] < lrs[i] for i in range(4, 11))


def test_cosine_kicks_decay_kick_and_lower_floor():
    s = build_scheduler("cosine_kicks", _opt(), period=4, floor=0.1, patience=3, kick_factor=4.0, floor_decay=0.5)
    improving = [1.0, 0.9, 0.8, 0.7, 0.6]
    flat = [0.6] * 3
    lrs = _run(s, improving + flat)
    # cosine decay to the floor over 4 epochs, then flat at the floor
    expect = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(5)]
    assert lrs[:5] == pytest.approx(expect)
    assert lrs[5] == pytest.approx(0.1)
    # 3 epochs without improvement -> kick to 4 x the current rate (0.4), new floor 0.05
    assert s.kicks == [8]
    assert lrs[8] == pytest.approx(0.4)
    more = _run(s, [0.5, 0.4, 0.3, 0.2, 0.1])[1:]
    assert all(more[i + 1] < more[i] for i in range(3))
    assert more[3] == pytest.approx(0.05)  # decays again, to the lower floor
    assert more[4] == pytest.approx(0.05)


def test_cosine_kicks_never_above_base_and_state_round_trip():
    s = build_scheduler("cosine_kicks", _opt(), period=2, floor=0.5, patience=1, kick_factor=10.0)
    lrs = _run(s, [1.0, 1.0, 1.0, 1.0])
    assert max(lrs) <= 1.0 + 1e-12
    s2 = build_scheduler("cosine_kicks", _opt(), period=2, floor=0.5, patience=1, kick_factor=10.0)
    s2.load_state_dict(s.state_dict())
    assert _run(s2, [0.9, 0.9, 0.9]) == pytest.approx(_run(s, [0.9, 0.9, 0.9]))


def test_param_groups_keep_their_ratio():
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p1], "lr": 1.0}, {"params": [p2], "lr": 0.1}])
    s = build_scheduler("cosine_kicks", opt, period=2, floor=0.1, patience=5)
    s.step(1.0)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1 * opt.param_groups[0]["lr"])


def test_bad_names_and_params():
    with pytest.raises(DevolensError):
        build_scheduler("step", _opt())
    with pytest.raises(DevolensError):
        build_scheduler("cosine_kicks", _opt(), floor=2.0)
    with pytest.raises(DevolensError):
        build_optimizer("rmsprop", [torch.nn.Parameter(torch.zeros(1))])
    sgd = build_optimizer("sgd", [torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)
    assert sgd.param_groups[0]["momentum"] == 0.9
