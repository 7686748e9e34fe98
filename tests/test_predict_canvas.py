"""A frame inside a large canvas filled with one value (a stitched or registered image): read as the frame alone."""

from __future__ import annotations

import numpy as np


def _frame(seed=0, h=512, w=752):
    """An EPIC-like colour frame: bright nuclei in green, dimmer structure in red, a black surround."""
    import cv2

    rng = np.random.default_rng(seed)
    g = np.zeros((h, w), np.float32)
    r = np.zeros((h, w), np.float32)
    for _ in range(120):
        y, x = rng.uniform(100, h - 100), rng.uniform(150, w - 150)
        cv2.circle(g, (int(x), int(y)), 9, float(rng.uniform(120, 230)), -1)
        cv2.circle(r, (int(x + 5), int(y)), 12, float(rng.uniform(60, 120)), -1)
    g, r = cv2.GaussianBlur(g, (0, 0), 2), cv2.GaussianBlur(r, (0, 0), 3)
    rgb = np.stack([r, g, np.zeros_like(g)], -1) + rng.normal(0, 2, (h, w, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_a_frame_in_a_large_filled_canvas_is_read_as_the_frame():
    """The channel rule and the percentiles judged without the fill: the real frame 160 pasted into a 6000 x 6000
    black canvas was read by its red channel (the fill made R, G and B look alike; 315 nuclei found instead of 123)
    and its percentiles came from the fill; a canvas of any size now gives the frame's own reading."""
    from devolens.predict.postprocess import auto_channel, prepare_image

    frame = _frame()
    canvas = np.zeros((4000, 4000, 3), np.uint8)
    y0, x0 = 1700, 1600
    canvas[y0:y0 + 512, x0:x0 + 752] = frame
    assert auto_channel(frame) == "green"
    assert auto_channel(canvas) == "green"
    alone = prepare_image(frame, "auto", 0.5, (1.0, 99.8), 30.0, 0.5)
    big = prepare_image(canvas, "auto", 0.5, (1.0, 99.8), 30.0, 0.5)
    crop = big[y0 // 2 + 20:(y0 + 512) // 2 - 20, x0 // 2 + 20:(x0 + 752) // 2 - 20]
    ref = alone[20:256 - 20, 20:376 - 20]
    assert np.abs(crop - ref).mean() < 0.02, np.abs(crop - ref).mean()


def test_a_sparse_field_on_a_black_background_is_no_canvas():
    """Nuclei spread over a large image with a background subtracted to exactly 0 (no canvas: the content is
    everywhere): read whole, as before. Taking its black for a canvas's fill made the channel rule read the red
    channel of a reporter in a tenth of the cells, and 16 of 160 nuclei were found."""
    import cv2

    from devolens.predict.postprocess import auto_channel, canvas_box, content_sample

    rng = np.random.default_rng(2)
    red, green = np.zeros((2048, 2048), np.uint8), np.zeros((2048, 2048), np.uint8)
    for k in range(160):
        y, x = (int(v) for v in rng.uniform(40, 2008, 2))
        cv2.circle(green, (x, y), 10, 200, -1)
        if k % 10 == 0:
            cv2.circle(red, (x, y), 10, 240, -1)
    rgb = np.stack([red, green, np.zeros_like(green)], -1)
    assert auto_channel(rgb) == "green"
    grey = rgb[..., 1].astype(np.float32)
    assert canvas_box(grey) is None
    np.testing.assert_array_equal(content_sample(grey, 4), grey[::4, ::4])
