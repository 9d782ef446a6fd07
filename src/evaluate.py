"""Evaluate a trained condition: MAE on the train, test and generalisation frames, with and without
p-cutoffs, per participant and bodypart. Reads the model the train stage saved under pipeline.dir and
the prepared frames; logs into that training's MLflow run and writes
<pipeline.dir>/evaluation/frames_<n>/metrics.json. With +cells=pipeline, every cell of
pipeline.cells (params.yaml) one after the other: the DVC pipeline's evaluate stage.

Examples:
    python -m src.evaluate labelled_frames=6
    python -m src.evaluate labelled_frames=6 split=kfold split.fold=2
    python -m src.evaluate --config-dir . --config-name params +cells=pipeline

MAE is the mean Euclidean distance between predicted and labelled points over every labelled point
of every frame of a set (the paper's "MAE", DeepLabCut's "rmse"). With a p-cutoff, only points
predicted with likelihood >= the cutoff count, and the share of points kept is reported beside it.
Sets: ``train`` and ``test`` (development participants) and ``generalisation`` (held-out participants).

``evaluate_model`` evaluates a model on a condition's frames inside an MLflow run (``src.train`` calls it
after training). A condition 0 the train stage skipped (the
initial model shares no bodypart with the data, or has no pose heads) gets a metrics.json holding
``"skipped": "<reason>"`` and no metrics, so the rest of the pipeline runs.
"""

from __future__ import annotations

from omegaconf import DictConfig

from src.cli import stage
from src.errors import DataError, exit_on_data_error
from src.evaluation.condition import evaluate_pipeline_cells, evaluate_saved_model


@stage
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        cells = cfg.get("cells")
        if cells == "pipeline":
            evaluate_pipeline_cells(cfg)
        elif cells is None:
            evaluate_saved_model(cfg)
        else:
            raise DataError(
                f"cells={cells}: unknown; +cells=pipeline evaluates every cell of pipeline.cells, "
                "without it one condition (labelled_frames=N)"
            )


if __name__ == "__main__":
    main()
