"""Trust in daily use (src.analysis.trust): flags, the trust table, the frames exported for
labelling and the folder DeepLabCut reads, the movie's marks, the features of flagged points and
the configuration. Arrays and a small drawn video whose answers are known; the whole src.analyze
run is in tests/analysis/test_analyze.py."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from src.analysis.movies import FLAGGED_COLOUR, MovieStyle, bodypart_colours, draw_pose
from src.analysis.trust import (
    TrackedVideo,
    TrustSettings,
    export_flagged_frames,
    feature_flags,
    frames_to_export,
    score_video,
    trust_table,
)
from src.analysis.videos import read_video_info
from src.errors import DataError
from src.trust.score import TrustModel
from src.trust.signals import PosePCA

REPO = Path(__file__).resolve().parents[2]
BODYPARTS = ["shoulder", "elbow", "wrist", "hip"]
SKELETON = [["shoulder", "elbow"], ["elbow", "wrist"], ["shoulder", "hip"]]


def settings(**changes) -> TrustSettings:
    trust = OmegaConf.to_container(
        OmegaConf.load(REPO / "conf" / "analysis" / "default.yaml").trust
    )
    trust |= {"scorer": "Me"} | changes
    return TrustSettings.from_config(OmegaConf.create({"trust": trust}))


def poses_of(n_frames: int = 30, seed: int = 0) -> np.ndarray:
    """A pose per frame: points moving a little, likelihood 0.9 except where a test lowers it."""
    rng = np.random.default_rng(seed)
    base = np.array([[20, 10], [30, 20], [40, 22], [20, 35]], dtype=float)
    xy = base + rng.normal(0, 0.5, (n_frames, 4, 2))
    return np.concatenate([xy, np.full((n_frames, 4, 1), 0.9)], axis=2)


def test_likelihood_trust_flags_points_under_the_threshold_and_frames_with_one():
    poses = poses_of(10)
    poses[3, 2, 2] = 0.2  # the wrist of frame 3 is in doubt
    poses[7, 0, 2] = 0.59  # just under 0.6
    poses[8, 1, :2] = np.nan  # no position: flagged whatever its likelihood
    video_trust = score_video(settings(), poses)
    assert video_trust.trust == pytest.approx(poses[..., 2])
    assert sorted(map(tuple, np.argwhere(video_trust.flagged))) == [(3, 2), (7, 0), (8, 1)]
    assert np.flatnonzero(video_trust.frame_flagged).tolist() == [3, 7, 8]
    summary = video_trust.summary()
    assert summary["frames_flagged"] == 3 and summary["frames_flagged_share"] == pytest.approx(0.3)
    assert summary["points_flagged_share"] == pytest.approx(3 / 40)
    assert "expected_points_in_error_share" not in summary  # the likelihood predicts no error
    assert not score_video(settings(threshold=0.1), poses).flagged[[3, 7]].any()


def test_exported_frames_are_the_least_trusted_flagged_ones_spaced_apart():
    poses = poses_of(30)
    for frame, likelihood in {2: 0.5, 3: 0.1, 4: 0.3, 12: 0.4, 20: 0.55, 27: 0.2}.items():
        poses[frame, 1, 2] = likelihood
    video_trust = score_video(settings(), poses)
    # frame trust: the mean likelihood; least trusted first: 3, 27, 4 (2 frames from 3), 12, ...
    assert frames_to_export(video_trust, limit=3, min_gap=5) == [3, 12, 27]
    assert frames_to_export(video_trust, limit=10, min_gap=1) == [2, 3, 4, 12, 20, 27]
    assert frames_to_export(video_trust, limit=2, min_gap=1) == [3, 27]
    assert frames_to_export(video_trust, limit=0, min_gap=1) == []


def test_trust_table_keeps_deeplabcuts_layout_with_trust_and_flag_beside_each_point():
    poses = poses_of(5)
    poses[1, 3, 2] = 0.3
    columns = pd.MultiIndex.from_product(
        [["DLC_x"], BODYPARTS, ["x", "y", "likelihood"]], names=["scorer", "bodyparts", "coords"]
    )
    predictions = pd.DataFrame(poses.reshape(5, -1), columns=columns)
    table = trust_table(predictions, score_video(settings(), poses), BODYPARTS)
    assert table.columns.names == ["scorer", "bodyparts", "coords"]
    assert table.columns.get_level_values("bodyparts").unique().tolist() == BODYPARTS
    assert table["DLC_x"]["hip"].columns.tolist() == ["x", "y", "likelihood", "trust", "flagged"]
    assert table.xs("flagged", level="coords", axis=1).to_numpy().sum() == 1
    assert table[("DLC_x", "hip", "flagged")].tolist() == [0, 1, 0, 0, 0]
    assert table.loc[:, predictions.columns].equals(predictions)  # DeepLabCut's columns unchanged


def small_video(path: Path, n_frames: int) -> Path:
    """Frames whose grey level is 5 x the frame index, so a frame is known by its colour."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for frame in range(n_frames):
        writer.write(np.full((48, 64, 3), 5 * frame, np.uint8))
    writer.release()
    return path


def test_flagged_frames_become_a_labelling_folder_deeplabcut_reads(tmp_path):
    from deeplabcut.generate_training_dataset.trainingsetmanipulation import (
        merge_annotateddatasets,
    )
    from deeplabcut.utils.auxiliaryfunctions import read_config

    video = read_video_info(small_video(tmp_path / "P07_S2.avi", 30))
    poses = poses_of(30)
    poses[[6, 18], 2, 2] = 0.1  # the wrist is in doubt in two frames
    poses[18, 0, 2] = 0.3  # and the shoulder in one
    video_trust = score_video(settings(export_flagged=5), poses)
    staging, final = tmp_path / "staging", tmp_path / "final"
    staging.mkdir()
    tracked = TrackedVideo(video, poses, BODYPARTS, SKELETON, 0.6)
    config = export_flagged_frames(video_trust, tracked, staging, final)
    assert video_trust.exported_frames == [6, 18]
    staging.rename(final)  # as the atomic folder is moved into place

    cfg = read_config(str(final / "labelling" / "config.yaml"))
    assert Path(cfg["project_path"]) == (final / "labelling").resolve()
    assert cfg["scorer"] == "Me" and cfg["bodyparts"] == BODYPARTS
    assert cfg["skeleton"] == SKELETON
    (tmp_path / "training-set").mkdir()
    labels = merge_annotateddatasets(cfg, tmp_path / "training-set")  # how DLC reads labels
    assert [index[2] for index in labels.index] == ["img06.png", "img18.png"]
    assert labels.columns.get_level_values("bodyparts").unique().tolist() == BODYPARTS
    folder = final / "labelling" / "labeled-data" / "P07_S2"
    for frame in (6, 18):
        image = cv2.imread(str(folder / f"img{frame:02d}.png"))
        assert abs(float(image.mean()) - 5 * frame) < 3  # the right frame of the video
    # flagged points left empty for the labeller, the others prefilled with the model's positions
    row6 = labels.loc[("labeled-data", "P07_S2", "img06.png")]["Me"]
    assert np.isnan(row6["wrist"]["x"]) and row6["elbow"]["x"] == pytest.approx(poses[6, 1, 0])
    row18 = labels.loc[("labeled-data", "P07_S2", "img18.png")]["Me"]
    assert np.isnan(row18["shoulder"]["y"]) and row18["hip"]["y"] == pytest.approx(poses[18, 3, 1])
    assert config == final.parent / "staging" / "labelling" / "config.yaml"


def test_flagged_points_are_drawn_as_a_red_x_and_the_others_as_dots():
    frame = np.zeros((40, 60, 3), np.uint8)
    pose = np.array([[10, 10, 0.9], [40, 20, 0.9]])
    colours = bodypart_colours(2)
    style = MovieStyle(["a", "b"], [], 0.6, colours, radius=3)
    drawn = draw_pose(frame.copy(), pose, style, flagged=np.array([False, True]))
    assert tuple(drawn[10, 10]) == colours[0]  # an unflagged point: its colour's dot
    assert tuple(drawn[20, 40]) == FLAGGED_COLOUR  # the X's centre
    assert tuple(drawn[16, 36]) == FLAGGED_COLOUR and tuple(drawn[24, 44]) == FLAGGED_COLOUR
    assert not drawn[20, 36].any()  # an X, not a dot: the sides of the centre stay dark
    assert (drawn == draw_pose(frame.copy(), pose, style)).sum() < drawn.size  # flags change it


def test_features_of_flagged_points_are_marked_per_angle_and_distance():
    flagged = np.zeros((3, 4), bool)
    flagged[1, 2] = True  # the wrist in frame 1
    flagged[2, 3] = True  # the hip, a body-centre point, in frame 2
    table = feature_flags(
        flagged, BODYPARTS, {"elbow": ["shoulder", "elbow", "wrist"]}, ["shoulder", "hip"]
    )
    assert table["flagged_angle_elbow"].tolist() == [False, True, False]
    assert table["flagged_distance_wrist"].tolist() == [False, True, True]
    assert table["flagged_distance_elbow"].tolist() == [False, False, True]


def test_combined_score_trust_is_one_minus_the_probability_of_error(tmp_path):
    rng = np.random.default_rng(1)
    poses = poses_of(60, seed=2)
    poses[..., 2] = rng.uniform(0.05, 1.0, (60, 4))
    signals = ["low_likelihood", "jump_px"]
    table = pd.DataFrame({"low_likelihood": 1 - poses[..., 2].ravel(), "jump_px": 0.0})
    is_error = (table["low_likelihood"] > 0.5).to_numpy()
    model = TrustModel.fit(
        table,
        signals,
        is_error,
        threshold="2 x test MAE",
        pose_pca=PosePCA().fit(poses[..., :2]).to_dict(),
        bodyparts=BODYPARTS,
        skeleton=SKELETON,
    )
    path = model.save(tmp_path / "trust.json")
    combined = settings(score="combined", model=str(path))
    video_trust = score_video(combined, poses)
    assert video_trust.trust == pytest.approx(1 - model.score_video(poses))
    # the fitted score rises with doubt: the least likely points are the least trusted
    assert np.corrcoef(video_trust.trust.ravel(), poses[..., 2].ravel())[0, 1] > 0.9
    assert video_trust.summary()["expected_points_in_error_share"] == pytest.approx(
        1 - video_trust.trust.mean()
    )
    with pytest.raises(DataError, match="fitted for bodyparts"):
        combined.check_bodyparts(["nose", *BODYPARTS[1:]])
    with pytest.raises(DataError, match="analysis.trust.model=<path"):
        settings(score="combined")
    with pytest.raises(DataError, match="cannot be read as a trust score"):
        settings(score="combined", model=str(tmp_path / "missing.json"))
    with pytest.raises(DataError, match="analysis.trust.score='z-score' is unknown"):
        settings(score="z-score")
    with pytest.raises(DataError, match="mark | drop"):
        settings(features="hide")
    assert settings(enabled=False) is None


def test_the_saved_benchmark_score_needs_other_models_and_names_the_key():
    with pytest.raises(DataError, match="analysis.trust.other_models"):
        settings(score="combined", model=str(REPO / "benchmarks/results/trust_model.json"))


def test_every_trust_key_is_commented_and_the_default_is_the_benchmarks_best_signal():
    text = (REPO / "conf" / "analysis" / "default.yaml").read_text()
    block = text[text.index("\ntrust:") :].splitlines()[1:]
    keys = [line for line in block if re.match(r"^  \w+:", line)]
    trust = yaml.safe_load(text)["trust"]
    assert [line.split(":")[0].strip() for line in keys] == list(trust)
    assert all("#" in line for line in keys), [line for line in keys if "#" not in line]
    headline = dict(
        line.split(": ")
        for line in (REPO / "benchmarks/results/trust.md").read_text().splitlines()[:4]
    )
    # the combined score becomes the default only once it is shown to beat the best single
    # signal (paired interval above 0); until then the likelihood, which needs nothing else
    shown = float(headline["auroc_gain_over_best_single_ci_low"]) > 0
    assert trust["score"] == ("combined" if shown else "likelihood")


@pytest.mark.parametrize("mode", ["mark", "drop"])
def test_features_of_flagged_points_are_marked_or_left_out(tmp_path, mode):
    from src.analysis.per_video import Points, write_features
    from src.analysis.videos import VideoInfo

    names = [
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "right_hip",
        "left_hip",
    ]
    rng = np.random.default_rng(3)
    base = np.array([[0, 0], [10, 0], [10, 10], [0, 10], [20, 0], [20, 10]], dtype=float)
    xy = base + rng.normal(0, 0.3, (20, 6, 2))
    poses = np.concatenate([xy, np.full((20, 6, 1), 0.9)], axis=2)
    poses[5, 2, 2] = 0.3  # the wrist is in doubt in frame 5
    analysis = OmegaConf.create(
        {
            "pcutoff": 0.1,  # the wrist passes the p-cutoff: only the trust flag can drop it
            "body_centre": ["right_shoulder", "left_shoulder", "right_hip", "left_hip"],
            "body_size": [["right_shoulder", "right_hip"]],
            "spectrum_segment_s": 1.0,
        }
    )
    points = Points(names, [], {"right_elbow": ["right_shoulder", "right_elbow", "right_wrist"]})
    video = VideoInfo(tmp_path / "v.mp4", 10.0, 20, 64, 48)
    video_trust = score_video(settings(features=mode), poses)
    table, frequencies = write_features(analysis, points, video, poses, tmp_path, video_trust)
    written = pd.read_csv(tmp_path / "features.csv")
    angle = written["angle_right_elbow_deg"]
    if mode == "mark":
        assert angle.notna().all()  # kept
        assert written["flagged_angle_right_elbow"].tolist() == [f == 5 for f in range(20)]
        assert frequencies.set_index("bodypart")["flagged_share"]["right_wrist"] == 0.05
    else:
        assert np.flatnonzero(angle.isna()).tolist() == [5]  # left out where flagged
        assert written["distance_right_wrist_norm"].isna().sum() == 1
        assert not any(c.startswith("flagged_") for c in written)
