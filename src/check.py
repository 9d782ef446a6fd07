"""Check the whole study in seconds, before anything expensive runs: the data loads, it has
participants enough for the split, the conditions are ones it can serve, condition 0's plan, the
initial weights, the disk, and the tracking server's login when the store is one. Reads conf/ and the
study (conf/study/current.yaml) and the data set;
writes <pipeline.dir>/check/plan.yaml. The first stage of dvc.yaml.

Examples:
    python -m src.check                                  # the current study
    python -m src.check split=frames                     # would a frame split run on this data?
    python -m src.check 'pipeline.conditions=[0,2,6]'    # can the data serve these conditions?

The cohort stage (and so pre-training) depends on its output, so a study that cannot run stops here
with one line naming the key or file and the fix (:func:`src.study.check.check_study`). plan.yaml holds
the conditions, condition 0's plan and what the study does not need (nothing that changes between
runs, so an unchanged plan does not re-run the stages after it).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf import DictConfig

from src.cli import stage
from src.errors import exit_on_data_error
from src.files import atomic_directory
from src.study.check import check_study
from src.tracking.credentials import check_access
from src.tracking.store import tracking_uri


@stage
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        check_access(
            tracking_uri(cfg.mlflow.tracking_uri), cfg.mlflow.experiment
        )  # login, permission
        plan = check_study(cfg)
        folder = Path(cfg.pipeline.dir) / "check"
        with atomic_directory(folder, key="pipeline.dir") as staging:
            (staging / "plan.yaml").write_text(
                yaml.safe_dump(plan.record(), sort_keys=False, allow_unicode=True),
                encoding="utf-8",
            )
    print(f"study plan: {folder / 'plan.yaml'}", flush=True)


if __name__ == "__main__":
    main()
