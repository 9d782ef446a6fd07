"""Validation figures: AUROC, precision at a flag rate, participant bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from src.trust.validation import (
    auroc,
    column_aurocs,
    column_precisions,
    participant_bootstrap,
    precision_at_flag_rate,
    spearman,
)


def test_auroc_of_a_perfect_signal_is_one():
    is_error = np.array([0, 0, 1, 0, 1, 0, 0, 1])
    assert auroc(is_error, is_error * 10.0 + 1) == 1.0
    assert auroc(is_error, -is_error.astype(float)) == 0.0
    assert auroc(is_error, np.ones(8)) == 0.5
    assert np.isnan(auroc(np.zeros(8), np.arange(8.0)))


def test_auroc_agrees_with_scikit_learn_and_treats_nan_as_unsuspicious():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    s = rng.normal(size=500) + y
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s))
    with_nan = s.copy()
    with_nan[:50] = np.nan
    assert auroc(y, with_nan) == pytest.approx(
        roc_auc_score(y, np.where(np.isnan(with_nan), np.nanmin(s), with_nan))
    )


def test_precision_at_flag_rate():
    is_error = np.r_[np.ones(10), np.zeros(190)]
    perfect = np.r_[np.linspace(2, 3, 10), np.linspace(0, 1, 190)]
    assert precision_at_flag_rate(is_error, perfect, 0.05) == 1.0  # 10 flagged, all errors
    assert precision_at_flag_rate(is_error, -perfect, 0.05) == 0.0
    # a 0/1 flag raised on 20 rows, 10 of them errors: 10 of the 20 are taken, half are errors
    flag = np.r_[np.ones(10), np.ones(10), np.zeros(180)]
    assert precision_at_flag_rate(is_error, flag, 0.05) == pytest.approx(0.5)


def test_the_bootstrap_resamples_whole_participants():
    participants = np.repeat(["A", "B", "C", "D"], [5, 10, 20, 40])
    value = np.repeat([1.0, 2.0, 3.0, 4.0], [5, 10, 20, 40])
    sizes = {"A": 5, "B": 10, "C": 20, "D": 40}

    def statistic(rows):
        counts = {p: int((participants[rows] == p).sum()) for p in sizes}
        assert all(counts[p] % sizes[p] == 0 for p in sizes)  # a participant comes whole
        return [value[rows].mean(), value[rows].mean() - 1.0]

    estimate, low, high = participant_bootstrap(participants, statistic, n_boot=300)
    assert estimate[0] == pytest.approx(value.mean())
    assert 1.0 <= low[0] < estimate[0] < high[0] <= 4.0
    assert high[0] - low[0] > 0.5  # four participants: a wide interval, not a row-level one
    np.testing.assert_allclose(low[0] - low[1], 1.0)  # the two figures are paired


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)


def test_column_figures_are_each_columns_figure_ties_and_nan_included():
    rng = np.random.default_rng(4)
    y = rng.random(150) < 0.3
    scores = np.round(rng.gamma(2.0, 1.0, (150, 4)), 1)  # rounded: many ties
    scores[rng.random((150, 4)) < 0.1] = np.nan
    scores[:, 3] = np.nan  # a signal that says nothing
    scores[:, 2] = (scores[:, 2] > 2).astype(float)  # a 0/1 flag
    expected = [
        roc_auc_score(y, np.nan_to_num(scores[:, i], nan=np.nanmin(scores[:, i]))) for i in range(3)
    ]
    np.testing.assert_allclose(column_aurocs(y, scores)[:3], expected)
    assert column_aurocs(y, scores)[3] == 0.5
    for i in range(4):
        assert column_aurocs(y, scores)[i] == auroc(y, scores[:, i])
        assert column_precisions(y, scores, 0.1)[i] == precision_at_flag_rate(y, scores[:, i], 0.1)
