"""Wall time of a tiny 4-condition frames sweep: joblib launcher with 2 workers against one job after another.

    .venv/bin/python -m benchmarks.launchers --repeats 2 --iterations 24

Configurations (each a fresh working folder and MLflow store, so every condition really trains):

* ``sequential, threads=2``: Hydra's basic launcher, one job at a time, torch on both cores (the default);
* ``parallel 2 x threads=1``: ``hydra/launcher=parallel`` (joblib, n_jobs=2), one torch thread per job, so the
  two jobs use the two cores without oversubscribing them;
* ``sequential, threads=1``: one job at a time on one core: how much torch's own 2 threads give one job.

Repeats are interleaved (A B C A B C ...) so that load from other processes falls on all of them; the load
average before each sweep is recorded. Writes benchmarks/results/launchers.md (or ``--out``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.training.test_launchers import (
    check_sweep,
    new_machine,
    prepare_tiny,
    python_env,
    store_overrides,
)

REPO = Path(__file__).resolve().parents[1]
CONDITIONS = [1, 2, 3, 4]
CONFIGS = {
    "sequential, threads=2": ["training.threads=2"],
    "parallel 2 x threads=1": [
        "hydra/launcher=parallel",
        "hydra.launcher.n_jobs=2",
        "training.threads=1",
    ],
    "sequential, threads=1": ["training.threads=1"],
}


def timed_sweep(
    machine: Path, data_root: Path, overrides: list[str], iterations: int
) -> tuple[float, float, dict]:
    """One sweep: (wall s, CPU s of the sweep's processes, metrics by condition)."""
    # store_overrides sets training.threads=1; the configuration's own value comes after it and wins.
    command = [
        sys.executable,
        "-m",
        "src.train",
        "+sweep=frames",
        *store_overrides(machine, data_root),
        f"training.iterations={iterations}",
        f"labelled_frames={','.join(map(str, CONDITIONS))}",
        *overrides,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=python_env(), capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    metrics = check_sweep(MlflowClient(f"sqlite:///{machine / 'mlruns' / 'mlflow.db'}"), CONDITIONS)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--iterations", type=int, default=24, help="training.iterations per condition"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "launchers.md"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-launchers-") as tmp:
        data_root = Path(tmp)
        pretrained = prepare_tiny(data_root)
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in CONFIGS}
        metrics: dict[str, dict] = {}
        for repeat in range(args.repeats):
            for index, (name, overrides) in enumerate(CONFIGS.items()):
                load = os.getloadavg()[0]
                machine = new_machine(data_root / f"r{repeat}-c{index}", pretrained)
                wall, cpu, metrics[name] = timed_sweep(
                    machine, data_root, overrides, args.iterations
                )
                results[name].append((wall, cpu, load))
                print(
                    f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU (load before {load:.2f})",
                    flush=True,
                )

    median = {name: statistics.median(w for w, _, _ in runs) for name, runs in results.items()}
    base = median["sequential, threads=2"]
    lines = [
        "# Launchers: a 4-condition sweep in parallel (joblib, 2 workers) against one job after another",
        "",
        "Command: `.venv/bin/python -m benchmarks.launchers "
        f"--repeats {args.repeats} --iterations {args.iterations}`",
        f"(tiny cohort, resnet_18, `training.iterations={args.iterations}`, conditions "
        f"`labelled_frames={','.join(map(str, CONDITIONS))}`; each sweep in a fresh folder and MLflow store, so every "
        f"condition trains; {os.cpu_count()} CPU cores; repeats interleaved).",
        "",
        "| configuration | wall s (each repeat) | median wall s | ratio to sequential, threads=2 "
        "| CPU s (median) | load average before |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, runs in results.items():
        walls = ", ".join(f"{w:.1f}" for w, _, _ in runs)
        loads = ", ".join(f"{load:.2f}" for _, _, load in runs)
        cpu = statistics.median(c for _, c, _ in runs)
        lines.append(
            f"| {name} | {walls} | {median[name]:.1f} | {median[name] / base:.2f} | {cpu:.1f} | {loads} |"
        )
    same = metrics["parallel 2 x threads=1"] == metrics["sequential, threads=1"]
    lines += [
        "",
        f"Parallel and sequential with threads=1 gave identical MAE metrics: {same}. "
        f"Sequential threads=2 against threads=1 identical: "
        f"{metrics['sequential, threads=2'] == metrics['sequential, threads=1']}.",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
