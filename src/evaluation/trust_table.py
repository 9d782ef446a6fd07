"""How well each trust signal flags the points a model gets wrong on participants it never saw: a
pure function of each run's logged predictions (``predictions/generalisation.csv``, and
``predictions/train.csv`` for the pose subspace) and its test MAE.

A labelled point is **in error** when its error exceeds :data:`TIMES_TEST_MAE` x the test MAE of
the run that predicted it (metric ``mae_test_px``). Per condition (pooled over the folds' runs
under ``split=kfold``, each point judged against its own run's threshold), every signal of
``src.trust.signals`` that labelled images allow, computed from the judged run's predictions:

- ``low_likelihood``: 1 - DeepLabCut's likelihood;
- ``pca_reconstruction_error_px``: ``PosePCA`` fitted on the run's labelled training poses (its
  ``predictions/train.csv``); a run without a train set (condition 0) has none of its own, so each
  participant's points are scored by a subspace fitted on the **other** participants' labelled
  generalisation poses (never its own); column ``pca_poses`` says which;
- ``segment_length_deviation``: per participant, against that participant's median over its
  labelled frames; the skeleton is the data set's (dataset.yaml); absent without one;
- ``model_disagreement_px``: the spread of the judged run's and the same fold's other conditions'
  predictions of the frame (none saw these participants; a run that left a point out is not
  counted); absent with one condition;
- ``jump_px``: always absent here, it needs the video around each frame (``python -m
  benchmarks.trust`` measures it on videos).

``combined``: ``src.trust.score.cross_fit`` over the condition's pooled points with the signals
present, leave-one-participant-out (a participant's points are scored by a model fitted on the
others only); ``best_single``: the single signal with the best AUROC on the other participants,
calibrated on them, as in ``benchmarks/trust.py``. Figures per score: the AUROC and the precision
among the :data:`FLAG_RATE` worst points (src/trust/validation.py), and the paired AUROC difference
combined - best single, each with a participant-bootstrap interval (one resample for all, so the
difference is paired). An absent signal's figures are NaN (never a chance-level 0.5) and its name
is in ``signals_absent``. The likelihood's columns keep their names (``auroc_likelihood``,
``precision_at_5pct``); the others' are ``auroc_<score>`` and ``precision_at_5pct_<score>``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from src.evaluation.metric_names import MetricName
from src.evaluation.study_errors import Bootstrap
from src.trust import signals as sig
from src.trust.score import cross_fit
from src.trust.validation import auroc, participant_bootstrap, precision_at_flag_rate

INDEX = "labelled frames per video"
TIMES_TEST_MAE = 2.0  # the threshold: this many times the judged run's test MAE
FLAG_RATE = 0.05  # precision among the worst 5 % of points
SIGNALS = (
    "low_likelihood",
    "pca_reconstruction_error_px",
    "segment_length_deviation",
    "model_disagreement_px",
    "jump_px",
)
SCORES = (*SIGNALS, "combined", "best_single")
LABELS = {
    "low_likelihood": "1 - likelihood",
    "pca_reconstruction_error_px": "pose PCA reconstruction error (px)",
    "segment_length_deviation": "segment length deviation",
    "model_disagreement_px": "model disagreement (px)",
    "jump_px": "jump beyond body motion (px)",
    "combined": "combined score (cross-fitted)",
    "best_single": "best single signal (chosen on the other participants)",
}
ABSENT_BECAUSE = {
    "pca_reconstruction_error_px": "fewer than 3 complete labelled poses to fit the subspace on",
    "segment_length_deviation": "no skeleton (the data set's dataset.yaml) between the bodyparts",
    "model_disagreement_px": "no other condition's run predicted these frames",
    "jump_px": "needs the video around each frame; `python -m benchmarks.trust` measures it",
    "combined": "fewer than 2 participants, or another participant's points all on one side "
    "of the threshold",
}
GAIN = "auroc_gain_over_best_single"
COUNTS = ("participants", "frames", "points", "folds")
NOTES = ("best_single_chosen", "pca_poses", "signals_absent")
TEST_MAE = MetricName("mae", "test").name  # mae_test_px
KEY = ["participant", "video", "frame"]
TRAIN_POSES = "the run's labelled training poses"
OTHER_POSES = "the other participants' labelled generalisation poses"


def auroc_column(score: str) -> str:
    """``auroc_likelihood`` for 1 - likelihood (its name before the other signals came),
    ``auroc_<score>`` for the others."""
    return "auroc_likelihood" if score == "low_likelihood" else f"auroc_{score}"


def precision_column(score: str) -> str:
    """``precision_at_5pct`` for 1 - likelihood, ``precision_at_5pct_<score>`` for the others."""
    return "precision_at_5pct" if score == "low_likelihood" else f"precision_at_5pct_{score}"


FIGURES = (
    "share_in_error",
    *(auroc_column(s) for s in SCORES),
    *(precision_column(s) for s in SCORES),
    GAIN,
)


def _rows(table: pd.DataFrame, set_name: str | None) -> pd.DataFrame:
    """The rows of one set (all when ``set_name`` is None or the table has no set), with a
    text ``participant`` (the video where none is logged) and ``video``."""
    rows = table
    if set_name is not None and "set" in rows:
        rows = rows[rows["set"] == set_name]
    participant = rows["participant"] if "participant" in rows else rows["video"]
    return rows.assign(participant=participant.astype(str), video=rows["video"].astype(str))


def _wide(
    rows: pd.DataFrame, columns: list[str], bodyparts: list[str], frames: pd.Index | None = None
) -> tuple[np.ndarray, pd.Index]:
    """(n_frames, n_bodyparts, len(columns)) of ``columns`` per frame (participant, video,
    frame) and bodypart in the order of ``bodyparts``; NaN where a row is missing."""
    unique = rows.drop_duplicates([*KEY, "bodypart"])
    if unique.empty:
        index = frames if frames is not None else pd.MultiIndex.from_tuples([], names=KEY)
        return np.full((len(index), len(bodyparts), len(columns)), np.nan), index
    wide = unique.set_index([*KEY, "bodypart"])[columns].unstack("bodypart")
    if frames is not None:
        wide = wide.reindex(frames)
    values = [wide[c].reindex(columns=bodyparts).to_numpy(dtype=float) for c in columns]
    return np.stack(values, axis=2), wide.index


def _usable(poses: np.ndarray) -> np.ndarray:
    """Poses (n, n_points, 2) with every point and a size: the ones a pose subspace can take
    (a pose whose points all coincide has no shape to align)."""
    finite = np.isfinite(poses).all(axis=(1, 2))
    spread = np.zeros(len(poses))
    spread[finite] = np.ptp(poses[finite], axis=1).max(axis=1)
    return finite & (spread > 0)


def _fitted_errors(poses: np.ndarray, xy: np.ndarray) -> np.ndarray | None:
    """Reconstruction error (px) of ``xy``'s points in the subspace of ``poses``; None with
    fewer than 3 usable poses."""
    poses = poses[_usable(poses)]
    if len(poses) < 3:
        return None
    pca = sig.PosePCA().fit(poses)
    out = np.full(xy.shape[:2], np.nan)
    usable = _usable(xy)
    if usable.any():
        out[usable] = pca.reconstruction_error_px(xy[usable])
    return out


def _pca_errors(
    xy: np.ndarray,
    participants: np.ndarray,
    bodyparts: list[str],
    train: pd.DataFrame | None,
    labels: pd.DataFrame,
) -> tuple[np.ndarray, str]:
    """Pose PCA reconstruction error (px) of each point, and the poses the subspace was fitted
    on: the run's labelled training poses or, without 3 usable ones, per participant the
    other participants' labelled generalisation poses ("" where neither has 3)."""
    if train is not None and {"x_label", "y_label"} <= set(train):
        poses, _ = _wide(_rows(train, None), ["x_label", "y_label"], bodyparts)
        errors = _fitted_errors(poses, xy)
        if errors is not None:
            return errors, TRAIN_POSES
    out, used = np.full(xy.shape[:2], np.nan), ""
    for participant in np.unique(participants):
        others = labels[labels["participant"] != participant]
        if others.empty:
            continue
        judged = participants == participant
        poses, _ = _wide(others, ["x_label", "y_label"], bodyparts)
        errors = _fitted_errors(poses, xy[judged])
        if errors is not None:
            out[judged], used = errors, OTHER_POSES
    return out, used


def _segment_deviation(
    xy: np.ndarray, participants: np.ndarray, bodyparts: list[str], skeleton
) -> np.ndarray:
    """Segment length deviation per participant against its own median (NaN without a segment
    between ``bodyparts``)."""
    pairs = [list(p) for p in skeleton if set(p) <= set(bodyparts)]
    out = np.full(xy.shape[:2], np.nan)
    if not pairs:
        return out
    for participant in np.unique(participants):
        judged = participants == participant
        out[judged] = sig.segment_length_deviation(xy[judged], bodyparts, pairs)
    return out


def _disagreement(
    xy: np.ndarray, frames: pd.Index, bodyparts: list[str], others: Sequence[pd.DataFrame]
) -> np.ndarray:
    """Model disagreement (px) of the judged run's and the other runs' predictions of the same
    frames; a run that left out a point the judged run predicted is not counted."""
    models = [xy]
    for other in others:
        theirs, _ = _wide(_rows(other, "generalisation"), ["x_pred", "y_pred"], bodyparts, frames)
        if np.isfinite(theirs[np.isfinite(xy)]).all():
            models.append(theirs)
    if len(models) < 2:
        return np.full(xy.shape[:2], np.nan)
    return sig.model_disagreement_px(models)


def signal_points(
    predictions: pd.DataFrame,
    test_mae_px: float,
    *,
    train: pd.DataFrame | None = None,
    skeleton: Sequence[Sequence[str]] = (),
    others: Sequence[pd.DataFrame] = (),
    labels: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The labelled generalisation points of one run: ``participant``, ``frame_key``,
    ``in_error`` (error > :data:`TIMES_TEST_MAE` x ``test_mae_px``) and a column per
    :data:`SIGNALS` (NaN where absent). ``train``: the run's ``predictions/train.csv``;
    ``others``: the generalisation predictions of the same fold's other conditions; ``labels``:
    labelled generalisation rows of every participant (for the pose subspace without ``train``).
    ``attrs["pca_poses"]`` says what the pose subspace was fitted on."""
    rows = _rows(predictions, "generalisation")
    if rows["error_px"].isna().all():  # no labelled generalisation point: nothing to judge
        empty = pd.DataFrame(columns=["participant", "frame_key", "in_error", *SIGNALS])
        empty.attrs["pca_poses"] = ""
        return empty
    bodyparts = list(pd.unique(rows["bodypart"]))
    xy, frames = _wide(rows, ["x_pred", "y_pred"], bodyparts)
    participants = frames.get_level_values("participant").to_numpy()
    labels = labels if labels is not None else _label_rows([predictions])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # medians of all-missing segments
        pca, pca_poses = _pca_errors(xy, participants, bodyparts, train, labels)
        columns = {
            "pca_reconstruction_error_px": pca,
            "segment_length_deviation": _segment_deviation(xy, participants, bodyparts, skeleton),
            "model_disagreement_px": _disagreement(xy, frames, bodyparts, others),
            "jump_px": np.full(xy.shape[:2], np.nan),  # needs the video around the frame
        }
    n_points = len(bodyparts)
    signal_rows = frames.to_frame(index=False).loc[np.repeat(np.arange(len(frames)), n_points)]
    signal_rows = signal_rows.assign(
        bodypart=np.tile(bodyparts, len(frames)),
        **{name: values.ravel() for name, values in columns.items()},
    )
    labelled = rows.dropna(subset=["error_px"])[[*KEY, "bodypart", "error_px", "likelihood"]]
    points = labelled.merge(signal_rows, on=[*KEY, "bodypart"], how="left")
    points["low_likelihood"] = sig.low_likelihood(points["likelihood"])
    result = pd.DataFrame(
        {
            "participant": points["participant"].to_numpy(),
            "frame_key": (points["video"] + "/" + points["frame"].astype(str)).to_numpy(),
            "in_error": (points["error_px"] > TIMES_TEST_MAE * test_mae_px).to_numpy(),
            **{name: points[name].to_numpy(dtype=float) for name in SIGNALS},
        }
    )
    result.attrs["pca_poses"] = pca_poses
    return result


def _label_rows(tables) -> pd.DataFrame:
    """The labelled generalisation points of ``tables`` (labels, not predictions: the same in
    every run that has the frame), one row per participant, video, frame and bodypart."""
    parts = [
        _rows(t, "generalisation").dropna(subset=["x_label", "y_label"])
        for t in tables
        if {"x_label", "y_label"} <= set(t)
    ]
    columns = [*KEY, "bodypart", "x_label", "y_label"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat([p[columns] for p in parts]).drop_duplicates([*KEY, "bodypart"])


def _cross_fitted(points: pd.DataFrame, present: list[str]) -> tuple[np.ndarray, np.ndarray, str]:
    """The combined score and the best single signal of every point, each from a model fitted on
    the other participants only (``cross_fit``), and the signals chosen as best; NaN (absent)
    when it cannot be fitted. Scores to rank by, not probabilities."""
    nothing = np.full(len(points), np.nan)
    participants = points["participant"].to_numpy()
    if not present or len(np.unique(participants)) < 2:
        return nothing, nothing, ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fit = cross_fit(points, present, points["in_error"].to_numpy(), participants)
    except ValueError:  # the other participants' points all in error, or all correct
        return nothing, nothing, ""
    # pooled ranking figures take each fit's weights without its constant (CrossFit says why)
    combined, best = fit.combined_ranking, fit.best_single_ranking
    return combined, best, "; ".join(sorted(set(fit.chosen.values())))


def _figures(in_error: np.ndarray, scores: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray]:
    """The :data:`FIGURES` of the rows given, as a function of rows (absent scores: NaN)."""
    values = scores.to_numpy(dtype=float)
    present = ~np.isnan(values).all(axis=0)
    names = list(scores.columns)
    combined, best = names.index("combined"), names.index("best_single")

    def of(rows: np.ndarray) -> np.ndarray:
        y, s = in_error[rows], values[rows]
        aurocs = [auroc(y, s[:, i]) if present[i] else np.nan for i in range(len(names))]
        precisions = [
            precision_at_flag_rate(y, s[:, i], FLAG_RATE) if present[i] else np.nan
            for i in range(len(names))
        ]
        return np.array([y.mean(), *aurocs, *precisions, aurocs[combined] - aurocs[best]])

    return of


def _condition_row(
    points: pd.DataFrame, thresholds: list[float], bootstrap: Bootstrap, min_participants: int
) -> dict:
    """One condition's figures, intervals (none below ``min_participants``), counts and notes."""
    participants = points["participant"].to_numpy()
    n_participants = len(np.unique(participants))
    small = n_participants < min_participants
    present = [s for s in SIGNALS if points[s].notna().any()]
    combined, best, chosen = _cross_fitted(points, present)
    scores = points[list(SIGNALS)].assign(combined=combined, best_single=best)
    statistic = _figures(points["in_error"].to_numpy(), scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a figure undefined in a resample
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
        "best_single_chosen": chosen,
        "pca_poses": "; ".join(sorted(set(points.attrs.get("pca_poses", [])) - {""})),
        "signals_absent": "; ".join(s for s in SCORES[:-1] if scores[s].isna().all()),
    }
    for name, value, lo, hi in zip(FIGURES, estimate, low, high, strict=True):
        row |= {name: value, f"{name}_ci_low": lo, f"{name}_ci_high": hi}
    return row


def _fold(run: dict):
    """The run's fold (None for a single split)."""
    fold = run.get("fold")
    return None if fold is None or pd.isna(fold) else int(fold)


def trust_validation(
    runs: pd.DataFrame,
    predictions: Mapping[str, pd.DataFrame],
    bootstrap: Bootstrap,
    min_participants: int,
    train_predictions: Mapping[str, pd.DataFrame] | None = None,
    skeleton: Sequence[Sequence[str]] = (),
) -> pd.DataFrame:
    """The trust table: one row per condition (``labelled_frames``), pooled over its runs (folds).

    ``runs``: one row per run with ``run_id``, ``labelled_frames``, ``mae_test_px`` (and ``fold``
    under cross-validation); ``predictions``: each run's ``predictions/generalisation.csv`` by
    run id (runs without one, or without a test MAE, are left out); ``train_predictions``: each
    run's ``predictions/train.csv``; ``skeleton``: the data set's pairs of bodyparts. Columns:
    the :data:`FIGURES` with ``_ci_low``/``_ci_high`` (NaN below ``min_participants``
    participants, ``small`` True), the threshold's range over the runs (px), the
    :data:`COUNTS` and the :data:`NOTES`.
    """
    records = [r for r in runs.to_dict("records") if predictions.get(r["run_id"]) is not None]
    labels = _label_rows([predictions[r["run_id"]] for r in records])
    scored: dict[int, list[pd.DataFrame]] = {}
    thresholds: dict[int, list[float]] = {}
    for run in records:
        test_mae = run.get(TEST_MAE, np.nan)
        if pd.isna(test_mae):
            continue
        n = int(run["labelled_frames"])
        others = [
            predictions[o["run_id"]]
            for o in records
            if _fold(o) == _fold(run) and int(o["labelled_frames"]) != n
        ]
        points = signal_points(
            predictions[run["run_id"]],
            float(test_mae),
            train=(train_predictions or {}).get(run["run_id"]),
            skeleton=skeleton,
            others=others,
            labels=labels,
        )
        # pseudonyms are per study, so a participant's points in two folds are one participant
        points["frame_key"] = f"{run['run_id']}:" + points["frame_key"]
        scored.setdefault(n, []).append(points)
        thresholds.setdefault(n, []).append(TIMES_TEST_MAE * float(test_mae))
    rows = {}
    for n, parts in sorted(scored.items()):
        if sum(len(p) for p in parts):
            pooled = pd.concat(parts, ignore_index=True)
            pooled.attrs["pca_poses"] = [p.attrs["pca_poses"] for p in parts]
            rows[n] = _condition_row(pooled, thresholds[n], bootstrap, min_participants)
    columns = [
        "threshold_px_min",
        "threshold_px_max",
        *[f"{f}{end}" for f in FIGURES for end in ("", "_ci_low", "_ci_high")],
        *COUNTS,
        "small",
        *NOTES,
    ]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis(INDEX)


def trust_metrics(table: pd.DataFrame) -> dict[str, float]:
    """The parent run's headline metrics of the trust table, e.g.
    ``trust_auroc_likelihood_frames_6``, ``trust_auroc_combined_frames_6`` and their
    ``_ci_low``/``_ci_high`` (NaN, e.g. an absent signal's, left out)."""
    metrics = {}
    for n, row in table.iterrows():
        for name in FIGURES:
            for end in ("", "_ci_low", "_ci_high"):
                metrics[f"trust_{name}_frames_{n}{end}"] = row[f"{name}{end}"]
        metrics[f"trust_participants_frames_{n}"] = row["participants"]
        metrics[f"trust_points_frames_{n}"] = row["points"]
    return {k: float(v) for k, v in metrics.items() if pd.notna(v)}
