"""Check the whole study before the first minute of training: one error, one line, with the fix.

:func:`check_study` runs, in this order, and stops at the first problem (a DataError naming the key
or file and a fix that works):

1. the configuration values it reads (:func:`src.checks.check_config`), and those of the stages
   after training (``report.*``, ``export.*``), also with ``cheap=True``;
2. the data set loads (:func:`src.data.dataset.load_dataset`, with every check of its loader);
3. it has participants enough for the split (the split's own function, on the loaded videos: with
   fewer than 2 participants it suggests ``split=frames``); with ``split=kfold`` every fold's split,
   and ``pipeline.folds`` (folds that exist);
4. the conditions (``pipeline.conditions``) are ones the data can serve (:mod:`src.study.plan`);
5. condition 0's plan: which bodyparts the initial model shares with the data (a skipped
   condition 0 is no error: a note is printed); ``weights=snapshot``'s file exists;
6. the image sizes of the frames are readable;
7. the disk of ``paths.models_dir`` has room for the snapshots the trainings keep.

Callers: ``python -m src.params`` when it brings in a study (before the study file is written),
the pipeline's ``check`` stage (``python -m src.check``, before any cohort is generated or model
pre-trained), ``src.prepare``, and ``src.train`` (``cheap=True``: only what needs no data loaded,
the initial weights' file and the disk).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from PIL import Image

from src.checks import check_config
from src.data.split import KFOLD, check_folds, split_kind
from src.errors import DataError
from src.evaluation.pck import reference_of
from src.study import plan
from src.study.bodyparts import ConditionZero
from src.study.needs import cohorts_not_needed, pretraining_not_needed

# Disk one training keeps under paths.models_dir, in snapshots of the model's weights: DeepLabCut
# keeps its newest snapshot and its best one (engine.pose_config_updates: max_snapshots 1, plus
# snapshot-best), each with AdamW's optimizer state (two more copies of the weights) so that a killed
# training can resume, and the model exported for MLflow (last and best, weights only): 2 x 3 + 2.
SNAPSHOTS_PER_TRAINING = 8
# MB of one snapshot's weights (measured: resnet_18 45.6 MB); pipeline.snapshot_mb overrides it.
SNAPSHOT_MB = {"resnet_18": 45, "resnet_50": 95, "resnet_101": 170}
GB = 1e9
# Settings that only the stages after training read, checked before it.
AFTER_TRAINING = ("report", "export")


@dataclass(frozen=True)
class StudyPlan:
    """What the check found the study will run."""

    conditions: list[int]
    condition_zero: ConditionZero | None  # its plan (None: not checked, cheap=True)
    trainings: int  # models to train: conditions > 0, and the pre-training if there is one
    disk_needed_gb: float
    cohorts_not_needed: dict[str, str]
    pretraining_not_needed: str | None

    def record(self) -> dict:
        """What the pipeline's check stage writes: what the stages after it need to know (not the
        conditions: a new one re-runs its own stages only), nothing that changes between runs."""
        zero = self.condition_zero
        return {
            "condition_0": None
            if zero is None
            else {
                "evaluated": f"{len(zero.evaluated)} of {len(zero.data_bodyparts)} bodyparts",
                "not_evaluated": [b for b in zero.data_bodyparts if b not in zero.mapping],
                "renamed": zero.renamed,
                "skipped": zero.skipped,
            },
            "not_needed": {
                **{f"cohort {k}": v for k, v in self.cohorts_not_needed.items()},
                **(
                    {"pretraining": self.pretraining_not_needed}
                    if self.pretraining_not_needed
                    else {}
                ),
            },
        }


def check_study(
    cfg: DictConfig,
    *,
    cheap: bool = False,
    conditions: Sequence[int] | None = None,
    say: Callable[[str], None] = print,
) -> StudyPlan:
    """Check the study of ``cfg``; returns its plan, or raises a DataError at the first problem.

    ``cheap``: no data is loaded (``src.train``): only the initial weights' file and the disk, for
    ``conditions`` (default: ``labelled_frames``).
    """
    start = time.perf_counter()
    # read only after training (the report's registry, the export): a bad value stops here, not then
    check_config(cfg, *AFTER_TRAINING)
    if cheap:
        return _check_cheaply(cfg, conditions)

    check_config(cfg, "data", "split", "frames", "training")
    data = plan.study_data(cfg)  # loads the data set and splits it, with their own checks
    if conditions is None:
        conditions = plan.resolve_conditions(cfg)
    folds = plan.resolve_folds(cfg)  # split=kfold: every fold's split was made above, checked
    # condition 0's plan (and the snapshot's file and weights.bodypart_map), run or not
    zero = plan.condition_zero(cfg, data.bodyparts)
    # the PCK reference names bodyparts of the data: a typo stops here, not after the first training
    # (the synthetic cohort not generated yet always has a scale: conf/synthetic's cm_per_px)
    reference_of(
        cfg.evaluation.pck,
        str(cfg.data.kind),
        data.bodyparts,
        data.dataset.cm_per_px if data.dataset is not None else 1.0,
    )
    if data.dataset is not None:
        check_image_sizes(data.dataset)
    trainings = _trainings(cfg, conditions, len(folds) or 1)
    needed = check_disk(cfg, trainings)
    seconds = time.perf_counter() - start
    for line in _summary_lines(cfg, data, conditions, folds, zero, trainings, needed, seconds):
        say(line)
    return StudyPlan(
        conditions,
        zero,
        trainings,
        needed,
        cohorts_not_needed(cfg),
        pretraining_not_needed(cfg),
    )


def _check_cheaply(cfg: DictConfig, conditions: Sequence[int] | None) -> StudyPlan:
    """What ``src.train`` checks without loading data: the fold, the initial weights' file, the disk."""
    conditions = [int(cfg.labelled_frames)] if conditions is None else list(conditions)
    if split_kind(cfg.split) == KFOLD:  # split.fold is one of split.folds (the folds' own
        # participants were checked when they were prepared)
        check_folds(cfg.split.folds, cfg.split.folds, cfg.split.fold)
    if cfg.weights.kind == "snapshot":
        plan.initial_model_bodyparts(cfg)  # the file exists and names its bodyparts
    needed = check_disk(cfg, _trainings(cfg, conditions))
    return StudyPlan(conditions, None, _trainings(cfg, conditions), needed, {}, None)


def _summary_lines(
    cfg: DictConfig,
    data: plan.StudyData,
    conditions: list[int],
    folds: list,
    zero: ConditionZero,
    trainings: int,
    needed: float,
    seconds: float,
) -> list[str]:
    """What the check says: the data, conditions, folds and disk; the data's note; condition 0's
    plan when it is run and not plain."""
    counted = data.train_frames
    across = f"; folds {folds} of split.folds={cfg.split.folds}" if folds else ""
    lines = [
        f"study check: {cfg.data.name} ({cfg.data.kind}): {len(counted.per_video)} development "
        f"video(s), {counted.most} train frame(s) or more each; conditions {conditions} "
        f"(pipeline.conditions={_shown(cfg.pipeline.conditions)}){across}; about {needed:.1f} GB of "
        f"snapshots for {trainings} training(s); checked in {seconds:.1f} s"
    ]
    if data.note:
        lines.append(f"study check: {data.note}")
    if 0 in conditions and (zero.skipped or not zero.complete or zero.renamed):
        lines.append(f"study check: {zero.summary()}")
    return lines


def _shown(value) -> str:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    return str(value)


def _trainings(cfg: DictConfig, conditions: Sequence[int], folds: int = 1) -> int:
    """Models the study trains: conditions > 0 in every fold, and the pre-training (shared)."""
    pretraining = 1 if cfg.weights.kind == "pretrained" else 0
    return sum(1 for n in conditions if int(n) > 0) * folds + pretraining


def snapshot_mb(cfg: DictConfig) -> float:
    """MB of one snapshot of ``model=``: ``pipeline.snapshot_mb``, or the table's value."""
    given = OmegaConf.select(cfg, "pipeline.snapshot_mb", default="auto")
    if given not in (None, "auto"):
        if isinstance(given, bool) or not isinstance(given, (int, float)) or given <= 0:
            raise DataError(
                f"pipeline.snapshot_mb={given!r} is not allowed: it must be `auto` or a number of "
                "MB > 0 (conf/config.yaml)."
            )
        return float(given)
    return float(SNAPSHOT_MB.get(str(cfg.model.name), max(SNAPSHOT_MB.values())))


def check_disk(cfg: DictConfig, trainings: int) -> float:
    """GB the trainings' snapshots need under ``paths.models_dir``; raises when its disk has less
    free."""
    mb = snapshot_mb(cfg)
    needed = trainings * SNAPSHOTS_PER_TRAINING * mb * 1e6 / GB
    folder = Path(str(cfg.paths.models_dir)).absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    free = shutil.disk_usage(existing).free / GB
    if needed > free:
        raise DataError(
            f"paths.models_dir={cfg.paths.models_dir}: the {trainings} training(s) of this study "
            f"need about {needed:.1f} GB for their snapshots ({SNAPSHOTS_PER_TRAINING} x {mb:g} MB "
            f"for model={cfg.model.name}: DeepLabCut's last and best snapshot with optimizer state, "
            f"and the exported model), but the disk of {existing} has {free:.1f} GB free; free "
            "space there, point paths.models_dir at a larger disk, or run fewer conditions "
            "(pipeline.conditions)."
        )
    return needed


def check_image_sizes(dataset) -> None:
    """Every video has a frame size, every labelled image a readable header (no pixels decoded)."""
    videos = dataset.videos
    if "image" in dataset.annotations.columns:  # labelled image files (DeepLabCut, Lightning Pose)
        for image in dataset.annotations["image"].dropna().unique():
            path = Path(dataset.root) / str(image)
            try:
                with Image.open(path) as frame:
                    width, height = frame.size
            except OSError as error:
                raise DataError(
                    f"{path} cannot be read as an image ({error}); restore the frame, or remove "
                    "its row from the labels."
                ) from error
            if width < 1 or height < 1:
                raise DataError(f"{path} has no pixels ({width}x{height}); restore the frame.")
        return
    for row in videos.itertuples(index=False):
        width, height = getattr(row, "width", None), getattr(row, "height", None)
        if not (width and height and int(width) > 0 and int(height) > 0):
            raise DataError(
                f"video {getattr(row, 'path', None) or row.video} has no readable frame size "
                f"({width}x{height}); re-export it (e.g. with ffmpeg) and try again."
            )
