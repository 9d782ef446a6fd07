"""The ``synthetic`` kind of data set: a cohort written by ``src.cohort``.

A cohort holds ``videos/``, ``ground_truth.csv``, ``participants.csv`` and ``dataset.yaml``;
every frame has exact ground truth.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from src.data.table import ANNOTATION_COLUMNS, Dataset
from src.data.validation import (
    check_frames_exist,
    check_inside_image,
    check_numeric,
    check_unique,
    read_csv,
    read_yaml,
)
from src.data.videos import probe_video
from src.errors import DataError

KIND = "synthetic"
LABELLED_IMAGES = False  # frames are decoded from its videos


def load(data_cfg) -> Dataset:
    """The cohort of ``conf/data/synthetic.yaml`` (``root``, ``name``)."""
    return load_synthetic(Path(data_cfg.root), name=data_cfg.name)


def load_synthetic(root: Path, name: str | None = None) -> Dataset:
    """Load a cohort written by ``src.cohort`` and check it is complete and consistent."""
    root = Path(root)
    meta_path = root / "dataset.yaml"
    if not meta_path.is_file():
        raise DataError(
            f"{meta_path} is missing: {root} is not a generated cohort. "
            "Generate it with `python -m src.cohort`, or point data.root at a cohort folder."
        )
    meta = read_yaml(meta_path)
    bodyparts = _bodyparts(meta, meta_path)

    participants = read_csv(root / "participants.csv", required=["participant", "video", "session"])
    check_unique(participants, ["video"], root / "participants.csv")
    truth_path = root / "ground_truth.csv"
    truth = read_csv(truth_path, required=["video", "frame", "bodypart", "x", "y"])
    check_numeric(truth, ["frame", "x", "y"], truth_path)
    check_unique(truth, ["video", "frame", "bodypart"], truth_path)

    unknown = sorted(set(truth["bodypart"]) - set(bodyparts))
    absent = [b for b in bodyparts if b not in set(truth["bodypart"])]
    if unknown or absent:
        raise DataError(
            f"{truth_path} has bodyparts that differ from {meta_path} (not listed there: "
            f"{unknown}, never annotated: {absent}); regenerate the cohort with "
            "`python -m src.cohort`."
        )
    videos = _cohort_videos(root, participants)
    missing = sorted(set(truth["video"]) - set(videos["video"]))
    if missing:
        raise DataError(
            f"{root / 'ground_truth.csv'} annotates videos {missing} that "
            f"{root / 'participants.csv'} does not list; add them to the participants table or "
            "regenerate the cohort."
        )

    annotations = truth.astype({"frame": int}).merge(videos[["video", "participant"]], on="video")
    annotations = annotations[ANNOTATION_COLUMNS].copy()
    sizes = videos.set_index("video")[["width", "height"]]
    check_frames_exist(annotations, videos, root / "ground_truth.csv")
    check_inside_image(annotations, sizes, root / "ground_truth.csv")
    annotations = annotations.sort_values(["video", "frame"], kind="stable")
    return Dataset(
        name=name or meta.get("name", root.name),
        kind=KIND,
        has_labelled_images=LABELLED_IMAGES,
        root=root,
        bodyparts=bodyparts,
        skeleton=[list(pair) for pair in meta.get("skeleton", [])],
        cm_per_px=float(meta["cm_per_px"]) if meta.get("cm_per_px") else None,
        scorer="ground_truth",
        videos=videos,
        annotations=annotations.reset_index(drop=True),
    )


def _bodyparts(meta: dict, meta_path: Path) -> list[str]:
    """The cohort's ``bodyparts:`` list (dataset.yaml)."""
    bodyparts = meta.get("bodyparts")
    if not isinstance(bodyparts, list) or not bodyparts:
        raise DataError(
            f"{meta_path} has no `bodyparts:` list; "
            "regenerate the cohort with `python -m src.cohort`."
        )
    return [str(b) for b in bodyparts]


def _cohort_videos(root: Path, participants: pd.DataFrame) -> pd.DataFrame:
    """One row per video of the participants table, its file videos/<video>.mp4 probed."""
    videos = []
    for row in participants.itertuples(index=False):
        path = root / "videos" / f"{row.video}.mp4"
        n_frames, width, height = probe_video(path)
        videos.append(
            dict(
                participant=str(row.participant),
                video=str(row.video),
                session=str(row.session),
                path=str(path),
                n_frames=n_frames,
                width=width,
                height=height,
            )
        )
    return pd.DataFrame(videos)
