"""s30 refactors, no behaviour change: ``devolens models``' table is rendered from the ``--json`` listing's data (one
place gathers the fields, so the two cannot tell different stories), and a stack's OME-XML images are walked once
per file (:func:`devolens.io.stacks._ome_walk`) for every OME helper, each helper answering as before."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from devolens.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from test_s29_stacks2 import positions  # noqa: E402  (the s29 multi-position fixture)


# ---------------------------------------------------------------------------- 1. models: table from the listing
def _old_row(name: str, wide: bool) -> tuple[str, ...]:
    """A row of the table as `devolens models` built it from the card before s30 (its own copy of the fields)."""
    from devolens.cli.models import _headline
    from devolens.models import zoo

    card = zoo.card(name)
    wpath = zoo.ZOO_DIR / name / "weights.safetensors"
    size = f"{wpath.stat().st_size / 1e6:.1f} MB" if wpath.exists() else "missing"
    if wpath.exists():
        size += f"\nsha256 {zoo.weights_sha256(name)[:12]}"
    metrics = card.get("metrics", {}) or {}
    heads = card.get("headline") or list(metrics)[:3]
    setting = card.get("metrics_setting") or {}
    lines = [f"(measured: {setting['measured']})"] if setting.get("measured") else []
    if setting.get("default_figures"):
        lines.append(f"(default, {setting.get('default', '')}: {setting['default_figures']})")
    shown = "\n".join([_headline(k, metrics[k]) for k in heads if k in metrics] + lines) or "-"
    int8 = "yes" if (card.get("int8") or {}).get("activations") else "-"
    return (name, str(card.get("task", "")), size, int8, shown, *((str(card.get("summary", "")),) if wide else ()))


@pytest.mark.parametrize("wide", [False, True])
def test_table_rows_from_the_listing_are_the_rows_built_from_the_cards(wide):
    from devolens.cli.models import _listing, _row
    from devolens.models import zoo

    names = zoo.available()
    if not names:
        pytest.skip("no model shipped in src/devolens/models/zoo yet")
    listing = _listing(names)["models"]
    assert [m["name"] for m in listing] == names
    for entry in listing:
        assert _row(entry, wide) == _old_row(entry["name"], wide)


def test_table_and_json_listing_agree_on_every_models_fields(capsys, monkeypatch):
    """Every cell of the table (as given to rich, before it folds them) says what `models --json` says."""
    from rich.table import Table

    from devolens.cli._common import out
    from devolens.models import zoo

    names = zoo.available()
    if not names:
        pytest.skip("no model shipped in src/devolens/models/zoo yet")
    assert main(["models", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = []
    add_row = Table.add_row
    monkeypatch.setattr(Table, "add_row", lambda self, *cells, **kw: rows.append(cells) or add_row(self, *cells, **kw))
    monkeypatch.setattr(out, "width", 200)  # the summary column too
    assert main(["models"]) == 0
    capsys.readouterr()
    assert [r[0] for r in rows] == [m["name"] for m in doc["models"]] == names
    for (name, task, weights, int8, shown, summary), m in zip(rows, doc["models"]):
        assert task == m["task"] and summary == m["summary"] and int8 == ("yes" if m["int8"] else "-")
        w = m["weights"]
        assert weights == (f"{w['bytes'] / 1e6:.1f} MB\nsha256 {w['sha256'][:12]}" if w else "missing")
        setting = m["setting"]
        lines = [h["text"] for h in m["headline"]] + (
            [f"(measured: {setting['measured']})"] if setting.get("measured") else []) + (
            [f"(default, {setting.get('default', '')}: {setting['default_figures']})"]
            if setting.get("default_figures") else [])
        assert shown == ("\n".join(lines) or "-")


def test_the_table_renders_what_the_listing_gives(capsys, monkeypatch):
    """The table takes its rows from `_listing` alone (it read the cards a second time): a listing of made-up
    entries is what it shows, a missing weights file, no headline and no task shown as before."""
    import devolens.cli.models as cm
    from devolens.cli._common import out

    made = [{"name": "made_up", "task": "nuclei", "summary": "Made-up summary.", "int8": True,
             "weights": {"file": "weights.safetensors", "bytes": 2_345_678, "sha256": "ab" * 32},
             "headline": [{"metric": "x", "words": "x", "value": 1, "how": None, "text": "made-up metric: 0.5"}],
             "setting": {"measured": "made-up setting", "default": "int8", "default_figures": "F1 0.4"}, "input": {}},
            {"name": "bare", "task": None, "summary": None, "int8": False, "weights": None, "headline": [],
             "setting": {}, "input": {}}]
    monkeypatch.setattr(cm, "_listing", lambda names: {"devolens": "0", "models": made})
    monkeypatch.setattr(out, "width", 200)
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for want in ("made_up", "2.3 MB", "sha256 abababababab", "yes", "made-up metric: 0.5",
                 "(measured: made-up setting)", "(default, int8: F1 0.4)", "Made-up summary.", "bare", "missing"):
        assert want in text, want
    bare = next(line for line in text.splitlines() if "bare" in line)
    assert [c.strip() for c in bare.strip("│ ").split("│")][:5] == ["bare", "", "missing", "-", "-"]
    assert "None" not in text


# ---------------------------------------------------------------------------- 2. OME-XML walked once per file
def test_a_position_files_ome_images_are_walked_once(tmp_path, monkeypatch):
    """Reading a multi-position file's layout walks its OME images once (it was 6 times: calibration, continuation,
    channel names, interval, and twice for the image read); what each helper says is as before."""
    from devolens.io import stacks

    files, _ = positions(tmp_path, n=3, seed=1)
    walks = []
    real = stacks._ome_images
    monkeypatch.setattr(stacks, "_ome_images", lambda tif, root: walks.append(1) or real(tif, root))
    stacks._layout.cache_clear()
    pos2 = files[2]
    assert stacks.channel_names(pos2) == ("GFP2", "mCherry2") and stacks.frame_interval(pos2) == 90.0
    assert stacks.ome_image(pos2) == {"id": "Image:2", "name": "emb_MMStack_Pos2", "place": 3, "images": 3}
    assert stacks.ome_set_first(pos2) is None and stacks.pixel_size(pos2) is None
    assert len(walks) == 1


def test_a_single_file_ome_tiffs_planes_files_are_not_looked_up(tmp_path, monkeypatch):
    """An OME-TIFF whose planes are all in it (no ``FileName=`` in its XML): its images' files are not looked up
    (before s30 they were not; the first walk looked them up for every OME-TIFF); what it says is as before."""
    import numpy as np
    import tifffile

    from devolens.io import stacks

    path = tmp_path / "one.ome.tif"
    tifffile.imwrite(path, np.zeros((3, 2, 8, 8), np.uint16), ome=True,
                     metadata={"axes": "TCYX", "Channel": {"Name": ["GFP", "RFP"]}, "TimeIncrement": 2.0,
                               "TimeIncrementUnit": "min", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25})
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and "FileName=" not in tif.ome_metadata
    walks = []
    real = stacks._ome_images
    monkeypatch.setattr(stacks, "_ome_images", lambda tif, root: walks.append(1) or real(tif, root))
    stacks._layout.cache_clear()
    assert stacks.channel_names(path) == ("GFP", "RFP") and stacks.frame_interval(path) == 120.0
    assert stacks.pixel_size(path) == (0.25, 0.25, "µm")
    assert stacks.ome_image(path) is None and stacks.ome_set_first(path) is None
    assert walks == []


def _stand_in(body: str, folder: Path):
    """A stand-in for an open OME-TIFF named here.ome.tif whose OME-XML's root holds ``body``, with its root."""
    from devolens.io import stacks

    xml = ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
           f'UUID="urn:uuid:root">{body}</OME>')
    tif = SimpleNamespace(is_ome=True, is_imagej=False, ome_metadata=xml, imagej_metadata=None,
                          filehandle=SimpleNamespace(name="here.ome.tif", dirname=str(folder)),
                          series=[SimpleNamespace(kind="ome", pages=[None])])
    return tif, stacks._ome_root(tif)


def _image(i: int, first_c: str, file: str = "here.ome.tif") -> str:
    return (f'<Image ID="Image:{i}"><Pixels ID="Pixels:{i}" SizeC="2" TimeIncrement="5" PhysicalSizeX="0.5">'
            f'<Channel Name="A{i}"/><Channel/><TiffData FirstC="{first_c}" IFD="0">'
            f'<UUID FileName="{file}">urn:uuid:{i + 1}</UUID></TiffData></Pixels></Image>')


def test_a_walk_that_fails_fails_only_the_helpers_that_need_it(tmp_path):
    """TiffData that cannot be read (FirstC="x"): as before, the helpers that need the images' files answer as for
    metadata they cannot read, the others still answer (one image: its channel names, interval, pixel size)."""
    from devolens.io import stacks

    tif, root = _stand_in(_image(0, "x"), tmp_path)
    walk = stacks._ome_walk(tif, root)  # raises nothing: what failed is raised where it is asked for
    with pytest.raises(ValueError):
        stacks._continues(tif, walk)
    with pytest.raises(ValueError):
        stacks._image_read(walk)
    assert stacks._metadata(tif, "CYX", (2, 8, 8), walk) == stacks._Meta(None, ("A0", None), 5.0, None)
    assert stacks._calibration(tif, walk) == (0.5, 0.5, "µm")
    tif, root = _stand_in(_image(0, "x") + _image(1, "x"), tmp_path)  # two images: which one is read cannot be told
    walk = stacks._ome_walk(tif, root)
    assert stacks._metadata(tif, "CYX", (2, 8, 8), walk) == stacks._Meta()
    assert stacks._calibration(tif, walk) is None and stacks._missing_files(tif) is None


def test_the_walk_finds_the_image_stored_here(tmp_path):
    """Two images, the first stored in another file (missing): the second is read, its channels and place; the
    first image's file is no file of the image read."""
    from devolens.io import stacks

    tif, root = _stand_in(_image(0, "0", "gone.ome.tif") + _image(1, "0"), tmp_path)
    walk = stacks._ome_walk(tif, root)
    assert walk.own.get("ID") == "Image:1"
    assert stacks._metadata(tif, "CYX", (2, 8, 8), walk) == stacks._Meta(None, ("A1", None), 5.0,
                                                                          ("Image:1", None, 2, 2))
    assert stacks._missing_files(tif) is None and stacks._continues(tif) is None
