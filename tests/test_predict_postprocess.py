"""Post-processing of the image predictors: channels, normalisation, watershed, smoothing."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devolens.errors import DevolensError
from devolens.predict.postprocess import (
    drop_isolated_specks,
    instances_from_boundary_map,
    instances_from_probabilities,
    monotone_nondecreasing,
    normalize_percentile,
    object_table,
    resize_labels,
    smooth_populations,
    to_single_channel,
)


def _two_touching_discs(r: int = 12, gap: int = 20):
    yy, xx = np.mgrid[:64, :100]
    a = (yy - 32) ** 2 + (xx - 35) ** 2 <= r * r
    b = (yy - 32) ** 2 + (xx - 35 - gap) ** 2 <= r * r
    return a, b


def test_watershed_splits_two_touching_discs_by_distance():
    a, b = _two_touching_discs()
    assert (a & b).any()  # they overlap: one connected blob
    labels = instances_from_probabilities((a | b).astype(np.float32), None, min_distance=4, smooth=0)
    assert labels.dtype == np.uint16
    assert labels.max() == 2
    # each disc centre is in a different object
    assert labels[32, 35] != labels[32, 55] and labels[32, 35] > 0 and labels[32, 55] > 0


def test_watershed_splits_touching_discs_with_interior_seeds():
    a, b = _two_touching_discs()
    fg = (a | b).astype(np.float32)
    from scipy import ndimage as ndi

    core = (ndi.binary_erosion(a, iterations=4) | ndi.binary_erosion(b, iterations=4)) & ~ndi.binary_dilation(a & b, iterations=3)
    labels = instances_from_probabilities(fg, core.astype(np.float32), min_distance=2)
    assert labels.max() == 2
    sizes = np.bincount(labels.ravel())[1:]
    assert abs(int(sizes[0]) - int(sizes[1])) < 0.2 * sizes.max()


def test_split_seeds_separates_a_dumbbell_interior_blob():
    a, b = _two_touching_discs(gap=18)
    fg = (a | b).astype(np.float32)
    from scipy import ndimage as ndi

    # interior cores that still touch through a neck: one blob, two cores
    core = (ndi.binary_erosion(a, iterations=2) | ndi.binary_erosion(b, iterations=2)).astype(np.float32)
    assert ndi.label(core > 0.5)[1] == 1
    assert instances_from_probabilities(fg, core, min_distance=2, smooth=0).max() == 1
    split = instances_from_probabilities(fg, core, min_distance=4, smooth=0, split_seeds=True)
    assert split.max() == 2
    assert split[32, 35] != split[32, 53] and split[32, 35] > 0 and split[32, 53] > 0
    # a single round core stays one object
    single = instances_from_probabilities(a.astype(np.float32), ndi.binary_erosion(a, iterations=3).astype(np.float32),
                                          min_distance=4, smooth=0, split_seeds=True)
    assert single.max() == 1


def test_single_disc_is_not_split():
    a, _ = _two_touching_discs()
    assert instances_from_probabilities(a.astype(np.float32), None, min_distance=4).max() == 1


def test_empty_probability_gives_no_objects():
    assert instances_from_probabilities(np.zeros((10, 12), np.float32)).max() == 0


def test_boundary_map_gives_cells_between_membranes():
    img = np.zeros((60, 90), np.float32)
    img[5, 5:85] = img[55, 5:85] = 1
    img[5:56, 5] = img[5:56, 85] = 1
    img[5:56, 45] = 1  # two cells side by side
    labels = instances_from_boundary_map(img, smooth=0, min_size=20)
    assert labels.max() == 2
    assert labels[30, 25] != labels[30, 65]


def test_to_single_channel_green_and_mean():
    rgb = np.zeros((5, 6, 3), np.uint8)
    rgb[..., 1] = 200
    rgb[..., 0] = 10
    assert np.allclose(to_single_channel(rgb), 200)
    grey_as_rgb = np.repeat(np.arange(30, dtype=np.uint8).reshape(5, 6, 1), 3, axis=2)
    assert np.allclose(to_single_channel(grey_as_rgb), np.arange(30).reshape(5, 6))
    assert np.allclose(to_single_channel(rgb, "mean"), 70)
    assert to_single_channel(np.ones((4, 3))).shape == (4, 3)
    with pytest.raises(DevolensError):
        to_single_channel(np.ones((2, 3, 4, 5)))


@pytest.mark.parametrize("k", [0, 1, 2])
def test_to_single_channel_auto_takes_the_dominant_channel(k):
    rng = np.random.default_rng(k)
    signal = (rng.random((20, 30)) * 200).astype(np.uint8)
    rgb = np.full((20, 30, 3), 5, np.uint8)
    rgb[..., k] = signal  # nuclei in red (mCherry), green (GFP) or blue (DAPI)
    rgb[..., (k + 1) % 3] = 12  # a weak second channel
    assert np.array_equal(to_single_channel(rgb), signal.astype(np.float32))
    balanced = np.repeat(signal[..., None], 3, axis=2).astype(np.int16)
    balanced[..., 0] += 1  # near-grey colour image: no channel dominates -> mean
    assert np.allclose(to_single_channel(balanced.astype(np.uint8)), balanced.mean(axis=2))


def test_to_single_channel_auto_follows_the_signal_not_the_mean():
    # an early embryo: one bright green nucleus on a reddish background (EPIC movies): the mean is
    # higher in red, the signal is in green (the old mean-based rule segmented the red noise)
    rng = np.random.default_rng(0)
    rgb = np.zeros((256, 384, 3), np.uint8)
    rgb[..., 0] = rng.normal(24, 4, (256, 384)).clip(0, 255)
    rgb[..., 1] = rng.normal(12, 4, (256, 384)).clip(0, 255)
    yy, xx = np.mgrid[:256, :384]
    rgb[..., 1][(yy - 128) ** 2 + (xx - 190) ** 2 < 18 ** 2] = 230
    assert rgb[..., 0].mean() > rgb[..., 1].mean()
    assert np.array_equal(to_single_channel(rgb), rgb[..., 1].astype(np.float32))
    # a red line artifact (1 px) over that frame does not take the choice away from the nuclei
    lined = rgb.copy()
    lined[100, :, 0] = 255
    assert np.array_equal(to_single_channel(lined), rgb[..., 1].astype(np.float32))
    # red nuclei (H2B-mCherry) on a dim green background stay red
    mcherry = rgb[..., [1, 0, 2]].copy()
    assert np.array_equal(to_single_channel(mcherry), mcherry[..., 0].astype(np.float32))


def test_normalize_percentile_is_robust_and_bit_depth_free():
    rng = np.random.default_rng(0)
    img = rng.normal(1000, 50, (100, 100))
    img[0, 0] = 65535  # hot pixel
    out = normalize_percentile(img.astype(np.uint16))
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    assert 0.3 < float(np.median(out)) < 0.7
    assert np.allclose(normalize_percentile(img / 65535.0), normalize_percentile(img), atol=1e-3)


def test_object_table_and_resize_labels():
    lab = np.zeros((10, 20), np.uint16)
    lab[2:4, 3:7] = 1
    lab[6:9, 10:12] = 3
    tab = object_table(lab)
    assert list(tab["label"]) == [1, 3]
    assert tab.loc[0, "area"] == 8 and tab.loc[0, "x"] == pytest.approx(4.5) and tab.loc[0, "y"] == pytest.approx(2.5)
    big = resize_labels(lab, (21, 41))
    assert big.shape == (21, 41) and set(np.unique(big)) == {0, 1, 3}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=1, max_size=60))
def test_monotone_smoothing_never_decreases(values):
    out = monotone_nondecreasing(np.array(values))
    assert len(out) == len(values)
    assert np.all(np.diff(out) >= -1e-9)
    # isotonic regression preserves the mean
    assert np.mean(out) == pytest.approx(np.mean(values), abs=1e-6 * (1 + np.abs(values).max()))


def test_monotone_smoothing_keeps_sorted_input():
    v = np.array([1, 2, 2, 5, 9.0])
    assert np.allclose(monotone_nondecreasing(v), v)


def test_smooth_populations_per_letter():
    df = pd.DataFrame({"frame": range(6), "A": [2, 4, 3, 8, 7, 9], "E": [1, 1, 2, 1, 2, 2], "M": 0, "P": [1, 1, 0, 1, 0, 0],
                       "C": 0, "D": 0, "Z": [0, 0, 2, 0, 2, 2], "total": 0})
    out = smooth_populations(df)
    for letter in "AEMCDZ":
        assert np.all(np.diff(out[letter]) >= -1e-9), letter
    assert np.all(np.diff(out["P"]) <= 1e-9)  # the P lineage ends (P4 -> Z2, Z3)
    assert np.allclose(out["total"], out[list("AEMPCDZ")].sum(axis=1))
    assert list(out["frame"]) == list(range(6))


@pytest.mark.parametrize("shape,out", [((37, 53), (512, 752)), ((256, 376), (512, 752)), ((256, 376), (511, 751)),
                                       ((40, 40), (33, 71)), ((20, 30), (20, 30))])
def test_object_table_resized_equals_resizing_first(shape, out):
    from devolens.predict.postprocess import object_table_resized

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=shape).astype(np.uint16)
    labels[labels == 3] = 0  # a missing label
    ref = object_table(resize_labels(labels, out))
    got = object_table_resized(labels, out)
    assert list(got.columns) == list(ref.columns)
    assert got["label"].tolist() == ref["label"].tolist()
    assert got["area"].tolist() == ref["area"].tolist()
    np.testing.assert_allclose(got[["x", "y"]].to_numpy(), ref[["x", "y"]].to_numpy(), atol=1e-9)
    empty = object_table_resized(np.zeros(shape, np.uint16), out)
    assert len(empty) == 0 and list(empty.columns) == ["label", "x", "y", "area"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_filters_equal_scipy(seed):
    from devolens.predict.postprocess import _disc, _edt, _gaussian, _maximum, _opening

    rng = np.random.default_rng(seed)
    img = rng.random((61, 87)).astype(np.float32)
    mask = ndi.gaussian_filter(img, 2) > 0.5
    mask[0, :] = True  # objects touching the border
    np.testing.assert_allclose(_gaussian(img, 1.0), ndi.gaussian_filter(img, 1.0), atol=1e-5)
    np.testing.assert_allclose(_gaussian(img, 2.5), ndi.gaussian_filter(img, 2.5), atol=1e-5)
    np.testing.assert_allclose(_edt(mask), ndi.distance_transform_edt(mask), atol=1e-4)
    np.testing.assert_allclose(_edt(np.ones((9, 11), bool)), ndi.distance_transform_edt(np.ones((9, 11), bool)))
    np.testing.assert_array_equal(_maximum(img, 7), ndi.maximum_filter(img, size=7))
    for r in (1, 2):
        np.testing.assert_array_equal(_opening(mask, r), ndi.binary_opening(mask, structure=_disc(r)))


@pytest.mark.parametrize("src,dst", [((37, 53), (100, 61)), ((256, 376), (512, 752)), ((255, 377), (512, 752)),
                                     ((256, 376), (511, 751)), ((100, 61), (37, 53)), ((20, 30), (20, 90))])
def test_resize_labels_follows_the_pixel_centre_rule(src, dst):
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 3000, src).astype(np.uint16)
    rows = np.minimum(((np.arange(dst[0]) + 0.5) * src[0] / dst[0]).astype(int), src[0] - 1)
    cols = np.minimum(((np.arange(dst[1]) + 0.5) * src[1] / dst[1]).astype(int), src[1] - 1)
    np.testing.assert_array_equal(resize_labels(lab, dst), lab[rows[:, None], cols[None, :]])
    np.testing.assert_array_equal(resize_labels(lab.astype(np.int32), dst), lab[rows[:, None], cols[None, :]])


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("with_interior", [False, True])
def test_instances_in_a_large_empty_frame_equal_the_tight_frame(split, with_interior):
    """Post-processing runs on the box around the foreground: same labels as on a tight crop."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:60, :80]
    fg = np.zeros((60, 80), np.float32)
    core = np.zeros((60, 80), np.float32)
    for _ in range(9):
        cy, cx, r = rng.uniform(12, 48), rng.uniform(12, 68), rng.uniform(4, 8)
        d = np.hypot(yy - cy, xx - cx)
        fg = np.maximum(fg, np.clip(1.5 - d / r, 0, 1))
        core = np.maximum(core, np.clip(1.2 - d / (0.6 * r), 0, 1))
    big_fg = np.zeros((300, 400), np.float32)
    big_core = np.zeros((300, 400), np.float32)
    big_fg[100:160, 150:230] = fg
    big_core[100:160, 150:230] = core
    kw = dict(split_seeds=split, min_distance=3.0)
    small = instances_from_probabilities(fg, core if with_interior else None, **kw)
    big = instances_from_probabilities(big_fg, big_core if with_interior else None, **kw)
    assert small.max() >= 3
    np.testing.assert_array_equal(big[100:160, 150:230], small)
    assert big.sum() == small.sum()


def test_normalize_percentile_treats_nan_and_inf_as_background():
    rng = np.random.default_rng(1)
    img = rng.normal(100, 10, (60, 80)).astype(np.float32)
    img[20:30, 30:40] += 200  # a bright object
    ref = normalize_percentile(img)
    bad = img.copy()
    bad[:5] = np.nan
    bad[-1, -1] = np.inf
    bad[-1, 0] = -np.inf
    out = normalize_percentile(bad)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert np.abs(out[10:50] - ref[10:50]).max() < 0.05  # the rest is scaled as before
    assert out[:5].max() == 0.0  # NaN rows are background
    assert np.array_equal(normalize_percentile(np.full((4, 4), np.nan, np.float32)), np.zeros((4, 4), np.float32))


def _discs(spec, shape=(80, 120)):
    """Foreground of discs given as (row, col, radius)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    fg = np.zeros(shape, bool)
    for r, c, rad in spec:
        fg |= (yy - r) ** 2 + (xx - c) ** 2 <= rad * rad
    return fg


def test_isolated_specks_are_dropped_but_small_neighbours_kept():
    # three nuclei, a speck far from everything, and a small object pressed against a nucleus
    fg = _discs([(20, 20, 10), (20, 60, 10), (60, 40, 10), (65, 105, 2), (20, 75, 3)])
    labels, _ = ndi.label(fg)
    assert labels.max() == 5
    out = drop_isolated_specks(labels, 0.25)
    assert out.max() == 4 and out[65, 105] == 0  # the speck went
    assert out[20, 75] > 0  # the small neighbour (within 2 px of a nucleus) stayed
    assert out.dtype == np.uint16 and sorted(np.unique(out)) == [0, 1, 2, 3, 4]
    # a lower fraction keeps it; so do fraction 0 and images with a single object
    assert drop_isolated_specks(labels, 0.01).max() == 5
    assert drop_isolated_specks(labels, 0.0) is labels
    one, _ = ndi.label(_discs([(65, 105, 2)]))
    assert drop_isolated_specks(one, 0.25).max() == 1


def test_instances_isolated_fraction_option():
    fg = _discs([(20, 20, 10), (20, 60, 10), (60, 40, 10), (65, 105, 2)]).astype(np.float32)
    keep = instances_from_probabilities(fg, None, min_distance=4, smooth=0, min_size=4)
    drop = instances_from_probabilities(fg, None, min_distance=4, smooth=0, min_size=4, isolated_fraction=0.25)
    assert keep.max() == 4 and drop.max() == 3 and drop[65, 105] == 0
    np.testing.assert_array_equal(drop > 0, (keep > 0) & (keep != keep[65, 105]))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(4, 60), st.integers(4, 60), st.floats(0.05, 0.8))
def test_watershed_equals_skimage(seed, h, w, density):
    """postprocess.watershed (skimage's compiled core, called directly) gives skimage's labels."""
    from skimage.segmentation import watershed as skimage_watershed

    from devolens.predict.postprocess import watershed

    rng = np.random.default_rng(seed)
    surface = np.round(rng.random((h, w)) * 8) / 8  # ties on purpose: the queue order decides them
    mask = rng.random((h, w)) < 0.3 + density
    markers, _ = ndi.label(rng.random((h, w)) < density / 10)
    markers[0, 0] = markers.max() + 1  # a seed outside the mask is dropped, as in skimage
    mask[0, 0] = False
    expected = skimage_watershed(surface, markers=markers, mask=mask)
    got = watershed(surface, markers, mask)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 70), st.integers(1, 70), st.floats(0.02, 0.9))
def test_label_equals_scipy(seed, h, w, density):
    from devolens.predict.postprocess import label_components

    mask = np.random.default_rng(seed).random((h, w)) < density
    expected, n = ndi.label(mask)
    got, m = label_components(mask)
    assert m == n
    np.testing.assert_array_equal(got, expected)


def _ramp_with_discs(shape=(120, 180), slope=1.5, level=100.0, seed=0):
    """A bright tilted backdrop (0 -> slope * width) with small bright discs (radius 4) on it."""
    import cv2

    h, w = shape
    img = np.tile(np.arange(w, dtype=np.float32) * slope, (h, 1))
    discs = np.zeros(shape, np.float32)
    rng = np.random.default_rng(seed)
    centres = [(int(rng.integers(10, h - 10)), int(rng.integers(10, w - 10))) for _ in range(12)]
    for y, x in centres:
        cv2.circle(discs, (x, y), 4, level, -1)
    return img + discs, discs > 0


def test_flatten_background_takes_off_a_tilted_backdrop_and_keeps_small_objects():
    from devolens.predict.postprocess import flatten_background

    img, fg = _ramp_with_discs()
    flat = flatten_background(img, 40)
    assert flat.shape == img.shape and flat.dtype == np.float32
    bg = ~fg
    bg[:, :8] = bg[:, -8:] = False  # the frame's edges: the opening there sees half a disc
    assert np.abs(flat[bg]).mean() < 6  # the backdrop spans 0..270
    assert np.percentile(flat[fg], 50) > 80  # the discs (100 above the backdrop) stay
    # what the network sees: the left and right halves' background now alike
    from devolens.predict.postprocess import prepare_image

    plain = prepare_image(img, "auto", 1.0, (1.0, 99.8))
    flattened = prepare_image(img, "auto", 1.0, (1.0, 99.8), flatten=40)
    left, right = bg[:, :60], bg[:, 120:]
    assert abs(plain[:, 120:][right].mean() - plain[:, :60][left].mean()) > 0.4
    assert abs(flattened[:, 120:][right].mean() - flattened[:, :60][left].mean()) < 0.05


def test_flatten_background_nan_pixels_and_tiny_images():
    from devolens.predict.postprocess import flatten_background, prepare_image

    img, _ = _ramp_with_discs()
    img[:10] = np.nan
    flat = flatten_background(img, 40)
    assert np.isfinite(flat).all()
    assert flatten_background(np.ones((3, 5), np.float32), 40).shape == (3, 5)
    # flatten off, or dtype normalisation (no percentiles): the plain preparation
    assert np.array_equal(prepare_image(img, "auto", 1.0, (1.0, 99.8), flatten=0), prepare_image(img, "auto", 1.0, (1.0, 99.8)))
    u8 = np.clip(np.nan_to_num(img), 0, 255).astype(np.uint8)
    assert np.array_equal(prepare_image(u8, "auto", 1.0, (), flatten=40), prepare_image(u8, "auto", 1.0, ()))


def test_prep_key_is_canonical():
    from devolens.predict.postprocess import Prepared, prep_key

    assert prep_key("auto", 1, [1, 99.8]) == ("auto", 1.0, (1.0, 99.8), 0.0, 0.0)
    img = np.zeros((8, 8), np.uint8)
    assert Prepared(img, ("auto", 0.5, (1, 99)) ).key == Prepared(img, ("auto", 0.5, (1.0, 99.0), 0)).key


def test_remove_outliers_replaces_hot_pixels_only():
    from devolens.predict.postprocess import prepare_image, remove_outliers
    from scipy import ndimage as ndi

    rng = np.random.default_rng(3)
    # blurred blobs (nuclei) on a noisy background: sharp optics never make a lone bright pixel
    img = np.zeros((96, 128), np.float32)
    for y, x in rng.integers(8, 88, size=(12, 2)):
        img[y, x] = 1.0
    img = ndi.gaussian_filter(img, 3.0) * 2000 + 100 + rng.normal(0, 5, img.shape).astype(np.float32)
    clean = img.astype(np.uint16)
    assert remove_outliers(clean, 0.5) is clean  # nothing to replace: the same array back
    hot = clean.copy()
    spots = [(5, 5), (40, 70), (90, 120), (0, 0), (95, 127)]  # borders included
    for y, x in spots:
        hot[y, x] = 65000
    out = remove_outliers(hot, 0.5)
    assert out.dtype == np.uint16 and out is not hot
    for y, x in spots:
        nb = hot[max(0, y - 1):y + 2, max(0, x - 1):x + 2].astype(int)
        assert out[y, x] < 65000 and out[y, x] <= np.sort(nb.ravel())[-2]
    changed = out != hot
    assert changed.sum() == len(spots)  # only the hot pixels
    assert np.array_equal(hot, clean) is False and np.array_equal(out[~changed], clean[~changed])
    # a 2x2 bright square is not a single-pixel outlier
    sq = clean.copy()
    sq[50:52, 50:52] = 65000
    assert remove_outliers(sq, 0.5) is sq
    # float input, NaN tolerated; threshold 0 in prepare_image: off
    f = hot.astype(np.float64)
    f[10, 10] = np.nan
    assert np.isfinite(remove_outliers(f, 0.5)[20:, 20:]).all()
    a = prepare_image(hot, "auto", 1.0, (1.0, 99.8))
    b = prepare_image(hot, "auto", 1.0, (1.0, 99.8), outliers=0.5)
    assert np.array_equal(prepare_image(hot, "auto", 1.0, (1.0, 99.8), outliers=0.0), a)
    assert b[40, 70] < a[40, 70]


@pytest.mark.parametrize("dtype, channel", [(np.uint8, "green"), (np.uint8, "auto"), (np.uint16, "red"),
                                            (np.uint16, None)])
def test_integer_images_are_prepared_exactly_as_their_float_copies(dtype, channel):
    """prepare_image keeps a uint8/uint16 channel in its dtype through the hot-pixel step (faster): the result
    must be the float path's to the bit, hot pixels, a ragged size and a resize included."""
    from devolens.predict.postprocess import prepare_image, to_single_channel

    rng = np.random.default_rng(7)
    top = np.iinfo(dtype).max
    img = (rng.random((83, 121, 3) if channel else (83, 121)) ** 3 * top * 0.6).astype(dtype)
    if channel:
        img[..., 1] = np.minimum(img[..., 1].astype(np.int64) * 2, top)  # green carries the signal
    plane = img[..., {"green": 1, "auto": 1, "red": 0}[channel]] if channel else img
    for y, x in [(3, 4), (40, 60), (82, 120), (0, 0)]:
        plane[y, x] = top  # hot pixels (a view: written into img)
    for key in [(1.0, (1.0, 99.8), 0.0, 0.5), (0.5, (1.0, 99.8), 20.0, 0.5), (0.37, (), 0.0, 0.5)]:
        as_int = prepare_image(img, channel or "auto", *key)
        as_float = prepare_image(plane.astype(np.float32), "auto", *key)
        if key[1]:  # percentile-normalised: the units cancel
            assert as_int.dtype == np.float32 and np.array_equal(as_int, as_float)
    assert to_single_channel(img, channel or "auto").dtype == np.float32
