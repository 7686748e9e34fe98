"""Prepare training folders for the zoo's image models from `devolens render` output.

The nuclei and membrane models work at half the frame resolution (``--scale 0.5``): a
752x512 frame becomes 376x256, nuclei stay 10-25 px wide. To spend the CPU on embryo rather
than on black margins, each frame is cut to a ``--crop`` x ``--crop`` window around the
embryo (random offset, seeded). The output is a render-style folder that
``devolens train RECIPE --data DIR`` reads: ``frames/<embryo>_tNNN.png``,
``labels/<embryo>_tNNN_labels.tif`` and ``frames.csv`` (the render's columns).

Usage::

    python scripts/zoo_data.py nuclei OUT RENDER_DIR [RENDER_DIR ...] [--scale 0.5] [--crop 256] [--workers N]
    python scripts/zoo_data.py cells OUT MEMBRANE_RENDER_DIR [...]  # labels = cells (shipped model)
    python scripts/zoo_data.py membrane OUT RENDER_DIR [...]   # labels = membrane mask

``nuclei`` and ``cells`` keep the render's instance labels (the 3-class boundary target
of the recipe then gives interiors and boundaries). For ``membrane`` the label image is
the membrane mask of the render (``membranes/``), downscaled so that thin lines stay
connected (area fraction > 0.2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def _resize(arr: np.ndarray, scale: float, kind: str) -> np.ndarray:
    import cv2

    if scale == 1.0:
        return arr
    h, w = arr.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if kind == "image":
        return cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
    if kind == "mask":  # thin lines: keep any pixel with enough membrane in it
        frac = cv2.resize((arr > 0).astype(np.float32), size, interpolation=cv2.INTER_AREA)
        return (frac > 0.2).astype(np.uint16)
    return cv2.resize(arr, size, interpolation=cv2.INTER_NEAREST)


def _window(mask: np.ndarray, crop: int, rng: np.random.Generator) -> tuple[int, int]:
    h, w = mask.shape
    if h <= crop and w <= crop:
        return 0, 0
    ys, xs = np.nonzero(mask)
    if len(ys):
        cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    else:
        cy, cx = h / 2, w / 2
    jitter = crop * 0.15
    y0 = int(np.clip(cy - crop / 2 + rng.uniform(-jitter, jitter), 0, max(0, h - crop)))
    x0 = int(np.clip(cx - crop / 2 + rng.uniform(-jitter, jitter), 0, max(0, w - crop)))
    return y0, x0


def _names(renders: list[Path]) -> list[pd.DataFrame]:
    """Each render folder's frames (artifact frames left out) with the name each gets in the output
    (column ``name``): ``<embryo>_tNNN``, and the same embryo rendered again in a later folder (other
    pose/optics) ``<embryo>_tNNN_<folder>``, so both are kept (the embryo's name made file-safe, as the
    render's own file names)."""
    from devolens.render.dataset import _safe

    seen: set[str] = set()
    plans = []
    for rdir in renders:
        table = pd.read_csv(rdir / "frames.csv")
        if "artifact" in table:  # artifact frames (a non-empty text) left out
            table = table[~table["artifact"].map(lambda a: isinstance(a, str) and bool(a))]
        names = []
        for _, row in table.iterrows():
            stem = Path(row["file"]).stem
            embryo = _safe(str(row["embryo"]))  # frames.csv holds the table's own name: file names a safe one
            name = stem if stem.startswith(embryo) else f"{embryo}_{stem}"
            if name in seen:
                base, k = f"{name}_{rdir.name}", 2
                name = base
                while name in seen:  # the same folder given twice, or two folders of one name
                    name, k = f"{base}_{k}", k + 1
            seen.add(name)
            names.append(name)
        plans.append(table.assign(name=names))
    return plans


def _folder(kind: str, out: Path, rdir: Path, table: pd.DataFrame, scale: float, crop: int | None,
            rng: np.random.Generator) -> list[dict]:
    """Write one render folder's frames (``table`` from :func:`_names`); returns their frames.csv rows."""
    import tifffile

    from devolens.io.images import read_image, write_label_tif, write_png

    rows = []
    for _, row in table.iterrows():
        stem = Path(row["file"]).stem
        img = read_image(rdir / row["file"])
        if img.ndim == 3:
            img = img[..., 1]  # green channel (as the predictor's "auto" on GFP frames)
        if kind == "membrane":
            lab = read_image(rdir / "membranes" / f"{stem}_membrane.png")
            lab = lab[..., 0] if lab.ndim == 3 else lab
            lab = _resize(lab, scale, "mask")
        else:
            lab = tifffile.imread(rdir / "labels" / f"{stem}_labels.tif")
            lab = _resize(lab, scale, "labels")
        img = _resize(img, scale, "image")
        name = row["name"]
        if crop:
            cell = tifffile.imread(rdir / "labels" / f"{stem}_labels.tif") if kind == "membrane" else None
            ref = lab if cell is None else _resize(cell, scale, "labels")
            y0, x0 = _window(ref > 0, crop, rng)
            img = img[y0 : y0 + crop, x0 : x0 + crop]
            lab = lab[y0 : y0 + crop, x0 : x0 + crop]
            if img.shape != (crop, crop):  # small frames: pad to the crop size
                ph, pw = crop - img.shape[0], crop - img.shape[1]
                img = np.pad(img, ((0, ph), (0, pw)))
                lab = np.pad(lab, ((0, ph), (0, pw)))
        write_png(np.ascontiguousarray(img), out / "frames" / f"{name}.png")
        write_label_tif(np.ascontiguousarray(lab).astype(np.uint16), out / "labels" / f"{name}_labels.tif")
        rec = {k: row[k] for k in table.columns if k not in ("file", "name")}
        rec["file"] = f"frames/{name}.png"
        rec["embryo"] = str(row["embryo"])
        rec["artifact"] = ""
        rows.append(rec)
    return rows


def prepare(kind: str, out: Path, renders: list[Path], scale: float = 0.5, crop: int | None = 256, seed: int = 0,
            workers: int | None = None) -> int:
    """Write the training folder; returns the number of frames written.

    ``workers`` None: one process, one random stream for all crop windows (how the shipped models' data were
    made). A number: the render folders shared among that many processes, each folder's windows drawn from
    its own stream (seeded by ``seed`` and the folder's position), so the output does not depend on the
    number (but differs from the one-process default)."""
    (out / "frames").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    plans = _names(renders)
    if workers is None:
        rng = np.random.default_rng(seed)
        parts = [_folder(kind, out, rdir, table, scale, crop, rng) for rdir, table in zip(renders, plans)]
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=max(1, int(workers))) as pool:
            jobs = [pool.submit(_folder, kind, out, rdir, table, scale, crop, np.random.default_rng([seed, k]))
                    for k, (rdir, table) in enumerate(zip(renders, plans))]
            parts = [job.result() for job in jobs]
    rows = [r for part in parts for r in part]
    cols = ["file", "time", "embryo", "A", "E", "M", "P", "C", "D", "Z", "total", "artifact"]
    df = pd.DataFrame(rows)
    df = df[[c for c in cols if c in df.columns]]
    if (out / "frames.csv").exists():  # several calls add to one folder
        old = pd.read_csv(out / "frames.csv", keep_default_na=False)
        df = pd.concat([old[~old["file"].isin(df["file"])], df], ignore_index=True)
    df.to_csv(out / "frames.csv", index=False)
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=("nuclei", "cells", "membrane"),
                    help="nuclei / cells: the render's instance labels; membrane: its membrane mask")
    ap.add_argument("out", type=Path)
    ap.add_argument("renders", type=Path, nargs="+")
    ap.add_argument("--scale", type=float, default=0.5)
    ap.add_argument("--crop", type=int, default=256, help="crop side in pixels at the working scale (0 = whole frame)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None,
                    help="share the render folders among N processes (each folder's crops then drawn from its own "
                         "seeded stream: the output does not depend on N, but differs from the default, one process)")
    a = ap.parse_args()
    n = prepare(a.kind, a.out, a.renders, a.scale, a.crop or None, a.seed, a.workers)
    print(f"{n} frames -> {a.out}")


if __name__ == "__main__":
    main()
