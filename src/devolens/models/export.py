"""Models of your own: a training run used and shared like a zoo model.

A segmentation run of ``devolens train RECIPE --data DIR --out RUN`` keeps its best checkpoint
(``best.safetensors`` and ``best.json``: architecture, data settings, the recipe). This module turns
it into a model card, so that::

    devolens segment nuclei INPUT --model RUN --out DIR           # the run's best checkpoint, as it is
    devolens models export RUN --to my_nuclei                     # a zoo-style folder to keep or share
    devolens segment nuclei INPUT --model my_nuclei --out DIR
    load("my_nuclei").predict(image)                               # Python: a folder path works as a name

An exported folder has the zoo's layout (fp16 ``weights.safetensors``, ``card.json``, ``card.md``).
What a run cannot know is written into its card plainly: its metrics are the run's own validation
split (not held-out data), there is no size model (``--diameter`` does not apply: give images at the
magnification ``scale`` assumes), no int8 calibration (CPUs run it in bf16), and ``scale`` is the
working resolution relative to the images you will give it (the recipe's ``data.scale``: 1.0 unless
the training images were resized; ``--scale`` on export overrides it). ``scale`` is bounded like the
recipe's ``data.scale`` (:func:`check_scale`), on export and whenever an exported card is read.

What a run segments (its ``kind``) is read off its recipe's name (``membrane`` in it: membrane, else
nuclei), by ``devolens train``'s tip, ``models export`` and ``--model RUN`` alike; a command that asks
a run for the other kind than its name says is refused (:func:`card_from_run`), while
``models export --kind`` overrides it on purpose.

Also the Markdown card writer shared with ``scripts/zoo_ship.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from devolens.errors import DevolensError, command_running

__all__ = ["KINDS", "is_run", "card_from_run", "export_run", "named_kind", "check_scale", "scale_bounds",
           "card_md", "write_card", "write_card_md", "int8_md_lines", "zoo_init_name"]

KINDS = {"nuclei": "devolens.predict.segment:NucleiPredictor", "membrane": "devolens.predict.segment:MembranePredictor"}

#: what each command says of a run of another task than segmentation (``{task!r}``: the run's)
_ONLY_SEGMENTATION = {
    None: "only segmentation runs segment images: this is a {task!r} run",
    "models export": "models export exports segmentation runs only: this is a {task!r} run",
    "models show": "models show makes cards of segmentation runs only (from their best checkpoint): this is a "
                   "{task!r} run (its run.json and history.csv tell how it went)",
}


#: what each command says of a live/dead run (data.target 'classes': a class map of live and dead nuclei, used as it is
#: by ``devolens segment livedead --model RUN``; ``{use}``: that command with the run's path)
_CLASS_MAP_RUN = {
    None: "a live/dead run (data.target 'classes'), not a {kind} model: segment wells with it: {use}",
    "models export": "a live/dead run (data.target 'classes'): models export exports nuclei and membrane runs only; "
                     "use the run folder as it is ({use}) and copy it to share it",
    "models show": "a live/dead run (data.target 'classes'): models show makes cards of nuclei and membrane runs "
                   "only (its run.json and history.csv tell how it went); segment wells with it: {use}",
}


def is_run(folder: Path) -> bool:
    """True for a training run's folder (its best checkpoint and the checkpoint's config)."""
    return (folder / "best.json").is_file() and (folder / "best.safetensors").is_file()


def scale_bounds() -> tuple[float, float]:
    """The working scales a model may have: those a recipe's ``data.scale`` allows (read off the recipe schema,
    so that training and use keep one rule; outside it images are shrunk to nothing or blown up past memory)."""
    from devolens.train.recipe import SCHEMA

    field = SCHEMA["data"]["scale"]
    return float(field.low), float(field.high)


def check_scale(value, what: str = "scale", path: str | Path | None = None) -> float:
    """``value`` as a float when it is a finite number within :func:`scale_bounds`, else a :class:`DevolensError`
    ``{what} must be ...`` (naming ``path``, e.g. the card.json that holds it)."""
    low, high = scale_bounds()
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number and math.isfinite(value) and low <= value <= high):
        raise DevolensError(f"{what} must be a number from {low:g} to {high:g} (the working resolution relative to "
                            f"the input, like a recipe's data.scale), got {value!r}", path=path)
    return float(value)


def _named(recipe: dict) -> str | None:
    """The kind a recipe's name says (``membrane`` in ``membrane_half``, ``nuclei`` in ``tiny_nuclei``); None
    when it says neither or both."""
    name = str(recipe.get("name") or "").lower()
    said = [kind for kind, stem in (("nuclei", "nucle"), ("membrane", "membrane")) if stem in name]
    return said[0] if len(said) == 1 else None


def named_kind(run: str | Path) -> str | None:
    """The kind the recipe of training run ``run`` is named for (``nuclei``, ``membrane``), None when its name says
    neither or best.json cannot be read (:func:`card_from_run` says why)."""
    try:
        cfg = json.loads((Path(run) / "best.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    recipe = cfg.get("recipe") if isinstance(cfg, dict) else None
    return _named(recipe) if isinstance(recipe, dict) else None


def _tuning_study(folder: Path) -> DevolensError | None:
    """Why ``folder`` is no training run when it is the ``--out`` folder of ``devolens tune`` (``trials/trial_NNNN``,
    each trial a run; ``best.json`` names the best trial): where the runs are, and the best one where the study
    records it. None for any other folder."""
    if not (folder / "trials").is_dir():
        return None
    try:
        best = json.loads((folder / "best.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        best = None
    what = "a tuning study (`devolens tune`), not a training run: each trial is a run in trials/trial_NNNN"
    trial = best.get("trial") if isinstance(best, dict) else None
    if isinstance(trial, int) and not isinstance(trial, bool):
        path = folder / "trials" / f"trial_{trial:04d}"
        value = best.get("value")
        score = (f" ({best.get('metric')} {value:.4g})" if isinstance(value, (int, float)) and best.get("metric")
                 else "")
        if is_run(path):
            return DevolensError(f"{what}; give one, e.g. its best trial{score}: {path}", path=folder)
    return DevolensError(f"{what}; give one of them (trials.csv lists their scores)", path=folder)


def _not_a_run(run: Path, command: str | None) -> DevolensError:
    """Why folder ``run`` is no training run, worded for ``command`` (``models export`` takes runs only)."""
    elsewhere = "" if command == "models export" else " nor a model folder (no card.json)"
    if run.is_dir() and not (run / "card.json").is_file():
        study = _tuning_study(run)
        if study is not None:
            return study
    if not run.exists():
        return DevolensError("not a training run: no such folder", path=run)
    if not run.is_dir():
        what = "a weights file" if run.suffix.lower() == ".safetensors" else "a file"
        return DevolensError(f"not a training run: {what}; give the run's folder (`devolens train --out`: best.json "
                             "and best.safetensors)", path=run)
    if (run / "card.json").is_file():
        use = "--model FOLDER" if command_running() else "devolens.models.load(FOLDER)"
        return DevolensError(f"already an exported model (card.json): use it as it is ({use}) and copy the folder to "
                             "share it; `devolens models export` makes one from a training run", path=run)
    have = [name for name in ("best.json", "best.safetensors") if (run / name).is_file()]
    if have:
        missing = "best.safetensors" if have == ["best.json"] else "best.json"
        return DevolensError(f"a training run's best checkpoint is best.json and best.safetensors, and {missing} is "
                             f"missing (an interrupted copy?)", path=run)
    return DevolensError(f"not a training run (no best.json and best.safetensors; `devolens train --out` writes "
                         f"them){elsewhere}", path=run)


def _run_config(run: Path, command: str | None) -> dict:
    """The run's best.json, checked to be the config ``devolens train`` writes for a segmentation network."""
    from devolens.models.zoo import read_json

    cfg = read_json(run / "best.json", run, ": a damaged run?")
    if not isinstance(cfg, dict):
        raise DevolensError("best.json is not a checkpoint's config (a JSON object): a damaged run?", path=run)
    for key in ("recipe", "input", "model", "metrics"):
        if not isinstance(cfg.get(key) or {}, dict):
            raise DevolensError(f"best.json: {key!r} is not a mapping: a damaged run?", path=run)
    task = cfg.get("task")
    if task is None:
        raise DevolensError("best.json names no task (`devolens train` writes it beside best.safetensors): a damaged "
                            "run, or a file of another program?", path=run)
    if task != "segmentation":
        raise DevolensError(_ONLY_SEGMENTATION.get(command, _ONLY_SEGMENTATION[None]).format(task=task), path=run)
    if (cfg.get("model") or {}).get("kind") != "segmentation":
        raise DevolensError(f"best.json describes no segmentation network (model kind "
                            f"{(cfg.get('model') or {}).get('kind')!r}): a damaged run?", path=run)
    return cfg


def zoo_init_name(init: object) -> str | None:
    """The shipped model a recipe's ``model.init`` starts from: ``zoo:NAME``, or a path to a zoo
    model's folder (``src/devolens/models/zoo/nuclei``, wherever that checkout or install lies) or to
    its ``weights.safetensors``; None for anything else (a run's weights, no init)."""
    from devolens.models import zoo

    if not isinstance(init, str) or not init:
        return None
    if init.startswith("zoo:"):
        return init[4:] or None
    path = Path(init)
    if path.name == "weights.safetensors":
        path = path.parent
    names = zoo.available()
    if path.name in names and (path.parent.name == "zoo" or path.expanduser().resolve().parent == zoo.ZOO_DIR.resolve()):
        return path.name
    return None


def _run_postprocess(recipe: dict, kind: str, distance: bool) -> tuple[dict, str | None]:
    """The post-processing of a run used as a model, and a note on where it came from: the recipe's
    ``validate.postprocess``; when that is empty and the run started from a shipped model of the same
    kind (``model.init: zoo:nuclei``) with the same head, that model card's post-processing (the
    watershed settings its weights were tuned with, rather than the function's defaults)."""
    own = dict((recipe.get("validate") or {}).get("postprocess") or {})
    if own:
        return own, None
    name = zoo_init_name((recipe.get("model") or {}).get("init"))
    if name is None or distance:
        return own, None
    from devolens.models import zoo

    try:
        shipped = zoo.card(name)
    except DevolensError:
        return own, None
    if shipped.get("task") != kind or not isinstance(shipped.get("postprocess"), dict):
        return own, None
    return (dict(shipped["postprocess"]),
            f"post-processing from the zoo model {name!r}'s card: the run's recipe (model.init: "
            f"{recipe['model']['init']}) gives no validate.postprocess (its best epoch was chosen without "
            "this post-processing)")


def _run_start(run: Path) -> dict:
    """What a fine-tuning run's run.json says of its starting weights: their score before the first epoch
    (``start_value``, ``init``) and, when no epoch beat them, the line saying so (``note``)."""
    try:
        start = json.loads((run / "run.json").read_text(encoding="utf-8")).get("start")
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(start, dict) or start.get("value") is None:
        return {}
    out = {"init": start.get("init"), "start_value": start.get("value")}
    if start.get("not_beaten"):
        out["note"] = start["not_beaten"]
    return out


def card_from_run(run: str | Path, kind: str | None = None, scale: float | None = None, *,
                  command: str | None = None) -> dict:
    """The model card of a segmentation run's best checkpoint (weights: ``best.safetensors``).

    Parameters
    ----------
    run : str or Path
        The ``--out`` folder of ``devolens train``.
    kind : {"nuclei", "membrane"}, optional
        What it segments (the predictor and its post-processing); default: ``membrane`` when the
        recipe's name says so, else ``nuclei``. A kind other than the one the recipe's name says
        (a ``membrane`` recipe asked for nuclei: ``devolens segment nuclei --model RUN``) is refused,
        except for ``command="models export"``, whose ``--kind`` is the user's deliberate choice.
    scale : float, optional
        Working resolution relative to the images the model will be given (0.5: they are halved
        first). Default: the run's ``data.scale`` (1.0 unless its recipe resized the images), so
        the model sees inputs at its training images' magnification as it saw those.
    command : str, optional
        The command asking (``"models export"``, ``"models show"``): its errors are worded for it.
        None: a model used to segment (``--model RUN``, ``load(RUN)``).

    Raises
    ------
    DevolensError
        Not a run (or already an exported model), a damaged best.json, not a segmentation run, a
        kind the recipe's name contradicts, or trained on data the predictors cannot feed the
        same way (several channels, a fixed resize, class maps, another normalisation).
    """
    run = Path(run)
    if kind is not None and kind not in KINDS:  # options first, before anything is read
        raise DevolensError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if scale is not None:
        scale = check_scale(scale)
    if not is_run(run):
        raise _not_a_run(run, command)
    cfg = _run_config(run, command)
    recipe, inp, model = cfg.get("recipe") or {}, cfg.get("input") or {}, cfg.get("model") or {}
    asked, named = kind, _named(recipe)
    kind = kind or ("membrane" if "membrane" in str(recipe.get("name", "")).lower() else "nuclei")
    target = inp.get("target")
    if target == "classes":  # the live/dead recipe's target: `segment livedead` uses the run, not a nuclei predictor
        import shlex

        use = f"`devolens segment livedead WELL --model {shlex.quote(str(run))} --out DIR`"
        raise DevolensError(_CLASS_MAP_RUN.get(command, _CLASS_MAP_RUN[None]).format(kind=kind, use=use), path=run)
    if target not in (("boundary",) if kind == "membrane" else ("boundary", "semantic")):
        need = "data.target 'boundary'" if kind == "membrane" else "data.target 'boundary' or 'semantic'"
        raise DevolensError(f"this run learned target {target!r}; {kind} segmentation needs {need}", path=run)
    if asked is not None and named not in (None, asked) and command != "models export":
        # the recipe's name is the only word a run has on what it learned: a membrane run read as nuclei counts
        # the cells between membranes as nuclei without a hint that anything is off
        raise DevolensError(f"a {named} run (its recipe is named {recipe.get('name')!r}), not a {kind} model: use "
                            f"`devolens segment {named}`, or export it as {kind} on purpose (`devolens models export "
                            f"RUN --to FOLDER --kind {kind}`) and give that folder", path=run)
    if int(inp.get("channels") or 1) != 1:
        raise DevolensError(f"this run was trained on {inp.get('channels')}-channel images; the predictors feed the "
                            "network one channel (train with data.channels: 1)", path=run)
    if inp.get("size"):
        raise DevolensError(f"this run's images were resized to {inp['size']} (data.size): the predictors keep the "
                            "images' magnification (train on crops, data.size: null)", path=run)
    norm = inp.get("normalize", "dtype")
    if norm not in ("percentile", "dtype"):
        raise DevolensError(f"this run's data.normalize is {norm!r}; the predictors normalise by 'percentile' or "
                            "'dtype'", path=run)
    if scale is None:
        scale = check_scale(inp.get("scale") or 1.0, "best.json: input.scale", path=run)
    distance = bool((recipe.get("model") or {}).get("distance_head"))
    head = ("three_class_distance" if distance else "three_class") if target == "boundary" else "foreground"
    metrics = {k: round(float(v), 4) for k, v in (cfg.get("metrics") or {}).items()
               if k.startswith("val_") and isinstance(v, (int, float))}
    # the channel the run trained on (data.channel): a colour's name or max/mean is the predictors' own channel
    # option, and so is an index 0..2 on colour images (training takes it as red, green, blue of an RGB image); a
    # stack's C axis is chosen where the stack is read (segment --channel N), as the run's notes say
    picked = inp.get("channel")
    index = isinstance(picked, int) and not isinstance(picked, bool)
    if index and 0 <= picked < 3:
        channel = ("red", "green", "blue")[picked]
    else:
        channel = picked if isinstance(picked, str) and picked in ("red", "green", "blue", "mean", "max") else "max"
    how = {"max": "the per-pixel maximum of an RGB image's channels", "mean": "the mean of an RGB image's channels"}
    read = how.get(channel, f"the {channel} channel of an RGB image")
    if index:
        steps = (f"one channel: {read} (data.channel {picked}); of a multi-channel stack, its channel {picked}, "
                 f"chosen with segment --channel {picked}; " if picked < 3 else
                 f"one channel: channel {picked} of a multi-channel stack (data.channel {picked}), chosen with "
                 f"segment --channel {picked} (an RGB image: {read}); ")
    else:
        steps = f"one channel: {read}, as the training data were read; "
    steps = (steps
             + (f"resized by {float(scale):g} (area); " if float(scale) != 1.0 else "")
             + ("1st..99.8th percentile -> 0..1" if norm == "percentile" else "the input type's range -> 0..1 "
                "(uint8 / 255, uint16 / 65535; floats clipped to 0..1)"))
    post, post_note = _run_postprocess(recipe, kind, distance)
    return {
        "name": run.name,
        "task": kind,
        "summary": f"{kind} segmentation of your own: best checkpoint of the training run {run.name}",
        "predictor": KINDS[kind],
        "weights_file": "best.safetensors",
        "architecture": model,
        "input": {"channels": "HxW grey or HxWx3 RGB (one channel used), any size", "scale": float(scale),
                  "multiple": 2 ** int(model.get("encoder_depth", 5)), "tile": 1024,
                  "note": "scale: working resolution relative to the input (1.0: inputs at the training images' "
                          "magnification)"},
        "output": {"head": head, "target": target},
        "preprocessing": {"channel": channel, "percentiles": [1.0, 99.8] if norm == "percentile" else [],
                          "steps": steps},
        "postprocess": post,
        **({"postprocess_note": post_note} if post_note else {}),
        "training_data": f"the data of the training run {run} (its recipe, split.csv and run.json say which)",
        "recipe": str(run / "recipe.yaml"),
        "command": f"devolens train <recipe> --data <data> --out {run}",
        "trained": {"run": str(run), "epoch": cfg.get("epoch"), "monitor": cfg.get("monitor"),
                    "value": cfg.get("value"), **_run_start(run)},
        "metrics": metrics,
        "metrics_heading": "Metrics (the run's own validation split at its best epoch, not held-out data)",
        "headline": [k for k in ("val_f1", "val_dice", "val_iou") if k in metrics],
        "limits": ("Measured only on the training run's validation split. No size model and no reference object "
                   "size: --diameter does not apply; give images at the magnification 'scale' assumes (or export "
                   "again with another --scale). No int8 calibration: CPUs run it in bf16."),
    }


#: what :func:`export_run` writes into its folder (an earlier export holding these alone is replaced)
EXPORT_FILES = frozenset({"weights.safetensors", "card.json", "card.md"})


def _earlier_export(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier :func:`export_run`'s files and nothing else (its card a devolens card:
    a JSON object with a ``task``), so that exporting again (a run trained further) replaces them."""
    names = {e.name for e in folder.iterdir() if not e.name.startswith(".")}
    if not names <= EXPORT_FILES or "card.json" not in names:
        return False
    try:
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(card, dict) and "task" in card


def export_run(run: str | Path, to: str | Path, kind: str | None = None, scale: float | None = None) -> dict:
    """Write a run's best checkpoint as a zoo-style folder (fp16 ``weights.safetensors``,
    ``card.json``, ``card.md``); returns the card. The folder is written atomically.

    ``kind`` overrides what the recipe's name says (see :func:`card_from_run`); ``scale`` must be within
    :func:`scale_bounds`. An exported folder given as ``run`` is refused (copy it to share it). ``to`` may be new,
    empty, or an earlier export (:data:`EXPORT_FILES` alone), which is replaced.
    """
    from devolens.io.atomic import StagedDir
    from devolens.io.tensors import load_tensors, save_tensors

    run, to = Path(run), Path(to)
    card = card_from_run(run, kind, scale, command="models export")
    card.pop("weights_file")
    if to.exists() and (not to.is_dir() or (any(to.iterdir()) and not _earlier_export(to))):
        raise DevolensError("output exists and is not an empty folder or an earlier export (weights.safetensors, "
                            "card.json and card.md alone)", path=to)
    try:
        state = load_tensors(run / "best.safetensors")
    except DevolensError:
        raise
    except Exception as exc:
        raise DevolensError(f"cannot read best.safetensors: {exc}", path=run) from None
    stage = StagedDir(to)
    try:
        weights = stage.tmp / "weights.safetensors"
        # readable like the cards (safetensors alone writes 0600: other users could not load the model)
        save_tensors({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()},
                     weights, metadata={"format": "pt"})
        card["name"] = to.name
        card["command"] += (f"; devolens models export {run} --to {to} --kind {card['task']} "
                            f"--scale {card['input']['scale']:g}")
        write_card(card, stage.tmp, load_name=str(to))
    except BaseException:
        stage.abort()
        raise
    stage.commit()
    return card


def int8_md_lines(card: dict) -> list[str]:
    """The card.md section on the model's int8 network (empty without ``card["int8"]``)."""
    if "int8" not in card:
        return []
    q = card["int8"]
    lines = ["## int8 inference (the default on CPUs with VNNI/AMX and PyTorch's oneDNN engine; "
             "`precision='bf16'` or `--precision bf16` for the float network)", "",
             f"- **engine**: {q['engine']}", f"- **scheme**: {q['scheme']}", f"- **calibration**: {q['calibration']}",
             f"- **command**: `{q['command']}`", f"- **activations**: {len(q['activations'])} (scale, zero point) pairs"]
    metrics = q.get("metrics") or {}
    metrics = metrics.get("metrics", metrics)  # eval_livedead.py nests them
    lines += [f"- **{k}** (int8): {v.get('value') if isinstance(v, dict) else round(v, 4)}" for k, v in metrics.items()
              if k in card.get("headline", []) and isinstance(v, (dict, float))]
    return lines + [""]


def _flat_md(x) -> str:
    """A card value as one line of Markdown text: nested dicts as ``key value, ...`` in parentheses."""
    if isinstance(x, dict):
        return ", ".join(f"{k} ({_flat_md(v)})" if isinstance(v, dict) else f"{k} {_flat_md(v)}" for k, v in x.items())
    return str(x)


def write_card_md(card: dict, path: Path, load_name: str | None = None) -> None:
    """Write ``card`` as Markdown (``card.md``); ``load_name``: what to pass to ``load`` (the name)."""
    path.write_text(card_md(card, load_name), encoding="utf-8")


def write_card(card: dict, folder: Path, load_name: str | None = None) -> None:
    """Write ``card`` into a model folder: ``card.json`` and the same card as ``card.md`` (:func:`write_card_md`)."""
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    write_card_md(card, folder / "card.md", load_name)


def card_md(card: dict, load_name: str | None = None) -> str:
    """``card`` as Markdown, the text of ``card.md`` (``devolens models show`` prints a run's card so, too);
    ``load_name``: what to pass to ``load`` and ``--model`` (default: the card's name)."""
    name = load_name or card["name"]
    lines = [f"# {card['name']}: {card['summary']}", ""]
    lines += ["## Use", "", "```python", "from devolens.models import load",
              f"model = load({name!r})", "result = model.predict(image)   # HxW, HxWx3 or 3xHxW array, any size, or an image file's path", "```", ""]
    if card["task"] in ("nuclei", "membrane"):
        model = "" if name == card["task"] else f" --model {name}"
        lines += [f"CLI: `devolens segment {card['task']} INPUT{model} --out DIR` (image, folder, video, animated GIF "
                  "or TIFF stack).", ""]
    else:
        lines += ["CLI: `devolens population INPUT --out pops.csv [--monotone | --clock] [--plot]`.", ""]
    lines += ["## Architecture", "", "```json", json.dumps(card.get("architecture"), indent=2), "```", ""]
    for key, title in (("input", "Input"), ("preprocessing", "Preprocessing"), ("output", "Output"),
                       ("postprocess", "Post-processing")):
        if key in card:
            lines += [f"## {title}", ""]
            for k, v in card[key].items():
                if isinstance(v, dict):  # e.g. input.diameter: one sub-item per line
                    lines += [f"- **{k}**:"] + [f"  - {name}: {_flat_md(x)}" for name, x in v.items()]
                else:
                    lines.append(f"- **{k}**: {v}")
            lines.append("")
    if "total_regressor" in card:
        spec = {k: v for k, v in card["total_regressor"].items() if k != "config"}
        lines += ["## Total regressor (combined with the calibration in log space)", "",
                  "```json", json.dumps({"config": card["total_regressor"]["config"], **spec}, indent=2), "```", ""]
    if "calibration" in card:
        lines += ["## Calibration (leave-one-embryo-out on the training renders)", "",
                  "```json", json.dumps(card["calibration"], indent=2), "```", ""]
    if "clock" in card:
        lines += ["## Developmental clock (`devolens population --clock`, timelapses)", "",
                  "```json", json.dumps(card["clock"], indent=2), "```", ""]
    lines += int8_md_lines(card)
    lines += ["## Training data", "", card["training_data"], "", "## Recipe and command", "",
              f"Recipe: `{card['recipe']}`", "", "```", card["command"].replace("; ", "\n"), "```", ""]
    heading = card.get('metrics_heading', 'Metrics (held-out renders, measured by benchmarks/eval_zoo.py)')
    setting = card.get("metrics_setting") or {}  # the precision and magnification setting the metrics were measured in
    if setting.get("measured"):
        heading = f"{heading[:-1]}; {setting['measured']})" if heading.endswith(")") else f"{heading} ({setting['measured']})"
    lines += [f"## {heading}", ""]
    if setting.get("measured"):
        said = f"Measured with: {setting['measured']}" + (f" (`{setting['command']}`)" if setting.get("command") else "")
        if setting.get("default_figures"):
            where = "; ".join(x for x in (f"`{setting['default_command']}`" if setting.get("default_command") else "",
                                          setting.get("default_source", "")) if x)
            said += (f". The CLI's default setting ({setting.get('default', '')}) gives: {setting['default_figures']}"
                     + (f" ({where})" if where else ""))
        lines += [said + ".", ""]
    for k, v in (card.get("metrics") or {}).items():
        if isinstance(v, dict) and "value" not in v:  # e.g. per embryo: {embryo: value}
            lines.append(f"- **{k}**: " + ", ".join(f"{name} {x}" for name, x in v.items()))
        elif isinstance(v, dict):
            def flat(x):
                return ", ".join(f"{name} {y}" for name, y in x.items()) if isinstance(x, dict) else x

            extra = "".join(f"; {name}: {flat(x)}" for name, x in v.items() if name not in ("value", "how"))
            lines.append(f"- **{k}**: {flat(v.get('value'))}{extra} ({v.get('how', '')})")
        else:
            lines.append(f"- **{k}**: {v}")
    if card.get("metrics_note"):
        lines += ["", card["metrics_note"]]
    lines += ["", "## Known limits", "", card["limits"], ""]
    return "\n".join(lines)
