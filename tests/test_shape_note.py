"""`segment membrane` given nuclei (bright blobs) and `segment nuclei` given membranes (thin bright lines) say so:
the wrong model gives plausible-looking but meaningless outlines without a word otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from _render_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.io.images import write_png
from devolens.predict.postprocess import blob_fraction


def _blobs(size=256, radius=14, seed=0):
    return blob_frame(size, n=25, radius=radius, background=10.0, seed=seed)


def _lines(size=256, pitch=40, seed=0):
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.float32)
    for k in range(pitch // 2, size, pitch):
        img[k:k + 3, :] = 1.0
        img[:, k:k + 3] = 1.0
    return (img * 200 + rng.normal(10, 3, img.shape)).clip(0, 255).astype(np.uint8)


def test_blob_fraction_tells_blobs_from_lines():
    assert blob_fraction(_blobs() / 255.0) > 0.8
    assert blob_fraction(_lines() / 255.0) < 0.05
    assert blob_fraction(np.zeros((50, 50))) is None  # nothing bright: nothing to judge


@pytest.mark.parametrize("kind, image, noted", [
    ("membrane", _blobs, "looks like nuclei"), ("nuclei", _lines, "looks like membranes"),
    ("nuclei", _blobs, None), ("membrane", _lines, None)])
def test_segment_says_when_the_input_looks_like_the_other_kind(tiny_zoo, tmp_path, capsys, kind, image, noted):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        write_png(image(seed=i), folder / f"t{i}.png")
    assert main(["segment", kind, str(folder), "--out", str(tmp_path / "out"), "--diameter", "none"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    if noted:
        assert noted in err and f"segment {'nuclei' if kind == 'membrane' else 'membrane'}" in err
    else:
        assert "looks like" not in err


def test_dark_or_sparse_frames_are_not_judged():
    """A dark frame, or one nucleus on a big noisy field, is normalised to its noise: its "bright structure" is
    noise specks, which read as lines (the membranes note fired on them)."""
    from devolens.predict.postprocess import prepare_image

    rng = np.random.default_rng(1)
    dark = rng.poisson(100, (1024, 1024)).astype(np.uint16)
    sparse = dark.copy()
    yy, xx = np.mgrid[:1024, :1024]
    sparse[(yy - 300) ** 2 + (xx - 400) ** 2 < 12 ** 2] += 3000
    for img in (dark, sparse):
        value = blob_fraction(prepare_image(img, "auto", 0.5, (1.0, 99.8), 60.0, 0.5))
        assert value is None or value > 0.45


def test_no_note_when_the_diameter_was_given_by_hand():
    from types import SimpleNamespace

    from devolens.cli.predict import _shape_note

    net = SimpleNamespace(channel="auto", percentiles=(1.0, 99.8), flatten=0.0, outliers=0.0)
    pred = SimpleNamespace(network=net, card_scale=0.5, working_scale=lambda: 0.5, auto_each=False, diameter=None,
                           last_estimate=None)
    frames = [_blobs(seed=i) for i in range(3)]
    assert "looks like nuclei" in _shape_note(frames, "membrane", pred)
    pred.diameter = 30.0  # --diameter 30: the objects' size, not a line's thickness
    assert _shape_note(frames, "membrane", pred) is None
    pred.last_estimate = object()  # the same diameter from --diameter auto's estimate: judged
    assert _shape_note(frames, "membrane", pred) is not None
    pred.auto_each = True
    assert _shape_note(frames, "membrane", pred) is None
