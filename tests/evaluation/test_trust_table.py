"""The report's trust tables (src/evaluation/trust_table.py) on hand-built prediction tables with
known answers: how well 1 - likelihood and the other signals flag the generalisation points whose
error exceeds 2 x the run's test MAE, and points and frames against the other thresholds."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src.evaluation.pck import OFF_NOTE, Reference
from src.evaluation.render import _trust_section
from src.evaluation.study_errors import Bootstrap
from src.evaluation.tables import SMALL, ReportData
from src.evaluation.trust_table import (
    ABSENT_BECAUSE,
    GAIN,
    NO_REFERENCE,
    OTHER_POSES,
    TRAIN_POSES,
    Thresholds,
    auroc_column,
    pooled_points,
    precision_column,
    signal_points,
    thresholds_of,
    trust_metrics,
    trust_tables,
    trust_validation,
)
from src.tracking.runs import logged_predictions
from src.trust.score import TrustModel, cross_fit
from src.trust.validation import auroc
from tests.conftest import empty_mlflow_store
from tests.trust.test_trust_signals import BASE as SIGNALS_BASE
from tests.trust.test_trust_signals import BODYPARTS as BODY
from tests.trust.test_trust_signals import SKELETON

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
    # a run whose table holds no labelled generalisation point adds no row
    test_only = predictions(np.array([3.0, 0.5]), np.array([0.2, 0.9]), ["p1"]).assign(set="test")
    assert trust_validation(runs(("a", 1, 1.0)), {"a": test_only}, BOOTSTRAP, 3).empty


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


# Every signal on labelled frames: the 8-point body of the signal tests, 4 x larger (px), with
# two movement modes (arm, leg)
BASE = 4.0 * SIGNALS_BASE
ARM = np.zeros_like(BASE)
ARM[3:5] = [[0, 16], [0, 36]]
LEG = np.zeros_like(BASE)
LEG[6:8] = [[16, 0], [32, -4]]
# one fault per participant, across the body and away from its movement modes (px)
FAULTS = [("knee", [0.0, -60.0]), ("wrist", [-50.0, 0.0]), ("ankle", [0.0, -60.0])]


def body_poses(rng: np.random.Generator, n: int, arm_scale: float = 1.0) -> np.ndarray:
    """Plausible labelled poses (n, 8, 2) px anywhere in the image."""
    modes = rng.normal(size=(n, 2, 1, 1))
    base = BASE.copy()
    base[3:5] += [[6.0 * (arm_scale - 1), 0.0], [24.0 * (arm_scale - 1), 0.0]]
    poses = base + modes[:, 0] * ARM + modes[:, 1] * LEG + rng.normal(0, 0.5, (n, *BASE.shape))
    return poses + rng.uniform(100, 400, (n, 1, 2))


def posed(
    labels: dict[str, np.ndarray],
    rng: np.random.Generator,
    faults: dict[tuple[str, int, str], list[float]] | None = None,
    set_name: str = "generalisation",
) -> pd.DataFrame:
    """A run's logged predictions of the labelled ``labels`` (participant -> poses): within
    1 px of each label, but ``faults`` ((participant, frame, bodypart) -> displacement, px)."""
    rows = []
    for participant, poses in labels.items():
        predicted = poses + rng.normal(0, 0.4, poses.shape)
        for frame, pose in enumerate(poses):
            for b, name in enumerate(BODY):
                shift = np.asarray((faults or {}).get((participant, frame, name), [0.0, 0.0]))
                x, y = predicted[frame, b] + shift
                rows.append(
                    {
                        "set": set_name,
                        "participant": participant,
                        "video": f"video-{participant}",
                        "frame": frame,
                        "bodypart": name,
                        "x_label": pose[b, 0],
                        "y_label": pose[b, 1],
                        "x_pred": x,
                        "y_pred": y,
                        "likelihood": rng.uniform(0.5, 1.0),  # tells nothing
                    }
                )
    table = pd.DataFrame(rows)
    table["error_px"] = np.hypot(
        table["x_pred"] - table["x_label"], table["y_pred"] - table["y_label"]
    )
    return table


def planted(participants: list[str]) -> dict[tuple[str, int, str], list[float]]:
    """One fault per participant, each on another frame and bodypart."""
    return {(p, 2 + i % 5, FAULTS[i % 3][0]): FAULTS[i % 3][1] for i, p in enumerate(participants)}


def fold_runs(rng, participants, fold=None, prefix=""):
    """The judged condition 6 (with the planted faults and a train set) and condition 1 (no
    fault, no train set) of one fold: runs, generalisation and train predictions."""
    labels = {p: body_poses(rng, 8) for p in participants}
    runs_ = runs((f"{prefix}a", 6, 1.0), (f"{prefix}b", 1, 1.0))
    if fold is not None:
        runs_["fold"] = fold
    generalisation = {
        f"{prefix}a": posed(labels, rng, planted(participants)),
        f"{prefix}b": posed(labels, rng),
    }
    train = {f"{prefix}a": posed({"dev": body_poses(rng, 40)}, rng, set_name="train")}
    return runs_, generalisation, train


def test_planted_faults_rank_first_for_pose_pca_and_model_disagreement():
    rng = np.random.default_rng(3)
    runs_, generalisation, train = fold_runs(rng, PARTICIPANTS)
    faults = planted(PARTICIPANTS)
    points = signal_points(
        generalisation["a"], 1.0, train=train["a"], skeleton=SKELETON, others=[generalisation["b"]]
    )
    assert points["in_error"].sum() == len(faults)  # the faults, nothing else over 2 px
    for signal in ("pca_reconstruction_error_px", "model_disagreement_px"):
        top = points.nlargest(len(faults), signal)
        assert top["in_error"].all(), signal  # every fault above every correct point
    assert points.attrs["pca_poses"] == TRAIN_POSES

    table = trust_validation(runs_, generalisation, BOOTSTRAP, 3, train, SKELETON)
    row = table.loc[6]
    for signal in ("pca_reconstruction_error_px", "model_disagreement_px", "combined"):
        assert row[f"auroc_{signal}"] == 1.0, signal
        assert row[f"auroc_{signal}_ci_low"] == 1.0  # every resample: the faults rank first
    # computed per participant; weaker: a fault stretches both ends' segments, the leg's mode
    # stretches segments in 2-D too
    assert 0.6 < row["auroc_segment_length_deviation"] < 1.0
    assert row["auroc_likelihood"] < 0.9  # random likelihoods do not find them
    assert row["pca_poses"] == TRAIN_POSES and row["signals_absent"] == "jump_px"
    assert row["best_single_chosen"]  # chosen on the other participants, per participant
    low, high = row[f"{GAIN}_ci_low"], row[f"{GAIN}_ci_high"]
    assert row[GAIN] == row["auroc_combined"] - row["auroc_best_single"] and low <= high
    # condition 1 has no train set: its subspace comes from the other participants' labels
    assert table.loc[1, "pca_poses"] == OTHER_POSES
    metrics = trust_metrics(table)
    assert metrics["trust_auroc_pca_reconstruction_error_px_frames_6"] == 1.0
    assert "trust_auroc_jump_px_frames_6" not in metrics
    text = "\n".join(_trust_section(ReportData(pd.DataFrame(), pd.DataFrame(), trust=table)))
    assert re.search(
        r"\| +pose PCA reconstruction error \(px\) \| +1\.00 \[1\.00, 1\.00\] \|", text
    )


def test_two_folds_pool_each_fold_judged_with_its_own_conditions():
    rng = np.random.default_rng(4)
    first, second = PARTICIPANTS[:3], PARTICIPANTS[3:]
    runs_1, generalisation_1, train_1 = fold_runs(rng, first, fold=1, prefix="f1")
    runs_2, generalisation_2, train_2 = fold_runs(rng, second, fold=2, prefix="f2")
    runs_2["mae_test_px"] = 2.0  # fold 2's threshold: 4 px
    table = trust_validation(
        pd.concat([runs_1, runs_2]),
        generalisation_1 | generalisation_2,
        BOOTSTRAP,
        3,
        train_1 | train_2,
        SKELETON,
    )
    row = table.loc[6]
    assert (row["folds"], row["participants"]) == (2, 6)
    assert (row["threshold_px_min"], row["threshold_px_max"]) == (2.0, 4.0)
    assert row["share_in_error"] == 6 / row["points"]
    # each fold's disagreement is its own two conditions': the faults rank first in both
    assert row["auroc_model_disagreement_px"] == 1.0
    assert row["auroc_pca_reconstruction_error_px"] == 1.0
    assert np.isnan(table.loc[1, "auroc_model_disagreement_px"])  # condition 1: no error


def test_a_signal_that_cannot_be_computed_is_absent_not_zero():
    rng = np.random.default_rng(5)
    labels = {p: body_poses(rng, 8) for p in PARTICIPANTS}
    table = trust_validation(
        runs(("a", 6, 1.0)), {"a": posed(labels, rng, planted(PARTICIPANTS))}, BOOTSTRAP, 3
    )  # one condition, no skeleton, no train set
    row = table.loc[6]
    absent = ["segment_length_deviation", "model_disagreement_px", "jump_px"]
    assert row["signals_absent"] == "; ".join(absent)
    for signal in absent:
        for name in (f"auroc_{signal}", f"precision_at_5pct_{signal}"):
            assert np.isnan(row[name]) and np.isnan(row[f"{name}_ci_low"]), name
    metrics = trust_metrics(table)
    assert not [m for m in metrics if any(s in m for s in absent)]
    # what is there is computed: the subspace of the other participants' labels finds the faults
    assert row["pca_poses"] == OTHER_POSES
    assert row["auroc_pca_reconstruction_error_px"] > 0.99
    text = "\n".join(_trust_section(ReportData(pd.DataFrame(), pd.DataFrame(), trust=table)))
    for signal in absent:
        assert f"absent: {ABSENT_BECAUSE[signal]}" in text


def test_without_a_train_set_a_participant_is_never_in_its_own_pose_subspace():
    # participant-0's arm is three times as long: a subspace that had seen its labels would rebuild
    # its (correct) poses well; one of the other participants' poses cannot
    rng = np.random.default_rng(6)
    labels = {
        p: body_poses(rng, 8, arm_scale=3.0 if p == "participant-0" else 1.0) for p in PARTICIPANTS
    }
    points = signal_points(posed(labels, rng), 1.0)
    error = points.groupby("participant")["pca_reconstruction_error_px"].median()
    assert points.attrs["pca_poses"] == OTHER_POSES
    # fitted with its own labels, participant-0's median is 1.5 px, as the others' here
    assert error["participant-0"] > 4 * error.drop("participant-0").max()


def test_the_combined_score_is_cross_fitted_by_participant():
    """Half the participants err where the likelihood is low, half where it is high. A score
    fitted on the participant it scores would know its direction (fitted on all points, AUROC
    about 0.5; per participant, 1). Fitted on the others only, the others' majority points it the
    wrong way within every participant: a pooled AUROC far below 0.5 (0.25 in theory for the
    scores without a fit's constant; the cross-participant pairs hold the rest)."""
    rng = np.random.default_rng(0)
    n = 200
    errors, likelihoods = [], []
    for i in range(len(PARTICIPANTS)):
        wrong = rng.uniform(size=n) < 0.25
        low = rng.uniform(0.05, 0.45, n)
        high = rng.uniform(0.55, 0.95, n)
        likelihoods.append(np.where(wrong == (i % 2 == 0), low, high))
        errors.append(np.where(wrong, 5.0, 0.5))
    table = pd.concat(
        [
            predictions(e, lk, [p]).assign(frame=np.arange(n) // 4)
            for e, lk, p in zip(errors, likelihoods, PARTICIPANTS, strict=True)
        ]
    )
    result = trust_validation(runs(("a", 6, 1.0)), {"a": table}, BOOTSTRAP, 3).loc[6]
    points = signal_points(table, 1.0)
    in_sample = TrustModel.fit(points, ["low_likelihood"], points["in_error"]).probability(points)
    assert auroc(points["in_error"], in_sample) == pytest.approx(0.5, abs=0.05)
    assert result["signals_absent"] == (
        "pca_reconstruction_error_px; segment_length_deviation; model_disagreement_px; jump_px"
    )  # no pose (every label at 0, 0): 1 - likelihood alone
    assert result["auroc_combined"] < 0.4
    assert result["auroc_best_single"] < 0.4  # chosen and calibrated on the others, too
    assert result["auroc_likelihood"] == pytest.approx(0.5, abs=0.05)  # the raw signal


# The thresholds table (trust_thresholds.csv): 2 x test MAE, a PCK fraction of each frame's
# reference length and a fixed px threshold, for points and for frames.
# Errors (px) of a frame's 8 points by frame number % 4, against 2 x test MAE = 4 px:
FRAME_ERRORS = {
    0: [0.5] * 8,  # nothing in error
    1: [25.0] + [0.5] * 7,  # one point in error (also above 20 px), the frame's mean 3.56 px not
    2: [4.01] * 8,  # every point and the frame (mean 4.01 px) in error
    3: [4.0] * 8,  # exactly at the threshold: not above it
}


def frame_errors(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the errors of :data:`FRAME_ERRORS` (the signals stay those of its points)."""
    errors = [FRAME_ERRORS[f % 4][BODY.index(b)] for f, b in zip(table["frame"], table["bodypart"])]
    return table.assign(error_px=errors)


def thresholds_of_runs(runs_, generalisation, thresholds, train=None, skeleton=()):
    """The validation and the thresholds table of ``runs_``, as the report makes them."""
    pooled = pooled_points(runs_, generalisation, train, skeleton, thresholds.reference)
    return trust_tables(pooled, BOOTSTRAP, 3, thresholds)


def pick(table: pd.DataFrame, threshold: str, unit: str, score: str = "low_likelihood"):
    rows = table[(table["threshold"] == threshold) & (table["unit"] == unit)]
    return rows[rows["score"] == score].iloc[0]


def test_a_frame_is_in_error_exactly_when_its_points_mean_error_exceeds_the_threshold():
    rng = np.random.default_rng(7)
    labels = {p: body_poses(rng, 8) for p in PARTICIPANTS}
    generalisation = {"a": frame_errors(posed(labels, rng))}
    _, table = thresholds_of_runs(runs(("a", 6, 2.0)), generalisation, Thresholds(fixed_px=20.0))
    frames = pick(table, "2x_test_mae", "frames")
    # frames 2 and 6 of each participant; not 1 and 5 (a point in error, the mean not), nor 3, 7
    assert (frames["n_in_error"], frames["n_judged"]) == (2 * 6, 8 * 6)
    assert frames["share_in_error"] == 0.25
    points = pick(table, "2x_test_mae", "points")
    assert (points["n_in_error"], points["n_judged"]) == ((2 + 2 * 8) * 6, 8 * 8 * 6)
    assert frames["threshold_px_min"] == frames["threshold_px_max"] == 4.0
    # a frame's score is the mean of its points' scores: its AUROC, recomputed here
    rows = generalisation["a"]
    by_frame = rows.assign(low=1 - rows["likelihood"]).groupby(["participant", "frame"])
    in_error = by_frame["error_px"].mean() > 4.0
    assert frames["auroc"] == pytest.approx(auroc(in_error, by_frame["low"].mean()))
    assert frames["auroc_ci_low"] <= frames["auroc"] <= frames["auroc_ci_high"]
    # 20 px on the same points: only the one 25 px point of frames 1 and 5, no frame
    fixed = pick(table, "20px", "points")
    assert fixed["share_in_error"] == 2 * 6 / (8 * 8 * 6) != points["share_in_error"]
    assert pick(table, "20px", "frames")["n_in_error"] == 0
    assert np.isnan(pick(table, "20px", "frames")["auroc"])  # one class: no AUROC, not 0.5
    # the combined score is fitted to each threshold's own label, not the 2 x test MAE one
    scored = signal_points(rows, 2.0)
    present = ["low_likelihood", "pca_reconstruction_error_px"]
    over_20 = scored["error_px"].to_numpy() > 20

    def combined_auroc(label: np.ndarray) -> float:
        fit = cross_fit(scored, present, label, scored["participant"].to_numpy())
        return auroc(over_20, fit.combined_ranking)

    combined = pick(table, "20px", "points", "combined")["auroc"]
    assert combined == pytest.approx(combined_auroc(over_20))
    assert combined != pytest.approx(combined_auroc(scored["in_error"].to_numpy()))


def scaled_poses(rng: np.random.Generator, scales: list[float]) -> np.ndarray:
    """Body poses, frame f scaled by ``scales[f]`` about its neck (the reference length too)."""
    poses = body_poses(rng, len(scales))
    neck = poses[:, [1]]
    return neck + (poses - neck) * np.asarray(scales)[:, None, None]


def test_the_pck_threshold_scales_with_each_frames_reference_length():
    """Errors 1.05 x (even frames) and 0.95 x (odd frames) 0.1 x the frame's own neck-to-hip
    length, on frames of different sizes: by error alone no one threshold tells even from odd
    frames (a small even frame's error is below a large odd frame's), by its own length each
    frame is judged right."""
    rng = np.random.default_rng(8)
    scales = [0.5, 2.0, 2.0, 0.5, 1.0, 1.5, 1.5, 1.0]
    labels = {p: scaled_poses(rng, scales) for p in PARTICIPANTS}
    table = posed(labels, rng)
    frame = ["participant", "frame"]
    ends = table[table["bodypart"].isin(["neck", "hip"])].groupby(frame)
    lengths = np.hypot(ends["x_label"].agg(np.ptp), ends["y_label"].agg(np.ptp))
    length = lengths.reindex(pd.MultiIndex.from_frame(table[frame])).to_numpy()
    table["error_px"] = 0.1 * length * np.where(table["frame"] % 2 == 0, 1.05, 0.95)
    reference = Reference(("neck", "hip"), None, "neck to hip")
    _, result = thresholds_of_runs(
        runs(("a", 6, 100.0)), {"a": table}, Thresholds(reference, 0.1, 20.0)
    )
    frames, points = pick(result, "pck0.1", "frames"), pick(result, "pck0.1", "points")
    assert (frames["n_in_error"], frames["n_judged"], frames["n_left_out"]) == (24, 48, 0)
    assert points["n_in_error"] == 24 * 8
    assert frames["threshold_px_min"] == pytest.approx(0.1 * lengths.min())
    assert frames["threshold_px_max"] == pytest.approx(0.1 * lengths.max())
    # the in-error frames are not the largest errors: one threshold could not pick them
    errors = table.groupby(["participant", "frame"])["error_px"].mean()
    even = errors.index.get_level_values("frame") % 2 == 0
    assert errors[even].min() < errors[~even].max()
    # the 20 px and 2 x test MAE (200 px) thresholds judge the same points otherwise
    assert pick(result, "20px", "points")["n_in_error"] == (table["error_px"] > 20).sum() != 24 * 8
    assert pick(result, "2x_test_mae", "frames")["n_in_error"] == 0


def test_a_frame_without_a_reference_length_is_left_out_of_the_pck_threshold():
    rng = np.random.default_rng(9)
    labels = {p: body_poses(rng, 8) for p in PARTICIPANTS}
    table = posed(labels, rng)
    unlabelled = (table["frame"] == 0) & (table["bodypart"] == "hip")
    table.loc[unlabelled, ["x_label", "y_label", "error_px"]] = np.nan
    reference = Reference(("neck", "hip"), None, "neck to hip")
    _, result = thresholds_of_runs(runs(("a", 6, 1.0)), {"a": table}, Thresholds(reference, 0.1))
    frames = pick(result, "pck0.1", "frames")
    assert (frames["n_judged"], frames["n_left_out"]) == (7 * 6, 6)
    assert pick(result, "20px", "frames")["n_left_out"] == 0
    # half the participants without any: some resamples hold none of the judged ones
    without = table["participant"].isin(PARTICIPANTS[:3]) & (table["bodypart"] == "hip")
    table.loc[without, ["x_label", "y_label", "error_px"]] = np.nan
    _, result = thresholds_of_runs(runs(("a", 6, 1.0)), {"a": table}, Thresholds(reference, 0.1))
    frames = pick(result, "pck0.1", "frames")
    assert (frames["participants"], frames["n_judged"]) == (3, 7 * 3)
    assert frames["share_in_error_ci_low"] <= frames["share_in_error_ci_high"]
    # no frame with a reference length: the threshold is absent, saying why
    table.loc[table["bodypart"] == "hip", ["x_label", "y_label", "error_px"]] = np.nan
    _, result = thresholds_of_runs(runs(("a", 6, 1.0)), {"a": table}, Thresholds(reference, 0.1))
    absent = result[result["threshold"] == "pck0.1"]
    assert absent["auroc"].isna().all() and (absent["absent_because"] == NO_REFERENCE).all()


def test_without_a_pck_reference_the_pck_threshold_is_absent_saying_why():
    rng = np.random.default_rng(10)
    runs_, generalisation, train = fold_runs(rng, PARTICIPANTS)
    off = {"reference_bodyparts": "auto", "reference_length_cm": None, "fractions": [0.2, 0.5]}
    thresholds = thresholds_of(off, "dlc_project", BODY, None, 20.0)  # auto: off on users' data
    assert thresholds.reference is None and thresholds.pck_off == OFF_NOTE
    validation, table = thresholds_of_runs(runs_, generalisation, thresholds, train, SKELETON)
    pck = table[table["threshold"] == "pck0.2"]
    assert len(pck) == 2 * 2 * 7  # 2 conditions, points and frames, every score
    assert pck["auroc"].isna().all() and pck["n_judged"].isna().all()
    assert (pck["absent_because"] == OFF_NOTE).all()
    present = table[table["threshold"] != "pck0.2"]
    assert (present.loc[present["score"] == "jump_px", "absent_because"] != "").all()
    assert (present.loc[present["score"] == "low_likelihood", "absent_because"] == "").all()
    # on for the embedded cohort's bodyparts, or with a pair of the data set's
    synthetic = thresholds_of(off, "synthetic", ["left_shoulder", "right_hip"], None, 20.0)
    assert synthetic.reference.bodyparts == ("left_shoulder", "right_hip")
    assert synthetic.pck_fraction == 0.2
    section = "\n".join(
        _trust_section(
            ReportData(pd.DataFrame(), pd.DataFrame(), trust=validation, trust_thresholds=table)
        )
    )
    assert f"0.2 x reference: absent, {OFF_NOTE}." in section
    assert re.search(
        r"\| +points, 2 x test MAE \| +points, 20 px \| +frames, 2 x test MAE \|", section
    )
    assert re.search(r"\| +combined score \| +1\.00 \[1\.00, 1\.00\] \|", section)


# trust_validation.csv's columns before the thresholds table came: they must not change
VALIDATION_COLUMNS = [
    "threshold_px_min",
    "threshold_px_max",
    *[
        f"{f}{end}"
        for f in (
            "share_in_error",
            "auroc_likelihood",
            "auroc_pca_reconstruction_error_px",
            "auroc_segment_length_deviation",
            "auroc_model_disagreement_px",
            "auroc_jump_px",
            "auroc_combined",
            "auroc_best_single",
            "precision_at_5pct",
            "precision_at_5pct_pca_reconstruction_error_px",
            "precision_at_5pct_segment_length_deviation",
            "precision_at_5pct_model_disagreement_px",
            "precision_at_5pct_jump_px",
            "precision_at_5pct_combined",
            "precision_at_5pct_best_single",
            "auroc_gain_over_best_single",
        )
        for end in ("", "_ci_low", "_ci_high")
    ],
    "participants",
    "frames",
    "points",
    "folds",
    "small",
    "best_single_chosen",
    "pca_poses",
    "signals_absent",
]


def test_the_validation_table_is_unchanged_and_its_points_rows_agree():
    rng = np.random.default_rng(4)
    runs_1, generalisation_1, train_1 = fold_runs(rng, PARTICIPANTS[:3], fold=1, prefix="f1")
    runs_2, generalisation_2, train_2 = fold_runs(rng, PARTICIPANTS[3:], fold=2, prefix="f2")
    runs_2["mae_test_px"] = 2.0
    runs_ = pd.concat([runs_1, runs_2])
    generalisation, train = generalisation_1 | generalisation_2, train_1 | train_2
    alone = trust_validation(runs_, generalisation, BOOTSTRAP, 3, train, SKELETON)
    reference = Reference(("neck", "hip"), None, "neck to hip")
    validation, table = thresholds_of_runs(
        runs_, generalisation, Thresholds(reference, 0.1), train, SKELETON
    )
    assert alone.columns.tolist() == VALIDATION_COLUMNS
    pd.testing.assert_frame_equal(validation, alone)  # the report's and the function's: one table
    # the thresholds table's 2 x test MAE points are the validation table's figures, interval too
    for n, row in alone.iterrows():
        for score in ("low_likelihood", "combined", "best_single", "model_disagreement_px"):
            mine = table[
                (table["labelled_frames"] == n)
                & (table["threshold"] == "2x_test_mae")
                & (table["unit"] == "points")
                & (table["score"] == score)
            ].iloc[0]
            for end in ("", "_ci_low", "_ci_high"):
                for theirs, ours in (
                    (auroc_column(score), "auroc"),
                    (precision_column(score), "precision_at_5pct"),
                    ("share_in_error", "share_in_error"),
                ):
                    assert mine[f"{ours}{end}"] == pytest.approx(row[f"{theirs}{end}"], nan_ok=True)
        assert mine["threshold_px_min"] == row["threshold_px_min"]
        assert mine["participants"] == row["participants"]


def test_the_thresholds_table_with_nothing_judged_says_why_and_does_not_fail():
    rng = np.random.default_rng(11)
    runs_, generalisation, train = fold_runs(rng, PARTICIPANTS)
    off = {"reference_bodyparts": "auto", "reference_length_cm": None, "fractions": [0.2]}
    thresholds = thresholds_of(off, "dlc_project", BODY, None, 20.0)
    validation, table = thresholds_of_runs(runs_, generalisation, thresholds, train, SKELETON)
    table["n_judged"] = np.nan  # as when no threshold judged a unit of the condition
    text = "\n".join(
        _trust_section(
            ReportData(pd.DataFrame(), pd.DataFrame(), trust=validation, trust_thresholds=table)
        )
    )
    assert "The same scores against other thresholds" not in text
    assert text.count(": absent, ") == table["threshold"].nunique()
