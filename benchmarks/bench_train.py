"""Training speed: a ResNet18 U-Net on rendered frames, fp32 vs bf16 autocast (CPU).

Renders N frames of simulated embryos with devolens' renderer (falls back to synthetic
discs when the renderer is missing, and says so), then trains the same recipe for E epochs
twice through ``devolens.train.trainer.train`` -- once in fp32, once with ``amp: bf16`` --
and prints images/s of each and their ratio. Writes a section to
benchmarks/results_train.md.

    .venv/bin/python benchmarks/bench_train.py                 # 500 frames, 256x256, 2 epochs
    .venv/bin/python benchmarks/bench_train.py --frames 64 --size 128 --epochs 1   # quick
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_data(root: Path, frames: int, size: int, seed: int = 0) -> str:
    try:
        from devolens.render.dataset import render_dataset, simulate_tables
    except ImportError:
        sys.path.insert(0, str(ROOT / "tests"))
        from _train_data import make_render_like

        make_render_like(root, embryos=10, per_embryo=max(1, frames // 10), size=size, seed=seed)
        return "synthetic discs (renderer not available)"
    tables = simulate_tables(10, seed=seed)
    per = frames // len(tables) + 1
    times = []
    for t in tables:
        ts = sorted(t["time"].unique())
        step = max(1, len(ts) // per)
        times.append(ts[::step][:per])
    # render each embryo's chosen times (the renderer takes one time list for all tables)
    for i, (tab, ts) in enumerate(zip(tables, times)):
        render_dataset([tab], root / f"e{i}", size=(size, size), times=[int(x) for x in ts], rgb=False, seed=seed + i)
    # merge into one render folder with embryo-prefixed names
    import pandas as pd

    (root / "frames").mkdir()
    (root / "labels").mkdir()
    rows = []
    for i in range(len(tables)):
        df = pd.read_csv(root / f"e{i}" / "frames.csv", keep_default_na=False)
        for _, r in df.iterrows():
            stem = Path(r["file"]).stem
            new = f"e{i}_{stem}"
            shutil.move(root / f"e{i}" / r["file"], root / "frames" / f"{new}.png")
            shutil.move(root / f"e{i}" / "labels" / f"{stem}_labels.tif", root / "labels" / f"{new}_labels.tif")
            r = r.copy()
            r["file"], r["embryo"] = f"frames/{new}.png", f"e{i}"
            rows.append(r)
        shutil.rmtree(root / f"e{i}")
    pd.DataFrame(rows).head(frames).to_csv(root / "frames.csv", index=False)
    return "rendered with devolens.render (simulated embryos, grey)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=500)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_train.md")
    args = ap.parse_args()

    import torch

    from devolens.train.trainer import train

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        t0 = time.perf_counter()
        source = make_data(work / "data", args.frames, args.size)
        t_render = time.perf_counter() - t0
        base = {
            "name": "bench", "task": "segmentation", "seed": 0,
            "data": {"target": "semantic", "channels": 1, "val_fraction": 0.1, "limit": args.frames},
            "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 5},  # smp default decoder widths
            "loss": {"name": "bce_dice"},
            "optimizer": {"name": "adamw", "lr": 1e-3},
            "scheduler": {"name": "none"},
            "augment": {"preset": "nuclei"},
            "train": {"epochs": args.epochs, "batch_size": args.batch_size, "overlay_samples": 0,
                      "threads": args.threads},
            # resume uses the run's saved recipe; amp differs per run folder, so both stay as set
        }
        # fp32 and bf16 epochs alternate (fp32 epoch 1, bf16 epoch 1, fp32 epoch 2, ...) through
        # train(..., resume=True), so both see the same machine load; speed comes from the
        # per-epoch time the trainer records.
        for epoch in range(1, args.epochs + 1):
            for amp in ("none", "bf16"):
                rec = {**base, "train": {**base["train"], "amp": amp}}
                res = train(rec, work / "data", work / f"run_{amp}", epochs=epoch, resume=epoch > 1)
                row = res.history.iloc[-1]
                print(f"{'fp32' if amp == 'none' else amp:>5} epoch {epoch}: {row['n_train'] / row['seconds']:.2f} img/s "
                      f"({row['seconds']:.1f} s), train loss {row['train_loss']:.3f}", flush=True)
        results = {}
        for amp in ("none", "bf16"):
            h = __import__("pandas").read_csv(work / f"run_{amp}" / "history.csv")
            n_train = int(h["n_train"].iloc[0])
            results[amp] = {"n_train": n_train, "ips": n_train * len(h) / float(h["seconds"].sum()),
                            "val_dice": float(h["val_dice"].iloc[-1]), "loss": float(h["train_loss"].iloc[-1])}
            print(f"{amp:>5}: {results[amp]['ips']:.2f} img/s over {len(h)} epochs of {n_train} frames", flush=True)
        ratio = results["bf16"]["ips"] / results["none"]["ips"]
        print(f"bf16 / fp32 speed ratio: {ratio:.2f}x")
        cmd = (f".venv/bin/python benchmarks/bench_train.py --frames {args.frames} --size {args.size} "
               f"--epochs {args.epochs} --batch-size {args.batch_size} --threads {args.threads}")
        text = f"""## Training (devolens train)

Command: `{cmd}`

Data: {args.frames} frames of {args.size}x{args.size} px, {source} (rendering took {t_render:.0f} s);
split by embryo, {results['none']['n_train']} training frames. Model: ResNet18 U-Net (smp, depth 5,
decoder 256-128-64-32-16, random init), batch {args.batch_size}, AdamW, bce+dice, nuclei augmentation,
{args.threads} torch threads, CPU. Images/s = training frames x epochs / epoch time (epoch time
includes the validation pass and data loading). fp32 and bf16 epochs were interleaved so both
saw the same machine load.

| precision | images/s | final train loss | val Dice |
|---|---|---|---|
| fp32 | {results['none']['ips']:.2f} | {results['none']['loss']:.3f} | {results['none']['val_dice']:.3f} |
| bf16 autocast | {results['bf16']['ips']:.2f} | {results['bf16']['loss']:.3f} | {results['bf16']['val_dice']:.3f} |

bf16 / fp32 speed ratio: **{ratio:.2f}x** (measured in the same run; absolute figures depend on
how busy the machine's cores were).
"""
        from devolens.io.atomic import write_text

        write_text(args.out, text)
        print(f"written {args.out}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
