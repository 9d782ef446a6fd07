"""Generator of the embedded synthetic cohorts (DESIGN.md section 3).

`clinical`: children and young adults with dyskinetic cerebral palsy lying supine on a foam mat, filmed
from above (dystonia + choreoathetosis, distractors, blurred faces).  `healthy_adults`: upright adults
seen from the front making voluntary movements; the pre-training domain, different on purpose.

Bodies are 3-D stick figures (orthographic camera) dressed in shaded, tapered capsules and polygons:
nothing in the image marks a joint.  Every frame is the mean of a few sub-frame renders (motion blur);
ground truth is taken at the frame's centre time, and `occluded` comes from a part-id buffer drawn in the
same depth order as the image.  Usage: `python -m src.cohort [synthetic=tiny]`.
"""

from __future__ import annotations

import colorsys
import functools
import logging
import math
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from src.files import atomic_directory

log = logging.getLogger(__name__)


BODYPARTS = [
    "head",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
]


SKELETON = [
    ["head", "neck"],
    ["neck", "right_shoulder"],
    ["right_shoulder", "right_elbow"],
    ["right_elbow", "right_wrist"],
    ["neck", "left_shoulder"],
    ["left_shoulder", "left_elbow"],
    ["left_elbow", "left_wrist"],
    ["right_shoulder", "right_hip"],
    ["left_shoulder", "left_hip"],
    ["right_hip", "left_hip"],
    ["right_hip", "right_knee"],
    ["right_knee", "right_ankle"],
    ["left_hip", "left_knee"],
    ["left_knee", "left_ankle"],
]


SIDES = (("right", -1.0), ("left", 1.0))  # body-frame x points to the participant's left


# Joint parameters: (lower, upper) limit in degrees (elbow_plane: -1..1, share of elbow flexion that
# bends the forearm in the mat/image plane instead of towards the camera; + = towards the midline).
JOINTS = {
    "trunk_bend": (-25, 25),
    "trunk_twist": (-35, 35),
    "pelvis_twist": (-25, 25),
    "trunk_flex": (0, 35),
    "head_lat": (-35, 35),
    "head_rot": (-80, 80),
    "head_flex": (-20, 40),
}


for _s in "rl":
    JOINTS.update(
        {
            f"{_s}_sh_abd": (-30, 175),
            f"{_s}_sh_elev": (0, 100),
            f"{_s}_elbow": (0, 145),
            f"{_s}_elbow_plane": (-1, 1),
            f"{_s}_wrist": (-60, 70),
            f"{_s}_hip_abd": (-30, 45),
            f"{_s}_hip_flex": (0, 110),
            f"{_s}_knee": (0, 140),
            f"{_s}_ankle": (-20, 50),
            f"{_s}_hip_rot": (-40, 40),
        }
    )


JOINT_NAMES = list(JOINTS)


LOWER, UPPER = np.array([JOINTS[j] for j in JOINT_NAMES], float).T


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


REST = {
    "supine_top": {
        "sh_abd": 25,
        "elbow": 25,
        "elbow_plane": 0.3,
        "wrist": 10,
        "hip_abd": 10,
        "knee": 8,
        "ankle": 20,
    },
    "upright_front": {
        "sh_abd": 7,
        "sh_elev": 5,
        "elbow": 12,
        "elbow_plane": 0.2,
        "hip_abd": 4,
        "knee": 3,
    },
}


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
    {"trunk_bend": (-20, 20), "head_lat": (-15, 15)},
]  # side bend


PARTS = ["torso", "neck", "head", "toy", "caregiver"] + [
    f"{s}_{p}" for s, _ in SIDES for p in ("upper_arm", "forearm", "hand", "thigh", "shank", "foot")
]


PART_ID = {p: i + 1 for i, p in enumerate(PARTS)}  # 0 = background in the id buffer


OWNERS = {
    "head": {"head", "neck"},
    "neck": {"neck", "torso", "head"},
}  # parts a keypoint belongs to


for _side, _ in SIDES:
    OWNERS.update(
        {
            f"{_side}_shoulder": {"torso", f"{_side}_upper_arm"},
            f"{_side}_elbow": {f"{_side}_upper_arm", f"{_side}_forearm"},
            f"{_side}_wrist": {f"{_side}_forearm", f"{_side}_hand"},
            f"{_side}_hip": {"torso", f"{_side}_thigh"},
            f"{_side}_knee": {f"{_side}_thigh", f"{_side}_shank"},
            f"{_side}_ankle": {f"{_side}_shank", f"{_side}_foot"},
        }
    )


Z_AXIS = np.array([0.0, 0.0, 1.0])  # towards the camera


SKIN = [
    (250, 215, 185),
    (236, 188, 150),
    (220, 170, 128),
    (196, 140, 100),
    (160, 105, 72),
    (110, 74, 52),
]


HAIR = [(28, 24, 20), (70, 45, 28), (120, 82, 45), (205, 172, 112), (150, 62, 32)]


MAT = [
    (60, 105, 170),
    (110, 160, 210),
    (80, 140, 95),
    (140, 140, 148),
    (205, 190, 160),
    (170, 75, 62),
    (215, 185, 85),
]


class Settings(dict):
    """A cohort config as a plain dict with attribute access (OmegaConf nodes are slow in inner loops)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def settings(cfg) -> Settings:
    """Plain, resolved copy of a cohort config (DictConfig or dict)."""
    if isinstance(cfg, Settings):
        return cfg
    return Settings(
        OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    )


def _rng(cfg, *keys: int) -> np.random.Generator:
    """Independent stream per cohort/participant/video/purpose: adding a participant changes no other."""
    return np.random.default_rng([int(cfg.seed), zlib.crc32(str(cfg.name).encode()), *keys])


def _bgr(rgb, gain: float = 1.0) -> tuple:
    """RGB in 0..255 -> OpenCV's BGR order, as a hashable tuple of floats."""
    return tuple(min(float(c) * gain, 255.0) for c in reversed(rgb))


def _hsv(rng, sat, val) -> tuple:
    return _bgr(
        255 * np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val)))
    )


# ----------------------------------------------------------------------------------------------- bodies
def make_participant(cfg, p: int) -> dict:
    """Body proportions (cm), clothing and movement traits of participant index p (0-based)."""
    cfg = settings(cfg)
    rng = _rng(cfg, p)
    h = rng.uniform(*cfg.height_cm)
    growth = np.clip((h - 100) / 75, 0, 1)  # children have larger heads and shorter legs
    j = lambda: 1 + rng.normal(0, 0.04)  # noqa: E731 - individual variation of one proportion
    bulk = rng.uniform(0.9, 1.2)
    leg = (0.44 + 0.05 * growth) * h * j()
    head_len, neck_len = (17 + 3 * growth) * j(), 0.035 * h
    b = dict(
        height_cm=h,
        head_len=head_len,
        head_w=0.8 * head_len * j(),
        neck_len=neck_len,
        trunk=h - head_len - neck_len - leg - 0.04 * h,
        half_shoulder=0.10 * h * j(),
        half_hip=0.052 * h * j(),
        upper_arm=0.18 * h * j(),
        forearm=0.145 * h * j(),
        hand=0.105 * h * j(),
        thigh=0.51 * leg,
        shank=0.49 * leg,
        foot=0.14 * h * j(),
        w_upper_arm=0.062 * h * bulk,
        w_forearm=0.05 * h * bulk,
        w_hand=0.052 * h,
        w_thigh=0.095 * h * bulk,
        w_shank=0.068 * h * bulk,
        w_foot=0.05 * h,
        w_neck=0.06 * h,
        w_waist=0.085 * h * bulk,
    )
    b["skin"] = _bgr(SKIN[rng.integers(len(SKIN))], rng.uniform(0.95, 1.05))
    b["hair"] = _bgr(HAIR[rng.integers(len(HAIR))])
    b["shirt"] = _hsv(rng, (0.3, 0.9), (0.45, 0.95))
    b["trousers"] = _hsv(rng, (0.2, 0.7), (0.2, 0.6)) if rng.random() < 0.6 else _bgr((40, 50, 90))
    b["socks"] = _hsv(rng, (0.0, 0.5), (0.5, 1.0))
    # Garment ends in arm/leg segment units (0..1 upper segment, 1..2 lower one), never at a joint.
    b["sleeve"] = rng.uniform(0.35, 0.85) if rng.random() < 0.5 else rng.uniform(1.25, 1.8)
    b["trouser_end"] = rng.uniform(0.4, 0.85) if rng.random() < 0.35 else rng.uniform(1.35, 1.85)
    dys, cho = rng.uniform(*cfg.dystonia_severity), rng.uniform(*cfg.choreoathetosis_severity)
    b.update(
        dystonia_severity=dys,
        choreoathetosis_severity=cho,
        rest=np.array(
            [REST[cfg.view].get(name[2:] if name[1] == "_" else name, 0.0) for name in JOINT_NAMES]
        )
        + rng.normal(0, 4, len(JOINT_NAMES)) * (UPPER - LOWER) / 100,
    )
    return b


def _direction(caudal, lateral, a, e):
    """Unit 3-D vector: in-plane angle a from `caudal` towards `lateral`, then elevation e towards the camera."""
    return (
        np.cos(e)[:, None] * (np.cos(a)[:, None] * caudal + np.sin(a)[:, None] * lateral)
        + np.sin(e)[:, None] * Z_AXIS
    )


def _keep_above(e, base, length, floor):
    """Smallest elevation that keeps the distal end of a segment above the mat (z >= floor)."""
    return np.maximum(e, np.arcsin(np.clip((floor - base[:, 2]) / length, -1, 1)))


def forward_kinematics(q: np.ndarray, b: dict, supine: bool) -> dict:
    """Joint parameters (T, n_joints) -> named 3-D points (T, 3) in cm; origin mid-hips, y to the head."""
    a = {
        n: q[:, i] if n.endswith("plane") else np.radians(q[:, i])
        for i, n in enumerate(JOINT_NAMES)
    }
    n_t, h = len(q), b["height_cm"]
    bend, flex, zero = a["trunk_bend"], a["trunk_flex"], np.zeros(len(q))
    up_plane = np.stack([np.sin(bend), np.cos(bend), zero], 1)
    lat = np.stack([np.cos(bend), -np.sin(bend), zero], 1)
    up = np.cos(flex)[:, None] * up_plane + np.sin(flex)[:, None] * Z_AXIS
    sh_axis = np.cos(a["trunk_twist"])[:, None] * lat + np.sin(a["trunk_twist"])[:, None] * Z_AXIS
    hip_axis = np.stack([np.cos(a["pelvis_twist"]), zero, np.sin(a["pelvis_twist"])], 1)
    pelvis, neck = np.zeros((n_t, 3)), b["trunk"] * up
    pts = {
        "pelvis": pelvis,
        "neck": neck,
        "neck_base": neck - 0.03 * h * up,
        "neckline": neck - 0.045 * h * up,
        "crotch": pelvis - [0, 0.05 * h, 0],
    }
    caudal, rad = np.array([0.0, -1.0, 0.0]), lambda x: np.radians(x)  # noqa: E731
    for side, s in SIDES:
        g = lambda n: a[f"{side[0]}_{n}"]  # noqa: E731
        sh = neck - 0.025 * h * up + s * b["half_shoulder"] * sh_axis
        d = _direction(-up_plane, s * lat, g("sh_abd"), g("sh_elev"))
        elbow = sh + b["upper_arm"] * d
        fl, plane = g("elbow"), g("elbow_plane")
        e_fore = np.minimum(g("sh_elev") + fl * (1 - np.abs(plane)), rad(170))
        if supine:
            e_fore = _keep_above(e_fore, elbow, b["forearm"], np.minimum(0, sh[:, 2]))
        a_fore = g("sh_abd") - fl * plane
        wrist = elbow + b["forearm"] * _direction(-up_plane, s * lat, a_fore, e_fore)
        hip = pelvis + s * b["half_hip"] * hip_axis
        knee = hip + b["thigh"] * _direction(caudal, [s, 0, 0], g("hip_abd"), g("hip_flex"))
        a_shank, e_shank = (
            g("hip_abd") + g("hip_rot") * np.sin(g("knee")),
            g("hip_flex") - g("knee"),
        )
        if supine:
            e_shank = _keep_above(e_shank, knee, b["shank"], np.minimum(0, hip[:, 2]))
        ankle = knee + b["shank"] * _direction(caudal, [s, 0, 0], a_shank, e_shank)
        foot = _direction(
            caudal, [s, 0, 0], a_shank, e_shank + rad(90) - g("ankle")
        )  # toes point to the camera
        waist = 0.55 * hip + 0.45 * sh + s * 0.25 * b["w_waist"] * lat
        hip_out = hip + s * 0.045 * h * hip_axis
        pts.update(
            {
                f"{side}_shoulder": sh,
                f"{side}_elbow": elbow,
                f"{side}_wrist": wrist,
                f"{side}_hand_tip": wrist
                + b["hand"] * _direction(-up_plane, s * lat, a_fore, e_fore + g("wrist")),
                f"{side}_hip": hip,
                f"{side}_knee": knee,
                f"{side}_ankle": ankle,
                f"{side}_heel": ankle - 0.2 * b["foot"] * foot,
                f"{side}_toe": ankle + 0.8 * b["foot"] * foot,
                f"{side}_collar": neck - 0.005 * h * up + s * 0.035 * h * lat,
                f"{side}_shoulder_out": sh + s * 0.03 * h * sh_axis + 0.028 * h * up,
                f"{side}_waist": waist,
                f"{side}_hem": 0.8 * hip_out + 0.2 * waist,
                f"{side}_band": 0.45 * hip_out + 0.55 * waist,
                f"{side}_hip_out": hip_out,
                f"{side}_thigh_top": hip_out - [0, 0.03 * h, 0],
            }
        )
    head_dir = _direction(-up_plane, lat, np.pi - a["head_lat"], flex + a["head_flex"])
    head_side = np.cos(a["head_lat"])[:, None] * lat - np.sin(a["head_lat"])[:, None] * up_plane
    head = neck + (b["neck_len"] + 0.45 * b["head_len"]) * head_dir
    pts.update(
        head=head,
        head_top=head + 0.5 * b["head_len"] * head_dir,
        face=head
        + np.sin(a["head_rot"])[:, None] * 0.25 * b["head_w"] * head_side
        - 0.1 * b["head_len"] * head_dir
        + 0.5 * b["head_w"] * Z_AXIS,
    )
    pts["head_side"] = head + 0.5 * b["head_w"] * head_side
    pts["face_side"] = pts["face"] + 0.4 * b["head_w"] * np.cos(a["head_rot"])[:, None] * head_side
    return pts


# ------------------------------------------------------------------------------------------- movement
def _min_jerk(u):
    return u**3 * (10 - 15 * u + 6 * u * u)


def postural_trajectory(rng, times, b, cfg) -> np.ndarray:
    """Move to a target posture (min-jerk, move_s), hold it (hold_s), repeat: dystonic or voluntary."""
    rest, t, q, knots = b["rest"], -rng.uniform(0, cfg.hold_s[1]), b["rest"].copy(), []
    while t < times.max():
        if (
            cfg.movement == "dyskinetic"
        ):  # sustained twisting: part of the body moves towards an extreme
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
    u = _min_jerk(np.clip((times - starts[idx]) / np.array([k[1] for k in knots])[idx], 0, 1))[
        :, None
    ]
    q_from, q_to = np.array([k[2] for k in knots])[idx], np.array([k[3] for k in knots])[idx]
    return q_from + u * (q_to - q_from)


def choreic_trajectory(rng, times, b, cfg, n_waves: int = 8) -> np.ndarray:
    """Fast irregular movement: random sinusoids in choreo_band_hz with a bursty envelope, unit-free scale."""
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
    """Poses of participant p, session s (0-based): image points (T, 2) per name at the sub-frame times
    (frame-major, `subframes` per frame) and at the frame centres (`centre` index), plus depth (z, cm)."""
    cfg = settings(cfg)
    b = b or make_participant(cfg, p)
    rng = _rng(cfg, p, s, 0)
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
    rel = {
        n: np.stack(
            [(c * v[:, :1] + si * v[:, 1:2]) / cmpp, (si * v[:, :1] - c * v[:, 1:2]) / cmpp], -1
        )[:, 0]
        for n, v in pts3.items()
    }  # rotate by theta clockwise from image-up; image y grows downwards
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
    trans = np.where(
        lo <= hi, np.clip(desired, lo, hi), (lo + hi) / 2
    )  # whole body inside the image
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


# ------------------------------------------------------------------------------------------ rendering
@functools.lru_cache(maxsize=4096)
def _shades(colour: tuple) -> list:
    return [tuple(min(c * m, 255.0) for c in colour) for m in Canvas.BRIGHTNESS]


class Canvas:
    """Draws shaded shapes (colour mode) or flat part ids (id mode) at `scale` x the output resolution."""

    SHIFT = 4  # sub-pixel precision of OpenCV drawing: coordinates in 1/16 pixel
    SIZES, BRIGHTNESS = (
        np.array([1.0, 0.72, 0.4]),
        (0.62, 0.84, 1.0),
    )  # nested layers, lighter along the middle
    POLYGON_LAYERS = ((1.0, 0.66), (0.9, 0.78), (0.78, 0.87), (0.64, 0.94), (0.5, 1.0))

    def __init__(self, image: np.ndarray, scale: int, ids: bool = False):
        self.img, self.ids, self.aa = image, ids, cv2.LINE_8 if ids else cv2.LINE_AA
        self.k, self.offset = scale * (1 << self.SHIFT), (0.5 * scale - 0.5) * (1 << self.SHIFT)
        self.sizes = self.SIZES[:1] if ids else self.SIZES

    def _fix(
        self, p
    ):  # output-pixel coordinates (pixel centres at integers) -> fixed-point render coordinates
        return np.rint(np.asarray(p) * self.k + self.offset).astype(np.int32)

    def _colours(self, colour):
        return [colour] if self.ids else _shades(tuple(colour))

    def chain(self, points, radii, colour):
        """Tapered polyline with round ends, drawn layer by layer so that no outline shows at its joints
        (plain floats: numpy is slow for 2-vectors)."""
        k, o = self.k, self.offset
        xy = [(float(p[0]), float(p[1])) for p in points]
        ends = [(round(x * k + o), round(y * k + o)) for x, y in xy]
        normals = []
        for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
            length = max(math.hypot(x1 - x0, y1 - y0), 1e-6)
            normals.append(((y0 - y1) / length, (x1 - x0) / length))
        for size, col in zip(self.sizes, self._colours(colour)):
            for j, (nx, ny) in enumerate(normals):
                (x0, y0), (x1, y1), a, b = xy[j], xy[j + 1], radii[j] * size, radii[j + 1] * size
                quad = (
                    np.array(
                        [
                            [x0 + nx * a, y0 + ny * a],
                            [x1 + nx * b, y1 + ny * b],
                            [x1 - nx * b, y1 - ny * b],
                            [x0 - nx * a, y0 - ny * a],
                        ]
                    )
                    * k
                    + o
                )
                cv2.fillConvexPoly(
                    self.img, quad.round().astype(np.int32), col, self.aa, self.SHIFT
                )
            for end, r in zip(ends, radii):
                cv2.circle(self.img, end, max(int(r * size * k), 1), col, -1, self.aa, self.SHIFT)

    def polygon(self, pts, colour):
        """Filled polygon, shaded by shrinking it towards its centre in small brightness steps."""
        pts = np.asarray(pts, float)
        centre = pts.mean(0)
        for size, gain in ((1.0, 1.0),) if self.ids else self.POLYGON_LAYERS:
            col = colour if self.ids else tuple(min(float(c) * gain, 255.0) for c in colour)
            cv2.fillPoly(
                self.img, [self._fix(centre + (pts - centre) * size)], col, self.aa, self.SHIFT
            )

    def ellipse(self, centre, half_axes, angle_deg, colour, shaded=True):
        centre = tuple(self._fix(centre).tolist())
        layers = (
            zip(self.sizes, self._colours(colour)) if shaded else [(1.0, tuple(map(float, colour)))]
        )
        for size, col in layers:
            axes = tuple(max(int(a * size * self.k), 1) for a in half_axes)
            cv2.ellipse(self.img, centre, axes, angle_deg, 0, 360, col, -1, self.aa, self.SHIFT)


def _cut(points, radii, units):
    """The first `units` segments (fractional) of a polyline: where a sleeve or trouser leg ends."""
    n = int(min(units, len(points) - 1 - 1e-9))
    f = units - n
    return (
        points[: n + 1] + [points[n] + f * (points[n + 1] - points[n])],
        radii[: n + 1] + [radii[n] + f * (radii[n + 1] - radii[n])],
    )


def _inside(point, polygons, head, head_r) -> bool:
    return np.hypot(*(point - head)) < head_r or any(
        cv2.pointPolygonTest(poly, (float(point[0]), float(point[1])), False) >= 0
        for poly in polygons
    )


def scene_parts(sim, i: int, cfg, extras) -> list:
    """Drawable parts at time index i, far to near: (depth key, name, shapes). A shape is (kind, geometry...,
    colour, part name(s) for the id buffer); a chain is a tapered polyline drawn as one smooth limb."""
    b, P, Z = (
        sim["body"],
        {n: v[i] for n, v in sim["img"].items()},
        {n: v[i] for n, v in sim["z"].items()},
    )
    px = lambda cm: cm / cfg.cm_per_px / 2  # noqa: E731 - a width in cm -> a radius in pixels
    shirt = [
        P["right_collar"],
        P["right_shoulder_out"],
        P["right_waist"],
        P["right_hem"],
        P["left_hem"],
        P["left_waist"],
        P["left_shoulder_out"],
        P["left_collar"],
        P["neckline"],
    ]
    pants = [
        P["right_band"],
        P["right_hip_out"],
        P["right_thigh_top"],
        P["crotch"],
        P["left_thigh_top"],
        P["left_hip_out"],
        P["left_band"],
    ]
    parts = [
        (
            (3, 0),
            "torso",
            [("polygon", shirt, b["shirt"], "torso"), ("polygon", pants, b["trousers"], "torso")],
        ),
        (
            (2, 0),
            "neck",
            [("chain", [P["neck_base"], P["head"]], [px(b["w_neck"])] * 2, b["skin"], ["neck"])],
        ),
    ]
    # Head: hair-coloured ellipse, foreshortened when lifted; the face (skin, eyes, mouth) looks at the camera.
    axis = P["head_top"] - P["head"]
    along_max, across = px(b["head_len"]), px(b["head_w"])
    along = np.hypot(
        np.hypot(*axis), across * np.sqrt(max(0.0, 1 - (np.hypot(*axis) / along_max) ** 2))
    )
    angle = np.degrees(np.arctan2(axis[1], axis[0]))
    face_across = max(np.hypot(*(P["face_side"] - P["face"])), 0.3)
    unit, side = axis / max(np.hypot(*axis), 1e-6), (P["face_side"] - P["face"]) / face_across
    eye, dark = (0.12 * across, 0.08 * across), (40.0, 35.0, 45.0)
    parts.append(
        (
            (4, 0),
            "head",
            [
                ("ellipse", P["head"], (along, across), angle, b["hair"], "head"),
                ("ellipse", P["face"], (0.78 * along, face_across), angle, b["skin"], "head"),
                (
                    "detail",
                    P["face"] + 0.25 * along * unit + 0.45 * face_across * side,
                    eye,
                    angle,
                    dark,
                    None,
                ),
                (
                    "detail",
                    P["face"] + 0.25 * along * unit - 0.45 * face_across * side,
                    eye,
                    angle,
                    dark,
                    None,
                ),
                (
                    "detail",
                    P["face"] - 0.35 * along * unit,
                    (0.08 * across, 0.3 * face_across),
                    angle,
                    (70.0, 60, 150),
                    None,
                ),
            ],
        )
    )
    # Limbs lying beside the body go under the torso (which hides their roots); limbs over the trunk or the
    # head go on top of it; among themselves, the one lifted higher towards the camera is drawn later.
    polygons = [np.float32(shirt), np.float32(pants)]
    for sd, _ in SIDES:
        g = lambda n: P[f"{sd}_{n}"]  # noqa: E731
        hand_end = g("wrist") + 0.85 * (g("hand_tip") - g("wrist"))
        arm = [g("shoulder"), g("elbow"), g("wrist"), hand_end]
        arm_r = [
            px(b["w_upper_arm"]),
            px(b["w_forearm"]),
            0.7 * px(b["w_forearm"]),
            0.45 * px(b["w_hand"]) * 2,
        ]
        sleeve, sleeve_r = _cut(arm, [1.15 * r for r in arm_r], b["sleeve"])
        leg = [g("hip"), g("knee"), g("ankle")]
        leg_r = [px(b["w_thigh"]), px(b["w_shank"]), 0.65 * px(b["w_shank"])]
        pant, pant_r = _cut(leg, [1.1 * r for r in leg_r], b["trouser_end"])
        limbs = [
            (
                "arm",
                arm,
                [
                    (
                        "chain",
                        arm,
                        arm_r,
                        b["skin"],
                        [f"{sd}_upper_arm", f"{sd}_forearm", f"{sd}_hand"],
                    ),
                    ("chain", sleeve, sleeve_r, b["shirt"], [f"{sd}_upper_arm", f"{sd}_forearm"]),
                ],
                ("elbow", "wrist", "hand_tip"),
            ),
            (
                "leg",
                leg,
                [
                    ("chain", leg, leg_r, b["skin"], [f"{sd}_thigh", f"{sd}_shank"]),
                    ("chain", pant, pant_r, b["trousers"], [f"{sd}_thigh", f"{sd}_shank"]),
                    (
                        "chain",
                        [g("heel"), g("toe")],
                        [px(b["w_foot"]), 0.9 * px(b["w_foot"])],
                        b["socks"],
                        [f"{sd}_foot"],
                    ),
                ],
                ("knee", "ankle", "toe"),
            ),
        ]
        for name, pts, shapes, distal in limbs:
            probes = pts[1:] + [(p + q) / 2 for p, q in zip(pts, pts[1:])]
            over = any(_inside(p, polygons, P["head"], across) for p in probes)
            parts.append(
                (
                    (5 if over else 1, np.mean([Z[f"{sd}_{d}"] for d in distal])),
                    f"{sd}_{name}",
                    shapes,
                )
            )
    parts += [part(sim["times"][i]) for part in extras]
    return sorted(parts, key=lambda part: part[0])


def draw_parts(canvas: Canvas, parts) -> list:
    """Draw parts in order; return the part names in the order they were first drawn (for the id buffer)."""
    order = []
    for _, _, shapes in parts:
        for kind, *args, colour, names in shapes:
            names = [names] if isinstance(names, str) else names
            order += [n for n in names or [] if n not in order]
            if canvas.ids and kind == "chain":  # one id per segment
                for k, name in enumerate(names):
                    canvas.chain(args[0][k : k + 2], args[1][k : k + 2], (PART_ID[name],) * 3)
                continue
            colour = (PART_ID[names[0]],) * 3 if canvas.ids and names else colour
            if kind == "chain":
                canvas.chain(*args, colour)
            elif kind == "polygon":
                canvas.polygon(args[0], colour)
            elif kind == "ellipse":
                canvas.ellipse(*args, colour)
            elif not canvas.ids:  # facial details: colour only
                canvas.ellipse(*args, colour, shaded=False)
    return order


def _background(rng, cfg, scale) -> np.ndarray:
    """Foam-tile mat (seams + noise texture) seen from above, or wall and floor seen from the front."""
    w, h = cfg.width_px * scale, cfg.height_px * scale
    yy, xx = np.mgrid[0:h, 0:w] / scale * cfg.cm_per_px  # cm
    if cfg.view == "supine_top":
        tile, off = rng.uniform(45, 65), rng.uniform(0, 60, 2)
        pick = rng.choice(len(MAT), 2, replace=rng.random() < 0.3)  # two-coloured or plain tiles
        cols = [0.75 * np.array(_bgr(MAT[i])) + 0.25 * 150 for i in pick]
        ix, iy = ((xx + off[0]) // tile).astype(int), ((yy + off[1]) // tile).astype(int)
        jitter = rng.uniform(0.93, 1.07, (ix.max() + 2, iy.max() + 2))
        img = (
            np.where(((ix + iy) % 2 == 0)[..., None], cols[0], cols[1]) * jitter[ix, iy][..., None]
        )
        seam = np.minimum((xx + off[0]) % tile, (yy + off[1]) % tile) < 0.9
        img[seam] *= 0.55
    else:
        floor = cfg.floor_frac * h / scale * cfg.cm_per_px
        wall, wood = (
            _hsv(rng, (0.05, 0.25), (0.7, 0.95)),
            np.array(_bgr((150, 110, 70), rng.uniform(0.7, 1.2))),
        )
        plank = rng.uniform(0.85, 1.15, 64)[
            ((xx + rng.uniform(0, 80)) // 80 + (yy // 15) * 7).astype(int) % 64
        ]
        img = np.where(
            (yy < floor)[..., None],
            np.array(wall) * (0.9 + 0.1 * yy / yy.max())[..., None],
            wood * plank[..., None],
        )
        img[np.abs(yy - floor) < 1.5] *= 0.5  # skirting board
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.5 * scale)
    grain *= (0.07 if cfg.view == "supine_top" else 0.03) / max(
        grain.std(), 1e-6
    )  # foam texture / plaster
    img = img * (1 + grain)[..., None] + rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _extras(rng, sim, cfg) -> list:
    """Distractors as functions of time -> part: a toy on the mat, a caregiver's hand and forearm."""
    extras, w, h, duration = [], cfg.width_px, cfg.height_px, cfg.frames_per_video / cfg.fps
    px = 1 / cfg.cm_per_px
    if rng.random() < cfg.toy_prob:
        start, vel = rng.uniform([0.1 * w, 0.1 * h], [0.9 * w, 0.9 * h]), rng.normal(0, 3, 2) * px
        size, colour = rng.uniform(4, 8) * px, _hsv(rng, (0.6, 1.0), (0.7, 1.0))
        extras.append(
            lambda t: (
                (0, 0),
                "toy",
                [("ellipse", start + vel * t, (size, size), 0.0, colour, "toy")],
            )
        )
    if rng.random() < cfg.caregiver_prob:
        t0, stay = rng.uniform(-0.5, max(duration - 1.5, 0)), rng.uniform(1.0, 3.0)
        target = (
            sim["img"][BODYPARTS[rng.integers(len(BODYPARTS))]][sim["centre"]].mean(0)
            + rng.normal(0, 6, 2) * px
        )
        border = rng.integers(4)  # enters from the left, right, top or bottom edge
        entry = [
            np.array([-30 * px, target[1]]),
            np.array([w + 30 * px, target[1]]),
            np.array([target[0], -30 * px]),
            np.array([target[0], h + 30 * px]),
        ][border] + rng.normal(0, 10, 2) * px
        sleeve, skin = _hsv(rng, (0.1, 0.6), (0.3, 0.9)), _bgr(SKIN[rng.integers(len(SKIN))])

        def caregiver(t):
            reach = _min_jerk(np.clip(min(t - t0, t0 + stay - t) / 0.6, 0, 1))
            hand = entry + reach * (target - entry)
            d = (target - entry) / np.hypot(*(target - entry))
            arm = [hand - 80 * px * d, hand - 2 * px * d, hand + 10 * px * d]
            return (
                (6, 0),
                "caregiver",
                [
                    ("chain", arm, [5 * px, 3.5 * px, 4.5 * px], skin, ["caregiver"] * 2),
                    ("chain", arm[:2], [5.5 * px, 5 * px], sleeve, ["caregiver"]),
                ],
            )

        extras.append(caregiver)
    return extras


def render_video(cfg, p: int, s: int, path: Path, b: dict) -> tuple[pd.DataFrame, dict]:
    """Render one video to `path`; return its ground truth (long table) and per-video facts."""
    cv2.setNumThreads(
        1
    )  # one OpenCV thread per process: parallelism comes from the worker processes
    cfg = settings(cfg)
    sim = simulate_video(cfg, p, s, b)
    rng = _rng(cfg, p, s, 1)
    scale, w, h, n_f = (
        int(cfg.render_scale),
        int(cfg.width_px),
        int(cfg.height_px),
        int(cfg.frames_per_video),
    )
    background, extras = _background(rng, cfg, scale), _extras(rng, sim, cfg)
    times = sim["times"][sim["centre"]]
    gain = rng.uniform(0.85, 1.1) * (
        1
        + rng.uniform(0, cfg.light_gain)
        * np.sin(2 * np.pi * times / rng.uniform(4, 12) + rng.uniform(0, 2 * np.pi))
    )
    grad_dir = rng.uniform(0, 2 * np.pi) + times * rng.normal(0, 0.1)
    grad_amp = rng.uniform(0, cfg.light_gradient)
    yy, xx = (np.mgrid[0:h, 0:w] - np.array([h / 2, w / 2])[:, None, None]) / max(w, h)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(cfg.fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    occluded = np.zeros((n_f, len(BODYPARTS)), np.uint8)
    for f in range(n_f):
        acc = np.zeros((h * scale, w * scale, 3), np.float32)
        for i in sim["sub"][f]:
            canvas = Canvas(background.copy(), scale)
            draw_parts(canvas, scene_parts(sim, i, cfg, extras))
            acc += canvas.img
        frame = cv2.resize(acc / len(sim["sub"][f]), (w, h), interpolation=cv2.INTER_AREA)
        c = sim["centre"][f]
        if cfg.blur_faces:  # anonymise as in the paper: Gaussian blur of the face region
            r = int(np.ceil(0.45 * b["head_w"] / cfg.cm_per_px)) + 1
            fx, fy = np.round(sim["img"]["face"][c]).astype(int)
            x0, y0, x1, y1 = max(fx - r, 0), max(fy - r, 0), min(fx + r + 1, w), min(fy + r + 1, h)
            if x1 > x0 and y1 > y0:
                roi = frame[y0:y1, x0:x1]
                mask = np.zeros(roi.shape[:2], np.float32)
                cv2.circle(mask, (fx - x0, fy - y0), r, 1.0, -1)
                mask = cv2.GaussianBlur(mask, (0, 0), r / 4)[..., None]
                roi[:] = mask * cv2.GaussianBlur(roi, (0, 0), r / 3) + (1 - mask) * roi
        light = gain[f] * (1 + grad_amp * (np.cos(grad_dir[f]) * xx + np.sin(grad_dir[f]) * yy))
        frame = frame * light[..., None] + cfg.noise_std * rng.standard_normal(
            frame.shape, np.float32
        )
        writer.write(np.clip(np.round(frame), 0, 255).astype(np.uint8))
        # Occlusion: a keypoint is hidden when the part on top at its pixel is foreign and drawn after its own.
        ids = Canvas(np.zeros((h, w), np.uint8), 1, ids=True)
        rank = {
            PART_ID[name]: k
            for k, name in enumerate(draw_parts(ids, scene_parts(sim, c, cfg, extras)))
        }
        for j, bp in enumerate(BODYPARTS):
            x, y = np.clip(np.round(sim["img"][bp][c]).astype(int), 0, [w - 1, h - 1])
            top = int(ids.img[y, x])
            own = [rank[PART_ID[o]] for o in OWNERS[bp] if PART_ID[o] in rank]
            occluded[f, j] = (
                top != 0
                and top in rank
                and PARTS[top - 1] not in OWNERS[bp]
                and rank[top] > max(own)
            )
    writer.release()
    xy = np.stack([sim["img"][bp][sim["centre"]] for bp in BODYPARTS], 1)
    gt = pd.DataFrame(
        {
            "video": path.stem,
            "frame": np.repeat(np.arange(n_f), len(BODYPARTS)),
            "bodypart": np.tile(BODYPARTS, n_f),
            "x": xy[..., 0].ravel(),
            "y": xy[..., 1].ravel(),
            "occluded": occluded.ravel(),
        }
    )
    return gt, {
        "body_orientation_deg": round(sim["orientation_deg"] % 360, 1),
        "caregiver": int(any(e.__name__ == "caregiver" for e in extras)),
    }


# ------------------------------------------------------------------------------------------- cohorts
def _video_job(args):
    cfg, p, s, path = args
    cfg = settings(cfg)
    return render_video(cfg, p, s, Path(path), make_participant(cfg, p))


def generate_cohort(cohort_cfg, out_dir, workers: int = 1) -> Path:
    """Write one cohort to <out_dir>/<name>/ atomically; skip when it exists with the same config."""
    config = dict(settings(cohort_cfg))
    cfg = settings(config)
    target = Path(out_dir) / cfg.name
    if (target / "dataset.yaml").exists():
        if yaml.safe_load((target / "dataset.yaml").read_text()).get("generator_config") == config:
            log.info("cohort %s is up to date in %s, not regenerated", cfg.name, target)
            return target
        log.info("cohort %s in %s was made with another config: regenerating", cfg.name, target)
    with atomic_directory(target, key="synthetic.output_dir") as tmp:
        _write_cohort(cfg, config, tmp, workers)
    log.info("wrote cohort %s to %s", cfg.name, target)
    return target


def _write_cohort(cfg, config: dict, tmp: Path, workers: int) -> None:
    """Render the videos and write the tables of one cohort into the (staging) folder ``tmp``."""
    (tmp / "videos").mkdir()
    digits = max(2, len(str(cfg.n_participants)))
    jobs, rows = [], []
    for p in range(cfg.n_participants):
        for s in range(cfg.videos_per_participant):
            jobs.append((config, p, s, str(tmp / "videos" / f"P{p + 1:0{digits}d}_S{s + 1}.mp4")))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_video_job, jobs))
    else:
        results = [_video_job(job) for job in jobs]
    for (_, p, s, path), (_, facts) in zip(jobs, results):
        b = make_participant(cfg, p)
        rows.append(
            {
                "participant": f"P{p + 1:0{digits}d}",
                "video": Path(path).stem,
                "session": f"S{s + 1}",
                "height_cm": round(b["height_cm"], 1),
                "dystonia_severity": round(b["dystonia_severity"], 3),
                "choreoathetosis_severity": round(b["choreoathetosis_severity"], 3),
                **facts,
            }
        )
    pd.concat([gt for gt, _ in results]).to_csv(
        tmp / "ground_truth.csv", index=False, float_format="%.3f"
    )
    pd.DataFrame(rows).to_csv(tmp / "participants.csv", index=False)
    meta = {
        "name": cfg.name,
        "bodyparts": BODYPARTS,
        "skeleton": SKELETON,
        "fps": cfg.fps,
        "width_px": cfg.width_px,
        "height_px": cfg.height_px,
        "frames_per_video": cfg.frames_per_video,
        "cm_per_px": cfg.cm_per_px,
        "seed": cfg.seed,
        "generator_config": config,
    }
    (tmp / "dataset.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


def generate_all(synthetic_cfg) -> dict[str, Path]:
    """Write both cohorts (clinical, healthy_adults) under synthetic_cfg.output_dir."""
    out = Path(synthetic_cfg.output_dir)
    workers = int(synthetic_cfg.get("workers", 1)) or os.cpu_count()
    return {
        key: generate_cohort(synthetic_cfg[key], out, workers)
        for key in ("clinical", "healthy_adults")
    }
