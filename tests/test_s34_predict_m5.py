"""The inference hot path prepares each frame once: the saturated-speck check is read off the frame's preparation
(``Prepared.extra``, the result's ``extra["specks"]``) instead of repeating the channel pick and the hot-pixel step
(segment) or preparing the frame again (population); population gives segment nuclei's note for inverted input, by
the same rule; identify converts the positions to numbers once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from _identity_helpers import random_predictor
from _render_helpers import blob_frame
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.io.images import write_png
from devolens.predict import postprocess


def _twelve_bit(seed: int = 0) -> np.ndarray:
    """Nuclei as 12-bit camera data with an offset in a 16-bit file."""
    return np.clip(np.round(blob_frame(256, n=30, radius=9, seed=seed).astype(np.float32) * 16 + 100),
                   0, 65535).astype(np.uint16)


def _dusty(a: np.ndarray) -> np.ndarray:
    """A saturated dust speck in a corner (a few pixels at the top of the 16-bit range)."""
    out = a.copy()
    yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
    out[(yy - 30) ** 2 + (xx - 30) ** 2 <= 12 ** 2] = 65535
    return out


def _folder(tmp_path, frames, name="in"):
    folder = tmp_path / name
    folder.mkdir()
    for i, frame in enumerate(frames):
        tifffile.imwrite(folder / f"t{i}.tif", frame)
    return folder


def _counting(monkeypatch) -> list:
    """Count the speck step's work (the channel pick, the hot-pixel step and the saturated-speck test)."""
    calls = []
    real = postprocess._channel_specks

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(postprocess, "_channel_specks", counted)
    return calls


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("read_ahead", [True, False])
def test_segment_prepares_each_frame_once(tiny_zoo, tmp_path, monkeypatch, capsys, read_ahead):
    """Every frame reaches the top of its range: the note still names them all, from the one preparation each (read
    ahead, or by the predictor); the note's own check prepared them a second time."""
    from devolens.cli import predict as cli_predict

    folder = _folder(tmp_path, [_dusty(_twelve_bit(i)) for i in range(3)])
    monkeypatch.setattr(cli_predict, "_shape_note", lambda *a, **k: None)  # (judges a few frames of its own)
    if not read_ahead:
        monkeypatch.setattr(cli_predict, "READ_AHEAD_BYTES", 0)
    calls = _counting(monkeypatch)
    assert main(["segment", "nuclei", str(folder), "--out", str(tmp_path / "o"), "--diameter", "none"]) == 0
    assert "3 frames (t0, t1, t2) hold a few pixels at the top of the file's range" in _err(capsys)
    assert len(calls) == 3  # was 6


def test_population_prepares_each_frame_once(tiny_zoo, tmp_path, monkeypatch, capsys):
    """population named the frames whose specks its nuclei network left out by preparing them again."""
    from devolens.cli import predict as cli_predict

    folder = _folder(tmp_path, [_dusty(_twelve_bit(i)) if i != 1 else _twelve_bit(i) for i in range(3)])
    monkeypatch.setattr(cli_predict, "_population_inverted_note", lambda *a, **k: None, raising=False)
    calls = _counting(monkeypatch)
    assert main(["population", str(folder), "--out", str(tmp_path / "p.csv"), "--no-plot",
                 "--diameter", "none"]) == 0
    assert "2 frames (t0, t2) hold a few pixels at the top" in _err(capsys)
    assert len(calls) == 3  # was 5: the two dusty frames prepared again for the note


def test_the_result_says_what_the_preparation_found(tiny_zoo):
    """extra["specks"] from the predictor's own preparation and from one made ahead; none for a clean frame."""
    from devolens.models import load
    from devolens.predict.postprocess import Prepared

    pred = load("nuclei", diameter=None)
    clean, dusty = _twelve_bit(0), _dusty(_twelve_bit(0))
    ahead = Prepared(dusty, pred.network.prep_key)
    assert ahead.extra == {"specks": True} and Prepared(clean, pred.network.prep_key).extra == {}
    results = list(pred.predict_iter([clean, dusty, ahead, clean.astype(np.float32)]))
    assert [bool(r.extra.get("specks")) for r in results] == [False, True, True, False]
    assert np.array_equal(results[1].labels, results[2].labels)
    frame = pred.network.prepare_frame(dusty)
    assert frame.extra == {"specks": True} and np.array_equal(frame.array, ahead.array)


def test_a_frame_below_the_top_is_prepared_as_before(tiny_zoo):
    """prepare_frame gives a frame that cannot hold saturated specks the network's own preparation and no specks,
    a frame with them its specks noted."""
    from devolens.models import load

    net = load("nuclei", diameter=None).network
    clean = _twelve_bit(0)
    frame = net.prepare_frame(clean)
    assert frame.extra == {} and np.array_equal(frame.array, net.prepare(clean))
    assert net.prepare_frame(_dusty(clean)).extra == {"specks": True}


def test_specks_are_told_whatever_the_integer_type():
    """An int32 frame holding 16-bit data has its specks left out by the preparation (read as float32): the check
    said it had none (it looked at unsigned integers and floats only)."""
    from devolens.predict.postprocess import Prepared, leaves_specks_out, may_hold_specks, prepare_image

    dusty = _dusty(_twelve_bit(0)).astype(np.int32)
    key = ("auto", 0.5, (1.0, 99.8), 12.0, 0.5)
    assert np.array_equal(prepare_image(dusty, *key), prepare_image(dusty.astype(np.uint16), *key))  # left out
    assert leaves_specks_out(dusty, "auto", (1.0, 99.8), 0.5)
    assert Prepared(dusty, key).extra == {"specks": True}
    assert not may_hold_specks(_twelve_bit(0)) and not may_hold_specks(np.zeros((4, 4), np.uint8) + 255)
    assert may_hold_specks(np.full((4, 4), np.nan, np.float32)) and not may_hold_specks(np.zeros(0, np.uint16))


def _blobs(seed=0):
    """Bright filled discs (nuclei) on a dark noisy background, uint8."""
    return blob_frame(256, n=40, radius=9, background=10.0, seed=seed)


def _backdrop(seed=0):
    """The same nuclei over a bright uneven backdrop (haze rising across the field)."""
    img = _blobs(seed=seed).astype(np.float32)
    return (img * 0.5 + np.linspace(20, 200, img.shape[1])[None, :]).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("make, noted", [(lambda i: 255 - _blobs(seed=i), True), (lambda i: _blobs(seed=i), False),
                                         (_backdrop, False)])
def test_population_notes_inverted_input(tiny_zoo, tmp_path, capsys, make, noted):
    """Dark nuclei on a bright background: population now says so, as segment nuclei does (the same words), and
    records it; not with a --diameter given (as segment's)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        write_png(make(i), folder / f"t{i}.png")
    words = "the input looks inverted: dark blobs on a bright background"
    assert main(["segment", "nuclei", str(folder), "--out", str(tmp_path / "seg"), "--diameter", "none"]) == 0
    assert (words in _err(capsys)) == noted
    out = tmp_path / "p.csv"
    assert main(["population", str(folder), "--out", str(out), "--no-plot", "--diameter", "none"]) == 0
    err = _err(capsys)
    assert (words in err) == noted
    assert ("transmitted-light image (brightfield, DIC)" in err) == noted
    import json

    record = json.loads(out.with_suffix(".json").read_text())
    assert any(words in note for note in record["notes"]) == noted


def test_population_inverted_note_follows_segment_rule_on_diameter():
    """A population model without a nuclei network (a regressor), or a --diameter given by hand: no note (the
    blob judgement at a hand-given scale is not made, as segment's)."""
    from types import SimpleNamespace

    from devolens.cli.predict import _population_inverted_note

    frames = [255 - _blobs(seed=i) for i in range(3)]
    assert _population_inverted_note(frames, SimpleNamespace(nuclei=None)) is None
    by_hand = SimpleNamespace(nuclei=SimpleNamespace(card_scale=0.5), auto=False, scale_known=True)
    assert _population_inverted_note(frames, by_hand) is None


def test_identify_converts_the_positions_once(monkeypatch):
    """predict converted x (and y, z) to numbers for the placeholder rows, the stray screen, the clouds and the
    edge test: four times each; once now (a placeholder row and a repeated nucleus in the table, whose rows are
    left out or predicted once; the names were checked byte-identical on EPIC tables when this changed)."""
    rng = np.random.default_rng(0)
    rows = []
    for t in range(1, 5):
        n = 20 + 4 * t
        p = rng.normal(0, 1, (n, 3)) * [60, 30, 5] + [300, 250, 20]
        rows += [("e", t, *xyz, 25.0) for xyz in p]
    df = pd.DataFrame(rows, columns=["embryo", "time", "x", "y", "z", "size"])
    df = pd.concat([df.iloc[:1].assign(x=0.0, y=0.0, z=0.0, size=0.0), df, df.iloc[5:6]], ignore_index=True)
    df.attrs["zscale"] = 5.0
    pred = random_predictor()
    seen = []
    real = pd.to_numeric

    def counting(arg, *a, **k):
        if getattr(arg, "name", None) == "x":
            seen.append(1)
        return real(arg, *a, **k)

    monkeypatch.setattr(pd, "to_numeric", counting)
    got = pred.predict(df)
    assert len(seen) == 1  # was 4
    assert got.attrs["unplaced"] == 1 and got.attrs["duplicate_nuclei"] == 1
