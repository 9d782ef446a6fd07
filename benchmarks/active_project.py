"""Active against k-means frame selection on a real DeepLabCut project with a labelled pool
(``--project``, e.g. ../shared/fixtures/dlc-reaching: 55 labelled frames of one video, one
animal), with ``split=frames``: MAE on the project's held-out frames against labelled frames per
video, for one or more selection seeds. benchmarks.active is the same comparison on the embedded
cohort; this module reuses its study runner, round folder and verdicts.

    flock /tmp/cpu-heavy.lock .venv/bin/python -m benchmarks.active_project \\
        --project ../shared/fixtures/dlc-reaching --work /tmp/active-project --seeds 42 43 44

The project is read from a downscaled copy under ``--work`` (every labelled frame, ``--scale``
times smaller, labels too: tests/study/test_study_faults.py's ``small_reaching``), never in place.
Per seed (the study's ``seed``: the held-out block of ``split=frames``, k-means' frames, the test
frame, the training seed and active's tie-breaks), in ``--work/seed_<s>/``:

- k-means: ``src.prepare`` with ``split=frames`` (``frames.max_train_frames_per_video`` = the
  largest budget), then ``src.train`` at every budget.
- active: round 1 is k-means' condition 1 (the same model). Each later round predicts, with the
  previous round's model, every labelled frame a round may choose (:func:`pool_candidates`: the
  project's labelled frames outside the held-out block, less the test frame), takes 1 - the mean
  likelihood of a frame as its expected error, extends the labelled frames to the budget with
  ``active.next_round`` among those frames only, takes the project's own human labels for them
  and trains on a copy of the prepared folder whose test and held-out frames are k-means'.

Both strategies are judged on the same held-out frames (the ``generalisation`` block of
``split=frames``: unseen frames of the one animal, not a new animal). There is one participant,
so there is no participant interval: every interval here is the product's own
(src.evaluation.uncertainty, ``evaluation.interval.method``) with the held-out *frame* as the
unit resampled, which speaks of other frames of this video only. The frames-to-label answer is
the report's paired rule (``report.frames_to_label.margin_pct``) with the same unit.

Writes the section "Real project: <project>" at the end of ``--out``
(benchmarks/results/active.md), replacing an earlier one; the cohort's part above is kept as it
is (benchmarks.active keeps this section when it rewrites its part). A seed is not started when
the time spent so far plus one seed's (the mean of those done) would pass ``--time-limit-s``; the
section says which seeds were left out and why.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import REPO
from benchmarks.active import (
    COSTS_FILE,
    PROJECT_HEADING,
    accuracy_lines,
    accurate_seeds,
    against_kmeans_best,
    answer_lines,
    cell,
    config,
    interval_settings,
    median_ratio,
    ratio_of,
    run,
    runs_of,
    split_project_section,
    summary,
    trained,
    write_round_folder,
)
from src.data.contract import Candidates
from src.data.dataset import load_dataset
from src.data.frames import candidate_frames, image_features
from src.data.selection import active
from src.data.split import DEVELOPMENT, frame_sets
from src.evaluation.uncertainty import (
    IntervalSettings,
    aligned_totals,
    difference_interval,
    frames_to_label,
    mae_interval,
    participant_totals,
)

KMEANS_STORE = "mlruns_kmeans"
HELD_OUT = "predictions/generalisation.csv"  # the run's predictions of the held-out frames


@dataclass
class ProjectSeed:
    """One seed's results: held-out frame totals per strategy and budget, the train frames each
    strategy labelled per budget, the pool a round chose from, and the cost of the rounds."""

    totals: dict[str, dict[int, pd.DataFrame]] = field(default_factory=dict)
    frames: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    pool: int = 0
    labelled: int = 0
    held_out: int = 0
    inference_s: float = 0.0
    round_s: list[float] = field(default_factory=list)
    seconds: float = 0.0


def project_overrides(args, work: Path, seed: int, store: str) -> list[str]:
    """The study of the downscaled project for selection seed ``seed`` under ``work/seed_<s>/``."""
    folder = work / f"seed_{seed}"
    return [
        "data=dlc_project",
        f"data.root={work / 'project' / args.name}",
        f"data.name={args.name}",
        "split=frames",
        f"seed={seed}",
        f"paths.data_dir={folder / 'data'}",
        f"mlflow.tracking_uri=sqlite:///{folder / store / 'mlflow.db'}",
        f"mlflow.artifact_location={folder / store / 'artifacts'}",
        "model=resnet_18",
        f"weights={args.weights}",
        f"training.iterations={args.iterations}",
        f"frames.max_train_frames_per_video={max(args.budgets)}",
    ]


def downscaled_copy(project: Path, target: Path, scale: int) -> Path:
    """Every labelled frame of ``project`` ``scale`` times smaller, in ``target`` (made once)."""
    from tests.study.test_study_faults import small_reaching

    if not (target / "config.yaml").is_file():
        csv = next((project / "labeled-data").glob("*/CollectedData_*.csv"))
        n_frames = len(pd.read_csv(csv, header=[0, 1, 2], index_col=0))
        small_reaching(target, frames=n_frames, scale=scale, source=project)
    return target


def pool_candidates(
    split: pd.DataFrame, selection: pd.DataFrame, video: str, frame_numbers: np.ndarray
) -> np.ndarray:
    """Which of a video's labelled frames (``frame_numbers``, an imported project's candidate
    frames) a later round may choose: those outside the held-out block of ``split=frames`` that are
    not the video's fixed test frames (``selection`` roles), labelled or not yet by the strategy."""
    rows = selection[selection["video"] == video]
    fixed = rows.loc[rows["role"] != "train", "frame"].to_numpy()
    in_development = frame_sets(split, video, frame_numbers) == DEVELOPMENT
    return in_development & ~np.isin(frame_numbers, fixed)


def predicted_error(run_id: str, images: list[Path], snapshot: str, work: Path) -> np.ndarray:
    """1 - the mean likelihood over bodyparts of each image by the run's model (its ``snapshot``,
    the one the study evaluates): the expected error benchmarks.active uses."""
    from src import engine
    from src.tracking.queries import download_model

    model = download_model(run_id, work / "models" / run_id)
    poses = engine.for_model(model).predict(
        model.pose_config, model.snapshot(snapshot), images, device="cpu"
    )
    return 1.0 - np.nanmean(poses[..., 2], axis=1)


def project_round(
    args, folder: Path, cfg, dataset, before: int, budget: int, prev_store, prev_root
):
    """Round ``budget`` from the model trained on ``before`` frames: choose among the pool with
    ``next_round``, write the round's prepared folder; returns its root and the seconds of
    inference."""
    run_id = runs_of(prev_store, args.name).query("n == @before")["run_id"].iloc[0]
    source = prev_root / args.name
    selection = pd.read_csv(source / "selection.csv")
    split = pd.read_csv(source / "split.csv")
    size = (int(cfg.frames.features.width_px), int(cfg.frames.features.height_px))
    images = dataset.annotations.drop_duplicates(["video", "frame"]).set_index(["video", "frame"])
    rounds, seconds = {}, 0.0
    for video, rows in selection[selection["set"] == DEVELOPMENT].groupby("video", sort=False):
        frame_numbers = candidate_frames(dataset, video)
        allowed = pool_candidates(split, selection, video, frame_numbers)
        frame_numbers = frame_numbers[allowed]
        paths = [dataset.root / images.at[(video, f), "image"] for f in frame_numbers]
        start = time.perf_counter()
        error = predicted_error(run_id, paths, str(cfg.evaluation.snapshot), folder)
        seconds += time.perf_counter() - start
        labelled = rows[(rows.role == "train") & (rows["rank"] <= before)].sort_values("rank")
        rounds[video] = active.next_round(
            Candidates(image_features(paths, size), frame_numbers, error),
            labelled["frame"].tolist(),
            rows.loc[rows.role != "train", "frame"].tolist(),
            budget,
            int(cfg.seed),
            {k: cfg.frames[k] for k in ("min_gap_frames", "feature_radius_quantile")},
        ).tolist()
    root = folder / f"active_{budget}" / "prepared"
    table = active.round_selection(selection, rounds)
    write_round_folder(dataset, cfg, source, root / args.name, table, budget)
    return root, seconds


def held_out_totals(store: Path, name: str, n: int) -> pd.DataFrame:
    """Per held-out frame: summed point errors and labelled points of the store's run at ``n``
    (``participant_totals`` with the frame as the unit)."""
    import mlflow

    run_id = runs_of(store, name).query("n == @n")["run_id"].iloc[0]
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=HELD_OUT)
    return participant_totals(pd.read_csv(path), by="frame")


def train_frames(prepared: Path, n: int) -> list[int]:
    """The train frames of condition ``n`` of a prepared folder (ranks 1..n)."""
    selection = pd.read_csv(prepared / "selection.csv")
    rows = selection[(selection["role"] == "train") & (selection["rank"] <= n)]
    return sorted(rows["frame"].astype(int))


def study_seed(args, work: Path, seed: int) -> ProjectSeed:
    """k-means' conditions, then active's rounds, for one seed in ``work/seed_<s>/``; cells
    trained there already are skipped."""
    started = time.perf_counter()
    budgets, name = args.budgets, args.name
    folder = work / f"seed_{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "active.log"
    base = project_overrides(args, work, seed, KMEANS_STORE)
    cfg = config([*base, "frames=active"])
    prepared = folder / "data" / "prepared"
    if not (prepared / name / "selection.csv").is_file():
        run("src.prepare", base, log)
    for n in budgets:
        if not trained(folder / KMEANS_STORE, 0, n, name):
            run("src.train", [*base, f"labelled_frames={n}"], log)
    dataset = load_dataset(cfg.data)
    costs = folder / COSTS_FILE  # rounds' cost, kept for a rerun that trains nothing new
    result = ProjectSeed(**(json.loads(costs.read_text()) if costs.is_file() else {}))
    prev_store, prev_root = folder / KMEANS_STORE, prepared
    for before, budget in zip(budgets, budgets[1:]):
        store, root = f"mlruns_active_{budget}", folder / f"active_{budget}" / "prepared"
        if not trained(folder / store, 0, budget, name):
            start = time.perf_counter()
            root, seconds = project_round(
                args, folder, cfg, dataset, before, budget, prev_store, prev_root
            )
            result.inference_s += seconds
            arguments = [
                *project_overrides(args, work, seed, store),
                f"labelled_frames={budget}",
                f"paths.prepared_dir={root}",
                f"paths.models_dir={folder / f'models_active_{budget}'}",
            ]
            run("src.train", arguments, log)
            result.round_s.append(time.perf_counter() - start)
            costs.write_text(
                json.dumps({"inference_s": result.inference_s, "round_s": result.round_s})
            )
        prev_store, prev_root = folder / store, root
    selection = pd.read_csv(prepared / name / "selection.csv")
    split = pd.read_csv(prepared / name / "split.csv")
    for video in selection["video"].unique():  # the pool a round chooses from
        frame_numbers = candidate_frames(dataset, video)
        result.labelled += len(frame_numbers)
        result.pool += int(pool_candidates(split, selection, video, frame_numbers).sum())
    stores = {
        n: folder / (f"mlruns_active_{n}" if n != budgets[0] else KMEANS_STORE) for n in budgets
    }
    roots = {
        n: folder / f"active_{n}" / "prepared" if n != budgets[0] else prepared for n in budgets
    }
    result.totals = {
        "kmeans": {n: held_out_totals(folder / KMEANS_STORE, name, n) for n in budgets},
        "active": {n: held_out_totals(stores[n], name, n) for n in budgets},
    }
    result.frames = {
        "kmeans": {n: train_frames(prepared / name, n) for n in budgets},
        "active": {n: train_frames(roots[n] / name, n) for n in budgets},
    }
    result.held_out = len(result.totals["kmeans"][budgets[0]])
    result.seconds = time.perf_counter() - started
    return result


def frame_answer(totals: dict[int, pd.DataFrame], margin: float, settings: IntervalSettings):
    """The report's paired frames-to-label rule with the held-out frame as the unit; its sentence
    names that unit."""
    answer = frames_to_label(totals, margin, settings, what="held-out")
    sentence = answer.sentence.replace("participant", "held-out frame")
    return replace(answer, sentence=sentence)


def seed_lines(seed: int, result: ProjectSeed, budgets, settings, margin: float):
    """One seed's table (MAE on the held-out frames, paired difference, frames both strategies
    share) and answers; returns the lines, the answers, the differences per budget and
    active's answer against k-means' best (``benchmarks.active.against_kmeans_best``)."""
    answers = {s: frame_answer(t, margin, settings) for s, t in result.totals.items()}
    lines = [
        f"### Seed {seed}",
        "",
        "| labelled frames | k-means | active | active - k-means | frames both chose |",
        "|---:|---:|---:|---:|---:|",
    ]
    differences = {}
    for n in budgets:
        k, a = result.totals["kmeans"][n], result.totals["active"][n]
        mae_k = mae_interval(k["sum_error_px"], k["n_points"], settings)
        mae_a = mae_interval(a["sum_error_px"], a["n_points"], settings)
        differences[n] = difference_interval(*aligned_totals(a, k), settings)
        shared = len(set(result.frames["kmeans"][n]) & set(result.frames["active"][n]))
        lines.append(
            f"| {n} | {cell(mae_k)} | {cell(mae_a)} | {cell(differences[n])} | {shared} of {n} |"
        )
    lines += answer_lines(answers, margin)
    accuracy = against_kmeans_best(result.totals, answers, settings)
    return [*lines, *accuracy_lines(accuracy, answers)], answers, differences, accuracy


def limits_paragraph(results: dict[int, ProjectSeed], budgets) -> list[str]:
    """How choosing among the labelled pool limits active selection, with this run's numbers."""
    pool = max(r.pool for r in results.values())
    largest = budgets[-1]
    shared = [
        len(set(r.frames["kmeans"][largest]) & set(r.frames["active"][largest]))
        for r in results.values()
    ]
    return [
        f"How the labelled pool limits it: a round may choose only among the {pool} labelled "
        "frames of the one video that lie outside the held-out block and are not the test frame, "
        "not among the video's unlabelled frames, where most of a model's failures would be. "
        "k-means ranks the same few frames, so the two strategies draw from one small set: "
        f"at {largest} labelled frames each has taken {largest} of the {pool}, and they share "
        f"{', '.join(map(str, shared))} of them (seeds {', '.join(map(str, results))}). The "
        "larger the budget, the more of the pool both must take, so the more their sets "
        f"overlap (at {pool} they are the same); the strategies can differ only while the "
        "budget is a small part of the pool, and the gain active selection could show on a "
        "video's unlabelled frames is out of reach here. The held-out frames are a block of the "
        "same video, so the comparison speaks of unseen moments of one animal, not of new "
        "animals.",
        "",
    ]


def capped_note(answers: dict, budgets) -> list[str]:
    """A sentence when a strategy's frames-to-label answer is the largest budget in every seed: its
    MAE still fell there, so the ratio of answers cannot show a gain."""
    capped = [
        s
        for s in ("kmeans", "active")
        if all(a[s].condition == budgets[-1] for a in answers.values())
    ]
    if not capped:
        return []
    who = " and ".join({"kmeans": "k-means'", "active": "active's"}[s] for s in capped)
    return [
        f"{who[0].upper()}{who[1:]} answer is the largest budget, {budgets[-1]}, in every seed: no "
        "smaller condition is within the margin of the best, which is the largest; the MAE may "
        "still fall beyond it, so the ratio of answers says only that the budgets measured were "
        "too few to find the floor, not that the strategies need as many frames.",
        "",
    ]


def section(args, results, skipped, budgets, settings, margin, seconds) -> list[str]:
    """The result file's section for the project."""
    sections, answers, differences, ratios, accuracy = [], {}, {}, {}, {}
    for seed, result in results.items():
        lines, answers[seed], differences[seed], accuracy[seed] = seed_lines(
            seed, result, budgets, settings, margin
        )
        ratios[seed] = ratio_of(answers[seed])
        sections += lines
    seeds = list(results)
    ratio, n_known = median_ratio(ratios)
    held_out = max(r.held_out for r in results.values())
    first = results[seeds[0]]
    lines = [
        f"{PROJECT_HEADING}{args.project.resolve().name}",
        "",
        f"MAE (px, on images {args.scale} times smaller than the project's) on the {held_out} "
        "held-out frames of `split=frames` (a contiguous block of the one video's labelled frames, "
        "drawn by the seed; the same frames for both strategies within a seed), against labelled "
        f"frames; resnet_18, weights={args.weights}, {args.iterations} iterations; CPU. There is "
        "one animal, so no participant interval: each 95 % interval is the product's "
        f"{settings.method} with the held-out frame as the unit (frames of one video are not "
        "independent: the intervals say how the MAE would vary over other frames of this video, "
        "not over other animals). The difference is paired over the same frames.",
        "",
        f"Budgets {', '.join(map(str, budgets))} labelled frames: a round may choose among "
        f"{first.pool} frames ({first.labelled} labelled, less the {held_out} held out and the "
        f"test frame). The largest, {budgets[-1]}, takes {budgets[-1] / first.pool:.0%} of them; "
        "the more of the pool a budget takes, the less room the strategies have to differ. Round "
        "1 is k-means' condition 1 (the same model).",
        "",
        f"Median over seeds of active's frames-to-label answer / k-means': {ratio:.3f} "
        f"({n_known} of {len(seeds)} seeds with an answer from both); active's answer as "
        f"accurate as k-means' best in {accurate_seeds(accuracy, answers)} of {len(seeds)} "
        "seeds.",
        "",
        *capped_note(answers, budgets),
        *limits_paragraph(results, budgets),
    ]
    lines += summary(seeds, budgets, differences, ratios, answers, "###", accuracy)
    if skipped:
        lines += [f"Fewer seeds than asked: {skipped}", ""]
    lines += sections
    inference = sum(r.inference_s for r in results.values())
    rounds = [s for r in results.values() for s in r.round_s]
    lines += [
        (
            f"Cost: inference of the previous model on the pool, {inference:.0f} s in all "
            f"({len(rounds)} rounds); a round (inference, selection, training) took "
            f"{np.median(rounds):.0f} s (median)."
            if rounds
            else "Cost: every cell was trained by an earlier run in the same --work folder."
        )
        + f" Wall time of this run: {seconds:.0f} s ({seconds / 60:.1f} min) on 2 CPU cores.",
        "",
        "Repeat: `flock /tmp/cpu-heavy.lock .venv/bin/python -m benchmarks.active_project "
        f"--project {args.project} --work /tmp/active-project --budgets "
        f"{' '.join(map(str, budgets))} --scale {args.scale} --iterations {args.iterations} "
        f"--weights {args.weights} --seeds {' '.join(map(str, args.seeds))}`",
    ]
    return lines


def write_section(out: Path, lines: list[str]) -> None:
    """Replace the project section at the end of ``out`` (or append it), keeping the rest."""
    cohort = split_project_section(out.read_text() if out.is_file() else "")[0]
    cohort = cohort.rstrip("\n") + "\n\n" if cohort.strip() else ""
    out.write_text(cohort + "\n".join(lines) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", type=Path, required=True, help="a DeepLabCut project folder")
    parser.add_argument("--work", type=Path, default=Path("/tmp/active-project"))
    parser.add_argument("--budgets", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--scale", type=int, default=4, help="images this many times smaller")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument(
        "--weights", default="random", help="the study's weights= (random: no pre-training)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--time-limit-s", type=float, default=25 * 60)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/active.md")
    args = parser.parse_args(argv)
    args.budgets = sorted(set(args.budgets))
    args.name = re.sub(r"[^A-Za-z0-9]+", "_", args.project.resolve().name)  # data.name
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    work = args.work.resolve()
    started = time.perf_counter()
    downscaled_copy(args.project.resolve(), work / "project" / args.name, args.scale)
    results, skipped = {}, ""
    for seed in args.seeds:
        spent = time.perf_counter() - started
        if results and spent + spent / len(results) > args.time_limit_s:
            left = [s for s in args.seeds if s not in results]
            skipped = (
                f"seeds {', '.join(map(str, left))} were not run: {spent:.0f} s were spent on "
                f"{len(results)} seed(s), and one more would pass the time limit of "
                f"{args.time_limit_s:.0f} s."
            )
            break
        results[seed] = study_seed(args, work, seed)
    configured = config([])
    settings = interval_settings(configured)
    margin = float(configured.report.frames_to_label.margin_pct)
    lines = section(
        args, results, skipped, args.budgets, settings, margin, time.perf_counter() - started
    )
    write_section(args.out, lines)
    print("\n".join(lines[:12]))


if __name__ == "__main__":
    main()
