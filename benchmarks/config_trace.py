"""How far the configuration travels: one condition trained from ``src/train.py:main``, call by call.

    flock /tmp/cpu-heavy.lock .venv/bin/python -m benchmarks.config_trace --work /tmp/config-trace \\
        --baseline 23fc97d

Trains condition 2 of the tiny cohort (pre-trained weights, evaluation included, as a study cell
runs) under ``sys.setprofile`` and records every call from one ``src`` module to a function of
``src`` that receives the configuration (an OmegaConf ``DictConfig``/``ListConfig``: the whole
config or one of its groups). With ``--baseline REV`` it does the same in an export of that
commit (``git archive``), with this script, so both trees are traced the same way.

Writes benchmarks/results/config_trace.md: first one line per figure of this tree, ``name: value``,
then the table of both trees. Figures:

* ``config_calls``: calls within ``src`` that carry the configuration;
* ``config_moves``: those from one module to another;
* ``config_climbs``: moves up the layers of pyproject.toml's import contract (from ``training`` to
  ``train``, from ``study`` to ``evaluation``, ...), the layers of this tree applied to both;
* ``config_returns``: moves into a module the configuration had already been in and left;
* ``config_modules``: distinct modules it reaches;
* ``study_plan_entries``: moves into ``src.study.plan``.

A typed object built from the configuration (a dataclass of settings) is not counted: the figures
measure how far the configuration itself is handed around.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results" / "config_trace.md"
TINY = [
    "synthetic=tiny",
    "frames.max_train_frames_per_video=4",
    "model=resnet_18",
    "training.iterations=6",
    "training.evaluations=2",
    "pretraining.iterations=4",
    "pretraining.frames_per_video=4",
]
FIGURES = (
    "config_calls",
    "config_moves",
    "config_climbs",
    "config_returns",
    "config_modules",
    "study_plan_entries",
)


def layers() -> dict[str, int]:
    """``src`` package or module -> its layer (0 = the entry points, top) from pyproject.toml."""
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layered,) = [c for c in contracts["contracts"] if c["id"] == "layers"]
    rank = {}
    for index, layer in enumerate(layered["layers"]):
        for name in layer.replace("|", ":").split(":"):
            rank[f"src.{name.strip()}"] = index
    return rank


def layer_of(module: str, rank: dict[str, int]) -> int | None:
    parts = module.split(".")
    return rank.get(".".join(parts[:2]))


def trace_training(tree: Path, overrides: list[str], events_file: Path) -> None:
    """In this process (started by ``--child``): run ``src.train`` of ``tree`` under a profiler."""
    import atexit
    import runpy

    from omegaconf import DictConfig, ListConfig

    src_dir = str(tree / "src") + os.sep
    events: list[tuple[str, str, str]] = []  # (caller module, callee module, callee function)

    def module_of(filename: str) -> str:
        return ".".join(Path(filename[len(str(tree)) + 1 :]).with_suffix("").parts)

    def carries_config(frame) -> bool:
        code = frame.f_code
        n_args = code.co_argcount + code.co_kwonlyargcount
        n_args += bool(code.co_flags & 0x04) + bool(code.co_flags & 0x08)  # *args, **kwargs
        for name in code.co_varnames[:n_args]:
            value = frame.f_locals.get(name)
            if isinstance(value, (DictConfig, ListConfig)):
                return True
            if isinstance(value, (tuple, list)) and any(
                isinstance(v, (DictConfig, ListConfig)) for v in value[:8]
            ):
                return True
        return False

    def profile(frame, event, arg):
        if event != "call" or not frame.f_code.co_filename.startswith(src_dir):
            return
        if frame.f_code.co_flags & 0x2A0:  # generator, coroutine, async generator: resumptions
            return
        if not carries_config(frame):
            return
        caller = frame.f_back
        while caller is not None and not caller.f_code.co_filename.startswith(src_dir):
            caller = caller.f_back  # through Hydra, functools, ... to the module that called
        events.append(
            (
                module_of(caller.f_code.co_filename) if caller else "",
                module_of(frame.f_code.co_filename),
                frame.f_code.co_name,
            )
        )

    atexit.register(lambda: events_file.write_text(json.dumps(events)))
    sys.argv = [str(tree / "src" / "train.py"), *overrides]
    sys.path.insert(0, str(tree))
    os.chdir(tree)
    sys.setprofile(profile)
    try:
        runpy.run_module("src.train", run_name="__main__", alter_sys=True)
    finally:
        sys.setprofile(None)


def figures(events: list[list[str]], rank: dict[str, int]) -> dict[str, int]:
    """The figures of one trace (see the module docstring)."""
    moves = [(a, b) for a, b, _ in events[1:] if a != b]  # events[0]: the entry, src.cli -> main
    visited: set[str] = {events[0][1]} if events else set()
    climbs = returns = 0
    for caller, callee in moves:
        up, down = layer_of(callee, rank), layer_of(caller, rank)
        climbs += up is not None and down is not None and up < down
        returns += callee in visited
        visited.add(callee)
    return {
        "config_calls": len(events),
        "config_moves": len(moves),
        "config_climbs": climbs,
        "config_returns": returns,
        "config_modules": len({m for _, m, _ in events}),
        "study_plan_entries": sum(b == "src.study.plan" for _, b in moves),
    }


def run(tree: Path, work: Path, *command: str) -> None:
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True)
    if done.returncode:
        sys.exit(
            f"{' '.join(command[:4])} failed in {tree}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )


def trace_tree(tree: Path, work: Path, reuse: bool) -> list[list[str]]:
    """Generate and prepare the tiny cohort with ``tree``'s commands, then trace its training."""
    events_file = work / "events.json"
    if reuse and events_file.is_file():
        return json.loads(events_file.read_text())
    work.mkdir(parents=True, exist_ok=True)
    overrides = [
        *TINY,
        f"paths.data_dir={work / 'data'}",
        f"paths.models_dir={work / 'models'}",
        f"mlflow.tracking_uri=sqlite:///{work / 'mlruns.db'}",
        f"mlflow.artifact_location={work / 'artifacts'}",
    ]
    python = sys.executable
    for stage in ("src.cohort", "src.prepare"):
        run(tree, work, python, "-m", stage, *overrides)
    for step in ("prepare", "train"):
        run(tree, work, python, "-m", "src.pretrain", *overrides, f"+pretraining_step={step}")
    run(tree, work, python, str(HERE), "--child", str(tree), str(events_file), "--",
        *overrides, "labelled_frames=2")  # fmt: skip
    return json.loads(events_file.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/config-trace"))
    parser.add_argument("--baseline", help="a commit to trace the same way, e.g. 23fc97d")
    parser.add_argument(
        "--reuse", action="store_true", help="figures from the last traces in --work"
    )
    parser.add_argument("--child", nargs=2, metavar=("TREE", "EVENTS"), help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        # run as a script: its folder (benchmarks/, where coverage.py is a benchmark) off the path
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE.parent]
        trace_training(Path(args.child[0]), [a for a in rest if a != "--"], Path(args.child[1]))
        return
    rank = layers()
    trees = {"this tree": REPO}
    if args.baseline:
        exported = args.work / f"tree-{args.baseline}"
        if not exported.is_dir():
            exported.mkdir(parents=True)
            archive = subprocess.run(
                ["git", "archive", args.baseline], cwd=REPO, capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(exported)], input=archive, check=True)
        trees[args.baseline] = exported
    results = {
        name: figures(trace_tree(tree, args.work / name.replace(" ", "-"), args.reuse), rank)
        for name, tree in trees.items()
    }
    lines = [f"{name}: {results['this tree'][name]}" for name in FIGURES]
    command = f"python -m benchmarks.config_trace {' '.join(sys.argv[1:])}"
    lines += ["", "# How far the configuration travels", "", f"`{command}`", ""]
    lines += ["| figure | " + " | ".join(results) + " |", "|---|" + "---:|" * len(results)]
    lines += [f"| {f} | " + " | ".join(str(r[f]) for r in results.values()) + " |" for f in FIGURES]
    lines += [
        "",
        "Condition 2 of the tiny cohort (`synthetic=tiny`, 6 updates, evaluation included), traced "
        "from `python -m src.train`; the layers of pyproject.toml's import contract are applied to "
        "every tree.",
    ]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
