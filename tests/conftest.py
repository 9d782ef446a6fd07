"""Shared test helpers: compose the real Hydra config and shrink it (lightning-hydra-template style)."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_dir

from src.data.preparation import prepare
from src.synthetic.cohort import generate_all

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


# Tiny and fast: 4 ranked frames per video, resnet_18, a handful of updates (with compose_config's tiny cohort).
TINY_TRAINING = [
    "frames.max_train_frames_per_video=4",
    "model=resnet_18",
    "training.iterations=6",
    "training.evaluations=2",
    "pretraining.iterations=4",
    "pretraining.frames_per_video=4",
]


_STORE_TEMPLATE: list[Path] = []  # the empty store made once per session


def empty_mlflow_store(db: Path, cwd: Path = REPO, default_location: str | None = None) -> None:
    """An empty MLflow SQLite store at ``db`` (unless there is one), as MLflow makes it for a process
    working in ``cwd`` (or, given ``default_location``, a server: its Default experiment's artifact
    location); copied from one made once per session, since MLflow runs all its schema migrations
    for every new store (seconds each time)."""
    if db.exists():
        return
    if not _STORE_TEMPLATE:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        folder = Path(tempfile.mkdtemp(prefix="mlflow-store-template-"))
        atexit.register(shutil.rmtree, folder, True)
        SqlAlchemyStore(f"sqlite:///{folder / 'mlflow.db'}", str(folder)).engine.dispose()
        _STORE_TEMPLATE.append(folder / "mlflow.db")
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_STORE_TEMPLATE[0], db)
    now = int(time.time() * 1000)  # the Default experiment, as a new store in ``cwd`` has it
    with contextlib.closing(sqlite3.connect(db)) as connection, connection:
        connection.execute(
            "UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ?"
            " WHERE experiment_id = 0",
            (default_location or str(cwd / "mlruns" / "0"), now, now),
        )


def tiny_overrides(root: Path) -> list[str]:
    """TINY_TRAINING with the working copies and a SQLite MLflow store under ``root`` (an empty one
    put there: :func:`empty_mlflow_store`)."""
    empty_mlflow_store(root / "mlruns" / "mlflow.db")
    return [
        *TINY_TRAINING,
        f"paths.models_dir={root / 'models'}",
        f"mlflow.tracking_uri=sqlite:///{root / 'mlruns' / 'mlflow.db'}",
        f"mlflow.artifact_location={root / 'mlruns' / 'artifacts'}",
    ]


def tiny_project(root: Path, *overrides: str):
    """The tiny cohorts generated and prepared under ``root``; returns the composed config."""

    cfg = compose_config(root, *tiny_overrides(root), *overrides)
    generate_all(cfg.synthetic)
    prepare(cfg)
    return cfg


def python_env() -> dict[str, str]:
    """This virtualenv first on PATH, as `make` has it: `python`, `dvc` and `mlflow` of .venv (submitit and loky
    also start their jobs with it)."""
    return os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


# The tiny pipeline of tests/pipeline/: params.yaml overrides, conditions 0 and 2.
TINY_PIPELINE = [
    "synthetic=tiny",
    "frames.max_train_frames_per_video=4",
    "training.iterations=6",
    "training.evaluations=2",
    "pretraining.iterations=4",
    "pretraining.frames_per_video=4",
    "pipeline.conditions=[0,2]",
]


def run(repo: Path, *command: str) -> str:
    """A command in the copy, with this virtualenv's `python` and `dvc` first on PATH (as `make demo` has)."""
    done = subprocess.run(command, cwd=repo, env=python_env(), capture_output=True, text=True)
    assert done.returncode == 0, (
        f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout + done.stderr


def copy_repository(target: Path) -> Path:
    """What a clone holds that the pipeline needs: code, configs, dvc.yaml, the lock file (a dep of
    every stage); a git and DVC repository."""
    target.mkdir()
    for name in ("src", "conf"):
        shutil.copytree(REPO / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "requirements.lock"):
        shutil.copyfile(REPO / name, target / name)
    (target / "docs").mkdir()
    shutil.copyfile(REPO / "docs" / "paper_table1.csv", target / "docs" / "paper_table1.csv")
    run(target, "git", "init", "-q")
    run(target, "dvc", "init", "-q")
    run(target, "dvc", "config", "core.analytics", "false")
    empty_mlflow_store(target / "mlruns" / "mlflow.db", cwd=target)
    return target


def ran_stages(output: str) -> set[str]:
    return {
        line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")
    }


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


_MODULES_WITH_FAILURES: set[str] = set()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and getattr(item, "module", None) is not None:
        _MODULES_WITH_FAILURES.add(item.module.__name__)
    return report


@pytest.fixture(scope="module", autouse=True)
def remove_module_folders(request, tmp_path_factory):
    """The folders a module's fixtures made (``tmp_path_factory.mktemp``) go when all its tests pass,
    as passing tests' own ``tmp_path`` do (``tmp_path_retention_policy`` in pyproject.toml): each
    training leaves snapshots of tens of MB, and the whole suite kept over 20 GB in the temporary
    folder. A module with a failure keeps its folders to look at."""
    base = tmp_path_factory.getbasetemp()
    before = set(base.iterdir())
    yield
    if request.module.__name__ in _MODULES_WITH_FAILURES:
        return
    for path in set(base.iterdir()) - before:
        if path.is_symlink():  # pytest's "<name>current" links
            path.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    """Tests of the real DeepLabCut project skip, saying why, where the shared fixture is not beside the clone."""
    if REACHING.is_dir():
        return
    skip = pytest.mark.skip(
        reason=f"needs the DeepLabCut fixture project {REACHING} (not in this checkout)"
    )
    for item in items:
        module = getattr(item, "module", None)
        if "reaching_copy" in getattr(item, "fixturenames", ()) or hasattr(module, "REACHING"):
            item.add_marker(skip)


def pytest_sessionstart(session):
    """The tests compose conf/; a study of the user's own (conf/study/current.yaml) would change them."""
    study = Path(__file__).resolve().parents[1] / "conf" / "study" / "current.yaml"
    if study.is_file():
        pytest.exit(
            f"{study} is set (your own study); the tests compose conf/ and would use it: "
            "run `python -m src.params --demo` (keeps it as previous.yaml) before the tests.",
            2,
        )
