"""Train and evaluate labelled-frames conditions, each in an MLflow run. Reads the prepared frames
(python -m src.prepare) and the initial weights; writes each model's snapshots under paths.models_dir
and logs its metrics, errors and model to the MLflow store (mlflow.tracking_uri). A model already
trained with the same configuration and data is reused, not trained again.

Examples:
    python -m src.train labelled_frames=6            # one condition
    python -m src.train +sweep=frames                # the study's conditions (pipeline.conditions)
    python -m src.train +sweep=cutoff                # re-evaluate the trained models at other p-cutoffs

One MLflow run per condition (named ``frames=<n>``, nested under the sweep's run). A model already
trained with the same configuration and data (same ``model_key`` tag) is reused, not trained again;
condition 0 evaluates the initial model itself, on the bodyparts it shares with the data, or is skipped
with its reason when they share none. ``+sweep=frames`` sweeps ``pipeline.conditions``: ``auto`` is the
paper's 0, 1, 2, 6, 10, 15, 20 that the prepared data can serve, plus the most it can serve (resolved
by the resolvers of ``src.study.plan``, registered before Hydra composes). Before training, a quick
check: the initial weights' file and room on disk for the snapshots. With ``weights=healthy_adults`` and no pre-trained
model for this configuration yet, it first pre-trains one (as ``python -m src.pretrain`` does) and
says so in one line, with about how long that takes. In the DVC pipeline (dvc.yaml) this module is
the train stage (``evaluate=false``) and ``python -m src.evaluate`` the evaluate stage, which logs
into the same run; the prepare_pretraining and pretrain stages made the initial model before.
"""

from __future__ import annotations

import logging

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.cli import stage
from src.errors import exit_on_data_error
from src.study.check import check_study
from src.study.plan import register_resolvers
from src.training.condition import train

log = logging.getLogger(__name__)


@stage
def main(cfg: DictConfig) -> dict[str, float]:
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        # exceptions go to Hydra, which reports the failed job and goes on with the others
        check_study(cfg, cheap=True, conditions=_conditions_left(cfg))
        return train(cfg)
    with exit_on_data_error():
        check_study(cfg, cheap=True)
        return train(cfg)


def _conditions_left(cfg: DictConfig) -> list[int]:
    """In a sweep's job: its condition and those of the jobs after it (what is still to train)."""
    hydra_cfg = HydraConfig.get()
    try:
        swept = [int(n) for n in str(hydra_cfg.sweeper.params["labelled_frames"]).split(",")]
        return swept[int(hydra_cfg.job.num) :] or [int(cfg.labelled_frames)]
    except Exception:  # an estimate for the disk check only: this job's condition will do
        return [int(cfg.labelled_frames)]


if __name__ == "__main__":
    # a sweep its data cannot serve: one line, not a traceback
    register_resolvers(one_line_errors=True)
    main()
