"""src.train on the tiny cohort: real DeepLabCut training (a few iterations), a real MLflow store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import src
from src import privacy
from src.data.prepared import load_condition
from src.engine import pytorch as engine
from src.errors import DataError
from src.evaluation.condition import evaluate_model
from src.evaluation.metrics import (
    bodypart_table,
    evaluation_tags,
    mae_metrics,
    prediction_table,
    set_sizes,
)
from src.training.condition import train
from tests.conftest import REPO, compose_config, tiny_overrides, tiny_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Tiny cohorts generated and prepared once; every test trains into the same MLflow store."""
    root = tmp_path_factory.mktemp("train")
    tiny_project(root)
    return root


def configured(root: Path, *overrides: str):
    return compose_config(root, *tiny_overrides(root), *overrides)


def runs(root: Path, experiment: str = "synthetic_clinical", filter_string: str = ""):
    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return client, client.search_runs(
        [experiment_id], filter_string=filter_string, order_by=["attributes.start_time ASC"]
    )


@pytest.fixture(scope="module")
def trained(project):
    """Condition 2 trained once: (metrics returned, its MLflow run)."""
    metrics = train(configured(project, "labelled_frames=2"))
    _, found = runs(
        project, filter_string="tags.labelled_frames = '2' and tags.model_source = 'trained'"
    )
    return metrics, found[-1]


def test_condition_run_logs_config_tags_metrics_and_curves(project, trained):
    metrics, run = trained
    client, _ = runs(project)
    assert run.info.run_name == "frames=2" and run.info.status == "FINISHED"
    params = run.data.params
    assert (
        params["labelled_frames"] == "2"
        and params["model.name"] == "resnet_18"
        and params["training.iterations"] == "6"
    )
    for tag in ("git_commit", "data_version", "prepared_version", "split", "model_key"):
        assert len(run.data.tags[tag]) >= 7
    # the CPU pins the numbers were computed under (the training process ran with the defaults)
    # the CPU numerics the numbers were computed under: by default, this CPU's own class
    if src.cpu_class():
        assert run.data.tags["cpu_numerics.class"] == src.cpu_class()
        for name, value in src.CLASSES[src.cpu_class()].items():
            assert run.data.tags[f"cpu_numerics.{name}"] == value
    for set_name in ("train", "test", "generalisation"):
        assert run.data.metrics[f"mae_{set_name}_px"] == pytest.approx(
            metrics[f"mae_{set_name}_px"]
        )
        assert run.data.metrics[f"mae_{set_name}_cm"] == pytest.approx(
            metrics[f"mae_{set_name}_px"] * 3.5
        )
        assert 0 <= run.data.metrics[f"kept_{set_name}_pcutoff0.8"] <= 1
        assert run.data.metrics[f"n_{set_name}_participants"] >= 1
        assert (
            run.data.metrics[f"n_{set_name}_participants"]
            <= run.data.metrics[f"n_{set_name}_frames"]
            <= run.data.metrics[f"n_{set_name}_points"]
        )
    # The loss curve has one point per epoch, logged while DeepLabCut trained.
    epochs = int(run.data.params["derived.epochs"])
    history = client.get_metric_history(run.info.run_id, "loss_train")
    assert [m.step for m in history] == list(range(1, epochs + 1))
    assert len(client.get_metric_history(run.info.run_id, "loss_test")) == 2
    # DeepLabCut's in-training test rmse, under a name that says it is not the paper's MAE.
    assert len(client.get_metric_history(run.info.run_id, "dlc_training_rmse_matched_test_px")) == 2
    assert not any(name.startswith("training_mae") for name in run.data.metrics)
    assert "dlc_training_rmse_matched_test_px" in run.data.tags["metrics_guide"]
    assert "mae_<set>_px" in run.data.tags["metrics_guide"]
    assert run.data.tags["interval_method"] == "t_interval"  # what made its interval bounds
    stats = pd.read_csv(client.download_artifacts(run.info.run_id, "model/learning_stats.csv"))
    assert [m.value for m in history] == pytest.approx(stats["losses/train.total_loss"].tolist())


def test_logged_checkpoint_reloads_and_reproduces_logged_predictions(project, trained):
    _, run = trained
    client, _ = runs(project)
    model_dir = Path(client.download_artifacts(run.info.run_id, "model"))
    logged = pd.read_csv(client.download_artifacts(run.info.run_id, "predictions/test.csv"))
    cfg = configured(project)
    prepared = Path(cfg.paths.prepared_dir) / cfg.data.name
    # MLflow names videos by pseudonym; the same key (in the data folder) maps the prepared frames alike.
    selection = privacy.from_config(cfg).table(pd.read_csv(prepared / "selection.csv"))
    images = logged.drop_duplicates(["video", "frame"]).merge(
        selection[["video", "frame", "image"]]
    )["image"]
    assert len(images) == logged.drop_duplicates(["video", "frame"]).shape[0] > 0
    poses = engine.predict(
        model_dir / "pytorch_config.yaml",
        model_dir / "snapshot-last.pt",
        [prepared / i for i in images],
    )
    assert poses.reshape(-1, 3)[:, :2] == pytest.approx(
        logged[["x_pred", "y_pred"]].to_numpy(), abs=1e-3
    )
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} >= {
        "plots/loss.png",
        "plots/bodypart_errors.png",
        "plots/test_frames.png",
        "plots/generalisation_frames.png",
    }
    assert (
        "labelled_frames: 2"
        in Path(client.download_artifacts(run.info.run_id, "config/config.yaml")).read_text()
    )


def dlc_project(project: Path, run) -> tuple[Path, Path]:
    """The DeepLabCut project a condition's run trained in: its config.yaml and train folder."""
    work = next(
        (project / "models" / "synthetic_clinical").glob(f"frames2-*-{run.data.tags['model_key']}")
    )
    (train_dir,) = (work / "project").glob("dlc-models-pytorch/iteration-*/*/train")
    return work / "project" / "config.yaml", train_dir


def dlc_evaluation(config: Path, snapshotindex) -> pd.DataFrame:
    """DeepLabCut's evaluate_network of shuffle 1 at p-cutoff 0.8: one row per snapshot evaluated."""
    import deeplabcut

    shutil.rmtree(config.parent / "evaluation-results-pytorch", ignore_errors=True)
    deeplabcut.evaluate_network(str(config), Shuffles=[1], snapshotindex=snapshotindex, pcutoff=0.8)
    (combined,) = config.parent.glob("evaluation-results-pytorch/*/CombinedEvaluation-results.csv")
    return pd.read_csv(combined)


def assert_same_mae(dlc: pd.Series, metrics: dict[str, float]) -> None:
    """Our MAE with and without the p-cutoff equals DeepLabCut's rmse (written rounded to 2 decimals)."""
    assert dlc["test rmse"] == pytest.approx(metrics["mae_test_px"], abs=0.0051)
    assert dlc["train rmse"] == pytest.approx(metrics["mae_train_px"], abs=0.0051)
    if np.isnan(metrics["mae_test_pcutoff0.8_px"]):
        assert np.isnan(dlc["test rmse_pcutoff"])
    else:
        assert dlc["test rmse_pcutoff"] == pytest.approx(
            metrics["mae_test_pcutoff0.8_px"], abs=0.0051
        )


def dlc_name(train_dir: Path, epoch: int) -> str:
    """DeepLabCut's file name of the snapshot of ``epoch`` (snapshot-<epoch>.pt or snapshot-best-<epoch>.pt)."""
    (name,) = [p.name for p in train_dir.glob("snapshot-*.pt") if engine.snapshot_epoch(p) == epoch]
    return name


def test_test_mae_is_deeplabcuts_evaluate_network(project, trained):
    """Our MAE is the number DeepLabCut's evaluate_network reports for the same snapshot and frames.

    evaluation.snapshot=last is the last epoch; evaluation.snapshot=best is the snapshot
    evaluate_network evaluates by default (snapshotindex=-1). Each run names its snapshot.
    """
    metrics, run = trained  # evaluation.snapshot=last
    best = train(configured(project, "labelled_frames=2", "evaluation.snapshot=best"))  # reused
    _, found = runs(project, filter_string=f"tags.model_key = '{run.data.tags['model_key']}'")
    best_run = found[-1]
    assert best_run.data.tags["evaluation.snapshot"] == "best"
    config, train_dir = dlc_project(project, run)

    (default,) = dlc_evaluation(config, -1).to_dict("records")  # DeepLabCut's default snapshot
    results = dlc_evaluation(config, "all")
    epochs = int(run.data.params["derived.epochs"])
    last = results[results["Training epochs"] == epochs].iloc[0]
    assert_same_mae(last, metrics)
    assert_same_mae(pd.Series(default), best)
    assert run.data.tags["evaluated_snapshot"] == dlc_name(train_dir, epochs)
    assert run.data.tags["evaluated_epoch"] == str(epochs)
    best_epoch = int(default["Training epochs"])
    assert best_run.data.tags["evaluated_snapshot"] == dlc_name(train_dir, best_epoch)
    assert best_run.data.tags["evaluated_epoch"] == str(best_epoch)


def test_best_and_last_differ_when_the_best_epoch_is_not_the_last(project, trained):
    """With DeepLabCut's best snapshot at an earlier epoch than its last, best and last evaluate
    different snapshots, each equal to evaluate_network's: best its default (snapshotindex=-1).

    The training folder is renamed so (its first snapshot marked best, as DeepLabCut names a
    snapshot whose test rmse improved), then restored.
    """
    _, run = trained
    config, train_dir = dlc_project(project, run)
    found = sorted(train_dir.glob("snapshot-*.pt"), key=engine.snapshot_epoch)
    assert len(found) >= 2, [p.name for p in found]
    first, final = engine.snapshot_epoch(found[0]), engine.snapshot_epoch(found[-1])
    renamed = {
        p: train_dir
        / f"snapshot-{'best-' if p == found[0] else ''}{engine.snapshot_epoch(p):03}.pt"
        for p in found
    }
    client = MlflowClient(f"sqlite:///{project / 'mlruns' / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name("synthetic_clinical").experiment_id
    try:
        for old, new in renamed.items():
            old.rename(new)
        (default,) = dlc_evaluation(config, -1).to_dict("records")
        assert default["Training epochs"] == first
        everything = dlc_evaluation(config, "all")
        dlc = {
            "best": pd.Series(default),
            "last": everything[everything["Training epochs"] == final].iloc[0],
        }
        pose_config = train_dir / "pytorch_config.yaml"
        model = engine.Model(
            pose_config,
            engine.snapshots(train_dir.parent),
            list(engine.read_pose_config(pose_config)["metadata"]["bodyparts"]),
        )
        ours, tags = {}, {}
        for which in ("best", "last"):
            cfg = configured(project, "labelled_frames=2", f"evaluation.snapshot={which}")
            mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=f"{which} snapshot"
            ) as check:
                ours[which] = evaluate_model(cfg, load_condition(cfg), model)
            tags[which] = client.get_run(check.info.run_id).data.tags
            assert_same_mae(dlc[which], ours[which])
    finally:
        for old, new in renamed.items():
            if new.exists():
                new.rename(old)
    assert ours["best"]["mae_test_px"] != ours["last"]["mae_test_px"]  # two snapshots indeed
    assert tags["best"]["evaluated_snapshot"] == f"snapshot-best-{first:03}.pt"
    assert tags["best"]["evaluated_epoch"] == str(first)
    assert tags["last"]["evaluated_snapshot"] == f"snapshot-{final:03}.pt"
    assert tags["last"]["evaluated_epoch"] == str(final)


def test_same_configuration_reuses_the_model_at_new_cutoffs(project, trained):
    metrics, first = trained
    again = train(configured(project, "labelled_frames=2", "evaluation.pcutoffs=[0.0,0.05]"))
    client, found = runs(
        project, filter_string=f"tags.model_key = '{first.data.tags['model_key']}'"
    )
    latest = found[-1]
    assert latest.data.tags["model_source"] == f"reused from run {first.info.run_id}"
    assert "loss_train" not in latest.data.metrics  # nothing was trained
    assert again["mae_test_px"] == pytest.approx(metrics["mae_test_px"], abs=1e-3)
    # A cutoff of 0 keeps every point, so it equals the MAE without a cutoff.
    assert (
        again["mae_test_pcutoff0_px"] == pytest.approx(again["mae_test_px"])
        and again["kept_test_pcutoff0"] == 1.0
    )
    # Runs that reused a model store none: a third evaluation still fetches the trained run's model.
    train(configured(project, "labelled_frames=2", "evaluation.pcutoffs=[0.5]"))
    _, found = runs(project, filter_string=f"tags.model_key = '{first.data.tags['model_key']}'")
    assert found[-1].data.tags["model_source"] == f"reused from run {first.info.run_id}"


def test_zero_frames_evaluates_the_pretrained_model_without_training(project):
    metrics = train(configured(project, "labelled_frames=0"))
    client, found = runs(project, filter_string="tags.labelled_frames = '0'")
    run = found[-1]
    assert run.data.tags["model_source"].startswith("initial model (pretrained")
    assert "mae_train_px" not in metrics and "loss_train" not in run.data.metrics
    assert metrics["mae_generalisation_px"] > 0 and metrics["mae_test_px"] > 0
    assert not client.list_artifacts(run.info.run_id, "model")
    _, pretrain = runs(project, experiment="pretraining-synthetic_healthy_adults")
    assert [r.info.status for r in pretrain] == ["FINISHED"]  # pre-trained once, then reused


def test_condition_beyond_the_prepared_frames_names_the_keys(project):
    with pytest.raises(DataError, match=r"labelled_frames=5 .*frames.max_train_frames_per_video"):
        train(configured(project, "labelled_frames=5"))


def test_a_pck_reference_the_data_does_not_label_stops_before_training(project, trained):
    before = len(runs(project)[1])
    with pytest.raises(DataError, match=r"evaluation.pck.reference_bodyparts=\['nose', 'tail'\]"):
        train(
            configured(
                project, "labelled_frames=1", "evaluation.pck.reference_bodyparts=[nose,tail]"
            )
        )
    assert len(runs(project)[1]) == before  # no MLflow run was started, nothing was trained


def test_random_weights_at_zero_frames_skip_condition_zero_with_the_reason(project):
    """Random weights have no trained pose heads: condition 0 is skipped, and its run says why."""
    result = train(configured(project, "labelled_frames=0", "weights=random"))
    assert "weights=healthy_adults or weights=snapshot" in result["skipped"]
    _, found = runs(project, filter_string="tags.labelled_frames = '0'")
    run = found[-1]
    assert run.data.tags["skipped_reason"] == result["skipped"]
    assert run.info.status == "FINISHED"
    assert not any(name.startswith("mae_") for name in run.data.metrics)


def test_hub_weights_offline_fail_with_a_fix_not_a_traceback(project):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(project / "empty-hub-cache"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            *tiny_overrides(project),
            f"paths.data_dir={project / 'data'}",
            "synthetic=tiny",
            "labelled_frames=1",
            "weights=hub",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "cache" in result.stderr and "weights=healthy_adults" in result.stderr


@pytest.mark.slow
def test_frames_sweep_nests_runs_and_reports_a_failing_condition(project):
    """A multirun with one impossible condition: the others finish, the sweep exits non-zero."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            *tiny_overrides(project),
            f"paths.data_dir={project / 'data'}",
            "synthetic=tiny",
            "+sweep=frames",
            "labelled_frames=1,9,0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0
    assert (
        "[sweep] 2 of 3 jobs finished" in result.stdout
        and "FAILED labelled_frames=9" in result.stdout
    )
    client, found = runs(project, filter_string="tags.sweep = 'labelled_frames=0,1,2,4'")
    parent = found[-1]
    assert parent.info.status == "FAILED"
    children = {
        r.info.run_name: r
        for r in runs(project, filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")[1]
    }
    assert set(children) == {"frames=0", "frames=1"}
    assert all(
        r.info.status == "FINISHED" and "mae_generalisation_px" in r.data.metrics
        for r in children.values()
    )
    summary = pd.read_csv(client.download_artifacts(parent.info.run_id, "sweep_summary.csv"))
    assert sorted(summary["status"]) == ["FAILED", "finished", "finished"]


def test_iteration_budget_becomes_epochs_for_every_training_set_size():
    assert engine.epochs_for(120, 8, 24) == 40  # 3 batches per epoch
    assert engine.epochs_for(120, 8, 480) == 2  # 60 batches per epoch
    assert engine.epochs_for(400_000, 1, 480) == 834
    cfg = compose_config(Path("/tmp"), "training.iterations=120")
    pose = {
        "model": {
            "heads": {
                "bodypart": {
                    "heatmap_config": {"channels": [2048, 14]},
                    "locref_config": {"channels": [2048, 28]},
                }
            }
        }
    }
    updates = engine.pose_config_updates(
        compose_config(Path("/tmp"), "model=resnet_18").model, cfg.training, pose, (200, 160), 24
    )
    assert updates["train_settings.epochs"] == 40
    assert updates["runner.scheduler"]["params"]["milestones"] == [28, 36]
    assert (
        updates["data.train.crop_sampling"]["width"] == 200
        and updates["data.train.crop_sampling"]["height"] == 160
    )
    assert updates["model.heads.bodypart.heatmap_config.channels"] == [512, 14]
    assert updates["model.heads.bodypart.locref_config.channels"] == [512, 28]


def test_mae_with_and_without_cutoff_by_hand():
    frames = pd.DataFrame(
        {
            "participant": ["P1", "P1", "P2"],
            "video": ["v", "v", "w"],
            "frame": [0, 1, 0],
            "set": ["test", "test", "generalisation"],
            "image": ["a", "b", "c"],
        }
    )
    labels = pd.DataFrame(
        {
            "video": ["v", "v", "v", "v", "w"],
            "frame": [0, 0, 1, 1, 0],
            "bodypart": ["a", "b", "a", "b", "a"],
            "x": [0, 0, 0, 0, 0],
            "y": [0, 0, 0, 0, 0],
        }
    )
    # Errors 5 (p .9), 10 (p .5), 1 (p .95), unlabelled (b of frame w0), 2 (p .1).
    poses = np.array(
        [[[3, 4, 0.9], [6, 8, 0.5]], [[1, 0, 0.95], [0, 2, 0.1]], [[0, 0, 0.99], [9, 9, 0.99]]],
        dtype=float,
    )
    table = prediction_table(frames, labels, poses, ["a", "b"])
    metrics = mae_metrics(table, [0.8], cm_per_px=0.5)
    assert metrics["mae_test_px"] == pytest.approx((5 + 10 + 1 + 2) / 4)
    assert metrics["mae_test_pcutoff0.8_px"] == pytest.approx((5 + 1) / 2)
    assert metrics["kept_test_pcutoff0.8"] == pytest.approx(0.5)
    assert metrics["mae_test_cm"] == pytest.approx(4.5 * 0.5)
    assert metrics["mae_generalisation_px"] == 0 and metrics["n_generalisation_points"] == 1
    # What each set rests on: participants and frames with a labelled point, labelled points.
    assert set_sizes(table) == {
        "n_test_participants": 1.0,
        "n_test_frames": 2.0,
        "n_test_points": 4.0,
        "n_generalisation_participants": 1.0,
        "n_generalisation_frames": 1.0,
        "n_generalisation_points": 1.0,
    }
    assert set_sizes(table) == {k: v for k, v in metrics.items() if k.startswith("n_")}
    per_bodypart = bodypart_table(table, [0.8], 0.5)
    test_all = per_bodypart[
        (per_bodypart["set"] == "test") & per_bodypart["pcutoff"].isna()
    ].set_index("bodypart")
    assert test_all.loc["a", "mae_px"] == pytest.approx(3) and test_all.loc[
        "b", "mae_px"
    ] == pytest.approx(6)


def test_evaluated_snapshot_is_named_as_deeplabcut_names_it(tmp_path):
    """Our model folders hold snapshot-last.pt / snapshot-best.pt: the tags give DeepLabCut's names."""
    import torch

    pose_config = tmp_path / "pytorch_config.yaml"
    pose_config.write_text("runner:\n  key_metric: test.rmse\n")

    def snapshot(name: str, epoch: int, rmse: float) -> Path:
        metadata = {"epoch": epoch, "metrics": {"metrics/test.rmse": rmse}}
        torch.save({"model": {}, "metadata": metadata}, tmp_path / name)
        return tmp_path / name

    nan = float("nan")
    separate = engine.Model(
        pose_config,
        {
            "last": snapshot("snapshot-last.pt", 80, 9.0),
            "best": snapshot("snapshot-best.pt", 60, 7.0),
        },
        ["a"],
    )
    assert evaluation_tags(separate, "best")["evaluated_snapshot"] == "snapshot-best-060.pt"
    assert evaluation_tags(separate, "best")["evaluated_epoch"] == "60"
    assert evaluation_tags(separate, "last")["evaluated_snapshot"] == "snapshot-080.pt"
    # No other best kept: the last is DeepLabCut's best when its key metric was measured.
    last_is_best = engine.Model(pose_config, {"last": snapshot("a.pt", 80, 7.0)}, ["a"])
    never_measured = engine.Model(pose_config, {"last": snapshot("b.pt", 80, nan)}, ["a"])
    for which in ("best", "last"):
        assert evaluation_tags(last_is_best, which)["evaluated_snapshot"] == "snapshot-best-080.pt"
        assert evaluation_tags(never_measured, which)["evaluated_snapshot"] == "snapshot-080.pt"
    # A snapshot under DeepLabCut's own name (weights=snapshot) keeps it.
    given = engine.Model(pose_config, {"last": snapshot("snapshot-best-012.pt", 99, 1.0)}, ["a"])
    assert evaluation_tags(given, "last")["evaluated_snapshot"] == "snapshot-best-012.pt"
    assert evaluation_tags(given, "last")["evaluated_epoch"] == "12"
    assert "dlc_training_rmse_matched_test_px" in evaluation_tags(given, "last")["metrics_guide"]
