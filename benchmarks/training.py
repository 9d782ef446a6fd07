"""Overhead of src.train over plain DeepLabCut, and the cost of a p-cutoff re-evaluation.

    .venv/bin/python -m benchmarks.training --frames 2 --iterations 60 --repeats 3

Needs the prepared default cohort (``dvc repro`` or ``python -m src.prepare``) and the pre-trained
model (made on first use). Each timing is a whole process, import of DeepLabCut included:

* ``src.train`` for one condition with ``retrain=true`` (build the project, train, evaluate train /
  test / generalisation frames, log everything to MLflow);
* ``benchmarks/plain_deeplabcut.py`` on the same project, indices, settings and initial weights
  (create_training_dataset, train_network, evaluate_network);
* ``src.train`` again with other p-cutoffs, which finds the stored model and only evaluates.

Prints medians and ratios and writes benchmarks/results/training.md.
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks import REPO, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frames", type=int, default=2, help="labelled frames per video of the condition"
    )
    parser.add_argument(
        "--iterations", type=int, default=60, help="training iterations (weight updates)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="resnet_18")
    args = parser.parse_args()

    store = Path(tempfile.mkdtemp(prefix="bench-training-"))
    overrides = [
        f"labelled_frames={args.frames}",
        f"model={args.model}",
        f"training.iterations={args.iterations}",
        f"paths.models_dir={store / 'models'}",
        f"mlflow.tracking_uri=sqlite:///{store / 'mlflow.db'}",
        f"mlflow.artifact_location={store / 'artifacts'}",
    ]
    ours = [sys.executable, "-m", "src.train", *overrides]
    # The pre-trained model is shared with the repository's models/ so it is not re-made here.
    pretrained = REPO / "models" / "pretrained"
    (store / "models").mkdir(parents=True)
    if pretrained.exists():
        (store / "models" / "pretrained").symlink_to(pretrained)

    subprocess.run(
        [*ours, "retrain=true"], cwd=REPO, check=True, capture_output=True
    )  # warm-up, and the project to copy
    (work,) = (store / "models" / "synthetic_clinical").glob(f"frames{args.frames}-*")
    project = work / "project"
    pose_config = next(project.glob("dlc-models-pytorch/**/train/pytorch_config.yaml"))
    documentation = next(project.glob("training-datasets/**/Documentation_*shuffle1.pickle"))
    _, train_indices, test_indices, _ = pickle.loads(documentation.read_bytes())

    import yaml

    from src.engine.pytorch import (
        read_pose_config,  # DeepLabCut's reader: YAML 1.1 reads 1e-05 as a string
    )

    pose = read_pose_config(pose_config)
    settings = {
        "train_indices": [int(i) for i in train_indices],
        "test_indices": [int(i) for i in test_indices],
        "net_type": pose["net_type"],
        "weight_init": pose["train_settings"]["weight_init"],
        "pytorch_cfg_updates": {
            "model": pose["model"],
            "data.train": pose["data"]["train"],
            "runner": pose["runner"],
            "train_settings.epochs": pose["train_settings"]["epochs"],
            "train_settings.batch_size": pose["train_settings"]["batch_size"],
            "train_settings.display_iters": pose["train_settings"]["display_iters"],
            "device": "cpu",
        },
    }
    plain_project = store / "plain"
    shutil.copytree(project, plain_project, symlinks=True)
    config = yaml.safe_load((plain_project / "config.yaml").read_text())
    config["project_path"] = str(plain_project)
    (plain_project / "config.yaml").write_text(yaml.safe_dump(config))
    (store / "settings.json").write_text(json.dumps(settings))
    plain = [
        sys.executable,
        "-m",
        "benchmarks.plain_deeplabcut",
        str(plain_project / "config.yaml"),
        str(store / "settings.json"),
    ]

    times = {
        "src.train (train + evaluate)": [],
        "plain DeepLabCut (train + evaluate)": [],
        "src.train cutoff re-evaluation": [],
    }
    for repeat in range(args.repeats):  # interleaved, so drifts of the machine hit both alike
        times["src.train (train + evaluate)"].append(timed([*ours, "retrain=true"]))
        times["plain DeepLabCut (train + evaluate)"].append(timed(plain))
        times["src.train cutoff re-evaluation"].append(
            timed([*ours, f"evaluation.pcutoffs=[0.{5 + repeat}]"])
        )
    medians = {name: statistics.median(values) for name, values in times.items()}
    overhead = (
        medians["src.train (train + evaluate)"] / medians["plain DeepLabCut (train + evaluate)"] - 1
    )
    share = medians["src.train cutoff re-evaluation"] / medians["src.train (train + evaluate)"]

    lines = [
        "# Training benchmark",
        "",
        f"Command: `.venv/bin/python -m benchmarks.training --frames {args.frames} --iterations {args.iterations} "
        f"--repeats {args.repeats} --model {args.model}`  ",
        f"Condition: {args.frames} labelled frames per video of the default cohort, "
        f"{settings['pytorch_cfg_updates']['train_settings.epochs']} epochs "
        f"({len(settings['train_indices'])} training images, {args.iterations} iterations); "
        "whole processes, imports included.",
        "",
        "| what | median (s) | runs (s) |",
        "|---|---|---|",
        *[
            f"| {name} | {medians[name]:.1f} | {', '.join(f'{v:.1f}' for v in values)} |"
            for name, values in times.items()
        ],
        "",
        f"- Overhead of src.train over plain DeepLabCut: **{overhead:+.1%}** (aim: at most +5 %).",
        f"- A p-cutoff re-evaluation costs **{share:.1%}** of a training run (aim: under 5 %).",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    out = REPO / "benchmarks" / "results" / "training.md"
    out.write_text(report)
    shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
