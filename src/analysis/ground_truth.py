"""Angle errors against the ground truth of the synthetic cohort
(``analysis.compare_ground_truth``): the joint angles of the tracked points compared with those of
the exact positions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from src.analysis import features
from src.analysis.per_video import Points
from src.errors import DataError
from src.files import atomic_directory


@dataclass
class AngleErrors:
    """Angle errors per joint over all videos (``summary``, with a row ``mean``) and per video and
    joint (``per_video``, which names the videos)."""

    summary: pd.DataFrame
    per_video: pd.DataFrame


def compare_with_ground_truth(
    results: list[dict], truth: pd.DataFrame, points: Points, pcutoff: float, folder: Path
) -> AngleErrors:
    """The angle errors of the analysed videos, written to ``folder`` (atomically) as
    ``angle_errors.csv`` and ``angle_errors_by_video.csv``."""
    per_video = angle_errors(results, truth, points.bodyparts, points.angles, pcutoff)
    summary = angle_error_summary(per_video)
    with atomic_directory(folder) as staging:
        summary.to_csv(staging / "angle_errors.csv", index=False, float_format="%.4f")
        per_video.to_csv(staging / "angle_errors_by_video.csv", index=False, float_format="%.4f")
    return AngleErrors(summary, per_video)


def ground_truth_positions(cfg: DictConfig) -> pd.DataFrame:
    """The exact positions of the synthetic cohort (``<data.root>/ground_truth.csv``)."""
    path = Path(str(cfg.data.root)) / "ground_truth.csv"
    if not path.is_file():
        raise DataError(
            f"{path} does not exist: analysis.compare_ground_truth=true needs a synthetic data "
            "set with exact positions (data=synthetic; `python -m src.cohort`)."
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

    ``angle_error_deg`` uses every tracked point; ``angle_error_pcutoff_deg`` only frames whose
    three points pass the p-cutoff (``kept_pcutoff``: their share), as the features do.
    """
    rows = []
    for result in results:
        name = result["video"].path.stem
        video_truth = truth[truth["video"] == name]
        if video_truth.empty:
            raise DataError(
                f"ground_truth.csv has no rows for video {name}; compare_ground_truth needs the "
                "synthetic cohort's own videos."
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
    """Per joint over all frames of all videos (frame-weighted), and a row ``mean`` over the
    joints."""
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
    """MLflow metrics of the summary: errors with all points and with the p-cutoff, and the share
    kept, per joint and their mean (non-finite values left out)."""
    metrics = {}
    for row in summary.itertuples():
        metrics[f"angle_error_{row.joint}_deg"] = float(row.angle_error_deg)
        metrics[f"angle_error_{row.joint}_pcutoff{pcutoff:g}_deg"] = float(
            row.angle_error_pcutoff_deg
        )
        metrics[f"angle_kept_{row.joint}_pcutoff{pcutoff:g}"] = float(row.kept_pcutoff)
    return {k: v for k, v in metrics.items() if np.isfinite(v)}
