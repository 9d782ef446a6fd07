"""Starting the shared server: secrets only from the environment or owner-only files, logins on, and
new users without permissions (src/tracking/server.py, python -m src.server)."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys

import pytest

from src.errors import ConfigError
from src.tracking import server
from tests.conftest import REPO

SECRETS = {
    server.BACKEND_VAR: "postgresql://mlflow:db-Passw0rd-xyz@127.0.0.1:5432/mlflow",
    server.ADMIN_PASSWORD_VAR: "admin-Passw0rd-xyz",
    server.SECRET_KEY_VAR: "a-random-key-0123456789",
}


@pytest.fixture
def secret_files(tmp_path, monkeypatch):
    """Each secret in an owner-only file named by <VARIABLE>_FILE, and no secret variable set."""
    for variable, value in SECRETS.items():
        path = tmp_path / variable.lower()
        path.write_text(value + "\n")
        path.chmod(0o600)
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.setenv(f"{variable}_FILE", str(path))
    monkeypatch.delenv(server.AUTH_DB_VAR, raising=False)
    monkeypatch.delenv(f"{server.AUTH_DB_VAR}_FILE", raising=False)
    return tmp_path


def test_the_server_gets_its_secrets_in_variables_and_new_users_see_nothing(secret_files):
    state = secret_files / "state"
    env = server.server_environment(state)
    for variable, value in SECRETS.items():
        assert env[variable] == value
        assert f"{variable}_FILE" not in env  # the server gets the value, not where it lives
    command = server.server_command("/srv/artifacts", "127.0.0.1", 5000, 2)
    assert not any(value in part for value in SECRETS.values() for part in command)  # not in ps
    assert (
        command[command.index("--app-name") + 1] == "basic-auth" and "--serve-artifacts" in command
    )
    config = configparser.ConfigParser()
    config.read(env["MLFLOW_AUTH_CONFIG_PATH"])
    assert config["mlflow"]["default_permission"] == "NO_PERMISSIONS"
    assert "admin_password" not in config["mlflow"]
    assert (state / "basic_auth.ini").stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700


def test_a_secret_file_others_can_read_is_refused(secret_files):
    (secret_files / server.SECRET_KEY_VAR.lower()).chmod(0o644)
    with pytest.raises(ConfigError, match=r"chmod 600 .*mlflow_flask_server_secret_key"):
        server.server_environment(secret_files / "state")


@pytest.mark.parametrize("password", ["short-pw", server.LEGACY_ADMIN_PASSWORD])
def test_a_weak_or_well_known_admin_password_is_refused(secret_files, password):
    (secret_files / server.ADMIN_PASSWORD_VAR.lower()).write_text(password)
    with pytest.raises(ConfigError, match="too weak"):
        server.server_environment(secret_files / "state")


def test_start_without_secrets_stops_in_one_line_before_starting_anything(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_BACKEND", "MLFLOW_AUTH", "MLFLOW_FLASK"))
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.server",
            "start",
            "--artifacts",
            str(tmp_path / "a"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "MLFLOW_BACKEND_STORE_URI_FILE" in done.stderr
    assert not (tmp_path / "state").exists()


def test_server_help_shows_its_commands_and_examples():
    done = subprocess.run(
        [sys.executable, "-m", "src.server", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for word in ("start", "add-user", "grant", "Examples:", "python -m src.server add-user"):
        assert word in done.stdout
