"""DeepLabCut 3 (PyTorch engine) for one training: project, training set, training, inference.

Every model is trained in a DeepLabCut project of its own, written from the prepared frames, so
that a person can open it with DeepLabCut's own tools and nothing here depends on DeepLabCut's
unseeded frame extraction or train/test split: the training set is made with explicit indices.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from src.data.collected_data import write_labels
from src.data.prepared import largest_image_size
from src.engine import Model, TrainingFrames, progress
from src.errors import DataError

__all__ = ["Model", "TrainingFrames"]  # shared by the engines (src/engine/__init__.py)

SHUFFLE = 1


TRAINING_SET_FILE = "training_set.yaml"  # in the project folder: the training set is complete


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


def save_training_set(training_set):
    """Record a complete training set in its project folder (either engine's ``TrainingSet``).

    Written last: its presence says the project is complete, so an interrupted training can resume
    in it. Returns ``training_set``.
    """
    project_dir = Path(training_set.project_config).parent
    (project_dir / TRAINING_SET_FILE).write_text(
        yaml.safe_dump(
            {
                "model_folder": str(Path(training_set.model_folder).relative_to(project_dir)),
                "n_train": training_set.n_train,
                "n_test": training_set.n_test,
            }
        )
    )
    return training_set


def write_project(frames: TrainingFrames, project_dir: Path) -> tuple[list[int], list[int]]:
    """Write a DeepLabCut project (any engine) holding exactly the ``frames.selection`` rows; returns
    the train and test indices into the table DeepLabCut merges from its labeled-data."""
    from deeplabcut.core.config import ProjectConfig, write_project_config

    prepared_dir, project_dir = Path(frames.prepared_dir), Path(project_dir)
    facts, selection, labels = frames.facts, frames.selection, frames.labels
    shutil.rmtree(project_dir, ignore_errors=True)
    labeled = project_dir / "labeled-data"
    for image in selection["image"]:
        (labeled / Path(image).parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(prepared_dir / image, project_dir / image)
    write_labels(
        labels.merge(selection[["video", "frame"]]),
        selection,
        facts["scorer"],
        facts["bodyparts"],
        labeled,
    )

    # DeepLabCut finds labeled-data/<video> through the stem of each video_sets key; the videos
    # themselves are not needed to train.
    video_sets = {}
    for video, images in sorted(selection.groupby("video")["image"]):
        width, height = largest_image_size(project_dir / image for image in images)
        video_sets[str(project_dir / "videos" / f"{video}.mp4")] = {
            "crop": f"0, {width}, 0, {height}"
        }
    is_test = (selection["role"] == "test").to_numpy()
    train_fraction = round(int((~is_test).sum()) / len(selection), 2)
    config = ProjectConfig(
        Task=facts["name"],
        scorer=facts["scorer"],
        date="",
        project_path=project_dir.resolve(),
        iteration=0,
        video_sets=video_sets,
        bodyparts=facts["bodyparts"],
        skeleton=facts["skeleton"],
        TrainingFraction=[train_fraction],
    )
    write_project_config(project_dir / "config.yaml", config)

    # Indices refer to rows of the table DeepLabCut merges from labeled-data: ask it for that table.
    from deeplabcut.generate_training_dataset.trainingsetmanipulation import (
        merge_annotateddatasets,
    )
    from deeplabcut.utils.auxiliaryfunctions import get_training_set_folder, read_config

    project_cfg = read_config(str(project_dir / "config.yaml"))
    merged_dir = project_dir / get_training_set_folder(project_cfg)
    merged_dir.mkdir(parents=True, exist_ok=True)
    merged = merge_annotateddatasets(project_cfg, merged_dir)
    position = {"/".join(index): i for i, index in enumerate(merged.index)}
    train = sorted(position[i] for i in selection.loc[~is_test, "image"])
    test = sorted(position[i] for i in selection.loc[is_test, "image"])
    return train, test


def open_training_set(project_dir: Path, kind: type = TrainingSet):
    """The complete training set an earlier (interrupted) training made in ``project_dir``, if any,
    as ``kind`` (an engine's ``TrainingSet``)."""
    path = Path(project_dir) / TRAINING_SET_FILE
    if not path.is_file():
        return None
    saved = yaml.safe_load(path.read_text())
    return kind(
        Path(project_dir) / "config.yaml",
        Path(project_dir) / saved["model_folder"],
        int(saved["n_train"]),
        int(saved["n_test"]),
    )


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


def epochs_for(iterations: int, batch_size: int, n_train: int) -> int:
    """Epochs that give at least ``iterations`` batches over ``n_train`` images."""
    return max(1, math.ceil(iterations / math.ceil(n_train / batch_size)))


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
    with progress.counting_records(
        progress.bar(total, label, initial=done), progress.PYTORCH_UPDATE
    ):
        deeplabcut.train_network(
            str(training_set.project_config),
            shuffle=SHUFFLE,
            pytorch_cfg_updates=updates,
            snapshot_path=str(resume_from) if resume_from else None,
        )


def budget(updates: dict) -> dict:
    """The derived training budget logged as MLflow params."""
    return {"derived.epochs": updates["train_settings.epochs"]}


def resume_progress(snapshot: Path, updates: dict) -> str:
    """How far a resumed training had come, for the message."""
    return f"epoch {snapshot_epoch(snapshot)} of {updates['train_settings.epochs']}"


def learning_stats_file(training_set: TrainingSet) -> Path:
    """DeepLabCut's learning_stats.csv of a training (per epoch; streamed to MLflow while it trains)."""
    return Path(training_set.model_folder) / "train" / "learning_stats.csv"


def snapshot_model(snapshot: Path) -> Model:
    """A DeepLabCut 3 snapshot (``weights.path``) as a model; its pytorch_config.yaml is beside it."""
    snapshot = Path(snapshot)
    pose_config = snapshot.parent / "pytorch_config.yaml"
    for path, what in (
        (snapshot, "weights.path"),
        (pose_config, "the snapshot's pytorch_config.yaml"),
    ):
        if not path.is_file():
            raise DataError(
                f"{path} ({what}) does not exist; point weights.path at a DeepLabCut 3 snapshot "
                "inside its model's train/ folder (a DLC 2.x TensorFlow snapshot-N: engine=tensorflow)."
            )
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
    """Copy a snapshot without its optimizer state: enough to reload the model and predict."""
    import torch

    state = torch.load(snapshot, map_location="cpu", weights_only=False)
    torch.save({"model": state["model"], "metadata": state.get("metadata", {})}, path)
    return path


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


def predict(
    pose_config: Path | dict, snapshot: Path, images: list[Path], device: str = "cpu"
) -> np.ndarray:
    """DeepLabCut's inference on image files; returns (n_images, n_bodyparts, 3) of x, y, likelihood."""
    from deeplabcut.pose_estimation_pytorch.apis.utils import get_inference_runners

    runner, _ = get_inference_runners(
        pose_config, snapshot_path=snapshot, max_individuals=1, device=device
    )
    predictions = runner.inference(images=[str(p) for p in images])
    return (
        np.stack([p["bodyparts"][0] for p in predictions]) if predictions else np.empty((0, 0, 3))
    )


def read_pose_config(path: Path) -> dict:
    from deeplabcut.pose_estimation_pytorch.config import read_config_as_dict

    return read_config_as_dict(path)


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
    builds it; ``device`` auto lets DeepLabCut choose."""
    from deeplabcut.pose_estimation_pytorch.apis.utils import get_pose_inference_runner

    return get_pose_inference_runner(
        model_config=read_pose_config(model.pose_config),
        snapshot_path=model.snapshot(snapshot),
        batch_size=batch_size,
        device=None if device == "auto" else device,
        max_individuals=1,
    )


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


def filter_predictions(table: pd.DataFrame, filter_cfg) -> pd.DataFrame:
    """DeepLabCut's ``filterpredictions`` on a predictions table (it needs a project; this does
    the same on the table).

    median: scipy's medfilt of x and y; arima: DeepLabCut's SARIMAX fit per coordinate; spline:
    DeepLabCut's gap filling. The code mirrors deeplabcut/post_processing/filtering.py and calls
    its helpers.
    """
    from scipy import signal

    kind = str(filter_cfg.type)
    if kind == "median":
        filtered = table.copy()
        coords = filtered.columns.get_level_values("coords") != "likelihood"
        filtered.loc[:, coords] = table.loc[:, coords].apply(
            signal.medfilt, args=(int(filter_cfg.window_length),), axis=0
        )
        return filtered
    if kind == "arima":
        return _sarimax_filtered(table, filter_cfg)
    if kind == "spline":
        from deeplabcut.post_processing.filtering import columnwise_spline_interp

        filtered = table.copy()
        is_xy = filtered.columns.get_level_values("coords").isin(("x", "y"))
        xy = filtered.loc[:, is_xy].to_numpy(copy=True)
        filled = columnwise_spline_interp(xy, int(filter_cfg.window_length))
        xy[~np.isnan(filled)] = filled[~np.isnan(filled)]
        filtered.loc[:, is_xy] = xy
        return filtered
    raise DataError(
        f"analysis.filter.type={kind!r} is unknown; use none | median | arima | spline."
    )


def _sarimax_filtered(table: pd.DataFrame, filter_cfg) -> pd.DataFrame:
    """DeepLabCut's SARIMAX fit of x and y of every bodypart; the first frame is kept."""
    from deeplabcut.refine_training_dataset.outlier_frames import FitSARIMAXModel

    arguments = (
        float(filter_cfg.p_bound),
        float(filter_cfg.alpha),
        int(filter_cfg.ar_degree),
        int(filter_cfg.ma_degree),
        False,
    )
    values = table.to_numpy().reshape((len(table), -1, 3))
    smoothed = np.empty_like(values)
    for j in range(values.shape[1]):
        x, y, likelihood = values[:, j].T
        mean_x, _ = FitSARIMAXModel(x, likelihood, *arguments)
        mean_y, _ = FitSARIMAXModel(y, likelihood, *arguments)
        mean_x[0], mean_y[0] = x[0], y[0]
        smoothed[:, j] = np.c_[mean_x, mean_y, likelihood]
    return pd.DataFrame(
        smoothed.reshape((len(table), -1)), columns=table.columns, index=table.index
    )
