"""A shared MLflow tracking server with a PostgreSQL backend store and proxied artifacts (docs/tracking_server.md).

Real PostgreSQL on loopback (started as the `postgres` user when the tests run as root: PostgreSQL refuses
root), a real `mlflow server`, and two tiny frames sweeps from two "machines" (own working folders, own
sweep folders) at the same time into the same experiment, read back through the server.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO, python_env
from tests.test_launchers import (
    EXPERIMENT,
    METRICS,
    new_machine,
    prepare_tiny,
    store_overrides,
    sweep_runs,
)

CONDITIONS = [0, 2]  # the initial model (evaluation only) and one trained condition
PASSWORD = (
    "test-only-secret"  # of the database role `mlflow`; a real server reads it from a file (docs)
)
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl), from PATH or Debian's layout."""
    found = shutil.which("pg_ctl")
    if found and Path(found).with_name("initdb").exists():
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4])
    )
    return Path(versions[-1]).parent if versions else None


def as_owner(command: list[str], owner: str | None) -> list[str]:
    """``command`` run as ``owner`` (when we are root), else as ourselves."""
    return ["runuser", "-u", owner, "--", *command] if owner else command


@pytest.fixture(scope="module")
def postgres():
    """A throw-away PostgreSQL server on 127.0.0.1 with a database `mlflow`; yields its SQLAlchemy URI."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip(
            "no PostgreSQL server programs (initdb, pg_ctl) on this machine: apt-get install postgresql"
        )
    owner = None
    if (
        os.geteuid() == 0
    ):  # PostgreSQL will not run as root: its files and processes belong to an ordinary user
        owner = next((name for name in ("postgres", "nobody") if _user_exists(name)), None)
        assert owner, (
            "running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL"
        )
    base = Path(
        tempfile.mkdtemp(prefix="mlflow-pg-")
    )  # not under pytest's tmp_path: its parents are root-only
    (base / "pwfile").write_text(PASSWORD + "\n")
    if owner:
        user = pwd.getpwnam(owner)
        for path in (base, base / "pwfile"):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = free_port()
    data = base / "data"
    subprocess.run(
        as_owner(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "mlflow",
                "--pwfile",
                str(base / "pwfile"),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
            owner,
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base}"  # TCP on loopback only; its socket in base/
    subprocess.run(
        as_owner(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(base / "postgres.log"),
                "-o",
                options,
                "-w",
                "-t",
                "120",
                "start",
            ],
            owner,
        ),
        check=True,
        capture_output=True,
        timeout=180,
    )
    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            user="mlflow",
            password=PASSWORD,
            dbname="postgres",
            autocommit=True,
        ) as admin:
            admin.execute("CREATE DATABASE mlflow")
        yield f"postgresql://mlflow:{PASSWORD}@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(
            as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], owner),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(base, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """`mlflow server` over the PostgreSQL store, proxying artifacts to a shared folder: (URL, artifacts folder)."""
    root = tmp_path_factory.mktemp("server")
    artifacts, port = root / "artifacts", free_port()
    with open(root / "server.log", "w") as log:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("mlflow")),
                "server",
                "--backend-store-uri",
                postgres,
                "--artifacts-destination",
                str(artifacts),
                "--serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=python_env(),
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 180
            while True:
                assert process.poll() is None, (root / "server.log").read_text()[-3000:]
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                assert time.time() < deadline, (
                    "mlflow server did not answer /health:\n"
                    + (root / "server.log").read_text()[-3000:]
                )
                time.sleep(1)
            yield url, artifacts
        finally:
            stop_session(process)


def stop_session(process: subprocess.Popen) -> None:
    """End the process we started in its own session, and what it started (the server's worker)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def two_machines(server, tmp_path_factory):
    """Two tiny sweeps started at the same time against the server, from two working folders: their roots."""
    url, _ = server
    data_root = tmp_path_factory.mktemp("shared-data")
    pretrained = prepare_tiny(data_root)
    machines = [new_machine(data_root / name, pretrained) for name in ("machine-a", "machine-b")]
    started = []
    for machine in machines:
        command = [
            sys.executable,
            "-m",
            "src.train",
            "+sweep=frames",
            *store_overrides(machine, data_root, url),
            f"labelled_frames={','.join(map(str, CONDITIONS))}",
        ]
        started.append(
            subprocess.Popen(
                command,
                cwd=REPO,
                env=python_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for process in started:
        out, err = process.communicate(timeout=900)
        assert process.returncode == 0, f"{out[-3000:]}\n{err[-5000:]}"
        assert f"[sweep] {len(CONDITIONS)} of {len(CONDITIONS)} jobs finished" in out
    return machines


def test_sweeps_from_two_machines_land_in_one_experiment_without_colliding(
    server, postgres, two_machines
):
    url, artifacts = server
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment.artifact_location.startswith(
        "mlflow-artifacts:"
    )  # the server's store, not a client folder
    parents = client.search_runs([experiment.experiment_id], "tags.sweep LIKE 'labelled_frames=%'")
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)
    seen: set[str] = set()
    for machine in two_machines:
        # Each machine's sweep is one parent run with its own children: found by the working folder they logged.
        mine = [p for p in parents if str(machine / "models") in p.data.tags["sweep_overrides"]]
        assert len(mine) == 1, [p.data.tags["sweep_overrides"] for p in parents]
        parent, children = sweep_runs(client, mine[0].info.run_id)
        assert sorted(children) == CONDITIONS
        for run in children.values():
            assert run.info.status == "FINISHED"
            assert run.data.params["paths.models_dir"] == str(machine / "models")
            assert {"mae_test_px", "mae_generalisation_px"} <= set(run.data.metrics)
            assert run.info.run_id not in seen
            seen.add(run.info.run_id)
        trained = children[2]
        assert trained.data.tags["model_source"] == "trained" or trained.data.tags[
            "model_source"
        ].startswith("reused from run ")
        if (
            trained.data.tags["model_source"] == "trained"
        ):  # its own loss curve, one point per epoch, not two jobs' mixed
            history = client.get_metric_history(trained.info.run_id, "loss_train")
            assert [m.step for m in history] == list(
                range(1, int(trained.data.params["derived.epochs"]) + 1)
            )
        # Artifacts through the server's proxy; they live in its --artifacts-destination, not on the machine.
        summary = Path(
            client.download_artifacts(parent.info.run_id, "sweep_summary.csv")
        ).read_text()
        assert summary.count("finished") == len(CONDITIONS)
        config = Path(
            client.download_artifacts(children[0].info.run_id, "config/config.yaml")
        ).read_text()
        assert str(machine / "models") in config
        assert not (machine / "mlruns" / "artifacts").exists()
        for run in (parent, *children.values()):
            assert list(artifacts.rglob(f"{run.info.run_id}/artifacts/*")), run.info.run_id
    assert len(seen) == 2 * len(CONDITIONS)
    # The runs are rows of PostgreSQL (the backend store), 2 parents and their children.
    with psycopg.connect(postgres) as connection:
        count = connection.execute(
            "SELECT count(*) FROM runs WHERE experiment_id = %s", (int(experiment.experiment_id),)
        ).fetchone()[0]
    assert count == 2 + 2 * len(CONDITIONS)


def test_a_model_trained_by_one_machine_is_downloaded_by_another_through_the_server(
    server, two_machines, tmp_path
):
    """A third machine reuses the finished condition through the server (model artifact proxied), trains nothing."""
    url, _ = server
    data_root = two_machines[0].parent
    third = new_machine(tmp_path / "machine-c", data_root / "models" / "pretrained")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            *store_overrides(third, data_root, url),
            "labelled_frames=2",
        ],
        cwd=REPO,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(url)
    experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    newest = client.search_runs(
        [experiment_id],
        "tags.labelled_frames = '2'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert newest.data.tags["model_source"].startswith("reused from run ")
    source = client.get_run(newest.data.tags["model_source"].removeprefix("reused from run "))
    assert source.data.params["paths.models_dir"] in {str(m / "models") for m in two_machines}
    assert {m: newest.data.metrics[m] for m in METRICS} == {
        m: source.data.metrics[m] for m in METRICS
    }
    assert any(
        (third / "models").rglob("snapshot-last.pt")
    )  # downloaded from the server into its own folder
