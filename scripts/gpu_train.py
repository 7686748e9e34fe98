"""Train a recipe within a time budget (a lent GPU, minutes counted), with its own validation folder.

A GPU lent for a few minutes has to be used without a trial run: this script measures, before
training, how many samples a second the data loader and the device take (a short probe of each; on a
GPU the device is probed in both memory formats and trains in channels-last, ``train.channels_last``,
where that is at least 5 % faster) and how long one validation pass lasts, then sizes the run so that it ends, validation included,
within ``--minutes``: as many whole passes over the training data as fit (or ``--epochs`` epochs,
each as long as the budget allows and at most one pass, ``train.max_batches``), one cosine decay
over them (``cosine_restarts`` with ``t0`` = the epochs). Training is the engine's
own (:func:`devolens.train.trainer.train`: the recipe's loss, optimizer, schedule, bf16 autocast,
best checkpoint by ``train.monitor``); only the split differs from ``devolens train``: ``--val``
names a folder of its own (e.g. renders of an embryo kept for that), so the validation set stays
small and fixed however the training data were grouped. After every epoch the best weights
(fp32 safetensors, the model alone) and the history are copied to ``--copy-to``.

Usage::

    python scripts/gpu_train.py recipes/nuclei_gpu.yaml --data DIR --val DIR --out RUN \\
        --minutes 5 [--epochs 8] [--init WEIGHTS] --workers 14 --copy-to OUTDIR

(scripts/gpu_nuclei.sh runs it on the device machine; benchmarks/RESULTS.md, nuclei, nineteenth session.)
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch


def _loader_rate(ds, batch: int, workers: int, seconds: float, seed: int = 0) -> float:
    """Samples per second the training data loader gives (after its first batch)."""
    from devolens.train.trainer import _EpochOrder, training_loader

    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(ds))[: max(batch * 4, min(len(ds), batch * 400))].tolist()
    loader = training_loader(ds, _EpochOrder(idx), batch, workers)  # the engine's training loader
    n, t0, first = 0, None, 0
    start = time.perf_counter()
    for b in loader:
        if t0 is None:  # the first batch waits for the workers to start: timed apart
            t0, first = time.perf_counter(), len(b["index"])
            continue
        n += len(b["index"])
        if time.perf_counter() - t0 > seconds:
            break
    if n == 0:  # one batch in all: its time, start-up included
        return first / max(time.perf_counter() - start, 1e-6)
    return n / max(time.perf_counter() - t0, 1e-6)


def _device_rate(model, amp: str, sample, batch: int, device: str, steps: int = 20,
                 channels_last: bool = False) -> float:
    """Samples per second of forward + backward + step of ``model`` on the device (random data of the samples'
    size; the model's weights change; ``channels_last``: the model and the batch in that memory format, as
    ``train.channels_last`` trains)."""
    from devolens.train.trainer import _autocast

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.rand((batch, *sample.shape), device=device).contiguous(memory_format=fmt)
    for i in range(steps + 3):
        if i == 3:
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
        with _autocast(amp, device):
            y = model(x)
        loss = y.float().square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", type=Path)
    ap.add_argument("--data", type=Path, required=True, help="training folder (render-style, e.g. scripts/zoo_data.py)")
    ap.add_argument("--val", type=Path, required=True, help="validation folder (never trained on)")
    ap.add_argument("--out", type=Path, required=True, help="run folder")
    ap.add_argument("--minutes", type=float, required=True, help="training + validation budget")
    ap.add_argument("--epochs", type=int, default=None,
                    help="epochs (one cosine decay over them); default: as many whole passes over the training data "
                         "as the budget holds")
    ap.add_argument("--init", default=None, help="start from these weights (overrides the recipe's model.init)")
    ap.add_argument("--workers", type=int, default=None, help="data loader processes (default: the recipe's)")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="samples per step (default: the recipe's; the learning rate stays the recipe's)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--copy-to", type=Path, default=None, help="copy best weights + history here after each epoch")
    ap.add_argument("--probe-seconds", type=float, default=8.0)
    a = ap.parse_args()

    import pandas as pd

    from devolens.data.datasets import index_dataset
    from devolens.errors import DevolensError
    from devolens.models.architectures import save_model
    from devolens.train.checkpoint import load_checkpoint
    from devolens.train.recipe import load_recipe, resolved
    from devolens.train.trainer import (DataBundle, _loss_fn, build_from_recipe, check_run_folder, effective_amp,
                                        evaluate_model, init_weights, make_dataset, model_config, preload_for_workers,
                                        resolve_device, train, usable_rows)

    started = time.perf_counter()
    if a.epochs is not None and a.epochs < 1:
        sys.exit("--epochs must be at least 1")
    if not a.minutes > 0:  # before the probes, which take time of their own
        sys.exit(f"--minutes must be positive (no time left for training: {a.minutes})")
    try:  # a folder that already holds a run (or other files) is refused now, not after the probes
        check_run_folder(a.out, a.data)
    except DevolensError as exc:
        sys.exit(str(exc))
    rec = resolved(load_recipe(a.recipe))
    T = rec["train"]
    if a.init:
        rec["model"]["init"] = a.init
    if a.workers is not None:
        T["num_workers"] = int(a.workers)
    if a.batch_size is not None:
        if a.batch_size < 1:
            sys.exit("--batch-size must be at least 1")
        T["batch_size"] = int(a.batch_size)
    device = resolve_device(a.device)
    T["device"] = str(device)  # cuda:N stays that GPU
    if device.type == "cuda":  # fixed crop sizes: let cuDNN pick its fastest convolutions once
        torch.backends.cudnn.benchmark = True
    if T.get("threads"):
        torch.set_num_threads(int(T["threads"]))
    # the probes run the arithmetic training will run (bf16 becomes fp16 on a GPU without native bf16; train()
    # makes the same change and records it)
    amp, amp_note = effective_amp(T["amp"], device)
    if amp_note:
        print(f"note: {amp_note}", flush=True)
    # the rows the engine trains on (its data preparation's rules: usable_rows)
    tr_df, va_df = (usable_rows(index_dataset(f), rec)[0].reset_index(drop=True) for f in (a.data, a.val))
    train_ds, val_ds = make_dataset(rec, tr_df, True), make_dataset(rec, va_df, False)
    split = pd.concat([tr_df.assign(side="train"), va_df.assign(side="val")])[["sample", "group", "side"]]
    bundle = DataBundle(train_ds, val_ds, split.reset_index(drop=True))
    # the split is --val's, not data.val_fraction's: the run's recipe says what it was (and the engine's note on a
    # fraction far from the recipe's does not fire for a folder given on purpose)
    rec["data"]["val_fraction"] = len(va_df) / max(1, len(tr_df) + len(va_df))
    bs, workers = int(T["batch_size"]), int(T["num_workers"])
    print(f"{len(train_ds)} training, {len(val_ds)} validation samples; device {device}; "
          f"batch {bs}, {workers} workers", flush=True)

    # as train() does (whole passes), before the loader probe, which then measures what training will get
    preload_for_workers(train_ds, workers, len(train_ds), len(train_ds), lambda s: print(s, flush=True))

    # ---- probes: the loader, one validation pass of the starting weights, the device (on that model)
    r_load = _loader_rate(train_ds, bs, workers, a.probe_seconds)
    model = build_from_recipe(rec)
    if rec["model"].get("init"):
        model = init_weights(model, rec["model"]["init"])
    model = model.to(device)
    loss_fn, _ = _loss_fn(rec, train_ds)
    ev = evaluate_model(model, val_ds, rec, loss_fn, batch_size=bs, amp=amp)
    # timed on a second pass: the first pays for new batch shapes (cuDNN's tuning), which the twenty-sixth
    # session's probe counted (4.8 s against 1.6-2.3 s within the epochs) and so ended its run ~85 s early
    t0 = time.perf_counter()
    evaluate_model(model, val_ds, rec, loss_fn, batch_size=bs, amp=amp)
    t_val = time.perf_counter() - t0
    r_dev = _device_rate(model, amp, train_ds[0]["image"], bs, str(device), channels_last=T["channels_last"])
    formats = ""
    if device.type == "cuda" and not T["channels_last"]:  # the faster memory format, measured (same network)
        r_cl = _device_rate(model, amp, train_ds[0]["image"], bs, str(device), channels_last=True)
        formats = f" (channels_last {r_cl:.0f} samples/s"
        if r_cl > 1.05 * r_dev:
            T["channels_last"], r_dev = True, r_cl
            formats += ": used)"
        else:
            formats += ": not used)"
    del model
    rate = 0.9 * min(r_load, r_dev)
    left = a.minutes * 60 - (time.perf_counter() - started)
    if rate <= 0 or left < t_val + 3.0 + 5.0:
        sys.exit(f"budget too small or no training data: {left:.0f} s left, validation {t_val:.1f} s, "
                 f"{rate:.0f} samples/s")
    steps_pass = math.ceil(len(train_ds) / bs)  # the engine's epoch is at most one pass over the training data
    t_pass = steps_pass * bs / rate + t_val + 3.0  # + 3 s per epoch: history, checkpoints
    if a.epochs is not None:  # that many epochs, each as long as the budget allows (at most one pass)
        epochs = int(a.epochs)
        per_epoch = (left - epochs * (t_val + 3.0)) / epochs
        if per_epoch <= 5:
            sys.exit(f"budget too small: {left:.0f} s left, validation {t_val:.1f} s per epoch")
        T["max_batches"] = min(steps_pass, max(1, math.floor(per_epoch * rate / bs)))
    elif left >= t_pass:  # whole passes, as many as the budget holds
        epochs = math.floor(left / t_pass)
        T["max_batches"] = None
    else:  # not even one pass: one epoch of what fits
        epochs = 1
        T["max_batches"] = max(1, math.floor((left - t_val - 3.0) * rate / bs))
    T["epochs"] = epochs
    if rec["scheduler"]["name"] == "cosine_restarts":  # one decay over the run
        rec["scheduler"]["t0"] = epochs
    n_batches = T["max_batches"] or steps_pass
    print(f"loader {r_load:.0f} samples/s, device {r_dev:.0f} samples/s{formats}, validation {t_val:.1f} s "
          f"(init: {', '.join(f'{k} {v:.4f}' for k, v in ev['metrics'].items() if isinstance(v, float))}); "
          f"{epochs} epochs of {n_batches} batches ({n_batches * bs} samples), {epochs * n_batches * bs} in all, "
          f"about {epochs * (n_batches * bs / rate + t_val + 3.0):.0f} s of the {left:.0f} s left", flush=True)

    def copy(epoch: int, row: dict) -> None:
        print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                  for k, v in row.items()), flush=True)
        if a.copy_to is not None:
            a.copy_to.mkdir(parents=True, exist_ok=True)
            for name in ("best.safetensors", "best.json", "history.csv"):
                if (a.out / name).exists():
                    shutil.copy2(a.out / name, a.copy_to / name)

    res = train(rec, bundle, a.out, device=str(device), info=lambda s: print(s, flush=True), epoch_callback=copy)
    # the last epoch's weights too (the model alone, fp32): the checkpoint also holds the optimizer
    last = build_from_recipe(rec)
    load_checkpoint(a.out / "checkpoint.safetensors", last)
    save_model(last, a.out / "last.safetensors", config=model_config(rec, epochs - 1))  # as loadable as best
    if a.copy_to is not None:
        for name in ("last.safetensors", "last.json"):
            shutil.copy2(a.out / name, a.copy_to / name)
    print(f"done in {time.perf_counter() - started:.0f} s; best epoch {res.best_epoch}", flush=True)
    before, monitor = ev["metrics"].get(T["monitor"]), T["monitor"]  # the recipe resolved: monitor_mode min or max
    if before is not None and res.best_value is not None and (
            res.best_value < before if T["monitor_mode"] == "max" else res.best_value > before):
        print(f"warning: the best epoch's {monitor} {res.best_value:.4f} is worse than the starting weights' "
              f"{before:.4f}", flush=True)


if __name__ == "__main__":
    main()
