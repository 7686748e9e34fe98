"""The speck step judges lone small objects only in images of many objects (the shipped nuclei card's
``isolated_min_objects``): an early embryo's few nuclei differ several-fold in size, and its lone small nucleus (the
4-cell stage's fourth) was dropped as a speck."""

from __future__ import annotations

import json

import numpy as np
from scipy import ndimage as ndi

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.predict import blocks
from devolens.predict.postprocess import SPECKS_AMONG, drop_isolated_specks, instances_from_probabilities, object_arrays
from test_s43_cellpose_habits import _BIG, _SMALL, _culture, _err, _probs, _squares, oracle, shipped_post  # noqa: F401


def _four_cell() -> np.ndarray:
    """Labels of a 4-cell embryo's nuclei: three big ones and a small fourth well apart from them."""
    lab = np.zeros((200, 260), np.uint16)
    yy, xx = np.mgrid[:200, :260]
    for k, (y, x, r) in enumerate([(60, 60, 40), (60, 160, 44), (150, 80, 36), (150, 210, 12)], 1):
        lab[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = k
    return lab


def test_the_shipped_card_judges_specks_among_many_objects_only():
    from pathlib import Path

    from devolens.models import zoo

    post = json.loads((Path(zoo.__file__).parent / "nuclei" / "card.json").read_text())["postprocess"]
    assert post["isolated_fraction"] == 0.25 and post["isolated_min_objects"] == SPECKS_AMONG == 100


def test_a_few_objects_keep_their_lone_small_one():
    lab = _four_cell()
    assert drop_isolated_specks(lab, 0.25).max() == 3  # (the rule without the guard: the fourth nucleus went)
    assert drop_isolated_specks(lab, 0.25, min_objects=4).max() == 3  # 4 objects: judged
    assert drop_isolated_specks(lab, 0.25, min_objects=5).max() == 4
    assert drop_isolated_specks(lab, 0.25, min_objects=SPECKS_AMONG).max() == 4
    fg = (lab > 0).astype(np.float32)
    assert instances_from_probabilities(fg, None, smooth=0, isolated_fraction=0.25).max() == 3
    assert instances_from_probabilities(fg, None, smooth=0, isolated_fraction=0.25, isolated_min_objects=5).max() == 4


def test_the_block_path_keeps_the_same_guard():
    lab = _four_cell()
    objects = {key: np.asarray(v) for key, v in object_arrays(lab).items()}
    assert blocks._specks(lab, objects, 0.25, gap=2).tolist() == [False, False, False, True]
    # (segment_blocks judges the count of objects: tests/test_s53_block_lone_kept.py)


def test_many_objects_still_lose_their_specks():
    fg = np.zeros((400, 400), bool)
    for y in range(5, 380, 20):
        for x in range(5, 380, 20):
            fg[y:y + 12, x:x + 12] = True  # 19 x 19 = 361 nuclei
    fg[390:392, 390:392] = True  # a lone speck
    lab, n = ndi.label(fg)
    assert n == 362
    assert drop_isolated_specks(lab, 0.25, min_objects=SPECKS_AMONG).max() == 361


def test_segment_nuclei_keeps_a_few_cells_lone_small_nuclei_by_default(shipped_post, oracle, tmp_path, capsys):
    src = _culture(tmp_path / "culture.tif")  # 8 big and 4 lone small nuclei: 12 objects, under 100
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-flatten", "--no-overlay"]) == 0
    err = _err(capsys)
    assert "12 nuclei" in err and "dropped as specks" not in err
    # said: a sparse field's debris would be counted so
    said = ("note: 4 lone small nuclei of about 180 px were kept: under a quarter of the image's median nucleus area "
            "with nothing beside it, which an image of 100 objects or more drops as a speck, but its image holds fewer")
    assert said in err and "--min-size AREA drops objects under AREA pixels" in err
    record = json.loads((out / "segment.json").read_text())
    assert record["postprocess"]["isolated_min_objects"] == 100 and "isolated_dropped" not in json.dumps(record)
    assert any(n.startswith(said[len("note: "):]) for n in record["notes"])
    # objects --min-size drops, or --keep-small (no speck step): no such note
    for extra in (["--min-size", "200"], ["--keep-small"]):
        assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-flatten", "--no-overlay", *extra]) == 0
        assert "were kept" not in _err(capsys)


def test_the_library_says_which_lone_objects_it_kept(tiny_zoo):
    from devolens.models import load

    probs = _probs(_squares((128, 160), _BIG + _SMALL))
    res = load("nuclei", postprocess={"isolated_fraction": 0.25, "isolated_min_objects": 13,
                                      "smooth": 0.0})._finish(probs, (256, 320))
    assert res.count == 12 and sorted(res.extra["isolated_kept"]) == [196] * 4 and "isolated_dropped" not in res.extra
    res = load("nuclei", postprocess={"isolated_fraction": 0.25, "isolated_min_objects": 12,
                                      "smooth": 0.0})._finish(probs, (256, 320))
    assert res.count == 8 and sorted(res.extra["isolated_dropped"]) == [196] * 4 and "isolated_kept" not in res.extra


def test_the_guard_is_a_postprocess_option(tiny_zoo):
    from devolens.errors import DevolensError
    from devolens.models import load

    probs = _probs(_squares((128, 160), _BIG + _SMALL))
    pred = load("nuclei", postprocess={"isolated_fraction": 0.25, "isolated_min_objects": 12, "smooth": 0.0})
    assert pred._finish(probs, (256, 320)).count == 8  # 12 objects: judged
    pred = load("nuclei", postprocess={"isolated_fraction": 0.25, "isolated_min_objects": 13, "smooth": 0.0})
    assert pred._finish(probs, (256, 320)).count == 12  # fewer than 13: kept
    import pytest

    with pytest.raises(DevolensError, match="isolated_min_objects must be a number >= 0"):
        load("nuclei", postprocess={"isolated_min_objects": -1})
