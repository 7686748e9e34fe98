"""Acquisition and annotation artifacts, each recorded so detectors can be scored.

Frame artifacts (the ``artifact`` string of a frame's ground truth):

- ``"black"``: the frame is black (laser off, shutter closed): every pixel 0, no labels.
- ``"dark"``: the frame is dimmed to 3-20 % of its brightness (labels kept).
- ``"bright"``: the frame is brightened 2-4x and clipped at the top of the range, so the nuclei
  saturate, as under a lamp flickering up (labels kept). Drawn only when asked for
  (:data:`OPTIONAL_KINDS`): see :func:`plan_artifacts`.
- ``"red_line"``: two or three full-width rows are saturated red (RGB frames only). Not one: a video's 4:2:0
  colour (``render --video``, yuv420p) keeps one colour per two rows, and a red row beside a row of another colour
  came out of it grey, a line ``curate frames`` could not see in the video while ``frames.csv`` recorded it.
- ``"red_patch"``: a rectangle is filled with noisy red (RGB only); labels under it are 0 and the others
  renumbered 1..K in their order (a label wholly under the patch leaves no gap).
- ``"duplicate"``: the frame repeats the previous frame of the sequence (image and labels).
- ``"dropped"``: the frame is missing from the sequence (no image is written).

Table artifact: :func:`annotation_cliff` drops most cells after a time point (curation
stopped), recording the time in ``attrs["cliff_time"]``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "ALL_KINDS",
    "ARTIFACT_KINDS",
    "FRAME_KINDS",
    "OPTIONAL_KINDS",
    "SEQUENCE_KINDS",
    "apply_frame_artifact",
    "plan_artifacts",
    "annotation_cliff",
    "check_kinds",
]

FRAME_KINDS = ("black", "dark", "red_line", "red_patch")
SEQUENCE_KINDS = ("duplicate", "dropped")
#: the kinds a render draws unless told otherwise
ARTIFACT_KINDS = FRAME_KINDS + SEQUENCE_KINDS
#: single-frame kinds a render draws only when asked for (``plan_artifacts(kinds=...)``): which kind a frame
#: gets is drawn from the list of kinds, so adding one to the defaults would change every render of a given seed
OPTIONAL_KINDS = ("bright",)
#: every kind, in the order a plan draws from
ALL_KINDS = ARTIFACT_KINDS + OPTIONAL_KINDS
_RED_KINDS = ("red_line", "red_patch")


def apply_frame_artifact(
    image: np.ndarray, labels: np.ndarray | None, kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Apply one single-frame artifact to an image and its labels (copies are returned).

    Parameters
    ----------
    image : ndarray, uint8, (H, W) or (H, W, 3)
    labels : ndarray, (H, W), optional
        Ground-truth labels to update (black frames and red patches hide nuclei). Integer instance labels
        (0 = background): a red patch zeroes those under it and renumbers the rest 1..K, keeping their order
        (the same ids when none went wholly under it).
    kind : str
        One of :data:`FRAME_KINDS` or :data:`OPTIONAL_KINDS` (``""`` returns the inputs unchanged).
    rng : numpy.random.Generator

    Returns
    -------
    image, labels, info
        ``info`` describes where the artifact is: ``rows`` (red line), ``box``
        (y0, y1, x0, x1 of the red patch) or ``factor`` (dark or bright frame).

    Raises
    ------
    ValueError
        Unknown kind, or a red artifact on a greyscale image.
    """
    if kind == "":
        return image, labels, {}
    if kind not in FRAME_KINDS + OPTIONAL_KINDS:
        raise ValueError(f"unknown frame artifact {kind!r}; choose from {FRAME_KINDS + OPTIONAL_KINDS}")
    img = np.array(image, copy=True)
    lab = None if labels is None else np.array(labels, copy=True)
    h, w = img.shape[:2]
    info: dict = {}
    if kind in _RED_KINDS and (img.ndim != 3 or img.shape[2] < 3):
        raise ValueError(f"{kind} needs an RGB image")
    if kind == "black":
        img[...] = 0
        if lab is not None:
            lab[...] = 0
    elif kind == "dark":
        factor = float(rng.uniform(0.03, 0.2))
        img = np.floor(img.astype(np.float32) * factor).astype(image.dtype)
        info["factor"] = factor
    elif kind == "bright":
        # a lamp flickering up: everything brighter, the nuclei saturated at the top of the range
        factor = float(rng.uniform(2.0, 4.0))
        scaled = img.astype(np.float32) * np.float32(factor)
        if np.issubdtype(image.dtype, np.integer):
            scaled, top = np.floor(scaled), float(np.iinfo(image.dtype).max)
        else:  # a float image in [0, 1]
            top = 1.0
        img = np.clip(scaled, 0.0, top).astype(image.dtype)
        info["factor"] = factor
    elif kind == "red_line":
        t = int(rng.integers(2, 4))  # (at least two rows: see the module's note; rows records those drawn)
        y0 = int(rng.integers(0, max(h - t, 1)))
        img[y0 : y0 + t, :, 0] = rng.integers(200, 256, size=(min(t, h - y0), w))
        img[y0 : y0 + t, :, 1:3] = rng.integers(0, 30, size=(min(t, h - y0), w, img.shape[2] - 1))
        info["rows"] = list(range(y0, min(y0 + t, h)))
    elif kind == "red_patch":
        ph = int(rng.integers(max(h // 12, 2), max(h // 4, 3)))
        pw = int(rng.integers(max(w // 12, 2), max(w // 3, 3)))
        y0 = int(rng.integers(0, h - ph + 1))
        x0 = int(rng.integers(0, w - pw + 1))
        level = int(rng.integers(150, 246))
        patch = rng.integers(level - 40, level + 10, size=(ph, pw)).clip(0, 255)
        img[y0 : y0 + ph, x0 : x0 + pw, 0] = patch
        img[y0 : y0 + ph, x0 : x0 + pw, 1:3] = rng.integers(0, 30, size=(ph, pw, img.shape[2] - 1))
        if lab is not None:
            from devolens.predict.postprocess import relabel_sequential

            lab[y0 : y0 + ph, x0 : x0 + pw] = 0
            lab = relabel_sequential(lab).astype(lab.dtype, copy=False)  # 1..K again, in order: no gap
        info["box"] = (y0, y0 + ph, x0, x0 + pw)
    return img, lab, info


def plan_artifacts(n_frames: int, rate: float, rng: np.random.Generator, *, rgb: bool = True,
                   kinds: Sequence[str] = ARTIFACT_KINDS) -> list[str]:
    """Choose which frames of a sequence get an artifact, and which kind.

    Parameters
    ----------
    n_frames : int
        Length of the sequence.
    rate : float
        Probability in [0, 1] that a frame is corrupted.
    rng : numpy.random.Generator
    rgb : bool
        Allow the red artifacts (RGB frames only).
    kinds : sequence of str
        The kinds to draw from (default :data:`ARTIFACT_KINDS`; :data:`ALL_KINDS` adds the
        optional ones). Taken in the order of :data:`ALL_KINDS` whatever the order given, so the
        same seed and set of kinds give the same plan; the red kinds are left out of a
        greyscale plan.

    Returns
    -------
    list of str
        One entry per frame: ``""`` or one of ``kinds``. The first frame is never ``duplicate``
        or ``dropped``, and a duplicate never follows a dropped frame (a frame that only those
        kinds could corrupt is left clean).

    Raises
    ------
    ValueError
        A rate outside [0, 1], an unknown kind, or no kind that applies (none given, or red
        kinds only on greyscale frames).
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"artifact rate must be in [0, 1], got {rate}")
    kinds = check_kinds(kinds)
    kinds = [k for k in kinds if rgb or k not in _RED_KINDS]
    if not kinds:
        raise ValueError("no artifact kind applies: the red kinds need RGB frames")
    plan: list[str] = []
    for i in range(n_frames):
        if rng.random() >= rate:
            plan.append("")
            continue
        allowed = [k for k in kinds if i > 0 or k not in SEQUENCE_KINDS]
        if i > 0 and plan[-1] == "dropped":
            allowed = [k for k in allowed if k != "duplicate"]
        plan.append(str(rng.choice(allowed)) if allowed else "")
    return plan


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """``kinds`` in the order of :data:`ALL_KINDS`, each once (the order decides a plan's draws).

    Raises
    ------
    ValueError
        Not a sequence of kind names, an unknown kind, or none.
    """
    if not isinstance(kinds, str) and isinstance(kinds, Iterable):
        kinds = tuple(kinds)
    if not isinstance(kinds, tuple) or not all(isinstance(k, str) for k in kinds):
        raise ValueError(f"artifact kinds must be a list of kind names ({', '.join(ALL_KINDS)}), got {kinds!r}")
    unknown = sorted(set(kinds) - set(ALL_KINDS))
    if unknown:
        raise ValueError(f"unknown artifact kind(s) {', '.join(map(repr, unknown))}; choose from {', '.join(ALL_KINDS)}")
    if not kinds:
        raise ValueError(f"no artifact kinds given; choose from {', '.join(ALL_KINDS)}")
    return tuple(k for k in ALL_KINDS if k in set(kinds))


def annotation_cliff(
    table: pd.DataFrame, after: int, *, keep: float = 0.1, seed: int = 0
) -> pd.DataFrame:
    """Drop most cells after a time point, as when curation of a lineage stopped.

    Parameters
    ----------
    table : DataFrame
        Tidy lineage table.
    after : int
        Last fully annotated time point; from ``after + 1`` on only a fixed random subset of
        the cells (``keep`` of them, by name, so the kept cells persist) remains.
    keep : float
        Fraction of cell names kept after the cliff, in [0, 1).
    seed : int

    Returns
    -------
    DataFrame
        A new table; ``attrs["cliff_time"] = after + 1`` (first time point with the fall).
    """
    if not 0.0 <= keep < 1.0:
        raise ValueError(f"keep must be in [0, 1), got {keep}")
    rng = np.random.default_rng(seed)
    late = table["time"].to_numpy() > after
    names = np.unique(table["cell"].to_numpy()[late].astype(str))
    kept = set(names[rng.random(len(names)) < keep])
    drop = late & ~np.isin(table["cell"].to_numpy().astype(str), list(kept))
    out = table.loc[~drop].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    out.attrs["cliff_time"] = int(after) + 1
    return out
