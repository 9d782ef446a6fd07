"""Colour palettes (RGB) of skin, hair and mat tiles; random clothing colours in OpenCV's BGR."""

from __future__ import annotations

import colorsys

import numpy as np

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


def bgr(rgb, gain: float = 1.0) -> tuple:
    """RGB in 0..255 -> OpenCV's BGR order, as a hashable tuple of floats."""
    return tuple(min(float(c) * gain, 255.0) for c in reversed(rgb))


def hsv(rng, sat, val) -> tuple:
    """A random colour (BGR), saturation and value drawn from the (low, high) ranges sat, val."""
    return bgr(
        255 * np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val)))
    )
