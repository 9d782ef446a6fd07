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

and attaches the folder to the sweep's parent run under ``report/``, tagging the parent with the
cells on small sets (``small_sets``) and the answer to "how many frames to label"
(``frames_to_label``, ``frames_to_label_sentence``). Only conditions, sets, bodyparts, counts and
pseudonyms appear in the report, never participant or video identifiers.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import KW_ONLY, dataclass, replace
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src.checks import check_config
from src.errors import ConfigError, DataError
from src.evaluation.examples import frame_examples
from src.evaluation.metric_names import PCT_REF, SETS, MetricName, table_cells, table_columns
from src.evaluation.pck import OFF_NOTE
from src.evaluation.plots import (
    FrameExamples,
    plot_bodypart_errors_by_condition,
    plot_labelled_vs_predicted,
    plot_learning_curve,
    plot_loss_curves,
    plot_mae_vs_frames,
    plot_nothing,
    plot_participant_errors,
)
from src.evaluation.study_errors import (
    Bootstrap,
    bodypart_by_participant,
    decide_frames_to_label,
    has_folds,
    interval_bounds,
    participant_errors,
    participant_long,
    participant_matrix,
    pool_bodyparts,
    pool_folds,
)
from src.evaluation.uncertainty import (
    NO_INTERVAL,
    FramesToLabel,
    PowerLawFit,
    fit_power_law,
    interval_methods_note,
    power_law_sentence,
    too_few_note,
)
from src.files import atomic_files
from src.paths import pipeline_evaluation_dir
from src.tracking import store
from src.tracking.queries import collect_runs, find_sweep, open_experiment

log = logging.getLogger(__name__)


INDEX = "labelled frames per video"


PAPER_TABLE = Path(__file__).resolve().parents[2] / "docs" / "paper_table1.csv"


# The live curve of DeepLabCut's in-training test rmse (src/tracking/live_curves.py TRAINING_RMSE;
# not imported: the report stage does not run that module).
TRAINING_RMSE = "dlc_training_rmse_matched_test_px"

# Tags of a condition's run the report shows (set by the evaluation and by condition 0).
RUN_TAGS = (
    "evaluation.snapshot",  # last | best: what evaluation.snapshot asked for
    "evaluated_snapshot",  # DeepLabCut's name of the snapshot evaluated, e.g. snapshot-best-080.pt
    "evaluated_epoch",  # the epochs it was trained for
    "bodyparts_evaluated",  # condition 0 on the bodyparts it shares with the initial model: "5 of 12: ..."
    "condition_note",  # why a condition is evaluated differently
    "skipped_reason",  # why a condition has no numbers
    "interval_method",  # what made the run's interval bounds (evaluation.interval.method)
)

SMALL = "†"  # a cell on fewer than report.min_participants participants or report.min_points points
NOTED = "‡"  # a row evaluated differently (condition_note / bodyparts_evaluated)

COLUMN_NOTES = {
    "train": "frames the model was trained on (fits the labels; no train set at 0 frames)",
    "test": (
        "held-out labelled frames of the development videos "
        "(same participants as training, never trained on; the same frames in every condition)"
    ),
    "test, p-cutoff": "test, counting only predictions with likelihood >= the cutoff",
    "generalisation": (
        "labelled frames of participants never seen in training (the generalisation set)"
    ),
    "generalisation, p-cutoff": (
        "generalisation, counting only predictions with likelihood >= the cutoff"
    ),
}

GENERALISATION_BY_SPLIT = {
    "participants": COLUMN_NOTES["generalisation"],
    "frames": (
        "held-out frames of the same participants' videos, never trained on: unseen frames of "
        "seen subjects, NOT unseen participants (split.kind=frames)"
    ),
}


def pipeline_records(cfg: DictConfig) -> dict[int | tuple[int, int], dict]:
    """The evaluate stages' metrics.json of the DVC pipeline's conditions, by labelled frames;
    under split=kfold by (fold, labelled frames), every fold of ``pipeline.folds``, each record
    with its ``fold``.

    A condition skipped by its evaluate stage says why (``"skipped": "<reason>"``), with or
    without a run.
    """
    conditions = cfg.pipeline.conditions
    folds = cfg.pipeline.get("folds", [])
    for key, value in (("conditions", conditions), ("folds", folds)):
        if isinstance(
            value, str
        ):  # `auto` composed from conf/: the pipeline's list is in params.yaml
            raise DataError(
                f"pipeline.{key}={value} is resolved in params.yaml only; read it there: "
                "`python -m src.report --config-dir . --config-name params report.sweep=pipeline`."
            )
    cells = [(int(k), int(n)) for k in folds for n in conditions] or [
        (None, int(n)) for n in conditions
    ]
    records = {}
    for fold, n_frames in cells:
        path = pipeline_evaluation_dir(cfg, n_frames, fold) / "metrics.json"
        if not path.is_file():
            raise DataError(
                f"{path} does not exist; run the pipeline's evaluate stage first: `dvc repro`."
            )
        record = json.loads(path.read_text(encoding="utf-8"))
        if fold is None:
            records[n_frames] = record
        else:
            records[(fold, n_frames)] = record | {"fold": fold}
    return records


def pipeline_runs(cfg: DictConfig) -> list[str]:
    """The MLflow runs of the DVC pipeline's conditions (of every fold), from the evaluate stages'
    metrics.json."""
    return [r["run_id"] for r in pipeline_records(cfg).values() if r.get("run_id")]


def paper_table(runs: pd.DataFrame, pcutoff: float, unit: str = "px") -> pd.DataFrame:
    """The paper's Table 1 layout: MAE per condition (rows) for train, test, generalisation, +/- p-cutoff."""
    c = f"{pcutoff:g}"
    columns = table_columns(pcutoff, unit)
    # all skipped: nothing to check
    evaluated = any(_statistic(name) == "mae" for name in runs)
    if unit == "px" and evaluated and columns[f"test, p-cutoff {c}"] not in runs:
        raise DataError(
            f"the sweep was not evaluated at p-cutoff {c} (no metric "
            f"{MetricName('mae', 'test', pcutoff).name}); choose "
            f"report.pcutoff among its evaluation.pcutoffs or add it: `python -m src.train +sweep=cutoff`."
        )
    table = runs.set_index("labelled_frames").reindex(columns=list(columns.values()))
    table.columns, table.index.name = list(columns), INDEX
    return table


def cell_basis(runs: pd.DataFrame, pcutoff: float) -> pd.DataFrame:
    """What each cell of :func:`paper_table` rests on: participants, frames and points per cell.

    Columns ``(<table column>, participants|frames|points)``; a p-cutoff cell's points are those
    kept by the cutoff. NaN where the run did not log the counts (runs logged before they existed).
    """
    c = f"{pcutoff:g}"
    indexed = runs.set_index("labelled_frames")

    def metric(name: str) -> pd.Series:
        return indexed[name] if name in indexed else pd.Series(np.nan, index=indexed.index)

    columns = {}
    for set_name in SETS:
        participants = metric(MetricName("n_participants", set_name).name)
        frames = metric(MetricName("n_frames", set_name).name)
        points = metric(MetricName("n_points", set_name).name)
        kept = (points * metric(MetricName("kept", set_name, pcutoff).name)).round()
        cells = [(set_name, points)]
        if set_name != "train":  # Table 1 has no train column with the p-cutoff
            cells.append((f"{set_name}, p-cutoff {c}", kept))
        for column, n_points in cells:
            columns |= {
                (column, "participants"): participants,
                (column, "frames"): frames,
                (column, "points"): n_points,
            }
    basis = pd.DataFrame(columns)
    basis.index.name = INDEX
    return basis


def small_cells(
    table: pd.DataFrame, basis: pd.DataFrame, min_participants: int, min_points: int
) -> pd.DataFrame:
    """True for each cell of ``table`` with a value that rests on fewer than ``min_participants``
    participants or ``min_points`` points (p-cutoff cells: kept points)."""
    flags = pd.DataFrame(False, index=table.index, columns=table.columns)
    for column in table.columns:
        participants = basis[(column, "participants")].reindex(table.index)
        points = basis[(column, "points")].reindex(table.index)
        flags[column] = table[column].notna() & (
            (participants < min_participants) | (points < min_points)
        )
    return flags


def small_sets_text(flags: pd.DataFrame, basis: pd.DataFrame) -> str:
    """The flagged cells in one line (the parent run's tag ``small_sets``), "" when none."""
    cells = []
    for n_frames, row in flags.iterrows():
        for column in row.index[row.to_numpy(dtype=bool)]:
            n_participants = basis.loc[n_frames, (column, "participants")]
            n_points = basis.loc[n_frames, (column, "points")]
            cells.append(
                f"frames={n_frames} {column} ({_count(n_participants)} participants, "
                f"{_count(n_points)} points)"
            )
    return "; ".join(cells)


def with_run_tags(client: MlflowClient, runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a column per :data:`RUN_TAGS` entry ("" where a run does not have it)."""
    tags = []
    for run_id in runs["run_id"]:
        found = client.get_run(run_id).data.tags if run_id else {}
        tags.append({name: found.get(name, "") for name in RUN_TAGS})
    return runs.assign(**pd.DataFrame(tags, index=runs.index, columns=list(RUN_TAGS)))


def with_skipped(runs: pd.DataFrame, skipped: dict[int, str]) -> pd.DataFrame:
    """``runs`` with the reason of each skipped condition (a row of its own when it has no run)."""
    runs = runs.copy()
    if "skipped_reason" not in runs:
        runs["skipped_reason"] = ""
    for n_frames, reason in skipped.items():
        here = runs["labelled_frames"] == n_frames
        if here.any():
            runs.loc[here, "skipped_reason"] = runs.loc[here, "skipped_reason"].where(
                runs.loc[here, "skipped_reason"].astype(bool), reason
            )
        else:
            row = {"labelled_frames": n_frames, "run_id": "", "run_name": "", "status": "SKIPPED"}
            runs = pd.concat([runs, pd.DataFrame([row | {"skipped_reason": reason}])])
    return runs.fillna({c: "" for c in RUN_TAGS if c in runs}).sort_values(
        "labelled_frames", ignore_index=True
    )


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


def bodypart_errors(client: MlflowClient, runs: pd.DataFrame) -> pd.DataFrame:
    """``errors/bodyparts.csv`` of every run, with its labelled_frames (runs without it are left out)."""
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs.itertuples():
            if not run.run_id or getattr(run, "skipped_reason", ""):  # skipped: nothing to have
                continue
            try:
                path = client.download_artifacts(run.run_id, "errors/bodyparts.csv", tmp)
            except (MlflowException, OSError):
                log.warning("run %s (%s) has no errors/bodyparts.csv", run.run_id, run.run_name)
                continue
            tables.append(pd.read_csv(path).assign(labelled_frames=run.labelled_frames))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def loss_histories(client: MlflowClient, runs: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch loss_train and loss_test of every condition (from the training run when the model was reused)."""
    rows = []
    for run in runs.itertuples():
        if not run.run_id:
            continue
        reused = run.model_source.startswith(store.REUSED_PREFIX)
        source = run.model_source.removeprefix(store.REUSED_PREFIX) if reused else run.run_id
        for name in ("loss_train", "loss_test"):
            rows += [
                {
                    "labelled_frames": run.labelled_frames,
                    "metric": name,
                    "step": m.step,
                    "value": m.value,
                }
                for m in client.get_metric_history(source, name)
            ]
    return pd.DataFrame(rows, columns=["labelled_frames", "metric", "step", "value"])


@dataclass(frozen=True, eq=False)
class ReportData:
    """What a report shows: the runs of a sweep (:func:`collect_runs`) and tables made from them.

    ``table`` and ``table_cm`` are :func:`paper_table` in pixels and cm; ``bodyparts`` and
    ``losses`` come from :func:`bodypart_errors` and :func:`loss_histories`; ``paper`` is the
    paper's Table 1; ``dataset`` is :func:`dataset_facts`. Whatever is None is left out of the
    report (its plot says so). ``runs`` may hold the :data:`RUN_TAGS` columns
    (:func:`with_run_tags`); cells on fewer than ``min_participants`` participants or
    ``min_points`` points are flagged.
    """

    runs: pd.DataFrame
    table: pd.DataFrame
    _: KW_ONLY
    pcutoff: float = 0.8
    table_cm: pd.DataFrame | None = None
    bodyparts: pd.DataFrame | None = None
    losses: pd.DataFrame | None = None
    paper: pd.DataFrame | None = None
    dataset: dict | None = None
    min_participants: int = 3
    min_points: int = 100
    title: str = ""
    sweep_note: str = ""
    participants: pd.DataFrame | None = None
    fold_spread: pd.DataFrame | None = None
    bootstrap: Bootstrap = Bootstrap()
    margin_pct: float = 10.0
    frame_examples: FrameExamples | None = None  # labelled_vs_predicted.png

    @property
    def basis(self) -> pd.DataFrame:
        return cell_basis(self.runs, self.pcutoff)

    @property
    def bounds(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Lower and upper interval bounds of each cell of ``table`` (NaN: none logged)."""
        low, high = interval_bounds(self.runs, self.pcutoff)
        return low.reindex(self.table.index), high.reindex(self.table.index)

    @property
    def interval_notes(self) -> pd.DataFrame:
        """Per cell of ``table`` without bounds: why (empty when unknown or when it has bounds).

        A run that logged intervals left out only those of sets with 1 participant; runs
        evaluated before intervals existed logged none, and say nothing. Pooled folds say
        why in ``<metric>_ci_note``.
        """
        indexed = self.runs.set_index("labelled_frames")
        logged = [c for c in indexed if _bound(c) in ("low", "high")]
        any_logged = indexed[logged].notna().any(axis=1)
        low, high = self.bounds
        notes = pd.DataFrame("", index=self.table.index, columns=self.table.columns)
        for column, metric in table_cells(self.pcutoff).items():
            why = metric.with_bound("note").name
            for n in self.table.index:
                if pd.notna(low.loc[n, column]) and pd.notna(high.loc[n, column]):
                    continue
                note = indexed[why].get(n) if why in indexed else None
                if isinstance(note, str) and note:
                    notes.loc[n, column] = note
                elif _tagged(indexed, n) and self.basis.loc[n, (column, "participants")] < (
                    self.bootstrap.min_participants
                ):
                    count = int(self.basis.loc[n, (column, "participants")])
                    notes.loc[n, column] = too_few_note(count, column.split(",")[0])
                elif any_logged.get(n, False):
                    notes.loc[n, column] = NO_INTERVAL
        return notes

    @property
    def small(self) -> pd.DataFrame:
        return small_cells(self.table, self.basis, self.min_participants, self.min_points)


def _statistic(name: str) -> str | None:
    metric = MetricName.parse(name)
    return None if metric is None else metric.statistic


def _bound(name: str) -> str | None:
    metric = MetricName.parse(name)
    return None if metric is None else metric.bound


def _tagged(indexed: pd.DataFrame, n_frames) -> bool:
    """True when the condition's run recorded its interval method (it applied the minimum)."""
    method = indexed["interval_method"].get(n_frames, "") if "interval_method" in indexed else ""
    return isinstance(method, str) and bool(method)


def write_report(data: ReportData, out_dir: Path) -> Path:
    """Write results.md/.csv, metrics.json, mae_vs_frames.csv and the plots; returns ``out_dir``.

    Every file is written beside and then renamed into place: an interrupted report leaves the
    previous one whole.
    """
    runs, table, table_cm = data.runs, data.table, data.table_cm
    with atomic_files(Path(out_dir)) as staging:
        results_table(data).to_csv(staging / "results.csv")
        has_cm = table_cm is not None and table_cm.notna().any().any()
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
        (staging / "metrics.json").write_text(
            json.dumps(metrics, indent=2) + "\n", encoding="utf-8"
        )
        # the paper's cutoff is 0.8: other cutoffs stay empty
        paper = data.paper.reindex(columns=table.columns) if data.paper is not None else None
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
        plot_learning_curve(
            table, low, high, staging / "learning_curve.png", fit, decision.condition
        )
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
        shown = replace(data, table_cm=table_cm if has_cm else None, paper=paper)
        (staging / "results.md").write_text(markdown(shown, staging), encoding="utf-8")
    return Path(out_dir)


def results_table(data: ReportData) -> pd.DataFrame:
    """results.csv: the MAE table, unrounded, and what each row and cell rests on.

    Per set ``<set> participants``, ``<set> frames``, ``<set> points`` and the points kept by the
    p-cutoff (``<set>, p-cutoff <c> points``); ``snapshot`` and ``epoch`` evaluated; ``note`` (a
    skipped condition's reason, a condition evaluated differently); ``small sets``: the row's
    cells on small sets, separated by ``;``.
    """
    basis, flags = data.basis, data.small
    table = data.table.copy()
    c = f"{data.pcutoff:g}"
    low, high = data.bounds
    for column in data.table.columns:
        table[f"{column} ci_low"], table[f"{column} ci_high"] = low[column], high[column]
    if data.fold_spread is not None:
        table = table.join(data.fold_spread)
    for set_name in SETS:
        for what in ("participants", "frames", "points"):
            table[f"{set_name} {what}"] = basis[(set_name, what)].astype("Int64")
        if (f"{set_name}, p-cutoff {c}", "points") in basis:
            kept = basis[(f"{set_name}, p-cutoff {c}", "points")]
            table[f"{set_name}, p-cutoff {c} points"] = kept.astype("Int64")
    tags = _tags(data.runs)
    table["snapshot"] = tags["evaluated_snapshot"]
    table["epoch"] = pd.to_numeric(tags["evaluated_epoch"], errors="coerce").astype("Int64")
    table["note"] = [_row_note(row) for _, row in tags.iterrows()]
    table["small sets"] = [
        "; ".join(row.index[row.to_numpy(dtype=bool)]) for _, row in flags.iterrows()
    ]
    return table


def markdown(data: ReportData, out_dir: Path) -> str:
    """The text of results.md (numbers rounded to 2 decimals for display only).

    ``out_dir`` holds the plots: those there are shown. ``data.table_cm`` and ``data.paper`` are
    shown as given (:func:`write_report` leaves out an all-empty cm table).
    """
    runs, table, table_cm, paper = data.runs, data.table, data.table_cm, data.paper
    c = f"{data.pcutoff:g}"
    basis, flags, tags = data.basis, data.small, _tags(runs)
    marks = _row_marks(tags)
    # why a cell has no interval: a letter in the cell, the words once below the table
    letters = _note_letters(data.interval_notes.where(table.notna(), ""))
    shown = _cells(table, flags, marks, data.bounds, data.interval_notes, letters)
    shown["snapshot"] = [_snapshot_cell(row) for _, row in tags.iterrows()]
    skipped = _skipped_marks(tags)  # the reason is a footnote: it would widen every row
    shown["note"] = [
        f"skipped{skipped[row['skipped_reason']]}"
        if row["skipped_reason"]
        else _row_note(row, short=True)
        for _, row in tags.iterrows()
    ]
    parts = [
        f"# {data.title or 'Tracking error against labelled frames per video'}",
        data.sweep_note,
        "## What was measured",
        "\n".join(_measured(data, tags)),
        "## Mean error (MAE) in pixels",
        _text_table(shown, n_left=2),
        "\n".join(
            [f"({letter}) {note}.  " for note, letter in letters.items()]
            + _footnotes(data, tags, flags)
        ),
        _intervals_note(data),
    ]
    if table_cm is not None:
        parts += ["## Mean error in cm", _text_table(_cells(table_cm, flags, marks))]
    notes = [
        f"- **{INDEX}**: the condition, how many frames of each development video were labelled for training "
        "(0 = the initial model pre-trained on healthy adults, not trained on this data set)."
    ]
    column_notes = COLUMN_NOTES | {
        "generalisation": GENERALISATION_BY_SPLIT.get(
            (data.dataset or {}).get("split_kind", "participants"), COLUMN_NOTES["generalisation"]
        )
    }
    notes += [f"- **{name}**: {note}." for name, note in column_notes.items()]
    notes += [
        "- **snapshot**: DeepLabCut's snapshot the row's numbers come from (evaluation.snapshot: "
        "last = the last epoch of training; best = the snapshot DeepLabCut keeps as best, which "
        "its `evaluate_network` evaluates by default)."
    ]
    parts += [
        "MAE is the mean Euclidean distance between predicted and labelled points over all bodyparts and "
        'frames of a set: DeepLabCut\'s `evaluate_network` "rmse" (single animal, every labelled point), '
        "the `mae_*` metrics of the MLflow runs. It is not the test rmse DeepLabCut logs while it trains "
        f"(MLflow: `{TRAINING_RMSE}`), which matches predictions to labels and drops unmatched ones, so "
        "it reads lower. Empty cells: not measured, or no point passed the cutoff.",
        "\n".join(notes),
    ]
    parts += [
        "## What each cell rests on",
        "Participants / labelled frames / labelled points behind each set's MAE; with the p-cutoff "
        f"only the points kept by it count. {SMALL}: fewer than {data.min_participants} participants "
        f"or {data.min_points} points (report.min_participants, report.min_points).",
        _text_table(_basis_cells(basis, flags, marks)),
    ]
    kept = (
        runs.set_index("labelled_frames").reindex(
            columns=[MetricName("kept", s, data.pcutoff).name for s in SETS]
        )
        * 100
    )
    kept.columns, kept.index.name = list(SETS), INDEX
    parts += [
        f"## Share of points kept by p-cutoff {c} (%)",
        f"Percentage of labelled points whose prediction has likelihood >= {c}; "
        "the p-cutoff columns average over these only.",
        _markdown(kept, ".1f"),
    ]
    if paper is not None:
        beside = pd.concat({"ours": table, "paper": paper.reindex(table.index)}, axis=1).swaplevel(
            axis=1
        )
        beside = beside[[(col, who) for col in table.columns for who in ("ours", "paper")]]
        beside.columns = [f"{col} ({who})" for col, who in beside.columns]
        parts += [
            "## The paper's Table 1 beside ours (pixels)",
            "Haberfehlner et al., medRxiv 2022 (720 x 575 px videos, about 0.4 cm per pixel). Pixel sizes "
            "differ between data sets, so compare trends, or compare in cm.",
            _markdown(beside),
        ]
    parts += _uncertainty_sections(data, out_dir)
    plots = [
        name
        for name in ("mae_vs_frames", "labelled_vs_predicted", "bodypart_errors", "loss_curves")
        if (out_dir / f"{name}.png").is_file()
    ]
    parts += ["## Plots"] + [f"![{name}]({name}.png)" for name in plots]
    runs_md = (
        runs[["labelled_frames", "run_name", "run_id", "status"]]
        .assign(snapshot=tags["evaluated_snapshot"].to_numpy())
        .set_index("labelled_frames")
        .rename_axis(INDEX)
    )
    parts += ["## MLflow runs", runs_md.to_markdown()]
    return "\n\n".join(p for p in parts if p) + "\n"


def how_many_frames(data: ReportData) -> tuple[FramesToLabel, PowerLawFit, str]:
    """The "frames to label" decision, the power law fitted to the generalisation MAE and its sentence.

    Conditions evaluated differently (condition 0 on shared bodyparts only) or skipped are not
    compared: their MAE is not over the same points.
    """
    tags = _tags(data.runs)
    comparable = [
        int(n)
        for n in data.table.index
        if not tags.loc[n, "skipped_reason"] and not tags.loc[n, "bodyparts_evaluated"]
    ]
    participants = data.participants if data.participants is not None else pd.DataFrame()
    decision = decide_frames_to_label(participants, comparable, data.margin_pct, data.bootstrap)
    generalisation = data.table["generalisation"].reindex(comparable).dropna()
    low, high = (b["generalisation"].reindex(generalisation.index) for b in data.bounds)
    z = NormalDist().inv_cdf(0.5 + data.bootstrap.confidence / 2)
    fit = fit_power_law(generalisation.index, generalisation, (high - low) / (2 * z))
    largest = int(generalisation.index.max()) if len(generalisation) else 0
    return decision, fit, power_law_sentence(fit, largest)


def _intervals_note(data: ReportData) -> str:
    b = data.bootstrap
    return (
        f"[low, high]: {b.confidence:.0%} confidence interval of the MAE over participants, not "
        "points, because frames of one person are not independent; "
        + interval_methods_note(data.runs, b)
        + (
            " Cross-validated: each cell pools every fold's points (each participant is in the "
            'generalisation set of one fold); "Spread between folds" shows how the folds differ.'
            if data.fold_spread is not None
            else ""
        )
    )


def _uncertainty_sections(data: ReportData, out_dir: Path) -> list[str]:
    """results.md: how many frames to label, the learning curve, the error per participant, PCK
    and the spread between folds."""
    decision, _, power_law = how_many_frames(data)
    parts = [
        "## How many frames to label",
        f"**{decision.sentence}**",
        f"The margin is report.frames_to_label.margin_pct = {data.margin_pct:g} % of the best "
        "condition's generalisation MAE; a condition is within it when the upper end of the "
        f"paired interval ({data.bootstrap.method}, evaluation.interval) of its difference from "
        "the best is (the same participants in both conditions, so what a participant adds to "
        "both cancels).",
        power_law,
    ]
    if (out_dir / "learning_curve.png").is_file():
        parts.append("![learning_curve](learning_curve.png)")
    participants = data.participants if data.participants is not None else pd.DataFrame()
    matrix = participant_matrix(participants)
    parts += ["## Error per generalisation participant (px)"]
    if len(matrix):
        parts += [
            "MAE of each participant of the generalisation set (pseudonyms) per condition, all "
            "predictions; which patients the model fails on. Per video: participant_errors.csv.",
            _markdown(matrix.T.rename_axis(INDEX)),
        ]
        if (out_dir / "participant_errors.png").is_file():
            parts.append("![participant_errors](participant_errors.png)")
    else:
        parts.append("No run logged its errors per participant (errors/participants.csv).")
    pck = _pck_table(data.runs)
    if len(pck):
        parts += [
            "## PCK and error relative to a reference length",
            "PCK@f: share of points whose error is at most f times the frame's reference length "
            "(the run tag pck_reference names it: two labelled bodyparts per frame, or a fixed "
            "length); % ref: mean error as a percentage of it (src/evaluation/pck.py).",
            _markdown(pck, ".3g"),
        ]
    else:
        parts += ["## PCK and error relative to a reference length", f"{OFF_NOTE}."]
    if data.fold_spread is not None and len(data.fold_spread):
        parts += [
            "## Spread between folds",
            "Per condition and set: the MAE of each fold's runs, minimum / maximum / standard "
            "deviation over the folds (px).",
            _markdown(data.fold_spread),
        ]
    return parts


def _pck_table(runs: pd.DataFrame) -> pd.DataFrame:
    """PCK (%) and error as % of the reference length per condition and set, from the runs."""
    parsed = {c: MetricName.parse(c) for c in runs}
    metrics = {c: m for c, m in parsed.items() if m and (m.statistic == "pck" or m.unit == PCT_REF)}
    if not metrics:
        return pd.DataFrame()
    table = runs.set_index("labelled_frames")[list(metrics)].copy()
    pck = [c for c, m in metrics.items() if m.statistic == "pck"]
    table[pck] = table[pck] * 100
    table.columns = [
        f"{m.set} PCK@{m.fraction:g} (%)" if m.statistic == "pck" else f"{m.set} % ref"
        for m in metrics.values()
    ]
    return table.rename_axis(INDEX).sort_index(axis=1)


def _tags(runs: pd.DataFrame) -> pd.DataFrame:
    """The :data:`RUN_TAGS` (and model_source) of each condition, indexed by labelled frames."""
    wanted = [*RUN_TAGS, "model_source"]
    tags = runs.set_index("labelled_frames").reindex(columns=wanted)
    return tags.fillna("").astype(str).rename_axis(INDEX)


def _row_marks(tags: pd.DataFrame) -> pd.Series:
    noted = (tags["condition_note"] != "") | (tags["bodyparts_evaluated"] != "")
    return noted.map({True: f" {NOTED}", False: ""})


def _row_note(row: pd.Series, short: bool = False) -> str:
    """A skipped condition's reason, or what is different about a condition's evaluation."""
    if row["skipped_reason"]:
        return f"skipped: {row['skipped_reason']}"
    note, bodyparts = row["condition_note"], row["bodyparts_evaluated"]
    if short:
        if bodyparts:
            return f"{NOTED} bodyparts {bodyparts.split(':')[0]}"
        return NOTED if note else ""
    if note and bodyparts:
        return f"{note} (bodyparts evaluated: {bodyparts})"
    return note or (f"bodyparts evaluated: {bodyparts}" if bodyparts else "")


def _snapshot_cell(row: pd.Series) -> str:
    if row["skipped_reason"]:
        return ""
    name, which = row["evaluated_snapshot"], row["evaluation.snapshot"]
    if row["model_source"].startswith("initial model"):
        return f"initial model ({name})" if name else "initial model"
    if name:
        return f"{which}: {name}" if which else name
    return f"{which} (epoch not recorded)" if which else ""


def _cells(
    table: pd.DataFrame,
    flags: pd.DataFrame,
    marks: pd.Series,
    bounds: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    notes: pd.DataFrame | None = None,
    letters: dict[str, str] | None = None,
) -> pd.DataFrame:
    """``table`` as text: 2 decimals, with ``bounds`` as ``19.00 [8.40, 31.20]`` (``notes``: why a
    cell has none, e.g. 1 participant, shown as its letter of ``letters``, ``17.84 (a)``),
    :data:`SMALL` on flagged cells, rows marked with ``marks``."""

    def cell(n_frames, column: str, value: float, flag: bool) -> str:
        if pd.isna(value):
            return ""
        text = f"{value:.2f}"
        if bounds is not None:
            low, high = bounds[0].loc[n_frames, column], bounds[1].loc[n_frames, column]
            if pd.notna(low) and pd.notna(high):
                text += f" [{low:.2f}, {high:.2f}]"
            elif notes is not None and notes.loc[n_frames, column]:
                note = notes.loc[n_frames, column]
                text += f" ({(letters or {}).get(note, note)})"
        return text + (SMALL if flag else "")

    shown = pd.DataFrame(
        {
            column: [
                cell(n, column, value, flag)
                for n, value, flag in zip(
                    table.index, table[column], flags[column].reindex(table.index)
                )
            ]
            for column in table.columns
        },
        index=[f"{n}{marks.get(n, '')}" for n in table.index],
    )
    shown.index.name = table.index.name
    return shown


def _note_letters(notes: pd.DataFrame) -> dict[str, str]:
    """Each distinct note of ``notes`` with its letter, a, b, ... in reading order."""
    distinct = dict.fromkeys(note for _, row in notes.iterrows() for note in row if note)
    return {note: chr(ord("a") + i) for i, note in enumerate(distinct)}


def _basis_cells(basis: pd.DataFrame, flags: pd.DataFrame, marks: pd.Series) -> pd.DataFrame:
    """participants / frames / points per cell of the table, as text."""
    columns = list(dict.fromkeys(column for column, _ in basis.columns))
    cells = {}
    for column in columns:
        values = []
        for n_frames in basis.index:
            counts = [basis.loc[n_frames, (column, what)] for what in ("participants", "frames")]
            points = basis.loc[n_frames, (column, "points")]
            if all(pd.isna(v) for v in (*counts, points)):
                values.append("")
                continue
            flag = SMALL if flags.loc[n_frames, column] else ""
            values.append(" / ".join(_count(v) for v in (*counts, points)) + flag)
        cells[column] = values
    shown = pd.DataFrame(cells, index=[f"{n}{marks.get(n, '')}" for n in basis.index])
    shown.index.name = basis.index.name
    return shown


def _measured(data: ReportData, tags: pd.DataFrame) -> list[str]:
    """Bullet lines: how the data set was split, the frames per video, the snapshots evaluated."""
    lines = []
    facts = data.dataset
    if facts is None:
        lines.append(
            "- Split and frames per video: unknown here (the prepared data set's dataset.yaml "
            "was not found)."
        )
    else:
        participants = facts["participants"]
        counts = ", ".join(f"{n} {s}" for s, n in participants.items())
        if facts.get("folds"):
            held_out = participants.get("generalisation")
            lines.append(
                f"- **Cross-validation by participant** (split.kind=kfold, {facts['folds']} "
                "folds): each fold trains on the other folds' participants and holds its own out "
                "for generalisation; every participant is held out by exactly one fold"
                + (f" ({held_out} participants)" if held_out else "")
                + "."
            )
        elif facts["split_kind"] == "frames":
            lines.append(
                "- **Split by frames** (split.kind=frames): the generalisation frames are unseen "
                "frames of seen subjects, **not unseen participants**; the generalisation column "
                "does not say how well the model tracks a new patient."
                + (
                    f" (dataset.yaml: {facts['generalisation_meaning']})"
                    if facts["generalisation_meaning"]
                    else ""
                )
            )
        else:
            lines.append(
                "- **Split by participant** (split.kind=participants): the generalisation frames "
                "come from participants never seen in training"
                + (f" ({counts} participants)" if counts else "")
                + "."
            )
        if facts["train_frames"]:
            low, median, high, n_videos = facts["train_frames"]
            lines.append(
                f"- Labelled frames available per development video (train): min {low}, median "
                f"{median:g}, max {high} over {n_videos} videos; condition N labels up to N of "
                "them per video (all of a video's when it has fewer)."
            )
        folds = f" ({facts['folds']} folds)" if facts.get("folds") else ""
        lines.append(f"- From `{facts['path']}`{folds}.")
    evaluated = sorted({w for w in tags.loc[tags["skipped_reason"] == "", "evaluation.snapshot"]})
    evaluated = [w for w in evaluated if w]
    if evaluated:
        lines.append(
            f"- Snapshot evaluated: evaluation.snapshot={', '.join(evaluated)} (column snapshot: "
            "DeepLabCut's file name, with its epoch)."
        )
    return lines


def _footnotes(data: ReportData, tags: pd.DataFrame, flags: pd.DataFrame) -> list[str]:
    lines = []
    if flags.to_numpy().any():
        lines.append(
            f"{SMALL} rests on fewer than {data.min_participants} participants or "
            f'{data.min_points} labelled points (see "What each cell rests on"): a small set, '
            "read it as an indication, not an estimate."
        )
    for n_frames, row in tags.iterrows():
        if not row["skipped_reason"] and (row["condition_note"] or row["bodyparts_evaluated"]):
            lines.append(f"{NOTED} {n_frames} frames: {_row_note(row)}")
    for reason, mark in _skipped_marks(tags).items():
        skipped = ", ".join(str(n) for n in tags.index[tags["skipped_reason"] == reason])
        lines.append(f"{mark} {skipped} frames skipped: {reason}")
    return [f"{line}  " for line in lines]  # Markdown line breaks


def _skipped_marks(tags: pd.DataFrame) -> dict[str, str]:
    """The footnote mark (¹, ², ...) of each skipped condition's reason, one per distinct reason."""
    reasons = dict.fromkeys(r for r in tags["skipped_reason"] if r)
    return {r: "¹²³⁴⁵⁶⁷⁸⁹"[i] if i < 9 else f"({i + 1})" for i, r in enumerate(reasons)}


def _count(value) -> str:
    return "?" if pd.isna(value) else f"{int(value)}"


def _text_table(table: pd.DataFrame, n_left: int = 0) -> str:
    """A table of text cells as Markdown: numbers right-aligned, the last ``n_left`` columns left."""
    n_right = 1 + len(table.columns) - n_left
    return table.to_markdown(
        disable_numparse=True, colalign=("right",) * n_right + ("left",) * n_left
    )


def _markdown(table: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """A numeric table as Markdown, rounded for display, empty cells for NaN."""
    return (
        table.astype(object)
        .where(table.notna(), None)
        .to_markdown(floatfmt=floatfmt, missingval="")
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
    from_pipeline = str(cfg.report.sweep) == "pipeline"
    skipped = {}
    if from_pipeline:
        records = pipeline_records(cfg)
        # by condition (records of split=kfold are keyed by fold and condition; a condition is
        # skipped for the same reason in every fold: its initial model and bodyparts)
        skipped = {
            int(r["labelled_frames"]): str(r["skipped"])
            for r in records.values()
            if r.get("skipped")
        }
        run_ids = [r["run_id"] for r in records.values() if r.get("run_id")]
        if not run_ids:
            raise DataError(
                "every condition of the pipeline was skipped, nothing to report: "
                + "; ".join(f"{n} frames: {reason}" for n, reason in skipped.items())
            )
        runs = collect_runs(client, experiment_id, run_ids=run_ids)
        parent_id = client.get_run(runs["run_id"].iloc[-1]).data.tags["mlflow.parentRunId"]
        # every condition is evaluated: the pipeline's parent run ends
        store.finish(parent_id, failed=False)
        parent = client.get_run(parent_id)
    else:
        parent = find_sweep(client, experiment_id, str(cfg.report.sweep))
        runs = collect_runs(client, experiment_id, parent.info.run_id)
    runs = with_skipped(with_run_tags(client, runs), skipped)
    pcutoff = float(cfg.report.pcutoff)
    participants = participant_errors(client, runs)
    bodyparts = bodypart_errors(client, runs)
    fold_spread = None
    if has_folds(runs):  # cross-validation: one row per condition, pooled over the folds
        runs, fold_spread = pool_folds(runs, participants, pcutoff, settings["bootstrap"])
        bodyparts = pool_bodyparts(bodyparts)
    sweep_note = (
        f"Sweep `{parent.data.tags.get('sweep', '')}`, MLflow parent run `{parent.info.run_id}` "
        f"({parent.info.status.lower()}), experiment `{cfg.mlflow.experiment}`, store `{cfg.mlflow.tracking_uri}`."
    )
    data = ReportData(
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
        frame_examples=frame_examples(client, cfg, runs, paper_table(runs, pcutoff)),
    )
    out_dir = write_report(data, Path(str(cfg.report.dir)))
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
    return out_dir


def _tag_value(text: str, limit: int = 5000) -> str:
    """``text`` cut to what an MLflow tag holds, saying so."""
    return text if len(text) <= limit else text[: limit - 30] + " ... (see report/results.csv)"
