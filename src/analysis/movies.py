"""Result movies: the video with the tracked points and the skeleton drawn over every frame, and a
still of one for the MLflow UI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.analysis.videos import VideoInfo


def bodypart_colours(n_bodyparts: int) -> list[tuple[int, int, int]]:
    """One BGR colour per bodypart along a rainbow, as DeepLabCut's labelled videos use."""
    import cv2

    ramp = np.linspace(0, 255, max(n_bodyparts, 1)).astype(np.uint8).reshape(-1, 1)
    return [tuple(int(c) for c in bgr) for bgr in cv2.applyColorMap(ramp, cv2.COLORMAP_JET)[:, 0]]


@dataclass
class MovieStyle:
    """How poses are drawn: points with likelihood >= ``pcutoff`` in their bodypart's colour
    (``colours[j]`` for ``bodyparts[j]``), white skeleton lines between drawn points."""

    bodyparts: list[str]
    skeleton: list[list[str]]
    pcutoff: float
    colours: list[tuple[int, int, int]]
    radius: int = 3
    line_width: int = 1

    @classmethod
    def rainbow(
        cls,
        bodyparts: list[str],
        skeleton: list[list[str]],
        pcutoff: float,
        radius: int = 3,
        line_width: int = 1,
    ) -> MovieStyle:
        """The style with :func:`bodypart_colours` for ``bodyparts``."""
        colours = bodypart_colours(len(bodyparts))
        return cls(bodyparts, skeleton, pcutoff, colours, radius, line_width)


FLAGGED_COLOUR = (0, 0, 255)  # BGR red: the X of a point the trust score flags


def draw_pose(
    frame: np.ndarray, pose: np.ndarray, style: MovieStyle, flagged: np.ndarray | None = None
) -> np.ndarray:
    """Draw one frame's points (likelihood >= pcutoff only) and the skeleton lines whose both ends
    are drawn; a point flagged by the trust score (``flagged[j]``) is a red X instead of a dot."""
    import cv2

    drawn = {
        style.bodyparts[j]: (int(round(x)), int(round(y)))
        for j, (x, y, likelihood) in enumerate(pose)
        if likelihood >= style.pcutoff and np.isfinite(x) and np.isfinite(y)
    }
    for start, end in style.skeleton:
        if start in drawn and end in drawn:
            cv2.line(
                frame, drawn[start], drawn[end], (255, 255, 255), style.line_width, cv2.LINE_AA
            )
    for j, name in enumerate(style.bodyparts):
        if name not in drawn:
            continue
        if flagged is not None and flagged[j]:
            size, thickness = 2 * style.radius + 3, max(1, style.radius // 2 + 1)
            cv2.drawMarker(
                frame, drawn[name], FLAGGED_COLOUR, cv2.MARKER_TILTED_CROSS, size, thickness
            )
        else:
            cv2.circle(frame, drawn[name], style.radius, style.colours[j], -1, cv2.LINE_AA)
    return frame


def write_movie(
    video: VideoInfo,
    poses: np.ndarray,
    style: MovieStyle,
    path: Path,
    flagged: np.ndarray | None = None,
) -> int:
    """The video with points and skeleton drawn over every frame (OpenCV, mp4v), points flagged
    by the trust score (``flagged``, n_frames x n_points) as red X; returns the frames written."""
    import cv2

    capture = cv2.VideoCapture(str(video.path))
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"mp4v"), video.fps, (video.width, video.height)
    )
    written = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if written < len(poses):
                marks = flagged[written] if flagged is not None else None
                frame = draw_pose(frame, poses[written], style, marks)
            writer.write(frame)
            written += 1
    finally:
        capture.release()
        writer.release()
    return written


def movie_still(movie: Path, path: Path) -> None:
    """The middle frame of a result movie as a PNG: the MLflow UI shows images, not movies."""
    import cv2

    capture = cv2.VideoCapture(str(movie))
    capture.set(cv2.CAP_PROP_POS_FRAMES, max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) // 2))
    ok, frame = capture.read()
    capture.release()
    if ok:
        cv2.imwrite(str(path), frame)
