"""A registered model carries its trust calibrator: the registry logs the saved score inside the
pyfunc with its provenance as tags (participants by pseudonym), src.analyze finds it from
``models:/...``, a registered model without one falls back to the likelihood, and a calibrator
that does not fit the model is refused in one line. A real SQLite MLflow store and registry under
tmp_path; the "trained" model is a pose config and a dummy snapshot (nothing here predicts)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from src.analysis.trust import TrustSettings
from src.errors import ConfigError, DataError, exit_on_data_error
from src.privacy import Pseudonyms
from src.tracking import registry
from src.trust.score import TrustModel
from src.trust.signals import PosePCA
from tests.conftest import empty_mlflow_store

BODYPARTS = ["shoulder", "elbow", "wrist", "hip"]
SKELETON = [["shoulder", "elbow"], ["elbow", "wrist"], ["shoulder", "hip"]]
NAME = "toy_cohort"


def fitted(signals=("low_likelihood", "jump_px"), bodyparts=BODYPARTS, **provenance) -> TrustModel:
    """A score fitted on a small synthetic table: errors where the likelihood is low."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({s: rng.gamma(2.0, 1.0, 400) for s in signals})
    is_error = table[signals[0]] > table[signals[0]].median()
    poses = np.array([[20, 10], [30, 20], [40, 22], [20, 35]], float) + rng.normal(0, 1, (30, 4, 2))
    model = TrustModel.fit(
        table,
        list(signals),
        is_error,
        threshold="2 x test MAE",
        threshold_px=5.0,
        pose_pca=PosePCA().fit(poses[:, : len(bodyparts)]).to_dict(),
        bodyparts=bodyparts,
        skeleton=[pair for pair in SKELETON if set(pair) <= set(bodyparts)],
    )
    model.provenance = provenance or None
    return model


@pytest.fixture
def store(tmp_path):
    previous = mlflow.get_tracking_uri()
    empty_mlflow_store(tmp_path / "mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    # artifacts in tmp_path: a new experiment's default is ./mlruns, the repository's own store
    experiment_id = MlflowClient().create_experiment(
        "calibrator", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=experiment_id)  # not one an earlier test left active
    yield MlflowClient()
    mlflow.set_tracking_uri(previous)


def training_run(tmp_path, bodyparts=BODYPARTS) -> pd.Series:
    """A finished run whose artifact model/ holds a pose config and a (dummy) snapshot, as the
    registry reads it."""
    folder = tmp_path / f"model-{len(list(tmp_path.glob('model-*')))}"
    folder.mkdir()
    config = {"metadata": {"bodyparts": list(bodyparts)}}
    (folder / "pytorch_config.yaml").write_text(yaml.safe_dump(config))
    (folder / "snapshot-last.pt").write_bytes(b"weights")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "model")
        mlflow.set_tag("model_key", f"key-{folder.name}")
    return pd.Series({"run_id": run.info.run_id, "model_source": "trained", "labelled_frames": 6})


def calibrator_for(tmp_path, model: TrustModel) -> registry.Calibrator:
    path = model.save(tmp_path / "trust_model.json")
    return registry.trust_calibrator(OmegaConf.create({"report": {"trust_model": str(path)}}))


def analysis(run_id: str, **trust) -> OmegaConf:
    defaults = {
        "enabled": True,
        "score": "combined",
        "model": None,
        "other_models": [],
        "threshold": 0.6,
        "features": "mark",
        "export_flagged": 0,
        "export_min_gap_frames": 5,
        "scorer": "Me",
    }
    return OmegaConf.create({"run_id": run_id, "trust": defaults | trust})


def one_line_refusal(capsys, action) -> str:
    """What ``action`` prints on stderr through an entry point's error handling (exit 2)."""
    capsys.readouterr()  # what came before (MLflow's own lines)
    with pytest.raises(SystemExit) as stopped, exit_on_data_error():
        action()
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_a_registered_version_carries_its_calibrator_and_the_analysis_uses_it(
    tmp_path, store, capsys
):
    row = training_run(tmp_path)
    original = fitted(
        condition=6, folds=[1, 2], participants=["P01", "P02"], model_runs={"1": row["run_id"]}
    )
    calibrator = calibrator_for(tmp_path, original)
    pseudonyms = Pseudonyms(tmp_path / "privacy")
    version = registry.ensure_version(store, NAME, row, "last", calibrator, pseudonyms)
    tags = store.get_model_version(NAME, version).tags
    assert tags["trust_calibrator_folds"] == "1,2" and tags["trust_calibrator_condition"] == "6"
    assert tags["trust_calibrator_participants"] == ",".join(
        [pseudonyms("P01", "participant"), pseudonyms("P02", "participant")]
    )
    assert "P01" not in json.dumps(tags)
    assert tags["trust_calibrator_sha256"] == calibrator.digest
    # registering again keeps the version, with the calibrator or without one
    assert registry.ensure_version(store, NAME, row, "last", calibrator, pseudonyms) == version
    assert registry.ensure_version(store, NAME, row, "last") == version

    # it travels inside the pyfunc: a download of the version holds it, participants pseudonymised
    local = mlflow.artifacts.download_artifacts(
        f"models:/{NAME}/{version}", dst_path=str(tmp_path / "download")
    )
    carried = TrustModel.load(Path(local) / "artifacts" / "trust_model.json")
    assert carried.provenance["participants"] == tags["trust_calibrator_participants"].split(",")
    table = pd.DataFrame({"low_likelihood": [0.1, 2.0, 9.0], "jump_px": [0.0, 1.0, 3.0]})
    np.testing.assert_allclose(carried.probability(table), original.probability(table))

    store.set_registered_model_alias(NAME, "champion", version)
    settings = TrustSettings.from_config(analysis(f"models:/{NAME}@champion"))
    assert settings.score == "combined"
    np.testing.assert_allclose(settings.model.probability(table), original.probability(table))
    described = settings.describe()
    assert f"calibrator: models:/{NAME}@champion (its artifact trust_model.json)" in described
    assert "fitted on 2 participants of folds 1, 2 (the models of condition 6)" in described
    settings.check_bodyparts(BODYPARTS)  # the model's points: accepted
    err = one_line_refusal(capsys, lambda: settings.check_bodyparts(["nose", *BODYPARTS[1:]]))
    assert err.startswith(f"error: models:/{NAME}@champion (its artifact trust_model.json): ")
    assert "fitted for bodyparts" in err and "; use a score fitted for this model" in err
    # analysis.trust.model, when set, wins over the registered one
    other = fitted(signals=("low_likelihood",)).save(tmp_path / "mine.json")
    chosen = TrustSettings.from_config(analysis(f"models:/{NAME}@champion", model=str(other)))
    assert chosen.model.signals == ["low_likelihood"] and chosen.calibrator == str(other)


def test_a_new_calibrator_makes_a_new_version_and_one_for_other_runs_none(tmp_path, store):
    row = training_run(tmp_path)
    plain = registry.ensure_version(store, NAME, row, "last")
    elsewhere = calibrator_for(tmp_path, fitted(model_runs={"1": "a-run-of-another-study"}))
    assert registry.ensure_version(store, NAME, row, "last", elsewhere) == plain
    assert "trust_calibrator" not in store.get_model_version(NAME, plain).tags
    mine = calibrator_for(tmp_path, fitted(model_runs={"1": row["run_id"]}, folds=[1]))
    carrying = registry.ensure_version(store, NAME, row, "last", mine)
    assert carrying != plain
    assert store.get_model_version(NAME, carrying).tags["trust_calibrator_folds"] == "1"


def test_a_registered_model_without_a_calibrator_falls_back_to_the_likelihood(
    tmp_path, store, capsys
):
    version = registry.ensure_version(store, NAME, training_run(tmp_path), "last")
    settings = TrustSettings.from_config(analysis(f"models:/{NAME}/{version}"))
    assert settings.score == "likelihood" and settings.model is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert f"models:/{NAME}/{version} carries no trust calibrator" in out
    assert "likelihood" in out
    assert settings.describe().startswith("trust = DeepLabCut's likelihood")
    # a run id (not a registered model) with no analysis.trust.model: told how to give one
    with pytest.raises(DataError, match=r"analysis.trust.model=<path.*models:/<name>@<alias>"):
        TrustSettings.from_config(analysis("0123abcd"))


def test_a_calibrator_that_does_not_fit_the_model_is_refused_in_one_line(tmp_path, store, capsys):
    row = training_run(tmp_path, bodyparts=["nose", *BODYPARTS[1:]])
    calibrator = calibrator_for(tmp_path, fitted(model_runs={"1": row["run_id"]}))
    path = calibrator.path
    err = one_line_refusal(
        capsys, lambda: registry.ensure_version(store, NAME, row, "last", calibrator)
    )
    assert err.startswith(f"error: {path}: fitted for bodyparts {BODYPARTS}, the model tracks ")
    assert not store.search_model_versions(f"name = '{NAME}'")  # nothing registered

    unknown = fitted(signals=("low_likelihood", "video_mean_low_likelihood"), model_runs={"1": "r"})
    unknown.save(path)
    report = OmegaConf.create({"report": {"trust_model": str(path)}})
    err = one_line_refusal(capsys, lambda: registry.trust_calibrator(report))
    assert err.startswith(f"error: {path}: signals ['video_mean_low_likelihood'] cannot be ")
    assert "; refit the score on those signals only" in err
    err = one_line_refusal(
        capsys, lambda: TrustSettings.from_config(analysis("r", model=str(path)))
    )
    assert err.startswith(f"error: {path}: signals ['video_mean_low_likelihood']")

    fitted().save(path)  # no provenance: the registry cannot tell which models it belongs to
    err = one_line_refusal(capsys, lambda: registry.trust_calibrator(report))
    assert err.startswith(f"error: {path}: no provenance.model_runs")

    narrow = fitted(bodyparts=BODYPARTS[:3], model_runs={"1": "r"})
    narrow.pose_pca = fitted(model_runs={"1": "r"}).pose_pca  # 4 points' subspace, 3 bodyparts
    narrow.save(path)
    err = one_line_refusal(capsys, lambda: registry.trust_calibrator(report))
    assert "its pose subspace has 8 coordinates for 3 bodyparts" in err

    path.write_text('{"format": "something-else"}')
    err = one_line_refusal(capsys, lambda: registry.trust_calibrator(report))
    assert err.startswith(f"error: {path}: not a trust score file")
    with pytest.raises(ConfigError, match=r"report.trust_model=.*: no such file; write one with"):
        registry.trust_calibrator(OmegaConf.create({"report": {"trust_model": "nope.json"}}))
    assert registry.trust_calibrator(OmegaConf.create({"report": {"trust_model": None}})) is None
