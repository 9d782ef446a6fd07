"""Which trained model an analysis uses: its MLflow run, its weights and its skeleton.

``analysis.run_id`` may be a run id or a registered model, ``models:/<name>@<alias>`` (or
``models:/<name>/<version>``; ``python -m src.report`` registers them, src/tracking/registry.py):
the registered version's own files are used, and its training run is the run the analysis links to.
A registered version may carry its trust calibrator (``registered_calibrator``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import mlflow
import yaml
from mlflow.models import Model as MlflowModel
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src import engine
from src.errors import DataError
from src.tracking import store
from src.tracking.queries import download_model

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
REGISTRY_PREFIX = "models:/"


@dataclass
class ModelRun:
    """The MLflow run an analysis is linked to and the run whose artifact ``model/`` holds its
    weights."""

    run: mlflow.entities.Run
    model_run_id: str  # differs from run.info.run_id when the run reused an earlier run's model
    model_uri: str | None = None  # models:/<name>@<alias>: the weights are the registered version's

    @property
    def run_id(self) -> str:
        return self.run.info.run_id


def find_model_run(analysis_cfg: DictConfig, experiment_id: str) -> ModelRun:
    """``analysis.run_id``, or the best FINISHED run of ``analysis.labelled_frames`` by
    ``analysis.metric`` (lowest)."""
    client = MlflowClient()
    if analysis_cfg.run_id:
        return resolve_model(
            str(analysis_cfg.run_id), "analysis.run_id", ", or analysis.labelled_frames=<n>"
        )
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


def resolve_model(reference: str, key: str, alternative: str = "") -> ModelRun:
    """The model a run id or ``models:/<name>@<alias>`` names (``key``: the setting, for
    messages; ``alternative``: another way out, for messages)."""
    client = MlflowClient()
    if reference.startswith(REGISTRY_PREFIX):
        return registered_model_run(client, reference, key)
    try:
        run = client.get_run(reference)
    except mlflow.exceptions.MlflowException:
        raise DataError(
            f"{key}={reference} is no run of the MLflow store {mlflow.get_tracking_uri()}; copy a "
            f"run id from the MLflow UI (make ui) or give models:/<data set>@champion{alternative}."
        ) from None
    return _with_model(run)


def model_version(client: MlflowClient, uri: str):
    """The registered version ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` names
    (an MlflowException when none)."""
    reference = uri.removeprefix(REGISTRY_PREFIX)
    name, alias = reference.split("@", 1) if "@" in reference else (reference, None)
    name, _, number = name.partition("/") if alias is None else (name, "", "")
    if alias is not None:
        return client.get_model_version_by_alias(name, alias)
    return client.get_model_version(name, number)


def registered_model_run(client: MlflowClient, uri: str, key: str = "analysis.run_id") -> ModelRun:
    """The version ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` names, with its
    training run."""
    try:
        found = model_version(client, uri)
        run = client.get_run(found.tags.get("training_run_id") or found.run_id)
    except mlflow.exceptions.MlflowException:
        known = [m.name for m in client.search_registered_models()]
        raise DataError(
            f"{key}={uri} names no registered model version in the MLflow store "
            f"{mlflow.get_tracking_uri()} (registered models: {known or 'none'}); use "
            "models:/<data set>@champion or @frames-<n>, which `python -m src.report` registers, "
            "or a run id."
        ) from None
    return ModelRun(run, found.tags.get("weights_run_id") or run.info.run_id, uri)


def registered_calibrator(uri: str, folder: Path) -> tuple[Path | None, dict[str, str]]:
    """The trust calibrator the registered version ``uri`` carries (its pyfunc's artifact
    ``trust_model``, src/tracking/registry.py), downloaded into ``folder``, and the version's tags
    (``trust_calibrator_*``: what it was fitted on); (None, tags) when it carries none."""
    client = MlflowClient()
    try:
        found = model_version(client, uri)
    except mlflow.exceptions.MlflowException:
        raise DataError(
            f"analysis.run_id={uri} names no registered model version in the MLflow store "
            f"{mlflow.get_tracking_uri()}; use models:/<data set>@champion or a run id."
        ) from None
    tags = dict(found.tags)
    # The MLmodel file alone (a few lines) says whether the pyfunc has the artifact.
    local = Path(mlflow.artifacts.download_artifacts(f"{uri}/MLmodel", dst_path=str(folder)))
    artifacts = MlflowModel.load(local).flavors["python_function"].get("artifacts") or {}
    if "trust_model" not in artifacts:
        return None, tags
    path = artifacts["trust_model"]["path"]
    return Path(mlflow.artifacts.download_artifacts(f"{uri}/{path}", dst_path=str(folder))), tags


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
    if model_run.model_uri is not None:
        model = download_registered_model(model_run.model_uri, folder)
    else:
        model = _download_run_model(model_run, folder)
    project_config = model.pose_config.parent / "project_config.yaml"
    skeleton = []
    if project_config.is_file():
        skeleton = yaml.safe_load(project_config.read_text(encoding="utf-8")).get("skeleton") or []
    return model, [list(pair) for pair in skeleton]


def _download_run_model(model_run: ModelRun, folder: Path) -> engine.Model:
    try:
        return download_model(model_run.model_run_id, folder)
    except (mlflow.exceptions.MlflowException, OSError):
        raise DataError(
            f"MLflow run {model_run.model_run_id} has no artifact model/ (its training did not "
            "finish, or it is not a training run); choose another analysis.run_id or "
            "analysis.labelled_frames."
        ) from None


def download_registered_model(uri: str, folder: Path) -> engine.Model:
    """A registered pyfunc version (src/tracking/pose_pyfunc.py) as a model: its one snapshot
    serves as both best and last."""
    local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(folder)))
    artifacts = MlflowModel.load(local).flavors["python_function"]["artifacts"]
    pose_config = local / artifacts["pose_config"]["path"]
    snapshot = local / artifacts["snapshot"]["path"]  # project_config.yaml lies beside pose_config
    bodyparts = engine.read_pose_config(pose_config)["metadata"]["bodyparts"]
    return engine.Model(pose_config, {"last": snapshot, "best": snapshot}, list(bodyparts))


def scorer_name(cfg: DictConfig, model_run: ModelRun, snapshot: str) -> str:
    """DeepLabCut-style scorer (``DLC_<model>_<data>_<run>_<snapshot>``): the H5 header and the
    file names."""
    return f"DLC_{cfg.model.name}_{cfg.data.name}_{model_run.model_run_id[:8]}_{snapshot}"
