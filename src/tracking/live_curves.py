"""Live training curves: DeepLabCut's learning_stats.csv streamed into an MLflow run while it trains."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from src.errors import DataError
from src.tracking.credentials import redact

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


# How long the tracking server may stay away at the end of a training before it stops with one line:
# MLflow's own client retries (MLFLOW_HTTP_REQUEST_MAX_RETRIES=7 with MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=2
# by default: about 4 minutes per request; these variables change it). While the training runs, its
# curves wait in memory for as long as it lasts.
SERVER_AWAY_HINT = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES and MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR set how long it is "
    "waited for"
)


class TrackingServerAway(DataError):
    """The MLflow tracking server did not answer within MLflow's retries: one line, and run again."""


def server_away(uri: str, error: BaseException, what: str) -> TrackingServerAway:
    reason = " ".join(str(error).split())[:200]
    return TrackingServerAway(
        f"mlflow.tracking_uri={redact(uri)} did not answer ({reason}); {what}. The training's "
        "snapshots are kept: run the same command again once the server answers, and the run "
        f"continues from its last whole snapshot, each metric logged once ({SERVER_AWAY_HINT})."
    )


def unreachable(error: BaseException) -> bool:
    """Whether an MLflow client error means that the server did not answer (not a refused request)."""
    text = str(error)
    return isinstance(error, OSError) or any(
        words in text
        for words in ("Max retries exceeded", "Connection refused", "ConnectionError", "timed out")
    )


class MetricBuffer:
    """Metrics of one run on their way to the tracking server: each (key, step) is sent once, and
    kept in memory while the server does not answer (sent, the same values, when it does)."""

    def __init__(self, client: MlflowClient, run_id: str, logged: set[tuple[str, int]]):
        self.client, self.run_id = client, run_id
        self.seen = set(logged)  # already in the run (a continued run's earlier epochs) or queued
        self.pending: list[Metric] = []
        self.error: Exception | None = None  # the last failure, while the server is away

    def add(self, metrics: list[Metric]) -> None:
        for metric in metrics:
            if (metric.key, metric.step) not in self.seen:
                self.seen.add((metric.key, metric.step))
                self.pending.append(metric)

    def flush(self) -> bool:
        """Send what waits; False (the metrics kept) when the server does not answer."""
        while self.pending:
            chunk = self.pending[:1000]
            try:
                self.client.log_batch(self.run_id, metrics=chunk)
            except Exception as error:  # noqa: BLE001 - a refused request is kept and told at the end
                if self.error is None:
                    print(
                        f"MLflow did not answer ({type(error).__name__}): {len(self.pending)} "
                        "training metric(s) kept, sent when it answers",
                        flush=True,
                    )
                self.error = error
                return False
            del self.pending[: len(chunk)]  # resent alike after a failure: the store keeps one
        self.error = None
        return True


@contextmanager
def streaming_learning_stats(run_id: str, learning_stats: Path, every_s: float = 2.0):
    """While the block runs, copy new rows of DeepLabCut's learning_stats.csv into the MLflow run.

    DeepLabCut's ``logger:`` setting accepts only its CSV and Weights & Biases loggers, so the CSV
    it rewrites after every epoch is followed instead; a person watching the MLflow UI sees the
    curves grow. A last pass after training catches the final epoch. While the tracking server
    does not answer, the rows wait in a :class:`MetricBuffer`; if it still does not answer after
    the training (MLflow's retries), :class:`TrackingServerAway` says so in one line.
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
    buffer = MetricBuffer(client, run_id, logged)
    stop = threading.Event()

    def copy_new_rows() -> bool:
        try:
            table = pd.read_csv(learning_stats)
            if "step" not in table.columns:  # DeepLabCut's TensorFlow engine: `iteration, loss, lr`
                table = pd.read_csv(learning_stats, header=None, names=TF_COLUMNS)
        except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError):
            return buffer.flush()  # not written yet, or caught mid-write: next time
        rows = []
        for row in table.to_dict("records"):
            step = int(row.pop("step"))
            for name, value in row.items():
                name = _TRAINING_METRIC_NAMES.get(name)
                if name and value == value:  # NaN: not measured this epoch
                    rows.append(Metric(name, float(value), int(time.time() * 1000), step))
        buffer.add(rows)
        return buffer.flush()

    def follow() -> None:
        while not stop.wait(every_s):
            copy_new_rows()

    thread = threading.Thread(target=follow, name="learning-stats-to-mlflow", daemon=True)
    thread.start()
    try:
        yield
    except BaseException:
        stop.set()
        thread.join()
        with suppress(Exception):  # the training's own error is the one to tell
            copy_new_rows()
        raise
    stop.set()
    thread.join()
    if not copy_new_rows():
        raise server_away(
            mlflow.get_tracking_uri(),
            buffer.error,
            f"{len(buffer.pending)} training metric(s) of run {run_id} are not logged yet",
        )
