"""Render lineage tables into a dataset on disk (frames, label TIFFs, frames.csv, video).

Layout written under ``out``::

    frames/tNNN.png              rendered frame (NNN = time point, zero-padded to 3 digits;
                                 ``<embryo>_tNNN.png`` when several/simulated embryos, the
                                 name cleaned for a file: ``emb A/1`` -> ``emb_A_1``)
    labels/tNNN_labels.tif       uint16 instance labels 1..K (nuclei, or cells for membranes)
    membranes/tNNN_membrane.png  membrane mask, 0/255 (kind "membrane" only)
    frames.csv                   file,time,embryo,A,E,M,P,C,D,Z,total,artifact (embryo: the table's
                                 own embryo name, to join back to it; cleaned only in file names),
                                 and video_frame with ``video=True``
    objects.csv                  file,label,cell,x,y,depth,radius,area,visible,label_x,label_y
                                 (nuclei, clean frames; only the header when no frame is clean):
                                 each labelled nucleus; ``x, y`` its 3-D centre projected into
                                 the frame, ``label_x, label_y`` the centroid of its label's pixels
                                 (see below); ``visible`` = share of its footprint not hidden
                                 behind nearer nuclei
    render.json                  the settings, and for each embryo what its frames were rendered with
                                 (see below)
    video.mp4                    timelapse of the written frames (with ``video=True``), the embryos one
                                 after another when there are several

``frames.csv`` has one row per rendered time point; ``artifact`` is ``""`` for a clean
frame or the kind (see :mod:`devolens.render.artifacts`). A ``dropped`` frame has an empty
``file`` (nothing was written for it); a ``duplicate`` frame repeats the previous image
and labels. With ``video=True`` a last column ``video_frame`` gives the row's frame in ``video.mp4`` (0-based,
the video's own numbering, as ``devolens curate frames`` and ``devolens segment`` number a video's frames); it is
empty for a ``dropped`` row, which the video leaves out, so that after a dropped time point the video's frame N is
no longer frames.csv's row N: join on ``video_frame``. The population columns are those of the table at that time
point, whatever the artifact: a ``duplicate`` row counts the table at its own time point while its image and labels show
the previous frame's. A ``red_patch`` frame's labels under the patch are 0 and the others renumbered 1..K.
Polar bodies (rows named ``polar1``, ``polar2``: :func:`~devolens.lineage.populations.is_polar_body`) are no cells
of the embryo: frames.csv does not count them (nor does ``devolens lineage populations``), and the frames do not
draw them either: no label, no objects.csv row, no membrane cell.

objects.csv's ``x, y`` are where the nucleus's centre projects (frame pixels): for a partly hidden nucleus
that point can lie outside its own label, even inside a nearer nucleus's label. ``label_x, label_y`` are the
centroid of the label's pixels (x the column, y the row, from 0 at the first pixel's centre), what
``devolens segment``'s objects.csv calls ``x, y``: compare those with a segmentation's.

``render.json`` holds, under ``embryos``, one entry per embryo (keyed by its name, as frames.csv's ``embryo``
says it: the table's own, ``<name>_<i>`` for the i-th of tables of one name): ``seed`` (the embryo's seed, the
``reporter_key`` of its nuclei frames), ``optics`` (nuclei) or ``membrane`` (membrane parameters) and
``pose`` (``center``, ``angle``, ``scale``: frame pixels per table pixel, ``flip``) that every frame of it was
rendered with, and ``frames``: one record per time point (``time``, ``file``, ``seed`` the frame's seed; for
membranes ``z``, the slice in table planes; for a frame with a single-frame artifact ``artifact``: its
``kind`` and where it is, as :func:`~devolens.render.artifacts.apply_frame_artifact` drew it: ``box``
(y0, y1, x0, x1 of a red patch), ``rows`` (of a red line) or ``factor`` (of a dark or bright frame)). With
``vary="frame"`` each frame draws its own optics (and pose
with ``pose="random"``; its own slice for membranes): the embryo's ``optics``/``membrane`` and ``pose`` are then
null and each frame record holds its own. A ``duplicate`` frame's record holds those of the frame it repeats
(``repeats``: its time; its ``artifact`` too when that frame had one); a ``dropped`` one only its time. The
clean frame is reproduced from a record by
``render_nuclei_frame(table, time, size=size, seed=seed, rgb=rgb, optics=OpticsParams(**optics),
pose=Pose(**pose), reporter_key=<embryo seed>, min_visible=..., drop_slivers=...)`` or
``render_membrane_frame(table, time, z=z, size=size, seed=seed, params=MembraneParams(**membrane),
pose=Pose(**pose))``, given the whole table that was rendered, as it was read (exact copies of rows may stay:
they are drawn, counted and measured once everywhere): the pose is relative to the embryo's geometry
(:func:`~devolens.render.geometry.embryo_geometry`), measured on all of the table's rows, and the mitotic
stages on each cell's first and last time points, so a subset of the table (some time points, one embryo
cut from a bigger table otherwise than ``--embryo`` reads it) gives another frame. ``pixel_size`` says that
the frame's pixel size in micrometres is unknown: lineage
tables record no pixel size, so a frame pixel is ``1 / scale`` table pixels and no more can be said (the label
TIFFs carry no resolution).

``video.mp4`` has the frames' size, rounded up to even sides (H.264's yuv420p needs them): with an odd
``size`` its last row or column repeats the one before, one pixel more than the frames and labels.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from devolens import checks
from devolens.errors import DevolensError, DevolensValueError, listed, shown_path
from devolens.io.atomic import foreign_entries, signals_held, staged_folder, write_csv, write_text
from devolens.io.images import read_image, write_label_tif, write_png
from devolens.render.artifacts import (
    ARTIFACT_KINDS,
    FRAME_KINDS,
    OPTIONAL_KINDS,
    apply_frame_artifact,
    check_kinds,
    plan_artifacts,
)
from devolens.render.geometry import cached, default_pose, embryo_geometry, random_pose, table_fingerprint
from devolens.render.membranes import MembraneParams, render_membrane_frame
from devolens.render.nuclei import (
    LETTERS, _by_time, check_table, check_time_point, frame_size, render_nuclei_frame,
)
from devolens.render.optics import OpticsParams

__all__ = ["render_dataset", "select_times", "simulate_tables", "FRAMES_COLUMNS", "frame_name", "fixed_params",
           "is_render", "check_render_folder"]

FRAMES_COLUMNS = ("file", "time", "embryo", *LETTERS, "total", "artifact")
#: frames.csv's last column with ``video=True``: the row's frame in video.mp4 (0-based; empty for a dropped row)
VIDEO_FRAME_COLUMN = "video_frame"
#: objects.csv (nuclei renders): one row per labelled nucleus of each clean frame
#: ``x, y`` the projected 3-D centre, ``label_x, label_y`` the centroid of the label's pixels (last: added later)
OBJECTS_COLUMNS = ["file", "label", "cell", "x", "y", "depth", "radius", "area", "visible", "label_x", "label_y"]
#: objects.csv's positions and sizes in frame pixels, written to 3 decimals (as label_x, label_y are)
OBJECTS_DECIMALS = {"x": 3, "y": 3, "depth": 3, "radius": 3}
KINDS = ("nuclei", "membrane")
#: every entry :func:`render_dataset` may write into its folder (the layout above); keep in step with it:
#: :func:`render_dataset` (and so ``devolens render``) replaces exactly these when it renders again into a folder
OUTPUT_ENTRIES = ("frames", "labels", "membranes", "frames.csv", "objects.csv", "render.json", "video.mp4")
#: render.json's ``pixel_size``: what is known of a frame pixel in micrometres (nothing: see the module's doc)
PIXEL_SIZE_UNKNOWN = {
    "um_per_frame_pixel": None,
    "why": "the table's pixel size is unknown (lineage tables record none): a frame pixel is 1 / scale table "
           "pixels, scale each embryo's pose scale",
}


def fixed_params(optics, kind: str = "nuclei") -> dict:
    """The microscope fields ``optics`` fixes for a render of ``kind``, checked: ``{}`` for None.

    ``optics`` is an :class:`~devolens.render.optics.OpticsParams` (a :class:`~devolens.render.membranes.
    MembraneParams` for membranes), which fixes every field, or a dict of some of their fields (the others are
    drawn as without it). The dict's values are checked as the class checks them, field by field.

    Raises
    ------
    DevolensError
        Another type, the other kind's class, unknown field names (listed, with the valid ones) or a value out of
        its range (naming the field and the range).
    """
    if optics is None:
        return {}
    cls = OpticsParams if kind == "nuclei" else MembraneParams
    other = MembraneParams if kind == "nuclei" else OpticsParams
    if isinstance(optics, cls):
        return asdict(optics)
    if isinstance(optics, other):
        raise DevolensError(f"optics for kind {kind!r} must be a {cls.__name__} or a dict of its fields, "
                            f"got a {other.__name__}")
    if not isinstance(optics, dict):
        raise DevolensError(f"optics must be a {cls.__name__} or a dict of some of its fields (the others drawn "
                            f"at random), got {type(optics).__name__}")
    names = [f.name for f in fields(cls)]
    unknown = [str(k) for k in optics if k not in names]
    if unknown:
        raise DevolensError(f"unknown {cls.__name__} field(s) for kind {kind!r}: {', '.join(unknown)} (the fields: "
                            f"{', '.join(names)})")
    if not optics:
        raise DevolensError(f"optics is an empty dict: give some {cls.__name__} fields, or None to draw them all")
    checked = replace(cls(), **optics)  # checks each value (DevolensValueError naming the field and its range)
    return {k: getattr(checked, k) for k in names if k in optics}  # as the class keeps them (80.0 -> 80)


def is_render(folder: str | Path) -> bool:
    """Whether ``folder`` holds a render written by :func:`render_dataset` (``devolens render``): its render.json."""
    try:
        meta = json.loads((Path(folder) / "render.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(meta, dict) and "kind" in meta and "embryos" in meta


def check_render_folder(out: str | Path) -> Path:
    """``out`` as a Path, when a render may be written into it; else a one-line error, before any work.

    A render replaces its own entries in ``out`` (:data:`OUTPUT_ENTRIES`): that is safe in a new or empty folder, in
    a previous render, or beside unrelated files; but a folder that is no render (no render.json) and already holds
    e.g. ``frames/`` or ``labels/`` is most likely someone's data, and is refused.

    Raises
    ------
    DevolensError
        ``out`` is a file, or a folder that is no render but holds entries a render would replace (named).
    """
    out = checks.path(out, "out must be the path of the output folder (str or Path)")
    if out.exists() and not out.is_dir():
        raise DevolensError("output exists and is not a folder", path=out)
    if out.is_dir() and not is_render(out):
        clash = sorted(name for name in OUTPUT_ENTRIES if (out / name).exists())
        if clash:
            raise DevolensError(
                f"folder is not a previous render (no render.json) but holds {', '.join(clash)}, which a render "
                "would replace; choose a new or empty folder", path=out,
            )
    elif out.is_dir():  # a previous render: its folders are replaced whole, so they must hold its files alone
        found = foreign_entries(out, {name: (lambda e, p=pattern: e.is_file() and p.fullmatch(e.name) is not None)
                                      for name, pattern in _OWN_FILES.items()}, through_links=True)
        if found:
            name = found[0].split("/", 1)[0]  # (the first folder holding any: said alone)
            foreign = [f.split("/", 1)[1] for f in found if f.split("/", 1)[0] == name]
            raise DevolensError(f"{shown_path(out / name)} holds files devolens render did not write "
                                f"({listed(foreign, 5)}): move them or give another --out")
    return out


#: the files a render writes in each folder it replaces whole (:func:`frame_name`: ``tNNN`` or ``<embryo>_tNNN``),
#: which :func:`check_render_folder` tells from files of the user's own (a render into its folder refuses those)
_OWN_FILES = {"frames": re.compile(r"(?:.+_)?t\d{3,}\.png"),
              "labels": re.compile(r"(?:.+_)?t\d{3,}_labels\.tif"),
              "membranes": re.compile(r"(?:.+_)?t\d{3,}_membrane\.png")}


def _record_keys(record) -> dict:
    """``record`` of :func:`render_dataset`, checked before any work: ``{}`` for None."""
    if record is None:
        return {}
    if not isinstance(record, dict) or not all(isinstance(k, str) for k in record):
        raise DevolensError("record must be a dict of keys (str) to add to render.json, or None, got "
                            f"{type(record).__name__}")
    own = sorted(set(record) & _OWN_KEYS)
    if own:
        raise DevolensError(f"record cannot replace render.json's own key(s) {', '.join(map(repr, own))}: "
                            "give your keys other names")
    try:
        json.dumps(record, default=float)
    except (TypeError, ValueError) as exc:
        raise DevolensError(f"record must hold what JSON can write (numbers, text, lists, dicts): {exc}") from None
    return dict(record)


#: the keys of render.json that :func:`render_dataset` writes itself (a ``record`` may not replace them)
_OWN_KEYS = frozenset({"kind", "size", "seed", "artifacts", "pose", "vary", "rgb", "embryos", "artifact_kinds",
                       "optics_fixed", "min_visible", "drop_slivers", "pixel_size", "devolens", "devolens_version",
                       "times", "every", "video", "fps", "prefix"})


def frame_name(time: int, embryo: str | None = None) -> str:
    """Stem of a frame's files: ``tNNN`` or ``<embryo>_tNNN`` (time zero-padded to 3)."""
    stem = f"t{int(time):03d}"
    return stem if embryo is None else f"{embryo}_{stem}"


def select_times(table: pd.DataFrame, times: Sequence[int] | None = None, every: int = 1, *,
                 what: str = "the table") -> list[int]:
    """The time points to render: ``times`` (all of the table's by default), every ``every``-th of them (of the time
    points present: a gap in the table is not counted).

    ``what`` names the table in the error (``"simulated embryo sim7"``; default ``"the table"``).

    Raises
    ------
    DevolensError
        ``every`` < 1, or a requested time point absent from the table (the message gives the table's time
        points with their gaps: ``it has 1..360 except 150``).
    """
    every = checks.whole(every, "every", 1)
    present = sorted(cached(table, "by_time", _by_time))  # checks the time column (NaN, 1.5: an error)
    if times is None:
        chosen = present
    else:
        if isinstance(times, (str, bytes)) or not isinstance(times, Iterable):
            raise DevolensError(f"times must be a list of time points (e.g. [{times!r}]), got {type(times).__name__}")
        times = [checks.whole(t, "a time point", floats=True, error=DevolensValueError) for t in times]
        if not times:
            raise DevolensError("times is empty: no time points to render (None renders them all)")
        missing = sorted(set(times) - set(present))
        if missing:
            from devolens.io.tables import time_points_text, time_spans_text

            # the table's time points with their gaps: "it has 1..360" alone read as if 150 were among them
            raise DevolensError(
                f"time point(s) {time_spans_text(missing)} not in {what} (it has {time_points_text(present)})",
                path=table.attrs.get("source"),
            )
        chosen = sorted(set(int(t) for t in times))
    return chosen[::every]


def simulate_tables(n: int, seed: int = 0, n_cells: int | None = None) -> list[pd.DataFrame]:
    """Simulate ``n`` digital embryos with seeds derived from ``seed``.

    Returns
    -------
    list of DataFrame
        Tidy tables (embryo names ``sim<seed_i>``).
    """
    from devolens.lineage.simulate import simulate_embryo

    if n < 1:
        raise DevolensError(f"n must be at least 1 (the number of embryos to simulate), got {n}")
    seeds = np.random.SeedSequence(int(seed)).generate_state(n, dtype=np.uint32) % 1_000_000_000
    return [simulate_embryo(int(s), n_cells=n_cells) for s in seeds]


def _without_copies(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` without exact copies of rows (a table saved twice), as ``devolens lineage populations`` counts it:
    frames.csv then counts each nucleus once, as the labels draw it. Warns (:class:`~devolens.lineage.populations.
    CopiedRowsWarning`) when some were dropped; ``devolens render`` drops them on reading, with its note."""
    import warnings

    from devolens.lineage.populations import CopiedRowsWarning, copies_note, drop_copies

    out, n = drop_copies(table)
    if n:
        warnings.warn(copies_note(n), CopiedRowsWarning, stacklevel=3)
    return out


def _embryo_name(table: pd.DataFrame, index: int) -> str:
    if "embryo" in table.columns and len(table):
        name = str(pd.DataFrame(table, copy=False)["embryo"].iloc[0])
        if name:
            return name
    return f"embryo{index}"


def _safe(name: str) -> str:
    """``name`` fit for a file name (``emb A/1`` -> ``emb_A_1``): only for the files' names; frames.csv and
    render.json keep the embryo's own name."""
    return "".join(c if (c.isalnum() or c in "-_.") else "_" for c in name)


def _times_per_table(times, n: int) -> tuple[list, bool]:
    """``times`` of :func:`render_dataset` as one entry per table: the same for all (None, or a sequence of time
    points), or each its own when ``times`` holds one sequence (or None) per table; and whether it did."""
    if times is None or isinstance(times, (str, bytes)) or not isinstance(times, Iterable):
        return [times] * n, False  # select_times refuses what is no list of time points
    times = list(times)
    nested = [t is None or (isinstance(t, Iterable) and not isinstance(t, (str, bytes))) for t in times]
    if not (times and all(nested)):
        return [times] * n, False
    if len(times) != n:
        raise DevolensError(f"times holds {len(times)} lists of time points for {n} table(s): give one per table, "
                            "or one list of time points for all")
    if not any(t is None or len(list(t)) for t in times):
        raise DevolensError("times: every table's list of time points is empty: no time points to render")
    return [None if t is None else list(t) for t in times], True


_JOB_TABLES: list = []
_JOB_GEOMS: list = []
_JOB_PRINTS: list = []  # each table's table_fingerprint, hashed once per render rather than once per frame


def _set_job_tables(tables, geoms) -> None:
    from devolens.render.geometry import table_fingerprint

    global _JOB_TABLES, _JOB_GEOMS, _JOB_PRINTS
    _JOB_TABLES, _JOB_GEOMS = list(tables), list(geoms)
    _JOB_PRINTS = [table_fingerprint(t) for t in _JOB_TABLES]


# how long a render waits for its worker pool to stop before it kills the workers left (seconds)
POOL_STOP_WAIT = 1.0


def _stop_pool(pool, wait: float | None = None) -> None:
    """Stop a render's worker ``pool`` without ever waiting on it for ever.

    ``Pool.terminate()`` takes the pool's queue locks, and a worker that died holding one (killed, by the SIGTERM
    that ``timeout``, Slurm or ``kill -- -PGID`` send to every process of the job, while it waited for a frame to
    render or sent one back) never gives it back: ``terminate(); join()`` then waited for ever. So it runs in a
    thread here, given ``wait`` seconds (:data:`POOL_STOP_WAIT`); the workers still running after them are killed
    (SIGKILL) and the thread, waiting on a lock no one can give back, is left behind (a daemon: it ends with the
    process). The workers render only: they hold nothing that must be finished or undone.
    """
    import threading

    wait = POOL_STOP_WAIT if wait is None else wait
    failed: list[BaseException] = []

    def terminate() -> None:
        try:
            pool.terminate()
            pool.join()
        except BaseException as e:  # (raised here, in the caller's thread)
            failed.append(e)

    with signals_held():  # a second stop signal waits for the workers to be gone
        stopper = threading.Thread(target=terminate, name="devolens-render-pool-stop", daemon=True)
        stopper.start()
        stopper.join(wait)
        if stopper.is_alive():
            workers = list(getattr(pool, "_pool", ()))  # (its processes: the pool has no public name for them)
            for worker in workers:
                if worker.exitcode is None:
                    worker.kill()
            for worker in workers:
                worker.join(wait)  # reaped (killed: at once)
    if failed:
        raise failed[0]


def _frame_draw(kind: str, f_seed: int, fixed: dict):
    """The parameters a frame of ``vary="frame"`` draws for itself, with the ``fixed`` fields replaced.

    Drawn from the first child of the frame's seed, as :func:`~devolens.render.nuclei.render_nuclei_frame` and
    :func:`~devolens.render.membranes.render_membrane_frame` draw them when given none: the fields not fixed are
    those they would have drawn, and their other draws (pose, slice, noise: the other children) are untouched.
    """
    cls = OpticsParams if kind == "nuclei" else MembraneParams
    drawn = cls.sample(np.random.default_rng(np.random.SeedSequence(int(f_seed)).spawn(1)[0]))
    return replace(drawn, **fixed)


def _render_job(job):
    """Render one clean frame (runs in a worker process): image, labels, mask, counts, objects, and what it was
    rendered with (``optics``/``membrane``, ``pose``, ``z``)."""
    kind, ei, t, f_seed, size, rgb, f_pose, e_seed, optics, mparams, vary, fixed, min_visible, slivers = job
    table, geom, fp = _JOB_TABLES[ei], _JOB_GEOMS[ei], _JOB_PRINTS[ei]
    if vary == "frame" and fixed:
        optics, mparams = (_frame_draw(kind, f_seed, fixed), None) if kind == "nuclei" else (
            None, _frame_draw(kind, f_seed, fixed))
    if kind == "nuclei":
        fr = render_nuclei_frame(table, t, size=size, seed=f_seed, rgb=rgb, geometry=geom,
                                 optics=optics, pose=f_pose, reporter_key=e_seed, fingerprint=fp,
                                 min_visible=min_visible, drop_slivers=slivers)
        used = {"optics": fr.optics.as_dict(), "pose": asdict(fr.pose)}
        return fr.image, fr.labels, None, fr.counts, fr.centroids, used
    fr = render_membrane_frame(table, t, size=size, seed=f_seed, geometry=geom, params=mparams, pose=f_pose,
                               z=None if vary == "frame" else (geom.cz / geom.zscale), fingerprint=fp)
    used = {"membrane": asdict(fr.params), "pose": asdict(fr.pose), "z": float(fr.z)}
    return fr.image, fr.labels, fr.membrane, fr.counts, None, used


def check_named_times(plans: Sequence[Sequence[int]], labels: Sequence[str]) -> None:
    """Refuse, before anything is rendered, a planned time point below 0.

    A frame's files are named by its time point (:func:`frame_name`: ``t007``); a negative one has no such name that
    sorts in time order among the others (``t-01`` would sort before ``t-02``, and a folder reader's natural order
    puts both after ``t999``) and reads back as a time point (``devolens curate frames`` reads ``tNNN``). Lineage
    tables may number time so (``lineage populations`` counts them): such a table renders once its time starts at
    0 or later, or with those time points left out.

    Parameters
    ----------
    plans : sequence of sequences of int
        Each table's time points to render (:func:`select_times`).
    labels : sequence of str
        Each table's name in a message (``"emb1"``): with several tables the error names the embryo.

    Raises
    ------
    DevolensError
        The first table with a negative time point to render: those time points (the first few) and what to do.
    """
    for label, tlist in zip(labels, plans):
        neg = sorted({int(t) for t in tlist if int(t) < 0})
        if not neg:
            continue
        shown = ", ".join(map(str, neg[:5])) + (f" (and {len(neg) - 5} more)" if len(neg) > 5 else "")
        who = f"embryo {label}: " if len(plans) > 1 else ""
        raise DevolensError(
            f"{who}cannot render time point{'s' if len(neg) > 1 else ''} {shown}, below 0: frames are named by their "
            "time point (frames/t000.png, t001.png...), and a negative one would neither sort in time order nor "
            "read back as a time; leave them out (--times, or times in Python) or add a constant to the table's "
            "time column so that it starts at 0 or later"
        )


def check_planned_times(tables: Sequence[pd.DataFrame], pairs: Iterable[tuple[int, int]],
                        labels: Sequence[str]) -> None:
    """Refuse, before any frame is rendered, a planned time point whose rows a renderer would refuse.

    Parameters
    ----------
    tables : sequence of DataFrame
        The checked tidy lineage tables (:func:`~devolens.render.nuclei.check_table`).
    pairs : iterable of (int, int)
        The planned ``(table_index, time)`` pairs, checked in this order
        (:func:`~devolens.render.nuclei.check_time_point`: a time point the table has, each row with a finite
        position); each table is hashed once (:func:`~devolens.render.geometry.table_fingerprint`), what is checked
        is cached with it.
    labels : sequence of str
        Each table's name in a message (e.g. ``"embryo e1"``): with several tables the error starts with it.

    Raises
    ------
    DevolensError
        The first pair's refusal, as :func:`~devolens.render.nuclei.check_time_point` words it.
    """
    prints: dict[int, bytes | None] = {}
    for k, t in pairs:
        if k not in prints:
            prints[k] = table_fingerprint(tables[k])
        try:
            check_time_point(tables[k], t, prints[k])
        except DevolensError as e:
            if len(tables) == 1:
                raise
            raise type(e)(f"{labels[k]}: {e.message}", path=e.path) from None


def render_dataset(
    tables: pd.DataFrame | Iterable[pd.DataFrame],
    out: str | Path,
    *,
    kind: str = "nuclei",
    times: Sequence[int] | None = None,
    every: int = 1,
    size: tuple[int, int] = (512, 752),
    artifacts: float = 0.0,
    artifact_kinds: Sequence[str] = ARTIFACT_KINDS,
    video: bool = False,
    fps: float = 8.0,
    seed: int = 0,
    rgb: bool = True,
    pose: str = "default",
    vary: str = "embryo",
    optics: OpticsParams | MembraneParams | dict | None = None,
    min_visible: float = 0.0,
    drop_slivers: bool = False,
    prefix: bool | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    record: dict | None = None,
) -> pd.DataFrame:
    """Render tables into ``out`` (frames, label TIFFs, frames.csv, optional video).

    As ``devolens render`` does, the render is written into a hidden folder beside ``out`` and moved into place
    when it is complete: rendering again into a folder replaces the previous render whole (its frames, labels,
    membranes, frames.csv, objects.csv, render.json and video.mp4 that this render does not write are removed, so
    no earlier frame is left beside the new ones), other files in ``out`` are kept, and a render that fails or is
    stopped leaves ``out`` as it was. A folder that is no render (no render.json) but holds any of those entries
    is refused (:func:`check_render_folder`).

    Parameters
    ----------
    tables : DataFrame or iterable of DataFrame
        Tidy lineage tables, one embryo each. Exact copies of a row (a table saved twice) are
        drawn and counted once, with a warning (as ``devolens lineage populations`` counts them).
    out : str or Path
        Output folder (created; a previous render in it is replaced, other files kept: see above).
    kind : {"nuclei", "membrane"}
        Histone-GFP maximum projections, or membrane-marker z-slices.
    times : sequence of int, or one per table, optional
        Time points to render (default all of each table's); a list with one sequence of time points (or None: all)
        per table gives each table its own, an empty one rendering none of that table (it is then absent from
        frames.csv and render.json; the other tables' frames are those they get without it).
    every : int
        Render every ``every``-th of those time points.
    size : (int, int)
        Frame height and width, pixels. The default pose scales each embryo to the frame (its eggshell 80 % of
        the width, or of the height across): a larger frame zooms in rather than showing more around the
        embryo. render.json records each embryo's pose scale (frame pixels per table pixel).
    artifacts : float
        Probability in [0, 1] that a frame gets an artifact (its kind recorded in frames.csv; where a single-frame
        artifact is, in the frame's render.json record).
    artifact_kinds : sequence of str
        The kinds drawn from (:data:`~devolens.render.artifacts.ARTIFACT_KINDS` by default; add ``"bright"``,
        or take :data:`~devolens.render.artifacts.ALL_KINDS`, for bright frames: a render of a given seed with the
        default kinds draws what it always drew). Recorded in render.json when not the default.
    video : bool
        Also write ``video.mp4``: the written frames in order, at ``fps``, the embryos one after another when
        there are several (a ``duplicate`` frame shown again, a ``dropped`` one left out, no gap in its timing);
        frames.csv then gets a ``video_frame`` column, each row's frame in the video (empty for a dropped one).
        With an odd side in ``size`` the video is one pixel larger on it than the frames (its last row or column
        repeated): H.264's yuv420p needs even sides.
    fps : float
        Frames per second of the video.
    seed : int
        Master seed; per-embryo and per-frame seeds derive from it.
    rgb : bool
        RGB nuclei frames (green GFP, weak red reporter); else greyscale.
    pose : {"default", "random"}
        Embryo centred and horizontal, or randomly rotated / mirrored / scaled / placed.
    vary : {"embryo", "frame"}
        Draw optics and pose once per embryo (a steady timelapse) or for every frame.
    optics : OpticsParams, MembraneParams or dict, optional
        The simulated microscope. By default every field is drawn at random (domain randomisation:
        :meth:`OpticsParams.sample <devolens.render.optics.OpticsParams.sample>`, for membranes
        :meth:`MembraneParams.sample <devolens.render.membranes.MembraneParams.sample>`) per embryo, or per frame
        with ``vary="frame"``. An ``OpticsParams`` (``MembraneParams`` for ``kind="membrane"``) fixes them all; a
        dict of some of its fields fixes those and draws the others as without it. Everything else (pose, noise,
        artifacts, the fields not fixed) is drawn as without it: fixing a field changes only that field.
        Recorded in render.json as ``optics_fixed`` (the fields fixed).
    min_visible : float
        Nuclei: a nucleus with less than this share (0 to 1) of its own footprint visible, the rest hidden behind
        nearer nuclei, gets no label and no objects.csv row (0, the default: every nucleus with a visible pixel).
    drop_slivers : bool
        Nuclei: label only the largest connected visible piece of each nucleus; the separate 1-2 px pieces of a
        partly hidden nucleus become background (see :func:`~devolens.render.nuclei.render_nuclei_frame`).
    prefix : bool, optional
        Prefix frame names with the embryo name (default: when there are several tables).
    workers : int
        Processes rendering frames in parallel (the output is the same for any number).
    progress : callable, optional
        ``progress(done, total)`` after each frame.
    record : dict, optional
        Keys to add to render.json besides its own (how the render was made: ``devolens render`` adds its
        ``command``, ``inputs`` and ``options``); JSON values, none of render.json's own keys.

    Returns
    -------
    DataFrame
        The rows of ``frames.csv``.

    Raises
    ------
    DevolensError
        A bad argument (named), a table it cannot render (a time point to render with a row without a finite
        position among them, or below 0: :func:`check_named_times`), or an ``out`` it may not write (a file; a
        folder that is no render but holds frames/, labels/...), all before anything is rendered or written.
    """
    if isinstance(tables, pd.DataFrame):
        tables = [tables]
    if isinstance(tables, (str, Path, pd.Series)) or not isinstance(tables, Iterable):
        raise DevolensError("tables must be a tidy lineage table (pandas DataFrame, e.g. from devolens.io.tables."
                            f"read_table) or a list of them, got {type(tables).__name__}")
    tables = list(tables)
    if not tables:
        raise DevolensError("no tables to render")
    checks.path(out, "out must be the path of the output folder (str or Path)")
    if kind not in KINDS:
        raise DevolensError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not checks.is_number(artifacts) or not 0.0 <= float(artifacts) <= 1.0:
        raise DevolensError(f"artifact rate must be in [0, 1], got {artifacts!r}")
    h, w = frame_size(size, low=16)
    if pose not in ("default", "random"):
        raise DevolensError(f"pose must be 'default' or 'random', got {pose!r}")
    if vary not in ("embryo", "frame"):
        raise DevolensError(f"vary must be 'embryo' or 'frame', got {vary!r}")
    fixed = fixed_params(optics, kind)
    if not (checks.is_number(min_visible) and 0.0 <= float(min_visible) <= 1.0):
        raise DevolensError(f"min_visible must be a share of a nucleus's footprint in [0, 1], got {min_visible!r}")
    if kind != "nuclei" and (min_visible or drop_slivers):
        raise DevolensError("min_visible and drop_slivers apply to nuclei renders (kind 'nuclei'), not to membranes")
    workers = checks.whole(workers, "workers", 1, floats=True, error=DevolensValueError)
    checks.whole(seed, "seed", 0, floats=True, error=DevolensValueError)
    if video and not (checks.is_number(fps) and np.isfinite(fps) and fps > 0):
        raise DevolensError(f"fps must be a positive number of frames per second, got {fps!r}")
    checks.progress_fn(progress)
    for t in tables:
        check_table(t)
        if len(t) == 0:
            raise DevolensError("table is empty", path=t.attrs.get("source"))
    tables = [_without_copies(t) for t in tables]
    # frames.csv's embryo and render.json's key: the table's own name (joins back to it), unique; files: cleaned
    embryos = [_embryo_name(t, i) for i, t in enumerate(tables)]
    if len(set(embryos)) != len(embryos):  # two tables of one name
        embryos = [f"{n}_{i}" for i, n in enumerate(embryos)]
    names = [_safe(n) for n in embryos]
    if len({n.casefold() for n in names}) != len(names):  # case-blind: one folder on macOS and Windows
        names = [f"{n}_{i}" for i, n in enumerate(names)]
    per_table, own_times = _times_per_table(times, len(tables))
    plans = [[] if own_times and tt is not None and not tt else  # validates before writing
             select_times(t, tt, every, what=f"the table of embryo {label}" if len(tables) > 1 else "the table")
             for t, tt, label in zip(tables, per_table, embryos)]
    check_named_times(plans, embryos)  # a negative time point: no frame name that sorts and reads back as a time
    # a row without a position at time 140: refused now, not at frame 140
    check_planned_times(tables, [(k, t) for k, tlist in enumerate(plans) for t in tlist],
                        [f"embryo {label}" for label in embryos])
    if prefix is None:
        prefix = len(tables) > 1
    rgb_frames = rgb and kind == "nuclei"
    try:  # the kinds, checked before any output exists (an empty plan draws nothing)
        artifact_kinds = check_kinds(artifact_kinds)
        plan_artifacts(0, float(artifacts), np.random.default_rng(0), rgb=rgb_frames, kinds=artifact_kinds)
    except ValueError as e:
        raise DevolensError(str(e)) from None

    extra = _record_keys(record)
    # as devolens render: staged beside it, then the folder holds exactly this render (a previous render's
    # entries that this one does not write are removed; other files kept); on an error it is as it was
    dest = check_render_folder(out)
    with staged_folder(dest, owned=OUTPUT_ENTRIES) as stage:
        out = stage.tmp
        total = sum(len(p) for p in plans)
        done = 0
        rows: list[dict] = []
        objects: list[pd.DataFrame] = []
        meta: dict = {"kind": kind, "size": [h, w], "seed": int(seed), "artifacts": float(artifacts),
                      "pose": pose, "vary": vary, "rgb": rgb_frames, "embryos": {}}
        if artifact_kinds != ARTIFACT_KINDS:  # absent from a render of the default kinds (as before they were chosen)
            meta["artifact_kinds"] = list(artifact_kinds)
        if fixed:
            meta["optics_fixed"] = fixed
        if kind == "nuclei":
            meta.update({"min_visible": float(min_visible), "drop_slivers": bool(drop_slivers)})
        meta["pixel_size"] = dict(PIXEL_SIZE_UNKNOWN)
        written: list[Path] = []
        embryo_seeds = np.random.SeedSequence(int(seed)).spawn(len(tables))
        geoms = [embryo_geometry(t) for t in tables]
        _set_job_tables(tables, geoms)
        pool = None
        try:
            if workers > 1 and total > 1:
                import multiprocessing as mp

                # fork on Linux only (macOS: unsafe with its system libraries; the workers are spawn-safe)
                ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
                with signals_held():  # a stop inside Pool() left a half-made finaliser: a traceback at exit
                    pool = ctx.Pool(min(workers, total), initializer=_set_job_tables, initargs=(tables, geoms))
            for ei, (table, tlist) in enumerate(zip(tables, plans)):
                if not tlist:  # its list of times was empty: none of it rendered (the others' draws are their own)
                    continue
                name, label = names[ei], embryos[ei]
                e_rng = np.random.default_rng(embryo_seeds[ei])
                e_seed = int(e_rng.integers(0, 2**31 - 1))
                geom = geoms[ei]
                # drawn whether fixed or not, so that fixing them changes none of the draws that follow
                optics_e = OpticsParams.sample(e_rng) if kind == "nuclei" else None
                mparams = MembraneParams.sample(e_rng) if kind == "membrane" else None
                if fixed:
                    optics_e, mparams = (replace(optics_e, **fixed), None) if kind == "nuclei" else (
                        None, replace(mparams, **fixed))
                e_pose = random_pose(geom, (h, w), e_rng) if pose == "random" else "default"
                plan = plan_artifacts(len(tlist), float(artifacts), e_rng, rgb=rgb_frames, kinds=artifact_kinds)
                art_rng = np.random.default_rng(e_rng.integers(0, 2**63 - 1))
                # what every frame is rendered with; with vary "frame" each frame draws its own (null here, in frames)
                steady_pose = vary == "embryo" or pose == "default"
                used_pose = default_pose(geom, (h, w)) if isinstance(e_pose, str) else e_pose
                meta["embryos"][label] = entry = {
                    "seed": e_seed,
                    "optics": None if optics_e is None or vary == "frame" else optics_e.as_dict(),
                    "membrane": None if mparams is None or vary == "frame" else asdict(mparams),
                    "pose": asdict(used_pose) if steady_pose else None,
                    "frames": [],
                }
                prev: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
                source: tuple[int, dict] = (0, {})  # the time point and record of the image ``prev`` holds
                jobs = []
                for t in tlist:
                    f_seed = int(np.random.SeedSequence([e_seed, int(t)]).generate_state(1)[0])
                    f_pose = "random" if (pose == "random" and vary == "frame") else e_pose
                    jobs.append((kind, ei, int(t), f_seed, (h, w), rgb_frames, f_pose, e_seed,
                                 None if vary == "frame" else optics_e, None if vary == "frame" else mparams, vary,
                                 fixed, float(min_visible), bool(drop_slivers)))
                results = pool.imap(_render_job, jobs, chunksize=2) if pool is not None else map(_render_job, jobs)
                for t, art, job, (image, labels, mask, counts, objs, used) in zip(tlist, plan, jobs, results):
                    stem = frame_name(t, name if prefix else None)
                    # what this frame's image was rendered with: the embryo's, or its own with vary "frame"
                    record = {"seed": job[3]}
                    if "z" in used:
                        record["z"] = used["z"]
                    if vary == "frame":
                        record.update({k: used[k] for k in ("optics", "membrane") if k in used})
                        if not steady_pose:
                            record["pose"] = used["pose"]
                    if art in FRAME_KINDS + OPTIONAL_KINDS:
                        image, labels, info = apply_frame_artifact(image, labels, art, art_rng)
                        record["artifact"] = {"kind": art, **{k: list(v) if isinstance(v, tuple) else v
                                                              for k, v in info.items()}}
                        if mask is not None and art == "black":
                            mask = np.zeros_like(mask)
                    repeated = art == "duplicate" and prev is not None
                    if repeated:
                        image, labels, mask = prev
                        record = {**source[1], "repeats": source[0]}
                    file, vframe = "", None
                    if art == "dropped":
                        record = {}
                    else:
                        file = f"frames/{stem}.png"
                        write_png(image, out / file)
                        write_label_tif(labels, out / "labels" / f"{stem}_labels.tif")
                        if mask is not None:
                            write_png((mask > 0).astype(np.uint8) * 255, out / "membranes" / f"{stem}_membrane.png")
                        vframe = len(written)  # its place in video.mp4, which shows the written frames in order
                        written.append(out / file)
                        prev = (image, labels, mask)
                        if not repeated:
                            source = (int(t), record)
                        if objs is not None and not art:  # per-nucleus truth of clean frames
                            objects.append(objs.assign(file=file)[OBJECTS_COLUMNS])
                    entry["frames"].append({"time": int(t), "file": file, **record})
                    rows.append({"file": file, "time": int(t), "embryo": label,
                                 **{k: int(counts[k]) for k in (*LETTERS, "total")}, "artifact": art,
                                 VIDEO_FRAME_COLUMN: vframe})
                    done += 1
                    if progress is not None:
                        progress(done, total)
        finally:
            if pool is not None:  # (bounded: a worker killed by a stop sent to the job left the pool broken)
                _stop_pool(pool)
            _set_job_tables([], [])
        df = pd.DataFrame(rows, columns=list(FRAMES_COLUMNS) + ([VIDEO_FRAME_COLUMN] if video else []))
        if video:  # whole numbers, empty (NA) for a dropped row
            df[VIDEO_FRAME_COLUMN] = df[VIDEO_FRAME_COLUMN].astype("Int64")
        if video and written:
            from devolens.io.video import write_video

            write_video((read_image(p) for p in written), out / "video.mp4", fps=fps)
        # what else decides the output (reproducibility): the version, and the options beyond those recorded above
        from devolens.provenance import version_keys

        # "devolens", as every other record of devolens names the version; "devolens_version", the older key, kept
        # for the readers of earlier render.json files
        meta.update(version_keys())
        if own_times:  # each table's own (None: all of it)
            times_used = [None if tt is None else [int(t) for t in tt] for tt in per_table]
        else:
            times_used = None if times is None else [int(t) for t in times]
        meta.update({"times": times_used, "every": int(every),
                     "video": bool(video), "fps": float(fps), "prefix": bool(prefix)})
        meta.update(extra)  # the caller's record (devolens render: its command, inputs and options)
        write_text(out / "render.json", json.dumps(meta, indent=1, default=float, ensure_ascii=False))
        if kind == "nuclei":  # the header alone when no frame is clean: a reader finds the file it expects
            write_csv(pd.concat(objects, ignore_index=True).round(OBJECTS_DECIMALS) if objects else
                      pd.DataFrame(columns=OBJECTS_COLUMNS), out / "objects.csv")
        write_csv(df, out / "frames.csv")
    return df
