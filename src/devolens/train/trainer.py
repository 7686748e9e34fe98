"""The training engine: datasets from a recipe, the epoch loop, validation metrics,
per-sample losses and pruning, checkpoints and exact resume.

Run folder (``out``)::

    recipe.yaml              the resolved recipe
    split.csv                sample, group, side (train/val)
    history.csv              one row per epoch: lr, train_loss, val_loss, val metrics, seconds (of them
                             validation_seconds and loader_seconds: waiting for training batches).
                             train_loss and val_loss are one quantity, the loss the optimiser minimises
                             (devolens.train.losses.batch_loss) over all the epoch's training samples and
                             over the validation set: the mean over their pixels that count (neither 'ignore'
                             pixels nor padding), each sample's loss weighted by its counted pixels
                             (devolens.train.losses.pixel_mean; the plain mean of the samples' where all
                             count as many, and for the population task). train_loss is taken at each step,
                             as the weights were then, on augmented samples; val_loss after the epoch
    sample_losses.csv        epoch, sample, loss: every training sample's loss each epoch, on its own
                             pixels (not the padding to the network's multiple or to a larger image of
                             its batch)
    pruned.csv               samples dropped by --prune-top (for review), written with the checkpoint of
                             the epoch that pruned (a stop during that epoch resumes to prune it again)
    checkpoint.safetensors   last epoch's full state (+ checkpoint.json, with fp16's loss scale; the two
                             written as one unit, :func:`save_checkpoint`)
    best.safetensors         weights of the best epoch by the monitored metric (+ best.json,
                             loadable with devolens.models.architectures.load_model; the two
                             written as one unit, :func:`save_model`)
    samples/epoch_NNN.npz    fixed validation samples: image, truth and prediction
    run.json                 summary: split sizes, notes, best epoch and value, the data it was
                             trained on (path and a fingerprint of the samples' files), the threads,
                             devolens and torch versions and command line of each session (first
                             start, each --resume), the sha256 of the model.init starting weights,
                             the device and the mixed precision (amp) the latest session ran with

Both files of each pair carry one unit id (:data:`devolens.io.together.UNIT_KEY`): a pair of two saves, which a
run killed outright (SIGKILL, a power loss) between the two renames leaves, is refused by ``--resume`` and by the
readers of the best model; ``--resume`` brings a run.json that such a kill left an epoch behind up to the
checkpoint, and mends a best pair of two saves before it trains (:func:`_best_mended`).

A run folder made by a call that fails before its first checkpoint (bad data found while
loading, Ctrl-C in the first epoch) is removed again: nothing is left that ``--resume``
could not continue (see :func:`train`); a folder whose checkpoint lacks one of its two files
(left by an older version stopped as it saved one, or a removed file) is refused, by a new run
(whose files would mix with that run's best weights, history and samples) and by ``--resume``
alike, with what to do (another --out, or remove the folder). run.json, with
the data's fingerprint, is written before the first checkpoint, so every checkpoint has the
record that ``--resume`` checks the data against. A call holds a lock on its run folder
(``.NAME.lock`` beside it) from start to end, its ``finish`` (the command's plots and export)
included: a second run into the same folder is refused at once.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import random
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from devolens.data.augment import build_augment
from devolens.data.datasets import (PopulationDataset, SegmentationDataset, folder_split, index_dataset,
                                    pad_collate, seg_npy_hint, split_by_group, time_blocks)
from devolens.errors import DevolensError, listed
from devolens.errors import option as _option  # train()'s argument, or the command's flag
from devolens.errors import ordinal as _ordinal  # 1st, 2nd, ... (shared with the demo's report)
from devolens.io.atomic import (TEXT_ERRORS, FileLock, atomic_path, missing_folders, output_lock, own_record,
                                 remove_made, write_csv, write_text)
from devolens.models.architectures import build_model, build_regressor, save_model
from devolens.train import metrics as M
from devolens.train.checkpoint import check_checkpoint, load_checkpoint, save_checkpoint
from devolens.train.losses import (batch_loss, build_loss, class_frequencies, class_weights, counted, known,
                                   leaves_out, masked_mean, pixel_mean)
from devolens.train.postprocess import instances_from_classes, probabilities_to_classes
from devolens.train.recipe import (SCHEDULER_KEYS, differences, dump_recipe, ignored_settings, load_recipe,
                                   resolved)
from devolens.train.schedulers import build_optimizer, build_scheduler

CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"
#: what a run folder holds (see the module's docstring); ``eval_*.json`` and ``eval_*_images.csv`` of
#: ``devolens evaluate`` come beside them
RUN_FILES = frozenset({"recipe.yaml", "split.csv", "history.csv", "sample_losses.csv", "pruned.csv", CHECKPOINT,
                       "checkpoint.json", BEST, "best.json", "run.json", "history.png", "progress.gif", "samples"})
#: what the folder of a tuning study holds (see :mod:`devolens.train.tuning`)
TUNE_FILES = frozenset({"study.db", "trials", "trials.csv", "best_recipe.yaml", "best.json"})
#: recipe keys a resumed run may take from elsewhere than its own recipe: set by options (--epochs,
#: --device, --prune-top) or only how fast it runs
RESUME_FREE_KEYS = ("name", "train.epochs", "train.device", "train.prune_top", "train.threads", "train.num_workers",
                    "tune")


@dataclass
class DataBundle:
    """Datasets made from a recipe and a data folder."""

    train: Dataset
    val: Dataset
    split: pd.DataFrame  # sample, group, side
    notes: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    #: digest of the samples' names and file contents (:func:`data_fingerprint`); None for ready-made datasets
    fingerprint: str | None = None
    #: split as the data's folders say (``images/train/`` + ``images/val/``, :func:`devolens.data.datasets.folder_split`)
    by_folder: bool = False
    #: the notes say the fraction that validates already (a tile store's split): no second note on it
    split_noted: bool = False
    #: those of ``unmatched`` annotated only in a cellpose ``_seg.npy`` (``devolens.data.datasets.seg_npy_images``)
    unmatched_seg: list[str] = field(default_factory=list)


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    history: pd.DataFrame
    monitor: str
    best_epoch: int | None
    best_value: float | None
    pruned: pd.DataFrame | None
    notes: list[str]
    device: str = "cpu"
    #: a resumed run that had already trained its epochs: nothing was done (``history`` is the run's)
    complete: bool = False
    #: a run from given weights (``model.init``): their ``monitor`` value on the validation set before the first epoch
    start_value: float | None = None
    #: one line when no epoch beat those starting weights (else None)
    start_note: str | None = None
    #: one line when the best epoch only tied them (:func:`tie_line`; else None)
    start_tie: str | None = None
    #: a run that ``train.early_stop`` stopped: run.json's ``stopped_early`` (``epoch``, the last trained, and
    #: ``best_epoch``, both counted from 0; ``epochs``, those it was to train; ``reason``); else None
    stopped_early: dict | None = None


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def n_classes(recipe: dict) -> int:
    """Output channels of the segmentation network for a recipe's target."""
    t = recipe["data"]["target"]
    return 1 if t == "semantic" else 3 if t == "boundary" else int(recipe["data"]["classes"])


def n_outputs(recipe: dict) -> int:
    """Output channels of the segmentation network: the classes, plus one for a distance head."""
    return n_classes(recipe) + (1 if recipe["model"].get("distance_head") else 0)


def metric_names(recipe: dict) -> list[str]:
    """The columns of history.csv for a (resolved) recipe: every metric :func:`evaluate_model` gives for it (with
    ``data.target: classes`` also each class's object F1, ``val_f1_1``, ``val_f1_2``...)."""
    names = ["epoch", "lr", "train_loss", "val_loss"]
    if recipe["task"] == "population":
        names += ["val_mae"] + [f"val_mae_{c}" for c in recipe["data"]["counts"]]
        if "total" in recipe["data"]["counts"]:
            names += ["val_count_mae"]
    else:
        k = max(2, n_classes(recipe))
        names += ["val_iou", "val_dice", "val_ap", "val_f1", "val_precision", "val_recall", "val_count_mae"]
        for c in range(k):
            names += [f"val_iou_{c}", f"val_dice_{c}", f"val_ap_{c}"]
        if recipe["data"]["target"] == "classes":
            names += [f"val_f1_{c}" for c in range(1, k)]
    return names + list(RUN_COLUMNS)


#: history.csv's columns that are no metric: the epoch's training samples and time; within it, its validation
#: pass's and the training loop's wait for batches (a GPU run: is the device, the loader or validation the limit?).
#: Not "val_": that prefix is for metrics (cards take them)
RUN_COLUMNS = ("n_train", "seconds", "validation_seconds", "loader_seconds")


# ----------------------------------------------------------------------------- data
#: what an ``artifact`` cell of frames.csv may hold for a clean frame (case and spaces aside): a lab's own table may
#: mark them 0, no or false rather than leave them empty
CLEAN_ARTIFACT = ("", "0", "0.0", "no", "false", "none", "nan", "clean", "ok", "good", "-")


def artifact_rows(column: pd.Series) -> np.ndarray:
    """Which rows of frames.csv's ``artifact`` column name an artifact (``devolens render`` writes its kind, e.g.
    ``blur``; an empty cell, or one of :data:`CLEAN_ARTIFACT`, is a clean frame). A column of empty cells alone is
    read as floats: it is read as text here."""
    text = column.astype("string").fillna("").str.strip().str.lower()
    return (~text.isin(CLEAN_ARTIFACT)).to_numpy()


def usable_rows(df: pd.DataFrame, recipe: dict, notes: list[str] | None = None) -> tuple[pd.DataFrame, int]:
    """The rows of an :func:`index_dataset` table that a (resolved) recipe trains on: frames whose ``artifact`` cell
    names one dropped (``data.drop_artifacts``, :func:`artifact_rows`), and for a segmentation task frames without a
    label image (a count needs none). Says what was left out in ``notes``; returns the rows and how many were dropped
    as artifacts."""
    n_artifacts = 0
    if recipe["data"]["drop_artifacts"] and "artifact" in df.columns:
        art = artifact_rows(df["artifact"])
        n_artifacts = int(art.sum())
        if n_artifacts and notes is not None:
            # the values read as artifacts, named: a lab's own word for a clean frame would drop it unsaid
            kinds = df["artifact"][art].astype("string").str.strip().value_counts()
            named = ", ".join(f"{k!r} {v}" for k, v in kinds.head(4).items()) + (", ..." if len(kinds) > 4 else "")
            notes.append(f"dropped {n_artifacts} frames with artifacts (artifact: {named})")
        df = df[~art]
    if recipe["task"] == "segmentation" and df["labels"].isna().any():
        if notes is not None:
            notes.append(f"skipped {int(df['labels'].isna().sum())} frames without a label image")
        df = df[df["labels"].notna()]
    return df, n_artifacts


def check_counts_folder(data_dir: str | Path, recipe: dict, scoring: bool = False) -> None:
    """Refuse a folder without a frames.csv for a count recipe (task population: its counts are that table's
    columns), in its words (``scoring``: evaluate's), before :func:`index_dataset` looks for images and masks."""
    folder = Path(data_dir)
    if recipe["task"] != "population" or not folder.is_dir() or (folder / "frames.csv").is_file():
        return
    counts = ", ".join(recipe["data"]["counts"])
    use = "is scored" if scoring else "trains"
    raise DevolensError(f"no frames.csv: a count run {use} on a folder of frames and a "
                        "frames.csv listing each frame (column file, its path relative to the folder) with its counts "
                        f"(columns {counts}: the recipe's data.counts); no masks are needed", path=folder)


def frames_table_notes(df: pd.DataFrame, scoring: bool = False) -> list[str]:
    """Notes on rows of a frames.csv (:func:`devolens.data.datasets.index_dataset`'s rows) that train other than a
    hand-written table may mean: a frame listed twice trains twice; frames without an ``embryo`` share one group.
    ``scoring``: evaluate's (a frame listed twice is scored twice; the split is not made)."""
    notes = []
    twice = df["sample"].duplicated()
    if twice.any():
        n = int(twice.sum())
        notes.append(f"{n} row{'s' if n != 1 else ''} of frames.csv list{'' if n != 1 else 's'} a frame listed before "
                     f"(e.g. {df['sample'][twice].iloc[0]}): each row {'is scored' if scoring else 'trains'}, so such "
                     "a frame counts twice")
    if "embryo" in df.columns and not scoring:
        none = df["embryo"].isna() | (df["embryo"].astype(str).str.strip() == "")
        if none.any() and not none.all():
            n = int(none.sum())
            notes.append(f"{n} frame{'s' if n != 1 else ''} of frames.csv {'have' if n != 1 else 'has'} no embryo "
                         f"(e.g. {df['sample'][none].iloc[0]}): {'they share' if n != 1 else 'it makes'} one group of "
                         "the split by embryo (data.split_by)")
    return notes


def population_counts(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The ``columns`` of frames.csv a population task regresses (``data.counts``), as float32, each frame's count a
    number of 0 or more.

    Raises
    ------
    DevolensError
        If a column is missing (a column of the same name in another case is named), or a frame's count is
        missing, not a finite number or negative (the first such frame named, and how many).
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        other = {str(c).lower(): str(c) for c in df.columns}
        cased = [f"{other[c.lower()]!r} for {c!r}" for c in missing if c.lower() in other]
        hint = f"; frames.csv has {', '.join(cased)}: names are case-sensitive" if cased else ""
        found = ", ".join(str(c) for c in df.columns if c not in ("sample", "image", "labels", "group"))
        raise DevolensError(f"data.counts: column(s) {', '.join(missing)} not in frames.csv (it has {found}){hint}; "
                            "a population task regresses the counts of the recipe's data.counts (e.g. [total] for "
                            "totals alone)")
    values = df[columns].apply(lambda col: pd.to_numeric(col, errors="coerce"))
    bad = ~np.isfinite(values.to_numpy(dtype=np.float64)) | (values < 0).to_numpy()  # inf is no count either
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raw = df[columns[col]].iloc[row]
        raw = "empty" if pd.isna(raw) or str(raw).strip() == "" else repr(str(raw))
        n = int(bad.any(axis=1).sum())
        raise DevolensError(f"{n} frame{'s' if n != 1 else ''} of frames.csv {'have' if n != 1 else 'has'} a count "
                            f"that is missing, not a number or negative, e.g. {df['sample'].iloc[row]}: "
                            f"{columns[col]} {raw}; give every frame its counts (cells, 0 or more) or leave its row "
                            "out")
    return values.to_numpy(dtype=np.float32)


def make_dataset(recipe: dict, df: pd.DataFrame, train: bool) -> Dataset:
    """A dataset over the rows of an :func:`index_dataset` table (augmented if ``train``)."""
    d = recipe["data"]
    aug = None
    if train:
        aug = build_augment(recipe["augment"]["preset"], recipe["augment"]["strength"], recipe["augment"]["overrides"],
                            seed=recipe["seed"])
    depth = recipe["model"]["encoder_depth"] if recipe["task"] == "segmentation" else 1
    common = dict(channels=d["channels"], size=d["size"], normalize=d["normalize"], augment=aug, seed=recipe["seed"],
                  cache=d["cache"], pad_multiple=2 ** depth, ids=list(df["sample"]), scale=d["scale"],
                  channel=d.get("channel"))
    if recipe["task"] == "population":
        return PopulationDataset(list(df["image"]), population_counts(df, list(d["counts"])), **common)
    if df["labels"].isna().any():
        bad = df.loc[df["labels"].isna(), "sample"].iloc[0]
        raise DevolensError(f"{int(df['labels'].isna().sum())} frames have no label image, e.g. {bad}")
    return SegmentationDataset(list(df["image"]), list(df["labels"]), target=d["target"],
                               distance=bool(recipe["model"].get("distance_head")),
                               boxes=list(df["box"]) if "box" in df.columns else None, **common)


def file_digest(path: str | Path, chunk: int = 1 << 18) -> bytes:
    """A digest of a file's size and contents: all of it up to 3 ``chunk`` s (768 KiB: a frame, a mask),
    else its start, middle and end, so that fingerprinting thousands of large frames or a multi-gigabyte
    tile store stays quick (another image of the same size differs there too: noise, compressed data).
    Remembered per file version (path, size, modification time): ``tune`` indexes the same data for its
    check and for every trial."""
    st = os.stat(path)
    return _digest(os.path.abspath(path), st.st_size, st.st_mtime_ns, chunk)


@functools.lru_cache(maxsize=1 << 16)
def _digest(path: str, size: int, mtime_ns: int, chunk: int) -> bytes:
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with open(path, "rb") as fh:
        if size <= 3 * chunk:
            h.update(fh.read())
        else:
            for offset in (0, size // 2, size - chunk):
                fh.seek(offset)
                h.update(fh.read(chunk))
    return h.digest()


def data_fingerprint(df: pd.DataFrame, values: list[str] | tuple[str, ...] = ()) -> str:
    """A digest of the samples a run trains on: each sample's name (its path relative to the data folder),
    its image and label files' contents and its ``values`` columns (the population task's counts), in
    name order. The same samples in a moved or copied folder give the same fingerprint; other files under
    the same names (another embryo rendered at the same time points) give another.

    Parameters
    ----------
    df : DataFrame
        Rows of :func:`devolens.data.datasets.index_dataset` (``sample``, ``image``, ``labels``).
    values : list of str
        Further columns whose values belong to the samples (ignored where missing).
    """
    h = hashlib.blake2b(digest_size=16)
    cols = [c for c in values if c in df.columns]
    for _, row in df.sort_values("sample", kind="stable").iterrows():
        h.update(str(row["sample"]).encode() + b"\0")
        for key in ("image", "labels"):
            path = row.get(key)
            if isinstance(path, (str, Path)) and path:
                h.update(file_digest(path))
        if cols:
            h.update(json.dumps([float(row[c]) for c in cols]).encode())
    return h.hexdigest()


def lies_in(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved, symbolic links followed)."""
    try:
        path, folder = path.resolve(), folder.resolve()
    except OSError:
        return False
    return path == folder or folder in path.parents


def check_run_folder(out: str | Path, data: str | Path | None = None, *, resume: bool = False,
                     inside_data: bool = False, tuning: bool = False) -> None:
    """Refuse a run folder ``out`` that training would spoil or that would spoil the data, before any work.

    Refused: ``out`` a file; ``out`` the data folder itself or a folder holding it (the run would write
    among the data, or the data among the run); with ``inside_data`` (the CLI) also a folder inside the
    data folder; and, unless ``resume``, a folder with anything in it but a run's files (hidden entries
    aside): a folder of other things is not a run folder, and a run's own leftovers without a checkpoint
    (what an earlier failed call left) may be replaced.

    With ``tuning`` (the folder of a tuning study, ``devolens tune``) the folder may hold a study's files
    (:data:`TUNE_FILES`: an earlier tune's ``--out``, whose study goes on) and nothing else: a training
    run (its ``best.json`` would be replaced by the study's) and a folder of other things are refused;
    ``resume`` is not used.

    Raises
    ------
    DevolensError
        With the reason and what to do.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DevolensError("--out exists and is not a folder; give a folder for the run", path=out)
    if data is not None:
        data = Path(data)
        if lies_in(out, data) and (inside_data or out.resolve() == data.resolve()):
            where = "is the data folder" if out.resolve() == data.resolve() else f"lies inside the data folder {data}"
            raise DevolensError(f"--out {where}; keep runs apart from their data (e.g. runs/NAME)", path=out)
        if data.exists() and out.exists() and lies_in(data, out):
            raise DevolensError(f"--out holds the data ({data}); give a folder of its own for the run", path=out)
    if tuning and out.is_dir():
        if (out / CHECKPOINT).exists() or (out / "run.json").exists():
            raise DevolensError("--out holds a training run, whose best.json tuning would replace; give a folder "
                                "of its own for the study (e.g. runs/NAME_tune)", path=out)
        others = sorted(e.name for e in os.scandir(out) if not e.name.startswith(".") and e.name not in TUNE_FILES
                        and not e.name.startswith("study.db"))  # sqlite's study.db-journal, -wal, -shm
        if others:
            raise DevolensError(f"--out is not empty and holds no devolens tuning study (e.g. {others[0]}); give a "
                                "new or empty folder, or the --out of an earlier tune to add trials to it", path=out)
        made = sorted(e.name for e in os.scandir(out) if e.name in TUNE_FILES)
        if made and not {"study.db", "trials"} & set(made):  # a tune's outputs without its study or trials: the user's
            raise DevolensError(f"--out holds {listed(made, 3)}, of names a tune writes, but no study.db or trials/ of "
                                "an earlier devolens tune: a new study would overwrite them; move them out of that "
                                "folder or give another --out", path=out)
        return
    if resume or not out.is_dir():
        return
    others = sorted(e.name for e in os.scandir(out) if not e.name.startswith(".") and e.name not in RUN_FILES
                    and not (e.name.startswith("eval_") and e.name.endswith((".json", "_images.csv"))))
    if others:
        raise DevolensError(f"--out is not empty and holds no devolens run (e.g. {others[0]}); give a new or empty "
                            "folder", path=out)


def training_record(path: str | Path) -> bool:
    """Whether ``path`` is the ``run.json`` of a devolens training run: a file holding a JSON object with the fields
    every run.json has had (``epochs_done``, ``monitor``), whether written by ``devolens train`` or by a library
    call (a tuning trial's, whose ``command`` is null; :func:`devolens.cli._common.is_run_record` asks for the
    command). A run.json another tool wrote, or a folder of that name, is none."""
    record = own_record(Path(path))
    return record is not None and "epochs_done" in record and "monitor" in record


def check_run_files(out: str | Path) -> None:
    """Refuse a new run into ``out`` that holds entries of the names a run writes (:data:`RUN_FILES`:
    ``history.csv``, ``recipe.yaml``, ``samples``...) without the ``run.json`` of an earlier training run beside
    them (:func:`training_record`): they are the user's own (a history.csv of their own making), which the run would
    overwrite. An earlier run's files (its run.json there) are replaced as ever; a checkpoint there is refused
    before this (:func:`train`: ``--resume``), and a folder of other things by :func:`check_run_folder`."""
    out = Path(out)
    if not out.is_dir() or training_record(out / "run.json"):
        return
    found = sorted(e.name for e in os.scandir(out) if e.name in RUN_FILES)
    if found == ["recipe.yaml", "split.csv"]:  # a run stopped hard before its first run.json (it writes these first)
        return
    if found:
        flag = _option("out")
        raise DevolensError(f"{flag} holds {listed(found, 3)}, of names a run writes, but no run.json of an earlier "
                            f"devolens training run: a new run would overwrite them; move them out of that folder or "
                            f"give another {flag}", path=out)


def run_file(path: str | Path, run: str | Path | None = None) -> bool:
    """Whether writing ``path`` would replace a file a run or a saved model needs: one of the run folder
    ``run``'s own files (:data:`RUN_FILES`), any run's files in a folder that holds a run (a checkpoint or
    run.json), or the JSON config beside a model's weights (``X.json`` beside ``X.safetensors``)."""
    path = Path(path)
    try:
        folder = path.parent.resolve()
    except OSError:
        return False
    if path.name in RUN_FILES and (
            (run is not None and folder == Path(run).resolve())
            or (folder / CHECKPOINT).exists() or (folder / "run.json").exists()):
        return True
    if path.name == "card.json" and (folder / "weights.safetensors").exists():  # a model folder (zoo, models export)
        return True
    return path.suffix.lower() == ".json" and path.with_suffix(".safetensors").exists()


def build_data(recipe: dict, data_dir: str | Path, run_split: pd.DataFrame | None = None) -> DataBundle:
    """Index ``data_dir``, split it and build the train/validation datasets. Every mask is checked first
    (:func:`check_masks`); one image, or images of one group, are split by region (:func:`region_split`).

    The split (``data.split_by``): by the groups of a column (``group``, the default: the sub-folder or embryo;
    whole groups go to one side, about ``data.val_fraction`` of the samples validating), or by folder
    (``folder``: images in sub-folders named val, validation, valid or test validate, the rest train). ``group``
    splits by folder too where every top-level sub-folder of the images is named like a training or validation
    set (``images/train/`` + ``images/val/``, :func:`devolens.data.datasets.train_val_folders`).

    ``run_split``: a run's ``split.csv`` (``sample``, ``side``), kept where it lists the very samples found here
    (a resumed run splits as it was trained, whatever the split would be now).
    """
    from devolens.data.datasets import size_notes, split_copies

    recipe = resolved(recipe)
    d = recipe["data"]
    if Path(data_dir).is_file() and Path(data_dir).suffix.lower() in (".h5", ".hdf5"):
        return _build_h5(recipe, Path(data_dir), run_split)
    check_counts_folder(data_dir, recipe)
    df = index_dataset(data_dir)
    layout_split = bool(df.attrs.get("train_val_folders"))  # images/train/ + images/val/ (and nothing else)
    notes: list[str] = []
    df, n_artifacts = usable_rows(df, recipe, notes)
    if df.attrs.get("layout") == "render":  # a frames.csv: a table a lab may have written by hand
        notes += frames_table_notes(df)
    if d["limit"] is not None and len(df) > d["limit"]:
        df = df.sample(n=d["limit"], random_state=recipe["seed"]).sort_index()
        notes.append(f"using {d['limit']} samples (data.limit)")
    df = df.reset_index(drop=True)
    segmentation = recipe["task"] == "segmentation"
    if len(df) < (1 if segmentation else 2):  # one image of a segmentation is cut into regions (region_split)
        clean = ", ".join(c for c in CLEAN_ARTIFACT if c and c not in ("0.0", "nan"))
        dropped = (f" ({n_artifacts} dropped as artifacts by frames.csv's artifact column, where an empty cell or one "
                   f"of {clean} is a clean frame; data.drop_artifacts: false keeps them all)") if n_artifacts else ""
        raise DevolensError(f"need at least {1 if segmentation else 2} sample{'' if segmentation else 's'} to train "
                            f"and validate, found {len(df)}{dropped}", path=data_dir)
    notes += check_images(df, d.get("channel"), d["normalize"], channels=int(d["channels"]),
                          counts=recipe["task"] == "population")
    if df.attrs.get("layout") == "render":
        kind_note = render_kind_note(recipe, data_dir)
        if kind_note:
            notes.append(kind_note)
    empty_masks: list[str] = []  # those holding no object (a validation set of them alone is said)
    if segmentation and d["target"] != "classes":  # a render's own masks: a look at the first few is enough
        notes += check_masks(df, limit=5 if df.attrs.get("layout") == "render" else None, empty_out=empty_masks)
        notes += size_notes(df["labels"], d["scale"], recipe_kind(recipe)[0], d["size"])  # nuclei at data.scale
    elif segmentation:  # class-id masks: every value a class of the recipe's
        notes += check_masks(df, classes=int(d["classes"]))
    files = df  # what the fingerprint digests: the files, however they are split
    column = d["split_by"]
    split_notes: list[str] = []  # how the data were split (replaced where a resumed run keeps its own split)
    by_folder = None
    if column == "folder" or (column == "group" and layout_split):  # the user's own train/ and val/ folders
        by_folder = folder_split(df)
        if by_folder is None and column == "folder":
            sides = df["folder_side"] if "folder_side" in df.columns else pd.Series([], dtype=str)
            why = ("every image lies in one" if len(sides) and (sides == "val").all() else "no image lies in one")
            raise DevolensError("data.split_by is 'folder', but the images do not split by their folders: "
                                f"{why} named val, validation, valid or test; give both such a folder and others "
                                "(images/train/ + images/val/), or split_by: group", path=data_dir)
        column = "group"
    if column not in df.columns:
        raise DevolensError(f"data.split_by: column {column!r} not in the data ({', '.join(df.columns)}); or "
                            "'folder': sub-folders named val, validation, valid or test validate")
    if by_folder is not None:
        tr, va = by_folder
        split_notes.append(f"the data's folders split them: {len(va)} samples in folders named val, validation, "
                           f"valid or test validate, the other {len(tr)} train (data.val_fraction is not used"
                           + ("" if d["split_by"] == "folder" else "; data.split_by: embryo or another column "
                              "splits otherwise") + ")")
    else:
        if df[column].nunique() < 2:
            if "time" in df.columns and df["time"].nunique() >= 2:
                # counted from the first time point: blocks from 0 gave a render's times 1-10 a block of 9 (1-9)
                # and one of 1 (10), so that 9 of the 10 samples validated (or 1)
                first = df["time"] - df["time"].min()
                df["time_block"] = time_blocks(first, d["time_block"])
                if df["time_block"].nunique() < 2:
                    df["time_block"] = time_blocks(first, max(1, int(np.ptp(df["time"])) // 4 or 1))
                split_notes.append(f"only one {column} ({df[column].iloc[0]}): split by blocks of time points instead")
                column = "time_block"
            else:
                note = None
                if segmentation:
                    df, note = region_split(df, recipe, column, data_dir)
                if note is not None:
                    column = "region"
                else:
                    why = (f" (its images are too small to hold out regions of at least {region_side(recipe)} px a "
                           "side)" if segmentation else "")
                    split_notes.append(f"only one {column}: split by sample{why}")
                    df["sample_group"] = df["sample"]
                    column = "sample_group"
        tr, va = split_by_group(df, column, d["val_fraction"], recipe["seed"])
        if column == "region":
            regions_val, regions_all = va["region"].nunique(), df["region"].nunique()
            split_notes.append(note.replace("{val}", f"{regions_val} of the {regions_all} "
                                                     f"({100 * len(va) / len(df):.0f} %)"))
    if run_split is not None:  # a resumed run: its own sides, where it lists these very samples
        kept = dict(zip(run_split["sample"].astype(str), run_split["side"].astype(str)))
        if set(kept) == set(df["sample"].astype(str)):
            is_val = df["sample"].astype(str).map(kept) == "val"
            if set(va.index) != set(df.index[is_val]):
                split_notes = [f"the run's own split is kept (its split.csv: {int(is_val.sum())} samples validate, "
                               f"{int((~is_val).sum())} train)"]
                by_folder = None
            tr, va = df[~is_val], df[is_val]
    split_notes += split_copies(tr, va, data_dir)  # one image on both sides (train/x.tif copied into test/)
    if len(va) and empty_masks and set(va["labels"].astype(str)) <= set(empty_masks) and len(tr) > 0:
        n_va = va["labels"].nunique()
        split_notes.append(f"the validation set's {n_va} mask{'s' if n_va != 1 else ''} hold{'s' if n_va == 1 else ''} "
                           f"no nucleus (all 0, e.g. {Path(str(va['labels'].iloc[0])).name}): its instance scores "
                           "(val_f1, val_recall) have nothing to find every epoch, and the best epoch is chosen on "
                           "them; put masks with nuclei on the validation side (data.split_by, data.val_fraction, "
                           "or a val/ folder)")
    split = pd.DataFrame({"sample": df["sample"], "group": df[column].astype(str),
                          "side": np.where(df.index.isin(va.index), "val", "train")})
    values = list(d["counts"]) if recipe["task"] == "population" else []
    unmatched = list(files.attrs.get("unmatched", [])) if segmentation else []  # a count needs no mask
    return DataBundle(make_dataset(recipe, tr, True), make_dataset(recipe, va, False), split, notes + split_notes,
                      unmatched, data_fingerprint(files, values),
                      by_folder=by_folder is not None, unmatched_seg=list(files.attrs.get("unmatched_seg", [])))


#: what each kind of render's labels are and the recipe that trains them (:func:`render_kind_note`)
_RENDER_KINDS = {"nuclei": ("nuclei", "recipes/nuclei.yaml"),
                 "membrane": ("cells outlined by their membranes", "recipes/membrane.yaml")}


def recipe_kind(recipe: dict) -> tuple[str | None, str]:
    """Whether a (resolved) segmentation recipe is one for nuclei or for membranes, and what says so: its
    ``model.init`` (``zoo:nuclei``, ``zoo:membrane`` or a zoo folder of that name) and its ``augment.preset``
    (``nuclei`` or ``membrane``). ``(None, "")`` where neither says, or they disagree."""
    said: dict[str, list[str]] = {}
    init = recipe["model"].get("init")
    hit = re.search(r"(?:^zoo:|(?:^|[/\\])zoo[/\\])(nuclei|membrane)(?:$|[/\\])", str(init or ""))
    if hit:
        said.setdefault(hit.group(1), []).append(f"model.init {init}")
    preset = recipe["augment"]["preset"]
    if preset in _RENDER_KINDS:
        said.setdefault(preset, []).append(f"augment.preset {preset}")
    if len(said) != 1:
        return None, ""
    kind, why = next(iter(said.items()))
    return kind, ", ".join(why)


def render_kind_note(recipe: dict, data_dir: str | Path) -> str | None:
    """A note where the render ``data_dir`` (its ``render.json`` ``kind``: ``nuclei`` or ``membrane``) is of the
    other kind than the segmentation recipe (:func:`recipe_kind`): a nuclei recipe on a membrane render learns its
    cell labels with settings made for nuclei (and scores near 0), and the reverse. None where they agree, or
    where either does not say."""
    if recipe["task"] != "segmentation":
        return None
    try:
        kind = json.loads((Path(data_dir) / "render.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    own, why = recipe_kind(recipe)
    if kind not in _RENDER_KINDS or own is None or own == kind:
        return None
    labels, fits = _RENDER_KINDS[kind]
    return (f"the data are a {kind} render (render.json: kind {kind}), but the recipe is one for {own} ({why}): its "
            f"labels are {labels}, which the network learns with settings made for {own}; train it with {fits} (or "
            f"a recipe of your own with augment.preset: {kind}), or give a {own} render (devolens render --kind {own})")


#: the smallest side of a region held out for validation when the data are one image or one group, in pixels
#: at the working resolution: room for several nuclei of 8-25 px (and a whole number of the network's strides)
REGION_PX = 128
#: the most rows (and columns) of regions an image is cut into: at most 16 regions, so each stays large
REGION_GRID = 4
#: masks checked up front, at most this many seconds (then the rest as they load in the first epoch)
CHECK_SECONDS = 30.0


def region_side(recipe: dict) -> int:
    """The smallest side, in the files' own pixels, of a region :func:`region_split` cuts: ``REGION_PX`` at the
    working resolution (``data.scale``), and at least ``data.size`` (each sample is resized to it)."""
    d = recipe["data"]
    side = math.ceil(REGION_PX / float(d["scale"]))
    return max(side, *(int(v) for v in d["size"])) if d["size"] else side


def region_split(df: pd.DataFrame, recipe: dict, column: str, data_dir) -> tuple[pd.DataFrame, str | None]:
    """One image, or images of one group: each image cut into a grid of regions (:func:`regions`), the samples
    whose ``region`` column (``rRcC``, the same for every image) is the group to split by, so that whole regions
    validate and the rest train.

    Returns
    -------
    (df, note)
        A row per region (``sample`` is ``NAME[y0:y1, x0:x1]``, ``box`` its pixels) and a note whose
        ``{val}`` says what validates; or ``df`` unchanged and None when some image is too small for two regions but
        there are several images (split by image then).

    Raises
    ------
    DevolensError
        One image, too small for two regions.
    """
    from devolens.data.datasets import image_shape, regions

    side = region_side(recipe)
    shapes = [image_shape(p) for p in df["image"]]
    grids = [regions(s, side, REGION_GRID) for s in shapes]
    if any(len(g) < 2 for g in grids):
        if len(df) >= 2:
            return df, None
        h, w = shapes[0]
        scale = float(recipe["data"]["scale"])
        at = f" ({REGION_PX} px at data.scale {scale:g})" if scale != 1.0 else ""
        raise DevolensError(f"one annotated image of {w}x{h} px: too small to hold out a region for validation "
                            f"(regions of at least {side}x{side} px{at}, two of them across or down); annotate a "
                            "second image (or a larger field of view)", path=data_dir)
    rows = []
    for (_, row), grid in zip(df.iterrows(), grids):
        for i, j, y0, y1, x0, x1 in grid:
            rows.append({**row.to_dict(), "sample": f"{row['sample']}[{y0}:{y1}, {x0}:{x1}]", "region": f"r{i}c{j}",
                         "box": (y0, y1, x0, x1)})
    out = pd.DataFrame(rows)
    out.attrs = dict(df.attrs)
    r, c = grids[0][-1][0] + 1, grids[0][-1][1] + 1
    h, w = grids[0][0][3] - grids[0][0][2], grids[0][0][5] - grids[0][0][4]
    same = all(len(g) == len(grids[0]) for g in grids)
    grid = (f"{len(grids[0])} regions of about {w}x{h} px ({r}x{c})" if same
            else f"{min(map(len, grids))} to {max(map(len, grids))} regions of at least {side}x{side} px")
    if len(df) == 1:
        name = Path(str(df["sample"].iloc[0])).name
        return out, f"one image ({name}): cut into {grid}; whole regions validate: {{val}}"
    alike = ("the same in every image" if same else  # grids of several sizes: a place may be missing from an image
             "by their row and column in each image's grid")
    return out, (f"one {column} ({df[column].iloc[0]}, {len(df)} images): each image cut into {grid}; whole regions "
                 f"validate, {alike}: {{val}}")


#: training images read before training (evenly spaced over the data): their channels and range
IMAGES_CHECKED = 8
#: with data.normalize dtype, 16-bit images whose brightest pixel stays below this are noted (12-bit camera data)
DIM_UINT16 = 65535 // 8


def check_images(df: pd.DataFrame, channel: int | str | None = None, normalize: str = "dtype",
                 limit: int = IMAGES_CHECKED, channels: int = 1, counts: bool = False) -> list[str]:
    """Read a few of the training images before training (``limit``, evenly spaced over the table's images):
    a multi-channel image without ``data.channel`` (or a channel it lacks) is refused now, naming the file
    (:func:`devolens.data.datasets.select_channel`; the others when the first epoch reads them). Noted: the
    channel ``data.channel`` picks, with the ``devolens segment`` option that picks the same (``counts``: a count
    run's, which ``devolens population`` reads so by itself), and, with
    ``normalize`` ``dtype``, 16-bit images whose values stay below :data:`DIM_UINT16` (12-bit camera data,
    which dtype scaling leaves near black).

    Parameters
    ----------
    df : pandas.DataFrame
        Samples from :func:`devolens.data.datasets.index_dataset` (``image``).
    channel : int or str, optional
        The recipe's ``data.channel``.
    normalize : str
        The recipe's ``data.normalize``.
    limit : int
        At most this many images are read.

    Returns
    -------
    list of str
        Notes for the run.
    """
    from devolens.data.datasets import CHANNEL_NAMES, colour_image, read_image, select_channel

    files = list(dict.fromkeys(str(p) for p in df["image"]))
    if not files:
        return []
    picks = np.unique(np.linspace(0, len(files) - 1, min(int(limit), len(files))).round().astype(int))
    colour = multi = False
    uint16, top = True, 0
    for k in picks:
        img = read_image(files[k])
        is_colour = colour_image(img, files[k])
        colour |= is_colour
        multi |= img.ndim == 3 and img.shape[-1] > 1 and not is_colour
        img = select_channel(img, channel, files[k], channels)
        uint16 &= img.dtype == np.uint16
        top = max(top, int(img.max(initial=0))) if img.dtype.kind in "ui" else top
    notes = []
    if channel is not None:
        name = channel if isinstance(channel, str) else (CHANNEL_NAMES[channel] if channel < 3 else None)
        index = channel if not isinstance(channel, str) else (CHANNEL_NAMES.index(channel) if channel in
                                                              CHANNEL_NAMES[:3] else None)
        ways = ([f"--channel {index}"] if multi and index is not None else []) + (
            [f"--color {name}"] if colour and name is not None else [])
        how = f" (`devolens segment ... {' or '.join(ways)}`)" if ways else ""
        what = (f"the per-pixel {channel} of each image's channels" if channel in ("max", "mean")
                else "that channel of each image")
        by_itself = ("a run used as a model (--model RUN, load(RUN)) reads colour images so by itself, a stack's "
                     "channels only with --channel" if isinstance(channel, str) else
                     "a run used as a model (--model RUN) does not pick a stack's channel by itself")
        if counts:  # a count run reads each frame's channel itself (devolens population has no --color for it)
            notes.append(f"data.channel {channel}: the network learns from {what}; `devolens population --model RUN` "
                         "reads frames so by itself" + (", a stack's channels with --channel" if multi else ""))
        else:
            notes.append(f"data.channel {channel}: the network learns from {what}; segment with the same{how}: "
                         f"{by_itself}")
    if normalize == "dtype" and uint16 and top < DIM_UINT16:
        notes.append(f"the images are 16-bit with values up to {top} only (of 65535: 12-bit camera data?), and "
                     "data.normalize is dtype (the default where a recipe leaves it out), which divides by 65535: "
                     "the network sees near-black images; data.normalize: percentile (the shipped recipes' choice) "
                     "stretches each image's range")
    return notes


def check_masks(df: pd.DataFrame, seconds: float | None = None, limit: int | None = None,
                classes: int | None = None, *, evaluating: bool = False,
                empty_out: list[str] | None = None) -> list[str]:
    """Read every mask of a table of samples before training (a few ms each: 500 masks of 512x512 in 1-2 s,
    3-4 s as colour PNGs, on 2 cores): bad values, smoothed edges and a size other than the image's (read from
    its header) are refused now, naming the file, rather than in the first epoch, and so are masks most of which
    give the background a label of its own (:func:`devolens.data.datasets.background_label`: ilastik's 1); empty,
    colour and thresholded masks, and label values repeated in separate nuclei, are noted. After ``seconds``
    (default :data:`CHECK_SECONDS`), or ``limit`` masks, the rest are left to the first epoch (and the notes say
    how many were checked). ``classes``: the masks hold class ids (target ``classes``), each below ``classes``
    (a value beyond is refused naming the file and the key, rather than failing in the loss mid-epoch); only the
    size and the values are checked then. ``evaluating``: the masks are
    scored (``devolens evaluate``), not trained on: the notes say so. ``empty_out``: the paths of the masks found
    holding no object are appended to it.

    Returns
    -------
    list of str
        Notes for the run.
    """
    from devolens.data.datasets import (WRAPPED_FROM, background_label, check_mask_size, ignore_label, image_shape,
                                        label_repeats, read_mask, thresholded)

    seconds = CHECK_SECONDS if seconds is None else float(seconds)
    kinds: list[str] = []
    empty: list[str] = []
    binary: list[str] = []
    wrapped: list[str] = []
    repeated: list[tuple[str, int, int]] = []  # (mask, values repeated, values) of labels reused in any type
    background: list[tuple[str, int]] = []  # (mask, value) of a non-zero label that looks like the background
    ignored: list[str] = []
    t0 = time.perf_counter()
    n, timed_out = 0, False
    for image, labels in zip(df["image"], df["labels"]):
        timed_out = n > 0 and time.perf_counter() - t0 > seconds
        if timed_out or (limit is not None and n >= limit):
            break
        mask = read_mask(labels, kinds, classes=classes is not None)
        check_mask_size(image_shape(image), mask.shape, f"{image} and {labels}")
        if classes is not None:
            top = int(mask.max()) if mask.size else 0
            if top >= classes:
                raise DevolensError(f"holds class {top}, but data.classes is {classes} (class ids 0..{classes - 1}): "
                                    "raise data.classes, or check that this is a class-id mask (not instance labels)",
                                    path=labels)
        elif not mask.any():
            empty.append(Path(labels).name)
            if empty_out is not None:
                empty_out.append(str(labels))
        elif (value := background_label(mask)):
            background.append((str(labels), value))
        elif thresholded(mask) is not None:
            binary.append(Path(labels).name)
        elif (reused := label_repeats(mask))[0]:
            if mask.dtype == np.uint8 and int(mask.max()) >= WRAPPED_FROM:
                wrapped.append(Path(labels).name)
            else:
                repeated.append((Path(labels).name, *reused))
        elif ignore_label(mask):
            ignored.append(Path(labels).name)
        n += 1
    of = f"the first {n} of the {len(df)}" if n < len(df) else f"the {n}"
    if background and 2 * len(background) > n:  # most masks: a background value, not one big nucleus in a crop
        first, value = background[0]
        raise DevolensError(f"label {value} covers most of {Path(first).name} and touches every edge (as in "
                            f"{len(background)} of {of} masks): your background? devolens reads 0 as background "
                            "(ilastik's Simple Segmentation exports 1 = background: subtract 1, or export 'Object "
                            "Identities')",
                            path=Path(first).parent)
    notes = []
    if n < len(df) and timed_out:
        notes.append(f"checked {of} masks before training ({seconds:g} s); the others are read in the first epoch")
    if empty:
        why = ""
        if len(empty) == n:
            why = (": there is no nucleus to find in them, so their scores say nothing of finding nuclei"
                   if evaluating else ": the network learns only background from them")
            why += ("; check that these are the annotated masks (a 16-bit label image converted to 8-bit with scaling "
                    "turns small labels to 0)")
        verb = "holds" if len(empty) == 1 else "hold"
        notes.append(f"{len(empty)} of {of} masks {verb} no object (all 0, e.g. {empty[0]}){why}")
    if "colour" in kinds:
        notes.append(f"{kinds.count('colour')} of {of} masks are colour images: each colour is taken as one object, "
                     "black as the background")
    if binary:
        notes.append(f"{len(binary)} of {of} masks hold one value for every object (a thresholded mask, e.g. "
                     f"{binary[0]}): each connected blob is taken as one instance, so touching nuclei stay merged; "
                     "instance labels (1, 2, 3... per object) avoid it")
    if wrapped:
        notes.append(f"label values repeat in separate nuclei in {len(wrapped)} of {of} masks (8-bit, e.g. "
                     f"{wrapped[0]}): an 8-bit export of more than 255 nuclei? Labels past 255 wrap around (256 "
                     "becomes background, 257 merges with nucleus 1); save the labels as 16-bit TIFF")
    if repeated:
        name, k, m = repeated[0]
        notes.append(f"label values repeat in separate nuclei: {k} of {m} labels in {name} are several blobs apart "
                     f"({len(repeated)} of {of} masks like it): devolens takes a value for one nucleus, so far-apart "
                     "nuclei train as one; instance masks need one value per nucleus (class masks, a value per "
                     "kind of object: data.target: classes with data.classes)")
    if ignored:
        notes.append(f"{len(ignored)} of {of} masks paint 255 over several separate regions (8-bit, e.g. "
                     f"{ignored[0]}): 255 is read as 'ignore': its pixels are left out of the training loss and of "
                     "the validation scores (neither nuclei to find nor false detections, left out of IoU, Dice and "
                     "PR-AUC); set them to 0 to train them as background, or to labels of their own as nuclei")
    return notes


def store_fingerprint(path: str | Path, n: int) -> str:
    """The fingerprint of a tile store's data that ``run.json`` records (``data.fingerprint``) for a run trained on
    the store ``path`` of ``n`` tiles: its file's contents (:func:`file_digest`) and tile count, wherever it lies
    (``devolens evaluate`` recognises the store a run trained on by it)."""
    return hashlib.blake2b(file_digest(path) + str(n).encode(), digest_size=16).hexdigest()


def _build_h5(recipe: dict, path: Path, run_split: pd.DataFrame | None = None) -> DataBundle:
    """Train/validation tiles of an HDF5 tile store, split by :func:`devolens.data.h5stream.split_tiles` (the
    library's split of stores: whole source images, or a band of each image, ``data.split_by``; training tiles that
    share pixels with validation tiles dropped). ``run_split``: a resumed run's ``split.csv``, kept where it lists
    the very tiles found here (``drop``: neither side)."""
    from devolens.data.datasets import H5TileDataset
    from devolens.data.h5stream import STORE_SPLITS, split_tiles, store_split_inputs
    from devolens.data.tiling import open_h5

    d = recipe["data"]
    if recipe["task"] != "segmentation":
        raise DevolensError("an HDF5 tile store can only train the segmentation task", path=path)
    with open_h5(path) as f:  # another program holding it open: one line, not h5py's traceback
        if "images" not in f or "labels" not in f:
            raise DevolensError("the tile store needs 'images' and 'labels' datasets", path=path)
        if f.attrs.get("format") == "devolens-tiles":  # its datasets' dtypes and shapes (NaN pixels "diverged")
            from devolens.data.tiling import check_store

            check_store(f, path)
        else:  # a user's own file: a dataset linked to a missing file, or a soft link to nothing, named in one
            # line as in a devolens store (was a raw KeyError from f["images"] below)
            from devolens.data.tiling import _STORE_DATASETS, _linked

            for k in _STORE_DATASETS:
                if k in f:
                    _linked(f, k, path)
        n, c = f["images"].shape[0], f["images"].shape[1]
        source, coords, tile, same = store_split_inputs(f, n)
        # the classes its labels hold (a `devolens tile` store counts each class's pixels per tile)
        present = np.flatnonzero(np.asarray(f["class_counts"][:n]).sum(axis=0)) if "class_counts" in f else None
        is_store = f.attrs.get("format") == "devolens-tiles"  # written by `devolens tile`
    if n == 0:
        raise DevolensError("the tile store holds no tiles", path=path)
    top = None if present is None or not present.size else int(present.max())
    if d["target"] == "classes" and top is not None and top >= int(d["classes"]):
        raise DevolensError(f"the tile store's labels hold class {top}, but data.classes is {int(d['classes'])} "
                            f"(class ids 0..{int(d['classes']) - 1}): set data.classes to {top + 1}", path=path)
    if c != d["channels"]:
        raise DevolensError(f"data.channels is {d['channels']} but the tiles have {c} channels", path=path)
    if d.get("channel") is not None:
        raise DevolensError("data.channel picks a channel of image files; a tile store's tiles keep their "
                            "data.channels channels (remove data.channel)", path=path)
    fingerprint = store_fingerprint(path, n)
    df = pd.DataFrame({"sample": [f"tile{i:06d}" for i in range(n)]})
    notes = []
    if d["target"] == "classes" and top is not None and top + 1 < int(d["classes"]):
        notes.append(f"data.classes is {int(d['classes'])} but the tile store's labels hold classes 0..{top} only: "
                     "the network learns outputs for classes that never occur")
    if d["limit"] is not None and n > d["limit"]:
        df = df.sample(n=d["limit"], random_state=recipe["seed"]).sort_index()
        notes.append(f"using {d['limit']} tiles (data.limit)")
    rows = df.index.to_numpy()
    kept = None
    if run_split is not None and {"sample", "side"} <= set(run_split.columns):
        # a resumed run: its own sides, where it lists these very tiles (before the split of today, which may
        # refuse a store an older version trained on)
        kept = dict(zip(run_split["sample"].astype(str), run_split["side"].astype(str)))
        if not (set(kept) == set(df["sample"]) and set(kept.values()) <= {"train", "val", "drop"}):
            kept = None
    split_by = d["split_by"]
    if split_by not in STORE_SPLITS:  # an image-folder split (embryo, folder, ...): not one of a store's
        notes.append(f"data.split_by {split_by!r} is ignored for tile stores (they split by "
                     f"{' or '.join(map(repr, STORE_SPLITS))}): split by source image")
        split_by = "source"
    if kept is not None:
        sides = df["sample"].map(kept)
        groups = (dict(zip(run_split["sample"].astype(str), run_split["group"].astype(str)))
                  if "group" in run_split.columns else kept)
        df["group"] = df["sample"].map(groups)
        df["side"] = sides
        split_note = (f"the run's own split is kept (its split.csv: {int((sides == 'val').sum())} tiles "
                      f"validate, {int((sides == 'train').sum())} train, {int((sides == 'drop').sum())} "
                      "neither)")
    else:
        try:
            sp = split_tiles(None if source is None else source[rows], None if coords is None else coords[rows],
                             tile, d["val_fraction"], recipe["seed"], split_by, same, len(rows))
        except DevolensError as exc:
            raise DevolensError(str(exc), path=path) from None
        df["group"] = sp.group.astype(str)
        df["side"] = sp.sides()
        split_note = sp.note
    notes.append(split_note)
    tr = rows[(df["side"] == "train").to_numpy()]
    va = rows[(df["side"] == "val").to_numpy()]
    split = df[["sample", "group", "side"]].reset_index(drop=True)
    if is_store and d["target"] == "classes":
        # stream whole HDF5 chunks (shuffled chunks, shuffled within): random per-tile reads
        # would decompress a 1000-tile chunk per sample (giant-images helper)
        from devolens.data.h5stream import H5TileStream, flip_rotate

        gain = (0.5, 2.0) if recipe["augment"]["preset"] == "livedead" else None
        crop = int(d["size"][0]) if d["size"] else None
        classes = int(d["classes"])  # each chunk's labels checked against it (a bad one failed inside the loss)
        train_ds = H5TileStream(path, shuffle=True, seed=recipe["seed"], indices=tr, transform=flip_rotate(gain, crop),
                                normalize=d["normalize"], as_dict=True, classes=classes)
        val_ds = H5TileStream(path, shuffle=False, indices=va, normalize=d["normalize"], as_dict=True, classes=classes)
        notes.append("tiles streamed one HDF5 chunk at a time (H5TileStream); no per-sample pruning")
        return DataBundle(train_ds, val_ds, split, notes, fingerprint=fingerprint, split_noted=True)
    aug = build_augment(recipe["augment"]["preset"], recipe["augment"]["strength"], recipe["augment"]["overrides"])
    common = dict(target=d["target"], normalize=d["normalize"], seed=recipe["seed"])
    train_ds = H5TileDataset(path, augment=aug, indices=tr, **common)
    val_ds = H5TileDataset(path, indices=va, **common)
    return DataBundle(train_ds, val_ds, split, notes, fingerprint=fingerprint, split_noted=True)


# ----------------------------------------------------------------------------- model
def build_from_recipe(recipe: dict) -> torch.nn.Module:
    """The network a (resolved) recipe asks for."""
    m, d = recipe["model"], recipe["data"]
    if recipe["task"] == "population":
        return build_regressor(d["channels"], len(d["counts"]), m["width"])
    return build_model(m["arch"], m["encoder"], d["channels"], n_outputs(recipe), None, m["decoder_channels"],
                       m["encoder_depth"])


def _autocast(amp: str, device: torch.device | str = "cpu"):
    """The forward pass's arithmetic for ``train.amp`` (run :func:`effective_amp` first): bf16 or fp16 autocast,
    else fp32."""
    if amp in _AMP_DTYPES:
        return torch.autocast(torch.device(device).type, dtype=_AMP_DTYPES[amp])
    return contextlib.nullcontext()


_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def effective_amp(amp: str, device: torch.device | str) -> tuple[str, str | None]:
    """The ``train.amp`` that runs on ``device`` (training or evaluating), and a note where it is not the one
    asked for.

    bf16 on a CUDA GPU without native bfloat16 (:func:`devolens.predict.devices.native_bf16`: capability < 8.0:
    T4, V100, GTX 10xx, RTX 20xx) runs fp16: PyTorch does not refuse bf16 there (``torch.cuda.is_bf16_supported()``
    says True, counting emulation), but its convolutions fall back to slow paths, while fp16 runs on those GPUs'
    tensor cores; these networks normalise their activations (batch norm) and compute their losses in fp32, far
    inside fp16's range, and the loss scaling of training keeps small gradients from vanishing. fp16 on a CPU
    without float16 arithmetic (:func:`devolens.models.quantize.fp16_fast_here`) runs fp32: emulated fp16 is 15-20
    times slower there; so does bf16 on a CPU without native bfloat16 (:func:`devolens.models.quantize.bf16_fast_here`:
    AVX2-only x86, Apple M1), where emulated bf16 took a training step of the nuclei network (batch 4 of 256x256)
    about 12 times as long as fp32 on an AVX2-only AMD EPYC. The GPU asked about is ``cuda:N``, or the current CUDA
    device for a bare ``cuda`` (:func:`use_device` makes ``cuda:N`` current first).

    Parameters
    ----------
    amp : {"none", "bf16", "fp16"}
        The recipe's ``train.amp``.
    device : torch.device or str
        Where the network runs.

    Returns
    -------
    (str, str or None)
        The amp to run and the note saying why it differs (None where it does not).
    """
    from devolens.models import quantize
    from devolens.predict.devices import gpu_label, native_bf16

    device = torch.device(device)
    if amp == "bf16" and device.type == "cuda" and not native_bf16(str(device)):
        return "fp16", (f"the GPU {gpu_label(str(device))} has no native bfloat16: fp16 runs instead of bf16 (as "
                        "train.amp: fp16 does, with loss scaling in training)")
    if amp == "fp16" and device.type == "cpu" and not quantize.fp16_fast_here():
        return "none", ("this CPU has no float16 arithmetic (fp16 would run many times slower than fp32 here; "
                        "train.amp: fp16 is meant for GPUs): fp32 runs instead of fp16 (as train.amp: none does)")
    if amp == "bf16" and device.type == "cpu" and not quantize.bf16_fast_here():
        return "none", ("this CPU has no native bfloat16 (bf16 would run emulated, about 10 times slower than fp32 "
                        "here; train.amp: bf16 is meant for GPUs and CPUs with AVX512-BF16 or AMX): fp32 runs instead "
                        "of bf16 (as train.amp: none does)")
    return amp, None


def use_device(device: torch.device) -> None:
    """Make ``cuda:N`` the current CUDA device (nothing for ``cpu`` or a bare ``cuda``): the DataLoader's
    pin-memory thread, and anything else that asks CUDA for "the" device, would otherwise open a context on GPU 0
    (memory taken on a GPU another user may hold). The setting stays for the process."""
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)


def resolve_device(name: str = "auto", option: str = "train.device") -> torch.device:
    """The device of a recipe's ``train.device``: ``auto`` is the first CUDA GPU when PyTorch
    sees one, else the CPU (:func:`devolens.predict.devices.resolve_device`).

    Raises
    ------
    DevolensError
        ``cuda`` asked for where PyTorch sees no CUDA GPU, or an unknown name.
    """
    from devolens.predict.devices import resolve_device as resolve

    return torch.device(resolve(name, option))


#: training samples whose pixels automatic class weights (``loss.class_weights``: a method) count: all of them up
#: to this many, else this many drawn at random (seeded by the recipe) over the whole set, with a note
CLASS_WEIGHT_SAMPLES = 1024


def _weight_samples(n: int, seed: int) -> np.ndarray:
    """The training samples (positions, in order) whose pixels automatic class weights count: all ``n`` up to
    :data:`CLASS_WEIGHT_SAMPLES`, else that many drawn at random with ``seed`` (spread over the whole set, not the
    first ones in file-name order: one embryo's frames)."""
    if n <= CLASS_WEIGHT_SAMPLES:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, CLASS_WEIGHT_SAMPLES, replace=False))


def class_weight_note(recipe: dict, train_ds: Dataset) -> str | None:
    """The run's note on automatic class weights counted on a share of the training samples (None where they count
    every sample, come from a tile store's stored counts, or are given as numbers)."""
    cw = recipe["loss"]["class_weights"]
    if not isinstance(cw, str) or hasattr(train_ds, "class_frequencies") or isinstance(train_ds, IterableDataset):
        return None
    n = len(train_ds)
    if n <= CLASS_WEIGHT_SAMPLES:
        return None
    return (f"loss.class_weights {cw}: the classes' pixels were counted on {CLASS_WEIGHT_SAMPLES} of the {n} training "
            f"samples, drawn at random over the whole set (seed {int(recipe['seed'])}; run.json's class_weights "
            "lists the weights)")


def _class_targets(ds: Dataset, indices: np.ndarray) -> Iterator[np.ndarray]:
    """The training targets of the samples ``indices`` of ``ds`` on their own pixels, without augmentation, one at
    a time: the dataset's ``class_targets`` where it has one (the labels alone, no distance target; a tile store's
    chunk by chunk), else its items' ``target`` with its augmentation off (till the generator ends or is closed),
    cut to their own size (:func:`_own_size`)."""
    own = getattr(ds, "class_targets", None)
    if own is not None:
        yield from own(indices)
        return
    saved = ds.augment
    ds.augment = None
    try:
        for i in indices:
            item = ds[int(i)]
            h, w = _own_size(item)
            yield item["target"].numpy()[..., :h, :w]
    finally:
        ds.augment = saved


def _loss_fn(recipe: dict, train_ds: Dataset):
    """The per-sample loss of a (resolved) recipe, and the class weights it uses (None for none). Automatic class
    weights (``loss.class_weights``: ``median_frequency``, ``inverse_sqrt`` or ``inverse``) count the classes' pixels
    of the training samples (:func:`_weight_samples`: all of them, or a seeded random share of a large set), each
    on its own pixels without augmentation (:func:`_class_targets`): neither the padding to the network's multiple
    nor ignored pixels (:data:`devolens.data.datasets.IGNORE_INDEX`) count; a tile stream's stored counts where it
    has them. (A resumed run passes its checkpoint's weights as numbers: :func:`_recorded_weights`.)"""
    L = recipe["loss"]
    cw = L["class_weights"]
    if isinstance(cw, str) and hasattr(train_ds, "class_frequencies"):  # tile stream: stored counts
        cw = class_weights(train_ds.class_frequencies(), cw).tolist()
    elif isinstance(cw, str):
        k = max(2, n_classes(recipe))
        targets = _class_targets(train_ds, _weight_samples(len(train_ds), int(recipe["seed"])))
        try:  # counted one at a time (a thousand 1024x1024 targets at once would take 8 GB)
            freqs = class_frequencies(targets, k)
        finally:
            targets.close()  # (an error while counting: the augmentation back on at once)
        cw = class_weights(freqs, cw).tolist()
    elif cw is not None and recipe["task"] == "segmentation" and len(cw) != max(2, n_classes(recipe)):
        raise DevolensError(f"loss.class_weights: need {max(2, n_classes(recipe))} weights, got {len(cw)}")
    base = build_loss(L["name"], cw, L["dice_weight"], L["focal_gamma"], L["huber_delta"])
    if not recipe["model"].get("distance_head"):
        fn = lambda y, target, distance=None: base(y, target)
        leaves_out(fn, mark=leaves_out(base))  # (the padding left out: its per-sample values are the samples' own)
        return fn, cw
    k, w = n_classes(recipe), float(L["distance_weight"])

    def with_distance(y, target, distance=None):
        """The classes' loss plus the distance head's L1 (per sample), both without the ignored pixels."""
        per = base(y[:, :k], target)
        if distance is None:
            return per
        err = (torch.sigmoid(y[:, k]) - distance.to(y.dtype)).abs()
        return per + w * masked_mean(err, known(target)[1])

    leaves_out(with_distance, mark=leaves_out(base))
    return with_distance, cw


def init_path(source: str | Path, option: str = "model.init") -> Path:
    """Where ``model.init`` (or the option named ``option``, e.g. ``--weights``) points: ``zoo:NAME`` is
    the shipped model's folder (wherever devolens is installed), anything else a path.

    Raises
    ------
    DevolensError
        ``zoo:NAME`` of a model that does not ship, or a path that does not exist.
    """
    text = str(source)
    if text.startswith("zoo:"):
        from devolens.models import zoo

        name = text[4:]
        if name not in zoo.available():
            raise DevolensError(f"{option}: no shipped model {name!r} (shipped: {', '.join(zoo.available())})")
        return zoo.ZOO_DIR / name
    if not Path(text).exists():
        raise DevolensError(f"{option}: no such weights file or zoo folder (or zoo:NAME for a shipped model)",
                            path=text)
    return Path(text)


def weights_file(source: str | Path, option: str = "model.init") -> Path:
    """The safetensors file of ``source`` (see :func:`init_path`): the file itself, a zoo folder's
    ``weights.safetensors``, or a run folder's ``best.safetensors``.

    Raises
    ------
    DevolensError
        Nothing there to load, worded for ``option``; a model's JSON config names its weights file.
    """
    path = init_path(source, option)
    if path.is_dir():
        for name in ("weights.safetensors", BEST):  # a zoo or exported model folder, else a run folder
            if (path / name).is_file():
                return path / name
        raise DevolensError(f"{option}: no weights in this folder (weights.safetensors of a model folder, or "
                            f"{BEST} of a run)", path=path)
    if path.suffix.lower() == ".json" and path.with_suffix(".safetensors").is_file():
        raise DevolensError(f"{option}: this is the JSON config of a model; give its weights, "
                            f"{path.with_suffix('.safetensors')}", path=path)
    if path.suffix.lower() != ".safetensors":
        raise DevolensError(f"{option}: not a weights file (a .safetensors file, a model or run folder, or "
                            "zoo:NAME)", path=path)
    return path


#: the recipe's ``model`` keys that fine-tuning's starting weights (``model.init``) fix: the network's shape (its
#: classes and input channels follow the data; a 3-class head grows a distance channel)
INIT_ARCH_KEYS = ("arch", "encoder", "encoder_depth", "decoder_channels")


def init_architecture(source: str | Path) -> dict | None:
    """The network config of the weights ``source`` (``model.init``) names, where they record one: a zoo or
    exported model folder's card.json ``architecture``, a run folder's (or its ``best.safetensors``') best.json
    ``model``; None otherwise (a bare weights file, a file that cannot be read: the weights' fit then says)."""
    path = init_path(source)
    folder = path if path.is_dir() else path.parent if path.name == BEST else None
    if folder is None:
        return None
    for name, key in (("card.json", "architecture"), ("best.json", "model")):
        try:
            arch = json.loads((folder / name).read_text(encoding="utf-8")).get(key)
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            continue
        if isinstance(arch, dict):
            return arch
    return None


def check_init_architecture(recipe: dict, source: str | Path) -> None:
    """Refuse a (resolved) recipe whose network is not the one of its starting weights ``source`` (``model.init``,
    :func:`init_architecture`), naming the first key of :data:`INIT_ARCH_KEYS` that differs and both values (the
    weights' tensors would not fit: "224 tensors expected, 84 missing" said nothing of why)."""
    arch = init_architecture(source)
    if arch is None:
        return
    model = recipe["model"]
    for key in INIT_ARCH_KEYS:
        if key not in arch or key not in model:
            continue
        mine, theirs = model[key], arch[key]
        if (list(mine) if isinstance(mine, (list, tuple)) else mine) != \
                (list(theirs) if isinstance(theirs, (list, tuple)) else theirs):
            raise DevolensError(f"model.{key} is {_yaml_value(mine)}, but the starting weights (model.init: {source}) "
                                f"are of a network with {key} {_yaml_value(theirs)}: fine-tuning keeps the network of "
                                f"its starting weights; set model.{key}: {_yaml_value(theirs)} in the recipe (or leave "
                                "out model.init to train from scratch)")


def _yaml_value(value) -> str:
    """``value`` as a recipe writes it: ``resnet18``, ``4``, ``[64, 32, 16, 8]``."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return str(value)


def init_weights(model: torch.nn.Module, source: str | Path, *, grow_head: bool = True,
                 option: str = "model.init") -> torch.nn.Module:
    """``model`` with the weights of ``source``: ``zoo:NAME`` or a zoo folder, a saved model (a run's
    ``best.safetensors``, or its folder) or a run's training checkpoint (``checkpoint.safetensors``,
    the last epoch). With ``grow_head`` (fine-tuning), a network that adds a distance head to a
    3-class one keeps the 3-class weights: the output layer's first channels come from ``source``,
    the new channel keeps its fresh initialisation. Anything else must fit exactly; errors name
    ``option`` (the recipe key or command-line option that gave ``source``)."""
    from safetensors import SafetensorError

    from devolens.io.tensors import load_tensors
    from devolens.models.zoo import load_state

    file = weights_file(source, option)
    try:
        state = load_tensors(file)
    except DevolensError:  # damaged or unreadable: already one line naming the file
        raise
    except (SafetensorError, OSError) as exc:
        raise DevolensError(f"{option}: cannot read the weights ({exc})".replace("\n", " "), path=file) from None
    if any(k.startswith("model/") for k in state):  # a training checkpoint: the model's tensors, not the optimiser's
        state = {k[6:]: v for k, v in state.items() if k.startswith("model/")}
    ref = model.state_dict()
    for k, v in list(state.items()):
        r = ref.get(k)
        if (grow_head and r is not None and k.startswith("segmentation_head.") and v.shape != r.shape
                and v.ndim == r.ndim and v.shape[1:] == r.shape[1:] and v.shape[0] < r.shape[0]):
            grown = r.clone()
            grown[: v.shape[0]] = v.to(r.dtype)
            state[k] = grown
    _check_fit(state, ref, file, option)
    return load_state(model, state, file, "the weights do not fit this network")


def _check_fit(state: dict, ref: dict, file: Path, option: str) -> None:
    """One line for weights that do not fit the network (PyTorch lists every tensor, kilobytes of
    them): how many are missing, unexpected or of another shape, with the first names."""
    missing = [k for k in ref if k not in state]
    unexpected = [k for k in state if k not in ref]
    shaped = [k for k in state if k in ref and tuple(state[k].shape) != tuple(ref[k].shape)]
    if not (missing or unexpected or shaped):
        return

    def first(keys: list[str]) -> str:
        named = sorted(keys, key=lambda k: k.endswith("num_batches_tracked"))  # weights before counters
        return ", ".join(named[:2]) + (", ..." if len(keys) > 2 else "")

    parts = []
    if shaped:
        k = shaped[0]
        parts.append(f"{len(shaped)} of another shape (e.g. {k}: {tuple(state[k].shape)} in the file, "
                     f"{tuple(ref[k].shape)} in the network)")
    if missing:
        parts.append(f"{len(missing)} missing ({first(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({first(unexpected)})")
    raise DevolensError(f"{option}: the weights do not fit this network: {len(ref)} tensors expected, "
                        f"{'; '.join(parts)}; weights of another architecture, depth, width or number of classes?",
                        path=file)


def _scheduler(recipe: dict, opt):
    s = recipe["scheduler"]
    name = s["name"]
    return build_scheduler(name, opt, **{k: s[k] for k in SCHEDULER_KEYS[name]})  # (the others: ignored_settings)


# ----------------------------------------------------------------------------- evaluation
def validation_instances(prob: np.ndarray, classes: np.ndarray, recipe: dict,
                         distance: np.ndarray | None = None) -> np.ndarray:
    """Instance labels of one validation sample, as the recipe's ``validate`` section says.

    ``classes``: the quick rule (:func:`instances_from_classes` on the argmax map);
    ``watershed``: the zoo predictors' post-processing
    (:func:`devolens.predict.postprocess.instances_from_probabilities`) with
    ``validate.postprocess``: foreground = 1 - p(background) and seeds from p(interior) for
    the 3-class target (from the predicted ``distance`` when the network has a distance head),
    the sigmoid for the semantic one.
    """
    target = recipe["data"]["target"]
    if recipe["validate"]["instances"] != "watershed" or target == "classes":
        return instances_from_classes(classes, target)
    from devolens.predict.postprocess import instances_from_probabilities

    if target == "boundary":
        fg, interior = 1.0 - prob[0], (prob[1] if distance is None else distance)
    else:
        fg, interior = prob[0], None
    return instances_from_probabilities(fg, interior, **recipe["validate"]["postprocess"])


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, dataset: Dataset, recipe: dict, loss_fn=None, batch_size: int = 8,
                   amp: str = "none", keep: int = 0, progress: Callable[[int, int], None] | None = None,
                   per_image: bool = False) -> dict[str, Any]:
    """Validation metrics of ``model`` on ``dataset``.

    The samples of a batch that differ in size run through the network apart, each size in one pass (not padded
    to the largest), and each sample is scored on its own pixels: its ``size`` (height, width before the
    dataset's padding to a multiple of ``pad_multiple``) where the dataset gives it, else all of it. So the
    metrics do not depend on ``batch_size``. A sample's ``ignore`` label (:func:`devolens.data.datasets.
    ignore_label`: 255 painted over several regions of an 8-bit mask) is 'ignore': its pixels are left out of
    IoU, Dice, PR-AUC and the loss (their target is :data:`devolens.data.datasets.IGNORE_INDEX`), its objects are
    neither to find nor false detections (:func:`devolens.train.metrics.match_instances`), and predictions lying
    mostly on it are not counted.

    Parameters
    ----------
    model : torch.nn.Module
    dataset : Dataset
        Yields dicts as :mod:`devolens.data.datasets` does.
    recipe : dict
        Resolved recipe (task, target, counts).
    loss_fn : callable, optional
        Per-sample loss; adds ``val_loss``: each sample's loss on its own pixels, averaged over the set as training
        averages a batch (:func:`devolens.train.losses.batch_loss`): weighted by the sample's pixels that count
        ('ignore' pixels left out), the mean over the set's counted pixels
        (:func:`devolens.train.losses.pixel_mean`; the plain mean where every sample counts as many, and for the
        population task), whatever ``batch_size``.
    keep : int
        Also return ``keep`` evenly spaced samples' image, truth and prediction
        (segmentation), the same ones every call (truth 255 where ignored).
    per_image : bool
        Also return ``images``: one small dict per sample, in the dataset's order (segmentation): true and
        predicted object counts, ``tp``, ``fp``, ``fn`` (the matches the metrics count) and their precision,
        recall and F1; no arrays are kept for it. For the population task: ``true_C`` and ``pred_C`` of each count
        ``C`` of ``data.counts`` (the network's outputs as the MAE reads them).

    Returns
    -------
    dict
        ``metrics`` (name -> float, names as in :func:`metric_names`; with ``data.target: classes`` also
        ``val_f1_1``, ``val_f1_2``...: object F1 of each class, objects matched within their class only,
        where ``val_f1`` is detection F1, the class not checked), with ``keep`` ``samples`` (dict of arrays),
        with ``per_image`` ``images`` (list of dicts).
    """
    from torch.utils.data import default_collate

    recipe = resolved(recipe)
    model.eval()
    device = next(model.parameters()).device  # batches go where the model is; metrics are computed on the CPU
    seg = recipe["task"] == "segmentation"
    # samples as they come: those of one size are collated and run together below
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0, collate_fn=_as_list)
    losses: list[float] = []
    counts: list[float] = []  # each sample's pixels that count (the weights of val_loss; 1 a sample of counts)
    out: dict[str, float] = {}
    kept: dict[str, list] = {"image": [], "truth": [], "pred": [], "truth_labels": [], "pred_labels": []}
    if seg:
        target = recipe["data"]["target"]
        k = max(2, n_classes(recipe))
        cm = np.zeros((k, k), np.int64)
        hists = [(np.zeros(1000, np.int64), np.zeros(1000, np.int64)) for _ in range(k)]
        tp = fp = fn = 0
        per_class = np.zeros((k, 3), np.int64)  # tp, fp, fn of each class's objects (class-id targets)
        n_pred, n_true = [], []
        images: list[dict[str, Any]] = []
    else:
        preds, trues = [], []
    done = 0
    n_all = len(dataset)
    keep_idx = set(np.unique(np.linspace(0, n_all - 1, min(keep, n_all)).round().astype(int)).tolist()) if keep else set()
    for items in loader:
        outputs: list[torch.Tensor | None] = [None] * len(items)
        for group in _same_size(items):
            batch = default_collate([items[j] for j in group])
            with _autocast(amp, device):
                y = model(batch["image"].to(device))
            y = y.float()
            if not bool(torch.isfinite(y).all()):
                # a finite training loss can still step to weights that overflow (a far too high rate): say so
                # rather than fail in the metrics
                raise DevolensError("the network's outputs are NaN or infinite: training diverged; lower optimizer.lr"
                                    + _FP16_HINT.get(amp, ""))
            if loss_fn is not None and not seg:
                losses.extend(loss_fn(y, *_on(device, batch["target"], batch.get("distance"))).tolist())
                counts.extend([1.0] * len(group))
            elif loss_fn is not None:  # each sample's loss on its own pixels, as its metrics (not the padding)
                parts = _on(device, batch["target"], batch.get("distance"))
                for n, j in enumerate(group):
                    h, w = _own_size(items[j])
                    own = [None if p is None else p[n:n + 1, ..., :h, :w] for p in parts]
                    losses.extend(loss_fn(y[n:n + 1, ..., :h, :w], *own).tolist())
                    counts.extend(counted(batch["target"][n:n + 1, :h, :w]).tolist())
            y = y.cpu()
            for n, j in enumerate(group):
                outputs[j] = y[n]
        for j, item in enumerate(items):
            y = outputs[j]
            if not seg:
                preds.append(y.numpy()[None])
                trues.append(item["target"].numpy()[None])
                continue
            h, w = _own_size(item)
            dist = None
            if recipe["model"].get("distance_head"):  # the last channel: the distance head
                dist, y = torch.sigmoid(y[-1]).numpy()[:h, :w], y[:-1]
            prob = (torch.sigmoid(y) if y.shape[0] == 1 else torch.softmax(y, dim=0)).numpy()[:, :h, :w]
            tgt = item["target"].numpy()[:h, :w]
            ignore = int(item["ignore"]) if "ignore" in item else 0
            void = (item["labels"].numpy()[:h, :w] == ignore) if ignore else None  # pixels scored as 'ignore'
            cls = probabilities_to_classes(prob)
            cm += M.confusion_matrix(cls, tgt if void is None else np.where(void, -1, tgt), k)
            pc = np.concatenate([1 - prob, prob]) if prob.shape[0] == 1 else prob
            for c in range(k):
                scores, positive = pc[c], tgt == c
                if void is not None:
                    scores, positive = scores[~void], positive[~void]
                ph, nh = M.score_histograms(scores, positive)
                hists[c][0][:] += ph
                hists[c][1][:] += nh
            pl = validation_instances(prob, cls, recipe, dist)
            tl = (item["labels"].numpy()[:h, :w] if target != "classes"
                  else instances_from_classes(tgt, "classes", min_area=1))
            ign = [ignore] if void is not None else None
            if void is not None and target == "classes":  # objects of classes: the ignored pixels one of their own
                ign = [int(tl.max()) + 1]
                tl = np.where(void, ign[0], tl).astype(np.int32)
            m = M.match_instances(pl, tl, ignore=ign)
            tp, fp, fn = tp + m["tp"], fp + m["fp"], fn + m["fn"]
            if target == "classes":  # each class's objects matched among themselves (val_f1 does not look)
                for c in range(1, k):
                    mine = tgt == c if void is None else (tgt == c) | void  # (with the 'ignore' object)
                    mc = M.match_instances(np.where(cls == c, pl, 0), np.where(mine, tl, 0), ignore=ign)
                    per_class[c] += (mc["tp"], mc["fp"], mc["fn"])
            # the objects counted: those the matching scores (at IoU > 0.5 those on 'ignore' are left out of both)
            n_pred.append(m["tp"] + m["fp"])
            n_true.append(m["tp"] + m["fn"])
            if per_image:  # scored now: the CSV of `devolens evaluate` needs no sample's arrays kept
                one = M.prf(m["tp"], m["fp"], m["fn"])
                images.append({"true_count": int(n_true[-1]), "pred_count": int(n_pred[-1]), "tp": int(m["tp"]),
                               "fp": int(m["fp"]), "fn": int(m["fn"]), "precision": one["precision"],
                               "recall": one["recall"], "f1": one["f1"]})
            if done + j in keep_idx:
                img = item["image"].numpy()[:, :h, :w].transpose(1, 2, 0)
                kept["image"].append(np.clip(img * 255, 0, 255).astype(np.uint8))
                kept["truth"].append(np.where(tgt < 0, 255, tgt).astype(np.uint8))  # 255: ignored
                kept["pred"].append(cls.astype(np.uint8))
                kept["truth_labels"].append(tl.astype(np.int32))
                kept["pred_labels"].append(pl.astype(np.int32))
        done += len(items)
        if progress is not None:
            progress(done, len(dataset))
    if losses:  # the training loss's quantity: the mean over the set's counted pixels (the samples' where alike)
        out["val_loss"] = pixel_mean(losses, counts)
    if seg:
        s = M.iou_dice(cm)
        aps = [M.ap_from_histograms(*h) for h in hists]
        for c in range(k):
            out[f"val_iou_{c}"], out[f"val_dice_{c}"], out[f"val_ap_{c}"] = float(s["iou"][c]), float(s["dice"][c]), aps[c]
        out["val_iou"] = float(np.nanmean(s["iou"][1:])) if np.isfinite(s["iou"][1:]).any() else float("nan")
        out["val_dice"] = float(np.nanmean(s["dice"][1:])) if np.isfinite(s["dice"][1:]).any() else float("nan")
        fg_ap = np.array(aps[1:], dtype=float)
        out["val_ap"] = float(np.nanmean(fg_ap)) if np.isfinite(fg_ap).any() else float("nan")
        sc = M.prf(tp, fp, fn)
        out.update({"val_f1": sc["f1"], "val_precision": sc["precision"], "val_recall": sc["recall"]})
        if target == "classes":
            for c in range(1, k):
                out[f"val_f1_{c}"] = M.prf(*(int(v) for v in per_class[c]))["f1"]
        out["val_count_mae"] = M.count_error(n_pred, n_true)["mae"]
    else:
        p, t = np.concatenate(preds), np.concatenate(trues)
        letters = recipe["data"]["counts"]
        mae = M.population_mae(p, t, letters)
        for c, v in mae.items():
            out[f"val_mae_{c}"] = v
        out["val_mae"] = float(np.mean(list(mae.values())))
        if "total" in letters:
            j = list(letters).index("total")
            out["val_count_mae"] = M.count_error(p[:, j], t[:, j])["mae"]
    res: dict[str, Any] = {"metrics": out}
    if per_image and seg:
        res["images"] = images
    elif per_image:  # a count run: each frame's true and predicted counts, as its MAE reads them
        letters = list(recipe["data"]["counts"])
        res["images"] = [{**{f"true_{c}": float(t[i, j]) for j, c in enumerate(letters)},
                          **{f"pred_{c}": float(p[i, j]) for j, c in enumerate(letters)}} for i in range(len(p))]
    if keep and seg and kept["image"]:
        res["samples"] = {k2: _stack_padded(v) for k2, v in kept.items()}
    return res


def _as_list(batch: list) -> list:
    """A loader's batch as the list of its samples (:func:`evaluate_model` collates those of one size)."""
    return batch


def _same_size(items: list[dict[str, Any]]) -> list[list[int]]:
    """The positions of ``items`` grouped by image shape, in order of first appearance: each group is one pass of
    the network, none padded to another sample's size (the padding would change the predictions near it)."""
    groups: dict[tuple, list[int]] = {}
    for j, item in enumerate(items):
        groups.setdefault(tuple(item["image"].shape), []).append(j)
    return list(groups.values())


def _own_size(item: dict[str, Any]) -> tuple[int, int]:
    """A sample's own height and width: its ``size`` (before the dataset's padding), else its image's."""
    if "size" in item:
        h, w = (int(v) for v in item["size"])
        return h, w
    return int(item["image"].shape[-2]), int(item["image"].shape[-1])


def _batches(loader, wait: list[float] | None = None):
    """The batches of ``loader``; a :class:`DevolensError` raised in a worker process (``train.num_workers``: a
    bad mask, a corrupt image) comes out as its own one line, not inside the worker's traceback, which PyTorch
    puts into the message of the error it raises again. ``wait``: its first element gets the seconds spent
    waiting for batches added (the loader processes' start included)."""
    t = time.perf_counter()
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            if wait is not None:
                wait[0] += time.perf_counter() - t
            return
        except DevolensError as exc:
            text = str(exc)
            if "Original Traceback" not in text:
                raise
            shutdown = getattr(it, "_shutdown_workers", None)  # now: else the exit waits seconds for them
            if shutdown is not None:
                shutdown()
            last = text.rstrip().splitlines()[-1]
            prefix = f"{DevolensError.__module__}.{DevolensError.__qualname__}: "
            raise DevolensError(last[len(prefix):] if last.startswith(prefix) else last) from None
        if wait is not None:
            wait[0] += time.perf_counter() - t
        yield batch
        t = time.perf_counter()


def _stack_padded(arrays: list[np.ndarray]) -> np.ndarray:
    """``np.stack`` of arrays whose first two axes may differ (samples of several sizes): each padded with
    zeros at the bottom and right to the largest."""
    h = max(a.shape[0] for a in arrays)
    w = max(a.shape[1] for a in arrays)
    return np.stack([np.pad(a, [(0, h - a.shape[0]), (0, w - a.shape[1])] + [(0, 0)] * (a.ndim - 2)) for a in arrays])


#: training steps between the divergence checks on a GPU (each check waits for the device)
SYNC_EVERY = 50


def model_config(rec: dict, epoch: int, **extra: Any) -> dict:
    """What a run's weights file says of itself (``best.json``): the task, the resolved recipe, the epoch and the
    input the network expects (what the predictors and ``models export`` read), plus ``extra`` (monitor, value,
    metrics)."""
    d = rec["data"]
    return {"task": rec["task"], "recipe": rec, "epoch": epoch, **extra,
            "input": {"channels": d["channels"], "channel": d.get("channel"), "size": d["size"], "scale": d["scale"],
                      "normalize": d["normalize"],
                      "target": d["target"], "counts": d["counts"] if rec["task"] == "population" else None,
                      "pad_multiple": 2 ** rec["model"]["encoder_depth"] if rec["task"] == "segmentation" else 1}}


def _shares_preloaded(ds: Dataset, per_epoch: int, n: int) -> bool:
    """Whether the engine decodes ``ds``'s files before its loader processes start (:meth:`preload`): when the
    dataset caches decoded files (``data.cache``), an epoch reads all ``n`` training samples (``per_epoch``;
    epochs capped by ``train.max_batches`` read a share, which loader processes decode and forget as before) and
    the processes are forked, so that they share the decoded files (spawned or forkserver ones, macOS's and
    Python 3.14's default, would each receive a copy of them every epoch)."""
    import multiprocessing

    return (hasattr(ds, "preload") and bool(getattr(ds, "cache", False)) and per_epoch >= n
            and multiprocessing.get_start_method() == "fork")


def _persistent_ok(ds: Dataset) -> bool:
    """Whether the training loader's processes may outlive an epoch (``persistent_workers``: they start once).
    They keep what they hold, so only where that is nothing of their own: every file decoded before they were
    forked (``fully_cached``: shared, as :func:`preload_for_workers` or a caller left it), or a dataset that caches
    nothing (``cache`` False). A process caching its own reads (epochs capped by ``train.max_batches``, spawned
    processes, a dataset that does not say) would hold ever more of them, epoch by epoch: those start afresh."""
    import multiprocessing

    if getattr(ds, "cache", None) is False:
        return True
    full = getattr(ds, "fully_cached", None)
    return callable(full) and multiprocessing.get_start_method() == "fork" and bool(full())


def preload_for_workers(ds: Dataset, workers: int, per_epoch: int, n: int,
                        info: Callable[[str], None] | None = None) -> int:
    """Decode ``ds``'s training files before ``workers`` loader processes start, where that helps
    (:func:`_shares_preloaded`): each process would decode its share again (in every epoch where the processes
    start afresh); forked, they share the decoded files (and may then outlive an epoch, :func:`_persistent_ok`).
    Says (``info``) how much memory that takes before the rest is decoded, and how long it took. Returns how many
    files were decoded."""
    if workers <= 0 or not _shares_preloaded(ds, per_epoch, n):
        return 0

    def announce(count: int, nbytes: int) -> None:
        if info is not None:
            info(f"decoding {count} training files into memory once (about {nbytes / 2**30:.1f} GB), for the loader "
                 "processes to share (data.cache: false to read them from disk in every epoch instead)")

    t0 = time.perf_counter()
    done = ds.preload(threads=min(workers, 8), announce=announce)
    if info is not None and done:
        info(f"{done} training files decoded into memory in {time.perf_counter() - t0:.1f} s")
    return done


def _diverged(epoch: int, loss: object = "not finite", amp: str = "none") -> DevolensError:
    """The error of a training run whose loss stopped being finite (``epoch`` counted from 0); in fp16, whose
    numbers end at 65504, also the way back to fp32."""
    return DevolensError(f"training diverged (loss {loss}) at epoch {epoch + 1}; lower optimizer.lr"
                         + _FP16_HINT.get(amp, ""))


_FP16_HINT = {"fp16": " (or train in fp32 with train.amp: none: fp16 holds numbers up to 65504 only)"}

#: the loss scale below which fp16 training counts as diverged: the scaler halves it at each step whose gradients
#: are not finite (and skips that step, which is no divergence); under 1 they were not finite even unscaled, and
#: every further step would be skipped (the network no longer trains)
MIN_LOSS_SCALE = 1.0


def _scale_collapsed(scaler: "torch.amp.GradScaler") -> bool:
    """Whether fp16 loss scaling has given up (:data:`MIN_LOSS_SCALE`; waits for the device)."""
    return scaler.is_enabled() and scaler.get_scale() < MIN_LOSS_SCALE


def _gradients_diverged(epoch: int, why: str = "the gradients are NaN or infinite even without loss scaling"
                        ) -> DevolensError:
    """The error of an fp16 run whose gradients stayed NaN or infinite (:func:`_scale_collapsed`, or ``why``)."""
    return DevolensError(f"training diverged ({why}) at epoch {epoch + 1}; lower optimizer.lr" + _FP16_HINT["fp16"])


def _lazy_sync(device: torch.device) -> bool:
    """Whether the training loop reads losses back only every :data:`SYNC_EVERY` steps and at the epoch's end
    (a GPU: each read makes the host wait for the device); on the CPU each step's are read at once."""
    return device.type == "cuda"


def _own_losses(per: torch.Tensor, y: torch.Tensor, target: torch.Tensor, distance: torch.Tensor | None,
                sizes: torch.Tensor | None, multiple: int, loss_fn) -> torch.Tensor:
    """Each training sample's loss on its own pixels (``sample_losses.csv``, pruning, ``train_loss``): the batch's
    per-sample losses ``per`` (detached).

    The padding of a sample, to the network's ``multiple`` (:func:`devolens.data.datasets.ignore_padding`) and to a
    larger image of its batch (:func:`devolens.data.datasets.pad_collate`), is ignored in its target
    (:data:`devolens.data.datasets.IGNORE_INDEX`), which the library's losses leave out
    (:func:`devolens.train.losses.leaves_out`): ``per`` is then each sample's own loss already (to float rounding)
    and is kept as it is, with no second pass. A loss of one's own (``loss_fn`` not so marked) may count the padding
    (as background it got right or wrong: small images were pruned first), so for it the samples ``pad_collate``
    padded to a larger one's size are scored again (no gradient) on their own part of the network's output ``y``:
    their ``sizes`` (height, width; the batch's ``size``) padded to ``multiple``, the tensor each has alone. Samples
    of a batch of one size keep ``per`` bit for bit either way, and the gradient's loss is
    :func:`devolens.train.losses.batch_loss` of ``per``."""
    if sizes is None or not torch.is_tensor(sizes) or sizes.ndim != 2 or leaves_out(loss_fn):
        return per.detach()
    h_all, w_all = int(target.shape[-2]), int(target.shape[-1])
    own = [(-(-int(h) // multiple) * multiple, -(-int(w) // multiple) * multiple) for h, w in sizes.tolist()]
    if all(h >= h_all and w >= w_all for h, w in own):
        return per.detach()
    out = per.detach().clone()
    with torch.no_grad():
        for n, (h, w) in enumerate(own):
            if h < h_all or w < w_all:
                part = [None if t is None else t[n:n + 1, ..., :h, :w] for t in (target, distance)]
                out[n] = loss_fn(y[n:n + 1, ..., :h, :w].float(), *part)[0].to(out.dtype)
    return out


def _note_losses(pending: list, sample_losses: "_SampleLosses", epoch: int, seen: list) -> None:
    """Move the (indices, per-sample losses, pixels that count or None) of ``pending`` steps into ``sample_losses``
    and ``seen`` (emptying ``pending``): ``seen`` gathers ``(losses, counts)`` arrays for the epoch's ``train_loss``
    (:func:`devolens.train.losses.pixel_mean`; counts None, a regression task's: 1 a sample)."""
    for index, per, count in pending:
        vals = per.float().cpu().numpy().astype(np.float64)
        sample_losses.add(epoch, index.numpy(), vals)
        seen.append((vals, np.ones(len(vals)) if count is None else count.cpu().numpy().astype(np.float64)))
    pending.clear()


def _seen_loss(seen: list) -> float:
    """An epoch's ``train_loss`` from the ``(losses, counts)`` :func:`_note_losses` gathered: the mean over its
    samples' counted pixels (:func:`devolens.train.losses.pixel_mean`), nan for no step."""
    if not seen:
        return float("nan")
    return pixel_mean(np.concatenate([v for v, _ in seen]), np.concatenate([c for _, c in seen]))


class _SampleLosses:
    """Every training sample's loss each epoch (``sample_losses.csv``: ``epoch, sample, loss``), kept as one small
    table per epoch (arrays, about 20 bytes a row, not a dict a row) and appended to the file epoch by epoch: a
    long run over many samples neither formats its whole history again each epoch nor holds millions of dicts.
    Each write still replaces the file atomically (the rows written before are copied as bytes, then the new
    epoch's are added), so an interrupted run leaves a whole table."""

    COLUMNS = ["epoch", "sample", "loss"]

    def __init__(self, path: Path, ids: Sequence[str]):
        self.path = Path(path)
        self.ids = np.asarray(list(ids), dtype=object)
        self.tables: list[pd.DataFrame] = []
        self._parts: list[tuple[int, np.ndarray, np.ndarray]] = []  # the current epoch's steps
        self._written = 0  # tables already in the file (0: the file is written whole next time)

    def resume(self, before: int) -> None:
        """Take the file's rows of the epochs before ``before`` (a resumed run); the next write rewrites it
        without the later ones."""
        if self.path.exists():
            s = pd.read_csv(self.path, dtype={"sample": str})
            self.tables = [s[s["epoch"] < before].reset_index(drop=True)]
        self._written = 0

    def add(self, epoch: int, index: np.ndarray, losses: np.ndarray) -> None:
        self._parts.append((epoch, np.asarray(index, dtype=np.int64), losses))

    def _close(self) -> None:
        if self._parts:
            epochs = np.concatenate([np.full(len(i), e, np.int64) for e, i, _ in self._parts])
            index = np.concatenate([i for _, i, _ in self._parts])
            loss = np.concatenate([v for _, _, v in self._parts])
            self.tables.append(pd.DataFrame({"epoch": epochs, "sample": self.ids[index], "loss": loss}))
            self._parts = []

    def frame(self, before: int | None = None) -> pd.DataFrame:
        """All rows so far (of the epochs before ``before``)."""
        self._close()
        df = pd.concat(self.tables, ignore_index=True) if self.tables else pd.DataFrame(columns=self.COLUMNS)
        return df if before is None else df[df["epoch"] < before]

    def write(self) -> None:
        self._close()
        if self._written and self.path.exists():
            with atomic_path(self.path) as tmp:
                shutil.copyfile(self.path, tmp)
                with open(tmp, "a", newline="", encoding="utf-8", errors=TEXT_ERRORS) as fh:  # as pandas wrote it
                    for t in self.tables[self._written:]:
                        t.to_csv(fh, header=False, index=False)
        else:
            write_csv(self.frame(), self.path, columns=self.COLUMNS)
        self._written = len(self.tables)


class _TrainItems(Dataset):
    """The training samples of ``ds`` without their instance labels (``labels``: only validation reads them; an
    int32 image a sample would otherwise cross from the loader processes for nothing), by ``(index, epoch)`` keys
    from an :class:`_EpochOrder` sampler: the epoch reaches loader processes that outlive an epoch
    (``persistent_workers``), whose copy of ``ds`` would otherwise keep the epoch they started in (and so the same
    augmentation draws every epoch)."""

    def __init__(self, ds: Dataset):
        self.ds = ds
        self._epoch: int | None = None

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        k, epoch = key
        if epoch != self._epoch and hasattr(self.ds, "set_epoch"):  # once per epoch in each process
            self.ds.set_epoch(epoch)
            self._epoch = epoch
        item = self.ds[k]
        item.pop("labels", None)
        return item


class _EpochOrder(torch.utils.data.Sampler):
    """The engine's seeded order of the training samples for the current epoch, as ``(index, epoch)`` keys of
    :class:`_TrainItems`: one DataLoader (and its loader processes) serves every epoch."""

    def __init__(self, order: Sequence[int] = (), epoch: int = 0) -> None:
        self.order, self.epoch = list(order), int(epoch)

    def __iter__(self):
        return iter([(int(i), self.epoch) for i in self.order])

    def __len__(self) -> int:
        return len(self.order)


def training_loader(ds: Dataset, sampler: _EpochOrder, batch_size: int, workers: int, *, persistent: bool = False,
                    pin_memory: bool = False, seed: int = 0) -> DataLoader:
    """The engine's training DataLoader of a map-style dataset: samples without their labels in ``sampler``'s
    order, images of several sizes padded to the batch's largest. It draws its processes' seeds from a generator
    of its own (``seed``), so the global RNG saved in checkpoints is the same with or without loader processes,
    persistent or not (``scripts/gpu_train.py``'s probe and ``benchmarks/bench_loader.py`` measure this loader)."""
    return DataLoader(_TrainItems(ds), batch_size=batch_size, sampler=sampler, num_workers=workers,
                      persistent_workers=persistent, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(seed), collate_fn=pad_collate)


def _state_like_params(opt: torch.optim.Optimizer) -> None:
    """The optimizer's per-parameter tensors (Adam's moments...) in the memory layout of their parameters (a
    channels-last network resumed from a checkpoint, which stores them contiguous: the fused/foreach update
    paths want matching layouts)."""
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            for k, v in state.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.ndim == 4:
                    state[k] = v.contiguous(memory_format=torch.channels_last) if p.is_contiguous(
                        memory_format=torch.channels_last) else v.contiguous()


def _on(device: torch.device, *tensors):
    """``tensors`` moved to ``device`` (None stays None)."""
    return tuple(None if t is None else t.to(device, non_blocking=True) for t in tensors)


# ----------------------------------------------------------------------------- pruning
def select_pruned(losses: pd.DataFrame, percent: float) -> pd.DataFrame:
    """The ``percent`` % highest-loss samples.

    Parameters
    ----------
    losses : DataFrame
        Columns ``sample`` and ``loss`` (one row per sample per epoch; averaged per sample).
    percent : float
        0..100. Exactly ``floor(n * percent / 100)`` samples are selected (n = samples).

    Returns
    -------
    DataFrame
        ``rank, sample, mean_loss`` of the selected samples, highest loss first.
    """
    if not 0 <= percent <= 100:
        raise DevolensError(f"--prune-top must be within 0..100 (percent), got {percent}")
    mean = losses.groupby("sample", sort=True)["loss"].mean()
    n_drop = int(math.floor(len(mean) * float(percent) / 100.0 + 1e-9))
    top = mean.sort_values(ascending=False, kind="stable").head(n_drop)
    return pd.DataFrame({"rank": np.arange(1, len(top) + 1), "sample": top.index.astype(str), "mean_loss": top.values})


# ----------------------------------------------------------------------------- training
def _pruned_worse(history: list[dict], monitor: str, mode: str, after: int, best_value, best_epoch) -> str | None:
    """The note of a run restarted after pruning whose best epoch after it scored worse than the best before it
    (None where not: the run keeps the best of the epochs after pruning, best.safetensors)."""
    before = [(float(r[monitor]), int(r["epoch"])) for r in history
              if int(r["epoch"]) < after and isinstance(r.get(monitor), (int, float)) and np.isfinite(r[monitor])]
    if not before or best_value is None:
        return None
    value, epoch = (min if mode == "min" else max)(before, key=lambda t: t[0])
    if value == best_value or (value > best_value) == (mode == "min"):
        return None
    return (f"the best {monitor} before pruning, {value:.4f} at epoch {epoch + 1}, was better than the best after "
            f"it, {best_value:.4f} at epoch {best_epoch + 1}, which the run keeps (best.safetensors): train without "
            "--prune-top, or with train.prune_restart: false, to keep training the unpruned model")


def _history_row(epoch: int, lr: float, train_loss: float, metrics: dict, n_train: int, secs: float, names,
                 val_secs: float, wait_secs: float) -> dict:
    row = {"epoch": epoch, "lr": lr, "train_loss": train_loss, **metrics, "n_train": n_train, "seconds": secs,
           "validation_seconds": val_secs, "loader_seconds": wait_secs}
    return {k: row.get(k, float("nan")) for k in names}


def _note_other_recipe(given_src, given: dict, own: dict, out: Path, epochs: int | None,
                       info: Callable[[str], None] | None) -> None:
    """Say (``info``) where the recipe given to resume differs from the run's own, which is used."""
    if info is None:
        return
    diff = differences(given, own, ignore=RESUME_FREE_KEYS)
    more = ""
    if epochs is None and given["train"]["epochs"] > own["train"]["epochs"]:
        more = f"; to train up to its train.epochs, give --epochs {given['train']['epochs']}"
    if diff or more:
        what = "the recipe given" if isinstance(given_src, dict) else str(given_src)
        keys = listed(diff)
        info(f"note: --resume continues with the run's own recipe ({out / 'recipe.yaml'})"
             + (f"; {what} differs in {keys} and is not used (train a new run to use it)" if diff else "") + more)


def _checkpoint_halves(ckpt: Path) -> tuple[str, str] | None:
    """For a checkpoint of which only one file is there (what a stop as an older version saved it left, or a
    removed file): the names of the file there and of the one missing; None for both or neither."""
    jpath = ckpt.with_suffix(".json")
    there = [p.name for p in (ckpt, jpath) if os.path.lexists(p)]
    if len(there) != 1:
        return None
    return there[0], (jpath if there[0] == ckpt.name else ckpt).name


def _half_refusal(out: Path, half: tuple[str, str]) -> str:
    """Why a new run into ``out``, whose checkpoint is the one file ``half[0]`` without its ``half[1]``
    (:func:`_checkpoint_halves`), is refused, naming the earlier run's other files there and what to do: a new run
    would leave them (best weights, history, samples, evaluations) beside its own files and record, and
    removing a user's files is not training's to do."""
    others = sorted(e.name for e in os.scandir(out) if e.name != half[0] and not e.name.startswith(".")
                    and (e.name in RUN_FILES or e.name.startswith("eval_")))
    shown = ", ".join(others[:6]) + (f" and {len(others) - 6} more" if len(others) > 6 else "")
    return (f"--out holds an earlier run whose {half[0]} has no {half[1]} beside it (the run was stopped as it saved "
            "a checkpoint, or the file was removed)" + (f", with its {shown}" if others else "")
            + "; a new run there would mix its files with that run's: give another --out, or remove this folder "
            f"first to train anew there (or put its {half[1]} back and continue the run with --resume)")


def _whole_checkpoint(ckpt: Path) -> bool:
    """Whether both files of the checkpoint ``ckpt`` are there (a run that ``--resume`` can try)."""
    return ckpt.exists() and ckpt.with_suffix(".json").exists()


def _epochs_done(ckpt: Path) -> int:
    """Epochs a run's checkpoint has trained (from its JSON, without loading the tensors)."""
    try:
        return int(json.loads(ckpt.with_suffix(".json").read_text(encoding="utf-8"))["extra"]["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        raise DevolensError("checkpoint.json is missing or unreadable; the run cannot be resumed: train it anew "
                            "in another --out (or remove checkpoint.safetensors and checkpoint.json first to train "
                            "it anew here)", path=ckpt.with_suffix(".json")) from None


def _recorded_weights(ckpt: Path, recipe: dict) -> list[float] | None:
    """The automatic class weights (``loss.class_weights``: a method) a run's checkpoint records
    (``extra["class_weights"]``, as its first start counted them), one per class of the (resolved) ``recipe``; None
    where the recipe asks for none or gives numbers, or the checkpoint records none (one without the entry)."""
    if not isinstance(recipe["loss"]["class_weights"], str) or recipe["task"] != "segmentation":
        return None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        cw = json.loads(ckpt.with_suffix(".json").read_text(encoding="utf-8"))["extra"]["class_weights"]
        if (isinstance(cw, list) and len(cw) == max(2, n_classes(recipe))
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in cw)):
            return [float(v) for v in cw]
    return None


#: how the note of a pruning that dropped no sample begins (:func:`_nothing_pruned`; a resumed run carries it over)
NOTHING_PRUNED = "nothing was pruned: "


def _nothing_pruned(percent: float, n: int) -> str:
    """The note of a pruning epoch whose ``percent`` (``train.prune_top``) of the ``n`` training samples drops none:
    the percent that drops one, or that one sample cannot be pruned. It names ``--prune-top`` and
    ``train.prune_top`` both (``devolens tune`` has no ``--prune-top``: its recipe or ``tune.space`` sets it)."""
    if n <= 1:
        return (f"{NOTHING_PRUNED}the run has one training sample, which cannot be pruned (one must stay); training "
                "goes on")
    return (f"{NOTHING_PRUNED}{percent:g} % of the {n} training samples is less than one sample; training goes on "
            f"(give --prune-top / train.prune_top {math.ceil(1000 / n) / 10:g} or more to drop one)")


#: pruning that keeps fewer training samples than this (or under half of them) is noted (:func:`_few_kept`)
FEW_KEPT = 5


def _few_kept(percent: float, n: int) -> str | None:
    """The note of a pruning (``percent``, ``train.prune_top``, of the ``n`` training samples, as
    :func:`select_pruned` counts them) that keeps under :data:`FEW_KEPT` samples or under half of them; None
    otherwise, and where it drops none (:func:`_nothing_pruned` says that)."""
    drop = int(math.floor(n * float(percent) / 100.0 + 1e-9))
    kept = n - drop
    if drop < 1 or (kept >= FEW_KEPT and 2 * kept >= n):
        return None
    return (f"pruning {percent:g} % keeps {kept} of {n} training samples: the epochs after train.prune_after learn "
            f"from {'that one' if kept == 1 else 'those'} alone; give a lower --prune-top / train.prune_top (or more "
            "data) to keep more")


def _early_stop_count(value, ref: float | None, wait: int, mode: str, min_delta: float) -> tuple[int, float | None]:
    """``train.early_stop``'s count after an epoch whose monitored metric is ``value``: (epochs in a row without
    improvement, the value they are measured against). An improvement is a finite value better than ``ref`` by more
    than ``min_delta`` in ``mode``'s direction (the first finite value is one), as Keras' EarlyStopping counts: it
    becomes the new ``ref``; a smaller gain (which may still make a new best epoch) and a value not finite are not."""
    if value is not None and np.isfinite(value) and (
            ref is None or (value < ref - min_delta if mode == "min" else value > ref + min_delta)):
        return 0, float(value)
    return wait + 1, ref


def _early_stop_reason(monitor: str, early: dict, ref: float | None) -> str:
    """Why ``train.early_stop`` stopped a run (run.json's ``stopped_early.reason``): ``ref``, the value the count
    measures against (that of the last epoch that improved by more than ``min_delta``, which a smaller gain since
    may have beaten as the best epoch)."""
    p = int(early["patience"])
    against = f"{ref:.4g}, its value at the last epoch that improved so" if ref is not None else "its best"
    return (f"{monitor} did not improve by more than {early['min_delta']:g} on {against}, for {p} epoch"
            f"{'s' if p != 1 else ''} in a row (train.early_stop)")


def _stopped_early(ckpt: Path) -> dict | None:
    """The record of the stop of a run that ``train.early_stop`` stopped, as its checkpoint keeps it (None: not
    stopped early, or no readable checkpoint)."""
    stopped = own_record(ckpt.with_suffix(".json"))
    for key in ("extra", "early_stop", "stopped"):
        stopped = stopped.get(key) if isinstance(stopped, dict) else None
    return stopped if isinstance(stopped, dict) else None


def _run_tables(out: Path, upto: int) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """A run's history of its epochs before ``upto`` and its pruned samples (None where the file is missing)."""
    history = pruned = None
    if (out / "history.csv").exists():
        h = pd.read_csv(out / "history.csv")
        history = h[h["epoch"] < upto]
    if (out / "pruned.csv").exists():
        pruned = pd.read_csv(out / "pruned.csv", dtype={"sample": str})
    return history, pruned


def _finished_run(out: Path, rec: dict, names: list[str], done: int, device: torch.device) -> TrainResult:
    """A run that has trained its epochs, as :func:`train` would have returned it (``complete`` set)."""
    history, pruned = _run_tables(out, done)
    history = pd.DataFrame(columns=names) if history is None else history.reset_index(drop=True)
    summary: dict = {}
    with contextlib.suppress(OSError, ValueError):
        summary = json.loads((out / "run.json").read_text(encoding="utf-8"))
    start = summary.get("start") or {}
    stopped = summary.get("stopped_early")
    return TrainResult(out, history, rec["train"]["monitor"], summary.get("best_epoch"), summary.get("best_value"),
                       pruned, list(summary.get("notes", [])), str(summary.get("device", device)), complete=True,
                       start_value=start.get("value"), start_note=start.get("not_beaten"), start_tie=start.get("tied"),
                       stopped_early=stopped if isinstance(stopped, dict) else _stopped_early(out / CHECKPOINT))


def _epoch_numbering(best_epoch: int | None) -> str:
    """run.json's ``epoch_numbering``: how its epochs are counted, said of ``best_epoch``."""
    return ("best_epoch, history.csv and best.json count epochs from 0; devolens' messages and history.png count "
            "from 1 (" + ("epoch 0 is the 1st epoch)" if best_epoch is None else
                          f"best_epoch {best_epoch} is the {_ordinal(best_epoch + 1)} epoch)"))


def _summary_caught_up(out: Path, ckpt: Path) -> None:
    """Bring ``run.json`` up to the checkpoint a resumed run starts from. A run killed outright (SIGKILL, a power
    loss) after saving a checkpoint and before writing run.json left run.json an epoch behind (``epochs_done``,
    ``best_epoch``, ``best_value``, ``n_active``), which the resumed session's record (its ``from_epoch``) and a
    complete run's result (the best epoch it reports) would read; the checkpoint records what the run had done (a
    kill between the best model's save and the checkpoint's leaves best.json an epoch ahead of both: that epoch is
    trained again). Only those fields (and ``epoch_numbering``) are rewritten, silently; notes are not (a note of the
    lost epoch is lost with it); nothing is done where they agree or either file cannot be read (their readers say
    why)."""
    try:
        extra = json.loads(ckpt.with_suffix(".json").read_text(encoding="utf-8"))["extra"]
        summary = json.loads((out / "run.json").read_text(encoding="utf-8"))
        done = {"epochs_done": int(extra["epoch"]), "best_epoch": extra.get("best_epoch"),
                "best_value": extra.get("best_value")}
    except (OSError, ValueError, KeyError, TypeError):
        return
    if isinstance(extra.get("active"), list):
        done["n_active"] = len(extra["active"])
    if not isinstance(summary, dict) or all(summary.get(k) == v for k, v in done.items()):
        return
    summary.update(done, epoch_numbering=_epoch_numbering(done["best_epoch"]))
    with contextlib.suppress(DevolensError):  # (a folder that takes no file: the run's own writes say so)
        write_text(out / "run.json", json.dumps(summary, indent=2, default=float, ensure_ascii=False))


def _best_mended(out: Path, model: torch.nn.Module, best_value: float | None, best_epoch: int | None, start: int,
                 info: Callable[[str], None] | None) -> tuple[float | None, int | None]:
    """Mend, as a resumed run starts training, a best model (best.safetensors + best.json) that is not one whole
    save: its two files of two saves (a run killed outright between their renames: the new epoch's weights beside
    the earlier best epoch's JSON, with the checkpoint an epoch behind), one of them alone, or neither where the
    checkpoint records a best epoch. Left as it was, the resumed epoch might not beat the checkpoint's best value
    and the run would finish with a best model that its readers refuse (or none).

    A whole pair saved in an epoch the checkpoint does not hold (a kill after the pair's save, before the checkpoint's:
    that epoch is trained again, and the run's records would name another best epoch than its model's) is replaced so
    too.

    Where best.json is the record of the checkpoint's own weights (its unit id theirs: the best epoch was the last
    one checkpointed), best.safetensors is written again from them (``model``, the checkpoint loaded), and the best
    stays. Else the files there are removed and the best value and epoch are forgotten: the resumed run saves a new
    best model at its first validation (its best is chosen from the epochs it trains). Says which (``info``, one
    line). A whole pair, or one of an older version (no unit ids), is left as it is. Returns the best value and
    epoch to go on from."""
    from devolens.io.together import UNIT_KEY, tensors_unit, unit_id

    weights, record = out / BEST, out / "best.json"
    there = [p.name for p in (weights, record) if os.path.lexists(p)]
    cfg = None
    with contextlib.suppress(OSError, ValueError):
        cfg = json.loads(record.read_text(encoding="utf-8"))
    own = cfg.get(UNIT_KEY) if isinstance(cfg, dict) else None
    saved = cfg.get("epoch") if isinstance(cfg, dict) else None
    if len(there) == 2:
        other = tensors_unit(weights)
        if isinstance(own, str) and other is not None and own != other:
            why = "best.safetensors and best.json were from different saves (the run was killed while saving them)"
        elif isinstance(saved, int) and not isinstance(saved, bool) and saved >= start:
            # one whole save, but of an epoch the checkpoint does not hold (killed after saving it, before the
            # checkpoint): the run's records would name another best epoch than the model's, and the epoch is trained
            # again
            why = (f"best.safetensors and best.json were saved in epoch {saved + 1}, which the checkpoint (epoch "
                   f"{start}) does not hold (the run was killed before its checkpoint)")
        else:
            return best_value, best_epoch  # one save (or files without ids, or unreadable: their readers say why)
    elif there:
        why = f"the run's {there[0]} had no {'best.json' if there == [BEST] else BEST} beside it"
    elif best_epoch is None:
        return best_value, best_epoch  # no best model yet
    else:
        why = "the run's best model (best.safetensors and best.json) is missing"
    if (isinstance(own, str) and best_epoch is not None and best_epoch == start - 1 and cfg.get("epoch") == best_epoch
            and own == unit_id({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})):
        save_model(model, weights, config=cfg)  # (the pair as the run saved it: the same tensors, the same record)
        if info is not None:
            info(f"note: {why}; best.safetensors was written again from the checkpoint, whose weights are the best "
                 f"epoch's (epoch {best_epoch + 1})")
        return best_value, best_epoch
    for path in (record, weights):  # the record first: a stop between the two leaves the weights alone, mended so
        with contextlib.suppress(OSError):  # (a folder that takes no change: the run's own writes say so)
            path.unlink()
    if info is not None:
        gone = "" if not there else " it was removed, and" if len(there) == 1 else " they were removed, and"
        info(f"note: {why};{gone} the run saves a new best model at its next validation (after epoch {start + 1}), "
             "the best of the epochs it trains from now on")
    return None, None


def _session_record(command: str | None, previous: Path | None) -> dict:
    """What run.json says of the software and settings that trained the run (``threads``: PyTorch's CPU threads at
    the start of training, which change the results; ``command``: the ``devolens train`` command line, None for a
    library call). The top-level fields are those of the latest session; ``sessions`` lists every session, the first
    start and each ``--resume`` (``from_epoch``: the epochs done when it began), read back from ``previous``."""
    from devolens.cli import _version

    this = {"from_epoch": 0, "command": command, "threads": int(torch.get_num_threads()), "devolens": _version(),
            "torch": torch.__version__}
    sessions: list = []
    if previous is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            summary = json.loads(previous.read_text(encoding="utf-8"))
            this["from_epoch"] = int(summary.get("epochs_done") or 0)
            sessions = [s for s in summary.get("sessions") or [] if isinstance(s, dict)]
            if isinstance(summary.get("init"), dict):  # the weights the run started from, as its first start read them
                this["init"] = summary["init"]
    init = this.pop("init", None)
    return {**{k: v for k, v in this.items() if k != "from_epoch"}, "sessions": [*sessions, this],
            **({"init": init} if init is not None else {})}


def _init_record(init) -> dict | None:
    """run.json's ``init``: the starting weights (``model.init``) as given and the sha256 of their weights file."""
    if not init:
        return None
    from devolens.models import zoo

    return {"source": str(init), "file": str(weights_file(init).resolve()),
            "sha256": zoo.weights_sha256(weights_file(init))}


def _start_line(init, monitor: str, value: float) -> str:
    """The note on a fine-tuning run's starting weights' score (run.json ``start``)."""
    return (f"starting weights ({init}): {monitor} {value:.4f} on the validation set before the first epoch "
            "(run.json 'start'); an epoch must beat it")


#: how much worse than the starting weights the best epoch must be for :func:`_start_verdict` to speak
#: (a tie, F1 0.0 before and after, is not a loss)
START_TOLERANCE = 1e-6


def _start_verdict(init: str, monitor: str, mode: str, start_value: float | None, best_value: float | None,
                   best_epoch: int | None) -> str | None:
    """The line for a fine-tuning run whose best epoch is worse than its starting weights (by more than
    :data:`START_TOLERANCE`; None when one beat or tied them, or when the start could not be scored)."""
    if start_value is None or not np.isfinite(start_value):
        return None
    if best_value is not None and not (best_value > start_value + START_TOLERANCE if mode == "min"
                                       else best_value < start_value - START_TOLERANCE):
        return None
    best = ("no epoch scored" if best_value is None else
            f"best epoch {best_epoch + 1}: {monitor} {best_value:.4f}")
    text = str(init)
    keep = f"keep the zoo model {text[4:]!r}" if text.startswith("zoo:") else f"keep the starting weights ({text})"
    return (f"no epoch beat the starting weights ({init}: {monitor} {start_value:.4f} before the first epoch; "
            f"{best}): {keep}, or fine-tune again with a lower optimizer.lr or more epochs")


def tie_line(init: str | None, monitor: str, start_value: float) -> str:
    """The line recording a fine-tuning whose best epoch only tied its starting weights (:func:`tied_start`):
    run.json's ``start["tied"]`` and notes, :attr:`TrainResult.start_tie`, an exported card's ``trained["tied"]``;
    ``init`` (the starting weights) named where given."""
    named = f"{init}: " if init else ""
    return (f"the best epoch only tied the starting weights ({named}{monitor} {start_value:.4f} before the first "
            "epoch and at its best): no epoch scored better on this validation set, so the run's weights are no "
            "better there than those it started from")


def tied_start(start_value, best_value) -> bool:
    """Whether a fine-tuning's best score equals its starting weights' (within :data:`START_TOLERANCE`): not a loss,
    so no :func:`_start_verdict` line, but not the gain fine-tuning asked for. A start that scored nothing (F1 0
    before and after) is no such tie; nor is a missing score."""
    return (start_value is not None and best_value is not None and bool(start_value)
            and abs(float(best_value) - float(start_value)) <= START_TOLERANCE)


def _run_split(out: Path) -> pd.DataFrame | None:
    """The run's ``split.csv`` (``sample``, ``side``), or None where it is missing or unreadable."""
    try:
        df = pd.read_csv(out / "split.csv", dtype=str, keep_default_na=False)
    except (OSError, ValueError):
        return None
    return df if {"sample", "side"} <= set(df.columns) else None


def _check_same_data(out: Path, bundle: DataBundle, data: Path) -> None:
    """Refuse to resume a run on other data than it was trained on.

    The same data are the same samples (names relative to the data folder, the same train/validation
    sides as in ``split.csv``: else the checkpoint's sample indices and the best epoch would refer to
    other samples) with the same file contents (the fingerprint in ``run.json``; runs made before it was
    recorded are checked by ``split.csv`` alone). Where the folder is does not matter: a moved or copied
    data folder resumes.
    """
    hint = "resume with the data the run was trained on, or train a new run (another --out)"
    split_csv = out / "split.csv"
    if split_csv.exists():
        old = pd.read_csv(split_csv, dtype=str, keep_default_na=False)
        new = bundle.split.astype({"sample": str, "side": str})
        if set(zip(old["sample"], old["side"])) != set(zip(new["sample"], new["side"])):
            if set(old["sample"]) == set(new["sample"]):  # the same samples, split otherwise (not by build_data)
                raise DevolensError(f"--resume: {data} holds the run's samples, but they split otherwise than in "
                                    f"its split.csv; {hint}", path=out)
            common = len(set(old["sample"]) & set(new["sample"]))
            raise DevolensError(f"--resume: {data} holds other samples than the run was trained on ({len(new)} "
                                f"here, {len(old)} in its split.csv, {common} in common); {hint}", path=out)
    recorded: dict = {}
    with contextlib.suppress(OSError, ValueError, AttributeError):
        recorded = json.loads((out / "run.json").read_text(encoding="utf-8")).get("data") or {}
    if recorded.get("fingerprint") and bundle.fingerprint and recorded["fingerprint"] != bundle.fingerprint:
        was = f" (it was trained on {recorded['path']})" if recorded.get("path") else ""
        raise DevolensError(f"--resume: the files in {data} differ from those the run was trained on{was}, although "
                            f"the sample names are the same; {hint}", path=out)


def train(
    recipe: str | Path | dict,
    data: str | Path | DataBundle,
    out: str | Path,
    *,
    resume: bool = False,
    epochs: int | None = None,
    prune_top: float | None = None,
    device: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    info: Callable[[str], None] | None = None,
    epoch_callback: Callable[[int, dict], None] | None = None,
    step_callback: Callable[[int, int, float], None] | None = None,
    epoch_log: Callable[[str], None] | None = None,
    threads: int | None = None,
    command: str | None = None,
    finish: Callable[[TrainResult], None] | None = None,
) -> TrainResult:
    """Train a model from a recipe on a data folder; write the run folder ``out``.

    Parameters
    ----------
    recipe : path or dict
        Recipe (see :mod:`devolens.train.recipe`).
    data : path or DataBundle
        Render output or image/mask folders (see :func:`devolens.data.datasets.index_dataset`),
        an HDF5 tile store (``.h5``: ``images`` (N, C, H, W), ``labels`` (N, H, W), optional
        ``source`` for the split), or ready datasets (e.g. live renders) in a DataBundle.
    out : path
        Run folder: new, empty, or (with ``resume``) a run. Refused: the data folder itself or
        a folder holding it, and a folder of other things (:func:`check_run_folder`). When this
        call made the folder and fails before its first checkpoint (bad data found while
        loading, Ctrl-C in the first epoch), the folder is removed again (in a folder that was
        there, the files this call wrote); once a checkpoint exists nothing is removed. The folder is
        locked for the whole call (``.NAME.lock`` beside it, as ``devolens segment`` locks its output): a
        second call writing or resuming it meanwhile is refused at once, a :class:`DevolensError`.
    resume : bool
        Continue from ``out/checkpoint.safetensors`` (model, optimizer, scheduler, RNG
        states, pruning state); the run's saved recipe is used, with ``epochs`` overriding.
        ``recipe`` is still read (a wrong path is an error), but only compared: a resumed run
        keeps its own recipe whole, since its weights, optimizer and scheduler states were made
        by it and the history compares epochs of one recipe; a note names the keys where
        ``recipe`` differs (to use them, train a new run). The data must be those the run was
        trained on (same samples, same files, wherever the folder now is; checked against the
        fingerprint in ``run.json`` and ``split.csv``), else a :class:`DevolensError`; a run
        without its ``run.json`` is refused (its data cannot be checked). A run that
        has trained its epochs already is returned as it is, with ``complete`` set (its data are
        checked all the same: other data are refused).
    epochs : int, optional
        Override ``train.epochs`` (total epochs, counted from the start of the run).
    prune_top : float, optional
        Override ``train.prune_top`` (percent of highest-loss samples dropped after
        ``train.prune_after`` warm-up epochs). Nothing is pruned in a run of no more epochs than
        the warm-up, nor in a resumed run past its warm-up that was not pruned then (a note says so).
    device : {"auto", "cpu", "cuda", "cuda:N"}, optional
        Override ``train.device`` (``auto``: the first CUDA GPU when PyTorch sees one, else
        the CPU; ``cuda:N`` becomes the process's current CUDA device). Runs resumed on another
        device continue there. ``train.amp`` runs as :func:`effective_amp` says for it (bf16 on a
        GPU without native bfloat16 runs fp16, on a CPU without it fp32, with a note; run.json's ``amp``
        records what ran).
    progress : callable, optional
        ``progress(done_steps, total_steps)`` after each training batch.
    info : callable, optional
        ``info(line)`` before the first epoch: the split's sizes and the device, then each note
        on the data (also in the result's ``notes`` and ``run.json``).
    epoch_callback : callable, optional
        ``epoch_callback(epoch, history_row)`` after each epoch (tuning reports here; it may
        raise to stop the run).
    step_callback : callable, optional
        ``step_callback(epoch, step, loss)`` after each training batch.
    epoch_log : callable, optional
        ``epoch_log(line)`` after each epoch: ``epoch k/N`` (counted from 1), the training and validation
        losses, the monitored metric and the best value so far (for logs where no progress bar shows).
    threads : int, optional
        Override ``train.threads`` (PyTorch's CPU threads; recorded in recipe.yaml and best.json as given; run.json
        records the count in use at the start of each session, given or not).
    command : str, optional
        The command line that runs this (``devolens train ...``), recorded in run.json (None: a library call).
    finish : callable, optional
        ``finish(result)`` once the run has trained (or was found complete), while the run folder is still locked:
        what is made from the run (``devolens train`` writes its plots and ``--export`` file there), so that no
        second run changes the folder meanwhile. What it raises is raised; the run stays as it is.

    Returns
    -------
    TrainResult
    """
    out = Path(out)
    where = Path(os.path.abspath(out))  # '..' resolved by name: the folders made are the ones named
    made = missing_folders(where)  # what this call creates
    unfinished, lock = False, None
    try:
        lock = _lock_run(where, out)  # before anything is read from the folder: a second run is refused at once
        before = {e.name for e in os.scandir(where)} if where.is_dir() else set()
        try:
            res = _train(recipe, data, out, resume=resume, epochs=epochs, prune_top=prune_top, device=device,
                         progress=progress, info=info, epoch_callback=epoch_callback, step_callback=step_callback,
                         epoch_log=epoch_log, threads=threads, command=command)
            if finish is not None:
                finish(res)
            return res
        except BaseException:  # Ctrl-C included
            unfinished = not _whole_checkpoint(where / CHECKPOINT)
            if unfinished:
                _remove_unfinished(where, made, before)  # while the lock holds: no other run's files go
            raise
    finally:
        if lock is not None:
            lock.release()
        if unfinished or not where.exists():
            # the folders made above the run folder (the lock file's among them), once the lock file has gone
            remove_made([p for p in made if p != where])


def _lock_run(out: Path, given: Path | None = None) -> FileLock | None:
    """Lock the run folder ``out`` for the whole of a :func:`train` call, or a study's ``out`` for the whole of a
    :func:`devolens.train.tuning.tune` call (:func:`devolens.io.atomic.output_lock`:
    ``.NAME.lock`` beside it, as ``devolens segment`` locks its ``--out``): a second run into the same folder, or a
    ``--resume`` of it, is refused at once ("another devolens run is writing here (pid N)") instead of mixing two
    runs' files. A killed run's lock goes with its process. None where no lock can be had (the run goes on
    unlocked; making the folder then reports a real problem). ``given``: ``out`` as the user named it (``out`` is
    absolute, '..' resolved by name), which the refusal names, as every other command names its output."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    try:
        return output_lock(out)
    except DevolensError as exc:
        if given is None or exc.path != out:
            raise
        raise type(exc)(exc.message, path=given) from None


def _remove_unfinished(out: Path, made: list[Path], before: set[str]) -> None:
    """Remove what a failed call wrote before the run's first checkpoint: ``out`` when the call made it
    (``made``: the folders it made, deepest first; those above ``out`` are the caller's to remove, after its lock
    has gone), else the run files it added to ``out`` (``before``: the entries that were there), so the next try
    starts clean (best effort)."""
    if out in made:
        shutil.rmtree(out, ignore_errors=True)
        return
    if not out.is_dir():
        return
    for entry in os.scandir(out):
        if entry.name in RUN_FILES and entry.name not in before:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _train(recipe, data, out: Path, *, resume, epochs, prune_top, device, progress, info, epoch_callback,
           step_callback, epoch_log=None, threads=None, command=None) -> TrainResult:
    """The body of :func:`train` (which removes what a failed call wrote)."""
    ckpt = out / CHECKPOINT
    data_path = None if isinstance(data, DataBundle) else Path(data)
    half = _checkpoint_halves(ckpt)
    if resume:
        if half is not None:
            raise DevolensError(f"--resume: the run's {half[0]} has no {half[1]} beside it (the run was stopped as it "
                                "saved a checkpoint, or the file was removed), so it cannot be resumed; train it "
                                "anew in another --out (or remove this folder first)", path=out)
        if not ckpt.exists():
            raise DevolensError("no checkpoint to resume from (checkpoint.safetensors)", path=out)
        if not os.path.lexists(out / "run.json"):  # (written before the first checkpoint since; an older version
            # stopped between the two left a checkpoint without it)
            raise DevolensError("--resume: the run has a checkpoint but no run.json (it was stopped as it saved its "
                                "first checkpoint), so the data it was trained on cannot be checked; train it anew "
                                "in another --out (or remove this folder first)", path=out)
        check_checkpoint(ckpt)  # its two files of one save (a run killed outright as it saved them: of two)
    elif half is not None:  # a checkpoint no run can resume, beside that run's best weights, history, samples...
        raise DevolensError(_half_refusal(out, half), path=out)
    elif ckpt.exists():
        raise DevolensError("this folder already holds a run; use --resume to continue it or choose another --out",
                            path=out)
    check_run_folder(out, data_path, resume=resume)
    if not resume and not isinstance(recipe, dict) and Path(recipe).resolve() == (out / "recipe.yaml").resolve():
        raise DevolensError("the recipe lies in --out, where the run writes its own recipe.yaml; keep it elsewhere "
                            "(or give --resume to continue the run there)", path=recipe)
    if not resume:  # a history.csv of the user's own (the recipe there is said above: the likelier mistake)
        check_run_files(out)
    rec = resolved(load_recipe(recipe))  # read even to resume: a RECIPE that is no recipe is reported
    if resume and (out / "recipe.yaml").exists():
        own = resolved(load_recipe(out / "recipe.yaml"))
        _note_other_recipe(recipe, rec, own, out, epochs, info)
        rec = own
    if epochs is not None:
        if epochs < 1:
            raise DevolensError(f"{_option('epochs')} must be >= 1, got {epochs}")
        rec["train"]["epochs"] = int(epochs)
    if prune_top is not None:
        if not 0 <= prune_top < 100:
            raise DevolensError(f"{_option('prune_top')} must be in [0, 100) percent, got {prune_top}")
        rec["train"]["prune_top"] = float(prune_top)
    option = "train.device"
    if device is not None:
        rec["train"]["device"], option = str(device), _option("device")
    T = rec["train"]
    names = metric_names(rec)
    monitor, mode = T["monitor"], T["monitor_mode"]
    if monitor not in names:
        raise DevolensError(f"train.monitor: {monitor!r} is not a metric of this task; choose from "
                            f"{', '.join(n for n in names if n != 'epoch' and n not in RUN_COLUMNS)}")
    if threads is not None:  # --threads: in recipe.yaml and best.json (a resumed run's recipe.yaml keeps its own)
        if int(threads) < 1:
            raise DevolensError(f"{_option('threads')} must be >= 1, got {threads}")
        T["threads"] = int(threads)
    if T["threads"]:
        torch.set_num_threads(int(T["threads"]))
    if resume:  # run.json as the checkpoint left it (a run killed outright between the two: an epoch behind)
        _summary_caught_up(out, ckpt)
    session = _session_record(command, out / "run.json" if resume else None)
    device = resolve_device(T["device"], option)
    use_device(device)  # cuda:N: before any model, tensor or loader touches CUDA
    amp, amp_note = effective_amp(T["amp"], device)  # what runs here (the recipe keeps what it asks for)
    if resume:
        done = _epochs_done(ckpt)
        if done >= int(T["epochs"]) or _stopped_early(ckpt) is not None:  # nothing to train: the run as it is (the
            # caller says how to go on); a run that train.early_stop stopped is complete whatever --epochs says
            if data_path is not None:  # yet not on other data than it was trained on: say so now
                _check_same_data(out, build_data(rec, data, _run_split(out)), data_path)
            return _finished_run(out, rec, names, done, device)
        if info is not None:  # how far it goes (the recipe's train.epochs unless --epochs says otherwise)
            info(f"resuming after epoch {done}, up to epoch {int(T['epochs'])}"
                 + (" (the run's train.epochs; --epochs N sets another end)" if epochs is None else ""))
    seed = int(rec["seed"])
    seed_everything(seed)

    # a resumed run keeps its split.csv's sides (the same samples may split otherwise now: train/ and val/ folders)
    bundle = data if isinstance(data, DataBundle) else build_data(rec, data, _run_split(out) if resume else None)
    if resume and data_path is not None:
        _check_same_data(out, bundle, data_path)
    train_ds, val_ds = bundle.train, bundle.val
    if isinstance(train_ds, IterableDataset) and T["prune_top"] > 0:
        raise DevolensError("train.prune_top: pruning needs per-sample access; not available for HDF5 tile streams")
    # a resumed run keeps the automatic class weights its checkpoint records (as its first start counted them, also
    # by a version that counted otherwise), given to the loss as numbers: not counted again
    recorded = _recorded_weights(ckpt, rec) if resume else None
    loss_fn, used_weights = _loss_fn(rec if recorded is None else {
        **rec, "loss": {**rec["loss"], "class_weights": recorded}}, train_ds)

    init = rec["model"].get("init")
    if init:
        init_path(init)  # checked before any output
        check_init_architecture(rec, init)  # a recipe asking for another network: the key that differs, not tensors
    if "init" not in session:
        session["init"] = _init_record(init)

    taken = [0]  # fp16: the optimizer steps the loss scaler let through since fresh() built the weights

    def fresh():
        torch.manual_seed(seed)
        model = build_from_recipe(rec)
        if init:  # fine-tuning: same architecture, weights from an earlier run or the zoo
            model = init_weights(model, init)
        model = model.to(device)  # before the optimizer takes its parameters
        if T["channels_last"]:
            model = model.to(memory_format=torch.channels_last)  # 4-D weights only; saved contiguous as ever
        opt = build_optimizer(rec["optimizer"]["name"], model.parameters(), rec["optimizer"]["lr"],
                              rec["optimizer"]["weight_decay"], rec["optimizer"]["momentum"])
        # fp16's loss scaling: the loss is multiplied before backward so that small gradients stay above fp16's
        # smallest numbers, and a step whose gradients overflow is skipped (the scale halves); disabled, it passes
        # the loss and the step through unchanged
        scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
        if scaler.is_enabled():  # (the optimizer calls its hooks only for a step it takes)
            taken[0] = 0
            opt.register_step_post_hook(lambda *_: taken.__setitem__(0, taken[0] + 1))
        return model, opt, _scheduler(rec, opt), scaler

    model, opt, sched, scaler = fresh()
    out.mkdir(parents=True, exist_ok=True)
    active = np.arange(len(train_ds))
    pruned_df: pd.DataFrame | None = None
    start, best_value, best_epoch = 0, None, None
    early = T["early_stop"]  # train.early_stop: None, or {patience, min_delta}
    waited_epochs, early_ref, stopped = 0, None, None  # epochs without improvement on early_ref; the stop's record
    history: list[dict] = []
    ids = list(getattr(train_ds, "ids", [str(i) for i in range(len(train_ds))]))
    sample_losses = _SampleLosses(out / "sample_losses.csv", ids)
    if resume:
        extra = load_checkpoint(ckpt, model, opt, sched, restore_rng=True, scaler=scaler)
        if T["channels_last"]:  # the optimizer's moments come back contiguous: in their parameters' layout again
            _state_like_params(opt)
        start = int(extra["epoch"])
        best_value, best_epoch = extra.get("best_value"), extra.get("best_epoch")
        if early is not None:  # the count goes on from the checkpoint's (one without it: from the best so far)
            state = extra.get("early_stop") if isinstance(extra.get("early_stop"), dict) else {}
            waited_epochs = int(state.get("wait") or 0)
            early_ref = state.get("value", best_value)
        active = np.asarray(extra.get("active", list(range(len(train_ds)))), dtype=np.int64)
        if active.size and (active.min() < 0 or active.max() >= len(train_ds)):  # data handed in as a DataBundle
            raise DevolensError(f"--resume: the checkpoint's training samples (up to #{int(active.max())}) do not "
                                f"fit these data ({len(train_ds)} training samples); resume with the run's data",
                                path=out)
        # a best model of two saves (or one file of it) is mended before training: else it could outlast the run
        best_value, best_epoch = _best_mended(out, model, best_value, best_epoch, start, info)
        h, pruned_df = _run_tables(out, start)
        if pruned_df is not None and start <= int(T["prune_after"]):
            # the checkpoint predates the pruning epoch (a stop during it): the pruned samples are not yet left out
            # of its training samples; that epoch prunes again, as the run uninterrupted did (a file an older version
            # wrote at the epoch's start, or one written just before a checkpoint that was not)
            pruned_df = None
            with contextlib.suppress(OSError):
                (out / "pruned.csv").unlink()
        if h is not None:
            history = h.to_dict("records")
        sample_losses.resume(start)
    else:
        dump_recipe(rec, out / "recipe.yaml")
        write_csv(bundle.split, out / "split.csv")
    notes = list(bundle.notes) + ignored_settings(rec)  # spare scheduler / optimizer keys: noted, not refused
    previous = None  # a resumed run's notes as its run.json recorded them (None: not resumed, or unreadable)
    if resume:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            previous = json.loads((out / "run.json").read_text(encoding="utf-8")).get("notes", [])
    weight_note = class_weight_note(rec, train_ds)
    if weight_note and recorded is not None and previous is not None:  # the checkpoint's weights: the note as the
        with contextlib.suppress(TypeError):  # run's first start said it
            if weight_note not in previous:
                weight_note = None
    if weight_note:
        notes.append(weight_note)
    if amp_note:  # the arithmetic of this session's device (said again by a resumed run that meets it)
        notes.append(amp_note)
    if previous is not None and pruned_df is not None and not len(pruned_df):  # pruned of nothing: the note its
        with contextlib.suppress(TypeError):  # pruning epoch said
            notes += [n for n in previous if isinstance(n, str) and n.startswith(NOTHING_PRUNED)]
    few = _few_kept(T["prune_top"], len(active)) if (
        pruned_df is None and T["prune_top"] > 0 and start <= int(T["prune_after"]) < int(T["epochs"])) else None
    if few:  # said before the first epoch: the epochs after pruning learn from these alone
        notes.append(few)
    if bundle.unmatched:
        n = len(bundle.unmatched)
        notes.append(f"{n} file{'s' if n != 1 else ''} without a partner, not used (e.g. {bundle.unmatched[0]}; "
                     f"listed in run.json){seg_npy_hint(bundle.unmatched_seg)}")
    if info is not None:  # before the first epoch: what is about to run, and what was noticed in the data
        info(f"{len(train_ds)} training and {len(val_ds)} validation samples; device {device}")
        want = float(rec["data"]["val_fraction"])
        try:
            got = len(val_ds) / max(1, len(train_ds) + len(val_ds))
        except TypeError:  # streamed datasets without a length
            got = want
        for note in notes:  # the split's own notes first (one group: blocks of time points), then its fraction
            info(f"note: {note}")
        # whole groups (embryos, time blocks) go to one side: said when the fraction is off by more than half of
        # itself (5 points at least); a tile store's split says its fraction in its own note
        if abs(got - want) > max(0.05, want / 2) and not bundle.by_folder and not bundle.split_noted:
            info(f"note: {100 * got:.0f} % of the samples validate, not the {100 * want:.0f} % of data.val_fraction: the "
                 "split keeps each group (embryo, or block of time points) on one side; with few groups, add data "
                 "of another embryo or change data.split_by")
        after = int(T["prune_after"])
        if T["prune_top"] > 0 and int(T["epochs"]) <= after:
            info(f"note: nothing will be pruned: pruning (--prune-top, train.prune_top) comes after the "
                 f"train.prune_after = {after} warm-up epochs, and the run trains {int(T['epochs'])}; give --epochs "
                 f"{after + 1} or more (or a lower train.prune_after)")
        elif T["prune_top"] > 0 and resume and pruned_df is None and start > after:
            info(f"note: nothing will be pruned: the run was not pruned after its train.prune_after = {after} warm-up "
                 f"epochs and has trained {start} already; train a new run (another --out) with --prune-top to prune")

    n_epochs = int(T["epochs"])
    bs = int(T["batch_size"])
    # ---- fine-tuning: the starting weights' score on the validation set, the bar every epoch has to clear
    start_info: dict | None = None
    if init and resume:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            start_info = json.loads((out / "run.json").read_text(encoding="utf-8")).get("start")
        if isinstance(start_info, dict):  # the run's notes on its starting weights, as its first start wrote them
            v = start_info.get("value")
            if isinstance(v, (int, float)) and np.isfinite(v):
                notes.append(_start_line(start_info.get("init", init), start_info.get("monitor", monitor), float(v)))
            for key in ("not_beaten", "tied"):  # (a line the run's end decides again)
                if start_info.get(key):
                    notes.append(str(start_info[key]))
        else:
            start_info = None
    elif init and (isinstance(val_ds, IterableDataset) or len(val_ds)):
        with torch.random.fork_rng(devices=[]):  # the training's random draws stay as without this score
            t_val = time.perf_counter()
            ev = evaluate_model(model, val_ds, rec, loss_fn, batch_size=bs, amp=amp)
        v = ev["metrics"].get(monitor)
        v = float(v) if isinstance(v, (int, float, np.floating)) and np.isfinite(v) else None
        start_info = {"init": str(init), "monitor": monitor, "value": v,
                      "metrics": {k: float(x) for k, x in ev["metrics"].items() if isinstance(x, (int, float, np.floating))},
                      "seconds": time.perf_counter() - t_val}
        if v is not None:
            line = _start_line(init, monitor, v)
            notes.append(line)
            if info is not None:
                info(f"note: {line}")
    start_value = (start_info or {}).get("value")

    def steps_in(n: int) -> int:
        s = math.ceil(n / bs)
        return min(s, T["max_batches"]) if T["max_batches"] else s

    total_steps = sum(steps_in(len(active)) for _ in range(n_epochs))
    done_steps = sum(steps_in(len(active)) for _ in range(start))
    keep = int(T["overlay_samples"])
    (out / "samples").mkdir(exist_ok=True)

    def write_summary(epochs_done: int) -> None:
        """run.json after ``epochs_done`` epochs (see the module's docstring)."""
        write_text(out / "run.json", json.dumps({
            "epochs_done": epochs_done, "monitor": monitor, "mode": mode, "best_epoch": best_epoch,
            "best_value": best_value, "n_train": int(len(train_ds)), "n_val": int(len(val_ds)),
            "epoch_numbering": _epoch_numbering(best_epoch),
            "n_active": int(len(active)), "class_weights": used_weights, "notes": notes, "unmatched": bundle.unmatched,
            **({"start": start_info} if start_info is not None else {}),
            **({"stopped_early": stopped} if stopped is not None else {}),
            "device": str(device), "amp": amp, **session,
            "data": {"path": None if data_path is None else str(data_path.resolve()), "samples": int(len(bundle.split)),
                     "fingerprint": bundle.fingerprint},
        }, indent=2, default=float))

    if not resume:  # before the first checkpoint: a run stopped just after it still has the data's fingerprint
        write_summary(start)

    multiple = int(getattr(train_ds, "pad_multiple", 1) or 1)  # a sample's own tensor: its size padded to this
    workers = int(T["num_workers"])
    preload_for_workers(train_ds, workers, steps_in(len(active)) * bs, len(active), info)
    persistent = workers > 0 and _persistent_ok(train_ds)
    sampler, map_loader = _EpochOrder(), None
    first_step = done_steps  # (this session's)
    ran = start  # the epochs trained so far
    try:
        for epoch in range(start, n_epochs):
            t0 = time.perf_counter()
            # ---- pruning after the warm-up
            pruned_now = False  # pruned.csv is written with this epoch's checkpoint, which records the pruning
            if T["prune_top"] > 0 and epoch == T["prune_after"] and pruned_df is None:
                pruned_df = select_pruned(sample_losses.frame(before=epoch), T["prune_top"])
                drop = set(pruned_df["sample"])
                n_before = len(active)
                active = np.array([i for i in active if ids[i] not in drop], dtype=np.int64)
                pruned_now = True  # (an empty pruned.csv too: the run was pruned, of nothing)
                total_steps = done_steps + (n_epochs - epoch) * steps_in(len(active))
                if not drop:  # the percent of too few samples: no restart (it would reset the rate, drop the best)
                    line = _nothing_pruned(T["prune_top"], n_before)
                    notes.append(line)
                    if info is not None:
                        info(f"note: {line}")
                elif T["prune_restart"]:  # trained afresh on the rest: the best model is one of these epochs
                    model, opt, sched, scaler = fresh()
                    best_value, best_epoch = None, None
                    waited_epochs, early_ref = 0, None  # (train.early_stop counts afresh with them)
                if drop and info is not None:  # said where it happens: the epochs after it may score worse
                    what = (f"pruned {len(drop)} of {n_before} training samples (pruned.csv) after epoch {epoch}; ")
                    info(what + ("the model starts again from its initial weights and learning rate, and the best so "
                                 "far is reset (train.prune_restart: false keeps training on instead)"
                                 if T["prune_restart"] else "training goes on with the same weights and learning rate "
                                 "(train.prune_restart: false)"))
            # ---- one training epoch in a seeded order
            epoch_seed = seed * 100_003 + epoch
            g = torch.Generator().manual_seed(epoch_seed)
            order = active[torch.randperm(len(active), generator=g).numpy()]
            if hasattr(train_ds, "epoch_order"):  # HDF5 tiles in chunks of several: a window of chunks at a time
                order = train_ds.epoch_order(order)
            if isinstance(train_ds, IterableDataset):  # HDF5 tile stream: it shuffles by chunk itself
                if hasattr(train_ds, "set_epoch"):
                    train_ds.set_epoch(epoch)
                loader = DataLoader(train_ds, batch_size=bs, num_workers=workers)
            else:
                sampler.order, sampler.epoch = order.tolist(), epoch
                if map_loader is None or not persistent:  # one loader for all epochs: its processes start once
                    map_loader = training_loader(train_ds, sampler, bs, workers, persistent=persistent,
                                                 pin_memory=device.type == "cuda", seed=epoch_seed)
                loader = map_loader
            model.train()
            lr_now = float(opt.param_groups[0]["lr"])
            seen: list[tuple[np.ndarray, np.ndarray]] = []  # each step's per-sample losses and counted pixels
            # on a GPU the per-sample losses stay there until the epoch ends and divergence is checked every
            # SYNC_EVERY steps: reading a value back each step would make the host wait for the device each step
            pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
            lazy = _lazy_sync(device)
            bad = torch.zeros((), dtype=torch.bool, device=device) if lazy else None
            waited = [0.0]
            for step, batch in enumerate(_batches(loader, waited)):
                if T["max_batches"] and step >= T["max_batches"]:
                    break
                x, target, distance = _on(device, batch["image"], batch["target"], batch.get("distance"))
                if T["channels_last"] and x.ndim == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                with _autocast(amp, device):
                    y = model(x)
                per = loss_fn(y.float(), target, distance)
                counts = counted(target)  # each sample's pixels that count: the loss's weights, train_loss's too
                loss = batch_loss(per, target, counts)  # over the batch's pixels that count (per: a sample's own mean)
                # the loss is checked unscaled: an fp16 step the scaler skips (its gradients overflowed at the
                # current scale) has a finite loss and is no divergence; a scale that collapses is
                if lazy:
                    bad |= ~torch.isfinite(loss)
                    if (step + 1) % SYNC_EVERY == 0 and bool(bad):
                        raise _diverged(epoch, amp=amp)
                elif not torch.isfinite(loss):
                    raise _diverged(epoch, loss.item(), amp)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)  # unscales the gradients first (no clipping here); skips the step where not finite
                scaler.update()
                pending.append((batch["index"], _own_losses(per, y, target, distance, batch.get("size"), multiple,
                                                            loss_fn), counts))
                if not lazy:
                    _note_losses(pending, sample_losses, epoch, seen)
                done_steps += 1
                if step_callback is not None:
                    step_callback(epoch, step, float(loss.item()))
                if progress is not None:
                    progress(done_steps, total_steps)
            if lazy and bool(bad):
                raise _diverged(epoch, amp=amp)
            if _scale_collapsed(scaler):  # fp16, at the epoch's end: a collapsed scale skips every step till then
                raise _gradients_diverged(epoch)
            if scaler.is_enabled() and epoch == n_epochs - 1 and not taken[0] and done_steps > first_step:
                # a run too short for the scale to collapse (17 skipped steps), whose every step was skipped: its
                # weights are as they started
                raise _gradients_diverged(epoch, "no training step changed the weights: their gradients were NaN or "
                                                 "infinite at every step")
            _note_losses(pending, sample_losses, epoch, seen)
            # ---- validation
            t_val = time.perf_counter()
            ev = evaluate_model(model, val_ds, rec, loss_fn, batch_size=bs, amp=amp, keep=keep)
            t_val = time.perf_counter() - t_val
            metrics = ev["metrics"]
            sched.step(metrics.get("val_loss"))
            row = _history_row(epoch, lr_now, _seen_loss(seen), metrics, len(active),
                               time.perf_counter() - t0, names, t_val, waited[0])
            history.append(row)
            write_csv(pd.DataFrame(history, columns=names), out / "history.csv")
            sample_losses.write()
            if "samples" in ev:
                with atomic_path(out / "samples" / f"epoch_{epoch:03d}.npz") as tmp:
                    np.savez_compressed(tmp, **ev["samples"])
            # ---- best and last checkpoints
            value = row.get(monitor)
            if value is not None and np.isfinite(value):
                better = best_value is None or (value < best_value if mode == "min" else value > best_value)
                if better:
                    best_value, best_epoch = float(value), epoch
                    save_model(model, out / BEST, config=model_config(
                        rec, epoch, monitor=monitor, value=float(value), metrics={k: v for k, v in row.items()}))
            if early is not None:  # train.early_stop: on the metric and direction that choose the best epoch
                waited_epochs, early_ref = _early_stop_count(value, early_ref, waited_epochs, mode,
                                                             early["min_delta"])
                pending = T["prune_top"] > 0 and pruned_df is None and epoch < int(T["prune_after"]) < n_epochs
                if waited_epochs >= early["patience"] and epoch + 1 < n_epochs and not pending:
                    stopped = {"epoch": epoch, "best_epoch": best_epoch, "epochs": n_epochs,
                               "reason": _early_stop_reason(monitor, early, early_ref)}
            if pruned_now:  # just before the checkpoint: a stop between them leaves a checkpoint before the
                # pruning epoch, whose pruned.csv a resumed run sets aside (and prunes again, as now)
                write_csv(pruned_df, out / "pruned.csv")
            save_checkpoint(ckpt, model, opt, sched, extra={
                "epoch": epoch + 1, "best_value": best_value, "best_epoch": best_epoch, "active": active.tolist(),
                "class_weights": used_weights,
                **({"early_stop": {"wait": waited_epochs, "value": early_ref, "stopped": stopped}}
                   if early is not None else {}),
            }, scaler=scaler)
            write_summary(epoch + 1)
            if epoch_log is not None:  # one line per epoch, counted from 1
                shown = [f"{k} {row[k]:.4f}" for k in dict.fromkeys(("train_loss", "val_loss", monitor))
                         if isinstance(row.get(k), (float, np.floating)) and np.isfinite(row[k])]
                best = ("" if best_epoch is None else
                        f" (best {monitor} {best_value:.4f} at epoch {best_epoch + 1})")
                epoch_log(f"epoch {epoch + 1}/{n_epochs}: {', '.join(shown)}{best}")
            if epoch_callback is not None:
                epoch_callback(epoch, row)
            ran = epoch + 1
            if stopped is not None:
                break
    finally:  # the loader processes end now, also when training stops with an error (a traceback kept in a
        # notebook, a pruned tuning trial would otherwise keep them)
        it = getattr(map_loader, "_iterator", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()
    worse = _pruned_worse(history, monitor, mode, int(T["prune_after"]), best_value, best_epoch) \
        if T["prune_restart"] and pruned_df is not None and len(pruned_df) else None
    if worse is not None and worse not in notes:
        notes.append(worse)
        write_summary(ran)
        if info is not None:
            info(f"note: {worse}")
    verdict = _start_verdict(init, monitor, mode, start_value, best_value, best_epoch) if init else None
    # a best epoch that only tied the start: no loss, but recorded (run.json's start["tied"], its notes, the card)
    tie = tie_line(init, monitor, start_value) if init and verdict is None and tied_start(start_value, best_value) \
        else None
    if start_info is not None and (start_info.get("not_beaten"), start_info.get("tied")) != (verdict, tie):
        for key, line in (("not_beaten", verdict), ("tied", tie)):  # said, or no longer so after --resume
            if start_info.get(key) in notes:  # a resumed run's earlier line
                notes.remove(start_info[key])
            if line is None:
                start_info.pop(key, None)
            else:
                start_info[key] = line
                notes.append(line)
        with contextlib.suppress(OSError, ValueError):
            summary = json.loads((out / "run.json").read_text(encoding="utf-8"))
            summary["start"], summary["notes"] = start_info, notes
            write_text(out / "run.json", json.dumps(summary, indent=2, default=float, ensure_ascii=False))
    return TrainResult(out, pd.DataFrame(history, columns=names), monitor, best_epoch, best_value, pruned_df, notes,
                       str(device), start_value=start_value, start_note=verdict, start_tie=tie, stopped_early=stopped)
