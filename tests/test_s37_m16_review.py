"""A reviewer's findings on the predictors' checks: a scale that is out of range only with the diameter's resizing
on top is answered with the scales that fit this diameter; a membrane card with a distance head
(``three_class_distance``, what ``devolens models export`` writes for a run with ``model.distance_head``) gives
cells, read as the nuclei predictor reads that head; the network's own scale check is the predictors' one."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError, DevolensValueError
from devolens.predict.segment import MembranePredictor, NucleiPredictor, check_scale

# ------------------------------------------------------------------ 1. scale with a diameter


def test_a_scale_out_of_range_only_with_the_diameter_gives_the_scales_for_that_diameter():
    net = nn.Conv2d(1, 3, 1)
    card = {"input": {"scale": 0.5}}
    # scale 2 lies inside 0.01-4; with diameter 10 (reference 35.6: 3.56x on top) the images are enlarged 14.2x
    with pytest.raises(DevolensError) as err:
        NucleiPredictor(net, scale=2.0, diameter=10, diameter_ref=35.6, card=card)
    msg = str(err.value)
    assert msg.startswith("scale 2 with diameter 10 px: the images would be enlarged 14.2x beyond the model's own "
                          "scale 0.5")
    assert "with this diameter give a scale of 0.01-1.123, or leave the scale out" in msg
    assert "0.01-4" not in msg  # (the plain range, which 2 is inside: nothing to act on)
    # the range said is the one taken: its top end loads, just above it does not
    top = float(re.search(r"scale of [\d.]+-([\d.]+)", msg).group(1))
    assert NucleiPredictor(net, scale=top, diameter=10, diameter_ref=35.6, card=card).working_scale() == pytest.approx(
        top * 3.56)
    with pytest.raises(DevolensError, match="with this diameter give a scale of"):
        NucleiPredictor(net, scale=top * 1.01, diameter=10, diameter_ref=35.6, card=card)
    # a scale out of the plain range too, with a diameter: this diameter's range (0.0843-4 for 300 px), not 0.01-4
    with pytest.raises(DevolensError, match=r"scale 0.001 with diameter 300 px: the images would be shrunk 500x .*"
                                            r"with this diameter give a scale of 0.0843-4\b"):
        NucleiPredictor(net, scale=0.001, diameter=300, diameter_ref=35.6, card=card)
    # the scale left out (the card's own) goes with any diameter the model takes, to both ends of its range
    for diameter in (35.6 / 8, 35.6 * 50):
        assert NucleiPredictor(net, scale=0.5, diameter=diameter, diameter_ref=35.6, card=card)
    # without a diameter: the message as before
    with pytest.raises(DevolensError, match=r"^scale 100: the images would be enlarged 200x .*give a scale of "
                                            r"0.01-4, or the objects' diameter"):
        NucleiPredictor(net, scale=100, card=card)


# ------------------------------------------------------------------ 2. membrane three_class_distance


class _Crafted(nn.Module):
    """Logits of a membrane network with a distance head that reads a grid of bright lines: background nowhere,
    boundary on the lines (p 0.55) and interior elsewhere (p 0.9: p(interior) one blob over the lines, 0.45 there),
    and the distance head high far from any line. ``classes_only``: without the distance channel (a three_class
    network)."""

    def __init__(self, classes_only: bool = False):
        super().__init__()
        self.classes_only = classes_only
        self.blur = nn.AvgPool2d(9, stride=1, padding=4, count_include_pad=False)

    def forward(self, x):
        x = x[:, :1]
        bg = torch.full_like(x, -4.0)
        interior = torch.zeros_like(x)
        boundary = 2.4 * x - 2.2
        if self.classes_only:
            return torch.cat([bg, interior, boundary], dim=1)
        distance = 4.0 - 40.0 * self.blur(x)
        return torch.cat([bg, interior, boundary, distance], dim=1)


def _grid(step=24, size=96):
    rng = np.random.default_rng(0)
    img = rng.normal(20, 3, (size, size))
    lines = np.zeros((size, size), bool)
    for k in range(0, size, step):
        lines[k:k + 2, :] = True
        lines[:, k:k + 2] = True
    img[lines] = 200
    return np.clip(img, 0, 255).astype(np.uint8), lines


_KW = dict(in_channels=1, scale=1.0, multiple=16)


def test_a_membrane_distance_head_gives_cells_seeded_by_the_distance():
    img, lines = _grid()
    res = MembranePredictor(_Crafted(), head="three_class_distance", **_KW).predict(img)
    # 4 x 4 cells between the lines (was: p(background) read as the membrane map, 0 cells)
    assert res.count == 16 and not res.extra.get("no_structure")
    # each cell its own square between the lines (and half the lines around it: nothing is background here)
    for label in range(1, 17):
        ys, xs = np.nonzero(res.labels == label)
        assert ys.max() - ys.min() <= 26 and xs.max() - xs.min() <= 26
    # the membrane map is p(boundary): high on the lines, low between them
    assert res.probability[lines].min() > 0.5 and res.probability[~lines].max() < 0.5
    assert np.array_equal(res.mask, res.probability >= 0.5)
    # the seeds are the distance head's (as the nuclei predictor reads that head): p(interior) is one blob here
    assert MembranePredictor(_Crafted(classes_only=True), head="three_class", **_KW).predict(img).count == 1


def test_a_membrane_distance_head_reads_the_classes_as_three_class_does():
    """The same network without its distance channel, read as three_class: the same membrane map and mask."""
    img, _ = _grid()
    with_distance = MembranePredictor(_Crafted(), head="three_class_distance", **_KW).predict(img)
    three = MembranePredictor(_Crafted(classes_only=True), head="three_class", **_KW).predict(img)
    np.testing.assert_array_equal(with_distance.probability, three.probability)
    np.testing.assert_array_equal(with_distance.mask, three.mask)


# ------------------------------------------------------------------ 3. the network's scale check


def test_the_networks_scale_check_is_check_scale(monkeypatch):
    from devolens.predict import _engine, segment

    seen = []
    monkeypatch.setattr(segment, "check_scale", lambda scale, *a, **k: seen.append(scale) or float(scale))
    net = _engine.ImageNetwork(nn.Conv2d(1, 3, 1), scale=0.5)
    assert seen == [0.5] and net.scale == 0.5 and type(net.scale) is float


@pytest.mark.parametrize("bad, error", [("x", DevolensValueError), (True, DevolensValueError),
                                        (float("nan"), DevolensError), (0, DevolensError), (-1.0, DevolensError)])
def test_the_networks_scale_messages(bad, error):
    from devolens.predict._engine import ImageNetwork

    with pytest.raises(error) as err:
        ImageNetwork(nn.Conv2d(1, 3, 1), scale=bad)
    assert str(err.value) == f"scale must be a number > 0 (the working resolution relative to the input), got {bad!r}"
    with pytest.raises(error) as same:
        check_scale(bad)
    assert str(same.value) == str(err.value)


def test_an_exported_membrane_card_with_a_distance_head_says_how_it_is_read():
    """The card's inference notes of a membrane network with a distance head (what `models export` writes for such a
    run) said "the first channel" and instances_from_boundary_map, while the predictor reads p(boundary) and seeds
    from the distance channel."""
    import json

    from devolens.models.export import engine_card
    from devolens.models.zoo import ZOO_DIR

    card = json.loads((ZOO_DIR / "membrane" / "card.json").read_text())
    card["output"]["head"] = "three_class_distance"
    inf = engine_card(card)["inference"]
    assert inf["probability"].startswith("p(boundary)")
    assert "instances_from_probabilities(1 - p(background), the distance channel" in inf["instances"]
    shipped = engine_card(json.loads((ZOO_DIR / "membrane" / "card.json").read_text()))["inference"]
    assert "instances_from_probabilities(1 - p(background), p(interior)" in shipped["instances"]
