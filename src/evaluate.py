"""Errors of a model on labelled frames, the paper's way and DeepLabCut's way.

MAE is the mean Euclidean distance between predicted and labelled points over every labelled point
of every frame of a set (the paper's "MAE", DeepLabCut's "rmse"). With a p-cutoff, only points
predicted with likelihood >= the cutoff count, and the share of points kept is reported beside it.
Sets: ``train`` and ``test`` (development participants) and ``generalisation`` (held-out participants).

``evaluate_model`` evaluates a model on a condition's frames inside an MLflow run (``src.train`` calls it
after training). Run as ``python -m src.evaluate labelled_frames=<n>`` it is the DVC pipeline's evaluate
stage: it evaluates the model the train stage saved, in that training's MLflow run, and writes
``<pipeline.dir>/evaluation/frames_<n>/metrics.json``. A condition 0 the train stage skipped (the
initial model shares no bodypart with the data, or has no pose heads) gets a metrics.json holding
``"skipped": "<reason>"`` and no metrics, so the rest of the pipeline runs.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.errors import exit_on_data_error
from src.evaluation.condition import evaluate_saved_model


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        evaluate_saved_model(cfg)


if __name__ == "__main__":
    main()
