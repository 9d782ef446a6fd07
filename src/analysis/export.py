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

from omegaconf import DictConfig

from src import engine
from src.analysis.model_choice import ModelRun, download_model_and_skeleton, resolve_model
from src.errors import ConfigError, DataError
from src.tracking.queries import open_experiment


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
        try:  # the engine writes its DeepLabCut project (src/engine/contract.py)
            config = engine.for_model(model).write_dlc_project(
                staging, target, model, project_config, snapshot, int(cfg.analysis.batch_size)
            )
        except DataError as error:
            raise DataError(f"export.model={settings.model}: {error}") from None
        (staging / "EXPORT.md").write_text(provenance(settings, model_run, snapshot, config))
    if target.exists():
        target.rmdir()
    staging.rename(target)  # whole or not at all
    return target / "config.yaml"


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
