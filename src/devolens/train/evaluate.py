"""Score a trained run's best checkpoint on a data folder."""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from devolens.errors import DevolensError
from devolens.models.architectures import load_model
from devolens.train.recipe import load_recipe, resolved, validate_recipe

#: columns of the per-image CSV (:func:`per_image_rows`; evaluate_model's ``per_image`` rows with ``file``, and
#: ``run_side``: ``train`` or ``val`` for an image of the run's split.csv, ``train+val`` for one whose regions it split
#: between them (a one-image run), ``none`` for one it did not use, empty where the run has no split.csv;
#: :func:`run_sides`); a count run's: :func:`image_columns`
IMAGE_COLUMNS = ("file", "true_count", "pred_count", "tp", "fp", "fn", "precision", "recall", "f1", "run_side")


def image_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The per-image CSV's columns for ``rows``: :data:`IMAGE_COLUMNS` (a segmentation run's), or a count run's:
    ``file``, ``true_C`` and ``pred_C`` of each count ``C`` it regresses (its ``data.counts``), ``run_side``."""
    if not rows or "true_count" in rows[0]:
        return list(IMAGE_COLUMNS)
    counts = [k[len("true_"):] for k in rows[0] if k.startswith("true_")]
    return ["file", *(f"{w}_{c}" for c in counts for w in ("true", "pred")), "run_side"]


def _weights_card(weights: str | Path | None) -> tuple[str, dict] | None:
    """``(name, card)`` of a zoo model given as weights (``zoo:NAME``, or a model folder holding card.json);
    None for other weights (a run's checkpoint, another run)."""
    if weights is None:
        return None
    from devolens.models import zoo

    text = str(weights)
    if text.startswith("zoo:"):
        return text, zoo.card(text[4:])
    folder = Path(text)
    if folder.is_dir() and (folder / "card.json").is_file():
        return text, zoo.card(folder)
    return None


def _run_kind(run: Path, recipe: dict) -> str | None:
    """What a segmentation run segments (``nuclei``, ``membrane``, ``livedead``): as ``models export`` and ``--model
    RUN`` judge it (:func:`devolens.models.export.judged_kind`: its ``model.init``, ``augment.preset: membrane``, its
    data's render kind, then its recipe's name), else its augmentation preset, else the task of the zoo model it was
    fine-tuned from (``model.init: zoo:NAME``); None when nothing says."""
    from devolens.models.export import judged_kind

    kind = judged_kind(run)[0]
    if kind:
        return kind
    preset = (recipe.get("augment") or {}).get("preset")
    if preset in ("nuclei", "membrane", "livedead"):
        return preset
    init = str((recipe.get("model") or {}).get("init") or "")
    if init.startswith("zoo:"):
        try:
            from devolens.models import zoo

            return zoo.card(init[4:]).get("task")
        except DevolensError:
            return None
    return None


def per_image_rows(names: list[str], pred_labels: list, truth_labels: list) -> list[dict[str, Any]]:
    """One row per image: ``file``, true and predicted object counts, one-to-one matches at IoU > 0.5
    (``tp``, ``fp``, ``fn``: :func:`devolens.train.metrics.match_instances`; the counts are ``tp + fn`` and
    ``tp + fp``) and their precision, recall and F1 (1.0 where there was nothing to find and nothing found, as
    :func:`devolens.train.metrics.prf`). ``truth_labels`` are the masks at the network's working scale (a run's
    ``data.scale``): an object lost in the shrink is in none of the counts."""
    from devolens.train import metrics as M

    rows = []
    for name, pl, tl in zip(names, pred_labels, truth_labels):
        m = M.match_instances(pl, tl)
        sc = M.prf(m["tp"], m["fp"], m["fn"])
        rows.append({"file": name, "true_count": int(m["tp"] + m["fn"]), "pred_count": int(m["tp"] + m["fp"]),
                     "tp": int(m["tp"]), "fp": int(m["fp"]), "fn": int(m["fn"]), "precision": sc["precision"],
                     "recall": sc["recall"], "f1": sc["f1"]})
    return rows


def data_notes(df) -> list[str]:
    """The notes ``devolens train`` gives on the same masks (:func:`devolens.train.trainer.check_masks`: empty,
    thresholded, colour, repeated or wrapped labels) and on files without a partner (``df.attrs["unmatched"]``,
    those annotated only in a cellpose ``_seg.npy`` said with how to export them)."""
    from devolens.data.datasets import seg_npy_hint
    from devolens.train.trainer import check_masks

    notes = check_masks(df, evaluating=True) if len(df) else []
    unmatched = list(df.attrs.get("unmatched") or [])
    if unmatched:
        n = len(unmatched)
        notes.append(f"{n} file{'s' if n != 1 else ''} without a partner, not scored (e.g. {unmatched[0]}): listed "
                     f"in the metrics JSON ('unmatched'){seg_npy_hint(df.attrs.get('unmatched_seg') or [])}")
    return notes


def _weights_run(run: Path, weights: str | Path | None) -> Path | None:
    """The run whose training the scored weights come from: ``run`` for its own checkpoints (no ``weights``, or a file
    in ``run``), the folder of another run's ``best.safetensors`` or ``checkpoint.safetensors`` (it holds a
    split.csv), the run a ``devolens train --export`` / ``devolens models export`` folder was exported from (its
    card's ``trained.run``, where that run's split.csv is still there); None for a zoo model or other weights (their
    training data are not known here)."""
    if weights is None:
        return run
    text = str(weights)
    if text.startswith("zoo:"):
        return None
    path = Path(text)
    if path.is_file() and (path.parent / "split.csv").is_file():
        return path.parent
    if path.is_dir() and (path / "card.json").is_file():
        from devolens.models import zoo

        try:
            trained = zoo.card(path).get("trained")
        except DevolensError:
            return None  # a broken card: the weights' own loading says what is wrong with it
        source = trained.get("run") if isinstance(trained, dict) else None
        if isinstance(source, str) and source and (Path(source) / "split.csv").is_file():
            return Path(source)
    return None


def _image_name(sample: str) -> str:
    """The image of a split.csv sample: a region of a one-image split (``NAME[y0:y1, x0:x1]``) is its image's."""
    return sample.split("[", 1)[0] if sample.endswith("]") and "[" in sample else sample


#: :func:`run_sides`' side of an image of which some regions trained and others validated (a one-image run)
BOTH = "train+val"


def _side(a: str | None, b: str) -> str:
    """The side of an image found as ``a`` (None or ``none``: not yet) and again as ``b``: ``train+val`` where they
    differ (an image cut into regions, some training, some validating)."""
    return b if a in (None, "none") or a == b else a if b == "none" else BOTH


def split_regions(run: str | Path) -> dict[str, list[str]] | None:
    """The regions (split.csv's ``group``, e.g. ``r1c1``) of the run's images split between training and validation
    (some regions of an image train, others validate: one image, or images of one group, cut into a grid, the same
    regions validating in every image), as ``{"train": [...], "val": [...]}``; None where no image is so split."""
    from devolens.train.trainer import _run_split

    split = _run_split(Path(run))
    if split is None or "group" not in split.columns:
        return None
    sides: dict[str, set[str]] = {}
    for sample, side in zip(split["sample"].astype(str), split["side"].astype(str)):
        if sample.endswith("]") and "[" in sample:
            sides.setdefault(_image_name(sample), set()).add(side)
    both = {name for name, seen in sides.items() if {"train", "val"} <= seen}
    if not both:
        return None
    regions: dict[str, list[str]] = {"train": [], "val": []}
    for sample, group, side in zip(split["sample"].astype(str), split["group"].astype(str),
                                   split["side"].astype(str)):
        if _image_name(sample) in both and side in regions and group not in regions[side]:
            regions[side].append(group)
    return regions


def _scored_folder(df) -> Path | None:
    """The folder the samples ``df`` were indexed from (each row's ``image`` is that folder's ``sample``), None where
    the rows do not name one."""
    folders = set()
    for sample, image in zip(df["sample"].astype(str), df["image"]):
        parts, image = PurePosixPath(sample).parts, Path(image)
        if not parts or image.parts[-len(parts):] != parts:
            return None
        folders.add(image.parents[len(parts) - 1])
    return folders.pop() if len(folders) == 1 else None


#: bytes of a file compared (at its middle, inside what :func:`devolens.train.trainer.file_digest` digests) before a
#: training image of a scored image's size is digested: another image of the same size differs there
_PROBE = 4096


def _probe(path: str | Path, size: int) -> bytes:
    """``_PROBE`` bytes of the file ``path`` (``size`` bytes) from its middle."""
    with open(path, "rb") as fh:
        fh.seek(size // 2 if size > _PROBE else 0)
        return fh.read(_PROBE)


def run_sides(run: str | Path, df) -> tuple[list[str], str, str] | None:
    """Which of the samples ``df`` (rows of :func:`devolens.data.datasets.index_dataset`) run ``run`` trained or
    validated on, from its ``split.csv`` and ``run.json``.

    Where ``df`` is the data folder ``run.json`` records itself, its images are matched by their sample names (paths
    relative to that folder). Otherwise an image is matched by its file's contents
    (:func:`devolens.train.trainer.file_digest`) with the images of the run's samples in that data folder (so a
    copy, a renamed file or another folder holding the same images is found): the scored images are digested first,
    and a training image only where a scored image has its size and the same bytes at its middle, so that a few
    images scored against a run of thousands read little. A sample of the split.csv that the data folder no longer
    holds (moved out after training, to a test folder) is matched by its name; where that folder is gone or cannot be
    read, every image is matched by name. An image of which some regions trained and others validated (a one-image
    run split by region) is ``train+val`` (:func:`split_regions` names the regions).

    Parameters
    ----------
    run : path
        A training run folder.
    df : DataFrame
        The samples scored (``sample``, ``image``).

    Returns
    -------
    tuple or None
        ``(sides, how, split_csv)``: per row of ``df`` ``"train"``, ``"val"``, ``"train+val"`` or ``"none"``; how
        they were matched:
        ``"names in its data folder"`` (``df`` is the run's data folder), ``"image contents"``, ``"image contents
        and names"`` (some by the name of a sample its data folder no longer holds) or ``"names"`` (the data folder
        is not there); the path of the split.csv read. None where the run has no readable split.csv.
    """
    from devolens.train.trainer import _run_split, file_digest

    run = Path(run)
    split = _run_split(run)
    if split is None:
        return None
    split_csv = str((run / "split.csv").resolve())
    by_name: dict[str, str] = {}
    for sample, side in zip(split["sample"].astype(str), split["side"].astype(str)):
        if side in ("train", "val"):
            name = _image_name(sample)
            by_name[name] = _side(by_name.get(name), side)
    named = [by_name.get(str(sample), "none") for sample in df["sample"]]
    from devolens.models.export import _run_record

    data = _run_record(run).get("data")
    recorded = data.get("path") if isinstance(data, dict) else None
    if not (isinstance(recorded, str) and recorded and Path(recorded).is_dir()):
        return named, "names", split_csv
    folder = Path(recorded)
    scored = _scored_folder(df)
    try:
        if scored is not None and scored.resolve() == folder.resolve():
            return named, "names in its data folder", split_csv  # the very files: nothing to digest
        wanted: dict[bytes, str] = {}  # the scored images' digests
        digests: list[bytes] = []  # each scored image's, in order
        probes: set[tuple[int, bytes]] = set()  # their sizes and middle bytes
        for image in df["image"]:
            digests.append(file_digest(image))
            wanted[digests[-1]] = "none"
            size = os.stat(image).st_size
            probes.add((size, _probe(image, size)))
    except OSError:
        return named, "names", split_csv  # a scored image changed beyond reading: the names say what they can
    sizes = {size for size, _ in probes}
    gone: set[str] = set()  # samples of the split that the data folder no longer holds
    for name, side in by_name.items():
        image = folder / name
        try:
            size = image.stat().st_size
            if not image.is_file():
                raise FileNotFoundError(name)
            if size not in sizes or (size, _probe(image, size)) not in probes:
                continue  # no scored image is this one
            key = file_digest(image)
        except OSError:
            gone.add(name)
            continue
        if key in wanted:
            wanted[key] = _side(wanted[key], side)
    sides = [wanted[d] for d in digests]
    by_names = 0
    for i, sample in enumerate(df["sample"].astype(str)):
        if sides[i] == "none" and sample in gone:
            sides[i], by_names = by_name[sample], by_names + 1
    return sides, "image contents and names" if by_names else "image contents", split_csv


def _store_seen(run: Path, store: Path, n: int) -> dict | None:
    """How many tiles of the tile store ``store`` (``n`` tiles) run ``run`` trained and validated on: all those its
    split.csv lists, where the store is the one it trained on (the fingerprint ``run.json`` records: the store's
    contents, wherever it lies now); None otherwise, or where the run records neither."""
    from devolens.train.trainer import _run_split, store_fingerprint

    split = _run_split(run)
    from devolens.models.export import _run_record

    data = _run_record(run).get("data")
    recorded = data.get("fingerprint") if isinstance(data, dict) else None
    if split is None or not recorded:
        return None
    if store_fingerprint(store, n) != recorded:
        return None
    side = split["side"].astype(str)
    return {"train": int((side == "train").sum()), "val": int((side == "val").sum()), "of": n,
            "by": "store contents", "run": str(run.resolve()), "split_csv": str((run / "split.csv").resolve())}


def seen_note(counts: dict, what: str = "images") -> str | None:
    """The note on scored samples that the weights' run trained or validated on (``counts``: the ``in_run_split``
    entry of :func:`evaluate_run`'s result; ``what``: ``images`` or ``tiles``), None where there are none."""
    n_train, n_val, n, n_both = counts["train"], counts["val"], counts["of"], counts.get("both", 0)
    if not n_train and not n_val and not n_both:
        return None
    by = {"image contents": "matched by their contents", "store contents": "the very store it trained on",
          "names in its data folder": "the very data folder it trained on, matched by name",
          "image contents and names": "matched by their contents, and by name where its data folder no longer holds "
                                      "the image"}.get(
        counts["by"], "matched by name: the run's data folder is not there to compare their contents")
    name = Path(counts["run"]).name

    def are(k: int, kind: str) -> str:  # "8 ... are training samples", "1 ... is a training sample"
        return f"are {kind} samples" if k != 1 else f"is a {kind} sample"

    if n_both:
        regions = counts.get("regions") or {}
        val, train = regions.get("val") or [], regions.get("train") or []
        where = (f": regions {', '.join(val)} validated (chose its best epoch), the other {len(train)} trained"
                 if val else "")
        text = (f"{n_both} of {n} {what} {'is' if n_both == 1 else 'are'} partly training, partly validation of the "
                f"run {name} (its split.csv, {by}){where}; {'their scores are' if n_both != 1 else 'its score is'} "
                "not a held-out measure")
        more = [f"{k} more {are(k, kind)}" for k, kind in ((n_train, "training"), (n_val, "validation")) if k]
        if more:
            text += f"; {' and '.join(more)}"
    elif n_train:
        text = (f"{n_train} of {n} {what} {are(n_train, 'training')} of the run {name} (its split.csv, {by}): "
                f"{'their scores are' if n_train != 1 else 'its score is'} not a held-out measure")
        if n_val:
            more = "are its validation samples" if n_val != 1 else "is one of its validation samples"
            text += f"; {n_val} more {more}, which chose its best epoch"
    else:
        text = (f"{n_val} of {n} {what} {are(n_val, 'validation')} of the run {name} (its split.csv, {by}): "
                f"{'they' if n_val != 1 else 'it'} chose its best epoch, so "
                f"{'their scores are' if n_val != 1 else 'its score is'} not a held-out measure either")
    column = f"; the per-{what[:-1]} CSV's run_side column says which" if what in ("images", "frames") else ""
    return text + f"{column}; for a held-out score, evaluate on {what} the run never saw"


def evaluate_run(run: str | Path, data: str | Path, batch_size: int = 8,
                 progress: Callable[[int, int], None] | None = None, *, weights: str | Path | None = None,
                 validate: dict | None = None, device: str = "auto") -> dict[str, Any]:
    """Metrics of ``RUN/best.safetensors`` (or other weights for the same network) on every
    sample of ``data``.

    Parameters
    ----------
    run : path
        Training run folder (from :func:`devolens.train.trainer.train`).
    data : path
        Render output, image/mask folders, or an HDF5 tile store (.h5).
    batch_size : int
        Images per forward pass (>= 1).
    progress : callable, optional
        ``progress(done, total)`` in images.
    weights : path, optional
        Score these weights instead, with the run's recipe: another checkpoint of the run
        (``RUN/checkpoint.safetensors``, the last epoch), another run's ``best.safetensors``
        or a zoo folder (e.g. the shipped model), all of the run's architecture; compares
        checkpoints on the same samples with the same rules.
    validate : dict, optional
        Replaces keys of the recipe's ``validate`` section (``instances``, ``postprocess``):
        how instances are made for instance F1 and counts. The keys of its ``postprocess`` override those of
        the recipe's ``validate.postprocess`` (of the card's with zoo weights) one by one: the others stay.
    device : str
        Where the network runs: ``auto`` (the first CUDA GPU when PyTorch sees one, else the CPU;
        wherever the run was trained), ``cpu``, ``cuda`` or ``cuda:N``. The run's ``train.amp`` runs
        as in training (:func:`devolens.train.trainer.effective_amp`: bf16 on a GPU without native
        bfloat16 runs fp16, on a CPU without it fp32, with a note).

    Zoo weights (``zoo:NAME`` or a model folder with a card.json) are scored with their card's
    post-processing (``card["postprocess"]``, watershed instances) and percentile normalisation, unless
    ``validate`` gives ``postprocess``, at the run's own ``data.scale`` (what its recipe chose for these images'
    nuclei; noted where it differs from the card's working scale); the predictor's background
    flattening and outlier steps are not applied here, nor any magnification estimate (score at the
    data's own scale). A zoo model of another task than the run's (membrane weights on a nuclei run)
    is refused, as ``devolens segment`` refuses it.

    Returns
    -------
    dict
        ``run``, ``data``, ``weights``, ``epoch`` (0-based epoch of the run's best checkpoint;
        None with other ``weights``), ``n`` (samples), ``validate`` (the rules used),
        ``postprocess_from`` (``card zoo:NAME`` or ``run recipe``, each followed by ``with --postprocess`` where
        ``validate`` gave keys of it), ``device`` and
        ``amp`` (where and in what precision it ran), ``notes`` (on the data, as train gives them, and on
        the precision; a note where the data hold samples the weights' run trained or validated on),
        ``in_run_split`` (how many: ``train``, ``val``, ``of`` the samples scored, ``by`` what they were matched
        (:func:`run_sides`), the ``run`` and its ``split_csv``; where images' regions were split between training and
        validation, ``both``, how many, and the ``regions``: :func:`split_regions`; None where the weights are not
        a run's with a
        split.csv, such as a zoo model, or a tile store is not the run's), ``unmatched`` (the files without a
        partner, not scored, as train's run.json lists them), ``metrics`` (name -> value; NaN written as null) and
        ``images`` (per-image rows of :func:`per_image_rows` with ``run_side``: ``train``, ``val``, ``train+val``
        or ``none`` in
        that split, empty where it is not known; segmentation on image folders only); and how they were made
        (:func:`_provenance`): ``command``, ``devolens``, ``torch``, ``run_path``, ``data_path``, ``weights_path``
        (absolute), ``weights_sha256``, ``data_fingerprint`` and ``run_data_fingerprint``.
    """
    from devolens.data.datasets import index_dataset
    from devolens.train.trainer import (data_fingerprint, effective_amp, evaluate_model, make_dataset,
                                        resolve_device, use_device)

    from devolens.checks import whole

    whole(batch_size, "--batch-size", 1)
    where = resolve_device(device, "device")  # before any work: a GPU asked for where there is none
    run = Path(run)
    best = run / "best.safetensors"
    if not best.exists() and (run / "card.json").is_file():  # an exported model folder: its run, or --weights
        raise DevolensError("a model folder (card.json), not a training run: give the run it was exported from as "
                            "RUN (its card's trained.run) and this folder as --weights FOLDER", path=run)
    if not best.exists():
        raise DevolensError("no best.safetensors in this run (was it trained?)", path=run)
    model, cfg = load_model(best)
    if "recipe" not in cfg:
        raise DevolensError("best.json has no recipe", path=best.with_suffix(".json"))
    raw = load_recipe(cfg["recipe"])
    validate = dict(validate or {})
    zoo_card = _weights_card(weights) if raw["task"] == "segmentation" else None
    source = "--postprocess" if "postprocess" in validate else "run recipe"
    if zoo_card is not None:
        zname, card = zoo_card
        kind = _run_kind(run, raw)
        task = card.get("task")
        if kind is not None and task != kind:
            raise DevolensError(f"--weights {zname} is a {task!r} model, but this run segments {kind}: scoring it "
                                f"here measures the mix-up, not the model; give a {kind} model (or evaluate on a "
                                f"{task} run)", path=run)
        if task not in ("nuclei", "membrane", "livedead"):
            raise DevolensError(f"--weights {zname} is a {task!r} model, not a segmentation model", path=run)
        if card.get("postprocess") and raw["data"]["target"] != "classes":
            # the card's post-processing, its keys overridden one by one by those given (--postprocess)
            validate["postprocess"] = {**card["postprocess"], **(validate.get("postprocess") or {})}
            validate.setdefault("instances", "watershed")
            source = f"card {zname}" + (" with --postprocess" if source == "--postprocess" else "")
        scale = (card.get("input") or {}).get("scale")
        own = raw["data"].get("scale")
        if (isinstance(scale, (int, float)) and raw["data"].get("size") is None and isinstance(own, (int, float))
                and abs(float(own) - float(scale)) > 1e-9):
            # the run's scale is the one its recipe chose for these images' nuclei (finetune_own_nuclei.yaml: 1.0
            # for ~17 px nuclei, 0.25 for ~70 px): both models are scored at it, so the comparison is like for like
            zoo_scale_note = (f"{zname} scored at the run's data.scale {float(own):g}, not its card's working scale "
                              f"{float(scale):g} (made for nuclei ~35 px wide): the scale the run's recipe chose "
                              "for these images")
        else:
            zoo_scale_note = None
        if (card.get("preprocessing") or {}).get("percentiles"):
            raw["data"]["normalize"] = "percentile"
        raw = validate_recipe(raw)
    if validate:
        if "postprocess" in validate and source == "--postprocess":
            # the keys given override the recipe's one by one (as segment's --threshold does): the others stay the
            # run's, not the watershed's defaults
            own = (raw.get("validate") or {}).get("postprocess") or {}
            validate["postprocess"] = {**own, **validate["postprocess"]}
            source = "run recipe with --postprocess"
        raw["validate"] = {**raw["validate"], **validate}
        raw = validate_recipe(raw)
    rec = resolved(raw)
    if weights is not None:
        from devolens.train.trainer import init_weights

        model = init_weights(model, weights, grow_head=False, option="--weights")
    notes: list[str] = []
    if zoo_card is not None and zoo_scale_note:
        notes.append(zoo_scale_note)
    if weights is None:  # the run's own best: one of a run that did not finish is said so, as --model and load say it
        from devolens.models.export import _epochs_said, _run_record

        unfinished = _epochs_said(_run_record(run), cfg.get("recipe") or {}, cfg.get("epoch")).get("unfinished")
        if unfinished:
            notes.append(unfinished)
    names: list[str] | None = None
    sides: list[str] | None = None  # per image: train / val / none in the weights' run's split.csv
    seen: dict | None = None  # how many of them: the result's ``in_run_split``
    unmatched: list[str] = []
    trained_by = _weights_run(run, weights)
    if Path(data).is_file() and Path(data).suffix.lower() in (".h5", ".hdf5"):
        from devolens.data.datasets import H5TileDataset

        ds = H5TileDataset(data, target=rec["data"]["target"], normalize=rec["data"]["normalize"])
        if trained_by is not None:
            seen = _store_seen(trained_by, Path(data), len(ds))
    else:
        from devolens.train.trainer import check_counts_folder

        check_counts_folder(data, rec, scoring=True)
        df = index_dataset(data, scoring=True)
        attrs = dict(df.attrs)
        if rec["task"] == "population":  # a frame listed twice is scored twice: said, as training says it
            from devolens.train.trainer import frames_table_notes

            notes += frames_table_notes(df, scoring=True)
        if rec["data"].get("drop_artifacts") and "artifact" in df.columns:
            from devolens.train.trainer import artifact_rows

            marked = int(artifact_rows(df["artifact"]).sum())
            if marked:  # scored as given: said, as training's own note said it left them out
                notes.append(f"{marked} of the {len(df)} frames name an artifact (frames.csv's artifact column), which "
                             "the run's training left out (data.drop_artifacts): they are scored here; evaluate a "
                             "folder without them to score clean frames alone")
        if rec["task"] == "segmentation":
            df = df[df["labels"].notna()].reset_index(drop=True)
            df.attrs.update(attrs)
        if df.empty:
            raise DevolensError("no labelled samples to evaluate", path=data)
        if rec["task"] == "segmentation" and rec["data"]["target"] != "classes":
            notes += data_notes(df)
        elif rec["task"] == "segmentation":
            from devolens.train.trainer import check_masks

            notes += check_masks(df, classes=int(rec["data"]["classes"]))
        names = [str(x) for x in df["sample"]] if "sample" in df.columns else [Path(x).name for x in df["image"]]
        unmatched = [str(x) for x in df.attrs.get("unmatched") or []] if rec["task"] == "segmentation" else []
        found = run_sides(trained_by, df) if trained_by is not None and "sample" in df.columns else None
        if found is not None:
            sides, how, split_csv = found
            seen = {"train": sides.count("train"), "val": sides.count("val"), "of": len(sides), "by": how,
                    "run": str(trained_by.resolve()), "split_csv": split_csv}
            if BOTH in sides:  # a one-image run's image: some of its regions trained, others validated
                seen.update(both=sides.count(BOTH), regions=split_regions(trained_by))
        ds = make_dataset(rec, df, train=False)
    if seen is not None:
        # (a count run's per-frame CSV names its samples frames)
        said = seen_note(seen, ("images" if rec["task"] == "segmentation" else "frames") if names is not None
                         else "tiles")
        if said:
            notes.append(said)
    use_device(where)
    amp, amp_note = effective_amp(rec["train"]["amp"], where)
    if amp_note:
        notes.append(amp_note)
    model = model.to(where)  # auto: a GPU when there is one (wherever the run was trained)
    per_image = names is not None  # (a count run's rows: each frame's true and predicted counts)
    # the per-image rows are scored as each sample is (evaluate_model's ``per_image``): no image, mask or
    # prediction is kept for them
    ev = evaluate_model(model, ds, rec, None, batch_size=batch_size, amp=amp, progress=progress,
                        per_image=per_image)
    metrics = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in ev["metrics"].items()}
    images = None
    if per_image and ev.get("images") is not None:
        images = [{"file": name, **row, "run_side": side}
                  for name, row, side in zip(names, ev["images"], sides or [""] * len(names))]
    return {"run": str(run), "data": str(data), "weights": str(weights or best), "task": rec["task"],
            "epoch": cfg.get("epoch") if weights is None else None, "n": len(ds), "validate": rec["validate"],
            "postprocess_from": source, "device": str(where), "amp": amp, "notes": notes,
            "in_run_split": seen, "unmatched": unmatched, "metrics": metrics, "images": images,
            **_provenance(run, data, weights or best, trained_by,
                          None if names is None else data_fingerprint(df, list(rec["data"].get("counts") or [])
                                                                      if rec["task"] == "population" else []),
                          len(ds))}


def _provenance(run: Path, data: str | Path, weights: str | Path, trained_by: Path | None,
                fingerprint: str | None, n: int) -> dict:
    """:func:`evaluate_run`'s record of how its metrics were made, as the other commands' records say it: the
    ``command`` line (:func:`devolens.provenance.command_line`; ``devolens evaluate`` for a library call), the
    ``devolens`` and ``torch`` versions, ``run_path`` and ``data_path`` (absolute), ``weights_path`` (the weights
    file read, absolute: ``RUN/best.safetensors``, a zoo model's ``weights.safetensors`` for ``zoo:NAME``) and its
    ``weights_sha256``, ``data_fingerprint`` (the data's fingerprint as ``devolens train`` records it in
    ``run.json``'s ``data.fingerprint``: :func:`devolens.train.trainer.data_fingerprint` of the samples scored
    (``fingerprint``), or a tile store's :func:`~devolens.train.trainer.store_fingerprint` of its ``n`` tiles;
    equal to the run's where these are the samples it trained on) and ``run_data_fingerprint`` (that of the run the
    weights were trained by, ``trained_by``, from its run.json; None where it records none or the weights are no
    run's)."""
    from devolens.models import zoo
    from devolens.models.export import _run_record
    from devolens.provenance import absolute_path, command_line, torch_version, version
    from devolens.train.trainer import store_fingerprint, weights_file

    file = weights_file(weights, "--weights")
    if fingerprint is None and Path(data).is_file():  # a tile store
        fingerprint = store_fingerprint(data, n)
    recorded = (_run_record(trained_by).get("data") or {}) if trained_by is not None else {}
    return {"command": command_line("devolens evaluate"), "devolens": version(), "torch": torch_version(),
            "run_path": absolute_path(run), "data_path": absolute_path(data),
            "weights_path": str(file.absolute()), "weights_sha256": zoo.weights_sha256(file),
            "data_fingerprint": fingerprint,
            "run_data_fingerprint": recorded.get("fingerprint") if isinstance(recorded, dict) else None}

