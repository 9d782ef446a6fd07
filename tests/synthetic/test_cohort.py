"""Tests of the synthetic cohort generator (src/synthetic/) on the tiny configuration."""

import itertools
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir

from src.synthetic.body import BODYPARTS, LOWER, UPPER, make_participant
from src.synthetic.cohort import generate_all, generate_cohort
from src.synthetic.motion import joint_trajectory, simulate_poses
from src.synthetic.settings import Settings, settings

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
COHORTS = ("clinical", "healthy_adults")


def compose_cfg(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def tiny_cfg(data_dir, *overrides):
    return compose_cfg("synthetic=tiny", f"paths.data_dir={data_dir}", *overrides)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Both tiny cohorts, generated once: {name: folder}."""
    cfg = tiny_cfg(tmp_path_factory.mktemp("a"))
    return generate_all(cfg.synthetic)


def _files(folder: Path):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def head_direction(gt: pd.DataFrame) -> np.ndarray:
    """Unit vectors (n_frames, 2) from mid-hips to the head, in image coordinates (y down)."""
    xy = gt.pivot_table(index=["video", "frame"], columns="bodypart", values=["x", "y"])
    d = np.stack(
        [
            xy["x"]["head"] - xy["x"][["left_hip", "right_hip"]].mean(1),
            xy["y"]["head"] - xy["y"][["left_hip", "right_hip"]].mean(1),
        ],
        1,
    )
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def test_layout_and_contents(tiny):
    for name in COHORTS:
        folder, c = tiny[name], compose_cfg("synthetic=tiny").synthetic[name]
        meta = yaml.safe_load((folder / "dataset.yaml").read_text())
        assert list(meta)[:10] == [
            "name",
            "bodyparts",
            "skeleton",
            "fps",
            "width_px",
            "height_px",
            "frames_per_video",
            "cm_per_px",
            "seed",
            "generator_config",
        ]
        assert meta["bodyparts"] == BODYPARTS and meta["name"] == name
        assert all(a in BODYPARTS and b in BODYPARTS for a, b in meta["skeleton"])
        parts = pd.read_csv(folder / "participants.csv")
        assert list(parts.columns[:3]) == ["participant", "video", "session"]
        assert {"dystonia_severity", "choreoathetosis_severity", "height_cm"} <= set(parts.columns)
        assert (
            parts.participant.nunique() == c.n_participants
            and len(parts) == c.n_participants * c.videos_per_participant
        )
        assert parts.video.iloc[0] == "P01_S1"
        gt = pd.read_csv(folder / "ground_truth.csv")
        assert list(gt.columns) == ["video", "frame", "bodypart", "x", "y", "occluded"]
        assert len(gt) == len(parts) * c.frames_per_video * len(BODYPARTS)
        assert not gt.duplicated(["video", "frame", "bodypart"]).any()
        assert set(gt.video) == set(parts.video) and set(gt.frame) == set(range(c.frames_per_video))
        assert gt.x.between(0, c.width_px - 1).all() and gt.y.between(0, c.height_px - 1).all()
        assert set(gt.occluded) <= {0, 1}
        for video in parts.video:
            cap = cv2.VideoCapture(str(folder / "videos" / f"{video}.mp4"))
            frames = []
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(frame)
            assert len(frames) == c.frames_per_video
            assert frames[0].shape == (c.height_px, c.width_px, 3)
            stack = np.stack(frames).astype(float)
            assert stack.std() > 5  # not a constant image
            assert np.abs(stack[-1] - stack[0]).max() > 10  # the body moves
        assert not list(folder.parent.glob(f".{name}.*"))  # no temporary folders left behind


def test_same_seed_same_bytes_other_seed_other_truth(tiny, tmp_path):
    again = generate_all(tiny_cfg(tmp_path / "b").synthetic)
    for name in COHORTS:
        files = _files(tiny[name])
        assert files == _files(again[name]) and len(files) == 3 + 6
        for rel in files:  # includes the mp4 videos: the encoder is deterministic too
            assert (tiny[name] / rel).read_bytes() == (again[name] / rel).read_bytes(), rel
    other = generate_cohort(tiny_cfg(tmp_path / "c", "seed=7").synthetic.clinical, tmp_path / "c")
    a, b = (
        pd.read_csv(tiny["clinical"] / "ground_truth.csv"),
        pd.read_csv(other / "ground_truth.csv"),
    )
    assert a.shape == b.shape and not np.allclose(a[["x", "y"]], b[["x", "y"]])


def test_adding_a_participant_keeps_the_others():
    cfg = settings(compose_cfg("synthetic=tiny").synthetic.clinical)
    more = Settings(cfg, n_participants=cfg.n_participants + 1)
    np.testing.assert_array_equal(simulate_poses(cfg, 1, 1), simulate_poses(more, 1, 1))


def test_occlusions_occur(tmp_path):
    cfg = tiny_cfg(
        tmp_path, "synthetic.clinical.frames_per_video=60", "synthetic.clinical.subframes=1"
    )
    gt = pd.read_csv(generate_cohort(cfg.synthetic.clinical, tmp_path) / "ground_truth.csv")
    assert 0 < gt.occluded.mean() < 0.3


def _segments_cross(p1, p2, q1, q2):
    def side(a, b, c):  # its sign tells on which side of the line a -> b the point c lies
        return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])

    return (side(p1, p2, q1) * side(p1, p2, q2) < 0) & (side(q1, q2, p1) * side(q1, q2, p2) < 0)


def test_limbs_cross_in_dyskinetic_movement():
    cfg = compose_cfg().synthetic.clinical  # the default cohort's movement; poses only
    i = {b: k for k, b in enumerate(BODYPARTS)}
    limbs = [
        [(f"{s}_{a}", f"{s}_{b}") for a, b in pairs]
        for s in ("right", "left")
        for pairs in (
            [("shoulder", "elbow"), ("elbow", "wrist")],
            [("hip", "knee"), ("knee", "ankle")],
        )
    ]
    crossing, frames = 0, 0
    for p, s in itertools.product(range(6), range(2)):
        kp = simulate_poses(cfg, p, s)
        hit = np.zeros(len(kp), bool)
        for limb_a, limb_b in itertools.combinations(limbs, 2):
            for (a0, a1), (b0, b1) in itertools.product(limb_a, limb_b):
                hit |= _segments_cross(kp[:, i[a0]], kp[:, i[a1]], kp[:, i[b0]], kp[:, i[b1]])
        crossing, frames = crossing + hit.sum(), frames + len(kp)
    assert crossing > 0.005 * frames


def test_joint_angles_stay_within_limits():
    cfg = settings(compose_cfg().synthetic.clinical)
    body = make_participant(cfg, 0)
    q = joint_trajectory(np.random.default_rng(0), np.linspace(0, 30, 3000), body, cfg)
    assert (q >= LOWER).all() and (q <= UPPER).all()
    assert (q.std(0) > 0).all()  # every joint moves


def test_healthy_adults_differ_from_clinical(tiny):
    clinical = head_direction(pd.read_csv(tiny["clinical"] / "ground_truth.csv"))
    healthy = head_direction(pd.read_csv(tiny["healthy_adults"] / "ground_truth.csv"))
    assert (-healthy[:, 1]).mean() > 0.9  # upright: head above the hips in the image
    assert np.abs(clinical[:, 1]).mean() < 0.6  # lying along the mat: head to the left or right


def test_idempotent_and_regenerates_on_change(tmp_path):
    cfg = tiny_cfg(tmp_path).synthetic.clinical
    folder = generate_cohort(cfg, tmp_path)
    files = [folder / "dataset.yaml", folder / "ground_truth.csv", folder / "videos" / "P01_S1.mp4"]
    before = [f.stat().st_mtime_ns for f in files]
    assert generate_cohort(cfg, tmp_path) == folder
    assert [f.stat().st_mtime_ns for f in files] == before
    changed = tiny_cfg(tmp_path, "synthetic.clinical.frames_per_video=5").synthetic.clinical
    assert generate_cohort(changed, tmp_path) == folder
    assert [f.stat().st_mtime_ns for f in files] != before
    assert yaml.safe_load((folder / "dataset.yaml").read_text())["frames_per_video"] == 5
    assert pd.read_csv(folder / "ground_truth.csv").frame.max() == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clinical"]  # no temporary folders left
