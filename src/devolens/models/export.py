"""Models of your own: a training run used and shared like a zoo model.

A segmentation run of ``devolens train RECIPE --data DIR --out RUN`` keeps its best checkpoint
(``best.safetensors`` and ``best.json``: architecture, data settings, the recipe). This module turns
it into a model card, so that::

    devolens segment nuclei INPUT --model RUN --out DIR           # the run's best checkpoint, as it is
    devolens models export RUN --to my_nuclei                     # a zoo-style folder to keep or share
    devolens segment nuclei INPUT --model my_nuclei --out DIR
    load("my_nuclei").predict(image)                               # Python: a folder path works as a name

An exported folder has the zoo's layout (fp16 ``weights.safetensors``, ``card.json``, ``card.md``), and its card
says what the folder alone cannot: the run's recipe (its content), its data (path, sample count and fingerprint from
``run.json``), the commands as run, the devolens and torch versions of the training and of the export, the
post-processing the predictor applies (its defaults written out) and how devolens runs the network
(:func:`engine_card`). ``devolens models export NAME --to DIR`` with a shipped model's name copies its folder
(:func:`export_shipped`). Every card written (:func:`write_card`) records its weights' sha256.
What a run cannot know is written into its card plainly: its metrics are the run's own validation
split (not held-out data), there is no size model (``--diameter`` does not apply: give images at the
magnification ``scale`` assumes), no int8 calibration (CPUs run it in bf16), and ``scale`` is the
working resolution relative to the images you will give it (the recipe's ``data.scale``: 1.0 unless
the training images were resized; ``--scale`` on export overrides it). ``scale`` is bounded like the
recipe's ``data.scale`` (:func:`check_scale`), on export and whenever an exported card is read.

What a run segments (its ``kind``) is judged from its recipe's ``model.init`` (a shipped nuclei or membrane
model), ``augment.preset: membrane`` and its data's render kind, as the trainer judges a recipe, then from the
recipe's name (``membrane`` in it), else nuclei (:func:`judged_kind`), by ``devolens train``'s tip, ``models
export`` and ``--model RUN`` alike; a command that asks a run for the other kind is refused
(:func:`card_from_run`), while ``models export --kind`` overrides it on purpose.

Also the Markdown card writer shared with ``scripts/zoo_ship.py``.
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

from devolens.errors import DevolensError, command_running

__all__ = ["KINDS", "is_run", "card_from_run", "export_run", "export_shipped", "named_kind", "judged_kind",
           "folder_use", "check_scale",
           "scale_bounds", "card_md", "write_card", "write_card_md", "int8_md_lines", "zoo_init_name",
           "POSTPROCESS_DEFAULTS", "applied_postprocess", "engine_card"]

KINDS = {"nuclei": "devolens.predict.segment:NucleiPredictor", "membrane": "devolens.predict.segment:MembranePredictor"}

#: the post-processing each segmentation predictor applies where its card gives none (``_finish`` of
#: :class:`~devolens.predict.segment.NucleiPredictor` and :class:`~devolens.predict.segment.MembranePredictor`; a
#: test holds the two to the same values): what an exported card writes out (:func:`applied_postprocess`)
POSTPROCESS_DEFAULTS = {
    "nuclei": {"threshold": 0.5, "seed_threshold": 0.5, "min_distance": 3.0, "min_size": 8, "smooth": 1.0,
               "split_seeds": False, "isolated_fraction": 0.0, "isolated_min_objects": 0},
    "membrane": {"threshold": 0.5, "seed_threshold": 0.5, "min_distance": 3.0, "min_size": 20, "smooth": 1.0},
}

#: what each command says of a run of another task than segmentation (``{task!r}``: the run's)
_ONLY_SEGMENTATION = {
    None: "only segmentation runs segment images: this is a {task!r} run",
    "models export": "models export exports segmentation runs only: this is a {task!r} run",
    "models show": "models show makes cards of segmentation runs only (from their best checkpoint): this is a "
                   "{task!r} run (its run.json and history.csv tell how it went)",
}


#: added to those words for a count run of the user's own (task population): how it is used instead
_COUNT_RUN = ("; a count run is used as it is: `devolens population INPUT --model RUN --out counts.csv` or "
              "`devolens.models.load(RUN)` (copy the run's folder to share it), scored by `devolens evaluate RUN "
              "--data DIR`")


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


#: how :func:`_judged` words a kind read off the recipe's name (the other words name the evidence)
_BY_NAME = "recipe's name"


def _render_kind(record: dict) -> str | None:
    """The kind of ``devolens render`` folder the run trained on (its ``render.json`` ``kind``: ``nuclei`` or
    ``membrane``), read where run.json (``record``) names the data and the folder still holds it; None otherwise."""
    data = record.get("data") if isinstance(record.get("data"), dict) else {}
    path = data.get("path")
    if not isinstance(path, str) or not path:
        return None
    try:
        kind = json.loads((Path(path) / "render.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return kind if kind in KINDS else None


def _judged(recipe: dict, record: dict | None = None) -> tuple[str | None, str]:
    """What a run segments (``nuclei``, ``membrane``) and what says so (words that follow "by its"), judged as the
    trainer judges a recipe (:func:`devolens.train.trainer.recipe_kind`): its ``model.init`` (a shipped nuclei or
    membrane model), its ``augment.preset`` when ``membrane`` (``nuclei`` tells nothing: a recipe that sets no preset,
    ``auto``, is resolved to it) and the data's render kind (:func:`_render_kind`, from run.json ``record``); then
    its recipe's name (:func:`_named`). The name also decides where it says the other kind than that evidence (a
    membrane network may start from the nuclei weights) or the evidence disagrees within itself. ``(None, "")``
    where nothing says."""
    said: dict[str, list[str]] = {}
    model = recipe.get("model") if isinstance(recipe.get("model"), dict) else {}
    augment = recipe.get("augment") if isinstance(recipe.get("augment"), dict) else {}
    shipped = zoo_init_name(model.get("init"))
    if shipped in KINDS:
        said.setdefault(shipped, []).append(f"model.init {model['init']}")
    if augment.get("preset") == "membrane":
        said.setdefault("membrane", []).append("augment.preset membrane")
    rendered = _render_kind(record or {})
    if rendered:
        path = (record or {})["data"]["path"]
        said.setdefault(rendered, []).append(f"data (a {rendered} render: {path})")
    named = _named(recipe)
    if len(said) == 1 and named in (None, *said):
        kind, why = next(iter(said.items()))
        return kind, " and ".join([", ".join(why[:-1]), why[-1]] if len(why) > 1 else why)
    if named:
        return named, f"{_BY_NAME} {recipe.get('name')!r}"
    return None, ""


def judged_kind(run: str | Path) -> tuple[str | None, str]:
    """What training run ``run`` segments and what says so (:func:`_judged`: its recipe's ``model.init``,
    ``augment.preset``, its data's render kind, then its name); ``(None, "")`` when nothing says or best.json cannot
    be read (:func:`card_from_run` says why). ``devolens train``'s tip, ``models export`` and ``--model RUN`` keep to
    it."""
    try:
        cfg = json.loads((Path(run) / "best.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None, ""
    recipe = cfg.get("recipe") if isinstance(cfg, dict) else None
    return _judged(recipe, _run_record(Path(run))) if isinstance(recipe, dict) else (None, "")


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


def pair_remedy(path: Path) -> str:
    """What to do with the weights ``path`` and the JSON beside them when the two are from different saves
    (:func:`devolens.io.together.check_unit`): a run's best model (``best.safetensors``) is saved again by
    ``--resume`` of an unfinished run (else trained again), other files (a ``devolens train --export``) saved again."""
    if path.name == "best.safetensors":
        # the best pair is saved before the checkpoint: a kill between its two files leaves the checkpoint an epoch
        # behind, and --resume trains that epoch again and saves the best pair anew
        return ("the run's best model cannot be used as it is: if the run did not finish, `devolens train` with "
                "--resume (same recipe, data and --out) trains its last epoch again and saves the best model anew; "
                "else train the run again (in another --out)")
    return ("save the model again (an --export of `devolens train`: the same `devolens train` command with --resume "
            "and the same --export writes it anew, training no further)")


def _run_config(run: Path, command: str | None, tasks: tuple[str, ...] = ("segmentation",)) -> dict:
    """The run's best.json, checked to be the config ``devolens train`` writes for a network of one of ``tasks``
    (a segmentation network; ``"population"``: a count regressor too), and to be of the same save as
    best.safetensors (:func:`devolens.io.together.check_unit`)."""
    from devolens.io.together import check_unit
    from devolens.models.zoo import read_json

    cfg = read_json(run / "best.json", run, ": a damaged run?")
    if not isinstance(cfg, dict):
        raise DevolensError("best.json is not a checkpoint's config (a JSON object): a damaged run?", path=run)
    check_unit(run / "best.safetensors", run / "best.json", cfg, pair_remedy(run / "best.safetensors"))
    for key in ("recipe", "input", "model", "metrics"):
        if not isinstance(cfg.get(key) or {}, dict):
            raise DevolensError(f"best.json: {key!r} is not a mapping: a damaged run?", path=run)
    task = cfg.get("task")
    if task is None:
        raise DevolensError("best.json names no task (`devolens train` writes it beside best.safetensors): a damaged "
                            "run, or a file of another program?", path=run)
    if task not in tasks:
        said = _ONLY_SEGMENTATION.get(command, _ONLY_SEGMENTATION[None]).format(task=task)
        raise DevolensError(said + (_COUNT_RUN if task == "population" else ""), path=run)
    network = "regressor" if task == "population" else "segmentation"
    kind = (cfg.get("model") or {}).get("kind")
    if kind != network:
        what = "no count regressor" if task == "population" else "no segmentation network"
        raise DevolensError(f"best.json describes {what} (model kind {kind!r}): a damaged run?", path=run)
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


def _run_record(run: Path) -> dict:
    """The run's ``run.json`` (its data, commands, versions), {} where it is missing or unreadable (a run of an
    older devolens, a copy without it)."""
    try:
        record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _run_start(record: dict, cfg: dict | None = None) -> dict:
    """What a fine-tuning run's run.json (``record``) says of its starting weights: their score before the first
    epoch (``start_value``, ``init``) and, when no epoch beat them, the line saying so (``note``; where the best
    epoch only tied them, :func:`devolens.train.trainer.tie_line`'s, ``tied``, which no load warns of). That line is
    decided here from the starting score and the best epoch's (``cfg``: best.json's ``epoch`` and ``value``, else
    run.json's ``best_epoch`` and ``best_value``), as :func:`devolens.train.trainer._start_verdict` decides it at the
    end of a run: also for a run stopped before its end (Ctrl-C, a pruned tuning trial), whose run.json never got
    ``not_beaten``."""
    from devolens.train.trainer import _start_verdict, tie_line, tied_start

    start = record.get("start")
    if not isinstance(start, dict) or not isinstance(start.get("value"), (int, float)):
        return {}
    out = {"init": start.get("init"), "start_value": start.get("value")}
    cfg = cfg or {}
    best_value, best_epoch = cfg.get("value"), cfg.get("epoch")
    if not isinstance(best_value, (int, float)) or not isinstance(best_epoch, int):
        best_value, best_epoch = record.get("best_value"), record.get("best_epoch")
    mode = record.get("mode") if record.get("mode") in ("min", "max") else None
    verdict = None
    if mode is not None and isinstance(best_epoch, int) and isinstance(best_value, (int, float)):
        verdict = _start_verdict(start.get("init"), str(start.get("monitor") or record.get("monitor")), mode,
                                 float(start["value"]), float(best_value), best_epoch)
        if verdict is not None and start.get("not_beaten"):  # the trainer's own line, where it still holds (a
            verdict = str(start["not_beaten"])  # resumed run stopped after an epoch that beat the start: none)
    elif start.get("not_beaten"):  # a run.json without the best epoch's score: its own word
        verdict = str(start["not_beaten"])
    if verdict:
        out["note"] = verdict
    elif mode is not None and isinstance(best_value, (int, float)) and tied_start(start["value"], best_value):
        # no loss, so no note (nor a warning on load), but said: the run's weights only match its start's
        out["tied"] = tie_line(start.get("init"), str(start.get("monitor") or record.get("monitor")),
                               float(start["value"]))
    return out


def _count(value) -> int | None:
    """``value`` where it is a count (an int, no bool, not negative), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``... (an epoch as devolens' messages count them)."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _run_pruned(run: Path, record: dict, recipe: dict, best: object) -> tuple[str, dict]:
    """What ``--prune-top`` (``train.prune_top``) did to run ``run``, for its card's training data: words to follow its
    split ("; after 2 epochs the 2 highest-loss training samples were dropped...", how many the best weights learned
    from) and ``trained["pruned"]``; ``("", {})`` where its ``pruned.csv`` lists no sample (none pruned, or no
    pruning). ``best``: best.json's epoch (counted from 0)."""
    try:
        with (run / "pruned.csv").open(encoding="utf-8") as f:
            dropped = max(0, sum(1 for line in f if line.strip()) - 1)  # its rows below the header
    except (OSError, UnicodeDecodeError):
        return "", {}
    train = recipe.get("train") if isinstance(recipe.get("train"), dict) else {}
    after, active = _count(train.get("prune_after")), _count(record.get("n_active"))
    n_train = _count(record.get("n_train"))
    if not dropped or after is None or active is None:
        return "", {}
    restart = train.get("prune_restart", True) is not False
    top = train.get("prune_top")
    share = f" ({top:g} %, --prune-top / train.prune_top)" if isinstance(top, (int, float)) else ""
    text = (f"; after {after} epoch{'s' if after != 1 else ''} the {dropped} highest-loss training sample"
            f"{'s were' if dropped != 1 else ' was'} dropped{share}, listed in the run's "
            f"{(run / 'pruned.csv').resolve()}, and ")
    if restart:
        text += (f"the weights trained afresh on the other {active} (train.prune_restart): the best weights learned "
                 f"from those {active} alone")
    else:
        text += f"training went on with the other {active}"
        if isinstance(best, int) and best < after and n_train is not None:
            text += f" (the best epoch, the {_ordinal(best + 1)}, came before: it learned from all {n_train})"
    return text, {"samples": dropped, "after_epochs": after, "restart": restart, "trained_on": active,
                  "csv": str((run / "pruned.csv").resolve())}


#: words of a run's notes (run.json ``notes``) that its validation scores cannot be taken as they are (an image that
#: validates is a copy of one that trains: :func:`devolens.data.datasets.split_copies`): such notes go into the
#: card's limits
SCORE_NOTE_WORDS = ("read too high",)


def _score_notes(record: dict) -> list[str]:
    """The notes of run.json (``record``) that say its validation scores mislead (:data:`SCORE_NOTE_WORDS`)."""
    notes = record.get("notes") if isinstance(record.get("notes"), list) else []
    return [n for n in notes if isinstance(n, str) and any(w in n for w in SCORE_NOTE_WORDS)]


def _tune_trial(run: Path) -> dict | None:
    """Where run ``run`` is a trial of a ``devolens tune`` study (``OUT/trials/trial_NNNN``, beside the study's
    ``trials.csv``, ``best.json`` or ``study.db``): its ``trial`` number, the study's ``folder`` and, where the
    study's best.json names it, its ``study`` name; None for any other run."""
    import re

    hit = re.fullmatch(r"trial_(\d+)", run.name)
    folder = run.resolve().parent.parent
    if hit is None or run.resolve().parent.name != "trials" or not any(
            (folder / name).exists() for name in ("trials.csv", "best.json", "study.db")):
        return None
    out = {"trial": int(hit.group(1)), "folder": str(folder)}
    try:
        study = json.loads((folder / "best.json").read_text(encoding="utf-8")).get("study")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        study = None
    if isinstance(study, str) and study:
        out["study"] = study
    return out


def _epochs_said(record: dict, recipe: dict, best: object) -> dict:
    """The epochs run.json (``record``) says the run trained (``epochs``), and where they are not the ``train.epochs``
    of the recipe best.json holds (the recipe its best epoch was saved with: ``--resume --epochs`` trained on past
    it, or the run stopped early) a line saying so (``epochs_note``)."""
    done = _count(record.get("epochs_done"))
    if done is None:
        return {}
    train = recipe.get("train") if isinstance(recipe.get("train"), dict) else {}
    planned = _count(train.get("epochs"))
    if planned is None or planned == done:
        return {"epochs": done}
    which = f" (the {_ordinal(best + 1)})" if isinstance(best, int) and not isinstance(best, bool) else ""
    if done > planned:
        said = (f"the run trained {done} epochs: the recipe above, train.epochs {planned}, is the one its best "
                f"epoch{which} was saved with, and a later session (--resume --epochs) trained on to {done}")
    else:
        said = (f"the run trained {done} of the {planned} epochs its recipe's train.epochs sets (it stopped before "
                "the end)")
        if not record.get("stopped_early"):  # (train.early_stop ended it: finished as asked)
            return {"epochs": done, "epochs_note": said, "unfinished": (
                f"the run trained {done} of the {planned} epochs its recipe sets and did not finish (interrupted, or "
                "still training): its best checkpoint so far is used; `devolens train` with --resume (the same "
                "recipe, data and --out) trains the rest")}
    return {"epochs": done, "epochs_note": said}


def _run_provenance(run: Path, record: dict, recipe: dict | None = None, best: object = None) -> tuple[str, str, dict]:
    """What ``run.json`` (``record``) says of how run ``run`` was made, for its card: ``training_data`` (the data's
    path, sample count and fingerprint, the split's sizes and what ``--prune-top`` dropped: :func:`_run_pruned`),
    ``command`` (the training commands as run, one per session; for a trial of ``devolens tune``, which records none,
    a comment naming the study and trial (:func:`_tune_trial`); for a run trained through the Python API the
    equivalent command, with its data's path where the record has it) and the ``trained`` entries (``data``,
    ``n_train``, ``n_val``, ``pruned``, ``tune``, and the ``devolens`` and ``torch`` versions that trained it).
    ``recipe``: best.json's; ``best``: its epoch."""
    data = record.get("data") if isinstance(record.get("data"), dict) else {}
    trained = {k: record[k] for k in ("n_train", "n_val", "devolens", "torch") if record.get(k) is not None}
    if data:
        trained["data"] = {k: data[k] for k in ("path", "samples", "fingerprint") if k in data}
    if data.get("path"):
        said = [f"{data['samples']} samples" if data.get("samples") is not None else "",
                f"fingerprint {data['fingerprint']}" if data.get("fingerprint") else ""]
        text = f"the data of the training run {run.name}: {data['path']}"
        text += f" ({', '.join(x for x in said if x)})" if any(said) else ""
        if "n_train" in trained and "n_val" in trained:
            text += f"; split {trained['n_train']} for training, {trained['n_val']} for validation"
            # which ones: the run's split.csv, by its absolute path (the card does not copy it: its sample names are
            # paths in the data folder, which the card names by its absolute path too)
            split_csv = (run / "split.csv").resolve()
            if split_csv.is_file():
                trained["split_csv"] = str(split_csv)
                text += f" (listed in the run's {split_csv})"
            pruned, facts = _run_pruned(run, record, recipe or {}, best)
            if facts:
                text += pruned
                trained["pruned"] = facts
        text += "."
    else:
        text = f"the data of the training run {run} (its run.json names none: a run of an older devolens?)"
    sessions = record.get("sessions") if isinstance(record.get("sessions"), list) else []
    commands = [x["command"] for x in sessions if isinstance(x, dict) and isinstance(x.get("command"), str)]
    if not commands and isinstance(record.get("command"), str):
        commands = [record["command"]]
    commands = list(dict.fromkeys(commands))  # a run resumed with the same command: once
    trial = _tune_trial(run) if not commands else None
    if trial is not None:  # a tune study's trial: trained by `devolens tune`, no command of its own (said as a comment)
        trained["tune"] = trial
        study = f" {trial['study']!r}" if trial.get("study") else ""
        commands = [f"# trial {trial['trial']} of the devolens tune study{study} in {trial['folder']}: trained by the "
                    f"study, with the card's recipe (the trial's settings), on {data.get('path') or 'its data'} (no "
                    "command of its own)"]
    elif not commands:  # trained through the Python API (no command line recorded): its equivalent
        commands = [f"devolens train <recipe: the card's> --data {data.get('path') or '<data>'} --out {run}"]
    command = "; ".join(commands)
    return text, command, trained


def card_from_run(run: str | Path, kind: str | None = None, scale: float | None = None, *,
                  command: str | None = None) -> dict:
    """The model card of a segmentation run's best checkpoint (weights: ``best.safetensors``).

    Parameters
    ----------
    run : str or Path
        The ``--out`` folder of ``devolens train``.
    kind : {"nuclei", "membrane"}, optional
        What it segments (the predictor and its post-processing); default: what the run is judged to
        be (:func:`judged_kind`: its recipe's ``model.init``, ``augment.preset``, its data's render
        kind, then its name), else ``nuclei``. A kind other than that (a membrane run asked for nuclei:
        ``devolens segment nuclei --model RUN``) is refused, except for ``command="models export"``,
        whose ``--kind`` is the user's deliberate choice.
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
        kind the run is judged not to be, or trained on data the predictors cannot feed the
        same way (several channels, a fixed resize, class maps, another normalisation).
    """
    run = Path(run)
    if kind is not None and kind not in KINDS:  # options first, before anything is read
        raise DevolensError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if scale is not None:
        scale = check_scale(scale)
    if not is_run(run):
        raise _not_a_run(run, command)
    # a count run (task population): its card, used (population --model, load), shown or exported as it is
    cfg = _run_config(run, command, ("segmentation", "population"))
    if cfg["task"] == "population":
        given = [o for o, v in (("--kind", kind), ("--scale", scale)) if v is not None]
        if command == "models export" and given:
            both = len(given) == 2
            raise DevolensError(f"{' and '.join(given)} {'do' if both else 'does'} not apply to a count run (task "
                                "population): it reads each frame as its training frames were read; leave "
                                f"{'them' if both else 'it'} out", path=run)
        return count_card(run, cfg)
    recipe, inp, model = cfg.get("recipe") or {}, cfg.get("input") or {}, cfg.get("model") or {}
    record = _run_record(run)
    asked, (judged, why) = kind, _judged(recipe, record)
    kind = kind or judged or "nuclei"
    target = inp.get("target")
    if target == "classes":  # the live/dead recipe's target: `segment livedead` uses the run, not a nuclei predictor
        import shlex

        use = f"`devolens segment livedead WELL --model {shlex.quote(str(run))} --out DIR`"
        raise DevolensError(_CLASS_MAP_RUN.get(command, _CLASS_MAP_RUN[None]).format(kind=kind, use=use), path=run)
    if target not in (("boundary",) if kind == "membrane" else ("boundary", "semantic")):
        need = "data.target 'boundary'" if kind == "membrane" else "data.target 'boundary' or 'semantic'"
        raise DevolensError(f"this run learned target {target!r}; {kind} segmentation needs {need}", path=run)
    if asked is not None and judged not in (None, asked) and command != "models export":
        # a membrane run read as nuclei counts the cells between membranes as nuclei without a hint that anything
        # is off (and the reverse)
        raise DevolensError(f"a {judged} run (by its {why}), not a {kind} model: use `devolens segment {judged}`, or "
                            f"export it as {kind} on purpose (`devolens models export RUN --to FOLDER --kind {kind}`) "
                            "and give that folder", path=run)
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
    told = _run_told(run, cfg, record, "Measured only on the training run's validation split. No size model and no "
                     "reference object size: --diameter does not apply; give images at the magnification 'scale' "
                     "assumes (or export again with another --scale). No int8 calibration: CPUs run it in bf16.")
    limits = told.pop("limits")
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
        **told,  # (limits last, after the headline, as a card has them)
        "headline": [k for k in ("val_f1", "val_dice", "val_iou") if k in told["metrics"]],
        "limits": limits,
    }


def _run_told(run: Path, cfg: dict, record: dict, limits: str) -> dict:
    """What a run's card says of how it was made, in the card's order (:func:`card_from_run`, :func:`count_card`):
    ``training_data``, the ``recipe`` itself (best.json holds it as trained: the card says it wherever the folder
    goes), ``command``, ``trained``, its validation ``metrics`` and their heading, and ``limits`` (the card's
    ``limits`` text, with the run's own notes that its validation split flatters it)."""
    recipe = cfg.get("recipe") or {}
    training_data, command, made = _run_provenance(run, record, recipe, cfg.get("epoch"))
    misled = _score_notes(record)
    if misled:  # the run's own word that its validation split flatters it: the metrics above cannot be taken as read
        limits += " The run noted: " + " ".join(f"{n[0].upper()}{n[1:]}." for n in misled)
    return {
        "training_data": training_data,
        "recipe": recipe if recipe else str(run / "recipe.yaml"),
        "command": command,
        "trained": {"run": str(run.resolve()), "epoch": cfg.get("epoch"), "monitor": cfg.get("monitor"),
                    "value": cfg.get("value"), **_run_start(record, cfg), **made,
                    **_epochs_said(record, recipe, cfg.get("epoch"))},
        "metrics": {k: round(float(v), 4) for k, v in (cfg.get("metrics") or {}).items()
                    if k.startswith("val_") and isinstance(v, (int, float))},
        "metrics_heading": "Metrics (the run's own validation split at its best epoch, not held-out data)",
        "limits": limits,
    }


def trained_frames(inp: object, where: Path, what: str, damaged: str = "") -> dict:
    """How a count run's frames were prepared (``channels``, ``channel``, ``size``, ``scale``, ``normalize``), read
    from ``inp`` (its best.json's ``input``, or a card's ``input.as_trained``: ``what`` names it in errors, which name
    the file ``where`` and end with ``damaged``), each checked: a :class:`DevolensError` in one line for a value the
    training engine cannot have written (a card edited by hand)."""
    from devolens.data.datasets import CHANNEL_NAMES
    from devolens.train.recipe import SCHEMA

    if not isinstance(inp, dict):
        raise DevolensError(f"{what} is {type(inp).__name__} {inp!r}, not a mapping{damaged}", path=where)
    size = inp.get("size")
    if size is not None and not (isinstance(size, list) and len(size) == 2
                                 and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 8192
                                         for v in size)):
        raise DevolensError(f"{what}.size is {size!r}, not the (height, width) the run's frames were resized to (or "
                            f"null){damaged}", path=where)
    channels = inp.get("channels", 1)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise DevolensError(f"{what}.channels is {channels!r} (1 or 3){damaged}", path=where)
    scale = check_scale(inp.get("scale", 1.0), f"{what}.scale", path=where)
    norm = inp.get("normalize", "dtype")
    if norm not in SCHEMA["data"]["normalize"].choices:
        raise DevolensError(f"{what}.normalize is {norm!r} (one of {', '.join(SCHEMA['data']['normalize'].choices)})"
                            f"{damaged}", path=where)
    channel = inp.get("channel")
    index = isinstance(channel, int) and not isinstance(channel, bool) and channel >= 0
    if not (channel is None or index or channel in CHANNEL_NAMES):
        raise DevolensError(f"{what}.channel is {channel!r} (null, a channel's index or one of "
                            f"{', '.join(CHANNEL_NAMES)}){damaged}", path=where)
    return {"channels": int(channels), "channel": channel, "size": size, "scale": float(scale), "normalize": norm}


def count_card(run: Path, cfg: dict) -> dict:
    """The card of a count run's best checkpoint (``task: population``, best.json ``cfg``): a
    :class:`~devolens.predict.population.PopulationPredictor` of method ``regressor`` whose frames are prepared as
    the run's training frames were (``input``: its ``data.channels``, ``channel``, ``scale``, ``size`` and
    ``normalize``, read by :class:`~devolens.data.datasets.PopulationDataset`'s own preparation) and whose outputs are
    the run's ``data.counts``."""
    inp, model = cfg.get("input") or {}, cfg.get("model") or {}
    counts = inp.get("counts")
    if not (isinstance(counts, list) and counts and all(isinstance(c, str) for c in counts)):
        raise DevolensError(f"best.json: input.counts is {counts!r}, not the list of counts the run regresses: a "
                            "damaged run?", path=run)
    spec = trained_frames(inp, run, "best.json: input", ": a damaged run?")
    size, channels, scale, norm, picked = (spec[k] for k in ("size", "channels", "scale", "normalize", "channel"))
    resized = (f"resized to {size[0]}x{size[1]} px (height x width, the frame's aspect not kept)" if size else
               f"resized by {float(scale):g}" if float(scale) != 1.0 else "at its own size")
    steps = (("its channel " + repr(picked) if picked is not None else
              "one channel (a colour frame's per-pixel maximum)" if channels == 1 else "three channels")
             + f", {resized}, normalised by {norm!r} (data.normalize): as the run's training frames were prepared "
             + "(devolens.data.datasets.PopulationDataset), without augmentation")
    total = ""  # the rule of PopulationPredictor._regressed_row, where the letters are all regressed
    if set("AEMPCDZ") <= set(counts):
        total = ("; the total is its own total output (the letters need not add up to it)" if "total" in counts
                 else "; the total is the sum of the seven letters")
    limits = ("Measured only on the training run's validation split. Frames are read as the run's training frames "
              f"were (the whole frame {resized}): give frames framed and magnified as those "
              "were; no size model (--diameter does not apply) and no developmental clock (--clock). Counts the run "
              f"does not regress are left empty ({', '.join(counts)} regressed){total}.")
    told = _run_told(run, cfg, _run_record(run), limits)
    limits = told.pop("limits")
    return {
        "name": run.name,
        "task": "population",
        "summary": f"counts of your own ({', '.join(counts)}): best checkpoint of the training run {run.name}",
        "predictor": "devolens.predict.population:PopulationPredictor",
        "method": "regressor",
        "weights_file": "best.safetensors",
        "architecture": model,
        "outputs": list(counts),
        "input": {"channels": "HxW grey or HxWx3 RGB, any size" + (" (resized to the run's input size)" if size
                                                                      else ""),
                  "size": size, "as_trained": spec},
        "preprocessing": {"channel": "as_trained", "steps": steps},
        **told,
        "headline": [k for k in ("val_mae",) if k in told["metrics"]],  # (val_count_mae: val_mae_total again)
        "limits": limits,
    }


#: what :func:`export_run` writes into its folder (an earlier export holding these alone is replaced); an exported
#: shipped model (:func:`export_shipped`) also holds the files its card names (:func:`_card_files`)
EXPORT_FILES = frozenset({"weights.safetensors", "card.json", "card.md"})


def _onnx_files(card: dict) -> set[str]:
    """The files of the card's ONNX graphs (``onnx``, scripts/zoo_onnx.py): graphs and their tensors, but the weights
    (``weights.safetensors``, which the encoder graph reads)."""
    graphs = card.get("onnx") if isinstance(card.get("onnx"), dict) else {}
    names = {n for entry in graphs.values() if isinstance(entry, dict)
             for n in (entry.get("graph"), entry.get("tensors"))}
    return {n for n in names if isinstance(n, str)} - {"weights.safetensors"}


def _card_files(card: dict) -> set[str]:
    """The files of a model folder beside :data:`EXPORT_FILES` that ``card`` names: its size models
    (``input.diameter.auto.file`` and its ``backdrop.file``) and its ONNX graphs and their tensors (``onnx``), plain
    names inside the folder only."""
    inp = card.get("input") if isinstance(card.get("input"), dict) else {}
    diameter = inp.get("diameter") if isinstance(inp.get("diameter"), dict) else {}
    auto = diameter.get("auto") if isinstance(diameter.get("auto"), dict) else {}
    backdrop = auto.get("backdrop") if isinstance(auto.get("backdrop"), dict) else {}
    names = {auto.get("file"), backdrop.get("file")}
    names |= _onnx_files(card)
    return {n for n in names if isinstance(n, str) and n and Path(n).name == n and n not in (".", "..")}


def _earlier_export(folder: Path) -> set[str] | None:
    """The files of an earlier export in ``folder`` (:func:`export_run`'s or :func:`export_shipped`'s: those of
    :data:`EXPORT_FILES` and the files its card names, nothing else; its card a devolens card, a JSON object with a
    ``task``), so that exporting again (a run trained further) replaces them; None for any other folder."""
    names = {e.name for e in folder.iterdir() if not e.name.startswith(".")}
    if "card.json" not in names:
        return None
    try:
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not (isinstance(card, dict) and "task" in card) or not names <= EXPORT_FILES | _card_files(card):
        return None
    return names


def _check_to(to: Path) -> set[str]:
    """Refuse an output folder that is neither new, empty nor an earlier export; the earlier export's files (to
    remove those the new export does not write again), empty otherwise."""
    if not to.exists():
        return set()
    from devolens.models import zoo

    if to.resolve().is_relative_to(Path(zoo.ZOO_DIR).resolve()):  # (a shipped model's folder looks like an export)
        raise DevolensError("output is inside devolens' own model zoo: export to a folder of yours", path=to)
    earlier = _earlier_export(to) if to.is_dir() else None
    if not to.is_dir() or (earlier is None and any(to.iterdir())):
        raise DevolensError("output exists and is not an empty folder or an earlier export (weights.safetensors, "
                            "card.json, card.md and the size models its card names, alone)", path=to)
    return earlier or set()


@contextlib.contextmanager
def _staged_export(to: Path, earlier: set[str], written: set[str]):
    """Stage an export of ``to`` (the body writes the files ``written`` into the folder it is given), then put it in
    place and remove the files of an ``earlier`` export it did not write again (:func:`_drop_leftovers`); an error
    or a stop in the body leaves ``to`` as it was."""
    from devolens.io.atomic import StagedDir

    stage = StagedDir(to)
    try:
        yield stage.tmp
    except BaseException:
        stage.abort()
        raise
    stage.commit()
    _drop_leftovers(to, earlier, written)


def _drop_leftovers(to: Path, earlier: set[str], written: set[str]) -> None:
    """Remove the files of an earlier export in ``to`` that the new one did not write (a shipped model's size models
    under a run's export): the folder then holds the new export alone."""
    for name in sorted(earlier - written):
        try:
            (to / name).unlink()
        except FileNotFoundError:
            pass


def applied_postprocess(card: dict) -> dict:
    """The post-processing a segmentation predictor applies for ``card``: the card's ``postprocess`` over the
    predictor's defaults (:data:`POSTPROCESS_DEFAULTS`), the options it does not use left out; the card's own
    ``postprocess`` for other tasks."""
    own = dict(card.get("postprocess") or {})
    defaults = POSTPROCESS_DEFAULTS.get(card.get("task"))
    if defaults is None:
        return own
    return {key: own.get(key, value) for key, value in defaults.items()}


def export_run(run: str | Path, to: str | Path, kind: str | None = None, scale: float | None = None) -> dict:
    """Write a run's best checkpoint as a zoo-style folder (fp16 ``weights.safetensors``,
    ``card.json``, ``card.md``); returns the card. The folder is written atomically.

    ``kind`` overrides what the run is judged to segment (see :func:`card_from_run`); ``scale`` must be within
    :func:`scale_bounds`. An exported folder given as ``run`` is refused (copy it to share it). ``to`` may be new,
    empty, or an earlier export (:func:`_earlier_export`), which is replaced. The card adds to
    :func:`card_from_run`'s the post-processing the predictor applies (:func:`applied_postprocess`), how devolens runs
    the network (:func:`engine_card`), the export's devolens and torch versions (``exported``) and the weights'
    sha256 (:func:`write_card`).
    """
    from devolens.io.tensors import load_tensors, save_tensors
    from devolens.provenance import torch_version, version_keys

    run, to = Path(run), Path(to)
    card = card_from_run(run, kind, scale, command="models export")
    card.pop("weights_file")
    earlier = _check_to(to)
    try:
        state = load_tensors(run / "best.safetensors")
    except DevolensError:
        raise
    except Exception as exc:
        raise DevolensError(f"cannot read best.safetensors: {exc}", path=run) from None
    if card["task"] != "population":  # (a count regressor has no post-processing, and runs no int8)
        card["postprocess"] = applied_postprocess(card)  # written out: the predictor's defaults would apply unsaid
        card = engine_card(card)
    with _staged_export(to, earlier, set(EXPORT_FILES)) as tmp:
        weights = tmp / "weights.safetensors"
        # readable like the cards (safetensors alone writes 0600: other users could not load the model)
        save_tensors({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()},
                     weights, metadata={"format": "pt"})
        card["name"] = to.name
        card["command"] += f"; {export_command(run, to, kind, scale)}"
        card["exported"] = {**version_keys(), "torch": torch_version(), "from": str(run.resolve())}
        write_card(card, tmp, load_name=folder_use(to))  # (card.md's load() and --model: ./nuclei, not the zoo's)
    return card


def folder_use(to: str | Path) -> str:
    """How ``--model`` and ``load()`` name the model folder ``to``: as given, except that a bare shipped model's name
    (``--to nuclei``) gets ``./`` before it, as ``nuclei`` alone is the shipped model
    (:func:`devolens.models.zoo.model_folder`: a name wins over a folder of that name)."""
    from devolens.models import zoo

    text = str(to)
    return f"./{text}" if zoo.model_folder(text) is None and text in zoo.available() else text


def export_command(run: Path, to: Path, kind: str | None, scale: float | None) -> str:
    """The export command as the card records it: the command line as typed (:func:`devolens.provenance.command_line`),
    or for a call of :func:`export_run` its equivalent with the options given, none that were not (the kind and scale
    they resolve to are the card's ``task`` and ``input.scale``)."""
    import shlex

    from devolens.provenance import command_line

    typed = command_line("devolens models export")
    if typed != "devolens models export":
        return typed
    words = ["devolens", "models", "export", str(run), "--to", str(to)]
    words += ["--kind", kind] if kind is not None else []
    words += ["--scale", f"{float(scale):g}"] if scale is not None else []
    return shlex.join(words)


def start_said(card: dict, digits: int = 4) -> str | None:
    """What a fine-tuned run's card says of its starting weights (``trained``: ``init``, ``start_value``): their score
    on the run's validation split before the first epoch (to ``digits`` places); None for a card without them."""
    trained = card.get("trained") if isinstance(card.get("trained"), dict) else {}
    value = trained.get("start_value")
    if not isinstance(value, (int, float)):
        return None
    init = f" ({trained['init']})" if trained.get("init") else ""
    return f"starting weights{init}: {trained.get('monitor') or 'score'} {value:.{digits}f} before the first epoch"


def export_shipped(name: str, to: str | Path) -> dict:
    """Copy the shipped model ``name``'s folder to ``to`` as it ships (``weights.safetensors``, ``card.json``,
    ``card.md`` and the size models its card names), byte for byte, so that the copy's weights match its card's
    ``weights_sha256``; returns the card. Written atomically; ``to`` may be new, empty or an earlier export (which is
    replaced), as for :func:`export_run`.

    Raises
    ------
    DevolensError
        No shipped model of that name, ``to`` the shipped folder itself or a folder holding other files, or a file of
        the shipped folder missing.
    """
    import shutil

    from devolens.models import zoo

    if name not in zoo.available():
        zoo.card(name)  # the zoo's own message (the names it has)
    source, to = zoo.ZOO_DIR / name, Path(to)
    card = zoo.card(name)
    if to.exists() and to.resolve() == source.resolve():
        raise DevolensError(f"that is the shipped {name} model's own folder: give another --to", path=to)
    earlier = _check_to(to)
    files = sorted(EXPORT_FILES | _card_files(card))
    missing = [f for f in files if not (source / f).is_file()]
    if missing:
        raise DevolensError(f"the shipped {name} model lacks {', '.join(missing)} (a damaged install?): reinstall "
                            "devolens", path=source)
    with _staged_export(to, earlier, set(files)) as tmp:
        for f in files:
            shutil.copyfile(source / f, tmp / f)
    return card


def _nth(value: float) -> str:
    """A percentile as words: ``1st``, ``2nd``, ``99.8th``."""
    text = f"{value:g}"
    if "." in text or text.endswith(("11", "12", "13")):
        return f"{text}th"
    return text + {"1": "st", "2": "nd", "3": "rd"}.get(text[-1], "th")


#: the card sections :func:`engine_card` writes into ``preprocessing`` (beside the card's own keys)
ENGINE_PREPROCESSING = ("channel_rule", "outlier_rule", "specks", "resize", "background", "normalisation")


def engine_card(card: dict) -> dict:
    """``card`` (a nuclei or membrane card) with what devolens does between an image and its maps written out, read
    off the code's constants and the card's own ``input``, ``preprocessing`` and ``output``: in ``preprocessing``
    the exact rules of its steps (:data:`ENGINE_PREPROCESSING`: the ``auto`` channel rule, the hot-pixel step, the
    saturated specks, the resize, the background flattening's kernel, padding and blur, the normalisation), and an
    ``inference`` section (working scale, activation, what ``probability`` is, the instances and the units of
    ``postprocess``, padding, content box, tiles, blocks, output size, precision, loading the weights into
    segmentation-models-pytorch). Enough for another program (Fiji/deepImageJ, napari, a C++ server) to
    reproduce devolens' probability map from the card and the weights alone; a test holds the card's values to the
    code's. Other cards come back unchanged; a copy, ``card`` stays as it is."""
    import inspect

    from devolens.predict import _engine, blocks
    from devolens.predict import postprocess as pp
    from devolens.predict.segment import _SegmentationPredictor

    card = json.loads(json.dumps(card))
    task = card.get("task")
    if task not in KINDS:
        return card
    arch = card.get("architecture") if isinstance(card.get("architecture"), dict) else {}
    inp = card.get("input") if isinstance(card.get("input"), dict) else {}
    pre = card.setdefault("preprocessing", {})
    head = (card.get("output") or {}).get("head") or "three_class"
    depth = int(arch.get("encoder_depth", 5))
    m = int(inp.get("multiple") or 2 ** depth)
    scale = float(inp.get("scale", 1.0))
    percentiles = [float(p) for p in pre.get("percentiles", (1.0, 99.8))]
    low, high = (_nth(p) for p in percentiles) if percentiles else ("", "")
    flatten, outliers = float(pre.get("flatten") or 0.0), float(pre.get("outliers") or 0.0)
    facts: dict = {}
    if pre.get("channel", "auto") == "auto":
        facts["channel_rule"] = {
            "function": "devolens.predict.postprocess.auto_channel",
            "green_unless": 1.5, "mean_within": 0.05,
            "rule": "HxW images as they are; of RGB (RGBA: alpha ignored) each channel's signal is its 99.5th "
                    "percentile minus its median on the image shrunk 4x by two Gaussian pyramid levels (cv2.pyrDown "
                    "twice; sides under 64 px: not shrunk), every k-th pixel of every k-th row, k = "
                    f"ceil(sqrt(pixels / 8000)) (an image of {pp.CANVAS_PIXELS} px or more that is an imaged area "
                    "in a canvas of one colour: inside the area); green unless another channel's signal exceeds 1.5x "
                    "green's (then the channel of the largest signal); the mean of R, G, B when the largest and "
                    "smallest signals differ by at most 0.05 of their mean; grey stored as RGB: green"}
    if outliers > 0:
        facts["outlier_rule"] = {
            "function": "devolens.predict.postprocess.remove_outliers", "threshold": outliers,
            "rule": f"at the input's resolution, first: a pixel above each of its 8 neighbours (a 3x3 dilation "
                    f"without the centre, border reflect-101) by more than {outliers:g} x (99.8th - 1st percentile "
                    f"of every 4th pixel of every 4th row) takes the brightest neighbour's value"}
    if percentiles:
        facts["specks"] = {
            "function": "devolens.predict.postprocess.saturated_specks",
            "rule": f"16-bit data only: the pixels at {pp.SPECK_TOPS[0]}, when they are at most {pp.SPECK_SHARE:g} of "
                    f"the image, the other pixels' {high} percentile is at most {pp.SPECK_RANGE:g} of "
                    f"{pp.SPECK_TOPS[0]} and they form at most one compact blob (area >= {pp.SPECK_COMPACT:g} of its "
                    f"box) besides clusters of <= {pp.SPECK_CLUSTER} px, take the {low} percentile of "
                    "the other pixels (every 4th of every 4th row) before the resize (none in 8-bit images)"}
    facts["resize"] = ("to round(h x s) x round(w x s) working pixels (at least 1; Python's round, halves to even: "
                       "513 x 0.5 -> 256), s the working scale "
                       "(inference.working_scale): cv2.INTER_AREA when shrinking, cv2.INTER_LINEAR when enlarging")
    if flatten > 0 and percentiles:
        k = max(3, int(round(flatten / 4)) | 1)
        facts["background"] = {
            "function": "devolens.predict.postprocess.flatten_background",
            "width": flatten, "shrink": 4, "kernel": k, "kernel_shape": "ellipse", "padding": "replicate",
            "padding_px": k, "sigma": k / 2, "enlarge": "bilinear",
            "rule": f"on the working image, after the resize: shrink to floor(w / 4) x floor(h / 4) (each at least 1) "
                    f"(cv2.INTER_AREA); pad {k} px on every side by repeating the edge pixels "
                    f"(cv2.BORDER_REPLICATE); grey-level opening with a {k}x{k} ellipse (cv2.MORPH_ELLIPSE; kernel = "
                    f"max(3, round(width / 4) | 1)); Gaussian blur, sigma {k / 2:g} = kernel / 2 (cv2.GaussianBlur, "
                    f"kernel size from sigma, border reflect-101); cut the {k} px padding off; enlarge to the working "
                    "size (cv2.INTER_LINEAR) and subtract from the working image (values may go below 0)"}
    facts["normalisation"] = (
        {"function": "devolens.predict.postprocess.normalize_percentile",
         "rule": f"the {low} percentile -> 0 and the {high} -> 1 (numpy's linear "
                 "percentiles of every k-th pixel of every k-th row, k = max(1, int(sqrt(pixels / 250000)))), "
                 "clipped to 0..1; NaN and infinite pixels count as the lowest finite value; an image of "
                 f"{pp.CANVAS_PIXELS} px or more that is an imaged area in a canvas of one value: percentiles of "
                 "the area"}
        if percentiles else
        {"rule": "the input type's range -> 0..1 (uint8 / 255, uint16 / 65535; floats clipped to 0..1); no "
                 "background flattening"})
    for key in ENGINE_PREPROCESSING:
        pre.pop(key, None)
    pre.update(facts)

    ref = (inp.get("diameter") or {}).get("reference") if isinstance(inp.get("diameter"), dict) else None
    objects = "nucleus" if task == "nuclei" else "cell"
    inf: dict = {
        "working_scale": f"input.scale ({scale:g})" + (
            f" x input.diameter.reference ({float(ref):g}) / the typical {objects} diameter in input pixels where one "
            "is given (--diameter PX, diameter=PX) or estimated (--diameter auto, the CLI's default: one estimate "
            "per call: per folder, movie or stack; --diameter each: one per image)" if ref else "")
        + "; the sizes in postprocess are pixels at this working resolution"}
    if head == "three_class_distance":
        inf["activation"] = "softmax over the first 3 output channels, sigmoid of the 4th (the distance head)"
    elif head == "three_class":
        inf["activation"] = "softmax over the 3 output channels (background, interior, boundary)"
    else:
        inf["activation"] = "sigmoid of each output channel"
    seeds = ("the distance channel" if head == "three_class_distance" else "p(interior)" if head == "three_class"
             else "the second channel (none with one channel: distance-transform seeds)")
    if task == "nuclei":
        inf["probability"] = ("1 - p(background): the result's probability (nuclei), not p(interior)"
                              if head.startswith("three_class") else "the first channel")
        inf["instances"] = (f"devolens.predict.postprocess.instances_from_probabilities(probability, {seeds}, "
                            "**postprocess) at the working resolution (its docstring defines each option): threshold "
                            "and seed_threshold are probabilities, min_size an area and min_distance and smooth (a "
                            "Gaussian sigma) lengths in working pixels")
    else:
        inf["probability"] = ("p(boundary): the result's probability (membrane); mask = probability >= "
                              "postprocess.threshold" if head.startswith("three_class") else "the first channel")
        inf["instances"] = ((f"devolens.predict.postprocess.instances_from_probabilities(1 - p(background), "
                             f"{seeds}, **postprocess)" if head.startswith("three_class") else
                             "devolens.predict.postprocess.instances_from_boundary_map(probabilities, threshold, "
                             "min_size, smooth)")
                            + " at the working resolution: threshold and seed_threshold are probabilities, min_size "
                            "an area and min_distance and smooth (a Gaussian sigma) lengths in working pixels; a "
                            "frame with no structure above its noise (devolens.predict.postprocess.lacks_structure: "
                            f"score under {pp.NO_STRUCTURE:g} whole and {pp.NO_STRUCTURE_TILE:g} in every tile) gets "
                            "no cells")
    inf["padding"] = {"mode": "reflect", "sides": "bottom and right", "multiple": m,
                      "rule": f"each side padded up to a multiple of {m} px (numpy.pad mode 'reflect'; 'edge' for a "
                              "side of 1 px); the outputs cut back to the image"}
    q = -(-max(_engine.CONTENT_QUANTUM, m) // m) * m
    inf["content_box"] = {
        "block": 8, "level": _engine.CONTENT_LEVEL, "margin": _engine.CONTENT_MARGIN, "grid": m, "quantum": q,
        "rule": f"an image no larger than the tile runs through the network only on the box around its 8x8 blocks "
                f"(zero-padded at the bottom and right edges) whose mean exceeds {_engine.CONTENT_LEVEL:g} in the "
                f"normalised image, widened by {_engine.CONTENT_MARGIN} px, its start rounded down and its end up to "
                f"multiples of {m} within the image, its sides then rounded up to multiples of {q} about its middle "
                f"(the start on the {m} px grid; against an edge, ending there); used only when its padded area is "
                f"at most 0.9 of the padded image's; every pixel outside it gets the network's output at row and "
                f"column {2 * m} of an all-zero {4 * m}x{4 * m} image"}
    tile = inp.get("tile", 1024)
    if tile:
        overlap = int(inspect.signature(_SegmentationPredictor.__init__).parameters["overlap"].default)
        stride = max(m, int(tile) - overlap)
        inf["tiles"] = {
            "above": int(tile), "tile": int(tile), "overlap": overlap, "stride": stride,
            "rule": f"a working image with a side above {tile} px runs in {tile}x{tile} windows {stride} px apart "
                    f"(a last window flush with the bottom and right edges; no content box; a side under {tile} "
                    f"padded as above, then by reflection up to {tile}), blended by the weights wy * wx + 0.001, "
                    f"w(i) = min(1, min(i + 1, {tile} - i) / {max(1, overlap // 2)})"}
    else:
        inf["tiles"] = {"rule": "none: whole images"}
    side = int(round(blocks.BLOCK_PIXELS ** 0.5))
    inf["blocks"] = {"above_pixels": int(blocks.BLOCK_PIXELS),
                     "rule": f"an image of more than {blocks.BLOCK_PIXELS} working pixels ({side} x {side}) is "
                             "segmented in overlapping blocks normalised by the whole image's percentiles "
                             "(devolens.predict.blocks): its maps differ from a whole image's near the blocks' edges"}
    inf["output_size"] = ("the probability brought to the input size by cv2.INTER_LINEAR (cv2.INTER_AREA when "
                          "shrinking), clipped to 0..1; labels by nearest neighbour at pixel centres (source row = "
                          "floor((i + 0.5) x h / H)), each label keeping its largest piece when shrunk")
    inf["precision"] = ("fp32 (precision='fp32', --precision fp32) gives these maps; the default on CPUs is int8 "
                        "where the card has int8 scales and the CPU VNNI/AMX, else bf16 where the CPU runs it fast, "
                        "else fp32; on GPUs bf16 autocast where native (Ampere and newer), else fp32; the onnx backend "
                        + ("onnxruntime's int8 graph (card onnx) at precision int8, or auto on Linux x86 CPUs with "
                           "VNNI/AMX or AVX2, else fp32" if _onnx_files(card) else "always fp32")
                        + " (devolens.models.quantize.resolve_precision): int8 and bf16 maps differ slightly from "
                        "fp32's (metrics_setting and int8 say what that does to the results)")
    channels = arch.get("decoder_channels")
    if (arch.get("arch") == "unet" and str(arch.get("encoder", "")).startswith("resnet")
            and isinstance(channels, list) and 1 <= depth <= 5):
        unused = ", ".join(f"encoder.layer{i}.*" for i in range(depth, 5))
        inf["smp"] = (f"segmentation_models_pytorch.Unet(encoder_name={arch['encoder']!r}, encoder_weights=None, "
                      f"in_channels={int(arch.get('in_channels', 1))}, classes={int(arch.get('classes', 1))}, "
                      f"encoder_depth={depth}, decoder_channels={channels}) takes these weights (as float32; the same "
                      "parameter names as devolens.models.unet_lite)"
                      + (f" with load_state_dict(..., strict=False): smp builds the ResNet stages that encoder_depth "
                         f"{depth} leaves unused and devolens drops them, so the missing keys are {unused} and "
                         "nothing else, no key unexpected" if unused else ""))
    card["inference"] = inf
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


def onnx_md_lines(card: dict) -> list[str]:
    """The card.md section on the model's shipped ONNX graphs (empty without ``card["onnx"]``)."""
    graphs = card.get("onnx")
    if not isinstance(graphs, dict) or not isinstance(graphs.get("int8"), dict):
        return []
    q = graphs["int8"]
    lines = ["## onnxruntime int8 (`backend='onnx'`, `--backend onnx`: runs without PyTorch)", "",
             f"- **graph**: `{q.get('graph')}`, its tensors in `{q.get('tensors')}`",
             f"- **scheme**: {q.get('scheme')}", f"- **calibration**: {q.get('calibration')}"]
    if isinstance(graphs.get("encoder"), dict):
        enc = graphs["encoder"]
        lines.append(f"- **size model's encoder**: `{enc.get('graph')}`, its tensors in `{enc.get('tensors')}`")
    lines += [f"- **command**: `{graphs.get('command')}`", f"- **versions**: {_flat_md(graphs.get('versions', {}))}"]
    metrics = q.get("metrics") if isinstance(q.get("metrics"), dict) else {}
    lines += [f"- **{k}** (onnxruntime int8): {v.get('value') if isinstance(v, dict) else round(v, 4)}"
              for k, v in metrics.items() if k in card.get("headline", []) and isinstance(v, (dict, float))]
    if q.get("metrics_command"):
        lines.append(f"- **measured by**: `{q['metrics_command']}`")
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
    """Write ``card`` into a model folder: ``card.json`` and the same card as ``card.md`` (:func:`write_card_md`).

    Where the folder holds ``weights.safetensors``, the card records its sha256 (``weights_sha256``, set in ``card``
    too: a copied card and weights can then be checked against each other, ``sha256sum weights.safetensors``), and
    the sha256 of each size model the card names that the folder holds (``files_sha256``, file name -> sha256; one
    it does not hold keeps the sha256 the card records); write the weights and size models first."""
    from devolens.provenance import file_sha256

    weights = Path(folder) / "weights.safetensors"
    if weights.is_file():
        card["weights_sha256"] = file_sha256(weights)
    # (a size model not in the folder yet, a card staged before it: its recorded sha256 kept)
    before = card.get("files_sha256") if isinstance(card.get("files_sha256"), dict) else {}
    files = {n: file_sha256(Path(folder) / n) if (Path(folder) / n).is_file() else before[n]
             for n in sorted(_card_files(card)) if (Path(folder) / n).is_file() or isinstance(before.get(n), str)}
    if files:
        card["files_sha256"] = files
    else:
        card.pop("files_sha256", None)
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    write_card_md(card, folder / "card.md", load_name)


def weights_md(card: dict) -> list[str]:
    """The lines of a card.md's "Weights" section: the sha256 its card records (``weights_sha256``), by which a copy
    is checked, and its size models' (``files_sha256``); no lines when the card records none. Shared by every card
    writer (this module's, the identity and livedead scripts')."""
    if not card.get("weights_sha256"):
        return []
    files = card.get("files_sha256") if isinstance(card.get("files_sha256"), dict) else {}
    lines = ["## Weights", "", f"`weights.safetensors`, sha256 `{card['weights_sha256']}` (`sha256sum "
             "weights.safetensors` checks a copy)", ""]
    onnx_files = _onnx_files(card)
    graphs = {n: h for n, h in files.items() if n in onnx_files}
    sizes = {n: h for n, h in files.items() if n not in graphs}
    for said, group in (("The size models beside it:", sizes), ("Its ONNX graphs and their tensors (onnxruntime, "
                                                                  "`backend=\"onnx\"`):", graphs)):
        if group:
            lines += [said, "", *[f"- `{n}`, sha256 `{h}`" for n, h in group.items()], ""]
    return lines


def card_md(card: dict, load_name: str | None = None) -> str:
    """``card`` as Markdown, the text of ``card.md`` (``devolens models show`` prints a run's card so, too);
    ``load_name``: what to pass to ``load`` and ``--model`` (default: the card's name)."""
    name = load_name or card["name"]
    lines = [f"# {card['name']}: {card['summary']}", ""]
    trained = card.get("trained") if isinstance(card.get("trained"), dict) else {}
    if trained.get("note") or trained.get("tied"):  # a fine-tuning that did not beat (or only tied) its start: first
        lines += [f"**Note:** {trained.get('note') or trained['tied']}.", ""]
    # the command's default is --diameter auto where the model can estimate the magnification; the library's, None
    # (the image as it is): the Use example loads as the command runs, so that both count alike
    count = card["task"] == "population" and card.get("method") == "regressor"  # a count regressor: no size model
    sized = ((card["task"] == "population" and not count)
             or bool(((card.get("input") or {}).get("diameter") or {}).get("auto")))
    command = "devolens segment" if card["task"] in ("nuclei", "membrane") else "devolens population"
    load_line = (f"model = load({name!r}, diameter='auto')   # as `{command}` (--diameter auto); left out, diameter is "
                 "None: the image used as it is" if sized else f"model = load({name!r})")
    lines += ["## Use", "", "```python", "from devolens.models import load", load_line,
              "result = model.predict(image)   # HxW, HxWx3 or 3xHxW array, any size, or an image file's path", "```", ""]
    if card["task"] in ("nuclei", "membrane"):
        model = "" if name == card["task"] else f" --model {name}"
        lines += [f"CLI: `devolens segment {card['task']} INPUT{model} --out DIR` (image, folder, video, animated GIF "
                  "or TIFF stack).", ""]
    else:
        model = "" if name == "population" else f" --model {name}"
        lines += [f"CLI: `devolens population INPUT{model} --out pops.csv "
                  f"{'[--monotone]' if count else '[--monotone | --clock]'} [--plot]`.", ""]
    lines += ["## Architecture", "", "```json", json.dumps(card.get("architecture"), indent=2), "```", ""]
    lines += weights_md(card)
    for key, title in (("input", "Input"), ("preprocessing", "Preprocessing"), ("output", "Output"),
                       ("postprocess", "Post-processing"),
                       ("inference", "Inference (how devolens runs the network: with the preprocessing, what another "
                                     "program needs to reproduce its maps)")):
        if key not in card:
            continue
        items = list(card[key].items())
        if key == "postprocess":  # a card that gives no value for an option: the predictor's default, said so
            given = card[key]
            items += [(k, f"{v} (the predictor's default)")
                      for k, v in POSTPROCESS_DEFAULTS.get(card["task"], {}).items() if k not in given]
        if not items and not (key == "postprocess" and card.get("postprocess_note")):
            continue
        lines += [f"## {title}", ""]
        for k, v in items:
            if isinstance(v, dict):  # e.g. input.diameter: one sub-item per line
                lines += [f"- **{k}**:"] + [f"  - {name}: {_flat_md(x)}" for name, x in v.items()]
            else:
                lines.append(f"- **{k}**: {v}")
        if key == "postprocess" and card.get("postprocess_note"):
            lines += ["", card["postprocess_note"]]
        lines.append("")
    if card.get("portability"):
        lines += ["## Outside devolens", "", card["portability"], ""]
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
    lines += onnx_md_lines(card)
    recipe = card["recipe"]
    lines += ["## Training data", "", card["training_data"], "", "## Recipe and command", ""]
    if isinstance(recipe, dict):  # a run's: the recipe itself, as it trained
        lines += ["Recipe (as the run trained with it):", "", "```json", json.dumps(recipe, indent=2), "```", ""]
        if trained.get("epochs_note"):  # a resumed run trained past its recipe's train.epochs (or stopped early)
            said = trained["epochs_note"]
            lines += [f"{said[0].upper()}{said[1:]}.", ""]
    else:
        lines += [f"Recipe: `{recipe}`", ""]
    lines += ["```", card["command"].replace("; ", "\n"), "```", ""]
    made = [f"{what} with devolens {v['devolens']}" + (f", torch {v['torch']}" if v.get("torch") else "")
            for what, v in (("trained", card.get("trained")), ("exported", card.get("exported")))
            if isinstance(v, dict) and v.get("devolens")]
    if made:
        said = "; ".join(made)
        lines += [f"{said[0].upper()}{said[1:]}.", ""]
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
    start = start_said(card)
    if start:  # the same split's score before the first epoch: what the fine-tuning had to beat
        lines += ["", f"For comparison, the {start}, on the same validation split."]
    lines += ["", "## Known limits", "", card["limits"], ""]
    return "\n".join(lines)
