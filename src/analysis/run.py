"""One analysis: choose the model, check the videos, track and analyse each, compare with the
ground truth on request, and log it all to a new MLflow run.

Per video, under ``<analysis.output_dir>/<model run id>/<video name>/`` (the data folder: names
there may identify people): DeepLabCut's predictions ``<video>DLC_<scorer>.h5/.csv`` (and
``_filtered`` with a filter), the result movie ``<video>DLC_<scorer>_labeled.mp4``,
``features.csv`` (joint angles, angular velocities, normalised distances per frame),
``frequencies.csv`` and plots; with ``analysis.trust`` the trust of every point (``trust.h5/.csv``),
``trust_summary.csv``, ``trust_timeline.png`` and ``labelling/``, the flagged frames to label (never
logged). One new MLflow run per analysis, in the model's experiment, tagged
``model_run_id`` (not nested: the report reads a sweep's children as its conditions); what it logs
names videos only by pseudonym, and movies and frames only when ``data.log_media`` is true.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from src import engine, privacy
from src.analysis.ground_truth import (
    AngleErrors,
    angle_error_metrics,
    compare_with_ground_truth,
    ground_truth_positions,
)
from src.analysis.model_choice import (
    ModelRun,
    download_model_and_skeleton,
    find_model_run,
    scorer_name,
)
from src.analysis.movies import movie_still
from src.analysis.per_video import (
    Points,
    Tracker,
    TrustCheck,
    analyse_video,
    points_for,
    summary_row,
)
from src.analysis.trust import LABELLING_FOLDER, PREDICTED_MAE_NOTE, TrustSettings
from src.analysis.videos import VideoInfo, check_output_dir, read_video_info, videos_to_analyse
from src.errors import DataError
from src.tracking import store


@dataclass(frozen=True)
class TrustRuns:
    """What scores the trust of every point: its settings and the MLflow runs of the other models
    whose disagreement it measures."""

    settings: TrustSettings
    other_runs: list[ModelRun]


@dataclass
class Outcome:
    """What one analysis made: logged to MLflow, printed and returned."""

    model_run: ModelRun
    scorer: str
    output_root: Path  # <analysis.output_dir>/<model run id>
    results: list[dict]  # per video, from analyse_video
    metrics: dict[str, float]
    errors: AngleErrors | None  # with analysis.compare_ground_truth
    trust: TrustSettings | None = None  # with analysis.trust.enabled


def analyze(cfg: DictConfig) -> dict:
    """Analyse ``analysis.videos`` with the chosen model, log it all to a new MLflow run; returns
    a summary."""
    analysis = cfg.analysis
    engine.set_threads(int(analysis.threads))
    experiment_id = store.configure(cfg.mlflow)
    model_run = find_model_run(analysis, experiment_id)
    trust = TrustSettings.from_config(analysis)  # a wrong setting stops before the long work
    other_runs = (
        [
            find_model_run(OmegaConf.create({"run_id": ref}), experiment_id)
            for ref in trust.other_models
        ]
        if trust is not None and trust.needs_other_models
        else []
    )
    videos = videos_to_analyse(cfg)
    infos = [read_video_info(v) for v in videos]  # every video checked before the long work starts
    output_root = Path(str(analysis.output_dir)) / model_run.run_id
    check_output_dir(output_root, videos, cfg.data.get("root"))  # None where data.root is unset
    truth = ground_truth_positions(cfg) if analysis.compare_ground_truth else None
    scorer = scorer_name(cfg, model_run, str(analysis.snapshot))

    trust_runs = TrustRuns(trust, other_runs) if trust is not None else None
    results, points = track_videos(analysis, model_run, infos, output_root, scorer, trust_runs)

    pseudonyms = privacy.from_config(cfg)
    summary = pseudonyms.table(pd.DataFrame([summary_row(r) for r in results]))
    done = Outcome(model_run, scorer, output_root, results, throughput_metrics(results), None)
    done.trust = trust
    done.metrics |= trust_metrics(results)
    if truth is not None:
        pcutoff = float(analysis.pcutoff)
        done.errors = compare_with_ground_truth(
            results, truth, points, pcutoff, output_root / "ground_truth"
        )
        done.metrics |= angle_error_metrics(done.errors.summary, pcutoff)

    run_id = log_analysis(cfg, done, summary, pseudonyms)
    pseudonyms.save()
    print_outcome(done, run_id)
    return {
        "run_id": run_id,
        "output_dir": output_root,
        "metrics": done.metrics,
        "results": results,
        "angle_errors": done.errors.summary if done.errors is not None else None,
    }


def track_videos(
    analysis: DictConfig,
    model_run: ModelRun,
    infos: list[VideoInfo],
    output_root: Path,
    scorer: str,
    trust: TrustRuns | None = None,
) -> tuple[list[dict], Points]:
    """Download the model (and the trust score's other models) into a temporary folder, check the
    points the settings name against it and analyse every video into
    ``<output_root>/<video name>``."""
    work = Path(tempfile.mkdtemp(prefix="analyze-model-"))
    try:
        model, model_skeleton = download_model_and_skeleton(model_run, work)
        points = points_for(analysis, list(model.bodyparts), model_skeleton)
        tracker = Tracker.for_model(model, analysis, scorer)
        check = None
        if trust is not None:
            trust.settings.check_bodyparts(points.bodyparts)
            others = [
                _other_tracker(analysis, other_run, work / f"other-{i}", points, scorer)
                for i, other_run in enumerate(trust.other_runs)
            ]
            check = TrustCheck(trust.settings, others)
        results = [
            analyse_video(analysis, tracker, points, info, output_root / info.path.stem, check)
            for info in infos
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results, points


def _other_tracker(
    analysis: DictConfig, other_run: ModelRun, work: Path, points: Points, scorer: str
) -> Tracker:
    """A tracker of one of the trust score's other models, downloaded into ``work``; it must track
    the analysed model's bodyparts."""
    other, _ = download_model_and_skeleton(other_run, work)
    if list(other.bodyparts) != points.bodyparts:
        raise DataError(
            f"analysis.trust.other_models: {other_run.run_id} tracks "
            f"{list(other.bodyparts)}, the analysed model {points.bodyparts}; name "
            "models of the same bodyparts."
        )
    return Tracker.for_model(other, analysis, scorer)


def throughput_metrics(results: list[dict]) -> dict[str, float]:
    """Videos, frames and the median tracking speed (frames/s) over the videos."""
    return {
        "n_videos": float(len(results)),
        "n_frames": float(sum(len(r["poses"]) for r in results)),
        "frames_per_second": float(np.median([r["frames_per_s"] for r in results])),
    }


def trust_metrics(results: list[dict]) -> dict[str, float]:
    """Share of frames and points flagged over all videos, and what the trust work cost against
    the rest of the analysis (with analysis.trust.enabled): the score (its signals) alone, all the
    trust work (score, files, timeline, labelling folder), and the other models' tracking."""
    scored = [r for r in results if r.get("trust") is not None]
    if not scored:
        return {}
    frames = np.concatenate([r["trust"].frame_flagged for r in scored])
    points = np.concatenate([r["trust"].flagged.ravel() for r in scored])
    trust_s = sum(r["trust"].seconds for r in scored)
    score_s = sum(r["trust"].score_seconds for r in scored)
    other_s = sum(r["other_models_seconds"] for r in scored)
    rest_s = sum(r["seconds"] for r in scored) - trust_s - other_s
    return {
        "trust_frames_flagged_share": float(frames.mean()),
        "trust_points_flagged_share": float(points.mean()),
        "trust_frames_exported": float(sum(len(r["trust"].exported_frames) for r in scored)),
        "trust_score_time_ratio": score_s / rest_s if rest_s > 0 else float("nan"),
        "trust_time_ratio": trust_s / rest_s if rest_s > 0 else float("nan"),
        "trust_other_models_time_ratio": other_s / rest_s if rest_s > 0 else float("nan"),
    }


def trust_summary(results: list[dict]) -> pd.DataFrame:
    """One row per video: its trust summary (VideoTrust.summary)."""
    return pd.DataFrame(
        [
            {"video": r["video"].path.stem} | r["trust"].summary()
            for r in results
            if r.get("trust") is not None
        ]
    )


def run_tags(cfg: DictConfig, done: Outcome) -> dict[str, str]:
    """The analysis run's MLflow tags: the model run it used and how it was chosen."""
    analysis, model_run = cfg.analysis, done.model_run
    return {
        "model_run_id": model_run.run_id,
        "model_run_name": model_run.run.info.run_name or "",
        "model_weights_run_id": model_run.model_run_id,
        "model_snapshot": str(analysis.snapshot),
        "scorer": done.scorer,
        "model_labelled_frames": model_run.run.data.tags.get("labelled_frames", ""),
        "model_selection": (
            (model_run.model_uri or "run_id")
            if analysis.run_id
            else f"best FINISHED run of labelled_frames={analysis.labelled_frames} by lowest "
            f"{analysis.metric}"
        ),
        "git_commit": store.git_commit(),
        "media_logged": str(bool(cfg.data.get("log_media", False))),
        "trust_score": done.trust.score if done.trust is not None else "off",
    }


def log_analysis(
    cfg: DictConfig, done: Outcome, summary: pd.DataFrame, pseudonyms: privacy.Pseudonyms
) -> str:
    """A new MLflow run in the model run's experiment: config and params (videos as pseudonyms),
    metrics, tables and each video's files; returns its id."""
    log_media = bool(cfg.data.get("log_media", False))
    tags = run_tags(cfg, done)
    run_name = (
        f"analyze frames={tags['model_labelled_frames']}"
        if tags["model_labelled_frames"]
        else "analyze"
    )
    with mlflow.start_run(
        experiment_id=done.model_run.run.info.experiment_id, run_name=run_name, tags=tags
    ) as run:
        logged_cfg = OmegaConf.to_container(cfg, resolve=True)
        # Video paths name participants: the config and params carry pseudonyms instead.
        logged_cfg["analysis"]["videos"] = [
            pseudonyms(r["video"].path.stem, "video") for r in done.results
        ]
        logged_cfg["analysis"]["output_dir"] = "<data folder>"
        mlflow.log_text(yaml.safe_dump(logged_cfg, sort_keys=False), "config/config.yaml")
        mlflow.log_params(
            store.flat_params(
                OmegaConf.create({"analysis": logged_cfg["analysis"]}), exclude=["videos"]
            )
        )
        mlflow.log_metrics(done.metrics)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            _log_tables(done.errors, summary, pseudonyms, tmp)
            if done.trust is not None:
                pseudonyms.table(trust_summary(done.results)).to_csv(
                    tmp / "trust_summary.csv", index=False, float_format="%.4f"
                )
                mlflow.log_artifact(str(tmp / "trust_summary.csv"), "tables")
            for result in done.results:
                _log_video(result, pseudonyms(result["video"].path.stem, "video"), tmp, log_media)
    return run.info.run_id


def _log_tables(
    errors: AngleErrors | None, summary: pd.DataFrame, pseudonyms: privacy.Pseudonyms, tmp: Path
) -> None:
    """``tables/``: the features summary and, with the ground truth, the angle errors."""
    summary.to_csv(tmp / "features_summary.csv", index=False, float_format="%.4f")
    mlflow.log_artifact(str(tmp / "features_summary.csv"), "tables")
    if errors is not None:
        errors.summary.to_csv(tmp / "angle_errors.csv", index=False, float_format="%.4f")
        mlflow.log_artifact(str(tmp / "angle_errors.csv"), "tables")
        pseudonyms.table(errors.per_video).to_csv(
            tmp / "angle_errors_by_video.csv", index=False, float_format="%.4f"
        )
        mlflow.log_artifact(str(tmp / "angle_errors_by_video.csv"), "tables")


def _log_video(result: dict, pseudonym: str, tmp: Path, log_media: bool) -> None:
    """One video's files as MLflow artifacts under ``videos/<pseudonym>/``, renamed from the
    video's name."""
    folder, stem = result["folder"], result["stem"]
    target = tmp / pseudonym
    target.mkdir()
    renamed_stem = pseudonym + result["scorer"]
    for path in folder.iterdir():
        if path.is_dir():  # the labelling folder: frames of the video, kept in the data folder
            continue
        is_media = path.suffix == ".mp4"
        if is_media and not log_media:
            continue
        name = path.name.replace(stem, renamed_stem) if path.name.startswith(stem) else path.name
        shutil.copyfile(path, target / name)
    if log_media and result["movie_frames"]:
        movie_still(folder / f"{stem}_labeled.mp4", target / "labeled_frame.png")
    mlflow.log_artifacts(str(target), f"videos/{pseudonym}")


def print_outcome(done: Outcome, run_id: str) -> None:
    """What was analysed, where its files are, the MLflow run and, with the ground truth, the
    angle errors."""
    n_frames = sum(len(r["poses"]) for r in done.results)
    print(
        f"analysed {len(done.results)} video(s), {n_frames} frames at "
        f"{done.metrics['frames_per_second']:.1f} frames/s (median): {done.output_root}; MLflow "
        f"run {run_id} (model run {done.model_run.run_id})",
        flush=True,
    )
    if done.trust is not None:
        print(f"trust ({done.trust.describe()}):", flush=True)
        for result in done.results:
            print("  " + trust_line(result), flush=True)
        metrics = done.metrics
        if not any(result["trust"].predicted_mae for result in done.results):
            print(f"  {PREDICTED_MAE_NOTE}", flush=True)
        print(
            f"  time against the rest of the analysis: score {metrics['trust_score_time_ratio']:.1%}"
            f", all trust outputs {metrics['trust_time_ratio']:.1%}"
            + (
                f", other models' tracking {metrics['trust_other_models_time_ratio']:.1%}"
                if done.trust.needs_other_models
                else ""
            ),
            flush=True,
        )
    if done.errors is not None:
        print(
            "angle error vs ground truth (deg): "
            + ", ".join(
                f"{row.joint}={row.angle_error_deg:.2f}" for row in done.errors.summary.itertuples()
            ),
            flush=True,
        )


def trust_line(result: dict) -> str:
    """One video's trust summary in one line."""
    row = result["trust"].summary()
    line = (
        f"{result['video'].path.stem}: {row['frames_flagged']} of {row['n_frames']} frames "
        f"flagged ({row['frames_flagged_share']:.1%}), {row['points_flagged_share']:.1%} of points"
    )
    if "expected_points_in_error_share" in row:
        line += f"; expected share of points in error {row['expected_points_in_error_share']:.1%}"
    if result["trust"].predicted_mae is not None:
        estimate, low, high = result["trust"].predicted_mae
        level = result["trust"].settings.model.video_mae["level"]
        line += f"; predicted MAE {estimate:.1f} px ({level:.0%} interval {low:.1f}-{high:.1f})"
    if row["frames_exported"]:
        line += (
            f"; {row['frames_exported']} flagged frames to label in "
            f"{result['folder'] / LABELLING_FOLDER}"
        )
    return line
