"""Figures that prove a flag on participants the models never saw, with participant-bootstrap
intervals.

- ``auroc``: area under the ROC curve of a score for detecting errors (0.5 = chance, 1 = perfect).
- ``precision_at_flag_rate``: the share of real errors among the worst ``rate`` of the rows by
  the score (e.g. the 5 % of frames a person would re-label).
- ``spearman``: rank correlation of a predicted and the actual error per video.
- ``participant_bootstrap``: 95 % percentile intervals of any of these by resampling
  participants with replacement (rows of one participant are never independent), and the paired
  interval of a difference (both figures on the same resampled participants).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.stats import spearmanr


def _finite(values: np.ndarray) -> np.ndarray:
    """NaN scores count as the least suspicious of their column (a signal that cannot say
    anything flags nothing); an all-NaN column is all 0. ``values``: (rows, columns)."""
    missing = np.isnan(values)
    if not missing.any():
        return values
    low = np.where(missing, np.inf, values).min(axis=0)
    out = np.where(missing, low, values)
    out[:, missing.all(axis=0)] = 0.0
    return out


def _columns(score: np.ndarray) -> np.ndarray:
    """``score`` as (rows, columns) floats: one column for a vector."""
    score = np.asarray(score, dtype=float)
    return score[:, None] if score.ndim == 1 else score


def column_aurocs(is_error: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``auroc`` of each column of ``scores`` (rows, columns) at once (ranks with ties averaged,
    as scipy's rankdata)."""
    y = np.asarray(is_error).astype(bool)
    scores = _finite(_columns(scores))
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return np.full(scores.shape[1], np.nan)
    order = np.argsort(scores, axis=0, kind="stable")
    ordered = np.take_along_axis(scores, order, axis=0)
    # average rank of each run of ties, the runs numbered across the columns
    starts = np.ones(ordered.shape, dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    ties = np.cumsum(starts.ravel(order="F")).reshape(ordered.shape, order="F") - 1
    positions = np.tile(np.arange(1.0, len(y) + 1)[:, None], (1, ordered.shape[1]))
    mean_rank = np.bincount(ties.ravel(), positions.ravel()) / np.bincount(ties.ravel())
    rank_sum = (mean_rank[ties] * y[order]).sum(axis=0)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auroc(is_error: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (0 ... 1) of ``score`` for the rows with ``is_error`` = 1: the
    chance that an erroneous row scores above a correct one (ties count half; Mann-Whitney U). NaN
    when only one class is present."""
    return float(column_aurocs(is_error, score)[0])


def column_precisions(is_error: np.ndarray, scores: np.ndarray, rate: float = 0.05) -> np.ndarray:
    """``precision_at_flag_rate`` of each column of ``scores`` (rows, columns) at once."""
    y = np.asarray(is_error, dtype=float)
    scores = _finite(_columns(scores))
    k = max(1, int(round(rate * len(y))))
    cut = -np.partition(-scores, k - 1, axis=0)[k - 1]  # each column's k-th highest score
    above, tied = scores > cut, scores == cut
    tied_share = (y @ tied) / tied.sum(axis=0)
    return (y @ above + (k - above.sum(axis=0)) * tied_share) / k


def precision_at_flag_rate(is_error: np.ndarray, score: np.ndarray, rate: float = 0.05) -> float:
    """Share (0 ... 1) of erroneous rows among the ``rate`` highest-scoring rows (at least one).

    Rows tied at the cut count by their tied group's share, so a score with ties (e.g. a 0/1 flag)
    gets the precision a random choice among the tied rows would have on average.
    """
    return float(column_precisions(is_error, score, rate)[0])


def spearman(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Spearman's rank correlation (-1 ... 1) of predicted and actual errors."""
    return float(spearmanr(predicted, actual).statistic)


def participant_bootstrap(
    participants: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimate and percentile interval of ``statistic`` over participant resamples.

    ``statistic(rows)`` gets row indices (a participant drawn twice brings its rows twice) and
    returns one figure or a vector of figures; several figures of one resample are paired, so the
    interval of their difference is a paired interval. Returns (estimate on all rows, low, high).
    """
    participants = np.asarray(participants)
    groups = [np.flatnonzero(participants == p) for p in np.unique(participants)]
    estimate = np.atleast_1d(np.asarray(statistic(np.arange(len(participants))), dtype=float))
    rng = np.random.default_rng(seed)
    draws = np.empty((n_boot, len(estimate)))
    for b in range(n_boot):
        picked = rng.integers(len(groups), size=len(groups))
        draws[b] = statistic(np.concatenate([groups[i] for i in picked]))
    tail = (1 - level) / 2 * 100
    with warnings.catch_warnings():  # a figure undefined in every resample stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(draws, [tail, 100 - tail], axis=0)
    return estimate, low, high
