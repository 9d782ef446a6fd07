"""Faults: a training killed with SIGKILL resumes in the same MLflow run; concurrent sweeps lose nothing;
outputs are replaced atomically. Real DeepLabCut trainings in subprocesses, a real MLflow store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src.files import atomic_directory, atomic_files
from src.tracking import store
from src.training.pretraining import ensure_pretrained
from tests.conftest import REPO, empty_mlflow_store, tiny_overrides, tiny_project
from tests.training.test_train import runs


def overrides(root: Path, *more: str) -> list[str]:
    return [*tiny_overrides(root), f"paths.data_dir={root / 'data'}", "synthetic=tiny", *more]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The tiny cohort generated, prepared and its initial model pre-trained once (nothing to kill there)."""
    root = tmp_path_factory.mktemp("faults")
    ensure_pretrained(tiny_project(root))
    return root


def train_command(root: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "src.train", *overrides(root, *more)]


def epochs_done(root: Path) -> int:
    """The last epoch in DeepLabCut's learning_stats.csv of the condition-2 training under ``root``, 0 if none."""
    for stats in root.glob(
        "models/synthetic_clinical/frames2-*/project/**/train/learning_stats.csv"
    ):
        try:
            return int(pd.read_csv(stats)["step"].max())
        except (pd.errors.EmptyDataError, KeyError, ValueError):
            return 0  # caught mid-write
    return 0


@pytest.mark.slow
def test_training_killed_mid_way_resumes_from_its_snapshot_in_the_same_run(project):
    # 20 updates of one batch each = 20 epochs, a snapshot every 5: killed in epoch 7 or so, after a snapshot.
    budget = ["labelled_frames=2", "training.iterations=20", "training.evaluations=4"]
    job = subprocess.Popen(
        train_command(project, *budget),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while epochs_done(project) < 6:  # the snapshot of epoch 5 is whole once epoch 6 is logged
        assert job.poll() is None, (
            f"the training ended before it could be killed:\n{job.stdout.read()[-3000:]}"
        )
        assert time.monotonic() < deadline, "epoch 6 not reached within 300 s"
        time.sleep(0.2)
    job.send_signal(signal.SIGKILL)
    job.wait()
    _, killed = runs(project, filter_string="tags.labelled_frames = '2'")
    assert [r.info.status for r in killed] == [
        "RUNNING"
    ]  # what SIGKILL leaves: MLflow never heard the end

    again = subprocess.run(
        train_command(project, *budget), cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert f"continuing interrupted MLflow run {killed[0].info.run_id} (attempt 2)" in again.stdout
    assert "resuming training from snapshot-" in again.stdout  # not from epoch 0

    client, found = runs(project, filter_string="tags.labelled_frames = '2'")
    assert [r.info.run_id for r in found] == [
        killed[0].info.run_id
    ]  # one run for the condition, never two
    run = found[0]
    assert run.info.status == "FINISHED" and run.data.tags["attempt"] == "2"
    assert {"mae_train_px", "mae_test_px", "mae_generalisation_px"} <= set(run.data.metrics)
    # Every epoch's loss is in the run exactly once, across the two attempts.
    epochs = int(run.data.params["derived.epochs"])
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss_train")) == list(
        range(1, epochs + 1)
    )
    stats = pd.read_csv(client.download_artifacts(run.info.run_id, "model/learning_stats.csv"))
    assert stats["step"].tolist() == list(range(1, epochs + 1))


@pytest.mark.slow
def test_two_sweeps_at_once_into_one_store_lose_no_run_and_no_metric(project):
    # Opposite orders: both start training at once, then each needs the condition the other is training.
    sweeps = [
        subprocess.Popen(
            train_command(project, "+sweep=frames", f"labelled_frames={order}"),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for order in ("1,3", "3,1")
    ]
    outputs = [sweep.communicate(timeout=900)[0] for sweep in sweeps]
    for sweep, output in zip(sweeps, outputs):
        assert sweep.returncode == 0, output[-3000:]

    client, parents = runs(
        project, filter_string="tags.sweep_overrides LIKE '%labelled_frames=%,%'"
    )
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    by_condition: dict[str, list] = {"1": [], "3": []}
    for parent in parents:
        _, children = runs(
            project, filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
        )
        assert sorted(c.data.tags["labelled_frames"] for c in children) == ["1", "3"]
        for child in children:
            assert child.info.status == "FINISHED"
            by_condition[child.data.tags["labelled_frames"]].append(child)
    for condition, pair in by_condition.items():
        # Trained once (the other sweep waited for it and reused the model), evaluated twice alike.
        assert sorted(r.data.tags["model_source"] == "trained" for r in pair) == [False, True], (
            condition
        )
        first, second = (pd.Series(r.data.metrics).filter(regex="^mae_").sort_index() for r in pair)
        pd.testing.assert_series_equal(
            first, second, rtol=0, atol=0
        )  # NaN (no point kept) equals NaN here
        trained = next(r for r in pair if r.data.tags["model_source"] == "trained")
        epochs = int(trained.data.params["derived.epochs"])
        assert len(client.get_metric_history(trained.info.run_id, "loss_train")) == epochs


def test_a_failed_write_leaves_the_previous_output_whole(tmp_path):
    reports = tmp_path / "reports"
    with atomic_files(reports) as staging:
        (staging / "results.csv").write_text("condition,mae\n0,1.5\n")
    with pytest.raises(RuntimeError), atomic_files(reports) as staging:
        (staging / "results.csv").write_text(
            "condition,mae\n0,"
        )  # half-written when the stage dies
        raise RuntimeError("killed")
    assert (reports / "results.csv").read_text() == "condition,mae\n0,1.5\n"
    assert [p.name for p in reports.iterdir()] == ["results.csv"]  # no staging folder left behind

    model = tmp_path / "models" / "frames_2"
    with atomic_directory(model) as staging:
        (staging / "run.yaml").write_text("run_id: a\n")
    with pytest.raises(RuntimeError), atomic_directory(model) as staging:
        (staging / "run.yaml").write_text("run_")
        raise RuntimeError("killed")
    assert (model / "run.yaml").read_text() == "run_id: a\n"
    assert sorted(p.name for p in model.parent.iterdir()) == ["frames_2"]


def test_a_run_left_running_by_a_dead_process_is_recognised(tmp_path):
    empty_mlflow_store(tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment(
        "e", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = client.create_run(experiment_id, tags=store.process_tags() | {"pid": str(dead.pid)})
    alive = client.create_run(experiment_id, tags=store.process_tags() | {"pid": str(os.getpid())})
    elsewhere = client.create_run(
        experiment_id, tags={"host": "another-machine", "pid": str(dead.pid)}
    )
    assert [store.is_live(client.get_run(r.info.run_id)) for r in (orphan, alive, elsewhere)] == [
        False,
        True,
        True,
    ]
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert store.end_orphaned_runs(experiment_id) == [orphan.info.run_id]
    assert client.get_run(orphan.info.run_id).info.status == "KILLED"
    assert client.get_run(alive.info.run_id).info.status == "RUNNING"
