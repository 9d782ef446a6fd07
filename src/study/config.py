"""The study's own configuration: the overrides that name the user's data set, kept for every command.

``python -m src.params data=dlc_project data.root=/path/to/project data.name=my_project`` records its
overrides in ``conf/study/current.yaml`` (git-ignored: it holds local paths). ``conf/config.yaml`` includes
that file after everything else (``optional study: current``), so every command that composes ``conf/``
(``src.train``, ``+sweep=frames``, ``src.report``, ``src.analyze``, ...) and ``params.yaml`` (``dvc repro``)
act on the same data set, and config-group overrides on the command line keep working. Overrides add
to the study; another data set starts a new one, and :func:`keep_previous` keeps the one before as
``previous.yaml`` (an earlier ``previous.yaml`` as ``previous-<n>.yaml``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from src.errors import DataError
from src.files import atomic_file

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
STUDY_FILE = CONF_DIR / "study" / "current.yaml"
PREVIOUS_FILE = STUDY_FILE.with_name("previous.yaml")  # the study before (a new data set, --demo)
HEADER = """\
# @package _global_
# The current study, written by `python -m src.params <overrides>`; every command composes it after
# conf/config.yaml. Edit it, or run `python -m src.params <more overrides>` (they are added to these;
# another data set starts a new study and keeps this one as previous.yaml), or
# `python -m src.params --demo` to go back to the embedded synthetic cohort.
"""


def read_study(path: Path = STUDY_FILE) -> tuple[list, dict]:
    """The recorded study: (group choices of its defaults list, values); empty when there is none."""
    if not path.is_file():
        return [], {}
    content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    defaults = [d for d in content.pop("defaults", []) if d != "_self_"]
    return defaults, content


def write_study(overrides: list[str], path: Path = STUDY_FILE) -> Path:
    """Record ``overrides`` as the current study, on top of what it already holds (later values win)."""
    old_defaults, values = read_study(path)
    new_defaults, new_values = study_config(overrides)
    groups = {next(iter(d)) for d in new_defaults}
    defaults = [d for d in old_defaults if next(iter(d)) not in groups] + new_defaults
    content = {"defaults": [*defaults, "_self_"], **_deep_merge(values, new_values)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as staging:
        staging.write_text(HEADER + yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def study_overrides(path: Path = STUDY_FILE) -> list[str]:
    """The study file as the overrides that write it: group=option, then key=value (empty: no study)."""
    defaults, values = read_study(path)
    choices = [f"{k.removeprefix('override /')}={v}" for d in defaults for k, v in d.items()]
    return choices + [f"{key}={_shown(value)}" for key, value in _flat(values)]


def override_key(override: str) -> str:
    """The group or key an override sets: ``data`` of data=videos, ``data.root`` of data.root=/v."""
    return override.split("=", 1)[0].lstrip("+~")


def keep_previous(path: Path = STUDY_FILE) -> tuple[Path, Path | None]:
    """Move the study aside as previous.yaml; returns (previous.yaml, where an earlier, different
    previous.yaml went: previous-<n>.yaml, None when there was none), so nothing is lost unsaid."""
    previous = path.with_name(PREVIOUS_FILE.name)
    moved = None
    if previous.is_file() and previous.read_bytes() != path.read_bytes():
        n = 1
        while (moved := previous.with_name(f"previous-{n}.yaml")).exists():
            n += 1
        previous.replace(moved)
    path.replace(previous)
    return previous, moved


def study_config(overrides: list[str], conf_dir: Path = CONF_DIR) -> tuple[list, dict]:
    """Hydra overrides -> (defaults list of group choices, nested values) of a ``@package _global_`` file."""
    defaults, values = [], {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group
        if override.is_delete() or override.is_sweep_override():
            raise DataError(
                f"{override.input_line!r} cannot be kept in a study; give key=value overrides only."
            )
        if (conf_dir / key).is_dir():  # a config group, e.g. data=dlc_project
            defaults.append({f"override /{key}": override.value()})
            continue
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = override.value()
    return defaults, values


def _deep_merge(old: dict, new: dict) -> dict:
    merged = dict(old)
    for key, value in new.items():
        both = isinstance(value, dict) and isinstance(old.get(key), dict)
        merged[key] = _deep_merge(old[key], value) if both else value
    return merged


def _flat(values: dict, prefix: str = "") -> list[tuple[str, object]]:
    flat = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat += _flat(value, f"{prefix}{key}.")
        else:
            flat.append((f"{prefix}{key}", value))
    return flat


def _shown(value) -> str:
    """A value as an override writes it: lists in brackets, no spaces a shell would split on."""
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().replace(" ", "")
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def cell_overrides(overrides: str) -> dict[str, str]:
    """The overrides of a cell of ``pipeline.cells`` (``labelled_frames=6 split.fold=2``), by key."""
    return dict(override.split("=", 1) for override in overrides.split())


def cell_config(cfg: DictConfig, overrides: str) -> DictConfig:
    """A copy of ``cfg`` with the overrides of a cell of ``pipeline.cells`` applied (keys of the
    composed study), as its own command line would give them."""
    cell = copy.deepcopy(cfg)
    for key, value in cell_overrides(overrides).items():
        if OmegaConf.select(cell, key, default=KeyError) is KeyError:
            raise DataError(
                f"pipeline.cells: {key}={value}: {key} is not a key of the study; write "
                "params.yaml again: `python -m src.params`"
            )
        OmegaConf.update(cell, key, yaml.safe_load(value), merge=False)
    return cell
