"""The prepared folder of a data set (written by ``src.prepare``, see :mod:`src.data.preparation`)
and the frames of a labelled-frames condition in it.

``<paths.prepared_dir>/<data.name>/`` holds:

* ``split.csv``      participant, video, session, set (development | generalisation)
* ``selection.csv``  the ranked selection: participant, video, session, set, role (train | test |
  generalisation), rank, frame, image. Condition N uses the train rows with rank <= N.
* ``labels.csv``     labels of every selected frame (participant, video, frame, bodypart, x, y)
* ``labeled-data/<video>/`` the selected frames as PNGs with ``CollectedData_<scorer>.h5/.csv``,
  DeepLabCut's own layout
* ``dataset.yaml``   facts downstream stages need (bodyparts, skeleton, scale, scorer) and the
  frame counts asked for and used per video.

With ``split=kfold`` it holds ``folds.csv`` (participant, video, session, fold) and one such
folder per fold, ``fold_<k>/``; a condition reads its fold's (:func:`src.paths.prepared_dir`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from omegaconf import DictConfig
from PIL import Image

from src import paths
from src.checks import check_config
from src.errors import DataError

log = logging.getLogger(__name__)


def read_prepared(prepared_dir: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """dataset.yaml, selection.csv and labels.csv of a prepared folder."""
    meta = Path(prepared_dir) / "dataset.yaml"
    if not meta.is_file():
        raise DataError(
            f"{meta} does not exist; prepare the frames first: `python -m src.prepare` "
            "(or `dvc repro`)."
        )
    for path in (meta.parent / "selection.csv", meta.parent / "labels.csv"):
        if not path.is_file():
            raise DataError(
                f"{path} does not exist: {meta.parent} is incomplete (edited or damaged by hand); "
                "prepare it again: `python -m src.prepare` (or `dvc repro prepare`)."
            )
    try:
        facts = yaml.safe_load(meta.read_text(encoding="utf-8"))
        tables = pd.read_csv(meta.parent / "selection.csv"), pd.read_csv(meta.parent / "labels.csv")
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise DataError(
            f"{meta.parent} cannot be read ({type(error).__name__}: {error}); "
            "prepare it again: `python -m src.prepare` (or `dvc repro prepare`)."
        ) from error
    if not isinstance(facts, dict) or "config" not in facts:
        raise DataError(
            f"{meta} is not a dataset.yaml written by src.prepare; "
            "prepare again: `python -m src.prepare`."
        )
    return (facts, *tables)


@dataclass
class Condition:
    """The prepared frames a labelled-frames condition is trained and evaluated on."""

    labelled_frames: int  # labelled frames per development video (the condition)
    prepared_dir: Path
    facts: dict  # dataset.yaml
    frames: pd.DataFrame  # the condition's frames, with set = train | test | generalisation
    labels: pd.DataFrame  # labels.csv


def load_condition(cfg: DictConfig) -> Condition:
    """The prepared data of ``cfg.data`` and the frames of condition ``cfg.labelled_frames``.

    Checks the settings every stage of a condition reads (src.train, src.evaluate) before any work.
    """
    check_config(cfg, "labelled_frames", "training", "evaluation")
    prepared_dir = paths.prepared_dir(cfg)  # split=kfold: the fold's own folder
    facts, selection, labels = read_prepared(prepared_dir)
    n_frames = cfg.labelled_frames
    largest = int(facts["config"]["max_train_frames_per_video"])
    if not isinstance(n_frames, int) or not 0 <= n_frames <= largest:
        raise DataError(
            f"labelled_frames={n_frames!r} is not an integer from 0 to {largest}, the frames "
            "prepared per video (frames.max_train_frames_per_video); choose one, or prepare more "
            "frames."
        )
    per_video = facts.get("frames_per_video", {}).values()
    available = [roles["train"]["used"] for roles in per_video if "train" in roles]
    if available and n_frames > max(available):
        most = max(available)
        raise DataError(
            f"labelled_frames={n_frames} asks for more labelled frames than exist: no development "
            f"video in {prepared_dir / 'dataset.yaml'} has more than {most} train frame(s) "
            f"(frames_per_video), so it would repeat labelled_frames={most}; choose "
            f"labelled_frames <= {most}, or add longer videos (more labelled frames) and prepare "
            "again."
        )
    if 0 < facts["min_train_frames_per_development_video"] < n_frames:
        log.warning(
            "some development videos have only %d selected frames; they contribute all of them",
            facts["min_train_frames_per_development_video"],
        )
    return Condition(n_frames, prepared_dir, facts, condition_frames(selection, n_frames), labels)


def condition_frames(selection: pd.DataFrame, n_frames: int) -> pd.DataFrame:
    """The frames a condition is trained and evaluated on (``set``: train, test, generalisation)."""
    frames = selection[(selection["role"] != "train") | (selection["rank"] <= n_frames)].copy()
    frames["set"] = frames["role"]
    return frames.reset_index(drop=True)


def largest_image_size(paths) -> tuple[int, int]:
    """(width, height) that holds every image of ``paths``: the largest width and height.

    The frames of a DeepLabCut or Lightning Pose project need not share one size (the real
    Reaching project mixes 832 x 747 and 640 x 470). Training that crops or pads every image to one
    size should use this, so that no frame is cropped below its own size; only headers are read.
    """
    widths, heights = [], []
    for path in paths:
        with Image.open(path) as image:
            widths.append(image.size[0])
            heights.append(image.size[1])
    if not widths:
        raise DataError("no images given; prepare the frames first: `python -m src.prepare`.")
    return max(widths), max(heights)
