"""Participant-level split into a development set and a generalisation set.

Splitting by participant, never by frame or video, is what makes the generalisation MAE an
honest estimate of how the model does on a patient it has never seen (Haberfehlner et al. 2022).
"""

from __future__ import annotations

import pandas as pd

from src.errors import DataError

DEVELOPMENT = "development"


GENERALISATION = "generalisation"


def split_participants(
    videos: pd.DataFrame, generalisation_fraction: float, seed: int
) -> pd.DataFrame:
    """Assign every video to the development or generalisation set, whole participants at a time.

    ``videos`` needs columns participant, video, session. Returns them sorted, with a ``set``
    column.
    """
    if not 0 < generalisation_fraction < 1:
        raise DataError(
            f"split.generalisation_fraction={generalisation_fraction} must lie strictly between 0 "
            "and 1 (0.2 in the paper)."
        )
    videos = (
        videos[["participant", "video", "session"]]
        .sort_values(["participant", "video"])
        .reset_index(drop=True)
    )
    participants = videos["participant"].unique()
    n_generalisation = round(len(participants) * generalisation_fraction)
    if n_generalisation < 1 or n_generalisation >= len(participants):
        raise DataError(
            f"{len(participants)} participant(s) cannot be split with generalisation_fraction="
            f"{generalisation_fraction}: it leaves {n_generalisation} for generalisation and "
            f"{len(participants) - n_generalisation} for development, and each set needs at least "
            "one. Add participants (the paper had 33), or change split.generalisation_fraction; "
            "check that data.participants maps videos to participants as intended."
        )
    from sklearn.model_selection import GroupShuffleSplit  # here: importing it costs seconds

    splitter = GroupShuffleSplit(n_splits=1, test_size=n_generalisation, random_state=seed)
    _, generalisation_rows = next(splitter.split(videos, groups=videos["participant"]))
    videos["set"] = DEVELOPMENT
    videos.loc[generalisation_rows, "set"] = GENERALISATION
    return videos
