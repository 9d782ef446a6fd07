"""Report of a labelled-frames sweep: the paper's Table 1 from the MLflow runs, with plots.

Run as ``python -m src.report`` after ``python -m src.train +sweep=frames`` (config group ``report``).
Writes ``<report.dir>/``:

* ``results.md``        the table in pixels (and cm) with the snapshot each row comes from, what each
  column means and how the data set was split, what each cell rests on (participants, frames,
  points; cells on small sets flagged), the share of points kept by the p-cutoff, the paper's
  Table 1 beside ours (report.compare_paper), the runs it came from; each cell with its
  participant-bootstrap interval; how many frames to label (one sentence, power-law fit), the error
  per generalisation participant, PCK, and across folds the spread between them
* ``results.csv``       the same numbers, unrounded, with participants/frames/points per set, the
  interval bounds (``<column> ci_low``/``ci_high``), across folds ``<column> fold_min``/``fold_max``/
  ``fold_sd``, the snapshot, notes and flagged cells (``results_cm.csv``: the MAE in cm when the
  scale is known)
* ``metrics.json``      every MAE/kept/n/PCK metric per condition, for ``dvc metrics show``
* ``mae_vs_frames.csv`` for ``dvc plots``: labelled_frames, train, test, test_pcutoff, generalisation,
  generalisation_pcutoff
* ``mae_vs_frames.png``, ``bodypart_errors.png``, ``loss_curves.png``, ``learning_curve.png``
* ``participant_errors.csv`` / ``.png``: MAE per generalisation participant and condition (and per
  bodypart within participant), by pseudonym
* ``labelled_vs_predicted.png``: labelled against predicted points on the best condition's
  generalisation frame with the lowest and the one with the highest error (src/evaluation/examples.py;
  the real frame only when data.log_media allows it)
* ``trust_validation.csv``: per condition, how well each trust signal labelled frames allow (1 - likelihood,
  pose PCA error, segment length deviation, model disagreement; the temporal jump absent) and their
  cross-fitted combined score flag the generalisation points whose error exceeds 2 x the run's test MAE,
  a column per signal and figure (src/evaluation/trust_table.py; also a section of results.md)
* ``trust_thresholds.csv``: the same scores against three thresholds (2 x test MAE, the first PCK
  fraction of each frame's reference length, report.trust_fixed_px), for points and for frames (a
  frame's error: the mean over its labelled points), one row per condition, threshold, unit and score

and attaches the folder to the sweep's parent run under ``report/``, tagging the parent with the
cells on small sets (``small_sets``) and the answer to "how many frames to label"
(``frames_to_label``, ``frames_to_label_sentence``), with the trust table's figures as metrics
(``trust_auroc_likelihood_frames_<n>``, ...). Only conditions, sets, bodyparts, counts and
pseudonyms appear in the report, never participant or video identifiers.

The parts: src/tracking/runs.py reads the runs (and the pipeline's records), src/evaluation/tables.py
makes the tables from them (no MLflow), src/evaluation/render.py the text of results.md; this module
writes the files and is the only part that changes a run (closes the pipeline's parent, tags it).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src.checks import check_config
from src.errors import ConfigError, DataError
from src.evaluation.examples import frame_examples
from src.evaluation.metric_names import MetricName
from src.evaluation.plots import (
    plot_bodypart_errors_by_condition,
    plot_labelled_vs_predicted,
    plot_learning_curve,
    plot_loss_curves,
    plot_mae_vs_frames,
    plot_nothing,
    plot_participant_errors,
)
from src.evaluation.render import _measured, markdown  # noqa: F401  (_measured: tests/study/test_kfold.py)
from src.evaluation.strategies import write_strategies
from src.evaluation.study_errors import (
    Bootstrap,
    bodypart_by_participant,
    has_folds,
    participant_errors,
    participant_long,
    participant_matrix,
    pool_bodyparts,
    pool_folds,
)
from src.evaluation.tables import (  # noqa: F401  (with_skipped: tests/evaluation/test_report_pictures.py)
    ReportData,
    how_many_frames,
    paper_table,
    results_table,
    small_sets_text,
    with_skipped,
)
from src.evaluation.trust_table import (
    FIXED_PX,
    pooled_points,
    thresholds_of,
    trust_metrics,
    trust_tables,
)
from src.evaluation.uncertainty import FramesToLabel
from src.files import atomic_files
from src.tracking import store
from src.tracking.queries import collect_runs, find_sweep, open_experiment
from src.tracking.runs import (  # noqa: F401  (pipeline_runs: tests/study/test_kfold.py)
    bodypart_errors,
    logged_predictions,
    loss_histories,
    pipeline_records,
    pipeline_runs,
    pipeline_skipped,
    with_run_tags,
)

PAPER_TABLE = Path(__file__).resolve().parents[2] / "docs" / "paper_table1.csv"


def dataset_facts(dataset_yaml: Path) -> dict | None:
    """What the report says about the prepared data set, from its dataset.yaml (None if absent).

    ``split_kind`` (participants | frames | kfold), ``generalisation_meaning``, ``participants``
    per set and the labelled (train) frames per development video: ``train_frames`` (min, median,
    max, videos). A cross-validation's folder has a dataset.yaml per fold (``fold_<k>/``): its
    facts are those of every fold together, with ``folds`` their number.
    """
    path = Path(dataset_yaml)
    if not path.is_file():
        return _fold_facts(path)
    facts = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    used = [
        int(roles["train"]["used"])
        for roles in (facts.get("frames_per_video") or {}).values()
        if "train" in roles
    ]
    return {
        "path": str(path),
        "kind": facts.get("kind"),
        "split_kind": facts.get("split_kind", "participants"),
        "generalisation_meaning": facts.get("generalisation_meaning", ""),
        "participants": facts.get("participants") or {},
        "train_frames": _spread(used),
    }


def _fold_facts(dataset_yaml: Path) -> dict | None:
    """:func:`dataset_facts` of a cross-validation: its folds' dataset.yaml files together."""
    paths = sorted(
        dataset_yaml.parent.glob(f"fold_*/{dataset_yaml.name}"),
        key=lambda p: int(p.parent.name.removeprefix("fold_")),
    )
    if not paths:
        return None
    folds = [yaml.safe_load(p.read_text(encoding="utf-8")) or {} for p in paths]
    used = {}  # train frames per video: the same ranking in every fold that develops on it
    for facts in folds:
        for video, roles in (facts.get("frames_per_video") or {}).items():
            if "train" in roles:
                used[video] = min(used.get(video, 10**9), int(roles["train"]["used"]))
    # each participant is held out by exactly one fold: the held-out counts add up to everyone
    held_out = sum(int((f.get("participants") or {}).get("generalisation", 0)) for f in folds)
    return {
        "path": str(dataset_yaml.parent / f"fold_<k>/{dataset_yaml.name}"),
        "kind": folds[0].get("kind"),
        "split_kind": folds[0].get("split_kind", "kfold"),
        "generalisation_meaning": folds[0].get("generalisation_meaning", ""),
        "participants": {"generalisation": held_out} if held_out else {},
        "train_frames": _spread(list(used.values())),
        "folds": len(folds),
    }


def _spread(used: list[int]) -> tuple[int, float, int, int] | None:
    return (min(used), float(np.median(used)), max(used), len(used)) if used else None


def write_report(data: ReportData, out_dir: Path) -> Path:
    """Write results.md/.csv, metrics.json, mae_vs_frames.csv and the plots; returns ``out_dir``.

    Every file is written beside and then renamed into place: an interrupted report leaves the
    previous one whole.
    """
    table, table_cm = data.table, data.table_cm
    with atomic_files(Path(out_dir)) as staging:
        _write_tables(data, staging)
        # the paper's cutoff is 0.8: other cutoffs stay empty
        paper = data.paper.reindex(columns=table.columns) if data.paper is not None else None
        decision = _plot_tables(data, paper, staging)
        _write_participants(data, decision, staging)
        if data.trust is not None:
            data.trust.to_csv(staging / "trust_validation.csv", float_format="%.6g")
        if data.trust_thresholds is not None:
            data.trust_thresholds.to_csv(
                staging / "trust_thresholds.csv", index=False, float_format="%.6g"
            )
        has_cm = table_cm is not None and table_cm.notna().any().any()
        shown = replace(data, table_cm=table_cm if has_cm else None, paper=paper)
        (staging / "results.md").write_text(markdown(shown, staging), encoding="utf-8")
    return Path(out_dir)


def _write_tables(data: ReportData, staging: Path) -> None:
    """results.csv, results_cm.csv, mae_vs_frames.csv and metrics.json."""
    runs, table, table_cm = data.runs, data.table, data.table_cm
    results_table(data).to_csv(staging / "results.csv")
    (table_cm if table_cm is not None else table.where(table.isna())).to_csv(
        staging / "results_cm.csv"
    )
    wide = table.rename(columns=lambda c: c.split(" ")[0].replace(",", "_pcutoff")).rename_axis(
        "labelled_frames"
    )
    # for `dvc plots`: one column per set, stable names
    wide.to_csv(staging / "mae_vs_frames.csv")
    # every evaluation metric (and a pooled row's interval notes)
    wanted = [c for c in runs if MetricName.parse(c) is not None]
    metrics = {
        f"frames_{n}": row.dropna().to_dict()
        for n, row in runs.set_index("labelled_frames")[wanted].iterrows()
    }
    (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")


def _plot_tables(data: ReportData, paper: pd.DataFrame | None, staging: Path) -> FramesToLabel:
    """mae_vs_frames, labelled_vs_predicted, bodypart_errors, loss_curves and learning_curve.png;
    returns the frames-to-label decision the learning curve marks."""
    table = data.table
    plot_mae_vs_frames(
        table, paper, staging / "mae_vs_frames.png", *data.bounds, data.bootstrap.confidence
    )
    if data.frame_examples is not None and data.frame_examples.examples:
        plot_labelled_vs_predicted(data.frame_examples, staging / "labelled_vs_predicted.png")
    else:
        plot_nothing(
            "no generalisation predictions were logged (predictions/generalisation.csv)",
            staging / "labelled_vs_predicted.png",
        )
    if data.bodyparts is not None and len(data.bodyparts):
        plot_bodypart_errors_by_condition(data.bodyparts, staging / "bodypart_errors.png")
    else:
        plot_nothing("no errors per bodypart were logged", staging / "bodypart_errors.png")
    if data.losses is not None and len(data.losses):
        plot_loss_curves(data.losses, staging / "loss_curves.png")
    else:
        plot_nothing(
            "no condition was trained (condition 0 only, or reused models without loss history)",
            staging / "loss_curves.png",
        )
    decision, fit, _ = how_many_frames(data)
    low, high = data.bounds
    plot_learning_curve(table, low, high, staging / "learning_curve.png", fit, decision.condition)
    return decision


def _write_participants(data: ReportData, decision: FramesToLabel, staging: Path) -> None:
    """participant_errors.csv and .png (the bodyparts of the ``decision``'s condition)."""
    participants = data.participants if data.participants is not None else pd.DataFrame()
    participant_long(participants).to_csv(
        staging / "participant_errors.csv", index=False, float_format="%.6g"
    )
    matrix = participant_matrix(participants)
    if len(matrix):
        at = decision.condition if decision.condition is not None else int(matrix.columns[-1])
        plot_participant_errors(
            matrix,
            bodypart_by_participant(participants, at),
            at,
            staging / "participant_errors.png",
        )
    else:
        plot_nothing(
            "no run logged errors per participant (errors/participants.csv)",
            staging / "participant_errors.png",
        )


def report_settings(cfg: DictConfig) -> dict:
    """report.compare_paper (resolved to a bool), min_participants, min_points; checked."""
    settings = cfg.report
    compare = settings.get("compare_paper", "auto")
    if compare not in (True, False, "auto"):
        raise ConfigError(
            f"report.compare_paper={compare!r} is not allowed; choose auto, true or false "
            "(conf/report/default.yaml)."
        )
    checked = {}
    for key, default in (("min_participants", 3), ("min_points", 100)):
        value = settings.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(
                f"report.{key}={value!r} is not allowed; give an integer >= 0 "
                "(conf/report/default.yaml)."
            )
        checked[key] = value
    if compare == "auto":
        compare = str(cfg.data.kind) == "synthetic"
    check_config(cfg, "report", "evaluation")  # evaluation.bootstrap: the report uses it too
    bootstrap = cfg.evaluation.bootstrap
    return checked | {
        "compare_paper": bool(compare),
        "margin_pct": float(cfg.report.frames_to_label.margin_pct),
        "trust_fixed_px": float(settings.get("trust_fixed_px", FIXED_PX)),
        "bootstrap": Bootstrap(
            int(bootstrap.resamples),
            int(bootstrap.seed),
            float(bootstrap.confidence),
            str(cfg.evaluation.interval.method),
            int(cfg.evaluation.interval.min_participants),
        ),
    }


def report(cfg: DictConfig, attach: bool = True) -> Path:
    """The whole report for a composed config; attaches it to the sweep's parent run; returns the folder."""
    settings = report_settings(cfg)
    client, experiment_id = open_experiment(cfg.mlflow)
    runs, parent, skipped = _study_runs(cfg, client, experiment_id)
    runs = with_skipped(with_run_tags(client, runs), skipped)
    data = _report_data(cfg, settings, client, runs, parent)
    out_dir = write_report(data, Path(str(cfg.report.dir)))
    write_strategies(cfg, client, experiment_id, data, out_dir)  # only with active rounds
    decision, _, _ = how_many_frames(data)
    print(decision.sentence, flush=True)
    if attach:
        client.log_artifacts(parent.info.run_id, str(out_dir), "report")
        small = small_sets_text(data.small, data.basis) or "none"
        client.set_tag(parent.info.run_id, "small_sets", _tag_value(small))
        if decision.condition is not None:  # read by the model registry (report.register)
            client.set_tag(parent.info.run_id, "frames_to_label", str(decision.condition))
        client.set_tag(
            parent.info.run_id, "frames_to_label_sentence", _tag_value(decision.sentence)
        )
        for name, value in trust_metrics(data.trust).items():
            client.log_metric(parent.info.run_id, name, value)
    return out_dir


def _study_runs(
    cfg: DictConfig, client: MlflowClient, experiment_id: str
) -> tuple[pd.DataFrame, Run, dict[int, str]]:
    """The study's runs, its parent run and the skipped conditions' reasons (report.sweep).

    The DVC pipeline's conditions are all evaluated when the report runs: their parent run ends.
    """
    if str(cfg.report.sweep) != "pipeline":
        parent = find_sweep(client, experiment_id, str(cfg.report.sweep))
        return collect_runs(client, experiment_id, parent.info.run_id), parent, {}
    records = pipeline_records(cfg)
    skipped = pipeline_skipped(records)
    run_ids = [r["run_id"] for r in records.values() if r.get("run_id")]
    if not run_ids:
        raise DataError(
            "every condition of the pipeline was skipped, nothing to report: "
            + "; ".join(f"{n} frames: {reason}" for n, reason in skipped.items())
        )
    runs = collect_runs(client, experiment_id, run_ids=run_ids)
    parent_id = client.get_run(runs["run_id"].iloc[-1]).data.tags["mlflow.parentRunId"]
    store.finish(parent_id, failed=False)
    return runs, client.get_run(parent_id), skipped


def _report_data(
    cfg: DictConfig, settings: dict, client: MlflowClient, runs: pd.DataFrame, parent: Run
) -> ReportData:
    """The tables of the report from the study's runs (with their tags and skipped conditions)."""
    pcutoff = float(cfg.report.pcutoff)
    participants = participant_errors(client, runs)
    bodyparts = bodypart_errors(client, runs)
    generalisation = logged_predictions(client, runs)  # by run id, every fold's run
    trust, trust_thresholds = _trust_tables(cfg, settings, client, runs, generalisation)
    fold_spread = None
    if has_folds(runs):  # cross-validation: one row per condition, pooled over the folds
        runs, fold_spread = pool_folds(runs, participants, pcutoff, settings["bootstrap"])
        bodyparts = pool_bodyparts(bodyparts)
    sweep_note = (
        f"Sweep `{parent.data.tags.get('sweep', '')}`, MLflow parent run `{parent.info.run_id}` "
        f"({parent.info.status.lower()}), experiment `{cfg.mlflow.experiment}`, store `{cfg.mlflow.tracking_uri}`."
    )
    return ReportData(
        runs,
        paper_table(runs, pcutoff),
        pcutoff=pcutoff,
        table_cm=paper_table(runs, pcutoff, "cm"),
        bodyparts=bodyparts,
        losses=loss_histories(client, runs),  # across folds: the first fold's training
        paper=pd.read_csv(PAPER_TABLE, comment="#", index_col=0)
        if settings["compare_paper"]
        else None,
        dataset=dataset_facts(
            Path(str(cfg.paths.prepared_dir)) / str(cfg.data.name) / "dataset.yaml"
        ),
        min_participants=settings["min_participants"],
        min_points=settings["min_points"],
        title=f"Tracking error against labelled frames: {cfg.mlflow.experiment}",
        sweep_note=sweep_note,
        participants=participants,
        fold_spread=fold_spread,
        bootstrap=settings["bootstrap"],
        margin_pct=settings["margin_pct"],
        frame_examples=frame_examples(generalisation, cfg, runs, paper_table(runs, pcutoff)),
        trust=trust,
        trust_thresholds=trust_thresholds,
    )


def _trust_tables(
    cfg: DictConfig, settings: dict, client: MlflowClient, runs: pd.DataFrame, generalisation
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """trust_validation.csv and trust_thresholds.csv from the runs' logged predictions."""
    facts = _prepared_facts(Path(str(cfg.paths.prepared_dir)) / str(cfg.data.name))
    logged_bodyparts = {b for t in generalisation.values() for b in t["bodypart"].unique()}
    thresholds = thresholds_of(
        cfg.evaluation.pck,
        str(cfg.data.kind),
        sorted(map(str, logged_bodyparts)),
        facts.get("cm_per_px"),
        settings["trust_fixed_px"],
    )
    pooled = pooled_points(  # each fold's run judged by its own test MAE, then pooled
        runs,
        generalisation,
        logged_predictions(client, runs, "train"),  # the pose subspace's training poses
        [list(pair) for pair in facts.get("skeleton") or []],
        thresholds.reference,
    )
    return trust_tables(
        pooled,
        settings["bootstrap"],
        settings["bootstrap"].min_participants,  # as every interval of the report
        thresholds,
    )


def _prepared_facts(prepared: Path) -> dict:
    """The data set's dataset.yaml (the first fold's under cross-validation; its skeleton and
    cm_per_px are every fold's); {} when the prepared data set is not here."""
    for path in [prepared / "dataset.yaml", *sorted(prepared.glob("fold_*/dataset.yaml"))]:
        if path.is_file():
            return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {}


def _tag_value(text: str, limit: int = 5000) -> str:
    """``text`` cut to what an MLflow tag holds, saying so."""
    return text if len(text) <= limit else text[: limit - 30] + " ... (see report/results.csv)"
