"""engine=tensorflow: DeepLabCut 2.x's TensorFlow engine behind the same stages (issue 16).

Real DeepLabCut TensorFlow code throughout: its create_training_dataset, train_network (a few
iterations from a locally built random-initialised ResNet-50, in a child process) and
evaluate_network, on the tiny synthetic cohort (96 x 80 px frames).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src import engine
from src.data.prepared import read_prepared
from src.errors import DataError
from src.evaluation.metrics import mae_metrics, prediction_table
from src.training.condition import train
from tests.conftest import REPO, compose_config, python_env, tiny_overrides, tiny_project

TF = ["engine=tensorflow", "training.batch_size=1", "training.evaluations=2"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Tiny cohorts generated and prepared once."""
    root = tmp_path_factory.mktemp("tensorflow")
    tiny_project(root)
    return root


def configured(root: Path, *overrides: str):
    return compose_config(root, *tiny_overrides(root), *overrides)


def runs(root: Path, filter_string: str = "", experiment: str = "synthetic_clinical"):
    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return client, client.search_runs(
        [experiment_id], filter_string=filter_string, order_by=["attributes.start_time ASC"]
    )


@pytest.fixture(scope="module")
def dlc2_project(project):
    """A DLC 2.x project with a trained TensorFlow snapshot, as a user would bring one: made by
    DeepLabCut's own create_training_dataset (engine=TF) and train_network (6 iterations from a
    random-initialised backbone). It was trained on the development train frames and on one frame
    of a participant our split holds out; the development test frames are its test set."""
    from src.engine import tensorflow

    cfg = configured(project, "engine=tensorflow", "training.iterations=6", "training.batch_size=1")
    prepared = Path(cfg.paths.prepared_dir) / cfg.data.name
    facts, selection, labels = read_prepared(prepared)
    chosen = selection.copy()
    first_held_out = chosen.index[chosen["role"] == "generalisation"][0]
    chosen.loc[first_held_out, "role"] = "train"  # a frame our split holds out, in its training
    chosen = chosen[chosen["role"].isin(["train", "test"])]
    frames = engine.TrainingFrames(prepared, facts, chosen, labels)
    tensorflow.set_threads(2)
    training_set, pose_config, updates = tensorflow.prepare_training(
        frames, project / "dlc2" / "project", cfg.model, cfg.training
    )
    init = tensorflow.fresh_weight_init("random", pose_config, project / "dlc2" / "init", 42)
    tensorflow.train(training_set, updates, init)
    return training_set, tensorflow.snapshots(training_set.model_folder)["last"], chosen


# --- fast: configuration, environment, errors ---


def test_engine_config_group_chooses_the_module(tmp_path):
    """engine=pytorch is the default; engine=tensorflow gives the TensorFlow module; both offer
    the same operations; an unknown engine is one line naming the key."""
    default = compose_config(tmp_path)
    assert default.engine.name == "pytorch"
    assert engine.for_config(default).__name__ == "src.engine.pytorch"
    chosen = compose_config(tmp_path, "engine=tensorflow")
    module = engine.for_config(chosen)
    assert module.__name__ == "src.engine.tensorflow"
    operations = [
        "prepare_training",
        "train",
        "resume_point",
        "snapshots",
        "weight_init",
        "fresh_weight_init",
        "snapshot_model",
        "pretrained_model",
        "save_pretrained",
        "predict",
        "video_inference_runner",
        "video_inference",
        "predictions_table",
        "save_model",
        "load_model",
        "set_threads",
        "budget",
        "learning_stats_file",
    ]
    for name in operations:
        assert callable(getattr(engine.module("pytorch"), name)), name
        assert callable(getattr(module, name)), name
    with pytest.raises(DataError, match="engine.name='caffe' is unknown; use engine=pytorch"):
        engine.for_config(compose_config(tmp_path, "engine.name=caffe"))


def test_tensorflow_imports_after_torch_under_numpy_2_with_one_opencv():
    """TensorFlow, DeepLabCut's TensorFlow package and imgaug import in a process that also holds
    torch, numpy stays 2.x, and imgaug brought no second OpenCV."""
    code = (
        "from src.engine.tensorflow import import_tensorflow\n"
        "tf = import_tensorflow()\n"
        "import imgaug, numpy, torch, cv2\n"
        "from importlib import metadata\n"
        "names = {d.metadata['Name'].lower() for d in metadata.distributions()}\n"
        "print(tf.__version__, numpy.__version__, imgaug.__version__,"
        " sorted(n for n in names if n.startswith('opencv')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tf_version, numpy_version, imgaug_version, opencv = result.stdout.strip().split(" ", 3)
    assert tf_version == "2.21.0"
    assert numpy_version.startswith("2.")
    assert imgaug_version == "0.4.0"
    assert opencv == "['opencv-python-headless']"


def _reachable(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


def test_hub_weights_offline_fail_with_a_fix(tmp_path):
    """weights=hub with engine=tensorflow offline: one line naming the checkpoint and how to get it."""
    from deeplabcut.utils import auxfun_models, auxiliaryfunctions

    from src.engine import tensorflow

    target = (
        auxiliaryfunctions.get_deeplabcut_path() / auxfun_models.MODELTYPE_FILEPATH_MAP["resnet_50"]
    )
    if list(target.parent.glob(target.name + "*")) or _reachable("download.tensorflow.org"):
        pytest.skip("DeepLabCut's ImageNet checkpoint is here or downloadable: nothing fails")
    with pytest.raises(tensorflow.HubWeightsUnavailable) as error:
        tensorflow.hub_weights("resnet_50")
    message = str(error.value)
    assert "resnet_v1_50.ckpt" in message and "Fix:" in message
    assert "weights=healthy_adults|snapshot|random" in message


def test_snapshot_that_is_not_there_names_the_key(project):
    """weights.path of a TensorFlow snapshot that does not exist: one line, before anything runs."""
    cfg = configured(
        project,
        "engine=tensorflow",
        "labelled_frames=0",
        "weights=snapshot",
        f"weights.path={project / 'nowhere' / 'snapshot-5'}",
    )
    with pytest.raises(DataError, match=r"snapshot-5.index .*weights.path.*snapshot-200000"):
        train(cfg)


# --- slow: DeepLabCut's TensorFlow training and evaluation ---


@pytest.mark.slow
def test_mae_equals_deeplabcuts_evaluate_network(project, dlc2_project):
    """Our MAE of a TensorFlow snapshot equals DeepLabCut's evaluate_network on the same frames,
    with and without p-cutoff (its results file rounds to 2 decimals). The cutoff is the median
    likelihood of the young model, so that it keeps some points and drops others."""
    import deeplabcut
    import yaml

    from src.engine import tensorflow

    training_set, snapshot, chosen = dlc2_project
    prepared = Path(configured(project).paths.prepared_dir) / "synthetic_clinical"
    facts, _, labels = read_prepared(prepared)
    model = tensorflow.snapshot_model(snapshot)
    poses = tensorflow.predict(model.pose_config, snapshot, [prepared / i for i in chosen["image"]])
    cutoff = round(float(np.median(poses[:, :, 2])), 2)
    frames = chosen.drop(columns="set").rename(columns={"role": "set"})  # DeepLabCut's split
    ours = mae_metrics(prediction_table(frames, labels, poses, facts["bodyparts"]), [cutoff], None)
    assert 0 < ours[f"kept_train_pcutoff{cutoff:g}"] < 1

    config_path = training_set.project_config
    config = yaml.safe_load(config_path.read_text())
    config["pcutoff"] = cutoff
    config_path.write_text(yaml.safe_dump(config))
    shutil.rmtree(config_path.parent / "evaluation-results", ignore_errors=True)
    deeplabcut.evaluate_network(str(config_path), Shuffles=[1], plotting=False)
    (combined,) = config_path.parent.glob("evaluation-results/*/CombinedEvaluation-results.csv")
    results = pd.read_csv(combined)
    iteration = tensorflow.snapshot_epoch(snapshot)
    dlc = results[results["Training iterations:"] == iteration].iloc[0]
    assert dlc["p-cutoff used"] == cutoff
    assert dlc[" Train error(px)"] == pytest.approx(ours["mae_train_px"], abs=0.0051)
    assert dlc[" Test error(px)"] == pytest.approx(ours["mae_test_px"], abs=0.0051)
    for ours_name, dlc_name in (
        (f"mae_train_pcutoff{cutoff:g}_px", "Train error with p-cutoff"),
        (f"mae_test_pcutoff{cutoff:g}_px", "Test error with p-cutoff"),
    ):
        if np.isnan(ours[ours_name]):
            assert np.isnan(dlc[dlc_name])
        else:
            assert dlc[dlc_name] == pytest.approx(ours[ours_name], abs=0.0051)


@pytest.mark.slow
def test_users_snapshot_is_evaluated_on_the_split_without_training(project, dlc2_project):
    """A DLC 2.x TensorFlow snapshot-N evaluated as condition 0 (weights=snapshot): test and
    generalisation MAE with p-cutoff columns in MLflow, and nothing trained."""
    _, snapshot, chosen = dlc2_project
    before = sorted(p.name for p in snapshot.parent.iterdir())
    metrics = train(
        configured(
            project,
            "engine=tensorflow",
            "labelled_frames=0",
            "weights=snapshot",
            f"weights.path={snapshot}",
        )
    )
    for name in ("mae_test_px", "mae_generalisation_px", "mae_generalisation_pcutoff0.8_px"):
        assert name in metrics
    assert metrics["mae_generalisation_px"] > 0
    _, found = runs(project, "tags.engine = 'tensorflow' and tags.labelled_frames = '0'")
    run = found[-1]
    # the held-out participant's frames it was trained on count as its train set, not generalisation
    prepared = Path(configured(project).paths.prepared_dir) / "synthetic_clinical"
    _, selection, _ = read_prepared(prepared)
    in_training = selection[
        (selection["role"] == "generalisation") & selection["image"].isin(chosen["image"])
    ]
    assert int(run.data.tags["frames_in_models_training"]) == len(in_training) > 0
    assert metrics["n_train_frames"] == len(in_training)
    assert metrics["n_generalisation_frames"] == (
        selection["role"] == "generalisation"
    ).sum() - len(in_training)
    assert run.info.status == "FINISHED"
    assert run.data.tags["model_source"].startswith("initial model (snapshot:")
    assert run.data.tags["evaluated_snapshot"] == snapshot.name
    assert run.data.metrics["mae_generalisation_px"] == pytest.approx(
        metrics["mae_generalisation_px"]
    )
    assert "loss_train" not in run.data.metrics  # not trained
    assert sorted(p.name for p in snapshot.parent.iterdir()) == before


@pytest.mark.slow
def test_pretrained_tensorflow_model_trains_a_condition_with_live_loss(project, capfd):
    """weights=healthy_adults with engine=tensorflow: a TensorFlow ResNet pre-trained here from a
    locally built random checkpoint, then condition 1 trained from it (all variables: its
    iterations continue from the pre-training's), every iteration's loss in MLflow, evaluated;
    its updates counted by the progress bar, not printed one line each."""
    metrics = train(configured(project, *TF, "labelled_frames=1", "training.iterations=4"))
    printed = capfd.readouterr()
    lines = (printed.out + printed.err).splitlines()
    assert any(re.match(r"train frames1: 4/4 updates", line) for line in lines), lines[-20:]
    assert not [line for line in lines if line.startswith("iteration: ")]
    assert np.isfinite(metrics["mae_test_px"]) and np.isfinite(metrics["mae_generalisation_px"])
    client, found = runs(project, "tags.engine = 'tensorflow' and tags.labelled_frames = '1'")
    run = found[-1]
    assert run.data.params["engine.name"] == "tensorflow"
    assert run.data.params["derived.iterations"] == "4"
    losses = client.get_metric_history(run.info.run_id, "loss_train")
    assert len(losses) == 4 and all(np.isfinite(m.value) for m in losses)
    pre_iterations = int(configured(project).pretraining.iterations)
    assert [m.step for m in losses] == [pre_iterations + i for i in range(1, 5)]
    _, pretrained = runs(project, experiment="pretraining-synthetic_healthy_adults")
    assert pretrained[-1].data.params["engine.name"] == "tensorflow"
    assert run.data.tags["evaluated_snapshot"] == f"snapshot-{pre_iterations + 4}"


@pytest.mark.slow
def test_a_models_folder_relative_to_the_working_directory_trains(project, monkeypatch):
    """paths.models_dir relative, as params.yaml has it (data/models): DeepLabCut's TensorFlow
    training changes into its train/ folder, and still finds its initial weights and frames."""
    monkeypatch.chdir(project)
    cfg = configured(project, *TF, "labelled_frames=1", "weights=random", "training.iterations=2")
    cfg.paths.models_dir = "relative-models"
    metrics = train(cfg)
    assert np.isfinite(metrics["mae_test_px"])
    assert list(Path("relative-models").glob("synthetic_clinical/frames1-*/model/*"))


@pytest.mark.slow
def test_killed_tensorflow_training_resumes_in_the_same_run(project):
    """kill -9 during a TensorFlow training; the same command continues from the last snapshot in
    the same MLflow run, each iteration's loss logged once."""
    overrides = [
        *tiny_overrides(project),
        f"paths.data_dir={project / 'data'}",
        "synthetic=tiny",
        *TF,
        "labelled_frames=2",
        "weights=random",
        "training.iterations=8",
    ]
    command = [sys.executable, "-m", "src.train", *overrides]
    work = project / "models" / "synthetic_clinical"
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=python_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    snapshot = None
    while snapshot is None and time.time() < deadline and process.poll() is None:
        time.sleep(1)
        found = list(work.glob("frames2-*/project/dlc-models/iteration-0/*/train/snapshot-4.index"))
        snapshot = found[0] if found else None
    assert snapshot is not None, "no snapshot-4 before the kill"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(2)  # the training child dies with its parent
    again = subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=900
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "resuming training from snapshot-" in again.stdout
    client, found = runs(project, "tags.engine = 'tensorflow' and tags.labelled_frames = '2'")
    assert len(found) == 1
    run = found[0]
    assert run.info.status == "FINISHED" and run.data.tags["attempt"] == "2"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss_train")]
    assert sorted(steps) == list(range(1, 9))
    assert "mae_generalisation_px" in run.data.metrics


@pytest.mark.slow
def test_failing_tensorflow_training_ends_the_process(project, dlc2_project, tmp_path):
    """A frame that DeepLabCut's loader thread cannot read: the training fails with an error
    instead of waiting for batches forever."""
    from src.engine import tensorflow

    training_set, snapshot, chosen = dlc2_project
    broken = tmp_path / "project"
    shutil.copytree(training_set.project_config.parent, broken)
    for config in [broken / "config.yaml", *broken.glob("dlc-models/*/*/*/pose_cfg.yaml")]:
        config.write_text(
            config.read_text().replace(str(training_set.project_config.parent), str(broken))
        )
    for image in (broken / "labeled-data").rglob("*.png"):
        image.write_bytes(b"not a png")
    copy = tensorflow.open_training_set(broken)
    updates = {"iterations": 30, "save_iters": 30, "display_iters": 1, "batch_size": 1}
    start = time.time()
    with pytest.raises(RuntimeError, match="TensorFlow training failed"):
        tensorflow.train(copy, updates, tensorflow.weight_init(snapshot, None))
    assert time.time() - start < 300


@pytest.mark.slow
def test_video_inference_of_a_tensorflow_model_equals_its_frame_inference(
    project, dlc2_project, tmp_path
):
    """Videos through the interface (as src.analyze runs them) with a TensorFlow model: one row per
    decoded frame in DeepLabCut's table format, and the same poses as frame inference."""
    import cv2

    from src.engine import tensorflow

    _, snapshot, _ = dlc2_project
    model = tensorflow.snapshot_model(snapshot)
    video = next((project / "data" / "synthetic" / "clinical" / "videos").glob("*.mp4"))
    runner = engine.video_inference_runner(model, "last", 1, "cpu")
    predictions = engine.video_inference(runner, video)
    capture = cv2.VideoCapture(str(video))
    n_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, first = capture.read()
    capture.release()
    assert ok and len(predictions) == n_frames
    table = engine.predictions_table(
        predictions, "DLC_tf", tensorflow.read_pose_config(model.pose_config), tmp_path, "tracks"
    )
    assert table.shape == (n_frames, 3 * len(model.bodyparts))
    assert (tmp_path / "tracks.h5").is_file() and (tmp_path / "tracks.csv").is_file()
    cv2.imwrite(str(tmp_path / "first.png"), first)
    (pose,) = tensorflow.predict(model.pose_config, snapshot, [tmp_path / "first.png"])
    np.testing.assert_allclose(predictions[0]["bodyparts"][0], pose, rtol=1e-5, atol=1e-4)
