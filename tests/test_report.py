"""src.report against a small MLflow store with known values, and against the real store when there is one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from src.errors import DataError
from src.evaluation.report import (
    ReportData,
    loss_histories,
    paper_table,
    report,
    write_report,
)
from src.tracking.queries import collect_runs, find_sweep, open_experiment
from tests.conftest import REPO, compose_config

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
]


def metrics_for(n_frames: int, bump: float = 0.0) -> dict[str, float]:
    """Metrics as src.train logs them, with values that do not round to themselves (1/3, 1/7)."""
    metrics = {}
    for i, set_name in enumerate(
        ["train", "test", "generalisation"] if n_frames else ["test", "generalisation"]
    ):
        mae = 100 / (n_frames + 1) + i / 3 + bump + 1 / 7
        metrics |= {
            f"mae_{set_name}_px": mae,
            f"mae_{set_name}_cm": 1.5 * mae,
            f"mae_{set_name}_pcutoff0.8_px": mae / 3,
            f"mae_{set_name}_pcutoff0.8_cm": mae / 2,
            f"kept_{set_name}_pcutoff0.8": 0.25 + i / 7,
            f"n_{set_name}_points": 12.0,
        }
    return metrics


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
    client.log_artifact(run_id, str(folder / "test.csv"), "predictions")
    client.set_terminated(run_id, status, end_time=start + 50)
    return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with an older sweep, the sweep to report (duplicates, a reused model) and a newer non-sweep run.

    Shared by the tests of this module (creating a SQLite store takes seconds); they only add to it.
    """
    tmp_path = tmp_path_factory.mktemp("store")
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
    )
    log_child(client, experiment_id, parent, 1, 2100, metrics_for(1), tmp_path)  # older duplicate
    newest_1 = log_child(client, experiment_id, parent, 1, 2200, logged[1], tmp_path)  # wins
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
    assert results.columns.tolist() == list(TABLE_COLUMNS)
    for n, metrics in logged.items():
        for column, metric in TABLE_COLUMNS.items():
            if metric in metrics:
                assert results.loc[n, column] == metrics[metric], (n, column)  # exact, not rounded
    assert pd.isna(results.loc[0, "train"])
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
    assert "107.04" in markdown  # the paper's Table 1 beside ours
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
