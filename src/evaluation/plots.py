"""Pictures of a run (loss, error per bodypart, predicted frames) and of a study (MAE against frames, losses)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import pandas as pd

from src.evaluation.metric_names import SETS
from src.evaluation.metrics import tidy

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


# The sets whose interval is drawn as bars on the MAE against frames (train is a fit, not an estimate).
INTERVAL_SETS = ("test", "generalisation")


def mae_vs_frames_figure(
    table: pd.DataFrame,
    paper: pd.DataFrame | None,
    low: pd.DataFrame | None = None,
    high: pd.DataFrame | None = None,
    confidence: float = 0.95,
) -> plt.Figure:
    """MAE against labelled frames per set, all predictions (left) and with the p-cutoff (right);
    test and generalisation cells with an interval (``low``/``high``, shaped like ``table``) carry
    it as bars (error bar containers labelled ``_interval <column>``), cells without one a plain
    point."""
    ours, theirs = tidy(table), tidy(paper) if paper is not None else None
    conditions = table.index.tolist()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=120, sharey=True, layout="constrained")
    for ax, with_cutoff in zip(axes, (False, True)):
        for colour, set_name in zip(("C0", "C1", "C2"), SETS):
            column = next(
                (
                    c
                    for c in table.columns
                    if c.split(",")[0] == set_name and ("p-cutoff" in c) == with_cutoff
                ),
                None,
            )
            bars = _interval_bars(ax, table, low, high, column, colour) if column else 0
            for data, style, label in (
                (ours, "-o", f"{set_name} (bars: {confidence:.0%} interval)" if bars else set_name),
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
    handles = dict(zip(*reversed(axes[0].get_legend_handles_labels())))
    for ax in axes[1:]:  # a set with bars on the right only still says so
        handles |= dict(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(list(handles.values()), list(handles), loc="outside right center", fontsize=8)
    return fig


def _interval_bars(
    ax: plt.Axes,
    table: pd.DataFrame,
    low: pd.DataFrame | None,
    high: pd.DataFrame | None,
    column: str,
    colour: str,
) -> int:
    """Error bars of ``column``'s cells that have both bounds (test and generalisation only);
    returns how many were drawn."""
    if low is None or high is None or column.split(",")[0] not in INTERVAL_SETS:
        return 0
    if column not in low or column not in high:
        return 0
    shown = pd.DataFrame(
        {"mae": table[column], "low": low[column], "high": high[column]}, index=table.index
    ).dropna()
    if not len(shown):
        return 0
    below = (shown["mae"] - shown["low"]).clip(lower=0)
    above = (shown["high"] - shown["mae"]).clip(lower=0)
    ax.errorbar(
        shown.index,
        shown["mae"],
        yerr=np.vstack([below, above]),
        fmt="none",
        ecolor=colour,
        elinewidth=1.2,
        capsize=4,
        label=f"_interval {column}",  # "_": not in the legend; the line's label says "bars"
    )
    return len(shown)


def plot_mae_vs_frames(
    table: pd.DataFrame,
    paper: pd.DataFrame | None,
    path: Path,
    low: pd.DataFrame | None = None,
    high: pd.DataFrame | None = None,
    confidence: float = 0.95,
) -> Path:
    """:func:`mae_vs_frames_figure` saved to ``path``."""
    return _save(mae_vs_frames_figure(table, paper, low, high, confidence), path)


def _save(fig: plt.Figure, path: Path, **options) -> Path:
    fig.savefig(path, **options)
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


def participant_errors_figure(
    by_condition: pd.DataFrame, by_bodypart: pd.DataFrame, condition: int | None
) -> plt.Figure:
    """Heatmaps with one row per generalisation participant (pseudonym), in ``by_condition``'s
    order in both: MAE per condition (left) and per bodypart at one condition (right;
    ``by_bodypart`` is bodypart x participant). The panels share the y axis, so a row is one
    participant across the picture and only the left panel carries the names."""
    panels = [("MAE per participant and condition", by_condition, "labelled frames per video")]
    if len(by_bodypart):
        per_participant = by_bodypart.T.reindex(by_condition.index)  # the left panel's order
        panels.append((f"per bodypart at {condition} frames", per_participant, "bodypart"))
    vmax = max(float(np.nanmax(p.to_numpy(float))) for _, p, _ in panels)
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(
            sum(0.6 * p.shape[1] + 1.5 for _, p, _ in panels) + 3.5,
            0.3 * by_condition.shape[0] + 2.2,
        ),
        dpi=120,
        squeeze=False,
        sharey=True,
        width_ratios=[max(p.shape[1], 1) for _, p, _ in panels],
        layout="constrained",
    )
    for ax, (title, panel, xlabel) in zip(axes[0], panels):
        values = panel.to_numpy(float)
        image = ax.imshow(values, cmap="magma_r", vmin=0, vmax=vmax, aspect="auto")
        for (i, j), value in np.ndenumerate(values):
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
            xticklabels=[str(c) for c in panel.columns],
        )
        ax.tick_params(axis="x", labelrotation=45 if xlabel == "bodypart" else 0)
    axes[0][0].set(
        yticks=range(by_condition.shape[0]),
        yticklabels=[str(r) for r in by_condition.index],
        ylabel="participant",
    )
    fig.colorbar(image, ax=axes[0].tolist(), label="MAE (px)")
    return fig


def plot_participant_errors(
    by_condition: pd.DataFrame, by_bodypart: pd.DataFrame, condition: int | None, path: Path
) -> Path:
    """:func:`participant_errors_figure` saved to ``path``."""
    return _save(participant_errors_figure(by_condition, by_bodypart, condition), path)


@dataclass(frozen=True)
class FrameExample:
    """One labelled frame of a model's evaluation, to draw labels against predictions on."""

    kind: str  # what the frame shows, e.g. "good: lowest error"
    participant: str  # pseudonym
    video: str  # pseudonym
    frame: int
    points: pd.DataFrame  # bodypart, x_label, y_label, x_pred, y_pred, error_px (labelled points)
    size: tuple[int, int]  # the frame's width and height (px): the canvas
    image: np.ndarray | None = (
        None  # the real frame; None: not allowed (data.log_media) or not found
    )


@dataclass(frozen=True)
class FrameExamples:
    """Frames of one condition's run to draw (:func:`plot_labelled_vs_predicted`)."""

    condition: int  # labelled frames per video of the model shown
    examples: list[FrameExample]
    skeleton: list[list[str]] = field(default_factory=list)  # pairs of bodyparts
    cm_per_px: float | None = None
    media_allowed: bool = False  # data.log_media: may a real frame be shown
    set_name: str = "generalisation"


LABELLED, PREDICTED = "#1a9850", "#d73027"  # green labels, red predictions


def labelled_vs_predicted_figure(shown: FrameExamples) -> plt.Figure:
    """Each example frame with its labelled (green circles) and predicted (red crosses) points,
    the skeleton of both and a line from label to prediction; its caption names the participant
    by pseudonym and the frame's mean error in px and cm. The real frame is drawn only when
    ``shown.media_allowed`` and it was read; otherwise a grey canvas of the frame's size."""
    examples = shown.examples
    fig, axes = plt.subplots(
        1, len(examples), figsize=(5.2 * len(examples), 5.4), dpi=120, layout="constrained"
    )
    for ax, example in zip(np.atleast_1d(axes), examples):
        _draw_frame(ax, example, shown.skeleton, shown.media_allowed)
        error = float(example.points["error_px"].mean())
        in_cm = (
            f" = {error * shown.cm_per_px:.2f} cm"
            if shown.cm_per_px
            else " (cm: the data set's scale is unknown)"
        )
        ax.set_title(example.kind, fontsize=10)
        ax.text(  # the error written on the frame itself
            0.02,
            0.97,
            f"{error:.1f} px" + (f" = {error * shown.cm_per_px:.2f} cm" if shown.cm_per_px else ""),
            transform=ax.transAxes,
            va="top",
            fontsize=10,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
        )
        ax.set_xlabel(
            f"{example.participant}, {example.video} frame {example.frame}\n"
            f"mean error {error:.1f} px{in_cm} over {len(example.points)} points",
            fontsize=8,
        )
    title = (
        f"Labelled (green) against predicted (red) points: {shown.set_name} frames, model "
        f"trained on {shown.condition} labelled frames per video"
    )
    if not (shown.media_allowed and any(e.image is not None for e in examples)):
        title += (
            "\nno real frame shown (data.log_media: false): points on a grey canvas of the "
            "frame's size"
            if not shown.media_allowed
            else "\nthe frames were not found in the prepared folder: points on a grey canvas"
        )
    fig.suptitle(title, fontsize=9)
    return fig


def _draw_frame(ax: plt.Axes, example: FrameExample, skeleton, media_allowed: bool) -> None:
    """One frame (or a grey canvas of its size): skeletons, points and errors, zoomed on the body."""
    width, height = example.size
    if media_allowed and example.image is not None:
        ax.imshow(example.image, cmap="gray" if example.image.ndim == 2 else None)
    else:  # nothing of the real frame: a canvas of its size
        ax.add_patch(
            plt.Rectangle((-0.5, -0.5), width, height, facecolor="0.85", edgecolor="0.6", lw=0.5)
        )
    points = example.points.set_index("bodypart")
    _draw_points(ax, points, skeleton)
    _zoom_on_body(ax, points, width, height)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=7)


def _draw_points(ax: plt.Axes, points: pd.DataFrame, skeleton) -> None:
    """Labelled and predicted skeletons and points, and a line from each label to its prediction."""
    for which, colour, style in (("label", LABELLED, "-"), ("pred", PREDICTED, "--")):
        for a, b in skeleton:
            if a in points.index and b in points.index:
                ax.plot(
                    points.loc[[a, b], f"x_{which}"],
                    points.loc[[a, b], f"y_{which}"],
                    style,
                    color=colour,
                    lw=1,
                    alpha=0.7,
                )
    for i, point in enumerate(points.itertuples()):  # label -> prediction: the error itself
        ax.plot(
            [point.x_label, point.x_pred],
            [point.y_label, point.y_pred],
            color="gold",
            lw=1,
            label="error" if i == 0 else None,
        )
    ax.scatter(
        points["x_label"],
        points["y_label"],
        s=30,
        facecolors="none",
        edgecolors=LABELLED,
        linewidths=1.5,
        label="labelled",
        gid="labelled",
    )
    ax.scatter(
        points["x_pred"],
        points["y_pred"],
        s=45,
        marker="x",
        c=PREDICTED,
        linewidths=2,
        label="predicted",
        gid="predicted",
    )


def _zoom_on_body(ax: plt.Axes, points: pd.DataFrame, width: int, height: int) -> None:
    """Zoomed on the body (an error of a few px is invisible on a whole frame), with a margin of
    half its size for context; never beyond the frame, except to keep a stray prediction in view."""
    xs = np.r_[points["x_label"], points["x_pred"]]
    ys = np.r_[points["y_label"], points["y_pred"]]
    margin = max(0.5 * max(np.ptp(xs), np.ptp(ys)), 20.0)
    left, right = max(xs.min() - margin, -0.5), min(xs.max() + margin, width - 0.5)
    top, bottom = max(ys.min() - margin, -0.5), min(ys.max() + margin, height - 0.5)
    ax.set(
        xlim=(min(left, xs.min()), max(right, xs.max())),
        ylim=(max(bottom, ys.max()), min(top, ys.min())),  # image rows run down
        xticks=[],
        yticks=[],
    )


def plot_labelled_vs_predicted(shown: FrameExamples, path: Path) -> Path:
    """:func:`labelled_vs_predicted_figure` saved to ``path``."""
    return _save(labelled_vs_predicted_figure(shown), path)
