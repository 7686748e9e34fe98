"""An RGB float image padded with NaN (registration, stitching) is read by the channel that carries its nuclei.

A sort puts NaN last, so with a NaN border a channel's 99.5th percentile was NaN and the colour rule's argmax took the
first channel, red, whatever held the nuclei (RESULTS.md, forty-first session, "Named, not mended")."""
import numpy as np
import pytest

from devolens.predict.postprocess import _signal_channel, channel_signals, to_single_channel


def _green_nuclei(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(100, 5, (256, 256, 3)).astype(np.float32)
    yy, xx = np.mgrid[:256, :256]
    for cy, cx in rng.integers(20, 236, (30, 2)):
        img[..., 1][(yy - cy) ** 2 + (xx - cx) ** 2 < 64] += 500
    return img


@pytest.mark.parametrize("pad", ["columns", "rows", "scattered"])
def test_a_nan_padded_float_rgb_image_is_read_by_its_nuclei_channel(pad):
    img = _green_nuclei()
    assert _signal_channel(img) == 1
    if pad == "columns":
        img[:, :40] = np.nan
    elif pad == "rows":
        img[:3] = np.nan
    else:
        img[np.random.default_rng(1).random(img.shape[:2]) < 0.02] = np.inf
    assert _signal_channel(img) == 1
    signals = channel_signals(img)
    assert np.isfinite(signals).all() and int(np.argmax(signals)) == 1
    plane = to_single_channel(img)
    assert plane.ndim == 2


def test_an_all_nan_float_rgb_image_still_reads_as_one_channel():
    img = np.full((128, 128, 3), np.nan, np.float32)
    assert np.isfinite(channel_signals(img)).all()
    assert to_single_channel(img).shape == (128, 128)
