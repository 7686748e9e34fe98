"""Crowded fields from the three real reference frames: several embryos in one field.

Each reference frame (``$DEVOLENS_DATA/reference_frames``) is segmented alone, as four copies shrunk 0.5x
(``cv2.INTER_AREA``) in a 2x2 grid (flipped copies: a 752x512 field of four embryos at half the magnification), and as
four copies at 1x in a 2x2 grid, with ``load("nuclei", diameter="auto")``; prints the nuclei found and the size
model's estimate of each, and the nuclei found in the 0.5x fields given their true diameter (half the card's
reference diameter) by hand. A size model fitted on fields of one embryo reads such fields as one magnified embryo.

Usage::

    python benchmarks/eval_crowded_fields.py [--zoo DIR] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def grid(frame: np.ndarray) -> np.ndarray:
    """Four copies of ``frame`` in a 2x2 grid, flipped left-right, up-down and both."""
    return np.concatenate([np.concatenate([frame, frame[:, ::-1]], 1),
                           np.concatenate([frame[::-1], frame[::-1, ::-1]], 1)], 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", default=None, help="folder of model folders (default: the package zoo)")
    ap.add_argument("--data", default=os.environ.get("DEVOLENS_DATA", str(Path(__file__).resolve().parents[2] /
                                                                            "shared" / "data")))
    a = ap.parse_args()
    import cv2
    import imageio.v3 as iio

    from devolens.models import load, zoo

    if a.zoo:
        zoo.use_folder(a.zoo)
    files = sorted((Path(a.data) / "reference_frames").glob("*.png"))
    if not files:
        raise SystemExit(f"no reference frames in {a.data}/reference_frames")
    pred = load("nuclei", diameter="auto")
    half = round(pred.card["input"]["diameter"]["reference"] / 2, 1)  # the true diameter of the 0.5x fields
    given = load("nuclei", diameter=half)
    print(f"| frame | alone: nuclei (estimate) | four at 0.5x | four at 0.5x, `--diameter {half}` | four at 1x (2x2) |")
    print("| --- | --- | --- | --- | --- |")
    for f in files:
        frame = iio.imread(f)
        cells = []
        small = grid(cv2.resize(frame, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
        for image in (frame, small, grid(frame)):
            res = pred.predict(image)
            cells.append(f"{res.count} ({pred.last_estimate.magnification:.2f}x)")
        cells.insert(2, str(given.predict(small).count))
        print(f"| {f.stem} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
