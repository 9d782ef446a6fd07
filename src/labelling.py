"""Round trip through DeepLabCut's labelling GUI. export: the prepared selection of frames becomes a
DeepLabCut project under <paths.labelling_dir>/<data.name>/ (config.yaml, labeled-data/); label it in
napari. import: the labeller's CollectedData_<scorer>.h5 is read back (validated like any DeepLabCut
project) and becomes the labels of the prepared frames (<paths.prepared_dir>/<data.name>/labels.csv).

Examples:
    python -m src.labelling labelling.action=export
    python -m src.labelling labelling.action=import labelling.scorer=Me

Open the exported project with ``napari`` / ``deeplabcut.label_frames(config)`` and label.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig
from PIL import Image

from src.cli import stage
from src.data.collected_data import write_labels
from src.data.dlc_project import load_dlc_project
from src.data.prepared import read_prepared
from src.engine import write_labelling_config  # DeepLabCut's config.yaml, engine-neutral
from src.errors import DataError, exit_on_data_error

log = logging.getLogger(__name__)


def export_for_labelling(
    prepared_dir: Path, project_dir: Path, scorer: str, include_labels: bool
) -> Path:
    """Write the selected frames as a DeepLabCut project for labelling; returns its config.yaml."""
    prepared_dir, project_dir = Path(prepared_dir), Path(project_dir)
    facts, selection, labels = read_prepared(prepared_dir)
    if (project_dir / "labeled-data").exists():
        raise DataError(
            f"{project_dir} already holds a labelling project; import its labels first "
            "(labelling.action=import) or move it away. It is never overwritten."
        )
    if include_labels:
        write_labels(labels, selection, scorer, facts["bodyparts"], project_dir / "labeled-data")
    video_sets = {}
    for video, rows in selection.groupby("video"):
        folder = project_dir / "labeled-data" / video
        folder.mkdir(parents=True, exist_ok=True)
        for image in rows["image"]:
            shutil.copyfile(prepared_dir / image, folder / Path(image).name)
        # DeepLabCut finds a labeled-data folder through the stem of its video_sets key.
        width, height = Image.open(folder / Path(rows["image"].iloc[0]).name).size
        video_sets[str(project_dir / "videos" / f"{video}.mp4")] = {
            "crop": f"0, {width}, 0, {height}"
        }
    config = write_labelling_config(
        project_dir,
        project_path=project_dir,
        task=facts["name"],
        scorer=scorer,
        bodyparts=facts["bodyparts"],
        skeleton=facts["skeleton"],
        video_sets=video_sets,
    )
    log.info("exported %d frames for labelling to %s", len(selection), project_dir)
    return config


def import_labels(project_dir: Path, prepared_dir: Path, scorer: str) -> pd.DataFrame:
    """Make the labeller's labels the labels of the prepared frames; returns the new labels table.

    Frames labelled in the project but not in the selection are ignored; selected frames left
    unlabelled are kept with NaN (not labelled). Files are replaced atomically.
    """
    prepared_dir = Path(prepared_dir)
    facts, selection, _ = read_prepared(prepared_dir)
    if not (Path(project_dir) / "config.yaml").is_file():
        raise DataError(
            f"{project_dir} holds no labelling project (no config.yaml); export the frames first "
            "(labelling.action=export), label them in DeepLabCut's GUI, then import."
        )
    labelled = load_dlc_project(Path(project_dir), scorer=scorer).annotations
    if set(labelled["bodypart"]) != set(facts["bodyparts"]):
        raise DataError(
            f"{project_dir} labels bodyparts {sorted(set(labelled['bodypart']))}, "
            f"the prepared data {facts['bodyparts']}; label the project's own bodyparts."
        )
    keys = selection[["participant", "video", "frame"]].drop_duplicates()
    labels = keys.merge(
        labelled.drop(columns=["participant", "image"]), on=["video", "frame"], how="left"
    )
    unlabelled = labels[labels["bodypart"].isna()][["video", "frame"]].drop_duplicates()
    if len(unlabelled):
        log.warning(
            "%d selected frame(s) have no labels in %s, e.g. %s",
            len(unlabelled),
            project_dir,
            unlabelled.head(3).values.tolist(),
        )
        labels = labels.dropna(subset=["bodypart"])
    labels = labels.sort_values(["video", "frame"], kind="stable")[
        ["participant", "video", "frame", "bodypart", "x", "y"]
    ]

    staging = prepared_dir / ".labeled-data.import"
    shutil.rmtree(staging, ignore_errors=True)
    write_labels(labels, selection, facts["scorer"], facts["bodyparts"], staging)
    for written in staging.glob("*/*"):
        os.replace(written, prepared_dir / "labeled-data" / written.relative_to(staging))
    shutil.rmtree(staging)
    temporary = prepared_dir / ".labels.csv.import"
    labels.to_csv(temporary, index=False, float_format="%.3f")
    os.replace(temporary, prepared_dir / "labels.csv")
    return labels


@stage
def main(cfg: DictConfig) -> None:
    prepared_dir = Path(cfg.paths.prepared_dir) / cfg.data.name
    project_dir = Path(cfg.paths.labelling_dir) / cfg.data.name
    with exit_on_data_error():
        if cfg.labelling.action == "export":
            config = export_for_labelling(
                prepared_dir, project_dir, cfg.labelling.scorer, cfg.labelling.include_labels
            )
            print(
                "label the frames in DeepLabCut: napari, or python -c "
                f"\"import deeplabcut; deeplabcut.label_frames('{config}')\""
            )
        elif cfg.labelling.action == "import":
            labels = import_labels(project_dir, prepared_dir, cfg.labelling.scorer)
            print(f"imported {len(labels)} labels into {prepared_dir}")
        else:
            raise DataError(
                f"labelling.action={cfg.labelling.action!r} is unknown; use export or import."
            )


if __name__ == "__main__":
    main()
