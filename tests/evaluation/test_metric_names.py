"""The metric names: every name the evaluation logs parses back to what built it; others do not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.evaluation.metric_names import SETS, MetricName, table_cells, table_columns
from src.evaluation.metrics import interval_metrics, mae_metrics
from src.evaluation.pck import pck_metrics
from src.evaluation.uncertainty import IntervalSettings


def predictions(rng) -> pd.DataFrame:
    """Every set, 4 participants each, errors and likelihoods that keep some points and not others."""
    rows = []
    for set_name in SETS:
        for p in range(4):
            for frame in range(3):
                for bodypart in ("knee", "wrist"):
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
                            "error_px": rng.gamma(2, 5),
                            "normalised_error": rng.uniform(0, 0.6),
                        }
                    )
    return pd.DataFrame(rows)


def logged_names() -> dict[str, float]:
    """What the evaluation of one condition logs (src/evaluation/condition.py), with cm and PCK."""
    rows = predictions(np.random.default_rng(0))
    cutoffs = [0.6, 0.8, 1e-05]
    metrics = mae_metrics(rows, cutoffs, cm_per_px=1.5)
    metrics |= interval_metrics(rows, cutoffs, IntervalSettings(200, 0, 0.95, min_participants=2))
    return metrics | pck_metrics(rows, [0.1, 0.25])


def test_every_logged_name_round_trips():
    names = logged_names()
    families = {
        (m.statistic, m.unit, m.bound, m.pcutoff is not None) for m in map(MetricName.parse, names)
    }
    # every family the evaluation logs is among them, so the loop below checks each one
    assert families >= {
        ("mae", "px", None, False),
        ("mae", "cm", None, True),
        ("mae", "px", "low", True),
        ("mae", "px", "high", False),
        ("mae", "pct_ref", None, False),
        ("kept", None, None, True),
        ("n_participants", None, None, False),
        ("n_frames", None, None, False),
        ("n_points", None, None, False),
        ("n_points_ref", None, None, False),
        ("pck", None, None, False),
    }
    for name in names:
        metric = MetricName.parse(name)
        assert metric is not None, name
        assert metric.name == name
        assert MetricName.parse(metric.name) == metric


@pytest.mark.parametrize(
    "name, metric",
    [
        ("mae_test_px", MetricName("mae", "test")),
        ("mae_train_cm", MetricName("mae", "train", unit="cm")),
        ("mae_generalisation_pcutoff0.8_px", MetricName("mae", "generalisation", 0.8)),
        ("mae_test_pcutoff0.8_px_ci_low", MetricName("mae", "test", 0.8, bound="low")),
        ("mae_test_px_ci_high", MetricName("mae", "test", bound="high")),
        ("mae_test_px_ci_note", MetricName("mae", "test", bound="note")),
        ("mae_train_pct_ref", MetricName("mae", "train", unit="pct_ref")),
        ("kept_test_pcutoff0.6", MetricName("kept", "test", 0.6)),
        ("n_generalisation_participants", MetricName("n_participants", "generalisation")),
        ("n_test_points_ref", MetricName("n_points_ref", "test")),
        ("pck0.2_generalisation", MetricName("pck", "generalisation", fraction=0.2)),
    ],
)
def test_a_name_is_its_description(name, metric):
    assert MetricName.parse(name) == metric
    assert metric.name == name == str(metric)


def test_an_interval_bound_is_not_its_mae():
    """The bug class this schema ends: a bound's name contains its MAE's name."""
    names = ["mae_test_px", "mae_test_px_ci_low", "mae_test_px_ci_high"]
    mae = MetricName("mae", "test")
    assert [MetricName.parse(n) == mae for n in names] == [True, False, False]
    assert [MetricName.parse(n).is_mae for n in names] == [True, False, False]


@pytest.mark.parametrize(
    "name",
    [
        "loss_train",
        "loss_test",
        "dlc_training_rmse_matched_test_px",
        "mae_px",  # errors/participants.csv columns
        "n_points",
        "n_frames",  # analysis runs
        "n_videos",
        "kept_pcutoff",
        "angle_kept_knee_pcutoff0.8",
        "angle_error_knee_deg",
        "pck_reference",  # a tag
        "mae_validation_px",  # no such set
        "mae_test_mm",
        "mae_test_pcutoff0.80_px",  # not as the name is written
        "mae_test_pcutoff1.2.3_px",
        "mae_test_pct_ref_ci_low",
        "kept_test",
        "n_test_videos",
        "pck_test",
        "mae_test_px_ci_mid",
        "Mae_test_px",
        "",
    ],
)
def test_other_names_are_none(name):
    assert MetricName.parse(name) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"statistic": "rmse", "set": "test"},
        {"statistic": "mae", "set": "validation"},
        {"statistic": "kept", "set": "test"},  # a share kept needs its cutoff
        {"statistic": "mae", "set": "test", "unit": "pct_ref", "bound": "low"},
        {"statistic": "mae", "set": "test", "unit": "pct_ref", "pcutoff": 0.8},
        {"statistic": "n_points", "set": "test", "pcutoff": 0.8},
        {"statistic": "pck", "set": "test"},
        {"statistic": "mae", "set": "test", "fraction": 0.2},
    ],
)
def test_a_metric_that_is_none_is_refused(fields):
    with pytest.raises(ValueError):
        MetricName(**fields)


def test_the_paper_table_columns():
    assert table_columns(0.8) == {
        "train": "mae_train_px",
        "test": "mae_test_px",
        "test, p-cutoff 0.8": "mae_test_pcutoff0.8_px",
        "generalisation": "mae_generalisation_px",
        "generalisation, p-cutoff 0.8": "mae_generalisation_pcutoff0.8_px",
    }
    assert list(table_columns(0.5, "cm").values())[2] == "mae_test_pcutoff0.5_cm"
    assert [(c.set, c.pcutoff) for c in table_cells(0.8).values()] == [
        ("train", None),
        ("test", None),
        ("test", 0.8),
        ("generalisation", None),
        ("generalisation", 0.8),
    ]
