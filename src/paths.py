"""Where the DVC pipeline's stages keep their outputs (``pipeline.dir``)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig


def pipeline_model_dir(cfg: DictConfig) -> Path:
    """Where the DVC train stage saves the model of condition ``cfg.labelled_frames`` (and its MLflow run id)."""
    return Path(cfg.pipeline.dir) / "models" / f"frames_{cfg.labelled_frames}"


def pipeline_evaluation_dir(cfg: DictConfig, labelled_frames: int | None = None) -> Path:
    """Where the DVC evaluate stage writes ``metrics.json`` of a condition."""
    n_frames = cfg.labelled_frames if labelled_frames is None else labelled_frames
    return Path(cfg.pipeline.dir) / "evaluation" / f"frames_{n_frames}"
