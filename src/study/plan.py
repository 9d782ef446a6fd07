"""What a study will run, decided from its configuration and its data before any training.

* **Conditions** (``pipeline.conditions``): ``auto`` (the default) is the paper's conditions
  (0, 1, 2, 6, 10, 15, 20) that the data can serve, plus the most it can serve. A data set
  *serves* N labelled frames per video when every development video has at least N train frames:
  its candidate frames (a DeepLabCut project's labelled frames, every frame of a video; with
  ``split=frames`` less its held-out block) less its fixed test frames, at most
  ``frames.max_train_frames_per_video``. Counted with the data layer's own split and frame
  functions, as ``src.prepare`` selects them. An explicit list the data cannot serve is an error
  at once, naming the key, the frames each development video has and the fix.
* **Condition 0**: which bodyparts the initial model and the data share
  (:mod:`src.study.bodyparts`), known before anything is pre-trained.

``python -m src.params`` writes ``auto`` resolved into params.yaml (DVC's ``matrix:`` needs a
list); ``+sweep=frames`` sweeps the same list through the OmegaConf resolver ``study_conditions``,
registered when this module is imported (``src.train`` imports it before Hydra composes):
``labelled_frames: ${study_conditions:${pipeline.conditions}}`` in conf/sweep/frames.yaml.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from src import engine
from src.data.dataset import Dataset, load_dataset
from src.data.frames import candidate_frames, n_test_frames_per_video
from src.data.split import DEVELOPMENT, KFOLD, frame_sets, split_dataset, split_fold, split_kind
from src.errors import DataError, exit_on_data_error
from src.paths import cell_dir
from src.study.bodyparts import ConditionZero, plan_condition_zero
from src.study.needs import is_placeholder

PAPER_CONDITIONS = (0, 1, 2, 6, 10, 15, 20)
AUTO = "auto"
RESOLVER = "study_conditions"
FOLDS_RESOLVER = "study_folds"


# ----------------------------------------------------------------------------- frames per video


def train_frames_available(n_candidates: int, max_train: int, test_fraction: float) -> int:
    """Train frames a development video with ``n_candidates`` candidate frames gives a condition.

    As :func:`src.data.frames.select_frames` picks them: ``max_train`` + the test frames are
    ranked (at most the candidates), the test frames are drawn from those (leaving at least one),
    the rest are train frames. Fewer than 2 candidates: none (``src.prepare`` refuses the video).
    """
    n_test = n_test_frames_per_video(max_train, test_fraction)
    ranked = min(max_train + n_test, n_candidates)
    if ranked < 2:
        return 0
    return ranked - min(n_test, ranked - 1)


def development_train_frames(
    videos: pd.DataFrame,
    split_cfg,
    frames_cfg,
    candidates: Callable[[str], Sequence[int]],
) -> dict[str, int]:
    """{development video: train frames available}, split as ``src.prepare`` splits.

    ``videos``: one row per video (participant, video, session); ``candidates(video)``: its
    candidate frame numbers. Raises the split's own DataError (e.g. too few participants).
    """
    splits = [split_dataset(videos, split_cfg, candidates)]  # checks split.fold too
    if split_kind(split_cfg) == KFOLD:  # a condition runs in every fold: count every fold's videos
        folds, seed = int(split_cfg.folds), int(split_cfg.seed)
        splits = [split_fold(videos, folds, fold, seed) for fold in range(1, folds + 1)]
    max_train = int(frames_cfg.max_train_frames_per_video)
    test_fraction = float(frames_cfg.test_fraction)
    pool_cap = int(frames_cfg.get("max_frames_for_clustering", 10**9))
    available = {}
    for split in splits:
        for video in split.drop_duplicates("video")["video"]:
            frames = np.asarray(candidates(video))
            n_development = int((frame_sets(split, video, frames) == DEVELOPMENT).sum())
            if n_development:
                available[video] = train_frames_available(
                    min(n_development, pool_cap), max_train, test_fraction
                )
    return available


@dataclass(frozen=True)
class TrainFrames:
    """Train frames each development video can give a condition, and where they were counted."""

    per_video: dict[str, int]
    source: str  # a folder, for messages

    @property
    def most(self) -> int:
        """The largest condition every development video serves."""
        return min(self.per_video.values()) if self.per_video else 0

    def describe(self, fewest: int = 3) -> str:
        counts = sorted(self.per_video.items(), key=lambda item: (item[1], item[0]))
        values = [n for _, n in counts]
        if not values:
            return f"no development video in {self.source}"
        shown = ", ".join(f"{video} ({n})" for video, n in counts[:fewest])
        return (
            f"min {min(values)}, median {statistics.median(values):g}, max {max(values)} over "
            f"{len(values)} development video(s) of {self.source}; fewest: {shown}"
        )


def auto_conditions(most: int) -> list[int]:
    """The paper's conditions up to ``most``, and ``most`` itself."""
    conditions = [n for n in PAPER_CONDITIONS if n <= most]
    return conditions if most in conditions else [*conditions, most]


# ----------------------------------------------------------------------------- the study's data


@dataclass
class StudyData:
    """The data set as far as planning needs it: loaded, or read from conf/synthetic when it is
    the synthetic clinical cohort not generated yet (the cohort stage makes it)."""

    dataset: Dataset | None  # None: the cohort is not generated yet
    bodyparts: list[str]
    train_frames: TrainFrames
    note: str | None = None  # how it was read, when not loaded


_CACHE: dict[str, StudyData] = {}


def _key(cfg: DictConfig, *keys: str) -> str:
    values = {}
    for key in keys:
        value = OmegaConf.select(cfg, key)
        values[key] = (
            OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        )
    return json.dumps(values, sort_keys=True, default=str)


def generator_folder(cfg: DictConfig) -> Path:
    """Where ``src.cohort`` writes the synthetic clinical cohort."""
    return Path(str(cfg.synthetic.output_dir)) / str(cfg.synthetic.clinical.name)


def _not_generated_yet(cfg: DictConfig) -> bool:
    root = Path(str(cfg.data.root))
    return (
        cfg.data.kind == "synthetic"
        and not (root / "dataset.yaml").is_file()
        and root.resolve() == generator_folder(cfg).resolve()
        and (not root.exists() or is_placeholder(root) or not any(root.iterdir()))
    )


def study_data(cfg: DictConfig) -> StudyData:
    """Load the data set of ``cfg`` and count its train frames per development video (cached)."""
    key = _key(cfg, "data", "split", "frames", "synthetic.clinical", "synthetic.output_dir")
    if key not in _CACHE:
        _CACHE[key] = _study_data(cfg)
    return _CACHE[key]


def _study_data(cfg: DictConfig) -> StudyData:
    if _not_generated_yet(cfg):
        cohort = cfg.synthetic.clinical
        from src.synthetic.body import BODYPARTS  # the generator's points (numpy only)

        digits = max(2, len(str(int(cohort.n_participants))))
        videos = pd.DataFrame(
            [
                {
                    "participant": f"P{p:0{digits}d}",
                    "video": f"P{p:0{digits}d}_S{s}",
                    "session": f"S{s}",
                }
                for p in range(1, int(cohort.n_participants) + 1)
                for s in range(1, int(cohort.videos_per_participant) + 1)
            ]
        )
        every_frame = np.arange(int(cohort.frames_per_video))
        per_video = development_train_frames(videos, cfg.split, cfg.frames, lambda _: every_frame)
        source = f"{cfg.data.root} (to be generated from conf/synthetic)"
        note = f"{cfg.data.root} is not generated yet: counted from conf/synthetic"
        return StudyData(None, list(BODYPARTS), TrainFrames(per_video, source), note)
    dataset = load_dataset(cfg.data)
    per_video = development_train_frames(
        dataset.videos, cfg.split, cfg.frames, lambda video: candidate_frames(dataset, video)
    )
    return StudyData(dataset, list(dataset.bodyparts), TrainFrames(per_video, str(dataset.root)))


def prepared_train_frames(cfg: DictConfig) -> TrainFrames | None:
    """Train frames per development video of the prepared folder of ``cfg.data`` (what
    ``src.train`` trains on), or None when it is missing or was prepared from other data."""
    folder = Path(str(cfg.paths.prepared_dir)) / str(cfg.data.name)
    metas = [folder / "dataset.yaml"]
    if split_kind(cfg.split) == KFOLD:  # every fold's development videos
        metas = [
            folder / f"fold_{fold}" / "dataset.yaml" for fold in range(1, int(cfg.split.folds) + 1)
        ]
    per_video = {}
    for meta in metas:
        if not meta.is_file():
            return None
        try:
            facts = yaml.safe_load(meta.read_text(encoding="utf-8"))
            if str(facts["source"]) != str(Path(str(cfg.data.root))):
                return None
            cap = int(cfg.frames.max_train_frames_per_video)
            per_video |= facts_train_frames(facts, cap, str(meta)).per_video
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
            return None
    return TrainFrames(per_video, str(metas[0] if len(metas) == 1 else folder))


def facts_train_frames(facts: dict, cap: int, source: str) -> TrainFrames:
    """Train frames per development video in a prepared folder's dataset.yaml (``facts``)."""
    return TrainFrames(
        {
            str(video): min(int(roles["train"]["used"]), cap)
            for video, roles in (facts.get("frames_per_video") or {}).items()
            if "train" in roles
        },
        source,
    )


def check_condition(n_frames: int, facts: dict, source: str) -> None:
    """A condition (``labelled_frames``) that every development video of a prepared folder serves:
    a larger one would give some videos fewer frames than others, and be no condition of its own."""
    counted = facts_train_frames(facts, 10**9, source)  # "used" is capped where it was prepared
    if counted.per_video and n_frames > counted.most:
        raise DataError(
            f"labelled_frames={n_frames} asks for more train frames than every development video "
            f"has: {counted.describe()}; choose labelled_frames <= {counted.most}, or sweep the "
            f"conditions the data serves: pipeline.conditions=auto ({auto_conditions(counted.most)})."
        )


# ----------------------------------------------------------------------------- conditions


def _as_conditions(value) -> list[int]:
    if isinstance(value, (ListConfig, DictConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)
        or len(set(value)) != len(value)
    ):
        raise DataError(
            f"pipeline.conditions={value!r} is not allowed: it must be `auto` or a list of "
            "distinct integers >= 0 (labelled frames per development video), e.g. [0, 1, 2, 6]; "
            "fix it in conf/config.yaml or with `python -m src.params pipeline.conditions=auto`."
        )
    return list(value)


def resolve_conditions(cfg: DictConfig, value=None, *, prepared: bool = False) -> list[int]:
    """``pipeline.conditions`` (or ``value``) as the list of conditions the study runs.

    ``auto``: what the data serves; a list: checked against it. ``prepared``: count in the
    prepared folder when there is one (what a sweep trains on), else in the data.
    """
    value = cfg.pipeline.conditions if value is None else value
    counted = (prepared_train_frames(cfg) if prepared else None) or study_data(cfg).train_frames
    if isinstance(value, str) and value.strip() == AUTO:
        return auto_conditions(counted.most)
    conditions = _as_conditions(value)
    if max(conditions) > counted.most:
        max_train = int(cfg.frames.max_train_frames_per_video)
        n_test = n_test_frames_per_video(max_train, float(cfg.frames.test_fraction))
        held_out = " and its held-out block" if cfg.split.get("kind") == "frames" else ""
        raise DataError(
            f"pipeline.conditions={conditions} asks for {max(conditions)} labelled frames per "
            f"development video, but not every development video has that many train frames "
            f"(its labelled frames less {n_test} test frame(s){held_out}, at most "
            f"frames.max_train_frames_per_video={max_train}): {counted.describe()}; set "
            f"pipeline.conditions=auto (here {auto_conditions(counted.most)}), or a list of "
            f"values <= {counted.most}, e.g. `python -m src.params pipeline.conditions=auto`."
        )
    return conditions


def resolve_auto(cfg: DictConfig) -> DictConfig:
    """``cfg`` with ``pipeline.conditions: auto`` replaced by the list the data serves and
    ``pipeline.folds`` by the folds the study runs (in place); an explicit list of conditions is
    left as it is (:func:`src.study.check.check_study` checks it)."""
    value = OmegaConf.select(cfg, "pipeline.conditions")
    if isinstance(value, str) and value.strip() == AUTO:
        with _writable(cfg):
            cfg.pipeline.conditions = resolve_conditions(cfg)
    if OmegaConf.select(cfg, "pipeline.folds", default=None) is not None:
        with _writable(cfg):
            cfg.pipeline.folds = resolve_folds(cfg)
    return cfg


def resolve_folds(cfg: DictConfig, value=None) -> list[int]:
    """``pipeline.folds`` (or ``value``) as the folds the study runs: none for a single split;
    with ``split=kfold``, ``auto`` is every fold (1 .. split.folds), a list is checked."""
    value = OmegaConf.select(cfg, "pipeline.folds", default=AUTO) if value is None else value
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    auto = isinstance(value, str) and value.strip() == AUTO
    if split_kind(cfg.split) != KFOLD:
        if auto or value in ([], None):
            return []
        raise DataError(
            f"pipeline.folds={value!r} needs a cross-validation: add split=kfold, or set "
            "pipeline.folds=auto for the single split (conf/config.yaml)."
        )
    folds = cfg.split.folds
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise DataError(
            f"split.folds={folds!r} is not allowed: cross-validation needs an integer >= 2 folds "
            "(conf/split/kfold.yaml); for one split use split=participants."
        )
    if auto:
        return list(range(1, folds + 1))
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(
            isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= folds for k in value
        )
        or len(set(value)) != len(value)
    ):
        raise DataError(
            f"pipeline.folds={value!r} is not allowed with split.folds={folds}: it must be `auto` "
            f"or a list of distinct folds from 1 to {folds}, e.g. [1, 2]; fix it with "
            "`python -m src.params pipeline.folds=auto`."
        )
    return sorted(value)


def pipeline_cells(conditions: Sequence[int], folds: Sequence[int]) -> dict[str, dict]:
    """The cells of dvc.yaml's train stages (its ``foreach``), by the stage name's suffix: one per
    condition (``train@6``), or under ``split=kfold`` one per fold and condition (``train@fold2-6``);
    the evaluate stage evaluates them all. ``overrides``: the stage's Hydra overrides; ``dir``: its
    folder under ``pipeline.dir``'s models/ and evaluation/ (:func:`src.paths.cell_dir`)."""
    if not folds:
        return {
            str(n): {"overrides": f"labelled_frames={n}", "dir": cell_dir(n)} for n in conditions
        }
    return {
        f"fold{k}-{n}": {
            "overrides": f"labelled_frames={n} split.fold={k}",
            "dir": cell_dir(n, k),
        }
        for k in folds
        for n in conditions
    }


class _writable:
    def __init__(self, cfg):
        self.cfg, self.flag = cfg, None

    def __enter__(self):
        self.flag = OmegaConf.is_readonly(self.cfg)
        OmegaConf.set_readonly(self.cfg, False)

    def __exit__(self, *exc):
        OmegaConf.set_readonly(self.cfg, self.flag)


def _one_line(resolve: Callable[[], list], one_line_errors: bool) -> str:
    """A resolver's value as Hydra's sweep "a,b,c"; its DataError as our one line (exit status 2)
    when ``one_line_errors``, else raised to Hydra."""
    try:
        return ",".join(str(value) for value in resolve())
    except DataError:
        if not one_line_errors:
            raise
        with exit_on_data_error():
            raise


def register_resolvers(one_line_errors: bool = False) -> None:
    """The resolvers ``study_conditions`` (conf/sweep/frames.yaml: pipeline.conditions as Hydra's
    sweep "0,1,2") and ``study_folds`` (conf/split/kfold.yaml: pipeline.folds as "1,2").

    Registered when this module is imported. An entry point run as a command (``python -m
    src.train``) registers them again with ``one_line_errors``: a DataError while Hydra sets up a
    sweep is then shown as our one line (exit status 2) rather than Hydra's traceback of its own
    set-up code.
    """

    def sweep_conditions(conditions, _root_) -> str:
        return _one_line(
            lambda: resolve_conditions(_root_, conditions, prepared=True), one_line_errors
        )

    def sweep_folds(folds, n_folds, _root_) -> str:
        return _one_line(lambda: resolve_folds(_root_, folds), one_line_errors)

    OmegaConf.register_new_resolver(RESOLVER, sweep_conditions, replace=True)
    OmegaConf.register_new_resolver(FOLDS_RESOLVER, sweep_folds, replace=True)


if not OmegaConf.has_resolver(RESOLVER):
    register_resolvers()


# ----------------------------------------------------------------------------- condition 0


def initial_model_bodyparts(cfg: DictConfig) -> tuple[list[str] | None, str]:
    """The bodyparts the initial model predicts, known before any pre-training, and its name for
    messages; None when the initial weights have no trained pose heads (random, hub)."""
    kind, name = cfg.weights.kind, initial_model_name(cfg)
    if kind == "pretrained":
        pre = cfg.pretraining.data
        meta = Path(str(pre.root)) / "dataset.yaml"
        if pre.kind == "synthetic" and meta.is_file():
            return list(yaml.safe_load(meta.read_text(encoding="utf-8"))["bodyparts"]), name
        if pre.kind == "synthetic":
            from src.synthetic.body import BODYPARTS  # what the generator will write

            return list(BODYPARTS), name
        return list(load_dataset(pre).bodyparts), name
    if kind == "snapshot":
        # read from the snapshot's files by its engine, without the engine's libraries
        return engine.for_config(cfg).snapshot_bodyparts(Path(str(cfg.weights.path))), name
    return None, name


def initial_model_name(cfg: DictConfig) -> str:
    """The initial model, named for messages."""
    kind = cfg.weights.kind
    if kind == "pretrained":
        return f"the initial model (weights.kind=pretrained, pre-trained on {cfg.pretraining.data.name})"
    if kind == "snapshot":
        return f"the initial model (weights.kind=snapshot, {Path(str(cfg.weights.path)).name})"
    return f"weights.kind={kind}"


def no_heads_reason(kind: str) -> str:
    start = {"random": "random weights", "hub": "DeepLabCut's ImageNet backbone"}.get(kind, kind)
    return (
        f"weights.kind={kind} starts from {start}, with no trained pose heads, so there is no "
        "model to evaluate without training; condition 0 needs weights=healthy_adults or "
        "weights=snapshot"
    )


def condition_zero(
    cfg: DictConfig, data_bodyparts: Sequence[str], model_bodyparts=None
) -> ConditionZero:
    """Condition 0's plan for ``cfg``: what the initial model can be evaluated on, or why not.

    ``model_bodyparts``: the initial model's, when it is at hand; else known from the config.
    """
    name = initial_model_name(cfg)
    if model_bodyparts is None:
        model_bodyparts, name = initial_model_bodyparts(cfg)
    return plan_condition_zero(
        data_bodyparts,
        model_bodyparts,
        bodypart_map(cfg),
        name,
        no_heads_reason(str(cfg.weights.kind)),
    )


def bodypart_map(cfg: DictConfig) -> dict | None:
    value = OmegaConf.select(cfg, "weights.bodypart_map", default=None)
    if value is None:
        return None
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if not isinstance(value, dict):
        raise DataError(
            f"weights.bodypart_map={value!r} is not allowed: it must be a mapping {{data bodypart: "
            "model bodypart}, e.g. `'weights.bodypart_map={Hand: right_wrist}'`."
        )
    return {str(k): (None if v is None else str(v)) for k, v in value.items()}
