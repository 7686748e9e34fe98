"""The shipped cards say enough to run the models without devolens, and say it as the code does.

A user taking the shipped weights to Fiji/deepImageJ, napari or a C++ server reads only the card: these tests rebuild
devolens' probability map from the card's values (preprocessing, inference) and hold every value to the code (the
code's constants through :func:`devolens.models.export.engine_card`, the rules by re-implementing them from the card
and comparing with devolens' own functions), so that neither can drift from the other. Also: each card records its
weights' sha256, and the post-processing defaults an exported card writes out are the predictors' own.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from _zoo_helpers import tiny_zoo  # noqa: F401  (a fixture)
from devolens.models import zoo
from devolens.models.export import ENGINE_PREPROCESSING, POSTPROCESS_DEFAULTS, engine_card
from devolens.predict import postprocess as pp

ROOT = Path(__file__).resolve().parents[1]
FRAME = Path("reference_frames/epic_movie_frame160.png")  # a real EPIC frame (8-bit RGB), in the shared data


def _shipped(name: str) -> dict:
    return json.loads((zoo.ZOO_DIR / name / "card.json").read_text())


def _frame() -> np.ndarray:
    from conftest import shared_data_dir

    data = shared_data_dir()  # ($DEVOLENS_DATA, else the shared folder beside this checkout: not /work's)
    if data is None or not (data / FRAME).is_file():
        pytest.skip("the real reference frames are not here ($DEVOLENS_DATA/reference_frames)")
    import imageio.v3 as iio

    return iio.imread(data / FRAME)


# ---------------------------------------------------------------------------- 1. the card's values are the code's
@pytest.mark.parametrize("name", ["nuclei", "membrane"])
def test_the_shipped_cards_engine_sections_are_the_codes(name):
    """The exact rules of the nuclei and membrane cards (preprocessing's rule keys, inference) are those
    engine_card reads off the code's constants today: a constant changed in the code (a content-box margin, a tile
    overlap, a speck threshold) fails here until the cards are written again (scripts/zoo_ship.py writes them)."""
    card = _shipped(name)
    again = engine_card(card)
    assert card["inference"] == again["inference"]
    assert {k: card["preprocessing"].get(k) for k in ENGINE_PREPROCESSING} == {
        k: again["preprocessing"].get(k) for k in ENGINE_PREPROCESSING}
    md = (zoo.ZOO_DIR / name / "card.md").read_text()
    assert "## Inference" in md and "encoder.layer4.*" in md and "**background**" in md


def test_the_cards_background_rule_is_flatten_background():
    """The background flattening as the cards give it (shrink, ellipse kernel, replicate padding, sigma, bilinear
    enlargement: every number from the card) is devolens' flatten_background to the bit, for the nuclei card's
    width (60: kernel 15) and the membrane card's (40: kernel 11)."""
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.random((257, 383), dtype=np.float32) * 100, (0, 0), 3) + np.linspace(0, 50, 383,
                                                                                                      dtype=np.float32)
    for name, kernel in (("nuclei", 15), ("membrane", 11)):
        bg = _shipped(name)["preprocessing"]["background"]
        assert bg["kernel"] == kernel and bg["padding_px"] == kernel and bg["sigma"] == kernel / 2
        assert bg["kernel"] == max(3, int(round(bg["width"] / bg["shrink"])) | 1)  # the rule the card states
        assert (bg["kernel_shape"], bg["padding"], bg["enlarge"]) == ("ellipse", "replicate", "bilinear")
        np.testing.assert_array_equal(_card_background(img, bg), pp.flatten_background(img, bg["width"]))


def _card_background(img: np.ndarray, bg: dict) -> np.ndarray:
    """The background flattening from the card's ``preprocessing.background`` alone (OpenCV)."""
    h, w = img.shape
    f, k = bg["shrink"], bg["kernel"]
    small = cv2.resize(img, (w // f, h // f), interpolation=cv2.INTER_AREA)
    pad = cv2.copyMakeBorder(small, k, k, k, k, cv2.BORDER_REPLICATE)
    floor = cv2.morphologyEx(pad, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    floor = cv2.GaussianBlur(floor, (0, 0), bg["sigma"])[k:-k, k:-k]
    return img - cv2.resize(floor, (w, h), interpolation=cv2.INTER_LINEAR)


def _card_channel(img: np.ndarray, rule: dict) -> str:
    """The ``auto`` channel of an RGB image by the card's ``preprocessing.channel_rule`` alone."""
    rgb = img[..., :3]
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return "green"
    small = cv2.pyrDown(cv2.pyrDown(np.ascontiguousarray(rgb))) if min(rgb.shape[:2]) >= 64 else rgb
    step = max(1, math.ceil(math.sqrt(small.shape[0] * small.shape[1] / 8000)))
    sample = small[::step, ::step].reshape(-1, 3).astype(np.float32)
    n = sample.shape[0]
    top = np.array([np.partition(sample[:, c], int(0.995 * (n - 1)))[int(0.995 * (n - 1))] for c in range(3)])
    median = np.array([np.partition(sample[:, c], (n - 1) // 2)[(n - 1) // 2] for c in range(3)])
    signal = top - median
    if signal.max() - signal.min() <= rule["mean_within"] * signal.mean():
        return "mean"
    if signal.max() > rule["green_unless"] * signal[1]:
        return ("red", "green", "blue")[int(np.argmax(signal))]
    return "green"


def test_the_cards_channel_rule_is_auto_channel():
    """The nuclei card's channel rule (green unless another channel's signal is over 1.5x green's; the mean when the
    signals are within 5 % of their mean) decides as devolens' auto_channel does, on both sides of each threshold:
    the channels are one pattern times a factor, so that their signals stand in the factors' ratios exactly."""
    rule = _shipped("nuclei")["preprocessing"]["channel_rule"]
    assert (rule["green_unless"], rule["mean_within"]) == (1.5, 0.05)
    rng = np.random.default_rng(1)
    pattern = np.zeros((256, 320), np.float32)
    for _ in range(40):  # bright discs (nuclei) on a dark field
        cv2.circle(pattern, (int(rng.integers(0, 320)), int(rng.integers(0, 256))), int(rng.integers(6, 14)),
                   float(rng.uniform(0.5, 1.0)), -1)
    g, m = rule["green_unless"], rule["mean_within"]
    cases = {  # (red, green, blue) factors: what the card's rule says
        (g * 0.98, 1.0, 0.3): "green", (g * 1.02, 1.0, 0.3): "red", (0.3, 1.0, g * 1.02): "blue",
        (1.0, 1.0 + m * 0.6, 1.0): "mean", (1.0, 1.0 + m * 1.4, 1.0): "green", (1.0, 1.0, 1.0): "green",
    }
    for factors, expected in cases.items():
        img = np.stack([pattern * 200 * f for f in factors], axis=-1).astype(np.float32)
        assert _card_channel(img, rule) == expected == pp.auto_channel(img), factors


# ---------------------------------------------------------------------------- 2. the whole map from the card alone
def _card_prepare(img: np.ndarray, card: dict, scale: float | None = None) -> np.ndarray:
    """An image as the network sees it, by the card's preprocessing alone (an 8-bit RGB image: no saturated specks)."""
    pre = card["preprocessing"]
    channel = _card_channel(img, pre["channel_rule"])
    grey = img[..., :3].astype(np.float32).mean(axis=2) if channel == "mean" else img[..., "rgb".index(channel[0])]
    grey = grey.astype(np.float32)
    threshold = pre["outlier_rule"]["threshold"]
    kernel = np.ones((3, 3), np.uint8)
    kernel[1, 1] = 0
    nb = cv2.dilate(grey, kernel, borderType=cv2.BORDER_REFLECT_101)
    lo, hi = np.percentile(grey[::4, ::4], [1.0, 99.8])
    grey = np.where(grey - nb > threshold * max(hi - lo, 1e-6), nb, grey).astype(np.float32)
    s = card["input"]["scale"] if scale is None else scale
    h, w = grey.shape
    size = (max(1, round(w * s)), max(1, round(h * s)))
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if size[0] * size[1] < w * h else cv2.INTER_LINEAR)
    grey = _card_background(grey, pre["background"])
    step = max(1, int(math.sqrt(grey.size / 250_000)))
    lo, hi = np.percentile(grey[::step, ::step], pre["percentiles"])
    return np.clip((grey - np.float32(lo)) / np.float32(hi - lo), 0, 1).astype(np.float32)


def _card_box(x: np.ndarray, box: dict) -> tuple[int, int, int, int]:
    """The content box by the card's ``inference.content_box``."""
    h, w = x.shape
    b, m, q = box["block"], box["grid"], box["quantum"]
    hb, wb = -(-h // b), -(-w // b)
    means = cv2.resize(np.pad(x, ((0, hb * b - h), (0, wb * b - w))), (wb, hb), interpolation=cv2.INTER_AREA)
    hit = means > box["level"]
    rows, cols = np.flatnonzero(hit.any(1)), np.flatnonzero(hit.any(0))

    def side(first: int, last: int, n: int) -> tuple[int, int]:
        lo, hi = first * b - box["margin"], (last + 1) * b + box["margin"]
        lo = max(lo, 0) // m * m
        hi = min(-(-max(hi, lo + 1) // m) * m, n)
        size = -(-(hi - lo) // q) * q
        if size >= n:
            return 0, n
        lo = max(0, lo - (size - (hi - lo)) // 2 // m * m)
        return (lo, lo + size) if lo + size <= n else ((n - size) // m * m, n)

    (y0, y1), (x0, x1) = side(rows[0], rows[-1], h), side(cols[0], cols[-1], w)
    padded = lambda k: -(-k // m) * m  # noqa: E731
    if padded(y1 - y0) * padded(x1 - x0) > 0.9 * padded(h) * padded(w):
        return 0, h, 0, w
    return y0, y1, x0, x1


def _forward(net, x: np.ndarray, multiple: int) -> np.ndarray:
    """Softmax probabilities of ``x`` padded (reflect, bottom and right) to ``multiple``, cut back."""
    h, w = x.shape
    xp = np.pad(x, ((0, -h % multiple), (0, -w % multiple)), mode="reflect")
    with torch.no_grad():
        return torch.softmax(net(torch.from_numpy(xp)[None, None]), 1)[0].numpy()[:, :h, :w]


def _card_probabilities(net, x: np.ndarray, card: dict) -> np.ndarray:
    """(3, h, w) probabilities of a whole working image by the card's inference (content box, padding)."""
    inf = card["inference"]
    m = inf["padding"]["multiple"]
    y0, y1, x0, x1 = _card_box(x, inf["content_box"])
    if (y0, y1, x0, x1) == (0, x.shape[0], 0, x.shape[1]):
        return _forward(net, x, m)
    empty = _forward(net, np.zeros((4 * m, 4 * m), np.float32), m)[:, 2 * m, 2 * m]
    out = np.empty((3, *x.shape), np.float32)
    out[:] = empty[:, None, None]
    out[:, y0:y1, x0:x1] = _forward(net, x[y0:y1, x0:x1], m)
    return out


@pytest.mark.parametrize("name", ["nuclei", "membrane"])
def test_the_card_alone_reproduces_the_probability_map(name):
    """A real EPIC frame through the card's rules (channel, hot pixels, resize, background, percentiles, content
    box, reflect padding, the probability the card names, bilinear to the input size) and the network in fp32 gives
    devolens' own probability map in fp32, and the card's postprocess on it devolens' count: the membrane model runs
    on the same engine (its card the same sections). Without the card's exact background flattening (sigma 2 as the
    walkthrough guessed) the map moves by far more."""
    from devolens.predict.postprocess import instances_from_probabilities

    img = _frame()
    card = _shipped(name)
    pred = zoo.load(name, precision="fp32")
    assert pred.precision == "fp32"
    x = _card_prepare(img, card)
    np.testing.assert_array_equal(x, pred.network.prepare(img))  # to the bit
    probs = _card_probabilities(pred.network.model, x, card)
    p = 1.0 - probs[0] if name == "nuclei" else probs[2]
    assert card["inference"]["probability"].startswith("1 - p(background)" if name == "nuclei" else "p(boundary)")
    full = np.clip(cv2.resize(p, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR), 0, 1)
    res = pred.predict(img)
    diff = np.abs(full - res.probability)
    assert diff.max() < 1e-5, diff.max()  # (0 when measured: the same network, the same steps)
    fg, interior = 1.0 - probs[0], probs[1]
    assert int(instances_from_probabilities(fg, interior, **card["postprocess"]).max()) == res.count
    if name == "nuclei":  # the walkthrough's guess without the card's numbers: sigma 2 instead of 7.5
        guessed = _card_prepare(img, {**card, "preprocessing": {**card["preprocessing"], "background": {
            **card["preprocessing"]["background"], "sigma": 2.0}}})
        assert np.abs(guessed - x).max() > 0.05


def test_the_card_tiles_as_devolens_tiles(tiny_zoo):
    """An image above the tile size runs in tiles as the card's inference.tiles says (windows, stride, flush last
    window, blending weights), here with a tiny network and 128 px tiles."""
    from devolens.predict._engine import ImageNetwork

    card = engine_card({**json.loads((tiny_zoo / "nuclei" / "card.json").read_text()),
                        "input": {"scale": 1.0, "multiple": 8, "tile": 128}})
    tiles = card["inference"]["tiles"]
    pred = zoo.load("nuclei", precision="fp32", tile=128, scale=1.0)
    net: ImageNetwork = pred.network
    assert (tiles["tile"], tiles["overlap"]) == (net.tile, net.overlap)
    rng = np.random.default_rng(2)
    x = rng.random((150, 290), dtype=np.float32)
    t, stride, overlap = tiles["tile"], tiles["stride"], tiles["overlap"]
    h, w = x.shape
    ys = list(range(0, h - t + 1, stride))
    xs = list(range(0, w - t + 1, stride))
    ys += [h - t] if ys[-1] + t < h else []
    xs += [w - t] if xs[-1] + t < w else []
    i = np.arange(t)
    ramp = np.minimum(1.0, np.minimum(i + 1, t - i) / max(1, overlap // 2)).astype(np.float32)
    weight = np.outer(ramp, ramp) + 1e-3
    acc, wsum = np.zeros((3, h, w), np.float32), np.zeros((h, w), np.float32)
    for y in ys:
        for x0 in xs:
            acc[:, y:y + t, x0:x0 + t] += _forward(net.model, x[y:y + t, x0:x0 + t], 8) * weight
            wsum[y:y + t, x0:x0 + t] += weight
    np.testing.assert_allclose(acc / wsum, net.probabilities_working([x])[0], atol=1e-5)


def test_segmentation_models_pytorch_loads_the_weights_as_the_card_says():
    """The card's inference.smp: smp's Unet built from the architecture takes the weights with strict=False, the
    missing keys exactly encoder.layer4.* (the stage encoder_depth 4 leaves unused), none unexpected, and gives
    devolens' network's output (its BatchNorm folded) to float rounding."""
    smp = pytest.importorskip("segmentation_models_pytorch")
    from devolens.io.tensors import load_tensors
    from devolens.predict._engine import load_zoo_network

    for name in ("nuclei", "membrane"):
        card = _shipped(name)
        a = card["architecture"]
        said = card["inference"]["smp"]
        assert f"encoder_depth={a['encoder_depth']}" in said and "strict=False" in said
        net = smp.Unet(a["encoder"], encoder_weights=None, in_channels=a["in_channels"], classes=a["classes"],
                       encoder_depth=a["encoder_depth"], decoder_channels=a["decoder_channels"])
        state = {k: v.float() if v.is_floating_point() else v
                 for k, v in load_tensors(zoo.ZOO_DIR / name / "weights.safetensors").items()}
        result = net.load_state_dict(state, strict=False)
        assert result.missing_keys and all(k.startswith("encoder.layer4.") for k in result.missing_keys)
        assert not result.unexpected_keys
        x = torch.rand(1, 1, 64, 96, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ours = load_zoo_network(zoo.ZOO_DIR / name, card)(x)
            theirs = net.eval()(x)
        assert torch.allclose(ours, theirs, atol=1e-4), float((ours - theirs).abs().max())


# ---------------------------------------------------------------------------- 3. sha256, post-processing, texts
def test_every_card_that_ship_writes_records_its_weights_sha256():
    """nuclei, membrane and population (the cards scripts/zoo_ship.py writes) record the sha256 of the weights they
    ship with, and card.md says it; identity's and livedead's cards come from their own writers
    (benchmarks/train_identity.py, scripts/eval_livedead.py)."""
    from devolens.provenance import file_sha256

    for name in ("nuclei", "membrane", "population"):
        card = _shipped(name)
        digest = file_sha256(zoo.ZOO_DIR / name / "weights.safetensors")
        assert card["weights_sha256"] == digest == zoo.weights_sha256(name)
        assert digest in (zoo.ZOO_DIR / name / "card.md").read_text()


def test_population_card_says_it_needs_devolens():
    card = _shipped("population")
    assert "Needs devolens" in card["portability"] and "CountRegressorLite" in card["portability"]
    assert "## Outside devolens" in (zoo.ZOO_DIR / "population" / "card.md").read_text()


def test_the_nuclei_limits_say_how_the_reference_counts_were_counted():
    card = _shipped("nuclei")
    counts = card["metrics"]["reference_counts"]["counts"]
    said = f"{counts['frame045']} / {counts['frame160']} / {counts['frame300']}"
    assert said in card["limits"] and "--diameter none" in card["limits"] and "--diameter each" in card["limits"]


@pytest.mark.parametrize("kind", ["nuclei", "membrane"])
def test_postprocess_defaults_are_the_predictors(kind, monkeypatch):
    """POSTPROCESS_DEFAULTS (what an exported card writes out) is what each predictor passes to
    instances_from_probabilities when its card gives nothing."""
    from types import SimpleNamespace

    from devolens.predict import segment

    seen = {}

    def capture(fg, interior, **options):
        seen.update(options)
        return np.zeros(fg.shape, np.uint16)

    monkeypatch.setattr(segment, "instances_from_probabilities", capture)
    cls = segment.NucleiPredictor if kind == "nuclei" else segment.MembranePredictor
    pred = object.__new__(cls)
    pred.head, pred.postprocess_options, pred.network = "three_class", {}, SimpleNamespace(scale=1.0)
    pred._finish(np.full((3, 8, 8), 1 / 3, np.float32), (8, 8))
    assert seen == POSTPROCESS_DEFAULTS[kind]


def test_zoo_ship_templates_say_what_the_cards_say():
    """zoo_ship.py's preprocessing templates (written by a fresh ship) are the shipped cards' (hot pixels and
    background flattening included), and its portability text is the cards'."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    import zoo_ship as zs

    for name, template in zs.CARDS.items():
        card = _shipped(name)
        assert card["portability"] == template["portability"], name
        if name in ("nuclei", "membrane"):
            own = {k: v for k, v in card["preprocessing"].items() if k not in ENGINE_PREPROCESSING}
            assert own == template["preprocessing"], name


def test_zoo_ship_writes_the_engine_sections_and_the_sha256(tmp_path):
    """scripts/zoo_ship.py --update on new nuclei weights: the card's engine sections and weights_sha256 are
    written for the weights shipped."""
    import shutil
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    import zoo_ship as zs
    from devolens.provenance import file_sha256

    folder = tmp_path / "zoo" / "nuclei"
    folder.mkdir(parents=True)
    card = _shipped("nuclei")
    stale = {**card, "weights_sha256": "0" * 64, "inference": {}}
    (folder / "card.json").write_text(json.dumps(stale))
    source = tmp_path / "run" / "best.safetensors"
    source.parent.mkdir()
    shutil.copy(zoo.ZOO_DIR / "nuclei" / "weights.safetensors", source)
    source.with_suffix(".json").write_text(json.dumps({"model": card["architecture"], "epoch": 1}))
    zs.ship("nuclei", source, folder, None, update=True)
    written = json.loads((folder / "card.json").read_text())
    assert written["weights_sha256"] == file_sha256(folder / "weights.safetensors")
    assert written["inference"] == card["inference"]
