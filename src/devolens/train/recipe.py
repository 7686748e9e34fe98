"""Training recipes: YAML files validated against a schema, with defaults.

A recipe is a nested mapping with the sections below; every key is optional except
``task`` (defaults fill the rest). Unknown keys, wrong types and bad values raise a
:class:`~devolens.errors.DevolensError` naming the key, e.g.
``recipe.yaml: train.epochs: expected an integer, got 'ten'`` (a value shown cut to 100 characters);
so do an empty recipe, a recipe without ``task``, a path that is no recipe file (a folder, an image) and a
recipe whose YAML aliases expand to more than :data:`MAX_RECIPE_NODES` values.
Task ``identity`` (recipes/identity.yaml) is not trained by ``devolens train``: its
recipe is read by ``benchmarks/train_identity.py``.

.. code-block:: yaml

    name: tiny_nuclei
    task: segmentation          # or population
    seed: 0
    data: {target: semantic, channels: 1, size: [64, 64], val_fraction: 0.25}
    model: {arch: unet, encoder: resnet18, encoder_depth: 3, decoder_channels: [32, 16, 8]}
    loss: {name: bce_dice, class_weights: null, dice_weight: 1.0}
    optimizer: {name: adamw, lr: 0.003, weight_decay: 0.0001}
    scheduler: {name: plateau, factor: 0.5, patience: 3}
    augment: {preset: nuclei, strength: 1.0, overrides: {elastic: false}}
    train: {epochs: 10, batch_size: 8, amp: none, monitor: auto, early_stop: {patience: 5, min_delta: 0.001}}
    validate: {instances: watershed, postprocess: {threshold: 0.6, seed_threshold: 0.7, split_seeds: true}}
    tune:
      trials: 10
      space:
        optimizer.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
        train.batch_size: {type: categorical, choices: [4, 8]}
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from devolens.checks import SHOWN_CHARS, clip, shown  # noqa: F401  (recipe errors show values so)
from devolens.errors import DevolensError
from devolens.io.atomic import write_text
from devolens.models.zoo import _ARCH_SIZES  # the sizes a run's model loads with (no torch: a light import)

TASKS = ("segmentation", "population")
COUNT_COLUMNS = ("A", "E", "M", "P", "C", "D", "Z", "total")
#: train.amp: fp32, bfloat16 autocast, or float16 autocast with loss scaling (what runs where, e.g. fp32 for either
#: on a CPU without that arithmetic: :func:`devolens.train.trainer.effective_amp`)
AMP_MODES = ("none", "bf16", "fp16")


@dataclass(frozen=True)
class Field:
    """One recipe key: its type, default and allowed values."""

    kind: str  # int, float, str, bool, list[int], list[float], list[str], dict, any
    default: Any
    choices: tuple | None = None
    low: float | None = None  # inclusive unless low_open
    high: float | None = None
    nullable: bool = False
    low_open: bool = False
    high_open: bool = False
    check: Callable[[Any], str | None] | None = None
    help: str = ""


def _device_check(v):
    from devolens.errors import DevolensError
    from devolens.predict.devices import device_name

    try:
        device_name(v, "device")
    except DevolensError as exc:
        return str(exc).removeprefix("device ")
    return None


def _class_weights_check(v):
    if isinstance(v, str):
        from devolens.train.losses import WEIGHT_METHODS

        return None if v in WEIGHT_METHODS else (f"expected a list of numbers or one of {', '.join(WEIGHT_METHODS)}, "
                                                 f"got {shown(v)}")
    if isinstance(v, list) and len(v) >= 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 for x in v):
        return None
    return f"expected a list of >= 2 non-negative numbers or a method name, got {shown(v)}"


def _decoder_check(v):
    """Whole numbers within the bounds a run's model is loaded under (:data:`devolens.models.zoo._ARCH_SIZES`):
    a recipe that trains is one whose run loads."""
    low, high = _ARCH_SIZES["decoder_channels"]
    if isinstance(v, int) and not isinstance(v, bool) and low <= v <= high:
        return None
    if isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) and low <= x <= high
                                         for x in v):
        return None
    return f"expected a whole number from {low} to {high} or a list of them, got {shown(v)}"


def _postprocess_check(v):
    """Options of :func:`devolens.predict.postprocess.instances_from_probabilities` (its
    keyword-only parameters: flags where the default is a bool, else numbers >= 0; ``threshold`` and
    ``seed_threshold`` probabilities between 0 and 1, exclusive, as ``segment``'s ``--threshold`` and
    ``--seed-threshold``: a threshold of 5 would find no object and say nothing of why)."""
    import inspect

    from devolens.predict.postprocess import instances_from_probabilities

    known = {name: p.default for name, p in inspect.signature(instances_from_probabilities).parameters.items()
             if p.kind is inspect.Parameter.KEYWORD_ONLY}
    unknown = sorted(set(v) - set(known))
    if unknown:
        return f"unknown option(s) {clip(', '.join(map(str, unknown)))} (known: {', '.join(known)})"
    for key, x in v.items():
        flag = isinstance(known[key], bool)
        ok = isinstance(x, bool) if flag else (isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0)
        if not ok:
            return f"{key}: expected {'true or false' if flag else 'a number >= 0'}, got {shown(x)}"
        if key in PROBABILITY_KEYS and not 0 < x < 1:
            return (f"{key} must be a probability between 0 and 1, exclusive (e.g. 0.5: 0 would take every pixel, 1 "
                    f"none), got {shown(x)}")
    return None


#: the watershed's options that are probabilities (:func:`_postprocess_check`)
PROBABILITY_KEYS = ("threshold", "seed_threshold")


def _channel_check(v):
    from devolens.data.datasets import CHANNEL_NAMES

    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 3:
        return None
    if isinstance(v, str) and v in CHANNEL_NAMES:
        return None
    return f"expected a channel index (0 to 3) or one of {', '.join(CHANNEL_NAMES)}, got {shown(v)}"


def _prune_check(v):
    """train.prune_top below 100 %: pruning every training sample leaves nothing to train on (as --prune-top)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 100:
        return f"{v} % would drop every training sample, leaving none to train on: give less than 100"
    return None


#: the keys of ``train.early_stop`` and what each takes (:func:`_early_stop_check`)
EARLY_STOP_KEYS = {"patience": "a whole number >= 1: the epochs in a row without improvement before training stops",
                   "min_delta": "a number >= 0 (default 0): how much the monitored metric must improve on its best "
                                "to count"}
_EARLY_STOP_EXAMPLE = "{patience: 5, min_delta: 0.001}"
#: each key of ``train.early_stop`` as a recipe key of its own: its bounds and default, which
#: :func:`_early_stop_check` checks, and what ``tune.space`` draws it within (:func:`_field_at`)
EARLY_STOP_FIELDS = {"patience": Field("int", None, low=1, help=EARLY_STOP_KEYS["patience"]),
                     "min_delta": Field("float", 0.0, low=0.0, help=EARLY_STOP_KEYS["min_delta"])}


def _early_stop_check(v):
    """train.early_stop: null (none), or a mapping of ``patience`` (a whole number >= 1, required) and ``min_delta``
    (a number >= 0), as Keras' and Lightning's EarlyStopping take them."""
    if not isinstance(v, dict):
        return f"expected a mapping such as {_EARLY_STOP_EXAMPLE} (or null: no early stopping), got {shown(v)}"
    unknown = sorted(set(map(str, v)) - set(EARLY_STOP_KEYS))
    if unknown:
        return f"unknown key(s) {clip(', '.join(unknown))} (known: {', '.join(EARLY_STOP_KEYS)})"
    p = v.get("patience")
    if p is None:
        return (f"patience missing: give the epochs without improvement before training stops, e.g. "
                f"{_EARLY_STOP_EXAMPLE} (or early_stop: null for none)")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not float(p).is_integer() \
            or p < EARLY_STOP_FIELDS["patience"].low:
        return f"patience: expected {EARLY_STOP_KEYS['patience'].partition(':')[0]}, got {shown(p)}"
    d = _number(v.get("min_delta", EARLY_STOP_FIELDS["min_delta"].default))
    if d is None or not math.isfinite(d) or d < EARLY_STOP_FIELDS["min_delta"].low:
        return f"min_delta: expected {EARLY_STOP_KEYS['min_delta'].partition(' (')[0]}, got {shown(v['min_delta'])}"
    return None


def _number(v) -> float | None:
    """``v`` as a float (YAML reads 1e-3, without a dot, as a string); None for what is no number."""
    if isinstance(v, bool):
        return None
    try:
        return float(v) if isinstance(v, (int, float, str)) else None
    except ValueError:
        return None


def early_stop_settings(value: dict | None) -> dict | None:
    """A valid ``train.early_stop`` with its defaults filled in (``patience`` an int, ``min_delta`` a float); None
    for none."""
    if value is None:
        return None
    return {"patience": int(value["patience"]), "min_delta": _number(value.get("min_delta", 0.0))}


def _size_check(v):
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 16 for x in v):
        return None
    return f"expected [height, width] in pixels (integers >= 16), got {shown(v)}"


SCHEMA: dict[str, Any] = {
    "name": Field("str", "run", help="run name (also the default study name)"),
    "task": Field("str", "segmentation", choices=TASKS),
    "seed": Field("int", 0, low=0),
    "data": {
        "target": Field("str", "semantic", choices=("semantic", "boundary", "classes"),
                        help="segmentation target: foreground mask, 3-class background/interior/boundary, or class ids"),
        "classes": Field("int", None, nullable=True, low=2, help="number of classes for target 'classes'"),
        "channels": Field("int", 1, low=1, high=4, help="input channels (RGB -> 1 takes the max; tile stores: C)"),
        "channel": Field("any", None, nullable=True, check=_channel_check,
                         help="the channel of each image to train on: an index (0-based; the C axis of a "
                              "multi-channel TIFF, as `devolens segment --channel`), red, green or blue (of a colour "
                              "image, as --color), or max or mean of the channels; multi-channel images (not colour "
                              "images) are refused without it; segment with the same channel"),
        "size": Field("any", None, nullable=True, check=_size_check, help="resize frames to [H, W] pixels"),
        "scale": Field("float", 1.0, low=0.01, high=8.0,
                       help="resize images and masks by this factor (area / nearest) before training: the working "
                            "resolution; a run used as a model (--model RUN) resizes inputs the same way"),
        "normalize": Field("str", "dtype", choices=("dtype", "percentile", "none", "log"),
                           help="log: log1p(counts)/log1p(65535), for uint16 tile stores (livedead)"),
        "val_fraction": Field("float", 0.2, low=0.0, high=1.0, low_open=True, high_open=True),
        "split_by": Field("str", "group",
                          help="column whose groups never straddle the split (embryo, group, ...); 'folder': images "
                               "in sub-folders named val, validation, valid or test validate, the others train "
                               "(data.val_fraction unused); 'group' splits so too where every top-level sub-folder "
                               "of the images is named train/training or val/validation/valid/test (images/train + "
                               "images/val). An HDF5 tile store (`devolens tile`) splits by source, group (the same) "
                               "or region: with several source images, whole images on one side (one image "
                               "labelled twice stays on one side); with one image, or with 'region', a band of rows "
                               "of tiles at the bottom of each image (its right-hand columns when it is one row of "
                               "tiles high) validates and training tiles that overlap it are dropped, so that "
                               "validation never sees pixels trained on; a note says the fraction achieved (whole "
                               "rows of tiles: near, not exactly, data.val_fraction)"),
        "time_block": Field("int", 10, low=1, help="with one embryo only: split by blocks of this many time points"),
        "counts": Field("list[str]", list(COUNT_COLUMNS), help="frames.csv columns to regress (population task)"),
        "drop_artifacts": Field("bool", False, help="skip frames whose frames.csv 'artifact' is set"),
        "limit": Field("int", None, nullable=True, low=1, help="use at most this many samples (quick runs)"),
        "cache": Field("bool", True, help="keep decoded frames in memory (with train.num_workers > 0: all decoded "
                                          "before the first epoch and shared with the loader processes)"),
    },
    "model": {
        "arch": Field("str", "unet", choices=("unet", "fpn", "resnet18")),
        "encoder": Field("str", "resnet18"),
        "encoder_depth": Field("int", 5, low=1, high=5),
        "decoder_channels": Field("any", None, nullable=True, check=_decoder_check),
        "width": Field("int", 64, low=4, high=_ARCH_SIZES["width"][1],
                       help="regressor: channels of the first ResNet18 stage"),
        "distance_head": Field("bool", False,
                               help="target 'boundary' only: a 4th output, each nucleus pixel's distance to its "
                                    "edge over that nucleus's largest (1 at the centre; a centre/distance head), "
                                    "whose maxima seed the watershed: touching nuclei separate where the 3-class "
                                    "interior bridges them"),
        "init": Field("str", None, nullable=True,
                      help="start from these weights (fine-tuning): a shipped model by name as zoo:NAME (e.g. "
                           "zoo:nuclei), a zoo folder, or a run's best.safetensors or checkpoint.safetensors"),
    },
    "loss": {
        "name": Field("str", "auto", choices=("auto", "bce", "ce", "dice", "focal", "bce_dice", "ce_dice", "focal_dice",
                                               "mse", "huber", "poisson")),
        "class_weights": Field("any", None, nullable=True, check=_class_weights_check),
        "dice_weight": Field("float", 1.0, low=0.0),
        "focal_gamma": Field("float", 2.0, low=0.0),
        "huber_delta": Field("float", 1.0, low=0.0, low_open=True),
        "distance_weight": Field("float", 1.0, low=0.0, help="model.distance_head: weight of its L1 loss"),
    },
    "optimizer": {
        "name": Field("str", "adamw", choices=("adam", "adamw", "sgd")),
        "lr": Field("float", 1e-3, low=0.0, low_open=True),
        "weight_decay": Field("float", 1e-4, low=0.0),
        "momentum": Field("float", 0.9, low=0.0, high=1.0, help="sgd only: Nesterov momentum whenever > 0"),
    },
    "scheduler": {
        "name": Field("str", "plateau", choices=("none", "plateau", "cosine_restarts", "cosine_kicks")),
        "factor": Field("float", 0.5, low=0.0, high=1.0, low_open=True, help="plateau: lr multiplier"),
        "patience": Field("int", 3, low=1,
                          help="plateau: the rate drops after more than this many epochs in a row without improvement "
                               "of the validation loss (at the end of the (patience + 1)-th, torch's "
                               "ReduceLROnPlateau); cosine_kicks: a kick after this many epochs at the floor without "
                               "improvement of the validation loss, val_loss, whatever train.monitor is (on the best "
                               "so far; epochs of a decay do not count)"),
        "min_lr": Field("float", 0.0, low=0.0, help="plateau / cosine_restarts: lowest rate"),
        "t0": Field("int", 10, low=1, help="cosine_restarts: first period (epochs)"),
        "t_mult": Field("int", 1, low=1, help="cosine_restarts: period growth factor"),
        "period": Field("int", 10, low=1, help="cosine_kicks: decay length (epochs) to the floor, from the start "
                                                  "and after each kick; no kick comes before the floor is reached"),
        "floor": Field("float", 0.01, low=0.0, high=1.0, low_open=True, high_open=True,
                       help="cosine_kicks: first floor (x base rate)"),
        "kick_factor": Field("float", 10.0, low=1.0, low_open=True,
                             help="cosine_kicks: kick multiplier (the rate at the floor times this, at most the base "
                                  "rate)"),
        "floor_decay": Field("float", 0.5, low=0.0, high=1.0, low_open=True, help="cosine_kicks: floor multiplier per kick"),
    },
    "augment": {
        "preset": Field("str", "auto", choices=("auto", "nuclei", "membrane", "livedead", "population", "none")),
        "strength": Field("float", 1.0, low=0.0),
        "overrides": Field("dict", {}),
    },
    "train": {
        "epochs": Field("int", 20, low=1),
        "batch_size": Field("int", 8, low=1),
        "amp": Field("str", "none", choices=AMP_MODES,
                     help="mixed precision: none (fp32), bf16 (GPUs of compute capability 8.0 or more: A100, H100, "
                          "RTX 30xx/40xx; CPUs with AVX512-BF16 or AMX), or fp16 with loss scaling (older GPUs: T4, "
                          "V100, GTX 10xx, RTX 20xx); bf16 on a GPU without native bfloat16 runs fp16 instead, "
                          "bf16 on a CPU without it (AVX2 only: emulated, many times slower) and fp16 on a CPU "
                          "without float16 arithmetic run fp32 instead, each with a note (run.json's amp says what "
                          "ran)"),
        "num_workers": Field("int", 0, low=0, help="data loader processes (0: the training process decodes and "
                                                   "augments; a GPU wants several)"),
        "threads": Field("int", None, nullable=True, low=1, help="torch CPU threads (default: torch's choice)"),
        "device": Field("str", "auto", check=_device_check,
                        help="where to train: auto = the first CUDA GPU when PyTorch sees one, else the CPU; cpu, "
                             "cuda, or cuda:N for the GPU numbered N"),
        "monitor": Field("str", "auto", help="metric choosing the best checkpoint (history.csv column)"),
        "monitor_mode": Field("str", "auto", choices=("auto", "min", "max")),
        "prune_top": Field("float", 0.0, low=0.0, high=100.0, high_open=True, check=_prune_check,
                           help="percent of highest-loss samples to drop (below 100: some must stay to train on)"),
        "prune_after": Field("int", 2, low=1, help="warm-up epochs before pruning"),
        "prune_restart": Field("bool", True, help="re-initialise the model after pruning (else continue)"),
        "overlay_samples": Field("int", 4, low=0, help="fixed validation samples drawn each epoch"),
        "max_batches": Field("int", None, nullable=True, low=1, help="cap on training batches per epoch"),
        "early_stop": Field("any", None, nullable=True, check=_early_stop_check,
                            help="stop training once train.monitor (in train.monitor_mode's direction: the metric "
                                 "that chooses best.safetensors) has not improved on its best by more than min_delta "
                                 "for patience epochs in a row: {patience: N, min_delta: D} (min_delta default 0); "
                                 "null (the default): train every epoch. run.json's stopped_early says when and why; "
                                 "--resume goes on counting from the checkpoint, and a run that stopped early is "
                                 "complete. Never before a pending train.prune_after pruning (a restart after it "
                                 "counts afresh); tune's pruner works beside it"),
        "channels_last": Field("bool", False, help="train image networks in the channels-last memory format (often "
                                                  "faster convolutions on a GPU with bf16; scripts/gpu_train.py "
                                                  "measures both and picks); the results are the same network"),
    },
    "validate": {
        "instances": Field("str", "auto", choices=("auto", "classes", "watershed"),
                           help="validation instances (instance F1, counts): 'classes' = argmax class map, connected "
                                "interiors grown 3 px (quick); 'watershed' = the zoo predictors' post-processing "
                                "(instances_from_probabilities) with validate.postprocess, which picks checkpoints "
                                "by what users will get; 'auto' = watershed for target 'boundary', else classes"),
        "postprocess": Field("dict", {}, check=_postprocess_check,
                             help="watershed options in the samples' pixels: threshold, seed_threshold, min_distance, "
                                  "min_size, smooth, split_seeds, isolated_fraction, isolated_min_objects (defaults "
                                  "as the function's)"),
    },
    "tune": {
        "trials": Field("int", 10, low=1),
        "epochs": Field("int", None, nullable=True, low=1, help="epochs per trial (default train.epochs)"),
        "metric": Field("str", None, nullable=True, help="objective (default train.monitor)"),
        "direction": Field("str", None, nullable=True, choices=("minimize", "maximize")),
        "pruner": Field("str", "median", choices=("median", "none")),
        "warmup_epochs": Field("int", 1, low=0, help="epochs before the pruner may stop a trial"),
        "startup_trials": Field("int", 2, low=0, help="trials completed before pruning starts"),
        "space": Field("dict", {}),
    },
}

SPACE_TYPES = ("float", "int", "categorical")

#: the most YAML nodes a recipe may hold, its aliases counted as the nodes they repeat: the longest shipped recipe
#: holds about 150; nested aliases (``&a [x, x], &b [*a, *a], ...``, "billion laughs") expand nine-fold a level, and
#: walking or printing the expansion took gigabytes
MAX_RECIPE_NODES = 10_000

def _type_name(v) -> str:
    return type(v).__name__ if v is not None else "null"


class _RecipeLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a document of more than :data:`MAX_RECIPE_NODES` nodes counting each alias
    as the nodes it repeats, before constructing it: nested aliases of a few hundred bytes expand to millions of
    values (validation walks them, a message printed them: megabytes), and deeper nesting to billions."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node


def _check_expansion(root: yaml.Node) -> None:
    """Raise when the node graph under ``root`` (aliases are shared nodes in it) expands to more than
    :data:`MAX_RECIPE_NODES` nodes, or refers to itself (an alias inside its own anchor)."""
    sizes: dict[int, int] = {}  # the expanded size of each node met, by id: every shared node is counted once
    busy: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:
            raise DevolensError("a YAML alias refers to the value that holds it (a recursive recipe)")
        busy.add(key)
        n = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                n += size(child)
                if n > MAX_RECIPE_NODES:
                    break
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                n += size(k) + size(v)
                if n > MAX_RECIPE_NODES:
                    break
        busy.discard(key)
        sizes[key] = n
        return n

    n = size(root)
    if n > MAX_RECIPE_NODES:
        raise DevolensError(f"the recipe expands to more than {MAX_RECIPE_NODES:,} values (YAML aliases, *name, "
                            "repeating anchored lists inside each other?): a recipe holds a few hundred")


def _nonfinite(v: Any, key: str) -> tuple[str, float] | None:
    """The dotted key and value of the first NaN or infinite number in ``v`` (nested mappings and lists), else None."""
    if isinstance(v, float) and not math.isfinite(v):
        return key, v
    if isinstance(v, dict):
        items = ((f"{key}.{k}", x) for k, x in v.items())
    elif isinstance(v, (list, tuple)):
        items = ((f"{key}[{i}]", x) for i, x in enumerate(v))
    else:
        return None
    for sub, x in items:
        found = _nonfinite(x, sub)
        if found is not None:
            return found
    return None


def _check_value(key: str, f: Field, v: Any) -> Any:
    if v is None:
        if f.nullable or f.default is None:
            return None
        raise DevolensError(f"{key}: must not be empty (null)")
    bad = _nonfinite(v, key)  # .nan / .inf pass every bound check (and torch refuses them later, with a traceback)
    if bad is not None:
        raise DevolensError(f"{bad[0]}: expected a finite number, got {bad[1]}")
    k = f.kind
    if k == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            else:
                raise DevolensError(f"{key}: expected an integer, got {shown(v)}")
    elif k == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            if isinstance(v, str):  # YAML reads 1e-3 (no dot) as a string
                try:
                    v = float(v)
                except ValueError:
                    raise DevolensError(f"{key}: expected a number, got {shown(v)}") from None
            else:
                raise DevolensError(f"{key}: expected a number, got {shown(v)}")
        v = float(v)
        if not math.isfinite(v):  # a string "nan" or "inf"
            raise DevolensError(f"{key}: expected a finite number, got {v}")
    elif k == "str":
        if not isinstance(v, str):
            raise DevolensError(f"{key}: expected a string, got {shown(v)} ({_type_name(v)})")
    elif k == "bool":
        if not isinstance(v, bool):
            raise DevolensError(f"{key}: expected true or false, got {shown(v)}")
    elif k.startswith("list["):
        inner = k[5:-1]
        if not isinstance(v, list):
            raise DevolensError(f"{key}: expected a list, got {shown(v)}")
        py = {"int": int, "float": (int, float), "str": str}[inner]
        if not all(isinstance(x, py) and not isinstance(x, bool) for x in v):
            raise DevolensError(f"{key}: expected a list of {inner}, got {shown(v)}")
    elif k == "dict":
        if not isinstance(v, dict):
            raise DevolensError(f"{key}: expected a mapping, got {shown(v)}")
    if f.check is not None:
        msg = f.check(v)
        if msg:
            raise DevolensError(f"{key}: {msg}")
    if f.choices is not None and v not in f.choices:
        raise DevolensError(f"{key}: {shown(v)} is not one of {', '.join(map(str, f.choices))}")
    if f.low is not None and isinstance(v, (int, float)):
        if v < f.low or (f.low_open and v == f.low):
            raise DevolensError(f"{key}: must be {'>' if f.low_open else '>='} {f.low}, got {v}")
    if f.high is not None and isinstance(v, (int, float)) and (v > f.high or (f.high_open and v == f.high)):
        raise DevolensError(f"{key}: must be {'<' if f.high_open else '<='} {f.high}, got {v}")
    return v


#: unknown keys that name a data location (``data.path``, ``data_dir``, ``train_images``...)
_DATA_KEY = re.compile(r"(^|_)(path|paths|dir|dirs|folder|root|images|masks|dataset)($|_)|^data_|_data$", re.I)


def _validate(section: dict, schema: dict, prefix: str) -> dict:
    out: dict[str, Any] = {}
    for key in section:
        if key not in schema:
            name = clip(str(key))
            if _DATA_KEY.search(name):  # the data folder written into the recipe
                raise DevolensError(f"unknown key '{prefix}{name}': a recipe holds no data paths; give the data folder "
                                    "on the command line (devolens train RECIPE --data DIR --out RUN)")
            hint = difflib.get_close_matches(name, list(schema), n=1)
            extra = f" (did you mean '{prefix}{hint[0]}'?)" if hint else f" (known: {', '.join(schema)})"
            raise DevolensError(f"unknown key '{prefix}{name}'{extra}")
    for key, spec in schema.items():
        full = f"{prefix}{key}"
        if isinstance(spec, dict):
            sub = section.get(key, {})
            if sub is None:
                sub = {}
            if not isinstance(sub, dict):
                raise DevolensError(f"{full}: expected a mapping (section), got {shown(sub)}")
            out[key] = _validate(sub, spec, full + ".")
        elif key in section:
            out[key] = _check_value(full, spec, section[key])
        else:
            out[key] = copy.deepcopy(spec.default)
    return out


def _field_at(path: str) -> Field:
    head, _, sub = path.rpartition(".")
    if head == "train.early_stop" and sub in EARLY_STOP_FIELDS:
        return EARLY_STOP_FIELDS[sub]
    node: Any = SCHEMA
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    if not isinstance(node, Field):
        raise KeyError(path)
    return node


#: recipe keys each trial sets itself (whatever ``tune.space`` draws) and the ``tune`` keys that set them
TRIAL_KEYS = {"train.epochs": "tune.epochs (the epochs of each trial; default train.epochs)",
              "train.monitor": "tune.metric (the objective and each trial's best-epoch metric)",
              "train.monitor_mode": "tune.direction (minimize or maximize tune.metric)"}
#: what a search-space entry of each type may hold besides ``type``
_SPACE_KEYS = {"categorical": ("choices",), "int": ("low", "high", "step", "log"),
               "float": ("low", "high", "step", "log")}


def _space_number(key: str, spec: dict, b: str) -> float:
    """``spec[b]`` as a number (YAML reads 1e-3, without a dot, as a string), else an error naming ``key.b``."""
    v = spec.get(b)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise DevolensError(f"{key}.{b}: expected a number, got {shown(spec.get(b))}") from None
    if not math.isfinite(v):
        raise DevolensError(f"{key}.{b}: expected a finite number, got {v}")
    spec[b] = v
    return v


def _check_step(key: str, spec: dict) -> None:
    """A range's ``step``: a number > 0 (whole for type int), not with ``log: true``, dividing ``high - low``
    (Optuna would lower ``high`` with a warning)."""
    import decimal

    step = _space_number(key, spec, "step")
    if step <= 0:
        raise DevolensError(f"{key}.step: must be > 0, got {step}")
    if spec.get("log"):
        raise DevolensError(f"{key}: step and log: true do not combine (values are drawn either on a log scale or "
                            "in steps): remove one of them")
    if spec["type"] == "int" and not float(step).is_integer():
        raise DevolensError(f"{key}.step: type int needs a whole number, got {step}")
    low, high, q = (decimal.Decimal(str(spec[b])) for b in ("low", "high", "step"))  # as Optuna checks it
    if (high - low) % q:
        below = low + (high - low) // q * q
        raise DevolensError(f"{key}: step {spec['step']} does not divide the range {spec['low']} to {spec['high']}: "
                            f"make high {format(below.normalize(), 'f')} or {format((below + q).normalize(), 'f')}")


def _space_type_fits(key: str, path: str, field: Field, t: str) -> None:
    """Refuse a range type the key cannot take (drawn values would be refused only when a trial draws them)."""
    if t == "categorical" or field.kind == "any" or (field.kind == "float" and t in ("float", "int")) or \
            (field.kind == "int" and t == "int"):
        return
    if field.kind == "int":
        takes = "whole numbers: use type int"
    else:
        what = {"str": "text", "bool": "true or false", "dict": "a mapping"}.get(field.kind, "a list")
        options = f" ({', '.join(map(str, field.choices))})" if field.choices else ""
        takes = f"{what}{options}: use type categorical with choices"
    raise DevolensError(f"{key}.type: {path} takes {takes}, not a {t} range")


#: the scheduler.* and optimizer.* keys each scheduler and optimiser uses: the trainer builds them with these
#: (:func:`devolens.train.trainer._scheduler`, :func:`devolens.train.schedulers.build_optimizer`); it ignores the others
SCHEDULER_KEYS = {"none": (), "plateau": ("factor", "patience", "min_lr"),
                  "cosine_restarts": ("t0", "t_mult", "min_lr"),
                  "cosine_kicks": ("period", "floor", "patience", "kick_factor", "floor_decay")}
OPTIMIZER_KEYS = {"adam": ("lr", "weight_decay"), "adamw": ("lr", "weight_decay"),
                  "sgd": ("lr", "weight_decay", "momentum")}
_CHOSEN = {"scheduler": ("scheduler", SCHEDULER_KEYS), "optimizer": ("optimizer", OPTIMIZER_KEYS)}


def _users(section: str, key: str) -> str:
    """The schedulers (optimisers) of ``section`` that use ``key``, as words."""
    users = [n for n, keys in _CHOSEN[section][1].items() if key in keys]
    return " or ".join(users) if users else "none"


def ignored_settings(rec: dict) -> list[str]:
    """Notes on the scheduler.* and optimizer.* keys of a valid recipe set to other than their defaults that its
    chosen scheduler or optimiser ignores (a recipe may carry spare keys: a note, not an error)."""
    notes = []
    for section, (word, table) in _CHOSEN.items():
        name = rec[section]["name"]
        for key, value in rec[section].items():
            if key == "name" or key not in SCHEMA[section] or key in table.get(name, ()):
                continue
            if value != SCHEMA[section][key].default:
                notes.append(f"{section}.{key} ({value}) does nothing: {word} {name} does not use it "
                             f"({_users(section, key)} does)")
    return notes


def space_notes(rec: dict) -> list[str]:
    """Notes on the tune.space keys of a valid recipe that only some of the schedulers or optimisers its
    tune.space draws use (the trials with the others search a setting that does nothing)."""
    notes = []
    space = rec["tune"]["space"]
    for path in space:
        section, _, sub = str(path).partition(".")
        if section in _CHOSEN and sub != "name" and f"{section}.name" in space:
            word, table = _CHOSEN[section]
            names = space[f"{section}.name"].get("choices") or []
            names = names if isinstance(names, list) else []
            if any(sub not in table.get(n, ()) for n in names):
                notes.append(f"tune.space.{path} does nothing in the trials that draw a {word} other than "
                             f"{_users(section, sub)}")
    return notes


def _check_chosen(key: str, path: str, space: dict, rec: dict) -> None:
    """Refuse a tune.space key of the scheduler or optimizer section that the recipe's chosen one (or every one
    its tune.space draws) does not use: its trials would search a setting that does nothing."""
    section, _, sub = path.partition(".")
    if section not in _CHOSEN or sub == "name":
        return
    word, table = _CHOSEN[section]
    drawn = space.get(f"{section}.name")
    names = drawn.get("choices") if isinstance(drawn, dict) else [rec[section]["name"]]
    if not isinstance(names, list) or not names:  # (the tune.space.*.name entry's own check says what is wrong)
        return
    if not any(sub in table.get(n, ()) for n in names):
        chosen = " or ".join(map(str, names))
        raise DevolensError(f"{key}: {word} {chosen} does not use {sub} ({_users(section, sub)} does), so the trials "
                            f"would search a setting that does nothing; remove it from tune.space or set {section}.name "
                            "to one that uses it")


def _check_space(space: dict, rec: dict | None = None) -> None:
    for path, spec in space.items():
        key = f"tune.space.{clip(str(path))}"
        if path in TRIAL_KEYS:  # each trial sets it: a drawn value would be overwritten and best_recipe.yaml misled
            raise DevolensError(f"{key}: each trial sets {path} itself; use {TRIAL_KEYS[path]}")
        try:
            field = _field_at(path)
        except KeyError:
            raise DevolensError(f"{key}: {shown(path)} is not a recipe key (use dotted paths such as "
                                "optimizer.lr)") from None
        if rec is not None:
            _check_chosen(key, str(path), space, rec)
            if path == "train.early_stop.min_delta" and rec["train"]["early_stop"] is None \
                    and "train.early_stop.patience" not in space:
                raise DevolensError(f"{key}: the recipe stops no training early (train.early_stop is null), so its "
                                    "trials would have a min_delta without a patience; set train.early_stop: "
                                    f"{_EARLY_STOP_EXAMPLE}, or draw train.early_stop.patience too")
        if not isinstance(spec, dict):
            raise DevolensError(f"{key}: expected a mapping such as {{type: float, low: 0.0001, high: 0.01, log: true}}")
        unknown = set(spec) - {"type", "low", "high", "log", "step", "choices"}
        if unknown:
            raise DevolensError(f"{key}: unknown key(s) {clip(', '.join(sorted(map(str, unknown))))}")
        t = spec.get("type")
        if t not in SPACE_TYPES:
            raise DevolensError(f"{key}.type: expected one of {', '.join(SPACE_TYPES)}, got {shown(t)}")
        unused = sorted(k for k in spec if k != "type" and k not in _SPACE_KEYS[t])
        if unused:
            raise DevolensError(f"{key}: {', '.join(unused)} not used by type {t} (it takes "
                                f"{', '.join(_SPACE_KEYS[t])})")
        _space_type_fits(key, str(path), field, t)
        if t == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise DevolensError(f"{key}.choices: expected a non-empty list")
            for choice in spec["choices"]:  # each a value the key takes (else a trial fails after others ran)
                if isinstance(field, Field):
                    _check_value(f"{key}.choices", field, choice)
        else:
            for b in ("low", "high"):
                _space_number(key, spec, b)
                if t == "int" and not float(spec[b]).is_integer():
                    raise DevolensError(f"{key}.{b}: type int needs a whole number, got {spec[b]}")
            if spec["low"] > spec["high"]:
                raise DevolensError(f"{key}: low {spec['low']} > high {spec['high']}")
            if "log" in spec and not isinstance(spec["log"], bool):
                raise DevolensError(f"{key}.log: expected true or false, got {shown(spec['log'])}")
            if spec.get("log") and spec["low"] <= 0:
                raise DevolensError(f"{key}: a log scale needs low > 0")
            if spec.get("step") is not None:
                _check_step(key, spec)
            if isinstance(field, Field) and field.kind in ("int", "float", "any"):  # the range within the key's limits
                for b in ("low", "high"):
                    _check_value(f"{key}.{b}", field, int(spec[b]) if t == "int" else spec[b])


def validate_recipe(raw: dict, path: str | Path | None = None) -> dict:
    """Validate a recipe mapping and fill in the defaults.

    Parameters
    ----------
    raw : dict
        The recipe as read from YAML.
    path : str or Path, optional
        Where it came from (named in error messages).

    Returns
    -------
    dict
        A complete recipe (every section and key present).

    Raises
    ------
    DevolensError
        Unknown key, wrong type or bad value; the message names the key.
    """
    if raw is None or raw == {}:  # an empty file: training on nothing but defaults is never what was meant
        raise DevolensError(f"empty recipe: give at least 'task' ({' or '.join(TASKS)}); see recipes/tiny_nuclei.yaml",
                            path=path)
    if not isinstance(raw, dict):
        raise DevolensError("a recipe must be a YAML mapping (key: value)", path=path)
    if raw.get("task") == "identity":  # its keys (predict, data.tables...) are another trainer's
        raise DevolensError("task 'identity' is not trained by `devolens train` or `devolens tune`: the identity "
                            "model is trained by benchmarks/train_identity.py --recipe RECIPE (see the comments at "
                            "the top of recipes/identity.yaml)", path=path)
    try:
        rec = _validate(raw, SCHEMA, "")
        _check_space(rec["tune"]["space"], rec)
        from devolens.data.augment import resolve_spec

        preset = rec["augment"]["preset"]
        resolve_spec("nuclei" if preset == "auto" else preset, rec["augment"]["overrides"])
        if rec["data"]["target"] == "classes" and rec["task"] == "segmentation" and rec["data"]["classes"] is None:
            raise DevolensError("data.classes: needed when data.target is 'classes'")
        if rec["data"]["size"] is not None and rec["data"]["scale"] != 1.0:
            raise DevolensError("data.size and data.scale: choose one (a fixed size, or a resize factor)")
        if rec["data"].get("channel") is not None and int(rec["data"]["channels"]) != 1:
            raise DevolensError(f"data.channel picks one channel for a network of one input channel, but "
                                f"data.channels is {rec['data']['channels']}: remove one of them")
        rec["train"]["early_stop"] = early_stop_settings(rec["train"]["early_stop"])
        if rec["task"] == "population" and rec["model"]["arch"] != "resnet18":
            if "arch" in raw.get("model", {}):
                raise DevolensError("model.arch: the population task uses 'resnet18'")
            rec["model"]["arch"] = "resnet18"
        if rec["task"] == "segmentation" and rec["model"]["arch"] == "resnet18":
            raise DevolensError("model.arch: segmentation needs 'unet' or 'fpn'")
        loss = rec["loss"]["name"]
        if loss != "auto":
            reg = loss in ("mse", "huber", "poisson")
            if reg != (rec["task"] == "population"):
                raise DevolensError(f"loss.name: {shown(loss)} does not fit the {rec['task']} task")
        if rec["model"]["distance_head"] and (rec["task"] != "segmentation" or rec["data"]["target"] != "boundary"):
            raise DevolensError("model.distance_head: needs task 'segmentation' with data.target 'boundary'")
        if rec["validate"]["instances"] == "watershed" and rec["task"] == "segmentation" and rec["data"]["target"] == "classes":
            raise DevolensError("validate.instances: 'watershed' needs data.target 'semantic' or 'boundary'")
        if rec["task"] == "population" and not rec["data"]["counts"]:
            raise DevolensError("data.counts: list at least one frames.csv column")
        if "task" not in raw:  # checked last: a misspelt key or bad value is the likelier mistake to report
            raise DevolensError(f"task: missing; a recipe names its task ({' or '.join(TASKS)})")
    except DevolensError as exc:
        if path is not None and exc.path is None:
            raise DevolensError(str(exc), path=path) from None
        raise
    return rec


def load_recipe(recipe: str | Path | dict) -> dict:
    """Read and validate a recipe (a YAML path, or an already parsed mapping)."""
    if isinstance(recipe, dict):
        return validate_recipe(copy.deepcopy(recipe))
    path = Path(recipe)
    if not path.exists():
        raise DevolensError("recipe not found", path=path)
    not_recipe = "not a recipe file (a YAML file such as recipes/tiny_nuclei.yaml)"
    if not path.is_file():
        raise DevolensError(f"{not_recipe}: it is a folder" if path.is_dir() else not_recipe, path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # an image, a model, an archive...
        raise DevolensError(f"{not_recipe}: binary content", path=path) from None
    except OSError as exc:
        raise DevolensError(f"cannot read the recipe: {exc.strerror or exc}", path=path) from None
    try:
        raw = yaml.load(text, Loader=_RecipeLoader)  # safe_load, refusing an alias bomb before it expands
    except yaml.YAMLError as exc:
        raise DevolensError(f"invalid YAML: {exc}".replace("\n", " "), path=path) from None
    except DevolensError as exc:
        raise DevolensError(exc.message, path=path) from None
    except RecursionError:  # lists or mappings nested thousands deep: PyYAML's composer recurses
        raise DevolensError("invalid YAML: nested too deeply (a recipe's sections are two levels deep)",
                            path=path) from None
    return validate_recipe(raw, path)


def dump_recipe(recipe: dict, path: str | Path, header: str = "") -> Path:
    """Write a recipe as YAML (atomically), after ``header``'s lines as comments."""
    top = "".join(f"# {line}\n" for line in header.splitlines())
    return write_text(path, top + yaml.safe_dump(recipe, sort_keys=False, default_flow_style=None))


def set_key(recipe: dict, dotted: str, value: Any) -> dict:
    """Return a copy of ``recipe`` with ``dotted`` (e.g. ``optimizer.lr``) set to ``value``."""
    out = copy.deepcopy(recipe)
    node = out
    parts = dotted.split(".")
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):  # (absent, or null: train.early_stop drawn by its keys)
            node[p] = {}
        node = node[p]
    node[parts[-1]] = value
    return out


def resolved(recipe: dict) -> dict:
    """Resolve the ``auto`` settings (loss, augmentation preset, validation instances, monitor) of a valid recipe."""
    r = copy.deepcopy(recipe)
    seg = r["task"] == "segmentation"
    if r["loss"]["name"] == "auto":
        r["loss"]["name"] = ("bce_dice" if r["data"]["target"] == "semantic" else "ce_dice") if seg else "huber"
    if r["augment"]["preset"] == "auto":
        r["augment"]["preset"] = "nuclei" if seg else "population"
    if r["validate"]["instances"] == "auto":
        r["validate"]["instances"] = "watershed" if seg and r["data"]["target"] == "boundary" else "classes"
    if r["train"]["monitor"] == "auto":
        r["train"]["monitor"] = ("val_f1" if r["data"]["target"] == "boundary" else "val_dice") if seg else "val_mae"
    if r["train"]["monitor_mode"] == "auto":
        m = r["train"]["monitor"]
        r["train"]["monitor_mode"] = "min" if any(s in m for s in ("loss", "mae", "error", "bias")) else "max"
    return r


_MISSING = object()  # a key one of two compared recipes lacks


def differences(a: dict, b: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """The dotted keys whose values differ between two recipes (a key missing on one side counts),
    in schema order; keys in ``ignore`` (dotted) and everything under them are left out."""
    out: list[str] = []

    def walk(x: Any, y: Any, prefix: str) -> None:
        if prefix and any(prefix == k or prefix.startswith(k + ".") for k in ignore):
            return
        if isinstance(x, dict) and isinstance(y, dict) and prefix.count(".") < 1:  # sections, not value mappings
            for key in list(x) + [k for k in y if k not in x]:
                walk(x.get(key, _MISSING), y.get(key, _MISSING), f"{prefix}.{key}" if prefix else str(key))
        elif x != y:
            out.append(prefix)

    walk(a, b, "")
    return out
