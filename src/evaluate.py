"""Errors of a model on labelled frames, the paper's way and DeepLabCut's way.

MAE is the mean Euclidean distance between predicted and labelled points over every labelled point
of every frame of a set (the paper's "MAE", DeepLabCut's "rmse"). With a p-cutoff, only points
predicted with likelihood >= the cutoff count, and the share of points kept is reported beside it.
Sets: ``train`` and ``test`` (development participants) and ``generalisation`` (held-out participants).

``evaluate_model`` evaluates a model on a condition's frames inside an MLflow run (``src.train`` calls it
after training). Run as ``python -m src.evaluate labelled_frames=<n>`` it is the DVC pipeline's evaluate
stage: it evaluates the model the train stage saved, in that training's MLflow run, and writes
``<pipeline.dir>/evaluation/frames_<n>/metrics.json``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import hydra
import mlflow
import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig

from src import dlc, privacy, tracking
from src.dataset import DataError, exit_on_data_error
from src.files import atomic_directory
from src.prepare import Condition, load_condition

SETS = ("train", "test", "generalisation")


def prediction_table(frames: pd.DataFrame, labels: pd.DataFrame, poses: np.ndarray, bodyparts: list[str]) -> pd.DataFrame:
    """One row per frame and bodypart: label, prediction, likelihood and error in pixels.

    ``frames`` has one row per image (video, frame, set, ...), in the order of ``poses``
    (n_images, n_bodyparts, 3: x, y, likelihood). Unlabelled points keep NaN labels and errors.
    """
    n_frames, n_bodyparts = len(frames), len(bodyparts)
    rows = frames.loc[frames.index.repeat(n_bodyparts)].reset_index(drop=True)
    rows["bodypart"] = np.tile(bodyparts, n_frames)
    rows[["x_pred", "y_pred", "likelihood"]] = poses.reshape(n_frames * n_bodyparts, 3)
    labelled = labels.rename(columns={"x": "x_label", "y": "y_label"})[["video", "frame", "bodypart", "x_label", "y_label"]]
    rows = rows.merge(labelled, on=["video", "frame", "bodypart"], how="left")
    rows["error_px"] = np.hypot(rows["x_pred"] - rows["x_label"], rows["y_pred"] - rows["y_label"])
    return rows


def mae_metrics(predictions: pd.DataFrame, pcutoffs: list[float], cm_per_px: float | None) -> dict[str, float]:
    """Metrics named after what they are, e.g. ``mae_generalisation_pcutoff0.8_px``.

    For each set present: ``mae_<set>_px`` (and ``_cm`` when the scale is known), the same with
    ``_pcutoff<c>``, ``kept_<set>_pcutoff<c>`` (share of labelled points at or above the cutoff)
    and ``n_<set>_points``.
    """
    metrics = {}
    for set_name, rows in _labelled(predictions).groupby("set", sort=False):
        metrics[f"n_{set_name}_points"] = float(len(rows))
        metrics |= _named(f"mae_{set_name}", rows["error_px"].mean(), cm_per_px)
        for cutoff in pcutoffs:
            kept = rows["likelihood"] >= cutoff
            metrics |= _named(f"mae_{set_name}_pcutoff{cutoff:g}", rows.loc[kept, "error_px"].mean(), cm_per_px)
            metrics[f"kept_{set_name}_pcutoff{cutoff:g}"] = float(kept.mean())
    return metrics


def bodypart_table(predictions: pd.DataFrame, pcutoffs: list[float], cm_per_px: float | None) -> pd.DataFrame:
    """MAE per set and bodypart, with and without each cutoff (long format, one row per cutoff).

    ``pcutoff`` is NaN for the row with all predictions.
    """
    tables = []
    labelled = _labelled(predictions)
    labelled_points = labelled.groupby(["set", "bodypart"], sort=False).size()
    for cutoff in [None, *pcutoffs]:
        rows = labelled if cutoff is None else labelled[labelled["likelihood"] >= cutoff]
        table = rows.groupby(["set", "bodypart"], sort=False)["error_px"].agg(mae_px="mean", n_points="size")
        table = table.reindex(labelled_points.index)
        table["n_points"] = table["n_points"].fillna(0).astype(int)
        table["kept"] = table["n_points"] / labelled_points
        if cm_per_px:
            table["mae_cm"] = table["mae_px"] * cm_per_px
        tables.append(table.reset_index().assign(pcutoff=np.nan if cutoff is None else cutoff))
    return pd.concat(tables, ignore_index=True)


def _labelled(predictions: pd.DataFrame) -> pd.DataFrame:
    return predictions[predictions["x_label"].notna() & predictions["y_label"].notna()]


def _named(prefix: str, mae_px: float, cm_per_px: float | None) -> dict[str, float]:
    named = {f"{prefix}_px": float(mae_px)}
    if cm_per_px:
        named[f"{prefix}_cm"] = float(mae_px * cm_per_px)
    return named


# --- plots -----------------------------------------------------------------------------------------

def plot_losses(learning_stats: pd.DataFrame, path: Path) -> Path:
    """Training and test loss per epoch, from DeepLabCut's learning_stats.csv."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    for column, label in [("losses/train.total_loss", "train"), ("losses/eval.total_loss", "test")]:
        if column in learning_stats:
            series = learning_stats[["step", column]].dropna()
            ax.plot(series["step"], series[column], marker="." if label == "test" else None, label=label)
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="DeepLabCut training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_bodypart_errors(table: pd.DataFrame, path: Path) -> Path:
    """Bar chart of MAE per bodypart for each set (all predictions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wide = table[table["pcutoff"].isna()].pivot(index="bodypart", columns="set", values="mae_px")
    wide = wide.reindex(index=table["bodypart"].drop_duplicates(), columns=[s for s in SETS if s in wide])
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=120)
    wide.plot.bar(ax=ax, width=0.8)
    ax.set(ylabel="MAE (px)", xlabel="", title="Error per bodypart")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def draw_frames(predictions: pd.DataFrame, image_root: Path, path: Path, n_frames: int, pcutoff: float) -> Path | None:
    """A strip of frames with labelled (green circles) and predicted (red crosses) points.

    Predictions below ``pcutoff`` are drawn hollow grey. Returns None when there is nothing to draw.
    """
    import cv2

    frames = predictions.drop_duplicates(["video", "frame"]).head(n_frames)
    tiles = []
    for frame in frames.itertuples():
        image = cv2.imread(str(Path(image_root) / frame.image))
        if image is None:
            continue
        image = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        points = predictions[(predictions["video"] == frame.video) & (predictions["frame"] == frame.frame)]
        for point in points.itertuples():
            if not np.isnan(point.x_label):
                cv2.circle(image, (round(2 * point.x_label), round(2 * point.y_label)), 4, (0, 200, 0), 1, cv2.LINE_AA)
            colour = (0, 0, 230) if point.likelihood >= pcutoff else (150, 150, 150)
            cv2.drawMarker(image, (round(2 * point.x_pred), round(2 * point.y_pred)), colour, cv2.MARKER_CROSS, 7, 1)
        tiles.append(image)
    if not tiles:
        return None
    height = max(t.shape[0] for t in tiles)
    strip = np.hstack([cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 4, cv2.BORDER_CONSTANT) for t in tiles])
    cv2.imwrite(str(path), strip)
    return path


def evaluate_model(cfg: DictConfig, condition: Condition, model: dlc.Model) -> dict[str, float]:
    """Predict every frame of the condition, log MAE metrics, tables and plots to the active MLflow run.

    Returns the metrics.
    """
    facts = condition.facts
    if list(model.bodyparts) != list(facts["bodyparts"]):
        raise DataError(f"the model predicts bodyparts {model.bodyparts}, the data set labels {facts['bodyparts']}; "
                        "condition 0 needs an initial model with the same bodyparts in the same order "
                        "(train a condition > 0 instead, which transfers what matches).")
    device = None if cfg.training.device == "auto" else str(cfg.training.device)
    images = [condition.prepared_dir / i for i in condition.frames["image"]]
    poses = dlc.predict(model.pose_config, model.snapshot(cfg.evaluation.snapshot), images, device=device)
    predictions = prediction_table(condition.frames, condition.labels, poses, facts["bodyparts"])
    pcutoffs = [float(c) for c in cfg.evaluation.pcutoffs]
    metrics = mae_metrics(predictions, pcutoffs, facts.get("cm_per_px"))
    bodyparts = bodypart_table(predictions, pcutoffs, facts.get("cm_per_px"))
    mlflow.set_tags(tracking.flat_params(cfg, ["evaluation"]))
    mlflow.log_metrics(metrics)
    pseudonyms = privacy.from_config(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for set_name, rows in predictions.groupby("set"):
            pseudonyms.table(rows.drop(columns=["image"])).to_csv(tmp / f"{set_name}.csv", index=False, float_format="%.3f")
        mlflow.log_artifacts(str(tmp), "predictions")
        pseudonyms.save()
        bodyparts.to_csv(tmp / "bodyparts.csv", index=False, float_format="%.4f")
        mlflow.log_artifact(str(tmp / "bodyparts.csv"), "errors")
        mlflow.log_artifact(str(plot_bodypart_errors(bodyparts, tmp / "bodypart_errors.png")), "plots")
        if cfg.data.get("log_media", False):
            for set_name in ("test", "generalisation"):
                drawn = draw_frames(predictions[predictions["set"] == set_name], condition.prepared_dir,
                                    tmp / f"{set_name}_frames.png", int(cfg.evaluation.plot_frames), pcutoffs[0])
                if drawn:
                    mlflow.log_artifact(str(drawn), "plots")
    print(f"labelled_frames={condition.labelled_frames}: " + ", ".join(
        f"{k}={v:.2f}" for k, v in metrics.items() if k.startswith("mae_") and k.endswith("_px")), flush=True)
    return metrics


def pipeline_model_dir(cfg: DictConfig) -> Path:
    """Where the DVC train stage saves the model of condition ``cfg.labelled_frames`` (and its MLflow run id)."""
    return Path(cfg.pipeline.dir) / "models" / f"frames_{cfg.labelled_frames}"


def pipeline_evaluation_dir(cfg: DictConfig, labelled_frames: int | None = None) -> Path:
    """Where the DVC evaluate stage writes ``metrics.json`` of a condition."""
    n_frames = cfg.labelled_frames if labelled_frames is None else labelled_frames
    return Path(cfg.pipeline.dir) / "evaluation" / f"frames_{n_frames}"


def evaluate_saved_model(cfg: DictConfig) -> dict[str, float]:
    """The evaluate stage: evaluate the model the train stage saved, logging into its MLflow run."""
    condition = load_condition(cfg)  # checks the configuration first
    dlc.set_threads(int(cfg.training.threads))
    folder = pipeline_model_dir(cfg)
    if not (folder / "run.yaml").is_file():
        raise DataError(f"{folder / 'run.yaml'} does not exist: condition {condition.labelled_frames} was not trained "
                        f"by the pipeline; run `dvc repro train@{condition.labelled_frames}` (or `dvc repro`).")
    saved = yaml.safe_load((folder / "run.yaml").read_text(encoding="utf-8"))
    tracking.configure(cfg.mlflow)
    with mlflow.start_run(run_id=saved["run_id"]) as run:
        mlflow.set_tags(tracking.process_tags())  # this process now owns the run: others see it live
        metrics = evaluate_model(cfg, condition, dlc.load_model(folder))
    with atomic_directory(pipeline_evaluation_dir(cfg)) as staging:
        (staging / "metrics.json").write_text(json.dumps({
            "labelled_frames": condition.labelled_frames, "run_id": saved["run_id"],
            "parent_run_id": run.data.tags.get("mlflow.parentRunId"), "metrics": metrics}, indent=2) + "\n",
            encoding="utf-8")
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        evaluate_saved_model(cfg)


if __name__ == "__main__":
    main()
