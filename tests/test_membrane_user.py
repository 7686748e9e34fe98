"""A cell biologist's walk through `segment membrane`: labels cut in pieces when shrunk to the input, a size note
that contradicted itself, "cells" in frames of noise, a channel-last TIFF read as hundreds of 2-px frames, inverted
contrast without a word, and help texts that said the wrong number."""

from __future__ import annotations

import numpy as np
import pytest

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.io.images import write_png


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _cells(size=256, d=30, seed=0):
    """Polygonal cells outlined by 2-px bright lines (a Voronoi diagram of jittered points), 0..1."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, size, (max(4, int((size / d) ** 2)), 2))
    yy, xx = np.mgrid[:size, :size]
    dist = np.sqrt((yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2)
    two = np.sort(dist, axis=2)[..., :2]
    return (two[..., 1] - two[..., 0] < 2.0).astype(np.float32)


def _membranes(size=256, seed=0, contrast=200.0, noise=3.0):
    rng = np.random.default_rng(seed + 100)
    return (10 + contrast * _cells(size, seed=seed) + rng.normal(0, noise, (size, size))).clip(0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ A: one piece each
def _necked(shape):
    """Working-scale labels (``shape`` = twice the input's) whose label 1 is two squares joined by a 1-px neck on an
    even row: the 2x nearest-neighbour shrink samples odd rows only, so the neck vanishes and label 1 falls apart."""
    lab = np.zeros(shape, np.uint16)
    lab[8:40, 8:40] = 1     # the main piece: 16 x 16 px at the input's size
    lab[16:28, 60:72] = 1   # a smaller piece: 6 x 6 px
    lab[20, 40:60] = 1      # the neck (row 20: not sampled)
    lab[60:91, 100:151] = 2  # an object that stays whole
    return lab


@pytest.mark.parametrize("kind", ["membrane", "nuclei"])
def test_shrunk_labels_keep_their_largest_piece_and_objects_match(tiny_zoo, monkeypatch, kind):
    """A working image larger than the input (a small --diameter): shrinking the labels by nearest neighbour cut thin
    necks, leaving labels made of several separate pieces (4 on an embryo frame at --diameter 30). Each label now keeps
    its largest piece, and the objects (objects.csv) are those of the labels as written."""
    import devolens.predict.segment as seg
    from devolens.models import load

    monkeypatch.setattr(seg, "instances_from_probabilities", lambda fg, *a, **k: _necked(fg.shape))
    monkeypatch.setattr(seg.NucleiPredictor, "checks_structure", False)  # (noise gets no nuclei: test_s43_noise_fields)
    res = load(kind, scale=2.0).predict(np.random.default_rng(0).integers(0, 255, (64, 96), dtype=np.uint8))
    lab = res.labels
    assert lab.shape == (64, 96)
    from scipy import ndimage

    for i in (1, 2):
        assert ndimage.label(lab == i)[1] == 1, f"label {i} is in pieces"
    assert (lab == 1).sum() == 16 * 16
    obj = res.objects
    area = np.bincount(lab.ravel().astype(np.intp))
    assert list(obj["label"]) == [1, 2] and list(obj["area"]) == [int(area[1]), int(area[2])]
    for k, i in enumerate(obj["label"]):
        rows, cols = np.nonzero(lab == i)
        assert obj["x"][k] == pytest.approx(cols.mean()) and obj["y"][k] == pytest.approx(rows.mean())


def test_enlarged_labels_are_left_as_they_were(tiny_zoo, monkeypatch):
    """Enlarging repeats every pixel and cannot cut a label: the labels and objects are those of before (the usual
    case: the membrane model works at 0.75x, nuclei at 0.5x)."""
    import devolens.predict.segment as seg
    from devolens.models import load
    from devolens.predict.postprocess import object_arrays, resize_labels

    work = np.zeros((32, 48), np.uint16)
    work[2:12, 3:9] = 1
    work[5, 9:30] = 1  # a 1-px tail: kept whole
    work[20:30, 30:45] = 2
    monkeypatch.setattr(seg, "instances_from_probabilities", lambda fg, *a, **k: work)
    res = load("membrane").predict(np.random.default_rng(0).integers(0, 255, (64, 96), dtype=np.uint8))
    assert np.array_equal(res.labels, resize_labels(work, (64, 96)))
    want = object_arrays(work, (64, 96))
    assert all(np.array_equal(res.objects[k], want[k]) for k in ("label", "x", "y", "area"))


def test_keep_largest_pieces():
    from devolens.predict.postprocess import keep_largest_pieces

    lab = np.array([[1, 1, 0, 1],
                    [1, 0, 0, 0],
                    [0, 2, 2, 0],
                    [3, 0, 2, 2]], np.uint16)
    out = keep_largest_pieces(lab)
    assert out.tolist() == [[1, 1, 0, 0], [1, 0, 0, 0], [0, 2, 2, 0], [3, 0, 2, 2]]
    whole = np.array([[1, 1], [2, 2]], np.uint16)
    assert keep_largest_pieces(whole) is whole  # nothing cut: no copy


# ------------------------------------------------------------------------------------------------ B: the size note
def _summary(**extra):
    return {"frames": 1, "objects": 134, "skipped": 0, "curation": None, "precision": "int8", "scale": 0.297,
            "estimate": None, "estimates": None, "ended_early": None, **extra}


def test_size_note_after_an_automatic_resize_speaks_in_the_inputs_pixels(tmp_path, monkeypatch, capsys):
    """A culture of 59.5 px cells, shrunk 0.4x by the magnification estimate: the note said they were far from
    32.6-175.2 px, a range that holds 59.5. It now gives what the estimate expected in the input's pixels and says
    the estimate probably misjudged the magnification, suggesting --diameter 59.5."""
    import devolens.cli.predict as cli_predict

    img = tmp_path / "culture.png"
    write_png(np.zeros((48, 70), np.uint8), img)
    summary = _summary(suggest_diameter=59.5, known_sizes=(32.6, 175.2), resized=True, size_resize=0.297 / 0.75,
                       diameter_by="auto", diameter=152.0)
    monkeypatch.setattr(cli_predict, "run_segmentation", lambda *a, **k: summary)
    assert main(["segment", "membrane", str(img), "--out", str(tmp_path / "o")]) == 0
    err = _err(capsys)
    assert "about 59.5 px wide, far from the 82.3-442 px that the automatic magnification estimate expected" in err
    assert "probably misjudged the magnification" in err and "culture" in err and "--diameter 59.5" in err
    assert "(32.6-175.2 px) after resizing" not in err


def test_size_note_by_hand_and_without_resize(tmp_path, monkeypatch, capsys):
    import devolens.cli.predict as cli_predict

    img = tmp_path / "frame.png"
    write_png(np.zeros((48, 70), np.uint8), img)
    # nuclei found as they come (no resize): the model's own range, as before
    summary = _summary(suggest_diameter=11.5, known_sizes=(20.0, 87.0), resized=False, size_resize=1.0,
                       diameter_by=None, diameter=None)
    monkeypatch.setattr(cli_predict, "run_segmentation", lambda *a, **k: summary)
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o")]) == 0
    err = _err(capsys)
    assert "the nuclei found are about 11.5 px wide, far from the sizes this model knows (20-87 px)" in err
    assert "--diameter 11.5" in err and "misjudged" not in err
    # resized by hand (--diameter 30 on nuclei of 35 px: enlarged 35.1/30): the range expected at that resize
    summary.update(suggest_diameter=12.0, resized=True, size_resize=35.1 / 30, diameter_by="hand", diameter=30.0)
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o")]) == 0
    err = _err(capsys)
    assert "far from the 17.1-74.4 px expected in this input at --diameter 30" in err and "--diameter 12" in err
    assert "misjudged" not in err
    # resized by the estimate (a crowded field read as magnified): the estimate is blamed, in nuclei's words
    summary.update(suggest_diameter=12.0, resized=True, size_resize=0.3, diameter_by="auto", diameter=117.0)
    assert main(["segment", "nuclei", str(img), "--out", str(tmp_path / "o")]) == 0
    err = _err(capsys)
    assert "far from the 66.7-290 px that the automatic magnification estimate expected" in err
    assert "misjudged the magnification (a field filled with nuclei" in err and "culture" not in err


# ------------------------------------------------------------------------------------------------ C: frames of noise
def test_lacks_structure_tells_noise_from_dim_cells():
    """Curate's black test (block contrast under one 8-bit grey level) made relative to the frame's own noise."""
    from devolens.predict.postprocess import lacks_structure, structure_score

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:512, :512]
    noise = {"camera dark frame": rng.poisson(100, (512, 512)).astype(np.uint16),
             "8-bit noise": rng.normal(10, 2, (256, 384)).clip(0, 255).astype(np.uint8),
             "noise under a gradient": rng.poisson(50 + 150 * xx / 512 + 50 * yy / 512).astype(np.uint16),
             "float noise": rng.normal(0, 1, (300, 300)).astype(np.float32),
             "blank": np.zeros((256, 256), np.uint8)}
    for name, img in noise.items():
        assert lacks_structure(img), name
    # cells, down to line contrast 6 grey levels under noise of 8 (scores ~24; noise ~0)
    for contrast, sigma in ((200, 3), (20, 8), (6, 8)):
        img = _membranes(contrast=contrast, noise=sigma)
        assert not lacks_structure(img), (contrast, sigma)
        assert structure_score(img)[0] > 12
    # 16-bit cells of 60 counts on a camera offset of 500: curate's black (under one 8-bit level), not here
    cells16 = (500 + 60 * _cells() + rng.normal(0, 5, (256, 256))).astype(np.uint16)
    assert not lacks_structure(cells16)
    assert structure_score(np.zeros((100, 300), np.uint8)) is None and not lacks_structure(np.zeros((100, 300)))


def test_noise_frame_in_a_stack_gets_no_cells(tiny_zoo, tmp_path, capsys):
    """A frame of noise inside a TYX stack gave 1716 "cells"; now none, with a note naming it, while the frames of
    cells around it keep theirs."""
    import tifffile

    rng = np.random.default_rng(0)
    stack = np.stack([_membranes(160, 0), rng.normal(100, 10, (160, 160)).clip(0, 255).astype(np.uint8),
                      _membranes(160, 1)])
    tifffile.imwrite(tmp_path / "movie.tif", stack, imagej=True, metadata={"axes": "TYX"})
    out = tmp_path / "out"
    assert main(["segment", "membrane", str(tmp_path / "movie.tif"), "--out", str(out), "--diameter", "none"]) == 0
    err = _err(capsys)
    counts = (out / "counts.csv").read_text().split()
    assert counts[2] == "1,0", counts
    assert "nothing stands out from the noise in 1 of 3 frames (1)" in err
    labels = tifffile.imread(out / "labels" / "movie_f00001_labels.tif")
    assert labels.max() == 0
    rows = (out / "objects.csv").read_text().split()[1:]
    assert not [r for r in rows if r.startswith("1,")]


def test_noise_image_alone(tiny_zoo, tmp_path, capsys):
    import tifffile

    tifffile.imwrite(tmp_path / "dark.tif", np.random.default_rng(1).poisson(100, (256, 256)).astype(np.uint16))
    assert main(["segment", "membrane", str(tmp_path / "dark.tif"), "--out", str(tmp_path / "o")]) == 0
    err = _err(capsys)
    assert "1 frame, 0 cells" in err and "nothing stands out from the noise in the frame (dark)" in err
    assert "no cells found in any frame" not in err  # the note above says why


def test_library_says_which_frames_had_no_structure(tiny_zoo):
    from devolens.models import load

    res = load("membrane").predict(np.random.default_rng(2).normal(50, 5, (200, 200)).astype(np.float32))
    assert res.count == 0 and res.extra["no_structure"] and res.labels.shape == (200, 200)
    assert res.probability.shape == (200, 200) and res.mask.shape == (200, 200)
    assert not load("membrane").predict(_membranes(200)).extra.get("no_structure")


# ------------------------------------------------------------------------------------------------ D: channel-last TIFF
@pytest.mark.parametrize("cmd", [["segment", "membrane"], ["segment", "nuclei"], ["curate", "frames"]])
def test_channel_last_tiff_without_axes_is_refused(tiny_zoo, tmp_path, capsys, cmd):
    """np.dstack([nuclei, membranes]) saved without axes is stored one page per row (64 pages of 40 x 2 px): it was
    segmented as 64 frames of 40 x 2 pixels, exit 0."""
    import tifffile

    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "yx2.tif", np.dstack([rng.integers(0, 4000, (64, 40)),
                                                      rng.integers(0, 4000, (64, 40))]).astype(np.uint16))
    out = tmp_path / ("o.csv" if cmd[0] == "curate" else "o")
    assert main([*cmd, str(tmp_path / "yx2.tif"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    err = " ".join(err.split())
    assert "40 x 2 pixels in 64 pages" in err and "channel-last" in err and "'axes': 'CYX'" in err
    assert not out.exists()


def test_channel_last_tiff_in_a_folder_is_refused(tiny_zoo, tmp_path, capsys):
    import tifffile

    folder = tmp_path / "stacks"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", np.zeros((64, 40, 2), np.uint16))
    assert main(["segment", "membrane", str(folder), "--out", str(tmp_path / "o")]) == 2
    assert "channel-last" in _err(capsys)


def test_narrow_but_genuine_inputs_still_read(tmp_path):
    """Planes of 2-4 px in a few pages, or a channels-first stack: not refused by the rule."""
    import tifffile

    from devolens.io.stacks import open_stack

    tifffile.imwrite(tmp_path / "few.tif", np.zeros((5, 40, 2), np.uint8))  # 5 pages of 40 x 2
    assert open_stack(tmp_path / "few.tif") is not None
    tifffile.imwrite(tmp_path / "cyx.tif", np.zeros((2, 64, 40), np.uint16), imagej=True, metadata={"axes": "CYX"})
    assert open_stack(tmp_path / "cyx.tif", channel=1) is not None


# ------------------------------------------------------------------------------------------------ E: inverted contrast
@pytest.mark.parametrize("invert, noted", [(True, True), (False, False)])
def test_inverted_membranes_get_a_note(tiny_zoo, tmp_path, capsys, invert, noted):
    """Dark membranes on a bright background (brightfield, DIC, an inverted export) gave 19 of 93 cells and no
    word: the frame's median is too bright for the blob-or-line judgement, which said nothing."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        img = _membranes(seed=i)
        write_png(255 - img if invert else img, folder / f"t{i}.png")
    assert main(["segment", "membrane", str(folder), "--out", str(tmp_path / "out"), "--diameter", "none"]) == 0
    err = _err(capsys)
    assert ("the input looks inverted" in err) == noted
    assert "looks like nuclei" not in err


# ------------------------------------------------------------------------------------------------ F: help and words
def test_help_gives_each_commands_read_ahead_count_and_border_objects():
    import inspect

    import devolens.cli.predict as cli_predict
    from devolens.predict.segment import MembranePredictor
    from devolens.predict.sizing import GOOD_OBJECTS

    assert MembranePredictor.size_good_objects == 32
    for command, n in ((cli_predict.segment_membrane_command, MembranePredictor.size_good_objects),
                       (cli_predict.segment_nuclei_command, GOOD_OBJECTS)):
        params = inspect.signature(command).parameters
        assert f"read ahead until 5 show {n};" in params["diameter"].default.help
        assert "an object cut by the image's border is kept" in params["out"].default.help


def test_colour_note_verb_agrees():
    from devolens.cli.predict import _colour_note

    rng = np.random.default_rng(0)
    blobs = np.zeros((200, 200), np.float32)
    yy, xx = np.mgrid[:200, :200]
    for cy, cx in rng.uniform(20, 180, (12, 2)):
        blobs = np.maximum(blobs, ((yy - cy) ** 2 + (xx - cx) ** 2 < 100).astype(np.float32))
    lines = _cells(200)
    img = np.dstack([lines * 90, blobs * 250, lines * 90]).astype(np.uint8)
    note = _colour_note(img, "membrane", "auto")
    assert note is not None and "the green channel was read" in note and "red and blue carry structure too" in note
    one = np.dstack([lines * 90, blobs * 250, np.zeros_like(lines)]).astype(np.uint8)
    assert "red carries structure too" in _colour_note(one, "membrane", "auto")


def test_review_mends_flat_backgrounds_streams_pieces_and_channels(tmp_path):
    """Review of the walkthrough's mends: cells on a flat (exactly 0) background are judged, never called noise (the
    noise estimate fell back to the structure's own edges: 14 and 51 cells -> 0); a Series or array of paths is an
    iterable of images; labels joined at a corner are one piece; 5 to 8 channels saved without axes are refused."""
    import pandas as pd
    import tifffile

    from devolens.errors import DevolensError
    from devolens.io.images import check_stack_planes
    from devolens.predict.postprocess import check_stream, keep_largest_pieces, lacks_structure, structure_score

    img = np.zeros((512, 512), np.uint8)
    yy, xx = np.mgrid[:512, :512]
    for r in range(20, 200, 30):  # rings: membranes on an exactly black background
        img[np.abs(np.hypot(yy - 256, xx - 256) - r) < 1.5] = 200
    assert structure_score(img) is None and not lacks_structure(img)
    check_stream(pd.Series(["a.png", "b.png"]))
    check_stream(np.array(["a.png", "b.png"]))
    stair = np.zeros((4, 4), np.uint16)
    stair[0, 0] = stair[1, 1] = stair[2, 2] = 5
    assert np.array_equal(keep_largest_pieces(stair), stair)
    with pytest.raises(DevolensError, match="channel-last"):
        check_stack_planes(48, 5, 64, tmp_path / "x.tif")
