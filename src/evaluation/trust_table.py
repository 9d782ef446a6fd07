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

:func:`threshold_table` (trust_thresholds.csv) judges the same scores against three thresholds,
for points and for frames: 2 x test MAE, the first PCK fraction x each frame's reference length
(src/evaluation/pck.py; absent, saying why, without a reference) and a fixed px threshold
(:class:`Thresholds`). A frame is in error when the mean error of its labelled points exceeds the
threshold; its score is the mean of its points' scores. The combined score and the best single
signal are cross-fitted for each threshold (its label is theirs); :func:`trust_tables` makes both
tables from one :func:`pooled_points`, the 2 x test MAE fit shared.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from src.errors import ConfigError
from src.evaluation.metric_names import MetricName
from src.evaluation.pck import OFF_NOTE, Reference, reference_lengths, reference_of
from src.evaluation.study_errors import Bootstrap
from src.trust import signals as sig
from src.trust.score import cross_fit
from src.trust.validation import (
    auroc,
    column_aurocs,
    column_precisions,
    participant_bootstrap,
    precision_at_flag_rate,
)

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
    ``in_error`` (error > :data:`TIMES_TEST_MAE` x ``test_mae_px``), ``error_px`` and a column per
    :data:`SIGNALS` (NaN where absent). ``train``: the run's ``predictions/train.csv``;
    ``others``: the generalisation predictions of the same fold's other conditions; ``labels``:
    labelled generalisation rows of every participant (for the pose subspace without ``train``).
    ``attrs["pca_poses"]`` says what the pose subspace was fitted on."""
    rows = _rows(predictions, "generalisation")
    if rows["error_px"].isna().all():  # no labelled generalisation point: nothing to judge
        empty = pd.DataFrame(columns=["participant", "frame_key", "in_error", "error_px", *SIGNALS])
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
            "error_px": points["error_px"].to_numpy(dtype=float),
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


def _present(points: pd.DataFrame) -> list[str]:
    """The :data:`SIGNALS` that score at least one of ``points``."""
    return [s for s in SIGNALS if points[s].notna().any()]


def _condition_row(
    points: pd.DataFrame,
    thresholds: list[float],
    bootstrap: Bootstrap,
    min_participants: int,
    fitted: tuple | None = None,
) -> dict:
    """One condition's figures, intervals (none below ``min_participants``), counts and notes;
    ``fitted``: the points' :func:`_cross_fitted` when already computed."""
    participants = points["participant"].to_numpy()
    n_participants = len(np.unique(participants))
    small = n_participants < min_participants
    combined, best, chosen = fitted or _cross_fitted(points, _present(points))
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


def pooled_points(
    runs: pd.DataFrame,
    predictions: Mapping[str, pd.DataFrame],
    train_predictions: Mapping[str, pd.DataFrame] | None = None,
    skeleton: Sequence[Sequence[str]] = (),
    reference: Reference | None = None,
) -> dict[int, pd.DataFrame]:
    """Each condition's (``labelled_frames``) scored points, pooled over its runs (folds): the
    columns of :func:`signal_points` (``frame_key`` prefixed with the run id), ``mae_threshold_px``
    (:data:`TIMES_TEST_MAE` x the run's test MAE) and ``ref_length_px`` (the frame's PCK reference
    length, src/evaluation/pck.py, from the run's logged labels; NaN without ``reference`` or where
    the frame has none). ``attrs``: ``thresholds`` (one per run with a test MAE) and ``pca_poses``.
    The arguments are :func:`trust_validation`'s; conditions without a labelled point are left out.
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
        logged = predictions[run["run_id"]]
        points = signal_points(
            logged,
            float(test_mae),
            train=(train_predictions or {}).get(run["run_id"]),
            skeleton=skeleton,
            others=others,
            labels=labels,
        )
        points["mae_threshold_px"] = TIMES_TEST_MAE * float(test_mae)
        points["ref_length_px"] = (
            _reference_lengths(logged, reference).reindex(points["frame_key"]).to_numpy(dtype=float)
        )
        # pseudonyms are per study, so a participant's points in two folds are one participant
        points["frame_key"] = f"{run['run_id']}:" + points["frame_key"]
        scored.setdefault(n, []).append(points)
        thresholds.setdefault(n, []).append(TIMES_TEST_MAE * float(test_mae))
    pooled = {}
    for n, parts in sorted(scored.items()):
        if sum(len(p) for p in parts):
            pooled[n] = pd.concat(parts, ignore_index=True)
            pooled[n].attrs = {
                "pca_poses": [p.attrs["pca_poses"] for p in parts],
                "thresholds": thresholds[n],
            }
    return pooled


def _reference_lengths(logged: pd.DataFrame, reference: Reference | None) -> pd.Series:
    """The PCK reference length (px) of each labelled generalisation frame of one run's logged
    predictions, by ``video/frame``; empty without a reference."""
    if reference is None:
        return pd.Series(dtype=float)
    labels = _label_rows([logged]).rename(columns={"x_label": "x", "y_label": "y"})
    lengths = reference_lengths(labels, reference)
    key = lengths["video"].astype(str) + "/" + lengths["frame"].astype(str)
    return pd.Series(lengths["ref_length_px"].to_numpy(dtype=float), index=key.to_numpy())


def validation_table(
    pooled: Mapping[int, pd.DataFrame],
    bootstrap: Bootstrap,
    min_participants: int,
    fitted: Mapping[int, tuple] | None = None,
) -> pd.DataFrame:
    """:func:`trust_validation` of the conditions' :func:`pooled_points` (``fitted``: each
    condition's :func:`_cross_fitted`, when already computed)."""
    fitted = fitted or {}
    rows = {
        n: _condition_row(
            points, points.attrs["thresholds"], bootstrap, min_participants, fitted.get(n)
        )
        for n, points in pooled.items()
    }
    columns = [
        "threshold_px_min",
        "threshold_px_max",
        *[f"{f}{end}" for f in FIGURES for end in ("", "_ci_low", "_ci_high")],
        *COUNTS,
        "small",
        *NOTES,
    ]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis(INDEX)


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
    pooled = pooled_points(runs, predictions, train_predictions, skeleton)
    return validation_table(pooled, bootstrap, min_participants)


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


# The thresholds table (trust_thresholds.csv): every score against three thresholds, for points
# and for frames (a frame's error: the mean over its labelled points; its score: the mean of its
# points' scores, as benchmarks/trust.py ``per_frame``).
FIXED_PX = 20.0  # report.trust_fixed_px's default: Lightning Pose's outlier threshold (px)
UNITS = ("points", "frames")
THRESHOLD_COLUMNS = (
    "labelled_frames",
    "threshold",
    "threshold_px_min",
    "threshold_px_max",
    "unit",
    "score",
    *[f"{f}{end}" for f in ("auroc", "precision_at_5pct") for end in ("", "_ci_low", "_ci_high")],
    *[f"share_in_error{end}" for end in ("", "_ci_low", "_ci_high")],
    "n_in_error",
    "n_judged",
    "n_left_out",
    "participants",
    "small",
    "best_single_chosen",
    "absent_because",
)
NO_REFERENCE = "no labelled frame has a reference length (a reference bodypart unlabelled)"


@dataclass(frozen=True)
class Thresholds:
    """The thresholds beside :data:`TIMES_TEST_MAE` x the test MAE: ``pck_fraction`` x each
    frame's reference length (absent, saying ``pck_off``, without a ``reference``), and
    ``fixed_px``. ``precision``: False computes the intervals of the share and the AUROC only
    (the precision's estimate stays), for speed."""

    reference: Reference | None = None
    pck_fraction: float | None = None
    fixed_px: float = FIXED_PX
    pck_off: str = OFF_NOTE
    precision: bool = True

    def names(self) -> tuple[str, str, str]:
        """The ``threshold`` column's values (:func:`threshold_words` says them in words)."""
        fraction = f"{self.pck_fraction:g}" if self.pck_fraction is not None else ""
        return f"{TIMES_TEST_MAE:g}x_test_mae", f"pck{fraction}", f"{self.fixed_px:g}px"

    def of(self, points: pd.DataFrame) -> list[tuple[str, np.ndarray | None, str]]:
        """Per threshold: its name, each point's threshold (px; NaN: none) or None, and why."""
        mae, pck, fixed = self.names()
        if self.reference is None or self.pck_fraction is None:
            pck_px, why = None, self.pck_off
        else:
            pck_px = self.pck_fraction * points["ref_length_px"].to_numpy(dtype=float)
            pck_px, why = (pck_px, "") if np.isfinite(pck_px).any() else (None, NO_REFERENCE)
        return [
            (mae, points["mae_threshold_px"].to_numpy(dtype=float), ""),
            (pck, pck_px, why),
            (fixed, np.full(len(points), float(self.fixed_px)), ""),
        ]


def thresholds_of(
    pck_cfg, data_kind: str, bodyparts: list[str], cm_per_px, fixed_px: float
) -> Thresholds:
    """The report's :class:`Thresholds`: ``evaluation.pck``'s reference (src/evaluation/pck.py
    ``reference_of``) at its first fraction, and ``fixed_px``; the PCK threshold absent, saying
    why, when the reference is off, its fractions empty or it does not fit the logged bodyparts.
    Intervals on the share and the AUROC only: with the precision's too the report's trust tables
    took 2.0 x as long as trust_validation.csv alone (5 folds, 6 conditions, 2000 resamples)."""
    fractions = [float(f) for f in pck_cfg.get("fractions") or []]
    fraction = fractions[0] if fractions else None
    try:
        reference = reference_of(pck_cfg, data_kind, bodyparts, cm_per_px)
    except ConfigError as error:  # e.g. a reference bodypart the runs did not evaluate
        return Thresholds(None, fraction, fixed_px, pck_off=str(error), precision=False)
    if reference is None or fraction is None:
        why = OFF_NOTE if reference is None else "evaluation.pck.fractions is empty"
        return Thresholds(None, fraction, fixed_px, pck_off=why, precision=False)
    return Thresholds(reference, fraction, fixed_px, precision=False)


def threshold_words(name: str) -> str:
    """A ``threshold`` of :func:`threshold_table` in words: ``2x_test_mae`` -> "2 x test MAE",
    ``pck0.1`` -> "0.1 x reference", ``20px`` -> "20 px"."""
    if name.endswith("x_test_mae"):
        return f"{name.removesuffix('x_test_mae')} x test MAE"
    if name.startswith("pck"):
        return f"{name.removeprefix('pck') or 'a fraction'} x reference"
    return f"{name.removesuffix('px')} px"


@dataclass
class _Block:
    """One (threshold, unit) of a condition: its rows of the stacked points and frames, whether
    each is in error, the scores (columns :data:`SCORES`) and the threshold (px)."""

    threshold: str
    unit: str
    rows: np.ndarray
    in_error: np.ndarray
    scores: np.ndarray
    threshold_px: np.ndarray
    participants: np.ndarray
    chosen: str
    left_out: int


def _frames(points: pd.DataFrame, scores: pd.DataFrame, threshold_px: np.ndarray) -> pd.DataFrame:
    """Per frame: participant, mean error of its points, its threshold and its mean scores."""
    keys = points["frame_key"].to_numpy()
    frames = scores.groupby(keys, sort=False).mean()
    grouped = points.assign(threshold_px=threshold_px).groupby(keys, sort=False)
    frames["error_px"] = grouped["error_px"].mean()
    frames["threshold_px"] = grouped["threshold_px"].first()
    frames["participant"] = grouped["participant"].first()
    return frames


def _blocks(
    points: pd.DataFrame, thresholds: Thresholds, fitted: tuple | None
) -> tuple[list[_Block], dict[str, str]]:
    """Every present threshold's blocks (points, then frames) with rows into the stacked table
    (points first, then each threshold's frames), and the absent thresholds' reasons. ``fitted``:
    the combined score at 2 x test MAE when already computed."""
    present = _present(points)
    blocks, absent, offset = [], {}, len(points)
    n_frames = points["frame_key"].nunique()
    for name, threshold_px, why in thresholds.of(points):
        if threshold_px is None:
            absent[name] = why
            continue
        judged = np.isfinite(threshold_px)
        rows = points[judged]
        in_error = rows["error_px"].to_numpy() > threshold_px[judged]
        reuse = fitted is not None and name == thresholds.names()[0]
        rows = rows.assign(in_error=in_error)
        combined, best, chosen = fitted if reuse else _cross_fitted(rows, present)
        scores = rows[list(SIGNALS)].assign(combined=combined, best_single=best)
        blocks.append(
            _Block(
                name,
                "points",
                rows=np.flatnonzero(judged),
                in_error=in_error,
                scores=scores.to_numpy(dtype=float),
                threshold_px=threshold_px[judged],
                participants=rows["participant"].to_numpy(),
                chosen=chosen,
                left_out=len(points) - len(rows),
            )
        )
        frames = _frames(rows, scores, threshold_px[judged])
        blocks.append(
            _Block(
                name,
                "frames",
                rows=offset + np.arange(len(frames)),
                in_error=(frames["error_px"] > frames["threshold_px"]).to_numpy(),
                scores=frames[list(SCORES)].to_numpy(dtype=float),
                threshold_px=frames["threshold_px"].to_numpy(),
                participants=frames["participant"].to_numpy(),
                chosen=chosen,
                left_out=n_frames - len(frames),
            )
        )
        offset += len(frames)
    return blocks, absent


def _block_statistic(blocks: list[_Block], size: int, precision: bool):
    """The figures of every block (share in error, each score's AUROC and, with ``precision``,
    precision) of the stacked rows given, as one function of rows: one resample for all."""
    k, where = len(SCORES), []
    for block in blocks:
        position = np.full(size, -1)
        position[block.rows] = np.arange(len(block.rows))
        present = ~np.isnan(block.scores).all(axis=0)  # absent scores: NaN, never computed
        where.append((position, present, block.scores[:, present]))

    def of(rows: np.ndarray) -> np.ndarray:
        out = []
        for block, (position, present, scores) in zip(blocks, where, strict=True):
            figures = np.full(1 + (2 if precision else 1) * k, np.nan)
            picked = position[rows]
            picked = picked[picked >= 0]
            if len(picked):  # else none of the resampled participants has a unit here
                y, s = block.in_error[picked], scores[picked]
                figures[0] = y.mean()
                figures[1 : 1 + k][present] = column_aurocs(y, s)
                if precision:
                    figures[1 + k :][present] = column_precisions(y, s, FLAG_RATE)
            out.append(figures)
        return np.concatenate(out)

    return of


def _threshold_figures(
    blocks: list[_Block], participants: np.ndarray, bootstrap: Bootstrap, small: bool, precision
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per block: (estimates, low, high) of the share in error, then the AUROC and the precision
    of each of :data:`SCORES`; one participant bootstrap for every block (none when ``small``);
    without ``precision`` the precisions' bounds are NaN."""
    k = len(SCORES)
    width, n_bounds = 1 + 2 * k, 1 + (2 if precision else 1) * k
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a figure undefined in a resample
        estimate = _block_statistic(blocks, len(participants), True)(np.arange(len(participants)))
        low = high = np.full(len(blocks) * n_bounds, np.nan)
        if not small:
            _, low, high = participant_bootstrap(
                participants,
                _block_statistic(blocks, len(participants), precision),
                n_boot=bootstrap.resamples,
                seed=bootstrap.seed,
                level=bootstrap.confidence,
            )
    out = []
    for i in range(len(blocks)):
        lo, hi = np.full(width, np.nan), np.full(width, np.nan)
        lo[:n_bounds] = low[i * n_bounds : (i + 1) * n_bounds]
        hi[:n_bounds] = high[i * n_bounds : (i + 1) * n_bounds]
        out.append((estimate[i * width : (i + 1) * width], lo, hi))
    return out


def _score_rows(n: int, block: _Block, figures, min_participants: int) -> list[dict]:
    """The rows of one block, a row per score."""
    estimate, low, high = figures
    n_participants = len(np.unique(block.participants))
    small = n_participants < min_participants
    if small:
        low = high = np.full(len(estimate), np.nan)
    k, rows = len(SCORES), []
    for i, score in enumerate(SCORES):
        row = {
            "labelled_frames": n,
            "threshold": block.threshold,
            "threshold_px_min": float(np.min(block.threshold_px)),
            "threshold_px_max": float(np.max(block.threshold_px)),
            "unit": block.unit,
            "score": score,
            "n_in_error": int(block.in_error.sum()),
            "n_judged": len(block.in_error),
            "n_left_out": block.left_out,
            "participants": n_participants,
            "small": small,
            "best_single_chosen": block.chosen if score == "best_single" else "",
            "absent_because": ""
            if np.isfinite(block.scores[:, i]).any()
            else ABSENT_BECAUSE.get(score, ABSENT_BECAUSE["combined"]),
        }
        for name, at in (("share_in_error", 0), ("auroc", 1 + i), ("precision_at_5pct", 1 + k + i)):
            row |= {name: estimate[at], f"{name}_ci_low": low[at], f"{name}_ci_high": high[at]}
        rows.append(row)
    return rows


def _condition_thresholds(
    n: int, points: pd.DataFrame, bootstrap: Bootstrap, min_participants: int, settings: tuple
) -> list[dict]:
    """One condition's rows of :func:`threshold_table`; ``settings``: its thresholds and
    cross-fitted scores at 2 x test MAE (or None)."""
    thresholds, fitted = settings
    blocks, absent = _blocks(points, thresholds, fitted)
    participants = np.concatenate(
        [points["participant"].to_numpy(), *(b.participants for b in blocks if b.unit == "frames")]
    )
    small = len(np.unique(participants)) < min_participants
    figures = _threshold_figures(blocks, participants, bootstrap, small, thresholds.precision)
    rows = []
    for name in thresholds.names():
        for unit in UNITS:
            if name in absent:
                rows += [
                    {"labelled_frames": n, "threshold": name, "unit": unit, "score": score}
                    | {"absent_because": absent[name]}
                    for score in SCORES
                ]
            for block, figure in zip(blocks, figures, strict=True):
                if (block.threshold, block.unit) == (name, unit):
                    rows += _score_rows(n, block, figure, min_participants)
    return rows


def threshold_table(
    pooled: Mapping[int, pd.DataFrame],
    bootstrap: Bootstrap,
    min_participants: int,
    thresholds: Thresholds = Thresholds(),
    fitted: Mapping[int, tuple] | None = None,
) -> pd.DataFrame:
    """trust_thresholds.csv: one row per condition, threshold (:meth:`Thresholds.names`), unit
    (points, frames) and score (:data:`SCORES`), columns :data:`THRESHOLD_COLUMNS`. A point is in
    error when its error exceeds the threshold; a frame when the mean error of its labelled points
    does, and its score is the mean of its points' scores. The combined score and the best single
    signal are cross-fitted anew for each threshold (their label changes with it). Intervals as in
    :func:`trust_validation` (none on fewer than ``min_participants`` participants, ``small``);
    an absent threshold or score has NaN figures and says why in ``absent_because``. ``fitted``:
    each condition's cross-fitted scores at 2 x test MAE, when already computed.
    """
    rows = []
    for n, points in pooled.items():
        settings = (thresholds, (fitted or {}).get(n))
        rows += _condition_thresholds(n, points, bootstrap, min_participants, settings)
    return pd.DataFrame(rows, columns=list(THRESHOLD_COLUMNS))


def trust_tables(
    pooled: Mapping[int, pd.DataFrame],
    bootstrap: Bootstrap,
    min_participants: int,
    thresholds: Thresholds = Thresholds(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`validation_table` and :func:`threshold_table` of the same pooled points, the
    combined score at 2 x test MAE cross-fitted once for both."""
    fitted = {n: _cross_fitted(points, _present(points)) for n, points in pooled.items()}
    return (
        validation_table(pooled, bootstrap, min_participants, fitted),
        threshold_table(pooled, bootstrap, min_participants, thresholds, fitted),
    )
