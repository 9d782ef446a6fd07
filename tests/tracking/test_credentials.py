"""Credentials for a tracking server: never in the configuration, never in plain HTTP beyond this
machine, and a server that refuses us is one line before any work (src/tracking/credentials.py)."""

from __future__ import annotations

import socket

import pytest

from src.errors import ConfigError
from src.tracking import credentials
from src.tracking.credentials import check_access, check_uri, redact

SECRET = "s3cret-Passw0rd-xyz"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch, tmp_path):
    """No credential from this machine's environment or home leaks into a test."""
    for name in (credentials.USERNAME_VAR, credentials.PASSWORD_VAR, credentials.TOKEN_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(credentials.ALLOW_PLAIN_HTTP_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_redact_hides_user_and_password_and_keeps_the_rest():
    assert redact(f"postgresql://mlflow:{SECRET}@db.lab:5432/mlflow") == (
        "postgresql://***@db.lab:5432/mlflow"
    )
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_a_password_in_the_tracking_uri_is_refused_without_repeating_it():
    with pytest.raises(ConfigError) as refused:
        check_uri(f"https://alice:{SECRET}@tracking.lab:443")
    message = str(refused.value)
    assert SECRET not in message and "alice" not in message
    assert "MLFLOW_TRACKING_USERNAME" in message and "MLFLOW_TRACKING_PASSWORD" in message


@pytest.mark.parametrize(
    ("uri", "with_password", "allowed", "refused"),
    [
        ("http://10.1.2.3:5000", True, False, True),  # another machine, plain HTTP: the one refusal
        ("http://10.1.2.3:5000", True, True, False),  # ... unless the documented key allows it
        ("http://10.1.2.3:5000", False, False, False),  # nothing secret to send
        ("https://10.1.2.3:5000", True, False, False),
        ("http://127.0.0.1:5000", True, False, False),  # loopback: an SSH tunnel's end
        ("http://localhost:5000", True, False, False),
        ("http://[::1]:5000", True, False, False),
    ],
)
def test_plain_http_carries_a_password_only_to_this_machine(
    monkeypatch, uri, with_password, allowed, refused
):
    if with_password:
        monkeypatch.setenv(credentials.USERNAME_VAR, "alice")
        monkeypatch.setenv(credentials.PASSWORD_VAR, SECRET)
    if allowed:
        monkeypatch.setenv(credentials.ALLOW_PLAIN_HTTP_VAR, "1")
    if refused:
        with pytest.raises(ConfigError, match=credentials.ALLOW_PLAIN_HTTP_VAR):
            check_uri(uri)
    else:
        check_uri(uri)


def test_mlflows_credentials_file_counts_and_must_be_private(tmp_path):
    file = tmp_path / ".mlflow" / "credentials"
    file.parent.mkdir()
    file.write_text(
        f"[mlflow]\nmlflow_tracking_username = alice\nmlflow_tracking_password = {SECRET}\n"
    )
    file.chmod(0o644)
    with pytest.raises(ConfigError, match=r"chmod 600 .*credentials"):
        check_uri("https://tracking.lab")
    file.chmod(0o600)
    check_uri("https://tracking.lab")
    with pytest.raises(ConfigError, match="plain HTTP"):  # the file is a credential too
        check_uri("http://tracking.lab:5000")


def test_no_server_at_the_uri_is_one_line_naming_the_key():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConfigError) as refused:
        check_access(f"http://127.0.0.1:{port}", "study")
    assert "mlflow.tracking_uri" in str(refused.value) and "\n" not in str(refused.value)


def test_a_local_store_needs_no_login():
    check_access("sqlite:///mlruns/mlflow.db", "study")
