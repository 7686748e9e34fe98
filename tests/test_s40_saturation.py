"""The saturation note at a camera's maximum (session 40).

Most scientific cameras are 12-bit (some 14- or 10-bit), and their 16-bit TIFFs saturate at 4095 (16383, 1023), not
at the file type's 65535: ``devolens segment`` and ``population`` said nothing of an embryo filmed too bright by such a
camera. The note now judges a 16-bit image whose maximum is one of those ceilings against it, and names it; a frame
whose brightest pixel merely happens to be 4095, or whose hot pixels read 4095, is not called saturated."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.predict.notes import SATURATED_SHARE, Saturation, saturated_share
from test_s33_m7_specks import _nuclei, _twelve_bit

ADVICE = "counts may be off; lower the exposure/gain or give the raw image"


def _said(capsys) -> str:
    cap = capsys.readouterr()
    return " ".join((cap.out + cap.err).split())


def _saturated(bits: int = 12, gain: float = 3.0, size=(256, 320), seed: int = 0) -> np.ndarray:
    """A ``bits``-bit camera's frame of nuclei (an offset of 100) filmed ``gain`` times too bright, in a 16-bit
    file: its nuclei's middles clipped at the camera's maximum, a large plateau of the embryo."""
    top = 2 ** bits - 1
    return np.clip(np.round(_nuclei(size=size, seed=seed) * gain * top / 255 + 100), 0, top).astype(np.uint16)


@pytest.mark.parametrize("bits", [10, 12, 14])
def test_a_camera_saturating_below_sixteen_bits_is_noted_at_its_maximum(bits):
    top = 2 ** bits - 1
    img = _saturated(bits)
    assert img.max() == top and img.max() < 65535
    share = saturated_share(img)
    assert share is not None and share >= SATURATED_SHARE
    assert (img == top).mean() < share  # the embryo's share, not the frame's
    note = Saturation()
    note.add(img)
    assert note.note() == (f"{100 * share:.0f} % of the embryo's pixels are saturated (at {top}, a {bits}-bit "
                           f"camera's maximum): {ADVICE}")


def test_the_same_frame_below_the_ceiling_is_not_saturated():
    img = _saturated()
    lower = np.round(img * (4000 / 4095)).astype(np.uint16)  # its plateau at 4000: no camera's maximum
    assert lower.max() == 4000
    assert saturated_share(lower) == 0.0
    note = Saturation()
    note.add(lower)
    assert note.note() is None


def test_a_brightest_pixel_at_4095_is_no_saturation():
    """A clean 12-bit frame whose brightest pixel happens to be 4095 (its brightest nucleus's peak; a single pixel
    set there; the core of its brightest nucleus clipped in a few dozen pixels) is judged at 4095 and found barely
    saturated, far below the note's share."""
    f = _nuclei().astype(np.float64)
    peak = np.round(np.clip(f, 0, None) / f.max() * 3995 + 100).astype(np.uint16)  # (an offset of 100)
    assert peak.max() == 4095 and (peak == 4095).sum() < 5
    one = _twelve_bit(_nuclei())  # nuclei up to ~4000 counts
    one.flat[np.argmax(one)] = 4095
    core = _twelve_bit(_nuclei())
    cut = np.sort(core.ravel())[-60]  # the brightest 60 pixels (the middle of one nucleus) clipped
    core[core >= cut] = 4095
    assert 40 <= (core == 4095).sum() <= 100
    for img in (peak, one, core):
        share = saturated_share(img)
        assert share is not None and share < SATURATED_SHARE
        note = Saturation()
        note.add(img)
        assert note.note() is None
    assert 0 < saturated_share(core) < 0.02  # judged at 4095: a few dozen of thousands of the embryo's pixels


@pytest.mark.parametrize("amplitude", [200, 800])
def test_hot_pixels_at_4095_do_not_make_a_dim_frame_saturated(amplitude):
    """A dim 12-bit frame (nuclei ``amplitude`` counts above the background, an embryo of a blank start) whose hot
    pixels (0.1 % of the frame, single and in 2x2 clusters) read 4095: Otsu's threshold of all its pixels falls
    between the data and the hot pixels (the "embryo" then 97-100 % saturated); left out, they are no saturation.
    A saturated embryo with the same hot pixels still is."""
    rng = np.random.default_rng(0)
    base = _nuclei(size=(512, 752), n=60)
    frames = {"dim": base / 230 * amplitude, "blank": np.zeros_like(base), "bright": base / 230 * 3 * 4095}
    for name, signal in frames.items():
        img = np.clip(np.round(signal + rng.normal(100, 6, base.shape)), 0, 4095).astype(np.uint16)
        img.flat[rng.integers(0, img.size, img.size // 2000)] = 4095
        for _ in range(img.size // 8000):
            y, x = rng.integers(0, img.shape[0] - 2), rng.integers(0, img.shape[1] - 2)
            img[y:y + 2, x:x + 2] = 4095
        share = saturated_share(img)
        if name == "bright":
            assert share >= SATURATED_SHARE
        else:
            assert share == 0.0, name


def test_eight_bit_and_sixty_five_thousand_tops_are_judged_as_before():
    """8-bit frames (255) and 16-bit frames at 65535: the share of the embryo (Otsu's threshold of every pixel) at
    the type's maximum, in the note's words as before; an 8-bit frame at 4095 cannot be, and a 16-bit frame at 255
    (8-bit data) is not judged at a camera's maximum."""
    from skimage.filters import threshold_otsu

    bright = np.clip(_nuclei() * 3.0, 0, 255).astype(np.uint8)
    fg = bright > threshold_otsu(bright[::2, ::2])
    assert saturated_share(bright) == np.count_nonzero(fg & (bright == 255)) / np.count_nonzero(fg)
    assert saturated_share(bright.astype(np.uint16) * 257) == pytest.approx(saturated_share(bright))
    assert saturated_share(bright.astype(np.uint16)) == 0.0
    for img in (bright, bright.astype(np.uint16) * 257):
        note = Saturation()
        note.add(img)
        assert note.note().endswith(f"% of the embryo's pixels are saturated (at the maximum value): {ADVICE}")


def test_colour_and_mixed_runs_name_each_maximum():
    """A colour 12-bit frame is judged in the channel the network reads; a run whose frames saturate at 65535 and
    at 4095 names both."""
    img = _saturated()
    rgb = np.zeros((*img.shape, 3), np.uint16)
    rgb[..., 1] = img
    assert saturated_share(rgb) == pytest.approx(saturated_share(img))
    run = Saturation()
    for i, frame in enumerate([np.clip(_nuclei() * 3.0, 0, 255).astype(np.uint16) * 257, img, _twelve_bit(_nuclei())]):
        run.add(frame, f"t{i}")
    assert "(at the maximum value or at 4095, a 12-bit camera's maximum) in 2 of 3 frames (t0, t1)" in run.note()


def test_segment_and_population_say_a_twelve_bit_saturation(tiny_zoo, tmp_path, capsys):  # noqa: F811
    """End to end: a 16-bit TIFF of a 12-bit camera's saturated frame gets the note, naming 4095 (printed and in
    segment.json); the same frame below the ceiling does not."""
    import tifffile

    words = "of the embryo's pixels are saturated (at 4095, a 12-bit camera's maximum)"
    for name, img in (("saturated", _saturated()), ("below", np.round(_saturated() * (4000 / 4095)).astype(np.uint16))):
        path = tmp_path / f"{name}.tif"
        tifffile.imwrite(path, img)
        assert main(["segment", "nuclei", str(path), "--out", str(tmp_path / f"seg_{name}"),
                     "--diameter", "none"]) == 0
        out = _said(capsys)
        assert (words in out and ADVICE in out) == (name == "saturated"), out
        notes = json.loads((tmp_path / f"seg_{name}" / "segment.json").read_text())["notes"]
        assert any(words in n for n in notes) == (name == "saturated")
        assert main(["population", str(path), "--out", str(tmp_path / f"{name}.csv"), "--no-plot",
                     "--diameter", "none"]) == 0
        assert (words in _said(capsys)) == (name == "saturated")


def test_hot_pixels_at_255_do_not_make_a_dim_eight_bit_frame_saturated():
    """The same at an 8-bit file's 255: a dim frame (nuclei 30 levels above a background of 20) or a blank one with a
    few hot pixels at 255 read 100 % saturated before (Otsu's threshold between the data and the hot pixels); a
    saturated embryo with the same hot pixels is still said saturated."""
    rng = np.random.default_rng(1)
    base = _nuclei(size=(512, 752), n=60)
    for name, signal in {"dim": base / 230 * 30, "blank": np.zeros_like(base), "bright": base * 3.0}.items():
        img = np.clip(np.round(signal + rng.normal(20, 3, base.shape)), 0, 255).astype(np.uint8)
        img.flat[rng.integers(0, img.size, 40)] = 255
        share = saturated_share(img)
        assert (share >= SATURATED_SHARE) if name == "bright" else (share == 0.0), (name, share)
