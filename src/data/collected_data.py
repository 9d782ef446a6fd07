"""DeepLabCut's label files, ``labeled-data/<video>/CollectedData_<scorer>.h5`` (and ``.csv``).

Read as DeepLabCut writes them (old and new layouts), turned into one long validated table, and
written in DeepLabCut 3's own layout.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from src.data.validation import check_inside_image, one_line
from src.errors import DataError


def read_collected_data(path: Path) -> pd.DataFrame:
    """Read a ``CollectedData_<scorer>`` table as DeepLabCut writes it (.h5, else .csv)."""
    try:
        if path.suffix == ".h5":
            return pd.read_hdf(path)
        # DeepLabCut >= 2.2 writes a 3-column index ("scorer,,,<name>..."); older projects one.
        with open(path, encoding="utf-8") as handle:
            index_columns = 3 if handle.readline().split(",")[1:2] == [""] else 1
        return pd.read_csv(path, header=[0, 1, 2], index_col=list(range(index_columns)))
    except Exception as error:  # corrupt files raise anything from HDF5, pandas or the csv parser
        raise DataError(
            f"{path} cannot be read ({type(error).__name__}: {one_line(error)}); restore it from "
            "a backup, or re-save the labels in DeepLabCut's labelling GUI."
        ) from error


def write_collected_data(
    labels: pd.DataFrame, images: pd.Series, scorer: str, bodyparts: list[str], folder: Path
):
    """Write labels of one video as DeepLabCut's ``CollectedData_<scorer>.h5`` and ``.csv``.

    ``labels`` is long (frame, bodypart, x, y); ``images`` maps frame -> image file name in
    ``folder``. The layout (3-level index, key ``df_with_missing``) is DeepLabCut 3's own.
    """
    frames = sorted(images.index)
    wide = labels.pivot(index="frame", columns="bodypart", values=["x", "y"]).swaplevel(axis=1)
    wide = wide.reindex(index=frames, columns=pd.MultiIndex.from_product([bodyparts, ["x", "y"]]))
    table = pd.DataFrame(
        wide.to_numpy(dtype=float),
        index=pd.MultiIndex.from_tuples([("labeled-data", folder.name, images[f]) for f in frames]),
        columns=pd.MultiIndex.from_product(
            [[scorer], bodyparts, ["x", "y"]], names=["scorer", "bodyparts", "coords"]
        ),
    )
    folder.mkdir(parents=True, exist_ok=True)
    table.to_hdf(folder / f"CollectedData_{scorer}.h5", key="df_with_missing", mode="w")
    table.to_csv(folder / f"CollectedData_{scorer}.csv")


def write_labels(
    labels: pd.DataFrame,
    selection: pd.DataFrame,
    scorer: str,
    bodyparts: list[str],
    labeled_data: Path,
) -> None:
    """Write ``labeled-data/<video>/CollectedData_<scorer>.h5/.csv`` for each video of a selection.

    ``selection`` has one row per frame (video, frame, image); ``labels`` is long (video, frame,
    bodypart, x, y).
    """
    for video, rows in selection.groupby("video"):
        images = rows.set_index("frame")["image"].map(lambda i: Path(i).name)
        write_collected_data(
            labels[labels["video"] == video], images, scorer, bodyparts, labeled_data / video
        )


def tidy_collected_data(wide, path, root, folder_name, scorer, bodyparts) -> pd.DataFrame:
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
            f"{path} is labelled by scorer(s) {file_scorers} in its header but its name says "
            f"{scorer!r}; rename the file to CollectedData_{file_scorers[0]}.h5 or re-save the "
            f"labels as {scorer!r}."
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
        raise DataError(
            f"{path} labels the same frame more than once: {duplicated[:5]}; "
            "keep one row per image."
        )
    sizes = {}
    for image in images:
        image_path = root / image
        if not image_path.is_file():
            raise DataError(
                f"{path} labels {image}, but {image_path} does not exist; restore the frame or "
                "remove its row with "
                "deeplabcut.dropannotationfileentriesduetodeletedimages(config)."
            )
        try:
            with Image.open(image_path) as frame_image:  # reads the header only
                sizes[image] = frame_image.size
        except (OSError, UnidentifiedImageError) as error:
            why = (
                "not an image file"
                if isinstance(error, UnidentifiedImageError)
                else error.strerror or str(error)
            )
            raise DataError(
                f"{image_path} (labelled in {path}) cannot be read as an image ({why}); restore "
                "the frame from a backup or extract it again from its video, or remove its row "
                "with deeplabcut.dropannotationfileentriesduetodeletedimages(config)."
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
    check_inside_image(long, image_sizes, path, key="image")
    return long[["video", "frame", "bodypart", "x", "y", "image"]]


def _image_relpath(index, folder_name: str) -> str:
    """CollectedData row index -> 'labeled-data/<video>/<img>.png' (old and new formats)."""
    parts = list(index) if isinstance(index, tuple) else str(index).replace("\\", "/").split("/")
    return "/".join(["labeled-data", folder_name, parts[-1]])


def _frame_number(image: str, source: Path) -> int:
    """The frame number in an image name (DeepLabCut's img<number>.png)."""
    digits = re.findall(r"\d+", Path(image).stem)
    if not digits:
        raise DataError(
            f"{source}: cannot tell the frame number of {image}; DeepLabCut names frames "
            "img<number>.png, rename the image and its row accordingly."
        )
    return int(digits[-1])
