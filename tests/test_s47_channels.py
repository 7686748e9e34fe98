"""s47 m8: the membrane model's colour channel, the error prefix through a pipe, inch TIFF calibrations and
segment.json's no_signal of noise-only frames."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _membranes(h=256, w=256, step=32):
    m = np.zeros((h, w), np.uint8)
    m[::step, :] = 220
    m[:, ::step] = 220
    m[1::step, :] = 220
    m[:, 1::step] = 220
    return m


def _nuclei(h=256, w=256):
    yy, xx = np.mgrid[:h, :w]
    n = np.zeros((h, w), np.uint8)
    for cy in range(20, h, 40):
        for cx in range(20, w, 40):
            n[(yy - cy) ** 2 + (xx - cx) ** 2 < 10 ** 2] = 230
    return n


def _membrane_colour(model, kind, color, path):
    """segment's choice on the first frame of ``path`` (read once, by its source)."""
    from devolens.cli.predict import _membrane_colour, _Source

    source = _Source(path, first=True)
    try:
        return _membrane_colour(model, kind, color, source)
    finally:
        source.close()


def test_membrane_reads_the_channel_of_lines_over_one_of_nuclei():
    from devolens.predict.notes import membrane_channel
    from devolens.predict.postprocess import auto_channel

    m, n, z = _membranes(), _nuclei(), np.zeros((256, 256), np.uint8)
    rgb = np.dstack([m, n, z])
    assert auto_channel(rgb) == "green"  # the rule alone reads the nuclei
    assert membrane_channel(rgb) == ("red", "green")
    assert membrane_channel(np.dstack([m, z, n])) == ("red", "blue")


def test_membrane_channel_leaves_grey_and_one_channel_alone():
    from devolens.predict.notes import membrane_channel

    m, n, z = _membranes(), _nuclei(), np.zeros((256, 256), np.uint8)
    assert membrane_channel(np.dstack([m, m, m])) is None  # grey stored as RGB
    assert membrane_channel(np.dstack([z, m, z])) is None  # membranes in green only
    assert membrane_channel(np.dstack([n, m, z])) == ("green", "red")  # nuclei in red, membranes in green
    assert membrane_channel(m) is None


def test_segment_nuclei_choice_unchanged(tmp_path):
    import imageio.v3 as iio

    path = tmp_path / "two.png"
    iio.imwrite(path, np.dstack([_membranes(), _nuclei(), np.zeros((256, 256), np.uint8)]))
    assert _membrane_colour("nuclei", "nuclei", None, path) is None
    assert _membrane_colour("membrane", "membrane", "green", path) is None  # --color given
    assert _membrane_colour("membrane", "membrane", None, path) == ("red", "green", "")


def test_error_prefix_lowercase_through_one_pipe(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, np.zeros((2, 2, 64, 64), np.uint16), imagej=True, metadata={"axes": "TCYX"})
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "devolens", "segment", "membrane", str(path), "--out",
                           str(tmp_path / "s")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                          cwd=tmp_path)
    text = done.stdout.decode()
    assert done.returncode == 2
    assert text.startswith("error: ") and text.count("\n") == 1, text
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("dpi, expected", [(12700, (2.0, 2.0, "µm")), (25400, (1.0, 1.0, "µm")), (72, None),
                                           (96, None), (300, None), (1200, None), (4800, None)])
def test_inch_resolution(tmp_path, dpi, expected):
    tifffile = pytest.importorskip("tifffile")
    from devolens.io.stacks import pixel_size

    path = tmp_path / f"inch{dpi}.tif"
    tifffile.imwrite(path, np.zeros((32, 32), np.uint8), resolution=(dpi, dpi), resolutionunit="INCH")
    assert pixel_size(path) == expected


def test_no_signal_record_lists_noise_only_frames():
    from devolens.cli.predict import _no_signal_record

    class Source:
        names = ["a.png", "b.png", "c.png"]

        def frame_id(self, p):
            return self.names[p][:-4]

    assert _no_signal_record(["c"], ["b"], Source()) == ["b", "c"]
    assert _no_signal_record(["c"], [], Source()) == ["c"]
    assert _no_signal_record([], ["c", "c"], Source()) == ["c"]


def test_membrane_folder_keeps_the_rule_image_by_image(tmp_path):
    """A folder of a composite (membranes red, nuclei green) beside green-only membrane exports: no channel is chosen
    once from its first image for all (the exports' red is empty: they read 0 cells); each image keeps the rule's."""
    import imageio.v3 as iio

    from devolens.cli import main
    m, n, z = _membranes(), _nuclei(), np.zeros((256, 256), np.uint8)
    folder = tmp_path / "mixed"
    folder.mkdir()
    iio.imwrite(folder / "a_comp.png", np.dstack([m, n, z]))
    iio.imwrite(folder / "b_green.png", np.dstack([z, m, z]))
    assert _membrane_colour("membrane", "membrane", None, folder) is None
    assert _membrane_colour("membrane", "membrane", None, folder / "a_comp.png") == ("red", "green", "")
    assert main(["segment", "membrane", str(folder), "--out", str(tmp_path / "o")]) == 0
    counts = (tmp_path / "o" / "counts.csv").read_text().splitlines()
    assert any(line.startswith("b_green,") and not line.split(",")[1] == "0" for line in counts), counts
