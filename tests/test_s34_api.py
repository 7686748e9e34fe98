"""Python API defects a documentation audit found (session 34, M11): placeholder names counted as unnamed with the
README's note and the mis-capitalised names' note in the library too; render_dataset replaces an earlier render whole
(as `devolens render` does); video_damage reads a video it has no record of; LiveDeadPredictor.device is a str as the
other predictors'; library errors name the argument, not a CLI flag; pixel_size of a missing file; a zip read as CSV."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from _render_helpers import make_table
from devolens.errors import DevolensError


def _cli(argv, capsys):
    from devolens.cli import main

    code = main(argv)
    cap = capsys.readouterr()
    return code, " ".join(cap.out.split()), " ".join(cap.err.split())


def _tidy(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["embryo", "time", "cell", "x", "y", "z", "size"])


# ----------------------------------------------------------------------------- 1. populations: unnamed, miscased
def test_placeholder_names_are_unnamed_with_the_note(tmp_path, capsys):
    """AceTree's and EPIC's 'Nuc123' (every name a placeholder) gave 0 in every letter and no note; they count as
    unnamed (as names-stop detection takes them: total minus the letters), in attrs and in both commands."""
    from devolens.lineage.populations import populations, unnamed_rows

    rows = [("e", t, f"Nuc{i}", i, i, 1, 5) for t in (1, 2, 3) for i in range(4)]
    df = _tidy(rows)
    pops = populations(df)
    assert pops[list("AEMPCDZ")].eq(0).all().all() and pops["total"].tolist() == [4, 4, 4]
    assert pops.attrs["unnamed_rows"] == 12 == unnamed_rows(df)
    assert pops.attrs["notes"] == ["no row has a Sulston cell name (12 rows; an empty cell or another label, such as a "
                                   "placeholder Nuc123): counted in total only, every lineage column "
                                   "is 0 (and no lineage cliff can be found)"]
    # the rule: the rows counted in total but in no letter (polar bodies are not counted at all)
    mixed = _tidy([("e", 1, "ABa", 1, 1, 1, 5), ("e", 1, "Nuc1", 2, 2, 1, 5), ("e", 1, "", 3, 3, 1, 5),
                   ("e", 1, "polar1", 4, 4, 1, 5), ("e", 1, "Dead", 5, 5, 1, 5)])
    pm = populations(mixed)
    assert pm.attrs["unnamed_rows"] == int(pm["total"].sum() - pm[list("AEMPCDZ")].to_numpy().sum()) == 3
    assert pm.attrs["notes"] == ["3 rows (60 %) have no Sulston cell name (an empty cell or another label, such as "
                                   "a placeholder Nuc123): counted in total only"]
    path = tmp_path / "nuc.csv"
    df.to_csv(path, index=False)
    for argv in (["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")],
                 ["--quiet", "lineage", "cliffs", str(path)]):
        code, _, err = _cli(argv, capsys)
        assert code == 0 and "note: no row has a Sulston cell name (12 rows" in err


def test_miscased_names_noted_by_the_library_as_by_the_command(tmp_path, capsys):
    """'ABA', 'ABpL' (Sulston names but for their case) counted in no letter: `lineage populations` said so, the
    library's attrs["notes"] did not; one rule (populations.miscased_note) says it in both, and they are not also
    called unnamed."""
    from devolens.lineage.populations import miscased_note, populations, unnamed_rows

    rows = [("e", t, name, i, i, 1, 5) for t in (1, 2) for i, name in enumerate(["ABA", "ABP", "EMS", "P2"])]
    df = _tidy(rows)
    pops = populations(df)
    want = ("4 rows carry names that are Sulston names but for their case (e.g. 'ABA', 'ABP'; the founder in "
            "capitals, a/p, l/r, d/v in small letters): counted in the total only, not in a population letter")
    assert pops.attrs["notes"] == [want] == [miscased_note(df["cell"])]
    assert pops.attrs["unnamed_rows"] == 0 == unnamed_rows(df) and pops["A"].eq(0).all() and pops["E"].eq(1).all()
    path = tmp_path / "upper.csv"
    df.to_csv(path, index=False)
    code, _, err = _cli(["lineage", "populations", str(path), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and f"note: {want}" in err and "no Sulston cell name" not in err
    assert miscased_note(pd.Series(["ABa", "Nuc1", None])) is None


# ----------------------------------------------------------------------------- 2. render_dataset replaces
def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_render_dataset_replaces_an_earlier_render_whole(tmp_path):
    """A second render_dataset into a folder left the first render's frames, labels and video beside the new ones
    (the command replaced the folder's render whole): the library stages and replaces as the command does, other
    files kept."""
    from devolens.render.dataset import render_dataset

    table, out = make_table(n_times=3), tmp_path / "r"
    render_dataset(table, out, size=(32, 48), video=True, seed=1)
    assert (out / "video.mp4").is_file() and len(list((out / "frames").iterdir())) == 3
    (out / "mine.txt").write_text("kept")
    df = render_dataset(table, out, size=(32, 48), times=[2], seed=1)
    assert df["file"].tolist() == ["frames/t002.png"]
    assert _listing(out) == ["frames", "frames.csv", "frames/t002.png", "labels", "labels/t002_labels.tif", "mine.txt",
                             "objects.csv", "render.json"]
    assert json.loads((out / "render.json").read_text())["times"] == [2]


def test_render_dataset_refuses_data_and_keeps_a_render_on_error(tmp_path, monkeypatch):
    """What the command refused, the library refuses (a folder of someone's frames/ without render.json); a render
    that fails leaves the previous one as it was, and makes no folder."""
    import devolens.render.dataset as dataset

    table = make_table(n_times=3)
    data = tmp_path / "data"
    (data / "frames").mkdir(parents=True)
    with pytest.raises(DevolensError, match=r"not a previous render \(no render.json\) but holds frames"):
        dataset.render_dataset(table, data, size=(32, 48))
    assert _listing(data) == ["frames"]
    out = tmp_path / "r"
    dataset.render_dataset(table, out, size=(32, 48), times=[1, 2], seed=1)
    before = {p: (out / p).read_bytes() for p in _listing(out) if (out / p).is_file()}
    real = dataset.write_csv

    def failing(frame, path, *args, **kwargs):
        if path.name == "frames.csv":
            raise DevolensError("disk full")
        return real(frame, path, *args, **kwargs)

    monkeypatch.setattr(dataset, "write_csv", failing)
    with pytest.raises(DevolensError, match="disk full"):
        dataset.render_dataset(table, out, size=(32, 48), times=[3], seed=1)
    assert {p: (out / p).read_bytes() for p in _listing(out) if (out / p).is_file()} == before
    with pytest.raises(DevolensError, match="disk full"):
        dataset.render_dataset(table, tmp_path / "new" / "deep" / "r", size=(32, 48), times=[3])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "r"]


def test_render_dataset_record_keys(tmp_path):
    """``record`` adds keys to render.json (the command's provenance goes in so); its own keys stay its own."""
    from devolens.render.dataset import render_dataset

    table = make_table(n_times=2)
    render_dataset(table, tmp_path / "r", size=(32, 48), record={"command": "mine", "inputs": []})
    meta = json.loads((tmp_path / "r" / "render.json").read_text())
    assert meta["command"] == "mine" and meta["kind"] == "nuclei"
    for record, msg in (({"kind": "x"}, "cannot replace render.json's own key"), ([1], "record must be a dict"),
                        ({"a": object()}, "record must hold what JSON can write")):
        with pytest.raises(DevolensError, match=msg):
            render_dataset(table, tmp_path / "s", size=(32, 48), record=record)
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------------- 3. video_damage
def test_video_damage_reads_a_video_it_has_no_record_of(tmp_path, monkeypatch):
    """In a new process video_damage(path) returned None for a damaged video (only this process's readings were
    recalled): it reads the file when it has no record of it."""
    import devolens.io.video as video
    from test_video_damage import _damaged_h264

    clean, bad = _damaged_h264(tmp_path)
    monkeypatch.setattr(video, "_FOUND", {})  # as a new process: no reading recorded
    damage = video.video_damage(bad)
    assert damage is not None and damage.messages > 0 and damage.path == bad
    assert video.video_damage(bad) is damage  # recorded: recalled, not read again
    assert video.video_damage(clean) is None
    with pytest.raises(DevolensError, match="no such file"):
        video.video_damage(tmp_path / "missing.mp4")


# ----------------------------------------------------------------------------- 4. LiveDeadPredictor.device
def test_livedead_device_is_a_name_as_the_other_predictors_give():
    """LiveDeadPredictor.device was a torch.device where the other predictors give 'cpu', 'cuda', 'cuda:0'."""
    import torch

    from devolens.models.architectures import build_model
    from devolens.predict.livedead import LiveDeadPredictor, _predictor_for

    torch.manual_seed(0)
    net = build_model("unet", "resnet18", in_channels=2, classes=3, encoder_depth=3, decoder_channels=(16, 8, 4))
    pred = LiveDeadPredictor(net, device=" CPU ", fast=False, window=64, overlap=16,
                             card={"architecture": {"encoder_depth": 3}})
    assert pred.device == "cpu" and type(pred.device) is str
    image = np.random.default_rng(0).integers(100, 4000, (2, 40, 40)).astype(np.uint16)
    assert pred.predict(image).probabilities.shape == (3, 40, 40)  # (the network on the device so named)
    assert _predictor_for(pred, {"device": "cpu"}).device == "cpu"


# ----------------------------------------------------------------------------- 5. small ones
def test_library_errors_name_the_argument_not_the_flag():
    """render_dataset(every=0) said '--every'; simulate_tables(0) said '--simulate'."""
    from devolens.render.dataset import render_dataset, select_times, simulate_tables

    table = make_table(n_times=2)
    for call in (lambda: select_times(table, every=0), lambda: render_dataset(table, "unused", every=0)):
        with pytest.raises(DevolensError, match=r"^every must be a whole number >= 1, got 0$"):
            call()
    with pytest.raises(DevolensError, match=r"^n must be at least 1 \(the number of embryos to simulate\), got 0$"):
        simulate_tables(0)


def test_pixel_size_of_a_missing_file_is_an_error(tmp_path):
    """pixel_size('missing.tif') returned None, as for a TIFF that records no pixel size."""
    import tifffile

    from devolens.io.stacks import pixel_size

    with pytest.raises(DevolensError, match="no such file") as err:
        pixel_size(tmp_path / "missing.tif")
    assert "missing.tif" in str(err.value)
    with pytest.raises(DevolensError, match="is a folder"):
        pixel_size(tmp_path)
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 4), np.uint8))
    assert pixel_size(tmp_path / "plain.tif") is None


def test_an_acetree_zip_read_as_csv_says_what_it_is(tmp_path):
    """read_table(zip, format='epic') said 'binary file, not a lineage table (CSV or AceTree zip/folder expected)'."""
    from devolens.io.tables import read_table

    path = tmp_path / "ace.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("nuclei/t001-nuclei", "1, 1, -1, -1, -1, 54, 112, 83.0, 23, ABa, 6476, 0, 0, 0, , 0, 0, 0, 0, "
                                          "0, \n")
    assert read_table(path)["cell"].tolist() == ["ABa"]
    for fmt in ("epic", "tidy"):
        with pytest.raises(DevolensError, match=r'looks like an AceTree zip.*format left out.*format="acetree"'):
            read_table(path, format=fmt)
