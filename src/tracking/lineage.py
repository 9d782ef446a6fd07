"""Lineage in MLflow: the data sets a run was trained or evaluated on, as MLflow dataset inputs.

Every condition's run logs two inputs with ``mlflow.log_input``: the raw data set
(``<data.name>-raw``: the videos and annotations ``dataset.yaml``'s ``source`` names) and the prepared
frames (``<data.name>-frames``: split, selection, labelled images), each with DVC's hash of the folder
as its digest (the ``md5`` ``dvc.lock`` records for it, e.g. ``3dfc...05df.dir``), the split, the
frames per set and what they were used for as input tags, and the context ``training`` (trained
and evaluated on them) or ``evaluation`` (condition 0: evaluated only). The MLflow UI shows them
in the run's dataset view. Names carry no identifiers: a data set's name, its folder relative to
the working directory (as the ``data.root`` param already shows) and counts, never video names.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.data.meta_dataset import MetaDataset
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.types.schema import ColSpec, Schema

from src.tracking.store import folder_version

TRAINING, EVALUATION = "training", "evaluation"


def dvc_md5(folder: Path) -> str:
    """DVC's hash of a folder (``<md5>.dir``), computed with DVC's own hashing library (dvc-data) as
    ``dvc add`` / ``dvc.lock`` record it (without .dvcignore rules)."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs.local import LocalFileSystem

    fs = LocalFileSystem()
    with tempfile.TemporaryDirectory(prefix="dvc-hash-") as tmp:
        _, _, tree = build(HashFileDB(fs, tmp), str(Path(folder).resolve()), fs, "md5")
    return tree.hash_info.value


def shown_path(folder: Path) -> str:
    """``folder`` relative to the working directory (the repository) when inside it."""
    folder = Path(folder).resolve()
    try:
        return folder.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return folder.as_posix()


def frames_schema(bodyparts: list[str]) -> Schema:
    """The prepared frames' columns: the image, its set, and x, y of every labelled bodypart."""
    return Schema(
        [ColSpec("string", "image"), ColSpec("string", "set")]
        + [ColSpec("double", f"{b}_{c}") for b in bodyparts for c in ("x", "y")]
    )


def data_sets(facts: dict, prepared_dir: Path) -> tuple[MetaDataset, MetaDataset]:
    """The raw data set and its prepared frames as MLflow datasets, digests by DVC."""
    name = str(facts["name"])
    raw_dir, prepared_dir = Path(facts["source"]), Path(prepared_dir)
    raw = MetaDataset(
        LocalArtifactDatasetSource(shown_path(raw_dir)), name=f"{name}-raw", digest=dvc_md5(raw_dir)
    )
    prepared = MetaDataset(
        LocalArtifactDatasetSource(shown_path(prepared_dir)),
        name=f"{name}-frames",
        digest=dvc_md5(prepared_dir),
        schema=frames_schema(list(facts["bodyparts"])),
    )
    return raw, prepared


def split_tags(
    facts: dict, frames: pd.DataFrame, context: str, evaluated: bool = True
) -> dict[str, str]:
    """The split, how many frames, videos and participants each set holds (no identifiers), and
    which sets the run used for what."""
    sets = sorted(frames["set"].unique())
    trained_on = [s for s in sets if s in ("train", "test")]  # DeepLabCut's train and test split
    tags = {
        "split": str(facts.get("split_kind", "participants")),
        "generalisation_meaning": str(facts.get("generalisation_meaning", "unseen participants")),
        "used_for": "; ".join(
            ([f"training: {', '.join(trained_on)}"] if context == TRAINING else [])
            + ([f"evaluation: {', '.join(sets)}"] if evaluated else [])
        ),
    }
    for set_name, rows in frames.groupby("set"):
        counts = [f"{len(rows)} frames", f"{rows['video'].nunique()} videos"]
        if "participant" in rows:
            counts.append(f"{rows['participant'].nunique()} participants")
        tags[f"set_{set_name}"] = ", ".join(counts)
    return tags


def log_data_inputs(
    facts: dict, prepared_dir: Path, frames: pd.DataFrame, context: str, evaluated: bool = True
) -> None:
    """Log the raw data set and the prepared frames as inputs of the active run (``context``:
    training | evaluation; ``frames``: the condition's rows, with their ``set``).

    MLflow keeps one input per data set and run: a run that trained on the data (context
    ``training``, its tag ``used_for`` names the evaluation too) keeps that input when it is
    evaluated; a model evaluated only (condition 0) gets context ``evaluation``. ``evaluated``:
    False for a run that only trains (pre-training).
    """
    inputs = mlflow.get_run(mlflow.active_run().info.run_id).inputs.dataset_inputs
    logged = {(i.dataset.name, i.dataset.digest) for i in inputs}
    if {name for name, _ in logged} >= {f"{facts['name']}-raw", f"{facts['name']}-frames"}:
        return  # the training logged them (the evaluate stage): no second hashing of the videos
    tags = split_tags(facts, frames, context, evaluated)
    # the run's tag `split` holds the same hash of split.csv: which participants are held out
    tags["split_version"] = folder_version(Path(prepared_dir), "split.csv")
    for dataset in data_sets(facts, prepared_dir):
        if (dataset.name, dataset.digest) not in logged:
            mlflow.log_input(dataset, context=context, tags=tags)
