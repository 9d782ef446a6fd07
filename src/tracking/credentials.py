"""Logging in to a tracking server: where credentials may come from, and a check before any work.

The project's commands use MLflow's own sources of credentials and nothing else: the variables
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (or ``MLFLOW_TRACKING_TOKEN``), or the file
``~/.mlflow/credentials``. Never the configuration: a URI with ``user:password@`` is refused, so no
credential can reach ``params.yaml``, the study file, a logged param or a log line.

:func:`check_access` runs when a stage first points MLflow at a server (``store.configure``), before any
training: a missing or wrong credential, a study the user may not read, or a password about to travel in
plain HTTP beyond this machine is one line naming the variable or key to fix.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from src.errors import ConfigError

USERNAME_VAR = "MLFLOW_TRACKING_USERNAME"
PASSWORD_VAR = "MLFLOW_TRACKING_PASSWORD"
TOKEN_VAR = "MLFLOW_TRACKING_TOKEN"
# Set to 1 to send credentials over plain HTTP to a host other than this machine (a trusted lab network
# where TLS is ended elsewhere). Off: they would cross the network readable by anyone on the path.
ALLOW_PLAIN_HTTP_VAR = "ALLOW_PLAIN_HTTP_CREDENTIALS"
CREDENTIALS_FILE = Path(
    "~/.mlflow/credentials"
)  # MLflow's own: [mlflow] mlflow_tracking_username = ...


def redact(uri: str) -> str:
    """``uri`` with any user name and password replaced by ``***``, for messages and logs."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def is_loopback(host: str | None) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def has_credentials() -> bool:
    """Whether MLflow will send a credential: from the environment or ``~/.mlflow/credentials``."""
    if os.environ.get(USERNAME_VAR) or os.environ.get(PASSWORD_VAR) or os.environ.get(TOKEN_VAR):
        return True
    return CREDENTIALS_FILE.expanduser().is_file()


def check_uri(uri: str) -> None:
    """Refuse credentials in the URI, and credentials over plain HTTP to another machine."""
    parts = urlsplit(uri)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            f"mlflow.tracking_uri={redact(uri)} holds a user name or password: remove it from the URI and "
            f"give them in {USERNAME_VAR} and {PASSWORD_VAR} (or ~/.mlflow/credentials), never in the "
            "configuration, which is logged"
        )
    if (
        parts.scheme == "http"
        and not is_loopback(parts.hostname)
        and has_credentials()
        and os.environ.get(ALLOW_PLAIN_HTTP_VAR) != "1"
    ):
        raise ConfigError(
            f"mlflow.tracking_uri={uri} is plain HTTP to another machine: the password would cross the "
            "network unencrypted. Use https:// through the server's TLS proxy (docs/tracking_server.md), "
            f"an SSH tunnel to http://127.0.0.1, or set {ALLOW_PLAIN_HTTP_VAR}=1 on a network you trust"
        )
    credentials = CREDENTIALS_FILE.expanduser()
    if is_server(uri) and credentials.is_file() and credentials.stat().st_mode & 0o077:
        raise ConfigError(
            f"{credentials} holds a password and others can read it: chmod 600 {credentials}"
        )


def check_access(uri: str, experiment: str) -> None:
    """Before any work: the server answers, accepts our credential, and lets us use ``experiment``.

    A study whose experiment the server does not know yet passes (the stage creates it, and the login
    app gives its creator MANAGE). One that exists but is not ours is refused: either another user's
    study of the same name, or one the admin has not granted us.
    """
    check_uri(uri)
    if not is_server(uri):
        return
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        answer = http_request(
            get_default_host_creds(uri),
            "/api/2.0/mlflow/experiments/get-by-name",
            "GET",
            max_retries=0,
            timeout=30,
            raise_on_status=False,
            params={"experiment_name": experiment},
        )
    except Exception as error:  # noqa: BLE001 - any failure to connect is the same fix for the user
        raise ConfigError(
            f"no MLflow tracking server answers at mlflow.tracking_uri={redact(uri)} "
            f"({type(error).__name__}): start it (make tracking-server) or correct the URI"
        ) from None
    user = os.environ.get(USERNAME_VAR) or "(none)"
    if answer.status_code == 401:
        given = "was refused" if has_credentials() else "is missing"
        raise ConfigError(
            f"the tracking server {redact(uri)} asks for a login and the credential {given}: set "
            f"{USERNAME_VAR} and {PASSWORD_VAR} (or ~/.mlflow/credentials) to the account the server's "
            "admin made for you (python -m src.server add-user)"
        )
    if answer.status_code == 403:
        raise ConfigError(
            f"mlflow.experiment={experiment} exists on {redact(uri)} and user {user} may not use it: "
            f"another study has that name, or the admin has not granted it to you. Choose another name "
            f"(mlflow.experiment={experiment}-{user if user != '(none)' else 'mine'}) or ask the admin: "
            f"python -m src.server grant {user} {experiment}"
        )
