"""The reference for benchmarks/training.py: one condition as a hand-run DeepLabCut notebook would do it.

    python -m benchmarks.plain_deeplabcut <project>/config.yaml <settings.json>

settings.json holds ``train_indices``, ``test_indices``, ``net_type``, ``pytorch_cfg_updates`` and
``weight_init``. Only DeepLabCut's API: create the training set, train, evaluate (p-cutoff 0.8).
"""

import json
import shutil
import sys
from pathlib import Path

import deeplabcut

import src  # noqa: F401  the same pinned CPU numerics as src.train (src/__init__.py)

config, settings = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
for folder in ("training-datasets", "dlc-models-pytorch", "evaluation-results-pytorch"):
    shutil.rmtree(config.parent / folder, ignore_errors=True)
deeplabcut.create_training_dataset(
    str(config),
    Shuffles=[1],
    trainIndices=[settings["train_indices"]],
    testIndices=[settings["test_indices"]],
    net_type=settings["net_type"],
    engine=deeplabcut.Engine.PYTORCH,
    userfeedback=False,
)
updates = dict(
    settings["pytorch_cfg_updates"], **{"train_settings.weight_init": settings["weight_init"]}
)
deeplabcut.train_network(str(config), shuffle=1, pytorch_cfg_updates=updates)
deeplabcut.evaluate_network(str(config), Shuffles=[1], pcutoff=0.8)
