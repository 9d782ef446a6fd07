"""tools.mlflow_screenshot against its own small MLflow store: the real MLflow UI in headless
Chromium, driven by Selenium through chromedriver."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from PIL import Image

from tests.conftest import empty_mlflow_store
from tools.mlflow_screenshot import (
    capture,
    compare_runs_url,
    main,
    render,
    runs_table_url,
    start_ui,
    table_columns,
)

EXPERIMENT = "ui_test"
# per condition: MAE values that appear nowhere else on the page
CONDITIONS = {
    0: {"mae_test_px": 12.34, "mae_generalisation_px": 56.78},
    1: {
        "mae_train_px": 1.23,
        "mae_test_px": 23.45,
        "mae_test_pcutoff0.8_px": 21.09,
        "mae_generalisation_px": 45.67,
    },
    2: {
        "mae_train_px": 2.34,
        "mae_test_px": 34.56,
        "mae_test_pcutoff0.8_px": 31.98,
        "mae_generalisation_px": 43.21,
    },
}
needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("chromedriver") is None,
    reason="chromium or chromedriver is not installed (apt-get install chromium chromium-driver)",
)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A parent run with the conditions frames=0,1,2 as children, as src.train tags them."""
    tmp_path = tmp_path_factory.mktemp("store")
    empty_mlflow_store(tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(
        EXPERIMENT, artifact_location=(tmp_path / "artifacts").as_uri()
    )
    parent = client.create_run(
        experiment_id, start_time=1_000_000, run_name="sweep labelled_frames=0,1,2"
    ).info.run_id
    run_ids = {}
    for n, metrics in CONDITIONS.items():
        start = 1_000_000 + 1000 * (n + 1)
        run_id = client.create_run(
            experiment_id,
            start_time=start,
            run_name=f"frames={n}",
            tags={"labelled_frames": str(n), "mlflow.parentRunId": parent},
        ).info.run_id
        metrics = {**metrics, "kept_test_pcutoff0.8": 0.5}  # not an MAE: no column
        client.log_batch(run_id, metrics=[Metric(k, v, start, 0) for k, v in metrics.items()])
        client.set_terminated(run_id, "FINISHED", end_time=start + 500)
        run_ids[n] = run_id
    client.set_terminated(parent, "FINISHED")
    return dict(uri=uri, experiment_id=experiment_id, parent=parent, run_ids=run_ids)


def assert_shows(text: str, conditions) -> None:
    for n in conditions:
        assert f"frames={n}" in text
        for name, value in CONDITIONS[n].items():
            assert str(value) in text, f"{name} of frames={n} ({value}) is not on the page"


@pytest.mark.slow
@needs_chromium
def test_screenshot_shows_every_condition_with_its_mae(store, tmp_path):
    out = tmp_path / "ui.png"
    url, text = capture(store["uri"], EXPERIMENT, "latest", out, size=(1400, 700))
    assert all(run_id in url for run_id in store["run_ids"].values())
    assert_shows(text, CONDITIONS)
    for metric in [
        "mae_train_px",
        "mae_test_px",
        "mae_test_pcutoff0.8_px",
        "mae_generalisation_px",
    ]:
        assert metric in text  # the columns chosen ...
    assert "kept_test_pcutoff0.8" not in text  # ... and only those
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (1400, 700)
        colors = image.convert("RGB").getcolors(1 << 16)  # None: more than 65536
        assert colors is None or len(colors) > 20  # not a blank page


@pytest.mark.slow
@needs_chromium
def test_the_pages_show_exactly_the_runs_of_their_url(store):
    experiment_id, run_ids = store["experiment_id"], store["run_ids"]
    with start_ui(store["uri"]) as base:
        compared = render(
            compare_runs_url(base, experiment_id, list(run_ids.values())),
            wait_for=[f"frames={n}" for n in run_ids],
        )
        without_2 = render(
            runs_table_url(base, experiment_id, [run_ids[0], run_ids[1]]),
            wait_for=["frames=0", "frames=1"],
            local_storage=table_columns(experiment_id, ["mae_test_px"], expand=[store["parent"]]),
        )
    assert "Comparing 3 Runs" in compared
    assert_shows(compared, CONDITIONS)
    assert "frames=0" in without_2 and "12.34" in without_2 and "23.45" in without_2
    assert "frames=2" not in without_2 and "34.56" not in without_2


def test_a_missing_store_is_one_clear_line_and_status_2(tmp_path):
    missing = tmp_path / "none.db"
    command = ["--tracking-uri", f"sqlite:///{missing}", "--out", str(tmp_path / "ui.png")]
    done = subprocess.run(
        [sys.executable, "-m", "tools.mlflow_screenshot", *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    error = done.stderr
    assert error.startswith("error: ") and "does not exist" in error and error.count("\n") == 1
    assert not missing.exists() and not (tmp_path / "ui.png").exists()


def test_a_missing_chromedriver_is_one_clear_line_naming_the_package(
    store, tmp_path, monkeypatch, capsys
):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "chromium").write_text("#!/bin/sh\nexit 1\n")
    (bin_ / "chromium").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_))  # chromium, but no chromedriver
    out = tmp_path / "ui.png"
    with pytest.raises(SystemExit) as exit_:
        main(["--tracking-uri", store["uri"], "--experiment", EXPERIMENT, "--out", str(out)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: chromedriver is not installed") and error.count("\n") == 1
    assert "apt-get install chromium chromium-driver" in error and "make browser" in error
    assert not out.exists()
