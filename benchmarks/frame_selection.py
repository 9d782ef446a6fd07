"""Frame selection: ours (src/data/frames.py) against DeepLabCut's ``extract_frames(algo="kmeans")``.

Both do the same job on the same video: pick N frames by k-means and write them as PNGs into
``labeled-data/<video>/``. We time that job (median of several runs, excluding imports) and
measure how diverse the picked frames are:

* pose spread: mean pairwise distance between the ground-truth poses of the picked frames
  (body-centred, px per point; higher = more varied postures to learn from);
* pose coverage: mean distance from every frame's pose to the nearest picked pose (px per point;
  lower = the picks represent the whole video better). This is what k-means frame selection is
  for ("cover the variety of postures"), so it is the headline diversity figure;
* image spread: mean pairwise distance between the picked frames' 32 x 24 grey thumbnails.

Frames drawn uniformly at random (untimed) are listed as a reference point.

Run after ``python -m src.cohort`` (default cohort):
    .venv/bin/python -m benchmarks.frame_selection --videos 6 --repeats 5
Writes benchmarks/results/frame_selection.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from scipy.spatial.distance import cdist, pdist

from src.data.frames import select_frames, video_features
from src.data.preparation import write_frame_images
from src.data.split import DEVELOPMENT
from src.data.synthetic import load_synthetic

REPO = Path(__file__).resolve().parents[1]


def ours(dataset, video_row, frames_cfg, workdir: Path) -> list[int]:
    split = pd.DataFrame([video_row]).assign(set=DEVELOPMENT)
    selection = select_frames(dataset, split, frames_cfg)
    write_frame_images(dataset, selection, workdir / "labeled-data")
    return sorted(selection["frame"].tolist())


def deeplabcuts(config_path: Path, video: str) -> list[int]:
    import deeplabcut

    shutil.rmtree(config_path.parent / "labeled-data" / video, ignore_errors=True)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        deeplabcut.extract_frames(
            str(config_path), mode="automatic", algo="kmeans", userfeedback=False, crop=False
        )
    names = (config_path.parent / "labeled-data" / video).glob("img*.png")
    return sorted(int(p.stem[3:]) for p in names)


def diversity(frames: list[int], poses: np.ndarray, thumbnails: np.ndarray) -> dict[str, float]:
    n_points = poses.shape[1] // 2
    return {
        "pose_spread_px": float(pdist(poses[frames]).mean() / np.sqrt(n_points)),
        "pose_coverage_px": float(
            cdist(poses, poses[frames]).min(axis=1).mean() / np.sqrt(n_points)
        ),
        "image_spread": float(pdist(thumbnails[frames]).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=6, help="videos of the default cohort to use")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method and video")
    args = parser.parse_args()

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config")
    dataset = load_synthetic(REPO / cfg.data.root)
    n_frames = (
        int(cfg.frames.max_train_frames_per_video) + 1
    )  # what src.prepare picks per development video
    truth = pd.read_csv(REPO / cfg.data.root / "ground_truth.csv")

    import deeplabcut  # imported before timing starts

    rows = []
    for video_row in dataset.videos.head(args.videos).to_dict("records"):
        video = video_row["video"]
        xy = truth[truth["video"] == video].pivot(
            index="frame", columns="bodypart", values=["x", "y"]
        )
        poses = xy.to_numpy().reshape(len(xy), 2, -1)
        poses = (poses - poses.mean(axis=2, keepdims=True)).reshape(len(xy), -1)  # body-centred
        _, thumbnails = video_features(video_row["path"], (32, 24), 10**6)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            with contextlib.redirect_stdout(io.StringIO()):
                config_path = Path(
                    deeplabcut.create_new_project(
                        "bench",
                        "bench",
                        [video_row["path"]],
                        working_directory=str(tmp),
                        copy_videos=False,
                    )
                )
            deeplabcut.auxiliaryfunctions.edit_config(
                str(config_path), {"numframes2pick": n_frames}
            )
            for method, run in (
                ("ours", partial(ours, dataset, video_row, cfg.frames, tmp / "ours")),
                ("deeplabcut", partial(deeplabcuts, config_path, video)),
            ):
                for repeat in range(args.repeats):
                    started = time.perf_counter()
                    frames = run()
                    seconds = time.perf_counter() - started
                    rows.append(
                        dict(
                            video=video,
                            method=method,
                            repeat=repeat,
                            seconds=seconds,
                            n_frames=len(frames),
                            **diversity(frames, poses, thumbnails),
                        )
                    )
        rng = np.random.default_rng(0)
        for repeat in range(args.repeats):
            frames = sorted(rng.choice(len(poses), n_frames, replace=False))
            rows.append(
                dict(
                    video=video,
                    method="uniform random (reference)",
                    repeat=repeat,
                    seconds=np.nan,
                    n_frames=n_frames,
                    **diversity(frames, poses, thumbnails),
                )
            )
    results = pd.DataFrame(rows)
    summary = results.groupby("method").median(numeric_only=True).drop(columns="repeat")
    ratio = summary.loc["deeplabcut", "seconds"] / summary.loc["ours", "seconds"]
    text = (
        f"# Frame selection benchmark\n\n{args.videos} videos of the default cohort "
        f"({cfg.synthetic.clinical.frames_per_video} frames, {cfg.synthetic.clinical.width_px}x"
        f"{cfg.synthetic.clinical.height_px} px), {n_frames} frames picked per video, {args.repeats} runs "
        f"per method and video; medians over all runs.\n\n{summary.to_markdown(floatfmt='.3f')}\n\n"
        f"Speed-up (DeepLabCut time / our time): **{ratio:.2f}x**.\n"
    )
    out = REPO / "benchmarks" / "results" / "frame_selection.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
