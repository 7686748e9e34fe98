"""Learning-rate schedules, stepped once per epoch with the validation loss.

All schedules share one interface: ``sched.step(val_loss)`` after each epoch,
``sched.lr`` (the learning rate of the first parameter group now), ``state_dict()`` /
``load_state_dict()`` (JSON-able dicts, for exact resume).

- ``plateau``: ReduceLROnPlateau (multiply by ``factor`` once the validation loss has not improved for
  more than ``patience`` epochs: at the end of the (``patience`` + 1)-th epoch in a row without improvement,
  torch's rule; never below ``min_lr``).
- ``cosine_restarts``: CosineAnnealingWarmRestarts (cosine from the base rate to
  ``min_lr`` over ``t0`` epochs, then restart; each period ``t_mult`` times longer).
- ``cosine_kicks``: cosine decay from the base rate to a floor (``floor`` x base) over
  ``period`` epochs, then flat at the floor. Once the rate is at its floor, when ``patience``
  epochs trained at the floor have not improved the validation loss (on the best so far), the rate
  is kicked up to ``kick_factor`` x the current rate (never above the base rate) and decays again
  over ``period`` epochs to a lower floor (``floor_decay`` x the previous floor). Epochs of the
  decay never count towards a kick: a kick comes at the earliest ``period + patience`` epochs after
  the previous one (or the start), so the rate anneals to each new floor.
- ``none``: constant rate.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from devolens.errors import DevolensError

SCHEDULERS = ("none", "plateau", "cosine_restarts", "cosine_kicks")


class EpochScheduler:
    """Base: sets ``lr = base_lr_g * multiplier`` for every parameter group g."""

    name = "none"

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self.base_lrs = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        for g, b in zip(optimizer.param_groups, self.base_lrs):
            g["initial_lr"] = b
        self.epoch = 0

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _set(self, lr0: float) -> None:
        ratio = lr0 / self.base_lrs[0] if self.base_lrs[0] else 0.0
        for g, b in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = b * ratio

    def step(self, val_loss: float | None = None) -> None:
        self.epoch += 1

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "epoch": self.epoch, "base_lrs": self.base_lrs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise DevolensError(f"checkpoint scheduler {state.get('name')!r} differs from recipe scheduler {self.name!r}")
        self.epoch = int(state["epoch"])
        self.base_lrs = [float(b) for b in state["base_lrs"]]


class PlateauScheduler(EpochScheduler):
    """ReduceLROnPlateau on the validation loss."""

    name = "plateau"

    def __init__(self, optimizer, factor: float = 0.5, patience: int = 3, min_lr: float = 0.0, threshold: float = 1e-4):
        super().__init__(optimizer)
        self.inner = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=factor, patience=patience, min_lr=min_lr, threshold=threshold)

    def step(self, val_loss: float | None = None) -> None:
        if val_loss is None:
            raise DevolensError("the plateau scheduler needs a validation loss")
        super().step()
        self.inner.step(float(val_loss))

    def state_dict(self):
        s = super().state_dict()
        inner = dict(self.inner.state_dict())
        inner.pop("optimizer", None)
        s["inner"] = inner
        return s

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.inner.load_state_dict(state["inner"])


class CosineRestartsScheduler(EpochScheduler):
    """CosineAnnealingWarmRestarts, one step per epoch."""

    name = "cosine_restarts"

    def __init__(self, optimizer, t0: int = 10, t_mult: int = 1, min_lr: float = 0.0):
        super().__init__(optimizer)
        self.inner = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=int(t0), T_mult=int(t_mult),
                                                                          eta_min=float(min_lr))

    def step(self, val_loss: float | None = None) -> None:
        super().step()
        self.inner.step()

    def state_dict(self):
        s = super().state_dict()
        s["inner"] = dict(self.inner.state_dict())
        return s

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.inner.load_state_dict(state["inner"])
        for g, lr in zip(self.optimizer.param_groups, self.inner.get_last_lr()):
            g["lr"] = lr


class CosineKicksScheduler(EpochScheduler):
    """Cosine decay to a floor, with kicks on plateaus and ever lower floors (see the module's docstring).

    ``bad`` counts the epochs trained at the floor since the last improvement of the validation loss (on the
    best so far, which a kick keeps) or the last kick; epochs of a decay never count, so a kick neither comes
    mid-decay nor repeats every ``patience`` epochs on a plateau."""

    name = "cosine_kicks"

    def __init__(self, optimizer, period: int = 10, floor: float = 0.01, patience: int = 3, kick_factor: float = 10.0,
                 floor_decay: float = 0.5, threshold: float = 1e-4):
        super().__init__(optimizer)
        if period < 1 or patience < 1 or not 0 < floor < 1 or kick_factor <= 1 or not 0 < floor_decay <= 1:
            raise DevolensError("cosine_kicks needs period >= 1, patience >= 1, 0 < floor < 1, kick_factor > 1, "
                                "0 < floor_decay <= 1")
        self.period, self.patience = int(period), int(patience)
        self.kick_factor, self.floor_decay, self.threshold = float(kick_factor), float(floor_decay), float(threshold)
        base = self.base_lrs[0]
        self.floor_lr = float(floor) * base
        self.cycle_max = base
        self.cycle_start = 0
        self.best = math.inf
        self.bad = 0
        self.kicks: list[int] = []
        self._set(self._lr_at(0))

    def _lr_at(self, epoch: int) -> float:
        t = min(max(epoch - self.cycle_start, 0), self.period)
        return self.floor_lr + (self.cycle_max - self.floor_lr) * 0.5 * (1 + math.cos(math.pi * t / self.period))

    def step(self, val_loss: float | None = None) -> None:
        if val_loss is None:
            raise DevolensError("the cosine_kicks scheduler needs a validation loss")
        super().step()
        v = float(val_loss)
        trained = self.epoch - 1  # the epoch whose validation loss this is
        if v < self.best - self.threshold * abs(self.best if math.isfinite(self.best) else 0):
            self.best, self.bad = v, 0
        elif trained - self.cycle_start >= self.period:  # trained at the floor, without improvement
            self.bad += 1
        if self.bad >= self.patience:
            current = self.lr
            self.cycle_max = min(self.base_lrs[0], current * self.kick_factor)
            self.floor_lr = self.floor_lr * self.floor_decay
            self.cycle_start = self.epoch
            self.bad = 0
            self.kicks.append(self.epoch)
        self._set(self._lr_at(self.epoch))

    def state_dict(self):
        s = super().state_dict()
        s.update(floor_lr=self.floor_lr, cycle_max=self.cycle_max, cycle_start=self.cycle_start,
                 best=self.best if math.isfinite(self.best) else None, bad=self.bad, kicks=list(self.kicks))
        return s

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.floor_lr, self.cycle_max = float(state["floor_lr"]), float(state["cycle_max"])
        self.cycle_start, self.bad = int(state["cycle_start"]), int(state["bad"])
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.kicks = [int(k) for k in state["kicks"]]
        self._set(self._lr_at(self.epoch))


def build_scheduler(name: str, optimizer: torch.optim.Optimizer, **params) -> EpochScheduler:
    """A per-epoch scheduler by name (see the module docstring for the parameters).

    Parameters
    ----------
    name : {"none", "plateau", "cosine_restarts", "cosine_kicks"}
    optimizer : torch.optim.Optimizer
        Its current learning rates are the base rates.
    **params
        plateau: factor, patience, min_lr, threshold; cosine_restarts: t0, t_mult, min_lr;
        cosine_kicks: period, floor, patience, kick_factor, floor_decay, threshold.
    """
    classes = {"none": EpochScheduler, "plateau": PlateauScheduler, "cosine_restarts": CosineRestartsScheduler,
               "cosine_kicks": CosineKicksScheduler}
    if name not in classes:
        raise DevolensError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
    try:
        return classes[name](optimizer, **params)
    except TypeError as exc:
        raise DevolensError(f"bad parameters for scheduler {name!r}: {exc}") from exc


def build_optimizer(name: str, params, lr: float = 1e-3, weight_decay: float = 0.0, momentum: float = 0.9):
    """Adam, AdamW or SGD (with momentum, Nesterov) over ``params``; ``lr`` per step."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)
    raise DevolensError(f"unknown optimizer {name!r}; choose one of adam, adamw, sgd")
