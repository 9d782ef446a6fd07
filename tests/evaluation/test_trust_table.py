"""The report's trust table (src/evaluation/trust_table.py) on hand-built prediction tables with
known answers: how well 1 - likelihood flags the generalisation points whose error exceeds 2 x the
run's test MAE."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src.evaluation.render import _trust_section
from src.evaluation.study_errors import Bootstrap
from src.evaluation.tables import SMALL, ReportData
from src.evaluation.trust_table import trust_metrics, trust_validation
from src.tracking.runs import logged_predictions
from tests.conftest import empty_mlflow_store

BOOTSTRAP = Bootstrap(resamples=200, seed=0, confidence=0.95)


def predictions(
    errors: np.ndarray, likelihoods: np.ndarray, participants: list[str]
) -> pd.DataFrame:
    """predictions/generalisation.csv as a run logs it: one row per frame and bodypart; the
    points are shared out between ``participants`` in turn, one frame of 4 bodyparts per video."""
    n = len(errors)
    who = [participants[i % len(participants)] for i in range(n)]
    return pd.DataFrame(
        {
            "set": "generalisation",
            "participant": who,
            "video": [f"{p}_video" for p in who],
            "frame": np.arange(n) // (4 * len(participants)),
            "bodypart": [f"bp{i % 4}" for i in range(n)],
            "x_label": 0.0,
            "y_label": 0.0,
            "x_pred": errors,
            "y_pred": 0.0,
            "likelihood": likelihoods,
            "error_px": errors,
        }
    )


def runs(*rows: tuple[str, int, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["run_id", "labelled_frames", "mae_test_px"])


PARTICIPANTS = [f"participant-{i}" for i in range(6)]


def test_auroc_is_one_when_the_lowest_likelihoods_are_exactly_the_big_errors():
    # test MAE 1 px: threshold 2 px; 30 of 120 points at 5 px, each with a lower likelihood
    errors = np.where(np.arange(120) % 4 == 0, 5.0, 0.5)
    likelihood = np.where(errors > 2, np.linspace(0.1, 0.3, 120), np.linspace(0.6, 0.99, 120))
    table = trust_validation(
        runs(("a", 6, 1.0)), {"a": predictions(errors, likelihood, PARTICIPANTS)}, BOOTSTRAP, 3
    )
    row = table.loc[6]
    assert row["auroc_likelihood"] == 1.0
    assert row["precision_at_5pct"] == 1.0
    assert row["share_in_error"] == 0.25
    assert row["threshold_px_min"] == row["threshold_px_max"] == 2.0
    assert (row["participants"], row["points"], row["folds"]) == (6, 120, 1)
    # every resample is perfect too: the interval is the point
    assert row["auroc_likelihood_ci_low"] == row["auroc_likelihood_ci_high"] == 1.0
    # the errors are all in 3 of the 6 participants: resamples vary the share around 0.25
    assert row["share_in_error_ci_low"] < 0.25 < row["share_in_error_ci_high"]
    assert not row["small"]


def test_a_random_likelihood_is_at_chance():
    rng = np.random.default_rng(1)
    errors = rng.exponential(2.0, 6000)
    table = trust_validation(
        runs(("a", 2, 1.5)),
        {"a": predictions(errors, rng.uniform(size=6000), PARTICIPANTS)},
        BOOTSTRAP,
        3,
    )
    row = table.loc[2]
    assert row["auroc_likelihood"] == pytest.approx(0.5, abs=0.03)
    assert row["auroc_likelihood_ci_low"] < 0.5 < row["auroc_likelihood_ci_high"]
    assert row["share_in_error"] == pytest.approx(np.mean(errors > 3.0))  # threshold 2 x 1.5 px
    # at chance the worst 5 % hold about the share in error
    assert row["precision_at_5pct"] == pytest.approx(row["share_in_error"], abs=0.06)


def test_the_share_is_exact_over_labelled_generalisation_points_only():
    errors = np.array([3.0, 2.0, 2.01, 0.1, np.nan, 7.0, 0.0, 1.0])  # threshold 2: > counts
    table = predictions(errors, np.linspace(0.2, 0.9, 8), PARTICIPANTS[:4])
    other_set = table.assign(set="test", error_px=100.0)  # not the generalisation set
    result = trust_validation(
        runs(("a", 1, 1.0)), {"a": pd.concat([table, other_set])}, BOOTSTRAP, 3
    )
    assert result.loc[1, "points"] == 7  # the unlabelled point counts in neither
    assert result.loc[1, "share_in_error"] == 3 / 7  # 3.0, 2.01, 7.0; not 2.0 itself


def test_no_interval_below_min_participants():
    errors = np.tile([5.0, 0.5, 0.5, 0.5], 10)
    likelihood = np.where(errors > 2, 0.2, 0.9)
    table = trust_validation(
        runs(("a", 1, 1.0)), {"a": predictions(errors, likelihood, PARTICIPANTS[:2])}, BOOTSTRAP, 3
    )
    row = table.loc[1]
    assert row["small"] and row["participants"] == 2
    assert row["auroc_likelihood"] == 1.0 and row["share_in_error"] == 0.25
    for name in ("share_in_error", "auroc_likelihood", "precision_at_5pct"):
        assert np.isnan(row[f"{name}_ci_low"]) and np.isnan(row[f"{name}_ci_high"])
    assert "trust_auroc_likelihood_frames_1_ci_low" not in trust_metrics(table)
    section = "\n".join(_trust_section(ReportData(pd.DataFrame(), pd.DataFrame(), trust=table)))
    assert f"1.00{SMALL}" in section and "[" not in section.split("|---")[-1]


def test_folds_are_pooled_each_judged_by_its_own_test_mae():
    # the same errors in two folds' runs: 6 px is in error under fold 1's threshold (2 px), not
    # under fold 2's (10 px); their participants differ, their video and frame names do not
    errors = np.tile([6.0, 1.0, 1.0, 1.0], 6)
    likelihood = np.where(errors > 2, 0.3, 0.8)
    fold_1 = predictions(errors, likelihood, ["p1", "p2", "p3"])
    fold_2 = predictions(errors, likelihood, ["p4", "p5", "p6"]).assign(video=fold_1["video"])
    table = trust_validation(
        runs(("f1", 4, 1.0), ("f2", 4, 5.0), ("g1", 8, 1.0)),
        {"f1": fold_1, "f2": fold_2},  # g1 logged no predictions: left out
        BOOTSTRAP,
        3,
    )
    assert table.index.tolist() == [4]
    row = table.loc[4]
    assert (row["folds"], row["participants"], row["points"]) == (2, 6, 48)
    assert row["frames"] == 2 * fold_1.groupby(["video", "frame"]).ngroups
    assert (row["threshold_px_min"], row["threshold_px_max"]) == (2.0, 10.0)
    assert row["share_in_error"] == 6 / 48
    # the 6 px points of fold 2 are correct with a low likelihood: ties with fold 1's errors
    assert row["auroc_likelihood"] == pytest.approx((6 * 36 + 0.5 * 6 * 6) / (6 * 42))
    metrics = trust_metrics(table)
    assert metrics["trust_share_in_error_frames_4"] == 6 / 48
    assert metrics["trust_participants_frames_4"] == 6.0
    assert {"trust_auroc_likelihood_frames_4_ci_low", "trust_points_frames_4"} <= set(metrics)


def test_the_section_says_what_it_rests_on_or_that_nothing_was_logged():
    empty = trust_validation(runs(("a", 1, 1.0)), {}, BOOTSTRAP, 3)
    assert empty.empty
    text = "\n".join(_trust_section(ReportData(pd.DataFrame(), pd.DataFrame(), trust=empty)))
    assert "No run logged its generalisation predictions" in text
    assert _trust_section(ReportData(pd.DataFrame(), pd.DataFrame())) == []


def test_logged_predictions_reads_each_runs_generalisation_csv(tmp_path):
    empty_mlflow_store(tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("trust", artifact_location=str(tmp_path / "artifacts"))
    logged, bare = (client.create_run(experiment).info.run_id for _ in range(2))
    table = predictions(np.array([3.0, 0.5]), np.array([0.2, 0.9]), ["participant-1"])
    folder = tmp_path / "predictions"
    folder.mkdir()
    table.to_csv(folder / "generalisation.csv", index=False)
    client.log_artifacts(logged, str(folder), "predictions")
    found = logged_predictions(
        client, pd.DataFrame({"run_id": [logged, bare, ""], "run_name": ["a", "b", ""]})
    )
    assert list(found) == [logged]  # no file, no run: left out
    pd.testing.assert_frame_equal(found[logged], table, check_dtype=False)
