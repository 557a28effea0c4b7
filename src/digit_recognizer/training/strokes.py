"""A pen on paper: glyphs as strokes in a unit box, drawn by a random hand and brought to MNIST's format.

A glyph is a tuple of strokes; a stroke is a tuple of (x, y) control points in a box 1 high, x to the right and y
down. A stroke is drawn through its points as a Catmull-Rom spline, so a few points make a curve. `Hand` is one
writer's way of drawing: the control points jittered, the glyph narrowed or widened, slanted, turned, and drawn
with a pen of some width. `draw` renders a glyph with OpenCV's anti-aliased lines and fits it as MNIST's digits
were fitted (inference.reader.fit.placed: the longer side 20 px, the centre of mass at the centre).

    glyph (strokes of (x, y) points) + Hand -> draw -> (28, 28) uint8, ink bright
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..constants import DIGIT_BOX, MNIST_STROKE, PIXEL_MAX
from ..inference.reader import PARAMS
from ..inference.reader.fit import placed
from ..inference.reader.masks import cropped, is_ink

Stroke = tuple[tuple[float, float], ...]
Glyph = tuple[Stroke, ...]

CANVAS = 96  # px: glyphs are drawn this many px high (about 5x MNIST's 20-px box), then fitted to 28x28
SPLINE_STEPS = 8  # points drawn between two control points of a stroke
CORNER = 58.0  # degrees: a stroke turning more than this at a control point has a corner there
SUBPIXEL = 4  # bits of sub-pixel precision given to cv2.polylines (coordinates scaled by 2**SUBPIXEL)
JITTER = 0.035  # sd of a control point's wobble, in glyph heights
ASPECT = (0.55, 1.05)  # width of the glyph's unit box over its height (uniform)
SLANT = 0.55  # shear x += slant * (0.5 - y), uniform in +/- this: tan(29 degrees), either way
TURN = 8.0  # degrees of rotation, uniform in +/- this
# The pen, in MNIST's median strokes (uniform): a fine pen to a felt-tip. The reader evens markers' strokes.
PEN = (0.55, 1.7)


def arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 7) -> Stroke:
    """Points on an ellipse from angle `start` to `stop` in degrees (0 = right, 90 = down: clockwise as seen)."""
    t = np.radians(np.linspace(start, stop, n))
    return tuple(zip((cx + rx * np.cos(t)).tolist(), (cy + ry * np.sin(t)).tolist()))


def spline(points: np.ndarray, steps: int = SPLINE_STEPS) -> np.ndarray:
    """(K, 2) control points -> (M, 2) points of a stroke through them: a Catmull-Rom spline, with a corner
    wherever the stroke turns by more than CORNER degrees (an A's apex, a 7's elbow stay sharp)."""
    d = np.diff(points, axis=0)
    heading = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    turn = np.abs((np.diff(heading) + 180.0) % 360.0 - 180.0)  # (K - 2,) degrees at each inner point
    corners = [0] + [i + 1 for i in np.nonzero(turn > CORNER)[0].tolist()] + [len(points) - 1]
    pieces = [smooth(points[a:b + 1], steps) for a, b in zip(corners[:-1], corners[1:])]
    return np.concatenate([p[:-1] for p in pieces[:-1]] + pieces[-1:])


def smooth(points: np.ndarray, steps: int) -> np.ndarray:
    """(K, 2) -> (M, 2): the Catmull-Rom spline through the points (ends repeated)."""
    if len(points) < 3:
        return points
    p = np.concatenate([points[:1], points, points[-1:]])
    t = np.linspace(0.0, 1.0, steps, endpoint=False)[:, None]  # (S, 1)
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3))
    return np.concatenate(out + [points[-1:]])


@dataclass(frozen=True)
class Hand:
    """One writer's rendition of a glyph: how far the points wobble, the box's aspect, slant, turn and pen."""
    jitter: float = 0.0
    aspect: float = 0.8
    slant: float = 0.0
    turn: float = 0.0
    pen: float = 1.0  # in MNIST's median strokes

    @classmethod
    def random(cls, rng: np.random.Generator, slant: float = SLANT) -> "Hand":
        return cls(jitter=JITTER, aspect=rng.uniform(*ASPECT), slant=rng.uniform(-slant, slant),
                   turn=rng.uniform(-TURN, TURN), pen=rng.uniform(*PEN))

    def place(self, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(K, 2) unit-box points -> (K, 2) wobbled, narrowed, slanted and turned (still about unit size)."""
        p = points + rng.normal(0.0, self.jitter, points.shape)
        x, y = (p[:, 0] - 0.5) * self.aspect, p[:, 1] - 0.5
        x = x + self.slant * -y
        a = np.radians(self.turn)
        return np.stack([x * np.cos(a) - y * np.sin(a), x * np.sin(a) + y * np.cos(a)], 1)


def pen_px(pen: float, height_px: float) -> int:
    """A pen of `pen` MNIST strokes, in px of a glyph `height_px` high (MNIST's box is DIGIT_BOX px)."""
    return max(1, int(round(pen * MNIST_STROKE * height_px / DIGIT_BOX)))


def render(strokes: list[np.ndarray], pen: float) -> np.ndarray:
    """Placed strokes (each (M, 2), about unit size, centred on 0) -> (CANVAS, CANVAS) float32 ink, 0..255."""
    import cv2

    canvas = np.zeros((CANVAS, CANVAS), np.uint8)
    scale = CANVAS * 0.6  # a glyph 1 high fills 60% of the canvas: room for slant, flags and pen
    for s in strokes:
        pts = np.rint((s * scale + CANVAS / 2) * (1 << SUBPIXEL)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], False, 255, pen_px(pen, scale), cv2.LINE_AA, SUBPIXEL)
    return canvas.astype(np.float32)


def fitted(ink: np.ndarray) -> np.ndarray | None:
    """(h, w) float ink -> (28, 28) uint8 as MNIST was made, or None for an image with no ink."""
    mask = is_ink(ink / ink.max() * PIXEL_MAX, PARAMS.ink.seen) if ink.max() > 0 else None
    if mask is None or not mask.any():
        return None
    return placed(cropped(ink, mask), PARAMS)


def draw(glyph: Glyph, hand: Hand, rng: np.random.Generator) -> np.ndarray:
    """A glyph drawn by `hand` (wobble drawn from rng) -> (28, 28) uint8, ink bright."""
    strokes = [spline(hand.place(np.asarray(s, np.float64), rng)) for s in glyph]
    out = fitted(render(strokes, hand.pen))
    if out is None:  # cannot happen for a glyph with a stroke: the pen is at least 1 px
        raise ValueError("a glyph drew no ink")
    return out
