"""Rendering one video: background, distractors, motion blur, face blur, lighting and noise, and the
ground truth with occlusion flags from the part-id buffer."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from src.synthetic.body import BODYPARTS
from src.synthetic.canvas import Canvas
from src.synthetic.colours import MAT, SKIN, bgr, hsv
from src.synthetic.motion import min_jerk, simulate_video
from src.synthetic.scene import OWNERS, PART_ID, PARTS, draw_parts, scene_parts
from src.synthetic.settings import settings, stream


def _background(rng, cfg, scale) -> np.ndarray:
    """Foam-tile mat (seams + noise texture) seen from above, or wall and floor seen from the
    front."""
    w, h = cfg.width_px * scale, cfg.height_px * scale
    yy, xx = np.mgrid[0:h, 0:w] / scale * cfg.cm_per_px  # cm
    if cfg.view == "supine_top":
        tile, off = rng.uniform(45, 65), rng.uniform(0, 60, 2)
        pick = rng.choice(len(MAT), 2, replace=rng.random() < 0.3)  # two-coloured or plain tiles
        cols = [0.75 * np.array(bgr(MAT[i])) + 0.25 * 150 for i in pick]
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
            hsv(rng, (0.05, 0.25), (0.7, 0.95)),
            np.array(bgr((150, 110, 70), rng.uniform(0.7, 1.2))),
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
    # Foam texture (mat) or plaster (wall).
    grain *= (0.07 if cfg.view == "supine_top" else 0.03) / max(grain.std(), 1e-6)
    img = img * (1 + grain)[..., None] + rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _extras(rng, sim, cfg) -> list:
    """Distractors as functions of time -> part: a toy on the mat, a caregiver's hand and
    forearm."""
    extras, w, h, duration = [], cfg.width_px, cfg.height_px, cfg.frames_per_video / cfg.fps
    px = 1 / cfg.cm_per_px
    if rng.random() < cfg.toy_prob:
        start, vel = rng.uniform([0.1 * w, 0.1 * h], [0.9 * w, 0.9 * h]), rng.normal(0, 3, 2) * px
        size, colour = rng.uniform(4, 8) * px, hsv(rng, (0.6, 1.0), (0.7, 1.0))
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
        sleeve, skin = hsv(rng, (0.1, 0.6), (0.3, 0.9)), bgr(SKIN[rng.integers(len(SKIN))])

        def caregiver(t):
            reach = min_jerk(np.clip(min(t - t0, t0 + stay - t) / 0.6, 0, 1))
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


def _lighting(rng, cfg, times: np.ndarray):
    """Draw the video's lighting: a flickering gain and a slowly turning gradient. Returns
    frame index -> (h, w) light factor."""
    w, h = int(cfg.width_px), int(cfg.height_px)
    gain = rng.uniform(0.85, 1.1) * (
        1
        + rng.uniform(0, cfg.light_gain)
        * np.sin(2 * np.pi * times / rng.uniform(4, 12) + rng.uniform(0, 2 * np.pi))
    )
    grad_dir = rng.uniform(0, 2 * np.pi) + times * rng.normal(0, 0.1)
    grad_amp = rng.uniform(0, cfg.light_gradient)
    yy, xx = (np.mgrid[0:h, 0:w] - np.array([h / 2, w / 2])[:, None, None]) / max(w, h)

    def light(f: int) -> np.ndarray:
        return gain[f] * (1 + grad_amp * (np.cos(grad_dir[f]) * xx + np.sin(grad_dir[f]) * yy))

    return light


def _motion_blurred_frame(sim, f: int, cfg, extras, background: np.ndarray) -> np.ndarray:
    """Frame f at output size: the mean of its sub-frame renders, downsampled from the render scale."""
    scale, w, h = int(cfg.render_scale), int(cfg.width_px), int(cfg.height_px)
    acc = np.zeros((h * scale, w * scale, 3), np.float32)
    for i in sim["sub"][f]:
        canvas = Canvas(background.copy(), scale)
        draw_parts(canvas, scene_parts(sim, i, cfg, extras))
        acc += canvas.img
    return cv2.resize(acc / len(sim["sub"][f]), (w, h), interpolation=cv2.INTER_AREA)


def _blur_face(frame: np.ndarray, face: np.ndarray, b: dict, cfg) -> None:
    """Anonymise as in the paper: Gaussian blur of the face region, in place."""
    w, h = int(cfg.width_px), int(cfg.height_px)
    r = int(np.ceil(0.45 * b["head_w"] / cfg.cm_per_px)) + 1
    fx, fy = np.round(face).astype(int)
    x0, y0, x1, y1 = max(fx - r, 0), max(fy - r, 0), min(fx + r + 1, w), min(fy + r + 1, h)
    if x1 > x0 and y1 > y0:
        roi = frame[y0:y1, x0:x1]
        mask = np.zeros(roi.shape[:2], np.float32)
        cv2.circle(mask, (fx - x0, fy - y0), r, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), r / 4)[..., None]
        roi[:] = mask * cv2.GaussianBlur(roi, (0, 0), r / 3) + (1 - mask) * roi


def _occluded(sim, c: int, cfg, extras) -> list[bool]:
    """Per bodypart at time index c: hidden, i.e. the part on top at its pixel is foreign and drawn
    after its own."""
    w, h = int(cfg.width_px), int(cfg.height_px)
    ids = Canvas(np.zeros((h, w), np.uint8), 1, ids=True)
    rank = {
        PART_ID[name]: k for k, name in enumerate(draw_parts(ids, scene_parts(sim, c, cfg, extras)))
    }
    flags = []
    for bp in BODYPARTS:
        x, y = np.clip(np.round(sim["img"][bp][c]).astype(int), 0, [w - 1, h - 1])
        top = int(ids.img[y, x])
        own = [rank[PART_ID[o]] for o in OWNERS[bp] if PART_ID[o] in rank]
        flags.append(
            top != 0 and top in rank and PARTS[top - 1] not in OWNERS[bp] and rank[top] > max(own)
        )
    return flags


def _ground_truth(sim, video: str, occluded: np.ndarray) -> pd.DataFrame:
    """The long ground-truth table: one row per frame and bodypart."""
    n_f = len(occluded)
    xy = np.stack([sim["img"][bp][sim["centre"]] for bp in BODYPARTS], 1)
    return pd.DataFrame(
        {
            "video": video,
            "frame": np.repeat(np.arange(n_f), len(BODYPARTS)),
            "bodypart": np.tile(BODYPARTS, n_f),
            "x": xy[..., 0].ravel(),
            "y": xy[..., 1].ravel(),
            "occluded": occluded.ravel(),
        }
    )


def render_video(cfg, p: int, s: int, path: Path, b: dict) -> tuple[pd.DataFrame, dict]:
    """Render one video to `path`; return its ground truth (long table) and per-video facts."""
    # One OpenCV thread per process: parallelism comes from the worker processes.
    cv2.setNumThreads(1)
    cfg = settings(cfg)
    sim = simulate_video(cfg, p, s, b)
    rng = stream(cfg, p, s, 1)
    w, h, n_f = int(cfg.width_px), int(cfg.height_px), int(cfg.frames_per_video)
    background, extras = _background(rng, cfg, int(cfg.render_scale)), _extras(rng, sim, cfg)
    light = _lighting(rng, cfg, sim["times"][sim["centre"]])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(cfg.fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    occluded = np.zeros((n_f, len(BODYPARTS)), np.uint8)
    for f in range(n_f):
        frame = _motion_blurred_frame(sim, f, cfg, extras, background)
        c = sim["centre"][f]
        if cfg.blur_faces:
            _blur_face(frame, sim["img"]["face"][c], b, cfg)
        frame = frame * light(f)[..., None] + cfg.noise_std * rng.standard_normal(
            frame.shape, np.float32
        )
        writer.write(np.clip(np.round(frame), 0, 255).astype(np.uint8))
        occluded[f] = _occluded(sim, c, cfg, extras)
    writer.release()
    return _ground_truth(sim, path.stem, occluded), {
        "body_orientation_deg": round(sim["orientation_deg"] % 360, 1),
        "caregiver": int(any(e.__name__ == "caregiver" for e in extras)),
    }
