"""The shared MLflow tracking server of a team, with logins: start it, add users, grant them studies.

A new user sees no study until the admin grants one: its experiment and its registered model (both named
after the study, data.name). Secrets are read from the environment or from files only their owner can
read, never from the command line. Setting up, TLS and backups: docs/tracking_server.md.

Examples:
    # on the server host; each *_FILE a file of yours with mode 600
    export MLFLOW_BACKEND_STORE_URI_FILE=~/.mlflow-server/backend_uri         # postgresql://mlflow:<pw>@...
    export MLFLOW_AUTH_ADMIN_PASSWORD_FILE=~/.mlflow-server/admin_password     # 12 characters or more
    export MLFLOW_FLASK_SERVER_SECRET_KEY_FILE=~/.mlflow-server/secret_key
    python -m src.server start --artifacts /srv/mlflow-artifacts               # make tracking-server
    # as the admin (MLFLOW_TRACKING_USERNAME=admin, MLFLOW_TRACKING_PASSWORD=<admin's password>)
    python -m src.server add-user alice --study gait_lab --password-file alice.pw
    python -m src.server grant bob gait_lab pretraining-healthy_adults --permission READ
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from src.errors import ConfigError, exit_on_data_error
from src.tracking import server

DEFAULT_URI = "http://127.0.0.1:5000"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m src.server",
        description=__doc__.split("\n\nExamples:")[0],
        epilog="Examples:" + __doc__.split("Examples:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start the server (replaces this process)")
    start.add_argument(
        "--artifacts", required=True, help="folder or s3:// URI of the artifact store"
    )
    start.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: loopback)"
    )
    start.add_argument("--port", type=int, default=5000)
    start.add_argument("--workers", type=int, default=2)
    start.add_argument(
        "--state-dir",
        type=Path,
        default=Path("~/.mlflow-server").expanduser(),
        help="owner-only folder of the login settings and, by default, the users' database",
    )
    for name, what in (("add-user", "create a login"), ("grant", "grant a user studies")):
        command = commands.add_parser(name, help=what)
        command.add_argument("username")
        if name == "grant":
            command.add_argument("studies", nargs="+", help="study (experiment) names")
        else:
            command.add_argument("--study", dest="studies", action="append", default=[])
            command.add_argument(
                "--password-file",
                type=Path,
                help="a file only you can read holding the new password (else asked for)",
            )
        command.add_argument("--permission", default="EDIT", choices=server.PERMISSIONS)
        command.add_argument(
            "--uri",
            default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI),
            help=f"the server (default: MLFLOW_TRACKING_URI or {DEFAULT_URI})",
        )
    return top


def new_password(args: argparse.Namespace) -> str:
    if args.password_file:
        return server.private_file(args.password_file, "--password-file")
    if not sys.stdin.isatty():
        raise ConfigError("give the new password in --password-file (a file only you can read)")
    first = getpass.getpass(f"password for {args.username}: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ")
    return first


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with exit_on_data_error():
        if args.command == "start":
            server.start(args.artifacts, args.host, args.port, args.workers, args.state_dir)
        elif args.command == "add-user":
            server.add_user(
                args.uri, args.username, new_password(args), args.studies, args.permission
            )
        else:
            server.grant(args.uri, args.username, args.studies, args.permission)


if __name__ == "__main__":
    main()
