"""Choose the study (your data set and settings) and write params.yaml, what the DVC pipeline reads.

    python -m src.params                       # conf/ and the current study as they are (``make demo``)
    python -m src.params data=dlc_project data.root=raw/MyProject data.name=my_project
                                               # bring in a data set: every command acts on it from now on
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

import sys
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from src.errors import exit_on_data_error
from src.files import atomic_file
from src.study.check import check_study
from src.study.config import STUDY_FILE, write_study
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
    the folds of split=kfold ([] for a single split), and ``pipeline.cells``: the train and
    evaluate stages' cells of dvc.yaml, one per condition (x fold)."""
    study = OmegaConf.to_container(resolve_auto(configuration(overrides, config_dir)), resolve=True)
    pipeline = study["pipeline"]
    pipeline["cells"] = pipeline_cells(pipeline["conditions"], pipeline.get("folds") or [])
    return study


def configuration(overrides: list[str] = (), config_dir: Path = REPO / "conf") -> DictConfig:
    """conf/config.yaml composed with ``overrides``, as Hydra composes it for every command."""
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


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
    overrides = sys.argv[1:]
    with exit_on_data_error():
        if overrides == ["--demo"]:
            _leave_study()
        elif overrides:
            # a typo, an unknown option or a study its data cannot run fails here, before the study
            # file is written: check_study loads the data and checks the whole study in seconds
            check_study(configuration(overrides))
            print(
                f"study: {write_study(overrides).relative_to(REPO)} now holds {' '.join(overrides)}"
            )
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


def _leave_study() -> None:
    """Back to the embedded demo: the study file is kept aside as previous.yaml, not deleted."""
    if STUDY_FILE.is_file():
        kept = STUDY_FILE.replace(STUDY_FILE.with_name("previous.yaml"))
        print(
            f"study: moved to {kept.relative_to(REPO)} (bring it back by renaming it current.yaml)"
        )


if __name__ == "__main__":
    main()
