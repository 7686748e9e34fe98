"""Saturated nuclei and membranes are no dust: the speck rule (postprocess.saturated_specks) filled an early
embryo's saturated nuclei with background and stretched the background's noise into dozens of "nuclei" (an 8-bit
4-cell frame with hard-edged nuclei at 255: 4 -> 49 nuclei; a 16-bit one at 65535: 4 -> 40; saturated membranes:
6 -> 469 cells)."""

from __future__ import annotations

import numpy as np
import pytest

from devolens.predict.postprocess import leaves_specks_out, saturated_specks


def _embryo(dtype, top, cells=4, size=(512, 752), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size[0], :size[1]]
    img = rng.normal(top * 0.02, top * 0.004, size)
    body = ((yy - 256) / 150.0) ** 2 + ((xx - 376) / 230.0) ** 2 < 1
    img[body] += top * 0.04
    for k in range(cells):
        cy, cx = 256 + 80 * np.sin(2 * np.pi * k / cells), 376 + 120 * np.cos(2 * np.pi * k / cells)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < (18 if cells <= 4 else 13) ** 2] = top  # saturated, hard-edged nuclei
    return np.clip(np.round(img), 0, top).astype(dtype)


@pytest.mark.parametrize("dtype,top", [(np.uint8, 255), (np.uint16, 65535), (np.float32, 255.0),
                                       (np.float32, 65535.0)])
@pytest.mark.parametrize("cells", [2, 4, 8])
def test_saturated_nuclei_are_left_as_they_are(dtype, top, cells):
    frame = _embryo(dtype, top, cells)
    assert (frame == top).mean() < 0.02
    assert saturated_specks(frame.astype(frame.dtype)) is None
    assert not leaves_specks_out(frame, "auto", (1.0, 99.8), 0.5)


def test_saturated_membranes_are_left_as_they_are():
    rng = np.random.default_rng(1)
    img = rng.normal(700, 100, (512, 752))
    img[::120, :] = 65535  # a saturated network of membranes, 1 px wide
    img[:, ::120] = 65535
    frame = np.clip(img, 0, 65535).astype(np.uint16)
    assert (frame == 65535).mean() < 0.02 and saturated_specks(frame) is None


def test_one_dust_speck_and_hot_pixel_clusters_on_twelve_bit_data_are_specks():
    frame = _embryo(np.uint16, 4095, cells=8).astype(np.uint16) + 100  # 12-bit data with an offset: no 65535
    yy, xx = np.mgrid[:512, :752]
    dusty = frame.copy()
    dusty[(yy - 30) ** 2 + (xx - 30) ** 2 <= 15 ** 2] = 65535
    assert saturated_specks(dusty) is not None
    hot = frame.copy()
    rng = np.random.default_rng(2)
    for y, x in zip(rng.integers(0, 510, 100), rng.integers(0, 750, 100)):
        hot[y:y + 2, x:x + 2] = 65535
    assert saturated_specks(hot) is not None


def test_an_eight_bit_image_never_has_specks():
    """SPECK_TOPS holds 16 bits only: an 8-bit frame's pixels at 255 are left as they are, whatever their shape (one
    3x3 block was filled as a speck while the note said nothing)."""
    frame = np.full((64, 64), 10, np.uint8)
    frame[30:33, 30:33] = 255
    assert saturated_specks(frame) is None and not leaves_specks_out(frame, "auto", (1.0, 99.8))
