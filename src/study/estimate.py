"""How long a study will take, from costs measured on this machine (``python -m src.params`` prints it).

    estimate = trained cells x updates per cell x seconds per update
             + pre-training updates x seconds per update (when it must run)
             + fixed costs: each stage process's start-up, each evaluation's predictions, and the
               allowances below for the work around the updates

Seconds per update come from, in this order: the last training of the same setting on this machine
(recorded after each training, :func:`record_training`), a probe (:func:`probe`: a few forward +
backward + AdamW steps of the study's model on random images of its input size, at its batch size
and thread count, in a fresh process, which also times the start-up and one image's prediction), or
nothing ("unknown until probed"). Both are cached in ``<paths.data_dir>/timings.json`` (git-ignored)
per model, input size, batch size, threads, engine, device and CPU numerics (``src.cpu_numerics()``).

The probe times the network only; a training also loads and augments its images, so the probe's
figure is a lower bound until a training of the same setting has run. The probe builds the PyTorch
model: for ``engine=tensorflow`` the estimate is unknown until a training has been measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src import engine
from src.study.config import cell_overrides

CACHE_NAME = "timings.json"  # under paths.data_dir (git-ignored)
PROBE_UPDATES = 3  # timed after one warm-up update (oneDNN builds its kernels on first use)
PROBE_IMAGES = 5  # batch-1 forwards timed, as DeepLabCut predicts when evaluating
PROBE_TIMEOUT_S = 180

# Allowances for the work around the updates, in seconds; rough, not measured one by one: the
# demo's stages on a 2-core CPU (README: an evaluate stage plus its share of the report about 20 s;
# `prepare` 21 s for one split). They are a small part of a study: its updates dominate.
TRAIN_CELL_EXTRA_S = 15.0  # a training besides its updates: DeepLabCut's project and data loaders,
# its in-training test evaluations, snapshots, the exported model, MLflow logging
EVALUATE_CELL_EXTRA_S = 5.0  # an evaluation besides its predictions: metrics, intervals, pictures
PREPARE_S = 25.0  # split and ranked k-means selection of one data set (src.prepare)
COHORT_S = 60.0  # generating the synthetic cohorts (only when the study reads one)
REPORT_S = 30.0  # the report: tables, pictures, registry
# Before a probe has run: a stage process's start-up (Python, torch, DeepLabCut, MLflow imports).
START_S = 10.0


@dataclass(frozen=True)
class Costs:
    """What one update, one prediction and one process start cost on this machine."""

    per_update_s: float
    source: str  # "training" (the last one of this setting) or "probe"
    start_s: float = START_S
    per_image_s: float = 0.0
    load_per_core: float = 0.0  # the machine's load when probed (1-minute load average per core)


@dataclass(frozen=True)
class StudyEstimate:
    seconds: float | None  # None: unknown (see ``why``)
    cells: int
    trained_cells: int
    updates: tuple[int, int]  # fewest and most updates of a trained cell
    pretraining_updates: int  # 0: no pre-training to run
    costs: Costs | None
    why: str = ""  # when unknown: why, and how to measure
    cache: str = CACHE_NAME  # the cache file the costs came from
    disk_gb: float | None = None  # the snapshots the trainings keep (src.study.check.check_disk)

    def line(self) -> str:
        """One line for ``src.params``: the time beside the disk."""
        disk = "" if self.disk_gb is None else f" and about {self.disk_gb:.1f} GB of snapshots"
        if self.seconds is None:
            space = "" if self.disk_gb is None else f"about {self.disk_gb:.1f} GB of snapshots; "
            return f"estimate: {space}time unknown until probed ({self.why})"
        low, high = self.updates
        per_cell = f"{low}" if low == high else f"{low}-{high}"
        pre = (
            f" and the pre-training ({self.pretraining_updates} updates)"
            if self.pretraining_updates
            else ""
        )
        if self.costs.source == "training":
            measured = "the last training of this setting on this machine"
        else:
            measured = "a probe on this machine; training also loads images, so more"
            if self.costs.load_per_core > 1:
                measured += (
                    f"; probed while the machine was busy ({self.costs.load_per_core:.1f} "
                    f"processes per core): delete {self.cache} to probe again"
                )
        from src.engine.progress import minutes

        return (
            f"estimate: {minutes(self.seconds)}{disk} for {self.cells} cell(s), "
            f"{self.trained_cells} trained ({per_cell} updates each){pre}, at "
            f"{self.costs.per_update_s:.2f} s per update ({measured})"
        )


# ----------------------------------------------------------------------------- cache


def cache_path(cfg: DictConfig) -> Path:
    return Path(str(cfg.paths.data_dir)) / CACHE_NAME


def device_of(cfg: DictConfig) -> str:
    """The training device as torch will use it (``auto``: cuda when there is one)."""
    device = str(cfg.training.device)
    if device != "auto":
        return device
    return engine.for_config(cfg).auto_device()


def cache_key(cfg: DictConfig, input_wh: tuple[int, int]) -> dict:
    """What a per-update cost depends on."""
    from src import cpu_numerics

    return {
        "model": str(cfg.model.name),
        "input_wh": [int(input_wh[0]), int(input_wh[1])],
        "batch_size": int(cfg.training.batch_size),
        "threads": int(cfg.training.threads),
        "engine": str(OmegaConf.select(cfg, "engine.name", default="pytorch")),
        "device": device_of(cfg),
        "cpu_numerics": cpu_numerics(),
    }


def key_id(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def read_cache(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_entry(path: Path, key: dict, **values) -> None:
    """Merge ``values`` into the cache entry of ``key`` (written whole, atomically)."""
    from src.files import atomic_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache = read_cache(path)
    entry = cache.setdefault(key_id(key), {"key": key})
    entry.update(values)
    with atomic_file(path) as staging:
        staging.write_text(json.dumps(cache, indent=1, sort_keys=True), encoding="utf-8")


def cached_costs(path: Path, key: dict) -> Costs | None:
    """The costs cached for ``key``: the last training's per-update cost before the probe's."""
    entry = read_cache(path).get(key_id(key))
    if not entry or "probe" not in entry and "training" not in entry:
        return None
    probed = entry.get("probe", {})
    start, per_image = probed.get("start_s", START_S), probed.get("per_image_s", 0.0)
    if "training" in entry:
        return Costs(float(entry["training"]["per_update_s"]), "training", start, per_image)
    load = float(probed.get("load_per_core", 0.0))
    return Costs(float(probed["per_update_s"]), "probe", start, per_image, load)


# ----------------------------------------------------------------------------- probe


def probe(cfg: DictConfig, input_wh: tuple[int, int], n_bodyparts: int) -> Costs:
    """Measure the costs in a fresh process (seconds): its start-up with a stage's imports, a few
    training updates of the study's model, and batch-1 predictions."""
    request = {
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "input_wh": list(input_wh),
        "batch_size": int(cfg.training.batch_size),
        "threads": int(cfg.training.threads),
        "device": device_of(cfg),
        "n_bodyparts": int(n_bodyparts),
        "engine": engine.engine_name(cfg),
        "probe_updates": PROBE_UPDATES,
        "probe_images": PROBE_IMAGES,
    }
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "src.study.estimate", json.dumps(request)],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        cwd=Path(__file__).resolve().parents[2],
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"the timing probe failed: {result.stderr.strip()[-500:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return Costs(
        measured["per_update_s"],
        "probe",
        start_s=measured["imported_at"] - started,
        per_image_s=measured["per_image_s"],
        load_per_core=load,
    )


# ----------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class StudyShape:
    """What the estimate needs of the data: per cell, as the study's split makes it."""

    dev_videos: float  # development videos of one cell (one fold's under kfold)
    generalisation_videos: float
    input_wh: tuple[int, int]
    n_bodyparts: int


def study_shape(cfg: DictConfig) -> StudyShape:
    """Read from the data set as the study check loads it (cached in the process)."""
    from src.data.split import KFOLD, split_kind
    from src.study.plan import study_data

    data = study_data(cfg)
    if data.dataset is None:  # the synthetic cohort, not generated yet: conf/synthetic
        cohort = cfg.synthetic.clinical
        n_videos = int(cohort.n_participants) * int(cohort.videos_per_participant)
        input_wh = (int(cohort.width_px), int(cohort.height_px))
    else:
        videos = data.dataset.videos
        n_videos = len(videos)
        input_wh = _largest_frame(data.dataset)
    dev = len(data.train_frames.per_video)
    if split_kind(cfg.split) == KFOLD:  # per_video holds every fold's development videos
        folds = int(cfg.split.folds)
        dev = n_videos * (folds - 1) / folds
    return StudyShape(dev, max(0, n_videos - dev), input_wh, len(data.bodyparts))


def _largest_frame(dataset) -> tuple[int, int]:
    videos = dataset.videos
    if {"width", "height"} <= set(videos.columns) and videos["width"].notna().any():
        return int(videos["width"].max()), int(videos["height"].max())
    from src.data.prepared import largest_image_size

    images = dataset.annotations["image"].dropna().unique()
    return largest_image_size(Path(dataset.root) / str(i) for i in images)


def updates_per_cell(cfg: DictConfig, labelled_frames: int, dev_videos: float) -> int:
    """Updates a condition's training runs: ``training.iterations`` rounded up to whole epochs of
    its training images (PyTorch engine; the TensorFlow engine runs the iterations, plus one)."""
    iterations, batch = int(cfg.training.iterations), int(cfg.training.batch_size)
    n_train = max(1, round(labelled_frames * dev_videos))
    return engine.for_config(cfg).weight_updates(iterations, batch, n_train)


def images_per_evaluation(cfg: DictConfig, labelled_frames: int, shape: StudyShape) -> float:
    """Frames an evaluation predicts: train and test frames of the development videos, and the
    generalisation frames."""
    from src.data.frames import n_test_frames_per_video

    n_test = n_test_frames_per_video(
        int(cfg.frames.max_train_frames_per_video), float(cfg.frames.test_fraction)
    )
    per_generalisation = cfg.frames.get("generalisation_frames_per_video", 1)
    per_generalisation = per_generalisation if isinstance(per_generalisation, int) else n_test
    return (
        shape.dev_videos * (labelled_frames + n_test)
        + shape.generalisation_videos * per_generalisation
    )


def cell_seconds(cfg: DictConfig, labelled_frames: int, shape: StudyShape, costs: Costs) -> float:
    """One cell of the pipeline: its train stage (condition 0: no training) and its evaluation (one
    process, the evaluate stage, evaluates every cell: its start is counted once per study)."""
    seconds = costs.start_s + EVALUATE_CELL_EXTRA_S
    seconds += images_per_evaluation(cfg, labelled_frames, shape) * costs.per_image_s
    if labelled_frames > 0:
        updates = updates_per_cell(cfg, labelled_frames, shape.dev_videos)
        seconds += updates * costs.per_update_s + TRAIN_CELL_EXTRA_S
    return seconds


def pretraining_needed(cfg: DictConfig) -> bool:
    """``weights=healthy_adults`` and no pre-trained model of this data set and model yet (any
    settings: a changed setting is not seen here)."""
    if str(cfg.weights.kind) != "pretrained":
        return False
    folder = Path(str(cfg.paths.models_dir)) / "pretrained"
    prefix = f"{cfg.pretraining.data.name}-{cfg.model.name}-"
    return not any(folder.glob(f"{prefix}*/pretrained.yaml"))


def study_costs(cfg: DictConfig, shape: StudyShape, *, probe_now: bool = True) -> Costs | None:
    """The cached costs of the study's setting, probed (and cached) first when ``probe_now``."""
    key = cache_key(cfg, shape.input_wh)
    path = cache_path(cfg)
    found = cached_costs(path, key)
    if found is not None or not probe_now or not engine.module(key["engine"]).TIMING_PROBE:
        return found
    measured = probe(cfg, shape.input_wh, shape.n_bodyparts)
    write_entry(
        path,
        key,
        probe={
            "per_update_s": measured.per_update_s,
            "start_s": measured.start_s,
            "per_image_s": measured.per_image_s,
            "load_per_core": round(measured.load_per_core, 2),
            "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    )
    return measured


def estimate_study(
    cfg: DictConfig, *, probe_now: bool = True, costs: Costs | None = None
) -> StudyEstimate:
    """The time of the whole study of ``cfg`` (``pipeline.conditions`` and ``pipeline.folds``
    resolved to lists, as params.yaml holds them), run from the start.

    ``costs``: use these instead of the cache or a probe (tests).
    """
    conditions = [int(n) for n in cfg.pipeline.conditions]
    folds = max(1, len(OmegaConf.select(cfg, "pipeline.folds", default=None) or []))
    shape = study_shape(cfg)
    if costs is None:
        costs = study_costs(cfg, shape, probe_now=probe_now)
    trained = [n for n in conditions if n > 0]
    updates = [updates_per_cell(cfg, n, shape.dev_videos) for n in trained] or [0]
    pre_updates = int(cfg.pretraining.iterations) if pretraining_needed(cfg) else 0
    common = {
        "cells": len(conditions) * folds,
        "trained_cells": len(trained) * folds,
        "updates": (min(updates), max(updates)),
        "pretraining_updates": pre_updates,
        "costs": costs,
        "cache": str(cache_path(cfg)),
        "disk_gb": _disk_gb(cfg, len(trained) * folds),
    }
    if costs is None:
        engine = str(OmegaConf.select(cfg, "engine.name", default="pytorch"))
        why = (
            "`python -m src.params` without --no-probe measures this machine in seconds"
            if engine == "pytorch"
            else f"the probe times the PyTorch engine only; engine={engine}'s first training is "
            "measured and used from then on"
        )
        return StudyEstimate(None, why=why, **common)
    seconds = folds * sum(cell_seconds(cfg, n, shape, costs) for n in conditions)
    seconds += 5 * costs.start_s + PREPARE_S + REPORT_S  # check, cohort, prepare, evaluate, report
    if _reads_synthetic(cfg):
        seconds += COHORT_S
    if pre_updates:
        seconds += pre_updates * costs.per_update_s + TRAIN_CELL_EXTRA_S + PREPARE_S
        seconds += 2 * costs.start_s  # prepare_pretraining and pretrain
    return StudyEstimate(seconds, **common)


def _disk_gb(cfg: DictConfig, trained_cells: int) -> float | None:
    """What the study check counts: every training's snapshots, the pre-training's included."""
    from src.study.check import GB, SNAPSHOTS_PER_TRAINING, snapshot_mb

    trainings = trained_cells + (1 if str(cfg.weights.kind) == "pretrained" else 0)
    try:
        return trainings * SNAPSHOTS_PER_TRAINING * snapshot_mb(cfg) * 1e6 / GB
    except Exception:  # a bad pipeline.snapshot_mb: the study check says so
        return None


def study_time_line(study: dict, *, probe_now: bool = True) -> str:
    """The estimate's line for ``python -m src.params`` (``study``: params.yaml's content); never
    raises: an estimate that cannot be made says why."""
    try:
        return estimate_study(OmegaConf.create(study), probe_now=probe_now).line()
    except subprocess.TimeoutExpired:
        return f"estimate: time unknown (the timing probe took over {PROBE_TIMEOUT_S} s)"
    except Exception as error:
        return f"estimate: time unknown ({type(error).__name__}: {error})"


def _reads_synthetic(cfg: DictConfig) -> bool:
    return str(cfg.data.kind) == "synthetic" or (
        str(cfg.weights.kind) == "pretrained" and str(cfg.pretraining.data.kind) == "synthetic"
    )


# ----------------------------------------------------------------------------- measured trainings


def trained_input_size(updates: dict) -> tuple[int, int] | None:
    """The input size a training ran at, from its engine's config updates."""
    crop = updates.get("data.train.crop_sampling")  # PyTorch engine
    if crop:
        return int(crop["width"]), int(crop["height"])
    if updates.get("crop_size"):  # TensorFlow engine
        width, height = updates["crop_size"]
        return int(width), int(height)
    return None


def record_training(cfg: DictConfig, updates: dict, per_update_s: float | None) -> None:
    """Keep a finished training's wall seconds per update for the estimates after it (never fails
    a training: a cache that cannot be written is skipped)."""
    input_wh = trained_input_size(updates)
    if per_update_s is None or input_wh is None:
        return
    with contextlib.suppress(OSError):
        write_entry(
            cache_path(cfg),
            cache_key(cfg, input_wh),
            training={"per_update_s": per_update_s, "at": time.strftime("%Y-%m-%dT%H:%M:%S")},
        )


# ----------------------------------------------------------------------------- a study's cells


def _safe_shape(cfg: DictConfig) -> StudyShape | None:
    try:
        return study_shape(cfg)
    except Exception:  # progress only: a data set that does not load fails the stage elsewhere
        return None


def _left(seconds: float | None) -> str:
    from src.engine.progress import minutes

    return "time left unknown until probed" if seconds is None else f"{minutes(seconds)} left"


def pipeline_cell_line(cfg: DictConfig, stage: str | None = None) -> str | None:
    """:func:`_pipeline_cell_line`, or None when it cannot tell (progress never fails a stage)."""
    try:
        return _pipeline_cell_line(cfg, stage)
    except Exception:
        return None


def _pipeline_cell_line(cfg: DictConfig, stage: str | None = None) -> str | None:
    """'cell k of n' for a train stage of ``dvc repro`` (``DVC_STAGE`` train@<cell>), with the time
    left from the cached costs; None outside one.

    DVC runs every train stage before the evaluate stage, so a cell counts as done when its trained
    model (``<pipeline.dir>/models/<cell>/``) or its evaluation (``<pipeline.dir>/evaluation/<cell>/``)
    is newer than params.yaml; a cell DVC re-runs for a code change alone counts as done too, so k
    then runs ahead.
    """
    stage = os.environ.get("DVC_STAGE", "") if stage is None else stage
    cells = OmegaConf.select(cfg, "pipeline.cells", default=None)
    if not stage.startswith("train@") or not cells:
        return None
    this = stage.split("@", 1)[1]
    if this not in cells:
        return None
    params = Path("params.yaml")
    since = params.stat().st_mtime if params.is_file() else 0.0
    outputs = [Path(str(cfg.pipeline.dir)) / kind for kind in ("models", "evaluation")]

    def done(cell) -> bool:
        folders = [folder / str(cell["dir"]) for folder in outputs]
        return any(f.is_dir() and f.stat().st_mtime > since for f in folders)

    to_do = [name for name, cell in cells.items() if name == this or not done(cell)]
    k = len(cells) - len(to_do) + 1
    seconds = None
    shape = _safe_shape(cfg)
    costs = cached_costs(cache_path(cfg), cache_key(cfg, shape.input_wh)) if shape else None
    if costs is not None:
        seconds = sum(cell_seconds(cfg, _frames_of(cells[name]), shape, costs) for name in to_do)
        seconds += 2 * costs.start_s + REPORT_S  # the evaluate stage and the report
    return f"[study] cell {k} of {len(cells)} ({stage}), {_left(seconds)}"


def _frames_of(cell) -> int:
    """labelled_frames of a cell of pipeline.cells, from its overrides."""
    return int(cell_overrides(str(cell["overrides"]))["labelled_frames"])


def sweep_cell_line(
    cfg: DictConfig, k: int, n: int | None, done_seconds: list[float], left: list[int]
) -> str:
    """'cell k of n' for a job of ``+sweep=frames``: time left from the mean of the jobs done so far,
    else from the cached costs. ``left``: the labelled frames of this job and those after it."""
    seconds = None
    if done_seconds and n is not None:
        seconds = sum(done_seconds) / len(done_seconds) * (n - k + 1)
    else:
        shape = _safe_shape(cfg)
        costs = cached_costs(cache_path(cfg), cache_key(cfg, shape.input_wh)) if shape else None
        if costs is not None:
            seconds = sum(cell_seconds(cfg, m, shape, costs) for m in left)
    of = f" of {n}" if n is not None else ""
    return f"[sweep] cell {k}{of} (labelled_frames={cfg.labelled_frames}), {_left(seconds)}"


def _child_probe(request: dict) -> None:
    """In the probe's process: time the updates and predictions (its engine's ``timing_probe``);
    print one JSON line."""
    # `python -m src.study.estimate` imported `src` first, which pins the CPU numerics as in a stage
    import mlflow  # noqa: F401  (a stage's imports: part of its start-up)

    print(json.dumps(engine.module(request["engine"]).timing_probe(request)))


if __name__ == "__main__":
    _child_probe(json.loads(sys.argv[1]))
