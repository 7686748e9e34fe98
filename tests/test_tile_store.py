"""Tile stores of giant wells: written a row of tiles at a time, edges covered, one split for library and train
(whole images, or a band of one image without shared pixels), appends of other settings refused, progress in tiles."""

from __future__ import annotations

import json
import tracemalloc

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile

from devolens.cli import main
from devolens.data import tiling
from devolens.data.h5stream import h5_datasets, split_store, split_tiles
from devolens.data.tiling import open_store, tile_arrays, tile_positions, tile_to_h5
from devolens.errors import DevolensError


def synthetic(path, h, w, seed=0, spots=60):
    """A (2, h, w) uint16 image and labels with small live (1) and dead (2) squares, fast to make."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 4000, (2, h, w), dtype=np.uint16)
    lab = np.zeros((h, w), np.uint8)
    for y, x, k in zip(rng.integers(0, h - 4, spots), rng.integers(0, w - 4, spots), rng.integers(1, 3, spots)):
        lab[y:y + 4, x:x + 4] = k
    lab[h - 3:, w - 3:] = 2  # in the bottom right corner: only an edge tile holds it
    ip, lp = path / f"w{seed}.tif", path / f"w{seed}_labels.tif"
    tifffile.imwrite(ip, img)
    tifffile.imwrite(lp, lab)
    return ip, lp, img, lab


def read_all(store):
    with open_store(store) as f:
        return {k: f[k][:] for k in ("images", "labels", "class_counts", "source", "coords")}, dict(f.attrs)


def test_tile_positions_reach_the_far_edge():
    assert tile_positions(1500, 160, 80).tolist()[-2:] == [1280, 1340]  # rows 1440-1499 are in a tile
    assert tile_positions(1500, 160, 80, edge=False).tolist()[-1] == 1280
    assert tile_positions(480, 160, 80).tolist() == [0, 80, 160, 240, 320]  # a grid that fits: nothing added
    assert tile_positions(100, 160, 80).size == 0


def test_every_pixel_of_a_well_is_in_a_tile(tmp_path):
    """The bottom and right edges were left out where the grid stopped short of them (labelled nuclei never
    trained on); now the last row and column of tiles lie flush with them."""
    ip, lp, img, lab = synthetic(tmp_path, 150, 200)
    store = tmp_path / "t.h5"
    tile_to_h5([ip], store, [lp], tile=64, stride=32, keep="all", chunk=5)
    got, attrs = read_all(store)
    covered = np.zeros(lab.shape, bool)
    for y, x in got["coords"]:
        covered[y:y + 64, x:x + 64] = True
    assert covered.all()
    assert {int(y) for y in got["coords"][:, 0]} == {0, 32, 64, 86}
    assert {int(x) for x in got["coords"][:, 1]} == {0, 32, 64, 96, 128, 136}
    assert bool(attrs["edge_tiles"])
    # the corner's dead pixels are in the store, its tiles as cut from the image
    assert any(lab[y:y + 64, x:x + 64][-3:, -3:].min() == 2 and y == 86 and x == 136 for y, x in got["coords"])
    for (y, x), t, lt in zip(got["coords"], got["images"], got["labels"]):
        assert np.array_equal(t, img[:, y:y + 64, x:x + 64]) and np.array_equal(lt, lab[y:y + 64, x:x + 64])


def test_an_image_smaller_than_the_tile_is_refused_saying_what_fits(tmp_path):
    ip, lp, _, _ = synthetic(tmp_path, 50, 70)
    with pytest.raises(DevolensError, match=r"image 50x70 is smaller than the tile \(64 px a side; tiles are never "
                                            r"padded\): tile it with --tile 50 or less"):
        tile_to_h5([ip], tmp_path / "t.h5", [lp], tile=64, stride=32, keep="all")
    assert not (tmp_path / "t.h5").exists()


def test_the_store_is_written_a_row_of_tiles_at_a_time(tmp_path, monkeypatch):
    """Never every tile of the image in memory (~4x the image at 50 % overlap): rows of tiles, as tile_arrays cuts
    them, go to the store; the store holds exactly tile_arrays' tiles in its order."""
    ip, lp, img, lab = synthetic(tmp_path, 150, 200)
    ref = tile_arrays(img, lab, tile=32, stride=16)
    rows: list[int] = []
    real_add = tiling._Writer.add

    def add(self, parts):
        rows.append(len(parts["images"]))
        real_add(self, parts)

    monkeypatch.setattr(tiling._Writer, "add", add)
    monkeypatch.setattr(tiling, "tile_arrays", lambda *a, **k: pytest.fail("every tile of the image at once"))
    store = tmp_path / "t.h5"
    tile_to_h5([ip], store, [lp], tile=32, stride=16, chunk=7)
    got, _ = read_all(store)
    assert len(rows) == tile_positions(150, 32, 16).size and max(rows) <= tile_positions(200, 32, 16).size
    for k in ("images", "labels", "class_counts", "coords"):
        assert np.array_equal(got[k], ref[k]), k


def _tiling_peak(ip, lp, out) -> int:
    """Peak Python-side allocation (bytes) of tiling one well into 32 px tiles at 50 % overlap (the devolens
    version the store records is looked up before: once per process, whatever the image's size)."""
    from devolens.provenance import version

    version()
    tracemalloc.start()
    try:
        tile_to_h5([ip], out, [lp], tile=32, stride=16, keep="all", chunk=200)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_is_the_image_not_its_tiles(tmp_path):
    """Python-side allocations while tiling a 1024x1024 well into 32 px tiles at 50 % overlap: every tile would be
    ~4x the image (33 MB); the image, its labels and a chunk of tiles are ~12 MB."""
    ip, lp, img, _ = synthetic(tmp_path, 1024, 1024, spots=2000)
    tiles_bytes = tile_positions(1024, 32, 16).size ** 2 * 2 * 32 * 32 * 2
    assert tiles_bytes > 3.5 * img.nbytes
    peak = _tiling_peak(ip, lp, tmp_path / "t.h5")
    assert peak < 2.5 * img.nbytes, f"peak {peak / 1e6:.1f} MB, image {img.nbytes / 1e6:.1f} MB"


def test_an_uncompressed_tiff_is_read_a_band_at_a_time(tmp_path, monkeypatch):
    """An uncompressed TIFF well (what simulate well, tifffile and Fiji write) is not read whole: peak memory a
    fraction of the image; a compressed copy (read whole) and a copy saved Draq7 first with channel names give
    the same store, digests included (so either is refused as a duplicate of the other)."""
    ip, lp, img, lab = synthetic(tmp_path, 1024, 1024, spots=2000)
    monkeypatch.setattr(tiling._Bands, "BLOCK", 1 << 18)
    peak = _tiling_peak(ip, lp, tmp_path / "t.h5")
    assert peak < 0.5 * img.nbytes, f"peak {peak / 1e6:.1f} MB, image {img.nbytes / 1e6:.1f} MB"
    tifffile.imwrite(tmp_path / "z.tif", img, compression="zlib")
    tifffile.imwrite(tmp_path / "zl.tif", lab, compression="zlib")
    tifffile.imwrite(tmp_path / "swapped.tif", img[::-1], imagej=True, metadata={"axes": "CYX",
                                                                                  "Labels": ["DRAQ7", "Hoechst"]})
    ref, ref_attrs = read_all(tmp_path / "t.h5")
    for name, image, labels in (("z", "z.tif", "zl.tif"), ("s", "swapped.tif", lp.name)):
        with pytest.warns(UserWarning) if name == "s" else warnings_none():
            tile_to_h5([tmp_path / image], tmp_path / f"{name}.h5", [tmp_path / labels], tile=32, stride=16,
                       keep="all", chunk=200)
        got, attrs = read_all(tmp_path / f"{name}.h5")
        for k in ref:
            assert np.array_equal(got[k], ref[k]), (name, k)
        assert attrs["source_digests"] == ref_attrs["source_digests"], name
    with pytest.raises(DevolensError, match="already in the store"):
        tile_to_h5([tmp_path / "z.tif"], tmp_path / "t.h5", [tmp_path / "zl.tif"], tile=32, stride=16, keep="all",
                   append=True)


def warnings_none():
    import contextlib
    import warnings

    @contextlib.contextmanager
    def cm():
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            yield

    return cm()


def test_progress_counts_tile_positions_from_the_start(tmp_path):
    """One giant well showed 0/? until done (progress per image): it counts tile positions, row by row, the total
    known before the first tile."""
    ip, lp, _, _ = synthetic(tmp_path, 150, 200)
    ip2, lp2, _, _ = synthetic(tmp_path, 130, 90, seed=1)
    calls: list[tuple[int, int]] = []
    s = tile_to_h5([ip, ip2], tmp_path / "t.h5", [lp, lp2], tile=64, stride=32, keep="all",
                   progress=lambda d, t: calls.append((d, t)))
    total = sum(s.considered)
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert len(calls) > 2 * 2 and all(t == total for _, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


@pytest.mark.parametrize("option,value,held", [("stride", 16, 32), ("keep", "all", "mixed")])
def test_append_with_other_settings_is_refused(tmp_path, capsys, option, value, held):
    ip, lp, _, _ = synthetic(tmp_path, 150, 200)
    ip2, lp2, _, _ = synthetic(tmp_path, 130, 140, seed=1)
    store = tmp_path / "t.h5"
    tile_to_h5([ip], store, [lp], tile=64, stride=32)
    before = store.read_bytes()
    kw = {"tile": 64, "stride": 32, "keep": "mixed", option: value}
    with pytest.raises(DevolensError, match=f"cannot append: the store's tiles were cut with --{option} {held}, "
                                            f"not {value}"):
        tile_to_h5([ip2], store, [lp2], append=True, **kw)
    assert store.read_bytes() == before
    assert main(["tile", str(ip2), "--labels", str(lp2), "--out", str(store), "--tile", "64", "--stride",
                 str(kw["stride"]), "--keep", kw["keep"], "--append"]) == 2
    assert f"--{option} {held}" in capsys.readouterr().err and store.read_bytes() == before
    tile_to_h5([ip2], store, [lp2], tile=64, stride=32, append=True)  # the same settings: appended
    assert json.loads(read_all(store)[1]["sources"]) == ["w0.tif", "w1.tif"]


def test_append_to_a_store_without_edge_tiles_keeps_its_grid(tmp_path):
    """A store written before the edge tiles: tiles appended to it are cut on its grid alone (one setting)."""
    ip, lp, _, _ = synthetic(tmp_path, 150, 200)
    ip2, lp2, _, _ = synthetic(tmp_path, 150, 200, seed=1)
    store = tmp_path / "t.h5"
    tile_to_h5([ip], store, [lp], tile=64, stride=32, keep="all")
    with h5py.File(store, "r+") as f:
        del f.attrs["edge_tiles"]
    tile_to_h5([ip2], store, [lp2], tile=64, stride=32, keep="all", append=True)
    got, attrs = read_all(store)
    assert "edge_tiles" not in attrs
    assert not (got["coords"][got["source"] == 1] % 32).any()


# ---------------------------------------------------------------------------------------------------- the split


@pytest.fixture(scope="module")
def one_well(tmp_path_factory):
    d = tmp_path_factory.mktemp("one")
    ip, lp, _, _ = synthetic(d, 400, 300, spots=400)
    store = d / "one.h5"
    tile_to_h5([ip], store, [lp], tile=32, stride=16, chunk=50)
    return store


def overlapping(coords, source, a, b, tile):
    """Tiles of ``a`` that share a pixel with a tile of ``b`` (same source)."""
    return [i for i in a if any(source[j] == source[i] and abs(int(coords[j, 0]) - int(coords[i, 0])) < tile
                                and abs(int(coords[j, 1]) - int(coords[i, 1])) < tile for j in b)]


def test_one_image_splits_by_region_without_shared_pixels(one_well):
    """One well: a band of it validates, about val_fraction of the tiles (was 20 % for 10 %, by blocks of tiles,
    74 of 259 validation tiles overlapping training tiles)."""
    sp = split_store(one_well, val_fraction=0.1, seed=0)
    got, _ = read_all(one_well)
    n = len(got["coords"])
    assert sp.by == "region"
    assert sorted(np.concatenate([sp.train, sp.val, sp.dropped]).tolist()) == list(range(n))
    assert abs(sp.val.size / (n - sp.dropped.size) - 0.1) < 0.04
    assert not overlapping(got["coords"], got["source"], sp.train, sp.val, 32)
    assert 0 < sp.dropped.size < 0.1 * n
    assert f"{sp.val.size} of the {n - sp.dropped.size} tiles used" in sp.note
    assert f"{sp.dropped.size} training tiles that share pixels with validation tiles are dropped" in sp.note
    tr, va = sp  # unpacks as before
    assert tr is sp.train and va is sp.val


def test_several_images_split_by_source_or_by_region(tmp_path):
    paths = [synthetic(tmp_path, 200, 160, seed=s, spots=300)[:2] for s in range(4)]
    store = tmp_path / "four.h5"
    tile_to_h5([p[0] for p in paths], store, [p[1] for p in paths], tile=32, stride=16)
    got, _ = read_all(store)
    sp = split_store(store, val_fraction=0.25, seed=1)
    assert sp.by == "source" and not sp.dropped.size
    assert not set(got["source"][sp.train]) & set(got["source"][sp.val])
    assert "1 of its 4 images validate" in sp.note
    region = split_store(store, val_fraction=0.25, seed=1, split_by="region")
    assert set(got["source"][region.val]) == {0, 1, 2, 3}  # a band of each image
    assert not overlapping(got["coords"], got["source"], region.train, region.val, 32)
    with pytest.raises(DevolensError, match="data.split_by: a tile store splits by 'source' or 'group' or 'region'"):
        split_store(store, split_by="folder")


def test_one_image_labelled_twice_stays_on_one_side():
    """Two sources of the same pixels (two annotators) are one image for the split."""
    coords = np.array([[y, x] for y in range(0, 64, 16) for x in range(0, 64, 16)] * 3)
    source = np.repeat([0, 1, 2], 16)
    sp = split_tiles(source, coords, 16, 0.3, seed=0, same={0: "a", 1: "a", 2: "b"})
    assert {tuple(sorted(set(source[s]))) for s in (sp.train, sp.val)} in ({(0, 1), (2,)}, )


def test_train_and_the_library_split_alike_and_a_run_keeps_its_split(one_well):
    """devolens train (build_data) and h5_datasets use the one split; a resumed run keeps its split.csv's."""
    from devolens.train.recipe import load_recipe
    from devolens.train.trainer import build_data

    rec = load_recipe({"name": "t", "task": "segmentation",
                       "data": {"target": "classes", "classes": 3, "channels": 2, "normalize": "log",
                                "val_fraction": 0.1, "split_by": "source"},
                       "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3,
                                 "decoder_channels": [8, 8, 4]}})
    bundle = build_data(rec, one_well)
    train, val, split, notes = h5_datasets(one_well, val_fraction=0.1, seed=0)
    assert split["side"].tolist() == bundle.split["side"].tolist()
    assert len(bundle.train) == len(train) and len(bundle.val) == len(val)
    assert bundle.split_noted and notes[0] in bundle.notes
    assert set(bundle.split["side"]) == {"train", "val", "drop"}
    # a run trained on another split (older versions: blocks of tiles) resumes with it
    old = bundle.split.copy()
    old["side"] = np.where(np.arange(len(old)) % 5 == 0, "val", "train")
    again = build_data(rec, one_well, old)
    assert again.split["side"].tolist() == old["side"].tolist() and len(again.val) == int((old.side == "val").sum())
    assert any("the run's own split is kept" in n for n in again.notes)
    assert build_data(rec, one_well, bundle.split).split["side"].tolist() == bundle.split["side"].tolist()


def test_a_store_split_says_its_fraction_once(tmp_path):
    """The store's note says the fraction and the dropped tiles; the generic 'not the % of data.val_fraction' note,
    meant for whole groups, is not said again."""
    from devolens.train.trainer import train

    ip, lp, _, _ = synthetic(tmp_path, 96, 128, spots=80)
    store = tmp_path / "small.h5"
    tile_to_h5([ip], store, [lp], tile=32, stride=16, keep="all")

    rec = {"name": "t", "task": "segmentation",
           "data": {"target": "classes", "classes": 3, "channels": 2, "normalize": "log", "val_fraction": 0.1},
           "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3, "decoder_channels": [8, 8, 4]},
           "loss": {"name": "ce_dice"},
           "train": {"epochs": 1, "batch_size": 8, "max_batches": 1, "overlay_samples": 0, "monitor": "val_loss"}}
    said: list[str] = []
    train(rec, store, tmp_path / "run", info=said.append)
    assert sum("tile store split by region" in s for s in said) == 1
    assert not any("of the samples validate" in s for s in said)
    assert set(pd.read_csv(tmp_path / "run" / "split.csv")["side"]) == {"train", "val", "drop"}


def _recipe(split_by="source", val_fraction=0.2):
    from devolens.train.recipe import load_recipe

    return load_recipe({"name": "t", "task": "segmentation",
                        "data": {"target": "classes", "classes": 3, "channels": 2, "normalize": "log",
                                 "val_fraction": val_fraction, "split_by": split_by},
                        "model": {"arch": "unet", "encoder": "resnet18", "encoder_depth": 3,
                                  "decoder_channels": [8, 8, 4]}})


def test_a_tile_file_without_source_or_coords_splits_by_blocks(tmp_path):
    """A hand-made file of only images and labels (was: 'need at least 2 tiles ..., found 0')."""
    from devolens.train.trainer import build_data

    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.random.default_rng(0).integers(0, 999, (40, 2, 16, 16)).astype(np.uint16)
        f["labels"] = np.zeros((40, 16, 16), np.uint8)
    bundle = build_data(_recipe(), path)
    assert (len(bundle.train), len(bundle.val)) == (32, 8)
    assert bundle.split["side"].tolist() == ["train"] * 32 + ["val"] * 8  # one block at the end
    assert any("validation may share pixels with training" in n for n in bundle.notes)
    sp = split_tiles(None, None, 16, 0.2, n=40)
    assert (sp.train.size, sp.val.size, sp.by) == (32, 8, "tiles")


def test_an_image_two_tiles_tall_splits_by_a_band_of_columns(tmp_path):
    """240x1600, tile 160, stride 80: two rows of tiles that overlap; the right-hand columns validate (was
    refused, 'use a smaller --stride')."""
    coords = np.array([[y, x] for y in (0, 80) for x in range(0, 1441, 80)])
    sp = split_tiles(None, coords, 160, 0.1)
    assert sp.by == "region" and sp.val.size and sp.train.size and "at the right" in sp.note
    assert coords[sp.val, 1].min() > coords[sp.train, 1].max()
    assert not overlapping(coords, np.zeros(len(coords), int), sp.train, sp.val, 160)
    # a store: 48 px tall, tile 32 stride 16 (two rows)
    ip, lp, _, _ = synthetic(tmp_path, 48, 320, spots=60)
    store = tmp_path / "flat.h5"
    tile_to_h5([ip], store, [lp], tile=32, stride=16, keep="all")
    got, _ = read_all(store)
    sp = split_store(store, val_fraction=0.1)
    assert sp.val.size and sp.train.size
    assert not overlapping(got["coords"], got["source"], sp.train, sp.val, 32)


def test_a_store_no_band_can_split_falls_back_to_blocks_with_a_note():
    """2x2 tiles that all overlap: no band leaves tiles on both sides; split as before, and said."""
    coords = np.array([[0, 0], [0, 80], [80, 0], [80, 80]])
    sp = split_tiles(None, coords, 160, 0.2)
    assert sp.by == "blocks" and sp.train.size == 3 and sp.val.size == 1 and not sp.dropped.size
    assert "validation may share pixels with training" in sp.note
    assert "never sees pixels trained on" not in sp.note


def test_a_run_made_before_the_store_split_resumes_with_its_split(tmp_path):
    """A resumed run keeps its split.csv without running today's split (which refused this store before), and an
    image-folder split_by (embryo) is a note for stores, not an error."""
    from devolens.train.trainer import build_data

    path = tmp_path / "tiny.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((4, 2, 16, 16), np.uint16)
        f["labels"] = np.zeros((4, 16, 16), np.uint8)
        f["source"] = np.zeros(4, np.int64)
        f["coords"] = np.array([[0, 0], [0, 8], [8, 0], [8, 8]])
    old = pd.DataFrame({"sample": [f"tile{i:06d}" for i in range(4)], "group": "0",
                        "side": ["train", "train", "train", "val"]})
    for split_by in ("source", "embryo"):
        with pytest.MonkeyPatch.context() as mp:
            import devolens.data.h5stream as h5s

            def refuse(*a, **k):
                raise DevolensError("the split was run")

            mp.setattr(h5s, "split_tiles", refuse)
            b = build_data(_recipe(split_by), path, old)
        assert b.split["side"].tolist() == old["side"].tolist() and (len(b.train), len(b.val)) == (3, 1)
        assert any("the run's own split is kept" in n for n in b.notes)
        assert any("ignored for tile stores" in n for n in b.notes) == (split_by == "embryo")
    b = build_data(_recipe("folder"), path)  # not resumed: split, with a note
    assert any("'folder' is ignored for tile stores" in n for n in b.notes)


def test_copies_of_one_image_are_cut_at_the_same_band():
    """Two label sets of one image (different tiles kept): a region split cuts both at the same rows, so no
    training tile of one shares pixels with a validation tile of the other."""
    grid = [[y, x] for y in range(0, 97, 16) for x in range(0, 97, 16)]
    part = [c for c in grid if c[0] <= 64]  # the copy kept fewer tiles (keep mixed)
    coords = np.array(grid + part)
    source = np.array([0] * len(grid) + [1] * len(part))
    for split_by in ("region", "source"):
        sp = split_tiles(source, coords, 32, 0.2, split_by=split_by, same={0: "a", 1: "a"})
        assert sp.by == "region" and sp.val.size and sp.train.size
        both = np.zeros(len(source), int)  # the same pixels: one image
        assert not overlapping(coords, both, sp.train, sp.val, 32)
        assert "never sees pixels trained on" in sp.note


# ------------------------------------------------------------------------------------------------ simulate well


def test_simulate_well_help_names_the_object_table_it_writes(tmp_path, capsys):
    assert main(["simulate", "well", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "<out>.objects.csv" not in text and "--out w.tif writes w.objects.csv" in text
    assert main(["simulate", "well", "--size", "40x48", "--out", str(tmp_path / "w.tif"), "--labels",
                 str(tmp_path / "l.tif")]) == 0
    assert (tmp_path / "w.objects.csv").exists() and not (tmp_path / "w.tif.objects.csv").exists()


# ---------------------------------------------------------------- RGB TIFFs: read by their colours, as a PNG
def _rgb_well(tmp_path, h=150, w=200):
    """An RGB well (uint8, Hoechst blue, Draq7 red, green empty) with its labels: saved as PNG and as TIFFs."""
    from devolens.io.images import write_png

    ip, lp, img, lab = synthetic(tmp_path, h, w)
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 2], rgb[..., 0] = img[0] // 16, img[1] // 16
    write_png(rgb, tmp_path / "w.png")
    tifffile.imwrite(tmp_path / "w.tif", rgb, photometric="rgb")
    tifffile.imwrite(tmp_path / "t.tif", rgb, photometric="rgb", tile=(64, 64), compression="zlib")
    return rgb, lp


def test_tile_reads_an_rgb_tiff_as_the_same_png(tmp_path, capsys):
    """`tile` refused an RGB TIFF ('e.g. 0,1' read red as Hoechst and the empty green as Draq7) that `segment
    livedead` reads by its colours; now both read it as a PNG: Hoechst from blue, Draq7 from red."""
    from devolens.predict.tiled import RowReader

    rgb, lp = _rgb_well(tmp_path)
    expected = np.stack([rgb[..., 2], rgb[..., 0]]).astype(np.uint16) * 257
    with pytest.warns(UserWarning):
        png = tiling.read_image(tmp_path / "w.png")
    assert np.array_equal(png, expected)
    stores = {}
    for name in ("w.png", "w.tif", "t.tif"):
        if name != "w.png":
            with pytest.warns(UserWarning, match="Hoechst read from its blue"):
                assert np.array_equal(tiling.read_image(tmp_path / name), expected)
            with pytest.warns(UserWarning), RowReader(tmp_path / name) as r:  # as segment livedead reads it
                assert np.array_equal(r.rows(0, rgb.shape[0]), expected)
        store = tmp_path / (name.replace(".", "_") + ".h5")
        assert main(["tile", str(tmp_path / name), "--labels", str(lp), "--out", str(store), "--tile", "64",
                     "--stride", "32", "--keep", "all"]) == 0
        stores[name] = read_all(store)[0]
    for name in ("w.tif", "t.tif"):
        for key in ("images", "labels", "coords"):
            assert np.array_equal(stores[name][key], stores["w.png"][key]), (name, key)
    # 16-bit, samples stored as planes (3, H, W): a stack of channels, not colours (test below); --channels 2,0
    planar = (np.moveaxis(rgb, -1, 0).astype(np.uint16) * 257)
    tifffile.imwrite(tmp_path / "p.tif", planar, photometric="rgb", planarconfig="separate")
    with pytest.raises(DevolensError, match=r"e\.g\. \[0, 1\]"):
        tile_to_h5([tmp_path / "p.tif"], tmp_path / "p.h5", [lp], tile=64, stride=32, keep="all")
    tile_to_h5([tmp_path / "p.tif"], tmp_path / "p.h5", [lp], tile=64, stride=32, keep="all", order=[2, 0])
    assert np.array_equal(read_all(tmp_path / "p.h5")[0]["images"], stores["w.png"]["images"])
    # --channels still chooses others
    with pytest.warns(UserWarning):
        assert np.array_equal(tiling.read_image(tmp_path / "w.tif", order=[0, 2]), expected[::-1])


def test_planar_three_channel_tiff_is_a_stack_not_colours(tmp_path, capsys):
    """`tifffile.imwrite(p, np.stack([hoechst, zeros, draq7]))` (16-bit; tifffile stores 3 planes as photometric RGB,
    planar) is a stack of channels: refused with the channel advice 'e.g. 0,1' (not read as colours, Draq7 from
    channel 0 as Hoechst) by `tile` and by segment livedead's reader; --channels 0,2 reads it right. An interleaved
    (H, W, 3) uint8 RGB TIFF still follows the colour rule."""
    from devolens.predict.tiled import RowReader

    ip, lp, img, lab = synthetic(tmp_path, 120, 140)
    stack = np.stack([img[0], np.zeros_like(img[0]), img[1]])
    tifffile.imwrite(tmp_path / "s.tif", stack)
    with tifffile.TiffFile(tmp_path / "s.tif") as tf:  # the case: tifffile's default for 3 planes
        assert tf.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
        assert tf.pages[0].planarconfig == tifffile.PLANARCONFIG.SEPARATE
    for read in (lambda: tiling.read_image(tmp_path / "s.tif"), lambda: RowReader(tmp_path / "s.tif"),
                 lambda: tile_to_h5([tmp_path / "s.tif"], tmp_path / "x.h5", [lp], tile=64, stride=32, keep="all")):
        with pytest.raises(DevolensError, match=r"channels=\[H, D\] \(0-based, e\.g\. \[0, 1\]") as err:
            read()
        assert "2, 0" not in str(err.value) and "blue" not in str(err.value)
    assert main(["tile", str(tmp_path / "s.tif"), "--labels", str(lp), "--out", str(tmp_path / "c.h5"),
                 "--tile", "64", "--stride", "32", "--keep", "all"]) != 0
    said = " ".join(" ".join(capsys.readouterr()).split())
    assert "e.g. 0,1" in said and "2,0" not in said
    # --channels 0,2: Hoechst and Draq7 as written, by tile and by segment livedead's reader
    assert np.array_equal(tiling.read_image(tmp_path / "s.tif", order=[0, 2]), img)
    with RowReader(tmp_path / "s.tif", order=[0, 2]) as r:
        assert r.note is None and np.array_equal(r.rows(0, 120), img)
    assert main(["tile", str(tmp_path / "s.tif"), "--labels", str(lp), "--out", str(tmp_path / "s.h5"),
                 "--tile", "64", "--stride", "32", "--keep", "all", "--channels", "0,2"]) == 0
    assert main(["tile", str(ip), "--labels", str(lp), "--out", str(tmp_path / "ref.h5"),
                 "--tile", "64", "--stride", "32", "--keep", "all"]) == 0
    assert np.array_equal(read_all(tmp_path / "s.h5")[0]["images"], read_all(tmp_path / "ref.h5")[0]["images"])
    # an interleaved (H, W, 3) uint8 RGB TIFF: still by its colours (Hoechst blue, Draq7 red)
    rgb = np.zeros((120, 140, 3), np.uint8)
    rgb[..., 2], rgb[..., 0] = img[0] // 16, img[1] // 16
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    expected = np.stack([rgb[..., 2], rgb[..., 0]]).astype(np.uint16) * 257
    with pytest.warns(UserWarning, match="Hoechst read from its blue"):
        assert np.array_equal(tiling.read_image(tmp_path / "rgb.tif"), expected)
    with pytest.warns(UserWarning, match="not uint16"), RowReader(tmp_path / "rgb.tif") as r:
        assert r.order == [2, 0] and np.array_equal(r.rows(0, 120), expected)


def test_rgb_tiff_errors_name_blue_and_red(tmp_path):
    """Where an RGB TIFF's channels cannot be told, the example is Hoechst in blue (2), Draq7 in red (0)."""
    rgb, _ = _rgb_well(tmp_path, 40, 50)
    cyan = rgb.copy()
    cyan[..., 1] = cyan[..., 2]  # Hoechst shown cyan: green holds signal
    tifffile.imwrite(tmp_path / "cyan.tif", cyan, photometric="rgb")
    with pytest.raises(DevolensError, match=r"signal in green.*channels=\[2, 0\]"):
        tiling.read_image(tmp_path / "cyan.tif")
    # an OME-TIFF naming its one RGB channel: not read by colours (as segment livedead), and the example is 2,0
    tifffile.imwrite(tmp_path / "ome.tif", rgb, photometric="rgb", ome=True,
                     metadata={"axes": "YXS", "Channel": {"Name": ["RGB"]}})
    with pytest.raises(DevolensError, match=r"channels=\[H, D\] \(0-based.*\[2, 0\]") as err:
        tiling.read_image(tmp_path / "ome.tif")
    assert "0, 1" not in str(err.value)
    # three grey (not RGB) channels: the example stays 0,1
    tifffile.imwrite(tmp_path / "three.tif", np.zeros((3, 40, 50), np.uint16), photometric="minisblack",
                     metadata={"axes": "CYX"})
    with pytest.raises(DevolensError, match=r"e\.g\. \[0, 1\]"):
        tiling.read_image(tmp_path / "three.tif")


def test_compressed_tiled_and_other_tiffs_are_read_by_bands_as_read_image_reads_them(tmp_path, monkeypatch):
    """Compressed, tiled, big-endian, channels-last and non-uint16 TIFF wells (and compressed or uint16 labels) are
    read through the band reader (RowReader), never whole: the same pixels, digest and conversion warning as
    read_image / read_labels give, and the same store as the uncompressed well."""
    ip, lp, img, lab = synthetic(tmp_path, 300, 260, spots=300)
    tile_to_h5([ip], tmp_path / "ref.h5", [lp], tile=64, stride=48)
    ref, ref_attrs = read_all(tmp_path / "ref.h5")
    variants = {
        "zt.tif": dict(data=img, compression="zlib", tile=(64, 64)),
        "z.tif": dict(data=img, compression="zlib", rowsperstrip=17),
        "be.tif": dict(data=img, byteorder=">"),
        "yxc.tif": dict(data=np.moveaxis(img, 0, -1), photometric="minisblack", planarconfig="contig",
                        compression="zlib"),
    }
    for name, kw in variants.items():
        tifffile.imwrite(tmp_path / name, kw.pop("data"), **kw)
    tifffile.imwrite(tmp_path / "lab_zt.tif", lab, compression="zlib", tile=(64, 64))
    tifffile.imwrite(tmp_path / "lab16.tif", lab.astype(np.uint16), compression="zlib")
    tifffile.imwrite(tmp_path / "f.tif", img.astype(np.float32) / 65535)
    tifffile.imwrite(tmp_path / "u8.tif", (img >> 8).astype(np.uint8), compression="zlib", tile=(64, 64))
    expected = {}
    for name in ("f.tif", "u8.tif"):
        with pytest.warns(UserWarning, match="not uint16; converted") as rec:
            expected[name] = (tiling.read_image(tmp_path / name), [str(w.message) for w in rec])
    monkeypatch.setattr(tiling, "read_image", lambda *a, **k: pytest.fail("read whole"))
    monkeypatch.setattr(tiling, "read_labels", lambda *a, **k: pytest.fail("read whole"))
    for name, labels in (("zt.tif", "lab_zt.tif"), ("z.tif", "lab16.tif"), ("be.tif", lp.name),
                         ("yxc.tif", "lab_zt.tif")):
        out = tmp_path / f"{name}.h5"
        with warnings_none():
            tile_to_h5([tmp_path / name], out, [tmp_path / labels], tile=64, stride=48)
        got, attrs = read_all(out)
        for k in ref:
            assert np.array_equal(got[k], ref[k]), (name, k)
        assert attrs["source_digests"] == ref_attrs["source_digests"], name
    for name, (arr, messages) in expected.items():
        with pytest.warns(UserWarning) as rec:
            bands = tiling._Bands.image(tmp_path / name, 2, None)
        assert bands.reader is not None
        assert [str(w.message) for w in rec] == messages
        assert np.array_equal(bands.rows(0, 300), arr) and bands.rows(0, 300).dtype == np.uint16
        assert bands.digest() == tiling.pixel_digest(arr)
        bands.close()


def test_band_reader_errors_are_read_images(tmp_path):
    """A file the band reader refuses or cannot decode is read whole, with read_image's or read_labels' error."""
    ip, lp, img, lab = synthetic(tmp_path, 200, 200)
    data = ip.read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    tifffile.imwrite(tmp_path / "bad.tif", (lab * 2).astype(np.uint8), compression="zlib")
    for image, labels in (("cut.tif", lp), (ip, "bad.tif")):
        errors = []
        for fn in (lambda: (tiling.read_image(tmp_path / image), tiling.read_labels(tmp_path / labels)),
                   lambda: tile_to_h5([tmp_path / image], tmp_path / "x.h5", [tmp_path / labels], tile=32)):
            with pytest.raises(DevolensError) as exc:
                fn()
            errors.append(str(exc.value))
        assert errors[0] == errors[1]
    assert not (tmp_path / "x.h5").exists()


def test_one_layout_rule_and_the_public_colour_api(tmp_path):
    from devolens.io.wells import channels_last
    from devolens.predict.tiled import RowReader, colour_tiff_order

    assert channels_last((600, 800, 3)) and not channels_last((3, 600, 800)) and not channels_last((600, 800))
    assert not channels_last((5, 600, 4), channels=5) and channels_last((5, 600, 4))
    rgb = np.zeros((80, 90, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 50, np.arange(90, dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(rgb, -1, 0))
    assert colour_tiff_order(tmp_path / "rgb.tif") == [2, 0]
    assert colour_tiff_order(tmp_path / "planar.tif") is None
    with RowReader(tmp_path / "rgb.tif", channels=None) as src:
        assert src.colour_tiff and src.is_rgb_tiff() and src.file_shape == (80, 90, 3)
        assert src.raw_rows(0, 80).dtype == np.uint8 and np.array_equal(src.raw_rows(0, 80)[2], rgb[..., 2])
