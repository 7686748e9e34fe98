"""``segment --min-size`` (the predictors' ``min_size_input``) drops the objects found under that many input pixels
and leaves the others as they were. It was applied as the postprocess's seed size, before the watershed: the
neighbours' seeds flooded a dropped nucleus's pixels (objects grew by up to half) and a large value made the whole
foreground one object (session-43 false-alarm walkthrough: --min-size 100000 gave "1 nucleus" of 158,024 px)."""
import numpy as np
import pytest


def _nuclei_image(seed: int = 3, side: int = 256, n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(30, 3, (side, side)).astype(np.float32)
    yy, xx = np.mgrid[:side, :side]
    for cy, cx, r in zip(rng.integers(20, side - 20, n), rng.integers(20, side - 20, n), rng.integers(5, 15, n)):
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 200 + rng.normal(0, 10)
    return img


@pytest.fixture(scope="module")
def results():
    from devolens.models import load

    m = load("nuclei", diameter=20)
    img = _nuclei_image()
    plain = m.predict(img)
    out = {"plain": plain}
    for size in (250, 10**6):
        m.min_size_input = float(size)
        out[size] = m.predict(img)
    m.min_size_input = None
    return out


def test_the_objects_kept_are_the_objects_found_without_the_option(results):
    plain, kept = results["plain"].centroids, results[250].centroids
    assert (plain["area"] < 250).sum() >= 3 and (plain["area"] >= 250).sum() >= 10  # (the image has both)
    assert len(kept) == int((plain["area"] >= 250).sum())
    merged = kept.merge(plain, on=["x", "y"], suffixes=("", "_plain"))
    assert len(merged) == len(kept)
    assert (merged["area"] == merged["area_plain"]).all()  # (no object grew into a dropped one's pixels)
    assert list(kept["label"]) == list(range(1, len(kept) + 1))
    labels = results[250].labels
    assert set(np.unique(labels)) - {0} == set(kept["label"])
    assert all(int((labels == lab).sum()) == int(area) for lab, area in zip(kept["label"], kept["area"]))


def test_a_size_above_every_nucleus_leaves_none(results):
    assert results[10**6].count == 0 and not results[10**6].labels.any()


def test_a_giant_image_segmented_in_blocks_drops_them_too(monkeypatch):
    from devolens.models import load
    from test_predict_sizing import _estimates_once

    _estimates_once(monkeypatch)  # the diameter's check (a note) estimates the one image once for both predictions

    m = load("nuclei", diameter=20, tile=256, block_pixels=100_000)
    img = _nuclei_image(side=1024, n=400)
    plain = m.predict(img)
    m.min_size_input = 250.0
    m.min_size_dropped = []  # (segment's count of them: session 51, the block path counted none)
    kept = m.predict(img)
    assert plain.extra.get("blocks", 1) > 1 and kept.extra.get("blocks", 1) > 1  # (block by block)
    assert (plain.centroids["area"] < 250).any()
    assert len(kept.centroids) and (kept.centroids["area"] >= 250).all()
    assert len(kept.centroids) == int((plain.centroids["area"] >= 250).sum())
    assert m.min_size_dropped == [int((plain.centroids["area"] < 250).sum())]
    # lone specks are specks whatever their size (the whole-image path drops them before --min-size)
    specks = len(plain.extra.get("isolated_dropped", []))
    assert specks and len(kept.extra.get("isolated_dropped", [])) == specks


def test_a_min_size_below_the_model_s_own_lowers_it():
    """--min-size smaller than the model's own minimum (8 working px) keeps the smaller objects it asks for: the
    postprocess's seed-size step is lowered to it, not left to clear them first."""
    from devolens.models import load

    m = load("nuclei", diameter=20)
    own = m.postprocess_for()["min_size"]
    m.min_size_input = 1.0
    assert m.postprocess_for()["min_size"] == pytest.approx(min(own, float(m.network.scale) ** 2))
    m.min_size_input = 10**6
    assert m.postprocess_for()["min_size"] == own
