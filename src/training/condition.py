"""Train and evaluate one labelled-frames condition, tracked in MLflow (used by ``src.train``).

    python -m src.train labelled_frames=6            # one condition
    python -m src.train +sweep=frames                # the paper's conditions 0, 1, 2, 6, 10, 15, 20
    python -m src.train +sweep=cutoff                # re-evaluate the trained models at other p-cutoffs

One MLflow run per condition (named ``frames=<n>``, nested under the sweep's run). A model already
trained with the same configuration and data (same ``model_key`` tag) is reused, not trained again;
condition 0 evaluates the initial model itself, on the bodyparts it shares with the data
(:mod:`src.study.bodyparts`), or is skipped, with its reason, when they share none. In the DVC pipeline
(dvc.yaml) this module is the train stage (``evaluate=false``) and ``python -m src.evaluate`` the evaluate
stage, which logs into the same run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from src import cpu_numerics, engine, numerics_class, privacy
from src.data.prepared import Condition, load_condition
from src.engine import progress
from src.errors import DataError
from src.evaluation.condition import evaluate_model, predict_for_evaluate_stage
from src.evaluation.pck import reference_of
from src.evaluation.plots import plot_losses
from src.files import atomic_directory, locked
from src.paths import fold_of, pipeline_model_dir
from src.study import estimate
from src.study import plan as study_plan
from src.study.bodyparts import ConditionZero
from src.tracking import lineage, live_curves, store
from src.tracking.queries import download_model
from src.training.pretraining import ensure_pretrained, pretrained_folder

log = logging.getLogger(__name__)


os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def train(cfg: DictConfig) -> dict[str, float]:
    """Train (or reuse) the model of condition ``cfg.labelled_frames``, then evaluate it; returns its metrics.

    With ``evaluate=false`` (the DVC pipeline's train stage) it saves the model and its MLflow run id to
    ``<pipeline.dir>/models/frames_<n>/`` instead, for the evaluate stage (``python -m src.evaluate``).
    """
    condition = _checked_condition(cfg)
    engine.for_config(cfg).set_threads(int(cfg.training.threads))
    n_frames, facts, prepared_dir = (
        condition.labelled_frames,
        condition.facts,
        condition.prepared_dir,
    )
    zero = study_plan.condition_zero(cfg, facts["bodyparts"]) if n_frames == 0 else None
    initial = (
        initial_model(cfg)
        if cfg.weights.kind in ("pretrained", "snapshot") and _initial_needed(cfg, zero)
        else None
    )
    if zero is not None and initial is not None:  # the model itself, rather than its config
        zero = study_plan.condition_zero(cfg, facts["bodyparts"], initial.bodyparts)
    versions = {
        "data_version": store.folder_version(Path(facts["source"])),
        "prepared_version": store.folder_version(prepared_dir, "*.csv"),
        "split": store.folder_version(prepared_dir, "split.csv"),
    }
    setup = _shared_setup(cfg, versions, initial)
    model_key = store.digest(setup | {"labelled_frames": n_frames})

    experiment_id = store.configure(cfg.mlflow)
    work = (
        Path(cfg.paths.models_dir)
        / cfg.data.name
        / f"frames{n_frames}-{cfg.model.name}-{model_key}"
    )
    # One process at a time trains a given model in this checkout: a concurrent sweep asking for the same
    # condition waits, then reuses the finished run instead of training it twice in the same folder.
    with locked(work.with_name(f".{work.name}.lock")):
        previous, interrupted, parent = _runs_of_model(
            cfg, condition, experiment_id, model_key, setup
        )
        tags = _run_tags(cfg, facts, versions, model_key, n_frames)
        plan = RunPlan(initial, previous, interrupted, work, experiment_id, parent, tags, zero)
        try:
            return run_condition(cfg, condition, plan)
        except MlflowException as error:  # the server went away mid-run (after MLflow's retries)
            if not live_curves.unreachable(error):
                raise
            raise live_curves.server_away(
                str(cfg.mlflow.tracking_uri), error, f"labelled_frames={n_frames} stopped"
            ) from None


def _checked_condition(cfg: DictConfig) -> Condition:
    """The condition's prepared frames, with what training needs of them checked before it starts."""
    condition = load_condition(cfg)  # checks the configuration first
    # every development video has the condition's train frames (src.study.plan: "serves")
    study_plan.check_condition(
        condition.labelled_frames, condition.facts, str(condition.prepared_dir / "dataset.yaml")
    )
    # evaluation's PCK reference names bodyparts of the data: checked before the training, not after
    reference_of(
        cfg.evaluation.pck,
        str(cfg.data.kind),
        list(condition.facts["bodyparts"]),
        condition.facts.get("cm_per_px"),
    )
    return condition


def _shared_setup(cfg: DictConfig, versions: dict, initial: engine.Model | None) -> dict:
    """What every condition of a sweep shares; with the condition it identifies the trained model."""
    setup = versions | {
        name: OmegaConf.to_container(cfg[name], resolve=True)
        for name in ("model", "training", "weights")
    }
    if engine.engine_name(cfg) != engine.DEFAULT:  # PyTorch models keep the keys they had
        setup["engine"] = engine.engine_name(cfg)
    # the instruction-set class the weights are computed with (src/__init__.py) is part of their identity
    setup["cpu_numerics"] = numerics_class()
    snapshot = initial.snapshot("last") if initial else None
    setup["initial_snapshot"] = (
        # a TensorFlow snapshot-N is the prefix of its files (.index, .data-*, .meta)
        store.folder_version(
            snapshot.parent, snapshot.name + ("*" if initial.engine != "pytorch" else "")
        )
        if snapshot
        else None
    )
    return setup


def _runs_of_model(
    cfg: DictConfig, condition: Condition, experiment_id: str, model_key: str, setup: dict
) -> tuple[mlflow.entities.Run | None, mlflow.entities.Run | None, str | None]:
    """The finished run whose model is reused, the interrupted one to continue, and the parent run
    to nest under (the sweep's or the DVC pipeline's)."""
    n_frames = condition.labelled_frames
    previous = (
        None if cfg.retrain or n_frames == 0 else store.find_finished_run(experiment_id, model_key)
    )
    if previous is None and n_frames > 0 and cfg.get("evaluate_only"):
        raise DataError(
            f"no finished MLflow run holds a model for labelled_frames={n_frames} with this "
            f"configuration and data (model_key {model_key}); train it first, e.g. "
            "`python -m src.train +sweep=frames`."
        )
    interrupted = (
        None if previous or n_frames == 0 else store.find_interrupted_run(experiment_id, model_key)
    )
    parent = store.parent_run_id()
    if parent is None and not cfg.evaluate:
        parent = store.pipeline_parent_run(
            experiment_id, store.digest(setup | study_versions(condition.prepared_dir, cfg))
        )
    return previous, interrupted, parent


def _run_tags(
    cfg: DictConfig, facts: dict, versions: dict, model_key: str, n_frames: int
) -> dict[str, str]:
    """The tags of a condition's run: versions, process, git commit, model_key, labelled_frames."""
    return (
        versions
        | store.process_tags()
        # how the CPU computed (src/__init__.py): the same numbers to the last digit need the same
        | {f"cpu_numerics.{name}": value for name, value in cpu_numerics().items()}
        | {
            "git_commit": store.git_commit(),
            "model_key": model_key,
            "labelled_frames": str(n_frames),
            "engine": engine.engine_name(cfg),
            # what "generalisation" means here: unseen participants, or unseen frames (split=frames)
            "split_kind": str(facts.get("split_kind", "participants")),
            **fold_tags(cfg),  # split=kfold: fold "1".."k" and folds "k"; none for one split
            "generalisation_meaning": str(
                facts.get("generalisation_meaning", "unseen participants")
            ),
        }
    )


def fold_tags(cfg: DictConfig) -> dict[str, str]:
    """Tags ``fold`` ("1".."k") and ``folds`` ("k") of a cross-validation's run (split=kfold);
    none for a single split."""
    fold = fold_of(cfg)
    return {} if fold is None else {"fold": str(fold), "folds": str(cfg.split.folds)}


def study_versions(prepared_dir: Path, cfg: DictConfig) -> dict[str, str]:
    """What the pipeline's parent run is keyed by instead of one fold's prepared frames: every
    fold's (split=kfold), so that all folds of a study share one parent run; nothing for a
    single split."""
    if fold_of(cfg) is None:
        return {}
    every_fold = store.folder_version(prepared_dir.parent, "fold_*/*.csv")
    return {"prepared_version": every_fold, "split": every_fold}


def _initial_needed(cfg: DictConfig, zero: ConditionZero | None) -> bool:
    """Whether a condition needs the initial model: any condition > 0, and condition 0 unless it is
    skipped; a skipped condition 0 takes it only when it exists already (the pipeline's pretrain
    stage made it; it identifies the pipeline's parent run), never pre-training for nothing."""
    if zero is None or not zero.skipped or cfg.weights.kind == "snapshot":
        return True
    return (pretrained_folder(cfg) / "pretrained.yaml").is_file()


@dataclass(frozen=True)
class RunPlan:
    """What :func:`train` found out for one condition before its MLflow run starts."""

    initial: engine.Model | None  # the model training starts from (condition 0: the one evaluated)
    previous: mlflow.entities.Run | None  # a finished run of the same model: its model is reused
    interrupted: mlflow.entities.Run | None  # an unfinished run of the same model: it is continued
    work: Path  # the folder the model is trained (or downloaded) in
    experiment_id: str
    parent: str | None  # the run to nest under: the sweep's or the DVC pipeline's
    tags: dict[str, str]  # of the run: versions, process, git commit, model_key, labelled_frames
    zero: ConditionZero | None = None  # condition 0: what it is evaluated on, or why it is skipped


def run_condition(cfg: DictConfig, condition: Condition, plan: RunPlan) -> dict[str, float]:
    """The MLflow run of one condition: a new run, or the interrupted one continued (same run id)."""
    n_frames = condition.labelled_frames
    cell = estimate.pipeline_cell_line(cfg)  # dvc repro's train stage: "cell k of n, ... left"
    if cell:
        print(cell, flush=True)
    skipped = plan.zero.skipped if plan.zero is not None else None
    # set first: a run killed at once is still found and continued
    tags = plan.tags | {"model_source": _model_source(cfg, plan, n_frames, skipped)}
    run = _start_run(plan, tags, n_frames)
    with run:
        # Evaluation settings are tags, not params: the evaluate stage may re-evaluate this run with others.
        params = store.flat_params(cfg, exclude=["evaluation", "report"])
        logged = plan.interrupted.data.params if plan.interrupted is not None else {}
        mlflow.log_params({k: v for k, v in params.items() if k not in logged})
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/config.yaml")
        if plan.zero is not None:
            mlflow.set_tags(plan.zero.tags())  # skipped_reason, or what condition 0 is evaluated on
        if skipped:
            return skip_condition(
                cfg, run.info.run_id, plan.experiment_id, tags["model_key"], skipped
            )
        if n_frames > 0:  # what the model learnt from (a reused model: the same data, same key)
            lineage.log_data_inputs(
                condition.facts, condition.prepared_dir, condition.frames, lineage.TRAINING
            )
        model, evaluated = _condition_model(cfg, condition, plan, run.info.run_id)
        if cfg.evaluate:
            return evaluate_model(cfg, evaluated, model)
        _save_for_evaluate_stage(cfg, model, run.info.run_id, plan, n_frames)
        predict_for_evaluate_stage(cfg, condition)
        return {}


def _model_source(cfg: DictConfig, plan: RunPlan, n_frames: int, skipped: str | None) -> str:
    """Where the condition's model comes from (tag ``model_source``)."""
    if skipped:
        return "skipped: condition 0 has no model to evaluate"
    if n_frames == 0:
        return f"initial model ({cfg.weights.kind}: {plan.initial.snapshot('last')}), not trained"
    if plan.previous is not None:
        return store.REUSED_PREFIX + plan.previous.info.run_id
    return "trained"


def _start_run(plan: RunPlan, tags: dict[str, str], n_frames: int) -> mlflow.ActiveRun:
    """The condition's MLflow run: the interrupted one continued (attempt + 1), or a new one."""
    interrupted, parent = plan.interrupted, plan.parent
    if interrupted is not None:
        run = mlflow.start_run(run_id=interrupted.info.run_id)
        attempt = int(interrupted.data.tags.get("attempt", "1")) + 1
        mlflow.set_tags(
            tags | {"attempt": str(attempt)} | ({"mlflow.parentRunId": parent} if parent else {})
        )
        print(
            f"labelled_frames={n_frames}: continuing interrupted MLflow run {run.info.run_id} "
            f"(attempt {attempt})",
            flush=True,
        )
        return run
    return mlflow.start_run(
        experiment_id=plan.experiment_id,
        run_name=f"frames={n_frames}" + (f" fold={tags['fold']}" if "fold" in tags else ""),
        parent_run_id=parent,
        tags=tags | {"attempt": "1"},
    )


def _condition_model(
    cfg: DictConfig, condition: Condition, plan: RunPlan, run_id: str
) -> tuple[engine.Model, Condition]:
    """The model to evaluate: the initial one (condition 0, with its own training frames as the
    train set), a finished run's, or trained now; with the condition it is evaluated on."""
    if condition.labelled_frames == 0:
        return plan.initial, own_training_frames_as_train(condition, plan.initial)
    if plan.previous is not None:
        return download_model(plan.previous.info.run_id, plan.work / "reused"), condition
    model = train_condition(
        cfg, condition, plan.initial, plan.work, run_id, resume=plan.interrupted is not None
    )
    return model, condition


def _save_for_evaluate_stage(
    cfg: DictConfig, model: engine.Model, run_id: str, plan: RunPlan, n_frames: int
) -> None:
    """The DVC pipeline's train stage: the model and its run id, where the evaluate stage reads them."""
    folder = pipeline_model_dir(cfg)
    with atomic_directory(folder) as staging:
        engine.save_model(model, staging)
        (staging / "run.yaml").write_text(
            yaml.safe_dump(
                {
                    "run_id": run_id,
                    "experiment_id": plan.experiment_id,
                    "labelled_frames": n_frames,
                    "model_key": plan.tags["model_key"],
                },
                sort_keys=False,
            ),
            encoding="utf-8",
        )
    print(
        f"labelled_frames={n_frames}: model saved to {folder} (MLflow run {run_id})",
        flush=True,
    )


def skip_condition(
    cfg: DictConfig, run_id: str, experiment_id: str, model_key: str, reason: str
) -> dict[str, str]:
    """Condition 0 without a model to evaluate: its run (tagged ``skipped_reason``) finishes, and
    the pipeline's train stage leaves the reason where the evaluate stage looks for the model."""
    print(f"labelled_frames=0: skipped: {reason}", flush=True)
    if not cfg.evaluate:
        folder = pipeline_model_dir(cfg)
        with atomic_directory(folder) as staging:
            (staging / "run.yaml").write_text(
                yaml.safe_dump(
                    {
                        "run_id": run_id,
                        "experiment_id": experiment_id,
                        "labelled_frames": 0,
                        "model_key": model_key,
                        "skipped": reason,
                    },
                    sort_keys=False,
                ),
                encoding="utf-8",
            )
    return {"skipped": reason}


def initial_model(cfg: DictConfig) -> engine.Model:
    """The model a condition starts from (and condition 0 evaluates): pre-trained here or a snapshot."""
    kind = cfg.weights.kind
    if kind == "pretrained":
        folder = ensure_pretrained(cfg)
        meta = yaml.safe_load((folder / "pretrained.yaml").read_text(encoding="utf-8"))
        return engine.for_config(cfg).pretrained_model(folder, list(meta["bodyparts"]))
    if kind == "snapshot":  # DeepLabCut 3 (.pt) or, with engine=tensorflow, DLC 2.x (snapshot-N)
        return engine.for_config(cfg).snapshot_model(Path(cfg.weights.path))
    raise DataError(
        f"labelled_frames=0 evaluates the initial model, but weights={kind} has no trained pose heads; "
        "choose weights=healthy_adults or weights=snapshot for condition 0."
    )


def train_condition(
    cfg,
    condition: Condition,
    initial: engine.Model | None,
    work: Path,
    run_id: str,
    resume: bool = False,
) -> engine.Model:
    """Build the DeepLabCut training set of the condition, train it, log the model; returns it.

    ``resume``: continue an interrupted training from its newest snapshot in ``work`` when there is one.
    """
    facts = condition.facts
    eng = engine.for_config(cfg)
    trained_on = condition.frames[condition.frames["set"].isin(["train", "test"])]
    frames = engine.TrainingFrames(condition.prepared_dir, facts, trained_on, condition.labels)
    training_set, pose_config, updates = eng.prepare_training(
        frames, work / "project", cfg.model, cfg.training, reuse=resume
    )
    resume_from = eng.resume_point(training_set.model_folder) if resume else None
    if resume_from is not None:
        print(
            f"labelled_frames={condition.labelled_frames}: resuming training from {resume_from.name} "
            f"({eng.resume_progress(resume_from, updates)})",
            flush=True,
        )
    mlflow.log_params(
        eng.budget(updates)
        | {
            "derived.n_train_images": training_set.n_train,
            "derived.n_test_images": training_set.n_test,
        }
    )
    weight_init = _weight_init(cfg, eng, facts, initial, pose_config, work)
    with live_curves.streaming_learning_stats(run_id, eng.learning_stats_file(training_set)):
        eng.train(training_set, updates, weight_init, resume_from)
    # this machine's cost per update, for the next estimates (src.study.estimate)
    estimate.record_training(cfg, updates, progress.last_seconds_per_update())
    _log_trained_model(cfg, eng, training_set, facts, work)
    return engine.load_model(work / "model")


def _weight_init(cfg, eng, facts: dict, initial: engine.Model | None, pose_config, work: Path):
    """What training starts from: the initial model's weights, or fresh ones (weights=random|hub)."""
    kind = cfg.weights.kind
    if kind in ("pretrained", "snapshot"):
        # The heads too when every data bodypart has one in the initial model (by name, or
        # weights.bodypart_map), as condition 0 maps them; else (or with_decoder: false) the backbone.
        shared = study_plan.condition_zero(cfg, facts["bodyparts"], initial.bodyparts)
        conversion = shared.conversion() if cfg.weights.get("with_decoder", True) else None
        if conversion is None:
            log.warning(
                "the initial model predicts %s, the data %s (shared: %s): only its backbone is "
                "transferred",
                initial.bodyparts,
                facts["bodyparts"],
                shared.mapping or "none",
            )
        return eng.weight_init(initial.snapshot("last"), conversion)
    if kind in ("random", "hub"):
        return eng.fresh_weight_init(kind, pose_config, work / "random-init.pt", int(cfg.seed))
    raise DataError(
        f"weights.kind={kind!r} is unknown; use weights=healthy_adults|snapshot|random|hub."
    )


def _log_trained_model(cfg, eng, training_set, facts: dict, work: Path) -> None:
    """Write ``<work>/model/`` (the last and best snapshots without optimizer state, the learning
    stats, the pseudonymised project config) and log it, with the loss plot, to the MLflow run."""
    train_dir = training_set.model_folder / "train"
    found = eng.snapshots(training_set.model_folder)
    mlflow.set_tag("best_snapshot", found["best"].name)
    kept = {"last": found["last"]} | (
        {"best": found["best"]} if found["best"] != found["last"] else {}
    )
    with atomic_directory(
        work / "model"
    ) as export:  # the MLflow artifact model/: weights without optimizer state
        engine.save_model(
            engine.Model(training_set.pose_config, kept, list(facts["bodyparts"])), export
        )
        if (train_dir / "learning_stats.csv").is_file():
            shutil.copyfile(train_dir / "learning_stats.csv", export / "learning_stats.csv")
        export_project_config(
            training_set.project_config, export / "project_config.yaml", privacy.from_config(cfg)
        )
    mlflow.log_artifacts(str(work / "model"), artifact_path="model")
    if (work / "model" / "learning_stats.csv").is_file():
        with tempfile.TemporaryDirectory() as tmp:
            stats = pd.read_csv(work / "model" / "learning_stats.csv")
            mlflow.log_artifact(str(plot_losses(stats, Path(tmp) / "loss.png")), "plots")


def own_training_frames_as_train(condition: Condition, model: engine.Model) -> Condition:
    """Condition 0 of a user's model (weights=snapshot of a DLC 2.x project): the frames it was
    trained on, as far as its own training indices say, are its train set, not test or
    generalisation; their number is the tag ``frames_in_models_training``."""
    own = engine.for_model(model).own_training_images(model)
    if own is None:
        return condition
    frames = condition.frames.copy()
    seen = frames["image"].map(lambda image: "/".join(Path(image).parts[-2:])).isin(own)
    frames.loc[seen, "set"] = "train"
    mlflow.set_tag("frames_in_models_training", str(int(seen.sum())))
    return dataclasses.replace(condition, frames=frames)


def export_project_config(project_config: Path, path: Path, pseudonyms: privacy.Pseudonyms) -> Path:
    """DeepLabCut's project config.yaml with its videos named by pseudonym: this copy goes to MLflow."""
    config = yaml.safe_load(Path(project_config).read_text(encoding="utf-8"))
    config["video_sets"] = {
        str(Path(video).with_stem(pseudonyms(Path(video).stem, "video"))): crop
        for video, crop in (config.get("video_sets") or {}).items()
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    pseudonyms.save()
    return path
