"""The data-kind contract (src/data/contract.py Loader) and its registry (src/data/dataset.py).

Every registered kind is checked against the contract (members, the parameters of ``load``, its
conf/data/<kind>.yaml), an unknown kind is one line naming the kinds, and the registry has no
import cycle: the table and the contract import no loader, the loaders never import the registry.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from src.data import contract
from src.data.dataset import KINDS, kind_module, load_dataset
from src.errors import DataError
from tests.data.test_project_kinds import data_config, write_lightning_pose

REPO = Path(__file__).resolve().parents[2]


def test_the_registry_holds_the_four_kinds_with_their_labelled_images():
    assert KINDS == ("synthetic", "dlc_project", "lightning_pose", "videos")
    labelled = {kind: kind_module(kind).LABELLED_IMAGES for kind in KINDS}
    assert labelled == {
        "synthetic": False,
        "dlc_project": True,
        "lightning_pose": True,
        "videos": False,
    }


@pytest.mark.parametrize("kind", KINDS)
def test_a_kind_provides_every_member_of_the_contract(kind):
    module = kind_module(kind)
    assert module.__name__ == f"src.data.{kind}" and kind == module.KIND
    assert isinstance(module, contract.Loader)
    missing = [name for name in contract.members(contract.Loader) if not hasattr(module, name)]
    assert not missing, f"{module.__name__} lacks {missing} of src/data/contract.py"
    assert isinstance(module.LABELLED_IMAGES, bool)
    declared = list(inspect.signature(contract.Loader.load).parameters)[1:]
    assert list(inspect.signature(module.load).parameters) == declared == ["data_cfg"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_kind_has_its_config_listing_every_kind(kind):
    path = REPO / "conf" / "data" / f"{kind}.yaml"
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["kind"] == kind
    line = next(
        li for li in path.read_text(encoding="utf-8").splitlines() if li.startswith("kind:")
    )
    assert line.split("#", 1)[1].split() == " | ".join(KINDS).split()


def test_an_unknown_kind_is_one_line_naming_the_kinds():
    with pytest.raises(DataError) as error:
        load_dataset(OmegaConf.create({"kind": "openpose", "name": "x", "root": "/nowhere"}))
    assert str(error.value) == (
        "data.kind='openpose' is unknown; choose synthetic, dlc_project, lightning_pose or "
        "videos (conf/data/)."
    )


def test_the_table_and_the_contract_import_no_loader():
    code = (
        "import sys; import src.data.table, src.data.contract; "
        "print(sorted(m for m in sys.modules if m.startswith('src.data')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("'")[1::2]
    assert loaded == ["src.data", "src.data.contract", "src.data.table"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_loader_never_imports_the_registry(kind):
    tree = ast.parse((REPO / "src" / "data" / f"{kind}.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert "src.data.table" in imported
    assert "src.data.dataset" not in imported


def test_a_loaded_data_set_carries_its_kinds_labelled_images(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("p1_walk", "p2_walk"):
        writer = cv2.VideoWriter(
            str(videos / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 24)
        )
        for f in range(3):
            writer.write(np.full((24, 32, 3), 40 * f, np.uint8))
        writer.release()
    unlabelled = load_dataset(data_config(kind="videos", root=str(videos)))
    assert (unlabelled.kind, unlabelled.has_labelled_images) == ("videos", False)
    assert unlabelled.videos["video"].tolist() == ["p1_walk", "p2_walk"]
    lp = write_lightning_pose(tmp_path / "lp", ["mouseA_day1"])
    labelled = load_dataset(data_config(kind="lightning_pose", root=str(lp)))
    assert (labelled.kind, labelled.has_labelled_images) == ("lightning_pose", True)
