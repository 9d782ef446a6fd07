"""Trust without labels on the embedded cohort: do the signals of src.trust flag the points and
frames where tracking fails, on participants the models never saw?

    flock /tmp/cpu-heavy.lock .venv/bin/python -m benchmarks.trust --work /tmp/trust-work

``--work`` holds a cross-validated study of the synthetic cohort (``split=kfold``: every
participant is in the generalisation set of exactly one fold) with models of several conditions
per fold, made by the commands docs/trust.md lists. For every fold, each condition's model tracks
the fold's generalisation videos (DeepLabCut's video inference, as src.analyze; cached in
``<work>/predictions``); the model of ``--primary`` frames is the one judged, the others only give
the disagreement signal. The judged model also tracks a horizontally flipped copy of each video
(written with OpenCV into ``<work>/flipped``, cached), for the test-time augmentation signal
``flip_disagreement_px``. The generator's ground truth gives every point's error on every frame.

Truth: a point is in error when its distance from the ground truth exceeds 2 x the test MAE of the
fold's judged model (and, for comparison, 20 px); a frame when its MAE does; a video's actual
error is its MAE. The combined score is cross-fitted leave-one-participant-out (never fitted on the
participant it scores); the best single signal is chosen, and calibrated, on the other
participants as well. Both are ranked by their cross-fitted weights alone
(``CrossFit.combined_ranking``), without each fit's constant, which moves against the held-out
participant's error rate. Intervals: 95 % participant bootstrap; the gain of the combined score
over the best single signal has a paired interval (same resamples).

Writes benchmarks/results/trust.md (headline lines first, then the tables) and
benchmarks/results/trust_model.json (``<out>_model.json``: the combined score fitted on every participant, with fold
1's pose subspace, and its provenance: condition, folds, participants and the MLflow runs of the
judged models, whose registered versions carry it with ``report.trust_model``; and the video error
model, a video's MAE predicted with an interval from its mean of the best single signal, validated
leave-one-participant-out). Prints the cost ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from benchmarks import REPO
from src.trust import signals as sig
from src.trust.score import (
    SCORABLE_SIGNALS,
    TrustModel,
    VideoErrorModel,
    cross_fit,
    cross_validate_video_mae,
)
from src.trust.validation import auroc, participant_bootstrap, precision_at_flag_rate, spearman

SINGLE_MODEL = [
    "low_likelihood",
    "jump_px",
    "segment_length_deviation",
    "pca_reconstruction_error_px",
]
FLIP = "flip_disagreement_px"  # test-time augmentation: the judged model on the mirrored video
# The combined score of the headline: the signals src.analyze computes on a new video (the flip
# is measured beside it, as "combined_with_flip").
SHIPPED_SIGNALS = [*SINGLE_MODEL, "model_disagreement_px"]
ALL_SIGNALS = [*SHIPPED_SIGNALS, FLIP]
VIDEO_CONTEXT = [f"video_mean_{name}" for name in SHIPPED_SIGNALS]
BASELINES = ["dlc_displacement_px", "dlc_jump", "dlc_uncertain"]
LABELS = {
    "combined": "combined score (the signals src.analyze computes)",
    "combined_with_flip": "combined score + flip (test-time augmentation)",
    "combined_one_model": "combined score (one model's signals)",
    "combined_video_context": "combined score + the signals' video means",
    "best_single": "best single signal (chosen on the other participants)",
    "low_likelihood": "1 - likelihood",
    "jump_px": "jump beyond body motion (px)",
    "segment_length_deviation": "segment length deviation",
    "pca_reconstruction_error_px": "pose PCA reconstruction error (px)",
    "model_disagreement_px": "model disagreement (px)",
    FLIP: "flip disagreement, test-time augmentation (px)",
    "dlc_displacement_px": "DLC jump quantity: displacement (px)",
    "dlc_jump": "DLC jump flag (> 20 px)",
    "dlc_uncertain": "DLC uncertain flag (likelihood < 0.01)",
}
assert set(SHIPPED_SIGNALS) <= set(SCORABLE_SIGNALS)  # the saved score must pass TrustModel.check
FLAGS = {"dlc_jump", "dlc_uncertain"}  # frame flagged when any point is (as DeepLabCut does)


def model_runs(store: Path, folds: int) -> tuple[pd.DataFrame, str]:
    """FINISHED runs of the store's ``folds``-fold cross-validation: the newest per (fold,
    condition)."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store}")
    experiment = mlflow.get_experiment_by_name("synthetic_clinical")
    runs = mlflow.search_runs(
        [experiment.experiment_id], "attributes.status = 'FINISHED'", order_by=["start_time DESC"]
    )
    runs = runs[(runs["tags.folds"] == str(folds)) & (runs["tags.labelled_frames"] != "0")]
    runs = runs.assign(
        fold=runs["tags.fold"].astype(int), condition=runs["tags.labelled_frames"].astype(int)
    )
    return runs.drop_duplicates(["fold", "condition"]), experiment.experiment_id


def tracker(run_id: str, work: Path):
    """A function tracking a video with the run's model as src.analyze does (DeepLabCut's video
    inference and its H5 + CSV writer, batch size 8, CPU); it returns DeepLabCut's table."""
    from src import engine
    from src.tracking.queries import download_model

    model = download_model(run_id, work / "models" / run_id)
    runner = engine.video_inference_runner(model, "best", 8, "cpu")
    pose_config = engine.read_pose_config(model.pose_config)

    def track_one(video: Path) -> pd.DataFrame:
        with tempfile.TemporaryDirectory() as tmp:
            predictions = engine.video_inference(runner, video)
            return engine.predictions_table(
                predictions, "DLC_trust", pose_config, Path(tmp), video.stem + "DLC_trust"
            )

    return track_one


def track(run_id: str, videos: list[Path], bodyparts: list[str], cache: Path, work: Path):
    """Poses (n_frames, n_points, 3) of each video by the run's model, cached in ``cache``."""
    from src.analysis.per_video import poses_of

    todo = [v for v in videos if not (cache / f"{run_id}_{v.stem}.npy").is_file()]
    if todo:
        track_one = tracker(run_id, work)
        for video in todo:
            np.save(cache / f"{run_id}_{video.stem}.npy", poses_of(track_one(video), bodyparts))
    return {v.stem: np.load(cache / f"{run_id}_{v.stem}.npy") for v in videos}


def flipped_copy(video: Path, folder: Path) -> tuple[Path, int]:
    """A horizontally flipped copy of ``video`` in ``folder`` (written once, then reused), at the
    video's fps with the codec the cohort's videos have (mp4v, src.synthetic.render); and the
    frame width in pixels."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    target = folder / f"{video.stem}_flipped{video.suffix}"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f"partial_{target.name}"
        writer = cv2.VideoWriter(
            str(partial), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height)
        )
        ok, frame = capture.read()
        while ok:
            writer.write(cv2.flip(frame, 1))
            ok, frame = capture.read()
        writer.release()
        partial.rename(target)
    capture.release()
    return target, width


def truth_of(ground_truth: pd.DataFrame, video: str, bodyparts: list[str]) -> np.ndarray:
    """(n_frames, n_points, 2) exact positions of one video."""
    wide = ground_truth[ground_truth["video"] == video].pivot(index="frame", columns="bodypart")
    return np.stack([wide["x"][bodyparts].to_numpy(), wide["y"][bodyparts].to_numpy()], axis=2)


def training_poses(fold_dir: Path, bodyparts: list[str], condition: int) -> np.ndarray:
    """The labelled poses the judged model trained on (train frames of rank <= condition)."""
    selection = pd.read_csv(fold_dir / "selection.csv")
    labels = pd.read_csv(fold_dir / "labels.csv")
    used = selection[(selection["role"] == "train") & (selection["rank"] <= condition)]
    labels = labels.merge(used[["video", "frame"]], on=["video", "frame"])
    wide = labels.pivot(index=["video", "frame"], columns="bodypart")
    return np.stack([wide["x"][bodyparts].to_numpy(), wide["y"][bodyparts].to_numpy()], axis=2)


def video_rows(
    video: str,
    participant: str,
    fold: int,
    xy_by_model: list[np.ndarray],
    poses: np.ndarray,
    truth: np.ndarray,
    bodyparts: list[str],
    skeleton: list[list[str]],
    pca: sig.PosePCA,
    flip_px: np.ndarray,
) -> pd.DataFrame:
    """One row per point and frame: the judged model's error (px) and every signal
    (``flip_px``: the judged model's ``flip_disagreement_px`` on this video)."""
    xy, likelihood = poses[..., :2], poses[..., 2]
    columns = sig.single_model_signals(xy, likelihood, bodyparts, skeleton, pca)
    columns["model_disagreement_px"] = sig.model_disagreement_px(xy_by_model)
    columns[FLIP] = flip_px
    columns |= sig.video_means({name: columns[name] for name in ALL_SIGNALS})
    columns["dlc_displacement_px"] = sig.displacement_px(xy)
    columns |= sig.dlc_outlier_flags(xy, likelihood)
    n_frames, n_points = xy.shape[:2]
    frame, point = np.meshgrid(np.arange(n_frames), np.arange(n_points), indexing="ij")
    return pd.DataFrame(
        {
            "fold": fold,
            "participant": participant,
            "video": video,
            "frame": frame.ravel(),
            "bodypart": np.asarray(bodyparts)[point.ravel()],
            "error_px": np.linalg.norm(xy - truth[:n_frames], axis=2).ravel(),
            **{name: values.ravel() for name, values in columns.items()},
        }
    )


def scores_for(rows: pd.DataFrame, is_error: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """Every score per point: the cross-fitted combined scores, best single, each signal, the
    DeepLabCut baselines."""
    participants = rows["participant"].to_numpy()
    full = cross_fit(rows, SHIPPED_SIGNALS, is_error, participants)
    with_flip = cross_fit(rows, ALL_SIGNALS, is_error, participants)
    one_model = cross_fit(rows, SINGLE_MODEL, is_error, participants)
    context = cross_fit(rows, SHIPPED_SIGNALS + VIDEO_CONTEXT, is_error, participants)
    scores = pd.DataFrame(
        {  # the cross-fitted scores by their rankings: see src.trust.score.CrossFit
            "combined": full.combined_ranking,
            "combined_with_flip": with_flip.combined_ranking,
            "combined_one_model": one_model.combined_ranking,
            "combined_video_context": context.combined_ranking,
            "best_single": full.best_single_ranking,
            **{name: rows[name].to_numpy(dtype=float) for name in ALL_SIGNALS + BASELINES},
        },
        index=rows.index,
    )
    return scores, full.chosen


def per_frame(rows: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Frames: MAE and participant, the mean of each point score (any point, for 0/1 flags)."""
    keys = [rows["video"], rows["frame"]]
    frames = scores.groupby(keys).mean()
    for name in FLAGS:
        frames[name] = scores[name].groupby(keys).max()
    frames["mae_px"] = rows["error_px"].groupby(keys).mean()
    frames["threshold_px"] = rows["threshold_px"].groupby(keys).first()
    frames["participant"] = rows["participant"].groupby(keys).first()
    return frames.reset_index(drop=True)


def figures(
    is_error: np.ndarray, scores: pd.DataFrame, participants: np.ndarray, rate: float, n_boot: int
) -> pd.DataFrame:
    """AUROC and precision at ``rate`` of each score, estimate and 95 % participant-bootstrap
    interval, and the paired AUROC gain of the combined score over the best single signal."""
    names = list(scores.columns)
    values = scores.to_numpy(dtype=float)

    def statistic(rows):
        y, s = is_error[rows], values[rows]
        aurocs = [auroc(y, s[:, i]) for i in range(len(names))]
        precisions = [precision_at_flag_rate(y, s[:, i], rate) for i in range(len(names))]
        combined = aurocs[names.index("combined")]
        gain = combined - aurocs[names.index("best_single")]
        flip_gain = aurocs[names.index("combined_with_flip")] - combined
        return [*aurocs, *precisions, flip_gain, gain]

    estimate, low, high = participant_bootstrap(participants, statistic, n_boot=n_boot)
    n = len(names)
    table = pd.DataFrame(
        {
            "auroc": estimate[:n],
            "auroc_low": low[:n],
            "auroc_high": high[:n],
            "precision": estimate[n : 2 * n],
            "precision_low": low[n : 2 * n],
            "precision_high": high[n : 2 * n],
        },
        index=names,
    )
    table.attrs["gain"] = (estimate[-1], low[-1], high[-1])
    table.attrs["flip_gain"] = (estimate[-2], low[-2], high[-2])
    return table


def video_figures(rows: pd.DataFrame, scores: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    """Per video: Spearman of each score's video mean against the video's MAE, with intervals."""
    keys = rows["video"]
    means = scores.groupby(keys).mean()
    mae = rows["error_px"].groupby(keys).mean().loc[means.index].to_numpy()
    participants = rows["participant"].groupby(keys).first().loc[means.index].to_numpy()
    values = means.to_numpy(dtype=float)

    def statistic(idx):
        return [spearman(values[idx, i], mae[idx]) for i in range(values.shape[1])]

    estimate, low, high = participant_bootstrap(participants, statistic, n_boot=n_boot)
    return pd.DataFrame({"rho": estimate, "rho_low": low, "rho_high": high}, index=means.columns)


def video_mae_model(
    rows: pd.DataFrame, signal: str, n_boot: int, level: float = 0.9
) -> tuple[VideoErrorModel, list[str]]:
    """The video error model (MAE from the video's mean ``signal``) fitted on every video, with
    its validation leave-one-participant-out (each video predicted, interval included, from the
    other participants' videos only): Spearman, mean absolute error against the other
    participants' mean MAE as the prediction, and the share of videos inside the interval, with
    participant-bootstrap intervals; and the lines of the report's section."""
    videos = rows.groupby("video").agg(
        mean=(signal, "mean"), mae=("error_px", "mean"), participant=("participant", "first")
    )
    participants = videos["participant"].to_numpy()
    held_out = cross_validate_video_mae(signal, videos["mean"], videos["mae"], participants, level)
    predicted, actual, constant = (
        held_out[c].to_numpy() for c in ("predicted", "actual", "constant")
    )
    inside = ((actual >= held_out["low"]) & (actual <= held_out["high"])).to_numpy(dtype=float)

    def statistic(idx):
        error = np.abs(predicted[idx] - actual[idx]).mean()
        baseline = np.abs(constant[idx] - actual[idx]).mean()
        return [
            spearman(predicted[idx], actual[idx]),
            error,
            baseline,
            error - baseline,
            inside[idx].mean(),
        ]

    estimate, low, high = participant_bootstrap(participants, statistic, n_boot=n_boot)
    figures = {
        name: [float(estimate[i]), float(low[i]), float(high[i])]
        for i, name in enumerate(
            ["spearman", "abs_error_px", "constant_abs_error_px", "abs_error_gain_px", "coverage"]
        )
    }
    model = VideoErrorModel.fit(signal, videos["mean"], videos["mae"], participants, level)
    ratio = np.median(held_out["high"] / held_out["low"])
    model.validation = figures | {"median_high_over_low": float(ratio), "n_videos": len(videos)}
    lines = [
        "## Predicted MAE per video",
        "",
        f"log MAE = a + b log1p(video mean of {LABELS[signal]}) (the single signal chosen most "
        f"often on the other participants), least squares over the {len(videos)} videos; "
        f"{level:.0%} interval split-conformal over participants (leave-one-participant-out "
        "residuals). Validated leave-one-participant-out: each video predicted, interval "
        "included, from the other participants' videos only; 95 % participant-bootstrap "
        "intervals.",
        "",
        "| figure | value |",
        "|---|---:|",
        f"| Spearman, predicted vs actual MAE | {cell(*figures['spearman'])} |",
        f"| mean absolute error of the prediction (px) | {cell(*figures['abs_error_px'])} |",
        f"| the same, predicting the other participants' mean MAE (px) | "
        f"{cell(*figures['constant_abs_error_px'])} |",
        f"| difference (prediction - that constant, px; < 0: better) | "
        f"{cell(*figures['abs_error_gain_px'])} |",
        f"| share of videos inside their {level:.0%} interval | {cell(*figures['coverage'])} |",
        f"| median interval width (high / low) | {ratio:.2f} |",
        "",
        f"Fitted on every video: MAE = exp({model.intercept:+.2f} {model.slope:+.2f} log1p(mean "
        f"signal)) px, interval x/÷ {np.exp(model.half_width):.2f}.",
        "",
    ]
    return model, lines


def cell(value: float, low: float, high: float) -> str:
    if not np.isfinite(value):
        return "n/a (one class only)"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def drop_one(rows: pd.DataFrame, is_error: np.ndarray) -> list[str]:
    """Point AUROC of the cross-fitted combined score without each signal in turn (estimates
    only): what each signal adds to the others."""
    participants = rows["participant"].to_numpy()
    lines = ["| left out | points AUROC of the combined score without it |", "|---|---:|"]
    for left_out in SHIPPED_SIGNALS:
        kept = [s for s in SHIPPED_SIGNALS if s != left_out]
        combined = cross_fit(rows, kept, is_error, participants).combined_ranking
        lines.append(f"| {LABELS[left_out]} | {auroc(is_error, combined):.3f} |")
    return lines


def result_table(points: pd.DataFrame, frames: pd.DataFrame, videos: pd.DataFrame, rate: float):
    lines = [
        f"| score | points AUROC | points precision, worst {rate:.0%} | frames AUROC | "
        f"frames precision, worst {rate:.0%} | videos Spearman (score vs MAE) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in points.index:
        p, f, v = points.loc[name], frames.loc[name], videos.loc[name]
        lines.append(
            f"| {LABELS[name]} | {cell(p.auroc, p.auroc_low, p.auroc_high)} | "
            f"{cell(p.precision, p.precision_low, p.precision_high)} | "
            f"{cell(f.auroc, f.auroc_low, f.auroc_high)} | "
            f"{cell(f.precision, f.precision_low, f.precision_high)} | "
            f"{cell(v.rho, v.rho_low, v.rho_high)} |"
        )
    return lines


def cost(video: Path, run_id: str, work: Path, xy_models, bodyparts, skeleton, pca) -> dict:
    """Seconds of tracking one video with the run's model and of the single-model signals of its
    predictions (and of model disagreement given the other models' predictions), medians of 5;
    and the test-time augmentation's own: writing the flipped copy (once), tracking it and the
    flip signal."""
    from src.analysis.per_video import poses_of

    track_one = tracker(run_id, work)
    track_one(video)  # warm-up
    tracking_s = statistics.median(timed_runs(lambda: track_one(video), 5))
    poses = poses_of(track_one(video), bodyparts)
    xy, likelihood = poses[..., :2], poses[..., 2]

    def single():
        sig.single_model_signals(xy, likelihood, bodyparts, skeleton, pca)
        sig.dlc_outlier_flags(xy, likelihood)

    single_s = statistics.median(timed_runs(single, 5))
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        flipped, width = flipped_copy(video, Path(tmp))
        flip_write_s = time.perf_counter() - start
        flipped_s = statistics.median(timed_runs(lambda: track_one(flipped), 5))
        xy_flipped = poses_of(track_one(flipped), bodyparts)[..., :2]
    mirror = sig.mirror_pairs(bodyparts)
    flip_signal_s = statistics.median(
        timed_runs(lambda: sig.flip_disagreement_px(xy, xy_flipped, width, mirror), 5)
    )
    return {
        "flip_write_s": flip_write_s,
        "flip_tracking_s": flipped_s,
        "flip_signal_s": flip_signal_s,
        "tracking_s": tracking_s,
        "signals_s": single_s,
        "ratio": single_s / tracking_s,
        "disagreement_s": statistics.median(
            timed_runs(lambda: sig.model_disagreement_px(xy_models), 5)
        ),
    }


def timed_runs(function, repeats: int) -> list[float]:
    """Wall seconds of each of ``repeats`` calls."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        runs.append(time.perf_counter() - start)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/trust-work"))
    parser.add_argument("--folds", type=int, default=3, help="the cross-validation's split.folds")
    parser.add_argument("--primary", type=int, default=6, help="condition of the judged model")
    parser.add_argument("--rate", type=float, default=0.05, help="flag rate for the precision")
    parser.add_argument("--fixed-px", type=float, default=20.0, help="the comparison threshold")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "trust.md")
    args = parser.parse_args()

    from src import engine

    engine.set_threads(2)
    data = args.work / "data"
    cohort = data / "synthetic" / "clinical"
    prepared = data / "prepared" / "synthetic_clinical"
    dataset = yaml.safe_load((cohort / "dataset.yaml").read_text())
    bodyparts, skeleton = list(dataset["bodyparts"]), [list(p) for p in dataset["skeleton"]]
    ground_truth = pd.read_csv(cohort / "ground_truth.csv")
    runs, _ = model_runs(args.work / "mlruns" / "mlflow.db", args.folds)
    cache = args.work / "predictions"
    cache.mkdir(exist_ok=True)
    conditions = sorted(runs["condition"].unique())
    complete = runs.groupby("fold")["condition"].nunique() == len(conditions)
    folds = sorted(complete.index[complete])
    if len(folds) < complete.size:
        print(f"folds without every condition left out: {sorted(complete.index[~complete])}")

    tables, fold_facts, timing, pcas = [], [], None, {}
    mirror, flip_offsets = sig.mirror_pairs(bodyparts), []
    for fold in folds:
        fold_dir = prepared / f"fold_{fold}"
        split = pd.read_csv(fold_dir / "split.csv")
        held_out = split[split["set"] == "generalisation"]
        videos = [cohort / "videos" / f"{v}.mp4" for v in held_out["video"]]
        fold_runs = runs[runs["fold"] == fold].set_index("condition")
        by_model = {
            c: track(fold_runs.loc[c, "run_id"], videos, bodyparts, cache, args.work)
            for c in conditions
        }
        judged = fold_runs.loc[args.primary]
        flipped = {v.stem: flipped_copy(v, args.work / "flipped") for v in videos}
        on_flipped = track(
            judged["run_id"], [path for path, _ in flipped.values()], bodyparts, cache, args.work
        )
        threshold = 2 * float(judged["metrics.mae_test_px"])
        pca = sig.PosePCA().fit(training_poses(fold_dir, bodyparts, args.primary))
        pcas[fold] = pca
        fold_facts.append(
            f"fold {fold}: participants {', '.join(held_out['participant'].unique())}; "
            f"test MAE {threshold / 2:.2f} px -> threshold {threshold:.2f} px; "
            f"pose PCA {pca.pca.n_components_} components"
        )
        for row in held_out.itertuples():
            xy_models = [by_model[c][row.video][..., :2] for c in conditions]
            path, width = flipped[row.video]
            xy_flipped = on_flipped[path.stem][..., :2]
            xy_judged = by_model[args.primary][row.video][..., :2]
            flip_px = sig.flip_disagreement_px(xy_judged, xy_flipped, width, mirror)
            back = xy_flipped[:, mirror].copy()
            back[..., 0] = width - 1 - back[..., 0]
            flip_offsets.append((xy_judged - back).reshape(-1, 2))
            table = video_rows(
                row.video,
                row.participant,
                fold,
                xy_models,
                by_model[args.primary][row.video],
                truth_of(ground_truth, row.video, bodyparts),
                bodyparts,
                skeleton,
                pca,
                flip_px,
            )
            tables.append(table.assign(threshold_px=threshold))
            if timing is None:
                video = cohort / "videos" / f"{row.video}.mp4"
                run_id = fold_runs.loc[args.primary, "run_id"]
                timing = cost(video, run_id, args.work, xy_models, bodyparts, skeleton, pca)
    rows = pd.concat(tables, ignore_index=True)

    sections, headline = [], {}
    for name, relative in [("2 x test MAE", True), (f"{args.fixed_px:g} px", False)]:
        limit = rows["threshold_px"].to_numpy() if relative else args.fixed_px
        is_error = (rows["error_px"].to_numpy() > limit).astype(int)
        scores, chosen = scores_for(rows, is_error)
        participants = rows["participant"].to_numpy()
        points = figures(is_error, scores, participants, args.rate, args.n_boot)
        frames = per_frame(rows, scores)
        frame_limit = frames["threshold_px"] if relative else args.fixed_px
        frame_error = (frames["mae_px"] > frame_limit).to_numpy().astype(int)
        frame_table = figures(
            frame_error,
            frames[scores.columns],
            frames["participant"].to_numpy(),
            args.rate,
            args.n_boot,
        )
        videos = video_figures(rows, scores, args.n_boot)
        gain, gain_low, gain_high = points.attrs["gain"]
        ablation = []
        if relative:
            ablation = [
                "What each signal adds (combined score of all signals but one, cross-fitted the "
                "same way):",
                "",
                *drop_one(rows, is_error),
                "",
            ]
            video_signal = pd.Series(list(chosen.values())).mode().iloc[0]
            headline = {
                "auroc_combined": points.loc["combined", "auroc"],
                "auroc_likelihood": points.loc["low_likelihood", "auroc"],
                "auroc_best_single": points.loc["best_single", "auroc"],
                "auroc_gain_over_best_single_ci_low": gain_low,
            }
        f_gain = frame_table.attrs["gain"]
        verdict = (
            "the combined score beats the best single signal (paired interval above 0)"
            if gain_low > 0
            else "the combined score is ahead on average, but the paired interval includes 0: "
            "not shown to beat the best single signal"
            if gain > 0
            else "the combined score does NOT beat the best single signal"
        )
        sections += [
            f"## Error = distance from the ground truth > {name}",
            "",
            f"Points in error: {is_error.mean():.1%} of {len(is_error)}; frames in error: "
            f"{frame_error.mean():.1%} of {len(frame_error)}; best single signal chosen on the "
            f"other participants: {', '.join(sorted(set(chosen.values())))}.",
            "",
            *result_table(points, frame_table, videos, args.rate),
            "",
            f"AUROC gain of the combined score over the best single signal, paired: points "
            f"{cell(gain, gain_low, gain_high)}, frames {cell(*f_gain)}: {verdict}.",
            "",
            f"AUROC gain of the combined score with the flip signal over the one without it "
            f"(what test-time augmentation would add), paired: points "
            f"{cell(*points.attrs['flip_gain'])}, frames {cell(*frame_table.attrs['flip_gain'])}.",
            "",
            *ablation,
        ]

    final = TrustModel.fit(
        rows,
        SHIPPED_SIGNALS,
        (rows["error_px"] > rows["threshold_px"]).to_numpy(dtype=int),
        threshold="2 x test MAE",
        threshold_px=float(rows.loc[rows["fold"] == folds[0], "threshold_px"].iloc[0]),
        pose_pca=pcas[folds[0]].to_dict(),
        bodyparts=bodyparts,
        skeleton=skeleton,
    )
    video_model, video_lines = video_mae_model(rows, video_signal, args.n_boot)
    final.video_mae = video_model.__dict__
    judged_runs = runs[runs["condition"] == args.primary].set_index("fold")["run_id"]
    final.provenance = {  # what src.report's registry reads (report.trust_model) and tags
        "fitted_by": "python -m benchmarks.trust",
        "condition": args.primary,
        "folds": [int(f) for f in folds],
        "participants": sorted(rows["participant"].unique()),
        "model_runs": {str(f): str(judged_runs[f]) for f in folds},
        "pose_pca_fold": int(folds[0]),
    }
    model_file = final.save(args.out.with_name(f"{args.out.stem}_model.json"))
    weights = ", ".join(
        f"{name} {coef:+.2f}" for name, coef in zip(final.signals, final.coef, strict=True)
    )
    ratio_line = (
        f"signals from one model's output: {timing['signals_s'] * 1000:.1f} ms per video against "
        f"{timing['tracking_s']:.2f} s tracking it: time ratio {timing['ratio']:.4f} (limit 0.25)"
    )
    flip_line = (
        f"test-time augmentation (flipped view), one more forward pass per video: tracking the "
        f"flipped copy {timing['flip_tracking_s']:.2f} s against {timing['tracking_s']:.2f} s "
        f"for the original (ratio {timing['flip_tracking_s'] / timing['tracking_s']:.2f}), plus "
        f"{timing['flip_write_s']:.2f} s writing the flipped copy with OpenCV and "
        f"{timing['flip_signal_s'] * 1000:.1f} ms for the signal"
    )
    print(ratio_line)
    print(flip_line)
    offsets = np.nanmedian(np.concatenate(flip_offsets), axis=0)
    lines = [
        *(f"{key}: {value:.4f}" for key, value in headline.items()),
        f"signal_time_ratio: {timing['ratio']:.4f}",
        "",
        "# Trust without labels: flagging tracking failures on participants never seen",
        "",
        f"`flock /tmp/cpu-heavy.lock .venv/bin/python -m benchmarks.trust --work {args.work} "
        f"--folds {args.folds}` (data and models: docs/trust.md). Headline: points, error > 2 x "
        f"the judged model's test MAE, condition {args.primary}; 95 % intervals from "
        f"{args.n_boot} participant-bootstrap resamples. The cross-fitted scores (combined, best "
        "single) rank by their fit's weights only, without its constant: each participant has "
        "its own leave-one-out fit, and a fit's constant moves against the held-out "
        "participant's error rate (src.trust.score.CrossFit). Folds (the participants each "
        "fold's models never saw):",
        "",
        *(f"- {fact}" for fact in fold_facts),
        "",
        f"Models per fold: conditions {', '.join(map(str, conditions))} (labelled frames per "
        f"video); the judged model is condition {args.primary}, the disagreement is the spread of "
        f"all {len(conditions)}. {len(rows['participant'].unique())} participants, "
        f"{rows['video'].nunique()} videos, {len(rows) // len(bodyparts)} frames, "
        f"{len(rows)} points. Test-time augmentation: the judged model also tracks each video "
        f"flipped left-right; its predictions are mirrored back (x -> width - 1 - x, "
        f"{sum(i != j for i, j in enumerate(mirror)) // 2} left/right pairs swapped); median "
        f"signed offset of the original prediction from the mirrored-back one: x "
        f"{offsets[0]:+.2f} px, y {offsets[1]:+.2f} px (a wrong pixel convention would shift x "
        "by 1 px; y, which the flip leaves alone, shows how far the model's two views differ "
        "anyway).",
        "",
        *sections,
        *video_lines,
        "## The saved score",
        "",
        f"`{model_file.relative_to(REPO) if model_file.is_relative_to(REPO) else model_file}`: "
        "the combined score fitted on every participant, on the signals src.analyze computes "
        f"on a new video ({', '.join(LABELS[s] for s in SHIPPED_SIGNALS)}; "
        f"for fold {folds[0]}'s judged model, with its pose subspace); standardised "
        f"log-signal weights: {weights}; intercept {final.intercept:+.2f}.",
        "",
        "## Cost",
        "",
        ratio_line + f"; model disagreement from the other models' predictions "
        f"{timing['disagreement_s'] * 1000:.1f} ms more, but each other model tracks the video "
        f"once more ({len(conditions) - 1} more trackings here).",
        "",
        flip_line + ".",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines[:5]))


if __name__ == "__main__":
    main()
