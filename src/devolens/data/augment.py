"""Augmentation pipelines (albumentations): one spatial transform for image and mask,
intensity transforms for the image only.

A pipeline is a preset (per task) of named transforms, each with a probability ``p``; a
``strength`` scalar scales every magnitude (0 = identity, 1 = the preset, 2 = twice as
strong) and the probabilities (capped at 1); ``overrides`` replace a transform's settings
or switch it off (``false``). Images are float32 HxWxC in [0, 1]; masks are integer label
images (spatial transforms use nearest-neighbour interpolation on masks).

Examples
--------
>>> aug = build_augment("nuclei", strength=0.5, overrides={"elastic": False})
>>> out = aug(image=np.zeros((32, 32, 1), np.float32), mask=np.zeros((32, 32), np.uint16))
>>> out["image"].shape, out["mask"].shape
((32, 32, 1), (32, 32))
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from devolens.errors import DevolensError

SPATIAL = ("hflip", "vflip", "rot90", "affine", "elastic", "grid")
INTENSITY = ("brightness_contrast", "gamma", "noise", "blur", "saturate")
TRANSFORMS = SPATIAL + INTENSITY

# Magnitudes at strength 1. Units: affine scale/translate are fractions, rotate degrees;
# elastic alpha/sigma pixels; grid distort fraction; brightness/contrast fraction of range;
# gamma percent deviation from 100; noise std as a fraction of the [0, 1] range; blur sigma px; saturate: the
# highest gain, the image multiplied by 1..gain and clipped (an over-exposed camera or a narrowed display range; in no
# preset: on through a recipe's overrides, e.g. {saturate: {p: 0.2, gain: 3}}).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "nuclei": {
        "hflip": {"p": 0.5}, "vflip": {"p": 0.5}, "rot90": {"p": 0.5},
        "affine": {"p": 0.5, "scale": 0.15, "translate": 0.05, "rotate": 30},
        "elastic": {"p": 0.2, "alpha": 20.0, "sigma": 5.0},
        "brightness_contrast": {"p": 0.5, "brightness": 0.2, "contrast": 0.2},
        "gamma": {"p": 0.3, "gamma": 20},
        "noise": {"p": 0.3, "std": 0.04},
        "blur": {"p": 0.2, "sigma": 1.0},
    },
    "membrane": {
        "hflip": {"p": 0.5}, "vflip": {"p": 0.5}, "rot90": {"p": 0.5},
        "affine": {"p": 0.5, "scale": 0.1, "translate": 0.05, "rotate": 20},
        "grid": {"p": 0.3, "distort": 0.2},
        "brightness_contrast": {"p": 0.5, "brightness": 0.2, "contrast": 0.3},
        "gamma": {"p": 0.3, "gamma": 25},
        "noise": {"p": 0.3, "std": 0.05},
        "blur": {"p": 0.1, "sigma": 0.7},
    },
    "livedead": {
        # intensities carry the class (Draq7 = dead): keep intensity changes mild
        "hflip": {"p": 0.5}, "vflip": {"p": 0.5}, "rot90": {"p": 0.5},
        "affine": {"p": 0.3, "scale": 0.1, "translate": 0.05, "rotate": 15},
        "brightness_contrast": {"p": 0.3, "brightness": 0.1, "contrast": 0.1},
        "noise": {"p": 0.3, "std": 0.02},
        "blur": {"p": 0.1, "sigma": 0.7},
    },
    "population": {
        # counts must not change: no translation/scale that could push nuclei out of frame
        "hflip": {"p": 0.5}, "vflip": {"p": 0.5}, "rot90": {"p": 0.5},
        "brightness_contrast": {"p": 0.5, "brightness": 0.2, "contrast": 0.2},
        "gamma": {"p": 0.3, "gamma": 20},
        "noise": {"p": 0.3, "std": 0.04},
        "blur": {"p": 0.3, "sigma": 1.0},
    },
    "none": {},
}


def resolve_spec(preset: str = "nuclei", overrides: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The transform settings of ``preset`` with ``overrides`` applied.

    ``overrides`` maps a transform name to ``False`` (off), ``True`` (on with the
    defaults of the first preset that has it) or a dict of settings merged over the preset's.
    """
    if preset not in PRESETS:
        raise DevolensError(f"unknown augmentation preset {preset!r}; choose one of {', '.join(PRESETS)}")
    spec = copy.deepcopy(PRESETS[preset])
    for name, val in (overrides or {}).items():
        if name not in TRANSFORMS:
            raise DevolensError(f"unknown augmentation transform {name!r}; choose from {', '.join(TRANSFORMS)}")
        if val is False or val is None:
            spec.pop(name, None)
            continue
        base = spec.get(name) or next((copy.deepcopy(p[name]) for p in PRESETS.values() if name in p), {"p": 0.5})
        if val is True:
            spec[name] = base
        elif isinstance(val, dict):
            base.update(val)
            spec[name] = base
        else:
            raise DevolensError(f"augmentation override for {name!r} must be true, false or a mapping, got {val!r}")
    return spec


def _build_one(name: str, s: float, cfg: dict[str, Any]):
    import albumentations as A
    import cv2

    p = float(min(1.0, max(0.0, float(cfg.get("p", 0.5)) * (1.0 if name in ("hflip", "vflip", "rot90") else min(s, 2.0)))))
    if s <= 0 and name not in ("hflip", "vflip", "rot90"):
        return None
    if p <= 0:
        return None
    if name == "hflip":
        return A.HorizontalFlip(p=p)
    if name == "vflip":
        return A.VerticalFlip(p=p)
    if name == "rot90":
        return A.RandomRotate90(p=p)
    if name == "affine":
        sc, tr, rot = float(cfg.get("scale", 0.1)) * s, float(cfg.get("translate", 0.05)) * s, float(cfg.get("rotate", 20)) * s
        return A.Affine(scale=(1 - sc, 1 + sc), translate_percent=(-tr, tr), rotate=(-rot, rot),
                        border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=p)
    if name == "elastic":
        return A.ElasticTransform(alpha=float(cfg.get("alpha", 20.0)) * s, sigma=float(cfg.get("sigma", 5.0)),
                                  border_mode=cv2.BORDER_CONSTANT, p=p)
    if name == "grid":
        d = float(cfg.get("distort", 0.2)) * s
        return A.GridDistortion(distort_limit=(-d, d), border_mode=cv2.BORDER_CONSTANT, p=p)
    if name == "brightness_contrast":
        b, c = float(cfg.get("brightness", 0.2)) * s, float(cfg.get("contrast", 0.2)) * s
        return A.RandomBrightnessContrast(brightness_limit=(-b, b), contrast_limit=(-c, c), p=p)
    if name == "gamma":
        g = float(cfg.get("gamma", 20)) * s
        return A.RandomGamma(gamma_limit=(max(1.0, 100 - g), 100 + g), p=p)
    if name == "saturate":  # x * (1 + c), c in 0..gain-1, clipped at the top of the range
        gain = max(1.0, 1.0 + (float(cfg.get("gain", 3.0)) - 1.0) * s)
        return A.RandomBrightnessContrast(brightness_limit=(0.0, 0.0), contrast_limit=(0.0, gain - 1.0), p=p)
    if name == "noise":
        return A.GaussNoise(std_range=(0.0, min(1.0, float(cfg.get("std", 0.04)) * s)), p=p)
    if name == "blur":
        sig = max(0.1, float(cfg.get("sigma", 1.0)) * s)
        return A.GaussianBlur(blur_limit=(3, 7), sigma_limit=(0.1, sig), p=p)
    raise DevolensError(f"unknown augmentation transform {name!r}")


def build_augment(preset: str = "nuclei", strength: float = 1.0, overrides: dict[str, Any] | None = None,
                  seed: int | None = None):
    """Build an albumentations pipeline for a task.

    Parameters
    ----------
    preset : {"nuclei", "membrane", "livedead", "population", "none"}
        Transform set for the task.
    strength : float
        Scales every magnitude and probability (flips and rot90 keep their probability);
        0 turns all but flips/rot90 off.
    overrides : dict, optional
        Per-transform settings, e.g. ``{"elastic": False, "noise": {"std": 0.1, "p": 0.8}}``.
    seed : int, optional
        Seed of the pipeline's random draws (datasets reseed it per sample and epoch).

    Returns
    -------
    albumentations.Compose or None
        Called as ``aug(image=img, mask=labels)``; None when nothing is left to apply.
        Spatial transforms (flips, rot90, affine, elastic, grid) run first and move image and
        mask together; intensity transforms (brightness/contrast, gamma, noise, blur) touch
        the image only.
    """
    import albumentations as A

    if float(strength) < 0:
        raise DevolensError(f"augmentation strength must be >= 0, got {strength}")
    spec = resolve_spec(preset, overrides)
    steps = []
    for name in TRANSFORMS:  # spatial first, then intensity
        if name in spec:
            t = _build_one(name, float(strength), spec[name])
            if t is not None:
                steps.append(t)
    if not steps:
        return None
    return A.Compose(steps, seed=seed)


def reseed(aug, seed: int) -> None:
    """Reseed a pipeline so its draws are a function of ``seed`` alone.

    ``Compose.set_random_seed`` gives every transform the *same* seed, so their first
    draws coincide (all transforms with p <= 0.5 then fire or skip together). Here each
    transform gets its own seed derived from ``seed`` and its position.
    """
    import zlib

    aug.set_random_seed(int(seed))
    for i, t in enumerate(aug.transforms):
        t.set_random_seed(zlib.crc32(f"{int(seed)}/{i}".encode()) & 0x7FFFFFFF)
