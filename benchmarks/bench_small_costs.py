"""Two small per-run costs of `devolens segment nuclei`, each against the way it was done before, in one run.

- **Label TIFF** (``devolens.io.images.write_label_tif``): milliseconds and bytes per 752x512 label image of a
  simulated embryo (50-350 cells, ground truth of the renderer), deflate level 1 (before) vs level 6 (now), both
  through tifffile with imagecodecs (libdeflate), best of ``--repeats``.
- **Video probe** (``devolens.io.video.video_info``: frame rate, size and frame count for the progress bar and
  the overlay video): CPU seconds of the ffmpeg child process that reads the header, imageio's default reader
  (before: ffmpeg starts a decoding thread per core and decodes ahead until the pipe is full) vs one thread and
  one frame (now), on the benchmark video of ``bench_segment.py`` (rendered there if missing), median of
  ``--repeats``. The metadata of both are compared.
- **Noise guard's glance** (``devolens.predict.postprocess._clearly_bright``, run on every frame since the
  forty-third session): milliseconds per frame of the benchmark video (its green channel, as the nuclei model reads
  it), the medians and ranks sorted (before: the float path, which float frames still take) vs counted from the
  values (now, for 8- and 16-bit frames), best of ``--repeats``; the verdicts are compared.

Usage::

    python benchmarks/bench_small_costs.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _labels(n: int) -> list[np.ndarray]:
    from devolens.lineage.simulate import simulate_embryo
    from devolens.render.nuclei import render_nuclei_frame

    table = simulate_embryo(3, n_cells=360)
    times = np.unique(table["time"])
    counts = table.groupby("time").size()
    later = [t for t in times if counts[t] >= 50]
    picks = [later[i] for i in np.linspace(0, len(later) - 1, n).round().astype(int)]
    return [render_nuclei_frame(table, int(t), size=(512, 752), seed=i).labels.astype(np.uint16)
            for i, t in enumerate(picks)]


def _tif(labels: list[np.ndarray], level: int, repeats: int) -> tuple[float, float]:
    import tifffile

    best, size = float("inf"), 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        size = 0
        for lab in labels:
            buf = io.BytesIO()
            tifffile.imwrite(buf, lab, compression="zlib", compressionargs={"level": level})
            size += buf.tell()
        best = min(best, time.perf_counter() - t0)
    return best / len(labels) * 1e3, size / len(labels)


def _probe_cpu(video: Path, repeats: int, **kw) -> tuple[float, dict]:
    import imageio.v2 as iio

    cpu = []
    meta: dict = {}
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        reader = iio.get_reader(str(video), format="FFMPEG", **kw)
        meta = dict(reader.get_meta_data())
        reader.close()  # waits for the child: its CPU is counted in RUSAGE_CHILDREN
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(cpu), meta


def _glance(frames: list[np.ndarray], repeats: int, as_float: bool) -> tuple[float, list[bool]]:
    from devolens.predict.postprocess import _clearly_bright

    frames = [f.astype(np.float32) for f in frames] if as_float else frames
    best, verdicts = float("inf"), []
    for _ in range(repeats):
        t0 = time.perf_counter()
        verdicts = [_clearly_bright(f) for f in frames]
        best = min(best, time.perf_counter() - t0)
    return best / len(frames) * 1e3, verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--frames", type=int, default=20, help="label images written per repeat")
    a = ap.parse_args()

    labels = _labels(a.frames)
    cells = [int(lab.max()) for lab in labels]
    print(f"label images: {len(labels)} of 752x512 ({min(cells)}-{max(cells)} nuclei)")
    for level, what in ((1, "before"), (6, "now")):
        ms, size = _tif(labels, level, a.repeats)
        print(f"  deflate level {level} ({what}): {ms:.2f} ms and {size / 1024:.1f} KiB per label image")

    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_segment", ROOT / "benchmarks" / "bench_segment.py")
    bench_segment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_segment)
    video = bench_segment._video(0)
    from devolens.io.video import video_info

    old, meta_old = _probe_cpu(video, a.repeats)
    new, meta_new = _probe_cpu(video, a.repeats, input_params=["-threads", "1"], output_params=["-frames:v", "1"])
    shipped = video_info(video)
    print(f"video probe of {video.relative_to(ROOT)}: ffmpeg CPU {old:.3f} s (imageio's default reader, before) vs "
          f"{new:.3f} s (one thread, one frame, now): {old / max(new, 1e-9):.2f}x less; "
          f"same metadata: {meta_old == meta_new == shipped}")

    import imageio.v3 as iio

    greens = [np.ascontiguousarray(f[..., 1]) for _, f in zip(range(60), iio.imiter(video))]
    old, v_old = _glance(greens, a.repeats, as_float=True)
    new, v_new = _glance(greens, a.repeats, as_float=False)
    print(f"noise guard's glance on {len(greens)} frames of {video.relative_to(ROOT)}: {old:.2f} ms a frame sorted "
          f"(before) vs {new:.2f} ms counted (now): {old / max(new, 1e-9):.1f}x less; same verdicts: {v_old == v_new} "
          f"({sum(v_new)} of {len(v_new)} clearly bright)")


if __name__ == "__main__":
    main()
