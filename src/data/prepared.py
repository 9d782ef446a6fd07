"""The prepared folder of a data set: split, ranked frame selection, labelled frames (written by ``src.prepare``).

``<paths.prepared_dir>/<data.name>/`` holds:

* ``split.csv``      participant, video, session, set (development | generalisation)
* ``selection.csv``  the ranked selection: participant, video, session, set, role (train | test |
  generalisation), rank, frame, image. Condition N uses the train rows with rank <= N.
* ``labels.csv``     labels of every selected frame (participant, video, frame, bodypart, x, y)
* ``labeled-data/<video>/`` the selected frames as PNGs with ``CollectedData_<scorer>.h5/.csv``,
  DeepLabCut's own layout
* ``dataset.yaml``   facts downstream stages need (bodyparts, skeleton, scale, scorer) and the
  frame counts asked for and used per video.
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from src.checks import check_config
from src.data.dataset import Dataset, load_dataset, write_collected_data
from src.data.frames import TRAIN, label_frames, n_test_frames_per_video, select_frames
from src.data.split import DEVELOPMENT, split_participants
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
            f"paths.prepared_dir puts output at {out_dir}, inside the raw data folder {dataset.root}, which "
            "the pipeline never writes to; choose a paths.prepared_dir outside it."
        )
    split = split_participants(dataset.videos, float(cfg.split.generalisation_fraction), int(cfg.split.seed))
    selection = select_frames(dataset, split, cfg.frames)
    labels = label_frames(dataset, selection, float(cfg.frames.label_noise_px), int(cfg.frames.seed))

    with atomic_directory(out_dir, key="paths.prepared_dir") as staging:
        selection["image"] = write_frame_images(dataset, selection, staging / "labeled-data")
        write_labels(labels, selection, dataset.scorer, dataset.bodyparts, staging / "labeled-data")
        split.to_csv(staging / "split.csv", index=False)
        selection.to_csv(staging / "selection.csv", index=False)
        labels.to_csv(staging / "labels.csv", index=False, float_format="%.3f")
        _write_yaml(staging / "dataset.yaml", describe(dataset, split, selection, cfg))
    log.info("prepared %d frames of %d videos into %s", len(selection), len(split), out_dir)
    return out_dir


def write_labels(labels: pd.DataFrame, selection: pd.DataFrame, scorer: str, bodyparts: list[str],
                 labeled_data: Path) -> None:
    """Write ``labeled-data/<video>/CollectedData_<scorer>.h5/.csv`` for every video of ``selection``."""
    for video, rows in selection.groupby("video"):
        images = rows.set_index("frame")["image"].map(lambda i: Path(i).name)
        write_collected_data(labels[labels["video"] == video], images, scorer, bodyparts, labeled_data / video)


def write_frame_images(dataset: Dataset, selection: pd.DataFrame, labeled_data: Path) -> pd.Series:
    """Write every selected frame as labeled-data/<video>/img<frame>.png; returns the relative paths.

    Frames of synthetic videos are decoded in one sequential pass (seeking is not frame-exact for
    every codec); frames of an imported project are copied from its labeled-data folder.
    """
    images = pd.Series(index=selection.index, dtype=object)
    if dataset.kind == "dlc_project":
        source = dataset.annotations.drop_duplicates(["video", "frame"]).set_index(["video", "frame"])["image"]
    for video, rows in selection.groupby("video"):
        folder = labeled_data / video
        folder.mkdir(parents=True, exist_ok=True)
        if dataset.kind == "dlc_project":
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
            raise DataError(f"video {info.path} ended before frames {sorted(wanted)}; restore the full video.")
    return images


def describe(dataset: Dataset, split: pd.DataFrame, selection: pd.DataFrame, cfg: DictConfig) -> dict:
    """Facts about the prepared data, including frames asked for and actually used per video."""
    max_train = int(cfg.frames.max_train_frames_per_video)
    asked = {DEVELOPMENT: {"train": max_train, "test": n_test_frames_per_video(max_train, float(cfg.frames.test_fraction))},
             "generalisation": {"generalisation": int(cfg.frames.generalisation_frames_per_video)}}
    used = selection.groupby(["video", "role"]).size()
    per_video = {}
    for video in split.itertuples(index=False):
        per_video[video.video] = {
            role: {"asked": n, "used": int(used.get((video.video, role), 0))}
            for role, n in asked[video.set].items()
        }
    trains = selection[selection["role"] == TRAIN].groupby("video").size()
    return {
        "name": dataset.name,
        "kind": dataset.kind,
        "source": str(dataset.root),
        "scorer": dataset.scorer,
        "bodyparts": dataset.bodyparts,
        "skeleton": dataset.skeleton,
        "cm_per_px": dataset.cm_per_px,
        "participants": {s: int(n) for s, n in split.groupby("set")["participant"].nunique().items()},
        "videos": {s: int(n) for s, n in split.groupby("set").size().items()},
        "min_train_frames_per_development_video": int(trains.min()) if len(trains) else 0,
        "frames_per_video": per_video,
        "config": OmegaConf.to_container(cfg.frames, resolve=True) | {"split": OmegaConf.to_container(cfg.split, resolve=True)},
    }


def read_prepared(prepared_dir: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """dataset.yaml, selection.csv and labels.csv of a prepared folder."""
    meta = Path(prepared_dir) / "dataset.yaml"
    if not meta.is_file():
        raise DataError(f"{meta} does not exist; prepare the frames first: `python -m src.prepare` (or `dvc repro`).")
    for path in (meta.parent / "selection.csv", meta.parent / "labels.csv"):
        if not path.is_file():
            raise DataError(f"{path} does not exist: {meta.parent} is incomplete (edited or damaged by hand); "
                            "prepare it again: `python -m src.prepare` (or `dvc repro prepare`).")
    try:
        facts = yaml.safe_load(meta.read_text(encoding="utf-8"))
        tables = pd.read_csv(meta.parent / "selection.csv"), pd.read_csv(meta.parent / "labels.csv")
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise DataError(f"{meta.parent} cannot be read ({type(error).__name__}: {error}); "
                        "prepare it again: `python -m src.prepare` (or `dvc repro prepare`).") from error
    if not isinstance(facts, dict) or "config" not in facts:
        raise DataError(f"{meta} is not a dataset.yaml written by src.prepare; prepare again: `python -m src.prepare`.")
    return (facts, *tables)


@dataclass
class Condition:
    """The prepared frames a labelled-frames condition is trained and evaluated on."""

    labelled_frames: int      # labelled frames per development video (the condition)
    prepared_dir: Path
    facts: dict               # dataset.yaml
    frames: pd.DataFrame      # the condition's frames, with set = train | test | generalisation
    labels: pd.DataFrame      # labels.csv


def load_condition(cfg: DictConfig) -> Condition:
    """The prepared data of ``cfg.data`` and the frames of condition ``cfg.labelled_frames``, checked.

    Checks the settings every stage of a condition reads (src.train, src.evaluate) before any work.
    """
    check_config(cfg, "labelled_frames", "training", "evaluation")
    prepared_dir = Path(cfg.paths.prepared_dir) / cfg.data.name
    facts, selection, labels = read_prepared(prepared_dir)
    n_frames = cfg.labelled_frames
    largest = int(facts["config"]["max_train_frames_per_video"])
    if not isinstance(n_frames, int) or not 0 <= n_frames <= largest:
        raise DataError(f"labelled_frames={n_frames!r} is not an integer from 0 to {largest}, the frames prepared per "
                        f"video (frames.max_train_frames_per_video); choose one, or prepare more frames.")
    available = [roles["train"]["used"] for roles in facts.get("frames_per_video", {}).values() if "train" in roles]
    if available and n_frames > max(available):
        raise DataError(f"labelled_frames={n_frames} asks for more labelled frames than exist: no development video in "
                        f"{prepared_dir / 'dataset.yaml'} has more than {max(available)} train frame(s) (frames_per_video), "
                        f"so it would repeat labelled_frames={max(available)}; choose labelled_frames <= {max(available)}, "
                        "or add longer videos (more labelled frames) and prepare again.")
    if 0 < facts["min_train_frames_per_development_video"] < n_frames:
        log.warning("some development videos have only %d selected frames; they contribute all of them",
                    facts["min_train_frames_per_development_video"])
    return Condition(n_frames, prepared_dir, facts, condition_frames(selection, n_frames), labels)


def condition_frames(selection: pd.DataFrame, n_frames: int) -> pd.DataFrame:
    """The frames a condition is trained and evaluated on, with ``set`` = train | test | generalisation."""
    frames = selection[(selection["role"] != "train") | (selection["rank"] <= n_frames)].copy()
    frames["set"] = frames["role"]
    return frames.reset_index(drop=True)


def _write_yaml(path: Path, content: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(content, handle, sort_keys=False)
