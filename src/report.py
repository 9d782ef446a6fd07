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
import os
import tempfile
from pathlib import Path

import hydra
import matplotlib
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src import tracking
from src.checks import check_config
from src.dataset import DataError, exit_on_data_error
from src.evaluate import SETS, pipeline_evaluation_dir
from src.files import atomic_files

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the Agg backend)

log = logging.getLogger(__name__)

INDEX = "labelled frames per video"
PAPER_TABLE = Path(__file__).resolve().parents[1] / "docs" / "paper_table1.csv"
SWEEP_COMMAND = "python -m src.train +sweep=frames"

COLUMN_NOTES = {
    "train": "frames the model was trained on (fits the labels; no train set at 0 frames)",
    "test": "held-out labelled frames of the development videos (same participants as training: 5 % of the labelled frames)",
    "test, p-cutoff": "test, counting only predictions with likelihood >= the cutoff",
    "generalisation": "one labelled frame per video of participants never seen in training (20 % of participants)",
    "generalisation, p-cutoff": "generalisation, counting only predictions with likelihood >= the cutoff",
}


def open_experiment(mlflow_cfg: DictConfig) -> tuple[MlflowClient, str]:
    """The client of the configured store and the experiment's id; never creates either."""
    uri = str(mlflow_cfg.tracking_uri)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise DataError(f"the MLflow store {uri} does not exist; run the sweep first: `{SWEEP_COMMAND}`.")
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(str(mlflow_cfg.experiment))
    if experiment is None:
        raise DataError(f"the MLflow store {uri} has no experiment {mlflow_cfg.experiment!r}; "
                        f"run the sweep first: `{SWEEP_COMMAND}`.")
    return client, experiment.experiment_id


def find_sweep(client: MlflowClient, experiment_id: str, sweep: str = "latest") -> mlflow.entities.Run:
    """The parent run ``sweep`` (a run id), or for ``latest`` the newest ended sweep with labelled-frames runs.

    A sweep still running is taken only when no sweep has ended (pass its id to report it anyway).
    """
    where = f"store {client.tracking_uri}, experiment id {experiment_id}"
    if sweep != "latest":
        try:
            parent = client.get_run(str(sweep))
        except MlflowException:
            raise DataError(f"report.sweep={sweep} is no run of the {where}; use latest or a sweep's parent run id "
                            "(see `make ui`).") from None
        if parent.info.experiment_id != experiment_id:
            raise DataError(f"report.sweep={sweep} belongs to another experiment than mlflow.experiment ({where}).")
        return parent
    children = client.search_runs([experiment_id], "tags.labelled_frames LIKE '%'", max_results=50000)
    parent_ids = {run.data.tags.get("mlflow.parentRunId") for run in children} - {None}
    if not parent_ids:
        raise DataError(f"no labelled-frames sweep in the {where}; run one: `{SWEEP_COMMAND}`.")
    parents = sorted((client.get_run(i) for i in parent_ids), key=lambda r: (r.info.status != "RUNNING", r.info.start_time))
    newest = parents[-1]
    if newest.info.status == "RUNNING":
        log.warning("sweep %s is still running: its report is partial", newest.info.run_id)
    running = [p.info.run_id for p in parents if p.info.status == "RUNNING" and p.info.start_time > newest.info.start_time]
    if running:
        log.warning("newer sweep(s) %s still running; reporting %s (report.sweep=<id> to choose)", running, newest.info.run_id)
    return newest


def collect_runs(client: MlflowClient, experiment_id: str, parent_run_id: str | None = None,
                 run_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per labelled-frames condition: labelled_frames, run_id, run_name, status, metrics.

    The runs are the children of ``parent_run_id``, or exactly ``run_ids``. Sorted by labelled_frames; of
    runs of the same condition the newest finished one is kept (the newest of any status when none finished).
    """
    if run_ids is not None:
        runs = [client.get_run(run_id) for run_id in run_ids]
    else:
        runs = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=50000)
    rows = [{"labelled_frames": int(run.data.tags["labelled_frames"]), "run_id": run.info.run_id,
             "run_name": run.info.run_name, "status": run.info.status, "start_time": run.info.start_time,
             "model_source": run.data.tags.get("model_source", ""), **run.data.metrics}
            for run in runs if "labelled_frames" in run.data.tags]
    if not rows:
        raise DataError(f"sweep {parent_run_id or run_ids} in store {client.tracking_uri} has no labelled-frames runs; "
                        f"run one: `{SWEEP_COMMAND}`.")
    table = pd.DataFrame(rows).assign(finished=lambda t: t["status"] == "FINISHED")
    table = table.sort_values(["finished", "start_time"]).drop_duplicates("labelled_frames", keep="last")
    return table.drop(columns="finished").sort_values("labelled_frames").reset_index(drop=True)


def pipeline_runs(cfg: DictConfig) -> list[str]:
    """The MLflow runs of the DVC pipeline's conditions, from the evaluate stages' metrics.json."""
    run_ids = []
    for n_frames in cfg.pipeline.conditions:
        path = pipeline_evaluation_dir(cfg, int(n_frames)) / "metrics.json"
        if not path.is_file():
            raise DataError(f"{path} does not exist; run the pipeline's evaluate stage first: `dvc repro`.")
        run_ids.append(json.loads(path.read_text(encoding="utf-8"))["run_id"])
    return run_ids


def paper_table(runs: pd.DataFrame, pcutoff: float, unit: str = "px") -> pd.DataFrame:
    """The paper's Table 1 layout: MAE per condition (rows) for train, test, generalisation, +/- p-cutoff."""
    c = f"{pcutoff:g}"
    columns = {"train": f"mae_train_{unit}", "test": f"mae_test_{unit}", f"test, p-cutoff {c}": f"mae_test_pcutoff{c}_{unit}",
               "generalisation": f"mae_generalisation_{unit}",
               f"generalisation, p-cutoff {c}": f"mae_generalisation_pcutoff{c}_{unit}"}
    if unit == "px" and columns[f"test, p-cutoff {c}"] not in runs:
        raise DataError(f"the sweep was not evaluated at p-cutoff {c} (no metric mae_test_pcutoff{c}_px); choose "
                        f"report.pcutoff among its evaluation.pcutoffs or add it: `python -m src.train +sweep=cutoff`.")
    table = runs.set_index("labelled_frames").reindex(columns=list(columns.values()))
    table.columns, table.index.name = list(columns), INDEX
    return table


def tidy(table: pd.DataFrame) -> pd.DataFrame:
    """A Table-1-shaped table as long rows: labelled_frames, set, with_pcutoff, mae_px (no empty cells)."""
    long = table.rename_axis("labelled_frames").reset_index().melt("labelled_frames", var_name="column", value_name="mae_px")
    long["set"] = long["column"].str.split(",").str[0]
    long["with_pcutoff"] = long["column"].str.contains("p-cutoff")
    return long.dropna(subset="mae_px")[["labelled_frames", "set", "with_pcutoff", "mae_px"]]


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
        reused = run.model_source.startswith(tracking.REUSED_PREFIX)
        source = run.model_source.removeprefix(tracking.REUSED_PREFIX) if reused else run.run_id
        for name in ("loss_train", "loss_test"):
            rows += [{"labelled_frames": run.labelled_frames, "metric": name, "step": m.step, "value": m.value}
                     for m in client.get_metric_history(source, name)]
    return pd.DataFrame(rows, columns=["labelled_frames", "metric", "step", "value"])


def write_report(runs: pd.DataFrame, table: pd.DataFrame, out_dir: Path, *, pcutoff: float = 0.8,
                 table_cm: pd.DataFrame | None = None, bodyparts: pd.DataFrame | None = None,
                 losses: pd.DataFrame | None = None, paper: pd.DataFrame | None = None, title: str = "",
                 sweep_note: str = "") -> Path:
    """Write results.md/.csv, metrics.json, mae_vs_frames.csv and the plots into ``out_dir``; returns it.

    Every file is written beside and then renamed into place: an interrupted report leaves the previous one whole.
    """
    with atomic_files(Path(out_dir)) as staging:
        table.to_csv(staging / "results.csv")
        has_cm = table_cm is not None and table_cm.notna().any().any()
        (table_cm if table_cm is not None else table.where(table.isna())).to_csv(staging / "results_cm.csv")
        wide = table.rename(columns=lambda c: c.split(" ")[0].replace(",", "_pcutoff")).rename_axis("labelled_frames")
        wide.to_csv(staging / "mae_vs_frames.csv")  # for `dvc plots`: one column per set, stable names
        wanted = [c for c in runs if c.startswith(("mae_", "kept_", "n_"))]
        metrics = {f"frames_{n}": row.dropna().to_dict() for n, row in runs.set_index("labelled_frames")[wanted].iterrows()}
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        if paper is not None:
            paper = paper.reindex(columns=table.columns)  # the paper's cutoff is 0.8: other cutoffs stay empty
        plot_mae_vs_frames(table, paper, staging / "mae_vs_frames.png")
        if bodyparts is not None and len(bodyparts):
            plot_bodypart_errors(bodyparts, staging / "bodypart_errors.png")
        else:
            plot_nothing("no errors per bodypart were logged", staging / "bodypart_errors.png")
        if losses is not None and len(losses):
            plot_loss_curves(losses, staging / "loss_curves.png")
        else:
            plot_nothing("no condition was trained (condition 0 only, or reused models without loss history)",
                         staging / "loss_curves.png")
        (staging / "results.md").write_text(
            markdown(runs, table, pcutoff, table_cm if has_cm else None, paper, title, sweep_note, staging), encoding="utf-8")
    return Path(out_dir)


def markdown(runs, table, pcutoff, table_cm, paper, title, sweep_note, out_dir: Path) -> str:
    """The text of results.md (numbers rounded to 2 decimals for display only)."""
    c = f"{pcutoff:g}"
    parts = [f"# {title or 'Tracking error against labelled frames per video'}", sweep_note,
             "## Mean error (MAE) in pixels", _markdown(table)]
    if table_cm is not None:
        parts += ["## Mean error in cm", _markdown(table_cm)]
    notes = [f"- **{INDEX}**: the condition, how many frames of each development video were labelled for training "
             "(0 = the initial model pre-trained on healthy adults, not trained on this data set)."]
    notes += [f"- **{name}**: {note}." for name, note in COLUMN_NOTES.items()]
    parts += ["MAE is the mean Euclidean distance between predicted and labelled points over all bodyparts and "
              "frames of a set (DeepLabCut's \"rmse\"). Empty cells: not measured, or no point passed the cutoff.",
              "\n".join(notes)]
    kept = runs.set_index("labelled_frames").reindex(columns=[f"kept_{s}_pcutoff{c}" for s in SETS]) * 100
    kept.columns, kept.index.name = list(SETS), INDEX
    parts += [f"## Share of points kept by p-cutoff {c} (%)",
              f"Percentage of labelled points whose prediction has likelihood >= {c}; the p-cutoff columns average over these only.",
              _markdown(kept, ".1f")]
    if paper is not None:
        beside = pd.concat({"ours": table, "paper": paper.reindex(table.index)}, axis=1).swaplevel(axis=1)
        beside = beside[[(col, who) for col in table.columns for who in ("ours", "paper")]]
        beside.columns = [f"{col} ({who})" for col, who in beside.columns]
        parts += ["## The paper's Table 1 beside ours (pixels)",
                  "Haberfehlner et al., medRxiv 2022 (720 x 575 px videos, about 0.4 cm per pixel). Pixel sizes "
                  "differ between data sets, so compare trends, or compare in cm.", _markdown(beside)]
    plots = [name for name in ("mae_vs_frames", "bodypart_errors", "loss_curves") if (out_dir / f"{name}.png").is_file()]
    parts += ["## Plots"] + [f"![{name}]({name}.png)" for name in plots]
    runs_md = runs[["labelled_frames", "run_name", "run_id", "status"]].set_index("labelled_frames").rename_axis(INDEX)
    parts += ["## MLflow runs", runs_md.to_markdown()]
    return "\n\n".join(p for p in parts if p) + "\n"


def _markdown(table: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """A numeric table as Markdown, rounded for display, empty cells for NaN."""
    return table.astype(object).where(table.notna(), None).to_markdown(floatfmt=floatfmt, missingval="")


def plot_mae_vs_frames(table: pd.DataFrame, paper: pd.DataFrame | None, path: Path) -> Path:
    """MAE against labelled frames per set, all predictions (left) and with the p-cutoff (right)."""
    ours, theirs = tidy(table), tidy(paper) if paper is not None else None
    conditions = table.index.tolist()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=120, sharey=True, layout="constrained")
    for ax, with_cutoff in zip(axes, (False, True)):
        for colour, set_name in zip(("C0", "C1", "C2"), SETS):
            for data, style, label in ((ours, "-o", set_name), (theirs, "--", f"{set_name} (paper)")):
                if data is None:
                    continue
                rows = data[(data["set"] == set_name) & (data["with_pcutoff"] == with_cutoff)]
                if len(rows):
                    ax.plot(rows["labelled_frames"], rows["mae_px"], style, color=colour, label=label,
                            alpha=1 if style == "-o" else 0.6)
        cutoff = next((col.split("p-cutoff ")[1] for col in table.columns if "p-cutoff" in col), "")
        ax.set(title=f"p-cutoff {cutoff}" if with_cutoff else "all predictions", xlabel="labelled frames per video",
               xscale="symlog", yscale="log", xticks=conditions, xticklabels=[str(n) for n in conditions])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("MAE (px)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right center", fontsize=8)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_bodypart_errors(bodyparts: pd.DataFrame, path: Path) -> Path:
    """Heatmaps of MAE per bodypart (rows) and condition (columns), test and generalisation, all predictions."""
    rows = bodyparts[bodyparts["pcutoff"].isna()]
    order = rows["bodypart"].drop_duplicates()
    sets = [s for s in ("test", "generalisation") if s in set(rows["set"])]
    wide = {s: rows[rows["set"] == s].pivot(index="bodypart", columns="labelled_frames", values="mae_px").reindex(order)
            for s in sets}
    vmax = max(w.max().max() for w in wide.values())
    fig, axes = plt.subplots(1, len(sets), figsize=(4.5 * len(sets) + 2, 0.3 * len(order) + 1.6), dpi=120,
                             sharey=True, squeeze=False)
    for ax, (set_name, w) in zip(axes[0], wide.items()):
        image = ax.imshow(w, cmap="magma_r", vmin=0, vmax=vmax, aspect="auto")
        for (i, j), value in np.ndenumerate(w.to_numpy()):
            if value == value:
                ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7,
                        color="white" if value > 0.6 * vmax else "black")
        ax.set(title=set_name, xlabel="labelled frames per video", xticks=range(w.shape[1]), yticks=range(w.shape[0]),
               xticklabels=w.columns, yticklabels=w.index)
    fig.colorbar(image, ax=axes[0].tolist(), label="MAE (px)")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_nothing(message: str, path: Path) -> Path:
    """A small picture that says why a plot is empty (every plot file the report promises exists)."""
    fig = plt.figure(figsize=(5, 1), dpi=100)
    fig.text(0.5, 0.5, message, ha="center", va="center", fontsize=9)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_loss_curves(losses: pd.DataFrame, path: Path) -> Path:
    """Training and test loss per epoch, one line per condition."""
    conditions = sorted(losses["labelled_frames"].unique())
    colours = dict(zip(conditions, plt.cm.viridis(np.linspace(0, 0.9, len(conditions)))))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), dpi=120, sharey=True)
    for ax, name in zip(axes, ("loss_train", "loss_test")):
        for n, rows in losses[losses["metric"] == name].groupby("labelled_frames"):
            ax.plot(rows["step"], rows["value"], marker="." if name == "loss_test" else None, color=colours[n],
                    label=str(n))
        ax.set(title=name.replace("loss_", "") + " loss", xlabel="epoch", yscale="log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("loss")
    axes[1].legend(fontsize=8, title="labelled frames\nper video")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def report(cfg: DictConfig, attach: bool = True) -> Path:
    """The whole report for a composed config; attaches it to the sweep's parent run; returns the folder."""
    client, experiment_id = open_experiment(cfg.mlflow)
    from_pipeline = str(cfg.report.sweep) == "pipeline"
    if from_pipeline:
        runs = collect_runs(client, experiment_id, run_ids=pipeline_runs(cfg))
        parent_id = client.get_run(runs["run_id"].iloc[-1]).data.tags["mlflow.parentRunId"]
        tracking.finish(parent_id, failed=False)  # every condition is evaluated: the pipeline's parent run ends
        parent = client.get_run(parent_id)
    else:
        parent = find_sweep(client, experiment_id, str(cfg.report.sweep))
        runs = collect_runs(client, experiment_id, parent.info.run_id)
    pcutoff = float(cfg.report.pcutoff)
    sweep_note = (f"Sweep `{parent.data.tags.get('sweep', '')}`, MLflow parent run `{parent.info.run_id}` "
                  f"({parent.info.status.lower()}), experiment `{cfg.mlflow.experiment}`, store `{cfg.mlflow.tracking_uri}`.")
    out_dir = write_report(
        runs, paper_table(runs, pcutoff), Path(str(cfg.report.dir)), pcutoff=pcutoff,
        table_cm=paper_table(runs, pcutoff, "cm"), bodyparts=bodypart_errors(client, runs),
        losses=loss_histories(client, runs), title=f"Tracking error against labelled frames: {cfg.mlflow.experiment}",
        paper=pd.read_csv(PAPER_TABLE, comment="#", index_col=0) if cfg.report.compare_paper else None,
        sweep_note=sweep_note)
    if attach:
        client.log_artifacts(parent.info.run_id, str(out_dir), "report")
    return out_dir


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with exit_on_data_error():
        check_config(cfg, "report")
        out_dir = report(cfg)
        print(f"results table: {out_dir / 'results.md'} (unrounded: {out_dir / 'results.csv'}); "
              "also attached to the sweep's MLflow parent run under report/")
        print("compare the runs in the MLflow UI: make ui   (then open http://127.0.0.1:5000)")


if __name__ == "__main__":
    main()
