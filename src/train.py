"""Main entry point: train and evaluate one labelled-frames condition, tracked in MLflow.

    python -m src.train labelled_frames=6            # one condition
    python -m src.train +sweep=frames                # the paper's conditions 0, 1, 2, 6, 10, 15, 20
    python -m src.train +sweep=cutoff                # re-evaluate the trained models at other p-cutoffs

One MLflow run per condition (named ``frames=<n>``, nested under the sweep's run). A model already
trained with the same configuration and data (same ``model_key`` tag) is reused, not trained again;
condition 0 evaluates the initial model itself. With ``weights=healthy_adults`` and no pre-trained
model for this configuration yet, it first pre-trains one (as ``python -m src.pretrain`` does) and
says so in one line, with about how long that takes. In the DVC pipeline (dvc.yaml) this module is
the train stage (``evaluate=false``) and ``python -m src.evaluate`` the evaluate stage, which logs
into the same run; the prepare_pretraining and pretrain stages made the initial model before.
"""

from __future__ import annotations

import logging

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.errors import exit_on_data_error
from src.training.condition import train

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> dict[str, float]:
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        # exceptions go to Hydra, which reports the failed job and goes on with the others
        return train(cfg)
    with exit_on_data_error():
        return train(cfg)


if __name__ == "__main__":
    main()
