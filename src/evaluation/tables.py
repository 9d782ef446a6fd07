"""The report's tables: pure functions of the runs' records (a DataFrame per run, as
src/tracking/queries.py collect_runs and src/tracking/runs.py give them), no MLflow, no files.

:class:`ReportData` holds what a report shows; :func:`paper_table` is the paper's Table 1 layout,
:func:`cell_basis` what each cell rests on, :func:`small_cells` the cells on small sets,
:func:`results_table` results.csv and :func:`how_many_frames` the frames-to-label answer.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from src.errors import DataError
from src.evaluation.metric_names import PCT_REF, SETS, MetricName, table_cells, table_columns
from src.evaluation.study_errors import Bootstrap, decide_frames_to_label, interval_bounds
from src.evaluation.uncertainty import (
    NO_INTERVAL,
    FramesToLabel,
    PowerLawFit,
    fit_power_law,
    power_law_sentence,
    too_few_note,
)
from src.tracking.runs import RUN_TAGS

if TYPE_CHECKING:  # a field's type only: the tables do not draw
    from src.evaluation.plots import FrameExamples

INDEX = "labelled frames per video"
SMALL = "†"  # a cell on fewer than report.min_participants participants or report.min_points points
NOTED = "‡"  # a row evaluated differently (condition_note / bodyparts_evaluated)


def paper_table(runs: pd.DataFrame, pcutoff: float, unit: str = "px") -> pd.DataFrame:
    """The paper's Table 1 layout: MAE per condition (rows) for train, test, generalisation, +/- p-cutoff."""
    c = f"{pcutoff:g}"
    columns = table_columns(pcutoff, unit)
    # all skipped: nothing to check
    evaluated = any(_statistic(name) == "mae" for name in runs)
    if unit == "px" and evaluated and columns[f"test, p-cutoff {c}"] not in runs:
        raise DataError(
            f"the sweep was not evaluated at p-cutoff {c} (no metric "
            f"{MetricName('mae', 'test', pcutoff).name}); choose "
            f"report.pcutoff among its evaluation.pcutoffs or add it: `python -m src.train +sweep=cutoff`."
        )
    table = runs.set_index("labelled_frames").reindex(columns=list(columns.values()))
    table.columns, table.index.name = list(columns), INDEX
    return table


def cell_basis(runs: pd.DataFrame, pcutoff: float) -> pd.DataFrame:
    """What each cell of :func:`paper_table` rests on: participants, frames and points per cell.

    Columns ``(<table column>, participants|frames|points)``; a p-cutoff cell's points are those
    kept by the cutoff. NaN where the run did not log the counts (runs logged before they existed).
    """
    c = f"{pcutoff:g}"
    indexed = runs.set_index("labelled_frames")

    def metric(name: str) -> pd.Series:
        return indexed[name] if name in indexed else pd.Series(np.nan, index=indexed.index)

    columns = {}
    for set_name in SETS:
        participants = metric(MetricName("n_participants", set_name).name)
        frames = metric(MetricName("n_frames", set_name).name)
        points = metric(MetricName("n_points", set_name).name)
        kept = (points * metric(MetricName("kept", set_name, pcutoff).name)).round()
        cells = [(set_name, points)]
        if set_name != "train":  # Table 1 has no train column with the p-cutoff
            cells.append((f"{set_name}, p-cutoff {c}", kept))
        for column, n_points in cells:
            columns |= {
                (column, "participants"): participants,
                (column, "frames"): frames,
                (column, "points"): n_points,
            }
    basis = pd.DataFrame(columns)
    basis.index.name = INDEX
    return basis


def small_cells(
    table: pd.DataFrame, basis: pd.DataFrame, min_participants: int, min_points: int
) -> pd.DataFrame:
    """True for each cell of ``table`` with a value that rests on fewer than ``min_participants``
    participants or ``min_points`` points (p-cutoff cells: kept points)."""
    flags = pd.DataFrame(False, index=table.index, columns=table.columns)
    for column in table.columns:
        participants = basis[(column, "participants")].reindex(table.index)
        points = basis[(column, "points")].reindex(table.index)
        flags[column] = table[column].notna() & (
            (participants < min_participants) | (points < min_points)
        )
    return flags


def small_sets_text(flags: pd.DataFrame, basis: pd.DataFrame) -> str:
    """The flagged cells in one line (the parent run's tag ``small_sets``), "" when none."""
    cells = []
    for n_frames, row in flags.iterrows():
        for column in row.index[row.to_numpy(dtype=bool)]:
            n_participants = basis.loc[n_frames, (column, "participants")]
            n_points = basis.loc[n_frames, (column, "points")]
            cells.append(
                f"frames={n_frames} {column} ({count_text(n_participants)} participants, "
                f"{count_text(n_points)} points)"
            )
    return "; ".join(cells)


def with_skipped(runs: pd.DataFrame, skipped: dict[int, str]) -> pd.DataFrame:
    """``runs`` with the reason of each skipped condition (a row of its own when it has no run)."""
    runs = runs.copy()
    if "skipped_reason" not in runs:
        runs["skipped_reason"] = ""
    for n_frames, reason in skipped.items():
        here = runs["labelled_frames"] == n_frames
        if here.any():
            runs.loc[here, "skipped_reason"] = runs.loc[here, "skipped_reason"].where(
                runs.loc[here, "skipped_reason"].astype(bool), reason
            )
        else:
            row = {"labelled_frames": n_frames, "run_id": "", "run_name": "", "status": "SKIPPED"}
            runs = pd.concat([runs, pd.DataFrame([row | {"skipped_reason": reason}])])
    return runs.fillna({c: "" for c in RUN_TAGS if c in runs}).sort_values(
        "labelled_frames", ignore_index=True
    )


@dataclass(frozen=True, eq=False)
class ReportData:
    """What a report shows: the runs of a sweep (:func:`collect_runs`) and tables made from them.

    ``table`` and ``table_cm`` are :func:`paper_table` in pixels and cm; ``bodyparts`` and
    ``losses`` come from :func:`bodypart_errors` and :func:`loss_histories`; ``paper`` is the
    paper's Table 1; ``dataset`` is :func:`dataset_facts`. Whatever is None is left out of the
    report (its plot says so). ``runs`` may hold the :data:`RUN_TAGS` columns
    (:func:`with_run_tags`); cells on fewer than ``min_participants`` participants or
    ``min_points`` points are flagged.
    """

    runs: pd.DataFrame
    table: pd.DataFrame
    _: KW_ONLY
    pcutoff: float = 0.8
    table_cm: pd.DataFrame | None = None
    bodyparts: pd.DataFrame | None = None
    losses: pd.DataFrame | None = None
    paper: pd.DataFrame | None = None
    dataset: dict | None = None
    min_participants: int = 3
    min_points: int = 100
    title: str = ""
    sweep_note: str = ""
    participants: pd.DataFrame | None = None
    fold_spread: pd.DataFrame | None = None
    bootstrap: Bootstrap = Bootstrap()
    margin_pct: float = 10.0
    frame_examples: FrameExamples | None = None  # labelled_vs_predicted.png
    trust: pd.DataFrame | None = None  # src/evaluation/trust_table.py trust_validation
    trust_thresholds: pd.DataFrame | None = None  # trust_table.py threshold_table

    @property
    def basis(self) -> pd.DataFrame:
        return cell_basis(self.runs, self.pcutoff)

    @property
    def bounds(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Lower and upper interval bounds of each cell of ``table`` (NaN: none logged)."""
        low, high = interval_bounds(self.runs, self.pcutoff)
        return low.reindex(self.table.index), high.reindex(self.table.index)

    @property
    def interval_notes(self) -> pd.DataFrame:
        """Per cell of ``table`` without bounds: why (empty when unknown or when it has bounds).

        A run that logged intervals left out only those of sets with 1 participant; runs
        evaluated before intervals existed logged none, and say nothing. Pooled folds say
        why in ``<metric>_ci_note``.
        """
        indexed = self.runs.set_index("labelled_frames")
        logged = [c for c in indexed if _bound(c) in ("low", "high")]
        any_logged = indexed[logged].notna().any(axis=1)
        low, high = self.bounds
        notes = pd.DataFrame("", index=self.table.index, columns=self.table.columns)
        for column, metric in table_cells(self.pcutoff).items():
            why = metric.with_bound("note").name
            for n in self.table.index:
                if pd.notna(low.loc[n, column]) and pd.notna(high.loc[n, column]):
                    continue
                note = indexed[why].get(n) if why in indexed else None
                if isinstance(note, str) and note:
                    notes.loc[n, column] = note
                elif _tagged(indexed, n) and self.basis.loc[n, (column, "participants")] < (
                    self.bootstrap.min_participants
                ):
                    count = int(self.basis.loc[n, (column, "participants")])
                    notes.loc[n, column] = too_few_note(count, column.split(",")[0])
                elif any_logged.get(n, False):
                    notes.loc[n, column] = NO_INTERVAL
        return notes

    @property
    def small(self) -> pd.DataFrame:
        return small_cells(self.table, self.basis, self.min_participants, self.min_points)


def _statistic(name: str) -> str | None:
    metric = MetricName.parse(name)
    return None if metric is None else metric.statistic


def _bound(name: str) -> str | None:
    metric = MetricName.parse(name)
    return None if metric is None else metric.bound


def _tagged(indexed: pd.DataFrame, n_frames) -> bool:
    """True when the condition's run recorded its interval method (it applied the minimum)."""
    method = indexed["interval_method"].get(n_frames, "") if "interval_method" in indexed else ""
    return isinstance(method, str) and bool(method)


def results_table(data: ReportData) -> pd.DataFrame:
    """results.csv: the MAE table, unrounded, and what each row and cell rests on.

    Per set ``<set> participants``, ``<set> frames``, ``<set> points`` and the points kept by the
    p-cutoff (``<set>, p-cutoff <c> points``); ``snapshot`` and ``epoch`` evaluated; ``note`` (a
    skipped condition's reason, a condition evaluated differently); ``small sets``: the row's
    cells on small sets, separated by ``;``.
    """
    basis, flags = data.basis, data.small
    table = data.table.copy()
    c = f"{data.pcutoff:g}"
    low, high = data.bounds
    for column in data.table.columns:
        table[f"{column} ci_low"], table[f"{column} ci_high"] = low[column], high[column]
    if data.fold_spread is not None:
        table = table.join(data.fold_spread)
    for set_name in SETS:
        for what in ("participants", "frames", "points"):
            table[f"{set_name} {what}"] = basis[(set_name, what)].astype("Int64")
        if (f"{set_name}, p-cutoff {c}", "points") in basis:
            kept = basis[(f"{set_name}, p-cutoff {c}", "points")]
            table[f"{set_name}, p-cutoff {c} points"] = kept.astype("Int64")
    tags = run_tags(data.runs)
    table["snapshot"] = tags["evaluated_snapshot"]
    table["epoch"] = pd.to_numeric(tags["evaluated_epoch"], errors="coerce").astype("Int64")
    table["note"] = [row_note(row) for _, row in tags.iterrows()]
    table["small sets"] = [
        "; ".join(row.index[row.to_numpy(dtype=bool)]) for _, row in flags.iterrows()
    ]
    return table


def how_many_frames(data: ReportData) -> tuple[FramesToLabel, PowerLawFit, str]:
    """The "frames to label" decision, the power law fitted to the generalisation MAE and its sentence.

    Conditions evaluated differently (condition 0 on shared bodyparts only) or skipped are not
    compared: their MAE is not over the same points.
    """
    tags = run_tags(data.runs)
    comparable = [
        int(n)
        for n in data.table.index
        if not tags.loc[n, "skipped_reason"] and not tags.loc[n, "bodyparts_evaluated"]
    ]
    participants = data.participants if data.participants is not None else pd.DataFrame()
    decision = decide_frames_to_label(participants, comparable, data.margin_pct, data.bootstrap)
    generalisation = data.table["generalisation"].reindex(comparable).dropna()
    low, high = (b["generalisation"].reindex(generalisation.index) for b in data.bounds)
    z = NormalDist().inv_cdf(0.5 + data.bootstrap.confidence / 2)
    fit = fit_power_law(generalisation.index, generalisation, (high - low) / (2 * z))
    largest = int(generalisation.index.max()) if len(generalisation) else 0
    return decision, fit, power_law_sentence(fit, largest)


def pck_table(runs: pd.DataFrame) -> pd.DataFrame:
    """PCK (%) and error as % of the reference length per condition and set, from the runs."""
    parsed = {c: MetricName.parse(c) for c in runs}
    metrics = {c: m for c, m in parsed.items() if m and (m.statistic == "pck" or m.unit == PCT_REF)}
    if not metrics:
        return pd.DataFrame()
    table = runs.set_index("labelled_frames")[list(metrics)].copy()
    pck = [c for c, m in metrics.items() if m.statistic == "pck"]
    table[pck] = table[pck] * 100
    table.columns = [
        f"{m.set} PCK@{m.fraction:g} (%)" if m.statistic == "pck" else f"{m.set} % ref"
        for m in metrics.values()
    ]
    return table.rename_axis(INDEX).sort_index(axis=1)


def run_tags(runs: pd.DataFrame) -> pd.DataFrame:
    """The :data:`RUN_TAGS` (and model_source) of each condition, indexed by labelled frames."""
    wanted = [*RUN_TAGS, "model_source"]
    tags = runs.set_index("labelled_frames").reindex(columns=wanted)
    return tags.fillna("").astype(str).rename_axis(INDEX)


def row_note(row: pd.Series, short: bool = False) -> str:
    """A skipped condition's reason, or what is different about a condition's evaluation."""
    if row["skipped_reason"]:
        return f"skipped: {row['skipped_reason']}"
    note, bodyparts = row["condition_note"], row["bodyparts_evaluated"]
    if short:
        if bodyparts:
            return f"{NOTED} bodyparts {bodyparts.split(':')[0]}"
        return NOTED if note else ""
    if note and bodyparts:
        return f"{note} (bodyparts evaluated: {bodyparts})"
    return note or (f"bodyparts evaluated: {bodyparts}" if bodyparts else "")


def count_text(value) -> str:
    return "?" if pd.isna(value) else f"{int(value)}"
