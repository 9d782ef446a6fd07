"""The paper's MAE (mean Euclidean distance, px and cm) per set, p-cutoff and bodypart.

Every ``mae_*`` metric is the paper's MAE, which is DeepLabCut's ``evaluate_network`` "rmse": the
single-animal mean Euclidean distance over all labelled points of a set. DeepLabCut's own test
rmse during training is another number (see :data:`METRICS_GUIDE`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from src import engine
from src.evaluation.metric_names import MetricName
from src.evaluation.uncertainty import IntervalSettings, mae_interval, participant_totals

# The tag `metrics_guide` of every evaluated run (MLflow has no per-metric description).
METRICS_GUIDE = (
    "mae_<set>_px (and _cm): the paper's MAE, mean Euclidean distance between prediction and label "
    "over all labelled points and frames of the set (train, test, generalisation); the same number "
    "as DeepLabCut's evaluate_network 'rmse' (single animal) for the snapshot in the tags "
    "evaluated_snapshot / evaluated_epoch. mae_<set>_pcutoff<c>_px: the same over the points "
    "predicted with likelihood >= c; kept_<set>_pcutoff<c>: their share. n_<set>_participants, "
    "n_<set>_frames, n_<set>_points: what the MAE of the set rests on. "
    "dlc_training_rmse_matched_test_px: DeepLabCut's test rmse computed while it trains "
    "(learning_stats.csv), its multi-animal metric: predictions are matched to labels and "
    "unmatched ones are dropped, so it reads lower than mae_test_px (88 px against 201 px on a "
    "real project) and is not the paper's MAE; DeepLabCut picks its 'best' snapshot by it. "
    "loss_train, loss_test: DeepLabCut's training and test loss per epoch. "
    "mae_<set>[_pcutoff<c>]_px_ci_low / _ci_high: the bounds of the MAE's confidence interval "
    "(evaluation.bootstrap.confidence) over participants, not points, by the method in the tag "
    "interval_method (evaluation.interval.method); absent when the set has fewer than "
    "evaluation.interval.min_participants participants. pck<f>_<set>: share of points whose "
    "error is at most f times the frame's reference length (evaluation.pck), "
    "mae_<set>_pct_ref: the mean error as % of it, n_<set>_points_ref: the points with a "
    "reference length (src/evaluation/pck.py)."
)

# DeepLabCut's snapshot file names: snapshot-080.pt, snapshot-best-080.pt
# DeepLabCut 3's snapshot-[best-]<epoch>.pt, or a TensorFlow checkpoint snapshot-<iteration>
DLC_SNAPSHOT = re.compile(r"snapshot-(best-)?(\d+)(\.pt)?")


def prediction_table(
    frames: pd.DataFrame, labels: pd.DataFrame, poses: np.ndarray, bodyparts: list[str]
) -> pd.DataFrame:
    """One row per frame and bodypart: label, prediction, likelihood and error in pixels.

    ``frames`` has one row per image (video, frame, set, ...), in the order of ``poses``
    (n_images, n_bodyparts, 3: x, y, likelihood). Unlabelled points keep NaN labels and errors.
    """
    n_frames, n_bodyparts = len(frames), len(bodyparts)
    rows = frames.loc[frames.index.repeat(n_bodyparts)].reset_index(drop=True)
    rows["bodypart"] = np.tile(bodyparts, n_frames)
    rows[["x_pred", "y_pred", "likelihood"]] = poses.reshape(n_frames * n_bodyparts, 3)
    labelled = labels.rename(columns={"x": "x_label", "y": "y_label"})[
        ["video", "frame", "bodypart", "x_label", "y_label"]
    ]
    rows = rows.merge(labelled, on=["video", "frame", "bodypart"], how="left")
    rows["error_px"] = np.hypot(rows["x_pred"] - rows["x_label"], rows["y_pred"] - rows["y_label"])
    return rows


def mae_metrics(
    predictions: pd.DataFrame, pcutoffs: list[float], cm_per_px: float | None
) -> dict[str, float]:
    """Metrics named after what they are, e.g. ``mae_generalisation_pcutoff0.8_px``.

    For each set present: ``mae_<set>_px`` (and ``_cm`` when the scale is known), the same with
    ``_pcutoff<c>``, ``kept_<set>_pcutoff<c>`` (share of labelled points at or above the cutoff)
    and what the set's MAE rests on (:func:`set_sizes`).
    """
    metrics = set_sizes(predictions)
    for set_name, rows in _labelled(predictions).groupby("set", sort=False):
        metrics |= _named(MetricName("mae", set_name), rows["error_px"].mean(), cm_per_px)
        for cutoff in pcutoffs:
            kept = rows["likelihood"] >= cutoff
            mae = MetricName("mae", set_name, cutoff)
            metrics |= _named(mae, rows.loc[kept, "error_px"].mean(), cm_per_px)
            metrics[MetricName("kept", set_name, cutoff).name] = float(kept.mean())
    return metrics


def interval_metrics(
    predictions: pd.DataFrame, pcutoffs: list[float], settings: IntervalSettings
) -> dict[str, float]:
    """``mae_<set>[_pcutoff<c>]_px_ci_low`` and ``_ci_high``: participant-level interval bounds.

    One interval per MAE of :func:`mae_metrics` by ``settings.method``
    (src/evaluation/uncertainty.py); a set whose points come from fewer than
    ``settings.min_participants`` participants has none (no metric), not a narrow one.
    """
    metrics = {}
    labelled = _labelled(predictions)
    by = "participant" if "participant" in labelled else "video"
    for set_name, rows in labelled.groupby("set", sort=False):
        cells = [(MetricName("mae", set_name), rows)]
        cells += [(MetricName("mae", set_name, c), rows[rows["likelihood"] >= c]) for c in pcutoffs]
        for mae, kept in cells:
            totals = participant_totals(kept, by=by)
            interval = mae_interval(totals["sum_error_px"], totals["n_points"], settings)
            if interval.has_interval:
                metrics[mae.with_bound("low").name] = interval.low
                metrics[mae.with_bound("high").name] = interval.high
    return metrics


PARTICIPANT_COLUMNS = [
    "pcutoff",
    "set",
    "participant",
    "video",
    "bodypart",
    "n_points",
    "sum_error_px",
    "mae_px",
]


def participant_table(predictions: pd.DataFrame, pcutoffs: list[float]) -> pd.DataFrame:
    """errors/participants.csv: per set, participant, video and bodypart, the points, their summed
    error and MAE; ``pcutoff`` NaN for all predictions, else only the points kept by it.

    ``n_points`` counts the points with an error (as the MAE, which skips NaN). Summed errors let any
    pooling be recomputed exactly (a set's MAE is the sum of ``sum_error_px``
    over the sum of ``n_points``), e.g. across participants or folds. Identifiers are pseudonymised
    by the caller before the table leaves the data folder.
    """
    labelled = _labelled(predictions)
    if "participant" not in labelled:  # data without participants: each video is its own
        labelled = labelled.assign(participant=labelled["video"])
    keys = ["set", "participant", "video", "bodypart"]
    tables = []
    for cutoff in [None, *pcutoffs]:
        rows = labelled if cutoff is None else labelled[labelled["likelihood"] >= cutoff]
        table = rows.groupby(keys, sort=False)["error_px"].agg(n_points="count", sum_error_px="sum")
        table["mae_px"] = table["sum_error_px"] / table["n_points"]
        tables.append(table.reset_index().assign(pcutoff=np.nan if cutoff is None else cutoff))
    return pd.concat(tables, ignore_index=True)[PARTICIPANT_COLUMNS]


def set_sizes(predictions: pd.DataFrame) -> dict[str, float]:
    """What each set's MAE rests on: ``n_<set>_participants``, ``n_<set>_frames``, ``n_<set>_points``.

    Counted over labelled points only: frames and participants with at least one labelled point.
    ``n_<set>_participants`` is left out when ``predictions`` has no participant column.
    """
    sizes = {}
    for set_name, rows in _labelled(predictions).groupby("set", sort=False):
        if "participant" in rows:
            sizes[MetricName("n_participants", set_name).name] = float(
                rows["participant"].nunique()
            )
        sizes[MetricName("n_frames", set_name).name] = float(
            len(rows.drop_duplicates(["video", "frame"]))
        )
        sizes[MetricName("n_points", set_name).name] = float(len(rows))
    return sizes


def evaluation_tags(model, which: str) -> dict[str, str]:
    """Tags saying which snapshot the metrics come from, and what each metric means.

    ``model`` is an :class:`src.engine.pytorch.Model`, ``which`` the ``evaluation.snapshot``
    (last | best) it is evaluated with. ``evaluated_snapshot`` is DeepLabCut's file name of that
    snapshot (e.g. ``snapshot-best-080.pt``), ``evaluated_epoch`` the epochs it was trained for.
    """
    name, epoch = snapshot_identity(model, which)
    return {
        "evaluated_snapshot": name,
        "evaluated_epoch": "" if epoch is None else str(epoch),
        "metrics_guide": METRICS_GUIDE,
    }


def snapshot_identity(model, which: str) -> tuple[str, int | None]:
    """DeepLabCut's file name and epoch of ``model.snapshot(which)``.

    A snapshot copied under another name (our model folders hold ``snapshot-last.pt`` and
    ``snapshot-best.pt``) is named from the epoch in its metadata; it is DeepLabCut's best one
    when it is the model's ``best``, or when the model kept no other best and its key metric
    (``runner.key_metric`` of the pose config) was measured: DeepLabCut saves a snapshot whose
    key metric improves as ``snapshot-best-<epoch>.pt``.
    """
    path = Path(model.snapshot(which))
    named = DLC_SNAPSHOT.fullmatch(path.name)
    if named:
        return path.name, int(named.group(2))
    metadata = engine.for_model(model).snapshot_metadata(path)
    epoch = metadata.get("epoch")
    if epoch is None:
        return path.name, None
    if "best" in model.snapshots:
        best = path == Path(model.snapshots["best"])
    else:
        best = _key_metric_measured(metadata, model.pose_config)
    return f"snapshot-{'best-' if best else ''}{int(epoch):03}.pt", int(epoch)


def _key_metric_measured(metadata: dict, pose_config) -> bool:
    if isinstance(pose_config, dict):
        config = pose_config
    else:
        config = yaml.safe_load(Path(pose_config).read_text(encoding="utf-8")) or {}
    key = (config.get("runner") or {}).get("key_metric")
    value = (metadata.get("metrics") or {}).get(f"metrics/{key}")
    return key is not None and value is not None and not math.isnan(float(value))


def bodypart_table(
    predictions: pd.DataFrame, pcutoffs: list[float], cm_per_px: float | None
) -> pd.DataFrame:
    """MAE per set and bodypart, with and without each cutoff (long format, one row per cutoff).

    ``pcutoff`` is NaN for the row with all predictions.
    """
    tables = []
    labelled = _labelled(predictions)
    labelled_points = labelled.groupby(["set", "bodypart"], sort=False).size()
    for cutoff in [None, *pcutoffs]:
        rows = labelled if cutoff is None else labelled[labelled["likelihood"] >= cutoff]
        table = rows.groupby(["set", "bodypart"], sort=False)["error_px"].agg(
            mae_px="mean", n_points="size"
        )
        table = table.reindex(labelled_points.index)
        table["n_points"] = table["n_points"].fillna(0).astype(int)
        table["kept"] = table["n_points"] / labelled_points
        if cm_per_px:
            table["mae_cm"] = table["mae_px"] * cm_per_px
        tables.append(table.reset_index().assign(pcutoff=np.nan if cutoff is None else cutoff))
    return pd.concat(tables, ignore_index=True)


def _labelled(predictions: pd.DataFrame) -> pd.DataFrame:
    return predictions[predictions["x_label"].notna() & predictions["y_label"].notna()]


def _named(mae: MetricName, mae_px: float, cm_per_px: float | None) -> dict[str, float]:
    named = {mae.in_unit("px").name: float(mae_px)}
    if cm_per_px:
        named[mae.in_unit("cm").name] = float(mae_px * cm_per_px)
    return named


def tidy(table: pd.DataFrame) -> pd.DataFrame:
    """A Table-1-shaped table as long rows: labelled_frames, set, with_pcutoff, mae_px (no empty cells)."""
    long = (
        table.rename_axis("labelled_frames")
        .reset_index()
        .melt("labelled_frames", var_name="column", value_name="mae_px")
    )
    long["set"] = long["column"].str.split(",").str[0]
    long["with_pcutoff"] = long["column"].str.contains("p-cutoff")
    return long.dropna(subset="mae_px")[["labelled_frames", "set", "with_pcutoff", "mae_px"]]
