"""Session 48's review mends: the CLI's peeked frames are let go once yielded and their decoder closed even before
the first frame; one crop filled by a big nucleus leaves the others' size advice; a run stopped hard before its first
run.json (recipe.yaml and split.csv alone) does not block its rerun."""
import numpy as np
import tifffile

from devolens.cli.predict import _peeked
from devolens.data.datasets import object_diameter
from devolens.train.trainer import check_run_files


def test_peeked_frames_are_let_go_and_closing_before_the_first_closes_the_decoder():
    closed = []

    def frames():
        try:
            for i in range(6):
                yield np.full((4, 4), i, np.uint8)
        finally:
            closed.append(True)

    heads, it = _peeked(frames(), 3)
    assert [p for p, _ in heads] == [0, 1, 2]
    assert int(next(it)[0, 0]) == 0 and len(it._head) == 2  # (yielded: no longer held by the iterator)
    assert [int(f[0, 0]) for f in it] == [1, 2, 3, 4, 5]

    _, unread = _peeked(frames(), 2)
    unread.close()  # (before its first frame)
    assert len(closed) == 2


def _disc_mask(h, w, discs):
    yy, xx = np.mgrid[:h, :w]
    mask = np.zeros((h, w), np.uint16)
    for k, (y, x, r) in enumerate(discs, 1):
        mask[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = k
    return mask


def test_one_crop_filled_by_a_nucleus_keeps_the_others_size_advice(tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"m{i}.tif"
        tifffile.imwrite(p, _disc_mask(64, 64, [(16, 16, 5), (40, 40, 5), (16, 46, 5)]))
        paths.append(p)
    big = tmp_path / "big.tif"  # one nucleus filling its crop, touching every edge
    tifffile.imwrite(big, np.ones((40, 40), np.uint16))
    diameter, objects, masks = object_diameter(paths + [big])
    assert diameter is not None and 9 <= diameter <= 12 and objects == 9 and masks == 4


def test_a_run_stopped_before_its_first_record_does_not_block_its_rerun(tmp_path):
    (tmp_path / "recipe.yaml").write_text("model: {}\n")
    (tmp_path / "split.csv").write_text("sample,split\n")
    check_run_files(tmp_path)  # (no refusal)


def test_tune_refuses_files_of_its_names_without_an_earlier_study(tmp_path):
    import pytest

    from devolens.errors import DevolensError
    from devolens.train.trainer import check_run_folder

    (tmp_path / "best_recipe.yaml").write_text("my: recipe\n")
    with pytest.raises(DevolensError, match=r"holds best_recipe.yaml, of names a tune writes"):
        check_run_folder(tmp_path, tuning=True)
    (tmp_path / "trials").mkdir()  # an earlier tune's (its study in a shared --storage)
    check_run_folder(tmp_path, tuning=True)


def test_one_colour_image_is_not_said_as_a_movie():
    from devolens.cli.predict import _ColourReads

    one = _ColourReads("auto", movie=True)
    one.add(0, None, known="red", grey=False)
    line = one.line("x", "frame")
    assert line is not None and "movie" not in line and "every frame" not in line
    two = _ColourReads("auto", movie=True)
    for pos in (0, 1):
        two.add(pos, None, known="red", grey=False)
    assert "every frame" in two.line("x", "frame")
