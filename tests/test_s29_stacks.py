"""TIFF stacks as 4D-confocal users save them (s29 walkthrough): multi-file OME-TIFF sets, one timelapse per
stage position, extra or unlabelled axes, channel-last files, the wrong channel of a z-stack, and what a run
records of how it read a stack."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pytest
import tifffile

from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.errors import DevolensError


def err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def ome_set(folder, stem="emb_MMStack_Pos0", T=2, Z=3, C=2, Y=32, X=48, split=8, full_xml=False, seed=0):
    """A multi-file OME-TIFF set as Micro-Manager writes a long acquisition: planes 0..split-1 in STEM.ome.tif
    (with the OME-XML), the others in STEM_1.ome.tif (BinaryOnly, or the whole OME-XML too: ``full_xml``)."""
    rng = np.random.default_rng(seed)
    a = (rng.random((T, Z, C, Y, X)) * 1000).astype(np.uint16)
    planes = a.reshape(-1, Y, X)
    names = [f"{stem}.ome.tif", f"{stem}_1.ome.tif"]
    uuids = [f"urn:uuid:{uuid.UUID(int=int(rng.integers(1 << 62)))}" for _ in names]
    tds = []
    for i in range(T * Z * C):
        f = int(i >= split)
        t, rem = divmod(i, Z * C)
        z, c = divmod(rem, C)
        tds.append(f'<TiffData FirstC="{c}" FirstZ="{z}" FirstT="{t}" IFD="{i - f * split}" PlaneCount="1">'
                   f'<UUID FileName="{names[f]}">{uuids[f]}</UUID></TiffData>')
    ns = 'xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"'

    def xml(root):
        return (f'<?xml version="1.0" encoding="UTF-8"?><OME {ns} UUID="{root}"><Image ID="Image:0" Name="{stem}">'
                f'<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="{X}" SizeY="{Y}" SizeZ="{Z}" '
                f'SizeC="{C}" SizeT="{T}" TimeIncrement="2" TimeIncrementUnit="min">'
                '<Channel ID="Channel:0:0" Name="GFP" SamplesPerPixel="1"/>'
                '<Channel ID="Channel:0:1" Name="mCherry" SamplesPerPixel="1"/>' + "".join(tds)
                + "</Pixels></Image></OME>")

    binary = (f'<?xml version="1.0" encoding="UTF-8"?><OME {ns} UUID="{uuids[1]}">'
              f'<BinaryOnly MetadataFile="{names[0]}" UUID="{uuids[0]}"/></OME>')
    for f, (lo, hi, desc) in enumerate([(0, split, xml(uuids[0])),
                                        (split, T * Z * C, xml(uuids[1]) if full_xml else binary)]):
        with tifffile.TiffWriter(folder / names[f]) as w:
            for k, p in enumerate(planes[lo:hi]):
                w.write(p, description=desc if k == 0 else None, metadata=None, contiguous=False)
    return [folder / n for n in names], a


# ---------------------------------------------------------------------------- 1. multi-file OME sets
@pytest.mark.parametrize("full_xml", [False, True])
def test_a_folder_reads_a_multi_file_ome_set_once(tmp_path, full_xml):
    """The first file's OME series spans both files; the second is not read again as unlabelled pages (--channel
    not applied to it), and the notes name it."""
    from devolens.io.frames import folder_continuations, folder_files, iter_path_frames
    from devolens.io.stacks import other_series_note

    (first, second), a = ome_set(tmp_path, full_xml=full_xml)
    frames, names, total = iter_path_frames(tmp_path, channel=1)
    frames = list(frames)
    assert total == len(frames) == 2 and names == ["emb_MMStack_Pos0_0000.ome.tif", "emb_MMStack_Pos0_0001.ome.tif"]
    for t in range(2):
        np.testing.assert_array_equal(frames[t], a[t, :, 1].max(axis=0))
    assert folder_files(tmp_path) == [first]
    assert folder_continuations(tmp_path) == {second: first.name}
    note = other_series_note(tmp_path)
    assert "emb_MMStack_Pos0_1.ome.tif continues the multi-file OME-TIFF set of emb_MMStack_Pos0.ome.tif" in note


@pytest.mark.parametrize("full_xml", [False, True])
def test_a_continuation_file_alone_points_to_the_first_file(tmp_path, full_xml):
    from devolens.io.frames import iter_path_frames
    from devolens.io.stacks import stack_info

    (_, second), _ = ome_set(tmp_path, full_xml=full_xml)
    with pytest.raises(DevolensError, match="continues the multi-file OME-TIFF set of emb_MMStack_Pos0.ome.tif.*"
                                            "give emb_MMStack_Pos0.ome.tif"):
        stack_info(second)
    with pytest.raises(DevolensError, match="give emb_MMStack_Pos0.ome.tif"):
        iter_path_frames(second)
    # in a folder without its first file: refused too, not read as an image or pages
    alone = tmp_path / "alone"
    alone.mkdir()
    second.rename(alone / second.name)
    (alone / "other.tif").write_bytes((tmp_path / "emb_MMStack_Pos0.ome.tif").read_bytes())
    with pytest.raises(DevolensError, match="give emb_MMStack_Pos0.ome.tif"):
        iter_path_frames(alone)


def test_the_first_file_of_a_set_without_the_others_is_refused(tmp_path):
    """tifffile zeroes the planes of the files it cannot find: frames of zeros, no word."""
    from devolens.io.frames import iter_path_frames

    (first, second), _ = ome_set(tmp_path)
    second.unlink()
    with pytest.raises(DevolensError, match="4 of its 12 planes in emb_MMStack_Pos0_1.ome.tif, which cannot be read"):
        iter_path_frames(first, channel=0)


def test_segment_on_a_folder_holding_a_set_notes_the_file_left_out(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    data = tmp_path / "mm"
    data.mkdir()
    ome_set(data)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(data), "--channel", "0", "--out", str(out), "--no-overlay",
                 "--diameter", "none"]) == 0
    text = err(capsys)
    assert "2 frames" in text and "emb_MMStack_Pos0_1.ome.tif continues the multi-file OME-TIFF set" in text
    assert "channel 0 (GFP) of 2" in text
    assert len(pd.read_csv(out / "counts.csv")) == 2
    assert main(["segment", "nuclei", str(data / "emb_MMStack_Pos0_1.ome.tif"), "--out", str(tmp_path / "s2")]) == 2
    assert "give emb_MMStack_Pos0.ome.tif" in err(capsys) and not (tmp_path / "s2").exists()


# ---------------------------------------------------------------------------- 2. one timelapse per position
def _positions(folder, n=2, T=3):
    rng = np.random.default_rng(3)
    for p in range(n):
        arr = (rng.random((T, 2, 32, 48)) * 1000).astype(np.uint16)
        tifffile.imwrite(folder / f"emb_MMStack_Pos{p}.ome.tif", arr, ome=True, metadata={"axes": "TZYX"})


def test_population_refuses_a_folder_of_several_timelapses(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    data = tmp_path / "pos"
    data.mkdir()
    _positions(data)
    out = tmp_path / "p.csv"
    assert main(["population", str(data), "--out", str(out)]) == 2
    text = err(capsys)
    assert "this folder holds 2 timelapses (emb_MMStack_Pos0.ome.tif: 3 time points" in text
    assert "give each file on its own" in text and not out.exists()
    assert main(["population", str(data / "emb_MMStack_Pos1.ome.tif"), "--out", str(out), "--no-plot"]) == 0


def test_segment_notes_that_several_timelapses_run_as_one_sequence(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    data = tmp_path / "pos"
    data.mkdir()
    _positions(data)
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(data), "--out", str(out), "--no-overlay", "--diameter", "none"]) == 0
    text = err(capsys)
    assert "this folder holds 2 timelapses" in text and "one sequence" in text and "emb_MMStack_Pos0_0000" in text
    assert list(pd.read_csv(out / "counts.csv")["frame"])[3:5] == ["emb_MMStack_Pos1_0000", "emb_MMStack_Pos1_0001"]
    assert any("one sequence" in n for n in json.loads((out / "segment.json").read_text())["notes"])
    # one timelapse, or a folder of z-stacks (one per time point): no such note
    (data / "emb_MMStack_Pos1.ome.tif").unlink()
    assert main(["segment", "nuclei", str(data), "--out", str(out), "--no-overlay", "--diameter", "none"]) == 0
    assert "timelapses" not in err(capsys)


# ---------------------------------------------------------------------------- 3. population --stack-z slices
def test_population_refuses_stack_z_slices(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    path = tmp_path / "zs.tif"
    tifffile.imwrite(path, np.zeros((2, 3, 32, 48), np.uint8), imagej=True, metadata={"axes": "TZYX"})
    out = tmp_path / "p.csv"
    assert main(["population", str(path), "--out", str(out), "--stack-z", "slices"]) == 2
    assert "--stack-z slices: population counts" in err(capsys) and not out.exists()
    assert main(["population", "--help"]) == 0
    assert "project|slices" not in capsys.readouterr().out


# ---------------------------------------------------------------------------- 4. the wrong channel of a z-stack
def _two_channel_zstack(path, Z=12):
    """Channel 0: nuclei (blobs) in the middle planes only, the top ones empty; channel 1: membranes (a grid of
    lines) shifted plane by plane, whose projection is a dense web."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:256, :256]
    arr = np.zeros((Z, 2, 256, 256), np.float32)
    for z in range(Z):
        if 5 <= z <= 9:
            for _ in range(25):
                cy, cx = rng.uniform(14, 242, 2)
                arr[z, 0] = np.maximum(arr[z, 0], ((yy - cy) ** 2 + (xx - cx) ** 2 < 14 ** 2) * rng.uniform(0.6, 1))
        for k in range(20 + 5 * z, 256, 40):
            arr[z, 1, k:k + 3, :] = 1.0
        for k in range(20 + (15 * z) % 40, 256, 40):
            arr[z, 1, :, k:k + 3] = 1.0
    arr = (arr * 200 + rng.normal(10, 3, arr.shape)).clip(0, 255).astype(np.uint8)
    tifffile.imwrite(path, arr, ome=True, metadata={"axes": "ZCYX", "PhysicalSizeZ": 1.0,
                                                     "Channel": {"Name": ["H2B-GFP", "PH-mCherry"]}})
    return path


def test_the_shape_of_a_zstack_is_judged_on_its_busiest_single_planes(tmp_path):
    """Its first frames are the sparse top planes (slices) or a projection overlaying many planes: neither tells
    nuclei from membranes; single planes from the middle of the stack do."""
    import itertools
    from types import SimpleNamespace

    from devolens.cli.predict import _shape_frames, _shape_note
    from devolens.io.stacks import iter_stack_frames

    path = _two_channel_zstack(tmp_path / "zc.ome.tif")
    net = SimpleNamespace(channel="auto", percentiles=(1.0, 99.8), flatten=0.0, outliers=0.0)
    pred = SimpleNamespace(network=net, card_scale=0.5, working_scale=lambda: 0.5, auto_each=False, diameter=None,
                           last_estimate=None)
    for kind, c, z, noted in (("membrane", 0, "slices", "looks like nuclei"),
                              ("nuclei", 1, "project", "looks like membranes"),
                              ("nuclei", 0, "project", None), ("membrane", 1, "slices", None)):
        first = list(itertools.islice(iter_stack_frames(path, z=z, channel=c), 5))
        assert _shape_note(first, kind, pred) is None  # the frames segment judged before
        note = _shape_note(_shape_frames(first, path, c, "time"), kind, pred, channels=2)
        assert (note is None) if noted is None else (noted in note and "--channel picks" in note), (kind, c)
    # a 2-D input: its first frames, as before
    assert _shape_frames(first, None, None, "time") is first


def test_segment_says_the_wrong_channel_of_a_zstack_and_names_the_channel(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    path = _two_channel_zstack(tmp_path / "zc.ome.tif")
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(path), "--channel", "1", "--out", str(out), "--no-overlay",
                 "--diameter", "none"]) == 0
    text = err(capsys)
    assert "looks like membranes" in text and "--channel picks the nuclei's channel" in text
    assert "read zc.ome.tif: axes ZCYX, shape (12, 2, 256, 256): max projection of 12 z-planes; channel 1 " \
           "(PH-mCherry) of 2" in text
    record = json.loads((out / "segment.json").read_text())["stack"]
    assert record["channel_name"] == "PH-mCherry" and record["axes"] == "ZCYX" and record["z"] == "project"
    assert main(["segment", "membrane", str(path), "--channel", "0", "--out", str(tmp_path / "m"), "--no-overlay",
                 "--diameter", "none"]) == 0
    assert "looks like nuclei" in err(capsys)


# ---------------------------------------------------------------------------- 5-7. layouts refused with advice
def test_extra_axes_are_refused_with_how_to_split(tmp_path):
    from devolens.io.frames import iter_path_frames

    path = tmp_path / "ptz.tif"
    tifffile.imwrite(path, np.zeros((2, 3, 4, 2, 16, 24), np.uint16), metadata={"axes": "PTZCYX"})
    with pytest.raises(DevolensError, match=r"axes PTZCYX .*not P \(phase, 2\).*one file per index of P.*"
                                            r"array\[i\], metadata=\{'axes': 'TZCYX'\}"):
        iter_path_frames(path, channel=0)
    middle = tmp_path / "tpz.tif"
    tifffile.imwrite(middle, np.zeros((3, 2, 4, 16, 24), np.uint16), metadata={"axes": "TPZYX"})
    with pytest.raises(DevolensError, match=r"array\[:, i\], metadata=\{'axes': 'TZYX'\}"):
        iter_path_frames(middle)
    one = tmp_path / "p1.tif"  # an extra axis of length 1 is no axis
    tifffile.imwrite(one, np.zeros((1, 3, 4, 2, 16, 24), np.uint16), metadata={"axes": "PTZCYX"})
    assert iter_path_frames(one, channel=0)[2] == 3


def test_several_unlabelled_axes_are_refused_without_pages_z(tmp_path):
    from devolens.io.frames import iter_path_frames

    path = tmp_path / "plain5d.tif"
    tifffile.imwrite(path, np.zeros((3, 4, 2, 16, 24), np.uint16))  # no axes: QQQYX
    for pages in ("time", "z"):
        with pytest.raises(DevolensError, match=r"3 unlabelled axes, of sizes \(3, 4, 2\)") as exc:
            iter_path_frames(path, pages=pages)
        assert "imagej=True, metadata={'axes': 'TZCYX'}" in str(exc.value) and "Re-order Hyperstacks" in str(exc.value)
        assert "add --pages z" not in str(exc.value)
    one = tmp_path / "pages.tif"  # one unlabelled axis: pages, read as time points (or z) as before
    tifffile.imwrite(one, np.zeros((5, 16, 24), np.uint16))
    assert iter_path_frames(one)[2] == 5 and iter_path_frames(one, pages="z")[2] == 1


def test_channels_last_get_the_advice(tmp_path):
    from devolens.io.stacks import stack_info

    path = tmp_path / "tyxc.tif"
    tifffile.imwrite(path, np.zeros((3, 16, 24, 2), np.uint16), metadata={"axes": "TYXC"})
    with pytest.raises(DevolensError, match=r"axes 'TYXC'.*np.moveaxis\(array, -1, -3\), imagej=True, "
                                            r"metadata=\{'axes': 'TCYX'\}"):
        stack_info(path)


# ---------------------------------------------------------------------------- 8-9. records of a stack's reading
def test_slices_get_t_and_z_columns_and_projections_do_not(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main

    rng = np.random.default_rng(5)
    path = tmp_path / "tz.tif"
    tifffile.imwrite(path, (rng.random((2, 3, 32, 48)) * 255).astype(np.uint8), imagej=True,
                     metadata={"axes": "TZYX", "finterval": 2.5, "tunit": "min", "spacing": 1.0})
    sl = tmp_path / "sl"
    assert main(["segment", "nuclei", str(path), "--stack-z", "slices", "--out", str(sl), "--no-overlay",
                 "--diameter", "none"]) == 0
    assert "each of 3 z-planes a frame (frame t x 3 + z)" in err(capsys)
    counts = pd.read_csv(sl / "counts.csv")
    assert list(counts.columns) == ["frame", "t", "z", "count", "time_s"]  # (time_s: session 51, the interval)
    assert list(counts["t"]) == [0, 0, 0, 1, 1, 1] and list(counts["z"]) == [0, 1, 2, 0, 1, 2]
    objects = pd.read_csv(sl / "objects.csv")
    assert list(objects.columns) == ["frame", "t", "z", "label", "x", "y", "area", "mean_intensity"]
    assert ((objects["t"] * 3 + objects["z"]) == objects["frame"]).all()
    record = json.loads((sl / "segment.json").read_text())["stack"]
    assert record["interval_s"] == 150.0 and record["time_points"] == 2 and record["z_planes"] == 3
    pr = tmp_path / "pr"
    assert main(["segment", "nuclei", str(path), "--out", str(pr), "--no-overlay", "--diameter", "none"]) == 0
    assert list(pd.read_csv(pr / "counts.csv").columns) == ["frame", "count", "time_s"]
    assert list(pd.read_csv(pr / "objects.csv", nrows=0).columns) == ["frame", "label", "x", "y", "area",
                                                                     "mean_intensity"]
    assert "2 time points 150 s apart; max projection of 3 z-planes" in err(capsys)
    assert main(["segment", "nuclei", "--help"]) == 0
    assert "t x Z + z" in " ".join(capsys.readouterr().out.replace("│", " ").split())


def test_inputs_that_are_no_stack_have_no_stack_record(tiny_zoo, tmp_path, capsys):  # noqa: F811
    from devolens.cli import main
    from devolens.io.images import write_png

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(2):
        write_png(np.zeros((32, 48), np.uint8), folder / f"t{i}.png")
    out = tmp_path / "seg"
    assert main(["segment", "nuclei", str(folder), "--out", str(out), "--no-overlay"]) == 0
    assert "read " not in err(capsys) and "stack" not in json.loads((out / "segment.json").read_text())
