"""The report's tables from records alone (no MLflow store): exact values of two small runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from src.errors import DataError
from src.evaluation.tables import (
    INDEX,
    NOTED,
    SMALL,
    ReportData,
    cell_basis,
    count_text,
    paper_table,
    pck_table,
    results_table,
    row_note,
    run_tags,
    small_cells,
    small_sets_text,
    with_skipped,
)
from src.tracking.runs import RUN_TAGS

NO_TAGS = dict.fromkeys(RUN_TAGS, "")


def records() -> pd.DataFrame:
    """Two conditions as collect_runs gives them, with their tags: 0 (condition 0, on 5 bodyparts)
    and 10 labelled frames."""
    counts = {  # per set: participants, frames, points, share kept by p-cutoff 0.8
        0: {"train": None, "test": (4, 20, 200, 0.5), "generalisation": (2, 10, 90, 0.8)},
        10: {
            "train": (8, 80, 800, 1.0),
            "test": (4, 20, 200, 0.9),
            "generalisation": (3, 15, 150, 0.6),
        },
    }
    rows = []
    for n_frames, by_set in counts.items():
        row = {
            "labelled_frames": n_frames,
            "run_id": f"run-{n_frames}",
            "run_name": f"frames_{n_frames}",
            "status": "FINISHED",
            "model_source": "initial model" if n_frames == 0 else "trained",
        }
        for set_name, numbers in by_set.items():
            if numbers is None:
                continue
            participants, frames, points, kept = numbers
            row |= {
                f"n_{set_name}_participants": participants,
                f"n_{set_name}_frames": frames,
                f"n_{set_name}_points": points,
                f"kept_{set_name}_pcutoff0.8": kept,
                f"mae_{set_name}_px": 10.0 + n_frames / 10 + len(set_name),
            }
            if set_name != "train":
                row[f"mae_{set_name}_pcutoff0.8_px"] = 5.0 + n_frames / 10 + len(set_name)
        row |= NO_TAGS | {
            "evaluated_snapshot": f"snapshot-{n_frames:03d}.pt",
            "evaluated_epoch": str(n_frames * 2),
            "evaluation.snapshot": "last",
        }
        rows.append(row)
    runs = pd.DataFrame(rows)
    runs.loc[0, "bodyparts_evaluated"] = "5 of 12: knee, ankle, hip, wrist, elbow"
    runs["pck0.05_test"] = [0.25, 0.5]
    runs["mae_test_pct_ref"] = [12.5, 6.0]
    return runs


def test_paper_table_lays_out_the_mae_per_condition_and_column():
    table = paper_table(records(), 0.8)
    assert table.index.name == INDEX
    assert list(table.index) == [0, 10]
    assert list(table.columns) == [
        "train",
        "test",
        "test, p-cutoff 0.8",
        "generalisation",
        "generalisation, p-cutoff 0.8",
    ]
    assert np.isnan(table.loc[0, "train"])
    assert table.loc[10].tolist() == [16.0, 15.0, 10.0, 25.0, 20.0]
    assert table.loc[0, "generalisation"] == 24.0
    # in cm nothing was logged: an empty table of the same shape, no error
    assert paper_table(records(), 0.8, "cm").isna().all().all()


def test_paper_table_at_a_cutoff_never_evaluated_says_which():
    with pytest.raises(DataError, match=r"not evaluated at p-cutoff 0.6 .*mae_test_pcutoff0.6_px"):
        paper_table(records(), 0.6)


def test_cell_basis_counts_and_the_points_kept_by_the_cutoff():
    basis = cell_basis(records(), 0.8)
    assert basis.loc[10, ("train", "participants")] == 8
    assert basis.loc[10, ("train", "points")] == 800
    assert basis.loc[10, ("test, p-cutoff 0.8", "points")] == 180  # 200 x 0.9
    assert basis.loc[10, ("test, p-cutoff 0.8", "frames")] == 20
    assert basis.loc[0, ("generalisation, p-cutoff 0.8", "points")] == 72  # 90 x 0.8
    assert np.isnan(basis.loc[0, ("train", "participants")])
    assert ("train, p-cutoff 0.8", "points") not in basis  # Table 1 has no such column


def test_small_cells_flag_few_participants_or_points_and_the_text_names_them():
    runs = records()
    table, basis = paper_table(runs, 0.8), cell_basis(runs, 0.8)
    flags = small_cells(table, basis, min_participants=3, min_points=100)
    flagged = {
        (n, column) for n, row in flags.iterrows() for column in row.index[row.to_numpy(bool)]
    }
    assert flagged == {
        (0, "generalisation"),  # 2 participants
        (0, "generalisation, p-cutoff 0.8"),  # 2 participants, 72 points
        (10, "generalisation, p-cutoff 0.8"),  # 90 points kept
    }
    assert small_sets_text(flags, basis) == (
        "frames=0 generalisation (2 participants, 90 points); "
        "frames=0 generalisation, p-cutoff 0.8 (2 participants, 72 points); "
        "frames=10 generalisation, p-cutoff 0.8 (3 participants, 90 points)"
    )
    assert small_sets_text(small_cells(table, basis, 0, 0), basis) == ""


def test_with_skipped_adds_a_row_for_a_condition_without_a_run_and_keeps_a_run_s_reason():
    runs = records()
    runs.loc[1, "skipped_reason"] = "its own reason"
    out = with_skipped(runs, {5: "no labelled frames", 10: "ignored: the run has one"})
    assert out["labelled_frames"].tolist() == [0, 5, 10]
    assert out["skipped_reason"].tolist() == ["", "no labelled frames", "its own reason"]
    assert out.loc[1, ["run_id", "status", "evaluated_snapshot"]].tolist() == ["", "SKIPPED", ""]


def test_row_note_says_why_a_row_differs():
    tags = run_tags(with_skipped(records(), {5: "no labelled frames"}))
    assert row_note(tags.loc[0]) == "bodyparts evaluated: 5 of 12: knee, ankle, hip, wrist, elbow"
    assert row_note(tags.loc[0], short=True) == f"{NOTED} bodyparts 5 of 12"
    assert row_note(tags.loc[5]) == "skipped: no labelled frames"
    assert row_note(tags.loc[10]) == ""
    assert count_text(np.nan) == "?" and count_text(72.0) == "72"


def test_results_table_adds_counts_snapshot_notes_and_small_sets():
    runs = records()
    data = ReportData(runs, paper_table(runs, 0.8), pcutoff=0.8, min_participants=3)
    table = results_table(data)
    assert table.loc[10, "train participants"] == 8
    assert table.loc[10, "generalisation, p-cutoff 0.8 points"] == 90
    assert pd.isna(table.loc[0, "train points"])
    assert table["snapshot"].tolist() == ["snapshot-000.pt", "snapshot-010.pt"]
    assert table["epoch"].tolist() == [0, 20]
    assert table["small sets"].tolist() == [
        "generalisation; generalisation, p-cutoff 0.8",
        "generalisation, p-cutoff 0.8",
    ]
    assert table.loc[0, "note"].startswith("bodyparts evaluated: 5 of 12")
    assert table["test ci_low"].isna().all()  # no interval bounds logged
    assert SMALL not in "".join(table["small sets"])  # the mark is the Markdown's, not the CSV's


def test_pck_table_in_percent_per_condition():
    table = pck_table(records())
    assert list(table.columns) == ["test % ref", "test PCK@0.05 (%)"]
    assert table["test PCK@0.05 (%)"].tolist() == [25.0, 50.0]
    assert table["test % ref"].tolist() == [12.5, 6.0]
    assert pck_table(records().drop(columns=["pck0.05_test", "mae_test_pct_ref"])).empty
