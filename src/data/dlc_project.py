"""The ``dlc_project`` kind of data set: an existing single-animal DeepLabCut project.

Its labelled frames (``labeled-data/<video>/CollectedData_<scorer>.h5`` or ``.csv``) are the pool
frames are selected from; its videos (``video_sets`` of ``config.yaml``, else ``videos/``) are
used when present. Nothing in the project is modified.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from src.data.collected_data import read_collected_data, tidy_collected_data
from src.data.participants import participants_for
from src.data.table import ANNOTATION_COLUMNS, Dataset
from src.data.validation import override, read_yaml
from src.data.videos import VIDEO_SUFFIXES, probe_video
from src.errors import DataError

log = logging.getLogger(__name__)


DLC_PLACEHOLDER = "WILL BE AUTOMATICALLY UPDATED"


KIND = "dlc_project"
LABELLED_IMAGES = True  # its labelled images are the candidate frames


def load(data_cfg) -> Dataset:
    """The project of ``conf/data/dlc_project.yaml``."""
    participants = data_cfg.get("participants", {}) or {}
    return load_dlc_project(
        Path(data_cfg.root),
        name=data_cfg.name,
        scorer=data_cfg.get("scorer"),
        participants_table=participants.get("table"),
        participant_pattern=participants.get("pattern"),
        cm_per_px=data_cfg.get("cm_per_px"),
    )


def load_dlc_project(
    root: Path,
    name: str | None = None,
    scorer: str | None = None,
    participants_table: str | None = None,
    participant_pattern: str | None = None,
    cm_per_px: float | None = None,
) -> Dataset:
    """Load an existing single-animal DeepLabCut project's labelled frames.

    ``root`` is the folder holding the project's ``config.yaml``. The project's own
    ``project_path`` is ignored (projects are moved around and DeepLabCut's demo projects hold a
    placeholder there); nothing in the project is modified.
    """
    root = Path(root)
    cfg, bodyparts, scorer = _read_config(root, scorer)
    annotations = _read_labels(root, scorer, bodyparts)
    video_names = sorted(annotations["video"].unique())
    video_mapping = participants_for(
        video_names, participants_table, participant_pattern, root / "labeled-data"
    )
    annotations["participant"] = annotations["video"].map(lambda v: video_mapping[v][0])
    return Dataset(
        name=name or str(cfg.get("Task") or root.name),
        kind=KIND,
        has_labelled_images=LABELLED_IMAGES,
        root=root,
        bodyparts=bodyparts,
        skeleton=[list(pair) for pair in (cfg.get("skeleton") or [])],
        cm_per_px=float(cm_per_px) if cm_per_px else None,
        scorer=scorer,
        videos=_project_videos(root, cfg, video_names, video_mapping),
        annotations=annotations[ANNOTATION_COLUMNS + ["image"]],
    )


def _read_config(root: Path, scorer: str | None) -> tuple[dict, list[str], str]:
    """The project's config.yaml, checked, its bodyparts and the scorer (``scorer`` or its own)."""
    config_path = root / "config.yaml"
    if not config_path.is_file():
        _refuse_lightning_pose(root, f"{config_path} does not exist")
        raise DataError(
            f"{config_path} does not exist; set data.root to the DeepLabCut project folder "
            "(the one that holds config.yaml)."
        )
    cfg = read_yaml(config_path)
    if cfg.get("multianimalproject"):
        raise DataError(
            f"{config_path} is a multi-animal project (multianimalproject: true); only "
            "single-animal projects are supported; label one subject per video in a single-animal "
            "DeepLabCut project."
        )
    bodyparts = cfg.get("bodyparts")
    if not bodyparts or not isinstance(bodyparts, list):
        raise DataError(
            f"{config_path} has no `bodyparts:` list; add the project's bodyparts to it."
        )
    bodyparts = [str(b) for b in bodyparts]
    if len(set(bodyparts)) != len(bodyparts):
        raise DataError(
            f"{config_path} lists a bodypart twice in `bodyparts:`; remove the duplicate."
        )
    scorer = scorer or cfg.get("scorer")
    if not scorer:
        raise DataError(
            f"{config_path} has no `scorer:`; add it, or set data.scorer to the labeller's name."
        )
    project_path = str(cfg.get("project_path", ""))
    if DLC_PLACEHOLDER in project_path or Path(project_path).resolve() != root.resolve():
        log.info("%s: project_path %r ignored; using %s", config_path, project_path, root)
    return cfg, bodyparts, scorer


def _read_labels(root: Path, scorer: str, bodyparts: list[str]) -> pd.DataFrame:
    """The labels of every labeled-data/<video> folder with a CollectedData_<scorer> file, long."""
    labeled_root = root / "labeled-data"
    if not labeled_root.is_dir():
        raise DataError(
            f"{labeled_root} does not exist: the project has no labelled frames. Label frames in "
            "DeepLabCut (deeplabcut.label_frames) or export frames with "
            "`python -m src.labelling action=export`."
        )
    tables = []
    for folder in sorted(p for p in labeled_root.iterdir() if p.is_dir()):
        annotation_file = _find_annotation_file(folder, scorer)
        if annotation_file is None:
            log.warning(
                "%s has no CollectedData_%s.h5/.csv: folder skipped (frames not labelled yet)",
                folder,
                scorer,
            )
            continue
        wide = read_collected_data(annotation_file)
        tables.append(
            tidy_collected_data(wide, annotation_file, root, folder.name, scorer, bodyparts)
        )
    if not tables:
        _refuse_lightning_pose(root, f"no folder under {labeled_root} holds CollectedData_{scorer}")
        raise DataError(
            f"no folder under {labeled_root} holds CollectedData_{scorer}.h5 or .csv; label "
            "frames in DeepLabCut first, or set data.scorer to the scorer named in your "
            "CollectedData files."
        )
    return pd.concat(tables, ignore_index=True)


def _project_videos(root: Path, cfg: dict, video_names: list[str], mapping: dict) -> pd.DataFrame:
    """One row per video (labeled-data folder); its file, when the project has it, probed."""
    videos = []
    for video in video_names:
        path = _find_project_video(root, cfg, video)
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


def _refuse_lightning_pose(root: Path, problem: str) -> None:
    """A DataError saying to load ``root`` as a Lightning Pose data set, if it looks like one: a
    top-level CollectedData.csv (one file for all frames) where DeepLabCut has one per folder."""
    if (root / "CollectedData.csv").is_file():
        raise DataError(
            f"{problem}, but {root / 'CollectedData.csv'} does: this looks like a Lightning Pose "
            f"data set; load it with `data=lightning_pose {override('data.root', root)}`."
        )


def _find_annotation_file(folder: Path, scorer: str) -> Path | None:
    """``CollectedData_<scorer>.h5`` (else ``.csv``) in ``folder``; None if it has no labels."""
    for suffix in (".h5", ".csv"):
        candidate = folder / f"CollectedData_{scorer}{suffix}"
        if candidate.is_file():
            return candidate
    others = sorted(folder.glob("CollectedData_*.h5")) + sorted(folder.glob("CollectedData_*.csv"))
    if others:
        found = sorted({p.stem.removeprefix("CollectedData_") for p in others})
        raise DataError(
            f"{folder} holds labels by scorer(s) {found}, not by {scorer!r}; set data.scorer to "
            f"one of {found}, or the `scorer:` in the project's config.yaml."
        )
    return None


def _find_project_video(root: Path, cfg: dict, video: str) -> Path | None:
    """The video a labeled-data folder came from (video_sets, else videos/<name>.*), or None."""
    candidates = [Path(p) for p in (cfg.get("video_sets") or {}) if DLC_PLACEHOLDER not in str(p)]
    candidates += sorted((root / "videos").glob(f"{video}.*")) if (root / "videos").is_dir() else []
    for path in candidates:
        if path.stem == video and path.suffix.lower() in VIDEO_SUFFIXES:
            path = path if path.is_absolute() else root / path
            if path.is_file():
                return path
    log.info(
        "no video file found for labeled-data/%s; its labelled frames are used as they are", video
    )
    return None
