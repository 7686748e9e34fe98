"""``segment nuclei|membrane --probabilities``: each frame's probability map in probs/ (the Python result's
``.probability`` had no command-line output), written as ``segment livedead --probabilities`` writes its own: uint8
x255, calibrated as the label image, staged with the labels and replaced whole by a rerun."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile

from _cli_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main


def _folder(path: Path, n: int = 2) -> Path:
    from devolens.io.images import write_png

    path.mkdir()
    for i in range(n):
        write_png(blob_frame(seed=i, rgb=False), path / f"t{i + 1:03d}.png")
    return path


def _probs(out: Path) -> list[Path]:
    return sorted((out / "probs").iterdir())


def test_nuclei_probabilities_of_a_calibrated_stack(tiny_zoo, tmp_path):
    from devolens.io.stacks import pixel_size

    frames = np.stack([blob_frame(seed=i, rgb=False) for i in range(2)])
    src = tmp_path / "ij.tif"
    tifffile.imwrite(src, frames, imagej=True, resolution=(1 / 0.65, 1 / 0.65), metadata={"axes": "TYX", "unit": "um"})
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--no-overlay", "--probabilities"]) == 0
    labels = sorted((out / "labels").iterdir())
    probs = _probs(out)
    assert [p.name for p in probs] == [p.name.replace("_labels.tif", "_probs.tif") for p in labels]
    assert [p.name for p in probs] == ["ij_f00000_probs.tif", "ij_f00001_probs.tif"]
    for lab, prob in zip(labels, probs):
        arr = tifffile.imread(prob)
        assert arr.dtype == np.uint8 and arr.shape == tifffile.imread(lab).shape == frames.shape[1:]
        assert 0 <= arr.min() <= arr.max() <= 255 and arr.max() > arr.min()  # a map, not a constant
        assert pixel_size(prob) == pixel_size(lab) == (0.65, 0.65, "µm")
        assert tifffile.TiffFile(prob).is_imagej
    record = json.loads((out / "segment.json").read_text(encoding="utf-8"))
    assert record["options"]["probabilities"] is True


def test_membrane_probabilities_replaced_whole_and_off_by_default(tiny_zoo, tmp_path, capsys):
    src = _folder(tmp_path / "frames")
    plain = tmp_path / "plain"
    assert main(["segment", "membrane", str(src), "--out", str(plain), "--no-overlay"]) == 0
    assert not (plain / "probs").exists()
    assert json.loads((plain / "segment.json").read_text(encoding="utf-8"))["options"]["probabilities"] is False

    out = tmp_path / "mem"
    assert main(["segment", "membrane", str(src), "--out", str(out), "--probabilities"]) == 0
    probs = _probs(out)
    assert [p.name for p in probs] == ["t001_probs.tif", "t002_probs.tif"]
    arr = tifffile.imread(probs[0])
    assert arr.dtype == np.uint8 and arr.shape == blob_frame(seed=0, rgb=False).shape
    assert not tifffile.TiffFile(probs[0]).is_imagej  # (a PNG records no pixel size: neither do its labels)

    # a file of the user's in probs/: the rerun, which replaces probs/ whole, is refused and changes nothing
    (out / "probs" / "mine.txt").write_text("notes")
    capsys.readouterr()
    assert main(["segment", "membrane", str(src), "--out", str(out), "--probabilities"]) == 2
    assert "probs/mine.txt" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "probs").iterdir()) == ["mine.txt", "t001_probs.tif", "t002_probs.tif"]
    (out / "probs" / "mine.txt").unlink()

    # a rerun without --probabilities leaves no earlier run's probs/ behind
    assert main(["segment", "membrane", str(src), "--out", str(out), "--no-overlay"]) == 0
    assert not (out / "probs").exists()
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_probabilities_of_a_giant_image_segmented_by_blocks(tiny_zoo, tmp_path, monkeypatch):
    """A giant image's map is assembled from its blocks (run again for it): at the image's size, as its labels."""
    from devolens.predict import blocks

    monkeypatch.setattr(blocks, "BLOCK_PIXELS", 20_000)
    src = tmp_path / "well.tif"
    tifffile.imwrite(src, blob_frame(600, 640, seed=3, rgb=False))
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out), "--diameter", "none", "--probabilities"]) == 0
    notes = " ".join(json.loads((out / "segment.json").read_text(encoding="utf-8"))["notes"])
    assert "overlapping blocks" in " ".join(notes.split())  # (segmented block by block)
    arr = tifffile.imread(out / "probs" / "well_probs.tif")
    labels = tifffile.imread(out / "labels" / "well_labels.tif")
    assert arr.dtype == np.uint8 and arr.shape == labels.shape == (600, 640)
