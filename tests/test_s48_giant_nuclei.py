"""Giant images in ``segment nuclei`` (session-48 walkthrough), on small images whose block path a small block size
sets off: the lone nuclei dropped as specks are recorded (``extra["isolated_dropped"]``) and noted as on a whole
image (an 8000x8000 well dropped them silently); the overlay of an image larger than ``segment livedead``'s limit is
drawn shrunk, with its note (a 12000x12000 image gave a 110 MB PNG that PIL warns about); the progress counts the
passes by their cost, a lone giant image in its blocks, and the writing after them as a phase of its own."""
from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import tifffile

from _zoo_helpers import shipped

needs_nuclei = pytest.mark.skipif(not shipped("nuclei"), reason="needs the shipped nuclei model")


def _nuclei(side: int = 640, seed: int = 0) -> np.ndarray:
    """Big nuclei (radius 13) on a grid and a small lone one (radius 6, ~120 px: under a quarter of the median
    nucleus, far above the smallest size kept) between every four of them."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    a = np.zeros((side, side), np.float32)
    yy, xx = np.mgrid[:side, :side]
    for step, start, r in ((60, 30, 13), (120, 60, 6)):
        for cy in range(start, side - 20, step):
            for cx in range(start, side - 20, step):
                a[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
    a = ndi.gaussian_filter(a, 1.5) * 800 + 100 + rng.normal(0, 10, a.shape)
    return np.clip(a, 0, 65535).astype(np.uint16)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return _nuclei()


@needs_nuclei
def test_the_block_path_records_the_lone_nuclei_it_drops(image):
    from devolens.models import load

    whole = load("nuclei", diameter=26, tile=256, block_pixels=float("inf")).predict(image)
    seen: list = []
    model = load("nuclei", diameter=26, tile=256, block_pixels=40_000)
    res = next(model.predict_iter([image], total=1, progress=lambda done, total: seen.append((done, total))))
    assert "blocks" not in whole.extra and res.extra["blocks"] > 1
    lone, lone_blocks = whole.extra["isolated_dropped"], res.extra["isolated_dropped"]
    assert len(lone) == 25 and len(lone_blocks) == len(lone)  # the same small nuclei, in input pixels alike
    assert lone_blocks.dtype == lone.dtype and abs(float(np.median(lone_blocks)) - float(np.median(lone))) < 15
    assert res.count == whole.count == 100
    # one image alone: counted in its blocks (not "0.8/1"), never backwards, ending at all of them
    assert {t for _, t in seen} == {res.extra["blocks"]}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == res.extra["blocks"] and len(done) > res.extra["blocks"]
    # two images: counted in images, the giant's blocks moving the count within it
    seen.clear()
    list(model.predict_iter([image[:100, :100], image], total=2, progress=lambda d, t: seen.append((d, t))))
    assert {t for _, t in seen} == {2}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == 2 and any(1 < d < 2 for d in done)


def test_the_percentile_pass_counts_as_a_small_share_of_the_blocks():
    """Pass 1 (a quick percentile read of each block) weighs a few per cent of pass 2 (the network), not half."""
    from test_giant_blocks import _squares, _StubPredictor

    from devolens.predict import blocks

    seen: list = []
    res = blocks.segment_blocks(_StubPredictor(), _squares(300, 300), progress=lambda d, t: seen.append((d, t)))
    n = res.extra["blocks"]
    assert n > 2 and {t for _, t in seen} == {n}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == pytest.approx(n)
    assert len(done) == 2 * n + 1  # each block in both passes, then the end (specks, mean intensity)
    assert done[n - 1] < 0.1 * n  # after pass 1
    assert done[2 * n - 1] < n  # the end still to come


@needs_nuclei
def test_cli_notes_lone_nuclei_shrinks_the_overlay_and_shows_the_writing(image, tmp_path, monkeypatch, capsys):
    from devolens.cli import _common, main, tiles
    from devolens.predict import blocks

    monkeypatch.setattr(blocks, "BLOCK_PIXELS", 40_000)
    monkeypatch.setattr(tiles, "OVERLAY_SIDE", 200)
    calls: list = []

    class Recorder:
        description = "segment nuclei"

        def __call__(self, done, total):
            calls.append((self.description, done, total))

        @contextlib.contextmanager
        def phase(self, description):
            outer, self.description = self.description, description
            yield self
            self.description = outer

    @contextlib.contextmanager
    def bar(description):
        yield Recorder()

    monkeypatch.setattr(_common, "progress_bar", bar)
    src = tmp_path / "giant.tif"
    tifffile.imwrite(src, image)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--diameter", "26"]) == 0
    text = " ".join(capsys.readouterr().err.split())
    assert "overlapping block" in text  # (the block path ran)
    assert "lone nuclei of about" in text and "--keep-small" in text
    shrunk = "overlays/giant_overlay.png: drawn at 1/4 of the image's size (160 x 160 px of 640 x 640)"
    assert shrunk in text and "labels hold the full size" in text
    from PIL import Image

    with Image.open(out / "overlays" / "giant_overlay.png") as ov:
        assert ov.size == (160, 160)
    assert tifffile.imread(out / "labels" / "giant_labels.tif").shape == (640, 640)
    notes = " ".join(json.loads((out / "segment.json").read_text())["notes"])
    assert "lone nuclei of about" in notes and shrunk in notes
    # the blocks counted on the command's row, then the labels and overlay written as a phase of their own
    mine = [c for c in calls if c[0] == "segment nuclei"]
    writing = [c for c in calls if c[0] == "writing labels and overlay"]
    assert mine and writing and calls.index(writing[0]) > calls.index(mine[-1])
    assert [d for _, d, _ in mine] == sorted(d for _, d, _ in mine) and mine[-1][1] == mine[-1][2]
    assert [d for _, d, _ in writing] == sorted(d for _, d, _ in writing)
    assert writing[0][1] == 0 and writing[-1][1] == writing[-1][2] == 3  # labels, overlay drawn, written


def test_livedead_and_segment_share_the_shrunk_overlay_note():
    from devolens.cli.tiles import overlay_step, shrunk_overlay_note

    assert overlay_step(4096, 100) == 1 and overlay_step(4097, 100) == 2 and overlay_step(100, 12000) == 3
    assert shrunk_overlay_note("x.png", 1, (10, 10), (10, 10)) is None
    assert shrunk_overlay_note("overlays/w_overlay.png", 3, (1000, 1334), (3000, 4000)) == (
        "overlays/w_overlay.png: drawn at 1/3 of the well's size (1334 x 1000 px of 4000 x 3000): nuclei under ~3 px "
        "across may show no outline; labels hold the full size")
