"""The ``active`` frame-selection strategy (src/data/selection/active.py): k-means' frames where no
model has chosen, then the highest expected error with diversity, nested rounds, seeded."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.data import contract, selection
from src.data.contract import Candidates
from src.data.frames import select_frames
from src.data.selection import active
from src.errors import DataError
from tests.data.test_selection import labelled_images

NO_RADIUS = {"min_gap_frames": 0, "feature_radius_quantile": 0.0}


def line_of_frames(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frame numbers 0..n-1 and features that change smoothly over time (neighbours look alike)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    features = np.stack([np.sin(t / 7), np.cos(t / 11), t / n], axis=1)
    return np.arange(n), features + rng.normal(0, 1e-3, features.shape)


def test_active_provides_both_contracts_with_their_signatures():
    assert "active" in selection.STRATEGIES and active.NAME == "active"
    assert isinstance(active, contract.FrameSelection)
    assert isinstance(active, contract.RoundSelection)
    assert not isinstance(selection.module("kmeans"), contract.RoundSelection)
    declared = list(inspect.signature(contract.RoundSelection.next_round).parameters)[1:]
    assert list(inspect.signature(active.next_round).parameters) == declared
    assert selection.strategy(OmegaConf.create({"strategy": "active"})) is active


def test_rank_is_kmeans_rank():
    features = np.random.default_rng(11).random((25, 6))
    assert active.rank(features, 7, 5).tolist() == [4, 14, 23, 20, 7, 10, 17]  # kmeans' own


def test_highest_expected_error_first_without_radii():
    frames, features = line_of_frames(30)
    error = np.zeros(30)
    error[[3, 17, 25]] = [0.5, 0.9, 0.7]
    picked = active.next_round(Candidates(features, frames, error), [10], [], 4, 0, NO_RADIUS)
    assert picked.tolist() == [10, 17, 25, 3]


def test_time_radius_passes_over_neighbours_of_one_bad_moment():
    frames, features = line_of_frames(60)
    error = np.exp(-0.5 * ((frames - 30) / 3.0) ** 2)  # one bad moment around frame 30
    error[5] = 0.2
    settings = {"min_gap_frames": 10, "feature_radius_quantile": 0.0}
    picked = active.next_round(Candidates(features, frames, error), [50], [], 3, 0, settings)
    assert picked.tolist() == [50, 30, 5]  # not 29 or 31, and not within 10 of 50
    crowded = active.next_round(Candidates(features, frames, error), [50], [], 3, 0, NO_RADIUS)
    assert crowded.tolist() == [50, 30, 29] or crowded.tolist() == [50, 30, 31]


def test_feature_radius_passes_over_frames_that_look_alike():
    frames = np.arange(6) * 100  # far apart in time
    features = np.array([[0, 0], [0.01, 0], [5, 5], [10, 0], [0, 10], [10.01, 0]], float)
    error = np.array([0.9, 0.8, 0.1, 0.7, 0.2, 0.6])
    settings = {"min_gap_frames": 0, "feature_radius_quantile": 0.2}
    picked = active.next_round(Candidates(features, frames, error), [], [], 3, 0, settings)
    assert picked.tolist() == [0, 300, 400]  # 100 looks like 0, 500 like 300
    assert active.next_round(
        Candidates(features, frames, error), [], [], 3, 0, NO_RADIUS
    ).tolist() == [
        0,
        100,
        300,
    ]


def test_radii_relax_until_the_budget_is_met():
    frames, features = line_of_frames(12)
    error = np.linspace(0, 1, 12)
    settings = {"min_gap_frames": 100, "feature_radius_quantile": 0.9}
    picked = active.next_round(Candidates(features, frames, error), [0], [], 5, 0, settings)
    assert len(picked) == 5 and picked[0] == 0 and len(set(picked.tolist())) == 5
    assert picked[1] == 11  # the highest error first, then the rest as radii relax


def test_excluded_and_labelled_frames_are_never_chosen_and_nan_comes_last():
    frames, features = line_of_frames(8)
    error = np.array([np.nan, 0.9, 0.8, 0.7, np.nan, 0.6, 0.5, 0.4])
    picked = active.next_round(Candidates(features, frames, error), [2], [1, 3], 8, 0, NO_RADIUS)
    assert picked.tolist()[:5] == [2, 5, 6, 7, 0] or picked.tolist()[:5] == [2, 5, 6, 7, 4]
    assert set(picked.tolist()) == {0, 2, 4, 5, 6, 7}  # 1 and 3 (test frames) never


def test_rounds_are_nested_and_seeded():
    frames, features = line_of_frames(200, seed=1)
    error = np.random.default_rng(2).random(200).round(1)  # many ties: the seed breaks them
    settings = {"min_gap_frames": 5, "feature_radius_quantile": 0.05}
    rounds = [[7]]
    for budget in (2, 6, 10, 20):
        rounds.append(
            active.next_round(
                Candidates(features, frames, error), rounds[-1], [9], budget, 3, settings
            )
        )
        assert rounds[-1][: len(rounds[-2])].tolist() == list(rounds[-2])
        assert len(rounds[-1]) == budget
    again = active.next_round(Candidates(features, frames, error), [7], [9], 20, 3, settings)
    other_seed = active.next_round(Candidates(features, frames, error), [7], [9], 20, 4, settings)
    assert (
        again.tolist()
        == active.next_round(
            Candidates(features, frames, error), [7], [9], 20, 3, settings
        ).tolist()
    )
    assert again.tolist() != other_seed.tolist()


def test_bad_budget_labels_and_settings_are_refused():
    frames, features = line_of_frames(5)
    error = np.zeros(5)
    with pytest.raises(ValueError, match="below the 2 labelled"):
        active.next_round(Candidates(features, frames, error), [0, 1], [], 1, 0, NO_RADIUS)
    with pytest.raises(DataError) as bad:
        active.next_round(Candidates(features, frames, error), [], [], 2, 0, {"min_gap_frames": -1})
    assert str(bad.value) == (
        "frames.min_gap_frames=-1 must be an integer >= 0 (conf/frames/active.yaml)."
    )
    with pytest.raises(DataError, match=r"frames.feature_radius_quantile=1.5 must lie in \[0, 1\)"):
        active.next_round(
            Candidates(features, frames, error), [], [], 2, 0, {"feature_radius_quantile": 1.5}
        )


FRAMES_CFG = dict(
    max_train_frames_per_video=5,
    test_fraction=0.3,
    generalisation_frames_per_video=2,
    max_frames_for_clustering=3000,
    features=dict(width_px=8, height_px=6),
    seed=3,
)


def test_a_prepared_active_selection_is_the_kmeans_selection(tmp_path):
    dataset, split = labelled_images(tmp_path)
    kmeans = select_frames(dataset, split, OmegaConf.create(FRAMES_CFG))
    chosen = select_frames(
        dataset, split, OmegaConf.create(FRAMES_CFG | {"strategy": "active"} | NO_RADIUS)
    )
    pd.testing.assert_frame_equal(chosen, kmeans)


def test_a_round_keeps_test_and_generalisation_frames_and_starts_from_kmeans_first(tmp_path):
    dataset, split = labelled_images(tmp_path)
    kmeans = select_frames(dataset, split, OmegaConf.create(FRAMES_CFG))
    kmeans["image"] = [
        f"labeled-data/{v}/img{f:03d}.png" for v, f in zip(kmeans.video, kmeans.frame)
    ]
    first = active.round_one(kmeans)
    assert first == {"p1_walk": [10], "p2_walk": [5]}  # train rank 1 of tests/data/test_selection
    tests = set(kmeans.loc[(kmeans.video == "p1_walk") & (kmeans.role == "test"), "frame"])
    frames = np.arange(14)
    error = np.where(np.isin(frames, list(tests)), 9.0, frames / 14)  # test frames look worst
    new = active.next_round(
        Candidates(np.eye(14), frames, error), first["p1_walk"], sorted(tests), 3, 0, NO_RADIUS
    )
    assert new.tolist() == [10, 13, 12]  # test frames 2 and 7 are never chosen
    table = active.round_selection(kmeans, {"p1_walk": new.tolist()})
    fixed = table[table.role != "train"].reset_index(drop=True)
    pd.testing.assert_frame_equal(fixed, kmeans[kmeans.role != "train"].reset_index(drop=True))
    p1 = table[(table.video == "p1_walk") & (table.role == "train")]
    assert p1[["rank", "frame"]].values.tolist() == [[1, 10], [2, 13], [3, 12]]
    assert p1["image"].tolist()[1] == "labeled-data/p1_walk/img013.png"
    p2 = table[(table.video == "p2_walk") & (table.role == "train")].reset_index(drop=True)
    expected_p2 = kmeans[(kmeans.video == "p2_walk") & (kmeans.role == "train")]
    pd.testing.assert_frame_equal(p2, expected_p2.reset_index(drop=True))
    with pytest.raises(ValueError, match="test frames"):
        active.round_selection(kmeans, {"p1_walk": [10, 2]})
