"""src.export on a tiny real model: the DeepLabCut 3 project it writes is opened by DeepLabCut's own
analyze_videos and create_labeled_video unchanged, predicts exactly what src.analyze predicts, and
holds no labelled frames, videos or video names; a version carrying a trust calibrator exports it
beside config.yaml, where src.analyze reads it."""

from __future__ import annotations

import json
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

from src.analysis.export import CALIBRATOR_FILE, export
from src.analysis.model_choice import registered_calibrator
from src.analysis.run import analyze
from src.analysis.trust import TrustSettings
from src.errors import ConfigError, DataError
from src.tracking import registry, store
from src.training.condition import train
from tests.conftest import REPO, compose_config, python_env, tiny_overrides, tiny_project
from tests.tracking.test_registry import fitted_calibrator

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


def export_command(root: Path, target: Path, *overrides: str) -> str:
    """``python -m src.export`` into ``target``; its printed output."""
    settings = [*tiny_overrides(root), f"paths.data_dir={root / 'data'}", "synthetic=tiny"]
    done = subprocess.run(
        [sys.executable, "-m", "src.export", *settings, *overrides, f"export.dir={target}"],
        cwd=REPO,
        env=python_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """The champion (no trust calibrator) exported through the entry point: (config.yaml, its
    output)."""
    root, _ = trained
    target = tmp_path_factory.mktemp("home") / "champion"
    return target / "config.yaml", export_command(root, target)


@pytest.fixture(scope="module")
def calibrated(trained, exported, tmp_path_factory):
    """The champion registered again carrying a trust calibrator whose provenance names a video
    (after ``exported``: the aliases move to the new version): (its models:/ URI, the artifact as
    registered, a dict)."""
    root, run_id = trained
    folder = tmp_path_factory.mktemp("calibrator")
    data_root = Path(configured(root).data.root)
    score = fitted_calibrator(data_root, np.random.default_rng(0), rows=200)
    score.provenance = {
        "condition": 2,
        "folds": [1],
        "participants": ["P01", "P02"],
        "model_runs": {"1": run_id},
        "videos": ["P01_S1.mp4"],  # a field the export must leave out
    }
    path = score.save(folder / "fitted.json")
    parent = MlflowClient().get_run(run_id).data.tags["mlflow.parentRunId"]
    done = registry.register_study(
        configured(root, f"report.sweep={parent}", f"report.trust_model={path}")
    )
    uri = f"models:/{NAME}/{done.champion_version}"
    artifact, _ = registered_calibrator(uri, folder / "download")
    return uri, json.loads(artifact.read_text())


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
    assert_no_media_or_names(config_path.parent, cfg)
    assert "no labelled frames, videos or video names" in output
    assert (
        "No labelled frames, no videos, no video names"
        in (config_path.parent / "EXPORT.md").read_text()
    )


def assert_no_media_or_names(folder: Path, cfg) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".png", ".jpg", ".mp4", ".avi", ".h5", ".csv")]
    participants = pd.read_csv(Path(cfg.data.root) / "participants.csv")
    real_names = set(participants["video"]) | set(participants["participant"])
    texts = [p.read_text() for p in files if p.suffix in (".yaml", ".md", ".json")]
    for name in real_names:
        assert not any(name in text for text in texts), name


def test_a_version_without_a_calibrator_exports_none_and_says_how_to_get_one(exported):
    config_path, output = exported
    assert not list(config_path.parent.rglob("*.json"))
    assert "trust calibrator: none (models:/synthetic_clinical@champion carries none)" in output
    assert "report.trust_model" in output
    assert "No trust calibrator" in (config_path.parent / "EXPORT.md").read_text()


def test_a_version_carrying_a_calibrator_exports_it_for_src_analyze(trained, calibrated, tmp_path):
    from src.trust.score import TrustModel

    root, _ = trained
    uri, registered = calibrated
    assert registered["provenance"]["videos"] == ["P01_S1.mp4"]  # the registry keeps it as given
    target = tmp_path / "home"
    output = export_command(root, target, f"export.model={uri}")
    copy = target / CALIBRATOR_FILE
    expected = registered | {
        "provenance": {k: v for k, v in registered["provenance"].items() if k != "videos"}
    }
    assert json.loads(copy.read_text()) == expected  # the artifact, less the video names
    assert expected["provenance"]["participants"][0].startswith("participant-")
    assert TrustModel.load(copy).coef == registered["coef"]
    assert f"trust calibrator: {copy} (the one {uri} carries, fitted on 2 participants" in output
    assert f"analysis.trust.model={copy}" in output
    assert f"`{CALIBRATOR_FILE}`: the trust calibrator" in (target / "EXPORT.md").read_text()
    assert_no_media_or_names(target, configured(root))
    settings = TrustSettings.from_config(
        configured(root, "analysis.trust.score=combined", f"analysis.trust.model={copy}").analysis
    )
    assert settings.model.coef == registered["coef"] and settings.calibrator == str(copy)


def test_a_run_id_exports_the_calibrator_of_its_version_at_that_snapshot(
    trained, calibrated, tmp_path
):
    root, run_id = trained
    uri, registered = calibrated
    name, version = uri.removeprefix("models:/").split("/")
    snapshot = MlflowClient().get_model_version(name, version).tags["snapshot"]
    other = "best" if snapshot == "last" else "last"
    done = export(
        configured(
            root,
            f"export.model={run_id}",
            f"export.snapshot={snapshot}",
            f"export.dir={tmp_path / 'same'}",
        )
    )
    assert done.calibrator == tmp_path / "same" / CALIBRATOR_FILE
    assert done.calibrator_source == uri
    assert json.loads(done.calibrator.read_text())["coef"] == registered["coef"]
    done = export(
        configured(
            root,
            f"export.model={run_id}",
            f"export.snapshot={other}",
            f"export.dir={tmp_path / 'x'}",
        )
    )
    assert done.calibrator is None and not (tmp_path / "x" / CALIBRATOR_FILE).exists()


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
