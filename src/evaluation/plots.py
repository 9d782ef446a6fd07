"""Pictures of a run (loss, error per bodypart, predicted frames) and of a study (MAE against frames, losses)."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import pandas as pd

from src.evaluation.metrics import SETS, tidy

log = logging.getLogger(__name__)


def plot_losses(learning_stats: pd.DataFrame, path: Path) -> Path:
    """Training and test loss per epoch, from DeepLabCut's learning_stats.csv."""

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    for column, label in [("losses/train.total_loss", "train"), ("losses/eval.total_loss", "test")]:
        if column in learning_stats:
            series = learning_stats[["step", column]].dropna()
            ax.plot(
                series["step"], series[column], marker="." if label == "test" else None, label=label
            )
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="DeepLabCut training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_bodypart_errors_of_run(table: pd.DataFrame, path: Path) -> Path:
    """Bar chart of MAE per bodypart for each set (all predictions)."""

    wide = table[table["pcutoff"].isna()].pivot(index="bodypart", columns="set", values="mae_px")
    wide = wide.reindex(
        index=table["bodypart"].drop_duplicates(), columns=[s for s in SETS if s in wide]
    )
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=120)
    wide.plot.bar(ax=ax, width=0.8)
    ax.set(ylabel="MAE (px)", xlabel="", title="Error per bodypart")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def draw_frames(
    predictions: pd.DataFrame, image_root: Path, path: Path, n_frames: int, pcutoff: float
) -> Path | None:
    """A strip of frames with labelled (green circles) and predicted (red crosses) points.

    Predictions below ``pcutoff`` are drawn hollow grey. Returns None when there is nothing to draw.
    """
    import cv2

    frames = predictions.drop_duplicates(["video", "frame"]).head(n_frames)
    tiles = []
    for frame in frames.itertuples():
        image = cv2.imread(str(Path(image_root) / frame.image))
        if image is None:
            continue
        image = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        points = predictions[
            (predictions["video"] == frame.video) & (predictions["frame"] == frame.frame)
        ]
        for point in points.itertuples():
            if not np.isnan(point.x_label):
                cv2.circle(
                    image,
                    (round(2 * point.x_label), round(2 * point.y_label)),
                    4,
                    (0, 200, 0),
                    1,
                    cv2.LINE_AA,
                )
            colour = (0, 0, 230) if point.likelihood >= pcutoff else (150, 150, 150)
            cv2.drawMarker(
                image,
                (round(2 * point.x_pred), round(2 * point.y_pred)),
                colour,
                cv2.MARKER_CROSS,
                7,
                1,
            )
        tiles.append(image)
    if not tiles:
        return None
    height = max(t.shape[0] for t in tiles)
    strip = np.hstack(
        [cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 4, cv2.BORDER_CONSTANT) for t in tiles]
    )
    cv2.imwrite(str(path), strip)
    return path


def plot_mae_vs_frames(table: pd.DataFrame, paper: pd.DataFrame | None, path: Path) -> Path:
    """MAE against labelled frames per set, all predictions (left) and with the p-cutoff (right)."""
    ours, theirs = tidy(table), tidy(paper) if paper is not None else None
    conditions = table.index.tolist()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=120, sharey=True, layout="constrained")
    for ax, with_cutoff in zip(axes, (False, True)):
        for colour, set_name in zip(("C0", "C1", "C2"), SETS):
            for data, style, label in (
                (ours, "-o", set_name),
                (theirs, "--", f"{set_name} (paper)"),
            ):
                if data is None:
                    continue
                rows = data[(data["set"] == set_name) & (data["with_pcutoff"] == with_cutoff)]
                if len(rows):
                    ax.plot(
                        rows["labelled_frames"],
                        rows["mae_px"],
                        style,
                        color=colour,
                        label=label,
                        alpha=1 if style == "-o" else 0.6,
                    )
        cutoff = next((col.split("p-cutoff ")[1] for col in table.columns if "p-cutoff" in col), "")
        ax.set(
            title=f"p-cutoff {cutoff}" if with_cutoff else "all predictions",
            xlabel="labelled frames per video",
            xscale="symlog",
            yscale="log",
            xticks=conditions,
            xticklabels=[str(n) for n in conditions],
        )
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("MAE (px)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=8)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_bodypart_errors_by_condition(bodyparts: pd.DataFrame, path: Path) -> Path:
    """Heatmaps of MAE per bodypart (rows) and condition (columns), test and generalisation, all predictions."""
    rows = bodyparts[bodyparts["pcutoff"].isna()]
    order = rows["bodypart"].drop_duplicates()
    sets = [s for s in ("test", "generalisation") if s in set(rows["set"])]
    wide = {
        s: rows[rows["set"] == s]
        .pivot(index="bodypart", columns="labelled_frames", values="mae_px")
        .reindex(order)
        for s in sets
    }
    vmax = max(w.max().max() for w in wide.values())
    fig, axes = plt.subplots(
        1,
        len(sets),
        figsize=(4.5 * len(sets) + 2, 0.3 * len(order) + 1.6),
        dpi=120,
        sharey=True,
        squeeze=False,
    )
    for ax, (set_name, w) in zip(axes[0], wide.items()):
        image = ax.imshow(w, cmap="magma_r", vmin=0, vmax=vmax, aspect="auto")
        for (i, j), value in np.ndenumerate(w.to_numpy()):
            if value == value:
                ax.text(
                    j,
                    i,
                    f"{value:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > 0.6 * vmax else "black",
                )
        ax.set(
            title=set_name,
            xlabel="labelled frames per video",
            xticks=range(w.shape[1]),
            yticks=range(w.shape[0]),
            xticklabels=w.columns,
            yticklabels=w.index,
        )
    fig.colorbar(image, ax=axes[0].tolist(), label="MAE (px)")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_nothing(message: str, path: Path) -> Path:
    """A small picture that says why a plot is empty (every plot file the report promises exists)."""
    fig = plt.figure(figsize=(5, 1), dpi=100)
    fig.text(0.5, 0.5, message, ha="center", va="center", fontsize=9)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_loss_curves(losses: pd.DataFrame, path: Path) -> Path:
    """Training and test loss per epoch, one line per condition."""
    conditions = sorted(losses["labelled_frames"].unique())
    colours = dict(zip(conditions, plt.cm.viridis(np.linspace(0, 0.9, len(conditions)))))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120, sharey=True)
    for ax, name in zip(axes, ("loss_train", "loss_test")):
        for n, rows in losses[losses["metric"] == name].groupby("labelled_frames"):
            ax.plot(
                rows["step"],
                rows["value"],
                marker="." if name == "loss_test" else None,
                color=colours[n],
                label=str(n),
            )
        ax.set(title=name.replace("loss_", "") + " loss", xlabel="epoch", yscale="log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("loss")
    axes[1].legend(fontsize=8, title="labelled frames\nper video")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_learning_curve(
    table: pd.DataFrame,
    low: pd.DataFrame,
    high: pd.DataFrame,
    path: Path,
    fit=None,
    chosen: int | None = None,
) -> Path:
    """Generalisation and test MAE against labelled frames with their intervals (bars), the fitted
    power law (dashed; its label says when not to trust it) and the "frames to label" answer."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120, layout="constrained")
    for colour, column in (("C2", "generalisation"), ("C1", "test")):
        if column not in table:
            continue
        shown = pd.DataFrame(
            {"mae": table[column], "low": low[column], "high": high[column]}
        ).dropna(subset=["mae"])
        if not len(shown):
            continue
        errors = np.vstack([shown["mae"] - shown["low"], shown["high"] - shown["mae"]])
        ax.errorbar(
            shown.index,
            shown["mae"],
            yerr=np.where(np.isfinite(errors), errors, 0),
            fmt="-o",
            color=colour,
            capsize=3,
            label=f"{column} (bars: interval)",
        )
    if fit is not None and fit.fitted:
        largest = max(int(n) for n in table.index)
        n = np.linspace(1, 2 * largest, 200)
        label = "power law" + ("" if fit.trustworthy else " (not trustworthy)")
        ax.plot(n, fit.predict(n), "--", color="C2", alpha=0.7, label=label)
    if chosen is not None:
        ax.axvline(chosen, color="grey", linestyle=":", label=f"frames to label: {chosen}")
    conditions = [int(n) for n in table.index]
    ax.set(
        xlabel="labelled frames per video",
        ylabel="MAE (px)",
        xscale="symlog",
        xticks=conditions,
        xticklabels=[str(n) for n in conditions],
        title="Learning curve",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_participant_errors(
    by_condition: pd.DataFrame, by_bodypart: pd.DataFrame, condition: int | None, path: Path
) -> Path:
    """Heatmaps: MAE per generalisation participant (pseudonym) and condition (left), and per
    bodypart and participant at one condition (right)."""
    panels = [("MAE per participant and condition", by_condition, "labelled frames per video")]
    if len(by_bodypart):
        panels.append((f"per bodypart at {condition} frames", by_bodypart, "participant"))
    vmax = max(float(np.nanmax(p.to_numpy())) for _, p, _ in panels)
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(
            sum(0.7 * p.shape[1] + 2.5 for _, p, _ in panels) + 1.5,
            0.3 * max(p.shape[0] for _, p, _ in panels) + 2,
        ),
        dpi=120,
        squeeze=False,
    )
    for ax, (title, panel, xlabel) in zip(axes[0], panels):
        image = ax.imshow(panel.to_numpy(float), cmap="magma_r", vmin=0, vmax=vmax, aspect="auto")
        for (i, j), value in np.ndenumerate(panel.to_numpy(float)):
            if value == value:
                ax.text(
                    j,
                    i,
                    f"{value:.1f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > 0.6 * vmax else "black",
                )
        ax.set(
            title=title,
            xlabel=xlabel,
            xticks=range(panel.shape[1]),
            yticks=range(panel.shape[0]),
            xticklabels=[str(c) for c in panel.columns],
            yticklabels=[str(r) for r in panel.index],
        )
        ax.tick_params(axis="x", labelrotation=45 if xlabel == "participant" else 0)
    fig.colorbar(image, ax=axes[0].tolist(), label="MAE (px)")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
