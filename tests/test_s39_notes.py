"""Notes that tell users when the nuclei's size reading is wrong (session 39).

A saturated image (the real reference frame of 158 nuclei at twice its intensity: 56 % of its embryo at 255) got a
note blaming "a late embryo?" and no word of saturation: now segment and population say how much of the embryo is
saturated, once per run, and the magnification note blames the saturation. A wrong ``--diameter`` in pixels (48 given
to frames shrunk to 0.5x, where 24 suits them: 25 nuclei of 134) passed without a note: now the size model's one-pass
estimate checks it, without changing the results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.predict.notes import SATURATED_SHARE, Saturation, saturated_share
from devolens.predict.sizing import DiameterEstimate, untrusted_reason
from test_predict_sizing import _add_size_model, _constant_model, _disc_image, _estimates_once, _tiny
from test_s33_m7_specks import _dusty, _hot_clusters, _nuclei, _twelve_bit

SATURATED = "of the embryo's pixels are saturated (at the maximum value)"
ADVICE = "counts may be off; lower the exposure/gain or give the raw image"


def _said(capsys) -> str:
    cap = capsys.readouterr()
    return " ".join((cap.out + cap.err).split())


def _bright(gain: float = 3.0, seed: int = 0) -> np.ndarray:
    """An 8-bit frame of nuclei filmed ``gain`` times too bright: its nuclei clipped at 255."""
    return np.clip(_nuclei(seed=seed) * gain, 0, 255).astype(np.uint8)


def test_saturated_share_measures_the_embryo_not_the_frame():
    clean = np.clip(_nuclei(), 0, 255).astype(np.uint8)  # nuclei up to ~238: nothing at the maximum
    assert saturated_share(clean) == 0.0
    share = saturated_share(_bright())
    assert share is not None and share >= 0.5  # most of the nuclei's pixels, though a small share of the frame
    assert (_bright() == 255).mean() < share
    # colour: the channel the network reads (green here), a 16-bit frame at 65535 alike
    rgb = np.zeros((*_bright().shape, 3), np.uint8)
    rgb[..., 1] = _bright()
    assert saturated_share(rgb) == pytest.approx(share)
    assert saturated_share(_bright().astype(np.uint16) * 257) == pytest.approx(share)
    assert saturated_share(_bright().astype(np.float32)) is None  # floats: no maximum known


@pytest.mark.parametrize("degrade", [_dusty, _hot_clusters])
def test_saturated_specks_are_not_saturation(degrade):
    """The specks the preparation leaves out of the brightness scale (their own note) are not a saturated embryo,
    though a dust speck covers a large share of an early embryo's foreground."""
    bad = degrade(_twelve_bit(_nuclei()))
    assert (bad == 65535).any() and saturated_share(bad) == 0.0


def test_saturation_words_once_per_run():
    one = Saturation()
    one.add(_bright())
    assert one.note() == f"{100 * one.share():.0f} % {SATURATED}: {ADVICE}"
    movie = Saturation()
    for i, frame in enumerate([_bright(1.0), _bright(), _bright(seed=1)]):
        movie.add(frame, f"t{i}")
    assert movie.note().startswith("up to ") and "in 2 of 3 frames (t1, t2)" in movie.note()
    calm = Saturation()
    calm.add(_bright(1.0))
    assert calm.note() is None and calm.share() is None
    assert SATURATED_SHARE == 0.25


def test_untrusted_reason_blames_saturation_not_a_late_embryo():
    crowded = DiameterEstimate(diameter=None, magnification=1.3, per_image=[1.3], trusted=0, crowded=1)
    assert "a late embryo?" in untrusted_reason(crowded)
    words = untrusted_reason(crowded, "nuclei", 0.56)
    assert "a late embryo" not in words and "saturated (56 % of the embryo's pixels" in words
    few = DiameterEstimate(diameter=None, magnification=1.3, per_image=[1.3], trusted=0)
    assert "fewer than 8 separate bright regions (touching nuclei count as one" in untrusted_reason(few, "nuclei", 0.56)


def test_segment_and_population_say_saturation(tiny_zoo, tmp_path, capsys):  # noqa: F811
    import imageio.v3 as iio

    for name, frames in (("bright", [_bright(1.0), _bright(), _bright(seed=1)]), ("clean", [_bright(1.0)] * 2)):
        folder = tmp_path / name
        folder.mkdir()
        for i, frame in enumerate(frames):
            iio.imwrite(folder / f"t{i}.png", frame)
        assert main(["segment", "nuclei", str(folder), "--out", str(tmp_path / f"seg_{name}"),
                     "--diameter", "none"]) == 0
        out = _said(capsys)
        assert out.count(SATURATED) == out.count(ADVICE) == (name == "bright")
        assert (f"{SATURATED} in 2 of 3 frames (t1, t2): {ADVICE}" in out) == (name == "bright")
        notes = json.loads((tmp_path / f"seg_{name}" / "segment.json").read_text())["notes"]
        assert any(SATURATED in n for n in notes) == (name == "bright")
        assert main(["population", str(folder), "--out", str(tmp_path / f"{name}.csv"), "--no-plot",
                     "--diameter", "none"]) == 0
        assert _said(capsys).count(ADVICE) == (name == "bright")
    # the specks' own note, not this one
    dusty = tmp_path / "dusty"
    dusty.mkdir()
    import tifffile

    tifffile.imwrite(dusty / "t0.tif", _dusty(_twelve_bit(_nuclei())))
    assert main(["segment", "nuclei", str(dusty), "--out", str(tmp_path / "seg_dusty"), "--diameter", "none"]) == 0
    out = _said(capsys)
    assert "left out of the brightness scale" in out and SATURATED not in out


def _sized_predictor(diameter):
    """A tiny nuclei predictor whose size model reads every image at magnification 2 (keep band 0.5-1.5, m0 0.8,
    reference 20 px): diameter="auto" would segment them at 20 * 2 / 1.125 = 35.6 px."""
    from devolens.predict.segment import NucleiPredictor

    plain = NucleiPredictor(_tiny(), scale=0.5)
    return NucleiPredictor(_tiny(), scale=0.5, diameter_ref=20.0, diameter=diameter, auto_keep=(0.5, 1.5),
                           size_model=_constant_model(plain, 2.0))


def test_diameter_check_names_the_estimates_diameter():
    img = _disc_image((96, 128), 6)
    far = _sized_predictor(10.0)
    scale = far.working_scale()
    check = far.diameter_check([img])
    assert check is not None and check.given == 10.0 and check.suggested == pytest.approx(35.6, abs=0.1)
    assert check.magnification == pytest.approx(2.0)
    assert far.working_scale() == scale and far.last_estimate is None  # a check: nothing applied
    assert _sized_predictor(30.0).diameter_check([img]) is None  # 1.19x apart: right enough
    assert _sized_predictor(None).diameter_check([img]) is None  # (--diameter none: magnification_check's)
    assert _sized_predictor("auto").diameter_check([img]) is None
    lone = _disc_image((96, 128), 6, n=1)  # too few nuclei to judge by: no word
    assert _sized_predictor(10.0).diameter_check([lone]) is None


def test_segment_notes_a_diameter_far_from_the_estimate(tiny_zoo, tmp_path, capsys):  # noqa: F811
    import imageio.v3 as iio

    img = tmp_path / "frame.png"
    iio.imwrite(img, _disc_image((96, 128), 6))
    _add_size_model(tiny_zoo, m=2.0)  # auto: 20 * 2 / 1.125 = 36 px
    words = "--diameter 10: the size model reads the images as 2x as magnified"
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o1"), "--diameter", "10"]) == 0
    out = _said(capsys)
    assert words in out and "--diameter auto would use 36 px, 3.6x apart" in out
    assert "run again with --diameter 36" in out
    record = json.loads((tmp_path / "o1" / "segment.json").read_text())
    assert any(n.startswith(words) for n in record["notes"])
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o2"), "--diameter", "30"]) == 0
    assert "the size model reads" not in _said(capsys)
    for other in ("auto", "none"):  # auto judged them itself; none: the magnification note's
        assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / f"o_{other}"), "--diameter", other]) == 0
        assert "--diameter auto would use" not in _said(capsys)


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped")
def test_wrong_diameters_of_the_real_frames_are_noted_and_right_ones_not(shared_data, monkeypatch):
    """The reference frame of 300 as filmed, shrunk to 0.5x and enlarged 2x: 48 px given to the shrunk and the
    enlarged ones noted; 48, 24 and 96 given to the frames they suit not."""
    _estimates_once(monkeypatch)  # each frame's estimate made once: the diameters given are checked against it
    from PIL import Image

    from devolens.io.images import read_image
    from devolens.models import load

    frame = read_image(shared_data / "reference_frames" / "epic_movie_frame300.png")

    def resized(k):
        img = Image.fromarray(frame)
        return np.asarray(img.resize((round(img.width * k), round(img.height * k)), Image.BICUBIC))

    small, big = resized(0.5), resized(2.0)
    given_48 = load("nuclei", diameter=48)  # (loaded once: a check applies nothing)
    assert given_48.diameter_check([small]).suggested == pytest.approx(25, abs=3)
    assert given_48.diameter_check([big]).suggested > 96
    assert given_48.diameter_check([frame]) is None
    assert load("nuclei", diameter=24).diameter_check([small]) is None
    assert load("nuclei", diameter=96).diameter_check([big]) is None
