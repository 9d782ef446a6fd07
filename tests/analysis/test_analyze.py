"""src.analyze and src.analysis: features on known geometry, and real video analysis of a tiny
trained model.

The fast tests check the features and the drawing on arrays whose answer is known. The slow ones
train a tiny model with real DeepLabCut into a real MLflow store under tmp_path, analyse the tiny
cohort's real videos and check the files, the MLflow run and what it must not contain (real video
names, media when not allowed).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from src.analysis import features
from src.analysis.model_choice import download_model_and_skeleton, find_model_run
from src.analysis.movies import MovieStyle, bodypart_colours, draw_pose
from src.analysis.run import analyze
from src.analysis.videos import check_output_dir, collect_videos, read_video_info
from src.engine.pytorch import filter_predictions
from src.errors import DataError
from src.training.condition import train
from tests.conftest import compose_config, tiny_overrides, tiny_project, tree_checksums

BODYPARTS = ["shoulder", "elbow", "wrist", "hip"]


# --- features on known geometry -------------------------------------------------------------------


def test_joint_angle_of_known_geometry_and_invariant_to_scale_rotation_shift():
    # frame 0: right angle at the elbow; frame 1: straight arm; frame 2: 45 degrees;
    # frame 3: wrist missing
    xy = np.array(
        [
            [[0, 0], [10, 0], [10, 10], [0, 20]],
            [[0, 0], [10, 0], [20, 0], [0, 20]],
            [[0, 0], [10, 0], [0, 10], [0, 20]],
            [[0, 0], [10, 0], [np.nan, np.nan], [0, 20]],
        ],
        dtype=float,
    )
    angle_deg = features.joint_angle(xy, BODYPARTS, "shoulder", "elbow", "wrist")
    assert angle_deg[:3] == pytest.approx([90.0, 180.0, 45.0])
    assert np.isnan(angle_deg[3])
    turn = np.radians(33)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    moved = 3 * xy @ rotation.T + [40, -7]
    assert features.joint_angle(moved, BODYPARTS, "shoulder", "elbow", "wrist")[
        :3
    ] == pytest.approx(angle_deg[:3])


def test_angular_velocity_in_degrees_per_second():
    angles_deg = 10.0 * np.arange(20)  # 10 degrees per frame
    assert features.angular_velocity(angles_deg, fps=25) == pytest.approx(np.full(20, 250.0))


def test_normalised_distances_known_and_unchanged_when_the_body_is_scaled():
    # shoulders at y=0, hips at y=20 (body size 20), centre (5, 10); the wrist 20 px right of the
    # centre.
    names = ["right_shoulder", "left_shoulder", "right_hip", "left_hip", "wrist"]
    xy = np.array([[[0, 0], [10, 0], [0, 20], [10, 20], [25, 10]]] * 5, dtype=float)
    args = (
        names,
        ["right_shoulder", "left_shoulder", "right_hip", "left_hip"],
        [["right_shoulder", "right_hip"], ["left_shoulder", "left_hip"]],
    )
    distances = features.normalised_distances(xy, *args)
    assert distances["wrist"].to_numpy() == pytest.approx(np.ones(5))  # 20 px / 20 px
    assert distances["right_shoulder"].to_numpy() == pytest.approx(np.full(5, np.hypot(5, 10) / 20))
    scaled = features.normalised_distances(3 * xy + 11, *args)
    assert scaled.to_numpy() == pytest.approx(distances.to_numpy())


def test_dominant_frequency_of_a_sinusoid_with_drift_and_a_gap():
    fps, n_frames = 25.0, 250
    time_s = np.arange(n_frames) / fps
    xy = np.zeros((n_frames, 2, 2))
    xy[:, 0, 0] = 100 + 5 * np.sin(2 * np.pi * 2.0 * time_s) + 3 * time_s  # 2 Hz on a slow drift
    xy[:, 0, 1] = 50
    xy[:, 1, 1] = 40 + 4 * np.sin(2 * np.pi * 0.5 * time_s + 1)  # 0.5 Hz
    xy[100:104, 0] = np.nan  # a short tracking gap
    table = features.dominant_frequencies(xy, ["a", "b"], fps, segment_s=4.0)
    assert table["dominant_frequency_hz"].tolist() == pytest.approx([2.0, 0.5])
    xy[::2, 1] = np.nan  # most frames missing: no answer
    xy[1::4, 1] = np.nan
    assert np.isnan(features.dominant_frequencies(xy, ["a", "b"], fps)["dominant_frequency_hz"][1])


def test_features_on_ground_truth_tracks_equal_the_angles_of_the_poses():
    """feature_table puts joint_angle's values in the named columns, with velocity and distances
    beside."""
    names = [
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "right_hip",
        "left_hip",
    ]
    opening = np.linspace(30, 150, 50)  # elbow opening from 30 to 150 degrees
    xy = np.zeros((50, 6, 2))
    xy[:, 0] = [0, 0]
    xy[:, 1] = [10, 0]
    xy[:, 2, 0] = 10 - 10 * np.cos(np.radians(opening))
    xy[:, 2, 1] = 10 * np.sin(np.radians(opening))
    xy[:, 3], xy[:, 4], xy[:, 5] = [0, 10], [20, 0], [20, 10]
    table = features.feature_table(
        xy,
        names,
        25.0,
        {"right_elbow": ["right_shoulder", "right_elbow", "right_wrist"]},
        ["right_shoulder", "left_shoulder", "right_hip", "left_hip"],
        [["right_shoulder", "right_hip"]],
    )
    assert table["angle_right_elbow_deg"].to_numpy() == pytest.approx(opening)
    assert table["angular_velocity_right_elbow_deg_s"].to_numpy() == pytest.approx(
        np.full(50, 120 / 49 * 25)
    )
    assert table["time_s"].iloc[-1] == pytest.approx(49 / 25)
    assert {f"distance_{n}_norm" for n in names} <= set(table)


# --- drawing, filtering, bad input ----------------------------------------------------------------


def test_points_under_the_pcutoff_are_not_drawn_nor_their_skeleton_lines():
    frame = np.zeros((40, 60, 3), np.uint8)
    pose = np.array(
        [[10, 10, 0.9], [30, 10, 0.9], [50, 30, 0.2]]
    )  # the third point is under the cutoff
    colours = bodypart_colours(3)
    style = MovieStyle(["a", "b", "c"], [["a", "b"], ["b", "c"]], 0.6, colours)
    drawn = draw_pose(frame.copy(), pose, style)
    assert tuple(drawn[10, 10]) == colours[0] and tuple(drawn[10, 30]) == colours[1]
    assert (drawn[10, 20] > 200).all()  # the (anti-aliased) white line a-b
    assert not drawn[27:34, 47:54].any()  # no point c
    assert not drawn[15:26, 35:45].any()  # no line b-c


def test_median_filter_is_deeplabcuts_medfilt_and_keeps_likelihoods():
    from scipy import signal

    columns = pd.MultiIndex.from_product(
        [["DLC_x"], ["wrist"], ["x", "y", "likelihood"]], names=["scorer", "bodyparts", "coords"]
    )
    values = np.column_stack([np.arange(15.0), np.full(15, 4.0), np.linspace(0.1, 1, 15)])
    values[7, 0] = 500  # a one-frame jump
    table = pd.DataFrame(values, columns=columns)
    filtered = filter_predictions(table, OmegaConf.create({"type": "median", "window_length": 5}))
    assert filtered[("DLC_x", "wrist", "x")].to_numpy() == pytest.approx(
        signal.medfilt(values[:, 0], 5)
    )
    assert filtered[("DLC_x", "wrist", "x")][7] == 8
    assert filtered[("DLC_x", "wrist", "likelihood")].to_numpy() == pytest.approx(values[:, 2])
    with pytest.raises(DataError, match="filter.type"):
        filter_predictions(table, OmegaConf.create({"type": "kalman"}))


def test_missing_and_corrupt_videos_are_named(tmp_path):
    with pytest.raises(DataError, match="nowhere.mp4 does not exist"):
        collect_videos([str(tmp_path / "nowhere.mp4")])
    corrupt = tmp_path / "P01_S1.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(500))
    with pytest.raises(DataError, match="P01_S1.mp4 cannot be decoded"):
        read_video_info(corrupt)
    with pytest.raises(DataError, match="inside"):
        check_output_dir(tmp_path / "out", [corrupt], None)


# --- real DeepLabCut, real MLflow -----------------------------------------------------------------


def configured(root: Path, *overrides: str):
    return compose_config(root, *tiny_overrides(root), "weights=random", *overrides)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny cohort, prepared, and condition 2 trained from random weights: (root, training
    run id, checksums)."""
    root = tmp_path_factory.mktemp("analyze")
    cfg = tiny_project(root, "weights=random", "labelled_frames=2")
    train(cfg)
    client = MlflowClient(str(cfg.mlflow.tracking_uri))
    experiment = client.get_experiment_by_name("synthetic_clinical")
    (run,) = client.search_runs([experiment.experiment_id], "tags.model_source = 'trained'")
    return root, run.info.run_id, tree_checksums(Path(cfg.data.root))


@pytest.fixture(scope="module")
def analysed(trained):
    """The generalisation videos analysed with the best run of condition 2, media allowed,
    compared with ground truth."""
    root, _, _ = trained
    cfg = configured(
        root,
        "analysis.labelled_frames=2",
        "analysis.compare_ground_truth=true",
        "analysis.pcutoff=0.01",
    )
    return cfg, analyze(cfg)


def artifact_paths(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    found = []
    for item in client.list_artifacts(run_id, path):
        found += artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return found


@pytest.mark.slow
def test_predictions_in_deeplabcuts_format_one_row_per_frame(trained, analysed):
    cfg, summary = analysed
    videos = [r["video"] for r in summary["results"]]
    split = pd.read_csv(Path(cfg.paths.prepared_dir) / "synthetic_clinical" / "split.csv")
    assert sorted(v.path.stem for v in videos) == sorted(
        split.loc[split["set"] == "generalisation", "video"]
    )
    for video in videos:
        folder = summary["output_dir"] / video.path.stem
        (h5,) = folder.glob(f"{video.path.stem}DLC_*.h5")
        table = pd.read_hdf(h5)
        assert table.columns.names == ["scorer", "bodyparts", "coords"]
        assert table.columns.get_level_values("bodyparts").unique().tolist() == cfg_bodyparts(cfg)
        assert len(table) == video.n_frames == 12
        from_csv = pd.read_csv(h5.with_suffix(".csv"), header=[0, 1, 2], index_col=0)
        assert from_csv.to_numpy() == pytest.approx(table.to_numpy(), abs=1e-4)
        (movie,) = folder.glob("*_labeled.mp4")
        capture = cv2.VideoCapture(str(movie))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
        capture.release()
        assert len(pd.read_csv(folder / "features.csv")) == 12
        assert "dominant_frequency_hz" in pd.read_csv(folder / "frequencies.csv")


def cfg_bodyparts(cfg) -> list[str]:
    import yaml

    return yaml.safe_load((Path(cfg.data.root) / "dataset.yaml").read_text())["bodyparts"]


@pytest.mark.slow
def test_trust_beside_each_point_summary_timeline_movie_and_labelling_folder(analysed):
    """The default trust (likelihood, flagged under 0.6) of every point in trust.h5/.csv, the
    per-video summary, the flags in features.csv, the timeline, red X in the movie and the flagged
    frames as a labelling folder DeepLabCut reads; MLflow gets the summary, not the frames."""
    from deeplabcut.generate_training_dataset.trainingsetmanipulation import (
        merge_annotateddatasets,
    )
    from deeplabcut.utils.auxiliaryfunctions import read_config

    cfg, summary = analysed
    bodyparts = cfg_bodyparts(cfg)
    frames_flagged, n_frames = 0, 0
    for result in summary["results"]:
        stem = result["video"].path.stem
        folder = summary["output_dir"] / stem
        (h5,) = folder.glob(f"{stem}DLC_*.h5")
        likelihood = pd.read_hdf(h5).xs("likelihood", level="coords", axis=1).to_numpy()
        table = pd.read_hdf(folder / "trust.h5")
        assert table.columns.names == ["scorer", "bodyparts", "coords"]
        assert table.columns.get_level_values("bodyparts").unique().tolist() == bodyparts
        assert table.xs("trust", level="coords", axis=1).to_numpy() == pytest.approx(likelihood)
        flagged = table.xs("flagged", level="coords", axis=1).to_numpy().astype(bool)
        assert (flagged == (likelihood < 0.6)).all()
        from_csv = pd.read_csv(folder / "trust.csv", header=[0, 1, 2], index_col=0)
        assert from_csv.to_numpy() == pytest.approx(table.to_numpy(), abs=1e-4)

        row = pd.read_csv(folder / "trust_summary.csv").iloc[0]
        assert row["frames_flagged"] == flagged.any(axis=1).sum() and row["n_frames"] == 12
        assert row["points_flagged_share"] == pytest.approx(flagged.mean(), abs=1e-4)
        frames_flagged, n_frames = frames_flagged + flagged.any(axis=1).sum(), n_frames + 12
        features_table = pd.read_csv(folder / "features.csv")
        elbow = [bodyparts.index(p) for p in ("right_shoulder", "right_elbow", "right_wrist")]
        assert features_table["flagged_angle_right_elbow"].tolist() == (
            flagged[:, elbow].any(axis=1).tolist()
        )
        timeline = cv2.imread(str(folder / "trust_timeline.png"))
        assert timeline.shape[:2] == (750, 900) and timeline.std() > 10

        exported = result["trust"].exported_frames
        assert len(exported) == row["frames_exported"] <= 20
        assert set(exported) <= set(np.flatnonzero(flagged.any(axis=1)))
        assert np.all(np.diff(exported) >= 5)  # export_min_gap_frames
        if flagged.any():
            assert exported
            config = read_config(str(folder / "labelling" / "config.yaml"))
            assert Path(config["project_path"]) == (folder / "labelling").resolve()
            (folder / "training-set").mkdir()
            labels = merge_annotateddatasets(config, folder / "training-set")
            assert len(labels) == len(exported)
            images = sorted((folder / "labelling" / "labeled-data" / stem).glob("img*.png"))
            assert [int(p.stem[3:]) for p in images] == exported
            # the movie marks the flagged, drawn points: red where the model put the point
            frame = exported[0]
            j = int(np.flatnonzero(flagged[frame] & (likelihood[frame] >= 0.01))[0])
            x, y = table.iloc[frame][table.columns[0][0]][bodyparts[j]][["x", "y"]].astype(int)
            (movie,) = folder.glob("*_labeled.mp4")
            capture = cv2.VideoCapture(str(movie))
            capture.set(cv2.CAP_PROP_POS_FRAMES, frame)
            ok, image = capture.read()
            capture.release()
            patch = image[max(y - 3, 0) : y + 4, max(x - 3, 0) : x + 4].astype(int)
            assert ok and ((patch[..., 2] - patch[..., :2].max(axis=2)) > 60).any()

    client = MlflowClient(str(cfg.mlflow.tracking_uri))
    run = client.get_run(summary["run_id"])
    assert run.data.metrics["trust_frames_flagged_share"] == pytest.approx(
        frames_flagged / n_frames
    )
    assert 0 <= run.data.metrics["trust_score_time_ratio"] < 0.25  # at most 25 % more time
    assert run.data.metrics["trust_time_ratio"] >= run.data.metrics["trust_score_time_ratio"]
    assert run.data.tags["trust_score"] == "likelihood"
    paths = artifact_paths(client, run.info.run_id)
    assert "tables/trust_summary.csv" in paths and any(
        p.endswith("trust_timeline.png") for p in paths
    )
    assert not any("labeled-data" in p or "labelling" in p for p in paths)  # frames stay local
    logged = pd.read_csv(client.download_artifacts(run.info.run_id, "tables/trust_summary.csv"))
    assert logged["video"].str.startswith("video-").all()  # pseudonyms only


@pytest.mark.slow
def test_mlflow_run_is_linked_has_angle_errors_and_pseudonyms_only(trained, analysed):
    root, training_run_id, checksums = trained
    cfg, summary = analysed
    client = MlflowClient(str(cfg.mlflow.tracking_uri))
    run = client.get_run(summary["run_id"])
    assert run.info.run_name == "analyze frames=2"
    assert (
        run.data.tags["model_run_id"] == training_run_id
        and "mlflow.parentRunId" not in run.data.tags
    )
    assert "labelled_frames" not in run.data.tags  # the report must not take it for a condition
    errors = summary["angle_errors"].set_index("joint")
    for joint in ("right_elbow", "left_knee", "right_shoulder", "left_hip"):
        assert 0 <= run.data.metrics[f"angle_error_{joint}_deg"] <= 180
        assert run.data.metrics[f"angle_error_{joint}_deg"] == pytest.approx(
            errors.loc[joint, "angle_error_deg"]
        )
    assert (summary["output_dir"] / "ground_truth" / "angle_errors.csv").is_file()

    paths = artifact_paths(client, run.info.run_id)
    assert any(p.endswith("_labeled.mp4") for p in paths) and any(
        p.endswith("labeled_frame.png") for p in paths
    )
    real_names = set(pd.read_csv(Path(cfg.data.root) / "participants.csv")["video"]) | set(
        pd.read_csv(Path(cfg.data.root) / "participants.csv")["participant"]
    )
    texts = [
        client.download_artifacts(run.info.run_id, p)
        for p in paths
        if p.endswith((".csv", ".yaml"))
    ]
    for name in real_names:
        assert not any(name in p for p in paths), name
        assert not any(name in Path(t).read_text() for t in texts), name
        assert not any(name in value for value in run.data.params.values()), name
    assert tree_checksums(Path(cfg.data.root)) == checksums  # raw videos and annotations untouched


@pytest.mark.slow
def test_media_off_logs_no_movies_or_frames_and_filter_writes_filtered_tracks(trained):
    root, training_run_id, _ = trained
    video = Path(configured(root).data.root) / "videos" / "P01_S1.mp4"
    cfg = configured(
        root,
        f"analysis.run_id={training_run_id}",
        f"analysis.videos=[{video}]",
        "data.log_media=false",
        "analysis.filter.type=median",
        "analysis.filter.window_length=3",
        "analysis.movie.enabled=false",
    )
    summary = analyze(cfg)
    client = MlflowClient(str(cfg.mlflow.tracking_uri))
    paths = artifact_paths(client, summary["run_id"])
    assert paths and not any(p.endswith((".mp4", "labeled_frame.png")) for p in paths)
    assert any(p.endswith("_filtered.h5") for p in paths)
    folder = summary["output_dir"] / "P01_S1"
    (raw,) = folder.glob("P01_S1DLC_*[!d].h5")
    (filtered,) = folder.glob("*_filtered.h5")
    from scipy import signal

    raw_x = pd.read_hdf(raw).xs("x", level="coords", axis=1).to_numpy()
    filtered_x = pd.read_hdf(filtered).xs("x", level="coords", axis=1).to_numpy()
    assert filtered_x == pytest.approx(np.column_stack([signal.medfilt(c, 3) for c in raw_x.T]))


@pytest.mark.slow
def test_runs_without_a_stored_model_are_refused_with_the_fix(trained):
    root, training_run_id, _ = trained
    cfg = configured(root)
    client = MlflowClient(str(cfg.mlflow.tracking_uri))
    experiment_id = client.get_experiment_by_name("synthetic_clinical").experiment_id
    initial = client.create_run(
        experiment_id, tags={"labelled_frames": "0", "model_source": "initial model (x)"}
    )
    with pytest.raises(DataError, match="initial model.*analysis.labelled_frames=20"):
        find_model_run(OmegaConf.create({"run_id": initial.info.run_id}), experiment_id)
    empty = client.create_run(experiment_id, tags={"model_source": "trained"})
    with pytest.raises(DataError, match=f"{empty.info.run_id} has no artifact model/"):
        download_model_and_skeleton(
            find_model_run(OmegaConf.create({"run_id": empty.info.run_id}), experiment_id),
            root / "download",
        )
    # A run that reused the model and scores better is chosen; its weights come from the training
    # run.
    reused = client.create_run(
        experiment_id,
        tags={"labelled_frames": "2", "model_source": f"reused from run {training_run_id}"},
    )
    client.log_metric(reused.info.run_id, "mae_generalisation_px", -1.0)
    client.set_terminated(reused.info.run_id)
    chosen = find_model_run(
        OmegaConf.create({"run_id": None, "labelled_frames": 2, "metric": "mae_generalisation_px"}),
        experiment_id,
    )
    assert chosen.run_id == reused.info.run_id and chosen.model_run_id == training_run_id
    with pytest.raises(DataError, match="labelled_frames=7"):
        find_model_run(
            OmegaConf.create(
                {"run_id": None, "labelled_frames": 7, "metric": "mae_generalisation_px"}
            ),
            experiment_id,
        )
