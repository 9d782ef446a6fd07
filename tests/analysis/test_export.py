"""src.export on a tiny real model: the DeepLabCut 3 project it writes is opened by DeepLabCut's own
analyze_videos and create_labeled_video unchanged, predicts exactly what src.analyze predicts, and
holds no labelled frames, videos or video names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from src.analysis.export import export
from src.analysis.run import analyze
from src.errors import ConfigError, DataError
from src.tracking import registry, store
from src.training.condition import train
from tests.conftest import REPO, compose_config, python_env, tiny_overrides, tiny_project

pytestmark = pytest.mark.slow
NAME = "synthetic_clinical"


def configured(root: Path, *overrides: str):
    return compose_config(root, *tiny_overrides(root), "weights=random", *overrides)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Condition 2 trained under a sweep parent run and registered: (root, training run id)."""
    root = tmp_path_factory.mktemp("export")
    cfg = tiny_project(root, "weights=random", "labelled_frames=2")
    experiment_id = store.configure(cfg.mlflow)
    parent = MlflowClient().create_run(experiment_id, run_name="sweep", tags={"sweep": "test"})
    os.environ[store.PARENT_RUN_ENV] = parent.info.run_id
    try:
        train(cfg)
    finally:
        del os.environ[store.PARENT_RUN_ENV]
    store.finish(parent.info.run_id, failed=False)
    done = registry.register_study(configured(root, f"report.sweep={parent.info.run_id}"))
    return root, MlflowClient().get_model_version(NAME, done.champion_version).run_id


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """The champion exported through the entry point: (config.yaml, its output)."""
    root, _ = trained
    target = tmp_path_factory.mktemp("home") / "champion"
    overrides = [*tiny_overrides(root), f"paths.data_dir={root / 'data'}", "synthetic=tiny"]
    done = subprocess.run(
        [sys.executable, "-m", "src.export", *overrides, f"export.dir={target}"],
        cwd=REPO,
        env=python_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return target / "config.yaml", done.stdout


def test_deeplabcuts_analyze_videos_on_the_export_equals_src_analyze(trained, exported, tmp_path):
    import deeplabcut

    root, run_id = trained
    config, _ = exported
    video = Path(configured(root).data.root) / "videos" / "P01_S1.mp4"
    deeplabcut.analyze_videos(str(config), [str(video)], destfolder=str(tmp_path))
    (theirs,) = tmp_path.glob("P01_S1DLC_*.h5")
    ours = analyze(
        configured(
            root,
            f"analysis.run_id={run_id}",
            f"analysis.videos=[{video}]",
            "analysis.movie.enabled=false",
        )
    )
    (mine,) = (ours["output_dir"] / "P01_S1").glob("P01_S1DLC_*.h5")
    theirs_table, mine_table = pd.read_hdf(theirs), pd.read_hdf(mine)
    assert theirs_table.columns.droplevel("scorer").equals(mine_table.columns.droplevel("scorer"))
    assert len(theirs_table) == 12
    np.testing.assert_array_equal(theirs_table.to_numpy(), mine_table.to_numpy())  # to the bit

    deeplabcut.create_labeled_video(str(config), [str(video)], destfolder=str(tmp_path))
    (movie,) = tmp_path.glob("*_labeled.mp4")
    capture = cv2.VideoCapture(str(movie))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    capture.release()


def test_export_is_a_deeplabcut_project_with_model_and_config_only(trained, exported):
    root, _ = trained
    config_path, output = exported
    cfg = configured(root)
    facts = yaml.safe_load((Path(cfg.data.root) / "dataset.yaml").read_text())
    config = yaml.safe_load(config_path.read_text())
    assert config["bodyparts"] == facts["bodyparts"]
    assert [list(pair) for pair in config["skeleton"]] == [list(p) for p in facts["skeleton"]]
    assert config["video_sets"] == {} and config["project_path"] == str(config_path.parent)
    (snapshot,) = config_path.parent.glob("dlc-models-pytorch/iteration-0/*/train/snapshot-*.pt")
    assert (snapshot.parent / "pytorch_config.yaml").is_file()
    files = [p for p in config_path.parent.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".png", ".jpg", ".mp4", ".avi", ".h5", ".csv")]
    participants = pd.read_csv(Path(cfg.data.root) / "participants.csv")
    real_names = set(participants["video"]) | set(participants["participant"])
    texts = [p.read_text() for p in files if p.suffix in (".yaml", ".md")]
    for name in real_names:
        assert not any(name in text for text in texts), name
    assert "no labelled frames, videos or video names" in output
    assert (
        "No labelled frames, no videos, no video names"
        in (config_path.parent / "EXPORT.md").read_text()
    )


def test_bad_export_settings_name_the_key(trained, exported, tmp_path):
    root, _ = trained
    config_path, _ = exported
    with pytest.raises(ConfigError, match="export.dir is not set"):
        export(configured(root))
    with pytest.raises(DataError, match=r"export.dir=.* exists and is not empty"):
        export(configured(root, f"export.dir={config_path.parent}"))
    with pytest.raises(DataError, match="export.model=nonexistent is no run"):
        export(configured(root, "export.model=nonexistent", f"export.dir={tmp_path / 'x'}"))
    with pytest.raises(DataError, match=r"export.model=models:/nope@champion names no registered"):
        export(
            configured(root, "export.model=models:/nope@champion", f"export.dir={tmp_path / 'y'}")
        )
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
