"""Calibrate the int8 network of a zoo segmentation model and store its ranges in the card.

Usage::

    python scripts/zoo_int8.py nuclei --renders runs/zoo/render/calib_L2 runs/zoo/render/calib_sim \
        [--zoo src/devolens/models/zoo] [--frames 48] [--metrics runs/zoo/eval_nuclei_int8.json]
    python scripts/zoo_int8.py livedead --wells runs/ld/cal/w100.tif runs/ld/cal/w101.tif [--frames 48]

For ``livedead`` the calibration images are ``--wells`` (simulated training wells, ``devolens
simulate well`` with training seeds), cut into the predictor's windows and normalised as it does.

The model's float network runs on the clean frames of ``--renders`` (renders of TRAINING
embryos or fresh simulated ones, never the held-out embryos), preprocessed exactly as at
inference (channel, resize, percentile normalisation, content box, padding); a histogram
observer per activation picks its int8 grid. The scales and zero points go into ``card.json`` under
``int8`` (with the command and the data), and ``card.md`` is rewritten. No quantized model
is saved: the predictors quantize the fp16 weights when they load (about 0.2 s).
``--metrics`` adds the held-out metrics measured with ``--precision int8`` by
``benchmarks/eval_zoo.py`` to the card (``metrics_int8``).

Re-run after shipping new weights (``scripts/zoo_ship.py`` writes a card without ``int8``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def calibration_frames(render_dirs: list[Path], frames: int, seed: int = 0) -> list[Path]:
    """Up to ``frames`` clean frame files spread over the render folders and stages."""
    files = []
    for d in render_dirs:
        df = pd.read_csv(d / "frames.csv")
        df = df[~df["artifact"].notna() | (df["artifact"].astype(str) == "")]
        files += [d / f for f in df["file"]]
    if not files:
        raise SystemExit("no clean frames in the render folders")
    idx = np.linspace(0, len(files) - 1, min(frames, len(files))).round().astype(int)
    return [files[i] for i in sorted(set(idx))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", help="zoo segmentation model (nuclei, membrane)")
    ap.add_argument("--renders", type=Path, nargs="+", default=[], help="render folders of training embryos")
    ap.add_argument("--wells", type=Path, nargs="+", default=[], help="livedead: simulated training wells (TIFF)")
    ap.add_argument("--zoo", type=Path, default=ROOT / "src" / "devolens" / "models" / "zoo")
    ap.add_argument("--frames", type=int, default=48, help="calibration frames (spread over the folders)")
    ap.add_argument("--metrics", type=Path, default=None, help="eval_zoo.py JSON measured with --precision int8")
    ap.add_argument("--metrics-only", action="store_true",
                    help="only add --metrics to the card's int8 section, keeping its calibration (measured with it)")
    a = ap.parse_args()

    import torch

    from devolens.io.images import read_image
    from devolens.models import zoo
    from devolens.models.quantize import ENGINE, calibrate
    from zoo_ship import write_card

    zoo.use_folder(a.zoo)
    card = zoo.card(a.name)
    if a.metrics_only:  # the held-out figures measured with the calibration the card holds
        if a.name == "livedead":  # its card.md is written by scripts/eval_livedead.py
            raise SystemExit("--metrics-only: nuclei and membrane models")
        if a.metrics is None or "int8" not in card:
            raise SystemExit("--metrics-only needs --metrics and a card with an int8 section (calibrate first)")
        card["int8"]["metrics"] = json.loads(a.metrics.read_text())
        write_card(card, a.zoo / a.name)
        print(f"int8 metrics -> {a.zoo / a.name / 'card.json'}")
        return
    if a.name == "livedead" or a.wells:
        from devolens.predict.livedead import _LOG_SCALE, LiveDeadPredictor

        import tifffile

        if not a.wells:
            raise SystemExit("livedead needs --wells")
        pred = LiveDeadPredictor.load(a.name, precision="fp32")
        model, win = pred.model, pred.window
        sources = [str(w) for w in a.wells]

        def windows():
            per_well = max(1, a.frames // len(a.wells))
            for w in a.wells:
                img = tifffile.imread(w).astype(np.float32)
                ys = range(0, img.shape[1] - win + 1, win)
                xs = range(0, img.shape[2] - win + 1, win)
                grid = [(y, x) for y in ys for x in xs]
                for i in sorted(set(np.linspace(0, len(grid) - 1, min(per_well, len(grid))).round().astype(int))):
                    y, x = grid[i]
                    yield torch.log1p(torch.from_numpy(img[None, :, y:y + win, x:x + win].copy())) / _LOG_SCALE

        calibration_windows = list(windows())  # a few dozen 512 px windows (~2 MB each)
        n_images = len(calibration_windows)

        def batches():
            return iter(calibration_windows)
    else:
        if not a.renders:
            raise SystemExit("give --renders (render folders of training embryos)")
        pred = zoo.load(a.name, precision="fp32")
        net = pred.network
        files = calibration_frames(a.renders, a.frames)
        sources = [d.name for d in a.renders]
        n_images = len(files)
        model = net.model

        def batches():
            for f in files:
                prep = net.prepare(read_image(f))
                y0, y1, x0, x1 = net._content_box([prep])
                padded, _ = net._pad(prep[y0:y1, x0:x1])
                yield torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32))[None, None].expand(
                    -1, net.in_channels, -1, -1)

    model = model.to(memory_format=torch.contiguous_format)
    params = calibrate(model, batches())
    card["int8"] = {
        "engine": ENGINE,
        "scheme": "static post-training quantization: weights int8 per output channel (symmetric), activations "
                  "uint8 per tensor (histogram observer), quantized at load time from the fp16 weights",
        "calibration": (f"{n_images} windows of the simulated training wells " + ", ".join(Path(w).name for w in sources)
                        if a.wells else f"{n_images} clean frames of " + ", ".join(sources)
                        + " (renders of training embryos / fresh simulated embryos; held-out embryos never used)"),
        "command": "python scripts/zoo_int8.py " + a.name + (" --wells " + " ".join(sources) if a.wells else
                                                              " --renders " + " ".join(str(d) for d in a.renders))
                   + f" --frames {a.frames}",
        "activations": {k: [float(scale), int(zero)] for k, (scale, zero) in params.items()},
    }
    if a.metrics is not None:
        card["int8"]["metrics"] = json.loads(a.metrics.read_text())
    folder = a.zoo / a.name
    if a.name == "livedead":  # its card.md is written by scripts/eval_livedead.py: splice the section in
        from eval_livedead import splice_int8_section

        splice_int8_section(folder, card)  # card.json and card.md's int8 section
    else:
        write_card(card, folder)
    print(f"{len(params)} activation scales/zero points from {n_images} images -> {folder / 'card.json'}")


if __name__ == "__main__":
    main()
