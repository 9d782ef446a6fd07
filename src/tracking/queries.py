"""Reading the MLflow store back: experiments, sweeps, the runs of a study, stored models."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src import engine
from src.errors import DataError
from src.tracking import store

log = logging.getLogger(__name__)
SWEEP_COMMAND = "python -m src.train +sweep=frames"  # what fills the store, for the messages


def open_experiment(mlflow_cfg: DictConfig) -> tuple[MlflowClient, str]:
    """The client of the configured store and the experiment's id; never creates either."""
    # in a queued DVC experiment (a temporary copy): the workspace's store
    uri = store.tracking_uri(str(mlflow_cfg.tracking_uri))
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise DataError(
            f"the MLflow store {uri} does not exist; run the sweep first: `{SWEEP_COMMAND}`."
        )
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(str(mlflow_cfg.experiment))
    if experiment is None:
        raise DataError(
            f"the MLflow store {uri} has no experiment {mlflow_cfg.experiment!r}; "
            f"run the sweep first: `{SWEEP_COMMAND}`."
        )
    return client, experiment.experiment_id


def find_sweep(
    client: MlflowClient, experiment_id: str, sweep: str = "latest"
) -> mlflow.entities.Run:
    """The parent run ``sweep`` (a run id), or for ``latest`` the newest ended sweep with labelled-frames runs.

    A sweep still running is taken only when no sweep has ended (pass its id to report it anyway).
    """
    where = f"store {client.tracking_uri}, experiment id {experiment_id}"
    if sweep != "latest":
        try:
            parent = client.get_run(str(sweep))
        except MlflowException:
            raise DataError(
                f"report.sweep={sweep} is no run of the {where}; use latest or a sweep's parent run id "
                "(see `make ui`)."
            ) from None
        if parent.info.experiment_id != experiment_id:
            raise DataError(
                f"report.sweep={sweep} belongs to another experiment than mlflow.experiment ({where})."
            )
        return parent
    children = client.search_runs(
        [experiment_id], "tags.labelled_frames LIKE '%'", max_results=50000
    )
    parent_ids = {run.data.tags.get("mlflow.parentRunId") for run in children} - {None}
    if not parent_ids:
        raise DataError(f"no labelled-frames sweep in the {where}; run one: `{SWEEP_COMMAND}`.")
    parents = sorted(
        (client.get_run(i) for i in parent_ids),
        key=lambda r: (r.info.status != "RUNNING", r.info.start_time),
    )
    newest = parents[-1]
    if newest.info.status == "RUNNING":
        log.warning("sweep %s is still running: its report is partial", newest.info.run_id)
    running = [
        p.info.run_id
        for p in parents
        if p.info.status == "RUNNING" and p.info.start_time > newest.info.start_time
    ]
    if running:
        log.warning(
            "newer sweep(s) %s still running; reporting %s (report.sweep=<id> to choose)",
            running,
            newest.info.run_id,
        )
    return newest


def collect_runs(
    client: MlflowClient,
    experiment_id: str,
    parent_run_id: str | None = None,
    run_ids: list[str] | None = None,
) -> pd.DataFrame:
    """One row per labelled-frames condition: labelled_frames, run_id, run_name, status, metrics.

    The runs are the children of ``parent_run_id``, or exactly ``run_ids``. Sorted by labelled_frames; of
    runs of the same condition the newest finished one is kept (the newest of any status when none finished).
    A cross-validation's runs (tag ``fold``, split=kfold) give one row per fold and condition, with a
    ``fold`` column (int), sorted by fold, then labelled_frames; a single split's have no ``fold``.
    """
    if run_ids is not None:
        runs = [client.get_run(run_id) for run_id in run_ids]
    else:
        runs = client.search_runs(
            [experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=50000
        )
    rows = [
        {
            "labelled_frames": int(run.data.tags["labelled_frames"]),
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "status": run.info.status,
            "start_time": run.info.start_time,
            "model_source": run.data.tags.get("model_source", ""),
            **({"fold": int(run.data.tags["fold"])} if "fold" in run.data.tags else {}),
            **run.data.metrics,
        }
        for run in runs
        if "labelled_frames" in run.data.tags
    ]
    if not rows:
        raise DataError(
            f"sweep {parent_run_id or run_ids} in store {client.tracking_uri} has no labelled-frames runs; "
            f"run one: `{SWEEP_COMMAND}`."
        )
    table = pd.DataFrame(rows).assign(finished=lambda t: t["status"] == "FINISHED")
    cell = ["fold", "labelled_frames"] if "fold" in table else ["labelled_frames"]
    if "fold" in table:  # a fold column holds ints (pandas made it float where a run has none)
        table["fold"] = table["fold"].astype("Int64")
    table = table.sort_values(["finished", "start_time"]).drop_duplicates(cell, keep="last")
    return table.drop(columns="finished").sort_values(cell).reset_index(drop=True)


def download_model(run_id: str, folder: Path) -> engine.Model:
    """The model stored by an earlier run, from its MLflow artifact ``model/``."""
    folder.mkdir(parents=True, exist_ok=True)
    return engine.load_model(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="model", dst_path=str(folder)
            )
        )
    )
