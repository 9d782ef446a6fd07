"""A shared MLflow tracking server with a PostgreSQL backend store and proxied artifacts (docs/tracking_server.md).

Real PostgreSQL on loopback (started as the `postgres` user when the tests run as root: PostgreSQL refuses
root), a real `mlflow server`, and two tiny frames sweeps from two "machines" (own working folders, own
sweep folders) at the same time into the same experiment, read back through the server. Then the same
with logins (`python -m src.server start`): who may read and write what.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO, python_env
from tests.training.test_launchers import (
    EXPERIMENT,
    METRICS,
    new_machine,
    prepare_tiny,
    store_overrides,
    sweep_runs,
)
from tools import local_servers
from tools.local_servers import free_port, http_status, owner_only

CONDITIONS = [0, 2]  # the initial model (evaluation only) and one trained condition
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres():
    """A throw-away PostgreSQL server on 127.0.0.1 with databases `mlflow` and `mlflow_auth`; yields the
    SQLAlchemy URI of `mlflow`."""
    if local_servers.postgres_bin() is None:
        pytest.skip(
            "no PostgreSQL server programs (initdb, pg_ctl) on this machine: apt-get install postgresql"
        )
    with local_servers.postgres(("mlflow", "mlflow_auth")) as uri:
        yield uri


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    """`mlflow server` over the PostgreSQL store, proxying artifacts to a shared folder: (URL, artifacts folder)."""
    root = tmp_path_factory.mktemp("server")
    artifacts, port = root / "artifacts", free_port()
    command = [str(Path(sys.executable).with_name("mlflow")), "server"]
    command += ["--backend-store-uri", postgres, "--artifacts-destination", str(artifacts)]
    command += ["--serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    url = f"http://127.0.0.1:{port}"
    with local_servers.started(command, root / "server.log", url, python_env()):
        yield url, artifacts


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


# --- The same server with logins (python -m src.server start): who may read and write what ---------

ADMIN_PASSWORD = "admin-test-Passw0rd"  # given in an owner-only file, as the docs say
USERS = {"alice": "alice-test-Passw0rd", "bob": "bob-test-Passw0rd"}


def as_user(name: str | None, password: str | None = None) -> dict[str, str]:
    """The environment of a command run by ``name`` (None: without any credential)."""
    env = {
        k: v
        for k, v in python_env().items()
        if k
        not in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
    }
    if name:
        env |= {
            "MLFLOW_TRACKING_USERNAME": name,
            "MLFLOW_TRACKING_PASSWORD": password or USERS.get(name, ADMIN_PASSWORD),
        }
    return env


def client_of(url: str, name: str, monkeypatch) -> MlflowClient:
    """A client of ``url`` (runs and registry) acting as ``name``, through the environment, which
    MLflow reads at each request."""
    for key, value in as_user(name, ADMIN_PASSWORD if name == "admin" else None).items():
        if key.startswith("MLFLOW_TRACKING_"):
            monkeypatch.setenv(key, value)
    return MlflowClient(url, registry_uri=url)


def src_server(*args: str, env: dict[str, str], url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "src.server", *args, "--uri", url],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def auth_server(postgres, tmp_path_factory):
    """`python -m src.server start` over its own PostgreSQL database; alice and bob added by the admin,
    each granted one study: (URL, folder of the secrets)."""
    root = tmp_path_factory.mktemp("auth-server")
    backend = postgres.rsplit("/", 1)[0] + "/mlflow_auth"
    with local_servers.auth_server(backend, root, ADMIN_PASSWORD) as (url, process):
        # the command line of the server holds no secret (ps shows it to every user of the host)
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
        assert ADMIN_PASSWORD not in cmdline and "test-only-flask-key" not in cmdline
        for name, password in USERS.items():
            added = src_server(
                "add-user",
                name,
                "--study",
                f"study-{name}",
                "--password-file",
                owner_only(root / name, password),
                env=as_user("admin", ADMIN_PASSWORD),
                url=url,
            )
            assert added.returncode == 0, added.stderr[-2000:]
        yield url, root


def test_the_authenticated_server_lets_no_one_in_without_a_login(auth_server):
    url, _ = auth_server
    search = "/api/2.0/mlflow/experiments/search?max_results=10"
    assert http_status(url + search) == 401  # no credential
    assert http_status(url + search, "alice", "wrong-password-123") == 401
    assert (
        http_status(url + search, "admin", "password1234") == 401
    )  # MLflow's old default admin login
    assert http_status(url + search, "admin", ADMIN_PASSWORD) == 200
    assert http_status(
        url + "/ajax-api/2.0/mlflow/users/get?username=bob", "alice", USERS["alice"]
    ) in (
        401,
        403,
    )


def test_a_user_cannot_read_write_find_or_load_another_users_study(
    auth_server, monkeypatch, tmp_path
):
    url, _ = auth_server
    alice = client_of(url, "alice", monkeypatch)
    experiment = alice.get_experiment_by_name("study-alice")
    run = alice.create_run(experiment.experiment_id)
    alice.log_metric(run.info.run_id, "mae_test_px", 3.5)
    model_file = tmp_path / "model.txt"
    model_file.write_text("weights")
    alice.log_artifact(run.info.run_id, str(model_file), "model")
    alice.create_registered_model("study-alice")
    alice.create_model_version("study-alice", f"runs:/{run.info.run_id}/model", run.info.run_id)
    alice.set_terminated(run.info.run_id)

    bob = client_of(url, "bob", monkeypatch)
    assert "study-alice" not in {e.name for e in bob.search_experiments()}
    assert "study-alice" not in {m.name for m in bob.search_registered_models()}
    denied = [
        lambda: bob.get_experiment(experiment.experiment_id),
        lambda: bob.get_run(run.info.run_id),
        lambda: bob.log_metric(run.info.run_id, "mae_test_px", 0.0),
        lambda: bob.get_registered_model("study-alice"),
        lambda: bob.download_artifacts(run.info.run_id, "model", str(tmp_path)),
        lambda: bob.get_model_version_download_uri("study-alice", "1"),  # loading its model
    ]
    for attempt in denied:
        with pytest.raises(Exception, match="403|PERMISSION_DENIED|Permission denied"):
            attempt()
    # bob's own study is his to write
    mine = bob.get_experiment_by_name("study-bob")
    bob.set_terminated(bob.create_run(mine.experiment_id).info.run_id)
    alice = client_of(url, "alice", monkeypatch)  # MLflow reads the credential at each request
    assert [m.value for m in alice.get_metric_history(run.info.run_id, "mae_test_px")] == [3.5]


def test_a_study_runs_with_a_login_and_stops_in_one_line_without_one(
    auth_server, two_machines, tmp_path, monkeypatch
):
    """The project's own command against the server: refused before any run without a credential,
    with a wrong one, or on another user's study; with alice's login it logs the condition as
    always, and her password is in no param, tag or file it wrote."""
    url, _ = auth_server
    data_root = two_machines[0].parent  # the tiny cohort and initial model the sweeps above used
    machine = new_machine(tmp_path / "alice", data_root / "models" / "pretrained")
    train = [sys.executable, "-m", "src.train", *store_overrides(machine, data_root, url)]
    train += ["labelled_frames=2", "mlflow.experiment=study-alice"]
    for env, needle in (
        (as_user(None), "MLFLOW_TRACKING_USERNAME"),
        (as_user("alice", "wrong-password-123"), "credential was refused"),
        (as_user("bob"), "user bob may not use it"),
    ):
        done = subprocess.run(train, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 2, done.stderr[-3000:]
        assert done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr[-3000:]
    admin = client_of(url, "admin", monkeypatch)
    experiment_id = admin.get_experiment_by_name("study-alice").experiment_id
    assert not admin.search_runs([experiment_id], "tags.labelled_frames = '2'")  # nothing started
    done = subprocess.run(
        train, cwd=REPO, env=as_user("alice"), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [run] = admin.search_runs([experiment_id], "tags.labelled_frames = '2'")
    assert run.info.status == "FINISHED" and set(METRICS) <= set(run.data.metrics)
    history = admin.get_metric_history(run.info.run_id, "loss_train")
    assert [m.step for m in history] == list(range(1, int(run.data.params["derived.epochs"]) + 1))
    logged = " ".join([*run.data.params.values(), *run.data.tags.values()])
    written = " ".join(p.read_text(errors="ignore") for p in machine.rglob("*.y*ml") if p.is_file())
    for secret in (USERS["alice"], ADMIN_PASSWORD):
        assert secret not in logged and secret not in written and secret not in done.stdout
