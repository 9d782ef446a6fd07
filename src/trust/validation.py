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
from scipy.stats import rankdata, spearmanr


def _finite(score: np.ndarray) -> np.ndarray:
    """NaN scores count as the least suspicious (a signal that cannot say anything flags
    nothing)."""
    score = np.asarray(score, dtype=float)
    if np.isnan(score).all():
        return np.zeros_like(score)
    return np.where(np.isnan(score), np.nanmin(score), score)


def auroc(is_error: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (0 ... 1) of ``score`` for the rows with ``is_error`` = 1: the
    chance that an erroneous row scores above a correct one (ties count half; Mann-Whitney U). NaN
    when only one class is present."""
    y = np.asarray(is_error).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(_finite(score))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_at_flag_rate(is_error: np.ndarray, score: np.ndarray, rate: float = 0.05) -> float:
    """Share (0 ... 1) of erroneous rows among the ``rate`` highest-scoring rows (at least one).

    Rows tied at the cut count by their tied group's share, so a score with ties (e.g. a 0/1 flag)
    gets the precision a random choice among the tied rows would have on average.
    """
    y = np.asarray(is_error, dtype=float)
    score = _finite(score)
    k = max(1, int(round(rate * len(y))))
    cut = np.sort(score)[::-1][k - 1]
    above = score > cut
    tied = score == cut
    taken_tied = k - int(above.sum())
    return float((y[above].sum() + taken_tied * y[tied].mean()) / k)


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
