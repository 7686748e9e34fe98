"""``devolens train | tune | evaluate``: train from a recipe, tune it with Optuna, score a run."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional

import typer

_TRAIN_HELP = """Train a model from a RECIPE (YAML; the shipped ones are in recipes/ of the devolens repository) on a data folder.

Example: `devolens train recipes/finetune_own_nuclei.yaml --data my_data --out runs/my_nuclei` fine-tunes the shipped nuclei model on your annotated images; `devolens segment nuclei INPUT --model runs/my_nuclei --out DIR` then segments with the run. (recipes/tiny_nuclei.yaml only checks that training works: its runs learn from images resized to 64x64, which segment and models export cannot use.)

DATA is the output of `devolens render` (frames.csv, frames/, labels/), a folder with images/ and masks/ (or labels/) matched by file name (img_000.tif + img_000_masks.tif; sub-folders too), or images with their masks beside them (cellpose's layout). A population (count) recipe needs no masks: a folder of images with a frames.csv that lists each image (file, relative to DATA) and its counts (the recipe's data.counts, e.g. total), as `devolens render` writes it.

Writes to RUN: recipe.yaml (the recipe as resolved), history.csv, sample_losses.csv, checkpoint.safetensors/.json (last epoch, for --resume), best.safetensors/.json (best epoch), history.png, progress.gif (from samples/, the overlays of each epoch; a segmentation run's), split.csv, run.json, and with --prune-top pruned.csv.

RUN must be new, empty or a run (not the data folder, not inside it; files of the names a run writes, such as a history.csv of your own, without an earlier run's run.json beside them are refused); --resume continues RUN with its own recipe (a note says where RECIPE differs) on the data it was trained on.
"""


def _at_least(option: str, value, low) -> None:
    """Refuse a numeric option below ``low`` (checked before any work)."""
    if value is not None and value < low:
        from devolens.errors import DevolensError

        raise DevolensError(f"{option} must be >= {low}, got {value}")


def _instances_option(value: Optional[str]) -> Optional[str]:
    """``--instances`` as given, checked before any work against the recipe's ``validate.instances`` choices
    (:data:`devolens.train.recipe.SCHEMA`), in the option's own words (the recipe's key said only as where the
    default comes from)."""
    if value is None:
        return None
    from devolens.checks import shown
    from devolens.errors import DevolensError
    from devolens.train.recipe import SCHEMA

    choices = SCHEMA["validate"]["instances"].choices
    if value not in choices:
        raise DevolensError(f"--instances must be one of {', '.join(choices)} (as the recipe's validate.instances), "
                            f"got {shown(value)}")
    return value


def _postprocess_option(text: str) -> dict:
    """``--postprocess`` as the recipe's ``validate.postprocess`` takes it, checked before any work: a JSON object
    of the watershed's options, with the recipe's own checks (known keys, numbers >= 0, flags; ``threshold`` and
    ``seed_threshold`` probabilities between 0 and 1, exclusive, as ``segment`` checks its ``--threshold``)."""
    import json

    from devolens.errors import DevolensError
    from devolens.train.recipe import _postprocess_check

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DevolensError(f"--postprocess: not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise DevolensError(f"--postprocess: expected a JSON object such as '{{\"threshold\": 0.6}}', got {text!r}")
    problem = _postprocess_check(value)
    if problem is not None:
        raise DevolensError(f"--postprocess: {problem}")
    return value


def _check_export(export: Path, data: Path, recipe: Path, out: Path) -> None:
    """Refuse an --export path before training: not .safetensors, a folder, an input (in the data folder,
    the recipe), a file of a run or saved model, a file other than an earlier fp16 export, a JSON file its
    config would replace, or a place that takes no file."""
    import json

    from devolens.errors import DevolensError
    from devolens.train.trainer import RUN_FILES, lies_in, run_file

    config = export.with_suffix(".json")  # save_model writes the config beside the weights
    if export.suffix.lower() != ".safetensors":
        raise DevolensError("--export: give a .safetensors file (its config goes to the .json beside it)", path=export)
    for path in (export, config):
        if path.is_dir():
            raise DevolensError("--export: this is a folder; give a .safetensors file", path=path)
        if data.exists() and lies_in(path, data):
            raise DevolensError(f"--export lies inside the data folder {data}; write it elsewhere", path=export)
        if recipe.is_file() and lies_in(path, recipe):
            raise DevolensError("--export would overwrite the recipe", path=export)
    if run_file(export, out) or (config.name in RUN_FILES and run_file(config, out)):
        raise DevolensError("--export would replace a file of the run or of a saved model; give another name",
                            path=export)
    if export.exists():
        try:
            earlier = json.loads(config.read_text()).get("dtype") == "float16"
        except (OSError, ValueError, AttributeError):
            earlier = False
        if not earlier:  # only an earlier fp16 export (weights + config) is replaced
            raise DevolensError("--export: a file is there that is no earlier fp16 export; give another name",
                                path=export)
    elif config.exists():
        raise DevolensError(f"--export would replace {config}; give another name", path=export)
    from devolens.cli._common import check_writable

    check_writable(export)


#: the help of train's and tune's --device (tune: for every trial)
DEVICE_HELP = ("auto, cpu, cuda or cuda:N (overrides the recipe's train.device; auto: the first CUDA GPU when PyTorch "
               "sees one, else the CPU).")


def train_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML file (e.g. recipes/finetune_own_nuclei.yaml)."),
    data: Path = typer.Option(..., "--data", "-d", help="Training data folder: render output or images/ + masks/."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder to write (checkpoints, history, plots)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last checkpoint."),
    prune_top: Optional[float] = typer.Option(
        None, "--prune-top", help="Drop this percent of highest-loss training samples after the warm-up "
        "(recipe train.prune_after epochs) and retrain on the rest from the initial weights and learning rate, the "
        "best epoch chosen afresh (train.prune_restart: false trains on instead); dropped samples go to "
        "RUN/pruned.csv."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Total epochs (overrides the recipe's train.epochs)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's choice)."),
    device: Optional[str] = typer.Option(None, "--device", help=DEVICE_HELP),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Write history.png and progress.gif at the end."),
    export: Optional[Path] = typer.Option(
        None, "--export", help="Also write the best model as half-precision safetensors here (+ .json beside it): "
        "half the size, loaded back as fp32 by load_model (devolens.models.architectures)."),
) -> None:
    """Train a model from a recipe on a data folder."""
    import torch

    from devolens.cli._common import console, note, out as stdout, progress_bar
    from devolens.errors import DevolensError
    from devolens.io.atomic import Exhausted, cannot_write
    from devolens.train.trainer import check_run_folder, train

    # everything that can be checked is, before any data is read or folder made: the recipe first (the
    # first argument), then the options
    _load_recipe(recipe)
    _at_least("--threads", threads, 1)
    _at_least("--epochs", epochs, 1)
    if prune_top is not None and not 0 <= prune_top < 100:
        raise DevolensError(f"--prune-top must be in [0, 100) percent, got {prune_top}")
    check_run_folder(out, data, resume=resume, inside_data=not resume)  # a run already there stays where it is
    if export is not None:
        _check_export(export, data, recipe, out)
    if threads is not None:
        torch.set_num_threads(threads)
    from devolens.provenance import command_line  # (run.json records it)

    # no progress bar where stderr is no terminal (Slurm, nohup): one line per epoch instead
    epoch_log = None if console.is_terminal else console.print
    said: dict[str, Optional[str]] = {}  # the lines on the plots and the export: said below, where they belong

    def finish(res) -> None:  # while the run's folder is still locked: no second run changes it meanwhile
        said["plots"] = None  # (it has trained: a stop or an error from here on is none of the training's)
        if plots and not res.complete and len(res.history):
            said["plots"] = _write_plots(res.run_dir)
        _summary(res, said["plots"])  # before the export: an export that fails (a full disk) leaves it said
        try:
            said["export"] = _export(res.run_dir, export)
        except (DevolensError, OSError) as exc:
            err = exc if isinstance(exc, DevolensError) else cannot_write(exc, export)
            again = _resume_command(recipe, data, out, epochs=epochs, device=device, threads=threads, plots=plots,
                                    export=export)
            raise type(err)(f"{err.message}; the run is complete in {res.run_dir}: `{again}` writes the export once "
                            "there is room (it trains no further)", path=err.path) from None

    try:
        with progress_bar("training") as cb:
            res = train(recipe, data, out, resume=resume, prune_top=prune_top, epochs=epochs, device=device,
                        progress=cb, info=console.print,  # the split, the device, notes: before the first epoch
                        epoch_log=epoch_log, threads=threads, command=command_line("devolens train"), finish=finish)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: the error line is the command's; say how to go on
        done = _checkpoint_epoch(out)
        if done is not None and not said:  # (not once it has trained: writing the plots or the export)
            again = _resume_command(recipe, data, out, epochs=epochs, device=device, threads=threads, plots=plots,
                                    export=export)
            note(f"the last checkpoint (epoch {done}) is in {out}: continue with --resume ({again})")
        raise
    except Exception as exc:  # MemoryError, torch's RuntimeError, OpenCV's cv2.error (an augmentation)
        if said or not _out_of_memory(exc):
            raise
        raise Exhausted(_memory_advice(recipe, out, resume)) from None  # exit 75, as every command's
    if said["export"]:  # (the summary is said: by finish, before the export)
        stdout.print(said["export"])


def _tied_start(res) -> bool:
    """Whether a fine-tuning run's best epoch scored as its starting weights did
    (:func:`devolens.train.trainer.tied_start`): not a loss, so no ``start_note``, but not the gain its first line
    asked for."""
    from devolens.train.trainer import tied_start

    return tied_start(getattr(res, "start_value", None), res.best_value)


def _summary(res, plots_line: Optional[str]) -> None:
    """The lines that end a training: the plots, the last epoch's losses, the best epoch and how to use the run,
    the note on starting weights no epoch beat, the pruned samples; for a run found complete, the line saying so.
    Said before the --export is written (a failing export leaves them said), whose line follows them."""
    from devolens.cli._common import console, out as stdout

    if res.complete:
        n = len(res.history)
        stopped = getattr(res, "stopped_early", None)  # (run.json's stopped_early)
        if stopped:  # --epochs would not go on: the count of epochs without improvement is spent
            console.print(f"{res.run_dir}: already complete: {_stopped_line(stopped)}; it trains no "
                          "further (to train on from its best weights, train a new run whose recipe's model.init "
                          f"is {res.run_dir / 'best.safetensors'})")
            return
        console.print(f"{res.run_dir}: already complete ({n} epoch{'s' if n != 1 else ''}); give --epochs M > {n} to "
                      "train further")
        return
    if plots_line:
        console.print(plots_line)
    h = res.history
    if len(h):
        last = h.iloc[-1]
        stdout.print(f"epochs: {len(h)}  train_loss: {last['train_loss']:.4f}  val_loss: {last['val_loss']:.4f}  "
                     f"device: {res.device}")
    if getattr(res, "stopped_early", None):
        stdout.print(_stopped_line(res.stopped_early))
    if res.best_epoch is not None:
        stdout.print(f"best {res.monitor}: {res.best_value:.4f} at epoch {res.best_epoch + 1} of {len(h)} (epoch "
                     f"{res.best_epoch} in history.csv and run.json, which count from 0) -> "
                     f"{res.run_dir / 'best.safetensors'}")
        _how_to_use(res.run_dir)
    if res.start_note:  # fine-tuning that did not beat its starting weights
        console.print(f"note: {res.start_note}")
    elif _tied_start(res):  # (a tie is no loss, but "an epoch must beat it" was said before the first epoch)
        from devolens.train.trainer import tie_line

        said = getattr(res, "start_tie", None) or tie_line(None, res.monitor, res.start_value)
        console.print(f"note: {said}; with a small validation set scores are coarse: give more validation images, "
                      "more epochs or a lower optimizer.lr")
    if res.pruned is not None:
        n = len(res.pruned)
        stdout.print(f"pruned {n} sample{'s' if n != 1 else ''} -> {res.run_dir / 'pruned.csv'}")


def _stopped_line(stopped: dict) -> str:
    """The line saying that ``train.early_stop`` stopped a run (run.json's ``stopped_early``), its epochs counted
    from 1 as every message counts them."""
    def at(key: str) -> str:
        v = stopped.get(key)
        return str(v + 1) if isinstance(v, int) and not isinstance(v, bool) else "?"

    of = f" of {stopped['epochs']}" if isinstance(stopped.get("epochs"), int) else ""
    return (f"stopped early at epoch {at('epoch')}{of}, best epoch {at('best_epoch')}: "
            f"{stopped.get('reason', 'train.early_stop')}")


#: where the shipped recipes are when devolens cannot find them (a copy installed from PyPI or a wheel has none:
#: they live in the repository, not in the package)
_RECIPES_WHERE = ("the shipped recipes are in recipes/ of the devolens repository, not installed with the package: "
                  "give the path to one there, or a copy (README, 'Models of your own': "
                  "recipes/finetune_own_nuclei.yaml)")


def _shipped_recipes() -> Optional[Path]:
    """The recipes/ folder of the devolens checkout this package runs from (an editable install, ``pip install
    -e .`` or ``make``); None for an installed copy, which has none."""
    import devolens

    folder = Path(devolens.__file__).resolve().parents[2] / "recipes"  # src/devolens/__init__.py -> the checkout
    return folder if (folder / "finetune_own_nuclei.yaml").is_file() else None


def _load_recipe(recipe: Path) -> dict:
    """:func:`~devolens.train.recipe.load_recipe` of the RECIPE argument; a recipe not found says where the
    shipped recipes are (``devolens train recipes/x.yaml`` typed outside the repository's folder)."""
    from devolens.errors import DevolensError
    from devolens.train.recipe import load_recipe

    if not recipe.exists() and not recipe.is_symlink():
        shipped = _shipped_recipes()
        if shipped is None:
            raise DevolensError(f"recipe not found; {_RECIPES_WHERE}", path=recipe)
        if (shipped / recipe.name).is_file() and recipe.suffix.lower() in (".yaml", ".yml"):
            raise DevolensError(f"recipe not found; the shipped {recipe.name} is {shipped / recipe.name}",
                                path=recipe)
        raise DevolensError(f"recipe not found; the shipped recipes are in {shipped} (e.g. finetune_own_nuclei.yaml: "
                            "fine-tune the shipped nuclei model on your own images)", path=recipe)
    return load_recipe(recipe)


def _resume_command(recipe: Path, data: Path, out: Path, *, epochs: Optional[int] = None,
                    device: Optional[str] = None, threads: Optional[int] = None, plots: bool = True,
                    export: Optional[Path] = None) -> str:
    """The ``devolens train ... --resume`` command that continues an interrupted run: the paths and options as
    given, each word quoted for a POSIX shell (a folder with spaces stays one word). ``--prune-top`` is left
    out: the run's recipe.yaml keeps it."""
    import shlex

    words = ["devolens", "train", str(recipe), "--data", str(data), "--out", str(out), "--resume"]
    for flag, value in (("--epochs", epochs), ("--device", device), ("--threads", threads), ("--export", export)):
        if value is not None:
            words += [flag, str(value)]
    if not plots:
        words.append("--no-plots")
    return shlex.join(words)


def _how_to_use(run: Path) -> None:
    """At the end of training, say how the run is used (a tip: the command, shell-quoted), or, for a
    segmentation run that ``devolens segment`` and ``models export`` cannot use, a note saying why (the reason
    they would give). A count run (task population) is used by ``devolens population --model``."""
    import shlex

    from devolens.cli._common import console, note
    from devolens.errors import DevolensError
    from devolens.models.export import _run_config, card_from_run
    from rich.markup import escape

    quoted = escape(shlex.quote(str(run)))  # pasted into a shell as it is: a folder with spaces stays one word
    try:  # a run the predictors can feed as it was trained: say how to use it
        kind = card_from_run(run)["task"]
        if kind == "population":
            console.print(f"tip: `devolens population INPUT --model {quoted} --out counts.csv` counts frames with it "
                          "(a frame, a folder, a video); copy the run's folder to keep or share it")
            return
        console.print(f"tip: `devolens segment {kind} INPUT --model {quoted} --out DIR` segments with it; "
                      f"`devolens models export {quoted} --to FOLDER` makes it a model folder to keep or share")
        return
    except DevolensError as exc:
        why = exc.message
    from devolens.predict.livedead import check_run

    try:  # a live/dead run: used as it is (models export makes nuclei and membrane models only)
        check_run(run)
        console.print(f"tip: `devolens segment livedead WELL --model {quoted} --out DIR` segments wells with it")
        return
    except DevolensError:
        pass
    try:
        _run_config(run, None)  # a segmentation run's checkpoint (else: another task's, which no command uses)
    except DevolensError:
        return
    note(f"{run}: `devolens segment` and `devolens models export` cannot use it: {why}")


def _checkpoint_epoch(out: Path) -> Optional[int]:
    """Epochs the run's last checkpoint holds (None without a readable one)."""
    from devolens.errors import DevolensError
    from devolens.train.trainer import CHECKPOINT, _epochs_done

    try:
        return _epochs_done(out / CHECKPOINT) if (out / CHECKPOINT).exists() else None
    except DevolensError:
        return None


#: what PyTorch and Python say when memory runs out: the CPU allocator ("[enforce fail at alloc_cpu.cpp:127] ...
#: can't allocate memory"), CUDA ("CUDA out of memory"), a loader process the kernel killed for memory
_OOM_TEXTS = ("can't allocate memory", "out of memory", "defaultcpuallocator", "is killed by signal: killed")


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` means memory ran out: the CLI's test (torch.OutOfMemoryError, the allocator's RuntimeError,
    OpenCV's "Insufficient memory" in an augmentation), MemoryError, or a DataLoader worker the kernel killed."""
    from devolens.cli import _is_out_of_memory

    if isinstance(exc, MemoryError) or _is_out_of_memory(exc):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(t in text for t in _OOM_TEXTS)


def _memory_advice(recipe: Path, out: Path, resume: bool) -> str:
    """The one line for training that ran out of memory: what to lower (with the recipe's values), and the
    checkpoint left for --resume."""
    from devolens.train.recipe import load_recipe

    try:
        rec = load_recipe(out / "recipe.yaml" if resume and (out / "recipe.yaml").exists() else recipe)
        t, d = rec["train"], rec["data"]
        size = f"data.size (now {d['size']})" if d["size"] is not None else f"data.scale (now {d['scale']})"
        parts = [f"train.batch_size (now {t['batch_size']})", size]
        if t["num_workers"]:
            parts.append(f"train.num_workers (now {t['num_workers']})")
        now = ", ".join(parts[:-1]) + f" or {parts[-1]}"
    except Exception:  # the advice without the values
        now = "train.batch_size, data.size or data.scale, or train.num_workers"
    done = _checkpoint_epoch(out)
    kept = (f" and train a new run; the last checkpoint (epoch {done}) stays in {out}: --resume continues it with "
            "the run's own values once more memory is free") if done is not None else ""
    return f"out of memory while training: lower {now} in the recipe{kept}"


def _export(run_dir: Path, export: Optional[Path]) -> Optional[str]:
    """Write the run's best model as fp16 safetensors to ``export`` (checked by :func:`_check_export`); returns the
    line that says so (None where nothing was written)."""
    if export is None or not (run_dir / "best.safetensors").exists():
        return None
    from devolens.models.architectures import load_model, save_model

    model, cfg = load_model(run_dir / "best.safetensors")
    cfg.pop("dtype", None)
    save_model(model, export, config=cfg, fp16=True)
    return f"fp16 export -> {export}"


def _write_plots(run_dir: Path) -> str:
    """Write the run's history.png (and progress.gif where it kept validation samples); returns the line naming
    them."""
    from devolens.viz.overlays import training_gif
    from devolens.viz.plots import plot_training

    plot_training(run_dir / "history.csv", run_dir / "history.png")
    if any((run_dir / "samples").glob("epoch_*.npz")):
        training_gif(run_dir, run_dir / "progress.gif")
    gif = run_dir / "progress.gif"
    return f"plots: {run_dir / 'history.png'}" + (f", {gif}" if gif.exists() else "")


class _TrialLines:
    """``tune``'s progress where no bar shows (Slurm, nohup, ``DEVOLENS_PROGRESS=lines``): one line per finished
    trial, :func:`devolens.train.tuning._trial_line` (``k/N``, value, parameters, the best so far and its
    parameters) followed by the time elapsed and, from the pace so far, the time left, as a ``progress:`` line
    says them; no ``progress:`` lines besides. Printed as the commands' summary lines are (``--quiet`` keeps
    none); times from the clock of the ``progress:`` lines."""

    def __init__(self) -> None:
        from devolens.cli import _common

        self.start = _common._clock()
        self.done, self.total = 0, 0

    def progress(self, done: int, total: int) -> None:
        """The ``progress`` callback of :func:`devolens.train.tuning.tune`: counts, prints nothing."""
        self.done, self.total = done, total

    def log(self, line: str) -> None:
        """The ``trial_log`` of :func:`devolens.train.tuning.tune`: ``line`` with the times."""
        from devolens.cli import _common

        elapsed = _common._clock() - self.start
        text = f"{line}; {_common._clock_text(elapsed)} elapsed"
        if 0 < self.done < self.total:
            text += f", ~{_common._clock_text(elapsed * (self.total - self.done) / self.done)} left"
        _common.summary(text)


def tune_cmd(
    recipe: Path = typer.Argument(..., help="Recipe YAML with a tune.space section (keys to search and ranges)."),
    data: Path = typer.Option(..., "--data", "-d", help="Training data folder (as for `devolens train`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for trial runs, trials.csv, best_recipe.yaml "
                             "(and study.db with the default storage)."),
    trials: Optional[int] = typer.Option(None, "--trials", "-n", help="Total finished trials wanted in the study "
                                         "(default: the recipe's tune.trials), not how many to add: a resumed study "
                                         "runs only the missing ones, and processes sharing a --storage stop together "
                                         "at that total."),
    storage: Optional[str] = typer.Option(None, "--storage", help="SQLAlchemy URL of the study database (default "
                                          "sqlite:///OUT/study.db); share one URL to tune on several machines, each "
                                          "with its own --out. A --study already in it goes on only with its recipe and "
                                          "data (else give another --study)."),
    study: Optional[str] = typer.Option(None, "--study", help="Study name (default: the recipe's name); one --out "
                                        "holds one study."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch in every trial, over the "
                                          "recipe's train.threads (default: the recipe's, else torch's choice)."),
    device: Optional[str] = typer.Option(None, "--device", help=DEVICE_HELP),
) -> None:
    """Tune a recipe's hyper-parameters with Optuna; the best trial is exported as a recipe.

    Resumable: run again with the same recipe, data and --out and a larger --trials (the total wanted, not how many
    to add) to add trials to the study; after Ctrl-C the same command goes on."""
    import torch

    from devolens.cli._common import console, out as stdout, progress_bar, progress_mode
    from devolens.errors import DevolensError
    from devolens.io.atomic import Exhausted
    from devolens.train.trainer import check_run_folder
    from devolens.train.tuning import tune

    _load_recipe(recipe)  # the recipe first (the first argument), then the options
    _at_least("--threads", threads, 1)
    _at_least("--trials", trials, 1)
    # trial runs are runs: never among the data; no training run, no folder of other things
    check_run_folder(out, data, inside_data=True, tuning=True)
    if threads is not None:
        torch.set_num_threads(threads)
    # no bar (Slurm, nohup, DEVOLENS_PROGRESS=lines): a line per finished trial says the progress, without the
    # `progress:` lines besides (the log said each trial twice)
    lines = None if console.is_terminal and progress_mode() != "lines" else _TrialLines()
    try:
        with progress_bar("trials") if lines is None else contextlib.nullcontext(lines.progress) as cb:
            res = tune(recipe, data, out, trials=trials, storage=storage, study_name=study, progress=cb,
                       info=console.print, trial_log=None if lines is None else lines.log, threads=threads,
                       device=device)
    except DevolensError as exc:  # a database's error (--storage) spans lines: SQLAlchemy adds "(Background on ...)"
        if "\n" not in exc.message:
            raise
        lines = [line.strip() for line in exc.message.splitlines()]
        text = " ".join(line for line in lines if line and not line.startswith("(Background on this error"))
        raise DevolensError(text, path=exc.path) from None
    except Exception as exc:
        if not _out_of_memory(exc):
            raise
        raise Exhausted("out of memory while tuning: lower train.batch_size (or the batch sizes of tune.space), "
                            "data.size or data.scale, or train.num_workers in the recipe; the study's finished "
                            "trials stay in its storage: run again to go on") from None
    stdout.print(f"study {res.study_name!r} in {res.storage}: {len(res.trials)} trials ({res.n_new} new)")
    if res.best_recipe is not None:
        stdout.print(f"best value {res.best_value:.4f} with {res.best_params}")
        stdout.print(f"best recipe -> {res.best_recipe}")


def evaluate_cmd(
    run: Path = typer.Argument(..., help="A training run folder (holds best.safetensors and best.json)."),
    data: Path = typer.Option(..., "--data", "-d", help="Data folder to evaluate on (every sample is used)."),
    json_out: Optional[Path] = typer.Option(
        None, "--json", help="The file to write the metrics JSON to, not a switch: --json FILE.json (default "
        "RUN/eval_<DATA name>.json; with --weights RUN/eval_<DATA name>_<weights>.json, e.g. "
        "eval_A_zoo-nuclei.json)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per forward pass."),
    weights: Optional[str] = typer.Option(
        None, "--weights", help="Score these weights with the run's recipe instead of RUN/best.safetensors: "
        "RUN/checkpoint.safetensors (last epoch), another run's best.safetensors, or a shipped model of the same "
        "network as zoo:NAME (e.g. zoo:nuclei) or its folder."),
    instances: Optional[str] = typer.Option(
        None, "--instances", help="How instances are made for instance F1 and counts: 'classes' (argmax, quick), "
        "'watershed' (the zoo predictors' post-processing) or 'auto' (watershed for a run of data.target 'boundary', "
        "else classes); default: the recipe's validate.instances."),
    postprocess: Optional[str] = typer.Option(
        None, "--postprocess", help="Watershed options as JSON, e.g. '{\"threshold\": 0.6, \"seed_threshold\": 0.7, "
        "\"split_seeds\": true}' (a zoo card's post-processing; threshold and seed_threshold are probabilities "
        "between 0 and 1, exclusive): the keys given override those of the recipe's validate.postprocess (with "
        "--weights zoo:NAME the card's) one by one, the others stay; default: the recipe's validate.postprocess."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N (auto: the first CUDA GPU when "
                               "PyTorch sees one, else the CPU, wherever the run was trained)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's choice)."),
) -> None:
    """Score the best checkpoint of a run (or other weights of its network) on a data folder; print the metrics
    on stdout as 'key: value' lines (named without the val_ prefix, f1: 0.8123, as they score --data, not the run's
    validation set; the JSON keeps the keys val_f1... of history.csv) and write them as JSON to the --json file (default RUN/eval_<DATA name>.json;
    the files written are named on stderr, '-> FILE', which --quiet leaves out), and one row per image as CSV
    beside it (eval_..._images.csv: file, true and
    predicted counts, tp, fp, fn, precision, recall, f1; counted at the run's data.scale, so true_count leaves out
    a nucleus that vanishes when its mask is shrunk to it, neither found nor missed). A count run (task population)
    prints mae_C for each count C it regresses (the mean absolute error, cells) and mae, their mean; its CSV has one
    row per frame: file, true_C and pred_C of each count, run_side.

    Metrics: val_ap is a pixel-level precision-recall area per class (val_ap_0, val_ap_1...; val_ap their mean
    over the foreground classes), not the instance AP that cellpose or StarDist report, from 1000-bin score
    histograms (scores within 0.001 tie: a confident model reads about 0.005 below scikit-learn's
    average_precision_score on its raw scores); val_dice is the mean of the Dice values over the foreground
    classes (val_dice_1, val_dice_2...; val_dice_0 is the background's; val_iou likewise); val_f1, val_precision
    and val_recall count objects matched one to one at IoU > 0.5, detection F1 (with class-id masks, as in the
    livedead recipe, the class is not checked: val_f1_1, val_f1_2... match each class's objects among
    themselves); val_count_mae is the mean absolute difference of object counts per image. Each image is scored on
    its own pixels (images of several sizes run through the network one size at a time, not padded together), so
    the metrics do not depend on --batch-size. An 8-bit mask with 255 painted over several separate regions has
    255 read as 'ignore' (said in a note): those regions are neither nuclei to find nor false detections. Images
    and truth masks are resized to the network's working scale (the run's data.scale, also for --weights zoo:NAME), so
    objects are matched and counted there. With --weights zoo:NAME the card's post-processing is used (unless
    --postprocess is given) and said; evaluate does not estimate magnification: it scores at the data's own
    scale; for images at another magnification than the model's, compare with `devolens segment --diameter`.
    The masks get the same checks and notes as in `devolens train`. The run's train.amp is used as in training
    (bf16 on a GPU without native bfloat16, such as a T4 or V100, runs fp16, on a CPU without it, AVX2 only, fp32,
    with a note)."""
    import json

    from devolens.cli._common import device_option, note, out as stdout, progress_bar, summary
    from devolens.io.together import write_together
    from devolens.train.evaluate import evaluate_run

    _at_least("--batch-size", batch_size, 1)
    _at_least("--threads", threads, 1)
    device = device_option(device)  # a misspelt name or a missing GPU before any work
    if not run.is_dir():  # (a folder without best.safetensors: evaluate_run says so)
        from devolens.models.export import _not_a_run

        raise _not_a_run(run, "evaluate")
    if json_out is not None:
        _check_json(json_out, run, data)
    path = json_out or default_eval_json(run, data, weights)
    csv_path = path.with_name(f"{path.stem}_images.csv")
    _check_eval_writable(path, csv_path, given=json_out is not None)  # before the scoring, not after it
    validate: dict = {}
    if instances is not None:
        validate["instances"] = _instances_option(instances)
    if postprocess is not None:
        validate["postprocess"] = _postprocess_option(postprocess)
        validate.setdefault("instances", "watershed")
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    with progress_bar("evaluating") as cb:
        metrics = evaluate_run(run, data, batch_size=batch_size, progress=cb, weights=weights, validate=validate,
                               device=device)
    replaced = _earlier_eval(path, data)
    images = metrics.pop("images", None)
    if images is not None:
        metrics["images_csv"] = str(csv_path)
    # the metrics and the per-image rows: both this run's or both the previous run's (the JSON last)
    from devolens.io.atomic import TEXT_ERRORS

    writers = {} if images is None else {csv_path: lambda tmp: tmp.write_text(images_csv(images), encoding="utf-8",
                                                                                 errors=TEXT_ERRORS)}
    writers[path] = lambda tmp: tmp.write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
    write_together(writers)
    for text in metrics.get("notes") or []:  # on stderr, as every command's (kept under --quiet)
        note(text)
    # named without the val_ prefix: these are scores on --data, not on the run's validation set (the JSON keeps the
    # val_ keys, as history.csv's columns and best.json name the same metrics)
    repeated = _repeated_metrics(metrics)
    for k, v in metrics["metrics"].items():
        if k in repeated:
            continue
        k = printed_metric(k)
        stdout.print(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}")
    pp = _postprocess_used(metrics["validate"].get("postprocess") or {})
    if metrics.get("task", "segmentation") == "segmentation":  # a count run finds no instances
        stdout.print(f"instances: {metrics['validate']['instances']}"
                     + (f"; post-processing: {metrics['postprocess_from']}: {json.dumps(pp)}"
                        if metrics["validate"]["instances"] == "watershed" else ""))
    # the files written: summary lines on stderr, as every command's (--quiet leaves them out); stdout keeps metrics
    summary(f"metrics -> {path}" + (f" (replacing the earlier one{replaced})" if replaced is not None else ""))
    if images is not None:
        summary(f"per image -> {csv_path}")


def _repeated_metrics(metrics: dict) -> set[str]:
    """The metrics of an evaluation's JSON that ``devolens evaluate`` does not print, being another's figure under
    another name: a count run's ``val_count_mae`` (its ``val_mae_total``), and its ``val_mae`` (the mean over its
    counts) where it regresses one count (that count's ``val_mae_C``). The JSON keeps them all."""
    if metrics.get("task") != "population":
        return set()
    each = [k for k in metrics["metrics"] if k.startswith("val_mae_")]
    return {"val_count_mae"} | ({"val_mae"} if len(each) == 1 else set())


def printed_metric(key: str) -> str:
    """How ``devolens evaluate`` prints a metric of its JSON: ``val_f1`` as ``f1`` (scores on --data, which need not
    be the run's validation set)."""
    return key.removeprefix("val_")


def _check_eval_writable(path: Path, csv_path: Path, given: bool) -> None:
    """Refuse, before the scoring, a metrics JSON ``path`` (then its per-image CSV ``csv_path``) that cannot be
    written: the JSON is named first, as the file asked for; where no --json was ``given`` (the run folder takes
    no new file: a read-only or shared run), the error says to give one."""
    from devolens.cli._common import check_writable
    from devolens.errors import DevolensError

    try:
        check_writable(path)
        check_writable(csv_path)
    except DevolensError as exc:
        if given or type(exc) is not DevolensError:  # (a full disk, Exhausted, stays as it is: exit code 75)
            raise
        raise DevolensError(f"{exc.message}: give --json FILE.json in a folder you can write (the run folder "
                            "takes no new file)", path=exc.path) from None


def _earlier_eval(path: Path, data: Path) -> str | None:
    """What the metrics ``path`` replace: None where there is no such file, ``""`` for an earlier evaluation of the
    same data (or one that does not say which), ``", of other data: PATH"`` for one of another data folder (the
    default name keeps only the folder's name: ``runs/x/eval_heldout.json`` of ``a/heldout`` and ``b/heldout``)."""
    import json

    if not path.exists():
        return None
    try:
        earlier = json.loads(path.read_text(encoding="utf-8")).get("data_path")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return ""
    if not isinstance(earlier, str) or os.path.abspath(earlier) == os.path.abspath(data):  # (`..` taken out)
        return ""
    return f", of other data: {earlier}"


def _postprocess_used(given: dict) -> dict:
    """The watershed's settings that ``given`` (a recipe's ``validate.postprocess``) runs with: its keys, and the
    defaults of :func:`devolens.predict.postprocess.instances_from_probabilities` for those it leaves out."""
    import inspect

    from devolens.predict.postprocess import instances_from_probabilities

    params = inspect.signature(instances_from_probabilities).parameters.values()
    return {p.name: given.get(p.name, p.default) for p in params if p.kind is p.KEYWORD_ONLY}


def images_csv(rows: list[dict]) -> str:
    """The per-image rows of :func:`devolens.train.evaluate.per_image_rows` as CSV text (ratios to 4 places)."""
    import csv
    import io

    from devolens.train.evaluate import image_columns

    columns = image_columns(rows)  # (a count run's: file, true_C and pred_C of each count, run_side)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.4f}" if isinstance(r[k], float) else r[k]) for k in columns})
    return buf.getvalue()


def _safe_name(text: str) -> str:
    """``text`` as a part of a file name: letters, digits, ``.``, ``_`` and ``-`` kept, every other run of
    characters one ``-``."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "weights"


def default_eval_json(run: Path, data: Path, weights: Optional[str] = None) -> Path:
    """Where ``devolens evaluate`` writes its metrics without --json: ``RUN/eval_<DATA name>.json``, and with
    --weights ``RUN/eval_<DATA name>_<weights>.json``, so that scoring other weights on the same data keeps the
    run's own scores: ``zoo:nuclei`` is ``zoo-nuclei``, a file of the run its stem (``checkpoint``), another
    file its folder's name and its stem (``other_run-best``), a folder its name.

    Parameters
    ----------
    run : Path
        The run folder.
    data : Path
        The data folder (or tile store) evaluated on.
    weights : str, optional
        The --weights given.

    Returns
    -------
    Path
    """
    name = f"eval_{Path(data).resolve().name}"
    if weights is not None:
        text = str(weights)
        if text.startswith("zoo:"):
            tag = f"zoo-{text[4:]}"
        else:
            w = Path(text).resolve()
            if w.is_dir():
                tag = w.name
            elif w.parent == Path(run).resolve():
                tag = w.stem
            else:
                tag = f"{w.parent.name}-{w.stem}"
        name += f"_{_safe_name(tag)}"
    return Path(run) / f"{name}.json"


def _check_json(path: Path, run: Path, data: Path) -> None:
    """Refuse a --json path before evaluating: not .json, a folder, inside the data folder, or a file a run
    or model needs (the run's best.json, run.json, checkpoint.json, a model's config)."""
    from devolens.cli._common import check_out
    from devolens.errors import DevolensError
    from devolens.train.trainer import lies_in, run_file

    check_out(path, Path(data))
    if path.suffix.lower() != ".json":
        raise DevolensError("--json: give a .json file for the metrics", path=path)
    if Path(data).exists() and lies_in(path, Path(data)):
        raise DevolensError(f"--json lies inside the data folder {data}; write the metrics elsewhere", path=path)
    if run_file(path, run):
        raise DevolensError(f"--json would replace {path.name}, a file the run or a model needs; give another name "
                            f"(default: {Path(run) / 'eval_<DATA name>.json'})", path=path)


#: what ``evaluate --json`` wants, said where it is given without one: typer's click has no option whose value may be
#: left out, and ``models --json`` and ``lineage cliffs --json`` are switches
JSON_WANTS = ("--json takes the file to write the metrics to (e.g. --json scores.json); it is no switch: evaluate "
              "always writes its metrics as JSON, without --json to RUN/eval_<DATA name>.json, and names the file "
              "on its last lines")


class _EvaluateCommand(typer.core.TyperCommand):
    """``devolens evaluate``, whose ``--json`` given without a file (last, or before an option: a word beginning
    with ``-`` that is no .json file) says what it takes, instead of click's "Option '--json' requires an argument"
    or taking the option's name for the file."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        options = args[:args.index("--")] if "--" in args else args  # after --: arguments
        if any(arg in ctx.help_option_names for arg in options):  # --json --help: the help page (not a file)
            return super().parse_args(ctx, [arg for arg in options if arg in ctx.help_option_names][:1])
        for i, arg in enumerate(options):
            following = options[i + 1] if i + 1 < len(options) else "-"
            if arg == "--json" and following.startswith("-") and not following.lower().endswith(".json"):
                ctx.fail(JSON_WANTS)
        return super().parse_args(ctx, args)


def register(app: typer.Typer) -> None:
    """Add ``train``, ``tune`` and ``evaluate`` to the ``devolens`` command."""
    app.command("train", help=_TRAIN_HELP)(train_cmd)
    app.command("tune", help=tune_cmd.__doc__)(tune_cmd)
    app.command("evaluate", help=evaluate_cmd.__doc__, cls=_EvaluateCommand)(evaluate_cmd)
