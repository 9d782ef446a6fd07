"""Video analysis throughput of src.analyze against DeepLabCut's analyze_videos, same model, video.

    .venv/bin/python -m benchmarks.analyze --frames 20 \\
        --video data/synthetic/clinical/videos/P02_S1.mp4 --repeats 5

The model is the best FINISHED run of condition ``--frames`` in the repository's MLflow store (its
artifact ``model/``). DeepLabCut needs a project: one is written in a temporary folder around the
same snapshot (config.yaml, dlc-models-pytorch/.../train/pytorch_config.yaml + snapshot,
test/pose_cfg.yaml). Two timings:

* analysis: in one process, after imports, alternating; DeepLabCut's ``analyze_videos(config,
  [video], destfolder=tmp, batch_size=8)`` against src.analyze's
  ``engine.video_inference_runner`` + ``track_video`` (the same work: build the runner, run the
  video, write H5 + CSV). Frames per second, median of the repeats.
* whole command: ``python -m src.analyze`` (model download, tracking, result movie, features,
  plots, a new MLflow run in a temporary store) against a ``python -c`` that runs
  ``deeplabcut.analyze_videos`` alone.

Writes benchmarks/results/analyze.md. Nothing is written beside the video or into the repository's
store.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks import REPO, timed
from src.analysis.model_choice import download_model_and_skeleton, find_model_run
from src.analysis.per_video import Tracker, track_video
from src.analysis.videos import VideoInfo, read_video_info
from src.engine import pytorch as engine


def dlc_project(model_folder: Path, root: Path, video: Path) -> Path:
    """A DeepLabCut project around the model's snapshot; returns its config.yaml."""
    from deeplabcut.core.engine import Engine
    from deeplabcut.utils.auxiliaryfunctions import get_model_folder, read_plainconfig

    root.mkdir(parents=True)
    project_cfg = yaml.safe_load((model_folder / "project_config.yaml").read_text())
    project_cfg["project_path"] = str(root)
    project_cfg["video_sets"] = {str(video): {"crop": "0, 200, 0, 160"}}
    project_cfg["snapshotindex"] = -1
    project_cfg["batch_size"] = 8
    (root / "config.yaml").write_text(yaml.safe_dump(project_cfg, sort_keys=False))
    folder = root / get_model_folder(
        project_cfg["TrainingFraction"][0], 1, project_cfg, engine=Engine.PYTORCH
    )
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    pose_config = read_plainconfig(str(model_folder / "pytorch_config.yaml"))
    pose_config["metadata"]["project_path"] = str(root)
    (folder / "train" / "pytorch_config.yaml").write_text(
        yaml.safe_dump(pose_config, sort_keys=False)
    )
    which = "best" if (model_folder / "snapshot-best.pt").is_file() else "last"
    shutil.copyfile(model_folder / f"snapshot-{which}.pt", folder / "train" / "snapshot-001.pt")
    bodyparts = pose_config["metadata"]["bodyparts"]
    (folder / "test" / "pose_cfg.yaml").write_text(
        yaml.safe_dump(
            {
                "dataset": str(root),
                "num_joints": len(bodyparts),
                "all_joints": [[i] for i in range(len(bodyparts))],
                "all_joints_names": bodyparts,
            },
            sort_keys=False,
        )
    )
    return root / "config.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--frames", type=int, default=20, help="labelled-frames condition whose best run is used"
    )
    parser.add_argument("--metric", default="mae_generalisation_px")
    parser.add_argument(
        "--video", type=Path, default=REPO / "data/synthetic/clinical/videos/P02_S1.mp4"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="repeats of the in-process analysis timing"
    )
    parser.add_argument(
        "--command-repeats", type=int, default=3, help="repeats of the whole-command timing"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--tracking-uri",
        default=f"sqlite:///{REPO / 'mlruns' / 'mlflow.db'}",
        help="MLflow store holding the trained model (default: the repository's)",
    )
    args = parser.parse_args()

    import deeplabcut
    import mlflow
    from omegaconf import OmegaConf

    video = args.video.resolve()
    info: VideoInfo = read_video_info(video)
    mlflow.set_tracking_uri(args.tracking_uri)
    experiment = mlflow.tracking.MlflowClient().get_experiment_by_name("synthetic_clinical")
    model_run = find_model_run(
        OmegaConf.create({"run_id": None, "labelled_frames": args.frames, "metric": args.metric}),
        experiment.experiment_id,
    )
    work = Path(tempfile.mkdtemp(prefix="bench-analyze-"))
    model, _ = download_model_and_skeleton(model_run, work / "download")
    model_folder = model.pose_config.parent
    config = dlc_project(model_folder, work / "project", video)
    scorer = f"DLC_bench_{model_run.model_run_id[:8]}"
    pose_config = engine.read_pose_config(model.pose_config)

    def ours() -> float:
        out = work / "ours"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        start = time.perf_counter()
        runner = engine.video_inference_runner(model, "best", args.batch_size, "cpu")
        table, _ = track_video(Tracker(runner, pose_config, scorer), info, out)
        seconds = time.perf_counter() - start
        assert len(table) == info.n_frames
        return info.n_frames / seconds

    def theirs() -> float:
        out = work / "theirs"
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        deeplabcut.analyze_videos(
            str(config),
            [str(video)],
            destfolder=str(out),
            batch_size=args.batch_size,
            device="cpu",
            save_as_csv=True,
            overwrite=True,
        )
        seconds = time.perf_counter() - start
        assert list(out.glob("*.h5"))
        return info.n_frames / seconds

    ours(), theirs()  # warm-up: first model load, file caches
    fps = {"src.analyze": [], "deeplabcut.analyze_videos": []}
    for _ in range(args.repeats):
        fps["deeplabcut.analyze_videos"].append(theirs())
        fps["src.analyze"].append(ours())

    # Same predictions: both ran DeepLabCut's runner on the same snapshot and frames.
    import pandas as pd

    (ours_h5,) = (work / "ours").glob("*.h5")
    (theirs_h5,) = (work / "theirs").glob("*.h5")
    max_difference = float(
        abs(pd.read_hdf(ours_h5).to_numpy() - pd.read_hdf(theirs_h5).to_numpy()).max()
    )

    # Whole commands, each a fresh process; src.analyze logs into a temporary store holding a copy of the model run.
    store = work / "store"
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    store_experiment = mlflow.create_experiment(
        "bench", artifact_location=(store / "artifacts").as_uri()
    )
    with mlflow.start_run(
        experiment_id=store_experiment,
        run_name="frames=20",
        tags={"labelled_frames": str(args.frames), "model_source": "trained"},
    ) as run:
        mlflow.log_artifacts(str(model_folder), "model")
    python = sys.executable
    ours_command = [
        python,
        "-m",
        "src.analyze",
        f"analysis.run_id={run.info.run_id}",
        f"analysis.videos=[{video}]",
        f"analysis.output_dir={work / 'command-out'}",
        f"analysis.batch_size={args.batch_size}",
        "analysis.device=cpu",
        f"mlflow.tracking_uri=sqlite:///{store / 'mlflow.db'}",
        "mlflow.experiment=bench",
        f"privacy.key_dir={work / 'privacy'}",
    ]
    theirs_command = [
        python,
        "-c",
        "import deeplabcut; deeplabcut.analyze_videos("
        f"{str(config)!r}, [{str(video)!r}], destfolder={str(work / 'command-theirs')!r}, "
        f"batch_size={args.batch_size}, device='cpu', save_as_csv=True, overwrite=True)",
    ]
    seconds = {"src.analyze": [], "deeplabcut.analyze_videos": []}
    for _ in range(args.command_repeats):
        seconds["deeplabcut.analyze_videos"].append(timed(theirs_command))
        seconds["src.analyze"].append(timed(ours_command))
    shutil.rmtree(work, ignore_errors=True)

    median_fps = {k: statistics.median(v) for k, v in fps.items()}
    median_s = {k: statistics.median(v) for k, v in seconds.items()}
    ratio = median_fps["src.analyze"] / median_fps["deeplabcut.analyze_videos"]
    lines = [
        "# Video analysis throughput: src.analyze vs DeepLabCut's analyze_videos",
        "",
        f"`.venv/bin/python -m benchmarks.analyze --frames {args.frames} --video {args.video} --repeats {args.repeats} "
        f"--command-repeats {args.command_repeats}`; model: MLflow run `{model_run.run_id}` (weights of "
        f"`{model_run.model_run_id}`), best of condition {args.frames} by lowest `{args.metric}`; video "
        f"{info.n_frames} frames of {info.width} x {info.height} px; batch size {args.batch_size}, CPU "
        "(2 cores, shared with other jobs while measured). Medians.",
        "",
        "Analysis (build DeepLabCut's inference runner, run the video, write H5 + CSV), in one process after imports:",
        "",
        "| method | frames/s (median) | all repeats |",
        "|---|---:|---|",
        *[
            f"| {k} | {median_fps[k]:.1f} | {', '.join(f'{x:.1f}' for x in v)} |"
            for k, v in fps.items()
        ],
        "",
        f"Ratio src.analyze / analyze_videos: **{ratio:.2f}** (1 = as fast; above 1 = faster). Largest difference "
        f"between the two H5 files: {max_difference:.2g} (same predictions).",
        "",
        "Whole command, a fresh process each (imports included; src.analyze also downloads the model from MLflow, "
        "writes the result movie, features, plots and logs a new MLflow run; analyze_videos only tracks):",
        "",
        "| command | seconds (median) | all repeats |",
        "|---|---:|---|",
        *[
            f"| {k} | {median_s[k]:.1f} | {', '.join(f'{x:.1f}' for x in v)} |"
            for k, v in seconds.items()
        ],
        "",
    ]
    target = REPO / "benchmarks" / "results" / "analyze.md"
    existing = target.read_text() if target.is_file() else ""
    marker = "\n## Reading the figures"  # the hand-written sections below the figures are kept
    kept = existing[existing.index(marker) :] if marker in existing else ""
    target.write_text("\n".join(lines) + kept)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
