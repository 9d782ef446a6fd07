"""How well DeepLabCut's likelihood flags the points it gets wrong on participants the models
never saw: a pure function of each run's logged generalisation predictions and its test MAE.

A labelled point is **in error** when its error exceeds :data:`TIMES_TEST_MAE` x the test MAE of
the run that predicted it (metric ``mae_test_px``); the score is 1 - likelihood. Per condition
(pooled over the folds' runs under ``split=kfold``, each point judged against its own run's
threshold): the share of points in error, the AUROC of the score for them and the precision among
the :data:`FLAG_RATE` worst points (src/trust/validation.py), each with a participant-bootstrap
interval. The temporal and body-plausibility signals need the videos: ``python -m benchmarks.trust``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from src.evaluation.metric_names import MetricName
from src.evaluation.study_errors import Bootstrap
from src.trust.validation import auroc, participant_bootstrap, precision_at_flag_rate

INDEX = "labelled frames per video"
TIMES_TEST_MAE = 2.0  # the threshold: this many times the judged run's test MAE
FLAG_RATE = 0.05  # precision among the worst 5 % of points
FIGURES = ("share_in_error", "auroc_likelihood", "precision_at_5pct")
COUNTS = ("participants", "frames", "points", "folds")
TEST_MAE = MetricName("mae", "test").name  # mae_test_px


def scored_points(predictions: pd.DataFrame, test_mae_px: float) -> pd.DataFrame:
    """The labelled generalisation points of one run: participant, frame key, ``in_error``
    (error > :data:`TIMES_TEST_MAE` x ``test_mae_px``) and ``score`` (1 - likelihood)."""
    rows = predictions
    if "set" in rows:
        rows = rows[rows["set"] == "generalisation"]
    rows = rows.dropna(subset=["error_px"])
    participant = rows["participant"] if "participant" in rows else rows["video"]
    return pd.DataFrame(
        {
            "participant": participant.astype(str).to_numpy(),
            "frame_key": (rows["video"].astype(str) + "/" + rows["frame"].astype(str)).to_numpy(),
            "in_error": (rows["error_px"] > TIMES_TEST_MAE * test_mae_px).to_numpy(),
            "score": 1.0 - rows["likelihood"].to_numpy(dtype=float),
        }
    )


def _figures(points: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray]:
    """Share in error, AUROC and precision at the flag rate of ``points``, as a function of rows."""
    in_error, score = points["in_error"].to_numpy(), points["score"].to_numpy()

    def of(rows: np.ndarray) -> np.ndarray:
        y, s = in_error[rows], score[rows]
        return np.array([y.mean(), auroc(y, s), precision_at_flag_rate(y, s, FLAG_RATE)])

    return of


def _condition_row(
    points: pd.DataFrame, thresholds: list[float], bootstrap: Bootstrap, min_participants: int
) -> dict:
    """One condition's figures, intervals (none below ``min_participants``) and counts."""
    participants = points["participant"].to_numpy()
    n_participants = len(np.unique(participants))
    small = n_participants < min_participants
    statistic = _figures(points)
    if small:
        estimate = statistic(np.arange(len(points)))
        low = high = np.full(len(FIGURES), np.nan)
    else:
        estimate, low, high = participant_bootstrap(
            participants,
            statistic,
            n_boot=bootstrap.resamples,
            seed=bootstrap.seed,
            level=bootstrap.confidence,
        )
    row = {
        "threshold_px_min": min(thresholds),
        "threshold_px_max": max(thresholds),
        "participants": n_participants,
        "frames": points["frame_key"].nunique(),
        "points": len(points),
        "folds": len(thresholds),
        "small": small,
    }
    for name, value, lo, hi in zip(FIGURES, estimate, low, high, strict=True):
        row |= {name: value, f"{name}_ci_low": lo, f"{name}_ci_high": hi}
    return row


def trust_validation(
    runs: pd.DataFrame,
    predictions: Mapping[str, pd.DataFrame],
    bootstrap: Bootstrap,
    min_participants: int,
) -> pd.DataFrame:
    """The trust table: one row per condition (``labelled_frames``), pooled over its runs (folds).

    ``runs``: one row per run with ``run_id``, ``labelled_frames`` and ``mae_test_px``;
    ``predictions``: each run's ``predictions/generalisation.csv`` by run id (runs without one, or
    without a test MAE, are left out). Columns: the :data:`FIGURES` with ``_ci_low``/``_ci_high``
    (NaN below ``min_participants`` participants, ``small`` True), the threshold's range over the
    runs (px) and the :data:`COUNTS`.
    """
    scored: dict[int, list[pd.DataFrame]] = {}
    thresholds: dict[int, list[float]] = {}
    for run in runs.to_dict("records"):
        table = predictions.get(run["run_id"])
        test_mae = run.get(TEST_MAE, np.nan)
        if table is None or pd.isna(test_mae):
            continue
        n = int(run["labelled_frames"])
        # pseudonyms are per study, so a participant's points in two folds are one participant
        points = scored_points(table, float(test_mae))
        points["frame_key"] = f"{run['run_id']}:" + points["frame_key"]
        scored.setdefault(n, []).append(points)
        thresholds.setdefault(n, []).append(TIMES_TEST_MAE * float(test_mae))
    rows = {
        n: _condition_row(pd.concat(parts), thresholds[n], bootstrap, min_participants)
        for n, parts in sorted(scored.items())
        if sum(len(p) for p in parts)
    }
    columns = [
        "threshold_px_min",
        "threshold_px_max",
        *[f"{f}{end}" for f in FIGURES for end in ("", "_ci_low", "_ci_high")],
        *COUNTS,
        "small",
    ]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis(INDEX)


def trust_metrics(table: pd.DataFrame) -> dict[str, float]:
    """The parent run's headline metrics of the trust table, e.g.
    ``trust_auroc_likelihood_frames_6`` and its ``_ci_low``/``_ci_high`` (NaN left out)."""
    metrics = {}
    for n, row in table.iterrows():
        for name in FIGURES:
            for end in ("", "_ci_low", "_ci_high"):
                metrics[f"trust_{name}_frames_{n}{end}"] = row[f"{name}{end}"]
        metrics[f"trust_participants_frames_{n}"] = row["participants"]
        metrics[f"trust_points_frames_{n}"] = row["points"]
    return {k: float(v) for k, v in metrics.items() if pd.notna(v)}
