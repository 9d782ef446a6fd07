"""Privacy: participants and videos reach MLflow only by pseudonym; with media off no frame or movie does.

The slow test trains a real (tiny) model into a real MLflow store and then searches every byte of that
store for the cohort's real identifiers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from src.privacy import MAPPING_FILE, Pseudonyms
from src.training.condition import train
from tests.conftest import REPO, compose_config, tiny_overrides, tiny_project

MEDIA_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".gif",
    ".mp4",
    ".avi",
    ".mov",
    ".mkv",
}
CHARTS = {
    "loss.png",
    "bodypart_errors.png",
}  # plots of numbers, not of people: allowed with media off


def test_pseudonyms_are_stable_per_key_and_mapped_back_in_the_data_folder(tmp_path):
    first, again, other = (
        Pseudonyms(tmp_path / "a"),
        Pseudonyms(tmp_path / "a"),
        Pseudonyms(tmp_path / "b"),
    )
    name = first("Jane_Doe_2024-03-01", "video")
    assert name.startswith("video-") and "Jane" not in name
    assert again("Jane_Doe_2024-03-01", "video") == name  # same key: comparable across runs
    assert other("Jane_Doe_2024-03-01", "video") != name  # another data folder's key: unlinkable
    assert first("Jane_Doe", "participant") != first("Jane_Doe", "video")
    first.save()
    mapping = pd.read_csv(tmp_path / "a" / MAPPING_FILE)
    assert set(zip(mapping["kind"], mapping["pseudonym"], mapping["identifier"])) == {
        ("video", name, "Jane_Doe_2024-03-01"),
        ("participant", first("Jane_Doe", "participant"), "Jane_Doe"),
        ("video", first("Jane_Doe", "video"), "Jane_Doe"),
    }
    assert (
        Pseudonyms(tmp_path / "c", enabled=False)("P01_S1") == "P01_S1"
    )  # privacy.pseudonymise=false


def test_concurrent_runs_lose_no_pseudonym_from_the_mapping(tmp_path):
    script = (
        "import sys; from src.privacy import Pseudonyms; p = Pseudonyms(sys.argv[1]); "
        "[p(f'{sys.argv[2]}{i}') for i in range(200)]; p.save()"
    )
    jobs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), prefix], cwd=REPO)
        for prefix in "AB"
    ]
    assert [job.wait(timeout=120) for job in jobs] == [0, 0]
    mapping = pd.read_csv(tmp_path / MAPPING_FILE)
    assert sorted(mapping["identifier"]) == sorted(f"{p}{i}" for p in "AB" for i in range(200))


def test_the_mlflow_ui_command_binds_to_loopback_only():
    ui = next(line for line in (REPO / "Makefile").read_text().splitlines() if "mlflow ui" in line)
    assert "--host 127.0.0.1" in ui and "0.0.0.0" not in ui


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One condition trained with media off, then evaluated again (same model) with media on."""
    root = tmp_path_factory.mktemp("privacy")
    tiny_project(root)
    train(compose_config(root, *tiny_overrides(root), "labelled_frames=1", "data.log_media=false"))
    train(compose_config(root, *tiny_overrides(root), "labelled_frames=1", "data.log_media=true"))
    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("synthetic_clinical").experiment_id
    media_off, media_on = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    return root, client, media_off, media_on


def artifact_files(client: MlflowClient, run_id: str, path: str = "") -> list[str]:
    files = []
    for item in client.list_artifacts(run_id, path):
        files += artifact_files(client, run_id, item.path) if item.is_dir else [item.path]
    return files


@pytest.mark.slow
def test_with_media_off_no_frame_or_movie_reaches_mlflow(store):
    _, client, media_off, media_on = store
    assert (
        media_off.data.params["data.log_media"] == "False"
        and media_on.data.params["data.log_media"] == "True"
    )
    off = artifact_files(client, media_off.info.run_id)
    assert (
        "model/snapshot-last.pt" in off and "predictions/test.csv" in off
    )  # the run did log its artifacts
    assert {Path(f).name for f in off if Path(f).suffix.lower() in MEDIA_SUFFIXES} <= CHARTS
    # The check sees frames when they are there: the media-on evaluation of the same model logs them.
    on = artifact_files(client, media_on.info.run_id)
    assert {"plots/test_frames.png", "plots/generalisation_frames.png"} <= set(on)


@pytest.mark.slow
def test_no_participant_or_video_name_is_anywhere_in_the_mlflow_store(store):
    root, client, media_off, _ = store
    cohorts = root / "data" / "synthetic"
    identifiers = set()
    for participants in cohorts.glob("*/participants.csv"):
        table = pd.read_csv(participants, dtype=str)
        identifiers |= set(table["participant"]) | set(table["video"])
    assert len(identifiers) >= 9  # 3 participants, 6 videos
    searched = 0
    for path in (root / "mlruns").rglob("*"):
        if (
            path.is_file() and path.suffix != ".pt"
        ):  # weights are numbers; everything else is searched
            content = path.read_bytes()
            searched += 1
            found = [name for name in identifiers if name.encode() in content]
            assert not found, f"{path.relative_to(root)} contains {found}"
    assert searched >= 10
    # The pseudonyms the predictions use map back to the real videos, in the data folder only.
    logged = pd.read_csv(
        client.download_artifacts(media_off.info.run_id, "predictions/generalisation.csv")
    )
    mapping = pd.read_csv(root / "data" / "privacy" / MAPPING_FILE).set_index("pseudonym")[
        "identifier"
    ]
    assert set(logged["video"].map(mapping)) <= identifiers
