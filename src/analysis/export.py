"""A trained model as a DeepLabCut 3 project folder to take home (``python -m src.export``).

The folder holds what DeepLabCut's own ``analyze_videos``, ``create_labeled_video`` and
napari-deeplabcut read: ``config.yaml`` (bodyparts, skeleton, the batch size ``src.analyze`` uses),
``dlc-models-pytorch/iteration-0/<Task>-trainset<pct>shuffle1/train/`` with ``pytorch_config.yaml``
and one snapshot, ``test/pose_cfg.yaml`` beside it, and empty ``videos/`` and ``labeled-data/``.
No labelled frames, no videos and no video names (``video_sets`` is empty): only the model and its
configuration. ``EXPORT.md`` in the folder says where it came from.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml
from omegaconf import DictConfig

from src.analysis.model_choice import ModelRun, download_model_and_skeleton, resolve_model
from src.engine import pytorch as engine
from src.errors import ConfigError, DataError
from src.tracking.queries import open_experiment

SHUFFLE = 1


def export(cfg: DictConfig) -> Path:
    """Write the project ``export.dir`` for ``export.model``; returns its config.yaml."""
    settings = cfg.export
    if not settings.get("dir"):
        raise ConfigError(
            "export.dir is not set; give the folder to write, e.g. export.dir=exported/my_model "
            "(a new or empty folder)."
        )
    target = Path(str(settings.dir)).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError(
            f"export.dir={settings.dir} exists and is not empty; choose a new folder (nothing is "
            "overwritten)."
        )
    open_experiment(cfg.mlflow)  # the store exists (one-line message otherwise)
    model_run = resolve_model(str(settings.model), "export.model")
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        model, _ = download_model_and_skeleton(model_run, Path(tmp))
        if getattr(model, "engine", "pytorch") != "pytorch":
            raise DataError(
                f"export.model={settings.model} is a DeepLabCut TensorFlow model; export writes "
                "DeepLabCut 3 PyTorch projects: export a model trained with engine=pytorch."
            )
        project_config = model.pose_config.parent / "project_config.yaml"
        if not project_config.is_file():
            raise DataError(
                f"export.model={settings.model} stores no project_config.yaml beside its weights "
                "(trained before it was kept); train the condition again (`python -m src.train "
                "labelled_frames=<n> retrain=true`) and export that run."
            )
        snapshot = "best" if model_run.model_uri else str(settings.snapshot)
        staging = target.with_name(f".{target.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        config = write_project(
            staging, target, model, project_config, snapshot, int(cfg.analysis.batch_size)
        )
        (staging / "EXPORT.md").write_text(provenance(settings, model_run, snapshot, config))
    if target.exists():
        target.rmdir()
    staging.rename(target)  # whole or not at all
    return target / "config.yaml"


def write_project(
    folder: Path,
    final: Path,
    model: engine.Model,
    project_config: Path,
    snapshot: str,
    batch_size: int,
) -> dict:
    """The DeepLabCut project files in ``folder`` (to be renamed ``final``); returns its
    config.yaml as a dict."""
    import torch
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
        config["TrainingFraction"][0], SHUFFLE, config, engine=_pytorch_engine()
    )
    (model_folder / "train").mkdir(parents=True)
    (model_folder / "test").mkdir()
    pose_config = engine.read_pose_config(model.pose_config)
    pose_config["metadata"]["project_path"] = config["project_path"]
    pose_config["metadata"]["pose_config_path"] = str(
        Path(config["project_path"])
        / model_folder.relative_to(folder)
        / "train"
        / "pytorch_config.yaml"
    )
    pose_config["train_settings"]["weight_init"] = None  # a path on the machine it was trained on
    (model_folder / "train" / "pytorch_config.yaml").write_text(
        yaml.safe_dump(pose_config, sort_keys=False), encoding="utf-8"
    )
    weights = model.snapshot(snapshot)
    epoch = torch.load(weights, map_location="cpu", weights_only=False).get("metadata", {})
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
        engine=_pytorch_engine(),
        split=DataSplit(train_indices=(), test_indices=()),
    )
    metadata = TrainingDatasetMetadata(project_config=config, shuffles=(shuffle,))
    metadata.path(config).parent.mkdir(parents=True, exist_ok=True)
    metadata.save()


def _pytorch_engine():
    from deeplabcut.core.engine import Engine

    return Engine.PYTORCH


def provenance(settings: DictConfig, model_run: ModelRun, snapshot: str, config: dict) -> str:
    """EXPORT.md: where the model came from, what the folder holds and how to use it."""
    run = model_run.run
    return f"""# DeepLabCut project exported from the MLflow store

- Model: `{settings.model}`; training run `{run.info.run_id}` ({run.info.run_name}), weights of
  run `{model_run.model_run_id}`, snapshot `{snapshot}`;
  labelled frames per video: {run.data.tags.get("labelled_frames", "?")}.
- Bodyparts: {", ".join(config["bodyparts"])}.
- Network: see `model.backbone` in `pytorch_config.yaml`; DeepLabCut names its scorer after
  `net_type`, which keeps the name of the network the project was made with.
- Contents: the model and its configuration only. No labelled frames, no videos, no video names
  (`video_sets` is empty); `labeled-data/` and `videos/` are empty.

Use it with DeepLabCut 3 (PyTorch engine):

```python
import deeplabcut
deeplabcut.analyze_videos("config.yaml", ["my_video.mp4"])
deeplabcut.create_labeled_video("config.yaml", ["my_video.mp4"])
```

or open `config.yaml` and the predictions in napari-deeplabcut. To train it further, add labelled
frames and videos as in any DeepLabCut project.
"""
