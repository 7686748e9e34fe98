"""Thirty-sixth session, M4: four spots simplified, their outputs unchanged. probs.tif's writer states only what
differs from :class:`TiffRowWriter` (its ``_tiff_options`` hook); ``diameter="auto"`` labels an image's bright regions
once for its object count and its crowded check; one rule tells a folder's image files by name; the accents hint of
a missing input is looked for once on the command's error path."""

from __future__ import annotations

import unicodedata

import numpy as np
import tifffile

from devolens.predict.tiled import TiffRowWriter
from test_cli_usage_errors import run  # main on argv: (code, stdout, stderr)


# 1. TiffRowWriter's options hook ----------------------------------------------------------------------------------


def test_a_subclass_states_only_its_tiff_options(tmp_path):
    class Named(TiffRowWriter):
        def _tiff_options(self, pixel):
            return {"imagej": True, "metadata": {"axes": "CYX", "Labels": ["a", "b"]}}

    data = np.arange(2 * 5 * 7, dtype=np.uint8).reshape(2, 5, 7)
    with Named(tmp_path / "n.tif", data.shape, np.uint8) as w:
        w.write(0, data[:, :2])
        w.write(2, data[:, 2:])
    with tifffile.TiffFile(tmp_path / "n.tif") as tif:
        assert tif.imagej_metadata["Labels"] == ["a", "b"]
        assert np.array_equal(tif.asarray(), data)


def test_probs_writer_is_the_row_writer_with_its_own_options(tmp_path):
    from devolens.predict.livedead import _ProbsWriter
    from devolens.predict.tiled import imagej_unit

    assert "__init__" in vars(_ProbsWriter) and "_tiff_options" in vars(_ProbsWriter)
    assert "write" not in vars(_ProbsWriter) and "close" not in vars(_ProbsWriter)
    w = _ProbsWriter(tmp_path / "p.tif", (4, 6), pixel=(0.5, 0.5, "µm"))
    w.close()
    assert (w.shape, w.dtype) == ((3, 4, 6), np.dtype(np.uint8))
    with tifffile.TiffFile(tmp_path / "p.tif") as tif:
        assert tif.imagej_metadata["Labels"] == ["background", "live", "dead"]
        assert tif.imagej_metadata["unit"] == "micron"
    assert imagej_unit("µm") == "micron" and imagej_unit("Å") == "?" and imagej_unit("nm") == "nm"


# 2. diameter="auto": an image's bright regions labelled once --------------------------------------------------------


def test_estimate_labels_each_mask_once(monkeypatch):
    """A crowded image (too few objects, one large region) was labelled above 0.5 twice: for its count, then for
    the crowded check."""
    import cv2

    from devolens.predict import sizing
    from test_s35_population import _merged, _tiny_predictor

    pred = _tiny_predictor()
    seen = []
    label = cv2.connectedComponentsWithStats

    def counting(mask, *args, **kwargs):
        seen.append(mask.tobytes())
        return label(mask, *args, **kwargs)

    monkeypatch.setattr(cv2, "connectedComponentsWithStats", counting)
    est = sizing.estimate_diameter(pred, [_merged()])
    assert est.crowded == 1 and est.trusted == 0
    twice = len(seen) - len(set(seen))
    assert seen and twice == 0, f"{twice} mask(s) labelled twice"


def test_count_and_crowded_read_the_regions_as_the_image():
    from devolens.predict.sizing import _bright, _count, _crowded
    from test_s35_population import _discs

    rng = np.random.default_rng(1)
    for arr in (rng.random((40, 50)).astype(np.float32), _discs().astype(np.float32) / 200,
                np.zeros((8, 8), np.float32), np.full((8, 8), 0.7, np.float32)):
        regions = _bright(arr)
        assert _count(regions) == _count(arr) and _crowded(regions) == _crowded(arr)
    assert _crowded(np.pad(np.full((6, 6), 0.9, np.float32), 3)) and not _count(np.zeros((8, 8), np.float32))


# 3. one rule for a folder's image files ------------------------------------------------------------------------------


def test_one_rule_for_image_files_by_path_and_by_name(tmp_path):
    from devolens.io.frames import _image_files, _image_name, _image_names

    names = ["t1.png", "T2.TIF", "a.png_labels.tif", "t1_labels.tif", ".hidden.png", "notes.txt", "clip.gif",
             "v.mp4", "x.", "b.ome.tiff"]
    for n in names:
        (tmp_path / n).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()  # a folder: no file, though so named
    frames = {"t1.png", "T2.TIF", "clip.gif", "b.ome.tiff"}
    labels = {"a.png_labels.tif", "t1_labels.tif"}
    assert {n for n in names if _image_name(n)} == frames
    assert {n for n in names if _image_name(n, labels=True)} == labels
    assert {p.name for p in _image_files(tmp_path)} == frames
    assert {p.name for p in _image_files(tmp_path, labels=True)} == labels
    assert set(_image_names(tmp_path)) == frames | {"sub.png"}  # by name alone: no stat of each member


# 4. the accents hint of a missing input, looked for once ------------------------------------------------------------


def test_the_accents_hint_is_looked_for_once(tmp_path, capsys, monkeypatch):
    from PIL import Image

    from devolens.io import frames

    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.full((32, 40), 90, np.uint8)).save(tmp_path / unicodedata.normalize("NFD", "Kern ä.png"))
    typed = unicodedata.normalize("NFC", "Kern ä.png")
    calls = []
    twin = frames.composed_twin

    def counting(path):
        calls.append(path)
        return twin(path)

    monkeypatch.setattr(frames, "composed_twin", counting)
    code, _, err = run(["curate", "frames", typed, "--out", "r.csv"], capsys)  # through iter_path_frames
    assert code == 2 and err.count("encoded otherwise") == 1 and "let the Tab key complete the name" in err
    assert len(calls) == 1
    calls.clear()
    code, _, err = run(["curate", "frames", "absent ü.png", "--out", "r.csv"], capsys)  # no twin: none said
    assert code == 2 and "encoded otherwise" not in err and len(calls) == 1
    calls.clear()
    code, _, err = run(["segment", "nuclei", typed, "--out", "x"], capsys)  # segment checks its input itself
    assert code == 2 and err.count("encoded otherwise") == 1 and len(calls) == 1
