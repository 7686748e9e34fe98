"""A dust speck, a reflection or clusters of hot pixels saturating a 16-bit file of 12-bit data set the 99.8th
percentile of the brightness scale: the nuclei faded to a few percent of it and `segment nuclei` found one "nucleus"
per frame (F1 0.00), with a misleading note. Such saturated specks are now left out of the scale and read as
background, with a note; the saturated nuclei of bright images (and of an embryo of a few cells) are not touched."""

from __future__ import annotations

import numpy as np
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.predict.postprocess import normalize_percentile, prepare_image


def _nuclei(size=(256, 320), n=30, radius=9, seed=0) -> np.ndarray:
    """Blurred bright discs on a dim noisy background, 0..255 float."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size[0], :size[1]]
    img = np.zeros(size, np.float32)
    for _ in range(n):
        cy, cx = rng.uniform(radius, size[0] - radius), rng.uniform(radius, size[1] - radius)
        img = np.maximum(img, ((yy - cy) ** 2 + (xx - cx) ** 2 < radius ** 2) * rng.uniform(0.6, 1.0))
    img = cv2.GaussianBlur(img, (0, 0), 1.5)
    return img * 230 + rng.normal(8, 2, size).astype(np.float32)


def _twelve_bit(f: np.ndarray) -> np.ndarray:
    """12-bit camera data with an offset of 100 in a 16-bit file."""
    return np.clip(np.round(f * 16 + 100), 0, 65535).astype(np.uint16)


def _dusty(a: np.ndarray, radius=12, value=65535) -> np.ndarray:
    out = a.copy()
    yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
    out[(yy - 30) ** 2 + (xx - 30) ** 2 <= radius ** 2] = value  # in a corner: 0.55 % of the frame
    return out


def _hot_clusters(a: np.ndarray, n=100, seed=1) -> np.ndarray:
    out = a.copy()
    rng = np.random.default_rng(seed)
    for _ in range(n):
        y, x = rng.integers(0, a.shape[0] - 2), rng.integers(0, a.shape[1] - 2)
        out[y:y + 2, x:x + 2] = 65535
    return out


def _nucleus_level(work: np.ndarray, clean_work: np.ndarray) -> float:
    """The mean prepared level of the pixels that are nuclei in the clean frame."""
    return float(work[clean_work > 0.5].mean())


KEY = ("auto", 0.5, (1.0, 99.8), 12.0, 0.5)


@pytest.mark.parametrize("degrade", [_dusty, _hot_clusters])
def test_saturated_specks_do_not_set_the_brightness_scale(degrade):
    clean = _twelve_bit(_nuclei())
    bad = degrade(clean)
    ref = prepare_image(clean, *KEY)
    work = prepare_image(bad, *KEY)
    # before: the nuclei at ~0.05 of a scale the speck set; now as bright as in the clean frame
    assert _nucleus_level(work, ref) == pytest.approx(_nucleus_level(ref, ref), abs=0.05)
    from devolens.predict.postprocess import leaves_specks_out

    assert leaves_specks_out(bad, "auto", (1.0, 99.8), 0.5)
    assert not leaves_specks_out(clean, "auto", (1.0, 99.8), 0.5)


def test_specks_read_as_background():
    """A saturated disc left at 1 reads as one huge nucleus, hot clusters as dots that mislead the size model."""
    bad = _dusty(_twelve_bit(_nuclei()))
    work = prepare_image(bad, "auto", 1.0, (1.0, 99.8), 0.0, 0.0)
    assert work[30, 30] == 0.0 and work[27:34, 27:34].max() == 0.0


def test_rule_is_the_same_for_floats_holding_16_bit_values():
    """The population model reads a frame's channel as float32 (to_single_channel): the same decision."""
    from devolens.predict.postprocess import saturated_specks

    bad = _dusty(_twelve_bit(_nuclei()))
    mask = saturated_specks(bad)
    assert mask is not None and mask.sum() == (bad == 65535).sum()
    as_float = saturated_specks(bad.astype(np.float32))
    assert as_float is not None and np.array_equal(as_float, mask)
    assert saturated_specks(bad.astype(np.float32) / 65535) is None  # a 0..1 float image: no range known


def test_saturated_nuclei_of_bright_images_are_left_alone():
    """8-bit frames whose nuclei saturate (a render at gain 3, an embryo of two cells whose saturated nuclei have
    unsaturated rims above an eighth of the range) keep their percentiles: the held-out renders' inputs with saturated
    pixels hold their other pixels' 99.8th percentile at 0.31 of the top or more (0.16 without the hot-pixel step)."""
    from devolens.predict.postprocess import SPECK_RANGE, saturated_specks

    frame = np.clip(_nuclei() * 3, 0, 255).astype(np.uint8)  # saturated nuclei
    assert (frame == 255).any() and saturated_specks(frame) is None
    few = np.clip(_nuclei(n=2, radius=12) * 3, 0, 255).astype(np.uint8)  # two cells
    assert (few == 255).mean() < 0.02 and saturated_specks(few) is None
    assert np.array_equal(prepare_image(few, *KEY), normalize_percentile(prepare_image(few, *KEY, raw=True)))
    assert SPECK_RANGE == 1 / 8


def test_a_speck_too_large_or_data_too_bright_is_kept():
    from devolens.predict.postprocess import saturated_specks

    clean = _twelve_bit(_nuclei())
    assert saturated_specks(_dusty(clean, radius=60)) is None  # 13 % of the frame: not a speck
    bright = np.clip(np.round(_nuclei() * 200 + 100), 0, 65535).astype(np.uint16)  # 16-bit data using the range
    assert saturated_specks(_dusty(bright)) is None


def test_segment_and_population_say_so(tiny_zoo, tmp_path, capsys):
    """Once per run, with the number of frames; none for clean frames."""
    import tifffile

    for name, frames in (("dusty", [_dusty(_twelve_bit(_nuclei(seed=i))) if i != 1 else _twelve_bit(_nuclei(seed=i))
                                    for i in range(3)]),
                         ("clean", [_twelve_bit(_nuclei(seed=i)) for i in range(3)])):
        folder = tmp_path / name
        folder.mkdir()
        for i, frame in enumerate(frames):
            tifffile.imwrite(folder / f"t{i}.tif", frame)
        assert main(["segment", "nuclei", str(folder), "--out", str(tmp_path / f"seg_{name}"),
                     "--diameter", "none"]) == 0
        err = " ".join(capsys.readouterr().err.split())
        assert ("2 frames (t0, t2) hold a few pixels at the top of the file's range" in err) == (name == "dusty")
        assert err.count("left out of the brightness scale") == (name == "dusty")
        assert main(["population", str(folder), "--out", str(tmp_path / f"{name}.csv"), "--no-plot",
                     "--diameter", "none"]) == 0
        err = " ".join(capsys.readouterr().err.split())
        assert ("2 frames (t0, t2) hold a few pixels at the top" in err) == (name == "dusty")
