"""The development / generalisation split, of one of two kinds (``split.kind``, conf/split/).

* ``participants`` (the paper's, Haberfehlner et al. 2022): whole participants go to either set.
  Splitting by participant, never by frame or video, is what makes the generalisation MAE an
  honest estimate of how the model does on a patient it has never seen. It needs at least two
  participants (one per set).
* ``frames``, for data sets with too few participants (e.g. one video of one animal, as in
  DeepLabCut's example projects): in every video one contiguous block of frames, chosen by frame
  number, is held out as the generalisation set; the rest of the video is the development pool
  from which train and test frames are selected. Its generalisation MAE means *unseen frames of
  seen subjects*, not unseen participants: it still answers "how many frames must I label?", but
  it is no estimate of the error on a new participant.
* ``kfold``: participant-level cross-validation. The participants are dealt into ``split.folds``
  groups (scikit-learn's ``GroupKFold``, participants shuffled by ``split.seed``); fold k holds out
  group k for generalisation and develops on the others, so across the folds every participant is
  in the generalisation set exactly once. ``split.fold`` says which fold a run is.

``split.csv`` of the participants kind has one row per video (participant, video, session, set);
of the frames kind one row per contiguous range of a video's candidate frames, with
``first_frame``, ``last_frame`` (inclusive frame numbers) and ``n_frames`` (candidate frames in
the range: a DeepLabCut project's labelled frames, every frame of a video).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from src.errors import DataError

DEVELOPMENT = "development"


GENERALISATION = "generalisation"


PARTICIPANTS, FRAMES, KFOLD = "participants", "frames", "kfold"


SPLIT_KINDS = (PARTICIPANTS, FRAMES, KFOLD)


# What the generalisation MAE of each kind measures (dataset.yaml: generalisation_meaning).
GENERALISATION_MEANING = {
    PARTICIPANTS: "unseen participants: every frame of participants never trained on",
    FRAMES: "unseen frames of seen subjects, not unseen participants: a held-out contiguous "
    "block of frames of every video",
    KFOLD: "unseen participants: every frame of the participants this fold holds out "
    "(each participant is held out by exactly one fold)",
}


PARTICIPANT_COLUMNS = ["participant", "video", "session", "set"]


FRAME_COLUMNS = [*PARTICIPANT_COLUMNS, "first_frame", "last_frame", "n_frames"]


def split_kind(split_cfg) -> str:
    """``split.kind``; configurations written before it existed split by participant."""
    kind = split_cfg.get("kind", PARTICIPANTS) or PARTICIPANTS
    if kind not in SPLIT_KINDS:
        raise DataError(
            f"split.kind={kind!r} is unknown; choose {', '.join(SPLIT_KINDS)} (conf/split/)."
        )
    return kind


def split_dataset(
    videos: pd.DataFrame, split_cfg, candidate_frames: Callable[[str], Sequence[int]]
) -> pd.DataFrame:
    """The split ``split_cfg`` (a conf/split/ config) asks for.

    ``candidate_frames(video)`` gives the frame numbers a video's frames are selected from (read
    only by the frames kind).
    """
    kind = split_kind(split_cfg)
    if kind == KFOLD:
        return split_fold(videos, int(split_cfg.folds), int(split_cfg.fold), int(split_cfg.seed))
    fraction, seed = float(split_cfg.generalisation_fraction), int(split_cfg.seed)
    if kind == PARTICIPANTS:
        return split_participants(videos, fraction, seed)
    candidates = {video: candidate_frames(video) for video in videos["video"]}
    return split_frames(videos, candidates, fraction, seed)


def _check_fraction(generalisation_fraction: float) -> None:
    if not 0 < generalisation_fraction < 1:
        raise DataError(
            f"split.generalisation_fraction={generalisation_fraction} must lie strictly between 0 "
            "and 1 (0.2 in the paper)."
        )


def split_participants(
    videos: pd.DataFrame, generalisation_fraction: float, seed: int
) -> pd.DataFrame:
    """Assign every video to the development or generalisation set, whole participants at a time.

    ``videos`` needs columns participant, video, session. Returns them sorted, with a ``set``
    column.
    """
    _check_fraction(generalisation_fraction)
    videos = (
        videos[["participant", "video", "session"]]
        .sort_values(["participant", "video"])
        .reset_index(drop=True)
    )
    participants = videos["participant"].unique()
    n_generalisation = round(len(participants) * generalisation_fraction)
    if len(participants) < 2:
        raise DataError(
            f"the data set has {len(participants)} participant(s) "
            f"({', '.join(map(str, participants)) or 'none'}); a participant split needs at "
            "least 2 (one per set) — use split=frames (held-out blocks of frames per video: "
            "unseen frames of seen subjects), or add participants; check that data.participants "
            "maps videos to participants as intended."
        )
    if n_generalisation < 1 or n_generalisation >= len(participants):
        # round(n * f) must lie in 1..n-1: f strictly between 0.5/n and 1-0.5/n, to 2 decimals
        lowest = math.floor(50 / len(participants)) / 100 + 0.01
        highest = math.ceil(100 - 50 / len(participants)) / 100 - 0.01
        raise DataError(
            f"{len(participants)} participant(s) cannot be split with generalisation_fraction="
            f"{generalisation_fraction}: it leaves {n_generalisation} for generalisation and "
            f"{len(participants) - n_generalisation} for development, and each set needs at least "
            f"one. Choose split.generalisation_fraction from {lowest:.2f} to {highest:.2f}, "
            "use split=frames (held-out blocks of frames per video), or add "
            "participants (the paper had 33); check that data.participants maps videos to "
            "participants as intended."
        )
    from sklearn.model_selection import GroupShuffleSplit  # here: importing it costs seconds

    splitter = GroupShuffleSplit(n_splits=1, test_size=n_generalisation, random_state=seed)
    _, generalisation_rows = next(splitter.split(videos, groups=videos["participant"]))
    videos["set"] = DEVELOPMENT
    videos.loc[generalisation_rows, "set"] = GENERALISATION
    return videos


def check_folds(n_participants: int, folds, fold=1) -> None:
    """``split.folds`` and ``split.fold`` that a data set of ``n_participants`` can cross-validate."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise DataError(
            f"split.folds={folds!r} is not allowed: cross-validation needs an integer >= 2 folds "
            "(conf/split/kfold.yaml); for one split use split=participants."
        )
    if folds > n_participants:
        fix = (
            f"choose split.folds from 2 to {n_participants} ({n_participants}: leave one "
            "participant out)"
            if n_participants >= 2
            else "use split=frames (held-out blocks of frames per video)"
        )
        raise DataError(
            f"split.folds={folds} asks for more folds than the data set has participants "
            f"({n_participants}): every fold must hold out at least one; {fix}."
        )
    if isinstance(fold, bool) or not isinstance(fold, int) or not 1 <= fold <= folds:
        raise DataError(
            f"split.fold={fold!r} is not a fold of split.folds={folds}: choose an integer from 1 "
            f"to {folds}, e.g. split.fold=1."
        )


def assign_folds(videos: pd.DataFrame, folds: int, seed: int) -> pd.DataFrame:
    """Every video with the fold (1..``folds``) that holds its participant out.

    ``videos`` needs columns participant, video, session. scikit-learn's ``GroupKFold`` with its
    groups (participants) shuffled by ``seed``: whole participants per fold, folds of about equal
    size, the same folds for the same seed and participants. Returns them sorted, with ``fold``.
    """
    from sklearn.model_selection import GroupKFold  # here: importing it costs seconds

    videos = (
        videos[["participant", "video", "session"]]
        .sort_values(["participant", "video"])
        .reset_index(drop=True)
    )
    check_folds(videos["participant"].nunique(), folds)
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    videos["fold"] = 0
    for number, (_, held_out) in enumerate(splitter.split(videos, groups=videos["participant"])):
        videos.loc[held_out, "fold"] = number + 1
    return videos


def split_fold(videos: pd.DataFrame, folds: int, fold: int, seed: int) -> pd.DataFrame:
    """Fold ``fold`` of a ``folds``-fold cross-validation: its participants held out for
    generalisation, every other participant in the development set (PARTICIPANT_COLUMNS)."""
    check_folds(videos["participant"].nunique(), folds, fold)
    assigned = assign_folds(videos, folds, seed)
    assigned["set"] = np.where(assigned["fold"] == fold, GENERALISATION, DEVELOPMENT)
    return assigned[PARTICIPANT_COLUMNS]


def block_size(n_candidates: int, generalisation_fraction: float) -> int:
    """Frames held out of a video with ``n_candidates`` candidate frames (at least 1)."""
    return max(1, round(n_candidates * generalisation_fraction))


def split_frames(
    videos: pd.DataFrame,
    candidates: Mapping[str, Sequence[int]],
    generalisation_fraction: float,
    seed: int,
) -> pd.DataFrame:
    """Hold out one contiguous block of every video's candidate frames as the generalisation set.

    ``candidates[video]``: the frame numbers frames are selected from (a DeepLabCut project's
    labelled frames; every frame of a video). The block is ``block_size`` of them, consecutive in
    frame-number order; where it starts is drawn from a stream seeded by ``seed`` and the video's
    name (the same block for the same seed, whatever other videos the data set has; not always
    the end of the video). Returns one row per contiguous range: FRAME_COLUMNS, sorted by video
    and frame.
    """
    _check_fraction(generalisation_fraction)
    videos = (
        videos[["participant", "video", "session"]]
        .sort_values(["participant", "video"])
        .reset_index(drop=True)
    )
    rows = []
    for video in videos.itertuples(index=False):
        frames = np.unique(np.asarray(candidates[video.video], dtype=int))
        held_out = block_size(len(frames), generalisation_fraction)
        if len(frames) - held_out < 2:
            raise DataError(
                f"video {video.video} has {len(frames)} candidate frame(s); split=frames holds "
                f"out {held_out} and needs 2 more (one train, one test): label more frames of it "
                "(at least 3), or remove it from the data set."
            )
        rng = np.random.default_rng([seed, zlib.crc32(video.video.encode("utf-8")), 2])
        start = int(rng.integers(0, len(frames) - held_out + 1))
        ranges = [
            (DEVELOPMENT, frames[:start]),
            (GENERALISATION, frames[start : start + held_out]),
            (DEVELOPMENT, frames[start + held_out :]),
        ]
        for set_name, members in ranges:
            if len(members):
                rows.append(
                    dict(
                        participant=video.participant,
                        video=video.video,
                        session=video.session,
                        set=set_name,
                        first_frame=int(members[0]),
                        last_frame=int(members[-1]),
                        n_frames=len(members),
                    )
                )
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def frame_sets(split: pd.DataFrame, video: str, frame_numbers: np.ndarray) -> np.ndarray:
    """The set (development | generalisation) of each of a video's ``frame_numbers``.

    Participants kind: the video's set. Frames kind: generalisation inside the video's held-out
    range (first_frame..last_frame), development elsewhere.
    """
    rows = split[split["video"] == video]
    frame_numbers = np.asarray(frame_numbers)
    if "first_frame" not in split.columns:
        return np.full(len(frame_numbers), rows["set"].iloc[0], dtype=object)
    sets = np.full(len(frame_numbers), DEVELOPMENT, dtype=object)
    for block in rows[rows["set"] == GENERALISATION].itertuples(index=False):
        inside = (frame_numbers >= block.first_frame) & (frame_numbers <= block.last_frame)
        sets[inside] = GENERALISATION
    return sets
