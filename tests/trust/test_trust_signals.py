"""Signals of src.trust.signals on small synthetic tracks: a planted fault must rank first."""

from __future__ import annotations

import numpy as np
import pytest

from src.trust import signals

BODYPARTS = ["head", "neck", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"]
SKELETON = [
    ["head", "neck"],
    ["neck", "shoulder"],
    ["shoulder", "elbow"],
    ["elbow", "wrist"],
    ["shoulder", "hip"],
    ["hip", "knee"],
    ["knee", "ankle"],
]
BASE = np.array(
    [[0, 0], [0, 8], [4, 10], [10, 12], [16, 12], [4, 30], [5, 42], [6, 54]], dtype=float
)


def smooth_tracks(n_frames: int = 60, seed: int = 0) -> np.ndarray:
    """A body drifting across the image with slowly swinging limbs, (n_frames, 8, 2) px."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, size=(1, len(BASE), 2))
    swing = 1.5 * np.sin(0.2 * t + phase)
    drift = np.stack([0.8 * t[..., 0], 0.3 * t[..., 0]], axis=-1)
    return BASE + 40 + swing + drift


def test_a_planted_jump_ranks_first():
    xy = smooth_tracks()
    xy[30, 4] += [6.0, -5.0]  # the wrist leaves its track for one frame
    jump = signals.jump_px(xy)
    assert np.unravel_index(np.nanargmax(jump), jump.shape) == (30, 4)
    assert jump[30, 4] > 3 * np.nanmax(np.delete(jump[:, 4], 30))


def test_the_body_moving_as_a_whole_is_no_jump():
    xy = smooth_tracks()
    xy[25:] += [30.0, 0.0]  # the camera or the whole body moves 30 px at once
    assert signals.displacement_px(xy)[25].min() > 25  # DeepLabCut's jump quantity sees it
    assert np.nanmax(signals.jump_px(xy)) < 2.0  # ours does not


def test_segment_length_deviation_flags_a_stretched_limb():
    xy = smooth_tracks()
    xy[12, 4] += [12.0, 0.0]  # wrist pulled 12 px further along the forearm
    deviation = signals.segment_length_deviation(xy, BODYPARTS, SKELETON)
    assert set(np.argsort(deviation[12])[-2:]) == {3, 4}  # elbow and wrist, the forearm's ends
    assert np.nanargmax(deviation[:, 4]) == 12
    assert deviation[12, 4] == pytest.approx(18 / 6 - 1, abs=0.3)  # forearm ~6 px -> ~18 px


def training_poses(n: int = 80, seed: int = 1) -> np.ndarray:
    """Plausible poses: two movement modes (arm, leg), small noise, any position, size, rotation."""
    rng = np.random.default_rng(seed)
    arm = np.zeros_like(BASE)
    arm[3:5] = [[0, 4], [0, 9]]
    leg = np.zeros_like(BASE)
    leg[6:8] = [[4, 0], [8, -1]]
    poses = []
    for _ in range(n):
        pose = BASE + rng.normal() * arm + rng.normal() * leg + rng.normal(0, 0.2, BASE.shape)
        angle = rng.uniform(-np.pi, np.pi)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        poses.append(rng.uniform(0.7, 1.4) * pose @ rotation.T + rng.uniform(0, 100, 2))
    return np.stack(poses)


def test_a_pca_of_training_poses_flags_an_implausible_pose():
    model = signals.PosePCA(variance=0.95).fit(training_poses())
    new = training_poses(n=10, seed=7)  # plausible poses it never saw
    new[4, 6] += [0.0, -25.0]  # the knee folded up into the trunk
    error = model.reconstruction_error_px(new)
    assert np.unravel_index(np.nanargmax(error), error.shape) == (4, 6)
    assert np.delete(error, 4, axis=0).max() < 2.0  # plausible poses rebuild within 2 px
    # the fitted subspace survives its JSON form
    again = signals.PosePCA.from_dict(model.to_dict())
    np.testing.assert_allclose(again.reconstruction_error_px(new), error)


def test_model_disagreement_finds_the_disputed_point():
    xy = smooth_tracks(20)
    other = xy.copy()
    other[7, 2] += [0.0, 9.0]
    spread = signals.model_disagreement_px([xy, other, xy])
    assert np.unravel_index(np.argmax(spread), spread.shape) == (7, 2)
    assert spread[7, 2] == pytest.approx(np.sqrt(2) * 3.0)  # RMS distance from the mean of 3
    assert signals.model_disagreement_px([xy, xy]).max() == 0.0
    with pytest.raises(ValueError):
        signals.model_disagreement_px([xy])


def test_dlc_outlier_flags_use_deeplabcuts_defaults():
    xy = smooth_tracks(10)
    likelihood = np.full(xy.shape[:2], 0.9)
    xy[5, 1] += [21.0, 0.0]
    likelihood[3, 2] = 0.005
    flags = signals.dlc_outlier_flags(xy, likelihood)
    assert set(map(tuple, np.argwhere(flags["dlc_jump"]))) == {(5, 1), (6, 1)}
    assert set(map(tuple, np.argwhere(flags["dlc_uncertain"]))) == {(3, 2)}
    np.testing.assert_allclose(signals.low_likelihood(likelihood)[0], 0.1)


def test_video_means_give_every_point_the_videos_mean():
    values = np.array([[0.0, 1.0], [2.0, np.nan]])
    context = signals.video_means({"jump_px": values})
    assert list(context) == ["video_mean_jump_px"]
    np.testing.assert_allclose(context["video_mean_jump_px"], np.full((2, 2), 1.0))


SIDED = ["head", "left_wrist", "right_wrist", "l_knee", "r_knee", "LeftEar", "RightEar"]


def test_mirror_pairs_swap_left_and_right_by_name():
    names = [
        *SIDED,
        *["knee_L", "knee_R", "earLeft", "earRight", "front_left_paw", "front_right_paw"],
        *["leftear", "rightear", "LShoulder", "RShoulder", "leftover", "Lhip", "tail"],
    ]
    mirror = signals.mirror_pairs(names)
    pairs = {names[i]: names[j] for i, j in enumerate(mirror)}
    assert pairs == {
        "head": "head",
        "left_wrist": "right_wrist",
        "right_wrist": "left_wrist",
        "l_knee": "r_knee",
        "r_knee": "l_knee",
        "LeftEar": "RightEar",
        "RightEar": "LeftEar",
        "knee_L": "knee_R",
        "knee_R": "knee_L",
        "earLeft": "earRight",
        "earRight": "earLeft",
        "front_left_paw": "front_right_paw",
        "front_right_paw": "front_left_paw",
        "leftear": "rightear",
        "rightear": "leftear",
        "LShoulder": "RShoulder",
        "RShoulder": "LShoulder",
        "leftover": "leftover",  # no "rightover": not a side
        "Lhip": "Lhip",  # one letter needs a separator or a capitalised word after it
        "tail": "tail",
    }


def blob_model(image: np.ndarray) -> np.ndarray:
    """A "pose model" of two points: the intensity centroid (pixel centres at integer
    coordinates, as DeepLabCut's labels) of the image's left half is ``left_hand``, of its right
    half ``right_hand``, (1, 2, 2) px."""
    half = image.shape[1] // 2
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    points = []
    for columns in (slice(0, half), slice(half, None)):
        weight = image[:, columns]
        points.append([(xs[:, columns] * weight).sum(), (ys[:, columns] * weight).sum()])
        points[-1] = np.asarray(points[-1]) / weight.sum()
    return np.asarray(points)[None]


def test_an_exactly_mirrored_prediction_disagrees_by_zero_px():
    """A frame flipped with OpenCV, tracked by a model that sees it exactly: x maps back as
    width - 1 - x (width - x would leave 1 px everywhere)."""
    cv2 = pytest.importorskip("cv2")
    width, height = 41, 20
    ys, xs = np.mgrid[:height, :width]
    image = np.zeros((height, width))
    for cx, cy in [(7.3, 5.6), (30.2, 12.1)]:  # sub-pixel blobs, one in each half
        image += np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 4.0)
    mirror = signals.mirror_pairs(["left_hand", "right_hand"])
    assert mirror == [1, 0]
    xy, on_flipped = blob_model(image), blob_model(cv2.flip(image, 1))
    np.testing.assert_allclose(
        signals.flip_disagreement_px(xy, on_flipped, width, mirror), 0, atol=1e-6
    )
    np.testing.assert_allclose(
        signals.flip_disagreement_px(xy, on_flipped, width + 1, mirror), 1.0, atol=1e-6
    )


def test_a_planted_flip_disagreement_ranks_first():
    width = 400
    xy = smooth_tracks(30)[:, : len(SIDED)]
    mirror = signals.mirror_pairs(SIDED)
    on_flipped = np.empty_like(xy)
    on_flipped[:, mirror] = np.stack([width - 1 - xy[..., 0], xy[..., 1]], axis=-1)
    on_flipped[12, SIDED.index("left_wrist")] += [5.0, 0.0]  # the right wrist, seen mirrored
    on_flipped[3, 0] = np.nan
    disagreement = signals.flip_disagreement_px(xy, on_flipped, width, mirror)
    assert disagreement.shape == xy.shape[:2]
    assert np.unravel_index(np.nanargmax(disagreement), disagreement.shape) == (
        12,
        SIDED.index("right_wrist"),
    )
    assert disagreement[12, SIDED.index("right_wrist")] == pytest.approx(5.0)
    assert np.isnan(disagreement[3, 0]) and np.isnan(disagreement).sum() == 1
    assert np.nanmax(np.delete(disagreement.ravel(), 12 * len(SIDED) + 2)) < 1e-9
