"""The data layer's one table: a data set loaded as its videos and one table of annotations.

Four kinds of data set are understood (``data.kind`` in ``conf/data/``), each loaded by its own
module:

* ``synthetic`` (:mod:`src.data.synthetic`): a cohort written by ``src.cohort`` (videos,
  ``ground_truth.csv``, ``participants.csv``, ``dataset.yaml``); every frame has exact ground truth.
* ``dlc_project`` (:mod:`src.data.dlc_project`): an existing DeepLabCut project (``config.yaml``,
  ``videos/``, ``labeled-data/<video>/CollectedData_<scorer>.h5`` or ``.csv``); its labelled
  frames are the pool.
* ``lightning_pose`` (:mod:`src.data.lightning_pose`): a Lightning Pose data set (one
  ``CollectedData.csv`` for all frames, images under ``labeled-data/``); loaded like a DeepLabCut
  project, each ``labeled-data/<session>`` folder a video.
* ``videos`` (:mod:`src.data.videos`): a folder of new recordings with no labels yet; frames are
  selected from every video frame and exported for labelling (``src.labelling``).

All give a :class:`Dataset` whose ``annotations`` table has one row per
(participant, video, frame, bodypart) with pixel coordinates x, y (NaN where not labelled).
Raw data is only ever read: nothing under a data set's root is written, moved or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from src.errors import DataError

ANNOTATION_COLUMNS = ["participant", "video", "frame", "bodypart", "x", "y"]

# Kinds whose frames are labelled image files (annotations["image"]), not frames of videos.
LABELLED_IMAGE_KINDS = ("dlc_project", "lightning_pose")


@dataclass
class Dataset:
    """A loaded data set: its videos, its annotations and the facts needed downstream."""

    name: str
    kind: str  # "synthetic" | "dlc_project" | "lightning_pose" | "videos"
    root: Path
    bodyparts: list[str]
    skeleton: list[list[str]]
    cm_per_px: float | None
    scorer: str
    # One row per video: participant, video, session, path (or None), n_frames, width, height.
    videos: pd.DataFrame
    # One row per (participant, video, frame, bodypart): ANNOTATION_COLUMNS, plus `image`
    # (path of the labelled image relative to root) for kinds with labelled images.
    annotations: pd.DataFrame

    @property
    def has_labelled_images(self) -> bool:
        """Its frames are labelled images (DeepLabCut, Lightning Pose), not frames of videos.

        Frames are then selected from and copied from ``annotations["image"]`` rather than decoded
        from ``videos["path"]``.
        """
        return self.kind in LABELLED_IMAGE_KINDS


def load_dataset(data_cfg) -> Dataset:
    """Load the data set described by a ``conf/data/*.yaml`` config."""
    # The loaders build a Dataset: imported here, as they import this module.
    from src.data.dlc_project import load_dlc_project
    from src.data.lightning_pose import load_lightning_pose
    from src.data.synthetic import load_synthetic
    from src.data.videos import load_videos

    kind = data_cfg.kind
    participants = data_cfg.get("participants", {}) or {}
    if kind == "synthetic":
        return load_synthetic(Path(data_cfg.root), name=data_cfg.name)
    if kind == "dlc_project":
        return load_dlc_project(
            Path(data_cfg.root),
            name=data_cfg.name,
            scorer=data_cfg.get("scorer"),
            participants_table=participants.get("table"),
            participant_pattern=participants.get("pattern"),
            cm_per_px=data_cfg.get("cm_per_px"),
        )
    if kind == "lightning_pose":
        return load_lightning_pose(
            Path(data_cfg.root),
            name=data_cfg.name,
            csv_file=data_cfg.get("csv_file"),
            lp_config=data_cfg.get("config"),
            video_pattern=data_cfg.get("video_pattern"),
            participants_table=participants.get("table"),
            participant_pattern=participants.get("pattern"),
            cm_per_px=data_cfg.get("cm_per_px"),
        )
    if kind == "videos":
        return load_videos(
            Path(data_cfg.root),
            name=data_cfg.name,
            bodyparts=list(data_cfg.bodyparts),
            skeleton=[list(pair) for pair in data_cfg.get("skeleton") or []],
            participants_table=participants.get("table"),
            participant_pattern=participants.get("pattern"),
            cm_per_px=data_cfg.get("cm_per_px"),
        )
    raise DataError(
        f"data.kind={kind!r} is unknown; choose synthetic, dlc_project, lightning_pose or videos "
        "(conf/data/)."
    )
