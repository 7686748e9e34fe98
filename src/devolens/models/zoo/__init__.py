"""The model zoo: weights shipped inside the package, each with a measured card.

One folder per model, always the same files (whoever has read one has read all)::

    zoo/<name>/card.json            machine-readable card (see below)
    zoo/<name>/card.md              the same card for people
    zoo/<name>/weights.safetensors  fp16 weights (no pickle, never torch.load)

``card.json`` keys: ``name``, ``task``, ``summary``, ``predictor`` (dotted path
``module:Class`` of the predictor that wraps the weights, one of :data:`PREDICTORS`; bound late so that
the zoo stays a plain registry), ``architecture`` (the config the predictor rebuilds the network from),
``input``, ``preprocessing``, ``training_data``, ``recipe``, ``command``, ``metrics``
(measured on held-out data, each with how it was measured), ``headline`` (metric names to
show in ``devolens models``) and ``limits``.

A model folder of one's own is data, like an image: its card is checked when read (:func:`check_card`) so that
it can name only devolens' own predictors (never a module to import), only files inside its folder, and network
sizes within bounds.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import sys
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from devolens.checks import clip, shown
from devolens.errors import StartWarning, WeightsWarning  # noqa: F401  (WeightsWarning: also here)
from devolens.errors import DevolensError, command_running
from devolens.models.export import KINDS

ZOO_DIR = Path(__file__).resolve().parent
#: the package's own zoo (:data:`ZOO_DIR` unless :func:`use_folder` chose another): weights there that differ from
#: their card's sha256 are a damaged install
PACKAGE_ZOO = ZOO_DIR


#: the predictors a card may name, by task: those of the shipped cards and of the segmentation kinds that
#: ``devolens models export`` writes (:data:`devolens.models.export.KINDS`). A card is data (a model folder is
#: downloaded and shared like an image), so its ``predictor`` is looked up here, never imported as it is written
PREDICTORS = {**KINDS, "population": "devolens.predict.population:PopulationPredictor",
              "identity": "devolens.predict.identity:IdentityPredictor",
              "livedead": "devolens.predict.livedead:LiveDeadPredictor"}


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
    # in the words of whoever asked: the command's --model, or the library's load(name) (a Python user has no flags)
    takes = ("--model takes a zoo name (see `devolens models`)" if command_running() else
             "load(name) takes a model's name (see devolens.models.available())")
    what = f"{takes} or a folder: a training run (`devolens train --out`) or a `devolens models export` folder"
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
    """The ``card.json`` of an exported model (or one written by hand), checked (:func:`check_card`)."""
    path = folder / "card.json"
    return check_card(read_json(path, folder), path)


#: bounds of the sizes an architecture (a card's, a run's best.json ``model``) gives, by key wherever it appears
#: (``architecture.network.width`` too); ``encoder_depth`` and ``in_channels`` are bounded as a recipe bounds
#: ``model.encoder_depth`` and ``data.channels`` (:func:`_arch_bounds`). The widths' bound is 4x the widest
#: default of segmentation-models-pytorch (256; the shipped models use 64 at most): a U-Net decoder as wide as
#: that holds about 0.1 G parameters, while a value past it builds a network that fills the memory before its
#: weights (which could not fit it) are read
_ARCH_SIZES = {"decoder_channels": (1, 1024), "width": (1, 1024), "classes": (1, 1024), "outputs": (1, 1024),
               "in_features": (1, 1024), "stages": (1, 16), "members": (1, 16), "heads": (1, 64), "layers": (1, 64)}
#: working-pixel bounds of a card's ``input``: ``multiple`` (inputs are padded to it: a multiple of the network's
#: stride, 2**encoder_depth), ``tile`` (a large image is segmented in tiles of this side; the shipped: 1024)
_MULTIPLE_MAX, _TILE_MAX, _INPUT_SIZE_MAX = 512, 4096, 4096


def _arch_bounds() -> dict[str, tuple[int, int]]:
    """:data:`_ARCH_SIZES` with ``encoder_depth`` and ``in_channels`` read off the recipe schema (one rule for
    training and use, as :func:`devolens.models.export.scale_bounds`)."""
    from devolens.train.recipe import SCHEMA

    depth, channels = SCHEMA["model"]["encoder_depth"], SCHEMA["data"]["channels"]
    return {**_ARCH_SIZES, "encoder_depth": (int(depth.low), int(depth.high)),
            "in_channels": (int(channels.low), int(channels.high))}


def _whole(value: Any, low: int, high: float) -> bool:
    """``value`` is an int (not a bool) from ``low`` to ``high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_architecture(arch: Any, field: str, path: Path) -> None:
    """Refuse a network config (a card's ``architecture``, a run's ``model``) whose sizes are not whole numbers
    within :func:`_arch_bounds` (at any depth: ``architecture.network.width``), or that asks for pretrained encoder
    weights (a download; the weights are the model folder's own): one line naming ``path`` and the field."""
    if not isinstance(arch, dict):
        return
    bounds = _arch_bounds()
    for key, value in arch.items():
        where = f"{field}.{key}"
        if isinstance(value, dict):
            check_architecture(value, where, path)
        elif key in bounds:
            low, high = bounds[key]
            values = value if key == "decoder_channels" and isinstance(value, list) and value else [value]
            if not all(_whole(v, low, high) for v in values):
                what = "a whole number" if key != "decoder_channels" else "whole numbers (or one)"
                raise DevolensError(f"{where} must be {what} from {low} to {high}, got {shown(value)}", path=path)
        elif key == "encoder_weights" and value is not None:
            raise DevolensError(f"{where} must be null (the weights are the model's own file; a name such as "
                                f"'imagenet' would be downloaded), got {shown(value)}", path=path)


def _check_predictor(info: dict, path: Path) -> str:
    """The card's ``predictor`` when it is one of :data:`PREDICTORS`, else a one-line :class:`DevolensError` naming
    ``path`` and the value (nothing is imported before)."""
    value = info.get("predictor")
    if value in PREDICTORS.values():
        return value
    task = info.get("task")
    if value is None:
        usual = (f": {PREDICTORS[task]!r} for a {task} model" if isinstance(task, str) and task in PREDICTORS
                 else f", one of {', '.join(PREDICTORS.values())}")
        raise DevolensError(f"card has no 'predictor' (the devolens predictor that wraps the weights{usual})",
                            path=path)
    raise DevolensError(f"predictor must be one of devolens' own predictors ({', '.join(PREDICTORS.values())}), "
                        f"got {shown(value)}", path=path)


def _composition(info: dict) -> bool:
    """A population card of method ``composition``: its ``architecture`` describes the steps in words (the
    network is the nuclei model's)."""
    return info.get("predictor") == PREDICTORS["population"] and info.get("method", "composition") == "composition"


def _check_file(folder: Path, value: Any, field: str, path: Path) -> None:
    """Refuse a file name in a card (``field``) that is absolute or resolves outside the model's ``folder`` (through
    ``..`` or a link): a model folder reads only its own files."""
    inside = isinstance(value, str) and value and not Path(value).is_absolute() and not value.startswith("~")
    if inside:
        try:
            (folder / value).resolve().relative_to(folder.resolve())
        except (ValueError, OSError):
            inside = False
    if not inside:
        raise DevolensError(f"{field} must name a file inside the model's folder (a relative path such as "
                            f"'size_model.safetensors'), got {shown(value)}", path=path)


def check_card(info: Any, path: str | Path) -> dict[str, Any]:
    """``info``, the ``card.json`` at ``path`` of a model folder (exported, copied or written by hand), when it is
    safe and sound to load; else a one-line :class:`DevolensError` naming ``path`` and the field, before anything
    is imported, opened or built. A model folder is treated as data: its ``predictor`` must be one of
    :data:`PREDICTORS` (a card without one, or without an ``architecture``, is read, and refused by :func:`load`);
    each file it names (``weights_file``, ``input.diameter.auto.file`` and its ``backdrop.file``) must lie inside
    the folder; ``nuclei_model`` (a population card) must be a shipped model's name; the sizes
    in ``architecture`` (a mapping where given) and ``total_regressor.config`` within bounds
    (:func:`check_architecture`); ``input`` a mapping or a description in words; ``input.scale``
    within a recipe's ``data.scale`` bounds (:func:`devolens.models.export.check_scale`), ``input.multiple`` and
    ``input.tile`` whole numbers of pixels in bounds. Wrong values would otherwise fail deep in the predictor (a
    scale out of bounds resizes images to nothing or past all memory, a huge network fills the memory)."""
    path = Path(path)
    folder = path.parent
    if not isinstance(info, dict):
        raise DevolensError("not a model card (a JSON object with name, task, predictor, architecture...)", path=path)
    if "predictor" in info:  # (a card without one still says its task, input and post-processing: evaluate reads
        _check_predictor(info, path)  # those; load refuses it)
    if "weights_file" in info:
        _check_file(folder, info["weights_file"], "weights_file", path)
    if "nuclei_model" in info and not (isinstance(info["nuclei_model"], str) and info["nuclei_model"] in available()):
        raise DevolensError(f"nuclei_model must be a shipped model's name ({', '.join(available())}), got "
                            f"{shown(info['nuclei_model'])}", path=path)
    arch = info.get("architecture")
    if arch is not None and not isinstance(arch, dict) and not _composition(info):
        raise DevolensError("architecture is not a mapping (the network's config: kind, arch, encoder...)", path=path)
    check_architecture(arch, "architecture", path)
    reg = info.get("total_regressor")
    if isinstance(reg, dict):
        check_architecture(reg.get("config"), "total_regressor.config", path)
        _check_sizes(reg.get("input_size"), "total_regressor.input_size", path)
    inp = info.get("input", {})
    if isinstance(inp, str):  # a description only (the identity card's: a lineage table)
        return info
    if not isinstance(inp, dict):
        raise DevolensError("input is not a mapping (scale, multiple, tile...)", path=path)
    if "scale" in inp:
        from devolens.models.export import check_scale

        check_scale(inp["scale"], "input.scale", path=path)
    stride = 2 ** arch["encoder_depth"] if isinstance(arch, dict) and _whole(arch.get("encoder_depth"), 0, 5) else 1
    multiple = inp.get("multiple")
    if multiple is not None and not (_whole(multiple, 1, _MULTIPLE_MAX) and multiple % stride == 0):
        raise DevolensError(f"input.multiple must be a multiple of the network's stride ({stride}, 2**encoder_depth) "
                            f"from {stride} to {_MULTIPLE_MAX} pixels, got {shown(multiple)}", path=path)
    tile, least = inp.get("tile"), 2 * (multiple or stride)  # the predictor's own least tile
    if tile is not None and not _whole(tile, least, _TILE_MAX):
        twice = "input.multiple" if multiple else "the network's stride"
        raise DevolensError(f"input.tile must be null (whole images) or a side from {least} (twice {twice}) to "
                            f"{_TILE_MAX} pixels, got {shown(tile)}", path=path)
    if isinstance(inp.get("size"), list):
        _check_sizes(inp["size"], "input.size", path)
    auto = (inp.get("diameter") or {}).get("auto") if isinstance(inp.get("diameter"), dict) else None
    if isinstance(auto, dict):
        if "file" in auto:
            _check_file(folder, auto["file"], "input.diameter.auto.file", path)
        if isinstance(auto.get("backdrop"), dict) and "file" in auto["backdrop"]:
            _check_file(folder, auto["backdrop"]["file"], "input.diameter.auto.backdrop.file", path)
    return info


def _check_sizes(value: Any, field: str, path: Path) -> None:
    """Refuse an image size (``[height, width]``) that is not two whole numbers of pixels in bounds (None: none
    given)."""
    if value is not None and not (isinstance(value, list) and len(value) == 2
                                  and all(_whole(v, 1, _INPUT_SIZE_MAX) for v in value)):
        raise DevolensError(f"{field} must be [height, width], whole numbers of pixels from 1 to {_INPUT_SIZE_MAX}, "
                            f"got {shown(value)}", path=path)


def model_task(info: dict[str, Any]) -> str | None:
    """The task the card ``info`` is a model of, as the commands and ``load(kind=...)`` name it (``nuclei``,
    ``membrane``, ``population``, ``identity``, ``livedead``): its ``task`` where that is one of them, else the task
    whose predictor it names (the livedead card's ``task`` is a sentence that describes it), else its ``task`` as
    written."""
    task = info.get("task")
    if task in PREDICTORS:
        return task
    named = [name for name, predictor in PREDICTORS.items() if predictor == info.get("predictor")]
    return named[0] if named else task


def card(name: str | Path, kind: str | None = None, *, command: str | None = None) -> dict[str, Any]:
    """The card of model ``name`` as a dict: a shipped model's name, or the folder of a model of
    your own (an exported model's ``card.json``, or a training run's card made from its best
    checkpoint for ``kind`` ``"nuclei"`` or ``"membrane"``: :func:`devolens.models.export.card_from_run`).

    Raises
    ------
    DevolensError
        If no such model ships with this devolens and ``name`` is no model folder (a weights file is
        no model: it has no card); if a folder's card.json is broken or unsafe (not JSON, a predictor
        not devolens' own, a file outside the folder, sizes out of bounds: :func:`check_card`); if a
        training run cannot be used for ``kind`` (see :func:`~devolens.models.export.card_from_run`) or
        its best.json gives network sizes out of bounds (:func:`check_architecture`).
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
    from devolens.models.export import card_from_run

    # a run is a segmentation model: asked for another task (population, identity), its card says what it is and
    # the caller refuses it by its task, instead of a complaint about the kind
    info = card_from_run(path, kind if kind in KINDS else None, command=command)  # command: whose words its errors use
    check_architecture(info.get("architecture"), "model", path / "best.json")  # a run is shared like a model folder
    return info


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
    # (without torch loaded there is no OpenMP pool to guard: onnxruntime's int8 network; a later call guards it)
    if _FORKS["loaded"] is not None and pid != _FORKS["loaded"] and _FORKS["guarded"] != pid and "torch" in sys.modules:
        import torch

        _FORKS["guarded"] = pid
        torch.set_num_threads(1)


def load(name: str | Path, **options: Any):
    """Load a model and return its predictor.

    Parameters
    ----------
    name : str or Path
        A shipped model's name, e.g. ``"nuclei"`` (see :func:`available`), or the folder of a
        model of your own: a segmentation or count (``task: population``) run of ``devolens train`` (its best
        checkpoint) or a folder written by ``devolens models export``. A count run's predictor
        (:class:`~devolens.predict.population.PopulationPredictor`, method ``regressor``) reads each frame as its
        training frames were read; it takes ``batch_size``, ``fast``, ``precision`` and ``device`` (its network runs
        on the CPU), not ``diameter`` nor ``channel``.
    **options
        Passed to the predictor (e.g. ``device``, ``batch_size``, ``fast``, ``scale``, ``diameter``);
        ``kind="nuclei"|"membrane"`` says what a training run segments (default: from its
        recipe's name; the kind its recipe's name does not say is refused: export the run with
        ``--kind`` to use it so on purpose); for a shipped model or an exported folder, a ``kind`` other than
        its card's task is refused.

        ``diameter`` (nuclei and membrane models: the objects' typical diameter in input pixels, ``"auto"``,
        ``"each"`` or None) is None by default here: the images are used as they are, at the model's own scale,
        not resized. ``devolens segment``'s default is ``--diameter auto`` (each stream's magnification
        estimated and the images resized to the model's): ``load("nuclei", diameter="auto")`` (or
        ``predict(image, diameter="auto")``) gives the command's counts, which on images at another
        magnification than the training data's can differ much from the library's default. ``"none"``
        (the command's ``--diameter none``) is None.

    Examples
    --------
    >>> from devolens.models import load  # doctest: +SKIP
    >>> nuclei = load("nuclei")  # doctest: +SKIP
    >>> result = nuclei.predict(image)  # doctest: +SKIP
    >>> as_the_command = load("nuclei", diameter="auto")  # devolens segment's --diameter auto  # doctest: +SKIP
    >>> mine = load("runs/my_nuclei")  # doctest: +SKIP
    """
    cls, folder, info = _predictor_class(name, options)
    try:
        return cls.from_zoo(folder, info, **options)
    except TypeError as exc:  # a misspelt or misplaced option: say so in the user's words, not the private class's
        import inspect
        import re

        found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if found is None or found.group(1) not in options:
            raise
        from devolens.predict.segment import POSTPROCESS_KEYS

        hint = " (post-processing options go in postprocess={...})" if found.group(1) in POSTPROCESS_KEYS else ""
        if found.group(1) in ("color", "colour") and "channel" in inspect.signature(cls.__init__).parameters:
            # the command's --color is the predictors' channel (cellpose and StarDist users reach for it too)
            wanted = options[found.group(1)]
            hint = f" (an RGB image's channel is channel={wanted!r} here)" if isinstance(wanted, str) else \
                " (an RGB image's channel is channel='red', 'green', 'blue', 'mean' or 'max' here)"
        raise DevolensError(f"load({str(name)!r}): unknown option {found.group(1)!r}{hint}; see "
                            f"help({cls.__module__}.{cls.__qualname__}) for the options") from None


def _load(name: str | Path, **options: Any):
    """:func:`load`, leaving an option the predictor does not take as its ``TypeError``: for a predictor that loads
    another model with its own options (the population model its nuclei model), so that the user's ``load`` names
    the model they loaded and its class, not the inner one."""
    cls, folder, info = _predictor_class(name, options)
    return cls.from_zoo(folder, info, **options)


def _predictor_class(name: str | Path, options: dict) -> tuple[type, Path, dict]:
    """The predictor class, folder and card that :func:`load` loads ``name`` with (``options``' ``kind`` taken out of
    them), refusing a card without its network's config, or a ``kind`` other than the card's task."""
    kind = options.pop("kind", None)
    info = card(name, kind)
    if kind is not None and model_task(info) != kind:
        # kind chooses what a training run segments; a model's card fixes its task, and the predictor follows the
        # card: load("nuclei", kind="membrane") returned the nuclei predictor without a word
        raise DevolensError(f"load({str(name)!r}, kind={kind!r}): {str(name)!r} is a {model_task(info)!r} model "
                            f"(its card's task); leave kind out, or load a {kind} model")
    folder = model_folder(name)
    # one of devolens' own predictors, looked up before anything is imported (a folder's card was checked so when
    # read; a shipped card, or a zoo folder of use_folder's, is held to the same list)
    where = (folder or ZOO_DIR / str(name)) / "card.json"
    predictor = _check_predictor(info, where)
    if not isinstance(info.get("architecture"), dict) and not _composition(info):
        # (checked here, as a missing predictor, not when a card is read: a card without them still says what it is,
        # e.g. to a live/dead command refusing a nuclei model by its predictor, or to evaluate)
        raise DevolensError("card has no 'architecture' (the network's config: kind, arch, encoder...)", path=where)
    check_weights(folder or ZOO_DIR / str(name), info, stacklevel=3)  # (load's caller)
    check_start(folder, info, stacklevel=3)
    note_loaded()  # a process forked from now on runs its networks in one thread (fork_guard)
    module_name, _, cls_name = predictor.partition(":")
    return getattr(importlib.import_module(module_name), cls_name), folder or ZOO_DIR / str(name), info


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
        raise DevolensError(f"{problem}: {_first_mismatch(exc)}", path=path) from None
    return model.eval()


def _first_mismatch(exc: RuntimeError) -> str:
    """PyTorch's ``load_state_dict`` error (a heading, then a line per size mismatch and one listing all missing
    keys, one all unexpected ones: often hundreds of keys) as one line: its first line, cut short, and how many
    tensors do not fit in all."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    details = [line for line in lines if not line.lower().startswith("error(s) in loading state_dict")]
    if not details:
        return clip(" ".join(lines))

    def keys(line: str) -> int:  # a key list ("Missing key(s) in state_dict: "a", "b".): its keys; else one
        if line.lower().startswith(("missing key", "unexpected key")):
            return max(1, line.count('"') // 2)
        return 1

    total = sum(keys(line) for line in details)
    first = clip(details[0], 200)
    return first if total <= 1 else f"{first} ({total} tensors do not fit in all)"


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def weights_mismatch(folder: str | Path, info: dict[str, Any]) -> str | None:
    """In words, how the weights of the model in ``folder`` (its card ``info``'s ``weights_file``, else
    ``weights.safetensors``) differ from the sha256 the card records (``weights_sha256``); None where they match, the
    card records none (a training run's) or the file is missing or unreadable (loading it says so). The file is
    hashed once per path, size and modification time (:func:`weights_sha256`). A folder of the package's own zoo is
    a damaged install; any other (a copy, an export) had its weights replaced or damaged after its card was written.
    The one text of :func:`check_weights` and ``devolens models show``."""
    recorded = info.get("weights_sha256")
    if not isinstance(recorded, str):
        return None
    folder = Path(folder)
    weights = folder / (info.get("weights_file") or "weights.safetensors")
    try:
        sha = weights_sha256(weights) if weights.is_file() else recorded
    except DevolensError:
        return None
    if sha == recorded:
        return _size_models_mismatch(folder, info)
    said = f"has sha256 {sha}, not the {recorded} its card records (weights_sha256)"
    if _in_package_zoo(folder):
        return (f"the shipped {folder.name} model's weights {weights} {said}: a damaged install, whose results the "
                "card's figures do not describe; reinstall devolens")
    return (f"{weights} {said}: the weights were replaced or damaged after the card was written, so the card's figures "
            "do not describe them; copy the model's folder again (devolens models export)")


def _in_package_zoo(folder: Path) -> bool:
    """Whether ``folder`` is one of the package's own zoo folders (a file there not the card's: a damaged install)."""
    try:
        return folder.resolve().parent == PACKAGE_ZOO.resolve()
    except OSError:
        return False


def _size_models_mismatch(folder: Path, info: dict[str, Any]) -> str | None:
    """In words, which size models of the model in ``folder`` (the files its card ``info``'s ``files_sha256`` names,
    :func:`devolens.models.export.write_card`) differ from the sha256 recorded there; None where every one present
    matches (a missing one: loading it says so)."""
    recorded = info.get("files_sha256")
    if not isinstance(recorded, dict):
        return None
    differ = []
    for name, expected in recorded.items():
        path = folder / str(name)
        if not isinstance(expected, str) or Path(str(name)).name != str(name) or not path.is_file():
            continue
        try:
            if weights_sha256(path) != expected:
                differ.append(path)
        except DevolensError:
            continue
    if not differ:
        return None
    from devolens.models.export import _onnx_files

    graphs = _onnx_files(info)  # the onnx backend's network (scripts/zoo_onnx.py), not a size model
    kind = "ONNX file" if all(p.name in graphs for p in differ) else "file" if any(p.name in graphs for p in differ) \
        else "size model"
    files = ", ".join(str(p) for p in differ)
    said = (f"{kind} {files} is not the one its card records (files_sha256)" if len(differ) == 1 else
            f"{kind}s {files} are not the ones its card records (files_sha256)")
    if _in_package_zoo(folder):
        return f"the shipped {folder.name} model's {said}: a damaged install; reinstall devolens"
    what = ("the magnification estimate (--diameter auto)" if kind == "size model" else
            "the onnx backend's results (--backend onnx)" if kind == "ONNX file" else
            "the magnification estimate and the onnx backend's results")
    return (f"the {said}: replaced or damaged after the card was written, so {what} may not be the card's; copy the "
            "model's folder again (devolens models export)")


def check_weights(folder: str | Path, info: dict[str, Any], stacklevel: int = 2) -> None:
    """Warn (:class:`WeightsWarning`) where the weights of the model in ``folder`` are not the ones its card ``info``
    records (:func:`weights_mismatch`): loading a model checks so. ``stacklevel`` as :func:`warnings.warn`'s, counted
    from the caller's frame (1: the line calling this, 2: its caller's)."""
    problem = weights_mismatch(folder, info)
    if problem is not None:
        warnings.warn(problem, WeightsWarning, stacklevel=stacklevel + 1)


def check_start(folder: str | Path | None, info: dict[str, Any], stacklevel: int = 2) -> None:
    """Warn (:class:`StartWarning`) where ``folder`` is a training run that did not train all the epochs its recipe
    sets (interrupted, or still training; not one that ``train.early_stop`` ended: ``trained["unfinished"]``), or
    that fine-tuned starting weights and no epoch
    of which beat them (its card ``info``'s ``trained["note"]``, from run.json's ``start``:
    :func:`devolens.models.export._run_start`), or a model exported from such a run (its card.json keeps the note:
    whoever is given the folder is told too), in the words ``devolens train`` and ``models export`` say it; never
    for a shipped model (``folder`` None, or one of the zoo's folders). ``stacklevel`` as :func:`check_weights`'."""
    if folder is None:
        return
    try:
        shipped = Path(folder).resolve().parent in (PACKAGE_ZOO.resolve(), Path(ZOO_DIR).resolve())
    except OSError:
        shipped = False
    if shipped:
        return
    trained = info.get("trained")
    for key in ("note", "unfinished"):  # no epoch beat its start; it did not train all its epochs
        said = trained.get(key) if isinstance(trained, dict) else None
        if isinstance(said, str) and said:
            warnings.warn(said, StartWarning, stacklevel=stacklevel + 1)


def model_location(name_or_folder: str | Path) -> Path:
    """The folder of a model given by name or folder (:func:`model_folder`); an unknown name raises the zoo's own
    message (:func:`card`); a shipped name whose folder is missing gives where it would be."""
    folder = model_folder(name_or_folder)
    if folder is None:
        card(str(name_or_folder))
        folder = ZOO_DIR / str(name_or_folder)
    return folder


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
        folder = model_location(name_or_folder)
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
