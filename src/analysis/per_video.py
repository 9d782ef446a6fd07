"""One video's analysis: DeepLabCut's predictions (filtered on request), its features, plots and
result movie, written atomically into the video's output folder."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from src import engine
from src.analysis import features
from src.analysis.movies import MovieStyle, write_movie
from src.analysis.trust import (
    TrackedVideo,
    TrustSettings,
    VideoTrust,
    analyse_trust,
    feature_flags,
    plot_timeline,
)
from src.analysis.videos import VideoInfo
from src.errors import DataError
from src.files import atomic_directory

log = logging.getLogger(__name__)


@dataclass
class Points:
    """What is computed from the model's points: its bodyparts, the skeleton drawn between them
    and the joint angles (name: [proximal, joint, distal]) that only use tracked points."""

    bodyparts: list[str]
    skeleton: list[list[str]]
    angles: dict[str, list[str]]


def points_for(
    analysis: DictConfig, bodyparts: list[str], model_skeleton: list[list[str]]
) -> Points:
    """``analysis.skeleton`` (default: the model's) and ``analysis.joint_angles`` for a model
    tracking ``bodyparts``; a DataError when a setting names points the model does not track
    (joint angles that do are left out with a warning)."""
    skeleton = (
        [list(p) for p in analysis.skeleton] if analysis.skeleton is not None else model_skeleton
    )
    unknown = sorted({b for pair in skeleton for b in pair} - set(bodyparts))
    if unknown:
        raise DataError(
            f"analysis.skeleton names {unknown}, which the model does not track ({bodyparts}); "
            "fix it."
        )
    angles, skipped = features.usable_angles(
        OmegaConf.to_container(analysis.joint_angles, resolve=True), bodyparts
    )
    if skipped:
        log.warning("joint angles %s need points the model does not track; left out", skipped)
    for name in ("body_centre", "body_size"):
        points = (
            set(analysis[name])
            if name == "body_centre"
            else {b for pair in analysis[name] for b in pair}
        )
        if not points <= set(bodyparts):
            raise DataError(
                f"analysis.{name} names {sorted(points - set(bodyparts))}, which the model does "
                f"not track ({bodyparts}); set analysis.{name} to tracked points."
            )
    return Points(bodyparts, skeleton, angles)


@dataclass
class Tracker:
    """DeepLabCut's inference runner of one model snapshot, the model's pose config and the scorer
    that names its predictions."""

    runner: object
    pose_config: dict
    scorer: str

    @classmethod
    def for_model(cls, model: engine.Model, analysis: DictConfig, scorer: str) -> Tracker:
        """The runner for ``analysis.snapshot``, ``analysis.batch_size`` and ``analysis.device``."""
        pose_config = engine.read_pose_config(model.pose_config)
        runner = engine.video_inference_runner(
            model, str(analysis.snapshot), int(analysis.batch_size), str(analysis.device)
        )
        return cls(runner, pose_config, scorer)


def track_video(tracker: Tracker, video: VideoInfo, folder: Path) -> tuple[pd.DataFrame, float]:
    """DeepLabCut's video inference (with its tqdm progress bar) and its H5 + CSV writer.

    Returns the predictions (DeepLabCut's scorer/bodyparts/coords columns, one row per frame) and
    frames/s.
    """
    start = time.perf_counter()
    predictions = engine.video_inference(tracker.runner, video.path)
    seconds = time.perf_counter() - start
    if not predictions:
        raise DataError(
            f"{video.path}: DeepLabCut decoded no frame; re-encode the video (ffmpeg -c:v libx264)."
        )
    table = engine.predictions_table(
        predictions, tracker.scorer, tracker.pose_config, folder, video.path.stem + tracker.scorer
    )
    return table, len(predictions) / seconds


def poses_of(table: pd.DataFrame, bodyparts: list[str]) -> np.ndarray:
    """(n_frames, n_bodyparts, 3) of x, y, likelihood from a DeepLabCut predictions table."""
    scorer = table.columns.get_level_values("scorer")[0]
    return np.stack(
        [
            table[scorer][bodypart][["x", "y", "likelihood"]].to_numpy(dtype=float)
            for bodypart in bodyparts
        ],
        axis=1,
    )


def other_models_xy(trackers: list[Tracker], video: VideoInfo, bodyparts: list[str]) -> list:
    """Each other model's points (n_frames, n_points, 2) on the video, for the trust score's model
    disagreement: one more tracking per model."""
    found = []
    for other in trackers:
        with tempfile.TemporaryDirectory(prefix="analyze-other-") as scratch:
            table, _ = track_video(other, video, Path(scratch))
        found.append(poses_of(table, bodyparts)[..., :2])
    return found


@dataclass(frozen=True)
class TrustCheck:
    """What scores the trust of every point: its settings and the trackers of the other models
    whose disagreement it measures."""

    settings: TrustSettings
    other_trackers: list[Tracker] = field(default_factory=list)


def analyse_video(
    analysis: DictConfig,
    tracker: Tracker,
    points: Points,
    video: VideoInfo,
    folder: Path,
    trust: TrustCheck | None = None,
) -> dict:
    """Track one video into ``folder`` (written atomically) and compute its features and, with
    ``trust``, the trust of every point; returns what was made."""
    started = time.perf_counter()
    with atomic_directory(folder) as staging:
        table, frames_per_s = track_video(tracker, video, staging)
        stem = video.path.stem + tracker.scorer
        if str(analysis.filter.type) != "none":
            table = _filtered(table, analysis, staging, stem)
        poses = poses_of(table, points.bodyparts)
        video_trust, other_seconds = None, 0.0
        if trust is not None:
            video_trust, other_seconds = _video_trust(
                analysis, trust, points, video, (table, poses), (staging, folder)
            )
        feature_table, frequencies = write_features(
            analysis, points, video, poses, staging, video_trust
        )
        if video_trust is not None:
            plot_start = time.perf_counter()
            xy = features.masked_positions(poses, float(analysis.pcutoff))
            plot_timeline(
                video_trust, points.bodyparts, feature_table, xy, staging / "trust_timeline.png"
            )
            video_trust.seconds += time.perf_counter() - plot_start
        movie_frames = None
        if analysis.movie.enabled:
            movie_frames = _labelled_movie(
                analysis, points, video, poses, staging / f"{stem}_labeled.mp4", video_trust
            )
    return {
        "video": video,
        "folder": folder,
        "scorer": tracker.scorer,
        "poses": poses,
        "features": feature_table,
        "frequencies": frequencies,
        "frames_per_s": frames_per_s,
        "movie_frames": movie_frames,
        "stem": stem,
        "trust": video_trust,
        "seconds": time.perf_counter() - started,  # the whole video's analysis
        "other_models_seconds": other_seconds,  # tracking by the other models (disagreement)
    }


def _filtered(table: pd.DataFrame, analysis: DictConfig, staging: Path, stem: str) -> pd.DataFrame:
    """The predictions filtered by ``analysis.filter``, written beside them (``<stem>_filtered.h5``,
    ``.csv``)."""
    table = engine.filter_predictions(table, analysis.filter)
    table.to_hdf(staging / f"{stem}_filtered.h5", key="df_with_missing", format="table", mode="w")
    table.to_csv(staging / f"{stem}_filtered.csv")
    return table


def _video_trust(
    analysis: DictConfig,
    trust: TrustCheck,
    points: Points,
    video: VideoInfo,
    tracked: tuple[pd.DataFrame, np.ndarray],
    folders: tuple[Path, Path],
) -> tuple[VideoTrust, float]:
    """The trust of every point of the video (``tracked``: its predictions table and poses;
    ``folders``: the staging folder written and the final one), and the seconds the other models
    took to track it."""
    (table, poses), (staging, folder) = tracked, folders
    other_start = time.perf_counter()
    other_xy = other_models_xy(list(trust.other_trackers), video, points.bodyparts)
    other_seconds = time.perf_counter() - other_start
    tracked_video = TrackedVideo(
        video, poses, points.bodyparts, points.skeleton, float(analysis.pcutoff)
    )
    video_trust = analyse_trust(trust.settings, tracked_video, table, staging, folder, other_xy)
    return video_trust, other_seconds


def _labelled_movie(
    analysis: DictConfig,
    points: Points,
    video: VideoInfo,
    poses: np.ndarray,
    path: Path,
    video_trust: VideoTrust | None,
) -> int:
    """The video with its points and skeleton drawn (and flagged points marked) at ``path``."""
    style = MovieStyle.rainbow(
        points.bodyparts,
        points.skeleton,
        float(analysis.pcutoff),
        int(analysis.movie.point_radius),
        int(analysis.movie.line_width),
    )
    return write_movie(
        video,
        poses,
        style,
        path,
        video_trust.flagged if video_trust is not None else None,
    )


def write_features(
    analysis: DictConfig,
    points: Points,
    video: VideoInfo,
    poses: np.ndarray,
    folder: Path,
    video_trust: VideoTrust | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """features.csv, frequencies.csv and their plots in ``folder`` from the points that pass
    ``analysis.pcutoff``; returns the features and the frequencies. Points the trust score flags
    are left out (``analysis.trust.features: drop``) or the features using them are marked in
    ``flagged_*`` columns (``mark``)."""
    bodyparts = points.bodyparts
    xy = features.masked_positions(poses, float(analysis.pcutoff))
    mode = video_trust.settings.features if video_trust is not None else None
    if mode == "drop":
        xy[video_trust.flagged] = np.nan
    feature_table = features.feature_table(
        xy,
        bodyparts,
        video.fps,
        points.angles,
        list(analysis.body_centre),
        [list(pair) for pair in analysis.body_size],
    )
    if mode == "mark":
        flags = feature_flags(
            video_trust.flagged, bodyparts, points.angles, list(analysis.body_centre)
        )
        feature_table = pd.concat([feature_table, flags], axis=1)
    feature_table.to_csv(folder / "features.csv", index=False, float_format="%.4f")
    segment_s = float(analysis.spectrum_segment_s)
    frequencies = features.dominant_frequencies(xy, bodyparts, video.fps, segment_s)
    if mode == "mark":
        frequencies["flagged_share"] = video_trust.flagged.mean(axis=0)
    frequencies.to_csv(folder / "frequencies.csv", index=False, float_format="%.4f")
    features.plot_time_series(xy, bodyparts, feature_table, folder / "timeseries.png")
    features.plot_spectra(xy, bodyparts, video.fps, segment_s, folder / "spectra.png")
    return feature_table, frequencies


def summary_row(result: dict) -> dict:
    """One video's features in one row: mean, SD of each angle, mean |angular velocity|, dominant
    frequencies."""
    table = result["features"]
    row = {"video": result["video"].path.stem, "n_frames": len(table), "fps": result["video"].fps}
    for column in [c for c in table if c.startswith("angle_")]:
        name = column.removeprefix("angle_").removesuffix("_deg")
        row[f"{name}_mean_deg"] = table[column].mean()
        row[f"{name}_sd_deg"] = table[column].std()
        row[f"{name}_abs_velocity_mean_deg_s"] = (
            table[f"angular_velocity_{name}_deg_s"].abs().mean()
        )
    for item in result["frequencies"].itertuples():
        row[f"{item.bodypart}_dominant_frequency_hz"] = item.dominant_frequency_hz
    return row
