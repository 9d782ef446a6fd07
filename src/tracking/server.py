"""The shared MLflow tracking server with logins: its secrets, its start, its users and their studies.

The server is MLflow's own (``mlflow server --app-name basic-auth``); this module only starts it the
one safe way and wraps MLflow's user API:

* secrets come from the environment or from files only their owner can read (``<VARIABLE>_FILE``),
  never from the command line, where ``ps`` shows them to everyone on the host;
* a new user sees nothing (``default_permission = NO_PERMISSIONS``) until the admin grants a study: its
  experiment and its registered model, both named after the study (``data.name``);
* artifacts go through the server (``--serve-artifacts``): clients need no access to the artifact store.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from src.errors import ConfigError
from src.tracking.credentials import PASSWORD_VAR, USERNAME_VAR, is_loopback, redact

BACKEND_VAR = (
    "MLFLOW_BACKEND_STORE_URI"  # runs, params, metrics: postgresql://mlflow:<pw>@host/mlflow
)
AUTH_DB_VAR = (
    "MLFLOW_AUTH_DATABASE_URI"  # users and permissions; default: SQLite in the state folder
)
ADMIN_PASSWORD_VAR = (
    "MLFLOW_AUTH_ADMIN_PASSWORD"  # MLflow's: the admin's password at the first start
)
SECRET_KEY_VAR = "MLFLOW_FLASK_SERVER_SECRET_KEY"  # MLflow's: signs the login app's forms (CSRF)
ADMIN_USER = "admin"
MIN_PASSWORD_CHARS = 12
PERMISSIONS = ("READ", "EDIT", "MANAGE")  # MLflow's; NO_PERMISSIONS is what a user has by default
LEGACY_ADMIN_PASSWORD = "password1234"  # the default of older MLflow releases: known to everyone


def private_file(path: Path, what: str) -> str:
    """The stripped text of ``path``, refused unless it is ours and nobody else can read it."""
    if not path.is_file():
        raise ConfigError(f"{what}: {path} does not exist")
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(
            f"{what}: {path} can be read by others: chown $USER {path} && chmod 600 {path}"
        )
    return path.read_text(encoding="utf-8").strip()


def read_secret(variable: str, hint: str) -> str:
    """A secret from ``<variable>_FILE`` (a file only we can read) or ``<variable>``; one line if neither."""
    file = os.environ.get(f"{variable}_FILE")
    value = private_file(Path(file), f"{variable}_FILE") if file else os.environ.get(variable)
    if not value:
        raise ConfigError(
            f"{variable} is not set: put {hint} in a file only you can read (chmod 600) and set "
            f"{variable}_FILE=<that file>, or export {variable}; never give it on the command line"
        )
    return value


def check_password(password: str, whose: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS or password == LEGACY_ADMIN_PASSWORD:
        raise ConfigError(
            f"{whose} is too weak: at least {MIN_PASSWORD_CHARS} characters, not MLflow's old default "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )


def write_auth_config(state_dir: Path, database: str) -> Path:
    """MLflow's basic-auth settings in ``state_dir`` (owner-only): users in ``database``, and no
    permission for a new user."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    text = (
        "# Written by python -m src.server start; MLflow reads it through MLFLOW_AUTH_CONFIG_PATH.\n"
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = {database}\n"
        f"admin_username = {ADMIN_USER}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
        # A checked login is remembered for 60 s per worker: about 3x the requests per second (each
        # check is a deliberately slow password hash); a changed password reaches the other workers
        # within that minute.
        "auth_cache_ttl_seconds = 60\n"
    )
    handle, staging = tempfile.mkstemp(dir=state_dir, prefix=".basic_auth-")  # created 0600
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    return Path(staging).replace(state_dir / "basic_auth.ini")


def server_command(artifacts: str, host: str, port: int, workers: int) -> list[str]:
    """``mlflow server`` with the login app; the backend store comes from the environment."""
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    return [
        mlflow,
        "server",
        "--app-name",
        "basic-auth",
        "--artifacts-destination",
        artifacts,
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def server_environment(state_dir: Path) -> dict[str, str]:
    """The server's environment: its secrets checked and in MLflow's variables, the auth config written."""
    backend = read_secret(
        BACKEND_VAR, "the backend store's URI (postgresql://mlflow:<pw>@host/mlflow)"
    )
    admin_password = read_secret(ADMIN_PASSWORD_VAR, "the admin's password")
    check_password(admin_password, ADMIN_PASSWORD_VAR)
    secret_key = read_secret(SECRET_KEY_VAR, "a random key (secrets.token_hex(32))")
    auth_db = (
        read_secret(AUTH_DB_VAR, "")
        if _is_set(AUTH_DB_VAR)
        else f"sqlite:///{state_dir.resolve() / 'basic_auth.db'}"
    )
    config = write_auth_config(state_dir, auth_db)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_FILE")}
    env.update(
        {
            BACKEND_VAR: backend,
            ADMIN_PASSWORD_VAR: admin_password,
            SECRET_KEY_VAR: secret_key,
            AUTH_DB_VAR: auth_db,
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
        }
    )
    return env


def _is_set(variable: str) -> bool:
    return bool(os.environ.get(variable) or os.environ.get(f"{variable}_FILE"))


def start(artifacts: str, host: str, port: int, workers: int, state_dir: Path) -> None:
    """Replace this process by the server (so a service manager's signals reach it)."""
    env = server_environment(state_dir)
    command = server_command(artifacts, host, port, workers)
    print(
        f"[server] mlflow server with logins on http://{host}:{port}: runs in "
        f"{redact(env[BACKEND_VAR])}, artifacts in {artifacts} (served), users in "
        f"{redact(env[AUTH_DB_VAR])}; new users see nothing "
        "until granted a study (python -m src.server grant)",
        flush=True,
    )
    if not is_loopback(host):
        print(
            f"[server] {host} is reachable from other machines over plain HTTP: serve it to them only "
            "through an HTTPS proxy (docs/tracking_server.md, 'TLS')",
            flush=True,
        )
    os.execvpe(command[0], command, env)


def admin_client(uri: str):
    """MLflow's user API of the server at ``uri``, as the admin in MLFLOW_TRACKING_USERNAME/PASSWORD."""
    # starlette's deprecation notice on importing the login app would break the one-line errors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from mlflow.server import get_app_client

    if not os.environ.get(USERNAME_VAR) or not os.environ.get(PASSWORD_VAR):
        raise ConfigError(
            f"set {USERNAME_VAR}={ADMIN_USER} and {PASSWORD_VAR} to the admin's password (from a file: "
            f'{PASSWORD_VAR}="$(cat <file>)") to manage users'
        )
    return get_app_client("basic-auth", tracking_uri=uri)


def _explained(action: str, error: Exception) -> ConfigError:
    text = " ".join(str(error).split())
    if "401" in text:
        return ConfigError(
            f"{action}: the server refused the admin login in {USERNAME_VAR}/{PASSWORD_VAR}"
        )
    if "403" in text:
        return ConfigError(
            f"{action}: {os.environ.get(USERNAME_VAR)} is not an admin of the server"
        )
    if "RESOURCE_ALREADY_EXISTS" in text:
        return ConfigError(
            f"{action}: it exists already (grant it a study instead: python -m src.server grant)"
        )
    return ConfigError(f"{action}: {text[:300]}")


def grant(uri: str, username: str, studies: list[str], permission: str) -> None:
    """Give ``username`` ``permission`` on each study: its experiment (created when new) and its
    registered model (named after it: granted before it exists)."""
    from mlflow.tracking import MlflowClient

    if permission not in PERMISSIONS:
        raise ConfigError(f"--permission {permission}: one of {', '.join(PERMISSIONS)}")
    users, runs = admin_client(uri), MlflowClient(uri)
    for study in studies:
        try:
            experiment = runs.get_experiment_by_name(study)
            experiment_id = (
                experiment.experiment_id if experiment else runs.create_experiment(study)
            )
            _set_permission(users, username, "experiment", experiment_id, permission)
            _set_permission(users, username, "registered_model", study, permission)
        except Exception as error:  # noqa: BLE001 - MLflow raises several kinds; one line for each
            raise _explained(f"granting {study} to {username}", error) from None
        print(
            f"[server] {username}: {permission} on study {study} (experiment and registered model)"
        )


def _set_permission(users, username: str, kind: str, resource: str, permission: str) -> None:
    """Grant, or replace the permission the user holds already (MLflow has no update for it)."""
    try:
        users.grant_user_permission(username, kind, resource, permission)
    except Exception as error:  # noqa: BLE001
        if "RESOURCE_ALREADY_EXISTS" not in str(error):
            raise
        users.revoke_user_permission(username, kind, resource)
        users.grant_user_permission(username, kind, resource, permission)


def add_user(uri: str, username: str, password: str, studies: list[str], permission: str) -> None:
    """Create a login that sees nothing, then grant it ``studies``."""
    check_password(password, f"the password of {username}")
    try:
        admin_client(uri).create_user(username, password)
    except ConfigError:
        raise
    except Exception as error:  # noqa: BLE001
        raise _explained(f"adding user {username}", error) from None
    print(f"[server] user {username} created; it sees no study until granted one")
    if studies:
        grant(uri, username, studies, permission)
