"""Trust without labels in daily use: every tracked point of a new video gets a trust value, the
points under ``analysis.trust.threshold`` are flagged, and each video gets a summary, a timeline
picture and a DeepLabCut labelling folder of its worst flagged frames (``analysis.trust``).

Trust is 0 ... 1, higher = more trustworthy: with ``score: likelihood`` DeepLabCut's likelihood
itself (the signal that ranked errors best on participants never seen,
benchmarks/results/trust.md); with ``score: combined`` 1 - the probability of error of a saved
``src.trust.score.TrustModel``. A frame is flagged when one of its points is (DeepLabCut's rule for
outlier frames).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from src.analysis.videos import VideoInfo
from src.errors import DataError

log = logging.getLogger(__name__)

SCORES = ("likelihood", "combined")
FEATURE_MODES = ("mark", "drop")
LABELLING_FOLDER = "labelling"


@dataclass
class TrustSettings:
    """``analysis.trust``, checked: which score, the flag threshold, the export and what happens to
    features of flagged points."""

    score: str
    threshold: float
    export_flagged: int
    export_min_gap: int
    features: str
    scorer: str
    model: object | None = None  # src.trust.score.TrustModel with score: combined
    calibrator: str = ""  # where the TrustModel came from: its file, or the registered model's
    other_models: list[str] = field(default_factory=list)

    @property
    def needs_other_models(self) -> bool:
        return self.model is not None and "model_disagreement_px" in self.model.signals

    @classmethod
    def from_config(cls, analysis: DictConfig) -> TrustSettings | None:
        """The settings, or None when ``analysis.trust.enabled`` is false; a DataError naming the
        key and its allowed values when one is wrong."""
        trust = analysis.get("trust")
        if trust is None or not bool(trust.enabled):
            return None
        score = str(trust.score)
        if score not in SCORES:
            raise DataError(
                f"analysis.trust.score={score!r} is unknown; use likelihood | combined."
            )
        mode = str(trust.features)
        if mode not in FEATURE_MODES:
            raise DataError(f"analysis.trust.features={mode!r} is unknown; use mark | drop.")
        threshold = float(trust.threshold)
        if not 0.0 <= threshold <= 1.0:
            raise DataError(f"analysis.trust.threshold={threshold} must lie in 0 ... 1.")
        export, gap = int(trust.export_flagged), int(trust.export_min_gap_frames)
        if export < 0 or gap < 1:
            raise DataError(
                "analysis.trust.export_flagged must be >= 0 (0: no export) and "
                "analysis.trust.export_min_gap_frames >= 1."
            )
        settings = cls(
            score=score,
            threshold=threshold,
            export_flagged=export,
            export_min_gap=gap,
            features=mode,
            scorer=str(trust.scorer),
            other_models=[str(m) for m in (trust.other_models or [])],
        )
        if score == "combined":
            settings.use_calibrator(trust.model, analysis.get("run_id"))
            if settings.needs_other_models and not settings.other_models:
                raise DataError(
                    f"{settings.calibrator}: the trust score uses model disagreement; name the "
                    "other models in analysis.trust.other_models=[<run id or models:/ URI>, ...] "
                    "(each tracks the video once more), or use analysis.trust.score=likelihood."
                )
        elif trust.model:
            log.warning("analysis.trust.model is only used with analysis.trust.score=combined")
        return settings

    def use_calibrator(self, path, run_id) -> None:
        """The combined score's calibrator: ``analysis.trust.model`` when set, else the one the
        registered model ``analysis.run_id=models:/...`` carries; a registered model without one
        falls back to the likelihood, saying so in one line."""
        from src.analysis.model_choice import REGISTRY_PREFIX

        if path:
            self.model = load_trust_model(path)
            self.calibrator = str(path)
            return
        run_id = str(run_id or "")
        if not run_id.startswith(REGISTRY_PREFIX):
            raise DataError(
                "analysis.trust.score=combined needs a calibrator: analysis.trust.model=<path to a "
                "saved trust score JSON> (python -m benchmarks.trust writes one), or a registered "
                "model that carries one (analysis.run_id=models:/<name>@<alias>); or use "
                "analysis.trust.score=likelihood."
            )
        self.model, self.calibrator = registered_trust_model(run_id)
        if self.model is None:
            print(
                f"trust: {run_id} carries no trust calibrator (report.trust_model when it was "
                "registered): trust = DeepLabCut's likelihood instead of the combined score",
                flush=True,
            )
            self.score = "likelihood"

    def check_bodyparts(self, bodyparts: list[str]) -> None:
        """A combined score only scores the points it was fitted for, in their order."""
        if self.model is None:
            return
        try:
            self.model.check(bodyparts)
        except ValueError as error:
            raise DataError(f"{self.calibrator}: {error}.") from None

    def describe(self) -> str:
        """One line: which score, what is flagged."""
        if self.score == "likelihood":
            return f"trust = DeepLabCut's likelihood, points under {self.threshold:g} flagged"
        return (
            f"trust = 1 - P(error > {self.model.threshold or 'threshold'}) of the combined score, "
            f"points under {self.threshold:g} flagged; calibrator: {self.calibrator}"
            + fitted_on(self.model.provenance)
        )


def fitted_on(provenance: dict | None) -> str:
    """What a calibrator was fitted on, as a clause (empty when it does not say)."""
    if not provenance:
        return ""
    parts = []
    if provenance.get("participants"):
        parts.append(f"{len(provenance['participants'])} participants")
    if provenance.get("folds"):
        parts.append(f"folds {', '.join(map(str, provenance['folds']))}")
    if provenance.get("condition") is not None:
        parts.append(f"the models of condition {provenance['condition']}")
    return f", fitted on {' of '.join(parts[:2])}" + (f" ({parts[2]})" if len(parts) > 2 else "")


def load_trust_model(path, name: str | None = None) -> object:
    """The saved combined score (``TrustModel.save``) at ``path``, checked (``name``: how
    messages call the file)."""
    from src.trust.score import TrustModel

    name = name or str(path)
    try:
        model = TrustModel.load(Path(str(path)))
    except (OSError, ValueError, TypeError) as error:
        raise DataError(
            f"{name}: cannot be read as a trust score ({error}); give the JSON file "
            "TrustModel.save wrote (analysis.trust.model)."
        ) from None
    try:
        model.check()
    except ValueError as error:
        raise DataError(f"{name}: {error}.") from None
    return model


def registered_trust_model(uri: str) -> tuple[object | None, str]:
    """The trust calibrator the registered model ``uri`` carries and how to name it, or (None,
    "") when it carries none."""
    import tempfile

    from src.analysis.model_choice import registered_calibrator

    with tempfile.TemporaryDirectory(prefix="calibrator-") as tmp:
        path, _ = registered_calibrator(uri, Path(tmp))
        if path is None:
            return None, ""
        name = f"{uri} (its artifact {path.name})"
        return load_trust_model(path, name), name


@dataclass
class VideoTrust:
    """One video's trust: ``trust`` (n_frames, n_points), 0 ... 1, higher = more trustworthy, and
    ``flagged`` (trust under the threshold, or no position)."""

    trust: np.ndarray
    flagged: np.ndarray
    settings: TrustSettings
    exported_frames: list[int] = field(default_factory=list)
    seconds: float = 0.0  # time of all the trust work (score, files, picture, export)
    score_seconds: float = 0.0  # time of the score alone (its signals from the predictions)
    predicted_mae: tuple[float, float, float] | None = None  # px: estimate, interval low, high

    @property
    def frame_flagged(self) -> np.ndarray:
        return self.flagged.any(axis=1)

    @property
    def frame_trust(self) -> np.ndarray:
        """Mean trust of each frame's points (for the combined score: 1 - the expected share of
        points in error)."""
        with np.errstate(all="ignore"):
            return np.nanmean(self.trust, axis=1)

    def summary(self) -> dict:
        """The per-video summary: frames and points flagged, the frames exported; with a
        calibrator that predicts it, the video's predicted MAE (px) and its interval."""
        n_frames = len(self.trust)
        row = {
            "score": self.settings.score,
            "threshold": self.settings.threshold,
            "n_frames": n_frames,
            "frames_flagged": int(self.frame_flagged.sum()),
            "frames_flagged_share": float(self.frame_flagged.mean()) if n_frames else np.nan,
            "points_flagged_share": float(self.flagged.mean()) if n_frames else np.nan,
            "mean_trust": float(np.nanmean(self.trust)) if n_frames else np.nan,
            "frames_exported": len(self.exported_frames),
        }
        if self.settings.score == "combined":
            row["expected_points_in_error_share"] = 1.0 - row["mean_trust"]
        if self.predicted_mae is not None:
            level = self.settings.model.video_mae["level"]
            row["predicted_mae_px"], low, high = self.predicted_mae
            row[f"predicted_mae_low_px_{level:.0%}"] = low
            row[f"predicted_mae_high_px_{level:.0%}"] = high
        return row


def score_video(
    settings: TrustSettings, poses: np.ndarray, other_xy: list[np.ndarray] | None = None
) -> VideoTrust:
    """Trust and flags of every point of one video from its ``poses`` (n_frames, n_points, 3: x,
    y, likelihood) and, for a score using model disagreement, other models' ``xy``."""
    poses = np.asarray(poses, dtype=float)
    predicted_mae = None
    if settings.score == "likelihood":
        trust = poses[..., 2].copy()
    else:
        columns = settings.model.video_signals(poses, other_xy or [])
        trust = 1.0 - settings.model.score_signals(columns)
        predicted_mae = settings.model.predict_video_mae(columns)
    missing = ~np.isfinite(poses[..., :2]).all(axis=2) | ~np.isfinite(trust)
    flagged = missing | (np.nan_to_num(trust, nan=0.0) < settings.threshold)
    return VideoTrust(trust, flagged, settings, predicted_mae=predicted_mae)


def trust_table(predictions: pd.DataFrame, video_trust: VideoTrust, bodyparts: list[str]):
    """DeepLabCut's predictions table with two more coords per point: ``trust`` (0 ... 1) and
    ``flagged`` (0 | 1), in the same scorer / bodyparts / coords layout."""
    scorer = predictions.columns.get_level_values("scorer")[0]
    parts = {}
    for j, bodypart in enumerate(bodyparts):
        block = predictions[scorer][bodypart][["x", "y", "likelihood"]].copy()
        block["trust"] = video_trust.trust[:, j]
        block["flagged"] = video_trust.flagged[:, j].astype(int)
        parts[bodypart] = block
    table = pd.concat(parts, axis=1, names=["bodyparts", "coords"])
    table.columns = pd.MultiIndex.from_tuples(
        [(scorer, *c) for c in table.columns], names=["scorer", "bodyparts", "coords"]
    )
    return table


def write_trust_table(table: pd.DataFrame, folder: Path) -> None:
    """``trust.h5`` (key df_with_missing, as DeepLabCut's) and ``trust.csv`` in the video's folder.

    A file of its own: DeepLabCut's readers of ``<video>DLC_<scorer>.h5`` take three coords per
    point (they reshape to x, y, likelihood), so its predictions files stay as DeepLabCut writes
    them; and no ``<video>DLC_*`` name, which scripts globbing for predictions would pick up."""
    table.to_hdf(folder / "trust.h5", key="df_with_missing", format="table", mode="w")
    table.to_csv(folder / "trust.csv")


def frames_to_export(video_trust: VideoTrust, limit: int, min_gap: int) -> list[int]:
    """At most ``limit`` flagged frames, least trusted first, each at least ``min_gap`` frames from
    the others (neighbouring frames look alike); returned in frame order."""
    flagged = np.flatnonzero(video_trust.frame_flagged)
    if limit <= 0 or not len(flagged):
        return []
    order = flagged[
        np.argsort(np.nan_to_num(video_trust.frame_trust[flagged], nan=-1.0), kind="stable")
    ]
    chosen: list[int] = []
    for frame in order:
        if all(abs(int(frame) - c) >= min_gap for c in chosen):
            chosen.append(int(frame))
            if len(chosen) == limit:
                break
    return sorted(chosen)


def read_frames(video: Path, frames: list[int]) -> dict[int, np.ndarray]:
    """The named frames of a video (BGR), read in one pass."""
    import cv2

    wanted, found = set(frames), {}
    capture = cv2.VideoCapture(str(video))
    index = 0
    try:
        while wanted - found.keys():
            ok, image = capture.read()
            if not ok:
                break
            if index in wanted:
                found[index] = image
            index += 1
    finally:
        capture.release()
    return found


@dataclass(frozen=True)
class TrackedVideo:
    """One video as the model tracked it: its ``VideoInfo``, the poses (frame x bodypart x
    (x, y, likelihood)), the points and skeleton they are of, and the likelihood cutoff."""

    video: VideoInfo
    poses: np.ndarray
    bodyparts: list[str]
    skeleton: list[list[str]]
    pcutoff: float


def _starting_points(
    video_trust: VideoTrust, tracked: TrackedVideo, frames: list[int]
) -> pd.DataFrame:
    """The model's positions of ``frames`` (frame, bodypart, x, y) as the labeller's starting
    points: NaN where the point is flagged or below ``pcutoff``."""
    rows = []
    for frame in frames:
        for j, bodypart in enumerate(tracked.bodyparts):
            x, y, likelihood = tracked.poses[frame, j]
            keep = not video_trust.flagged[frame, j] and likelihood >= tracked.pcutoff
            rows.append(
                {
                    "frame": frame,
                    "bodypart": bodypart,
                    "x": x if keep else np.nan,
                    "y": y if keep else np.nan,
                }
            )
    return pd.DataFrame(rows)


def export_flagged_frames(
    video_trust: VideoTrust, tracked: TrackedVideo, staging: Path, final: Path
) -> Path | None:
    """The least trusted flagged frames as a DeepLabCut project for labelling, written to
    ``staging`` (the video's folder while it is written) with its ``project_path`` the ``final``
    one; returns its config.yaml, or None when no frame is exported.

    ``labeled-data/<video>/img<frame>.png`` and ``CollectedData_<scorer>.h5/.csv`` holding the
    model's positions of the points that are not flagged (and pass ``pcutoff``) as starting
    points; flagged points are left empty, to be placed by the labeller.
    """
    import cv2

    from src.data.collected_data import write_collected_data
    from src.engine import write_labelling_config

    settings, video, poses = video_trust.settings, tracked.video, tracked.poses
    frames = frames_to_export(video_trust, settings.export_flagged, settings.export_min_gap)
    images = read_frames(video.path, frames)
    frames = [f for f in frames if f in images]
    video_trust.exported_frames = frames
    if not frames:
        return None
    name = video.path.stem
    folder = staging / LABELLING_FOLDER / "labeled-data" / name
    folder.mkdir(parents=True)
    digits = len(str(max(video.n_frames, len(poses)) - 1))  # DeepLabCut: img + zero-padded index
    files = pd.Series({f: f"img{f:0{digits}d}.png" for f in frames})
    for frame in frames:
        cv2.imwrite(str(folder / files[frame]), images[frame])
    points = _starting_points(video_trust, tracked, frames)
    write_collected_data(points, files, settings.scorer, tracked.bodyparts, folder)
    height, width = images[frames[0]].shape[:2]
    return write_labelling_config(
        staging / LABELLING_FOLDER,
        project_path=final / LABELLING_FOLDER,
        task=name,
        scorer=settings.scorer,
        bodyparts=tracked.bodyparts,
        skeleton=tracked.skeleton,
        video_sets={str(Path(video.path).resolve()): {"crop": f"0, {width}, 0, {height}"}},
    )


def feature_flags(
    flagged: np.ndarray,
    bodyparts: list[str],
    angles: dict[str, list[str]],
    centre_points: list[str],
) -> pd.DataFrame:
    """Per frame, whether a feature uses a flagged point: ``flagged_angle_<joint>`` (one of its
    three points; its angular velocity at frame t comes from the angles at t - 1 and t + 1),
    ``flagged_distance_<point>`` (the point or a body-centre point)."""
    index = {name: j for j, name in enumerate(bodyparts)}
    columns = {}
    for name, points in angles.items():
        columns[f"flagged_angle_{name}"] = flagged[:, [index[p] for p in points]].any(axis=1)
    centre = flagged[:, [index[p] for p in centre_points]].any(axis=1)
    for j, name in enumerate(bodyparts):
        columns[f"flagged_distance_{name}"] = flagged[:, j] | centre
    return pd.DataFrame(columns)


def plot_timeline(
    video_trust: VideoTrust,
    bodyparts: list[str],
    features: pd.DataFrame,
    positions: np.ndarray,
    path: Path,
) -> Path:
    """Three panels over time: the joint angles (or, without angles, the points' x) with flagged
    frames shaded, which points are flagged, and each frame's mean trust against the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    time_s = features["time_s"].to_numpy()
    step = float(np.median(np.diff(time_s))) if len(time_s) > 1 else 1.0
    fig, axes = plt.subplots(
        3, 1, figsize=(9, 7.5), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 2, 1.3]}
    )
    angle_columns = [c for c in features if c.startswith("angle_") and c.endswith("_deg")]
    if angle_columns:
        for column in angle_columns:
            axes[0].plot(time_s, features[column], lw=0.9, label=column[6:-4])
        axes[0].set(ylabel="angle (deg)", title="Joint angles; shaded: flagged frames")
    else:
        for j, name in enumerate(bodyparts):
            axes[0].plot(time_s, positions[:, j, 0], lw=0.8, label=name)
        axes[0].set(ylabel="x (px)", title="Positions; shaded: flagged frames")
    for start, end in _spans(video_trust.frame_flagged):
        axes[0].axvspan(
            time_s[start] - step / 2, time_s[end - 1] + step / 2, color="red", alpha=0.15, lw=0
        )
    axes[0].legend(fontsize=6, ncol=4, loc="upper right")
    extent = (time_s[0] - step / 2, time_s[-1] + step / 2, len(bodyparts) - 0.5, -0.5)
    axes[1].imshow(
        video_trust.flagged.T.astype(float),
        aspect="auto",
        interpolation="nearest",
        cmap="Reds",
        vmin=0,
        vmax=1,
        extent=extent,
    )
    axes[1].set_yticks(range(len(bodyparts)), bodyparts, fontsize=6)
    axes[1].set(title="Flagged points (red)")
    axes[2].plot(time_s, video_trust.frame_trust, lw=0.9, color="black")
    axes[2].axhline(video_trust.settings.threshold, color="red", lw=0.8, ls="--")
    axes[2].set(
        xlabel="time (s)",
        ylabel="trust",
        ylim=(-0.02, 1.02),
        title="Mean trust of the frame's points (dashed: flag threshold)",
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in ``mask`` as (start, end) frame indices, end exclusive."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def analyse_trust(
    settings: TrustSettings,
    tracked: TrackedVideo,
    predictions: pd.DataFrame,
    staging: Path,
    final: Path,
    other_xy: list[np.ndarray] | None = None,
) -> VideoTrust:
    """Score one video and write its trust table and summary into ``staging``; the labelling
    folder of flagged frames too. The timeline picture needs the features: ``plot_timeline``."""
    start = time.perf_counter()
    video_trust = score_video(settings, tracked.poses, other_xy)
    video_trust.score_seconds = time.perf_counter() - start
    write_trust_table(trust_table(predictions, video_trust, tracked.bodyparts), staging)
    if settings.export_flagged:
        export_flagged_frames(video_trust, tracked, staging, final)
    pd.DataFrame([video_trust.summary()]).to_csv(
        staging / "trust_summary.csv", index=False, float_format="%.4f"
    )
    video_trust.seconds = time.perf_counter() - start
    return video_trust


PREDICTED_MAE_NOTE = (
    "predicted MAE: per video in trust_summary.csv (predicted_mae_px and its interval) when the "
    "calibrator has a video error model (analysis.trust.score=combined); none with the likelihood "
    "score (docs/trust.md)"
)
