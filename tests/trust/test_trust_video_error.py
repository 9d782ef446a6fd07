"""A video's predicted MAE with an interval (src.trust.score.VideoErrorModel): it recovers a
known relation, its interval holds at its level on participants it never saw, the validation
never lets a participant's own videos into its prediction, and it travels in the trust score's
JSON into trust_summary.csv."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.analysis.run import trust_line
from src.analysis.trust import TrustSettings, score_video
from src.errors import DataError
from src.trust.score import TrustModel, VideoErrorModel, cross_validate_video_mae
from src.trust.signals import PosePCA
from tests.trust.test_trust_registry import BODYPARTS, SKELETON, analysis


def videos(n_participants: int, seed: int = 0, noise: float = 0.2):
    """Two videos per participant: mean signal, MAE = exp(1 + 2 log1p(signal) + noise)."""
    rng = np.random.default_rng(seed)
    participants = np.repeat([f"P{i:02d}" for i in range(n_participants)], 2)
    means = rng.uniform(0.1, 0.9, len(participants))
    mae = np.exp(1.0 + 2.0 * np.log1p(means) + rng.normal(0, noise, len(participants)))
    return means, mae, participants


def test_it_recovers_the_relation_and_its_interval_holds_on_new_participants():
    means, mae, participants = videos(40)
    model = VideoErrorModel.fit("low_likelihood", means, mae, participants, level=0.9)
    assert model.slope == pytest.approx(2.0, abs=0.3)
    assert model.intercept == pytest.approx(1.0, abs=0.2)
    assert model.half_width == pytest.approx(1.645 * 0.2, abs=0.1)  # the noise's 90 % bound
    new_means, new_mae, _ = videos(200, seed=1)
    predicted = np.array([model.predict(m) for m in new_means])
    inside = (new_mae >= predicted[:, 1]) & (new_mae <= predicted[:, 2])
    assert 0.85 <= inside.mean() <= 0.96
    estimate, low, high = model.predict(0.5)
    assert low < estimate < high
    assert estimate == pytest.approx(np.exp(model.intercept + model.slope * np.log1p(0.5)))


def test_the_validation_never_fits_a_participants_own_videos():
    means, mae, participants = videos(8, noise=0.05)
    mae[participants == "P03"] *= 20  # far off the line: only its own videos could predict it
    held_out = cross_validate_video_mae("s", means, mae, participants)
    judged = participants == "P03"
    assert (held_out["predicted"][judged] < mae[judged] / 5).all()
    assert (held_out["high"][judged] < mae[judged]).all()  # and its interval misses, honestly
    others = np.log(mae[~judged]).mean()
    assert held_out["constant"][judged].to_numpy() == pytest.approx(np.exp(others))
    assert (held_out["actual"] == mae).all()


def test_too_few_videos_give_an_unbounded_interval_and_two_participants_none():
    means, mae, participants = videos(3)  # 6 videos: rank ceil(7 x 0.9) = 7 > 6
    model = VideoErrorModel.fit("s", means, mae, participants, level=0.9)
    assert model.predict(0.3)[2] == np.inf and model.predict(0.3)[1] == 0.0
    with pytest.raises(ValueError, match="3 participants"):
        VideoErrorModel.fit("s", *videos(2))


def saved_score(tmp_path, video_signal="low_likelihood"):
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"low_likelihood": rng.uniform(0, 1, 300), "jump_px": 0.0})
    poses = np.array([[20, 10], [30, 20], [40, 22], [20, 35]], float) + rng.normal(0, 1, (30, 4, 2))
    model = TrustModel.fit(
        table,
        ["low_likelihood", "jump_px"],
        table["low_likelihood"] > 0.5,
        threshold="2 x test MAE",
        pose_pca=PosePCA().fit(poses).to_dict(),
        bodyparts=BODYPARTS,
        skeleton=SKELETON,
    )
    model.video_mae = VideoErrorModel.fit(video_signal, *videos(10)).__dict__
    return model.save(tmp_path / "trust.json"), poses


def test_the_summary_of_a_video_gives_its_predicted_mae_and_interval(tmp_path):
    path, poses = saved_score(tmp_path)
    likelihood = np.full((30, 4, 1), 0.7)
    video = np.concatenate([poses, likelihood], axis=2)
    settings = TrustSettings.from_config(analysis("r", model=str(path)))
    row = score_video(settings, video).summary()
    expected = VideoErrorModel(**TrustModel.load(path).video_mae).predict(0.3)  # 1 - 0.7
    assert row["predicted_mae_px"] == pytest.approx(expected[0])
    assert row["predicted_mae_low_px_90%"] == pytest.approx(expected[1])
    assert row["predicted_mae_high_px_90%"] == pytest.approx(expected[2])
    # src.analyze's printed line for the video says it too
    result = {"trust": score_video(settings, video), "video": SimpleNamespace(path=Path("P01.mp4"))}
    assert trust_line(result).endswith(
        f"; predicted MAE {expected[0]:.1f} px (90% interval {expected[1]:.1f}-{expected[2]:.1f})"
    )
    # the likelihood score predicts no MAE
    plain = score_video(TrustSettings.from_config(analysis("r", score="likelihood")), video)
    assert "predicted_mae_px" not in plain.summary()
    assert "predicted MAE" not in trust_line({**result, "trust": plain})


def test_a_video_error_model_on_a_signal_the_score_does_not_compute_is_refused(tmp_path):
    path, _ = saved_score(tmp_path, video_signal="video_mean_low_likelihood")
    with pytest.raises(DataError, match=r"video error model uses 'video_mean_low_likelihood'"):
        TrustSettings.from_config(OmegaConf.create(analysis("r", model=str(path))))
