"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint is ``NAME.safetensors`` (model weights ``model/<key>``, optimizer tensors
``optim/<param index>/<key>``, torch RNG state ``rng/torch``) plus ``NAME.json`` (epoch,
optimizer hyper-parameters and scalar state, scheduler state, fp16's loss scaler state (a few
numbers), numpy and Python RNG states, and any extra JSON the trainer adds), the two written as one unit
(:func:`save_checkpoint`). Loading restores all of it, so a resumed run continues exactly as an
uninterrupted one would. Both files carry the same unit id (:data:`devolens.io.together.UNIT_KEY`): a pair of two
saves (a run killed outright between the two renames) is refused (:func:`check_checkpoint`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from devolens.errors import DevolensError
from devolens.io.atomic import write_text
from devolens.io.together import UNIT_KEY, check_unit, unit_id, write_together


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Current torch / numpy / Python RNG states as (tensors, JSON)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return ({"rng/torch": torch.get_rng_state()},
            {"numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
             "python": [py_state[0], list(py_state[1]), py_state[2]]})


def set_rng_state(tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    """Restore RNG states saved by :func:`rng_state`."""
    if "rng/torch" in tensors:
        torch.set_rng_state(tensors["rng/torch"].to(torch.uint8))
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    if "python" in state:
        p = state["python"]
        random.setstate((p[0], tuple(p[1]), p[2]))


def save_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler=None, extra: dict | None = None, scaler: torch.amp.GradScaler | None = None) -> Path:
    """Write ``path`` (.safetensors) and its ``.json`` beside it, as one unit.

    The two files are written to temporaries and renamed in place together, the JSON last
    (:func:`devolens.io.together.write_together`): after a stop (Ctrl-C, SIGTERM) or a failure (a full disk)
    both are this checkpoint's or both the previous one's (neither before the first). One of the pair alone
    could not be resumed, and the weights of one epoch beside the JSON of the epoch before would resume that
    epoch on weights that had trained it already. A process killed outright between the two renames (SIGKILL,
    a power loss) can still leave such a pair: both files carry the same unit id
    (:data:`~devolens.io.together.UNIT_KEY`, derived from the tensors), by which :func:`load_checkpoint`
    refuses it.

    Parameters
    ----------
    path : str or Path
        The safetensors file; the JSON goes to the same name with ``.json``.
    model, optimizer : torch objects
    scheduler : object with ``state_dict()`` returning JSON-able data, optional
    extra : dict, optional
        JSON-able trainer state (epoch, best metric, pruned samples, ...).
    scaler : torch.amp.GradScaler, optional
        fp16's loss scaler: its state (scale, growth tracker and factors: numbers) goes to the JSON's
        ``scaler`` (left out for none or a disabled one).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    DevolensError
        A file cannot be written (:func:`~devolens.io.together.write_together`); the previous pair stays whole.
    """
    from devolens.io.tensors import save_tensors

    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model/{k}"] = v.detach().cpu().contiguous()
    opt = optimizer.state_dict()
    opt_scalars: dict[str, dict[str, Any]] = {}
    for pid, st in opt["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim/{pid}/{k}"] = v.detach().cpu().contiguous()
            else:
                opt_scalars.setdefault(str(pid), {})[k] = v
    rng_t, rng_j = rng_state()
    tensors.update(rng_t)
    meta = {
        "optimizer": {"param_groups": opt["param_groups"], "scalars": opt_scalars},
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": rng_j,
        "extra": extra or {},
    }
    if scaler is not None and scaler.is_enabled():
        meta["scaler"] = scaler.state_dict()
    meta[UNIT_KEY] = unit_id(tensors)  # both files: one unit
    text = json.dumps(meta, default=_json_default)
    write_together({path: lambda tmp: save_tensors(tensors, tmp, metadata={UNIT_KEY: meta[UNIT_KEY]}),
                    path.with_suffix(".json"): lambda tmp: write_text(tmp, text)})
    return path


def checkpoint_remedy(path: Path) -> str:
    """What to do with the checkpoint ``path`` whose two files are from different saves (:func:`check_checkpoint`)."""
    best = path.with_name("best.safetensors")
    if best.exists():  # (removing this folder would remove the best weights too)
        return ("the checkpoint cannot be resumed: train the run anew in another --out; to keep what it learned, start "
                f"that run from this run's best weights (recipe model.init: {best})")
    return "the checkpoint cannot be resumed: train the run anew in another --out (or remove this folder first)"


def check_checkpoint(path: str | Path, meta: object = None) -> None:
    """Refuse the checkpoint ``path`` (.safetensors) whose two files carry different unit ids: the weights of one
    save beside the JSON of another (:func:`devolens.io.together.check_unit`); ``meta`` is its JSON as read (None:
    read here; a missing or unreadable JSON passes, for its reader to report). Files without ids pass."""
    path = Path(path)
    jpath = path.with_suffix(".json")
    if meta is None:
        try:
            meta = json.loads(jpath.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
    check_unit(path, jpath, meta, lambda: checkpoint_remedy(path))  # (the remedy looks for best.safetensors)


def load_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scheduler=None, restore_rng: bool = True, scaler: torch.amp.GradScaler | None = None) -> dict:
    """Restore a checkpoint written by :func:`save_checkpoint`; returns its ``extra`` dict. An enabled ``scaler``
    takes the saved loss scale where there is one (a checkpoint of a bf16 or fp32 session has none: it starts
    afresh), a disabled one ignores it (an fp16 run resumed where bf16 runs natively). Two files of different saves
    are refused (:func:`check_checkpoint`), before anything is restored."""
    from devolens.io.tensors import load_tensors

    path = Path(path)
    jpath = path.with_suffix(".json")
    if not path.exists() or not jpath.exists():
        raise DevolensError("checkpoint not found (need .safetensors and .json)", path=path)
    meta = json.loads(jpath.read_text())
    check_checkpoint(path, meta)
    tensors = load_tensors(path)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    if optimizer is not None:
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim/"):
                _, pid, name = k.split("/", 2)
                state.setdefault(int(pid), {})[name] = v
        for pid, sc in meta["optimizer"]["scalars"].items():
            state.setdefault(int(pid), {}).update(sc)
        optimizer.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    if scheduler is not None and meta.get("scheduler") is not None:
        scheduler.load_state_dict(meta["scheduler"])
    if scaler is not None and scaler.is_enabled() and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    if restore_rng:
        set_rng_state(tensors, meta.get("rng", {}))
    return meta.get("extra", {})
