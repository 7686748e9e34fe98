"""The model zoo: weights shipped inside the package, each with a measured card.

One folder per model, always the same files (whoever has read one has read all)::

    zoo/<name>/card.json            machine-readable card (see below)
    zoo/<name>/card.md              the same card for people
    zoo/<name>/weights.safetensors  fp16 weights (no pickle, never torch.load)

``card.json`` keys: ``name``, ``task``, ``summary``, ``predictor`` (dotted path
``module:Class`` of the predictor that wraps the weights; bound late so that the zoo stays a
plain registry), ``architecture`` (the config the predictor rebuilds the network from),
``input``, ``preprocessing``, ``training_data``, ``recipe``, ``command``, ``metrics``
(measured on held-out data, each with how it was measured), ``headline`` (metric names to
show in ``devolens models``) and ``limits``.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from devolens.errors import DevolensError

ZOO_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the shipped models (folders holding a ``card.json``), sorted."""
    return sorted(p.parent.name for p in ZOO_DIR.glob("*/card.json"))


def model_folder(name: str | Path) -> Path | None:
    """The folder of a model given by path, not by zoo name: an exported model (``card.json``) or a
    training run (``devolens train --out``; see :mod:`devolens.models.export`). None for a zoo name
    (a shipped model's name wins over a folder of that name in the working directory)."""
    text = str(name)
    if not text or (text in available() and "/" not in text and "\\" not in text):
        return None
    path = Path(text).expanduser()
    return path if path.is_dir() else None  # a folder without a card or a run says so when its card is read


@lru_cache(maxsize=None)
def _shipped_card(name: str) -> dict[str, Any]:
    path = ZOO_DIR / name / "card.json"
    if not path.is_file():
        names = ", ".join(available()) or "none"
        raise DevolensError(f"no model named {name!r} in the zoo (available: {names}); a model of your own is "
                            "given as a folder: a training run (devolens train --out) or an exported model "
                            "(devolens models export)")
    return json.loads(path.read_text())


def _not_a_model(text: str) -> DevolensError | None:
    """Why ``text`` (no shipped model's name, no folder) names no model, when it is plainly a path: a file (the
    weights that ``devolens train --export`` writes hold no card: what the network reads, what it segments) or a
    path that does not exist. None for a plain name (the zoo's own message lists the names)."""
    path = Path(text).expanduser()
    what = ("--model takes a zoo name (see `devolens models`) or a folder: a training run (`devolens train --out`) "
            "or a `devolens models export` folder")
    if path.suffix.lower() == ".safetensors":
        return DevolensError(f"{what}, not a weights file: give the run that wrote it, or export that run (`devolens "
                             "models export RUN --to FOLDER`)", path=path)
    if path.is_file():
        return DevolensError(f"{what}, not a file", path=path)
    if "/" in text or "\\" in text or text.startswith(("~", ".")):
        return DevolensError(f"no such model folder ({what})", path=path)
    return None


def read_json(path: Path, where: Path, hint: str = "") -> Any:
    """The JSON document in ``path`` (a model folder's or a run's file); a one-line error naming ``where``
    when it cannot be read or parsed (``hint`` is added to the latter, e.g. ": a damaged run?")."""
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise DevolensError(f"{path.name} is not valid JSON ({exc}){hint}", path=where) from None
    except OSError as exc:
        raise DevolensError(f"cannot read {path.name}: {exc.strerror or exc}", path=where) from None


def _folder_card(folder: Path) -> dict[str, Any]:
    """The ``card.json`` of an exported model (or one written by hand), checked where a wrong value would only
    fail later, deep in the predictor: a scale out of bounds resizes images to nothing or past all memory."""
    path = folder / "card.json"
    info = read_json(path, folder)
    if not isinstance(info, dict):
        raise DevolensError("not a model card (a JSON object with name, task, predictor, architecture...)", path=path)
    inp = info.get("input", {})
    if not isinstance(inp, dict):
        raise DevolensError("input is not a mapping (scale, multiple, tile...)", path=path)
    if "scale" in inp:
        from devolens.models.export import check_scale

        check_scale(inp["scale"], "input.scale", path=path)
    return info


def card(name: str | Path, kind: str | None = None, *, command: str | None = None) -> dict[str, Any]:
    """The card of model ``name`` as a dict: a shipped model's name, or the folder of a model of
    your own (an exported model's ``card.json``, or a training run's card made from its best
    checkpoint for ``kind`` ``"nuclei"`` or ``"membrane"``: :func:`devolens.models.export.card_from_run`).

    Raises
    ------
    DevolensError
        If no such model ships with this devolens and ``name`` is no model folder (a weights file is
        no model: it has no card); if a folder's card.json is broken (not JSON, ``input.scale`` not a
        finite number within the bounds of a recipe's ``data.scale``); if a training run cannot be
        used for ``kind`` (see :func:`~devolens.models.export.card_from_run`).
    """
    path = model_folder(name)
    if path is None:
        text = str(name)
        problem = None if text in available() else _not_a_model(text)
        if problem is not None:
            raise problem
        return copy.deepcopy(_shipped_card(text))  # the caller's own: editing it changes no later load
    if (path / "card.json").is_file():
        return _folder_card(path)
    from devolens.models.export import KINDS, card_from_run

    # a run is a segmentation model: asked for another task (population, identity), its card says what it is and
    # the caller refuses it by its task, instead of a complaint about the kind
    return card_from_run(path, kind if kind in KINDS else None, command=command)  # command: whose words its errors use


card.cache_clear = _shipped_card.cache_clear  # type: ignore[attr-defined]


def use_folder(path: str | Path) -> Path:
    """Read the shipped models from ``path``, a copy of the zoo with the same layout, instead of the package's
    folder, from now on in this process (cards read before are forgotten). For the maintainer's scripts that
    stage new weights and cards before they are shipped (``scripts/zoo_refresh.sh``). Returns the folder.

    Raises
    ------
    DevolensError
        If ``path`` is not a folder.
    """
    global ZOO_DIR
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DevolensError("no such zoo folder", path=folder)
    ZOO_DIR = folder
    _shipped_card.cache_clear()
    return folder


def weights_path(name: str) -> Path:
    """Path of the fp16 safetensors weights of model ``name``."""
    card(name)
    return ZOO_DIR / name / "weights.safetensors"


#: the process that loaded a model (:func:`load`), and the forked child last put in one thread (:func:`fork_guard`)
_FORKS = {"loaded": None, "guarded": None}


def note_loaded() -> None:
    """This process has a network (a zoo model, a run's, a predictor built from its class): children forked from
    now on put PyTorch in one thread before their first prediction (:func:`fork_guard`)."""
    if _FORKS["loaded"] is None:
        _FORKS["loaded"] = os.getpid()


def fork_guard() -> None:
    """Before a network runs: in a process forked from one that loaded a model ("load once, fork workers"), PyTorch
    in one thread, once. Its OpenMP (libgomp) pool does not survive a fork, and a child that used it hung for ever.
    Called where the networks run, never in an at-fork handler: those also run in the child of a ``subprocess``
    with ``preexec_fn`` (imageio-ffmpeg's), where calling into PyTorch can deadlock."""
    pid = os.getpid()
    if _FORKS["loaded"] is not None and pid != _FORKS["loaded"] and _FORKS["guarded"] != pid:
        import torch

        _FORKS["guarded"] = pid
        torch.set_num_threads(1)


def load(name: str | Path, **options: Any):
    """Load a model and return its predictor.

    Parameters
    ----------
    name : str or Path
        A shipped model's name, e.g. ``"nuclei"`` (see :func:`available`), or the folder of a
        model of your own: a segmentation run of ``devolens train`` (its best checkpoint) or a
        folder written by ``devolens models export``.
    **options
        Passed to the predictor (e.g. ``device``, ``batch_size``, ``fast``, ``scale``);
        ``kind="nuclei"|"membrane"`` says what a training run segments (default: from its
        recipe's name; the kind its recipe's name does not say is refused: export the run with
        ``--kind`` to use it so on purpose).

    Examples
    --------
    >>> from devolens.models import load  # doctest: +SKIP
    >>> nuclei = load("nuclei")  # doctest: +SKIP
    >>> result = nuclei.predict(image)  # doctest: +SKIP
    >>> mine = load("runs/my_nuclei")  # doctest: +SKIP
    """
    kind = options.pop("kind", None)
    info = card(name, kind)
    note_loaded()  # a process forked from now on runs its networks in one thread (fork_guard)
    module_name, _, cls_name = info["predictor"].partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    try:
        return cls.from_zoo(model_folder(name) or ZOO_DIR / str(name), info, **options)
    except TypeError as exc:  # a misspelt or misplaced option: say so in the user's words, not the private class's
        import re

        found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if found is None or found.group(1) not in options:
            raise
        from devolens.predict.segment import POSTPROCESS_KEYS

        hint = " (post-processing options go in postprocess={...})" if found.group(1) in POSTPROCESS_KEYS else ""
        raise DevolensError(f"load({str(name)!r}): unknown option {found.group(1)!r}{hint}; see "
                            f"help({cls.__name__}) for the options") from None


def load_weights(model, folder: str | Path):
    """Load ``folder/weights.safetensors`` into ``model`` (cast to its dtypes) and return it in eval mode.

    Parameters
    ----------
    model : torch.nn.Module
        The network rebuilt from the card's architecture.
    folder : str or Path
        The zoo folder holding ``weights.safetensors``, or a ``.safetensors`` file itself.

    Raises
    ------
    DevolensError
        If the weights are missing or do not fit the architecture.
    """
    from devolens.io.tensors import load_tensors

    weights = Path(folder)
    if weights.suffix != ".safetensors":
        weights = weights / "weights.safetensors"
    if not weights.is_file():
        raise DevolensError("model weights not found (this model has not been trained/shipped yet)", path=weights)
    return load_state(model, load_tensors(weights), weights, "weights do not match the card's architecture")


def load_state(model, state: dict, path: str | Path, problem: str = "weights do not fit this network"):
    """Load ``state`` (tensors, cast to ``model``'s dtypes) into ``model`` and return it in eval
    mode; a mismatch is a :class:`DevolensError` ``problem: ...`` naming ``path``."""
    ref = model.state_dict()
    state = {k: v.to(ref[k].dtype) if k in ref else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DevolensError(f"{problem}: {exc}", path=path) from None
    return model.eval()


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def weights_sha256(name_or_folder: str | Path) -> str:
    """The sha256 (64 hex digits) of the weights a model is loaded from: a shipped model's (or an exported folder's)
    ``weights.safetensors``, or a training run's ``best.safetensors`` (a ``.safetensors`` file is hashed as given).
    Says which weights made an output when the version number does not (weights are shipped between releases).
    Read in chunks; cached per file, its modification time and size (a rewritten file is hashed again).

    Raises
    ------
    DevolensError
        If no such model, or its weights file is missing or cannot be read.
    """
    from devolens.provenance import file_sha256

    text = str(name_or_folder)
    path = Path(text).expanduser()
    if path.suffix.lower() == ".safetensors" and path.is_file():
        weights = path
    else:
        folder = model_folder(name_or_folder)
        if folder is None:
            card(text)  # an unknown name: the zoo's own message
            folder = ZOO_DIR / text
        weights = folder / "weights.safetensors"
        if not weights.is_file() and (folder / "best.safetensors").is_file():
            weights = folder / "best.safetensors"
    try:
        stat = weights.stat()
        key = (str(weights.resolve()), stat.st_mtime_ns, stat.st_size)
        if key not in _SHA_CACHE:
            _SHA_CACHE[key] = file_sha256(weights)
    except FileNotFoundError:
        raise DevolensError("model weights not found (this model has not been trained/shipped yet)",
                            path=weights) from None
    except OSError as exc:
        raise DevolensError(f"cannot read the weights: {exc.strerror or exc}", path=weights) from None
    return _SHA_CACHE[key]
