"""benchmarks.active_project: a round chooses only among the labelled frames outside the held-out
block and the test frames, and its section replaces only itself in the result file."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.active import split_project_section
from benchmarks.active_project import capped_note, pool_candidates, write_section
from src.evaluation.uncertainty import FramesToLabel

VIDEO = "reachingvideo1"


def split_of_frames() -> pd.DataFrame:
    """split.csv of split=frames for one video: a held-out block between two development ranges."""
    return pd.DataFrame(
        {
            "participant": VIDEO,
            "video": VIDEO,
            "session": VIDEO,
            "set": ["development", "generalisation", "development"],
            "first_frame": [5, 46, 100],
            "last_frame": [43, 90, 245],
            "n_frames": [4, 3, 4],
        }
    )


def selection_of(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            dict(participant=VIDEO, video=VIDEO, session=VIDEO, set=s, role=r, rank=1, frame=f)
            for s, r, f in rows
        ]
    )


def test_a_round_may_choose_only_labelled_frames_outside_the_held_out_block_and_the_tests():
    labelled = np.array([5, 20, 33, 43, 46, 60, 90, 100, 145, 231, 245])
    selection = selection_of(
        [
            ("development", "test", 33),
            ("development", "train", 145),  # labelled by round 1: next_round keeps it first
            ("generalisation", "generalisation", 46),
            ("generalisation", "generalisation", 60),
            ("generalisation", "generalisation", 90),
        ]
    )
    allowed = pool_candidates(split_of_frames(), selection, VIDEO, labelled)
    assert labelled[allowed].tolist() == [5, 20, 43, 100, 145, 231, 245]
    # another video's test frame excludes nothing here
    other = pd.concat([selection, selection_of([("development", "test", 20)]).assign(video="b")])
    assert (pool_candidates(split_of_frames(), other, VIDEO, labelled) == allowed).all()


def test_the_project_section_replaces_itself_and_keeps_the_cohort_part(tmp_path):
    out = tmp_path / "active.md"
    cohort = "frames_ratio_active_vs_kmeans: 1.000\n\n# Active\n\n## Seed 42\n\ntable\n"
    out.write_text(cohort)
    write_section(out, ["## Real project: dlc-reaching", "", "first"])
    write_section(out, ["## Real project: dlc-reaching", "", "second"])
    text = out.read_text()
    assert text.startswith(cohort) and text.count("## Real project:") == 1
    assert text.endswith("second\n") and "first" not in text
    kept, project = split_project_section(text)
    assert kept.startswith(cohort) and project == "## Real project: dlc-reaching\n\nsecond\n"
    assert split_project_section(cohort) == (cohort, "")


def test_answers_at_the_largest_budget_in_every_seed_are_said_to_decide_nothing():
    def answers(kmeans: int, active: int) -> dict:
        return {
            "kmeans": FramesToLabel(kmeans, kmeans, 1.0),
            "active": FramesToLabel(active, 10, 1.0),
        }

    both = capped_note({42: answers(10, 10), 43: answers(10, 10)}, [1, 3, 10])[0]
    assert both.startswith("K-means' and active's answer is the largest budget, 10, in every seed")
    one = capped_note({42: answers(10, 3), 43: answers(10, 10)}, [1, 3, 10])[0]
    assert one.startswith("K-means' answer is the largest")
    assert capped_note({42: answers(3, 10), 43: answers(10, 3)}, [1, 3, 10]) == []
