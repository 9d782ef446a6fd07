"""The body model: keypoints, skeleton, joints with their limits, each participant's proportions,
colours and movement traits, and forward kinematics (joint parameters -> 3-D points)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.synthetic.colours import HAIR, SKIN, bgr, hsv
from src.synthetic.settings import settings, stream

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


Z_AXIS = np.array([0.0, 0.0, 1.0])  # towards the camera


def make_participant(cfg, p: int) -> dict:
    """Body proportions (cm), clothing and movement traits of participant index p (0-based)."""
    cfg = settings(cfg)
    rng = stream(cfg, p)
    h = rng.uniform(*cfg.height_cm)
    growth = np.clip((h - 100) / 75, 0, 1)  # children have larger heads and shorter legs

    def j():  # individual variation of one proportion
        return 1 + rng.normal(0, 0.04)

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
    b["skin"] = bgr(SKIN[rng.integers(len(SKIN))], rng.uniform(0.95, 1.05))
    b["hair"] = bgr(HAIR[rng.integers(len(HAIR))])
    b["shirt"] = hsv(rng, (0.3, 0.9), (0.45, 0.95))
    b["trousers"] = hsv(rng, (0.2, 0.7), (0.2, 0.6)) if rng.random() < 0.6 else bgr((40, 50, 90))
    b["socks"] = hsv(rng, (0.0, 0.5), (0.5, 1.0))
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
    """Unit 3-D vector: in-plane angle a from `caudal` towards `lateral`, then elevation e towards
    the camera."""
    return (
        np.cos(e)[:, None] * (np.cos(a)[:, None] * caudal + np.sin(a)[:, None] * lateral)
        + np.sin(e)[:, None] * Z_AXIS
    )


def _keep_above(e, base, length, floor):
    """Smallest elevation that keeps the distal end of a segment above the mat (z >= floor)."""
    return np.maximum(e, np.arcsin(np.clip((floor - base[:, 2]) / length, -1, 1)))


@dataclass(frozen=True)
class _Trunk:
    """The trunk at every time step, each (T, 3) in cm: its axes and where the limbs and the head attach."""

    up_plane: np.ndarray  # towards the head, within the mat's plane (trunk bend only)
    lat: np.ndarray  # across the trunk, within the mat's plane
    up: np.ndarray  # towards the head, with the trunk's flexion towards the camera
    sh_axis: np.ndarray  # along the shoulders (trunk twist)
    hip_axis: np.ndarray  # along the hips (pelvis twist)
    pelvis: np.ndarray
    neck: np.ndarray


def _trunk(a: dict, b: dict, n_t: int) -> _Trunk:
    """The trunk's axes from the joint angles ``a`` (radians) and proportions ``b``."""
    bend, flex, zero = a["trunk_bend"], a["trunk_flex"], np.zeros(n_t)
    up_plane = np.stack([np.sin(bend), np.cos(bend), zero], 1)
    lat = np.stack([np.cos(bend), -np.sin(bend), zero], 1)
    up = np.cos(flex)[:, None] * up_plane + np.sin(flex)[:, None] * Z_AXIS
    return _Trunk(
        up_plane=up_plane,
        lat=lat,
        up=up,
        sh_axis=np.cos(a["trunk_twist"])[:, None] * lat
        + np.sin(a["trunk_twist"])[:, None] * Z_AXIS,
        hip_axis=np.stack([np.cos(a["pelvis_twist"]), zero, np.sin(a["pelvis_twist"])], 1),
        pelvis=np.zeros((n_t, 3)),
        neck=b["trunk"] * up,
    )


def _arm(g, b: dict, t: _Trunk, s: int, supine: bool) -> tuple:
    """One arm: shoulder, elbow, wrist and hand tip; ``g`` gives this side's joint angles, ``s`` its
    sign."""
    h = b["height_cm"]
    sh = t.neck - 0.025 * h * t.up + s * b["half_shoulder"] * t.sh_axis
    d = _direction(-t.up_plane, s * t.lat, g("sh_abd"), g("sh_elev"))
    elbow = sh + b["upper_arm"] * d
    fl, plane = g("elbow"), g("elbow_plane")
    e_fore = np.minimum(g("sh_elev") + fl * (1 - np.abs(plane)), np.radians(170))
    if supine:
        e_fore = _keep_above(e_fore, elbow, b["forearm"], np.minimum(0, sh[:, 2]))
    a_fore = g("sh_abd") - fl * plane
    wrist = elbow + b["forearm"] * _direction(-t.up_plane, s * t.lat, a_fore, e_fore)
    hand_tip = wrist + b["hand"] * _direction(-t.up_plane, s * t.lat, a_fore, e_fore + g("wrist"))
    return sh, elbow, wrist, hand_tip


def _leg(g, b: dict, t: _Trunk, s: int, supine: bool) -> tuple:
    """One leg: hip, knee, ankle and the foot's direction (toes point to the camera)."""
    caudal = np.array([0.0, -1.0, 0.0])
    hip = t.pelvis + s * b["half_hip"] * t.hip_axis
    knee = hip + b["thigh"] * _direction(caudal, [s, 0, 0], g("hip_abd"), g("hip_flex"))
    a_shank, e_shank = (
        g("hip_abd") + g("hip_rot") * np.sin(g("knee")),
        g("hip_flex") - g("knee"),
    )
    if supine:
        e_shank = _keep_above(e_shank, knee, b["shank"], np.minimum(0, hip[:, 2]))
    ankle = knee + b["shank"] * _direction(caudal, [s, 0, 0], a_shank, e_shank)
    foot = _direction(caudal, [s, 0, 0], a_shank, e_shank + np.radians(90) - g("ankle"))
    return hip, knee, ankle, foot


def _side_points(a: dict, b: dict, t: _Trunk, side: str, s: int, supine: bool) -> dict:
    """One side's joints and the outline points of its clothes."""

    def g(n):  # the joint parameter `n` of this side
        return a[f"{side[0]}_{n}"]

    h = b["height_cm"]
    sh, elbow, wrist, hand_tip = _arm(g, b, t, s, supine)
    hip, knee, ankle, foot = _leg(g, b, t, s, supine)
    waist = 0.55 * hip + 0.45 * sh + s * 0.25 * b["w_waist"] * t.lat
    hip_out = hip + s * 0.045 * h * t.hip_axis
    return {
        f"{side}_shoulder": sh,
        f"{side}_elbow": elbow,
        f"{side}_wrist": wrist,
        f"{side}_hand_tip": hand_tip,
        f"{side}_hip": hip,
        f"{side}_knee": knee,
        f"{side}_ankle": ankle,
        f"{side}_heel": ankle - 0.2 * b["foot"] * foot,
        f"{side}_toe": ankle + 0.8 * b["foot"] * foot,
        f"{side}_collar": t.neck - 0.005 * h * t.up + s * 0.035 * h * t.lat,
        f"{side}_shoulder_out": sh + s * 0.03 * h * t.sh_axis + 0.028 * h * t.up,
        f"{side}_waist": waist,
        f"{side}_hem": 0.8 * hip_out + 0.2 * waist,
        f"{side}_band": 0.45 * hip_out + 0.55 * waist,
        f"{side}_hip_out": hip_out,
        f"{side}_thigh_top": hip_out - [0, 0.03 * h, 0],
    }


def _head_points(a: dict, b: dict, t: _Trunk) -> dict:
    """The head's centre and top, the face and the points that set their widths."""
    head_dir = _direction(
        -t.up_plane, t.lat, np.pi - a["head_lat"], a["trunk_flex"] + a["head_flex"]
    )
    head_side = np.cos(a["head_lat"])[:, None] * t.lat - np.sin(a["head_lat"])[:, None] * t.up_plane
    head = t.neck + (b["neck_len"] + 0.45 * b["head_len"]) * head_dir
    pts = {
        "head": head,
        "head_top": head + 0.5 * b["head_len"] * head_dir,
        "face": head
        + np.sin(a["head_rot"])[:, None] * 0.25 * b["head_w"] * head_side
        - 0.1 * b["head_len"] * head_dir
        + 0.5 * b["head_w"] * Z_AXIS,
    }
    pts["head_side"] = head + 0.5 * b["head_w"] * head_side
    pts["face_side"] = pts["face"] + 0.4 * b["head_w"] * np.cos(a["head_rot"])[:, None] * head_side
    return pts


def forward_kinematics(q: np.ndarray, b: dict, supine: bool) -> dict:
    """Joint parameters (T, n_joints) -> named 3-D points (T, 3) in cm; origin mid-hips, y to the
    head."""
    a = {
        n: q[:, i] if n.endswith("plane") else np.radians(q[:, i])
        for i, n in enumerate(JOINT_NAMES)
    }
    h = b["height_cm"]
    t = _trunk(a, b, len(q))
    pts = {
        "pelvis": t.pelvis,
        "neck": t.neck,
        "neck_base": t.neck - 0.03 * h * t.up,
        "neckline": t.neck - 0.045 * h * t.up,
        "crotch": t.pelvis - [0, 0.05 * h, 0],
    }
    for side, s in SIDES:
        pts.update(_side_points(a, b, t, side, s, supine))
    pts.update(_head_points(a, b, t))
    return pts
