"""Corrupt-frame curation scored against the artifacts recorded by the renderer.

For each seed, renders two simulated embryos with artifacts, bright frames (a lamp flickering
up, nuclei saturated) among them (the same as ``devolens render --simulate 2 --artifacts 0.2
--video --seed S --out DIR`` with ``artifact_kinds=ALL_KINDS``: the command line draws the
default kinds only; ``--no-bright`` renders exactly what it does), runs the curator on the PNG
folder and on the mp4 video, and prints precision and recall per artifact kind and overall
(any artifact vs clean). Speed: frames per second of the curator, as a ratio against merely
decoding the same frames in the same run.

Usage:
    .venv/bin/python benchmarks/bench_curate.py [--seeds 1 2 3 4] [--cache DIR]
        [--artifacts 0.2] [--simulate 2] [--grey] [--vary frame] [--pose random] [--no-bright]

Renders are kept in --cache (default /tmp/devolens_bench_curate) and reused.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from devolens.curate.frames import KINDS, curate_path, iter_path_frames
from devolens.render.artifacts import ALL_KINDS, ARTIFACT_KINDS

SCORED = ("black", "dark", "bright", "red_line", "red_patch", "duplicate", "dropped")


def render(seed: int, folder: Path, rate: float, n: int, grey: bool, vary: str, pose: str, bright: bool) -> Path:
    """Render (or reuse) one dataset with artifacts and a video."""
    if (folder / "frames.csv").exists() and (folder / "video.mp4").exists():
        return folder
    from devolens.render.dataset import render_dataset, simulate_tables

    tables = simulate_tables(n, seed=seed)
    render_dataset(tables, folder, artifacts=rate, artifact_kinds=ALL_KINDS if bright else ARTIFACT_KINDS,
                   video=True, seed=seed, rgb=not grey, prefix=True, vary=vary, pose=pose)
    return folder


def match(folder: Path, mode: str) -> tuple[pd.DataFrame, float, float]:
    """Truth and prediction side by side; (table, curate seconds, decode-only seconds)."""
    truth = pd.read_csv(folder / "frames.csv", keep_default_na=False, dtype={"artifact": str})
    src = folder / "frames" if mode == "png" else folder / "video.mp4"
    t0 = time.perf_counter()
    frames, _, _ = iter_path_frames(src)
    n_read = sum(1 for _ in frames)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep = curate_path(src)
    t_cur = time.perf_counter() - t0
    assert n_read == int(rep["frame"].notna().sum())
    if mode == "png":
        truth["key"] = truth["embryo"].astype(str) + "|" + truth["time"].astype(str)
        rep = rep.assign(key=rep["sequence"].astype(str) + "|" + rep["time"].astype(str))
        m = truth.merge(rep[["key", "flag"]], on="key", how="left")
    else:  # the video holds the written frames in frames.csv order; dropped ones are absent
        tw = truth[truth["artifact"] != "dropped"].reset_index(drop=True)
        if len(tw) != len(rep):
            raise SystemExit(f"{src}: {len(rep)} frames decoded, {len(tw)} expected")
        m = tw.assign(flag=rep["flag"].to_numpy())
    m["flag"] = m["flag"].fillna("").astype(str)
    return m, t_cur, t_read


def scores(m: pd.DataFrame) -> dict[str, tuple[int, int, int]]:
    """kind -> (true positives, predicted, actual); 'any' = flagged vs any artifact."""
    out = {}
    for k in SCORED:
        tp = int(((m["artifact"] == k) & (m["flag"] == k)).sum())
        out[k] = (tp, int((m["flag"] == k).sum()), int((m["artifact"] == k).sum()))
    a, f = m["artifact"] != "", m["flag"] != ""
    out["any"] = (int((a & f).sum()), int(f.sum()), int(a.sum()))
    return out


def fmt(tp: int, pred: int, act: int) -> str:
    p = f"{tp / pred:.3f}" if pred else "  -  "
    r = f"{tp / act:.3f}" if act else "  -  "
    return f"P {p} R {r} ({tp}/{pred}/{act})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/devolens_bench_curate"))
    ap.add_argument("--artifacts", type=float, default=0.2)
    ap.add_argument("--simulate", type=int, default=2)
    ap.add_argument("--grey", action="store_true", help="greyscale frames (no red artifacts)")
    ap.add_argument("--vary", default="embryo", help="'frame': new optics every frame (stress test)")
    ap.add_argument("--pose", default="default", help="'random': random embryo pose")
    ap.add_argument("--no-bright", dest="bright", action="store_false",
                    help="no bright frames: the default kinds of `devolens render` (the renders of earlier figures)")
    args = ap.parse_args()

    totals = {mode: {k: np.zeros(3, int) for k in (*SCORED, "any")} for mode in ("png", "video")}
    times = {mode: [0.0, 0.0, 0] for mode in ("png", "video")}
    confusion = {mode: [] for mode in ("png", "video")}
    for seed in args.seeds:
        tag = f"s{seed}_a{args.artifacts}_n{args.simulate}" + ("_grey" if args.grey else "")
        if args.vary != "embryo" or args.pose != "default":
            tag += f"_{args.vary}_{args.pose}"
        tag += "_bright" if args.bright else ""
        folder = render(seed, args.cache / tag, args.artifacts, args.simulate, args.grey, args.vary, args.pose,
                        args.bright)
        for mode in ("png", "video"):
            m, t_cur, t_read = match(folder, mode)
            sc = scores(m)
            for k, v in sc.items():
                totals[mode][k] += np.array(v)
            times[mode][0] += t_cur
            times[mode][1] += t_read
            times[mode][2] += int(len(m) - (m["artifact"] == "dropped").sum())
            confusion[mode].append(m[["artifact", "flag"]])
            print(f"seed {seed} {mode:5s} frames {len(m):4d}  " + "  ".join(
                f"{k} {fmt(*sc[k])}" for k in (*SCORED, "any") if sc[k][1] or sc[k][2]), flush=True)

    print()
    print(f"seeds {args.seeds}, --simulate {args.simulate} --artifacts {args.artifacts}"
          + (" --grey" if args.grey else "") + f" --vary {args.vary} --pose {args.pose}"
          + ("" if args.bright else " --no-bright") + "; P = precision, R = recall (true pos / flagged / actual)")
    for mode in ("png", "video"):
        print(f"\n[{mode}]")
        for k in (*SCORED, "any"):
            note = ("  (not in the stream: the rendered video leaves the frame out with continuous timestamps)"
                    if mode == "video" and k == "dropped" else "")
            print(f"  {k:10s} {fmt(*totals[mode][k])}{note}")
        c = pd.concat(confusion[mode])
        print(pd.crosstab(c["artifact"].replace("", "(clean)"), c["flag"].replace("", "(clean)")).to_string())
        t_cur, t_read, n = times[mode]
        print(f"  speed: {n / t_cur:.1f} frames/s curating vs {n / t_read:.1f} frames/s decoding only "
              f"(curation costs {t_cur / t_read:.2f}x the decode time)")
    print(f"\nkinds reported: {', '.join(KINDS)}")


if __name__ == "__main__":
    main()
