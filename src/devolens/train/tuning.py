"""Hyper-parameter tuning with Optuna.

The search space lives in the recipe (``tune.space``: dotted recipe keys -> a float, int
or categorical range). Each trial trains the recipe with the sampled values for
``tune.epochs`` epochs and reports the validation metric every epoch to a pruner
(MedianPruner: a trial worse than the median of earlier trials at the same epoch stops).
The study is stored in SQLite (``sqlite:///OUT/study.db``) or any SQLAlchemy URL, so
several machines can share it (processes starting on one new database at once open it again until one of them
has made it: :func:`_open_study`; ``trials`` is the study's total across them, each call's first trial included:
:func:`tune`); running again resumes it (``load_if_exists``). The sampler's draws are
seeded for each trial by the recipe's ``seed`` plus the trial's number in the study, so a new study is reproducible
and a resumed or shared one does not draw its first trials' parameters again (workers sharing it draw apart). The best
trial is exported as a recipe YAML (``OUT/best_recipe.yaml``).

The study keeps the recipe it tunes (user attribute ``devolens_recipe``) and a fingerprint of the data
it tunes on (``devolens_data``, as a training run's ``run.json``): resuming it with another recipe or
on other data is refused, since its trials and best parameters belong to the first ones (the same
data moved or copied elsewhere resume). One ``OUT`` holds one study: trial folders are numbered per study, so an
``OUT`` holding another study's is refused (:func:`_same_folder`); the refused call leaves no study (nor a
study.db) it made, and never deletes one it did not make. With a shared ``--storage`` (several ``OUT`` folders,
one database) a study's trials record their folder, so an ``OUT`` holding another study's trials is refused naming
that study, and a refusal to go on with a study there says to give another ``--study``; a study in it that has no
recipe recorded (Optuna's own, an earlier version's) goes on only if its trials drew from this recipe's space.
The data are checked before the study is made, and a call that made ``OUT`` and fails
before any trial finished removes it again (an empty folder, a study.db of failed trials).
Optuna's own log lines are off below errors: a failing trial stops the study with a one-line
error, and trials stopped because training diverged are reported one line each (``info``) and recorded as pruned
trials whose ``stopped`` (user attribute, ``trials.csv`` column) is ``diverged`` (``pruner`` for the pruner's;
``interrupted`` for a trial a Ctrl-C or SIGTERM stopped, Optuna's FAIL).
The first trial of a call gives ``info`` what ``devolens train`` prints before its first epoch (the split,
the device, the notes on the data: unpaired files, thresholded masks...), once. A recipe that fine-tunes
(``model.init``) has each trial score its starting weights before its first epoch (the trial's ``run.json``
``start``, and the trial's user attribute ``start``); when no finished trial beat that score, one line says
so (``info``, the result's ``start_note`` and ``best.json``'s ``start``): the best recipe is then only the
least bad of recipes whose trials ended worse than the starting weights on that split (or, where the best only
tied them, no better there).
The pruner weighs each trial's best score so far (the trial's value is its best epoch's), and never prunes a trial
after its last epoch: a pruned trial's value in ``trials.csv`` is its best epoch's too.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from devolens.errors import DevolensError, listed
from devolens.io.atomic import missing_folders, remove_made, write_csv, write_text
from devolens.train.recipe import differences, dump_recipe, load_recipe, resolved, set_key, space_notes

#: user attribute of a study holding the recipe it tunes (JSON)
RECIPE_ATTR = "devolens_recipe"
#: user attribute of a study holding the data it tunes on (JSON: path, samples, fingerprint)
DATA_ATTR = "devolens_data"
#: recipe keys that may change between calls on one study: how many trials, its name (--study names the
#: study), and where and how fast trials run
FREE_KEYS = ("name", "tune.trials", "train.device", "train.threads", "train.num_workers")
#: how often :func:`tune` opens a study's database when another process was making or writing it at the same time
#: (several processes starting on one new shared SQLite file race to make its tables), and the first wait between
#: two tries in seconds (doubled each time: about 3 s in all)
OPEN_TRIES = 6
OPEN_WAIT_S = 0.1
#: user attribute of a pruned trial saying what stopped it: "pruner" (worse than the median of earlier trials at
#: the same epoch) or "diverged" (its training diverged; the message in user attribute "diverged"), and of a failed
#: one that a Ctrl-C or SIGTERM stopped: "interrupted"; trials.csv's column ``stopped``
STOPPED_ATTR = "stopped"
#: user attribute of a completed trial that ``train.early_stop`` stopped: its last epoch trained (counted from 0, as
#: run.json's ``stopped_early.epoch``); trials.csv's last column, ``stopped_early_epoch`` (empty for the others)
EARLY_ATTR = "stopped_early_epoch"
#: ``stopped`` of a trial this call began when other processes sharing the storage had begun the last trials of the
#: total a moment before (its number came after theirs): failed at once, before it drew parameters or trained, and
#: left out of ``trials.csv``
SURPLUS = "surplus"


class _Surplus(Exception):
    """Raised by a trial that is one too many for ``--trials`` (:data:`SURPLUS`): it ends the call's trials."""


@dataclass
class TuneResult:
    """What :func:`tune` returns."""

    study_name: str
    storage: str
    best_params: dict[str, Any] | None
    best_value: float | None
    best_recipe: Path | None
    trials: pd.DataFrame
    #: the trials this call ran (fewer than were missing where other processes sharing the storage ran some)
    n_new: int
    #: fine-tuning (``model.init``) where no finished trial beat the starting weights' score (or the best only tied
    #: it): the line saying so
    start_note: str | None = None


def default_storage(out: str | Path) -> str:
    """``sqlite:///<absolute OUT>/study.db``."""
    return f"sqlite:///{(Path(out).resolve() / 'study.db').as_posix()}"


def suggest(trial, space: dict[str, dict]) -> dict[str, Any]:
    """Draw one value per search-space entry from an Optuna trial."""
    values: dict[str, Any] = {}
    for key, spec in space.items():
        t = spec["type"]
        if t == "categorical":
            values[key] = trial.suggest_categorical(key, list(spec["choices"]))
        else:  # (a step > 0 dividing the range, never with log: checked when the recipe was read)
            step = spec.get("step")
            if t == "int":
                values[key] = trial.suggest_int(key, int(spec["low"]), int(spec["high"]),
                                                step=1 if step is None else int(step), log=bool(spec.get("log")))
            else:
                values[key] = trial.suggest_float(key, float(spec["low"]), float(spec["high"]),
                                                  step=None if step is None else float(step),
                                                  log=bool(spec.get("log")))
    return values


def apply_params(recipe: dict, params: dict[str, Any]) -> dict:
    """A validated copy of ``recipe`` with dotted-key ``params`` set."""
    rec = copy.deepcopy(recipe)
    for k, v in params.items():
        rec = set_key(rec, k, v)
    return load_recipe(rec)



def _drop_checkpoint(run_dir: Path) -> None:
    """A finished (or pruned) trial's training checkpoint: only a run that goes on needs it, and a study's trials
    never do (a trial is not resumed), so it goes; the trial keeps its best weights (``best.safetensors``, what
    ``segment --model`` and ``models export`` read), history and notes. About 37 MB a trial of the shipped
    nuclei network."""
    from devolens.train.trainer import CHECKPOINT

    for name in (CHECKPOINT, Path(CHECKPOINT).with_suffix(".json").name):
        (Path(run_dir) / name).unlink(missing_ok=True)

def tune(
    recipe: str | Path | dict,
    data: str | Path,
    out: str | Path,
    *,
    trials: int | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    info: Callable[[str], None] | None = None,
    trial_log: Callable[[str], None] | None = None,
    threads: int | None = None,
    device: str | None = None,
) -> TuneResult:
    """Run (or resume) an Optuna study over the recipe's search space.

    Parameters
    ----------
    recipe : path or dict
        Recipe with a non-empty ``tune.space``.
    data : path
        Training data folder (as for :func:`devolens.train.trainer.train`).
    out : path
        Folder for the study database (default storage), one run folder per trial
        (``trials/trial_NNNN``), ``trials.csv`` and ``best_recipe.yaml``: new, empty or an earlier
        tune's of the same study (it goes on); a training run, a folder of other things and another study's
        folder (whose trial folders and summary files this study would replace) are refused. Locked for the call
        (as :func:`~devolens.train.trainer.train` locks its run folder): a second call on it meanwhile is refused.
    trials : int, optional
        Total number of finished (complete or pruned) trials wanted in the study (default
        ``tune.trials``); a resumed study only runs the missing ones (none, with a ``note:`` to ``info``, when it
        holds as many already). Processes adding trials to one study at once (a shared ``storage``) each start a
        trial, their first too, only while the study's finished trials and those running make fewer (a ``note:`` to
        ``info`` where one stopped short or ran none): two workers given ``trials=1`` make one trial, whichever
        starts first. Trials running in other ``out`` folders count, also when they were running before this call
        began; one found running in this ``out`` is a killed earlier call's and counts only if it finishes.
    storage : str, optional
        SQLAlchemy URL (default ``sqlite:///OUT/study.db``).
    study_name : str, optional
        Study name (default the recipe's ``name``).
    progress : callable, optional
        ``progress(finished_trials, total)``.
    info : callable, optional
        ``info(line)``: what :func:`devolens.train.trainer.train` says before its first epoch (the split, the
        device, each note on the data), for the first trial of this call only; a line for each trial stopped
        because its training diverged; on an interruption (Ctrl-C) after trials finished (``trials.csv`` and
        ``best_recipe.yaml`` are written for them first); and at the end, a fine-tuning study whose finished
        trials all scored worse than their starting weights, or where none scored better and the best only tied
        them: the result's ``start_note``.
    trial_log : callable, optional
        ``trial_log(line)`` after each finished trial (after ``progress``): :func:`_trial_line`, its progress
        (``k/N``), value (or how far a pruned trial got) and parameters, the best so far and its parameters (for
        logs where no progress bar shows).
    threads : int, optional
        PyTorch's CPU threads for every trial, over the recipe's ``train.threads`` (as ``train --threads``).
    device : str, optional
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` for every trial, over the recipe's ``train.device`` (as
        ``train --device``; checked before the first trial).

    Returns
    -------
    TuneResult

    Raises
    ------
    DevolensError
        Bad recipe or options, unusable data, a study that cannot be opened (after a few tries where another
        process was making or writing its database), optimises the other
        way, tunes another recipe or on other data, or a trial that failed (the study stops there).
    """
    from devolens.train.trainer import _lock_run

    out = Path(out)
    where = Path(os.path.abspath(out))  # '..' resolved by name: the folders made are the ones named
    made = missing_folders(where)  # what this call creates
    finished: list[int] = []  # trials finished by this call
    removed, lock = False, None
    try:
        # --out locked for the whole study, as train locks its run folder: a second call on the same --out is
        # refused at once ("another devolens run is writing here (pid N)"); both ran a trial, the study then holding
        # more than --trials, and each wrote its own summary. Workers sharing a --storage each have their own --out.
        lock = _lock_run(where, out)
        try:
            return _tune(recipe, data, out, trials=trials, storage=storage, study_name=study_name, progress=progress,
                         info=info, trial_log=trial_log, finished=finished, threads=threads, device=device)
        except BaseException:  # Ctrl-C included
            if where in made and not finished:  # nothing of value in a folder this call made: leave none behind
                shutil.rmtree(where, ignore_errors=True)
                removed = True
            raise
    finally:
        if lock is not None:
            lock.release()
        if removed or not where.exists():  # the folders made above --out (the lock file's among them), after it
            remove_made([p for p in made if p != where])


def _tune(recipe, data, out: Path, *, trials, storage, study_name, progress, info, finished: list[int],
          trial_log=None, threads=None, device=None) -> TuneResult:
    """The body of :func:`tune` (which removes what a failed call made); appends to ``finished`` the
    number of each trial that finished (complete or pruned)."""
    import optuna

    from devolens.errors import option
    from devolens.train.trainer import RUN_COLUMNS, build_data, check_run_folder, metric_names, resolve_device, train

    # Optuna logs a failing trial (and Ctrl-C) as a warning with its traceback; the error itself is
    # reported once, as one line, by the caller
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    base = load_recipe(recipe)
    tcfg = base["tune"]
    if not tcfg["space"]:
        raise DevolensError("tune.space is empty: list the recipe keys to search, e.g. optimizer.lr")
    res = resolved(base)
    metric = tcfg["metric"] or res["train"]["monitor"]
    direction = tcfg["direction"] or (
        "minimize" if any(k in metric for k in ("loss", "mae", "error", "bias")) else "maximize")
    names = metric_names(res)
    if metric not in names:  # named as the recipe sets it (each trial's train.monitor is tune.metric)
        raise DevolensError(f"{'tune.metric' if tcfg['metric'] else 'train.monitor'}: {metric!r} is not a metric of "
                            f"this task; choose from {', '.join(n for n in names if n != 'epoch' and n not in RUN_COLUMNS)}")
    if info is not None:
        for line in space_notes(base):
            info(f"note: {line}")
    n_total = int(trials if trials is not None else tcfg["trials"])
    if n_total < 1:
        raise DevolensError(f"--trials must be >= 1, got {n_total}")
    if threads is not None and int(threads) < 1:
        raise DevolensError(f"--threads must be >= 1, got {threads}")
    if device is not None:  # a misspelt name or a missing GPU now, not as a failed first trial of a new study
        resolve_device(str(device), option("device"))
    check_run_folder(out, data, tuning=True)  # not the data folder nor one holding it, no training run
    bundle = build_data(res, data)  # bad data are reported now, not as a failed trial in a new study
    out.mkdir(parents=True, exist_ok=True)
    storage = storage or default_storage(out)
    name = study_name or base["name"]
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=tcfg["startup_trials"], n_warmup_steps=tcfg["warmup_epochs"])
              if tcfg["pruner"] == "median" else optuna.pruners.NopPruner())
    # (a study only this call makes is deleted again when refused; the database file too where this call made it in
    # its own --out, the default storage: a shared --storage file made here may be in use by another process already)
    names, study, db = _open_study(name, storage, direction, pruner)
    own_db = db if db is not None and _same_storage(storage, default_storage(out)) else None
    # each trial draws afresh: seeded by the recipe's seed plus its number in the study, so a new study is
    # reproducible, while a resumed or shared one does not repeat its first trials (workers that start together on
    # one study drew the same parameters, trial for trial, when seeded by the trials they found)
    study.sampler = _trial_seeded_sampler(int(base["seed"]))
    if study.direction.name.lower() != direction:
        raise DevolensError(f"study {name!r} in {storage} optimises {study.direction.name.lower()}, this recipe asks "
                            f"to {direction} ({metric}): its trials and best parameters belong to another recipe; "
                            f"{_elsewhere('this recipe', name, storage, out)}, or the study's recipe to go on with it")
    try:
        _same_folder(study, out, name, storage, names)
    except DevolensError:
        if name not in names:  # made by this call (not one made beforehand, empty): leave no empty study behind
            _forget(name, storage, own_db)
        raise
    _same_recipe(study, base, name, storage, out)
    _same_data(study, bundle, Path(data), name, storage, out)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    n_done = len(study.get_trials(deepcopy=False, states=states))
    n_new = max(0, n_total - n_done)
    if not n_new and info is not None:  # --trials is the total: the same command again adds none
        info(f"note: study {name!r} holds {n_done} finished trial{'s' if n_done != 1 else ''} already, and --trials "
             f"(default tune.trials) is the total wanted, {n_total}: give --trials M > {n_done} to add M - {n_done} "
             "trials")
    epochs = tcfg["epochs"] or base["train"]["epochs"]

    def objective(trial) -> float:
        run_dir = out / "trials" / f"trial_{trial.number:04d}"
        # (absolute: a study in a shared --storage tells which --out folder holds each of its trials; first: another
        # worker opening the study now counts this trial as running, not as one a killed call left: held)
        trial.set_user_attr("run_dir", os.path.abspath(run_dir))
        # two processes that found the study one trial short at once both began one: the later-numbered gives way,
        # before it draws parameters or trains (a failed trial, left out of trials.csv)
        if held(before=trial.number) >= n_total:
            trial.set_user_attr(STOPPED_ATTR, SURPLUS)
            raise _Surplus()
        params = suggest(trial, tcfg["space"])
        rec = apply_params(base, params)
        rec["train"]["monitor"] = metric
        rec["train"]["monitor_mode"] = "min" if direction == "minimize" else "max"
        rec["train"]["epochs"] = int(epochs)

        running: list[float] = []  # the best score so far, what the trial's value is when it completes

        def report(epoch: int, row: dict) -> None:
            # the pruner weighs the running best (the objective is the best epoch's score, not the last's: a
            # pruned trial's value in trials.csv is then its best so far too), and never after the last epoch: a
            # trial that trained every epoch completes
            v = row.get(metric)
            if v is not None and v == v:  # not NaN
                v = float(v)
                if running:
                    v = min(v, running[0]) if direction == "minimize" else max(v, running[0])
                running[:] = [v]
                trial.report(v, epoch)
            if epoch + 1 < int(epochs) and trial.should_prune():
                trial.set_user_attr(STOPPED_ATTR, "pruner")
                raise optuna.TrialPruned()

        # the first trial of this call says what `devolens train` says before its first epoch (the split, the
        # device, the notes on the data), once: the other trials train on the same data
        said = info if info is not None and not told else None
        told.append(trial.number)
        try:
            result = train(rec, data, run_dir, epoch_callback=report, info=said, threads=threads, device=device)
        except DevolensError as exc:
            if "diverged" in str(exc):  # a too-high learning rate: stop this trial, keep the study going
                if info is not None:
                    info(f"note: trial {trial.number} stopped: {exc}")
                trial.set_user_attr(STOPPED_ATTR, "diverged")
                trial.set_user_attr("diverged", str(exc))
                raise optuna.TrialPruned(str(exc)) from None
            raise
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM: trials.csv says so (a failed trial with no word read as a crash)
            try:
                trial.set_user_attr(STOPPED_ATTR, "interrupted")
            except Exception:  # noqa: BLE001 - the storage gone too: the interruption is what is reported
                pass
            raise
        finally:  # finished, pruned, failed or interrupted (Ctrl-C): a trial is never resumed
            _drop_checkpoint(run_dir)
        if result.best_value is None:
            raise DevolensError(f"metric {metric!r} was never finite in trial {trial.number}")
        # fine-tuning: the starting weights' score on the trial's validation split, and whether the trial's best
        # epoch fell short of it (train's verdict, within its tolerance)
        start = None
        if result.start_value is not None:
            start = {"init": str(rec["model"].get("init")), "value": float(result.start_value),
                     "not_beaten": result.start_note is not None}
        trial.set_user_attr("start", start)
        early = getattr(result, "stopped_early", None)  # (it completed, its best epoch's score: trials.csv says so)
        if early is not None:
            trial.set_user_attr(EARLY_ATTR, int(early["epoch"]))
        return float(result.best_value)

    told: list[int] = []  # the trials of this call that were given `info`
    done = 0
    # --trials is the study's total also where several processes add trials to it (a shared --storage): n_new is
    # what was missing when this call started, so before each trial, the first too, the study's finished trials and
    # those running are counted, and this call starts none once they make the total (and a trial that began in the
    # same moment as another process's last one gives way to it: objective). A trial found running in this --out
    # when the study was opened is counted once it finishes only: each worker has its own --out (tune locks it: a
    # second call on it is refused), so it is an earlier call's, killed mid-trial, left running for ever, which would
    # keep this call short of the total; one found running in another --out is another worker's (one found running
    # without a folder, begun by Optuna itself rather than devolens, is taken for a killed one too)
    running = optuna.trial.TrialState.RUNNING
    earlier = {t.number for t in study.get_trials(deepcopy=False, states=(running,))}
    here = os.path.abspath(out)
    full: list[int] = []  # the study's count where this call stopped before n_new trials (other processes ran some)

    def live(t) -> bool:
        """Whether the running trial ``t`` counts toward the total (see above)."""
        if t.number not in earlier:
            return True
        folder = t.user_attrs.get("run_dir")  # (OUT/trials/trial_NNNN, absolute)
        return isinstance(folder, str) and os.path.dirname(os.path.dirname(folder)) != here

    def held(before: int | None = None) -> int:
        """The study's finished trials and those running that count (:func:`live`), numbered below ``before``."""
        return sum(1 for t in study.get_trials(deepcopy=False, states=(*states, running))
                   if (before is None or t.number < before) and (t.state != running or live(t)))

    def after(study_, trial_) -> None:
        nonlocal done
        done += 1
        finished.append(trial_.number)
        if progress is not None:
            progress(done, n_new)
        if trial_log is not None:  # one line per finished trial
            trial_log(_trial_line(study_, trial_, done, n_new, metric))
        if done < n_new:
            count = held()
            if count >= n_total:
                full.append(count)
                study_.stop()

    count = held() if n_new else 0
    if n_new and count >= n_total:  # trials running in other processes make the total already: none begun here
        full.append(count)
    elif n_new:
        try:
            study.optimize(objective, n_trials=n_new, callbacks=[after], catch=())
        except _Surplus:  # (its trial failed, out of trials.csv: the study is full)
            full.append(max(held(), n_total))
        except KeyboardInterrupt:  # Ctrl-C, SIGTERM: what finished is summarised (the study is in its storage)
            if finished:
                _summary_anyway(study, base, out, name, storage, metric, direction)
                if info is not None:
                    n = len(finished)
                    info(f"note: interrupted after {n} finished trial{'s' if n != 1 else ''}; the study's trials are "
                         f"in {out / 'trials.csv'}, its best recipe in {out / 'best_recipe.yaml'}: run the same "
                         "command again to go on with the study")
            raise
    if full and info is not None:
        n = len(finished)
        info(f"note: study {name!r} holds {full[0]} finished or running trials, the total wanted ({n_total}): this "
             f"call ran {n} of them, other processes sharing {storage} the others")
    df, best_params, best_value, best_path, start_note = _summary(study, base, out, name, storage, metric, direction)
    if start_note is not None and info is not None:
        info(f"note: {start_note}")
    if best_path is None and info is not None:  # every finished trial was stopped
        stopped = [t.user_attrs.get(STOPPED_ATTR) for t in study.get_trials(deepcopy=False, states=states)]
        n_div = stopped.count("diverged")
        if full and not stopped:  # none finished yet: the trials making the total run in other processes
            info(f"note: no trial has finished yet: no best recipe written in {out}; run the same command again once "
                 "the other processes' trials have finished to write it")
        else:
            info(f"note: no trial completed ({len(stopped)} stopped"
                 + (f", {n_div} because training diverged" if n_div else "") + "): no best recipe written; "
                 + ("lower the optimizer.lr range in tune.space (a new --out), or " if n_div else "")
                 + "give a larger --trials to add trials")
    return TuneResult(name, storage, best_params, best_value, best_path, df, len(finished), start_note)


def _trial_line(study, trial, done: int, total: int, metric: str) -> str:
    """The line :func:`tune` gives its ``trial_log`` for a finished trial: its number, how many of this call's
    trials have finished (``done/total``), its value (or how far a pruned trial got) and parameters, and the
    study's best so far with its parameters, e.g. ``trial 3 (4/12): val_dice 0.7012 with {'optimizer.lr': 0.004}
    (best val_dice 0.7230: trial 1 with {'optimizer.lr': 0.0012})``; ``(best val_dice so far)`` when it is the
    best; ``(stopped early at epoch E)`` after the value of a trial ``train.early_stop`` stopped (counted from 1, as
    train's line). No best before a trial completed (a pruned first trial)."""
    import optuna

    if trial.state == optuna.trial.TrialState.COMPLETE:
        what = f"{metric} {trial.value:.4f}"
        early = trial.user_attrs.get(EARLY_ATTR)  # (train.early_stop; run.json's epoch, counted from 0)
        if early is not None:
            what += f" (stopped early at epoch {int(early) + 1})"
    else:
        epochs_run = len(trial.intermediate_values)
        how = "diverged" if trial.user_attrs.get(STOPPED_ATTR) == "diverged" else trial.state.name.lower()
        what = f"{how} after {epochs_run} epoch{'s' if epochs_run != 1 else ''}"
    try:
        best = study.best_trial
    except ValueError:  # no trial completed yet
        best = None
    if best is None:
        best_txt = ""
    elif best.number == trial.number:
        best_txt = f" (best {metric} so far)"
    else:
        best_txt = f" (best {metric} {best.value:.4f}: trial {best.number} with {best.params})"
    return f"trial {trial.number} ({done}/{total}): {what} with {trial.params}{best_txt}"


def _summary_anyway(study, base: dict, out: Path, name: str, storage: str, metric: str, direction: str) -> None:
    """:func:`_summary` after an interruption: the signal the command recorded does not stop these writes
    (a second one does)."""
    from devolens.io import atomic

    received = list(atomic.received_signals)
    atomic.received_signals.clear()
    try:
        _summary(study, base, out, name, storage, metric, direction)
    except DevolensError:  # unwritable: the interruption is what is reported
        pass
    finally:
        atomic.received_signals[:0] = [s for s in received if s not in atomic.received_signals]


def _trial_start(trial) -> dict | None:
    """A finished trial's starting weights (``init``), their score before its first epoch (``value``) and whether
    the trial fell short of it (``not_beaten``); None where the trial did not fine-tune or its start was not scored.
    Read from the trial's user attribute ``start``, or, for a trial an earlier version ran, from its ``run.json``
    (where its run folder is at hand)."""
    if "start" in trial.user_attrs:
        start = trial.user_attrs["start"]
        return start if isinstance(start, dict) else None
    try:
        start = json.loads((Path(trial.user_attrs["run_dir"]) / "run.json").read_text(encoding="utf-8"))["start"]
        value = float(start["value"])
    except (KeyError, OSError, ValueError, TypeError):
        return None
    if value != value:  # NaN: not scored
        return None
    return {"init": str(start.get("init")), "value": value, "not_beaten": bool(start.get("not_beaten"))}


#: how :func:`_start_note`'s line begins where no trial beat its starting weights but some only tied them (not
#: ``not_beaten``: no loss)
TIED = "the best trial only tied the starting weights"


def _start_note(study, best, metric: str) -> tuple[dict | None, str | None]:
    """The best trial's start (:func:`_trial_start`) and, when no finished trial beat its starting weights (each
    on its own validation split; every one fine-tuned and was scored), the line that says so, naming the
    starting weights' score on the best trial's split; where none beat its start but some only tied it
    (:func:`devolens.train.trainer.tied_start`), the line beginning :data:`TIED` that says so, as
    ``devolens train`` says a tie."""
    import optuna

    start = _trial_start(best)
    if start is None:
        return None, None
    from devolens.train.trainer import tied_start

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    starts = [_trial_start(t) for t in complete]
    # a tie, as `devolens train` says it: no loss, but not the gain the first line asked for
    tied = [s is not None and tied_start(s["value"], t.value) for t, s in zip(complete, starts)]
    init = start["init"]
    keep = f"keep the zoo model {init[4:]!r}" if init.startswith("zoo:") else f"keep the starting weights ({init})"
    n, k = len(starts), len(best.intermediate_values)  # (its value is its best epoch's; k: the epochs scored)
    if not all(s is not None and (s["not_beaten"] or tie) for s, tie in zip(starts, tied)):
        return start, None
    if not all(s["not_beaten"] for s in starts):  # none beat its start, some only tied it
        return start, (f"{TIED} ({init}: {metric} {start['value']:.4f} on the validation set before training; "
                       f"best: trial {best.number}, its best epoch's {metric} {best.value:.4f}; no trial of {n} "
                       f"finished scored better): best_recipe.yaml makes the model no better there than {init}; "
                       "with a small validation set scores are coarse: give more validation images, more "
                       "tune.epochs or lower optimizer.lr values in tune.space")
    line = (f"no trial beat the starting weights ({init}: {metric} {start['value']:.4f} on the validation set "
            f"before training; best: trial {best.number}, its best epoch's {metric} {best.value:.4f} (of {k} scored "
            f"epoch{'s' if k != 1 else ''}), of {n} finished trial{'s' if n != 1 else ''}): best_recipe.yaml is only "
            f"the least bad of recipes that made the model worse; {keep}, or tune again with lower optimizer.lr values "
            "in tune.space or more tune.epochs")
    return start, line


def _summary(study, base: dict, out: Path, name: str, storage: str, metric: str, direction: str):
    """Write ``trials.csv`` and, once a trial completed, ``best_recipe.yaml`` and ``best.json``; return the
    trials table, the best parameters, value and recipe path (None without a completed trial), and the line of
    :func:`_start_note` (None unless no trial beat its starting weights; ``best.json``'s ``start`` has it as
    ``not_beaten``)."""
    df = study.trials_dataframe(attrs=("number", "value", "state", "params", "duration"))
    if len(df):  # why a pruned trial stopped: the pruner, or its training diverged
        stopped = {t.number: t.user_attrs.get(STOPPED_ATTR, "") for t in study.get_trials(deepcopy=False)}
        df.insert(list(df.columns).index("state") + 1, "stopped", [stopped.get(int(n), "") for n in df["number"]])
        # a completed trial that train.early_stop stopped: its last epoch (last: the columns before keep their places)
        early = {t.number: t.user_attrs.get(EARLY_ATTR, "") for t in study.get_trials(deepcopy=False)}
        df[EARLY_ATTR] = [early.get(int(n), "") for n in df["number"]]
        df = df[df["stopped"] != SURPLUS].reset_index(drop=True)  # (one too many, begun with another's last: no trial)
    write_csv(df, out / "trials.csv")
    best_params = best_value = best_path = line = None
    try:
        best = study.best_trial
    except ValueError:
        best = None
    if best is not None:
        best_params, best_value = dict(best.params), float(best.value)
        rec = apply_params(base, best_params)
        epochs = int((base.get("tune") or {}).get("epochs") or base["train"]["epochs"])
        try:
            monitor = resolved(rec)["train"]["monitor"]
        except KeyError:  # (a recipe not validated: its monitor as written)
            monitor = rec["train"].get("monitor", "auto")
        best_path = dump_recipe(rec, out / "best_recipe.yaml", header=(
            f"The best trial of study {name}: trial {best.number}, {metric} {best_value:.6g} ({direction}, at its best "
            f"epoch; tune.metric).\nEach trial trained {epochs} epoch{'s' if epochs != 1 else ''} (tune.epochs); this "
            f"recipe trains train.epochs = {rec['train']['epochs']} and keeps the best epoch by train.monitor "
            f"{monitor}:\ntrained for more epochs than the trials did (or judged by another metric), it can give a "
            "different result."))
        start, line = _start_note(study, best, metric)
        if start is not None:  # the best trial's starting weights and their score (as its run.json's start)
            start = {"init": start["init"], "monitor": metric, "value": start["value"],
                     **({"not_beaten": line} if line is not None and not line.startswith(TIED) else {})}
        write_text(out / "best.json", json.dumps({"study": name, "storage": storage, "metric": metric,
                                                  "direction": direction, "trial": best.number,
                                                  "value": best_value, "params": best_params,
                                                  **({"start": start} if start is not None else {})}, indent=2))
    return df, best_params, best_value, best_path, line


def _trial_seeded_sampler(seed: int):
    """Optuna's TPE sampler, its random draws seeded for each trial by ``seed`` plus the trial's number in the study:
    the same draws for the same study history (a new study is reproducible), and other draws for each trial of
    workers sharing one study, whose trial numbers differ (seeded once a worker, by what each found at its start,
    workers starting together drew the same parameters trial for trial: half their trials wasted)."""
    import optuna

    class TrialSeeded(optuna.samplers.TPESampler):
        def before_trial(self, study, trial):
            state = seed + int(trial.number)
            for rng in (getattr(self, "_rng", None), getattr(getattr(self, "_random_sampler", None), "_rng", None)):
                if rng is not None and hasattr(rng, "rng"):  # (optuna's LazyRandomState: its numpy RandomState)
                    rng.rng.seed(state % 2**32)
            super().before_trial(study, trial)

    return TrialSeeded(seed=seed)


def _open_study(name: str, storage: str, direction: str, pruner) -> tuple[list[str], Any, Path | None]:
    """Open study ``name`` in ``storage``, making it (and a new SQLite file) where it is not there yet; return the
    names of the studies the storage held before, the study, and the SQLite file this call made (None: none made,
    it was there, or another storage).

    Several processes may start on one new shared database at once (``--storage``, one study for several
    machines): they race to make its tables, and the ones that lose get a database error (a UNIQUE constraint of
    Optuna's version tables, a locked database). Losing is not a failure: the database is opened again a few times,
    after a growing wait (:data:`OPEN_TRIES`, :data:`OPEN_WAIT_S`). The file is made here, exclusively, before
    Optuna opens it, so that this call knows whether it made it: a call that still cannot open the study removes
    only a file it made itself and nobody wrote into (:func:`_remove_own_db`), never a database another process
    made or uses. The error that remains is one line (:func:`_db_error`)."""
    import time

    import optuna

    db = _sqlite_file(storage)
    made = None
    if db is not None:
        try:  # (an empty file is an empty SQLite database)
            os.close(os.open(db, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            made = db
        except OSError:  # there already (perhaps made by another process a moment ago), or not makeable: SQLite says
            pass
    try:
        for attempt in range(OPEN_TRIES):
            try:
                names = optuna.get_all_study_names(storage)
                # (the study's sampler is set by the caller, once its trials are known)
                study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True, direction=direction,
                                            pruner=pruner)
                return list(names), study, made
            except Exception as exc:  # noqa: BLE001 - bad URL, unreachable database, another process making it
                if attempt + 1 < OPEN_TRIES and _racing(exc):
                    time.sleep(OPEN_WAIT_S * 2 ** attempt)
                    continue
                raise DevolensError(f"cannot open study {name!r} in {storage}: {_db_error(exc)}") from None
    except BaseException:  # (Ctrl-C included) a file this call made and nobody wrote into goes again
        if made is not None:
            _remove_own_db(made, written=False)
        raise
    raise AssertionError("unreachable")  # (the last try returns or raises)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during (Optuna's StorageInternalError wraps SQLAlchemy's)."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _racing(exc: BaseException) -> bool:
    """Whether opening a study failed because another process was making or writing the database at the same
    time (worth opening again): a UNIQUE constraint (two processes writing Optuna's version tables), a table
    made meanwhile, a locked database."""
    for e in _chain(exc):
        kind = type(e).__name__
        text = str(e).lower()
        if kind == "IntegrityError" or (kind == "OperationalError" and ("locked" in text or "already exists" in text
                                                                         or "busy" in text)):
            return True
    return False


def _db_error(exc: BaseException) -> str:
    """A failure to open a study, as one line: the database driver's message without the SQL statement, its
    parameters and the link SQLAlchemy add (``(sqlite3.OperationalError) unable to open database file``), and what
    to do where the database error remains."""
    sql = next((e for e in _chain(exc) if type(e).__module__.startswith("sqlalchemy")), None)
    text = str(sql if sql is not None else exc)
    for cut in ("\n[SQL:", "\n[parameters:", "\n(Background on this error"):
        text = text.split(cut, 1)[0]
    text = " ".join(line.strip() for line in text.splitlines() if line.strip()) or type(exc).__name__
    if _racing(exc):
        return (f"{text}: another process held the database (or was making it) all along; run the command again "
                "once it is free")
    if sql is not None and type(sql).__name__ in ("IntegrityError", "OperationalError", "DatabaseError",
                                                  "ProgrammingError"):
        return (f"{text}: check --storage (an existing database this machine can reach and write, or a new SQLite file "
                "in a folder that exists and is writable)")
    return text


def _remove_own_db(db: Path, *, written: bool) -> None:
    """Remove the SQLite file ``db``, which this call made (:func:`_open_study`), when it holds no study: never one
    another process uses. Checked under SQLite's exclusive lock (not granted while another connection reads or
    writes it); ``written`` False: only while the file is still empty (no process wrote its tables: one that
    opened it is still starting, and would lose what it writes into a removed file). Best effort: a file that
    cannot be checked stays."""
    import sqlite3

    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=rw", uri=True, timeout=0, isolation_level=None)
    except (sqlite3.Error, OSError, ValueError):
        return
    try:
        con.execute("BEGIN EXCLUSIVE")
        if not written and db.stat().st_size:
            return
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "studies" in tables and con.execute("SELECT COUNT(*) FROM studies").fetchone()[0]:
            return
        db.unlink(missing_ok=True)  # (under the lock: nobody writes it meanwhile)
    except (sqlite3.Error, OSError):
        pass
    finally:
        con.close()


def _sqlite_file(storage: str) -> Path | None:
    """The database file of an SQLite URL (``sqlite:///PATH``), None for another storage."""
    if not storage.startswith("sqlite:///"):
        return None
    path = storage[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _same_storage(a: str, b: str) -> bool:
    """Whether two storage URLs name one database (SQLite: one file, however its path is written)."""
    fa, fb = _sqlite_file(a), _sqlite_file(b)
    if fa is not None and fb is not None:
        return os.path.abspath(fa) == os.path.abspath(fb)
    return a == b


def _elsewhere(what: str, name: str, storage: str, out: Path | None) -> str:
    """The advice of a refusal to go on with study ``name`` in ``storage`` for ``what`` (this recipe, these data):
    with the default storage (``OUT/study.db``) another ``--out``; with a shared ``--storage`` another ``--study``
    (and another ``--out`` where ``out`` holds that study's files). ``out`` None: not known (both said)."""
    if out is None:
        return f"give another --out for {what} (and, with --storage, another --study)"
    if _same_storage(storage, default_storage(out)):
        return f"give another --out for {what}"
    held = (out / "best.json").exists() or any((out / "trials").glob("trial_*"))
    return (f"give {what} another --study (a name {storage} does not hold yet)"
            + (f" and another --out ({out} holds study {name!r}'s trials)" if held else ""))


def _owners(out: Path, others: list[str], storage: str) -> dict[str, str]:
    """The trial folders in ``out/trials`` that trials of the studies ``others`` in ``storage`` ran in (their user
    attribute ``run_dir``): folder name -> study name. Best effort: a study that cannot be read owns none."""
    import optuna

    folders = {os.path.abspath(p): p.name for p in (out / "trials").glob("trial_*")}
    owners: dict[str, str] = {}
    if not folders or not others:
        return owners
    try:
        store = optuna.storages.get_storage(storage)
        for other in others:
            for t in optuna.load_study(study_name=other, storage=store).get_trials(deepcopy=False):
                run_dir = t.user_attrs.get("run_dir")
                if isinstance(run_dir, str) and os.path.abspath(run_dir) in folders:
                    owners.setdefault(folders[os.path.abspath(run_dir)], other)
    except Exception:  # noqa: BLE001 - the folder is then judged by its trial numbers alone
        pass
    return owners


def _forget(name: str, storage: str, db: Path | None) -> None:
    """Delete study ``name``, which this call made and then refused, while it is still empty (no trials, no user
    attributes), and the database file ``db`` this call made for it when no other study is in it
    (:func:`_remove_own_db`): a refused call leaves nothing behind. Best effort: a delete that fails (a locked
    database) leaves the refusal to be reported."""
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage)
        if study.user_attrs or study.get_trials(deepcopy=False):  # another process goes on with it already
            return
        optuna.delete_study(study_name=name, storage=storage)
        if db is not None:
            _remove_own_db(db, written=True)
    except Exception:  # noqa: BLE001 - the refusal is what is reported
        pass


def _same_folder(study, out: Path, name: str, storage: str, names: list[str] | tuple) -> None:
    """Refuse an ``out`` that holds another study's files, which this study would replace: trial folders numbered
    from this study's next trial on (``trials/trial_NNNN``: numbers count per study) or a ``best.json`` of
    another study (with ``trials.csv`` and ``best_recipe.yaml``), or trial folders that trials of another study in
    ``storage`` ran in (:func:`_owners`, a shared ``--storage``), whatever their numbers. One ``--out`` holds one
    study; a ``best.json`` of this study's name in another storage is refused too (``--storage`` forgotten).

    ``names``: the studies ``storage`` held before this call opened ``study`` (``study``'s name among them unless
    this call made it). The refusal names the study the folder holds where it is known (its ``best.json``, or the
    only other study in the folder's study.db) and says to give ``--study`` with its name to go on with it (a
    renamed recipe names another study); trial folders beside a new study in a storage holding no other (its
    study.db removed) are said to be of a study the storage does not have.
    """
    other = go_on = None
    try:
        best = json.loads((out / "best.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        best = None
    if isinstance(best, dict) and best.get("study") not in (None, name):
        other = f"study {best['study']!r} (its best.json)"
        if best["study"] in names:
            go_on = f"--study {best['study']!r}"
        elif best.get("storage") and not _same_storage(best["storage"], storage):  # tuned in another storage
            go_on = f"--study {best['study']!r} --storage {best['storage']!r}"
    elif (isinstance(best, dict) and best.get("study") == name and isinstance(best.get("storage"), str)
          and not _same_storage(best["storage"], storage)):  # its study of the same name in another storage
        other = f"study {name!r} of another storage, {best['storage']} (its best.json)"
        go_on = f"--storage {best['storage']!r}"
    else:
        n = len(study.get_trials(deepcopy=False))  # this study numbers its next trials from n on
        taken = sorted(p.name for p in (out / "trials").glob("trial_*")
                       if p.name[6:].isdigit() and int(p.name[6:]) >= n)
        rest = [s for s in names if s != name]
        owners = _owners(out, rest, storage)  # trial folders of another study in the storage, whatever their numbers
        shared = not _same_storage(storage, default_storage(out))
        if owners and (name in names or len(rest) > 1 or shared or not taken):
            first = sorted(owners)[0]
            other = (f"trial folders (trials/{first}{' ...' if len(owners) > 1 else ''}) of study "
                     f"{owners[first]!r} in {storage}")
            go_on = f"--study {owners[first]!r}"
        elif taken:
            folders = f"trials/{taken[0]}{' ...' if len(taken) > 1 else ''}"
            if name in names or len(rest) > 1 or (rest and shared):
                other = f"another study's trials ({folders})"
            elif rest:  # a new study beside the one its study.db holds (a renamed recipe names another study)
                other = f"trial folders ({folders}) of study {rest[0]!r} (the other study in its study.db)"
                go_on = f"--study {rest[0]!r}"
            else:
                other = (f"trial folders ({folders}) of a study that {storage} does not have (its "
                         "database removed?)")
    if other is not None:
        raise DevolensError(f"--out holds {other}, whose trial folders, trials.csv and best recipe study {name!r} "
                            f"would replace: give another --out for study {name!r}"
                            + (f", or {go_on} to go on with the study this folder holds" if go_on else ""), path=out)


def _same_recipe(study, base: dict, name: str, storage: str, out: Path | None = None) -> None:
    """Refuse to go on with a study that tunes another recipe; record the recipe in a new study.

    A study made before the recipe was recorded (an earlier version's, or one made with Optuna itself in a shared
    storage) takes the recipe of this call from now on, unless its trials drew their parameters otherwise than
    this recipe's ``tune.space`` does (another range or type, a key it does not search): refused. ``out``: the
    ``--out`` given, for the advice (:func:`_elsewhere`).
    """
    stored = study.user_attrs.get(RECIPE_ATTR)
    if stored is None:
        import optuna

        probe = optuna.create_study().ask()  # the distributions this recipe's trials draw from
        suggest(probe, base["tune"]["space"])
        drawn = {k for t in study.get_trials(deepcopy=False) for k, d in t.distributions.items()
                 if probe.distributions.get(k) != d}
        if drawn:
            raise DevolensError(f"study {name!r} in {storage} was made for another search space (its trials drew "
                                f"{listed(sorted(drawn))} otherwise than this recipe's tune.space: another range or "
                                "type, or a key it does not search): its trials and best parameters belong to that "
                                f"one; {_elsewhere('this recipe', name, storage, out)}")
        study.set_user_attr(RECIPE_ATTR, json.dumps(base, sort_keys=True))
        return
    try:
        theirs = json.loads(stored)
        theirs = load_recipe(theirs)  # keys added to the schema since then get their defaults
    except (TypeError, ValueError):
        return
    except DevolensError:  # keys this version no longer knows: compare as stored
        pass
    diff = differences(base, theirs, ignore=FREE_KEYS)
    if diff:
        keys = listed(diff)
        raise DevolensError(f"study {name!r} in {storage} tunes another recipe (it differs in {keys}): its trials "
                            f"and best parameters belong to that one; {_elsewhere('this recipe', name, storage, out)}, "
                            "or the study's recipe to go on with it")


def _same_data(study, bundle, data: Path, name: str, storage: str, out: Path | None = None) -> None:
    """Refuse to go on with a study tuned on other data; record the data of a new study.

    The data are compared by the fingerprint of their samples (names and file contents,
    :func:`devolens.train.trainer.data_fingerprint`), so the same data moved or copied elsewhere (another
    machine sharing ``--storage``) go on. A study made before the data were recorded takes the data of
    this call from now on. ``out``: the ``--out`` given, for the advice (:func:`_elsewhere`).
    """
    mine = {"path": str(data.resolve()), "samples": int(len(bundle.split)), "fingerprint": bundle.fingerprint}
    stored = study.user_attrs.get(DATA_ATTR)
    if stored is None:
        if bundle.fingerprint:
            study.set_user_attr(DATA_ATTR, json.dumps(mine))
        return
    try:
        theirs = json.loads(stored)
    except (TypeError, ValueError):
        return
    if not isinstance(theirs, dict) or not theirs.get("fingerprint") or not bundle.fingerprint:
        return
    if theirs["fingerprint"] != bundle.fingerprint:
        how = (f"the files in {data} differ from those" if theirs.get("samples") == mine["samples"] else
               f"{data} holds {mine['samples']} samples, the study's data {theirs.get('samples')}")
        raise DevolensError(f"study {name!r} in {storage} was tuned on other data ({how} in {theirs.get('path')}): "
                            f"its trials and best parameters belong to those; "
                            f"{_elsewhere('these data', name, storage, out)}, or the study's data to go on with it")
