"""Analyse videos with a trained model: DeepLabCut's predictions, result movies, joint-angle time
series and movement features. Reads the videos (analysis.videos, only read) and a model from MLflow (a
run, or the best run of a condition); writes under <analysis.output_dir>/<model run id>/<video name>/
and logs a new MLflow run.

Examples:
    # the best run of a condition
    python -m src.analyze analysis.labelled_frames=20 'analysis.videos=[/path/to/videos]'
    # one model run
    python -m src.analyze analysis.run_id=<MLflow run id> 'analysis.videos=[a.mp4,b.mp4]'
    # synthetic: angle errors
    python -m src.analyze analysis.labelled_frames=20 analysis.compare_ground_truth=true

What it writes and logs: src/analysis/run.py. The work is done in src/analysis: ``run`` (the
steps and the MLflow run), ``model_choice``, ``videos``, ``per_video``, ``movies``, ``features``,
``trust`` (a trust value per point, flags, summary, timeline and the flagged frames as a labelling
folder; analysis.trust) and ``ground_truth``.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from src.analysis.run import analyze
from src.cli import stage
from src.errors import exit_on_data_error

log = logging.getLogger(__name__)


@stage
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        analyze(cfg)


if __name__ == "__main__":
    main()
