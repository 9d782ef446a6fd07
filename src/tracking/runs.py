"""The runs a report reads: the DVC pipeline's conditions and, per run, its tags, errors per
bodypart and loss history. Read only: nothing here changes a run (the report closes and tags the
parent run, src/evaluation/report.py)."""

from __future__ import annotations

import json
import logging
import tempfile

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src.errors import DataError
from src.paths import pipeline_evaluation_dir
from src.tracking import store

log = logging.getLogger(__name__)

# Tags of a condition's run the report shows (set by the evaluation and by condition 0).
PREDICTIONS_ARTIFACT = "predictions/{}.csv"  # each evaluated run's predictions of one set

RUN_TAGS = (
    "evaluation.snapshot",  # last | best: what evaluation.snapshot asked for
    "evaluated_snapshot",  # DeepLabCut's name of the snapshot evaluated, e.g. snapshot-best-080.pt
    "evaluated_epoch",  # the epochs it was trained for
    "bodyparts_evaluated",  # condition 0 on the bodyparts it shares with the initial model: "5 of 12: ..."
    "condition_note",  # why a condition is evaluated differently
    "skipped_reason",  # why a condition has no numbers
    "interval_method",  # what made the run's interval bounds (evaluation.interval.method)
)


def pipeline_records(cfg: DictConfig) -> dict[int | tuple[int, int], dict]:
    """The evaluate stage's metrics.json of the DVC pipeline's conditions, by labelled frames;
    under split=kfold by (fold, labelled frames), every fold of ``pipeline.folds``, each record
    with its ``fold``.

    A condition skipped by its evaluate stage says why (``"skipped": "<reason>"``), with or
    without a run.
    """
    conditions = cfg.pipeline.conditions
    folds = cfg.pipeline.get("folds", [])
    for key, value in (("conditions", conditions), ("folds", folds)):
        if isinstance(
            value, str
        ):  # `auto` composed from conf/: the pipeline's list is in params.yaml
            raise DataError(
                f"pipeline.{key}={value} is resolved in params.yaml only; read it there: "
                "`python -m src.report --config-dir . --config-name params report.sweep=pipeline`."
            )
    cells = [(int(k), int(n)) for k in folds for n in conditions] or [
        (None, int(n)) for n in conditions
    ]
    records = {}
    for fold, n_frames in cells:
        path = pipeline_evaluation_dir(cfg, n_frames, fold) / "metrics.json"
        if not path.is_file():
            raise DataError(
                f"{path} does not exist; run the pipeline's evaluate stage first: `dvc repro`."
            )
        record = json.loads(path.read_text(encoding="utf-8"))
        if fold is None:
            records[n_frames] = record
        else:
            records[(fold, n_frames)] = record | {"fold": fold}
    return records


def pipeline_runs(cfg: DictConfig) -> list[str]:
    """The MLflow runs of the DVC pipeline's conditions (of every fold), from the evaluate stage's
    metrics.json."""
    return [r["run_id"] for r in pipeline_records(cfg).values() if r.get("run_id")]


def pipeline_skipped(records: dict[int | tuple[int, int], dict]) -> dict[int, str]:
    """Why each skipped condition of :func:`pipeline_records` was skipped, by labelled frames."""
    # records of split=kfold are keyed by fold and condition; a condition is skipped for the same
    # reason in every fold: its initial model and bodyparts
    return {
        int(r["labelled_frames"]): str(r["skipped"]) for r in records.values() if r.get("skipped")
    }


def with_run_tags(client: MlflowClient, runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a column per :data:`RUN_TAGS` entry ("" where a run does not have it)."""
    tags = []
    for run_id in runs["run_id"]:
        found = client.get_run(run_id).data.tags if run_id else {}
        tags.append({name: found.get(name, "") for name in RUN_TAGS})
    return runs.assign(**pd.DataFrame(tags, index=runs.index, columns=list(RUN_TAGS)))


def bodypart_errors(client: MlflowClient, runs: pd.DataFrame) -> pd.DataFrame:
    """``errors/bodyparts.csv`` of every run, with its labelled_frames (runs without it are left out)."""
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs.itertuples():
            if not run.run_id or getattr(run, "skipped_reason", ""):  # skipped: nothing to have
                continue
            try:
                path = client.download_artifacts(run.run_id, "errors/bodyparts.csv", tmp)
            except (MlflowException, OSError):
                log.warning("run %s (%s) has no errors/bodyparts.csv", run.run_id, run.run_name)
                continue
            tables.append(pd.read_csv(path).assign(labelled_frames=run.labelled_frames))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def logged_predictions(
    client: MlflowClient, runs: pd.DataFrame, set_name: str = "generalisation"
) -> dict[str, pd.DataFrame]:
    """``predictions/<set_name>.csv`` of every run by run id (runs without it are left out)."""
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs.itertuples():
            if not run.run_id or getattr(run, "skipped_reason", ""):  # skipped: nothing to have
                continue
            try:
                artifact = PREDICTIONS_ARTIFACT.format(set_name)
                path = client.download_artifacts(run.run_id, artifact, tmp)
            except (MlflowException, OSError):
                log.warning("run %s (%s) has no %s", run.run_id, run.run_name, artifact)
                continue
            tables[run.run_id] = pd.read_csv(path)
    return tables


def loss_histories(client: MlflowClient, runs: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch loss_train and loss_test of every condition (from the training run when the model was reused)."""
    rows = []
    for run in runs.itertuples():
        if not run.run_id:
            continue
        reused = run.model_source.startswith(store.REUSED_PREFIX)
        source = run.model_source.removeprefix(store.REUSED_PREFIX) if reused else run.run_id
        for name in ("loss_train", "loss_test"):
            rows += [
                {
                    "labelled_frames": run.labelled_frames,
                    "metric": name,
                    "step": m.step,
                    "value": m.value,
                }
                for m in client.get_metric_history(source, name)
            ]
    return pd.DataFrame(rows, columns=["labelled_frames", "metric", "step", "value"])
