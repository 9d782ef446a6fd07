"""benchmarks.active's verdicts: when a difference holds over seeds, the frames ratio, and whether
the profile could show a gain at all (k-means' own curve falls), whether fewer frames reach
k-means' accuracy, and the profile each --cohort runs."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.active import (
    DEFAULT_OUT,
    KMEANS_STORE,
    SeedResult,
    against_kmeans_best,
    config,
    figures_path,
    footer,
    generalisation_totals,
    holds,
    keep_figures,
    kept_figures,
    kmeans_gain,
    median_ratio,
    overrides,
    profile_of,
    seed_picture,
    sensitivity,
    share_pretrained,
)
from src.evaluation.study_errors import decide_frames_to_label
from src.evaluation.uncertainty import Interval, IntervalSettings, within_margin

NAN = float("nan")


def interval(low: float, high: float) -> Interval:
    return Interval((low + high) / 2, low, high, 6)


def test_a_difference_holds_only_when_every_seed_excludes_zero_on_one_side():
    assert holds([interval(-2, -1), interval(-3, -0.5), interval(-1, -0.1)]) == "yes (active lower)"
    assert holds([interval(1, 2), interval(0.5, 3)]) == "yes (active higher)"
    assert holds([interval(-2, -1), interval(1, 2)]) == "no"  # opposite sides
    assert holds([interval(-2, -1), interval(-1, 0.5)]) == "no"  # one includes 0
    assert holds([interval(-2, -1), Interval(-1.5, NAN, NAN, 2)]) == "no"  # one has none


def test_the_median_ratio_leaves_out_seeds_without_an_answer():
    assert median_ratio({42: 0.5, 43: 1.0, 44: NAN}) == (0.75, 2)
    ratio, known = median_ratio({42: NAN})
    assert math.isnan(ratio) and known == 0


def errors(mae_by_frames: dict[int, list[float]]) -> pd.DataFrame:
    """Participant rows as participant_errors gives them: one point each, error = the MAE."""
    rows = [
        {
            "participant": f"P{i}",
            "set": "generalisation",
            "pcutoff": np.nan,
            "labelled_frames": n,
            "error_px": mae,
        }
        for n, maes in mae_by_frames.items()
        for i, mae in enumerate(maes)
    ]
    return pd.DataFrame(rows)


def test_a_flat_kmeans_curve_is_said_to_decide_nothing():
    settings = IntervalSettings(method="t_interval", min_participants=2)
    falling = errors({1: [12.0, 13.0, 11.0, 12.5], 6: [6.0, 6.5, 5.5, 6.2]})
    flat = errors({1: [12.0, 13.0, 11.0, 12.5], 6: [12.5, 12.0, 11.5, 13.0]})
    gain_falling = kmeans_gain({"kmeans": falling}, [1, 6], settings)
    gain_flat = kmeans_gain({"kmeans": flat}, [1, 6], settings)
    assert gain_falling.estimate == np.mean([6.0, 6.5, 5.5, 6.2]) - np.mean([12, 13, 11, 12.5])
    assert gain_falling.high < 0 and gain_flat.low < 0 < gain_flat.high

    said = sensitivity([42, 43], [1, 6], {42: gain_falling, 43: gain_falling})[0]
    assert said.startswith("k-means from 1 to 6 labelled frames") and "flat" not in said
    said = sensitivity([42, 43], [1, 6], {42: gain_falling, 43: gain_flat})[0]
    assert "flat" in said and "cannot show a gain" in said


def test_the_default_cohort_profile_is_the_study_as_shipped_and_its_repeat_says_so(tmp_path):
    args = argparse.Namespace(
        cohort="default", participants=10, frames_per_video=100, iterations=None, folds=3
    )
    args.cohort_seed = 42
    study = config(overrides(args, tmp_path, 43, KMEANS_STORE))
    shipped = config([])
    assert study.synthetic.clinical == {**shipped.synthetic.clinical, "seed": 42}
    assert study.training.iterations == shipped.training.iterations
    assert (study.seed, study.split.folds) == (43, 3)

    args.cohort = "tiny"
    tiny = config(overrides(args, tmp_path, 43, KMEANS_STORE)).synthetic.clinical
    assert (tiny.n_participants, tiny.frames_per_video) == (10, 100)
    assert tiny.width_px < shipped.synthetic.clinical.width_px

    args.cohort = "default"
    args.out = DEFAULT_OUT
    repeat = footer(args, [43], [1, 2], {}, 1.0)[-1]
    assert "--cohort default --budgets 1 2 --folds 3 --seeds 43`" in repeat
    args.out = tmp_path / "seed43.md"  # a result file outside the repository is named in full
    assert f"--seeds 43 --out {args.out.resolve()}`" in footer(args, [43], [1, 2], {}, 1.0)[-1]


def test_a_round_reuses_the_studys_pretrained_models(tmp_path):
    models = tmp_path / "data" / "models"
    (models / "pretrained" / "healthy-resnet_18-abc").mkdir(parents=True)
    (models / "pretrained" / "healthy-resnet_18-abc" / "pretrained.yaml").write_text("key: abc\n")
    share_pretrained(models, tmp_path / "models_active_2")
    share_pretrained(models, tmp_path / "models_active_2")  # a resumed run links nothing twice
    seen = tmp_path / "models_active_2" / "pretrained" / "healthy-resnet_18-abc" / "pretrained.yaml"
    assert seen.read_text() == "key: abc\n"

    share_pretrained(tmp_path / "none", tmp_path / "models_active_6")  # nothing pre-trained yet
    assert not (tmp_path / "models_active_6").exists()


def test_fewer_frames_count_as_a_gain_only_at_kmeans_accuracy():
    settings = IntervalSettings(method="t_interval", min_participants=2)
    kmeans = errors(
        {1: [17.0, 18.0, 16.0, 17.5], 2: [16.0, 17.0, 15.0, 16.5], 10: [12.0, 12.5, 11.5, 12.2]}
    )
    # active stops falling at 2 frames, far above k-means' best: its answer is 2, not a gain
    worse = errors(
        {1: [17.0, 18.0, 16.0, 17.5], 2: [15.0, 16.0, 14.0, 15.5], 10: [15.5, 16.2, 14.4, 15.9]}
    )
    # active reaches k-means' best at 2 frames: a real gain
    better = errors(
        {1: [17.0, 18.0, 16.0, 17.5], 2: [12.1, 12.4, 11.6, 12.1], 10: [12.0, 12.3, 11.7, 12.0]}
    )
    for active, gain in ((worse, False), (better, True)):
        found = {"kmeans": kmeans, "active": active}
        answers = {
            s: decide_frames_to_label(e, [1, 2, 10], 10.0, settings) for s, e in found.items()
        }
        assert (answers["kmeans"].condition, answers["active"].condition) == (10, 2)
        totals = {s: {n: generalisation_totals(e, n) for n in (1, 2, 10)} for s, e in found.items()}
        difference = against_kmeans_best(totals, answers, settings, pooled=True)
        assert difference.estimate == pytest.approx(
            np.mean(active[active.labelled_frames == 2].error_px)
            - np.mean(kmeans[kmeans.labelled_frames == 10].error_px)
        )
        assert within_margin(difference, answers["kmeans"].margin_px) is gain


def test_a_kept_seed_is_read_back_only_under_the_profile_it_was_measured_with(tmp_path):
    args = argparse.Namespace(
        cohort="default", participants=10, frames_per_video=100, iterations=None, folds=3
    )
    args.cohort_seed = 42
    profile = profile_of(args, [1, 6])
    generalisation = {
        "kmeans": errors({1: [12.0, 13.0, 11.0], 6: [6.0, 6.5, 5.5]}).assign(fold=1),
        "active": errors({1: [12.0, 13.0, 11.0], 6: [7.0, 5.0, 6.0]}).assign(fold=1),
    }
    tested = errors({6: [1.0, 2.0]}).assign(fold=1, set="test")  # no verdict reads these
    measured = SeedResult(
        {name: pd.concat([table, tested]) for name, table in generalisation.items()},
        inference_s=74.5,
        round_s=[260.0, 270.0],
    )
    path = figures_path(tmp_path, "default", 43)
    keep_figures(path, profile, measured)

    read = kept_figures(path, profile)
    assert read is not None and str(path) in read.kept_from
    assert (read.inference_s, read.round_s) == (74.5, [260.0, 270.0])
    for strategy, table in generalisation.items():
        pd.testing.assert_frame_equal(
            read.errors[strategy].reset_index(drop=True), table.reset_index(drop=True)
        )
    settings = IntervalSettings(method="t_interval", min_participants=2)
    assert kmeans_gain(read.errors, [1, 6], settings) == kmeans_gain(
        measured.errors, [1, 6], settings
    )

    assert kept_figures(path, profile_of(args, [1, 2, 6])) is None  # other budgets: other rounds
    args.iterations = 100
    assert kept_figures(path, profile_of(args, [1, 6])) is None
    assert kept_figures(figures_path(tmp_path, "default", 44), profile) is None  # not measured


def test_a_seeds_picture_is_written_beside_the_result_and_shown_by_it(tmp_path):
    settings = IntervalSettings(method="t_interval", min_participants=2)
    result = SeedResult(
        {
            "kmeans": errors({1: [12.0, 13.0, 11.0], 6: [6.0, 6.5, 5.5]}).assign(fold=1),
            "active": errors({1: [12.0, 13.0, 11.0], 6: [7.0, 5.0, 6.0]}).assign(fold=1),
        }
    )
    path = tmp_path / "active-seed43.png"
    line = seed_picture(43, result, [1, 6], settings, path)
    assert line.endswith("(active-seed43.png)") and "seed 43" in line
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
