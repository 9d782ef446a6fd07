"""Live training curves: DeepLabCut's learning_stats.csv streamed into an MLflow run while it trains."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

# What DeepLabCut logs each epoch that we stream to MLflow, under our names. Its mAP/mAR are left out:
# they compare individuals, which single-animal projects do not have. Its test rmse during training
# is its multi-animal metric (predictions matched to labels, unmatched ones dropped), not the
# paper's MAE (mae_test_px, single animal, all labelled points): the name says so.
TRAINING_RMSE = "dlc_training_rmse_matched_test_px"
_TRAINING_METRIC_NAMES = {
    "losses/train.total_loss": "loss_train",
    "losses/eval.total_loss": "loss_test",
    "metrics/test.rmse": TRAINING_RMSE,
}

# DeepLabCut's TensorFlow engine writes learning_stats.csv without a header, one row per
# display_iters iterations (src.engine.tensorflow sets 1): iteration, mean loss, learning rate.
TF_COLUMNS = ["step", "losses/train.total_loss", "learning_rate"]

# The tag `metrics_guide` of a run while it trains (its evaluation replaces it with the full guide).
CURVES_GUIDE = (
    "loss_train, loss_test: DeepLabCut's training and test loss per epoch. "
    f"{TRAINING_RMSE}: DeepLabCut's test rmse computed while it trains (learning_stats.csv), its "
    "multi-animal metric: predictions are matched to labels and unmatched ones are dropped, so it "
    "reads lower than the paper's MAE (mae_test_px, all labelled points) and is not comparable "
    "to it; DeepLabCut picks its 'best' snapshot by it."
)


@contextmanager
def streaming_learning_stats(run_id: str, learning_stats: Path, every_s: float = 2.0):
    """While the block runs, copy new rows of DeepLabCut's learning_stats.csv into the MLflow run.

    DeepLabCut's ``logger:`` setting accepts only its CSV and Weights & Biases loggers, so the CSV
    it rewrites after every epoch is followed instead; a person watching the MLflow UI sees the
    curves grow. A last pass after training catches the final epoch.
    """
    client = MlflowClient()
    if "metrics_guide" not in client.get_run(run_id).data.tags:
        client.set_tag(run_id, "metrics_guide", CURVES_GUIDE)
    # A continued run (after a kill) already holds the epochs before the kill: each epoch is logged once.
    logged = {
        (name, metric.step)
        for name in _TRAINING_METRIC_NAMES.values()
        for metric in client.get_metric_history(run_id, name)
    }
    stop = threading.Event()

    def copy_new_rows() -> None:
        try:
            table = pd.read_csv(learning_stats)
            if "step" not in table.columns:  # DeepLabCut's TensorFlow engine: `iteration, loss, lr`
                table = pd.read_csv(learning_stats, header=None, names=TF_COLUMNS)
        except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError):
            return  # not written yet, or caught mid-write: next time
        batch = []
        for row in table.to_dict("records"):
            step = int(row.pop("step"))
            for name, value in row.items():
                name = _TRAINING_METRIC_NAMES.get(name)
                if (
                    name and value == value and (name, step) not in logged
                ):  # NaN: not measured this epoch
                    batch.append(Metric(name, float(value), int(time.time() * 1000), step))
                    logged.add((name, step))
        for start in range(0, len(batch), 1000):
            client.log_batch(run_id, metrics=batch[start : start + 1000])

    def follow() -> None:
        while not stop.wait(every_s):
            copy_new_rows()

    thread = threading.Thread(target=follow, name="learning-stats-to-mlflow", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        copy_new_rows()
