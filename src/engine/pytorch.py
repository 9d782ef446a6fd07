"""DeepLabCut 3 (PyTorch engine) for one training: project, training set, training, inference.

Every model is trained in a DeepLabCut project of its own, written from the prepared frames, so
that a person can open it with DeepLabCut's own tools and nothing here depends on DeepLabCut's
unseeded frame extraction or train/test split: the training set is made with explicit indices.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from src.data.prepared import largest_image_size
from src.engine import Model, TrainingFrames, progress, shared
from src.engine.shared import (  # noqa: F401  (their names here as before)
    SHUFFLE,
    TRAINING_SET_FILE,
    epochs_for,
    filter_predictions,
    save_training_set,
    write_labelling_config,
    write_project,
)
from src.errors import DataError
from src.files import clear_dead_staging, whole_writer

__all__ = ["Model", "TrainingFrames"]  # shared by the engines (src/engine/__init__.py)

NAME = "pytorch"  # engine=pytorch (conf/engine/pytorch.yaml)
POSE_CONFIG = "pytorch_config.yaml"  # a model's pose config (Model.pose_config)
MODEL_FILE = POSE_CONFIG  # in a model folder written by save_model
POSE_CONFIG_KEY = "metadata"  # a key of its pose configs (src.engine.engine_of)


@dataclass
class TrainingSet:
    """A DeepLabCut project with one shuffle whose train/test frames are the ones we chose."""

    project_config: Path  # <project>/config.yaml
    model_folder: Path  # <project>/dlc-models-pytorch/iteration-0/<task>-trainset<pct>shuffle1
    n_train: int
    n_test: int

    @property
    def pose_config(self) -> Path:
        return self.model_folder / "train" / "pytorch_config.yaml"


def save_model(model: Model, folder: Path) -> Path:
    """Write ``model`` in our model-folder layout: pytorch_config.yaml, snapshot-last.pt [, snapshot-best.pt]."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model.pose_config, folder / "pytorch_config.yaml")
    for which, snapshot in model.snapshots.items():
        save_weights_only(snapshot, folder / f"snapshot-{which}.pt")
    return folder


def load_model(folder: Path) -> Model:
    """A model folder written by :func:`save_model` (or an MLflow run's ``model/`` artifact)."""
    pose_config = Path(folder) / "pytorch_config.yaml"
    snapshots = {which: Path(folder) / f"snapshot-{which}.pt" for which in ("last", "best")}
    snapshots = {which: path for which, path in snapshots.items() if path.is_file()}
    if not pose_config.is_file() or "last" not in snapshots:
        raise DataError(
            f"{folder} holds no model (pytorch_config.yaml and snapshot-last.pt); train it again "
            "(`dvc repro` re-runs its train stage)."
        )
    return Model(
        pose_config, snapshots, list(read_pose_config(pose_config)["metadata"]["bodyparts"])
    )


def make_training_set(frames: TrainingFrames, project_dir: Path, net_type: str) -> TrainingSet:
    """Write a DeepLabCut project holding exactly the ``frames.selection`` rows and make its
    training set (test split: the rows whose ``role`` is ``test``).
    """
    import deeplabcut

    project_dir = Path(project_dir)
    train, test = write_project(frames, project_dir)
    deeplabcut.create_training_dataset(
        str(project_dir / "config.yaml"),
        Shuffles=[SHUFFLE],
        trainIndices=[train],
        testIndices=[test],
        net_type=net_type,
        engine=deeplabcut.Engine.PYTORCH,
        userfeedback=False,
    )
    (model_folder,) = (project_dir / "dlc-models-pytorch" / "iteration-0").glob(
        f"*shuffle{SHUFFLE}"
    )
    return save_training_set(
        TrainingSet(project_dir / "config.yaml", model_folder, len(train), len(test))
    )


def open_training_set(project_dir: Path) -> TrainingSet | None:
    """The complete training set an earlier (interrupted) training made in ``project_dir``, if any."""
    return shared.open_training_set(project_dir, TrainingSet)


def prepare_training(
    frames: TrainingFrames,
    project_dir: Path,
    model_cfg,
    training_cfg,
    reuse: bool = False,
) -> tuple[TrainingSet, dict, dict]:
    """make_training_set (or, with ``reuse``, the complete one already in ``project_dir``), then the
    pytorch_config updates for the model (config group ``model``) and training profile
    (``training``).

    Returns the training set, its pytorch_config with the updates applied, and the updates.
    """
    training_set = (open_training_set(project_dir) if reuse else None) or make_training_set(
        frames, project_dir, model_cfg.net_type
    )
    pose_config = read_pose_config(training_set.pose_config)
    # Frames of one project may differ in size: crop to the largest, so that no frame loses context.
    image_wh = largest_image_size(Path(frames.prepared_dir) / i for i in frames.selection["image"])
    updates = pose_config_updates(
        model_cfg, training_cfg, pose_config, image_wh, training_set.n_train
    )
    return training_set, apply_updates(pose_config, updates), updates


def pose_config_updates(
    model_cfg, training_cfg, pose_config: dict, image_wh: tuple[int, int], n_train: int
) -> dict:
    """Dotted-key updates of DeepLabCut's pytorch_config.yaml for a model and a training profile.

    The budget is given in iterations (batches), as in the paper, and turned into epochs for this
    training-set size, so every condition gets the same number of updates.
    """
    batch_size = int(training_cfg.batch_size)
    epochs = epochs_for(int(training_cfg.iterations), batch_size, n_train)
    between = max(1, math.ceil(epochs / int(training_cfg.evaluations)))
    width, height = image_wh
    updates = {
        "train_settings.batch_size": batch_size,
        "train_settings.epochs": epochs,
        "train_settings.seed": int(training_cfg.seed),
        # one log record per update, which src.engine.progress turns into the progress bar (not printed)
        "train_settings.display_iters": 1,
        # Default crops are 448 x 448 whatever the image size; crop to the image instead.
        "data.train.crop_sampling": {
            "width": width,
            "height": height,
            "max_shift": 0.1,
            "method": "hybrid",
        },
        "runner.optimizer": {"type": "AdamW", "params": {"lr": float(training_cfg.learning_rate)}},
        "runner.scheduler": {
            "type": "LRListScheduler",
            "params": {
                "milestones": [
                    max(1, round(f * epochs)) for f in training_cfg.lr_drops.at_fraction
                ],
                "lr_list": [[float(lr)] for lr in training_cfg.lr_drops.learning_rates],
            },
        },
        # The default key metric, test mAP, stays 0 for a young model; lower rmse is better.
        "runner.key_metric": "test.rmse",
        "runner.key_metric_asc": False,
        "runner.eval_interval": between,
        "runner.snapshots.save_epochs": between,
        "runner.snapshots.max_snapshots": 1,
        "runner.snapshots.save_optimizer_state": True,  # so a killed training can resume
        "device": str(training_cfg.device),
        "runner.device": str(training_cfg.device),
    }
    return updates | backbone_updates(model_cfg, pose_config)


def backbone_updates(model_cfg, pose_config: dict) -> dict:
    """Swap the backbone of DeepLabCut's model for ``model.backbone`` and resize the heads' inputs."""
    if not model_cfg.get("backbone"):
        return {}
    channels = int(model_cfg.backbone_output_channels)
    updates = {
        "model.backbone.model_name": str(model_cfg.backbone),
        "model.backbone_output_channels": channels,
    }
    for head_name, head in pose_config["model"]["heads"].items():
        for part in ("heatmap_config", "locref_config"):
            if part in head:
                updates[f"model.heads.{head_name}.{part}.channels"] = [
                    channels,
                    *head[part]["channels"][1:],
                ]
    return updates


def train(
    training_set: TrainingSet,
    updates: dict,
    weight_init: dict | None,
    resume_from: Path | None = None,
) -> None:
    """Train with DeepLabCut's own ``train_network``; snapshots land in the model folder.

    ``resume_from``: a snapshot of this training (see :func:`resume_point`); training continues from its
    epoch, weights, optimizer and scheduler state up to the same total number of epochs.
    """
    import deeplabcut

    updates = dict(updates)
    per_epoch = math.ceil(training_set.n_train / int(updates["train_settings.batch_size"]))
    total, done = int(updates["train_settings.epochs"]) * per_epoch, 0
    if resume_from is None:
        if weight_init is not None:
            updates["train_settings.weight_init"] = weight_init
    else:
        resumed_epoch = snapshot_epoch(resume_from)
        done = resumed_epoch * per_epoch
        # DeepLabCut trains `epochs` more epochs after the snapshot's: ask for what is left.
        updates["train_settings.epochs"] = max(
            0, int(updates["train_settings.epochs"]) - resumed_epoch
        )
        if updates["train_settings.epochs"] == 0:
            return  # it had finished training; only what came after was interrupted
        # Epochs after the snapshot are trained again: forget their rows, or DeepLabCut's CSV logger repeats them.
        stats = Path(training_set.model_folder) / "train" / "learning_stats.csv"
        if stats.is_file():
            table = pd.read_csv(stats)
            table[table["step"] <= resumed_epoch].to_csv(stats, index=False)
    label = progress.training_label(Path(training_set.project_config).parent)
    with (
        whole_snapshots(Path(training_set.model_folder) / "train"),
        progress.counting_records(
            progress.bar(total, label, initial=done), progress.PYTORCH_UPDATE
        ),
    ):
        deeplabcut.train_network(
            str(training_set.project_config),
            shuffle=SHUFFLE,
            pytorch_cfg_updates=updates,
            snapshot_path=str(resume_from) if resume_from else None,
        )


@contextlib.contextmanager
def whole_snapshots(folder: Path):
    """While the block runs, every ``torch.save`` to a path (DeepLabCut's snapshots) is whole or
    absent, and a full disk is one line (:func:`src.files.whole_writer`); temporary files that
    killed trainings left in ``folder`` are removed first."""
    import torch

    clear_dead_staging(folder)
    save = torch.save
    torch.save = whole_writer(save)
    try:
        yield
    finally:
        torch.save = save


def budget(updates: dict) -> dict:
    """The derived training budget logged as MLflow params."""
    return {"derived.epochs": updates["train_settings.epochs"]}


def resume_progress(snapshot: Path, updates: dict) -> str:
    """How far a resumed training had come, for the message."""
    return f"epoch {snapshot_epoch(snapshot)} of {updates['train_settings.epochs']}"


def learning_stats_file(training_set: TrainingSet) -> Path:
    """DeepLabCut's learning_stats.csv of a training (per epoch; streamed to MLflow while it trains)."""
    return Path(training_set.model_folder) / "train" / "learning_stats.csv"


def _snapshot_pose_config(snapshot: Path) -> Path:
    """The pytorch_config.yaml beside a DeepLabCut 3 snapshot (``weights.path``); one line if either is missing."""
    snapshot = Path(snapshot)
    pose_config = snapshot.parent / POSE_CONFIG
    for path, what in (
        (snapshot, "weights.path"),
        (pose_config, "the snapshot's pytorch_config.yaml"),
    ):
        if not path.is_file():
            raise DataError(
                f"{path} ({what}) does not exist; point weights.path at a DeepLabCut 3 snapshot "
                "inside its model's train/ folder (a DLC 2.x TensorFlow snapshot-N: engine=tensorflow)."
            )
    return pose_config


def snapshot_model(snapshot: Path) -> Model:
    """A DeepLabCut 3 snapshot (``weights.path``) as a model; its pytorch_config.yaml is beside it."""
    snapshot = Path(snapshot)
    pose_config = _snapshot_pose_config(snapshot)
    bodyparts = read_pose_config(pose_config)["metadata"]["bodyparts"]
    return Model(pose_config, {"last": snapshot}, list(bodyparts))


def own_training_images(model: Model) -> set[str] | None:
    """The frames a user's snapshot was trained on: not read for DeepLabCut 3 snapshots (None)."""
    return None


def save_pretrained(training_set: TrainingSet, snapshot: Path, folder: Path) -> None:
    """The pre-trained model's files: pytorch_config.yaml and snapshot.pt (weights only)."""
    shutil.copyfile(training_set.pose_config, folder / "pytorch_config.yaml")
    save_weights_only(snapshot, folder / "snapshot.pt")


def pretrained_model(folder: Path, bodyparts: list[str]) -> Model:
    """The model :func:`save_pretrained` wrote."""
    return Model(folder / "pytorch_config.yaml", {"last": folder / "snapshot.pt"}, list(bodyparts))


def snapshot_epoch(snapshot: Path) -> int:
    """The epoch a DeepLabCut snapshot was saved at (from its file name, snapshot-[best-]<epoch>.pt)."""
    return int(Path(snapshot).stem.rsplit("-", 1)[1])


def resume_point(model_folder: Path) -> Path | None:
    """The newest snapshot of an interrupted training that loads and holds the optimizer state, else None.

    A snapshot half-written when the process was killed does not load: it is set aside (renamed
    ``*.pt.partial``) and the one before it is used.
    """
    import torch

    train_dir = Path(model_folder) / "train"
    for snapshot in sorted(train_dir.glob("snapshot-*.pt"), key=snapshot_epoch, reverse=True):
        try:
            state = torch.load(snapshot, map_location="cpu", weights_only=False)
        except Exception:  # truncated zip, EOF: whatever a kill mid-write leaves
            snapshot.rename(snapshot.with_name(snapshot.name + ".partial"))
            continue
        if "optimizer" in state:
            return snapshot
    return None


def snapshots(model_folder: Path) -> dict[str, Path]:
    """{'best': ..., 'last': ...} snapshots of a trained model folder (the same file if the last is best)."""
    train_dir = Path(model_folder) / "train"
    found = sorted(train_dir.glob("snapshot-*.pt"), key=snapshot_epoch)
    if not found:
        raise FileNotFoundError(f"no snapshot-*.pt in {train_dir}")
    best = [p for p in found if "-best-" in p.name]
    return {"best": best[-1] if best else found[-1], "last": found[-1]}


def weight_init(snapshot: Path, conversion: list[int] | None) -> dict:
    """DeepLabCut's ``train_settings.weight_init`` for starting from a snapshot.

    ``conversion`` maps our bodyparts to the snapshot's heatmap channels and loads the heads too;
    None loads the backbone only (different bodyparts).
    """
    return {
        "snapshot_path": str(snapshot),
        "with_decoder": conversion is not None,
        "conversion_array": conversion,
        "dataset": Path(snapshot).parent.name,
    }


def random_weight_init(pose_config: dict, path: Path, seed: int) -> dict:
    """Start from a randomly initialised model (seeded), saved as a snapshot."""
    import torch
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    torch.manual_seed(seed)
    model = PoseModel.build(pose_config["model"], pretrained_backbone=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, path)
    n_bodyparts = len(pose_config["metadata"]["bodyparts"])
    return weight_init(path, list(range(n_bodyparts)))


def fresh_weight_init(kind: str, pose_config: dict, path: Path, seed: int) -> dict | None:
    """Start without a trained pose model: ``random`` (seeded, saved at ``path``) or ``hub`` (None: DeepLabCut
    then loads its ImageNet backbone, checked to be reachable first)."""
    if kind == "hub":
        check_hub_weights(pose_config)
        return None
    return random_weight_init(pose_config, path, seed)


class HubWeightsUnavailable(DataError):
    """DeepLabCut's pre-trained backbone is neither downloadable nor in the local hub cache."""


def check_hub_weights(pose_config: dict) -> None:
    """Fetch (or find in the cache) the ImageNet weights DeepLabCut's backbone starts from."""
    import timm

    name = pose_config["model"]["backbone"]["model_name"]
    try:
        timm.create_model(name, pretrained=True)
    except Exception as error:  # offline: huggingface_hub's LocalEntryNotFoundError, OSError, ...
        raise HubWeightsUnavailable(
            f"weights=hub needs the pre-trained {name} backbone from the Hugging Face hub, which cannot be "
            f"reached and is not in the cache ({type(error).__name__}). Fix: on a machine with internet run "
            f"`python -c \"import timm; timm.create_model('{name}', pretrained=True)\"` and copy "
            "~/.cache/huggingface here (or set HF_HOME to a copy), or choose weights=healthy_adults|snapshot|random."
        ) from None


def save_weights_only(snapshot: Path, path: Path) -> Path:
    """Copy a snapshot without its optimizer state: enough to reload the model and predict. Beside
    it, ``<name>.metadata.json`` keeps what DeepLabCut saved with it, for :func:`snapshot_metadata`."""
    import torch

    state = torch.load(snapshot, map_location="cpu", weights_only=False)
    metadata = state.get("metadata") or {}
    torch.save({"model": state["model"], "metadata": metadata}, path)
    with contextlib.suppress(TypeError, ValueError):  # not plain JSON: read from the snapshot
        text = json.dumps({"snapshot_sha256": _sha256(path), "metadata": metadata})
        _metadata_file(path).write_text(text, encoding="utf-8")
    return path


def _metadata_file(snapshot: Path) -> Path:
    return Path(snapshot).with_name(Path(snapshot).stem + ".metadata.json")


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def set_threads(threads: int) -> None:
    """Limit torch's CPU threads (0: leave torch's default), so parallel jobs do not oversubscribe cores.

    The count is part of the numerics: oneDNN and MKL split their sums between the threads, so 1 and 2
    threads give different weights, while load from other processes changes nothing. With the CPU pins of
    ``src/__init__.py``, a fixed count runs the same arithmetic on any x86-64 CPU with AVX2; 0 (torch's
    default: the machine's cores) makes results depend on the machine.
    """
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


# Images per forward pass when predicting frames: about twice as fast on the CPU as one at a time, and
# the same poses up to float32 rounding (bit for bit on the demo's frames; tests/analysis/test_prefetch.py).
PREDICTION_BATCH = 8


def predict(
    pose_config: Path | dict, snapshot: Path, images: list[Path], device: str | None = "cpu"
) -> np.ndarray:
    """DeepLabCut's inference on image files; returns (n_images, n_bodyparts, 3) of x, y, likelihood.

    Images are predicted in batches of :data:`PREDICTION_BATCH` images of one size (a batch is one
    tensor), read and predicted in turn in this thread, as :func:`video_inference_runner` does.
    """
    from deeplabcut.pose_estimation_pytorch.apis.utils import get_inference_runners
    from PIL import Image

    runner, _ = get_inference_runners(
        pose_config,
        snapshot_path=snapshot,
        max_individuals=1,
        device=device,
        batch_size=PREDICTION_BATCH,
    )
    if str(runner.device) == "cpu":
        runner.inference_cfg.multithreading.enabled = False
    of_size: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        with Image.open(image) as opened:  # reads the header only
            of_size.setdefault(opened.size, []).append(index)
    poses: list[np.ndarray | None] = [None] * len(images)
    for indices in of_size.values():
        predictions = runner.inference(images=[str(images[i]) for i in indices])
        for index, prediction in zip(indices, predictions, strict=True):
            poses[index] = prediction["bodyparts"][0]
    return np.stack(poses) if poses else np.empty((0, 0, 3))


def read_pose_config(path: Path) -> dict:
    """A pytorch_config.yaml as DeepLabCut reads it (``read_config_as_dict``: ruamel's safe loader),
    without importing DeepLabCut: an evaluation whose predictions are cached needs nothing else of it,
    and the import costs seconds per process."""
    from ruamel.yaml import YAML

    with open(path, encoding="utf-8") as handle:
        config = YAML(typ="safe", pure=True).load(handle)
    if not isinstance(config, dict):
        raise DataError(f"{path} is not a DeepLabCut pose configuration (a YAML mapping)")
    return config


def apply_updates(pose_config: dict, updates: dict) -> dict:
    """Apply dotted-key updates to a pytorch_config dict in place (as train_network does); returns it."""
    for key, value in updates.items():
        *parents, last = key.split(".")
        node = pose_config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value
    return pose_config


# --- video analysis: DeepLabCut's inference on whole videos and its filters ---


def video_inference_runner(model: Model, snapshot: str, batch_size: int, device: str):
    """DeepLabCut's pose inference runner for a single-individual model, as its analyze_videos
    builds it; ``device`` auto lets DeepLabCut choose.

    On the CPU it reads, preprocesses and predicts in turn, in this thread: DeepLabCut's reading
    thread (its default) only takes turns with the network's threads, which hold every core: on 2
    cores it tracked 5-10 % slower than without it, which runs at the network's own speed
    (``analysis_vs_limit`` of ``python -m benchmarks.limits``). The predictions are the same
    (tests/analysis/test_prefetch.py).
    """
    from deeplabcut.pose_estimation_pytorch.apis.utils import get_pose_inference_runner

    runner = get_pose_inference_runner(
        model_config=read_pose_config(model.pose_config),
        snapshot_path=model.snapshot(snapshot),
        batch_size=batch_size,
        device=None if device == "auto" else device,
        max_individuals=1,
    )
    if str(runner.device) == "cpu":
        runner.inference_cfg.multithreading.enabled = False
    return runner


def video_inference(runner, video: Path) -> list[dict]:
    """DeepLabCut's inference on every frame of a video (with its tqdm progress bar); one
    prediction per decoded frame."""
    from deeplabcut.pose_estimation_pytorch.apis.videos import video_inference as infer

    return infer(video, runner)


def predictions_table(
    predictions: list[dict], scorer: str, pose_config: dict, folder: Path, prefix: str
) -> pd.DataFrame:
    """DeepLabCut's predictions table (scorer/bodyparts/coords columns, one row per frame),
    written by DeepLabCut as ``<folder>/<prefix>.h5`` and ``.csv``."""
    from deeplabcut.pose_estimation_pytorch.apis.videos import create_df_from_prediction

    return create_df_from_prediction(
        predictions,
        scorer,
        multi_animal=False,
        model_cfg=pose_config,
        output_path=folder,
        output_prefix=prefix,
        save_as_csv=True,
    )


# --- the rest of the engine contract (src/engine/contract.py) ---


def weight_updates(iterations: int, batch_size: int, n_train: int) -> int:
    """Weight updates a training of ``training.iterations`` runs on ``n_train`` images: whole epochs
    (DeepLabCut 3 trains epochs, :func:`epochs_for`)."""
    return epochs_for(iterations, batch_size, n_train) * math.ceil(n_train / batch_size)


def snapshot_bodyparts(snapshot: Path) -> list[str]:
    """The bodyparts of a DeepLabCut 3 snapshot (``weights.path``), from the pytorch_config.yaml
    beside it; read as YAML, without DeepLabCut (the check and prepare stages train nothing)."""
    pose_config = _snapshot_pose_config(snapshot)
    try:
        bodyparts = yaml.safe_load(pose_config.read_text(encoding="utf-8"))["metadata"]["bodyparts"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise DataError(
            f"{pose_config} names no bodyparts (metadata.bodyparts: {error}); point "
            "weights.path at a snapshot in the train/ folder of a DeepLabCut 3 model."
        ) from error
    return list(bodyparts)


def snapshot_metadata(snapshot: Path) -> dict:
    """What DeepLabCut saved with a snapshot (``epoch``, ``metrics``); {} when nothing. Read from
    the file :func:`save_weights_only` wrote beside it when that still matches the snapshot's bytes:
    loading a snapshot needs torch, whose import costs an evaluation seconds."""
    kept = _metadata_file(snapshot)
    if kept.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            record = json.loads(kept.read_text(encoding="utf-8"))
            if record["snapshot_sha256"] == _sha256(snapshot):
                return dict(record["metadata"])
    import torch

    return torch.load(snapshot, map_location="cpu", weights_only=False).get("metadata") or {}


def write_dlc_project(
    folder: Path, final: Path, model: Model, project_config: Path, snapshot: str, batch_size: int
) -> dict:
    """A DeepLabCut 3 project of ``model`` in ``folder`` (to be renamed ``final``) that DeepLabCut's
    own tools read (``python -m src.export``): ``config.yaml`` from the model's
    ``project_config`` (no video names), the shuffle's ``train/pytorch_config.yaml`` and the
    ``snapshot`` (last | best) under DeepLabCut's name, ``test/pose_cfg.yaml`` and the training
    datasets' metadata. Returns the config.yaml as a dict."""
    from deeplabcut.create_project.modelzoo import MakeTest_pose_yaml
    from deeplabcut.utils.auxiliaryfunctions import get_model_folder, write_config

    config = yaml.safe_load(project_config.read_text(encoding="utf-8"))
    config.update(
        project_path=str(final),
        video_sets={},  # no video names leave the data folder
        engine="pytorch",
        snapshotindex=-1,  # the only snapshot
        batch_size=batch_size,  # as src.analyze (analysis.batch_size): the same batches
    )
    folder.mkdir(parents=True)
    for empty in ("videos", "labeled-data"):
        (folder / empty).mkdir()
    write_config(str(folder / "config.yaml"), config)
    model_folder = folder / get_model_folder(
        config["TrainingFraction"][0], SHUFFLE, config, engine=_dlc_engine()
    )
    (model_folder / "train").mkdir(parents=True)
    (model_folder / "test").mkdir()
    pose_config = read_pose_config(model.pose_config)
    pose_config["metadata"]["project_path"] = config["project_path"]
    pose_config["metadata"]["pose_config_path"] = str(
        Path(config["project_path"]) / model_folder.relative_to(folder) / "train" / POSE_CONFIG
    )
    pose_config["train_settings"]["weight_init"] = None  # a path on the machine it was trained on
    (model_folder / "train" / POSE_CONFIG).write_text(
        yaml.safe_dump(pose_config, sort_keys=False), encoding="utf-8"
    )
    weights = model.snapshot(snapshot)
    epoch = snapshot_metadata(weights)
    name = f"snapshot-{int(epoch.get('epoch', 0)):03d}.pt"  # DeepLabCut's snapshot naming
    shutil.copyfile(weights, model_folder / "train" / name)
    _write_shuffle_metadata(config | {"project_path": str(folder)}, model_folder.name)
    bodyparts = list(pose_config["metadata"]["bodyparts"])
    MakeTest_pose_yaml(
        {
            "dataset": "",
            "num_joints": len(bodyparts),
            "all_joints": [[i] for i in range(len(bodyparts))],
            "all_joints_names": bodyparts,
            "net_type": pose_config.get("net_type", ""),
        },
        ["dataset", "num_joints", "all_joints", "all_joints_names", "net_type"],
        str(model_folder / "test" / "pose_cfg.yaml"),
    )
    return config


def _write_shuffle_metadata(config: dict, shuffle_name: str) -> None:
    """DeepLabCut's training-datasets metadata.yaml naming the one shuffle and its engine, which
    create_labeled_video and others look up (its frame split is empty: no labelled frames)."""
    from deeplabcut.generate_training_dataset.metadata import (
        DataSplit,
        ShuffleMetadata,
        TrainingDatasetMetadata,
    )

    shuffle = ShuffleMetadata(
        name=shuffle_name,
        train_fraction=config["TrainingFraction"][0],
        index=SHUFFLE,
        engine=_dlc_engine(),
        split=DataSplit(train_indices=(), test_indices=()),
    )
    metadata = TrainingDatasetMetadata(project_config=config, shuffles=(shuffle,))
    metadata.path(config).parent.mkdir(parents=True, exist_ok=True)
    metadata.save()


def _dlc_engine():
    from deeplabcut.core.engine import Engine

    return Engine.PYTORCH


# --- the time estimate's probe (src/study/estimate.py) ---

TIMING_PROBE = True  # timing_probe measures this engine's updates


def timing_probe(request: dict) -> dict | None:
    """The time estimate's probe (src/study/estimate.py), in its own process: a few AdamW updates of
    the study's model (``request``: model, input_wh, batch_size, threads, device, n_bodyparts,
    probe_updates, probe_images) on random images, then batch-1 predictions. Returns the fastest
    seconds per update and per image, and when the imports were done (``imported_at``)."""
    import time

    import torch
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    imported_at = time.time()
    if request["threads"] > 0:
        torch.set_num_threads(request["threads"])
    device = torch.device(request["device"])
    torch.manual_seed(0)
    model = PoseModel.build(
        pose_model_config(request["model"], request["n_bodyparts"]), pretrained_backbone=False
    ).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    width, height = request["input_wh"]
    batch = torch.randn(request["batch_size"], 3, height, width, device=device)

    def timed(work) -> float:
        start = time.perf_counter()
        work()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def update() -> None:
        optimizer.zero_grad()
        outputs = model(batch)  # a stand-in loss: DeepLabCut's own needs targets
        loss = sum((t**2).mean() for head in outputs.values() for t in head.values())
        loss.backward()
        optimizer.step()

    timed(update)  # warm-up
    # the fastest: the least disturbed by other work on the machine
    per_update = min(timed(update) for _ in range(request["probe_updates"]))
    model.eval()
    image = batch[:1]
    with torch.no_grad():
        timed(lambda: model(image))
        per_image = min(timed(lambda: model(image)) for _ in range(request["probe_images"]))
    return {"per_update_s": per_update, "per_image_s": per_image, "imported_at": imported_at}


def pose_model_config(model_cfg: dict, n_bodyparts: int) -> dict:
    """The ``model`` section of the pytorch_config.yaml this engine trains for ``model=``."""
    import shutil
    import tempfile
    import warnings

    from deeplabcut.pose_estimation_pytorch.config import make_pytorch_pose_config

    folder = Path(tempfile.mkdtemp(prefix="timing-probe-"))
    project = {
        "Task": "probe",
        "scorer": "probe",
        "date": "probe",
        "multianimalproject": False,
        "identity": False,
        "project_path": str(folder),
        "bodyparts": [f"point{i}" for i in range(n_bodyparts)],
        "uniquebodyparts": [],
        "individuals": ["single"],
        "skeleton": [],
        "video_sets": {},
        "TrainingFraction": [0.95],
        "iteration": 0,
    }
    try:
        with warnings.catch_warnings():  # deprecated for PoseConfig.build, which needs a project
            warnings.simplefilter("ignore")
            pose = make_pytorch_pose_config(
                project, folder / "pytorch_config.yaml", net_type=str(model_cfg["net_type"])
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    pose = pose.model_dump() if hasattr(pose, "model_dump") else dict(pose)
    from omegaconf import OmegaConf

    model_cfg = OmegaConf.create(model_cfg)
    return apply_updates(pose, backbone_updates(model_cfg, pose))["model"]


def auto_device() -> str:
    """The device ``training.device=auto`` trains on: cuda when torch sees one, else cpu."""
    return shared.auto_device()
