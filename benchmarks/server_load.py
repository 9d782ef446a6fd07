"""Load on the shared tracking server with logins: several studies logging at once, counted back.

A throw-away PostgreSQL and ``python -m src.server start`` over it (tools/local_servers.py) on this
machine; the admin adds one user per process and grants it its own study. Each of ``--processes``
processes then logs as a training does, as fast as it can: one ``log_batch`` per epoch with the three
curves DeepLabCut writes (``loss_train``, ``loss_test``, the matched test RMSE, step = epoch, as
src/tracking/live_curves.py sends them) and a snapshot-sized artifact every ``--artifact-every``
epochs. Afterwards every run is read back through the server: points lost (an epoch missing) and
duplicated (one (run, key, step) logged twice) are counted, and every artifact is listed.

The training's own rate is the fastest we measured: the demo's 1-labelled-frame cell, 3 updates per
epoch at 0.66 s each on a 2-core CPU (benchmarks/results/limits.md), logs 3 points per 2 s epoch.

    .venv/bin/python -m benchmarks.server_load [--processes 8] [--epochs 300]

writes benchmarks/results/server_load.md (first lines ``name: value``). Needs PostgreSQL's server
programs (``make postgres``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import tempfile
import time
import traceback
from pathlib import Path

from tools import local_servers

CURVES = ("loss_train", "loss_test", "dlc_training_rmse_matched_test_px")
TRAINING_POINTS_PER_S = 3 / (3 * 0.66)  # the fastest measured training (see the docstring)
ADMIN_PASSWORD = "benchmark-admin-Passw0rd"
RESULTS = Path(__file__).parent / "results" / "server_load.md"


def user(index: int) -> tuple[str, str]:
    return f"loader{index}", f"loader{index}-Passw0rd-xyz"


def log_like_a_training(
    url: str, index: int, epochs: int, artifact: str, every: int, queue
) -> None:
    """One process: its own user and study, one run, ``epochs`` batches of curves and the artifacts;
    puts (run id, index, seconds) on ``queue``, or (None, index, the error) if it failed."""
    try:
        queue.put(_log(url, index, epochs, artifact, every))
    except Exception:  # noqa: BLE001 - reported by the parent
        queue.put((None, index, traceback.format_exc()))


def _log(url: str, index: int, epochs: int, artifact: str, every: int) -> tuple[str, int, float]:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    name, password = user(index)
    os.environ |= {"MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": password}
    client = MlflowClient(url)
    run = client.create_run(client.get_experiment_by_name(f"study-{name}").experiment_id)
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        now = int(time.time() * 1000)
        client.log_batch(run.info.run_id, [Metric(key, 1.0 / epoch, now, epoch) for key in CURVES])
        if epoch % every == 0:
            client.log_artifact(run.info.run_id, artifact, f"snapshots/epoch-{epoch}")
    client.set_terminated(run.info.run_id)
    return run.info.run_id, index, time.perf_counter() - started


def count_back(url: str, runs: list[tuple[str, int, float]], epochs: int, every: int) -> dict:
    """Points lost and duplicated, and artifacts missing, read through the server as each user."""
    from mlflow.tracking import MlflowClient

    lost = duplicated = artifacts_missing = 0
    for run_id, index, _ in runs:
        name, password = user(index)
        os.environ |= {"MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": password}
        client = MlflowClient(url)
        for key in CURVES:
            steps = [m.step for m in client.get_metric_history(run_id, key)]
            lost += len(set(range(1, epochs + 1)) - set(steps))
            duplicated += len(steps) - len(set(steps))
        listed = {a.path for a in client.list_artifacts(run_id, "snapshots")}
        expected = {f"snapshots/epoch-{e}" for e in range(every, epochs + 1, every)}
        artifacts_missing += len(expected - listed)
    return {"lost": lost, "duplicated": duplicated, "artifacts_missing": artifacts_missing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=300, help="batches of curves per process")
    parser.add_argument("--artifact-every", type=int, default=50, help="epochs between artifacts")
    parser.add_argument("--artifact-mb", type=float, default=5.0, help="size of each artifact")
    parser.add_argument("--workers", type=int, default=2, help="the server's worker processes")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="server-load-") as tmp:
        root = Path(tmp)
        artifact = root / "snapshot.pt"
        artifact.write_bytes(os.urandom(int(args.artifact_mb * 1e6)))
        with (
            local_servers.postgres() as backend,
            local_servers.auth_server(backend, root, ADMIN_PASSWORD, args.workers) as (url, _),
        ):
            admin = {
                "MLFLOW_TRACKING_USERNAME": "admin",
                "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD,
            }
            os.environ |= admin
            from src.tracking.server import add_user

            for index in range(args.processes):
                add_user(url, *user(index), [f"study-{user(index)[0]}"], "EDIT")
            queue = multiprocessing.get_context("spawn").Queue()
            processes = [
                multiprocessing.get_context("spawn").Process(
                    target=log_like_a_training,
                    args=(url, i, args.epochs, str(artifact), args.artifact_every, queue),
                )
                for i in range(args.processes)
            ]
            started = time.perf_counter()
            for process in processes:
                process.start()
            runs = [queue.get(timeout=1800) for _ in processes]
            for run_id, index, error in runs:
                if run_id is None:
                    raise RuntimeError(f"process {index} failed:\n{error}")
            wall_s = time.perf_counter() - started
            for process in processes:
                process.join()
            counted = count_back(url, runs, args.epochs, args.artifact_every)

    points = args.processes * args.epochs * len(CURVES)
    artifacts = args.processes * (args.epochs // args.artifact_every)
    points_per_s = points / wall_s
    figures = {
        "processes": args.processes,
        "points_logged": points,
        "points_per_s": round(points_per_s, 1),
        "ratio_to_a_training": round(points_per_s / TRAINING_POINTS_PER_S, 1),
        "artifact_mb_per_s": round(artifacts * args.artifact_mb / wall_s, 1),
        "points_lost": counted["lost"],
        "points_duplicated": counted["duplicated"],
        "artifacts_missing": counted["artifacts_missing"],
        "wall_s": round(wall_s, 1),
    }
    lines = [f"{name}: {value}" for name, value in figures.items()]
    lines += [
        "",
        "# Load on the tracking server with logins",
        "",
        f"`python -m benchmarks.server_load --processes {args.processes} --epochs {args.epochs} "
        f"--artifact-every {args.artifact_every} --artifact-mb {args.artifact_mb} --workers {args.workers}`",
        "",
        f"{args.processes} processes, each its own user and study, logged {args.epochs} epochs of "
        f"{len(CURVES)} curves (one log_batch per epoch) and {args.epochs // args.artifact_every} "
        f"artifacts of {args.artifact_mb} MB each through `python -m src.server start` "
        f"({args.workers} workers, PostgreSQL backend, artifacts proxied) on the same machine.",
        f"A training logs at most {TRAINING_POINTS_PER_S:.1f} points/s (the fastest measured: 3 curves "
        "per 2 s epoch of the demo's 1-frame cell on 2 CPU cores).",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; the server, "
        "PostgreSQL and the clients shared them.",
    ]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines[: len(figures)]))


if __name__ == "__main__":
    main()
