"""objects.csv's columns in micrometres: a pixel size as micrometres per pixel, and the objects' centroids and areas
at it. One place for ``segment nuclei``, ``segment livedead`` and the library's
:meth:`devolens.predict.livedead.LiveDeadPredictor.predict_file` (a light module: the command line imports it)."""

from __future__ import annotations

import numpy as np

#: objects.csv's columns in micrometres, where the pixel size is known (:func:`micron_cells`)
MICRON_COLUMNS = ("x_um", "y_um", "area_um2")


def um_per_pixel(pixel) -> tuple[float, float] | None:
    """Micrometres per pixel along x and y of a pixel size ``(x, y, unit)``; None for none, or a unit that is no
    metric length (``inch``, ImageJ's ``pixel``: :func:`devolens.io.stacks.to_microns`)."""
    if pixel is None:
        return None
    from devolens.io.stacks import to_microns

    x, y = to_microns(pixel[0], pixel[2]), to_microns(pixel[1], pixel[2])
    return None if x is None or y is None or not (x > 0 and y > 0) else (x, y)


def micron_cells(obj: dict, um: tuple[float, float] | None) -> list:
    """objects.csv's ``x_um``, ``y_um`` and ``area_um2`` (:data:`MICRON_COLUMNS`) of objects (``obj``: arrays
    ``label``, ``x``, ``y``, ``area`` in pixels) at ``um`` micrometres per pixel (x, y), to 3 decimals; empty cells
    where the file records no pixel size (``um`` None)."""
    if um is None:
        return [[None] * len(obj["label"])] * 3
    return [np.round(obj["x"] * um[0], 3), np.round(obj["y"] * um[1], 3), np.round(obj["area"] * (um[0] * um[1]), 3)]


def micron_columns(rows, um: tuple[float, float] | None) -> dict:
    """The micron columns (:data:`MICRON_COLUMNS`) of objects.csv rows (a DataFrame of ``id``, ``x``, ``y``,
    ``area``: numbers, or their text as the table holds it) at ``um`` micrometres per pixel: object Series on the
    rows' index whose cells are each number's text (past a table's own float format) or empty (``um`` None)."""
    import pandas as pd

    obj = {"label": rows["id"].to_numpy(), **{k: rows[k].astype(float).to_numpy() for k in ("x", "y", "area")}}
    return {column: pd.Series([None if v is None else str(float(v)) for v in cells], index=rows.index, dtype=object)
            for column, cells in zip(MICRON_COLUMNS, micron_cells(obj, um))}
