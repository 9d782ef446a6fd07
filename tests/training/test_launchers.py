"""Hydra launchers: the frames sweep in parallel (joblib) and through submitit's SLURM code path (local executor).

Real Hydra plugins, real DeepLabCut training (a few iterations), a real MLflow store. Each launcher's sweep
must give one parent run with every condition FINISHED under it, and the same numbers as the sequential sweep.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src.data.preparation import prepare
from src.synthetic.cohort import generate_all
from tests.conftest import REPO, TINY_TRAINING, compose_config, empty_mlflow_store, python_env

# The tiny configuration of tests/training/test_train.py, one torch thread per job (2 parallel jobs on 2 cores).
TINY = ["synthetic=tiny", *TINY_TRAINING, "training.threads=1"]
CONDITIONS = [1, 2]  # both train (0 only evaluates the initial model)
EXPERIMENT = "synthetic_clinical"
METRICS = ["mae_train_px", "mae_test_px", "mae_generalisation_px"]
pytestmark = pytest.mark.slow


def store_overrides(root: Path, data_root: Path, tracking_uri: str | None = None) -> list[str]:
    """One 'machine': its own models_dir (working copies, sweep folder) and MLflow store, shared data."""
    if tracking_uri is None:
        empty_mlflow_store(root / "mlruns" / "mlflow.db")
        tracking_uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    return [
        *TINY,
        f"paths.data_dir={data_root / 'data'}",
        f"paths.models_dir={root / 'models'}",
        f"mlflow.tracking_uri={tracking_uri}",
        f"mlflow.artifact_location={root / 'mlruns' / 'artifacts'}",
    ]


def prepare_tiny(data_root: Path) -> Path:
    """Tiny cohorts generated and prepared, the initial model pre-trained once; returns its models/pretrained/."""
    cfg = compose_config(data_root, *store_overrides(data_root, data_root))
    generate_all(cfg.synthetic)
    prepare(cfg)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.pretrain",
            *store_overrides(data_root, data_root),
            f"pipeline.dir={data_root / 'pipeline'}",
        ],
        cwd=REPO,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return data_root / "models" / "pretrained"


def new_machine(root: Path, pretrained: Path) -> Path:
    """A working folder with a copy of the pre-trained initial model (as `dvc pull` or a first job would leave)."""
    shutil.copytree(pretrained, root / "models" / "pretrained")
    return root


def sweep_command(
    root: Path,
    data_root: Path,
    *overrides: str,
    tracking_uri: str | None = None,
    conditions=CONDITIONS,
) -> list[str]:
    """`python -m src.train +sweep=frames` over ``conditions`` on the machine ``root``."""
    return [
        sys.executable,
        "-m",
        "src.train",
        "+sweep=frames",
        *store_overrides(root, data_root, tracking_uri),
        f"labelled_frames={','.join(map(str, conditions))}",
        *overrides,
    ]


def finished(
    command: list[str], done: subprocess.CompletedProcess, conditions=CONDITIONS
) -> subprocess.CompletedProcess:
    """``done``, after asserting that the sweep exited 0 with every job finished."""
    assert done.returncode == 0, (
        f"{' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
    assert f"[sweep] {len(conditions)} of {len(conditions)} jobs finished" in done.stdout, (
        done.stdout[-3000:]
    )
    return done


def sweep(
    root: Path,
    data_root: Path,
    *overrides: str,
    tracking_uri: str | None = None,
    conditions=CONDITIONS,
) -> subprocess.CompletedProcess:
    """`python -m src.train +sweep=frames` over ``conditions``; asserts that it exited 0."""
    command = sweep_command(
        root, data_root, *overrides, tracking_uri=tracking_uri, conditions=conditions
    )
    done = subprocess.run(
        command, cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=900
    )
    return finished(command, done, conditions)


def sweeps_side_by_side(*sweeps: tuple[Path, list[int]], data_root: Path) -> None:
    """The sweeps of :func:`sweep` over (machine, conditions) at once: each process spends most of
    its time importing, on one core. Asserts that each exited 0 with every job finished."""
    jobs = []
    for root, conditions in sweeps:
        command = sweep_command(root, data_root, conditions=conditions)
        out, err = root / "sweep.out", root / "sweep.err"
        with open(out, "w") as stdout, open(err, "w") as stderr:
            job = subprocess.Popen(
                command, cwd=REPO, env=python_env(), stdout=stdout, stderr=stderr
            )
        jobs.append((command, conditions, job, out, err))
    for command, conditions, job, out, err in jobs:
        job.wait(timeout=900)
        done = subprocess.CompletedProcess(
            command, job.returncode, out.read_text(), err.read_text()
        )
        finished(command, done, conditions)


def sweep_runs(
    client: MlflowClient, parent_id: str | None = None
) -> tuple[object, dict[int, object]]:
    """The newest sweep parent run (or ``parent_id``) and its children by labelled_frames."""
    experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    if parent_id is None:
        parent_id = client.search_runs(
            [experiment_id],
            "tags.sweep LIKE 'labelled_frames=%'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )[0].info.run_id
    children = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    return client.get_run(parent_id), {int(r.data.tags["labelled_frames"]): r for r in children}


def check_sweep(
    client: MlflowClient, conditions=CONDITIONS, parent_id: str | None = None
) -> dict[int, dict]:
    """One FINISHED parent with one FINISHED, trained child per condition; returns the children's MAE metrics."""
    parent, children = sweep_runs(client, parent_id)
    assert parent.info.status == "FINISHED"
    assert sorted(children) == sorted(conditions)
    for n, run in children.items():
        assert run.info.status == "FINISHED", (n, run.info.status)
        assert run.data.tags["model_source"] == "trained", n
        assert set(METRICS) <= set(run.data.metrics), (n, run.data.metrics)
    summary = pd.read_csv(client.download_artifacts(parent.info.run_id, "sweep_summary.csv"))
    assert sorted(summary["status"]) == ["finished"] * len(conditions)
    return {n: {m: run.data.metrics[m] for m in METRICS} for n, run in children.items()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(data root, pre-trained folder, the sequential sweep's metrics): the reference every launcher
    must equal. The sweep of test_sequential_training_is_deterministic (condition 2 again, on a
    machine of its own) runs beside it."""
    data_root = tmp_path_factory.mktemp("launchers")
    pretrained = prepare_tiny(data_root)
    basic = new_machine(data_root / "basic", pretrained)
    again = new_machine(data_root / "again", pretrained)
    sweeps_side_by_side((basic, CONDITIONS), (again, [2]), data_root=data_root)
    reference = check_sweep(MlflowClient(f"sqlite:///{basic / 'mlruns' / 'mlflow.db'}"))
    return data_root, pretrained, reference


def test_sequential_training_is_deterministic(tiny):
    """The claim the launcher tests rest on: the same condition trained again (beside the reference
    sweep, on a machine of its own) gives the same numbers."""
    data_root, _, reference = tiny
    again = data_root / "again"
    metrics = check_sweep(
        MlflowClient(f"sqlite:///{again / 'mlruns' / 'mlflow.db'}"), conditions=[2]
    )
    assert metrics[2] == reference[2]


@pytest.mark.parametrize("launcher", ["parallel", "slurm_local"])
def test_launcher_runs_every_condition_under_one_parent_with_the_sequential_numbers(tiny, launcher):
    data_root, pretrained, reference = tiny
    machine = new_machine(data_root / launcher, pretrained)
    started = time.time()
    done = sweep(machine, data_root, f"hydra/launcher={launcher}")
    client = MlflowClient(f"sqlite:///{machine / 'mlruns' / 'mlflow.db'}")
    assert check_sweep(client) == reference  # exactly: same config, same data, deterministic on CPU
    # The jobs ran in other processes than the launching one (loky workers, submitit jobs).
    _, children = sweep_runs(client)
    assert all(run.data.params["training.threads"] == "1" for run in children.values())
    multirun = machine / "models" / "multirun"
    assert (multirun / "multirun.yaml").is_file()
    assert not list(
        (multirun / ".sweep_jobs").glob("*/*.json")
    )  # the job records were read and removed
    if launcher == "slurm_local":
        logs = list((multirun / ".submitit").glob("*/*_log.out"))
        assert len(logs) == len(CONDITIONS), logs  # one submitit job (and log) per condition
        assert "Joblib" not in done.stderr
    else:
        assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr
    # Nothing of the launchers lands in the repository.
    assert not written_since(
        REPO, started, (".submitit", "multirun.yaml", ".sweep_jobs", "outputs")
    )


def written_since(root: Path, since: float, names: tuple[str, ...]) -> list[Path]:
    """Files or folders called one of ``names`` under ``root`` (virtualenv and git excluded) changed since ``since``."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".venv", ".git", ".dvc")]
        found += [
            Path(folder) / n
            for n in [*dirs, *files]
            if n in names and (Path(folder) / n).stat().st_mtime >= since
        ]
    return found
