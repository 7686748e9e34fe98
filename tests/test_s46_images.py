"""Images (s46): a giant float image beyond float32's range is segmented block by block as the same image at an
ordinary scale is (one power of two for every block); a TIFF stack's planes and an animated GIF's or WebP's frames
are weighed against the memory available with their readers' measured peaks, as a whole image is."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from _zoo_helpers import shipped
from devolens.predict import blocks
from devolens.predict.postprocess import object_arrays


# --------------------------------------------------------------------------- giant float images
class _Network:
    """What segment_blocks uses of a network; its 'probabilities' are the prepared image."""

    def __init__(self):
        self.scale, self.tile, self.overlap, self.multiple = 1.0, 64, 16, 8
        self.flatten, self.outliers, self.percentiles, self.channel = 0.0, 0.0, (0.0, 100.0), "auto"

    def probabilities_working(self, prepared):
        return [p[None] for p in prepared]


class _Predictor:
    """Objects: the block's connected pixels above half its normalised range."""

    def __init__(self):
        self.network = _Network()
        self.card_scale, self.diameter_ref = 1.0, 4.0
        self.postprocess_options: dict = {}

    def _finish(self, probs, shape, options=None):
        import cv2

        from devolens.predict.segment import SegmentationResult

        n, lab = cv2.connectedComponents((probs[0] > 0.5).astype(np.uint8), connectivity=4)
        return SegmentationResult(probability=probs[0], labels=lab.astype(np.uint16), centroids=object_arrays(lab))


def _squares(side: int = 300) -> np.ndarray:
    """Bright 3 x 3 squares on a dim floor, float64 in 0..1."""
    img = np.full((side, side), 0.1)
    for y in range(1, side - 3, 7):
        for x in range(1, side - 3, 7):
            img[y:y + 3, x:x + 3] = 0.9
    return img


def _scaled(img: np.ndarray, power: int, dtype) -> np.ndarray:
    return np.ldexp(img, power).astype(dtype)  # (exact: a power of two)


@pytest.mark.parametrize("power, dtype", [(1000, np.float64), (-1000, np.float64), (-135, np.float64),
                                          (127, np.float32), (120, np.float32)])
def test_giant_float_images_beyond_float32_give_the_labels_of_the_ordinary_image(power, dtype):
    img = _squares()
    ref = blocks.segment_blocks(_Predictor(), img)
    assert ref.extra["blocks"] >= 4 and ref.count == len(range(1, 297, 7)) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow to inf, no float32 cast of 1e300
        res = blocks.segment_blocks(_Predictor(), _scaled(img, power, dtype))
    np.testing.assert_array_equal(res.labels, ref.labels)
    np.testing.assert_allclose(res.objects["mean_intensity"], ref.objects["mean_intensity"] * 2.0 ** power,
                               rtol=1e-6)


def test_one_power_of_two_for_the_whole_image_not_each_block():
    """A block of floor alone (its own top 1e299) and a block of objects (1e300) are read in the same units: the
    floor stays floor (a block's own scale would stretch it to 0..1 and find it an object)."""
    img = _squares()
    img[:, :150] = 0.1  # the left half: floor only
    ref = blocks.segment_blocks(_Predictor(), img)
    res = blocks.segment_blocks(_Predictor(), _scaled(img, 1000, np.float64))
    np.testing.assert_array_equal(res.labels, ref.labels)


def test_image_shift_reads_the_finite_magnitude_band_by_band():
    a = np.full((50, 40), 1e300)
    a[:7] = np.nan  # a stitched canvas's padding
    a[30, 3] = -np.inf
    assert blocks.image_shift(a, rows=8) == int(np.frexp(1e300)[1])
    assert blocks.image_shift(np.full((4, 4), 1e-300)) == int(np.frexp(1e-300)[1])
    for ordinary in (np.linspace(0, 65535, 64).reshape(8, 8), np.zeros((4, 4)), np.full((4, 4), np.nan),
                     np.ones((4, 4), np.uint16) * 60000, np.full((4, 4), 1e29, np.float32)):
        assert blocks.image_shift(ordinary) == 0


@pytest.mark.skipif(not shipped("nuclei"), reason="needs the shipped nuclei model")
def test_a_giant_float32_image_near_its_top_is_segmented_at_a_working_scale():
    """The shipped network at a working scale under 1 (its shrink sums pixels: near 2^127 they overflow float32)."""
    from devolens.models import load
    from devolens.render.wells import simulate_well

    image = simulate_well(seed=2, size=(640, 640), density=1500, dead_fraction=0.1).image[0].astype(np.float32)
    image /= np.float32(image.max())
    model = load("nuclei", diameter=24, tile=128, block_pixels=20_000)
    ref = model.predict(image)
    assert ref.extra["blocks"] > 1 and ref.count > 20
    res = model.predict(image * np.float32(2.0 ** 127))
    np.testing.assert_array_equal(res.labels, ref.labels)


# --------------------------------------------------------------------------- memory: stacks' planes, animated frames
GB = 10**9


@pytest.fixture
def leaves(monkeypatch):
    """Every array weighed (none too small), only a ``ulimit -v`` limit known; returns a setter of what it leaves."""
    from devolens.io import images

    monkeypatch.setattr(images, "MEMORY_CHECK_BYTES", 0)
    monkeypatch.setattr(images, "_meminfo_available", lambda: 64 * GB)
    monkeypatch.setattr(images, "cgroup_memory_available", lambda: None)
    monkeypatch.delenv(images.NO_CHECK_ENV, raising=False)

    def set_(n: float) -> None:
        monkeypatch.setattr(images, "address_space_available", lambda: (int(n), 3 * GB))
    return set_


def _animated(path, kind: str, shape=(100, 120)) -> int:
    """A 3-frame animated GIF or WebP; the bytes of one frame as read (``H x W x 3`` uint8)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (*shape, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0,
                   **({"lossless": True} if kind == "webp" else {}))
    return shape[0] * shape[1] * 3


@pytest.mark.parametrize("kind, refused", [("gif", 4.0), ("webp", 7.0)])
def test_an_animated_frame_is_weighed_with_pillows_peak(tmp_path, leaves, kind, refused):
    """Room for the frame several times over, not for Pillow's frames and copies (GIF 4.6 x, WebP 7.3 x)."""
    from devolens.io.atomic import Exhausted
    from devolens.io.frames import open_animated

    src = tmp_path / f"a.{kind}"
    frame = _animated(src, kind)
    leaves(frame * refused)
    with pytest.raises(Exhausted, match="declares frames of 100 x 120 x 3 uint8 values.*while it is decoded"):
        open_animated(src)
    leaves(frame * 8)
    frames, n, _ = open_animated(src)
    assert n == 3 and all(f.shape == (100, 120, 3) for f in frames)


def _stack(path, axes: str, compression=None, planes: int = 6, shape=(64, 80)) -> int:
    import tifffile

    rng = np.random.default_rng(0)
    tifffile.imwrite(path, rng.integers(0, 4000, (planes, *shape), dtype=np.uint16), compression=compression,
                     photometric="minisblack", metadata={"axes": axes})
    return shape[0] * shape[1] * 2


@pytest.mark.parametrize("compression", ["zlib", "lzw"])
def test_a_compressed_stacks_plane_is_weighed_with_its_decoding(tmp_path, leaves, compression):
    """A page's compressed strips are read whole and decoded (2.1 x and its bytes), as read_image's TIFF."""
    from devolens.io.atomic import Exhausted
    from devolens.io.stacks import open_stack

    src = tmp_path / "t.tif"
    plane = _stack(src, "TYX", compression)
    leaves(plane * 1.8)
    with pytest.raises(Exhausted, match="declares planes of 64 x 80 uint16 values.*while it is decoded"):
        open_stack(src, z="slices")
    leaves(plane * 4)
    frames, n = open_stack(src, z="slices")
    assert n == 6 and sum(1 for _ in frames) == 6


def test_a_projection_holds_its_accumulator_besides_the_plane(tmp_path, leaves):
    """Uncompressed planes are read straight into their array (1 x: weighed as before); a projection of z planes
    keeps the accumulator besides (2 x)."""
    from devolens.io.atomic import Exhausted
    from devolens.io.stacks import open_stack

    src = tmp_path / "z.tif"
    plane = _stack(src, "ZYX")
    leaves(plane * 1.5)
    frames, n = open_stack(src, z="slices")  # one plane at a time: fits
    assert n == 6 and sum(1 for _ in frames) == 6
    with pytest.raises(Exhausted, match="declares planes of 64 x 80 uint16 values.*while it is decoded"):
        open_stack(src, z="project")
    leaves(plane * 2.5)
    frames, n = open_stack(src, z="project")
    assert n == 1 and len(list(frames)) == 1
