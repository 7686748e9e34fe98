"""Tiling into an HDF5 store: mixed tiles, class counts, layout, append, stats, bad inputs."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pytest
import tifffile

from devolens.cli import main
from devolens.data.tiling import open_store, store_stats, tile_arrays, tile_positions, tile_to_h5
from devolens.errors import DevolensError
from devolens.render.wells import simulate_well


@pytest.fixture(scope="module")
def wells(tmp_path_factory):
    d = tmp_path_factory.mktemp("wells")
    paths = []
    for seed, size in ((1, (200, 260)), (2, (170, 300))):
        w = simulate_well(seed=seed, size=size, density=700, dead_fraction=0.4)
        ip, lp = d / f"w{seed}.tif", d / f"w{seed}_labels.tif"
        tifffile.imwrite(ip, w.image)
        tifffile.imwrite(lp, w.labels)
        paths.append((ip, lp, w))
    return paths


def brute_force(labels, tile, stride, k=3):
    out = []
    for y in tile_positions(labels.shape[0], tile, stride):
        for x in tile_positions(labels.shape[1], tile, stride):
            t = labels[y:y + tile, x:x + tile]
            out.append(((y, x), np.bincount(t.ravel(), minlength=k)))
    return out


@pytest.mark.parametrize("tile,stride", [(32, 16), (32, 12), (20, 20)])
def test_tile_arrays_keeps_exactly_the_mixed_tiles(tile, stride):
    rng = np.random.default_rng(0)
    labels = np.zeros((90, 130), np.uint8)
    labels[10:14, 20:25] = 1
    labels[60:70, 100:104] = 2
    labels[40, 50] = 1
    image = rng.integers(0, 65535, (2, 90, 130), dtype=np.uint16)
    res = tile_arrays(image, labels, tile=tile, stride=stride)
    ref = [(yx, c) for yx, c in brute_force(labels, tile, stride) if (c > 0).sum() > 1]
    assert [tuple(c) for c in res["coords"]] == [yx for yx, _ in ref]
    assert np.array_equal(res["class_counts"], np.array([c for _, c in ref]))
    for (y, x), img, lab in zip(res["coords"], res["images"], res["labels"]):
        assert np.array_equal(img, image[:, y:y + tile, x:x + tile])
        assert np.array_equal(lab, labels[y:y + tile, x:x + tile])
    all_ = tile_arrays(image, labels, tile=tile, stride=stride, keep="all")
    assert len(all_["coords"]) == len(brute_force(labels, tile, stride))
    assert np.array_equal(all_["class_counts"], np.array([c for _, c in brute_force(labels, tile, stride)]))


def test_store_layout_counts_and_attrs(wells, tmp_path):
    out = tmp_path / "t.h5"
    s = tile_to_h5([w[0] for w in wells], out, [w[1] for w in wells], tile=64, stride=32, chunk=16)
    with open_store(out) as f:
        n = f["images"].shape[0]
        assert n == s.n_tiles == sum(s.added) > 16
        assert f["images"].shape[1:] == (2, 64, 64) and f["images"].dtype == np.uint16
        assert f["labels"].shape == (n, 64, 64) and f["images"].chunks[0] == 16
        assert f["images"].compression in ("lzf", "gzip")
        assert json.loads(f.attrs["sources"]) == [w[0].name for w in wells]
        labels, counts = f["labels"][:], f["class_counts"][:]
        src, coords, images = f["source"][:], f["coords"][:], f["images"][:]
    for i in range(n):
        _, _, w = wells[src[i]]
        y, x = coords[i]
        assert np.array_equal(labels[i], w.labels[y:y + 64, x:x + 64])
        assert np.array_equal(images[i], w.image[:, y:y + 64, x:x + 64])
        assert np.array_equal(counts[i], np.bincount(labels[i].ravel(), minlength=3))
        assert (counts[i] > 0).sum() > 1
    # every mixed tile of each source is there
    for j, (_, _, w) in enumerate(wells):
        mixed = [yx for yx, c in brute_force(w.labels, 64, 32) if (c > 0).sum() > 1]
        assert sorted(map(tuple, coords[src == j])) == sorted(mixed)


def test_append_equals_one_run(wells, tmp_path):
    one = tmp_path / "one.h5"
    two = tmp_path / "two.h5"
    tile_to_h5([w[0] for w in wells], one, [w[1] for w in wells], tile=64, stride=32, chunk=7)
    tile_to_h5([wells[0][0]], two, [wells[0][1]], tile=64, stride=32, chunk=7)
    tile_to_h5([wells[1][0]], two, [wells[1][1]], tile=64, stride=32, append=True)
    with h5py.File(one) as a, h5py.File(two) as b:
        for k in ("images", "labels", "class_counts", "source", "coords"):
            assert np.array_equal(a[k][:], b[k][:]), k
        assert a.attrs["sources"] == b.attrs["sources"]



def test_append_refuses_an_image_the_store_holds(wells, tmp_path, capsys):
    """Appending an image the store already holds (the same pixels: the same file, or a copy under another name), or
    giving one twice, would duplicate its tiles: refused, naming it, the store left as it was."""
    import shutil

    (ip1, lp1, _), (ip2, lp2, _) = wells
    out = tmp_path / "t.h5"
    tile_to_h5([ip1], out, [lp1], tile=64, stride=32)
    before = out.read_bytes()
    copy = shutil.copyfile(ip1, tmp_path / "copy.tif")
    for image in (ip1, copy):
        with pytest.raises(DevolensError, match=f"{image}: already in the store \\(the same pixels and labels as its "
                                                "source 'w1.tif'\\): its tiles would be there twice"):
            tile_to_h5([ip2, image], out, [lp2, lp1], tile=64, stride=32, append=True)
        assert out.read_bytes() == before
    with pytest.raises(DevolensError, match="the same pixels and labels as 'w2.tif', given before it"):
        tile_to_h5([ip2, ip2], tmp_path / "twice.h5", [lp2, lp2], tile=64, stride=32)
    assert not (tmp_path / "twice.h5").exists()
    # one image labelled twice (two annotators) is two sources
    other = tmp_path / "other_labels.tif"
    tifffile.imwrite(other, (tifffile.imread(lp2) > 0).astype(np.uint8))
    tile_to_h5([ip2, ip2], tmp_path / "two_annotators.h5", [lp2, other], tile=64, stride=32)
    # the CLI: one line, exit 2; another image still appends
    assert main(["tile", str(ip1), "--labels", str(lp1), "--out", str(out), "--tile", "64", "--stride", "32",
                 "--append"]) == 2
    assert "already in the store" in capsys.readouterr().err and out.read_bytes() == before
    tile_to_h5([ip2], out, [lp2], tile=64, stride=32, append=True)
    with h5py.File(out) as f:
        assert json.loads(f.attrs["sources"]) == ["w1.tif", "w2.tif"]
        assert len(json.loads(f.attrs["source_digests"])) == 2


def test_append_to_a_store_without_digests(wells, tmp_path):
    """A store written before the digests were recorded: its sources' are unknown (null), appending works."""
    (ip1, lp1, _), (ip2, lp2, _) = wells
    out = tmp_path / "old.h5"
    tile_to_h5([ip1], out, [lp1], tile=64, stride=32)
    with h5py.File(out, "r+") as f:
        del f.attrs["source_digests"]
    tile_to_h5([ip2], out, [lp2], tile=64, stride=32, append=True)
    with h5py.File(out) as f:
        digests = json.loads(f.attrs["source_digests"])
        assert digests[0] is None and isinstance(digests[1], str)


def test_stats(wells, tmp_path):
    out = tmp_path / "t.h5"
    tile_to_h5([wells[0][0]], out, [wells[0][1]], tile=64, stride=64, keep="all")
    df = store_stats(out)
    lab = wells[0][2].labels
    ys, xs = tile_positions(200, 64, 64), tile_positions(260, 64, 64)
    ref = sum(np.bincount(lab[y:y + 64, x:x + 64].ravel(), minlength=3) for y in ys for x in xs)
    assert np.array_equal(df["pixels"].to_numpy(), ref)
    assert df["frequency"].sum() == pytest.approx(1.0)
    w = df["weight"].to_numpy()
    assert w[2] > w[0] and w.mean() == pytest.approx(1.0)


def test_non_uint16_is_converted_with_warning(tmp_path, wells):
    lab = wells[0][1]
    img8 = (wells[0][2].image >> 8).astype(np.uint8)
    p = tmp_path / "u8.tif"
    tifffile.imwrite(p, img8)
    with pytest.warns(UserWarning, match="not uint16"):
        tile_to_h5([p], tmp_path / "t.h5", [lab], tile=64, stride=64)
    with h5py.File(tmp_path / "t.h5") as f:
        assert f["images"].dtype == np.uint16 and f["images"][:].max() > 255


@pytest.mark.parametrize("case", ["channels", "mismatch", "labels_range", "missing"])
def test_bad_inputs_raise_and_write_nothing(tmp_path, wells, case):
    ip, lp, w = wells[0]
    if case == "channels":
        p = tmp_path / "three.tif"
        tifffile.imwrite(p, np.zeros((3, 100, 100), np.uint16))
        args = ([p], None)
    elif case == "mismatch":
        args = ([ip], [wells[1][1]])
    elif case == "labels_range":
        p = tmp_path / "bad_labels.tif"
        tifffile.imwrite(p, np.full(w.labels.shape, 7, np.uint8))
        args = ([ip], [p])
    else:
        args = ([tmp_path / "nope.tif"], [lp])
    out = tmp_path / "t.h5"
    with pytest.raises(DevolensError):
        tile_to_h5(args[0], out, args[1], keep="all" if args[1] is None else "mixed", tile=64)
    assert not out.exists()
    assert not list(tmp_path.glob(".t.tmp-*"))


def test_interrupted_run_leaves_store_intact(tmp_path, wells):
    out = tmp_path / "t.h5"
    tile_to_h5([wells[0][0]], out, [wells[0][1]], tile=64, stride=32)
    before = out.read_bytes()

    def boom(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tile_to_h5([wells[1][0]], out, [wells[1][1]], tile=64, stride=32, append=True, progress=boom)
    assert out.read_bytes() == before
    with pytest.raises(KeyboardInterrupt):
        tile_to_h5([wells[1][0]], tmp_path / "new.h5", [wells[1][1]], tile=64, progress=boom)
    assert not (tmp_path / "new.h5").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["t.h5"]


def test_truncated_store_is_a_clear_error(tmp_path, wells):
    out = tmp_path / "t.h5"
    tile_to_h5([wells[0][0]], out, [wells[0][1]], tile=64, stride=32)
    data = out.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(DevolensError, match="truncated|corrupt|not a"):
        open_store(cut)
    assert main(["tile", "stats", str(cut)]) == 2
    notes = tmp_path / "notes.h5"
    with h5py.File(notes, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(DevolensError, match="not a devolens tile store"):
        store_stats(notes)


def test_cli_both_spellings(tmp_path, wells, capsys):
    (ip1, lp1, _), (ip2, lp2, _) = wells
    out = tmp_path / "t.h5"
    assert main(["tile", str(ip1), str(ip2), "--labels", str(lp1), str(lp2), "--out", str(out),
                 "--tile", "64", "--stride", "32"]) == 0
    n1 = h5py.File(out, "r")["images"].shape[0]
    out2 = tmp_path / "t2.h5"
    assert main(["tile", "make", str(ip1), str(ip2), "--labels", str(lp1), "--labels", str(lp2),
                 "--out", str(out2), "--tile", "64", "--stride", "32"]) == 0
    assert h5py.File(out2, "r")["images"].shape[0] == n1
    capsys.readouterr()
    assert main(["tile", "stats", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dead" in text and "class weights" in text
    assert main(["tile", "--help"]) == 0
    assert "stats" in capsys.readouterr().out


def test_cli_bad_input_exit_2_no_output(tmp_path, wells, capsys):
    ip, lp, _ = wells[0]
    out = tmp_path / "t.h5"
    assert main(["tile", str(ip), "--labels", str(wells[1][1]), "--out", str(out), "--tile", "64"]) == 2
    assert "label image is" in capsys.readouterr().err
    assert not out.exists()
    bad = tmp_path / "one_channel.tif"
    tifffile.imwrite(bad, np.zeros((100, 100), np.uint16))
    assert main(["tile", str(bad), "--keep", "all", "--out", str(out), "--tile", "64"]) == 2
    assert not out.exists()


def test_settings_keeping_no_tile_are_refused_and_write_nothing(tmp_path, wells, capsys):
    ip, lp, w = wells[0]
    out = tmp_path / "sub" / "t.h5"
    # 8 px tiles every 500 px: the one position (0, 0) is all background, so --keep mixed keeps nothing
    assert main(["tile", "make", str(ip), "--labels", str(lp), "--tile", "8", "--stride", "500",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no tile kept") and "--keep mixed" in err and "--stride" in err
    assert "+0 tiles" not in err and not out.exists()
    blank = tmp_path / "blank.tif"
    tifffile.imwrite(blank, np.zeros(w.labels.shape, np.uint8))
    with pytest.raises(DevolensError, match="one class only"):
        tile_to_h5([ip], out, [blank], tile=64)
    assert not out.exists()
    store = tmp_path / "t.h5"  # appending an image that keeps nothing leaves the store as it was
    tile_to_h5([wells[1][0]], store, [wells[1][1]], tile=64, stride=32)
    before = store.read_bytes()
    with pytest.raises(DevolensError, match="store is left as it was"):
        tile_to_h5([ip], store, [blank], tile=64, stride=32, append=True)
    assert store.read_bytes() == before


def test_stats_of_an_empty_store_is_an_error_not_zero_weights(tmp_path, capsys):
    """Stores with no tile (written before such settings were refused) say so instead of all-zero weights."""
    store = tmp_path / "old.h5"
    with h5py.File(store, "w") as f:
        from devolens.data.tiling import STORE_FORMAT, _create_datasets

        f.attrs.update({"format": STORE_FORMAT, "tile": 8, "n_classes": 3, "sources": '["w.tif"]'})
        _create_datasets(f, 2, 8, 3, 10, True, None)
    with pytest.raises(DevolensError, match="holds no tiles"):
        store_stats(store)
    assert main(["tile", "stats", str(store)]) == 2
    assert "holds no tiles" in capsys.readouterr().err
