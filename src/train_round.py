"""Train one active labelling round (docs/active_labelling.md): the DVC pipeline's round stage.

A round is recorded in the study by ``python -m src.label_round import --train`` as
``pipeline.rounds.<name>`` (its round folder and its merged annotations); dvc.yaml's ``round``
stage runs this once per round, so adding a round trains only that round. It builds the round's
prepared folder under ``<pipeline.dir>/rounds/<name>/prepared/``: the study's prepared folder with
the round's ``selection.csv`` (the test and generalisation frames are the study's, checked), the
merged annotations as ``labels.csv`` and the exported frames' images, named as src.prepare names
them. Then it trains and evaluates the round's budget (labelled frames per video) with the study's
training code (src/training/condition.py), in an MLflow run tagged ``labelling_round``,
``frame_selection: active`` and ``frames_added``, with ``labelling/frames_added.csv`` (video,
frame) as an artifact. ``<pipeline.dir>/rounds/<name>/run.yaml`` records the run.

Examples:
    python -m src.train_round --config-dir . --config-name params +round=round_2
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from src.cli import stage
from src.data.collected_data import write_labels
from src.data.prepared import read_prepared
from src.data.selection.active import ROUND_FILE, read_round, round_number
from src.errors import DataError, exit_on_data_error
from src.paths import fold_of, prepared_dir
from src.training.condition import train

ROUNDS = "rounds"  # the rounds' folder under pipeline.dir
STRATEGY = "active"  # tag frame_selection of a round's run (k-means runs have none)


def round_dir_of(cfg: DictConfig, name: str) -> Path:
    """Where the round stage of round ``name`` writes its prepared folder and run.yaml."""
    return Path(str(cfg.pipeline.dir)) / ROUNDS / name


def frames_added(selection: pd.DataFrame, labelled_before: int) -> pd.DataFrame:
    """(video, frame) of the train frames the round added: ranks after the model's budget."""
    train_rows = selection[(selection["role"] == "train") & (selection["rank"] > labelled_before)]
    return train_rows[["video", "frame"]].reset_index(drop=True)


def round_labels(annotations_file: Path, selection: pd.DataFrame) -> pd.DataFrame:
    """The merged labels of the round's selected frames; a DataError when a train frame has none."""
    if not Path(annotations_file).is_file():
        raise DataError(
            f"{annotations_file}: missing, the round's merged labels; bring them back with "
            "python -m src.label_round import --train (or dvc pull)."
        )
    labels = pd.read_csv(annotations_file)
    chosen = selection[["video", "frame"]].drop_duplicates()
    labels = labels.merge(chosen, on=["video", "frame"])
    train_rows = selection[selection["role"] == "train"]
    labelled = labels.dropna(subset=["x", "y"])[["video", "frame"]].drop_duplicates()
    missing = train_rows.merge(labelled, on=["video", "frame"], how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"]
    if len(missing):
        first = missing.iloc[0]
        raise DataError(
            f"{annotations_file}: no labels of {first['video']} frame {first['frame']}, a train "
            "frame of the round; bring the round's labels back with python -m src.label_round "
            "import and record that file."
        )
    return labels


def build_prepared(cfg: DictConfig, round_dir: Path, annotations_file: Path, target: Path) -> Path:
    """The round's prepared folder under ``target`` (paths.prepared_dir of its training): the
    study's, with the round's selection, the merged labels and the exported frames' images.
    Returns the folder the condition reads (its fold's under split=kfold)."""
    source = prepared_dir(cfg)
    facts, study, _ = read_prepared(source)
    selection = pd.read_csv(Path(round_dir) / "selection.csv")
    fixed = ["video", "role", "frame"]
    if not (
        selection.loc[selection["role"] != "train", fixed]
        .reset_index(drop=True)
        .equals(study.loc[study["role"] != "train", fixed].reset_index(drop=True))
    ):
        raise DataError(
            f"{Path(round_dir) / 'selection.csv'}: its test or generalisation frames differ from "
            f"the study's ({source / 'selection.csv'}); the data were prepared again since the "
            "export: export the round again from them."
        )
    labels = round_labels(Path(annotations_file), selection)
    out = Path(target) / str(cfg.data.name)
    folder = out if fold_of(cfg) is None else out / source.name
    if Path(target).exists():
        shutil.rmtree(target)
    shutil.copytree(source, folder)
    for extra in source.parent.glob("*.*") if fold_of(cfg) is not None else ():
        shutil.copyfile(extra, out / extra.name)  # folds.csv beside the folds
    for image in selection["image"]:
        if not (folder / image).is_file():
            exported = Path(round_dir) / "frames" / image
            if not exported.is_file():
                raise DataError(
                    f"{exported}: missing, an image of the round's selection; export the round "
                    "again (python -m src.label_round export)."
                )
            shutil.copyfile(exported, folder / image)
    selection.to_csv(folder / "selection.csv", index=False)
    labels.to_csv(folder / "labels.csv", index=False, float_format="%.3f")
    write_labels(
        labels, selection, facts["scorer"], list(facts["bodyparts"]), folder / "labeled-data"
    )
    (folder / "dataset.yaml").write_text(
        yaml.safe_dump(round_facts(facts, selection), sort_keys=False), encoding="utf-8"
    )
    return folder


def round_facts(facts: dict, selection: pd.DataFrame) -> dict:
    """The study's dataset.yaml with the train frames per video the round's selection holds
    (its budget may exceed k-means' frames.max_train_frames_per_video)."""
    trains = selection[selection["role"] == "train"].groupby("video").size()
    facts = dict(facts)
    facts["frames_per_video"] = {
        video: roles | ({"train": roles["train"] | {"used": int(trains.get(video, 0))}})
        if "train" in roles
        else roles
        for video, roles in facts.get("frames_per_video", {}).items()
    }
    if len(trains):
        facts["min_train_frames_per_development_video"] = int(trains.min())
        config = dict(facts["config"])
        config["max_train_frames_per_video"] = max(
            int(config["max_train_frames_per_video"]), int(trains.max())
        )
        facts["config"] = config
    return facts


def train_round(cfg: DictConfig, name: str) -> dict:
    """Build round ``name``'s prepared folder, train and evaluate it, tag its run; returns what
    run.yaml records."""
    rounds = cfg.pipeline.get("rounds") or {}
    if name not in rounds:
        raise DataError(
            f"round={name}: not a round of the study (pipeline.rounds: {sorted(rounds) or 'none'}); "
            "record it with python -m src.label_round import --train."
        )
    entry = rounds[name]
    round_dir, annotations = Path(str(entry["round"])), Path(str(entry["annotations"]))
    manifest = read_round(round_dir)
    number = round_number(round_dir, manifest)
    budget, before = int(manifest["labelled_frames_after"]), int(manifest["labelled_frames_before"])
    out = round_dir_of(cfg, name)
    folder = build_prepared(cfg, round_dir, annotations, out / "prepared")
    added = frames_added(pd.read_csv(folder / "selection.csv"), before)
    print(
        f"{name}: training labelling round {number} (frame_selection=active): {budget} labelled "
        f"frames per video, {len(added)} frames added to round {number - 1}'s {before} per video "
        f"({round_dir / ROUND_FILE}), labels {annotations}; test and generalisation frames are "
        f"the study's. Prepared folder: {folder}",
        flush=True,
    )
    round_cfg = copy.deepcopy(cfg)
    with open_dict(round_cfg):
        round_cfg.labelled_frames = budget
        round_cfg.paths.prepared_dir = str(out / "prepared")
        round_cfg.evaluate = True
    metrics = train(round_cfg)
    run = mlflow.last_active_run()
    if run is None or run.data.tags.get("labelled_frames") != str(budget):
        raise DataError(f"{name}: training started no MLflow run of {budget} labelled frames.")
    _tag_run(run.info.run_id, number, round_dir, budget, added)
    record = {
        "round": number,
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "labelled_frames": budget,
        "frames_added": len(added),
        "metrics": {k: float(v) for k, v in (metrics or {}).items() if _number(v)},
    }
    (out / "run.yaml").write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
    print(
        f"{name}: MLflow run {run.info.run_id} (labelling_round={number}); the report compares "
        "it with k-means when it runs next (python -m src.report --config-dir . --config-name "
        "params report.sweep=pipeline)",
        flush=True,
    )
    return record


def _tag_run(run_id: str, number: int, round_dir: Path, budget: int, added: pd.DataFrame) -> None:
    """The round's tags and ``labelling/frames_added.csv`` (video, frame) on its run."""
    client = mlflow.tracking.MlflowClient()
    tags = {
        "labelling_round": str(number),
        "frame_selection": STRATEGY,
        "frames_added": str(len(added)),
        "labelling_round_dir": str(round_dir),
        "mlflow.runName": f"round {number}: frames={budget}",
    }
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    with tempfile.TemporaryDirectory() as tmp:
        listed = Path(tmp) / "frames_added.csv"
        added.to_csv(listed, index=False)
        client.log_artifact(run_id, str(listed), "labelling")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@stage
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        name = OmegaConf.select(cfg, "round")
        if name is None:
            raise DataError("round: missing; give +round=<name> (a key of pipeline.rounds).")
        train_round(cfg, str(name))


if __name__ == "__main__":
    main()
