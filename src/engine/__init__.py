"""Everything that calls DeepLabCut, one module per engine, chosen by the config group ``engine``.

- :mod:`src.engine.pytorch`: DeepLabCut 3's PyTorch engine (``engine=pytorch``, the default);
- :mod:`src.engine.tensorflow`: DeepLabCut 2.x's TensorFlow engine (``engine=tensorflow``).

Each module offers the same operations: build the training set (``prepare_training``), train or resume
(``train``, ``resume_point``, ``snapshots``), initial weights (``weight_init``, ``fresh_weight_init``,
``pretrained_model``, ``save_pretrained``, ``snapshot_model``), predict frames (``predict``), predict
videos (``video_inference_runner``, ``video_inference``, ``predictions_table``), save and load a model
(``save_model``, ``load_model``). The stages ask :func:`for_config` (a training) or :func:`for_model`
(a model they hold) for the module and never import DeepLabCut or an engine module themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pandas as pd

ENGINES = ("pytorch", "tensorflow")
DEFAULT = "pytorch"


@dataclass
class Model:
    """What is needed to predict: DeepLabCut's pose config and snapshots (``last``, and ``best`` if kept).

    PyTorch: ``pytorch_config.yaml`` and ``.pt`` files; TensorFlow: ``pose_cfg.yaml`` and checkpoint
    prefixes ``snapshot-<iteration>``. The engine follows from the pose config's name.
    """

    pose_config: Path
    snapshots: dict[str, Path]
    bodyparts: list[str]

    def snapshot(self, which: str) -> Path:
        """The ``which`` (last | best) snapshot; the last when no best was kept (the last epoch was the best)."""
        return self.snapshots.get(which, self.snapshots["last"])

    @property
    def engine(self) -> str:
        return "tensorflow" if Path(self.pose_config).name == "pose_cfg.yaml" else "pytorch"


@dataclass
class TrainingFrames:
    """The frames a model is trained on: rows of a prepared folder (``python -m src.prepare``).

    Rows of ``selection`` whose ``role`` is ``test`` become DeepLabCut's test split, all others
    its train split.
    """

    prepared_dir: Path  # the prepared folder: its images, dataset.yaml, selection.csv, labels.csv
    facts: dict  # its dataset.yaml: name, scorer, bodyparts, skeleton
    selection: pd.DataFrame  # the frames to train on (rows of selection.csv, with their role)
    labels: pd.DataFrame  # labels.csv (at least the labels of the selected frames)


def engine_name(cfg) -> str:
    """``cfg.engine.name`` (pytorch when the config has no ``engine``), checked."""
    engine = cfg.get("engine") if cfg is not None else None
    name = str(engine.get("name", DEFAULT)) if engine is not None else DEFAULT
    if name not in ENGINES:
        from src.errors import DataError

        raise DataError(f"engine.name={name!r} is unknown; use engine=pytorch | tensorflow.")
    return name


def module(name: str) -> ModuleType:
    """The engine module ``name`` (imported here, so that the import is visible to whoever follows
    them: tests/test_dvc_dependencies.py)."""
    if name == "tensorflow":
        from src.engine import tensorflow

        return tensorflow
    from src.engine import pytorch

    return pytorch


def for_config(cfg) -> ModuleType:
    """The engine module of a configuration (config group ``engine``)."""
    return module(engine_name(cfg))


def for_model(model: Model) -> ModuleType:
    """The engine module a model was made by."""
    return module(model.engine)


def load_model(folder: Path) -> Model:
    """A model folder written by an engine's ``save_model`` (or an MLflow run's ``model/``)."""
    name = "tensorflow" if (Path(folder) / "tensorflow_model.yaml").is_file() else "pytorch"
    return module(name).load_model(folder)


def save_model(model: Model, folder: Path) -> Path:
    return for_model(model).save_model(model, folder)


def set_threads(threads: int) -> None:
    """CPU threads of both engines in this process (0: their defaults); see each engine's set_threads."""
    for name in ENGINES:
        module(name).set_threads(threads)


# Video analysis with a model of either engine (src/analysis): dispatched on what the model made.
def video_inference_runner(model: Model, snapshot: str, batch_size: int, device: str):
    return for_model(model).video_inference_runner(model, snapshot, batch_size, device)


def video_inference(runner, video: Path) -> list[dict]:
    return module(getattr(runner, "engine", DEFAULT)).video_inference(runner, video)


def predictions_table(predictions, scorer: str, pose_config: dict, folder: Path, prefix: str):
    name = "tensorflow" if "all_joints_names" in pose_config else DEFAULT
    return module(name).predictions_table(predictions, scorer, pose_config, folder, prefix)


def filter_predictions(table: pd.DataFrame, filter_cfg) -> pd.DataFrame:
    return module(DEFAULT).filter_predictions(table, filter_cfg)


def read_pose_config(path: Path) -> dict:
    return module(
        "tensorflow" if Path(path).name == "pose_cfg.yaml" else "pytorch"
    ).read_pose_config(path)
