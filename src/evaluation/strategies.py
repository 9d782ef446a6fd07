"""MAE on the generalisation frames against labelled frames per video, one line per frame-selection
strategy, on one picture: k-means (the study's conditions) and active (its labelling rounds,
``pipeline.rounds``, docs/active_labelling.md; round 1 is k-means' condition 1, the same model).
The report writes ``strategies.png`` and ``strategies.csv`` only when a round has been trained
(``<pipeline.dir>/rounds/<name>/run.yaml``); without one it writes neither.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib.ticker import ScalarFormatter
from matplotlib.transforms import offset_copy
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src.evaluation.plots import plt  # the Agg backend, set there before pyplot loads
from src.evaluation.study_errors import interval_bounds
from src.evaluation.tables import ReportData, paper_table
from src.tracking.queries import collect_runs

COLUMN = "generalisation"  # the column of the paper's table both strategies are judged on
STRATEGIES = ("kmeans", "active")


def round_run_ids(cfg: DictConfig) -> list[str]:
    """The MLflow runs of the study's trained rounds (their round stage's run.yaml)."""
    ids = []
    for name in cfg.pipeline.get("rounds") or {}:
        record = Path(str(cfg.pipeline.dir)) / "rounds" / str(name) / "run.yaml"
        if record.is_file():
            ids.append(str(yaml.safe_load(record.read_text(encoding="utf-8"))["run_id"]))
    return ids


def _rows(strategy: str, table: pd.DataFrame, low: pd.DataFrame, high: pd.DataFrame):
    return pd.DataFrame(
        {
            "strategy": strategy,
            "labelled_frames": table.index.astype(int),
            "mae_px": table[COLUMN].to_numpy(),
            "ci_low": low[COLUMN].reindex(table.index).to_numpy(),
            "ci_high": high[COLUMN].reindex(table.index).to_numpy(),
        }
    )


def strategy_table(data: ReportData, rounds: pd.DataFrame) -> pd.DataFrame:
    """strategy, labelled_frames, mae_px, ci_low, ci_high: k-means' conditions (``data``, the
    report's table) and the rounds' runs (``rounds``, collect_runs), with k-means' condition 1 as
    active round 1."""
    kmeans = _rows("kmeans", data.table, *data.bounds)
    active = _rows(
        "active", paper_table(rounds, data.pcutoff), *interval_bounds(rounds, data.pcutoff)
    )
    first = kmeans[kmeans["labelled_frames"] == 1]
    if 1 not in set(active["labelled_frames"]):
        active = pd.concat([first.assign(strategy="active"), active])
    table = pd.concat([kmeans, active], ignore_index=True).dropna(subset=["mae_px"])
    return table.sort_values(["strategy", "labelled_frames"], key=_strategy_order).reset_index(
        drop=True
    )


def _strategy_order(column: pd.Series) -> pd.Series:
    return column.map(STRATEGIES.index) if column.name == "strategy" else column


def strategies_figure(table: pd.DataFrame, confidence: float = 0.95) -> plt.Figure:
    """Both strategies' generalisation MAE against labelled frames per video, with interval bars
    where a cell has both bounds."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120, layout="constrained")
    drawn = 0
    groups = table.groupby("strategy", sort=False)
    for colour, shift, (strategy, rows) in zip(("C0", "C3"), (-3, 3), groups):
        label = "k-means (the conditions)" if strategy == "kmeans" else "active (the rounds)"
        # a few points apart: both strategies share round 1, whose bars would hide each other
        # (set after drawing, so that the axes' limits still follow the data)
        shifted = offset_copy(ax.transData, fig=fig, x=shift, units="points")
        drawn_here = ax.plot(
            rows["labelled_frames"], rows["mae_px"], "-o", color=colour, label=label
        )
        bars = rows.dropna(subset=["ci_low", "ci_high"])
        drawn += len(bars)
        if len(bars):
            drawn_here += ax.errorbar(
                bars["labelled_frames"],
                bars["mae_px"],
                yerr=np.vstack(
                    [
                        (bars["mae_px"] - bars["ci_low"]).clip(lower=0),
                        (bars["ci_high"] - bars["mae_px"]).clip(lower=0),
                    ]
                ),
                fmt="none",
                ecolor=colour,
                capsize=4,
                label=f"_interval {strategy}",
            ).get_children()
        for artist in drawn_here:
            artist.set_transform(shifted)
    budgets = sorted(set(table["labelled_frames"]))
    ax.set(
        title="generalisation, all predictions"
        + (f" (bars: {confidence:.0%} interval)" if drawn else " (no interval logged)"),
        xlabel="labelled frames per video",
        ylabel="MAE (px)",
        xscale="symlog",
        yscale="log",
        xticks=budgets,
        xticklabels=[str(n) for n in budgets],
    )
    ax.yaxis.set_major_formatter(ScalarFormatter())  # MAE in plain pixels, not 2.8 x 10^1
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def write_strategies(
    cfg: DictConfig, client: MlflowClient, experiment_id: str, data: ReportData, out_dir: Path
) -> Path | None:
    """strategies.csv and strategies.png in ``out_dir`` when a round has been trained; returns the
    picture, or None (and writes nothing) without rounds."""
    ids = round_run_ids(cfg)
    if not ids:
        return None
    rounds = collect_runs(client, experiment_id, run_ids=ids)
    table = strategy_table(data, rounds)
    table.to_csv(Path(out_dir) / "strategies.csv", index=False, float_format="%.6g")
    fig = strategies_figure(table, data.bootstrap.confidence)
    path = Path(out_dir) / "strategies.png"
    fig.savefig(path)
    plt.close(fig)
    return path
