"""The two splits (by participant; by held-out blocks of frames, split=frames) and ranked k-means frame
selection."""

from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from src.checks import check_config
from src.data.dlc_project import load_dlc_project
from src.data.frames import (
    TEST,
    TRAIN,
    candidate_frames,
    n_test_frames_per_video,
    rank_kmeans,
    select_frames,
)
from src.data.preparation import prepare
from src.data.split import (
    DEVELOPMENT,
    FRAME_COLUMNS,
    GENERALISATION,
    GENERALISATION_MEANING,
    block_size,
    frame_sets,
    split_dataset,
    split_frames,
    split_participants,
)
from src.errors import ConfigError, DataError
from tests.conftest import REACHING, REPO, compose_config, tree_checksums


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


def test_split_of_one_participant_names_the_split_that_works():
    with pytest.raises(DataError) as error:
        split_participants(_videos(1), 0.5, seed=0)
    assert "has 1 participant(s) (P01); a participant split needs at least 2 (one per set)" in str(
        error.value
    )
    assert "use split=frames (held-out blocks of frames per video" in str(error.value)
    assert "generalisation_fraction" not in str(error.value)  # no fraction splits one participant


@pytest.mark.parametrize(
    "n_participants, fraction, between",
    [(2, 0.2, "from 0.26 to 0.74"), (4, 0.9, "from 0.13 to 0.87")],
)
def test_split_refuses_a_fraction_that_empties_a_set(n_participants, fraction, between):
    with pytest.raises(
        DataError,
        match=rf"{n_participants} participant\(s\) cannot be split.*{between}.*split=frames",
    ):
        split_participants(_videos(n_participants), fraction, seed=0)
    for named in map(float, between.split()[1::2]):  # the fractions the message names work
        assert split_participants(_videos(n_participants), named, seed=0)["set"].nunique() == 2


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


# ----------------------------------------------------------------------------- split=frames


def _candidates(n_videos: int = 12) -> dict[str, np.ndarray]:
    """Per video, sorted distinct frame numbers: dense (every frame) and sparse (labelled frames)."""
    rng = np.random.default_rng(0)
    candidates = {}
    for i in range(n_videos):
        n = int(rng.integers(3, 80))
        dense = i % 2 == 0
        frames = np.arange(n) if dense else np.sort(rng.choice(1000, size=n, replace=False))
        candidates[f"P01_S{i}"] = frames
    return candidates


def _one_participant(candidates: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [dict(participant="P01", video=v, session=v.split("_")[1]) for v in candidates]
    )


def _blocks(split: pd.DataFrame) -> dict[str, tuple[int, int]]:
    blocks = split[split["set"] == GENERALISATION]
    assert blocks["video"].is_unique  # one block per video
    return {r.video: (r.first_frame, r.last_frame) for r in blocks.itertuples()}


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_frames_split_holds_out_one_contiguous_block_per_video(fraction):
    candidates = _candidates()
    split = split_frames(_one_participant(candidates), candidates, fraction, seed=3)
    assert list(split.columns) == FRAME_COLUMNS
    blocks = _blocks(split)
    assert set(blocks) == set(candidates)  # every video has a block
    ends = []
    for video, frames in candidates.items():
        rows = split[split["video"] == video]
        first, last = blocks[video]
        inside = frames[(frames >= first) & (frames <= last)]
        # contiguous: the block is a run of consecutive candidates, of the size the fraction asks
        assert (
            len(inside)
            == block_size(len(frames), fraction)
            == max(1, round(len(frames) * fraction))
        )
        start = int(np.flatnonzero(frames == first)[0])
        np.testing.assert_array_equal(inside, frames[start : start + len(inside)])
        # the ranges cover every candidate once, and development keeps at least 2 (train, test)
        covered = [
            f for r in rows.itertuples() for f in frames if r.first_frame <= f <= r.last_frame
        ]
        assert sorted(covered) == list(frames) and rows["n_frames"].sum() == len(frames)
        assert len(frames) - len(inside) >= 2
        ends.append(last == frames[-1])
        sets = frame_sets(split, video, frames)
        assert (sets == GENERALISATION).sum() == len(inside)
    assert not all(ends)  # the block is not always the end of the video


def test_frames_split_is_seeded_per_video():
    candidates = _candidates()
    videos = _one_participant(candidates)
    split = split_frames(videos, candidates, 0.2, seed=3)
    pd.testing.assert_frame_equal(split, split_frames(videos, candidates, 0.2, seed=3))
    other = _blocks(split_frames(videos, candidates, 0.2, seed=4))
    assert other != _blocks(split)
    # a video's block depends on the seed and its name only, not on the other videos
    alone = {"P01_S3": candidates["P01_S3"]}
    assert (
        _blocks(split_frames(_one_participant(alone), alone, 0.2, seed=3))["P01_S3"]
        == (_blocks(split)["P01_S3"])
    )


def test_frames_split_refuses_a_video_with_too_few_frames():
    candidates = {"P01_S1": np.arange(10), "P01_S2": np.array([4, 9])}
    with pytest.raises(
        DataError, match=r"video P01_S2 has 2 candidate frame\(s\); split=frames holds out 1"
    ):
        split_frames(_one_participant(candidates), candidates, 0.2, seed=0)


def test_frames_split_of_a_real_project_selects_train_and_test_outside_the_block(tmp_path):
    dataset = load_dlc_project(REACHING)
    cfg = compose_config(tmp_path, "split=frames")
    check_config(cfg, "split")
    split = split_dataset(dataset.videos, cfg.split, lambda v: candidate_frames(dataset, v))
    labelled = candidate_frames(dataset, "reachingvideo1")
    assert len(labelled) == 55
    ((first, last),) = _blocks(split).values()
    in_block = labelled[(labelled >= first) & (labelled <= last)]
    assert len(in_block) == round(55 * 0.2) == 11

    selection = select_frames(dataset, split, cfg.frames, cfg.split)
    roles = selection.groupby("role")["frame"].apply(set).to_dict()
    assert set(roles) == {TRAIN, TEST, GENERALISATION}
    assert roles[GENERALISATION] == set(in_block)  # generalisation_frames: all
    assert not (roles[TRAIN] | roles[TEST]) & set(in_block)  # never trained or tested on
    assert len(roles[TRAIN]) == 20 and len(roles[TEST]) == 1
    assert selection["frame"].is_unique
    assert (selection.loc[selection["role"] == GENERALISATION, "set"] == GENERALISATION).all()
    assert (selection.loc[selection["role"] != GENERALISATION, "set"] == DEVELOPMENT).all()
    pd.testing.assert_frame_equal(selection, select_frames(dataset, split, cfg.frames, cfg.split))

    ranked = compose_config(
        tmp_path,
        "split=frames",
        "split.generalisation_frames=ranked",
        "frames.generalisation_frames_per_video=3",
    )
    selection = select_frames(dataset, split, ranked.frames, ranked.split)
    held_out = selection.loc[selection["role"] == GENERALISATION]
    assert len(held_out) == 3 and set(held_out["frame"]) <= set(in_block)
    assert sorted(held_out["rank"]) == [1, 2, 3]


def test_frames_split_of_unlabelled_videos_holds_out_frames_of_the_video(tmp_path):
    """data=videos: candidates are every frame of the video; the block is a range of them."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("mouse_1", "mouse_2"):
        writer = cv2.VideoWriter(
            str(folder / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 32)
        )
        for _ in range(30):
            writer.write(rng.integers(0, 255, size=(32, 48, 3), dtype=np.uint8))
        writer.release()
    cfg = compose_config(
        tmp_path,
        "data=videos",
        f"data.root={folder}",
        "data.name=mice",
        "split=frames",
        "split.generalisation_frames=ranked",
        "frames.generalisation_frames_per_video=2",
        "frames.max_train_frames_per_video=4",
    )
    out = prepare(cfg)
    split = pd.read_csv(out / "split.csv")
    assert set(split["participant"]) == {"mouse"}  # one participant: only split=frames can split it
    blocks = _blocks(split)
    assert {last - first + 1 for first, last in blocks.values()} == {6}  # 20 % of 30 frames
    selection = pd.read_csv(out / "selection.csv")
    for video, (first, last) in blocks.items():
        rows = selection[selection["video"] == video]
        inside = rows["frame"].between(first, last)
        assert (rows.loc[inside, "role"] == GENERALISATION).all() and inside.sum() == 2
        assert set(rows.loc[~inside, "role"]) == {TRAIN, TEST}
    facts = yaml.safe_load((out / "dataset.yaml").read_text(encoding="utf-8"))
    assert facts["frames_per_video"]["mouse_1"]["generalisation"] == {"asked": 2, "used": 2}


def test_split_kind_and_block_are_checked(tmp_path):
    for override, words in [
        (
            "split.kind=videos",
            "split.kind='videos' is not allowed: it must be participants | frames",
        ),
        ("split.block=random", "split.block='random' is not allowed: it must be contiguous"),
        ("split.generalisation_frames=some", "it must be all | ranked"),
    ]:
        with pytest.raises(ConfigError, match=words):
            check_config(compose_config(tmp_path, "split=frames", override), "split")
    check_config(compose_config(tmp_path), "split")  # the default: kind participants
    assert compose_config(tmp_path).split.kind == "participants"


def test_prepare_entry_point_on_a_one_video_deeplabcut_project(tmp_path):
    """The real `python -m src.prepare` on DeepLabCut's own example project (one video, one mouse), read in place."""
    before = tree_checksums(REACHING)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.prepare",
            "data=dlc_project",
            f"data.root={REACHING}",
            "split=frames",
            f"paths.data_dir={tmp_path / 'data'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"},
    )
    assert result.returncode == 0, result.stderr
    assert tree_checksums(REACHING) == before  # the project was only read

    out = tmp_path / "data" / "prepared" / "dlc_project"
    split = pd.read_csv(out / "split.csv")
    assert list(split.columns) == FRAME_COLUMNS
    ((first, last),) = _blocks(split).values()
    selection = pd.read_csv(out / "selection.csv")
    assert set(selection["role"]) == {TRAIN, TEST, GENERALISATION}
    generalisation = selection[selection["role"] == GENERALISATION]
    trained = selection[selection["role"] != GENERALISATION]
    assert generalisation["frame"].between(first, last).all()
    assert not trained["frame"].between(first, last).any()
    assert not set(generalisation["frame"]) & set(
        trained["frame"]
    )  # no generalisation frame is trained on
    labels = pd.read_csv(out / "labels.csv")
    assert set(labels["frame"]) == set(selection["frame"])

    facts = yaml.safe_load((out / "dataset.yaml").read_text(encoding="utf-8"))
    assert facts["split_kind"] == "frames"
    assert facts["generalisation_meaning"] == GENERALISATION_MEANING["frames"]
    assert facts["generalisation_meaning"].startswith(
        "unseen frames of seen subjects, not unseen participants"
    )
    assert facts["frames_per_video"]["reachingvideo1"]["generalisation"] == {
        "asked": 11,
        "used": 11,
    }
    assert facts["participants"] == {"development": 1, "generalisation": 1}
