"""The engine contract: what every engine module provides (src/engine/pytorch.py, tensorflow.py).

An engine is a module of this package whose module-level names satisfy :class:`Engine` (a module is
a structural implementation of a Protocol). The stages reach it through the registry
(:mod:`src.engine`: ``for_config``, ``for_model``, ``module``), never by importing it; the
conformance test tests/engine/test_contract.py checks every engine against this class: each member
present, each function with the same parameters (names, kinds, defaults).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # for the annotations only
    import numpy as np
    import pandas as pd

    from src.engine import Model, TrainingFrames


@runtime_checkable
class Engine(Protocol):
    """Everything an engine provides. ``TrainingSet`` is the engine's own record of a training
    set (a DeepLabCut project with one shuffle): ``project_config``, ``model_folder``,
    ``n_train``, ``n_test``; it is passed back to the engine, never read by the stages beyond that."""

    NAME: str  # engine=<NAME>: conf/engine/<NAME>.yaml, src/engine/<NAME>.py
    POSE_CONFIG: str  # the file name of its models' pose config (Model.pose_config)
    MODEL_FILE: str  # the file by which a model folder written by save_model is known as its own
    POSE_CONFIG_KEY: str  # a key of its pose configs read as a dict, which other engines' lack
    TIMING_PROBE: bool  # whether timing_probe measures its updates (else it returns None)
    TrainingSet: type
    HubWeightsUnavailable: type  # a DataError: weights=hub cannot reach DeepLabCut's backbone

    # --- the training set
    def prepare_training(
        self,
        frames: TrainingFrames,
        project_dir: Path,
        model_cfg,
        training_cfg,
        reuse: bool = False,
    ) -> tuple[Any, dict, dict]:
        """The training set of ``frames`` in ``project_dir`` (``reuse``: the complete one already
        there, if any), its pose config with the updates of ``model_cfg`` and ``training_cfg``
        applied, and those updates."""

    # --- training, with resume
    def train(
        self, training_set, updates: dict, weight_init: dict | None, resume_from: Path | None = None
    ) -> None:
        """Train; snapshots land in the training set's model folder. ``resume_from``: a snapshot of
        this training (:meth:`resume_point`) to go on from, up to the same budget."""

    def resume_point(self, model_folder: Path) -> Path | None:
        """The newest snapshot of an interrupted training that can be resumed from, else None."""

    def resume_progress(self, snapshot: Path, updates: dict) -> str:
        """How far a resumed training had come, for the message."""

    def snapshots(self, model_folder: Path) -> dict[str, Path]:
        """{'best': ..., 'last': ...} snapshots of a trained model folder."""

    def snapshot_epoch(self, snapshot: Path) -> int:
        """The epoch (PyTorch) or iteration (TensorFlow) a snapshot was saved at."""

    def budget(self, updates: dict) -> dict:
        """The derived training budget, logged as MLflow params."""

    def weight_updates(self, iterations: int, batch_size: int, n_train: int) -> int:
        """Weight updates a training of ``training.iterations`` runs on ``n_train`` images (the
        time estimate, src/study/estimate.py)."""

    def learning_stats_file(self, training_set) -> Path:
        """The learning-statistics file a training writes (streamed to MLflow while it trains)."""

    # --- initial weights
    def weight_init(self, snapshot: Path, conversion: list[int] | None) -> dict:
        """Start from a snapshot; ``conversion`` maps our bodyparts to its heads (None: backbone)."""

    def fresh_weight_init(self, kind: str, pose_config: dict, path: Path, seed: int) -> dict | None:
        """Start without a trained pose model: ``random`` (seeded, saved at ``path``) or ``hub``."""

    def snapshot_model(self, snapshot: Path) -> Model:
        """A snapshot of this engine (``weights=snapshot weights.path=...``) as a model."""

    def snapshot_bodyparts(self, snapshot: Path) -> list[str]:
        """The bodyparts a snapshot predicts, read from its files without the engine's libraries
        (the check and prepare stages train nothing); a DataError naming weights.path if missing."""

    def own_training_images(self, model: Model) -> set[str] | None:
        """The frames a user's snapshot was trained on, when its files say (else None)."""

    def save_pretrained(self, training_set, snapshot: Path, folder: Path) -> None:
        """The pre-trained initial model's files in ``folder``."""

    def pretrained_model(self, folder: Path, bodyparts: list[str]) -> Model:
        """The model :meth:`save_pretrained` wrote."""

    # --- models
    def save_model(self, model: Model, folder: Path) -> Path:
        """``model`` as a model folder (the MLflow run's ``model/``); returns the folder."""

    def load_model(self, folder: Path) -> Model:
        """A model folder written by :meth:`save_model`."""

    def read_pose_config(self, path: Path) -> dict:
        """A pose config file of this engine as a dict."""

    def snapshot_metadata(self, snapshot: Path) -> dict:
        """What DeepLabCut saved with a snapshot (``epoch``, ``metrics``); {} when nothing."""

    def save_weights_only(self, snapshot: Path, path: Path) -> Path:
        """A snapshot without its optimizer state: enough to reload the model and predict."""

    # --- predicting frames and videos
    def set_threads(self, threads: int) -> None:
        """The engine's CPU threads in this process (0: its default)."""

    def predict(
        self, pose_config: Path | dict, snapshot: Path, images: list[Path], device: str = "cpu"
    ) -> np.ndarray:
        """Predictions on image files: (n_images, n_bodyparts, 3) of x, y, likelihood. An engine that
        predicts several images per forward pass names the count ``PREDICTION_BATCH`` (a module
        constant; part of the predictions cache's key)."""

    def video_inference_runner(self, model: Model, snapshot: str, batch_size: int, device: str):
        """What :meth:`video_inference` predicts videos with (``snapshot``: last | best)."""

    def video_inference(self, runner, video: Path) -> list[dict]:
        """Predictions on every frame of a video."""

    def predictions_table(
        self, predictions: list[dict], scorer: str, pose_config: dict, folder: Path, prefix: str
    ) -> pd.DataFrame:
        """DeepLabCut's predictions table (and its .h5 and .csv files in ``folder``)."""

    def filter_predictions(self, table: pd.DataFrame, filter_cfg) -> pd.DataFrame:
        """DeepLabCut's filters (``analysis.filter``) on a predictions table."""

    # --- the time estimate (src/study/estimate.py)
    def auto_device(self) -> str:
        """The device ``training.device=auto`` trains on (cuda when there is one, else cpu)."""

    def timing_probe(self, request: dict) -> dict | None:
        """In a process of its own: the fastest seconds per update and per predicted image of the
        study's model (``per_update_s``, ``per_image_s``, ``imported_at``); None: no probe."""

    # --- DeepLabCut projects: to label frames in, to take a model home
    # why: one keyword per field of DeepLabCut's project config.yaml, each independent
    def write_labelling_config(
        self,
        project_dir: Path,
        *,
        project_path: Path,
        task: str,
        scorer: str,
        bodyparts: list[str],
        skeleton: list[list[str]],
        video_sets: dict[str, dict],
    ) -> Path:
        """DeepLabCut's project config.yaml in ``project_dir`` for labelling its labeled-data/
        (``project_path``: where the project will lie); returns its path."""

    def write_dlc_project(
        self,
        folder: Path,
        final: Path,
        model: Model,
        project_config: Path,
        snapshot: str,
        batch_size: int,
    ) -> dict:
        """A DeepLabCut project of ``model`` in ``folder`` (to be renamed ``final``) that
        DeepLabCut's own tools open (``python -m src.export``); returns its config.yaml as a dict.
        An engine that cannot write one raises a DataError saying so."""


def members() -> dict[str, Any]:
    """The contract's members: {name: the Protocol's function, or None for a data member}."""
    names = [n for n in Engine.__annotations__] + [
        n for n, v in vars(Engine).items() if callable(v) and not n.startswith("_")
    ]
    return {n: (vars(Engine).get(n) if callable(vars(Engine).get(n)) else None) for n in names}
