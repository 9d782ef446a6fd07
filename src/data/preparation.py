"""Preparing a data set: participant split, ranked frame selection, labelled frames.

:func:`prepare` (the ``prepare`` stage, ``python -m src.prepare``) writes them to the data set's
prepared folder, laid out as :mod:`src.data.prepared` describes.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import cv2
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from src.checks import check_config
from src.data.collected_data import write_labels
from src.data.dataset import Dataset, load_dataset
from src.data.frames import (
    TRAIN,
    candidate_frames,
    label_frames,
    n_test_frames_per_video,
    select_frames,
)
from src.data.split import (
    DEVELOPMENT,
    FRAMES,
    GENERALISATION,
    GENERALISATION_MEANING,
    KFOLD,
    assign_folds,
    split_dataset,
    split_fold,
    split_kind,
)
from src.errors import DataError
from src.files import atomic_directory

log = logging.getLogger(__name__)


def prepare(cfg: DictConfig) -> Path:
    """Run the stage for a composed config; returns the prepared folder."""
    check_config(cfg, "data", "split", "frames")
    dataset = load_dataset(cfg.data)
    out_dir = Path(cfg.paths.prepared_dir) / dataset.name
    if out_dir.resolve().is_relative_to(dataset.root.resolve()):
        raise DataError(
            f"paths.prepared_dir puts output at {out_dir}, inside the raw data folder "
            f"{dataset.root}, which the pipeline never writes to; choose a paths.prepared_dir "
            "outside it."
        )
    if split_kind(cfg.split) == KFOLD:
        return prepare_folds(cfg, dataset, out_dir)
    split = split_dataset(dataset.videos, cfg.split, lambda video: candidate_frames(dataset, video))
    with atomic_directory(out_dir, key="paths.prepared_dir") as staging:
        selection = write_prepared(cfg, dataset, split, staging)
    log.info(
        "prepared %d frames of %d videos into %s",
        len(selection),
        split["video"].nunique(),
        out_dir,
    )
    return out_dir


def prepare_folds(cfg: DictConfig, dataset: Dataset, out_dir: Path) -> Path:
    """``split=kfold``: every fold of the cross-validation prepared into ``out_dir/fold_<k>/``
    (each laid out as a single split's folder), and ``folds.csv`` (participant, video, session,
    fold). All folds are prepared at once, whichever the pipeline runs (pipeline.folds), so adding
    a fold to the run leaves this folder as it is. Each video is decoded and ranked once per set,
    not once per fold."""
    folds, seed = int(cfg.split.folds), int(cfg.split.seed)
    assigned = assign_folds(dataset.videos, folds, seed)
    shared: dict = {}
    with atomic_directory(out_dir, key="paths.prepared_dir") as staging:
        assigned.to_csv(staging / "folds.csv", index=False)
        for fold in range(1, folds + 1):
            fold_cfg = OmegaConf.merge(cfg, {"split": {"fold": fold}})
            split = split_fold(dataset.videos, folds, fold, seed)
            write_prepared(fold_cfg, dataset, split, staging / f"fold_{fold}", shared)
    log.info("prepared %d folds of %d videos into %s", folds, len(assigned), out_dir)
    return out_dir


def write_prepared(
    cfg: DictConfig, dataset: Dataset, split: pd.DataFrame, folder: Path, shared: dict | None = None
) -> pd.DataFrame:
    """Select and label the frames of ``split`` and write the prepared folder's files into ``folder``
    (``shared``: see :func:`src.data.frames.select_frames`); returns the selection."""
    selection = select_frames(dataset, split, cfg.frames, cfg.split, shared)
    labels = label_frames(
        dataset, selection, float(cfg.frames.label_noise_px), int(cfg.frames.seed)
    )
    folder.mkdir(parents=True, exist_ok=True)
    selection["image"] = write_frame_images(dataset, selection, folder / "labeled-data")
    write_labels(labels, selection, dataset.scorer, dataset.bodyparts, folder / "labeled-data")
    split.to_csv(folder / "split.csv", index=False)
    selection.to_csv(folder / "selection.csv", index=False)
    labels.to_csv(folder / "labels.csv", index=False, float_format="%.3f")
    _write_yaml(folder / "dataset.yaml", describe(dataset, split, selection, cfg))
    return selection


def write_frame_images(dataset: Dataset, selection: pd.DataFrame, labeled_data: Path) -> pd.Series:
    """Write every selected frame as labeled-data/<video>/img<frame>.png; returns these paths.

    Frames of videos are decoded in one sequential pass (seeking is not frame-exact for every
    codec); labelled images (DeepLabCut, Lightning Pose) are copied as they are.
    """
    images = pd.Series(index=selection.index, dtype=object)
    if dataset.has_labelled_images:
        source = dataset.annotations.drop_duplicates(["video", "frame"])
        source = source.set_index(["video", "frame"])["image"]
    for video, rows in selection.groupby("video"):
        folder = labeled_data / video
        folder.mkdir(parents=True, exist_ok=True)
        if dataset.has_labelled_images:
            for index, frame in rows["frame"].items():
                name = Path(source[(video, frame)]).name
                shutil.copyfile(dataset.root / source[(video, frame)], folder / name)
                images[index] = f"labeled-data/{video}/{name}"
            continue
        info = dataset.videos.set_index("video").loc[video]
        digits = max(1, math.ceil(math.log10(max(int(info.n_frames), 2))))  # DeepLabCut's naming
        wanted = dict(zip(rows["frame"], rows.index))
        capture = cv2.VideoCapture(str(info.path))
        frame_number = 0
        while wanted and capture.grab():
            if frame_number in wanted:
                _, image = capture.retrieve()
                name = f"img{frame_number:0{digits}d}.png"
                cv2.imwrite(str(folder / name), image)
                images[wanted.pop(frame_number)] = f"labeled-data/{video}/{name}"
            frame_number += 1
        capture.release()
        if wanted:
            raise DataError(
                f"video {info.path} ended before frames {sorted(wanted)}; restore the full video."
            )
    return images


def describe(
    dataset: Dataset, split: pd.DataFrame, selection: pd.DataFrame, cfg: DictConfig
) -> dict:
    """Facts about the prepared data, including frames asked for and actually used per video."""
    max_train = int(cfg.frames.max_train_frames_per_video)
    n_test = n_test_frames_per_video(max_train, float(cfg.frames.test_fraction))
    kind = split_kind(cfg.split)
    all_held_out = kind == FRAMES and cfg.split.get("generalisation_frames", "all") == "all"
    asked = {
        DEVELOPMENT: {"train": max_train, "test": n_test},
        GENERALISATION: {GENERALISATION: int(cfg.frames.generalisation_frames_per_video)},
    }
    used = selection.groupby(["video", "role"]).size()
    per_video = {}
    for video in split.itertuples(index=False):  # frames kind: every range of a video
        roles = per_video.setdefault(video.video, {})
        for role, n in asked[video.set].items():
            if all_held_out and role == GENERALISATION:
                n = int(video.n_frames)  # every candidate frame of the held-out block
            roles[role] = {"asked": n, "used": int(used.get((video.video, role), 0))}
    trains = selection[selection["role"] == TRAIN].groupby("video").size()
    participants = split.groupby("set")["participant"].nunique()
    videos = split.groupby("set")["video"].nunique()
    frames_config = OmegaConf.to_container(cfg.frames, resolve=True)
    return {
        "name": dataset.name,
        "kind": dataset.kind,
        "source": str(dataset.root),
        "scorer": dataset.scorer,
        "bodyparts": dataset.bodyparts,
        "skeleton": dataset.skeleton,
        "cm_per_px": dataset.cm_per_px,
        "participants": {s: int(n) for s, n in participants.items()},
        "videos": {s: int(n) for s, n in videos.items()},
        "split_kind": kind,
        "generalisation_meaning": GENERALISATION_MEANING[kind],
        "min_train_frames_per_development_video": int(trains.min()) if len(trains) else 0,
        "frames_per_video": per_video,
        "config": frames_config | {"split": OmegaConf.to_container(cfg.split, resolve=True)},
    }


def _write_yaml(path: Path, content: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(content, handle, sort_keys=False)
