"""A folder with one pair of files sharing a stem: only that pair's results take whole file names; the other
files keep their stems, so their rows still join on the stem (README: "join a folder's report to the counts on
the stem of `file`")."""
from pathlib import Path

from devolens.io.frames import unique_stems


def test_only_the_files_sharing_a_stem_take_whole_names():
    assert unique_stems(["A.png", "a.tif", "b.png", "x.ome.tif"]) == ["A.png", "a.tif", "b", "x"]
    assert unique_stems([Path("d") / "y.ome.tif", "y.png", "x.ome.tif"]) == ["y.ome.tif", "y.png", "x"]


def test_a_whole_name_meeting_another_stem_names_every_file_whole():
    # a.png's whole name is a.png.tif's stem: whole names for all, none of them shared
    names = ["a.png", "a.tif", "a.png.tif", "c.png"]
    ids = unique_stems(names)
    assert ids == names
    assert len({i.casefold() for i in ids}) == len(ids)


def test_segment_folder_keeps_stems_of_files_sharing_nothing(tmp_path):
    import numpy as np
    import imageio.v3 as iio

    from devolens.cli import main

    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("A.png", "a.tif", "b.png"):
        iio.imwrite(folder / name, (rng.random((48, 64)) * 40).astype(np.uint8))
    assert main(["-q", "segment", "nuclei", str(folder), "--out", str(tmp_path / "seg"), "--no-overlay"]) == 0
    labels = sorted(p.name for p in (tmp_path / "seg" / "labels").iterdir())
    assert labels == ["A.png_labels.tif", "a.tif_labels.tif", "b_labels.tif"]
    frames = (tmp_path / "seg" / "counts.csv").read_text().splitlines()[1:]
    assert sorted(line.split(",")[0] for line in frames) == ["A.png", "a.tif", "b"]
