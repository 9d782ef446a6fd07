"""The results table of a study: MAE per condition and set with 95 % intervals, per-participant errors,
the frames-to-label answer and the plots. Reads the study's runs from the MLflow store
(mlflow.tracking_uri); writes reports/results.md, results.csv and *.png (report.dir), attaches them to
the sweep's MLflow run and registers the trained models (report.register).

Examples:
    python -m src.report                              # the latest sweep of the current data set
    python -m src.report report.sweep=<run id>        # one sweep's parent run
    python -m src.report report.pcutoff=0.6           # the p-cutoff columns at another cutoff
"""

from __future__ import annotations

import logging
import os

from omegaconf import DictConfig

from src.checks import check_config
from src.cli import stage
from src.errors import exit_on_data_error
from src.evaluation.report import report
from src.tracking.registry import register_study

log = logging.getLogger(__name__)


@stage
def main(cfg: DictConfig) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with exit_on_data_error():
        check_config(cfg, "report")
        out_dir = report(cfg)
        print(
            f"results table: {out_dir / 'results.md'} (unrounded: {out_dir / 'results.csv'}); "
            "also attached to the sweep's MLflow parent run under report/"
        )
        registered = register_study(cfg)  # report.register: which model is the champion
        if registered is not None:
            print(
                f"registered model: models:/{registered.name}@champion = version "
                f"{registered.champion_version} ({registered.champion_frames} labelled frames: "
                f"{registered.reason}); each condition: models:/{registered.name}@frames-<n>"
            )
        print("compare the runs in the MLflow UI: make ui   (then open http://127.0.0.1:5000)")


if __name__ == "__main__":
    main()
