"""The combined trust score: calibrated, saved, and never fitted on the participant it judges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.trust import score as trust_score
from src.trust.score import TrustModel, cross_fit
from src.trust.validation import auroc


def signal_table(n_participants: int = 6, rows: int = 400, seed: int = 0):
    """Rows of points: ``useful`` rises with the error, ``noise`` does not; both >= 0."""
    rng = np.random.default_rng(seed)
    participants = np.repeat([f"P{i}" for i in range(n_participants)], rows)
    is_error = rng.random(len(participants)) < 0.2
    table = pd.DataFrame(
        {
            "useful": rng.gamma(2.0, 1.0, len(participants)) * np.where(is_error, 3.0, 1.0),
            "noise": rng.gamma(2.0, 1.0, len(participants)),
            "participant": participants,
        }
    )
    return table, is_error.astype(int), participants


def test_the_score_is_calibrated_and_travels_as_json(tmp_path):
    table, is_error, _ = signal_table()
    model = TrustModel.fit(
        table, ["useful", "noise"], is_error, threshold="2 x test MAE", threshold_px=5.0
    )
    p = model.probability(table)
    assert p.mean() == pytest.approx(is_error.mean(), abs=0.01)  # calibrated in the large
    for low, high in [(0.0, 0.2), (0.2, 0.5), (0.5, 1.0)]:  # and by bin of predicted risk
        chosen = (p >= low) & (p < high)
        assert is_error[chosen].mean() == pytest.approx(p[chosen].mean(), abs=0.05)
    assert model.coef[0] > 5 * abs(model.coef[1])  # the useful signal carries it
    path = model.save(tmp_path / "trust.json")
    assert path.stat().st_size < 5000
    np.testing.assert_allclose(TrustModel.load(path).probability(table), p)


def test_the_calibrator_is_never_fitted_on_the_judged_participant(monkeypatch):
    table, is_error, participants = signal_table()
    fitted_on = []
    real_fit = TrustModel.fit.__func__

    def spying_fit(cls, rows, signals, y, *args, **kwargs):
        fitted_on.append(set(rows["participant"]))
        return real_fit(cls, rows, signals, y, *args, **kwargs)

    monkeypatch.setattr(trust_score.TrustModel, "fit", classmethod(spying_fit))
    result = cross_fit(table, ["useful", "noise"], is_error, participants)
    assert len(fitted_on) == 2 * 6  # combined and best single, once per held-out participant
    for held_out, fitting in zip(np.repeat(np.unique(participants), 2), fitted_on, strict=True):
        assert held_out not in fitting
        assert len(fitting) == 5
    assert set(result.chosen.values()) == {"useful"}
    assert np.isfinite(result.combined).all() and np.isfinite(result.best_single).all()
    assert auroc(is_error, result.combined) > 0.75


def test_a_participant_that_only_memorising_could_score_is_not_scored_well():
    # C's errors go with the signal the other way round, and C has most rows: a score fitted with
    # C's own rows would follow C and rank C's errors well; one fitted on A and B only cannot.
    rng = np.random.default_rng(3)
    participants = np.repeat(["A", "B", "C"], [150, 150, 1200])
    is_error = (rng.random(len(participants)) < 0.3).astype(int)
    direction = np.where(participants == "C", -1.0, 1.0)
    noise = rng.normal(0, 0.3, len(participants))
    table = pd.DataFrame({"s": np.exp(direction * (is_error - 0.5) + noise)})
    result = cross_fit(table, ["s"], is_error, participants)
    judged = participants == "C"
    assert auroc(is_error[judged], result.combined[judged]) < 0.2  # wrong way round, as it must be


def test_a_saved_score_scores_a_new_video_from_its_predictions_alone(tmp_path):
    from src.trust import signals
    from tests.trust.test_trust_signals import BODYPARTS, SKELETON, smooth_tracks, training_poses

    rng = np.random.default_rng(5)
    pca = signals.PosePCA().fit(training_poses())
    xy = smooth_tracks(80)
    likelihood = rng.uniform(0.8, 1.0, xy.shape[:2])
    is_error = np.zeros(xy.shape[:2], dtype=int)
    for frame, point in zip(rng.integers(1, 79, 15), rng.integers(0, 8, 15), strict=True):
        xy[frame, point] += rng.normal(0, 8, 2)  # glitches: the points in error
        is_error[frame, point] = 1
    other = xy + rng.normal(0, 0.3, xy.shape)
    columns = signals.single_model_signals(xy, likelihood, BODYPARTS, SKELETON, pca)
    columns["model_disagreement_px"] = signals.model_disagreement_px([xy, other])
    table = pd.DataFrame({name: values.ravel() for name, values in columns.items()})
    model = TrustModel.fit(
        table,
        list(columns),
        is_error.ravel(),
        threshold="glitch",
        pose_pca=pca.to_dict(),
        bodyparts=BODYPARTS,
        skeleton=SKELETON,
    )
    loaded = TrustModel.load(model.save(tmp_path / "trust.json"))
    poses = np.concatenate([xy, likelihood[..., None]], axis=2)
    trust = loaded.score_video(poses, [other])
    assert trust.shape == xy.shape[:2]
    np.testing.assert_allclose(trust.ravel(), model.probability(table))
    assert auroc(is_error.ravel(), trust.ravel()) > 0.9
    with pytest.raises(ValueError, match="other models"):
        loaded.score_video(poses)


def test_pooled_ranking_is_not_moved_by_each_participant_having_its_own_fit():
    # Participants differ in error rate, so each leave-one-out fit has its own intercept and
    # scale, pulled against the held-out participant's rate. The probabilities carry that into
    # the pooled order; the rankings do not: one signal ranks exactly as the raw signal does.
    rng = np.random.default_rng(7)
    rates = [0.1, 0.3, 0.5, 0.7, 0.9]
    participants = np.repeat([f"P{i}" for i in range(len(rates))], 300)
    is_error = (rng.random(len(participants)) < np.repeat(rates, 300)).astype(int)
    table = pd.DataFrame({"s": rng.gamma(2.0, 1.0, len(participants)) * (1 + 2 * is_error)})
    result = cross_fit(table, ["s"], is_error, participants)
    raw = table["s"].to_numpy()
    assert np.array_equal(np.argsort(result.best_single_ranking), np.argsort(raw))
    assert auroc(is_error, result.best_single_ranking) == pytest.approx(auroc(is_error, raw))
    assert auroc(is_error, result.best_single) < auroc(is_error, raw) - 0.01  # the bias removed
