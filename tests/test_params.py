"""params.yaml, which the DVC pipeline reads, is conf/ composed: committed up to date, and it runs a stage."""

from __future__ import annotations

import yaml
from hydra import compose, initialize_config_dir

from src.params import HYDRA_SETTINGS, composed, write_params
from tests.conftest import REPO


def test_committed_params_yaml_is_conf_composed():
    committed = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    assert committed == HYDRA_SETTINGS | composed(), (
        "params.yaml is stale: run `python -m src.params` and commit it"
    )


def test_the_frames_sweep_and_the_pipeline_have_the_same_conditions():
    """+sweep=frames sweeps pipeline.conditions (the resolver study_conditions, which src.train
    registers by importing src.study.plan)."""
    import src.study.plan  # noqa: F401

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["+sweep=frames"], return_hydra_config=True)
    swept = [int(n) for n in str(cfg.hydra.sweeper.params.labelled_frames).split(",")]
    assert swept == composed()["pipeline"]["conditions"]


def test_write_params_applies_overrides_and_reports_changes(tmp_path):
    path = tmp_path / "params.yaml"
    assert write_params(path, ["evaluation.pcutoffs=[0.5]", "model=resnet_50"])
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert written["evaluation"]["pcutoffs"] == [0.5] and written["model"]["name"] == "resnet_50"
    assert written["mlflow"]["experiment"] == written["data"]["name"]  # interpolations resolved
    assert not write_params(
        path, ["evaluation.pcutoffs=[0.5]", "model=resnet_50"]
    )  # unchanged: not rewritten
    assert write_params(path, [])
