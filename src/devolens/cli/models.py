"""``devolens models``: list the zoo's models with their headline metrics; ``models show NAME`` (the card, the
model's folder and its weights' sha256); ``models export RUN --to FOLDER`` (a training run as a model of your own;
a shipped model's name copies its folder)."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from devolens.cli._common import choice

#: the width of ``devolens models``' table where stdout is no terminal (a batch job's log) and COLUMNS is not set
LOG_WIDTH = 160

models_app = typer.Typer(
    help="The model zoo: list the shipped models (no sub-command), show one model's card, or export a training run "
         "as a model of your own.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _fmt(value) -> str:
    """A card's figure for the listing: a fraction (0 to 1: F1, accuracy, PR-AUC, Dice) to 3 decimals, so that figures
    side by side read alike (0.980 beside 0.968, 0.999 not 1); others to 3 significant digits, whole from 1000."""
    if isinstance(value, float):
        if 0.0 <= value <= 1.0:
            return f"{value:.3f}"
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    if isinstance(value, dict):
        v = value.get("value")
        return _fmt(v) if v is not None else json.dumps(value)
    return str(value)


#: the shipped cards' headline metrics in words, with their units (a model of one's own shows its keys); "%": a
#: fraction shown as a percentage
HEADLINE_WORDS: dict[str, tuple[str, str]] = {
    "instance_f1_iou50_heldout_le200": ("nucleus F1 at IoU 0.5, embryos <= 200 cells", ""),
    "instance_f1_iou50_heldout_le200_visible50": ("the same, nuclei less than half visible ignored", ""),
    "instance_f1_iou50_heldout_epic_framing": ("nucleus F1, held-out embryo filmed like EPIC movies", ""),
    "count_mae_heldout_le200": ("count error per frame (mean, nuclei)", ""),
    "reference_counts": ("nuclei in the 3 real reference frames", ""),
    "membrane_dice_heldout": ("membrane Dice", ""),
    "cell_f1_iou50_heldout": ("cell F1 at IoU 0.5", ""),
    "mae_over_mean_max_heldout": ("worst letter's error (mean, % of its mean count)", "%"),
    "total_mae_heldout": ("total error per frame (mean, cells)", ""),
    "founder_accuracy": ("founder accuracy, leave-one-embryo-out", ""),
    "depth1_accuracy": ("depth-1 accuracy, leave-one-embryo-out", ""),
    "pr_auc_live": ("PR-AUC, live nuclei", ""),
    "pr_auc_dead": ("PR-AUC, dead nuclei", ""),
    "object_f1_any": ("nucleus F1, live or dead", ""),
    "fraction_dead_error_per_well": ("dead fraction error per well", "wells"),
}


#: the issues' targets for the shipped cards' headline metrics, as (">=" or "<=", target): the listing says beside
#: such a figure whether it meets its target (the cards' limits state the targets, the default setting's figures too)
TARGETS: dict[str, tuple[str, float]] = {
    "instance_f1_iou50_heldout_le200": (">=", 0.90),  # nuclei (issue 5)
    "mae_over_mean_max_heldout": ("<=", 0.10),  # population: every letter's MAE <= 10 % of its mean (issue 5)
    "founder_accuracy": (">=", 0.95),  # identity (issue 5)
    "depth1_accuracy": (">=", 0.90),
    "pr_auc_live": (">=", 0.90),  # livedead, pooled over the held-out wells (issue 6)
    "pr_auc_dead": (">=", 0.90),
}


def _target(key: str, value) -> dict | None:
    """The project's target for a headline metric and whether the card's figure meets it (``{"op", "value", "met"}``);
    None for a metric without a target or a figure that is not a number."""
    if key not in TARGETS:
        return None
    op, goal = TARGETS[key]
    v = value.get("value") if isinstance(value, dict) else value
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return None
    return {"op": op, "value": goal, "met": bool(v >= goal if op == ">=" else v <= goal)}


def _headline(key: str, value) -> str:
    """One headline metric in words (its key for a metric the table does not know), with its target and whether
    the figure meets it where the metric has one (:data:`TARGETS`)."""
    words, unit = HEADLINE_WORDS.get(key, (key, ""))
    target = _target(key, value)
    said = "" if target is None else (
        f" (target {target['op']} " + (f"{100 * target['value']:.0f} %" if unit == "%" else f"{target['value']:.2f}")
        + f": {'met' if target['met'] else 'not met'})")
    if unit == "wells":  # {"median_abs": ..., "wells_off_by_more_than_0.05": ...}: the spread over wells
        v = value.get("value") if isinstance(value, dict) else None
        if isinstance(v, dict) and "median_abs" in v:
            return (f"{words}: median {v['median_abs']:.3f}, over 0.05 in "
                    f"{v.get('wells_off_by_more_than_0.05', '?')} of {v.get('wells', '?')} wells")
    if unit == "%":
        v = value.get("value") if isinstance(value, dict) else value
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return f"{words}: {100 * v:.0f} %{said}"
    return f"{words}: {_fmt(value)}{said}"


def _setting(setting: dict) -> list[str]:
    """A card's ``metrics_setting`` (a listing entry's ``setting``) in words: what the headline was measured with
    (precision, magnification estimate) and, where the card gives them, the figures of the CLI's default setting."""
    lines = [f"(measured: {setting['measured']})"] if setting.get("measured") else []
    if setting.get("default_figures"):
        lines.append(f"(default, {setting.get('default', '')}: {setting['default_figures']})")
    return lines


def _listing(names: list[str]) -> dict:
    """The listing as data (``models --json``): per model what the table shows, the values as the card gives them.
    The one place the fields are gathered: the table renders its rows from it (:func:`_row`), so that the table and
    the JSON cannot tell two stories."""
    from devolens.models import zoo
    from devolens.provenance import version

    models = []
    for name in names:
        card = zoo.card(name)
        wpath = zoo.ZOO_DIR / name / "weights.safetensors"
        weights = ({"file": wpath.name, "bytes": wpath.stat().st_size, "sha256": zoo.weights_sha256(name)}
                   if wpath.exists() else None)
        metrics = card.get("metrics", {}) or {}
        heads = card.get("headline") or list(metrics)[:3]
        headline = []
        for k in heads:
            if k in metrics:
                m = metrics[k]
                headline.append({"metric": k, "words": HEADLINE_WORDS.get(k, (k, ""))[0],
                                 "value": m.get("value") if isinstance(m, dict) else m,
                                 "how": m.get("how") if isinstance(m, dict) else None,
                                 "target": _target(k, m), "text": _headline(k, m)})
        given = card.get("input")  # an object: a card's words alone (identity's) as its "text"
        models.append({"name": name, "task": card.get("task"), "summary": card.get("summary"), "weights": weights,
                       "model_sha256": _model_sha256(name),
                       "int8": bool((card.get("int8") or {}).get("activations")), "headline": headline,
                       "setting": card.get("metrics_setting") or {},
                       "input": given if isinstance(given, dict) else {} if given is None else {"text": given}})
    return {"devolens": version(), "models": models}


def _model_sha256(name_or_folder) -> str | None:
    """The model's ``model_sha256``, as the outputs' records compute it (:func:`devolens.provenance.model_sha256`:
    its card and every ``.safetensors`` of its folder), so that a record can be compared with an installation; None
    where its files are missing."""
    from devolens.errors import DevolensError
    from devolens.provenance import model_sha256

    try:
        return model_sha256(name_or_folder)
    except DevolensError:
        return None


def _cell(value) -> str:
    """A listing value as a table cell (nothing for a card that gives none)."""
    return "" if value is None else str(value)


def _row(entry: dict, wide: bool) -> tuple[str, ...]:
    """A model of the listing (:func:`_listing`) as the table's row: name, task, weights (size and the sha256's
    first 12 hex digits: the version number does not change when the weights are shipped anew), int8, the headline
    metrics in words with the setting they were measured in, and the summary where the table is ``wide``."""
    weights = entry["weights"]
    size = f"{weights['bytes'] / 1e6:.1f} MB\nsha256 {weights['sha256'][:12]}" if weights else "missing"
    shown = "\n".join([h["text"] for h in entry["headline"]] + _setting(entry["setting"])) or "-"
    return (entry["name"], _cell(entry["task"]), size, "yes" if entry["int8"] else "-", shown,
            *((_cell(entry["summary"]),) if wide else ()))


@models_app.callback()
def list_models(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the listing as one JSON document: per model its name, "
                                 "task, summary, weights (file, bytes, sha256), model_sha256 (as the outputs' records "
                                 "compute it: the card and every .safetensors and .onnx), int8, headline metrics "
                                 "(metric, words, "
                                 "value, how, target: the project's target and whether the value meets it, or null; "
                                 "text), the setting they were measured in and the input the model takes "
                                 "(an object: the card's input, its words alone as {\"text\": ...})."),
) -> None:
    """List the shipped models: name, task, weights size and sha256 (first 12 hex digits), int8 calibration and
    headline metrics (with the project's target, and whether it is met, where a figure has one)."""
    if ctx.invoked_subcommand is not None:
        if as_json:  # an option that does nothing is a trap
            from devolens.errors import DevolensError

            sub = ctx.invoked_subcommand
            raise DevolensError(f"--json before `{sub}` is the listing's (devolens models --json); "
                                + ("for the card as JSON, give it after the name: devolens models show NAME --json"
                                   if sub == "show" else f"`models {sub}` has no --json"))
        return
    from devolens.models import zoo

    names = zoo.available()
    if as_json:
        typer.echo(json.dumps(_listing(names), indent=2))
        return
    from rich.table import Table

    from devolens.cli._common import _tty, out

    # a log file or pipe (no terminal, no COLUMNS): as wide as a log is read, not rich's 80 columns, whose table
    # folded each card's figures a few words a line (140 lines for 5 models)
    if not _tty(sys.stdout) and not os.environ.get("COLUMNS") and out.width < LOG_WIDTH:
        from rich.console import Console

        out = Console(width=LOG_WIDTH, file=out.file, soft_wrap=out.soft_wrap, color_system=None)
    table = Table(title="devolens model zoo", show_lines=False)
    wide = out.width >= 140  # the summary column only where it fits (`models show NAME` has it all)
    cols = ("model", "task", "weights", "int8", "headline metrics (held-out data)") + (("summary",) if wide else ())
    for col in cols:  # the metrics get the room; a long task description folds
        table.add_column(col, overflow="fold", max_width=16 if col == "task" else None)
    for entry in _listing(names)["models"]:  # the JSON listing's data, as rows
        table.add_row(*_row(entry, wide))
    if not names:
        out.print("no models shipped in this installation")
        return
    out.print(table)
    out.print("Headline figures as the cards measured them (the setting in parentheses; the commands' default setting "
              "beside it where it differs; 'target': the project's target for that figure and whether it is met).")
    if not wide:
        out.print("`devolens models show NAME` prints a model's whole card (summary, data, metrics, limits).")


def _files(name: str, folder: Optional[Path], card: dict) -> dict:
    """Where a model's files are, for ``models show``: its folder (absolute), its weights file with its size and
    sha256 (None where missing: the outputs' segment.json / population .json record the same digest); a warning when
    the card records another sha256 (``weights_sha256``: weights replaced or damaged after the card was written)."""
    from devolens.cli._common import console
    from devolens.errors import DevolensError
    from devolens.models import zoo

    where = zoo.model_location(folder if folder is not None else name)
    weights = where / "weights.safetensors"
    if not weights.is_file() and (where / "best.safetensors").is_file():  # a training run's
        weights = where / "best.safetensors"
    try:  # which weights exactly
        sha = zoo.weights_sha256(folder if folder is not None else name)
    except DevolensError:
        sha = None
    problem = zoo.weights_mismatch(where, card) if sha else None  # (what loading the model warns of: one text)
    if problem is not None:
        console.print(f"warning: {problem}", soft_wrap=True, markup=False)
    from devolens.provenance import file_sha256

    given = folder if folder is not None else name
    return {"folder": str(where.resolve()),
            "weights": {"file": weights.name, "bytes": weights.stat().st_size if sha else None, "sha256": sha},
            "model_sha256": _model_sha256(given),
            **{kind: [{"file": p.name, "bytes": p.stat().st_size, "sha256": file_sha256(p)}
                      for p in sorted(where.glob(f"*.{kind}"), key=lambda p: p.name) if p.is_file()]
               for kind in ("safetensors", "onnx")}}  # (onnx: the graphs of --backend onnx, scripts/zoo_onnx.py)


@models_app.command("show")
def show_model(
    name: str = typer.Argument(..., help="Model name, as listed by `devolens models`, or a model folder of your own "
                               "(a training run or an exported model)."),
    as_json: bool = typer.Option(False, "--json", help="Print card.json instead of the human card (card.md), with "
                                 "\"files\": the model's folder, its weights (file, bytes, sha256), its model_sha256 "
                                 "(as the outputs' records compute it) and each .safetensors (file, bytes, sha256)."),
) -> None:
    """Print a model's card: architecture, input, preprocessing, training data, recipe, metrics, limits; then where
    its files are, its weights' sha256, its model_sha256 (as the outputs' records compute it) and each .safetensors'
    sha256."""
    from devolens.cli._common import out
    from devolens.models import zoo

    card = zoo.card(name, command="models show")  # DevolensError (exit 2): unknown name, broken card or run
    folder = zoo.model_folder(name)
    if folder is not None and not (folder / "card.json").is_file():
        # a training run: its card is made from the best checkpoint, and shown as an exported folder's card.md is
        from devolens.models.export import card_md

        text = card_md(card, load_name=str(folder))
    else:
        md = (folder or zoo.ZOO_DIR / name) / "card.md"
        text = md.read_text(encoding="utf-8") if md.is_file() else None
    files = _files(name, folder, card)
    if as_json or text is None:
        # --json: card.json as it is (other tools parse it), and where its files are: "files"
        typer.echo(json.dumps({**card, "files": files} if as_json else card, indent=2))
        if not as_json:
            typer.echo(f"weights sha256: {files['weights']['sha256'] or 'missing'}")
            typer.echo(f"model_sha256: {files['model_sha256'] or 'missing'}")
            for f in files["safetensors"] + files["onnx"]:
                typer.echo(f"{f['file']} sha256: {f['sha256']}")
        return
    each = "".join(f"\n- `{f['file']}`: {f['bytes']} bytes, sha256 `{f['sha256']}`"
                   for f in files["safetensors"] + files["onnx"]
                   if f["file"] != files["weights"]["file"])  # (the weights' own: on the Files line)
    text = text.rstrip("\n") + (f"\n\nFiles: `{files['folder']}` (weights `{files['weights']['file']}`, sha256 "
                                 f"`{files['weights']['sha256'] or 'missing'}`)\n\nmodel_sha256 (as the outputs' "
                                 f"records compute it: the card and every .safetensors and .onnx): "
                                 f"`{files['model_sha256'] or 'missing'}`\n" + (each and f"\n{each.lstrip()}\n"))
    from rich.console import Console
    from rich.markdown import Markdown

    from devolens.cli._common import _tty

    if _tty(sys.stdout):
        out.print(Markdown(text))
        return
    # not a terminal (a file, a pipe): rich would lay the card out at 80 columns and cut the metrics tables' cells
    # ("0.9…") and the longer lines; laid out as wide as the card's text instead (nothing can be wider), nothing is
    # cut, and the lines lose the padding to that width
    wide = Console(width=max(80, len(text)), file=io.StringIO(), soft_wrap=True, color_system=None)
    wide.print(Markdown(text))
    typer.echo("\n".join(line.rstrip() for line in wide.file.getvalue().splitlines()))


#: how ``models export``'s folder of each task is used on the command line (``{}``: the folder), by
#: :func:`devolens.models.zoo.model_task`
USE_COMMANDS = {
    "nuclei": "devolens segment nuclei INPUT --model {} --out DIR",
    "membrane": "devolens segment membrane INPUT --model {} --out DIR",
    "livedead": "devolens segment livedead WELL --model {} --out DIR",
    "identity": "devolens identify TABLE --model {} --out NAMES.csv",
    "population": "devolens population INPUT --model {} --out COUNTS.csv",
}


@models_app.command("export")
def export_model(
    run: str = typer.Argument(..., help="A segmentation or count (task population) run's folder (`devolens train "
                              "RECIPE --data DIR --out RUN`), "
                              "or a shipped model's name (`devolens models`: its folder is copied as it ships)."),
    to: Path = typer.Option(..., "--to", "--out", "-o", help="Folder to write (new, empty or an earlier export, "
                            "which is replaced): weights.safetensors (fp16), card.json, card.md (and a shipped "
                            "model's size models)."),
    kind: Optional[str] = typer.Option(None, "--kind", callback=choice("nuclei", "membrane"), help="What it segments: nuclei or membrane (default: what "
                                       "the run is: its recipe's model.init zoo:nuclei or zoo:membrane, augment.preset "
                                       "membrane or a membrane render as its data, else 'membrane' in the recipe's "
                                       "name; else nuclei). Overrides that, which `--model RUN` keeps to."),
    scale: Optional[float] = typer.Option(None, "--scale", help="Working resolution relative to the images it will "
                                          "be given, 0.01 to 8 like a recipe's data.scale (default: the recipe's "
                                          "data.scale, 1.0 unless it resized the images; 0.5 for a run on crops "
                                          "made at half size by scripts/zoo_data.py --scale 0.5)."),
) -> None:
    """Export a training run's best checkpoint as a model folder, to use with `--model FOLDER` or `load(FOLDER)`.

    A run can also be used as it is (`devolens segment nuclei INPUT --model RUN`); the exported folder
    is smaller (fp16), self-describing (its card says what it was trained on, with the run's recipe, data
    and versions, how it scored on the run's own validation split, the post-processing applied and how
    devolens runs the network) and can be shared. A shipped model's name (`nuclei`) copies that model's
    folder as it ships (the nuclei, membrane and population cards record the weights' sha256); `./nuclei` is a
    folder of that name, and so `--to nuclei` is used as `--model ./nuclei` (a note says so).
    """
    from devolens.cli._common import console, hold_output_folder, note
    from devolens.errors import DevolensError
    from devolens.models import zoo
    from devolens.models.export import (_BY_NAME, KINDS, check_scale, export_run, export_shipped, folder_use,
                                        judged_kind, start_said)

    # the options first, before the run is read or anything written
    if kind is not None and kind not in KINDS:
        raise DevolensError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if scale is not None:
        check_scale(scale, "--scale")
    use = folder_use(to)  # ./nuclei for a folder named as a shipped model (--model nuclei is the shipped one)
    # --to's lock, held until the command ends: a second export into the same folder is refused now, before the run
    # or the shipped model is read, not once its staging begins (the last silently replacing the first's folder)
    if not Path(to).resolve().is_relative_to(Path(zoo.ZOO_DIR).resolve()):  # (refused below, no lock file there)
        hold_output_folder(to)
    if zoo.model_folder(run) is None and run in zoo.available():  # a shipped model's name (a name wins, as --model)
        if kind is not None or scale is not None:
            raise DevolensError(f"--kind and --scale apply to a training run; the shipped {run} model is copied as it "
                                f"ships (`devolens models export {run} --to {to}`)")
        card = export_shipped(run, to)
        files = sorted(p.name for p in to.iterdir() if not p.name.startswith("."))
        command = USE_COMMANDS.get(zoo.model_task(card))
        how = (f"; use it with `{command.format(use)}`" if command is not None
               else f"; load it with devolens.models.load({use!r})")
        console.print(f"{run} (shipped) -> {to}: {', '.join(files)} (weights sha256 "
                      f"{zoo.weights_sha256(use)[:12]}){how}", soft_wrap=True, markup=False)  # (./membrane: the copy)
        if Path(run).is_dir():  # a folder of the name here too: a name is the shipped model's, as for --model
            console.print(f"note: exported the shipped {run} model; for the folder {run} here, give ./{run}",
                          markup=False)
        _shadowed(to, use)
        return
    card = export_run(run, to, kind=kind, scale=scale)
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in card["metrics"].items() if k in card["headline"]) or "none"
    start = start_said(card, 3)  # a fine-tuned run's: what its epochs had to beat
    console.print(f"{card['task']} model -> {to} (validation of the run: {metrics}"
                  + (f"; {start}" if start else "") + f"); use it with `{USE_COMMANDS[card['task']].format(use)}`",
                  soft_wrap=True, markup=False)
    if card["trained"].get("note"):  # no epoch beat the starting weights: the export is no better than they are
        note(card["trained"]["note"])
    judged, why = judged_kind(run)
    if kind is not None and judged not in (None, kind):  # an override of what the run is: said, not silent
        said = (f"the run's recipe is named for {judged}" if why.startswith(_BY_NAME) else
                f"the run is a {judged} run (by its {why})")
        console.print(f"note: {said}; exported as {kind}, as --kind says", soft_wrap=True, markup=False)
    _shadowed(to, use)


def _shadowed(to: Path, use: str) -> None:
    """Warn where the exported folder ``to`` is named as a shipped model (``--to nuclei``): ``--model nuclei`` and
    ``load("nuclei")`` take the shipped model, ``./nuclei`` (``use``) this folder."""
    if use != str(to):
        from devolens.cli._common import note

        note(f"`--model {to}` (and load({str(to)!r})) means the shipped {to} model, not this folder: give `--model "
             f"{use}` for it (or export to another name)")


def register(app: typer.Typer) -> None:
    """Add ``devolens models`` (and ``models show``, ``models export``) to the root app."""
    app.add_typer(models_app, name="models")
