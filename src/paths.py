"""Where the DVC pipeline's stages keep their outputs (``pipeline.dir``) and read the prepared data.

With ``split=kfold`` every fold has folders of its own: ``fold_<k>/`` inside the prepared folder,
``models/fold_<k>/frames_<n>`` and ``evaluation/fold_<k>/frames_<n>`` under ``pipeline.dir``; a
single split keeps the flat layout.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

KFOLD = (
    "kfold"  # split.kind of a cross-validation (src.data.split.KFOLD; not imported: no pandas here)
)


def fold_of(cfg: DictConfig) -> int | None:
    """The fold a run is (``split.fold`` of ``split=kfold``), None for a single split."""
    split = cfg.get("split") or {}
    return int(split["fold"]) if split.get("kind") == KFOLD else None


def cell_dir(labelled_frames: int, fold: int | None = None) -> str:
    """The folder of one condition (of one fold) under ``models/`` and ``evaluation/``."""
    return f"frames_{labelled_frames}" if fold is None else f"fold_{fold}/frames_{labelled_frames}"


def prepared_dir(cfg: DictConfig) -> Path:
    """The prepared folder of ``cfg.data`` a condition trains on: that of its fold under kfold."""
    root = Path(str(cfg.paths.prepared_dir)) / str(cfg.data.name)
    fold = fold_of(cfg)
    return root if fold is None else root / f"fold_{fold}"


def pipeline_model_dir(cfg: DictConfig) -> Path:
    """Where the DVC train stage saves the model of condition ``cfg.labelled_frames`` (and its MLflow run id)."""
    return Path(cfg.pipeline.dir) / "models" / cell_dir(int(cfg.labelled_frames), fold_of(cfg))


def pipeline_evaluation_dir(
    cfg: DictConfig, labelled_frames: int | None = None, fold: int | None = None
) -> Path:
    """Where the DVC evaluate stage writes ``metrics.json`` of a condition (of ``fold``, default: the
    run's own under kfold)."""
    n_frames = cfg.labelled_frames if labelled_frames is None else labelled_frames
    fold = fold_of(cfg) if fold is None else fold
    return Path(cfg.pipeline.dir) / "evaluation" / cell_dir(int(n_frames), fold)
