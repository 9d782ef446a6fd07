"""The scene at one instant: a body (and distractors) as drawable parts in depth order, and drawing
them on a Canvas in colour or into the part-id buffer."""

from __future__ import annotations

import cv2
import numpy as np

from src.synthetic.body import SIDES
from src.synthetic.canvas import Canvas

PARTS = ["torso", "neck", "head", "toy", "caregiver"] + [
    f"{s}_{p}" for s, _ in SIDES for p in ("upper_arm", "forearm", "hand", "thigh", "shank", "foot")
]


PART_ID = {p: i + 1 for i, p in enumerate(PARTS)}  # 0 = background in the id buffer


# The parts each keypoint belongs to.
OWNERS = {
    "head": {"head", "neck"},
    "neck": {"neck", "torso", "head"},
}


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


def _cut(points, radii, units):
    """The first `units` segments (fractional) of a polyline: where a sleeve or trouser leg ends."""
    n = int(min(units, len(points) - 1 - 1e-9))
    f = units - n
    return (
        points[: n + 1] + [points[n] + f * (points[n + 1] - points[n])],
        radii[: n + 1] + [radii[n] + f * (radii[n + 1] - radii[n])],
    )


def _inside(point, polygons, head, head_r) -> bool:
    """Whether a point lies within head_r of the head or inside one of the polygons."""
    return np.hypot(*(point - head)) < head_r or any(
        cv2.pointPolygonTest(poly, (float(point[0]), float(point[1])), False) >= 0
        for poly in polygons
    )


def _trunk_parts(P, b, px) -> tuple[list, list, list]:
    """The torso (shirt and trousers polygons) and the neck; also the two polygons, for the limbs' depth
    order."""
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
    return parts, shirt, pants


def _head_part(P, b, px) -> tuple[tuple, float]:
    """The head: a hair-coloured ellipse, foreshortened when lifted; the face (skin, eyes, mouth) looks at
    the camera. Also the head's half-width in pixels (the limbs' depth order tests against it)."""
    axis = P["head_top"] - P["head"]
    along_max, across = px(b["head_len"]), px(b["head_w"])
    along = np.hypot(
        np.hypot(*axis), across * np.sqrt(max(0.0, 1 - (np.hypot(*axis) / along_max) ** 2))
    )
    angle = np.degrees(np.arctan2(axis[1], axis[0]))
    face_across = max(np.hypot(*(P["face_side"] - P["face"])), 0.3)
    unit, side = axis / max(np.hypot(*axis), 1e-6), (P["face_side"] - P["face"]) / face_across
    eye, dark = (0.12 * across, 0.08 * across), (40.0, 35.0, 45.0)
    part = (
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
    return part, across


def _limbs(P, b, px, sd) -> list:
    """One side's arm and leg: (name, polyline, shapes, distal keypoints that set its depth)."""

    def g(n):  # the image point `n` of this side
        return P[f"{sd}_{n}"]

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
    return [
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


def scene_parts(sim, i: int, cfg, extras) -> list:
    """Drawable parts at time index i, far to near: (depth key, name, shapes). A shape is (kind,
    geometry..., colour, part name(s) for the id buffer); a chain is a tapered polyline drawn as one
    smooth limb."""
    b, P, Z = (
        sim["body"],
        {n: v[i] for n, v in sim["img"].items()},
        {n: v[i] for n, v in sim["z"].items()},
    )

    def px(cm):  # a width in cm -> a radius in pixels
        return cm / cfg.cm_per_px / 2

    parts, shirt, pants = _trunk_parts(P, b, px)
    head, across = _head_part(P, b, px)
    parts.append(head)
    # Limbs lying beside the body go under the torso (which hides their roots); limbs over the trunk
    # or the head go on top of it; among themselves, the one lifted higher towards the camera is
    # drawn later.
    polygons = [np.float32(shirt), np.float32(pants)]
    for sd, _ in SIDES:
        for name, pts, shapes, distal in _limbs(P, b, px, sd):
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
    """Draw parts in order; return the part names in the order they were first drawn (for the id
    buffer)."""
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
