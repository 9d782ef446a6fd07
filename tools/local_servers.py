"""Throw-away PostgreSQL and MLflow tracking servers on 127.0.0.1, for tests and benchmarks.

PostgreSQL needs its server programs (``initdb``, ``pg_ctl``: Debian's ``postgresql``, ``make postgres``) and
refuses to run as root: as root it runs as the ``postgres`` (or ``nobody``) user.
"""

from __future__ import annotations

import contextlib
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
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DB_PASSWORD = "test-only-secret"  # of the throw-away database role `mlflow`


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


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else command


def _postgres_owner() -> str | None:
    """Who runs PostgreSQL: ourselves, or an ordinary user when we are root (it refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root, and no 'postgres' or 'nobody' user to run PostgreSQL")


@contextlib.contextmanager
def postgres(databases: tuple[str, ...] = ("mlflow",)) -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 with ``databases``; yields the SQLAlchemy URI of the first."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise FileNotFoundError("no PostgreSQL server programs (initdb, pg_ctl): make postgres")
    owner = _postgres_owner()
    base = Path(tempfile.mkdtemp(prefix="mlflow-pg-"))  # not under a root-only folder
    (base / "pwfile").write_text(DB_PASSWORD + "\n")
    if owner:
        user = pwd.getpwnam(owner)
        for path in (base, base / "pwfile"):
            os.chown(path, user.pw_uid, user.pw_gid)
    port, data = free_port(), base / "data"
    initdb = [
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "-U",
        "mlflow",
        "--pwfile",
        str(base / "pwfile"),
    ]
    initdb += ["--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-locale"]
    subprocess.run(_as_owner(initdb, owner), check=True, capture_output=True, timeout=120)
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {base}"  # TCP on loopback; socket in base/
    )
    start = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "postgres.log")]
    start += ["-o", options, "-w", "-t", "120", "start"]
    subprocess.run(_as_owner(start, owner), check=True, capture_output=True, timeout=180)
    try:
        import psycopg

        server = f"postgresql://mlflow:{DB_PASSWORD}@127.0.0.1:{port}"
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            for name in databases:
                admin.execute(f"CREATE DATABASE {name}")
        yield f"{server}/{databases[0]}"
    finally:
        stop = [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(_as_owner(stop, owner), capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def http_status(url: str, user: str | None = None, password: str | None = None) -> int:
    """The HTTP status of a GET (0: nothing listens), with a basic-auth login when ``user`` is given."""
    import base64

    request = urllib.request.Request(url)
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError:
        return 0


def owner_only(path: Path, text: str) -> str:
    """Write a secret to ``path`` with mode 600; returns the path."""
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


@contextlib.contextmanager
def started(
    command: list[str], log: Path, url: str, env: dict[str, str]
) -> Iterator[subprocess.Popen]:
    """Run ``command`` in its own session until ``url``/health answers 200; stop it and its workers after."""
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.time() + 180
        while http_status(f"{url}/health") != 200:
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield process
    finally:
        stop_session(process)


def stop_session(process: subprocess.Popen) -> None:
    """End the process we started in its own session, and what it started (the server's workers)."""
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


@contextlib.contextmanager
def auth_server(
    backend_uri: str, root: Path, admin_password: str, workers: int = 1
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m src.server start`` over ``backend_uri``, its secrets in owner-only files under ``root``;
    yields (URL, process)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_AUTH", "MLFLOW_FLASK"))}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_BACKEND_STORE_URI_FILE": owner_only(root / "backend", backend_uri),
        "MLFLOW_AUTH_ADMIN_PASSWORD_FILE": owner_only(root / "admin", admin_password),
        "MLFLOW_FLASK_SERVER_SECRET_KEY_FILE": owner_only(root / "key", "test-only-flask-key-0123"),
    }
    command = [sys.executable, "-m", "src.server", "start", "--artifacts", str(root / "artifacts")]
    command += ["--port", str(port), "--workers", str(workers), "--state-dir", str(root / "state")]
    url = f"http://127.0.0.1:{port}"
    with started(command, root / "server.log", url, env) as process:
        yield url, process


@contextlib.contextmanager
def mlflow_server(
    backend_uri: str, artifacts: Path, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """A plain ``mlflow server`` (no logins) over ``backend_uri`` on 127.0.0.1, serving the artifacts in
    ``artifacts``; yields (URL, process). Give ``port`` to start it again where it was, on the same store."""
    port = port or free_port()
    command = [str(Path(sys.executable).with_name("mlflow")), "server"]
    command += ["--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts)]
    command += ["--serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    url = f"http://127.0.0.1:{port}"
    log = Path(artifacts).parent / f"mlflow-server-{port}.log"
    with started(command, log, url, env) as process:
        yield url, process
