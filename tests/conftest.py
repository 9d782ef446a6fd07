"""Shared test helpers: compose the real Hydra config and shrink it (lightning-hydra-template style)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
REACHING = FIXTURES / "dlc-reaching"


def compose_config(tmp_path: Path, *overrides: str):
    """The project's real config with all data under ``tmp_path`` and the tiny synthetic cohort."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[f"paths.data_dir={tmp_path / 'data'}", "synthetic=tiny", *overrides],
        )


def tree_checksums(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, keyed by relative path (to prove raw data is untouched)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(root).rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def reaching_copy(tmp_path) -> Path:
    """A private copy of the real DeepLabCut fixture project, safe to break."""
    target = tmp_path / "Reaching-Mackenzie-2018-08-30"
    shutil.copytree(REACHING, target)
    return target


@pytest.fixture(autouse=True)
def restore_tracking_uri():
    """Tests that point MLflow at a store of their own leave the process's tracking URI as they found it."""
    before = mlflow.get_tracking_uri()
    yield
    mlflow.set_tracking_uri(before)
