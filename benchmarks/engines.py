"""TensorFlow engine against PyTorch engine: time per weight update and MAE at equal updates.

    .venv/bin/python -m benchmarks.engines --frames 2 --iterations 10 40 --model resnet_50

On the embedded default cohort (generated and prepared into a temporary data folder), one condition
(``labelled_frames``) is trained by ``python -m src.train`` with each engine from random initial
weights (``weights=random``: the TensorFlow engine's locally built checkpoint, the PyTorch engine's
seeded initialisation; no pre-training, so both start alike), at batch size 8 as the CPU profile,
with the same model depth (``model=resnet_50``: DeepLabCut's TensorFlow resnet_v1_50, its PyTorch
resnet50_gn). Every run is a whole process (imports, training set, training, evaluation, MLflow).

* time per update: (CPU time at the larger budget - CPU time at the smaller) / (the difference in
  updates), which cancels everything but the updates. CPU time (user + system of the process and its
  children), because on a shared machine the wall time of a whole run swings with the other load by
  more than the updates take (a first run here gave a negative wall-time difference); wall times are
  shown beside. The engines run alternately; medians over ``--repeats``.
* MAE at equal updates: mae_test_px and mae_generalisation_px (with and without p-cutoff 0.8) of
  the runs at the larger budget.

Prints the figures and writes benchmarks/results/engines.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO

ENGINES = ("pytorch", "tensorflow")
METRICS = (
    "mae_test_px",
    "mae_test_pcutoff0.8_px",
    "mae_generalisation_px",
    "mae_generalisation_pcutoff0.8_px",
)


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of a command (CPU: it and every process it waited for)."""
    start, cpu = time.perf_counter(), cpu_of_children()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - start, cpu_of_children() - cpu


def metrics_of(store: Path, engine: str, iterations: int) -> dict[str, float]:
    """The metrics of the newest run of ``engine`` at ``iterations`` updates."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("synthetic_clinical")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.engine = '{engine}' and params.`training.iterations` = '{iterations}'",
        order_by=["attributes.start_time DESC"],
    )
    return {name: runs[0].data.metrics.get(name, float("nan")) for name in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2, help="labelled frames per video")
    parser.add_argument("--iterations", type=int, nargs=2, default=[10, 40], help="two budgets")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--model", default="resnet_50")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    store = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    python = [sys.executable, "-m"]
    common = [f"paths.data_dir={store / 'data'}", "seed=42"]
    for stage in ("src.cohort", "src.prepare"):
        print(f"{stage} ...", flush=True)
        run([*python, stage, *common, "weights=random"])
    low, high = args.iterations
    walls: dict[tuple[str, int], list[float]] = {}
    cpus: dict[tuple[str, int], list[float]] = {}
    for repeat in range(args.repeats):
        for iterations in (low, high):
            for engine in ENGINES:
                seconds, cpu = run(
                    [
                        *python,
                        "src.train",
                        *common,
                        f"engine={engine}",
                        f"labelled_frames={args.frames}",
                        f"model={args.model}",
                        "weights=random",
                        f"training.iterations={iterations}",
                        f"training.batch_size={args.batch_size}",
                        "training.evaluations=1",
                        "retrain=true",
                        f"paths.models_dir={store / 'models'}",
                        f"mlflow.tracking_uri=sqlite:///{store / 'mlflow.db'}",
                        f"mlflow.artifact_location={store / 'artifacts'}",
                    ]
                )
                walls.setdefault((engine, iterations), []).append(seconds)
                cpus.setdefault((engine, iterations), []).append(cpu)
                print(
                    f"repeat {repeat + 1}: {engine} {iterations} updates: {seconds:.1f} s wall, {cpu:.1f} s CPU",
                    flush=True,
                )

    per_update = {
        engine: statistics.median(
            (h - lo) / (high - low)
            for h, lo in zip(cpus[(engine, high)], cpus[(engine, low)], strict=True)
        )
        for engine in ENGINES
    }
    maes = {engine: metrics_of(store, engine, high) for engine in ENGINES}
    ratio = per_update["tensorflow"] / per_update["pytorch"]
    command = (
        f"python -m benchmarks.engines --frames {args.frames} --iterations {low} {high} "
        f"--repeats {args.repeats} --model {args.model} --batch-size {args.batch_size}"
    )
    lines = [
        "# TensorFlow engine vs PyTorch engine",
        "",
        f"Command: `.venv/bin/{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared with "
        "other work; training.threads 2. Condition: "
        f"{args.frames} labelled frames per video of the default cohort (200 x 160 px), "
        f"model={args.model}, weights=random, batch size {args.batch_size}.",
        "",
        f"| engine | wall / CPU at {low} updates (s) | wall / CPU at {high} updates (s) | "
        "CPU s per update (median) | " + " | ".join(METRICS) + " |",
        "|---|---|---|---|" + "---|" * len(METRICS),
    ]
    for engine in ENGINES:
        lines.append(
            f"| {engine} | {pairs(walls, cpus, (engine, low))} | "
            f"{pairs(walls, cpus, (engine, high))} | {per_update[engine]:.2f} | "
            + " | ".join(f"{maes[engine][m]:.2f}" for m in METRICS)
            + " |"
        )
    lines += [
        "",
        f"- CPU time per update, TensorFlow / PyTorch: **{ratio:.2f}**.",
        f"- MAE at {high} updates from random weights (px): see the table; both engines are far from"
        " converged at this budget, so the MAE says that both train, not which is more accurate.",
        "- DeepLabCut's TensorFlow loop runs one update more than asked (iterations 0..N).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    (REPO / "benchmarks" / "results" / "engines.md").write_text(text, encoding="utf-8")


def pairs(walls: dict, cpus: dict, key: tuple[str, int]) -> str:
    return ", ".join(f"{w:.0f} / {c:.0f}" for w, c in zip(walls[key], cpus[key], strict=True))


if __name__ == "__main__":
    main()
