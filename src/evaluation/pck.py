"""PCK and the error as a percentage of a reference length: the human-pose literature's metrics beside MAE.

Definition (used for every ``pck*`` and ``*_pct_ref`` number of this project). Each labelled frame j
has a reference length L_j in pixels: the distance between two named bodyparts as *labelled* in that
frame (e.g. the torso diagonal, left shoulder to right hip, as in the LSP benchmark's PCK), or one
fixed length in cm divided by the data set's cm per pixel. For a labelled point i of frame j with
prediction error e_i (px):

    normalised error  r_i = e_i / L_j
    PCK@f             = (1/N) * sum_i [r_i <= f]          (share of points, 0..1)
    error % of ref    = (100/N) * sum_i r_i                (mean normalised error, in %)

over the N labelled points of a set (or of a bodypart in a set) whose frame has a reference length;
frames where a reference bodypart is unlabelled (or both coincide) are left out, and the counts say
so. Metrics: ``pck<f>_<set>`` (e.g. ``pck0.2_generalisation``), ``mae_<set>_pct_ref`` and
``n_<set>_points_ref``; ``errors/bodyparts.csv`` holds the same per bodypart (``pct_ref``,
``pck<f>``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from src.errors import ConfigError
from src.evaluation.metric_names import PCT_REF, MetricName

# The embedded synthetic cohort's reference: its torso diagonal (src/synthetic/body.py BODYPARTS), the
# longest segment that rigid-ish trunk has, so it varies least with pose; LSP's PCK uses the same.
SYNTHETIC_REFERENCE = ("left_shoulder", "right_hip")

OFF_NOTE = (
    "PCK off: set evaluation.pck.reference_bodyparts=[<bodypart>,<bodypart>] (e.g. a torso or head "
    "segment) or evaluation.pck.reference_length_cm=<cm> to report it"
)


@dataclass(frozen=True)
class Reference:
    """What the reference length is: two bodyparts, or a fixed length (px, from cm)."""

    bodyparts: tuple[str, str] | None = None
    length_px: float | None = None
    description: str = ""


def reference_of(pck_cfg, data_kind: str, bodyparts: list[str], cm_per_px) -> Reference | None:
    """The configured reference (``evaluation.pck``), checked against the data set; None when off.

    ``reference_bodyparts: auto`` is :data:`SYNTHETIC_REFERENCE` for the embedded cohort
    (``data.kind=synthetic``) and off for other data, whose bodyparts we cannot guess.
    """
    chosen = pck_cfg.get("reference_bodyparts", "auto")
    length_cm = pck_cfg.get("reference_length_cm")
    if chosen == "auto":
        chosen = list(SYNTHETIC_REFERENCE) if data_kind == "synthetic" else None
        if length_cm is not None:
            chosen = None  # an explicit length wins over the automatic pair
    if chosen is not None and length_cm is not None:
        raise ConfigError(
            "evaluation.pck.reference_bodyparts and evaluation.pck.reference_length_cm are both "
            "set; keep one (the other null) in conf/evaluation/default.yaml."
        )
    if length_cm is not None:
        if not cm_per_px:
            raise ConfigError(
                f"evaluation.pck.reference_length_cm={length_cm} needs the data set's scale, which "
                "is unknown; set data.cm_per_px, or use evaluation.pck.reference_bodyparts=[a,b]."
            )
        return Reference(None, float(length_cm) / float(cm_per_px), f"{length_cm:g} cm")
    if chosen is None:
        return None
    pair = [str(b) for b in chosen]
    missing = [b for b in pair if b not in bodyparts]
    if len(pair) != 2 or pair[0] == pair[1] or missing:
        raise ConfigError(
            f"evaluation.pck.reference_bodyparts={pair} must name two different labelled bodyparts "
            f"of the data set ({', '.join(bodyparts)}); fix it, or set it to null to switch PCK off."
        )
    return Reference((pair[0], pair[1]), None, f"{pair[0]} to {pair[1]}")


def reference_lengths(labels: pd.DataFrame, reference: Reference) -> pd.DataFrame:
    """``video``, ``frame``, ``ref_length_px``: the reference length of each labelled frame.

    ``labels`` has one row per labelled point (video, frame, bodypart, x, y). NaN where a reference
    bodypart is unlabelled in the frame; frames whose two points coincide get NaN too (no scale).
    """
    frames = labels[["video", "frame"]].drop_duplicates()
    if reference.length_px is not None:
        return frames.assign(ref_length_px=float(reference.length_px))
    a, b = reference.bodyparts
    points = labels[labels["bodypart"].isin([a, b])].pivot_table(
        index=["video", "frame"], columns="bodypart", values=["x", "y"], aggfunc="first"
    )
    length = pd.Series(np.nan, index=points.index)
    if {("x", a), ("x", b)} <= set(points.columns):
        length = np.hypot(points[("x", a)] - points[("x", b)], points[("y", a)] - points[("y", b)])
    length = length.where(length > 0).rename("ref_length_px").reset_index()
    return frames.merge(length, on=["video", "frame"], how="left")


def with_reference(predictions: pd.DataFrame, lengths: pd.DataFrame) -> pd.DataFrame:
    """``predictions`` (:func:`src.evaluation.metrics.prediction_table`) with ``ref_length_px`` and
    ``normalised_error`` (error / reference length)."""
    rows = predictions.drop(columns=["ref_length_px"], errors="ignore").merge(
        lengths, on=["video", "frame"], how="left"
    )
    rows["normalised_error"] = rows["error_px"] / rows["ref_length_px"]
    return rows


def pck_metrics(predictions: pd.DataFrame, fractions: list[float]) -> dict[str, float]:
    """``pck<f>_<set>``, ``mae_<set>_pct_ref`` and ``n_<set>_points_ref`` per set (see module doc)."""
    metrics = {}
    scored = predictions[predictions["normalised_error"].notna()]
    for set_name, rows in scored.groupby("set", sort=False):
        r = rows["normalised_error"].to_numpy()
        metrics[MetricName("mae", set_name, unit=PCT_REF).name] = float(100 * r.mean())
        metrics[MetricName("n_points_ref", set_name).name] = float(len(r))
        for f in fractions:
            metrics[MetricName("pck", set_name, fraction=f).name] = float((r <= f).mean())
    return metrics


def pck_by_bodypart(predictions: pd.DataFrame, fractions: list[float]) -> pd.DataFrame:
    """Per set and bodypart: ``pct_ref`` and ``pck<f>`` (all predictions), as in :func:`pck_metrics`."""
    scored = predictions[predictions["normalised_error"].notna()]
    grouped = scored.groupby(["set", "bodypart"], sort=False)["normalised_error"]
    table = grouped.mean().mul(100).rename("pct_ref").to_frame()
    for f in fractions:
        table[f"pck{f:g}"] = grouped.apply(lambda r, f=f: float((r <= f).mean()))
    return table.reset_index()
