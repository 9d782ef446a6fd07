"""Video tracking predicts exactly what DeepLabCut's own frame-by-frame inference predicts, for every
frame and in the video's order, however the frames are read ahead of the network; frames predicted in
batches come back in their order, the same up to float32 rounding.

A seeded random network (DeepLabCut's resnet_50 model on timm's resnet18, as ``model=resnet_18``; no
training) on a small drawn video whose frames all differ, so that a lost, repeated or swapped frame
changes the predictions.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf

from src.engine import Model
from src.engine import pytorch as engine
from tests.conftest import REPO

BODYPARTS = ["head", "wrist", "hip"]
N_FRAMES = 21  # two whole batches of 8 and a last one of 5


@pytest.fixture(scope="module")
def random_model_and_video(tmp_path_factory) -> tuple[Model, Path]:
    """A seeded random resnet_18 pose model and a 21-frame video of a moving disc."""
    from deeplabcut.pose_estimation_pytorch.config import make_pytorch_pose_config
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    root = tmp_path_factory.mktemp("prefetch")
    project = {
        "Task": "prefetch",
        "scorer": "test",
        "date": "today",
        "multianimalproject": False,
        "identity": False,
        "project_path": str(root),
        "bodyparts": BODYPARTS,
        "uniquebodyparts": [],
        "individuals": ["single"],
        "skeleton": [],
        "video_sets": {},
        "TrainingFraction": [0.95],
        "iteration": 0,
    }
    with warnings.catch_warnings():  # deprecated for PoseConfig.build, which needs a project
        warnings.simplefilter("ignore")
        pose = make_pytorch_pose_config(project, root / engine.POSE_CONFIG, net_type="resnet_50")
    pose = pose.model_dump(mode="json") if hasattr(pose, "model_dump") else dict(pose)
    resnet_18 = OmegaConf.load(REPO / "conf" / "model" / "resnet_18.yaml")
    engine.apply_updates(pose, engine.backbone_updates(resnet_18, pose))
    (root / engine.POSE_CONFIG).write_text(yaml.safe_dump(pose, sort_keys=False))
    torch.manual_seed(0)
    torch.save({"model": PoseModel.build(pose["model"]).state_dict()}, root / "snapshot-last.pt")

    video = root / "disc.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (200, 160))
    for i in range(N_FRAMES):
        frame = np.full((160, 200, 3), 30, np.uint8)
        cv2.circle(frame, (20 + 7 * i, 40 + 4 * i), 14, (255, 190, 90), -1)
        writer.write(frame)
    writer.release()
    return Model(root / engine.POSE_CONFIG, {"last": root / "snapshot-last.pt"}, BODYPARTS), video


def same_predictions(ours: list[dict], reference: list[dict]) -> None:
    """Every frame's predictions byte for byte, in the reference's order."""
    assert len(ours) == len(reference)
    for frame, (mine, theirs) in enumerate(zip(ours, reference, strict=True)):
        assert mine.keys() == theirs.keys(), frame
        for key in theirs:
            assert mine[key].dtype == theirs[key].dtype, (frame, key)
            assert mine[key].tobytes() == theirs[key].tobytes(), (frame, key)


def test_video_tracking_equals_deeplabcuts_sequential_inference_frame_by_frame(
    random_model_and_video,
):
    from deeplabcut.pose_estimation_pytorch.apis.videos import video_inference

    model, video = random_model_and_video
    reference_runner = engine.video_inference_runner(model, "last", 8, "cpu")
    reference_runner.inference_cfg.multithreading.enabled = False  # DeepLabCut's plain loop
    reference = video_inference(str(video), reference_runner)
    assert len(reference) == N_FRAMES
    # every frame predicts something else: a lost, repeated or swapped frame cannot go unseen
    assert len({p["bodyparts"].tobytes() for p in reference}) == N_FRAMES

    runner = engine.video_inference_runner(model, "last", 8, "cpu")
    same_predictions(engine.video_inference(runner, video), reference)
    # one runner tracks every video of an analysis: nothing of the last one may leak into the next
    same_predictions(engine.video_inference(runner, video), reference)


def test_frames_predicted_in_batches_equal_deeplabcuts_one_at_a_time_in_their_order(
    random_model_and_video, tmp_path
):
    from deeplabcut.pose_estimation_pytorch.apis.utils import get_inference_runners

    model, _ = random_model_and_video
    # 11 frames of two sizes, interleaved: batched by size, the poses must come back in this order
    images = []
    for i in range(11):
        width, height = (200, 160) if i % 3 else (120, 96)
        frame = np.full((height, width, 3), 30, np.uint8)
        cv2.circle(frame, (15 + 8 * i, 20 + 5 * i), 12, (255, 190, 90), -1)
        images.append(tmp_path / f"frame{i:02d}.png")
        cv2.imwrite(str(images[-1]), frame)
    # DeepLabCut's defaults: one image per forward pass, read ahead in a thread
    runner, _ = get_inference_runners(
        str(model.pose_config),
        snapshot_path=model.snapshot("last"),
        max_individuals=1,
        device="cpu",
    )
    reference = np.stack([p["bodyparts"][0] for p in runner.inference([str(p) for p in images])])
    assert len({pose.tobytes() for pose in reference}) == len(images)  # a swap would show

    poses = engine.predict(model.pose_config, model.snapshot("last"), images)
    assert engine.PREDICTION_BATCH > 1 and poses.dtype == reference.dtype
    # the same up to float32 rounding: a batch may take another of oneDNN's convolution kernels
    assert np.abs(poses - reference).max() < 1e-3, np.abs(poses - reference).max(axis=(1, 2))
