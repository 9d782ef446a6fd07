"""Participant-level intervals (the t-interval, the percentile bootstrap), paired differences, the
minimum number of participants and the power-law fit, on data with known answers."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from src.evaluation.metric_names import MetricName
from src.evaluation.metrics import interval_metrics, mae_metrics, participant_table
from src.evaluation.uncertainty import (
    NO_INTERVAL,
    PERCENTILE_BOOTSTRAP,
    T_INTERVAL,
    IntervalSettings,
    cluster_bootstrap_mae,
    difference_interval,
    fit_power_law,
    frames_to_label,
    interval_methods_note,
    interval_of,
    mae_interval,
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
    real = paired_bootstrap_difference((worse, points), (baseline, points), seed=0)
    null = paired_bootstrap_difference((same, points), (baseline, points), seed=0)
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
    """Best: 20 frames (21.25 px over 4 participants). 10 % margin = 2.1 px. 1 frame is about 10 px
    worse for every participant, 6 frames about 0.5 px: 6 is the answer (t-interval of the paired
    difference: 0.5 +- 3.18 x 0.08 px, 10 +- 3.18 x 0.41 px)."""
    totals = {
        0: totals_of({"p1": 60.0, "p2": 80.0, "p3": 70.0, "p4": 75.0}),
        1: totals_of({"p1": 20.0, "p2": 39.0, "p3": 31.0, "p4": 35.0}),
        6: totals_of({"p1": 10.5, "p2": 30.3, "p3": 20.7, "p4": 25.5}),
        20: totals_of({"p1": 10.0, "p2": 30.0, "p3": 20.0, "p4": 25.0}),
    }
    decision = frames_to_label(totals, margin_pct=10)
    assert decision.best == 20 and decision.condition == 6
    assert decision.margin_px == pytest.approx(2.125)
    six = decision.differences[6]
    assert six.estimate == pytest.approx(0.5) and six.method == T_INTERVAL
    assert six.high == pytest.approx(0.5 + 3.182 * 0.4 / 6**0.5 / 2, abs=1e-3)
    assert decision.differences[1].low > 2.125
    assert decision.sentence.startswith("Label 6 frames per video:")
    assert "by a t-interval over 4 participants (paired)" in decision.sentence
    # with a margin of 60 % (12.75 px), 1 frame is enough
    assert frames_to_label(totals, margin_pct=60).condition == 1


def test_frames_to_label_by_the_percentile_bootstrap_when_asked():
    """The method before stays selectable (evaluation.interval.method=percentile_bootstrap)."""
    totals = {
        1: totals_of({"p1": 20.0, "p2": 40.0, "p3": 30.0}),
        6: totals_of({"p1": 10.5, "p2": 30.5, "p3": 20.5}),
        20: totals_of({"p1": 10.0, "p2": 30.0, "p3": 20.0}),
    }
    decision = frames_to_label(
        totals, 10, IntervalSettings(method=PERCENTILE_BOOTSTRAP, min_participants=2)
    )
    assert decision.condition == 6 and decision.differences[1].low > 2.0
    assert "by a percentile bootstrap over 3 participants (paired)" in decision.sentence


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
    metrics = interval_metrics(predictions, [0.5], IntervalSettings(2000, 0, 0.95))
    mae = mae_metrics(predictions, [0.5], None)
    for cell in (MetricName("mae", "test"), MetricName("mae", "test", 0.5)):
        low, high = (cell.with_bound(b).name for b in ("low", "high"))
        assert metrics[low] < mae[cell.name] < metrics[high]
    assert not any(k.startswith("mae_generalisation") for k in metrics)  # 1 participant: none
    assert {MetricName.parse(k).set for k in metrics} == {"test"}
    # errors/participants.csv sums back to the MAE of every set and cutoff
    table = participant_table(predictions, [0.5])
    for (cutoff, set_name), rows in table.groupby(["pcutoff", "set"], dropna=False):
        name = MetricName("mae", set_name, None if np.isnan(cutoff) else cutoff).name
        assert rows["sum_error_px"].sum() / rows["n_points"].sum() == pytest.approx(mae[name])


def test_2000_resamples_of_a_cell_take_well_under_a_second():
    sums, counts = simulated_study(np.random.default_rng(0), n_participants=40)
    start = time.perf_counter()
    for seed in range(20):
        cluster_bootstrap_mae(sums, counts, n_resamples=2000, seed=seed)
    assert (time.perf_counter() - start) / 20 < 0.1


def cohort_like_studies(rng, studies: int, k: int, log_sd: float = 0.6, mean: float = 15.0):
    """Studies of k participants whose MAEs are log-normal (log-sd 0.6, like the embedded cohort's
    6-38 px), with 12 to several hundred points each; the target is the population mean (15 px)."""
    mu = mean * np.exp(log_sd * rng.standard_normal((studies, k)) - log_sd**2 / 2)
    n = np.maximum(np.round(150 * np.exp(0.5 * rng.standard_normal((studies, k)))), 12.0)
    observed = mu + 0.8 * mu / np.sqrt(n) * rng.standard_normal((studies, k))
    return observed * n, n


def test_the_chosen_method_keeps_its_coverage_where_the_percentile_bootstrap_does_not():
    """200 seeded studies of 6 participants with log-normal errors (benchmarks/coverage.py has the
    full grid): the t-interval covers the true mean in at least 93 % of them (96.5 % here), the
    percentile bootstrap in fewer (81.5 %): the bound tells the two apart, so this test can fail."""
    sums, counts = cohort_like_studies(np.random.default_rng(2024), 200, 6)
    coverage = {}
    for method in (T_INTERVAL, PERCENTILE_BOOTSTRAP):
        settings = IntervalSettings(resamples=1000, seed=1, method=method)
        low, high = interval_of([(1.0, sums, counts)], settings)
        coverage[method] = np.mean((low <= 15.0) & (high >= 15.0))
    assert coverage[T_INTERVAL] >= 0.93, coverage
    assert coverage[PERCENTILE_BOOTSTRAP] < 0.93, coverage


def test_t_interval_with_equal_points_is_the_textbook_t_interval():
    """Equal points: mean +- t(k-1) x SD / sqrt(k) of the participants' values; for an MAE on the
    log scale (mean x exp(+-t SE / mean)), for a paired difference in px."""
    from scipy import stats

    maes = np.array([6.06, 9.01, 12.69, 29.03, 38.47])
    interval = mae_interval(maes * 40, np.full(5, 40.0), IntervalSettings())
    half = stats.t.ppf(0.975, 4) * stats.sem(maes)
    factor = np.exp(half / maes.mean())
    assert interval.estimate == pytest.approx(maes.mean())
    assert (interval.low, interval.high) == pytest.approx(
        (maes.mean() / factor, maes.mean() * factor)
    )
    assert interval.method == T_INTERVAL and interval.note == ""
    better = maes * np.array([0.9, 0.95, 0.8, 0.85, 0.7])
    difference = difference_interval(
        (maes * 40, np.full(5, 40.0)), (better * 40, np.full(5, 40.0)), IntervalSettings()
    )
    low, high = stats.t.interval(
        0.95, 4, loc=(maes - better).mean(), scale=stats.sem(maes - better)
    )
    assert (difference.low, difference.high) == pytest.approx((low, high))


def test_t_interval_rests_on_participants_not_points():
    """The test above of resampling by participant, for the t-interval: 5 participants of 50
    identical points each; the width is that of 5 values (t with 4 df), whatever the points."""
    values = np.array([5.0, 10.0, 15.0, 20.0, 25.0])
    wide = mae_interval(values * 50, np.full(5, 50.0), IntervalSettings())
    many = mae_interval(values * 5000, np.full(5, 5000.0), IntervalSettings())
    half = 2.776 * values.std(ddof=1) / np.sqrt(5)  # t(4) x SE of 5 values: 9.8 px
    expected_width = 15.0 * (np.exp(half / 15.0) - np.exp(-half / 15.0))  # about 21 px
    point_width = 2 * 1.96 * values.std() / np.sqrt(250)  # about 1.8 px if points counted
    assert wide.high - wide.low == pytest.approx(expected_width, rel=1e-3)
    assert (many.low, many.high) == pytest.approx((wide.low, wide.high))
    assert wide.high - wide.low > 4 * point_width


def test_weighted_t_interval_gives_a_participant_with_many_points_more_say():
    """Unequal points: the estimate is point-weighted; the MAE's interval reaches further up than
    down (log scale: a hard participant not yet seen would raise the MAE)."""
    maes, points = np.array([10.0, 12.0, 30.0, 14.0]), np.array([400.0, 50.0, 50.0, 50.0])
    interval = mae_interval(maes * points, points, IntervalSettings())
    assert interval.estimate == pytest.approx((maes * points).sum() / points.sum())
    assert 0 < interval.low < interval.estimate < interval.high
    assert interval.high - interval.estimate > 2 * (interval.estimate - interval.low)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_below_the_minimum_there_is_no_interval_and_the_reason(k):
    maes = np.array([10.0, 20.0, 30.0])[:k]
    interval = mae_interval(maes * 10, np.full(k, 10.0), IntervalSettings(), "generalisation")
    assert interval.estimate == pytest.approx(maes.mean()) and not interval.has_interval
    plural = "" if k == 1 else "s"
    assert interval.note == (
        f"{k} generalisation participant{plural}: too few for an interval; use split=kfold"
    )
    pooled = mae_interval(maes * 10, np.full(k, 10.0), IntervalSettings(), "test", pooled=True)
    assert pooled.note.endswith("too few for an interval; more participants are needed")
    difference = difference_interval(
        (maes * 10, np.full(k, 10.0)), (maes * 9, np.full(k, 10.0)), IntervalSettings()
    )
    assert difference.estimate == pytest.approx(maes.mean() / 10) and not difference.has_interval
    assert difference.note.startswith(f"{k} participant{plural}: too few")
    # the minimum is a setting: 2 participants are enough when asked
    if k >= 2:
        assert mae_interval(
            maes * 10, np.full(k, 10.0), IntervalSettings(min_participants=2)
        ).has_interval


def test_frames_to_label_below_the_minimum_is_an_indication_with_its_reason():
    """The demo's case: 2 generalisation participants decide on the point estimate only, and say so."""
    totals = {1: totals_of({"p1": 21.0, "p2": 30.5}), 20: totals_of({"p1": 20.0, "p2": 30.0})}
    decision = frames_to_label(totals, margin_pct=10)
    assert decision.condition == 1 and not decision.differences[1].has_interval
    assert "point estimate only (2 participants: too few for an interval; use split=kfold)" in (
        decision.sentence
    )
    assert "indication, not a decision" in decision.sentence and "[" not in decision.sentence


def test_interval_metrics_follow_the_method_and_the_minimum():
    """6 test participants: the t-interval's bounds (the default); 3: none logged; the percentile
    bootstrap when asked."""
    predictions = predictions_of(6, np.random.default_rng(0))
    metrics = interval_metrics(predictions, [0.5], IntervalSettings(2000, 0, 0.95))
    totals = participant_totals(predictions[predictions["set"] == "test"])
    expected = mae_interval(totals["sum_error_px"], totals["n_points"], IntervalSettings())
    assert (metrics["mae_test_px_ci_low"], metrics["mae_test_px_ci_high"]) == pytest.approx(
        (expected.low, expected.high)
    )
    old = interval_metrics(
        predictions, [0.5], IntervalSettings(2000, 0, 0.95, method=PERCENTILE_BOOTSTRAP)
    )
    percentile = cluster_bootstrap_mae(totals["sum_error_px"], totals["n_points"], 2000, 0)
    assert old["mae_test_px_ci_low"] == pytest.approx(percentile.low)
    few = interval_metrics(
        predictions_of(3, np.random.default_rng(0)), [0.5], IntervalSettings(2000, 0, 0.95)
    )
    assert few == {}


def test_report_names_the_interval_method_and_flags_mixed_methods():
    settings = IntervalSettings()
    runs = pd.DataFrame(
        {
            "labelled_frames": [0, 6, 20],
            "mae_test_px_ci_low": [1.0, 2.0, 3.0],
            "interval_method": ["", T_INTERVAL, T_INTERVAL],
        }
    )
    mixed = interval_methods_note(runs, settings)
    assert "**Rows made by different interval methods**" in mixed
    assert "percentile_bootstrap (not recorded): 0; t_interval: 6, 20 labelled frames" in mixed
    alike = interval_methods_note(runs.assign(interval_method=T_INTERVAL), settings)
    assert "different" not in alike and "made by a t-interval" in alike
    assert "Fewer than 4 participants" in alike
    old = interval_methods_note(runs.assign(interval_method=""), settings)
    assert "too narrow with few participants" in old and "evaluate them again" in old


def test_report_cells_below_the_minimum_say_why_and_old_runs_keep_their_note():
    """A run that recorded its method logged no bounds for 2 generalisation participants: the cell
    says why in words; an older run (no tag) keeps the old note."""
    from src.evaluation.report import ReportData, paper_table

    metrics = {
        f"mae_{s}{c}_px": 10.0 for s in ("test", "generalisation") for c in ("", "_pcutoff0.8")
    }
    counts = {"n_test_participants": 6.0, "n_generalisation_participants": 2.0}
    bounds = {"mae_test_px_ci_low": 8.0, "mae_test_px_ci_high": 13.0}
    runs = pd.DataFrame(
        [
            {"labelled_frames": 1, **metrics, **counts, **bounds, "interval_method": T_INTERVAL},
            {"labelled_frames": 6, **metrics, **counts, **bounds, "interval_method": ""},
        ]
    )
    data = ReportData(runs, paper_table(runs, 0.8))
    notes = data.interval_notes
    assert notes.loc[1, "generalisation"] == (
        "2 generalisation participants: too few for an interval; use split=kfold"
    )
    assert notes.loc[1, "generalisation, p-cutoff 0.8"].startswith("2 generalisation participants")
    assert notes.loc[6, "generalisation"] == NO_INTERVAL and notes.loc[1, "test"] == ""


@pytest.mark.parametrize(
    "key, value", [("method", "bca"), ("min_participants", 1), ("min_participants", 2.5)]
)
def test_a_bad_interval_setting_is_refused_naming_the_key(key, value):
    from omegaconf import OmegaConf

    from src.checks import check_config
    from src.errors import ConfigError

    interval = {"method": T_INTERVAL, "min_participants": 4} | {key: value}
    cfg = OmegaConf.create({"evaluation": {"interval": interval}})
    with pytest.raises(ConfigError, match=f"evaluation.interval.{key}"):
        check_config(cfg, "evaluation")
    check_config(
        OmegaConf.create({"evaluation": {"interval": {"min_participants": 2}}}), "evaluation"
    )


def test_the_coverage_benchmark_writes_every_cell_and_its_first_line(tmp_path):
    """`python -m benchmarks.coverage` on a small grid (60 studies, 60 resamples: about 2 s) writes
    the first line from its own table, and a row per statistic, distribution, count and candidate;
    the committed result's first line is the same function of the committed table and meets 93 %."""
    from benchmarks import coverage

    out = tmp_path / "coverage.md"
    coverage.main(["--studies", "60", "--resamples", "60", "--seed", "0", "--output", str(out)])
    table = pd.read_csv(out.with_suffix(".csv"))
    paired = [name for name, (_, _, both) in coverage.CANDIDATES.items() if both]
    cells = len(coverage.DISTRIBUTIONS) * len(coverage.COUNTS)
    assert len(table) == cells * (len(coverage.CANDIDATES) + len(paired))
    assert set(table["participants"]) == set(coverage.COUNTS)
    first = out.read_text(encoding="utf-8").splitlines()[0]
    assert first == f"chosen_min_coverage_from_4: {coverage.chosen_min_coverage(table):.3f}"
    committed = coverage.OUTPUT.read_text(encoding="utf-8").splitlines()[0]
    value = coverage.chosen_min_coverage(pd.read_csv(coverage.OUTPUT.with_suffix(".csv")))
    assert committed == f"chosen_min_coverage_from_4: {value:.3f}" and value >= coverage.TARGET
