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
the training images were resized; ``--scale`` on export overrides it).

Also the Markdown card writer shared with ``scripts/zoo_ship.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from devolens.errors import DevolensError

__all__ = ["KINDS", "is_run", "card_from_run", "export_run", "write_card_md", "int8_md_lines"]

KINDS = {"nuclei": "devolens.predict.segment:NucleiPredictor", "membrane": "devolens.predict.segment:MembranePredictor"}


def is_run(folder: Path) -> bool:
    """True for a training run's folder (its best checkpoint and the checkpoint's config)."""
    return (folder / "best.json").is_file() and (folder / "best.safetensors").is_file()


def card_from_run(run: str | Path, kind: str | None = None, scale: float | None = None) -> dict:
    """The model card of a segmentation run's best checkpoint (weights: ``best.safetensors``).

    Parameters
    ----------
    run : str or Path
        The ``--out`` folder of ``devolens train``.
    kind : {"nuclei", "membrane"}, optional
        What it segments (the predictor and its post-processing); default: ``membrane`` when the
        recipe's name says so, else ``nuclei``.
    scale : float, optional
        Working resolution relative to the images the model will be given (0.5: they are halved
        first). Default: the run's ``data.scale`` (1.0 unless its recipe resized the images), so
        the model sees inputs at its training images' magnification as it saw those.

    Raises
    ------
    DevolensError
        Not a run, not a segmentation run, or trained on data the predictors cannot feed the
        same way (several channels, a fixed resize, class maps, another normalisation).
    """
    run = Path(run)
    if not is_run(run):
        raise DevolensError("not a training run (no best.json and best.safetensors; `devolens train --out` writes "
                            "them) nor a model folder (no card.json)", path=run)
    try:
        cfg = json.loads((run / "best.json").read_text())
    except (OSError, ValueError) as exc:
        raise DevolensError(f"cannot read best.json: {exc}", path=run) from None
    recipe, inp, model = cfg.get("recipe") or {}, cfg.get("input") or {}, cfg.get("model") or {}
    kind = kind or ("membrane" if "membrane" in str(recipe.get("name", "")).lower() else "nuclei")
    if kind not in KINDS:
        raise DevolensError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if cfg.get("task") != "segmentation" or model.get("kind") != "segmentation":
        raise DevolensError(f"a {cfg.get('task')!r} run: only segmentation runs segment images", path=run)
    target = inp.get("target")
    if target not in (("boundary",) if kind == "membrane" else ("boundary", "semantic")):
        need = "data.target 'boundary'" if kind == "membrane" else "data.target 'boundary' or 'semantic'"
        raise DevolensError(f"this run learned target {target!r}; {kind} segmentation needs {need}", path=run)
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
    scale = float(inp.get("scale") or 1.0) if scale is None else float(scale)
    if not scale > 0:
        raise DevolensError(f"scale must be > 0, got {scale}")
    distance = bool((recipe.get("model") or {}).get("distance_head"))
    head = ("three_class_distance" if distance else "three_class") if target == "boundary" else "foreground"
    metrics = {k: round(float(v), 4) for k, v in (cfg.get("metrics") or {}).items()
               if k.startswith("val_") and isinstance(v, (int, float))}
    steps = ("one channel: the per-pixel maximum of an RGB image's channels, as the training data were read; "
             + (f"resized by {float(scale):g} (area); " if float(scale) != 1.0 else "")
             + ("1st..99.8th percentile -> 0..1" if norm == "percentile" else "the input type's range -> 0..1 "
                "(uint8 / 255, uint16 / 65535; floats clipped to 0..1)"))
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
        "preprocessing": {"channel": "max", "percentiles": [1.0, 99.8] if norm == "percentile" else [],
                          "steps": steps},
        "postprocess": dict((recipe.get("validate") or {}).get("postprocess") or {}),
        "training_data": f"the data of the training run {run} (its recipe, split.csv and run.json say which)",
        "recipe": str(run / "recipe.yaml"),
        "command": f"devolens train <recipe> --data <data> --out {run}",
        "trained": {"run": str(run), "epoch": cfg.get("epoch"), "monitor": cfg.get("monitor"),
                    "value": cfg.get("value")},
        "metrics": metrics,
        "metrics_heading": "Metrics (the run's own validation split at its best epoch, not held-out data)",
        "headline": [k for k in ("val_f1", "val_dice", "val_iou") if k in metrics],
        "limits": ("Measured only on the training run's validation split. No size model and no reference object "
                   "size: --diameter does not apply; give images at the magnification 'scale' assumes (or export "
                   "again with another --scale). No int8 calibration: CPUs run it in bf16."),
    }


def export_run(run: str | Path, to: str | Path, kind: str | None = None, scale: float | None = None) -> dict:
    """Write a run's best checkpoint as a zoo-style folder (fp16 ``weights.safetensors``,
    ``card.json``, ``card.md``); returns the card. The folder is written atomically."""
    from safetensors.torch import load_file, save_file

    from devolens.io.atomic import StagedDir

    run, to = Path(run), Path(to)
    card = card_from_run(run, kind, scale)
    card.pop("weights_file")
    if to.exists() and (not to.is_dir() or any(to.iterdir())):
        raise DevolensError("output exists and is not an empty folder", path=to)
    try:
        state = load_file(str(run / "best.safetensors"))
    except Exception as exc:
        raise DevolensError(f"cannot read best.safetensors: {exc}", path=run) from None
    stage = StagedDir(to)
    try:
        save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()},
                  str(stage.tmp / "weights.safetensors"), metadata={"format": "pt"})
        card["name"] = to.name
        card["command"] += f"; devolens models export {run} --to {to} --kind {card['task']} --scale {card['input']['scale']:g}"
        (stage.tmp / "card.json").write_text(json.dumps(card, indent=2) + "\n")
        write_card_md(card, stage.tmp / "card.md", load_name=str(to))
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
    lines += [f"## {card.get('metrics_heading', 'Metrics (held-out renders, measured by benchmarks/eval_zoo.py)')}", ""]
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
    path.write_text("\n".join(lines))
