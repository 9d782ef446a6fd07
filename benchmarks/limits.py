"""Each speed figure of the product against its limit on this machine.

    .venv/bin/python -m benchmarks.limits --quick     # the first three figures, a few minutes
    .venv/bin/python -m benchmarks.limits --full      # also a fresh clone's demo, about half an hour
    .venv/bin/python -m benchmarks.limits --cv        # only the 5-fold study of all seven conditions,
                                                      # in a fresh clone of its own, an hour or more

Writes benchmarks/results/limits.md: first one line per figure, ``name: value``, then the table (figure,
value, goal, what it divides, which run measured it), each run's profile of ``dvc repro`` and the runs'
conditions (command, date, CPU, instruction-set class, threads, load average, repeats). A run replaces the
figures it measures and keeps the others, so ``--cv`` adds its figure to the last ``--full`` run's; the
record behind the file is ``benchmarks/results/limits.json``. The machine must be quiet: it refuses to
start when the 1-minute load average is above ``--max-load`` (``--force`` measures anyway, and the file
says so).

Figures:

* ``training_vs_limit``: the raw update of the same network (the trained model's pytorch_config.yaml),
  batch size, input size and threads, *without* CPU pins (``CPU_NUMERICS=off``), divided by our time per
  update in a real training with the default settings. Our time per update is the marginal cost of a
  ``src.training.condition.train`` call at two budgets (``--updates``, e.g. 60 and 240; the difference
  removes the fixed costs of building the project and evaluating) of the 20-frame condition of the
  default cohort from random weights. Goal >= 0.85.
* ``analysis_vs_limit``: frames/s of our video tracking (``src.analysis.per_video.track_video``: decoding,
  DeepLabCut's inference and its H5 writer; no movie or features) on one cohort video, divided by the
  unpinned raw forward's frames/s at the same batch size and input size. Goal >= 0.90.
* ``cutoff_reevaluation_share``: a re-evaluation of the finished condition at a new p-cutoff (the same
  ``train`` call with ``evaluate_only=true``, in the process that trained it, as ``+sweep=cutoff`` runs)
  as a share of the ``train`` call that trained and evaluated it. Goal <= 0.02.
* ``side_by_side_gain`` (``--quick``, not a goal but a lever): whether training cells side by side at
  one thread each would beat one cell at a time on every thread. The raw update (as above, with the
  default CPU pins our trainings run under) of ``--threads`` processes at one thread each, started
  together, against one process at ``--threads`` threads: updates per second of all of them over
  those of the one. Above 1 it would pay (the thread count is part of a run's numerics, so it would
  change every number); at or below 1 the cores are better spent on one cell.
* ``demo_minutes`` (``--full``): a fresh clone's ``make demo``, set-up included. Goal <= 15.
* ``study_update_share`` (``--full``): the share of that clone's ``dvc repro`` spent in weight updates:
  the seconds of every training's update loop (its last progress line; DeepLabCut's evaluations
  between epochs included) over the repro's wall time. The file adds the repro's profile: its wall
  time per kind of stage (check, cohort, ..., train, evaluate, report), from each stage's start line.
  Goal >= 0.80.
* ``estimate_vs_repro`` (``--full``): the time ``python -m src.params`` estimated for that clone's study
  (its ``estimate:`` line, probe included, as a fresh clone's ``make demo`` prints it) over the wall time of
  its ``dvc repro``. Goal: within a factor 1.5 either way.
* ``cv_study_minutes`` (``--cv``): the 5-fold study of all seven conditions of the embedded cohort,
  ``dvc repro`` from a fresh clone (after ``make setup`` and ``python -m src.params split=kfold``) to the
  report; the file adds its profile. Goal <= 60.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import REPO

GOALS = {  # name: (goal, "min" | "max" | "factor" | "lever")
    "training_vs_limit": (0.85, "min"),
    "analysis_vs_limit": (0.90, "min"),
    "cutoff_reevaluation_share": (0.02, "max"),
    "side_by_side_gain": (1.0, "lever"),  # above 1: cells side by side at one thread would pay
    "study_update_share": (0.80, "min"),
    "demo_minutes": (15.0, "max"),
    "estimate_vs_repro": (1.5, "factor"),  # within a factor 1.5 either way
    "cv_study_minutes": (60.0, "max"),
}
CONDITION = 20  # labelled frames per video of the timed condition (the demo's largest)
INPUT = (160, 200)  # height, width of the default cohort's frames
NUMERICS_VARIABLES = ("CPU_NUMERICS", "CPU_REPRODUCIBLE", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")
NUMERICS_VARIABLES += ("ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA")


def clean_env(**variables: str) -> dict[str, str]:
    """This environment without any CPU pin of the caller's, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if k not in NUMERICS_VARIABLES}
    return (
        env
        | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
        | variables
    )


def run_children(mode: str, *args: str, env: dict[str, str], copies: int = 1) -> list[dict]:
    """``copies`` processes of ``python -m benchmarks.limits --child <mode> <args>`` at once; each
    one's last stdout line is JSON."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.limits", "--child", mode, *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(copies)
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"benchmark child {mode} failed:\n{stderr[-3000:]}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


def run_child(mode: str, *args: str, env: dict[str, str]) -> dict:
    return run_children(mode, *args, env=env)[0]


# --- children: each runs in a fresh process so that the CPU pins of its environment apply ---


def child_study(root: Path, data: Path, updates: list[int], threads: int, batch_size: int) -> dict:
    """In-process: train the condition at each budget, re-evaluate the last at a new p-cutoff, track a
    video with it. Times each call."""
    from hydra import compose, initialize_config_dir

    import src
    from src.analysis.per_video import Tracker, track_video
    from src.analysis.videos import read_video_info
    from src.engine import pytorch as engine
    from src.training.condition import train

    base = [
        f"paths.data_dir={data}",
        f"paths.models_dir={root / 'models'}",
        f"mlflow.tracking_uri=sqlite:///{root / 'mlruns' / 'mlflow.db'}",
        f"mlflow.artifact_location={root / 'mlruns' / 'artifacts'}",
        f"pipeline.dir={root / 'pipeline'}",
        "weights=random",
        f"labelled_frames={CONDITION}",
        f"training.threads={threads}",
        f"training.batch_size={batch_size}",
    ]

    def config(*overrides: str):
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            return compose(config_name="config", overrides=[*base, *overrides])

    trainings = {}
    for n in updates:
        start = time.perf_counter()
        train(config(f"training.iterations={n}"))
        trainings[n] = time.perf_counter() - start
    start = time.perf_counter()
    train(
        config(
            f"training.iterations={updates[-1]}", "evaluate_only=true", "evaluation.pcutoffs=[0.55]"
        )
    )
    reevaluation = time.perf_counter() - start

    (model_folder,) = (root / "models" / "synthetic_clinical").glob(
        f"frames{CONDITION}-*{_key_of(root, updates[-1])}*/model"
    )
    model = engine.load_model(model_folder)
    video = read_video_info(sorted((data / "synthetic" / "clinical" / "videos").glob("*.mp4"))[0])
    pose_config = engine.read_pose_config(model.pose_config)
    rates = []
    for repeat in range(3):
        out = root / f"analysis-{repeat}"
        out.mkdir()
        runner = engine.video_inference_runner(model, "last", batch_size, "cpu")
        _, frames_per_s = track_video(Tracker(runner, pose_config, "DLC_bench"), video, out)
        rates.append(frames_per_s)
    return {
        "trainings_s": trainings,
        "reevaluation_s": reevaluation,
        "analysis_frames_per_s": statistics.median(rates),
        "analysis_runs": rates,
        "pose_config": str(model.pose_config),
        "numerics_class": src.numerics_class(),
    }


def _key_of(root: Path, updates: int) -> str:
    """The model key of the finished run trained with ``updates`` (from the MLflow store)."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("synthetic_clinical")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"params.`training.iterations` = '{updates}' and attributes.status = 'FINISHED'",
    )
    return runs[0].data.tags["model_key"]


def child_raw(
    pose_config: Path, threads: int, batch_size: int, steps: int, start_at: float = 0.0
) -> dict:
    """The network alone: forward + backward + AdamW on a random batch, and forward alone (no grad).
    The timed work starts at wall-clock time ``start_at``, so that children side by side overlap."""
    import torch
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    import src
    from src.engine import pytorch as engine

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = PoseModel.build(engine.read_pose_config(pose_config)["model"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    batch = torch.randn(batch_size, 3, *INPUT)
    time.sleep(max(0.0, start_at - time.time()))

    def update() -> None:
        optimizer.zero_grad()
        outputs = model(batch)
        loss = sum((t**2).mean() for head in outputs.values() for t in head.values())
        loss.backward()
        optimizer.step()

    def median_s(work) -> float:
        work()  # warm-up: oneDNN generates its kernels on first use
        walls = []
        for _ in range(steps):
            start = time.perf_counter()
            work()
            walls.append(time.perf_counter() - start)
        return statistics.median(walls)

    update_s = median_s(update)
    model.eval()
    with torch.no_grad():
        forward_s = median_s(lambda: model(batch))
    return {
        "update_s": update_s,
        "forward_frames_per_s": batch_size / forward_s,
        "numerics_class": src.numerics_class(),
    }


# --- the parent ---


def quick(root: Path, args: argparse.Namespace) -> tuple[dict, dict]:
    """The first three figures; returns (figures, details)."""
    env = clean_env()
    data = args.data or root / "data"
    print(f"generating and preparing the default cohort in {data} (not timed) ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "src.cohort", f"paths.data_dir={data}", "weights=random"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "-m", "src.prepare", f"paths.data_dir={data}", "weights=random"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    print(f"training the {CONDITION}-frame condition at {args.updates} updates ...", flush=True)
    study = run_child(
        "study",
        str(root),
        str(data),
        ",".join(map(str, args.updates)),
        str(args.threads),
        str(args.batch_size),
        env=env,
    )
    low, high = args.updates[0], args.updates[-1]
    trainings = {int(k): v for k, v in study["trainings_s"].items()}
    ours_update_s = (trainings[high] - trainings[low]) / (high - low)
    raws = []
    for repeat in range(args.repeats):
        print(f"raw network, unpinned, {repeat + 1} of {args.repeats} ...", flush=True)
        raws.append(
            run_child(
                "raw",
                study["pose_config"],
                str(args.threads),
                str(args.batch_size),
                str(args.steps),
                env=clean_env(CPU_NUMERICS="off"),
            )
        )
    raw_update_s = statistics.median(r["update_s"] for r in raws)
    raw_frames_per_s = statistics.median(r["forward_frames_per_s"] for r in raws)
    gain, gain_detail = side_by_side(study["pose_config"], args)
    figures = {
        "training_vs_limit": raw_update_s / ours_update_s,
        "analysis_vs_limit": study["analysis_frames_per_s"] / raw_frames_per_s,
        "cutoff_reevaluation_share": study["reevaluation_s"] / trainings[high],
        "side_by_side_gain": gain,
    }
    details = {
        "training_vs_limit": f"raw unpinned update {raw_update_s:.3f} s / ours {ours_update_s:.3f} s "
        f"per update (train calls: {', '.join(f'{n} updates {s:.1f} s' for n, s in trainings.items())})",
        "analysis_vs_limit": f"ours {study['analysis_frames_per_s']:.1f} frames/s (runs "
        f"{', '.join(f'{r:.1f}' for r in study['analysis_runs'])}) / raw unpinned forward "
        f"{raw_frames_per_s:.1f} frames/s",
        "cutoff_reevaluation_share": f"re-evaluation {study['reevaluation_s']:.2f} s / training and "
        f"evaluation {trainings[high]:.1f} s",
        "side_by_side_gain": gain_detail,
        "_ours_update_s": ours_update_s,
        "_class": study["numerics_class"],
        "_raw": raws,
    }
    return figures, details


def side_by_side(pose_config: str, args: argparse.Namespace) -> tuple[float, str]:
    """Updates per second of ``--threads`` raw children at one thread each, side by side, over one
    child's at ``--threads`` threads, both under the default CPU pins; and the sentence saying so."""
    env, cells = clean_env(), args.threads
    together, alone = [], []
    for repeat in range(args.repeats):
        print(f"raw network, {cells} side by side at 1 thread, {repeat + 1} of {args.repeats} ...")
        start_at = str(time.time() + 20)  # after every child has imported and built its model
        sizes = (str(args.batch_size), str(args.steps))
        children = run_children("raw", pose_config, "1", *sizes, start_at, env=env, copies=cells)
        together.append(statistics.median(c["update_s"] for c in children))
        print(f"raw network, 1 at {cells} threads, {repeat + 1} of {args.repeats} ...", flush=True)
        alone.append(run_child("raw", pose_config, str(cells), *sizes, env=env))
    together_s = statistics.median(together)
    alone_s = statistics.median(c["update_s"] for c in alone)
    gain = (cells / together_s) / (1 / alone_s)
    return gain, (
        f"{cells} side by side at 1 thread: {together_s:.3f} s per update each, "
        f"{cells / together_s:.2f} updates/s in all / 1 at {cells} threads: {alone_s:.3f} s, "
        f"{1 / alone_s:.2f} updates/s (default pins, class {alone[0]['numerics_class']})"
    )


def numerics_class_of(clone: Path) -> str:
    """The CPU numerics class ``src`` pins in ``clone`` on this machine."""
    return subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", "import src; print(src.numerics_class())"],
        cwd=clone,
        env=clean_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def fresh_clone(root: Path, name: str) -> tuple[Path, dict[str, str]]:
    """A clone of this repository under ``root`` (``../shared`` beside it), and the environment its
    own ``.venv`` runs in."""
    clone = root / name
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    if (REPO.parent / "shared").exists() and not (clone.parent / "shared").exists():
        (clone.parent / "shared").symlink_to(REPO.parent / "shared")
    env = {k: v for k, v in clean_env().items() if k != "VIRTUAL_ENV"}
    env["PATH"] = f"{clone / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    return clone, env


def repro_figures(lines: list[tuple[float, str]], repro_s: float) -> tuple[list[str], str, float]:
    """A ``dvc repro``'s profile table, the sentence on its training loops and their share of it."""
    loops = training_loops(lines)
    updates, loop_s = sum(n for n, _ in loops), sum(s for _, s in loops)
    sentence = (
        f"{len(loops)} training loops, {updates} updates in {loop_s:.0f} s "
        f"({loop_s / max(updates, 1):.3f} s per update)"
    )
    return profile_table(stage_seconds(lines, repro_s), loops, repro_s), sentence, loop_s / repro_s


def full(root: Path, args: argparse.Namespace, ours_update_s: float) -> tuple[dict, dict]:
    """A fresh clone's ``make demo``, step by step."""
    clone, env = fresh_clone(root, "clone")
    python = str(clone / ".venv" / "bin" / "python")
    # make demo's steps (Makefile), each timed: set-up, params, dvc repro, screenshot
    steps = {
        "setup": ["make", "setup", "browser"],
        "params": [python, "-m", "src.params"],
        "repro": ["dvc", "repro"],
        "screenshot": [python, "-m", "tools.mlflow_screenshot", "--out", "reports/mlflow_ui.png"],
    }
    seconds, printed, repro_lines = {}, {}, []
    for name, command in steps.items():
        print(f"fresh clone ({clone}): {' '.join(command)} ...", flush=True)
        start = time.perf_counter()
        if name == "repro":  # its lines timed as they come: the profile of the study
            repro_lines = timed_lines(command, clone, env)
        else:
            done = subprocess.run(
                command,
                cwd=clone,
                env=env,
                check=name != "screenshot",
                stdout=subprocess.PIPE if name == "params" else None,
                text=True,
            )
            if done.stdout:
                print(done.stdout, end="", flush=True)
                printed[name] = done.stdout
        seconds[name] = time.perf_counter() - start
    repro_s = seconds["repro"]
    profile, loops_text, share = repro_figures(repro_lines, repro_s)
    figures = {"demo_minutes": sum(seconds.values()) / 60, "study_update_share": share}
    details = {
        "demo_minutes": "make demo's steps: "
        + ", ".join(f"{name} {s / 60:.1f} min" for name, s in seconds.items()),
        "study_update_share": f"{loops_text}; the quick phase measured {ours_update_s:.3f} s per update "
        f"/ dvc repro {repro_s:.0f} s",
        "_clone": str(clone),
        "_profile": ("the demo's `dvc repro`", profile),
    }
    line = estimate_line(printed.get("params", ""))
    estimate_s = estimated_seconds(line)
    if estimate_s is not None:
        figures["estimate_vs_repro"] = estimate_s / repro_s
        details["estimate_vs_repro"] = (
            f"src.params estimated {estimate_s / 60:.0f} min / dvc repro {repro_s / 60:.1f} min "
            f"('{line.split(' for ')[0]}', {line.rsplit(' at ', 1)[-1].split(' (')[0]})"
        )
    return figures, details


def cv_study(root: Path) -> tuple[dict, dict]:
    """The embedded cohort's 5-fold study of all seven conditions, from a fresh clone."""
    clone, env = fresh_clone(root, "cv-clone")
    print(f"fresh clone ({clone}): make setup, src.params split=kfold (not timed) ...", flush=True)
    subprocess.run(["make", "setup"], cwd=clone, env=env, check=True)
    params = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-m", "src.params", "split=kfold"],
        cwd=clone,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    print(params, end="", flush=True)
    print(f"fresh clone ({clone}): dvc repro ...", flush=True)
    start = time.perf_counter()
    lines = timed_lines(["dvc", "repro"], clone, env)
    repro_s = time.perf_counter() - start
    profile, loops_text, share = repro_figures(lines, repro_s)
    return {"cv_study_minutes": repro_s / 60}, {
        "cv_study_minutes": f"dvc repro {repro_s / 60:.1f} min after make setup and src.params "
        f"split=kfold; {loops_text}, {share:.3f} of the repro; src.params: "
        f"'{estimate_line(params).split(' for ')[0]}'",
        "_clone": str(clone),
        "_profile": ("the 5-fold study's `dvc repro`", profile),
        "_class": numerics_class_of(clone),
        "_threads": _params(clone)["training"]["threads"],
    }


def timed_lines(command: list[str], cwd: Path, env: dict[str, str]) -> list[tuple[float, str]]:
    """Run ``command``, echoing its output; each line with the seconds since the start."""
    start = time.perf_counter()
    lines = []
    with subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append((time.perf_counter() - start, line.rstrip("\n")))
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return lines


STAGE_LINE = re.compile(r"Running stage '([^']+)'")
# the last line of a training's progress (src/engine/progress.py): "train frames6: 240/240 updates [02:28<00:00, ..."
LOOP_LINE = re.compile(r"train [^:]+: (\d+)/\1 updates \[(?:(\d+):)?(\d+):(\d+)<")


def stage_seconds(lines: list[tuple[float, str]], total_s: float) -> list[tuple[str, float]]:
    """Each stage of a ``dvc repro`` and its wall seconds: from its ``Running stage`` line to the
    next one's (DVC's own work after a stage, its lock file, counts to the stage)."""
    starts = [(t, m.group(1)) for t, line in lines if (m := STAGE_LINE.search(line))]
    ends = [t for t, _ in starts[1:]] + [total_s]
    return [(name, end - t) for (t, name), end in zip(starts, ends)]


def training_loops(lines: list[tuple[float, str]]) -> list[tuple[int, float]]:
    """(updates, seconds) of each training's update loop, from its last progress line."""
    loops = []
    for _, line in lines:
        found = LOOP_LINE.search(line)
        if found:
            hours, minutes, secs = (int(x or 0) for x in found.groups()[1:])
            loops.append((int(found.group(1)), 3600 * hours + 60 * minutes + secs))
    return loops


def profile_table(
    stages: list[tuple[str, float]], loops: list[tuple[int, float]], total_s: float
) -> list[str]:
    """The repro's wall time per kind of stage (``train@6`` counts to ``train``), beside its updates."""
    kinds: dict[str, list[float]] = {}
    for name, seconds in stages:
        kinds.setdefault(name.split("@")[0], []).append(seconds)
    lines = [
        "| stage | runs | seconds | share of dvc repro | seconds per run |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, times in kinds.items():
        lines.append(
            f"| {kind} | {len(times)} | {sum(times):.0f} | {sum(times) / total_s:.3f} "
            f"| {statistics.median(times):.1f} (median) |"
        )
    loop_s = sum(s for _, s in loops)
    lines.append(
        f"| of which training loops (pretrain, train) | {len(loops)} | {loop_s:.0f} "
        f"| {loop_s / total_s:.3f} | |"
    )
    return lines


def estimate_line(printed: str) -> str:
    """The ``estimate:`` line of what ``python -m src.params`` printed ('' when there is none)."""
    return next((x for x in printed.splitlines() if x.startswith("estimate:")), "")


def estimated_seconds(line: str) -> float | None:
    """The time of src.params' ``estimate: about 22 min ...`` (or ``about 2.5 h``) line; None when
    it has none (``time unknown``)."""
    found = re.match(r"estimate: about (\d+(?:\.\d+)?) (min|h)\b", line)
    if found is None:
        return None
    return float(found.group(1)) * (60 if found.group(2) == "min" else 3600)


def _params(clone: Path) -> dict:
    import yaml

    return yaml.safe_load((clone / "params.yaml").read_text(encoding="utf-8"))


def conditions_text(
    args: argparse.Namespace, load: tuple[float, float, float], cls: str, threads: int
) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    text = (
        f"CPU: {cpu}, {os.cpu_count()} cores; CPU numerics class of our runs: {cls}; "
        f"{threads} torch threads; load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        f"{' (forced: the machine was not quiet)' if args.force and load[0] > args.max_load else ''}; "
    )
    if not args.cv:
        text += (
            f"raw limits: `CPU_NUMERICS=off`, batch size {args.batch_size}, input {INPUT[1]} x "
            f"{INPUT[0]} px, median of {args.repeats} processes x {args.steps} timed steps; "
            "analysis: median of 3 runs over one 150-frame video; "
        )
    return text + f"Python {platform.python_version()}."


def record_run(record: dict, figures: dict, details: dict, run: dict) -> dict:
    """``record`` (figures and the runs that measured them) with this run's figures in place of
    earlier ones; runs no figure refers to any more are dropped."""
    runs = record.get("runs", []) + [run | {"profile": details.get("_profile")}]
    kept = {name: entry for name, entry in record.get("figures", {}).items() if name not in figures}
    kept |= {
        name: {"value": value, "detail": details[name], "run": len(runs) - 1}
        for name, value in figures.items()
    }
    used = sorted({entry["run"] for entry in kept.values()})
    renumber = {old: new for new, old in enumerate(used)}
    return {
        "figures": {
            name: entry | {"run": renumber[entry["run"]]}
            for name in GOALS
            if (entry := kept.get(name))
        },
        "runs": [runs[old] for old in used],
    }


def render(record: dict) -> str:
    """limits.md from the record: one ``name: value`` line per figure, the table, profiles, runs."""
    figures = record["figures"]
    lines = [f"{name}: {entry['value']:.3f}" for name, entry in figures.items()]
    lines += [
        "",
        "# Speed against its limit",
        "",
        "| figure | value | goal | met | what it divides | run |",
        "|---|---:|---:|:-:|---|---:|",
    ]
    for name, entry in figures.items():
        goal, kind = GOALS[name]
        value = entry["value"]
        if kind == "factor":
            met, wanted = 1 / goal <= value <= goal, f"{1 / goal:.2f} to {goal}"
        elif kind == "lever":
            met, wanted = value > goal, f"> {goal} pays"
        else:
            met = value >= goal if kind == "min" else value <= goal
            wanted = f"{'>=' if kind == 'min' else '<='} {goal}"
        lines.append(
            f"| {name} | {value:.3f} | {wanted} | {'yes' if met else 'no'} | {entry['detail']} "
            f"| {entry['run'] + 1} |"
        )
    for number, run in enumerate(record["runs"], start=1):
        if run.get("profile"):
            title, table = run["profile"]
            lines += ["", f"## Where {title} spends its time (run {number})", "", *table]
    lines += ["", "## Runs", ""]
    for number, run in enumerate(record["runs"], start=1):
        lines.append(f"{number}. `{run['command']}`, {run['date']}: {run['conditions']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help="the first three figures (default)")
    which.add_argument("--full", action="store_true", help="also a fresh clone's make demo")
    which.add_argument(
        "--cv", action="store_true", help="only the 5-fold study, in a fresh clone of its own"
    )
    parser.add_argument(
        "--updates", type=lambda s: [int(x) for x in s.split(",")], default=[60, 240]
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads (training.threads)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="processes of the raw limits")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per raw process")
    parser.add_argument(
        "--max-load", type=float, default=0.5, help="refuse above this load average"
    )
    parser.add_argument("--force", action="store_true", help="measure even on a loaded machine")
    parser.add_argument(
        "--wait", type=int, default=180, help="seconds to wait for the load to fall"
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="paths.data_dir holding (or to hold) the default cohort; default: a temporary one",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "limits.md")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, *rest = args.child
        if mode == "study":
            result = child_study(
                Path(rest[0]),
                Path(rest[1]),
                [int(x) for x in rest[2].split(",")],
                int(rest[3]),
                int(rest[4]),
            )
        else:
            start_at = float(rest[4]) if len(rest) > 4 else 0.0
            result = child_raw(Path(rest[0]), int(rest[1]), int(rest[2]), int(rest[3]), start_at)
        print(json.dumps(result))
        return

    load = os.getloadavg()
    waited = 0
    while load[0] > args.max_load and not args.force and waited < args.wait:
        print(
            f"load average {load[0]:.2f} > {args.max_load}: waiting for a quiet machine ...",
            flush=True,
        )
        time.sleep(15)
        waited += 15
        load = os.getloadavg()
    if load[0] > args.max_load and not args.force:
        raise SystemExit(
            f"error: load average {load[0]:.2f} > --max-load {args.max_load}: the machine is not quiet, "
            "and the figures would not be its limits; stop other jobs, or --force to measure anyway"
        )
    root = Path(tempfile.mkdtemp(prefix="bench-limits-"))
    try:
        if args.cv:
            figures, details = cv_study(root)
        else:
            figures, details = quick(root, args)
        if args.full:
            more, more_details = full(root, args, details["_ours_update_s"])
            figures |= more
            details |= more_details
    finally:
        if not (args.full or args.cv):
            shutil.rmtree(root, ignore_errors=True)
    if details.get("_clone"):
        print(f"kept for its results: {details['_clone']}")
    record_path = args.out.with_suffix(".json")
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    run = {
        "command": f"python -m benchmarks.limits {' '.join(sys.argv[1:])}".strip(),
        "date": time.strftime("%Y-%m-%d"),
        "conditions": conditions_text(
            args, load, details.get("_class", "?"), details.get("_threads", args.threads)
        ),
    }
    record = record_run(record, figures, details, run)
    record_path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    text = render(record)
    print(text)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} and {record_path}")


if __name__ == "__main__":
    main()
