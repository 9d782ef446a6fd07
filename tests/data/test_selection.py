"""The frame-selection contract (src/data/contract.py FrameSelection) and its registry
(src/data/selection/): k-means through the registry gives exactly the frames it gave before the
registry existed, and the fixed test frames are drawn apart from the strategy.

The expected values were computed by the code before the registry (src/data/frames.py's
rank_kmeans and select_frames at commit 1039bb9) on the same inputs.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.data import contract, selection
from src.data.frames import draw_test_frames, rank_kmeans, select_frames, video_seeds
from src.data.table import Dataset
from src.errors import DataError

FRAMES_CFG = dict(
    max_train_frames_per_video=5,
    test_fraction=0.3,  # 2 test frames per development video
    generalisation_frames_per_video=2,
    max_frames_for_clustering=3000,
    features=dict(width_px=8, height_px=6),
    seed=3,
)
# (video, set, role, rank, frame) of the data set below, as select_frames gave them before.
EXPECTED = [
    ("p1_walk", "development", "test", 1, 2),
    ("p1_walk", "development", "test", 2, 7),
    ("p1_walk", "development", "train", 1, 10),
    ("p1_walk", "development", "train", 2, 5),
    ("p1_walk", "development", "train", 3, 9),
    ("p1_walk", "development", "train", 4, 0),
    ("p1_walk", "development", "train", 5, 11),
    ("p2_walk", "development", "test", 1, 8),
    ("p2_walk", "development", "test", 2, 2),
    ("p2_walk", "development", "train", 1, 5),
    ("p2_walk", "development", "train", 2, 7),
    ("p2_walk", "development", "train", 3, 3),
    ("p2_walk", "development", "train", 4, 4),
    ("p2_walk", "development", "train", 5, 0),
    ("p3_walk", "generalisation", "generalisation", 1, 5),
    ("p3_walk", "generalisation", "generalisation", 2, 9),
]


def labelled_images(root: Path) -> tuple[Dataset, pd.DataFrame]:
    """Three videos of 14, 9 and 11 labelled noise images (a DeepLabCut project's layout) and a
    participant split: p1, p2 development, p3 generalisation."""
    rows = []
    for video, n in [("p1_walk", 14), ("p2_walk", 9), ("p3_walk", 11)]:
        rng = np.random.default_rng(len(video) + n)
        (root / "labeled-data" / video).mkdir(parents=True)
        for f in range(n):
            image = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
            image[: 2 + f, :, 0] = 255 - 12 * (f % 5)
            name = f"labeled-data/{video}/img{f:03d}.png"
            cv2.imwrite(str(root / name), image)
            rows.append(
                dict(
                    participant=video[:2],
                    video=video,
                    frame=f,
                    bodypart="head",
                    x=1.0,
                    y=2.0,
                    image=name,
                )
            )
    annotations = pd.DataFrame(rows)
    videos = pd.DataFrame(
        [
            dict(
                participant=v[:2],
                video=v,
                session="s",
                path=None,
                n_frames=None,
                width=None,
                height=None,
            )
            for v in annotations["video"].unique()
        ]
    )
    dataset = Dataset(
        name="t",
        kind="dlc_project",
        root=root,
        bodyparts=["head"],
        skeleton=[],
        cm_per_px=None,
        scorer="me",
        videos=videos,
        annotations=annotations,
        has_labelled_images=True,
    )
    split = videos[["participant", "video", "session"]].assign(
        set=["development", "development", "generalisation"]
    )
    return dataset, split


def test_the_registry_holds_kmeans_the_default():
    assert selection.STRATEGIES == ("active", "kmeans") and selection.DEFAULT == "kmeans"
    assert selection.strategy(OmegaConf.create(FRAMES_CFG)).NAME == "kmeans"  # no key: the default
    assert selection.strategy(OmegaConf.create({"strategy": "kmeans"})).NAME == "kmeans"


@pytest.mark.parametrize("name", selection.STRATEGIES)
def test_a_strategy_provides_every_member_of_the_contract(name):
    module = selection.module(name)
    assert name == module.NAME and isinstance(module, contract.FrameSelection)
    missing = [m for m in contract.members(contract.FrameSelection) if not hasattr(module, m)]
    assert not missing, f"{module.__name__} lacks {missing} of src/data/contract.py"
    declared = list(inspect.signature(contract.FrameSelection.rank).parameters)[1:]
    assert list(inspect.signature(module.rank).parameters) == declared


def test_an_unknown_strategy_is_one_line_naming_the_strategies_before_any_frame_is_read(tmp_path):
    dataset, split = labelled_images(tmp_path)
    for image in (tmp_path / "labeled-data").rglob("*.png"):
        image.unlink()  # reading a frame would fail otherwise
    with pytest.raises(DataError) as error:
        select_frames(dataset, split, OmegaConf.create(FRAMES_CFG | {"strategy": "random"}))
    assert str(error.value) == (
        "frames.strategy='random' is unknown; choose active | kmeans (conf/frames/)."
    )


def test_kmeans_through_the_registry_ranks_as_before():
    features = np.random.default_rng(11).random((25, 6))
    ranked = selection.module("kmeans").rank(features, 7, 5)
    assert ranked.tolist() == [4, 14, 23, 20, 7, 10, 17]
    assert rank_kmeans(features, 7, 5).tolist() == ranked.tolist()


@pytest.mark.parametrize("strategy", [{}, {"strategy": "kmeans"}])
def test_kmeans_selects_exactly_the_frames_it_selected_before(tmp_path, strategy):
    dataset, split = labelled_images(tmp_path)
    selected = select_frames(dataset, split, OmegaConf.create(FRAMES_CFG | strategy))
    columns = ["video", "set", "role", "rank", "frame"]
    assert list(selected[columns].itertuples(index=False, name=None)) == EXPECTED
    assert set(selected["participant"]) == {"p1", "p2", "p3"}


def test_the_test_frames_are_drawn_apart_from_the_strategy(tmp_path):
    dataset, _ = labelled_images(tmp_path)
    seeds = video_seeds(3, "p1_walk")
    # p1_walk's ranked development picks (k-means, 5 train + 2 test): the draw takes ranks 1 and 4
    ranked = np.array([2, 10, 5, 7, 9, 0, 11])
    roles = draw_test_frames(dataset, "p1_walk", ranked, 2, seeds)
    assert ranked[roles == "test"].tolist() == [2, 7]
    # the draw depends on the number of picks and the seeds only, not on which frames they are
    assert (
        draw_test_frames(dataset, "p1_walk", ranked[::-1] + 100, 2, seeds).tolist()
        == roles.tolist()
    )
    with pytest.raises(DataError, match="has 1 usable frame"):
        draw_test_frames(dataset, "p1_walk", ranked[:1], 2, seeds)
