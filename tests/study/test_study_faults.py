"""Faults on a user's study: a small DeepLabCut project (the real Reaching project, cut to 20 frames at
a quarter of their size) brought in with the README's own commands (`python -m src.params data=dlc_project
data.root=...`, then `make study`) in a private copy of the repository, then broken:

- `make study`'s whole process group killed (SIGKILL) in the middle of a training: the next `make study`
  resumes that cell and reuses the finished ones;
- the disk fills while a snapshot is written (RLIMIT_FSIZE lowered on the running training): one line,
  the last whole snapshot and the MLflow store intact, and the same command resumes;
- the tracking server stops in the middle of a training and comes back: the training's metrics wait
  and arrive once; when it stays away, the training stops with one line and resumes later;
- two studies at once on one server: nothing mixed.

One study is set up for the module (brought in, its frames prepared and its initial model pre-trained
by `dvc repro`, as `make study` begins); each fault trains its own condition, so that the tests do not
depend on each other.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pandas as pd
import pytest
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from src.tracking.live_curves import MetricBuffer
from tests.conftest import REACHING, REPO, empty_mlflow_store, python_env
from tools.local_servers import free_port, mlflow_server

# The README's first command, with the smallest training the suite uses (12 updates of one batch: 12
# epochs, a snapshot every 3); one video, so split=frames. Condition 0 is skipped (the initial model
# predicts none of Reaching's bodyparts): condition 2 is the study's one training.
STUDY = [
    "data=dlc_project",
    "data.name=reaching",
    "split=frames",
    "synthetic=tiny",
    "model=resnet_18",
    "frames.max_train_frames_per_video=4",
    "training.iterations=12",
    "training.evaluations=4",
    "pretraining.iterations=4",
    "pretraining.frames_per_video=4",
    "pipeline.conditions=[0,2]",
]
# One condition's training as the pipeline's train stage runs it (dvc.yaml: train@<n>).
TRAIN_STAGE = ["-m", "src.train", "--config-dir", ".", "--config-name", "params", "evaluate=false"]
CURVES = ("loss_train", "loss_test")
# The Default experiment's artifact location in a new store of `mlflow server --serve-artifacts`.
SERVER_DEFAULT_LOCATION = "mlflow-artifacts:/0"


def small_reaching(target: Path, frames: int = 20, scale: int = 4, source: Path = REACHING) -> Path:
    """The Reaching project's first ``frames`` labelled frames, each ``scale`` times smaller (its labels
    too): a real DeepLabCut project that trains in seconds on a CPU. CSV labels only. ``source``: a
    copy of the Reaching project elsewhere (the same video folder and scorer)."""
    video = "labeled-data/reachingvideo1"
    (target / video).mkdir(parents=True)
    shutil.copyfile(source / "config.yaml", target / "config.yaml")
    table = pd.read_csv(
        source / video / "CollectedData_Mackenzie.csv", header=[0, 1, 2], index_col=0
    )
    table = table.iloc[:frames] / scale
    for image in table.index:
        pixels = cv2.imread(str(source / image))
        height, width = pixels.shape[:2]
        small = cv2.resize(pixels, (width // scale, height // scale), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(target / image), small)
    table.to_csv(target / video / "CollectedData_Mackenzie.csv")
    return target


def copy_repository(target: Path) -> Path:
    """What a user's clone holds for `make study` (code, configs, Makefile, dvc.yaml, lock files with
    their times, so that `make setup` has nothing to do), with this virtualenv as its .venv."""
    target.mkdir()
    for name in ("src", "conf", "tools"):
        shutil.copytree(REPO / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "conf" / "study" / "current.yaml").unlink(missing_ok=True)
    (target / "conf" / "study" / "previous.yaml").unlink(missing_ok=True)
    for name in ("Makefile", "dvc.yaml", ".dvcignore", ".gitignore", "requirements.lock"):
        shutil.copy2(REPO / name, target / name)
    for name in ("requirements-tools.lock", "requirements-nodeps.txt"):
        shutil.copy2(REPO / name, target / name)
    (target / "docs").mkdir()
    shutil.copyfile(REPO / "docs" / "paper_table1.csv", target / "docs" / "paper_table1.csv")
    (target / ".venv").symlink_to(Path(sys.executable).parents[1])
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(command, cwd=target, env=python_env(), check=True, capture_output=True)
    empty_mlflow_store(target / "mlruns" / "mlflow.db", cwd=target)
    return target


def run(repo: Path, *command: str, env: dict | None = None, timeout: int = 600):
    return subprocess.run(
        command,
        cwd=repo,
        env=env or python_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def ran_stages(output: str) -> list[str]:
    return re.findall(r"^Running stage '([^']+)'", output, flags=re.M)


def training_folder(models: Path, n: int) -> Path | None:
    """The DeepLabCut model folder (…/train/ holds snapshots and learning_stats.csv) of condition ``n``."""
    found = sorted(models.glob(f"reaching/frames{n}-*/project/**/train"))
    return found[0] if found else None


def epochs_done(models: Path, n: int) -> int:
    folder = training_folder(models, n)
    try:
        return int(pd.read_csv(folder / "learning_stats.csv")["step"].max())
    except (TypeError, FileNotFoundError, pd.errors.EmptyDataError, KeyError, ValueError):
        return 0  # not started, or caught mid-write


def wait_for_epoch(
    models: Path, n: int, epoch: int, job: subprocess.Popen, timeout: float = 300
) -> int:
    deadline = time.monotonic() + timeout
    while (done := epochs_done(models, n)) < epoch:
        assert job.poll() is None, f"the job ended before epoch {epoch} (at {done})"
        assert time.monotonic() < deadline, f"epoch {epoch} not reached within {timeout} s"
        time.sleep(0.1)
    return done


def wait_until_reaped(group: int, timeout: float = 60) -> None:
    """Until every process of a killed process group is gone, zombies included. The killed dvc is
    orphaned, and the machine's init may reap it a second or more later: while its PID exists, DVC
    takes its lock on the outputs as held, and the next `dvc repro` stops as busy."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(group, 0)  # succeeds while a process of the group, or its zombie, is left
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"process group {group} still there after {timeout} s"
        time.sleep(0.1)


def curve_steps(client: MlflowClient, run_id: str) -> dict[str, list[int]]:
    return {
        name: sorted(m.step for m in client.get_metric_history(run_id, name)) for name in CURVES
    }


def whole_curves(client: MlflowClient, run) -> None:
    """Every epoch's training and test loss is in the run exactly once, as DeepLabCut logged them."""
    stats = pd.read_csv(client.download_artifacts(run.info.run_id, "model/learning_stats.csv"))
    steps = curve_steps(client, run.info.run_id)
    epochs = int(run.data.params["derived.epochs"])
    assert steps["loss_train"] == list(range(1, epochs + 1))
    assert steps["loss_test"] == sorted(stats.dropna(subset=["losses/eval.total_loss"])["step"])
    assert stats["step"].tolist() == list(range(1, epochs + 1))


def one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return errors[0]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A user's study brought in with the README's command, in a private copy of the repository."""
    root = tmp_path_factory.mktemp("study")
    project = small_reaching(root / "Reaching-Mackenzie-2018-08-30")
    repo = copy_repository(root / "repo")
    ok(run(repo, sys.executable, "-m", "src.params", f"data.root={project}", *STUDY))
    # What `make study` runs first (the check, the frames, the initial model): every test needs it.
    ok(run(repo, "dvc", "repro", "prepare", "pretrain"))
    return repo


@pytest.mark.slow
def test_make_study_killed_mid_training_resumes_that_cell_and_reuses_the_finished_ones(study):
    repo = study
    with open(repo / "first.log", "w") as log:
        job = subprocess.Popen(
            ["make", "study"],
            cwd=repo,
            env=python_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # Epoch 4 logged: the snapshot of epoch 3 is whole; 8 epochs of 12 are still to come.
        killed_at = wait_for_epoch(repo / "data" / "models", 2, 4, job)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        wait_until_reaped(job.pid)
    assert killed_at < 12
    first = (repo / "first.log").read_text()
    started = ran_stages(first)
    assert started[-1] == "train@2", first[-3000:]
    finished = set(started[:-1])  # each locked in dvc.lock before the next one started

    again = ok(run(repo, "make", "study"))
    rerun = ran_stages(again)
    assert rerun[0] == "train@2" and not finished & set(rerun), rerun
    for reused in ("check", "prepare", "pretrain", *finished):  # not run again
        assert f"Stage '{reused}' didn't change, skipping" in again, reused
    assert "continuing interrupted MLflow run" in again and "(attempt 2)" in again
    assert "resuming training from snapshot-" in again  # not from epoch 0
    assert "results table: reports/results.md" in again

    client = MlflowClient(f"sqlite:///{repo / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("reaching").experiment_id
    trained = client.search_runs([experiment], "tags.labelled_frames = '2'")
    assert len(trained) == 1  # one run for the cell, never two
    run_2 = trained[0]
    assert run_2.info.status == "FINISHED" and run_2.data.tags["attempt"] == "2"
    whole_curves(client, run_2)
    assert not list(training_folder(repo / "data" / "models", 2).glob(".*tmp-*"))
    # The final table is the runs' numbers: condition 2 trained, condition 0 skipped with its reason.
    table = pd.read_csv(repo / "reports/results.csv", index_col=0, float_precision="round_trip")
    assert table.index.tolist() == [0, 2]
    assert table.loc[2, "test"] == run_2.data.metrics["mae_test_px"]
    assert table.loc[2, "generalisation"] == run_2.data.metrics["mae_generalisation_px"]
    assert "Data and pipelines are up to date" in ok(run(repo, "dvc", "status"))


@pytest.mark.slow
def test_disk_full_while_a_snapshot_is_written_stops_in_one_line_and_keeps_the_last_one(study):
    import torch

    repo, models = study, study / "data" / "models"
    command = [sys.executable, *TRAIN_STAGE, "labelled_frames=1"]
    job = subprocess.Popen(
        command,
        cwd=repo,
        env=python_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_epoch(models, 1, 4, job)
    train = training_folder(models, 1)
    (kept,) = train.glob("snapshot-*003.pt")
    before = kept.read_bytes()
    # The disk fills: no file of the training may grow beyond half a snapshot from now on (Python
    # ignores SIGXFSZ, so the write fails with EFBIG as on a full disk with ENOSPC).
    limit = len(before) // 2
    resource.prlimit(job.pid, resource.RLIMIT_FSIZE, (limit, limit))
    out, err = job.communicate(timeout=300)
    assert job.returncode == 2, out[-2000:] + err[-3000:]
    line = one_error_line(err)
    assert "cannot write the snapshot" in line and "File too large" in line, line
    assert "run the same command again" in line
    # The snapshot before is whole and loads with its optimizer state; nothing half-written is left.
    assert kept.read_bytes() == before
    assert "optimizer" in torch.load(kept, map_location="cpu", weights_only=False)
    assert [p.name for p in train.glob("*.pt*")] == [kept.name]
    assert not list(train.glob(".*tmp-*"))
    # The store is intact: the run failed, its epochs so far logged once; the same command resumes it.
    client = MlflowClient(f"sqlite:///{repo / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("reaching").experiment_id
    (failed,) = client.search_runs([experiment], "tags.labelled_frames = '1'")
    assert failed.info.status == "FAILED"
    steps = curve_steps(client, failed.info.run_id)["loss_train"]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 4

    again = ok(run(repo, *command))
    assert f"continuing interrupted MLflow run {failed.info.run_id} (attempt 2)" in again
    assert "resuming training from snapshot-" in again and "003.pt" in again
    finished = client.get_run(failed.info.run_id)
    assert finished.info.status == "FINISHED"
    whole_curves(client, finished)


@pytest.mark.slow
def test_server_away_mid_training_its_metrics_arrive_once_and_a_long_outage_stops_in_one_line(
    study, tmp_path, request
):
    repo, models = study, study / "data" / "models"
    store, artifacts, port = (
        f"sqlite:///{tmp_path / 'server.db'}",
        tmp_path / "artifacts",
        free_port(),
    )
    empty_mlflow_store(tmp_path / "server.db", default_location=SERVER_DEFAULT_LOCATION)
    # MLflow's retries, which set how long the server may stay away after the training, made short.
    env = python_env() | {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    }
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, *TRAIN_STAGE, "labelled_frames=3", f"mlflow.tracking_uri={url}"]
    command += [
        "training.iterations=30",
        "training.evaluations=3",
    ]  # 30 epochs, a snapshot every 10
    with mlflow_server(store, artifacts, port):
        job = subprocess.Popen(
            command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        request.addfinalizer(job.kill)  # never left paused when an assertion fails
        away_at = wait_for_epoch(models, 3, 2, job)
        # Paused while the server stops (up to 30 s when a request is in flight), and again while it
        # starts, so that a fast machine cannot end the training before the server is back.
        job.send_signal(signal.SIGSTOP)
    # Away while the training goes on, then back on the same port and store.
    job.send_signal(signal.SIGCONT)
    wait_for_epoch(models, 3, away_at + 3, job)
    job.send_signal(signal.SIGSTOP)
    with mlflow_server(store, artifacts, port):
        back_at = epochs_done(models, 3)
        job.send_signal(signal.SIGCONT)
        client = MlflowClient(url)
        (running,) = client.search_runs(
            [client.get_experiment_by_name("reaching").experiment_id],
            "tags.labelled_frames = '3'",
        )
        deadline = time.monotonic() + 60
        while len(sent := curve_steps(client, running.info.run_id)["loss_train"]) < back_at:
            assert time.monotonic() < deadline, (sent, back_at)  # they are sent every 2 s
            time.sleep(0.5)
        assert sent == list(range(1, len(sent) + 1)), sent  # the missed epochs, each once
        job.send_signal(
            signal.SIGSTOP
        )  # paused again, so that it ends only once the server is away
        assert job.poll() is None and epochs_done(models, 3) < 30, "ended before the second outage"
    job.send_signal(signal.SIGCONT)
    # Away again, now until the training has ended and MLflow's retries are spent: one line.
    out, err = job.communicate(timeout=300)
    assert job.returncode == 2, out[-2000:] + err[-3000:]
    assert "MLflow did not answer" in out  # the training went on, its metrics kept
    line = one_error_line(err)
    assert f"mlflow.tracking_uri={url} did not answer" in line and "run the same command" in line
    with mlflow_server(store, artifacts, port):
        again = ok(run(repo, *command, env=env))
        assert f"continuing interrupted MLflow run {running.info.run_id} (attempt 2)" in again
        finished = client.get_run(running.info.run_id)
        assert finished.info.status == "FINISHED"
        whole_curves(client, finished)  # every epoch once: before, during and after both outages


@pytest.mark.slow
def test_two_studies_at_once_on_one_server_mix_no_run_and_no_metric(study, tmp_path):
    """Two users, each with their own checkout's models (the pre-trained model copied) and their own
    study (MLflow experiment), train at once into one server."""
    repo = study
    users = ("ana", "ben")
    for user in users:
        shutil.copytree(
            repo / "data" / "models" / "pretrained", tmp_path / user / "models" / "pretrained"
        )
    empty_mlflow_store(tmp_path / "server.db", default_location=SERVER_DEFAULT_LOCATION)
    with mlflow_server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts") as (url, _):
        jobs = {
            user: subprocess.Popen(
                [sys.executable, *TRAIN_STAGE, "labelled_frames=1", f"mlflow.tracking_uri={url}"]
                + [
                    f"mlflow.experiment=reaching-{user}",
                    f"paths.models_dir={tmp_path / user}/models",
                ]
                + [f"pipeline.dir={tmp_path / user}/pipeline", "training.iterations=6"],
                cwd=repo,
                env=python_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for user in users
        }
        for user, job in jobs.items():
            output = job.communicate(timeout=600)[0]
            assert job.returncode == 0, f"{user}: {output[-3000:]}"
        client = MlflowClient(url)
        for user in users:
            experiment = client.get_experiment_by_name(f"reaching-{user}").experiment_id
            found = client.search_runs([experiment], "")
            trained = [r for r in found if r.data.tags.get("labelled_frames") == "1"]
            assert len(trained) == 1 and trained[0].info.status == "FINISHED"
            run_id = trained[0].info.run_id
            # its parent is its own study's; its models folder is its user's; its curves whole
            parent = client.get_run(trained[0].data.tags["mlflow.parentRunId"])
            assert parent.info.experiment_id == experiment
            assert {r.info.run_id for r in found} == {run_id, parent.info.run_id}
            assert trained[0].data.params["paths.models_dir"] == f"{tmp_path / user}/models"
            whole_curves(client, trained[0])
            saved = (tmp_path / user / "pipeline" / "models" / "frames_1" / "run.yaml").read_text()
            assert f"run_id: {run_id}" in saved


class FlakyClient:
    """An MlflowClient whose server answers only when ``up``; it records what it stored."""

    def __init__(self):
        self.up, self.stored = True, []

    def log_batch(self, run_id, metrics):
        if not self.up:
            raise MlflowException("API request failed: Max retries exceeded (Connection refused)")
        self.stored += [(m.key, m.step) for m in metrics]


def test_metric_buffer_keeps_what_the_server_missed_and_sends_each_key_and_step_once():
    client = FlakyClient()
    buffer = MetricBuffer(client, "run", logged={("loss_train", 1)})  # a continued run's epoch 1
    rows = [Metric("loss_train", 0.5, 0, step) for step in (1, 2)]
    buffer.add(rows)
    assert buffer.flush() and client.stored == [("loss_train", 2)]
    client.up = False
    buffer.add([*rows, Metric("loss_train", 0.4, 0, 3), Metric("loss_test", 0.6, 0, 3)])
    assert not buffer.flush() and len(buffer.pending) == 2  # kept in memory
    buffer.add([Metric("loss_train", 0.3, 0, 4)])
    client.up = True
    assert buffer.flush() and not buffer.pending and buffer.error is None
    assert sorted(client.stored) == [("loss_test", 3)] + [("loss_train", s) for s in (2, 3, 4)]


def test_a_snapshot_is_written_whole_or_not_at_all_and_a_full_disk_is_one_line(tmp_path):
    """torch.save under the engine's whole_snapshots, in a process whose files may not exceed 1 MB (as a full disk)."""
    script = f"""
import resource, torch
from pathlib import Path
from src.errors import DataError
from src.engine.pytorch import whole_snapshots
target = Path({str(tmp_path)!r}) / "snapshot-003.pt"
with whole_snapshots(target.parent):
    torch.save({{"w": torch.ones(10)}}, target)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    try:
        torch.save({{"w": torch.zeros(1_000_000)}}, target)
    except DataError as error:
        print(error)
"""
    (tmp_path / ".snapshot-003.pt.tmp-999999999").write_bytes(b"left by a dead process")
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith(
        f"cannot write the snapshot {tmp_path / 'snapshot-003.pt'}: File too large"
    )
    import torch

    assert torch.load(tmp_path / "snapshot-003.pt")["w"].tolist() == [1.0] * 10  # the one before
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot-003.pt"]  # no temporary file left
