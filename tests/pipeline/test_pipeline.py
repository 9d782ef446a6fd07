"""The DVC pipeline (dvc.yaml) end to end on a tiny configuration, in a private copy of the repository.

Real DVC, real DeepLabCut training, a real MLflow store: cohort -> prepare, prepare_pretraining ->
pretrain -> train@n -> evaluate -> report, then what a user relies on: the table equals MLflow, a
second `dvc repro` does nothing, an evaluation parameter re-runs evaluation and report only, and the
Hydra sweep gives the same numbers as the pipeline.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src.params import write_params
from tests.conftest import TINY_PIPELINE, copy_repository, ran_stages, run

CONDITIONS = [0, 2]  # pipeline.conditions of TINY_PIPELINE
EXACT = dict(float_precision="round_trip")
pytestmark = pytest.mark.slow


def client_of(repo: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{repo / 'mlruns' / 'mlflow.db'}")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """The tiny pipeline reproduced once: (repository copy, output of the first and second `dvc repro`)."""
    repo = copy_repository(tmp_path_factory.mktemp("pipeline") / "repo")
    write_params(repo / "params.yaml", TINY_PIPELINE)
    first = run(repo, "dvc", "repro")
    second = run(repo, "dvc", "repro")
    return repo, first, second


def evaluation_records(repo: Path) -> dict[int, dict]:
    return {
        n: json.loads((repo / f"models/pipeline/evaluation/frames_{n}/metrics.json").read_text())
        for n in CONDITIONS
    }


def test_every_stage_runs_once_and_a_second_repro_is_a_no_op(pipeline):
    repo, first, second = pipeline
    expected = {"check", "cohort", "prepare", "prepare_pretraining", "pretrain", "evaluate"} | {
        f"train@{n}" for n in CONDITIONS
    }
    assert ran_stages(first) == expected | {"report"}
    assert ran_stages(second) == set()
    assert "Data and pipelines are up to date" in run(repo, "dvc", "status")


def test_the_evaluate_stage_reads_what_the_train_stage_predicted(pipeline):
    """The train stage predicts the evaluation frames with the model it saved; the evaluate stage
    takes them from the predictions cache instead of loading DeepLabCut to predict them again."""
    _, first, _ = pipeline
    for n in CONDITIONS:
        predicted = re.search(rf"labelled_frames={n}: predicted its (\d+) frames", first)
        read = re.search(rf"labelled_frames={n}: the predictions of its (\d+) frames come", first)
        assert predicted and read, n
        assert predicted.start() < read.start() and predicted.group(1) == read.group(1)


def test_report_table_equals_the_mlflow_runs(pipeline):
    repo, _, _ = pipeline
    client = client_of(repo)
    table = pd.read_csv(repo / "reports/results.csv", index_col=0, **EXACT)
    assert table.index.tolist() == CONDITIONS
    records = evaluation_records(repo)
    columns = {
        "train": "mae_train_px",
        "test": "mae_test_px",
        "test, p-cutoff 0.8": "mae_test_pcutoff0.8_px",
        "generalisation": "mae_generalisation_px",
        "generalisation, p-cutoff 0.8": "mae_generalisation_pcutoff0.8_px",
    }
    compared = 0
    for n in CONDITIONS:
        logged = client.get_run(records[n]["run_id"]).data.metrics
        for column, metric in columns.items():
            if metric in logged and logged[metric] == logged[metric]:
                assert table.loc[n, column] == logged[metric], (n, column)
                compared += 1
            else:
                assert pd.isna(table.loc[n, column]), (n, column)
    assert compared >= 2 * len(
        CONDITIONS
    )  # test and generalisation at least (the tiny model rarely passes 0.8)
    # The same runs are one parent's children; the report is attached to it, which the report stage ended.
    parents = {
        client.get_run(r["run_id"]).data.tags["mlflow.parentRunId"] for r in records.values()
    }
    assert len(parents) == 1
    parent = client.get_run(parents.pop())
    assert parent.info.status == "FINISHED"
    attached = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"results.md", "results.csv", "metrics.json", "loss_curves.png"} <= attached
    # The trained condition's run holds its training too: loss curve and model.
    trained = client.get_run(records[2]["run_id"])
    assert trained.data.tags["model_source"] == "trained"
    assert client.get_metric_history(trained.info.run_id, "loss_train")
    assert {Path(a.path).name for a in client.list_artifacts(trained.info.run_id, "model")} >= {
        "snapshot-last.pt"
    }
    metrics = json.loads(run(repo, "dvc", "metrics", "show", "--json"))
    # the key itself, once per condition (not its _ci_low / _ci_high bounds)
    assert json.dumps(metrics).count('"mae_test_px"') == len(CONDITIONS)


def test_hydra_sweep_gives_the_pipelines_numbers(pipeline):
    """`python -m src.train +sweep=frames` with the same configuration reuses the pipeline's models."""
    repo, _, _ = pipeline
    records = evaluation_records(repo)
    swept = ",".join(map(str, CONDITIONS))
    run(
        repo,
        sys.executable,
        "-m",
        "src.train",
        "+sweep=frames",
        *TINY_PIPELINE,
        f"labelled_frames={swept}",
    )
    client = client_of(repo)
    experiment = client.get_experiment_by_name("synthetic_clinical").experiment_id
    for n in CONDITIONS:
        newest = client.search_runs(
            [experiment],
            f"tags.labelled_frames = '{n}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )[0]
        assert newest.info.run_id != records[n]["run_id"]
        if n > 0:
            assert newest.data.tags["model_source"] == f"reused from run {records[n]['run_id']}"
        for name, value in records[n]["metrics"].items():  # equal, NaN (no point kept) included
            assert newest.data.metrics[name] == pytest.approx(value, rel=0, abs=0, nan_ok=True), (
                n,
                name,
            )


def test_a_new_condition_trains_only_itself(pipeline):
    repo, _, _ = pipeline
    before = evaluation_records(repo)
    grown = [*TINY_PIPELINE[:-1], f"pipeline.conditions=[{','.join(map(str, CONDITIONS))},1]"]
    write_params(repo / "params.yaml", grown)
    assert ran_stages(run(repo, "dvc", "repro")) == {"train@1", "evaluate", "report"}
    assert evaluation_records(repo) == before  # the others evaluated again: same runs, same numbers
    assert pd.read_csv(repo / "reports/results.csv", index_col=0).index.tolist() == sorted(
        [*CONDITIONS, 1]
    )
    write_params(repo / "params.yaml", TINY_PIPELINE)


def test_an_evaluation_parameter_reruns_evaluation_and_report_only(pipeline):
    """Last of the module: it leaves the pipeline evaluated at other p-cutoffs than the others expect."""
    repo, _, _ = pipeline
    before = evaluation_records(repo)
    write_params(repo / "params.yaml", [*TINY_PIPELINE, "evaluation.pcutoffs=[0.5,0.8]"])
    rerun = ran_stages(run(repo, "dvc", "repro"))
    assert rerun == {"evaluate", "report"}
    after = evaluation_records(repo)
    client = client_of(repo)
    for n in CONDITIONS:
        assert after[n]["run_id"] == before[n]["run_id"]  # evaluated again in the same MLflow run
        assert "mae_test_pcutoff0.5_px" in client.get_run(after[n]["run_id"]).data.metrics
        assert after[n]["metrics"]["mae_test_px"] == before[n]["metrics"]["mae_test_px"]
