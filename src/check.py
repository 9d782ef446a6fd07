"""Pipeline stage: check the whole study before anything expensive runs (``python -m src.check``).

The first stage of dvc.yaml: the cohort stage (and so pre-training) depends on its output, so a study
that cannot run (data that does not load, too few participants for the split, conditions the data
cannot serve, a missing snapshot, a full disk) stops here in seconds, with one line naming the key or
file and the fix (:func:`src.study.check.check_study`). Writes ``<pipeline.dir>/check/plan.yaml``: the
conditions, condition 0's plan and what the study does not need (nothing that changes between runs,
so an unchanged plan does not re-run the stages after it).
"""

from __future__ import annotations

from pathlib import Path

import hydra
import yaml
from omegaconf import DictConfig

from src.errors import exit_on_data_error
from src.files import atomic_directory
from src.study.check import check_study


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
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
