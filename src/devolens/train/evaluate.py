"""Score a trained run's best checkpoint on a data folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from devolens.errors import DevolensError
from devolens.models.architectures import load_model
from devolens.train.recipe import load_recipe, resolved, validate_recipe


def evaluate_run(run: str | Path, data: str | Path, batch_size: int = 8,
                 progress: Callable[[int, int], None] | None = None, *, weights: str | Path | None = None,
                 validate: dict | None = None) -> dict[str, Any]:
    """Metrics of ``RUN/best.safetensors`` (or other weights for the same network) on every
    sample of ``data``.

    Parameters
    ----------
    run : path
        Training run folder (from :func:`devolens.train.trainer.train`).
    data : path
        Render output, image/mask folders, or an HDF5 tile store (.h5).
    batch_size : int
        Images per forward pass (>= 1).
    progress : callable, optional
        ``progress(done, total)`` in images.
    weights : path, optional
        Score these weights instead, with the run's recipe: another checkpoint of the run
        (``RUN/checkpoint.safetensors``, the last epoch), another run's ``best.safetensors``
        or a zoo folder (e.g. the shipped model), all of the run's architecture; compares
        checkpoints on the same samples with the same rules.
    validate : dict, optional
        Replaces keys of the recipe's ``validate`` section (``instances``, ``postprocess``):
        how instances are made for instance F1 and counts.

    Returns
    -------
    dict
        ``run``, ``data``, ``weights``, ``epoch`` (0-based epoch of the run's best checkpoint;
        None with other ``weights``), ``n`` (samples), ``validate`` (the rules used) and
        ``metrics`` (name -> value; NaN written as null).
    """
    from devolens.data.datasets import index_dataset
    from devolens.train.trainer import evaluate_model, make_dataset, resolve_device

    from devolens.checks import whole

    whole(batch_size, "--batch-size", 1)
    run = Path(run)
    best = run / "best.safetensors"
    if not best.exists():
        raise DevolensError("no best.safetensors in this run (was it trained?)", path=run)
    model, cfg = load_model(best)
    if "recipe" not in cfg:
        raise DevolensError("best.json has no recipe", path=best.with_suffix(".json"))
    raw = load_recipe(cfg["recipe"])
    if validate:
        raw["validate"] = {**raw["validate"], **validate}
        raw = validate_recipe(raw)
    rec = resolved(raw)
    if weights is not None:
        from devolens.train.trainer import init_weights

        model = init_weights(model, weights, grow_head=False, option="--weights")
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
    model = model.to(resolve_device("auto"))  # a GPU when there is one (wherever the run was trained)
    ev = evaluate_model(model, ds, rec, None, batch_size=batch_size, amp=rec["train"]["amp"], progress=progress)
    metrics = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in ev["metrics"].items()}
    return {"run": str(run), "data": str(data), "weights": str(weights or best),
            "epoch": cfg.get("epoch") if weights is None else None, "n": len(ds), "validate": rec["validate"],
            "metrics": metrics}

