"""The closing tip of ``devolens train``: how to use the run, as a command to paste (a folder with spaces stays one
word) and for the command that uses it (a live/dead run: ``segment livedead``, not ``segment nuclei``)."""

from __future__ import annotations

import shlex
from pathlib import Path

import tifffile
import yaml

from _train_data import make_pairs, tiny_recipe
from devolens.cli import main


def _tip(capsys) -> str:
    err = " ".join(capsys.readouterr().err.split())  # rich folds long lines
    return err[err.index("tip:"):]


def test_the_tip_quotes_a_run_folder_with_spaces(tmp_path, capsys):
    data = make_pairs(tmp_path / "data", groups=3, per_group=2, size=64)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(name="tiny_nuclei", data={"target": "boundary", "channels": 1,
                                                                              "val_fraction": 0.34},
                                                 loss={"name": "ce_dice"}, train={"epochs": 1, "threads": 1})))
    run = tmp_path / "r d cp spaces"
    assert main(["train", str(recipe), "--data", str(data), "--out", str(run), "--no-plots"]) == 0
    tip = _tip(capsys)
    assert f"--model {shlex.quote(str(run))} --out DIR" in tip
    assert f"models export {shlex.quote(str(run))} --to FOLDER" in tip
    assert shlex.split(tip.split("`")[1])[5] == str(run)  # pasted into a shell: one argument


def test_a_livedead_run_gets_the_livedead_tip(tmp_path, capsys):
    from devolens.data.tiling import tile_to_h5
    from devolens.render.wells import simulate_well

    images, labels = [], []
    for seed in (1, 2):
        well = simulate_well(seed=seed, size=(128, 128), density=900, dead_fraction=0.4)
        images.append(tmp_path / f"w{seed}.tif")
        labels.append(tmp_path / f"l{seed}.tif")
        tifffile.imwrite(images[-1], well.image)
        tifffile.imwrite(labels[-1], well.labels)
    tile_to_h5(images, tmp_path / "t.h5", labels, tile=64, stride=32)
    rec = yaml.safe_load((Path(__file__).resolve().parents[1] / "recipes" / "livedead.yaml").read_text())
    rec["data"].update(size=[32, 32], val_fraction=0.5)
    rec["train"].update(epochs=1, batch_size=8, amp="none")
    recipe = tmp_path / "ld.yaml"
    recipe.write_text(yaml.safe_dump(rec))
    run = tmp_path / "ld run"
    assert main(["train", str(recipe), "--data", str(tmp_path / "t.h5"), "--out", str(run), "--no-plots"]) == 0
    tip = _tip(capsys)
    assert f"devolens segment livedead WELL --model {shlex.quote(str(run))} --out DIR" in tip
    assert "segment nuclei" not in tip and "models export" not in tip
