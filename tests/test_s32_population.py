"""The whole-frame regressor's framing of frames with a margin around the embryo (fit_frame): a movie boxed in a
larger video or canvas, a screen recording of a viewer's window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from devolens.predict.population import TRAINING_FRAME, PopulationPredictor, fit_composition, fit_frame
from devolens.predict.segment import SegmentationResult

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)

SHAPE = (128, 192)  # the shipped regressor's input (H, W)


def _embryo_frame(length: int = 600, seed: int = 0, size: tuple[int, int] = TRAINING_FRAME) -> np.ndarray:
    """A render-like frame: a noisy dark background and an ellipse of textured bright nuclei ``length`` px long,
    centred in the frame (float32)."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = np.clip(rng.normal(20.0, 3.0, (h, w)), 1.0, None).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    a, b = length / 2, length / 3
    r = length / 30  # nucleus radius
    for _ in range(150):
        t, u = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 1))
        cy, cx = h / 2 + (b - r) * u * np.sin(t), w / 2 + (a - r) * u * np.cos(t)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        img[disc] = rng.uniform(100, 180) + rng.normal(0, 10, int(disc.sum()))
    return img


def _nuclei(img: np.ndarray) -> int:
    return int((img >= 90).sum())


def test_a_movie_boxed_in_a_larger_video_gets_the_training_framing():
    """A 752x512 movie centred in a 1920x1080 black video: the regressor reads a 752x512 window around the embryo
    (the training frames' framing), not the largest 3:2 window (1620x1080, which showed the embryo at 0.46x and read
    158 cells as 232); the black letterboxing inside the window reads as the movie's background."""
    frame = _embryo_frame()
    boxed = np.zeros((1080, 1920), np.float32)
    boxed[284:796, 584:1336] = frame
    crop = fit_frame(boxed, SHAPE)
    assert crop.shape == TRAINING_FRAME
    assert _nuclei(crop) == _nuclei(frame)  # all of the embryo, at its own scale
    assert crop.min() > 0  # no letterbox black left
    # the same off centre, on a 1504x1024 canvas, and turned a quarter (a portrait video)
    canvas = np.zeros((1024, 1504), np.float32)
    canvas[60:572, 100:852] = frame
    assert fit_frame(canvas, SHAPE).shape == TRAINING_FRAME and _nuclei(fit_frame(canvas, SHAPE)) == _nuclei(frame)
    portrait = fit_frame(np.ascontiguousarray(np.rot90(boxed)), SHAPE)
    assert portrait.shape == TRAINING_FRAME and _nuclei(portrait) == _nuclei(frame)


def test_a_screen_recording_is_framed_on_the_embryo_not_on_the_viewer():
    """The movie in a viewer's window (grey panels, a brighter side panel, white menu text): the window at the
    training framing goes to the embryo, and the viewer's flat panels inside it read as the movie's background
    (a grey border brighter than the background made the regressor read more cells)."""
    frame = _embryo_frame(seed=1)
    screen = np.full((1080, 1920), 43.0, np.float32)
    screen[:40] = 68.0
    screen[40:, 1500:] = 58.0
    for x in range(10, 700, 9):  # menu text: thin white strokes
        screen[12:28, x:x + 2] = 255.0
    for x in range(1520, 1800, 9):
        screen[80:98, x:x + 2] = 255.0
    screen[200:712, 300:1052] = frame
    crop = fit_frame(screen, SHAPE)
    assert crop.shape == TRAINING_FRAME
    assert _nuclei(crop) == _nuclei(frame)
    assert not np.isin(crop, [43.0, 58.0, 68.0, 255.0]).any()


def test_an_embryo_larger_than_the_training_window_is_never_cut():
    """A frame whose embryo is larger than the training frame (another magnification the estimate missed): the
    window grows to hold all of it instead of cutting it."""
    big = _embryo_frame(length=1200, seed=2, size=(1024, 1504))
    crop = fit_frame(big, SHAPE)
    assert crop.shape[1] > TRAINING_FRAME[1]
    assert _nuclei(crop) == _nuclei(big)


def test_frames_near_the_training_size_keep_the_largest_window():
    """The renders' own 752x512 frames are left as they are (the card's held-out figures cannot move), a square
    field of them still gets its largest 3:2 window, and a frame whose pixel scale is unknown (``frame=None``: an
    estimate from too few nuclei) keeps the largest window whatever its margin."""
    frame = _embryo_frame(seed=3)
    assert fit_frame(frame, SHAPE) is frame
    square = np.concatenate([np.full((120, 752), 20.0, np.float32), frame, np.full((120, 752), 20.0, np.float32)])
    assert fit_frame(square, SHAPE).shape == (501, 752)
    boxed = np.zeros((1080, 1920), np.float32)
    boxed[284:796, 584:1336] = frame
    assert fit_frame(boxed, SHAPE, None).shape == (1080, 1620)


def test_a_saturated_embryo_keeps_its_flat_bright_nuclei():
    """Flat squares at the frame's highest value are saturated signal, not fill: they are kept."""
    frame = _embryo_frame(seed=4)
    frame[frame >= 90] = 255.0  # clipped nuclei: flat inside
    boxed = np.zeros((1080, 1920), np.float32)
    boxed[284:796, 584:1336] = frame
    crop = fit_frame(boxed, SHAPE)
    assert _nuclei(crop) == _nuclei(frame)


class _Nuclei:
    """A nuclei model stand-in for a magnification estimate that did (``trusted`` 1) or did not (0) find enough
    nuclei to judge by; it reports no nuclei."""

    diameter_ref = 20.0

    def __init__(self, trusted: int):
        self.trusted = trusted

    def estimate_diameter(self, images):
        from devolens.predict.sizing import DiameterEstimate

        return DiameterEstimate(diameter=None, magnification=1.0, per_image=[1.0], trusted=self.trusted)

    def predict_iter(self, images, total=None, progress=None):
        for _ in images:
            lab = np.zeros((8, 8), np.uint16)
            yield SegmentationResult(np.zeros((8, 8), np.float32), lab, pd.DataFrame(
                {"label": [], "x": [], "y": [], "area": []}), lab > 0)


class _Total(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2, 3))[:, None] * 0 + 5.0


@pytest.mark.parametrize("trusted", [0, 1])
def test_the_training_framing_waits_for_a_trusted_magnification(monkeypatch, trusted):
    """With ``diameter='auto'``, a movie whose estimate found too few nuclei to judge by is used at an unknown pixel
    scale: its regressor input keeps the largest window (a 2x frame of an early embryo, cut to the training window,
    read hundreds of cells); with a trusted estimate it gets the training framing."""
    from devolens.predict import sizing

    monkeypatch.setattr(sizing, "gather", lambda pred, it: ([next(it)],) * 2)
    pops = pd.DataFrame({"time": [0, 1], "A": [1, 2], "E": [1, 1], "M": [0, 1], "P": [1, 0], "C": [0, 0], "D": [0, 0],
                         "Z": [0, 2], "total": [3, 6]})
    pred = PopulationPredictor("composition", nuclei=_Nuclei(trusted), composition=fit_composition(pops, 10, 0),
                               network=_Total(), input_size=SHAPE, auto=True, total_weight=0.5, fast=False)
    boxed = np.zeros((1080, 1920), np.float32)
    boxed[284:796, 584:1336] = _embryo_frame(seed=5)
    seen = []
    real = pred._regressor_input
    monkeypatch.setattr(pred, "_regressor_input", lambda img, framed=True: (seen.append(framed), real(img, framed))[1])
    rows = list(pred.predict_iter([boxed, boxed]))
    assert len(rows) == 2 and seen == [bool(trusted)] * 2


def test_from_zoo_knows_the_scale_only_of_a_given_diameter(tiny_zoo):
    """``diameter=None`` uses the frames as they are (the regressor keeps their framing); a diameter in pixels
    decides their scale (the training framing applies)."""
    import json

    from devolens.models import load, zoo

    path = zoo.ZOO_DIR / "nuclei" / "card.json"  # the tiny nuclei card, given a reference diameter
    card = json.loads(path.read_text())
    card["input"]["diameter"] = {"reference": 30.0, "p5_p95": [20.0, 60.0]}
    path.write_text(json.dumps(card))
    zoo.card.cache_clear()
    assert load("population").scale_known is False
    assert load("population", diameter=15).scale_known is True
