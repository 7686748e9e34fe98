"""segment membrane drops the pieces on an early embryo's edge that no membrane outlines (pieces of the eggshell and
of the space around the cells): a 1-cell slice read as 7 cells (one real, six on the eggshell) before. In Python the
card's own post-processing runs (postprocess={"edge_membrane": 0.25} drops them as the command does)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from devolens.cli import main
from devolens.errors import DevolensError
from devolens.predict.postprocess import drop_edge_pieces


def _embryo():
    """Two cells outlined by membrane, side by side in an embryo, and a piece beside it that no membrane outlines."""
    lab = np.zeros((80, 120), np.uint16)
    mem = np.zeros((80, 120), np.float32)
    lab[20:60, 20:50], lab[20:60, 52:82] = 1, 2
    for y0, y1, x0, x1 in ((20, 60, 20, 50), (20, 60, 52, 82)):
        mem[y0 - 1:y1 + 1, x0 - 1:x1 + 1] = 0.9
        mem[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = 0.0
    lab[30:40, 90:100] = 3  # a piece outside the embryo, no membrane round it
    return lab, mem


def test_pieces_without_membrane_on_the_edge_are_dropped():
    lab, mem = _embryo()
    out = drop_edge_pieces(lab, mem)
    assert int(out.max()) == 2 and not out[30:40, 90:100].any()
    assert (out[20:60, 20:82] == lab[20:60, 20:82]).all()  # the outlined cells kept, numbered as they were
    assert drop_edge_pieces(lab, mem, 0.0) is lab  # 0 keeps every piece


def test_only_pieces_on_the_embryo_s_outer_edge_are_judged():
    # a 3x3 block of cells and no membrane anywhere: the middle cell, away from the outside, is kept
    lab = np.zeros((100, 100), np.uint16)
    for k in range(9):
        r, c = divmod(k, 3)
        lab[20 + 22 * r:40 + 22 * r, 20 + 22 * c:40 + 22 * c] = k + 1
    out = drop_edge_pieces(lab, np.zeros(lab.shape, np.float32))
    assert out[50, 50] > 0
    # an embryo filling the whole image has no outside: nothing is dropped
    full = np.where(lab == 0, 10, lab).astype(np.uint16)
    assert drop_edge_pieces(full, np.zeros(lab.shape, np.float32)) is full


def test_the_option_is_checked_and_turns_it_off(tmp_path):
    from devolens.models.zoo import load

    with pytest.raises(DevolensError, match="edge_membrane"):
        load("membrane", postprocess={"edge_membrane": 2})
    assert load("membrane").postprocess_for()["edge_membrane"] == 0  # Python: as the card runs the network
    assert load("membrane", postprocess={"edge_membrane": 0.25}).postprocess_for()["edge_membrane"] == 0.25


def test_one_cell_embryo_no_longer_overcounted(tmp_path):
    """The walkthrough's reproducer, its first frame (1 cell): 7 objects before, six of them on the eggshell."""
    emb, render, cells = tmp_path / "emb.csv", tmp_path / "mrender", tmp_path / "cells"
    assert main(["simulate", "embryo", "--seed", "2", "--cells", "60", "--out", str(emb)]) == 0
    assert main(["render", str(emb), "--out", str(render), "--kind", "membrane", "--times", "1"]) == 0
    assert main(["segment", "membrane", str(render / "frames"), "--out", str(cells)]) == 0
    counts = pd.read_csv(cells / "counts.csv")
    assert int(counts["count"].iloc[0]) <= 3  # 7 before (two pieces lying along the eggshell's own line are left)
    # the one real cell is still found (IoU > 0.5 with the render's truth)
    labels = tifffile.imread(next((cells / "labels").glob("*_labels.tif")))
    truth = tifffile.imread(next((render / "labels").glob("*_labels.tif"))) > 0
    ious = [(truth & (labels == i)).sum() / (truth | (labels == i)).sum() for i in range(1, int(labels.max()) + 1)]
    assert max(ious) > 0.5
    # segment.json records it; in Python the card's own post-processing keeps the pieces, edge_membrane drops them
    import json

    from devolens.io.images import read_image
    from devolens.models.zoo import load

    assert json.loads((cells / "segment.json").read_text())["postprocess"]["edge_membrane"] == 0.25
    image = read_image(next((render / "frames").glob("*.png")))
    assert load("membrane").predict(image).count >= 6
    assert load("membrane", postprocess={"edge_membrane": 0.25}).predict(image).count <= 3
