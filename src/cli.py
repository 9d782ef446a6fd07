"""What every command shares: its help, and one line for a configuration it cannot compose.

Each stage is decorated with :func:`stage` in place of ``@hydra.main``. Then:

* ``python -m src.<stage> --help`` prints the module docstring up to the end of its ``Examples:`` block
  (what the command does, what it reads and writes, how to call it), then the config groups
  (``conf/hydra/help/stage.yaml``, chosen in ``conf/config.yaml``);
* a command run as ``python -m src.<stage>`` that finishes ends without the interpreter's module
  teardown (:func:`_exit_without_teardown`): with torch, DeepLabCut and MLflow loaded that teardown
  takes 1 to 2 s per process, and a study starts a dozen of them;
* an override Hydra cannot compose (``data=dlc_projct``, ``trainig.threads=1``, ``'x=[1'``) stops
  before any work with one line naming the valid choices, or the closest keys and the conf/ file that
  documents them, and exit status 2 (:func:`explained`, which ``python -m src.params`` uses too).
"""

from __future__ import annotations

import atexit
import contextlib
import difflib
import functools
import os
import re
import sys
import threading
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra._internal.hydra import Hydra
from hydra._internal.utils import (
    create_automatic_config_search_path,
    detect_calling_file_or_module_from_task_function,
    detect_task_name,
    get_args_parser,
)
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep
from hydra.errors import (
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
    SearchPathException,
)
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from src.errors import ConfigError, exit_on_data_error

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
CONFIG_PATH = "../conf"  # relative to src/, as hydra.main takes it
# What a group's option is, in an error: "unknown data set kind 'dlc_projct'" (default: "<group> option").
GROUP_NOUNS = {
    "data": "data set kind",
    "split": "split",
    "model": "model",
    "engine": "engine",
    "training": "training profile",
    "weights": "initial weights",
    "sweep": "sweep",
    "synthetic": "synthetic cohort generator",
    "hydra/launcher": "launcher",
}
_help = ""  # the running command's help, for ${stage_help:} of conf/hydra/help/stage.yaml


def help_text(doc: str | None) -> str:
    """A module docstring up to the end of its ``Examples:`` block (all of it when it has none), as
    plain text: RST's double backquotes dropped."""
    lines = (doc or "").strip("\n").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Examples:"), None)
    if start is not None:
        end = start + 1
        while end < len(lines) and lines[end].startswith(" "):
            end += 1
        lines = lines[:end]
    return "\n".join(lines).replace("``", "").rstrip()


# string.Template reads the help after OmegaConf resolved it: a literal $ must come out as $$
OmegaConf.register_new_resolver("stage_help", lambda: _help.replace("$", "$$"), replace=True)


def stage(task):
    """``@stage`` on a stage's ``main(cfg)``: ``@hydra.main`` on conf/config.yaml, with the module
    docstring as ``--help`` and one-line errors for overrides that do not compose."""
    app = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")(task)

    @functools.wraps(task)
    def main():
        global _help
        _help = help_text(sys.modules[task.__module__].__doc__)
        spec = getattr(sys.modules[task.__module__], "__spec__", None)
        command = f"python -m {spec.name if spec else task.__module__}"
        parser = get_args_parser()
        # argparse would print its usage, many lines, before its error: one line instead
        parser.error = lambda message: _refuse(f"{message} ({command}); see --help")
        args, unknown = parser.parse_known_args()
        if unknown:
            _refuse(
                f"{unknown[0]}: not an option of {command}; give overrides (key=value, "
                "group=option) or Hydra's options (-m, --cfg job, --info); see --help"
            )
        if args.experimental_rerun is None:
            with exit_on_data_error():
                _compose_once(task, args)
        result = app()
        printed_only = (
            args.cfg or args.info or args.help or args.hydra_help or args.shell_completion
        )
        if task.__module__ == "__main__" and not printed_only:  # the process's command ran
            _exit_without_teardown()
        return result

    return main


def _exit_without_teardown() -> None:
    """Exit with status 0 as the interpreter would, minus freeing every module one by one.

    What a normal exit does for the results is done first, in its order: threads are joined (with
    ``threading``'s exit hooks, which stop executors' workers), ``atexit`` handlers run (logging,
    MLflow's queued metrics, temporary folders, open HDF5 files), the standard streams are flushed.
    What is skipped is only freeing memory, which the operating system does at once.
    """
    shutdown = getattr(threading, "_shutdown", None)  # what Py_Finalize calls first
    if shutdown is None:  # another Python: the ordinary exit
        sys.exit(0)
    shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def _refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _compose_once(task, args) -> None:
    """Compose what Hydra will compose (same search path, config and overrides) and raise a
    ConfigError if it cannot; a sweep's jobs are checked with each swept override's first value."""
    calling_file, calling_module = detect_calling_file_or_module_from_task_function(task)
    search_path = create_automatic_config_search_path(
        calling_file, calling_module, args.config_path or CONFIG_PATH
    )
    if args.config_dir is not None:
        search_path.prepend("command-line", f"file://{Path(args.config_dir).absolute()}")
    given = list(args.overrides)
    # A sweep is a multirun from -m or from a config that sets hydra.mode (+sweep=frames): its jobs
    # are checked with each swept override's first value.
    overrides = _first_of_each_sweep(given)
    with explained(given if overrides == given else overrides):
        app = Hydra.create_main_hydra2(
            task_name=detect_task_name(calling_file, calling_module), config_search_path=search_path
        )
        try:
            name = args.config_name or "config"
            cfg = app.compose_config(name, overrides, run_mode=RunMode.RUN)
            if overrides != given and not args.multirun and cfg.hydra.mode != RunMode.MULTIRUN:
                app.compose_config(name, given, run_mode=RunMode.RUN)  # Hydra's "add --multirun"
        finally:
            GlobalHydra.instance().clear()


def _first_of_each_sweep(overrides: list[str]) -> list[str]:
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException:
        return overrides  # explained when composed
    kept = []
    for override in parsed:
        if not override.is_sweep_override():
            kept.append(override.input_line)
        elif isinstance(override.value(), ChoiceSweep):
            kept.append(f"{override.get_key_element()}={next(override.sweep_string_iterator())}")
    return kept


@contextlib.contextmanager
def explained(overrides: list[str]):
    """Turn Hydra's composition errors into a ConfigError of one line: the override at fault and
    its fix (the valid options, or the closest keys and the conf/ file that documents them)."""
    try:
        yield
    except (ConfigCompositionException, OverrideParseException, SearchPathException) as error:
        raise ConfigError(explain(error, overrides)) from None


def explain(error: Exception, overrides: list[str]) -> str:
    """One line for a Hydra composition ``error`` of ``overrides``."""
    if isinstance(error, OverrideParseException):
        return (
            f"{error.override}: not an override Hydra can read ({_one_line(error.message)}); "
            "write key=value (group=option for a config group), e.g. training.threads=4; "
            "see --help"
        )
    parsed = _parsed(overrides)
    if isinstance(error, MissingConfigException) and error.options and error.missing_cfg_file:
        group, option = error.missing_cfg_file.rsplit("/", 1)
        given = next((o.input_line for o in parsed if o.key_or_group == group), None)
        found = re.match(r"In '([^']+)'", str(error))
        where = "" if given or not found else f" (in conf/{found.group(1)}.yaml)"
        folder = "" if group.startswith("hydra") else f" (conf/{group}/)"
        return (
            f"{given or f'{group}={option}'}{where}: unknown "
            f"{GROUP_NOUNS.get(group, f'{group} option')} '{option}'; choose one of: "
            f"{', '.join(sorted(error.options))}{folder}"
        )
    unknown = re.match(r"Could not override '([^']+)'\.\n", str(error))
    if unknown and isinstance(error.__cause__, (ConfigKeyError, ConfigAttributeError)):
        key = unknown.group(1)
        given = next((o.input_line for o in parsed if o.key_or_group == key), key)
        return _unknown_key(key, given, [o.input_line for o in parsed if o.key_or_group != key])
    cause = f" ({_one_line(str(error.__cause__))})" if error.__cause__ else ""
    return f"{' '.join(overrides) or 'the configuration'}: {_one_line(str(error))}{cause}"


def _unknown_key(key: str, given: str, others: list[str]) -> str:
    cfg = _composed(others) or _composed([])
    choices = dict(cfg.hydra.runtime.choices) if cfg is not None else {}
    keys = _dotted_keys(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])) if cfg else []
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.8)
    leaf = key.rsplit(".", 1)[-1]
    close = close or [k for k in keys if k.rsplit(".", 1)[-1] == leaf]  # threads=2
    if not close:
        return (
            f"{given}: unknown key {key}; {conf_file(key, choices)} lists the keys with their "
            "meaning (or see them all: --cfg job)"
        )
    return (
        f"{given}: unknown key {key}; did you mean {' or '.join(close[:3])}? "
        f"{conf_file(close[0], choices)} documents {close[0]}"
    )


def conf_file(key: str, choices: dict | None = None) -> str:
    """The conf/ file that documents ``key``: its group's chosen option (conf/training/cpu_demo.yaml),
    the group's folder when the choice is unknown, or conf/config.yaml."""
    section = key.split(".")[0]
    if (CONF_DIR / section).is_dir() and section not in ("hydra", "study"):
        option = (choices or {}).get(section)
        return f"conf/{section}/{option}.yaml" if option else f"conf/{section}/"
    return "conf/config.yaml"


def config_groups(conf_dir: Path = CONF_DIR) -> str:
    """The config groups and their options, one line each, as Hydra's help lists them."""
    return "\n".join(
        f"{group.name}: {', '.join(sorted(p.stem for p in group.glob('*.yaml')))}"
        for group in sorted(conf_dir.iterdir())
        if group.is_dir() and group.name not in ("hydra", "study") and any(group.glob("*.yaml"))
    )


def _composed(overrides: list[str]) -> DictConfig | None:
    """conf/config.yaml with ``overrides`` and the hydra node, or None when it does not compose."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=overrides, return_hydra_config=True)
    except Exception:  # only a better message is at stake here
        return None


def _dotted_keys(node, prefix: str = "") -> list[str]:
    keys = []
    for name in node:
        key = f"{prefix}{name}"
        keys.append(key)
        child = node._get_node(name)
        if OmegaConf.is_dict(child):
            keys += _dotted_keys(child, f"{key}.")
    return keys


def _parsed(overrides: list[str]) -> list:
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException:
        return []


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
