"""Session 42: a TIFF of 3 or 4 grey planes written with tifffile.imwrite's defaults is one planar RGB(A) image; a
command that wants a sequence of frames (`curate frames`) refused it as "a single image" without saying why, where
`segment` notes it. The refusal now says what the file holds and how to save the frames."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from devolens.cli import main


@pytest.mark.parametrize("planes", [3, 4])
def test_curate_frames_says_why_a_planar_rgb_tiff_is_no_sequence(tmp_path, capsys, planes):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, (np.random.default_rng(0).random((planes, 48, 64)) * 200).astype(np.uint8))
    assert main(["curate", "frames", str(path), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert f"its {planes} samples stored as planes" in err and "photometric='minisblack'" in err
    assert not (tmp_path / "r.csv").exists()


def test_a_plain_image_is_refused_as_before(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "one.png")
    assert main(["curate", "frames", str(tmp_path / "one.png"), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "got a single image" in err and "planes" not in err
