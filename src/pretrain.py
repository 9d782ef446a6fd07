"""Pipeline stage: pre-train the initial model on the healthy-adult cohort (``weights=healthy_adults``).

It stands in for the paper's MPII human model: trained once per model, training profile and data,
and reused while those are unchanged. ``src.train`` calls it when the model is missing. Writes
``<paths.models_dir>/pretrained/<data>-<model>-<key>/`` with ``pytorch_config.yaml``, ``snapshot.pt``
and ``pretrained.yaml`` (bodyparts, key, MLflow run). Run as ``python -m src.pretrain`` (the DVC
pipeline's pretrain stage) it also links that folder's files into ``<pipeline.dir>/pretrained/``, the
stage's output, whose hash tells DVC when the conditions must be trained again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.engine import pytorch as engine
from src.errors import exit_on_data_error
from src.files import atomic_directory
from src.training.pretraining import ensure_pretrained

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    engine.set_threads(int(cfg.training.threads))
    with exit_on_data_error():
        folder = ensure_pretrained(cfg)
    with atomic_directory(Path(cfg.pipeline.dir) / "pretrained") as staging:
        for path in folder.iterdir():
            os.link(
                path, staging / path.name
            )  # a second name for the same bytes: no copy of the weights
    print(f"pre-trained model: {folder} (linked as {Path(cfg.pipeline.dir) / 'pretrained'})")


if __name__ == "__main__":
    main()
