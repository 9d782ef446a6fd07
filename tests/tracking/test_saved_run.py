"""A saved model whose MLflow run the configured store does not hold: one line, not a traceback."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from omegaconf import OmegaConf

from src.errors import DataError
from src.tracking import store


def test_a_run_from_another_store_is_one_line_naming_the_file_the_store_and_the_fix(tmp_path):
    other = OmegaConf.create(
        {"tracking_uri": f"sqlite:///{tmp_path / 'other.db'}", "experiment": "study"}
    )
    store.configure(other)
    with mlflow.start_run() as trained:  # trained against the other store
        pass
    here = OmegaConf.create(
        {"tracking_uri": f"sqlite:///{tmp_path / 'here.db'}", "experiment": "study"}
    )
    store.configure(here)
    run_yaml = Path("models/pipeline/models/frames_2/run.yaml")
    with pytest.raises(DataError) as refused:
        store.saved_run(trained.info.run_id, run_yaml)
    message = str(refused.value)
    assert "\n" not in message
    for part in (str(run_yaml), trained.info.run_id, str(tmp_path / "here.db"), "dvc repro"):
        assert part in message
    store.configure(other)
    assert store.saved_run(trained.info.run_id, run_yaml).info.run_id == trained.info.run_id
