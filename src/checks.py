"""Checks of configuration values before a stage does any work.

Hydra already refuses unknown keys and unknown group options (in one line: src/cli.py); it does not
know which values make sense. A bad value (``split.generalisation_fraction=1.5``,
``evaluation.pcutoffs=[80]``) would otherwise fail deep inside OpenCV, scikit-learn or DeepLabCut, or
worse, run with a meaningless result. Each stage checks the sections it reads:
``check_config(cfg, "data", "split", "frames")``; ``python -m src.params`` checks them all
(``SECTIONS``) before it writes the study. The message names the key, the value and what is allowed,
where the value came from (the command line, conf/study/current.yaml, params.yaml or conf/) and the
conf/ file that documents the key, and the stage exits with status 2.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from src.errors import ConfigError
from src.study.config import STUDY_FILE, read_study

_ABSENT = object()


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _int_at_least(low: int):
    return (lambda v: _integer(v) and v >= low), f"an integer >= {low}"


def _between(low: float, high: float, open_: bool = False):
    if open_:
        return (
            lambda v: _number(v) and low < v < high
        ), f"a number strictly between {low:g} and {high:g}"
    return (lambda v: _number(v) and low <= v <= high), f"a number from {low:g} to {high:g}"


def _one_of(*choices: str):
    return (lambda v: v in choices), " | ".join(choices)


_POSITIVE = (lambda v: _number(v) and v > 0), "a number > 0"

# A registered version (src/analysis/model_choice.py reads it) or a run id as MLflow allows one.
_MODEL_REFERENCE = re.compile(r"models:/[^@/\s]+(@[^@/\s]+|/[0-9]+)|[a-zA-Z0-9][\w-]{0,255}")


_NON_NEGATIVE = (lambda v: _number(v) and v >= 0), "a number >= 0"


_OPTIONAL_POSITIVE = (lambda v: v is None or (_number(v) and v > 0)), "null or a number > 0"


_PROBABILITIES = (
    (lambda v: isinstance(v, list) and len(v) > 0 and all(_number(c) and 0 <= c <= 1 for c in v)),
    "a non-empty list of likelihood cutoffs from 0 to 1, e.g. [0.8]",
)


# key -> (test, what is allowed). A key a config does not have (e.g. data.cm_per_px of the synthetic data
# set) is not checked; the conf/ file named in the message comments every key.
RULES: dict[str, tuple] = {
    "seed": _int_at_least(0),
    "labelled_frames": _int_at_least(0),
    "data.kind": _one_of("synthetic", "dlc_project", "lightning_pose", "videos"),
    "data.cm_per_px": _OPTIONAL_POSITIVE,
    "split.kind": _one_of("participants", "frames", "kfold"),
    "split.folds": _int_at_least(2),
    "split.fold": _int_at_least(1),
    "split.generalisation_fraction": _between(0, 1, open_=True),
    "split.block": _one_of("contiguous"),
    "split.generalisation_frames": _one_of("all", "ranked"),
    "split.seed": _int_at_least(0),
    "frames.max_train_frames_per_video": _int_at_least(1),
    "frames.test_fraction": _between(0, 1, open_=True),
    "frames.generalisation_frames_per_video": _int_at_least(1),
    "frames.label_noise_px": _NON_NEGATIVE,
    "frames.max_frames_for_clustering": _int_at_least(1),
    "frames.features.width_px": _int_at_least(4),
    "frames.features.height_px": _int_at_least(4),
    "frames.seed": _int_at_least(0),
    "training.iterations": _int_at_least(1),
    "training.batch_size": _int_at_least(1),
    "training.learning_rate": _POSITIVE,
    "training.evaluations": _int_at_least(1),
    "training.threads": _int_at_least(0),
    "training.device": _one_of("cpu", "cuda", "mps", "auto"),
    "evaluation.pcutoffs": _PROBABILITIES,
    "evaluation.snapshot": _one_of("last", "best"),
    "evaluation.plot_frames": _int_at_least(0),
    "evaluation.bootstrap.resamples": _int_at_least(100),
    "evaluation.bootstrap.confidence": _between(0, 1, open_=True),
    "evaluation.bootstrap.seed": _int_at_least(0),
    "evaluation.interval.method": _one_of("t_interval", "percentile_bootstrap"),
    "evaluation.interval.min_participants": _int_at_least(2),
    "evaluation.pck.reference_length_cm": _OPTIONAL_POSITIVE,
    "evaluation.pck.fractions": (
        lambda v: isinstance(v, list) and all(_number(f) and 0 < f <= 10 for f in v),
        "a list of fractions of the reference length, each > 0 and <= 10, e.g. [0.1, 0.2]",
    ),
    "report.frames_to_label.margin_pct": _POSITIVE,
    "report.pcutoff": _between(0, 1),
    "report.trust_fixed_px": _POSITIVE,
    # src/tracking/registry.py CHOICES (not imported: it imports MLflow)
    "report.register": _one_of("best_generalisation", "frames_to_label", "none"),
    # read by the registry after training (src/tracking/registry.py checks its content)
    "report.trust_model": (
        lambda v: v is None or (isinstance(v, str) and Path(v).is_file()),
        "null or an existing trust score file (python -m benchmarks.trust writes "
        "benchmarks/results/trust_model.json)",
    ),
    "export.model": (
        lambda v: isinstance(v, str) and bool(_MODEL_REFERENCE.fullmatch(v)),
        "models:/<name>@<alias>, models:/<name>/<version> or an MLflow run id",
    ),
    "export.snapshot": _one_of("best", "last"),
    "export.dir": (
        lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
        "null or the folder to write",
    ),
    "synthetic.workers": _int_at_least(0),
}


for _cohort in ("clinical", "healthy_adults"):
    RULES |= {
        f"synthetic.{_cohort}.n_participants": _int_at_least(1),
        f"synthetic.{_cohort}.videos_per_participant": _int_at_least(1),
        f"synthetic.{_cohort}.frames_per_video": _int_at_least(1),
        f"synthetic.{_cohort}.fps": _POSITIVE,
        f"synthetic.{_cohort}.width_px": _int_at_least(16),
        f"synthetic.{_cohort}.height_px": _int_at_least(16),
        f"synthetic.{_cohort}.cm_per_px": _POSITIVE,
        f"synthetic.{_cohort}.render_scale": _int_at_least(1),
        f"synthetic.{_cohort}.subframes": _int_at_least(1),
        f"synthetic.{_cohort}.toy_prob": _between(0, 1),
        f"synthetic.{_cohort}.caregiver_prob": _between(0, 1),
        f"synthetic.{_cohort}.noise_std": _NON_NEGATIVE,
    }


# Every section the rules check: what `python -m src.params` checks before it writes the study.
SECTIONS = tuple(dict.fromkeys(key.split(".")[0] for key in RULES))


@dataclass(frozen=True)
class Sources:
    """Where the values of a composed configuration came from, for the fix in a message: the command
    line's overrides, params.yaml (the DVC stages compose it), the study file, or conf/."""

    overrides: tuple[str, ...] = ()
    choices: Mapping[str, str] = field(
        default_factory=dict
    )  # group -> option (hydra.runtime.choices)
    params_file: bool = False  # composed from params.yaml (--config-name params)
    study: Mapping | None = None  # the study file's values; None: read conf/study/current.yaml

    @classmethod
    def of_this_run(cls) -> Sources:
        """The sources of the running Hydra app's configuration (none known outside one)."""
        if not HydraConfig.initialized():
            return cls()
        hydra = HydraConfig.get()
        return cls(
            tuple(hydra.overrides.task),
            {k: v for k, v in hydra.runtime.choices.items() if v is not None},
            hydra.job.config_name == "params",
        )

    def documented_in(self, key: str) -> str:
        """The conf/ file that comments ``key``: its group's chosen option, or conf/config.yaml."""
        from src.cli import conf_file  # src.cli imports Hydra's internals: only when a value fails

        return conf_file(key, dict(self.choices))

    def origin(self, key: str) -> tuple[str, str]:
        """(where the value of ``key`` came from, how to change it there)."""
        for override in self.overrides:
            name = override.split("=", 1)[0].lstrip("+~")
            if key == name or key.startswith(f"{name}."):
                return f"the command line ({override})", "give another value there"
        change = f"python -m src.params {key}=<value> changes it in the study"
        if self.params_file:
            return "params.yaml (python -m src.params writes it)", change
        study = read_study(STUDY_FILE)[1] if self.study is None else self.study
        if _holds(study, key):
            return str(STUDY_FILE.relative_to(STUDY_FILE.parents[2])), change
        return self.documented_in(key), "fix it there, or override it on the command line"


def _holds(values: Mapping, key: str) -> bool:
    *parents, leaf = key.split(".")
    for part in parents:
        values = values.get(part) if isinstance(values, Mapping) else None
    return isinstance(values, Mapping) and leaf in values


def check_config(cfg, *sections: str, sources: Sources | None = None) -> None:
    """Raise ConfigError for the first value of ``sections`` (top-level keys, e.g. "frames") that is not allowed.

    The message says where the value came from and which conf/ file documents the key (``sources``;
    default: the running Hydra app's). Also turns a required value left at ``???`` (e.g. ``data.root``
    of data=dlc_project) into a clear error.
    """
    for key, (test, allowed) in RULES.items():
        if key.split(".")[0] not in sections:
            continue
        try:
            value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
        except MissingMandatoryValue:
            raise ConfigError(
                f"{key} is required but not set (???); give it on the command line, {key}=..."
            ) from None
        if value is _ABSENT:
            continue
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
        if not test(value):
            sources = sources or Sources.of_this_run()
            origin, fix = sources.origin(key)
            raise ConfigError(
                f"{key}={value!r} is not allowed: it must be {allowed}. It comes from {origin}: "
                f"{fix}; {sources.documented_in(key)} documents {key}."
            )
    for section in sections:  # required values (???) of the sections, e.g. data.root
        node = OmegaConf.select(cfg, section, default=None)
        if OmegaConf.is_dict(node):
            for name in node:
                if OmegaConf.is_missing(node, name):
                    raise ConfigError(
                        f"{section}.{name} is required but not set (???); give it on the command line, "
                        f"e.g. {section}.{name}=/path/to/your/data."
                    )
