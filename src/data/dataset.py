"""The data layer: one loader that turns a data set into one table of annotations.

Three kinds of data set are understood (``data.kind`` in ``conf/data/``):

* ``synthetic``: a cohort written by ``src.cohort`` (videos, ``ground_truth.csv``,
  ``participants.csv``, ``dataset.yaml``); every frame has exact ground truth.
* ``dlc_project``: an existing DeepLabCut project (``config.yaml``, ``videos/``,
  ``labeled-data/<video>/CollectedData_<scorer>.h5`` or ``.csv``); its labelled frames are the pool.
* ``videos``: a folder of new recordings with no labels yet; frames are selected from every video
  frame and exported for labelling (``src.labelling``).

All give a :class:`Dataset` whose ``annotations`` table has one row per
(participant, video, frame, bodypart) with pixel coordinates x, y (NaN where not labelled).
Raw data is only ever read: nothing under a data set's root is written, moved or deleted.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml
from PIL import Image, UnidentifiedImageError

from src.errors import DataError

log = logging.getLogger(__name__)


# FFmpeg's own messages ("moov atom not found") would precede our one-line error about the same video;
# read when OpenCV first opens a video. OPENCV_FFMPEG_LOGLEVEL=16 in the environment shows them again.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


ANNOTATION_COLUMNS = ["participant", "video", "frame", "bodypart", "x", "y"]


VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".wmv")


DLC_PLACEHOLDER = "WILL BE AUTOMATICALLY UPDATED"


@dataclass
class Dataset:
    """A loaded data set: its videos, its annotations and the facts needed downstream."""

    name: str
    kind: str  # "synthetic" | "dlc_project"
    root: Path
    bodyparts: list[str]
    skeleton: list[list[str]]
    cm_per_px: float | None
    scorer: str
    # One row per video: participant, video, session, path (or None), n_frames, width, height.
    videos: pd.DataFrame
    # One row per (participant, video, frame, bodypart): ANNOTATION_COLUMNS, plus `image`
    # (path of the labelled PNG relative to root) for DeepLabCut projects.
    annotations: pd.DataFrame


def load_dataset(data_cfg) -> Dataset:
    """Load the data set described by a ``conf/data/*.yaml`` config."""
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
    raise DataError(f"data.kind={kind!r} is unknown; choose synthetic, dlc_project or videos (conf/data/).")


def load_synthetic(root: Path, name: str | None = None) -> Dataset:
    """Load a cohort written by ``src.cohort`` and check it is complete and consistent."""
    root = Path(root)
    meta_path = root / "dataset.yaml"
    if not meta_path.is_file():
        raise DataError(
            f"{meta_path} is missing: {root} is not a generated cohort. "
            "Generate it with `python -m src.cohort`, or point data.root at a cohort folder."
        )
    meta = _read_yaml(meta_path)
    bodyparts = meta.get("bodyparts")
    if not isinstance(bodyparts, list) or not bodyparts:
        raise DataError(f"{meta_path} has no `bodyparts:` list; regenerate the cohort with `python -m src.cohort`.")
    bodyparts = [str(b) for b in bodyparts]

    participants = _read_csv(root / "participants.csv", required=["participant", "video", "session"])
    _check_unique(participants, ["video"], root / "participants.csv")
    truth_path = root / "ground_truth.csv"
    truth = _read_csv(truth_path, required=["video", "frame", "bodypart", "x", "y"])
    _check_numeric(truth, ["frame", "x", "y"], truth_path)
    _check_unique(truth, ["video", "frame", "bodypart"], truth_path)

    unknown = sorted(set(truth["bodypart"]) - set(bodyparts))
    absent = [b for b in bodyparts if b not in set(truth["bodypart"])]
    if unknown or absent:
        raise DataError(
            f"{truth_path} has bodyparts that differ from {meta_path} (not listed there: {unknown}, "
            f"never annotated: {absent}); regenerate the cohort with `python -m src.cohort`."
        )
    videos = []
    for row in participants.itertuples(index=False):
        path = root / "videos" / f"{row.video}.mp4"
        n_frames, width, height = probe_video(path)
        videos.append(
            dict(participant=str(row.participant), video=str(row.video), session=str(row.session),
                 path=str(path), n_frames=n_frames, width=width, height=height)
        )
    videos = pd.DataFrame(videos)
    missing = sorted(set(truth["video"]) - set(videos["video"]))
    if missing:
        raise DataError(
            f"{root / 'ground_truth.csv'} annotates videos {missing} that {root / 'participants.csv'} "
            "does not list; add them to the participants table or regenerate the cohort."
        )

    annotations = truth.astype({"frame": int}).merge(videos[["video", "participant"]], on="video")
    annotations = annotations[ANNOTATION_COLUMNS].copy()
    _check_frames_exist(annotations, videos, root / "ground_truth.csv")
    _check_inside_image(annotations, videos.set_index("video")[["width", "height"]], root / "ground_truth.csv")
    return Dataset(
        name=name or meta.get("name", root.name),
        kind="synthetic",
        root=root,
        bodyparts=bodyparts,
        skeleton=[list(pair) for pair in meta.get("skeleton", [])],
        cm_per_px=float(meta["cm_per_px"]) if meta.get("cm_per_px") else None,
        scorer="ground_truth",
        videos=videos,
        annotations=annotations.sort_values(["video", "frame"], kind="stable").reset_index(drop=True),
    )


def load_videos(
    root: Path,
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
        raise DataError(f"data.root={root} is not a folder; point it at the folder holding your videos.")
    paths = sorted(p for p in root.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        raise DataError(f"{root} holds no video files ({', '.join(VIDEO_SUFFIXES)}); point data.root at your videos.")
    if not bodyparts or len(set(bodyparts)) != len(bodyparts):
        raise DataError("data.bodyparts must list each bodypart to label once (conf/data/videos.yaml).")
    mapping = _participants_for([p.stem for p in paths], participants_table, participant_pattern, root)
    videos = []
    for path in paths:
        n_frames, width, height = probe_video(path)
        videos.append(dict(participant=mapping[path.stem][0], video=path.stem, session=mapping[path.stem][1],
                           path=str(path), n_frames=n_frames, width=width, height=height))
    return Dataset(
        name=name, kind="videos", root=root, bodyparts=list(bodyparts), skeleton=skeleton,
        cm_per_px=float(cm_per_px) if cm_per_px else None, scorer="manual",
        videos=pd.DataFrame(videos), annotations=pd.DataFrame(columns=ANNOTATION_COLUMNS),
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
    config_path = root / "config.yaml"
    if not config_path.is_file():
        raise DataError(
            f"{config_path} does not exist; set data.root to the DeepLabCut project folder "
            "(the one that holds config.yaml)."
        )
    cfg = _read_yaml(config_path)
    if cfg.get("multianimalproject"):
        raise DataError(
            f"{config_path} is a multi-animal project (multianimalproject: true); only single-animal "
            "projects are supported; label one subject per video in a single-animal DeepLabCut project."
        )
    bodyparts = cfg.get("bodyparts")
    if not bodyparts or not isinstance(bodyparts, list):
        raise DataError(f"{config_path} has no `bodyparts:` list; add the project's bodyparts to it.")
    bodyparts = [str(b) for b in bodyparts]
    if len(set(bodyparts)) != len(bodyparts):
        raise DataError(f"{config_path} lists a bodypart twice in `bodyparts:`; remove the duplicate.")
    scorer = scorer or cfg.get("scorer")
    if not scorer:
        raise DataError(f"{config_path} has no `scorer:`; add it, or set data.scorer to the labeller's name.")
    project_path = str(cfg.get("project_path", ""))
    if DLC_PLACEHOLDER in project_path or Path(project_path).resolve() != root.resolve():
        log.info("%s: project_path %r ignored; using %s", config_path, project_path, root)

    labeled_root = root / "labeled-data"
    if not labeled_root.is_dir():
        raise DataError(
            f"{labeled_root} does not exist: the project has no labelled frames. Label frames in "
            "DeepLabCut (deeplabcut.label_frames) or export frames with `python -m src.labelling action=export`."
        )
    tables = []
    for folder in sorted(p for p in labeled_root.iterdir() if p.is_dir()):
        annotation_file = _find_annotation_file(folder, scorer)
        if annotation_file is None:
            log.warning("%s has no CollectedData_%s.h5/.csv: folder skipped (frames not labelled yet)", folder, scorer)
            continue
        wide = read_collected_data(annotation_file)
        tables.append(_tidy_collected_data(wide, annotation_file, root, folder.name, scorer, bodyparts))
    if not tables:
        raise DataError(
            f"no folder under {labeled_root} holds CollectedData_{scorer}.h5 or .csv; label frames in "
            "DeepLabCut first, or set data.scorer to the scorer named in your CollectedData files."
        )
    annotations = pd.concat(tables, ignore_index=True)

    video_names = sorted(annotations["video"].unique())
    video_mapping = _participants_for(video_names, participants_table, participant_pattern, config_path)
    annotations["participant"] = annotations["video"].map(lambda v: video_mapping[v][0])

    videos = []
    for video in video_names:
        path = _find_project_video(root, cfg, video)
        n_frames = width = height = None
        if path is not None:
            n_frames, width, height = probe_video(path)
        videos.append(dict(participant=video_mapping[video][0], video=video, session=video_mapping[video][1],
                           path=str(path) if path else None, n_frames=n_frames, width=width, height=height))
    videos = pd.DataFrame(videos)

    return Dataset(
        name=name or str(cfg.get("Task") or root.name),
        kind="dlc_project",
        root=root,
        bodyparts=bodyparts,
        skeleton=[list(pair) for pair in (cfg.get("skeleton") or [])],
        cm_per_px=float(cm_per_px) if cm_per_px else None,
        scorer=scorer,
        videos=videos,
        annotations=annotations[ANNOTATION_COLUMNS + ["image"]],
    )


def read_collected_data(path: Path) -> pd.DataFrame:
    """Read a ``CollectedData_<scorer>`` table as DeepLabCut writes it (.h5, else .csv)."""
    try:
        if path.suffix == ".h5":
            return pd.read_hdf(path)
        # DeepLabCut >= 2.2 writes a 3-column index ("scorer,,,<name>..."); older projects one column.
        with open(path, encoding="utf-8") as handle:
            index_columns = 3 if handle.readline().split(",")[1:2] == [""] else 1
        return pd.read_csv(path, header=[0, 1, 2], index_col=list(range(index_columns)))
    except Exception as error:  # corrupt files raise anything from HDF5, pandas or the csv parser
        raise DataError(
            f"{path} cannot be read ({type(error).__name__}: {_one_line(error)}); restore it from a backup, or "
            "re-save the labels in DeepLabCut's labelling GUI."
        ) from error


def write_collected_data(labels: pd.DataFrame, images: pd.Series, scorer: str, bodyparts: list[str], folder: Path):
    """Write labels of one video as DeepLabCut's ``CollectedData_<scorer>.h5`` and ``.csv``.

    ``labels`` is long (frame, bodypart, x, y); ``images`` maps frame -> image file name in ``folder``.
    The layout (3-level index, key ``df_with_missing``) is DeepLabCut 3's own.
    """
    frames = sorted(images.index)
    wide = labels.pivot(index="frame", columns="bodypart", values=["x", "y"]).swaplevel(axis=1)
    wide = wide.reindex(index=frames, columns=pd.MultiIndex.from_product([bodyparts, ["x", "y"]]))
    table = pd.DataFrame(
        wide.to_numpy(dtype=float),
        index=pd.MultiIndex.from_tuples([("labeled-data", folder.name, images[f]) for f in frames]),
        columns=pd.MultiIndex.from_product([[scorer], bodyparts, ["x", "y"]], names=["scorer", "bodyparts", "coords"]),
    )
    folder.mkdir(parents=True, exist_ok=True)
    table.to_hdf(folder / f"CollectedData_{scorer}.h5", key="df_with_missing", mode="w")
    table.to_csv(folder / f"CollectedData_{scorer}.csv")


def _find_annotation_file(folder: Path, scorer: str) -> Path | None:
    for suffix in (".h5", ".csv"):
        candidate = folder / f"CollectedData_{scorer}{suffix}"
        if candidate.is_file():
            return candidate
    others = sorted(folder.glob("CollectedData_*.h5")) + sorted(folder.glob("CollectedData_*.csv"))
    if others:
        found = sorted({p.stem.removeprefix("CollectedData_") for p in others})
        raise DataError(
            f"{folder} holds labels by scorer(s) {found}, not by {scorer!r}; set data.scorer to one of "
            f"{found}, or the `scorer:` in the project's config.yaml."
        )
    return None


def _tidy_collected_data(wide, path, root, folder_name, scorer, bodyparts) -> pd.DataFrame:
    """Wide DeepLabCut table -> long (video, frame, bodypart, x, y, image), validated."""
    if not isinstance(wide.columns, pd.MultiIndex) or wide.columns.nlevels != 3:
        raise DataError(
            f"{path} does not have DeepLabCut's 3-level header (scorer, bodyparts, coords); "
            "multi-animal files (4 levels) are not supported. Re-save the labels with DeepLabCut."
        )
    wide.columns = wide.columns.set_names(["scorer", "bodyparts", "coords"])
    file_scorers = sorted(set(wide.columns.get_level_values("scorer")))
    if file_scorers != [scorer]:
        raise DataError(
            f"{path} is labelled by scorer(s) {file_scorers} in its header but its name says {scorer!r}; "
            f"rename the file to CollectedData_{file_scorers[0]}.h5 or re-save the labels as {scorer!r}."
        )
    labelled = list(dict.fromkeys(wide.columns.get_level_values("bodyparts")))
    missing = [b for b in bodyparts if b not in labelled]
    extra = [b for b in labelled if b not in bodyparts]
    if missing or extra:
        raise DataError(
            f"{path} has bodyparts that differ from the project's config.yaml "
            f"(missing from the labels: {missing}, not in the config: {extra}); make the config's "
            "`bodyparts:` list match, or relabel with deeplabcut.label_frames."
        )

    images = [_image_relpath(index, folder_name) for index in wide.index]
    if len(set(images)) != len(images):
        duplicated = sorted({i for i in images if images.count(i) > 1})
        raise DataError(f"{path} labels the same frame more than once: {duplicated[:5]}; keep one row per image.")
    sizes = {}
    for image in images:
        image_path = root / image
        if not image_path.is_file():
            raise DataError(
                f"{path} labels {image}, but {image_path} does not exist; restore the frame or "
                "remove its row with deeplabcut.dropannotationfileentriesduetodeletedimages(config)."
            )
        try:
            with Image.open(image_path) as frame_image:  # reads the header only
                sizes[image] = frame_image.size
        except (OSError, UnidentifiedImageError) as error:
            why = "not an image file" if isinstance(error, UnidentifiedImageError) else error.strerror or str(error)
            raise DataError(
                f"{image_path} (labelled in {path}) cannot be read as an image ({why}); restore the frame "
                "from a backup or extract it again from its video, or remove its row with "
                "deeplabcut.dropannotationfileentriesduetodeletedimages(config)."
            ) from error

    xy = wide[scorer].stack(level="bodyparts", future_stack=True)
    xy = xy.reset_index(level="bodyparts")
    xy["image"] = np.repeat(images, len(labelled))
    long = xy.reset_index(drop=True).rename(columns={"bodyparts": "bodypart"})
    long.columns.name = None
    long["video"] = folder_name
    long["frame"] = long["image"].map(lambda i: _frame_number(i, path))
    long["x"] = pd.to_numeric(long["x"], errors="coerce")
    long["y"] = pd.to_numeric(long["y"], errors="coerce")
    image_sizes = pd.DataFrame.from_dict(sizes, orient="index", columns=["width", "height"])
    _check_inside_image(long, image_sizes, path, key="image")
    return long[["video", "frame", "bodypart", "x", "y", "image"]]


def _image_relpath(index, folder_name: str) -> str:
    """Row index of a CollectedData table -> 'labeled-data/<video>/<img>.png' (old and new formats)."""
    parts = list(index) if isinstance(index, tuple) else str(index).replace("\\", "/").split("/")
    return "/".join(["labeled-data", folder_name, parts[-1]])


def _frame_number(image: str, source: Path) -> int:
    digits = re.findall(r"\d+", Path(image).stem)
    if not digits:
        raise DataError(
            f"{source}: cannot tell the frame number of {image}; DeepLabCut names frames img<number>.png, "
            "rename the image and its row accordingly."
        )
    return int(digits[-1])


def _find_project_video(root: Path, cfg: dict, video: str) -> Path | None:
    """The video a labeled-data folder came from: from video_sets, else videos/<name>.*; None if absent."""
    candidates = [Path(p) for p in (cfg.get("video_sets") or {}) if DLC_PLACEHOLDER not in str(p)]
    candidates += sorted((root / "videos").glob(f"{video}.*")) if (root / "videos").is_dir() else []
    for path in candidates:
        if path.stem == video and path.suffix.lower() in VIDEO_SUFFIXES:
            path = path if path.is_absolute() else root / path
            if path.is_file():
                return path
    log.info("no video file found for labeled-data/%s; its labelled frames are used as they are", video)
    return None


def _participants_for(videos, table, pattern, config_path) -> dict[str, tuple[str, str]]:
    """Map each video to (participant, session) from a table (video, participant[, session]) or a regex."""
    if table:
        mapping = _read_csv(Path(table), required=["video", "participant"])
        if "session" not in mapping:
            mapping["session"] = mapping.groupby("participant").cumcount().map(lambda i: f"S{i + 1}")
        known = {str(r.video): (str(r.participant), str(r.session)) for r in mapping.itertuples()}
        unmapped = [v for v in videos if v not in known]
        if unmapped:
            raise DataError(f"{table} does not say whose videos {unmapped} are; add a row (video, participant) each.")
        return {v: known[v] for v in videos}
    try:
        regex = re.compile(pattern or r"^(?P<participant>.+)$")
    except re.error as error:
        raise DataError(
            f"data.participants.pattern {pattern!r} is not a valid regular expression ({error}); fix it, e.g. "
            "'^(?P<participant>[^_]+)_(?P<session>.+)$' (quote it on the command line)."
        ) from None
    if "participant" not in regex.groupindex:
        raise DataError(
            f"data.participants.pattern {regex.pattern!r} has no (?P<participant>...) group; add one."
        )
    result = {}
    for video in videos:
        match = regex.search(video)
        if not match:
            raise DataError(
                f"video {video!r} (labeled-data of {config_path.parent}) does not match "
                f"data.participants.pattern {regex.pattern!r}; fix the pattern or give data.participants.table."
            )
        session = match.groupdict().get("session") or video
        result[video] = (match.group("participant"), session)
    return result


def probe_video(path: Path) -> tuple[int, int, int]:
    """(frame count, width, height) of a video, or a DataError if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"video {path} does not exist; restore it, or remove it from the participants table.")
    if path.stat().st_size == 0:
        raise DataError(f"video {path} is empty (0 bytes); restore it from the original recording.")
    capture = cv2.VideoCapture(str(path))
    try:
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        if not ok:
            raise DataError(
                f"video {path} cannot be decoded by OpenCV (corrupt or unsupported codec); re-export it "
                "as H.264/MPEG-4 .mp4, e.g. `ffmpeg -i in -c:v libx264 out.mp4`."
            )
        n_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        height, width = frame.shape[:2]
    finally:
        capture.release()
    return n_frames, width, height


def _check_frames_exist(annotations, videos, source):
    counts = annotations.merge(videos[["video", "n_frames"]], on="video")
    beyond = counts[(counts["frame"] < 0) | (counts["frame"] >= counts["n_frames"])]
    if len(beyond):
        row = beyond.iloc[0]
        raise DataError(
            f"{source} annotates frame {row.frame} of video {row.video}, which has {row.n_frames} frames; "
            "remove those rows or restore the full video."
        )


def _check_inside_image(annotations, sizes: pd.DataFrame, source, key="video"):
    """Every labelled coordinate lies inside its image (NaN means not labelled and is fine)."""
    with_size = annotations.join(sizes, on=key)
    x, y = with_size["x"], with_size["y"]
    outside = (x < 0) | (y < 0) | (x > with_size["width"]) | (y > with_size["height"])
    if outside.any():
        row = with_size[outside].iloc[0]
        where = row["image"] if key == "image" else f"video {row.video} frame {row.frame}"
        raise DataError(
            f"{source}: {outside.sum()} label(s) lie outside the image, first {row.bodypart} at "
            f"({row.x:.1f}, {row.y:.1f}) in {where} of size {row.width}x{row.height}; "
            "correct them in DeepLabCut's labelling GUI or set them to NaN (not labelled)."
        )


def _check_unique(table: pd.DataFrame, keys: list[str], source: Path) -> None:
    """One row per key: a repeated row would count a frame (or a video) twice in every result."""
    repeated = table[table.duplicated(keys, keep=False)]
    if len(repeated):
        first = ", ".join(f"{k}={repeated.iloc[0][k]}" for k in keys)
        raise DataError(
            f"{source} has {len(repeated)} rows that repeat the same {'/'.join(keys)} (first: {first}); "
            "keep one row each (remove the duplicates) or regenerate the data set."
        )


def _check_numeric(table: pd.DataFrame, columns: list[str], source: Path) -> None:
    """Coordinates and frame numbers are numbers (empty cells = not labelled are fine for x and y)."""
    for column in columns:
        given = table[column].notna()
        numbers = pd.to_numeric(table[column], errors="coerce")
        bad = given & numbers.isna()
        if column == "frame":
            bad |= numbers.isna() | (numbers % 1 != 0)
        if bad.any():
            raise DataError(
                f"{source}: column {column!r} holds {bad.sum()} value(s) that are not "
                f"{'whole numbers' if column == 'frame' else 'numbers'}, first {table.loc[bad, column].iloc[0]!r} "
                f"in row {int(bad.idxmax()) + 2}; correct them (empty = not labelled) or restore the file."
            )
        table[column] = numbers


def _one_line(error: Exception) -> str:
    """The gist of a library's error: HDF5 and YAML errors span many lines."""
    mark = getattr(error, "problem_mark", None)
    if isinstance(error, yaml.YAMLError) and mark is not None:
        return f"{error.problem} at line {mark.line + 1}, column {mark.column + 1}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if "End of HDF5 error back trace" in lines:  # the innermost cause is the trace's last line
        return lines[lines.index("End of HDF5 error back trace") - 1]
    return lines[-1] if lines else type(error).__name__


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            content = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise DataError(f"{path} cannot be read as YAML ({_one_line(error)}); fix its syntax or restore it.") from error
    if not isinstance(content, dict):
        raise DataError(f"{path} is empty or not a YAML mapping; restore it.")
    return content


def _read_csv(path: Path, required: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path} does not exist; restore it, or regenerate the data set.")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{path} cannot be read as CSV ({_one_line(error)}); restore it.") from error
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(f"{path} lacks column(s) {missing}; it needs {required}.")
    return table
