"""Main entry point: train and evaluate one labelled-frames condition, tracked in MLflow.

    python -m src.train labelled_frames=6            # one condition
    python -m src.train +sweep=frames                # the paper's conditions 0, 1, 2, 6, 10, 15, 20
    python -m src.train +sweep=cutoff                # re-evaluate the trained models at other p-cutoffs

One MLflow run per condition (named ``frames=<n>``, nested under the sweep's run). A model already
trained with the same configuration and data (same ``model_key`` tag) is reused, not trained again;
condition 0 evaluates the initial model itself.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import hydra
import mlflow
import pandas as pd
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src import dlc, evaluate, tracking
from src.dataset import DataError, exit_on_data_error
from src.prepare import read_prepared
from src.pretrain import ensure_pretrained

log = logging.getLogger(__name__)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@dataclass
class Model:
    """What is needed to predict: DeepLabCut's model config and a snapshot."""

    pose_config: Path
    snapshot: Path
    bodyparts: list[str]


def train(cfg: DictConfig) -> dict[str, float]:
    """Train (or reuse) and evaluate the model of condition ``cfg.labelled_frames``; returns its metrics."""
    dlc.set_threads(int(cfg.training.threads))
    prepared_dir = Path(cfg.paths.prepared_dir) / cfg.data.name
    facts, selection, labels = read_prepared(prepared_dir)
    n_frames = check_condition(cfg, facts)
    frames = condition_frames(selection, n_frames)
    initial = initial_model(cfg, facts) if n_frames == 0 or cfg.weights.kind in ("pretrained", "snapshot") else None
    versions = {
        "data_version": tracking.folder_version(Path(facts["source"])),
        "prepared_version": tracking.folder_version(prepared_dir, "*.csv"),
        "split": tracking.folder_version(prepared_dir, "split.csv"),
    }
    model_key = tracking.digest({
        "labelled_frames": n_frames, **versions,
        **{name: OmegaConf.to_container(cfg[name], resolve=True) for name in ("model", "training", "weights")},
        "initial_snapshot": tracking.folder_version(initial.snapshot.parent, initial.snapshot.name) if initial else None,
    })

    experiment_id = tracking.configure(cfg.mlflow)
    previous = None if cfg.retrain or n_frames == 0 else tracking.find_finished_run(experiment_id, model_key)
    if previous is None and n_frames > 0 and cfg.get("evaluate_only"):
        raise DataError(f"no finished MLflow run holds a model for labelled_frames={n_frames} with this configuration "
                        f"and data (model_key {model_key}); train it first, e.g. `python -m src.train +sweep=frames`.")
    work = Path(cfg.paths.models_dir) / cfg.data.name / f"frames{n_frames}-{cfg.model.name}-{model_key}"
    tags = versions | {"git_commit": tracking.git_commit(), "model_key": model_key, "labelled_frames": str(n_frames)}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"frames={n_frames}",
                          parent_run_id=tracking.parent_run_id(), tags=tags) as run:
        mlflow.log_params(tracking.flat_params(cfg))
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/config.yaml")
        if n_frames == 0:
            mlflow.set_tag("model_source", f"initial model ({cfg.weights.kind}: {initial.snapshot}), not trained")
            model = initial
        elif previous is not None:
            mlflow.set_tag("model_source", f"reused from run {previous.info.run_id}")
            model = download_model(previous.info.run_id, work / "reused", facts["bodyparts"], cfg.evaluation.snapshot)
        else:
            mlflow.set_tag("model_source", "trained")
            model = train_condition(cfg, facts, prepared_dir, selection, labels, frames, initial, work, run.info.run_id)
        return evaluate_and_log(cfg, facts, prepared_dir, frames, labels, model)


def check_condition(cfg: DictConfig, facts: dict) -> int:
    """The condition's labelled frames per video, checked against what was prepared."""
    n_frames = cfg.labelled_frames
    largest = int(facts["config"]["max_train_frames_per_video"])
    if not isinstance(n_frames, int) or not 0 <= n_frames <= largest:
        raise DataError(f"labelled_frames={n_frames!r} is not an integer from 0 to {largest}, the frames prepared per "
                        f"video (frames.max_train_frames_per_video); choose one, or prepare more frames.")
    if 0 < facts["min_train_frames_per_development_video"] < n_frames:
        log.warning("some development videos have only %d selected frames; they contribute all of them",
                    facts["min_train_frames_per_development_video"])
    return n_frames


def condition_frames(selection: pd.DataFrame, n_frames: int) -> pd.DataFrame:
    """The frames a condition is trained and evaluated on, with ``set`` = train | test | generalisation."""
    frames = selection[(selection["role"] != "train") | (selection["rank"] <= n_frames)].copy()
    frames["set"] = frames["role"]
    return frames.reset_index(drop=True)


def initial_model(cfg: DictConfig, facts: dict) -> Model:
    """The model a condition starts from (and condition 0 evaluates): pre-trained here or a snapshot."""
    kind = cfg.weights.kind
    if kind == "pretrained":
        folder = ensure_pretrained(cfg)
        meta = yaml.safe_load((folder / "pretrained.yaml").read_text(encoding="utf-8"))
        return Model(folder / "pytorch_config.yaml", folder / "snapshot.pt", list(meta["bodyparts"]))
    if kind == "snapshot":
        snapshot = Path(cfg.weights.path)
        pose_config = snapshot.parent / "pytorch_config.yaml"
        for path, what in ((snapshot, "weights.path"), (pose_config, "the snapshot's pytorch_config.yaml")):
            if not path.is_file():
                raise DataError(f"{path} ({what}) does not exist; point weights.path at a DeepLabCut 3 snapshot "
                                "inside its model's train/ folder.")
        bodyparts = dlc.read_pose_config(pose_config)["metadata"]["bodyparts"]
        return Model(pose_config, snapshot, list(bodyparts))
    raise DataError(f"labelled_frames=0 evaluates the initial model, but weights={kind} has no trained pose heads; "
                    "choose weights=healthy_adults or weights=snapshot for condition 0.")


def train_condition(cfg, facts, prepared_dir, selection, labels, frames, initial, work, run_id) -> Model:
    """Build the DeepLabCut training set of the condition, train it, log checkpoints; returns the model."""
    trained_on = frames[frames["set"].isin(["train", "test"])]
    training_set, pose_config, updates = dlc.prepare_training(prepared_dir, facts, trained_on, labels, work / "project",
                                                              cfg.model, cfg.training)
    mlflow.log_params({"derived.epochs": updates["train_settings.epochs"], "derived.n_train_images": training_set.n_train,
                       "derived.n_test_images": training_set.n_test})

    kind = cfg.weights.kind
    if kind in ("pretrained", "snapshot"):
        conversion = [initial.bodyparts.index(b) for b in facts["bodyparts"]] \
            if set(facts["bodyparts"]) <= set(initial.bodyparts) else None
        if conversion is None:
            log.warning("the initial model predicts %s, the data %s: only its backbone is transferred",
                        initial.bodyparts, facts["bodyparts"])
        weight_init = dlc.weight_init(initial.snapshot, conversion)
    elif kind in ("random", "hub"):
        weight_init = dlc.fresh_weight_init(kind, pose_config, work / "random-init.pt", int(cfg.seed))
    else:
        raise DataError(f"weights.kind={kind!r} is unknown; use weights=healthy_adults|snapshot|random|hub.")

    with tracking.streaming_learning_stats(run_id, training_set.model_folder / "train" / "learning_stats.csv"):
        dlc.train(training_set, updates, weight_init)

    found = dlc.snapshots(training_set.model_folder)
    mlflow.set_tag("best_snapshot", found["best"].name)
    train_dir = training_set.model_folder / "train"
    with tempfile.TemporaryDirectory() as tmp:
        dlc.save_weights_only(found["last"], Path(tmp) / "snapshot-last.pt")
        if found["best"] != found["last"]:  # else the last epoch is the best one: one file
            dlc.save_weights_only(found["best"], Path(tmp) / "snapshot-best.pt")
        for name in ("pytorch_config.yaml", "learning_stats.csv"):
            if (train_dir / name).is_file():
                (Path(tmp) / name).write_bytes((train_dir / name).read_bytes())
        (Path(tmp) / "project_config.yaml").write_bytes(training_set.project_config.read_bytes())
        mlflow.log_artifacts(tmp, artifact_path="model")
    stats = train_dir / "learning_stats.csv"
    if stats.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.log_artifact(str(evaluate.plot_losses(pd.read_csv(stats), Path(tmp) / "loss.png")), "plots")
    return Model(training_set.pose_config, found[cfg.evaluation.snapshot], list(facts["bodyparts"]))


def download_model(run_id: str, folder: Path, bodyparts: list[str], snapshot: str) -> Model:
    """The model stored by an earlier run (config + ``snapshot``: last | best), from its MLflow artifacts."""
    folder.mkdir(parents=True, exist_ok=True)
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="model", dst_path=str(folder)))
    chosen = local / f"snapshot-{snapshot}.pt"
    return Model(local / "pytorch_config.yaml", chosen if chosen.is_file() else local / "snapshot-last.pt", bodyparts)


def evaluate_and_log(cfg, facts, prepared_dir, frames, labels, model: Model) -> dict[str, float]:
    """Predict every frame of the condition, log MAE metrics, tables and plots; returns the metrics."""
    if list(model.bodyparts) != list(facts["bodyparts"]):
        raise DataError(f"the model predicts bodyparts {model.bodyparts}, the data set labels {facts['bodyparts']}; "
                        "condition 0 needs an initial model with the same bodyparts in the same order "
                        "(train a condition > 0 instead, which transfers what matches).")
    device = None if cfg.training.device == "auto" else str(cfg.training.device)
    poses = dlc.predict(model.pose_config, model.snapshot, [prepared_dir / i for i in frames["image"]], device=device)
    predictions = evaluate.prediction_table(frames, labels, poses, facts["bodyparts"])
    pcutoffs = [float(c) for c in cfg.evaluation.pcutoffs]
    metrics = evaluate.mae_metrics(predictions, pcutoffs, facts.get("cm_per_px"))
    bodyparts = evaluate.bodypart_table(predictions, pcutoffs, facts.get("cm_per_px"))
    mlflow.log_metrics(metrics)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for set_name, rows in predictions.groupby("set"):
            rows.drop(columns=["image"]).to_csv(tmp / f"{set_name}.csv", index=False, float_format="%.3f")
        mlflow.log_artifacts(str(tmp), "predictions")
        bodyparts.to_csv(tmp / "bodyparts.csv", index=False, float_format="%.4f")
        mlflow.log_artifact(str(tmp / "bodyparts.csv"), "errors")
        mlflow.log_artifact(str(evaluate.plot_bodypart_errors(bodyparts, tmp / "bodypart_errors.png")), "plots")
        if cfg.data.get("log_media", False):
            for set_name in ("test", "generalisation"):
                drawn = evaluate.draw_frames(predictions[predictions["set"] == set_name], prepared_dir,
                                             tmp / f"{set_name}_frames.png", int(cfg.evaluation.plot_frames), pcutoffs[0])
                if drawn:
                    mlflow.log_artifact(str(drawn), "plots")
    print(f"labelled_frames={cfg.labelled_frames}: " + ", ".join(
        f"{k}={v:.2f}" for k, v in metrics.items() if k.startswith("mae_") and k.endswith("_px")), flush=True)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, float]:
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return train(cfg)  # exceptions go to Hydra, which reports the failed job and goes on with the others
    with exit_on_data_error():
        return train(cfg)


if __name__ == "__main__":
    main()
