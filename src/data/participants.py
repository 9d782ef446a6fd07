"""Whose videos: each video's participant and session, from a table or from its name."""

from __future__ import annotations

import re
from pathlib import Path

from src.data.validation import read_csv
from src.errors import DataError


def participants_for(videos, table, pattern, source) -> dict[str, tuple[str, str]]:
    """Map each video to (participant, session).

    From ``table`` (columns video, participant[, session]; ``data.participants.table``) if given,
    else from the regex ``pattern`` (``data.participants.pattern``) matched against the video name.
    ``source`` says where the video names come from, for messages (e.g. ".../labeled-data").
    """
    if table:
        mapping = read_csv(Path(table), required=["video", "participant"])
        mapping["video"] = mapping["video"].astype(str)
        repeated = mapping[mapping.duplicated("video", keep=False)]
        if len(repeated):
            video = repeated["video"].iloc[0]
            rows = [i + 2 for i in repeated.index[repeated["video"] == video]]
            raise DataError(
                f"{table} lists video {video!r} more than once (lines {rows}); keep one row per "
                "video (video, participant[, session]): remove the duplicates."
            )
        if "session" not in mapping:
            mapping["session"] = (
                mapping.groupby("participant").cumcount().map(lambda i: f"S{i + 1}")
            )
        known = {str(r.video): (str(r.participant), str(r.session)) for r in mapping.itertuples()}
        unmapped = [v for v in videos if v not in known]
        if unmapped:
            raise DataError(
                f"{table} does not say whose videos {unmapped} are; "
                "add a row (video, participant) each."
            )
        return {v: known[v] for v in videos}
    try:
        regex = re.compile(pattern or r"^(?P<participant>.+)$")
    except re.error as error:
        raise DataError(
            f"data.participants.pattern {pattern!r} is not a valid regular expression ({error}); "
            "fix it, e.g. '^(?P<participant>[^_]+)_(?P<session>.+)$' "
            "(quote it on the command line)."
        ) from None
    if "participant" not in regex.groupindex:
        raise DataError(
            f"data.participants.pattern {regex.pattern!r} has no (?P<participant>...) group; "
            "add one."
        )
    result = {}
    for video in videos:
        match = regex.search(video)
        if not match:
            raise DataError(
                f"video {video!r} (in {source}) does not match "
                f"data.participants.pattern {regex.pattern!r}; fix the pattern or give "
                "data.participants.table."
            )
        session = match.groupdict().get("session") or video
        result[video] = (match.group("participant"), session)
    return result
