"""How sure the numbers are: participant-level intervals of a pooled MAE and of the difference between
two conditions measured on the same participants, and a power-law learning curve.

Frames of one participant are not independent (same body, same clothing, same camera), so every
interval treats the *participant* as the unit, never the point or frame. What an interval is for:
the population point-weighted mean error, ``theta = E[n * m] / E[n]`` over participants drawn from
the population the study's participants stand for, where ``m`` is a participant's mean error over
the points ``n`` they would have labelled (the MAE a study would find with infinitely many
participants). The estimate is the pooled MAE, the sum of every participant's point errors over
their number of points; a difference of two conditions is the difference of two such MAEs.

Methods (``evaluation.interval.method``), chosen by simulated coverage (benchmarks/coverage.py,
benchmarks/results/coverage.md, docs/intervals.md):

* ``t_interval`` (default): a t-interval on the participants' errors weighted by their points.
  The standard error is the participant-level (cluster) sandwich, each participant's squared
  residual scaled so the variance is unbiased when participants vary alike (CR2 with a
  participant-level working model); the degrees of freedom are Satterthwaite's
  (Bell-McCaffrey), ``k - 1`` with equal points and fewer when a few participants hold most points.
  An MAE's interval is made on the log scale (``MAE x exp(+-t SE / MAE)``): errors are positive
  and right-skewed (a few participants carry much of them), so the truth is more often far above
  a small study's MAE than far below. A difference, which can be negative, is on the pixel scale.
* ``percentile_bootstrap``: the percentile interval of ``evaluation.bootstrap.resamples`` seeded
  resamples of participants with replacement (a participant drawn twice counts twice). Too narrow
  with few participants (see the benchmark).

Below ``evaluation.interval.min_participants`` participants no method keeps its promise, so
there is no interval (NaN bounds) and the note says why in plain words (:func:`too_few_note`).

Everything is vectorised over studies (rows), so the benchmark runs the same code as the report.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

NO_INTERVAL = "no interval: 1 participant"

T_INTERVAL = "t_interval"
PERCENTILE_BOOTSTRAP = "percentile_bootstrap"
METHODS = (T_INTERVAL, PERCENTILE_BOOTSTRAP)  # evaluation.interval.method
DEFAULT_METHOD = T_INTERVAL
MIN_PARTICIPANTS = 4  # evaluation.interval.min_participants: fewer get no interval
# How a sentence names each method's interval ("95% interval ... by <words> over 6 participants").
METHOD_WORDS = {
    T_INTERVAL: "a t-interval",
    PERCENTILE_BOOTSTRAP: "a percentile bootstrap",
}


@dataclass(frozen=True)
class IntervalSettings:
    """evaluation.bootstrap and evaluation.interval: how every interval is made."""

    resamples: int = 2000  # percentile_bootstrap: resamples per interval
    seed: int = 0  # percentile_bootstrap: the resampling is seeded
    confidence: float = 0.95
    method: str = DEFAULT_METHOD
    min_participants: int = MIN_PARTICIPANTS


@dataclass(frozen=True)
class Interval:
    """An estimate with its interval; ``low``/``high`` NaN (and ``note`` saying why) when none."""

    estimate: float
    low: float
    high: float
    n_participants: int
    note: str = ""
    method: str = ""

    @property
    def has_interval(self) -> bool:
        return not (np.isnan(self.low) or np.isnan(self.high))


def too_few_note(n_participants: int, what: str = "", pooled: bool = False) -> str:
    """Why a cell has no interval, for a clinician: "2 generalisation participants: too few for an
    interval; use split=kfold" (``pooled``: the folds are pooled already, so more participants)."""
    who = " ".join(w for w in (str(n_participants), what) if w)
    plural = "" if n_participants == 1 else "s"
    advice = "more participants are needed" if pooled else "use split=kfold"
    return f"{who} participant{plural}: too few for an interval; {advice}"


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


# A statistic is a signed sum of pooled MAEs: [(+1, sums, counts)] is one MAE, [(+1, a), (-1, b)]
# the paired difference a - b. sums and counts: (studies, participants), aligned by participant.
Parts = list[tuple[float, np.ndarray, np.ndarray]]


def estimates(parts: Parts) -> np.ndarray:
    """The statistic of each study (row): sum over parts of sign * sum(sums) / sum(counts)."""
    return sum(sign * s.sum(-1) / n.sum(-1) for sign, s, n in parts)


def weighted_values(parts: Parts) -> tuple[np.ndarray, np.ndarray]:
    """Per participant a value ``z`` and a weight ``w`` (rows sum to 1) whose weighted mean is the
    statistic and whose residuals are its influence: the participant's MAE and share of points for
    one MAE, the difference of their MAEs when both conditions have the same points."""
    theta = [s.sum(-1, keepdims=True) / n.sum(-1, keepdims=True) for _, s, n in parts]
    w = sum(n / n.sum(-1, keepdims=True) for _, _, n in parts) / len(parts)
    influence = sum(
        sign * (s - t * n) / n.sum(-1, keepdims=True) for (sign, s, n), t in zip(parts, theta)
    )
    return influence / w + estimates(parts)[..., None], w


def t_interval(
    parts: Parts, confidence: float = 0.95, log: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the weighted t-interval (module docstring) of each study; NaN with < 2 participants.

    Variance: sum of a_i r_i^2 with r the residuals of the weighted mean and
    a_i = w_i^2 / (1 - 2 w_i + sum w^2), unbiased when the participants' values have one variance.
    Degrees of freedom: Satterthwaite's for that quadratic form, tr(B)^2 / tr(B^2) with
    B = M' diag(a) M and M = I - 1 w' (Bell & McCaffrey 2002); k - 1 with equal weights.
    ``log``: on the log scale (delta method, for a positive statistic): estimate x exp(+-t se /
    estimate), which reaches further up than down, as right-skewed errors need.
    """
    from scipy.stats import t as student_t

    z, w = weighted_values(parts)
    estimate = (w * z).sum(-1)
    k = z.shape[-1]
    if k < 2:
        nan = np.full(estimate.shape, np.nan)
        return nan, nan
    sum_w2 = (w**2).sum(-1, keepdims=True)
    a = w**2 / (1 - 2 * w + sum_w2)
    variance = (a * (z - estimate[..., None]) ** 2).sum(-1)
    # (M M')_ij = delta_ij - w_i - w_j + sum w^2; tr(B) = sum a_i (MM')_ii = sum w^2
    mm = np.eye(k) - w[..., :, None] - w[..., None, :] + sum_w2[..., None]
    trace_b2 = np.einsum("...i,...j,...ij->...", a, a, mm**2)
    df = sum_w2[..., 0] ** 2 / trace_b2
    half = student_t.ppf(0.5 + confidence / 2, df) * np.sqrt(variance)
    if log:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            factor = np.where(estimate > 0, np.exp(half / estimate), np.nan)
        return estimate / factor, estimate * factor
    return estimate - half, estimate + half


def bootstrap_estimates(parts: Parts, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(studies, resamples): the statistic of resamples of participants drawn with replacement.

    A resample is a row of multinomial counts (how often each participant was drawn), so it is a
    product of counts and per-participant sums, never a copy of the points.
    """
    studies, k = parts[0][1].shape
    drawn = rng.multinomial(k, np.full(k, 1 / k), size=(studies, n_resamples)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample without points: NaN
        return sum(
            sign * np.einsum("sbk,sk->sb", drawn, s) / np.einsum("sbk,sk->sb", drawn, n)
            for sign, s, n in parts
        )


def percentile_interval(
    parts: Parts, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the percentile participant bootstrap of each study (seeded)."""
    resampled = bootstrap_estimates(parts, n_resamples, np.random.default_rng(seed))
    tail = 100 * (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: NaN bounds
        low, high = np.nanpercentile(resampled, [tail, 100 - tail], axis=-1)
    return low, high


def interval_of(parts: Parts, settings: IntervalSettings) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of each study by ``settings.method`` (no minimum applied: :func:`statistic_interval`)."""
    if settings.method == T_INTERVAL:  # an MAE (one positive part) on the log scale
        return t_interval(parts, settings.confidence, log=len(parts) == 1 and parts[0][0] > 0)
    if settings.method == PERCENTILE_BOOTSTRAP:
        return percentile_interval(parts, settings.confidence, settings.resamples, settings.seed)
    raise ValueError(
        f"evaluation.interval.method={settings.method!r}: choose one of {', '.join(METHODS)}"
    )


def statistic_interval(
    parts: Parts, settings: IntervalSettings, what: str = "", pooled: bool = False
) -> Interval:
    """The :class:`Interval` of one study's statistic (1-D sums and counts): none (and why,
    :func:`too_few_note`) when it has fewer than ``settings.min_participants`` participants or no
    points."""
    parts = [(sign, np.asarray(s, float)[None], np.asarray(n, float)[None]) for sign, s, n in parts]
    k = parts[0][1].shape[-1]
    if k == 0 or any(n.sum() == 0 for _, _, n in parts):
        return Interval(np.nan, np.nan, np.nan, 0, "no points", settings.method)
    estimate = float(estimates(parts)[0])
    if k < max(settings.min_participants, 2):
        note = too_few_note(k, what, pooled)
        return Interval(estimate, np.nan, np.nan, k, note, settings.method)
    low, high = interval_of(parts, settings)
    return Interval(estimate, float(low[0]), float(high[0]), k, "", settings.method)


def mae_interval(
    sums: np.ndarray,
    counts: np.ndarray,
    settings: IntervalSettings,
    what: str = "",
    pooled: bool = False,
) -> Interval:
    """Pooled MAE (sum of errors / points) with its interval (``what``: the set, for the note).

    ``sums`` and ``counts`` are per participant (:func:`participant_totals`).
    """
    return statistic_interval([(1.0, sums, counts)], settings, what, pooled)


def difference_interval(
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    settings: IntervalSettings,
    what: str = "",
    pooled: bool = False,
) -> Interval:
    """MAE(a) - MAE(b) with a paired interval; ``a`` and ``b`` are (sums, counts) per participant,
    entry i of each array the same participant (measured under conditions a and b), so what the
    participants share (an easy or a hard patient) cancels in the difference."""
    return statistic_interval([(1.0, *a), (-1.0, *b)], settings, what, pooled)


def cluster_bootstrap_mae(
    sums: np.ndarray,
    counts: np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Pooled MAE with its percentile participant-bootstrap interval (from 2 participants up)."""
    settings = IntervalSettings(n_resamples, seed, confidence, PERCENTILE_BOOTSTRAP, 2)
    interval = mae_interval(sums, counts, settings)
    return interval if interval.n_participants != 1 else replace(interval, note=NO_INTERVAL)


def paired_bootstrap_difference(
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """MAE(a) - MAE(b) with a paired percentile participant-bootstrap interval (from 2 up):
    each resample draws the same participants for both conditions; ``a`` and ``b`` are (sums,
    counts) per participant."""
    settings = IntervalSettings(n_resamples, seed, confidence, PERCENTILE_BOOTSTRAP, 2)
    interval = difference_interval(a, b, settings)
    return interval if interval.n_participants != 1 else replace(interval, note=NO_INTERVAL)


def aligned_totals(
    a: pd.DataFrame, b: pd.DataFrame
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """:func:`participant_totals` of two conditions on the participants both have points in: (sums,
    counts) of each, as :func:`difference_interval` takes them."""
    shared = a.index.intersection(b.index)
    a, b = a.loc[shared], b.loc[shared]
    return (
        (a["sum_error_px"].to_numpy(), a["n_points"].to_numpy()),
        (b["sum_error_px"].to_numpy(), b["n_points"].to_numpy()),
    )


def interval_methods_note(runs: pd.DataFrame, settings: IntervalSettings) -> str:
    """How a report's interval bounds were made, from its runs' ``interval_method`` tags, and a
    warning when rows were made by different methods (never compare such bounds) or by another
    method than ``settings.method``. A run without the tag predates it: percentile_bootstrap."""
    bounds = [c for c in runs if c.endswith(("_ci_low", "_ci_high"))]
    with_bounds = runs[runs[bounds].notna().any(axis=1)] if bounds else runs.iloc[:0]
    tags = with_bounds.get("interval_method", pd.Series("", index=with_bounds.index))
    made_by = tags.where(tags.astype(bool) & tags.notna(), "").astype(str)
    methods = sorted(set(made_by)) or [settings.method]
    text = " and ".join(_method_sentence(m or PERCENTILE_BOOTSTRAP, settings) for m in methods)
    text += (
        f". Fewer than {settings.min_participants} participants "
        "(evaluation.interval.min_participants): no interval, and the cell says why."
    )
    if len(methods) > 1:
        rows = "; ".join(
            f"{m or PERCENTILE_BOOTSTRAP + ' (not recorded)'}: "
            + ", ".join(str(n) for n in with_bounds.loc[made_by == m, "labelled_frames"])
            for m in methods
        )
        text += (
            f" **Rows made by different interval methods** ({rows} labelled frames): their "
            "bounds are not comparable; evaluate them again (`dvc repro`) with one "
            "evaluation.interval.method."
        )
    elif (methods[0] or PERCENTILE_BOOTSTRAP) != settings.method:
        text += (
            f" The runs were evaluated with {methods[0] or PERCENTILE_BOOTSTRAP}, not "
            f"evaluation.interval.method={settings.method}: evaluate them again to apply it."
        )
    return text


def _method_sentence(method: str, settings: IntervalSettings) -> str:
    if method == T_INTERVAL:
        return (
            "made by a t-interval on the participants' errors weighted by their points "
            "(participant-level standard error, Satterthwaite degrees of freedom; "
            "docs/intervals.md)"
        )
    if method == PERCENTILE_BOOTSTRAP:
        return (
            f"made by a percentile bootstrap that resamples participants ({settings.resamples} "
            f"resamples, seed {settings.seed}; evaluation.bootstrap), which is too narrow with "
            "few participants (docs/intervals.md)"
        )
    return f"made by {method}"


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
    settings: IntervalSettings = IntervalSettings(),
    what: str = "generalisation",
    pooled: bool = False,
) -> FramesToLabel:
    """The fewest labelled frames per video whose MAE is within ``margin_pct`` % of the best condition's.

    ``totals`` maps each condition to its :func:`participant_totals`. The best condition has the
    lowest MAE; a condition is within the margin when the upper bound of the paired interval
    (``settings.method``) of MAE(condition) - MAE(best) is at most ``margin_pct`` % of MAE(best):
    even its pessimistic end costs no more than the margin. With fewer than
    ``settings.min_participants`` participants there is no interval and the point difference decides
    (the sentence says so; ``pooled``: the participants are pooled over cross-validation folds
    already).
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
        difference = difference_interval(
            *aligned_totals(totals[n], totals[best]), settings, pooled=pooled
        )
        differences[n] = difference
        if chosen is None and within_margin(difference, margin_px):
            chosen = n
    decision = FramesToLabel(chosen, best, margin_px, differences)
    how = _why_chosen(decision, maes, len(totals[best]), margin_pct, settings, what)
    label = (
        "Label no frames (the initial model)" if chosen == 0 else f"Label {chosen} frames per video"
    )
    return replace(decision, sentence=f"{label}: {how}.")


def within_margin(difference: Interval, margin_px: float) -> bool:
    """The frames-to-label rule: the paired difference's upper bound (its estimate where it has no
    interval) is at most ``margin_px``."""
    bound = difference.high if difference.has_interval else difference.estimate
    return bool(bound <= margin_px)


def _why_chosen(
    decision: FramesToLabel,
    maes: dict[int, float],
    n_best_participants: int,
    margin_pct: float,
    settings: IntervalSettings,
    what: str,
) -> str:
    """Why :func:`frames_to_label` chose its condition, in words with the numbers."""
    chosen, best, margin_px = decision.condition, decision.best, decision.margin_px
    differences, method = decision.differences, settings.method
    d = differences[chosen]
    if chosen == best:
        fewer = [n for n in maes if n < best]
        how = (
            f"the best condition (its {what} MAE is {maes[best]:.1f} px over "
            f"{n_best_participants} participant(s))"
        )
        if fewer:
            widest = max((differences[n] for n in fewer), key=lambda i: i.n_participants)
            how += (
                f"; no condition with fewer frames is within the margin of {margin_pct:g} % "
                f"({margin_px:.1f} px) by {METHOD_WORDS[method]} of the paired difference over "
                f"{widest.n_participants} participant(s)"
                if widest.has_interval
                else f"; no condition with fewer frames is within the margin of {margin_pct:g} % "
                f"({margin_px:.1f} px) on the point estimates ({widest.note}), so this is an "
                "indication, not a decision"
            )
        return how
    if d.has_interval:
        return (
            f"its {what} MAE is {maes[chosen]:.1f} px, {d.estimate:+.1f} px from the best "
            f"({maes[best]:.1f} px at {best}), {settings.confidence:.0%} interval of the difference "
            f"[{d.low:+.1f}, {d.high:+.1f}] px by {METHOD_WORDS[method]} over "
            f"{d.n_participants} participants (paired), within the margin of {margin_pct:g} % "
            f"({margin_px:.1f} px)"
        )
    return (
        f"its {what} MAE is {maes[chosen]:.1f} px against {maes[best]:.1f} px at {best}, "
        f"within the margin of {margin_pct:g} % ({margin_px:.1f} px) on the point estimate "
        f"only ({d.note or 'no interval'}), so this is an indication, not a decision"
    )


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
