"""Report of a labelled-frames sweep: the paper's Table 1 from the MLflow runs, with plots.

Run as ``python -m src.report`` after ``python -m src.train +sweep=frames`` (config group ``report``).
Writes ``<report.dir>/``:

* ``results.md``        the table in pixels (and cm), what each column means, the share of points kept by
  the p-cutoff, the paper's Table 1 beside ours, the runs it came from
* ``results.csv``       the same numbers, unrounded (``results_cm.csv`` in cm when the scale is known)
* ``metrics.json``      every MAE/kept/n metric per condition, for ``dvc metrics show``
* ``mae_vs_frames.csv`` for ``dvc plots``: labelled_frames, train, test, test_pcutoff, generalisation,
  generalisation_pcutoff
* ``mae_vs_frames.png``, ``bodypart_errors.png``, ``loss_curves.png``

and attaches the folder to the sweep's parent run under ``report/``. Only conditions, sets and
bodyparts appear in the report, never participant or video identifiers.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import KW_ONLY, dataclass, replace
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src.errors import DataError
from src.evaluation.metrics import SETS
from src.evaluation.plots import (
    plot_bodypart_errors_by_condition,
    plot_loss_curves,
    plot_mae_vs_frames,
    plot_nothing,
)
from src.files import atomic_files
from src.paths import pipeline_evaluation_dir
from src.tracking import store
from src.tracking.queries import collect_runs, find_sweep, open_experiment

log = logging.getLogger(__name__)


INDEX = "labelled frames per video"


PAPER_TABLE = Path(__file__).resolve().parents[2] / "docs" / "paper_table1.csv"


COLUMN_NOTES = {
    "train": "frames the model was trained on (fits the labels; no train set at 0 frames)",
    "test": (
        "held-out labelled frames of the development videos "
        "(same participants as training: 5 % of the labelled frames)"
    ),
    "test, p-cutoff": "test, counting only predictions with likelihood >= the cutoff",
    "generalisation": (
        "one labelled frame per video of participants never seen in training (20 % of participants)"
    ),
    "generalisation, p-cutoff": (
        "generalisation, counting only predictions with likelihood >= the cutoff"
    ),
}


def pipeline_runs(cfg: DictConfig) -> list[str]:
    """The MLflow runs of the DVC pipeline's conditions, from the evaluate stages' metrics.json."""
    run_ids = []
    for n_frames in cfg.pipeline.conditions:
        path = pipeline_evaluation_dir(cfg, int(n_frames)) / "metrics.json"
        if not path.is_file():
            raise DataError(
                f"{path} does not exist; run the pipeline's evaluate stage first: `dvc repro`."
            )
        run_ids.append(json.loads(path.read_text(encoding="utf-8"))["run_id"])
    return run_ids


def paper_table(runs: pd.DataFrame, pcutoff: float, unit: str = "px") -> pd.DataFrame:
    """The paper's Table 1 layout: MAE per condition (rows) for train, test, generalisation, +/- p-cutoff."""
    c = f"{pcutoff:g}"
    columns = {
        "train": f"mae_train_{unit}",
        "test": f"mae_test_{unit}",
        f"test, p-cutoff {c}": f"mae_test_pcutoff{c}_{unit}",
        "generalisation": f"mae_generalisation_{unit}",
        f"generalisation, p-cutoff {c}": f"mae_generalisation_pcutoff{c}_{unit}",
    }
    if unit == "px" and columns[f"test, p-cutoff {c}"] not in runs:
        raise DataError(
            f"the sweep was not evaluated at p-cutoff {c} (no metric mae_test_pcutoff{c}_px); choose "
            f"report.pcutoff among its evaluation.pcutoffs or add it: `python -m src.train +sweep=cutoff`."
        )
    table = runs.set_index("labelled_frames").reindex(columns=list(columns.values()))
    table.columns, table.index.name = list(columns), INDEX
    return table


def bodypart_errors(client: MlflowClient, runs: pd.DataFrame) -> pd.DataFrame:
    """``errors/bodyparts.csv`` of every run, with its labelled_frames (runs without it are left out)."""
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs.itertuples():
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
    paper's Table 1. Whatever is None is left out of the report (its plot says so).
    """

    runs: pd.DataFrame
    table: pd.DataFrame
    _: KW_ONLY
    pcutoff: float = 0.8
    table_cm: pd.DataFrame | None = None
    bodyparts: pd.DataFrame | None = None
    losses: pd.DataFrame | None = None
    paper: pd.DataFrame | None = None
    title: str = ""
    sweep_note: str = ""


def write_report(data: ReportData, out_dir: Path) -> Path:
    """Write results.md/.csv, metrics.json, mae_vs_frames.csv and the plots; returns ``out_dir``.

    Every file is written beside and then renamed into place: an interrupted report leaves the
    previous one whole.
    """
    runs, table, table_cm = data.runs, data.table, data.table_cm
    with atomic_files(Path(out_dir)) as staging:
        table.to_csv(staging / "results.csv")
        has_cm = table_cm is not None and table_cm.notna().any().any()
        (table_cm if table_cm is not None else table.where(table.isna())).to_csv(
            staging / "results_cm.csv"
        )
        wide = table.rename(columns=lambda c: c.split(" ")[0].replace(",", "_pcutoff")).rename_axis(
            "labelled_frames"
        )
        # for `dvc plots`: one column per set, stable names
        wide.to_csv(staging / "mae_vs_frames.csv")
        wanted = [c for c in runs if c.startswith(("mae_", "kept_", "n_"))]
        metrics = {
            f"frames_{n}": row.dropna().to_dict()
            for n, row in runs.set_index("labelled_frames")[wanted].iterrows()
        }
        (staging / "metrics.json").write_text(
            json.dumps(metrics, indent=2) + "\n", encoding="utf-8"
        )
        # the paper's cutoff is 0.8: other cutoffs stay empty
        paper = data.paper.reindex(columns=table.columns) if data.paper is not None else None
        plot_mae_vs_frames(table, paper, staging / "mae_vs_frames.png")
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
        shown = replace(data, table_cm=table_cm if has_cm else None, paper=paper)
        (staging / "results.md").write_text(markdown(shown, staging), encoding="utf-8")
    return Path(out_dir)


def markdown(data: ReportData, out_dir: Path) -> str:
    """The text of results.md (numbers rounded to 2 decimals for display only).

    ``out_dir`` holds the plots: those there are shown. ``data.table_cm`` and ``data.paper`` are
    shown as given (:func:`write_report` leaves out an all-empty cm table).
    """
    runs, table, table_cm, paper = data.runs, data.table, data.table_cm, data.paper
    c = f"{data.pcutoff:g}"
    parts = [
        f"# {data.title or 'Tracking error against labelled frames per video'}",
        data.sweep_note,
        "## Mean error (MAE) in pixels",
        _markdown(table),
    ]
    if table_cm is not None:
        parts += ["## Mean error in cm", _markdown(table_cm)]
    notes = [
        f"- **{INDEX}**: the condition, how many frames of each development video were labelled for training "
        "(0 = the initial model pre-trained on healthy adults, not trained on this data set)."
    ]
    notes += [f"- **{name}**: {note}." for name, note in COLUMN_NOTES.items()]
    parts += [
        "MAE is the mean Euclidean distance between predicted and labelled points over all bodyparts and "
        'frames of a set (DeepLabCut\'s "rmse"). Empty cells: not measured, or no point passed the cutoff.',
        "\n".join(notes),
    ]
    kept = (
        runs.set_index("labelled_frames").reindex(columns=[f"kept_{s}_pcutoff{c}" for s in SETS])
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
    plots = [
        name
        for name in ("mae_vs_frames", "bodypart_errors", "loss_curves")
        if (out_dir / f"{name}.png").is_file()
    ]
    parts += ["## Plots"] + [f"![{name}]({name}.png)" for name in plots]
    runs_md = (
        runs[["labelled_frames", "run_name", "run_id", "status"]]
        .set_index("labelled_frames")
        .rename_axis(INDEX)
    )
    parts += ["## MLflow runs", runs_md.to_markdown()]
    return "\n\n".join(p for p in parts if p) + "\n"


def _markdown(table: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """A numeric table as Markdown, rounded for display, empty cells for NaN."""
    return (
        table.astype(object)
        .where(table.notna(), None)
        .to_markdown(floatfmt=floatfmt, missingval="")
    )


def report(cfg: DictConfig, attach: bool = True) -> Path:
    """The whole report for a composed config; attaches it to the sweep's parent run; returns the folder."""
    client, experiment_id = open_experiment(cfg.mlflow)
    from_pipeline = str(cfg.report.sweep) == "pipeline"
    if from_pipeline:
        runs = collect_runs(client, experiment_id, run_ids=pipeline_runs(cfg))
        parent_id = client.get_run(runs["run_id"].iloc[-1]).data.tags["mlflow.parentRunId"]
        # every condition is evaluated: the pipeline's parent run ends
        store.finish(parent_id, failed=False)
        parent = client.get_run(parent_id)
    else:
        parent = find_sweep(client, experiment_id, str(cfg.report.sweep))
        runs = collect_runs(client, experiment_id, parent.info.run_id)
    pcutoff = float(cfg.report.pcutoff)
    sweep_note = (
        f"Sweep `{parent.data.tags.get('sweep', '')}`, MLflow parent run `{parent.info.run_id}` "
        f"({parent.info.status.lower()}), experiment `{cfg.mlflow.experiment}`, store `{cfg.mlflow.tracking_uri}`."
    )
    data = ReportData(
        runs,
        paper_table(runs, pcutoff),
        pcutoff=pcutoff,
        table_cm=paper_table(runs, pcutoff, "cm"),
        bodyparts=bodypart_errors(client, runs),
        losses=loss_histories(client, runs),
        paper=pd.read_csv(PAPER_TABLE, comment="#", index_col=0)
        if cfg.report.compare_paper
        else None,
        title=f"Tracking error against labelled frames: {cfg.mlflow.experiment}",
        sweep_note=sweep_note,
    )
    out_dir = write_report(data, Path(str(cfg.report.dir)))
    if attach:
        client.log_artifacts(parent.info.run_id, str(out_dir), "report")
    return out_dir
