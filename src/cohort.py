"""Pipeline stage: generate the embedded synthetic cohorts (``python -m src.cohort``)."""

from __future__ import annotations

import logging
import time

import hydra
from omegaconf import DictConfig

from src.checks import check_config
from src.errors import exit_on_data_error
from src.synthetic.cohort import generate_all

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    start = time.perf_counter()
    with exit_on_data_error():
        check_config(cfg, "synthetic")
        generate_all(cfg.synthetic)
    print(f"synthetic cohorts ready in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
