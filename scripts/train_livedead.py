"""Train the ``livedead`` zoo model from an HDF5 tile store (minimal, time-budgeted loop).

This is the loop that produced the shipped weights: it streams tiles with
:class:`devolens.data.h5stream.H5TileStream` (one HDF5 chunk at a time, shuffled), builds
the network with :func:`devolens.models.architectures.build_model`, uses the engine's
``ce_dice`` loss with class weights and bf16 autocast on CPU, and saves fp16 safetensors
(+ JSON config) with :func:`devolens.models.architectures.save_model`.

Usage::

    python scripts/train_livedead.py --data train.h5 --out runs/livedead --minutes 15

``--init WEIGHTS`` fine-tunes earlier weights of the same architecture (how the shipped
weights of the twenty-fifth session were made from the first ones).

The engine's ``devolens train recipes/livedead.yaml --data train.h5 --out RUN`` is the
general path; this script exists because the shipped model was trained before the engine's
HDF5 path was ready (see benchmarks/results_wells.md).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from devolens.data.h5stream import H5TileStream, flip_rotate
from devolens.data.tiling import store_stats
from devolens.models.architectures import build_model, save_model
from devolens.train.losses import build_loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="tile store (devolens tile ... --out train.h5)")
    ap.add_argument("--out", required=True, help="run folder")
    ap.add_argument("--minutes", type=float, default=15.0, help="wall-clock budget for training")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is faster on a busy 2-core box)")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--crop", type=int, default=96, help="random crop of each tile (pixels)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--encoder-depth", type=int, default=3)
    ap.add_argument("--decoder-channels", default="32,16,8")
    ap.add_argument("--init", default=None,
                    help="start from these weights (.safetensors of the same architecture, e.g. the zoo's "
                         "src/devolens/models/zoo/livedead/weights.safetensors) instead of random ones")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    stats = store_stats(args.data)
    freq = stats["frequency"].to_numpy()
    weights = 1.0 / np.sqrt(np.maximum(freq, 1e-6))  # inverse-sqrt frequency, mean 1
    weights = weights / weights.mean()
    loss_fn = build_loss("ce_dice", weights.tolist(), dice_weight=1.0)

    stream = H5TileStream(args.data, shuffle=True, seed=args.seed, transform=flip_rotate((0.5, 2.0), crop=args.crop))
    decoder = tuple(int(c) for c in args.decoder_channels.split(","))
    model = build_model("unet", "resnet18", in_channels=2, classes=3, decoder_channels=decoder,
                        encoder_depth=args.encoder_depth)
    if args.init:
        from devolens.models.zoo import load_weights

        load_weights(model, args.init)  # (eval mode: the loop sets train mode)
    model = model.to(memory_format=torch.channels_last)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)

    budget = args.minutes * 60.0
    t0 = time.time()
    step = 0
    seen = 0
    epoch = 0
    log = []
    ema = None
    done = False
    while not done:
        stream.set_epoch(epoch)
        loader = DataLoader(stream, batch_size=args.batch_size, num_workers=args.workers, drop_last=True,
                            persistent_workers=False)
        for x, y in loader:
            elapsed = time.time() - t0
            frac = min(1.0, elapsed / budget)
            lr = args.lr * (min(1.0, (step + 1) / 50) * (0.5 * (1 + math.cos(math.pi * frac))) + 0.01)
            for g in opt.param_groups:
                g["lr"] = lr
            model.train()
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(x)
            loss = loss_fn(logits.float(), y).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            seen += x.shape[0]
            ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
            if step % 20 == 0:
                rec = {"step": step, "epoch": epoch, "seen": seen, "seconds": round(time.time() - t0, 1),
                       "lr": lr, "loss": round(ema, 4)}
                log.append(rec)
                print(json.dumps(rec), flush=True)
            if time.time() - t0 > budget:
                done = True
                break
        epoch += 1
    model.eval()
    config = {
        "task": "livedead", "classes": ["background", "live", "dead"], "channels": ["hoechst", "draq7"],
        "normalize": "log1p(x)/log1p(65535) per channel", "class_weights": weights.tolist(),
        "loss": "ce_dice", "steps": step, "samples_seen": seen, "epochs": epoch,
        "seconds": round(time.time() - t0, 1), "batch_size": args.batch_size, "lr": args.lr,
        "parameters": n_params, "data": str(args.data), "crop": args.crop, "threads": args.threads,
        "init": args.init,
    }
    save_model(model.to(memory_format=torch.contiguous_format), out / "model.safetensors", config, fp16=True)
    (out / "train_log.json").write_text(json.dumps(log, indent=1))
    print(json.dumps({"saved": str(out / "model.safetensors"), **config}), flush=True)


if __name__ == "__main__":
    main()
