"""benchmarks.limits reads the demo's profile from the lines `dvc repro` prints."""

from __future__ import annotations

from benchmarks.limits import profile_table, stage_seconds, training_loops

REPRO = [
    (1.5, "Running stage 'check':"),
    (6.0, "Running stage 'pretrain':"),
    (
        40.0,
        "train synthetic_healthy_adults: 45/420 updates [00:30<04:12,  1.49update/s, loss 0.01]",
    ),
    (
        300.0,
        "train synthetic_healthy_adults: 420/420 updates [04:50<00:00,  1.45update/s, loss 0.001]",
    ),
    (310.0, "Running stage 'train@1':"),
    (470.0, "train frames1: 240/240 updates [02:28<00:00,  1.62update/s, loss 0.003]"),
    (480.0, "Running stage 'evaluate@1':"),
    (500.0, "Running stage 'train@20':"),
    (4200.0, "train frames20: 9000/9000 updates [1:01:05<00:00,  2.46update/s, loss 0.002]"),
    (4210.0, "Running stage 'evaluate@20':"),
]


def test_each_stage_lasts_until_the_next_starts_and_only_finished_loops_count():
    stages = stage_seconds(REPRO, 4230.0)
    assert [name for name, _ in stages] == [
        "check",
        "pretrain",
        "train@1",
        "evaluate@1",
        "train@20",
        "evaluate@20",
    ]
    assert [round(s, 1) for _, s in stages] == [4.5, 304.0, 170.0, 20.0, 3710.0, 20.0]
    assert training_loops(REPRO) == [(420, 290), (240, 148), (9000, 3665)]


def test_the_profile_sums_the_runs_of_a_stage_kind():
    table = profile_table(stage_seconds(REPRO, 4230.0), training_loops(REPRO), 4230.0)
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table[2:]}
    assert rows["train"][1:3] == ["2", "3880"]
    assert rows["evaluate"][1:3] == ["2", "40"]
    assert rows["of which training loops (pretrain, train)"][1:3] == ["3", "4103"]


def test_a_run_replaces_the_figures_it_measures_and_keeps_the_others():
    from benchmarks.limits import record_run, render

    full = {
        "command": "python -m benchmarks.limits --full",
        "date": "2026-12-06",
        "conditions": "a",
    }
    record = record_run(
        {},
        {"training_vs_limit": 0.8, "demo_minutes": 27.0},
        {"training_vs_limit": "raw / ours", "demo_minutes": "steps", "_profile": ("demo", ["|x|"])},
        full,
    )
    cv = {"command": "python -m benchmarks.limits --cv", "date": "2026-12-07", "conditions": "b"}
    record = record_run(record, {"cv_study_minutes": 90.0}, {"cv_study_minutes": "repro"}, cv)
    assert {name: entry["run"] for name, entry in record["figures"].items()} == {
        "training_vs_limit": 0,
        "demo_minutes": 0,
        "cv_study_minutes": 1,
    }
    quick = {"command": "python -m benchmarks.limits", "date": "2026-12-08", "conditions": "c"}
    record = record_run(record, {"training_vs_limit": 0.9}, {"training_vs_limit": "again"}, quick)
    text = render(record)
    assert text.splitlines()[:3] == [
        "training_vs_limit: 0.900",
        "demo_minutes: 27.000",
        "cv_study_minutes: 90.000",
    ]
    assert "| demo_minutes | 27.000 | <= 15.0 | no | steps | 1 |" in text
    assert "| training_vs_limit | 0.900 | >= 0.85 | yes | again | 3 |" in text
    assert "## Where demo spends its time (run 1)" in text
    assert [line[:2] for line in text.splitlines() if line[:2] in ("1.", "2.", "3.")] == [
        "1.",
        "2.",
        "3.",
    ]
    # a run whose figures were all measured again is dropped
    record = record_run(record, {"demo_minutes": 20.0}, {"demo_minutes": "s"}, quick)
    record = record_run(record, {"cv_study_minutes": 80.0}, {"cv_study_minutes": "r"}, quick)
    assert len(record["runs"]) == 3 and "demo spends" not in render(record)


def test_a_lever_is_said_to_pay_only_above_one():
    from benchmarks.limits import record_run, render

    run = {"command": "python -m benchmarks.limits", "date": "2026-12-07", "conditions": "a"}
    for value, pays in ((0.93, "no"), (1.18, "yes")):
        record = record_run({}, {"side_by_side_gain": value}, {"side_by_side_gain": "x / y"}, run)
        assert f"| side_by_side_gain | {value:.3f} | > 1.0 pays | {pays} | x / y | 1 |" in render(
            record
        )
