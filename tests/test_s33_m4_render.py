"""``devolens render``'s truth: frames rendered again from render.json with copied rows, the label centroid in
objects.csv, a header-only objects.csv, artifact records and compact labels of a red patch, the odd-size video."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import tifffile

from _render_helpers import make_table
from devolens.cli import main
from devolens.io.images import read_image
from devolens.io.tables import write_tidy
from devolens.render.artifacts import apply_frame_artifact
from devolens.render.dataset import OBJECTS_COLUMNS, render_dataset
from devolens.render.geometry import Pose, embryo_geometry
from devolens.render.membranes import MembraneParams, render_membrane_frame
from devolens.render.nuclei import render_nuclei_frame
from devolens.render.optics import OpticsParams


def _with_copies(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its first two time points saved twice (exact copies of rows appended)."""
    out = pd.concat([table, table[table["time"] <= 2]], ignore_index=True)
    out.attrs = dict(table.attrs)
    return out


def _labels(folder, file):
    return tifffile.imread(folder / "labels" / f"{file.split('/')[-1][:-4]}_labels.tif")


def test_geometry_measures_a_copied_row_once():
    table = make_table(n_times=6, n_cells=15)
    assert embryo_geometry(_with_copies(table)) == embryo_geometry(table)


@pytest.mark.parametrize("kind", ["nuclei", "membrane"])
def test_frame_rendered_again_from_its_record_with_copied_rows(tmp_path, kind):
    """render_dataset measured the table without its copies, render_nuclei_frame with them: the frame rendered
    again as the module's doc says differed (25 label pixels of 128 x 128 in the audit's case)."""
    table = _with_copies(make_table(n_times=6, n_cells=15))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the copies' warning
        render_dataset(table, tmp_path, kind=kind, times=[5], size=(96, 128), seed=3)
        meta = json.loads((tmp_path / "render.json").read_text())
        entry = meta["embryos"]["toy"]
        rec = entry["frames"][0]
        if kind == "nuclei":
            fr = render_nuclei_frame(table, 5, size=(96, 128), seed=rec["seed"], rgb=meta["rgb"],
                                     optics=OpticsParams(**entry["optics"]), pose=Pose(**entry["pose"]),
                                     reporter_key=entry["seed"])
        else:
            fr = render_membrane_frame(table, 5, z=rec["z"], size=(96, 128), seed=rec["seed"],
                                       params=MembraneParams(**entry["membrane"]), pose=Pose(**entry["pose"]))
    assert np.array_equal(fr.labels, _labels(tmp_path, rec["file"]))
    assert np.array_equal(fr.image, read_image(tmp_path / rec["file"]))


def test_objects_csv_has_the_label_centroid_beside_the_projected_centre(tmp_path):
    render_dataset(make_table(n_times=3, n_cells=40, seed=2), tmp_path, size=(64, 96), seed=1)
    obj = pd.read_csv(tmp_path / "objects.csv")
    # the old columns first, as they were; the label centroid after them
    assert list(obj.columns) == OBJECTS_COLUMNS
    assert OBJECTS_COLUMNS[:9] == ["file", "label", "cell", "x", "y", "depth", "radius", "area", "visible"]
    assert OBJECTS_COLUMNS[9:] == ["label_x", "label_y"]
    hidden_centre = 0
    for file, rows in obj.groupby("file"):
        lab = _labels(tmp_path, file)
        for r in rows.itertuples():
            ys, xs = np.nonzero(lab == r.label)
            assert len(xs) == r.area
            assert r.label_x == pytest.approx(xs.mean(), abs=1e-3) and r.label_y == pytest.approx(ys.mean(), abs=1e-3)
            xi, yi = int(round(r.x)), int(round(r.y))
            if not (0 <= yi < lab.shape[0] and 0 <= xi < lab.shape[1]) or lab[yi, xi] != r.label:
                hidden_centre += 1
    assert hidden_centre  # x, y (projected centres) are not the label centroids: the case the new columns serve


def test_objects_csv_header_only_when_no_frame_is_clean(tmp_path):
    df = render_dataset(make_table(n_times=3), tmp_path, size=(32, 48), seed=1, artifacts=1.0,
                        artifact_kinds=("black",))
    assert (df["artifact"] == "black").all()
    assert (tmp_path / "objects.csv").read_text().strip() == ",".join(OBJECTS_COLUMNS)
    membrane = tmp_path / "m"
    render_dataset(make_table(n_times=2), membrane, kind="membrane", size=(32, 48), seed=1)
    assert not (membrane / "objects.csv").exists()  # membranes have no objects table, as before


def test_red_patch_renumbers_the_labels_left_compactly():
    img = np.zeros((64, 80, 3), np.uint8)
    lab = np.zeros((64, 80), np.uint16)
    k = 0
    for y in range(0, 64, 4):  # 2 x 2 objects every 4 px: a patch of at least 5 x 6 px hides some whole
        for x in range(0, 80, 4):
            k += 1
            lab[y:y + 2, x:x + 2] = k
    for seed in range(5):
        _, out, info = apply_frame_artifact(img, lab, "red_patch", np.random.default_rng(seed))
        y0, y1, x0, x1 = info["box"]
        ids = np.unique(out[out > 0])
        assert out[y0:y1, x0:x1].max() == 0 and out.dtype == lab.dtype
        assert np.array_equal(ids, np.arange(1, len(ids) + 1))  # 1..K, no gap
        assert len(ids) < k
        # the labels outside the patch keep their order and pixels
        kept = lab.copy()
        kept[y0:y1, x0:x1] = 0
        assert np.array_equal(out > 0, kept > 0)
        old = kept[kept > 0]
        assert np.all(np.diff(out[kept > 0][np.argsort(old, kind="stable")].astype(int)) >= 0)


def test_frame_artifacts_recorded_where_they_are(tmp_path):
    table = make_table(n_times=12, n_cells=30)
    clean = tmp_path / "clean"
    render_dataset(table, clean, size=(48, 64), seed=4)
    art = tmp_path / "art"
    df = render_dataset(table, art, size=(48, 64), seed=4, artifacts=1.0,
                        artifact_kinds=("dark", "bright", "red_line", "red_patch", "black"))
    frames = json.loads((art / "render.json").read_text())["embryos"]["toy"]["frames"]
    assert [f["artifact"]["kind"] for f in frames] == list(df["artifact"])
    assert {"dark", "red_patch", "red_line"} <= set(df["artifact"])
    for f in frames:
        a, file = f["artifact"], f["file"]
        image, truth = read_image(art / file), read_image(clean / file)
        labels = _labels(art, file)
        ids = np.unique(labels[labels > 0])
        assert np.array_equal(ids, np.arange(1, len(ids) + 1))  # compact after a red patch too
        if a["kind"] in ("dark", "bright"):
            top = np.clip(np.floor(truth.astype(np.float32) * np.float32(a["factor"])), 0, 255)
            assert np.array_equal(image, top.astype(np.uint8))
        elif a["kind"] == "red_line":
            assert (image[a["rows"], :, 0] >= 200).all() and (image[a["rows"], :, 1] < 30).all()
        elif a["kind"] == "red_patch":
            y0, y1, x0, x1 = a["box"]
            assert labels[y0:y1, x0:x1].max() == 0 and (image[y0:y1, x0:x1, 1] < 30).all()
            outside = np.ones(labels.shape, bool)
            outside[y0:y1, x0:x1] = False
            assert np.array_equal(image[outside], truth[outside])
        else:
            assert a == {"kind": "black"}


def test_duplicate_record_carries_the_artifact_of_the_frame_it_repeats(tmp_path):
    table = make_table(n_times=30, n_cells=12)
    df = render_dataset(table, tmp_path, size=(32, 48), seed=2, artifacts=0.8,
                        artifact_kinds=("dark", "duplicate"))
    frames = json.loads((tmp_path / "render.json").read_text())["embryos"]["toy"]["frames"]
    by_time = {f["time"]: f for f in frames}
    seen = 0
    for f, art in zip(frames, df["artifact"]):
        if art == "duplicate" and "repeats" in f:
            assert f.get("artifact") == by_time[f["repeats"]].get("artifact")
            seen += "artifact" in f
        elif art == "":
            assert "artifact" not in f
    assert seen  # a duplicate of a dark frame was among them


def test_odd_size_video_is_noted_and_documented(tmp_path, capsys):
    from devolens.io.video import iter_video_frames, video_size

    assert video_size(33, 48) == (34, 48) and video_size(32, 47) == (32, 48) and video_size(32, 48) == (32, 48)
    table = tmp_path / "t.csv"
    write_tidy(make_table(n_times=3), table)
    odd = tmp_path / "odd"
    assert main(["render", str(table), "--out", str(odd), "--size", "33", "48", "--video", "--seed", "1"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "note: --size 33 48 has an odd side: video.mp4 is 34 x 48, its last row" in err
    first = next(iter(iter_video_frames(odd / "video.mp4")))
    assert first.shape[:2] == (34, 48) and read_image(odd / "frames" / "t001.png").shape[:2] == (33, 48)
    even = tmp_path / "even"
    assert main(["render", str(table), "--out", str(even), "--size", "32", "48", "--video", "--seed", "1"]) == 0
    assert "odd side" not in capsys.readouterr().err
    assert main(["render", str(table), "--out", str(tmp_path / "x"), "--size", "33", "48", "--seed", "1"]) == 0
    assert "odd side" not in capsys.readouterr().err  # no video, nothing padded


def test_render_help_documents_the_columns_and_the_video():
    import inspect

    from devolens.cli.render import _HELP, render

    text = " ".join(_HELP.split())
    for words in ("label_x,label_y the centroid of its label's pixels", "only the header when none is clean",
                  "duplicate frame counts its own time point", "same whole TABLE", "a red patch's box"):
        assert words in text, words
    video = " ".join(inspect.signature(render).parameters["video"].default.help.split())
    assert "the N embryos one after another" in video and "one pixel larger" in video
