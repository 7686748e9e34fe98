import numpy as np
import pandas as pd
import pytest

from _render_helpers import make_table
from devolens.cli import main
from devolens.io.images import read_image
from devolens.io.tables import write_tidy
from devolens.lineage.populations import populations
from devolens.render.dataset import FRAMES_COLUMNS, render_dataset


@pytest.fixture(scope="module")
def table():
    return make_table(n_times=24, n_cells=20, seed=3)


def test_layout_and_populations(tmp_path, table):
    df = render_dataset(table, tmp_path, size=(64, 96), every=2, seed=1)
    csv = pd.read_csv(tmp_path / "frames.csv", keep_default_na=False)
    assert tuple(csv.columns) == FRAMES_COLUMNS
    assert list(csv["time"]) == list(range(1, 25, 2))
    assert (csv["artifact"] == "").all()
    pop = populations(table).set_index("time")
    for _, r in csv.iterrows():
        assert r["file"] == f"frames/t{r['time']:03d}.png"
        img = read_image(tmp_path / r["file"])
        lab = read_image(tmp_path / "labels" / f"t{r['time']:03d}_labels.tif")
        assert img.shape == (64, 96, 3) and lab.dtype == np.uint16 and lab.shape == (64, 96)
        assert lab.max() <= r["total"]
        for k in ("A", "E", "M", "P", "C", "D", "Z", "total"):
            assert r[k] == pop.loc[r["time"], k]
    assert len(df) == len(csv)


def test_same_seed_same_dataset(tmp_path, table):
    render_dataset(table, tmp_path / "a", size=(48, 64), times=[2, 5], seed=4)
    render_dataset(table, tmp_path / "b", size=(48, 64), times=[2, 5], seed=4)
    for name in ("frames/t002.png", "frames/t005.png", "labels/t005_labels.tif"):
        assert np.array_equal(read_image(tmp_path / "a" / name), read_image(tmp_path / "b" / name))


def test_artifacts_recorded_exactly(tmp_path, table):
    clean_dir, art_dir = tmp_path / "clean", tmp_path / "art"
    render_dataset(table, clean_dir, size=(64, 80), seed=11)
    csv = render_dataset(table, art_dir, size=(64, 80), seed=11, artifacts=0.7)
    kinds = set(csv["artifact"])
    assert len(kinds - {""}) >= 4  # several kinds occurred at this rate
    prev_file = None
    for _, r in csv.iterrows():
        stem = f"t{r['time']:03d}"
        clean = read_image(clean_dir / "frames" / f"{stem}.png")
        kind = r["artifact"]
        if kind == "dropped":
            assert r["file"] == "" and not (art_dir / "frames" / f"{stem}.png").exists()
            continue
        img = read_image(art_dir / r["file"])
        lab = read_image(art_dir / "labels" / f"{stem}_labels.tif")
        red_rows = ((img[..., 0] >= 200) & (img[..., 1] < 30)).all(axis=1)
        if kind == "":
            assert np.array_equal(img, clean)
        elif kind == "black":
            assert img.max() == 0 and lab.max() == 0
        elif kind == "dark":
            assert img.mean() < 0.25 * clean.mean()
        elif kind == "red_line":
            assert red_rows.any() and not ((clean[..., 0] >= 200) & (clean[..., 1] < 30)).all(axis=1).any()
        elif kind == "red_patch":
            diff = (img[..., 0].astype(int) - img[..., 1]) > 100
            assert diff.sum() >= (64 // 12) * (80 // 12)
        elif kind == "duplicate":
            assert np.array_equal(img, read_image(art_dir / prev_file))
        if kind not in ("red_line",):
            assert not red_rows.any()
        prev_file = r["file"]


def test_membrane_dataset(tmp_path, table):
    csv = render_dataset(table, tmp_path, kind="membrane", size=(64, 96), times=[1, 2])
    for _, r in csv.iterrows():
        stem = f"t{r['time']:03d}"
        m = read_image(tmp_path / "membranes" / f"{stem}_membrane.png")
        lab = read_image(tmp_path / "labels" / f"{stem}_labels.tif")
        assert set(np.unique(m)) <= {0, 255} and m.max() == 255
        assert 1 < lab.max() <= r["total"]


@pytest.mark.slow
def test_cli_table_and_video(tmp_path, table):
    src = tmp_path / "toy.csv"
    write_tidy(table, src)
    out = tmp_path / "out"
    code = main(["render", str(src), "--out", str(out), "--size", "64", "96", "--every", "6", "--video", "--seed", "2"])
    assert code == 0
    csv = pd.read_csv(out / "frames.csv", keep_default_na=False)
    assert list(csv["time"]) == [1, 7, 13, 19]
    assert (out / "video.mp4").stat().st_size > 0
    from devolens.io.video import iter_video_frames

    assert sum(1 for _ in iter_video_frames(out / "video.mp4")) == 4


@pytest.mark.slow
def test_cli_simulate(tmp_path):
    out = tmp_path / "sim"
    code = main(["render", "--simulate", "2", "--sim-cells", "12", "--out", str(out), "--size", "48", "64",
                 "--every", "10", "--seed", "3"])
    assert code == 0
    csv = pd.read_csv(out / "frames.csv", keep_default_na=False)
    assert csv["embryo"].nunique() == 2
    for _, r in csv.iterrows():
        assert r["file"] == f"frames/{r['embryo']}_t{r['time']:03d}.png"
        assert (out / r["file"]).exists()
        assert (out / "labels" / f"{r['embryo']}_t{r['time']:03d}_labels.tif").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["render", "{missing}", "--out", "{out}"],
        ["render", "{table}", "--out", "{out}", "--artifacts", "2"],
        ["render", "{table}", "--out", "{out}", "--times", "500"],
        ["render", "{table}", "--out", "{out}", "--times", "x-y"],
        ["render", "{table}", "--out", "{out}", "--size", "4", "4"],
        ["render", "{table}", "--out", "{out}", "--kind", "wells"],
        ["render", "{table}", "--out", "{out}", "--every", "0"],
        ["render", "{table}", "--simulate", "1", "--out", "{out}"],
        ["render", "--out", "{out}"],
        ["render", "{bad}", "--out", "{out}"],
    ],
)
def test_cli_bad_input_exit_2_no_output(tmp_path, table, args, capsys):
    src = tmp_path / "toy.csv"
    write_tidy(table, src)
    bad = tmp_path / "bad.csv"
    bad.write_text("this,is\nnot,a table\n")
    out = tmp_path / "out"
    argv = [a.format(missing=tmp_path / "nope.csv", out=out, table=src, bad=bad) for a in args]
    assert main(argv) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err


@pytest.mark.slow
def test_workers_give_the_same_output(tmp_path, table):
    a = render_dataset(table, tmp_path / "a", size=(48, 64), every=3, seed=9, artifacts=0.4, pose="random", vary="frame")
    b = render_dataset(table, tmp_path / "b", size=(48, 64), every=3, seed=9, artifacts=0.4, pose="random", vary="frame",
                       workers=2)
    assert a.equals(b)
    for f in a["file"]:
        if f:
            assert np.array_equal(read_image(tmp_path / "a" / f), read_image(tmp_path / "b" / f))
