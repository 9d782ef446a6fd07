"""MLflow: where runs go, what identifies code, data and models, and the runs of a study.

The store is configuration (``mlflow.tracking_uri``); by default a SQLite database and the
artifacts both live in ``mlruns/`` at the repository root. Open it with ``make ui``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from src.errors import DataError
from src.files import process_alive
from src.tracking.credentials import check_access, redact

PARENT_RUN_ENV = "POSE_SWEEP_PARENT_RUN_ID"  # set by the sweep callback for the jobs of a multirun


REUSED_PREFIX = (
    "reused from run "  # tag model_source of a run whose model another run trained: + its id
)


def repository_path(path: str) -> Path:
    """A relative path of the configuration, against the DVC repository a stage runs for.

    DVC sets ``DVC_ROOT`` for a stage's command: the workspace, also for queued or temporary
    experiments (``dvc exp run --queue``/``--temp``), which run in a copy under
    ``.dvc/tmp/exps/``; without it (not under DVC) the working directory. So the MLflow store of a
    queued experiment is the workspace's, not a copy's that is deleted after the run.
    """
    root = os.environ.get("DVC_ROOT")
    return Path(path) if Path(path).is_absolute() or not root else Path(root) / path


def tracking_uri(uri: str) -> str:
    """``mlflow.tracking_uri`` with a relative SQLite file resolved by :func:`repository_path`."""
    if uri.startswith("sqlite:///"):
        return "sqlite:///" + str(repository_path(uri.removeprefix("sqlite:///")))
    return uri


def configure(mlflow_cfg: DictConfig) -> str:
    """Point MLflow at the configured store and experiment; returns the experiment id.

    Against a tracking server (``http(s)://``) a local ``artifact_location`` folder is ignored: the folder
    would exist on this machine only, so new experiments take the server's default, its proxied
    ``--artifacts-destination`` (docs/tracking_server.md). A URI (``s3://...``) is passed on as given.
    A server that refuses our login or this experiment stops the stage here, in one line.
    """
    uri = tracking_uri(str(mlflow_cfg.tracking_uri))
    check_access(uri, str(mlflow_cfg.experiment))  # a login or permission problem, before any work
    mlflow.set_tracking_uri(uri)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(str(mlflow_cfg.experiment))
    if experiment is not None:
        return experiment.experiment_id
    location = mlflow_cfg.get("artifact_location")
    if location and "://" not in str(location):
        server = uri.startswith(("http://", "https://"))
        location = None if server else repository_path(str(location)).resolve().as_uri()
    try:
        return client.create_experiment(str(mlflow_cfg.experiment), artifact_location=location)
    except mlflow.exceptions.MlflowException:  # created meanwhile by a concurrent job
        return client.get_experiment_by_name(str(mlflow_cfg.experiment)).experiment_id


def saved_run(run_id: str, named_by: Path) -> mlflow.entities.Run:
    """The run a saved model names (``named_by``, e.g. a pipeline's run.yaml), or one line if the
    configured store does not hold it (the model was trained against another ``mlflow.tracking_uri``)."""
    try:
        return MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    raise DataError(
        f"{named_by} names MLflow run {run_id}, which the store mlflow.tracking_uri="
        f"{redact(mlflow.get_tracking_uri())} does not hold: the model was trained against another "
        "store. Set mlflow.tracking_uri to that store, or train it again into this one: dvc repro "
        "(which restores run.yaml)"
    )


def flat_params(
    cfg: DictConfig, keys: list[str] | None = None, exclude: list[str] = ()
) -> dict[str, str]:
    """The composed configuration (its top-level ``keys``, less ``exclude``) as MLflow params: dotted keys."""
    flat: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            flat[prefix] = json.dumps(node) if isinstance(node, (list, dict)) else str(node)

    resolved = OmegaConf.to_container(cfg, resolve=True)
    walk(
        "",
        {
            k: v
            for k, v in resolved.items()
            if k not in ("hydra", *exclude) and (keys is None or k in keys)
        },
    )
    return flat


def digest(obj: Any) -> str:
    """A short, stable hash of any JSON-serialisable value (configs, file digests)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def folder_version(root: Path, pattern: str = "**/*") -> str:
    """Hash of the relative paths and contents of every non-hidden file under ``root``."""
    root = Path(root)
    files = sorted(
        p
        for p in root.glob(pattern)
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    sha = hashlib.sha256()
    for path in files:
        sha.update(str(path.relative_to(root)).encode())
        with open(path, "rb") as handle:
            sha.update(hashlib.file_digest(handle, "sha256").digest())
    return sha.hexdigest()[:16]


def git_commit() -> str:
    """The current commit, with ``-dirty`` when tracked files differ from it; 'unknown' outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def find_finished_run(experiment_id: str, model_key: str) -> mlflow.entities.Run | None:
    """The newest finished run that trained the model identified by ``model_key`` (and so stores it)."""
    runs = _trainings(experiment_id, model_key, "attributes.status = 'FINISHED'")
    return runs[0] if runs else None


def _trainings(experiment_id: str, model_key: str, status: str) -> list[mlflow.entities.Run]:
    """The runs that trained the model ``model_key``, newest first, whose status matches ``status``."""
    return MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.model_key = '{model_key}' and tags.model_source = 'trained' and {status}",
        order_by=["attributes.start_time DESC"],
    )


def process_tags() -> dict[str, str]:
    """Tags naming the process that owns a run, so a later run can tell a live run from one whose process died."""
    return {"host": socket.gethostname(), "pid": str(os.getpid())}


def is_live(run: mlflow.entities.Run) -> bool:
    """Whether a run may still be written by its process: RUNNING, and on another host or with a live pid here."""
    if run.info.status != "RUNNING":
        return False
    tags = run.data.tags
    if tags.get("host") != socket.gethostname() or not tags.get("pid"):
        return True  # cannot check another machine's processes: assume it lives
    return process_alive(int(tags["pid"]))


def find_interrupted_run(experiment_id: str, model_key: str) -> mlflow.entities.Run | None:
    """The newest run that began training the model ``model_key`` and never finished (killed or failed)."""
    runs = _trainings(experiment_id, model_key, "attributes.status != 'FINISHED'")
    return next((run for run in runs if not is_live(run)), None)


def end_orphaned_runs(experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs of this host whose process is gone (a sweep killed mid-way); returns their ids."""
    client = MlflowClient()
    orphans = [
        run
        for run in client.search_runs(
            [experiment_id],
            f"attributes.status = 'RUNNING' and tags.host = '{socket.gethostname()}'",
        )
        if not is_live(run)
    ]
    for run in orphans:
        client.set_terminated(run.info.run_id, "KILLED")
    return [run.info.run_id for run in orphans]


def pipeline_parent_run(experiment_id: str, setup_key: str) -> str:
    """The parent run of the DVC pipeline's conditions that share one setup (data, model, training, weights).

    Found by its ``pipeline_key`` tag, or created by the first condition; the report stage ends it.
    """
    client = MlflowClient()
    found = client.search_runs(
        [experiment_id],
        f"tags.pipeline_key = '{setup_key}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    return client.create_run(
        experiment_id,
        run_name="dvc pipeline",
        tags={
            "pipeline_key": setup_key,
            "sweep": "dvc repro (labelled_frames: pipeline.conditions)",
            "git_commit": git_commit(),
        },
    ).info.run_id


def finish(run_id: str, failed: bool) -> None:
    MlflowClient().set_terminated(
        run_id, RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
    )


def parent_run_id() -> str | None:
    return os.environ.get(PARENT_RUN_ENV) or None
