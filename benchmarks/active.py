"""Active against k-means frame selection at equal budgets: MAE on generalisation participants
against labelled frames per video, on the embedded cohort across folds (``--cohort default``, as
the study makes it, or ``--cohort tiny``, a shrunk one), for one or more selection seeds.

    flock /tmp/cpu-heavy.lock .venv/bin/python -m benchmarks.active --work /tmp/active-work \
        --cohort default --budgets 1 2 6 10 --seeds 42 43 44

k-means: the study's conditions (``src.prepare``, then ``src.train`` per fold and budget). Active
(``frames=active``, src/data/selection/active.py): round 1 is k-means' condition 1 (the same
model); each later round tracks every development video of the fold with the previous round's
model (DeepLabCut's video inference, as src.analyze), takes 1 - the mean likelihood of a frame as
its expected error (src.analyze's default trust), extends each video's labelled frames to the
budget with ``next_round``, labels the new frames with the generator's truth (plus the same
simulated labelling noise as the study), and trains on a copy of the fold's prepared folder
whose test and generalisation frames are k-means'. Both strategies are judged on the same
generalisation frames. The frames-to-label answer of each is the report's paired rule
(``report.frames_to_label.margin_pct``, the study's interval method) over the budgets, across
folds.

A selection seed is the study's ``seed`` override: it drives k-means' frame selection (hence
round 1 and the fixed test frames), the simulated label noise, the training seed, the deal of
participants into folds, the pre-trained initial model's seeds and active's tie-breaks.
``next_round``'s own seed only breaks ties in expected error and samples the feature radius, so
varying it alone would change almost nothing. The cohort is not varied: it is generated once,
under ``--work/cohort/``, with the configured seed (``synthetic.*.seed`` pinned to it), and every
seed's study reads it. Each seed runs the whole benchmark in ``--work/seed_<s>/`` (a rerun skips
its trained cells).

A finished seed's figures (participant errors per strategy, fold and budget; the cost of its rounds;
the profile and commit that made them) are kept in ``--figures`` (benchmarks/results/active_seeds/,
``<cohort>-seed<s>.csv.gz`` and ``.json``), so that seeds measured on different days, or machines of
the same CPU numerics class, add up to one result: a seed whose file matches the profile (cohort,
its seed and size, folds, iterations, budgets) is read from it, not trained again. Delete the file
to measure that seed again.

Writes ``--out`` (benchmarks/results/active.md): first the median over seeds of active's answer
divided by k-means', then in how many seeds active's answer is as accurate as k-means' best (the
report's paired rule across strategies: a ratio below 1 from a curve that stops falling at a worse
MAE is no gain), a summary over seeds (per budget, each seed's paired difference active -
k-means and whether all seeds agree in sign with intervals excluding 0), then one table per seed
with its picture (``<out stem>-seed<s>.png`` beside ``--out``: both strategies' MAE against labelled
frames per video, with intervals, drawn as the report's strategies.png).
A section "Real project: ..." at its end (benchmarks.active_project: the same comparison on a
DeepLabCut project's labelled pool) is kept as it is.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from benchmarks import REPO
from src.data.collected_data import write_labels
from src.data.contract import Candidates
from src.data.dataset import load_dataset
from src.data.frames import label_frames, video_features
from src.data.preparation import write_frame_images
from src.data.selection import active
from src.evaluation.study_errors import PARTICIPANTS_ARTIFACT, decide_frames_to_label
from src.evaluation.uncertainty import (
    IntervalSettings,
    aligned_totals,
    difference_interval,
    mae_interval,
    participant_totals,
    within_margin,
)

NAME = "synthetic_clinical"
KMEANS_STORE = "mlruns_kmeans"
COSTS_FILE = "active_rounds_cost.json"
DEFAULT_OUT = REPO / "benchmarks/results/active.md"
DEFAULT_FIGURES = REPO / "benchmarks/results/active_seeds"
PROJECT_HEADING = "## Real project: "  # benchmarks.active_project's section of the result file


@dataclass
class SeedResult:
    """One seed's benchmark: participant errors per strategy and the cost of its active rounds."""

    errors: dict[str, pd.DataFrame]
    inference_s: float = 0.0
    round_s: list[float] = field(default_factory=list)
    kept_from: str = ""  # the figures file it was read from, "" when measured by this run


def shown(path: Path) -> Path:
    """``path`` as the result file names it: relative to the repository when inside it."""
    path = path.resolve()
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def profile_of(args, budgets: list[int]) -> dict:
    """What a seed's figures depend on besides the seed: a kept seed is reused only under the same."""
    size = (
        {"participants": args.participants, "frames_per_video": args.frames_per_video}
        if args.cohort == "tiny"
        else {}
    )
    return {
        "cohort": args.cohort,
        "cohort_seed": args.cohort_seed,
        **size,
        "folds": args.folds,
        "iterations": args.iterations,
        "budgets": budgets,
    }


def figures_path(folder: Path, cohort: str, seed: int) -> Path:
    """A seed's kept errors; its profile, cost and commit are beside it, in :func:`meta_path`."""
    return folder / f"{cohort}-seed{seed}.csv.gz"


def meta_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".csv.gz") + ".json")


def keep_figures(path: Path, profile: dict, result: SeedResult) -> None:
    """Write a measured seed's errors on the generalisation frames (all predictions: what its
    verdicts read) and its profile, cost and commit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pd.concat(errors.assign(strategy=name) for name, errors in result.errors.items())
    table = table[(table["set"] == "generalisation") & table["pcutoff"].isna()]
    table.to_csv(path, index=False)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    meta = {
        "profile": profile,
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
        "inference_s": result.inference_s,
        "round_s": result.round_s,
    }
    meta_path(path).write_text(json.dumps(meta, indent=1) + "\n")


def kept_figures(path: Path, profile: dict) -> SeedResult | None:
    """The seed kept at ``path`` when it was measured under ``profile``, else None."""
    if not (path.is_file() and meta_path(path).is_file()):
        return None
    meta = json.loads(meta_path(path).read_text())
    if meta["profile"] != profile:
        return None
    table = pd.read_csv(path)
    errors = {name: t.drop(columns="strategy") for name, t in table.groupby("strategy")}
    return SeedResult(
        errors,
        meta["inference_s"],
        meta["round_s"],
        kept_from=f"{shown(path)} (commit {meta['commit']}, {meta['date']})",
    )


def overrides(args, work: Path, seed: int, store: str) -> list[str]:
    """The study of selection seed ``seed``: data, models and MLflow stores under
    ``work/seed_<seed>/``; the cohort under ``work/cohort/``, made with ``args.cohort_seed``."""
    folder = work / f"seed_{seed}"
    shrunk = [  # --cohort tiny: the tiny cohort enlarged to --participants x 2 x --frames-per-video
        "synthetic=tiny",
        f"synthetic.clinical.n_participants={args.participants}",
        "synthetic.clinical.videos_per_participant=2",
        f"synthetic.clinical.frames_per_video={args.frames_per_video}",
    ]
    return [
        *(shrunk if args.cohort == "tiny" else []),
        f"synthetic.clinical.seed={args.cohort_seed}",
        f"synthetic.healthy_adults.seed={args.cohort_seed}",
        f"seed={seed}",
        f"paths.data_dir={folder / 'data'}",
        f"paths.synthetic_dir={work / 'cohort'}",
        f"mlflow.tracking_uri=sqlite:///{folder / store / 'mlflow.db'}",
        f"mlflow.artifact_location={folder / store / 'artifacts'}",
        "split=kfold",
        f"split.folds={args.folds}",
        "model=resnet_18",
        *([f"training.iterations={args.iterations}"] if args.iterations else []),
    ]


def interval_settings(cfg) -> IntervalSettings:
    """evaluation.bootstrap and evaluation.interval of a composed config: how every interval is
    made."""
    return IntervalSettings(
        int(cfg.evaluation.bootstrap.resamples),
        int(cfg.evaluation.bootstrap.seed),
        float(cfg.evaluation.bootstrap.confidence),
        str(cfg.evaluation.interval.method),
        int(cfg.evaluation.interval.get("min_participants", 4)),
    )


def config(arguments: list[str]):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=arguments)


def run(module: str, arguments: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"\n$ python -m {module} {' '.join(arguments)}\n")
        out.flush()
        done = subprocess.run(
            [sys.executable, "-m", module, *arguments], cwd=REPO, stdout=out, stderr=out
        )
    if done.returncode:
        sys.exit(f"python -m {module} failed ({done.returncode}); see {log}")


def runs_of(store: Path, experiment_name: str = NAME) -> pd.DataFrame:
    """FINISHED training runs of a store: the newest per (fold, condition); fold 0 for a study
    without folds (split=frames or participants)."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name(experiment_name)
    if experiment is None:
        return pd.DataFrame(columns=["run_id", "fold", "n"])
    runs = mlflow.search_runs(
        [experiment.experiment_id], "attributes.status = 'FINISHED'", order_by=["start_time DESC"]
    )
    if "tags.fold" not in runs:
        runs = runs.assign(**{"tags.fold": 0})
    runs = runs[runs["tags.labelled_frames"].notna() & runs["tags.fold"].notna()]
    runs = runs.assign(
        fold=runs["tags.fold"].astype(int), n=runs["tags.labelled_frames"].astype(int)
    )
    return runs.drop_duplicates(["fold", "n"])


def trained(store: Path, fold: int, n: int, experiment_name: str = NAME) -> bool:
    """Whether the store holds a finished run of (fold, condition): a resumed benchmark skips it."""
    if not (store / "mlflow.db").is_file():
        return False
    return not runs_of(store, experiment_name).query("fold == @fold and n == @n").empty


def participant_errors(store: Path, fold: int, n: int) -> pd.DataFrame:
    """errors/participants.csv of the store's run of (fold, condition)."""
    import mlflow

    runs = runs_of(store)
    run_id = runs[(runs.fold == fold) & (runs.n == n)]["run_id"].iloc[0]
    mlflow.set_tracking_uri(f"sqlite:///{store / 'mlflow.db'}")
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=PARTICIPANTS_ARTIFACT)
    return pd.read_csv(path).assign(labelled_frames=n, fold=fold)


def active_round(work: Path, cfg, dataset, fold, before: int, budget: int, prev_store, prev_root):
    """Prepare fold ``fold``'s round of ``budget`` frames from the previous round's model, under
    ``work`` (the seed's folder); returns the new prepared root and the seconds of inference."""
    from benchmarks.trust import track

    run_id = runs_of(prev_store).query("fold == @fold and n == @before")["run_id"].iloc[0]
    source = prev_root / NAME / f"fold_{fold}"
    selection = pd.read_csv(source / "selection.csv")
    development = selection[selection["set"] == "development"]
    videos = dataset.videos.set_index("video").loc[development["video"].unique()]
    cache = work / "predictions"
    cache.mkdir(exist_ok=True)
    start = time.perf_counter()
    poses = track(run_id, [Path(p) for p in videos["path"]], dataset.bodyparts, cache, work)
    seconds = time.perf_counter() - start
    size = (int(cfg.frames.features.width_px), int(cfg.frames.features.height_px))
    rounds = {}
    for video, rows in development.groupby("video", sort=False):
        frame_numbers, features = video_features(
            videos.at[video, "path"], size, int(cfg.frames.max_frames_for_clustering)
        )
        error = 1.0 - np.nanmean(poses[Path(videos.at[video, "path"]).stem][..., 2], axis=1)
        labelled = rows[(rows.role == "train") & (rows["rank"] <= before)].sort_values("rank")
        rounds[video] = active.next_round(
            Candidates(features, frame_numbers, error[frame_numbers]),
            labelled["frame"].tolist(),
            rows.loc[rows.role != "train", "frame"].tolist(),
            budget,
            int(cfg.seed),
            {k: cfg.frames[k] for k in ("min_gap_frames", "feature_radius_quantile")},
        ).tolist()
    table = active.round_selection(selection, rounds)
    root = work / f"active_{budget}" / "prepared"
    write_round_folder(dataset, cfg, source, root / NAME / f"fold_{fold}", table, budget)
    for extra in (prev_root / NAME).glob("*.*"):  # folds.csv and the like beside the folds
        shutil.copyfile(extra, root / NAME / extra.name)
    return root, seconds


def write_round_folder(dataset, cfg, source: Path, target: Path, table: pd.DataFrame, budget: int):
    """The round's prepared folder ``target``: a copy of the previous round's ``source`` with the
    round's selection ``table``, the labels of its new frames added (``src.data.frames.label_frames``:
    the generator's truth plus the study's label noise for the cohort, the human labels of an
    imported project) and its labeled-data/ written again."""
    labels = pd.read_csv(source / "labels.csv")
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    known = set(zip(labels["video"], labels["frame"]))
    new = table[[(v, f) not in known for v, f in zip(table["video"], table["frame"])]]
    new_labels = label_frames(
        dataset, new, float(cfg.frames.label_noise_px), int(cfg.frames.seed) + budget
    )
    labels = pd.concat([labels, new_labels], ignore_index=True)
    labels = labels.sort_values(["video", "frame"], kind="stable")
    table.to_csv(target / "selection.csv", index=False)
    labels.to_csv(target / "labels.csv", index=False, float_format="%.3f")
    shutil.rmtree(target / "labeled-data")
    written = write_frame_images(dataset, table, target / "labeled-data")
    assert (written == table["image"]).all(), "image names differ from src.prepare's"
    write_labels(labels, table, dataset.scorer, dataset.bodyparts, target / "labeled-data")


def share_pretrained(models: Path, round_models: Path) -> None:
    """Link the k-means study's pre-trained initial models (``models/pretrained``) into a round's
    models folder: a round has the same pre-training config and data, hence the same key, so it
    reuses them instead of pre-training again (about 5 minutes a round on the default cohort)."""
    link = round_models / "pretrained"
    if (models / "pretrained").is_dir() and not link.exists():
        round_models.mkdir(parents=True, exist_ok=True)
        link.symlink_to((models / "pretrained").resolve(), target_is_directory=True)


def study_seed(args, work: Path, seed: int, budgets: list[int]) -> SeedResult:
    """The whole benchmark for one selection seed in ``work/seed_<seed>/``: k-means' conditions,
    then active's rounds, each fold; cells already trained there are skipped."""
    folder = work / f"seed_{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "active.log"
    base = overrides(args, work, seed, KMEANS_STORE)
    cfg = config([*base, "frames=active"])
    folds = range(1, args.folds + 1)
    if not (folder / "data" / "prepared" / NAME / "folds.csv").is_file():
        run("src.prepare", base, log)
    for fold in folds:
        for n in budgets:
            if not trained(folder / KMEANS_STORE, fold, n):
                run("src.train", [*base, f"split.fold={fold}", f"labelled_frames={n}"], log)
    dataset = load_dataset(cfg.data)
    costs = folder / COSTS_FILE  # rounds' cost, kept for a rerun that trains nothing new
    result = SeedResult({}, **(json.loads(costs.read_text()) if costs.is_file() else {}))
    prev_store, prev_root = folder / KMEANS_STORE, folder / "data" / "prepared"
    for before, budget in zip(budgets, budgets[1:]):
        store = f"mlruns_active_{budget}"
        for fold in (f for f in folds if not trained(folder / store, f, budget)):
            start = time.perf_counter()
            root, seconds = active_round(
                folder, cfg, dataset, fold, before, budget, prev_store, prev_root
            )
            result.inference_s += seconds
            share_pretrained(folder / "data" / "models", folder / f"models_active_{budget}")
            run(
                "src.train",
                [
                    *overrides(args, work, seed, store),
                    f"split.fold={fold}",
                    f"labelled_frames={budget}",
                    f"paths.prepared_dir={root}",
                    f"paths.models_dir={folder / f'models_active_{budget}'}",
                ],
                log,
            )
            result.round_s.append(time.perf_counter() - start)
            costs.write_text(
                json.dumps({"inference_s": result.inference_s, "round_s": result.round_s})
            )
        prev_store, prev_root = folder / store, folder / f"active_{budget}" / "prepared"
    stores = {
        n: folder / (KMEANS_STORE if n == budgets[0] else f"mlruns_active_{n}") for n in budgets
    }
    result.errors = {
        "kmeans": pd.concat(
            participant_errors(folder / KMEANS_STORE, f, n) for f in folds for n in budgets
        ),
        "active": pd.concat(participant_errors(stores[n], f, n) for f in folds for n in budgets),
    }
    return result


def split_project_section(text: str) -> tuple[str, str]:
    """A result file's cohort part and its real-project part (benchmarks.active_project's section:
    from the first line starting with PROJECT_HEADING to the end; "" when there is none)."""
    at = text.find("\n" + PROJECT_HEADING)
    return (text, "") if at < 0 else (text[: at + 1], text[at + 1 :])


def cell(interval) -> str:
    if not interval.has_interval:
        return f"{interval.estimate:.2f} ({interval.note or 'no interval'})"
    return f"{interval.estimate:.2f} [{interval.low:.2f}, {interval.high:.2f}]"


def generalisation_totals(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """Per participant, the error sums and point counts on the generalisation frames (all
    predictions, no p-cutoff) at ``n`` labelled frames per video, pooled over the folds."""
    rows = table[(table["set"] == "generalisation") & table["pcutoff"].isna()]
    return participant_totals(rows[rows["labelled_frames"] == n])


def budget_intervals(totals: dict, n: int, settings: IntervalSettings):
    """MAE of k-means, of active and their paired difference active - k-means at budget ``n``,
    from ``totals`` (strategy -> budget -> :func:`generalisation_totals`)."""
    k, a = totals["kmeans"][n], totals["active"][n]
    mae_k = mae_interval(
        k["sum_error_px"].to_numpy(), k["n_points"].to_numpy(), settings, pooled=True
    )
    mae_a = mae_interval(
        a["sum_error_px"].to_numpy(), a["n_points"].to_numpy(), settings, pooled=True
    )
    return mae_k, mae_a, difference_interval(*aligned_totals(a, k), settings, pooled=True)


def seed_picture(seed: int, result: SeedResult, budgets, settings, path: Path) -> str:
    """Both strategies' MAE against labelled frames per video, with intervals, as the report's
    strategies.png draws it; returns the markdown line that shows it."""
    from src.evaluation.plots import plt
    from src.evaluation.strategies import strategies_figure

    rows = []
    for n in budgets:
        totals = {s: {n: generalisation_totals(e, n)} for s, e in result.errors.items()}
        mae_k, mae_a, _ = budget_intervals(totals, n, settings)
        for strategy, mae in (("kmeans", mae_k), ("active", mae_a)):
            rows.append((strategy, n, mae.estimate, mae.low, mae.high))
    table = pd.DataFrame(
        rows, columns=["strategy", "labelled_frames", "mae_px", "ci_low", "ci_high"]
    )
    fig = strategies_figure(table, settings.confidence)
    fig.suptitle(f"selection seed {seed}: participants each fold held out")
    fig.savefig(path)
    plt.close(fig)
    return f"![MAE against labelled frames, k-means and active, seed {seed}]({path.name})"


def seed_section(seed: int, result: SeedResult, budgets, settings, margin: float):
    """One seed's table and frames-to-label answers; returns the lines, the answers, the paired
    difference per budget and :func:`against_kmeans_best`."""
    answers = {
        s: decide_frames_to_label(e, budgets, margin, settings) for s, e in result.errors.items()
    }
    lines = [
        f"## Seed {seed}",
        "",
        "| labelled frames per video | k-means | active | active - k-means |",
        "|---:|---:|---:|---:|",
    ]
    totals = {
        s: {n: generalisation_totals(e, n) for n in budgets} for s, e in result.errors.items()
    }
    differences = {}
    for n in budgets:
        mae_k, mae_a, differences[n] = budget_intervals(totals, n, settings)
        lines.append(f"| {n} | {cell(mae_k)} | {cell(mae_a)} | {cell(differences[n])} |")
    lines += answer_lines(answers, margin)
    accuracy = against_kmeans_best(totals, answers, settings, pooled=True)
    return [*lines, *accuracy_lines(accuracy, answers)], answers, differences, accuracy


def against_kmeans_best(totals: dict, answers, settings: IntervalSettings, pooled: bool = False):
    """Active at its frames-to-label answer minus k-means at its best condition, paired over the
    units of ``totals`` (strategy -> budget -> totals per participant or held-out frame); None when
    either has no answer. The report's paired rule across strategies: fewer frames are a gain only
    when they reach k-means' accuracy, not a worse curve's best."""
    a, k = answers["active"], answers["kmeans"]
    if a.condition is None or k.best is None:
        return None
    return difference_interval(
        *aligned_totals(totals["active"][a.condition], totals["kmeans"][k.best]),
        settings,
        pooled=pooled,
    )


def accuracy_lines(accuracy, answers) -> list[str]:
    """The sentence saying whether active's answer is as accurate as k-means' best."""
    if accuracy is None:
        return []
    a, k = answers["active"], answers["kmeans"]
    return [
        f"Active at its answer ({a.condition}) minus k-means at its best ({k.best}), paired: "
        f"{cell(accuracy)} px; within k-means' margin of {k.margin_px:.2f} px: "
        f"{'yes' if within_margin(accuracy, k.margin_px) else 'no'}.",
        "",
    ]


def accurate_seeds(accuracy: dict, answers: dict) -> int:
    """How many seeds' active answer is as accurate as k-means' best."""
    return sum(
        d is not None and within_margin(d, answers[s]["kmeans"].margin_px)
        for s, d in accuracy.items()
    )


def answer_lines(answers, margin: float) -> list[str]:
    """Each strategy's frames-to-label answer (the report's paired rule) and its sentence."""
    return [
        "",
        f"Frames to label (margin {margin:g} %): k-means {answers['kmeans'].condition}, active "
        f"{answers['active'].condition}.",
        "",
        f"- k-means: {answers['kmeans'].sentence}",
        f"- active: {answers['active'].sentence}",
        "",
    ]


def ratio_of(answers) -> float:
    """Active's frames-to-label answer divided by k-means' (NaN when either has none)."""
    chosen = [answers["active"].condition, answers["kmeans"].condition]
    return float("nan") if None in chosen else chosen[0] / chosen[1]


def holds(intervals: list) -> str:
    """Whether every seed's difference has an interval excluding 0, all on one side of it."""
    sides = {
        "lower" if i.high < 0 else "higher" if i.low > 0 else None
        for i in intervals
        if i.has_interval
    }
    if len(sides) != 1 or None in sides or not all(i.has_interval for i in intervals):
        return "no"
    return f"yes (active {sides.pop()})"


def summary(
    seeds: list[int],
    budgets,
    differences: dict,
    ratios: dict,
    answers: dict,
    level: str = "##",
    accuracy: dict | None = None,
) -> list:
    """The section over seeds (a heading of ``level``): each seed's paired difference per budget,
    whether it holds, and each seed's frames-to-label answers (with ``accuracy``, whether active's
    answer is as accurate as k-means' best: :func:`against_kmeans_best`)."""
    lines = [
        f"{level} Over seeds",
        "",
        "| labelled frames per video | "
        + " | ".join(f"active - k-means, seed {s}" for s in seeds)
        + " | holds over seeds |",
        "|---:|" + "---:|" * len(seeds) + "---|",
    ]
    for n in budgets:
        verdict = (
            "n/a: round 1 is k-means' model"
            if n == budgets[0]
            else holds([differences[s][n] for s in seeds])
        )
        row = " | ".join(cell(differences[s][n]) for s in seeds)
        lines.append(f"| {n} | {row} | {verdict} |")
    lines += [
        "",
        "Holds: every seed's interval excludes 0, all on one side.",
    ]
    if len(seeds) < 3:
        lines[-1] += (
            f" Only {len(seeds)} seed(s): fewer than the three the gain must hold over, whatever "
            "this column says."
        )
    extra = " active's answer as accurate as k-means' best |" if accuracy is not None else ""
    lines += ["", f"| seed | frames to label, k-means | active | active / k-means |{extra}"]
    lines.append("|---:|---:|---:|---:|" + ("---|" if extra else ""))
    for s in seeds:
        k, a = answers[s]["kmeans"], answers[s]["active"]
        row = f"| {s} | {k.condition} | {a.condition} | {ratios[s]:.3f} |"
        if extra:
            d = accuracy[s]
            if d is None:
                row += " n/a |"
            else:
                verdict = "yes" if within_margin(d, k.margin_px) else "no"
                row += f" {verdict}: {cell(d)} px, margin {k.margin_px:.2f} |"
        lines.append(row)
    return [*lines, ""]


def kmeans_gain(errors: dict[str, pd.DataFrame], budgets, settings: IntervalSettings):
    """k-means' MAE at the largest budget minus at the smallest, paired over participants: how
    much labelling more frames helps at all in this profile."""
    most, fewest = (generalisation_totals(errors["kmeans"], n) for n in (budgets[-1], budgets[0]))
    return difference_interval(*aligned_totals(most, fewest), settings, pooled=True)


def sensitivity(seeds: list[int], budgets, gains: dict) -> list[str]:
    """A paragraph saying whether more labelled frames lowered k-means' MAE in this profile; where
    they did not, no strategy can show that it needs fewer."""
    row = "; ".join(f"seed {s} {cell(gains[s])}" for s in seeds)
    lines = [
        f"k-means from {budgets[0]} to {budgets[-1]} labelled frames per video, MAE change "
        f"(px, paired): {row}."
    ]
    if not all(g.has_interval and g.high < 0 for g in gains.values()):
        lines.append(
            "In at least one seed more labelled frames did not lower k-means' MAE beyond its "
            "interval: at this profile the curve is (nearly) flat, so neither strategy can need "
            "fewer frames than the other, and the ratio above cannot show a gain; a larger profile "
            "(more frames per video, longer training, budgets to 20) is needed to decide it."
        )
    return [" ".join(lines), ""]


def median_ratio(ratios: dict) -> tuple[float, int]:
    """Median over the seeds where both strategies have an answer, and how many seeds that is."""
    known = [r for r in ratios.values() if not np.isnan(r)]
    return (float(np.median(known)) if known else float("nan")), len(known)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/active-work"))
    parser.add_argument("--budgets", type=int, nargs="+", default=[1, 2, 6])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument(
        "--cohort",
        choices=["tiny", "default"],
        default="tiny",
        help="tiny: the tiny cohort enlarged by --participants and --frames-per-video; default: the "
        "embedded cohort as the study makes it (10 participants x 3 videos x 150 frames)",
    )
    parser.add_argument("--participants", type=int, default=10, help="--cohort tiny only")
    parser.add_argument("--frames-per-video", type=int, default=100, help="--cohort tiny only")
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="updates per condition (default: 200 for --cohort tiny, training.iterations for "
        "--cohort default)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="selection seeds, each the study's `seed` (default: the configured seed)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--figures",
        type=Path,
        default=DEFAULT_FIGURES,
        help="folder of each measured seed's figures; a seed kept there under the same profile is "
        "read, not trained again",
    )
    return parser.parse_args()


def header(
    args, study, seeds, budgets, settings, ratio: float, n_known: int, accurate: int
) -> list[str]:
    """The result file's first lines; ``study`` is the composed config of the first seed's study,
    ``accurate`` the number of seeds whose active answer is as accurate as k-means' best."""
    cohort = study.synthetic.clinical
    lines = [
        f"frames_ratio_active_vs_kmeans: {ratio:.3f}",
        f"active_answer_as_accurate_as_kmeans: {accurate} of {len(seeds)} seeds",
        "",
        "# Active against k-means frame selection",
        "",
        f"MAE (px) on generalisation participants, pooled over {args.folds} folds of the "
        f"{args.cohort} cohort ({cohort.n_participants} participants x "
        f"{cohort.videos_per_participant} videos x {cohort.frames_per_video} frames, "
        f"{study.model.name}, {study.training.iterations} iterations; CPU), 95 % intervals by "
        f"{settings.method} over participants; the difference is paired (same participants).",
        "",
        f"Selection seeds {', '.join(map(str, seeds))}: each is the study's `seed` (k-means' "
        "frames, hence round 1 and the test frames; label noise; folds; training and pre-training "
        f"seeds; active's tie-breaks), on one cohort made with seed {args.cohort_seed}. The first "
        "line is the median over seeds of active's frames-to-label answer divided by k-means' "
        f"({n_known} of {len(seeds)} seeds with an answer from both). A ratio below 1 is a gain "
        "only where active's answer is as accurate as k-means' best, by the same paired rule "
        "and margin (second line); otherwise active's curve stops falling earlier at a worse MAE.",
        "",
    ]
    if max(budgets) < 6 or study.training.iterations < 200:
        lines += [
            f"**Smoke size** (budgets {', '.join(map(str, budgets))}, {study.training.iterations} "
            "iterations): it shows the benchmark runs end to end, not whether active selection "
            "helps; the ratio compares answers at budgets too few and models too short-trained to "
            "decide it.",
            "",
        ]
    return lines


def footer(args, seeds, budgets, results: dict, seconds: float) -> list[str]:
    inference = sum(r.inference_s for r in results.values())
    rounds = [s for r in results.values() for s in r.round_s]
    cost = (
        f"Cost: inference of the previous model on the development videos, {inference:.0f} s in "
        f"all ({len(rounds)} fold-rounds over {len(seeds)} seeds); a fold-round (inference, "
        f"selection, labels, training) took {np.median(rounds):.0f} s (median). Whole "
        f"benchmark: {seconds:.0f} s (cells trained by an earlier run not counted)."
        if rounds
        else "Cost: not measured by this run: every cell was trained by an earlier run in the "
        f"same --work folder, which kept no figures (this run read the stores in {seconds:.0f} s)."
    )
    kept = [f"seed {seed}: {r.kept_from}" for seed, r in results.items() if r.kept_from]
    if kept:
        cost += " Read from kept figures, not trained by this run: " + "; ".join(kept) + "."
    return [
        cost,
        "",
        f"Limits: budgets {', '.join(map(str, budgets))} only; {len(seeds)} selection seed(s); the "
        "strategy was not tuned (conf/frames/active.yaml as shipped).",
        "",
        "Repeat: `flock /tmp/cpu-heavy.lock .venv/bin/python -m benchmarks.active --work "
        f"/tmp/active-work --cohort {args.cohort} --budgets {' '.join(map(str, budgets))} "
        f"--folds {args.folds} "
        + (
            f"--participants {args.participants} --frames-per-video {args.frames_per_video} "
            if args.cohort == "tiny"
            else ""
        )
        + (f"--iterations {args.iterations} " if args.iterations else "")
        + f"--seeds {' '.join(map(str, seeds))}"
        + ("" if args.out == DEFAULT_OUT else f" --out {shown(args.out)}")
        + "`",
    ]


def main() -> None:
    args = parse_args()
    work, budgets = args.work.resolve(), sorted(set(args.budgets))
    args.out = args.out.resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    configured = config([])
    args.cohort_seed = int(configured.seed)  # the cohort's seed whatever the selection seed
    seeds = list(dict.fromkeys(args.seeds or [args.cohort_seed]))
    if args.iterations is None and args.cohort == "tiny":
        args.iterations = 200
    first = overrides(args, work, seeds[0], KMEANS_STORE)
    study = config(first)
    profile = profile_of(args, budgets)
    paths = {seed: figures_path(args.figures, args.cohort, seed) for seed in seeds}
    results = {seed: kept_figures(paths[seed], profile) for seed in seeds}
    if None in results.values():
        run("src.cohort", first, work / "cohort.log")
    for seed in (s for s in seeds if results[s] is None):
        results[seed] = study_seed(args, work, seed, budgets)
        keep_figures(paths[seed], profile, results[seed])
    settings = interval_settings(configured)
    margin = float(configured.report.frames_to_label.margin_pct)
    sections, answers, differences, ratios, accuracy = [], {}, {}, {}, {}
    for seed, result in results.items():
        lines, answers[seed], differences[seed], accuracy[seed] = seed_section(
            seed, result, budgets, settings, margin
        )
        ratios[seed] = ratio_of(answers[seed])
        picture = args.out.with_name(f"{args.out.stem}-seed{seed}.png")
        sections += [
            *lines[:2],
            seed_picture(seed, result, budgets, settings, picture),
            "",
            *lines[2:],
        ]
    ratio, n_known = median_ratio(ratios)
    accurate = accurate_seeds(accuracy, answers)
    lines = header(args, study, seeds, budgets, settings, ratio, n_known, accurate)
    lines += summary(seeds, budgets, differences, ratios, answers, accuracy=accuracy)
    gains = {seed: kmeans_gain(r.errors, budgets, settings) for seed, r in results.items()}
    lines += sensitivity(seeds, budgets, gains)
    lines += sections
    lines += footer(args, seeds, budgets, results, time.perf_counter() - started)
    previous = args.out.read_text() if args.out.is_file() else ""
    project = split_project_section(previous)[1]  # benchmarks.active_project's, kept as it is
    args.out.write_text("\n".join(lines) + "\n" + ("\n" + project if project else ""))
    print(lines[0])


if __name__ == "__main__":
    main()
