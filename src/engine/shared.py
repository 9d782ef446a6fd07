"""What both engines share: DeepLabCut's project folder and the record of a complete training set,
the epochs of an iteration budget, and DeepLabCut's filters of a predictions table (engine-neutral).

Not an engine (src/engine/__init__.py lists the engines); the engine modules import it, nothing else.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from src.data.collected_data import write_labels
from src.data.prepared import largest_image_size
from src.engine import TrainingFrames
from src.errors import DataError

SHUFFLE = 1
TRAINING_SET_FILE = "training_set.yaml"  # in the project folder: the training set is complete


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


def open_training_set(project_dir: Path, kind: type):
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


def epochs_for(iterations: int, batch_size: int, n_train: int) -> int:
    """Epochs that give at least ``iterations`` batches over ``n_train`` images."""
    return max(1, math.ceil(iterations / math.ceil(n_train / batch_size)))


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


def auto_device() -> str:
    """The device ``training.device=auto`` means: cuda when torch sees one, else cpu."""
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


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
    """DeepLabCut's project ``config.yaml`` in ``project_dir`` for labelling its ``labeled-data/``
    (found through the stems of ``video_sets``' keys); ``project_path``: where the project will
    lie (it may be written elsewhere and moved). Used by src.labelling and src.analyze (flagged frames)."""
    from deeplabcut.core.config import (  # heavy import, only here
        ProjectConfig,
        write_project_config,
    )

    config = ProjectConfig(
        Task=task,
        scorer=scorer,
        date="",
        project_path=Path(project_path).resolve(),
        video_sets=video_sets,
        bodyparts=list(bodyparts),
        skeleton=[list(pair) for pair in skeleton],
    )
    write_project_config(Path(project_dir) / "config.yaml", config)
    return Path(project_dir) / "config.yaml"
