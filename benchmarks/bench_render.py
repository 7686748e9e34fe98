"""Frames per second of nuclei frames (256x256, with labels) from the sprite renderer.

Baseline in the same run: the naive way, a 3D volume (256x256 x 64 planes) with filled
ellipsoids, an anisotropic Gaussian PSF and a maximum projection.

Usage: .venv/bin/python benchmarks/bench_render.py [--frames 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from scipy import ndimage

from devolens.lineage.simulate import simulate_embryo
from devolens.render.geometry import default_pose, embryo_geometry, to_frame
from devolens.render.nuclei import render_nuclei_frame

SIZE = (256, 256)
_TABLES = None


def _tables():
    global _TABLES
    if _TABLES is None:
        _TABLES = [simulate_embryo(s, n_cells=360) for s in range(2)]
    return _TABLES


def _jobs(n):
    tabs = _tables()
    jobs = []
    for i in range(n):
        ti = i % len(tabs)
        times = np.unique(tabs[ti]["time"])
        jobs.append((ti, int(times[(i * 37) % len(times)]), i))
    return jobs


def _render(job):
    ti, t, seed = job
    f = render_nuclei_frame(_tables()[ti], t, size=SIZE, seed=seed, pose="random")
    return int(f.labels.max())


def volume_baseline(table, t, nz=64):
    """Naive renderer: voxelise ellipsoids in a 3D volume, blur (z more than xy), MIP."""
    geom = embryo_geometry(table)
    pose = default_pose(geom, SIZE)
    rows = table[table["time"] == t]
    u, v, d = to_frame(geom, pose, rows["x"], rows["y"], rows["z"])
    r = rows["size"].to_numpy() / 2 * pose.scale
    dz = geom.depth * pose.scale / nz
    zc = (d + geom.depth * pose.scale / 2) / dz
    vol = np.zeros((nz,) + SIZE, np.float32)
    lab = np.zeros((nz,) + SIZE, np.uint16)
    zz, yy, xx = np.ogrid[0:nz, 0:SIZE[0], 0:SIZE[1]]
    for i in range(len(u)):
        m = ((xx - u[i]) ** 2 + (yy - v[i]) ** 2) / r[i] ** 2 + ((zz - zc[i]) * dz) ** 2 / r[i] ** 2 <= 1
        vol[m] = 1.0 * np.exp(-zc[i] / nz)
        lab[m] = i + 1
    vol = ndimage.gaussian_filter(vol, (3.0 / dz * 3, 1.5, 1.5))
    mip = vol.max(0)
    first = np.argmax(lab > 0, axis=0)
    labels = np.take_along_axis(lab, first[None], 0)[0]
    return mip, labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    tabs = _tables()
    counts = [int((t.groupby("time").size()).mean()) for t in tabs]
    print(f"frames {SIZE[0]}x{SIZE[1]} RGB + uint16 labels, random optics and pose; "
          f"simulated embryos, mean {np.mean(counts):.0f} nuclei per frame over their timelapses")
    jobs = _jobs(args.frames)
    _render(jobs[0])
    t0, c0 = time.perf_counter(), time.process_time()
    for j in jobs:
        _render(j)
    one = len(jobs) / (time.perf_counter() - t0)
    cpu = len(jobs) / (time.process_time() - c0)
    print(f"sprite renderer, 1 process : {one:6.1f} frames/s wall; {cpu:6.1f} frames per CPU-second "
          f"(= frames/s on a free core; x2 cores = {2 * cpu:.0f}/s; load now {os.getloadavg()[0]:.1f})")
    if args.workers > 1:
        ctx = mp.get_context("fork")
        with ctx.Pool(args.workers) as pool:
            pool.map(_render, jobs[: args.workers * 2])
            t0 = time.perf_counter()
            pool.map(_render, jobs, chunksize=8)
            many = len(jobs) / (time.perf_counter() - t0)
        print(f"sprite renderer, {args.workers} processes: {many:6.1f} frames/s  (target >= 20)")
    nb = 6
    t0, c0 = time.perf_counter(), time.process_time()
    for ti, t, _ in jobs[:nb]:
        volume_baseline(tabs[ti], t)
    base = nb / (time.perf_counter() - t0)
    base_cpu = nb / (time.process_time() - c0)
    print(f"baseline 3D volume + PSF + MIP, 1 process: {base:6.2f} frames/s wall; {base_cpu:6.2f} per CPU-second")
    print(f"speed-up of the sprite renderer over the volume baseline: {one / base:.0f}x wall, {cpu / base_cpu:.0f}x CPU")


if __name__ == "__main__":
    main()
