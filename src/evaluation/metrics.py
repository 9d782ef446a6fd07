"""The paper's MAE (mean Euclidean distance, px and cm) per set, p-cutoff and bodypart."""

from __future__ import annotations

import numpy as np
import pandas as pd

SETS = ("train", "test", "generalisation")


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
    and ``n_<set>_points``.
    """
    metrics = {}
    for set_name, rows in _labelled(predictions).groupby("set", sort=False):
        metrics[f"n_{set_name}_points"] = float(len(rows))
        metrics |= _named(f"mae_{set_name}", rows["error_px"].mean(), cm_per_px)
        for cutoff in pcutoffs:
            kept = rows["likelihood"] >= cutoff
            metrics |= _named(
                f"mae_{set_name}_pcutoff{cutoff:g}", rows.loc[kept, "error_px"].mean(), cm_per_px
            )
            metrics[f"kept_{set_name}_pcutoff{cutoff:g}"] = float(kept.mean())
    return metrics


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


def _named(prefix: str, mae_px: float, cm_per_px: float | None) -> dict[str, float]:
    named = {f"{prefix}_px": float(mae_px)}
    if cm_per_px:
        named[f"{prefix}_cm"] = float(mae_px * cm_per_px)
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
