"""Write params.yaml: the configuration in conf/, composed by Hydra, that the DVC pipeline reads.

    python -m src.params                       # conf/ as it is (``make demo`` runs this before ``dvc repro``)
    python -m src.params model=resnet_50       # Hydra overrides, e.g. the whole pipeline on another model

Each stage of dvc.yaml runs ``python -m src.<stage> --config-dir . --config-name params``, so it reads exactly
this file, and each stage's ``params:`` lists the keys it reads: changing one re-runs only the stages that
read it. Edit conf/ (every key is commented there), not params.yaml, which this rewrites.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.files import atomic_file

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
    """conf/config.yaml composed with ``overrides``, every interpolation resolved, as plain data."""
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)


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
    changed = write_params(path, overrides)
    composition = "conf/ composed" + (f" with {' '.join(overrides)}" if overrides else "")
    print(f"{path.name}: {'written' if changed else 'unchanged'} ({composition})", flush=True)


if __name__ == "__main__":
    main()
