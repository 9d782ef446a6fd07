"""Pipeline stage: pre-train the initial model on the healthy-adult cohort (weights=healthy_adults).

It stands in for the paper's MPII human model: trained once per model, training profile and data,
and reused while those are unchanged (src/training/pretraining.py). ``src.train`` runs it too when
the model is missing, saying so. Writes ``<paths.models_dir>/pretrained/<data>-<model>-<key>/``
(``pytorch_config.yaml``, ``snapshot.pt``, ``pretrained.yaml``), after preparing the cohort's
frames into ``<paths.prepared_dir>/<pretraining.data.name>/``, and links that folder's files into
``<pipeline.dir>/pretrained/``, the DVC stage's output, whose hash tells DVC when the conditions
must be trained again.

    python -m src.pretrain                            # both (pre-trains only when missing)
    python -m src.pretrain +pretraining_step=prepare  # the frames only: prepare_pretraining stage
    python -m src.pretrain +pretraining_step=train    # from frames prepared before: pretrain stage

The DVC pipeline runs the two steps as two stages, so each declares exactly what it writes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.data.preparation import prepare
from src.engine import pytorch as engine
from src.errors import DataError, exit_on_data_error
from src.files import atomic_directory
from src.training.pretraining import ensure_pretrained, pretraining_config, pretraining_data

log = logging.getLogger(__name__)

STEPS = ("all", "prepare", "train")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        step = cfg.get("pretraining_step", "all")
        if step not in STEPS:
            raise DataError(f"pretraining_step={step!r} is unknown; use one of {', '.join(STEPS)}.")
        if step == "prepare":
            print(f"prepared frames for pre-training: {prepare(pretraining_config(cfg))}")
            return
        engine.set_threads(int(cfg.training.threads))
        prepared = pretraining_data(pretraining_config(cfg)) if step == "train" else None
        folder = ensure_pretrained(cfg, announce=False, prepared_dir=prepared)
    with atomic_directory(Path(cfg.pipeline.dir) / "pretrained") as staging:
        for path in folder.iterdir():
            os.link(path, staging / path.name)  # a second name for the same bytes: no copy
    print(f"pre-trained model: {folder} (linked as {Path(cfg.pipeline.dir) / 'pretrained'})")


if __name__ == "__main__":
    main()
