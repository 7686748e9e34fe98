"""An empty field is not counted as nuclei (forty-third session, M7): a 300 x 300 px frame of pure camera noise
(100 + Poisson(5)) gave 126 "nuclei" from ``devolens segment nuclei`` under the default ``--diameter auto`` (825, 14
and 11 from ``load("nuclei", diameter="auto").predict`` on three draws), with no note: the size model read the noise
as a frame at 0.3x and enlarged it 2.6x, and the network read the enlarged noise as nuclei. Now a frame in which
nothing stands out from its noise (``lacks_structure(..., blobs=True)``: no blob above the noise either, so that a
lone nucleus in a noisy field is kept) is no evidence for the magnification and gets no nuclei, with a
NoSignalWarning (the command: its note)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from _zoo_helpers import shipped, tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main


def _noise(side=300, seed=1, lam=5.0, offset=100, dtype=np.uint16):
    """A camera's empty field: ``offset`` + Poisson(``lam``)."""
    rng = np.random.default_rng(seed)
    return (offset + rng.poisson(lam, (side, side))).astype(dtype)


def _nuclei_in_noise(side=512, n=2, radius=9, contrast=8.0, seed=0):
    """``n`` blurred nuclei of ``radius`` px, ``contrast`` times the noise's sigma above a field of camera noise
    (100 + Poisson(20)), and their label image."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side]
    labels = np.zeros((side, side), np.uint16)
    for k in range(1, n + 1):
        cy, cx = (side * (k + 0.5)) / (n + 1), side / 2 + (-1) ** k * side / 6
        labels[np.hypot(yy - cy, xx - cx) <= radius] = k
    clean = ndi.gaussian_filter((labels > 0).astype(np.float32), 1.0)
    img = (100 + rng.poisson(20 + clean * contrast * np.sqrt(20.0))).astype(np.uint16)
    return img, labels


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [w for w in caught if issubclass(w.category, UserWarning)]


# ------------------------------------------------------------------ 1. the test itself (no model)
@pytest.mark.parametrize("side", [64, 96, 300, 1024])
@pytest.mark.parametrize("kind", ["poisson5+100", "poisson0.5", "gauss8+100 uint8", "hot pixels"])
def test_noise_fields_lack_structure(side, kind):
    from devolens.predict.postprocess import NO_BLOB, blob_score, lacks_structure

    rng = np.random.default_rng(side)
    if kind == "poisson5+100":
        img = _noise(side, seed=side)
    elif kind == "poisson0.5":  # sparse photon counts (the structure score read 5.6-11 here: its outlier step)
        img = rng.poisson(0.5, (side, side)).astype(np.uint16)
    elif kind == "gauss8+100 uint8":
        img = np.clip(np.round(100 + rng.normal(0, 8, (side, side))), 0, 255).astype(np.uint8)
    else:  # a camera's dark frame with 0.1 % hot pixels (some of them in pairs)
        img = _noise(side, seed=side)
        img.flat[rng.choice(img.size, max(2, img.size // 1000), replace=False)] = 4000
        img[side // 2, side // 2:side // 2 + 2] = 4000
    assert blob_score(img) < NO_BLOB
    assert lacks_structure(img, blobs=True)


def test_a_lone_nucleus_in_noise_is_structure():
    """The structure score weighs the whole frame (each block at 6 sigma at most): one nucleus in a noisy field
    scores as noise there; the blob score sees it."""
    from devolens.predict.postprocess import NO_BLOB, blob_score, lacks_structure, structure_score

    img, _ = _nuclei_in_noise(512, n=1, radius=6, contrast=4.0)
    whole, tile = structure_score(img)
    assert whole < 4 and tile < 6  # (lacks_structure without blobs: empty)
    assert lacks_structure(img) and blob_score(img) > 2 * NO_BLOB and not lacks_structure(img, blobs=True)
    small, _ = _nuclei_in_noise(64, n=1, radius=5, contrast=4.0)  # too small for the structure score
    assert structure_score(small) is None and not lacks_structure(small, blobs=True)


def test_frames_without_pixel_noise_are_not_judged():
    from devolens.predict.postprocess import blob_score, lacks_structure

    flat_background = np.zeros((256, 256), np.uint8)
    flat_background[100:120, 100:120] = 200  # a clipped background: most neighbours equal
    assert blob_score(flat_background) is None and not lacks_structure(flat_background, blobs=True)
    assert blob_score(np.zeros((20, 20), np.uint8)) is None  # too small


def test_the_membrane_test_is_unchanged():
    """lacks_structure without blobs (the membrane model's) reads as before: hot pixels replaced, not held."""
    from devolens.predict.postprocess import structure_score

    img = np.random.default_rng(1).poisson(0.5, (1024, 1024)).astype(np.uint16)
    assert structure_score(img)[0] > 10 and structure_score(img, held=True)[0] < 4


# ------------------------------------------------------------------ 2. the library (a tiny random model)
def test_the_nuclei_model_gives_an_empty_field_no_nuclei_and_says_so(tiny_zoo):
    from devolens.errors import NoSignalWarning
    from devolens.models import load

    model = load("nuclei")
    res, caught = _caught(lambda: model.predict(_noise()))
    assert res.count == 0 and res.extra["no_structure"] and res.labels.shape == (300, 300)
    assert res.probability.shape == (300, 300) and not res.mask.any()
    assert [w.category for w in caught] == [NoSignalWarning]
    text = str(caught[0].message)
    assert text.startswith("the image holds nothing that stands out from its noise") and "given no nuclei" in text
    assert caught[0].filename == __file__
    # a stream: one warning naming the positions
    frames = [_noise(seed=1), _nuclei_in_noise(256, n=3, radius=9)[0], _noise(seed=2)]
    results, caught = _caught(lambda: model.predict_batch(frames))
    assert [bool(r.extra.get("no_structure")) for r in results] == [True, False, True]
    assert [w.category for w in caught] == [NoSignalWarning]
    assert str(caught[0].message).startswith("2 of 3 images (positions 0, 2, from 0) hold nothing that stands out")


def test_giant_images_are_not_judged(tiny_zoo):
    """An image segmented block by block is not judged (the test's full-size copies of a giant image)."""
    from devolens.models import load

    model = load("nuclei", block_pixels=64 * 64)
    assert not model._lacks_structure(_noise(300))
    assert not model.predict(_noise(300)).extra.get("no_structure")
    assert load("nuclei")._lacks_structure(_noise(300))


def test_the_population_view_leaves_the_warning_to_population(tiny_zoo):
    from devolens.models import load

    pops = load("population")
    _, caught = _caught(lambda: pops.predict(_noise()))
    assert not [w for w in caught if "stands out from its noise" in str(w.message)]  # (its own NoSignalWarning)


# ------------------------------------------------------------------ 3. the size model takes no evidence from noise
def test_gather_passes_a_noisy_dark_start_over(tiny_zoo):
    """Frames of noise count many "objects" to the size model's first look (111-134 here, the nuclei frames 12): 6
    of them before a movie's frames were all that was chosen to judge its magnification by (frames 0-4, the
    read-ahead stopping there). Now they count for nothing and are chosen after the frames with structure (and then
    left out of the estimate: the predictor's _results)."""
    from devolens.models import load
    from devolens.predict.sizing import gather

    noise = [_noise(256, seed=i, lam=20) for i in range(6)]
    frames = [_nuclei_in_noise(256, n=12, radius=8, contrast=10, seed=i)[0] for i in range(3)]
    read, chosen = gather(load("nuclei"), iter(noise + frames))
    assert len(read) == 9 and {6, 7, 8} <= set(chosen.frames)  # was 5 read, frames [0, 1, 2, 3, 4]


@pytest.mark.skipif(not shipped("nuclei"), reason="needs the shipped nuclei model")
def test_auto_reads_no_magnification_off_noise():
    from devolens.models import load

    model = load("nuclei", diameter="auto")
    for seed in (1, 2, 3):  # 16 (or 126 in the command), 825 and 35 nuclei before
        res, caught = _caught(lambda: model.predict(_noise(seed=seed)))
        assert res.count == 0 and res.extra["no_structure"]
        est = model.last_estimate
        assert est.trusted == 0 and est.diameter is None and est.resize == 1.0 and est.empty == 1  # was 0.3x, 2.6x
        assert [w.category.__name__ for w in caught] == ["NoSignalWarning"]  # no DiameterWarning: nothing to judge
    # a movie's noisy dark start: the estimate judged by the frames with nuclei only
    noise = [_noise(256, seed=i, lam=20) for i in range(6)]
    frames = [_nuclei_in_noise(256, n=12, radius=8, contrast=10, seed=i)[0] for i in range(3)]
    results = model.predict_batch(noise + frames)
    assert model.last_estimate.frames == [6, 7, 8] and model.last_estimate.trusted == 3
    assert [r.count for r in results[:6]] == [0] * 6 and all(r.count >= 10 for r in results[6:])


@pytest.mark.skipif(not shipped("nuclei"), reason="needs the shipped nuclei model")
def test_a_few_nuclei_in_noise_are_kept():
    from devolens.models import load

    for n in (1, 3):
        img, labels = _nuclei_in_noise(512, n=n, radius=9, contrast=8.0, seed=n)
        for diameter in ("auto", None, 18):
            res = load("nuclei", diameter=diameter).predict(img)
            found = {int(labels[int(round(y)), int(round(x))]) for x, y in zip(res.objects["x"], res.objects["y"])}
            assert not res.extra.get("no_structure") and found - {0} == set(range(1, n + 1)), (n, diameter)


# ------------------------------------------------------------------ 4. the command
@pytest.mark.skipif(not shipped("nuclei"), reason="needs the shipped nuclei model")
@pytest.mark.parametrize("diameter", ["auto", "none"])
def test_segment_gives_an_empty_field_no_nuclei_and_a_note(tmp_path, capsys, diameter):
    import tifffile

    tifffile.imwrite(tmp_path / "noise.tif", _noise())
    out = tmp_path / "r"
    assert main(["segment", "nuclei", str(tmp_path / "noise.tif"), "--out", str(out), "--no-overlay",
                 "--diameter", diameter]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "1 frame, 0 nuclei" in err and "holds no signal" in err
    assert "diameter auto" not in err and "as magnified" not in err  # no magnification read off the noise
    record = json.loads((out / "segment.json").read_text())
    assert record["objects"] == 0 and record["no_signal"] == ["noise"]
    if diameter == "auto":
        est = record["magnification_estimate"]
        assert est["trusted"] == 0 and est["diameter"] is None and est["resize"] == 1.0


def test_segment_notes_a_noise_field_that_is_not_black(tiny_zoo, tmp_path, capsys):
    """Gaussian noise of 8 grey levels is not black to population's test: the note on frames without structure,
    now in words for either model."""
    import tifffile

    img = np.clip(np.round(100 + np.random.default_rng(0).normal(0, 8, (256, 256))), 0, 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "grey.tif", img)
    assert main(["segment", "nuclei", str(tmp_path / "grey.tif"), "--out", str(tmp_path / "r"), "--no-overlay"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "1 frame, 0 nuclei" in err
    assert "nothing stands out from the noise in the frame (grey)" in err and "reads noise as spurious nuclei" in err


def test_a_glance_tells_nuclei_from_noise_before_the_blob_test():
    """The blob test's full-frame work cost ~10 ms a 752x512 frame (+15 % on the benchmark movie): a glance at every
    4th row passes frames whose brightest pixels stand far above the noise, and never a field of noise."""
    from devolens.predict.postprocess import _clearly_bright

    rng = np.random.default_rng(0)
    for noise in (100 + rng.poisson(5, (300, 300)), rng.normal(50, 4, (512, 752)), rng.poisson(1, (256, 256)),
                  (20 + rng.poisson(0.5, (256, 256))).astype(np.uint8)):
        assert not _clearly_bright(np.asarray(noise, np.float32))
    frame = rng.normal(50, 4, (512, 752)).astype(np.float32)
    yy, xx = np.mgrid[:512, :752]
    for cy, cx in rng.integers(30, 480, (40, 2)):
        frame[(yy - cy) ** 2 + (xx - cx) ** 2 < 100] += 200
    assert _clearly_bright(frame)
