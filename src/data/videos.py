"""Video files: probing them, and the ``videos`` kind of data set (new recordings, no labels yet).

Frames of a ``videos`` data set are selected from every video frame and exported for labelling
(``src.labelling``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import pandas as pd

from src.data.participants import participants_for
from src.data.table import ANNOTATION_COLUMNS, Dataset
from src.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".wmv")


KIND = "videos"
LABELLED_IMAGES = False  # frames are decoded from its videos


def load(data_cfg) -> Dataset:
    """The recordings of ``conf/data/videos.yaml``."""
    participants = data_cfg.get("participants", {}) or {}
    return load_videos(
        Path(data_cfg.root),
        name=data_cfg.name,
        bodyparts=list(data_cfg.bodyparts),
        skeleton=[list(pair) for pair in data_cfg.get("skeleton") or []],
        participants_table=participants.get("table"),
        participant_pattern=participants.get("pattern"),
        cm_per_px=data_cfg.get("cm_per_px"),
    )


# why: one keyword per key of its conf/data/*.yaml, as load() above reads them
def load_videos(
    root: Path,
    *,
    name: str,
    bodyparts: list[str],
    skeleton: list[list[str]],
    participants_table: str | None = None,
    participant_pattern: str | None = None,
    cm_per_px: float | None = None,
) -> Dataset:
    """A folder of new recordings without labels: frames are selected from them for labelling."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"data.root={root} is not a folder; point it at the folder holding your videos."
        )
    paths = sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        raise DataError(
            f"{root} holds no video files ({', '.join(VIDEO_SUFFIXES)}); "
            "point data.root at your videos."
        )
    if not bodyparts or len(set(bodyparts)) != len(bodyparts):
        raise DataError(
            "data.bodyparts must list each bodypart to label once (conf/data/videos.yaml)."
        )
    mapping = participants_for(
        [p.stem for p in paths], participants_table, participant_pattern, root
    )
    videos = []
    for path in paths:
        n_frames, width, height = probe_video(path)
        videos.append(
            dict(
                participant=mapping[path.stem][0],
                video=path.stem,
                session=mapping[path.stem][1],
                path=str(path),
                n_frames=n_frames,
                width=width,
                height=height,
            )
        )
    return Dataset(
        name=name,
        kind=KIND,
        has_labelled_images=LABELLED_IMAGES,
        root=root,
        bodyparts=list(bodyparts),
        skeleton=skeleton,
        cm_per_px=float(cm_per_px) if cm_per_px else None,
        scorer="manual",
        videos=pd.DataFrame(videos),
        annotations=pd.DataFrame(columns=ANNOTATION_COLUMNS),
    )


def probe_video(path: Path) -> tuple[int, int, int]:
    """(frame count, width, height) of a video, or a DataError if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"video {path} does not exist; restore it, or remove it from the participants table."
        )
    if path.stat().st_size == 0:
        raise DataError(f"video {path} is empty (0 bytes); restore it from the original recording.")
    capture = cv2.VideoCapture(str(path))
    try:
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            raise DataError(
                f"video {path} cannot be decoded by OpenCV (corrupt or unsupported codec); "
                "re-export it as H.264/MPEG-4 .mp4, e.g. `ffmpeg -i in -c:v libx264 out.mp4`."
            )
        n_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        height, width = frame.shape[:2]
    finally:
        capture.release()
    return n_frames, width, height
