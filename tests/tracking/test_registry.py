"""MLflow Model Registry and lineage on a tiny real study: two conditions trained with real
DeepLabCut into a real SQLite MLflow store under tmp_path, registered as a pyfunc per condition with
aliases, loaded back with ``mlflow.pyfunc.load_model``, analysed from an alias; every run's data
inputs read back from MLflow and checked against DVC's own hash of the folders."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from src.analysis.model_choice import find_model_run
from src.analysis.run import analyze
from src.engine import pytorch as engine
from src.errors import ConfigError, DataError
from src.tracking import registry, store
from src.training.condition import train
from tests.conftest import compose_config, python_env, tiny_overrides, tiny_project

CONDITIONS = [1, 2]
NAME = "synthetic_clinical"  # data.name of the synthetic cohort: the registered model's name


def configured(root: Path, *overrides: str):
    return compose_config(root, *tiny_overrides(root), "weights=random", *overrides)


# --- choosing the champion (no MLflow) ---------------------------------------------------------


def table(rows: list[tuple]) -> pd.DataFrame:
    columns = ["labelled_frames", "fold", "mae_generalisation_px", "run_id"]
    return pd.DataFrame(rows, columns=columns[: len(rows[0])])


def test_champion_is_the_lowest_generalisation_mae_or_the_frames_to_label_answer(caplog):
    runs = table([(1, None, 9.0, "a"), (6, None, 4.0, "b"), (20, None, 4.5, "c")])
    assert registry.choose_champion(runs, "best_generalisation", {})[0] == 6
    tagged = {"frames_to_label": "20"}
    assert registry.choose_champion(runs, "frames_to_label", tagged) == (
        20,
        "frames_to_label=20 (the parent run's answer)",
    )
    n_frames, reason = registry.choose_champion(runs, "frames_to_label", {"frames_to_label": "2"})
    assert n_frames == 6 and "names no trained condition" in reason
    n_frames, reason = registry.choose_champion(runs, "frames_to_label", {})
    assert n_frames == 6 and "no tag frames_to_label" in reason


def test_cross_validation_ranks_conditions_by_their_mean_over_folds_and_keeps_the_best_fold():
    runs = table(
        [(2, 1, 5.0, "2a"), (2, 2, 9.0, "2b"), (6, 1, 6.0, "6a"), (6, 2, 6.5, "6b")]
    )  # condition 2: best single fold, worse mean (7.0 against 6.25)
    chosen = registry.representatives(runs).set_index("labelled_frames")
    assert chosen["run_id"].to_dict() == {2: "2a", 6: "6a"}
    assert chosen["mae_generalisation_px"].to_dict() == {2: 7.0, 6: 6.25}
    assert registry.choose_champion(chosen.reset_index(), "best_generalisation", {})[0] == 6


# --- a tiny real study ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Conditions 1 and 2 trained and evaluated under one sweep parent run, as `+sweep=frames`
    nests them: (root, parent run id, {labelled frames: run id})."""
    root = tmp_path_factory.mktemp("registry")
    cfg = tiny_project(root, "weights=random")
    experiment_id = store.configure(cfg.mlflow)
    parent = MlflowClient().create_run(experiment_id, run_name="sweep", tags={"sweep": "test"})
    os.environ[store.PARENT_RUN_ENV] = parent.info.run_id
    try:
        for n_frames in CONDITIONS:
            train(configured(root, f"labelled_frames={n_frames}"))
    finally:
        del os.environ[store.PARENT_RUN_ENV]
    store.finish(parent.info.run_id, failed=False)
    runs = MlflowClient().search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    return root, parent.info.run_id, {int(r.data.tags["labelled_frames"]): r for r in runs}


def registered(root: Path, parent_id: str, *overrides: str) -> registry.Registration:
    return registry.register_study(configured(root, f"report.sweep={parent_id}", *overrides))


@pytest.mark.slow
def test_every_condition_is_a_version_with_its_alias_and_the_best_is_champion(study):
    root, parent_id, runs = study
    done = registered(root, parent_id)
    client = MlflowClient()
    assert sorted(done.versions) == CONDITIONS
    for n_frames, run in runs.items():
        version = client.get_model_version_by_alias(NAME, f"frames-{n_frames}")
        assert version.version == done.versions[n_frames]
        assert version.tags["training_run_id"] == run.info.run_id
        assert version.run_id == run.info.run_id  # the pyfunc is logged into the training run
    best = min(runs, key=lambda n: runs[n].data.metrics["mae_generalisation_px"])
    champion = client.get_model_version_by_alias(NAME, "champion")
    assert champion.version == done.versions[best] and done.champion_frames == best
    assert "lowest mae_generalisation_px" in champion.tags["champion_reason"]
    assert client.get_run(parent_id).data.tags["registered_model"] == f"models:/{NAME}@champion"
    assert champion.current_stage in (None, "None")  # aliases, not the deprecated stages
    # a second report registers nothing new
    n_versions = len(client.search_model_versions(f"name = '{NAME}'"))
    assert registered(root, parent_id).versions == done.versions
    assert len(client.search_model_versions(f"name = '{NAME}'")) == n_versions


@pytest.mark.slow
def test_frames_to_label_choice_follows_the_parent_tag_and_falls_back_to_the_best(study, caplog):
    root, parent_id, runs = study
    best = min(runs, key=lambda n: runs[n].data.metrics["mae_generalisation_px"])
    other = next(n for n in CONDITIONS if n != best)
    client = MlflowClient(str(configured(root).mlflow.tracking_uri))
    fallback = registered(root, parent_id, "report.register=frames_to_label")
    assert fallback.champion_frames == best and "no tag frames_to_label" in fallback.reason
    assert "registering the best instead" in caplog.text
    client.set_tag(parent_id, "frames_to_label", str(other))
    try:
        chosen = registered(root, parent_id, "report.register=frames_to_label")
        assert chosen.champion_frames == other
        assert client.get_model_version_by_alias(NAME, "champion").version == chosen.versions[other]
    finally:
        client.delete_tag(parent_id, "frames_to_label")
        registered(root, parent_id)  # champion back to the best for the other tests
    assert registered(root, parent_id, "report.register=none") is None
    with pytest.raises(ConfigError, match=r"report.register='best' .*best_generalisation"):
        registered(root, parent_id, "report.register=best")


@pytest.mark.slow
def test_champion_loads_as_pyfunc_and_predicts_what_deeplabcut_predicts(study):
    root, parent_id, runs = study
    registered(root, parent_id)
    cfg = configured(root)
    mlflow.set_tracking_uri(str(cfg.mlflow.tracking_uri))
    images = sorted((Path(cfg.paths.prepared_dir) / NAME).rglob("*.png"))[:3]
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    poses = model.predict(pd.DataFrame({"image": [str(i) for i in images]}))
    # the same snapshot through this project's engine (DeepLabCut's inference runner)
    champion = MlflowClient().get_model_version_by_alias(NAME, "champion")
    stored = engine.load_model(
        Path(
            mlflow.artifacts.download_artifacts(
                f"runs:/{champion.run_id}/model", dst_path=str(root / "m")
            )
        )
    )
    expected = engine.predict(
        stored.pose_config, stored.snapshot(champion.tags["snapshot"]), images
    )
    bodyparts = stored.bodyparts
    assert list(poses.columns) == [f"{b}_{c}" for b in bodyparts for c in ("x", "y", "likelihood")]
    # float32 rounding apart: the engine predicts frames in batches, the pyfunc one request at a time
    assert poses.to_numpy() == pytest.approx(expected.reshape(len(images), -1), abs=1e-3)
    # RGB arrays work as well as paths
    import cv2

    arrays = [cv2.cvtColor(cv2.imread(str(i)), cv2.COLOR_BGR2RGB) for i in images]
    from_arrays = model.predict(pd.DataFrame({"image": arrays}))
    assert from_arrays.to_numpy() == pytest.approx(poses.to_numpy(), abs=1e-5)


@pytest.mark.slow
def test_analyze_from_an_alias_gives_the_run_ids_predictions(study):
    root, parent_id, runs = study
    done = registered(root, parent_id)
    video = Path(configured(root).data.root) / "videos" / "P01_S1.mp4"
    common = [f"analysis.videos=[{video}]", "analysis.movie.enabled=false", "data.log_media=false"]
    champion_run = runs[done.champion_frames].info.run_id
    by_alias = analyze(configured(root, f"analysis.run_id=models:/{NAME}@champion", *common))
    by_run = analyze(configured(root, f"analysis.run_id={champion_run}", *common))
    client = MlflowClient()
    tags = client.get_run(by_alias["run_id"]).data.tags
    assert tags["model_run_id"] == champion_run
    assert tags["model_selection"] == f"models:/{NAME}@champion"
    # the predictions, named as DeepLabCut names them (trust.h5 lies beside them)
    (alias_h5,) = (by_alias["output_dir"] / "P01_S1").glob("*DLC_*.h5")
    (run_h5,) = (by_run["output_dir"] / "P01_S1").glob("*DLC_*.h5")
    np.testing.assert_array_equal(pd.read_hdf(alias_h5).to_numpy(), pd.read_hdf(run_h5).to_numpy())
    with pytest.raises(DataError, match=r"models:/nope@champion names no registered model.*"):
        find_model_run(configured(root, "analysis.run_id=models:/nope@champion").analysis, "0")


@pytest.mark.slow
def test_runs_log_raw_and_prepared_data_as_inputs_with_dvcs_hash(study, tmp_path):
    root, _, runs = study
    cfg = configured(root)
    prepared = Path(cfg.paths.prepared_dir) / NAME
    expected = {f"{NAME}-raw": dvc_add_md5(Path(cfg.data.root), tmp_path / "raw")}
    expected[f"{NAME}-frames"] = dvc_add_md5(prepared, tmp_path / "frames")
    participants = pd.read_csv(Path(cfg.data.root) / "participants.csv")
    real_names = set(participants["video"]) | set(participants["participant"])
    for run in runs.values():
        inputs = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
        assert sorted(i.dataset.name for i in inputs) == sorted(expected)  # once each
        for item in inputs:
            tags = {t.key: t.value for t in item.tags}
            assert item.dataset.digest == expected[item.dataset.name]
            assert tags["mlflow.data.context"] == "training"
            assert tags["split"] == "participants"
            assert tags["split_version"] == run.data.tags["split"]  # the hash of split.csv
            assert (
                tags["used_for"] == "training: test, train; evaluation: generalisation, test, train"
            )
            assert tags["set_train"].startswith(f"{int(run.data.metrics['n_train_frames'])} frames")
            text = yaml.safe_dump([item.dataset.to_dictionary(), tags])
            assert not any(name in text for name in real_names)
        frames = next(i for i in inputs if i.dataset.name == f"{NAME}-frames")
        assert "head_x" in frames.dataset.schema


def dvc_add_md5(folder: Path, target: Path) -> str:
    """What `dvc add` records as the md5 of a copy of ``folder``, in a repository of its own."""
    target.mkdir()
    shutil.copytree(folder, target / "data")
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "add", "-q", "data"]):
        subprocess.run(command, cwd=target, env=python_env(), check=True, capture_output=True)
    return yaml.safe_load((target / "data.dvc").read_text())["outs"][0]["md5"]


@pytest.mark.slow
def test_condition_zero_logs_its_data_as_an_evaluation_input(tmp_path):
    """Condition 0 evaluates the (tiny, pre-trained here) initial model without training on the
    data: its inputs have the context evaluation, and the pre-training run has its own data."""
    cfg = tiny_project(tmp_path, "labelled_frames=0")
    train(cfg)
    client = MlflowClient(str(cfg.mlflow.tracking_uri))
    (run,) = client.search_runs(
        [client.get_experiment_by_name(NAME).experiment_id], "tags.labelled_frames = '0'"
    )
    inputs = {i.dataset.name: {t.key: t.value for t in i.tags} for i in run.inputs.dataset_inputs}
    assert sorted(inputs) == [f"{NAME}-frames", f"{NAME}-raw"]
    for tags in inputs.values():
        assert tags["mlflow.data.context"] == "evaluation"
        assert tags["used_for"].startswith("evaluation: ") and "training" not in tags["used_for"]
    (pretraining,) = client.search_runs(
        [client.get_experiment_by_name("pretraining-synthetic_healthy_adults").experiment_id]
    )
    names = sorted(i.dataset.name for i in pretraining.inputs.dataset_inputs)
    assert names == ["synthetic_healthy_adults-frames", "synthetic_healthy_adults-raw"]


def fitted_calibrator(data_root: Path, rng: np.random.Generator, rows: int):
    """A trust score (likelihood and jump) fitted on ``rows`` made-up points for the bodyparts and
    skeleton of the data set at ``data_root``: what report.trust_model takes."""
    from src.trust.score import TrustModel
    from src.trust.signals import PosePCA

    dataset = yaml.safe_load((data_root / "dataset.yaml").read_text())
    bodyparts = list(dataset["bodyparts"])
    table = pd.DataFrame(
        {"low_likelihood": rng.uniform(0, 1, rows), "jump_px": rng.gamma(2, 1, rows)}
    )
    return TrustModel.fit(
        table,
        ["low_likelihood", "jump_px"],
        table["low_likelihood"] > 0.5,
        threshold="2 x test MAE",
        pose_pca=PosePCA().fit(rng.uniform(0, 80, (20, len(bodyparts), 2))).to_dict(),
        bodyparts=bodyparts,
        skeleton=dataset["skeleton"],
    )


@pytest.mark.slow
def test_analyze_with_the_combined_score_uses_the_calibrator_the_version_carries(
    study, tmp_path, capsys
):
    """report.trust_model: the study's versions carry a trust score fitted for their runs, and
    src.analyze from the alias scores every point with it and predicts the video's MAE."""
    from src.analysis.per_video import poses_of
    from src.trust.score import VideoErrorModel

    root, parent_id, runs = study
    rng = np.random.default_rng(0)
    score = fitted_calibrator(Path(configured(root).data.root), rng, rows=300)
    bodyparts = score.bodyparts
    score.video_mae = VideoErrorModel.fit(
        "low_likelihood", rng.uniform(0.1, 0.9, 8), rng.uniform(2, 9, 8), np.repeat(list("ABCD"), 2)
    ).__dict__
    score.provenance = {
        "condition": 2,
        "folds": [1],
        "participants": ["P01", "P02"],
        "model_runs": {str(n): run.info.run_id for n, run in runs.items()},
    }
    path = score.save(tmp_path / "trust_model.json")
    done = registered(root, parent_id, f"report.trust_model={path}")
    champion = MlflowClient().get_model_version_by_alias(NAME, "champion")
    assert champion.version == done.champion_version
    assert champion.tags["trust_calibrator_condition"] == "2"

    video = Path(configured(root).data.root) / "videos" / "P01_S1.mp4"
    capsys.readouterr()
    result = analyze(
        configured(
            root,
            f"analysis.run_id=models:/{NAME}@champion",
            "analysis.trust.score=combined",
            f"analysis.videos=[{video}]",
            "analysis.movie.enabled=false",
            "data.log_media=false",
        )
    )
    out = capsys.readouterr().out
    assert f"calibrator: models:/{NAME}@champion (its artifact trust_model.json)" in out
    folder = result["output_dir"] / "P01_S1"
    (h5,) = folder.glob("*DLC_*.h5")
    poses = poses_of(pd.read_hdf(h5), bodyparts)
    trust = pd.read_hdf(folder / "trust.h5")
    scorer = trust.columns.get_level_values("scorer")[0]
    written = np.stack([trust[scorer][b]["trust"].to_numpy() for b in bodyparts], axis=1)
    np.testing.assert_allclose(written, 1 - score.score_video(poses), atol=1e-9)
    summary = pd.read_csv(folder / "trust_summary.csv").iloc[0]
    expected = VideoErrorModel(**score.video_mae).predict(np.nanmean(1 - poses[..., 2]))
    assert summary["predicted_mae_px"] == pytest.approx(expected[0], rel=1e-3)
    assert summary["predicted_mae_high_px_90%"] == pytest.approx(expected[2], rel=1e-3)
