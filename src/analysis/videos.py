"""The videos an analysis reads: which files, their frame rate, size and length, and where the
outputs may not go (raw data are only read)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from src.data.videos import VIDEO_SUFFIXES, probe_video
from src.errors import DataError


@dataclass
class VideoInfo:
    path: Path
    fps: float
    n_frames: int
    width: int
    height: int


def videos_to_analyse(cfg: DictConfig) -> list[Path]:
    """``analysis.videos``, or with ``analysis.compare_ground_truth`` the synthetic cohort's
    generalisation videos."""
    if cfg.analysis.videos:
        return collect_videos(list(cfg.analysis.videos))
    if cfg.analysis.compare_ground_truth:
        return generalisation_videos(cfg)
    raise DataError(
        "no videos to analyse: give analysis.videos=[<file or folder>, ...] (or, on synthetic "
        "data, analysis.compare_ground_truth=true for its generalisation videos)."
    )


def collect_videos(entries: list[str]) -> list[Path]:
    """Video files named in ``entries`` (files, or folders whose video files are taken), in a
    stable order."""
    videos = []
    for entry in entries:
        path = Path(str(entry))
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
            )
            if not found:
                raise DataError(
                    f"{path} holds no video files ({', '.join(sorted(VIDEO_SUFFIXES))}); "
                    "point analysis.videos at video files or a folder of them."
                )
            videos += found
        elif path.is_file():
            videos.append(path)
        else:
            raise DataError(
                f"{path} does not exist; fix the path in analysis.videos (quote paths with "
                "spaces: 'analysis.videos=[\"/data/Aufnahmen März/a.mp4\"]')."
            )
    stems = [v.stem for v in videos]
    if len(set(stems)) != len(stems):
        raise DataError(
            f"two videos share a name ({sorted({s for s in stems if stems.count(s) > 1})}): "
            "their outputs would collide; analyse them in separate runs."
        )
    return videos


def generalisation_videos(cfg: DictConfig) -> list[Path]:
    """The video files of the generalisation participants (prepared split.csv) of the configured
    data set."""
    split_file = Path(cfg.paths.prepared_dir) / str(cfg.data.name) / "split.csv"
    if not split_file.is_file():
        raise DataError(
            f"{split_file} does not exist; prepare the data set first (`python -m src.prepare`)."
        )
    split = pd.read_csv(split_file)
    if "first_frame" in split:  # split=frames: every video has a held-out block, none is unseen
        raise DataError(
            f"{split_file} is a frames split (split=frames): its generalisation frames are blocks of "
            "every video, so no whole video is unseen; give the videos to analyse with analysis.videos=[...]."
        )
    names = (
        split.loc[split["set"] == "generalisation", "video"].astype(str).drop_duplicates().tolist()
    )
    folder = Path(str(cfg.data.root)) / "videos"
    videos = []
    for name in names:
        found = sorted(p for p in folder.glob(f"{name}.*") if p.suffix.lower() in VIDEO_SUFFIXES)
        if not found:
            raise DataError(
                f"no video file {folder / name}.* for generalisation video {name} of "
                f"{split_file}; regenerate the cohort (`python -m src.cohort`)."
            )
        videos.append(found[0])
    return videos


def read_video_info(path: Path) -> VideoInfo:
    """fps, frame count and size of a video; a DataError when it is missing, empty or cannot be
    decoded."""
    import cv2

    n_frames, width, height = probe_video(path)
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    if not fps or fps <= 0 or not np.isfinite(fps):
        raise DataError(f"{path} states no frame rate; re-encode it with one (ffmpeg -r 25 ...).")
    return VideoInfo(path, float(fps), n_frames, width, height)


def check_output_dir(output_dir: Path, videos: list[Path], data_root: str | None) -> None:
    """Raw data are read only: refuse an output folder inside a video's folder or the data set's
    root."""
    output = output_dir.resolve()
    protected = {v.parent.resolve() for v in videos} | (
        {Path(data_root).resolve()} if data_root else set()
    )
    for folder in protected:
        if output == folder or folder in output.parents:
            raise DataError(
                f"analysis.output_dir={output_dir} lies inside {folder}, which holds raw data "
                "that is only read; choose a folder outside it (default: "
                "<paths.data_dir>/analysis)."
            )
