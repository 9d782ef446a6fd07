"""DVC experiments on the tiny pipeline, in a private copy of the repository: `dvc exp run -S` with an
evaluation-only change re-runs evaluation and report only, `dvc exp show --json` lists the report's
metrics for it and they are the MLflow runs' numbers; the report stage registered the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from src.params import write_params
from tests.conftest import TINY_PIPELINE, copy_repository, ran_stages, run

pytestmark = pytest.mark.slow
# one condition from random weights: no pre-training, the fastest pipeline that trains
SMALL = [*TINY_PIPELINE, "pipeline.conditions=[2]", "weights=random"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The small pipeline reproduced and committed (experiments start from a commit)."""
    repo = copy_repository(tmp_path_factory.mktemp("experiments") / "repo")
    write_params(repo / "params.yaml", SMALL)
    run(repo, "dvc", "repro")
    run(repo, "git", "add", "-A")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline")
    return repo


def client_of(repo: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{repo / 'mlruns' / 'mlflow.db'}")


def test_exp_run_with_a_new_pcutoff_reruns_evaluation_only_and_exp_show_has_its_metrics(repo):
    output = run(
        repo,
        "dvc", "exp", "run", "-n", "cutoff001",
        "-S", "evaluation.pcutoffs=[0.01]", "-S", "report.pcutoff=0.01",
    )  # fmt: skip
    assert ran_stages(output) == {"evaluate", "report"}
    data = shown_experiment(repo, "cutoff001")["data"]
    assert data["params"]["params.yaml"]["data"]["evaluation"]["pcutoffs"] == [0.01]
    metrics = data["metrics"]["reports/metrics.json"]["data"]
    assert metrics, "dvc exp show lists no metrics of reports/metrics.json"
    # the experiment's numbers are the MLflow run's (logged by the evaluate stage at 0.01: the
    # tiny model's likelihoods are low, so 0.6 would keep no point)
    record = json.loads((repo / "models/pipeline/evaluation/frames_2/metrics.json").read_text())
    mlflow_metrics = client_of(repo).get_run(record["run_id"]).data.metrics
    assert "mae_test_pcutoff0.01_px" in mlflow_metrics
    flat = flatten(metrics)
    assert "frames_2.mae_test_pcutoff0.01_px" in flat  # the table's metric at the new cutoff
    shared = {k: v for k, v in flat.items() if k.split(".")[-1] in mlflow_metrics}
    for key, value in shared.items():
        assert value == pytest.approx(mlflow_metrics[key.split(".")[-1]]), key
    # the workspace now holds the experiment; the baseline's registered model is still there
    assert client_of(repo).get_model_version_by_alias("synthetic_clinical", "champion")


def test_the_pipelines_runs_log_their_data_inputs(repo):
    client = client_of(repo)
    record = json.loads((repo / "models/pipeline/evaluation/frames_2/metrics.json").read_text())
    inputs = client.get_run(record["run_id"]).inputs.dataset_inputs
    assert sorted(i.dataset.name for i in inputs) == [
        "synthetic_clinical-frames",
        "synthetic_clinical-raw",
    ]
    lock = (repo / "dvc.lock").read_text()
    for item in inputs:
        assert item.dataset.digest in lock  # the md5 dvc.lock records for the folder


def shown_experiment(repo: Path, name: str) -> dict:
    """The experiment ``name`` as `dvc exp show --json` lists it."""
    shown = json.loads(run(repo, "dvc", "exp", "show", "--json"))
    (experiment,) = [
        exp
        for baseline in shown
        for exp in (baseline.get("experiments") or [])
        for exp in exp["revs"]
        if exp.get("name") == name
    ]
    return experiment


def flatten(tree: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)):
            flat[f"{prefix}{key}"] = value
    return flat


def test_a_queued_experiment_logs_into_the_workspaces_store_and_reuses_its_model(repo):
    """A queued experiment runs in a temporary copy (.dvc/tmp/exps/); DVC_ROOT points its relative
    MLflow store at the workspace's, so its runs are kept and the trained model is reused."""
    client = client_of(repo)
    experiment_id = client.get_experiment_by_name("synthetic_clinical").experiment_id
    before = {r.info.run_id for r in client.search_runs([experiment_id], max_results=1000)}
    run(
        repo,
        "dvc", "exp", "run", "--queue", "-n", "queued002",
        "-S", "evaluation.pcutoffs=[0.02]", "-S", "report.pcutoff=0.02",
    )  # fmt: skip
    run(repo, "dvc", "exp", "run", "--run-all")
    assert not (repo / ".dvc/tmp/exps/mlruns").exists()
    new = [
        r
        for r in client.search_runs([experiment_id], "tags.labelled_frames = '2'", max_results=1000)
        if r.info.run_id not in before
    ]
    (queued,) = new  # logged into the workspace's store, not the deleted copy's
    assert queued.data.tags["model_source"].startswith("reused from run ")  # not trained again
    assert "mae_test_pcutoff0.02_px" in queued.data.metrics
    experiment = shown_experiment(repo, "queued002")
    metrics = flatten(experiment["data"]["metrics"]["reports/metrics.json"]["data"])
    assert metrics["frames_2.mae_test_pcutoff0.02_px"] == pytest.approx(
        queued.data.metrics["mae_test_pcutoff0.02_px"]
    )
