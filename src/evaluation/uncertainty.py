"""How sure the numbers are: participant-level (cluster) bootstrap intervals, a paired bootstrap of the
difference between two conditions, and a power-law learning curve.

Frames of one participant are not independent (same body, same clothing, same camera), so intervals
resample *participants* with replacement, never points or frames: a resample's pooled MAE is the sum
of its participants' point errors divided by their number of points (point-weighted, like the MAE
itself); a participant drawn twice counts twice. The interval is the percentile interval of 2000
(``evaluation.bootstrap.resamples``) such resamples, seeded. With one participant there is no
interval (it would have zero width and mean nothing): the functions return NaN bounds and say so.
A percentile interval over few participants is too narrow (simulated coverage of a 95 % interval:
about 49 % with 2 participants, 84 % with 6, 92 % with 20, 95 % with 33; README).

Everything is vectorised: a resample is a row of multinomial counts (how often each participant was
drawn), so 2000 resamples of a cell are two matrix-vector products.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

NO_INTERVAL = "no interval: 1 participant"


@dataclass(frozen=True)
class Interval:
    """An estimate with its bootstrap interval; ``low``/``high`` NaN (and ``note`` saying why) when none."""

    estimate: float
    low: float
    high: float
    n_participants: int
    note: str = ""

    @property
    def has_interval(self) -> bool:
        return not (np.isnan(self.low) or np.isnan(self.high))


def participant_totals(
    rows: pd.DataFrame, error: str = "error_px", by: str = "participant"
) -> pd.DataFrame:
    """Per participant: ``sum_error_px`` (sum of point errors) and ``n_points`` (labelled points).

    ``rows`` holds one row per point (column ``error``; NaN errors are not points), or already
    summed rows with ``sum_error_px`` and ``n_points`` (e.g. errors/participants.csv), which are
    summed per participant.
    """
    if "sum_error_px" in rows and "n_points" in rows:
        summed = rows.groupby(by, sort=True)[["sum_error_px", "n_points"]].sum()
    else:
        points = rows[rows[error].notna()]
        summed = points.groupby(by, sort=True)[error].agg(sum_error_px="sum", n_points="size")
    summed = summed[summed["n_points"] > 0]  # a participant without points adds nothing to the MAE
    return summed.astype({"sum_error_px": float, "n_points": float})


def resample_counts(n_participants: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n_participants): how often each participant is drawn in each resample.

    Drawing ``n_participants`` with replacement is a multinomial draw with equal probabilities.
    """
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_participants, np.full(n_participants, 1 / n_participants), n_resamples)


def cluster_bootstrap_mae(
    sums: np.ndarray,
    counts: np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Pooled MAE (sum of errors / points) with its participant-bootstrap percentile interval.

    ``sums`` and ``counts`` are per participant (:func:`participant_totals`).
    """
    sums, counts = np.asarray(sums, float), np.asarray(counts, float)
    k = len(sums)
    if k == 0 or counts.sum() == 0:
        return Interval(np.nan, np.nan, np.nan, 0, "no points")
    estimate = float(sums.sum() / counts.sum())
    if k < 2:
        return Interval(estimate, np.nan, np.nan, k, NO_INTERVAL)
    drawn = resample_counts(k, n_resamples, seed)
    resampled = (drawn @ sums) / (drawn @ counts)  # counts > 0 for every participant kept
    low, high = _percentiles(resampled, confidence)
    return Interval(estimate, low, high, k)


def paired_bootstrap_difference(
    sums_a: np.ndarray,
    counts_a: np.ndarray,
    sums_b: np.ndarray,
    counts_b: np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """MAE(a) - MAE(b) with a paired participant-bootstrap interval.

    The arrays are aligned: entry i of each is the same participant (measured under conditions a
    and b). Each resample draws the same participants for both conditions, so what the participants
    share (an easy or a hard patient) cancels in the difference.
    """
    sums_a, counts_a = np.asarray(sums_a, float), np.asarray(counts_a, float)
    sums_b, counts_b = np.asarray(sums_b, float), np.asarray(counts_b, float)
    k = len(sums_a)
    if k == 0 or counts_a.sum() == 0 or counts_b.sum() == 0:
        return Interval(np.nan, np.nan, np.nan, 0, "no points")
    estimate = float(sums_a.sum() / counts_a.sum() - sums_b.sum() / counts_b.sum())
    if k < 2:
        return Interval(estimate, np.nan, np.nan, k, NO_INTERVAL)
    drawn = resample_counts(k, n_resamples, seed)
    with np.errstate(
        invalid="ignore", divide="ignore"
    ):  # a resample of participants without points
        difference = (drawn @ sums_a) / (drawn @ counts_a) - (drawn @ sums_b) / (drawn @ counts_b)
    low, high = _percentiles(difference[np.isfinite(difference)], confidence)
    return Interval(estimate, low, high, k)


def aligned_totals(
    a: pd.DataFrame, b: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`participant_totals` of two conditions on the participants both have points in."""
    shared = a.index.intersection(b.index)
    a, b = a.loc[shared], b.loc[shared]
    return (
        a["sum_error_px"].to_numpy(),
        a["n_points"].to_numpy(),
        b["sum_error_px"].to_numpy(),
        b["n_points"].to_numpy(),
    )


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class FramesToLabel:
    """The smallest condition within the margin of the best (``condition``), and why."""

    condition: int | None
    best: int | None
    margin_px: float
    differences: dict[int, Interval] = field(default_factory=dict)  # MAE(n) - MAE(best), px
    sentence: str = ""


def frames_to_label(
    totals: dict[int, pd.DataFrame],
    margin_pct: float,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    what: str = "generalisation",
) -> FramesToLabel:
    """The fewest labelled frames per video whose MAE is within ``margin_pct`` % of the best condition's.

    ``totals`` maps each condition to its :func:`participant_totals`. The best condition has the
    lowest MAE; a condition is within the margin when the upper bound of the paired bootstrap
    interval of MAE(condition) - MAE(best) is at most ``margin_pct`` % of MAE(best): even its
    pessimistic end costs no more than the margin. With one participant there is no interval and
    the point difference decides (the sentence says so).
    """
    maes = {
        n: t["sum_error_px"].sum() / t["n_points"].sum() for n, t in totals.items() if len(t) > 0
    }
    if not maes:
        return FramesToLabel(None, None, np.nan, {}, f"No {what} errors to decide how many frames.")
    best = min(maes, key=lambda n: (maes[n], n))
    margin_px = margin_pct / 100 * maes[best]
    differences, chosen = {}, None
    for n in sorted(maes):
        difference = paired_bootstrap_difference(
            *aligned_totals(totals[n], totals[best]), n_resamples, seed, confidence
        )
        differences[n] = difference
        bound = difference.high if difference.has_interval else difference.estimate
        if chosen is None and bound <= margin_px:
            chosen = n
    d = differences[chosen]
    if chosen == best:
        fewer = [n for n in maes if n < best]
        how = (
            f"the best condition (its {what} MAE is {maes[best]:.1f} px over "
            f"{len(totals[best])} participant(s))"
        ) + (
            f"; no condition with fewer frames is within the margin of {margin_pct:g} % "
            f"({margin_px:.1f} px) by a paired bootstrap over "
            f"{max(differences[n].n_participants for n in fewer)} participant(s)"
            if fewer
            else ""
        )
    elif d.has_interval:
        how = (
            f"its {what} MAE is {maes[chosen]:.1f} px, {d.estimate:+.1f} px from the best "
            f"({maes[best]:.1f} px at {best}), {confidence:.0%} interval of the difference "
            f"[{d.low:+.1f}, {d.high:+.1f}] px by a paired bootstrap over {d.n_participants} "
            f"participants, within the margin of {margin_pct:g} % ({margin_px:.1f} px)"
        )
    else:
        how = (
            f"its {what} MAE is {maes[chosen]:.1f} px against {maes[best]:.1f} px at {best}, "
            f"within the margin of {margin_pct:g} % ({margin_px:.1f} px) on the point estimate "
            f"only: {d.note or 'no interval'}, so this is an indication, not a decision"
        )
    label = (
        "Label no frames (the initial model)" if chosen == 0 else f"Label {chosen} frames per video"
    )
    sentence = f"{label}: {how}."
    return FramesToLabel(chosen, best, margin_px, differences, sentence)


@dataclass(frozen=True)
class PowerLawFit:
    """MAE(n) = a * n**-b + c fitted to (frames, MAE); ``trustworthy`` False with ``reasons`` when not."""

    a: float = np.nan
    b: float = np.nan
    c: float = np.nan
    se: tuple[float, float, float] = (np.nan, np.nan, np.nan)  # standard errors of a, b, c
    fitted: bool = False
    reasons: tuple[str, ...] = ()

    @property
    def trustworthy(self) -> bool:
        return self.fitted and not self.reasons

    def predict(self, n) -> np.ndarray:
        return self.a * np.asarray(n, float) ** -self.b + self.c


MIN_FIT_POINTS = 4  # three parameters: fewer conditions leave nothing to check the curve against
MAX_RELATIVE_SE = 0.5  # a parameter whose standard error is over half its value is not determined


def fit_power_law(frames, mae, sigma=None) -> PowerLawFit:
    """Fit MAE(n) = a * n^-b + c (a, b, c >= 0) to the conditions with n > 0 (scipy's curve_fit).

    ``sigma``: optional standard deviations of the MAEs (e.g. interval width / 3.92) to weight by.
    Not trustworthy when: fewer than :data:`MIN_FIT_POINTS` conditions, no convergence, a
    parameter's standard error over :data:`MAX_RELATIVE_SE` of its value (or undetermined), or the
    MAE is not non-increasing in n (the data contradict the curve's shape).
    """
    from scipy.optimize import curve_fit

    n, y = np.asarray(frames, float), np.asarray(mae, float)
    keep = (n > 0) & np.isfinite(y)
    s = None if sigma is None else np.asarray(sigma, float)[keep]
    n, y = n[keep], y[keep]
    order = np.argsort(n)
    n, y = n[order], y[order]
    s = None if s is None or not np.all(np.isfinite(s) & (s > 0)) else s[order]
    if len(n) < MIN_FIT_POINTS:
        return PowerLawFit(
            reasons=(
                f"{len(n)} condition(s) with frames > 0; a fit needs at least {MIN_FIT_POINTS}",
            )
        )
    reasons = []
    rises = [f"{n[i]:g} to {n[i + 1]:g}" for i in range(len(n) - 1) if y[i + 1] > y[i]]
    if rises:
        reasons.append(f"the MAE is not monotone: it rises from {', '.join(rises)} frames")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # OptimizeWarning: covariance not estimable, said below
            params, covariance = curve_fit(
                lambda x, a, b, c: a * x**-b + c,
                n,
                y,
                p0=(max(y[0] - y[-1], 1e-3), 0.5, max(y.min() * 0.9, 0)),
                sigma=s,
                bounds=([0, 0, 0], [np.inf, 5, np.inf]),
                maxfev=20000,
            )
    except (RuntimeError, ValueError) as error:
        return PowerLawFit(reasons=(*reasons, f"the fit did not converge ({error})"))
    se = np.sqrt(np.diag(covariance))
    for name, value, error in zip("abc", params, se):
        if not np.isfinite(error) or error > MAX_RELATIVE_SE * abs(value):
            reasons.append(f"{name} = {value:.3g} +/- {error:.2g} is not determined by the data")
    return PowerLawFit(*map(float, params), tuple(map(float, se)), True, tuple(reasons))


def power_law_sentence(fit: PowerLawFit, largest: int, what: str = "generalisation") -> str:
    """One paragraph: what the fitted curve says about labelling more, or plainly why not to trust it."""
    if not fit.fitted:
        return f"No power law fitted to the {what} MAE: {'; '.join(fit.reasons)}."
    now, doubled = fit.predict([largest, 2 * largest])
    text = (
        f"A power law MAE(n) = {fit.a:.3g} n^-{fit.b:.3g} + {fit.c:.3g} px fitted to the {what} MAE "
        f"predicts {doubled:.1f} px at {2 * largest} labelled frames per video, {now - doubled:.1f} "
        f"px less than at {largest}; its floor (no amount of labelling goes below it) is "
        f"{fit.c:.1f} px."
    )
    if fit.reasons:
        text += f" **Do not trust this extrapolation**: {'; '.join(fit.reasons)}."
    return text
