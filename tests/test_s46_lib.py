"""The library as a notebook user meets it (the forty-sixth session's walk): an 8-bit livedead array's warnings say what
``segment livedead`` says of an 8-bit file, and blame its 8-bit values before swapped channels; a frame of no signal
gets a NoSignalWarning from the segmentation predictors; population warns of nuclei far from the sizes its model knows;
a channels-last well array is read; iter_path_frames' documented frames; load's unknown-option message names the class
in full; a segmentation result records the colour channel read."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from devolens.errors import DevolensError, DiameterWarning, NoSignalWarning

from _zoo_helpers import shipped


def _caught(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [(type(w.message), str(w.message)) for w in seen]


@pytest.fixture(scope="module")
def livedead():
    if not shipped("livedead"):
        pytest.skip("needs the shipped livedead model")
    from devolens.models import load

    return load("livedead")


@pytest.fixture(scope="module")
def well():
    from devolens.render.wells import simulate_well

    return simulate_well(seed=5, size=(256, 256)).image


@pytest.fixture(scope="module")
def nuclei():
    if not shipped("nuclei"):
        pytest.skip("needs the shipped nuclei model")
    from devolens.models import load

    return load("nuclei")


# ------------------------------------------------------------------ 1. an 8-bit livedead array
def test_an_8_bit_array_is_warned_of_in_segment_livedead_s_words(livedead, well):
    from devolens.predict.tiled import LIVEDEAD_CONVERTED

    x = (well.astype(float) / well.max() * 255).astype(np.uint8)
    result, seen = _caught(livedead.predict, x)
    assert result.counts["fraction_dead"] >= 0.9  # (what an 8-bit export does: mostly dead)
    texts = [t for _, t in seen]
    assert any("image is uint8, not uint16; converted (scaled x257; " + LIVEDEAD_CONVERTED in t for t in texts), texts
    dead = [t for t in texts if "read as dead" in t]
    assert len(dead) == 1 and "in this 8-bit image, most likely from its 8-bit values" in dead[0], dead
    # the swap comes second, not as the advice (was: "...: if Draq7 is its first channel, pass image[[1, 0]]")
    assert "if Draq7 is its first channel" not in dead[0] and "were they swapped all the same" in dead[0]


def test_an_8_bit_array_that_is_swapped_is_still_told_so(livedead, well):
    """Swapped 8-bit channels, whose dead nuclei show only in the channel read as Draq7: the swap, as before."""
    x = (well.astype(float) / well.max() * 255).astype(np.uint8)[[1, 0]]
    _, seen = _caught(livedead.predict, x)
    dead = [t for _, t in seen if "read as dead" in t]
    assert len(dead) == 1 and "if Draq7 is its first channel, pass image[[1, 0]]" in dead[0], dead


def test_the_8_bit_file_and_array_share_the_conversion_words(tmp_path, well):
    import tifffile

    from devolens.predict.tiled import LIVEDEAD_CONVERTED, RowReader

    path = tmp_path / "well8.tif"
    tifffile.imwrite(path, (well // 257).astype(np.uint8))
    with RowReader(path, channels=2) as src:
        _, seen = _caught(src.rows, 0, 8)
    assert [t for _, t in seen] == [f"{path}: image is uint8, not uint16; converted ({LIVEDEAD_CONVERTED})"]


# ------------------------------------------------------------------ 2. a frame of no signal
@pytest.mark.parametrize("image", [np.zeros((256, 256), np.uint8), np.full((128, 128), np.nan, np.float32),
                                   np.full((128, 128, 3), (10, 20, 30), np.uint8)], ids=["black", "nan", "flat_rgb"])
def test_a_frame_of_no_signal_gets_a_no_signal_warning(nuclei, image):
    result, seen = _caught(nuclei.predict, image)
    assert result.extra.get("no_signal") is True
    got = [t for c, t in seen if c is NoSignalWarning]
    assert len(got) == 1 and got[0].startswith("the image holds no signal (one grey level throughout"), seen


def test_no_signal_is_said_once_per_call_naming_the_frames(nuclei):
    frames = [np.zeros((128, 128), np.uint8), np.eye(128, dtype=np.uint8) * 200, np.zeros((128, 128), np.uint8)]
    results, seen = _caught(nuclei.predict_batch, frames)
    assert [bool(r.extra.get("no_signal")) for r in results] == [True, False, True]
    got = [t for c, t in seen if c is NoSignalWarning and "no signal" in t]
    assert len(got) == 1 and got[0].startswith("2 of 3 images (positions 0, 2, from 0) hold no signal"), seen


def test_an_ordinary_frame_is_not_tested_in_full_for_no_signal(monkeypatch):
    """Decided from a sample of every 32nd pixel: population's test (its module imports pandas) is not asked."""
    from devolens.predict import population, segment

    asked = []
    monkeypatch.setattr(population, "is_flat", lambda a: asked.append(a) or False)
    frame = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)
    assert segment._holds_no_signal(frame) is False and asked == []
    assert segment._holds_no_signal(np.full((64, 64), 3.0)) is False and len(asked) == 1  # (the patched test's)


def test_the_command_notes_a_black_frame_once(tmp_path, capsys):
    if not shipped("nuclei"):
        pytest.skip("needs the shipped nuclei model")
    from PIL import Image

    from devolens.cli import _run

    Image.fromarray(np.zeros((128, 128), np.uint8)).save(tmp_path / "black.png")
    assert _run(["segment", "nuclei", str(tmp_path / "black.png"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr()
    both = out.out + out.err
    assert both.count("no signal") == 1 and "NoSignalWarning" not in both, both


# ------------------------------------------------------------------ 3. population's size warning
def _blobs(n: int = 256, d: float = 6, k: int = 12) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:n, :n]
    img = np.zeros((n, n), np.float32)
    for _ in range(k):
        cy, cx = rng.uniform(d, n - d, 2)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (d / 2.5) ** 2))
    return (np.clip(img, 0, 1) * 200 + 10).astype(np.uint8)


def test_population_warns_of_nuclei_far_from_the_sizes_it_knows():
    if not shipped("population") or not shipped("nuclei"):
        pytest.skip("needs the shipped population and nuclei models")
    from devolens.models import load

    pop = load("population")
    small = _blobs()
    assert pop.size_advice([pop.predict_iter([small]).__next__()["median_area"]])  # (what the command notes)
    _, seen = _caught(pop.predict, small)
    # (the size note; at diameter=None the size model's reading of the frames is said too, as by population
    # --diameter none: tests/test_s48_lib_sizes.py)
    got = [t for c, t in seen if c is DiameterWarning and "diameter=None: the frames look" not in t]
    assert len(got) == 1 and "far from the sizes this model knows" in got[0] and "diameter=" in got[0], seen
    _, seen = _caught(pop.predict_batch, [small, small])
    got = [t for c, t in seen if c is DiameterWarning]
    assert len(got) == 2 and len({t.split(":")[0] for t in got}) == 2  # once per note and call
    _, seen = _caught(pop.predict, _blobs(d=30))
    assert not [t for c, t in seen if c is DiameterWarning]


# ------------------------------------------------------------------ 4. a channels-last well array
def test_a_channels_last_well_array_is_read_as_its_channels_first_copy(livedead, well):
    first = livedead.predict(well)
    last = livedead.predict(np.ascontiguousarray(np.moveaxis(well, 0, -1)))
    assert np.array_equal(first.labels, last.labels) and first.counts == last.counts


def test_an_rgb_well_array_is_refused_with_how_to_give_it(livedead):
    with pytest.raises(DevolensError, match=r"an RGB array\? .*np\.stack\(\[image\[\.\.\., 2\], "
                                            r"image\[\.\.\., 0\]\]\)"):
        livedead.predict(np.zeros((64, 64, 3), np.uint16))
    with pytest.raises(DevolensError, match=r"np\.moveaxis\(image, 1, 0\)"):
        livedead.predict(np.zeros((64, 2, 64), np.uint16))


# ------------------------------------------------------------------ 5. iter_path_frames' docstring
def test_iter_path_frames_says_grey_frames_are_h_x_w_and_a_stack_has_no_names(tmp_path):
    import tifffile

    from devolens.io.frames import iter_path_frames

    tifffile.imwrite(tmp_path / "s.tif", np.zeros((3, 32, 40), np.uint16), metadata={"axes": "TYX"})
    frames, names, n = iter_path_frames(tmp_path / "s.tif")
    assert [f.shape for f in frames] == [(32, 40)] * 3 and names is None and n == 3
    doc = " ".join(iter_path_frames.__doc__.split())
    assert "H x W arrays for grey frames" in doc and "None for anything but a folder" in doc


# ------------------------------------------------------------------ 6. load's message; the colour channel read
def test_an_unknown_option_names_the_predictor_in_full(nuclei):
    from devolens.models import load

    with pytest.raises(DevolensError) as caught:
        load("nuclei", devise="cpu")
    assert "see help(devolens.predict.segment.NucleiPredictor) for the options" in str(caught.value)


def test_a_result_records_the_colour_channel_read(nuclei):
    rgb = np.zeros((128, 128, 3), np.uint8)
    rgb[40:60, 40:60, 0] = 200  # nuclei in red only
    rgb[..., 1] = 5
    assert nuclei.predict(rgb).extra["color_read"] == "red"
    assert "color_read" not in nuclei.predict(rgb[..., 0].copy()).extra
