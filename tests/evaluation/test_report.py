"""src.report against a small MLflow store with known values, and against the real store when there is one."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from src.errors import ConfigError, DataError
from src.evaluation import render
from src.evaluation.metric_names import MetricName
from src.evaluation.metrics import METRICS_GUIDE
from src.evaluation.report import report, report_settings, write_report
from src.evaluation.study_errors import Bootstrap, pool_folds
from src.evaluation.tables import NOTED, SMALL, ReportData, paper_table
from src.evaluation.uncertainty import NO_INTERVAL
from src.tracking import live_curves
from src.tracking.queries import collect_runs, find_sweep, open_experiment
from src.tracking.runs import loss_histories
from tests.conftest import REPO, compose_config, empty_mlflow_store

EXPERIMENT = "synthetic_clinical"
TABLE_COLUMNS = {
    "train": "mae_train_px",
    "test": "mae_test_px",
    "test, p-cutoff 0.8": "mae_test_pcutoff0.8_px",
    "generalisation": "mae_generalisation_px",
    "generalisation, p-cutoff 0.8": "mae_generalisation_pcutoff0.8_px",
}
EXACT = dict(float_precision="round_trip")  # pandas' default CSV float parser can be off by one ulp
REPORT_FILES = [
    "results.md",
    "results.csv",
    "results_cm.csv",
    "metrics.json",
    "mae_vs_frames.csv",
    "mae_vs_frames.png",
    "bodypart_errors.png",
    "loss_curves.png",
    "learning_curve.png",
    "participant_errors.csv",
    "participant_errors.png",
    "labelled_vs_predicted.png",
]


# What each set rests on in the small stores: (participants, frames, points). With the defaults
# (report.min_participants 3, report.min_points 100) generalisation is small by participants, train
# of 1 frame by points (72), test with the p-cutoff at 0 frames by kept points (288 / 4 = 72).
SIZES = {
    "train": lambda n_frames: (6, 6 * n_frames, 72 * n_frames),
    "test": lambda n_frames: (6, 24, 288),
    "generalisation": lambda n_frames: (2, 6, 72),
}


def metrics_for(n_frames: int, bump: float = 0.0) -> dict[str, float]:
    """Metrics as src.train logs them, with values that do not round to themselves (1/3, 1/7)."""
    metrics = {}
    for i, set_name in enumerate(
        ["train", "test", "generalisation"] if n_frames else ["test", "generalisation"]
    ):
        mae = 100 / (n_frames + 1) + i / 3 + bump + 1 / 7
        participants, frames, points = SIZES[set_name](n_frames)
        every, kept = MetricName("mae", set_name), MetricName("mae", set_name, 0.8)
        metrics |= {
            every.name: mae,
            every.in_unit("cm").name: 1.5 * mae,
            kept.name: mae / 3,
            kept.in_unit("cm").name: mae / 2,
            MetricName("kept", set_name, 0.8).name: 0.25 + i / 7,
            MetricName("n_participants", set_name).name: float(participants),
            MetricName("n_frames", set_name).name: float(frames),
            MetricName("n_points", set_name).name: float(points),
            # interval bounds; none for the generalisation p-cutoff cell (1 participant kept)
            every.with_bound("low").name: 0.5 * mae,
            every.with_bound("high").name: 1.5 * mae + 1 / 9,
            kept.with_bound("low").name: mae / 6,
            kept.with_bound("high").name: mae / 2 + 1 / 11,
        }
    for bound in ("low", "high"):
        del metrics[MetricName("mae", "generalisation", 0.8, bound=bound).name]
    return metrics


# Two generalisation participants per condition (pseudonyms), at half and 1.5 times the set's MAE,
# with the same points: their pooled MAE is the logged one.
GENERALISATION_PARTICIPANTS = {"participant-0a1b2c3d": 0.5, "participant-9f8e7d6c": 1.5}


def participants_csv(
    metrics: dict[str, float], participants: dict[str, float] | None = None
) -> pd.DataFrame:
    """errors/participants.csv as the evaluation logs it, consistent with ``metrics``: the
    generalisation participants (pseudonym -> factor of the set's MAE; their factors average 1)."""
    rows = []
    if "mae_generalisation_px" in metrics:
        mae = metrics["mae_generalisation_px"]
        for participant, factor in (participants or GENERALISATION_PARTICIPANTS).items():
            for bodypart, share in (("knee", 0.8), ("wrist", 1.2)):
                rows.append(
                    {
                        "pcutoff": None,
                        "set": "generalisation",
                        "participant": participant,
                        "video": f"video-{participant[-4:]}",
                        "bodypart": bodypart,
                        "n_points": 18,
                        "sum_error_px": 18 * share * factor * mae,
                        "mae_px": share * factor * mae,
                    }
                )
    return pd.DataFrame(rows)


def snapshot_tags(n_frames: int, which: str = "last") -> dict[str, str]:
    """The evaluation's tags of a condition trained for 10 * n_frames epochs."""
    epoch = 10 * n_frames
    return {
        "evaluation.snapshot": which,
        "evaluated_snapshot": f"snapshot-{'best-' if which == 'best' else ''}{epoch:03}.pt",
        "evaluated_epoch": str(epoch),
    }


SHARED = "5 of 12: wrists, elbows, shoulders, hips, knees"
NOTE = "condition 0 evaluated on the bodyparts the initial model shares with the data set"


def log_child(
    client,
    experiment_id,
    parent_id,
    n_frames,
    start,
    metrics,
    tmp_path,
    status="FINISHED",
    model_source="trained",
    losses=None,
    tags=None,
    participants=None,
) -> str:
    """One condition's run, as src.train leaves it: tags, metrics, histories, bodyparts.csv and predictions."""
    run = client.create_run(
        experiment_id,
        start_time=start,
        run_name=f"frames={n_frames}",
        tags={
            "mlflow.parentRunId": parent_id,
            "labelled_frames": str(n_frames),
            "model_key": f"key{n_frames}",
            "model_source": model_source,
            **(tags or {}),
        },
    )
    run_id = run.info.run_id
    history = [
        Metric(name, value, start, step)
        for name, values in (losses or {}).items()
        for step, value in enumerate(values)
    ]
    client.log_batch(run_id, metrics=[Metric(k, v, start, 0) for k, v in metrics.items()] + history)
    folder = tmp_path / run_id
    (folder / "errors").mkdir(parents=True)
    sets = ["test", "generalisation"]
    pd.DataFrame(
        {
            "set": sets * 2,
            "bodypart": ["knee"] * 2 + ["wrist"] * 2,
            "mae_px": [1.0, 2.0, 3.0, 4.0 + n_frames],
            "n_points": 6,
            "kept": 1.0,
            "mae_cm": 1.5,
            "pcutoff": None,
        }
    ).to_csv(folder / "errors/bodyparts.csv", index=False)
    pd.DataFrame(
        {
            "participant": ["P07"],
            "video": ["P07_S2"],
            "set": ["test"],
            "bodypart": ["knee"],
            "error_px": [1.0],
        }
    ).to_csv(folder / "test.csv", index=False)
    client.log_artifact(run_id, str(folder / "errors/bodyparts.csv"), "errors")
    if metrics:
        participants_csv(metrics, participants).to_csv(
            folder / "errors/participants.csv", index=False
        )
        client.log_artifact(run_id, str(folder / "errors/participants.csv"), "errors")
    client.log_artifact(run_id, str(folder / "test.csv"), "predictions")
    client.set_terminated(run_id, status, end_time=start + 50)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with an older sweep, the sweep to report (duplicates, a reused model) and a newer non-sweep run.

    Shared by the tests of this module (creating a SQLite store takes seconds); they only add to it.
    """
    tmp_path = tmp_path_factory.mktemp("store")
    empty_mlflow_store(tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(
        EXPERIMENT, artifact_location=(tmp_path / "artifacts").as_uri()
    )
    old = client.create_run(
        experiment_id, start_time=1000, run_name="sweep old", tags={"sweep": "labelled_frames=1"}
    ).info.run_id
    log_child(client, experiment_id, old, 1, 1100, metrics_for(1, bump=50), tmp_path)
    client.set_terminated(old, "FINISHED")
    parent = client.create_run(
        experiment_id,
        start_time=2000,
        run_name="sweep new",
        tags={"sweep": "labelled_frames=0,1,2,20"},
    ).info.run_id
    logged = {
        0: metrics_for(0),
        1: metrics_for(1, bump=0.5),
        2: metrics_for(2),
        20: metrics_for(20),
    }
    log_child(
        client,
        experiment_id,
        parent,
        0,
        2050,
        logged[0],
        tmp_path,
        model_source="initial model, not trained",
        tags=snapshot_tags(0) | {"bodyparts_evaluated": SHARED, "condition_note": NOTE},
    )
    log_child(client, experiment_id, parent, 1, 2100, metrics_for(1), tmp_path)  # older duplicate
    newest_1 = log_child(
        client, experiment_id, parent, 1, 2200, logged[1], tmp_path, tags=snapshot_tags(1, "best")
    )  # wins
    log_child(
        client, experiment_id, parent, 1, 2300, metrics_for(1, bump=9), tmp_path, status="FAILED"
    )
    trained = log_child(
        client,
        experiment_id,
        parent,
        20,
        2400,
        logged[20],
        tmp_path,
        losses={"loss_train": [0.5, 0.25, 0.125], "loss_test": [0.6, 0.3, 0.2]},
        tags=snapshot_tags(20),
    )
    log_child(
        client,
        experiment_id,
        parent,
        2,
        2500,
        logged[2],
        tmp_path,
        model_source=f"reused from run {trained}",
        tags=snapshot_tags(2),
    )
    client.set_terminated(parent, "FINISHED")
    client.create_run(experiment_id, start_time=3000, run_name="not a sweep")
    return dict(
        uri=uri,
        client=client,
        experiment_id=experiment_id,
        parent=parent,
        old=old,
        logged=logged,
        newest_1=newest_1,
        trained=trained,
    )


def test_report_reproduces_the_logged_metrics(store, tmp_path):
    cfg = compose_config(
        tmp_path,
        f"report.dir={tmp_path / 'report'}",
        f"mlflow.tracking_uri={store['uri']}",
        f"mlflow.experiment={EXPERIMENT}",
    )
    out = report(cfg)
    client, logged = store["client"], store["logged"]

    results = pd.read_csv(out / "results.csv", index_col=0, **EXACT)
    assert results.index.tolist() == [0, 1, 2, 20]
    assert results.columns.tolist()[:5] == list(TABLE_COLUMNS)
    for n, metrics in logged.items():
        for column, metric in TABLE_COLUMNS.items():
            if metric in metrics:
                assert results.loc[n, column] == metrics[metric], (n, column)  # exact, not rounded
    assert pd.isna(results.loc[0, "train"])
    # the interval bounds: columns of results.csv, exactly MLflow's metrics
    for n, metrics in logged.items():
        for column, metric in TABLE_COLUMNS.items():
            for end in ("ci_low", "ci_high"):
                bound = MetricName.parse(metric).with_bound(end.removeprefix("ci_")).name
                expected = metrics.get(bound, float("nan"))
                assert results.loc[n, f"{column} {end}"] == pytest.approx(expected, nan_ok=True)
                if bound in metrics:
                    assert results.loc[n, f"{column} {end}"] == expected, (n, column, end)

    # What each cell rests on: the runs' counts; with the p-cutoff, the points it kept.
    for n, metrics in logged.items():
        for set_name in ("train", "test", "generalisation"):
            for what in ("participants", "frames", "points"):
                expected = metrics.get(MetricName(f"n_{what}", set_name).name, float("nan"))
                assert results.loc[n, f"{set_name} {what}"] == pytest.approx(expected, nan_ok=True)
        kept = round(metrics["n_test_points"] * metrics["kept_test_pcutoff0.8"])
        assert results.loc[n, "test, p-cutoff 0.8 points"] == kept
    # Which snapshot each row comes from, and the notes of condition 0.
    assert results["snapshot"].tolist() == [
        "snapshot-000.pt",
        "snapshot-best-010.pt",
        "snapshot-020.pt",
        "snapshot-200.pt",
    ]
    assert results["epoch"].tolist() == [0, 10, 20, 200]
    assert NOTE in results.loc[0, "note"] and SHARED in results.loc[0, "note"]
    assert results["note"].iloc[1:].isna().all()
    small = results["small sets"].fillna("").str.split("; ").map(lambda cells: set(cells) - {""})
    assert small.to_dict() == EXPECTED_SMALL
    tag = client.get_run(store["parent"]).data.tags["small_sets"]
    assert tag.count("frames=") == sum(map(len, EXPECTED_SMALL.values()))
    assert "frames=1 train (6 participants, 72 points)" in tag
    assert "frames=0 test, p-cutoff 0.8 (6 participants, 72 points)" in tag
    assert (
        pd.read_csv(out / "results_cm.csv", index_col=0, **EXACT).loc[20, "test"]
        == logged[20]["mae_test_cm"]
    )

    for name in REPORT_FILES:
        assert (out / name).is_file(), name
    metrics_json = json.loads((out / "metrics.json").read_text())
    assert metrics_json["frames_1"] == logged[1]
    assert "mae_train_px" not in metrics_json["frames_0"]

    markdown = (out / "results.md").read_text()
    assert f"{logged[1]['mae_generalisation_px']:.2f}" in markdown
    assert "nan" not in markdown
    assert "107.04" in markdown  # the paper's Table 1 beside ours: the synthetic cohort
    pixels = section(markdown, "Mean error (MAE) in pixels")
    rows = {line.split("|")[1].strip(): line for line in pixels.splitlines() if line[:1] == "|"}
    one = logged[1]
    low, high = one["mae_generalisation_px_ci_low"], one["mae_generalisation_px_ci_high"]
    mae = one["mae_generalisation_px"]
    assert f"{mae:.2f} [{low:.2f}, {high:.2f}]{SMALL} |" in rows["1"]
    low, high = one["mae_test_px_ci_low"], one["mae_test_px_ci_high"]
    assert f"{one['mae_test_px']:.2f} [{low:.2f}, {high:.2f}] |" in rows["1"]
    assert f"{logged[2]['mae_train_px']:.2f} [" in rows["2"]
    # no interval logged for the generalisation p-cutoff cell: 1 participant, said so
    cutoff = one["mae_generalisation_pcutoff0.8_px"]
    letter = re.search(rf"{cutoff:.2f} \((\w)\){re.escape(SMALL)} \|", rows["1"]).group(1)
    assert f"({letter}) no interval: 1 participant." in pixels
    assert sum(line.count(SMALL) for line in rows.values()) == sum(
        map(len, EXPECTED_SMALL.values())
    )
    assert "best: snapshot-best-010.pt" in rows["1"] and "last: snapshot-200.pt" in rows["20"]
    assert f"0 {NOTED}" in rows and "bodyparts 5 of 12" in rows[f"0 {NOTED}"]
    assert f"{NOTED} 0 frames: {NOTE} (bodyparts evaluated: {SHARED})" in pixels
    basis = section(markdown, "What each cell rests on")
    assert f"6 / 6 / 72{SMALL}" in basis and "2 / 6 / 72" in basis and "6 / 12 / 144 |" in basis
    # The MAE is the paper's; DeepLabCut's in-training rmse is named for what it is.
    assert "dlc_training_rmse_matched_test_px" in markdown and "training_mae" not in markdown
    assert "Split and frames per video: unknown" in markdown  # no prepared data set here
    for text in [
        markdown,
        *(p.read_text() for p in out.glob("*.csv")),
        (out / "metrics.json").read_text(),
    ]:
        assert "P07" not in text  # no participant or video identifiers

    plotted = pd.read_csv(out / "mae_vs_frames.csv", index_col="labelled_frames", **EXACT)
    assert list(plotted.columns) == [
        "train",
        "test",
        "test_pcutoff",
        "generalisation",
        "generalisation_pcutoff",
    ]
    assert plotted.loc[2, "test_pcutoff"] == logged[2]["mae_test_pcutoff0.8_px"]

    attached = {Path(a.path).name for a in client.list_artifacts(store["parent"], "report")}
    assert set(REPORT_FILES) <= attached

    # How many frames to label: 20 (the others are tens of px worse for both participants); the
    # tag the model registry reads, and the sentence in results.md.
    tags = client.get_run(store["parent"]).data.tags
    assert tags["frames_to_label"] == "20"
    assert tags["frames_to_label_sentence"].startswith("Label 20 frames per video")
    assert tags["frames_to_label_sentence"] in markdown
    # The error of each generalisation participant, by pseudonym, from errors/participants.csv.
    per_participant = section(markdown, "Error per generalisation participant (px)")
    for participant, factor in GENERALISATION_PARTICIPANTS.items():
        assert participant in per_participant
        assert f"{factor * logged[2]['mae_generalisation_px']:.2f}" in per_participant
    long = pd.read_csv(out / "participant_errors.csv")
    assert set(long["participant"]) == set(GENERALISATION_PARTICIPANTS)
    assert len(long) == 2 * len(logged)  # one video each, per condition


# The cells on small sets in the store's sweep (see SIZES).
EXPECTED_SMALL = {
    0: {"test, p-cutoff 0.8", "generalisation", "generalisation, p-cutoff 0.8"},
    1: {"train", "generalisation", "generalisation, p-cutoff 0.8"},
    2: {"generalisation", "generalisation, p-cutoff 0.8"},
    20: {"generalisation", "generalisation, p-cutoff 0.8"},
}


def section(markdown: str, heading: str) -> str:
    """The text of results.md under ``## heading``, up to the next heading."""
    return markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_collect_runs_keeps_the_newest_finished_duplicate(store):
    client, experiment_id = store["client"], store["experiment_id"]
    assert find_sweep(client, experiment_id).info.run_id == store["parent"]
    runs = collect_runs(client, experiment_id, store["parent"])
    assert runs["labelled_frames"].tolist() == [0, 1, 2, 20]
    assert runs.set_index("labelled_frames").loc[1, "run_id"] == store["newest_1"]
    table = paper_table(runs, 0.8)
    assert table.loc[1, "generalisation"] == store["logged"][1]["mae_generalisation_px"]

    losses = loss_histories(client, runs)
    reused = (
        losses[losses.labelled_frames == 2].drop(columns="labelled_frames").reset_index(drop=True)
    )
    trained = (
        losses[losses.labelled_frames == 20].drop(columns="labelled_frames").reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(
        reused, trained
    )  # a reused model's curves come from the run that trained it
    assert sorted(trained.loc[trained.metric == "loss_train", "value"]) == [0.125, 0.25, 0.5]


def test_sweep_by_id_and_clear_errors(store, tmp_path):
    client, experiment_id = store["client"], store["experiment_id"]
    assert find_sweep(client, experiment_id, store["old"]).info.run_id == store["old"]
    with pytest.raises(DataError, match="no run"):
        find_sweep(client, experiment_id, "0" * 32)
    with pytest.raises(DataError, match="p-cutoff 0.5"):
        paper_table(collect_runs(client, experiment_id, store["parent"]), 0.5)

    empty = client.create_experiment("empty", artifact_location=(tmp_path / "a").as_uri())
    with pytest.raises(DataError, match=r"python -m src.train \+sweep=frames"):
        find_sweep(client, empty)
    missing = compose_config(tmp_path, f"mlflow.tracking_uri=sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(DataError, match="none.db"):
        open_experiment(missing.mlflow)


def test_write_report_without_plots_inputs(store, tmp_path):
    runs = collect_runs(store["client"], store["experiment_id"], store["parent"])
    out = write_report(ReportData(runs, paper_table(runs, 0.8)), tmp_path / "plain")
    # what the DVC stage declares, always
    assert {p.name for p in out.iterdir()} == set(REPORT_FILES)
    assert pd.read_csv(out / "results_cm.csv", index_col=0).isna().all().all()


def frames_split(cfg, used: list[int]) -> Path:
    """The prepared data set's dataset.yaml of a split by frames, ``used`` train frames per video."""
    path = Path(cfg.paths.prepared_dir) / cfg.data.name / "dataset.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    per_video = {f"v{i}": {"train": {"asked": 20, "used": n}} for i, n in enumerate(used)}
    per_video["v9"] = {"generalisation": {"asked": 1, "used": 1}}
    facts = {
        "name": cfg.data.name,
        "participants": {"development": 3, "generalisation": 3},
        "split_kind": "frames",
        "generalisation_meaning": "unseen frames of seen subjects, not unseen participants",
        "frames_per_video": per_video,
    }
    path.write_text(yaml.safe_dump(facts), encoding="utf-8")
    return path


def test_skipped_condition_zero_still_reports_with_its_reason(store, tmp_path):
    """A sweep whose condition 0 was skipped, on a split by frames, with other small-set limits."""
    client, experiment_id = store["client"], store["experiment_id"]
    parent = client.create_run(  # older than the store's sweep: `latest` stays that one
        experiment_id, start_time=1500, run_name="sweep skipped", tags={"sweep": "frames=0,1"}
    ).info.run_id
    reason = "the initial model shares no bodypart with the data set"
    log_child(client, experiment_id, parent, 0, 1510, {}, tmp_path, tags={"skipped_reason": reason})
    one = log_child(
        client, experiment_id, parent, 1, 1520, metrics_for(1), tmp_path, tags=snapshot_tags(1)
    )
    client.set_terminated(parent, "FINISHED")
    overrides = [
        f"mlflow.tracking_uri={store['uri']}",
        f"mlflow.experiment={EXPERIMENT}",
        "data.kind=dlc_project",  # not the embedded cohort: no paper table (compare_paper: auto)
        "report.min_participants=2",
        "report.min_points=50",
    ]
    cfg = compose_config(
        tmp_path, *overrides, f"report.sweep={parent}", f"report.dir={tmp_path / 'report'}"
    )
    frames_split(cfg, [4, 9, 20])
    out = report(cfg)

    results = pd.read_csv(out / "results.csv", index_col=0, **EXACT)
    assert results.index.tolist() == [0, 1]
    assert results.loc[0, list(TABLE_COLUMNS)].isna().all()
    assert results.loc[0, "note"] == f"skipped: {reason}"
    assert results.loc[1, "generalisation"] == metrics_for(1)["mae_generalisation_px"]
    # 2 participants and 72 points pass these limits; 39 points kept by the cutoff do not.
    small = "frames=1 generalisation, p-cutoff 0.8 (2 participants, 39 points)"
    assert client.get_run(parent).data.tags["small_sets"] == small
    assert results.loc[1, "small sets"] == "generalisation, p-cutoff 0.8"

    markdown = (out / "results.md").read_text()
    rows = {
        line.split("|")[1].strip(): line
        for line in section(markdown, "Mean error (MAE) in pixels").splitlines()
        if line[:1] == "|"
    }
    # a short mark in the table, the reason below it
    assert rows["0"].rstrip(" |").endswith("skipped¹") and reason not in rows["0"]
    assert "." not in rows["0"].split("|")[2]
    assert f"¹ 0 frames skipped: {reason}" in section(markdown, "Mean error (MAE) in pixels")
    assert rows["1"].count(SMALL) == 1
    assert "not unseen participants" in markdown and "Split by participant" not in markdown
    assert "min 4, median 9, max 20 over 3 videos" in markdown
    assert "never seen in training" not in markdown  # the generalisation column says what it is
    assert "107.04" not in markdown and "Table 1 beside" not in markdown
    assert "PCK off: set evaluation.pck.reference_bodyparts" in markdown  # user data: off, said how

    # The same from the DVC pipeline: the evaluate stage of condition 0 wrote no run, only why.
    pipeline = tmp_path / "pipeline"
    for n, record in ((0, {"skipped": reason}), (1, {"run_id": one})):
        folder = pipeline / "evaluation" / f"frames_{n}"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({"labelled_frames": n} | record))
    cfg = compose_config(
        tmp_path,
        *overrides,
        "report.sweep=pipeline",
        f"pipeline.dir={pipeline}",
        "pipeline.conditions=[0,1]",
        "pipeline.folds=[]",  # a single split, as params.yaml has it
        f"report.dir={tmp_path / 'pipeline_report'}",
    )
    out = report(cfg)
    results = pd.read_csv(out / "results.csv", index_col=0, **EXACT)
    assert results.index.tolist() == [0, 1]
    assert results.loc[0, "note"] == f"skipped: {reason}"
    assert results.loc[1, "test"] == metrics_for(1)["mae_test_px"]
    assert f"skipped: {reason}" in (out / "results.md").read_text()

    # Cross-validation: the evaluate stages' records are keyed by fold and condition; condition 0
    # is skipped in every fold for the same reason.
    for fold in (1, 2):
        for n, record in ((0, {"skipped": reason}), (1, {"run_id": one})):
            folder = pipeline / "evaluation" / f"fold_{fold}" / f"frames_{n}"
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps({"labelled_frames": n} | record))
    cfg.pipeline.folds = [1, 2]
    out = report(cfg)
    results = pd.read_csv(out / "results.csv", index_col=0, **EXACT)
    assert results.index.tolist() == [0, 1]
    assert results.loc[0, "note"] == f"skipped: {reason}"


@pytest.mark.parametrize(
    "kind, setting, shown",
    [
        ("synthetic", "auto", True),
        ("dlc_project", "auto", False),
        ("videos", "true", True),
        ("synthetic", "false", False),
    ],
)
def test_paper_table_only_for_the_embedded_cohort_or_when_asked(tmp_path, kind, setting, shown):
    cfg = compose_config(tmp_path, f"data.kind={kind}", f"report.compare_paper={setting}")
    assert report_settings(cfg)["compare_paper"] is shown


@pytest.mark.parametrize(
    "override",
    [
        "report.compare_paper=sometimes",
        "report.min_points=-1",
        "report.min_participants=2.5",
        "report.frames_to_label.margin_pct=0",
        "evaluation.bootstrap.resamples=10",
        "evaluation.bootstrap.confidence=95",
    ],
)
def test_report_settings_refuse_what_they_do_not_allow(tmp_path, override):
    with pytest.raises(ConfigError, match=override.split("=")[0]):
        report_settings(compose_config(tmp_path, override))


def test_live_curves_name_deeplabcuts_training_rmse_for_what_it_is(store, tmp_path):
    """DeepLabCut's in-training test rmse is streamed as dlc_training_rmse_matched_test_px, explained."""
    client = store["client"]
    run_id = client.create_run(store["experiment_id"], run_name="training").info.run_id
    stats = tmp_path / "learning_stats.csv"
    nan = float("nan")
    pd.DataFrame(
        {
            "step": [1, 2],
            "losses/train.total_loss": [0.5, 0.25],
            "losses/eval.total_loss": [nan, 0.3],
            "metrics/test.rmse": [nan, 88.0],
            "metrics/test.mAP": [0.0, 0.0],
        }
    ).to_csv(stats, index=False)
    mlflow.set_tracking_uri(store["uri"])
    with live_curves.streaming_learning_stats(run_id, stats, every_s=60):
        pass
    run = client.get_run(run_id)
    assert run.data.metrics == {
        "loss_train": 0.25,
        "loss_test": 0.3,
        "dlc_training_rmse_matched_test_px": 88.0,
    }
    guide = run.data.tags["metrics_guide"]
    assert "matched" in guide and "mae_test_px" in guide
    # One name in every place that writes or explains it.
    assert live_curves.TRAINING_RMSE == render.TRAINING_RMSE
    assert live_curves.TRAINING_RMSE in METRICS_GUIDE and "mae_<set>_px" in METRICS_GUIDE


REAL_STORE = REPO / "mlruns" / "mlflow.db"


@pytest.mark.skipif(not REAL_STORE.is_file(), reason="no real MLflow store in mlruns/")
def test_report_of_the_real_store(tmp_path):
    cfg = compose_config(tmp_path, f"mlflow.tracking_uri=sqlite:///{REAL_STORE}")
    try:
        client, experiment_id = open_experiment(cfg.mlflow)
        parent = find_sweep(client, experiment_id)
    except DataError as error:
        pytest.skip(f"no sweep in the real store: {error}")
    runs = collect_runs(client, experiment_id, parent.info.run_id)
    # not attached: the real store stays as it is
    out = write_report(ReportData(runs, paper_table(runs, 0.8)), tmp_path / "report")
    results = pd.read_csv(out / "results.csv", index_col=0, **EXACT)

    children = client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    conditions = {
        int(r.data.tags["labelled_frames"]) for r in children if "labelled_frames" in r.data.tags
    }
    assert set(results.index) == conditions
    for n in conditions:
        finished = sorted(
            (
                r
                for r in children
                if r.data.tags.get("labelled_frames") == str(n) and r.info.status == "FINISHED"
            ),
            key=lambda r: r.info.start_time,
        )
        if finished and "mae_generalisation_px" in finished[-1].data.metrics:
            assert (
                results.loc[n, "generalisation"]
                == finished[-1].data.metrics["mae_generalisation_px"]
            )


# The tiny real studies of the two slow tests below: (tiny_project's overrides, the sweep's and the
# report's, the sweep's only). The tiny cohort has 2 development participants and 3 in all: with
# evaluation.interval.min_participants=2 the single split's test sets and the 3 folds pooled get
# intervals.
REAL_STUDIES = {
    "single": ([], [], ["labelled_frames=0,1"]),
    "kfold": (
        ["split=kfold", "split.folds=3", "pipeline.conditions=[0,1]"],
        ["pipeline.folds=[1,2,3]"],
        [],
    ),
}


@pytest.fixture(scope="module")
def real_studies(tmp_path_factory) -> dict[str, tuple[Path, object, str]]:
    """Each of REAL_STUDIES generated and prepared, then `python -m src.train +sweep=frames` and
    `python -m src.report` on it: {name: (root, config, what the report printed)}. The two studies'
    commands run side by side: each process spends most of its time on one core (its imports)."""
    import subprocess

    from tests.conftest import python_env, tiny_overrides, tiny_project

    studies = {}
    for name, (project, both, _) in REAL_STUDIES.items():
        root = tmp_path_factory.mktemp(f"real-{name}")
        cfg = tiny_project(root, *project)
        overrides = [
            *tiny_overrides(root),
            f"paths.data_dir={root / 'data'}",
            "synthetic=tiny",
            *project,
            *both,
            f"report.dir={root / 'report'}",
            "evaluation.interval.min_participants=2",
        ]
        studies[name] = (root, cfg, overrides)
    printed = {}
    for step in ("sweep", "report"):
        jobs = {}
        for name, (root, _, overrides) in studies.items():
            command = ["src.train", "+sweep=frames", *REAL_STUDIES[name][2]]
            command = command if step == "sweep" else ["src.report"]
            log = root / f"{step}.out"
            with open(log, "w") as out, open(log.with_suffix(".err"), "w") as err:
                jobs[name] = subprocess.Popen(
                    [sys.executable, "-m", *command, *overrides],
                    cwd=REPO,
                    env=python_env(),
                    stdout=out,
                    stderr=err,
                )
        for name, job in jobs.items():
            job.wait()
            log = studies[name][0] / f"{step}.out"
            printed[name] = log.read_text()
            error = log.with_suffix(".err").read_text()
            assert job.returncode == 0, f"{name}, {step}: {printed[name][-3000:]}{error[-3000:]}"
    return {name: (root, cfg, printed[name]) for name, (root, cfg, _) in studies.items()}


@pytest.mark.slow
def test_report_of_a_tiny_real_study_shows_mlflows_intervals(real_studies):
    """A real sweep (tiny cohort, conditions 0 and 1, DeepLabCut training) and `python -m src.report`:
    every interval bound in results.csv is exactly the run's metric, the generalisation set of 1
    participant has none and says so, errors/participants.csv sums back to the MAE and holds
    pseudonyms only, and the "frames to label" answer is printed and tagged."""
    tmp_path, cfg, printed = real_studies["single"]
    client = MlflowClient(cfg.mlflow.tracking_uri)
    experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    parent = find_sweep(client, experiment_id)
    runs = collect_runs(client, experiment_id, parent.info.run_id)
    results = pd.read_csv(tmp_path / "report" / "results.csv", index_col=0, **EXACT)
    markdown = (tmp_path / "report" / "results.md").read_text()
    compared = 0
    for row in runs.itertuples():
        logged = client.get_run(row.run_id).data.metrics
        for column, metric in TABLE_COLUMNS.items():
            if metric not in logged or pd.isna(logged[metric]):
                continue
            assert results.loc[row.labelled_frames, column] == logged[metric]
            for end in ("ci_low", "ci_high"):
                if f"{metric}_{end}" in logged:
                    assert (
                        results.loc[row.labelled_frames, f"{column} {end}"]
                        == (logged[f"{metric}_{end}"])
                    )
                    compared += 1
        # 3 participants: 2 develop (intervals), 1 generalises (none, not a zero-width one)
        assert logged["n_generalisation_participants"] == 1
        assert "mae_generalisation_px_ci_low" not in logged
        assert logged["mae_test_px_ci_low"] < logged["mae_test_px"] < logged["mae_test_px_ci_high"]
        assert 0 <= logged["pck0.2_test"] <= 1 and logged["mae_test_pct_ref"] > 0
        folder = tmp_path / "artifacts" / row.run_id
        errors = pd.read_csv(
            client.download_artifacts(row.run_id, "errors/participants.csv", str(folder))
        )
        assert errors["participant"].str.startswith("participant-").all()
        assert errors["video"].str.startswith("video-").all()
        for set_name in ("test", "generalisation"):
            rows = errors[(errors["set"] == set_name) & errors["pcutoff"].isna()]
            pooled = rows["sum_error_px"].sum() / rows["n_points"].sum()
            assert pooled == pytest.approx(logged[f"mae_{set_name}_px"], rel=1e-5)
    assert compared >= 4
    pixels = section(markdown, "Mean error (MAE) in pixels")
    letter = re.search(
        r"\((\w)\) 1 generalisation participant: too few for an interval; use split=kfold\.", pixels
    ).group(1)
    assert re.search(rf"\d\.\d\d \({letter}\)", pixels)  # the cell carries the letter
    split = pd.read_csv(Path(cfg.paths.prepared_dir) / cfg.data.name / "split.csv")
    shown = markdown + (tmp_path / "report" / "participant_errors.csv").read_text()
    assert not any(str(p) in shown for p in split["participant"].unique())
    tags = client.get_run(parent.info.run_id).data.tags
    assert int(tags["frames_to_label"]) in (0, 1)
    assert tags["frames_to_label_sentence"] in markdown
    assert tags["frames_to_label_sentence"] in printed  # by python -m src.report


def test_folds_are_pooled_over_participants_with_the_spread_between_folds(tmp_path):
    """Two folds, each with two generalisation participants: each cell pools every fold's points
    (the MAE is their summed error over their points), the interval resamples the 4 participants,
    and the spread is the fold MAEs' minimum, maximum and SD."""
    maes = {  # fold -> participant -> (points, generalisation MAE at 1 and 2 frames)
        0: {"participant-a": (10, 30.0, 20.0), "participant-b": (20, 12.0, 10.0)},
        1: {"participant-c": (10, 50.0, 41.0), "participant-d": (30, 6.0, 5.0)},
    }
    rows, runs = [], []
    for fold, participants in maes.items():
        for i, n_frames in enumerate((1, 2)):
            points = sum(v[0] for v in participants.values())
            summed = sum(v[0] * v[1 + i] for v in participants.values())
            runs.append(
                {
                    "labelled_frames": n_frames,
                    "fold": float(fold),
                    "run_id": f"run{fold}{n_frames}",
                    "run_name": f"frames={n_frames}",
                    "status": "FINISHED",
                    "mae_generalisation_px": summed / points,
                    "mae_generalisation_cm": 1.5 * summed / points,
                    "n_generalisation_points": float(points),
                    "n_generalisation_frames": 2.0,
                    # no errors per participant of the test set: pooled from the folds' counts
                    "mae_test_px": 4.0 + fold,
                    "n_test_points": 100.0 * (fold + 1),
                    "mae_test_pcutoff0.8_px": 3.0 + fold,
                    "kept_test_pcutoff0.8": 0.5,
                    # evaluated at the cutoff, no point kept: an empty cell, not a missing column
                    "mae_generalisation_pcutoff0.8_px": np.nan,
                    "kept_generalisation_pcutoff0.8": 0.0,
                }
            )
            for participant, values in participants.items():
                rows.append(
                    {
                        "pcutoff": np.nan,
                        "set": "generalisation",
                        "participant": participant,
                        "video": f"video-{participant[-1]}",
                        "bodypart": "knee",
                        "n_points": values[0],
                        "sum_error_px": values[0] * values[1 + i],
                        "mae_px": values[1 + i],
                        "labelled_frames": n_frames,
                        "fold": float(fold),
                    }
                )
    runs, participants = pd.DataFrame(runs), pd.DataFrame(rows)
    pooled, spread = pool_folds(runs, participants, 0.8, Bootstrap(2000, 0, 0.95))
    pooled = pooled.set_index("labelled_frames")
    for i, n_frames in enumerate((1, 2)):
        everyone = [v for fold in maes.values() for v in fold.values()]
        expected = sum(v[0] * v[1 + i] for v in everyone) / sum(v[0] for v in everyone)
        row = pooled.loc[n_frames]
        assert row["mae_generalisation_px"] == pytest.approx(expected)
        assert row["mae_generalisation_cm"] == pytest.approx(1.5 * expected)
        assert row["n_generalisation_participants"] == 4
        assert row["n_generalisation_points"] == 70 and row["n_generalisation_frames"] == 4
        assert row["mae_generalisation_px_ci_low"] < expected < row["mae_generalisation_px_ci_high"]
        assert row["run_ids"] == f"run0{n_frames},run1{n_frames}"
        assert row["mae_test_px"] == pytest.approx((4 * 100 + 5 * 200) / 300)
        assert row["mae_test_pcutoff0.8_px"] == pytest.approx((3 * 50 + 4 * 100) / 150)
        assert np.isnan(row.get("mae_test_px_ci_low", np.nan))  # no participants: no interval
        assert np.isnan(row["mae_generalisation_pcutoff0.8_px"])
        folds = runs[runs["labelled_frames"] == n_frames]["mae_generalisation_px"]
        assert spread.loc[n_frames, "generalisation fold_min"] == folds.min()
        assert spread.loc[n_frames, "generalisation fold_max"] == folds.max()
        assert spread.loc[n_frames, "generalisation fold_sd"] == pytest.approx(folds.std())

    data = ReportData(
        pooled.reset_index(),
        paper_table(pooled.reset_index(), 0.8),
        participants=participants,
        fold_spread=spread,
    )
    out = write_report(data, tmp_path / "folds")
    results = pd.read_csv(out / "results.csv", index_col=0)
    assert results.loc[2, "generalisation fold_max"] == pytest.approx(
        spread.loc[2, "generalisation fold_max"]
    )
    markdown = (out / "results.md").read_text()
    assert "## Spread between folds" in markdown and "pools every fold's points" in markdown
    assert {"participant-a", "participant-d"} <= set(
        pd.read_csv(out / "participant_errors.csv")["participant"]
    )


def test_report_of_a_cross_validation_pools_the_folds(store, tmp_path):
    """A sweep of 2 folds x conditions 1 and 2 (runs tagged fold), through report(): each cell is the
    MAE over both folds' participants with an interval over all 4, the spread is the fold MAEs', and
    "frames to label" compares the conditions on all 4 participants."""
    client, experiment_id = store["client"], store["experiment_id"]
    parent = client.create_run(  # older than the store's sweep: `latest` stays that one
        experiment_id, start_time=1700, run_name="folds", tags={"sweep": "frames=1,2 folds"}
    ).info.run_id
    held_out = {
        1: {"participant-11111111": 0.5, "participant-22222222": 1.5},
        2: {"participant-33333333": 0.8, "participant-44444444": 1.2},
    }
    fold_maes = {}
    for fold, participants in held_out.items():
        for n in (1, 2):
            metrics = metrics_for(n, bump=3 * fold)
            fold_maes[(fold, n)] = metrics["mae_generalisation_px"]
            log_child(
                client,
                experiment_id,
                parent,
                n,
                1700 + 10 * fold + n,
                metrics,
                tmp_path,
                tags=snapshot_tags(n) | {"fold": str(fold), "folds": "2"},
                participants=participants,
            )
    client.set_terminated(parent, "FINISHED")
    cfg = compose_config(
        tmp_path,
        f"mlflow.tracking_uri={store['uri']}",
        f"mlflow.experiment={EXPERIMENT}",
        f"report.sweep={parent}",
        f"report.dir={tmp_path / 'report'}",
    )
    out = report(cfg)
    results = pd.read_csv(out / "results.csv", index_col=0, **EXACT)
    assert results.index.tolist() == [1, 2]
    for n in (1, 2):
        # both folds have 36 + 36 points: the pooled MAE is the mean of the fold MAEs
        pooled = (fold_maes[(1, n)] + fold_maes[(2, n)]) / 2
        assert results.loc[n, "generalisation"] == pytest.approx(pooled)
        assert results.loc[n, "generalisation participants"] == 4
        assert results.loc[n, "generalisation points"] == 144
        low, high = (
            results.loc[n, "generalisation ci_low"],
            results.loc[n, "generalisation ci_high"],
        )
        assert low < pooled < high
        assert results.loc[n, "generalisation fold_min"] == min(
            fold_maes[(1, n)], fold_maes[(2, n)]
        )
        assert results.loc[n, "generalisation fold_max"] == max(
            fold_maes[(1, n)], fold_maes[(2, n)]
        )
    markdown = (out / "results.md").read_text()
    assert "## Spread between folds" in markdown
    # the test set logged no errors per participant here: pooled from counts, no interval, said so
    pixels = section(markdown, "Mean error (MAE) in pixels")
    letter = re.search(r"\((\w)\) no interval: no participant errors logged\.", pixels).group(1)
    assert re.search(rf"\d\.\d\d \({letter}\)", pixels) and NO_INTERVAL not in pixels
    per_participant = section(markdown, "Error per generalisation participant (px)")
    assert all(p in per_participant for fold in held_out.values() for p in fold)
    tags = client.get_run(parent).data.tags
    assert tags["frames_to_label"] == "2"  # 1 frame is about 17 px worse for every participant
    assert "of the paired difference over 4 participant(s)" in tags["frames_to_label_sentence"]


@pytest.mark.slow
def test_report_of_a_tiny_real_cross_validation_pools_the_folds(real_studies):
    """A real 3-fold sweep of the tiny cohort (3 participants: 1 held out per fold, so no fold alone
    has an interval) and `python -m src.report`: the pooled generalisation MAE is the fold MAEs
    weighted by their points (MLflow's metrics), over 3 participants with an interval; the spread
    is the fold MAEs'."""
    tmp_path, cfg, printed = real_studies["kfold"]
    client = MlflowClient(cfg.mlflow.tracking_uri)
    experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    parent = find_sweep(client, experiment_id)
    runs = collect_runs(client, experiment_id, parent.info.run_id)
    assert sorted(runs["fold"].unique()) == [1, 2, 3]
    results = pd.read_csv(tmp_path / "report" / "results.csv", index_col=0, **EXACT)
    assert results.index.tolist() == [0, 1]
    for n, folds in runs.groupby("labelled_frames"):
        assert (folds["n_generalisation_participants"] == 1).all()
        weights = folds["n_generalisation_points"]
        pooled = (folds["mae_generalisation_px"] * weights).sum() / weights.sum()
        assert results.loc[n, "generalisation"] == pytest.approx(pooled, rel=1e-9)
        assert results.loc[n, "generalisation participants"] == 3
        low, high = (
            results.loc[n, "generalisation ci_low"],
            results.loc[n, "generalisation ci_high"],
        )
        assert low <= results.loc[n, "generalisation"] <= high and low < high
        assert results.loc[n, "generalisation fold_min"] == folds["mae_generalisation_px"].min()
        assert results.loc[n, "generalisation fold_max"] == folds["mae_generalisation_px"].max()
        assert results.loc[n, "generalisation fold_sd"] == pytest.approx(
            folds["mae_generalisation_px"].std()
        )
    markdown = (tmp_path / "report" / "results.md").read_text()
    assert "## Spread between folds" in markdown
    per_participant = section(markdown, "Error per generalisation participant (px)")
    assert per_participant.count("participant-") == 3  # every participant once, by pseudonym
    # the trust section: every signal labelled frames allow, the temporal jump marked absent
    trust = pd.read_csv(tmp_path / "report" / "trust_validation.csv", index_col=0)
    assert trust.index.tolist() == [0, 1] and (trust["participants"] == 3).all()
    assert trust["folds"].tolist() == [3, 3]
    assert trust["auroc_jump_px"].isna().all()
    assert trust["signals_absent"].str.contains("jump_px").all()
    assert {
        "auroc_combined",
        "auroc_pca_reconstruction_error_px",
        "auroc_gain_over_best_single",
    } <= set(trust)
    trust_text = section(markdown, "Trust flags on participants the models never saw")
    assert "signal, 1 labelled frames per video" in trust_text
    assert "absent: needs the video around each frame" in trust_text
    tags = client.get_run(parent.info.run_id).data.tags
    assert tags["frames_to_label"] in ("0", "1")
    assert "3 participant" in tags["frames_to_label_sentence"]
    assert tags["frames_to_label_sentence"] in printed
