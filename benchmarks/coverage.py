"""Coverage of 95 % intervals of the pooled MAE (and of a paired difference) with few participants.

Simulated studies of k participants (k = 2, 3, 4, 6, 10, 20, 40). Participant i has an expected
error ``mu_i`` drawn from one of the distributions below and ``n_i`` labelled points (log-normal,
median 150, log-sd 0.5, at least 12: points per participant vary as in real projects); the errors
of their points scatter around ``mu_i`` with SD ``within`` (2 px for ``normal``; 0.8 mu_i, like
Euclidean errors, for the others), so their observed MAE is ``mu_i`` plus noise of SD
``within / sqrt(n_i)``. Each study yields per-participant summed errors and points, exactly what
``errors/participants.csv`` holds, and every candidate makes a 95 % interval from them.

The target is the population point-weighted mean error ``theta = E[n mu] / E[n]`` (the pooled MAE
of a study with infinitely many participants); ``n`` is drawn independently of ``mu``, so
``theta = E[mu]``, known exactly for each distribution. Coverage is the share of studies whose
interval contains ``theta``; its Monte-Carlo standard error is ``sqrt(c (1 - c) / studies)``
(1000 studies: at most 1.6 points, 0.7 points at 95 %).

Paired difference: the same participants and points under two conditions, ``a`` worse than ``b``
by a factor ``rho_i = exp(log 1.1 + 0.15 z_i)`` per participant (a hard participant loses more
pixels), each condition with its own point noise. The target is ``E[n mu (rho - 1)] / E[n] =
E[mu] (exp(log 1.1 + 0.15^2 / 2) - 1)``.

Candidates: the two selectable methods of src/evaluation/uncertainty.py (``percentile_bootstrap``,
``t_interval``, whose MAE interval is on the log scale) and, defined here, BCa, the studentised
(bootstrap-t) cluster bootstrap, its log-scale version, the t-interval with Kish's effective number
of participants for degrees of freedom, and ``t_interval`` on the pixel scale for the MAE. The
log-scale bootstrap-t and the pixel-scale MAE t-interval are for the MAE only: a difference can be
negative, and ``t_interval`` makes it on the pixel scale already.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.coverage

writes benchmarks/results/coverage.md and .csv (about 4.5 CPU minutes on one core with the defaults).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm
from scipy.stats import t as student_t

from src.evaluation.uncertainty import (
    DEFAULT_METHOD,
    IntervalSettings,
    Parts,
    estimates,
    interval_of,
    percentile_interval,
    t_interval,
    weighted_values,
)

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "results" / "coverage.md"
COUNTS = (2, 3, 4, 6, 10, 20, 40)
CONFIDENCE = 0.95
TARGET = 0.93  # the coverage the chosen method must reach from 4 participants up
FROM = 4

# Cross-validated per-participant generalisation MAEs of the embedded cohort at 20 frames (px):
# README, the 5-fold study of the 10-participant synthetic cohort.
COHORT_MAES = np.array([6.06, 6.68, 7.94, 9.01, 9.45, 12.69, 13.80, 15.26, 29.03, 38.47])
COHORT_LOG_MEAN = float(np.log(COHORT_MAES).mean())
COHORT_LOG_SD = float(np.log(COHORT_MAES).std(ddof=1))

PAIRED_LOG_RATIO, PAIRED_LOG_SD = float(np.log(1.1)), 0.15


@dataclass(frozen=True)
class Distribution:
    """Participants' expected errors: ``draw(rng, shape)``, their mean, and the point SD."""

    name: str
    description: str
    draw: Callable[[np.random.Generator, tuple], np.ndarray]
    mean: float
    within: Callable[[np.ndarray], np.ndarray]


def _relative(mu: np.ndarray) -> np.ndarray:
    return 0.8 * mu


def _lognormal(mean: float, log_sd: float):
    return lambda rng, shape: mean * np.exp(log_sd * rng.standard_normal(shape) - log_sd**2 / 2)


def _mixture(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    typical = np.clip(rng.normal(10.0, 2.5, shape), 0.5, None)
    return typical * np.where(rng.random(shape) < 0.2, 4.0, 1.0)


DISTRIBUTIONS = (
    Distribution(
        "normal",
        "normal: mu ~ N(20, 5) px, points scatter by 2 px (the simulation the README quoted)",
        lambda rng, shape: rng.normal(20.0, 5.0, shape),
        20.0,
        lambda mu: np.full_like(mu, 2.0),
    ),
    Distribution(
        "lognormal_0.5",
        "log-normal: mean 20 px, log-sd 0.5",
        _lognormal(20.0, 0.5),
        20.0,
        _relative,
    ),
    Distribution(
        "lognormal_1.0",
        "log-normal: mean 20 px, log-sd 1.0 (heavier-tailed than the cohort)",
        _lognormal(20.0, 1.0),
        20.0,
        _relative,
    ),
    Distribution(
        "mixture_4x",
        "mixture: mu ~ N(10, 2.5) px, 20 % of participants 4x that",
        _mixture,
        16.0,  # 10 * (0.8 + 0.2 * 4); the clip at 0.5 px is 3.8 SD away
        _relative,
    ),
    Distribution(
        "cohort_lognormal",
        f"log-normal fitted to the embedded cohort's 10 per-participant MAEs at 20 frames "
        f"(6.06 to 38.47 px): log-mean {COHORT_LOG_MEAN:.3f}, log-sd {COHORT_LOG_SD:.3f} "
        f"(mean {np.exp(COHORT_LOG_MEAN + COHORT_LOG_SD**2 / 2):.2f} px)",
        _lognormal(float(np.exp(COHORT_LOG_MEAN + COHORT_LOG_SD**2 / 2)), COHORT_LOG_SD),
        float(np.exp(COHORT_LOG_MEAN + COHORT_LOG_SD**2 / 2)),
        _relative,
    ),
    Distribution(
        "cohort_resampled",
        "the embedded cohort's 10 per-participant MAEs drawn with replacement "
        f"(mean {COHORT_MAES.mean():.2f} px)",
        lambda rng, shape: rng.choice(COHORT_MAES, shape),
        float(COHORT_MAES.mean()),
        _relative,
    ),
)


def draw_points(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return np.maximum(np.round(150 * np.exp(0.5 * rng.standard_normal(shape))), 12.0)


def observed_sums(rng, mu: np.ndarray, n: np.ndarray, within: np.ndarray) -> np.ndarray:
    """Summed point errors: n times the participant's observed MAE (kept positive)."""
    mae = np.maximum(mu + within / np.sqrt(n) * rng.standard_normal(mu.shape), 0.01)
    return mae * n


def single_study(dist: Distribution, rng, studies: int, k: int) -> tuple[Parts, float]:
    mu, n = dist.draw(rng, (studies, k)), draw_points(rng, (studies, k))
    mu = np.maximum(mu, 0.01)
    return [(1.0, observed_sums(rng, mu, n, dist.within(mu)), n)], dist.mean


def paired_study(dist: Distribution, rng, studies: int, k: int) -> tuple[Parts, float]:
    mu, n = np.maximum(dist.draw(rng, (studies, k)), 0.01), draw_points(rng, (studies, k))
    rho = np.exp(PAIRED_LOG_RATIO + PAIRED_LOG_SD * rng.standard_normal((studies, k)))
    worse = observed_sums(rng, mu * rho, n, dist.within(mu * rho))
    baseline = observed_sums(rng, mu, n, dist.within(mu))
    truth = dist.mean * (np.exp(PAIRED_LOG_RATIO + PAIRED_LOG_SD**2 / 2) - 1)
    return [(1.0, worse, n), (-1.0, baseline, n)], truth


# Candidates defined here ------------------------------------------------------------------------


def _drawn(parts: Parts, resamples: int, rng) -> np.ndarray:
    studies, k = parts[0][1].shape
    return rng.multinomial(k, np.full(k, 1 / k), size=(studies, resamples)).astype(float)


def _resampled(parts: Parts, drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per resample: the statistic and its sandwich standard error (participant influence)."""
    theta, influence = 0.0, 0.0
    for sign, s, n in parts:
        total_n = np.einsum("sbk,sk->sb", drawn, n)
        ratio = np.einsum("sbk,sk->sb", drawn, s) / total_n
        theta = theta + sign * ratio
        influence = (
            influence + sign * (s[:, None] - ratio[..., None] * n[:, None]) / (total_n[..., None])
        )
    return theta, np.sqrt((drawn * influence**2).sum(-1))


def _pivot_quantiles(pivot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order statistics of the bootstrap-t pivot (infinite where a resample has no spread)."""
    tail = (1 - CONFIDENCE) / 2
    lower = np.quantile(pivot, tail, axis=-1, method="lower")
    upper = np.quantile(pivot, 1 - tail, axis=-1, method="higher")
    return lower, upper


def _studentised_pivot(estimate, se, theta, se_star) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        pivot = (theta - estimate[:, None]) / se_star
    difference = theta - estimate[:, None]
    spreadless = np.where(difference > 0, np.inf, np.where(difference < 0, -np.inf, 0.0))
    return np.where(se_star > 0, pivot, spreadless)


def studentised_bootstrap(parts: Parts, resamples: int, rng) -> tuple[np.ndarray, np.ndarray]:
    estimate = estimates(parts)
    theta, se_star = _resampled(parts, _drawn(parts, resamples, rng))
    _, se = _resampled(parts, np.ones((len(estimate), 1, parts[0][1].shape[1])))
    se = se[:, 0]
    lower, upper = _pivot_quantiles(_studentised_pivot(estimate, se, theta, se_star))
    with np.errstate(invalid="ignore"):
        return estimate - upper * se, estimate - lower * se


def studentised_bootstrap_log(parts: Parts, resamples: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap-t of log MAE (standard error se / MAE): bounds stay positive and skew upwards."""
    estimate = estimates(parts)
    theta, se_star = _resampled(parts, _drawn(parts, resamples, rng))
    _, se = _resampled(parts, np.ones((len(estimate), 1, parts[0][1].shape[1])))
    log_se = se[:, 0] / estimate
    pivot = _studentised_pivot(np.log(estimate), log_se, np.log(theta), se_star / theta)
    lower, upper = _pivot_quantiles(pivot)
    with np.errstate(invalid="ignore", over="ignore"):
        return estimate * np.exp(-upper * log_se), estimate * np.exp(-lower * log_se)


def bca_bootstrap(parts: Parts, resamples: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected and accelerated percentile interval; acceleration from the jackknife
    that leaves out one participant at a time."""
    estimate = estimates(parts)
    theta, _ = _resampled(parts, _drawn(parts, resamples, rng))
    below = (theta < estimate[:, None]).mean(-1) + 0.5 * (theta == estimate[:, None]).mean(-1)
    z0 = norm.ppf(np.clip(below, 0.5 / resamples, 1 - 0.5 / resamples))
    jackknife = sum(
        sign * (s.sum(-1, keepdims=True) - s) / (n.sum(-1, keepdims=True) - n)
        for sign, s, n in parts
    )
    spread = jackknife.mean(-1, keepdims=True) - jackknife
    denominator = 6 * ((spread**2).sum(-1)) ** 1.5
    with np.errstate(invalid="ignore", divide="ignore"):
        acceleration = np.where(denominator > 0, (spread**3).sum(-1) / denominator, 0.0)
    bounds = []
    for z in norm.ppf([(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2]):
        level = norm.cdf(z0 + (z0 + z) / (1 - acceleration * (z0 + z)))
        ordered = np.sort(theta, axis=-1)
        position = level * (resamples - 1)
        below_i = np.floor(position).astype(int)
        above_i = np.minimum(below_i + 1, resamples - 1)
        fraction = position - below_i
        low = np.take_along_axis(ordered, below_i[:, None], -1)[:, 0]
        high = np.take_along_axis(ordered, above_i[:, None], -1)[:, 0]
        bounds.append(low + fraction * (high - low))
    return bounds[0], bounds[1]


def _weighted_t(parts: Parts, df_kish: bool = False):
    """t_interval's standard error with other degrees of freedom."""
    z, w = weighted_values(parts)
    estimate = (w * z).sum(-1)
    k = z.shape[-1]
    sum_w2 = (w**2).sum(-1, keepdims=True)
    a = w**2 / (1 - 2 * w + sum_w2)
    se = np.sqrt((a * (z - estimate[..., None]) ** 2).sum(-1))
    if df_kish:
        df = np.maximum(1 / sum_w2[..., 0] - 1, 1.0)
    else:
        mm = np.eye(k) - w[..., :, None] - w[..., None, :] + sum_w2[..., None]
        df = sum_w2[..., 0] ** 2 / np.einsum("...i,...j,...ij->...", a, a, mm**2)
    half = student_t.ppf(0.5 + CONFIDENCE / 2, df) * se
    return estimate - half, estimate + half


CANDIDATES: dict[str, tuple[str, Callable, bool]] = {
    # name: (what it is, interval(parts, resamples, rng) -> (low, high), also for differences)
    "percentile_bootstrap": (
        "percentile cluster bootstrap (the method before; selectable)",
        lambda parts, b, rng: percentile_interval(parts, CONFIDENCE, b, int(rng.integers(2**31))),
        True,
    ),
    "bca_bootstrap": ("BCa cluster bootstrap, jackknife acceleration", bca_bootstrap, True),
    "studentized_bootstrap": (
        "bootstrap-t: resampled (estimate - MAE) / standard error",
        studentised_bootstrap,
        True,
    ),
    "studentized_bootstrap_log": (
        "bootstrap-t of log MAE",
        studentised_bootstrap_log,
        False,
    ),
    "t_interval": (
        "t-interval on participants' errors weighted by points, CR2 standard error, "
        "Satterthwaite (Bell-McCaffrey) df; an MAE on the log scale (MAE x exp(+-t se / MAE)), "
        "a difference in px (uncertainty.interval_of, the default)",
        lambda parts, b, rng: interval_of(parts, IntervalSettings(confidence=CONFIDENCE)),
        True,
    ),
    "t_interval_px": (
        "the same t-interval for an MAE in px: MAE +- t se (the same as t_interval for a "
        "difference)",
        lambda parts, b, rng: t_interval(parts, CONFIDENCE),
        False,
    ),
    "t_interval_kish": (
        "the t-interval in px with df = Kish effective participants - 1",
        lambda parts, b, rng: _weighted_t(parts, df_kish=True),
        True,
    ),
}


# The run ------------------------------------------------------------------------------------------


def run(studies: int, resamples: int, seed: int, counts=COUNTS, chunk_elements=3_000_000):
    """One row per statistic, distribution, participants and candidate: coverage, its Monte-Carlo
    standard error and the median width (px; inf where a study's interval is unbounded)."""
    rows = []
    statistics = {"mae": single_study, "difference": paired_study}
    for statistic, make in statistics.items():
        for d_index, dist in enumerate(DISTRIBUTIONS):
            for k in counts:
                rng = np.random.default_rng([seed, d_index, k, statistic == "difference"])
                chunk = max(1, min(studies, chunk_elements // (resamples * k)))
                covered = {name: [] for name in CANDIDATES}
                widths = {name: [] for name in CANDIDATES}
                for start in range(0, studies, chunk):
                    parts, truth = make(dist, rng, min(chunk, studies - start), k)
                    for name, (_, interval, paired_too) in CANDIDATES.items():
                        if statistic == "difference" and not paired_too:
                            continue
                        low, high = interval(parts, resamples, rng)
                        covered[name].append((low <= truth) & (truth <= high))
                        widths[name].append(high - low)
                for name in CANDIDATES:
                    if not covered[name]:
                        continue
                    hits = np.concatenate(covered[name])
                    coverage = float(hits.mean())
                    rows.append(
                        {
                            "statistic": statistic,
                            "distribution": dist.name,
                            "participants": k,
                            "candidate": name,
                            "coverage": coverage,
                            "mc_se": float(np.sqrt(coverage * (1 - coverage) / len(hits))),
                            "median_width_px": float(np.median(np.concatenate(widths[name]))),
                            "truth_px": truth,
                        }
                    )
    return pd.DataFrame(rows)


FITTED = ("cohort_lognormal",)  # the distribution fitted to real per-participant errors


def chosen_min_coverage(
    results: pd.DataFrame, distributions=FITTED, method: str = DEFAULT_METHOD
) -> float:
    """The chosen method's lowest coverage from :data:`FROM` participants up, for the MAE and the
    paired difference, over ``distributions`` (None: all)."""
    mine = results[(results["candidate"] == method) & (results["participants"] >= FROM)]
    if distributions is not None:
        mine = mine[mine["distribution"].isin(distributions)]
    return float(mine["coverage"].min())


def key_rows(results: pd.DataFrame, distribution: str = FITTED[0]) -> pd.DataFrame:
    """The chosen method and the percentile bootstrap on the fitted distribution, per count."""
    rows = results[
        (results["distribution"] == distribution)
        & results["candidate"].isin([DEFAULT_METHOD, "percentile_bootstrap"])
    ]
    table = rows.assign(cell=[_cell(r) for r in rows.itertuples()]).pivot(
        index=["statistic", "candidate"], columns="participants", values="cell"
    )
    order = [
        (s, c) for s in ("mae", "difference") for c in (DEFAULT_METHOD, "percentile_bootstrap")
    ]
    table = table.reindex(order)
    table.index = [f"{s}: {c}" for s, c in table.index]
    return table.rename(columns=lambda k: f"{k} participants")


def _cell(row) -> str:
    width = "inf" if not np.isfinite(row.median_width_px) else f"{row.median_width_px:.1f}"
    return f"{100 * row.coverage:.1f} ± {100 * row.mc_se:.1f} ({width})"


def _shortfalls(results: pd.DataFrame) -> str:
    """The chosen method's cells below the target from FROM participants up, in words."""
    short = results[
        (results["candidate"] == DEFAULT_METHOD)
        & (results["participants"] >= FROM)
        & (results["coverage"] < TARGET)
    ]
    if not len(short):
        return "nowhere"
    parts = []
    for (statistic, dist), rows in short.groupby(["statistic", "distribution"], sort=False):
        cells = ", ".join(f"{r.coverage:.1%} at {r.participants}" for r in rows.itertuples())
        parts.append(f"{statistic} `{dist}` ({cells})")
    return "; ".join(parts)


def markdown(results: pd.DataFrame, args, seconds: float, cpu_seconds: float) -> str:
    lines = [
        f"chosen_min_coverage_from_4: {chosen_min_coverage(results):.3f}",
        f"chosen_min_coverage_from_4_every_distribution: {chosen_min_coverage(results, None):.3f}",
        "",
        "# Coverage of 95 % participant-level intervals",
        "",
        f"Chosen method (src/evaluation/uncertainty.py default): **{DEFAULT_METHOD}**. The first "
        f"line is its lowest coverage from {FROM} participants up on the distribution fitted to "
        f"real per-participant errors ({', '.join(f'`{d}`' for d in FITTED)}), for the MAE and "
        "the paired difference; the second the same over every distribution below, including "
        "those where no candidate reaches 93 % (a minority of participants with several times the "
        "typical error, which a study of 4-10 participants often does not draw at all: see the "
        "tables).",
        "",
        f"## Key rows: `{FITTED[0]}`",
        "",
        key_rows(results).to_markdown(),
        "",
        f"Where {DEFAULT_METHOD} stays below {TARGET:.0%} from {FROM} participants up: "
        + _shortfalls(results)
        + ".",
        "",
        f"Command: `OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m benchmarks.coverage "
        f"--studies {args.studies} --resamples {args.resamples} --seed {args.seed}` "
        f"({cpu_seconds / 60:.1f} CPU min on one core, {seconds / 60:.1f} min wall on a "
        f"{platform.machine()} machine of {os.cpu_count()} cores shared with other jobs).",
        "",
        "## Conditions",
        "",
        f"- {args.studies} simulated studies per cell; bootstrap candidates use {args.resamples} "
        "resamples; nominal coverage 95 %. A cell reads `coverage ± Monte-Carlo SE (median "
        "width in px)`, in percent; `inf`: at least half the intervals are unbounded.",
        "- Target: the population point-weighted mean error E[n mu] / E[n] (= E[mu], points drawn "
        "independently of the error); for the paired difference E[n mu (rho - 1)] / E[n].",
        "- Points per participant: log-normal, median 150, log-sd 0.5, at least 12; point errors "
        "scatter around the participant's error (2 px for normal, 0.8 x it otherwise).",
        "- Paired difference: the same participants and points under two conditions, the worse "
        f"one by a factor exp(log 1.1 + {PAIRED_LOG_SD} z) per participant.",
        "- Distributions of the participants' errors:",
    ]
    lines += [f"  - `{d.name}`: {d.description}." for d in DISTRIBUTIONS]
    lines += ["- Candidates:"]
    lines += [f"  - `{name}`: {what}." for name, (what, _, _) in CANDIDATES.items()]
    from_4 = results[results["participants"] >= FROM]
    fitted = from_4[from_4["distribution"].isin(FITTED)]
    summary = pd.DataFrame(
        {
            "fitted: min coverage %": fitted.groupby(["statistic", "candidate"], sort=False)[
                "coverage"
            ].min()
            * 100,
            "every distribution: min coverage %": from_4.groupby(
                ["statistic", "candidate"], sort=False
            )["coverage"].min()
            * 100,
            "where": from_4.groupby(["statistic", "candidate"], sort=False)["coverage"].agg(
                lambda c: _argmin_label(results.loc[c.index])
            ),
            f"median width at {FROM}, fitted (px)": fitted[fitted["participants"] == FROM]
            .groupby(["statistic", "candidate"], sort=False)["median_width_px"]
            .first(),
        }
    )
    summary.index = [f"{s}: {c}" for s, c in summary.index]
    lines += [
        "",
        f"## Lowest coverage from {FROM} participants up, per candidate",
        "",
        summary.round(1).to_markdown(),
    ]
    titles = {"mae": "Pooled MAE", "difference": "Paired difference of two conditions"}
    for statistic, title in titles.items():
        for dist in DISTRIBUTIONS:
            cells = results[
                (results["statistic"] == statistic) & (results["distribution"] == dist.name)
            ]
            table = cells.assign(cell=[_cell(r) for r in cells.itertuples()]).pivot(
                index="candidate", columns="participants", values="cell"
            )
            table = table.reindex([c for c in CANDIDATES if c in table.index])
            truth = cells["truth_px"].iloc[0]
            lines += [
                "",
                f"## {title}: `{dist.name}` (target {truth:.2f} px)",
                "",
                table.rename(columns=lambda k: f"{k} participants").to_markdown(),
            ]
    return "\n".join(lines) + "\n"


def _argmin_label(rows: pd.DataFrame) -> str:
    worst = rows.loc[rows["coverage"].idxmin()]
    return f"{worst['distribution']}, {worst['participants']} participants"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=1000, help="simulated studies per cell")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = run(args.studies, args.resamples, args.seed)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(markdown(results, args, seconds, cpu_seconds), encoding="utf-8")
    results.to_csv(args.output.with_suffix(".csv"), index=False, float_format="%.5g")
    print(f"chosen_min_coverage_from_4: {chosen_min_coverage(results):.3f} ({seconds:.0f} s)")
    print(f"every distribution: {chosen_min_coverage(results, None):.3f}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
