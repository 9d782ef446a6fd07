"""One trust score per point: the calibrated probability that the point's tracking error exceeds a
threshold, from its signals (``src.trust.signals``), fitted on out-of-sample errors only.

The score is scikit-learn's logistic regression on the standardised ``log1p`` of the signals
(every signal is >= 0 and heavy-tailed; the log keeps a few wild jumps from dominating). A
logistic regression's probabilities are calibrated on the data it is fitted on; cross-fitting by
participant (``cross_fit``) gives every participant a score from a model fitted on the others
only, so the figures judge it on participants it never saw. ``TrustModel.save`` writes the fitted
score (and the pose subspace it needs) as one small JSON file that travels with the pose model.
Frame and video scores are the mean point score: the expected share of points in error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

FORMAT = "trust-score/1"
# The signals ``TrustModel.score_video`` computes from a video's predictions (and other models').
SCORABLE_SIGNALS = (
    "low_likelihood",
    "jump_px",
    "segment_length_deviation",
    "pca_reconstruction_error_px",
    "model_disagreement_px",
)


def _features(table: pd.DataFrame, signals: Sequence[str], fill: dict[str, float]) -> np.ndarray:
    """log1p of the signals (clipped at 0), NaN replaced by the training median of the signal."""
    values = table[list(signals)].astype(float).fillna(fill).to_numpy()
    return np.log1p(np.clip(values, 0.0, None))


@dataclass
class TrustModel:
    """The fitted combined score. ``threshold``: what "error" means for it (e.g. ``2 x test MAE``,
    ``threshold_px`` the pixels of the model it was fitted for); ``pose_pca``: the pose subspace of
    the ``pca_reconstruction_error_px`` signal (``PosePCA.to_dict``), if used; ``provenance``:
    what it was fitted on (``condition``, ``folds``, ``participants``, ``model_runs``: fold ->
    the MLflow run of the model whose out-of-sample errors it learned; the registry attaches it to
    those models' versions)."""

    signals: list[str]
    threshold: str
    threshold_px: float | None
    fill: dict[str, float]
    scaler_mean: list[float]
    scaler_scale: list[float]
    coef: list[float]
    intercept: float
    n_fitted: int
    base_rate: float
    pose_pca: dict | None = field(default=None)
    bodyparts: list[str] | None = field(default=None)
    skeleton: list[list[str]] | None = field(default=None)
    provenance: dict | None = field(default=None)
    video_mae: dict | None = field(default=None)  # VideoErrorModel's fields: a video's MAE

    # why: past is_error, optional fields stored as given, each independent: keyword-only
    @classmethod
    def fit(
        cls,
        table: pd.DataFrame,
        signals: Sequence[str],
        is_error: np.ndarray,
        *,
        threshold: str = "",
        threshold_px: float | None = None,
        pose_pca: dict | None = None,
        bodyparts: Sequence[str] | None = None,
        skeleton: Sequence[Sequence[str]] | None = None,
    ) -> TrustModel:
        """Fit on the rows of ``table`` (one per point and frame, a column per signal) and
        ``is_error`` (1 where the point's error exceeds the threshold). The rows must be
        out-of-sample: frames no model trained on, participants the score is not judged on."""
        is_error = np.asarray(is_error, dtype=int)
        if len(np.unique(is_error)) < 2:
            raise ValueError("the trust score needs points both in and out of error to fit")
        fill = {s: float(np.nan_to_num(np.nanmedian(table[s].astype(float)))) for s in signals}
        x = _features(table, signals, fill)
        scaler = StandardScaler().fit(x)
        regression = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(x), is_error)
        return cls(
            signals=list(signals),
            threshold=threshold,
            threshold_px=threshold_px,
            fill=fill,
            scaler_mean=scaler.mean_.tolist(),
            scaler_scale=scaler.scale_.tolist(),
            coef=regression.coef_[0].tolist(),
            intercept=float(regression.intercept_[0]),
            n_fitted=len(is_error),
            base_rate=float(is_error.mean()),
            pose_pca=pose_pca,
            bodyparts=list(bodyparts) if bodyparts is not None else None,
            skeleton=[list(pair) for pair in skeleton] if skeleton is not None else None,
        )

    def check(self, bodyparts: Sequence[str] | None = None) -> None:
        """Raise ValueError("<what>; <fix>") when this score cannot score a video of a model
        tracking ``bodyparts`` (in that order): an unknown signal, weights that do not match its
        signals, or a pose subspace, skeleton or bodyparts that are not the model's."""
        unknown = [s for s in self.signals if s not in SCORABLE_SIGNALS]
        if unknown:
            raise ValueError(
                f"signals {unknown} cannot be computed from a video's predictions (known: "
                f"{', '.join(SCORABLE_SIGNALS)}); refit the score on those signals only"
            )
        sizes = {len(self.coef), len(self.scaler_mean), len(self.scaler_scale)}
        if sizes != {len(self.signals)}:
            raise ValueError(
                f"{len(self.signals)} signals but {len(self.coef)} weights; the file is damaged, "
                "save the score again (TrustModel.save)"
            )
        if self.pose_pca is None or self.bodyparts is None or self.skeleton is None:
            raise ValueError(
                "saved without its pose subspace, bodyparts and skeleton; fit it with them "
                "(TrustModel.fit(..., pose_pca=, bodyparts=, skeleton=))"
            )
        if bodyparts is not None and list(bodyparts) != list(self.bodyparts):
            raise ValueError(
                f"fitted for bodyparts {self.bodyparts}, the model tracks {list(bodyparts)}; use "
                "a score fitted for this model's points, or analysis.trust.score=likelihood"
            )
        named = {p for pair in self.skeleton for p in pair}
        if not named <= set(self.bodyparts):
            raise ValueError(
                f"its skeleton names {sorted(named - set(self.bodyparts))}, not among its "
                "bodyparts; fit it with the model's skeleton"
            )
        if self.video_mae is not None and self.video_mae.get("signal") not in {
            *self.signals,
            *SCORABLE_SIGNALS[:4],
        }:
            raise ValueError(
                f"its video error model uses {self.video_mae.get('signal')!r}, which this score "
                "does not compute; refit it on one of the score's signals"
            )
        width = len(np.asarray(self.pose_pca["mean"]))
        if width != 2 * len(self.bodyparts):
            raise ValueError(
                f"its pose subspace has {width} coordinates for {len(self.bodyparts)} bodyparts "
                f"(x and y each: {2 * len(self.bodyparts)}); fit the subspace on the model's "
                "labelled poses"
            )

    def probability(self, table: pd.DataFrame) -> np.ndarray:
        """Probability (0 ... 1) that each row's point is in error."""
        x = (_features(table, self.signals, self.fill) - self.scaler_mean) / self.scaler_scale
        return 1.0 / (1.0 + np.exp(-(x @ np.asarray(self.coef) + self.intercept)))

    def ranking(self, table: pd.DataFrame) -> np.ndarray:
        """The weighted sum of each row's log signals: the log-odds of ``probability`` without
        the fit's constant terms (intercept, standardising means). The same order within one
        fit; see ``CrossFit`` for why pooled figures of cross-fitted scores use it."""
        weights = np.asarray(self.coef) / np.asarray(self.scaler_scale)
        return _features(table, self.signals, self.fill) @ (weights / np.abs(weights).sum())

    def video_signals(
        self, poses: np.ndarray, other_predictions: Sequence[np.ndarray] = ()
    ) -> dict[str, np.ndarray]:
        """Every signal of one video (n_frames, n_points each), from the model's predictions
        ``poses`` (n_frames, n_points, 3: x, y, likelihood in the order of ``bodyparts``) and, for
        ``model_disagreement_px``, other models' ``xy`` of the same video (the judged model's own
        points are counted among the models)."""
        from src.trust import signals as sig

        if self.pose_pca is None or self.bodyparts is None or self.skeleton is None:
            raise ValueError("this trust score was saved without its pose subspace and skeleton")
        xy, likelihood = poses[..., :2], poses[..., 2]
        pca = sig.PosePCA.from_dict(self.pose_pca)
        columns = sig.single_model_signals(xy, likelihood, self.bodyparts, self.skeleton, pca)
        if "model_disagreement_px" in self.signals:
            if not other_predictions:
                raise ValueError("this trust score needs other models' predictions (disagreement)")
            columns["model_disagreement_px"] = sig.model_disagreement_px([xy, *other_predictions])
        return columns

    def score_video(
        self, poses: np.ndarray, other_predictions: Sequence[np.ndarray] = ()
    ) -> np.ndarray:
        """Trust of every point of one video, (n_frames, n_points) probabilities of error (the
        arguments: ``video_signals``)."""
        return self.score_signals(self.video_signals(poses, other_predictions))

    def score_signals(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """The probability of error of every point, from ``video_signals``' columns."""
        shape = np.shape(columns[self.signals[0]])
        table = pd.DataFrame({name: np.ravel(columns[name]) for name in self.signals})
        return self.probability(table).reshape(shape)

    def predict_video_mae(
        self, columns: dict[str, np.ndarray]
    ) -> tuple[float, float, float] | None:
        """A video's predicted MAE (px) and its interval (``video_mae``'s level) from its
        signals (``video_signals``); None when this score has no video error model."""
        if self.video_mae is None:
            return None
        model = VideoErrorModel(**self.video_mae)
        with np.errstate(all="ignore"):
            mean = float(np.nanmean(columns[model.signal]))
        return model.predict(mean)

    def save(self, path: Path) -> Path:
        """Write the score as JSON (a few kB); ``load`` reads it back."""
        path = Path(path)
        path.write_text(json.dumps({"format": FORMAT} | self.__dict__, indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> TrustModel:
        """The score ``save`` wrote; ValueError when the file is not one."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise ValueError(
                f"not a trust score file ({FORMAT}); give the JSON TrustModel.save wrote"
            )
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; save the score again")
        return cls(**data)


@dataclass
class VideoErrorModel:
    """A video's MAE (px) predicted from the video's mean of one signal, with an interval.

    ``log(MAE) = intercept + slope * log1p(mean signal)``, least squares over the videos it is
    fitted on. The interval is split-conformal over participants: ``half_width`` is the
    ceil((n + 1) x ``level``)-th smallest absolute log residual of leave-one-participant-out
    predictions of the n fitting videos (infinite when n is too small), so a new participant's
    video falls inside ``exp(log prediction +- half_width)`` with probability >= ``level`` when
    participants are exchangeable. ``validation``: figures measured on held-out participants.
    """

    signal: str
    intercept: float
    slope: float
    half_width: float
    level: float
    n_videos: int
    n_participants: int
    validation: dict | None = field(default=None)

    @classmethod
    def fit(
        cls,
        signal: str,
        means: np.ndarray,
        mae: np.ndarray,
        participants: np.ndarray,
        level: float = 0.9,
    ) -> VideoErrorModel:
        """Fit on videos: their mean ``signal`` and actual MAE (px), each video's participant."""
        x, y = np.log1p(np.asarray(means, float)), np.log(np.asarray(mae, float))
        participants = np.asarray(participants)
        if len(np.unique(participants)) < 3:
            raise ValueError("the video error model needs videos of 3 participants or more")
        slope, intercept = np.polyfit(x, y, 1)
        residuals = np.abs(y - _leave_one_participant_out(x, y, participants))
        rank = int(np.ceil((len(y) + 1) * level))
        half_width = float(np.sort(residuals)[rank - 1]) if rank <= len(y) else float("inf")
        return cls(
            signal,
            float(intercept),
            float(slope),
            half_width,
            level,
            len(y),
            len(np.unique(participants)),
        )

    def predict(self, mean: float) -> tuple[float, float, float]:
        """Predicted MAE (px) of a video whose mean signal is ``mean``, and its interval."""
        centre = self.intercept + self.slope * np.log1p(max(float(mean), 0.0))
        return (
            float(np.exp(centre)),
            float(np.exp(centre - self.half_width)),
            float(np.exp(centre + self.half_width)),
        )


def _leave_one_participant_out(x: np.ndarray, y: np.ndarray, participants: np.ndarray):
    """Each video's log MAE predicted by the line fitted on the other participants' videos."""
    predicted = np.empty(len(y))
    for held_out in np.unique(participants):
        judged = participants == held_out
        slope, intercept = np.polyfit(x[~judged], y[~judged], 1)
        predicted[judged] = intercept + slope * x[judged]
    return predicted


def cross_validate_video_mae(
    signal: str, means: np.ndarray, mae: np.ndarray, participants: np.ndarray, level: float = 0.9
) -> pd.DataFrame:
    """Leave-one-participant-out: each video's predicted MAE and interval from a
    ``VideoErrorModel`` fitted (interval included) on the other participants' videos only, and,
    for comparison, the other participants' mean MAE (what one would predict knowing nothing of
    the video). Columns: predicted, low, high, constant, actual (px)."""
    means, mae, participants = (
        np.asarray(means, float),
        np.asarray(mae, float),
        np.asarray(participants),
    )
    rows = np.empty((len(mae), 4))
    for held_out in np.unique(participants):
        judged = participants == held_out
        model = VideoErrorModel.fit(
            signal, means[~judged], mae[~judged], participants[~judged], level
        )
        rows[judged, :3] = [model.predict(m) for m in means[judged]]
        rows[judged, 3] = np.exp(np.log(mae[~judged]).mean())
    table = pd.DataFrame(rows, columns=["predicted", "low", "high", "constant"])
    return table.assign(actual=mae)


@dataclass
class CrossFit:
    """Out-of-sample scores of every row: ``combined`` from the model fitted without the row's
    participant; ``best_single``: the single signal that ranked best on the other participants
    (``chosen``: which, per held-out participant), calibrated on them alone.

    ``combined`` and ``best_single`` are probabilities (for calibration). Ranking figures pooled
    over participants (AUROC, precision at a flag rate, video rank correlation) use
    ``combined_ranking`` and ``best_single_ranking`` (``TrustModel.ranking``): each held-out
    participant is scored by its own fit, and a fit's constant moves against the held-out
    participant's error rate (leaving out a participant with many errors lowers the base rate
    the others fit), which would push that participant's points down the pooled order. A
    deployed score has one fit and one constant for every new participant, so the weights alone
    are what its pooled order depends on."""

    combined: np.ndarray
    best_single: np.ndarray
    chosen: dict[str, str]
    combined_ranking: np.ndarray
    best_single_ranking: np.ndarray


def cross_fit(
    table: pd.DataFrame,
    signals: Sequence[str],
    is_error: np.ndarray,
    participants: np.ndarray,
    rank_single=None,
) -> CrossFit:
    """Leave-one-participant-out: for each participant, fit the combined score and choose the best
    single signal on all the other participants, and score the held-out participant's rows.

    ``rank_single(y, score) -> float`` ranks the single signals on the fitting participants
    (default: AUROC). A participant's own rows never enter the model that scores them.
    """
    from src.trust.validation import auroc

    rank_single = rank_single or auroc
    is_error = np.asarray(is_error, dtype=int)
    participants = np.asarray(participants)
    scores = {name: np.full(len(table), np.nan) for name in ("combined", "best_single")}
    rankings = {name: np.full(len(table), np.nan) for name in scores}
    chosen = {}
    for held_out in np.unique(participants):
        judged = participants == held_out
        fitting = ~judged
        if held_out in set(participants[fitting]):  # the rule the figures rest on
            raise AssertionError(f"participant {held_out} would be in its own fitting data")
        train, y = table[fitting], is_error[fitting]
        ranks = {s: rank_single(y, train[s].to_numpy(dtype=float)) for s in signals}
        best = max(ranks, key=ranks.get)
        chosen[str(held_out)] = best
        for name, fitted in (("combined", signals), ("best_single", [best])):
            model = TrustModel.fit(train, fitted, y)
            scores[name][judged] = model.probability(table[judged])
            rankings[name][judged] = model.ranking(table[judged])
    return CrossFit(
        scores["combined"],
        scores["best_single"],
        chosen,
        combined_ranking=rankings["combined"],
        best_single_ranking=rankings["best_single"],
    )
