"""Movement: dystonic (or voluntary) postures and choreic waves as joint trajectories, and the poses
of one video in image coordinates (camera placement, drift, sub-frame times)."""

from __future__ import annotations

import numpy as np

from src.synthetic.body import (
    BODYPARTS,
    JOINT_NAMES,
    LOWER,
    SIDES,
    UPPER,
    forward_kinematics,
    make_participant,
)
from src.synthetic.settings import settings, stream

# How strongly each joint takes part in fast choreoathetotic movement (distal joints and head more).
CHOREO_WEIGHT = np.array(
    [
        0.4
        if j.startswith(("trunk", "pelvis"))
        else 0.6
        if j.endswith(("abd", "flex", "elev"))
        else 1.0
        for j in JOINT_NAMES
    ]
)


# Voluntary actions of the healthy adults: joint -> target range; "*" stands for both sides.
ACTIONS = [
    {"*_sh_abd": (140, 175), "*_elbow": (0, 25)},  # both arms up
    {"r_sh_abd": (70, 175), "r_elbow": (0, 70), "r_elbow_plane": (-1, -0.4)},  # right arm up/wave
    {"l_sh_abd": (70, 175), "l_elbow": (0, 70), "l_elbow_plane": (-1, -0.4)},
    {"*_sh_elev": (60, 95), "*_sh_abd": (0, 25), "*_elbow": (0, 30)},  # reach forward
    {"r_hip_flex": (25, 65), "r_knee": (30, 90), "r_hip_abd": (0, 15)},  # step / knee lift
    {"l_hip_flex": (25, 65), "l_knee": (30, 90), "l_hip_abd": (0, 15)},
    {"trunk_flex": (20, 35), "*_sh_elev": (40, 80), "*_elbow": (0, 40)},  # bend forward
    {"*_sh_abd": (35, 50), "*_elbow": (100, 130), "*_elbow_plane": (0.7, 1.0)},  # hands on hips
    {"trunk_bend": (-20, 20), "head_lat": (-15, 15)},  # side bend
]


def min_jerk(u):
    """Minimum-jerk progress 0..1 over normalised time u in 0..1 (smooth start and stop)."""
    return u**3 * (10 - 15 * u + 6 * u * u)


def postural_trajectory(rng, times, b, cfg) -> np.ndarray:
    """Move to a target posture (min-jerk, move_s), hold it (hold_s), repeat: dystonic or
    voluntary."""
    rest, t, q, knots = b["rest"], -rng.uniform(0, cfg.hold_s[1]), b["rest"].copy(), []
    while t < times.max():
        if cfg.movement == "dyskinetic":
            # Sustained twisting: part of the body moves towards an extreme.
            extreme = rng.uniform(LOWER, UPPER)
            target = np.where(
                rng.random(len(rest)) < 0.6,
                rest + b["dystonia_severity"] * (extreme - rest),
                q + 0.5 * (rest - q),
            )
        else:  # voluntary: rest or one everyday action
            target = rest.copy()
            if rng.random() < 0.7:
                for key, rng_range in ACTIONS[rng.integers(len(ACTIONS))].items():
                    for name in [key.replace("*", s) for s in "rl"] if "*" in key else [key]:
                        target[JOINT_NAMES.index(name)] = rng.uniform(*rng_range)
        move = rng.uniform(*cfg.move_s)
        knots.append((t, move, q, target))
        t, q = t + move + rng.uniform(*cfg.hold_s), target
    starts = np.array([k[0] for k in knots])
    idx = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, None)
    u = min_jerk(np.clip((times - starts[idx]) / np.array([k[1] for k in knots])[idx], 0, 1))[
        :, None
    ]
    q_from, q_to = np.array([k[2] for k in knots])[idx], np.array([k[3] for k in knots])[idx]
    return q_from + u * (q_to - q_from)


def choreic_trajectory(rng, times, b, cfg, n_waves: int = 8) -> np.ndarray:
    """Fast irregular movement: random sinusoids in choreo_band_hz with a bursty envelope,
    unit-free scale."""
    n = len(JOINT_NAMES)
    freq = rng.uniform(*cfg.choreo_band_hz, (n, n_waves))
    phase, amp = rng.uniform(0, 2 * np.pi, (n, n_waves)), rng.rayleigh(1.0, (n, n_waves))
    wave = (amp * np.sin(2 * np.pi * freq * times[:, None, None] + phase)).sum(-1) / np.sqrt(
        (amp**2).sum(-1) / 2
    )
    envelope = (
        0.3
        + 0.7
        * (
            0.5
            + 0.5
            * np.sin(
                2 * np.pi * rng.uniform(0.1, 0.4, n) * times[:, None] + rng.uniform(0, 2 * np.pi, n)
            )
        )
        ** 2
    )
    scale = b["choreoathetosis_severity"] * cfg.choreo_amplitude * CHOREO_WEIGHT * (UPPER - LOWER)
    return wave * envelope * scale


def joint_trajectory(rng, times, b, cfg) -> np.ndarray:
    """Joint parameters (T, n_joints) at `times` (s), within the anatomical limits."""
    return np.clip(
        postural_trajectory(rng, times, b, cfg) + choreic_trajectory(rng, times, b, cfg),
        LOWER,
        UPPER,
    )


def _slow(rng, times, amplitude, n=3, period=(8.0, 40.0)):
    """Slow smooth drift (sum of a few long-period sinusoids) with roughly the given amplitude."""
    f, ph = 1 / rng.uniform(*period, n), rng.uniform(0, 2 * np.pi, n)
    return amplitude * np.sin(2 * np.pi * f * times[:, None] + ph).sum(1) / np.sqrt(n / 2)


def simulate_video(cfg, p: int, s: int, b: dict | None = None) -> dict:
    """Poses of participant p, session s (0-based): image points (T, 2) per name at the sub-frame
    times (frame-major, `subframes` per frame) and at the frame centres (`centre` index), plus
    depth (z, cm)."""
    cfg = settings(cfg)
    b = b or make_participant(cfg, p)
    rng = stream(cfg, p, s, 0)
    k, n_f = int(cfg.subframes), int(cfg.frames_per_video)
    offsets = cfg.exposure_s * (np.arange(k) / (k - 1) - 0.5) if k > 1 else np.zeros(1)
    centres = np.arange(n_f) / cfg.fps
    times = np.concatenate([(centres[:, None] + offsets).ravel(), centres])
    q = joint_trajectory(rng, times, b, cfg)
    pts3 = forward_kinematics(q, b, cfg.view == "supine_top")
    w, h, cmpp = cfg.width_px, cfg.height_px, cfg.cm_per_px
    ranges = [list(r) for r in cfg.body_angle_deg]
    theta = np.radians(
        rng.uniform(*ranges[rng.integers(len(ranges))]) + _slow(rng, times, cfg.drift_deg)
    )
    c, si = np.cos(theta)[:, None], np.sin(theta)[:, None]
    # Rotate by theta clockwise from image-up; image y grows downwards.
    rel = {
        n: np.stack(
            [(c * v[:, :1] + si * v[:, 1:2]) / cmpp, (si * v[:, :1] - c * v[:, 1:2]) / cmpp], -1
        )[:, 0]
        for n, v in pts3.items()
    }
    desired = np.stack(
        [
            w / 2 + rng.uniform(-0.12, 0.12) * w + _slow(rng, times, cfg.drift_cm / cmpp),
            h / 2 + rng.uniform(-0.12, 0.12) * h + _slow(rng, times, cfg.drift_cm / cmpp),
        ],
        1,
    )
    if cfg.view == "upright_front":  # feet on the floor line
        desired[:, 1] = cfg.floor_frac * h - np.max(
            [rel[f"{sd}_{e}"][:, 1] for sd, _ in SIDES for e in ("ankle", "heel")], 0
        )
    extent = np.stack(
        [
            rel[n]
            for n in BODYPARTS
            + ["head_top", "right_hand_tip", "left_hand_tip", "right_toe", "left_toe", "head_side"]
        ],
        1,
    )
    margin = 2.0
    lo, hi = margin - extent.min(1), np.array([w - 1, h - 1]) - margin - extent.max(1)
    trans = np.where(lo <= hi, np.clip(desired, lo, hi), (lo + hi) / 2)  # whole body inside
    img = {n: v + trans for n, v in rel.items()}
    return {
        "img": img,
        "z": {n: v[:, 2] for n, v in pts3.items()},
        "times": times,
        "body": b,
        "sub": np.arange(n_f * k).reshape(n_f, k),
        "centre": n_f * k + np.arange(n_f),
        "orientation_deg": float(np.degrees(theta[n_f * k])),
    }


def simulate_poses(cfg, p: int, s: int) -> np.ndarray:
    """Ground-truth keypoints (frames, bodyparts, 2) in pixels, without rendering (cheap)."""
    sim = simulate_video(cfg, p, s)
    return np.stack([sim["img"][n][sim["centre"]] for n in BODYPARTS], 1)
