"""Frame selection: candidate frames, their features, the strategy's ranked picks, the test frames.

For every video and set (development, generalisation), the frame-selection strategy
(``frames.strategy``, :mod:`src.data.selection`; ``kmeans`` by default) ranks the candidate frames
so that labelled-frames conditions are nested: the condition with N labelled frames uses ranks
1..N, and every larger condition contains every smaller one. The development test frames are
drawn afterwards, once per video, from the same picks (:func:`draw_test_frames`, whatever the
strategy) and are shared by all conditions.

With ``split=frames`` a video's candidate frames are divided first (:func:`src.data.split.frame_sets`):
train and test frames are picked from the frames outside its held-out block, generalisation frames
from inside it (all of them, or ``frames.generalisation_frames_per_video`` ranked ones:
``split.generalisation_frames``).
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pandas as pd

from src.data import selection
from src.data.split import DEVELOPMENT, FRAMES, GENERALISATION, frame_sets, split_kind
from src.data.table import Dataset
from src.errors import DataError

log = logging.getLogger(__name__)


TRAIN, TEST = "train", "test"


SELECTION_COLUMNS = ["participant", "video", "session", "set", "role", "rank", "frame"]


def video_features(
    path: str | Path, size: tuple[int, int], max_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Downsampled grey frames of a video, read in one sequential pass.

    Returns (frame indices, features of shape (n, width*height)). Videos longer than
    ``max_frames`` are subsampled evenly; ``grab`` skips the colour conversion of skipped frames.
    """
    capture = cv2.VideoCapture(str(path))
    n_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    step = max(1, math.ceil(n_frames / max_frames))
    indices, features = [], []
    index = 0
    while capture.grab():
        if index % step == 0:
            ok, frame = capture.retrieve()
            if not ok:
                break
            indices.append(index)
            features.append(_downsample(frame, size))
        index += 1
    capture.release()
    if not features:
        raise DataError(
            f"video {path} yielded no frames; re-export it (e.g. with ffmpeg) and try again."
        )
    return np.asarray(indices), np.stack(features)


def image_features(paths: list[Path], size: tuple[int, int]) -> np.ndarray:
    """Downsampled grey versions of image files (frames of any size give the same feature size)."""
    features = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(
                f"{path} cannot be read as an image; restore the frame or remove its label row."
            )
        features.append(_downsample(image, size))
    return np.stack(features)


def _downsample(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32).ravel() / 255.0


def rank_kmeans(features: np.ndarray, n_picks: int, seed: int) -> np.ndarray:
    """The ``kmeans`` strategy's ranking (:func:`src.data.selection.kmeans.rank`)."""
    return selection.module("kmeans").rank(features, n_picks, seed)


def n_test_frames_per_video(max_train_frames: int, test_fraction: float) -> int:
    """Test frames drawn per development video so that they make ``test_fraction`` of its picks."""
    if not 0 < test_fraction < 1:
        raise DataError(
            f"frames.test_fraction={test_fraction} must lie strictly between 0 and 1 (paper: 0.05)."
        )
    return max(1, round(max_train_frames * test_fraction / (1 - test_fraction)))


def video_seeds(seed: int, video: str) -> list[int]:
    """Random streams of one video, derived from its name: adding videos leaves the others as they
    are."""
    return [seed, zlib.crc32(video.encode("utf-8"))]


@dataclass(frozen=True)
class _Settings:
    """What select_frames reads of conf/frames/ and conf/split/, checked once."""

    size: tuple[int, int]  # features: width, height in pixels
    max_frames: int  # frames.max_frames_for_clustering
    max_train: int  # frames.max_train_frames_per_video
    n_generalisation: int  # frames.generalisation_frames_per_video
    n_test: int  # fixed test frames per development video
    seed: int
    all_held_out: (
        bool  # split=frames: every candidate of a held-out block is a generalisation frame
    )
    strategy: ModuleType  # src.data.selection.<frames.strategy>


def _settings(frames_cfg, split_cfg) -> _Settings:
    size = (int(frames_cfg.features.width_px), int(frames_cfg.features.height_px))
    for key in ("max_train_frames_per_video", "generalisation_frames_per_video"):
        if int(frames_cfg[key]) < 1:
            raise DataError(f"frames.{key}={frames_cfg[key]} must be at least 1 (conf/frames/).")
    n_test = n_test_frames_per_video(
        int(frames_cfg.max_train_frames_per_video), float(frames_cfg.test_fraction)
    )
    all_held_out = (
        split_cfg is not None
        and split_kind(split_cfg) == FRAMES
        and split_cfg.get("generalisation_frames", "all") == "all"
    )
    return _Settings(
        size=size,
        max_frames=int(frames_cfg.max_frames_for_clustering),
        max_train=int(frames_cfg.max_train_frames_per_video),
        n_generalisation=int(frames_cfg.generalisation_frames_per_video),
        n_test=n_test,
        seed=int(frames_cfg.seed),
        all_held_out=all_held_out,
        strategy=selection.strategy(frames_cfg),
    )


def select_frames(
    dataset: Dataset, split: pd.DataFrame, frames_cfg, split_cfg=None, shared: dict | None = None
) -> pd.DataFrame:
    """Ranked selection of every video of ``split``, one row per selected frame.

    ``split_cfg`` (conf/split/; None: a participant split) says, for ``split=frames``, whether all
    candidate frames of a held-out block become generalisation frames (``generalisation_frames:
    all``, ranked by frame number) or ``frames.generalisation_frames_per_video`` ranked ones.
    ``shared``: a dict kept across calls on the same data and frames settings (the folds of
    ``split=kfold``): each video's features are computed once, and its ranked picks once per set
    (they depend only on the video, its set and the seed). Columns: SELECTION_COLUMNS.
    """
    shared = {} if shared is None else shared
    settings = _settings(frames_cfg, split_cfg)
    rows = []
    for video in split.drop_duplicates("video").itertuples(index=False):
        if video.video not in shared:
            shared[video.video] = _pool(dataset, video.video, settings.size, settings.max_frames)
        frame_numbers, features = shared[video.video]
        sets = frame_sets(split, video.video, frame_numbers)
        for set_name in (DEVELOPMENT, GENERALISATION):
            in_set = sets == set_name
            if not in_set.any():
                continue
            picked, roles = _picks(dataset, video.video, set_name, in_set, settings, shared)
            for role in np.unique(roles):
                for rank, frame in enumerate(picked[roles == role], start=1):
                    rows.append(
                        dict(
                            participant=video.participant,
                            video=video.video,
                            session=video.session,
                            set=set_name,
                            role=role,
                            rank=rank,
                            frame=int(frame),
                        )
                    )
    return pd.DataFrame(rows, columns=SELECTION_COLUMNS)


def _picks(
    dataset: Dataset,
    video: str,
    set_name: str,
    in_set: np.ndarray,
    settings: _Settings,
    shared: dict,
) -> tuple[np.ndarray, np.ndarray]:
    """The frames of one video's set, in rank order, and the role of each (kept in ``shared``)."""
    frame_numbers, features = shared[video]
    if set_name == GENERALISATION and settings.all_held_out:
        picked = frame_numbers[in_set]  # every candidate of the block, in frame order
        return picked, np.full(len(picked), GENERALISATION)
    key = (video, set_name, in_set.tobytes())
    if key not in shared:
        shared[key] = _ranked_roles(
            dataset, video, set_name, frame_numbers[in_set], features[in_set], settings
        )
    return shared[key]


def _ranked_roles(
    dataset: Dataset,
    video: str,
    set_name: str,
    frame_numbers: np.ndarray,
    features: np.ndarray,
    settings: _Settings,
) -> tuple[np.ndarray, np.ndarray]:
    """The strategy's ranked picks among one video's candidates of one set, and the role of each."""
    development = set_name == DEVELOPMENT
    wanted = settings.max_train + settings.n_test if development else settings.n_generalisation
    if len(frame_numbers) < wanted:
        log.warning(
            "%s: %d frame(s) asked, only %d available; all are used",
            video,
            wanted,
            len(frame_numbers),
        )
    seeds = video_seeds(settings.seed, video)
    ranked = frame_numbers[settings.strategy.rank(features, wanted, sum(seeds) % 2**32)]
    if set_name != DEVELOPMENT:
        return ranked, np.full(len(ranked), GENERALISATION)
    return ranked, draw_test_frames(dataset, video, ranked, settings.n_test, seeds)


def draw_test_frames(
    dataset: Dataset, video: str, ranked: np.ndarray, n_test: int, seeds: list[int]
) -> np.ndarray:
    """The role (train or test) of each ranked development pick of a video: ``n_test`` fixed test
    frames drawn at random (seeded by the video), whatever strategy ranked the picks."""
    if len(ranked) < 2:
        fix = (
            "label more frames of it in DeepLabCut, or remove its labeled-data folder"
            if dataset.has_labelled_images
            else "use a longer recording, or remove the video from data.root"
        )
        raise DataError(
            f"development video {video} of {dataset.root} has {len(ranked)} usable "
            f"frame(s); at least 2 (one train, one test) are needed: {fix}."
        )
    rng = np.random.default_rng(seeds)
    is_test = np.zeros(len(ranked), bool)
    tests = rng.choice(len(ranked), size=min(n_test, len(ranked) - 1), replace=False)
    is_test[tests] = True
    return np.where(is_test, TEST, TRAIN)


def candidate_frames(dataset: Dataset, video: str) -> np.ndarray:
    """The frame numbers a video's frames are selected from, without decoding anything: an
    imported DeepLabCut project's labelled frames, every frame of a video otherwise (the frames
    split holds out a block of them)."""
    if _labelled_pool(dataset):
        return _labelled_images(dataset, video)["frame"].to_numpy()
    n_frames = dataset.videos.set_index("video").loc[video, "n_frames"]
    return np.arange(int(n_frames))


def _labelled_pool(dataset: Dataset) -> bool:
    """Whether a data set's candidate frames are its labelled images (an imported project), not
    every frame of its videos."""
    return dataset.has_labelled_images


def _labelled_images(dataset: Dataset, video: str) -> pd.DataFrame:
    """One annotation row per labelled frame (at least one labelled point) of a DeepLabCut
    project's video, in frame order."""
    labelled = dataset.annotations[dataset.annotations["video"] == video].dropna(subset=["x", "y"])
    images = labelled.drop_duplicates("frame").sort_values("frame")
    if images.empty:
        raise DataError(
            f"{dataset.root / 'labeled-data' / video}: its CollectedData_{dataset.scorer} file "
            "labels no point in any frame; label some frames in DeepLabCut, or remove the folder "
            "from the project (a copy of it)."
        )
    return images


def _pool(dataset: Dataset, video: str, size, max_frames) -> tuple[np.ndarray, np.ndarray]:
    """Candidate frames of a video and their features: every frame of a video, or, for an imported
    DeepLabCut project, its labelled frames (those with at least one labelled point)."""
    if not _labelled_pool(dataset):
        path = dataset.videos.set_index("video").loc[video, "path"]
        return video_features(path, size, max_frames)
    images = _labelled_images(dataset, video)
    return images["frame"].to_numpy(), image_features(
        [dataset.root / i for i in images["image"]], size
    )


def label_frames(
    dataset: Dataset, selection: pd.DataFrame, label_noise_px: float, seed: int
) -> pd.DataFrame:
    """Labels of the selected frames, one row per (video, frame, bodypart).

    Synthetic cohorts get the ground truth plus Gaussian labelling error (SD ``label_noise_px``
    per coordinate, clipped to the image); imported projects keep their human labels as they are;
    unlabelled videos get NaN, to be labelled through ``src.labelling``.
    """
    keys = selection[["participant", "video", "frame"]].drop_duplicates()
    if dataset.annotations.empty:  # not labelled yet: every point NaN until labels are imported
        keys = keys.merge(pd.DataFrame({"bodypart": dataset.bodyparts}), how="cross")
    labels = keys.merge(dataset.annotations, on=list(keys.columns), how="left")
    labels = labels.sort_values(["video", "frame"], kind="stable").reset_index(drop=True)
    if dataset.kind == "synthetic" and label_noise_px > 0:
        sizes = dataset.videos.set_index("video")
        for video, rows in labels.groupby("video"):
            rng = np.random.default_rng(video_seeds(seed, video) + [1])
            noise = rng.normal(0.0, label_noise_px, size=(len(rows), 2))
            labels.loc[rows.index, "x"] = np.clip(
                rows["x"] + noise[:, 0], 0, sizes.at[video, "width"] - 1
            )
            labels.loc[rows.index, "y"] = np.clip(
                rows["y"] + noise[:, 1], 0, sizes.at[video, "height"] - 1
            )
    return labels[["participant", "video", "frame", "bodypart", "x", "y"]]
