"""``devolens tune`` with a shared ``--storage`` (several ``--out`` folders, one database): every refusal names the
study, the folder or storage and the option to change; a study of another search space made in that storage
(without a recorded recipe) is refused rather than mixed; nothing in the shared storage is deleted or claimed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from _train_data import make_pairs, tiny_recipe
from devolens.errors import DevolensError
from devolens.train.tuning import RECIPE_ATTR, tune


def _recipe(low: float = 1e-3, **tune_cfg) -> dict:
    return tiny_recipe(train={"epochs": 1, "batch_size": 4, "threads": 1, "overlay_samples": 0},
                       tune={"trials": 1, "epochs": 1, **tune_cfg, "space": {
                           "optimizer.lr": {"type": "float", "low": low, "high": 1e-2, "log": True}}})


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_pairs(tmp_path_factory.mktemp("s39tune") / "data", groups=2, per_group=2, size=32)


@pytest.fixture
def fake_train(monkeypatch):
    """``train`` as a trial calls it, without training (a marker file in the trial's folder)."""
    import devolens.train.trainer as trainer

    calls: list[Path] = []

    def fake(rec, data, out, **kw):
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "marker.txt").write_text("x")
        calls.append(Path(out))
        return SimpleNamespace(best_value=0.5, start_value=None, start_note=None)

    monkeypatch.setattr(trainer, "train", fake)
    return calls


def _names(storage: str) -> list[str]:
    import optuna

    return sorted(optuna.get_all_study_names(storage))


def test_an_out_holding_another_studys_trials_in_the_shared_storage_is_named(data, tmp_path, fake_train):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    tune(_recipe(), data, tmp_path / "o1", storage=storage, study_name="A")
    tune(_recipe(), data, tmp_path / "o2", storage=storage, study_name="B")
    (tmp_path / "o2" / "best.json").unlink()  # as a study whose trials were all pruned (no best.json)
    csv = (tmp_path / "o2" / "trials.csv").read_bytes()
    # study A (1 trial) would have gone on in B's folder (A's next trial, 1, is not B's trial_0000): refused, naming B
    with pytest.raises(DevolensError) as err:
        tune(_recipe(), data, tmp_path / "o2", storage=storage, study_name="A")
    assert (f"--out holds trial folders (trials/trial_0000) of study 'B' in {storage}, whose trial folders, trials.csv "
            "and best recipe study 'A' would replace: give another --out for study 'A', or --study 'B' to go on with "
            "the study this folder holds") in str(err.value)
    assert (tmp_path / "o2" / "trials.csv").read_bytes() == csv and not (tmp_path / "o2" / "best.json").exists()
    # a new study there: the same (not "another study's trials"), and the new study is not left in the storage
    with pytest.raises(DevolensError, match=r"of study 'B' in .*or --study 'B' to go on"):
        tune(_recipe(), data, tmp_path / "o2", storage=storage, study_name="C")
    assert _names(storage) == ["A", "B"] and len(fake_train) == 2
    # the same study from another folder (another machine) goes on
    tune(_recipe(), data, tmp_path / "o3", storage=storage, study_name="A", trials=2)
    assert fake_train[-1] == tmp_path / "o3" / "trials" / "trial_0001"


def test_a_forgotten_storage_is_told(data, tmp_path, fake_train):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    tune(_recipe(), data, tmp_path / "o1", storage=storage, study_name="A")
    with pytest.raises(DevolensError) as err:  # without --storage: the folder's own study.db has no study A
        tune(_recipe(), data, tmp_path / "o1", study_name="A")
    assert (f"--out holds study 'A' of another storage, {storage} (its best.json)" in str(err.value)
            and str(err.value).endswith(f"or --storage '{storage}' to go on with the study this folder holds"))
    assert "database removed" not in str(err.value)
    assert not (tmp_path / "o1" / "study.db").exists() and len(fake_train) == 1


def test_another_recipe_direction_or_data_in_a_shared_storage_is_told_to_give_another_study(data, tmp_path,
                                                                                            fake_train):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    tune(_recipe(), data, tmp_path / "o1", storage=storage, study_name="A")
    advice = f"give this recipe another --study (a name {storage} does not hold yet)"
    with pytest.raises(DevolensError) as err:  # a new --out: only the study name is to change
        tune(_recipe(low=1e-4), data, tmp_path / "o2", storage=storage, study_name="A")
    assert "tunes another recipe (it differs in tune.space)" in str(err.value)
    assert f"{advice}, or the study's recipe to go on with it" in str(err.value) and "another --out" not in \
        str(err.value)
    with pytest.raises(DevolensError) as err:  # its own --out: both to change
        tune(_recipe(low=1e-4), data, tmp_path / "o1", storage=storage, study_name="A")
    assert f"{advice} and another --out ({tmp_path / 'o1'} holds study 'A''s trials)" in str(err.value)
    with pytest.raises(DevolensError) as err:
        tune(_recipe(direction="minimize"), data, tmp_path / "o2", storage=storage, study_name="A")
    assert str(err.value).startswith(f"study 'A' in {storage} optimises maximize, this recipe asks to minimize "
                                     "(val_dice)")
    assert f"{advice}, or the study's recipe to go on with it" in str(err.value)
    other = make_pairs(tmp_path / "other", groups=2, per_group=2, size=32, seed=1)
    with pytest.raises(DevolensError) as err:
        tune(_recipe(), other, tmp_path / "o2", storage=storage, study_name="A")
    assert "was tuned on other data" in str(err.value)
    assert "give these data another --study (a name" in str(err.value)
    assert not (tmp_path / "o2").exists() and _names(storage) == ["A"] and len(fake_train) == 1
    # the default storage (OUT/study.db): another --out, nothing said of --storage
    tune(_recipe(), data, tmp_path / "d")
    with pytest.raises(DevolensError) as err:
        tune(_recipe(low=1e-4), data, tmp_path / "d")
    assert str(err.value).endswith("give another --out for this recipe, or the study's recipe to go on with it")


def test_a_study_of_another_space_without_a_recorded_recipe_is_refused_not_mixed(data, tmp_path, fake_train):
    import optuna

    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    made = optuna.create_study(study_name="P", storage=storage, direction="maximize")  # Optuna's own, no recipe
    made.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with pytest.raises(DevolensError) as err:
        tune(_recipe(), data, tmp_path / "o", storage=storage, study_name="P", trials=3)
    assert (f"study 'P' in {storage} was made for another search space (its trials drew x otherwise than this "
            "recipe's tune.space") in str(err.value)
    assert "give this recipe another --study" in str(err.value)
    study = optuna.load_study(study_name="P", storage=storage)
    assert len(study.trials) == 2 and RECIPE_ATTR not in study.user_attrs and not fake_train  # untouched
    # another range of the same key is another space too
    made = optuna.create_study(study_name="Q", storage=storage, direction="maximize")
    made.optimize(lambda t: t.suggest_float("optimizer.lr", 1e-5, 1e-4, log=True), n_trials=1)
    with pytest.raises(DevolensError, match="its trials drew optimizer.lr otherwise"):
        tune(_recipe(), data, tmp_path / "o", storage=storage, study_name="Q", trials=2)
    # the same space (an earlier version's study, no recipe recorded): goes on and records this recipe
    made = optuna.create_study(study_name="R", storage=storage, direction="maximize")
    made.optimize(lambda t: t.suggest_float("optimizer.lr", 1e-3, 1e-2, log=True), n_trials=1)
    tune(_recipe(), data, tmp_path / "o", storage=storage, study_name="R", trials=2)
    assert RECIPE_ATTR in optuna.load_study(study_name="R", storage=storage).user_attrs
    assert sorted(optuna.get_all_study_names(storage)) == ["P", "Q", "R"]
