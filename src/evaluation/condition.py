"""Evaluate one condition's model on its frames and log the metrics into its MLflow run."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig

from src import engine, numerics_class, privacy
from src.data.prepared import Condition, load_condition
from src.errors import DataError
from src.evaluation.metric_names import MetricName
from src.evaluation.metrics import (
    bodypart_table,
    evaluation_tags,
    interval_metrics,
    mae_metrics,
    participant_table,
    prediction_table,
)
from src.evaluation.pck import (
    OFF_NOTE,
    pck_by_bodypart,
    pck_metrics,
    reference_lengths,
    reference_of,
    with_reference,
)
from src.evaluation.plots import draw_frames, plot_bodypart_errors_of_run
from src.evaluation.uncertainty import IntervalSettings
from src.files import atomic_directory
from src.paths import pipeline_evaluation_dir, pipeline_model_dir
from src.study.bodyparts import plan_condition_zero
from src.study.config import cell_config
from src.tracking import lineage, store


def evaluate_model(cfg: DictConfig, condition: Condition, model: engine.Model) -> dict[str, float]:
    """Predict every frame of the condition, log MAE metrics, tables and plots to the active MLflow run.

    Returns the metrics.
    """
    facts = condition.facts
    # checked before predicting: a bad evaluation.pck setting stops in one line, not after the work
    reference = reference_of(
        cfg.evaluation.pck, str(cfg.data.kind), list(facts["bodyparts"]), facts.get("cm_per_px")
    )
    evaluated, channels = _evaluated_bodyparts(cfg, condition, model)
    predictions = _prediction_table(cfg, condition, model, evaluated, channels)
    pcutoffs = [float(c) for c in cfg.evaluation.pcutoffs]
    metrics = mae_metrics(predictions, pcutoffs, facts.get("cm_per_px"))
    metrics |= interval_metrics(predictions, pcutoffs, _interval_settings(cfg))
    mlflow.set_tag("interval_method", str(cfg.evaluation.interval.method))  # what made the bounds
    bodyparts = bodypart_table(predictions, pcutoffs, facts.get("cm_per_px"))
    if reference is None:
        mlflow.set_tag("pck_reference", OFF_NOTE)
    else:
        fractions = [float(f) for f in cfg.evaluation.pck.fractions]
        scored = with_reference(predictions, reference_lengths(condition.labels, reference))
        metrics |= pck_metrics(scored, fractions)
        all_points = bodyparts["pcutoff"].isna()
        with_pck = bodyparts[all_points].merge(
            pck_by_bodypart(scored, fractions), on=["set", "bodypart"], how="left"
        )
        bodyparts = pd.concat([with_pck, bodyparts[~all_points]], ignore_index=True)
        mlflow.set_tag("pck_reference", reference.description)
    participants = participant_table(predictions, pcutoffs)
    mlflow.set_tags(store.flat_params(cfg, ["evaluation"]))
    mlflow.set_tags(evaluation_tags(model, cfg.evaluation.snapshot))  # snapshot, metrics_guide
    mlflow.log_metrics(metrics)
    lineage.log_data_inputs(facts, condition.prepared_dir, condition.frames, lineage.EVALUATION)
    _log_tables_and_plots(cfg, condition, predictions, bodyparts, participants)
    print(
        f"labelled_frames={condition.labelled_frames}: "
        + ", ".join(f"{k}={v:.2f}" for k, v in metrics.items() if _mae_px(k)),
        flush=True,
    )
    return metrics


def _evaluated_bodyparts(
    cfg: DictConfig, condition: Condition, model: engine.Model
) -> tuple[list[str], list[int] | None]:
    """The bodyparts evaluated and the model's output channel of each (``None``: all, in order).

    Condition 0's initial model is compared on the bodyparts it shares with the data only.
    """
    facts = condition.facts
    evaluated = list(facts["bodyparts"])
    if list(model.bodyparts) == evaluated:
        return evaluated, None
    zero = plan_condition_zero(evaluated, model.bodyparts, cfg.weights.get("bodypart_map"))
    if condition.labelled_frames != 0:
        raise DataError(
            f"the model predicts bodyparts {model.bodyparts}, the data set labels "
            f"{facts['bodyparts']}: it was not trained on this data set's frames; train it "
            f"again: `python -m src.train labelled_frames={condition.labelled_frames} "
            "retrain=true` (or `dvc repro`)."
        )
    if zero.skipped:
        raise DataError(f"condition 0 cannot be evaluated: {zero.skipped}.")
    evaluated = zero.evaluated
    channels = [model.bodyparts.index(zero.mapping[b]) for b in evaluated]
    mlflow.set_tags(zero.tags())
    return evaluated, channels


def _prediction_table(
    cfg: DictConfig,
    condition: Condition,
    model: engine.Model,
    evaluated: list[str],
    channels: list[int] | None,
) -> pd.DataFrame:
    """The model's prediction of every frame of the condition beside its label, per bodypart."""
    poses, cached = condition_poses(cfg, condition, model)
    if cached:
        print(
            f"labelled_frames={condition.labelled_frames}: the predictions of its "
            f"{len(poses)} frames come from {predictions_cache(cfg)} (nothing predicted again)",
            flush=True,
        )
    if channels is not None:
        poses = poses[:, channels, :]
    return prediction_table(condition.frames, condition.labels, poses, evaluated)


def _interval_settings(cfg: DictConfig) -> IntervalSettings:
    """evaluation.bootstrap and evaluation.interval as the interval functions take them."""
    bootstrap, interval = cfg.evaluation.bootstrap, cfg.evaluation.interval
    return IntervalSettings(
        int(bootstrap.resamples),
        int(bootstrap.seed),
        float(bootstrap.confidence),
        method=str(interval.method),
        min_participants=int(interval.min_participants),
    )


def _log_tables_and_plots(
    cfg: DictConfig,
    condition: Condition,
    predictions: pd.DataFrame,
    bodyparts: pd.DataFrame,
    participants: pd.DataFrame,
) -> None:
    """Log the predictions per set, the errors per bodypart and participant (pseudonymised) and
    their plots to the active MLflow run."""
    pseudonyms = privacy.from_config(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for set_name, rows in predictions.groupby("set"):
            pseudonyms.table(rows.drop(columns=["image"])).to_csv(
                tmp / f"{set_name}.csv", index=False, float_format="%.3f"
            )
        mlflow.log_artifacts(str(tmp), "predictions")
        pseudonyms.save()
        bodyparts.to_csv(tmp / "bodyparts.csv", index=False, float_format="%.4f")
        mlflow.log_artifact(str(tmp / "bodyparts.csv"), "errors")
        # full precision: pooled MAEs (folds, participants) are recomputed from these sums
        pseudonyms.table(participants).to_csv(tmp / "participants.csv", index=False)
        mlflow.log_artifact(str(tmp / "participants.csv"), "errors")
        pseudonyms.save()
        mlflow.log_artifact(
            str(plot_bodypart_errors_of_run(bodyparts, tmp / "bodypart_errors.png")), "plots"
        )
        if cfg.data.get("log_media", False):
            for set_name in ("test", "generalisation"):
                drawn = draw_frames(
                    predictions[predictions["set"] == set_name],
                    condition.prepared_dir,
                    tmp / f"{set_name}_frames.png",
                    int(cfg.evaluation.plot_frames),
                    float(cfg.evaluation.pcutoffs[0]),
                )
                if drawn:
                    mlflow.log_artifact(str(drawn), "plots")


def _mae_px(name: str) -> bool:
    metric = MetricName.parse(name)
    return metric is not None and metric.is_mae and metric.unit == "px"


def predictions_cache(cfg: DictConfig) -> Path:
    """Where predictions are kept for re-use: beside the models, in the data folder (they are poses of
    the study's frames)."""
    return Path(cfg.paths.models_dir) / "predictions"


def condition_poses(
    cfg: DictConfig, condition: Condition, model: engine.Model
) -> tuple[np.ndarray, bool]:
    """The model's poses of every frame of the condition at ``evaluation.snapshot``, and whether they
    came from the predictions cache (``src.train`` fills it, so the evaluate stage predicts nothing)."""
    device = None if cfg.training.device == "auto" else str(cfg.training.device)
    images = [condition.prepared_dir / i for i in condition.frames["image"]]
    return cached_predictions(
        model,
        model.snapshot(cfg.evaluation.snapshot),
        images,
        device,
        int(cfg.training.threads),
        predictions_cache(cfg),
    )


def cached_predictions(
    model: engine.Model,
    snapshot: Path,
    images: list[Path],
    device: str | None,
    threads: int,
    cache: Path,
) -> tuple[np.ndarray, bool]:
    """The model's poses of ``images`` (n_images, n_bodyparts, 3), predicted once per snapshot and
    reused, and whether they were read from ``cache``.

    A p-cutoff, an interval or a table changes no prediction: a re-evaluation reads the stored poses.
    The key holds everything a prediction depends on: the snapshot's and the images' bytes, the image
    order, the model's configuration, the device, the CPU threads and numerics class, and the images
    per forward pass. Torch's threads are set (``threads``) only when something is predicted.
    """
    predicting = engine.for_model(model)
    key = store.digest(
        {
            # a TensorFlow snapshot-N is the prefix of its files (.index, .data-*, .meta)
            "snapshot": store.folder_version(
                snapshot.parent, snapshot.name + (".*" if model.engine == "tensorflow" else "")
            ),
            "pose_config": store.folder_version(model.pose_config.parent, model.pose_config.name),
            "images": [str(p) for p in images],
            "image_bytes": [store.folder_version(p.parent, p.name) for p in images],
            "engine": model.engine,
            "device": device,
            "cpu_numerics": numerics_class() if device in (None, "cpu") else None,
            "threads": threads if device in (None, "cpu") else None,
            "batch": getattr(predicting, "PREDICTION_BATCH", 1),
        }
    )
    path = cache / f"{key}.npy"
    if path.is_file():
        return np.load(path), True
    predicting.set_threads(threads)
    poses = predicting.predict(model.pose_config, snapshot, images, device=device)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache, suffix=".partial", delete=False) as handle:
        np.save(handle, poses)
    Path(handle.name).replace(path)  # whole or not at all: a reader never sees half a file
    return poses, False


def predict_for_evaluate_stage(cfg: DictConfig, condition: Condition) -> None:
    """The pipeline's train stage: predict the condition's frames with the model just saved for the
    evaluate stage, into the predictions cache. The evaluate stage then reads them and never loads
    DeepLabCut or the network, which saves its process most of its start-up; the poses are the ones
    it would predict (same snapshot bytes, images, threads and numerics: the cache key)."""
    started = time.perf_counter()
    poses, cached = condition_poses(cfg, condition, engine.load_model(pipeline_model_dir(cfg)))
    if not cached:
        print(
            f"labelled_frames={condition.labelled_frames}: predicted its {len(poses)} frames for "
            f"the evaluate stage in {time.perf_counter() - started:.0f} s "
            f"(kept in {predictions_cache(cfg)})",
            flush=True,
        )


def evaluate_saved_model(cfg: DictConfig) -> dict[str, float]:
    """One cell of the evaluate stage: evaluate the model the train stage saved, logging into its
    MLflow run."""
    condition = load_condition(cfg)  # checks the configuration first
    folder = pipeline_model_dir(cfg)
    if not (folder / "run.yaml").is_file():
        raise DataError(
            f"{folder / 'run.yaml'} does not exist: condition {condition.labelled_frames} was not trained "
            f"by the pipeline; run `dvc repro train@{condition.labelled_frames}` (or `dvc repro`)."
        )
    saved = yaml.safe_load((folder / "run.yaml").read_text(encoding="utf-8"))
    store.configure(cfg.mlflow)
    run = store.saved_run(saved["run_id"], folder / "run.yaml")
    if saved.get("skipped"):  # condition 0 without a model to evaluate: its reason, no metrics
        record_skipped(cfg, saved, run)
        return {}
    with mlflow.start_run(run_id=saved["run_id"]) as run:
        mlflow.set_tags(store.process_tags())  # this process now owns the run: others see it live
        metrics = evaluate_model(cfg, condition, engine.load_model(folder))
    with atomic_directory(pipeline_evaluation_dir(cfg)) as staging:
        (staging / "metrics.json").write_text(
            json.dumps(
                {
                    "labelled_frames": condition.labelled_frames,
                    "run_id": saved["run_id"],
                    "parent_run_id": run.data.tags.get("mlflow.parentRunId"),
                    "metrics": metrics,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return metrics


def evaluate_pipeline_cells(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """The evaluate stage: every cell of ``pipeline.cells`` (each condition, of each fold), one after
    the other in this one process, each as :func:`evaluate_saved_model` evaluates it alone.

    One process for all: a process start (Python, pandas, MLflow) costs more than evaluating a cell
    from its stored predictions. Every cell is evaluated each time the stage runs, into the same
    MLflow runs, so its output never mixes evaluation settings.
    """
    return {
        name: evaluate_saved_model(cell_config(cfg, str(cell.overrides)))
        for name, cell in cfg.pipeline.cells.items()
    }


def record_skipped(cfg: DictConfig, saved: dict, run: mlflow.entities.Run) -> None:
    """metrics.json of a condition the train stage skipped (its ``run``): the reason, and no metrics."""
    with atomic_directory(pipeline_evaluation_dir(cfg)) as staging:
        (staging / "metrics.json").write_text(
            json.dumps(
                {
                    "labelled_frames": saved["labelled_frames"],
                    "run_id": saved["run_id"],
                    "parent_run_id": run.data.tags.get("mlflow.parentRunId"),
                    "skipped": saved["skipped"],
                    "metrics": {},
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    print(f"labelled_frames={saved['labelled_frames']}: skipped: {saved['skipped']}", flush=True)
