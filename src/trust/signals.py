"""Signals of tracking failure per point and frame, from one video's predictions alone.

Arrays of one video: ``xy`` (n_frames, n_points, 2), image pixels; ``likelihood`` (n_frames,
n_points), DeepLabCut's 0 ... 1. Every signal returns (n_frames, n_points) floats, larger = less
trustworthy, NaN where it cannot be computed (a missing point, a one-frame video).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import PCA

# DeepLabCut's extract_outlier_frames defaults: outlieralgorithm="jump" flags a frame where a
# point moved more than epsilon px since the previous frame; "uncertain" where a likelihood is
# under p_bound.
DLC_JUMP_EPSILON_PX = 20.0
DLC_UNCERTAIN_P_BOUND = 0.01


def low_likelihood(likelihood: np.ndarray) -> np.ndarray:
    """1 - DeepLabCut's likelihood (dimensionless, 0 ... 1): the network's own doubt."""
    return 1.0 - np.asarray(likelihood, dtype=float)


def displacement_px(xy: np.ndarray) -> np.ndarray:
    """Distance (px) of each point from its position in the previous frame, DeepLabCut's "jump"
    quantity (0 in the first frame, which DeepLabCut's ``diff`` never flags)."""
    xy = np.asarray(xy, dtype=float)
    out = np.zeros(xy.shape[:2])
    out[1:] = np.linalg.norm(np.diff(xy, axis=0), axis=2)
    return out


def jump_px(xy: np.ndarray) -> np.ndarray:
    """How far a point jumps against its neighbours in time beyond the body's own motion (px).

    The step of a point from frame t-1 to t, less the median step of all points over that interval
    (what the whole body, or the camera, moved), is the point's own step; its jump in frame t is the
    smaller of its own steps into and out of frame t. A point that leaves its track for one frame
    and comes back has both steps large, its neighbours only one; the first and last frame have
    one step only and take it. NaN where a point is missing on both sides.
    """
    xy = np.asarray(xy, dtype=float)
    n_frames, n_points = xy.shape[:2]
    if n_frames < 2:
        return np.full((n_frames, n_points), np.nan)
    step = np.diff(xy, axis=0)  # (n_frames - 1, n_points, 2): frame t-1 -> t
    with np.errstate(all="ignore"):
        body = np.nanmedian(step, axis=1, keepdims=True)
    own = np.linalg.norm(step - body, axis=2)
    missing = np.full((1, n_points), np.nan)
    into = np.concatenate([missing, own])  # the step into frame t
    out_of = np.concatenate([own, missing])  # the step out of frame t
    return np.fmin(into, out_of)  # fmin takes the other side where one is NaN


def segment_length_deviation(
    xy: np.ndarray, bodyparts: Sequence[str], skeleton: Sequence[Sequence[str]]
) -> np.ndarray:
    """Relative deviation of a point's skeleton segments from their median length over the video
    (dimensionless: 0 = the median length, 0.5 = half as long again or half as short).

    Per segment [a, b] of ``skeleton`` and frame: |length / median length over the video - 1|;
    per point the largest over the segments that end in it. One video is one participant, so the
    median is that participant's own segment length (with the camera's foreshortening). NaN for a
    point in no segment.
    """
    xy = np.asarray(xy, dtype=float)
    index = {name: i for i, name in enumerate(bodyparts)}
    out = np.full(xy.shape[:2], np.nan)
    for a, b in skeleton:
        i, j = index[a], index[b]
        length = np.linalg.norm(xy[:, i] - xy[:, j], axis=1)
        with np.errstate(all="ignore"):
            deviation = np.abs(length / np.nanmedian(length) - 1.0)
        out[:, i] = np.fmax(out[:, i], deviation)
        out[:, j] = np.fmax(out[:, j], deviation)
    return out


def model_disagreement_px(predictions: Sequence[np.ndarray]) -> np.ndarray:
    """Spread of several models' predictions of the same point (px): the root-mean-square distance
    of each model's point from the models' mean point. ``predictions``: one ``xy`` per model, all of
    the same video (models that never saw its participant, e.g. a fold's conditions)."""
    stacked = np.stack([np.asarray(p, dtype=float) for p in predictions])
    if len(stacked) < 2:
        raise ValueError("model disagreement needs the predictions of two models or more")
    centre = stacked.mean(axis=0)
    return np.sqrt((((stacked - centre) ** 2).sum(axis=3)).mean(axis=0))


# Left/right in a bodypart's name, each with its mirror (case kept): a whole word at the start or
# end of the name or between separators (``left_wrist``, ``wrist_right``, ``front_left_paw``,
# ``leftear``, ``LeftEar``, ``earLeft``), or one letter with a separator (``l_knee``, ``knee_R``)
# or before a capitalised word (OpenPose's ``LShoulder``).
_SIDE_SWAP = {"left": "right", "Left": "Right", "LEFT": "RIGHT", "l": "r", "L": "R"}
_SIDE_SWAP |= {b: a for a, b in _SIDE_SWAP.items()}
_WORD, _SEP = "left|right|Left|Right|LEFT|RIGHT", r"[_\-. ]"
_SIDE_PATTERNS = [
    re.compile(rf"^({_WORD})"),
    re.compile(rf"({_WORD})$"),
    re.compile(rf"(?<={_SEP})({_WORD})(?={_SEP})"),
    re.compile(rf"^([lrLR])(?={_SEP})"),
    re.compile(rf"(?<={_SEP})([lrLR])$"),
    re.compile(r"^([LR])(?=[A-Z][a-z])"),
]


def mirror_pairs(bodyparts: Sequence[str]) -> list[int]:
    """For each bodypart the index of its mirror image's bodypart, itself when it has none
    (``head``): ``left_wrist`` <-> ``right_wrist``, also ``l_``/``r_`` and ``Left``/``Right``
    prefixes and suffixes (see ``_SIDE_PATTERNS``). A name is paired only with a name that
    ``bodyparts`` holds, so ``leftover`` stays itself unless there is a ``rightover``."""
    index = {name: i for i, name in enumerate(bodyparts)}
    mirror = list(range(len(bodyparts)))
    for i, name in enumerate(bodyparts):
        for pattern in _SIDE_PATTERNS:
            for match in pattern.finditer(name):
                other = name[: match.start()] + _SIDE_SWAP[match.group(1)] + name[match.end() :]
                if other in index and mirror[i] == i:
                    mirror[i] = index[other]
    return mirror


def flip_disagreement_px(
    xy: np.ndarray, xy_on_flipped: np.ndarray, width: int, mirror: Sequence[int]
) -> np.ndarray:
    """Test-time augmentation (px): the distance between the model's prediction of a point on the
    frame and its prediction on the horizontally flipped frame, mapped back.

    ``xy_on_flipped``: the same model's ``xy`` on the mirrored video (``cv2.flip(frame, 1)``),
    ``width`` the frame's width in pixels, ``mirror`` from ``mirror_pairs``. On the flipped frame
    the person's right wrist is seen as a left wrist, so point i is compared with the flipped
    prediction of ``mirror[i]``, its x mapped back as ``width - 1 - x``: DeepLabCut's coordinates
    put pixel centres at integers (its labels, and its own flip augmentation, albumentations'
    ``keypoint_hflip``: ``cols - 1 - x``), so column c of the frame is column width - 1 - c of the
    flipped one. NaN where either prediction is."""
    xy = np.asarray(xy, dtype=float)
    back = np.asarray(xy_on_flipped, dtype=float)[:, list(mirror)].copy()
    back[..., 0] = width - 1 - back[..., 0]
    return np.linalg.norm(xy - back, axis=2)


def _similarity_frames(
    xy: np.ndarray, reference: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each pose centred, scaled to unit root-mean-square radius and, with ``reference``, rotated
    onto it (least squares, no reflection). Returns the normalised poses and each pose's scale
    (px per unit)."""
    centred = xy - xy.mean(axis=1, keepdims=True)
    scale = np.sqrt((centred**2).sum(axis=2).mean(axis=1))
    scale = np.where(scale > 0, scale, np.nan)
    unit = centred / scale[:, None, None]
    if reference is None:
        return unit, scale
    # Kabsch per frame: rotation R minimising |unit @ R - reference|
    u, _, vt = np.linalg.svd(np.einsum("fpi,pj->fij", unit, reference))
    sign = np.sign(np.linalg.det(u @ vt))
    u[:, :, 1] *= sign[:, None]
    return np.einsum("fpi,fij->fpj", unit, u @ vt), scale


class PosePCA:
    """A PCA subspace of plausible poses, learned from the labelled training poses.

    Poses are compared up to position, size and in-plane rotation (Procrustes-aligned to the mean
    training pose); the subspace keeps the components that explain ``variance`` of the aligned
    training poses. ``reconstruction_error_px`` says how far each point lies from where the
    subspace would put it.
    """

    def __init__(self, variance: float = 0.95):
        self.variance = variance
        self.reference: np.ndarray | None = None
        self.pca: PCA | None = None

    def fit(self, poses: np.ndarray, iterations: int = 5) -> PosePCA:
        """Learn the subspace from labelled poses (n_poses, n_points, 2), px; poses with a
        missing point are left out."""
        poses = np.asarray(poses, dtype=float)
        poses = poses[np.isfinite(poses).all(axis=(1, 2))]
        if len(poses) < 3:
            raise ValueError(f"PosePCA needs 3 complete poses or more, got {len(poses)}")
        aligned, _ = _similarity_frames(poses, None)
        reference = aligned[0]
        for _ in range(iterations):  # generalised Procrustes: align to the mean, repeat
            aligned, _ = _similarity_frames(poses, reference)
            reference, _ = _similarity_frames(aligned.mean(axis=0, keepdims=True), None)
            reference = reference[0]
        self.reference = reference
        self.pca = PCA(n_components=self.variance, svd_solver="full").fit(
            aligned.reshape(len(poses), -1)
        )
        return self

    def reconstruction_error_px(self, xy: np.ndarray) -> np.ndarray:
        """Distance (px) of each point from its reconstruction in the subspace, (n_frames,
        n_points); NaN in frames with a missing point."""
        if self.pca is None:
            raise ValueError("PosePCA is not fitted")
        xy = np.asarray(xy, dtype=float)
        out = np.full(xy.shape[:2], np.nan)
        complete = np.isfinite(xy).all(axis=(1, 2))
        if not complete.any():
            return out
        aligned, scale = _similarity_frames(xy[complete], self.reference)
        flat = aligned.reshape(len(aligned), -1)
        rebuilt = self.pca.inverse_transform(self.pca.transform(flat)).reshape(aligned.shape)
        out[complete] = np.linalg.norm(aligned - rebuilt, axis=2) * scale[:, None]
        return out

    def to_dict(self) -> dict:
        """The fitted subspace as plain lists (for a JSON file)."""
        return {
            "variance": self.variance,
            "reference": self.reference.tolist(),
            "mean": self.pca.mean_.tolist(),
            "components": self.pca.components_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> PosePCA:
        """The subspace ``to_dict`` wrote."""
        model = cls(float(data["variance"]))
        model.reference = np.asarray(data["reference"], dtype=float)
        components = np.asarray(data["components"], dtype=float)
        model.pca = PCA(n_components=len(components))
        model.pca.mean_ = np.asarray(data["mean"], dtype=float)
        model.pca.components_ = components
        model.pca.n_components_ = len(components)
        model.pca.n_features_in_ = components.shape[1]
        return model


def single_model_signals(
    xy: np.ndarray,
    likelihood: np.ndarray,
    bodyparts: Sequence[str],
    skeleton: Sequence[Sequence[str]],
    pose_pca: PosePCA,
) -> dict[str, np.ndarray]:
    """Every signal that one model's predictions of one video give, by name, each (n_frames,
    n_points). Other models' predictions add ``model_disagreement_px``."""
    return {
        "low_likelihood": low_likelihood(likelihood),
        "jump_px": jump_px(xy),
        "segment_length_deviation": segment_length_deviation(xy, bodyparts, skeleton),
        "pca_reconstruction_error_px": pose_pca.reconstruction_error_px(xy),
    }


def video_means(signals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each signal's mean over the whole video (all points and frames), broadcast to every point
    and frame, as ``video_mean_<signal>`` (the signal's unit): how hard the video is as a whole,
    context for a point's own signal (a video where every point is in doubt)."""
    return {
        f"video_mean_{name}": np.full(np.shape(values), np.nanmean(values))
        for name, values in signals.items()
    }


def dlc_outlier_flags(
    xy: np.ndarray,
    likelihood: np.ndarray,
    epsilon_px: float = DLC_JUMP_EPSILON_PX,
    p_bound: float = DLC_UNCERTAIN_P_BOUND,
) -> dict[str, np.ndarray]:
    """DeepLabCut's own outlier criteria at their defaults, per point and frame (0 or 1):
    ``dlc_jump`` (moved more than ``epsilon_px`` since the previous frame) and ``dlc_uncertain``
    (likelihood under ``p_bound``). DeepLabCut flags a frame when any point is flagged."""
    return {
        "dlc_jump": (displacement_px(xy) > epsilon_px).astype(float),
        "dlc_uncertain": (np.asarray(likelihood, dtype=float) < p_bound).astype(float),
    }
