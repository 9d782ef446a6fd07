"""results.md: the text of the report, from its tables (src/evaluation/tables.py).

Numbers are rounded for display only; the plots shown are those found in the report's folder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from src.evaluation.metric_names import SETS, MetricName
from src.evaluation.pck import OFF_NOTE
from src.evaluation.study_errors import participant_matrix
from src.evaluation.tables import (
    INDEX,
    NOTED,
    SMALL,
    ReportData,
    count_text,
    how_many_frames,
    pck_table,
    row_note,
    run_tags,
)
from src.evaluation.trust_table import (
    ABSENT_BECAUSE,
    FLAG_RATE,
    GAIN,
    LABELS,
    SCORES,
    TIMES_TEST_MAE,
    UNITS,
    auroc_column,
    precision_column,
    threshold_words,
)
from src.evaluation.uncertainty import interval_methods_note

# The live curve of DeepLabCut's in-training test rmse (src/tracking/live_curves.py TRAINING_RMSE;
# not imported: the report stage does not run that module).
TRAINING_RMSE = "dlc_training_rmse_matched_test_px"


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


def markdown(data: ReportData, out_dir: Path) -> str:
    """The text of results.md (numbers rounded to 2 decimals for display only).

    ``out_dir`` holds the plots: those there are shown. ``data.table_cm`` and ``data.paper`` are
    shown as given (:func:`write_report` leaves out an all-empty cm table).
    """
    tags = run_tags(data.runs)
    parts = [
        f"# {data.title or 'Tracking error against labelled frames per video'}",
        data.sweep_note,
        "## What was measured",
        "\n".join(_measured(data, tags)),
        *_mae_sections(data, tags),
        *_column_notes(data),
        *_basis_sections(data, tags),
        *_paper_section(data),
        *_uncertainty_sections(data, out_dir),
        *_trust_section(data),
        *_plots_and_runs(data, tags, out_dir),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _mae_sections(data: ReportData, tags: pd.DataFrame) -> list[str]:
    """The MAE table in pixels with its intervals and footnotes, and in cm when known."""
    table, flags, marks = data.table, data.small, _row_marks(tags)
    # why a cell has no interval: a letter in the cell, the words once below the table
    letters = _note_letters(data.interval_notes.where(table.notna(), ""))
    shown = _cells(table, flags, marks, data.bounds, data.interval_notes, letters)
    shown["snapshot"] = [_snapshot_cell(row) for _, row in tags.iterrows()]
    skipped = _skipped_marks(tags)  # the reason is a footnote: it would widen every row
    shown["note"] = [
        f"skipped{skipped[row['skipped_reason']]}"
        if row["skipped_reason"]
        else row_note(row, short=True)
        for _, row in tags.iterrows()
    ]
    parts = [
        "## Mean error (MAE) in pixels",
        _text_table(shown, n_left=2),
        "\n".join(
            [f"({letter}) {note}.  " for note, letter in letters.items()]
            + _footnotes(data, tags, flags)
        ),
        _intervals_note(data),
    ]
    if data.table_cm is not None:
        parts += ["## Mean error in cm", _text_table(_cells(data.table_cm, flags, marks))]
    return parts


def _column_notes(data: ReportData) -> list[str]:
    """What MAE is and what each column of the table means."""
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
    return [
        "MAE is the mean Euclidean distance between predicted and labelled points over all bodyparts and "
        'frames of a set: DeepLabCut\'s `evaluate_network` "rmse" (single animal, every labelled point), '
        "the `mae_*` metrics of the MLflow runs. It is not the test rmse DeepLabCut logs while it trains "
        f"(MLflow: `{TRAINING_RMSE}`), which matches predictions to labels and drops unmatched ones, so "
        "it reads lower. Empty cells: not measured, or no point passed the cutoff.",
        "\n".join(notes),
    ]


def _basis_sections(data: ReportData, tags: pd.DataFrame) -> list[str]:
    """What each cell rests on, and the share of points kept by the p-cutoff."""
    c = f"{data.pcutoff:g}"
    kept = (
        data.runs.set_index("labelled_frames").reindex(
            columns=[MetricName("kept", s, data.pcutoff).name for s in SETS]
        )
        * 100
    )
    kept.columns, kept.index.name = list(SETS), INDEX
    return [
        "## What each cell rests on",
        "Participants / labelled frames / labelled points behind each set's MAE; with the p-cutoff "
        f"only the points kept by it count. {SMALL}: fewer than {data.min_participants} participants "
        f"or {data.min_points} points (report.min_participants, report.min_points).",
        _text_table(_basis_cells(data.basis, data.small, _row_marks(tags))),
        f"## Share of points kept by p-cutoff {c} (%)",
        f"Percentage of labelled points whose prediction has likelihood >= {c}; "
        "the p-cutoff columns average over these only.",
        _markdown(kept, ".1f"),
    ]


def _paper_section(data: ReportData) -> list[str]:
    """The paper's Table 1 beside ours, when report.compare_paper shows it."""
    table, paper = data.table, data.paper
    if paper is None:
        return []
    beside = pd.concat({"ours": table, "paper": paper.reindex(table.index)}, axis=1).swaplevel(
        axis=1
    )
    beside = beside[[(col, who) for col in table.columns for who in ("ours", "paper")]]
    beside.columns = [f"{col} ({who})" for col, who in beside.columns]
    return [
        "## The paper's Table 1 beside ours (pixels)",
        "Haberfehlner et al., medRxiv 2022 (720 x 575 px videos, about 0.4 cm per pixel). Pixel sizes "
        "differ between data sets, so compare trends, or compare in cm.",
        _markdown(beside),
    ]


def _plots_and_runs(data: ReportData, tags: pd.DataFrame, out_dir: Path) -> list[str]:
    """The plots found in ``out_dir`` and the MLflow runs the report comes from."""
    plots = [
        name
        for name in ("mae_vs_frames", "labelled_vs_predicted", "bodypart_errors", "loss_curves")
        if (out_dir / f"{name}.png").is_file()
    ]
    runs_md = (
        data.runs[["labelled_frames", "run_name", "run_id", "status"]]
        .assign(snapshot=tags["evaluated_snapshot"].to_numpy())
        .set_index("labelled_frames")
        .rename_axis(INDEX)
    )
    return [
        "## Plots",
        *[f"![{name}]({name}.png)" for name in plots],
        "## MLflow runs",
        runs_md.to_markdown(),
    ]


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
    pck = pck_table(data.runs)
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


def _trust_section(data: ReportData) -> list[str]:
    """How well each trust signal, and their combined score, flags the generalisation points in
    error (trust_validation.csv)."""
    if data.trust is None:
        return []
    parts = ["## Trust flags on participants the models never saw"]
    if not len(data.trust):
        return parts + [
            "No run logged its generalisation predictions (predictions/generalisation.csv) "
            "and a test MAE (mae_test_px): nothing to validate."
        ]
    b, rate = data.bootstrap, f"{FLAG_RATE:.0%}".replace("%", " %")
    parts.append(
        "Which predicted points should one distrust? On the labelled points of the "
        f"generalisation set, a point is **in error** when its error exceeds {TIMES_TEST_MAE:g} x "
        "the test MAE of the run that predicted it (`mae_test_px`; the threshold column, px). "
        "**AUROC**: the chance that a point in error scores above a correct one (0.5: chance, "
        f"1: every point in error above every correct one); **precision**: the share in error "
        f"among the {rate} of points that score worst. [low, high]: {b.confidence:.0%} "
        f"percentile interval over {b.resamples} resamples of participants, not points "
        f"(evaluation.bootstrap); {SMALL}: fewer than {b.min_participants} participants "
        "(evaluation.interval.min_participants), no interval."
        + (
            " Cross-validated: each row pools every fold's points, each judged by its own "
            "fold's threshold."
            if data.fold_spread is not None
            else ""
        )
        + (
            " Split by frames: these are unseen frames of seen participants."
            if (data.dataset or {}).get("split_kind") == "frames"
            else ""
        )
    )
    parts += [_text_table(_trust_cells(data.trust, rate)), *_trust_signals(data.trust, rate)]
    return parts + _trust_thresholds(data.trust_thresholds)


def _trust_thresholds(table: pd.DataFrame | None) -> list[str]:
    """AUROC of the main scores at every threshold, for points and frames, on the condition with
    the most labelled frames (trust_thresholds.csv), and why a threshold is absent."""
    if table is None or table.empty:
        return []
    n = table["labelled_frames"].max()
    rows = table[table["labelled_frames"] == n]
    judged = rows[rows["n_judged"].notna()]
    names = list(dict.fromkeys(rows["threshold"]))
    shown = [t for t in names if t in set(judged["threshold"])]
    reasons = rows.drop_duplicates("threshold").set_index("threshold")["absent_because"]
    absent = [
        f"{threshold_words(t)}: absent, {_words(reasons[t])}." for t in names if t not in shown
    ]
    if not shown:
        return absent
    scores = ["low_likelihood", "combined", "best_single"]
    first = judged[(judged["threshold"] == shown[0]) & (judged["unit"] == "points")]
    others = first[~first["score"].isin(scores) & first["auroc"].notna()]
    if len(others):  # the best other signal, by its points' AUROC at the first threshold
        scores.append(others.loc[others["auroc"].idxmax(), "score"])
    cells = {
        f"{unit}, {threshold_words(t)}": [
            _threshold_cell(judged, t, unit, score) for score in scores
        ]
        for unit in UNITS
        for t in shown
    }
    label = {"combined": "combined score", "best_single": "best single signal"}
    index = [label.get(s, LABELS[s]) for s in scores]
    text = pd.DataFrame(cells, index=index).rename_axis(f"AUROC, {n} labelled frames per video")
    ranges = "; ".join(
        f"{threshold_words(t)} = {_px_range(judged[judged['threshold'] == t])} px"
        for t in shown
        if not t.endswith("px")
    )
    return [
        "The same scores against other thresholds, for points and for **frames** (a frame is in "
        "error when the mean error of its labelled points exceeds the threshold; its score is the "
        "mean of its points' scores). Each threshold's combined score and best single signal are "
        f"cross-fitted anew. Thresholds here: {ranges} (reference: evaluation.pck, its first "
        "fraction; fixed px: report.trust_fixed_px).",
        _text_table(text),
        *absent,
        "Every condition, threshold, unit and score, with precision and counts: "
        "trust_thresholds.csv.",
    ]


def _threshold_cell(judged: pd.DataFrame, threshold: str, unit: str, score: str) -> str:
    """``0.68 [0.57, 0.78]``; why there is no AUROC when there is none."""
    row = judged[
        (judged["threshold"] == threshold) & (judged["unit"] == unit) & (judged["score"] == score)
    ].iloc[0]
    if pd.notna(row["auroc"]):
        return _trust_figure(row, "auroc")
    if row["n_in_error"] == 0:
        return f"no {unit} in error"
    if row["n_in_error"] == row["n_judged"]:
        return f"all {unit} in error"
    return "absent"


def _px_range(rows: pd.DataFrame) -> str:
    """``2.00`` or ``2.00 to 4.00``: a threshold's range (px) over the units judged."""
    low, high = rows["threshold_px_min"].min(), rows["threshold_px_max"].max()
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f} to {high:.2f}"


def _trust_figure(row: pd.Series, name: str) -> str:
    """``0.68 [0.57, 0.78]`` (:data:`SMALL` on a small row), "" when absent."""
    value, low, high = row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"]
    if pd.isna(value):
        return ""
    text = f"{value:.2f}"
    if pd.notna(low) and pd.notna(high):
        text += f" [{low:.2f}, {high:.2f}]"
    return text + (SMALL if row["small"] else "")


def _trust_cells(trust: pd.DataFrame, rate: str) -> pd.DataFrame:
    """The trust table per condition as text: ``0.68 [0.57, 0.78]``, :data:`SMALL` on small rows."""

    def threshold(row: pd.Series) -> str:
        low, high = row["threshold_px_min"], row["threshold_px_max"]
        return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f} to {high:.2f}"

    rows = [row for _, row in trust.iterrows()]
    shown = pd.DataFrame(
        {
            "threshold (px)": [threshold(r) for r in rows],
            "share in error": [_trust_figure(r, "share_in_error") for r in rows],
            "AUROC of 1 - likelihood": [_trust_figure(r, "auroc_likelihood") for r in rows],
            f"precision of 1 - likelihood, worst {rate}": [
                _trust_figure(r, "precision_at_5pct") for r in rows
            ],
            "AUROC of the combined score": [_trust_figure(r, "auroc_combined") for r in rows],
            "participants / frames / points": [
                " / ".join(count_text(r[c]) for c in ("participants", "frames", "points"))
                for r in rows
            ],
        },
        index=trust.index,
    )
    return shown


def _trust_signals(trust: pd.DataFrame, rate: str) -> list[str]:
    """Every signal and the combined score on the condition with the most labelled frames, the
    paired gain of the combined score over the best single signal, and what each rests on."""
    n = max(trust.index)
    row = trust.loc[n]
    absent = set(_words(row["signals_absent"]).split("; ")) - {""}
    chosen = ", ".join(LABELS[s] for s in _words(row["best_single_chosen"]).split("; ") if s)
    cells = {}
    for score in SCORES:
        missing = score in absent or (score == "best_single" and "combined" in absent)
        note = "absent: " + ABSENT_BECAUSE.get(score, ABSENT_BECAUSE["combined"])
        if not missing:
            note = f"chosen: {chosen}" if score == "best_single" and chosen else ""
        cells[LABELS[score]] = [
            _trust_figure(row, auroc_column(score)),
            _trust_figure(row, precision_column(score)),
            note,
        ]
    table = pd.DataFrame.from_dict(
        cells, orient="index", columns=["AUROC", f"precision, worst {rate}", "note"]
    ).rename_axis(f"signal, {n} labelled frames per video")
    gain, low = row[GAIN], row[f"{GAIN}_ci_low"]
    verdict = (
        "none, the combined score is absent"
        if pd.isna(gain)
        else f"{_trust_figure(row, GAIN)}: the combined score beats the best single signal "
        "(interval above 0)"
        if pd.notna(low) and low > 0
        else f"{_trust_figure(row, GAIN)}: not shown to beat the best single signal"
    )
    poses = _words(row["pca_poses"]) or "none"
    return [
        _text_table(table, n_left=1),
        f"Combined score - best single signal, paired AUROC difference: {verdict}. "
        "The combined score is a logistic "
        "regression on the signals present, and the best single signal is chosen and "
        "calibrated, each on the other participants only (leave-one-participant-out, "
        "src/trust/score.py `cross_fit`). Pose subspace fitted on: "
        f"{poses}; segment lengths against each participant's median; model disagreement: "
        "the spread of the same fold's conditions, none of which saw these participants. "
        "The temporal jump needs the videos: `python -m benchmarks.trust` (docs/trust.md). "
        "Every condition and signal, unrounded: trust_validation.csv.",
    ]


def _words(value) -> str:
    """A text cell of the trust table ("" for an empty one, NaN once written to CSV)."""
    return value if isinstance(value, str) else ""


def _row_marks(tags: pd.DataFrame) -> pd.Series:
    noted = (tags["condition_note"] != "") | (tags["bodyparts_evaluated"] != "")
    return noted.map({True: f" {NOTED}", False: ""})


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
            values.append(" / ".join(count_text(v) for v in (*counts, points)) + flag)
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
            lines.append(f"{NOTED} {n_frames} frames: {row_note(row)}")
    for reason, mark in _skipped_marks(tags).items():
        skipped = ", ".join(str(n) for n in tags.index[tags["skipped_reason"] == reason])
        lines.append(f"{mark} {skipped} frames skipped: {reason}")
    return [f"{line}  " for line in lines]  # Markdown line breaks


def _skipped_marks(tags: pd.DataFrame) -> dict[str, str]:
    """The footnote mark (¹, ², ...) of each skipped condition's reason, one per distinct reason."""
    reasons = dict.fromkeys(r for r in tags["skipped_reason"] if r)
    return {r: "¹²³⁴⁵⁶⁷⁸⁹"[i] if i < 9 else f"({i + 1})" for i, r in enumerate(reasons)}


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
