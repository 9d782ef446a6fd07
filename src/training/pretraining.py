"""Pre-training of the initial model on the healthy-adult cohort (``weights=healthy_adults``).

It stands in for the paper's MPII human model: trained once per model, training profile and data,
and reused while those are unchanged. Writes ``<paths.models_dir>/pretrained/<data>-<model>-<key>/``
with ``pytorch_config.yaml``, ``snapshot.pt`` and ``pretrained.yaml`` (bodyparts, key, MLflow run),
after preparing the cohort's frames into ``<paths.prepared_dir>/<pretraining.data.name>/`` as
``src.prepare`` prepares a data set. ``python -m src.pretrain`` runs it; so does ``src.train`` when
the model is missing, saying so first. In the DVC pipeline the preparation and the training are two
stages (``prepare_pretraining`` and ``pretrain``), each declaring what it writes.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import mlflow
import yaml
from omegaconf import DictConfig, OmegaConf

from src import engine, numerics_class
from src.data.preparation import prepare
from src.data.prepared import read_prepared
from src.errors import DataError
from src.files import atomic_directory, locked
from src.study.needs import is_placeholder
from src.tracking import lineage, live_curves, store

log = logging.getLogger(__name__)


def pretraining_config(cfg: DictConfig) -> DictConfig:
    """The pre-training's config: its own data and frames, the conditions' model and profile."""
    pre = cfg.pretraining
    merged = OmegaConf.merge(
        cfg,
        {
            "data": OmegaConf.to_container(pre.data, resolve=True),
            "frames": {"max_train_frames_per_video": int(pre.frames_per_video)},
            "training": {"iterations": int(pre.iterations)},
        },
    )
    if merged.split.get("kind", "participants") != "participants":
        # The healthy-adult cohort has many participants: split by participant (the paper's 20 %)
        # whatever the study's split (split=frames serves studies of one or two subjects).
        merged.split = {
            "kind": "participants",
            "generalisation_fraction": 0.2,
            "seed": cfg.split.seed,
        }
    return merged


def pretraining_data(pre_cfg: DictConfig) -> Path:
    """The folder the pre-training's frames are prepared in (by ``prepare``, like any data set)."""
    return Path(pre_cfg.paths.prepared_dir) / pre_cfg.data.name


def pretrained_key(pre_cfg: DictConfig, data_version: str) -> str:
    """What identifies a pre-trained model: its settings and the hash of its raw data."""
    settings = {
        name: OmegaConf.to_container(pre_cfg[name], resolve=True)
        for name in ("pretraining", "frames", "split", "model", "training")
    }
    if engine.engine_name(pre_cfg) != engine.DEFAULT:  # PyTorch models keep the keys they had
        settings["engine"] = engine.engine_name(pre_cfg)
    # the instruction-set class the weights are computed with (src/__init__.py) is part of their identity
    settings["cpu_numerics"] = numerics_class()
    return store.digest(settings | {"data_version": data_version})


def ensure_pretrained(
    cfg: DictConfig, *, announce: bool = True, prepared_dir: Path | None = None
) -> Path:
    """The folder of the pre-trained model for ``cfg``; trains it first if it does not exist yet.

    ``announce``: when it pre-trains, first print one line saying so and why (for ``src.train``,
    to which pre-training is a side job; ``src.pretrain``, whose job it is, turns it off).
    ``prepared_dir``: the pre-training's frames, already prepared (the DVC pipeline's
    ``prepare_pretraining`` stage); ``None`` prepares them when it pre-trains.
    """
    pre_cfg = pretraining_config(cfg)
    data_version = store.folder_version(Path(pre_cfg.data.root))
    key = pretrained_key(pre_cfg, data_version)
    folder = pretrained_folder(cfg, key)
    if (folder / "pretrained.yaml").is_file():
        return folder
    # The parallel jobs of a fresh sweep all need it: one trains it, the others wait and take it.
    with locked(folder.with_name(f".{folder.name}.lock")):
        if not (folder / "pretrained.yaml").is_file():
            if announce:
                print(announcement(pre_cfg, folder, prepared_dir is None), flush=True)
            pretrain(cfg, pre_cfg, folder, key, data_version, prepared_dir)
    return folder


def pretrained_folder(cfg: DictConfig, key: str | None = None) -> Path:
    """Where the pre-trained model of ``cfg`` is (or will be): ``pretrained.yaml`` in it once it is
    trained. ``key``: :func:`pretrained_key`, computed here when not given."""
    pre_cfg = pretraining_config(cfg)
    if key is None:
        key = pretrained_key(pre_cfg, store.folder_version(Path(pre_cfg.data.root)))
    return Path(cfg.paths.models_dir) / "pretrained" / f"{pre_cfg.data.name}-{cfg.model.name}-{key}"


# The demo's pre-training (resnet_18, 400 iterations at batch size 8, its frames prepared first)
# took 4 min 25 s on 2 CPU cores: about 12 images per second. Other models and machines differ.
CPU_IMAGES_PER_SECOND = 12


def announcement(pre_cfg: DictConfig, folder: Path, prepares: bool) -> str:
    """One line: what ``src.train`` starts besides the condition, why, and about how long."""
    iterations, batch = int(pre_cfg.training.iterations), int(pre_cfg.training.batch_size)
    work = f"{iterations} iterations at batch size {batch}"
    if str(pre_cfg.training.device) == "cpu":
        minutes = max(1, round(iterations * batch / CPU_IMAGES_PER_SECOND / 60))
        work += f", about {minutes} min on a CPU at the demo's pace"
    frames = f"its frames prepared into {pretraining_data(pre_cfg)}, then " if prepares else ""
    return (
        f"the initial model (weights.kind=pretrained) {folder} does not exist yet: pre-training it "
        f"first on {pre_cfg.data.name} as `python -m src.pretrain` would ({frames}{work})"
    )


def pretrain(
    cfg: DictConfig,
    pre_cfg: DictConfig,
    folder: Path,
    key: str,
    data_version: str,
    prepared_dir: Path | None = None,
) -> None:
    """Train the initial model on the pre-training cohort and save it to ``folder`` (and to MLflow).

    Its frames are ``prepared_dir``, or, when that is ``None``, prepared here first.
    """
    prepared_dir, facts, selection, labels = _pretraining_frames(pre_cfg, prepared_dir)
    work = folder.with_name(folder.name + ".work")
    if pre_cfg.pretraining.weights not in ("random", "hub"):
        raise DataError(
            f"pretraining.weights={pre_cfg.pretraining.weights!r} is unknown; use random or hub."
        )
    eng = engine.for_config(cfg)
    training_set, pose_config, updates = eng.prepare_training(
        engine.TrainingFrames(prepared_dir, facts, selection, labels),
        work / "project",
        pre_cfg.model,
        pre_cfg.training,
    )
    weight_init = eng.fresh_weight_init(
        pre_cfg.pretraining.weights, pose_config, work / "random-init.pt", int(cfg.seed)
    )

    experiment_id = store.configure(
        OmegaConf.merge(cfg.mlflow, {"experiment": f"pretraining-{facts['name']}"})
    )
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"pretrain {cfg.model.name}",
        tags={
            "git_commit": store.git_commit(),
            "pretrained_key": key,
            "data_version": data_version,
        },
    ) as run:
        mlflow.log_params(
            store.flat_params(pre_cfg, ["pretraining", "engine", "model", "training", "frames"])
        )
        # its sets: DeepLabCut's train and test split (the roles)
        frames = selection.assign(set=selection["role"])
        lineage.log_data_inputs(facts, prepared_dir, frames, lineage.TRAINING, evaluated=False)
        with live_curves.streaming_learning_stats(
            run.info.run_id, eng.learning_stats_file(training_set)
        ):
            eng.train(training_set, updates, weight_init)
        snapshot = eng.snapshots(training_set.model_folder)["last"]
        with atomic_directory(folder) as staging:
            eng.save_pretrained(training_set, snapshot, staging)
            _write_pretrained_yaml(staging, cfg, pre_cfg, facts, key, run.info.run_id)
        mlflow.log_artifacts(str(folder), artifact_path="model")
    shutil.rmtree(work, ignore_errors=True)
    log.info("pre-trained model in %s", folder)


def _pretraining_frames(pre_cfg: DictConfig, prepared_dir: Path | None) -> tuple:
    """The pre-training's prepared frames (prepared here when ``prepared_dir`` is ``None``):
    (prepared_dir, facts, selection, labels); every selected frame trains except DeepLabCut's test
    frames."""
    if not Path(pre_cfg.data.root).exists() or is_placeholder(Path(pre_cfg.data.root)):
        what = "does not exist" if not Path(pre_cfg.data.root).exists() else "is a placeholder"
        raise DataError(
            f"pretraining.data.root={pre_cfg.data.root} {what}; generate the cohorts with "
            "`python -m src.cohort` (with weights=healthy_adults), or choose other initial "
            "weights (weights=random|snapshot|hub)."
        )
    if prepared_dir is None:
        prepared_dir = prepare(pre_cfg)
    elif not (prepared_dir / "dataset.yaml").is_file():
        raise DataError(
            f"{prepared_dir} holds no prepared frames; prepare the pre-training's frames first: "
            "`dvc repro prepare_pretraining`, or `python -m src.pretrain`, which prepares them."
        )
    facts, selection, labels = read_prepared(prepared_dir)
    # Everything selected trains except DeepLabCut's test frames (development test and
    # generalisation).
    selection["role"] = selection["role"].replace({"generalisation": "test"})
    return prepared_dir, facts, selection, labels


def _write_pretrained_yaml(
    staging: Path, cfg: DictConfig, pre_cfg: DictConfig, facts: dict, key: str, run_id: str
) -> None:
    """``pretrained.yaml``: the model's bodyparts, key, MLflow run, data, model and iterations."""
    (staging / "pretrained.yaml").write_text(
        yaml.safe_dump(
            {
                "bodyparts": facts["bodyparts"],
                "key": key,
                "mlflow_run_id": run_id,
                "data": facts["name"],
                "model": cfg.model.name,
                "iterations": int(pre_cfg.training.iterations),
            },
            sort_keys=False,
        ),
        encoding="utf-8",
    )
