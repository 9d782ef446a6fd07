"""Which trained model an analysis uses: its MLflow run, its weights and its skeleton."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import mlflow
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src.engine import pytorch as engine
from src.errors import DataError
from src.tracking import store
from src.tracking.queries import download_model

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@dataclass
class ModelRun:
    """The MLflow run an analysis is linked to and the run whose artifact ``model/`` holds its
    weights."""

    run: mlflow.entities.Run
    model_run_id: str  # differs from run.info.run_id when the run reused an earlier run's model

    @property
    def run_id(self) -> str:
        return self.run.info.run_id


def find_model_run(analysis_cfg: DictConfig, experiment_id: str) -> ModelRun:
    """``analysis.run_id``, or the best FINISHED run of ``analysis.labelled_frames`` by
    ``analysis.metric`` (lowest)."""
    client = MlflowClient()
    if analysis_cfg.run_id:
        try:
            run = client.get_run(str(analysis_cfg.run_id))
        except mlflow.exceptions.MlflowException:
            raise DataError(
                f"analysis.run_id={analysis_cfg.run_id} is no run of the MLflow store "
                f"{mlflow.get_tracking_uri()}; copy a run id from the MLflow UI (make ui) or give "
                "analysis.labelled_frames=<n> instead."
            ) from None
        return _with_model(run)
    if analysis_cfg.labelled_frames is None:
        raise DataError(
            "say which model to use: analysis.run_id=<MLflow run id> or "
            "analysis.labelled_frames=<n> (the best finished run of that condition by "
            "analysis.metric)."
        )
    n_frames, metric = int(analysis_cfg.labelled_frames), str(analysis_cfg.metric)
    runs = client.search_runs(
        [experiment_id],
        f"tags.labelled_frames = '{n_frames}' and attributes.status = 'FINISHED'",
        max_results=5000,
    )
    ranked = sorted(
        (r for r in runs if metric in r.data.metrics),
        key=lambda r: (r.data.metrics[metric], r.info.start_time),
    )
    if not ranked:
        raise DataError(
            f"no FINISHED run of labelled_frames={n_frames} with metric {metric} in MLflow "
            f"experiment {experiment_id} ({mlflow.get_tracking_uri()}); train it (`python -m "
            f"src.train labelled_frames={n_frames}`) or choose another analysis.metric / "
            "analysis.run_id."
        )
    return _with_model(ranked[0])


def _with_model(run: mlflow.entities.Run) -> ModelRun:
    source = run.data.tags.get("model_source", "")
    if source.startswith("initial model"):
        raise DataError(
            f"run {run.info.run_id} ({run.info.run_name}) evaluated the initial model, which is "
            "not stored in MLflow (condition 0); analyse with a trained condition, e.g. "
            "analysis.labelled_frames=20, or train one (`python -m src.train "
            "labelled_frames=<n>`)."
        )
    if source.startswith(store.REUSED_PREFIX):
        # Same model_key: the weights live in the run that trained them.
        return ModelRun(run, source.removeprefix(store.REUSED_PREFIX).split()[0])
    return ModelRun(run, run.info.run_id)


def download_model_and_skeleton(
    model_run: ModelRun, folder: Path
) -> tuple[engine.Model, list[list[str]]]:
    """The run's ``model/`` artifact as a model, and the skeleton of its data set (from its
    project config)."""
    try:
        model = download_model(model_run.model_run_id, folder)
    except (mlflow.exceptions.MlflowException, OSError):
        raise DataError(
            f"MLflow run {model_run.model_run_id} has no artifact model/ (its training did not "
            "finish, or it is not a training run); choose another analysis.run_id or "
            "analysis.labelled_frames."
        ) from None
    project_config = model.pose_config.parent / "project_config.yaml"
    skeleton = []
    if project_config.is_file():
        skeleton = yaml.safe_load(project_config.read_text(encoding="utf-8")).get("skeleton") or []
    return model, [list(pair) for pair in skeleton]


def scorer_name(cfg: DictConfig, model_run: ModelRun, snapshot: str) -> str:
    """DeepLabCut-style scorer (``DLC_<model>_<data>_<run>_<snapshot>``): the H5 header and the
    file names."""
    return f"DLC_{cfg.model.name}_{cfg.data.name}_{model_run.model_run_id[:8]}_{snapshot}"
