"""The data layer's one table: :class:`Dataset`, what every kind's loader returns.

A leaf: it imports no loader (they import it), so loading a kind never imports this module's
importers back (src/data/dataset.py holds the registry of kinds).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ANNOTATION_COLUMNS = ["participant", "video", "frame", "bodypart", "x", "y"]


@dataclass
class Dataset:
    """A loaded data set: its videos, its annotations and the facts needed downstream."""

    name: str
    kind: str  # data.kind: a name of src.data.dataset.KINDS
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
    # Its frames are labelled images (DeepLabCut, Lightning Pose), not frames of videos: frames
    # are then selected from and copied from annotations["image"] rather than decoded from
    # videos["path"]. The kind's LABELLED_IMAGES (src.data.contract.Loader).
    has_labelled_images: bool = False
