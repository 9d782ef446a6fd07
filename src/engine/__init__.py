"""Everything that calls DeepLabCut: the engines, chosen by the config group ``engine``, and their registry.

- :mod:`src.engine.pytorch`: DeepLabCut 3's PyTorch engine (``engine=pytorch``, the default);
- :mod:`src.engine.tensorflow`: DeepLabCut 2.x's TensorFlow engine (``engine=tensorflow``).

Each engine module provides the whole engine contract, :class:`src.engine.contract.Engine`: build the
training set (``prepare_training``), train with resume (``train``, ``resume_point``, ``snapshots``),
initial weights (``weight_init``, ``fresh_weight_init``, ``snapshot_model``, ``snapshot_bodyparts``,
``pretrained_model``), save and load a model (``save_model``, ``load_model``), predict frames
(``predict``) and videos (``video_inference_runner``, ``video_inference``, ``predictions_table``),
read a snapshot (``snapshot_bodyparts``, ``snapshot_metadata``) and write a DeepLabCut project
(``write_dlc_project``). The stages ask this registry for an engine: :func:`for_config` (a
training), :func:`for_model` (a model they hold), :func:`module` (by name). Nothing outside this
package imports an engine module, DeepLabCut, TensorFlow or torch: ``make lint`` checks it
(import-linter, pyproject.toml). The one exception is the registered model's pyfunc
(src/tracking/pose_pyfunc.py), which MLflow loads without this project and so calls DeepLabCut
itself. Which engine made a file is guessed here only (:func:`engine_of`).
:mod:`src.engine.shared` holds what the engines share; :mod:`src.engine.progress` their progress
bars; neither is an engine.

A third engine, ``engine=<name>``:

1. ``src/engine/<name>.py``: a module providing every member of :class:`~src.engine.contract.Engine`
   (``NAME = "<name>"``; ``POSE_CONFIG``, ``POSE_CONFIG_KEY`` and ``MODEL_FILE``, by which
   :func:`engine_of` knows its files; the functions, with the same parameters; optionally
   ``PREDICTION_BATCH``, the images per forward pass of ``predict``, 1 when absent, which keys the
   cached predictions);
   :mod:`src.engine.shared` has the DeepLabCut project writing both engines use. An operation it
   cannot offer raises a DataError saying so (as ``tensorflow.write_dlc_project``).
2. ``conf/engine/<name>.yaml``: ``name: <name>`` and its comments (what models it makes).

The registry finds the module by its name (every module of this package but :data:`HELPERS`);
tests/engine/test_contract.py then checks it against the contract like the other two. DVC: the
stages that run an engine depend on the folder src/engine, so the new file is a dependency as it is.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pandas as pd

DEFAULT = "pytorch"
HELPERS = ("contract", "progress", "shared")  # modules of this package that are not engines
ENGINES = tuple(
    sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in HELPERS)
)  # pytorch, tensorflow: src/engine/<name>.py, conf/engine/<name>.yaml


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
        return engine_of(pose_config=self.pose_config)


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

        raise DataError(f"engine.name={name!r} is unknown; use engine={' | '.join(ENGINES)}.")
    return name


def module(name: str) -> ModuleType:
    """The engine module ``name`` (src/engine/<name>.py), imported when first asked for.

    tests/pipeline/test_dvc_dependencies.py counts every module of this package as run by whoever imports
    it (the registry may import any engine)."""
    if name not in ENGINES:
        raise ValueError(f"no engine {name!r}; the engines: {', '.join(ENGINES)}")
    return importlib.import_module(f"{__name__}.{name}")


def for_config(cfg) -> ModuleType:
    """The engine module of a configuration (config group ``engine``)."""
    return module(engine_name(cfg))


def for_model(model: Model) -> ModuleType:
    """The engine module a model was made by."""
    return module(model.engine)


def engine_of(
    *,
    pose_config: Path | None = None,
    model_folder: Path | None = None,
    config: dict | None = None,
) -> str:
    """The engine that made a file, guessed in this one place from what its files are called: a
    pose config's file name (each engine's ``POSE_CONFIG``), a model folder holding an engine's
    ``MODEL_FILE``, or a pose config read as a dict (it holds a key only that engine's pose
    configs hold, ``POSE_CONFIG_KEY``). The engines other than the default are asked first; the
    default (pytorch) is the answer when none claims it."""
    for name in (*(n for n in ENGINES if n != DEFAULT), DEFAULT):
        engine = module(name)
        if (
            (pose_config is not None and Path(pose_config).name == engine.POSE_CONFIG)
            or (model_folder is not None and (Path(model_folder) / engine.MODEL_FILE).is_file())
            or (config is not None and engine.POSE_CONFIG_KEY in config)
        ):
            return name
    return DEFAULT


def load_model(folder: Path) -> Model:
    """A model folder written by an engine's ``save_model`` (or an MLflow run's ``model/``)."""
    return module(engine_of(model_folder=folder)).load_model(folder)


def save_model(model: Model, folder: Path) -> Path:
    return for_model(model).save_model(model, folder)


def set_threads(threads: int) -> None:
    """CPU threads of every engine in this process (0: their defaults); see each engine's set_threads."""
    for name in ENGINES:
        module(name).set_threads(threads)


# Video analysis with a model of either engine (src/analysis): dispatched on what the model made.
def video_inference_runner(model: Model, snapshot: str, batch_size: int, device: str):
    return for_model(model).video_inference_runner(model, snapshot, batch_size, device)


def video_inference(runner, video: Path) -> list[dict]:
    """By the runner's ``engine`` (the default engine's runner, DeepLabCut's own, names none)."""
    name = getattr(runner, "engine", DEFAULT)
    return module(name if name in ENGINES else DEFAULT).video_inference(runner, video)


def predictions_table(predictions, scorer: str, pose_config: dict, folder: Path, prefix: str):
    return module(engine_of(config=pose_config)).predictions_table(
        predictions, scorer, pose_config, folder, prefix
    )


def filter_predictions(table: pd.DataFrame, filter_cfg) -> pd.DataFrame:
    return module(DEFAULT).filter_predictions(table, filter_cfg)


def read_pose_config(path: Path) -> dict:
    return module(engine_of(pose_config=path)).read_pose_config(path)


# why: one keyword per field of DeepLabCut's project config.yaml, each independent
def write_labelling_config(
    project_dir: Path,
    *,
    project_path: Path,
    task: str,
    scorer: str,
    bodyparts: list[str],
    skeleton: list[list[str]],
    video_sets: dict[str, dict],
) -> Path:
    """DeepLabCut's project config.yaml for labelling frames (the same for every engine: the
    default engine's)."""
    return module(DEFAULT).write_labelling_config(
        project_dir,
        project_path=project_path,
        task=task,
        scorer=scorer,
        bodyparts=bodyparts,
        skeleton=skeleton,
        video_sets=video_sets,
    )
