"""A membrane-marker user's walk (thirty-eighth session): a (T, H, W) stack of frames given to ``predict`` segmented one
of its frames (4 planes read as RGBA, its "green" taken), a size note after ``--diameter auto`` that blamed an
estimate which was right, and ``segment --help`` saying overlay.mp4 is for videos only."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from _zoo_helpers import shipped
from devolens.errors import DevolensError
from devolens.predict.postprocess import image_array


def _frames(n: int, shape=(40, 56)) -> np.ndarray:
    """``n`` different grey frames (blobs moving), stacked (n, H, W) uint8."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = []
    for k in range(n):
        cy, cx = 10 + 4 * k, 12 + 6 * k
        out.append((200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 40.0)).astype(np.uint8))
    return np.stack(out)


# ------------------------------------------------------------------------------------------------ 1: a stack of frames
@pytest.mark.parametrize("n", [2, 4, 5, 12])
def test_a_stack_of_frames_given_as_one_image_points_to_predict_iter(n):
    stack = _frames(n)
    for given in (stack, torch.from_numpy(stack)):
        with pytest.raises(DevolensError, match=rf"shape \({n}, 40, 56\): a stack of {n} frames[,?].*One image is "
                                                r"HxW, HxWx3 or channels-first 3xHxW; for a stack of frames give the "
                                                r"frames one by one: predict_iter\(frames\) or predict_batch") as err:
            image_array(given)
        # worded for wherever the image came (predict, or an item of predict_iter's or population's stream)
        assert "predict takes" not in str(err.value)


def test_two_planes_may_be_a_two_channel_image():
    with pytest.raises(DevolensError, match=r"a stack of 2 frames, or a two-channel image\?.*for one channel of a "
                                            r"two-channel image give image\[k\]"):
        image_array(_frames(2))
    with pytest.raises(DevolensError) as err:
        image_array(_frames(5))
    assert "image[k]" not in str(err.value)


def test_a_stack_inside_predict_iter_is_refused_in_neutral_words():
    from devolens.models.architectures import build_model
    from devolens.predict.segment import NucleiPredictor

    torch.manual_seed(0)
    pred = NucleiPredictor(build_model("unet", "resnet18", in_channels=1, classes=3, encoder_depth=3,
                                       decoder_channels=(16, 8, 4)))
    with pytest.raises(DevolensError, match=r"give the frames one by one: predict_iter\(frames\)") as err:
        list(pred.predict_iter([_frames(5)]))  # one item of the stream is itself a stack
    assert "predict takes" not in str(err.value)


def _antialiased_alpha(shape=(40, 56)) -> np.ndarray:
    """An RGBA cut-out's alpha: opaque (255) over most of the image, falling to 0 over a 3 px anti-aliased edge near
    the border (many levels)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    edge = np.minimum.reduce([yy, xx, shape[0] - 1 - yy, shape[1] - 1 - xx]).astype(np.float32)
    return np.clip(255 * (edge - 1) / 3, 0, 255).astype(np.uint8)


def test_rgba_channels_first_with_an_antialiased_alpha_is_one_colour_image():
    alpha = _antialiased_alpha()
    assert len(np.unique(alpha)) > 2 and (alpha == 255).mean() > 0.5
    rgba = np.dstack([np.moveaxis(_frames(3), 0, -1), alpha])
    first = np.moveaxis(rgba, -1, 0)  # torchvision's read_image(..., ImageReadMode.UNCHANGED) layout
    for given in (first, torch.from_numpy(first.copy())):
        got = image_array(given)
        assert got.shape == (40, 56, 4) and np.array_equal(got, rgba)  # was: "a stack of 4 frames?"
    # a 4th frame of a stack (its top level in a few pixels) is still refused
    with pytest.raises(DevolensError, match="a stack of 4 frames"):
        image_array(np.concatenate([_frames(3), np.where(alpha == 255, _frames(1)[0], 0)[None]]))


def test_rgba_channels_first_is_still_one_colour_image():
    rgb = np.moveaxis(_frames(3), 0, -1)
    for alpha in (np.full((40, 56), 255, np.uint8), np.where(_frames(1)[0] > 20, 255, 0).astype(np.uint8)):
        rgba = np.dstack([rgb, alpha])  # alpha: opaque throughout, or a transparency mask (two levels)
        got = image_array(np.moveaxis(rgba, -1, 0))
        assert got.shape == (40, 56, 4) and np.array_equal(got, rgba)
        assert np.array_equal(image_array(rgba), rgba)  # channels-last: as it is
    varying = np.dstack([rgb, _frames(1)[0]])  # a 4th plane of many levels: a frame, not an alpha plane
    with pytest.raises(DevolensError, match=r"a stack of 4 frames, or an RGBA image whose 4th plane is no alpha\?.*"
                                            r"channels-last: np\.moveaxis\(image, 0, -1\)"):
        image_array(np.moveaxis(varying, -1, 0))
    assert image_array(varying) is varying  # channels-last RGBA of any alpha: as it is
    # three planes are read as colour (documented: three grey frames look like three stains)
    assert image_array(_frames(3)).shape == (40, 56, 3)
    # a channel-last image of more channels (its last axis the smallest) is left to the check where it is used
    many = np.zeros((40, 56, 6), np.uint8)
    assert image_array(many) is many


def test_predict_of_a_stack_is_refused_and_predict_iter_takes_it():
    from devolens.models.architectures import build_model
    from devolens.predict.segment import NucleiPredictor

    torch.manual_seed(0)
    pred = NucleiPredictor(build_model("unet", "resnet18", in_channels=1, classes=3, encoder_depth=3,
                                       decoder_channels=(16, 8, 4)))
    stack = _frames(4)
    with pytest.raises(DevolensError, match="predict_iter"):
        pred.predict(stack)  # was: the stack read as RGBA, one frame's result
    assert [r.labels.shape for r in pred.predict_iter(stack)] == [(40, 56)] * 4


def test_an_rgba_file_is_read_as_before(tmp_path):
    import imageio.v3 as iio

    rgba = np.dstack([np.moveaxis(_frames(3), 0, -1), _frames(1)[0]])
    iio.imwrite(tmp_path / "rgba.png", rgba)
    assert image_array(tmp_path / "rgba.png").shape == (40, 56, 4)


# ------------------------------------------------------------------------------------------------ 2: the size note
def _note(**kw) -> str:
    from devolens.cli.predict import _size_note

    resized = kw.get("by") is not None  # (the images resized: by the estimate or by hand)
    return " ".join(_size_note("cells", kw.pop("suggested"), (32.6, 175.2), resized, kind="membrane", **kw).split())


def test_size_note_does_not_blame_a_right_estimate_the_keep_band_left_off_the_middle():
    """A 2x2-binned membrane slice: estimated 0.54x (right), resized only 1.03x into the keep band 0.55-1.15, its
    cells read 26.7 px (25 px in truth). The estimate fits cells of that width (at the middle, 0.795x, they would
    be 39 px): the note says the images were kept off the middle, not that the estimate misjudged."""
    est = SimpleNamespace(magnification=0.5425, trusted=1)
    text = _note(suggested=26.7, resize=1.0277, by="auto", diameter=58.7, estimate=est, middle=0.7953,
                 trained=(0.55, 1.15))
    assert "misjudged" not in text and "culture" not in text
    assert "about 26.7 px wide, below the 31.7-170 px" in text
    assert "estimate (0.54x) fits cells of that width" in text
    assert "resized the images only 1.03x for the network, to 0.56x, below the middle (0.8x) of the 0.55-1.15x" in text
    assert text.endswith("Run again with --diameter 26.7 to bring them to the middle of the sizes this model knows.")
    # kept as they are (estimate inside the band, no resize): the same story
    text = _note(suggested=23.2, resize=1.0, by=None, diameter=None, estimate=SimpleNamespace(
        magnification=0.568, trusted=1), middle=0.7953, trained=(0.55, 1.15))
    assert "left the images as they are (0.57x), below the middle" in text and "--diameter 23.2" in text
    assert "another magnification?" not in text


def test_size_note_still_blames_an_estimate_that_does_not_fit():
    # a culture of 59.5 px cells read as 2x: at the middle they would be 24 px, outside what the model knows
    est = SimpleNamespace(magnification=2.0, trusted=1)
    text = _note(suggested=59.5, resize=0.297 / 0.75, by="auto", diameter=152.0, estimate=est, middle=0.7953,
                 trained=(0.55, 1.15))
    assert "probably misjudged the magnification (an image filled with cells" in text and "--diameter 59.5" in text
    # no estimate recorded (or one decided by no image): the words as before
    for est in (None, SimpleNamespace(magnification=0.5425, trusted=0)):
        text = _note(suggested=26.7, resize=1.0277, by="auto", diameter=58.7, estimate=est, middle=0.7953,
                     trained=(0.55, 1.15))
        assert "probably misjudged" in text
    text = _note(suggested=23.2, resize=1.0, by=None, diameter=None)
    assert "far from the sizes this model knows (32.6-175.2 px): another magnification?" in text


@pytest.mark.skipif(not shipped("membrane"), reason="membrane weights not shipped")
def test_segment_membrane_on_a_half_size_slice_gives_the_diameter_without_blaming_the_estimate(tmp_path, capsys):
    """A rendered late slice shrunk 0.5x: estimated 0.53x (right), resized 1.09x, cells read 22.8 px; F1 0.87,
    0.92 with the --diameter 22.8 the note gives."""
    import cv2

    from devolens.cli import main
    from devolens.io.images import write_png
    from devolens.lineage.simulate import simulate_embryo
    from devolens.render.membranes import render_membrane_frame

    table = simulate_embryo(11, n_cells=350)
    frame = render_membrane_frame(table, int(table["time"].max()), size=(512, 752), seed=5)
    write_png(cv2.resize(frame.image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), tmp_path / "half.png")
    assert main(["segment", "membrane", str(tmp_path / "half.png"), "--out", str(tmp_path / "o")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "fits cells of that width" in err and "misjudged" not in err, err
    assert "Run again with --diameter " in err


# ------------------------------------------------------------------------------------------------ 3: --out's help
@pytest.mark.parametrize("kind", ["membrane", "nuclei"])
def test_segment_help_says_which_inputs_get_overlay_mp4(kind):
    import typer

    from devolens.cli import app

    segment = typer.main.get_command(app).commands["segment"].commands[kind]
    text = " ".join(next(p for p in segment.params if p.name == "out").help.split())
    assert "overlay.mp4 (for a video, a TIFF stack of z-planes or time points, or an animated GIF or WebP)" in text
    assert "(video input)" not in text
