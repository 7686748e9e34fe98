"""A Python user's walkthrough (forty-first session): ``diameter="auto"`` reads an image padded with a constant as it
reads the image itself (a black border moved the magnification and the count); a float image of tiny values (all
under 1e-6) is normalised by its own scale, not read as flat (0 nuclei); ``predict`` of the population model given a
list of images, and an ``HxWx2`` image, are refused as the nuclei model refuses them and a ``(2, H, W)`` array; the
model argument's errors name ``load(name)`` in Python and ``--model`` on the command line."""

from __future__ import annotations

import numpy as np
import pytest

from _render_helpers import blob_frame
from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError
from test_predict_sizing import _disc_image


def _refusal(call) -> DevolensError:
    with pytest.raises(DevolensError) as caught:
        call()
    return caught.value


def _padded(image: np.ndarray, sides, value=0) -> np.ndarray:
    """``image`` padded with ``value``: ``sides`` = (top, bottom, left, right) pixels."""
    top, bottom, left, right = sides
    width = ((top, bottom), (left, right)) + ((0, 0),) * (image.ndim - 2)
    return np.pad(image, width, constant_values=value)


# ------------------------------------------------------------------ 1. a constant border is not read as content
def test_border_box_finds_a_pad_but_not_an_images_own_background():
    from devolens.predict.postprocess import border_box

    frame = blob_frame((96, 128), n=10, background=20.0)  # camera noise up to its edges
    assert border_box(frame) is None
    for sides in ((10, 10, 10, 10), (0, 0, 25, 0), (3, 40, 0, 7)):
        for value in (0, 255):
            box = border_box(_padded(frame, sides, value))
            assert box == (sides[0], sides[0] + 96, sides[2], sides[2] + 128), (sides, value)
    rgb = np.stack([frame, frame // 2, frame // 3], axis=-1)
    assert border_box(_padded(rgb, (5, 5, 5, 5))) == (5, 101, 5, 133)
    grey = frame.astype(np.float32) / 255
    assert border_box(_padded(grey, (6, 6, 6, 6), np.nan)) == (6, 102, 6, 134)  # NaN after registration
    # the image's own even levels: a gradient without noise (each column one level), a pad inside a pad
    ramp = np.repeat(np.linspace(100, 0, 128).astype(np.uint8)[None], 96, axis=0)
    assert border_box(ramp) is None and border_box(_padded(_padded(frame, (4, 4, 4, 4), 30), (9, 9, 9, 9))) is None
    box = border_box(_padded(frame, (12, 0, 0, 3)))
    assert border_box(_padded(frame, (12, 0, 0, 3))[box[0]:box[1], box[2]:box[3]]) is None  # (cut once: itself)
    # an image's own background of one grey level (a render's, discs on black): part of the image, left as it is
    assert border_box(_disc_image((64, 96), 5)) is None and border_box(_disc_image((260, 220), 10, n=9)) is None
    assert border_box(np.zeros((40, 50), np.uint8)) is None  # nothing but the fill


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped")
def test_a_padded_image_reads_the_magnification_of_the_image_itself():
    """The real reference frame 300 padded with 0 by 0-100 px on every side was read 1.20-1.31x (1.29x alone; 134-152 nuclei, 138 alone), a
    render 0.62x alone and 0.83x with a 10 px border of 0 (its background lies above 0: the border moved the
    percentiles); the size model now reads what lies inside the border."""
    from devolens.lineage.simulate import simulate_embryo
    from devolens.models import load
    from devolens.render.nuclei import render_nuclei_frame

    pred = load("nuclei", diameter="auto")
    if pred.size_model is None:
        pytest.skip("the shipped nuclei model has no size model")
    table = simulate_embryo(11, n_cells=90)
    t = int(table.groupby("time").size().index[-1])
    frame = render_nuclei_frame(table, t, size=(512, 752), seed=5, rgb=False).image
    frame = (frame.astype(np.uint16) + 20).astype(np.uint8)  # a camera's offset: the background above 0
    alone = pred.estimate_diameter([frame]).magnification
    for sides in ((10, 10, 10, 10), (0, 30, 45, 0)):
        assert pred.estimate_diameter([_padded(frame, sides)]).magnification == pytest.approx(alone, rel=1e-6)


# ------------------------------------------------------------------ 2. tiny values are an image's own scale
def test_an_image_of_tiny_values_is_normalised_by_its_own_scale():
    from devolens.predict.postprocess import normalize_percentile, percentile_limits, remove_outliers

    frame = blob_frame((96, 128), n=10).astype(np.float32)
    frame[40, 40] = 255.0  # a hot pixel
    plain = normalize_percentile(frame)
    for scale in (1e-8, 1e-10, 1e-20):  # (1e-10 and below were read as flat: nothing but 0)
        assert np.allclose(normalize_percentile(frame * np.float32(scale)), plain, atol=1e-4), scale
        cleaned = remove_outliers(frame * np.float32(scale), 0.5)  # the hot pixel goes at any scale (was kept)
        assert cleaned[40, 40] < 0.5 * 255 * scale
    # a flat image is still flat: high above low, nothing but 0
    for value in (0.0, 3e-9, 5.0):
        lo, hi = percentile_limits(np.full(100, value, np.float32), 1.0, 99.8)
        assert hi > lo
        assert not normalize_percentile(np.full((20, 20), value, np.float32)).any()


@pytest.mark.skipif(not shipped("nuclei"), reason="nuclei weights not shipped")
def test_a_scaled_float_image_finds_what_the_image_finds():
    """The walkthrough's render: 73 nuclei, scaled by 1e-8 73, by 1e-10 none (every value under 1e-6: read as flat)."""
    from devolens.models import load

    pred = load("nuclei")
    frame = blob_frame((160, 200), n=14, radius=12).astype(np.float64)
    plain = pred.predict(frame)
    assert plain.count >= 10
    tiny = pred.predict(frame * 1e-10)
    assert tiny.count == plain.count and np.array_equal(tiny.labels, plain.labels)


# ------------------------------------------------------------------ 3. refusals alike across the models
def test_population_predict_of_several_images_points_at_its_batch_methods(tiny_zoo):  # noqa: F811
    from devolens.models import load

    frame = _disc_image((96, 128), 6)
    pops, nuclei = load("population"), load("nuclei")
    for several in ([frame, frame], (frame, frame)):
        said = _refusal(lambda: pops.predict(several)).message  # was "expected an HxW or HxWx3 image, got (2, ...)"
        assert said.startswith(f"predict takes one image, got a {type(several).__name__} of 2")
        assert "predict_batch(images)" in said and "predict_iter(images)" in said
        assert _refusal(lambda: nuclei.predict(several)).message.startswith("predict takes one image")


def test_a_two_channel_image_channels_last_is_refused_helpfully(tiny_zoo):  # noqa: F811
    from devolens.models import load
    from devolens.predict.postprocess import to_single_channel

    frame = _disc_image((96, 128), 6)
    two = np.stack([frame, frame], axis=-1)
    for model in (load("nuclei"), load("population")):
        said = _refusal(lambda: model.predict(two)).message
        assert said.startswith("expected an HxW or HxWx3 image, got an array of shape (96, 128, 2): a two-channel")
        assert "image[..., k] (k: 0 or 1)" in said and "predict_iter(np.moveaxis(image, -1, 0))" in said
        # as the channels-first array is
        assert "a two-channel image" in _refusal(lambda: model.predict(np.moveaxis(two, -1, 0))).message
    assert "a two-channel image" in _refusal(lambda: to_single_channel(two)).message  # the function, alike
    five = _refusal(lambda: load("nuclei").predict(np.stack([frame] * 5, axis=-1))).message
    assert "an image of 5 channels" in five and "(k: 0 to 4)" in five
    # a list of frames read as one array in a stream: a stack, not an image of 128 channels
    said = _refusal(lambda: list(load("nuclei").predict_iter([[frame, frame]]))).message
    assert "a stack of 2 frames" in said


def test_the_model_arguments_errors_name_load_in_python_and_model_on_the_command_line(tmp_path):
    from devolens.errors import set_command
    from devolens.models import load

    text = tmp_path / "README.md"
    text.write_text("not a model")
    for given, words in ((text, "not a file"), (tmp_path / "nope", "no such model folder"),
                         (str(tmp_path / "x.safetensors"), "not a weights file")):
        said = _refusal(lambda: load(given)).message
        assert words in said and "load(name) takes" in said and "--model" not in said, said
        set_command(True)
        try:
            said = _refusal(lambda: load(given)).message
        finally:
            set_command(False)
        assert words in said and "--model takes a zoo name" in said and "load(" not in said, said
