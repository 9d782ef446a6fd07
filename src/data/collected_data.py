"""DeepLabCut's label files, ``labeled-data/<video>/CollectedData_<scorer>.h5`` (and ``.csv``).

Read as DeepLabCut writes them (old and new layouts), turned into one long validated table, and
written in DeepLabCut 3's own layout.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import tables
from PIL import Image, UnidentifiedImageError

from src.data.validation import check_inside_image, one_line
from src.errors import DataError


def read_collected_data(path: Path) -> pd.DataFrame:
    """Read a ``CollectedData_<scorer>`` table as DeepLabCut writes it (.h5, else .csv).

    Both CSV layouts are read: DeepLabCut < 2.2 (and Lightning Pose) write one index column with
    the image path (``labeled-data/<video>/img001.png``, with ``\\`` on Windows); DeepLabCut >= 2.2
    three (``labeled-data``, ``<video>``, ``img001.png``). The columns are the header rows
    (scorer, [individuals,] bodyparts, coords); empty cells are NaN (not labelled).
    """
    try:
        if path.suffix == ".h5":
            return pd.read_hdf(path)
        cells = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, na_filter=False)
    except Exception as error:  # corrupt files raise anything from HDF5, pandas or the csv parser
        raise DataError(
            f"{path} cannot be read ({type(error).__name__}: {one_line(error)}); restore it from "
            "a backup, or re-save the labels in DeepLabCut's labelling GUI."
        ) from error
    return _collected_csv_table(cells, path)


HEADER_NAMES = ("scorer", "individuals", "bodyparts", "coords")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _collected_csv_table(cells: pd.DataFrame, path: Path) -> pd.DataFrame:
    """The cells of a DeepLabCut-style CSV -> a table with its header rows as column levels.

    Read by hand rather than with ``pd.read_csv(header=[0, 1, 2])``, which takes a first frame
    whose points are all unlabelled (an empty row) for the index's name and drops it.
    """
    first = cells.iloc[:, 0].str.strip().str.lower()
    n_header = 0
    while n_header < len(cells) and first.iloc[n_header] in HEADER_NAMES:
        n_header += 1
    if n_header == 0:
        raise DataError(
            f"{path} does not start with DeepLabCut's header rows (scorer, bodyparts, coords); "
            "re-save the labels with DeepLabCut (or Lightning Pose), or restore the file."
        )
    # The index columns: "scorer" followed by empty cells in the first row (3 in DLC >= 2.2).
    top = cells.iloc[0].tolist()
    n_index = 1
    while n_index < len(top) - 1 and top[n_index] == "":
        n_index += 1
    body = cells.iloc[n_header:]
    values = body.iloc[:, n_index:]
    if len(body) and (values.iloc[0] == "").all():
        name = "/".join(body.iloc[0, :n_index]).lower()
        if not name.endswith(IMAGE_SUFFIXES):  # pandas writes the index's name as a row
            body, values = body.iloc[1:], values.iloc[1:]
    columns = pd.MultiIndex.from_arrays(
        [cells.iloc[row, n_index:].tolist() for row in range(n_header)],
        names=[first.iloc[row] for row in range(n_header)],
    )
    if n_index == 1:
        index = pd.Index(body.iloc[:, 0].tolist())
    else:
        index = pd.MultiIndex.from_frame(body.iloc[:, :n_index])
        index.names = [None] * n_index
    table = values.apply(lambda column: pd.to_numeric(column.str.strip(), errors="coerce"))
    not_numbers = (values.apply(lambda column: column.str.strip()) != "") & table.isna()
    if not_numbers.to_numpy().any():
        row, column = np.argwhere(not_numbers.to_numpy())[0]
        raise DataError(
            f"{path}: line {int(body.index[row]) + 1} holds {values.iloc[row, column]!r} where a "
            f"coordinate ({' '.join(map(str, columns[column]))}) belongs; correct it (an empty cell "
            "= not labelled) in DeepLabCut's labelling GUI, or restore the file."
        )
    return pd.DataFrame(table.to_numpy(dtype=float), index=index, columns=columns)


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
    with _untimed_hdf5():
        table.to_hdf(folder / f"CollectedData_{scorer}.h5", key="df_with_missing", mode="w")
    table.to_csv(folder / f"CollectedData_{scorer}.csv")


@contextmanager
def _untimed_hdf5():
    """HDF5 objects written inside record no creation and modification times.

    HDF5 stamps every dataset with the time it was written, so the same labels would make other
    bytes on every run, and the prepared folder's DVC hash and MLflow input digests would differ
    between runs of the same data. pandas' ``to_hdf`` cannot pass PyTables' ``track_times``.
    """
    init = tables.Leaf.__init__

    def untimed(self, parentnode, name, new=False, filters=None, byteorder=None, _log=True, *_):
        init(self, parentnode, name, new, filters, byteorder, _log, False)  # False: track_times

    tables.Leaf.__init__ = untimed
    try:
        yield
    finally:
        tables.Leaf.__init__ = init


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
    """Wide DeepLabCut table of one labeled-data folder -> long (video, frame, bodypart, x, y,
    image), validated. The folder is the video, whatever folder the rows' paths name."""
    check_header(wide, path, scorer)
    images = [_image_relpath(index, folder_name) for index in wide.index]
    long = long_labels(wide, path, root, images, bodyparts, BODYPARTS_FIX_DLC)
    long["video"] = folder_name
    check_frame_numbers(long, path)
    return long[["video", "frame", "bodypart", "x", "y", "image"]]


BODYPARTS_FIX_DLC = (
    "the project's config.yaml",
    "make the config's `bodyparts:` list match, or relabel with deeplabcut.label_frames",
)


def check_header(wide: pd.DataFrame, path: Path, scorer: str | None) -> str:
    """A single-animal header (scorer, bodyparts, coords) by one scorer; returns the scorer.

    ``scorer`` None accepts the one scorer the file names (Lightning Pose's single file).
    """
    if isinstance(wide.columns, pd.MultiIndex) and "individuals" in wide.columns.names:
        raise DataError(
            f"{path} is a multi-animal file (header rows scorer, individuals, bodyparts, coords); "
            "only single-animal data is supported: label one subject per video in a "
            "single-animal project."
        )
    if not isinstance(wide.columns, pd.MultiIndex) or wide.columns.nlevels != 3:
        raise DataError(
            f"{path} does not have DeepLabCut's 3-level header (scorer, bodyparts, coords); "
            "multi-animal files (4 levels) are not supported. Re-save the labels with DeepLabCut."
        )
    wide.columns = wide.columns.set_names(["scorer", "bodyparts", "coords"])
    file_scorers = sorted(set(wide.columns.get_level_values("scorer")))
    if scorer is None and len(file_scorers) == 1:
        return file_scorers[0]
    if file_scorers != [scorer]:
        if scorer is None:
            raise DataError(
                f"{path} is labelled by several scorers {file_scorers} in its header; keep the "
                "labels of one scorer (one column pair per keypoint)."
            )
        raise DataError(
            f"{path} is labelled by scorer(s) {file_scorers} in its header but its name says "
            f"{scorer!r}; rename the file to CollectedData_{file_scorers[0]}.h5 or re-save the "
            f"labels as {scorer!r}."
        )
    return scorer


def long_labels(wide, path, root, images, bodyparts, bodyparts_fix) -> pd.DataFrame:
    """Wide table with a checked header -> long (frame, bodypart, x, y, image), validated.

    ``images`` are the rows' image paths relative to ``root``; ``bodyparts`` the expected ones,
    and ``bodyparts_fix`` (where they are listed, how to fix a difference) for the message.
    Unlabelled points stay NaN; rows whose points are all NaN stay (they are not labelled
    frames: frame selection and the metrics skip NaN).
    """
    (scorer,) = set(wide.columns.get_level_values("scorer"))
    labelled = list(dict.fromkeys(wide.columns.get_level_values("bodyparts")))
    missing = [b for b in bodyparts if b not in labelled]
    extra = [b for b in labelled if b not in bodyparts]
    if missing or extra:
        where, fix = bodyparts_fix
        raise DataError(
            f"{path} has bodyparts that differ from {where} "
            f"(missing from the labels: {missing}, not in the config: {extra}); {fix}."
        )
    coords = set(wide.columns.get_level_values("coords"))
    if not {"x", "y"} <= coords:
        raise DataError(
            f"{path} has coords {sorted(coords)} in its third header row, not x and y; "
            "re-save the labels with DeepLabCut (or Lightning Pose)."
        )
    if len(set(images)) != len(images):
        duplicated = sorted({i for i in images if images.count(i) > 1})
        raise DataError(
            f"{path} labels the same frame more than once: {duplicated[:5]}; "
            "keep one row per image."
        )
    sizes = {image: _image_size(root, image, path) for image in images}

    xy = wide[scorer].stack(level="bodyparts", future_stack=True)
    xy = xy.reset_index(level="bodyparts")
    xy["image"] = np.repeat(images, len(labelled))
    long = xy.reset_index(drop=True).rename(columns={"bodyparts": "bodypart"})
    long.columns.name = None
    long["frame"] = long["image"].map(lambda i: _frame_number(i, path))
    long["x"] = pd.to_numeric(long["x"], errors="coerce")
    long["y"] = pd.to_numeric(long["y"], errors="coerce")
    image_sizes = pd.DataFrame.from_dict(sizes, orient="index", columns=["width", "height"])
    check_inside_image(long, image_sizes, path, key="image")
    return long[["frame", "bodypart", "x", "y", "image"]]


def _image_size(root: Path, image: str, source: Path) -> tuple[int, int]:
    """(width, height) of a labelled frame, from its header; a one-line error if it is unusable."""
    image_path = root / image
    if not image_path.is_file():
        raise DataError(
            f"{source} labels {image}, but {image_path} does not exist; restore the frame or "
            "remove its row with deeplabcut.dropannotationfileentriesduetodeletedimages(config)."
        )
    try:
        with Image.open(image_path) as frame_image:  # reads the header only
            return frame_image.size
    except (OSError, UnidentifiedImageError) as error:
        why = (
            "not an image file"
            if isinstance(error, UnidentifiedImageError)
            else error.strerror or str(error)
        )
        raise DataError(
            f"{image_path} (labelled in {source}) cannot be read as an image ({why}); restore "
            "the frame from a backup or extract it again from its video, or remove its row "
            "with deeplabcut.dropannotationfileentriesduetodeletedimages(config)."
        ) from error


def check_frame_numbers(long: pd.DataFrame, source: Path) -> None:
    """One image per (video, frame): frame numbers come from image names (img<number>.png)."""
    images = long.drop_duplicates("image")
    clash = images[images.duplicated(["video", "frame"], keep=False)]
    if len(clash):
        first = clash[clash["frame"] == clash["frame"].iloc[0]]
        raise DataError(
            f"{source}: images {sorted(first['image'])[:3]} of video {first['video'].iloc[0]!r} "
            f"have the same frame number {first['frame'].iloc[0]}; give each frame of a video "
            "its own number (img<number>.png), or put frames of different videos in folders of "
            "their own."
        )


def _image_relpath(index, folder_name: str) -> str:
    """CollectedData row index -> 'labeled-data/<video>/<img>.png' (old and new formats)."""
    return "/".join(["labeled-data", folder_name, image_path_parts(index)[-1]])


def image_path_parts(index) -> list[str]:
    """A label row's index (a path string, with / or \\, or DLC 2.2's 3 levels) -> path parts."""
    parts = list(index) if isinstance(index, tuple) else [index]
    return [p for part in parts for p in str(part).replace("\\", "/").split("/") if p]


def _frame_number(image: str, source: Path) -> int:
    """The frame number in an image name (DeepLabCut's img<number>.png)."""
    digits = re.findall(r"\d+", Path(image).stem)
    if not digits:
        raise DataError(
            f"{source}: cannot tell the frame number of {image}; DeepLabCut names frames "
            "img<number>.png, rename the image and its row accordingly."
        )
    return int(digits[-1])
