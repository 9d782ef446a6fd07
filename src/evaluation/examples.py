"""The frames the report draws labels against predictions on: of the best condition's run, the
generalisation frame with the lowest and the one with the highest mean error.

Every evaluated run logs its predictions per set (``predictions/<set>.csv``: one row per frame and
bodypart with label, prediction and error; participants and videos by pseudonym). The frame
itself lies in the prepared folder (``labeled-data/<video>/...``, found through ``selection.csv``
under the same pseudonyms); it is read only when ``data.log_media`` allows a real frame in a
report, otherwise only its size is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig
from PIL import Image

from src import privacy
from src.evaluation.metric_names import MetricName
from src.evaluation.plots import FrameExample, FrameExamples


def frame_errors(predictions: pd.DataFrame) -> pd.DataFrame:
    """Mean error (px) and labelled points of each frame: participant, video, frame, error_px,
    n_points (unlabelled points count in neither)."""
    labelled = predictions.dropna(subset=["error_px"])
    if "participant" not in labelled:  # runs that logged no participant: the video stands for it
        labelled = labelled.assign(participant=labelled["video"])
    return (
        labelled.groupby(["participant", "video", "frame"], sort=True)["error_px"]
        .agg(error_px="mean", n_points="size")
        .reset_index()
    )


def pick_frames(predictions: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """The frame with the lowest and the one with the highest mean error, each with what it is
    ("good: ..."/"bad: ..."); one frame when there is only one."""
    errors = frame_errors(predictions)
    if not len(errors):
        return []
    good, bad = errors.loc[errors["error_px"].idxmin()], errors.loc[errors["error_px"].idxmax()]
    if len(errors) == 1:
        return [("the only labelled frame", good)]
    return [
        (f"good: the lowest error of {len(errors)} frames", good),
        (f"bad: the highest error of {len(errors)} frames", bad),
    ]


def best_condition(table: pd.DataFrame, runs: pd.DataFrame) -> int | None:
    """The condition with the lowest generalisation MAE among those evaluated on every bodypart
    (not skipped, not condition 0 on shared bodyparts); None when none has one."""
    tags = runs.set_index("labelled_frames")
    comparable = [
        n
        for n in table.index
        if not str(tags["skipped_reason"].get(n, "") if "skipped_reason" in tags else "")
        and not str(tags["bodyparts_evaluated"].get(n, "") if "bodyparts_evaluated" in tags else "")
    ]
    if "generalisation" not in table:
        return None
    mae = table.loc[comparable, "generalisation"].dropna()
    return int(mae.idxmin()) if len(mae) else None


def frame_examples(
    logged: Mapping[str, pd.DataFrame],
    cfg: DictConfig,
    runs: pd.DataFrame,
    table: pd.DataFrame,
    set_name: str = "generalisation",
) -> FrameExamples | None:
    """The best condition's good and bad ``set_name`` frame, ready to draw, from ``logged``: the
    runs' predictions of that set by run id (src.tracking.runs.logged_predictions); None when the
    best condition's run logged none."""
    condition = best_condition(table, runs)
    if condition is None:
        return None
    run = runs[runs["labelled_frames"] == condition].iloc[0]
    predictions = logged.get(run["run_id"])
    if predictions is None:
        return None
    prepared = Path(str(cfg.paths.prepared_dir)) / str(cfg.data.name)
    fold = str(run.get("fold", "")).split(",")[0]  # pooled folds: "1,2,3", the first fold's run
    if fold not in ("", "nan", "None"):  # cross-validation: the fold's own prepared folder
        prepared = prepared / f"fold_{int(float(fold))}"
    facts = _facts(prepared)
    images = _image_paths(prepared, cfg)
    allowed = bool(cfg.data.get("log_media", False))
    examples = [
        _frame_example(kind, frame, predictions, images, allowed)
        for kind, frame in pick_frames(predictions)
    ]
    return FrameExamples(
        condition,
        examples,
        skeleton=[list(pair) for pair in facts.get("skeleton") or []],
        cm_per_px=facts.get("cm_per_px") or _scale(run, set_name),
        media_allowed=allowed,
        set_name=set_name,
    )


def _frame_example(
    kind: str, frame: pd.Series, predictions: pd.DataFrame, images: dict, allowed: bool
) -> FrameExample:
    """One picked frame: its labelled and predicted points, its size and (when media may be shown)
    its image."""
    key = (frame["video"], int(frame["frame"]))
    rows = predictions[(predictions["video"] == key[0]) & (predictions["frame"] == key[1])].dropna(
        subset=["error_px"]
    )
    points = rows[["bodypart", "x_label", "y_label", "x_pred", "y_pred", "error_px"]]
    image_path = images.get(key)
    size, image = _size_of(points), None
    if image_path is not None and image_path.is_file():
        with Image.open(image_path) as opened:  # the header only, unless it may be shown
            size = opened.size
            if allowed:
                image = np.asarray(opened.convert("RGB"))
    return FrameExample(
        kind,
        str(frame["participant"]),
        key[0],
        key[1],
        points.reset_index(drop=True),
        size,
        image,
    )


def _facts(prepared: Path) -> dict:
    """dataset.yaml of the prepared folder (of the whole data set under a fold), {} when absent."""
    for folder in (prepared, prepared.parent):
        path = folder / "dataset.yaml"
        if path.is_file():
            return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {}


def _image_paths(prepared: Path, cfg: DictConfig) -> dict[tuple[str, int], Path]:
    """(video pseudonym, frame) -> the frame's file in the prepared folder; {} when the folder or
    the pseudonym key is not here (a key is never made by the report)."""
    selection = prepared / "selection.csv"
    if not selection.is_file():
        return {}
    pseudonymise = bool(cfg.privacy.pseudonymise)
    if pseudonymise and not (Path(str(cfg.privacy.key_dir)) / privacy.KEY_FILE).is_file():
        return {}
    frames = pd.read_csv(selection, usecols=["video", "frame", "image"])
    named = privacy.from_config(cfg).table(frames, {"video": "video"})
    return {
        (video, int(frame)): prepared / image
        for video, frame, image in named[["video", "frame", "image"]].itertuples(index=False)
    }


def _size_of(points: pd.DataFrame) -> tuple[int, int]:
    """A canvas that holds every point, when the frame's own size is unknown."""
    xs = points[["x_label", "x_pred"]].to_numpy(float)
    ys = points[["y_label", "y_pred"]].to_numpy(float)
    return int(np.ceil(np.nanmax(xs) * 1.1)) + 1, int(np.ceil(np.nanmax(ys) * 1.1)) + 1


def _scale(run: pd.Series, set_name: str) -> float | None:
    """cm per pixel from the run's own MAE in cm and px (None when it logged no cm)."""
    px, cm = (run.get(MetricName("mae", set_name, unit=u).name) for u in ("px", "cm"))
    if px is None or cm is None or pd.isna(px) or pd.isna(cm) or px <= 0:
        return None
    return float(cm / px)
