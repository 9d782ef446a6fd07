"""Drawing primitives: shaded tapered chains, polygons and ellipses, or flat part ids (id mode)."""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np


@functools.lru_cache(maxsize=4096)
def _shades(colour: tuple) -> list:
    """The colour at each brightness of Canvas.BRIGHTNESS (cached: few colours, many shapes)."""
    return [tuple(min(c * m, 255.0) for c in colour) for m in Canvas.BRIGHTNESS]


class Canvas:
    """Draws shaded shapes (colour mode) or flat part ids (id mode) at `scale` x the output
    resolution."""

    SHIFT = 4  # sub-pixel precision of OpenCV drawing: coordinates in 1/16 pixel
    # Nested layers (relative sizes and brightness), lighter along the middle.
    SIZES, BRIGHTNESS = np.array([1.0, 0.72, 0.4]), (0.62, 0.84, 1.0)
    POLYGON_LAYERS = ((1.0, 0.66), (0.9, 0.78), (0.78, 0.87), (0.64, 0.94), (0.5, 1.0))

    def __init__(self, image: np.ndarray, scale: int, ids: bool = False):
        self.img, self.ids, self.aa = image, ids, cv2.LINE_8 if ids else cv2.LINE_AA
        self.k, self.offset = scale * (1 << self.SHIFT), (0.5 * scale - 0.5) * (1 << self.SHIFT)
        self.sizes = self.SIZES[:1] if ids else self.SIZES

    def _fix(self, p):
        """Output-pixel coordinates (pixel centres at integers) -> fixed-point render units."""
        return np.rint(np.asarray(p) * self.k + self.offset).astype(np.int32)

    def _colours(self, colour):
        return [colour] if self.ids else _shades(tuple(colour))

    def chain(self, points, radii, colour):
        """Tapered polyline with round ends, drawn layer by layer so that no outline shows at its
        joints (plain floats: numpy is slow for 2-vectors)."""
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
        """Filled ellipse, shaded in nested layers unless `shaded` is False."""
        centre = tuple(self._fix(centre).tolist())
        layers = (
            zip(self.sizes, self._colours(colour)) if shaded else [(1.0, tuple(map(float, colour)))]
        )
        for size, col in layers:
            axes = tuple(max(int(a * size * self.k), 1) for a in half_axes)
            cv2.ellipse(self.img, centre, axes, angle_deg, 0, 360, col, -1, self.aa, self.SHIFT)
