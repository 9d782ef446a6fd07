"""A study's errors per participant, and what the report concludes from them: interval bounds for the
table, the estimate pooled over cross-validation folds with the spread between folds, the error of
each generalisation participant, and how many frames to label.

Every number comes from the runs' metrics or their ``errors/participants.csv`` (summed errors per
participant, video and bodypart, pseudonymised), so pooling is exact: a pooled MAE is the sum of
``sum_error_px`` over the sum of ``n_points``. Statistics: src/evaluation/uncertainty.py.
"""

from __future__ import annotations

import logging
import tempfile

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from src.evaluation.metric_names import PCT_REF, SETS, MetricName, table_cells, table_columns
from src.evaluation.uncertainty import (
    FramesToLabel,
    IntervalSettings,
    frames_to_label,
    mae_interval,
    participant_totals,
)

log = logging.getLogger(__name__)

PARTICIPANTS_ARTIFACT = "errors/participants.csv"
NO_PARTICIPANT_ERRORS = "no interval: no participant errors logged"


# evaluation.bootstrap (resamples, seed, confidence) and evaluation.interval (method, min_participants)
Bootstrap = IntervalSettings


table_metrics = table_columns  # the paper's Table 1 columns and the metric each shows


def interval_bounds(runs: pd.DataFrame, pcutoff: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lower and upper interval bounds (px) of each cell of the paper's table, from the runs'
    ``<metric>_ci_low`` / ``_ci_high`` metrics; NaN where a run logged none."""
    columns = table_cells(pcutoff)
    indexed = runs.set_index("labelled_frames")
    bounds = []
    for end in ("low", "high"):
        table = indexed.reindex(columns=[m.with_bound(end).name for m in columns.values()])
        table.columns, table.index.name = list(columns), "labelled frames per video"
        bounds.append(table)
    return bounds[0], bounds[1]


def participant_errors(client: MlflowClient, runs: pd.DataFrame) -> pd.DataFrame:
    """``errors/participants.csv`` of every run, with its labelled_frames (and fold); runs without
    it (evaluated before it existed, or skipped) are left out."""
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs.to_dict("records"):
            skipped = run.get("skipped_reason")
            if not run.get("run_id") or (isinstance(skipped, str) and skipped):  # nothing to have
                continue
            try:
                path = client.download_artifacts(run["run_id"], PARTICIPANTS_ARTIFACT, tmp)
            except (MlflowException, OSError):
                log.warning("run %s has no %s", run["run_id"], PARTICIPANTS_ARTIFACT)
                continue
            table = pd.read_csv(path, float_precision="round_trip").assign(
                labelled_frames=run["labelled_frames"]
            )
            if "fold" in run:
                table["fold"] = run["fold"]
            tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def has_folds(runs: pd.DataFrame) -> bool:
    """True for a cross-validated study: runs carry a ``fold``."""
    return "fold" in runs and runs["fold"].notna().any()


def _select(participants: pd.DataFrame, set_name: str, cutoff: float | None) -> pd.DataFrame:
    rows = participants[participants["set"] == set_name]
    if cutoff is None:
        return rows[rows["pcutoff"].isna()]
    return rows[np.isclose(rows["pcutoff"], cutoff)]


def pool_folds(
    runs: pd.DataFrame, participants: pd.DataFrame, pcutoff: float, bootstrap: Bootstrap
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per condition pooled over the folds, and the spread between folds.

    Pooled: the MAE over every fold's points of a set (each participant is in the generalisation
    set of exactly one fold), its participant-level interval by ``bootstrap.method`` (a
    participant's points in all folds count as one participant; ``interval_method`` names the
    method), and the counts summed over folds. The spread: per cell, the fold MAEs'
    minimum, maximum and standard deviation (``<column> fold_min``, ``fold_max``, ``fold_sd``,
    ``folds``). Other columns (run id, tags) are the first fold's; ``run_ids`` lists every fold's.
    """
    pooled_rows, spread_rows = [], []
    for n_frames, folds in runs.sort_values("fold").groupby("labelled_frames", sort=True):
        first = folds.iloc[0].to_dict()
        # per-fold metrics the pooled row recomputes
        row = {k: v for k, v in first.items() if MetricName.parse(k) is None}
        row["run_ids"] = ",".join(r for r in folds["run_id"] if r)
        row["fold"] = ",".join(f"{f:g}" if isinstance(f, float) else str(f) for f in folds["fold"])
        row["interval_method"] = bootstrap.method  # recomputed here, whatever the folds used
        mine = (
            participants[participants["labelled_frames"] == n_frames] if len(participants) else None
        )
        spread = {"labelled frames per video": n_frames}
        for column, cell in table_cells(pcutoff).items():
            spread |= _fold_spread(folds, column, cell.name)
            _pool_cell(row, cell, folds, mine, bootstrap)
        row |= _weighted_over_folds(folds)
        _add_cm(row, _scale(folds))
        _add_counts(row, folds, mine, pcutoff)
        pooled_rows.append(row)
        spread_rows.append(spread)
    spread = pd.DataFrame(spread_rows).set_index("labelled frames per video")
    return pd.DataFrame(pooled_rows).reset_index(drop=True), spread


def _fold_spread(folds: pd.DataFrame, column: str, metric: str) -> dict:
    """The folds' values of one table cell: how many, minimum, maximum, standard deviation."""
    if metric not in folds:
        return {}
    values = folds[metric].dropna()
    if not len(values):
        return {}
    return {
        f"{column} folds": len(values),
        f"{column} fold_min": values.min(),
        f"{column} fold_max": values.max(),
        f"{column} fold_sd": values.std(ddof=1) if len(values) > 1 else np.nan,
    }


def _pool_cell(
    row: dict,
    cell: MetricName,
    folds: pd.DataFrame,
    mine: pd.DataFrame | None,
    bootstrap: Bootstrap,
) -> None:
    """Set one table cell of ``row`` pooled over the folds: the MAE over every participant's points
    with its interval (or the note why none), from the folds' MAEs when no run logged per participant."""
    set_name, cutoff, metric = cell.set, cell.pcutoff, cell.name
    low, high, note = (cell.with_bound(b).name for b in ("low", "high", "note"))
    for name in (metric, low, high):
        row.pop(name, None)
    if metric in folds:
        # evaluated, but perhaps no point kept by the cutoff: an empty cell, as in a single split
        row[metric] = np.nan
    totals = participant_totals(_select(mine, set_name, cutoff)) if mine is not None else []
    if not len(totals):  # no errors per participant: the folds' MAEs weighted by points
        weighted = _points_weighted(folds, metric, set_name, cutoff)
        if weighted is not None:
            row[metric] = weighted
            row[note] = NO_PARTICIPANT_ERRORS
        return
    interval = mae_interval(
        totals["sum_error_px"], totals["n_points"], bootstrap, set_name, pooled=True
    )
    row[metric] = interval.estimate
    if interval.has_interval:
        row[low], row[high] = interval.low, interval.high
    else:
        row[note] = interval.note


def _add_cm(row: dict, cm_per_px: float | None) -> None:
    """Each pixel MAE of ``row`` also in cm, when the data has a scale."""
    for mae in [m for m in map(MetricName.parse, list(row)) if m and m.is_mae]:
        if cm_per_px and mae.unit == "px":
            row[mae.in_unit("cm").name] = row[mae.name] * cm_per_px


def _add_counts(row: dict, folds: pd.DataFrame, mine: pd.DataFrame | None, pcutoff: float) -> None:
    """Per set: frames and points summed over the folds, participants, and the share of points
    the p-cutoff keeps."""
    for set_name in SETS:
        for what in ("n_frames", "n_points", "n_points_ref"):
            name = MetricName(what, set_name).name
            if name in folds:
                row[name] = folds[name].sum(min_count=1)
        if mine is not None:
            rows = _select(mine, set_name, None)
            if len(rows):
                count = MetricName("n_participants", set_name).name
                row[count] = float(rows["participant"].nunique())
                kept = _select(mine, set_name, pcutoff)["n_points"].sum()
                row[MetricName("kept", set_name, pcutoff).name] = kept / rows["n_points"].sum()


def _points_weighted(
    folds: pd.DataFrame, metric: str, set_name: str, cutoff: float | None
) -> float | None:
    """The MAE over all folds' points from the folds' MAEs and point counts (kept points with a
    cutoff); None when the counts are missing."""
    points = MetricName("n_points", set_name).name
    if metric not in folds or points not in folds:
        return None
    weights = folds[points]
    if cutoff is not None:
        kept = MetricName("kept", set_name, cutoff).name
        if kept not in folds:
            return None
        weights = weights * folds[kept]
    both = pd.DataFrame({"mae": folds[metric], "w": weights}).dropna()
    both = both[both["w"] > 0]
    return float(np.average(both["mae"], weights=both["w"])) if len(both) else None


def _weighted_over_folds(folds: pd.DataFrame) -> dict[str, float]:
    """PCK and % of reference of each set over all folds: the folds' values weighted by their
    points with a reference length (exactly the pooled share and mean)."""
    pooled = {}
    for set_name in SETS:
        weights = MetricName("n_points_ref", set_name).name
        if weights not in folds:
            continue
        pck = [m for m in map(MetricName.parse, folds) if m and m.statistic == "pck"]
        names = [m.name for m in pck if m.set == set_name]
        for name in [*names, MetricName("mae", set_name, unit=PCT_REF).name]:
            if name in folds:
                both = folds[[name, weights]].dropna()
                if len(both) and both[weights].sum() > 0:
                    pooled[name] = float(np.average(both[name], weights=both[weights]))
    return pooled


def _scale(folds: pd.DataFrame) -> float | None:
    """cm per pixel, from any fold's pair of ``mae_<set>_cm`` and ``_px`` (None when unknown)."""
    for set_name in SETS:
        px, cm = (MetricName("mae", set_name, unit=u).name for u in ("px", "cm"))
        if px in folds and cm in folds:
            both = folds[[px, cm]].dropna()
            both = both[both[px] > 0]
            if len(both):
                return float(both[cm].iloc[0] / both[px].iloc[0])
    return None


def pool_bodyparts(bodyparts: pd.DataFrame) -> pd.DataFrame:
    """errors/bodyparts.csv of every fold, one row per condition, set, bodypart and cutoff: the MAE
    over all folds' points (weighted by points); other columns (PCK, % ref) likewise."""
    if not len(bodyparts):
        return bodyparts
    keys = ["labelled_frames", "set", "bodypart", "pcutoff"]
    rows = bodyparts.assign(pcutoff=bodyparts["pcutoff"].fillna(-1.0))  # groupby drops NaN keys
    values = [c for c in rows if c not in keys and c not in ("n_points", "kept")]
    weighted = rows[values].mul(rows["n_points"], axis=0).assign(**rows[keys], n=rows["n_points"])
    pooled = weighted.groupby(keys, sort=False).sum(min_count=1)
    pooled[values] = pooled[values].div(pooled["n"], axis=0)
    pooled = pooled.rename(columns={"n": "n_points"}).reset_index()
    return pooled.assign(pcutoff=pooled["pcutoff"].where(pooled["pcutoff"] >= 0))


def participant_matrix(
    participants: pd.DataFrame, set_name: str = "generalisation"
) -> pd.DataFrame:
    """MAE (px) per participant (rows, pseudonyms) and condition (columns), all predictions."""
    rows = _select(participants, set_name, None) if len(participants) else participants
    if not len(rows):
        return pd.DataFrame()
    summed = rows.groupby(["participant", "labelled_frames"])[["sum_error_px", "n_points"]].sum()
    matrix = (summed["sum_error_px"] / summed["n_points"]).unstack("labelled_frames")
    matrix.columns.name, matrix.index.name = "labelled frames per video", "participant"
    return matrix


def participant_long(participants: pd.DataFrame) -> pd.DataFrame:
    """participant_errors.csv: per condition, set, participant and video (and fold), all predictions:
    points, summed error and MAE (px)."""
    columns = ["labelled_frames", "fold", "set", "participant", "video"]
    if not len(participants):
        return pd.DataFrame(columns=[*columns, "n_points", "sum_error_px", "mae_px"])
    rows = participants[participants["pcutoff"].isna()]
    keys = [c for c in columns if c in rows]
    table = rows.groupby(keys, sort=True)[["n_points", "sum_error_px"]].sum().reset_index()
    table["mae_px"] = table["sum_error_px"] / table["n_points"]
    return table


def bodypart_by_participant(
    participants: pd.DataFrame, labelled_frames: int, set_name: str = "generalisation"
) -> pd.DataFrame:
    """MAE (px) per bodypart (rows) and participant (columns) of one condition."""
    rows = _select(participants, set_name, None) if len(participants) else participants
    rows = rows[rows["labelled_frames"] == labelled_frames] if len(rows) else rows
    if not len(rows):
        return pd.DataFrame()
    summed = rows.groupby(["bodypart", "participant"], sort=False)[
        ["sum_error_px", "n_points"]
    ].sum()
    table = (summed["sum_error_px"] / summed["n_points"]).unstack("participant")
    return table.reindex(rows["bodypart"].drop_duplicates())


def decide_frames_to_label(
    participants: pd.DataFrame,
    conditions: list[int],
    margin_pct: float,
    bootstrap: Bootstrap,
) -> FramesToLabel:
    """:func:`frames_to_label` on the generalisation errors of ``conditions`` (all predictions).

    The generalisation set answers "how well on a new patient"; across folds every participant's
    errors count once per condition.
    """
    rows = _select(participants, "generalisation", None) if len(participants) else participants
    totals = {
        n: participant_totals(rows[rows["labelled_frames"] == n])
        for n in conditions
        if len(rows) and (rows["labelled_frames"] == n).any()
    }
    if not totals:
        return FramesToLabel(
            None,
            None,
            np.nan,
            {},
            "How many frames to label: not decided, no run logged its errors per participant "
            f"({PARTICIPANTS_ARTIFACT}); evaluate the conditions again (`dvc repro` or "
            "`python -m src.train +sweep=frames`).",
        )
    return frames_to_label(totals, margin_pct, bootstrap, pooled="fold" in rows)
