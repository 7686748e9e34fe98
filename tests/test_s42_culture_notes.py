"""Notes that stay honest with cell-culture images (forty-second session): a culture's Fiji RGB export of blue nuclei
and a green cytoplasm stain, read by its green channel without a word, is noted (the channel read and --color to give;
the library's InputWarning too; segment.json records the channel read), while histone-GFP embryo frames are not; a
diameter given by hand far from the size model's estimate is used and the note asks for a look at the overlay instead
of calling the counts untrustworthy; small nuclei (6-10 px), erased at the judging scale as lines are, are not called
membranes; the "too few to judge" note says what it counted and what to do in words for any user; a plain 2-page TIFF
refused a --channel it lacks says that its pages are never channels and how to save them as such."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from _zoo_helpers import tiny_network, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import InputWarning


def _discs(shape, diameters, coverage=0.25, seed=0):
    """Labels of random discs (nuclei) of the given diameter range, about ``coverage`` of the frame, uint16."""
    rng = np.random.default_rng(seed)
    h, w = shape
    lab = np.zeros(shape, np.uint16)
    mean_area = np.pi * (np.mean(diameters) / 2) ** 2
    k = 0
    for _ in range(int(coverage * h * w / mean_area)):
        r = rng.uniform(*diameters) / 2
        cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
        y0, y1, x0, x1 = int(cy - r), min(h, int(cy + r) + 2), int(cx - r), min(w, int(cx + r) + 2)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) & (lab[y0:y1, x0:x1] == 0)
        k += 1
        lab[y0:y1, x0:x1][inside] = k
    return lab


def _culture(shape=(384, 384), diameters=(8, 10), seed=0) -> np.ndarray:
    """A cell-culture nuclei image: filled discs of 0.5-1 brightness, blurred, on a dim noisy background, 12-bit."""
    import cv2

    rng = np.random.default_rng(seed)
    lab = _discs(shape, diameters, seed=seed)
    level = rng.uniform(0.5, 1.0, int(lab.max()) + 1).astype(np.float32)
    level[0] = 0.0
    img = cv2.GaussianBlur(level[lab], (0, 0), 1.0) + 0.06 + rng.normal(0, 0.02, shape).astype(np.float32)
    return np.clip(img * 3000 + 100, 0, 4095).astype(np.uint16)


def _fiji_rgb(seed=0) -> np.ndarray:
    """The walkthrough's Fiji RGB export in small: nuclei of 14-20 px in blue, near the top of the range, a cytoplasm
    stain (the nuclei dilated, blurred) in green about as bright, red empty: the rule reads its green (a bright
    structure 1.2-1.4x under the blue one's, where it keeps green unless another has 1.5x)."""
    import cv2

    rng = np.random.default_rng(seed)
    lab = _discs((256, 256), (14, 20), coverage=0.2, seed=seed)
    level = rng.uniform(0.5, 1.0, int(lab.max()) + 1).astype(np.float32)
    level[0] = 0.0
    nuclei = cv2.GaussianBlur(level[lab], (0, 0), 1.0)
    cyto = cv2.GaussianBlur(cv2.dilate((lab > 0).astype(np.uint8), np.ones((9, 9), np.uint8)).astype(np.float32) * 0.5
                            + 0.05, (0, 0), 3.0)
    rgb = np.zeros((256, 256, 3), np.uint8)
    rgb[..., 2] = np.clip(nuclei * 245 + 10 + rng.normal(0, 3, nuclei.shape), 0, 255)
    rgb[..., 1] = np.clip(cyto / cyto.max() * 250 + rng.normal(0, 5, cyto.shape), 0, 255)
    return rgb


def _embryo_rgb(seed=0) -> np.ndarray:
    """A histone-GFP frame as a colour image: nuclei in green, a weak red reporter in a few of them, blue empty."""
    import cv2

    lab = _discs((256, 256), (14, 20), coverage=0.2, seed=seed)
    green = cv2.GaussianBlur((lab > 0).astype(np.float32), (0, 0), 1.0)
    red = cv2.GaussianBlur(((lab > 0) & (lab % 4 == 0)).astype(np.float32), (0, 0), 1.0)
    return np.stack([red * 90, green * 220 + 5, np.zeros_like(green)], -1).astype(np.uint8)


# ------------------------------------------------------------------------- 1. the colour channel read, named

def test_nuclei_colour_note_names_the_channel_read_when_another_carries_as_much():
    from devolens.cli.predict import _colour_note
    from devolens.predict.postprocess import auto_channel

    rgb = _fiji_rgb()
    assert auto_channel(rgb) == "green"  # the rule as it was (kept: see the README's colour paragraph)
    note = _colour_note(rgb, "nuclei", "auto")
    assert note is not None and "the green channel was read" in note and "--color blue" in note
    assert "blue carries about as much" in note and "if the nuclei are there" in note
    assert _colour_note(rgb, "nuclei", "blue") is None  # a channel given: nothing to say
    assert _colour_note(_embryo_rgb(), "nuclei", "auto") is None  # green nuclei, a weak red reporter: as before
    green_only = np.zeros((256, 256, 3), np.uint8)
    green_only[..., 1] = _embryo_rgb()[..., 1]  # an embryo frame converted to RGB green
    assert _colour_note(green_only, "nuclei", "auto") is None


def test_a_runs_colour_note_is_not_decided_by_one_frame():
    """A render's red-patch artifact, as bright as the nuclei, made its frame read "red carries about as much": of a
    run's judged frames, the rivals of more than half count."""
    from devolens.cli.predict import _colour_note

    embryo = _embryo_rgb()
    red_patch = embryo.copy()
    red_patch[40:140, 60:200, 0] = 230  # a red patch: in a few of the nuclei only, never a rival (forty-second, later)
    assert _colour_note(red_patch, "nuclei", "auto") is None
    patch = embryo.copy()
    patch[..., 0] = embryo[..., 1]  # a frame whose red shows every nucleus as green does (bleed-through)
    assert "--color red" in _colour_note(patch, "nuclei", "auto")  # one frame: said
    assert _colour_note([patch, embryo, embryo], "nuclei", "auto") is None
    assert _colour_note([embryo, patch, embryo, patch], "nuclei", "auto") is None  # (half: not more)
    assert "--color blue" in _colour_note([_fiji_rgb(seed=s) for s in range(3)] + [embryo], "nuclei", "auto")


def test_nuclei_colour_note_is_silent_on_the_real_reference_frames(shared_data):
    from devolens.cli.predict import _colour_note
    from devolens.io.images import read_image

    for name in ("epic_movie_frame045.png", "epic_movie_frame160.png", "epic_movie_frame300.png"):
        path = shared_data / "reference_frames" / name
        if not path.exists():
            pytest.skip("reference frames missing")
        assert _colour_note(read_image(path), "nuclei", "auto") is None, name


def test_the_library_warns_of_the_channel_read():
    from devolens.predict.segment import NucleiPredictor

    net = tiny_network(3)
    for diameter in (None, 18.0):  # (a diameter given by hand: the shapes are not judged, the colour is)
        pred = NucleiPredictor(net, scale=0.5, diameter_ref=20.0, diameter=diameter)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pred.predict(_fiji_rgb())
        said = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
        assert len(said) == 1 and "the green channel was read" in said[0] and 'channel="blue"' in said[0], said
        assert "--color" not in said[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            NucleiPredictor(net, scale=0.5, diameter_ref=20.0, diameter=diameter, channel="blue").predict(_fiji_rgb())
            pred.predict(_embryo_rgb())
        assert not [w for w in caught if issubclass(w.category, InputWarning)]


def test_segment_records_the_channel_read(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.io.images import write_png

    write_png(_fiji_rgb(), tmp_path / "rgb.png")
    write_png(_fiji_rgb()[..., 2], tmp_path / "grey.png")
    for name, extra, read in (("rgb", [], "green"), ("rgb", ["--color", "blue"], "blue"), ("grey", [], None)):
        out = tmp_path / f"o_{name}_{len(extra)}"
        assert main(["segment", "nuclei", str(tmp_path / f"{name}.png"), "--out", str(out), "--diameter", "none",
                     *extra]) == 0
        err = " ".join(capsys.readouterr().err.split())
        assert json.loads((out / "segment.json").read_text())["color_read"] == read
        assert ("run again with --color blue" in err) == (read == "green")


# ------------------------------------------------------------------------- 2. a diameter given: used, look at it

def test_diameter_note_says_the_given_one_was_used_and_asks_for_a_look():
    from devolens.predict.notes import DiameterCheck, diameter_note

    words = diameter_note(DiameterCheck(6.0, 22.0, 0.49), "nuclei")
    assert words.startswith("--diameter 6: the size model reads the images as 0.49x as magnified")
    assert "where --diameter auto would use 22 px, 3.7x apart" in words
    assert "The run used 6 px, as given" in words and "can be off for samples unlike the embryos" in words
    assert "Look at the overlays: if the outlines fit the nuclei, 6 px is right" in words
    assert "run again with --diameter 22" in words
    assert "not to be trusted" not in words and "leave --diameter out" not in words
    cells = diameter_note(DiameterCheck(52.0, 221.0, 2.9, "cells"), "cells", "52")
    assert "where the cells would measure about 221 px, 4.2x apart" in cells and "The run used 52 px" in cells
    um = diameter_note(DiameterCheck(10.0, 36.0, 2.0), "nuclei", "5um", look="Segment a frame")
    assert "The run used 5um (10 px), as given" in um and "Segment a frame: if the outlines fit" in um


# ------------------------------------------------------------------------- 3. small nuclei are not membranes

def _judging_predictor():
    net = SimpleNamespace(channel="auto", percentiles=(1.0, 99.8), flatten=60.0, outliers=0.5)
    return SimpleNamespace(network=net, card_scale=0.5, working_scale=lambda: 0.5, auto_each=False, diameter=None,
                           last_estimate=None)


@pytest.mark.parametrize("diameters", [(5.5, 6.5), (6, 8), (7, 9)])
def test_small_nuclei_are_not_judged_membranes(diameters):
    """The walkthrough: culture wells of 6-10 px nuclei, which the nuclei model found (F1 0.98), were said to look like
    membranes: at the judging scale (0.4x) they are 2-4 px wide, erased by the opening as lines are."""
    from devolens.cli.predict import _shape_note
    from devolens.predict.notes import _shapes, judge_input

    frames = [_culture(diameters=diameters, seed=s) for s in range(3)]
    pred = _judging_predictor()
    seen, _, _ = _shapes(frames, "nuclei", pred.network, 0.4, (1.0, 99.8))
    assert seen and float(np.median(seen)) <= 0.02  # what the membranes verdict went by
    assert judge_input(frames, "nuclei", pred) is None
    assert _shape_note(frames, "nuclei", pred) is None


def test_small_nuclei_are_compact_regions():
    from devolens.predict.notes import LINES_ELONGATION, elongation
    from devolens.predict.postprocess import prepare_image

    for diameters in ((5.5, 6.5), (7, 9)):
        frame = _culture(diameters=diameters)
        assert elongation(prepare_image(frame, "auto", 0.4, (1.0, 99.8), 60.0, 0.5)) < LINES_ELONGATION / 3


def test_lines_are_still_judged_membranes():
    from test_shape_note import _lines

    from devolens.cli.predict import _shape_note
    from devolens.predict.notes import LINES_ELONGATION, elongation, judge_input

    frames = [_lines(seed=s) for s in range(3)]
    look = judge_input(frames, "nuclei", _judging_predictor())
    assert look is not None and look.what == "membranes"
    assert "looks like membranes" in _shape_note(frames, "nuclei", _judging_predictor())
    assert elongation(frames[0] / 255.0) > 10 * LINES_ELONGATION
    disc = np.zeros((64, 64), np.float32)
    disc[np.hypot(*np.mgrid[-32:32, -32:32]) < 12] = 1.0
    assert 0.8 < elongation(disc) < 1.5 and elongation(np.zeros((8, 8))) is None


# ------------------------------------------------------------------------- 4. the "too few to judge" note

def test_too_few_to_judge_says_what_it_counted_and_what_to_do():
    from devolens.cli.predict import _estimate_note
    from devolens.predict.sizing import DiameterEstimate, untrusted_reason

    few = DiameterEstimate(diameter=None, magnification=0.44, per_image=[0.44], trusted=0)
    why = untrusted_reason(few, "nuclei")
    assert why.startswith("a quick threshold count found fewer than 8 separate bright regions")
    assert "touching nuclei count as one there, dim ones not at all" in why
    note = _estimate_note(few, "nuclei")
    assert "EPIC" not in note and "framing" not in note
    assert ("if this is not a whole embryo at the usual magnification, give --diameter the typical width of the "
            "nuclei in pixels") in note
    assert "separate dark regions inside bright outlines" in untrusted_reason(few, "cells")


def test_too_few_to_judge_warning_speaks_to_any_user():
    from devolens.errors import DiameterWarning
    from devolens.predict.sizing import DiameterEstimate, warn_untrusted

    few = DiameterEstimate(diameter=None, magnification=0.44, per_image=[0.44], trusted=0)
    with pytest.warns(DiameterWarning) as caught:
        warn_untrusted([few], "nuclei")
    text = str(caught[0].message)
    assert "EPIC" not in text and "give diameter= the typical width of the nuclei in pixels" in text


# ------------------------------------------------------------------------- 5. many pages are never channels
# (session 43: 2 to 4 grey pages are read as channels with --channel, tests/test_s43_pages_channels.py; more are not)

def test_a_plain_many_page_tiff_refusing_a_channel_says_how_to_save_channels(tmp_path, capsys):
    import tifffile

    path = tmp_path / "five.tif"
    tifffile.imwrite(path, np.stack([_culture((128, 128), seed=s) for s in range(5)]))
    assert main(["segment", "nuclei", str(path), "--out", str(tmp_path / "o"), "--channel", "1"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--channel 1 is out of range: this stack has 1 channel(s) (0..0)" in err
    assert ("its 5 pages carry no axis labels and are read as time points (--pages z: as z planes), not as channels "
            "(only 2 to 4 grey pages are)") in err
    assert "Image > Hyperstacks > Stack to Hyperstack with 5 channels" in err and "'axes': 'CYX'" in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()
    labelled = tmp_path / "zyx.tif"  # a labelled stack without channels: no such words
    tifffile.imwrite(labelled, np.stack([_culture((128, 128), seed=0)] * 2), imagej=True, metadata={"axes": "ZYX"})
    assert main(["segment", "nuclei", str(labelled), "--out", str(tmp_path / "o2"), "--channel", "1"]) == 2
    assert "never as channels" not in " ".join(capsys.readouterr().err.split())


# ------------------------------------------------------------------------- 6. a reporter or membranes: no rival

def _reporter_rgb(seed=0) -> np.ndarray:
    """Histone-GFP nuclei in green, a lineage reporter as bright in red in a quarter of them (red's bright structure
    about as much as green's, which the rule still reads), blue empty."""
    import cv2

    lab = _discs((256, 256), (14, 20), coverage=0.2, seed=seed)
    green = cv2.GaussianBlur((lab > 0).astype(np.float32), (0, 0), 1.0)
    red = cv2.GaussianBlur(((lab > 0) & (lab % 4 == 0)).astype(np.float32), (0, 0), 1.0)
    return np.stack([red * 230 + 5, green * 200 + 5, np.zeros_like(green)], -1).astype(np.uint8)


def _membrane_rgb() -> np.ndarray:
    """Green nuclei and a red membrane grid about as bright (the rule reads green, rightly)."""
    import cv2

    rgb = _embryo_rgb()
    rgb[..., 1] = rgb[..., 1] // 2 + 20
    grid = np.zeros((256, 256), np.float32)
    grid[::24, :] = grid[:, ::24] = 1.0
    rgb[..., 0] = np.clip(cv2.GaussianBlur(cv2.dilate(grid, np.ones((3, 3), np.uint8)), (0, 0), 1.0) * 255, 0, 255)
    return rgb


def test_a_reporter_in_some_nuclei_or_membranes_are_no_rival():
    """The walkthrough: a real EPIC frame cropped to the embryo (red a lineage reporter in some of the nuclei, which
    green shows too) was told "red carries about as much: run again with --color red" (19 nuclei for 152)."""
    from devolens.cli.predict import _colour_note
    from devolens.predict.postprocess import auto_channel, channel_signals

    for rgb in (_reporter_rgb(), _membrane_rgb()):
        signal = channel_signals(rgb)
        assert auto_channel(rgb) == "green" and signal[0] >= 0.9 * signal[1]  # what the note went by
        assert _colour_note(rgb, "nuclei", "auto") is None
    note = _colour_note(_fiji_rgb(), "nuclei", "auto")  # the culture: still said
    assert "--color blue (if the blue channel holds only some of the nuclei, a reporter, keep green)" in note


def test_the_real_frames_cropped_to_the_embryo_get_no_colour_note(shared_data):
    from devolens.cli.predict import _colour_note
    from devolens.io.images import read_image

    for name in ("epic_movie_frame045.png", "epic_movie_frame160.png", "epic_movie_frame300.png"):
        path = shared_data / "reference_frames" / name
        if not path.exists():
            pytest.skip("reference frames missing")
        frame = read_image(path)
        for crop in (frame[70:470, 20:620], frame[200:350, 250:450], frame[250:450, 300:550]):
            assert _colour_note(crop, "nuclei", "auto") is None, name
