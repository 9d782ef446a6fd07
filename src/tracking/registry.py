"""MLflow Model Registry: a study's models as versions of one registered model per data set.

The report stage (``python -m src.report``) registers the model of every trained condition of the
study as a version of the registered model ``<data.name>`` with the alias ``frames-<n>``, and the
chosen one with the alias ``champion`` (aliases, not MLflow's deprecated stages). Each version is
an MLflow pyfunc (src/tracking/pose_pyfunc.py) over the condition's snapshot
(``evaluation.snapshot``, the one its metrics describe):
``mlflow.pyfunc.load_model("models:/<data.name>@champion")``. Which one is the champion is
``report.register``: ``best_generalisation`` (lowest ``mae_generalisation_px``), ``frames_to_label``
(the condition the sweep's parent run names in its tag ``frames_to_label``; the best when absent) or
``none`` (register nothing). A condition whose weights are already registered (same ``model_key``
and snapshot) keeps its version: a second report adds none.

``report.trust_model`` names a saved trust score (``src.trust.score.TrustModel.save``, e.g. the
one ``python -m benchmarks.trust`` writes): the versions of the runs it was fitted for (its
``provenance.model_runs``) carry it as the pyfunc's artifact ``trust_model`` (it travels with a
download) and its provenance as ``trust_calibrator*`` tags; ``src.analyze`` uses it for
``analysis.trust.score=combined``. A version registered without it gets a new version with it.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass
from hashlib import sha256
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src import privacy
from src.engine import engine_name
from src.errors import ConfigError
from src.evaluation.metric_names import MetricName
from src.tracking import pose_pyfunc
from src.tracking.queries import collect_runs, download_model, find_sweep, open_experiment
from src.tracking.runs import pipeline_runs
from src.trust.score import TrustModel

log = logging.getLogger(__name__)

PYFUNC_CODE = Path(pose_pyfunc.__file__)  # logged as the model's code
CHOICES = ("best_generalisation", "frames_to_label", "none")
CHAMPION = "champion"
RANKING_METRIC = MetricName("mae", "generalisation").name  # mae_generalisation_px
FRAMES_TAG = (
    "frames_to_label"  # set on the sweep's parent run by the report's frames-to-label answer
)
# What loading the pyfunc elsewhere needs (pinned to this environment's versions).
REQUIREMENTS = ("deeplabcut", "torch", "torchvision", "mlflow", "pandas", "numpy")
CALIBRATOR_ARTIFACT = "trust_model"  # the pyfunc's artifact holding the trust score (JSON)
CALIBRATOR_TAG = "trust_calibrator"  # version tags: trust_calibrator, trust_calibrator_<what>
MAX_TAG_CHARS = 4000  # MLflow keeps tag values up to 5000 characters


@dataclass
class Registration:
    """What :func:`register_study` did."""

    name: str
    versions: dict[int, str]  # labelled frames -> model version
    champion_frames: int
    champion_version: str
    reason: str  # why the champion is the champion


@dataclass
class Calibrator:
    """``report.trust_model``: a saved trust score, the training runs it was fitted for and the
    digest that tells versions carrying it apart."""

    path: Path
    model: TrustModel
    digest: str
    runs: set[str]

    def fits(self, *run_ids: str) -> bool:
        return bool(self.runs & set(run_ids))

    def refused(self, what: str) -> ConfigError:
        return ConfigError(f"{self.path}: {what}")

    def tags(self, pseudonyms: privacy.Pseudonyms) -> dict[str, str]:
        """The version tags of its provenance, participants by pseudonym."""
        provenance = self.model.provenance or {}
        participants = [pseudonyms(p, "participant") for p in provenance.get("participants", [])]
        listed = ",".join(participants)
        if len(listed) > MAX_TAG_CHARS:
            listed = (
                f"{len(participants)} participants (listed in the artifact {CALIBRATOR_ARTIFACT})"
            )
        return {
            CALIBRATOR_TAG: f"{CALIBRATOR_ARTIFACT} ({self.path.name})",
            f"{CALIBRATOR_TAG}_sha256": self.digest,
            f"{CALIBRATOR_TAG}_threshold": self.model.threshold,
            f"{CALIBRATOR_TAG}_signals": ",".join(self.model.signals),
            f"{CALIBRATOR_TAG}_condition": str(provenance.get("condition", "")),
            f"{CALIBRATOR_TAG}_folds": ",".join(map(str, provenance.get("folds", []))),
            f"{CALIBRATOR_TAG}_participants": listed,
            f"{CALIBRATOR_TAG}_points": str(self.model.n_fitted),
        }

    def write_copy(self, folder: Path, pseudonyms: privacy.Pseudonyms) -> Path:
        """The score as the version carries it: participants by pseudonym."""
        data = json.loads(self.path.read_text(encoding="utf-8"))
        provenance = data.get("provenance") or {}
        provenance["participants"] = [
            pseudonyms(p, "participant") for p in provenance.get("participants", [])
        ]
        path = folder / f"{CALIBRATOR_ARTIFACT}.json"
        path.write_text(json.dumps(data | {"provenance": provenance}, indent=1), encoding="utf-8")
        return path


def trust_calibrator(cfg: DictConfig) -> Calibrator | None:
    """The trust score ``report.trust_model`` names, checked, or None when unset."""
    value = cfg.report.get("trust_model")
    if not value:
        return None
    path = Path(str(value))
    if not path.is_file():
        raise ConfigError(
            f"report.trust_model={path}: no such file; write one with `python -m benchmarks.trust` "
            "(docs/trust.md) or set report.trust_model=null"
        )
    try:
        model = TrustModel.load(path)
        model.check()
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    runs = (model.provenance or {}).get("model_runs") or {}
    if not runs:
        raise ConfigError(
            f"{path}: no provenance.model_runs (the MLflow runs whose models it was fitted for); "
            "fit it with `python -m benchmarks.trust`, which records them"
        )
    digest = sha256(path.read_bytes()).hexdigest()
    return Calibrator(path, model, digest, {str(r) for r in runs.values()})


def frames_alias(n_frames: int) -> str:
    return f"frames-{n_frames}"


def register_choice(cfg: DictConfig) -> str:
    choice = str(cfg.report.get("register", "best_generalisation"))
    if choice not in CHOICES:
        raise ConfigError(
            f"report.register={choice!r} is not allowed; use {' | '.join(CHOICES)} "
            "(conf/report/default.yaml)."
        )
    return choice


def study_runs(cfg: DictConfig, client: MlflowClient, experiment_id: str) -> pd.DataFrame:
    """The report's runs: the DVC pipeline's conditions (``report.sweep=pipeline``: the runs its
    evaluate stage names, :func:`src.tracking.runs.pipeline_runs`) or a sweep's."""
    if str(cfg.report.sweep) == "pipeline":
        return collect_runs(client, experiment_id, run_ids=pipeline_runs(cfg))
    parent = find_sweep(client, experiment_id, str(cfg.report.sweep))
    return collect_runs(client, experiment_id, parent.info.run_id)


def with_model(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished runs whose model is stored in MLflow (trained, or reused from a run that trained it)."""
    stored = runs["model_source"].str.startswith(("trained", "reused from run "))
    return runs[stored & (runs["status"] == "FINISHED") & (runs["labelled_frames"] > 0)]


def representatives(candidates: pd.DataFrame) -> pd.DataFrame:
    """One run per condition. Under cross-validation (a ``fold`` column) the fold whose model has
    the lowest generalisation MAE, with the condition's mean over folds as its ranking metric."""
    if "fold" not in candidates or candidates["fold"].isna().all():
        return candidates
    if RANKING_METRIC not in candidates:  # not evaluated: the first fold's
        return candidates.sort_values("fold").drop_duplicates("labelled_frames")
    mean = candidates.groupby("labelled_frames")[RANKING_METRIC].mean()
    best = candidates.sort_values([RANKING_METRIC, "fold"]).drop_duplicates("labelled_frames")
    return best.assign(**{RANKING_METRIC: best["labelled_frames"].map(mean)})


def choose_champion(
    runs: pd.DataFrame, choice: str, parent_tags: dict[str, str]
) -> tuple[int, str]:
    """The champion's labelled frames and why: by ``choice`` among ``runs`` (see :func:`with_model`)."""
    ranked = runs.dropna(subset=[RANKING_METRIC]) if RANKING_METRIC in runs else runs.iloc[:0]
    if ranked.empty:
        best, best_reason = (
            int(runs["labelled_frames"].max()),
            f"most labelled frames (no run has {RANKING_METRIC})",
        )
    else:
        row = ranked.sort_values([RANKING_METRIC, "labelled_frames"]).iloc[0]
        best = int(row["labelled_frames"])
        best_reason = f"lowest {RANKING_METRIC} ({row[RANKING_METRIC]:.2f})"
    if choice == "best_generalisation":
        return best, best_reason
    answer = parent_tags.get(FRAMES_TAG)
    match = re.match(r"\s*(\d+)", answer or "")
    if match is None:
        log.warning(
            "report.register=frames_to_label, but the parent run has no tag %s: registering "
            "the best instead",
            FRAMES_TAG,
        )
        return best, f"{best_reason}; the parent run has no tag {FRAMES_TAG}"
    n_frames = int(match.group(1))
    if n_frames not in set(runs["labelled_frames"]):
        log.warning(
            "tag %s=%s names no trained condition of this study: registering the best instead",
            FRAMES_TAG,
            answer,
        )
        return best, f"{best_reason}; {FRAMES_TAG}={answer} names no trained condition"
    return n_frames, f"{FRAMES_TAG}={answer} (the parent run's answer)"


def requirements() -> list[str]:
    pins = []
    for package in REQUIREMENTS:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def log_pose_model(
    run_id: str,
    weights_run_id: str,
    snapshot: str,
    calibrator: Calibrator | None = None,
    pseudonyms: privacy.Pseudonyms | None = None,
) -> str:
    """Log the pyfunc of the model stored in ``weights_run_id``'s artifact ``model/`` (its
    ``snapshot``) into run ``run_id``, with the trust score ``calibrator`` when given (refused when
    its bodyparts are not the model's); returns the model URI."""
    with tempfile.TemporaryDirectory(prefix="register-") as tmp:
        model = download_model(weights_run_id, Path(tmp))
        artifacts = {
            "pose_config": str(model.pose_config),
            "snapshot": str(model.snapshot(snapshot)),
        }
        project_config = model.pose_config.parent / "project_config.yaml"
        if project_config.is_file():  # bodyparts and skeleton; video names are pseudonyms
            artifacts["project_config"] = str(project_config)
        if calibrator is not None:
            try:
                calibrator.model.check(model.bodyparts)
            except ValueError as error:
                raise calibrator.refused(str(error)) from None
            copy = calibrator.write_copy(Path(tmp), pseudonyms or privacy.Pseudonyms(tmp, False))
            artifacts[CALIBRATOR_ARTIFACT] = str(copy)
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name="pose_model",
                python_model=str(PYFUNC_CODE),
                artifacts=artifacts,
                model_config={"device": "cpu", "batch_size": 8},
                pip_requirements=requirements(),
                signature=False,  # the output columns depend on the bodyparts: see pose_pyfunc.py
            )
    return info.model_uri


def ensure_version(
    client: MlflowClient,
    name: str,
    row: pd.Series,
    snapshot: str,
    calibrator: Calibrator | None = None,
    pseudonyms: privacy.Pseudonyms | None = None,
) -> str:
    """The version of ``name`` holding this run's weights at ``snapshot`` (and the trust score
    ``calibrator`` when it was fitted for this run); registered if none does."""
    run = client.get_run(row["run_id"])
    model_key = run.data.tags.get("model_key", "")
    source = str(row["model_source"])
    weights_run_id = (
        source.removeprefix("reused from run ").split()[0]
        if source.startswith("reused from run ")
        else row["run_id"]
    )
    if calibrator is not None and not calibrator.fits(row["run_id"], weights_run_id):
        calibrator = None  # fitted for other models: this version carries none
    for found in client.search_model_versions(f"name = '{name}'"):
        same_weights = (
            found.tags.get("model_key") == model_key and found.tags.get("snapshot") == snapshot
        )
        if same_weights and (
            calibrator is None or found.tags.get(f"{CALIBRATOR_TAG}_sha256") == calibrator.digest
        ):
            return found.version
    uri = log_pose_model(row["run_id"], weights_run_id, snapshot, calibrator, pseudonyms)
    calibrator_tags = (
        calibrator.tags(pseudonyms or privacy.Pseudonyms("", False)) if calibrator else {}
    )
    registered = mlflow.register_model(
        uri,
        name,
        tags=calibrator_tags
        | {
            "labelled_frames": str(int(row["labelled_frames"])),
            "training_run_id": str(row["run_id"]),
            "weights_run_id": weights_run_id,
            "model_key": model_key,
            "snapshot": snapshot,
            RANKING_METRIC: str(row.get(RANKING_METRIC, "")),
        },
    )
    return registered.version


def register_study(cfg: DictConfig) -> Registration | None:
    """Register every trained condition of the report's study and set the aliases (see the module)."""
    choice = register_choice(cfg)
    if choice == "none":
        return None
    if engine_name(cfg) != "pytorch":  # the pyfunc wraps DeepLabCut's PyTorch inference
        log.warning("engine=%s: models are registered for engine=pytorch only", engine_name(cfg))
        return None
    client, experiment_id = open_experiment(cfg.mlflow)
    runs = study_runs(cfg, client, experiment_id)
    candidates = with_model(runs)
    if candidates.empty:
        log.warning("no condition of the study has a trained model: nothing registered")
        return None
    parent_id = client.get_run(candidates["run_id"].iloc[0]).data.tags.get("mlflow.parentRunId")
    parent_tags = client.get_run(parent_id).data.tags if parent_id else {}
    chosen = representatives(candidates)
    champion, reason = choose_champion(chosen, choice, parent_tags)
    if len(chosen) < len(candidates):
        reason += (
            f"; cross-validation: the condition's mean {RANKING_METRIC} over folds, and the model "
            "of its best fold (no model was trained on every participant)"
        )
    name, snapshot = str(cfg.data.name), str(cfg.evaluation.snapshot)
    calibrator = trust_calibrator(cfg)
    if calibrator is not None and not calibrator.fits(*candidates["run_id"]):
        log.warning(
            "report.trust_model=%s was fitted for runs %s, none of this study's: no version "
            "carries it",
            calibrator.path,
            sorted(calibrator.runs),
        )
    pseudonyms = privacy.from_config(cfg)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(
            name,
            description=f"DeepLabCut pose models of the data set {name}, one version per "
            "labelled-frames condition (alias frames-<n>); champion: the study's choice.",
        )
    versions = {}
    for _, row in candidates.iterrows():
        n_frames, fold = int(row["labelled_frames"]), row.get("fold")
        version = ensure_version(client, name, row, snapshot, calibrator, pseudonyms)
        if pd.notna(fold):  # every fold's model: frames-<n>-fold-<k>
            client.set_registered_model_alias(
                name, f"{frames_alias(n_frames)}-fold-{fold}", version
            )
        if row["run_id"] in set(chosen["run_id"]):
            versions[n_frames] = version
            client.set_registered_model_alias(name, frames_alias(n_frames), version)
    pseudonyms.save()
    client.set_registered_model_alias(name, CHAMPION, versions[champion])
    client.set_model_version_tag(name, versions[champion], "champion_reason", reason)
    if parent_id:
        client.set_tag(parent_id, "registered_model", f"models:/{name}@{CHAMPION}")
        client.set_tag(parent_id, "champion", f"{champion} labelled frames: {reason}")
    return Registration(name, versions, champion, versions[champion], reason)
