"""Each command's outputs are a unit (:func:`devolens.io.together.write_together`): after any stop or failure either
all its files are the new run's or all are the previous run's (none on a first run).

A walkthrough of interrupted runs found them committed at different moments: ``lineage populations`` committed its
CSV and record, then drew the plot (~3 s); ``population`` wrote its CSV, worked out its notes, then its record;
``identify`` its CSV then its record; ``evaluate --json`` the metrics then the per-image CSV. A stop in between left
a new file beside the previous run's companion."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest

from _lineage_builders import write_cd
from _zoo_helpers import tiny_zoo  # noqa: F401  (fixture)
from devolens.cli import main
from devolens.errors import DevolensError
from devolens.io import atomic, together
from devolens.io.together import write_together


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden temporaries included) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _previous_set(*paths: Path) -> dict[Path, bytes]:
    """Mark ``paths`` as a previous run's: bytes no run writes, so that any replacement shows."""
    for p in paths:
        p.write_bytes(f"previous run's {p.name}\n".encode())
    return {p: p.read_bytes() for p in paths}


def _same(previous: dict[Path, bytes]) -> None:
    for p, data in previous.items():
        assert p.read_bytes() == data, f"{p.name} was replaced"


def _no_temporaries(folder: Path) -> None:
    assert [p.name for p in folder.glob(".*")] == []


# ---------------------------------------------------------------------------------------------- the helper


def _writers(folder: Path, fail: str | None = None, exc: BaseException = KeyboardInterrupt()) -> dict:
    def writer(name):
        def write(tmp: Path) -> None:
            assert tmp.parent == folder and tmp.suffix == Path(name).suffix  # beside it, with its suffix
            tmp.write_text(f"new {name}\n")
            if name == fail:
                raise exc
        return write
    return {folder / name: writer(name) for name in ("a.csv", "a.png", "a.json")}


def test_all_replaced_together_and_stale_removed(tmp_path):
    _previous_set(tmp_path / "a.csv", tmp_path / "a.json", tmp_path / "a.curation.csv")
    # (an output named in remove is kept: never one of this run's)
    write_together(_writers(tmp_path), remove=[tmp_path / "a.curation.csv", tmp_path / "a.csv"])
    assert _files(tmp_path) == {n: f"new {n}\n".encode() for n in ("a.csv", "a.json", "a.png")}
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), RuntimeError("bug"), OSError(errno.EIO, "I/O error")])
@pytest.mark.parametrize("fail", ["a.png", "a.json"])
def test_a_failing_writer_leaves_the_previous_set(tmp_path, fail, exc):
    previous = _previous_set(tmp_path / "a.csv", tmp_path / "a.png", tmp_path / "a.json")
    with pytest.raises(type(exc)):
        write_together(_writers(tmp_path, fail, exc), remove=[tmp_path / "a.csv"])
    _same(previous)
    _no_temporaries(tmp_path)


def test_a_full_disk_is_named_by_its_output(tmp_path):
    with pytest.raises(atomic.Exhausted) as info:
        write_together(_writers(tmp_path, "a.png", OSError(errno.ENOSPC, "No space left on device")))
    assert info.value.path == tmp_path / "a.png"
    assert _files(tmp_path) == {}  # a first run: nothing


def test_a_folder_that_refuses_one_output_costs_no_work(tmp_path, monkeypatch):
    (tmp_path / "plots").mkdir()
    real = together.tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if Path(dir).name == "plots":
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(together.tempfile, "mkstemp", refuse)
    written = []
    with pytest.raises(DevolensError, match="cannot write output: Permission denied") as info:
        write_together({tmp_path / "a.csv": written.append, tmp_path / "plots" / "a.png": written.append})
    assert info.value.path == tmp_path / "plots" / "a.png" and written == []
    assert _files(tmp_path) == {}


def test_a_refused_rename_puts_the_earlier_outputs_back(tmp_path, monkeypatch):
    previous = _previous_set(tmp_path / "a.csv", tmp_path / "a.json")  # (a.png: new on this run)
    real, refused = os.replace, []

    def replace(src, dst):
        if Path(dst) == tmp_path / "a.json" and not refused:  # (putting the previous one back is not refused)
            refused.append(dst)
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        real(src, dst)

    monkeypatch.setattr(together.os, "replace", replace)
    with pytest.raises(DevolensError, match="cannot write output: Permission denied") as info:
        write_together(_writers(tmp_path), remove=[tmp_path / "a.csv"])
    assert info.value.path == tmp_path / "a.json"
    _same(previous)
    assert not (tmp_path / "a.png").exists()
    _no_temporaries(tmp_path)


def test_a_signal_during_the_renames_waits_for_them(tmp_path, monkeypatch):
    """Ctrl-C (or the devolens command's SIGTERM) while the outputs are renamed is held until all are in place."""
    _previous_set(tmp_path / "a.csv", tmp_path / "a.png", tmp_path / "a.json")
    real, sent = os.replace, []

    def replace(src, dst):
        real(src, dst)
        if not sent:  # after the first output is in place
            sent.append(True)
            signal.raise_signal(signal.SIGINT)  # (to this thread: os.kill may reach another one, late)

    monkeypatch.setattr(together.os, "replace", replace)
    assert callable(signal.getsignal(signal.SIGINT))  # (Python's Ctrl-C handler: raises KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        write_together(_writers(tmp_path))
    assert _files(tmp_path) == {n: f"new {n}\n".encode() for n in ("a.csv", "a.json", "a.png")}


def test_an_interruption_between_two_renames_puts_the_previous_set_back(tmp_path, monkeypatch):
    """Whatever cuts the renames short (here an exception right after the first output was moved aside, before
    anything records it) leaves the previous set whole: the undo goes by which file each path names."""
    previous = _previous_set(tmp_path / "a.csv", tmp_path / "a.png", tmp_path / "a.json")
    real, cut = os.replace, []

    def replace(src, dst):
        real(src, dst)
        if not cut:
            cut.append(dst)
            raise KeyboardInterrupt

    monkeypatch.setattr(together.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        write_together(_writers(tmp_path))
    _same(previous)
    _no_temporaries(tmp_path)


def test_a_swallowed_signal_commits_nothing(tmp_path, monkeypatch):
    previous = _previous_set(tmp_path / "a.csv", tmp_path / "a.json")
    monkeypatch.setattr(atomic, "received_signals", [signal.SIGTERM])
    with pytest.raises(atomic.Terminated):
        write_together(_writers(tmp_path))
    _same(previous)
    assert not (tmp_path / "a.png").exists()
    _no_temporaries(tmp_path)


# ---------------------------------------------------------------------------------------------- the commands


def _cd(path: Path, cells: int) -> Path:
    names = ["ABa", "ABp", "EMS", "P2"][:cells]
    rows = [(c, t, 1.0, 10 * i, 10 * i, 10, 0) for t in (1, 2) for i, c in enumerate(names)]
    return write_cd(path, rows)


def test_lineage_populations_plot_stopped_leaves_the_previous_set(tmp_path, monkeypatch, capsys):
    """The plot was drawn ~3 s after the CSV and its record were committed: a SIGTERM then left the new counts
    beside the previous table's plot."""
    from devolens.viz import plots

    out, record, png = tmp_path / "pops.csv", tmp_path / "pops.json", tmp_path / "pops.png"
    previous = _previous_set(out, record, png)
    monkeypatch.setattr(plots, "plot_populations", _interrupt)
    code = main(["lineage", "populations", str(_cd(tmp_path / "CD.csv", 4)), "--out", str(out), "--plot", str(png)])
    assert code != 0
    _same(previous)
    _no_temporaries(tmp_path)


def test_lineage_populations_unwritable_plot_writes_nothing(tmp_path, monkeypatch, capsys):
    """A first run whose plot cannot be written left a CSV and a record naming a plot that does not exist."""
    from devolens.viz import plots

    def refused(pops, path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(plots, "plot_populations", refused)
    table = _cd(tmp_path / "CD.csv", 4)
    out = tmp_path / "o" / "pops.csv"
    code = main(["lineage", "populations", str(table), "--out", str(out), "--plot", str(tmp_path / "o" / "p.png")])
    assert code == 2
    assert capsys.readouterr().err.endswith(f"error: {tmp_path / 'o' / 'p.png'}: cannot write output: "
                                            "Permission denied\n")
    assert _files(tmp_path / "o") == {}
    monkeypatch.undo()  # and with the plot: the three, the record naming the plot
    assert main(["lineage", "populations", str(table), "--out", str(out), "--plot", str(tmp_path / "o" / "p.png")]) == 0
    assert sorted(_files(tmp_path / "o")) == ["p.png", "pops.csv", "pops.json"]
    assert json.loads((tmp_path / "o" / "pops.json").read_text())["plot"] == str(tmp_path / "o" / "p.png")


def test_population_stopped_before_its_record_leaves_the_previous_set(tiny_zoo, tmp_path, monkeypatch):
    """population wrote its CSV (and plot), worked out its notes, then wrote its record: a stop in between left the
    new CSV beside the previous run's record (another input, frame count, notes)."""
    from devolens.cli import predict
    from devolens.io.images import write_png
    from test_s28_outputs import _frame

    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        write_png(_frame(seed=i), src / f"t{i + 1:03d}.png")
    out = tmp_path / "p.csv"
    previous = _previous_set(out, tmp_path / "p.json", tmp_path / "p.png")
    monkeypatch.setattr(predict, "_population_record", _interrupt)
    assert main(["population", str(src), "--out", str(out)]) != 0
    _same(previous)
    _no_temporaries(tmp_path)


def test_identify_stopped_before_its_record_leaves_the_previous_set(tmp_path, monkeypatch):
    from devolens.cli import identify
    from test_identity import needs_zoo, toy_embryo

    if needs_zoo.args[0]:
        pytest.skip(needs_zoo.kwargs.get("reason", "no identity model"))
    src = tmp_path / "toy.csv"
    toy_embryo(times=2).to_csv(src, index=False)
    out = tmp_path / "c.csv"
    previous = _previous_set(out, tmp_path / "c.json")
    monkeypatch.setattr(identify, "_identify_record", _interrupt)
    assert main(["identify", str(src), "--out", str(out), "--tta", "1"]) != 0
    _same(previous)
    _no_temporaries(tmp_path)


def test_evaluate_stopped_before_its_images_csv_leaves_the_previous_set(tmp_path, monkeypatch):
    from _train_data import make_pairs, tiny_recipe
    from devolens.cli import train as train_cli
    from devolens.train.trainer import train

    data = make_pairs(tmp_path / "A", groups=2, per_group=2, size=32)
    rec = tiny_recipe(name="tiny_nuclei", data={"target": "boundary", "channels": 1, "val_fraction": 0.34},
                      loss={"name": "ce_dice"}, train={"epochs": 1, "batch_size": 4, "overlay_samples": 0,
                                                       "threads": 1})
    run = tmp_path / "run"
    train(rec, data, run, device="cpu")
    metrics = tmp_path / "m.json"
    previous = _previous_set(metrics, tmp_path / "m_images.csv")
    monkeypatch.setattr(train_cli, "images_csv", _interrupt)
    assert main(["evaluate", str(run), "-d", str(data), "--json", str(metrics)]) != 0
    _same(previous)
    _no_temporaries(tmp_path)
