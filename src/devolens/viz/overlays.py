"""Overlays of predictions on images: true positives green, false positives red, false
negatives blue, a mask's 'ignore' regions hatched grey; and an animated GIF of training progress
from a run's fixed validation samples (``RUN/samples/epoch_NNN.npz`` written by
:func:`devolens.train.trainer.train`, whose ``truth`` is 255 where ignored).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devolens.errors import DevolensError
from devolens.io.atomic import atomic_path

TP_COLOUR = (0, 200, 0)
FP_COLOUR = (230, 0, 0)
FN_COLOUR = (40, 90, 255)
#: the hatching of 'ignore' pixels (:func:`devolens.data.datasets.ignore_label`): neither truth nor error
IGNORE_COLOUR = (150, 150, 150)
#: ``truth`` of the samples a run keeps (``samples/epoch_NNN.npz``) where the mask says 'ignore'
IGNORED_TRUTH = 255


def _grey_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 3:
        img = img[..., :3].max(axis=-1)
    img = img.astype(np.float32)
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return np.repeat((img * 255).astype(np.uint8)[..., None], 3, axis=-1)


def overlay_errors(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, alpha: float = 0.5,
                   instances: bool = False, ignore: np.ndarray | None = None) -> np.ndarray:
    """Colour correct and wrong pixels (or objects) over a greyscale copy of ``image``.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C)
        The input image (any dtype; shown contrast-stretched in grey).
    truth, pred : ndarray (H, W)
        Masks (non-zero = foreground) or, with ``instances``, instance label images.
    alpha : float
        Opacity of the colours (0..1).
    instances : bool
        Colour whole objects: matched predicted objects (IoU > 0.5) green, unmatched
        predictions red, missed true objects blue. Otherwise pixel-wise: TP green,
        FP red, FN blue.
    ignore : ndarray (H, W) of bool, optional
        The pixels the mask marks 'ignore' (a run's samples: ``truth == 255``,
        :data:`IGNORED_TRUTH`): hatched grey, and, as the scores treat them, neither truth to
        find nor errors (with ``instances``, a prediction lying mostly on them is no false
        positive, :func:`devolens.train.metrics.match_instances`).

    Returns
    -------
    ndarray (H, W, 3) uint8
    """
    base = _grey_rgb(image).astype(np.float32)
    t, p = np.asarray(truth), np.asarray(pred)
    if t.shape != p.shape or t.shape != base.shape[:2]:
        raise DevolensError(f"image {base.shape[:2]}, truth {t.shape} and prediction {p.shape} differ in size")
    void = np.zeros(t.shape, bool) if ignore is None else np.asarray(ignore, bool)
    if void.shape != t.shape:
        raise DevolensError(f"the ignored pixels {void.shape} and truth {t.shape} differ in size")
    if instances:
        from devolens.train.metrics import IGNORED_SHARE, match_instances

        t = np.where(void, 0, t).astype(np.int64)
        if void.any():  # the ignored pixels as one ignored object, as the scores match them
            t[void] = int(t.max()) + 1
            m = match_instances(p, t, ignore=[int(t.max())])
        else:
            m = match_instances(p, t)
        matched_p = np.isin(p, m["pairs"][:, 0]) & (p > 0)
        matched_t = np.isin(t, m["pairs"][:, 1]) & (t > 0)
        # predictions lying mostly on ignored pixels are no false positives
        ids, inv = np.unique(np.asarray(p).ravel(), return_inverse=True)
        share = np.bincount(inv, weights=void.ravel().astype(np.float64), minlength=len(ids)) / np.maximum(
            np.bincount(inv, minlength=len(ids)), 1)
        on_void = (share >= IGNORED_SHARE)[inv].reshape(p.shape)
        tp, fp, fn = matched_p, (p > 0) & ~matched_p & ~on_void, (t > 0) & ~void & ~matched_t & ~matched_p
    else:
        tp, fp, fn = (t > 0) & (p > 0), (t == 0) & (p > 0), (t > 0) & (p == 0)
    for mask, colour in ((tp, TP_COLOUR), (fp, FP_COLOUR), (fn, FN_COLOUR)):
        mask = mask & ~void
        base[mask] = (1 - alpha) * base[mask] + alpha * np.asarray(colour, np.float32)
    if void.any():  # hatched: grey diagonal stripes 2 px wide, the image between them
        yy, xx = np.indices(void.shape)
        stripes = void & ((yy + xx) % 4 < 2)
        base[stripes] = (1 - alpha) * base[stripes] + alpha * np.asarray(IGNORE_COLOUR, np.float32)
    return np.clip(base, 0, 255).astype(np.uint8)


def _label_strip(text: str, width: int, height: int = 14) -> np.ndarray:
    """A dark strip with ``text`` drawn in a tiny built-in bitmap font (digits, letters)."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (width, height), (20, 20, 20))
    ImageDraw.Draw(im).text((3, 1), text, fill=(235, 235, 235))
    return np.asarray(im)


def sample_panel(samples: dict[str, np.ndarray], title: str = "", instances: bool = False) -> np.ndarray:
    """One row of overlays for the fixed samples of one epoch (uint8 RGB); pixels whose ``truth`` is
    :data:`IGNORED_TRUTH` (the mask's 'ignore' regions) are hatched, not drawn as truth."""
    tiles = []
    for i in range(len(samples["image"])):
        void = np.asarray(samples["truth"][i]) == IGNORED_TRUTH  # the mask's 'ignore' regions (not foreground)
        if instances and "pred_labels" in samples:
            tiles.append(overlay_errors(samples["image"][i], samples["truth_labels"][i], samples["pred_labels"][i],
                                        instances=True, ignore=void))
        else:
            tiles.append(overlay_errors(samples["image"][i], samples["truth"][i], samples["pred"][i], ignore=void))
    if not tiles:
        raise DevolensError("no samples to draw")
    gap = np.full((tiles[0].shape[0], 2, 3), 255, np.uint8)
    row = np.concatenate(sum(([t, gap] for t in tiles), [])[:-1], axis=1)
    if title:
        row = np.concatenate([_label_strip(title, row.shape[1]), row], axis=0)
    return row


def training_gif(run_dir: str | Path, path: str | Path | None = None, fps: float = 2.0, instances: bool = False,
                 scale: int | None = None) -> Path:
    """Assemble the per-epoch overlays of a run into an animated GIF.

    Parameters
    ----------
    run_dir : str or Path
        A training run folder with ``samples/epoch_NNN.npz``.
    path : str or Path, optional
        Output GIF (default ``RUN/progress.gif``), written atomically.
    fps : float
        Frames (epochs) per second.
    instances : bool
        Object-level colours instead of pixel-level (see :func:`overlay_errors`).
    scale : int, optional
        Integer upscaling of small images (default: to at least 128 px high).

    Returns
    -------
    Path
        The GIF.
    """
    import imageio.v2 as imageio

    run_dir = Path(run_dir)
    files = sorted((run_dir / "samples").glob("epoch_*.npz"))
    if not files:
        raise DevolensError("no per-epoch samples (samples/epoch_NNN.npz) in this run", path=run_dir)
    frames = []
    for f in files:
        with np.load(f) as z:
            s = {k: z[k] for k in z.files}
        epoch = int(f.stem.split("_")[1]) + 1
        h = s["image"].shape[1]
        k = scale or max(1, int(np.ceil(128 / max(h, 1))))
        if k > 1:
            s = {key: np.repeat(np.repeat(v, k, axis=1), k, axis=2) for key, v in s.items()}
        frames.append(sample_panel(s, f"epoch {epoch}", instances))
    shape = frames[0].shape
    frames = [fr if fr.shape == shape else np.resize(fr, shape) for fr in frames]
    out = Path(path) if path is not None else run_dir / "progress.gif"
    with atomic_path(out) as tmp:
        imageio.mimsave(tmp, frames, format="GIF", duration=1.0 / fps, loop=0)
    return out
