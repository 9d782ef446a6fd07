"""Speed cost of the pinned CPU numerics (src/__init__.py): training and evaluation with and without them.

    .venv/bin/python -m benchmarks.reproducibility --repeats 5

The settings are ``CPU_NUMERICS`` (src/__init__.py): "native" (the default: pinned to this CPU's own
instruction-set class), "portable" (pinned to AVX2: the same results on any x86-64 CPU with AVX2) and
"off" (every library's fastest code for this CPU). Every timing is a fresh process, and the settings
alternate so that other load on a shared machine falls on all alike; the figures are medians.

* step: DeepLabCut's pose model as the demo trains it (``model=resnet_18``: the resnet_50 model with timm's
  resnet18 backbone), a batch of 8 random images of the demo's 200 x 160 px: forward, backward and AdamW
  update per iteration (the loss is a stand-in: the mean square of the heads' outputs). Then single images
  forward without gradients, as DeepLabCut evaluates (batch 1: there PyTorch calls MKL instead of oneDNN).
* condition (``--condition``): the whole ``python -m src.train`` of one condition of the tiny test cohort
  (96 x 80 px frames), pre-training included, in a temporary folder.

``--attribute`` also times each of the pinning variables alone. Prints the figures and writes
benchmarks/results/reproducibility.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO

THREADS = 2  # conf/training/cpu_demo.yaml: training.threads
LOAD_BEFORE = os.getloadavg()  # 1, 5, 15 minutes: when the benchmark started


def environment(setting: str) -> dict[str, str]:
    """The environment of a child process: a ``CPU_NUMERICS`` setting, or one portable pin alone."""
    from src import CLASSES, LEGACY_SWITCH, PINNED, SETTING

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (*PINNED, SETTING, LEGACY_SWITCH, "DNNL_MAX_CPU_ISA")
    }
    if setting in PINNED:
        return env | {SETTING: "off", setting: CLASSES["avx2"][setting]}
    return env | {SETTING: setting}


def child_step(steps: int, images: int) -> None:
    """In a fresh process: time training steps and batch-1 forwards one by one; prints one JSON line."""
    import src

    src.pin_cpu_numerics()  # done on import already; before torch computes (unless CPU_NUMERICS=off)
    import torch
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = PoseModel.build(model_config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    batch = torch.randn(8, 3, 160, 200)

    def step() -> None:
        optimizer.zero_grad()
        outputs = model(batch)
        loss = sum((t**2).mean() for head in outputs.values() for t in head.values())
        loss.backward()
        optimizer.step()

    def timings(work, n: int) -> dict[str, float]:
        work()  # warm-up: oneDNN generates its kernels on first use
        walls = []
        for _ in range(n):
            start = time.perf_counter()
            work()
            walls.append(time.perf_counter() - start)
        return {"best_s": min(walls), "median_s": statistics.median(walls)}

    train = timings(step, steps)
    model.eval()
    image = torch.randn(1, 3, 160, 200)
    with torch.no_grad():
        evaluate = timings(lambda: model(image), images)
    print(
        json.dumps(
            {"train": train, "eval": evaluate, "aten": torch.backends.cpu.get_cpu_capability()}
        )
    )


def model_config() -> dict:
    """The ``model`` section of the pytorch_config.yaml that src.train writes for ``model=resnet_18``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from src.study.estimate import pose_model_config

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        model_cfg = compose(config_name="config", overrides=["model=resnet_18"]).model
    return pose_model_config(OmegaConf.to_container(model_cfg, resolve=True), 14)


def run_step(setting: str, steps: int, images: int) -> dict:
    command = [sys.executable, "-m", "benchmarks.reproducibility", "--child-step"]
    command += ["--steps", str(steps), "--images", str(images)]
    result = subprocess.run(
        command, cwd=REPO, env=environment(setting), check=True, capture_output=True, text=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_condition(setting: str, root: Path, iterations: int) -> float:
    """Wall seconds of one tiny condition trained from scratch (its own store, pre-training included)."""
    store = root / f"run-{time.monotonic_ns()}"
    command = [
        sys.executable,
        "-m",
        "src.train",
        f"paths.data_dir={root / 'data'}",
        "synthetic=tiny",
        "frames.max_train_frames_per_video=4",
        "model=resnet_18",
        f"training.iterations={iterations}",
        "training.evaluations=2",
        "pretraining.iterations=4",
        "pretraining.frames_per_video=4",
        f"paths.models_dir={store / 'models'}",
        f"mlflow.tracking_uri=sqlite:///{store / 'mlflow.db'}",
        f"mlflow.artifact_location={store / 'artifacts'}",
        f"pipeline.dir={store / 'pipeline'}",
        f"hydra.run.dir={store / 'hydra'}",
        "labelled_frames=2",
    ]
    start = time.perf_counter()
    subprocess.run(
        command,
        cwd=REPO,
        env=environment(setting),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    shutil.rmtree(store, ignore_errors=True)
    return seconds


def tiny_cohort(root: Path) -> None:
    """The tiny test cohorts, generated and prepared under ``root`` (as tests/conftest.py does)."""
    code = (
        "import sys; from pathlib import Path; from tests.conftest import tiny_project; "
        "tiny_project(Path(sys.argv[1]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(root)], cwd=REPO, check=True, capture_output=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="processes per setting")
    parser.add_argument(
        "--steps", type=int, default=10, help="timed training iterations per process"
    )
    parser.add_argument("--images", type=int, default=30, help="timed batch-1 forwards per process")
    parser.add_argument(
        "--condition",
        action="store_true",
        help="also time a whole src.train condition of the tiny cohort",
    )
    parser.add_argument(
        "--iterations", type=int, default=30, help="training iterations of that condition"
    )
    parser.add_argument(
        "--attribute", action="store_true", help="also time each pinning variable alone"
    )
    parser.add_argument("--child-step", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_step:
        child_step(args.steps, args.images)
        return

    from src import CLASSES, PINNED

    settings = ["native", "portable", "off", *(PINNED if args.attribute else [])]
    steps: dict[str, list[dict]] = {s: [] for s in settings}
    conditions: dict[str, list[float]] = {s: [] for s in settings[:3]}
    root = Path(tempfile.mkdtemp(prefix="bench-repro-"))
    if args.condition:
        tiny_cohort(root)
    try:
        for repeat in range(args.repeats):
            order = settings[repeat % 3 :] + settings[: repeat % 3]
            for setting in order:
                steps[setting].append(run_step(setting, args.steps, args.images))
                print(f"[{repeat + 1}/{args.repeats}] {setting}: {steps[setting][-1]}", flush=True)
            if args.condition:
                for setting in conditions:
                    conditions[setting].append(run_condition(setting, root, args.iterations))
                    print(
                        f"[{repeat + 1}/{args.repeats}] {setting} condition: "
                        f"{conditions[setting][-1]:.1f} s",
                        flush=True,
                    )
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def best(setting: str, phase: str) -> list[float]:
        """Each process's fastest iteration (or image), seconds."""
        return [r[phase]["best_s"] for r in steps[setting]]

    labels = {
        "native": "native (the default)",
        "portable": "portable (`CPU_NUMERICS=portable`)",
        "off": "off (`CPU_NUMERICS=off`)",
    }
    rows = [
        "| setting | training s/iteration: fastest | cost | median of processes | cost | paired cost "
        "| evaluation s/image: fastest | cost | median of processes | cost | paired cost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for setting in settings:
        label = labels.get(setting, f"`{setting}={CLASSES['avx2'].get(setting, '')}` alone")
        cells = []
        for phase in ("train", "eval"):
            mine, free = best(setting, phase), best("off", phase)
            paired = statistics.median(a / b for a, b in zip(mine, free, strict=True))
            cells += [
                f"{min(mine):.3f} | {min(mine) / min(free):.2f}x",
                f"{statistics.median(mine):.3f} | "
                f"{statistics.median(mine) / statistics.median(free):.2f}x",
                f"{paired:.2f}x",
            ]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    lines = [
        "# Cost of reproducible CPU numerics",
        "",
        f"`python -m benchmarks.reproducibility {' '.join(sys.argv[1:])}`".replace(" `", "`"),
        "",
        f"CPU: {cpu_name()}, {os.cpu_count()} cores, {THREADS} torch threads; Python "
        f"{platform.python_version()}. Training: DeepLabCut's resnet_18 pose model, a batch of 8 images of "
        f"200 x 160 px, forward, backward and AdamW update, {args.steps} iterations timed one by one after a "
        f"warm-up; evaluation: {args.images} single images forward. {args.repeats} fresh processes per "
        "setting, the settings alternating. Of each process its fastest iteration (image) counts: the "
        "table shows the fastest of all processes, the median of the processes, and the median ratio to "
        "the `off` process run next to it (paired cost). cost = time relative to off (1.00x: none).",
        "",
        f"Load average before: {LOAD_BEFORE[0]:.2f} {LOAD_BEFORE[1]:.2f} {LOAD_BEFORE[2]:.2f}. Other jobs "
        "slow whole processes several-fold: the fastest figures are the least disturbed.",
        "",
        *rows,
    ]
    if args.condition:
        medians = {s: statistics.median(v) for s, v in conditions.items()}
        lines += [
            "",
            f"A whole `src.train` condition of the tiny test cohort ({args.iterations} iterations, "
            "pre-training included), wall time: "
            + ", ".join(
                f"{s} {m:.1f} s ({m / medians['off']:.2f}x; runs {fmt(conditions[s])})"
                for s, m in medians.items()
            )
            + ".",
        ]
    lines += [
        "",
        "Each process (training fastest / median s per iteration; evaluation fastest / median s per image):",
        "",
        *(
            f"- {s} (ATen {steps[s][0]['aten']}): "
            + "; ".join(
                f"{r['train']['best_s']:.3f} / {r['train']['median_s']:.3f}, "
                f"{r['eval']['best_s']:.4f} / {r['eval']['median_s']:.4f}"
                for r in steps[s]
            )
            for s in settings
        ),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = REPO / "benchmarks" / "results" / "reproducibility.md"
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")


def fmt(values: list[float], digits: int = 1) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def cpu_name() -> str:
    for line in (
        Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    ):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
