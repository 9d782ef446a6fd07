"""The ``active`` frame-selection strategy: label next where the previous round's model is expected
to be wrong, without ten neighbours of one bad moment.

Round 1 is k-means': :func:`rank` *is* :func:`src.data.selection.kmeans.rank`, so a prepared
selection with ``frames=active`` is exactly the k-means study's (the fixed test frames that
src.data.frames draws from the ranked picks, the generalisation frames, and train rank 1, the
round-1 frame of each development video). This module imports its sibling, unlike the recipe in
src/data/selection/__init__.py says, so that the frames no model has chosen are k-means' by
construction, not by a copy that could drift.

Each later round (:func:`next_round`, the member of
:class:`src.data.contract.RoundSelection`) extends one video's labelled frames to a budget:
greedily, the unlabelled candidate with the highest expected error of the previous round's model
(e.g. 1 - the frame's mean trust, src.analysis.trust), passing over candidates within
``min_gap_frames`` frames or within the feature radius of a labelled or chosen frame. When every
remaining candidate lies within the radii they halve, then quarter, then vanish, so the budget is
met while candidates remain. Ties in expected error are broken by the seed. Rounds are nested: the
returned frames start with the labelled ones, in their order.

:func:`round_selection` turns a round's frames into a selection table (src/data/prepared.py's
``selection.csv``) whose test and generalisation rows are the k-means selection's, untouched.
:func:`read_round` and :func:`round_number` read a round folder's ``round.yaml`` (src.label_round
writes it; src.train_round, the round's pipeline stage, reads it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from src.data.contract import Candidates
from src.data.selection import kmeans
from src.errors import DataError

NAME = "active"
ROUND_FILE = "round.yaml"  # what `python -m src.label_round export` exported, in a round folder
RELAXATION = (1.0, 0.5, 0.25, 0.0)  # factors on both radii when no candidate lies outside them
QUANTILE_SAMPLE = 500  # candidates whose pairwise distances set the feature radius (seeded sample)


def rank(features: np.ndarray, n_picks: int, seed: int) -> np.ndarray:
    """k-means' ranking (:func:`src.data.selection.kmeans.rank`): round 1, and the picks the fixed
    test frames are drawn from, are the k-means study's."""
    return kmeans.rank(features, n_picks, seed)


def settings_of(settings: Mapping) -> tuple[int, float]:
    """(min_gap_frames, feature_radius_quantile) of a frames config, checked."""
    gap = settings.get("min_gap_frames", 0)
    quantile = settings.get("feature_radius_quantile", 0.0)
    if not isinstance(gap, int) or isinstance(gap, bool) or gap < 0:
        raise DataError(
            f"frames.min_gap_frames={gap!r} must be an integer >= 0 (conf/frames/active.yaml)."
        )
    if not isinstance(quantile, (int, float)) or not 0 <= quantile < 1:
        raise DataError(
            f"frames.feature_radius_quantile={quantile!r} must lie in [0, 1) "
            "(conf/frames/active.yaml)."
        )
    return gap, float(quantile)


def feature_radius(features: np.ndarray, quantile: float, seed: int) -> float:
    """The ``quantile`` of the Euclidean distances between a video's candidate frames (a seeded
    sample of at most QUANTILE_SAMPLE of them): frames nearer than this look alike."""
    if quantile <= 0 or len(features) < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    rows = features
    if len(rows) > QUANTILE_SAMPLE:
        rows = rows[np.sort(rng.choice(len(rows), QUANTILE_SAMPLE, replace=False))]
    squared = (rows**2).sum(axis=1)
    distances = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * rows @ rows.T, 0))
    return float(np.quantile(distances[np.triu_indices(len(rows), k=1)], quantile))


def next_round(
    candidates: Candidates,
    labelled: Sequence[int],
    excluded: Sequence[int],
    n_frames: int,
    seed: int,
    settings: Mapping,
) -> np.ndarray:
    """Frame numbers of one video's labelled frames after the next round: ``labelled`` in its
    order, then up to ``n_frames - len(labelled)`` new frames, most expected error first.

    ``candidates`` are the video's candidate frames with the previous round's model's
    per-candidate expected error (NaN: unknown, chosen last); ``excluded`` frames are never
    chosen (the fixed test frames); ``settings`` holds ``min_gap_frames`` and
    ``feature_radius_quantile`` (conf/frames/active.yaml).
    """
    candidates = _as_arrays(candidates)
    labelled = [int(f) for f in labelled]
    if len(set(labelled)) != len(labelled):
        raise ValueError(f"labelled frames repeat: {labelled}")
    if n_frames < len(labelled):
        raise ValueError(f"a budget of {n_frames} frames is below the {len(labelled)} labelled")
    gap, quantile = settings_of(settings)
    radius = feature_radius(candidates.features, quantile, seed)
    frame_numbers = candidates.frame_numbers
    available = ~np.isin(frame_numbers, labelled) & ~np.isin(frame_numbers, list(excluded))
    priority = _priority(candidates.expected_error, seed)
    spacing = _Spacing(candidates)
    for frame in labelled:
        spacing.take(frame)
    chosen: list[int] = []
    for factor in RELAXATION:
        while len(labelled) + len(chosen) < n_frames:
            passes = available[priority] & spacing.outside(priority, gap * factor, radius * factor)
            if not passes.any():
                break
            row = priority[np.argmax(passes)]
            chosen.append(int(frame_numbers[row]))
            available[row] = False
            spacing.take(int(frame_numbers[row]))
    return np.array(labelled + chosen, dtype=int)


def _as_arrays(candidates: Candidates) -> Candidates:
    """``candidates`` as float, int and float arrays, checked to have one row per candidate."""
    checked = Candidates(
        np.asarray(candidates.features, dtype=float),
        np.asarray(candidates.frame_numbers, dtype=int),
        np.asarray(candidates.expected_error, dtype=float),
    )
    if not len(checked.features) == len(checked.frame_numbers) == len(checked.expected_error):
        raise ValueError("features, frame_numbers and expected_error need one row per candidate")
    return checked


def _priority(expected_error: np.ndarray, seed: int) -> np.ndarray:
    """Candidate rows, highest expected error first; ties (and NaN, last) in a seeded order."""
    tie_break = np.random.default_rng(seed).permutation(len(expected_error))
    return np.lexsort((tie_break, -np.nan_to_num(expected_error, nan=-np.inf)))


class _Spacing:
    """Each candidate's distance to the nearest labelled or chosen frame, in time and features."""

    def __init__(self, candidates: Candidates):
        self.candidates = candidates
        self.time_gap = np.full(len(candidates.frame_numbers), np.inf)
        self.feature_gap = np.full(len(candidates.frame_numbers), np.inf)

    def take(self, frame: int) -> None:
        """Count ``frame`` as labelled or chosen."""
        frame_numbers, features = self.candidates.frame_numbers, self.candidates.features
        self.time_gap = np.minimum(self.time_gap, np.abs(frame_numbers - frame))
        row = np.flatnonzero(frame_numbers == frame)
        if len(row):  # a labelled frame outside the candidates has no features here
            distance = np.linalg.norm(features - features[row[0]], axis=1)
            self.feature_gap = np.minimum(self.feature_gap, distance)

    def outside(self, rows: np.ndarray, gap: float, radius: float) -> np.ndarray:
        """Whether each of ``rows`` lies at least ``gap`` frames and ``radius`` away."""
        return (self.time_gap[rows] >= gap) & (self.feature_gap[rows] >= radius)


def round_one(selection: pd.DataFrame) -> dict[str, list[int]]:
    """Round 1 of every development video: k-means' first train frame (train rank 1)."""
    first = selection[(selection["role"] == "train") & (selection["rank"] == 1)]
    return {video: [int(frame)] for video, frame in zip(first["video"], first["frame"])}


def round_selection(selection: pd.DataFrame, train_frames: Mapping[str, Sequence[int]]):
    """The k-means ``selection`` (selection.csv) with each video's train rows replaced by
    ``train_frames[video]`` ranked in round order; test and generalisation rows are kept as they are
    (the frames both strategies are judged on). A new frame's image is named as src.prepare names
    the video's other frames (``labeled-data/<video>/img<frame>.png``, zero-padded alike)."""
    kept = selection[selection["role"] != "train"]
    rows = []
    for video, frames in train_frames.items():
        of_video = selection[selection["video"] == video]
        if of_video.empty:
            raise ValueError(f"video {video} is not in the selection")
        tests = set(of_video.loc[of_video["role"] == "test", "frame"])
        if tests & set(frames):
            raise ValueError(f"{video}: test frames {sorted(tests & set(frames))} cannot be train")
        known = dict(zip(of_video["frame"], of_video["image"]))
        numbered = re.fullmatch(r"img(\d+)", Path(str(of_video["image"].iloc[0])).stem)
        digits = len(numbered.group(1)) if numbered else 1
        first = of_video.iloc[0]
        for rank_, frame in enumerate(frames, start=1):
            image = known.get(frame, f"labeled-data/{video}/img{int(frame):0{digits}d}.png")
            rows.append(
                dict(
                    participant=first["participant"],
                    video=video,
                    session=first["session"],
                    set=first["set"],
                    role="train",
                    rank=rank_,
                    frame=int(frame),
                    image=image,
                )
            )
    untouched = selection[
        (selection["role"] == "train") & ~selection["video"].isin(list(train_frames))
    ]
    table = pd.concat([kept, untouched, pd.DataFrame(rows, columns=selection.columns)])
    order = {v: i for i, v in enumerate(selection["video"].drop_duplicates())}
    table = table.assign(_video=table["video"].map(order))
    table = table.sort_values(["_video", "role", "rank"], kind="stable").drop(columns="_video")
    return table.reset_index(drop=True)[list(selection.columns)]


def read_round(round_dir: Path) -> dict:
    """round.yaml of a round folder ``python -m src.label_round export`` wrote."""
    path = Path(round_dir) / ROUND_FILE
    if not path.is_file():
        raise DataError(
            f"{path}: missing; give the folder `python -m src.label_round export` wrote (--round)."
        )
    return yaml.safe_load(path.read_text())


def round_number(round_dir: Path, manifest: dict) -> int:
    """The round's number: round.yaml's ``round``, else the digits ending the folder's name."""
    if manifest.get("round") is not None:
        return int(manifest["round"])
    digits = re.search(r"(\d+)$", Path(round_dir).name)
    if digits is None:
        raise DataError(
            f"{Path(round_dir) / ROUND_FILE}: no round number; add `round: <n>` to it (round 2 is "
            "the first after k-means' frame per video)."
        )
    return int(digits.group(1))
