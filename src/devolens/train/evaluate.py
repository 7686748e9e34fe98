"""Score a trained run's best checkpoint on a data folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from devolens.errors import DevolensError
from devolens.models.architectures import load_model
from devolens.train.recipe import load_recipe, resolved


def evaluate_run(run: str | Path, data: str | Path, batch_size: int = 8,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Metrics of ``RUN/best.safetensors`` on every sample of ``data``.

    Parameters
    ----------
    run : path
        Training run folder (from :func:`devolens.train.trainer.train`).
    data : path
        Render output, image/mask folders, or an HDF5 tile store (.h5).
    batch_size : int
        Images per forward pass.
    progress : callable, optional
        ``progress(done, total)`` in images.

    Returns
    -------
    dict
        ``run``, ``data``, ``epoch`` (0-based epoch of the checkpoint), ``n`` (samples)
        and ``metrics`` (name -> value; NaN written as null).
    """
    from devolens.data.datasets import index_dataset
    from devolens.train.trainer import evaluate_model, make_dataset

    run = Path(run)
    best = run / "best.safetensors"
    if not best.exists():
        raise DevolensError("no best.safetensors in this run (was it trained?)", path=run)
    model, cfg = load_model(best)
    if "recipe" not in cfg:
        raise DevolensError("best.json has no recipe", path=best.with_suffix(".json"))
    rec = resolved(load_recipe(cfg["recipe"]))
    if Path(data).is_file() and Path(data).suffix.lower() in (".h5", ".hdf5"):
        from devolens.data.datasets import H5TileDataset

        ds = H5TileDataset(data, target=rec["data"]["target"], normalize=rec["data"]["normalize"])
    else:
        df = index_dataset(data)
        if rec["task"] == "segmentation":
            df = df[df["labels"].notna()].reset_index(drop=True)
        if df.empty:
            raise DevolensError("no labelled samples to evaluate", path=data)
        ds = make_dataset(rec, df, train=False)
    ev = evaluate_model(model, ds, rec, None, batch_size=batch_size, amp=rec["train"]["amp"], progress=progress)
    metrics = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in ev["metrics"].items()}
    return {"run": str(run), "data": str(data), "epoch": cfg.get("epoch"), "n": len(ds), "metrics": metrics}
