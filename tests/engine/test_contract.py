"""The engine contract (src/engine/contract.py): every engine provides all of it, alike.

The same tests run against every engine the registry finds (src/engine/<name>.py): the members and
their parameters (static), then the few behaviours that need no training: naming its files, reading a
snapshot's bodyparts, a model folder's round trip, the iteration budget and the prediction filters.
A third engine is tested by these as soon as its module exists.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from src import engine
from src.engine import contract
from src.errors import DataError

REPO = Path(__file__).resolve().parents[2]


def test_the_registry_finds_both_engines_and_names_them_by_engine_equals():
    assert engine.ENGINES == ("pytorch", "tensorflow")
    assert engine.DEFAULT in engine.ENGINES
    assert engine.for_config(OmegaConf.create({})).NAME == engine.DEFAULT
    for name in engine.ENGINES:
        assert name == engine.for_config(OmegaConf.create({"engine": {"name": name}})).NAME
    with pytest.raises(
        DataError, match=r"engine.name='caffe' is unknown; use engine=pytorch \| tensorflow"
    ):
        engine.engine_name(OmegaConf.create({"engine": {"name": "caffe"}}))


def _parameters(function, drop_self: bool) -> list[tuple]:
    parameters = list(inspect.signature(function).parameters.values())[int(drop_self) :]
    return [(p.name, p.kind, p.default) for p in parameters]


@pytest.fixture(params=engine.ENGINES)
def eng(request):
    return engine.module(request.param)


def test_an_engine_provides_every_member_of_the_contract(eng):
    assert isinstance(eng, contract.Engine)
    missing = [name for name in contract.members() if not hasattr(eng, name)]
    assert not missing, f"{eng.__name__} lacks {missing} of src/engine/contract.py"


def test_each_function_of_the_contract_has_the_same_parameters_in_every_engine(eng):
    for name, declared in contract.members().items():
        if declared is None:  # a data member
            continue
        assert callable(getattr(eng, name)), f"{eng.__name__}.{name}"
        assert _parameters(getattr(eng, name), False) == _parameters(declared, True), (
            f"{eng.__name__}.{name}{inspect.signature(getattr(eng, name))} differs from the "
            f"contract's {name}{inspect.signature(declared)}"
        )


def test_an_engine_has_its_conf_file_and_its_own_file_names(eng, tmp_path):
    assert eng.__name__.rsplit(".", 1)[1] == eng.NAME
    conf = yaml.safe_load((REPO / "conf" / "engine" / f"{eng.NAME}.yaml").read_text())
    assert conf["name"] == eng.NAME
    assert issubclass(eng.HubWeightsUnavailable, DataError)
    # the registry knows an engine's files by their names, and only there (engine_of)
    assert engine.engine_of(pose_config=tmp_path / eng.POSE_CONFIG) == eng.NAME
    assert engine.engine_of(config={eng.POSE_CONFIG_KEY: []}) == eng.NAME
    (tmp_path / eng.MODEL_FILE).write_text("{}")
    assert engine.engine_of(model_folder=tmp_path) == eng.NAME


def test_a_missing_snapshot_is_one_line_naming_weights_path(eng, tmp_path):
    with pytest.raises(DataError, match="weights.path"):
        eng.snapshot_bodyparts(tmp_path / "train" / "snapshot-000")


def _model(eng, folder: Path) -> engine.Model:
    """A model of ``eng`` as its training leaves one (weights that load: no network needed)."""
    train = folder / "train"
    train.mkdir(parents=True)
    if eng.NAME == "pytorch":
        import torch

        (train / eng.POSE_CONFIG).write_text(
            yaml.safe_dump({"metadata": {"bodyparts": ["a", "b"]}})
        )
        torch.save({"model": {}, "metadata": {"epoch": 3}}, train / "snapshot-003.pt")
        snapshot = train / "snapshot-003.pt"
    else:
        (folder / "test").mkdir()
        (folder / "test" / eng.POSE_CONFIG).write_text(
            yaml.safe_dump({eng.POSE_CONFIG_KEY: ["a", "b"]})
        )
        for suffix in (".index", ".meta", ".data-00000-of-00001"):
            (train / f"snapshot-3{suffix}").write_bytes(b"weights")
        snapshot = train / "snapshot-3"
    return snapshot


def test_a_snapshot_becomes_a_model_that_a_model_folder_keeps(eng, tmp_path):
    snapshot = _model(eng, tmp_path / "trained")
    assert eng.snapshot_bodyparts(snapshot) == ["a", "b"]
    if eng.NAME == "pytorch":  # its snapshot_model reads the pose config with DeepLabCut
        model = engine.Model(snapshot.parent / eng.POSE_CONFIG, {"last": snapshot}, ["a", "b"])
    else:
        model = eng.snapshot_model(snapshot)
    assert model.bodyparts == ["a", "b"] and model.engine == eng.NAME
    assert isinstance(eng.snapshot_metadata(snapshot), dict)
    assert eng.snapshot_epoch(snapshot) == 3
    folder = eng.save_model(model, tmp_path / "model")
    assert engine.engine_of(model_folder=folder) == eng.NAME
    if eng.NAME == "tensorflow":  # pytorch's load_model reads the pose config with DeepLabCut
        again = engine.load_model(folder)
        assert again.bodyparts == ["a", "b"] and again.engine == eng.NAME


def test_the_budget_in_weight_updates_is_at_least_the_iterations_asked_for(eng):
    for iterations, batch_size, n_train in ((1, 1, 1), (100, 8, 30), (7, 4, 3)):
        assert eng.weight_updates(iterations, batch_size, n_train) >= iterations


def test_the_filters_of_predictions_are_the_same_in_every_engine(eng):
    columns = pd.MultiIndex.from_product(
        [["scorer"], ["a"], ["x", "y", "likelihood"]], names=["scorer", "bodyparts", "coords"]
    )
    values = np.c_[np.arange(9.0), np.arange(9.0) ** 2, np.full(9, 0.9)]
    values[4, :2] = 100.0  # one jump
    table = pd.DataFrame(values, columns=columns)
    median = OmegaConf.create({"type": "median", "window_length": 3})
    filtered = eng.filter_predictions(table, median)
    pd.testing.assert_frame_equal(filtered, engine.filter_predictions(table, median))
    assert (
        filtered.iloc[4, 0] == 5.0
        and (filtered.xs("likelihood", axis=1, level=2) == 0.9).all().all()
    )
