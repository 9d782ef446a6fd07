"""Reading a data set's YAML and CSV files, and checking their content, with one-line errors.

Every problem found becomes a :class:`~src.errors.DataError` that names the file, what is wrong
and how to fix it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pandas as pd
import yaml

from src.errors import DataError


def read_yaml(path: Path) -> dict:
    """A YAML file that must hold a mapping."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as error:
        raise DataError(
            f"{path} cannot be read as YAML ({one_line(error)}); fix its syntax or restore it."
        ) from error
    if not isinstance(content, dict):
        raise DataError(f"{path} is empty or not a YAML mapping; restore it.")
    return content


def read_csv(path: Path, required: list[str]) -> pd.DataFrame:
    """A CSV table that must have the ``required`` columns."""
    if not path.is_file():
        raise DataError(f"{path} does not exist; restore it, or regenerate the data set.")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{path} cannot be read as CSV ({one_line(error)}); restore it.") from error
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(f"{path} lacks column(s) {missing}; it needs {required}.")
    return table


def override(key: str, value) -> str:
    """``key=value`` as a command-line override for a message's fix, quoted for the shell where
    needed (Hydra takes the quoted whole, spaces included)."""
    return shlex.quote(f"{key}={value}")


def one_line(error: Exception) -> str:
    """The gist of a library's error: HDF5 and YAML errors span many lines."""
    mark = getattr(error, "problem_mark", None)
    if isinstance(error, yaml.YAMLError) and mark is not None:
        return f"{error.problem} at line {mark.line + 1}, column {mark.column + 1}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if "End of HDF5 error back trace" in lines:  # the innermost cause is the trace's last line
        return lines[lines.index("End of HDF5 error back trace") - 1]
    return lines[-1] if lines else type(error).__name__


def check_frames_exist(annotations, videos, source):
    """Every annotated frame number lies within its video."""
    counts = annotations.merge(videos[["video", "n_frames"]], on="video")
    beyond = counts[(counts["frame"] < 0) | (counts["frame"] >= counts["n_frames"])]
    if len(beyond):
        row = beyond.iloc[0]
        raise DataError(
            f"{source} annotates frame {row.frame} of video {row.video}, which has {row.n_frames} "
            "frames; remove those rows or restore the full video."
        )


def check_inside_image(annotations, sizes: pd.DataFrame, source, key="video"):
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


def check_unique(table: pd.DataFrame, keys: list[str], source: Path) -> None:
    """One row per key: a repeated row would count a frame (or a video) twice in every result."""
    repeated = table[table.duplicated(keys, keep=False)]
    if len(repeated):
        first = ", ".join(f"{k}={repeated.iloc[0][k]}" for k in keys)
        raise DataError(
            f"{source} has {len(repeated)} rows that repeat the same {'/'.join(keys)} "
            f"(first: {first}); keep one row each (remove the duplicates) or regenerate the data "
            "set."
        )


def check_numeric(table: pd.DataFrame, columns: list[str], source: Path) -> None:
    """Coordinates and frame numbers are numbers (empty cells = not labelled are fine for x and y).

    The columns of ``table`` are converted to numbers in place.
    """
    for column in columns:
        given = table[column].notna()
        numbers = pd.to_numeric(table[column], errors="coerce")
        bad = given & numbers.isna()
        if column == "frame":
            bad |= numbers.isna() | (numbers % 1 != 0)
        if bad.any():
            kind = "whole numbers" if column == "frame" else "numbers"
            raise DataError(
                f"{source}: column {column!r} holds {bad.sum()} value(s) that are not {kind}, "
                f"first {table.loc[bad, column].iloc[0]!r} in row {int(bad.idxmax()) + 2}; "
                "correct them (empty = not labelled) or restore the file."
            )
        table[column] = numbers
