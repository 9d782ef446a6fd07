"""Choose the study every command acts on: your data set and the settings that differ from conf/. It
checks every value and the data (as python -m src.check does) before it writes the study,
conf/study/current.yaml, then writes params.yaml, the configuration the DVC pipeline (dvc repro) reads.
Another data set (data=<kind>, or another data.root) starts a new study, and the one before is kept as
conf/study/previous.yaml; other overrides add to the study.

Common overrides:
    data=dlc_project|lightning_pose|videos|synthetic   the data set's kind (conf/data/<kind>.yaml)
    data.root=<folder> data.name=<name>               where it is; its name in MLflow and reports/
    split=participants|frames|kfold                   how development and held-out data are split
    model=resnet_18|resnet_50|resnet_101              the pose network (conf/model/)
    training=cpu_demo|paper training.device=cuda      the training profile; train on a GPU
    'pipeline.conditions=[0,2,6]'                     the labelled-frames conditions (auto: what the data serves)

Examples:
    python -m src.params                       # conf/ and the current study as they are (make demo)
    python -m src.params data=dlc_project data.root=raw/MyProject data.name=my_project
    python -m src.params model=resnet_50       # one more choice, kept with the study's others
    python -m src.params --demo                # back to the embedded synthetic cohort

Overrides are kept in ``conf/study/current.yaml`` (git-ignored), which ``conf/config.yaml`` composes last, so
``src.train``, ``+sweep=frames``, ``src.report``, ``src.analyze`` and ``dvc repro`` all act on the same study,
and config-group overrides on their command lines still work. Each stage of dvc.yaml runs
``python -m src.<stage> --config-dir . --config-name params``, so it reads exactly params.yaml, and each
stage's ``params:`` lists the keys it reads: changing one re-runs only the stages that read it. Edit conf/
(every key is commented there) or the study, not params.yaml, which this rewrites.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from src.checks import SECTIONS, Sources, check_config
from src.cli import config_groups, explained, help_text
from src.errors import ConfigError, exit_on_data_error
from src.files import atomic_file
from src.study.check import check_study
from src.study.config import (
    STUDY_FILE,
    keep_previous,
    override_key,
    study_config,
    study_overrides,
    write_study,
)
from src.study.estimate import study_time_line
from src.study.plan import pipeline_cells, resolve_auto

REPO = Path(__file__).resolve().parents[1]
HEADER = """\
# Written by `python -m src.params` from conf/ (Hydra composition, interpolations resolved); do not edit:
# edit conf/, then `make demo` (or `python -m src.params <overrides>` and `dvc repro`).
# The stages of dvc.yaml read this file (python -m src.<stage> --config-dir . --config-name params).
"""
# What Hydra needs to run a stage from this file as it runs from conf/config.yaml: no log files or
# output folders in the repository (composition leaves the `hydra:` node out, so it is added back here).
HYDRA_SETTINGS = {
    "defaults": [{"override hydra/job_logging": "stdout"}, "_self_"],
    "hydra": {"run": {"dir": "."}, "output_subdir": None},
}


def composed(overrides: list[str] = (), config_dir: Path = REPO / "conf") -> dict:
    """conf/config.yaml composed with ``overrides``, every interpolation resolved, as plain data;
    ``pipeline.conditions: auto`` resolved into the list the data serves, ``pipeline.folds`` into
    the folds of split=kfold ([] for a single split), and ``pipeline.cells``: the cells of
    dvc.yaml's train stages (the evaluate stage evaluates them all), one per condition (x fold)."""
    study = OmegaConf.to_container(resolve_auto(configuration(overrides, config_dir)), resolve=True)
    pipeline = study["pipeline"]
    pipeline["cells"] = pipeline_cells(pipeline["conditions"], pipeline.get("folds") or [])
    return study


def configuration(overrides: list[str] = (), config_dir: Path = REPO / "conf") -> DictConfig:
    """conf/config.yaml composed with ``overrides``, as Hydra composes it for every command."""
    return configuration_and_choices(overrides, config_dir)[0]


def configuration_and_choices(
    overrides: list[str] = (), config_dir: Path = REPO / "conf"
) -> tuple[DictConfig, dict[str, str]]:
    """:func:`configuration`, and the option each config group chose (data: dlc_project, ...); an
    override that does not compose is a ConfigError of one line (src.cli.explained)."""
    with (
        explained(list(overrides)),
        initialize_config_dir(config_dir=str(config_dir), version_base="1.3"),
    ):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    choices = {k: v for k, v in cfg.hydra.runtime.choices.items() if v is not None}
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def write_params(path: Path, overrides: list[str] = ()) -> bool:
    """Write the composed configuration to ``path``; returns whether its content changed."""
    text = HEADER + yaml.safe_dump(
        HYDRA_SETTINGS | composed(overrides),
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=None,
    )
    path = Path(path)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    with atomic_file(path) as staging:  # DVC never reads a half-written params.yaml
        staging.write_text(text, encoding="utf-8")
    return True


def main() -> None:
    path = REPO / "params.yaml"
    # --no-probe: no timing probe (nor under pytest); the estimate then uses the cache or says unknown
    overrides = [o for o in sys.argv[1:] if o != "--no-probe"]
    probe = "--no-probe" not in sys.argv[1:] and "PYTEST_CURRENT_TEST" not in os.environ
    if "--help" in overrides or "-h" in overrides:
        try:
            print(usage(), flush=True)
        except BrokenPipeError:  # `--help | head`: the reader has stopped; no traceback
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    with exit_on_data_error():
        readable(overrides)
        if overrides == ["--demo"]:
            _leave_study()
        elif overrides:
            print(choose_study(overrides), flush=True)
        changed = write_params(path)
        study = composed()
    where = (
        STUDY_FILE.relative_to(REPO) if STUDY_FILE.is_file() else "the embedded demo, no study file"
    )
    print(
        f"{path.name}: {'written' if changed else 'unchanged'}; data set {study['data']['name']} "
        f"({study['data']['kind']}, {study['data']['root']}) from {where}; conditions "
        f"{study['pipeline']['conditions']}"
        + (f"; folds {study['pipeline']['folds']}" if study["pipeline"].get("folds") else ""),
        flush=True,
    )
    print(study_time_line(study, probe_now=probe), flush=True)  # docs/progress.md


def readable(overrides: list[str]) -> None:
    """Raise a ConfigError of one line for an option src.params does not take (``--bogus``,
    ``--demo`` with overrides) or an override Hydra cannot read (``foo``, ``'x=[1'``)."""
    flags = [o for o in overrides if o.startswith("-")]
    unknown = [o for o in flags if o != "--demo"]
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: not an option of python -m src.params; it takes --demo, --no-probe, "
            "--help or overrides (key=value, group=option); see --help"
        )
    if flags and len(overrides) > 1:
        raise ConfigError(
            "--demo: goes back to the embedded cohort and takes no overrides; run it alone, then "
            "python -m src.params <overrides>"
        )
    if not flags:
        with explained(overrides):
            OverridesParser.create().parse_overrides(overrides)


def usage() -> str:
    """``python -m src.params --help``: what it does, the common overrides, examples, the groups."""
    return (
        "usage: python -m src.params [--demo | group=option ... key=value ...] [--no-probe]\n\n"
        f"{help_text(__doc__)}\n\n"
        "Config groups (group=option; each option is a file conf/<group>/<option>.yaml):\n"
        f"{config_groups()}\n\n"
        "Any key: key=value (every key is commented in conf/config.yaml and conf/<group>/).\n"
        "Each command's own help: python -m src.<stage> --help (stages: check, cohort, prepare, "
        "pretrain, train, evaluate, report, analyze, export, labelling, train_round; and "
        "python -m src.label_round, python -m src.server)."
    )


def choose_study(overrides: list[str]) -> str:
    """Check the study ``overrides`` make, then record it; returns the line saying what it holds.

    Another data set than the current study's starts a new study of these overrides alone (the one
    before is kept as previous.yaml); other overrides add to the current study. Nothing is written
    when a value, the data or the study does not pass the checks of ``python -m src.check``.
    """
    before = study_overrides()
    new_data_set = _new_data_set(overrides)
    if new_data_set is None:
        recorded, composed_from = overrides, overrides
    else:  # the kind of data carries over when only data.root changes
        carried = [o for o in before if override_key(o) == "data"]
        if any(override_key(o) == "data" for o in overrides):
            carried = []
        recorded = carried + overrides
        composed_from = ["~study", *recorded]  # the new study alone, not on top of the current one
    # a typo, an unknown option, a value out of range or a study its data cannot run fails here,
    # before the study file is written: check_study loads the data and checks it in seconds
    cfg, choices = configuration_and_choices(composed_from)
    given = Sources(tuple(overrides), choices, study={} if new_data_set else None)
    check_config(cfg, *SECTIONS, sources=given)
    check_study(cfg)

    kept = keep_previous() if new_data_set is not None and STUDY_FILE.is_file() else None
    written = write_study(recorded).relative_to(REPO)
    after = study_overrides()
    line = f"study: {written} now holds {' '.join(after)}"
    if new_data_set is None:
        return line
    line += f" (a new data set: {new_data_set}"
    if kept is not None:
        previous, moved = kept
        keys = {override_key(o) for o in after}
        dropped = [o for o in before if override_key(o) not in keys]
        line += (
            f"; the study before is kept as {previous.relative_to(REPO)}"
            + (f" (the earlier one is now {moved.relative_to(REPO)})" if moved else "")
            + f"; dropped from it: {' '.join(dropped) or 'nothing'}"
        )
    return line + ")"


def _new_data_set(overrides: list[str]) -> str | None:
    """What in ``overrides`` names another data set than the current study's: another data kind
    (data=...) or another data.root; None when they name the same one or none."""
    defaults, values = study_config(overrides)
    kind = next((d["override /data"] for d in defaults if "override /data" in d), None)
    root = values.get("data", {}).get("root") if isinstance(values.get("data"), dict) else None
    if kind is None and root is None:
        return None
    cfg, choices = configuration_and_choices()
    if kind is not None and kind != choices.get("data"):
        return f"data={kind} after data={choices.get('data')}"
    if root is not None:
        old = None if OmegaConf.is_missing(cfg.data, "root") else str(cfg.data.root)
        if old is None or _absolute(root) != _absolute(old):
            return f"data.root={root} after data.root={old}"
    return None


def _absolute(path) -> str:
    return os.path.abspath(os.path.expanduser(str(path)))


def _leave_study() -> None:
    """Back to the embedded demo: the study file is kept aside as previous.yaml, not deleted."""
    if STUDY_FILE.is_file():
        kept, moved = keep_previous()
        print(
            f"study: moved to {kept.relative_to(REPO)} (bring it back by renaming it current.yaml"
            + (f"; the earlier one is now {moved.relative_to(REPO)}" if moved else "")
            + ")"
        )


if __name__ == "__main__":
    main()
