"""Pre-train the initial model on the healthy-adult cohort (weights=healthy_adults), once per model,
training profile and data. Reads the healthy-adult cohort (python -m src.cohort); writes
<paths.models_dir>/pretrained/<data>-<model>-<key>/ and links it into <pipeline.dir>/pretrained/.
Two stages of the DVC pipeline; src.train runs it too when the model is missing.

Examples:
    python -m src.pretrain                            # both (pre-trains only when missing)
    python -m src.pretrain +pretraining_step=prepare  # the frames only: prepare_pretraining stage
    python -m src.pretrain +pretraining_step=train    # from frames prepared before: pretrain stage

It stands in for the paper's MPII human model and is reused while the model, training profile and
data are unchanged (src/training/pretraining.py); ``src.train`` says so when it runs it. The folder
holds ``pytorch_config.yaml``, ``snapshot.pt`` and ``pretrained.yaml``; the cohort's frames are first
prepared into ``<paths.prepared_dir>/<pretraining.data.name>/``. The hash of
``<pipeline.dir>/pretrained/``, the DVC stage's output, tells DVC when the conditions must be trained
again.

The DVC pipeline runs the two steps as two stages, so each declares exactly what it writes. When the
study starts from other weights (``weights.kind`` is not ``pretrained``), nothing is pre-trained: both
steps write a placeholder (``NOT_NEEDED.txt``, one line saying why) where DVC expects their output, say
so in one line, and are done in seconds.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import DictConfig

from src import engine
from src.cli import stage
from src.data.preparation import prepare
from src.errors import DataError, exit_on_data_error
from src.files import atomic_directory
from src.study.needs import pretraining_not_needed, write_placeholder
from src.training.pretraining import ensure_pretrained, pretraining_config, pretraining_data

log = logging.getLogger(__name__)

STEPS = ("all", "prepare", "train")


@stage
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        step = cfg.get("pretraining_step", "all")
        if step not in STEPS:
            raise DataError(f"pretraining_step={step!r} is unknown; use one of {', '.join(STEPS)}.")
        reason = pretraining_not_needed(cfg)
        if reason is not None:
            return not_needed(cfg, step, reason)
        if step == "prepare":
            print(f"prepared frames for pre-training: {prepare(pretraining_config(cfg))}")
            return
        engine.for_config(cfg).set_threads(int(cfg.training.threads))
        prepared = pretraining_data(pretraining_config(cfg)) if step == "train" else None
        folder = ensure_pretrained(cfg, announce=False, prepared_dir=prepared)
    with atomic_directory(Path(cfg.pipeline.dir) / "pretrained") as staging:
        for path in folder.iterdir():
            os.link(path, staging / path.name)  # a second name for the same bytes: no copy
    print(f"pre-trained model: {folder} (linked as {Path(cfg.pipeline.dir) / 'pretrained'})")


def not_needed(cfg: DictConfig, step: str, reason: str) -> None:
    """Placeholders where the step's DVC stage expects its output; one line saying why."""
    outputs = {
        "prepare": [(pretraining_data(pretraining_config(cfg)), "paths.prepared_dir")],
        "train": [(Path(cfg.pipeline.dir) / "pretrained", "pipeline.dir")],
    }
    outputs["all"] = outputs["prepare"] + outputs["train"]
    for folder, key in outputs[step]:
        write_placeholder(folder, reason, key)
    print(
        f"pre-training skipped: {reason}; placeholder(s): "
        + ", ".join(str(folder) for folder, _ in outputs[step]),
        flush=True,
    )


if __name__ == "__main__":
    main()
