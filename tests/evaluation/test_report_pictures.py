"""The report's pictures and its table of a study whose condition 0 was skipped, on small synthetic
inputs shaped like the report's own (runs as src.tracking.queries.collect_runs returns them, the
tables src.evaluation.report makes from them, predictions as src.evaluation.condition logs them)."""

from __future__ import annotations

import logging

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from mlflow.tracking import MlflowClient
from PIL import Image

from src import privacy
from src.evaluation.examples import frame_examples, pick_frames
from src.evaluation.metric_names import MetricName
from src.evaluation.plots import (
    FrameExample,
    FrameExamples,
    labelled_vs_predicted_figure,
    mae_vs_frames_figure,
    participant_errors_figure,
)
from src.evaluation.report import (
    ReportData,
    bodypart_errors,
    markdown,
    paper_table,
    results_table,
    with_skipped,
    write_report,
)
from src.evaluation.study_errors import (
    bodypart_by_participant,
    participant_errors,
    participant_matrix,
)
from src.tracking.runs import logged_predictions
from tests.conftest import REPO, compose_config, empty_mlflow_store

REASON = (
    "the initial model (healthy_adults: nose, shoulders, elbows, wrists, hips, knees, ankles) "
    "shares no bodypart with the data set (snout, left ear, right ear, tail base, ...); "
) * 5  # about 600 characters, as on a mouse project
SETS = ("train", "test", "generalisation")


def logged_metrics(n_frames: int) -> dict[str, float]:
    """A condition's metrics as the evaluation logs them; no interval for the generalisation
    p-cutoff cell of condition 1 (one participant kept)."""
    metrics = {}
    for i, set_name in enumerate(SETS):
        mae = 40 / (n_frames + 1) + i + 2
        every, kept = MetricName("mae", set_name), MetricName("mae", set_name, 0.8)
        metrics |= {
            every.name: mae,
            kept.name: mae * 0.8,
            MetricName("kept", set_name, 0.8).name: 0.9,
            MetricName("n_participants", set_name).name: 4.0,
            MetricName("n_frames", set_name).name: 20.0,
            MetricName("n_points", set_name).name: 200.0,
            every.with_bound("low").name: mae - 1 - i,
            every.with_bound("high").name: mae + 2 + i,
            kept.with_bound("low").name: mae * 0.8 - 1,
            kept.with_bound("high").name: mae * 0.8 + 1,
        }
    if n_frames == 1:
        for bound in ("low", "high"):
            del metrics[MetricName("mae", "generalisation", 0.8, bound=bound).name]
    return metrics


def study_runs(skipped: bool) -> pd.DataFrame:
    """collect_runs of a sweep of conditions 0, 1, 5 (+ with_skipped): condition 0 skipped with
    :data:`REASON`, or evaluated like the others."""
    rows = []
    for n in (0, 1, 5):
        row = {
            "labelled_frames": n,
            "run_id": f"run{n}",
            "run_name": f"frames={n}",
            "status": "FINISHED",
            "model_source": "trained",
        }
        if not (skipped and n == 0):
            row |= logged_metrics(n)
        rows.append(row)
    runs = pd.DataFrame(rows)
    return with_skipped(runs, {0: REASON} if skipped else {})


def interval_segments(ax: plt.Axes, column: str) -> list[tuple[float, float, float]]:
    """(x, y low, y high) of each error bar the axes draws for ``column``."""
    containers = [
        c for c in ax.containers if isinstance(c, ErrorbarContainer) and c.get_label() == column
    ]
    if not containers:
        return []
    (container,) = containers
    segments = container.lines[2][0].get_segments()
    return sorted((s[0][0], min(s[:, 1]), max(s[:, 1])) for s in segments)


def test_mae_vs_frames_draws_test_and_generalisation_intervals_as_bars():
    runs = study_runs(skipped=False)
    data = ReportData(runs, paper_table(runs, 0.8))
    low, high = data.bounds
    fig = mae_vs_frames_figure(data.table, None, low, high)
    try:
        all_points, with_cutoff = fig.axes[:2]
        for set_name in ("test", "generalisation"):
            expected = [
                (n, pytest.approx(low.loc[n, set_name]), pytest.approx(high.loc[n, set_name]))
                for n in (0, 1, 5)
            ]
            assert interval_segments(all_points, f"_interval {set_name}") == expected
        # the generalisation p-cutoff cell of condition 1 has no interval: its point, no bar
        column = "generalisation, p-cutoff 0.8"
        assert [x for x, _, _ in interval_segments(with_cutoff, f"_interval {column}")] == [0, 5]
        line = next(x for x in with_cutoff.lines if x.get_label().startswith("generalisation"))
        assert list(line.get_xdata()) == [0, 1, 5]
        assert interval_segments(all_points, "_interval train") == []  # a fit, not an estimate
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "test (bars: 95% interval)" in legend and "train" in legend
    finally:
        plt.close(fig)


def test_mae_vs_frames_without_intervals_draws_points_only():
    runs = study_runs(skipped=False)
    table = paper_table(runs, 0.8)
    fig = mae_vs_frames_figure(table, None)
    try:
        assert not any(ax.containers for ax in fig.axes)
        assert len(fig.axes[0].lines) == 3  # train, test, generalisation
    finally:
        plt.close(fig)


def participants_long() -> pd.DataFrame:
    """errors/participants.csv of conditions 1 and 5: three generalisation participants whose
    pseudonyms sort differently from the order they were logged in."""
    rows = []
    for n in (1, 5):
        for p, participant in enumerate(("participant-c3", "participant-a1", "participant-b2")):
            for b, bodypart in enumerate(("knee", "wrist", "ankle")):
                error = 10.0 / n + 3 * p + b
                rows.append(
                    {
                        "labelled_frames": n,
                        "pcutoff": np.nan,
                        "set": "generalisation",
                        "participant": participant,
                        "video": f"video-{p}",
                        "bodypart": bodypart,
                        "n_points": 10,
                        "sum_error_px": 10 * error,
                    }
                )
    return pd.DataFrame(rows)


def test_participant_panels_share_one_order_and_do_not_overlap():
    participants = participants_long()
    # the report's order: the matrix's (pseudonyms sorted); the bodypart table is in logged order
    matrix = participant_matrix(participants).loc[
        ["participant-b2", "participant-c3", "participant-a1"]
    ]
    by_bodypart = bodypart_by_participant(participants, 5)
    assert list(by_bodypart.columns) != list(matrix.index)  # the two really differ
    fig = participant_errors_figure(matrix, by_bodypart, 5)
    try:
        left, right = fig.axes[:2]
        assert right.get_shared_y_axes().joined(left, right)
        fig.canvas.draw()
        assert [t.get_text() for t in left.get_yticklabels()] == list(matrix.index)
        # each row of both images is the participant the left panel names
        np.testing.assert_allclose(left.images[0].get_array(), matrix.to_numpy())
        np.testing.assert_allclose(
            right.images[0].get_array(), by_bodypart[list(matrix.index)].T.to_numpy()
        )
        renderer = fig.canvas.get_renderer()
        assert left.get_tightbbox(renderer).x1 <= right.get_tightbbox(renderer).x0
        assert not any(t.get_visible() and t.get_text() for t in right.get_yticklabels())
    finally:
        plt.close(fig)


def main_table_rows(results_md: str) -> dict[str, str]:
    section = results_md.split("## Mean error (MAE) in pixels")[1].split("\n## ")[0]
    return {line.split("|")[1].strip(): line for line in section.splitlines() if line[:1] == "|"}


def test_a_skipped_condition_is_a_short_mark_with_its_reason_below(tmp_path):
    runs = study_runs(skipped=True)
    data = ReportData(runs, paper_table(runs, 0.8))
    text = markdown(data, tmp_path)
    rows = main_table_rows(text)
    assert rows["0"].rstrip(" |").endswith("skipped¹")
    assert REASON.strip() not in rows["0"]
    widest = max(len(line) for line in rows.values())
    assert widest < 200, widest  # the reason no longer widens every row
    assert len(REASON) > 500
    section = text.split("## Mean error (MAE) in pixels")[1].split("\n## ")[0]
    assert f"¹ 0 frames skipped: {REASON}" in section
    # results.csv keeps the whole reason in its note column
    assert results_table(data).loc[0, "note"] == f"skipped: {REASON}"


def test_a_skipped_run_has_no_missing_errors_warnings(tmp_path, caplog):
    empty_mlflow_store(tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    skipped, evaluated = (
        client.create_run(experiment, tags={"labelled_frames": str(n)}).info.run_id for n in (0, 1)
    )
    runs = with_skipped(
        pd.DataFrame(
            {
                "labelled_frames": [0, 1],
                "run_id": [skipped, evaluated],
                "run_name": ["frames=0", "frames=1"],
                "model_source": ["", "trained"],
            }
        ),
        {0: REASON},
    )
    with caplog.at_level(logging.WARNING):
        assert not len(participant_errors(client, runs))
        assert not len(bodypart_errors(client, runs))
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 2 and all(evaluated in m for m in warned)  # the evaluated run only
    assert not any(skipped in m for m in warned)


BODYPARTS = ["head", "shoulder", "elbow", "wrist"]
SKELETON = [["head", "shoulder"], ["shoulder", "elbow"], ["elbow", "wrist"]]
REAL_NAME = "Jane Doe"


def predictions_csv(errors: dict[int, float], participant: str, video: str) -> pd.DataFrame:
    """predictions/generalisation.csv as the evaluation logs it: frame -> the error (px) of every
    labelled bodypart; the wrist of each frame is unlabelled (NaN label and error)."""
    rows = []
    for frame, error in errors.items():
        for b, bodypart in enumerate(BODYPARTS):
            x, y = 20.0 + 10 * b, 15.0 + 8 * b
            labelled = bodypart != "wrist"
            rows.append(
                {
                    "participant": participant,
                    "video": video,
                    "session": "session-1",
                    "set": "generalisation",
                    "role": "generalisation",
                    "rank": frame,
                    "frame": frame,
                    "bodypart": bodypart,
                    "x_pred": x + error,
                    "y_pred": y,
                    "likelihood": 0.9,
                    "x_label": x if labelled else np.nan,
                    "y_label": y if labelled else np.nan,
                    "error_px": error if labelled else np.nan,
                }
            )
    return pd.DataFrame(rows)


def texts(fig: plt.Figure) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(plt.Text))


def example_frames(image: np.ndarray | None, allowed: bool) -> FrameExamples:
    predictions = predictions_csv({3: 2.0, 7: 18.0, 9: 5.0}, "participant-81b4d7e0", "video-3f9a")
    examples = []
    for kind, frame in pick_frames(predictions):
        points = predictions[predictions["frame"] == frame["frame"]].dropna(subset=["error_px"])
        examples.append(
            FrameExample(
                kind,
                frame["participant"],
                frame["video"],
                int(frame["frame"]),
                points,
                (80, 60),
                image,
            )
        )
    return FrameExamples(5, examples, SKELETON, cm_per_px=0.25, media_allowed=allowed)


def test_labelled_vs_predicted_shows_the_good_and_the_bad_frame_with_their_errors():
    shown = example_frames(np.full((60, 80, 3), 200, np.uint8), allowed=True)
    assert [e.frame for e in shown.examples] == [3, 7]  # lowest and highest mean error
    fig = labelled_vs_predicted_figure(shown)
    try:
        for ax, error in zip(fig.axes, (2.0, 18.0)):
            points = {c.get_gid(): c.get_offsets() for c in ax.collections if c.get_gid()}
            assert len(points["labelled"]) == len(points["predicted"]) == 3  # wrist unlabelled
            np.testing.assert_allclose(points["predicted"][:, 0] - points["labelled"][:, 0], error)
            assert ax.images[0].get_array().shape == (60, 80, 3)
            caption = ax.get_xlabel()
            assert f"{error:.1f} px = {error * 0.25:.2f} cm" in caption
            assert "participant-81b4d7e0" in caption
        assert REAL_NAME not in texts(fig)
    finally:
        plt.close(fig)


def test_without_log_media_no_image_data_is_drawn():
    shown = example_frames(np.full((60, 80, 3), 200, np.uint8), allowed=False)
    fig = labelled_vs_predicted_figure(shown)
    try:
        assert not any(ax.images for ax in fig.axes)
        canvas = [p for p in fig.axes[0].patches if isinstance(p, plt.Rectangle)]
        assert [(p.get_width(), p.get_height()) for p in canvas] == [(80, 60)]
        assert "data.log_media: false" in texts(fig)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("log_media", [True, False])
def test_the_report_draws_frames_of_the_best_run(tmp_path, log_media):
    """From a store and a prepared folder as the pipeline leaves them: the best condition's
    predictions artifact, its frame found through selection.csv and the pseudonyms."""
    cfg = compose_config(
        tmp_path,
        f"data.log_media={str(log_media).lower()}",
        f"report.dir={tmp_path / 'report'}",
    )
    pseudonyms = privacy.from_config(cfg)
    video, participant = "Jane_Doe_walk", REAL_NAME
    prepared = tmp_path / "data" / "prepared" / str(cfg.data.name)
    assert prepared.parent == tmp_path / "data" / "prepared"
    (prepared / "labeled-data" / video).mkdir(parents=True)
    frames = {3: 2.0, 7: 18.0}
    for frame in frames:
        Image.new("RGB", (80, 60), (30 * frame, 90, 40)).save(
            prepared / "labeled-data" / video / f"img{frame:03}.png"
        )
    pd.DataFrame(
        {
            "participant": participant,
            "video": video,
            "frame": list(frames),
            "image": [f"labeled-data/{video}/img{f:03}.png" for f in frames],
        }
    ).to_csv(prepared / "selection.csv", index=False)
    (prepared / "dataset.yaml").write_text(
        f"skeleton: {SKELETON}\ncm_per_px: 0.5\n", encoding="utf-8"
    )
    empty_mlflow_store(tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "a").as_uri())
    runs = study_runs(skipped=True)
    for n in (1, 5):
        run_id = client.create_run(experiment).info.run_id
        runs.loc[runs["labelled_frames"] == n, "run_id"] = run_id
        folder = tmp_path / f"run{n}"
        folder.mkdir()
        predictions = predictions_csv(frames, pseudonyms(participant, "participant"), "")
        predictions["video"] = pseudonyms(video, "video")
        predictions.to_csv(folder / "generalisation.csv", index=False)
        client.log_artifact(run_id, str(folder / "generalisation.csv"), "predictions")
    table = paper_table(runs, 0.8)
    shown = frame_examples(logged_predictions(client, runs), cfg, runs, table)
    assert shown.condition == 5  # the lowest generalisation MAE; 0 was skipped
    assert [e.frame for e in shown.examples] == [3, 7]
    assert shown.cm_per_px == 0.5 and shown.skeleton == SKELETON
    assert all(e.size == (80, 60) for e in shown.examples)
    if log_media:  # the real frame, read from the prepared folder
        assert shown.examples[1].image[0, 0].tolist() == [210, 90, 40]
    else:
        assert all(e.image is None for e in shown.examples)
    out = write_report(ReportData(runs, table, frame_examples=shown), tmp_path / "report")
    assert Image.open(out / "labelled_vs_predicted.png").size[0] > 600
    assert "![labelled_vs_predicted](labelled_vs_predicted.png)" in (out / "results.md").read_text()
    fig = labelled_vs_predicted_figure(shown)
    try:
        assert REAL_NAME not in texts(fig) and video not in texts(fig)
        assert "18.0 px = 9.00 cm" in texts(fig)
        assert bool(fig.axes[0].images) == log_media
    finally:
        plt.close(fig)


DAG = """strict digraph {
"prepare";
"train@0";
"train@6";
"evaluate";
"report";
"prepare" -> "train@0";
"prepare" -> "train@6";
"train@0" -> "evaluate";
"train@6" -> "evaluate";
"evaluate" -> "report";
"prepare" -> "report";
}
"""


def test_pipeline_graph_draws_one_box_per_stage(tmp_path):
    from tools.pipeline_graph import collapse_cells, draw, labels, layered_positions, parse_dot

    graph = collapse_cells(parse_dot(DAG))
    assert sorted(graph.edges) == [
        ("evaluate", "report"),
        ("prepare", "report"),
        ("prepare", "train"),
        ("train", "evaluate"),
    ]
    assert graph.nodes["train"]["cells"] == 2 and graph.nodes["evaluate"]["cells"] == 1
    text = labels(graph, REPO / "dvc.yaml")
    assert text["train"] == "train\nsrc.train\n× 2: one per condition (and fold)"
    assert text["report"] == "report\nsrc.report"
    positions = layered_positions(graph)
    assert [positions[s][0] for s in ("prepare", "train", "evaluate", "report")] == [0, 1, 2, 3]
    out = draw(graph, text, tmp_path / "pipeline.png")
    assert Image.open(out).size[0] > 500


def test_strategies_picture_sets_the_two_strategies_apart_where_they_share_a_budget():
    from src.evaluation.strategies import strategies_figure

    table = pd.DataFrame(
        {
            "strategy": ["kmeans", "kmeans", "active", "active"],
            "labelled_frames": [1, 2, 1, 2],
            "mae_px": [14.5, 12.0, 14.5, 10.0],
            "ci_low": [9.0, 8.0, 9.0, 7.0],
            "ci_high": [24.0, 20.0, 24.0, 15.0],
        }
    )
    fig = strategies_figure(table)
    ax = fig.axes[0]
    kmeans, active = (line for line in ax.get_lines() if not line.get_label().startswith("_"))
    assert (
        list(kmeans.get_xdata()) == list(active.get_xdata()) == [1, 2]
    )  # the data stay the budgets
    at_one = [
        line.get_transform().transform([(1, 14.5)])[0] for line in (kmeans, active)
    ]  # round 1: the same model, the same point
    apart_points = (at_one[1][0] - at_one[0][0]) * 72 / fig.dpi
    assert apart_points == pytest.approx(6.0)
    assert at_one[0][1] == pytest.approx(at_one[1][1])
    low, high = ax.get_ylim()
    assert low <= 7.0 and high >= 24.0  # the limits still hold every bar
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2  # each strategy's bars drawn where its line is
    for bar, line in zip(bars, (kmeans, active)):
        segment = bar.lines[2][0].get_segments()[0]
        x_bar = bar.lines[2][0].get_transform().transform(segment)[0][0]
        x_line = line.get_transform().transform([(1, 14.5)])[0][0]
        assert x_bar == pytest.approx(x_line)
    plt.close(fig)
