"""Data versioning with DVC (docs/data.md): the committed default remote, a push / pull round trip, and a
user's own DeepLabCut project brought in with `dvc add` and prepared by the pipeline.

Everything runs in a private copy of the repository under tmp_path (tests.pipeline.test_pipeline.copy_repository), so
the remotes written to are folders under tmp_path; the shared fixture project is copied, never modified.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from configobj import ConfigObj

from src.params import write_params
from tests.conftest import REACHING, REPO, copy_repository, ran_stages, run, tree_checksums

# Where docs/data.md puts a user's DeepLabCut project: not under data/, which .gitignore ignores as a whole
# (DVC refuses to write a .dvc file that git ignores).
RAW = "raw/reaching"
UP_TO_DATE = "Data and pipelines are up to date"


def remote_objects(storage: Path) -> set[str]:
    """The md5 of every object in a local DVC remote (files/md5/ab/cdef... -> abcdef...)."""
    return {
        p.parent.name + p.name.removesuffix(".dir") for p in (storage / "files" / "md5").glob("*/*")
    }


def md5s(root: Path) -> set[str]:
    return {hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def git_ignores(repo: Path, path: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=repo).returncode == 0


def versioned_copy(tmp_path: Path, *overrides: str) -> tuple[Path, Path]:
    """A repository copy with the committed .dvc/config, params.yaml, and the fixture project copied to RAW."""
    repo = copy_repository(tmp_path / "repo")
    shutil.copyfile(REPO / ".dvc" / "config", repo / ".dvc" / "config")
    write_params(repo / "params.yaml", list(overrides))  # dvc.yaml cannot be read without it
    project = repo / RAW
    shutil.copytree(REACHING, project)
    return repo, project


def test_committed_default_remote_is_a_folder_beside_the_repository():
    config = ConfigObj(str(REPO / ".dvc" / "config"))
    name = config["core"]["remote"]
    url = config[f'remote "{name}"']["url"]
    assert "://" not in url and not Path(url).is_absolute(), (
        url
    )  # relative: every clone gets its own
    storage = (REPO / ".dvc" / url).resolve()  # DVC resolves it against .dvc/
    assert storage == REPO.resolve().parent / "dvc-storage"
    assert not storage.is_relative_to(REPO.resolve())


@pytest.mark.slow
def test_push_then_pull_restores_the_project_byte_for_byte(tmp_path):
    fixture_before = tree_checksums(REACHING)
    repo, project = versioned_copy(tmp_path)
    before = tree_checksums(project)
    assert before == fixture_before

    run(repo, "dvc", "add", RAW)
    # git gets the pointer file, never the videos and frames themselves
    assert not git_ignores(repo, f"{RAW}.dvc") and git_ignores(repo, f"{RAW}/config.yaml")

    # the committed default remote: ../dvc-storage beside the repository (here tmp_path/dvc-storage)
    run(repo, "dvc", "push")
    storage = tmp_path / "dvc-storage"
    assert md5s(project) <= remote_objects(storage)
    assert len(remote_objects(storage)) == len(md5s(project)) + 1  # and the folder's .dir manifest

    shutil.rmtree(project)
    shutil.rmtree(repo / ".dvc" / "cache")
    run(repo, "dvc", "pull", f"{RAW}.dvc")
    assert tree_checksums(project) == before

    # one's own remote, kept out of git with --local (here a "shared drive" folder); the default stays as it was
    shared = tmp_path / "lab share" / "dvc-store"
    run(repo, "dvc", "remote", "add", "--local", "-d", "mine", str(shared))
    assert (repo / ".dvc" / "config").read_bytes() == (REPO / ".dvc" / "config").read_bytes()
    assert "mine" in run(repo, "dvc", "remote", "default")
    run(repo, "dvc", "push", f"{RAW}.dvc")
    assert md5s(project) <= remote_objects(shared)
    shutil.rmtree(project)
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(storage)  # the pull can only come from the new remote
    run(repo, "dvc", "pull", f"{RAW}.dvc")
    assert tree_checksums(project) == before
    assert UP_TO_DATE in run(repo, "dvc", "status", f"{RAW}.dvc")
    assert tree_checksums(REACHING) == fixture_before


@pytest.mark.slow
def test_own_deeplabcut_project_through_the_prepare_stage(tmp_path):
    overrides = [
        "data=dlc_project",
        f"data.root={RAW}",
        "data.name=reaching",
        "data.participants.pattern='^(?P<participant>reachingvideo[0-9]+)$'",  # Hydra needs the quotes
        "split.generalisation_fraction=0.5",
        # a list, not `auto`: params.yaml is written before the project is copied in (and given its
        # second video), so there is nothing yet to count the conditions in
        "pipeline.conditions=[0,1,2]",
    ]
    repo, project = versioned_copy(tmp_path, *overrides)
    # The fixture labels one video, and the split needs a participant in each set: a second session of it.
    shutil.copytree(
        project / "labeled-data" / "reachingvideo1", project / "labeled-data" / "reachingvideo2"
    )
    run(repo, "dvc", "add", RAW)
    before = tree_checksums(project)

    output = run(repo, "dvc", "repro", "prepare")
    assert ran_stages(output) == {
        "prepare"
    }  # prepare depends on the project, not on the synthetic cohort

    prepared = repo / "data" / "prepared" / "reaching"
    selection = pd.read_csv(prepared / "selection.csv")
    labels = pd.read_csv(prepared / "labels.csv")
    bodyparts = yaml.safe_load((REACHING / "config.yaml").read_text())["bodyparts"]
    assert sorted(labels["bodypart"].unique()) == sorted(bodyparts)
    assert len(labels) == len(selection) * len(bodyparts)
    assert set(selection["video"]) == {"reachingvideo1", "reachingvideo2"}
    assert set(pd.read_csv(prepared / "split.csv")["set"]) == {"development", "generalisation"}

    assert UP_TO_DATE in run(repo, "dvc", "status", "prepare")
    # dvc.lock pins the very version of the project that `dvc add` recorded
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    pinned = {d["path"]: d["md5"] for d in lock["stages"]["prepare"]["deps"]}
    assert pinned[RAW] == yaml.safe_load((repo / f"{RAW}.dvc").read_text())["outs"][0]["md5"]
    # read-only: the project is byte-identical, and DVC agrees
    assert tree_checksums(project) == before
    assert UP_TO_DATE in run(repo, "dvc", "status", f"{RAW}.dvc")
