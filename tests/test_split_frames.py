"""Participant-level split and ranked k-means frame selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.data.dlc_project import load_dlc_project
from src.data.frames import (
    TEST,
    TRAIN,
    n_test_frames_per_video,
    rank_kmeans,
    select_frames,
)
from src.data.split import DEVELOPMENT, GENERALISATION, split_participants
from src.errors import DataError
from tests.conftest import REACHING, compose_config


def _videos(n_participants: int, sessions: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        [
            dict(participant=f"P{p:02d}", video=f"P{p:02d}_S{s}", session=f"S{s}")
            for p in range(1, n_participants + 1)
            for s in range(1, sessions + 1)
        ]
    )


def test_split_keeps_participants_whole_and_is_seeded():
    split = split_participants(_videos(33), 0.2, seed=7)
    sets_per_participant = split.groupby("participant")["set"].nunique()
    assert (sets_per_participant == 1).all()
    held_out = split.loc[split["set"] == GENERALISATION, "participant"].unique()
    assert len(held_out) == round(33 * 0.2) == 7  # the paper: 27 / 6 of 33; here 26 / 7 by rounding
    pd.testing.assert_frame_equal(split, split_participants(_videos(33), 0.2, seed=7))
    other = split_participants(_videos(33), 0.2, seed=8)
    assert set(other.loc[other["set"] == GENERALISATION, "participant"]) != set(held_out)


@pytest.mark.parametrize("n_participants, fraction", [(1, 0.2), (2, 0.2), (4, 0.9)])
def test_split_refuses_too_few_participants(n_participants, fraction):
    with pytest.raises(
        DataError, match=rf"{n_participants} participant\(s\) cannot be split.*Add participants"
    ):
        split_participants(_videos(n_participants), fraction, seed=0)


def test_split_refuses_fractions_outside_0_1():
    with pytest.raises(
        DataError, match="generalisation_fraction=1.0 must lie strictly between 0 and 1"
    ):
        split_participants(_videos(10), 1.0, seed=0)


def test_ranked_kmeans_covers_clusters_first():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, size=(6, 20))
    sizes = [40, 30, 20, 10, 5, 5]
    features = np.concatenate(
        [c + rng.normal(0, 0.1, size=(n, 20)) for c, n in zip(centres, sizes)]
    )
    cluster_of = np.repeat(np.arange(6), sizes)
    picks = rank_kmeans(features, 6, seed=1)
    assert sorted(cluster_of[picks]) == list(range(6))  # one pick per true cluster
    assert cluster_of[picks[0]] == 0  # the largest cluster's representative comes first
    np.testing.assert_array_equal(picks, rank_kmeans(features, 6, seed=1))
    assert len(rank_kmeans(features[:4], 6, seed=1)) == 4  # fewer rows than asked: all of them


def test_number_of_test_frames_per_video():
    assert (
        n_test_frames_per_video(20, 0.05) == 1
    )  # 1 of 21 labelled frames, about 5 % as in the paper
    assert n_test_frames_per_video(20, 0.2) == 5
    assert n_test_frames_per_video(1, 0.05) == 1
    with pytest.raises(DataError, match="test_fraction=0 must lie strictly between 0 and 1"):
        n_test_frames_per_video(20, 0)


def test_selection_from_a_real_project_uses_its_labelled_frames(tmp_path):
    dataset = load_dlc_project(REACHING)
    frames_cfg = compose_config(tmp_path).frames
    split = dataset.videos[["participant", "video", "session"]].assign(set=DEVELOPMENT)
    selection = select_frames(dataset, split, frames_cfg)
    assert (selection["role"] == TRAIN).sum() == 20 and (selection["role"] == TEST).sum() == 1
    assert set(selection["frame"]) <= set(dataset.annotations["frame"])
    assert selection["frame"].is_unique
    pd.testing.assert_frame_equal(selection, select_frames(dataset, split, frames_cfg))

    # a condition asking for more frames than the project has gets all it has
    greedy = OmegaConf.merge(frames_cfg, {"max_train_frames_per_video": 100})
    selection = select_frames(dataset, split, greedy)
    assert len(selection) == 55 and (selection["role"] == TEST).sum() == 5


def test_selection_refuses_zero_frames(tmp_path):
    dataset = load_dlc_project(REACHING)
    split = dataset.videos[["participant", "video", "session"]].assign(set=DEVELOPMENT)
    frames_cfg = OmegaConf.merge(
        compose_config(tmp_path).frames, {"generalisation_frames_per_video": 0}
    )
    with pytest.raises(
        DataError, match="frames.generalisation_frames_per_video=0 must be at least 1"
    ):
        select_frames(dataset, split, frames_cfg)
