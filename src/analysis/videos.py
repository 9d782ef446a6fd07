"""Analyse videos with a trained model: DeepLabCut's predictions, result movies, time series and features.

    python -m src.analyze analysis.labelled_frames=20 'analysis.videos=[/path/to/videos]'   # best run of a condition
    python -m src.analyze analysis.run_id=<MLflow run id> 'analysis.videos=[a.mp4,b.mp4]'   # one model run
    python -m src.analyze analysis.labelled_frames=20 analysis.compare_ground_truth=true    # synthetic: angle errors

Per video, under ``<analysis.output_dir>/<model run id>/<video name>/`` (the data folder: names there may
identify people): DeepLabCut's predictions ``<video>DLC_<scorer>.h5/.csv`` (and ``_filtered`` with a filter),
the result movie ``<video>DLC_<scorer>_labeled.mp4``, ``features.csv`` (joint angles, angular velocities,
normalised distances per frame), ``frequencies.csv`` and plots. One new MLflow run per analysis, in the model's
experiment, tagged ``model_run_id`` (not nested: the report reads a sweep's children as its conditions); what it
logs names videos only by pseudonym, and movies and frames only when ``data.log_media`` is true.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from src import privacy
from src.analysis import features
from src.data.dataset import VIDEO_SUFFIXES, probe_video
from src.engine import pytorch as engine
from src.errors import DataError
from src.files import atomic_directory
from src.tracking import store
from src.tracking.queries import download_model

log = logging.getLogger(__name__)


os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@dataclass
class ModelRun:
    """The MLflow run an analysis is linked to and the run whose artifact ``model/`` holds its weights."""

    run: mlflow.entities.Run
    model_run_id: str  # differs from run.info.run_id when the run reused an earlier run's model

    @property
    def run_id(self) -> str:
        return self.run.info.run_id


@dataclass
class VideoInfo:
    path: Path
    fps: float
    n_frames: int
    width: int
    height: int


def find_model_run(analysis_cfg: DictConfig, experiment_id: str) -> ModelRun:
    """``analysis.run_id``, or the best FINISHED run of ``analysis.labelled_frames`` by ``analysis.metric`` (lowest)."""
    client = MlflowClient()
    if analysis_cfg.run_id:
        try:
            run = client.get_run(str(analysis_cfg.run_id))
        except mlflow.exceptions.MlflowException:
            raise DataError(
                f"analysis.run_id={analysis_cfg.run_id} is no run of the MLflow store {mlflow.get_tracking_uri()}; "
                "copy a run id from the MLflow UI (make ui) or give analysis.labelled_frames=<n> instead."
            ) from None
        return _with_model(run)
    if analysis_cfg.labelled_frames is None:
        raise DataError(
            "say which model to use: analysis.run_id=<MLflow run id> or analysis.labelled_frames=<n> "
            "(the best finished run of that condition by analysis.metric)."
        )
    n_frames, metric = int(analysis_cfg.labelled_frames), str(analysis_cfg.metric)
    runs = client.search_runs(
        [experiment_id],
        f"tags.labelled_frames = '{n_frames}' and attributes.status = 'FINISHED'",
        max_results=5000,
    )
    ranked = sorted(
        (r for r in runs if metric in r.data.metrics),
        key=lambda r: (r.data.metrics[metric], r.info.start_time),
    )
    if not ranked:
        raise DataError(
            f"no FINISHED run of labelled_frames={n_frames} with metric {metric} in MLflow experiment "
            f"{experiment_id} ({mlflow.get_tracking_uri()}); train it (`python -m src.train "
            f"labelled_frames={n_frames}`) or choose another analysis.metric / analysis.run_id."
        )
    return _with_model(ranked[0])


def _with_model(run: mlflow.entities.Run) -> ModelRun:
    source = run.data.tags.get("model_source", "")
    if source.startswith("initial model"):
        raise DataError(
            f"run {run.info.run_id} ({run.info.run_name}) evaluated the initial model, which is not stored "
            "in MLflow (condition 0); analyse with a trained condition, e.g. analysis.labelled_frames=20, "
            "or train one (`python -m src.train labelled_frames=<n>`)."
        )
    if source.startswith(
        store.REUSED_PREFIX
    ):  # same model_key: the weights live in the run that trained them
        return ModelRun(run, source.removeprefix(store.REUSED_PREFIX).split()[0])
    return ModelRun(run, run.info.run_id)


def download_model_and_skeleton(
    model_run: ModelRun, folder: Path
) -> tuple[engine.Model, list[list[str]]]:
    """The run's ``model/`` artifact as a model, and the skeleton of its data set (from its project config)."""
    try:
        model = download_model(model_run.model_run_id, folder)
    except (mlflow.exceptions.MlflowException, OSError):
        raise DataError(
            f"MLflow run {model_run.model_run_id} has no artifact model/ (its training did not finish, or it "
            "is not a training run); choose another analysis.run_id or analysis.labelled_frames."
        ) from None
    project_config = model.pose_config.parent / "project_config.yaml"
    skeleton = []
    if project_config.is_file():
        skeleton = yaml.safe_load(project_config.read_text(encoding="utf-8")).get("skeleton") or []
    return model, [list(pair) for pair in skeleton]


def collect_videos(entries: list[str]) -> list[Path]:
    """Video files named in ``entries`` (files, or folders whose video files are taken), in a stable order."""
    videos = []
    for entry in entries:
        path = Path(str(entry))
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
            )
            if not found:
                raise DataError(
                    f"{path} holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))}); "
                    "point analysis.videos at video files or a folder of them."
                )
            videos += found
        elif path.is_file():
            videos.append(path)
        else:
            raise DataError(
                f"{path} does not exist; fix the path in analysis.videos (quote paths with spaces: "
                "'analysis.videos=[\"/data/Aufnahmen März/a.mp4\"]')."
            )
    stems = [v.stem for v in videos]
    if len(set(stems)) != len(stems):
        raise DataError(
            f"two videos share a name ({sorted({s for s in stems if stems.count(s) > 1})}): their outputs "
            "would collide; analyse them in separate runs."
        )
    return videos


def read_video_info(path: Path) -> VideoInfo:
    """fps, frame count and size of a video; a DataError when it is missing, empty or cannot be decoded."""
    import cv2

    n_frames, width, height = probe_video(path)
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    if not fps or fps <= 0 or not np.isfinite(fps):
        raise DataError(f"{path} states no frame rate; re-encode it with one (ffmpeg -r 25 ...).")
    return VideoInfo(path, float(fps), n_frames, width, height)


def check_output_dir(output_dir: Path, videos: list[Path], data_root: str | None) -> None:
    """Raw data are read only: refuse an output folder inside a video's folder or the data set's root."""
    output = output_dir.resolve()
    protected = {v.parent.resolve() for v in videos} | (
        {Path(data_root).resolve()} if data_root else set()
    )
    for folder in protected:
        if output == folder or folder in output.parents:
            raise DataError(
                f"analysis.output_dir={output_dir} lies inside {folder}, which holds raw data that is only "
                "read; choose a folder outside it (default: <paths.data_dir>/analysis)."
            )


def scorer_name(cfg: DictConfig, model_run: ModelRun, snapshot: str) -> str:
    """DeepLabCut-style scorer (``DLC_<model>_<data>_<run>_<snapshot>``): the H5 header and the file names."""
    return f"DLC_{cfg.model.name}_{cfg.data.name}_{model_run.model_run_id[:8]}_{snapshot}"


def inference_runner(model: engine.Model, snapshot: str, batch_size: int, device: str):
    """DeepLabCut's pose inference runner for a single-individual model, as its analyze_videos builds it."""
    from deeplabcut.pose_estimation_pytorch.apis.utils import get_pose_inference_runner

    return get_pose_inference_runner(
        model_config=engine.read_pose_config(model.pose_config),
        snapshot_path=model.snapshot(snapshot),
        batch_size=batch_size,
        device=None if device == "auto" else device,
        max_individuals=1,
    )


def track_video(
    runner, pose_config: dict, video: VideoInfo, folder: Path, scorer: str
) -> tuple[pd.DataFrame, float]:
    """DeepLabCut's video inference (with its tqdm progress bar) and its H5 + CSV writer.

    Returns the predictions (DeepLabCut's scorer/bodyparts/coords columns, one row per frame) and frames/s.
    """
    from deeplabcut.pose_estimation_pytorch.apis.videos import (
        create_df_from_prediction,
        video_inference,
    )

    start = time.perf_counter()
    predictions = video_inference(video.path, runner)
    seconds = time.perf_counter() - start
    if not predictions:
        raise DataError(
            f"{video.path}: DeepLabCut decoded no frame; re-encode the video (ffmpeg -c:v libx264)."
        )
    table = create_df_from_prediction(
        predictions,
        scorer,
        multi_animal=False,
        model_cfg=pose_config,
        output_path=folder,
        output_prefix=video.path.stem + scorer,
        save_as_csv=True,
    )
    return table, len(predictions) / seconds


def filter_predictions(table: pd.DataFrame, filter_cfg: DictConfig) -> pd.DataFrame:
    """DeepLabCut's ``filterpredictions`` on a predictions table (it needs a project; this does the same on the table).

    median: scipy's medfilt of x and y; arima: DeepLabCut's SARIMAX fit per coordinate; spline: DeepLabCut's
    gap filling. The code mirrors deeplabcut/post_processing/filtering.py and calls its helpers.
    """
    from scipy import signal

    kind = str(filter_cfg.type)
    if kind == "median":
        filtered = table.copy()
        coords = filtered.columns.get_level_values("coords") != "likelihood"
        filtered.loc[:, coords] = table.loc[:, coords].apply(
            signal.medfilt, args=(int(filter_cfg.window_length),), axis=0
        )
        return filtered
    if kind == "arima":
        from deeplabcut.refine_training_dataset.outlier_frames import FitSARIMAXModel

        values = table.to_numpy().reshape((len(table), -1, 3))
        smoothed = np.empty_like(values)
        for j in range(values.shape[1]):
            x, y, likelihood = values[:, j].T
            mean_x, _ = FitSARIMAXModel(
                x,
                likelihood,
                float(filter_cfg.p_bound),
                float(filter_cfg.alpha),
                int(filter_cfg.ar_degree),
                int(filter_cfg.ma_degree),
                False,
            )
            mean_y, _ = FitSARIMAXModel(
                y,
                likelihood,
                float(filter_cfg.p_bound),
                float(filter_cfg.alpha),
                int(filter_cfg.ar_degree),
                int(filter_cfg.ma_degree),
                False,
            )
            mean_x[0], mean_y[0] = x[0], y[0]
            smoothed[:, j] = np.c_[mean_x, mean_y, likelihood]
        return pd.DataFrame(
            smoothed.reshape((len(table), -1)), columns=table.columns, index=table.index
        )
    if kind == "spline":
        from deeplabcut.post_processing.filtering import columnwise_spline_interp

        filtered = table.copy()
        is_xy = filtered.columns.get_level_values("coords").isin(("x", "y"))
        xy = filtered.loc[:, is_xy].to_numpy(copy=True)
        filled = columnwise_spline_interp(xy, int(filter_cfg.window_length))
        xy[~np.isnan(filled)] = filled[~np.isnan(filled)]
        filtered.loc[:, is_xy] = xy
        return filtered
    raise DataError(
        f"analysis.filter.type={kind!r} is unknown; use none | median | arima | spline."
    )


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


def bodypart_colours(n_bodyparts: int) -> list[tuple[int, int, int]]:
    """One BGR colour per bodypart along a rainbow, as DeepLabCut's labelled videos use."""
    import cv2

    ramp = np.linspace(0, 255, max(n_bodyparts, 1)).astype(np.uint8).reshape(-1, 1)
    return [tuple(int(c) for c in bgr) for bgr in cv2.applyColorMap(ramp, cv2.COLORMAP_JET)[:, 0]]


def draw_pose(
    frame: np.ndarray,
    pose: np.ndarray,
    bodyparts: list[str],
    skeleton: list[list[str]],
    pcutoff: float,
    colours: list[tuple[int, int, int]],
    radius: int = 3,
    line_width: int = 1,
) -> np.ndarray:
    """Draw one frame's points (likelihood >= pcutoff only) and the skeleton lines whose both ends are drawn."""
    import cv2

    drawn = {
        bodyparts[j]: (int(round(x)), int(round(y)))
        for j, (x, y, likelihood) in enumerate(pose)
        if likelihood >= pcutoff and np.isfinite(x) and np.isfinite(y)
    }
    for start, end in skeleton:
        if start in drawn and end in drawn:
            cv2.line(frame, drawn[start], drawn[end], (255, 255, 255), line_width, cv2.LINE_AA)
    for j, name in enumerate(bodyparts):
        if name in drawn:
            cv2.circle(frame, drawn[name], radius, colours[j], -1, cv2.LINE_AA)
    return frame


def write_movie(
    video: VideoInfo,
    poses: np.ndarray,
    bodyparts: list[str],
    skeleton: list[list[str]],
    pcutoff: float,
    path: Path,
    radius: int,
    line_width: int,
) -> int:
    """The video with points and skeleton drawn over every frame (OpenCV, mp4v); returns the frames written."""
    import cv2

    colours = bodypart_colours(len(bodyparts))
    capture = cv2.VideoCapture(str(video.path))
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"mp4v"), video.fps, (video.width, video.height)
    )
    written = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if written < len(poses):
                frame = draw_pose(
                    frame, poses[written], bodyparts, skeleton, pcutoff, colours, radius, line_width
                )
            writer.write(frame)
            written += 1
    finally:
        capture.release()
        writer.release()
    return written


def analyse_video(
    cfg: DictConfig,
    runner,
    pose_config: dict,
    video: VideoInfo,
    folder: Path,
    scorer: str,
    bodyparts: list[str],
    skeleton: list[list[str]],
    angles: dict[str, list[str]],
) -> dict:
    """Track one video into ``folder`` (written atomically) and compute its features; returns what was made."""
    analysis = cfg.analysis
    pcutoff = float(analysis.pcutoff)
    with atomic_directory(folder) as staging:
        table, frames_per_s = track_video(runner, pose_config, video, staging, scorer)
        stem = video.path.stem + scorer
        if str(analysis.filter.type) != "none":
            table = filter_predictions(table, analysis.filter)
            table.to_hdf(
                staging / f"{stem}_filtered.h5", key="df_with_missing", format="table", mode="w"
            )
            table.to_csv(staging / f"{stem}_filtered.csv")
        poses = poses_of(table, bodyparts)
        xy = features.masked_positions(poses, pcutoff)
        feature_table = features.feature_table(
            xy,
            bodyparts,
            video.fps,
            angles,
            list(analysis.body_centre),
            [list(pair) for pair in analysis.body_size],
        )
        feature_table.to_csv(staging / "features.csv", index=False, float_format="%.4f")
        frequencies = features.dominant_frequencies(
            xy, bodyparts, video.fps, float(analysis.spectrum_segment_s)
        )
        frequencies.to_csv(staging / "frequencies.csv", index=False, float_format="%.4f")
        features.plot_time_series(xy, bodyparts, feature_table, staging / "timeseries.png")
        features.plot_spectra(
            xy, bodyparts, video.fps, float(analysis.spectrum_segment_s), staging / "spectra.png"
        )
        movie_frames = None
        if analysis.movie.enabled:
            movie_frames = write_movie(
                video,
                poses,
                bodyparts,
                skeleton,
                pcutoff,
                staging / f"{stem}_labeled.mp4",
                int(analysis.movie.point_radius),
                int(analysis.movie.line_width),
            )
    return {
        "video": video,
        "folder": folder,
        "scorer": scorer,
        "poses": poses,
        "features": feature_table,
        "frequencies": frequencies,
        "frames_per_s": frames_per_s,
        "movie_frames": movie_frames,
        "stem": stem,
    }


def summary_row(result: dict) -> dict:
    """One video's features in one row: mean, SD of each angle, mean |angular velocity|, dominant frequencies."""
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


def generalisation_videos(cfg: DictConfig) -> list[Path]:
    """The video files of the generalisation participants (prepared split.csv) of the configured data set."""
    split_file = Path(cfg.paths.prepared_dir) / str(cfg.data.name) / "split.csv"
    if not split_file.is_file():
        raise DataError(
            f"{split_file} does not exist; prepare the data set first (`python -m src.prepare`)."
        )
    split = pd.read_csv(split_file)
    names = split.loc[split["set"] == "generalisation", "video"].astype(str).tolist()
    folder = Path(str(cfg.data.root)) / "videos"
    videos = []
    for name in names:
        found = sorted(p for p in folder.glob(f"{name}.*") if p.suffix.lower() in VIDEO_SUFFIXES)
        if not found:
            raise DataError(
                f"no video file {folder / name}.* for generalisation video {name} of {split_file}; "
                "regenerate the cohort (`python -m src.cohort`)."
            )
        videos.append(found[0])
    return videos


def ground_truth_positions(cfg: DictConfig) -> pd.DataFrame:
    path = Path(str(cfg.data.root)) / "ground_truth.csv"
    if not path.is_file():
        raise DataError(
            f"{path} does not exist: analysis.compare_ground_truth=true needs a synthetic data set with "
            "exact positions (data=synthetic; `python -m src.cohort`)."
        )
    return pd.read_csv(path)


def angle_errors(
    results: list[dict],
    truth: pd.DataFrame,
    bodyparts: list[str],
    angles: dict[str, list[str]],
    pcutoff: float,
) -> pd.DataFrame:
    """Per video and joint: mean absolute difference (deg) of tracked and ground-truth angles.

    ``angle_error_deg`` uses every tracked point; ``angle_error_pcutoff_deg`` only frames whose three points pass
    the p-cutoff (``kept_pcutoff``: their share), as the features do.
    """
    rows = []
    for result in results:
        name = result["video"].path.stem
        video_truth = truth[truth["video"] == name]
        if video_truth.empty:
            raise DataError(
                f"ground_truth.csv has no rows for video {name}; compare_ground_truth needs the synthetic "
                "cohort's own videos."
            )
        wide = video_truth.pivot(index="frame", columns="bodypart")
        true_xy = np.stack(
            [wide["x"][bodyparts].to_numpy(), wide["y"][bodyparts].to_numpy()], axis=2
        )
        poses = result["poses"]
        n_frames = min(len(true_xy), len(poses))
        true_angles = features.joint_angles(true_xy[:n_frames], bodyparts, angles)
        all_angles = features.joint_angles(
            features.masked_positions(poses[:n_frames], -np.inf), bodyparts, angles
        )
        kept_angles = features.joint_angles(
            features.masked_positions(poses[:n_frames], pcutoff), bodyparts, angles
        )
        for joint in angles:
            error_all = (all_angles[joint] - true_angles[joint]).abs()
            error_kept = (kept_angles[joint] - true_angles[joint]).abs()
            rows.append(
                {
                    "video": name,
                    "joint": joint,
                    "n_frames": n_frames,
                    "angle_error_deg": error_all.mean(),
                    "angle_error_pcutoff_deg": error_kept.mean(),
                    "kept_pcutoff": float(error_kept.notna().mean()),
                    "abs_error_sum_deg": error_all.sum(),
                    "abs_error_pcutoff_sum_deg": error_kept.sum(),
                    "n_kept": int(error_kept.notna().sum()),
                    "n_valid": int(error_all.notna().sum()),
                }
            )
    return pd.DataFrame(rows)


def angle_error_summary(per_video: pd.DataFrame) -> pd.DataFrame:
    """Per joint over all frames of all videos (frame-weighted), and a row ``mean`` over the joints."""
    grouped = per_video.groupby("joint", sort=False)
    summary = pd.DataFrame(
        {
            "angle_error_deg": grouped["abs_error_sum_deg"].sum() / grouped["n_valid"].sum(),
            "angle_error_pcutoff_deg": grouped["abs_error_pcutoff_sum_deg"].sum()
            / grouped["n_kept"].sum(),
            "kept_pcutoff": grouped["n_kept"].sum() / grouped["n_frames"].sum(),
            "n_frames": grouped["n_frames"].sum(),
        }
    ).reset_index()
    means = summary[["angle_error_deg", "angle_error_pcutoff_deg", "kept_pcutoff"]].mean()
    return pd.concat(
        [
            summary,
            pd.DataFrame([{"joint": "mean", **means, "n_frames": summary["n_frames"].sum()}]),
        ],
        ignore_index=True,
    )


def angle_error_metrics(summary: pd.DataFrame, pcutoff: float) -> dict[str, float]:
    metrics = {}
    for row in summary.itertuples():
        metrics[f"angle_error_{row.joint}_deg"] = float(row.angle_error_deg)
        metrics[f"angle_error_{row.joint}_pcutoff{pcutoff:g}_deg"] = float(
            row.angle_error_pcutoff_deg
        )
        metrics[f"angle_kept_{row.joint}_pcutoff{pcutoff:g}"] = float(row.kept_pcutoff)
    return {k: v for k, v in metrics.items() if np.isfinite(v)}


def analyze(cfg: DictConfig) -> dict:
    """Analyse ``analysis.videos`` with the chosen model, log it all to a new MLflow run; returns a summary."""
    analysis = cfg.analysis
    engine.set_threads(int(analysis.threads))
    experiment_id = store.configure(cfg.mlflow)
    model_run = find_model_run(analysis, experiment_id)

    if analysis.videos:
        videos = collect_videos(list(analysis.videos))
    elif analysis.compare_ground_truth:
        videos = generalisation_videos(cfg)
    else:
        raise DataError(
            "no videos to analyse: give analysis.videos=[<file or folder>, ...] (or, on synthetic data, "
            "analysis.compare_ground_truth=true for its generalisation videos)."
        )
    infos = [read_video_info(v) for v in videos]  # every video checked before the long work starts
    output_root = Path(str(analysis.output_dir)) / model_run.run_id
    check_output_dir(
        output_root, videos, cfg.data.get("root")
    )  # None where data.root is unset (???)
    truth = ground_truth_positions(cfg) if analysis.compare_ground_truth else None

    work = Path(tempfile.mkdtemp(prefix="analyze-model-"))
    try:
        model, model_skeleton = download_model_and_skeleton(model_run, work)
        bodyparts = list(model.bodyparts)
        skeleton = (
            [list(p) for p in analysis.skeleton]
            if analysis.skeleton is not None
            else model_skeleton
        )
        unknown = sorted({b for pair in skeleton for b in pair} - set(bodyparts))
        if unknown:
            raise DataError(
                f"analysis.skeleton names {unknown}, which the model does not track ({bodyparts}); fix it."
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
                    f"analysis.{name} names {sorted(points - set(bodyparts))}, which the model does not "
                    f"track ({bodyparts}); set analysis.{name} to tracked points."
                )
        which = str(analysis.snapshot)
        scorer = scorer_name(cfg, model_run, which)
        pose_config = engine.read_pose_config(model.pose_config)
        runner = inference_runner(model, which, int(analysis.batch_size), str(analysis.device))
        results = [
            analyse_video(
                cfg,
                runner,
                pose_config,
                info,
                output_root / info.path.stem,
                scorer,
                bodyparts,
                skeleton,
                angles,
            )
            for info in infos
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    pseudonyms = privacy.from_config(cfg)
    summary = pseudonyms.table(pd.DataFrame([summary_row(r) for r in results]))
    n_frames = sum(len(r["poses"]) for r in results)
    metrics = {
        "n_videos": float(len(results)),
        "n_frames": float(n_frames),
        "frames_per_second": float(np.median([r["frames_per_s"] for r in results])),
    }
    errors = None
    if truth is not None:
        per_video = angle_errors(results, truth, bodyparts, angles, float(analysis.pcutoff))
        errors = angle_error_summary(per_video)
        metrics |= angle_error_metrics(errors, float(analysis.pcutoff))
        with atomic_directory(output_root / "ground_truth") as staging:
            errors.to_csv(staging / "angle_errors.csv", index=False, float_format="%.4f")
            per_video.to_csv(
                staging / "angle_errors_by_video.csv", index=False, float_format="%.4f"
            )

    log_media = bool(cfg.data.get("log_media", False))
    tags = {
        "model_run_id": model_run.run_id,
        "model_run_name": model_run.run.info.run_name or "",
        "model_weights_run_id": model_run.model_run_id,
        "model_snapshot": which,
        "scorer": scorer,
        "model_labelled_frames": model_run.run.data.tags.get("labelled_frames", ""),
        "model_selection": (
            "run_id"
            if analysis.run_id
            else f"best FINISHED run of labelled_frames={analysis.labelled_frames} by lowest {analysis.metric}"
        ),
        "git_commit": store.git_commit(),
        "media_logged": str(log_media),
    }
    run_name = (
        f"analyze frames={tags['model_labelled_frames']}"
        if tags["model_labelled_frames"]
        else "analyze"
    )
    with mlflow.start_run(
        experiment_id=model_run.run.info.experiment_id, run_name=run_name, tags=tags
    ) as run:
        logged_cfg = OmegaConf.to_container(cfg, resolve=True)
        # Video paths name participants: the config and params carry pseudonyms instead.
        logged_cfg["analysis"]["videos"] = [
            pseudonyms(r["video"].path.stem, "video") for r in results
        ]
        logged_cfg["analysis"]["output_dir"] = "<data folder>"
        mlflow.log_text(yaml.safe_dump(logged_cfg, sort_keys=False), "config/config.yaml")
        mlflow.log_params(
            store.flat_params(
                OmegaConf.create({"analysis": logged_cfg["analysis"]}), exclude=["videos"]
            )
        )
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            summary.to_csv(tmp / "features_summary.csv", index=False, float_format="%.4f")
            mlflow.log_artifact(str(tmp / "features_summary.csv"), "tables")
            if errors is not None:
                errors.to_csv(tmp / "angle_errors.csv", index=False, float_format="%.4f")
                mlflow.log_artifact(str(tmp / "angle_errors.csv"), "tables")
                pseudonyms.table(per_video).to_csv(
                    tmp / "angle_errors_by_video.csv", index=False, float_format="%.4f"
                )
                mlflow.log_artifact(str(tmp / "angle_errors_by_video.csv"), "tables")
            for result in results:
                _log_video(result, pseudonyms(result["video"].path.stem, "video"), tmp, log_media)
    pseudonyms.save()
    print(
        f"analysed {len(results)} video(s), {n_frames} frames at {metrics['frames_per_second']:.1f} frames/s "
        f"(median): {output_root}; MLflow run {run.info.run_id} (model run {model_run.run_id})",
        flush=True,
    )
    if errors is not None:
        print(
            "angle error vs ground truth (deg): "
            + ", ".join(f"{row.joint}={row.angle_error_deg:.2f}" for row in errors.itertuples()),
            flush=True,
        )
    return {
        "run_id": run.info.run_id,
        "output_dir": output_root,
        "metrics": metrics,
        "results": results,
        "angle_errors": errors,
    }


def _log_video(result: dict, pseudonym: str, tmp: Path, log_media: bool) -> None:
    """One video's files as MLflow artifacts under ``videos/<pseudonym>/``, renamed from the video's name."""
    folder, stem = result["folder"], result["stem"]
    target = tmp / pseudonym
    target.mkdir()
    renamed_stem = pseudonym + result["scorer"]
    for path in folder.iterdir():
        is_media = path.suffix == ".mp4"
        if is_media and not log_media:
            continue
        name = path.name.replace(stem, renamed_stem) if path.name.startswith(stem) else path.name
        shutil.copyfile(path, target / name)
    if log_media and result["movie_frames"]:
        _movie_still(folder / f"{stem}_labeled.mp4", target / "labeled_frame.png")
    mlflow.log_artifacts(str(target), f"videos/{pseudonym}")


def _movie_still(movie: Path, path: Path) -> None:
    """The middle frame of a result movie as a PNG: the MLflow UI shows images, not movies."""
    import cv2

    capture = cv2.VideoCapture(str(movie))
    capture.set(cv2.CAP_PROP_POS_FRAMES, max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) // 2))
    ok, frame = capture.read()
    capture.release()
    if ok:
        cv2.imwrite(str(path), frame)
