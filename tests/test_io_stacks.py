"""TIFF stacks (timelapses, z-stacks, hyperstacks) streamed as 2-D frames, and the CLI on them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError
from devolens.io.stacks import iter_stack_frames, stack_info


@pytest.fixture()
def hyper(tmp_path):
    rng = np.random.default_rng(0)
    arr = (rng.random((3, 4, 2, 20, 30)) * 4000).astype(np.uint16)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, arr, imagej=True, metadata={"axes": "TZCYX"})
    return path, arr


def test_hyperstack_layout_and_projection(hyper):
    path, arr = hyper
    info = stack_info(path)
    assert info.axes == "TZCYX" and (info.times, info.planes, info.channels) == (3, 4, 2)
    assert info.is_stack and info.frames("project") == 3 and info.frames("slices") == 12
    frames = list(iter_stack_frames(path, channel=1))
    assert len(frames) == 3
    for t in range(3):
        np.testing.assert_array_equal(frames[t], arr[t, :, 1].max(axis=0))
    slices = list(iter_stack_frames(path, channel=0, z="slices"))
    assert len(slices) == 12
    np.testing.assert_array_equal(slices[6], arr[1, 2, 0])  # time-major order


def test_channel_is_required_and_checked(hyper):
    path, _ = hyper
    with pytest.raises(DevolensError, match="2 channels"):
        next(iter_stack_frames(path))
    with pytest.raises(DevolensError, match="out of range"):
        next(iter_stack_frames(path, channel=2))
    with pytest.raises(DevolensError, match="z must be one of"):
        next(iter_stack_frames(path, channel=0, z="mean"))


@pytest.mark.parametrize("kind", ["plain", "zlib", "rgb", "rgb_planar", "ome"])
def test_other_layouts_stream_plane_by_plane(tmp_path, kind):
    rng = np.random.default_rng(1)
    path = tmp_path / f"{kind}.tif"
    if kind == "rgb":
        arr = (rng.random((4, 16, 24, 3)) * 255).astype(np.uint8)
        tifffile.imwrite(path, arr, photometric="rgb")
    elif kind == "rgb_planar":  # samples stored as planes (axes ...SYX): still H x W x 3 frames
        arr = (rng.random((4, 16, 24, 3)) * 255).astype(np.uint8)
        tifffile.imwrite(path, np.moveaxis(arr, 3, 1), photometric="rgb", planarconfig="separate")
    elif kind == "ome":
        arr = (rng.random((4, 16, 24)) * 4000).astype(np.uint16)
        tifffile.imwrite(path, arr, ome=True, metadata={"axes": "TYX"})
    else:
        arr = (rng.random((4, 16, 24)) * 4000).astype(np.uint16)
        # minisblack: without it tifffile tags a 3- or 4-plane array as one planar RGB(A) image
        tifffile.imwrite(path, arr, photometric="minisblack", compression="zlib" if kind == "zlib" else None)
    frames = list(iter_stack_frames(path))
    assert len(frames) == 4 and stack_info(path).frames() == 4
    for t in range(4):
        np.testing.assert_array_equal(frames[t], arr[t])


def test_pages_without_axis_labels_get_a_note(tiny_zoo, tmp_path, capsys):
    from devolens.cli import main
    from devolens.io.stacks import unlabelled_pages_note

    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((6, 32, 48), np.uint8))  # pages only: tifffile's axes QYX
    labelled = tmp_path / "zstack.tif"
    tifffile.imwrite(labelled, np.zeros((6, 32, 48), np.uint8), imagej=True, metadata={"axes": "ZYX"})
    single = tmp_path / "one.tif"
    tifffile.imwrite(single, np.zeros((32, 48), np.uint8))
    assert "6 pages of plain.tif carry no axis labels" in unlabelled_pages_note(plain)
    assert unlabelled_pages_note(labelled) is None and unlabelled_pages_note(single) is None
    assert unlabelled_pages_note(tmp_path / "nope.tif") is None
    assert main(["segment", "nuclei", str(plain), "--out", str(tmp_path / "seg")]) == 0
    assert "carry no axis labels" in " ".join(capsys.readouterr().err.split())
    assert main(["segment", "nuclei", str(labelled), "--out", str(tmp_path / "seg2")]) == 0
    assert "carry no axis labels" not in capsys.readouterr().err


def test_three_or_four_planes_stored_as_rgb_get_a_note(tiny_zoo, tmp_path, capsys):  # noqa: F811
    """tifffile's default for a (3|4, H, W) array is one planar RGB(A) image: read as one colour image, with a note
    saying so and how to save frames instead; not for frames saved as such, an RGB image saved samples last, or
    ImageJ/OME axes."""
    from devolens.cli import main
    from devolens.io.stacks import planar_rgb_note

    frames = np.zeros((4, 32, 48), np.uint8)
    for n in (3, 4):
        tifffile.imwrite(tmp_path / f"t{n}.tif", frames[:n])
    tifffile.imwrite(tmp_path / "mb.tif", frames[:3], photometric="minisblack")
    tifffile.imwrite(tmp_path / "yxc.tif", np.zeros((32, 48, 3), np.uint8))
    tifffile.imwrite(tmp_path / "ij.tif", frames[:3], imagej=True, metadata={"axes": "ZYX"})
    tifffile.imwrite(tmp_path / "ome.tif", frames[:3], ome=True, metadata={"axes": "CYX"})
    for n in (3, 4):
        assert planar_rgb_note(tmp_path / f"t{n}.tif") == (
            f"note: t{n}.tif was read as one colour image ({n} samples); if these are {n} frames or z-planes, save "
            f"them with photometric='minisblack' (tifffile.imwrite's default stores {n} planes as one RGB image)")
    assert [planar_rgb_note(tmp_path / f"{name}.tif") for name in ("mb", "yxc", "ij", "ome", "nope")] == [None] * 5
    capsys.readouterr()
    assert main(["segment", "nuclei", str(tmp_path / "t3.tif"), "--out", str(tmp_path / "seg")]) == 0
    assert "t3.tif was read as one colour image (3 samples)" in " ".join(capsys.readouterr().err.split())
    assert main(["segment", "nuclei", str(tmp_path / "mb.tif"), "--out", str(tmp_path / "seg2")]) == 0
    assert "one colour image" not in capsys.readouterr().err

def test_single_images_are_not_stacks(tmp_path):
    tifffile.imwrite(tmp_path / "grey.tif", np.zeros((16, 24), np.uint16))
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((16, 24, 3), np.uint8), photometric="rgb")
    tifffile.imwrite(tmp_path / "planar.tif", np.zeros((3, 16, 24), np.uint8), photometric="rgb",
                     planarconfig="separate")
    assert not stack_info(tmp_path / "grey.tif").is_stack
    assert not stack_info(tmp_path / "rgb.tif").is_stack
    assert not stack_info(tmp_path / "planar.tif").is_stack  # one RGB image, not 3 frames


def test_planar_rgb_image_reads_with_samples_last(tmp_path):
    from devolens.io.images import read_image

    rgb = (np.random.default_rng(2).random((16, 24, 3)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(rgb, 2, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif"), rgb)


def test_grey_png_with_alpha_reads_as_grey(tmp_path):
    from PIL import Image

    from devolens.io.images import read_image

    grey = (np.random.default_rng(3).random((16, 24)) * 255).astype(np.uint8)
    alpha = np.full_like(grey, 200)
    Image.fromarray(np.dstack([grey, alpha]), mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), grey)


def test_unreadable_tiff_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(DevolensError):
        stack_info(bad)


def test_segment_and_population_on_a_hyperstack(tiny_zoo, tmp_path, capsys):
    from devolens.cli import main

    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:64, :96]
    frames = []
    for t in range(3):
        img = np.zeros((64, 96), np.float32)
        for _ in range(4 + 2 * t):
            cy, cx = rng.uniform(8, 56), rng.uniform(8, 88)
            img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20.0)
        frames.append(np.clip(img, 0, 1) * 3000)
    z = np.stack([np.stack(frames), np.stack(frames) * 0.5], axis=1)  # T, Z
    hyper = np.stack([z, z[..., ::-1]], axis=2).astype(np.uint16)  # T, Z, C
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, hyper, imagej=True, metadata={"axes": "TZCYX"})

    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(path), "--out", str(out)]) == 2  # two channels: must choose
    assert "--channel" in capsys.readouterr().err and not out.exists()
    assert main(["segment", "nuclei", str(path), "--out", str(out), "--channel", "0"]) == 0
    labels = sorted((out / "labels").glob("*_labels.tif"))
    assert [p.name for p in labels] == [f"movie_f{i:05d}_labels.tif" for i in range(3)]
    assert tifffile.imread(labels[0]).shape == (64, 96)
    assert list(pd.read_csv(out / "counts.csv")["frame"]) == [0, 1, 2]
    assert (out / "overlay.mp4").stat().st_size > 0
    sl = tmp_path / "slices"
    assert main(["segment", "nuclei", str(path), "--out", str(sl), "--channel", "1", "--stack-z", "slices"]) == 0
    assert len(list((sl / "labels").glob("*_labels.tif"))) == 6
    pops = tmp_path / "pops.csv"
    assert main(["population", str(path), "--out", str(pops), "--channel", "0"]) == 0
    assert len(pd.read_csv(pops)) == 3


def test_curate_a_tiff_timelapse_then_skip_flagged(tiny_zoo, tmp_path):
    from devolens.cli import main

    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[:64, :96]
    frames = []
    for t in range(12):
        img = np.zeros((64, 96), np.float32)
        for _ in range(5 + t):
            cy, cx = rng.uniform(8, 56), rng.uniform(8, 88)
            img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20.0)
        frames.append(np.clip(img, 0, 1) * 3000 + rng.normal(50, 5, (64, 96)))
    stack = np.stack(frames).astype(np.uint16)
    stack[5] = 0  # a black frame
    stack[8] = stack[7]  # a repeated frame
    path = tmp_path / "tl.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TYX"})
    report = tmp_path / "report.csv"
    assert main(["curate", "frames", str(path), "--out", str(report)]) == 0
    rep = pd.read_csv(report, keep_default_na=False)
    assert len(rep) == 12
    assert list(rep.loc[rep["flagged"].astype(str) == "True", "frame"]) == [5, 8]
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(path), "--out", str(out), "--skip-flagged", str(report)]) == 0
    assert list(pd.read_csv(out / "counts.csv")["frame"]) == [0, 1, 2, 3, 4, 6, 7, 9, 10, 11]
    # --skip-flagged auto: the same frames skipped, the report made on the fly written beside the results
    auto = tmp_path / "seg_auto"
    assert main(["segment", "nuclei", str(path), "--out", str(auto), "--skip-flagged", "auto", "--no-overlay"]) == 0
    assert list(pd.read_csv(auto / "counts.csv")["frame"]) == [0, 1, 2, 3, 4, 6, 7, 9, 10, 11]
    pd.testing.assert_frame_equal(pd.read_csv(auto / "curation.csv", keep_default_na=False), rep)
    pd.testing.assert_frame_equal(pd.read_csv(auto / "objects.csv"), pd.read_csv(out / "objects.csv"))
    pops = tmp_path / "pops.csv"
    assert main(["population", str(path), "--out", str(pops), "--skip-flagged", "auto", "--no-plot"]) == 0
    assert list(pd.read_csv(pops)["frame"]) == [0, 1, 2, 3, 4, 6, 7, 9, 10, 11]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "pops.curation.csv", keep_default_na=False), rep)


def _plain_zstack(path, planes=5, metadata="shaped"):
    """A z-stack saved as plain pages (no axis labels); plane 2 holds a bright spot, plane 3 another."""
    arr = np.full((planes, 24, 32), 10, np.uint16)
    arr[2, 4:8, 4:8] = 900
    arr[3, 14:20, 20:26] = 700
    kwargs = {} if metadata == "shaped" else {"metadata": None}
    tifffile.imwrite(path, arr, photometric="minisblack", **kwargs)
    return arr


@pytest.mark.parametrize("metadata", ["shaped", "none"])  # tifffile's axes QYX and IYX
def test_pages_z_reads_plain_pages_as_one_z_stack(tmp_path, metadata):
    from devolens.io.stacks import open_stack

    path = tmp_path / "plain.tif"
    arr = _plain_zstack(path, metadata=metadata)
    assert stack_info(path).frames() == 5  # the default: pages are time points
    info = stack_info(path, pages="z")
    assert info.axes == "ZYX" and info.planes == 5 and info.frames("project") == 1 and info.frames("slices") == 5
    (projection,) = list(iter_stack_frames(path, pages="z"))
    np.testing.assert_array_equal(projection, arr.max(axis=0))
    frames, n = open_stack(path, z="slices", pages="z")
    assert n == 5 and len(list(frames)) == 5


def test_pages_z_keeps_axes_the_file_labels_and_refuses_ambiguous_pages(tmp_path, hyper):
    path, _ = hyper
    assert stack_info(path, pages="z").axes == "TZCYX"  # labelled axes win
    both = tmp_path / "two_unlabelled.tif"
    tifffile.imwrite(both, np.zeros((2, 5, 8, 8), np.uint8), photometric="minisblack")  # axes QQYX
    assert stack_info(both).axes == "QQYX" and stack_info(both).frames() == 10
    with pytest.raises(DevolensError, match="2 unlabelled axes"):
        stack_info(both, pages="z")
    with pytest.raises(DevolensError, match="pages must be one of time, z"):
        stack_info(path, pages="planes")


def test_pages_z_in_a_folder_gives_one_projection_per_file(tmp_path):
    from devolens.io.frames import iter_path_frames
    from devolens.io.stacks import unlabelled_pages_note

    arrays = [_plain_zstack(tmp_path / f"t{t}.tif") for t in (1, 2)]
    frames, names, total = iter_path_frames(tmp_path)
    assert total == 10 and names[0] == "t1_0000.tif"
    assert "pages of t1.tif (and any other TIFF in the folder like it) carry no axis labels" in " ".join(
        unlabelled_pages_note(tmp_path).split())
    assert unlabelled_pages_note(tmp_path, pages="z") is None
    frames, names, total = iter_path_frames(tmp_path, pages="z")
    assert names == ["t1.tif", "t2.tif"] and total == 2
    for got, arr in zip(frames, arrays):
        np.testing.assert_array_equal(got, arr.max(axis=0))


def test_cli_pages_z_segments_one_projection(tiny_zoo, tmp_path, capsys):
    from devolens.cli import main

    plain = tmp_path / "plain.tif"
    _plain_zstack(plain)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(plain), "--out", str(out), "--pages", "z", "--diameter", "none"]) == 0
    assert len((out / "counts.csv").read_text().splitlines()) == 2  # header + one projected frame
    assert "carry no axis labels" not in capsys.readouterr().err
    assert main(["segment", "nuclei", str(plain), "--out", str(tmp_path / "seg2"), "--diameter", "none"]) == 0
    assert len((tmp_path / "seg2" / "counts.csv").read_text().splitlines()) == 6  # five time points
    assert "add --pages z" in " ".join(capsys.readouterr().err.split())
    pops = tmp_path / "pops.csv"
    assert main(["population", str(plain), "--out", str(pops), "--pages", "z", "--no-plot", "--diameter", "none"]) == 0
    assert len(pd.read_csv(pops)) == 1
    report = tmp_path / "report.csv"
    assert main(["curate", "frames", str(plain), "--out", str(report), "--pages", "z"]) == 0
    assert len(pd.read_csv(report)) == 1
    assert main(["segment", "nuclei", str(tmp_path / "report.csv"), "--out", str(tmp_path / "seg3"),
                 "--pages", "sideways"]) == 2
    assert "(--pages) must be one of time, z" in capsys.readouterr().err
    assert not (tmp_path / "seg3").exists()


def test_a_timelapse_saved_as_z_gets_one_note_when_projected(tiny_zoo, tmp_path, capsys):  # noqa: F811
    """20 time points saved with axes ZYX (a Fiji mix-up) are projected into 1 frame: segment, population and
    curate frames say so, once, with the ways out; --stack-z slices, a stack with a T axis, a plain multi-page
    TIFF and --pages z (the user's own Z) get no such note."""
    from devolens.cli import main
    from devolens.io.stacks import z_projection_note

    rng = np.random.default_rng(2)
    arr = (rng.random((20, 32, 48)) * 255).astype(np.uint8)
    zyx = tmp_path / "lapse.tif"
    tifffile.imwrite(zyx, arr, imagej=True, metadata={"axes": "ZYX"})
    tzyx = tmp_path / "tz.tif"
    tifffile.imwrite(tzyx, arr.reshape(4, 5, 32, 48), imagej=True, metadata={"axes": "TZYX"})
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, arr)  # no labels: QYX

    note = z_projection_note(zyx)
    assert "20 z-planes of lapse.tif were projected into 1 frame (--stack-z project)" in note
    assert "--stack-z slices" in note and "T axis" in note
    assert z_projection_note(zyx, "slices") is None and z_projection_note(tzyx) is None
    assert z_projection_note(plain) is None and z_projection_note(tmp_path / "nope.tif") is None
    assert z_projection_note(tmp_path) is None
    # a microscope's z-stack records its z step: segmented as one stack every day, it gets no note (review)
    calibrated = tmp_path / "zstack.tif"
    tifffile.imwrite(calibrated, arr, imagej=True, metadata={"axes": "ZYX", "spacing": 0.5, "unit": "um"})
    ome = tmp_path / "zstack.ome.tif"
    tifffile.imwrite(ome, arr, metadata={"axes": "ZYX", "PhysicalSizeZ": 0.5})
    assert z_projection_note(calibrated) is None and z_projection_note(ome) is None

    def err() -> str:
        return " ".join(capsys.readouterr().err.split())

    for cmd in (["segment", "nuclei", str(zyx), "--out", str(tmp_path / "seg"), "--no-overlay"],
                ["population", str(zyx), "--out", str(tmp_path / "p.csv")],
                ["curate", "frames", str(zyx), "--out", str(tmp_path / "c.csv")]):
        capsys.readouterr()
        assert main(cmd) == 0, cmd
        assert err().count("z-planes of lapse.tif were projected into 1 frame") == 1, cmd
    assert main(["curate", "frames", str(zyx), "--out", str(tmp_path / "c2.csv"), "--stack-z", "slices"]) == 0
    assert "z-planes" not in err()
    assert main(["curate", "frames", str(plain), "--out", str(tmp_path / "c3.csv"), "--pages", "z"]) == 0
    assert "z-planes" not in err()
