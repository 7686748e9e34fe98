"""Session 35 (M10), segment's and population's options: ``--pixel-size`` alone calibrates segment's label images (a
PNG's, a video's), leaving the diameter as it is, with a note where it overrides a TIFF's own calibration;
``--no-fast`` (fp32) with ``--precision int8`` or ``bf16`` is refused, not run in the precision asked for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from _cli_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.io.stacks import pixel_size


def _segment(src: Path, out: Path, *extra: str, kind: str = "nuclei") -> int:
    return main(["segment", kind, str(src), "--out", str(out), "--no-overlay", *extra])


def _record(out: Path) -> dict:
    return json.loads((out / "segment.json").read_text())


def _labels(out: Path) -> list[Path]:
    files = sorted((out / "labels").glob("*_labels.tif"))
    assert files
    return files


def _png(path: Path) -> Path:
    from devolens.io.images import write_png

    write_png(blob_frame(48, 70, seed=0, rgb=False), path)
    return path


def _imagej(path: Path, size: float) -> Path:
    tifffile.imwrite(path, blob_frame(48, 70, seed=1, rgb=False), imagej=True, resolution=(1 / size, 1 / size),
                     metadata={"unit": "um"})
    return path


def test_pixel_size_alone_calibrates_the_labels_of_a_png_and_a_video(tiny_zoo, tmp_path, capsys):
    """It was refused ('--pixel-size converts a --diameter given in micrometres'): a PNG or video user could not get
    calibrated labels without giving the diameter in µm. Now the labels carry it; the segmentation is the same."""
    from devolens.io.video import write_video

    png = _png(tmp_path / "b.png")
    video = tmp_path / "m.mp4"
    write_video((blob_frame(64, 96, seed=i) for i in range(2)), video, fps=5)
    for src in (png, video):
        plain, given = tmp_path / f"plain_{src.stem}", tmp_path / f"given_{src.stem}"
        assert _segment(src, plain) == 0
        assert _segment(src, given, "--pixel-size", "0.25") == 0, capsys.readouterr().err
        err = " ".join(capsys.readouterr().err.split())
        assert "error" not in err and "--pixel-size" not in err  # nothing to note: the input records none
        for got, want in zip(_labels(given), _labels(plain)):
            assert pixel_size(got)[:2] == pytest.approx((0.25, 0.25), rel=1e-4) and pixel_size(got)[2] == "µm"
            assert pixel_size(want) is None
            np.testing.assert_array_equal(tifffile.imread(got), tifffile.imread(want))
        assert _record(given)["working_scale"] == _record(plain)["working_scale"]
        assert _record(given)["options"]["diameter"] == _record(plain)["options"]["diameter"]
        assert _record(given)["options"]["pixel_size"] == 0.25 and _record(plain)["options"]["pixel_size"] is None
        assert "diameter_um" not in _record(given)["options"]


def test_pixel_size_alone_with_a_diameter_in_pixels_and_the_membrane_model(tiny_zoo, tmp_path):
    """With --diameter in pixels (not converted: the same scale as without it), and for segment membrane too."""
    png = _png(tmp_path / "b.png")
    assert _segment(png, tmp_path / "px", "--diameter", "none") == 0
    assert _segment(png, tmp_path / "px_um", "--diameter", "none", "--pixel-size", "0.3") == 0
    assert _record(tmp_path / "px_um")["working_scale"] == _record(tmp_path / "px")["working_scale"]
    assert pixel_size(_labels(tmp_path / "px_um")[0])[:2] == pytest.approx((0.3, 0.3), rel=1e-4)
    assert _segment(png, tmp_path / "mem", "--pixel-size", "0.3", kind="membrane") == 0
    assert pixel_size(_labels(tmp_path / "mem")[0])[:2] == pytest.approx((0.3, 0.3), rel=1e-4)


def test_pixel_size_alone_over_a_tiffs_own_calibration_says_which_wins(tiny_zoo, tmp_path, capsys):
    src = _imagej(tmp_path / "a.tif", 0.2)
    assert _segment(src, tmp_path / "over", "--pixel-size", "0.25") == 0
    err = " ".join(capsys.readouterr().err.split())
    words = ("--pixel-size 0.25 µm was used for the label images over a.tif's own calibration (0.2 µm per pixel)")
    assert words in err, err
    assert any(words in note for note in _record(tmp_path / "over")["notes"])
    assert pixel_size(_labels(tmp_path / "over")[0])[:2] == pytest.approx((0.25, 0.25), rel=1e-4)
    # the same size as the file's: nothing to say; the labels as the file's
    assert _segment(src, tmp_path / "same", "--pixel-size", "0.2") == 0
    assert "--pixel-size" not in capsys.readouterr().err
    assert pixel_size(_labels(tmp_path / "same")[0])[:2] == pytest.approx((0.2, 0.2), rel=1e-4)
    # a size no microscope has (a unit mistaken): noted, as for a µm diameter
    assert _segment(src, tmp_path / "coarse", "--pixel-size", "50") == 0
    assert "--pixel-size 50 is coarse for a microscope image" in " ".join(capsys.readouterr().err.split())


def test_pixel_size_still_checked_and_refused_alone_by_population(tiny_zoo, tmp_path, capsys):
    """A bad value is refused before any output; population writes no image to carry it: alone it stays refused."""
    png = _png(tmp_path / "b.png")
    for bad in ("0", "-1", "nan"):
        assert _segment(png, tmp_path / "bad", "--pixel-size", bad) == 2
        assert "--pixel-size must be a positive number" in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()
    out = tmp_path / "p.csv"
    assert main(["population", str(png), "--out", str(out), "--no-plot", "--pixel-size", "0.25"]) == 2
    assert "--pixel-size converts a --diameter given in micrometres" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("precision", ["int8", "bf16"])
@pytest.mark.parametrize("command", [["segment", "nuclei"], ["segment", "membrane"], ["population"]])
def test_no_fast_with_a_fast_precision_is_refused(tiny_zoo, tmp_path, capsys, command, precision):
    """--no-fast means fp32 (its help); with --precision int8 it ran int8 silently (bf16: bf16)."""
    png = _png(tmp_path / "b.png")
    out = tmp_path / ("p.csv" if command == ["population"] else "out")
    assert main([*command, str(png), "--out", str(out), "--no-fast", "--precision", precision]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:"), err
    words = " ".join(err.split())
    assert f"--no-fast runs the network in fp32, --precision {precision} in {precision}" in words, words
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def test_no_fast_alone_or_with_fp32_runs_fp32(tiny_zoo, tmp_path, capsys):
    png = _png(tmp_path / "b.png")
    for extra in (["--no-fast"], ["--no-fast", "--precision", "fp32"], ["--no-fast", "--precision", "auto"]):
        out = tmp_path / f"o{len(extra)}"
        assert _segment(png, out, *extra) == 0
        assert _record(out)["precision"] == "fp32"
    assert main(["population", str(png), "--out", str(tmp_path / "p.csv"), "--no-plot", "--no-fast",
                 "--precision", "fp32"]) == 0


def test_run_segmentation_refuses_the_contradiction_too(tiny_zoo, tmp_path):
    from devolens.cli.predict import run_segmentation
    from devolens.errors import DevolensError

    with pytest.raises(DevolensError, match="--no-fast runs the network in fp32"):
        run_segmentation("nuclei", _png(tmp_path / "b.png"), tmp_path / "out", model="nuclei", fast=False,
                         precision="bf16")
    assert not (tmp_path / "out").exists()


def test_segment_refuses_a_folder_of_the_other_kind(tiny_zoo, tmp_path, capsys):
    """segment membrane into a folder of segment nuclei's outputs replaced the nuclei's labels without a word."""
    import json

    from devolens.cli import main

    src = tmp_path / "a.png"
    _png(src)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(src), "--out", str(out)]) == 0
    assert json.loads((out / "segment.json").read_text())["kind"] == "nuclei"
    before = sorted(p.name for p in (out / "labels").iterdir())
    capsys.readouterr()
    assert main(["segment", "membrane", str(src), "--out", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--out holds the outputs of `devolens segment nuclei` (segment.json), which this run (membrane)" in err
    assert sorted(p.name for p in (out / "labels").iterdir()) == before
    assert main(["segment", "nuclei", str(src), "--out", str(out)]) == 0  # its own kind: replaced as before
