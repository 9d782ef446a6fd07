"""Participant-level bootstrap intervals, the paired bootstrap and the power-law fit on data with known answers."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from src.evaluation.metrics import interval_metrics, mae_metrics, participant_table
from src.evaluation.uncertainty import (
    NO_INTERVAL,
    cluster_bootstrap_mae,
    fit_power_law,
    frames_to_label,
    paired_bootstrap_difference,
    participant_totals,
    power_law_sentence,
)


def simulated_study(rng, n_participants=20, points=12, mean=20.0, between=5.0, within=2.0):
    """Per participant: summed error and points; participant effects vary more than points within."""
    effects = rng.normal(mean, between, n_participants)
    errors = effects[:, None] + rng.normal(0, within, (n_participants, points))
    return errors.sum(axis=1), np.full(n_participants, float(points))


def test_interval_covers_the_true_mean_at_about_the_nominal_rate():
    """200 simulated studies of 20 participants: the 95 % interval covers the true mean (20 px) in
    about 95 % of them. Tolerance: 89-99 % (binomial SD of 200 studies is 1.5 %; a percentile
    bootstrap over 20 clusters under-covers a little). Resampling points instead of participants
    gives intervals about a fifth as wide here, covering far less often."""
    rng = np.random.default_rng(12345)
    covered = []
    for study in range(200):
        sums, counts = simulated_study(rng)
        interval = cluster_bootstrap_mae(sums, counts, n_resamples=2000, seed=study)
        covered.append(interval.low <= 20.0 <= interval.high)
    coverage = np.mean(covered)
    assert 0.89 <= coverage <= 0.99, coverage


def test_resampling_is_by_participant_not_by_point():
    """5 participants, 50 identical points each: all the variation is between participants. The
    interval must be as wide as the mean of 5 participants varies (SD = population SD / sqrt 5),
    not as narrow as resampling 250 points would make it."""
    values = np.array([5.0, 10.0, 15.0, 20.0, 25.0])
    rows = pd.DataFrame(
        {
            "participant": np.repeat([f"p{i}" for i in range(5)], 50),
            "error_px": np.repeat(values, 50),
        }
    )
    totals = participant_totals(rows)
    assert totals["n_points"].tolist() == [50.0] * 5
    interval = cluster_bootstrap_mae(totals["sum_error_px"], totals["n_points"], 2000, seed=1)
    expected_width = 2 * 1.96 * values.std() / np.sqrt(5)  # about 12.4 px
    point_width = 2 * 1.96 * values.std() / np.sqrt(250)  # about 1.8 px if points were resampled
    assert interval.estimate == pytest.approx(15.0)
    assert 0.8 * expected_width <= interval.high - interval.low <= 1.2 * expected_width
    assert interval.high - interval.low > 4 * point_width


def test_one_participant_has_no_interval_and_says_so():
    interval = cluster_bootstrap_mae([30.0], [10.0])
    assert interval.estimate == 3.0 and not interval.has_interval
    assert np.isnan(interval.low) and np.isnan(interval.high) and interval.note == NO_INTERVAL


def test_seeded_determinism():
    sums, counts = simulated_study(np.random.default_rng(0))
    first = cluster_bootstrap_mae(sums, counts, seed=7)
    assert cluster_bootstrap_mae(sums, counts, seed=7) == first
    assert cluster_bootstrap_mae(sums, counts, seed=8) != first


def test_pooled_mae_is_point_weighted():
    """A resample's MAE is its participants' summed errors over their points, as the MAE itself."""
    interval = cluster_bootstrap_mae([10.0, 300.0], [10.0, 100.0])
    assert interval.estimate == pytest.approx(310 / 110)
    # the bounds are the all-of-one-participant resamples: 1 px and 3 px (each drawn twice: 1/4)
    assert interval.low == pytest.approx(1.0) and interval.high == pytest.approx(3.0)


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    """Participants differ by tens of pixels; condition b is 2 px worse for each (plus noise). Paired,
    the difference is clear; the unpaired intervals overlap. A null difference is not detected."""
    rng = np.random.default_rng(3)
    points = np.full(12, 20.0)
    baseline = rng.normal(25, 10, 12) * points  # summed errors per participant
    worse = baseline + (2 + rng.normal(0, 0.3, 12)) * points
    same = baseline + rng.normal(0, 0.3, 12) * points
    real = paired_bootstrap_difference(worse, points, baseline, points, seed=0)
    null = paired_bootstrap_difference(same, points, baseline, points, seed=0)
    assert real.low > 0 and real.estimate == pytest.approx(2, abs=0.3)
    assert null.low < 0 < null.high
    a = cluster_bootstrap_mae(worse, points, seed=0)
    b = cluster_bootstrap_mae(baseline, points, seed=0)
    assert a.low < b.high  # unpaired: the intervals overlap, the difference would be missed


def totals_of(maes: dict[str, float], points: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {"sum_error_px": [m * points for m in maes.values()], "n_points": float(points)},
        index=pd.Index(list(maes), name="participant"),
    )


def test_frames_to_label_picks_the_smallest_condition_within_the_margin():
    """Best: 20 frames (10 and 30 px per participant, 20 px). 10 % margin = 2 px. 1 frame is 10 px
    worse, 6 frames 0.5 px worse for both participants: 6 is the answer."""
    totals = {
        0: totals_of({"p1": 60.0, "p2": 80.0, "p3": 70.0}),
        1: totals_of({"p1": 20.0, "p2": 40.0, "p3": 30.0}),
        6: totals_of({"p1": 10.5, "p2": 30.5, "p3": 20.5}),
        20: totals_of({"p1": 10.0, "p2": 30.0, "p3": 20.0}),
    }
    decision = frames_to_label(totals, margin_pct=10, n_resamples=2000, seed=0)
    assert decision.best == 20 and decision.condition == 6
    assert decision.margin_px == pytest.approx(2.0)
    assert decision.differences[6].estimate == pytest.approx(0.5)
    assert decision.differences[1].low > 2.0
    assert decision.sentence.startswith("Label 6 frames per video:")
    assert "paired bootstrap over 3 participants" in decision.sentence
    # with a margin of 60 % (12 px), 1 frame is enough
    assert frames_to_label(totals, margin_pct=60).condition == 1


def test_frames_to_label_with_one_participant_says_it_is_an_indication():
    totals = {1: totals_of({"p1": 21.0}), 6: totals_of({"p1": 20.0})}
    decision = frames_to_label(totals, margin_pct=10)
    assert decision.condition == 1 and "indication, not a decision" in decision.sentence


def test_power_law_fit_recovers_known_parameters():
    frames = np.array([1, 2, 6, 10, 15, 20])
    fit = fit_power_law(frames, 30 * frames**-0.7 + 5)
    assert fit.trustworthy, fit.reasons
    assert (fit.a, fit.b, fit.c) == pytest.approx((30, 0.7, 5), rel=1e-3)
    assert "Do not trust" not in power_law_sentence(fit, 20)
    assert fit.predict(40) == pytest.approx(30 * 40**-0.7 + 5, rel=1e-3)


@pytest.mark.parametrize(
    "frames, mae, reason",
    [
        ([0, 1, 2, 6], [50, 20, 18, 17], "3 condition(s) with frames > 0"),
        ([1, 2, 6, 10, 15, 20], [18.7, 18.4, 17.7, 17.4, 18.4, 17.9], "not monotone"),
        ([1, 2, 6, 10], [20.0, 19.9, 19.85, 19.8], "not determined"),
    ],
)
def test_power_law_fit_says_when_it_is_not_trustworthy(frames, mae, reason):
    fit = fit_power_law(frames, mae)
    assert not fit.trustworthy
    assert any(reason in r for r in fit.reasons), fit.reasons
    sentence = power_law_sentence(fit, max(frames))
    assert "Do not trust" in sentence or sentence.startswith("No power law")


def predictions_of(n_participants: int, rng) -> pd.DataFrame:
    """A prediction table: 2 sets, 3 frames x 4 bodyparts per participant, likelihoods 0-1."""
    rows = []
    for set_name, count in (("test", n_participants), ("generalisation", 1)):
        for p in range(count):
            for frame in range(3):
                for bodypart in ("knee", "wrist", "hip", "ankle"):
                    rows.append(
                        {
                            "participant": f"{set_name}{p}",
                            "video": f"{set_name}{p}_v",
                            "frame": frame,
                            "set": set_name,
                            "bodypart": bodypart,
                            "x_label": 1.0,
                            "y_label": 1.0,
                            "likelihood": rng.uniform(),
                            "error_px": rng.gamma(2, 5 + 3 * p),
                        }
                    )
    return pd.DataFrame(rows)


def test_interval_metrics_of_a_prediction_table():
    predictions = predictions_of(6, np.random.default_rng(0))
    metrics = interval_metrics(predictions, [0.5], 2000, 0, 0.95)
    mae = mae_metrics(predictions, [0.5], None)
    for name in ("mae_test_px", "mae_test_pcutoff0.5_px"):
        assert metrics[f"{name}_ci_low"] < mae[name] < metrics[f"{name}_ci_high"]
    assert not any(k.startswith("mae_generalisation") for k in metrics)  # 1 participant: none
    # errors/participants.csv sums back to the MAE of every set and cutoff
    table = participant_table(predictions, [0.5])
    for (cutoff, set_name), rows in table.groupby(["pcutoff", "set"], dropna=False):
        name = f"mae_{set_name}_px" if np.isnan(cutoff) else f"mae_{set_name}_pcutoff0.5_px"
        assert rows["sum_error_px"].sum() / rows["n_points"].sum() == pytest.approx(mae[name])


def test_2000_resamples_of_a_cell_take_well_under_a_second():
    sums, counts = simulated_study(np.random.default_rng(0), n_participants=40)
    start = time.perf_counter()
    for seed in range(20):
        cluster_bootstrap_mae(sums, counts, n_resamples=2000, seed=seed)
    assert (time.perf_counter() - start) / 20 < 0.1
