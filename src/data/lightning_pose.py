"""The ``lightning_pose`` kind of data set: a Lightning Pose data folder (single view, one subject).

Lightning Pose keeps the labels of every frame in one CSV, ``<data_dir>/CollectedData.csv``, in
DeepLabCut's layout (header rows scorer, bodyparts, coords; one row per image, its path relative
to the data folder in the first column, e.g. ``labeled-data/<session>/img0001.png``; empty cells
for unlabelled points). Each image's folder is its video (session); a flat ``labeled-data/`` is
one video named ``labeled-data`` unless ``data.video_pattern`` groups its images. The data set is
loaded into the same :class:`~src.data.table.Dataset` as a DeepLabCut project, so everything
downstream treats both alike. Nothing in the folder is modified.
"""

from __future__ import annotations

import glob
import logging
import re
from pathlib import Path

import pandas as pd
from PIL import Image

from src.data.collected_data import (
    check_frame_numbers,
    check_header,
    image_path_parts,
    long_labels,
    read_collected_data,
)
from src.data.participants import participants_for
from src.data.table import ANNOTATION_COLUMNS, Dataset
from src.data.validation import override, read_yaml
from src.data.videos import VIDEO_SUFFIXES, probe_video
from src.errors import DataError

log = logging.getLogger(__name__)

DEFAULT_CSV = "CollectedData.csv"


KIND = "lightning_pose"
LABELLED_IMAGES = True  # its labelled images are the candidate frames


def load(data_cfg) -> Dataset:
    """The data folder of ``conf/data/lightning_pose.yaml``."""
    participants = data_cfg.get("participants", {}) or {}
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


# why: one keyword per key of its conf/data/*.yaml, as load() above reads them
def load_lightning_pose(
    root: Path,
    *,
    name: str | None = None,
    csv_file: str | None = None,
    lp_config: str | None = None,
    video_pattern: str | None = None,
    participants_table: str | None = None,
    participant_pattern: str | None = None,
    cm_per_px: float | None = None,
) -> Dataset:
    """Load a Lightning Pose data folder's labelled frames.

    ``root`` holds the labels CSV (``csv_file``; else the Lightning Pose config's
    ``data.csv_file``; else ``CollectedData.csv``) and the images it names. ``lp_config``, a
    Lightning Pose YAML config, optionally gives the keypoint names (checked against the CSV), the
    CSV's name, the videos' folder and the image size.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"data.root={root} is not a folder; set it to the Lightning Pose data folder (the one "
            "that holds CollectedData.csv and labeled-data/)."
        )
    settings = _lp_settings(lp_config)
    csv_path = _labels_file(root, csv_file, settings, lp_config)
    wide = read_collected_data(csv_path)
    scorer = check_header(wide, csv_path, None)
    bodyparts, where = _bodyparts(wide, settings, lp_config)
    images = [_image_path(index) for index in wide.index]
    long = long_labels(wide, csv_path, root, images, bodyparts, where)
    long["video"] = _videos_of(long["image"], video_pattern, csv_path, root)
    check_frame_numbers(long, csv_path)
    _check_image_dims(root, long["image"].unique(), settings.get("image_orig_dims"), lp_config)

    video_names = sorted(long["video"].unique())
    mapping = participants_for(video_names, participants_table, participant_pattern, csv_path)
    long["participant"] = long["video"].map(lambda v: mapping[v][0])
    video_dir = _video_dir(root, settings.get("video_dir"))
    annotations = long.sort_values(["video", "frame"], kind="stable").reset_index(drop=True)
    return Dataset(
        name=name or root.name,
        kind=KIND,
        has_labelled_images=LABELLED_IMAGES,
        root=root,
        bodyparts=bodyparts,
        skeleton=[],
        cm_per_px=float(cm_per_px) if cm_per_px else None,
        scorer=scorer,
        videos=_session_videos(video_dir, video_names, mapping),
        annotations=annotations[ANNOTATION_COLUMNS + ["image"]],
    )


def _labels_file(root: Path, csv_file: str | None, settings: dict, lp_config: str | None) -> Path:
    """The labels CSV of the data folder ``root``, which must exist."""
    csv_path = root / str(csv_file or settings.get("csv_file") or DEFAULT_CSV)
    if not csv_path.is_file():
        if (root / "config.yaml").is_file() and (root / "labeled-data").is_dir():
            raise DataError(
                f"{csv_path} does not exist, but {root / 'config.yaml'} does: this looks like a "
                "DeepLabCut project; load it with "
                f"`data=dlc_project {override('data.root', root)}`."
            )
        raise DataError(
            f"{csv_path} does not exist; set data.root to the Lightning Pose data folder (the one "
            "that holds CollectedData.csv and labeled-data/), or data.csv_file to the labels "
            "file's name in it."
        )
    if settings.get("data_dir") and Path(settings["data_dir"]) != root:
        log.info("%s: data.data_dir %r ignored; using %s", lp_config, settings["data_dir"], root)
    return csv_path


def _bodyparts(wide: pd.DataFrame, settings: dict, lp_config: str | None) -> tuple[list, tuple]:
    """The bodyparts (the config's keypoint names, else the CSV's) and where they come from (the
    source and the fix named when the CSV differs)."""
    in_file = list(dict.fromkeys(wide.columns.get_level_values("bodyparts")))
    keypoints = settings.get("keypoint_names") or settings.get("keypoints")
    if not keypoints:
        return in_file, ("its own header", "")
    bodyparts = [str(k) for k in keypoints]
    where = (
        f"the keypoint names (data.keypoint_names) of {lp_config}",
        "make data.keypoint_names list the CSV's keypoints, or leave data.config out",
    )
    if len(set(bodyparts)) != len(bodyparts):
        raise DataError(
            f"{lp_config} lists a keypoint twice in data.keypoint_names; remove the duplicate."
        )
    return bodyparts, where


def _session_videos(video_dir, video_names: list[str], mapping: dict) -> pd.DataFrame:
    """One row per video (session); its file in ``video_dir``, when there, probed."""
    videos = []
    for video in video_names:
        path = _find_video(video_dir, video)
        n_frames = width = height = None
        if path is not None:
            n_frames, width, height = probe_video(path)
        videos.append(
            dict(
                participant=mapping[video][0],
                video=video,
                session=mapping[video][1],
                path=str(path) if path else None,
                n_frames=n_frames,
                width=width,
                height=height,
            )
        )
    return pd.DataFrame(videos)


def _lp_settings(lp_config: str | None) -> dict:
    """The ``data:`` section of a Lightning Pose config (empty without one)."""
    if not lp_config:
        return {}
    path = Path(lp_config)
    if not path.is_file():
        raise DataError(
            f"data.config={path} does not exist; give the path of your Lightning Pose config "
            "(the YAML with a data: section), or leave data.config out (null)."
        )
    data = read_yaml(path).get("data")
    if not isinstance(data, dict):
        raise DataError(
            f"{path} has no `data:` section; it is not a Lightning Pose config: give the one you "
            "train with, or leave data.config out (null)."
        )
    if isinstance(data.get("csv_file"), list):
        raise DataError(
            f"{path} is a multi-view config (data.csv_file is a list); only single-view data sets "
            "are supported: give one view's CSV with data.csv_file=<file> and leave data.config "
            "out."
        )
    return data


def _image_path(index) -> str:
    """A CSV row's image path, relative to the data folder, with / (Windows \\ too)."""
    return "/".join(image_path_parts(index))


def _videos_of(images: pd.Series, pattern: str | None, source: Path, root: Path) -> pd.Series:
    """The video (session) of each image: its folder's name (``root``'s for an image at the top),
    or ``pattern``'s ``video`` group."""
    if not pattern:
        return images.map(lambda i: Path(i).parent.name or root.name)
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise DataError(
            f"data.video_pattern {pattern!r} is not a valid regular expression ({error}); fix "
            "it, e.g. '^labeled-data/(?P<video>[^_]+)_' (quote it on the command line)."
        ) from None
    if "video" not in regex.groupindex:
        raise DataError(
            f"data.video_pattern {pattern!r} has no (?P<video>...) group; add one, e.g. "
            "'^labeled-data/(?P<video>[^_]+)_'."
        )
    videos = {}
    for image in images.unique():
        match = regex.search(image)
        if not match or not match.group("video") or "/" in match.group("video"):
            raise DataError(
                f"image {image} (in {source}) does not match data.video_pattern {pattern!r} with "
                "a (?P<video>...) group without '/'; fix the pattern, or set it to null to use "
                "each image's folder as its video."
            )
        videos[image] = match.group("video")
    return images.map(videos)


def _check_image_dims(root: Path, images, dims, lp_config) -> None:
    """Warn when frames differ from the config's data.image_orig_dims (Lightning Pose assumes
    one size; this project does not need it)."""
    if not isinstance(dims, dict) or not dims.get("width") or not dims.get("height"):
        return
    expected = (int(dims["width"]), int(dims["height"]))
    other = []
    for image in images:
        with Image.open(root / image) as frame:
            if frame.size != expected:
                other.append(f"{image} ({frame.size[0]}x{frame.size[1]})")
    if other:
        log.warning(
            "%d labelled frame(s) differ from data.image_orig_dims %dx%d of %s, e.g. %s",
            len(other),
            *expected,
            lp_config,
            other[0],
        )


def _video_dir(root: Path, video_dir: str | None) -> Path:
    """Where the videos are: the config's data.video_dir (relative to root, or absolute) if it
    exists, else ``root/videos``."""
    if video_dir and (root / video_dir).is_dir():
        return root / video_dir
    return root / "videos"


def _find_video(video_dir: Path, video: str) -> Path | None:
    """``<video_dir>/<video>.<suffix>``, or None (its labelled frames are used as they are)."""
    if video_dir.is_dir():
        for path in sorted(video_dir.glob(f"{glob.escape(video)}.*")):
            if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
                return path
    log.info(
        "no video file found for %s in %s; its labelled frames are used as they are",
        video,
        video_dir,
    )
    return None
